/*
 * ratelimit.c — see ratelimit.h.
 */
#include "ratelimit.h"

#include <errno.h>
#include <math.h>

#define UNITS_PER_TOKEN 1000000000ULL

int ratelimit_init(struct ratelimit *bucket, double rate_per_s, double burst, uint64_t now_us)
{
	double mtps = rate_per_s * 1000.0;

	if (!(mtps >= 1.0) || mtps > 1e9 || !(burst >= 1.0) || burst > 1e6)
		return -EINVAL;
	bucket->rate_mtps = (uint64_t)llround(mtps);
	bucket->burst_units = (uint64_t)llround(burst * 1000.0) * (UNITS_PER_TOKEN / 1000);
	bucket->units = bucket->burst_units;
	bucket->last_us = now_us;
	return 0;
}

static void refill(struct ratelimit *bucket, uint64_t now_us)
{
	uint64_t elapsed, room;

	if (now_us <= bucket->last_us)
		return;
	elapsed = now_us - bucket->last_us;
	bucket->last_us = now_us;
	room = bucket->burst_units - bucket->units;
	/* compare before multiplying so a long idle period cannot overflow */
	if (elapsed >= room / bucket->rate_mtps + 1)
		bucket->units = bucket->burst_units;
	else
		bucket->units += elapsed * bucket->rate_mtps;
	if (bucket->units > bucket->burst_units)
		bucket->units = bucket->burst_units;
}

uint64_t ratelimit_wait(struct ratelimit *bucket, uint64_t now_us)
{
	uint64_t missing;

	refill(bucket, now_us);
	if (bucket->units >= UNITS_PER_TOKEN)
		return 0;
	missing = UNITS_PER_TOKEN - bucket->units;
	return (missing + bucket->rate_mtps - 1) / bucket->rate_mtps;
}

uint64_t ratelimit_take(struct ratelimit *bucket, uint64_t now_us)
{
	uint64_t wait = ratelimit_wait(bucket, now_us);

	if (wait == 0)
		bucket->units -= UNITS_PER_TOKEN;
	return wait;
}
