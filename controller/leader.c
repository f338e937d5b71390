/*
 * leader.c — see leader.h. The decisions are common/lease.c's; this file sends what it asks for
 * and reports the answers, classifying every reply it cannot trust as an unknown outcome.
 */
#include "leader.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "redisio.h"

/* Compare-and-PEXPIRE and compare-and-DEL: act only while the key still holds our value. */
static const char RENEW_SCRIPT[] =
	"if redis.call('get', KEYS[1]) == ARGV[1] then "
	"return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
static const char RELEASE_SCRIPT[] =
	"if redis.call('get', KEYS[1]) == ARGV[1] then "
	"return redis.call('del', KEYS[1]) else return 0 end";

struct leader {
	sd_event *event;
	struct redisio *redis;
	struct leader_hooks hooks;
	struct lease lease;
	char key[CONFIG_KEY_MAX + 1];
	char px[24];                  /* lease_duration in ms, as text */
	sd_event_source *timer;
	bool first_answered;
	bool acquire_get;             /* an acquire was refused: its GET is outstanding */
	void (*release_done)(void *ud);
	void *release_ud;
};

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void random_hex(char *out, size_t size)
{
	unsigned char bytes[LEASE_RANDOM_MAX / 2];
	size_t n = 0;

	if (getrandom(bytes, sizeof(bytes), GRND_NONBLOCK) != (ssize_t)sizeof(bytes)) {
		/* Unique enough: the value only has to differ from other daemons' values. */
		uint64_t t = mono_us() ^ ((uint64_t)getpid() << 32);
		for (size_t i = 0; i < sizeof(bytes); i++)
			bytes[i] = (unsigned char)(t >> (8 * (i % 8))) ^ (unsigned char)random();
	}
	for (size_t i = 0; i < sizeof(bytes) && n + 2 < size; i++)
		n += (size_t)snprintf(out + n, size - n, "%02x", bytes[i]);
}

static void report(struct leader *l, enum lease_change change)
{
	if (change == LEASE_UNCHANGED)
		return;
	if (l->hooks.changed != NULL)
		l->hooks.changed(l->hooks.ud, change);
}

static void schedule(struct leader *l);
static void on_reply(void *ud, redisReply *reply, const char *error);

/* sent: the request reached the link (its answer, or its failure, came back from redisio). */
static void finish_request(struct leader *l, enum lease_outcome outcome, const char *holder,
			   bool sent)
{
	bool first = !l->first_answered && sent;
	enum lease_change change = lease_done(&l->lease, outcome, holder, mono_us());

	l->first_answered = l->first_answered || sent;
	report(l, change);
	if (first && change == LEASE_UNCHANGED && l->hooks.changed != NULL)
		l->hooks.changed(l->hooks.ud, LEASE_UNCHANGED);
	schedule(l);
}

static void send_request(struct leader *l, enum lease_request req)
{
	char random[LEASE_RANDOM_MAX + 1] = "";
	const char *argv[6];
	size_t argc = 0;
	const char *value;
	int rc;

	if (req == LEASE_REQ_ACQUIRE)
		random_hex(random, sizeof(random));
	value = lease_begin(&l->lease, req, random, mono_us());
	if (req == LEASE_REQ_ACQUIRE) {
		argv[argc++] = "SET";
		argv[argc++] = l->key;
		argv[argc++] = value;
		argv[argc++] = "NX";
		argv[argc++] = "PX";
		argv[argc++] = l->px;
	} else {
		argv[argc++] = "EVAL";
		argv[argc++] = RENEW_SCRIPT;
		argv[argc++] = "1";
		argv[argc++] = l->key;
		argv[argc++] = value;
		argv[argc++] = l->px;
	}
	l->acquire_get = false;
	rc = l->redis != NULL ? redisio_command_argv(l->redis, (int)argc, argv, NULL, on_reply, l)
			      : -ENOTCONN;
	if (rc < 0) {
		log_debug("lease %s not sent: %s", req == LEASE_REQ_ACQUIRE ? "acquire" : "renewal",
			  strerror(-rc));
		finish_request(l, LEASE_OUTCOME_UNKNOWN, NULL, false);
	}
}

static void on_get_reply(void *ud, redisReply *reply, const char *error)
{
	struct leader *l = ud;
	const char *holder = NULL;
	char buf[LEASE_VALUE_MAX + 1] = "";

	(void)error;
	l->acquire_get = false;
	if (reply != NULL && reply->type == REDIS_REPLY_STRING && reply->len <= LEASE_VALUE_MAX) {
		memcpy(buf, reply->str, reply->len);
		buf[reply->len] = '\0';
		holder = buf;
	}
	finish_request(l, LEASE_OUTCOME_REFUSED, holder, true);
}

static void on_reply(void *ud, redisReply *reply, const char *error)
{
	struct leader *l = ud;
	enum lease_request req = l->lease.in_flight;
	enum lease_outcome outcome = LEASE_OUTCOME_UNKNOWN;

	if (req == LEASE_REQ_NONE)
		return;                  /* released meanwhile: the answer no longer matters */
	if (reply == NULL) {
		log_debug("lease request failed: %s", error != NULL ? error : "?");
	} else if (req == LEASE_REQ_ACQUIRE) {
		if (reply->type == REDIS_REPLY_STATUS && reply->str != NULL &&
		    strcmp(reply->str, "OK") == 0)
			outcome = LEASE_OUTCOME_OK;
		else if (reply->type == REDIS_REPLY_NIL)
			outcome = LEASE_OUTCOME_REFUSED;
	} else if (reply->type == REDIS_REPLY_INTEGER) {
		outcome = reply->integer == 1 ? LEASE_OUTCOME_OK : LEASE_OUTCOME_REFUSED;
	}
	if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
		log_event(LOG_WARNING, NULL, NULL, "lease %s: redis answered %s",
			  req == LEASE_REQ_ACQUIRE ? "acquire" : "renewal",
			  reply->str != NULL ? reply->str : "an error");
	if (req == LEASE_REQ_ACQUIRE && outcome == LEASE_OUTCOME_REFUSED && l->redis != NULL) {
		/* Who holds it? Shown in status and in "not the leader" answers. */
		const char *argv[2] = { "GET", l->key };
		l->acquire_get = true;
		if (redisio_command_argv(l->redis, 2, argv, NULL, on_get_reply, l) == 0)
			return;
		l->acquire_get = false;
	}
	finish_request(l, outcome, NULL, true);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct leader *l = ud;
	(void)s; (void)usec;
	schedule(l);
	return 0;
}

/* Step down if the deadline passed, send what is due, and arm the timer for the next event. */
static void schedule(struct leader *l)
{
	uint64_t now = mono_us(), at;
	enum lease_request req;

	report(l, lease_tick(&l->lease, now));
	if (!l->acquire_get) {
		req = lease_due(&l->lease, now);
		if (req != LEASE_REQ_NONE) {
			send_request(l, req);    /* may answer at once (link down): schedules again */
			return;
		}
	}
	at = lease_next_wakeup(&l->lease);
	if (l->timer == NULL || at == UINT64_MAX) {
		if (l->timer != NULL)
			sd_event_source_set_enabled(l->timer, SD_EVENT_OFF);
		return;
	}
	sd_event_source_set_time(l->timer, at);
	sd_event_source_set_enabled(l->timer, SD_EVENT_ONESHOT);
}

struct leader *leader_new(sd_event *event, struct redisio *redis, const struct config *config,
			  const struct leader_hooks *hooks)
{
	struct leader *l = calloc(1, sizeof(*l));
	const struct config_ha *ha = &config->ha;
	struct lease_timing t = {
		.duration_us = ha->lease_duration_ms * 1000u,
		.renew_deadline_us = ha->renew_deadline_ms * 1000u,
		.retry_period_us = ha->retry_period_ms * 1000u,
	};

	if (l == NULL)
		return NULL;
	l->event = event;
	l->redis = redis;
	if (hooks != NULL)
		l->hooks = *hooks;
	snprintf(l->key, sizeof(l->key), "%s%s", config->redis.key_prefix, ha->lease_key);
	snprintf(l->px, sizeof(l->px), "%" PRIu64, ha->lease_duration_ms);
	lease_init(&l->lease, &t, config->controller.instance, mono_us());
	if (sd_event_add_time(event, &l->timer, CLOCK_MONOTONIC, mono_us(), 1000, on_timer, l) < 0) {
		free(l);
		return NULL;
	}
	sd_event_source_set_description(l->timer, "leader-lease");
	return l;
}

void leader_free(struct leader *l)
{
	if (l == NULL)
		return;
	sd_event_source_disable_unref(l->timer);
	free(l);
}

bool leader_may_mutate(const struct leader *l)
{
	return l == NULL || lease_may_mutate(&l->lease, mono_us());
}

bool leader_is_leader(const struct leader *l)
{
	return leader_may_mutate(l);
}

void leader_holder(const struct leader *l, char *buf, size_t size)
{
	if (l == NULL) {
		snprintf(buf, size, "%s", "");
		return;
	}
	lease_holder_instance(l->lease.holder, buf, size);
}

int64_t leader_deadline_wall_ms(const struct leader *l)
{
	struct timespec ts;
	uint64_t now = mono_us();
	int64_t wall;

	if (l == NULL || !lease_may_mutate(&l->lease, now))
		return 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	return wall + (int64_t)((l->lease.valid_until_us - now) / 1000u);
}

uint64_t leader_transitions(const struct leader *l)
{
	return l != NULL ? l->lease.transitions : 0;
}

const char *leader_instance(const struct leader *l)
{
	return l != NULL ? l->lease.instance : "";
}

void leader_redis_up(struct leader *l)
{
	if (l == NULL)
		return;
	if (l->lease.in_flight == LEASE_REQ_NONE && !l->lease.released)
		l->lease.next_us = mono_us();
	schedule(l);
}

static void on_release_reply(void *ud, redisReply *reply, const char *error)
{
	struct leader *l = ud;
	void (*done)(void *) = l->release_done;

	if (reply != NULL && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1)
		log_info("leader lease released");
	else
		log_event(LOG_WARNING, NULL, NULL, "leader lease not released (%s); it expires by "
			  "itself", reply == NULL ? (error != NULL ? error : "?")
			  : reply->type == REDIS_REPLY_INTEGER ? "no longer ours" : "unexpected answer");
	l->release_done = NULL;
	if (done != NULL)
		done(l->release_ud);
}

int leader_release(struct leader *l, void (*done)(void *ud), void *ud)
{
	enum lease_change change;
	const char *argv[5];

	if (l == NULL)
		return 0;
	bool send = lease_release_begin(&l->lease, &change);
	sd_event_source_set_enabled(l->timer, SD_EVENT_OFF);
	report(l, change);
	if (!send || l->redis == NULL || !redisio_connected(l->redis))
		return 0;
	argv[0] = "EVAL";
	argv[1] = RELEASE_SCRIPT;
	argv[2] = "1";
	argv[3] = l->key;
	argv[4] = l->lease.value;
	l->release_done = done;
	l->release_ud = ud;
	if (redisio_command_argv(l->redis, 5, argv, NULL, on_release_reply, l) < 0) {
		l->release_done = NULL;
		return 0;
	}
	return 1;
}
