/*
 * test_callqueue.c — the per-operation call queue: urgent before resync, round robin between
 * fleets, the resync paced at its share and never starved, the budget unchanged by the mix.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "callqueue.h"

#define SEC 1000000ULL

struct item {
	struct callqueue_node node;     /* first: the test casts back */
	int id;
};

static void item_init(struct item *it, int id, enum callqueue_class cls, uint32_t fleet)
{
	memset(it, 0, sizeof(*it));
	it->id = id;
	it->node.cls = cls;
	it->node.fleet = fleet;
}

/* Pop at now; -1 when nothing may go (then *wait is set). */
static int pop_id(struct callqueue *q, uint64_t now, uint64_t *wait)
{
	uint64_t w;
	struct callqueue_node *n = callqueue_pop(q, now, &w);

	if (wait != NULL)
		*wait = w;
	return n == NULL ? -1 : ((struct item *)n)->id;
}

/* Pop greedily from t, waiting exactly as told; returns the id popped and advances *t. */
static int pop_next(struct callqueue *q, uint64_t *t)
{
	uint64_t w;
	int id;

	while ((id = pop_id(q, *t, &w)) < 0) {
		assert_true(w != UINT64_MAX);
		*t += w;
	}
	return id;
}

static void test_init_rejects_bad_share(void **state)
{
	struct callqueue q;

	(void)state;
	assert_int_equal(callqueue_init(&q, 4, 4, 0, 0), -EINVAL);
	assert_int_equal(callqueue_init(&q, 4, 4, -0.5, 0), -EINVAL);
	assert_int_equal(callqueue_init(&q, 4, 4, 1.5, 0), -EINVAL);
	assert_int_equal(callqueue_init(&q, 0, 4, 0.5, 0), -EINVAL);
	assert_int_equal(callqueue_init(&q, 4, 4, 1, 0), 0);
	callqueue_clear(&q);
}

static void test_empty(void **state)
{
	struct callqueue q;
	uint64_t w;

	(void)state;
	assert_int_equal(callqueue_init(&q, 4, 4, 0.5, 0), 0);
	assert_int_equal(pop_id(&q, 0, &w), -1);
	assert_true(w == UINT64_MAX);
	assert_int_equal(callqueue_len(&q), 0);
	callqueue_clear(&q);
}

/* Queued before the urgent calls, the resync calls still go after them. */
static void test_urgent_before_resync(void **state)
{
	struct callqueue q;
	struct item it[6];
	uint64_t t = 0;
	int i;

	(void)state;
	assert_int_equal(callqueue_init(&q, 4, 4, 0.5, t), 0);
	/* drain the resync's own burst of 1 so it is not ready at t: no contest yet */
	for (i = 0; i < 3; i++) {
		item_init(&it[i], 10 + i, CALLQUEUE_RESYNC, 0);
		assert_int_equal(callqueue_push(&q, &it[i].node), 0);
	}
	for (i = 3; i < 6; i++) {
		item_init(&it[i], i - 3, CALLQUEUE_URGENT, 7);
		assert_int_equal(callqueue_push(&q, &it[i].node), 0);
	}
	assert_int_equal(callqueue_len(&q), 6);
	/* At t the resync may send one (its bucket is full) while urgent ones wait: the first
	 * contested token goes to urgent, the second to the resync, as its share says. */
	assert_int_equal(pop_next(&q, &t), 0);
	assert_int_equal(pop_next(&q, &t), 10);
	/* resync bucket now empty (2/s): urgent calls go without contest */
	assert_int_equal(pop_next(&q, &t), 1);
	assert_int_equal(pop_next(&q, &t), 2);
	assert_int_equal(t, 0);
	/* resync calls keep their order, paced at 0.5 × 4 = 2/s */
	assert_int_equal(pop_next(&q, &t), 11);
	assert_int_equal(t, SEC / 2);
	assert_int_equal(pop_next(&q, &t), 12);
	assert_int_equal(t, SEC);
	assert_int_equal(callqueue_len(&q), 0);
	callqueue_clear(&q);
}

/* Urgent calls of one class: a fleet with many calls does not hold another's behind it. */
static void test_fairness_between_fleets(void **state)
{
	struct callqueue q;
	struct item it[12];
	uint64_t t = 0;
	int order[12], i;

	(void)state;
	assert_int_equal(callqueue_init(&q, 4, 4, 0.5, t), 0);
	/* fleet 1 queues 8 calls, then fleets 2 and 3 two each */
	for (i = 0; i < 8; i++)
		item_init(&it[i], 100 + i, CALLQUEUE_URGENT, 1);
	for (i = 8; i < 10; i++)
		item_init(&it[i], 200 + i - 8, CALLQUEUE_URGENT, 2);
	for (i = 10; i < 12; i++)
		item_init(&it[i], 300 + i - 10, CALLQUEUE_URGENT, 3);
	for (i = 0; i < 12; i++)
		assert_int_equal(callqueue_push(&q, &it[i].node), 0);
	for (i = 0; i < 12; i++)
		order[i] = pop_next(&q, &t);
	/* round robin, each fleet's calls in order */
	const int want[12] = { 100, 200, 300, 101, 201, 301, 102, 103, 104, 105, 106, 107 };
	for (i = 0; i < 12; i++)
		assert_int_equal(order[i], want[i]);
	/* the budget is unchanged: 4 at once, then one every 250 ms */
	assert_int_equal(t, 8 * SEC / 4);
	callqueue_clear(&q);
}

/* A fleet that joins while others wait gets its turn within one round, not after them. */
static void test_new_fleet_waits_one_round(void **state)
{
	struct callqueue q;
	struct item a[20], b;
	uint64_t t = 0;
	int i, pos = -1;

	(void)state;
	assert_int_equal(callqueue_init(&q, 4, 4, 0.5, t), 0);
	for (i = 0; i < 20; i++) {
		item_init(&a[i], i, CALLQUEUE_URGENT, (uint32_t)(1 + i % 2));
		assert_int_equal(callqueue_push(&q, &a[i].node), 0);
	}
	(void)pop_next(&q, &t);
	item_init(&b, 99, CALLQUEUE_URGENT, 5);
	assert_int_equal(callqueue_push(&q, &b.node), 0);
	for (i = 0; i < 20; i++)
		if (pop_next(&q, &t) == 99)
			pos = i;
	/* two fleets in the rotation ahead of it: it goes third, not after the 19 others */
	assert_int_equal(pos, 2);
	callqueue_clear(&q);
}

/* However many urgent calls keep coming, the resync gets its share of the tokens. */
static void test_resync_not_starved(void **state)
{
	struct callqueue q;
	static struct item urgent[400];
	struct item resync[20];
	uint64_t t = 0;
	int i, next_urgent = 0, resync_done = 0, urgent_done = 0;

	(void)state;
	assert_int_equal(callqueue_init(&q, 4, 4, 0.5, t), 0);
	for (i = 0; i < 20; i++) {
		item_init(&resync[i], 1000 + i, CALLQUEUE_RESYNC, 0);
		assert_int_equal(callqueue_push(&q, &resync[i].node), 0);
	}
	/* keep 8 urgent calls waiting at all times, from 4 fleets */
	while (t < 10 * SEC) {
		while (callqueue_len(&q) - (size_t)(20 - resync_done) < 8 && next_urgent < 400) {
			item_init(&urgent[next_urgent], next_urgent, CALLQUEUE_URGENT,
				  (uint32_t)(next_urgent % 4));
			assert_int_equal(callqueue_push(&q, &urgent[next_urgent].node), 0);
			next_urgent++;
		}
		if (pop_next(&q, &t) >= 1000)
			resync_done++;
		else
			urgent_done++;
	}
	/* Pops until 10 s: the burst of 4, then one every 250 ms: 44 tokens. A resync call that its pace (2/s) lets go
	 * is passed over by at most (1 - share) / share = 1 urgent call: one every 0.75 s at
	 * worst, never faster than its pace; urgent calls get the rest. */
	assert_int_equal(resync_done + urgent_done, 44);
	assert_true(resync_done >= 13 && resync_done <= 21);
	assert_true(urgent_done >= 24);
	/* what was left of both is still queued, then drained by clear */
	callqueue_clear(&q);
}

/* Alone, the resync is paced at resync_share × rate, never faster. */
static void test_resync_paced_alone(void **state)
{
	struct callqueue q;
	struct item it[9];
	uint64_t t = 0;
	int i;

	(void)state;
	assert_int_equal(callqueue_init(&q, 4, 4, 0.25, t), 0);
	for (i = 0; i < 9; i++) {
		item_init(&it[i], i, CALLQUEUE_RESYNC, (uint32_t)i);
		assert_int_equal(callqueue_push(&q, &it[i].node), 0);
	}
	for (i = 0; i < 9; i++)
		assert_int_equal(pop_next(&q, &t), i);     /* FIFO, whatever the fleet */
	/* 1/s: the first at once, then one per second */
	assert_int_equal(t, 8 * SEC);
	callqueue_clear(&q);
}

/* While the resync waits for its own pace, an urgent call goes at once. */
static void test_urgent_not_held_by_resync_pace(void **state)
{
	struct callqueue q;
	struct item r[2], u;
	uint64_t t = 0, w;

	(void)state;
	assert_int_equal(callqueue_init(&q, 4, 4, 0.5, t), 0);
	item_init(&r[0], 1, CALLQUEUE_RESYNC, 0);
	item_init(&r[1], 2, CALLQUEUE_RESYNC, 0);
	assert_int_equal(callqueue_push(&q, &r[0].node), 0);
	assert_int_equal(callqueue_push(&q, &r[1].node), 0);
	assert_int_equal(pop_id(&q, t, NULL), 1);
	assert_int_equal(pop_id(&q, t, &w), -1);
	assert_int_equal(w, SEC / 2);
	item_init(&u, 3, CALLQUEUE_URGENT, 4);
	assert_int_equal(callqueue_push(&q, &u.node), 0);
	assert_int_equal(pop_id(&q, t + 1, NULL), 3);
	assert_int_equal(pop_id(&q, t + SEC / 2, NULL), 2);
	callqueue_clear(&q);
}

/* A removed node (cancelled call) leaves the rotation intact; removing twice is harmless. */
static void test_remove(void **state)
{
	struct callqueue q;
	struct item a, b, c, d;
	uint64_t t = 0;

	(void)state;
	assert_int_equal(callqueue_init(&q, 4, 4, 0.5, t), 0);
	item_init(&a, 1, CALLQUEUE_URGENT, 1);
	item_init(&b, 2, CALLQUEUE_URGENT, 2);
	item_init(&c, 3, CALLQUEUE_URGENT, 1);
	item_init(&d, 4, CALLQUEUE_RESYNC, 0);
	assert_int_equal(callqueue_push(&q, &a.node), 0);
	assert_int_equal(callqueue_push(&q, &b.node), 0);
	assert_int_equal(callqueue_push(&q, &c.node), 0);
	assert_int_equal(callqueue_push(&q, &d.node), 0);
	callqueue_remove(&q, &b.node);          /* fleet 2's lane goes away */
	callqueue_remove(&q, &b.node);
	callqueue_remove(&q, &d.node);
	assert_int_equal(callqueue_len(&q), 2);
	assert_int_equal(pop_next(&q, &t), 1);
	assert_int_equal(pop_next(&q, &t), 3);
	assert_int_equal(callqueue_len(&q), 0);
	callqueue_clear(&q);
}

/* A node that was next in line while the budget was empty is marked as having waited. */
static void test_waited_mark(void **state)
{
	struct callqueue q;
	struct item it[3];
	uint64_t t = 0, w;

	(void)state;
	assert_int_equal(callqueue_init(&q, 1, 1, 0.5, t), 0);
	for (int i = 0; i < 2; i++) {
		item_init(&it[i], i, CALLQUEUE_URGENT, 1);
		assert_int_equal(callqueue_push(&q, &it[i].node), 0);
	}
	assert_int_equal(pop_id(&q, t, NULL), 0);
	assert_false(it[0].node.waited);
	assert_int_equal(pop_id(&q, t, &w), -1);
	assert_int_equal(w, SEC);
	assert_true(it[1].node.waited);
	assert_int_equal(pop_id(&q, t + w, NULL), 1);
	callqueue_clear(&q);
}

/* A wake-up for a fleet whose resync reads wait: they become urgent, in order; others stay. */
static void test_promote(void **state)
{
	struct callqueue q;
	struct item r[5], u;
	uint64_t t = 0;
	int i;

	(void)state;
	assert_int_equal(callqueue_init(&q, 4, 4, 0.25, t), 0);
	for (i = 0; i < 5; i++) {
		item_init(&r[i], 10 + i, CALLQUEUE_RESYNC, (uint32_t)(i % 2 ? 7 : 3));
		assert_int_equal(callqueue_push(&q, &r[i].node), 0);
	}
	item_init(&u, 1, CALLQUEUE_URGENT, 7);
	assert_int_equal(callqueue_push(&q, &u.node), 0);
	assert_int_equal(callqueue_promote(&q, 9), 0);
	assert_int_equal(callqueue_promote(&q, 7), 2);          /* 11 and 13 */
	assert_int_equal(q.n_urgent, 3);
	assert_int_equal(q.n_resync, 3);
	assert_int_equal(pop_next(&q, &t), 1);
	assert_int_equal(pop_next(&q, &t), 11);
	assert_int_equal(pop_next(&q, &t), 13);
	assert_int_equal(t, 0);                                 /* urgent: no resync pace */
	assert_int_equal(pop_next(&q, &t), 10);
	assert_int_equal(pop_next(&q, &t), 12);
	assert_int_equal(pop_next(&q, &t), 14);
	assert_int_equal(t, 2 * SEC);                            /* resync at 1/s */
	callqueue_clear(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_rejects_bad_share),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_urgent_before_resync),
		cmocka_unit_test(test_fairness_between_fleets),
		cmocka_unit_test(test_new_fleet_waits_one_round),
		cmocka_unit_test(test_resync_not_starved),
		cmocka_unit_test(test_resync_paced_alone),
		cmocka_unit_test(test_urgent_not_held_by_resync_pace),
		cmocka_unit_test(test_remove),
		cmocka_unit_test(test_waited_mark),
		cmocka_unit_test(test_promote),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
