/*
 * test_lease.c — the leader lease state machine with an injected monotonic clock: acquire,
 * renew on time, renew late, renew with an unknown outcome, lost to another id, Redis down,
 * an acquire whose answer was lost, release.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lease.h"

#define MS 1000ull
/* Sub-second timings, as the integration tests use: lease 1s, deadline 600ms, retry 100ms. */
static const struct lease_timing timing = { 1000 * MS, 600 * MS, 100 * MS };

static uint64_t now;   /* the injected clock */

static struct lease fresh(void)
{
	struct lease l;
	now = 5000 * MS;
	lease_init(&l, &timing, "host-a", now);
	return l;
}

/* Send the due request at the current time; assert it is the expected one. */
static const char *send_due(struct lease *l, enum lease_request want, const char *random)
{
	assert_int_equal(lease_due(l, now), want);
	return lease_begin(l, want, random, now);
}

static void become_leader(struct lease *l)
{
	const char *v = send_due(l, LEASE_REQ_ACQUIRE, "r1");
	assert_string_equal(v, "host-a:r1");
	now += 2 * MS;
	assert_int_equal(lease_done(l, LEASE_OUTCOME_OK, NULL, now), LEASE_BECAME_LEADER);
	assert_int_equal(l->role, LEASE_LEADER);
}

static void test_acquire_and_renew_on_time(void **state)
{
	struct lease l = fresh();
	uint64_t sent;
	(void)state;

	assert_false(lease_may_mutate(&l, now));
	sent = now;
	become_leader(&l);
	/* The right ends at send time + renew_deadline, not answer time + anything. */
	assert_true(lease_may_mutate(&l, sent + 600 * MS - 1));
	assert_false(lease_may_mutate(&l, sent + 600 * MS));
	/* Nothing is due before retry_period has passed since the send. */
	assert_int_equal(lease_due(&l, now), LEASE_REQ_NONE);
	assert_int_equal(lease_next_wakeup(&l), sent + 100 * MS);
	/* Ten renewals on time keep it. */
	for (int i = 0; i < 10; i++) {
		now = lease_next_wakeup(&l);
		sent = now;
		send_due(&l, LEASE_REQ_RENEW, NULL);
		now += 5 * MS;
		assert_int_equal(lease_done(&l, LEASE_OUTCOME_OK, NULL, now), LEASE_UNCHANGED);
		assert_int_equal(lease_tick(&l, now), LEASE_UNCHANGED);
		assert_true(lease_may_mutate(&l, now));
		assert_int_equal(l.valid_until_us, sent + 600 * MS);
	}
	assert_int_equal(l.transitions, 1);
}

static void test_renew_late(void **state)
{
	struct lease l = fresh();
	uint64_t sent;
	(void)state;

	become_leader(&l);
	now = lease_next_wakeup(&l);
	sent = now;
	send_due(&l, LEASE_REQ_RENEW, NULL);
	/* The answer takes longer than renew_deadline: the old deadline passes first. */
	now = sent + 700 * MS;
	assert_false(lease_may_mutate(&l, now));
	/* Even an OK that arrives after its own send time + renew_deadline gives nothing. */
	assert_int_equal(lease_done(&l, LEASE_OUTCOME_OK, NULL, now), LEASE_LOST_DEADLINE);
	assert_int_equal(l.role, LEASE_CANDIDATE);
	assert_false(lease_may_mutate(&l, now));
	assert_int_equal(l.transitions, 2);
	/* An OK that is slow but inside the deadline counts from its send time. */
	l = fresh();
	become_leader(&l);
	now = lease_next_wakeup(&l);
	sent = now;
	send_due(&l, LEASE_REQ_RENEW, NULL);
	now = sent + 500 * MS;
	assert_int_equal(lease_done(&l, LEASE_OUTCOME_OK, NULL, now), LEASE_UNCHANGED);
	assert_true(lease_may_mutate(&l, sent + 600 * MS - 1));
	assert_false(lease_may_mutate(&l, sent + 600 * MS));
}

static void test_renew_unknown(void **state)
{
	struct lease l = fresh();
	uint64_t last_good;
	(void)state;

	last_good = now;
	become_leader(&l);
	/* Every renewal times out: the deadline never moves. */
	for (;;) {
		now = lease_next_wakeup(&l);
		if (now >= last_good + 600 * MS)
			break;
		send_due(&l, LEASE_REQ_RENEW, NULL);
		now += 50 * MS;
		enum lease_change c = lease_done(&l, LEASE_OUTCOME_UNKNOWN, NULL, now);
		if (now < last_good + 600 * MS) {
			assert_int_equal(c, LEASE_UNCHANGED);
			assert_true(lease_may_mutate(&l, now));
		} else {
			assert_int_equal(c, LEASE_LOST_DEADLINE);
		}
		assert_int_equal(l.valid_until_us == 0 || l.valid_until_us == last_good + 600 * MS, 1);
	}
	/* The deadline wake-up steps down exactly once. */
	now = last_good + 600 * MS;
	assert_false(lease_may_mutate(&l, now));
	enum lease_change c = lease_tick(&l, now);
	assert_int_equal(c, LEASE_LOST_DEADLINE);
	assert_int_equal(lease_tick(&l, now + 1), LEASE_UNCHANGED);
	assert_int_equal(l.role, LEASE_CANDIDATE);
}

static void test_lost_to_another_id(void **state)
{
	struct lease l = fresh();
	char who[LEASE_INSTANCE_MAX + 1];
	const char *v;
	(void)state;

	become_leader(&l);
	now = lease_next_wakeup(&l);
	send_due(&l, LEASE_REQ_RENEW, NULL);
	now += 3 * MS;
	/* The script answers 0: the key is gone or holds someone else's value. */
	assert_int_equal(lease_done(&l, LEASE_OUTCOME_REFUSED, NULL, now), LEASE_LOST_TAKEN);
	assert_false(lease_may_mutate(&l, now));
	assert_int_equal(l.role, LEASE_CANDIDATE);
	/* It becomes a candidate at once, with a new value. */
	v = send_due(&l, LEASE_REQ_ACQUIRE, "r2");
	assert_string_equal(v, "host-a:r2");
	now += 2 * MS;
	assert_int_equal(lease_done(&l, LEASE_OUTCOME_REFUSED, "host-b:ffee", now), LEASE_UNCHANGED);
	assert_false(lease_may_mutate(&l, now));
	lease_holder_instance(l.holder, who, sizeof(who));
	assert_string_equal(who, "host-b");
	/* It keeps trying every retry period and stays out while host-b holds the key. */
	for (int i = 0; i < 20; i++) {
		assert_int_equal(lease_due(&l, now), LEASE_REQ_NONE);
		now = lease_next_wakeup(&l);
		send_due(&l, LEASE_REQ_ACQUIRE, "r3");
		assert_int_equal(lease_done(&l, LEASE_OUTCOME_REFUSED, "host-b:ffee", now), LEASE_UNCHANGED);
		assert_false(lease_may_mutate(&l, now));
	}
	/* host-b's key expires: the next acquire wins. */
	now = lease_next_wakeup(&l);
	send_due(&l, LEASE_REQ_ACQUIRE, "r4");
	assert_int_equal(lease_done(&l, LEASE_OUTCOME_OK, NULL, now + MS), LEASE_BECAME_LEADER);
	assert_true(lease_may_mutate(&l, now + MS));
}

static void test_redis_down(void **state)
{
	struct lease l = fresh();
	uint64_t last_good = now, down_until;
	int stepped_down = 0;
	(void)state;

	become_leader(&l);
	/* Redis unreachable for 3 s: every request fails at once (the driver cannot send). */
	down_until = now + 3000 * MS;
	while (now < down_until) {
		enum lease_request req;
		now = lease_next_wakeup(&l);
		if (lease_tick(&l, now) == LEASE_LOST_DEADLINE)
			stepped_down++;
		req = lease_due(&l, now);
		if (req == LEASE_REQ_NONE)
			continue;
		lease_begin(&l, req, "rx", now);
		enum lease_change c = lease_done(&l, LEASE_OUTCOME_UNKNOWN, NULL, now);
		if (c == LEASE_LOST_DEADLINE)
			stepped_down++;
		assert_int_equal(lease_may_mutate(&l, now), now < last_good + 600 * MS);
	}
	assert_int_equal(stepped_down, 1);
	assert_int_equal(l.role, LEASE_CANDIDATE);
	/* Redis is back and the key (TTL 1 s) has long expired: a plain acquire wins, with the
	 * value kept (a lost answer might have set it). */
	now = lease_next_wakeup(&l);
	assert_string_equal(send_due(&l, LEASE_REQ_ACQUIRE, "ry"), "host-a:r1");
	assert_int_equal(lease_done(&l, LEASE_OUTCOME_OK, NULL, now + MS), LEASE_BECAME_LEADER);
}

static void test_redis_blip_keeps_own_key(void **state)
{
	struct lease l = fresh();
	uint64_t sent;
	(void)state;

	become_leader(&l);
	/* Renewals fail until the deadline passes, but the key (TTL 1 s) is still ours. */
	while (l.role == LEASE_LEADER) {
		now = lease_next_wakeup(&l);
		if (lease_tick(&l, now) != LEASE_UNCHANGED)
			break;
		send_due(&l, LEASE_REQ_RENEW, NULL);
		lease_done(&l, LEASE_OUTCOME_UNKNOWN, NULL, now);
	}
	assert_false(lease_may_mutate(&l, now));
	/* Redis answers again: SET NX is refused, the key holds our own value. */
	now = lease_next_wakeup(&l);
	send_due(&l, LEASE_REQ_ACQUIRE, "zz");
	assert_int_equal(lease_done(&l, LEASE_OUTCOME_REFUSED, "host-a:r1", now), LEASE_UNCHANGED);
	assert_false(lease_may_mutate(&l, now));
	/* It renews its own key; only that answer, with its send time, makes it leader. */
	sent = now;
	send_due(&l, LEASE_REQ_RENEW, NULL);
	assert_int_equal(lease_done(&l, LEASE_OUTCOME_OK, NULL, now + MS), LEASE_BECAME_LEADER);
	assert_int_equal(l.valid_until_us, sent + 600 * MS);
}

static void test_acquire_answer_lost(void **state)
{
	struct lease l = fresh();
	(void)state;

	assert_string_equal(send_due(&l, LEASE_REQ_ACQUIRE, "aa"), "host-a:aa");
	now += 50 * MS;
	assert_int_equal(lease_done(&l, LEASE_OUTCOME_UNKNOWN, NULL, now), LEASE_UNCHANGED);
	assert_false(lease_may_mutate(&l, now));
	/* The SET did land: the retry is refused and finds our value. */
	now = lease_next_wakeup(&l);
	assert_string_equal(send_due(&l, LEASE_REQ_ACQUIRE, "bb"), "host-a:aa");
	assert_int_equal(lease_done(&l, LEASE_OUTCOME_REFUSED, "host-a:aa", now), LEASE_UNCHANGED);
	send_due(&l, LEASE_REQ_RENEW, NULL);
	/* A refused renewal here means the key expired meanwhile: still a candidate. */
	assert_int_equal(lease_done(&l, LEASE_OUTCOME_REFUSED, NULL, now), LEASE_UNCHANGED);
	assert_int_equal(l.role, LEASE_CANDIDATE);
	assert_string_equal(send_due(&l, LEASE_REQ_ACQUIRE, "cc"), "host-a:cc");
}

static void test_release(void **state)
{
	struct lease l = fresh();
	enum lease_change c;
	(void)state;

	become_leader(&l);
	assert_true(lease_release_begin(&l, &c));
	assert_int_equal(c, LEASE_RELEASED);
	/* No mutating call may start once the release begins, and nothing more is sent. */
	assert_false(lease_may_mutate(&l, now));
	assert_int_equal(lease_due(&l, now + 10000 * MS), LEASE_REQ_NONE);
	assert_int_equal(lease_next_wakeup(&l), UINT64_MAX);
	assert_false(lease_release_begin(&l, &c));
	assert_int_equal(c, LEASE_UNCHANGED);
	/* A candidate that never held the key sends no release. */
	l = fresh();
	send_due(&l, LEASE_REQ_ACQUIRE, "q");
	lease_done(&l, LEASE_OUTCOME_REFUSED, "host-b:1", now);
	assert_false(lease_release_begin(&l, &c));
	assert_int_equal(c, LEASE_UNCHANGED);
	/* One whose acquire is still on the wire might hold it: release. */
	l = fresh();
	send_due(&l, LEASE_REQ_ACQUIRE, "q");
	assert_true(lease_release_begin(&l, &c));
	/* Its answer, arriving later, changes nothing. */
	assert_int_equal(lease_done(&l, LEASE_OUTCOME_OK, NULL, now), LEASE_UNCHANGED);
	assert_false(lease_may_mutate(&l, now));
}

static void test_holder_instance(void **state)
{
	char buf[LEASE_INSTANCE_MAX + 1];
	char tiny[4];
	(void)state;

	lease_holder_instance("host-b:0123abcd", buf, sizeof(buf));
	assert_string_equal(buf, "host-b");
	lease_holder_instance("", buf, sizeof(buf));
	assert_string_equal(buf, "");
	lease_holder_instance(NULL, buf, sizeof(buf));
	assert_string_equal(buf, "");
	lease_holder_instance("no-colon", buf, sizeof(buf));
	assert_string_equal(buf, "no-colon");
	lease_holder_instance("a:b:c", buf, sizeof(buf));
	assert_string_equal(buf, "a:b");
	lease_holder_instance("longname:1", tiny, sizeof(tiny));
	assert_string_equal(tiny, "lon");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_acquire_and_renew_on_time),
		cmocka_unit_test(test_renew_late),
		cmocka_unit_test(test_renew_unknown),
		cmocka_unit_test(test_lost_to_another_id),
		cmocka_unit_test(test_redis_down),
		cmocka_unit_test(test_redis_blip_keeps_own_key),
		cmocka_unit_test(test_acquire_answer_lost),
		cmocka_unit_test(test_release),
		cmocka_unit_test(test_holder_instance),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
