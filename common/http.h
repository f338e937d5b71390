/*
 * http.h — asynchronous HTTP(S) requests: libcurl's multi interface driven by sd-event.
 *
 * One long-lived client per process (connection reuse, at most max_host_connections per host).
 * Nothing blocks: curl's sockets become sd-event io sources, curl's timeout one time source,
 * and completed transfers are delivered from a defer source, one per loop iteration, so a
 * completion callback never runs inside http_request_start() or inside curl.
 *
 * Security: TLS peer and host verification are always on; only https:// URLs are accepted,
 * except plain http:// to an explicit loopback host (127.0.0.0/8, localhost, [::1]) for the
 * local simulator and tests. Redirects are never followed. Response bodies are capped.
 */
#ifndef IVS_HTTP_H
#define IVS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

struct http_client;
struct http_request;

struct http_options {
	long max_host_connections;      /* 0 → 8 */
	size_t max_response_bytes;      /* 0 → 4 MiB */
	const char *user_agent;         /* NULL → "ivs-autoscaler/<version>" */
};

struct http_header {
	const char *name;
	const char *value;
};

/* Per-request settings. */
struct http_timeouts {
	long connect_ms;                /* 0 → 5000 */
	long total_ms;                  /* 0 → 10000 */
	/*
	 * Use a new connection. On a reused keep-alive connection that closes before any answer,
	 * libcurl sends the request again by itself: a request that must not take effect twice
	 * needs a connection of its own.
	 */
	bool fresh_connect;
};

struct http_response {
	int curl_code;                  /* CURLE_OK (0) when a response arrived */
	const char *error;              /* "" when ok, else a one-line reason */
	long status;                    /* HTTP status, 0 without a response */
	const char *body;               /* NUL-terminated, body_len bytes (may contain NULs) */
	size_t body_len;
	const char *request_id;         /* x-amzn-RequestId or "" */
	const char *error_type;         /* x-amzn-ErrorType or "" */
	bool too_large;                 /* body exceeded max_response_bytes */
	bool cancelled;                 /* client freed while in flight */
};

/* Called exactly once per started request, unless http_request_cancel() was called first. The
 * response and the request handle are valid only during the call. */
typedef void (*http_done_fn)(void *userdata, const struct http_response *resp);

/* 0, -ENOMEM, or -EIO (curl could not be initialised). */
int http_client_new(sd_event *event, const struct http_options *options, struct http_client **out);

/* Aborts every request in flight; their callbacks run (cancelled = true) before this returns. */
void http_client_free(struct http_client *client);

/*
 * Start a request. headers are copied; body (may be NULL) is copied. *out (may be NULL) gets a
 * handle for http_request_cancel(). 0, or -EINVAL (bad method/URL), -EPROTONOSUPPORT (not
 * https and not loopback http), -ESHUTDOWN (client being freed), -ENOMEM, -EIO.
 */
int http_request_start(struct http_client *client, const char *method, const char *url,
		       const struct http_header *headers, size_t nheaders,
		       const void *body, size_t body_len, const struct http_timeouts *timeouts,
		       http_done_fn done, void *userdata, struct http_request **out);

/* Abort a request in flight. Its callback is NOT called. */
void http_request_cancel(struct http_request *request);

/* 1 when url is http:// to 127.0.0.0/8, localhost or [::1] (no userinfo), else 0. */
int http_url_is_loopback_http(const char *url);

/* Number of requests in flight (for tests and shutdown). */
size_t http_client_in_flight(const struct http_client *client);

#endif
