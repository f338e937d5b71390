/*
 * pass.h — one reconcile pass: what it observed and decided (filled by the phase files), and
 * the machine that drives it (pass.c, its one owner). Not for use outside controller/.
 *
 * A pass begins (pass_begin), is stepped fleet by fleet as its callbacks answer, and ends
 * (recorded, or abandoned when stopping before anything was decided). Its whole bookkeeping is
 * ONE counter per fleet, obs_fleet.pending: the fleet's callbacks owed plus the hold the
 * machine takes while a phase issues its work. When it drops to zero the fleet takes its next
 * phase (observing → acting → deleting → done); when every fleet is done, and the pass's own
 * ListStages has answered, the pass ends.
 *
 * Phases (called only by pass.c; they fill or read the pass, never advance it):
 *   observe.c  observe_pass: ListStages; observe_fleet: one fleet's Redis read and hosts;
 *   act.c      act_fleet: plan the fleet and send its actions; act_fleet_deletes: its deletes;
 *   record.c   record_fleet: a fleet's Redis write-backs and metrics, once it is done;
 *              record_pass: the status hash, metrics and log line of the pass.
 */
#ifndef IVS_PASS_H
#define IVS_PASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "awserr.h"
#include "config.h"
#include "ivs.h"
#include "plan.h"
#include "store_parse.h"

struct reconciler;

enum fleet_phase { FLEET_OBSERVING, FLEET_ACTING, FLEET_DELETING, FLEET_DONE };

struct obs_host {
	char participant_id[IVS_PARTICIPANT_ID_MAX + 1];
	char *user_id;                           /* heap, its own length ("" when none) */
	bool replicas_ok;
	/* destinations point at the fleet's replica ARNs, or into dest (observe.c) */
	struct plan_replication *replications;
	char *dest;                              /* heap: the other destinations, or NULL */
	size_t n_replications;
};

/* The replications found feeding a draining stage (its REPLICA participants). */
struct obs_feeders {
	size_t n;
	struct plan_feeder items[PLAN_MAX_HOSTS];           /* point into src[] and pid[] */
	char src[PLAN_MAX_HOSTS][IVS_ARN_MAX + 1];
	char pid[PLAN_MAX_HOSTS][IVS_PARTICIPANT_ID_MAX + 1];
};

struct obs_stage {
	/*
	 * One heap block "arn\0name\0" of the stage's own length (inline buffers of the longest
	 * ARN and name took 258 of 312 bytes, for 1,000 replicas in two live observations);
	 * the origin's arn points into the configuration instead. Freed with the observation.
	 */
	const char *arn;
	const char *name;
	char session[IVS_SESSION_ID_MAX + 1];    /* active session ("" = none), from ListStages */
	int64_t created_ms;
	bool viewers_known;
	uint64_t viewers;
	bool draining;
	int64_t draining_since_ms;
	bool operator_drain;                     /* drained_by "operator": never put back */
	bool fed_this_pass;                      /* a StartParticipantReplication into it succeeded */
	bool adopted;                            /* 0.1-style, adopted this pass: tag it (leader) */
	/* Draining stages only: what still replicates into it, whatever its source's state. */
	struct obs_feeders *feeders;             /* heap; NULL = none found or not listed */
	bool feeders_unknown;                    /* the listing failed: the stage is not deleted */
};

struct obs_notes {
	bool publisher_present;
	struct store_publisher publisher;
	char override_error[STORE_ERR_MAX];
	char publisher_error[STORE_ERR_MAX];
	char viewers_error[STORE_ERR_MAX];
};

struct obs_fleet;
/* The fleet's notes, allocated on first use (NULL: out of memory, the note is lost). */
struct obs_notes *obs_notes_of(struct obs_fleet *f);

/* A managed stage that is not ours (common/ownership.h): shown, never touched. */
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
	size_t index;                            /* in the configuration (and r->fleets) */
	struct pass *pass;                       /* the pass this observation belongs to */
	/* resync walk: reads sent (false: held until the walk reaches the fleet) */
	bool reached;
	/* left this pass before its reads (a targeted pass took it over): nothing to record */
	bool skipped;
	/* a wake-up named the fleet while this pass held it: its calls go first from now on */
	bool urgent;
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
	uint32_t viewer_keys;                    /* viewer keys that exist (plan.h rule 10) */
	struct op *redis_op;                     /* queued for its turn: its Redis read's op */
	bool observing;                          /* holds one of the pass's observing slots */
	enum plan_override override;
	uint32_t override_stages;
	/*
	 * The publisher info and the bad values seen, apart (heap, NULL when there is none): they
	 * were 1 kB inline in every fleet of two live observations, mostly empty.
	 */
	struct obs_notes *notes;
	/* The machine's (pass.c): callbacks owed plus holds; the phase moves on at zero. */
	unsigned pending;
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
	 * record names our origin as parentStage. The fleet's reads wait for those answers. */
	struct obs_stage *legacy;
	size_t n_legacy, legacy_pending;
	bool legacy_unknown;                     /* a candidate could not be checked: the stage
						    list is incomplete for this fleet */
};

enum pass_kind {
	PASS_TARGETED,                           /* fleets a wake-up named: urgent calls */
	PASS_RESYNC,                             /* the background walk over every fleet */
};

struct pass {
	uint64_t id;
	enum pass_kind kind;
	/*
	 * Owners: the reconciler while the pass runs, r->last, and every fleet_state whose last
	 * observation is in here (fs->last). Freed by pass_unref at zero.
	 */
	unsigned refs;
	struct pass *next_running;               /* r->running list */
	int64_t started_ms;                      /* wall clock */
	uint64_t started_us;                     /* monotonic */
	bool stages_ok;
	bool stages_alloc_failed;                /* a page's stage could not be kept */
	char stages_error[300];
	/* the fleets of this pass only (a targeted pass has a few of the configuration's) */
	struct obs_foreign *foreign;             /* foreign-managed stages seen by ListStages */
	size_t n_foreign;
	struct obs_fleet *fleets;
	size_t n_fleets;
	size_t walk_next;                        /* resync: the next fleet the walk reaches */
	unsigned stage_pages;                    /* ListStages pages read */
	bool listing;                            /* the machine's: ListStages not answered yet */
	/* observe.c: fleets waiting for one of OBSERVE_AT_ONCE slots, and those observing */
	size_t *obs_queue, obs_head, obs_tail;
	unsigned obs_in_flight;
	bool obs_pumping;
	size_t fleets_done;
	size_t fleets_observing;                 /* fleets not planned yet (FLEET_OBSERVING) */
	uint64_t answered_us;                    /* monotonic: its last callback */
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
	/* Every ARN the complete ListStages returned, as sorted sweep_arn_hash values (sweep.c). */
	uint64_t *listed;                        /* hashes of every ARN listed (sweep.c) */
	size_t n_listed;
	struct ownership_fleet *own_fleets;       /* every configured fleet, for ownership_classify */
	bool listed_lost;                        /* no memory for them: no sweep after this pass */
};

/* Each callback owed to a pass carries one of these, so that it finds its pass and fleet. */
struct op {
	struct reconciler *r;
	struct pass *pass;
	size_t fleet;                            /* PASS_WHOLE: the pass's own ListStages */
	size_t index;                            /* host / action index */
	struct plan_action action;               /* copy; strings point into the pass */
	char created_arn[IVS_ARN_MAX + 1];
};

#define PASS_WHOLE SIZE_MAX

/* ---- the machine (pass.c) ---------------------------------------------------------------- */

/*
 * Begin a pass over the fleets with want[i] (configuration index) that no other pass holds,
 * and send its ListStages; it advances itself from then on. A targeted pass observes its
 * fleets as soon as the listing is in; a resync pass walks them (pass_walk_step). Returns
 * false when no fleet was free (nothing begun).
 */
bool pass_begin(struct reconciler *r, enum pass_kind kind, const bool *want);
/* Resync: send the reads of the next fleet of the walk. false when the walk is over. */
bool pass_walk_step(struct reconciler *r, struct pass *p);
/*
 * A wake-up named fleet (configuration index) while pass p holds it. Not reached by the walk
 * yet: it leaves p (true: free for a targeted pass now). Otherwise its calls become urgent
 * (false: a pass for it follows this one).
 */
bool pass_take_over(struct reconciler *r, struct pass *p, size_t fleet);
/* Has p sent fleet's (configuration index) reads yet? Before that, it sees any change. */
bool pass_fleet_reached(const struct pass *p, size_t fleet);
/* Stopping: the walk's unreached fleets leave their pass so it can end. */
void pass_walk_abandon(struct reconciler *r, struct pass *p);
void pass_unref(struct pass *p);
/* The AWS class of fleet fi's calls in p (set around each call, restored after). */
struct aws_call_class pass_call_class(const struct pass *p, size_t fi);
/*
 * One callback owed to pass p by fleet (PASS_WHOLE: the pass's ListStages). pass_op_done, called
 * exactly once from that callback, frees op and may step the fleet and end the pass, which may
 * free p: nothing may touch p after it.
 */
struct op *pass_op_new(struct reconciler *r, struct pass *p, size_t fleet);
void pass_op_done(struct op *op);
void pass_free(struct pass *p);
/* The error a call that could not be queued completes with (its callback runs at once). */
extern const struct aws_error pass_not_queued;
/*
 * Scale-ups cut by the step (max(S, 4) new stages a pass). A CreateStage was sent / answered
 * (act.c); the event loop's wake-up (on_defer) wakes the fleets owed a follow-up once it is due.
 */
void pass_create_sent(struct reconciler *r);
void pass_create_answered(struct reconciler *r);
void pass_follow_up(struct reconciler *r);
/* record.c: the last record-phase Redis write answered (the pass_done hook waits for it). */
void pass_record_written(struct reconciler *r);

/* ---- phases ------------------------------------------------------------------------------ */

int observe_pass(struct reconciler *r, struct pass *p);        /* 0, or -ENOMEM: nothing sent */
void observe_fleet(struct reconciler *r, struct pass *p, size_t fleet);
/* The fleet is through observing: its slot goes to the next fleet waiting. */
void observe_fleet_done(struct reconciler *r, struct pass *p, size_t fleet);
void act_fleet(struct reconciler *r, struct pass *p, size_t fleet);
void act_fleet_deletes(struct reconciler *r, struct pass *p, size_t fleet);
/*
 * A targeted pass is done with a planned fleet: when a read failed (fail static), the fleet
 * is woken again once the per-item backoff of "reads|FLEET" ends, rather than when the walk
 * comes round; when its reads succeeded, that backoff is forgotten.
 */
void act_reads_outcome(struct reconciler *r, const struct obs_fleet *f);
void record_fleet(struct reconciler *r, struct pass *p, size_t fleet);
void record_pass(struct reconciler *r, struct pass *p);

/* Read side: "" / false when the fleet has no notes. */
static inline const char *obs_override_error(const struct obs_fleet *f)
{
	return f->notes != NULL ? f->notes->override_error : "";
}

static inline const char *obs_publisher_error(const struct obs_fleet *f)
{
	return f->notes != NULL ? f->notes->publisher_error : "";
}

static inline const char *obs_viewers_error(const struct obs_fleet *f)
{
	return f->notes != NULL ? f->notes->viewers_error : "";
}

static inline const struct store_publisher *obs_publisher(const struct obs_fleet *f)
{
	return f->notes != NULL && f->notes->publisher_present ? &f->notes->publisher : NULL;
}

#endif
