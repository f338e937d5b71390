/*
 * sts_parse.h — the XML answers of AWS STS (query protocol, 2011-06-15) to AssumeRole and
 * AssumeRoleWithWebIdentity, parsed with libexpat. Pure: no clock, no I/O.
 *
 * Strict on purpose (the body crosses the network): at most STS_MAX_BODY bytes, elements at
 * most STS_MAX_DEPTH deep, every captured value at most STS_MAX_VALUE bytes and present at most
 * once, no DOCTYPE (so no entity declarations and no entity expansion), no text mixed with
 * elements in a captured value. Elements outside the ones read are skipped; namespaces are not
 * checked (the element names are).
 */
#ifndef IVS_STS_PARSE_H
#define IVS_STS_PARSE_H

#include <stddef.h>

#include "aws_credentials.h"

#define STS_MAX_BODY (64 * 1024)
#define STS_MAX_DEPTH 16
#define STS_MAX_VALUE (16 * 1024)

struct sts_answer {
	int is_error;                        /* 1: an <ErrorResponse> */
	struct aws_credentials credentials;  /* success: all four fields, expiration set */
	char assumed_role_arn[512];          /* success, may be "" */
	char error_code[128];                /* error: <Code>, never "" */
	char error_message[512];             /* error: <Message>, may be "" */
	char request_id[128];                /* both, may be "" */
};

/*
 * action is "AssumeRole" or "AssumeRoleWithWebIdentity": the root must be <actionResponse>
 * (credentials) or <ErrorResponse>. 0 with *out filled (either kind), or -EINVAL with a
 * one-line reason in why (never containing a secret), -ENOMEM. Clear *out with
 * sts_answer_clear() after a 0.
 */
int sts_parse_answer(const char *action, const char *body, size_t len, struct sts_answer *out,
		     char *why, size_t n);
void sts_answer_clear(struct sts_answer *a);

#endif
