/*
 * callqueue.c — see callqueue.h.
 */
#include "callqueue.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

struct callqueue_lane {
	uint32_t fleet;
	struct callqueue_node *head, *tail;
	struct callqueue_lane *next;
};

int callqueue_init(struct callqueue *q, double rate_per_s, double burst, double resync_share,
		   uint64_t now_us)
{
	double resync_rate = rate_per_s * resync_share;
	int r;

	*q = (struct callqueue){ 0 };
	if (!(resync_share > 0) || resync_share > 1)
		return -EINVAL;
	r = ratelimit_init(&q->bucket, rate_per_s, burst, now_us);
	if (r == 0)
		r = ratelimit_init(&q->resync_bucket, resync_rate < 0.001 ? 0.001 : resync_rate, 1,
				   now_us);
	q->share_milli = resync_share < 0.001 ? 1 : (uint32_t)lround(resync_share * 1000.0);
	return r;
}

void callqueue_clear(struct callqueue *q)
{
	struct callqueue_lane *l, *next;

	for (l = q->lane_head; l != NULL; l = next) {
		next = l->next;
		free(l);
	}
	q->lane_head = q->lane_tail = NULL;
	q->resync_head = q->resync_tail = NULL;
	q->n_urgent = q->n_resync = 0;
}

static void list_push(struct callqueue_node **head, struct callqueue_node **tail,
		      struct callqueue_node *node)
{
	node->next = NULL;
	node->prev = *tail;
	if (*tail != NULL)
		(*tail)->next = node;
	else
		*head = node;
	*tail = node;
}

static void list_remove(struct callqueue_node **head, struct callqueue_node **tail,
			struct callqueue_node *node)
{
	if (node->prev != NULL)
		node->prev->next = node->next;
	else
		*head = node->next;
	if (node->next != NULL)
		node->next->prev = node->prev;
	else
		*tail = node->prev;
	node->prev = node->next = NULL;
}

static void lane_append(struct callqueue *q, struct callqueue_lane *l)
{
	l->next = NULL;
	if (q->lane_tail != NULL)
		q->lane_tail->next = l;
	else
		q->lane_head = l;
	q->lane_tail = l;
}

static void lane_unlink(struct callqueue *q, struct callqueue_lane *l)
{
	struct callqueue_lane *prev = NULL, *it;

	for (it = q->lane_head; it != NULL && it != l; it = it->next)
		prev = it;
	if (it == NULL)
		return;
	if (prev != NULL)
		prev->next = l->next;
	else
		q->lane_head = l->next;
	if (q->lane_tail == l)
		q->lane_tail = prev;
	l->next = NULL;
}

int callqueue_push(struct callqueue *q, struct callqueue_node *node)
{
	struct callqueue_lane *l;

	node->queued = false;
	node->lane = NULL;
	if (node->cls == CALLQUEUE_RESYNC) {
		list_push(&q->resync_head, &q->resync_tail, node);
		q->n_resync++;
		node->queued = true;
		return 0;
	}
	for (l = q->lane_head; l != NULL && l->fleet != node->fleet; l = l->next)
		;
	if (l == NULL) {
		/* A fleet new to the rotation joins it at the end: it waits one round at most. */
		l = calloc(1, sizeof(*l));
		if (l == NULL)
			return -ENOMEM;
		l->fleet = node->fleet;
		lane_append(q, l);
	}
	list_push(&l->head, &l->tail, node);
	node->lane = l;
	q->n_urgent++;
	node->queued = true;
	return 0;
}

void callqueue_remove(struct callqueue *q, struct callqueue_node *node)
{
	struct callqueue_lane *l = node->lane;

	if (!node->queued)
		return;
	node->queued = false;
	if (node->cls == CALLQUEUE_RESYNC) {
		list_remove(&q->resync_head, &q->resync_tail, node);
		q->n_resync--;
		return;
	}
	list_remove(&l->head, &l->tail, node);
	node->lane = NULL;
	q->n_urgent--;
	if (l->head == NULL) {
		lane_unlink(q, l);
		free(l);
	}
}

/* The head lane's first call goes; the lane moves to the end of the rotation. */
static struct callqueue_node *take_urgent(struct callqueue *q)
{
	struct callqueue_lane *l = q->lane_head;
	struct callqueue_node *node = l->head;

	list_remove(&l->head, &l->tail, node);
	q->lane_head = l->next;
	if (q->lane_head == NULL)
		q->lane_tail = NULL;
	if (l->head != NULL)
		lane_append(q, l);
	else
		free(l);
	node->lane = NULL;
	node->queued = false;
	q->n_urgent--;
	return node;
}

static struct callqueue_node *take_resync(struct callqueue *q)
{
	struct callqueue_node *node = q->resync_head;

	list_remove(&q->resync_head, &q->resync_tail, node);
	node->queued = false;
	q->n_resync--;
	return node;
}

struct callqueue_node *callqueue_pop(struct callqueue *q, uint64_t now_us, uint64_t *wait_us)
{
	uint64_t resync_wait = UINT64_MAX, wait;
	bool urgent = q->lane_head != NULL, resync_ready, contested, pick_resync;
	struct callqueue_node *next;

	*wait_us = UINT64_MAX;
	if (q->n_resync > 0)
		resync_wait = ratelimit_wait(&q->resync_bucket, now_us);
	resync_ready = q->n_resync > 0 && resync_wait == 0;
	if (!urgent && !resync_ready) {
		*wait_us = resync_wait;         /* UINT64_MAX when nothing waits at all */
		return NULL;
	}
	contested = urgent && resync_ready;
	/* Urgent first; under contention the resync earns resync_share of the tokens, so a
	 * steady stream of urgent calls never stops the walk. The credit changes only when a
	 * token is actually handed out. */
	pick_resync = !urgent || (contested && q->credit_milli + q->share_milli >= 1000);
	next = pick_resync ? q->resync_head : q->lane_head->head;
	wait = ratelimit_wait(&q->bucket, now_us);
	if (wait > 0) {
		next->waited = true;
		*wait_us = wait;
		return NULL;
	}
	if (contested) {
		q->credit_milli += q->share_milli;
		if (pick_resync)
			q->credit_milli -= 1000;
	}
	(void)ratelimit_take(&q->bucket, now_us);
	if (pick_resync) {
		(void)ratelimit_take(&q->resync_bucket, now_us);
		return take_resync(q);
	}
	return take_urgent(q);
}

struct callqueue_node *callqueue_any(const struct callqueue *q)
{
	return q->lane_head != NULL ? q->lane_head->head : q->resync_head;
}

int callqueue_promote(struct callqueue *q, uint32_t fleet)
{
	struct callqueue_node *node, *next;
	struct callqueue_lane *l;
	int moved = 0;

	for (node = q->resync_head; node != NULL && node->fleet != fleet; node = node->next)
		;
	if (node == NULL)
		return 0;
	for (l = q->lane_head; l != NULL && l->fleet != fleet; l = l->next)
		;
	if (l == NULL) {
		l = calloc(1, sizeof(*l));
		if (l == NULL)
			return -ENOMEM;
		l->fleet = fleet;
		lane_append(q, l);
	}
	for (; node != NULL; node = next) {
		next = node->next;
		if (node->fleet != fleet)
			continue;
		list_remove(&q->resync_head, &q->resync_tail, node);
		q->n_resync--;
		node->cls = CALLQUEUE_URGENT;
		list_push(&l->head, &l->tail, node);
		node->lane = l;
		q->n_urgent++;
		moved++;
	}
	return moved;
}
