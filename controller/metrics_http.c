/*
 * metrics_http.c — see metrics_http.h.
 */
#include "metrics_http.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "listen_addr.h"
#include "log.h"
#include "strbuf.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics_http {
	sd_event *event;
	struct MHD_Daemon *mhd;
	sd_event_source **watches;   /* one I/O source per descriptor MHD wants watched */
	size_t n_watches;
	size_t cap_watches;
	sd_event_source *timer;
	int listen_fd;
	unsigned port;
	size_t body_cap;
	unsigned max_connections;
	unsigned connections;        /* handed to MHD and not yet closed */
	sd_event_source *listen_source;
	metrics_http_render_fn render;
	void *ud;
};

static void arm_timer(struct metrics_http *h)
{
	MHD_UNSIGNED_LONG_LONG ms = 0;
	uint64_t now = 0;

	if (MHD_get_timeout(h->mhd, &ms) != MHD_YES) {
		sd_event_source_set_enabled(h->timer, SD_EVENT_OFF);
		return;
	}
	if (sd_event_now(h->event, CLOCK_MONOTONIC, &now) < 0)
		return;
	sd_event_source_set_time(h->timer, now + (uint64_t)ms * 1000u);
	sd_event_source_set_enabled(h->timer, SD_EVENT_ONESHOT);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *ud);

static void drop_watches(struct metrics_http *h)
{
	for (size_t i = 0; i < h->n_watches; i++)
		sd_event_source_disable_unref(h->watches[i]);
	h->n_watches = 0;
}

/*
 * Watch exactly the descriptors MHD asks for, as it asks (MHD_get_fdset2). The set is rebuilt
 * from scratch after every MHD_run(): MHD may have closed a descriptor whose number a new
 * connection now reuses, and dropping every old source first means no stale source can ever
 * unregister a new one. A handful of descriptors (max_connections at most), so this is cheap.
 */
static void watch_mhd_fds(struct metrics_http *h)
{
	fd_set rs, ws, es;
	MHD_socket max = -1;

	drop_watches(h);
	FD_ZERO(&rs);
	FD_ZERO(&ws);
	FD_ZERO(&es);
	if (MHD_get_fdset2(h->mhd, &rs, &ws, &es, &max, FD_SETSIZE) != MHD_YES) {
		log_warnx("metrics endpoint: cannot get the HTTP server's descriptors");
		return;
	}
	for (int fd = 0; fd <= max && fd < FD_SETSIZE; fd++) {
		uint32_t events = (FD_ISSET(fd, &rs) ? EPOLLIN : 0) |
				  (FD_ISSET(fd, &ws) ? EPOLLOUT : 0);

		if (events == 0 || h->n_watches == h->cap_watches)
			continue;
		if (sd_event_add_io(h->event, &h->watches[h->n_watches], fd, events, on_io, h) < 0)
			continue;
		sd_event_source_set_description(h->watches[h->n_watches], "metrics-http");
		h->n_watches++;
	}
}

/*
 * MHD_run() selects with a zero timeout on its own descriptors and processes what is ready:
 * level-triggered, so nothing can be missed whichever descriptor woke us.
 */
static void run_mhd(struct metrics_http *h)
{
	if (MHD_run(h->mhd) != MHD_YES)
		log_warnx("metrics endpoint: the HTTP server reported an error");
	watch_mhd_fds(h);
	arm_timer(h);
}

/*
 * Accept here rather than in MHD, so that the connection limit is ours and plain: accept while
 * a slot is free, otherwise leave clients in the listen backlog with the listening source off
 * until a connection closes (on_connection).
 */
static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct metrics_http *h = ud;
	(void)s; (void)revents;

	while (h->connections < h->max_connections) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		int c = accept4(fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (c < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_debug("metrics endpoint: accept: %s", strerror(errno));
			break;
		}
		/* MHD owns (and closes) the socket from here, even when it refuses it. */
		h->connections++;
		if (MHD_add_connection(h->mhd, c, (struct sockaddr *)&peer, len) != MHD_YES) {
			h->connections--;
			log_debug("metrics endpoint: connection refused: %s", strerror(errno));
		}
	}
	sd_event_source_set_enabled(h->listen_source, h->connections < h->max_connections
						      ? SD_EVENT_ON : SD_EVENT_OFF);
	run_mhd(h);
	return 0;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct metrics_http *h = cls;
	(void)conn; (void)socket_context;

	if (toe != MHD_CONNECTION_NOTIFY_CLOSED)
		return;
	if (h->connections > 0)
		h->connections--;
	if (h->listen_source != NULL)
		sd_event_source_set_enabled(h->listen_source, SD_EVENT_ON);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	(void)s; (void)fd; (void)revents;
	run_mhd(ud);
	return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	(void)s; (void)usec;
	run_mhd(ud);
	return 0;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *text)
{
	struct MHD_Response *resp;
	enum MHD_Result r;

	resp = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, MHD_HTTP_METHOD_GET);
	r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result serve_metrics(struct metrics_http *h, struct MHD_Connection *conn)
{
	struct MHD_Response *resp;
	struct strbuf sb;
	enum MHD_Result r;
	size_t len;
	char *body;

	strbuf_init(&sb, h->body_cap);
	if (h->render(h->ud, &sb) < 0 || strbuf_overflowed(&sb)) {
		strbuf_free(&sb);
		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot render the metrics\n");
	}
	/* MHD takes the rendered buffer over and frees it once it is sent. */
	len = sb.len;
	body = sb.data != NULL ? sb.data : strdup("");
	sb.data = NULL;
	if (body == NULL)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
	r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_cls)
{
	(void)version; (void)upload_data; (void)req_cls;

	/* Answered on the first call, with the headers: a body (if any) is never read. */
	*upload_data_size = 0;
	if (strcmp(url, "/metrics") != 0)
		return reply(conn, MHD_HTTP_NOT_FOUND, "not found: only /metrics is served\n");
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed: use GET\n");
	return serve_metrics(cls, conn);
}

/* MHD's own messages are about misbehaving clients or its internals: debug level. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;
	(void)cls;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_debug("metrics endpoint: %s", msg);
}

static int open_listener(const char *where, unsigned *port, char *err, size_t errlen)
{
	struct sockaddr_storage addr;
	socklen_t len;
	const char *why = NULL;
	int fd, one = 1, e;

	if (listen_addr_parse(where, &addr, &len, &why) < 0) {
		snprintf(err, errlen, "metrics.listen \"%s\": %s", where, why);
		return -EINVAL;
	}
	fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "cannot listen on %s: %s", where, strerror(e));
		return -e;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&addr, len) < 0 || listen(fd, SOMAXCONN) < 0 ||
	    getsockname(fd, (struct sockaddr *)&addr, &len) < 0) {
		e = errno;
		snprintf(err, errlen, "cannot listen on %s: %s", where, strerror(e));
		close(fd);
		return -e;
	}
	*port = listen_addr_port(&addr);
	return fd;
}

int metrics_http_new(sd_event *event, const struct metrics_http_options *opts,
		     metrics_http_render_fn render, void *ud, struct metrics_http **out,
		     char *err, size_t errlen)
{
	struct metrics_http *h;
	int r;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	h->event = sd_event_ref(event);
	h->listen_fd = -1;
	h->render = render;
	h->ud = ud;
	h->body_cap = opts->body_cap ? opts->body_cap : 4u << 20;
	h->max_connections = opts->max_connections ? opts->max_connections : 16u;
	h->listen_fd = open_listener(opts->listen, &h->port, err, errlen);
	if (h->listen_fd < 0) {
		r = h->listen_fd;
		goto fail;
	}
	h->mhd = MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG,
		0, NULL, NULL, on_request, h,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
		MHD_OPTION_CONNECTION_LIMIT, h->max_connections,
		MHD_OPTION_CONNECTION_TIMEOUT, opts->timeout_s ? opts->timeout_s : 10u,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(size_t)(opts->memory_limit ? opts->memory_limit : 16u * 1024u),
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
		MHD_OPTION_END);
	if (h->mhd == NULL) {
		snprintf(err, errlen, "cannot start the HTTP server on %s", opts->listen);
		r = -EIO;
		goto fail;
	}
	h->cap_watches = h->max_connections + 4;
	h->watches = calloc(h->cap_watches, sizeof(*h->watches));
	if (h->watches == NULL) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto fail;
	}
	r = sd_event_add_io(event, &h->listen_source, h->listen_fd, EPOLLIN, on_accept, h);
	if (r >= 0)
		r = sd_event_add_time(event, &h->timer, CLOCK_MONOTONIC, 0, 1000, on_timer, h);
	if (r < 0) {
		snprintf(err, errlen, "cannot add the metrics endpoint to the event loop: %s",
			 strerror(-r));
		goto fail;
	}
	sd_event_source_set_description(h->listen_source, "metrics-http-listen");
	sd_event_source_set_description(h->timer, "metrics-http-timeout");
	watch_mhd_fds(h);
	arm_timer(h);
	*out = h;
	return 0;
fail:
	metrics_http_free(h);
	return r;
}

unsigned metrics_http_port(const struct metrics_http *h)
{
	return h->port;
}

void metrics_http_free(struct metrics_http *h)
{
	if (h == NULL)
		return;
	drop_watches(h);
	free(h->watches);
	sd_event_source_disable_unref(h->timer);
	sd_event_source_disable_unref(h->listen_source);
	h->listen_source = NULL;     /* on_connection runs for every connection MHD closes now */
	if (h->mhd != NULL)
		MHD_stop_daemon(h->mhd);
	if (h->listen_fd >= 0)
		close(h->listen_fd);
	sd_event_unref(h->event);
	free(h);
}
