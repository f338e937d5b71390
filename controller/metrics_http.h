/*
 * metrics_http.h — the optional Prometheus scrape endpoint: GET /metrics over HTTP/1.1.
 *
 * libmicrohttpd does the HTTP; this file only drives it from the daemon's sd-event loop. MHD
 * runs without threads of its own (external select mode, no internal polling thread): after
 * every MHD_run() the descriptors MHD_get_fdset2() names become sd-event I/O sources and
 * MHD_get_timeout() arms one timer; any of them calls MHD_run(), which never blocks. (MHD's
 * epoll mode was tried and dropped: under an outside loop it could miss a client's close and
 * hold the connection until its timeout.) We accept connections ourselves and hand them to MHD
 * (MHD_add_connection), so the connection limit is plain. A scrape is served by the same loop
 * as everything else, reads the metrics registry without locks, and never sees a pass
 * half-recorded.
 *
 * Bounds: at most max_connections at once (more wait in the listen backlog), request headers
 * within memory_limit bytes per connection (MHD answers 431/414 beyond), idle connections closed
 * after timeout_s, a request body is never read. Only GET /metrics is served (a query string is
 * ignored): another method on /metrics gets 405 with "Allow: GET", any other path 404.
 */
#ifndef IVS_METRICS_HTTP_H
#define IVS_METRICS_HTTP_H

#include <stddef.h>

#include <systemd/sd-event.h>

struct strbuf;

/* Fill out with the exposition text; 0, or negative errno (the scrape then gets 500). */
typedef int (*metrics_http_render_fn)(void *ud, struct strbuf *out);

struct metrics_http_options {
	const char *listen;          /* "HOST:PORT", see listen_addr.h; port 0 = kernel's choice */
	unsigned max_connections;    /* 0 → 16 */
	unsigned timeout_s;          /* 0 → 10 */
	size_t memory_limit;         /* per connection, 0 → 16 KiB */
	size_t body_cap;             /* largest response, 0 → 4 MiB */
};

struct metrics_http;

/*
 * Bind, listen and start serving. Returns 0 with *out set, or negative errno with a one-line
 * reason in err ("cannot listen on 127.0.0.1:9464: Address already in use").
 */
int metrics_http_new(sd_event *event, const struct metrics_http_options *opts,
		     metrics_http_render_fn render, void *ud, struct metrics_http **out,
		     char *err, size_t errlen);

/* The bound port (useful with port 0). */
unsigned metrics_http_port(const struct metrics_http *h);

/* Stop MHD, close every connection and the listening socket. NULL is fine. */
void metrics_http_free(struct metrics_http *h);

#endif
