/*
 * test_retry.c — the standard retry mode, deterministically (random01 is a parameter).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "retry.h"

static struct aws_error make_err(enum aws_error_kind kind, int status, const char *code)
{
	struct aws_error e;

	aws_error_clear(&e);
	e.kind = kind;
	e.http_status = status;
	snprintf(e.code, sizeof(e.code), "%s", code);
	return e;
}

static void test_backoff_formula(void **state)
{
	const struct retry_policy *p = &retry_policy_standard;

	(void)state;
	/* random * min(2^(n-1), 20) seconds */
	assert_int_equal(retry_backoff_us(p, 1, 0.5), 500000);
	assert_int_equal(retry_backoff_us(p, 2, 0.5), 1000000);
	assert_int_equal(retry_backoff_us(p, 3, 0.5), 2000000);
	assert_int_equal(retry_backoff_us(p, 5, 0.5), 8000000);
	assert_int_equal(retry_backoff_us(p, 6, 0.5), 10000000);   /* 16 s ceiling */
	assert_int_equal(retry_backoff_us(p, 7, 0.5), 10000000);   /* capped at 20 s */
	assert_int_equal(retry_backoff_us(p, 60, 0.5), 10000000);  /* no overflow */
	assert_int_equal(retry_backoff_us(p, 1, 0.0), 0);
	assert_true(retry_backoff_us(p, 1, 1.0) < 1000000);         /* clamped below 1 */
	assert_int_equal(retry_backoff_us(p, 1, -3.0), 0);
}

static void test_throttled_retried_with_delays(void **state)
{
	const struct retry_policy *p = &retry_policy_standard;
	struct aws_error e = make_err(AWS_ERR_THROTTLED, 429, "");
	struct retry_quota q;
	struct retry_state s;
	uint64_t delay;

	(void)state;
	retry_quota_init(&q, p);
	retry_state_init(&s);
	assert_int_equal(retry_on_failure(p, &q, &s, &e, 0.25, &delay), RETRY_AGAIN);
	assert_int_equal(delay, 250000);
	assert_int_equal(s.attempt, 2);
	assert_int_equal(q.available, 495);
	assert_int_equal(retry_on_failure(p, &q, &s, &e, 0.75, &delay), RETRY_AGAIN);
	assert_int_equal(delay, 1500000);
	assert_int_equal(s.attempt, 3);
	assert_int_equal(q.available, 490);
	/* third attempt was the last */
	assert_int_equal(retry_on_failure(p, &q, &s, &e, 0.75, &delay), RETRY_MAX_ATTEMPTS);
	assert_int_equal(delay, 0);
	assert_int_equal(q.available, 490);
}

static void test_retryable_table(void **state)
{
	static const struct {
		enum aws_error_kind kind;
		int status;
		const char *code;
		int retryable;
	} cases[] = {
		{ AWS_ERR_THROTTLED, 429, "", 1 },
		{ AWS_ERR_THROTTLED, 400, "ThrottlingException", 1 },
		{ AWS_ERR_SERVER, 500, "InternalServerException", 1 },
		{ AWS_ERR_SERVER, 502, "502", 1 },
		{ AWS_ERR_SERVER, 503, "", 1 },
		{ AWS_ERR_SERVER, 504, "", 1 },
		{ AWS_ERR_SERVER, 501, "", 0 },
		{ AWS_ERR_SERVER, 505, "", 0 },
		{ AWS_ERR_NETWORK, 0, "curl:7", 1 },
		{ AWS_ERR_TIMEOUT, 0, "curl:28", 1 },
		{ AWS_ERR_VALIDATION, 400, "ValidationException", 0 },
		{ AWS_ERR_VALIDATION, 408, "RequestTimeout", 1 },
		{ AWS_ERR_VALIDATION, 400, "RequestTimeoutException", 1 },
		{ AWS_ERR_QUOTA, 402, "ServiceQuotaExceededException", 0 },
		{ AWS_ERR_ACCESS_DENIED, 403, "AccessDeniedException", 0 },
		{ AWS_ERR_NOT_FOUND, 404, "ResourceNotFoundException", 0 },
		{ AWS_ERR_CONFLICT, 409, "ConflictException", 0 },
		{ AWS_ERR_CANCELLED, 0, "", 0 },
		{ AWS_ERR_PARSE, 200, "", 0 },
		{ AWS_ERR_LOCAL, 0, "curl:60", 0 },
	};
	const struct retry_policy *p = &retry_policy_standard;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct aws_error e = make_err(cases[i].kind, cases[i].status, cases[i].code);
		struct retry_quota q;
		struct retry_state s;
		uint64_t delay;
		enum retry_verdict v;

		retry_quota_init(&q, p);
		retry_state_init(&s);
		if (retry_is_retryable(&e) != cases[i].retryable)
			fail_msg("case %zu (%s %d %s)", i, aws_error_kind_name(cases[i].kind),
				 cases[i].status, cases[i].code);
		v = retry_on_failure(p, &q, &s, &e, 0.5, &delay);
		assert_int_equal(v, cases[i].retryable ? RETRY_AGAIN : RETRY_NOT_RETRYABLE);
		/* a refused retry costs nothing */
		if (!cases[i].retryable) {
			assert_int_equal(q.available, 500);
			assert_int_equal(s.attempt, 1);
		}
	}
}

/* A request that must not take effect twice is retried only when it certainly did not. */
static void test_at_most_once_table(void **state)
{
	static const struct {
		enum aws_error_kind kind;
		int status;
		const char *code;
		int retryable;
	} cases[] = {
		{ AWS_ERR_THROTTLED, 429, "", 1 },
		{ AWS_ERR_THROTTLED, 400, "ThrottlingException", 1 },
		{ AWS_ERR_NETWORK, 0, "curl:5", 1 },
		{ AWS_ERR_NETWORK, 0, "curl:6", 1 },
		{ AWS_ERR_NETWORK, 0, "curl:7", 1 },
		{ AWS_ERR_NETWORK, 0, "curl:52", 0 },     /* empty reply: sent, maybe done */
		{ AWS_ERR_NETWORK, 0, "curl:56", 0 },     /* receive failed */
		{ AWS_ERR_NETWORK, 0, "curl:55", 0 },     /* send failed part-way */
		{ AWS_ERR_TIMEOUT, 0, "curl:28", 0 },
		{ AWS_ERR_SERVER, 500, "InternalServerException", 0 },
		{ AWS_ERR_SERVER, 503, "", 0 },
		{ AWS_ERR_VALIDATION, 408, "RequestTimeout", 0 },
		{ AWS_ERR_CONFLICT, 409, "ConflictException", 0 },
	};
	const struct retry_policy *p = &retry_policy_standard;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct aws_error e = make_err(cases[i].kind, cases[i].status, cases[i].code);
		struct retry_quota q;
		struct retry_state s;
		uint64_t delay;

		retry_quota_init(&q, p);
		retry_state_init(&s);
		s.at_most_once = true;
		if (retry_is_retryable_at_most_once(&e) != cases[i].retryable)
			fail_msg("case %zu (%s %d %s)", i, aws_error_kind_name(cases[i].kind),
				 cases[i].status, cases[i].code);
		assert_int_equal(retry_on_failure(p, &q, &s, &e, 0.5, &delay),
				 cases[i].retryable ? RETRY_AGAIN : RETRY_NOT_RETRYABLE);
	}
}

static void test_timeout_costs_ten(void **state)
{
	const struct retry_policy *p = &retry_policy_standard;
	struct aws_error e = make_err(AWS_ERR_TIMEOUT, 0, "curl:28");
	struct retry_quota q;
	struct retry_state s;
	uint64_t delay;

	(void)state;
	retry_quota_init(&q, p);
	retry_state_init(&s);
	assert_int_equal(retry_on_failure(p, &q, &s, &e, 0.0, &delay), RETRY_AGAIN);
	assert_int_equal(q.available, 490);
	assert_int_equal(s.last_cost, 10);
	/* success after a retry refunds the cost of the last retry */
	retry_on_success(p, &q, &s);
	assert_int_equal(q.available, 500);
}

static void test_quota_exhaustion_and_refund(void **state)
{
	const struct retry_policy *p = &retry_policy_standard;
	struct aws_error e = make_err(AWS_ERR_SERVER, 503, "");
	struct retry_quota q;
	struct retry_state s;
	uint64_t delay;
	unsigned n = 0;

	(void)state;
	retry_quota_init(&q, p);
	/* every request fails twice: 10 tokens per request */
	for (;;) {
		retry_state_init(&s);
		if (retry_on_failure(p, &q, &s, &e, 0.1, &delay) != RETRY_AGAIN)
			break;
		n++;
	}
	assert_int_equal(n, 100);
	assert_int_equal(q.available, 0);
	retry_state_init(&s);
	assert_int_equal(retry_on_failure(p, &q, &s, &e, 0.1, &delay), RETRY_QUOTA_EXHAUSTED);
	assert_int_equal(s.attempt, 1);
	/* a success without retries refunds 1; five of them pay for one retry again */
	for (n = 0; n < 4; n++)
		retry_on_success(p, &q, &s);
	assert_int_equal(q.available, 4);
	assert_int_equal(retry_on_failure(p, &q, &s, &e, 0.1, &delay), RETRY_QUOTA_EXHAUSTED);
	retry_on_success(p, &q, &s);
	assert_int_equal(retry_on_failure(p, &q, &s, &e, 0.1, &delay), RETRY_AGAIN);
	assert_int_equal(q.available, 0);
}

static void test_refund_never_exceeds_capacity(void **state)
{
	const struct retry_policy *p = &retry_policy_standard;
	struct retry_quota q;
	struct retry_state s;

	(void)state;
	retry_quota_init(&q, p);
	retry_state_init(&s);
	retry_on_success(p, &q, &s);
	assert_int_equal(q.available, 500);
	assert_string_equal(retry_verdict_name(RETRY_QUOTA_EXHAUSTED), "quota_exhausted");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_formula),
		cmocka_unit_test(test_throttled_retried_with_delays),
		cmocka_unit_test(test_retryable_table),
		cmocka_unit_test(test_at_most_once_table),
		cmocka_unit_test(test_timeout_costs_ten),
		cmocka_unit_test(test_quota_exhaustion_and_refund),
		cmocka_unit_test(test_refund_never_exceeds_capacity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
