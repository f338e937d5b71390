/*
 * test_backoff.c — the per-item backoff table (controller/backoff.c): delays double up to the
 * cap, success forgets, and the table keeps every item however many fail (it grows).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "backoff.h"

static void test_unknown_item_is_not_blocked(void **state)
{
	struct backoff *b = backoff_new();
	(void)state;
	assert_non_null(b);
	assert_false(backoff_blocked(b, "CreateStage|fleet||", 0));
	assert_int_equal(backoff_count(b), 0);
	backoff_ok(b, "CreateStage|fleet||");    /* forgetting an unknown item is harmless */
	backoff_free(b);
}

static void test_delay_doubles_up_to_the_cap(void **state)
{
	struct backoff *b = backoff_new();
	const char *k = "StartParticipantReplication|arn|p1|";
	(void)state;
	assert_int_equal(backoff_fail(b, k, 1000, 100, 350), 0);
	assert_true(backoff_blocked(b, k, 1099));
	assert_false(backoff_blocked(b, k, 1100));
	assert_int_equal(backoff_fail(b, k, 2000, 100, 350), 0);     /* 200 */
	assert_true(backoff_blocked(b, k, 2199));
	assert_false(backoff_blocked(b, k, 2200));
	assert_int_equal(backoff_fail(b, k, 3000, 100, 350), 0);     /* 400, capped at 350 */
	assert_true(backoff_blocked(b, k, 3349));
	assert_false(backoff_blocked(b, k, 3350));
	assert_int_equal(backoff_count(b), 1);
	backoff_ok(b, k);
	assert_false(backoff_blocked(b, k, 3000));
	assert_int_equal(backoff_count(b), 0);
	/* Forgotten: the next failure starts over at the initial delay. */
	assert_int_equal(backoff_fail(b, k, 5000, 100, 350), 0);
	assert_false(backoff_blocked(b, k, 5100));
	backoff_free(b);
}

/* The old inline table silently stopped backing off after 1,024 items: this one grows. */
static void test_many_items_all_kept(void **state)
{
	struct backoff *b = backoff_new();
	char key[64];
	enum { N = 5000 };
	(void)state;
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "DeleteStage|stage-%d||", i);
		assert_int_equal(backoff_fail(b, key, 0, 1000, 60000), 0);
	}
	assert_int_equal(backoff_count(b), N);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "DeleteStage|stage-%d||", i);
		assert_true(backoff_blocked(b, key, 999));
	}
	for (int i = 0; i < N; i += 2) {
		snprintf(key, sizeof(key), "DeleteStage|stage-%d||", i);
		backoff_ok(b, key);
	}
	assert_int_equal(backoff_count(b), N / 2);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "DeleteStage|stage-%d||", i);
		assert_int_equal(backoff_blocked(b, key, 999), i % 2 == 1);
	}
	backoff_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unknown_item_is_not_blocked),
		cmocka_unit_test(test_delay_doubles_up_to_the_cap),
		cmocka_unit_test(test_many_items_all_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
