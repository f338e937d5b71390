/*
 * creds_container.c — the container credentials endpoint (ECS task roles, EKS Pod Identity):
 * AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI, with the authorization token from
 * AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (read at every fetch) or _TOKEN.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "creds_source.h"

#define CONTAINER_HOST_URL "http://169.254.170.2"

static int loopback_or_ecs_host(const char *host)
{
	unsigned char a4[4], a6[16], want[16];
	char buf[64];
	size_t n = strlen(host);

	if (strcasecmp(host, "localhost") == 0 || strcmp(host, "169.254.170.2") == 0 ||
	    strcmp(host, "169.254.170.23") == 0)
		return 1;
	if (inet_pton(AF_INET, host, a4) == 1)
		return a4[0] == 127;
	if (n < 3 || n >= sizeof(buf) + 2 || host[0] != '[' || host[n - 1] != ']')
		return 0;
	memcpy(buf, host + 1, n - 2);
	buf[n - 2] = '\0';
	if (inet_pton(AF_INET6, buf, a6) != 1)
		return 0;
	if (inet_pton(AF_INET6, "::1", want) == 1 && memcmp(a6, want, 16) == 0)
		return 1;
	return inet_pton(AF_INET6, "fd00:ec2::23", want) == 1 && memcmp(a6, want, 16) == 0;
}

/* FULL_URI: https anywhere; plain http only to loopback or the ECS/EKS agent addresses. */
static int check_full_uri(const char *url, char *why, size_t n)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int ok = 0;

	if (u == NULL)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		snprintf(why, n, "AWS_CONTAINER_CREDENTIALS_FULL_URI is not a URL");
		goto out;
	}
	if (strcasecmp(scheme, "https") == 0 ||
	    (strcasecmp(scheme, "http") == 0 && loopback_or_ecs_host(host)))
		ok = 1;
	else
		snprintf(why, n, "AWS_CONTAINER_CREDENTIALS_FULL_URI host %s is not allowed "
				 "(http only to loopback or the ECS/EKS agent)", host);
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok ? 0 : -EINVAL;
}

static int read_token_file(const char *path, char **out, char *why, size_t n)
{
	FILE *f = fopen(path, "re");
	char buf[16384];
	size_t len;

	*out = NULL;
	if (f == NULL) {
		snprintf(why, n, "%s: %s", path, strerror(errno));
		return -EINVAL;
	}
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	while (len > 0 && isspace((unsigned char)buf[len - 1]))
		buf[--len] = '\0';
	*out = strdup(buf);
	OPENSSL_cleanse(buf, sizeof(buf));
	return *out == NULL ? -ENOMEM : 0;
}

int creds_container_fetch(const struct creds_source *src, struct aws_credentials *out, char *why,
			  size_t n)
{
	static const struct creds_json_shape shape = { "Token", 0, 0, 0 };
	struct curl_slist *hdrs = NULL, *tmp;
	struct creds_body body = { 0 };
	char *token = NULL, *auth = NULL;
	long status = 0;
	int r;

	if (src->auth_token_file != NULL) {
		if ((r = read_token_file(src->auth_token_file, &token, why, n)) < 0)
			return r;
	} else if (src->auth_token != NULL && (token = strdup(src->auth_token)) == NULL) {
		return -ENOMEM;
	}
	r = -ENOMEM;
	if ((tmp = curl_slist_append(hdrs, "Accept: application/json")) == NULL)
		goto out;
	hdrs = tmp;
	if (token != NULL) {
		if (strpbrk(token, "\r\n") != NULL) {
			snprintf(why, n, "authorization token contains a line break");
			r = -EINVAL;
			goto out;
		}
		if (asprintf(&auth, "Authorization: %s", token) < 0) {
			auth = NULL;
			goto out;
		}
		if ((tmp = curl_slist_append(hdrs, auth)) == NULL)
			goto out;
		hdrs = tmp;
	}
	if ((r = creds_http_request("GET", src->url, hdrs, 2000, &status, &body, why, n)) < 0)
		goto out;
	if (status != 200) {
		snprintf(why, n, "GET %s: HTTP %ld", src->url, status);
		r = -EIO;
		goto out;
	}
	if ((r = creds_parse_json(body.data ? body.data : "", body.len, &shape, out, why, n)) < 0) {
		char inner[160];
		snprintf(inner, sizeof(inner), "%s", why);
		snprintf(why, n, "GET %s: %s", src->url, inner);
	}
out:
	curl_slist_free_all(hdrs);
	creds_wipe_free(auth);
	creds_wipe_free(token);
	creds_body_free(&body);
	return r;
}


int creds_container_configure(struct creds_source *src, char *why, size_t n)
{
	const char *rel = creds_env_nonempty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = creds_env_nonempty("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *tok_file = creds_env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tok = creds_env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	char inner[512] = "";
	int r;

	if (rel == NULL && full == NULL)
		return 0;
	src->kind = CREDS_SRC_CONTAINER;
	if (rel != NULL) {
		if (rel[0] != '/') {
			snprintf(why, n, "container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must "
					 "start with '/'");
			return -EINVAL;
		}
		if (asprintf(&src->url, "%s%s", CONTAINER_HOST_URL, rel) < 0) {
			src->url = NULL;
			return -ENOMEM;
		}
	} else {
		if ((r = check_full_uri(full, inner, sizeof(inner))) < 0) {
			snprintf(why, n, "container: %s", inner);
			return r;
		}
		if ((src->url = strdup(full)) == NULL)
			return -ENOMEM;
	}
	if ((tok_file != NULL && (src->auth_token_file = strdup(tok_file)) == NULL) ||
	    (tok_file == NULL && tok != NULL && (src->auth_token = strdup(tok)) == NULL))
		return -ENOMEM;
	return 1;
}

int creds_container_try(struct creds_source *src, struct aws_credentials *out, char *tried,
			size_t tn, char *why, size_t n)
{
	char inner[512] = "";
	int r;

	if ((r = creds_container_configure(src, why, n)) <= 0) {
		if (r == 0)
			creds_err_append(tried, tn, ", container (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI "
					 "and _FULL_URI unset; EKS Pod Identity sets _FULL_URI and "
					 "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)");
		return r;
	}
	if ((r = creds_container_fetch(src, out, inner, sizeof(inner))) < 0) {
		snprintf(why, n, "container: %s", inner);
		return r;
	}
	return 1;
}
