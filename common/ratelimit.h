/*
 * ratelimit.h — a token bucket, one per IVS operation, so the controller alone never exceeds
 * the account's 5 TPS per operation (default budget aws.max_tps = 4/s, burst = rate).
 *
 * Pure: the caller passes a monotonic time in microseconds. Integer arithmetic (one token =
 * 10^9 units, rate in milli-tokens per second = units per microsecond), so waits are exact.
 */
#ifndef IVS_RATELIMIT_H
#define IVS_RATELIMIT_H

#include <stdint.h>

struct ratelimit {
	uint64_t rate_mtps;     /* milli-tokens per second == units refilled per microsecond */
	uint64_t burst_units;
	uint64_t units;         /* tokens available * 10^9 */
	uint64_t last_us;
};

/*
 * rate_per_s > 0 (fractions down to 0.001/s allowed), burst >= 1 token. The bucket starts full.
 * 0, or -EINVAL.
 */
int ratelimit_init(struct ratelimit *bucket, double rate_per_s, double burst, uint64_t now_us);

/*
 * Take one token at now_us: 0 when taken, else the microseconds until one will be available
 * (nothing is taken then; call again when that time has passed). A clock that goes backwards
 * is treated as no time passing.
 */
uint64_t ratelimit_take(struct ratelimit *bucket, uint64_t now_us);

/* Like ratelimit_take, but never takes: 0 when a token is there at now_us. */
uint64_t ratelimit_wait(struct ratelimit *bucket, uint64_t now_us);

#endif
