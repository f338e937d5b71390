/*
 * redis_conn.c — see redis_conn.h.
 *
 * States: CONNECTING (non-blocking connect(2), trying the resolved addresses in turn)
 *   -> HANDSHAKE (TLS only) -> OPEN -> DEAD (on_error given).
 * One io source; its mask is whatever the current step waits for, plus EPOLLOUT while output
 * is queued. Every readiness event runs "write what we can, then read until the socket (and
 * OpenSSL's buffer) is empty".
 */
#include "redis_conn.h"

#include <errno.h>
#include <stdarg.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "redis_tls.h"
#include "resolve.h"
#include "strbuf.h"

#define OUTPUT_KEEP  (16u << 10)    /* a drained buffer larger than this is given back */
#define OUTPUT_MAX   (64u << 20)   /* queued request bytes; a sane pipeline is far below */
#define READ_CHUNK   16384

enum conn_state { CONN_RESOLVING, CONN_CONNECTING, CONN_HANDSHAKE, CONN_OPEN, CONN_DEAD };

struct redis_conn {
	sd_event *event;
	sd_event_source *io;
	sd_event_source *defer;      /* reports a failure found inside redis_conn_new */
	int fd;
	enum conn_state state;
	struct resolve *resolving;   /* the host name lookup in flight */
	struct addrinfo *addrs, *next_addr;
	char where[300];             /* "host:port" or the socket path, for messages */
	struct redis_tls *tls;
	bool tls_wants_write;        /* the last TLS call asked for writability */
	bool got_bytes;              /* the server has sent something */
	redisReader *reader;
	struct strbuf out;
	struct redis_conn_callbacks cbs;
	void *ud;
	int dispatching;             /* > 0 while a callback may free us */
	bool freed;
	char error[400];
};

static void conn_destroy(struct redis_conn *c)
{
	sd_event_source_disable_unref(c->io);
	sd_event_source_disable_unref(c->defer);
	resolve_cancel(c->resolving);
	redis_tls_free(c->tls);
	if (c->fd >= 0)
		close(c->fd);
	if (c->addrs != NULL)
		freeaddrinfo(c->addrs);
	if (c->reader != NULL)
		redisReaderFree(c->reader);
	if (c->out.data != NULL)
		explicit_bzero(c->out.data, c->out.alloc);   /* may hold an AUTH password */
	strbuf_free(&c->out);
	sd_event_unref(c->event);
	free(c);
}

void redis_conn_free(struct redis_conn *c)
{
	if (c == NULL)
		return;
	if (c->dispatching > 0) {
		c->freed = true;
		c->state = CONN_DEAD;
		if (c->io != NULL)
			(void)sd_event_source_set_enabled(c->io, SD_EVENT_OFF);
		if (c->defer != NULL)
			(void)sd_event_source_set_enabled(c->defer, SD_EVENT_OFF);
		return;
	}
	conn_destroy(c);
}

const char *redis_conn_phase(const struct redis_conn *c)
{
	switch (c->state) {
	case CONN_RESOLVING:  return "DNS resolution";
	case CONN_CONNECTING: return "TCP connect";
	case CONN_HANDSHAKE:  return "TLS handshake";
	case CONN_OPEN:       return "waiting for a reply";
	default:              return "closed";
	}
}

/* ---- reply reader ---------------------------------------------------------------------------- */

/*
 * hiredis 0.14 allocates an array reply's element vector as soon as it reads the header: a
 * hostile or corrupt "*999999999" would make it calloc gigabytes. Our replies are small (the
 * largest is a MULTI/EXEC or a pub/sub message), so arrays beyond this are refused.
 */
#define REPLY_ARRAY_MAX (1 << 20)

static redisReplyObjectFunctions limited_functions;
static void *(*default_create_array)(const redisReadTask *, int);

static void *limited_create_array(const redisReadTask *task, int elements)
{
	if (elements < 0 || elements > REPLY_ARRAY_MAX)
		return NULL;    /* the reader reports it as "Out of memory" */
	return default_create_array(task, elements);
}

redisReader *redis_reader_new(void)
{
	redisReader *r = redisReaderCreate();

	if (r == NULL)
		return NULL;
	if (default_create_array == NULL) {
		limited_functions = *r->fn;
		default_create_array = limited_functions.createArray;
		limited_functions.createArray = limited_create_array;
	}
	r->fn = &limited_functions;
	return r;
}

int redis_reader_feed(redisReader *reader, const char *buf, size_t len,
		      void (*on_reply)(void *ud, redisReply *reply), void *ud,
		      char *err, size_t errlen)
{
	void *reply = NULL;

	if (len > 0 && redisReaderFeed(reader, buf, len) != REDIS_OK)
		goto fail;
	for (;;) {
		if (redisReaderGetReply(reader, &reply) != REDIS_OK)
			goto fail;
		if (reply == NULL)
			return 0;
		on_reply(ud, reply);
	}
fail:
	if (strcmp(reader->errstr, "Out of memory") == 0)
		snprintf(err, errlen, "protocol error: an array reply of more than %d elements, "
			 "or out of memory", REPLY_ARRAY_MAX);
	else
		snprintf(err, errlen, "protocol error: %s",
			 reader->errstr[0] != '\0' ? reader->errstr : "unreadable reply");
	return -EPROTO;
}

/* ---- failure and callbacks ------------------------------------------------------------------- */

static void conn_fail(struct redis_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void conn_fail(struct redis_conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->state == CONN_DEAD)
		return;
	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
	c->state = CONN_DEAD;
	if (c->io != NULL)
		(void)sd_event_source_set_enabled(c->io, SD_EVENT_OFF);
	if (c->cbs.on_error != NULL)
		c->cbs.on_error(c->ud, c->error);
}

/* The peer closed or reset a plain-text connection: say what that usually means. */
static void conn_fail_closed(struct redis_conn *c, int err)
{
	char cause[120];

	if (err != 0)
		snprintf(cause, sizeof(cause), "%s (errno %d)", strerror(err), err);
	else
		snprintf(cause, sizeof(cause), "the server closed the connection");
	if (c->tls == NULL && !c->got_bytes && c->addrs != NULL)
		conn_fail(c, "%s before answering (a TLS server behind redis://? use rediss://)",
			  cause);
	else
		conn_fail(c, "%s", cause);
}

static void deliver_reply(void *ud, redisReply *reply)
{
	struct redis_conn *c = ud;

	if (c->freed || c->state == CONN_DEAD) {
		freeReplyObject(reply);
		return;
	}
	c->cbs.on_reply(c->ud, reply);
	freeReplyObject(reply);
}

/* ---- I/O ------------------------------------------------------------------------------------- */

static void update_events(struct redis_conn *c)
{
	uint32_t ev = EPOLLIN;

	if (c->state == CONN_DEAD || c->io == NULL)
		return;
	if (c->state == CONN_CONNECTING)
		ev = EPOLLOUT;
	else if (c->tls_wants_write || (c->out.len > 0 && c->state == CONN_OPEN))
		ev |= EPOLLOUT;
	(void)sd_event_source_set_io_events(c->io, ev);
	(void)sd_event_source_set_enabled(c->io, SD_EVENT_ON);
}

/* Write queued output. 0 = done or waiting, -1 = failed (on_error given). */
static int flush_output(struct redis_conn *c)
{
	while (c->out.len > 0) {
		ssize_t n;
		if (c->tls != NULL) {
			/* A retry after WANT_* passes the same first bytes again (out only grows). */
			n = redis_tls_write(c->tls, c->out.data, c->out.len);
			c->tls_wants_write = n == REDIS_TLS_WANT_WRITE;
			if (n == REDIS_TLS_WANT_READ || n == REDIS_TLS_WANT_WRITE)
				return 0;
			if (n < 0) {
				conn_fail(c, "%s", redis_tls_error(c->tls));
				return -1;
			}
		} else {
			n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return 0;
			if (n < 0) {
				conn_fail_closed(c, errno);
				return -1;
			}
		}
		strbuf_consume(&c->out, (size_t)n);
	}
	/* Drained: give back what a burst grew (a pass's record writes queued in one turn of the
	 * loop reach ~130 kB), so it is not held for the life of the connection. */
	if (c->out.alloc > OUTPUT_KEEP) {
		explicit_bzero(c->out.data, c->out.alloc);   /* may have held an AUTH password */
		strbuf_free(&c->out);
	}
	return 0;
}

/* Read until the socket and OpenSSL's buffer are empty, handing over replies. */
static void read_input(struct redis_conn *c)
{
	char buf[READ_CHUNK];

	while (c->state == CONN_OPEN && !c->freed) {
		ssize_t n;
		if (c->tls != NULL) {
			n = redis_tls_read(c->tls, buf, sizeof(buf));
			if (n == REDIS_TLS_WANT_WRITE) {
				c->tls_wants_write = true;
				return;
			}
			if (n == REDIS_TLS_WANT_READ)
				return;
			if (n < 0) {
				conn_fail(c, "%s", redis_tls_error(c->tls));
				return;
			}
			if (n == 0) {
				conn_fail(c, "the server closed the connection");
				return;
			}
		} else {
			n = recv(c->fd, buf, sizeof(buf), 0);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			if (n <= 0) {
				conn_fail_closed(c, n < 0 ? errno : 0);
				return;
			}
			if (!c->got_bytes && (buf[0] == 0x15 || buf[0] == 0x16)) {
				conn_fail(c, "the server speaks TLS (a TLS server behind redis://? use rediss://)");
				return;
			}
		}
		c->got_bytes = true;
		if (redis_reader_feed(c->reader, buf, (size_t)n, deliver_reply, c, c->error,
				      sizeof(c->error)) < 0) {
			char why[sizeof(c->error)];
			memcpy(why, c->error, sizeof(why));
			conn_fail(c, "%s", why);
			return;
		}
	}
}

static void became_open(struct redis_conn *c)
{
	c->state = CONN_OPEN;
	if (c->cbs.on_connected != NULL)
		c->cbs.on_connected(c->ud);
}

static void step_handshake(struct redis_conn *c)
{
	int r = redis_tls_handshake(c->tls);

	c->tls_wants_write = r == REDIS_TLS_WANT_WRITE;
	if (r == 1) {
		became_open(c);
		return;
	}
	if (r == REDIS_TLS_WANT_READ || r == REDIS_TLS_WANT_WRITE) {
		/* WANT_READ: EPOLLIN is always in the mask; WANT_WRITE adds EPOLLOUT. */
		return;
	}
	conn_fail(c, "%s", r == 0 ? "the server closed the connection during the TLS handshake"
				    : redis_tls_error(c->tls));
}

static int start_next_address(struct redis_conn *c, int *last_errno);

static void step_connect(struct redis_conn *c)
{
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	if (soerr != 0) {
		int last = soerr;
		if (c->next_addr != NULL && start_next_address(c, &last) == 0)
			return;
		conn_fail(c, "connect: %s (errno %d)", strerror(last), last);
		return;
	}
	if (c->addrs != NULL) {
		int one = 1;
		/* Like hiredis: small pipelined commands must not wait for Nagle. */
		(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		(void)setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	}
	if (c->tls == NULL) {
		became_open(c);
		return;
	}
	if (SSL_set_fd(redis_tls_ssl(c->tls), c->fd) != 1) {
		conn_fail(c, "cannot start TLS");
		return;
	}
	c->state = CONN_HANDSHAKE;
	step_handshake(c);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct redis_conn *c = userdata;

	(void)s;
	(void)fd;
	(void)revents;
	c->dispatching++;
	if (c->state == CONN_CONNECTING)
		step_connect(c);
	else if (c->state == CONN_HANDSHAKE)
		step_handshake(c);
	/* Output first (it may be what a TLS read waits for), then input, then new output. */
	if (!c->freed && c->state == CONN_OPEN && flush_output(c) == 0) {
		read_input(c);
		if (!c->freed && c->state == CONN_OPEN)
			(void)flush_output(c);
	}
	c->dispatching--;
	if (c->freed) {
		conn_destroy(c);
		return 0;
	}
	update_events(c);
	return 0;
}

static int on_defer(sd_event_source *s, void *userdata)
{
	struct redis_conn *c = userdata;
	char why[sizeof(c->error)];

	(void)s;
	memcpy(why, c->error, sizeof(why));
	c->dispatching++;
	c->state = CONN_HANDSHAKE;   /* anything but DEAD, so that conn_fail reports */
	conn_fail(c, "%s", why);
	c->dispatching--;
	if (c->freed)
		conn_destroy(c);
	return 0;
}

/* ---- set-up ---------------------------------------------------------------------------------- */

/* Non-blocking connect to c->next_addr and the ones after it. 0 = in progress, else -1. */
static int start_next_address(struct redis_conn *c, int *last_errno)
{
	while (c->next_addr != NULL) {
		struct addrinfo *a = c->next_addr;
		int fd;

		c->next_addr = a->ai_next;
		fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			*last_errno = errno;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
			*last_errno = errno;
			close(fd);
			continue;
		}
		if (c->io != NULL && sd_event_source_set_io_fd(c->io, fd) < 0) {
			*last_errno = ENOMEM;
			close(fd);
			continue;
		}
		if (c->fd >= 0)
			close(c->fd);
		c->fd = fd;
		return 0;
	}
	return -1;
}

static int open_unix_socket(struct redis_conn *c, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int last;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "unix socket path %s is too long", path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
			  errno != EINPROGRESS && errno != EAGAIN)) {
		last = errno;
		snprintf(err, errlen, "connect: %s (errno %d)", strerror(last), last);
		return -last;
	}
	return 0;
}

/* The host name is resolved (on every connection: a failover moves the endpoint). */
static void on_resolved(void *ud, struct addrinfo *res, int gai_err, int sys_errno)
{
	struct redis_conn *c = ud;
	int last = ECONNREFUSED;

	c->resolving = NULL;
	c->dispatching++;
	if (res == NULL) {
		conn_fail(c, "cannot resolve the host name: %s",
			  gai_err == EAI_SYSTEM ? strerror(sys_errno) : gai_strerror(gai_err));
	} else {
		c->addrs = c->next_addr = res;
		if (start_next_address(c, &last) < 0)
			conn_fail(c, "connect: %s (errno %d)", strerror(last), last);
		else if (sd_event_add_io(c->event, &c->io, c->fd, EPOLLOUT, on_io, c) < 0)
			conn_fail(c, "out of memory");
		else {
			(void)sd_event_source_set_description(c->io, "redis-io");
			c->state = CONN_CONNECTING;
		}
	}
	c->dispatching--;
	if (c->freed)
		conn_destroy(c);
}

struct redis_conn *redis_conn_new(sd_event *event, const struct redis_conn_options *opts,
				  const struct redis_conn_callbacks *cbs, void *ud,
				  char *err, size_t errlen)
{
	struct redis_conn *c = calloc(1, sizeof(*c));
	int r = 0;

	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->fd = -1;
	c->event = sd_event_ref(event);
	c->cbs = *cbs;
	c->ud = ud;
	strbuf_init(&c->out, OUTPUT_MAX);
	if (opts->unix_path != NULL)
		snprintf(c->where, sizeof(c->where), "%s", opts->unix_path);
	else if (strchr(opts->host, ':') != NULL)
		snprintf(c->where, sizeof(c->where), "[%s]:%d", opts->host, opts->port);
	else
		snprintf(c->where, sizeof(c->where), "%s:%d", opts->host, opts->port);
	c->reader = redis_reader_new();
	if (c->reader == NULL)
		goto nomem;
	if (opts->tls != NULL && opts->unix_path == NULL) {
		c->tls = redis_tls_new(opts->tls, opts->server_name != NULL && opts->server_name[0]
						  ? opts->server_name : opts->host);
		if (c->tls == NULL) {
			snprintf(err, errlen, "cannot set up TLS for %s", c->where);
			goto fail;
		}
	}
	if (opts->unix_path == NULL) {
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
					  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
		struct addrinfo *numeric = NULL;
		char port[16];

		c->state = CONN_RESOLVING;
		snprintf(port, sizeof(port), "%d", opts->port);
		/* An address needs no lookup: connect at once, as a name's lookup would delay it. */
		if (getaddrinfo(opts->host, port, &hints, &numeric) == 0) {
			c->addrs = c->next_addr = numeric;
			if (start_next_address(c, &r) < 0 ||
			    sd_event_add_io(event, &c->io, c->fd, EPOLLOUT, on_io, c) < 0) {
				snprintf(c->error, sizeof(c->error), "connect: %s (errno %d)",
					 strerror(r ? r : ENOMEM), r ? r : ENOMEM);
				if (sd_event_add_defer(event, &c->defer, on_defer, c) < 0)
					goto nomem;
				return c;
			}
			(void)sd_event_source_set_description(c->io, "redis-io");
			c->state = CONN_CONNECTING;
			return c;
		}
		c->resolving = resolve_start(event, opts->host, opts->port, on_resolved, c);
		if (c->resolving == NULL) {
			snprintf(err, errlen, "cannot start resolving %s: %s", opts->host,
				 strerror(errno));
			goto fail;
		}
		return c;
	}
	r = open_unix_socket(c, opts->unix_path, err, errlen);
	if (r < 0) {
		/* Refused at once (typical for a Unix socket): report it from the loop. */
		if (r == -ENAMETOOLONG)
			goto fail;
		snprintf(c->error, sizeof(c->error), "%s", err);
		if (sd_event_add_defer(event, &c->defer, on_defer, c) < 0)
			goto fail;
		return c;
	}
	if (sd_event_add_io(event, &c->io, c->fd, EPOLLOUT, on_io, c) < 0)
		goto nomem;
	(void)sd_event_source_set_description(c->io, "redis-io");
	c->state = CONN_CONNECTING;
	return c;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	conn_destroy(c);
	return NULL;
}

int redis_conn_send(struct redis_conn *c, int argc, const char **argv, const size_t *argvlen)
{
	char *cmd = NULL;
	int len, r;

	if (c->state == CONN_DEAD || c->freed)
		return -ENOTCONN;
	len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
	if (len < 0)
		return -ENOMEM;
	r = strbuf_append(&c->out, cmd, (size_t)len);
	explicit_bzero(cmd, (size_t)len);
	redisFreeCommand(cmd);
	if (r < 0)
		return r;
	if (c->dispatching == 0 && c->state == CONN_OPEN)
		update_events(c);
	return 0;
}
