/*
 * observe.c — the observe phase of a reconcile pass: ListStages (ownership from tags), then per
 * fleet the Redis read and ListParticipants → ListParticipantReplicas, into struct pass.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "config.h"
#include "ivs.h"
#include "log.h"
#include "plan.h"
#include "reconcile_internal.h"
#include "redisio.h"
#include "store_parse.h"

/* Our own ISO-8601 "created" tag back to ms; 0 when it does not parse (treated as old). */
static int64_t parse_iso_ms(const char *s)
{
	struct tm tm = { 0 };
	int ms = 0;
	if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon,
				&tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

/* ---- observe: Redis ---------------------------------------------------------------------- */

/*
 * One pipelined round trip per fleet: GET desired, GET publisher, then per stage (origin
 * first) SCARD viewers and GET draining. Replies arrive in order; a WRONGTYPE on SCARD means
 * the application stores the count as a STRING, which costs one more GET for that key.
 */
struct redis_read {
	struct op *op;
	unsigned pending;
	bool failed;
};

struct redis_reply_ctx {
	struct redis_read *rr;
	int kind;                                /* 0 desired, 1 publisher, 2 viewers, 3 draining, 4 viewers-as-string */
	struct obs_stage *stage;
};

static void redis_read_finish(struct redis_read *rr)
{
	struct op *op = rr->op;
	struct obs_fleet *f = &op->pass->fleets[op->fleet];
	if (rr->failed) {
		f->redis_ok = false;
		f->viewers_ok = false;
		op->pass->reads_failed++;
	}
	free(rr);
	rec_op_done(op);
}

static void set_viewers_invalid(struct obs_fleet *f, struct obs_stage *s, const char *why)
{
	s->viewers_known = false;
	f->viewers_ok = false;
	if (f->viewers_error[0] == '\0')
		snprintf(f->viewers_error, sizeof(f->viewers_error), "%s: %s", s->arn, why);
}

static int redis_send(struct redis_reply_ctx *ctx, int argc, const char **argv);

static void on_redis_reply(void *ud, redisReply *reply, const char *error)
{
	struct redis_reply_ctx *ctx = ud;
	struct redis_read *rr = ctx->rr;
	struct obs_fleet *f = &rr->op->pass->fleets[rr->op->fleet];
	char err[STORE_ERR_MAX];

	if (reply == NULL) {
		(void)error;
		rr->failed = true;
		goto out;
	}
	switch (ctx->kind) {
	case 0: /* desired_stages override */
		if (reply->type == REDIS_REPLY_NIL) {
			f->override = PLAN_OVERRIDE_ABSENT;
		} else if (reply->type == REDIS_REPLY_STRING) {
			int v;
			if (store_parse_desired(reply->str, reply->len, &v, err, sizeof(err)) == 0) {
				f->override = PLAN_OVERRIDE_VALID;
				f->override_stages = (uint32_t)v;
			} else {
				f->override = PLAN_OVERRIDE_INVALID;
				snprintf(f->override_error, sizeof(f->override_error), "%s", err);
			}
		} else {
			f->override = PLAN_OVERRIDE_INVALID;
			snprintf(f->override_error, sizeof(f->override_error), "not a string value");
		}
		break;
	case 1: /* publisher:info */
		if (reply->type == REDIS_REPLY_STRING) {
			if (store_parse_publisher(reply->str, reply->len, &f->publisher, err,
						  sizeof(err)) == 0)
				f->publisher_present = true;
			else
				snprintf(f->publisher_error, sizeof(f->publisher_error), "%s", err);
		} else if (reply->type != REDIS_REPLY_NIL) {
			snprintf(f->publisher_error, sizeof(f->publisher_error), "not a string value");
		}
		break;
	case 2: /* SCARD viewers */
		if (reply->type == REDIS_REPLY_INTEGER && reply->integer >= 0) {
			ctx->stage->viewers_known = true;
			ctx->stage->viewers = (uint64_t)reply->integer;
		} else if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "WRONGTYPE", 9) == 0) {
			char key[KEY_MAX];
			const char *argv[2] = { "GET", key };
			struct redis_reply_ctx *again = malloc(sizeof(*again));
			if (again == NULL ||
			    config_expand_key(f->cfg->redis_keys.viewers, f->cfg->name,
					      ctx->stage->arn, key, sizeof(key)) < 0) {
				free(again);
				set_viewers_invalid(f, ctx->stage, "key too long");
				break;
			}
			*again = (struct redis_reply_ctx){ rr, 4, ctx->stage };
			if (redis_send(again, 2, argv) < 0)
				rr->failed = true;
		} else {
			set_viewers_invalid(f, ctx->stage, "unexpected reply to SCARD");
		}
		break;
	case 4: { /* viewers stored as a STRING integer */
		long long v;
		if (reply->type == REDIS_REPLY_STRING &&
		    store_parse_viewers(reply->str, reply->len, &v, err, sizeof(err)) == 0) {
			ctx->stage->viewers_known = true;
			ctx->stage->viewers = (uint64_t)v;
		} else if (reply->type == REDIS_REPLY_ERROR) {
			set_viewers_invalid(f, ctx->stage, "wrong type (neither a set nor an integer string)");
		} else {
			set_viewers_invalid(f, ctx->stage, reply->type == REDIS_REPLY_STRING ? err : "not an integer");
		}
		break;
	}
	case 3: /* draining mark */
		if (reply->type == REDIS_REPLY_STRING) {
			int64_t since;
			ctx->stage->draining = true;
			if (store_parse_draining(reply->str, reply->len, &since, err, sizeof(err)) == 0)
				ctx->stage->draining_since_ms = since;
			else
				ctx->stage->draining_since_ms = rr->op->pass->started_ms;
		}
		break;
	}
out:
	free(ctx);
	if (--rr->pending == 0)
		redis_read_finish(rr);
}

static int redis_send(struct redis_reply_ctx *ctx, int argc, const char **argv)
{
	struct reconciler *r = ctx->rr->op->r;
	if (redisio_command_argv(r->redis, argc, argv, NULL, on_redis_reply, ctx) < 0) {
		free(ctx);
		return -EIO;
	}
	ctx->rr->pending++;
	return 0;
}

static int redis_queue(struct redis_read *rr, int kind, struct obs_stage *stage, const char *cmd,
		       const char *key)
{
	struct redis_reply_ctx *ctx = malloc(sizeof(*ctx));
	const char *argv[2] = { cmd, key };
	if (ctx == NULL)
		return -ENOMEM;
	*ctx = (struct redis_reply_ctx){ rr, kind, stage };
	return redis_send(ctx, 2, argv);
}

static void observe_redis(struct reconciler *r, struct pass *p, size_t fi)
{
	struct obs_fleet *f = &p->fleets[fi];
	struct op *op = rec_op_new(r, p, fi);
	struct redis_read *rr = calloc(1, sizeof(*rr));
	char key[KEY_MAX];
	int rc = 0;

	f->redis_ok = true;
	f->viewers_ok = true;
	if (op == NULL || rr == NULL) {
		free(rr);
		f->redis_ok = f->viewers_ok = false;
		if (op != NULL)
			rec_op_done(op);
		return;
	}
	rr->op = op;
	rr->pending = 1;        /* held until every command is queued */
	if (r->redis == NULL || !redisio_connected(r->redis)) {
		rr->failed = true;
		goto done;
	}
	rc |= redis_queue(rr, 0, NULL, "GET", f->cfg->redis_keys.desired_stages);
	rc |= redis_queue(rr, 1, NULL, "GET", f->cfg->redis_keys.publisher);
	for (size_t i = 0; i <= f->n_replicas; i++) {
		struct obs_stage *s = i == 0 ? &f->origin : &f->replicas[i - 1];
		if (config_expand_key(f->cfg->redis_keys.viewers, f->cfg->name, s->arn, key,
				      sizeof(key)) < 0) {
			set_viewers_invalid(f, s, "viewers key too long");
			continue;
		}
		rc |= redis_queue(rr, 2, s, "SCARD", key);
		if (i > 0 && rec_stage_key(r, "stage:", s->arn, ":draining", key, sizeof(key)) == 0)
			rc |= redis_queue(rr, 3, s, "GET", key);
	}
	if (rc != 0)
		rr->failed = true;
done:
	if (--rr->pending == 0)
		redis_read_finish(rr);
}

/* ---- observe: IVS ------------------------------------------------------------------------ */

static void on_replicas(void *ud, const struct aws_error *err, const struct ivs_replica_list *list)
{
	struct op *op = ud;
	struct obs_fleet *f = &op->pass->fleets[op->fleet];
	struct obs_host *h = &f->hosts[op->index];

	if (err != NULL && err->kind != AWS_OK) {
		h->replicas_ok = false;
		op->pass->reads_failed++;
		log_event(LOG_WARNING, NULL,
			  LOG_FIELDS("IVS_FLEET", f->cfg->name, "IVS_PARTICIPANT_ID", h->participant_id,
				     "IVS_OPERATION", "ListParticipantReplicas",
				     "AWS_REQUEST_ID", err->request_id),
			  "listing replicas of %s failed: %s %s", h->participant_id,
			  aws_error_kind_name(err->kind), err->message);
		goto out;
	}
	h->replications = calloc(list->n ? list->n : 1, sizeof(*h->replications));
	h->dest = calloc(list->n ? list->n : 1, sizeof(*h->dest));
	if (h->replications == NULL || h->dest == NULL) {
		h->replicas_ok = false;
		op->pass->reads_failed++;
		goto out;
	}
	for (size_t i = 0; i < list->n; i++) {
		const struct ivs_replica *rep = &list->items[i];
		if (rep->replication_state != IVS_REPLICATION_ACTIVE &&
		    rep->replication_state != IVS_REPLICATION_STOPPED)
			continue;
		snprintf(h->dest[h->n_replications], sizeof(h->dest[0]), "%s", rep->destination_stage_arn);
		h->replications[h->n_replications].destination_arn = h->dest[h->n_replications];
		h->replications[h->n_replications].state =
			rep->replication_state == IVS_REPLICATION_ACTIVE ? PLAN_REPLICATION_ACTIVE
									: PLAN_REPLICATION_STOPPED;
		h->n_replications++;
	}
	h->replicas_ok = true;
out:
	rec_op_done(op);
}

static void on_participants(void *ud, const struct aws_error *err,
			    const struct ivs_participant_list *list)
{
	struct op *op = ud;
	struct reconciler *r = op->r;
	struct obs_fleet *f = &op->pass->fleets[op->fleet];

	if (err != NULL && err->kind != AWS_OK) {
		f->hosts_ok = false;
		op->pass->reads_failed++;
		log_event(LOG_WARNING, NULL,
			  LOG_FIELDS("IVS_FLEET", f->cfg->name, "IVS_STAGE_ARN", f->cfg->origin_stage_arn,
				     "IVS_OPERATION", "ListParticipants", "AWS_REQUEST_ID", err->request_id),
			  "listing hosts of fleet %s failed: %s %s", f->cfg->name,
			  aws_error_kind_name(err->kind), err->message);
		goto out;
	}
	f->hosts = calloc(list->n ? list->n : 1, sizeof(*f->hosts));
	if (f->hosts == NULL) {
		f->hosts_ok = false;
		goto out;
	}
	f->hosts_ok = true;
	for (size_t i = 0; i < list->n && f->n_hosts < PLAN_MAX_HOSTS; i++) {
		const struct ivs_participant *pt = &list->items[i];
		/* A host: connected, publishing, and not itself a replica of another stage. */
		if (pt->state != IVS_PARTICIPANT_CONNECTED || !pt->published ||
		    pt->replication_type == IVS_REPLICATION_TYPE_REPLICA ||
		    pt->participant_id[0] == '\0')
			continue;
		struct obs_host *h = &f->hosts[f->n_hosts++];
		snprintf(h->participant_id, sizeof(h->participant_id), "%s", pt->participant_id);
		snprintf(h->user_id, sizeof(h->user_id), "%s", pt->user_id);
	}
	for (size_t i = 0; i < f->n_hosts; i++) {
		struct op *rop = rec_op_new(r, op->pass, op->fleet);
		if (rop == NULL) {
			f->hosts[i].replicas_ok = false;
			continue;
		}
		rop->index = i;
		if (ivs_list_participant_replicas(r->aws, f->cfg->origin_stage_arn,
						  f->hosts[i].participant_id, on_replicas, rop) < 0) {
			f->hosts[i].replicas_ok = false;
			op->pass->reads_failed++;
			rec_op_done(rop);
		}
	}
out:
	rec_op_done(op);
}

static int obs_add_replica(struct obs_fleet *f, const struct ivs_stage *st)
{
	if (f->n_replicas == f->cap_replicas) {
		size_t cap = f->cap_replicas ? f->cap_replicas * 2 : 8;
		struct obs_stage *n = realloc(f->replicas, cap * sizeof(*n));
		if (n == NULL)
			return -ENOMEM;
		f->replicas = n;
		f->cap_replicas = cap;
	}
	struct obs_stage *s = &f->replicas[f->n_replicas++];
	memset(s, 0, sizeof(*s));
	snprintf(s->arn, sizeof(s->arn), "%s", st->arn);
	snprintf(s->name, sizeof(s->name), "%s", st->name);
	s->created_ms = parse_iso_ms(ivs_stage_tag(st, TAG_CREATED));
	return 0;
}

static void on_stages(void *ud, const struct aws_error *err, const struct ivs_stage_list *list)
{
	struct op *op = ud;
	struct reconciler *r = op->r;
	struct pass *p = op->pass;

	if (err != NULL && err->kind != AWS_OK) {
		p->stages_ok = false;
		p->reads_failed++;
		snprintf(p->stages_error, sizeof(p->stages_error), "ListStages: %s %s",
			 aws_error_kind_name(err->kind), err->message);
		log_event(LOG_WARNING, NULL,
			  LOG_FIELDS("IVS_OPERATION", "ListStages", "AWS_REQUEST_ID", err->request_id),
			  "listing stages failed: %s %s", aws_error_kind_name(err->kind), err->message);
	} else {
		p->stages_ok = true;
		for (size_t i = 0; i < list->n; i++) {
			const struct ivs_stage *st = &list->items[i];
			const char *managed = ivs_stage_tag(st, TAG_MANAGED);
			const char *fleet = ivs_stage_tag(st, TAG_FLEET);
			for (size_t fi = 0; fi < p->n_fleets; fi++) {
				struct obs_fleet *f = &p->fleets[fi];
				if (strcmp(st->arn, f->cfg->origin_stage_arn) == 0) {
					f->origin_seen = true;
					snprintf(f->origin_session, sizeof(f->origin_session), "%s",
						 st->active_session_id);
				} else if (managed != NULL && strcmp(managed, "true") == 0 &&
					   fleet != NULL && strcmp(fleet, f->cfg->name) == 0) {
					if (obs_add_replica(f, st) < 0)
						p->stages_ok = false;
				}
			}
		}
	}
	for (size_t fi = 0; fi < p->n_fleets; fi++) {
		struct obs_fleet *f = &p->fleets[fi];
		observe_redis(r, p, fi);
		if (!p->stages_ok) {
			/* Without the origin's session there is no way to list hosts. */
			f->hosts_ok = false;
			continue;
		}
		if (!f->origin_seen || f->origin_session[0] == '\0') {
			f->hosts_ok = true;             /* no session: no hosts, truthfully */
			continue;
		}
		struct op *hop = rec_op_new(r, p, fi);
		struct ivs_participant_filter filter = { .kind = IVS_FILTER_PUBLISHED, .published = true };
		if (hop == NULL)
			continue;
		if (ivs_list_participants(r->aws, f->cfg->origin_stage_arn, f->origin_session,
					  &filter, on_participants, hop) < 0) {
			f->hosts_ok = false;
			p->reads_failed++;
			rec_op_done(hop);
		}
	}
	rec_op_done(op);
}

void rec_pass_begin(struct reconciler *r)
{
	struct pass *p = calloc(1, sizeof(*p));
	struct op *op;

	if (p == NULL)
		return;
	p->fleets = calloc(r->config->n_fleets ? r->config->n_fleets : 1, sizeof(*p->fleets));
	if (p->fleets == NULL) {
		free(p);
		return;
	}
	p->n_fleets = r->config->n_fleets;
	p->id = ++r->next_pass_id;
	p->started_ms = rec_wall_ms();
	p->started_us = rec_mono_us();
	for (size_t i = 0; i < p->n_fleets; i++) {
		p->fleets[i].cfg = &r->config->fleets[i];
		snprintf(p->fleets[i].origin.arn, sizeof(p->fleets[i].origin.arn), "%s",
			 r->config->fleets[i].origin_stage_arn);
	}
	r->current = p;
	r->wake_pending = false;
	r->last_pass_start_us = p->started_us;
	log_debug("reconcile pass %" PRIu64 " begins", p->id);
	op = rec_op_new(r, p, 0);
	if (op == NULL)
		return;
	/* Keep the pass open until ListStages answers. */
	if (ivs_list_stages(r->aws, on_stages, op) < 0) {
		struct aws_error e = { .kind = AWS_ERR_LOCAL };
		snprintf(e.message, sizeof(e.message), "could not queue the request");
		on_stages(op, &e, NULL);
	}
}

