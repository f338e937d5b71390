/*
 * test_store_parse.c — the pure parsers of Redis values: integers (desired_stages, viewers,
 * draining), publisher:info JSON, stage ARNs, and the JSON the Node.js server's format requires.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store_parse.h"

#define IVS_ARN_MAX_TEST 128

struct int_case {
	const char *in;
	long long want;        /* when ok */
	int ok;
	const char *err;       /* expected error text (exact) when !ok */
};

static void test_desired(void **state)
{
	static const struct int_case cases[] = {
		{ "1", 1, 1, NULL },
		{ "1000", 1000, 1, NULL },
		{ "007", 7, 1, NULL },
		{ "0", 0, 0, "out of range (min 1): \"0\"" },
		{ "1001", 0, 0, "out of range (max 1000): \"1001\"" },
		{ "99999999999999999999999", 0, 0,
		  "out of range (max 1000): \"99999999999999999999999\"" },
		{ "-3", 0, 0, "negative value \"-3\"" },
		{ "", 0, 0, "empty value" },
		{ " 5", 0, 0, "not an integer: \" 5\"" },
		{ "5\n", 0, 0, "not an integer: \"5?\"" },
		{ "+5", 0, 0, "not an integer: \"+5\"" },
		{ "0x10", 0, 0, "not an integer: \"0x10\"" },
		{ "3.0", 0, 0, "not an integer: \"3.0\"" },
		{ "three", 0, 0, "not an integer: \"three\"" },
		{ "-", 0, 0, "not an integer: \"-\"" },
		{ "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ", 0, 0,
		  "not an integer: \"abcdefghijklmnopqrstuvwxyzABCDEF...\"" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[STORE_ERR_MAX] = "";
		int v = -1;
		int r = store_parse_desired(cases[i].in, strlen(cases[i].in), &v, err, sizeof(err));
		if (cases[i].ok) {
			assert_int_equal(r, 0);
			assert_int_equal(v, cases[i].want);
		} else {
			assert_int_equal(r, -EINVAL);
			assert_int_equal(v, -1);
			assert_string_equal(err, cases[i].err);
		}
	}
}

static void test_desired_binary(void **state)
{
	char err[STORE_ERR_MAX];
	int v = -1;

	(void)state;
	/* An embedded NUL must not end the number early. */
	assert_int_equal(store_parse_desired("5\0" "0", 3, &v, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "not an integer: \"5?0\"");
	assert_int_equal(store_parse_desired(NULL, 0, &v, err, sizeof(err)), -EINVAL);
	/* A tiny error buffer truncates, never overflows. */
	assert_int_equal(store_parse_desired("x", 1, &v, err, 4), -EINVAL);
	assert_string_equal(err, "not");
}

static void test_viewers_and_draining(void **state)
{
	static const struct int_case viewers[] = {
		{ "0", 0, 1, NULL },
		{ "25000", 25000, 1, NULL },
		{ "1000000000", 1000000000LL, 1, NULL },
		{ "1000000001", 0, 0, "out of range (max 1000000000): \"1000000001\"" },
		{ "-1", 0, 0, "negative value \"-1\"" },
		{ "12 viewers", 0, 0, "not an integer: \"12 viewers\"" },
	};
	char err[STORE_ERR_MAX];
	long long v;
	int64_t since;

	(void)state;
	for (size_t i = 0; i < sizeof(viewers) / sizeof(viewers[0]); i++) {
		int r = store_parse_viewers(viewers[i].in, strlen(viewers[i].in), &v, err,
		                            sizeof(err));
		if (viewers[i].ok) {
			assert_int_equal(r, 0);
			assert_int_equal(v, viewers[i].want);
		} else {
			assert_int_equal(r, -EINVAL);
			assert_string_equal(err, viewers[i].err);
		}
	}
	assert_int_equal(store_parse_draining("1761200000123", 13, &since, err, sizeof(err)), 0);
	assert_int_equal(since, 1761200000123LL);
	assert_int_equal(store_parse_draining("2025-10-23T10:00:00Z", 20, &since, err,
	                                      sizeof(err)), -EINVAL);
	assert_string_equal(err, "not an integer: \"2025-10-23T10:00:00Z\"");
	assert_int_equal(store_parse_draining("9007199254740993", 16, &since, err, sizeof(err)),
	                 -EINVAL);
}

static void test_manual_member(void **state)
{
	static const char src[] = "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGh1234";
	static const char dst[] = "arn:aws:ivs:us-east-1:123456789012:stage/XyZ987";
	static const struct {
		const char *in;
		const char *err;      /* NULL: parses */
	} cases[] = {
		{ "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGh1234 "
		  "arn:aws:ivs:us-east-1:123456789012:stage/XyZ987 host-1", NULL },
		{ "", "expected \"SRC_STAGE_ARN DST_STAGE_ARN PARTICIPANT_ID\"" },
		{ "not a replication", "not a stage ARN" },
		{ "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGh1234 host-1",
		  "expected \"SRC_STAGE_ARN DST_STAGE_ARN PARTICIPANT_ID\"" },
		{ "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGh1234  host-1", "not a stage ARN" },
		{ "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGh1234 "
		  "arn:aws:ivs:us-east-1:123456789012:stage/XyZ987 ", "participant id is not "
		  "[a-zA-Z0-9-]{1,64}" },
		{ "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGh1234 "
		  "arn:aws:ivs:us-east-1:123456789012:stage/XyZ987 host 1", "participant id is not "
		  "[a-zA-Z0-9-]{1,64}" },
	};
	struct store_manual_replication m;
	char err[STORE_ERR_MAX], buf[400];
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = store_parse_manual(cases[i].in, strlen(cases[i].in), &m, err, sizeof(err));
		if (cases[i].err == NULL) {
			assert_int_equal(r, 0);
			assert_string_equal(m.src, src);
			assert_string_equal(m.dst, dst);
			assert_string_equal(m.participant, "host-1");
		} else {
			assert_int_equal(r, -EINVAL);
			assert_string_equal(err, cases[i].err);
		}
	}
	assert_int_equal(store_format_manual(buf, sizeof(buf), src, dst, "host-1"),
	                 (int)strlen(cases[0].in));
	assert_string_equal(buf, cases[0].in);
	assert_int_equal(store_format_manual(buf, 20, src, dst, "host-1"), -ENAMETOOLONG);
}

static void test_stage_arn(void **state)
{
	static const struct {
		const char *in;
		int ok;
	} cases[] = {
		{ "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGh1234", 1 },
		{ "arn:aws:ivs:eu-west-1:1:stage/a-b", 1 },
		{ "arn:aws:ivs:us-east-1:123456789012:stage/", 0 },
		{ "arn:aws:ivs:us-east-1:123456789012:channel/abc", 0 },
		{ "arn:aws:ivs:US-EAST-1:123456789012:stage/abc", 0 },
		{ "arn:aws:ivs::123456789012:stage/abc", 0 },
		{ "arn:aws:ivs:us-east-1::stage/abc", 0 },
		{ "arn:aws:ivs:us-east-1:12a:stage/abc", 0 },
		{ "arn:aws:ivs:us-east-1:123456789012:stage/abc def", 0 },
		{ "arn:aws-cn:ivs:cn-north-1:123456789012:stage/abc", 0 },
		{ "arn:aws:ivs:us-east-1:123456789012:stage/abc/def", 0 },
		{ "", 0 },
		{ "arn:aws:ivs:", 0 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(store_is_stage_arn(cases[i].in, strlen(cases[i].in)), cases[i].ok);
	{
		char big[STORE_STAGE_ARN_MAX + 2];
		int n = snprintf(big, sizeof(big), "arn:aws:ivs:us-east-1:1:stage/");
		memset(big + n, 'a', sizeof(big) - 1 - (size_t)n);
		big[sizeof(big) - 1] = '\0';
		assert_int_equal(store_is_stage_arn(big, strlen(big)), 0);
		assert_int_equal(store_is_stage_arn(big, strlen(big) - 1), 1);
	}
}

static void test_publisher_good(void **state)
{
	/* The shape the Node.js server stores when it issues the publisher token. */
	static const char doc[] =
		"{\"participantId\":\"aBc-123\","
		"\"stageArn\":\"arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGh1234\","
		"\"userId\":\"broadcaster-123\",\"joinedAt\":\"2025-10-23T10:00:00.000Z\","
		"\"extra\":{\"ignored\":[1,2,3]}}";
	struct store_publisher p;
	char err[STORE_ERR_MAX] = "";

	(void)state;
	assert_int_equal(store_parse_publisher(doc, strlen(doc), &p, err, sizeof(err)), 0);
	assert_string_equal(p.participant_id, "aBc-123");
	assert_string_equal(p.stage_arn, "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGh1234");
	assert_string_equal(p.user_id, "broadcaster-123");
	assert_string_equal(p.joined_at, "2025-10-23T10:00:00.000Z");

	/* Only participantId is required; nulls read as absent. */
	static const char minimal[] = "{\"participantId\":\"p1\",\"userId\":null}";
	assert_int_equal(store_parse_publisher(minimal, strlen(minimal), &p, err, sizeof(err)), 0);
	assert_string_equal(p.participant_id, "p1");
	assert_string_equal(p.stage_arn, "");
	assert_string_equal(p.user_id, "");
}

static void test_publisher_malformed(void **state)
{
	/* An err ending in '*' is a prefix. */
	static const struct {
		const char *in;
		const char *err;
	} cases[] = {
		{ "", "empty value" },
		{ "hello", "not JSON: *" },
		{ "{\"participantId\":\"p1\"", "not JSON: *" },
		{ "[\"participantId\"]", "not a JSON object" },
		{ "\"p1\"", "not JSON: *" },
		{ "{}", "participantId is missing" },
		{ "{\"participantId\":null}", "participantId is missing" },
		{ "{\"participantId\":42}", "participantId is not a string" },
		{ "{\"participantId\":{\"id\":\"p1\"}}", "participantId is not a string" },
		{ "{\"participantId\":[\"p1\"]}", "participantId is not a string" },
		{ "{\"participantId\":\"\"}", "participantId is empty" },
		{ "{\"participantId\":\"a b\"}", "participantId is not 1-64 characters of [a-zA-Z0-9-]" },
		{ "{\"participantId\":\"p_1\"}", "participantId is not 1-64 characters of [a-zA-Z0-9-]" },
		{ "{\"participantId\":\"0123456789012345678901234567890123456789012345678901234567890123X\"}",
		  "participantId is not 1-64 characters of [a-zA-Z0-9-]" },
		{ "{\"participantId\":\"p1\",\"stageArn\":\"arn:aws:ivs:...\"}",
		  "stageArn is not a stage ARN" },
		{ "{\"participantId\":\"p1\",\"stageArn\":7}", "stageArn is not a string" },
		{ "{\"participantId\":\"p1\",\"userId\":true}", "userId is not a string" },
		{ "{\"participantId\":\"p1\",\"joinedAt\":{\"t\":1}}", "joinedAt is not a string" },
		{ "{\"participantId\":\"p1\",\"participantId\":\"p2\"}",
		  "not JSON: duplicate object key*" },
		{ "{\"participantId\":\"p\\u00001\"}", "not JSON: *" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct store_publisher p;
		char err[STORE_ERR_MAX] = "";
		memset(&p, 0x5a, sizeof(p));
		assert_int_equal(store_parse_publisher(cases[i].in, strlen(cases[i].in), &p, err,
		                                       sizeof(err)), -EINVAL);
		/* jansson's own wording (after our prefix) may change between versions. */
		size_t n = strlen(cases[i].err);
		if (n > 0 && cases[i].err[n - 1] == '*')
			assert_memory_equal(err, cases[i].err, n - 1);
		else
			assert_string_equal(err, cases[i].err);
		/* The output is untouched on failure. */
		assert_int_equal((unsigned char)p.participant_id[0], 0x5a);
	}
}

static void test_publisher_huge_and_nested(void **state)
{
	struct store_publisher p;
	char err[STORE_ERR_MAX];
	size_t n = STORE_PUBLISHER_MAX_SIZE + 1;
	char *big = malloc(n);

	(void)state;
	assert_non_null(big);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	assert_int_equal(store_parse_publisher(big, n, &p, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "too large (8193 bytes, max 8192)");
	/* Deeply nested input within the size cap: refused by the depth limit or as not an id. */
	size_t depth = 4000;
	char *nested = malloc(2 * depth + 40);
	assert_non_null(nested);
	int off = snprintf(nested, 40, "{\"participantId\":");
	memset(nested + off, '[', depth);
	memset(nested + off + depth, ']', depth);
	nested[off + 2 * depth] = '}';
	assert_int_equal(store_parse_publisher(nested, (size_t)off + 2 * depth + 1, &p, err,
	                                       sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not JSON: maximum parsing depth reached"));
	/* Too long optional strings. */
	char longuser[300];
	off = snprintf(longuser, sizeof(longuser), "{\"participantId\":\"p\",\"userId\":\"");
	memset(longuser + off, 'u', 129);
	snprintf(longuser + off + 129, sizeof(longuser) - (size_t)off - 129, "\"}");
	assert_int_equal(store_parse_publisher(longuser, strlen(longuser), &p, err, sizeof(err)),
	                 -EINVAL);
	assert_string_equal(err, "userId is too long (129 bytes, max 128)");
	free(big);
	free(nested);
}

static void test_format(void **state)
{
	char *s;

	(void)state;
	s = store_format_stage_info("arn:aws:ivs:us-east-1:1:stage/b", "autoscaled-1",
	                            "2025-10-23T10:00:00.000Z", "arn:aws:ivs:us-east-1:1:stage/a");
	assert_non_null(s);
	assert_string_equal(s, "{\"name\":\"autoscaled-1\",\"arn\":\"arn:aws:ivs:us-east-1:1:stage/b\","
	                       "\"autoScaled\":true,\"createdAt\":\"2025-10-23T10:00:00.000Z\","
	                       "\"parentStage\":\"arn:aws:ivs:us-east-1:1:stage/a\"}");
	free(s);
	s = store_format_stage_info("arn:aws:ivs:us-east-1:1:stage/b", "n\"q", "t", NULL);
	assert_non_null(s);
	assert_string_equal(s, "{\"name\":\"n\\\"q\",\"arn\":\"arn:aws:ivs:us-east-1:1:stage/b\","
	                       "\"autoScaled\":true,\"createdAt\":\"t\",\"parentStage\":null}");
	free(s);
	s = store_format_replication("arn:aws:ivs:us-east-1:1:stage/a",
	                             "arn:aws:ivs:us-east-1:1:stage/b", "p1", "2025-10-23T10:00:01.000Z");
	assert_non_null(s);
	assert_string_equal(s, "{\"sourceStageArn\":\"arn:aws:ivs:us-east-1:1:stage/a\","
	                       "\"destStageArn\":\"arn:aws:ivs:us-east-1:1:stage/b\","
	                       "\"participantId\":\"p1\",\"startedAt\":\"2025-10-23T10:00:01.000Z\"}");
	free(s);
	/* Invalid UTF-8 and missing arguments are refused, not written. */
	assert_null(store_format_stage_info("arn", "\xff", "t", NULL));
	assert_null(store_format_replication("a", NULL, "p", "t"));
}

static void test_stage_parent(void **state)
{
	static const struct { const char *in; int rc; const char *parent; const char *err; } cases[] = {
		{ "{\"name\":\"r\",\"arn\":\"x\",\"autoScaled\":true,\"createdAt\":\"t\","
		  "\"parentStage\":\"arn:aws:ivs:us-east-1:123456789012:stage/Orig1\"}", 0,
		  "arn:aws:ivs:us-east-1:123456789012:stage/Orig1", NULL },
		{ "{\"parentStage\":null}", 0, "", NULL },
		{ "{\"name\":\"no parent\"}", 0, "", NULL },
		{ "", -EINVAL, "", "empty value" },
		{ "[]", -EINVAL, "", "not a JSON object" },
		{ "{\"parentStage\":", -EINVAL, "", "not JSON" },
		{ "{\"parentStage\":42}", -EINVAL, "", "parentStage is not a string" },
		{ "{\"parentStage\":\"stage/Orig1\"}", -EINVAL, "", "parentStage is not a stage ARN" },
		{ "{\"parentStage\":\"a\",\"parentStage\":\"b\"}", -EINVAL, "", "not JSON" },
		{ "\"arn:aws:ivs:us-east-1:123456789012:stage/Orig1\"", -EINVAL, "", "not JSON" },
	};
	char parent[IVS_ARN_MAX_TEST + 1], err[STORE_ERR_MAX];
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		int rc = store_parse_stage_parent(cases[i].in, strlen(cases[i].in), parent,
						  sizeof(parent), err, sizeof(err));
		assert_int_equal(rc, cases[i].rc);
		assert_string_equal(parent, cases[i].parent);
		if (cases[i].err != NULL && strstr(err, cases[i].err) == NULL)
			fail_msg("case %zu: error \"%s\" lacks \"%s\"", i, err, cases[i].err);
	}
	/* A parent longer than the buffer is refused, not cut. */
	assert_int_equal(store_parse_stage_parent("{\"parentStage\":\"arn:aws:ivs:us-east-1:1:stage/A\"}",
						  49, parent, 8, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "too long"));
}

/* The controller's per-stage record keys, and nothing else, yield their stage ARN. */
static void test_record_keys(void **state)
{
#define ARN "arn:aws:ivs:us-east-1:123456789012:stage/AbCd1234"
	static const struct {
		const char *key;
		int yes;
	} cases[] = {
		{ "ivs:prod:stage:" ARN, 1 },
		{ "ivs:prod:stage:" ARN ":draining", 1 },
		{ "ivs:prod:stage:" ARN ":drained_by", 1 },
		{ "ivs:prod:replication:" ARN, 1 },
		{ "ivs:prod:stage:" ARN ":viewers", 0 },        /* the application's */
		{ "ivs:prod:replication:" ARN ":draining", 0 },
		{ "ivs:prod:stage:", 0 },
		{ "ivs:prod:stage:arn:aws:ivs:us-east-1:123456789012:stage/", 0 },
		{ "ivs:prod:stage:arn:aws:ivs:us-east-1:123456789012:channel/AbCd", 0 },
		{ "ivs:prod:stage:arn:aws:s3:us-east-1:123456789012:stage/AbCd", 0 },
		{ "ivs:prod:stage:arn:aws:ivs::123456789012:stage/AbCd", 0 },
		{ "ivs:prod:stage:arn:aws:ivs:us-east-1::stage/AbCd", 0 },
		{ "ivs:other:stage:" ARN, 0 },                   /* another prefix */
		{ "ivs:prod:autoscaler:status", 0 },
		{ "ivs:prod:desired_stages", 0 },
		{ "stage:" ARN, 0 },
		{ "", 0 },
	};
	char arn[200];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = store_parse_record_key("ivs:prod:", cases[i].key, arn, sizeof(arn));
		if (got != cases[i].yes)
			fail_msg("case %zu: %s", i, cases[i].key);
		if (got)
			assert_string_equal(arn, ARN);
	}
	/* the empty prefix, and an ARN longer than the buffer */
	assert_int_equal(store_parse_record_key("", "stage:" ARN, arn, sizeof(arn)), 1);
	assert_int_equal(store_parse_record_key("", "stage:" ARN, arn, 10), 0);
	assert_int_equal(store_parse_record_key(NULL, "stage:" ARN, arn, sizeof(arn)), 0);
#undef ARN
}

static void test_glob_escape(void **state)
{
	char out[32];

	(void)state;
	assert_int_equal(store_glob_escape("ivs:prod:", out, sizeof(out)), 0);
	assert_string_equal(out, "ivs:prod:");
	assert_int_equal(store_glob_escape("a*b?c[d]e\\f", out, sizeof(out)), 0);
	assert_string_equal(out, "a\\*b\\?c\\[d\\]e\\\\f");
	assert_int_equal(store_glob_escape("****", out, 8), -ENAMETOOLONG);
	assert_int_equal(store_glob_escape("abc", out, 4), 0);
	assert_int_equal(store_glob_escape("abcd", out, 4), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_desired),
		cmocka_unit_test(test_desired_binary),
		cmocka_unit_test(test_viewers_and_draining),
		cmocka_unit_test(test_stage_arn),
		cmocka_unit_test(test_publisher_good),
		cmocka_unit_test(test_publisher_malformed),
		cmocka_unit_test(test_publisher_huge_and_nested),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_stage_parent),
		cmocka_unit_test(test_record_keys),
		cmocka_unit_test(test_glob_escape),
		cmocka_unit_test(test_manual_member),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
