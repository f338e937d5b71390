/*
 * views.c — what the admin socket and sd_notify show: JSON views and the status line, built
 * from the last recorded pass.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "leader.h"
#include "plan.h"
#include "reconcile.h"
#include "reconcile_internal.h"

/* ---- views ------------------------------------------------------------------------------- */

static json_t *foreign_json(const struct obs_foreign *s);

/* Stages managed by another deployment that carry this fleet's name (a staging daemon, say). */
static bool foreign_named(const struct reconciler *r, const char *fleet)
{
	for (size_t i = 0; r->last != NULL && i < r->last->n_foreign; i++)
		if (strcmp(r->last->foreign[i].fleet, fleet) == 0)
			return true;
	return false;
}

/* The per-fleet flags every view carries (commands.c shows them in the FLAGS column). */
static void fleet_flags_json(const struct reconciler *r, const char *fleet, json_t *o)
{
	json_object_set_new(o, "standby", json_boolean(!leader_may_mutate(r->leader)));
	json_object_set_new(o, "foreign_managed", json_boolean(foreign_named(r, fleet)));
}

static json_t *fleet_summary_json(const struct reconciler *r, const struct fleet_state *fs)
{
	const struct obs_fleet *f = fs->last;
	json_t *o = json_pack("{s:s, s:b, s:b}", "name", fs->name, "paused", fs->paused,
			      "origin_missing", rec_origin_missing(f != NULL ? f->pass : NULL, f));
	size_t idx = rec_fleet_index(r, fs->name);
	if (idx != SIZE_MAX)
		json_object_set_new(o, "origin", json_string(r->config->fleets[idx].origin_stage_arn));
	fleet_flags_json(r, fs->name, o);
	if (f == NULL || !f->planned) {
		json_object_set_new(o, "observed", json_false());
		return o;
	}
	const struct plan_summary *s = &f->summary;
	json_object_set_new(o, "observed", json_true());
	json_object_set_new(o, "desired", json_integer(s->desired_stages));
	json_object_set_new(o, "serving", json_integer(s->serving_stages));
	json_object_set_new(o, "draining", json_integer(s->draining_stages));
	json_object_set_new(o, "hosts", json_integer(s->hosts));
	json_object_set_new(o, "replications_expected", json_integer(s->expected_replications));
	json_object_set_new(o, "replications_active", json_integer(s->active_replications));
	json_object_set_new(o, "capped", json_boolean(s->capped));
	json_object_set_new(o, "fail_static", json_boolean(s->fail_static));
	json_object_set_new(o, "fail_reason", s->fail_reason ? json_string(s->fail_reason) : json_null());
	json_object_set_new(o, "decision", json_string(s->decision.reason ? s->decision.reason : ""));
	json_object_set_new(o, "note", s->note ? json_string(s->note) : json_null());
	json_object_set_new(o, "override_invalid", json_boolean(f->override == PLAN_OVERRIDE_INVALID));
	json_object_set_new(o, "origin_missing", json_boolean(rec_origin_missing(f->pass, f)));
	if (obs_override_error(f)[0])
		json_object_set_new(o, "override_error", json_string(obs_override_error(f)));
	if (obs_publisher_error(f)[0])
		json_object_set_new(o, "publisher_error", json_string(obs_publisher_error(f)));
	if (obs_viewers_error(f)[0])
		json_object_set_new(o, "viewers_error", json_string(obs_viewers_error(f)));
	json_object_set_new(o, "actions_failed", json_integer(f->actions_failed));
	json_object_set_new(o, "hosts_not_publishing", json_integer(f->not_publishing));
	return o;
}

/*
 * The resync walk: its configured interval, its real period (longer when the fleets' reads at
 * resync_share x max_tps need it) and where the walk is.
 */
static json_t *resync_json(const struct reconciler *r)
{
	const struct pass *p = r->resync;
	json_t *o = json_pack("{s:I, s:I, s:I, s:f, s:b, s:I}",
		"interval_ms", (json_int_t)r->config->reconcile.resync_interval_ms,
		"period_ms", (json_int_t)r->resync_period_ms,
		"fleets", (json_int_t)r->n_fleets,
		"calls_per_s", r->resync_calls_per_s,
		"walking", p != NULL,
		"rounds", (json_int_t)r->resync_rounds);

	if (p != NULL) {
		size_t visited = 0;
		const char *next = NULL;
		for (size_t i = 0; i < p->n_fleets; i++) {
			if (p->fleets[i].reached)
				visited++;
			else if (next == NULL)
				next = p->fleets[i].cfg->name;
		}
		json_object_set_new(o, "visited", json_integer((json_int_t)visited));
		json_object_set_new(o, "next_fleet", next != NULL ? json_string(next) : json_null());
	}
	return o;
}

void reconciler_resync_line(const struct reconciler *r, char *buf, size_t len)
{
	buf[0] = '\0';
	if (r->resync_period_ms > r->config->reconcile.resync_interval_ms)
		snprintf(buf, len, "resync period %g s: %zu fleets at %g observation calls/s "
			 "(resync_interval %g s)", (double)r->resync_period_ms / 1000.0, r->n_fleets,
			 r->resync_calls_per_s,
			 (double)r->config->reconcile.resync_interval_ms / 1000.0);
}

/* Role, leader id and lease deadline (ha.enabled), or "leader" for a lone daemon. */
static void leader_status_json(const struct reconciler *r, json_t *o)
{
	char holder[LEASE_INSTANCE_MAX + 1], until[40] = "";
	bool leading = leader_may_mutate(r->leader);
	int64_t deadline = leader_deadline_wall_ms(r->leader);

	leader_holder(r->leader, holder, sizeof(holder));
	if (r->leader == NULL || leading)
		snprintf(holder, sizeof(holder), "%s", r->config->controller.instance);
	if (deadline > 0)
		rec_iso_time(deadline, until, sizeof(until));
	json_object_set_new(o, "leader", json_boolean(leading));
	json_object_set_new(o, "role", json_string(leading ? "leader" : "standby"));
	json_object_set_new(o, "ha", json_boolean(r->leader != NULL));
	json_object_set_new(o, "instance", json_string(r->config->controller.instance));
	json_object_set_new(o, "leader_id", holder[0] ? json_string(holder) : json_null());
	json_object_set_new(o, "lease_deadline", until[0] ? json_string(until) : json_null());
	json_object_set_new(o, "leader_transitions",
			    json_integer((json_int_t)leader_transitions(r->leader)));
}

json_t *reconciler_status_json(const struct reconciler *r)
{
	json_t *o = json_object(), *wakes = json_object();
	char at[40] = "";
	if (r->last != NULL)
		rec_iso_time(r->last->finished_ms, at, sizeof(at));
	json_object_set_new(o, "version", json_string(IVS_AUTOSCALER_VERSION));
	leader_status_json(r, o);
	json_object_set_new(o, "dry_run", json_boolean(r->dry_run));
	json_object_set_new(o, "passes", json_integer((json_int_t)r->passes));
	/* a pass due for a woken fleet counts: it starts on the next turn of the loop */
	bool due = false;
	for (size_t i = 0; i < r->n_fleets && !r->stopping; i++)
		due = due || r->fleets[i].wake;
	json_object_set_new(o, "pass_running", json_boolean(r->running != NULL || due));
	size_t targeted = 0;
	for (const struct pass *p = r->running; p != NULL; p = p->next_running)
		targeted += p->kind == PASS_TARGETED;
	json_object_set_new(o, "targeted_passes_running", json_integer((json_int_t)targeted));
	json_object_set_new(o, "redis_connected", json_boolean(r->redis_up));
	/* Pauses and manual replications are read from Redis once; nothing changes before. */
	json_object_set_new(o, "admin_state_loaded", json_boolean(r->admin_loaded));
	json_object_set_new(o, "wakes", wakes);
	uint64_t total = 0;
	for (size_t i = 0; i < REC_WAKE_REASONS; i++) {
		json_object_set_new(wakes, rec_wake_reasons[i].name,
				    json_integer((json_int_t)r->wakes[i]));
		total += r->wakes[i];
	}
	json_object_set_new(o, "wakes_total", json_integer((json_int_t)total));
	json_t *resync = resync_json(r);
	char line[200];
	reconciler_resync_line(r, line, sizeof(line));
	if (line[0] != '\0')
		json_object_set_new(resync, "summary", json_string(line));
	json_object_set_new(o, "resync", resync);
	if (r->last != NULL) {
		json_object_set_new(o, "last_pass", json_pack("{s:s, s:s, s:I, s:i, s:i, s:i}",
			"at", at, "result", r->last->ok ? "ok" : "error",
			"duration_ms", (json_int_t)(r->last->duration_us / 1000),
			"actions_done", r->last->actions_done, "actions_failed", r->last->actions_failed,
			"reads_failed", r->last->reads_failed));
		if (r->last->stages_error[0])
			json_object_set_new(json_object_get(o, "last_pass"), "error",
					    json_string(r->last->stages_error));
	} else {
		json_object_set_new(o, "last_pass", json_null());
	}
	json_object_set_new(o, "owner", json_string(r->config->controller.owner));
	{
		json_t *foreign = json_array();
		for (size_t i = 0; r->last != NULL && i < r->last->n_foreign; i++)
			json_array_append_new(foreign, foreign_json(&r->last->foreign[i]));
		json_object_set_new(o, "foreign_stages", foreign);
	}
	return o;
}

size_t reconciler_n_fleets(const struct reconciler *r)
{
	return r->n_fleets;
}

json_t *reconciler_fleet_json(const struct reconciler *r, size_t i)
{
	return i < r->n_fleets ? fleet_summary_json(r, &r->fleets[i]) : NULL;
}

json_t *reconciler_fleets_json(const struct reconciler *r)
{
	json_t *a = json_array();
	for (size_t i = 0; i < r->n_fleets; i++)
		json_array_append_new(a, fleet_summary_json(r, &r->fleets[i]));
	return a;
}

static json_t *stage_json(const struct obs_fleet *f, const struct obs_stage *s, const char *role)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "fleet", f->cfg->name, "arn", s->arn,
			      "name", s->name, "role", role, "draining", s->draining,
			      "operator_drain", s->operator_drain);
	json_t *reps = json_array();
	json_object_set_new(o, "viewers", s->viewers_known ? json_integer((json_int_t)s->viewers)
							   : json_null());
	for (size_t h = 0; h < f->n_hosts; h++) {
		const struct obs_host *host = &f->hosts[h];
		const char *state = "none";
		if (!host->replicas_ok)
			state = "unknown";
		for (size_t i = 0; i < host->n_replications; i++)
			if (strcmp(host->replications[i].destination_arn, s->arn) == 0)
				state = host->replications[i].state == PLAN_REPLICATION_ACTIVE ? "ACTIVE"
												 : "STOPPED";
		if (strcmp(role, "origin") == 0)
			state = "source";
		json_array_append_new(reps, json_pack("{s:s, s:s}", "participant",
						      host->participant_id, "state", state));
	}
	json_object_set_new(o, "replication", reps);
	return o;
}

static json_t *foreign_json(const struct obs_foreign *s)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "fleet", s->fleet, "arn", s->arn,
			 "name", s->name, "role", "foreign-managed", "origin", s->origin,
			 "owner", s->owner, "legacy", s->legacy);
}

json_t *reconciler_stages_json(const struct reconciler *r, const char *fleet)
{
	json_t *a = json_array();
	for (size_t i = 0; i < r->n_fleets; i++) {
		const struct obs_fleet *f = r->fleets[i].last;
		if (f == NULL || (fleet != NULL && strcmp(fleet, r->fleets[i].name) != 0))
			continue;
		json_array_append_new(a, stage_json(f, &f->origin, "origin"));
		for (size_t s = 0; s < f->n_replicas; s++)
			json_array_append_new(a, stage_json(f, &f->replicas[s], "replica"));
	}
	/* Stages another deployment manages, listed so nobody mistakes them for ours. */
	for (size_t i = 0; r->last != NULL && i < r->last->n_foreign; i++) {
		const struct obs_foreign *s = &r->last->foreign[i];
		if (fleet == NULL || strcmp(fleet, s->fleet) == 0)
			json_array_append_new(a, foreign_json(s));
	}
	return a;
}

json_t *reconciler_replicas_json(const struct reconciler *r, const char *fleet)
{
	json_t *a = json_array();
	for (size_t i = 0; i < r->n_fleets; i++) {
		const struct obs_fleet *f = r->fleets[i].last;
		if (f == NULL || (fleet != NULL && strcmp(fleet, r->fleets[i].name) != 0))
			continue;
		for (size_t h = 0; h < f->n_hosts; h++)
			for (size_t k = 0; k < f->hosts[h].n_replications; k++) {
				const struct plan_replication *rep = &f->hosts[h].replications[k];
				json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s}",
					"fleet", f->cfg->name, "participant", f->hosts[h].participant_id,
					"destination", rep->destination_arn,
					"state", rep->state == PLAN_REPLICATION_ACTIVE ? "ACTIVE" : "STOPPED"));
			}
	}
	return a;
}

static json_t *plan_json(const struct reconciler *r, const struct fleet_state *fs,
			 const struct obs_fleet *f, const struct plan_output *o)
{
	json_t *view;

	json_t *acts = json_array();
	for (size_t i = 0; i < o->n_actions; i++) {
		const struct plan_action *a = &o->actions[i];
		json_t *j = json_pack("{s:s, s:s}", "action", plan_action_kind_name(a->kind),
				      "reason", a->reason ? a->reason : "");
		if (a->stage_arn)
			json_object_set_new(j, "stage", json_string(a->stage_arn));
		if (a->participant_id)
			json_object_set_new(j, "participant", json_string(a->participant_id));
		json_array_append_new(acts, j);
	}
	view = json_pack("{s:s, s:i, s:i, s:b, s:b, s:b, s:b, s:b, s:o}", "fleet", f->cfg->name,
			 "desired", o->summary.desired_stages, "serving", o->summary.serving_stages,
			 "capped", o->summary.capped, "fail_static", o->summary.fail_static,
			 "paused", fs->paused, "origin_missing", rec_origin_missing(f->pass, f),
			 "override_invalid", f->override == PLAN_OVERRIDE_INVALID, "actions", acts);
	fleet_flags_json(r, f->cfg->name, view);
	return view;
}

/* What the next pass would do, computed now on the last observation, without acting. */
json_t *reconciler_plan_json(const struct reconciler *r, const char *fleet)
{
	json_t *a = json_array();
	for (size_t i = 0; i < r->n_fleets; i++) {
		const struct fleet_state *fs = &r->fleets[i];
		const struct obs_fleet *f = fs->last;
		if (f == NULL || (fleet != NULL && strcmp(fleet, fs->name) != 0))
			continue;
		struct policy_state history = fs->policy;    /* a copy: planning here records nothing */
		struct plan_scratch *scratch = malloc(sizeof(*scratch));
		struct plan_output *out = calloc(1, sizeof(*out));
		struct plan_input in;
		if (scratch != NULL && out != NULL) {
			rec_plan_input_build(r, f->pass, f, scratch, &in);
			if (plan_fleet(&in, &history, rec_wall_ms(), out) == 0)
				json_array_append_new(a, plan_json(r, fs, f, out));
		}
		free(scratch);
		free(out);
	}
	return a;
}

json_t *reconciler_publisher_json(const struct reconciler *r, const char *fleet)
{
	json_t *a = json_array();
	for (size_t i = 0; i < r->n_fleets; i++) {
		const struct obs_fleet *f = r->fleets[i].last;
		if (f == NULL || (fleet != NULL && strcmp(fleet, r->fleets[i].name) != 0))
			continue;
		const struct store_publisher *pub = obs_publisher(f);
		json_t *o = json_pack("{s:s, s:b}", "fleet", f->cfg->name, "has_publisher", pub != NULL);
		if (pub != NULL)
			json_object_set_new(o, "publisher_info", json_pack("{s:s, s:s, s:s, s:s}",
				"participant_id", pub->participant_id,
				"stage_arn", pub->stage_arn, "user_id", pub->user_id,
				"joined_at", pub->joined_at));
		else
			json_object_set_new(o, "publisher_info", json_null());
		if (obs_publisher_error(f)[0])
			json_object_set_new(o, "error", json_string(obs_publisher_error(f)));
		/* What IVS says: is the stored participant publishing in the origin right now? */
		bool live = false;
		json_t *hosts = json_array();
		for (size_t h = 0; h < f->n_hosts; h++) {
			json_array_append_new(hosts, json_pack("{s:s, s:s}", "participant_id",
				f->hosts[h].participant_id, "user_id",
				f->hosts[h].user_id != NULL ? f->hosts[h].user_id : ""));
			if (pub != NULL &&
			    strcmp(f->hosts[h].participant_id, pub->participant_id) == 0)
				live = true;
		}
		json_object_set_new(o, "publishing", json_boolean(live));
		json_object_set_new(o, "hosts", hosts);
		json_array_append_new(a, o);
	}
	return a;
}

json_t *reconciler_replication_status_json(const struct reconciler *r, const char *stage_arn)
{
	json_t *a = json_array();
	for (size_t i = 0; i < r->n_fleets; i++) {
		const struct obs_fleet *f = r->fleets[i].last;
		if (f == NULL)
			continue;
		for (size_t h = 0; h < f->n_hosts; h++)
			for (size_t k = 0; k < f->hosts[h].n_replications; k++) {
				const struct plan_replication *rep = &f->hosts[h].replications[k];
				if (strcmp(rep->destination_arn, stage_arn) != 0 &&
				    strcmp(f->cfg->origin_stage_arn, stage_arn) != 0)
					continue;
				bool manual = false;
				for (size_t m = 0; m < r->n_manual; m++)
					if (strcmp(r->manual[m].dst, rep->destination_arn) == 0 &&
					    strcmp(r->manual[m].participant, f->hosts[h].participant_id) == 0)
						manual = true;
				json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:b}",
					"source_stage_arn", f->cfg->origin_stage_arn,
					"dest_stage_arn", rep->destination_arn,
					"participant_id", f->hosts[h].participant_id,
					"state", rep->state == PLAN_REPLICATION_ACTIVE ? "ACTIVE" : "STOPPED",
					"manual", manual));
			}
	}
	return a;
}

void reconciler_status_line(const struct reconciler *r, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	if (r->leader != NULL) {
		char holder[LEASE_INSTANCE_MAX + 1];
		int n;
		leader_holder(r->leader, holder, sizeof(holder));
		if (leader_may_mutate(r->leader))
			n = snprintf(buf, len, "leader; ");
		else
			n = snprintf(buf, len, "standby (leader: %s); ", holder[0] ? holder : "unknown");
		used = n > 0 && (size_t)n < len ? (size_t)n : 0;
	}
	for (size_t i = 0; i < r->n_fleets && used < len; i++) {
		const struct obs_fleet *f = r->fleets[i].last;
		int n;
		if (f == NULL || !f->planned)
			n = snprintf(buf + used, len - used, "%s%s: not observed yet", i ? "; " : "",
				     r->fleets[i].name);
		else
			n = snprintf(buf + used, len - used, "%s%s: %u/%u stages serving/desired, "
				     "%u/%u replications active/expected%s%s%s",
				     i ? "; " : "", r->fleets[i].name, f->summary.serving_stages,
				     f->summary.desired_stages, f->summary.active_replications,
				     f->summary.expected_replications,
				     f->summary.capped ? ", capped" : "",
				     f->summary.fail_static ? ", fail-static" : "",
				     r->fleets[i].paused ? ", paused" : "");
		if (n < 0)
			break;
		used += (size_t)n;
	}
	if (r->last != NULL && used < len)
		snprintf(buf + used, len - used, "; last pass %s", r->last->ok ? "ok" : "incomplete");
}

void reconciler_print_plan(const struct reconciler *r, FILE *out)
{
	if (r->last == NULL) {
		fprintf(out, "no pass completed\n");
		return;
	}
	for (size_t fi = 0; fi < r->n_fleets; fi++) {
		const struct obs_fleet *f = r->fleets[fi].last;
		if (f == NULL || !f->planned) {
			fprintf(out, "fleet %s: no plan\n", r->fleets[fi].name);
			continue;
		}
		const struct plan_summary *s = &f->summary;
		fprintf(out, "fleet %s: desired %u stages, serving %u, draining %u, hosts %u%s%s\n",
			f->cfg->name, s->desired_stages, s->serving_stages, s->draining_stages,
			s->hosts, s->capped ? ", capped" : "", s->fail_static ? ", fail-static" : "");
		for (size_t i = 0; i < f->n_actions; i++) {
			const struct plan_action *a = &f->actions[i];
			fprintf(out, "  %s%s%s%s%s (%s)\n", plan_action_kind_name(a->kind),
				a->stage_arn ? " " : "", a->stage_arn ? a->stage_arn : "",
				a->participant_id ? " participant " : "",
				a->participant_id ? a->participant_id : "", a->reason ? a->reason : "");
		}
	}
}

