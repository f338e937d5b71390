/*
 * aws_credentials.c — copying and wiping one set of AWS credentials.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "aws_credentials.h"

static void wipe_free(char **s)
{
	if (*s != NULL) {
		OPENSSL_cleanse(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

static int dup_opt(char **dst, const char *src)
{
	*dst = NULL;
	if (src == NULL)
		return 0;
	*dst = strdup(src);
	return *dst == NULL ? -ENOMEM : 0;
}

int aws_credentials_copy(struct aws_credentials *dst, const struct aws_credentials *src)
{
	memset(dst, 0, sizeof(*dst));
	if (src == NULL)
		return -EINVAL;
	if (dup_opt(&dst->access_key_id, src->access_key_id) < 0 ||
	    dup_opt(&dst->secret_access_key, src->secret_access_key) < 0 ||
	    dup_opt(&dst->session_token, src->session_token) < 0) {
		aws_credentials_clear(dst);
		return -ENOMEM;
	}
	dst->expiration = src->expiration;
	return 0;
}

void aws_credentials_clear(struct aws_credentials *c)
{
	if (c == NULL)
		return;
	wipe_free(&c->access_key_id);
	wipe_free(&c->secret_access_key);
	wipe_free(&c->session_token);
	c->expiration = 0;
}
