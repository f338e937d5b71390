/*
 * awserr.h — classify a failed AWS call into a small enum the controller can act on.
 *
 * IVS Real-time is restJson1: the error type travels in the x-amzn-ErrorType response header,
 * the text in the body member "exceptionMessage". Other front ends (API Gateway throttling, a
 * proxy) may put the type in the body's "__type" or "code" instead, or send nothing useful at
 * all; the HTTP status then decides. See shared/research/aws-errors-retries.md §2-§3.
 *
 * Pure: no I/O, no globals. Every string copied into struct aws_error is truncated to fit.
 */
#ifndef IVS_AWSERR_H
#define IVS_AWSERR_H

#include <stddef.h>

enum aws_error_kind {
	AWS_OK = 0,
	AWS_ERR_THROTTLED,      /* 429 or a throttling code: retry with backoff */
	AWS_ERR_NOT_FOUND,      /* 404 */
	AWS_ERR_CONFLICT,       /* 409 */
	AWS_ERR_QUOTA,          /* 402 ServiceQuotaExceededException: hard limit, never retried */
	AWS_ERR_VALIDATION,     /* 400 and any other unclassified 4xx */
	AWS_ERR_ACCESS_DENIED,  /* 403, including PendingVerification */
	AWS_ERR_SERVER,         /* 5xx */
	AWS_ERR_NETWORK,        /* no usable response: connect/send/receive failed */
	AWS_ERR_TIMEOUT,        /* connect or total timeout */
	AWS_ERR_CANCELLED,      /* cancelled locally (shutdown) */
	AWS_ERR_PARSE,          /* a 2xx whose body we cannot use (not JSON, wrong types, too large) */
	AWS_ERR_LOCAL,          /* our side: bad URL, TLS verification failure, no credentials, ENOMEM */
	AWS_ERR_KIND_COUNT
};

struct aws_error {
	enum aws_error_kind kind;
	int http_status;        /* 0 when there was no HTTP response */
	char code[64];          /* sanitised error code, e.g. "ThrottlingException"; may be "" */
	char message[256];
	char request_id[80];    /* x-amzn-RequestId, for logs and AWS support */
};

/* Stable lower-case names for logs and metric labels ("throttled", "not_found", ...). */
const char *aws_error_kind_name(enum aws_error_kind kind);

/* Reset to AWS_OK with empty strings. */
void aws_error_clear(struct aws_error *err);

/* Set kind and a printf-style message (code and request id left as they are). */
void aws_error_set(struct aws_error *err, enum aws_error_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Smithy's sanitising rule: keep what is before the first ':', then what is after the last
 * '#'. "aws.ivs#ConflictException:http://x/" -> "ConflictException". Truncates to out_size.
 */
void aws_error_sanitize_code(const char *in, char *out, size_t out_size);

/* 1 when code is one of the AWS SDK throttling codes (ThrottlingException, SlowDown, ...). */
int aws_error_code_is_throttling(const char *code);

/*
 * Classify an HTTP response. 2xx gives AWS_OK. Otherwise the code is taken from
 * error_type_header (may be NULL), else the JSON body's "__type", "code" or "Code"; the message
 * from "exceptionMessage", "message" or "Message"; a body that is not JSON is tolerated (the
 * status alone decides). request_id may be NULL.
 */
void aws_error_from_response(struct aws_error *err, int http_status,
			     const char *error_type_header, const char *request_id,
			     const char *body, size_t body_len);

/*
 * Classify a libcurl transport failure (curl_code is a CURLcode, never CURLE_OK):
 * timeouts -> AWS_ERR_TIMEOUT; connection-level failures -> AWS_ERR_NETWORK; failures that
 * retrying cannot fix (certificate, malformed URL, unsupported protocol, out of memory) ->
 * AWS_ERR_LOCAL. detail (may be NULL) is curl's error buffer.
 */
void aws_error_from_curl(struct aws_error *err, int curl_code, const char *detail);

#endif
