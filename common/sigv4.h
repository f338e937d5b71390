/*
 * sigv4.h — AWS Signature Version 4 (header signing), pure: no clock, no I/O, no globals.
 *
 * The caller supplies the request exactly as it will be sent (method, the path as it appears on
 * the wire, the raw query string, all headers that are to be signed, the body) and the signing
 * parameters (credentials, region, service, the x-amz-date timestamp). sigv4_sign() computes the
 * canonical request, the string to sign, the signature and the Authorization header value.
 *
 * The caller must include "host" and "x-amz-date" among the headers (and
 * "x-amz-security-token" when the credentials carry a session token); sigv4_sign() signs every
 * header it is given, lower-casing names, trimming and folding values as the spec requires.
 *
 * Path handling follows the AWS test suite's flags:
 *   normalize_path: remove dot segments and duplicate slashes (every service but S3);
 *   double_encode:  URI-encode each path segment once more for the canonical URI (every
 *                   service but S3; this is what makes restJson1 labels such as %3A appear as
 *                   %253A in the canonical request). Without it, existing %XX escapes are kept
 *                   (hex upper-cased) and only other reserved bytes are encoded.
 * The query string is decoded, then each name and value re-encoded with the unreserved set
 * A-Za-z0-9-._~ and sorted by name, then value ('+' is a literal plus, not a space).
 */
#ifndef IVS_SIGV4_H
#define IVS_SIGV4_H

#include <stddef.h>

#include "aws_credentials.h"

struct sigv4_header {
	const char *name;
	const char *value;
};

struct sigv4_request {
	const char *method;              /* "POST" */
	const char *path;                /* "/ListStages", as sent on the wire (already encoded) */
	const char *query;               /* raw query string without '?', or NULL */
	const struct sigv4_header *headers;
	size_t nheaders;
	const void *body;
	size_t body_len;
};

struct sigv4_params {
	const struct aws_credentials *credentials;
	const char *region;              /* "us-east-1" */
	const char *service;             /* "ivs" for IVS Real-time */
	const char *amz_date;            /* "20150830T123600Z" — the same value as the x-amz-date header */
	int normalize_path;
	int double_encode;
};

struct sigv4_result {
	char *canonical_request;         /* heap, owned */
	char *string_to_sign;            /* heap, owned */
	char signature[65];              /* lower-case hex */
	char *authorization;             /* heap, owned: "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." */
};

/* 0, or -EINVAL (missing/malformed input) / -ENOMEM. On error *out is left empty. */
int sigv4_sign(const struct sigv4_request *req, const struct sigv4_params *params,
	       struct sigv4_result *out);
void sigv4_result_free(struct sigv4_result *r);

/* Format a UNIX time as an x-amz-date value ("YYYYMMDDTHHMMSSZ", 17 bytes with NUL). */
void sigv4_format_amz_date(long long unix_seconds, char out[17]);

/*
 * The SigV4 signing key HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date8), region), service),
 * "aws4_request"); date8 is "YYYYMMDD". 0, or -EINVAL / -ENOMEM / -EIO.
 */
int sigv4_derive_signing_key(const char *secret_access_key, const char *date8, const char *region,
			     const char *service, unsigned char out[32]);

/* Lower-case hex SHA-256 of data (65 bytes with NUL). */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);

#endif
