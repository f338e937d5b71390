/*
 * test_sentinel.c — the Sentinel reply readers, on replies parsed from RESP text by hiredis's
 * reader (as the transport hands them over), including malformed ones.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "sentinel.h"

static redisReply *parse(const char *resp)
{
	redisReader *r = redisReaderCreate();
	void *reply = NULL;

	assert_non_null(r);
	assert_int_equal(redisReaderFeed(r, resp, strlen(resp)), REDIS_OK);
	assert_int_equal(redisReaderGetReply(r, &reply), REDIS_OK);
	assert_non_null(reply);
	redisReaderFree(r);
	return reply;
}

static void test_master_addr(void **state)
{
	static const struct {
		const char *resp;
		int rc;
		const char *host;
		int port;
	} cases[] = {
		{ "*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6380\r\n", 0, "127.0.0.1", 6380 },
		{ "*2\r\n$3\r\n::1\r\n$5\r\n26379\r\n", 0, "::1", 26379 },
		{ "*-1\r\n", -ENOENT, NULL, 0 },
		{ "$-1\r\n", -ENOENT, NULL, 0 },
		{ "-ERR No such master with that name\r\n", -EPROTO, NULL, 0 },
		{ "*1\r\n$9\r\n127.0.0.1\r\n", -EPROTO, NULL, 0 },
		{ "*2\r\n$9\r\n127.0.0.1\r\n$5\r\n70000\r\n", -EPROTO, NULL, 0 },
		{ "*2\r\n$9\r\n127.0.0.1\r\n$2\r\n6x\r\n", -EPROTO, NULL, 0 },
		{ "*2\r\n$0\r\n\r\n$4\r\n6380\r\n", -EPROTO, NULL, 0 },
		{ "*2\r\n:1\r\n:2\r\n", -EPROTO, NULL, 0 },
	};
	char host[64];
	int port;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		redisReply *r;
		r = parse(cases[i].resp);
		port = -1;
		assert_int_equal(sentinel_parse_master_addr(r, host, sizeof(host), &port), cases[i].rc);
		if (cases[i].rc == 0) {
			assert_string_equal(host, cases[i].host);
			assert_int_equal(port, cases[i].port);
		}
		freeReplyObject(r);
	}
	/* A host longer than the buffer is refused, not cut. */
	redisReply *r = parse("*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6380\r\n");
	assert_int_equal(sentinel_parse_master_addr(r, host, 9, &port), -EPROTO);
	freeReplyObject(r);
	assert_int_equal(sentinel_parse_master_addr(NULL, host, sizeof(host), &port), -EPROTO);
}

static void test_role(void **state)
{
	char role[16];
	redisReply *r;

	(void)state;
	r = parse("*3\r\n$6\r\nmaster\r\n:10\r\n*0\r\n");
	assert_int_equal(sentinel_role_is_master(r, role, sizeof(role)), 1);
	freeReplyObject(r);
	r = parse("*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n$9\r\nconnected\r\n:10\r\n");
	assert_int_equal(sentinel_role_is_master(r, role, sizeof(role)), 0);
	assert_string_equal(role, "slave");
	freeReplyObject(r);
	r = parse("-NOPERM this user has no permissions to run the 'role' command\r\n");
	assert_int_equal(sentinel_role_is_master(r, role, sizeof(role)), -EPROTO);
	freeReplyObject(r);
	r = parse("*0\r\n");
	assert_int_equal(sentinel_role_is_master(r, role, sizeof(role)), -EPROTO);
	freeReplyObject(r);
}

static void test_switch_master(void **state)
{
	redisReply *r;

	(void)state;
	r = parse("*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$38\r\n"
		  "mymaster 127.0.0.1 6379 127.0.0.1 6380\r\n");
	assert_true(sentinel_is_switch_master(r, "mymaster"));
	assert_false(sentinel_is_switch_master(r, "mymaste"));
	assert_false(sentinel_is_switch_master(r, "other"));
	freeReplyObject(r);
	r = parse("*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n");
	assert_false(sentinel_is_switch_master(r, "mymaster"));
	freeReplyObject(r);
	r = parse("*3\r\n$7\r\nmessage\r\n$6\r\n+sdown\r\n$8\r\nmymaster\r\n");
	assert_false(sentinel_is_switch_master(r, "mymaster"));
	freeReplyObject(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_master_addr),
		cmocka_unit_test(test_role),
		cmocka_unit_test(test_switch_master),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
