/*
 * test_control.c — the pure parts of the admin socket: line splitting, validation, tokenizing,
 * command matching, the authorisation decision and reply framing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "control.h"
#include "strbuf.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_next_line(void **state)
{
	static const struct {
		const char *buf;
		size_t cap;
		int want;
		size_t line_len, consumed;
	} cases[] = {
		{ "", 16, 0, 0, 0 },
		{ "status", 16, 0, 0, 0 },
		{ "status\n", 16, 1, 6, 7 },
		{ "status\r\n", 16, 1, 6, 8 },
		{ "\n", 16, 1, 0, 1 },
		{ "\r\n", 16, 1, 0, 2 },
		{ "a\nb\n", 16, 1, 1, 2 },
		{ "0123456789abcde\n", 16, 1, 15, 16 },      /* exactly the cap with its newline */
		{ "0123456789abcdef", 16, -EMSGSIZE, 0, 0 }, /* cap bytes, no newline */
		{ "0123456789abcdef\n", 16, -EMSGSIZE, 0, 0 },
		{ "0123456789abcde", 16, 0, 0, 0 },          /* one short of the cap: wait */
	};
	size_t i, line_len, consumed;
	int r;

	(void)state;
	for (i = 0; i < N(cases); i++) {
		line_len = consumed = 99;
		r = control_next_line(cases[i].buf, strlen(cases[i].buf), cases[i].cap, &line_len,
				      &consumed);
		assert_int_equal(r, cases[i].want);
		if (r == 1) {
			assert_int_equal(line_len, cases[i].line_len);
			assert_int_equal(consumed, cases[i].consumed);
		}
	}
}

static void test_check_line(void **state)
{
	static const struct {
		const char *s;
		size_t len;       /* 0: strlen */
		int ok;
	} cases[] = {
		{ "status", 0, 1 },
		{ "echo\ta  b", 0, 1 },
		{ "echo fl\xc3\xb6te \xe6\x97\xa5 \xf0\x9f\x98\x80", 0, 1 },
		{ "", 0, 1 },
		{ "sta\0tus", 7, 0 },               /* NUL */
		{ "status\r", 0, 0 },               /* stray CR inside the line */
		{ "\x1b[2J", 0, 0 },                /* escape sequence */
		{ "del \x7f", 0, 0 },
		{ "c1 \xc2\x85", 0, 0 },            /* U+0085, a C1 control */
		{ "\xff", 0, 0 },
		{ "\xc3", 0, 0 },                   /* truncated sequence */
		{ "\xc3(", 0, 0 },
		{ "\xc0\xaf", 0, 0 },               /* overlong '/' */
		{ "\xe0\x80\xaf", 0, 0 },           /* overlong, 3 bytes */
		{ "\xed\xa0\x80", 0, 0 },           /* UTF-16 surrogate */
		{ "\xf4\x90\x80\x80", 0, 0 },       /* above U+10FFFF */
		{ "\xf0\x9f\x98", 0, 0 },           /* truncated 4-byte */
	};
	size_t i, len;

	(void)state;
	for (i = 0; i < N(cases); i++) {
		len = cases[i].len ? cases[i].len : strlen(cases[i].s);
		assert_int_equal(control_check_line(cases[i].s, len) == 0, cases[i].ok);
	}
}

static void test_tokenize(void **state)
{
	char line[64], *argv[4];

	(void)state;
	snprintf(line, sizeof(line), "  replication \t start a  b ");
	assert_int_equal(control_tokenize(line, argv, 4), 4);
	assert_string_equal(argv[0], "replication");
	assert_string_equal(argv[1], "start");
	assert_string_equal(argv[2], "a");
	assert_string_equal(argv[3], "b");
	snprintf(line, sizeof(line), " \t ");
	assert_int_equal(control_tokenize(line, argv, 4), 0);
	snprintf(line, sizeof(line), "a b c d e");
	assert_int_equal(control_tokenize(line, argv, 4), -E2BIG);
	snprintf(line, sizeof(line), "one");
	assert_int_equal(control_tokenize(line, argv, 4), 1);
	assert_string_equal(argv[0], "one");
}

static int h_dummy(void *ud, const struct control_request *req, json_t **out, char *err,
		   size_t errlen)
{
	(void)ud; (void)req; (void)out; (void)err; (void)errlen;
	return 0;
}

static const struct control_command cmds[] = {
	{ "replication", "", 0, 0, 0, h_dummy, NULL },
	{ "replication start", "SRC DST PARTICIPANT", 1, 3, 3, h_dummy, NULL },
	{ "replication status", "STAGE_ARN", 0, 1, 1, h_dummy, NULL },
	{ "status", "", 0, 0, 0, h_dummy, NULL },
	{ "stages", "[FLEET]", 0, 0, 1, h_dummy, NULL },
};

static void test_match(void **state)
{
	static const struct {
		const char *line;
		int want;         /* index in cmds, -1 none */
		int words;
	} cases[] = {
		{ "status", 3, 1 },
		{ "stages main", 4, 1 },
		{ "replication start a b c", 1, 2 },
		{ "replication status arn", 2, 2 },
		{ "replication", 0, 1 },
		{ "replication stop a b c", 0, 1 },   /* falls back to the one-word name */
		{ "stat", -1, 0 },                      /* no prefix matching */
		{ "statuses", -1, 0 },
		{ "STATUS", -1, 0 },
		{ "start replication", -1, 0 },
	};
	char line[64], *argv[8];
	const struct control_command *c;
	size_t i;
	int argc, words;

	(void)state;
	for (i = 0; i < N(cases); i++) {
		snprintf(line, sizeof(line), "%s", cases[i].line);
		argc = control_tokenize(line, argv, 8);
		c = control_match(cmds, N(cmds), argc, argv, &words);
		if (cases[i].want < 0) {
			assert_null(c);
		} else {
			assert_ptr_equal(c, &cmds[cases[i].want]);
			assert_int_equal(words, cases[i].words);
		}
	}
}

static void test_peer_is_admin(void **state)
{
	const gid_t admin = 990, groups[] = { 10, 990, 1000 }, other[] = { 10, 20 };
	static const struct {
		uid_t uid;
		gid_t gid;
		int supplementary;   /* 0 none, 1 with admin, 2 without */
		int have_group;
		int want;
	} cases[] = {
		{ 0, 0, 0, 0, 1 },           /* root */
		{ 500, 500, 0, 0, 1 },       /* the daemon's own euid (500 below) */
		{ 65534, 65534, 0, 0, 0 },   /* nobody */
		{ 65534, 65534, 0, 1, 0 },
		{ 1000, 990, 0, 1, 1 },      /* primary group is the admin group */
		{ 1000, 1000, 1, 1, 1 },     /* supplementary group */
		{ 1000, 1000, 2, 1, 0 },
		{ 1000, 990, 0, 0, 0 },      /* no admin group configured: gid 990 means nothing */
		{ 1000, 1000, 1, 0, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < N(cases); i++) {
		const gid_t *g = cases[i].supplementary == 1 ? groups :
				 cases[i].supplementary == 2 ? other : NULL;
		size_t ng = cases[i].supplementary == 1 ? N(groups) :
			    cases[i].supplementary == 2 ? N(other) : 0;

		assert_int_equal(control_peer_is_admin(cases[i].uid, cases[i].gid, g, ng, 500,
						       cases[i].have_group ? &admin : NULL),
				 cases[i].want);
	}
}

static void test_frame_text(void **state)
{
	static const struct { const char *in, *want; } cases[] = {
		{ "a\nb\n", "a\nb\n\n" },
		{ "a\nb", "a\nb\n\n" },            /* a missing final newline is added */
		{ "\n\na\n\n\nb\n\n", "a\nb\n\n" },  /* empty lines never reach the wire */
		{ "", "\n" },
		{ "\n", "\n" },
	};
	struct strbuf sb;
	size_t i;

	(void)state;
	for (i = 0; i < N(cases); i++) {
		strbuf_init(&sb, 1024);
		assert_int_equal(control_frame_text(&sb, cases[i].in, strlen(cases[i].in)), 0);
		assert_string_equal(strbuf_str(&sb), cases[i].want);
		strbuf_free(&sb);
	}
	strbuf_init(&sb, 4);
	assert_int_equal(control_frame_text(&sb, "hello\n", 6), -ENOBUFS);
	strbuf_free(&sb);
}

static void test_frame_text_error(void **state)
{
	struct strbuf sb;

	(void)state;
	strbuf_init(&sb, 1024);
	assert_int_equal(control_frame_text_error(&sb, "permission denied"), 0);
	assert_string_equal(strbuf_str(&sb), "error: permission denied\n\n");
	strbuf_reset(&sb);
	assert_int_equal(control_frame_text_error(&sb, "unknown command\n\nusage:\n  x"), 0);
	assert_string_equal(strbuf_str(&sb), "error: unknown command\nusage:\n  x\n\n");
	strbuf_reset(&sb);
	assert_int_equal(control_frame_text_error(&sb, ""), 0);
	assert_string_equal(strbuf_str(&sb), "error: unknown error\n\n");
	strbuf_free(&sb);
}

static void test_frame_json(void **state)
{
	struct strbuf sb;
	json_t *data;

	(void)state;
	strbuf_init(&sb, 1024);
	data = json_pack("{s:s, s:[i, i]}", "text", "two\nlines", "n", 1, 2);
	assert_int_equal(control_frame_json(&sb, data), 0);
	assert_string_equal(strbuf_str(&sb),
			    "{\"ok\":true,\"data\":{\"text\":\"two\\nlines\",\"n\":[1,2]}}\n");
	assert_int_equal(data->refcount, 1);     /* the caller's reference is untouched */
	json_decref(data);
	strbuf_reset(&sb);
	assert_int_equal(control_frame_json(&sb, NULL), 0);
	assert_string_equal(strbuf_str(&sb), "{\"ok\":true,\"data\":null}\n");
	strbuf_reset(&sb);
	assert_int_equal(control_frame_json_error(&sb, "bad \"thing\"\nhere"), 0);
	assert_string_equal(strbuf_str(&sb), "{\"ok\":false,\"error\":\"bad \\\"thing\\\"\\nhere\"}\n");
	strbuf_reset(&sb);
	/* An error text that is not UTF-8 must still produce valid JSON. */
	assert_int_equal(control_frame_json_error(&sb, "bad \xff"), 0);
	assert_string_equal(strbuf_str(&sb),
			    "{\"ok\":false,\"error\":\"error message is not valid UTF-8\"}\n");
	strbuf_free(&sb);
	strbuf_init(&sb, 8);
	assert_int_equal(control_frame_json_error(&sb, "too long for the cap"), -ENOBUFS);
	strbuf_free(&sb);
}

static json_t *number_item(void *ud, size_t i)
{
	size_t *fail_at = ud;

	return fail_at != NULL && i == *fail_at ? NULL : json_integer((json_int_t)i * 10);
}

/* A streamed member: the same JSON as one tree, made item by item. */
static void test_frame_json_stream(void **state)
{
	struct control_stream stream = { .key = "xs", .n = 3, .item = number_item };
	struct strbuf sb;
	json_t *data = json_pack("{s:s}", "a", "b"), *empty = json_object();
	size_t fail_at = 1;

	(void)state;
	strbuf_init(&sb, 1024);
	assert_int_equal(control_frame_json_stream(&sb, data, &stream), 0);
	assert_string_equal(strbuf_str(&sb), "{\"ok\":true,\"data\":{\"a\":\"b\",\"xs\":[0,10,20]}}\n");
	assert_int_equal(data->refcount, 1);
	strbuf_reset(&sb);
	/* an empty object takes no comma; no items is an empty array */
	stream.n = 0;
	assert_int_equal(control_frame_json_stream(&sb, empty, &stream), 0);
	assert_string_equal(strbuf_str(&sb), "{\"ok\":true,\"data\":{\"xs\":[]}}\n");
	strbuf_reset(&sb);
	/* no key: the plain framing */
	stream.key = NULL;
	assert_int_equal(control_frame_json_stream(&sb, data, &stream), 0);
	assert_string_equal(strbuf_str(&sb), "{\"ok\":true,\"data\":{\"a\":\"b\"}}\n");
	strbuf_reset(&sb);
	/* a key that needs escaping is escaped */
	stream = (struct control_stream){ .key = "q\"k", .n = 1, .item = number_item };
	assert_int_equal(control_frame_json_stream(&sb, data, &stream), 0);
	assert_string_equal(strbuf_str(&sb), "{\"ok\":true,\"data\":{\"a\":\"b\",\"q\\\"k\":[0]}}\n");
	strbuf_reset(&sb);
	/* an item that cannot be made, data that is not an object, a reply over the cap */
	stream = (struct control_stream){ .key = "xs", .n = 3, .item = number_item, .ud = &fail_at };
	assert_int_equal(control_frame_json_stream(&sb, data, &stream), -ENOMEM);
	strbuf_reset(&sb);
	json_t *arr = json_array();
	assert_int_equal(control_frame_json_stream(&sb, arr, &stream), -EINVAL);
	json_decref(arr);
	strbuf_free(&sb);
	strbuf_init(&sb, 30);
	stream.ud = NULL;
	stream.n = 100;
	assert_int_equal(control_frame_json_stream(&sb, data, &stream), -ENOBUFS);
	strbuf_free(&sb);
	/* a text reply gets the member in its tree */
	stream.n = 2;
	assert_int_equal(control_stream_into(data, &stream), 0);
	json_t *want = json_pack("{s:s, s:[i, i]}", "a", "b", "xs", 0, 10);
	assert_true(json_equal(data, want));
	json_decref(want);
	stream.ud = &fail_at;
	assert_int_equal(control_stream_into(data, &stream), -ENOMEM);
	json_decref(data);
	json_decref(empty);
}

static void test_render_default(void **state)
{
	static const struct { const char *json, *want; } cases[] = {
		{ "{\"a\":\"x\",\"b\":2,\"c\":[1]}", "a: x\nb: 2\nc: [1]\n" },
		{ "[\"one\",{\"k\":true}]", "one\n{\"k\":true}\n" },
		{ "\"text\\n\"", "text\n" },
		{ "\"text\"", "text\n" },
		{ "42", "42\n" },
	};
	struct strbuf sb;
	json_t *v;
	size_t i;

	(void)state;
	for (i = 0; i < N(cases); i++) {
		v = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
		assert_non_null(v);
		strbuf_init(&sb, 1024);
		control_render_default(v, &sb);
		assert_string_equal(strbuf_str(&sb), cases[i].want);
		strbuf_free(&sb);
		json_decref(v);
	}
	strbuf_init(&sb, 1024);
	control_render_default(NULL, &sb);
	assert_string_equal(strbuf_str(&sb), "ok\n");
	strbuf_free(&sb);
}

static void test_usage(void **state)
{
	struct strbuf sb;

	(void)state;
	strbuf_init(&sb, 4096);
	assert_int_equal(control_usage(cmds, 2, &sb), 0);
	assert_string_equal(strbuf_str(&sb),
			    "usage:\n  replication\n  replication start SRC DST PARTICIPANT  (admin)");
	strbuf_free(&sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_next_line),
		cmocka_unit_test(test_check_line),
		cmocka_unit_test(test_tokenize),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_peer_is_admin),
		cmocka_unit_test(test_frame_text),
		cmocka_unit_test(test_frame_text_error),
		cmocka_unit_test(test_frame_json),
		cmocka_unit_test(test_frame_json_stream),
		cmocka_unit_test(test_render_default),
		cmocka_unit_test(test_usage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
