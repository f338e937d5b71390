/*
 * reconcile_internal.h — what the reconciler's files share: the observation of a pass, the
 * long-lived per-fleet state, and the phase entry points. Not for use outside controller/
 * reconcile.c, observe.c, act.c and views.c.
 *
 *   reconcile.c  the pass state machine (rec_op_new/rec_op_done → each fleet's phases → record), wake-ups,
 *                life cycle, admin steering, and the planner's input;
 *   observe.c    IVS and Redis reads into struct pass;
 *   act.c        executing plan actions (with backoff) and recording the pass;
 *   views.c      admin JSON views and the status line.
 */
#ifndef IVS_RECONCILE_INTERNAL_H
#define IVS_RECONCILE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ivs.h"
#include "ownership.h"
#include "plan.h"
#include "policy.h"
#include "reconcile.h"
#include "store_parse.h"

#define MAX_BACKOFF_ITEMS 1024
#define MAX_MANUAL        64
#define KEY_MAX           CONFIG_KEY_MAX

enum fleet_phase { FLEET_OBSERVING, FLEET_ACTING, FLEET_DELETING, FLEET_DONE };

/* ---- observation of one pass ------------------------------------------------------------ */

struct obs_host {
	char participant_id[IVS_PARTICIPANT_ID_MAX + 1];
	char user_id[IVS_USER_ID_MAX + 1];
	bool replicas_ok;
	struct plan_replication *replications;  /* destinations point into dest[] */
	char (*dest)[IVS_ARN_MAX + 1];
	size_t n_replications;
};

struct obs_stage {
	char arn[IVS_ARN_MAX + 1];
	char name[IVS_STAGE_NAME_MAX + 1];
	int64_t created_ms;
	bool viewers_known;
	uint64_t viewers;
	bool draining;
	int64_t draining_since_ms;
	bool operator_drain;                     /* drained_by "operator": never put back */
	bool fed_this_pass;                      /* a StartParticipantReplication into it succeeded */
	bool adopted;                            /* 0.1-style, adopted this pass: tag it (leader) */
};

/* A managed stage that is not ours (ownership.h): shown, never touched. */
struct obs_foreign {
	char arn[IVS_ARN_MAX + 1];
	char name[IVS_STAGE_NAME_MAX + 1];
	char fleet[129];                         /* its tags (cut at 128 bytes), "" when absent */
	char origin[129];
	char owner[129];
	bool legacy;                             /* 0.1-style, no parentStage record naming our origin */
};

struct obs_fleet {
	const struct config_fleet *cfg;
	bool origin_seen;
	char origin_session[IVS_SESSION_ID_MAX + 1];
	struct obs_stage origin;                 /* viewers of the origin */
	struct obs_stage *replicas;
	size_t n_replicas, cap_replicas;
	struct obs_host *hosts;
	size_t n_hosts;
	bool hosts_ok;
	bool viewers_ok;
	bool redis_ok;
	enum plan_override override;
	uint32_t override_stages;
	char override_error[STORE_ERR_MAX];
	bool publisher_present;
	struct store_publisher publisher;
	char publisher_error[STORE_ERR_MAX];
	char viewers_error[STORE_ERR_MAX];
	/*
	 * Each fleet moves on by itself: planned and acted on as soon as its own reads are in,
	 * its deletes once its own actions (the stops) have answered. outstanding counts its
	 * callbacks in flight plus holds (see rec_fleet_release).
	 */
	unsigned outstanding;
	int phase;                               /* FLEET_OBSERVING .. FLEET_DONE */
	/*
	 * What is kept of the plan (a struct plan_output is 20 KB, mostly unused: one per fleet
	 * per pass made up most of the daemon's memory). Valid when planned; the arrays are
	 * right-sized heap copies (NULL when empty) whose strings point into this observation.
	 * open[] is only needed until the pass is recorded and is freed then.
	 */
	bool planned;
	struct plan_summary summary;
	struct plan_action *actions;
	size_t n_actions;
	struct plan_open_stage *open;
	size_t n_open;
	unsigned actions_failed;
	unsigned not_publishing;
	/* Stages created by this pass: open to viewers at once, like the observed serving ones. */
	char (*created)[IVS_ARN_MAX + 1];        /* heap, n_created entries */
	size_t n_created;
	/* 0.1-style stages (no origin tag) naming this fleet: adopted once their stage:{arn}
	 * record names our origin as parentStage. Until then observe_fleet waits. */
	struct obs_stage *legacy;
	size_t n_legacy, legacy_pending;
	bool legacy_unknown;                     /* a candidate could not be checked: the stage
						    list is incomplete for this fleet */
};

struct pass {
	uint64_t id;
	int64_t started_ms;                      /* wall clock */
	uint64_t started_us;                     /* monotonic */
	bool stages_ok;
	char stages_error[300];
	struct obs_foreign *foreign;             /* foreign-managed stages seen by ListStages */
	size_t n_foreign;
	struct obs_fleet *fleets;
	size_t n_fleets;
	unsigned outstanding;                    /* every callback and hold, fleets' included */
	size_t fleets_done;
	bool ended;                              /* recorded or abandoned */
	unsigned reads_failed, actions_failed, actions_done;
	/* Stops IVS confirmed this pass; a delete needs every stop into its stage in here. */
	struct pass_stop_done {
		char arn[IVS_ARN_MAX + 1];
		char participant[IVS_PARTICIPANT_ID_MAX + 1];
	} *stops_done;
	size_t n_stops_done;
	int64_t finished_ms;
	uint64_t duration_us;
	bool ok;
};

/* ---- long-lived per-fleet state --------------------------------------------------------- */

struct fleet_state {
	char name[65];
	struct policy_state policy;
	bool paused;
	bool capped_reported;
	bool no_host_reported;
	bool fail_static_reported;
	/* Bad Redis values last reported ("" = none): warned when they appear or change. */
	char override_reported[STORE_ERR_MAX];
	char publisher_reported[STORE_ERR_MAX];
	char viewers_reported[STORE_ERR_MAX];
	struct obs_fleet *last;                  /* points into r->last (NULL before first pass) */
};

struct backoff_item {
	char key[2 * IVS_ARN_MAX + IVS_PARTICIPANT_ID_MAX + 16];
	unsigned failures;
	int64_t next_ms;
	bool warned;
};

struct manual_replication {
	char src[IVS_ARN_MAX + 1];
	char dst[IVS_ARN_MAX + 1];
	char participant[IVS_PARTICIPANT_ID_MAX + 1];
};

struct reconciler {
	sd_event *event;
	const struct config *config;
	struct aws_client *aws;
	struct redisio *redis;
	struct ivs_metrics *metrics;
	bool dry_run;
	struct reconciler_hooks hooks;
	struct leader *leader;                   /* NULL: ha off, always the leader */

	struct fleet_state *fleets;
	size_t n_fleets;
	struct pass *current;                    /* running pass or NULL */
	struct pass *last;                       /* last recorded pass or NULL */
	uint64_t passes;
	uint64_t next_pass_id;
	bool wake_pending;
	bool stopping;
	bool redis_up;
	sd_event_source *timer;
	sd_event_source *defer;
	sd_event_source *debounce;
	sd_event_source *idle_defer;             /* runs hooks.idle from the loop */
	uint64_t last_pass_start_us;
	struct backoff_item backoff[MAX_BACKOFF_ITEMS];
	size_t n_backoff;
	struct manual_replication manual[MAX_MANUAL];
	size_t n_manual;
	int64_t last_success_ms;
	uint64_t in_flight;                      /* callbacks owed to us (AWS + Redis) */
	unsigned record_writes;                  /* record-phase Redis writes not yet answered */
	bool hook_pending;                       /* pass_done waits for those writes */
	bool hook_ok;
	uint64_t stage_seq;                      /* makes stage names unique within a millisecond */
	/* Foreign-managed stages already warned about (one warning each). */
	char (*foreign_warned)[IVS_ARN_MAX + 1];
	size_t n_foreign_warned;
};

/* Each outstanding callback carries one of these so a late callback finds its pass. */
struct op {
	struct reconciler *r;
	struct pass *pass;
	size_t fleet;
	size_t index;                            /* host / action index */
	struct plan_action action;               /* copy; strings point into the pass */
	char created_arn[IVS_ARN_MAX + 1];
};

struct plan_scratch {
	struct plan_replica_stage replicas[PLAN_MAX_REPLICA_STAGES];
	struct plan_host hosts[PLAN_MAX_HOSTS];
	struct plan_manual_replication manual[MAX_MANUAL];
};

/* ---- shared helpers (reconcile.c) -------------------------------------------------------- */

int64_t rec_wall_ms(void);
uint64_t rec_mono_us(void);
void rec_iso_time(int64_t ms, char *buf, size_t len);
struct fleet_state *rec_fleet_state(const struct reconciler *r, const char *name);
size_t rec_fleet_index(const struct reconciler *r, const char *name);
/* Full Redis key: prefix + what + arn + suffix. 0 or -ENAMETOOLONG. */
int rec_stage_key(const struct reconciler *r, const char *what, const char *arn,
		  const char *suffix, char *out, size_t len);
/* The one "may I mutate now?" check (dry run, stopping, the leader lease, pause). */
bool rec_may_mutate(const struct reconciler *r, const struct fleet_state *fs);
/* May this daemon write its Redis records now? Not in dry run, only while leading. */
bool rec_may_write(const struct reconciler *r);
void rec_pass_free(struct pass *p);
/*
 * One outstanding callback of pass p for fleet (SIZE_MAX: the pass's own ListStages);
 * rec_op_done frees it and may advance the fleet and end the pass (which may free p: nothing
 * may touch p after it).
 */
struct op *rec_op_new(struct reconciler *r, struct pass *p, size_t fleet);
void rec_op_done(struct op *op);
/*
 * A hold keeps a fleet in its phase while its work is being issued (rec_pass_begin holds every
 * fleet until ListStages has answered and its reads are sent). Releasing the last one moves the
 * fleet on; the pass cannot end inside a release made while a pass-level op is outstanding.
 */
void rec_fleet_release(struct reconciler *r, struct pass *p, size_t fleet);
/* After anything that may have made the reconciler idle: schedules hooks.idle if it is. */
void rec_check_idle(struct reconciler *r);
void rec_plan_input_build(const struct reconciler *r, const struct pass *p,
			  const struct obs_fleet *f, struct plan_scratch *s, struct plan_input *in);

/* ---- phases ------------------------------------------------------------------------------ */

/* observe.c: a new pass, observing; it advances itself through rec_op_done. */
void rec_pass_begin(struct reconciler *r);
/* act.c: one fleet's plan and actions, then its deletes; the record of the whole pass. */
void rec_fleet_act(struct reconciler *r, struct pass *p, size_t fleet);
void rec_fleet_deletes(struct reconciler *r, struct pass *p, size_t fleet);
void rec_pass_record(struct reconciler *r, struct pass *p);
/*
 * Redis writes through common/store.c: if (rec_write_begin(r, record, key))
 * rec_write_sent(r, record, key, store_xxx(..., record ? <record cb> : rec_on_write, r)).
 * begin is false when nothing is to be written (dry run, no Redis, Redis down).
 */
bool rec_write_begin(struct reconciler *r, bool record, const char *key);
void rec_write_sent(struct reconciler *r, bool record, const char *key, int rc);
void rec_on_write(void *ud, int err, const char *error);
void rec_forget_stage(struct reconciler *r, const char *arn);

#endif
