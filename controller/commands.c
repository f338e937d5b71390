/*
 * commands.c — the admin commands (ARCHITECTURE.md §3 "Admin socket") over control.c.
 *
 * Every handler answers from the reconciler's in-memory snapshot or records an intent (pause,
 * drain, reconcile now, a manual replication) for the loop to act on; none waits on AWS or
 * Redis. Each command returns JSON data; the text form is rendered from the same data, so the
 * two can never disagree.
 */
#include "commands.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "control.h"
#include "log.h"
#include "metrics.h"
#include "reconcile.h"
#include "strbuf.h"

static struct command_context *ctx_of(void *ud) { return ud; }

static int check_fleet(struct command_context *c, const struct control_request *req,
		       const char **fleet, char *err, size_t errlen)
{
	*fleet = req->argc > 0 ? req->argv[0] : NULL;
	if (*fleet != NULL && !reconciler_has_fleet(c->reconciler, *fleet)) {
		snprintf(err, errlen, "no fleet named '%s'", *fleet);
		return -1;
	}
	return 0;
}

/* ---- text renderers ------------------------------------------------------------------------ */

static const char *jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s != NULL ? s : "-";
}

static long long jint(const json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

/*
 * Per-fleet flags, in this order, from boolean keys of the fleet's JSON object (status, fleets
 * and plan all carry them). Work that adds a per-fleet condition (ownership conflicts, standby)
 * adds its key and flag here, and every text table shows it.
 */
static const struct {
	const char *key;
	const char *flag;
} fleet_flags[] = {
	{ "paused", "paused" },
	{ "capped", "capped" },
	{ "fail_static", "fail-static" },
	{ "origin_missing", "origin-missing" },
	{ "override_invalid", "override-invalid" },
	{ "foreign_managed", "foreign-managed" },    /* another deployment's stages use its name */
	{ "standby", "standby" },                    /* not the leader: plans, acts on nothing */
};

/* "capped,paused" or "-" when no flag applies. */
static void put_fleet_flags(const json_t *f, struct strbuf *out)
{
	int any = 0;

	for (size_t i = 0; i < sizeof(fleet_flags) / sizeof(fleet_flags[0]); i++) {
		if (!json_is_true(json_object_get(f, fleet_flags[i].key)))
			continue;
		strbuf_printf(out, "%s%s", any ? "," : "", fleet_flags[i].flag);
		any = 1;
	}
	if (!any)
		strbuf_putc(out, '-');
}

#define FLEET_ROW "%-12s %-15s %-8s %-5s %-16s %-28s %s\n"

static void render_fleet_header(struct strbuf *out)
{
	strbuf_printf(out, FLEET_ROW, "FLEET", "STAGES(SRV/DES)", "DRAINING", "HOSTS",
		      "REPLICAS(ACT/EXP)", "FLAGS", "DECISION");
}

/* One row of the fleets table: stages serving/desired, replications active/expected. */
static void render_fleet_line(const json_t *f, struct strbuf *out)
{
	struct strbuf flags;
	char stages[48], hosts[24], draining[24], reps[48];

	strbuf_init(&flags, 256);
	put_fleet_flags(f, &flags);
	if (!json_is_true(json_object_get(f, "observed"))) {
		strbuf_printf(out, FLEET_ROW, jstr(f, "name"), "-", "-", "-", "-",
			      strbuf_str(&flags), "not observed yet");
		strbuf_free(&flags);
		return;
	}
	snprintf(stages, sizeof(stages), "%lld/%lld", jint(f, "serving"), jint(f, "desired"));
	snprintf(draining, sizeof(draining), "%lld", jint(f, "draining"));
	snprintf(hosts, sizeof(hosts), "%lld", jint(f, "hosts"));
	snprintf(reps, sizeof(reps), "%lld/%lld", jint(f, "replications_active"),
		 jint(f, "replications_expected"));
	strbuf_printf(out, FLEET_ROW, jstr(f, "name"), stages, draining, hosts, reps,
		      strbuf_str(&flags), jstr(f, "decision")[0] ? jstr(f, "decision") : "-");
	strbuf_free(&flags);
}

static void render_last_reload(const json_t *r, struct strbuf *out)
{
	if (!json_is_object(r))
		return;
	if (strcmp(jstr(r, "result"), "ok") == 0)
		strbuf_printf(out, "last reload: ok at %s\n", jstr(r, "at"));
	else
		strbuf_printf(out, "last reload failed: %s (at %s)\n", jstr(r, "error"), jstr(r, "at"));
}

static void render_status(const json_t *d, struct strbuf *out)
{
	const json_t *last = json_object_get(d, "last_pass");
	size_t i;
	json_t *f;

	strbuf_printf(out, "ivs-autoscaler %s, pid %lld, uptime %llds, %s%s\n", jstr(d, "version"),
		      jint(d, "pid"), jint(d, "uptime_s"),
		      json_is_true(json_object_get(d, "leader")) ? "leader" : "standby",
		      json_is_true(json_object_get(d, "dry_run")) ? ", dry run" : "");
	if (json_is_true(json_object_get(d, "ha")))
		strbuf_printf(out, "ha: instance %s, leader %s, lease until %s, %lld transitions\n",
			      jstr(d, "instance"), jstr(d, "leader_id"), jstr(d, "lease_deadline"),
			      jint(d, "leader_transitions"));
	strbuf_printf(out, "redis: %s\n",
		      json_is_true(json_object_get(d, "redis_connected")) ? "connected" : "DOWN");
	if (json_is_object(last))
		strbuf_printf(out, "last pass: %s at %s in %lld ms (actions: %lld done, %lld failed; "
			      "reads failed: %lld)\n",
			      jstr(last, "result"), jstr(last, "at"), jint(last, "duration_ms"),
			      jint(last, "actions_done"), jint(last, "actions_failed"),
			      jint(last, "reads_failed"));
	else
		strbuf_printf(out, "last pass: none yet\n");
	strbuf_printf(out, "passes: %lld\n", jint(d, "passes"));
	render_last_reload(json_object_get(d, "last_reload"), out);
	const json_t *resync = json_object_get(d, "resync");
	if (json_is_string(json_object_get(resync, "summary")))
		strbuf_printf(out, "%s\n", jstr(resync, "summary"));
	render_fleet_header(out);
	json_array_foreach(json_object_get(d, "fleets"), i, f)
		render_fleet_line(f, out);
	json_array_foreach(json_object_get(d, "foreign_stages"), i, f)
		strbuf_printf(out, "foreign-managed: %s (fleet %s, origin %s%s%s)%s\n", jstr(f, "arn"),
			      jstr(f, "fleet"), jstr(f, "origin")[0] ? jstr(f, "origin") : "none",
			      jstr(f, "owner")[0] ? ", owner " : "", jstr(f, "owner"),
			      json_is_true(json_object_get(f, "legacy")) ? " [0.1-style, not adopted]" : "");
}

static void render_fleets(const json_t *d, struct strbuf *out)
{
	size_t i;
	json_t *f;
	if (json_array_size(d) == 0) {
		strbuf_puts(out, "no fleets\n");
		return;
	}
	render_fleet_header(out);
	json_array_foreach(d, i, f)
		render_fleet_line(f, out);
}

static void render_stages(const json_t *d, struct strbuf *out)
{
	size_t i, k;
	json_t *s, *rep;
	strbuf_printf(out, "%-10s %-8s %-58s %9s %-8s %s\n", "FLEET", "ROLE", "ARN", "VIEWERS",
		      "DRAINING", "REPLICATION");
	json_array_foreach(d, i, s) {
		const json_t *v = json_object_get(s, "viewers");
		char viewers[24];
		if (json_is_integer(v))
			snprintf(viewers, sizeof(viewers), "%lld", (long long)json_integer_value(v));
		else
			snprintf(viewers, sizeof(viewers), "?");
		strbuf_printf(out, "%-10s %-8s %-58s %9s %-8s", jstr(s, "fleet"), jstr(s, "role"),
			      jstr(s, "arn"), viewers,
			      json_is_true(json_object_get(s, "draining")) ? "yes" : "no");
		json_array_foreach(json_object_get(s, "replication"), k, rep)
			strbuf_printf(out, " %s=%s", jstr(rep, "participant"), jstr(rep, "state"));
		strbuf_putc(out, '\n');
	}
	strbuf_printf(out, "%zu stages\n", json_array_size(d));
}

static void render_replicas(const json_t *d, struct strbuf *out)
{
	size_t i;
	json_t *r;
	strbuf_printf(out, "%-10s %-20s %-58s %s\n", "FLEET", "PARTICIPANT", "DESTINATION", "STATE");
	json_array_foreach(d, i, r)
		strbuf_printf(out, "%-10s %-20s %-58s %s\n", jstr(r, "fleet"), jstr(r, "participant"),
			      jstr(r, "destination"), jstr(r, "state"));
	strbuf_printf(out, "%zu replications\n", json_array_size(d));
}

static void render_plan(const json_t *d, struct strbuf *out)
{
	size_t i, k;
	json_t *p, *a;
	json_array_foreach(d, i, p) {
		strbuf_printf(out, "fleet %s: stages desired %lld, serving %lld; flags ", jstr(p, "fleet"),
			      jint(p, "desired"), jint(p, "serving"));
		put_fleet_flags(p, out);
		strbuf_putc(out, '\n');
		if (json_array_size(json_object_get(p, "actions")) == 0) {
			strbuf_puts(out, "  nothing to do\n");
			continue;
		}
		strbuf_printf(out, "  %-16s %-58s %-20s %s\n", "ACTION", "STAGE", "PARTICIPANT",
			      "REASON");
		json_array_foreach(json_object_get(p, "actions"), k, a)
			strbuf_printf(out, "  %-16s %-58s %-20s %s\n", jstr(a, "action"),
				      jstr(a, "stage"), jstr(a, "participant"), jstr(a, "reason"));
	}
	if (json_array_size(d) == 0)
		strbuf_puts(out, "no observation yet\n");
}

static void render_metrics(const json_t *d, struct strbuf *out)
{
	/* The exposition text as is, minus its final newline (the reply adds its own framing). */
	const char *s = json_string_value(d);
	size_t len = s ? strlen(s) : 0;
	if (len > 0 && s[len - 1] == '\n')
		len--;
	strbuf_append(out, s, len);
	strbuf_putc(out, '\n');
}

static void render_publisher(const json_t *d, struct strbuf *out)
{
	size_t i;
	json_t *p;
	json_array_foreach(d, i, p) {
		const json_t *info = json_object_get(p, "publisher_info");
		strbuf_printf(out, "fleet %s: %s\n", jstr(p, "fleet"),
			      json_is_true(json_object_get(p, "has_publisher")) ? "publisher known" : "no publisher info");
		if (json_is_object(info))
			strbuf_printf(out, "  participant_id %s\n  stage_arn %s\n  user_id %s\n  joined_at %s\n",
				      jstr(info, "participant_id"), jstr(info, "stage_arn"),
				      jstr(info, "user_id"), jstr(info, "joined_at"));
		strbuf_printf(out, "  publishing now: %s\n",
			      json_is_true(json_object_get(p, "publishing")) ? "yes" : "no");
		if (json_object_get(p, "error"))
			strbuf_printf(out, "  error: %s\n", jstr(p, "error"));
	}
	if (json_array_size(d) == 0)
		strbuf_puts(out, "no observation yet\n");
}

static void render_replication_status(const json_t *d, struct strbuf *out)
{
	size_t i;
	json_t *r;
	if (json_array_size(d) == 0) {
		strbuf_puts(out, "no replication known for that stage\n");
		return;
	}
	strbuf_printf(out, "%-58s %-58s %-20s %-8s %s\n", "SOURCE", "DESTINATION", "PARTICIPANT",
		      "STATE", "STARTED_BY");
	json_array_foreach(d, i, r)
		strbuf_printf(out, "%-58s %-58s %-20s %-8s %s\n", jstr(r, "source_stage_arn"),
			      jstr(r, "dest_stage_arn"), jstr(r, "participant_id"), jstr(r, "state"),
			      json_is_true(json_object_get(r, "manual")) ? "operator" : "autoscaler");
}

static void render_pause(const json_t *d, struct strbuf *out)
{
	const char *fleet = jstr(d, "fleet");
	const char *what = json_is_true(json_object_get(d, "paused")) ? "paused" : "resumed";
	if (strcmp(fleet, "*") == 0)
		strbuf_printf(out, "all fleets %s\n", what);
	else
		strbuf_printf(out, "fleet %s %s\n", fleet, what);
}

static void render_drain(const json_t *d, struct strbuf *out)
{
	strbuf_printf(out, "%s marked draining; it is deleted once empty or after drain_timeout\n",
		      jstr(d, "stage"));
}

static void render_log_level(const json_t *d, struct strbuf *out)
{
	strbuf_printf(out, "log level %s\n", jstr(d, "level"));
}

static void render_replication_change(const json_t *d, struct strbuf *out)
{
	strbuf_printf(out, "replication %s requested: %s -> %s participant %s\n",
		      jstr(d, "request"), jstr(d, "source_stage_arn"), jstr(d, "dest_stage_arn"),
		      jstr(d, "participant_id"));
}

/* ---- handlers ------------------------------------------------------------------------------ */

static json_t *status_fleet(void *ud, size_t i)
{
	return reconciler_fleet_json(ud, i);
}

static int cmd_status(void *ud, const struct control_request *req, json_t **data, char *err,
		      size_t errlen)
{
	struct command_context *c = ctx_of(ud);
	(void)req; (void)err; (void)errlen;
	*data = reconciler_status_json(c->reconciler);
	json_object_set_new(*data, "uptime_s", json_integer((json_int_t)c->uptime_s(c->ud)));
	json_object_set_new(*data, "pid", json_integer(getpid()));
	if (c->last_reload != NULL) {
		json_t *r = c->last_reload(c->ud);
		json_object_set_new(*data, "last_reload", r != NULL ? r : json_null());
	}
	/* the fleets, one at a time */
	*req->stream = (struct control_stream){
		.key = "fleets", .n = reconciler_n_fleets(c->reconciler),
		.item = status_fleet, .ud = c->reconciler,
	};
	return 0;
}

static int cmd_reload(void *ud, const struct control_request *req, json_t **data, char *err,
		      size_t errlen)
{
	struct command_context *c = ctx_of(ud);
	bool pending = false;
	(void)req;
	if (c->reload == NULL) {
		snprintf(err, errlen, "reload is not available");
		return -1;
	}
	if (c->reload(c->ud, &pending, err, errlen) < 0)
		return -1;
	*data = json_string(pending ? "configuration valid; swapped in when the running pass ends"
				    : "configuration reloaded");
	return 0;
}

#define VIEW_HANDLER(name, fn) \
	static int name(void *ud, const struct control_request *req, json_t **data, char *err, \
			size_t errlen) \
	{ \
		struct command_context *c = ctx_of(ud); \
		const char *fleet; \
		if (check_fleet(c, req, &fleet, err, errlen) < 0) \
			return -1; \
		*data = fn(c->reconciler, fleet); \
		return 0; \
	}

VIEW_HANDLER(cmd_stages, reconciler_stages_json)
VIEW_HANDLER(cmd_replicas, reconciler_replicas_json)
VIEW_HANDLER(cmd_plan, reconciler_plan_json)
VIEW_HANDLER(cmd_publisher, reconciler_publisher_json)

static int cmd_fleets(void *ud, const struct control_request *req, json_t **data, char *err,
		      size_t errlen)
{
	(void)req; (void)err; (void)errlen;
	*data = reconciler_fleets_json(ctx_of(ud)->reconciler);
	return 0;
}

static int cmd_metrics(void *ud, const struct control_request *req, json_t **data, char *err,
		       size_t errlen)
{
	struct command_context *c = ctx_of(ud);
	struct strbuf sb;
	(void)req;
	if (c->refresh_metrics != NULL)
		c->refresh_metrics(c->ud);
	strbuf_init(&sb, CONTROL_OUTPUT_CAP / 2);
	if (metrics_render(c->metrics->reg, &sb) < 0) {
		strbuf_free(&sb);
		snprintf(err, errlen, "metrics too large");
		return -1;
	}
	*data = json_string(strbuf_str(&sb));
	strbuf_free(&sb);
	return 0;
}

static int cmd_reconcile(void *ud, const struct control_request *req, json_t **data, char *err,
			 size_t errlen)
{
	struct command_context *c = ctx_of(ud);
	const char *fleet;
	if (check_fleet(c, req, &fleet, err, errlen) < 0)
		return -1;
	if (reconciler_wake_fleet(c->reconciler, fleet, "admin") < 0) {
		snprintf(err, errlen, "no such fleet: %s", fleet);
		return -1;
	}
	*data = json_string("reconcile pass requested");
	return 0;
}

static int pause_or_resume(void *ud, const struct control_request *req, json_t **data,
			   char *err, size_t errlen, bool paused)
{
	struct command_context *c = ctx_of(ud);
	const char *fleet;
	if (check_fleet(c, req, &fleet, err, errlen) < 0 ||
	    reconciler_check_leader(c->reconciler, err, errlen) < 0)
		return -1;
	reconciler_pause(c->reconciler, fleet, paused);
	log_event(LOG_NOTICE, NULL, LOG_FIELDS("IVS_FLEET", fleet),
		  "%s %s by uid %u", fleet ? fleet : "all fleets", paused ? "paused" : "resumed",
		  (unsigned)req->uid);
	*data = json_pack("{s:s, s:b}", "fleet", fleet ? fleet : "*", "paused", paused);
	return 0;
}

static int cmd_pause(void *ud, const struct control_request *req, json_t **data, char *err, size_t errlen)
{
	return pause_or_resume(ud, req, data, err, errlen, true);
}

static int cmd_resume(void *ud, const struct control_request *req, json_t **data, char *err, size_t errlen)
{
	return pause_or_resume(ud, req, data, err, errlen, false);
}

static int cmd_drain(void *ud, const struct control_request *req, json_t **data, char *err,
		     size_t errlen)
{
	struct command_context *c = ctx_of(ud);
	if (reconciler_check_leader(c->reconciler, err, errlen) < 0 ||
	    reconciler_drain(c->reconciler, req->argv[0], err, errlen) < 0)
		return -1;
	*data = json_pack("{s:s, s:b}", "stage", req->argv[0], "draining", 1);
	return 0;
}

static int cmd_log_level(void *ud, const struct control_request *req, json_t **data, char *err,
			 size_t errlen)
{
	int level = log_level_from_string(req->argv[0]);
	(void)ud;
	if (level < 0 || level < LOG_WARNING) {
		snprintf(err, errlen, "unknown level '%s' (debug, info, notice, warning)", req->argv[0]);
		return -1;
	}
	log_set_level(level);
	*data = json_pack("{s:s}", "level", log_level_to_string(level));
	return 0;
}

static int cmd_replication_status(void *ud, const struct control_request *req, json_t **data,
				  char *err, size_t errlen)
{
	(void)err; (void)errlen;
	*data = reconciler_replication_status_json(ctx_of(ud)->reconciler, req->argv[0]);
	return 0;
}

static int replication_change(void *ud, const struct control_request *req, json_t **data,
			      char *err, size_t errlen, bool start)
{
	struct command_context *c = ctx_of(ud);
	if (reconciler_check_leader(c->reconciler, err, errlen) < 0 ||
	    reconciler_replication(c->reconciler, start, req->argv[0], req->argv[1], req->argv[2],
				   err, errlen) < 0)
		return -1;
	*data = json_pack("{s:s, s:s, s:s, s:s}", "request", start ? "start" : "stop",
			  "source_stage_arn", req->argv[0], "dest_stage_arn", req->argv[1],
			  "participant_id", req->argv[2]);
	return 0;
}

static int cmd_replication_start(void *ud, const struct control_request *req, json_t **data,
				 char *err, size_t errlen)
{
	return replication_change(ud, req, data, err, errlen, true);
}

static int cmd_replication_stop(void *ud, const struct control_request *req, json_t **data,
				char *err, size_t errlen)
{
	return replication_change(ud, req, data, err, errlen, false);
}

static const struct control_command command_table[] = {
	{ .name = "status", .usage = "",
	  .mutating = 0, .min_args = 0, .max_args = 0,
	  .handler = cmd_status, .render = render_status },
	{ .name = "fleets", .usage = "",
	  .mutating = 0, .min_args = 0, .max_args = 0,
	  .handler = cmd_fleets, .render = render_fleets },
	{ .name = "stages", .usage = "[FLEET]",
	  .mutating = 0, .min_args = 0, .max_args = 1,
	  .handler = cmd_stages, .render = render_stages },
	{ .name = "replicas", .usage = "[FLEET]",
	  .mutating = 0, .min_args = 0, .max_args = 1,
	  .handler = cmd_replicas, .render = render_replicas },
	{ .name = "plan", .usage = "[FLEET]",
	  .mutating = 0, .min_args = 0, .max_args = 1,
	  .handler = cmd_plan, .render = render_plan },
	{ .name = "metrics", .usage = "",
	  .mutating = 0, .min_args = 0, .max_args = 0,
	  .handler = cmd_metrics, .render = render_metrics },
	{ .name = "publisher", .usage = "[FLEET]",
	  .mutating = 0, .min_args = 0, .max_args = 1,
	  .handler = cmd_publisher, .render = render_publisher },
	{ .name = "replication status", .usage = "STAGE_ARN",
	  .mutating = 0, .min_args = 1, .max_args = 1,
	  .handler = cmd_replication_status, .render = render_replication_status },
	{ .name = "reconcile", .usage = "[FLEET]",
	  .mutating = 1, .min_args = 0, .max_args = 1,
	  .handler = cmd_reconcile, .render = NULL },
	{ .name = "pause", .usage = "[FLEET]",
	  .mutating = 1, .min_args = 0, .max_args = 1,
	  .handler = cmd_pause, .render = render_pause },
	{ .name = "resume", .usage = "[FLEET]",
	  .mutating = 1, .min_args = 0, .max_args = 1,
	  .handler = cmd_resume, .render = render_pause },
	{ .name = "drain", .usage = "STAGE_ARN",
	  .mutating = 1, .min_args = 1, .max_args = 1,
	  .handler = cmd_drain, .render = render_drain },
	{ .name = "reload", .usage = "",
	  .mutating = 1, .min_args = 0, .max_args = 0,
	  .handler = cmd_reload, .render = NULL },
	{ .name = "log-level", .usage = "debug|info|notice|warning",
	  .mutating = 1, .min_args = 1, .max_args = 1,
	  .handler = cmd_log_level, .render = render_log_level },
	{ .name = "replication start", .usage = "SRC DST PARTICIPANT",
	  .mutating = 1, .min_args = 3, .max_args = 3,
	  .handler = cmd_replication_start, .render = render_replication_change },
	{ .name = "replication stop", .usage = "SRC DST PARTICIPANT",
	  .mutating = 1, .min_args = 3, .max_args = 3,
	  .handler = cmd_replication_stop, .render = render_replication_change },
};

const struct control_command *commands_table(size_t *n)
{
	*n = sizeof(command_table) / sizeof(command_table[0]);
	return command_table;
}
