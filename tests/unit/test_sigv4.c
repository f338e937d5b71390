/*
 * test_sigv4.c — SigV4 known answers embedded as facts (values from AWS's signing test suite
 * and from generated-json in ../shared/aws/sigv4-testsuite, which build/tests/sigv4-suite runs
 * in full), plus malformed input.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sigv4.h"

#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define DATE "20150830T123600Z"
#define STS_TOKEN                                                                                  \
	"AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxf" \
	"pSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KP" \
	"kyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBA" \
	"z+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

struct vector {
	const char *name;
	const char *method, *path, *query;
	struct sigv4_header headers[8];
	const char *body;
	const char *token;
	const char *region, *service;
	const char *signature;
	const char *canonical_request; /* NULL: checked only through the signature */
};

static const struct vector vectors[] = {
	{
		.name = "v4/get-vanilla",
		.method = "GET", .path = "/",
		.headers = { { "Host", "example.amazonaws.com" }, { "X-Amz-Date", DATE } },
		.region = "us-east-1", .service = "service",
		.signature = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
		.canonical_request = "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:" DATE "\n\n"
				     "host;x-amz-date\n"
				     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	},
	{
		.name = "v4/post-x-www-form-urlencoded",
		.method = "POST", .path = "/",
		.headers = { { "Content-Type", "application/x-www-form-urlencoded" },
			     { "Host", "example.amazonaws.com" },
			     { "Content-Length", "13" },
			     { "X-Amz-Date", DATE },
			     { "X-Amz-Content-Sha256",
			       "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e" } },
		.body = "Param1=value1",
		.region = "us-east-1", .service = "service",
		.signature = "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
	},
	{
		.name = "v4/get-vanilla-query-order-key-case",
		.method = "GET", .path = "/", .query = "Param2=value2&Param1=value1",
		.headers = { { "Host", "example.amazonaws.com" }, { "X-Amz-Date", DATE } },
		.region = "us-east-1", .service = "service",
		.signature = "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
	},
	{
		.name = "v4/get-vanilla-with-session-token",
		.method = "GET", .path = "/",
		.headers = { { "Host", "example.amazonaws.com" },
			     { "X-Amz-Date", DATE },
			     { "X-Amz-Security-Token",
			       "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267" } },
		.token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267",
		.region = "us-east-1", .service = "service",
		.signature = "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
	},
	{
		.name = "generated-json/post-restjson1-encoded-path-session-token",
		.method = "POST",
		.path = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-west-2%3A123456789012%3Afunction"
			"%3Amy-fn/invocations",
		.query = "Qualifier=%24LATEST",
		.headers = { { "Host", "lambda.us-west-2.amazonaws.com" },
			     { "Content-Type", "application/json" },
			     { "X-Amz-Invocation-Type", "RequestResponse" },
			     { "X-Amz-Date", DATE },
			     { "X-Amz-Security-Token", STS_TOKEN } },
		.body = "{\"key\":\"value with spaces\",\"n\":1}",
		.token = STS_TOKEN,
		.region = "us-west-2", .service = "lambda",
		.signature = "13d177dd0584d30a708afb77f688787532a78020fc0af3f7b947f948efbdb9b7",
	},
	{
		.name = "generated-json/ivs-realtime-liststages-session-token",
		.method = "POST", .path = "/ListStages",
		.headers = { { "Host", "ivsrealtime.us-east-1.amazonaws.com" },
			     { "Content-Type", "application/json" },
			     { "X-Amz-Date", DATE },
			     { "X-Amz-Security-Token", STS_TOKEN } },
		.body = "{\"maxResults\": 10}",
		.token = STS_TOKEN,
		.region = "us-east-1", .service = "ivs",
		.signature = "d46a4326f98e9a0203b7ec8fe94d482bce1ffccab8c349dfc6f6c810e4738f87",
		.canonical_request =
			"POST\n/ListStages\n\ncontent-type:application/json\n"
			"host:ivsrealtime.us-east-1.amazonaws.com\nx-amz-date:" DATE "\n"
			"x-amz-security-token:" STS_TOKEN "\n\n"
			"content-type;host;x-amz-date;x-amz-security-token\n"
			"f25de1706a650264c1de625e357f269543bd26ef04e5b5b00ae7d579a9082254",
	},
};

static size_t count_headers(const struct vector *v)
{
	size_t n = 0;

	while (n < 8 && v->headers[n].name != NULL)
		n++;
	return n;
}

static int sign_vector(const struct vector *v, struct sigv4_result *res)
{
	struct aws_credentials creds = {
		.access_key_id = (char *)AKID,
		.secret_access_key = (char *)SECRET,
		.session_token = (char *)v->token,
	};
	struct sigv4_request req = {
		.method = v->method, .path = v->path, .query = v->query,
		.headers = v->headers, .nheaders = count_headers(v),
		.body = v->body, .body_len = v->body ? strlen(v->body) : 0,
	};
	struct sigv4_params params = {
		.credentials = &creds, .region = v->region, .service = v->service,
		.amz_date = DATE, .normalize_path = 1, .double_encode = 1,
	};
	return sigv4_sign(&req, &params, res);
}

static void test_known_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		struct sigv4_result res;
		int r = sign_vector(&vectors[i], &res);
		if (r != 0)
			fail_msg("%s: sigv4_sign returned %d", vectors[i].name, r);
		if (strcmp(res.signature, vectors[i].signature) != 0)
			fail_msg("%s: signature %s, expected %s", vectors[i].name, res.signature,
				 vectors[i].signature);
		if (vectors[i].canonical_request != NULL)
			assert_string_equal(res.canonical_request, vectors[i].canonical_request);
		sigv4_result_free(&res);
	}
}

static void test_authorization_and_string_to_sign(void **state)
{
	struct sigv4_result res;

	(void)state;
	assert_int_equal(sign_vector(&vectors[0], &res), 0);
	assert_string_equal(res.authorization,
			    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
			    "aws4_request, SignedHeaders=host;x-amz-date, "
			    "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
	sigv4_result_free(&res);
	assert_null(res.authorization);

	assert_int_equal(sign_vector(&vectors[5], &res), 0);
	assert_string_equal(res.string_to_sign,
			    "AWS4-HMAC-SHA256\n" DATE "\n20150830/us-east-1/ivs/aws4_request\n"
			    "d6f8cda645333fa888069c7ea275769d745910bb2d4d184681391fadc9421cc3");
	sigv4_result_free(&res);
}

/* Known answers from the AWS documentation (see the suite's README, rule 7). */
static void test_signing_key(void **state)
{
	static const struct {
		const char *date, *expect;
	} keys[] = {
		{ "20120215", "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d" },
		{ "20150830", "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9" },
	};
	(void)state;
	for (size_t i = 0; i < 2; i++) {
		unsigned char key[32];
		char hex[65];
		static const char digits[] = "0123456789abcdef";
		assert_int_equal(sigv4_derive_signing_key(SECRET, keys[i].date, "us-east-1", "iam", key), 0);
		for (size_t j = 0; j < 32; j++) {
			hex[2 * j] = digits[key[j] >> 4];
			hex[2 * j + 1] = digits[key[j] & 0xf];
		}
		hex[64] = '\0';
		assert_string_equal(hex, keys[i].expect);
	}
	assert_int_equal(sigv4_derive_signing_key(NULL, "20150830", "r", "s", (unsigned char[32]){ 0 }),
			 -EINVAL);
}

/* Canonicalisation rules the vectors above do not all pin down. */
static void test_canonical_forms(void **state)
{
	static const struct {
		const char *path, *query, *header_value;
		int normalize, double_encode;
		const char *expect_prefix;
	} cases[] = {
		{ "", NULL, "x", 1, 1, "GET\n/\n\n" },
		{ "//a/./b/../c//", NULL, "x", 1, 1, "GET\n/a/c/\n\n" },
		{ "/a/../..", NULL, "x", 1, 1, "GET\n/\n\n" },
		{ "//a/./b", NULL, "x", 0, 1, "GET\n//a/./b\n\n" },
		{ "/a%3Ab", NULL, "x", 1, 1, "GET\n/a%253Ab\n\n" },
		{ "/a%3ab c", NULL, "x", 1, 0, "GET\n/a%3Ab%20c\n\n" },
		{ "/", "b=2&a=1&a=0", "x", 1, 1, "GET\n/\na=0&a=1&b=2\n" },
		{ "/", "k&x=%7e+y&&", "x", 1, 1, "GET\n/\nk=&x=~%2By\n" },
		{ "/", "%zz=1", "x", 1, 1, "GET\n/\n%25zz=1\n" },
		{ "/", NULL, "  a \t  b   c  ", 1, 1, "GET\n/\n\nhost:h\nx-amz-date:" DATE "\nx-v:a b c\n" },
	};
	struct aws_credentials creds = { .access_key_id = (char *)AKID,
					 .secret_access_key = (char *)SECRET };
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sigv4_header h[] = { { "Host", "h" }, { "X-Amz-Date", DATE },
					    { "X-V", cases[i].header_value } };
		struct sigv4_request req = { .method = "GET", .path = cases[i].path,
					     .query = cases[i].query, .headers = h, .nheaders = 3 };
		struct sigv4_params params = { .credentials = &creds, .region = "us-east-1",
					       .service = "ivs", .amz_date = DATE,
					       .normalize_path = cases[i].normalize,
					       .double_encode = cases[i].double_encode };
		struct sigv4_result res;
		assert_int_equal(sigv4_sign(&req, &params, &res), 0);
		if (strncmp(res.canonical_request, cases[i].expect_prefix,
			    strlen(cases[i].expect_prefix)) != 0)
			fail_msg("case %zu: canonical request\n%s\ndoes not start with\n%s", i,
				 res.canonical_request, cases[i].expect_prefix);
		sigv4_result_free(&res);
	}
}

static void test_malformed_input(void **state)
{
	struct aws_credentials creds = { .access_key_id = (char *)AKID,
					 .secret_access_key = (char *)SECRET };
	struct aws_credentials no_secret = { .access_key_id = (char *)AKID };
	struct aws_credentials bad_akid = { .access_key_id = (char *)"AK ID",
					    .secret_access_key = (char *)SECRET };
	struct aws_credentials with_token = { .access_key_id = (char *)AKID,
					      .secret_access_key = (char *)SECRET,
					      .session_token = (char *)"tok" };
	struct sigv4_header ok[] = { { "Host", "h" }, { "X-Amz-Date", DATE } };
	struct sigv4_header no_host[] = { { "X-Amz-Date", DATE } };
	struct sigv4_header no_date[] = { { "Host", "h" } };
	struct sigv4_header other_date[] = { { "Host", "h" }, { "X-Amz-Date", "20150830T123601Z" } };
	struct sigv4_header crlf[] = { { "Host", "h" }, { "X-Amz-Date", DATE }, { "X-A", "a\r\nX-B: b" } };
	struct sigv4_header bad_name[] = { { "Host", "h" }, { "X-Amz-Date", DATE }, { "X A", "a" } };
	struct sigv4_header empty_name[] = { { "Host", "h" }, { "X-Amz-Date", DATE }, { "", "a" } };
	struct sigv4_header null_value[] = { { "Host", "h" }, { "X-Amz-Date", NULL } };
	const struct {
		const char *what;
		const struct aws_credentials *creds;
		const struct sigv4_header *headers;
		size_t nheaders;
		const char *method, *path, *date, *region, *service;
		size_t body_len;
	} cases[] = {
		{ "NULL credentials", NULL, ok, 2, "GET", "/", DATE, "r", "s", 0 },
		{ "no secret", &no_secret, ok, 2, "GET", "/", DATE, "r", "s", 0 },
		{ "blank in key id", &bad_akid, ok, 2, "GET", "/", DATE, "r", "s", 0 },
		{ "token without header", &with_token, ok, 2, "GET", "/", DATE, "r", "s", 0 },
		{ "missing host", &creds, no_host, 1, "GET", "/", DATE, "r", "s", 0 },
		{ "missing x-amz-date", &creds, no_date, 1, "GET", "/", DATE, "r", "s", 0 },
		{ "x-amz-date differs", &creds, other_date, 2, "GET", "/", DATE, "r", "s", 0 },
		{ "CRLF in value", &creds, crlf, 3, "GET", "/", DATE, "r", "s", 0 },
		{ "blank in name", &creds, bad_name, 3, "GET", "/", DATE, "r", "s", 0 },
		{ "empty name", &creds, empty_name, 3, "GET", "/", DATE, "r", "s", 0 },
		{ "NULL value", &creds, null_value, 2, "GET", "/", DATE, "r", "s", 0 },
		{ "no headers", &creds, NULL, 0, "GET", "/", DATE, "r", "s", 0 },
		{ "bad date", &creds, ok, 2, "GET", "/", "2015-08-30T12:36:00Z", "r", "s", 0 },
		{ "month 13", &creds, ok, 2, "GET", "/", "20151330T123600Z", "r", "s", 0 },
		{ "NULL date", &creds, ok, 2, "GET", "/", NULL, "r", "s", 0 },
		{ "empty region", &creds, ok, 2, "GET", "/", DATE, "", "s", 0 },
		{ "slash in service", &creds, ok, 2, "GET", "/", DATE, "r", "a/b", 0 },
		{ "empty method", &creds, ok, 2, "", "/", DATE, "r", "s", 0 },
		{ "NULL path", &creds, ok, 2, "GET", NULL, DATE, "r", "s", 0 },
		{ "relative path", &creds, ok, 2, "GET", "a/b", DATE, "r", "s", 0 },
		{ "NULL body, length 5", &creds, ok, 2, "GET", "/", DATE, "r", "s", 5 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sigv4_request req = { .method = cases[i].method, .path = cases[i].path,
					     .headers = cases[i].headers,
					     .nheaders = cases[i].nheaders,
					     .body_len = cases[i].body_len };
		struct sigv4_params params = { .credentials = cases[i].creds,
					       .region = cases[i].region,
					       .service = cases[i].service,
					       .amz_date = cases[i].date, .normalize_path = 1,
					       .double_encode = 1 };
		struct sigv4_result res;
		int r = sigv4_sign(&req, &params, &res);
		if (r != -EINVAL)
			fail_msg("%s: expected -EINVAL, got %d", cases[i].what, r);
		assert_null(res.canonical_request);
		assert_null(res.authorization);
	}
	assert_int_equal(sigv4_sign(NULL, NULL, NULL), -EINVAL);
}

static void test_helpers(void **state)
{
	char d[17], h[65];

	(void)state;
	sigv4_format_amz_date(1440938160LL, d);
	assert_string_equal(d, DATE);
	sigv4_format_amz_date(0, d);
	assert_string_equal(d, "19700101T000000Z");
	sigv4_format_amz_date(400000000000LL, d); /* year > 9999: refused, not truncated */
	assert_string_equal(d, "00000000T000000Z");
	sigv4_sha256_hex("", 0, h);
	assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sigv4_sha256_hex("Param1=value1", 13, h);
	assert_string_equal(h, "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_vectors),
		cmocka_unit_test(test_authorization_and_string_to_sign),
		cmocka_unit_test(test_signing_key),
		cmocka_unit_test(test_canonical_forms),
		cmocka_unit_test(test_malformed_input),
		cmocka_unit_test(test_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
