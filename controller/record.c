/*
 * record.c — the record phase of a reconcile pass and every Redis write of the reconciler: the
 * write-backs the application reads (open stages, stage and replication records, the status
 * hash), forgetting the keys of stages that are gone, metrics, and the journald events of each
 * fleet's plan and of the pass.
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
#include "pass.h"
#include "plan.h"
#include "policy.h"
#include "reconcile_internal.h"
#include "redisio.h"
#include "store.h"
#include "util.h"

/* ---- Redis writes ------------------------------------------------------------------------ */

/*
 * Redis writes go through common/store.c. Each one is owed a callback (in_flight); the record
 * phase's writes are also counted in record_writes, which the pass_done hook waits for
 * (pass_record_written).
 */

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
	pass_record_written(r);
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

/*
 * The admin state as two SETs under the prefix (store.c spells the keys): the names of the
 * paused fleets, and the manual replications as "SRC DST PARTICIPANT". Each is replaced whole
 * (MULTI, DEL, SADD, EXEC), so a write never leaves half a state behind.
 */
void rec_admin_persist(struct reconciler *r)
{
	const char **paused = NULL;
	const char *manual[MAX_MANUAL + 1];
	char lines[MAX_MANUAL][3 * (IVS_ARN_MAX + 1) + IVS_PARTICIPANT_ID_MAX];
	char pkey[KEY_MAX], mkey[KEY_MAX];
	size_t np = 0, nm = 0;

	if (!r->admin_loaded ||
	    store_admin_key(pkey, sizeof(pkey), r->config->redis.key_prefix, STORE_KEY_PAUSED) < 0 ||
	    store_admin_key(mkey, sizeof(mkey), r->config->redis.key_prefix, STORE_KEY_MANUAL) < 0)
		return;
	paused = calloc(r->n_fleets + 1, sizeof(*paused));
	if (paused == NULL) {
		log_event(LOG_WARNING, NULL, NULL, "admin state not written: out of memory");
		return;
	}
	for (size_t i = 0; i < r->n_fleets; i++)
		if (r->fleets[i].paused)
			paused[np++] = r->fleets[i].name;
	for (size_t i = 0; i < r->n_manual; i++)
		if (store_format_manual(lines[nm], sizeof(lines[nm]), r->manual[i].src,
					r->manual[i].dst, r->manual[i].participant) > 0) {
			manual[nm] = lines[nm];
			nm++;
		}
	if (rec_write_begin(r, false, pkey))
		rec_write_sent(r, false, pkey,
			       store_replace_set(r->redis, pkey, np, paused, rec_on_write, r));
	if (rec_write_begin(r, false, mkey))
		rec_write_sent(r, false, mkey,
			       store_replace_set(r->redis, mkey, nm, manual, rec_on_write, r));
	free(paused);
}

void rec_admin_state_changed(struct reconciler *r)
{
	/* Before the first load, the load merges this change and writes the result. */
	if (r->admin_loaded)
		rec_admin_persist(r);
}

/* DEL stage:{arn}, replication:{arn}, stage:{arn}:draining and :drained_by of a gone stage. */
void rec_forget_stage(struct reconciler *r, const char *arn)
{
	char k1[KEY_MAX], k2[KEY_MAX], k3[KEY_MAX], k4[KEY_MAX];

	if (rec_stage_key(r, STORE_KEY_STAGE, arn, k1, sizeof(k1)) == 0 &&
	    rec_stage_key(r, STORE_KEY_REPLICATION, arn, k2, sizeof(k2)) == 0 &&
	    rec_stage_key(r, STORE_KEY_DRAINING, arn, k3, sizeof(k3)) == 0 &&
	    rec_stage_key(r, STORE_KEY_DRAINED_BY, arn, k4, sizeof(k4)) == 0 &&
	    rec_write_begin(r, false, k1))
		rec_write_sent(r, false, k1,
			       store_forget_stage(r->redis, k1, k2, k3, k4, rec_on_write, r));
}

/* ---- journald events of a plan ----------------------------------------------------------- */

/* FNV-1a of a message; 0 only for "" (nothing wrong). */
static uint64_t message_hash(const char *s)
{
	uint64_t h;

	if (s[0] == '\0')
		return 0;
	h = str_hash64(s);
	return h != 0 ? h : 1;
}

/*
 * A bad value in Redis stays bad for many passes: warn when it appears or changes, say when it
 * clears, and only debug in between. last holds the hash of what was reported (0 = nothing).
 */
static void report_bad_value(const char *fleet, const char *what, const char *error,
			     uint64_t *last)
{
	uint64_t h = message_hash(error);

	if (h == *last) {
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
	*last = h;
}

void record_fleet_decisions(struct reconciler *r, struct obs_fleet *f, struct fleet_state *fs)
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
	if (rec_origin_missing(f->pass, f) != fs->origin_missing_reported) {
		fs->origin_missing_reported = !fs->origin_missing_reported;
		if (fs->origin_missing_reported) {
			/* arn:aws:ivs:REGION:... — name a region mismatch, the likeliest mistake. */
			const char *arn = f->cfg->origin_stage_arn, *region = arn + 12;
			size_t n = strcspn(region, ":");
			bool other = strncmp(arn, "arn:aws:ivs:", 12) == 0 && r->region[0] != '\0' &&
				     (strlen(r->region) != n || strncmp(region, r->region, n) != 0);
			log_event(LOG_ERR, MSGID_ORIGIN_MISSING,
				  LOG_FIELDS("IVS_FLEET", f->cfg->name, "IVS_STAGE_ARN", arn),
				  "fleet %s: origin stage %s is not listed by IVS%s%s%s%.*s%s; nothing is "
				  "done for this fleet until it is (wrong ARN, account or region, or "
				  "deleted)", f->cfg->name, arn, r->region[0] ? " in region " : "",
				  r->region, other ? " (the ARN is in region " : "", other ? (int)n : 0,
				  region, other ? ")" : "");
		} else {
			log_event(LOG_NOTICE, NULL,
				  LOG_FIELDS("IVS_FLEET", f->cfg->name, "IVS_STAGE_ARN",
					     f->cfg->origin_stage_arn),
				  "fleet %s: origin stage %s is listed again", f->cfg->name,
				  f->cfg->origin_stage_arn);
		}
	}
	/* Without a Redis answer nothing is known about the values: keep what was reported. */
	if (f->redis_ok) {
		report_bad_value(f->cfg->name, "desired_stages override",
				 f->override == PLAN_OVERRIDE_INVALID ? obs_override_error(f) : "",
				 &fs->override_reported);
		report_bad_value(f->cfg->name, "publisher info", obs_publisher_error(f),
				 &fs->publisher_reported);
		report_bad_value(f->cfg->name, "viewer count", obs_viewers_error(f),
				 &fs->viewers_reported);
	}
	(void)r;
}

/* ---- the record phase ------------------------------------------------------------------------ */

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
		if (rec_stage_key(r, STORE_KEY_STAGE, s->arn, key, sizeof(key)) == 0 &&
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
			if (rec_stage_key(r, STORE_KEY_REPLICATION, s->arn, key, sizeof(key)) == 0 &&
			    rec_write_begin(r, true, key))
				rec_write_sent(r, true, key,
					       store_put_replication_nx(r->redis, key,
									f->cfg->origin_stage_arn, s->arn,
									host->participant_id, when,
									on_record_write, r));
			break;                  /* one record per destination, as the server kept it */
		}
		if (replicas_known && !s->fed_this_pass && !stage_fed(f, s->arn) &&
		    rec_stage_key(r, STORE_KEY_REPLICATION, s->arn, key, sizeof(key)) == 0 &&
		    rec_write_begin(r, true, key))
			rec_write_sent(r, true, key, store_del_replication(r->redis, key, on_record_write, r));
	}
}

static void record_status_hash(struct reconciler *r, const struct pass *p)
{
	char key[KEY_MAX], at[40], passes[24], dur[24], deadline[40] = "";
	int64_t until = leader_deadline_wall_ms(r->leader);
	if (r->dry_run || r->redis == NULL ||
	    store_status_key(key, sizeof(key), r->config->redis.key_prefix) < 0)
		return;
	if (until > 0)
		rec_iso_time(until, deadline, sizeof(deadline));
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
}

static void record_fleet_metrics(struct reconciler *r, const struct obs_fleet *f)
{
	struct ivs_metrics *m = r->metrics;
	const char *fleet[1] = { f->cfg->name };
	const struct plan_summary *s = &f->summary;

	if (m == NULL || !f->planned)
		return;
	metric_set(m->desired_stages, fleet, s->desired_stages);
	metric_set(m->actual_stages, fleet, s->serving_stages);
	metric_set(m->replications_active, fleet, s->active_replications);
	metric_set(m->fleet_capped, fleet, s->capped);
	metric_set(m->fleet_fail_static, fleet, s->fail_static);
	metric_set(m->override_invalid, fleet, f->override == PLAN_OVERRIDE_INVALID);
	/* Only a complete stage list can tell that the origin is gone. */
	if (f->pass->stages_ok)
		metric_set(m->origin_missing, fleet, !f->origin_seen);
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
 * When two complete listings of the fleet in a row are available, an owned stage in the
 * previous observation and absent from this one is gone: delete stage:{arn}, replication:{arn}
 * and its draining keys.
 */
static void forget_vanished_stages(struct reconciler *r, const struct pass *p,
				   const struct obs_fleet *f)
{
	struct fleet_state *fs = &r->fleets[f->index];
	const struct obs_fleet *prev = fs->last;

	if (prev == NULL || !prev->pass->stages_ok || !p->stages_ok || fs->paused)
		return;
	/* what the previous pass listed, and the stages it created (not in its listing) */
	for (size_t i = 0; i < prev->n_replicas + prev->n_created; i++) {
		const char *arn = i < prev->n_replicas ? prev->replicas[i].arn
						       : prev->created[i - prev->n_replicas];
		if (has_replica(f, arn) || deleted_by(prev, arn))
			continue;
		log_event(LOG_INFO, NULL, LOG_FIELDS("IVS_FLEET", f->cfg->name, "IVS_STAGE_ARN", arn),
			  "replica stage %s is gone; forgetting its redis keys", arn);
		rec_forget_stage(r, arn);
	}
}

/* Called by pass.c when a planned fleet is done, before it replaces the fleet's last one. */
void record_fleet(struct reconciler *r, struct pass *p, size_t fi)
{
	struct obs_fleet *f = &p->fleets[fi];

	record_fleet_redis(r, f);
	record_fleet_keys(r, f);
	/* Written (store copies what it sends): no view needs it. */
	free(f->open);
	f->open = NULL;
	f->n_open = 0;
	record_fleet_metrics(r, f);
	forget_vanished_stages(r, p, f);
}

/* Called by pass.c once every fleet is done, before the pass replaces the last one. */
void record_pass(struct reconciler *r, struct pass *p)
{
	record_status_hash(r, p);
	record_metrics(r, p);
	log_event(p->ok ? LOG_DEBUG : LOG_INFO, NULL, NULL,
		  "reconcile pass %" PRIu64 " (%s, %zu fleets) %s in %" PRIu64 " ms (%u actions done, "
		  "%u failed, %u reads failed)", p->id, p->kind == PASS_RESYNC ? "resync" : "targeted",
		  p->n_fleets, p->ok ? "ok" : "incomplete", p->duration_us / 1000,
		  p->actions_done, p->actions_failed, p->reads_failed);
	sweep_after_pass(r, p);
}
