/*
 * test_policy.c — table tests for the sizing policy (common/policy.c).
 *
 * Single-pass cases start from an empty history; sequences replay several passes against one
 * policy_state to exercise the scale-down stabilization window. The default policy is
 * C = 10000, u = 0.8 (8000 viewers per stage at target), 0..5 replicas, 300 s delay.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"

#define DEFAULT_POLICY { 10000, 0.8, 0, 5, 300000, 600000, 0 }

struct single_case {
	const char *name;
	struct fleet_policy policy;
	struct policy_input in;
	uint32_t desired;
	uint32_t raw;
	bool capped;
	bool held;
	const char *reason;
};

/* in: { viewers, viewers_known, serving_stages, has_override, override_stages } */
static const struct single_case single_cases[] = {
	{ "no viewers, origin only", DEFAULT_POLICY, { 0, true, 1, false, 0 },
	  1, 1, false, false, "steady" },
	{ "two stages of demand", DEFAULT_POLICY, { 16000, true, 1, false, 0 },
	  2, 2, false, false, "scale up" },
	{ "one viewer over two stages rounds up", DEFAULT_POLICY, { 16001, true, 1, false, 0 },
	  3, 3, false, false, "scale up" },
	{ "tolerance: exactly +10 % keeps S=1", DEFAULT_POLICY, { 8800, true, 1, false, 0 },
	  1, 2, false, false, "within tolerance" },
	{ "tolerance: one viewer past +10 % grows", DEFAULT_POLICY, { 8801, true, 1, false, 0 },
	  2, 2, false, false, "scale up" },
	{ "tolerance: exactly +10 % keeps S=2", DEFAULT_POLICY, { 17600, true, 2, false, 0 },
	  2, 3, false, false, "within tolerance" },
	{ "tolerance: past +10 % at S=2", DEFAULT_POLICY, { 17601, true, 2, false, 0 },
	  3, 3, false, false, "scale up" },
	{ "tolerance: exactly -10 % at S=3", DEFAULT_POLICY, { 21600, true, 3, false, 0 },
	  3, 3, false, false, "within tolerance" },
	{ "tolerance: just below -10 % at S=3", DEFAULT_POLICY, { 21599, true, 3, false, 0 },
	  3, 3, false, false, "steady" },
	{ "scale-up limit: S=1 adds at most 4", DEFAULT_POLICY, { 48000, true, 1, false, 0 },
	  5, 6, false, false, "scale-up limit" },
	{ "scale-up limit: S=0 adds at most 4", DEFAULT_POLICY, { 48000, true, 0, false, 0 },
	  4, 6, false, false, "scale-up limit" },
	{ "scale-up limit does not bind at S=2", DEFAULT_POLICY, { 48000, true, 2, false, 0 },
	  6, 6, false, false, "scale up" },
	{ "demand of exactly 6 stages is not capped", DEFAULT_POLICY, { 48000, true, 6, false, 0 },
	  6, 6, false, false, "within tolerance" },
	{ "one viewer over 6 stages is capped", DEFAULT_POLICY, { 48001, true, 2, false, 0 },
	  6, 7, true, false, "replication cap" },
	{ "8 stages of demand: 5 replicas + capped", DEFAULT_POLICY, { 64000, true, 2, false, 0 },
	  6, 8, true, false, "replication cap" },
	{ "8 stages of demand from S=1: limit then cap", DEFAULT_POLICY, { 64000, true, 1, false, 0 },
	  5, 8, true, false, "scale-up limit" },
	{ "max_replicas 20 is still capped at 5", { 10000, 0.8, 0, 20, 300000, 0, 0 },
	  { 80000, true, 6, false, 0 }, 6, 10, true, false, "replication cap" },
	{ "max clamp", { 10000, 0.8, 0, 2, 300000, 0, 0 }, { 40000, true, 1, false, 0 },
	  3, 5, false, false, "max clamp" },
	{ "max clamp below the cap still reports capped", { 10000, 0.8, 0, 2, 300000, 0, 0 },
	  { 64000, true, 3, false, 0 }, 3, 8, true, false, "max clamp" },
	{ "min clamp", { 10000, 0.8, 2, 5, 300000, 0, 0 }, { 0, true, 1, false, 0 },
	  3, 1, false, false, "min clamp" },
	{ "min above the replication cap is cut to it", { 10000, 0.8, 7, 9, 300000, 0, 0 },
	  { 0, true, 1, false, 0 }, 5, 1, false, false, "scale-up limit" },
	{ "override replaces raw", DEFAULT_POLICY, { 0, true, 1, true, 4 },
	  4, 1, false, false, "override" },
	{ "override ignores the tolerance band", DEFAULT_POLICY, { 8000, true, 1, true, 2 },
	  2, 1, false, false, "override" },
	{ "override above the cap is clamped and capped", DEFAULT_POLICY, { 0, true, 6, true, 9 },
	  6, 1, true, false, "replication cap" },
	{ "override of 0 is raised to the minimum", DEFAULT_POLICY, { 80000, true, 1, true, 0 },
	  1, 10, false, false, "min clamp" },
	{ "override below max_replicas", { 10000, 0.8, 0, 3, 300000, 0, 0 }, { 0, true, 2, true, 5 },
	  4, 1, false, false, "max clamp" },
	{ "viewers unknown never shrinks", DEFAULT_POLICY, { 0, false, 4, false, 0 },
	  4, 1, false, false, "viewers unknown" },
	{ "viewers unknown still grows on what was read", DEFAULT_POLICY,
	  { 40000, false, 2, false, 0 }, 5, 5, false, false, "scale up" },
	{ "viewers unknown: override cannot shrink either", DEFAULT_POLICY,
	  { 0, false, 5, true, 2 }, 5, 1, false, false, "viewers unknown" },
	{ "fresh start: no scale-down before a whole window of observation", DEFAULT_POLICY,
	  { 0, true, 6, false, 0 }, 6, 1, false, true, "warming up" },
	{ "fresh start without a delay: scale down one stage per pass", { 10000, 0.8, 0, 5, 0, 0, 0 },
	  { 0, true, 6, false, 0 }, 5, 1, false, false, "scale down" },
	{ "fractional C·u = 249.75: 999 viewers is exactly 4", { 333, 0.75, 0, 5, 0, 0, 0 },
	  { 999, true, 0, false, 0 }, 4, 4, false, false, "scale up" },
	{ "fractional C·u = 249.75: 1000 viewers needs 5", { 333, 0.75, 0, 5, 0, 0, 0 },
	  { 1000, true, 0, false, 0 }, 4, 5, false, false, "scale-up limit" },
	{ "a billion viewers", { 10000, 1.0, 0, 5, 0, 0, 0 }, { 1000000000ull, true, 6, false, 0 },
	  6, 100000, true, false, "replication cap" },
	{ "absurd viewers saturate raw", { 1, 0.000001, 0, 5, 0, 0, 0 },
	  { UINT64_MAX, true, 6, false, 0 }, 6, UINT32_MAX, true, false, "replication cap" },
};

static void test_single_cases(void **unused)
{
	size_t i;

	(void)unused;
	for (i = 0; i < sizeof(single_cases) / sizeof(single_cases[0]); i++) {
		const struct single_case *c = &single_cases[i];
		struct policy_state state;
		struct policy_decision d;

		policy_state_init(&state);
		print_message("case: %s\n", c->name);
		assert_int_equal(policy_decide(&c->policy, &c->in, &state, 1000000, &d), 0);
		assert_int_equal(d.desired_stages, c->desired);
		assert_int_equal(d.raw, c->raw);
		assert_int_equal(d.capped, c->capped);
		assert_int_equal(d.held, c->held);
		assert_string_equal(d.reason, c->reason);
	}
}

struct step {
	int64_t now_ms;
	uint64_t viewers;
	bool known;
	uint32_t serving;
	uint32_t desired;
	bool held;
	const char *reason;
	int64_t delay_ms;          /* 0 = the sequence's policy value */
};

struct sequence {
	const char *name;
	struct fleet_policy policy;
	struct step steps[8];
	size_t n;
};

static const struct sequence sequences[] = {
	{ "window holds, then expires at bucket granularity", DEFAULT_POLICY, {
		{ 0, 40000, true, 5, 5, false, "within tolerance", 0 },
		{ 60000, 8000, true, 5, 5, true, "warming up", 0 },
		{ 300000, 8000, true, 5, 5, true, "stabilizing", 0 },
		/* the t=0 bucket [0, 10 s) leaves the window once now - 300 s >= 10 s */
		{ 309999, 8000, true, 5, 5, true, "stabilizing", 0 },
		{ 310000, 8000, true, 5, 4, false, "scale down", 0 },
		{ 325000, 8000, true, 4, 3, false, "scale down", 0 },
	}, 6 },
	{ "recommendation rises then falls", DEFAULT_POLICY, {
		{ 0, 16000, true, 2, 2, false, "within tolerance", 0 },
		{ 100000, 32000, true, 2, 4, false, "scale up", 0 },
		{ 200000, 8000, true, 4, 4, true, "warming up", 0 },
		{ 400000, 8000, true, 4, 4, true, "stabilizing", 0 },
		{ 410000, 8000, true, 4, 3, false, "scale down", 0 },
		{ 420000, 8000, true, 3, 2, false, "scale down", 0 },
		{ 430000, 8000, true, 2, 1, false, "scale down", 0 },
		{ 440000, 8000, true, 1, 1, false, "within tolerance", 0 },
	}, 8 },
	{ "a partial fall is held at the window maximum", DEFAULT_POLICY, {
		{ 0, 40000, true, 5, 5, false, "within tolerance", 0 },
		{ 100000, 24000, true, 5, 5, true, "warming up", 0 },
		/* t=0 has left the window; the 3 recorded at 100 s has not */
		{ 310000, 8000, true, 5, 4, false, "scale down", 0 },
		{ 330000, 8000, true, 4, 3, false, "scale down", 0 },
		{ 340000, 8000, true, 3, 3, true, "stabilizing", 0 },
		{ 410000, 8000, true, 3, 2, false, "scale down", 0 },
	}, 6 },
	{ "scale up is immediate while a scale-down is held", DEFAULT_POLICY, {
		{ 0, 32000, true, 4, 4, false, "within tolerance", 0 },
		{ 10000, 8000, true, 4, 4, true, "warming up", 0 },
		{ 20000, 48000, true, 4, 6, false, "scale up", 0 },
	}, 3 },
	{ "unknown viewers record S, not a low value", DEFAULT_POLICY, {
		{ 0, 32000, true, 4, 4, false, "within tolerance", 0 },
		{ 200000, 0, false, 4, 4, false, "viewers unknown", 0 },
		/* the unknown pass restarted the observation: a whole window from 400 s */
		{ 400000, 8000, true, 4, 4, true, "warming up", 0 },
		{ 510000, 8000, true, 4, 4, true, "warming up", 0 },
		{ 700000, 8000, true, 4, 3, false, "scale down", 0 },
	}, 5 },
	{ "a start holds scale-down for the delay, then the window decides", DEFAULT_POLICY, {
		{ 0, 0, true, 4, 4, true, "warming up", 0 },
		{ 299999, 0, true, 4, 4, true, "warming up", 0 },
		/* every recommendation in the window was 1: down one stage per pass */
		{ 300000, 0, true, 4, 3, false, "scale down", 0 },
	}, 3 },
	{ "redis down then back: the hold restarts, growth does not wait", DEFAULT_POLICY, {
		{ 0, 32000, true, 4, 4, false, "within tolerance", 0 },
		{ 400000, 0, false, 4, 4, false, "viewers unknown", 0 },
		{ 410000, 0, true, 4, 4, true, "warming up", 0 },
		{ 420000, 48000, true, 4, 6, false, "scale up", 0 },
		{ 709999, 0, true, 6, 6, true, "warming up", 0 },
		/* 420 s recorded 6: the window holds it until it leaves */
		{ 710000, 0, true, 6, 6, true, "stabilizing", 0 },
	}, 6 },
	{ "no delay: one stage per pass, no hold", { 10000, 0.8, 0, 5, 0, 0, 0 }, {
		{ 0, 48000, true, 6, 6, false, "within tolerance", 0 },
		{ 1, 0, true, 6, 5, false, "scale down", 0 },
		{ 2, 0, true, 5, 4, false, "scale down", 0 },
	}, 3 },
	{ "a longer delay after reload keeps the old maximum", DEFAULT_POLICY, {
		{ 0, 40000, true, 5, 5, false, "within tolerance", 0 },
		{ 50000, 8000, true, 5, 5, true, "warming up", 600000 },
		{ 640000, 8000, true, 5, 5, true, "stabilizing", 600000 },
		{ 700000, 8000, true, 5, 4, false, "scale down", 600000 },
	}, 4 },
	{ "history ring wraps without forgetting the window", { 10000, 0.8, 0, 5, 32000, 0, 0 }, {
		/* buckets of 1067 ms: 40 passes would wrap the 32 slots; use big steps */
		{ 0, 40000, true, 5, 5, false, "within tolerance", 0 },
		{ 20000, 8000, true, 5, 5, true, "warming up", 0 },
		{ 31000, 8000, true, 5, 5, true, "warming up", 0 },
		{ 34200, 8000, true, 5, 4, false, "scale down", 0 },
		{ 100000, 8000, true, 4, 3, false, "scale down", 0 },
	}, 5 },
};

static void test_sequences(void **unused)
{
	size_t i, j;

	(void)unused;
	for (i = 0; i < sizeof(sequences) / sizeof(sequences[0]); i++) {
		const struct sequence *seq = &sequences[i];
		struct policy_state state;

		policy_state_init(&state);
		for (j = 0; j < seq->n; j++) {
			const struct step *s = &seq->steps[j];
			struct fleet_policy p = seq->policy;
			struct policy_input in = { s->viewers, s->known, s->serving, false, 0 };
			struct policy_decision d;

			if (s->delay_ms != 0)
				p.scale_down_delay_ms = s->delay_ms;
			print_message("sequence: %s, step %zu\n", seq->name, j);
			assert_int_equal(policy_decide(&p, &in, &state, s->now_ms, &d), 0);
			assert_int_equal(d.desired_stages, s->desired);
			assert_int_equal(d.held, s->held);
			assert_string_equal(d.reason, s->reason);
		}
	}
}

static void test_invalid_policies(void **unused)
{
	static const struct fleet_policy bad[] = {
		{ 0, 0.8, 0, 5, 0, 0, 0 },                    /* C = 0 */
		{ 2000000, 0.8, 0, 5, 0, 0, 0 },              /* C too large */
		{ 10000, 0.0, 0, 5, 0, 0, 0 },                /* u = 0 */
		{ 10000, 1.5, 0, 5, 0, 0, 0 },                /* u > 1 */
		{ 10000, -0.5, 0, 5, 0, 0, 0 },               /* u < 0 */
		{ 10000, 0.0000001, 0, 5, 0, 0, 0 },          /* u rounds to 0 ppm */
		{ 10000, 0.8, 3, 2, 0, 0, 0 },                /* min > max */
		{ 10000, 0.8, 0, 5, -1, 0, 0 },               /* negative delay */
		{ 10000, 0.8, 0, 5, POLICY_MAX_DELAY_MS + 1, 0, 0 },
		{ 10000, 0.8, 0, 5, 0, -1, 0 },               /* negative drain timeout */
		{ 10000, 0.8, 0, 5, 0, 0, -1 },            /* negative drain_min */
		{ 10000, 0.8, 0, 5, 0, 0, POLICY_MAX_DELAY_MS + 1 },
	};
	struct fleet_policy nan_policy = DEFAULT_POLICY;
	struct fleet_policy good = DEFAULT_POLICY;
	struct policy_input in = { 0, true, 1, false, 0 };
	struct policy_state state;
	struct policy_decision d;
	size_t i;

	(void)unused;
	policy_state_init(&state);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		print_message("bad policy %zu\n", i);
		assert_int_equal(policy_validate(&bad[i]), -EINVAL);
		d.desired_stages = 77;
		assert_int_equal(policy_decide(&bad[i], &in, &state, 0, &d), -EINVAL);
		assert_int_equal(d.desired_stages, 0);
		assert_null(d.reason);
	}
	nan_policy.target_utilization = NAN;
	assert_int_equal(policy_validate(&nan_policy), -EINVAL);
	assert_int_equal(policy_validate(NULL), -EINVAL);
	assert_int_equal(policy_validate(&good), 0);
	assert_int_equal(policy_decide(&good, NULL, &state, 0, &d), -EINVAL);
	assert_int_equal(policy_decide(&good, &in, NULL, 0, &d), -EINVAL);
	assert_int_equal(policy_decide(&good, &in, &state, 0, NULL), -EINVAL);
	/* a rejected call leaves the history untouched */
	assert_int_equal(state.bucket_ms, 0);
}

static void test_helpers(void **unused)
{
	const struct fleet_policy p = DEFAULT_POLICY;

	(void)unused;
	assert_int_equal(policy_raw_stages(&p, 0), 1);
	assert_int_equal(policy_raw_stages(&p, 8000), 1);
	assert_int_equal(policy_raw_stages(&p, 8001), 2);
	assert_int_equal(policy_within_tolerance(&p, 8000, 0), 0);
	assert_int_equal(policy_within_tolerance(&p, 7200, 1), 1);
	assert_int_equal(policy_within_tolerance(&p, 7199, 1), 0);
	assert_int_equal(policy_within_tolerance(&p, 8800, 1), 1);
	assert_int_equal(policy_within_tolerance(&p, 8801, 1), 0);
	assert_int_equal(policy_within_tolerance(&p, 8000, 5000), 0);
	/* drain_min in effect: as given, never longer than drain_timeout */
	const struct fleet_policy dm[] = {
		{ 10000, 0.8, 0, 5, 0, 600000, 30000 },
		{ 10000, 0.8, 0, 5, 0, 10000, 30000 },
		{ 10000, 0.8, 0, 5, 0, 0, 30000 },
		{ 10000, 0.8, 0, 5, 0, 600000, 0 },
	};
	assert_int_equal(policy_drain_min_ms(&dm[0]), 30000);
	assert_int_equal(policy_drain_min_ms(&dm[1]), 10000);
	assert_int_equal(policy_drain_min_ms(&dm[2]), 0);
	assert_int_equal(policy_drain_min_ms(&dm[3]), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_cases),
		cmocka_unit_test(test_sequences),
		cmocka_unit_test(test_invalid_policies),
		cmocka_unit_test(test_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
