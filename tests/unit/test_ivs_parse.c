/*
 * test_ivs_parse.c — the IVS response parsers on AWS's own CLI examples (read from
 * ../shared/aws/examples/ivs-realtime when present), on small embedded facts, and on malformed
 * input: truncated, not JSON, wrong types, missing members, huge and deeply nested bodies.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "ivs_parse.h"

#define EXAMPLES "../shared/aws/examples/ivs-realtime"

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long len;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)len + 1);
		if (buf != NULL && fread(buf, 1, (size_t)len, f) != (size_t)len) {
			free(buf);
			buf = NULL;
		} else if (buf != NULL) {
			buf[len] = '\0';
		}
	}
	fclose(f);
	return buf;
}

/*
 * The JSON of the n-th "Output::" block of an .rst file: the indented lines after the marker,
 * up to the first non-indented, non-empty line. Returns malloc'd text or NULL when no more.
 */
static char *rst_output_block(const char *rst, int n)
{
	const char *p = rst, *line;
	char *out;
	size_t used = 0, cap;

	while (n-- >= 0) {
		p = strstr(p, "Output::");
		if (p == NULL)
			return NULL;
		p += strlen("Output::");
	}
	cap = strlen(p) + 1;
	out = malloc(cap);
	assert_non_null(out);
	p = strchr(p, '\n');
	while (p != NULL && *p != '\0') {
		size_t len;

		line = p + 1;
		p = strchr(line, '\n');
		len = p ? (size_t)(p - line) : strlen(line);
		if (len > 0 && line[0] != ' ' && line[0] != '\t' && line[0] != '\r')
			break;
		memcpy(out + used, line, len);
		used += len;
		out[used++] = '\n';
	}
	out[used] = '\0';
	return out;
}

enum parser { P_STAGE, P_STAGE_PAGE, P_PARTICIPANT, P_PARTICIPANT_PAGE, P_REPLICA_PAGE };

static int run_parser(enum parser which, const char *body, size_t len, struct aws_error *err,
		      size_t *items)
{
	char next[IVS_NEXT_TOKEN_MAX + 1];
	struct ivs_stage st;
	struct ivs_participant pa;
	struct ivs_stage_list sl = { 0 };
	struct ivs_participant_list pl = { 0 };
	struct ivs_replica_list rl = { 0 };
	int r = -EINVAL;

	*items = 0;
	switch (which) {
	case P_STAGE:
		r = ivs_parse_stage_response(body, len, &st, err);
		if (r == 0) {
			assert_memory_equal(st.arn, "arn:aws:ivs:", 12);
			*items = 1;
		}
		ivs_stage_clear(&st);
		break;
	case P_STAGE_PAGE:
		r = ivs_parse_stage_page(body, len, &sl, next, err);
		*items = sl.n;
		ivs_stage_list_clear(&sl);
		break;
	case P_PARTICIPANT:
		r = ivs_parse_participant_response(body, len, &pa, err);
		*items = r == 0;
		break;
	case P_PARTICIPANT_PAGE:
		r = ivs_parse_participant_page(body, len, &pl, next, err);
		*items = pl.n;
		ivs_participant_list_clear(&pl);
		break;
	case P_REPLICA_PAGE:
		r = ivs_parse_replica_page(body, len, &rl, next, err);
		*items = rl.n;
		ivs_replica_list_clear(&rl);
		break;
	}
	return r;
}

static void test_cli_examples(void **state)
{
	static const struct {
		const char *file;
		enum parser parser;
	} files[] = {
		{ "create-stage.rst", P_STAGE },
		{ "get-stage.rst", P_STAGE },
		{ "list-stages.rst", P_STAGE_PAGE },
		{ "get-participant.rst", P_PARTICIPANT },
		{ "list-participants.rst", P_PARTICIPANT_PAGE },
		{ "list-participant-replicas.rst", P_REPLICA_PAGE },
	};
	size_t i, items, parsed = 0, rejected = 0;
	char path[512];

	(void)state;
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *rst, *block;
		int n;

		snprintf(path, sizeof(path), "%s/%s", EXAMPLES, files[i].file);
		rst = read_file(path);
		if (rst == NULL) {
			print_message("skipped: %s is not present (the AWS CLI examples live in "
				      "../shared)\n", path);
			skip();
		}
		for (n = 0; (block = rst_output_block(rst, n)) != NULL; n++) {
			struct aws_error err;
			json_t *ref = json_loads(block, 0, NULL);
			int r = run_parser(files[i].parser, block, strlen(block), &err, &items);

			/* valid JSON must parse; the examples' own typos must be reported, not crash */
			if (ref != NULL) {
				if (r != 0)
					fail_msg("%s block %d: %s", files[i].file, n, err.message);
				assert_true(items >= 1);
				parsed++;
			} else {
				assert_int_equal(r, -EBADMSG);
				assert_int_equal(err.kind, AWS_ERR_PARSE);
				assert_non_null(strstr(err.message, "not JSON"));
				rejected++;
			}
			json_decref(ref);
			free(block);
		}
		assert_true(n >= 1);
		free(rst);
	}
	print_message("CLI examples: %zu parsed, %zu rejected as invalid JSON\n", parsed, rejected);
	assert_true(parsed >= 10);
}

static void test_examples_details(void **state)
{
	char *rst = read_file(EXAMPLES "/list-participants.rst"), *block;
	struct ivs_participant_list pl = { 0 };
	char next[IVS_NEXT_TOKEN_MAX + 1];
	struct aws_error err;

	(void)state;
	if (rst == NULL) {
		print_message("skipped: " EXAMPLES " is not present\n");
		skip();
	}
	/* example 3: a replica, with its source */
	block = rst_output_block(rst, 2);
	assert_non_null(block);
	assert_int_equal(ivs_parse_participant_page(block, strlen(block), &pl, next, &err), 0);
	assert_int_equal(pl.n, 1);
	assert_string_equal(pl.items[0].participant_id, "abCDEf12GHIj");
	assert_int_equal(pl.items[0].replication_type, IVS_REPLICATION_TYPE_REPLICA);
	assert_int_equal(pl.items[0].replication_state, IVS_REPLICATION_ACTIVE);
	assert_int_equal(pl.items[0].state, IVS_PARTICIPANT_DISCONNECTED);
	assert_true(pl.items[0].published);
	assert_string_equal(pl.items[0].source_session_id, "st-a1b2c3d4e5f6g");
	assert_string_equal(next, "");
	ivs_participant_list_clear(&pl);
	free(block);
	free(rst);
}

/* Embedded facts: independent of ../shared. */
static void test_stage_page_facts(void **state)
{
	static const char page1[] =
		"{\"stages\":[{\"arn\":\"arn:aws:ivs:us-east-1:123456789012:stage/AbCd1\","
		"\"name\":\"replica-1\",\"activeSessionId\":\"\",\"tags\":{\"ivs-autoscaler:managed\":\"true\","
		"\"ivs-autoscaler:fleet\":\"main\"},\"unknownMember\":[1,2]},"
		"{\"arn\":\"arn:aws:ivs:us-east-1:123456789012:stage/AbCd2\"}],\"nextToken\":\"tok+/=_-\"}";
	static const char page2[] =
		"{\"stages\":[{\"arn\":\"arn:aws:ivs:us-east-1:123456789012:stage/AbCd3\","
		"\"activeSessionId\":\"st-a1b2c3d4e5f6g\",\"tags\":{}}]}";
	struct ivs_stage_list sl = { 0 };
	char next[IVS_NEXT_TOKEN_MAX + 1];
	struct aws_error err;

	(void)state;
	assert_int_equal(ivs_parse_stage_page(page1, strlen(page1), &sl, next, &err), 0);
	assert_string_equal(next, "tok+/=_-");
	assert_int_equal(ivs_parse_stage_page(page2, strlen(page2), &sl, next, &err), 0);
	assert_string_equal(next, "");
	assert_int_equal(sl.n, 3);
	assert_string_equal(sl.items[0].name, "replica-1");
	assert_string_equal(sl.items[0].active_session_id, "");
	assert_int_equal(sl.items[0].ntags, 2);
	assert_string_equal(ivs_stage_tag(&sl.items[0], "ivs-autoscaler:fleet"), "main");
	assert_null(ivs_stage_tag(&sl.items[0], "nope"));
	assert_string_equal(sl.items[1].name, "");
	assert_int_equal(sl.items[1].ntags, 0);
	assert_string_equal(sl.items[2].active_session_id, "st-a1b2c3d4e5f6g");
	ivs_stage_list_clear(&sl);
}

static void test_participant_and_replica_facts(void **state)
{
	static const char part[] =
		"{\"participant\":{\"participantId\":\"p1\",\"userId\":\"host\",\"state\":\"CONNECTED\","
		"\"published\":true,\"replicationType\":\"SOURCE\",\"replicationState\":\"STOPPED\","
		"\"firstJoinTime\":\"2023-04-26T20:30:29.602000+00:00\",\"attributes\":{\"a\":\"b\"}}}";
	static const char future[] =
		"{\"participant\":{\"state\":\"SUSPENDED\",\"replicationType\":\"MIRROR\","
		"\"replicationState\":\"PAUSED_FOR_A_VERY_LONG_TIME_WITH_A_NAME_LONGER_THAN_SIXTY_FOUR_BYTES\"}}";
	static const char replicas[] =
		"{\"replicas\":[{\"sourceStageArn\":\"arn:aws:ivs:us-east-1:1:stage/a\",\"participantId\":\"p1\","
		"\"sourceSessionId\":\"st-a1b2c3d4e5f6g\",\"destinationStageArn\":\"arn:aws:ivs:us-east-1:1:stage/b\","
		"\"destinationSessionId\":\"st-b1c2d3e4f5g6a\",\"replicationState\":\"STOPPED\"}],\"nextToken\":\"n2\"}";
	struct ivs_participant p;
	struct ivs_replica_list rl = { 0 };
	char next[IVS_NEXT_TOKEN_MAX + 1];
	struct aws_error err;

	(void)state;
	assert_int_equal(ivs_parse_participant_response(part, strlen(part), &p, &err), 0);
	assert_string_equal(p.participant_id, "p1");
	assert_string_equal(p.user_id, "host");
	assert_int_equal(p.state, IVS_PARTICIPANT_CONNECTED);
	assert_int_equal(p.replication_type, IVS_REPLICATION_TYPE_SOURCE);
	assert_int_equal(p.replication_state, IVS_REPLICATION_STOPPED);
	assert_string_equal(p.first_join_time, "2023-04-26T20:30:29.602000+00:00");
	/* enum values the model does not know yet map to UNKNOWN */
	assert_int_equal(ivs_parse_participant_response(future, strlen(future), &p, &err), 0);
	assert_int_equal(p.state, IVS_PARTICIPANT_STATE_UNKNOWN);
	assert_int_equal(p.replication_type, IVS_REPLICATION_TYPE_UNKNOWN);
	assert_int_equal(p.replication_state, IVS_REPLICATION_STATE_UNKNOWN);
	assert_string_equal(ivs_replication_type_name(p.replication_type), "UNKNOWN");
	assert_int_equal(ivs_parse_replica_page(replicas, strlen(replicas), &rl, next, &err), 0);
	assert_int_equal(rl.n, 1);
	assert_string_equal(rl.items[0].destination_stage_arn, "arn:aws:ivs:us-east-1:1:stage/b");
	assert_string_equal(rl.items[0].destination_session_id, "st-b1c2d3e4f5g6a");
	assert_int_equal(rl.items[0].replication_state, IVS_REPLICATION_STOPPED);
	assert_string_equal(next, "n2");
	ivs_replica_list_clear(&rl);
}

struct bad_case {
	enum parser parser;
	const char *body;
	const char *expect;   /* substring of the error message */
};

static void test_malformed_table(void **state)
{
	static const struct bad_case cases[] = {
		{ P_STAGE, "", "empty response body" },
		{ P_STAGE, "{\"stage\":{\"arn\":\"arn:aws:ivs:us-east-1:1:stage/a\"", "not JSON" },
		{ P_STAGE, "<html>502</html>", "not JSON" },
		{ P_STAGE, "[]", "expected a JSON object" },
		{ P_STAGE, "{}", "stage: required member missing" },
		{ P_STAGE, "{\"stage\":null}", "stage: required member missing" },
		{ P_STAGE, "{\"stage\":[]}", "stage: expected an object" },
		{ P_STAGE, "{\"stage\":{}}", "stage.arn: required member missing" },
		{ P_STAGE, "{\"stage\":{\"arn\":\"\"}}", "stage.arn: required member is empty" },
		{ P_STAGE, "{\"stage\":{\"arn\":42}}", "stage.arn: expected a string" },
		{ P_STAGE, "{\"stage\":{\"arn\":\"a\",\"name\":true}}", "stage.name: expected a string" },
		{ P_STAGE, "{\"stage\":{\"arn\":\"a\",\"activeSessionId\":\"st-0123456789abcdef\"}}",
		  "stage.activeSessionId: string too long" },
		{ P_STAGE, "{\"stage\":{\"arn\":\"a\",\"tags\":[]}}", "stage.tags: expected an object" },
		{ P_STAGE, "{\"stage\":{\"arn\":\"a\",\"tags\":{\"k\":1}}}", "tag value is not a string" },
		{ P_STAGE, "{\"stage\":{\"arn\":\"a\",\"tags\":{\"\":\"v\"}}}", "length out of range" },
		{ P_STAGE_PAGE, "{}", "stages: required member missing" },
		{ P_STAGE_PAGE, "{\"stages\":{}}", "stages: expected an array" },
		{ P_STAGE_PAGE, "{\"stages\":[1]}", "stages[0]: expected an object" },
		{ P_STAGE_PAGE, "{\"stages\":[{\"arn\":\"a\"},{\"arn\":null}]}", "stages[1].arn: required member missing" },
		{ P_STAGE_PAGE, "{\"stages\":[],\"nextToken\":5}", "nextToken: expected a string" },
		{ P_PARTICIPANT, "{\"participant\":{\"published\":\"yes\"}}", "participant.published: expected a boolean" },
		{ P_PARTICIPANT, "{\"participant\":{\"state\":1}}", "participant.state: expected a string" },
		{ P_PARTICIPANT, "{\"participant\":{\"participantId\":[\"x\"]}}", "participant.participantId: expected a string" },
		{ P_PARTICIPANT_PAGE, "{\"participants\":[{\"sourceStageArn\":{}}]}",
		  "participants[0].sourceStageArn: expected a string" },
		{ P_PARTICIPANT_PAGE, "{\"participants\":\"none\"}", "participants: expected an array" },
		{ P_REPLICA_PAGE, "{\"replicas\":[{\"participantId\":\"p\"}]}", "replicas[0].sourceStageArn: required member missing" },
		{ P_REPLICA_PAGE, "{\"replicas\":[{\"sourceStageArn\":\"a\",\"participantId\":\"p\","
		  "\"destinationStageArn\":\"b\"}]}", "replicationState: required member missing" },
		{ P_REPLICA_PAGE, "{\"replicas\":[{\"sourceStageArn\":\"a\",\"participantId\":\"p\","
		  "\"destinationStageArn\":\"b\",\"replicationState\":false}]}", "replicationState: expected a string" },
		{ P_REPLICA_PAGE, "{\"replicas\":[]} trailing", "not JSON" },
	};
	size_t i, items;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct aws_error err;
		int r = run_parser(cases[i].parser, cases[i].body, strlen(cases[i].body), &err, &items);

		if (r != -EBADMSG || err.kind != AWS_ERR_PARSE ||
		    strstr(err.message, cases[i].expect) == NULL)
			fail_msg("case %zu: r=%d message=\"%s\", want \"%s\"", i, r,
				 r ? err.message : "", cases[i].expect);
		/* single-object parsers return nothing on error; pages may keep earlier items */
		if (cases[i].parser == P_STAGE || cases[i].parser == P_PARTICIPANT)
			assert_int_equal(items, 0);
	}
}

static void test_too_many_tags_and_long_strings(void **state)
{
	char body[8192], *p = body;
	struct ivs_stage st;
	struct aws_error err;
	int i;

	(void)state;
	p += snprintf(p, sizeof(body), "{\"stage\":{\"arn\":\"a\",\"tags\":{");
	for (i = 0; i < 51; i++)
		p += snprintf(p, (size_t)(body + sizeof(body) - p), "%s\"k%d\":\"v\"", i ? "," : "", i);
	snprintf(p, (size_t)(body + sizeof(body) - p), "}}}");
	assert_int_equal(ivs_parse_stage_response(body, strlen(body), &st, &err), -EBADMSG);
	assert_non_null(strstr(err.message, "more than 50 tags"));

	/* an ARN of 129 bytes */
	snprintf(body, sizeof(body), "{\"stage\":{\"arn\":\"%0129d\"}}", 0);
	assert_int_equal(ivs_parse_stage_response(body, strlen(body), &st, &err), -EBADMSG);
	assert_non_null(strstr(err.message, "stage.arn: string too long"));
	/* exactly 128 is fine */
	snprintf(body, sizeof(body), "{\"stage\":{\"arn\":\"%0128d\"}}", 0);
	assert_int_equal(ivs_parse_stage_response(body, strlen(body), &st, &err), 0);
	ivs_stage_clear(&st);
}

static void test_huge_and_deep_bodies(void **state)
{
	size_t big = 10u * 1024u * 1024u, deep = 200000, i, items;
	char *body = malloc(big + 1);
	struct aws_error err;

	(void)state;
	assert_non_null(body);
	/* 10 MB: refused before parsing */
	memset(body, ' ', big);
	memcpy(body, "{\"stages\":[", 11);
	body[big - 2] = ']';
	body[big - 1] = '}';
	body[big] = '\0';
	assert_int_equal(run_parser(P_STAGE_PAGE, body, big, &err, &items), -EBADMSG);
	assert_non_null(strstr(err.message, "response too large"));

	/* 200k levels of nesting: jansson's depth limit turns it into an error, not a crash */
	for (i = 0; i < deep; i++)
		body[i] = '[';
	for (i = 0; i < deep; i++)
		body[deep + i] = ']';
	assert_int_equal(run_parser(P_STAGE_PAGE, body, 2 * deep, &err, &items), -EBADMSG);
	assert_non_null(strstr(err.message, "not JSON"));

	/* NUL bytes inside the body */
	memcpy(body, "{\"stages\":[]}\0{}", 16);
	assert_int_equal(run_parser(P_STAGE_PAGE, body, 16, &err, &items), -EBADMSG);
	free(body);
}

static void test_error_keeps_earlier_pages(void **state)
{
	static const char good[] = "{\"stages\":[{\"arn\":\"a\",\"tags\":{\"k\":\"v\"}}],\"nextToken\":\"t\"}";
	static const char bad[] = "{\"stages\":[{\"arn\":\"b\",\"tags\":{\"k\":\"v\"}},{\"arn\":7}],\"nextToken\":\"t\"}";
	struct ivs_stage_list sl = { 0 };
	char next[IVS_NEXT_TOKEN_MAX + 1];
	struct aws_error err;

	(void)state;
	assert_int_equal(ivs_parse_stage_page(good, strlen(good), &sl, next, &err), 0);
	assert_int_equal(ivs_parse_stage_page(bad, strlen(bad), &sl, next, &err), -EBADMSG);
	assert_string_equal(next, "");
	assert_int_equal(sl.n, 2);   /* page 1 + the good item of page 2; no leak of the bad one */
	ivs_stage_list_clear(&sl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cli_examples),
		cmocka_unit_test(test_examples_details),
		cmocka_unit_test(test_stage_page_facts),
		cmocka_unit_test(test_participant_and_replica_facts),
		cmocka_unit_test(test_malformed_table),
		cmocka_unit_test(test_too_many_tags_and_long_strings),
		cmocka_unit_test(test_huge_and_deep_bodies),
		cmocka_unit_test(test_error_keeps_earlier_pages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
