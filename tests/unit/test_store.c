/*
 * test_store.c — typed reads and writes of our Redis keys against a real redis-server started
 * by the test (tests/unit/redis_server.h), plus the pure key builder.
 * The loop runs until the callback fires or a deadline passes; the server is always killed.
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
#include "store.h"

#define DEADLINE_MS 10000

static struct server srv = { .pid = -1 };

/* ---- harness ------------------------------------------------------------------------------ */

static sd_event *event;
static struct redisio *rio;
static int ups;

static void on_state(void *ud, bool connected)
{
	(void)ud;
	ups += connected;
}

static void run_until(const int *counter, int target)
{
	uint64_t end = mono_ms() + DEADLINE_MS;

	while (*counter < target && mono_ms() < end)
		assert_true(sd_event_run(event, 100 * 1000) >= 0);
	assert_true(*counter >= target);
}

static redisReply *sync_get(const char *fmt, ...)
{
	redisContext *c = sync_client(&srv, NULL);
	redisReply *r;
	va_list ap;

	assert_non_null(c);
	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	redisFree(c);
	assert_non_null(r);
	return r;
}

static int group_setup(void **state)
{
	static const struct redisio_callbacks cbs = { .on_state = on_state };
	struct redisio_options o = { 0 };

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	if (server_start(&srv, NULL) < 0) {
		fprintf(stderr, "cannot start redis-server (make deps installs it)\n");
		server_cleanup(&srv);
		return -1;
	}
	o.unix_path = srv.sock;
	if (sd_event_new(&event) < 0)
		return -1;
	rio = redisio_new(event, &o, &cbs, NULL);
	if (rio == NULL)
		return -1;
	for (uint64_t end = mono_ms() + DEADLINE_MS; ups == 0 && mono_ms() < end;)
		sd_event_run(event, 100 * 1000);
	return ups == 1 ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	redisio_free(rio);
	sd_event_unref(event);
	server_cleanup(&srv);
	return 0;
}

struct read_result {
	int done;
	struct store_fleet_read r;
	struct store_stage_read stages[8];
};

static void on_read(void *ud, const struct store_fleet_read *r)
{
	struct read_result *out = ud;

	out->done++;
	out->r = *r;
	assert_true(r->n_stages <= 8);
	memcpy(out->stages, r->stages, r->n_stages * sizeof(*r->stages));
	out->r.stages = out->stages;
}

struct write_result {
	int done;
	int err;
	char error[STORE_ERR_MAX];
};

static void on_write(void *ud, int err, const char *error)
{
	struct write_result *w = ud;

	w->done++;
	w->err = err;
	snprintf(w->error, sizeof(w->error), "%s", error != NULL ? error : "");
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_store_key(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(store_key(buf, sizeof(buf), "ivs:prod:", "stage:{arn}:viewers",
	                           "arn:aws:ivs:us-east-1:1:stage/a", NULL), 54);
	assert_string_equal(buf, "ivs:prod:stage:arn:aws:ivs:us-east-1:1:stage/a:viewers");
	assert_int_equal(store_key(buf, sizeof(buf), NULL, "autoscaler:fleet:{fleet}:stages",
	                           NULL, "main"), 28);
	assert_string_equal(buf, "autoscaler:fleet:main:stages");
	assert_int_equal(store_key(buf, sizeof(buf), "p:", "{fleet}", NULL, NULL), -EINVAL);
	assert_int_equal(store_key(buf, 8, "ivs:prod:", "x", NULL, NULL), -ENAMETOOLONG);
	assert_int_equal(store_key(buf, 10, "ivs:prod:", "", NULL, NULL), 9);
	assert_int_equal(store_key(buf, 10, "ivs:", "{arn}", "12345", NULL), 9);
	assert_int_equal(store_key(buf, 10, "ivs:", "{arn}", "123456", NULL), -ENAMETOOLONG);
	assert_int_equal(store_key(buf, sizeof(buf), "", "{ar}{arn", NULL, NULL), 8);
}

/* The fixed keys of §3, spelled once in store.c. */
static void test_stage_keys(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(store_stage_key(buf, sizeof(buf), "ivs:", STORE_KEY_STAGE, "s/a"), 0);
	assert_string_equal(buf, "ivs:stage:s/a");
	assert_int_equal(store_stage_key(buf, sizeof(buf), "ivs:", STORE_KEY_DRAINING, "s/a"), 0);
	assert_string_equal(buf, "ivs:stage:s/a:draining");
	assert_int_equal(store_stage_key(buf, sizeof(buf), "ivs:", STORE_KEY_DRAINED_BY, "s/a"), 0);
	assert_string_equal(buf, "ivs:stage:s/a:drained_by");
	assert_int_equal(store_stage_key(buf, sizeof(buf), "", STORE_KEY_REPLICATION, "s/a"), 0);
	assert_string_equal(buf, "replication:s/a");
	assert_int_equal(store_stage_key(buf, 12, "ivs:", STORE_KEY_DRAINING, "s/a"),
	                 -ENAMETOOLONG);
	assert_int_equal(store_stage_key(buf, sizeof(buf), "ivs:", STORE_KEY_STAGE, NULL), -EINVAL);
	assert_int_equal(store_status_key(buf, sizeof(buf), "ivs:prod:"), 0);
	assert_string_equal(buf, "ivs:prod:autoscaler:status");
	assert_int_equal(store_status_key(buf, 12, "ivs:prod:"), -ENAMETOOLONG);
}

static void test_read_fleet(void **state)
{
	static const struct store_stage_keys stages[] = {
		{ "ivs:test:stage:s1:viewers", "ivs:test:stage:s1:draining", NULL },   /* SET of 3 */
		{ "ivs:test:stage:s2:viewers", "ivs:test:stage:s2:draining", NULL },   /* STRING "42" */
		{ "ivs:test:stage:s3:viewers", "ivs:test:stage:s3:draining", NULL },   /* HASH */
		{ "ivs:test:stage:s4:viewers", "ivs:test:stage:s4:draining", NULL },   /* absent */
		{ "ivs:test:stage:s5:viewers", "ivs:test:stage:s5:draining", NULL },   /* STRING "lots" */
		{ "ivs:test:stage:s6:viewers", "ivs:test:stage:s6:draining", NULL },   /* ZSET */
	};
	struct store_fleet_keys keys = { "ivs:test:desired_stages", "ivs:test:publisher:info", 6,
	                                 stages };
	struct read_result res = { 0 };

	(void)state;
	freeReplyObject(sync_get("FLUSHALL"));
	freeReplyObject(sync_get("SET %s %s", keys.desired_stages, "4"));
	freeReplyObject(sync_get("SET %s %s", keys.publisher,
	                         "{\"participantId\":\"p-1\",\"stageArn\":"
	                         "\"arn:aws:ivs:us-east-1:123456789012:stage/abc\","
	                         "\"userId\":\"broadcaster-123\",\"joinedAt\":\"2025-10-23T10:00:00Z\"}"));
	freeReplyObject(sync_get("SADD %s a b c", stages[0].viewers));
	freeReplyObject(sync_get("SET %s 1761200000123", stages[0].draining));
	freeReplyObject(sync_get("SET %s 42", stages[1].viewers));
	freeReplyObject(sync_get("SET %s yesterday", stages[1].draining));
	freeReplyObject(sync_get("HSET %s a 1", stages[2].viewers));
	freeReplyObject(sync_get("SET %s lots", stages[4].viewers));
	freeReplyObject(sync_get("ZADD %s 1 a", stages[5].viewers));
	freeReplyObject(sync_get("HSET %s a 1", stages[5].draining));
	assert_int_equal(store_read_fleet(rio, &keys, on_read, &res), 0);
	run_until(&res.done, 1);
	assert_int_equal(res.done, 1);
	assert_true(res.r.ok);
	assert_int_equal(res.r.desired.state, STORE_OK);
	assert_int_equal(res.r.desired.value, 4);
	assert_int_equal(res.r.publisher.state, STORE_OK);
	assert_string_equal(res.r.publisher.info.participant_id, "p-1");
	assert_string_equal(res.r.publisher.info.user_id, "broadcaster-123");
	assert_int_equal(res.stages[0].viewers_state, STORE_OK);
	assert_int_equal(res.stages[0].viewers, 3);
	assert_true(res.stages[0].draining);
	assert_int_equal(res.stages[0].draining_since_ms, 1761200000123LL);
	assert_int_equal(res.stages[1].viewers_state, STORE_OK);
	assert_int_equal(res.stages[1].viewers, 42);
	assert_true(res.stages[1].draining);
	assert_int_equal(res.stages[1].draining_since_ms, -1);
	assert_int_equal(res.stages[2].viewers_state, STORE_INVALID);
	assert_string_equal(res.stages[2].viewers_error,
	                    "wrong type: a hash, expected a set or an integer string");
	assert_int_equal(res.stages[3].viewers_state, STORE_ABSENT);
	assert_int_equal(res.stages[3].viewers, 0);
	assert_false(res.stages[3].draining);
	assert_int_equal(res.stages[4].viewers_state, STORE_INVALID);
	assert_string_equal(res.stages[4].viewers_error, "not an integer: \"lots\"");
	assert_int_equal(res.stages[5].viewers_state, STORE_INVALID);
	assert_string_equal(res.stages[5].viewers_error,
	                    "wrong type: a zset, expected a set or an integer string");
	assert_true(res.stages[5].draining);
	assert_int_equal(res.stages[5].draining_since_ms, -1);

	/* Malformed scalar keys: reported, never trusted. */
	freeReplyObject(sync_get("SET %s %s", keys.desired_stages, "many"));
	freeReplyObject(sync_get("SET %s %s", keys.publisher, "not json"));
	memset(&res, 0, sizeof(res));
	assert_int_equal(store_read_fleet(rio, &keys, on_read, &res), 0);
	run_until(&res.done, 1);
	assert_true(res.r.ok);
	assert_int_equal(res.r.desired.state, STORE_INVALID);
	assert_string_equal(res.r.desired.error, "not an integer: \"many\"");
	assert_int_equal(res.r.publisher.state, STORE_INVALID);
	assert_memory_equal(res.r.publisher.error, "not JSON: ", 10);
	freeReplyObject(sync_get("DEL %s", keys.desired_stages));
	freeReplyObject(sync_get("DEL %s", keys.publisher));
	freeReplyObject(sync_get("SADD %s x", keys.publisher));
	memset(&res, 0, sizeof(res));
	keys.n_stages = 0;
	assert_int_equal(store_read_fleet(rio, &keys, on_read, &res), 0);
	run_until(&res.done, 1);
	assert_int_equal(res.r.desired.state, STORE_ABSENT);
	assert_int_equal(res.r.publisher.state, STORE_INVALID);
	assert_string_equal(res.r.publisher.error, "wrong type: not a string");
	keys.desired_stages = NULL;
	assert_int_equal(store_read_fleet(rio, &keys, on_read, &res), -EINVAL);
}

static void test_writes(void **state)
{
	struct write_result w = { 0 };
	const char *src = "arn:aws:ivs:us-east-1:123456789012:stage/origin";
	const char *dst = "arn:aws:ivs:us-east-1:123456789012:stage/replica";
	redisReply *r;

	(void)state;
	freeReplyObject(sync_get("FLUSHALL"));
	assert_int_equal(store_put_stage_info(rio, "ivs:test:stage:R", dst, "autoscaled-1",
	                                      "2025-10-23T10:00:00.000Z", src, on_write, &w), 0);
	assert_int_equal(store_put_replication(rio, "ivs:test:replication:R", src, dst, "p-1",
	                                       "2025-10-23T10:00:01.000Z", on_write, &w), 0);
	assert_int_equal(store_mark_draining(rio, "ivs:test:stage:R:draining", 1000, on_write, &w),
	                 0);
	/* NX: a second mark keeps the original start. */
	assert_int_equal(store_mark_draining(rio, "ivs:test:stage:R:draining", 2000, on_write, &w),
	                 0);
	run_until(&w.done, 4);
	assert_int_equal(w.err, 0);
	r = sync_get("GET ivs:test:stage:R");
	assert_string_equal(r->str, "{\"name\":\"autoscaled-1\",\"arn\":\"arn:aws:ivs:us-east-1:"
	                    "123456789012:stage/replica\",\"autoScaled\":true,\"createdAt\":"
	                    "\"2025-10-23T10:00:00.000Z\",\"parentStage\":\"arn:aws:ivs:us-east-1:"
	                    "123456789012:stage/origin\"}");
	freeReplyObject(r);
	r = sync_get("GET ivs:test:replication:R");
	assert_string_equal(r->str, "{\"sourceStageArn\":\"arn:aws:ivs:us-east-1:123456789012:"
	                    "stage/origin\",\"destStageArn\":\"arn:aws:ivs:us-east-1:123456789012:"
	                    "stage/replica\",\"participantId\":\"p-1\",\"startedAt\":"
	                    "\"2025-10-23T10:00:01.000Z\"}");
	freeReplyObject(r);
	r = sync_get("GET ivs:test:stage:R:draining");
	assert_string_equal(r->str, "1000");
	freeReplyObject(r);

	/* Status hash. */
	static const char *const fields[] = { "last_pass", "result" };
	static const char *const values[] = { "1761200000", "ok" };
	assert_int_equal(store_put_status(rio, "ivs:test:autoscaler:status", 2, fields, values,
	                                  on_write, &w), 0);
	run_until(&w.done, 5);
	assert_int_equal(w.err, 0);
	r = sync_get("HGET ivs:test:autoscaler:status result");
	assert_string_equal(r->str, "ok");
	freeReplyObject(r);

	/* A Redis error (wrong type) surfaces as -EIO with the server's text. */
	assert_int_equal(store_put_status(rio, "ivs:test:stage:R", 2, fields, values, on_write, &w),
	                 0);
	run_until(&w.done, 6);
	assert_int_equal(w.err, -EIO);
	assert_memory_equal(w.error, "WRONGTYPE", 9);

	/* Unmark, delete replication, forget. */
	assert_int_equal(store_unmark_draining(rio, "ivs:test:stage:R:draining", on_write, &w), 0);
	assert_int_equal(store_del_replication(rio, "ivs:test:replication:R", on_write, &w), 0);
	run_until(&w.done, 8);
	assert_int_equal(w.err, 0);
	r = sync_get("EXISTS ivs:test:stage:R:draining ivs:test:replication:R ivs:test:stage:R");
	assert_int_equal(r->integer, 1);
	freeReplyObject(r);
	assert_int_equal(store_forget_stage(rio, "ivs:test:stage:R", "ivs:test:replication:R",
	                                    "ivs:test:stage:R:draining", NULL, on_write, &w), 0);
	run_until(&w.done, 9);
	assert_int_equal(w.err, 0);
	r = sync_get("EXISTS ivs:test:stage:R");
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);
	assert_int_equal(store_put_stage_info(rio, "k", NULL, "n", "t", NULL, on_write, &w), -EINVAL);
	assert_int_equal(store_mark_draining(rio, "k", -1, on_write, &w), -EINVAL);
}

/* The _nx writes keep an existing record and create a missing one; both report success. */
static void test_writes_nx(void **state)
{
	struct write_result w = { 0 };
	const char *src = "arn:aws:ivs:us-east-1:123456789012:stage/origin";
	const char *dst = "arn:aws:ivs:us-east-1:123456789012:stage/replica";
	redisReply *r;

	(void)state;
	freeReplyObject(sync_get("FLUSHALL"));
	freeReplyObject(sync_get("SET ivs:test:stage:R kept"));
	freeReplyObject(sync_get("SET ivs:test:replication:R kept"));
	assert_int_equal(store_put_stage_info_nx(rio, "ivs:test:stage:R", dst, "adopted", "t0", src,
	                                         on_write, &w), 0);
	assert_int_equal(store_put_replication_nx(rio, "ivs:test:replication:R", src, dst, "p-1",
	                                          "t1", on_write, &w), 0);
	assert_int_equal(store_put_stage_info_nx(rio, "ivs:test:stage:N", dst, "adopted", "t0", src,
	                                         on_write, &w), 0);
	assert_int_equal(store_put_replication_nx(rio, "ivs:test:replication:N", src, dst, "p-1",
	                                          "t1", on_write, &w), 0);
	run_until(&w.done, 4);
	assert_int_equal(w.err, 0);
	r = sync_get("MGET ivs:test:stage:R ivs:test:replication:R");
	assert_string_equal(r->element[0]->str, "kept");
	assert_string_equal(r->element[1]->str, "kept");
	freeReplyObject(r);
	r = sync_get("GET ivs:test:stage:N");
	assert_non_null(strstr(r->str, "\"name\":\"adopted\""));
	assert_non_null(strstr(r->str, "\"parentStage\":\"arn:aws:ivs:us-east-1:123456789012:"
	                           "stage/origin\""));
	freeReplyObject(r);
	r = sync_get("GET ivs:test:replication:N");
	assert_non_null(strstr(r->str, "\"participantId\":\"p-1\""));
	freeReplyObject(r);
	/* Malformed input is refused before anything is sent. */
	assert_int_equal(store_put_stage_info_nx(rio, "k", NULL, "n", "t", NULL, on_write, &w),
	                 -EINVAL);
	assert_int_equal(store_put_replication_nx(rio, NULL, src, dst, "p", "t", on_write, &w),
	                 -EINVAL);
	assert_int_equal(w.done, 4);
}

/*
 * An operator's drain: the mark keeps its first start (NX) and stays a number; drained_by says
 * "operator"; a read reports it only for that exact value; forgetting the stage removes both.
 */
static void test_operator_drain(void **state)
{
	static const struct store_stage_keys stages[] = {
		{ "ivs:test:stage:o:viewers", "ivs:test:stage:o:draining", "ivs:test:stage:o:by" },
		{ "ivs:test:stage:x:viewers", "ivs:test:stage:x:draining", "ivs:test:stage:x:by" },
		{ "ivs:test:stage:y:viewers", "ivs:test:stage:y:draining", NULL },
	};
	struct store_fleet_keys keys = { "ivs:test:desired_stages", "ivs:test:publisher:info", 3,
	                                 stages };
	struct write_result w = { 0 };
	struct read_result res = { 0 };
	redisReply *r;

	(void)state;
	freeReplyObject(sync_get("FLUSHALL"));
	freeReplyObject(sync_get("SET ivs:test:stage:x:draining 5"));
	freeReplyObject(sync_get("SET ivs:test:stage:x:by Operator"));   /* not the exact value */
	freeReplyObject(sync_get("SET ivs:test:stage:y:draining 6"));
	freeReplyObject(sync_get("SET ivs:test:stage:y:by operator"));   /* not asked for */
	assert_int_equal(store_mark_draining_by_operator(rio, stages[0].draining,
	                                                 stages[0].drained_by, 1000, on_write, &w),
	                 0);
	assert_int_equal(store_mark_draining_by_operator(rio, stages[0].draining,
	                                                 stages[0].drained_by, 2000, on_write, &w),
	                 0);
	run_until(&w.done, 2);
	assert_int_equal(w.err, 0);
	r = sync_get("MGET ivs:test:stage:o:draining ivs:test:stage:o:by");
	assert_string_equal(r->element[0]->str, "1000");
	assert_string_equal(r->element[1]->str, "operator");
	freeReplyObject(r);

	assert_int_equal(store_read_fleet(rio, &keys, on_read, &res), 0);
	run_until(&res.done, 1);
	assert_true(res.r.ok);
	assert_true(res.stages[0].draining);
	assert_int_equal(res.stages[0].draining_since_ms, 1000);
	assert_true(res.stages[0].by_operator);
	assert_true(res.stages[1].draining);
	assert_false(res.stages[1].by_operator);
	assert_true(res.stages[2].draining);
	assert_false(res.stages[2].by_operator);

	assert_int_equal(store_forget_stage(rio, "ivs:test:stage:o", "ivs:test:replication:o",
	                                    stages[0].draining, stages[0].drained_by, on_write, &w),
	                 0);
	run_until(&w.done, 3);
	assert_int_equal(w.err, 0);
	r = sync_get("EXISTS ivs:test:stage:o:draining ivs:test:stage:o:by");
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);

	assert_int_equal(store_mark_draining_by_operator(rio, "k", NULL, 1, on_write, &w), -EINVAL);
	assert_int_equal(store_mark_draining_by_operator(rio, "k", "b", -1, on_write, &w), -EINVAL);
	assert_int_equal(w.done, 3);
}

static void test_open_stages_zset(void **state)
{
	const char *key = "ivs:test:autoscaler:fleet:main:stages";
	static const char *const arns[] = { "arn:aws:ivs:us-east-1:1:stage/a",
	                                    "arn:aws:ivs:us-east-1:1:stage/b" };
	static const long long viewers[] = { 10, 2500 };
	struct write_result w = { 0 };
	redisReply *r;

	(void)state;
	freeReplyObject(sync_get("FLUSHALL"));
	freeReplyObject(sync_get("ZADD %s 1 stale-member", key));
	assert_int_equal(store_set_open_stages(rio, key, 2, arns, viewers, on_write, &w), 0);
	run_until(&w.done, 1);
	assert_int_equal(w.err, 0);
	r = sync_get("ZRANGE %s 0 -1 WITHSCORES", key);
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	assert_int_equal(r->elements, 4);    /* the stale member is gone: DEL + ZADD as one */
	assert_string_equal(r->element[0]->str, arns[0]);
	assert_string_equal(r->element[1]->str, "10");
	assert_string_equal(r->element[2]->str, arns[1]);
	assert_string_equal(r->element[3]->str, "2500");
	freeReplyObject(r);
	/* A key of another type is replaced: the DEL inside the transaction runs before ZADD. */
	freeReplyObject(sync_get("HSET %s a 1", "ivs:test:hash"));
	assert_int_equal(store_set_open_stages(rio, "ivs:test:hash", 2, arns, viewers, on_write,
	                                       &w), 0);
	run_until(&w.done, 2);
	assert_int_equal(w.err, 0);
	r = sync_get("TYPE %s", "ivs:test:hash");
	assert_string_equal(r->str, "zset");
	freeReplyObject(r);
	/* An empty list just deletes the key. */
	assert_int_equal(store_set_open_stages(rio, key, 0, NULL, NULL, on_write, &w), 0);
	run_until(&w.done, 3);
	assert_int_equal(w.err, 0);
	r = sync_get("EXISTS %s", key);
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);
}

struct members_result {
	int done;
	int err;
	char error[STORE_ERR_MAX];
	size_t n;
	char members[4][128];
};

static void on_members(void *ud, int err, const char *error, size_t n,
                       const char *const *members, const size_t *lens)
{
	struct members_result *m = ud;

	m->done++;
	m->err = err;
	m->n = n;
	snprintf(m->error, sizeof(m->error), "%s", error != NULL ? error : "");
	for (size_t i = 0; i < n && i < 4; i++)
		snprintf(m->members[i], sizeof(m->members[i]), "%.*s", (int)lens[i], members[i]);
}

/* The admin state: sets replaced whole and read back; keys spelled in store.c. */
static void test_admin_sets(void **state)
{
	static const char *const two[] = { "main", "eu" };
	struct write_result w = { 0 };
	struct members_result m = { 0 };
	char key[64];
	redisReply *r;

	(void)state;
	assert_int_equal(store_admin_key(key, sizeof(key), "ivs:", STORE_KEY_MANUAL), 0);
	assert_string_equal(key, "ivs:autoscaler:manual_replications");
	assert_int_equal(store_admin_key(key, 12, "ivs:", STORE_KEY_PAUSED), -ENAMETOOLONG);
	assert_int_equal(store_admin_key(key, sizeof(key), "ivs:", STORE_KEY_PAUSED), 0);
	assert_string_equal(key, "ivs:autoscaler:paused");

	freeReplyObject(sync_get("FLUSHALL"));
	/* An absent key reads as an empty set. */
	assert_int_equal(store_read_set(rio, key, on_members, &m), 0);
	run_until(&m.done, 1);
	assert_int_equal(m.err, 0);
	assert_int_equal(m.n, 0);
	/* Replaced whole: a stale member is gone. */
	freeReplyObject(sync_get("SADD %s stale", key));
	assert_int_equal(store_replace_set(rio, key, 2, two, on_write, &w), 0);
	run_until(&w.done, 1);
	assert_int_equal(w.err, 0);
	r = sync_get("SCARD %s", key);
	assert_int_equal(r->integer, 2);
	freeReplyObject(r);
	assert_int_equal(store_read_set(rio, key, on_members, &m), 0);
	run_until(&m.done, 2);
	assert_int_equal(m.err, 0);
	assert_int_equal(m.n, 2);
	assert_true((strcmp(m.members[0], "main") == 0 && strcmp(m.members[1], "eu") == 0) ||
	            (strcmp(m.members[0], "eu") == 0 && strcmp(m.members[1], "main") == 0));
	/* Nothing to keep: the key goes. */
	assert_int_equal(store_replace_set(rio, key, 0, NULL, on_write, &w), 0);
	run_until(&w.done, 2);
	assert_int_equal(w.err, 0);
	r = sync_get("EXISTS %s", key);
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);
	/* A key of another type is an error with a reason, never trusted. */
	freeReplyObject(sync_get("SET %s oops", key));
	assert_int_equal(store_read_set(rio, key, on_members, &m), 0);
	run_until(&m.done, 3);
	assert_int_equal(m.err, -EIO);
	assert_string_equal(m.error, "wrong type: not a set");
	assert_int_equal(m.n, 0);
	assert_int_equal(store_read_set(rio, NULL, on_members, &m), -EINVAL);
	assert_int_equal(store_replace_set(rio, key, 1, NULL, on_write, &w), -EINVAL);
}

static void test_down(void **state)
{
	static const struct store_stage_keys stages[] = { { "v", "d", NULL } };
	struct store_fleet_keys keys = { "a", "b", 1, stages };
	struct read_result res = { 0 };
	struct write_result w = { 0 };

	(void)state;
	/* A read in flight when the server dies completes once with ok == false. */
	assert_int_equal(store_read_fleet(rio, &keys, on_read, &res), 0);
	server_kill(&srv);
	run_until(&res.done, 1);
	assert_false(res.r.ok);
	assert_true(res.r.error[0] != '\0');
	for (uint64_t end = mono_ms() + DEADLINE_MS; redisio_connected(rio) && mono_ms() < end;)
		sd_event_run(event, 100 * 1000);
	assert_false(redisio_connected(rio));
	assert_int_equal(store_read_fleet(rio, &keys, on_read, &res), -ENOTCONN);
	assert_int_equal(store_del_replication(rio, "k", on_write, &w), -ENOTCONN);
	assert_int_equal(res.done, 1);
	assert_int_equal(w.done, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_key),
		cmocka_unit_test(test_stage_keys),
		cmocka_unit_test(test_read_fleet),
		cmocka_unit_test(test_writes),
		cmocka_unit_test(test_writes_nx),
		cmocka_unit_test(test_operator_drain),
		cmocka_unit_test(test_open_stages_zset),
		cmocka_unit_test(test_admin_sets),
		cmocka_unit_test(test_down),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
