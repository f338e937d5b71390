/*
 * act.c — the plan and act phases of a reconcile pass: the planner's input from the observation,
 * plan_fleet(), then the plan's actions with per-item backoff (backoff.c), deletes last, once the
 * stops into their stages have answered. It fills the pass; pass.c moves it on.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "config.h"
#include "ivs.h"
#include "log.h"
#include "metrics.h"
#include "plan.h"
#include "policy.h"
#include "pass.h"
#include "ownership.h"
#include "reconcile_internal.h"
#include "redisio.h"
#include "store.h"
#include "store_parse.h"

/* ---- per-item backoff (backoff.c) ------------------------------------------------------ */

/*
 * One more failure of an action: a table that cannot remember it says so, loudly. The end of
 * its delay wakes the fleet, so the retry does not wait for the resync to come round.
 */
static void action_backoff_fail(struct reconciler *r, const struct obs_fleet *f, const char *key)
{
	if (backoff_fail(r->backoff, key, rec_wall_ms(), r->config->reconcile.backoff_initial_ms,
			 r->config->reconcile.backoff_max_ms) < 0)
		log_event(LOG_ERR, NULL, NULL, "no memory to back off %s: it is retried next pass",
			  key);
	else
		rec_backoff_wake(r, f->index, backoff_next(r->backoff, key));
}

#define ACTION_KEY_MAX (2 * IVS_ARN_MAX + IVS_PARTICIPANT_ID_MAX + 16)

void act_reads_outcome(struct reconciler *r, const struct obs_fleet *f)
{
	char key[ACTION_KEY_MAX];

	snprintf(key, sizeof(key), "reads|%s", f->cfg->name);
	if (!f->summary.fail_static)
		backoff_ok(r->backoff, key);
	else if (!r->stopping)
		action_backoff_fail(r, f, key);
}

static void action_key(const struct plan_action *a, const char *fleet, char *out, size_t len)
{
	snprintf(out, len, "%s|%s|%s|%s", plan_action_kind_name(a->kind),
		 a->stage_arn != NULL ? a->stage_arn : fleet,
		 a->participant_id != NULL ? a->participant_id : "", "");
}

/* ---- act --------------------------------------------------------------------------------- */

static void record_failure(struct op *op, const char *what, const struct aws_error *err)
{
	struct obs_fleet *f = &op->pass->fleets[op->fleet];
	char key[ACTION_KEY_MAX];
	char status[8];

	action_key(&op->action, f->cfg->name, key, sizeof(key));
	action_backoff_fail(op->r, f, key);
	op->pass->actions_failed++;
	f->actions_failed++;
	snprintf(status, sizeof(status), "%d", err->http_status);
	log_event(LOG_WARNING, NULL,
		  LOG_FIELDS("IVS_FLEET", f->cfg->name, "IVS_STAGE_ARN", op->action.stage_arn,
			     "IVS_PARTICIPANT_ID", op->action.participant_id, "IVS_OPERATION", what,
			     "AWS_REQUEST_ID", err->request_id[0] ? err->request_id : NULL,
			     "HTTP_STATUS", err->http_status ? status : NULL),
		  "%s failed: %s%s%s", what, aws_error_kind_name(err->kind),
		  err->message[0] ? ": " : "", err->message);
}

static void on_start_done(void *ud, const struct aws_error *err)
{
	struct op *op = ud;
	struct reconciler *r = op->r;
	struct obs_fleet *f = &op->pass->fleets[op->fleet];
	const char *dst = op->created_arn[0] ? op->created_arn : op->action.stage_arn;
	char key[ACTION_KEY_MAX];
	enum ivs_conflict conflict = ivs_conflict_of(err);

	action_key(&op->action, f->cfg->name, key, sizeof(key));
	if (err == NULL || err->kind == AWS_OK || conflict == IVS_CONFLICT_ALREADY_REPLICATING) {
		char now[40], rkey[KEY_MAX];
		backoff_ok(r->backoff, key);
		op->pass->actions_done++;
		log_event(LOG_INFO, MSGID_REPLICATION_STARTED,
			  LOG_FIELDS("IVS_FLEET", f->cfg->name, "IVS_STAGE_ARN", dst,
				     "IVS_PARTICIPANT_ID", op->action.participant_id,
				     "IVS_OPERATION", "StartParticipantReplication"),
			  "replicating %s into %s", op->action.participant_id, dst);
		for (size_t i = 0; i < f->n_replicas; i++)
			if (strcmp(f->replicas[i].arn, dst) == 0)
				f->replicas[i].fed_this_pass = true;
		rec_iso_time(rec_wall_ms(), now, sizeof(now));
		if (rec_stage_key(r, STORE_KEY_REPLICATION, dst, rkey, sizeof(rkey)) == 0 &&
		    rec_write_begin(r, false, rkey))
			rec_write_sent(r, false, rkey,
				       store_put_replication(r->redis, rkey, op->action.source_arn, dst,
							     op->action.participant_id, now,
							     rec_on_write, r));
	} else if (conflict == IVS_CONFLICT_NOT_PUBLISHING) {
		/* The host went quiet between observe and act: retry on a later pass, quietly. */
		f->not_publishing++;
		action_backoff_fail(r, f, key);
		log_event(LOG_DEBUG, NULL, LOG_FIELDS("IVS_FLEET", f->cfg->name,
						      "IVS_PARTICIPANT_ID", op->action.participant_id),
			  "host %s is not publishing; replication deferred", op->action.participant_id);
	} else if (err->kind == AWS_ERR_QUOTA) {
		struct fleet_state *fs = rec_fleet_state(r, f->cfg->name);
		action_backoff_fail(r, f, key);
		if (fs != NULL && !fs->capped_reported) {
			fs->capped_reported = true;
			log_event(LOG_WARNING, MSGID_QUOTA_CAPPED,
				  LOG_FIELDS("IVS_FLEET", f->cfg->name, "IVS_PARTICIPANT_ID",
					     op->action.participant_id),
				  "IVS refused another replication of %s (5 per participant): %s",
				  op->action.participant_id, err->message);
		}
	} else {
		record_failure(op, "StartParticipantReplication", err);
	}
	pass_op_done(op);
}

static int start_replication(struct reconciler *r, struct pass *p, size_t fi,
			     const struct plan_action *a, const char *dst)
{
	struct obs_fleet *f = &p->fleets[fi];
	struct op *op = pass_op_new(r, p, fi);
	const struct ivs_kv attrs[] = { { "ivs-autoscaler", "replica" } };

	if (op == NULL)
		return -ENOMEM;
	op->action = *a;
	op->action.kind = PLAN_START_REPLICATION;
	if (dst != a->stage_arn)
		snprintf(op->created_arn, sizeof(op->created_arn), "%s", dst);
	if (ivs_start_participant_replication(r->aws, f->cfg->origin_stage_arn, dst,
					      a->participant_id,
					      (int)(f->cfg->reconnect_window_ms / 1000), attrs, 1,
					      on_start_done, op) < 0)
		on_start_done(op, &pass_not_queued);
	return 0;
}

static void on_create_done(void *ud, const struct aws_error *err, const struct ivs_stage *stage)
{
	struct op *op = ud;
	struct reconciler *r = op->r;
	struct obs_fleet *f = &op->pass->fleets[op->fleet];
	char key[ACTION_KEY_MAX];

	/* answered either way (a timeout may have created it): a listing must be newer */
	rec_stages_changed(r, f->index);
	action_key(&op->action, f->cfg->name, key, sizeof(key));
	if (err != NULL && err->kind != AWS_OK) {
		if (err->kind == AWS_ERR_QUOTA)
			log_event(LOG_ERR, NULL, LOG_FIELDS("IVS_FLEET", f->cfg->name,
							    "IVS_OPERATION", "CreateStage"),
				  "stage quota reached: %s", err->message);
		else if (err->kind == AWS_ERR_NETWORK || err->kind == AWS_ERR_TIMEOUT ||
			 err->kind == AWS_ERR_SERVER)
			/* Not resent (no idempotency token): the listing tells, and adopts it. */
			log_event(LOG_NOTICE, NULL, LOG_FIELDS("IVS_FLEET", f->cfg->name,
							       "IVS_OPERATION", "CreateStage"),
				  "fleet %s: CreateStage outcome unknown; the next pass adopts the stage "
				  "if IVS created it", f->cfg->name);
		record_failure(op, "CreateStage", err);
		pass_op_done(op);
		pass_create_answered(r);
		return;
	}
	backoff_ok(r->backoff, key);
	op->pass->actions_done++;
	log_event(LOG_NOTICE, MSGID_STAGE_CREATED,
		  LOG_FIELDS("IVS_FLEET", f->cfg->name, "IVS_STAGE_ARN", stage->arn,
			     "IVS_OPERATION", "CreateStage"),
		  "created replica stage %s (%s) for fleet %s", stage->name, stage->arn, f->cfg->name);
	{
		char now[40], skey[KEY_MAX];
		rec_iso_time(rec_wall_ms(), now, sizeof(now));
		if (rec_stage_key(r, STORE_KEY_STAGE, stage->arn, skey, sizeof(skey)) == 0 &&
		    rec_write_begin(r, false, skey))
			rec_write_sent(r, false, skey,
				       store_put_stage_info(r->redis, skey, stage->arn, stage->name, now,
							    f->cfg->origin_stage_arn, rec_on_write, r));
	}
	if (f->n_created < PLAN_MAX_REPLICA_STAGES) {
		char (*n)[IVS_ARN_MAX + 1] = realloc(f->created, (f->n_created + 1) * sizeof(*n));
		if (n != NULL) {
			f->created = n;
			snprintf(f->created[f->n_created++], sizeof(f->created[0]), "%s", stage->arn);
		}
	}
	/* Feed the new stage at once: the host list travelled with the create action. */
	snprintf(op->created_arn, sizeof(op->created_arn), "%s", stage->arn);
	for (size_t h = 0; h < op->action.n_hosts && !r->stopping; h++) {
		struct plan_action a = op->action;
		a.participant_id = op->action.hosts[h];
		a.source_arn = f->cfg->origin_stage_arn;
		a.stage_arn = NULL;
		start_replication(r, op->pass, op->fleet, &a, op->created_arn);
	}
	pass_op_done(op);
	pass_create_answered(r);
}

static void on_stop_done(void *ud, const struct aws_error *err)
{
	struct op *op = ud;
	struct obs_fleet *f = &op->pass->fleets[op->fleet];

	if (err == NULL || err->kind == AWS_OK || err->kind == AWS_ERR_NOT_FOUND) {
		op->pass->actions_done++;
		log_event(LOG_INFO, MSGID_REPLICATION_STOPPED,
			  LOG_FIELDS("IVS_FLEET", f->cfg->name, "IVS_STAGE_ARN", op->action.stage_arn,
				     "IVS_PARTICIPANT_ID", op->action.participant_id,
				     "IVS_OPERATION", "StopParticipantReplication"),
			  "stopped replicating %s into %s", op->action.participant_id,
			  op->action.stage_arn);
		/* Remember the confirmation; if memory fails, the delete simply waits a pass. */
		struct pass *p = op->pass;
		struct pass_stop_done *n = realloc(p->stops_done, (p->n_stops_done + 1) * sizeof(*n));
		if (n != NULL) {
			p->stops_done = n;
			snprintf(n[p->n_stops_done].arn, sizeof(n->arn), "%s", op->action.stage_arn);
			snprintf(n[p->n_stops_done].participant, sizeof(n->participant), "%s",
				 op->action.participant_id);
			p->n_stops_done++;
		}
	} else {
		record_failure(op, "StopParticipantReplication", err);
	}
	pass_op_done(op);
}

static void on_delete_done(void *ud, const struct aws_error *err)
{
	struct op *op = ud;
	struct reconciler *r = op->r;
	struct obs_fleet *f = &op->pass->fleets[op->fleet];

	rec_stages_changed(r, f->index);
	if (err == NULL || err->kind == AWS_OK || err->kind == AWS_ERR_NOT_FOUND) {
		op->pass->actions_done++;
		log_event(LOG_NOTICE, MSGID_STAGE_DELETED,
			  LOG_FIELDS("IVS_FLEET", f->cfg->name, "IVS_STAGE_ARN", op->action.stage_arn,
				     "IVS_OPERATION", "DeleteStage"),
			  "deleted drained replica stage %s", op->action.stage_arn);
		rec_forget_stage(r, op->action.stage_arn);
	} else {
		record_failure(op, "DeleteStage", err);
	}
	pass_op_done(op);
}

/* MARK and UNMARK are Redis writes; the next pass reads the mark back. */
static void on_mark_done(void *ud, int err, const char *error)
{
	struct op *op = ud;
	struct obs_fleet *f = &op->pass->fleets[op->fleet];
	bool mark = op->action.kind == PLAN_MARK_DRAINING;

	if (err != 0) {
		struct aws_error e = { .kind = AWS_ERR_LOCAL };
		snprintf(e.message, sizeof(e.message), "redis: %s",
			 error != NULL ? error : strerror(-err));
		record_failure(op, mark ? "MarkDraining" : "UnmarkDraining", &e);
	} else {
		op->pass->actions_done++;
		log_event(LOG_NOTICE, mark ? MSGID_STAGE_DRAINING : NULL,
			  LOG_FIELDS("IVS_FLEET", f->cfg->name, "IVS_STAGE_ARN", op->action.stage_arn),
			  mark ? "draining replica stage %s (%s)" : "stage %s back in service (%s)",
			  op->action.stage_arn, op->action.reason);
	}
	pass_op_done(op);
}

static void act_one(struct reconciler *r, struct pass *p, size_t fi, const struct plan_action *a)
{
	struct obs_fleet *f = &p->fleets[fi];
	struct op *op;
	int rc = 0;

	switch (a->kind) {
	case PLAN_START_REPLICATION:
		start_replication(r, p, fi, a, a->stage_arn);
		return;
	case PLAN_CREATE_STAGE: {
		char name[IVS_STAGE_NAME_MAX + 1], created[40];
		struct ivs_kv tags[OWNERSHIP_TAGS_MAX + CONFIG_MAX_TAGS];
		size_t nt = 0;
		int64_t now = rec_wall_ms();
		op = pass_op_new(r, p, fi);
		if (op == NULL)
			return;
		op->action = *a;
		pass_create_sent(r);                /* on_create_done: pass_create_answered */
		rec_iso_time(now, created, sizeof(created));
		snprintf(name, sizeof(name), "%.64s-replica-%" PRId64 "-%" PRIu64, f->cfg->name, now,
			 ++r->stage_seq);
		tags[nt++] = (struct ivs_kv){ TAG_MANAGED, "true" };
		tags[nt++] = (struct ivs_kv){ TAG_FLEET, f->cfg->name };
		tags[nt++] = (struct ivs_kv){ TAG_ORIGIN, ownership_origin_id(f->cfg->origin_stage_arn) };
		if (r->config->controller.owner[0] != '\0')
			tags[nt++] = (struct ivs_kv){ TAG_OWNER, r->config->controller.owner };
		tags[nt++] = (struct ivs_kv){ TAG_CREATED, created };
		for (size_t i = 0; i < f->cfg->n_tags; i++)
			tags[nt++] = (struct ivs_kv){ f->cfg->tags[i].key, f->cfg->tags[i].value };
		rc = ivs_create_stage(r->aws, name, tags, nt, on_create_done, op);
		if (rc < 0)
			on_create_done(op, &pass_not_queued, NULL);
		return;
	}
	case PLAN_STOP_REPLICATION:
		op = pass_op_new(r, p, fi);
		if (op == NULL)
			return;
		op->action = *a;
		if (ivs_stop_participant_replication(r->aws, a->source_arn, a->stage_arn,
						     a->participant_id, on_stop_done, op) < 0)
			on_stop_done(op, &pass_not_queued);
		return;
	case PLAN_MARK_DRAINING:
	case PLAN_UNMARK_DRAINING: {
		char key[KEY_MAX];
		op = pass_op_new(r, p, fi);
		if (op == NULL)
			return;
		op->action = *a;
		if (rec_stage_key(r, STORE_KEY_DRAINING, a->stage_arn, key, sizeof(key)) < 0) {
			on_mark_done(op, -ENAMETOOLONG, "key too long");
			return;
		}
		if (r->redis == NULL)
			rc = -ENOTCONN;
		else if (a->kind == PLAN_MARK_DRAINING)
			rc = store_mark_draining(r->redis, key, p->started_ms, on_mark_done, op);
		else
			rc = store_unmark_draining(r->redis, key, on_mark_done, op);
		if (rc < 0)
			on_mark_done(op, rc, rc == -ENOTCONN ? "redis is down" : strerror(-rc));
		return;
	}
	case PLAN_DELETE_STAGE:
		return;  /* after this fleet's stops: act_fleet_deletes */
	}
}

/*
 * A stage may be deleted only when IVS confirmed, this pass, every stop the plan asked for into
 * it. A stop that was skipped (backoff), never sent or that failed leaves the stage alone, so a
 * delete can never race a replication that is still running.
 */
static bool stops_confirmed(const struct pass *p, const struct obs_fleet *f, const char *arn)
{
	for (size_t i = 0; i < f->n_actions; i++) {
		const struct plan_action *a = &f->actions[i];
		bool done = false;
		if (a->kind != PLAN_STOP_REPLICATION || strcmp(a->stage_arn, arn) != 0)
			continue;
		for (size_t k = 0; k < p->n_stops_done && !done; k++)
			done = strcmp(p->stops_done[k].arn, arn) == 0 &&
			       strcmp(p->stops_done[k].participant, a->participant_id) == 0;
		if (!done)
			return false;
	}
	return true;
}

/* One fleet's deletes, once its actions (the stops into those stages) have all answered. */
void act_fleet_deletes(struct reconciler *r, struct pass *p, size_t fi)
{
	struct obs_fleet *f = &p->fleets[fi];
	struct fleet_state *fs = rec_fleet_state(r, f->cfg->name);

	if (!f->planned || !rec_may_mutate(r, fs))
		return;
	for (size_t i = 0; i < f->n_actions; i++) {
		const struct plan_action *a = &f->actions[i];
		char key[ACTION_KEY_MAX];
		if (a->kind != PLAN_DELETE_STAGE)
			continue;
		action_key(a, f->cfg->name, key, sizeof(key));
		if (!stops_confirmed(p, f, a->stage_arn) ||
		    backoff_blocked(r->backoff, key, rec_wall_ms()))
			continue;
		struct op *op = pass_op_new(r, p, fi);
		if (op == NULL)
			continue;
		op->action = *a;
		if (ivs_delete_stage(r->aws, a->stage_arn, on_delete_done, op) < 0)
			on_delete_done(op, &pass_not_queued);
	}
}

/* ---- plan -------------------------------------------------------------------------------- */

static void fleet_policy_from_config(const struct config_fleet *c, struct fleet_policy *out)
{
	*out = (struct fleet_policy){
		.viewers_per_stage = c->viewers_per_stage,
		.target_utilization = c->target_utilization,
		.min_replicas = c->min_replicas,
		.max_replicas = c->max_replicas,
		.scale_down_delay_ms = (int64_t)c->scale_down_delay_ms,
		.drain_timeout_ms = (int64_t)c->drain_timeout_ms,
		.drain_min_ms = (int64_t)c->drain_min_ms,
	};
}

/*
 * Build the planner's input from an observation. The arrays live in *scratch (freed by the
 * caller with free()), strings point into the observation.
 */

void rec_plan_input_build(const struct reconciler *r, const struct pass *p,
			     const struct obs_fleet *f, struct plan_scratch *s, struct plan_input *in)
{
	size_t nm = 0;

	memset(in, 0, sizeof(*in));
	in->fleet = f->cfg->name;
	in->origin_arn = f->cfg->origin_stage_arn;
	in->origin_seen = f->origin_seen;
	in->origin_session_id = f->origin_session;
	in->origin_viewers_known = f->origin.viewers_known;
	in->origin_viewers = f->origin.viewers;
	for (size_t i = 0; i < f->n_replicas && i < PLAN_MAX_REPLICA_STAGES; i++) {
		const struct obs_stage *st = &f->replicas[i];
		s->replicas[i] = (struct plan_replica_stage){
			.arn = st->arn, .name = st->name, .created_ms = st->created_ms,
			.viewers_known = st->viewers_known, .viewers = st->viewers,
			.draining = st->draining, .draining_since_ms = st->draining_since_ms,
			.operator_drain = st->operator_drain,
			.feeders = st->feeders != NULL ? st->feeders->items : NULL,
			.n_feeders = st->feeders != NULL ? st->feeders->n : 0,
			.feeders_unknown = st->feeders_unknown,
		};
	}
	in->replicas = s->replicas;
	in->n_replicas = f->n_replicas < PLAN_MAX_REPLICA_STAGES ? f->n_replicas : PLAN_MAX_REPLICA_STAGES;
	for (size_t i = 0; i < f->n_hosts; i++) {
		s->hosts[i] = (struct plan_host){
			.participant_id = f->hosts[i].participant_id,
			.replicas_ok = f->hosts[i].replicas_ok,
			.replications = f->hosts[i].replications,
			.n_replications = f->hosts[i].n_replications,
		};
	}
	in->hosts = s->hosts;
	in->n_hosts = f->n_hosts;
	for (size_t i = 0; i < r->n_manual; i++) {
		if (strcmp(r->manual[i].src, f->cfg->origin_stage_arn) != 0)
			continue;
		s->manual[nm++] = (struct plan_manual_replication){
			.source_arn = r->manual[i].src, .destination_arn = r->manual[i].dst,
			.participant_id = r->manual[i].participant,
		};
	}
	in->manual = s->manual;
	in->n_manual = nm;
	in->stages_ok = p->stages_ok && !f->legacy_unknown && f->n_replicas <= PLAN_MAX_REPLICA_STAGES;
	in->hosts_ok = f->hosts_ok;
	in->viewers_ok = f->redis_ok && f->viewers_ok;
	in->viewer_keys = f->viewer_keys;
	in->override = f->override;
	in->override_stages = f->override_stages;
	fleet_policy_from_config(f->cfg, &in->policy);
}

/*
 * Keep what outlives planning: the summary, and right-sized copies of the actions and of the
 * open stages (most fleets, most passes: none of either). 0 or -ENOMEM.
 */
static int keep_plan(struct obs_fleet *f, const struct plan_output *o)
{
	if (o->n_actions > 0) {
		f->actions = malloc(o->n_actions * sizeof(*f->actions));
		if (f->actions == NULL)
			return -ENOMEM;
		memcpy(f->actions, o->actions, o->n_actions * sizeof(*f->actions));
	}
	if (o->n_open > 0) {
		f->open = malloc(o->n_open * sizeof(*f->open));
		if (f->open == NULL) {
			free(f->actions);
			f->actions = NULL;
			return -ENOMEM;
		}
		memcpy(f->open, o->open, o->n_open * sizeof(*f->open));
	}
	f->n_actions = o->n_actions;
	f->n_open = o->n_open;
	f->summary = o->summary;
	f->planned = true;
	return 0;
}

/* Plan one fleet whose observation is complete and send its actions (deletes come later). */
static void on_adopt_done(void *ud, const struct aws_error *err)
{
	struct op *op = ud;
	struct obs_fleet *f = &op->pass->fleets[op->fleet];

	if (err == NULL || err->kind == AWS_OK) {
		op->pass->actions_done++;
		log_event(LOG_NOTICE, NULL,
			  LOG_FIELDS("IVS_FLEET", f->cfg->name, "IVS_STAGE_ARN", op->created_arn,
				     "IVS_OPERATION", "TagResource"),
			  "adopted replica stage %s into fleet %s (its stage record names the fleet's "
			  "origin); origin tag added", op->created_arn, f->cfg->name);
	} else {
		record_failure(op, "TagResource", err);
	}
	pass_op_done(op);
}

/*
 * 0.1-style stages adopted this pass get the tags that make them ours by their tags alone
 * (the origin, and the owner when one is configured). Only a daemon that may mutate does it.
 */
static void tag_adopted(struct reconciler *r, struct pass *p, size_t fi)
{
	struct obs_fleet *f = &p->fleets[fi];

	for (size_t i = 0; i < f->n_replicas; i++) {
		struct ivs_kv tags[3];
		size_t nt = 0;
		struct op *op;

		if (!f->replicas[i].adopted)
			continue;
		op = pass_op_new(r, p, fi);
		if (op == NULL)
			return;
		snprintf(op->created_arn, sizeof(op->created_arn), "%s", f->replicas[i].arn);
		op->action.kind = PLAN_CREATE_STAGE;   /* for the failure log's backoff key only */
		op->action.stage_arn = f->replicas[i].arn;
		/* managed=true again: IAM policies that allow TagResource only with that request tag
		 * (docs/examples/iam-policy.json) allow this one too. */
		tags[nt++] = (struct ivs_kv){ TAG_MANAGED, "true" };
		tags[nt++] = (struct ivs_kv){ TAG_ORIGIN, ownership_origin_id(f->cfg->origin_stage_arn) };
		if (r->config->controller.owner[0] != '\0')
			tags[nt++] = (struct ivs_kv){ TAG_OWNER, r->config->controller.owner };
		if (ivs_tag_resource(r->aws, f->replicas[i].arn, tags, nt, on_adopt_done, op) < 0)
			on_adopt_done(op, &pass_not_queued);
	}
}

void act_fleet(struct reconciler *r, struct pass *p, size_t fi)
{
	struct obs_fleet *f = &p->fleets[fi];
	struct fleet_state *fs = rec_fleet_state(r, f->cfg->name);
	int64_t now = rec_wall_ms();
	/* The full plan lives only while it is copied: keep_plan keeps what outlives it. */
	struct plan_scratch *scratch = malloc(sizeof(*scratch));
	struct plan_output *plan = malloc(sizeof(*plan));
	struct plan_input in;
	int rc = -ENOMEM;

	if (fs == NULL)
		goto out;
	if (scratch == NULL || plan == NULL)
		goto failed;
	rec_plan_input_build(r, p, f, scratch, &in);
	rc = plan_fleet(&in, &fs->policy, now, plan);
	if (rc == 0)
		rc = keep_plan(f, plan);
	if (rc < 0)
		goto failed;
	record_fleet_decisions(r, f, fs);
	if (!rec_may_mutate(r, fs))
		goto out;
	tag_adopted(r, p, fi);
	for (size_t i = 0; i < f->n_actions; i++) {
		const struct plan_action *a = &f->actions[i];
		char key[ACTION_KEY_MAX];
		action_key(a, f->cfg->name, key, sizeof(key));
		if (a->kind != PLAN_DELETE_STAGE && backoff_blocked(r->backoff, key, now))
			continue;
		act_one(r, p, fi, a);
	}
	goto out;
failed:
	log_event(LOG_ERR, NULL, LOG_FIELDS("IVS_FLEET", f->cfg->name),
		  "fleet %s: planning failed: %s", f->cfg->name, strerror(-rc));
	p->actions_failed++;
out:
	free(scratch);
	free(plan);
}

