/*
 * policy.h — the sizing policy: how many stages a fleet should have.
 *
 * A pure function of (policy, observation, history, now): no clock, no I/O, no globals, no
 * allocation. The shape follows the Kubernetes HPA (ARCHITECTURE.md §2 "Sizing policy"):
 *
 *   raw      = ceil(V / (C·u)), at least 1
 *   demand   = override if one is given, else S when V is within ±10 % of S·C·u, else raw
 *   rec      = clamp(demand, 1 + min_replicas, 1 + min(max_replicas, 5))
 *   up       : desired = min(rec, S + max(S, 4))          (at once, rate-limited)
 *   down     : desired = max(highest rec over the last scale_down_delay, S - 1)
 *   unknown V: desired = max(rec, S)                      (never shrink on missing data)
 *   hold     : no scale-down until the viewers have been observed (known) for a whole
 *              scale_down_delay: after a start (empty history) and after any pass whose
 *              viewers were unknown (Redis down or back, values unreadable)
 *
 * Counts are whole stages including the origin: S = origin + non-draining replicas.
 */
#ifndef IVS_POLICY_H
#define IVS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* IVS: 5 concurrent replications per participant, not adjustable. */
#define POLICY_MAX_REPLICAS_PER_HOST 5
/* One host can therefore feed at most the origin plus five replica stages. */
#define POLICY_MAX_STAGES (1 + POLICY_MAX_REPLICAS_PER_HOST)

/* Input bounds that keep the integer arithmetic below exact (see policy.c). */
#define POLICY_MAX_VIEWERS_PER_STAGE 1000000u
#define POLICY_MAX_VIEWERS           1000000000000ull  /* larger totals saturate */
#define POLICY_MAX_DELAY_MS          (24ll * 3600 * 1000)

/* Slots of the scale-down stabilization ring (see struct policy_state). */
#define POLICY_HISTORY_SLOTS 32

/* Per-fleet knobs; the daemon fills this from the fleet's config section. */
struct fleet_policy {
	uint32_t viewers_per_stage;   /* C: subscribers one stage should hold, 1..1e6 */
	double target_utilization;    /* u: fraction of C to aim for, (0, 1] */
	uint32_t min_replicas;        /* replica stages kept even with no viewers */
	uint32_t max_replicas;        /* upper bound on replica stages (further capped at 5) */
	int64_t scale_down_delay_ms;  /* stabilization window for scale-down, 0..24 h */
	int64_t drain_timeout_ms;     /* used by the planner: delete a draining stage after this */
	int64_t drain_min_ms;         /* used by the planner: a draining stage must read 0 viewers
	                               * this long before it is deleted (capped at drain_timeout) */
};

/* What was observed this pass. */
struct policy_input {
	uint64_t viewers;          /* V: total over the serving stages; a lower bound if unknown */
	bool viewers_known;        /* false when Redis failed or any stage's count was invalid */
	uint32_t serving_stages;   /* S: origin + non-draining replica stages */
	bool has_override;         /* a valid desired_stages override was read */
	uint32_t override_stages;  /* total stages the operator asked for */
};

struct policy_decision {
	uint32_t desired_stages;   /* total stages (origin included) to have after this pass */
	uint32_t raw;              /* ceil(V / (C·u)), at least 1 */
	uint32_t demand;           /* after tolerance and override, before clamps */
	bool capped;               /* demand exceeds what one host can feed (1 + 5 stages) */
	bool held;                 /* stabilization kept desired above what demand asked for */
	const char *reason;        /* static string for logs and status */
};

/*
 * Scale-down history, owned by the caller (one per fleet) and kept between passes. A zeroed
 * struct is a valid empty history.
 *
 * Approximation: time is cut into buckets of bucket_ms = ceil(delay / (SLOTS - 2)); each slot
 * remembers the highest recommendation of one bucket. The window is evaluated at bucket
 * granularity, so a recommendation may be remembered up to one bucket (delay/30, 10 s for the
 * default 300 s) longer than the delay, never shorter: the error only ever delays a scale-down.
 */
struct policy_history_slot {
	int64_t bucket;            /* floor(time / bucket_ms) this slot describes */
	uint32_t max_stages;       /* highest recommendation recorded in that bucket */
	bool used;
};

/* Longest stage ARN the planner's drain memory holds (IVS ARNs are at most 128). */
#define POLICY_ARN_MAX 128
/* Draining stages whose 0-viewer reading the planner remembers (plan.h: 32 replicas). */
#define POLICY_ZERO_SLOTS 32

struct policy_zero_mark {
	uint64_t arn_hash;         /* str_hash64 of the stage ARN (not the ARN: 16 bytes a mark) */
	int64_t since_ms;          /* first pass of the current run of 0-viewer readings */
};

struct policy_state {
	int64_t bucket_ms;         /* bucket width the slots were recorded with; 0 = none yet */
	struct policy_history_slot slot[POLICY_HISTORY_SLOTS];
	/* Scale-down hold: viewers known without a break since observing_since_ms. */
	bool observing;
	int64_t observing_since_ms;
	/* The planner's memory (plan.c): viewer keys seen, when they all vanished, and since when
	 * each draining stage has read 0 viewers. */
	bool saw_viewer_keys;
	bool keys_vanished;        /* in a spell of vanished keys, begun at keys_vanished_ms */
	int64_t keys_vanished_ms;
	struct policy_zero_mark zero[POLICY_ZERO_SLOTS];
	size_t n_zero;
};

/* 0 when the knobs are in range, -EINVAL otherwise (C, u, min <= max, delays). */
int policy_validate(const struct fleet_policy *policy);

/* Empty the history and every memory (same as zeroing it): the state of a fresh start. */
void policy_state_init(struct policy_state *state);

/* The drain_min in effect: drain_min, never longer than drain_timeout, never negative. */
int64_t policy_drain_min_ms(const struct fleet_policy *policy);

/*
 * ceil(viewers / (C·u)) in exact integer arithmetic (u rounded to parts per million), at
 * least 1, saturating at UINT32_MAX. The policy must be valid.
 */
uint32_t policy_raw_stages(const struct fleet_policy *policy, uint64_t viewers);

/*
 * 1 when V is within ±10 % of S·C·u (edges included), else 0; 0 when S is 0. The policy
 * must be valid.
 */
int policy_within_tolerance(const struct fleet_policy *policy, uint64_t viewers,
                            uint32_t serving_stages);

/*
 * Decide the stage count for one pass and record this pass's recommendation in *state.
 * now_ms must come from a monotonic clock. Returns 0, or -EINVAL for an invalid policy or a
 * NULL argument (then *out is zeroed and *state untouched).
 */
int policy_decide(const struct fleet_policy *policy, const struct policy_input *in,
                  struct policy_state *state, int64_t now_ms, struct policy_decision *out);

#endif
