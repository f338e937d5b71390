/*
 * test_metrics_http.c — the scrape endpoint driven by a real sd-event loop, over real loopback
 * sockets: what is served, what is refused, the bounds, and the listen-address parser.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <systemd/sd-event.h>

#include "listen_addr.h"
#include "metrics_http.h"
#include "strbuf.h"

#define BODY "# HELP t_x A test.\n# TYPE t_x gauge\nt_x 1\n"

struct fixture {
	sd_event *event;
	struct metrics_http *http;
	int renders;
	int fail_render;
};

static int render(void *ud, struct strbuf *out)
{
	struct fixture *f = ud;

	f->renders++;
	if (f->fail_render)
		return -EIO;
	strbuf_puts(out, BODY);
	return 0;
}

static int setup(void **state)
{
	struct metrics_http_options o = { .listen = "127.0.0.1:0", .memory_limit = 8192,
					  .max_connections = 4 };
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256] = "";

	assert_non_null(f);
	assert_int_equal(sd_event_new(&f->event), 0);
	assert_int_equal(metrics_http_new(f->event, &o, render, f, &f->http, err, sizeof(err)), 0);
	assert_true(metrics_http_port(f->http) > 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	metrics_http_free(f->http);
	sd_event_unref(f->event);
	free(f);
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int connect_to(unsigned port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/*
 * Send request and turn the loop until the server closes the connection (every request says
 * "Connection: close") or 10 s pass; returns the whole response (caller frees).
 */
static char *exchange(struct fixture *f, const char *request, size_t reqlen)
{
	struct strbuf resp;
	long long deadline = now_ms() + 10000;
	size_t sent = 0;
	char buf[4096];
	int fd = connect_to(metrics_http_port(f->http));

	assert_true(fd >= 0);
	strbuf_init(&resp, 1 << 20);
	while (now_ms() < deadline) {
		ssize_t n;

		if (sent < reqlen) {
			n = send(fd, request + sent, reqlen - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
		}
		assert_true(sd_event_run(f->event, 20000) >= 0);
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			strbuf_append(&resp, buf, (size_t)n);
			continue;
		}
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
			break;
	}
	close(fd);
	char *out = strdup(strbuf_str(&resp));
	strbuf_free(&resp);
	return out;
}

static char *get(struct fixture *f, const char *method, const char *path)
{
	char req[512];
	int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: localhost\r\n"
			 "Connection: close\r\n\r\n", method, path);
	return exchange(f, req, (size_t)n);
}

static int status_of(const char *resp)
{
	int code = 0;

	if (sscanf(resp, "HTTP/1.1 %d", &code) != 1)
		return -1;
	return code;
}

static void test_get_metrics(void **state)
{
	struct fixture *f = *state;
	char *resp = get(f, "GET", "/metrics");
	const char *body = strstr(resp, "\r\n\r\n");

	assert_int_equal(status_of(resp), 200);
	assert_non_null(strcasestr(resp, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	assert_non_null(body);
	assert_string_equal(body + 4, BODY);
	assert_int_equal(f->renders, 1);
	free(resp);
}

static void test_other_paths_404(void **state)
{
	static const char *const paths[] = { "/", "/metrics/", "/metricsx", "/Metrics", "/health" };
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		char *resp = get(f, "GET", paths[i]);
		assert_int_equal(status_of(resp), 404);
		free(resp);
	}
	assert_int_equal(f->renders, 0);
}

static void test_other_methods_405(void **state)
{
	static const char *const methods[] = { "POST", "PUT", "DELETE", "HEAD", "OPTIONS" };
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		char *resp = get(f, methods[i], "/metrics");
		assert_int_equal(status_of(resp), 405);
		assert_non_null(strcasestr(resp, "\r\nAllow: GET\r\n"));
		free(resp);
	}
	assert_int_equal(f->renders, 0);
}

static void test_post_body_is_not_read(void **state)
{
	struct fixture *f = *state;
	const char *req = "POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
			  "Content-Length: 100000000\r\n\r\nabc";
	char *resp = exchange(f, req, strlen(req));

	assert_int_equal(status_of(resp), 405);
	free(resp);
}

/* Headers beyond the per-connection memory limit are refused; the server keeps serving. */
static void test_oversized_request_refused(void **state)
{
	struct fixture *f = *state;
	size_t pad = 32 * 1024;
	char *req = malloc(pad + 256);
	char *resp;
	int n;

	assert_non_null(req);
	n = sprintf(req, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: ");
	memset(req + n, 'a', pad);
	strcpy(req + n + pad, "\r\n\r\n");
	resp = exchange(f, req, strlen(req));
	assert_true(status_of(resp) >= 400 && status_of(resp) < 500);
	free(resp);
	free(req);
	resp = get(f, "GET", "/metrics");
	assert_int_equal(status_of(resp), 200);
	free(resp);
}

/*
 * More clients than connection slots, all idle, then all gone: the clients that waited in the
 * listen backlog and every later one are still served.
 */
static void test_slots_freed_after_limit(void **state)
{
	struct fixture *f = *state;
	int idle[40];
	char *resp;

	for (size_t i = 0; i < 40; i++) {
		idle[i] = connect_to(metrics_http_port(f->http));
		assert_true(idle[i] >= 0);
		assert_int_equal(send(idle[i], "GET /metrics HTTP/1.1\r\n", 24, MSG_NOSIGNAL), 24);
		for (int k = 0; k < 3; k++)
			assert_true(sd_event_run(f->event, 1000) >= 0);
	}
	for (size_t i = 0; i < 40; i++)
		close(idle[i]);
	resp = get(f, "GET", "/metrics");
	assert_int_equal(status_of(resp), 200);
	free(resp);
}

static void test_render_failure_is_500(void **state)
{
	struct fixture *f = *state;
	char *resp;

	f->fail_render = 1;
	resp = get(f, "GET", "/metrics");
	assert_int_equal(status_of(resp), 500);
	free(resp);
}

static void test_free_closes_listener(void **state)
{
	struct fixture *f = *state;
	unsigned port = metrics_http_port(f->http);

	metrics_http_free(f->http);
	f->http = NULL;
	assert_int_equal(connect_to(port), -ECONNREFUSED);
}

static void test_listen_errors(void **state)
{
	struct fixture *f = *state;
	struct metrics_http *h = NULL;
	struct metrics_http_options o = { .listen = "localhost:9464" };
	char err[256] = "", busy[64];

	assert_int_equal(metrics_http_new(f->event, &o, render, f, &h, err, sizeof(err)), -EINVAL);
	assert_null(h);
	assert_non_null(strstr(err, "localhost:9464"));
	snprintf(busy, sizeof(busy), "127.0.0.1:%u", metrics_http_port(f->http));
	o.listen = busy;
	assert_int_equal(metrics_http_new(f->event, &o, render, f, &h, err, sizeof(err)),
			 -EADDRINUSE);
	assert_null(h);
	assert_non_null(strstr(err, "cannot listen on"));
	assert_non_null(strstr(err, busy));
}

static void test_listen_addr_parse(void **state)
{
	static const struct { const char *in; int ok; int family; unsigned port; } cases[] = {
		{ "127.0.0.1:9464", 1, AF_INET, 9464 },
		{ "0.0.0.0:1", 1, AF_INET, 1 },
		{ "[::1]:9464", 1, AF_INET6, 9464 },
		{ "[::]:65535", 1, AF_INET6, 65535 },
		{ "127.0.0.1:0", 1, AF_INET, 0 },
		{ "", 0, 0, 0 },
		{ "127.0.0.1", 0, 0, 0 },
		{ "127.0.0.1:", 0, 0, 0 },
		{ ":9464", 0, 0, 0 },
		{ "localhost:9464", 0, 0, 0 },
		{ "::1:9464", 0, 0, 0 },
		{ "[::1]9464", 0, 0, 0 },
		{ "[::1:9464", 0, 0, 0 },
		{ "[127.0.0.1]:9464", 0, 0, 0 },
		{ "127.0.0.1:65536", 0, 0, 0 },
		{ "127.0.0.1:-1", 0, 0, 0 },
		{ "127.0.0.1:+80", 0, 0, 0 },
		{ "127.0.0.1:080", 0, 0, 0 },
		{ "127.0.0.1:9464 ", 0, 0, 0 },
		{ "127.0.0.1:999999999999", 0, 0, 0 },
		{ "256.0.0.1:80", 0, 0, 0 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_storage a;
		socklen_t len = 0;
		const char *why = NULL;
		int r = listen_addr_parse(cases[i].in, &a, &len, &why);

		if (cases[i].ok) {
			assert_int_equal(r, 0);
			assert_int_equal(a.ss_family, cases[i].family);
			assert_int_equal(listen_addr_port(&a), cases[i].port);
		} else {
			if (r == 0)
				fail_msg("\"%s\" should not parse", cases[i].in);
			assert_int_equal(r, -EINVAL);
			assert_non_null(why);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_get_metrics, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_paths_404, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_methods_405, setup, teardown),
		cmocka_unit_test_setup_teardown(test_post_body_is_not_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_request_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slots_freed_after_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_render_failure_is_500, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_closes_listener, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listen_errors, setup, teardown),
		cmocka_unit_test(test_listen_addr_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
