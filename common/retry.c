/*
 * retry.c — see retry.h.
 */
#include "retry.h"

#include <string.h>

const struct retry_policy retry_policy_standard = {
	.max_attempts = 3,
	.base_us = 1000000,
	.max_backoff_us = 20000000,
	.quota_capacity = 500,
	.retry_cost = 5,
	.timeout_retry_cost = 10,
	.no_retry_refund = 1,
};

/* Transient by error code (botocore TransientRetryableChecker, Go DefaultRetryableErrorCodes). */
static const char *const transient_codes[] = {
	"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete",
};

void retry_quota_init(struct retry_quota *quota, const struct retry_policy *policy)
{
	quota->capacity = policy->quota_capacity;
	quota->available = policy->quota_capacity;
}

void retry_state_init(struct retry_state *state)
{
	state->attempt = 1;
	state->last_cost = 0;
	state->at_most_once = false;
}

const char *retry_verdict_name(enum retry_verdict v)
{
	switch (v) {
	case RETRY_AGAIN: return "again";
	case RETRY_NOT_RETRYABLE: return "not_retryable";
	case RETRY_MAX_ATTEMPTS: return "max_attempts";
	case RETRY_QUOTA_EXHAUSTED: return "quota_exhausted";
	}
	return "unknown";
}

int retry_is_retryable(const struct aws_error *err)
{
	size_t i;

	switch (err->kind) {
	case AWS_ERR_THROTTLED:
	case AWS_ERR_NETWORK:
	case AWS_ERR_TIMEOUT:
		return 1;
	case AWS_ERR_SERVER:
		if (err->http_status == 500 || err->http_status == 502 ||
		    err->http_status == 503 || err->http_status == 504)
			return 1;
		break;
	case AWS_ERR_QUOTA:
	case AWS_ERR_CONFLICT:
	case AWS_ERR_NOT_FOUND:
	case AWS_ERR_ACCESS_DENIED:
	case AWS_ERR_CANCELLED:
	case AWS_ERR_PARSE:
	case AWS_ERR_LOCAL:
	case AWS_OK:
	case AWS_ERR_KIND_COUNT:
		return 0;
	case AWS_ERR_VALIDATION:
		break;
	}
	/* a transient code outranks a generic 4xx/5xx status (e.g. 408 RequestTimeout) */
	for (i = 0; i < sizeof(transient_codes) / sizeof(transient_codes[0]); i++)
		if (strcmp(err->code, transient_codes[i]) == 0)
			return 1;
	return 0;
}

uint64_t retry_backoff_us(const struct retry_policy *policy, unsigned failed_attempt,
			  double random01)
{
	uint64_t ceiling = policy->base_us;
	unsigned i;

	if (!(random01 >= 0.0))           /* also catches NaN */
		random01 = 0.0;
	if (random01 >= 1.0)
		random01 = 0.9999999999;
	for (i = 1; i < failed_attempt && ceiling < policy->max_backoff_us; i++)
		ceiling *= 2;
	if (ceiling > policy->max_backoff_us)
		ceiling = policy->max_backoff_us;
	return (uint64_t)(random01 * (double)ceiling);
}

int retry_is_retryable_at_most_once(const struct aws_error *err)
{
	if (err->kind == AWS_ERR_THROTTLED)
		return 1;
	if (err->kind == AWS_ERR_NETWORK)
		return strcmp(err->code, "curl:5") == 0 || strcmp(err->code, "curl:6") == 0 ||
		       strcmp(err->code, "curl:7") == 0;
	return 0;
}

enum retry_verdict retry_on_failure(const struct retry_policy *policy, struct retry_quota *quota,
				    struct retry_state *state, const struct aws_error *err,
				    double random01, uint64_t *delay_us)
{
	unsigned cost;

	*delay_us = 0;
	if (!(state->at_most_once ? retry_is_retryable_at_most_once(err) : retry_is_retryable(err)))
		return RETRY_NOT_RETRYABLE;
	if (state->attempt >= policy->max_attempts)
		return RETRY_MAX_ATTEMPTS;
	cost = err->kind == AWS_ERR_TIMEOUT ? policy->timeout_retry_cost : policy->retry_cost;
	if (quota->available < cost)
		return RETRY_QUOTA_EXHAUSTED;
	quota->available -= cost;
	state->last_cost = cost;
	*delay_us = retry_backoff_us(policy, state->attempt, random01);
	state->attempt++;
	return RETRY_AGAIN;
}

void retry_on_success(const struct retry_policy *policy, struct retry_quota *quota,
		      const struct retry_state *state)
{
	unsigned refund = state->last_cost ? state->last_cost : policy->no_retry_refund;

	quota->available += refund;
	if (quota->available > quota->capacity)
		quota->available = quota->capacity;
}
