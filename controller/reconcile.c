/*
 * reconcile.c — the reconciler object: life cycle, wake-ups (resync timer, debounce, idle), and
 * admin steering (pause, operator drain, manual replications). A pass itself is pass.c's; see
 * reconcile.h for its shape and pass.h for how its phases are divided between observe.c,
 * act.c and record.c.
 *
 * Safety rules kept by the controller (the planner keeps the rest, see common/plan.h):
 *   - ownership comes from IVS tags only; a stage without our tags never reaches the planner;
 *   - a pass whose reads failed may create and replicate but never drain, stop or delete;
 *   - the single "may I mutate now?" check is rec_may_mutate();
 *   - every action is idempotent against IVS (404 on stop/delete = done, "already
 *     replicating" = done), so a crash at any point is repaired by the next pass.
 */
#include "reconcile.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "config.h"
#include "ivs.h"
#include "leader.h"
#include "log.h"
#include "metrics.h"
#include "plan.h"
#include "policy.h"
#include "reconcile_internal.h"
#include "redisio.h"
#include "store.h"
#include "store_parse.h"

/* ---- small helpers ---------------------------------------------------------------------- */

int64_t rec_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t rec_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void rec_iso_time(int64_t ms, char *buf, size_t len)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

struct fleet_state *rec_fleet_state(const struct reconciler *r, const char *name)
{
	for (size_t i = 0; i < r->n_fleets; i++)
		if (strcmp(r->fleets[i].name, name) == 0)
			return &r->fleets[i];
	return NULL;
}

size_t rec_fleet_index(const struct reconciler *r, const char *name)
{
	for (size_t i = 0; i < r->config->n_fleets; i++)
		if (strcmp(r->config->fleets[i].name, name) == 0)
			return i;
	return SIZE_MAX;
}

/* The Redis key of a stage of ours, under the configured prefix. 0 or -ENAMETOOLONG. */
int rec_stage_key(const struct reconciler *r, enum store_stage_key which, const char *arn,
		  char *out, size_t len)
{
	return store_stage_key(out, len, r->config->redis.key_prefix, which, arn);
}

/*
 * The one "may I mutate now?" check. The lease is asked with the clock of this moment, so a
 * leader whose renew deadline passed (a pause, Redis unreachable) starts nothing more.
 */
bool rec_may_mutate(const struct reconciler *r, const struct fleet_state *fs)
{
	return !r->dry_run && !r->stopping && leader_may_mutate(r->leader) &&
	       !(fs != NULL && fs->paused);
}

bool rec_may_write(const struct reconciler *r)
{
	return !r->dry_run && leader_may_mutate(r->leader);
}

void reconciler_set_leader(struct reconciler *r, struct leader *leader)
{
	r->leader = leader;
}

int reconciler_check_leader(const struct reconciler *r, char *err, size_t errlen)
{
	char holder[LEASE_INSTANCE_MAX + 1];

	if (leader_may_mutate(r->leader))
		return 0;
	leader_holder(r->leader, holder, sizeof(holder));
	snprintf(err, errlen, "not the leader (leader: %s)", holder[0] ? holder : "unknown");
	return -EBUSY;
}

static int on_idle_defer(sd_event_source *s, void *ud)
{
	struct reconciler *r = ud;
	(void)s;
	if (reconciler_idle(r) && r->hooks.idle != NULL)
		r->hooks.idle(r->hooks.ud);
	return 0;
}

void rec_check_idle(struct reconciler *r)
{
	if (r->idle_defer != NULL && r->hooks.idle != NULL && reconciler_idle(r))
		sd_event_source_set_enabled(r->idle_defer, SD_EVENT_ONESHOT);
}

/* ---- wake-ups ---------------------------------------------------------------------------- */

static uint64_t jittered_interval_us(const struct reconciler *r)
{
	uint64_t base = r->config->reconcile.resync_interval_ms * 1000u;
	double jitter = ((double)random() / (double)RAND_MAX) * 0.2 - 0.1;   /* ±10 % */
	return (uint64_t)((double)base * (1.0 + jitter));
}

static int on_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct reconciler *r = ud;
	(void)usec;
	sd_event_source_set_time_relative(s, jittered_interval_us(r));
	sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	reconciler_wake(r, "resync");
	return 0;
}

static int on_defer(sd_event_source *s, void *ud)
{
	struct reconciler *r = ud;
	(void)s;
	if (r->current == NULL && !r->stopping && !(r->one_pass && r->passes > 0))
		pass_begin(r);
	return 0;
}

void reconciler_one_pass(struct reconciler *r)
{
	r->one_pass = true;
}

/* What woke the reconciler, counted per reason (the status view shows them). */
const struct rec_wake_reason rec_wake_reasons[REC_WAKE_REASONS] = {
	{ "start", "start" },
	{ "resync", "resync" },
	{ "reload", "reload" },
	{ "redis connected", "redis_connected" },
	{ "wake channel", "wake_channel" },
	{ "keyspace", "keyspace" },                /* an input key changed (before debouncing) */
	{ "admin", "admin" },
	{ "resume", "resume" },
	{ "drain", "drain" },
	{ "manual replication", "manual_replication" },
	{ NULL, "other" },
};

static void count_wake(struct reconciler *r, const char *reason)
{
	size_t i = 0;
	while (i + 1 < REC_WAKE_REASONS &&
	       (reason == NULL || strcmp(rec_wake_reasons[i].reason, reason) != 0))
		i++;
	r->wakes[i]++;
}

static void wake(struct reconciler *r, const char *reason)
{
	log_debug("wake: %s", reason ? reason : "?");
	r->wake_pending = true;
	if (r->current == NULL)
		sd_event_source_set_enabled(r->defer, SD_EVENT_ONESHOT);
}

void reconciler_wake(struct reconciler *r, const char *reason)
{
	if (r->stopping)
		return;
	count_wake(r, reason);
	wake(r, reason);
}

static int on_debounce(sd_event_source *s, uint64_t usec, void *ud)
{
	(void)s; (void)usec;
	wake(ud, "keyspace");                    /* counted when the change arrived */
	return 0;
}

#define DEBOUNCE_US 1000000u

void reconciler_wake_debounced(struct reconciler *r, const char *reason)
{
	uint64_t now = rec_mono_us(), due = r->last_pass_start_us + DEBOUNCE_US;
	int enabled = SD_EVENT_OFF;

	if (r->stopping)
		return;
	count_wake(r, "keyspace");
	if (now >= due && r->current == NULL) {
		wake(r, reason);
		return;
	}
	if (r->debounce != NULL && sd_event_source_get_enabled(r->debounce, &enabled) >= 0 &&
	    enabled != SD_EVENT_OFF)
		return;
	if (r->debounce == NULL) {
		if (sd_event_add_time_relative(r->event, &r->debounce, CLOCK_MONOTONIC,
					       now >= due ? 1 : due - now, 10000, on_debounce, r) < 0)
			return;
		sd_event_source_set_description(r->debounce, "keyspace-debounce");
	} else {
		sd_event_source_set_time_relative(r->debounce, now >= due ? 1 : due - now);
		sd_event_source_set_enabled(r->debounce, SD_EVENT_ONESHOT);
	}
}

int reconciler_start(struct reconciler *r)
{
	int rc = sd_event_add_time_relative(r->event, &r->timer, CLOCK_MONOTONIC,
					    jittered_interval_us(r), 10000, on_timer, r);
	if (rc < 0)
		return rc;
	sd_event_source_set_description(r->timer, "resync");
	reconciler_wake(r, "start");
	return 0;
}

bool reconciler_idle(const struct reconciler *r)
{
	return r->current == NULL && r->in_flight == 0;
}

bool reconciler_stop(struct reconciler *r)
{
	r->stopping = true;
	if (r->timer != NULL)
		sd_event_source_set_enabled(r->timer, SD_EVENT_OFF);
	return reconciler_idle(r);
}

void reconciler_set_redis_up(struct reconciler *r, bool up)
{
	r->redis_up = up;
	if (r->metrics != NULL)
		metric_set(r->metrics->redis_up, NULL, up ? 1 : 0);
}

/* ---- life cycle ---------------------------------------------------------------------------- */

static int fleets_from_config(struct reconciler *r, const struct config *config)
{
	struct fleet_state *n = calloc(config->n_fleets ? config->n_fleets : 1, sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < config->n_fleets; i++) {
		struct fleet_state *old = r->fleets ? rec_fleet_state(r, config->fleets[i].name) : NULL;
		if (old != NULL)
			n[i] = *old;           /* keep history, pause state */
		snprintf(n[i].name, sizeof(n[i].name), "%s", config->fleets[i].name);
		n[i].last = NULL;
	}
	free(r->fleets);
	r->fleets = n;
	r->n_fleets = config->n_fleets;
	return 0;
}

struct reconciler *reconciler_new(sd_event *event, const struct config *config,
				  struct aws_client *aws, struct redisio *redis,
				  struct ivs_metrics *metrics, bool dry_run,
				  const struct reconciler_hooks *hooks)
{
	struct reconciler *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->event = event;
	r->config = config;
	r->aws = aws;
	r->redis = redis;
	r->metrics = metrics;
	r->dry_run = dry_run;
	if (hooks != NULL)
		r->hooks = *hooks;
	srandom((unsigned)(rec_mono_us() ^ (uint64_t)getpid()));
	r->backoff = backoff_new();
	if (r->backoff == NULL || fleets_from_config(r, config) < 0 ||
	    sd_event_add_defer(event, &r->defer, on_defer, r) < 0) {
		reconciler_free(r);
		return NULL;
	}
	sd_event_source_set_description(r->defer, "reconcile-wake");
	sd_event_source_set_enabled(r->defer, SD_EVENT_OFF);
	if (sd_event_add_defer(event, &r->idle_defer, on_idle_defer, r) < 0) {
		reconciler_free(r);
		return NULL;
	}
	sd_event_source_set_description(r->idle_defer, "reconcile-idle");
	sd_event_source_set_enabled(r->idle_defer, SD_EVENT_OFF);
	return r;
}

void reconciler_free(struct reconciler *r)
{
	if (r == NULL)
		return;
	sd_event_source_disable_unref(r->timer);
	sd_event_source_disable_unref(r->defer);
	sd_event_source_disable_unref(r->debounce);
	sd_event_source_disable_unref(r->idle_defer);
	/* A pass still running here means the AWS client was cancelled first; its ops are gone. */
	pass_free(r->current);
	pass_free(r->last);
	sweep_free(r->sweep);
	backoff_free(r->backoff);
	free(r->fleets);
	free(r->foreign_warned);
	free(r);
}

int reconciler_set_config(struct reconciler *r, const struct config *config)
{
	/* The running pass keeps pointers into the old config: callers swap only when idle. */
	int rc = fleets_from_config(r, config);
	if (rc < 0)
		return rc;
	r->config = config;
	sweep_forget(r);
	/* The last observation refers to the old config's fleets: drop it. */
	pass_free(r->last);
	r->last = NULL;
	reconciler_wake(r, "reload");
	return 0;
}

bool reconciler_has_fleet(const struct reconciler *r, const char *fleet)
{
	return rec_fleet_state(r, fleet) != NULL;
}

int reconciler_pause(struct reconciler *r, const char *fleet, bool paused)
{
	bool found = false;
	for (size_t i = 0; i < r->n_fleets; i++) {
		if (fleet == NULL || strcmp(r->fleets[i].name, fleet) == 0) {
			r->fleets[i].paused = paused;
			found = true;
		}
	}
	if (!found)
		return -ENOENT;
	if (!paused)
		reconciler_wake(r, "resume");
	return 0;
}

/*
 * An operator-requested drain is a draining mark plus drained_by = "operator": the planner
 * never puts such a stage back in service, creates a replacement when the fleet needs the
 * capacity, and deletes it once empty or after drain_timeout, like any drain.
 */
int reconciler_drain(struct reconciler *r, const char *stage_arn, char *err, size_t errlen)
{
	char key[KEY_MAX], by[KEY_MAX];
	bool owned = false;

	if (r->last != NULL) {
		for (size_t fi = 0; fi < r->last->n_fleets && !owned; fi++) {
			const struct obs_fleet *f = &r->last->fleets[fi];
			for (size_t i = 0; i < f->n_replicas; i++)
				if (strcmp(f->replicas[i].arn, stage_arn) == 0)
					owned = true;
		}
	}
	if (!owned) {
		snprintf(err, errlen, "%s is not a replica stage this daemon owns (origin and "
			 "unowned stages are never drained)", stage_arn);
		return -EPERM;
	}
	if (rec_stage_key(r, STORE_KEY_DRAINING, stage_arn, key, sizeof(key)) < 0 ||
	    rec_stage_key(r, STORE_KEY_DRAINED_BY, stage_arn, by, sizeof(by)) < 0) {
		snprintf(err, errlen, "stage ARN too long");
		return -EINVAL;
	}
	if (r->redis == NULL || !redisio_connected(r->redis)) {
		snprintf(err, errlen, "redis is not connected; try again");
		return -EAGAIN;
	}
	if (rec_write_begin(r, false, key))
		rec_write_sent(r, false, key,
			       store_mark_draining_by_operator(r->redis, key, by, rec_wall_ms(),
							       rec_on_write, r));
	reconciler_wake(r, "drain");
	return 0;
}

static void on_manual_done(void *ud, const struct aws_error *err)
{
	struct reconciler *r = ud;
	r->in_flight--;
	if (err != NULL && err->kind != AWS_OK && err->kind != AWS_ERR_NOT_FOUND)
		log_event(LOG_WARNING, NULL, NULL, "manual replication request failed: %s %s",
			  aws_error_kind_name(err->kind), err->message);
	else
		log_event(LOG_NOTICE, NULL, NULL, "manual replication request done");
	reconciler_wake(r, "manual replication");
	rec_check_idle(r);
}

static const struct obs_fleet *fleet_of_origin(const struct reconciler *r, const char *origin,
					       const struct fleet_state **fs_out)
{
	for (size_t i = 0; i < r->n_fleets; i++) {
		const struct obs_fleet *f = r->fleets[i].last;
		if (f != NULL && strcmp(f->cfg->origin_stage_arn, origin) == 0) {
			*fs_out = &r->fleets[i];
			return f;
		}
	}
	return NULL;
}

int reconciler_replication(struct reconciler *r, bool start, const char *src, const char *dst,
			   const char *participant, char *err, size_t errlen)
{
	size_t i;
	int rc;

	if (!store_is_stage_arn(src, strlen(src)) || !store_is_stage_arn(dst, strlen(dst)) ||
	    strlen(participant) > IVS_PARTICIPANT_ID_MAX || participant[0] == '\0') {
		snprintf(err, errlen, "expected SRC_STAGE_ARN DST_STAGE_ARN PARTICIPANT_ID");
		return -EINVAL;
	}
	for (i = 0; i < r->n_manual; i++)
		if (strcmp(r->manual[i].src, src) == 0 && strcmp(r->manual[i].dst, dst) == 0 &&
		    strcmp(r->manual[i].participant, participant) == 0)
			break;
	if (start && r->last != NULL) {
		for (size_t k = 0; k < r->last->n_foreign; k++) {
			if (strcmp(r->last->foreign[k].arn, dst) == 0) {
				snprintf(err, errlen, "%s is managed by another deployment; it is never "
					 "replicated into", dst);
				return -EPERM;
			}
		}
	}
	if (start) {
		if (i == r->n_manual) {
			if (r->n_manual == MAX_MANUAL) {
				snprintf(err, errlen, "too many manual replications (%d)", MAX_MANUAL);
				return -ENOSPC;
			}
			snprintf(r->manual[i].src, sizeof(r->manual[i].src), "%s", src);
			snprintf(r->manual[i].dst, sizeof(r->manual[i].dst), "%s", dst);
			snprintf(r->manual[i].participant, sizeof(r->manual[i].participant), "%s", participant);
			r->n_manual++;
		}
		r->in_flight++;
		rc = ivs_start_participant_replication(r->aws, src, dst, participant, 0, NULL, 0,
						       on_manual_done, r);
	} else {
		/* Refuse to undo what the controller wants, unless the fleet is paused. */
		const struct fleet_state *fs = NULL;
		const struct obs_fleet *f = fleet_of_origin(r, src, &fs);
		if (i == r->n_manual && f != NULL && !fs->paused) {
			for (size_t s = 0; s < f->n_replicas; s++) {
				if (strcmp(f->replicas[s].arn, dst) == 0 && !f->replicas[s].draining) {
					snprintf(err, errlen, "fleet %s feeds %s by design; pause the fleet "
						 "first (pause %s) or drain the stage", f->cfg->name, dst,
						 f->cfg->name);
					return -EPERM;
				}
			}
		}
		if (i < r->n_manual)
			r->manual[i] = r->manual[--r->n_manual];
		r->in_flight++;
		rc = ivs_stop_participant_replication(r->aws, src, dst, participant, on_manual_done, r);
	}
	if (rc < 0) {
		r->in_flight--;
		rec_check_idle(r);
		snprintf(err, errlen, "could not queue the request: %s", strerror(-rc));
		return rc;
	}
	return 0;
}

