/*
 * fake_http_server.h — a tiny HTTP/1.1 server thread on 127.0.0.1 (port chosen by the kernel)
 * for the loopback tests of http.c, aws.c and ivs.c. It serves canned responses in order and
 * records every request. Header-only (static functions) so test binaries need no extra object.
 *
 * Actions per response: RESPOND (status, extra header lines, body), HANG (read the request,
 * never answer), CLOSE (read the request, close the connection without a byte).
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

enum fake_action { FAKE_RESPOND = 0, FAKE_HANG, FAKE_CLOSE };

struct fake_response {
	enum fake_action action;
	int status;
	const char *headers;            /* extra lines, each ending in "\r\n"; may be NULL */
	const char *body;               /* may be NULL */
	size_t body_len;                /* 0 → strlen(body) */
};

#define FAKE_MAX_REQUESTS 64
#define FAKE_MAX_CONNS    16

struct fake_request {
	char method[16];
	char path[512];
	char *head;                     /* the whole request head, NUL-terminated */
	char *body;
	size_t body_len;
};

struct fake_conn {
	int fd;
	char *buf;
	size_t len, cap;
	int hung;
};

struct fake_server {
	int listen_fd;
	int port;
	int stop_pipe[2];
	pthread_t thread;
	pthread_mutex_t lock;
	const struct fake_response *responses;
	size_t nresponses, next;
	struct fake_request requests[FAKE_MAX_REQUESTS];
	size_t nrequests;
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

/* Handle complete requests in the buffer. Returns -1 when the connection must be closed. */
static int fake_handle(struct fake_server *s, struct fake_conn *c)
{
	for (;;) {
		char *end, *cl;
		size_t head_len, body_len = 0, total;
		struct fake_response resp = { .action = FAKE_RESPOND, .status = 500,
					      .body = "{\"message\":\"no canned response\"}" };
		struct fake_request *r;
		char line[512];

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
		pthread_mutex_unlock(&s->lock);
		memmove(c->buf, c->buf + total, c->len - total);
		c->len -= total;
		if (resp.action == FAKE_CLOSE)
			return -1;
		if (resp.action == FAKE_HANG) {
			c->hung = 1;
			return 0;
		}
		if (resp.body == NULL)
			resp.body = "";
		if (resp.body_len == 0)
			resp.body_len = strlen(resp.body);
		snprintf(line, sizeof(line), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n"
			 "Content-Type: application/json\r\n%s\r\n", resp.status, resp.body_len,
			 resp.headers ? resp.headers : "");
		fake_send_all(c->fd, line, strlen(line));
		fake_send_all(c->fd, resp.body, resp.body_len);
	}
}

static void *fake_thread(void *arg)
{
	struct fake_server *s = arg;

	for (;;) {
		struct pollfd pfd[FAKE_MAX_CONNS + 2];
		int idx[FAKE_MAX_CONNS + 2];
		int n = 0, i;

		pfd[n].fd = s->stop_pipe[0];
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
		if (pfd[1].revents & POLLIN) {
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
		for (i = 2; i < n; i++) {
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
	    listen(s->listen_fd, 16) < 0 ||
	    getsockname(s->listen_fd, (struct sockaddr *)&a, &alen) < 0 ||
	    pipe2(s->stop_pipe, O_CLOEXEC) < 0)
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
