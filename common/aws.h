/*
 * aws.h — one signed AWS JSON request with rate budget and retries, asynchronous.
 *
 * aws_request() queues a call; the call waits for its operation's token bucket (an sd-event
 * timer, never a sleep), is signed afresh for every attempt (new x-amz-date, credentials
 * fetched again from the callback), sent with http.c, classified with awserr.c and retried per
 * retry.c (backoff on an sd-event timer). The done callback runs exactly once per call, from
 * the event loop, never from inside aws_request().
 */
#ifndef IVS_AWS_H
#define IVS_AWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "aws_credentials.h"
#include "awserr.h"
#include "retry.h"

struct aws_client;

/* Fill *out (zeroed on entry) with a copy of the current credentials; must not block.
 * 0, or a negative errno (the call then fails with AWS_ERR_LOCAL). */
typedef int (*aws_credentials_fn)(void *ctx, struct aws_credentials *out);

struct aws_client_options {
	const char *region;                 /* required, e.g. "us-east-1" */
	const char *endpoint;               /* NULL/"" → https://ivsrealtime.<region>.amazonaws.com */
	const char *service;                /* signing name; NULL → "ivs" */
	double max_tps;                     /* per operation; 0 → 4 */
	double resync_share;                /* of max_tps, for resync calls; 0 → 0.5 */
	long timeout_ms;                    /* per attempt; 0 → 10000 */
	long connect_timeout_ms;            /* 0 → 5000 */
	aws_credentials_fn credentials;     /* required */
	void *credentials_ctx;
	/* test hooks; NULL → real randomness / clocks */
	double (*random)(void *ctx);        /* uniform in [0,1) */
	uint64_t (*monotonic_us)(void *ctx);
	int64_t (*unix_seconds)(void *ctx);
	void *hook_ctx;
	const struct retry_policy *retry;   /* NULL → retry_policy_standard */
	/*
	 * Asked before every attempt is put on the wire (after any rate-limit or retry wait);
	 * false fails the call with AWS_ERR_CANCELLED ("not permitted now"). NULL = always send.
	 * The daemon refuses mutating operations once it is no longer the leader.
	 */
	bool (*may_send)(void *ctx, const char *operation);
	void *may_send_ctx;
};

/*
 * err->kind == AWS_OK on success (http_status 2xx, body the response). Otherwise err says why;
 * body/len are the last response's body when there was one. Valid only during the call.
 */
typedef void (*aws_done_fn)(void *userdata, const struct aws_error *err, int http_status,
			    const char *body, size_t len);

/*
 * Which calls go first within an operation's budget (common/callqueue.h): urgent calls
 * (mutations, the reads of a pass a wake-up asked for) before resync calls (the background
 * walk's reads), round robin between fleets; resync calls are paced at resync_share × max_tps
 * and keep that share under contention. fleet is only a fairness key (0 = none).
 */
enum aws_priority { AWS_PRIORITY_URGENT = 0, AWS_PRIORITY_RESYNC = 1 };

struct aws_call_class {
	enum aws_priority priority;
	uint32_t fleet;
};

/* Per-operation counters for metrics. */
struct aws_op_stats {
	char operation[48];
	uint64_t outcomes[AWS_ERR_KIND_COUNT];  /* final outcome of each call, by kind */
	uint64_t throttles;                     /* attempts answered with throttling */
	uint64_t retries;                       /* attempts after the first */
	uint64_t rate_waits;                    /* times a call waited for the token bucket */
	uint64_t latency_us_sum;                /* first queueing to final outcome */
	uint64_t latency_count;
};

#define AWS_MAX_OPERATIONS 32

/* 0, -EINVAL (missing region/credentials, bad endpoint), -ENOMEM, -EIO. */
int aws_client_new(sd_event *event, const struct aws_client_options *options,
		   struct aws_client **out);

/* Cancels every call (callbacks run with AWS_ERR_CANCELLED), then frees. */
void aws_client_free(struct aws_client *client);

/* Every call in flight or waiting completes now with AWS_ERR_CANCELLED. */
void aws_client_cancel_all(struct aws_client *client);

/*
 * Queue one call. operation names the rate bucket and the stats ("ListStages"); path is the
 * request path as sent ("/ListStages"); json_body may be NULL ("{}" is sent for POST).
 * 0, or -EINVAL, -ENOMEM, -E2BIG (more than AWS_MAX_OPERATIONS distinct operations),
 * -ESHUTDOWN (inside cancel-all).
 */
int aws_request(struct aws_client *client, const char *operation, const char *method,
		const char *path, const char *json_body, aws_done_fn done, void *userdata);

/* The request must not take effect twice: retried only when it certainly did not (retry.h). */
#define AWS_REQUEST_AT_MOST_ONCE 0x1u

/*
 * aws_request() with an explicit class (NULL = the client's current class) and flags
 * (AWS_REQUEST_*).
 */
int aws_request_class(struct aws_client *client, const struct aws_call_class *cls,
		      const char *operation, const char *method, const char *path,
		      const char *json_body, unsigned flags, aws_done_fn done, void *userdata);

/*
 * The class aws_request() gives the calls queued from now on (initially urgent, fleet 0);
 * returns the previous one so the caller can put it back once its calls are queued.
 */
struct aws_call_class aws_client_set_class(struct aws_client *client, struct aws_call_class cls);
struct aws_call_class aws_client_class(const struct aws_client *client);

/* Every resync call of fleet (queued, or waiting to retry) becomes urgent. */
void aws_client_promote(struct aws_client *client, uint32_t fleet);

/* The stats table (n entries), valid until the next aws_request or aws_client_free. */
const struct aws_op_stats *aws_client_stats(const struct aws_client *client, size_t *n);

/* Calls queued, waiting or in flight. */
size_t aws_client_pending(const struct aws_client *client);

#endif
