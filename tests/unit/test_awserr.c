/*
 * test_awserr.c — every classification path of awserr.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <curl/curl.h>

#include "awserr.h"

static void test_sanitize(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "FooError", "FooError" },
		{ "FooError:http://internal.amazon.com/coral/com.amazon.coral.validate/", "FooError" },
		{ "aws.protocoltests.restjson#FooError", "FooError" },
		{ "aws.protocoltests.restjson#FooError:http://internal.amazon.com/coral/", "FooError" },
		{ "a#b#ConflictException", "ConflictException" },
		{ " ValidationException \r\n", "ValidationException" },
		{ "", "" },
		{ ":", "" },
		{ "#", "" },
		{ "ns#", "" },
	};
	char out[64];
	char tiny[4];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		aws_error_sanitize_code(cases[i].in, out, sizeof(out));
		assert_string_equal(out, cases[i].want);
	}
	aws_error_sanitize_code(NULL, out, sizeof(out));
	assert_string_equal(out, "");
	aws_error_sanitize_code("ThrottlingException", tiny, sizeof(tiny));
	assert_string_equal(tiny, "Thr");
}

struct response_case {
	int status;
	const char *header;
	const char *body;
	enum aws_error_kind kind;
	const char *code;
	const char *message;
};

static void test_from_response_table(void **state)
{
	static const struct response_case cases[] = {
		{ 200, NULL, "{}", AWS_OK, "", "" },
		{ 204, "ValidationException", NULL, AWS_OK, "", "" },
		/* modeled IVS errors: header + exceptionMessage */
		{ 400, "ValidationException:http://internal.amazon.com/coral/", "{\"exceptionMessage\":\"bad arn\"}",
		  AWS_ERR_VALIDATION, "ValidationException", "bad arn" },
		{ 402, "ServiceQuotaExceededException", "{\"exceptionMessage\":\"quota\"}",
		  AWS_ERR_QUOTA, "ServiceQuotaExceededException", "quota" },
		{ 403, "AccessDeniedException", "{}", AWS_ERR_ACCESS_DENIED, "AccessDeniedException", "HTTP 403" },
		{ 403, "PendingVerification", "{}", AWS_ERR_ACCESS_DENIED, "PendingVerification", "HTTP 403" },
		{ 404, "ResourceNotFoundException", "{\"exceptionMessage\":\"no stage\"}",
		  AWS_ERR_NOT_FOUND, "ResourceNotFoundException", "no stage" },
		{ 409, "ConflictException", "{\"exceptionMessage\":\"busy\"}", AWS_ERR_CONFLICT, "ConflictException", "busy" },
		{ 500, "InternalServerException", "{}", AWS_ERR_SERVER, "InternalServerException", "HTTP 500" },
		/* throttling: 429 whatever the body, or a throttling code whatever the status */
		{ 429, NULL, NULL, AWS_ERR_THROTTLED, "", "HTTP 429" },
		{ 429, NULL, "<html>Too Many</html>", AWS_ERR_THROTTLED, "", "HTTP 429" },
		{ 400, "ThrottlingException", "{\"message\":\"Rate exceeded\"}", AWS_ERR_THROTTLED, "ThrottlingException", "Rate exceeded" },
		{ 400, NULL, "{\"__type\":\"com.amazonaws#TooManyRequestsException\",\"Message\":\"slow\"}",
		  AWS_ERR_THROTTLED, "TooManyRequestsException", "slow" },
		{ 503, "SlowDown", NULL, AWS_ERR_THROTTLED, "SlowDown", "HTTP 503" },
		/* header wins over body */
		{ 409, "ConflictException", "{\"__type\":\"ValidationException\",\"message\":\"m\"}",
		  AWS_ERR_CONFLICT, "ConflictException", "m" },
		/* body fallbacks: __type, then code, then Code */
		{ 404, NULL, "{\"code\":\"ResourceNotFoundException\"}", AWS_ERR_NOT_FOUND, "ResourceNotFoundException", "HTTP 404" },
		{ 404, NULL, "{\"Code\":\"ResourceNotFoundException\"}", AWS_ERR_NOT_FOUND, "ResourceNotFoundException", "HTTP 404" },
		{ 400, "", "{\"__type\":\"aws#ConflictException:x\"}", AWS_ERR_CONFLICT, "ConflictException", "HTTP 400" },
		/* message precedence */
		{ 400, NULL, "{\"exceptionMessage\":\"a\",\"message\":\"b\",\"Message\":\"c\"}", AWS_ERR_VALIDATION, "", "a" },
		{ 400, NULL, "{\"message\":\"b\",\"Message\":\"c\"}", AWS_ERR_VALIDATION, "", "b" },
		{ 400, NULL, "{\"message\":7,\"Message\":\"c\"}", AWS_ERR_VALIDATION, "", "c" },
		/* status alone */
		{ 502, NULL, "<html>bad gateway</html>", AWS_ERR_SERVER, "502", "HTTP 502" },
		{ 504, NULL, "", AWS_ERR_SERVER, "504", "HTTP 504" },
		{ 418, NULL, "", AWS_ERR_VALIDATION, "", "HTTP 418" },
		{ 301, NULL, "", AWS_ERR_SERVER, "", "HTTP 301" },
		/* malformed bodies never crash and never override the status */
		{ 404, NULL, "{\"__type\":", AWS_ERR_NOT_FOUND, "", "HTTP 404" },
		{ 404, NULL, "[1,2,3]", AWS_ERR_NOT_FOUND, "", "HTTP 404" },
		{ 404, NULL, "\"ResourceNotFoundException\"", AWS_ERR_NOT_FOUND, "", "HTTP 404" },
		{ 409, NULL, "{\"__type\":42,\"code\":[\"x\"]}", AWS_ERR_CONFLICT, "", "HTTP 409" },
		{ 400, NULL, "{\"a\":1,\"a\":2}", AWS_ERR_VALIDATION, "", "HTTP 400" },
		/* an unknown code falls back to the status */
		{ 403, "UnrecognizedClientException", "{}", AWS_ERR_ACCESS_DENIED, "UnrecognizedClientException", "HTTP 403" },
	};
	struct aws_error err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct response_case *c = &cases[i];

		aws_error_from_response(&err, c->status, c->header, "req-1", c->body,
					c->body ? strlen(c->body) : 0);
		if (err.kind != c->kind || strcmp(err.code, c->code) != 0 ||
		    strcmp(err.message, c->message) != 0)
			fail_msg("case %zu: got kind=%s code=%s message=%s", i,
				 aws_error_kind_name(err.kind), err.code, err.message);
		assert_int_equal(err.http_status, c->status);
		assert_string_equal(err.request_id, "req-1");
	}
}

static void test_long_values_truncated(void **state)
{
	char body[2048], header[512];
	struct aws_error err;

	(void)state;
	memset(header, 'A', sizeof(header) - 1);
	header[sizeof(header) - 1] = '\0';
	snprintf(body, sizeof(body), "{\"exceptionMessage\":\"%0*d\"}", 1000, 7);
	aws_error_from_response(&err, 400, header, header, body, strlen(body));
	assert_int_equal(strlen(err.code), sizeof(err.code) - 1);
	assert_int_equal(strlen(err.message), sizeof(err.message) - 1);
	assert_int_equal(strlen(err.request_id), sizeof(err.request_id) - 1);
	aws_error_from_response(&err, 400, NULL, NULL, NULL, 0);
	assert_string_equal(err.request_id, "");
}

static void test_from_curl(void **state)
{
	static const struct {
		int code;
		enum aws_error_kind kind;
	} cases[] = {
		{ CURLE_OPERATION_TIMEDOUT, AWS_ERR_TIMEOUT },
		{ CURLE_COULDNT_CONNECT, AWS_ERR_NETWORK },
		{ CURLE_COULDNT_RESOLVE_HOST, AWS_ERR_NETWORK },
		{ CURLE_GOT_NOTHING, AWS_ERR_NETWORK },
		{ CURLE_RECV_ERROR, AWS_ERR_NETWORK },
		{ CURLE_SEND_ERROR, AWS_ERR_NETWORK },
		{ CURLE_PARTIAL_FILE, AWS_ERR_NETWORK },
		{ CURLE_SSL_CONNECT_ERROR, AWS_ERR_NETWORK },
		{ CURLE_PEER_FAILED_VERIFICATION, AWS_ERR_LOCAL },
		{ CURLE_URL_MALFORMAT, AWS_ERR_LOCAL },
		{ CURLE_UNSUPPORTED_PROTOCOL, AWS_ERR_LOCAL },
		{ CURLE_OUT_OF_MEMORY, AWS_ERR_LOCAL },
	};
	struct aws_error err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		aws_error_from_curl(&err, cases[i].code, NULL);
		assert_int_equal(err.kind, cases[i].kind);
		assert_int_equal(err.http_status, 0);
		assert_true(err.message[0] != '\0');
	}
	aws_error_from_curl(&err, CURLE_COULDNT_CONNECT, "Failed to connect to 127.0.0.1");
	assert_string_equal(err.message, "Failed to connect to 127.0.0.1");
	assert_string_equal(err.code, "curl:7");
}

static void test_kind_names(void **state)
{
	int k;

	(void)state;
	for (k = 0; k < AWS_ERR_KIND_COUNT; k++) {
		const char *name = aws_error_kind_name((enum aws_error_kind)k);
		assert_non_null(name);
		assert_string_not_equal(name, "unknown");
	}
	assert_string_equal(aws_error_kind_name(AWS_ERR_THROTTLED), "throttled");
	assert_string_equal(aws_error_kind_name((enum aws_error_kind)99), "unknown");
	assert_true(aws_error_code_is_throttling("ThrottlingException"));
	assert_true(aws_error_code_is_throttling("LimitExceededException"));
	assert_false(aws_error_code_is_throttling("ServiceQuotaExceededException"));
	assert_false(aws_error_code_is_throttling(""));
	assert_false(aws_error_code_is_throttling(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sanitize),
		cmocka_unit_test(test_from_response_table),
		cmocka_unit_test(test_long_values_truncated),
		cmocka_unit_test(test_from_curl),
		cmocka_unit_test(test_kind_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
