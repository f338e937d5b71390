/*
 * test_redisio.c — the Redis connections against a real redis-server started by the test
 * (Unix socket in a private temporary directory, plus TCP on a free loopback port). The event
 * loop is driven until the expected callback fires or a deadline passes; nothing sleeps to
 * synchronise. Every server started is killed in the group teardown, even when a test fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "redis_server.h"
#include "redisio.h"

#define DEADLINE_MS 10000

static struct server srv = { .pid = -1 };

static void sync_command(const struct server *s, const char *password, const char *fmt, ...)
{
	redisContext *c = sync_client(s, password);
	va_list ap;

	assert_non_null(c);
	assert_int_equal(c->err, 0);
	va_start(ap, fmt);
	freeReplyObject(redisvCommand(c, fmt, ap));
	va_end(ap);
	redisFree(c);
}

/* ---- event loop harness ----------------------------------------------------------------- */

struct harness {
	sd_event *event;
	struct redisio *rio;
	int ups, downs;
	int wakes;
	char last_wake[256];
	/* the last command result */
	int replies, failures;
	int reply_type;
	char reply_str[128];
	char error[128];
};

static void on_state(void *ud, bool connected)
{
	struct harness *h = ud;
	if (connected)
		h->ups++;
	else
		h->downs++;
}

static void on_wake(void *ud, const char *reason)
{
	struct harness *h = ud;
	h->wakes++;
	snprintf(h->last_wake, sizeof(h->last_wake), "%s", reason);
}

static void on_wake_message(void *ud, const char *message)
{
	struct harness *h = ud;
	h->wakes++;
	snprintf(h->last_wake, sizeof(h->last_wake), "message:%s", message);
}

static void on_reply(void *ud, redisReply *r, const char *error)
{
	struct harness *h = ud;
	if (r == NULL) {
		h->failures++;
		snprintf(h->error, sizeof(h->error), "%s", error);
		return;
	}
	h->replies++;
	h->reply_type = r->type;
	snprintf(h->reply_str, sizeof(h->reply_str), "%s", r->str != NULL ? r->str : "");
}

static bool run_until(struct harness *h, const int *counter, int target)
{
	uint64_t end = mono_ms() + DEADLINE_MS;

	while (*counter < target && mono_ms() < end)
		assert_true(sd_event_run(h->event, 100 * 1000) >= 0);
	return *counter >= target;
}

static double fixed_random(void *ud)
{
	(void)ud;
	return 0.5;
}

static void harness_open_cbs(struct harness *h, struct redisio_options *o,
			     const struct redisio_callbacks *cbs);

static void harness_open(struct harness *h, struct redisio_options *o)
{
	static const struct redisio_callbacks cbs = { on_state, on_wake, NULL };

	harness_open_cbs(h, o, &cbs);
}

static void harness_open_cbs(struct harness *h, struct redisio_options *o,
			     const struct redisio_callbacks *cbs)
{

	memset(h, 0, sizeof(*h));
	assert_int_equal(sd_event_new(&h->event), 0);
	if (o->backoff_initial_ms == 0)
		o->backoff_initial_ms = 10;
	if (o->backoff_max_ms == 0)
		o->backoff_max_ms = 50;
	o->random01 = fixed_random;
	h->rio = redisio_new(h->event, o, cbs, h);
	assert_non_null(h->rio);
}

static void harness_close(struct harness *h)
{
	redisio_free(h->rio);
	h->rio = NULL;
	sd_event_unref(h->event);
}

static int send_cmd(struct harness *h, const char *a0, const char *a1)
{
	const char *argv[] = { a0, a1 };
	return redisio_command_argv(h->rio, a1 != NULL ? 2 : 1, argv, NULL, on_reply, h);
}

/* ---- tests -------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	if (system("command -v redis-server >/dev/null 2>&1") != 0) {
		fprintf(stderr, "redis-server not found: install it (make deps)\n");
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	server_cleanup(&srv);
	return 0;
}

static int start_plain(void **state)
{
	(void)state;
	server_cleanup(&srv);
	return server_start(&srv, NULL) == 0 ? 0 : -1;
}

static void test_backoff(void **state)
{
	(void)state;
	assert_int_equal(redisio_backoff_ms(0, 100, 30000, 0.0), 50);
	assert_int_equal(redisio_backoff_ms(0, 100, 30000, 0.999999), 99);
	assert_int_equal(redisio_backoff_ms(1, 100, 30000, 0.0), 100);
	assert_int_equal(redisio_backoff_ms(3, 100, 30000, 0.5), 600);
	assert_int_equal(redisio_backoff_ms(9, 100, 30000, 0.0), 15000);
	assert_int_equal(redisio_backoff_ms(200, 100, 30000, 0.0), 15000);
	assert_int_equal(redisio_backoff_ms(200, 100, 30000, 1.5), 15000);   /* bad r = no jitter */
	assert_int_equal(redisio_backoff_ms(2, 100, 50, 0.0), 50);           /* max < initial */
}

static void test_bad_options(void **state)
{
	struct redisio_options o = { .host = "127.0.0.1", .port = 0 };
	sd_event *e;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	assert_null(redisio_new(e, &o, NULL, NULL));
	assert_int_equal(errno, EINVAL);
	o.port = 6379;
	o.db = -1;
	assert_null(redisio_new(e, &o, NULL, NULL));
	assert_null(redisio_new(e, NULL, NULL, NULL));
	sd_event_unref(e);
}

static void test_unix_command(void **state)
{
	struct redisio_options o = { .unix_path = srv.sock, .db = 3 };
	struct harness h;

	(void)state;
	harness_open(&h, &o);
	assert_false(redisio_connected(h.rio));
	assert_int_equal(send_cmd(&h, "PING", NULL), -ENOTCONN);
	assert_true(run_until(&h, &h.ups, 1));
	assert_true(redisio_connected(h.rio));
	/* SELECT 3 took effect: the key lands in db 3. */
	assert_int_equal(send_cmd(&h, "INCR", "redisio:counter"), 0);
	assert_true(run_until(&h, &h.replies, 1));
	assert_int_equal(h.reply_type, REDIS_REPLY_INTEGER);
	{
		redisContext *c = sync_client(&srv, NULL);
		freeReplyObject(redisCommand(c, "SELECT 3"));
		redisReply *r = redisCommand(c, "GET redisio:counter");
		assert_non_null(r);
		assert_int_equal(r->type, REDIS_REPLY_STRING);
		assert_string_equal(r->str, "1");
		freeReplyObject(r);
		redisFree(c);
	}
	/* A server error is a reply, not a link failure. */
	assert_int_equal(send_cmd(&h, "NOSUCHCOMMAND", NULL), 0);
	assert_true(run_until(&h, &h.replies, 2));
	assert_int_equal(h.reply_type, REDIS_REPLY_ERROR);
	assert_true(redisio_connected(h.rio));
	assert_int_equal(h.failures, 0);
	assert_int_equal(send_cmd(&h, NULL, NULL), -EINVAL);
	/* Freeing with a command in flight fails it once with "shutting down". */
	assert_int_equal(send_cmd(&h, "PING", NULL), 0);
	redisio_free(h.rio);
	h.rio = NULL;
	assert_int_equal(h.failures, 1);
	assert_string_equal(h.error, "shutting down");
	assert_int_equal(h.downs, 0);
	harness_close(&h);
}

static void test_tcp(void **state)
{
	struct redisio_options o = { .host = "127.0.0.1", .port = srv.port };
	struct harness h;

	(void)state;
	harness_open(&h, &o);
	assert_true(run_until(&h, &h.ups, 1));
	assert_int_equal(send_cmd(&h, "PING", NULL), 0);
	assert_true(run_until(&h, &h.replies, 1));
	assert_int_equal(h.reply_type, REDIS_REPLY_STATUS);
	assert_string_equal(h.reply_str, "PONG");
	harness_close(&h);
}

static void test_wake_and_keyspace(void **state)
{
	struct redisio_options o = { .unix_path = srv.sock, .key_prefix = "ivs:t[1]:",
	                             .wake_channel = "ivs:t[1]:autoscaler:wake",
	                             .subscribe_keyspace = true };
	struct harness h;
	uint64_t end;

	(void)state;
	/* The test, not redisio, turns keyspace events on: the daemon never changes server config. */
	sync_command(&srv, NULL, "CONFIG SET notify-keyspace-events K$s");
	harness_open(&h, &o);
	assert_true(run_until(&h, &h.ups, 1));
	/* PUBLISH until our subscriber counts as a receiver, then the wake must arrive. */
	for (end = mono_ms() + DEADLINE_MS; h.wakes == 0 && mono_ms() < end;) {
		redisContext *c = sync_client(&srv, NULL);
		redisReply *r = redisCommand(c, "PUBLISH %s %s", o.wake_channel, "now");
		long long receivers = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
		freeReplyObject(r);
		redisFree(c);
		if (receivers > 0)
			assert_true(run_until(&h, &h.wakes, 1));
		else
			assert_true(sd_event_run(h.event, 10 * 1000) >= 0);
	}
	assert_int_equal(h.wakes, 1);
	assert_string_equal(h.last_wake, "wake");
	/* A key under the prefix changes: on_wake gets its full name. */
	sync_command(&srv, NULL, "SET %s %s", "ivs:t[1]:desired_stages", "3");
	assert_true(run_until(&h, &h.wakes, 2));
	assert_string_equal(h.last_wake, "ivs:t[1]:desired_stages");
	/* Outside the prefix (and a prefix look-alike the glob must not match): nothing. */
	sync_command(&srv, NULL, "SET %s %s", "other:desired_stages", "3");
	sync_command(&srv, NULL, "SET %s %s", "ivs:t1:desired_stages", "3");
	sync_command(&srv, NULL, "SADD %s %s", "ivs:t[1]:stage:x:viewers", "v1");
	assert_true(run_until(&h, &h.wakes, 3));
	assert_string_equal(h.last_wake, "ivs:t[1]:stage:x:viewers");
	sync_command(&srv, NULL, "CONFIG SET notify-keyspace-events %s", "");
	harness_close(&h);
}

/* Publish msg until the subscriber receives it; true once a wake arrived. */
static bool publish_wake(struct harness *h, const char *channel, const char *msg, int target)
{
	for (uint64_t end = mono_ms() + DEADLINE_MS; h->wakes < target && mono_ms() < end;) {
		redisContext *c = sync_client(&srv, NULL);
		redisReply *r = redisCommand(c, "PUBLISH %s %s", channel, msg);
		long long receivers = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
		freeReplyObject(r);
		redisFree(c);
		if (receivers > 0)
			return run_until(h, &h->wakes, target);
		assert_true(sd_event_run(h->event, 10 * 1000) >= 0);
	}
	return h->wakes >= target;
}

/* With on_wake_message the payload arrives: a fleet name, "" for all, "" for an oversize one. */
static void test_wake_message_payload(void **state)
{
	static const struct redisio_callbacks cbs = { on_state, on_wake, on_wake_message };
	struct redisio_options o = { .unix_path = srv.sock, .key_prefix = "ivs:m:",
	                             .wake_channel = "ivs:m:autoscaler:wake" };
	char big[REDISIO_WAKE_MESSAGE_MAX + 2];
	struct harness h;

	(void)state;
	memset(big, 'f', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	harness_open_cbs(&h, &o, &cbs);
	assert_true(run_until(&h, &h.ups, 1));
	assert_true(publish_wake(&h, o.wake_channel, "main", 1));
	assert_string_equal(h.last_wake, "message:main");
	assert_true(publish_wake(&h, o.wake_channel, "", 2));
	assert_string_equal(h.last_wake, "message:");
	assert_true(publish_wake(&h, o.wake_channel, big, 3));
	assert_string_equal(h.last_wake, "message:");
	assert_int_equal(h.wakes, 3);
	harness_close(&h);
}

static void test_auth(void **state)
{
	static const char *const extra[] = { "--requirepass", "s3cret", NULL };
	struct redisio_options o = { .unix_path = srv.sock, .password = "s3cret" };
	struct harness h, bad;

	(void)state;
	server_cleanup(&srv);
	assert_int_equal(server_start(&srv, extra), 0);
	harness_open(&h, &o);
	assert_true(run_until(&h, &h.ups, 1));
	assert_int_equal(send_cmd(&h, "PING", NULL), 0);
	assert_true(run_until(&h, &h.replies, 1));
	assert_string_equal(h.reply_str, "PONG");
	/* A wrong password never comes up; it keeps retrying with backoff meanwhile. */
	o.password = "wrong";
	harness_open(&bad, &o);
	for (uint64_t end = mono_ms() + 300; mono_ms() < end;)
		assert_true(sd_event_run(bad.event, 50 * 1000) >= 0);
	assert_int_equal(bad.ups, 0);
	assert_false(redisio_connected(bad.rio));
	harness_close(&bad);
	harness_close(&h);
	server_cleanup(&srv);
	assert_int_equal(server_start(&srv, NULL), 0);
}

static void test_reconnect(void **state)
{
	struct redisio_options o = { .unix_path = srv.sock };
	struct harness h;

	(void)state;
	harness_open(&h, &o);
	assert_true(run_until(&h, &h.ups, 1));
	/* Queued but not yet written when the server dies: fails exactly once. */
	assert_int_equal(send_cmd(&h, "PING", NULL), 0);
	server_kill(&srv);
	assert_true(run_until(&h, &h.downs, 1));
	assert_int_equal(h.failures, 1);
	assert_int_equal(h.replies, 0);
	assert_false(redisio_connected(h.rio));
	assert_int_equal(send_cmd(&h, "PING", NULL), -ENOTCONN);
	assert_int_equal(server_start(&srv, NULL), 0);
	assert_true(run_until(&h, &h.ups, 2));
	assert_int_equal(send_cmd(&h, "PING", NULL), 0);
	assert_true(run_until(&h, &h.replies, 1));
	assert_int_equal(h.failures, 1);
	assert_int_equal(h.downs, 1);
	harness_close(&h);
}

static void test_command_timeout(void **state)
{
	struct redisio_options o = { .unix_path = srv.sock, .command_timeout_ms = 200,
	                             .connect_timeout_ms = 200 };
	struct harness h;

	(void)state;
	harness_open(&h, &o);
	assert_true(run_until(&h, &h.ups, 1));
	assert_int_equal(kill(srv.pid, SIGSTOP), 0);
	assert_int_equal(send_cmd(&h, "PING", NULL), 0);
	assert_true(run_until(&h, &h.failures, 1));
	assert_string_equal(h.error, "command timeout");
	assert_int_equal(h.downs, 1);
	assert_false(redisio_connected(h.rio));
	/* Reconnects time out while the server is stopped, then succeed once it runs again. */
	assert_int_equal(kill(srv.pid, SIGCONT), 0);
	assert_true(run_until(&h, &h.ups, 2));
	assert_int_equal(h.failures, 1);
	harness_close(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test_setup(test_unix_command, start_plain),
		cmocka_unit_test(test_tcp),
		cmocka_unit_test(test_wake_and_keyspace),
		cmocka_unit_test(test_wake_message_payload),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_reconnect),
		cmocka_unit_test(test_command_timeout),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
