/*
 * redis_server.h — a private redis-server for the loopback tests of redisio.c and store.c:
 * Unix socket in a fresh temporary directory plus TCP on a free 127.0.0.1 port, no
 * persistence. server_start waits (with a deadline) until it answers PING; server_cleanup
 * kills it and removes the directory. Header-only (static functions), like
 * fake_http_server.h, so test binaries need no extra object.
 */
#ifndef REDIS_SERVER_H
#define REDIS_SERVER_H

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#define REDIS_SERVER_DEADLINE_MS 10000

struct server {
	pid_t pid;
	int port;
	char dir[64];
	char sock[128];
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A loopback port nobody listens on right now: bind port 0 and read what the kernel chose. */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static redisContext *sync_client(const struct server *s, const char *password)
{
	struct timeval tv = { 1, 0 };
	redisContext *c = redisConnectUnixWithTimeout(s->sock, tv);
	if (c != NULL && c->err == 0 && password != NULL) {
		redisReply *r = redisCommand(c, "AUTH %s", password);
		freeReplyObject(r);
	}
	return c;
}

/* Is the server answering PING? (NOAUTH also proves it is up.) */
static bool server_answers(const struct server *s)
{
	redisContext *c = sync_client(s, NULL);
	bool ok = false;

	if (c != NULL && c->err == 0) {
		redisReply *r = redisCommand(c, "PING");
		ok = r != NULL && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR);
		freeReplyObject(r);
	}
	if (c != NULL)
		redisFree(c);
	return ok;
}

/* extra: NULL-terminated extra arguments ("--requirepass", "x", NULL). */
static int server_start(struct server *s, const char *const *extra)
{
	char port[16];
	const char *argv[32];
	int n = 0;

	if (s->dir[0] == '\0') {
		snprintf(s->dir, sizeof(s->dir), "/tmp/test-redis-XXXXXX");
		if (mkdtemp(s->dir) == NULL)
			return -errno;
		snprintf(s->sock, sizeof(s->sock), "%s/r.sock", s->dir);
		s->port = free_port();
	}
	snprintf(port, sizeof(port), "%d", s->port);
	argv[n++] = "redis-server";
	argv[n++] = "--port";
	argv[n++] = port;
	argv[n++] = "--bind";
	argv[n++] = "127.0.0.1";
	argv[n++] = "--unixsocket";
	argv[n++] = s->sock;
	argv[n++] = "--save";
	argv[n++] = "";
	argv[n++] = "--appendonly";
	argv[n++] = "no";
	argv[n++] = "--dir";
	argv[n++] = s->dir;
	argv[n++] = "--loglevel";
	argv[n++] = "warning";
	for (; extra != NULL && *extra != NULL && n < 30; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	s->pid = fork();
	if (s->pid < 0)
		return -errno;
	if (s->pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		/* Never outlive the test, and never hold its output pipes open. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (devnull >= 0) {
			dup2(devnull, STDOUT_FILENO);
			dup2(devnull, STDERR_FILENO);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	for (uint64_t end = mono_ms() + REDIS_SERVER_DEADLINE_MS; mono_ms() < end;) {
		if (server_answers(s))
			return 0;
		if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
			s->pid = -1;
			return -ECHILD;
		}
		poll(NULL, 0, 10);    /* polling interval of the deadline wait, not a synchronisation */
	}
	return -ETIMEDOUT;
}

static void server_kill(struct server *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGCONT);
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
	}
	s->pid = -1;
}

static void server_cleanup(struct server *s)
{
	char path[160];

	server_kill(s);
	if (s->dir[0] != '\0') {
		unlink(s->sock);
		snprintf(path, sizeof(path), "%s/dump.rdb", s->dir);
		unlink(path);
		rmdir(s->dir);
	}
	s->dir[0] = '\0';
}

#endif
