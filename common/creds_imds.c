/*
 * creds_imds.c — EC2 instance metadata, IMDSv2 only (a session token, then the instance
 * profile's role and its credentials); AWS_EC2_METADATA_SERVICE_ENDPOINT and
 * AWS_EC2_METADATA_DISABLED as the SDKs read them.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "creds_source.h"

#define IMDS_DEFAULT_ENDPOINT "http://169.254.169.254"
#define IMDS_TOKEN_TTL "21600"

/* An IMDSv2 session token as a header list ("X-aws-ec2-metadata-token: ..."). Any failure is
 * final: falling back to v1 would hide a hop-limit problem and use the weaker protocol. */
static int imds_session(const char *endpoint, struct curl_slist **out, char *why, size_t n)
{
	struct curl_slist *hdrs = NULL;
	struct creds_body body = { 0 };
	char url[1024], *token_hdr = NULL;
	long status = 0;
	int r;

	*out = NULL;
	snprintf(url, sizeof(url), "%s/latest/api/token", endpoint);
	hdrs = curl_slist_append(NULL, "X-aws-ec2-metadata-token-ttl-seconds: " IMDS_TOKEN_TTL);
	if (hdrs == NULL)
		return -ENOMEM;
	r = creds_http_request("PUT", url, hdrs, 2000, &status, &body, why, n);
	curl_slist_free_all(hdrs);
	hdrs = NULL;
	if (r < 0) {
		char inner[200];
		snprintf(inner, sizeof(inner), "%s", why);
		snprintf(why, n, "token %s (in a container, the instance's PUT hop limit must be 2)",
			 inner);
		goto out;
	}
	if (status != 200 || body.len == 0) {
		snprintf(why, n, "token PUT %.300s: HTTP %ld", url, status);
		r = -EIO;
		goto out;
	}
	while (body.len > 0 && isspace((unsigned char)body.data[body.len - 1]))
		body.data[--body.len] = '\0';
	if (strpbrk(body.data, "\r\n") != NULL || asprintf(&token_hdr, "X-aws-ec2-metadata-token: %s",
							    body.data) < 0) {
		token_hdr = NULL;
		snprintf(why, n, "token PUT %.300s: unusable token", url);
		r = -EIO;
		goto out;
	}
	if ((*out = curl_slist_append(NULL, token_hdr)) == NULL)
		r = -ENOMEM;
out:
	creds_wipe_free(token_hdr);
	creds_body_free(&body);
	return r;
}

int creds_imds_fetch(const struct creds_source *src, struct aws_credentials *out, char *why,
		     size_t n)
{
	static const struct creds_json_shape shape = { "Token", 1, 1, 0 };
	struct curl_slist *hdrs = NULL;
	struct creds_body body = { 0 };
	char url[1024], role[256];
	long status = 0;
	int r;

	if ((r = imds_session(src->endpoint, &hdrs, why, n)) < 0)
		return r;

	/* 2. the instance profile's role name */
	snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/", src->endpoint);
	if ((r = creds_http_request("GET", url, hdrs, 2000, &status, &body, why, n)) < 0)
		goto out;
	if (status != 200 || body.len == 0) {
		snprintf(why, n, "GET %.300s: HTTP %ld%s", url, status,
			 status == 404 ? " (no instance profile attached?)" : "");
		r = -EIO;
		goto out;
	}
	size_t rl = strcspn(body.data, "\r\n");
	while (rl > 0 && isspace((unsigned char)body.data[rl - 1]))
		rl--;
	if (rl == 0 || rl >= sizeof(role) || strcspn(body.data, "/?#% ") < rl) {
		snprintf(why, n, "GET %.300s: malformed role name", url);
		r = -EIO;
		goto out;
	}
	memcpy(role, body.data, rl);
	role[rl] = '\0';
	creds_body_free(&body);

	/* 3. the role's credentials */
	snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/%s",
		 src->endpoint, role);
	if ((r = creds_http_request("GET", url, hdrs, 2000, &status, &body, why, n)) < 0)
		goto out;
	if (status != 200) {
		snprintf(why, n, "GET %.300s: HTTP %ld", url, status);
		r = -EIO;
		goto out;
	}
	if ((r = creds_parse_json(body.data ? body.data : "", body.len, &shape, out, why, n)) < 0) {
		char inner[160];
		snprintf(inner, sizeof(inner), "%s", why);
		snprintf(why, n, "GET %.300s: %s", url, inner);
	}
out:
	curl_slist_free_all(hdrs);
	creds_body_free(&body);
	return r;
}


static int imds_disabled(void)
{
	const char *v = creds_env_nonempty("AWS_EC2_METADATA_DISABLED");

	return v != NULL && strcasecmp(v, "true") == 0;
}

int creds_imds_configure(struct creds_source *src)
{
	const char *ep = creds_env_nonempty("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	size_t len;

	if (imds_disabled())
		return 0;
	src->kind = CREDS_SRC_IMDS;
	if ((src->endpoint = strdup(ep ? ep : IMDS_DEFAULT_ENDPOINT)) == NULL)
		return -ENOMEM;
	len = strlen(src->endpoint);
	while (len > 0 && src->endpoint[len - 1] == '/')
		src->endpoint[--len] = '\0';
	return 1;
}

int creds_imds_try(struct creds_source *src, struct aws_credentials *out, char *tried, size_t tn)
{
	char inner[512] = "";
	int r;

	if ((r = creds_imds_configure(src)) <= 0) {
		if (r == 0)
			creds_err_append(tried, tn, ", IMDS (disabled by AWS_EC2_METADATA_DISABLED)");
		return r;
	}
	if (creds_imds_fetch(src, out, inner, sizeof(inner)) < 0) {
		/* Not being on EC2 is the normal way to end the chain: a note, not a hard error. */
		creds_err_append(tried, tn, ", IMDS (%s)", inner);
		return 0;
	}
	return 1;
}

int creds_imds_region(char *out, size_t size, char *why, size_t n)
{
	struct creds_source src = { 0 };
	struct curl_slist *hdrs = NULL;
	struct creds_body body = { 0 };
	char url[1024];
	long status = 0;
	int r;

	if ((r = creds_imds_configure(&src)) <= 0) {
		snprintf(why, n, "IMDS is disabled by AWS_EC2_METADATA_DISABLED");
		return r == 0 ? -ENOENT : r;
	}
	if ((r = imds_session(src.endpoint, &hdrs, why, n)) < 0)
		goto out;
	snprintf(url, sizeof(url), "%s/latest/meta-data/placement/region", src.endpoint);
	if ((r = creds_http_request("GET", url, hdrs, 2000, &status, &body, why, n)) < 0)
		goto out;
	while (body.len > 0 && isspace((unsigned char)body.data[body.len - 1]))
		body.data[--body.len] = '\0';
	if (status != 200 || body.len == 0 || body.len >= size) {
		snprintf(why, n, "GET %.300s: HTTP %ld%s", url, status,
			 status == 200 ? " with an unusable answer" : "");
		r = -EIO;
		goto out;
	}
	memcpy(out, body.data, body.len + 1);
	r = 0;
out:
	curl_slist_free_all(hdrs);
	creds_body_free(&body);
	free(src.endpoint);
	return r;
}
