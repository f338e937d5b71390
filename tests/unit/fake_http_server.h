/*
 * fake_http_server.h — a tiny HTTP/1.1 server thread on 127.0.0.1 (port chosen by the kernel)
 * for the loopback tests of http.c, aws.c and ivs.c. It serves canned responses in order and
 * records every request. Header-only (static functions) so test binaries need no extra object.
 *
 * Actions per response: RESPOND (status, extra header lines, body), HANG (read the request,
 * never answer), CLOSE (read the request, close the connection without a byte), HOLD (read the
 * request, answer only when the test calls fake_server_release() for it).
 *
 * A RESPOND with chunk > 0 sends the head at once, then the body chunk bytes at a time, each
 * chunk only after the test calls fake_server_grant(): the test, not a timer, makes the pauses.
 *
 * The server counts requests read but not yet answered (HOLD, HANG) and remembers the most at
 * once, so a test can assert how many requests a client had on the wire.
 */
#ifndef FAKE_HTTP_SERVER_H
#define FAKE_HTTP_SERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

enum fake_action { FAKE_RESPOND = 0, FAKE_HANG, FAKE_CLOSE, FAKE_HOLD };

struct fake_response {
	enum fake_action action;
	int status;
	const char *headers;            /* extra lines, each ending in "\r\n"; may be NULL */
	const char *body;               /* may be NULL */
	size_t body_len;                /* 0 → strlen(body) */
	size_t chunk;                   /* > 0: body in pieces of this size, one per grant */
};

#define FAKE_MAX_REQUESTS 64
#define FAKE_MAX_CONNS    48

struct fake_request {
	char method[16];
	char path[512];
	char *head;                     /* the whole request head, NUL-terminated */
	char *body;
	size_t body_len;
	int release;                    /* HOLD: the test asked for the answer */
};

struct fake_conn {
	int fd;
	char *buf;
	size_t len, cap;
	int hung;
	int held;                       /* HOLD: waiting for requests[held_req].release */
	size_t held_req;
	struct fake_response held_resp;
	const char *stream;             /* chunked body still to send */
	size_t stream_len, chunk;
};

struct fake_server {
	int listen_fd;
	int port;
	int stop_pipe[2];
	int wake_pipe[2];               /* the test released a request or granted a chunk */
	pthread_t thread;
	pthread_mutex_t lock;
	const struct fake_response *responses;
	size_t nresponses, next;
	struct fake_request requests[FAKE_MAX_REQUESTS];
	size_t nrequests;
	size_t outstanding, max_outstanding;  /* read, not answered (HOLD, HANG) */
	size_t grants;                        /* 1: the test allows one more chunk */
	struct fake_conn conns[FAKE_MAX_CONNS];
	char url[64];
};

static void fake_send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;             /* the client went away (e.g. body over its cap) */
		p += w;
		n -= (size_t)w;
	}
}

static void fake_conn_close(struct fake_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static void fake_send_head(struct fake_conn *c, const struct fake_response *resp, size_t len)
{
	char line[512];

	snprintf(line, sizeof(line), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n"
		 "Content-Type: application/json\r\n%s\r\n", resp->status, len,
		 resp->headers ? resp->headers : "");
	fake_send_all(c->fd, line, strlen(line));
}

/* Send a response; a chunked one leaves its body to fake_stream(). */
static void fake_respond(struct fake_conn *c, struct fake_response resp)
{
	if (resp.body == NULL)
		resp.body = "";
	if (resp.body_len == 0)
		resp.body_len = strlen(resp.body);
	fake_send_head(c, &resp, resp.body_len);
	if (resp.chunk > 0) {
		c->stream = resp.body;
		c->stream_len = resp.body_len;
		c->chunk = resp.chunk;
		return;
	}
	fake_send_all(c->fd, resp.body, resp.body_len);
}

/* Send one granted chunk per grant, as long as there are grants. Lock held. */
static void fake_stream(struct fake_server *s, struct fake_conn *c)
{
	while (c->stream != NULL && s->grants > 0) {
		size_t n = c->stream_len < c->chunk ? c->stream_len : c->chunk;

		s->grants--;
		fake_send_all(c->fd, c->stream, n);
		c->stream += n;
		c->stream_len -= n;
		if (c->stream_len == 0)
			c->stream = NULL;
	}
}

/* Handle complete requests in the buffer. Returns -1 when the connection must be closed. */
static int fake_handle(struct fake_server *s, struct fake_conn *c)
{
	for (;;) {
		char *end, *cl;
		size_t head_len, body_len = 0, total;
		struct fake_response resp = { .action = FAKE_RESPOND, .status = 500,
					      .body = "{\"message\":\"no canned response\"}" };
		struct fake_request *r = NULL;

		if (c->held || c->stream != NULL)
			return 0;       /* HTTP/1.1: the next request waits for this answer */
		if (c->len == 0)
			return 0;
		c->buf[c->len] = '\0';
		end = strstr(c->buf, "\r\n\r\n");
		if (end == NULL)
			return 0;
		head_len = (size_t)(end - c->buf) + 4;
		cl = strcasestr(c->buf, "\r\ncontent-length:");
		if (cl != NULL && cl < end)
			body_len = strtoul(cl + 17, NULL, 10);
		total = head_len + body_len;
		if (c->len < total)
			return 0;
		pthread_mutex_lock(&s->lock);
		if (s->nrequests < FAKE_MAX_REQUESTS) {
			r = &s->requests[s->nrequests++];
			sscanf(c->buf, "%15s %511s", r->method, r->path);
			r->head = strndup(c->buf, head_len);
			r->body = malloc(body_len + 1);
			memcpy(r->body, c->buf + head_len, body_len);
			r->body[body_len] = '\0';
			r->body_len = body_len;
		}
		if (s->next < s->nresponses)
			resp = s->responses[s->next++];
		if (resp.action == FAKE_HANG || resp.action == FAKE_HOLD) {
			if (++s->outstanding > s->max_outstanding)
				s->max_outstanding = s->outstanding;
		}
		if (resp.action == FAKE_HOLD && r != NULL) {
			c->held = 1;
			c->held_req = (size_t)(r - s->requests);
			c->held_resp = resp;
		}
		pthread_mutex_unlock(&s->lock);
		memmove(c->buf, c->buf + total, c->len - total);
		c->len -= total;
		if (resp.action == FAKE_CLOSE)
			return -1;
		if (resp.action == FAKE_HANG) {
			c->hung = 1;
			return 0;
		}
		if (resp.action == FAKE_HOLD) {
			if (!c->held)
				c->hung = 1;    /* over FAKE_MAX_REQUESTS: cannot be released */
			return 0;
		}
		fake_respond(c, resp);
	}
}

/* The test released requests or granted chunks: answer what may be answered now. */
static void fake_wake(struct fake_server *s)
{
	char drain[64];
	int i;

	(void)!read(s->wake_pipe[0], drain, sizeof(drain));
	for (i = 0; i < FAKE_MAX_CONNS; i++) {
		struct fake_conn *c = &s->conns[i];
		int answer = 0;

		if (c->fd < 0)
			continue;
		pthread_mutex_lock(&s->lock);
		if (c->held && s->requests[c->held_req].release) {
			c->held = 0;
			s->outstanding--;
			answer = 1;
		}
		pthread_mutex_unlock(&s->lock);
		if (answer)
			fake_respond(c, c->held_resp);
		pthread_mutex_lock(&s->lock);
		fake_stream(s, c);
		pthread_mutex_unlock(&s->lock);
		if (answer && fake_handle(s, c) < 0)
			fake_conn_close(c);
	}
}

static void *fake_thread(void *arg)
{
	struct fake_server *s = arg;

	for (;;) {
		struct pollfd pfd[FAKE_MAX_CONNS + 3];
		int idx[FAKE_MAX_CONNS + 3];
		int n = 0, i;

		pfd[n].fd = s->stop_pipe[0];
		pfd[n++].events = POLLIN;
		pfd[n].fd = s->wake_pipe[0];
		pfd[n++].events = POLLIN;
		pfd[n].fd = s->listen_fd;
		pfd[n++].events = POLLIN;
		for (i = 0; i < FAKE_MAX_CONNS; i++) {
			if (s->conns[i].fd < 0)
				continue;
			idx[n] = i;
			pfd[n].fd = s->conns[i].fd;
			pfd[n++].events = POLLIN;
		}
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents)
			break;
		if (pfd[1].revents & POLLIN)
			fake_wake(s);
		if (pfd[2].revents & POLLIN) {
			int fd = accept(s->listen_fd, NULL, NULL);

			for (i = 0; fd >= 0 && i < FAKE_MAX_CONNS; i++) {
				if (s->conns[i].fd < 0) {
					s->conns[i].fd = fd;
					fd = -1;
				}
			}
			if (fd >= 0)
				close(fd);
		}
		for (i = 3; i < n; i++) {
			struct fake_conn *c = &s->conns[idx[i]];
			ssize_t got;

			if (!pfd[i].revents)
				continue;
			if (c->cap - c->len < 65536) {
				c->cap = c->cap ? c->cap * 2 : 131072;
				c->buf = realloc(c->buf, c->cap);
			}
			got = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
			if (got <= 0) {
				pthread_mutex_lock(&s->lock);
				if (c->held || c->hung)
					s->outstanding--;
				pthread_mutex_unlock(&s->lock);
				fake_conn_close(c);
				continue;
			}
			if (c->hung)
				continue;
			c->len += (size_t)got;
			if (fake_handle(s, c) < 0)
				fake_conn_close(c);
		}
	}
	return NULL;
}

static int fake_server_start(struct fake_server *s, const struct fake_response *responses,
			     size_t n)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int i;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < FAKE_MAX_CONNS; i++)
		s->conns[i].fd = -1;
	s->responses = responses;
	s->nresponses = n;
	pthread_mutex_init(&s->lock, NULL);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(s->listen_fd, FAKE_MAX_CONNS) < 0 ||
	    getsockname(s->listen_fd, (struct sockaddr *)&a, &alen) < 0 ||
	    pipe2(s->stop_pipe, O_CLOEXEC) < 0 ||
	    pipe2(s->wake_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	s->port = ntohs(a.sin_port);
	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
	if (pthread_create(&s->thread, NULL, fake_thread, s) != 0)
		return -EAGAIN;
	return 0;
}

static void fake_server_stop(struct fake_server *s)
{
	size_t i;
	int j;

	(void)!write(s->stop_pipe[1], "x", 1);
	pthread_join(s->thread, NULL);
	for (j = 0; j < FAKE_MAX_CONNS; j++)
		if (s->conns[j].fd >= 0)
			fake_conn_close(&s->conns[j]);
	close(s->listen_fd);
	close(s->stop_pipe[0]);
	close(s->stop_pipe[1]);
	close(s->wake_pipe[0]);
	close(s->wake_pipe[1]);
	for (i = 0; i < s->nrequests; i++) {
		free(s->requests[i].head);
		free(s->requests[i].body);
	}
	pthread_mutex_destroy(&s->lock);
}

static size_t fake_server_nrequests(struct fake_server *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->nrequests;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* Answer the HOLD request number i (in arrival order) now. */
static inline void fake_server_release(struct fake_server *s, size_t i)
{
	pthread_mutex_lock(&s->lock);
	if (i < s->nrequests)
		s->requests[i].release = 1;
	pthread_mutex_unlock(&s->lock);
	(void)!write(s->wake_pipe[1], "r", 1);
}

/* Allow one more chunk of a chunked body to be sent. */
static inline void fake_server_grant(struct fake_server *s)
{
	pthread_mutex_lock(&s->lock);
	s->grants = 1;          /* grants given before a chunk is due do not pile up */
	pthread_mutex_unlock(&s->lock);
	(void)!write(s->wake_pipe[1], "g", 1);
}

/* Requests read and not yet answered now, and the most there ever were at once. */
static inline void fake_server_outstanding(struct fake_server *s, size_t *now, size_t *max)
{
	pthread_mutex_lock(&s->lock);
	*now = s->outstanding;
	*max = s->max_outstanding;
	pthread_mutex_unlock(&s->lock);
}

/* Copy the value of header name in request i into out ("" when absent). */
static void fake_request_header(struct fake_server *s, size_t i, const char *name, char *out,
				size_t size)
{
	char key[128];
	const char *p, *e;
	size_t len;

	out[0] = '\0';
	snprintf(key, sizeof(key), "\r\n%s:", name);
	pthread_mutex_lock(&s->lock);
	if (i < s->nrequests && (p = strcasestr(s->requests[i].head, key)) != NULL) {
		p += strlen(key);
		while (*p == ' ')
			p++;
		e = strstr(p, "\r\n");
		len = e ? (size_t)(e - p) : strlen(p);
		if (len >= size)
			len = size - 1;
		memcpy(out, p, len);
		out[len] = '\0';
	}
	pthread_mutex_unlock(&s->lock);
}

#endif
