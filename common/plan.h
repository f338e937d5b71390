/*
 * plan.h — the planner: what to do to one fleet this pass.
 *
 * plan_fleet() is a pure function of (observation, policy, stabilization history, now): no
 * clock, no I/O, no globals, no allocation. It diffs what IVS and Redis reported against what
 * the sizing policy (policy.h) wants and returns a bounded list of idempotent actions for the
 * executor, a summary for status/metrics, and the stages open to new viewers (the Redis ZSET).
 * Same input, same actions in the same order.
 *
 * Strings in the input are borrowed from the caller and must outlive the output, which points
 * at them (actions carry the input's pointers, never copies).
 *
 * Rules, in short (the numbers match tests/unit/test_plan.c):
 *  1. S = 1 + non-draining owned replicas; the policy sizes the fleet from S and the viewers.
 *  2. Growing reuses draining stages first (most viewers first), then creates the rest. A
 *     stage an operator drained is never reused: growth replaces it with a new stage, and it
 *     drains out under rule 4 like any other.
 *  3. Shrinking marks one replica draining: fewest viewers, ties newest, then ARN order.
 *  4. A draining stage whose viewers have read 0 on every pass for drain_min (the effective
 *     one: never longer than drain_timeout), or whose drain_timeout has passed, gets a STOP for
 *     every replication into it that is still ACTIVE — every host's, and every feeder the
 *     caller found in the stage (a replica participant whose source may be in its reconnect
 *     window, no longer a host) — then a DELETE marked after_stops. A stage whose feeders
 *     could not be read is not deleted this pass. A stage marked in this pass is never deleted
 *     in the same pass (the application must first see the draining key). The 0-viewer runs
 *     are remembered in the fleet's state: a start begins them afresh.
 *  5. Fail static: when any read failed, no MARK_DRAINING, STOP_REPLICATION or DELETE_STAGE.
 *     Starts and unmarks still happen. Creates are also withheld when the stage list is
 *     incomplete (stages_ok false): without a full inventory a create may duplicate a stage
 *     that exists but was not listed. An invalid override is reported, not a failed read.
 *  6. Every host gets an ACTIVE replication into every live owned replica (non-draining, and
 *     draining ones not deleted this pass), never more than 5 ACTIVE per host counting every
 *     destination and the manual replications; what does not fit sets capped. A stage created
 *     this pass has no ARN yet, so its CREATE action carries the hosts to replicate into it
 *     once created (the executor starts those right after CreateStage succeeds).
 *  7. Actions only name the origin (as a source) or owned replica stages from the input; the
 *     origin is never a destination, drained or deleted; manual replications are never
 *     stopped (a finished drain whose stage carries one is not deleted: the operator's
 *     replication wins until they stop it).
 *  8. A host whose ListParticipantReplicas read failed gets no START this pass (its state is
 *     unknown and the read will be retried next pass; starting blind would spend the 5 TPS
 *     budget when IVS is most likely throttling) and puts the fleet in fail static.
 *  9. stages_ok and the origin not listed: no actions at all, note "origin stage missing".
 * 10. Viewer keys that all vanished at once (the previous pass read at least one, this one
 *     none, Redis answering) mean "viewers unknown" (fail static), not 0 viewers: until a key
 *     appears again or for scale_down_delay, whichever comes first.
 */
#ifndef IVS_PLAN_H
#define IVS_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

#define PLAN_MAX_REPLICA_STAGES 32   /* owned replica stages per fleet accepted as input */
#define PLAN_MAX_HOSTS          12   /* IVS: 12 publishers per stage */
#define PLAN_MAX_ACTIONS        128  /* 12 hosts x 6 stages of starts, plus the rest */
#define PLAN_MAX_OPEN_STAGES    (1 + PLAN_MAX_REPLICA_STAGES)

enum plan_replication_state {
	PLAN_REPLICATION_ACTIVE,
	PLAN_REPLICATION_STOPPED,
};

/*
 * A replication feeding a replica stage as seen from the stage itself: a REPLICA participant
 * in its session (its source may be disconnected or unpublished, inside the reconnect window).
 */
struct plan_feeder {
	const char *source_arn;
	const char *participant_id;
};

/* A replica stage this fleet owns (decided from IVS tags by the caller). */
struct plan_replica_stage {
	const char *arn;
	const char *name;
	int64_t created_ms;
	bool viewers_known;
	uint64_t viewers;
	bool draining;
	int64_t draining_since_ms;   /* when the draining mark was set (same clock as now_ms) */
	bool operator_drain;         /* draining because an operator asked: never reused (rule 2) */
	const struct plan_feeder *feeders;   /* replicated participants found in the stage */
	size_t n_feeders;
	bool feeders_unknown;        /* the caller could not list them: no delete (rule 4) */
};

/* One entry of ListParticipantReplicas for a host (source = the origin). */
struct plan_replication {
	const char *destination_arn;
	enum plan_replication_state state;
};

/* A participant publishing in the origin: CONNECTED, publishing, not itself a replica. */
struct plan_host {
	const char *participant_id;
	bool replicas_ok;                          /* ListParticipantReplicas succeeded */
	const struct plan_replication *replications;
	size_t n_replications;
};

/* A replication an operator started by hand; the planner never stops it. */
struct plan_manual_replication {
	const char *source_arn;
	const char *destination_arn;
	const char *participant_id;
};

enum plan_override {
	PLAN_OVERRIDE_ABSENT,
	PLAN_OVERRIDE_VALID,
	PLAN_OVERRIDE_INVALID,       /* present but did not parse: ignored and reported */
};

struct plan_input {
	const char *fleet;
	const char *origin_arn;
	bool origin_seen;                          /* listed by ListStages */
	const char *origin_session_id;             /* informational; may be NULL */
	bool origin_viewers_known;
	uint64_t origin_viewers;

	const struct plan_replica_stage *replicas;
	size_t n_replicas;
	const struct plan_host *hosts;
	size_t n_hosts;
	const struct plan_manual_replication *manual;
	size_t n_manual;

	bool stages_ok;                            /* ListStages read every page */
	bool hosts_ok;                             /* ListParticipants succeeded */
	bool viewers_ok;                           /* Redis read ok and every count valid */
	uint32_t viewer_keys;                      /* viewer keys that exist (rule 10) */
	enum plan_override override;
	uint32_t override_stages;                  /* total stages, when override is VALID */

	struct fleet_policy policy;
	uint32_t max_creates;                      /* per pass; 0 = only the policy's limit */
};

enum plan_action_kind {
	PLAN_CREATE_STAGE,
	PLAN_START_REPLICATION,
	PLAN_STOP_REPLICATION,
	PLAN_MARK_DRAINING,
	PLAN_UNMARK_DRAINING,
	PLAN_DELETE_STAGE,
};

struct plan_action {
	enum plan_action_kind kind;
	const char *stage_arn;        /* target, or replication destination; NULL for CREATE */
	const char *participant_id;   /* START / STOP */
	const char *source_arn;       /* START: the origin; STOP: the origin or a feeder's source */
	bool after_stops;             /* DELETE: run after the pass's stops, only if they succeeded */
	const char *reason;           /* static string */
	const char *hosts[PLAN_MAX_HOSTS];   /* CREATE: replicate these hosts into the new stage */
	size_t n_hosts;
};

struct plan_open_stage {
	const char *arn;
	uint64_t viewers;             /* 0 when unknown */
};

struct plan_summary {
	uint32_t desired_stages;      /* total, origin included */
	uint32_t serving_stages;      /* observed: origin + non-draining replicas */
	uint32_t draining_stages;     /* observed */
	uint32_t hosts;
	uint32_t expected_replications;  /* readable hosts x live replica stages after this pass */
	uint32_t active_replications;    /* of those, ACTIVE now */
	uint32_t ignored_stages;      /* replica entries dropped: duplicate ARN or the origin's */
	uint32_t deletes_held;        /* finished drains kept because of a manual replication */
	uint32_t drains_waiting;      /* draining stages at 0 viewers for less than drain_min */
	bool viewer_keys_vanished;    /* rule 10 in force */
	bool capped;                  /* demand or feeding exceeds the replication cap */
	bool fail_static;
	const char *fail_reason;      /* first failed read, NULL when none */
	bool override_invalid;
	bool truncated;               /* more actions than PLAN_MAX_ACTIONS: rest next pass */
	const char *note;             /* e.g. "origin stage missing"; NULL when none */
	struct policy_decision decision;
};

struct plan_output {
	struct plan_action actions[PLAN_MAX_ACTIONS];
	size_t n_actions;
	struct plan_open_stage open[PLAN_MAX_OPEN_STAGES];
	size_t n_open;
	struct plan_summary summary;
};

/*
 * Plan one pass for one fleet and record the sizing recommendation, the 0-viewer runs of
 * draining stages and the viewer keys seen in *state (one per fleet, kept between passes). Returns 0; -EINVAL for NULL/empty required fields or an invalid
 * policy; -E2BIG for more than PLAN_MAX_REPLICA_STAGES replicas or PLAN_MAX_HOSTS hosts. On
 * error *out holds no actions and *state is unchanged.
 */
int plan_fleet(const struct plan_input *in, struct policy_state *state, int64_t now_ms,
               struct plan_output *out);

/*
 * Check the safety invariants of a plan against its input: every action names only owned
 * replica stages (and the origin only as a source), no STOP of a manual replication, no
 * MARK/STOP/DELETE in fail static, every DELETE after_stops, no UNMARK of a stage an operator
 * drained. 0 or -EPERM. plan_fleet runs it
 * on its own output and refuses (no actions, -EPERM) a plan that breaks it.
 */
int plan_check(const struct plan_input *in, const struct plan_output *out);

/* "create", "start", "stop", "mark-draining", "unmark-draining", "delete". */
const char *plan_action_kind_name(enum plan_action_kind kind);

#endif
