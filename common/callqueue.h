/*
 * callqueue.h — the calls of one AWS operation waiting for its rate budget, and the order in
 * which they get it (aws.c keeps one per operation).
 *
 * Two classes share the operation's budget (rate, burst), which does not change with the mix:
 *   CALLQUEUE_URGENT  mutations and the reads of passes a wake-up asked for: served first,
 *                     round robin between fleets (each fleet's calls in their order), so one
 *                     fleet's burst never holds another fleet's call behind it;
 *   CALLQUEUE_RESYNC  the background resync's observation calls: first in, first out, paced
 *                     at resync_share × rate per second by a bucket of their own (burst 1),
 *                     and never starved: whenever both classes wait and a resync call may go,
 *                     the resync gets resync_share of the tokens handed out.
 * Pure: the caller passes a monotonic time in microseconds and owns the nodes (embedded in
 * its calls); the queue allocates only one small lane per fleet with urgent calls waiting.
 */
#ifndef IVS_CALLQUEUE_H
#define IVS_CALLQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ratelimit.h"

enum callqueue_class { CALLQUEUE_URGENT = 0, CALLQUEUE_RESYNC = 1 };

struct callqueue_lane;

struct callqueue_node {
	enum callqueue_class cls;           /* set by the caller before push */
	uint32_t fleet;                     /* fairness key; 0 = no fleet (set before push) */
	bool queued;
	bool waited;                        /* was next in line but the budget was empty */
	struct callqueue_lane *lane;        /* urgent: its fleet's lane */
	struct callqueue_node *prev, *next;
};

struct callqueue {
	struct ratelimit bucket;            /* the operation's budget */
	struct ratelimit resync_bucket;     /* resync_share × rate, burst 1 */
	uint32_t share_milli;               /* resync_share in thousandths */
	uint32_t credit_milli;              /* resync's due share of contested tokens */
	struct callqueue_lane *lane_head, *lane_tail;  /* rotation: head is served next */
	struct callqueue_node *resync_head, *resync_tail;
	size_t n_urgent, n_resync;
};

/* rate_per_s and burst as ratelimit_init; 0 < resync_share <= 1. 0, or -EINVAL. */
int callqueue_init(struct callqueue *q, double rate_per_s, double burst, double resync_share,
		   uint64_t now_us);

/* Frees the lanes; the nodes are the caller's (none may be queued any more). */
void callqueue_clear(struct callqueue *q);

/* Queue node at the end of its class (and fleet). 0, or -ENOMEM (no lane for a new fleet). */
int callqueue_push(struct callqueue *q, struct callqueue_node *node);

/* Take a queued node out (a cancelled call). No-op when it is not queued. */
void callqueue_remove(struct callqueue *q, struct callqueue_node *node);

/*
 * The next node that may be sent at now_us, taken out of the queue with its token(s) taken;
 * or NULL with *wait_us the microseconds until the next one may go (UINT64_MAX: queue empty).
 */
struct callqueue_node *callqueue_pop(struct callqueue *q, uint64_t now_us, uint64_t *wait_us);

/*
 * The fleet's waiting resync calls become urgent, in their order, behind the fleet's urgent
 * ones (a wake-up for a fleet whose resync read is still queued). The number moved, or
 * -ENOMEM (nothing moved). The caller sets the class of the fleet's calls not queued.
 */
int callqueue_promote(struct callqueue *q, uint32_t fleet);

/* Any queued node, budget or not (to fail them all); NULL when empty. */
struct callqueue_node *callqueue_any(const struct callqueue *q);

static inline size_t callqueue_len(const struct callqueue *q)
{
	return q->n_urgent + q->n_resync;
}

#endif
