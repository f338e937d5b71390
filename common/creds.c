/*
 * creds.c — the AWS credentials chain (see creds.h for the order and the rules) and the
 * cached provider that refreshes expiring credentials in a background thread. Each source
 * lives in its own file behind creds_source.h.
 *
 * Facts and the SDK behaviour this follows: ../shared/research/aws-credentials.md.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "creds.h"
#include "creds_source.h"
#include "log.h"

/* Refresh this long before expiry: aws-c-auth's 5 minutes; 15 for IMDS, whose credentials
 * EC2 rotates at least 5 minutes ahead (botocore's advisory window). */
#define REFRESH_WINDOW 300
#define REFRESH_WINDOW_IMDS 900
#define BACKOFF_MAX_S 60

static const char *const source_names[] = {
	[CREDS_SRC_ENV] = "environment",
	[CREDS_SRC_FILES] = "shared-files",
	[CREDS_SRC_PROCESS] = "credential-process",
	[CREDS_SRC_CONTAINER] = "container",
	[CREDS_SRC_IMDS] = "imds",
	[CREDS_SRC_ASSUME_ROLE] = "assume-role",
	[CREDS_SRC_WEB_IDENTITY] = "web-identity",
};

struct creds_provider {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	int has_thread, stop, wake, refreshing;
	struct aws_credentials creds;
	struct creds_source src;
	time_t obtained;        /* when creds were installed (their lifetime bounds the window) */
	time_t (*now)(void);
};

/* ---- small helpers ---- */

void creds_wipe_free(char *s)
{
	if (s != NULL) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

const char *creds_env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

static time_t default_now(void)
{
	return time(NULL);
}

void creds_err_append(char *err, size_t errlen, const char *fmt, ...)
{
	size_t used = strnlen(err, errlen);
	va_list ap;

	if (used + 1 >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + used, errlen - used, fmt, ap);
	va_end(ap);
}

int creds_set_static(struct aws_credentials *out, const char *akid, const char *secret,
		     const char *token)
{
	struct aws_credentials c = { .access_key_id = (char *)akid,
				     .secret_access_key = (char *)secret,
				     .session_token = token != NULL && token[0] ? (char *)token : NULL };
	return aws_credentials_copy(out, &c);
}

/* ---- sources ---- */

const char *creds_source_name(enum creds_source_kind kind)
{
	return source_names[kind];
}

int creds_source_fetch(const struct creds_source *src, struct aws_credentials *out, char *why,
		       size_t n)
{
	switch (src->kind) {
	case CREDS_SRC_PROCESS:
		return creds_process_fetch(src, out, why, n);
	case CREDS_SRC_CONTAINER:
		return creds_container_fetch(src, out, why, n);
	case CREDS_SRC_IMDS:
		return creds_imds_fetch(src, out, why, n);
	case CREDS_SRC_ASSUME_ROLE:
	case CREDS_SRC_WEB_IDENTITY:
		return creds_sts_fetch(src, out, why, n);
	default:
		/* Static keys: only the base of a role asks for them again. */
		if (src->fixed.access_key_id != NULL)
			return aws_credentials_copy(out, &src->fixed);
		snprintf(why, n, "static credentials cannot be refreshed");
		return -EINVAL;
	}
}

void creds_source_clear(struct creds_source *s)
{
	free(s->command);
	free(s->url);
	creds_wipe_free(s->auth_token);
	free(s->auth_token_file);
	free(s->endpoint);
	aws_credentials_clear(&s->fixed);
	free(s->role_arn);
	free(s->session_name);
	creds_wipe_free(s->external_id);
	free(s->token_file);
	free(s->profile);
	free(s->sts_url);
	free(s->sts_region);
	if (s->base != NULL) {
		creds_source_clear(s->base);
		free(s->base);
	}
	memset(s, 0, sizeof(*s));
}

/* "role ARN (profile "p") via shared-files" for log lines; never a secret. */
static void describe(const struct creds_source *src, char *out, size_t n)
{
	out[0] = '\0';
	if (src->kind != CREDS_SRC_ASSUME_ROLE && src->kind != CREDS_SRC_WEB_IDENTITY)
		return;
	snprintf(out, n, "role %.300s%s%.64s%s", src->role_arn, src->profile ? " (profile \"" : "",
		 src->profile ? src->profile : "", src->profile ? "\")" : "");
	for (const struct creds_source *b = src->base; b != NULL; b = b->base) {
		if (b->kind == CREDS_SRC_ASSUME_ROLE)
			creds_err_append(out, n, " via role %.300s", b->role_arn);
		else
			creds_err_append(out, n, " via %s", creds_source_name(b->kind));
	}
	if (src->kind == CREDS_SRC_WEB_IDENTITY)
		creds_err_append(out, n, " with the token in %.300s", src->token_file);
}

/* ---- the provider ---- */

/*
 * Refresh this long before expiry: the source's window, but at most half the lifetime of the
 * credentials, so that short-lived ones are not always "inside the window".
 */
static time_t window_for(const struct creds_provider *p)
{
	time_t w = p->src.kind == CREDS_SRC_IMDS ? REFRESH_WINDOW_IMDS : REFRESH_WINDOW;
	time_t life = (time_t)p->creds.expiration - p->obtained;

	return p->obtained != 0 && life > 0 && life / 2 < w ? life / 2 : w;
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

static void log_resolved(const struct creds_provider *p, const char *what)
{
	char prefix[5] = "", role[900];
	char exp[32] = "never";

	if (p->creds.access_key_id != NULL)
		snprintf(prefix, sizeof(prefix), "%.4s", p->creds.access_key_id);
	if (p->creds.expiration != 0) {
		time_t t = (time_t)p->creds.expiration;
		struct tm tm;
		if (gmtime_r(&t, &tm) != NULL)
			strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	describe(&p->src, role, sizeof(role));
	log_info("AWS credentials %s %s (%s%skey %s..., expire %s)", what,
		 creds_source_name(p->src.kind), role, role[0] ? "; " : "", prefix, exp);
}

static void *refresh_thread(void *arg)
{
	struct creds_provider *p = arg;
	int failures = 0;

	pthread_mutex_lock(&p->lock);
	if (p->creds.access_key_id == NULL) {
		/* Started after STS refused: the first retry waits like any other. */
		failures = 1;
		timedwait_seconds(p, 1);
		p->wake = 1;
	}
	while (!p->stop) {
		struct aws_credentials fresh = { 0 };
		char why[1024] = "";
		int r, backoff, had_none;

		while (!p->stop && !p->wake)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->stop)
			break;
		p->wake = 0;
		p->refreshing = 1;
		pthread_mutex_unlock(&p->lock);

		r = creds_source_fetch(&p->src, &fresh, why, sizeof(why));

		pthread_mutex_lock(&p->lock);
		p->refreshing = 0;
		had_none = p->creds.access_key_id == NULL;
		if (r == 0 && fresh.expiration != 0 && fresh.expiration <= p->now()) {
			snprintf(why, sizeof(why), "the refreshed credentials have already expired");
			r = -EKEYEXPIRED;
		}
		if (r == 0 && fresh.expiration >= p->creds.expiration) {
			aws_credentials_clear(&p->creds);
			p->creds = fresh;
			p->obtained = p->now();
			memset(&fresh, 0, sizeof(fresh));
			if (had_none)
				log_resolved(p, "from");
			else if (failures > 0)
				log_info("AWS credentials (%s) refreshed after %d failed attempts",
					 creds_source_name(p->src.kind), failures);
			/* A source that keeps serving credentials inside the window (an IMDS
			 * outage) must not make every request trigger a fetch. */
			failures = p->creds.expiration != 0 &&
						   p->creds.expiration - p->now() <= window_for(p) ?
					   failures + 1 :
					   0;
		} else {
			if (had_none)
				log_errorx("AWS credentials (%s): %s; retrying",
					   creds_source_name(p->src.kind), why);
			else if (failures == 0)
				log_warnx("refreshing AWS credentials (%s) failed: %s; the current "
					  "ones stay in use while valid",
					  creds_source_name(p->src.kind), r == 0 ? "older than current" : why);
			failures++;
		}
		aws_credentials_clear(&fresh);
		if (failures > 0) {
			backoff = failures >= 6 ? BACKOFF_MAX_S : 1 << (failures - 1);
			if (backoff > BACKOFF_MAX_S)
				backoff = BACKOFF_MAX_S;
			timedwait_seconds(p, backoff);
			/* Without usable credentials, keep trying on our own. */
			if (p->creds.access_key_id == NULL ||
			    (p->creds.expiration != 0 && p->creds.expiration <= p->now()))
				p->wake = 1;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct creds_provider *creds_provider_new(const struct creds_options *opts, char *err,
					  size_t errlen)
{
	struct creds_provider *p = calloc(1, sizeof(*p));
	char tried[1536] = "", why[1024] = "";
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

	p->src.kind = CREDS_SRC_ENV;
	r = creds_env_try(&p->creds, tried, sizeof(tried), why, sizeof(why));
	if (r == 0)
		r = creds_web_identity_try(opts, &p->src, &p->creds, tried, sizeof(tried), why,
					   sizeof(why));
	if (r == 0) {
		creds_source_clear(&p->src);
		r = creds_profile_try(opts, &p->src, &p->creds, tried, sizeof(tried), why,
				      sizeof(why));
	}
	if (r == 0) {
		creds_source_clear(&p->src);
		r = creds_container_try(&p->src, &p->creds, tried, sizeof(tried), why, sizeof(why));
	}
	if (r == 0) {
		creds_source_clear(&p->src);
		r = creds_imds_try(&p->src, &p->creds, tried, sizeof(tried));
	}
	if (r < 0) {
		snprintf(err, errlen, "AWS credentials: %s", why[0] ? why : strerror(-r));
		goto fail;
	}
	if (r == 0) {
		snprintf(err, errlen, "no AWS credentials: %s", tried);
		goto fail;
	}
	if (r == 2) {
		/* A role STS refused for now: start without credentials, retry in the thread. */
		aws_credentials_clear(&p->creds);
		log_errorx("AWS credentials (%s): %s; retrying in the background",
			   creds_source_name(p->src.kind), why);
	} else if (p->creds.expiration != 0 && p->creds.expiration <= p->now()) {
		snprintf(err, errlen, "AWS credentials from %s expired already",
			 creds_source_name(p->src.kind));
		goto fail;
	}
	p->obtained = p->creds.access_key_id != NULL ? p->now() : 0;
	if (p->creds.expiration != 0 || r == 2) {
		if (pthread_create(&p->thread, NULL, refresh_thread, p) != 0) {
			snprintf(err, errlen, "cannot start the credentials refresh thread");
			goto fail;
		}
		p->has_thread = 1;
	}
	if (r == 1)
		log_resolved(p, "from");
	return p;
fail:
	curl_global_cleanup();
fail_nocurl:
	aws_credentials_clear(&p->creds);
	creds_source_clear(&p->src);
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
	if (p->creds.access_key_id == NULL) {
		/* A role STS has not granted yet: the thread is retrying on its own. */
		r = -EKEYEXPIRED;
	} else if (p->creds.expiration != 0) {
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
	creds_source_clear(&p->src);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	curl_global_cleanup();
	free(p);
}
