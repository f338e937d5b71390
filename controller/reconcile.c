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
 * leader whose renew deadline passed (a pause, Redis unreachable) starts nothing more. Nothing
 * is mutated before the admin state kept in Redis has been read once: a fleet paused before a
 * restart stays untouched until the daemon knows it is paused.
 */
bool rec_may_mutate(const struct reconciler *r, const struct fleet_state *fs)
{
	return !r->dry_run && !r->stopping && r->admin_loaded && leader_may_mutate(r->leader) &&
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

static void count_wake(struct reconciler *r, const char *reason);

static uint64_t jittered_interval_us(const struct reconciler *r)
{
	uint64_t base = r->config->reconcile.resync_interval_ms * 1000u;
	double jitter = ((double)random() / (double)RAND_MAX) * 0.2 - 0.1;   /* ±10 % */
	return (uint64_t)((double)base * (1.0 + jitter));
}

/*
 * The resync's real period. Each round reads, per operation, one ListParticipants per fleet,
 * one ListParticipantReplicas per host and the ListStages pages, at resync_share x max_tps
 * per operation: the busiest operation sets the pace. Hosts come from the last observation
 * (1 per fleet before the first).
 */
static void resync_period_compute(struct reconciler *r, unsigned pages)
{
	const struct config *c = r->config;
	double rate = c->aws.max_tps * c->aws.resync_share;
	size_t hosts = 0, busiest;
	uint64_t period_ms;

	for (size_t i = 0; i < r->n_fleets; i++)
		hosts += r->fleets[i].last != NULL ? r->fleets[i].last->n_hosts : 1;
	busiest = r->n_fleets;
	if (hosts > busiest)
		busiest = hosts;
	if (pages > busiest)
		busiest = pages;
	period_ms = (uint64_t)((double)busiest * 1000.0 / rate + 0.5);
	r->resync_calls_per_s = rate;
	r->resync_period_ms = period_ms > c->reconcile.resync_interval_ms
				      ? period_ms : c->reconcile.resync_interval_ms;
	if (r->metrics != NULL)
		metric_set(r->metrics->resync_period, NULL, (double)r->resync_period_ms / 1000.0);
	if (period_ms > c->reconcile.resync_interval_ms &&
	    period_ms != r->resync_period_logged_ms) {
		r->resync_period_logged_ms = period_ms;
		log_event(LOG_NOTICE, NULL, NULL,
			  "resync period %g s: %zu fleets at %g observation calls/s (resync_interval "
			  "%g s; raise aws.max_tps or aws.resync_share, or lengthen the interval, to "
			  "visit every fleet within it)", (double)period_ms / 1000.0, r->n_fleets, rate,
			  (double)c->reconcile.resync_interval_ms / 1000.0);
	} else if (period_ms <= c->reconcile.resync_interval_ms) {
		r->resync_period_logged_ms = 0;
	}
}

/*
 * The walk's pace: a fleet every max(1, hosts) / rate seconds (its reads at the resync's
 * rate), and no faster than resync_interval spread over the fleets, so the round is a steady
 * trickle rather than a burst.
 */
static uint64_t walk_gap_us(const struct reconciler *r, const struct pass *p, size_t fi)
{
	const struct fleet_state *fs = &r->fleets[p->fleets[fi].index];
	size_t calls = fs->last != NULL && fs->last->n_hosts > 1 ? fs->last->n_hosts : 1;
	double rate = r->config->aws.max_tps * r->config->aws.resync_share;
	uint64_t pace = (uint64_t)((double)calls * 1e6 / rate);
	uint64_t spread = r->config->reconcile.resync_interval_ms * 1000u /
			  (r->n_fleets ? r->n_fleets : 1);
	return pace > spread ? pace : spread;
}

static int on_walk_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct reconciler *r = ud;
	struct pass *p = r->resync;

	(void)s;
	(void)usec;
	/* pass_walk_step may end p: schedule only while it is still the walk */
	if (p != NULL && pass_walk_step(r, p) && r->resync == p)
		rec_walk_schedule(r, p);
	return 0;
}

void rec_walk_schedule(struct reconciler *r, struct pass *p)
{
	uint64_t gap;

	if (p->walk_next == 0) {
		/* the round's first fleet goes at once */
		gap = 0;
	} else {
		gap = walk_gap_us(r, p, p->walk_next - 1);
	}
	if (r->walk_timer == NULL) {
		if (sd_event_add_time_relative(r->event, &r->walk_timer, CLOCK_MONOTONIC, gap, 1000,
					       on_walk_timer, r) < 0) {
			pass_walk_abandon(r, p);
			return;
		}
		sd_event_source_set_description(r->walk_timer, "resync-walk");
	} else {
		sd_event_source_set_time_relative(r->walk_timer, gap);
		sd_event_source_set_enabled(r->walk_timer, SD_EVENT_ONESHOT);
	}
}

void rec_resync_ended(struct reconciler *r, struct pass *p)
{
	if (r->walk_timer != NULL)
		sd_event_source_set_enabled(r->walk_timer, SD_EVENT_OFF);
	r->resync_rounds++;
	resync_period_compute(r, p->stage_pages);
}

void rec_stages_changed(struct reconciler *r, size_t fleet)
{
	if (fleet < r->n_fleets)
		r->fleets[fleet].stages_changed_us = rec_mono_us();
}

static int on_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct reconciler *r = ud;
	(void)usec;
	sd_event_source_set_time_relative(s, jittered_interval_us(r));
	sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	count_wake(r, "resync");
	/* A round still walking: the next starts when it ends (back to back: the real period). */
	r->resync_due = true;
	sd_event_source_set_enabled(r->defer, SD_EVENT_ONESHOT);
	return 0;
}

/*
 * Start what is due: one targeted pass over every woken fleet that no pass holds (the others
 * follow when theirs ends), and the resync walk over every other fleet when its time came.
 */
static int on_defer(sd_event_source *s, void *ud)
{
	struct reconciler *r = ud;
	bool *want;
	size_t n = 0;

	(void)s;
	if (r->stopping || r->held || r->n_fleets == 0)
		return 0;
	/* --once / --dry-run: the first pass only */
	if (r->one_pass && (r->passes > 0 || r->running != NULL))
		return 0;
	pass_follow_up(r);                      /* may set fleets' wake: before they are read */
	want = calloc(r->n_fleets, sizeof(*want));
	if (want == NULL)
		return 0;
	for (size_t i = 0; i < r->n_fleets; i++) {
		struct fleet_state *fs = &r->fleets[i];
		want[i] = fs->wake && fs->busy == NULL;
		n += want[i];
	}
	if (n > 0 && pass_begin(r, PASS_TARGETED, want))
		for (size_t i = 0; i < r->n_fleets; i++)
			if (want[i])
				r->fleets[i].wake = false;
	if (r->resync_due && r->resync == NULL) {
		for (size_t i = 0; i < r->n_fleets; i++)
			want[i] = true;                 /* pass_begin leaves out the busy ones */
		/* every fleet in a pass: the round begins when one ends (pass_end defers) */
		if (pass_begin(r, PASS_RESYNC, want))
			r->resync_due = false;
	}
	free(want);
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
	{ "backoff", "backoff" },                  /* a failed action may be retried */
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

/*
 * A pass for fleet i is due. If the resync holds the fleet without having read it yet, the
 * fleet leaves the walk (its targeted pass goes now); if a pass is reading or acting on it,
 * that pass's calls for it go first and exactly one more pass follows it; a targeted pass
 * that is still listing the stages reads the fleet after the change anyway.
 */
static void wake_fleet(struct reconciler *r, size_t i)
{
	struct fleet_state *fs = &r->fleets[i];

	/* A targeted pass that has not read the fleet yet will see the change: nothing more. */
	if (fs->busy != NULL && fs->busy->kind == PASS_TARGETED &&
	    !pass_fleet_reached(fs->busy, i))
		return;
	fs->wake = true;
	if (fs->busy != NULL && fs->busy->kind == PASS_RESYNC)
		(void)pass_take_over(r, fs->busy, i);
	if (fs->busy == NULL)
		sd_event_source_set_enabled(r->defer, SD_EVENT_ONESHOT);
}

static void wake(struct reconciler *r, size_t fleet, const char *reason)
{
	log_debug("wake: %s%s%s", reason ? reason : "?", fleet < r->n_fleets ? " for " : "",
		  fleet < r->n_fleets ? r->fleets[fleet].name : "");
	for (size_t i = 0; i < r->n_fleets; i++)
		if (fleet >= r->n_fleets || i == fleet)
			wake_fleet(r, i);
}

void reconciler_wake(struct reconciler *r, const char *reason)
{
	if (r->stopping)
		return;
	count_wake(r, reason);
	wake(r, SIZE_MAX, reason);
}

int reconciler_wake_fleet(struct reconciler *r, const char *fleet, const char *reason)
{
	size_t i;

	if (fleet == NULL || fleet[0] == '\0') {
		reconciler_wake(r, reason);
		return 0;
	}
	i = rec_fleet_index(r, fleet);
	if (i == SIZE_MAX)
		return -ENOENT;
	if (r->stopping)
		return 0;
	count_wake(r, reason);
	wake(r, i, reason);
	return 0;
}

static void backoff_arm(struct reconciler *r)
{
	int64_t next = 0, now = rec_wall_ms();

	for (size_t i = 0; i < r->n_fleets; i++)
		if (r->fleets[i].backoff_wake_ms > 0 &&
		    (next == 0 || r->fleets[i].backoff_wake_ms < next))
			next = r->fleets[i].backoff_wake_ms;
	if (r->backoff_timer == NULL || next == 0) {
		if (r->backoff_timer != NULL)
			sd_event_source_set_enabled(r->backoff_timer, SD_EVENT_OFF);
		return;
	}
	sd_event_source_set_time_relative(r->backoff_timer,
					  next > now ? (uint64_t)(next - now) * 1000u : 1);
	sd_event_source_set_enabled(r->backoff_timer, SD_EVENT_ONESHOT);
}

static int on_backoff_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct reconciler *r = ud;
	int64_t now = rec_wall_ms();

	(void)s;
	(void)usec;
	for (size_t i = 0; i < r->n_fleets; i++) {
		struct fleet_state *fs = &r->fleets[i];
		if (fs->backoff_wake_ms > 0 && fs->backoff_wake_ms <= now) {
			fs->backoff_wake_ms = 0;
			if (!r->stopping) {
				count_wake(r, "backoff");
				wake(r, i, "backoff");
			}
		}
	}
	backoff_arm(r);
	return 0;
}

void rec_backoff_wake(struct reconciler *r, size_t fleet, int64_t at_ms)
{
	struct fleet_state *fs;

	if (fleet >= r->n_fleets || at_ms <= 0 || r->stopping)
		return;
	fs = &r->fleets[fleet];
	if (fs->backoff_wake_ms == 0 || at_ms < fs->backoff_wake_ms)
		fs->backoff_wake_ms = at_ms;
	if (r->backoff_timer == NULL) {
		if (sd_event_add_time_relative(r->event, &r->backoff_timer, CLOCK_MONOTONIC, 1, 1000,
					       on_backoff_timer, r) < 0)
			return;
		sd_event_source_set_description(r->backoff_timer, "action-backoff");
	}
	backoff_arm(r);
}

static int on_debounce(sd_event_source *s, uint64_t usec, void *ud)
{
	struct reconciler *r = ud;
	(void)s; (void)usec;
	for (size_t i = 0; i < r->n_fleets; i++)
		if (r->fleets[i].wake_debounced) {
			r->fleets[i].wake_debounced = false;
			wake(r, i, "keyspace");      /* counted when the change arrived */
		}
	return 0;
}

#define DEBOUNCE_US 1000000u

/* Keyspace changes: at most one targeted pass per second, over every fleet changed since. */
static void debounce_fleet(struct reconciler *r, size_t fleet, const char *reason);

void reconciler_wake_debounced(struct reconciler *r, size_t fleet, const char *reason)
{
	if (r->stopping)
		return;
	count_wake(r, "keyspace");
	debounce_fleet(r, fleet, reason);
}

void rec_wake_soon(struct reconciler *r, size_t fleet)
{
	if (!r->stopping && fleet < r->n_fleets)
		debounce_fleet(r, fleet, "scale-up step");
}

static void debounce_fleet(struct reconciler *r, size_t fleet, const char *reason)
{
	uint64_t now = rec_mono_us(), due = r->last_pass_start_us + DEBOUNCE_US;
	int enabled = SD_EVENT_OFF;

	if (now >= due && (r->debounce == NULL ||
			   (sd_event_source_get_enabled(r->debounce, &enabled) >= 0 &&
			    enabled == SD_EVENT_OFF))) {
		wake(r, fleet, reason);
		return;
	}
	for (size_t i = 0; i < r->n_fleets; i++)
		if (fleet >= r->n_fleets || i == fleet)
			r->fleets[i].wake_debounced = true;
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
	resync_period_compute(r, 1);
	reconciler_wake(r, "start");
	return 0;
}

void reconciler_hold(struct reconciler *r)
{
	r->held = true;
	if (r->walk_timer != NULL)
		sd_event_source_set_enabled(r->walk_timer, SD_EVENT_OFF);
	if (r->resync != NULL)
		pass_walk_abandon(r, r->resync);        /* may end it */
}

bool reconciler_idle(const struct reconciler *r)
{
	return r->running == NULL && r->in_flight == 0;
}

bool reconciler_stop(struct reconciler *r)
{
	r->stopping = true;
	if (r->timer != NULL)
		sd_event_source_set_enabled(r->timer, SD_EVENT_OFF);
	if (r->walk_timer != NULL)
		sd_event_source_set_enabled(r->walk_timer, SD_EVENT_OFF);
	if (r->backoff_timer != NULL)
		sd_event_source_set_enabled(r->backoff_timer, SD_EVENT_OFF);
	if (r->resync != NULL)
		pass_walk_abandon(r, r->resync);        /* may end it */
	return reconciler_idle(r);
}

static size_t manual_find(const struct reconciler *r, const char *src, const char *dst,
			  const char *participant);

void reconciler_set_region(struct reconciler *r, const char *region)
{
	snprintf(r->region, sizeof(r->region), "%s", region != NULL ? region : "");
}

/* ---- admin state kept in Redis --------------------------------------------------------- */

static void admin_read_done(struct reconciler *r)
{
	if (--r->admin_reads > 0)
		return;
	r->in_flight--;
	if (!r->admin_read_failed) {
		r->admin_loaded = true;
		size_t paused = 0;
		for (size_t i = 0; i < r->n_fleets; i++)
			paused += r->fleets[i].paused;
		log_info("admin state read from redis: %zu paused fleet(s), %zu manual "
			 "replication(s)", paused, r->n_manual);
		/* Write back the merge (and anything changed while it was read). */
		rec_admin_persist(r);
		/* A pass that ran before could not act; not counted: it is the connection's wake. */
		if (!r->stopping)
			wake(r, SIZE_MAX, "admin state loaded");
	}
	rec_check_idle(r);
}

/*
 * A lost connection leaves the admin state unread (the next connection reads it again, and
 * nothing is mutated meanwhile); a value Redis holds but we cannot use (wrong type) is
 * reported and replaced by the state in memory.
 */
static void admin_read_error(struct reconciler *r, const char *what, int err, const char *error)
{
	if (err == 0)
		return;
	if (err == -EIO) {
		log_event(LOG_WARNING, NULL, NULL, "the %s kept in redis are unusable (%s); "
			  "ignored and rewritten", what, error != NULL ? error : "?");
		return;
	}
	log_event(LOG_WARNING, NULL, NULL, "cannot read the %s from redis: %s; nothing is "
		  "changed until they are read", what, error != NULL ? error : strerror(-err));
	r->admin_read_failed = true;
}

static void on_paused_read(void *ud, int err, const char *error, size_t n,
			   const char *const *members, const size_t *lens)
{
	struct reconciler *r = ud;

	admin_read_error(r, "paused fleets", err, error);
	for (size_t i = 0; i < n; i++) {
		bool known = false;
		for (size_t f = 0; f < r->n_fleets; f++) {
			if (strlen(r->fleets[f].name) == lens[i] &&
			    memcmp(r->fleets[f].name, members[i], lens[i]) == 0) {
				if (!r->fleets[f].paused)
					log_event(LOG_NOTICE, NULL, LOG_FIELDS("IVS_FLEET", r->fleets[f].name),
						  "fleet %s stays paused (paused before the restart)",
						  r->fleets[f].name);
				r->fleets[f].paused = true;
				known = true;
			}
		}
		if (!known)
			log_debug("paused fleet \"%.*s\" is not configured; forgotten", (int)lens[i],
				  members[i]);
	}
	admin_read_done(r);
}

static void on_manual_read(void *ud, int err, const char *error, size_t n,
			   const char *const *members, const size_t *lens)
{
	struct reconciler *r = ud;
	char why[STORE_ERR_MAX];

	admin_read_error(r, "manual replications", err, error);
	for (size_t i = 0; i < n; i++) {
		struct store_manual_replication m;
		if (store_parse_manual(members[i], lens[i], &m, why, sizeof(why)) < 0) {
			log_event(LOG_WARNING, NULL, NULL, "manual replication \"%.*s\" in redis "
				  "ignored: %s", (int)(lens[i] > 300 ? 300 : lens[i]), members[i], why);
			continue;
		}
		if (manual_find(r, m.src, m.dst, m.participant) < r->n_manual)
			continue;
		if (r->n_manual == MAX_MANUAL) {
			log_event(LOG_WARNING, NULL, NULL, "manual replication into %s in redis ignored: "
				  "%d manual replications already", m.dst, MAX_MANUAL);
			continue;
		}
		struct manual_replication *to = &r->manual[r->n_manual++];
		snprintf(to->src, sizeof(to->src), "%s", m.src);
		snprintf(to->dst, sizeof(to->dst), "%s", m.dst);
		snprintf(to->participant, sizeof(to->participant), "%s", m.participant);
	}
	admin_read_done(r);
}

/* On every (re)connection: read the admin state the first time, write it back afterwards. */
static void admin_state_sync(struct reconciler *r)
{
	char pkey[KEY_MAX], mkey[KEY_MAX];
	int rc;

	if (r->redis == NULL || r->admin_reads > 0)
		return;
	if (r->admin_loaded) {
		rec_admin_persist(r);
		return;
	}
	if (store_admin_key(pkey, sizeof(pkey), r->config->redis.key_prefix, STORE_KEY_PAUSED) < 0 ||
	    store_admin_key(mkey, sizeof(mkey), r->config->redis.key_prefix, STORE_KEY_MANUAL) < 0)
		return;
	r->admin_read_failed = false;
	r->admin_reads = 2;
	r->in_flight++;
	rc = store_read_set(r->redis, pkey, on_paused_read, r);
	if (rc < 0) {
		r->admin_read_failed = true;
		r->admin_reads--;
	}
	rc = store_read_set(r->redis, mkey, on_manual_read, r);
	if (rc < 0) {
		r->admin_read_failed = true;
		if (--r->admin_reads == 0) {
			r->in_flight--;
			rec_check_idle(r);
		}
	}
}

/*
 * This daemon has just become the leader: the pauses and manual replications it knows were
 * read when it started, and the leader before it may have changed them since (a standby
 * changes none: its mutating commands are refused). Read them again, replacing what is in
 * memory; nothing is mutated until they are in.
 */
void reconciler_reread_admin_state(struct reconciler *r)
{
	if (r->admin_reads > 0)
		return;                         /* a read is under way: it brings the current state */
	for (size_t i = 0; i < r->n_fleets; i++)
		r->fleets[i].paused = false;
	r->n_manual = 0;
	r->admin_loaded = false;
	if (r->redis_up)
		admin_state_sync(r);
}

void reconciler_set_redis_up(struct reconciler *r, bool up)
{
	r->redis_up = up;
	if (r->metrics != NULL)
		metric_set(r->metrics->redis_up, NULL, up ? 1 : 0);
	if (up)
		admin_state_sync(r);
}

/* ---- life cycle ---------------------------------------------------------------------------- */

/* Let go of every fleet's last observation and of the last pass. */
static void forget_observations(struct reconciler *r)
{
	for (size_t i = 0; i < r->n_fleets; i++) {
		if (r->fleets[i].last != NULL)
			pass_unref(r->fleets[i].last->pass);
		r->fleets[i].last = NULL;
	}
	pass_unref(r->last);
	r->last = NULL;
}

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
		n[i].busy = NULL;
	}
	free(r->fleets);
	r->fleets = n;
	r->n_fleets = config->n_fleets;
	r->n_follow_up = 0;
	for (size_t i = 0; i < r->n_fleets; i++)
		r->n_follow_up += n[i].follow_up;
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
	sd_event_source_disable_unref(r->follow_up_timer);
	sd_event_source_disable_unref(r->idle_defer);
	sd_event_source_disable_unref(r->walk_timer);
	sd_event_source_disable_unref(r->backoff_timer);
	forget_observations(r);
	/* A pass still running here means the AWS client was cancelled first; its ops are gone. */
	while (r->running != NULL) {
		struct pass *p = r->running;
		r->running = p->next_running;
		pass_unref(p);
	}
	sweep_free(r->sweep);
	backoff_free(r->backoff);
	free(r->fleets);
	free(r->foreign_warned);
	free(r);
}

int reconciler_set_config(struct reconciler *r, const struct config *config)
{
	/* The running pass keeps pointers into the old config: callers swap only when idle. The
	 * last observations refer to the old config's fleets: drop them. */
	forget_observations(r);
	int rc = fleets_from_config(r, config);
	if (rc < 0)
		return rc;
	r->config = config;
	sweep_forget(r);
	r->held = false;
	reconciler_wake(r, "reload");
	return 0;
}

bool reconciler_has_fleet(const struct reconciler *r, const char *fleet)
{
	return rec_fleet_state(r, fleet) != NULL;
}

size_t reconciler_fleet_of_stage(const struct reconciler *r, const char *arn)
{
	for (size_t i = 0; i < r->n_fleets && i < r->config->n_fleets; i++) {
		const struct obs_fleet *f = r->fleets[i].last;
		if (strcmp(r->config->fleets[i].origin_stage_arn, arn) == 0)
			return i;
		for (size_t k = 0; f != NULL && k < f->n_replicas; k++)
			if (strcmp(f->replicas[k].arn, arn) == 0)
				return i;
	}
	return SIZE_MAX;
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
	rec_admin_state_changed(r);
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

	for (size_t fi = 0; fi < r->n_fleets && !owned; fi++) {
		const struct obs_fleet *f = r->fleets[fi].last;
		for (size_t i = 0; f != NULL && i < f->n_replicas; i++)
			if (strcmp(f->replicas[i].arn, stage_arn) == 0)
				owned = true;
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

/* One manual request in flight: what to record once IVS has answered. */
struct manual_request {
	struct reconciler *r;
	bool start;
	struct manual_replication rep;
};

static size_t manual_find(const struct reconciler *r, const char *src, const char *dst,
			  const char *participant)
{
	size_t i;
	for (i = 0; i < r->n_manual; i++)
		if (strcmp(r->manual[i].src, src) == 0 && strcmp(r->manual[i].dst, dst) == 0 &&
		    strcmp(r->manual[i].participant, participant) == 0)
			break;
	return i;
}

/*
 * A manual start is recorded only once IVS accepted it: one refused ("already replicating",
 * not publishing, quota) is not the operator's, and recording it would keep the planner from
 * ever stopping a replication it owns.
 */
static void on_manual_done(void *ud, const struct aws_error *err)
{
	struct manual_request *m = ud;
	struct reconciler *r = m->r;
	const struct manual_replication *rep = &m->rep;
	bool accepted = err == NULL || err->kind == AWS_OK;

	r->in_flight--;
	if (m->start && accepted && manual_find(r, rep->src, rep->dst, rep->participant) == r->n_manual) {
		if (r->n_manual < MAX_MANUAL) {
			r->manual[r->n_manual++] = *rep;
			rec_admin_state_changed(r);
		} else {
			log_event(LOG_WARNING, NULL, NULL, "manual replication into %s started but not "
				  "recorded: %d manual replications already", rep->dst, MAX_MANUAL);
		}
	}
	if (!accepted && !(!m->start && err->kind == AWS_ERR_NOT_FOUND))
		log_event(LOG_WARNING, NULL,
			  LOG_FIELDS("IVS_STAGE_ARN", rep->dst, "IVS_PARTICIPANT_ID", rep->participant),
			  "manual replication %s refused by IVS%s: %s %s", m->start ? "start" : "stop",
			  m->start ? " (not recorded as manual)" : "",
			  aws_error_kind_name(err->kind), err->message);
	else
		log_event(LOG_NOTICE, NULL,
			  LOG_FIELDS("IVS_STAGE_ARN", rep->dst, "IVS_PARTICIPANT_ID", rep->participant),
			  "manual replication %s done", m->start ? "start" : "stop");
	free(m);
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
	struct manual_request *m;
	size_t i;
	int rc;

	if (!store_is_stage_arn(src, strlen(src)) || !store_is_stage_arn(dst, strlen(dst)) ||
	    strlen(participant) > IVS_PARTICIPANT_ID_MAX || participant[0] == '\0') {
		snprintf(err, errlen, "expected SRC_STAGE_ARN DST_STAGE_ARN PARTICIPANT_ID");
		return -EINVAL;
	}
	i = manual_find(r, src, dst, participant);
	if (start && i == r->n_manual && r->n_manual == MAX_MANUAL) {
		snprintf(err, errlen, "too many manual replications (%d)", MAX_MANUAL);
		return -ENOSPC;
	}
	if (start && r->last != NULL) {
		for (size_t k = 0; k < r->last->n_foreign; k++) {
			if (strcmp(r->last->foreign[k].arn, dst) == 0) {
				snprintf(err, errlen, "%s is managed by another deployment; it is never "
					 "replicated into", dst);
				return -EPERM;
			}
		}
	}
	if (!start) {
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
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	m->r = r;
	m->start = start;
	snprintf(m->rep.src, sizeof(m->rep.src), "%s", src);
	snprintf(m->rep.dst, sizeof(m->rep.dst), "%s", dst);
	snprintf(m->rep.participant, sizeof(m->rep.participant), "%s", participant);
	r->in_flight++;
	if (start)
		rc = ivs_start_participant_replication(r->aws, src, dst, participant, 0, NULL, 0,
						       on_manual_done, m);
	else
		rc = ivs_stop_participant_replication(r->aws, src, dst, participant, on_manual_done, m);
	if (rc < 0) {
		r->in_flight--;
		free(m);
		rec_check_idle(r);
		snprintf(err, errlen, "could not queue the request: %s", strerror(-rc));
		return rc;
	}
	/* A stop is the operator's wish from now on: the replication is no longer manual. */
	if (!start && i < r->n_manual) {
		r->manual[i] = r->manual[--r->n_manual];
		rec_admin_state_changed(r);
	}
	return 0;
}
