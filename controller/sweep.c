/*
 * sweep.c — the Redis records of stages that are gone, cleaned from what IVS lists versus what
 * Redis holds.
 *
 * A record of a stage (stage:{arn}, its :draining and :drained_by markers, replication:{arn})
 * is deleted when the stage is in the account and region of a configured origin, is not an
 * origin, and was absent from two complete ListStages in a row: the one of the pass that began
 * this sweep and the one of the sweep before. Two listings, because a stage created after a
 * listing (by this daemon's next pass, or by anyone) has records before it is listed once.
 * Whatever the reason the records stayed (the stage vanished while the daemon was stopped or
 * Redis was down, a DeleteStage answer lost to a crash), the next sweeps remove them; a delete
 * that fails is simply found again.
 *
 * A sweep is a SCAN of the key prefix (MATCH, COUNT 500; never KEYS), at most one running and
 * at most one begun per resync interval, after a pass whose stage listing was complete, never
 * in dry run, while stopping or while any fleet is paused.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "reconcile_internal.h"
#include "redisio.h"
#include "store.h"
#include "store_parse.h"
#include "util.h"

#define SWEEP_COUNT     500
#define SWEEP_MAX_FOUND 4096         /* candidates kept per sweep; more wait for a later one */

typedef char arn_t[IVS_ARN_MAX + 1];

struct sweep {
	bool running;
	bool have_prev;                  /* prev[] holds a complete sweep's candidates */
	int64_t last_start_ms;
	char cursor[32];
	char match[2 * KEY_MAX + 2];
	uint64_t *listed;                /* sorted hashes of the ARNs listed by the pass */
	size_t n_listed;
	arn_t *origins_scope;            /* "arn:...:ACCOUNT:stage/" of each origin */
	size_t n_scope;
	arn_t *found;                    /* candidates of this sweep */
	size_t n_found, cap_found;
	arn_t *prev;                     /* candidates of the last complete sweep */
	size_t n_prev;
};

uint64_t sweep_arn_hash(const char *s)
{
	return str_hash64(s);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool listed(const struct sweep *s, const char *arn)
{
	uint64_t h = sweep_arn_hash(arn);

	return bsearch(&h, s->listed, s->n_listed, sizeof(h), cmp_u64) != NULL;
}

static bool in_list(arn_t *list, size_t n, const char *arn)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], arn) == 0)
			return true;
	return false;
}

static void sweep_reset_run(struct sweep *s)
{
	s->running = false;
	free(s->listed);
	s->listed = NULL;
	s->n_listed = 0;
	free(s->found);
	s->found = NULL;
	s->n_found = s->cap_found = 0;
}

void sweep_free(struct sweep *s)
{
	if (s == NULL)
		return;
	sweep_reset_run(s);
	free(s->origins_scope);
	free(s->prev);
	free(s);
}

/* In the scope of an origin (same partition, region and account) and not an origin. */
static bool in_scope(const struct reconciler *r, const struct sweep *s, const char *arn)
{
	for (size_t i = 0; i < r->config->n_fleets; i++)
		if (strcmp(r->config->fleets[i].origin_stage_arn, arn) == 0)
			return false;
	for (size_t i = 0; i < s->n_scope; i++)
		if (strncmp(arn, s->origins_scope[i], strlen(s->origins_scope[i])) == 0)
			return true;
	return false;
}

static void add_found(struct sweep *s, const char *arn)
{
	if (in_list(s->found, s->n_found, arn) || s->n_found == SWEEP_MAX_FOUND)
		return;
	if (s->n_found == s->cap_found) {
		size_t cap = s->cap_found ? s->cap_found * 2 : 16;
		arn_t *n = realloc(s->found, cap * sizeof(*n));
		if (n == NULL)
			return;                  /* found again next time */
		s->found = n;
		s->cap_found = cap;
	}
	snprintf(s->found[s->n_found++], sizeof(arn_t), "%s", arn);
}

/* The scan is complete: forget what was a candidate twice; keep this sweep's as prev. */
static void sweep_finish(struct reconciler *r, struct sweep *s)
{
	size_t removed = 0;

	for (size_t i = 0; i < s->n_found && s->have_prev; i++) {
		if (!in_list(s->prev, s->n_prev, s->found[i]))
			continue;
		log_event(LOG_INFO, NULL, LOG_FIELDS("IVS_STAGE_ARN", s->found[i]),
			  "stage %s is not listed by IVS; removing its redis records", s->found[i]);
		rec_forget_stage(r, s->found[i]);
		removed++;
	}
	free(s->prev);
	s->prev = s->found;
	s->n_prev = s->n_found;
	s->found = NULL;
	s->n_found = s->cap_found = 0;
	s->have_prev = true;
	log_debug("redis sweep done: %zu candidate(s), %zu removed", s->n_prev, removed);
	sweep_reset_run(s);
}

static void sweep_next(struct reconciler *r);

static void on_scan(void *ud, int err, const char *error, const char *next,
		    const char *const *keys, size_t n)
{
	struct reconciler *r = ud;
	struct sweep *s = r->sweep;
	char arn[IVS_ARN_MAX + 1];

	r->in_flight--;
	if (err != 0) {
		log_debug("redis sweep abandoned: %s", error != NULL ? error : strerror(-err));
		sweep_reset_run(s);
		rec_check_idle(r);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (store_parse_record_key(r->config->redis.key_prefix, keys[i], arn, sizeof(arn)) == 1 &&
		    in_scope(r, s, arn) && !listed(s, arn))
			add_found(s, arn);
	snprintf(s->cursor, sizeof(s->cursor), "%s", next);
	if (strcmp(s->cursor, "0") == 0)
		sweep_finish(r, s);
	else
		sweep_next(r);
	rec_check_idle(r);
}

static void sweep_next(struct reconciler *r)
{
	struct sweep *s = r->sweep;
	int rc;

	if (r->stopping || r->redis == NULL || !redisio_connected(r->redis)) {
		sweep_reset_run(s);
		return;
	}
	r->in_flight++;
	rc = store_scan(r->redis, s->cursor, s->match, SWEEP_COUNT, on_scan, r);
	if (rc < 0) {
		r->in_flight--;
		sweep_reset_run(s);
	}
}

static bool any_paused(const struct reconciler *r)
{
	for (size_t i = 0; i < r->n_fleets; i++)
		if (r->fleets[i].paused)
			return true;
	return false;
}

void sweep_after_pass(struct reconciler *r, const struct pass *p)
{
	struct sweep *s = r->sweep;
	char prefix[KEY_MAX];
	int64_t now = rec_wall_ms();

	/* Only a daemon that may write sweeps: not in dry run, not a standby (ha). */
	if (!rec_may_write(r) || r->stopping || r->redis == NULL || !redisio_connected(r->redis) ||
	    !p->stages_ok || p->listed == NULL || any_paused(r))
		return;
	if (s == NULL) {
		s = r->sweep = calloc(1, sizeof(*s));
		if (s == NULL)
			return;
	} else if (s->running ||
		   now - s->last_start_ms < (int64_t)r->config->reconcile.resync_interval_ms) {
		return;
	}
	snprintf(prefix, sizeof(prefix), "%s", r->config->redis.key_prefix);
	if (store_glob_escape(prefix, s->match, sizeof(s->match) - 1) < 0)
		return;
	strcat(s->match, "*");
	free(s->origins_scope);
	s->n_scope = 0;
	s->origins_scope = calloc(r->config->n_fleets ? r->config->n_fleets : 1,
				  sizeof(*s->origins_scope));
	s->listed = malloc((p->n_listed ? p->n_listed : 1) * sizeof(*s->listed));
	if (s->origins_scope == NULL || s->listed == NULL) {
		sweep_reset_run(s);
		return;
	}
	for (size_t i = 0; i < r->config->n_fleets; i++) {
		const char *o = r->config->fleets[i].origin_stage_arn;
		const char *slash = strstr(o, ":stage/");
		if (slash != NULL)
			snprintf(s->origins_scope[s->n_scope++], sizeof(arn_t), "%.*s",
				 (int)(slash - o + 7), o);
	}
	memcpy(s->listed, p->listed, p->n_listed * sizeof(*s->listed));
	s->n_listed = p->n_listed;
	s->running = true;
	s->last_start_ms = now;
	snprintf(s->cursor, sizeof(s->cursor), "0");
	sweep_next(r);
}

/* The configuration changed (fleets, origins, prefix): what earlier sweeps found is moot. */
void sweep_forget(struct reconciler *r)
{
	if (r->sweep == NULL)
		return;
	free(r->sweep->prev);
	r->sweep->prev = NULL;
	r->sweep->n_prev = 0;
	r->sweep->have_prev = false;
}

void sweep_sort_hashes(uint64_t *h, size_t n)
{
	qsort(h, n, sizeof(*h), cmp_u64);
}
