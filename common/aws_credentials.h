/*
 * aws_credentials.h — one set of AWS credentials, shared by the signer (sigv4.c), the
 * credential chain (creds.c) and the HTTP client (http.c).
 *
 * All strings are heap-allocated and owned by the struct; aws_credentials_clear() wipes and
 * frees them. session_token is NULL for long-term keys. expiration is a UNIX time in seconds,
 * 0 when the credentials do not expire.
 */
#ifndef IVS_AWS_CREDENTIALS_H
#define IVS_AWS_CREDENTIALS_H

#include <stdint.h>

struct aws_credentials {
	char *access_key_id;
	char *secret_access_key;
	char *session_token;
	int64_t expiration;
};

/* Deep copy; 0 or -ENOMEM. dst must be empty (zeroed). */
int aws_credentials_copy(struct aws_credentials *dst, const struct aws_credentials *src);
/* Zero the secrets, free the strings, leave the struct zeroed. */
void aws_credentials_clear(struct aws_credentials *c);

#endif
