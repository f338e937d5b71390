/*
 * test_redis_reader.c — the reply reader wrapper of redis_conn.c (redis_reader_new,
 * redis_reader_feed): replies split at every byte, a pipelined stream, and the malformed or
 * hostile inputs a server could send (bad type byte, nesting beyond hiredis 0.14's limit, an
 * array header announcing a billion elements).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "redis_conn.h"

struct collected {
	redisReply *replies[8];
	size_t n;
};

static void collect(void *ud, redisReply *reply)
{
	struct collected *c = ud;

	if (c->n < 8)
		c->replies[c->n++] = reply;
	else
		freeReplyObject(reply);
}

static void release(struct collected *c)
{
	for (size_t i = 0; i < c->n; i++)
		freeReplyObject(c->replies[i]);
	c->n = 0;
}

static const char stream[] =
	"+OK\r\n"
	"*3\r\n$7\r\nmessage\r\n$15\r\nivs:prod:wake:x\r\n$3\r\nnow\r\n"
	":42\r\n"
	"$-1\r\n"
	"-READONLY You can't write against a read only replica.\r\n"
	"*2\r\n*1\r\n:1\r\n$0\r\n\r\n";

static void check_stream(const struct collected *c)
{
	assert_int_equal(c->n, 6);
	assert_int_equal(c->replies[0]->type, REDIS_REPLY_STATUS);
	assert_string_equal(c->replies[0]->str, "OK");
	assert_int_equal(c->replies[1]->type, REDIS_REPLY_ARRAY);
	assert_int_equal(c->replies[1]->elements, 3);
	assert_string_equal(c->replies[1]->element[1]->str, "ivs:prod:wake:x");
	assert_int_equal(c->replies[2]->integer, 42);
	assert_int_equal(c->replies[3]->type, REDIS_REPLY_NIL);
	assert_int_equal(c->replies[4]->type, REDIS_REPLY_ERROR);
	assert_int_equal(c->replies[5]->element[0]->element[0]->integer, 1);
	assert_int_equal(c->replies[5]->element[1]->len, 0);
}

static void test_whole_and_split_at_every_byte(void **state)
{
	struct collected c = { .n = 0 };
	char err[256];
	redisReader *r;

	(void)state;
	r = redis_reader_new();
	assert_non_null(r);
	assert_int_equal(redis_reader_feed(r, stream, sizeof(stream) - 1, collect, &c, err,
					   sizeof(err)), 0);
	check_stream(&c);
	release(&c);
	redisReaderFree(r);
	r = redis_reader_new();
	for (size_t i = 0; i < sizeof(stream) - 1; i++)
		assert_int_equal(redis_reader_feed(r, stream + i, 1, collect, &c, err, sizeof(err)), 0);
	check_stream(&c);
	release(&c);
	redisReaderFree(r);
}

static void expect_error(const char *input, size_t len, const char *want)
{
	struct collected c = { .n = 0 };
	char err[256] = "";
	redisReader *r = redis_reader_new();

	assert_non_null(r);
	assert_int_equal(redis_reader_feed(r, input, len, collect, &c, err, sizeof(err)), -EPROTO);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" does not contain \"%s\"", err, want);
	release(&c);
	redisReaderFree(r);
}

static void test_malformed(void **state)
{
	static const char deep[] = "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n";

	(void)state;
	expect_error("%3\r\n", 4, "protocol error: Protocol error, got \"%\" as reply type byte");
	expect_error(":abc\r\n", 6, "protocol error: Bad integer value");
	expect_error(deep, sizeof(deep) - 1, "protocol error: No support for nested multi bulk");
	/* A TLS alert where a reply should be (a TLS server behind redis://). */
	expect_error("\x15\x03\x03\x00\x02", 5, "protocol error: Protocol error");
}

static void test_huge_array_header_is_refused(void **state)
{
	(void)state;
	/* hiredis 0.14 would calloc 777,777,771 pointers for this header alone. */
	expect_error("*777777771\r\n", 12,
		     "protocol error: an array reply of more than 1048576 elements");
	expect_error("*1048577\r\n", 10, "an array reply of more than 1048576 elements");
	/* The limit itself is fine (and nothing is allocated until the elements arrive). */
	struct collected c = { .n = 0 };
	char err[256];
	redisReader *r = redis_reader_new();
	assert_int_equal(redis_reader_feed(r, "*2\r\n:1\r\n", 8, collect, &c, err, sizeof(err)), 0);
	assert_int_equal(c.n, 0);    /* incomplete: waits for the second element */
	assert_int_equal(redis_reader_feed(r, ":2\r\n", 4, collect, &c, err, sizeof(err)), 0);
	assert_int_equal(c.n, 1);
	release(&c);
	redisReaderFree(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_and_split_at_every_byte),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_huge_array_header_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
