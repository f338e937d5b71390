/*
 * test_sts_parse.c — the STS XML parser on AWS's documented answers (AssumeRole,
 * AssumeRoleWithWebIdentity, ErrorResponse) and on malformed, truncated, huge and hostile
 * bodies (DOCTYPE, entity expansion, external entities).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sts_parse.h"

/* The AssumeRole example of the STS API reference (with PackedPolicySize, SourceIdentity). */
static const char assume_role_doc[] =
	"<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
	"<AssumeRoleResult>\n"
	"  <SourceIdentity>DevUser123</SourceIdentity>\n"
	"  <AssumedRoleUser>\n"
	"    <Arn>arn:aws:sts::123456789012:assumed-role/demo/John</Arn>\n"
	"    <AssumedRoleId>ARO123EXAMPLE123:John</AssumedRoleId>\n"
	"  </AssumedRoleUser>\n"
	"  <Credentials>\n"
	"    <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>\n"
	"    <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>\n"
	"    <SessionToken>\n"
	"     AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW\n"
	"    </SessionToken>\n"
	"    <Expiration>2019-11-09T13:34:41Z</Expiration>\n"
	"  </Credentials>\n"
	"  <PackedPolicySize>6</PackedPolicySize>\n"
	"</AssumeRoleResult>\n"
	"<ResponseMetadata>\n"
	"  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>\n"
	"</ResponseMetadata>\n"
	"</AssumeRoleResponse>\n";

static const char web_identity_doc[] =
	"<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
	"  <AssumeRoleWithWebIdentityResult>\n"
	"    <SubjectFromWebIdentityToken>amzn1.account.AF6RHO7KZU5XRVQJGXK6HB56KR2A"
	"</SubjectFromWebIdentityToken>\n"
	"    <Audience>client.5498841531868486423.1548@apps.example.com</Audience>\n"
	"    <AssumedRoleUser>\n"
	"      <Arn>arn:aws:sts::123456789012:assumed-role/FederatedWebIdentityRole/app1</Arn>\n"
	"      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:app1</AssumedRoleId>\n"
	"    </AssumedRoleUser>\n"
	"    <Credentials>\n"
	"      <SessionToken>AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE</SessionToken>\n"
	"      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>\n"
	"      <Expiration>2014-10-24T23:00:23.359Z</Expiration>\n"
	"      <AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</AccessKeyId>\n"
	"    </Credentials>\n"
	"    <SourceIdentity>SourceIdentityValue</SourceIdentity>\n"
	"    <Provider>www.amazon.com</Provider>\n"
	"  </AssumeRoleWithWebIdentityResult>\n"
	"  <ResponseMetadata>\n"
	"    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>\n"
	"  </ResponseMetadata>\n"
	"</AssumeRoleWithWebIdentityResponse>\n";

static const char access_denied_doc[] =
	"<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
	"  <Error>\n"
	"    <Type>Sender</Type>\n"
	"    <Code>AccessDenied</Code>\n"
	"    <Message>User: arn:aws:iam::123456789012:user/u is not authorized to perform: "
	"sts:AssumeRole on resource: arn:aws:iam::111111111111:role/A</Message>\n"
	"  </Error>\n"
	"  <RequestId>4a0e3b1c-0000-4000-8000-000000000000</RequestId>\n"
	"</ErrorResponse>\n";

static const char secret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";

static void test_documented_assume_role(void **state)
{
	struct sts_answer a;
	char why[256];

	(void)state;
	assert_int_equal(sts_parse_answer("AssumeRole", assume_role_doc, strlen(assume_role_doc), &a,
					  why, sizeof(why)), 0);
	assert_false(a.is_error);
	assert_string_equal(a.credentials.access_key_id, "ASIAIOSFODNN7EXAMPLE");
	assert_string_equal(a.credentials.secret_access_key, secret);
	assert_string_equal(a.credentials.session_token,
			    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW");
	assert_int_equal(a.credentials.expiration, 1573306481);
	assert_string_equal(a.assumed_role_arn, "arn:aws:sts::123456789012:assumed-role/demo/John");
	assert_string_equal(a.request_id, "c6104cbe-af31-11e0-8154-cbc7ccf896c7");
	sts_answer_clear(&a);
	/* The same document is not an answer to the other action. */
	assert_int_equal(sts_parse_answer("AssumeRoleWithWebIdentity", assume_role_doc,
					  strlen(assume_role_doc), &a, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "unexpected root element <AssumeRoleResponse>"));
}

static void test_documented_web_identity(void **state)
{
	struct sts_answer a;
	char why[256];

	(void)state;
	assert_int_equal(sts_parse_answer("AssumeRoleWithWebIdentity", web_identity_doc,
					  strlen(web_identity_doc), &a, why, sizeof(why)), 0);
	assert_string_equal(a.credentials.access_key_id, "ASgeIAIOSFODNN7EXAMPLE");
	assert_string_equal(a.credentials.session_token, "AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE");
	assert_int_equal(a.credentials.expiration, 1414191623);
	sts_answer_clear(&a);
}

static void test_error_responses(void **state)
{
	static const struct {
		const char *body, *code;
	} cases[] = {
		{ access_denied_doc, "AccessDenied" },
		{ "<ErrorResponse><Error><Type>Sender</Type><Code>RegionDisabledException</Code>"
		  "<Message>STS is not activated in this region</Message></Error></ErrorResponse>",
		  "RegionDisabledException" },
		{ "<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message>"
		  "</Error></ErrorResponse>", "Throttling" },
		{ "<ErrorResponse><Error><Code>ExpiredToken</Code></Error></ErrorResponse>",
		  "ExpiredToken" },
	};
	struct sts_answer a;
	char why[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(sts_parse_answer("AssumeRole", cases[i].body, strlen(cases[i].body),
						  &a, why, sizeof(why)), 0);
		assert_true(a.is_error);
		assert_string_equal(a.error_code, cases[i].code);
		assert_null(a.credentials.access_key_id);
		sts_answer_clear(&a);
	}
	assert_int_equal(sts_parse_answer("AssumeRole", access_denied_doc, strlen(access_denied_doc),
					  &a, why, sizeof(why)), 0);
	assert_non_null(strstr(a.error_message, "is not authorized to perform: sts:AssumeRole"));
	assert_string_equal(a.request_id, "4a0e3b1c-0000-4000-8000-000000000000");
	sts_answer_clear(&a);
}

static void expect_bad(const char *action, const char *body, size_t len, const char *why_part)
{
	struct sts_answer a;
	char why[256] = "";
	int r = sts_parse_answer(action, body, len, &a, why, sizeof(why));

	if (r != -EINVAL)
		fail_msg("expected -EINVAL for \"%.60s\", got %d", body ? body : "(null)", r);
	if (why_part != NULL && strstr(why, why_part) == NULL)
		fail_msg("\"%s\" does not contain \"%s\"", why, why_part);
	assert_true(why[0] != '\0');
	assert_null(strstr(why, secret));
	assert_null(a.credentials.access_key_id);
}

static void test_malformed(void **state)
{
	static const struct {
		const char *body, *why;
	} cases[] = {
		{ "{\"Credentials\": {}}", "malformed XML" },
		{ "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
		  "<SecretAccessKey>S</SecretAccessKey><SessionToken>T</SessionToken>"
		  "</Credentials></AssumeRoleResult></AssumeRoleResponse>",
		  "<Credentials><Expiration> is missing" },
		{ "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
		  "<AccessKeyId>B</AccessKeyId></Credentials></AssumeRoleResult></AssumeRoleResponse>",
		  "<AccessKeyId> appears twice" },
		{ "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A<b/></AccessKeyId>"
		  "</Credentials></AssumeRoleResult></AssumeRoleResponse>", "inside a value" },
		{ "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
		  "<SecretAccessKey>S</SecretAccessKey><SessionToken>T</SessionToken>"
		  "<Expiration>tomorrow</Expiration></Credentials></AssumeRoleResult>"
		  "</AssumeRoleResponse>", "<Expiration> is not an ISO 8601 time" },
		{ "<AssumeRoleResponse><Credentials><AccessKeyId>A</AccessKeyId>"
		  "<SecretAccessKey>S</SecretAccessKey><SessionToken>T</SessionToken>"
		  "<Expiration>2019-11-09T13:34:41Z</Expiration></Credentials></AssumeRoleResponse>",
		  "is missing or empty" },  /* Credentials outside the Result wrapper */
		{ "<ErrorResponse><Error><Message>m</Message></Error></ErrorResponse>",
		  "without <Error><Code>" },
		{ "<Other/>", "unexpected root element <Other>" },
		{ "<AssumeRoleResponse></AssumeRoleResponse><x/>", "malformed XML" },
		{ "<AssumeRoleResponse>\xff\xfe</AssumeRoleResponse>", "malformed XML" },
		{ "", "empty body" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_bad("AssumeRole", cases[i].body, strlen(cases[i].body), cases[i].why);
	expect_bad("AssumeRole", NULL, 0, "empty body");
	expect_bad("GetCallerIdentity", assume_role_doc, strlen(assume_role_doc), "unknown STS action");
}

/* Every prefix of a good answer that stops before its root is closed is refused. */
static void test_truncated(void **state)
{
	size_t end = strlen(assume_role_doc) - strlen("\n");

	(void)state;
	for (size_t len = 1; len < end; len++)
		expect_bad("AssumeRole", assume_role_doc, len, NULL);
}

static void test_huge(void **state)
{
	size_t big = STS_MAX_BODY + 1;
	char *body = malloc(big + 1);
	char *value = malloc(STS_MAX_VALUE + 200);
	char *deep = malloc(4096);
	size_t len = 0;

	(void)state;
	assert_non_null(body);
	assert_non_null(value);
	assert_non_null(deep);
	memset(body, ' ', big);
	memcpy(body, "<AssumeRoleResponse>", 20);
	body[big] = '\0';
	expect_bad("AssumeRole", body, big, "body larger than 64 KiB");

	len = (size_t)snprintf(value, STS_MAX_VALUE + 200, "%s",
			       "<AssumeRoleResponse><AssumeRoleResult><Credentials><SessionToken>");
	memset(value + len, 'A', STS_MAX_VALUE + 1);
	len += STS_MAX_VALUE + 1;
	len += (size_t)snprintf(value + len, 100, "</SessionToken></Credentials></AssumeRoleResult>"
				"</AssumeRoleResponse>");
	expect_bad("AssumeRole", value, len, "a value longer than 16384 bytes");

	len = (size_t)snprintf(deep, 4096, "<AssumeRoleResponse>");
	for (int i = 0; i < STS_MAX_DEPTH + 2; i++)
		len += (size_t)snprintf(deep + len, 4096 - len, "<x>");
	expect_bad("AssumeRole", deep, len, "elements nested deeper than 16");
	free(body);
	free(value);
	free(deep);
}

static void test_hostile(void **state)
{
	static const char *const cases[] = {
		/* billion laughs */
		"<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n"
		" <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
		" <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n]>\n"
		"<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>&lol3;</AccessKeyId>"
		"</Credentials></AssumeRoleResult></AssumeRoleResponse>",
		/* external entity */
		"<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
		"<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>&x;</AccessKeyId>"
		"</Credentials></AssumeRoleResult></AssumeRoleResponse>",
		/* external DTD */
		"<!DOCTYPE AssumeRoleResponse SYSTEM \"http://127.0.0.1:1/x.dtd\">"
		"<AssumeRoleResponse/>",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_bad("AssumeRole", cases[i], strlen(cases[i]), "DOCTYPE");
	/* An undeclared entity is an XML error, not an expansion. */
	expect_bad("AssumeRole", "<AssumeRoleResponse>&x;</AssumeRoleResponse>",
		   strlen("<AssumeRoleResponse>&x;</AssumeRoleResponse>"), "malformed XML");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_documented_assume_role),
		cmocka_unit_test(test_documented_web_identity),
		cmocka_unit_test(test_error_responses),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_huge),
		cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
