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
 * in dry run, while stopping or while any fleet is paused. A sweep keeps its candidates as
 * 64-bit hashes of their ARNs (the pass's listing is kept the same way): a key whose stage was
 * a candidate of the last complete sweep too has its records removed as the scan meets it.
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
#define SWEEP_MAX_FOUND 16384        /* candidate keys kept per sweep (up to 4 a stage, 8 bytes
                                        each); more wait for a later sweep */

struct sweep {
	bool running;
	bool have_prev;                  /* prev[] holds a complete sweep's candidates */
	int64_t last_start_ms;
	char cursor[32];
	char match[2 * KEY_MAX + 2];
	uint64_t *listed;                /* sorted hashes of the ARNs listed by the pass */
	size_t n_listed;
	char **scopes;                   /* "arn:...:ACCOUNT:stage/" of the origins, each once */
	size_t n_scopes;
	uint64_t *found;                 /* hashes of this sweep's candidates (repeats allowed) */
	size_t n_found, cap_found;
	uint64_t *prev;                  /* sorted hashes of the last complete sweep's candidates */
	bool *prev_removed;              /* its records were removed by this sweep */
	size_t n_prev;
	size_t removed;                  /* this sweep's removals, for the log */
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

static void sweep_reset_run(struct sweep *s)
{
	s->running = false;
	free(s->listed);
	s->listed = NULL;
	s->n_listed = 0;
	free(s->found);
	s->found = NULL;
	s->n_found = s->cap_found = 0;
	s->removed = 0;
}

static void free_scopes(struct sweep *s)
{
	for (size_t i = 0; i < s->n_scopes; i++)
		free(s->scopes[i]);
	free(s->scopes);
	s->scopes = NULL;
	s->n_scopes = 0;
}

static void forget_prev(struct sweep *s)
{
	free(s->prev);
	free(s->prev_removed);
	s->prev = NULL;
	s->prev_removed = NULL;
	s->n_prev = 0;
	s->have_prev = false;
}

void sweep_free(struct sweep *s)
{
	if (s == NULL)
		return;
	sweep_reset_run(s);
	free_scopes(s);
	forget_prev(s);
	free(s);
}

/* In the scope of an origin (same partition, region and account) and not an origin. */
static bool in_scope(const struct reconciler *r, const struct sweep *s, const char *arn)
{
	for (size_t i = 0; i < r->config->n_fleets; i++)
		if (strcmp(r->config->fleets[i].origin_stage_arn, arn) == 0)
			return false;
	for (size_t i = 0; i < s->n_scopes; i++)
		if (strncmp(arn, s->scopes[i], strlen(s->scopes[i])) == 0)
			return true;
	return false;
}

/* Candidates beyond SWEEP_MAX_FOUND keys wait for a later sweep (each key of a stage counts). */
static void add_found(struct sweep *s, uint64_t h)
{
	if (s->n_found == SWEEP_MAX_FOUND)
		return;
	if (s->n_found == s->cap_found) {
		size_t cap = s->cap_found ? s->cap_found * 2 : 64;
		uint64_t *n = realloc(s->found, cap * sizeof(*n));
		if (n == NULL)
			return;                  /* found again next time */
		s->found = n;
		s->cap_found = cap;
	}
	s->found[s->n_found++] = h;
}

/*
 * A candidate now (not listed by this sweep's listing) and of the last complete sweep too (not
 * listed by that one's): its records go, once, however many of its keys the scan meets.
 */
static void remove_if_twice(struct reconciler *r, struct sweep *s, const char *arn, uint64_t h)
{
	const uint64_t *at = s->have_prev && s->n_prev > 0
				     ? bsearch(&h, s->prev, s->n_prev, sizeof(h), cmp_u64) : NULL;
	size_t i;

	if (at == NULL)
		return;
	i = (size_t)(at - s->prev);
	if (s->prev_removed[i])
		return;
	s->prev_removed[i] = true;
	log_event(LOG_INFO, NULL, LOG_FIELDS("IVS_STAGE_ARN", arn),
		  "stage %s is not listed by IVS; removing its redis records", arn);
	rec_forget_stage(r, arn);
	s->removed++;
}

/* The scan is complete: this sweep's candidates, each once, are the next sweep's prev. */
static void sweep_finish(struct sweep *s)
{
	size_t n = 0;
	bool *removed;

	sweep_sort_hashes(s->found, s->n_found);
	for (size_t i = 0; i < s->n_found; i++)
		if (n == 0 || s->found[i] != s->found[n - 1])
			s->found[n++] = s->found[i];
	removed = calloc(n ? n : 1, sizeof(*removed));
	if (removed == NULL) {
		forget_prev(s);                  /* nothing is removed next time; found again later */
		sweep_reset_run(s);
		return;
	}
	forget_prev(s);
	s->prev = s->found;
	s->prev_removed = removed;
	s->n_prev = n;
	s->found = NULL;
	s->n_found = s->cap_found = 0;
	s->have_prev = true;
	log_debug("redis sweep done: %zu candidate(s), %zu removed", s->n_prev, s->removed);
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
	for (size_t i = 0; i < n; i++) {
		uint64_t h;

		if (store_parse_record_key(r->config->redis.key_prefix, keys[i], arn, sizeof(arn)) != 1 ||
		    !in_scope(r, s, arn) || listed(s, arn))
			continue;
		h = sweep_arn_hash(arn);
		add_found(s, h);
		remove_if_twice(r, s, arn, h);
	}
	snprintf(s->cursor, sizeof(s->cursor), "%s", next);
	if (strcmp(s->cursor, "0") == 0)
		sweep_finish(s);
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

/* "arn:...:ACCOUNT:stage/" of every origin, each once (most fleets share an account). */
static int collect_scopes(const struct reconciler *r, struct sweep *s)
{
	for (size_t i = 0; i < r->config->n_fleets; i++) {
		const char *o = r->config->fleets[i].origin_stage_arn;
		const char *slash = strstr(o, ":stage/");
		size_t len;
		bool seen = false;
		char **grown;

		if (slash == NULL)
			continue;
		len = (size_t)(slash - o) + 7;
		for (size_t k = 0; k < s->n_scopes && !seen; k++)
			seen = strlen(s->scopes[k]) == len && strncmp(s->scopes[k], o, len) == 0;
		if (seen)
			continue;
		grown = realloc(s->scopes, (s->n_scopes + 1) * sizeof(*grown));
		if (grown == NULL)
			return -ENOMEM;
		s->scopes = grown;
		if ((s->scopes[s->n_scopes] = strndup(o, len)) == NULL)
			return -ENOMEM;
		s->n_scopes++;
	}
	return 0;
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
	free_scopes(s);
	s->listed = malloc((p->n_listed ? p->n_listed : 1) * sizeof(*s->listed));
	if (s->listed == NULL || collect_scopes(r, s) < 0) {
		free_scopes(s);
		sweep_reset_run(s);
		return;
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
	if (r->sweep != NULL)
		forget_prev(r->sweep);
}

void sweep_sort_hashes(uint64_t *h, size_t n)
{
	if (n > 1)
		qsort(h, n, sizeof(*h), cmp_u64);
}
