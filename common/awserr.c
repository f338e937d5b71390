/*
 * awserr.c — see awserr.h.
 */
#include "awserr.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const kind_names[AWS_ERR_KIND_COUNT] = {
	[AWS_OK] = "ok",
	[AWS_ERR_THROTTLED] = "throttled",
	[AWS_ERR_NOT_FOUND] = "not_found",
	[AWS_ERR_CONFLICT] = "conflict",
	[AWS_ERR_QUOTA] = "quota_exceeded",
	[AWS_ERR_VALIDATION] = "validation",
	[AWS_ERR_ACCESS_DENIED] = "access_denied",
	[AWS_ERR_SERVER] = "server",
	[AWS_ERR_NETWORK] = "network",
	[AWS_ERR_TIMEOUT] = "timeout",
	[AWS_ERR_CANCELLED] = "cancelled",
	[AWS_ERR_PARSE] = "parse",
	[AWS_ERR_LOCAL] = "local",
};

/* botocore retries/standard.py _THROTTLED_ERROR_CODES == aws-sdk-go-v2 DefaultThrottleErrorCodes. */
static const char *const throttling_codes[] = {
	"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
	"TooManyRequestsException", "ProvisionedThroughputExceededException",
	"TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
	"LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
	"EC2ThrottledException",
};

/* The IVS Real-time modeled errors (service-2.json), by code. */
static const struct {
	const char *code;
	enum aws_error_kind kind;
} modeled_codes[] = {
	{ "ValidationException", AWS_ERR_VALIDATION },
	{ "ServiceQuotaExceededException", AWS_ERR_QUOTA },
	{ "AccessDeniedException", AWS_ERR_ACCESS_DENIED },
	{ "PendingVerification", AWS_ERR_ACCESS_DENIED },
	{ "ResourceNotFoundException", AWS_ERR_NOT_FOUND },
	{ "ConflictException", AWS_ERR_CONFLICT },
	{ "InternalServerException", AWS_ERR_SERVER },
};

const char *aws_error_kind_name(enum aws_error_kind kind)
{
	if ((unsigned)kind >= AWS_ERR_KIND_COUNT)
		return "unknown";
	return kind_names[kind];
}

static void copy_bounded(char *dst, size_t size, const char *src, size_t len)
{
	if (size == 0)
		return;
	if (len >= size)
		len = size - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

void aws_error_clear(struct aws_error *err)
{
	memset(err, 0, sizeof(*err));
	err->kind = AWS_OK;
}

void aws_error_set(struct aws_error *err, enum aws_error_kind kind, const char *fmt, ...)
{
	va_list ap;

	err->kind = kind;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

void aws_error_sanitize_code(const char *in, char *out, size_t out_size)
{
	const char *colon, *hash, *start = in;
	size_t len;

	if (out_size == 0)
		return;
	if (in == NULL) {
		out[0] = '\0';
		return;
	}
	colon = strchr(in, ':');
	len = colon ? (size_t)(colon - in) : strlen(in);
	/* the last '#' before the cut, as botocore's rsplit('#', 1) */
	hash = memrchr(in, '#', len);
	if (hash != NULL) {
		start = hash + 1;
		len -= (size_t)(start - in);
	}
	/* trim surrounding blanks that some proxies add to header values */
	while (len > 0 && (*start == ' ' || *start == '\t')) {
		start++;
		len--;
	}
	while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t' ||
			   start[len - 1] == '\r' || start[len - 1] == '\n'))
		len--;
	copy_bounded(out, out_size, start, len);
}

int aws_error_code_is_throttling(const char *code)
{
	size_t i;

	if (code == NULL || code[0] == '\0')
		return 0;
	for (i = 0; i < sizeof(throttling_codes) / sizeof(throttling_codes[0]); i++)
		if (strcmp(code, throttling_codes[i]) == 0)
			return 1;
	return 0;
}

static enum aws_error_kind kind_from_status(int status)
{
	switch (status) {
	case 400: return AWS_ERR_VALIDATION;
	case 402: return AWS_ERR_QUOTA;
	case 403: return AWS_ERR_ACCESS_DENIED;
	case 404: return AWS_ERR_NOT_FOUND;
	case 409: return AWS_ERR_CONFLICT;
	case 429: return AWS_ERR_THROTTLED;
	default: break;
	}
	if (status >= 500)
		return AWS_ERR_SERVER;
	if (status >= 400)
		return AWS_ERR_VALIDATION;
	/* 1xx/3xx: we never follow redirects; an unexpected status is the server's fault */
	return AWS_ERR_SERVER;
}

static const char *json_string_member(json_t *obj, const char *const *names)
{
	json_t *v;

	for (; *names != NULL; names++) {
		v = json_object_get(obj, *names);
		if (json_is_string(v))
			return json_string_value(v);
	}
	return NULL;
}

void aws_error_from_response(struct aws_error *err, int http_status,
			     const char *error_type_header, const char *request_id,
			     const char *body, size_t body_len)
{
	static const char *const code_names[] = { "__type", "code", "Code", NULL };
	static const char *const message_names[] = { "exceptionMessage", "message", "Message", NULL };
	json_t *root = NULL;
	const char *raw_code = NULL, *msg = NULL;
	size_t i;

	aws_error_clear(err);
	err->http_status = http_status;
	if (request_id != NULL)
		copy_bounded(err->request_id, sizeof(err->request_id), request_id,
			     strlen(request_id));
	if (http_status >= 200 && http_status <= 299)
		return;

	if (body != NULL && body_len > 0) {
		/* a non-JSON error body (HTML from a proxy) is normal: ignore it */
		root = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, NULL);
		if (root != NULL && !json_is_object(root)) {
			json_decref(root);
			root = NULL;
		}
	}
	if (error_type_header != NULL && error_type_header[0] != '\0')
		raw_code = error_type_header;
	else if (root != NULL)
		raw_code = json_string_member(root, code_names);
	if (root != NULL)
		msg = json_string_member(root, message_names);

	aws_error_sanitize_code(raw_code, err->code, sizeof(err->code));
	if (err->code[0] == '\0' && http_status >= 500)
		snprintf(err->code, sizeof(err->code), "%d", http_status);
	if (msg != NULL)
		copy_bounded(err->message, sizeof(err->message), msg, strlen(msg));
	else
		snprintf(err->message, sizeof(err->message), "HTTP %d", http_status);

	if (http_status == 429 || aws_error_code_is_throttling(err->code)) {
		err->kind = AWS_ERR_THROTTLED;
		goto out;
	}
	for (i = 0; i < sizeof(modeled_codes) / sizeof(modeled_codes[0]); i++) {
		if (strcmp(err->code, modeled_codes[i].code) == 0) {
			err->kind = modeled_codes[i].kind;
			goto out;
		}
	}
	err->kind = kind_from_status(http_status);
out:
	json_decref(root);
}

void aws_error_from_curl(struct aws_error *err, int curl_code, const char *detail)
{
	enum aws_error_kind kind;

	aws_error_clear(err);
	switch (curl_code) {
	case CURLE_OPERATION_TIMEDOUT:
		kind = AWS_ERR_TIMEOUT;
		break;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_OUT_OF_MEMORY:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_NOT_BUILT_IN:
		kind = AWS_ERR_LOCAL;
		break;
	default:
		/* resolve/connect/send/recv/partial/HTTP2/TLS handshake: connection-level, transient */
		kind = AWS_ERR_NETWORK;
		break;
	}
	aws_error_set(err, kind, "%s", detail != NULL && detail[0] != '\0' ? detail :
		      curl_easy_strerror((CURLcode)curl_code));
	snprintf(err->code, sizeof(err->code), "curl:%d", curl_code);
}
