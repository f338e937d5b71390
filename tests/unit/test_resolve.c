/*
 * test_resolve.c — host name lookups off the event loop: the answer arrives through the loop,
 * the loop keeps running meanwhile, and a cancelled lookup never calls back. Only names the
 * machine answers itself (an address literal, localhost from /etc/hosts): no DNS traffic.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "resolve.h"

struct result {
	int calls;
	int port;
	int family;
	int gai_err;
	char addr[64];
};

static void on_done(void *ud, struct addrinfo *res, int gai_err, int sys_errno)
{
	struct result *r = ud;

	(void)sys_errno;
	r->calls++;
	r->gai_err = gai_err;
	if (res != NULL) {
		r->family = res->ai_family;
		if (res->ai_family == AF_INET) {
			const struct sockaddr_in *sin = (const struct sockaddr_in *)res->ai_addr;
			inet_ntop(AF_INET, &sin->sin_addr, r->addr, sizeof(r->addr));
			r->port = ntohs(sin->sin_port);
		} else {
			const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)res->ai_addr;
			inet_ntop(AF_INET6, &sin6->sin6_addr, r->addr, sizeof(r->addr));
			r->port = ntohs(sin6->sin6_port);
		}
		freeaddrinfo(res);
	}
}

static void run_until_called(sd_event *e, const struct result *r)
{
	for (int i = 0; i < 1000 && r->calls == 0; i++)
		assert_true(sd_event_run(e, 10000) >= 0);
	assert_int_equal(r->calls, 1);
}

static void test_address_literal(void **state)
{
	sd_event *e = NULL;
	struct result r = { 0 };
	struct resolve *lookup;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	lookup = resolve_start(e, "127.0.0.1", 6380, on_done, &r);
	assert_non_null(lookup);
	assert_int_equal(r.calls, 0);    /* never from inside resolve_start */
	run_until_called(e, &r);
	assert_int_equal(r.gai_err, 0);
	assert_int_equal(r.family, AF_INET);
	assert_string_equal(r.addr, "127.0.0.1");
	assert_int_equal(r.port, 6380);
	sd_event_unref(e);
}

static void test_localhost(void **state)
{
	sd_event *e = NULL;
	struct result r = { 0 };

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	assert_non_null(resolve_start(e, "localhost", 6379, on_done, &r));
	run_until_called(e, &r);
	assert_int_equal(r.gai_err, 0);
	assert_true(strcmp(r.addr, "127.0.0.1") == 0 || strcmp(r.addr, "::1") == 0);
	assert_int_equal(r.port, 6379);
	sd_event_unref(e);
}

static void test_cancelled_lookup_never_calls_back(void **state)
{
	sd_event *e = NULL;
	struct result cancelled = { 0 }, later = { 0 };

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	resolve_cancel(resolve_start(e, "127.0.0.1", 1, on_done, &cancelled));
	resolve_cancel(NULL);
	/* A later lookup completes; the cancelled one stays silent. */
	assert_non_null(resolve_start(e, "127.0.0.1", 2, on_done, &later));
	run_until_called(e, &later);
	for (int i = 0; i < 5; i++)
		assert_true(sd_event_run(e, 1000) >= 0);
	assert_int_equal(cancelled.calls, 0);
	sd_event_unref(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_address_literal),
		cmocka_unit_test(test_localhost),
		cmocka_unit_test(test_cancelled_lookup_never_calls_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
