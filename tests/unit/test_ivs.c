/*
 * test_ivs.c — aws.c and ivs.c end to end against the loopback fake server, in a real
 * sd-event loop: signing on every attempt, retries, no retry on 402, timeouts, pagination,
 * cancellation. Randomness is 0 (no backoff wait), the signing clock ticks one second per call
 * so every attempt carries a new x-amz-date.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include "ivs.h"
#include "sigv4.h"
#include "fake_http_server.h"

struct hooks {
	int64_t unix_now;
	int64_t tick;                   /* added after each reading; 0 freezes the clock */
};

static double zero_random(void *ctx) { (void)ctx; return 0.0; }

static int64_t ticking_clock(void *ctx)
{
	struct hooks *h = ctx;

	int64_t now = h->unix_now;

	h->unix_now += h->tick;
	return now;
}

static int test_credentials(void *ctx, struct aws_credentials *out)
{
	static const struct aws_credentials creds = {
		.access_key_id = "AKIDEXAMPLE",
		.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		.session_token = "session-token-example",
	};

	(void)ctx;
	return aws_credentials_copy(out, &creds);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void run_until(sd_event *e, const int *calls, int want)
{
	uint64_t deadline = now_ms() + 15000;

	while (*calls < want && now_ms() < deadline)
		assert_true(sd_event_run(e, 100000) >= 0);
	assert_int_equal(*calls, want);
}

struct fixture {
	sd_event *event;
	struct aws_client *aws;
	struct fake_server server;
	struct hooks hooks;
};

static struct fixture *setup(const struct fake_response *responses, size_t n, long timeout_ms)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct aws_client_options o = {
		.region = "us-east-1", .max_tps = 100, .timeout_ms = timeout_ms,
		.credentials = test_credentials, .random = zero_random,
		.unix_seconds = ticking_clock,
	};

	assert_non_null(f);
	f->hooks.unix_now = 1440938160;
	f->hooks.tick = 1;
	o.hook_ctx = &f->hooks;
	assert_int_equal(sd_event_new(&f->event), 0);
	assert_int_equal(fake_server_start(&f->server, responses, n), 0);
	o.endpoint = f->server.url;
	assert_int_equal(aws_client_new(f->event, &o, &f->aws), 0);
	return f;
}

static void teardown(struct fixture *f)
{
	aws_client_free(f->aws);
	fake_server_stop(&f->server);
	sd_event_unref(f->event);
	free(f);
}

struct outcome {
	int calls;
	enum aws_error_kind kind;
	char code[64];
	char request_id[80];
	size_t items;
	char first[IVS_ARN_MAX + 1];
};

static void on_stage(void *ud, const struct aws_error *err, const struct ivs_stage *stage)
{
	struct outcome *o = ud;

	o->calls++;
	o->kind = err->kind;
	snprintf(o->code, sizeof(o->code), "%s", err->code);
	snprintf(o->request_id, sizeof(o->request_id), "%s", err->request_id);
	if (stage != NULL) {
		o->items = 1;
		snprintf(o->first, sizeof(o->first), "%s", stage->arn);
	}
}

static void on_stages(void *ud, const struct aws_error *err, const struct ivs_stage_list *l)
{
	struct outcome *o = ud;

	o->calls++;
	o->kind = err->kind;
	if (l != NULL) {
		o->items = l->n;
		if (l->n > 0)
			snprintf(o->first, sizeof(o->first), "%s", l->items[0].arn);
	}
}

static void on_done(void *ud, const struct aws_error *err)
{
	struct outcome *o = ud;

	o->calls++;
	o->kind = err->kind;
	snprintf(o->code, sizeof(o->code), "%s", err->code);
}

static void on_replicas(void *ud, const struct aws_error *err, const struct ivs_replica_list *l)
{
	struct outcome *o = ud;

	o->calls++;
	o->kind = err->kind;
	o->items = l ? l->n : 0;
}

#define STAGE_JSON "{\"stage\":{\"arn\":\"arn:aws:ivs:us-east-1:123456789012:stage/AbCd\"," \
	"\"name\":\"r1\",\"activeSessionId\":\"\",\"tags\":{\"ivs-autoscaler:managed\":\"true\"}}}"

static void test_throttled_then_ok_signed_each_time(void **state)
{
	static const struct fake_response responses[] = {
		{ .status = 429, .headers = "x-amzn-RequestId: r-1\r\n", .body = "{\"message\":\"Rate exceeded\"}" },
		{ .status = 200, .headers = "x-amzn-RequestId: r-2\r\n", .body = STAGE_JSON },
	};
	struct fixture *f = setup(responses, 2, 0);
	static const struct ivs_kv tags[] = { { "ivs-autoscaler:managed", "true" } };
	struct outcome o = { 0 };
	char a1[512], a2[512], v[256];
	const struct aws_op_stats *st;
	size_t n;

	(void)state;
	assert_int_equal(ivs_create_stage(f->aws, "r1", tags, 1, on_stage, &o), 0);
	assert_int_equal(o.calls, 0);
	run_until(f->event, &o.calls, 1);
	assert_int_equal(o.kind, AWS_OK);
	assert_string_equal(o.first, "arn:aws:ivs:us-east-1:123456789012:stage/AbCd");
	assert_int_equal(fake_server_nrequests(&f->server), 2);
	assert_string_equal(f->server.requests[0].path, "/CreateStage");
	assert_string_equal(f->server.requests[0].body,
			    "{\"name\":\"r1\",\"tags\":{\"ivs-autoscaler:managed\":\"true\"}}");
	fake_request_header(&f->server, 0, "Authorization", a1, sizeof(a1));
	fake_request_header(&f->server, 1, "Authorization", a2, sizeof(a2));
	assert_non_null(strstr(a1, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ivs/aws4_request"));
	assert_non_null(strstr(a1, "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"));
	assert_string_not_equal(a1, a2);          /* re-signed with a new date */
	fake_request_header(&f->server, 0, "X-Amz-Date", v, sizeof(v));
	assert_string_equal(v, "20150830T123600Z");
	fake_request_header(&f->server, 1, "X-Amz-Date", v, sizeof(v));
	assert_string_equal(v, "20150830T123601Z");
	fake_request_header(&f->server, 1, "X-Amz-Security-Token", v, sizeof(v));
	assert_string_equal(v, "session-token-example");
	fake_request_header(&f->server, 1, "Host", v, sizeof(v));
	assert_string_equal(v, f->server.url + strlen("http://"));
	fake_request_header(&f->server, 1, "Content-Type", v, sizeof(v));
	assert_string_equal(v, "application/json");
	st = aws_client_stats(f->aws, &n);
	assert_int_equal(n, 1);
	assert_string_equal(st[0].operation, "CreateStage");
	assert_int_equal(st[0].retries, 1);
	assert_int_equal(st[0].throttles, 1);
	assert_int_equal(st[0].outcomes[AWS_OK], 1);
	assert_int_equal(st[0].latency_count, 1);
	teardown(f);
}

static void test_tag_resource_path_and_body(void **state)
{
	static const struct fake_response responses[] = {
		{ .status = 200, .headers = "x-amzn-RequestId: r-1\r\n", .body = "{}" },
	};
	struct fixture *f = setup(responses, 1, 0);
	static const struct ivs_kv tags[] = { { "ivs-autoscaler:origin", "OriginA" },
					      { "ivs-autoscaler:owner", "prod" } };
	struct outcome o = { 0 };

	(void)state;
	assert_int_equal(ivs_tag_resource(f->aws, "arn:aws:ivs:us-east-1:123456789012:stage/AbCd",
					  tags, 2, on_done, &o), 0);
	run_until(f->event, &o.calls, 1);
	assert_int_equal(o.kind, AWS_OK);
	assert_string_equal(f->server.requests[0].method, "POST");
	assert_string_equal(f->server.requests[0].path,
			    "/tags/arn%3Aaws%3Aivs%3Aus-east-1%3A123456789012%3Astage%2FAbCd");
	assert_string_equal(f->server.requests[0].body,
			    "{\"tags\":{\"ivs-autoscaler:origin\":\"OriginA\",\"ivs-autoscaler:owner\":\"prod\"}}");
	/* No tags, no ARN: refused before anything is queued. */
	assert_int_equal(ivs_tag_resource(f->aws, "arn:x", tags, 0, on_done, &o), -EINVAL);
	assert_int_equal(ivs_tag_resource(f->aws, "", tags, 1, on_done, &o), -EINVAL);
	assert_int_equal(o.calls, 1);
	teardown(f);
}

static bool gate_open;
static int gate_asked;

static bool test_gate(void *ctx, const char *operation)
{
	(void)ctx;
	gate_asked++;
	return gate_open || !ivs_operation_mutates(operation);
}

/* The send gate: a mutating call is refused when it would go on the wire; reads pass. */
static void test_send_gate(void **state)
{
	static const struct fake_response responses[] = {
		{ .status = 200, .headers = "x-amzn-RequestId: r-1\r\n",
		  .body = "{\"stages\":[]}" },
		{ .status = 200, .headers = "x-amzn-RequestId: r-2\r\n", .body = "{}" },
	};
	struct fixture *f = setup(responses, 2, 0);
	struct outcome del = { 0 }, list = { 0 }, del2 = { 0 };

	(void)state;
	aws_client_free(f->aws);
	{
		struct aws_client_options o = {
			.region = "us-east-1", .max_tps = 100, .credentials = test_credentials,
			.random = zero_random, .unix_seconds = ticking_clock, .hook_ctx = &f->hooks,
			.endpoint = f->server.url, .may_send = test_gate,
		};
		assert_int_equal(aws_client_new(f->event, &o, &f->aws), 0);
	}
	gate_open = false;
	gate_asked = 0;
	assert_int_equal(ivs_delete_stage(f->aws, "arn:aws:ivs:us-east-1:1:stage/X", on_done, &del), 0);
	assert_int_equal(ivs_list_stages(f->aws, on_stages, &list), 0);
	run_until(f->event, &del.calls, 1);
	run_until(f->event, &list.calls, 1);
	assert_int_equal(del.kind, AWS_ERR_CANCELLED);
	assert_int_equal(list.kind, AWS_OK);
	assert_int_equal(fake_server_nrequests(&f->server), 1);
	assert_string_equal(f->server.requests[0].path, "/ListStages");
	gate_open = true;
	assert_int_equal(ivs_delete_stage(f->aws, "arn:aws:ivs:us-east-1:1:stage/X", on_done, &del2), 0);
	run_until(f->event, &del2.calls, 1);
	assert_int_equal(del2.kind, AWS_OK);
	assert_int_equal(gate_asked, 3);
	assert_true(ivs_operation_mutates("CreateStage") && ivs_operation_mutates("TagResource") &&
		    ivs_operation_mutates("SomethingNew") && !ivs_operation_mutates("ListStages") &&
		    !ivs_operation_mutates("ListParticipantReplicas"));
	teardown(f);
}

static void test_quota_not_retried(void **state)
{
	static const struct fake_response responses[] = {
		{ .status = 402, .headers = "x-amzn-ErrorType: ServiceQuotaExceededException:x\r\n"
		  "x-amzn-RequestId: q-1\r\n", .body = "{\"exceptionMessage\":\"5 replications\"}" },
	};
	struct fixture *f = setup(responses, 1, 0);
	struct outcome o = { 0 };

	(void)state;
	assert_int_equal(ivs_start_participant_replication(f->aws,
		"arn:aws:ivs:us-east-1:1:stage/src", "arn:aws:ivs:us-east-1:1:stage/dst", "p1", 60,
		NULL, 0, on_done, &o), 0);
	run_until(f->event, &o.calls, 1);
	assert_int_equal(o.kind, AWS_ERR_QUOTA);
	assert_string_equal(o.code, "ServiceQuotaExceededException");
	assert_int_equal(fake_server_nrequests(&f->server), 1);
	assert_string_equal(f->server.requests[0].body,
			    "{\"sourceStageArn\":\"arn:aws:ivs:us-east-1:1:stage/src\","
			    "\"destinationStageArn\":\"arn:aws:ivs:us-east-1:1:stage/dst\","
			    "\"participantId\":\"p1\",\"reconnectWindowSeconds\":60}");
	teardown(f);
}

static void test_timeouts_exhaust_attempts(void **state)
{
	static const struct fake_response responses[] = {
		{ .action = FAKE_HANG }, { .action = FAKE_HANG }, { .action = FAKE_HANG },
	};
	struct fixture *f = setup(responses, 3, 300);
	struct outcome o = { 0 };

	(void)state;
	assert_int_equal(ivs_delete_stage(f->aws, "arn:aws:ivs:us-east-1:1:stage/x", on_done, &o), 0);
	run_until(f->event, &o.calls, 1);
	assert_int_equal(o.kind, AWS_ERR_TIMEOUT);
	assert_int_equal(fake_server_nrequests(&f->server), 3);
	teardown(f);
}

static void test_dropped_then_ok(void **state)
{
	static const struct fake_response responses[] = {
		{ .action = FAKE_CLOSE }, { .status = 200, .body = "{}" },
	};
	struct fixture *f = setup(responses, 2, 0);
	struct outcome o = { 0 };

	(void)state;
	assert_int_equal(ivs_stop_participant_replication(f->aws, "arn:aws:ivs:us-east-1:1:stage/a",
		"arn:aws:ivs:us-east-1:1:stage/b", "p1", on_done, &o), 0);
	run_until(f->event, &o.calls, 1);
	assert_int_equal(o.kind, AWS_OK);
	assert_int_equal(fake_server_nrequests(&f->server), 2);
	teardown(f);
}

static void test_pagination_three_pages(void **state)
{
	static const struct fake_response responses[] = {
		{ .status = 200, .body = "{\"stages\":[{\"arn\":\"arn:aws:ivs:us-east-1:1:stage/a\"}],\"nextToken\":\"t1\"}" },
		{ .status = 200, .body = "{\"stages\":[{\"arn\":\"arn:aws:ivs:us-east-1:1:stage/b\"},"
		  "{\"arn\":\"arn:aws:ivs:us-east-1:1:stage/c\"}],\"nextToken\":\"t2\"}" },
		{ .status = 200, .body = "{\"stages\":[{\"arn\":\"arn:aws:ivs:us-east-1:1:stage/d\"}]}" },
	};
	struct fixture *f = setup(responses, 3, 0);
	struct outcome o = { 0 };

	(void)state;
	assert_int_equal(ivs_list_stages(f->aws, on_stages, &o), 0);
	run_until(f->event, &o.calls, 1);
	assert_int_equal(o.kind, AWS_OK);
	assert_int_equal(o.items, 4);
	assert_string_equal(o.first, "arn:aws:ivs:us-east-1:1:stage/a");
	assert_int_equal(fake_server_nrequests(&f->server), 3);
	assert_string_equal(f->server.requests[0].body, "{\"maxResults\":100}");
	assert_string_equal(f->server.requests[1].body, "{\"maxResults\":100,\"nextToken\":\"t1\"}");
	assert_string_equal(f->server.requests[2].body, "{\"maxResults\":100,\"nextToken\":\"t2\"}");
	teardown(f);
}

struct pages {
	int pages, items, done, kind;
	size_t most;                    /* the largest page held at once */
	char last[IVS_ARN_MAX + 1];
};

static void on_page(void *ud, const struct ivs_stage_list *page)
{
	struct pages *p = ud;

	p->pages++;
	p->items += (int)page->n;
	if (page->n > p->most)
		p->most = page->n;
	if (page->n > 0)
		snprintf(p->last, sizeof(p->last), "%s", page->items[page->n - 1].arn);
}

static void on_pages_done(void *ud, const struct aws_error *err, const struct ivs_stage_list *l)
{
	struct pages *p = ud;

	p->done++;
	p->kind = err->kind;
	if (err->kind == AWS_OK)
		assert_int_equal(l->n, 0);      /* every stage went to on_page */
	else
		assert_null(l);
}

/* Page by page: each page is handed over as it arrives and not kept; an error ends it. */
static void test_pagination_page_by_page(void **state)
{
	static const struct fake_response responses[] = {
		{ .status = 200, .body = "{\"stages\":[{\"arn\":\"arn:aws:ivs:us-east-1:1:stage/a\"}],\"nextToken\":\"t1\"}" },
		{ .status = 200, .body = "{\"stages\":[{\"arn\":\"arn:aws:ivs:us-east-1:1:stage/b\"},"
		  "{\"arn\":\"arn:aws:ivs:us-east-1:1:stage/c\"}],\"nextToken\":\"t2\"}" },
		{ .status = 200, .body = "{\"stages\":[{\"arn\":\"arn:aws:ivs:us-east-1:1:stage/d\"}]}" },
		{ .status = 200, .body = "{\"stages\":[{\"arn\":\"arn:aws:ivs:us-east-1:1:stage/e\"}],\"nextToken\":\"u\"}" },
		{ .status = 200, .body = "{\"stages\":[{\"arn\":5}]}" },
	};
	struct fixture *f = setup(responses, 5, 0);
	struct pages p = { 0 }, bad = { 0 };

	(void)state;
	assert_int_equal(ivs_list_stages_paged(f->aws, NULL, on_pages_done, &p), -EINVAL);
	assert_int_equal(ivs_list_stages_paged(f->aws, on_page, on_pages_done, &p), 0);
	run_until(f->event, &p.done, 1);
	assert_int_equal(p.kind, AWS_OK);
	assert_int_equal(p.pages, 3);
	assert_int_equal(p.items, 4);
	assert_int_equal(p.most, 2);
	assert_string_equal(p.last, "arn:aws:ivs:us-east-1:1:stage/d");
	assert_string_equal(f->server.requests[2].body, "{\"maxResults\":100,\"nextToken\":\"t2\"}");
	/* a page that does not parse ends the listing with an error after the good ones */
	assert_int_equal(ivs_list_stages_paged(f->aws, on_page, on_pages_done, &bad), 0);
	run_until(f->event, &bad.done, 1);
	assert_int_equal(bad.kind, AWS_ERR_PARSE);
	assert_int_equal(bad.pages, 1);
	teardown(f);
}

static void test_repeated_token_and_bad_body(void **state)
{
	static const struct fake_response responses[] = {
		{ .status = 200, .body = "{\"replicas\":[],\"nextToken\":\"same\"}" },
		{ .status = 200, .body = "{\"replicas\":[],\"nextToken\":\"same\"}" },
		{ .status = 200, .headers = "x-amzn-RequestId: bad-1\r\n", .body = "{\"stage\":{\"arn\":5}}" },
	};
	struct fixture *f = setup(responses, 3, 0);
	struct outcome o = { 0 }, o2 = { 0 };

	(void)state;
	assert_int_equal(ivs_list_participant_replicas(f->aws, "arn:aws:ivs:us-east-1:1:stage/a", "p1",
						       on_replicas, &o), 0);
	run_until(f->event, &o.calls, 1);
	assert_int_equal(o.kind, AWS_ERR_PARSE);
	assert_string_equal(f->server.requests[0].body,
			    "{\"sourceStageArn\":\"arn:aws:ivs:us-east-1:1:stage/a\",\"participantId\":\"p1\",\"maxResults\":50}");
	assert_int_equal(ivs_get_stage(f->aws, "arn:aws:ivs:us-east-1:1:stage/a", on_stage, &o2), 0);
	run_until(f->event, &o2.calls, 1);
	assert_int_equal(o2.kind, AWS_ERR_PARSE);
	assert_string_equal(o2.request_id, "bad-1");
	teardown(f);
}

static void test_cancel_on_free_and_bad_args(void **state)
{
	static const struct fake_response responses[] = { { .action = FAKE_HANG } };
	struct fixture *f = setup(responses, 1, 0);
	struct outcome o = { 0 }, o2 = { 0 };
	struct ivs_participant_filter filt = { .kind = IVS_FILTER_STATE, .state = IVS_PARTICIPANT_STATE_UNKNOWN };
	uint64_t deadline = now_ms() + 10000;

	(void)state;
	assert_int_equal(ivs_get_stage(f->aws, NULL, on_stage, &o), -EINVAL);
	assert_int_equal(ivs_list_participants(f->aws, "arn:aws:ivs:us-east-1:1:stage/a",
					       "st-a1b2c3d4e5f6g", &filt, NULL, NULL), -EINVAL);
	assert_int_equal(ivs_start_participant_replication(f->aws, "a", "b", "p", 301, NULL, 0,
							   on_done, &o), -EINVAL);
	assert_int_equal(ivs_delete_stage(f->aws, "arn:aws:ivs:us-east-1:1:stage/a", on_done, &o), 0);
	assert_int_equal(ivs_list_stages(f->aws, on_stages, &o2), 0);
	while (fake_server_nrequests(&f->server) < 1 && now_ms() < deadline)
		assert_true(sd_event_run(f->event, 50000) >= 0);
	assert_int_equal(aws_client_pending(f->aws), 2);
	aws_client_free(f->aws);
	f->aws = NULL;
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.kind, AWS_ERR_CANCELLED);
	assert_int_equal(o2.calls, 1);
	assert_int_equal(o2.kind, AWS_ERR_CANCELLED);
	teardown(f);
}

/*
 * The queue in aws.c: 40 calls of one operation with tokens to spare; the server holds every
 * answer until the test releases it. At most 16 requests may be on the wire, sent first in
 * first out, each signed when it is sent: the signing clock is frozen and moved by the test
 * just before it frees a slot, so a request that waited carries the date of its sending.
 */
#define QUEUE_CALLS 40
#define QUEUE_CAP   16          /* AWS_MAX_IN_FLIGHT in aws.c */

struct queue_log {
	int n;
	int order[QUEUE_CALLS];
	enum aws_error_kind kind[QUEUE_CALLS];
};

struct queue_call {
	struct queue_log *log;
	int index;
};

static void on_queued_done(void *ud, const struct aws_error *err, int status, const char *body,
			   size_t len)
{
	struct queue_call *qc = ud;

	(void)status;
	(void)body;
	(void)len;
	assert_true(qc->log->n < QUEUE_CALLS);
	qc->log->order[qc->log->n] = qc->index;
	qc->log->kind[qc->log->n] = err->kind;
	qc->log->n++;
}

/* The call index a request carries in its body ({"i":N}), or -1. */
static int request_index(struct fake_server *s, size_t i)
{
	int index = -1;

	pthread_mutex_lock(&s->lock);
	if (i >= s->nrequests || sscanf(s->requests[i].body, "{\"i\":%d}", &index) != 1)
		index = -1;
	pthread_mutex_unlock(&s->lock);
	return index;
}

/* Recompute request i's signature from what arrived; it must match its Authorization. */
static void assert_signature_valid(struct fake_server *s, size_t i)
{
	static const struct aws_credentials creds = {
		.access_key_id = "AKIDEXAMPLE",
		.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		.session_token = "session-token-example",
	};
	char type[64], host[64], date[32], token[64], auth[512];
	struct sigv4_header sh[4] = {
		{ "content-type", type }, { "host", host }, { "x-amz-date", date },
		{ "x-amz-security-token", token },
	};
	struct sigv4_request req = { .method = "POST", .path = "/ListStages", .headers = sh,
				     .nheaders = 4 };
	struct sigv4_params params = { .credentials = &creds, .region = "us-east-1",
				       .service = "ivs", .amz_date = date, .normalize_path = 1,
				       .double_encode = 1 };
	struct sigv4_result sig = { 0 };

	fake_request_header(s, i, "Content-Type", type, sizeof(type));
	fake_request_header(s, i, "Host", host, sizeof(host));
	fake_request_header(s, i, "X-Amz-Date", date, sizeof(date));
	fake_request_header(s, i, "X-Amz-Security-Token", token, sizeof(token));
	fake_request_header(s, i, "Authorization", auth, sizeof(auth));
	assert_string_equal(s->requests[i].path, "/ListStages");
	req.body = s->requests[i].body;
	req.body_len = s->requests[i].body_len;
	assert_int_equal(sigv4_sign(&req, &params, &sig), 0);
	assert_string_equal(auth, sig.authorization);
	sigv4_result_free(&sig);
}

/* Run the loop until the log has want completions and the server want_requests requests. */
static void run_until_queue(struct fixture *f, const struct queue_log *log, int want,
			    size_t want_requests)
{
	uint64_t deadline = now_ms() + 15000;

	while ((log->n < want || fake_server_nrequests(&f->server) < want_requests) &&
	       now_ms() < deadline)
		assert_true(sd_event_run(f->event, 100000) >= 0);
	assert_int_equal(log->n, want);
	assert_int_equal(fake_server_nrequests(&f->server), want_requests);
}

static void test_queue_cap_fifo_signed_when_sent(void **state)
{
	static struct fake_response responses[QUEUE_CALLS];
	static const int64_t t0 = 1440938160;
	struct queue_call calls[QUEUE_CALLS];
	struct queue_log log = { 0 };
	struct fixture *f;
	size_t now, max, i, arrived;
	char body[32], date[32], want_date[17];
	int k;

	(void)state;
	for (k = 0; k < QUEUE_CALLS; k++)
		responses[k] = (struct fake_response){ .action = FAKE_HOLD, .status = 200,
						       .body = "{}" };
	f = setup(responses, QUEUE_CALLS, 0);
	f->hooks.tick = 0;
	for (k = 0; k < QUEUE_CALLS; k++) {
		calls[k] = (struct queue_call){ .log = &log, .index = k };
		snprintf(body, sizeof(body), "{\"i\":%d}", k);
		assert_int_equal(aws_request(f->aws, "ListStages", "POST", "/ListStages", body,
					     on_queued_done, &calls[k]), 0);
	}
	run_until_queue(f, &log, 0, QUEUE_CAP);
	sigv4_format_amz_date(t0, want_date);
	for (i = 0; i < QUEUE_CAP; i++) {
		fake_request_header(&f->server, i, "X-Amz-Date", date, sizeof(date));
		assert_string_equal(date, want_date);
	}
	for (k = 0; k < QUEUE_CALLS; k++) {
		arrived = fake_server_nrequests(&f->server);
		fake_server_outstanding(&f->server, &now, &max);
		assert_true(max <= QUEUE_CAP);
		assert_int_equal(now, arrived - (size_t)k);
		/* first in, first out: the requests on the wire are exactly calls k..arrived-1 */
		for (i = 0; i < arrived; i++) {
			int index = request_index(&f->server, i);

			assert_true(index >= 0 && (size_t)index < arrived);
		}
		for (i = 0; i < arrived && request_index(&f->server, i) != k; i++)
			;
		assert_true(i < arrived);
		/* the call that takes the freed slot is signed now, at t0 + 1 + k */
		f->hooks.unix_now = t0 + 1 + k;
		fake_server_release(&f->server, i);
		run_until_queue(f, &log, k + 1,
				arrived < QUEUE_CALLS ? arrived + 1 : QUEUE_CALLS);
		assert_int_equal(log.order[k], k);
		assert_int_equal(log.kind[k], AWS_OK);
		if (arrived < QUEUE_CALLS) {
			assert_int_equal(request_index(&f->server, arrived), (int)arrived);
			fake_request_header(&f->server, arrived, "X-Amz-Date", date, sizeof(date));
			sigv4_format_amz_date(t0 + 1 + k, want_date);
			assert_string_equal(date, want_date);
		}
	}
	fake_server_outstanding(&f->server, &now, &max);
	assert_int_equal(now, 0);
	assert_int_equal(max, QUEUE_CAP);
	for (i = 0; i < QUEUE_CALLS; i++)
		assert_signature_valid(&f->server, i);
	assert_int_equal(aws_client_pending(f->aws), 0);
	teardown(f);
}

/* The 409s of StartParticipantReplication, classified from the response as IVS sends it. */
static void test_conflict_of_start_replication(void **state)
{
	struct aws_error e;
	static const char already[] = "{\"exceptionMessage\":\"participant p1 is already "
				      "replicating to stage arn:aws:ivs:us-east-1:1:stage/b\"}";
	static const char quiet[] = "{\"exceptionMessage\":\"participant p1 is not publishing\"}";
	static const char other[] = "{\"exceptionMessage\":\"participant p1 is a replica and "
				    "cannot be replicated again\"}";
	(void)state;

	aws_error_from_response(&e, 409, "ConflictException", NULL, already, sizeof(already) - 1);
	assert_int_equal(ivs_conflict_of(&e), IVS_CONFLICT_ALREADY_REPLICATING);
	aws_error_from_response(&e, 409, "ConflictException", NULL, quiet, sizeof(quiet) - 1);
	assert_int_equal(ivs_conflict_of(&e), IVS_CONFLICT_NOT_PUBLISHING);
	aws_error_from_response(&e, 409, "ConflictException", NULL, other, sizeof(other) - 1);
	assert_int_equal(ivs_conflict_of(&e), IVS_CONFLICT_OTHER);
	/* The same words in another kind of error are not a conflict. */
	aws_error_from_response(&e, 400, "ValidationException", NULL, quiet, sizeof(quiet) - 1);
	assert_int_equal(ivs_conflict_of(&e), IVS_CONFLICT_NONE);
	aws_error_from_response(&e, 200, NULL, NULL, "{}", 2);
	assert_int_equal(ivs_conflict_of(&e), IVS_CONFLICT_NONE);
	assert_int_equal(ivs_conflict_of(NULL), IVS_CONFLICT_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_throttled_then_ok_signed_each_time),
		cmocka_unit_test(test_tag_resource_path_and_body),
		cmocka_unit_test(test_send_gate),
		cmocka_unit_test(test_quota_not_retried),
		cmocka_unit_test(test_timeouts_exhaust_attempts),
		cmocka_unit_test(test_dropped_then_ok),
		cmocka_unit_test(test_pagination_three_pages),
		cmocka_unit_test(test_pagination_page_by_page),
		cmocka_unit_test(test_repeated_token_and_bad_body),
		cmocka_unit_test(test_cancel_on_free_and_bad_args),
		cmocka_unit_test(test_queue_cap_fifo_signed_when_sent),
		cmocka_unit_test(test_conflict_of_start_replication),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
