/*
 * check.c — see check.h. A short-lived sd-event loop with the daemon's own AWS and Redis
 * clients, so the checks go the way the daemon will (same signing, endpoint, TLS and timeouts).
 */
#include "check.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-event.h>

#include "aws.h"
#include "config.h"
#include "creds.h"
#include "ivs.h"
#include "redis_options.h"
#include "redisio.h"

struct check {
	const struct config *config;
	sd_event *event;
	struct aws_client *aws;
	struct redisio *redis;
	char region[64];
	FILE *out, *err;
	unsigned pending;            /* checks still waiting for an answer */
	bool redis_done;
	bool ivs_done;               /* ListStages answered */
	unsigned get_pending;        /* GetStage calls not answered yet */
	bool finished;               /* past the deadline: late answers are ignored */
	int failures;
};

static void report(struct check *c, bool ok, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(c->out, "%s: %s\n", ok ? "ok" : "error", line);
	if (!ok) {
		c->failures++;
		if (c->err != c->out)
			fprintf(c->err, "ivs-autoscaler: %s\n", line);
	}
}

static void check_done(struct check *c)
{
	if (--c->pending == 0)
		sd_event_exit(c->event, 0);
}

/* The region part of arn:aws:ivs:REGION:ACCOUNT:stage/ID ("" when it has none). */
static void arn_region(const char *arn, char *out, size_t len)
{
	const char *p = strncmp(arn, "arn:aws:ivs:", 12) == 0 ? arn + 12 : "";
	size_t n = strcspn(p, ":");
	snprintf(out, len, "%.*s", (int)n, p);
}

struct origin_check {
	struct check *c;
	const char *fleet;
	const char *arn;
};

static void on_get_stage(void *ud, const struct aws_error *e, const struct ivs_stage *stage)
{
	struct origin_check *oc = ud;
	struct check *c = oc->c;

	(void)stage;
	if (c->finished)
		;
	else if (e == NULL || e->kind == AWS_OK)
		report(c, true, "fleet %s: origin stage %s exists (GetStage; not in ListStages)",
		       oc->fleet, oc->arn);
	else if (e->kind == AWS_ERR_NOT_FOUND)
		report(c, false, "fleet %s: origin stage %s does not exist in region %s (GetStage: %s)",
		       oc->fleet, oc->arn, c->region, e->message[0] ? e->message : "not found");
	else
		report(c, false, "fleet %s: cannot look up origin stage %s: GetStage %s %s",
		       oc->fleet, oc->arn, aws_error_kind_name(e->kind), e->message);
	free(oc);
	if (!c->finished) {
		c->get_pending--;
		check_done(c);
	}
}

static void check_origin(struct check *c, const struct config_fleet *f,
			 const struct ivs_stage_list *list)
{
	char region[64];
	struct origin_check *oc;

	for (size_t i = 0; i < list->n; i++) {
		if (strcmp(list->items[i].arn, f->origin_stage_arn) == 0) {
			report(c, true, "fleet %s: origin stage %s exists", f->name, f->origin_stage_arn);
			return;
		}
	}
	arn_region(f->origin_stage_arn, region, sizeof(region));
	if (strcmp(region, c->region) != 0) {
		report(c, false, "fleet %s: origin stage %s is in region %s, but the daemon uses "
		       "region %s (aws.region)", f->name, f->origin_stage_arn, region, c->region);
		return;
	}
	oc = calloc(1, sizeof(*oc));
	if (oc == NULL) {
		report(c, false, "fleet %s: out of memory", f->name);
		return;
	}
	*oc = (struct origin_check){ c, f->name, f->origin_stage_arn };
	c->pending++;
	c->get_pending++;
	if (ivs_get_stage(c->aws, f->origin_stage_arn, on_get_stage, oc) < 0) {
		report(c, false, "fleet %s: cannot send GetStage", f->name);
		free(oc);
		c->pending--;
		c->get_pending--;
	}
}

static void on_list_stages(void *ud, const struct aws_error *e, const struct ivs_stage_list *list)
{
	struct check *c = ud;

	if (c->finished)
		return;
	c->ivs_done = true;
	if (e != NULL && e->kind != AWS_OK) {
		if (e->kind == AWS_ERR_ACCESS_DENIED)
			report(c, false, "credentials refused by IVS (ListStages: %s %s)",
			       e->code[0] ? e->code : "access denied", e->message);
		else
			report(c, false, "ListStages failed: %s %s", aws_error_kind_name(e->kind),
			       e->message);
	} else {
		report(c, true, "credentials accepted: ListStages listed %zu stage(s) in %s", list->n,
		       c->region);
		for (size_t i = 0; i < c->config->n_fleets; i++)
			check_origin(c, &c->config->fleets[i], list);
	}
	check_done(c);
}

static void on_ping(void *ud, redisReply *reply, const char *error)
{
	struct check *c = ud;

	if (c->redis_done)
		return;
	c->redis_done = true;
	if (reply == NULL)
		report(c, false, "redis %s: %s", c->config->redis.url, error ? error : "no reply");
	else if (reply->type == REDIS_REPLY_STATUS && reply->str != NULL &&
		 strcmp(reply->str, "PONG") == 0)
		report(c, true, "redis %s answers PING", c->config->redis.url);
	else
		report(c, false, "redis %s: unexpected PING reply%s%s", c->config->redis.url,
		       reply->type == REDIS_REPLY_ERROR ? ": " : "",
		       reply->type == REDIS_REPLY_ERROR && reply->str ? reply->str : "");
	check_done(c);
}

static void on_redis_state(void *ud, bool connected)
{
	struct check *c = ud;
	static const char *ping[] = { "PING" };

	if (!connected || c->redis_done)
		return;
	if (redisio_command_argv(c->redis, 1, ping, NULL, on_ping, c) < 0) {
		c->redis_done = true;
		report(c, false, "redis %s: cannot send PING", c->config->redis.url);
		check_done(c);
	}
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *ud)
{
	struct check *c = ud;
	(void)s; (void)usec;
	if (!c->redis_done) {
		c->redis_done = true;
		/* redisio has logged why each attempt failed (address, errno). */
		report(c, false, "redis %s: no connection within %" PRIu64 " ms", c->config->redis.url,
		       c->config->redis.timeout_ms * 2);
	}
	sd_event_exit(c->event, 0);
	return 0;
}

static int setup_redis(struct check *c)
{
	static const struct redisio_callbacks cbs = { .on_state = on_redis_state };
	struct redisio_options ro;
	SSL_CTX *tls = NULL;
	char why[512];

	if (redis_options_from_config(c->config, &ro, &tls, NULL, 0, why, sizeof(why)) < 0) {
		report(c, false, "redis.tls: %s", why);
		return -EINVAL;
	}
	c->redis = redisio_new(c->event, &ro, &cbs, c);
	SSL_CTX_free(tls);
	return c->redis != NULL ? 0 : -ENOMEM;
}

static int get_credentials(void *ctx, struct aws_credentials *out)
{
	return creds_provider_get(ctx, out);
}

int check_online(const struct config *config, FILE *out, FILE *err)
{
	struct check c = { .config = config, .out = out, .err = err };
	struct creds_options co = { .profile = config->aws.profile,
				    .credentials_file = config->aws.credentials_file };
	struct creds_provider *creds = NULL;
	sd_event_source *deadline = NULL;
	char why[512];
	uint64_t limit_ms;

	if (creds_resolve_region(config->aws.region, config->aws.profile, c.region,
				 sizeof(c.region), why, sizeof(why)) < 0) {
		report(&c, false, "region: %s", why);
		return 1;
	}
	creds = creds_provider_new(&co, why, sizeof(why));
	if (creds == NULL) {
		report(&c, false, "credentials: %s", why);
		return 1;
	}
	report(&c, true, "credentials from %s, region %s", creds_provider_source(creds), c.region);
	struct aws_client_options ao = {
		.region = c.region,
		.endpoint = config->aws.endpoint,
		.max_tps = config->aws.max_tps,
		.timeout_ms = (long)config->aws.timeout_ms,
		.connect_timeout_ms = (long)config->aws.connect_timeout_ms,
		.credentials = get_credentials,
		.credentials_ctx = creds,
	};
	/* The AWS client retries within its own timeouts; Redis gets two of its timeouts. */
	limit_ms = config->aws.timeout_ms * 4 + config->redis.timeout_ms * 2 + 1000;
	if (sd_event_new(&c.event) < 0 || aws_client_new(c.event, &ao, &c.aws) < 0 ||
	    setup_redis(&c) < 0 ||
	    sd_event_add_time_relative(c.event, &deadline, CLOCK_MONOTONIC, limit_ms * 1000, 1000,
				       on_deadline, &c) < 0) {
		report(&c, false, "cannot set up the checks");
		goto out;
	}
	c.pending = 2;               /* ListStages (and the GetStages it adds), Redis */
	if (ivs_list_stages(c.aws, on_list_stages, &c) < 0) {
		report(&c, false, "cannot send ListStages");
		c.pending--;
	}
	(void)sd_event_loop(c.event);
	if (!c.ivs_done || c.get_pending > 0)
		report(&c, false, "IVS (%s) did not answer %s within %" PRIu64 " ms",
		       config->aws.endpoint[0] ? config->aws.endpoint : c.region,
		       c.ivs_done ? "GetStage" : "ListStages", limit_ms);
	c.finished = true;
out:
	if (c.aws != NULL)
		aws_client_cancel_all(c.aws);
	redisio_free(c.redis);
	aws_client_free(c.aws);
	sd_event_source_disable_unref(deadline);
	sd_event_unref(c.event);
	creds_provider_free(creds);
	return c.failures == 0 ? 0 : 1;
}
