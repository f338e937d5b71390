/*
 * lease.c — see lease.h. Every function is a function of its arguments and the struct.
 */
#include "lease.h"

#include <stdio.h>
#include <string.h>

void lease_init(struct lease *l, const struct lease_timing *timing, const char *instance,
		uint64_t now_us)
{
	memset(l, 0, sizeof(*l));
	l->timing = *timing;
	snprintf(l->instance, sizeof(l->instance), "%.64s", instance != NULL ? instance : "");
	l->role = LEASE_CANDIDATE;
	l->next_us = now_us;
}

static enum lease_change step_down(struct lease *l, enum lease_change why)
{
	if (l->role != LEASE_LEADER)
		return LEASE_UNCHANGED;
	l->role = LEASE_CANDIDATE;
	l->valid_until_us = 0;
	l->transitions++;
	return why;
}

enum lease_change lease_tick(struct lease *l, uint64_t now_us)
{
	if (l->role == LEASE_LEADER && now_us >= l->valid_until_us) {
		/* The key may still be ours (Redis unreachable): a later acquire finds it and
		 * renews it before leading again. */
		l->renew_own = false;
		return step_down(l, LEASE_LOST_DEADLINE);
	}
	return LEASE_UNCHANGED;
}

enum lease_request lease_due(const struct lease *l, uint64_t now_us)
{
	if (l->released || l->in_flight != LEASE_REQ_NONE || now_us < l->next_us)
		return LEASE_REQ_NONE;
	if (l->role == LEASE_LEADER || l->renew_own)
		return LEASE_REQ_RENEW;
	return LEASE_REQ_ACQUIRE;
}

const char *lease_begin(struct lease *l, enum lease_request req, const char *random,
			uint64_t now_us)
{
	/* A value is kept until it is known not to be in Redis (the key was found gone or taken):
	 * an acquire whose answer was lost may have set it, and the next acquire must recognise
	 * it as ours. */
	if (req == LEASE_REQ_ACQUIRE && (l->value[0] == '\0' || l->new_value)) {
		l->new_value = false;
		snprintf(l->value, sizeof(l->value), "%s:%.32s", l->instance,
			 random != NULL ? random : "");
	}
	l->in_flight = req;
	l->sent_us = now_us;
	return l->value;
}

static uint64_t retry_at(const struct lease *l, uint64_t now_us)
{
	uint64_t at = l->sent_us + l->timing.retry_period_us;
	return at > now_us ? at : now_us;
}

enum lease_change lease_done(struct lease *l, enum lease_outcome outcome, const char *holder,
			     uint64_t now_us)
{
	enum lease_request req = l->in_flight;
	enum lease_change change = LEASE_UNCHANGED;

	l->in_flight = LEASE_REQ_NONE;
	if (req == LEASE_REQ_NONE || req == LEASE_REQ_RELEASE || l->released)
		return LEASE_UNCHANGED;
	l->next_us = retry_at(l, now_us);
	switch (outcome) {
	case LEASE_OUTCOME_OK: {
		uint64_t until = l->sent_us + l->timing.renew_deadline_us;
		snprintf(l->holder, sizeof(l->holder), "%s", l->value);
		l->renew_own = false;
		if (until <= now_us) {
			/* Answered too late to be of use: the deadline from its send time is past. */
			return lease_tick(l, now_us);
		}
		if (l->role != LEASE_LEADER) {
			l->role = LEASE_LEADER;
			l->transitions++;
			change = LEASE_BECAME_LEADER;
		}
		if (until > l->valid_until_us)
			l->valid_until_us = until;
		break;
	}
	case LEASE_OUTCOME_REFUSED:
		if (req == LEASE_REQ_ACQUIRE) {
			snprintf(l->holder, sizeof(l->holder), "%s", holder != NULL ? holder : "");
			/* Our own value: an earlier acquire did land. Renew it, then lead. */
			l->renew_own = l->holder[0] != '\0' && strcmp(l->holder, l->value) == 0;
			if (l->renew_own)
				l->next_us = now_us;
		} else {
			/* The key expired or another daemon holds it: stop at once. */
			l->holder[0] = '\0';
			l->renew_own = false;
			l->new_value = true;
			change = step_down(l, LEASE_LOST_TAKEN);
			l->next_us = now_us;
		}
		break;
	case LEASE_OUTCOME_UNKNOWN:
		/* Counts as failed: the deadline stays where the last good answer put it. */
		change = lease_tick(l, now_us);
		break;
	}
	return change;
}

bool lease_release_begin(struct lease *l, enum lease_change *change)
{
	bool may_hold = l->role == LEASE_LEADER || l->renew_own ||
			(l->value[0] != '\0' && (l->in_flight == LEASE_REQ_ACQUIRE ||
						 l->in_flight == LEASE_REQ_RENEW));

	*change = LEASE_UNCHANGED;
	if (l->released)
		return false;
	if (l->role == LEASE_LEADER)
		*change = step_down(l, LEASE_RELEASED);
	l->released = true;
	l->renew_own = false;
	l->in_flight = LEASE_REQ_NONE;
	return may_hold && l->value[0] != '\0';
}

bool lease_may_mutate(const struct lease *l, uint64_t now_us)
{
	return l->role == LEASE_LEADER && !l->released && now_us < l->valid_until_us;
}

uint64_t lease_next_wakeup(const struct lease *l)
{
	uint64_t at = UINT64_MAX;

	if (l->released)
		return at;
	if (l->in_flight == LEASE_REQ_NONE)
		at = l->next_us;
	if (l->role == LEASE_LEADER && l->valid_until_us < at)
		at = l->valid_until_us;
	return at;
}

void lease_holder_instance(const char *value, char *buf, size_t size)
{
	const char *colon = value != NULL ? strrchr(value, ':') : NULL;
	size_t n = value == NULL ? 0 : colon != NULL ? (size_t)(colon - value) : strlen(value);

	if (size == 0)
		return;
	if (n >= size)
		n = size - 1;
	if (n > 0)
		memcpy(buf, value, n);
	buf[n] = '\0';
}

const char *lease_change_name(enum lease_change c)
{
	switch (c) {
	case LEASE_UNCHANGED: return "unchanged";
	case LEASE_BECAME_LEADER: return "became leader";
	case LEASE_LOST_DEADLINE: return "renew deadline passed";
	case LEASE_LOST_TAKEN: return "lease lost to another holder";
	case LEASE_RELEASED: return "released";
	}
	return "?";
}
