/*
 * reconcile_internal.h — the reconciler's long-lived state and the helpers its files share.
 * Not for use outside controller/ (reconcile.c, pass.c, observe.c, act.c, record.c, views.c).
 * The pass itself is in pass.h.
 */
#ifndef IVS_RECONCILE_INTERNAL_H
#define IVS_RECONCILE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ivs.h"
#include "ownership.h"
#include "pass.h"
#include "plan.h"
#include "policy.h"
#include "reconcile.h"
#include "store.h"
#include "store_parse.h"

#define MAX_MANUAL        64
#define KEY_MAX           CONFIG_KEY_MAX

struct fleet_state {
	char name[65];
	struct policy_state policy;
	bool paused;
	bool capped_reported;
	bool no_host_reported;
	bool fail_static_reported;
	bool origin_missing_reported;
	/*
	 * Bad Redis values last reported, as a hash of the message (0 = none): warned when they
	 * appear or change. Only a change matters, so the text is not kept (480 bytes a fleet).
	 */
	uint64_t override_reported;
	uint64_t publisher_reported;
	uint64_t viewers_reported;
	/* Its last recorded observation (in a pass it holds a reference of); NULL before one. */
	struct obs_fleet *last;
	struct pass *busy;                       /* the pass observing/acting on it, or NULL */
	bool wake;                               /* a pass for it is due (one, however many wakes) */
	bool wake_debounced;                     /* a keyspace change, due at the debounce */
	/* Monotonic time of its last CreateStage/DeleteStage answer: a listing started before
	 * it may miss that change (see pass_walk_step). */
	uint64_t stages_changed_us;
	int64_t backoff_wake_ms;                 /* wall ms: an action's backoff ends (0 = none) */
	/* A targeted pass's scale-up was cut by the step: a follow-up pass is owed (pass.c). */
	bool follow_up;
	bool follow_up_due;                      /* pass_follow_up: woken once the walk is over */
};

struct manual_replication {
	char src[IVS_ARN_MAX + 1];
	char dst[IVS_ARN_MAX + 1];
	char participant[IVS_PARTICIPANT_ID_MAX + 1];
};

#define REC_WAKE_REASONS 12
struct rec_wake_reason {
	const char *reason;                      /* as passed to reconciler_wake (NULL: any other) */
	const char *name;                        /* in the status view */
};
extern const struct rec_wake_reason rec_wake_reasons[REC_WAKE_REASONS];

struct reconciler {
	sd_event *event;
	const struct config *config;
	struct aws_client *aws;
	struct redisio *redis;
	struct ivs_metrics *metrics;
	bool dry_run;
	bool one_pass;           /* --once / --dry-run: no pass after the first */
	struct reconciler_hooks hooks;
	struct leader *leader;                   /* NULL: ha off, always the leader */

	struct fleet_state *fleets;
	size_t n_fleets;
	struct pass *running;                    /* passes running (list), targeted and resync */
	struct pass *resync;                     /* the resync walk running, or NULL */
	struct pass *last;                       /* last recorded pass or NULL */
	uint64_t passes;
	uint64_t next_pass_id;
	bool resync_due;                         /* the resync timer fired: walk when free */
	bool held;                               /* a new configuration waits: start nothing */
	sd_event_source *walk_timer;             /* paces the resync walk */
	sd_event_source *backoff_timer;          /* the earliest fleet_state.backoff_wake_ms */
	/* The resync's real period (it cannot go faster than resync_share x max_tps allows). */
	uint64_t resync_period_ms;
	uint64_t resync_period_logged_ms;
	double resync_calls_per_s;
	uint64_t resync_rounds;
	uint64_t wakes[REC_WAKE_REASONS];        /* wake-ups received, per rec_wake_reasons[] */
	bool stopping;
	bool redis_up;
	sd_event_source *timer;
	sd_event_source *defer;
	sd_event_source *debounce;
	sd_event_source *idle_defer;             /* runs hooks.idle from the loop */
	uint64_t last_pass_start_us;
	/*
	 * CreateStage calls sent and not answered yet (queued, waiting or on the wire), every pass,
	 * and fleets with follow_up set: the follow-ups begin once their pass has acted on every
	 * fleet and is held up (pass_follow_up), not only when it ends.
	 */
	unsigned creates_out;
	unsigned n_follow_up;
	sd_event_source *follow_up_timer;        /* a stall may be long enough: look again */
	struct backoff *backoff;                 /* failed actions waiting to be retried */
	struct manual_replication manual[MAX_MANUAL];
	size_t n_manual;
	int64_t last_success_ms;
	/* Idle means no pass and in_flight == 0: every AWS call and Redis write owed to us. */
	uint64_t in_flight;
	/* The pass_done hook waits for the record phase's own writes (record.c counts them). */
	unsigned record_writes;
	bool hook_pending;
	bool hook_ok;
	uint64_t stage_seq;                      /* makes stage names unique within a millisecond */
	/* Foreign-managed stages already warned about (one warning each). */
	char (*foreign_warned)[IVS_ARN_MAX + 1];
	size_t n_foreign_warned;
	struct sweep *sweep;                     /* sweep.c; NULL before the first sweep */
	/*
	 * Admin state (pauses, manual replications) kept in Redis across restarts: read once
	 * after the first connection (nothing is mutated before), written after every change
	 * and again after each reconnect (Redis may have lost it).
	 */
	bool admin_loaded;
	unsigned admin_reads;                    /* SMEMBERS still owed (0..2) */
	bool admin_read_failed;
	char region[64];                         /* the AWS region in use ("" = unknown) */
};

struct plan_scratch {
	struct plan_replica_stage replicas[PLAN_MAX_REPLICA_STAGES];
	struct plan_host hosts[PLAN_MAX_HOSTS];
	struct plan_manual_replication manual[MAX_MANUAL];
};

/* ---- reconcile.c ------------------------------------------------------------------------- */

int64_t rec_wall_ms(void);
uint64_t rec_mono_us(void);
void rec_iso_time(int64_t ms, char *buf, size_t len);
struct fleet_state *rec_fleet_state(const struct reconciler *r, const char *name);
size_t rec_fleet_index(const struct reconciler *r, const char *name);
/* The Redis key of a stage of ours (store.c spells it), under the prefix. 0 or -ENAMETOOLONG. */
int rec_stage_key(const struct reconciler *r, enum store_stage_key which, const char *arn,
		  char *out, size_t len);
/* The one "may I mutate now?" check (dry run, stopping, the leader lease, pause). */
bool rec_may_mutate(const struct reconciler *r, const struct fleet_state *fs);
/* May this daemon write its Redis records now? Not in dry run, only while leading. */
bool rec_may_write(const struct reconciler *r);
/* After anything that may have made the reconciler idle: schedules hooks.idle if it is. */
void rec_check_idle(struct reconciler *r);
/* Resync walk: arm the timer for the next fleet of p (the walk's pace); p's round ended. */
void rec_walk_schedule(struct reconciler *r, struct pass *p);
void rec_resync_ended(struct reconciler *r, struct pass *p);
/* A pass for fleet (configuration index) soon: with the others due, at most one a second. */
void rec_wake_soon(struct reconciler *r, size_t fleet);
/* An action of fleet (configuration index) may be retried at at_ms (wall): wake it then. */
void rec_backoff_wake(struct reconciler *r, size_t fleet, int64_t at_ms);
/* A CreateStage/DeleteStage of fleet (configuration index) answered. */
void rec_stages_changed(struct reconciler *r, size_t fleet);

/*
 * The fleet's origin is not among the stages IVS listed (the list was read completely): a
 * wrong ARN, account or region, or a deleted stage. Nothing is done for the fleet.
 */
static inline bool rec_origin_missing(const struct pass *p, const struct obs_fleet *f)
{
	return p != NULL && f != NULL && p->stages_ok && !f->origin_seen;
}

/* ---- act.c: the planner's input from an observation (also for the plan view) ------------- */

void rec_plan_input_build(const struct reconciler *r, const struct pass *p,
			  const struct obs_fleet *f, struct plan_scratch *s, struct plan_input *in);

/* ---- record.c: Redis writes and journald events ------------------------------------------ */

/*
 * Redis writes through common/store.c: if (rec_write_begin(r, record, key))
 * rec_write_sent(r, record, key, store_xxx(..., record ? <record cb> : rec_on_write, r)).
 * begin is false when nothing is to be written (dry run, no Redis, Redis down).
 */
bool rec_write_begin(struct reconciler *r, bool record, const char *key);
void rec_write_sent(struct reconciler *r, bool record, const char *key, int rc);
void rec_on_write(void *ud, int err, const char *error);
/* The admin state changed (pause, resume, manual replication): write it to Redis. */
void rec_admin_state_changed(struct reconciler *r);
/* Write the whole admin state to Redis now, when it has been loaded and Redis is up. */
void rec_admin_persist(struct reconciler *r);
/* DEL every key of a stage that is gone. */
void rec_forget_stage(struct reconciler *r, const char *arn);
/* The journald events of one fleet's plan (scale decisions, capped, fail static, bad values). */
void record_fleet_decisions(struct reconciler *r, struct obs_fleet *f, struct fleet_state *fs);

/* ---- sweep.c: records of vanished stages, from what IVS lists versus what Redis holds ------ */

uint64_t sweep_arn_hash(const char *arn);
void sweep_sort_hashes(uint64_t *h, size_t n);
/* After a recorded pass: maybe begin a sweep (complete listing, once per resync interval). */
void sweep_after_pass(struct reconciler *r, const struct pass *p);
/* The configuration changed: forget the candidates found so far. */
void sweep_forget(struct reconciler *r);
void sweep_free(struct sweep *s);

#endif
