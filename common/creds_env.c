/*
 * creds_env.c — credentials from the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN.
 */
#include <errno.h>
#include <stdio.h>

#include "creds_source.h"

int creds_env_try(struct aws_credentials *out, char *tried, size_t tn, char *why,
		  size_t n)
{
	const char *akid = creds_env_nonempty("AWS_ACCESS_KEY_ID");
	const char *secret = creds_env_nonempty("AWS_SECRET_ACCESS_KEY");

	if (akid == NULL && secret == NULL) {
		creds_err_append(tried, tn, "environment (AWS_ACCESS_KEY_ID unset)");
		return 0;
	}
	if (akid == NULL || secret == NULL) {
		snprintf(why, n, "environment: %s is set but %s is not",
			 akid ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
			 akid ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return -EINVAL;
	}
	if (creds_set_static(out, akid, secret, creds_env_nonempty("AWS_SESSION_TOKEN")) < 0)
		return -ENOMEM;
	return 1;
}

