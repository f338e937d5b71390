/*
 * creds_sts.c — credentials from AWS STS: AssumeRole (a profile's role_arn with source_profile
 * or credential_source), signed with the base source's credentials, and
 * AssumeRoleWithWebIdentity (IRSA, a profile's web_identity_token_file), unsigned.
 *
 * Query protocol, API version 2011-06-15: a form POST to "/", the XML answer parsed by
 * sts_parse.c. Blocking (start-up and the refresh thread only).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "creds_source.h"
#include "http.h"
#include "sigv4.h"
#include "sts_parse.h"
#include "strbuf.h"

#define STS_ATTEMPTS 3
#define STS_TIMEOUT_MS 10000
#define TOKEN_FILE_MAX (32 * 1024)   /* STS takes web identity tokens up to 20,000 bytes */

/* ---- endpoint ---- */

int creds_sts_configure(struct creds_source *src, const char *region, char *why, size_t n)
{
	const char *env = "AWS_ENDPOINT_URL_STS";
	const char *url = creds_env_nonempty(env);
	char buf[512];
	size_t len;

	if (url == NULL) {
		env = "AWS_ENDPOINT_URL";
		url = creds_env_nonempty(env);
	}
	if (url != NULL) {
		if (strncmp(url, "https://", 8) != 0 && !http_url_is_loopback_http(url)) {
			snprintf(why, n, "%s must be an https:// URL (plain http:// only to a loopback "
					 "address): \"%.200s\"", env, url);
			return -EINVAL;
		}
		if (strchr(url + 8, '@') != NULL || strlen(url) >= sizeof(buf)) {
			snprintf(why, n, "%s: user info or an overlong URL is not supported", env);
			return -EINVAL;
		}
		snprintf(buf, sizeof(buf), "%s", url);
	} else if (region != NULL && region[0] != '\0') {
		snprintf(buf, sizeof(buf), "https://sts.%s.amazonaws.com", region);
	} else {
		snprintf(buf, sizeof(buf), "https://sts.amazonaws.com");
	}
	len = strlen(buf);
	while (len > 0 && buf[len - 1] == '/')
		buf[--len] = '\0';
	free(src->sts_url);
	free(src->sts_region);
	src->sts_url = strdup(buf);
	src->sts_region = strdup(region != NULL && region[0] != '\0' ? region : "us-east-1");
	return src->sts_url != NULL && src->sts_region != NULL ? 0 : -ENOMEM;
}

void creds_default_session_name(char *out, size_t n)
{
	char host[256] = "";
	size_t len;

	if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "host");
	host[sizeof(host) - 1] = '\0';
	/* RoleSessionName: [\w+=,.@-]{2,64} */
	for (char *c = host; *c != '\0'; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || strchr("_+=,.@-", *c) != NULL))
			*c = '-';
	snprintf(out, n, "ivs-autoscaler-%s", host);
	len = strlen(out);
	if (len > 64)
		out[64] = '\0';
}

/* ---- the request ---- */

static int form_add(struct strbuf *b, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";

	if (b->len > 0 && strbuf_append(b, "&", 1) < 0)
		return -ENOMEM;
	if (strbuf_append(b, name, strlen(name)) < 0 || strbuf_append(b, "=", 1) < 0)
		return -ENOMEM;
	for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
		char esc[3] = { '%', hex[*p >> 4], hex[*p & 15] };
		int plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
			    *p == '~';
		if ((plain ? strbuf_append(b, (const char *)p, 1) : strbuf_append(b, esc, 3)) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* "host" or "host:port", as curl sends it and as it must be signed. */
static int url_host(const char *url, char *out, size_t n)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL;
	int r = -EINVAL;

	if (u == NULL)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
			port = NULL;
		r = (size_t)snprintf(out, n, "%s%s%s", host, port ? ":" : "", port ? port : "") < n ?
			    0 : -ENAMETOOLONG;
	}
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return r;
}

static int add_header(struct curl_slist **list, const char *name, const char *value)
{
	char *line = NULL;
	struct curl_slist *t;

	if (asprintf(&line, "%s: %s", name, value) < 0)
		return -ENOMEM;
	t = curl_slist_append(*list, line);
	creds_wipe_free(line);
	if (t == NULL)
		return -ENOMEM;
	*list = t;
	return 0;
}

/*
 * One POST. signer NULL = unsigned. 0 with *ans (STS answered, success or error), -EIO for a
 * transport failure or an answer that is not STS XML (why says which).
 */
static int sts_post(const struct creds_source *src, const char *action, const char *form,
		    const struct aws_credentials *signer, struct sts_answer *ans, long *status,
		    char *why, size_t n)
{
	static const char ctype[] = "application/x-www-form-urlencoded; charset=utf-8";
	struct curl_slist *hdrs = NULL;
	struct sigv4_result sig = { 0 };
	struct creds_body body = { 0 };
	char url[600], host[300], amz_date[17], inner[256] = "";
	int r = -ENOMEM;

	snprintf(url, sizeof(url), "%s/", src->sts_url);
	if (add_header(&hdrs, "Content-Type", ctype) < 0 || add_header(&hdrs, "Accept", "text/xml") < 0)
		goto out;
	if (signer != NULL) {
		struct sigv4_header sh[4];
		size_t nh = 0;
		if ((r = url_host(url, host, sizeof(host))) < 0) {
			snprintf(why, n, "cannot take the host from %s", url);
			goto out;
		}
		sigv4_format_amz_date((long long)time(NULL), amz_date);
		sh[nh++] = (struct sigv4_header){ "content-type", ctype };
		sh[nh++] = (struct sigv4_header){ "host", host };
		sh[nh++] = (struct sigv4_header){ "x-amz-date", amz_date };
		if (signer->session_token != NULL && signer->session_token[0] != '\0')
			sh[nh++] = (struct sigv4_header){ "x-amz-security-token", signer->session_token };
		struct sigv4_request req = { .method = "POST", .path = "/", .headers = sh,
					     .nheaders = nh, .body = form, .body_len = strlen(form) };
		struct sigv4_params prm = { .credentials = signer, .region = src->sts_region,
					    .service = "sts", .amz_date = amz_date,
					    .normalize_path = 1, .double_encode = 1 };
		if ((r = sigv4_sign(&req, &prm, &sig)) < 0) {
			snprintf(why, n, "cannot sign the STS request: %s", strerror(-r));
			goto out;
		}
		r = -ENOMEM;
		/* The Host header as signed (curl would drop an explicit default port). */
		if (add_header(&hdrs, "Host", host) < 0 ||
		    add_header(&hdrs, "X-Amz-Date", amz_date) < 0 ||
		    add_header(&hdrs, "Authorization", sig.authorization) < 0 ||
		    (nh == 4 && add_header(&hdrs, "X-Amz-Security-Token", signer->session_token) < 0))
			goto out;
	}
	if ((r = creds_http_post(url, hdrs, form, strlen(form), STS_TIMEOUT_MS, status, &body, why,
				 n)) < 0)
		goto out;
	if ((r = sts_parse_answer(action, body.data, body.len, ans, inner, sizeof(inner))) < 0) {
		snprintf(why, n, "HTTP %ld with an answer that is not STS XML: %s", *status, inner);
		r = -EIO;
	}
out:
	sigv4_result_free(&sig);
	curl_slist_free_all(hdrs);
	creds_body_free(&body);
	return r;
}

static int retryable_code(const char *code)
{
	static const char *const codes[] = { "Throttling", "ThrottlingException",
					     "RequestLimitExceeded", "TooManyRequestsException",
					     "IDPCommunicationError", "InvalidIdentityToken",
					     "ServiceUnavailable", "InternalFailure", "InternalError" };

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strcmp(code, codes[i]) == 0)
			return 1;
	return 0;
}

static const char *hint_for(const char *code)
{
	if (strcmp(code, "AccessDenied") == 0)
		return " (does the role's trust policy allow the source identity, with this "
		       "ExternalId?)";
	if (strcmp(code, "ExpiredToken") == 0 || strcmp(code, "ExpiredTokenException") == 0)
		return " (the source credentials have expired)";
	if (strcmp(code, "RegionDisabledException") == 0)
		return " (STS is not activated in this region for the account; activate it in IAM "
		       "or set AWS_ENDPOINT_URL_STS)";
	if (strcmp(code, "InvalidIdentityToken") == 0)
		return " (the token file does not hold a token the role's identity provider accepts)";
	return "";
}

static int read_token_file(const char *path, char **out, char *why, size_t n)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t len;

	*out = NULL;
	if (f == NULL) {
		snprintf(why, n, "web identity token file %s: %s", path, strerror(errno));
		return -EIO;
	}
	if ((buf = malloc(TOKEN_FILE_MAX + 1)) == NULL) {
		fclose(f);
		return -ENOMEM;
	}
	len = fread(buf, 1, TOKEN_FILE_MAX + 1, f);
	fclose(f);
	if (len > TOKEN_FILE_MAX) {
		OPENSSL_cleanse(buf, TOKEN_FILE_MAX + 1);
		free(buf);
		snprintf(why, n, "web identity token file %s is larger than %d KiB", path,
			 TOKEN_FILE_MAX / 1024);
		return -EIO;
	}
	while (len > 0 && strchr(" \t\r\n", buf[len - 1]) != NULL)
		len--;
	buf[len] = '\0';
	if (len < 4 || memchr(buf, '\0', len) != NULL) {
		OPENSSL_cleanse(buf, len);
		free(buf);
		snprintf(why, n, "web identity token file %s holds no token", path);
		return -EIO;
	}
	*out = buf;
	return 0;
}

static int build_form(const struct creds_source *src, const char *action, const char *token,
		      struct strbuf *form)
{
	char dur[16];

	snprintf(dur, sizeof(dur), "%d", src->duration_seconds);
	if (form_add(form, "Action", action) < 0 || form_add(form, "Version", "2011-06-15") < 0 ||
	    form_add(form, "RoleArn", src->role_arn) < 0 ||
	    form_add(form, "RoleSessionName", src->session_name) < 0)
		return -ENOMEM;
	if (src->kind == CREDS_SRC_ASSUME_ROLE) {
		if ((src->external_id != NULL && form_add(form, "ExternalId", src->external_id) < 0) ||
		    form_add(form, "DurationSeconds", dur) < 0)
			return -ENOMEM;
	} else if (form_add(form, "WebIdentityToken", token) < 0) {
		return -ENOMEM;
	}
	return 0;
}

int creds_sts_fetch(const struct creds_source *src, struct aws_credentials *out, char *why,
		    size_t n)
{
	const char *action = src->kind == CREDS_SRC_ASSUME_ROLE ? "AssumeRole" :
			     "AssumeRoleWithWebIdentity";
	struct aws_credentials signer = { 0 };
	struct strbuf form;
	char *token = NULL, inner[512] = "", profile[128] = "";
	int r;

	memset(out, 0, sizeof(*out));
	strbuf_init(&form, 64 * 1024);
	if (src->profile != NULL)
		snprintf(profile, sizeof(profile), " (profile \"%.64s\")", src->profile);
	if (src->kind == CREDS_SRC_ASSUME_ROLE) {
		if ((r = creds_source_fetch(src->base, &signer, inner, sizeof(inner))) < 0) {
			snprintf(why, n, "source credentials for role %s%s (%s): %s", src->role_arn,
				 profile, creds_source_name(src->base->kind), inner);
			goto out;
		}
	} else if ((r = read_token_file(src->token_file, &token, why, n)) < 0) {
		goto out;
	}
	if ((r = build_form(src, action, token, &form)) < 0)
		goto out;
	for (int attempt = 1;; attempt++) {
		struct sts_answer ans;
		long status = 0;
		int again = 0;

		r = sts_post(src, action, strbuf_str(&form), src->kind == CREDS_SRC_ASSUME_ROLE ? &signer : NULL,
			     &ans, &status, inner, sizeof(inner));
		if (r == 0 && !ans.is_error && status == 200) {
			*out = ans.credentials;
			memset(&ans.credentials, 0, sizeof(ans.credentials));
			sts_answer_clear(&ans);
			break;
		}
		if (r == 0) {
			snprintf(why, n, "STS %s for role %s%s at %s: %s%s%s%s (HTTP %ld%s%s)", action,
				 src->role_arn, profile, src->sts_url,
				 ans.is_error ? ans.error_code : "no credentials in a successful answer",
				 ans.error_message[0] ? ": " : "", ans.error_message,
				 ans.is_error ? hint_for(ans.error_code) : "", status,
				 ans.request_id[0] ? ", request id " : "", ans.request_id);
			again = status >= 500 || (ans.is_error && retryable_code(ans.error_code));
			sts_answer_clear(&ans);
			r = -EACCES;
		} else if (r == -ENOMEM) {
			snprintf(why, n, "out of memory");
			break;
		} else {
			snprintf(why, n, "STS %s for role %s%s at %s: %s", action, src->role_arn, profile,
				 src->sts_url, inner);
			again = 1;
			r = -EIO;
		}
		if (!again || attempt >= STS_ATTEMPTS)
			break;
		/* 200 ms, 400 ms: throttling and network blips; the refresh thread backs off
		 * further between fetches. */
		struct timespec ts = { 0, 200000000L * attempt };
		nanosleep(&ts, NULL);
	}
out:
	aws_credentials_clear(&signer);
	creds_wipe_free(token);
	if (form.data != NULL)
		OPENSSL_cleanse(form.data, form.len);
	strbuf_free(&form);
	return r;
}

/* ---- web identity from the environment ---- */

int creds_web_identity_try(const struct creds_options *opts, struct creds_source *src,
			   struct aws_credentials *out, char *tried, size_t tn, char *why, size_t n)
{
	const char *file = creds_env_nonempty("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *role = creds_env_nonempty("AWS_ROLE_ARN");
	const char *session = creds_env_nonempty("AWS_ROLE_SESSION_NAME");
	char name[80];
	int r;

	if (file == NULL && role == NULL) {
		creds_err_append(tried, tn, ", web identity (AWS_WEB_IDENTITY_TOKEN_FILE and "
				 "AWS_ROLE_ARN unset)");
		return 0;
	}
	if (file == NULL || role == NULL) {
		snprintf(why, n, "web identity: %s is set but %s is not",
			 file ? "AWS_WEB_IDENTITY_TOKEN_FILE" : "AWS_ROLE_ARN",
			 file ? "AWS_ROLE_ARN" : "AWS_WEB_IDENTITY_TOKEN_FILE");
		return -EINVAL;
	}
	if (session == NULL)
		creds_default_session_name(name, sizeof(name));
	src->kind = CREDS_SRC_WEB_IDENTITY;
	src->duration_seconds = 3600;
	if ((src->role_arn = strdup(role)) == NULL || (src->token_file = strdup(file)) == NULL ||
	    (src->session_name = strdup(session ? session : name)) == NULL)
		return -ENOMEM;
	if ((r = creds_sts_configure(src, opts ? opts->region : NULL, why, n)) < 0)
		return r;
	return creds_sts_fetch(src, out, why, n) < 0 ? 2 : 1;
}
