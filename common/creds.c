/*
 * creds.c — the AWS credentials chain (see creds.h for the order and the rules) and the
 * cached provider that refreshes expiring credentials in a background thread.
 *
 * Facts and the SDK behaviour this follows: ../shared/research/aws-credentials.md.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "creds.h"
#include "ini.h"
#include "log.h"

extern char **environ;

#define CONTAINER_HOST_URL "http://169.254.170.2"
#define IMDS_DEFAULT_ENDPOINT "http://169.254.169.254"
#define IMDS_TOKEN_TTL "21600"
#define MAX_BODY (64 * 1024)
#define MAX_STDERR 4096
#define MAX_ARGS 64
#define PROCESS_TIMEOUT_MS 10000
/* Refresh this long before expiry: aws-c-auth's 5 minutes; 15 for IMDS, whose credentials
 * EC2 rotates at least 5 minutes ahead (botocore's advisory window). */
#define REFRESH_WINDOW 300
#define REFRESH_WINDOW_IMDS 900
#define BACKOFF_MAX_S 60

enum source_kind { SRC_ENV, SRC_FILES, SRC_PROCESS, SRC_CONTAINER, SRC_IMDS };

static const char *const source_names[] = {
	[SRC_ENV] = "environment",
	[SRC_FILES] = "shared-files",
	[SRC_PROCESS] = "credential-process",
	[SRC_CONTAINER] = "container",
	[SRC_IMDS] = "imds",
};

/* What a refresh needs to fetch again. */
struct source {
	enum source_kind kind;
	char *command;          /* credential_process */
	char *url;              /* container */
	char *auth_token;       /* container, literal */
	char *auth_token_file;  /* container, read on every fetch */
	char *endpoint;         /* IMDS base URL, no trailing '/' */
};

struct creds_provider {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	int has_thread, stop, wake, refreshing;
	struct aws_credentials creds;
	struct source src;
	time_t (*now)(void);
};

/* ---- small helpers ---- */

static void wipe_free(char *s)
{
	if (s != NULL) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

static time_t default_now(void)
{
	return time(NULL);
}

/* Append "fmt" to a ", "-separated list in err. */
static void err_append(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void err_append(char *err, size_t errlen, const char *fmt, ...)
{
	size_t used = strnlen(err, errlen);
	va_list ap;

	if (used + 1 >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + used, errlen - used, fmt, ap);
	va_end(ap);
}

static int digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int creds_parse_time(const char *s, int64_t *out)
{
	int year, mon, day, hour, min, sec, oh = 0, om = 0, sign = 0;
	struct tm tm = { 0 }, check;
	const char *p;
	time_t t;

	if (s == NULL || strlen(s) < 20)
		return -EINVAL;
	if (digits(s, 4, &year) < 0 || s[4] != '-' || digits(s + 5, 2, &mon) < 0 || s[7] != '-' ||
	    digits(s + 8, 2, &day) < 0 || (s[10] != 'T' && s[10] != 't') ||
	    digits(s + 11, 2, &hour) < 0 || s[13] != ':' || digits(s + 14, 2, &min) < 0 ||
	    s[16] != ':' || digits(s + 17, 2, &sec) < 0)
		return -EINVAL;
	p = s + 19;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		sign = 0;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && digits(p + 1, 2, &oh) == 0 &&
		   p[3] == ':' && digits(p + 4, 2, &om) == 0 && oh < 24 && om < 60) {
		sign = *p == '+' ? 1 : -1;
	} else {
		return -EINVAL;
	}
	if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
		return -EINVAL;
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec == 60 ? 59 : sec;
	t = timegm(&tm);
	/* timegm normalises 31 February into March; such a date is malformed, not a time. */
	if (t == (time_t)-1 || gmtime_r(&t, &check) == NULL || check.tm_mday != day ||
	    check.tm_mon != mon - 1)
		return -EINVAL;
	*out = (int64_t)t - sign * (int64_t)(oh * 3600 + om * 60);
	return 0;
}

/* ---- JSON credential documents (process, container, IMDS) ---- */

struct json_shape {
	const char *token_key;   /* "SessionToken" (process) or "Token" */
	int need_token, need_expiration, need_version;
};

static int take_string(json_t *root, const char *key, int required, const char **out,
		       char *why, size_t n)
{
	json_t *v = json_object_get(root, key);

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (required) {
			snprintf(why, n, "%s missing", key);
			return -EINVAL;
		}
		return 0;
	}
	if (!json_is_string(v)) {
		snprintf(why, n, "%s is not a string", key);
		return -EINVAL;
	}
	*out = json_string_value(v);
	if (required && (*out)[0] == '\0') {
		snprintf(why, n, "%s is empty", key);
		return -EINVAL;
	}
	return 0;
}

static int parse_creds_json(const char *body, size_t len, const struct json_shape *shape,
			    struct aws_credentials *out, char *why, size_t n)
{
	json_error_t jerr;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	const char *akid, *secret, *token, *exp, *code;
	struct aws_credentials c = { 0 };
	int r = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (root == NULL) {
		snprintf(why, n, "not JSON: %s", jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		snprintf(why, n, "not a JSON object");
		goto out;
	}
	if (shape->need_version) {
		json_t *v = json_object_get(root, "Version");
		if (!json_is_integer(v) || json_integer_value(v) != 1) {
			snprintf(why, n, "Version is not 1");
			goto out;
		}
	}
	/* IMDS answers 200 with an error document when the role cannot be used. */
	if (take_string(root, "Code", 0, &code, why, n) < 0)
		goto out;
	if (code != NULL && strcmp(code, "Success") != 0) {
		snprintf(why, n, "Code is \"%.40s\"", code);
		goto out;
	}
	if (take_string(root, "AccessKeyId", 1, &akid, why, n) < 0 ||
	    take_string(root, "SecretAccessKey", 1, &secret, why, n) < 0 ||
	    take_string(root, shape->token_key, shape->need_token, &token, why, n) < 0 ||
	    take_string(root, "Expiration", shape->need_expiration, &exp, why, n) < 0)
		goto out;
	if (exp != NULL && creds_parse_time(exp, &c.expiration) < 0) {
		snprintf(why, n, "Expiration \"%.40s\" is not an RFC 3339 time", exp);
		goto out;
	}
	c.access_key_id = strdup(akid);
	c.secret_access_key = strdup(secret);
	c.session_token = token != NULL && token[0] != '\0' ? strdup(token) : NULL;
	if (c.access_key_id == NULL || c.secret_access_key == NULL ||
	    (token != NULL && token[0] != '\0' && c.session_token == NULL)) {
		snprintf(why, n, "out of memory");
		aws_credentials_clear(&c);
		r = -ENOMEM;
		goto out;
	}
	*out = c;
	r = 0;
out:
	json_decref(root);
	return r;
}

/* ---- HTTP (container, IMDS): blocking easy handles with short timeouts ---- */

struct body {
	char *data;
	size_t len;
	int too_big;
};

static size_t body_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct body *b = userdata;
	size_t n = size * nmemb;
	char *nd;

	if (n > MAX_BODY - b->len) {
		b->too_big = 1;
		return 0;
	}
	nd = realloc(b->data, b->len + n + 1);
	if (nd == NULL)
		return 0;
	b->data = nd;
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static void body_free(struct body *b)
{
	if (b->data != NULL)
		OPENSSL_cleanse(b->data, b->len);
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* 0 with the status and body, or -EIO with why. Redirects and proxies are never followed:
 * the metadata endpoints are link-local and must not be reached through anything else. */
static int http_request(const char *method, const char *url, struct curl_slist *headers,
			long total_ms, long *status, struct body *out, char *why, size_t n)
{
	CURL *h = curl_easy_init();
	CURLcode rc;
	int r = -EIO;

	memset(out, 0, sizeof(*out));
	*status = 0;
	if (h == NULL) {
		snprintf(why, n, "curl_easy_init failed");
		return -ENOMEM;
	}
	if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_NOPROXY, "*") != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, total_ms) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, out) != CURLE_OK) {
		snprintf(why, n, "curl_easy_setopt failed");
		goto out;
	}
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		snprintf(why, n, "%s %s: %s", method, url,
			 out->too_big ? "response larger than 64 KiB" : curl_easy_strerror(rc));
		goto out;
	}
	if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status) != CURLE_OK) {
		snprintf(why, n, "%s %s: no status", method, url);
		goto out;
	}
	r = 0;
out:
	if (r < 0)
		body_free(out);
	curl_easy_cleanup(h);
	return r;
}

/* ---- container endpoint ---- */

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

static int fetch_container(const struct source *src, struct aws_credentials *out, char *why,
			   size_t n)
{
	static const struct json_shape shape = { "Token", 0, 0, 0 };
	struct curl_slist *hdrs = NULL, *tmp;
	struct body body = { 0 };
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
	if ((r = http_request("GET", src->url, hdrs, 2000, &status, &body, why, n)) < 0)
		goto out;
	if (status != 200) {
		snprintf(why, n, "GET %s: HTTP %ld", src->url, status);
		r = -EIO;
		goto out;
	}
	if ((r = parse_creds_json(body.data ? body.data : "", body.len, &shape, out, why, n)) < 0) {
		char inner[160];
		snprintf(inner, sizeof(inner), "%s", why);
		snprintf(why, n, "GET %s: %s", src->url, inner);
	}
out:
	curl_slist_free_all(hdrs);
	wipe_free(auth);
	wipe_free(token);
	body_free(&body);
	return r;
}

/* ---- EC2 instance metadata, v2 only ---- */

static int fetch_imds(const struct source *src, struct aws_credentials *out, char *why, size_t n)
{
	static const struct json_shape shape = { "Token", 1, 1, 0 };
	struct curl_slist *hdrs = NULL;
	struct body body = { 0 };
	char url[1024], *token_hdr = NULL, role[256];
	long status = 0;
	int r;

	/* 1. session token (IMDSv2). Any failure is final: falling back to v1 would hide a
	 *    hop-limit problem and use the weaker protocol. */
	snprintf(url, sizeof(url), "%s/latest/api/token", src->endpoint);
	hdrs = curl_slist_append(NULL, "X-aws-ec2-metadata-token-ttl-seconds: " IMDS_TOKEN_TTL);
	if (hdrs == NULL)
		return -ENOMEM;
	r = http_request("PUT", url, hdrs, 2000, &status, &body, why, n);
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
	body_free(&body);
	if ((hdrs = curl_slist_append(NULL, token_hdr)) == NULL) {
		r = -ENOMEM;
		goto out;
	}

	/* 2. the instance profile's role name */
	snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/", src->endpoint);
	if ((r = http_request("GET", url, hdrs, 2000, &status, &body, why, n)) < 0)
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
	body_free(&body);

	/* 3. the role's credentials */
	snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/%s",
		 src->endpoint, role);
	if ((r = http_request("GET", url, hdrs, 2000, &status, &body, why, n)) < 0)
		goto out;
	if (status != 200) {
		snprintf(why, n, "GET %.300s: HTTP %ld", url, status);
		r = -EIO;
		goto out;
	}
	if ((r = parse_creds_json(body.data ? body.data : "", body.len, &shape, out, why, n)) < 0) {
		char inner[160];
		snprintf(inner, sizeof(inner), "%s", why);
		snprintf(why, n, "GET %.300s: %s", url, inner);
	}
out:
	curl_slist_free_all(hdrs);
	wipe_free(token_hdr);
	body_free(&body);
	return r;
}

/* ---- credential_process ---- */

/* Split like POSIX shlex (what botocore does): blanks separate, '...' literal, "..." with
 * \" \\ \$ \` escapes, \x outside quotes. No expansion of any kind. */
static int split_command(const char *cmd, char **argv, size_t max, size_t *argc)
{
	const char *s = cmd;
	size_t n = 0;

	*argc = 0;
	while (*s != '\0') {
		char *word, *w;
		int have = 0;
		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		if (*s == '\0')
			break;
		if (n + 1 >= max)
			goto toolong;
		word = w = malloc(strlen(s) + 1);
		if (word == NULL)
			goto nomem;
		argv[n++] = word;
		while (*s != '\0' && *s != ' ' && *s != '\t' && *s != '\n') {
			have = 1;
			if (*s == '\\') {
				s++;
				if (*s == '\0')
					goto bad;
				*w++ = *s++;
			} else if (*s == '\'') {
				s++;
				while (*s != '\0' && *s != '\'')
					*w++ = *s++;
				if (*s++ != '\'')
					goto bad;
			} else if (*s == '"') {
				s++;
				while (*s != '\0' && *s != '"') {
					if (*s == '\\' && s[1] != '\0' && strchr("\"\\$`", s[1]) != NULL)
						s++;
					*w++ = *s++;
				}
				if (*s++ != '"')
					goto bad;
			} else {
				*w++ = *s++;
			}
		}
		(void)have;
		*w = '\0';
	}
	argv[n] = NULL;
	*argc = n;
	return n == 0 ? -EINVAL : 0;
toolong:
bad:
	for (size_t i = 0; i < n; i++)
		free(argv[i]);
	argv[0] = NULL;
	return -EINVAL;
nomem:
	for (size_t i = 0; i < n; i++)
		free(argv[i]);
	argv[0] = NULL;
	return -ENOMEM;
}

static long long monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read from both pipes until EOF on both or the deadline. Output beyond the caps is an error. */
static int drain_pipes(int outfd, int errfd, struct body *out, char *errbuf, size_t errcap,
		       long long deadline)
{
	size_t errlen = 0;
	int open_out = 1, open_err = 1;

	while (open_out || open_err) {
		struct pollfd pfd[2] = { { open_out ? outfd : -1, POLLIN, 0 },
					 { open_err ? errfd : -1, POLLIN, 0 } };
		long long left = deadline - monotonic_ms();
		char buf[4096];
		ssize_t k;
		if (left <= 0)
			return -ETIMEDOUT;
		int pr = poll(pfd, 2, (int)(left > 1000 ? 1000 : left));
		if (pr < 0 && errno != EINTR)
			return -errno;
		if (pr <= 0)
			continue;
		if (open_out && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			k = read(outfd, buf, sizeof(buf));
			if (k <= 0)
				open_out = k < 0 && errno == EINTR;
			else if (body_write(buf, 1, (size_t)k, out) != (size_t)k)
				return -EFBIG;
		}
		if (open_err && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			k = read(errfd, buf, sizeof(buf));
			if (k <= 0) {
				open_err = k < 0 && errno == EINTR;
			} else if (errlen + 1 < errcap) {
				size_t c = (size_t)k < errcap - 1 - errlen ? (size_t)k : errcap - 1 - errlen;
				memcpy(errbuf + errlen, buf, c);
				errlen += c;
				errbuf[errlen] = '\0';
			}
		}
	}
	return 0;
}

static int fetch_process(const struct source *src, struct aws_credentials *out, char *why,
			 size_t n)
{
	static const struct json_shape shape = { "SessionToken", 0, 0, 1 };
	char *argv[MAX_ARGS + 1] = { 0 };
	char errbuf[MAX_STDERR] = "";
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, status = 0, r;
	posix_spawn_file_actions_t fa;
	struct body body = { 0 };
	size_t argc = 0;
	pid_t pid = -1;

	if ((r = split_command(src->command, argv, MAX_ARGS + 1, &argc)) < 0) {
		snprintf(why, n, "credential_process: cannot split the command line");
		return r;
	}
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		r = -errno;
		snprintf(why, n, "credential_process: pipe: %s", strerror(-r));
		goto out;
	}
	if ((r = -posix_spawn_file_actions_init(&fa)) < 0)
		goto out;
	if ((r = -posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) == 0 &&
	    (r = -posix_spawn_file_actions_adddup2(&fa, outp[1], 1)) == 0 &&
	    (r = -posix_spawn_file_actions_adddup2(&fa, errp[1], 2)) == 0)
		r = -posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r < 0) {
		snprintf(why, n, "credential_process: %s: %s", argv[0], strerror(-r));
		pid = -1;
		goto out;
	}
	close(outp[1]);
	close(errp[1]);
	outp[1] = errp[1] = -1;
	r = drain_pipes(outp[0], errp[0], &body, errbuf, sizeof(errbuf),
			monotonic_ms() + PROCESS_TIMEOUT_MS);
	if (r < 0) {
		kill(pid, SIGKILL);
		snprintf(why, n, "credential_process: %s", r == -ETIMEDOUT ? "timed out after 10 s" :
			 r == -EFBIG ? "output larger than 64 KiB" : strerror(-r));
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			if (r == 0) {
				r = -errno;
				snprintf(why, n, "credential_process: waitpid: %s", strerror(-r));
			}
			goto out;
		}
	}
	if (r < 0)
		goto out;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		errbuf[strcspn(errbuf, "\r\n")] = '\0';
		if (WIFEXITED(status))
			snprintf(why, n, "credential_process: exit status %d%s%.200s",
				 WEXITSTATUS(status), errbuf[0] ? ": " : "", errbuf);
		else
			snprintf(why, n, "credential_process: killed by signal %d",
				 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		r = -EIO;
		goto out;
	}
	if ((r = parse_creds_json(body.data ? body.data : "", body.len, &shape, out, why, n)) < 0) {
		char inner[160];
		snprintf(inner, sizeof(inner), "%s", why);
		snprintf(why, n, "credential_process output: %s", inner);
	}
out:
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	for (size_t i = 0; i < argc; i++)
		free(argv[i]);
	body_free(&body);
	return r;
}

static int fetch(const struct source *src, struct aws_credentials *out, char *why, size_t n)
{
	switch (src->kind) {
	case SRC_PROCESS:
		return fetch_process(src, out, why, n);
	case SRC_CONTAINER:
		return fetch_container(src, out, why, n);
	case SRC_IMDS:
		return fetch_imds(src, out, why, n);
	default:
		snprintf(why, n, "static credentials cannot be refreshed");
		return -EINVAL;
	}
}

static void source_clear(struct source *s)
{
	free(s->command);
	free(s->url);
	wipe_free(s->auth_token);
	free(s->auth_token_file);
	free(s->endpoint);
	memset(s, 0, sizeof(*s));
}

/* ---- shared files ---- */

static int home_path(const char *env, const char *suffix, char *out, size_t n)
{
	const char *v = env_nonempty(env), *home;

	if (v != NULL) {
		if (v[0] == '~' && v[1] == '/') {
			if ((home = env_nonempty("HOME")) == NULL)
				return -ENOENT;
			return (size_t)snprintf(out, n, "%s%s", home, v + 1) >= n ? -ENAMETOOLONG : 0;
		}
		return (size_t)snprintf(out, n, "%s", v) >= n ? -ENAMETOOLONG : 0;
	}
	if ((home = env_nonempty("HOME")) == NULL)
		return -ENOENT;
	return (size_t)snprintf(out, n, "%s/%s", home, suffix) >= n ? -ENAMETOOLONG : 0;
}

static const char *selected_profile(const char *configured)
{
	const char *p;

	if (configured != NULL && configured[0] != '\0')
		return configured;
	if ((p = env_nonempty("AWS_PROFILE")) != NULL)
		return p;
	return "default";
}

/* In config: [profile NAME], and for default also [default]. */
static const struct ini_section *config_section(const struct ini_file *cfg, const char *profile)
{
	const struct ini_section *s;

	if (cfg == NULL)
		return NULL;
	if (strcmp(profile, "default") == 0 && (s = ini_find_section(cfg, "default")) != NULL)
		return s;
	for (size_t i = 0; i < cfg->nsections; i++) {
		const char *name = cfg->sections[i].name;
		if (strncmp(name, "profile", 7) != 0 || (name[7] != ' ' && name[7] != '\t'))
			continue;
		name += 7;
		while (*name == ' ' || *name == '\t')
			name++;
		if (strcmp(name, profile) == 0)
			return &cfg->sections[i];
	}
	return NULL;
}

struct profile_files {
	char cred_path[1024], config_path[1024];
	struct ini_file *cred, *config;
	const struct ini_section *cred_sec, *config_sec;
};

/* The credentials file wins over the config file, key by key. */
static const char *profile_get(const struct profile_files *pf, const char *key)
{
	const char *v = ini_get(pf->cred_sec, key);

	return v != NULL ? v : ini_get(pf->config_sec, key);
}

/* 0 (files read, sections found or not), or -EINVAL with why for a malformed file. */
static int load_profile_files(const struct creds_options *opts, const char *profile,
			      struct profile_files *pf, char *why, size_t n)
{
	int r;

	memset(pf, 0, sizeof(*pf));
	if (opts != NULL && opts->credentials_file != NULL && opts->credentials_file[0] != '\0')
		snprintf(pf->cred_path, sizeof(pf->cred_path), "%s", opts->credentials_file);
	else if (home_path("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials", pf->cred_path,
			   sizeof(pf->cred_path)) < 0)
		snprintf(pf->cred_path, sizeof(pf->cred_path), "~/.aws/credentials");
	if (home_path("AWS_CONFIG_FILE", ".aws/config", pf->config_path,
		      sizeof(pf->config_path)) < 0)
		snprintf(pf->config_path, sizeof(pf->config_path), "~/.aws/config");
	if (pf->cred_path[0] != '~' &&
	    (r = ini_load_file(pf->cred_path, &pf->cred, why, n)) < 0 && r != -ENOENT)
		return r;
	if (pf->config_path[0] != '~' &&
	    (r = ini_load_file(pf->config_path, &pf->config, why, n)) < 0 && r != -ENOENT)
		return r;
	pf->cred_sec = ini_find_section(pf->cred, profile);
	pf->config_sec = config_section(pf->config, profile);
	return 0;
}

static void profile_files_free(struct profile_files *pf)
{
	ini_free(pf->cred);
	ini_free(pf->config);
	memset(pf, 0, sizeof(*pf));
}

static int set_static(struct aws_credentials *out, const char *akid, const char *secret,
		      const char *token)
{
	struct aws_credentials c = { .access_key_id = (char *)akid,
				     .secret_access_key = (char *)secret,
				     .session_token = token != NULL && token[0] ? (char *)token : NULL };
	return aws_credentials_copy(out, &c);
}

/* ---- the chain ---- */

/* 1 found, 0 not configured (note appended to tried), <0 hard error in why. */
static int try_environment(struct aws_credentials *out, char *tried, size_t tn, char *why,
			   size_t n)
{
	const char *akid = env_nonempty("AWS_ACCESS_KEY_ID");
	const char *secret = env_nonempty("AWS_SECRET_ACCESS_KEY");

	if (akid == NULL && secret == NULL) {
		err_append(tried, tn, "environment (AWS_ACCESS_KEY_ID unset)");
		return 0;
	}
	if (akid == NULL || secret == NULL) {
		snprintf(why, n, "environment: %s is set but %s is not",
			 akid ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
			 akid ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return -EINVAL;
	}
	if (set_static(out, akid, secret, env_nonempty("AWS_SESSION_TOKEN")) < 0)
		return -ENOMEM;
	return 1;
}

static int try_profile(const struct creds_options *opts, struct source *src,
		       struct aws_credentials *out, char *tried, size_t tn, char *why, size_t n)
{
	const char *profile = selected_profile(opts ? opts->profile : NULL);
	int explicit = strcmp(profile, "default") != 0 ||
		       (opts != NULL && opts->profile != NULL && opts->profile[0] != '\0') ||
		       env_nonempty("AWS_PROFILE") != NULL;
	struct profile_files pf;
	const char *akid, *secret, *process;
	int r;

	if ((r = load_profile_files(opts, profile, &pf, why, n)) < 0)
		goto out;
	if (pf.cred_sec == NULL && pf.config_sec == NULL) {
		if (explicit) {
			snprintf(why, n, "shared files: profile \"%s\" is in neither %.300s nor %.300s",
				 profile, pf.cred_path, pf.config_path);
			r = -ENOENT;
			goto out;
		}
		err_append(tried, tn, ", shared files (no profile \"%.64s\" in %.300s or %.300s)", profile,
			   pf.cred_path, pf.config_path);
		err_append(tried, tn, ", credential_process (no profile)");
		r = 0;
		goto out;
	}
	akid = profile_get(&pf, "aws_access_key_id");
	secret = profile_get(&pf, "aws_secret_access_key");
	if (akid != NULL && akid[0] == '\0')
		akid = NULL;
	if (secret != NULL && secret[0] == '\0')
		secret = NULL;
	if (akid != NULL && secret != NULL) {
		const char *token = profile_get(&pf, "aws_session_token");
		if (token == NULL)
			token = profile_get(&pf, "aws_security_token");
		src->kind = SRC_FILES;
		r = set_static(out, akid, secret, token) < 0 ? -ENOMEM : 1;
		goto out;
	}
	if (akid != NULL || secret != NULL) {
		snprintf(why, n, "shared files: profile \"%s\" has %s but not %s", profile,
			 akid ? "aws_access_key_id" : "aws_secret_access_key",
			 akid ? "aws_secret_access_key" : "aws_access_key_id");
		r = -EINVAL;
		goto out;
	}
	process = profile_get(&pf, "credential_process");
	if (process != NULL && process[0] != '\0') {
		char inner[512] = "";
		src->kind = SRC_PROCESS;
		if ((src->command = strdup(process)) == NULL) {
			r = -ENOMEM;
			goto out;
		}
		if ((r = fetch_process(src, out, inner, sizeof(inner))) < 0) {
			snprintf(why, n, "profile \"%s\": %s", profile, inner);
			goto out;
		}
		r = 1;
		goto out;
	}
	if (profile_get(&pf, "role_arn") != NULL || profile_get(&pf, "sso_session") != NULL ||
	    profile_get(&pf, "sso_start_url") != NULL) {
		snprintf(why, n, "shared files: profile \"%s\" uses role_arn or SSO, which this "
				 "daemon does not support; use static keys, credential_process, or "
				 "an instance/container role", profile);
		r = -ENOTSUP;
		goto out;
	}
	err_append(tried, tn, ", shared files (profile \"%s\" has no keys)", profile);
	err_append(tried, tn, ", credential_process (not in profile \"%s\")", profile);
	r = 0;
out:
	profile_files_free(&pf);
	return r;
}

static int try_container(struct source *src, struct aws_credentials *out, char *tried,
			 size_t tn, char *why, size_t n)
{
	const char *rel = env_nonempty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = env_nonempty("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *tok_file = env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tok = env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	char inner[512] = "";
	int r;

	if (rel == NULL && full == NULL) {
		err_append(tried, tn, ", container (AWS_CONTAINER_CREDENTIALS_*_URI unset)");
		return 0;
	}
	src->kind = SRC_CONTAINER;
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
	if ((r = fetch_container(src, out, inner, sizeof(inner))) < 0) {
		snprintf(why, n, "container: %s", inner);
		return r;
	}
	return 1;
}

static int imds_disabled(void)
{
	const char *v = env_nonempty("AWS_EC2_METADATA_DISABLED");

	return v != NULL && strcasecmp(v, "true") == 0;
}

static int try_imds(struct source *src, struct aws_credentials *out, char *tried, size_t tn)
{
	const char *ep = env_nonempty("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	char inner[512] = "";
	size_t len;

	if (imds_disabled()) {
		err_append(tried, tn, ", IMDS (disabled by AWS_EC2_METADATA_DISABLED)");
		return 0;
	}
	src->kind = SRC_IMDS;
	if ((src->endpoint = strdup(ep ? ep : IMDS_DEFAULT_ENDPOINT)) == NULL)
		return -ENOMEM;
	len = strlen(src->endpoint);
	while (len > 0 && src->endpoint[len - 1] == '/')
		src->endpoint[--len] = '\0';
	if (fetch_imds(src, out, inner, sizeof(inner)) < 0) {
		/* Not being on EC2 is the normal way to end the chain: a note, not a hard error. */
		err_append(tried, tn, ", IMDS (%s)", inner);
		return 0;
	}
	return 1;
}

/* ---- the provider ---- */

static time_t window_for(const struct creds_provider *p)
{
	return p->src.kind == SRC_IMDS ? REFRESH_WINDOW_IMDS : REFRESH_WINDOW;
}

static void timedwait_seconds(struct creds_provider *p, int seconds)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += seconds;
	while (!p->stop) {
		if (pthread_cond_timedwait(&p->cond, &p->lock, &until) == ETIMEDOUT)
			break;
	}
}

static void *refresh_thread(void *arg)
{
	struct creds_provider *p = arg;
	int failures = 0;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		struct aws_credentials fresh = { 0 };
		char why[512] = "";
		int r, backoff;

		while (!p->stop && !p->wake)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->stop)
			break;
		p->wake = 0;
		p->refreshing = 1;
		pthread_mutex_unlock(&p->lock);

		r = fetch(&p->src, &fresh, why, sizeof(why));

		pthread_mutex_lock(&p->lock);
		p->refreshing = 0;
		if (r == 0 && fresh.expiration != 0 && fresh.expiration <= p->now()) {
			snprintf(why, sizeof(why), "the refreshed credentials have already expired");
			r = -EKEYEXPIRED;
		}
		if (r == 0 && fresh.expiration >= p->creds.expiration) {
			aws_credentials_clear(&p->creds);
			p->creds = fresh;
			memset(&fresh, 0, sizeof(fresh));
			if (failures > 0)
				log_info("AWS credentials (%s) refreshed after %d failed attempts",
					 source_names[p->src.kind], failures);
			/* A source that keeps serving credentials inside the window (an IMDS
			 * outage) must not make every request trigger a fetch. */
			failures = p->creds.expiration != 0 &&
						   p->creds.expiration - p->now() <= window_for(p) ?
					   failures + 1 :
					   0;
		} else {
			if (failures == 0)
				log_warnx("refreshing AWS credentials (%s) failed: %s; the current "
					  "ones stay in use while valid",
					  source_names[p->src.kind], r == 0 ? "older than current" : why);
			failures++;
		}
		aws_credentials_clear(&fresh);
		if (failures > 0) {
			backoff = failures >= 6 ? BACKOFF_MAX_S : 1 << (failures - 1);
			if (backoff > BACKOFF_MAX_S)
				backoff = BACKOFF_MAX_S;
			timedwait_seconds(p, backoff);
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void log_resolved(const struct creds_provider *p)
{
	char prefix[5] = "";
	char exp[32] = "never";

	if (p->creds.access_key_id != NULL)
		snprintf(prefix, sizeof(prefix), "%.4s", p->creds.access_key_id);
	if (p->creds.expiration != 0) {
		time_t t = (time_t)p->creds.expiration;
		struct tm tm;
		if (gmtime_r(&t, &tm) != NULL)
			strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	log_info("AWS credentials from %s (key %s..., expire %s)", source_names[p->src.kind],
		 prefix, exp);
}

struct creds_provider *creds_provider_new(const struct creds_options *opts, char *err,
					  size_t errlen)
{
	struct creds_provider *p = calloc(1, sizeof(*p));
	char tried[1024] = "", why[768] = "";
	pthread_condattr_t ca;
	int r;

	if (errlen > 0)
		err[0] = '\0';
	if (p == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->now = opts != NULL && opts->now != NULL ? opts->now : default_now;
	if (pthread_mutex_init(&p->lock, NULL) != 0) {
		free(p);
		snprintf(err, errlen, "pthread_mutex_init failed");
		return NULL;
	}
	if (pthread_condattr_init(&ca) != 0 ||
	    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&p->cond, &ca) != 0) {
		pthread_mutex_destroy(&p->lock);
		free(p);
		snprintf(err, errlen, "pthread_cond_init failed");
		return NULL;
	}
	pthread_condattr_destroy(&ca);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "curl_global_init failed");
		goto fail_nocurl;
	}

	p->src.kind = SRC_ENV;
	if ((r = try_environment(&p->creds, tried, sizeof(tried), why, sizeof(why))) == 0) {
		r = try_profile(opts, &p->src, &p->creds, tried, sizeof(tried), why, sizeof(why));
		if (r == 0) {
			source_clear(&p->src);
			r = try_container(&p->src, &p->creds, tried, sizeof(tried), why, sizeof(why));
		}
		if (r == 0) {
			source_clear(&p->src);
			r = try_imds(&p->src, &p->creds, tried, sizeof(tried));
		}
	}
	if (r < 0) {
		snprintf(err, errlen, "AWS credentials: %s", why[0] ? why : strerror(-r));
		goto fail;
	}
	if (r == 0) {
		snprintf(err, errlen, "no AWS credentials: %s", tried);
		goto fail;
	}
	if (p->creds.expiration != 0 && p->creds.expiration <= p->now()) {
		snprintf(err, errlen, "AWS credentials from %s expired already",
			 source_names[p->src.kind]);
		goto fail;
	}
	if (p->creds.expiration != 0) {
		if (pthread_create(&p->thread, NULL, refresh_thread, p) != 0) {
			snprintf(err, errlen, "cannot start the credentials refresh thread");
			goto fail;
		}
		p->has_thread = 1;
	}
	log_resolved(p);
	return p;
fail:
	curl_global_cleanup();
fail_nocurl:
	aws_credentials_clear(&p->creds);
	source_clear(&p->src);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
	return NULL;
}

int creds_provider_get(struct creds_provider *p, struct aws_credentials *out)
{
	int r = 0;
	time_t now;

	if (p == NULL || out == NULL)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&p->lock);
	if (p->creds.expiration != 0) {
		now = p->now();
		if (now >= p->creds.expiration - window_for(p) && !p->refreshing && !p->wake) {
			p->wake = 1;
			pthread_cond_signal(&p->cond);
		}
		if (now >= p->creds.expiration)
			r = -EKEYEXPIRED;
	}
	if (r == 0)
		r = aws_credentials_copy(out, &p->creds);
	pthread_mutex_unlock(&p->lock);
	return r;
}

int64_t creds_provider_expiration(struct creds_provider *p)
{
	int64_t t;

	pthread_mutex_lock(&p->lock);
	t = p->creds.expiration;
	pthread_mutex_unlock(&p->lock);
	return t;
}

const char *creds_provider_source(const struct creds_provider *p)
{
	return p != NULL ? source_names[p->src.kind] : "none";
}

void creds_provider_free(struct creds_provider *p)
{
	if (p == NULL)
		return;
	if (p->has_thread) {
		pthread_mutex_lock(&p->lock);
		p->stop = 1;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->thread, NULL);
	}
	aws_credentials_clear(&p->creds);
	source_clear(&p->src);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	curl_global_cleanup();
	free(p);
}

/* ---- region ---- */

static int valid_region(const char *r)
{
	size_t n = strlen(r);

	if (n == 0 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
			return 0;
	return 1;
}

int creds_resolve_region(const char *configured, const char *profile, char *out, size_t n,
			 char *err, size_t errlen)
{
	const char *v = NULL, *from = NULL, *name = selected_profile(profile);
	struct ini_file *cfg = NULL;
	char path[1024] = "~/.aws/config", why[512] = "";
	int r;

	if (errlen > 0)
		err[0] = '\0';
	if (configured != NULL && configured[0] != '\0') {
		v = configured;
		from = "aws.region";
	} else if ((v = env_nonempty("AWS_REGION")) != NULL) {
		from = "AWS_REGION";
	} else if ((v = env_nonempty("AWS_DEFAULT_REGION")) != NULL) {
		from = "AWS_DEFAULT_REGION";
	} else {
		if (home_path("AWS_CONFIG_FILE", ".aws/config", path, sizeof(path)) == 0) {
			r = ini_load_file(path, &cfg, why, sizeof(why));
			if (r < 0 && r != -ENOENT) {
				snprintf(err, errlen, "AWS region: %s", why);
				return r;
			}
		}
		v = ini_get(config_section(cfg, name), "region");
		from = "profile";
		if (v == NULL || v[0] == '\0') {
			snprintf(err, errlen, "no AWS region: set aws.region, AWS_REGION or "
					      "AWS_DEFAULT_REGION, or region in profile \"%.64s\" of %.300s",
				 name, path);
			ini_free(cfg);
			return -ENOENT;
		}
	}
	if (!valid_region(v)) {
		snprintf(err, errlen, "AWS region from %s is not a region name: \"%.64s\"", from, v);
		r = -EINVAL;
	} else if ((size_t)snprintf(out, n, "%s", v) >= n) {
		snprintf(err, errlen, "AWS region too long for the buffer");
		r = -ENAMETOOLONG;
	} else {
		r = 0;
	}
	ini_free(cfg);
	return r;
}
