/*
 * retry.h — the AWS SDKs' "standard" retry mode (pre-2026 constants), as pure functions.
 *
 * Source: shared/research/aws-errors-retries.md §3-§4 (botocore retries/standard.py, quota.py;
 * aws-sdk-go-v2 aws/retry/standard.go):
 *   - at most 3 attempts (first try + 2 retries);
 *   - delay before retry n (n = the 1-based attempt that just failed):
 *       random[0,1) * min(base * 2^(n-1), 20 s), base 1 s ("full jitter");
 *   - one client-wide retry quota of 500 tokens: a retry costs 5 (10 after a timeout); a 2xx that
 *     needed no retry refunds 1, a 2xx after retries refunds the cost of the last retry; when
 *     the quota cannot pay, the error is returned at once;
 *   - retryable: throttling (429 / throttling codes), 500/502/503/504, the transient codes
 *     RequestTimeout(Exception)/PriorRequestNotComplete, network errors, timeouts.
 *     Never 400, 402, 403, 404, 409.
 *
 * Randomness is injected (random01 in [0,1)), so the tests can assert exact delays.
 */
#ifndef IVS_RETRY_H
#define IVS_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "awserr.h"

struct retry_policy {
	unsigned max_attempts;      /* 3 */
	uint64_t base_us;           /* 1 s */
	uint64_t max_backoff_us;    /* 20 s */
	unsigned quota_capacity;    /* 500 */
	unsigned retry_cost;        /* 5 */
	unsigned timeout_retry_cost;/* 10 */
	unsigned no_retry_refund;   /* 1 */
};

/* The constants above, in one place. */
extern const struct retry_policy retry_policy_standard;

/* Client-wide retry quota (one per aws client). */
struct retry_quota {
	unsigned available;
	unsigned capacity;
};

/* Per logical request. attempt counts the attempts made so far (1 after the first send). */
struct retry_state {
	unsigned attempt;
	unsigned last_cost;         /* cost of the last quota acquisition, 0 if never retried */
	bool at_most_once;          /* not idempotent: see retry_is_retryable_at_most_once */
};

enum retry_verdict {
	RETRY_AGAIN = 0,            /* wait *delay_us, then send again */
	RETRY_NOT_RETRYABLE,        /* the error is final (4xx, parse, cancelled, ...) */
	RETRY_MAX_ATTEMPTS,         /* attempts exhausted */
	RETRY_QUOTA_EXHAUSTED,      /* the client-wide retry quota cannot pay */
};

void retry_quota_init(struct retry_quota *quota, const struct retry_policy *policy);
void retry_state_init(struct retry_state *state);

/* 1 when the outcome may be retried at all (ignores attempts and quota). */
int retry_is_retryable(const struct aws_error *err);

/*
 * The same for a request that must not take effect twice (CreateStage: no idempotency token):
 * 1 only when the service certainly did not act on it — throttled, or the connection was
 * never made (curl 5, 6, 7: proxy/host not resolved, connect failed). A 5xx, a timeout or a
 * connection lost after sending leave the outcome unknown: 0, the caller finds out.
 */
int retry_is_retryable_at_most_once(const struct aws_error *err);

/* "again", "not_retryable", "max_attempts", "quota_exhausted" */
const char *retry_verdict_name(enum retry_verdict v);

/*
 * Call after attempt state->attempt failed with err. On RETRY_AGAIN the quota has been charged,
 * *delay_us holds the backoff and state->attempt is incremented (it is the number of the
 * attempt about to be made). random01 must be in [0,1); values outside are clamped.
 */
enum retry_verdict retry_on_failure(const struct retry_policy *policy, struct retry_quota *quota,
				    struct retry_state *state, const struct aws_error *err,
				    double random01, uint64_t *delay_us);

/* Call when an attempt succeeded (2xx): refunds the quota. */
void retry_on_success(const struct retry_policy *policy, struct retry_quota *quota,
		      const struct retry_state *state);

/* The backoff alone: random01 * min(base * 2^(failed_attempt-1), max). failed_attempt >= 1. */
uint64_t retry_backoff_us(const struct retry_policy *policy, unsigned failed_attempt,
			  double random01);

#endif
