/*
 * act.c — the act and record phases of a reconcile pass: executing plan actions with per-item
 * backoff, then the Redis write-backs, metrics and the pass log line.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ivs.h"
#include "leader.h"
#include "log.h"
#include "metrics.h"
#include "plan.h"
#include "policy.h"
#include "reconcile_internal.h"
#include "redisio.h"
#include "store.h"
#include "store_parse.h"

/* ---- per-item backoff -------------------------------------------------------------------- */

static struct backoff_item *backoff_find(struct reconciler *r, const char *key, bool create)
{
	for (size_t i = 0; i < r->n_backoff; i++)
		if (strcmp(r->backoff[i].key, key) == 0)
			return &r->backoff[i];
	if (!create || r->n_backoff == MAX_BACKOFF_ITEMS)
		return NULL;
	struct backoff_item *b = &r->backoff[r->n_backoff++];
	memset(b, 0, sizeof(*b));
	snprintf(b->key, sizeof(b->key), "%s", key);
	return b;
}

static bool backoff_blocked(struct reconciler *r, const char *key, int64_t now)
{
	struct backoff_item *b = backoff_find(r, key, false);
	return b != NULL && now < b->next_ms;
}

static void backoff_fail(struct reconciler *r, const char *key, int64_t now)
{
	struct backoff_item *b = backoff_find(r, key, true);
	uint64_t delay;
	if (b == NULL)
		return;
	delay = r->config->reconcile.backoff_initial_ms;
	for (unsigned i = 0; i < b->failures && delay < r->config->reconcile.backoff_max_ms; i++)
		delay *= 2;
	if (delay > r->config->reconcile.backoff_max_ms)
		delay = r->config->reconcile.backoff_max_ms;
	b->failures++;
	b->next_ms = now + (int64_t)delay;
}

static void backoff_ok(struct reconciler *r, const char *key)
{
	for (size_t i = 0; i < r->n_backoff; i++) {
		if (strcmp(r->backoff[i].key, key) == 0) {
			r->backoff[i] = r->backoff[--r->n_backoff];
			return;
		}
	}
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
	char key[sizeof(((struct backoff_item *)0)->key)];
	char status[8];

	action_key(&op->action, f->cfg->name, key, sizeof(key));
	backoff_fail(op->r, key, rec_wall_ms());
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
	char key[sizeof(((struct backoff_item *)0)->key)];

	action_key(&op->action, f->cfg->name, key, sizeof(key));
	if (err == NULL || err->kind == AWS_OK ||
	    (err->kind == AWS_ERR_CONFLICT && strstr(err->message, "already") != NULL)) {
		char now[40], rkey[KEY_MAX];
		backoff_ok(r, key);
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
		if (rec_stage_key(r, "replication:", dst, "", rkey, sizeof(rkey)) == 0 &&
		    rec_write_begin(r, false, rkey))
			rec_write_sent(r, false, rkey,
				       store_put_replication(r->redis, rkey, op->action.source_arn, dst,
							     op->action.participant_id, now,
							     rec_on_write, r));
	} else if (err->kind == AWS_ERR_CONFLICT && strstr(err->message, "not publishing") != NULL) {
		/* The host went quiet between observe and act: retry on a later pass, quietly. */
		f->not_publishing++;
		backoff_fail(r, key, rec_wall_ms());
		log_event(LOG_DEBUG, NULL, LOG_FIELDS("IVS_FLEET", f->cfg->name,
						      "IVS_PARTICIPANT_ID", op->action.participant_id),
			  "host %s is not publishing; replication deferred", op->action.participant_id);
	} else if (err->kind == AWS_ERR_QUOTA) {
		struct fleet_state *fs = rec_fleet_state(r, f->cfg->name);
		backoff_fail(r, key, rec_wall_ms());
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
	rec_op_done(op);
}

static int start_replication(struct reconciler *r, struct pass *p, size_t fi,
			     const struct plan_action *a, const char *dst)
{
	struct obs_fleet *f = &p->fleets[fi];
	struct op *op = rec_op_new(r, p, fi);
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
					      on_start_done, op) < 0) {
		struct aws_error e = { .kind = AWS_ERR_LOCAL };
		snprintf(e.message, sizeof(e.message), "could not queue the request");
		on_start_done(op, &e);
	}
	return 0;
}

static void on_create_done(void *ud, const struct aws_error *err, const struct ivs_stage *stage)
{
	struct op *op = ud;
	struct reconciler *r = op->r;
	struct obs_fleet *f = &op->pass->fleets[op->fleet];
	char key[sizeof(((struct backoff_item *)0)->key)];

	action_key(&op->action, f->cfg->name, key, sizeof(key));
	if (err != NULL && err->kind != AWS_OK) {
		if (err->kind == AWS_ERR_QUOTA)
			log_event(LOG_ERR, NULL, LOG_FIELDS("IVS_FLEET", f->cfg->name,
							    "IVS_OPERATION", "CreateStage"),
				  "stage quota reached: %s", err->message);
		record_failure(op, "CreateStage", err);
		rec_op_done(op);
		return;
	}
	backoff_ok(r, key);
	op->pass->actions_done++;
	log_event(LOG_NOTICE, MSGID_STAGE_CREATED,
		  LOG_FIELDS("IVS_FLEET", f->cfg->name, "IVS_STAGE_ARN", stage->arn,
			     "IVS_OPERATION", "CreateStage"),
		  "created replica stage %s (%s) for fleet %s", stage->name, stage->arn, f->cfg->name);
	{
		char now[40], skey[KEY_MAX];
		rec_iso_time(rec_wall_ms(), now, sizeof(now));
		if (rec_stage_key(r, "stage:", stage->arn, "", skey, sizeof(skey)) == 0 &&
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
	rec_op_done(op);
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
	rec_op_done(op);
}

static void on_delete_done(void *ud, const struct aws_error *err)
{
	struct op *op = ud;
	struct reconciler *r = op->r;
	struct obs_fleet *f = &op->pass->fleets[op->fleet];

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
	rec_op_done(op);
}

/*
 * Redis writes go through common/store.c. Each one is owed a callback (in_flight); the record
 * phase's writes are also counted in record_writes, and the pass_done hook waits for their
 * answers, so that --once exits (and a stop finishes) only after Redis holds what the pass
 * recorded. Other writes only matter for the next pass, which re-reads everything.
 */
static void pass_done_hook(struct reconciler *r)
{
	r->hook_pending = false;
	if (r->hooks.pass_done != NULL)
		r->hooks.pass_done(r->hooks.ud, r->hook_ok);
}

void rec_on_write(void *ud, int err, const char *error)
{
	struct reconciler *r = ud;
	r->in_flight--;
	if (err != 0)
		log_event(LOG_WARNING, NULL, NULL, "redis write failed: %s",
			  error != NULL ? error : strerror(-err));
	rec_check_idle(r);
}

static void on_record_write(void *ud, int err, const char *error)
{
	struct reconciler *r = ud;
	r->record_writes--;
	rec_on_write(ud, err, error);
	if (r->record_writes == 0 && r->hook_pending)
		pass_done_hook(r);
}

bool rec_write_begin(struct reconciler *r, bool record, const char *key)
{
	if (r->redis == NULL || !rec_may_write(r))
		return false;
	if (!redisio_connected(r->redis)) {
		/* A record write: the pass already reported the outage (fail static). */
		if (record)
			log_debug("redis write of %s skipped (redis down)", key);
		else
			log_event(LOG_WARNING, NULL, NULL, "redis write of %s not queued (redis down)",
				  key);
		return false;
	}
	r->in_flight++;
	if (record)
		r->record_writes++;
	return true;
}

void rec_write_sent(struct reconciler *r, bool record, const char *key, int rc)
{
	if (rc == 0)
		return;
	r->in_flight--;
	if (record)
		r->record_writes--;
	log_event(LOG_WARNING, NULL, NULL, "redis write of %s not queued: %s", key, strerror(-rc));
	rec_check_idle(r);
}

/* DEL stage:{arn}, replication:{arn}, stage:{arn}:draining and :drained_by of a gone stage. */
void rec_forget_stage(struct reconciler *r, const char *arn)
{
	char k1[KEY_MAX], k2[KEY_MAX], k3[KEY_MAX], k4[KEY_MAX];

	if (rec_stage_key(r, "stage:", arn, "", k1, sizeof(k1)) == 0 &&
	    rec_stage_key(r, "replication:", arn, "", k2, sizeof(k2)) == 0 &&
	    rec_stage_key(r, "stage:", arn, ":draining", k3, sizeof(k3)) == 0 &&
	    rec_stage_key(r, "stage:", arn, ":drained_by", k4, sizeof(k4)) == 0 &&
	    rec_write_begin(r, false, k1))
		rec_write_sent(r, false, k1,
			       store_forget_stage(r->redis, k1, k2, k3, k4, rec_on_write, r));
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
	rec_op_done(op);
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
		op = rec_op_new(r, p, fi);
		if (op == NULL)
			return;
		op->action = *a;
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
		if (rc < 0) {
			struct aws_error e = { .kind = AWS_ERR_LOCAL };
			snprintf(e.message, sizeof(e.message), "could not queue the request");
			on_create_done(op, &e, NULL);
		}
		return;
	}
	case PLAN_STOP_REPLICATION:
		op = rec_op_new(r, p, fi);
		if (op == NULL)
			return;
		op->action = *a;
		if (ivs_stop_participant_replication(r->aws, a->source_arn, a->stage_arn,
						     a->participant_id, on_stop_done, op) < 0) {
			struct aws_error e = { .kind = AWS_ERR_LOCAL };
			snprintf(e.message, sizeof(e.message), "could not queue the request");
			on_stop_done(op, &e);
		}
		return;
	case PLAN_MARK_DRAINING:
	case PLAN_UNMARK_DRAINING: {
		char key[KEY_MAX];
		op = rec_op_new(r, p, fi);
		if (op == NULL)
			return;
		op->action = *a;
		if (rec_stage_key(r, "stage:", a->stage_arn, ":draining", key, sizeof(key)) < 0) {
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
		return;  /* after this fleet's stops: rec_fleet_deletes */
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
void rec_fleet_deletes(struct reconciler *r, struct pass *p, size_t fi)
{
	struct obs_fleet *f = &p->fleets[fi];
	struct fleet_state *fs = rec_fleet_state(r, f->cfg->name);

	if (!f->planned || !rec_may_mutate(r, fs))
		return;
	for (size_t i = 0; i < f->n_actions; i++) {
		const struct plan_action *a = &f->actions[i];
		char key[sizeof(((struct backoff_item *)0)->key)];
		if (a->kind != PLAN_DELETE_STAGE)
			continue;
		action_key(a, f->cfg->name, key, sizeof(key));
		if (!stops_confirmed(p, f, a->stage_arn) || backoff_blocked(r, key, rec_wall_ms()))
			continue;
		struct op *op = rec_op_new(r, p, fi);
		if (op == NULL)
			continue;
		op->action = *a;
		if (ivs_delete_stage(r->aws, a->stage_arn, on_delete_done, op) < 0) {
			struct aws_error e = { .kind = AWS_ERR_LOCAL };
			snprintf(e.message, sizeof(e.message), "could not queue the request");
			on_delete_done(op, &e);
		}
	}
}

/*
 * A bad value in Redis stays bad for many passes: warn when it appears or changes, say when it
 * clears, and only debug in between. last holds what was reported ("" = nothing wrong).
 */
static void report_bad_value(const char *fleet, const char *what, const char *error, char *last,
			     size_t lastlen)
{
	if (strcmp(error, last) == 0) {
		if (error[0] != '\0')
			log_debug("fleet %s: %s still ignored: %s", fleet, what, error);
		return;
	}
	if (error[0] != '\0')
		log_event(LOG_WARNING, NULL, LOG_FIELDS("IVS_FLEET", fleet),
			  "fleet %s: %s ignored: %s", fleet, what, error);
	else
		log_event(LOG_NOTICE, NULL, LOG_FIELDS("IVS_FLEET", fleet),
			  "fleet %s: %s valid again", fleet, what);
	snprintf(last, lastlen, "%s", error);
}

static void log_fleet_decisions(struct reconciler *r, struct obs_fleet *f, struct fleet_state *fs)
{
	const struct plan_summary *s = &f->summary;
	char desired[16], actual[16];

	snprintf(desired, sizeof(desired), "%u", s->desired_stages);
	snprintf(actual, sizeof(actual), "%u", s->serving_stages);
	if (s->desired_stages != s->serving_stages)
		log_event(LOG_INFO, MSGID_SCALE_DECISION,
			  LOG_FIELDS("IVS_FLEET", f->cfg->name, "DESIRED_STAGES", desired,
				     "ACTUAL_STAGES", actual),
			  "fleet %s: %u stages wanted, %u serving (%s)", f->cfg->name,
			  s->desired_stages, s->serving_stages,
			  s->decision.reason ? s->decision.reason : "");
	if (s->capped && !fs->capped_reported) {
		fs->capped_reported = true;
		log_event(LOG_WARNING, MSGID_QUOTA_CAPPED, LOG_FIELDS("IVS_FLEET", f->cfg->name),
			  "fleet %s is capped: demand needs more than %d replica stages, but one host can "
			  "feed at most %d (IVS: 5 replications per participant)", f->cfg->name,
			  POLICY_MAX_REPLICAS_PER_HOST, POLICY_MAX_REPLICAS_PER_HOST);
	} else if (!s->capped) {
		fs->capped_reported = false;
	}
	if (s->fail_static != fs->fail_static_reported) {
		fs->fail_static_reported = s->fail_static;
		log_event(s->fail_static ? LOG_WARNING : LOG_NOTICE,
			  s->fail_static ? MSGID_FAIL_STATIC_ENTERED : MSGID_FAIL_STATIC_LEFT,
			  LOG_FIELDS("IVS_FLEET", f->cfg->name),
			  s->fail_static ? "fleet %s: a read failed (%s); nothing is drained or deleted "
					   "until reads succeed"
					 : "fleet %s: reads healthy again%s",
			  f->cfg->name, s->fail_static ? (s->fail_reason ? s->fail_reason : "?") : "");
	}
	if (f->n_hosts == 0 && f->n_replicas > 0 && f->hosts_ok) {
		if (!fs->no_host_reported) {
			fs->no_host_reported = true;
			log_event(LOG_WARNING, NULL, LOG_FIELDS("IVS_FLEET", f->cfg->name,
								"IVS_STAGE_ARN", f->cfg->origin_stage_arn),
				  "fleet %s: no host is publishing in the origin stage; replica stages "
				  "wait for one", f->cfg->name);
		}
	} else if (f->n_hosts > 0) {
		fs->no_host_reported = false;
	}
	/* Without a Redis answer nothing is known about the values: keep what was reported. */
	if (f->redis_ok) {
		report_bad_value(f->cfg->name, "desired_stages override",
				 f->override == PLAN_OVERRIDE_INVALID ? f->override_error : "",
				 fs->override_reported, sizeof(fs->override_reported));
		report_bad_value(f->cfg->name, "publisher info", f->publisher_error,
				 fs->publisher_reported, sizeof(fs->publisher_reported));
		report_bad_value(f->cfg->name, "viewer count", f->viewers_error,
				 fs->viewers_reported, sizeof(fs->viewers_reported));
	}
	(void)r;
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
	rec_op_done(op);
}

/*
 * 0.1-style stages adopted this pass get the tags that make them ours by their tags alone
 * (the origin, and the owner when one is configured). Only a daemon that may mutate does it.
 */
static void tag_adopted(struct reconciler *r, struct pass *p, size_t fi)
{
	struct obs_fleet *f = &p->fleets[fi];

	for (size_t i = 0; i < f->n_replicas; i++) {
		struct ivs_kv tags[2];
		size_t nt = 0;
		struct op *op;

		if (!f->replicas[i].adopted)
			continue;
		op = rec_op_new(r, p, fi);
		if (op == NULL)
			return;
		snprintf(op->created_arn, sizeof(op->created_arn), "%s", f->replicas[i].arn);
		op->action.kind = PLAN_CREATE_STAGE;   /* for the failure log's backoff key only */
		op->action.stage_arn = f->replicas[i].arn;
		tags[nt++] = (struct ivs_kv){ TAG_ORIGIN, ownership_origin_id(f->cfg->origin_stage_arn) };
		if (r->config->controller.owner[0] != '\0')
			tags[nt++] = (struct ivs_kv){ TAG_OWNER, r->config->controller.owner };
		if (ivs_tag_resource(r->aws, f->replicas[i].arn, tags, nt, on_adopt_done, op) < 0) {
			struct aws_error e = { .kind = AWS_ERR_LOCAL };
			snprintf(e.message, sizeof(e.message), "could not queue the request");
			on_adopt_done(op, &e);
		}
	}
}

/* Plan one fleet whose observation is complete and send its actions (deletes come later). */
void rec_fleet_act(struct reconciler *r, struct pass *p, size_t fi)
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
	log_fleet_decisions(r, f, fs);
	if (!rec_may_mutate(r, fs))
		goto out;
	tag_adopted(r, p, fi);
	for (size_t i = 0; i < f->n_actions; i++) {
		const struct plan_action *a = &f->actions[i];
		char key[sizeof(((struct backoff_item *)0)->key)];
		action_key(a, f->cfg->name, key, sizeof(key));
		if (a->kind != PLAN_DELETE_STAGE && backoff_blocked(r, key, now))
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

/* ---- record ------------------------------------------------------------------------------ */

static void record_fleet_redis(struct reconciler *r, const struct obs_fleet *f)
{
	const char *key = f->cfg->redis_keys.open_stages;
	const char **arns = NULL;
	long long *viewers = NULL;
	size_t n = 0;

	if (!f->planned || r->dry_run || r->redis == NULL)
		return;
	arns = calloc(f->n_open + f->n_created + 1, sizeof(*arns));
	viewers = calloc(f->n_open + f->n_created + 1, sizeof(*viewers));
	if (arns == NULL || viewers == NULL)
		goto out;
	/* With nothing open, stages created this pass stay out too (the set is just emptied). */
	if (f->n_open > 0) {
		for (size_t i = 0; i < f->n_open; i++) {
			arns[n] = f->open[i].arn;
			viewers[n++] = (long long)f->open[i].viewers;
		}
		for (size_t i = 0; i < f->n_created; i++) {
			arns[n] = f->created[i];
			viewers[n++] = 0;
		}
	}
	if (rec_write_begin(r, true, key))
		rec_write_sent(r, true, key, store_set_open_stages(r->redis, key, n, arns, viewers,
								   on_record_write, r));
out:
	free(arns);
	free(viewers);
}

/* Does any host of the fleet have an ACTIVE replication into arn (as observed)? */
static bool stage_fed(const struct obs_fleet *f, const char *arn)
{
	for (size_t h = 0; h < f->n_hosts; h++)
		for (size_t k = 0; k < f->hosts[h].n_replications; k++)
			if (f->hosts[h].replications[k].state == PLAN_REPLICATION_ACTIVE &&
			    strcmp(f->hosts[h].replications[k].destination_arn, arn) == 0)
				return true;
	return false;
}

/*
 * The records the application reads for every serving replica stage, written only when absent
 * (SET NX): a stage adopted after a crash, or a replication that IVS shows ACTIVE although its
 * StartParticipantReplication answer was never seen (the daemon died first), still gets its
 * stage:{arn} and replication:{dest} keys. Existing keys are the creation-time records, kept.
 * A replication:{dest} record for a stage no host feeds any more (IVS reports none ACTIVE, every
 * read succeeded, and no start succeeded this pass) is deleted: the key follows what IVS says.
 */
static void record_fleet_keys(struct reconciler *r, const struct obs_fleet *f)
{
	char key[KEY_MAX], when[40];
	/* Only hosts seen publishing have their replications listed: with none, nothing is known. */
	bool replicas_known = f->hosts_ok && f->n_hosts > 0;

	if (!f->planned || r->dry_run || r->redis == NULL)
		return;
	for (size_t h = 0; h < f->n_hosts; h++)
		replicas_known = replicas_known && f->hosts[h].replicas_ok;
	for (size_t i = 0; i < f->n_replicas; i++) {
		const struct obs_stage *s = &f->replicas[i];
		if (s->draining)
			continue;
		rec_iso_time(s->created_ms > 0 ? s->created_ms : rec_wall_ms(), when, sizeof(when));
		if (rec_stage_key(r, "stage:", s->arn, "", key, sizeof(key)) == 0 &&
		    rec_write_begin(r, true, key))
			rec_write_sent(r, true, key,
				       store_put_stage_info_nx(r->redis, key, s->arn, s->name, when,
							       f->cfg->origin_stage_arn,
							       on_record_write, r));
		for (size_t h = 0; h < f->n_hosts; h++) {
			const struct obs_host *host = &f->hosts[h];
			const struct plan_replication *rep = NULL;
			for (size_t k = 0; k < host->n_replications; k++)
				if (host->replications[k].state == PLAN_REPLICATION_ACTIVE &&
				    strcmp(host->replications[k].destination_arn, s->arn) == 0)
					rep = &host->replications[k];
			if (rep == NULL)
				continue;
			rec_iso_time(rec_wall_ms(), when, sizeof(when));
			if (rec_stage_key(r, "replication:", s->arn, "", key, sizeof(key)) == 0 &&
			    rec_write_begin(r, true, key))
				rec_write_sent(r, true, key,
					       store_put_replication_nx(r->redis, key,
									f->cfg->origin_stage_arn, s->arn,
									host->participant_id, when,
									on_record_write, r));
			break;                  /* one record per destination, as the server kept it */
		}
		if (replicas_known && !s->fed_this_pass && !stage_fed(f, s->arn) &&
		    rec_stage_key(r, "replication:", s->arn, "", key, sizeof(key)) == 0 &&
		    rec_write_begin(r, true, key))
			rec_write_sent(r, true, key, store_del_replication(r->redis, key, on_record_write, r));
	}
}

static void record_status_hash(struct reconciler *r, const struct pass *p)
{
	char key[KEY_MAX], at[40], passes[24], dur[24], deadline[40] = "";
	int64_t until = leader_deadline_wall_ms(r->leader);
	if (r->dry_run || r->redis == NULL)
		return;
	if (until > 0)
		rec_iso_time(until, deadline, sizeof(deadline));
	snprintf(key, sizeof(key), "%sautoscaler:status", r->config->redis.key_prefix);
	rec_iso_time(p->finished_ms, at, sizeof(at));
	snprintf(passes, sizeof(passes), "%" PRIu64, r->passes);
	snprintf(dur, sizeof(dur), "%" PRIu64, p->duration_us / 1000);
	const char *const fields[] = { "last_pass_at", "last_pass_result", "last_pass_duration_ms",
				       "passes", "version", "leader", "leader_id",
				       "lease_deadline" };
	/* Only the leader writes (rec_write_begin): the hash names it and its lease deadline
	 * ("" without ha.enabled). */
	const char *const values[] = { at, p->ok ? "ok" : "error", dur, passes,
				       IVS_AUTOSCALER_VERSION, "true",
				       r->config->controller.instance, deadline };
	if (rec_write_begin(r, true, key))
		rec_write_sent(r, true, key,
			       store_put_status(r->redis, key, sizeof(fields) / sizeof(fields[0]),
						fields, values, on_record_write, r));
}

static void record_metrics(struct reconciler *r, const struct pass *p)
{
	struct ivs_metrics *m = r->metrics;
	if (m == NULL)
		return;
	const char *result[1] = { p->ok ? "success" : "error" };
	metric_add(m->reconcile_total, result, 1);
	metric_observe(m->reconcile_duration, NULL, (double)p->duration_us / 1e6);
	if (p->ok)
		metric_set(m->last_success_timestamp, NULL, (double)p->finished_ms / 1000.0);
	for (size_t fi = 0; fi < p->n_fleets; fi++) {
		const struct obs_fleet *f = &p->fleets[fi];
		const char *fleet[1] = { f->cfg->name };
		if (!f->planned)
			continue;
		const struct plan_summary *s = &f->summary;
		metric_set(m->desired_stages, fleet, s->desired_stages);
		metric_set(m->actual_stages, fleet, s->serving_stages);
		metric_set(m->replications_active, fleet, s->active_replications);
		metric_set(m->fleet_capped, fleet, s->capped);
		metric_set(m->fleet_fail_static, fleet, s->fail_static);
	}
}

static bool has_replica(const struct obs_fleet *f, const char *arn)
{
	for (size_t i = 0; i < f->n_replicas; i++)
		if (strcmp(f->replicas[i].arn, arn) == 0)
			return true;
	return false;
}

/* The stage's delete was planned (and, since it is gone, done, which forgot its keys). */
static bool deleted_by(const struct obs_fleet *f, const char *arn)
{
	for (size_t i = 0; i < f->n_actions; i++)
		if (f->actions[i].kind == PLAN_DELETE_STAGE &&
		    strcmp(f->actions[i].stage_arn, arn) == 0)
			return true;
	return false;
}

/*
 * A replica stage deleted out of band (console, another tool) leaves its Redis keys behind.
 * When two complete listings in a row are available, an owned stage in the previous one and
 * absent from this one is gone: delete stage:{arn}, replication:{arn} and its draining keys.
 */
static void forget_vanished_stages(struct reconciler *r, const struct pass *p)
{
	if (r->last == NULL || !r->last->stages_ok || !p->stages_ok)
		return;
	for (size_t fi = 0; fi < p->n_fleets; fi++) {
		const struct obs_fleet *f = &p->fleets[fi];
		struct fleet_state *fs = rec_fleet_state(r, f->cfg->name);
		const struct obs_fleet *prev = fs != NULL ? fs->last : NULL;
		if (prev == NULL || (fs != NULL && fs->paused))
			continue;
		for (size_t i = 0; i < prev->n_replicas; i++) {
			const char *arn = prev->replicas[i].arn;
			if (has_replica(f, arn) || deleted_by(prev, arn))
				continue;
			log_event(LOG_INFO, NULL, LOG_FIELDS("IVS_FLEET", f->cfg->name,
							     "IVS_STAGE_ARN", arn),
				  "replica stage %s is gone; forgetting its redis keys", arn);
			rec_forget_stage(r, arn);
		}
	}
}

void rec_pass_record(struct reconciler *r, struct pass *p)
{
	p->finished_ms = rec_wall_ms();
	p->duration_us = rec_mono_us() - p->started_us;
	p->ok = p->reads_failed == 0 && p->actions_failed == 0;
	r->passes++;
	if (p->ok)
		r->last_success_ms = p->finished_ms;
	for (size_t fi = 0; fi < p->n_fleets; fi++) {
		struct obs_fleet *f = &p->fleets[fi];
		record_fleet_redis(r, f);
		record_fleet_keys(r, f);
		/* Written (store copies what it sends): no view needs it. */
		free(f->open);
		f->open = NULL;
		f->n_open = 0;
	}
	record_status_hash(r, p);
	record_metrics(r, p);
	log_event(p->ok ? LOG_DEBUG : LOG_INFO, NULL, NULL,
		  "reconcile pass %" PRIu64 " %s in %" PRIu64 " ms (%u actions done, %u failed, %u "
		  "reads failed)", p->id, p->ok ? "ok" : "incomplete", p->duration_us / 1000,
		  p->actions_done, p->actions_failed, p->reads_failed);

	forget_vanished_stages(r, p);
	/* The pass becomes what the admin views show. */
	for (size_t i = 0; i < r->n_fleets; i++)
		r->fleets[i].last = NULL;
	for (size_t fi = 0; fi < p->n_fleets; fi++) {
		struct fleet_state *fs = rec_fleet_state(r, p->fleets[fi].cfg->name);
		if (fs != NULL)
			fs->last = &p->fleets[fi];
	}
	rec_pass_free(r->last);
	r->last = p;
	r->current = NULL;
	r->hook_ok = p->ok;
	if (r->record_writes == 0)
		pass_done_hook(r);
	else
		r->hook_pending = true;
	if (r->wake_pending && !r->stopping)
		sd_event_source_set_enabled(r->defer, SD_EVENT_ONESHOT);
	rec_check_idle(r);
}
