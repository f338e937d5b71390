/*
 * policy.c — the sizing policy; see policy.h for the algorithm.
 *
 * Arithmetic: u is turned into parts per million once, and every comparison is done on
 * integers scaled by 1e6, so band edges such as "exactly 10 % over target" are exact. Bounds:
 * V <= 1e12 (saturated), C <= 1e6, u_ppm <= 1e6, S <= 1024 for the tolerance check, which keeps
 * every product below 1.1e19 < 2^64.
 */
#include "policy.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#define PPM 1000000ull
#define TOLERANCE_DIVISOR 10ull          /* ±1/10 = ±10 % */
#define TOLERANCE_MAX_STAGES 1024u       /* beyond this the band is not evaluated */
#define SCALE_UP_MIN_STEP 4u             /* HPA: up by max(100 %, 4) per period */

static uint64_t utilization_ppm(const struct fleet_policy *policy)
{
	return (uint64_t)(policy->target_utilization * (double)PPM + 0.5);
}

int policy_validate(const struct fleet_policy *policy)
{
	if (policy == NULL)
		return -EINVAL;
	if (policy->viewers_per_stage == 0 ||
	    policy->viewers_per_stage > POLICY_MAX_VIEWERS_PER_STAGE)
		return -EINVAL;
	/* Written so that NaN fails too. */
	if (!(policy->target_utilization > 0.0 && policy->target_utilization <= 1.0))
		return -EINVAL;
	if (utilization_ppm(policy) == 0)
		return -EINVAL;
	if (policy->min_replicas > policy->max_replicas)
		return -EINVAL;
	if (policy->scale_down_delay_ms < 0 || policy->scale_down_delay_ms > POLICY_MAX_DELAY_MS)
		return -EINVAL;
	if (policy->drain_timeout_ms < 0 || policy->drain_timeout_ms > POLICY_MAX_DELAY_MS)
		return -EINVAL;
	if (policy->drain_min_ms < 0 || policy->drain_min_ms > POLICY_MAX_DELAY_MS)
		return -EINVAL;
	return 0;
}

int64_t policy_drain_min_ms(const struct fleet_policy *policy)
{
	int64_t m = policy->drain_min_ms < policy->drain_timeout_ms ? policy->drain_min_ms
	                                                            : policy->drain_timeout_ms;

	return m < 0 ? 0 : m;
}

/* The scale-down window's buckets only; the other memories stay. */
static void history_clear(struct policy_state *state)
{
	state->bucket_ms = 0;
	memset(state->slot, 0, sizeof(state->slot));
}

void policy_state_init(struct policy_state *state)
{
	if (state != NULL)
		memset(state, 0, sizeof(*state));
}

static uint64_t saturate_viewers(uint64_t viewers)
{
	return viewers > POLICY_MAX_VIEWERS ? POLICY_MAX_VIEWERS : viewers;
}

uint32_t policy_raw_stages(const struct fleet_policy *policy, uint64_t viewers)
{
	uint64_t num = saturate_viewers(viewers) * PPM;
	uint64_t den = (uint64_t)policy->viewers_per_stage * utilization_ppm(policy);
	uint64_t raw = num / den + (num % den != 0);

	if (raw < 1)
		raw = 1;
	if (raw > UINT32_MAX)
		raw = UINT32_MAX;
	return (uint32_t)raw;
}

int policy_within_tolerance(const struct fleet_policy *policy, uint64_t viewers,
                            uint32_t serving_stages)
{
	uint64_t load, target, diff;

	if (serving_stages == 0 || serving_stages > TOLERANCE_MAX_STAGES)
		return 0;
	/* |V/(S·C)/u - 1| <= 0.1  <=>  10·|V - S·C·u| <= S·C·u, all scaled by 1e6. */
	load = saturate_viewers(viewers) * PPM;
	target = (uint64_t)serving_stages * policy->viewers_per_stage * utilization_ppm(policy);
	diff = load > target ? load - target : target - load;
	return diff * TOLERANCE_DIVISOR <= target;
}

/* Floor division for a positive divisor, correct for negative times too. */
static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && a < 0) ? q - 1 : q;
}

static size_t slot_index(int64_t bucket)
{
	int64_t m = bucket % POLICY_HISTORY_SLOTS;

	return (size_t)(m < 0 ? m + POLICY_HISTORY_SLOTS : m);
}

static int64_t bucket_width(int64_t delay_ms)
{
	const int64_t n = POLICY_HISTORY_SLOTS - 2;

	return delay_ms <= 0 ? 0 : (delay_ms + n - 1) / n;
}

/* Highest recommendation recorded in a bucket that overlaps [since_ms, ...), or 0. */
static uint32_t history_max_since(const struct policy_state *state, int64_t since_ms)
{
	int64_t first = floor_div(since_ms, state->bucket_ms);
	uint32_t best = 0;
	size_t i;

	for (i = 0; i < POLICY_HISTORY_SLOTS; i++) {
		const struct policy_history_slot *s = &state->slot[i];

		if (s->used && s->bucket >= first && s->max_stages > best)
			best = s->max_stages;
	}
	return best;
}

static void history_put(struct policy_state *state, int64_t now_ms, uint32_t stages)
{
	int64_t bucket = floor_div(now_ms, state->bucket_ms);
	struct policy_history_slot *s = &state->slot[slot_index(bucket)];

	if (!s->used || s->bucket != bucket) {
		s->used = true;
		s->bucket = bucket;
		s->max_stages = stages;
	} else if (stages > s->max_stages) {
		s->max_stages = stages;
	}
}

/*
 * Record this pass's recommendation and return the highest one in the window. When the delay
 * changed (config reload), the old buckets cannot be compared with new ones: whatever the old
 * history still holds for the new window is folded into the current bucket, which can only
 * keep stages longer, never shed them early.
 */
static uint32_t history_record(struct policy_state *state, int64_t delay_ms, int64_t now_ms,
                               uint32_t stages)
{
	int64_t width = bucket_width(delay_ms);
	uint32_t carried = 0;

	if (width == 0) {
		history_clear(state);
		return stages;
	}
	if (state->bucket_ms != width) {
		if (state->bucket_ms > 0)
			carried = history_max_since(state, now_ms - delay_ms);
		history_clear(state);
		state->bucket_ms = width;
		if (carried > 0)
			history_put(state, now_ms, carried);
	}
	history_put(state, now_ms, stages);
	return history_max_since(state, now_ms - delay_ms);
}

int policy_decide(const struct fleet_policy *policy, const struct policy_input *in,
                  struct policy_state *state, int64_t now_ms, struct policy_decision *out)
{
	uint32_t serving, hi, lo, demand, rec, recorded, window_max, limit, unheld, desired;
	const char *reason;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (in == NULL || state == NULL || out == NULL || policy_validate(policy) < 0)
		return -EINVAL;

	serving = in->serving_stages;
	hi = 1 + (policy->max_replicas < POLICY_MAX_REPLICAS_PER_HOST ?
	          policy->max_replicas : POLICY_MAX_REPLICAS_PER_HOST);
	lo = 1 + policy->min_replicas;
	if (lo > hi)
		lo = hi;

	/* With viewers unknown, V is what could be read: a lower bound, good enough to grow. */
	out->raw = policy_raw_stages(policy, in->viewers);

	/* Demand: what the audience (or the operator) asks for, before any limit. */
	if (in->has_override) {
		demand = in->override_stages;
		reason = "override";
	} else if (policy_within_tolerance(policy, in->viewers, serving)) {
		demand = serving;
		reason = "within tolerance";
	} else {
		demand = out->raw;
		reason = demand > serving ? "scale up" : demand < serving ? "scale down" : "steady";
	}
	out->demand = demand;
	/* Chosen: capped whenever demand exceeds what one host can feed, whatever max_replicas
	 * says, so that operators see the audience outgrew replication even with a low max. */
	out->capped = demand > POLICY_MAX_STAGES;

	rec = demand;
	if (rec > hi) {
		rec = hi;
		reason = policy->max_replicas >= POLICY_MAX_REPLICAS_PER_HOST ?
		         "replication cap" : "max clamp";
	} else if (rec < lo) {
		rec = lo;
		reason = "min clamp";
	}

	/* The hold: a break in the viewer data restarts the observation. */
	if (!in->viewers_known) {
		state->observing = false;
	} else if (!state->observing) {
		state->observing = true;
		state->observing_since_ms = now_ms;
	}

	/* Without viewer data a low recommendation is not evidence: never remember one. */
	recorded = in->viewers_known || rec > serving ? rec : serving;
	window_max = history_record(state, policy->scale_down_delay_ms, now_ms, recorded);

	if (rec > serving) {
		limit = serving + (serving > SCALE_UP_MIN_STEP ? serving : SCALE_UP_MIN_STEP);
		desired = rec;
		if (desired > limit) {
			desired = limit;
			reason = "scale-up limit";
		}
	} else if (rec == serving) {
		desired = serving;
	} else if (!in->viewers_known) {
		desired = serving;
		reason = "viewers unknown";
	} else if (now_ms - state->observing_since_ms < policy->scale_down_delay_ms) {
		/* Not yet a whole window of observation (a start, or Redis back): the history
		 * cannot tell a real fall from data not written again yet. */
		desired = serving;
		out->held = true;
		reason = "warming up";
	} else {
		/* One stage per pass, never below the highest recent recommendation. */
		unheld = rec > serving - 1 ? rec : serving - 1;
		desired = window_max > unheld ? window_max : unheld;
		if (desired > serving)
			desired = serving;
		if (desired > unheld) {
			out->held = true;
			reason = "stabilizing";
		}
	}

	out->desired_stages = desired;
	out->reason = reason;
	return 0;
}
