/*
 * test_http.c — http.c against a loopback fake server, driven by a real sd-event loop.
 * No sleeps: the loop runs until the callback fired or a deadline passed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>
#include <curl/curl.h>

#include "http.h"
#include "fake_http_server.h"

struct result {
	int calls;
	int curl_code;
	long status;
	char body[256];
	size_t body_len;
	char request_id[80];
	char error_type[128];
	char error[256];
	bool too_large, cancelled;
};

static void on_done(void *ud, const struct http_response *resp)
{
	struct result *r = ud;

	r->calls++;
	r->curl_code = resp->curl_code;
	r->status = resp->status;
	r->body_len = resp->body_len;
	snprintf(r->body, sizeof(r->body), "%s", resp->body);
	snprintf(r->request_id, sizeof(r->request_id), "%s", resp->request_id);
	snprintf(r->error_type, sizeof(r->error_type), "%s", resp->error_type);
	snprintf(r->error, sizeof(r->error), "%s", resp->error);
	r->too_large = resp->too_large;
	r->cancelled = resp->cancelled;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Run the loop until *calls reaches want or 10 s pass. */
static void run_until(sd_event *e, const int *calls, int want)
{
	uint64_t deadline = now_ms() + 10000;

	while (*calls < want && now_ms() < deadline)
		assert_true(sd_event_run(e, 100000) >= 0);
	assert_int_equal(*calls, want);
}

struct fixture {
	sd_event *event;
	struct http_client *client;
	struct fake_server server;
};

static struct fixture *setup(const struct fake_response *responses, size_t n, size_t max_body)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct http_options opts = { .max_response_bytes = max_body };

	assert_non_null(f);
	assert_int_equal(sd_event_new(&f->event), 0);
	assert_int_equal(http_client_new(f->event, &opts, &f->client), 0);
	assert_int_equal(fake_server_start(&f->server, responses, n), 0);
	return f;
}

static void teardown(struct fixture *f)
{
	http_client_free(f->client);
	fake_server_stop(&f->server);
	sd_event_unref(f->event);
	free(f);
}

static void test_post_and_headers(void **state)
{
	static const struct fake_response responses[] = {
		{ .status = 200, .headers = "x-amzn-RequestId: req-42\r\n", .body = "{\"ok\":true}" },
		{ .status = 404, .headers = "X-Amzn-ErrorType: ResourceNotFoundException:x\r\n",
		  .body = "{\"exceptionMessage\":\"gone\"}" },
	};
	static const struct http_header hdrs[] = {
		{ "Content-Type", "application/json" }, { "X-Amz-Date", "20150830T123600Z" },
	};
	struct fixture *f = setup(responses, 2, 0);
	struct result r = { 0 };
	char url[128], v[256];

	(void)state;
	snprintf(url, sizeof(url), "%s/ListStages", f->server.url);
	assert_int_equal(http_request_start(f->client, "POST", url, hdrs, 2, "{\"maxResults\":100}",
					    18, NULL, on_done, &r, NULL), 0);
	/* never completes synchronously */
	assert_int_equal(r.calls, 0);
	run_until(f->event, &r.calls, 1);
	assert_int_equal(r.curl_code, 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"ok\":true}");
	assert_string_equal(r.request_id, "req-42");
	assert_int_equal(fake_server_nrequests(&f->server), 1);
	assert_string_equal(f->server.requests[0].method, "POST");
	assert_string_equal(f->server.requests[0].path, "/ListStages");
	assert_string_equal(f->server.requests[0].body, "{\"maxResults\":100}");
	fake_request_header(&f->server, 0, "User-Agent", v, sizeof(v));
	assert_string_equal(v, "ivs-autoscaler/" IVS_AUTOSCALER_VERSION);
	fake_request_header(&f->server, 0, "Content-Type", v, sizeof(v));
	assert_string_equal(v, "application/json");
	fake_request_header(&f->server, 0, "X-Amz-Date", v, sizeof(v));
	assert_string_equal(v, "20150830T123600Z");
	fake_request_header(&f->server, 0, "Expect", v, sizeof(v));
	assert_string_equal(v, "");

	/* second request reuses the connection and captures the error type */
	assert_int_equal(http_request_start(f->client, "POST", url, hdrs, 2, "{}", 2, NULL,
					    on_done, &r, NULL), 0);
	run_until(f->event, &r.calls, 2);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.error_type, "ResourceNotFoundException:x");
	assert_string_equal(r.request_id, "");
	assert_int_equal(http_client_in_flight(f->client), 0);
	teardown(f);
}

static void test_hang_times_out(void **state)
{
	static const struct fake_response responses[] = { { .action = FAKE_HANG } };
	struct fixture *f = setup(responses, 1, 0);
	struct http_timeouts t = { .connect_ms = 1000, .total_ms = 300 };
	struct result r = { 0 };

	(void)state;
	assert_int_equal(http_request_start(f->client, "POST", f->server.url, NULL, 0, "{}", 2, &t,
					    on_done, &r, NULL), 0);
	run_until(f->event, &r.calls, 1);
	assert_int_equal(r.curl_code, CURLE_OPERATION_TIMEDOUT);
	assert_int_equal(r.status, 0);
	assert_true(r.error[0] != '\0');
	teardown(f);
}

static void test_connection_dropped(void **state)
{
	static const struct fake_response responses[] = { { .action = FAKE_CLOSE } };
	struct fixture *f = setup(responses, 1, 0);
	struct result r = { 0 };

	(void)state;
	assert_int_equal(http_request_start(f->client, "POST", f->server.url, NULL, 0, "{}", 2, NULL,
					    on_done, &r, NULL), 0);
	run_until(f->event, &r.calls, 1);
	assert_int_equal(r.curl_code, CURLE_GOT_NOTHING);
	teardown(f);
}

static void test_body_over_cap(void **state)
{
	static char big[70000];
	static struct fake_response responses[] = { { .status = 200, .body = big } };
	struct fixture *f;
	struct result r = { 0 };

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	f = setup(responses, 1, 65536);
	assert_int_equal(http_request_start(f->client, "GET", f->server.url, NULL, 0, NULL, 0, NULL,
					    on_done, &r, NULL), 0);
	run_until(f->event, &r.calls, 1);
	assert_true(r.too_large);
	assert_int_not_equal(r.curl_code, 0);
	assert_string_equal(r.error, "response too large");
	teardown(f);
}

static void test_cancel_and_free(void **state)
{
	static const struct fake_response responses[] = {
		{ .action = FAKE_HANG }, { .action = FAKE_HANG },
	};
	struct fixture *f = setup(responses, 2, 0);
	struct result r1 = { 0 }, r2 = { 0 };
	struct http_request *h1 = NULL;
	uint64_t deadline = now_ms() + 10000;

	(void)state;
	assert_int_equal(http_request_start(f->client, "POST", f->server.url, NULL, 0, "{}", 2, NULL,
					    on_done, &r1, &h1), 0);
	assert_int_equal(http_request_start(f->client, "DELETE", f->server.url, NULL, 0, NULL, 0,
					    NULL, on_done, &r2, NULL), 0);
	while (fake_server_nrequests(&f->server) < 2 && now_ms() < deadline)
		assert_true(sd_event_run(f->event, 50000) >= 0);
	assert_int_equal(fake_server_nrequests(&f->server), 2);
	http_request_cancel(h1);
	assert_int_equal(http_client_in_flight(f->client), 1);
	http_client_free(f->client);
	f->client = NULL;
	assert_int_equal(r1.calls, 0);        /* cancelled: no callback */
	assert_int_equal(r2.calls, 1);        /* freed client: cancelled callback */
	assert_true(r2.cancelled);
	assert_string_equal(r2.error, "cancelled");
	teardown(f);
}

static void test_url_policy(void **state)
{
	static const struct {
		const char *url;
		int loopback;
	} cases[] = {
		{ "http://127.0.0.1:8080/x", 1 }, { "http://127.1.2.3/", 1 }, { "http://localhost", 1 },
		{ "HTTP://LOCALHOST:1/", 1 }, { "http://[::1]:9000/", 1 }, { "http://[::1]", 1 },
		{ "http://128.0.0.1/", 0 }, { "http://example.com/", 0 },
		{ "http://127.0.0.1@evil.example/", 0 }, { "http://localhost.evil.example/", 0 },
		{ "http://[::2]/", 0 }, { "https://127.0.0.1/", 0 }, { "ftp://127.0.0.1/", 0 },
		{ "http://", 0 }, { "", 0 },
	};
	struct http_client *c;
	sd_event *e;
	struct result r = { 0 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (http_url_is_loopback_http(cases[i].url) != cases[i].loopback)
			fail_msg("%s", cases[i].url);
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(http_client_new(e, NULL, &c), 0);
	assert_int_equal(http_request_start(c, "GET", "http://example.com/", NULL, 0, NULL, 0, NULL,
					    on_done, &r, NULL), -EPROTONOSUPPORT);
	assert_int_equal(http_request_start(c, "GET", "ftp://127.0.0.1/", NULL, 0, NULL, 0, NULL,
					    on_done, &r, NULL), -EPROTONOSUPPORT);
	assert_int_equal(http_request_start(c, "GET", "no-scheme", NULL, 0, NULL, 0, NULL,
					    on_done, &r, NULL), -EINVAL);
	{
		static const struct http_header evil[] = { { "X-A", "b\r\nInjected: 1" } };
		assert_int_equal(http_request_start(c, "GET", "http://127.0.0.1:1/", evil, 1, NULL,
						    0, NULL, on_done, &r, NULL), -EINVAL);
	}
	/* a closed loopback port: connection refused → error callback, not a hang */
	assert_int_equal(http_request_start(c, "GET", "http://127.0.0.1:1/", NULL, 0, NULL, 0, NULL,
					    on_done, &r, NULL), 0);
	run_until(e, &r.calls, 1);
	assert_int_equal(r.curl_code, CURLE_COULDNT_CONNECT);
	http_client_free(c);
	sd_event_unref(e);
}

/* Keeps a copy of the whole body, for bodies larger than struct result holds. */
struct big_result {
	int calls;
	int curl_code;
	long status;
	char *body;
	size_t body_len;
};

static void on_big_done(void *ud, const struct http_response *resp)
{
	struct big_result *r = ud;

	r->calls++;
	r->curl_code = resp->curl_code;
	r->status = resp->status;
	free(r->body);
	r->body = malloc(resp->body_len + 1);
	assert_non_null(r->body);
	memcpy(r->body, resp->body, resp->body_len + 1);     /* with its NUL */
	r->body_len = resp->body_len;
}

/*
 * http.c reads with a 4 kB curl buffer: a 200 kB body (under the 4 MiB cap) must arrive whole
 * and byte for byte, sent at once and sent in 1000-byte pieces (not a divisor of 4096) that
 * the server releases one per loop iteration, so the client sees many short reads.
 */
static void test_large_body_whole(void **state)
{
	enum { BIG = 200 * 1024 };
	static char big[BIG];
	static struct fake_response responses[] = {
		{ .status = 200, .body = big, .body_len = BIG },
		{ .status = 200, .body = big, .body_len = BIG, .chunk = 1000 },
	};
	struct fixture *f;
	struct big_result r = { 0 };
	uint64_t deadline;
	size_t i;
	int round;

	(void)state;
	/* every byte value, NULs included, in a pattern that does not repeat every 4 kB */
	for (i = 0; i < BIG; i++)
		big[i] = (char)(unsigned char)(i * 7 + (i >> 9));
	f = setup(responses, 2, 0);
	for (round = 1; round <= 2; round++) {
		assert_int_equal(http_request_start(f->client, "GET", f->server.url, NULL, 0, NULL,
						    0, NULL, on_big_done, &r, NULL), 0);
		deadline = now_ms() + 10000;
		while (r.calls < round && now_ms() < deadline) {
			fake_server_grant(&f->server);
			assert_true(sd_event_run(f->event, 10000) >= 0);
		}
		assert_int_equal(r.calls, round);
		assert_int_equal(r.curl_code, 0);
		assert_int_equal(r.status, 200);
		assert_int_equal(r.body_len, BIG);
		assert_memory_equal(r.body, big, BIG);
		assert_int_equal(r.body[BIG], '\0');
	}
	free(r.body);
	teardown(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_post_and_headers),
		cmocka_unit_test(test_hang_times_out),
		cmocka_unit_test(test_connection_dropped),
		cmocka_unit_test(test_body_over_cap),
		cmocka_unit_test(test_cancel_and_free),
		cmocka_unit_test(test_url_policy),
		cmocka_unit_test(test_large_body_whole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
