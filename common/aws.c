/*
 * aws.c — see aws.h.
 */
#include "aws.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "callqueue.h"
#include "http.h"
#include "log.h"
#include "sigv4.h"

struct aws_call;

/*
 * A call waits in a queue as a small record (method, path, body): the easy handle, its
 * buffers and the signature exist only while a request is actually on the wire. This keeps
 * memory flat however many calls a pass queues.
 */
struct call_queue {
	struct aws_call *head, *tail;
};

struct aws_op {
	struct aws_op_stats stats;
	struct aws_client *client;
	struct callqueue waiting;           /* waiting for this operation's budget, by priority */
	sd_event_source *timer;             /* one per operation, not one per queued call */
};

/* Requests on the wire at once, all operations together. At IVS's 5 TPS per operation and a
 * few hundred ms latency, a handful are in flight; the cap only bites on bursts. */
#define AWS_MAX_IN_FLIGHT 16

struct aws_client {
	sd_event *event;
	struct http_client *http;
	char endpoint[256];                 /* without trailing '/' */
	char host[256];                     /* authority, as signed in the host header */
	char region[32];
	char service[32];
	double max_tps;
	double resync_share;
	struct aws_call_class cls;          /* what aws_request() gives its calls */
	struct http_timeouts timeouts;
	aws_credentials_fn credentials;
	void *credentials_ctx;
	double (*random)(void *ctx);
	uint64_t (*monotonic_us)(void *ctx);
	int64_t (*unix_seconds)(void *ctx);
	void *hook_ctx;
	const struct retry_policy *policy;
	bool (*may_send)(void *ctx, const char *operation);
	void *may_send_ctx;
	struct retry_quota quota;
	struct aws_op ops[AWS_MAX_OPERATIONS];
	struct aws_op_stats stats_view[AWS_MAX_OPERATIONS];
	size_t nops;
	struct aws_call *calls;
	size_t ncalls;
	struct call_queue ready;            /* FIFO, token taken, waiting for a slot */
	sd_event_source *ready_defer;       /* sends from ready when a slot frees */
	size_t sending;                     /* calls holding a slot (http != NULL) */
	bool cancelling;
};

enum call_where { CALL_NOWHERE, CALL_OP_QUEUE, CALL_READY };

struct aws_call {
	struct callqueue_node node;         /* first: queue nodes map back to their call */
	struct aws_client *client;
	struct aws_op *op;
	char method[8];
	char *path;
	char *body;
	size_t body_len;
	aws_done_fn done;
	void *userdata;
	struct retry_state retry;
	struct http_request *http;
	sd_event_source *timer;             /* retry backoff only, created on the first retry */
	uint64_t started_us;
	enum call_where where;
	bool waited;                        /* counted once in rate_waits */
	struct aws_call *prev, *next;       /* every call of the client */
	struct aws_call *qprev, *qnext;     /* the ready queue */
};

static double default_random(void *ctx)
{
	uint64_t v;

	(void)ctx;
	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
		v = (uint64_t)time(NULL) * 2654435761u;
	return (double)(v >> 11) / 9007199254740992.0;   /* 53 bits → [0,1) */
}

static uint64_t default_monotonic_us(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int64_t default_unix_seconds(void *ctx)
{
	(void)ctx;
	return (int64_t)time(NULL);
}

static uint64_t now_us(struct aws_client *c)
{
	return c->monotonic_us(c->hook_ctx);
}

static void queue_push(struct call_queue *q, struct aws_call *call)
{
	call->qnext = NULL;
	call->qprev = q->tail;
	if (q->tail)
		q->tail->qnext = call;
	else
		q->head = call;
	q->tail = call;
}

static void queue_remove(struct call_queue *q, struct aws_call *call)
{
	if (call->qprev)
		call->qprev->qnext = call->qnext;
	else
		q->head = call->qnext;
	if (call->qnext)
		call->qnext->qprev = call->qprev;
	else
		q->tail = call->qprev;
	call->qprev = call->qnext = NULL;
}

static void call_dequeue(struct aws_call *call)
{
	if (call->where == CALL_OP_QUEUE)
		callqueue_remove(&call->op->waiting, &call->node);
	else if (call->where == CALL_READY)
		queue_remove(&call->client->ready, call);
	call->where = CALL_NOWHERE;
}

/* Cancel the request on the wire, if any, and give its slot to the next ready call. */
static void call_drop_http(struct aws_call *call)
{
	struct aws_client *c = call->client;

	if (call->http == NULL)
		return;
	http_request_cancel(call->http);
	call->http = NULL;
	c->sending--;
	if (c->ready.head != NULL && c->ready_defer != NULL)
		(void)sd_event_source_set_enabled(c->ready_defer, SD_EVENT_ONESHOT);
}

static void call_unlink_free(struct aws_call *call)
{
	struct aws_client *c = call->client;

	if (call->prev)
		call->prev->next = call->next;
	else if (c->calls == call)
		c->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;
	c->ncalls--;
	call_dequeue(call);
	call_drop_http(call);
	sd_event_source_disable_unref(call->timer);
	free(call->path);
	free(call->body);
	free(call);
}

/* Deliver the final outcome once, then free the call. */
static void call_complete(struct aws_call *call, const struct aws_error *err, int status,
			  const char *body, size_t len)
{
	struct aws_op_stats *st = &call->op->stats;
	uint64_t now = now_us(call->client);

	st->outcomes[err->kind < AWS_ERR_KIND_COUNT ? err->kind : AWS_ERR_LOCAL]++;
	st->latency_us_sum += now > call->started_us ? now - call->started_us : 0;
	st->latency_count++;
	if (err->kind != AWS_OK && err->kind != AWS_ERR_CANCELLED)
		log_event(LOG_DEBUG, NULL,
			  LOG_FIELDS("IVS_OPERATION", st->operation,
				     "AWS_REQUEST_ID", err->request_id[0] ? err->request_id : NULL,
				     "AWS_ERROR_KIND", aws_error_kind_name(err->kind)),
			  "%s failed: %s %s (HTTP %d)", st->operation, err->code, err->message,
			  status);
	/* stop whatever is pending before the callback, which may queue new calls */
	call_dequeue(call);
	call_drop_http(call);
	if (call->timer)
		(void)sd_event_source_set_enabled(call->timer, SD_EVENT_OFF);
	call->done(call->userdata, err, status, body, len);
	call_unlink_free(call);
}

static void call_fail_local(struct aws_call *call, enum aws_error_kind kind, const char *what,
			    int r)
{
	struct aws_error err;

	aws_error_clear(&err);
	aws_error_set(&err, kind, "%s: %s", what, strerror(-r));
	call_complete(call, &err, 0, NULL, 0);
}

static int call_enqueue(struct aws_call *call);

static int on_call_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct aws_call *call = userdata;
	int r;

	(void)s;
	(void)usec;
	r = call_enqueue(call);
	if (r < 0)
		call_fail_local(call, AWS_ERR_LOCAL, "timer", r);
	return 0;
}

static int arm_timer(struct aws_call *call, uint64_t delay_us)
{
	struct aws_client *c = call->client;
	int r;

	if (call->timer != NULL) {
		r = sd_event_source_set_time_relative(call->timer, delay_us);
		if (r >= 0)
			r = sd_event_source_set_enabled(call->timer, SD_EVENT_ONESHOT);
		return r;
	}
	/* Accuracy 1 us, not sd-event's default 250 ms: rate-limit waits and retry delays are
	 * computed exactly, and a coalesced wake-up would add up to 250 ms to each call. */
	r = sd_event_add_time_relative(c->event, &call->timer, CLOCK_MONOTONIC, delay_us, 1,
				       on_call_timer, call);
	if (r >= 0)
		(void)sd_event_source_set_description(call->timer, "aws-call");
	return r;
}

static void on_http_done(void *userdata, const struct http_response *resp)
{
	struct aws_call *call = userdata;
	struct aws_client *c = call->client;
	struct aws_error err;
	enum retry_verdict v;
	uint64_t delay = 0;
	int r;

	/* http.c frees its request after this callback: only the slot is ours to release */
	call->http = NULL;
	c->sending--;
	if (c->ready.head != NULL)
		(void)sd_event_source_set_enabled(c->ready_defer, SD_EVENT_ONESHOT);
	if (resp->cancelled) {
		aws_error_clear(&err);
		aws_error_set(&err, AWS_ERR_CANCELLED, "cancelled");
	} else if (resp->too_large) {
		aws_error_clear(&err);
		aws_error_set(&err, AWS_ERR_PARSE, "response too large");
		snprintf(err.request_id, sizeof(err.request_id), "%s", resp->request_id);
	} else if (resp->curl_code != 0) {
		aws_error_from_curl(&err, resp->curl_code, resp->error);
	} else {
		aws_error_from_response(&err, (int)resp->status, resp->error_type,
					resp->request_id, resp->body, resp->body_len);
	}
	if (err.kind == AWS_ERR_THROTTLED)
		call->op->stats.throttles++;
	if (err.kind == AWS_OK) {
		retry_on_success(c->policy, &c->quota, &call->retry);
		call_complete(call, &err, (int)resp->status, resp->body, resp->body_len);
		return;
	}
	v = retry_on_failure(c->policy, &c->quota, &call->retry, &err, c->random(c->hook_ctx),
			     &delay);
	if (v != RETRY_AGAIN) {
		if (v == RETRY_QUOTA_EXHAUSTED)
			log_event(LOG_WARNING, NULL, LOG_FIELDS("IVS_OPERATION", call->op->stats.operation),
				  "%s: retry quota exhausted, not retrying", call->op->stats.operation);
		call_complete(call, &err, (int)resp->status, resp->body, resp->body_len);
		return;
	}
	call->op->stats.retries++;
	r = arm_timer(call, delay);
	if (r < 0)
		call_complete(call, &err, (int)resp->status, resp->body, resp->body_len);
}

/* Sign with fresh credentials and date, then send. */
static int call_send(struct aws_call *call)
{
	struct aws_client *c = call->client;
	struct aws_credentials creds = { 0 };
	struct sigv4_result sig = { 0 };
	struct sigv4_header sh[4];
	struct http_header hh[5];
	char amz_date[17], url[1024];
	size_t n = 0, i;
	int r;

	if (c->may_send != NULL && !c->may_send(c->may_send_ctx, call->op->stats.operation))
		return -ECANCELED;
	r = c->credentials(c->credentials_ctx, &creds);
	if (r < 0 || creds.access_key_id == NULL || creds.secret_access_key == NULL) {
		aws_credentials_clear(&creds);
		return r < 0 ? r : -ENOKEY;
	}
	sigv4_format_amz_date((long long)c->unix_seconds(c->hook_ctx), amz_date);
	sh[n++] = (struct sigv4_header){ "content-type", "application/json" };
	sh[n++] = (struct sigv4_header){ "host", c->host };
	sh[n++] = (struct sigv4_header){ "x-amz-date", amz_date };
	if (creds.session_token != NULL && creds.session_token[0] != '\0')
		sh[n++] = (struct sigv4_header){ "x-amz-security-token", creds.session_token };
	{
		struct sigv4_request req = {
			.method = call->method, .path = call->path, .query = NULL,
			.headers = sh, .nheaders = n, .body = call->body, .body_len = call->body_len,
		};
		struct sigv4_params params = {
			.credentials = &creds, .region = c->region, .service = c->service,
			.amz_date = amz_date, .normalize_path = 1, .double_encode = 1,
		};
		r = sigv4_sign(&req, &params, &sig);
	}
	if (r < 0)
		goto out;
	for (i = 0; i < n; i++)
		hh[i] = (struct http_header){ sh[i].name, sh[i].value };
	hh[n] = (struct http_header){ "authorization", sig.authorization };
	r = snprintf(url, sizeof(url), "%s%s", c->endpoint, call->path);
	if (r < 0 || (size_t)r >= sizeof(url)) {
		r = -EINVAL;
		goto out;
	}
	struct http_timeouts t = c->timeouts;
	t.fresh_connect = call->retry.at_most_once;
	r = http_request_start(c->http, call->method, url, hh, n + 1, call->body, call->body_len,
			       &t, on_http_done, call, &call->http);
	if (r == 0)
		c->sending++;
out:
	sigv4_result_free(&sig);
	aws_credentials_clear(&creds);
	return r;
}

static void call_send_failed(struct aws_call *call, int r)
{
	if (r == -ECANCELED)
		call_fail_local(call, AWS_ERR_CANCELLED, "not permitted now", r);
	else
		call_fail_local(call, AWS_ERR_LOCAL,
				r == -ENOKEY ? "no credentials" : "cannot send request", r);
}

/* The call has its token: send now if a slot is free, else wait in the ready queue. */
static void call_dispatch(struct aws_call *call)
{
	struct aws_client *c = call->client;
	int r;

	if (c->sending >= AWS_MAX_IN_FLIGHT || c->ready.head != NULL) {
		call->where = CALL_READY;
		queue_push(&c->ready, call);
		return;
	}
	r = call_send(call);
	if (r < 0)
		call_send_failed(call, r);
}

static int arm_op_timer(struct aws_op *op, uint64_t delay_us)
{
	int r;

	r = sd_event_source_set_time_relative(op->timer, delay_us);
	if (r >= 0)
		r = sd_event_source_set_enabled(op->timer, SD_EVENT_ONESHOT);
	return r;
}

/* Count a call once in rate_waits when it could not have its token at once. */
static void note_wait(struct aws_call *call)
{
	if (!call->waited) {
		call->waited = true;
		call->op->stats.rate_waits++;
	}
}

/* Hand out the operation's tokens to its waiting calls by priority, then sleep until the
 * next one may go. */
static int on_op_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct aws_op *op = userdata;
	struct callqueue_node *node;
	struct aws_call *call;
	uint64_t wait;
	int r;

	(void)s;
	(void)usec;
	for (;;) {
		node = callqueue_pop(&op->waiting, now_us(op->client), &wait);
		if (node == NULL)
			break;
		call = (struct aws_call *)node;
		if (node->waited)
			note_wait(call);
		call->where = CALL_NOWHERE;
		call_dispatch(call);
	}
	if (wait == UINT64_MAX)
		return 0;
	r = arm_op_timer(op, wait);
	if (r < 0) {
		/* no timer: nothing would ever serve the queue, so fail what waits */
		while ((node = callqueue_any(&op->waiting)) != NULL)
			call_fail_local((struct aws_call *)node, AWS_ERR_LOCAL, "timer", r);
	}
	return 0;
}

/* Wait for the operation's rate budget (first step of every attempt). From the loop only. */
static int call_enqueue(struct aws_call *call)
{
	struct aws_op *op = call->op;
	int r;

	if (op->timer == NULL) {
		/* Accuracy 1 us, not sd-event's default 250 ms: rate-limit waits are computed
		 * exactly, and a coalesced wake-up would add up to 250 ms to each call. */
		r = sd_event_add_time_relative(call->client->event, &op->timer, CLOCK_MONOTONIC, 0,
					       1, on_op_timer, op);
		if (r < 0)
			return r;
		(void)sd_event_source_set_description(op->timer, "aws-op");
	}
	if (callqueue_len(&op->waiting) > 0)
		note_wait(call);
	r = callqueue_push(&op->waiting, &call->node);
	if (r < 0)
		return r;
	call->where = CALL_OP_QUEUE;
	/* Serve the queue on the next iteration (so done never runs inside aws_request()): the
	 * new call may go ahead of what the timer was waiting for. */
	r = arm_op_timer(op, 0);
	if (r < 0) {
		call_dequeue(call);
		return r;
	}
	return 0;
}

static int on_ready_defer(sd_event_source *s, void *userdata)
{
	struct aws_client *c = userdata;
	struct aws_call *call;
	int r;

	(void)s;
	while (c->sending < AWS_MAX_IN_FLIGHT && (call = c->ready.head) != NULL) {
		call_dequeue(call);
		r = call_send(call);
		if (r < 0)
			call_send_failed(call, r);
	}
	return 0;
}

static struct aws_op *find_op(struct aws_client *c, const char *name)
{
	struct aws_op *op;
	size_t i;

	for (i = 0; i < c->nops; i++)
		if (strcmp(c->ops[i].stats.operation, name) == 0)
			return &c->ops[i];
	if (c->nops == AWS_MAX_OPERATIONS || strlen(name) >= sizeof(op->stats.operation))
		return NULL;
	op = &c->ops[c->nops];
	memset(op, 0, sizeof(*op));
	snprintf(op->stats.operation, sizeof(op->stats.operation), "%s", name);
	op->client = c;
	if (callqueue_init(&op->waiting, c->max_tps, c->max_tps < 1 ? 1 : c->max_tps,
			   c->resync_share, now_us(c)) < 0)
		return NULL;
	c->nops++;
	return op;
}

struct aws_call_class aws_client_set_class(struct aws_client *c, struct aws_call_class cls)
{
	struct aws_call_class prev = c->cls;

	c->cls = cls;
	return prev;
}

struct aws_call_class aws_client_class(const struct aws_client *c)
{
	return c->cls;
}

void aws_client_promote(struct aws_client *c, uint32_t fleet)
{
	struct aws_call *call;
	size_t i;

	for (i = 0; i < c->nops; i++)
		if (callqueue_promote(&c->ops[i].waiting, fleet) > 0)
			(void)arm_op_timer(&c->ops[i], 0);
	/* calls waiting to retry, or (no memory for a lane) still in the resync queue: urgent
	 * from their next attempt on */
	for (call = c->calls; call != NULL; call = call->next)
		if (call->node.fleet == fleet && call->where != CALL_OP_QUEUE)
			call->node.cls = CALLQUEUE_URGENT;
}

int aws_request(struct aws_client *c, const char *operation, const char *method,
		const char *path, const char *json_body, aws_done_fn done, void *userdata)
{
	return aws_request_class(c, NULL, operation, method, path, json_body, 0, done, userdata);
}

int aws_request_class(struct aws_client *c, const struct aws_call_class *cls,
		      const char *operation, const char *method, const char *path,
		      const char *json_body, unsigned flags, aws_done_fn done, void *userdata)
{
	struct aws_call *call;
	struct aws_op *op;
	int r;

	if (c->cancelling)
		return -ESHUTDOWN;
	if (operation == NULL || method == NULL || path == NULL || path[0] != '/' ||
	    done == NULL || strlen(method) >= sizeof(call->method))
		return -EINVAL;
	op = find_op(c, operation);
	if (op == NULL)
		return -E2BIG;
	call = calloc(1, sizeof(*call));
	if (call == NULL)
		return -ENOMEM;
	call->client = c;
	call->op = op;
	if (cls == NULL)
		cls = &c->cls;
	call->node.cls = cls->priority == AWS_PRIORITY_RESYNC ? CALLQUEUE_RESYNC : CALLQUEUE_URGENT;
	call->node.fleet = cls->fleet;
	snprintf(call->method, sizeof(call->method), "%s", method);
	call->path = strdup(path);
	call->body = strdup(json_body ? json_body : (strcmp(method, "POST") == 0 ? "{}" : ""));
	if (call->path == NULL || call->body == NULL) {
		free(call->path);
		free(call->body);
		free(call);
		return -ENOMEM;
	}
	call->body_len = strlen(call->body);
	call->done = done;
	call->userdata = userdata;
	call->started_us = now_us(c);
	retry_state_init(&call->retry);
	call->retry.at_most_once = (flags & AWS_REQUEST_AT_MOST_ONCE) != 0;
	call->next = c->calls;
	if (c->calls)
		c->calls->prev = call;
	c->calls = call;
	c->ncalls++;
	r = call_enqueue(call);
	if (r < 0) {
		call_unlink_free(call);
		return r;
	}
	return 0;
}

void aws_client_cancel_all(struct aws_client *c)
{
	struct aws_error err;

	aws_error_clear(&err);
	aws_error_set(&err, AWS_ERR_CANCELLED, "cancelled");
	c->cancelling = true;
	while (c->calls != NULL)
		call_complete(c->calls, &err, 0, NULL, 0);
	c->cancelling = false;
}

const struct aws_op_stats *aws_client_stats(const struct aws_client *c, size_t *n)
{
	struct aws_client *mc = (struct aws_client *)c;
	size_t i;

	for (i = 0; i < c->nops; i++)
		mc->stats_view[i] = c->ops[i].stats;
	*n = c->nops;
	return mc->stats_view;
}

size_t aws_client_pending(const struct aws_client *c)
{
	return c->ncalls;
}

static int set_endpoint(struct aws_client *c, const char *endpoint, const char *region)
{
	const char *auth;
	size_t len;
	int n;

	if (endpoint == NULL || endpoint[0] == '\0')
		n = snprintf(c->endpoint, sizeof(c->endpoint), "https://ivsrealtime.%s.amazonaws.com",
			     region);
	else
		n = snprintf(c->endpoint, sizeof(c->endpoint), "%s", endpoint);
	if (n < 0 || (size_t)n >= sizeof(c->endpoint))
		return -EINVAL;
	len = (size_t)n;
	while (len > 0 && c->endpoint[len - 1] == '/')
		c->endpoint[--len] = '\0';
	auth = strstr(c->endpoint, "://");
	if (auth == NULL || (strncmp(c->endpoint, "https://", 8) != 0 &&
			     !http_url_is_loopback_http(c->endpoint)))
		return -EINVAL;
	auth += 3;
	len = strcspn(auth, "/?#");
	if (len == 0 || len >= sizeof(c->host) || strchr(auth, '/') != NULL ||
	    memchr(auth, '@', len) != NULL)
		return -EINVAL;         /* a base path or userinfo in the endpoint is not supported */
	memcpy(c->host, auth, len);
	c->host[len] = '\0';
	return 0;
}

int aws_client_new(sd_event *event, const struct aws_client_options *o, struct aws_client **out)
{
	/* One connection per slot, so curl never queues a transfer for a connection itself:
	 * libcurl 7.88 failed such queued transfers at once ("Failed to resolve host ... with
	 * timeout after 0 ms"), and their retries went out behind later calls. The ready queue
	 * does the waiting instead. */
	const struct http_options http_opts = { .max_host_connections = AWS_MAX_IN_FLIGHT };
	struct aws_client *c;
	int r;

	*out = NULL;
	if (o == NULL || o->region == NULL || o->region[0] == '\0' || o->credentials == NULL ||
	    strlen(o->region) >= sizeof(c->region) || o->max_tps < 0 || o->resync_share < 0 ||
	    o->resync_share > 1)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->event = sd_event_ref(event);
	snprintf(c->region, sizeof(c->region), "%s", o->region);
	snprintf(c->service, sizeof(c->service), "%s", o->service ? o->service : "ivs");
	c->max_tps = o->max_tps > 0 ? o->max_tps : 4;
	c->resync_share = o->resync_share > 0 ? o->resync_share : 0.5;
	c->cls = (struct aws_call_class){ AWS_PRIORITY_URGENT, 0 };
	c->timeouts.total_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
	c->timeouts.connect_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 5000;
	c->credentials = o->credentials;
	c->credentials_ctx = o->credentials_ctx;
	c->random = o->random ? o->random : default_random;
	c->monotonic_us = o->monotonic_us ? o->monotonic_us : default_monotonic_us;
	c->unix_seconds = o->unix_seconds ? o->unix_seconds : default_unix_seconds;
	c->hook_ctx = o->hook_ctx;
	c->policy = o->retry ? o->retry : &retry_policy_standard;
	c->may_send = o->may_send;
	c->may_send_ctx = o->may_send_ctx;
	retry_quota_init(&c->quota, c->policy);
	r = set_endpoint(c, o->endpoint, o->region);
	if (r == 0)
		r = sd_event_add_defer(event, &c->ready_defer, on_ready_defer, c);
	if (r == 0)
		r = sd_event_source_set_enabled(c->ready_defer, SD_EVENT_OFF);
	if (r == 0) {
		(void)sd_event_source_set_description(c->ready_defer, "aws-ready");
		r = http_client_new(event, &http_opts, &c->http);
	}
	if (r < 0) {
		sd_event_source_disable_unref(c->ready_defer);
		sd_event_unref(c->event);
		free(c);
		return r;
	}
	*out = c;
	return 0;
}

void aws_client_free(struct aws_client *c)
{
	size_t i;

	if (c == NULL)
		return;
	aws_client_cancel_all(c);
	c->cancelling = true;
	http_client_free(c->http);
	for (i = 0; i < c->nops; i++) {
		sd_event_source_disable_unref(c->ops[i].timer);
		callqueue_clear(&c->ops[i].waiting);
	}
	sd_event_source_disable_unref(c->ready_defer);
	sd_event_unref(c->event);
	free(c);
}
