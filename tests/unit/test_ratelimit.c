/*
 * test_ratelimit.c — token bucket: burst, refill, exact waits, odd clocks.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "ratelimit.h"

static void test_burst_then_wait(void **state)
{
	struct ratelimit b;
	uint64_t t = 1000000;
	int i;

	(void)state;
	assert_int_equal(ratelimit_init(&b, 4, 4, t), 0);
	for (i = 0; i < 4; i++)
		assert_int_equal(ratelimit_take(&b, t), 0);
	/* empty: one token every 250 ms */
	assert_int_equal(ratelimit_take(&b, t), 250000);
	assert_int_equal(ratelimit_take(&b, t + 100000), 150000);
	assert_int_equal(ratelimit_take(&b, t + 250000), 0);
	assert_int_equal(ratelimit_take(&b, t + 250000), 250000);
}

static void test_refill_caps_at_burst(void **state)
{
	struct ratelimit b;
	uint64_t t = 0;
	int i, taken = 0;

	(void)state;
	assert_int_equal(ratelimit_init(&b, 4, 4, t), 0);
	for (i = 0; i < 4; i++)
		assert_int_equal(ratelimit_take(&b, t), 0);
	t += 3600ULL * 1000000ULL * 24 * 365;   /* a year idle: no overflow, only a burst */
	while (ratelimit_take(&b, t) == 0)
		taken++;
	assert_int_equal(taken, 4);
}

static void test_steady_rate(void **state)
{
	struct ratelimit b;
	uint64_t t = 0, w;
	int sent = 0;

	(void)state;
	assert_int_equal(ratelimit_init(&b, 4, 4, t), 0);
	/* a greedy caller that waits exactly as told sends 4 + 4*10 requests in 10 s */
	while (t <= 10000000) {
		w = ratelimit_take(&b, t);
		if (w == 0)
			sent++;
		else
			t += w;
	}
	assert_int_equal(sent, 4 + 40);
}

static void test_fractional_rate_and_backwards_clock(void **state)
{
	struct ratelimit b;

	(void)state;
	assert_int_equal(ratelimit_init(&b, 0.5, 1, 10000000), 0);
	assert_int_equal(ratelimit_take(&b, 10000000), 0);
	assert_int_equal(ratelimit_take(&b, 10000000), 2000000);
	/* the clock going backwards never grants tokens */
	assert_int_equal(ratelimit_take(&b, 5000000), 2000000);
	assert_int_equal(ratelimit_take(&b, 12000000), 0);
}

static void test_invalid(void **state)
{
	struct ratelimit b;

	(void)state;
	assert_int_equal(ratelimit_init(&b, 0, 4, 0), -EINVAL);
	assert_int_equal(ratelimit_init(&b, -1, 4, 0), -EINVAL);
	assert_int_equal(ratelimit_init(&b, 4, 0.5, 0), -EINVAL);
	assert_int_equal(ratelimit_init(&b, 0.0 / 0.0, 4, 0), -EINVAL);
}

/* ratelimit_wait tells the same wait as ratelimit_take and never takes. */
static void test_wait_does_not_take(void **state)
{
	struct ratelimit b;

	(void)state;
	assert_int_equal(ratelimit_init(&b, 2, 1, 0), 0);
	assert_int_equal(ratelimit_wait(&b, 0), 0);
	assert_int_equal(ratelimit_wait(&b, 0), 0);
	assert_int_equal(ratelimit_take(&b, 0), 0);
	assert_int_equal(ratelimit_wait(&b, 0), 500000);
	assert_int_equal(ratelimit_wait(&b, 100000), 400000);
	assert_int_equal(ratelimit_take(&b, 100000), 400000);
	assert_int_equal(ratelimit_wait(&b, 500000), 0);
	assert_int_equal(ratelimit_take(&b, 500000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wait_does_not_take),
		cmocka_unit_test(test_burst_then_wait),
		cmocka_unit_test(test_refill_caps_at_burst),
		cmocka_unit_test(test_steady_rate),
		cmocka_unit_test(test_fractional_rate_and_backwards_clock),
		cmocka_unit_test(test_invalid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
