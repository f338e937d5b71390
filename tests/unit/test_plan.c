/*
 * test_plan.c — table tests for the planner (common/plan.c).
 *
 * Each case describes one fleet as IVS and Redis reported it and the plan expected, written
 * as a compact string: "kind stage participant" per action (stage ARNs shortened to the part
 * after "stage/", create actions list the hosts they will replicate), joined by "; ". The
 * policy is C = 10000, u = 0.8 (8000 viewers per stage at target), 0..5 replicas, no
 * scale-down delay unless a case says otherwise, drain timeout 600 s.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "plan.h"

#define A(x) "arn:aws:ivs:us-east-1:123456789012:stage/" x
#define ORIGIN A("origin")
#define NOW 10000000
#define SERVING(n, created, v) { A(n), n, created, true, v, false, 0, false, NULL, 0, false }
#define DRAINING(n, created, v, since) { A(n), n, created, true, v, true, since, false, NULL, 0, false }
#define OPERATOR_DRAINED(n, created, v, since) \
	{ A(n), n, created, true, v, true, since, true, NULL, 0, false }
#define ACTIVE(n) { A(n), PLAN_REPLICATION_ACTIVE }
#define STOPPED(n) { A(n), PLAN_REPLICATION_STOPPED }

struct host_spec {
	const char *id;
	bool read_failed;
	struct plan_replication repl[8];      /* terminated by a NULL destination */
};

struct plan_case {
	const char *name;
	uint64_t origin_viewers;
	struct plan_replica_stage replicas[8];  /* terminated by a NULL arn */
	struct host_spec hosts[4];              /* terminated by a NULL id */
	struct plan_manual_replication manual[3];
	bool stages_fail, hosts_fail, viewers_fail, origin_missing;
	enum plan_override override;
	uint32_t override_stages;
	uint32_t max_creates;
	uint32_t max_replicas_plus_one;         /* 0 = default 5 replicas */
	const char *actions;
	const char *open;
	uint32_t desired;
	bool capped;
	const char *fail_reason;
};

static const struct plan_case cases[] = {
	{ .name = "1. steady and fed: nothing to do",
	  .origin_viewers = 8000,
	  .replicas = { SERVING("r1", 100, 8000) },
	  .hosts = { { "h1", false, { ACTIVE("r1") } } },
	  .actions = "", .open = "origin=8000 r1=8000", .desired = 2 },
	{ .name = "1. sizing counts only serving replicas",
	  .origin_viewers = 8000,
	  .replicas = { SERVING("r1", 100, 8000), DRAINING("d1", 50, 900, NOW - 1000) },
	  .hosts = { { "h1", false, { ACTIVE("r1"), ACTIVE("d1") } } },
	  .actions = "", .open = "origin=8000 r1=8000", .desired = 2 },
	{ .name = "2. scale up creates stages that carry the hosts",
	  .origin_viewers = 24000,
	  .hosts = { { "h1", false, { { NULL, 0 } } }, { "h2", false, { { NULL, 0 } } } },
	  .actions = "create h1,h2; create h1,h2", .open = "origin=24000", .desired = 3 },
	{ .name = "2. scale up from the origin alone adds at most 4",
	  .origin_viewers = 80000,
	  .hosts = { { "h1", false, { { NULL, 0 } } } },
	  .actions = "create h1; create h1; create h1; create h1", .open = "origin=80000",
	  .desired = 5, .capped = true },
	{ .name = "2. reuse draining stages (most viewers first) before creating",
	  .origin_viewers = 20000,
	  .replicas = { SERVING("r1", 100, 20000), DRAINING("d1", 50, 100, NOW - 1000),
	                DRAINING("d2", 60, 500, NOW - 1000) },
	  .hosts = { { "h1", false, { ACTIVE("r1"), ACTIVE("d1"), ACTIVE("d2") } } },
	  .actions = "unmark-draining d2; unmark-draining d1; create h1",
	  .open = "origin=20000 r1=20000 d1=100 d2=500", .desired = 5 },
	{ .name = "2. reuse only what is needed: the draining stage with most viewers",
	  .origin_viewers = 12000,
	  .replicas = { SERVING("r1", 100, 12000), DRAINING("d1", 50, 100, NOW - 1000),
	                DRAINING("d2", 60, 500, NOW - 1000), DRAINING("d3", 70, 500, NOW - 1000) },
	  .hosts = { { "h1", false, { ACTIVE("r1"), ACTIVE("d1"), ACTIVE("d2"), ACTIVE("d3") } } },
	  .actions = "unmark-draining d2", .open = "origin=12000 r1=12000 d2=500", .desired = 3 },
	{ .name = "2. reuse a finished drain instead of deleting it",
	  .origin_viewers = 12000,
	  .replicas = { DRAINING("d1", 50, 0, NOW - 700000) },
	  .hosts = { { "h1", false, { ACTIVE("d1") } } },
	  .actions = "unmark-draining d1", .open = "origin=12000 d1=0", .desired = 2 },
	{ .name = "2. an operator's drain is not reused: a new stage replaces it",
	  .origin_viewers = 12000,
	  .replicas = { OPERATOR_DRAINED("d1", 50, 500, NOW - 1000) },
	  .hosts = { { "h1", false, { ACTIVE("d1") } } },
	  .actions = "create h1", .open = "origin=12000", .desired = 2 },
	{ .name = "2. reuse skips an operator's drain and takes the planner's",
	  .origin_viewers = 20000,
	  .replicas = { SERVING("r1", 100, 20000), OPERATOR_DRAINED("d1", 50, 900, NOW - 1000),
	                DRAINING("d2", 60, 100, NOW - 1000) },
	  .hosts = { { "h1", false, { ACTIVE("r1"), ACTIVE("d1"), ACTIVE("d2") } } },
	  .actions = "unmark-draining d2; create h1; create h1",
	  .open = "origin=20000 r1=20000 d2=100", .desired = 5 },
	{ .name = "2. per-pass create limit",
	  .origin_viewers = 40000, .max_creates = 2,
	  .hosts = { { "h1", false, { { NULL, 0 } } } },
	  .actions = "create h1; create h1", .open = "origin=40000", .desired = 5 },
	{ .name = "2. a new stage is fed through its create, existing gaps by starts",
	  .origin_viewers = 12000,
	  .replicas = { SERVING("r1", 100, 12000) },
	  .hosts = { { "h1", false, { { NULL, 0 } } } },
	  .actions = "start r1 h1; create h1", .open = "origin=12000 r1=12000", .desired = 3 },
	{ .name = "3. scale down marks the replica with the fewest viewers",
	  .origin_viewers = 1000,
	  .replicas = { SERVING("r1", 100, 3000), SERVING("r2", 200, 1000),
	                SERVING("r3", 300, 2000) },
	  .hosts = { { "h1", false, { ACTIVE("r1"), ACTIVE("r2"), ACTIVE("r3") } } },
	  .actions = "mark-draining r2", .open = "origin=1000 r1=3000 r3=2000", .desired = 3 },
	{ .name = "3. drain ties: the newest stage goes first",
	  .replicas = { SERVING("r1", 500, 0), SERVING("r2", 300, 0), SERVING("r3", 300, 0) },
	  .hosts = { { "h1", false, { ACTIVE("r1"), ACTIVE("r2"), ACTIVE("r3") } } },
	  .actions = "mark-draining r1", .open = "origin=0 r2=0 r3=0", .desired = 3 },
	{ .name = "3. drain ties: same age, ARN order",
	  .replicas = { SERVING("r3", 300, 0), SERVING("r2", 300, 0), SERVING("r1", 100, 0) },
	  .hosts = { { "h1", false, { ACTIVE("r1"), ACTIVE("r2"), ACTIVE("r3") } } },
	  .actions = "mark-draining r2", .open = "origin=0 r3=0 r1=0", .desired = 3 },
	{ .name = "3. a stage marked this pass is not deleted in the same pass",
	  .replicas = { SERVING("r1", 100, 0) },
	  .hosts = { { "h1", false, { ACTIVE("r1") } } },
	  .actions = "mark-draining r1", .open = "origin=0", .desired = 1 },
	{ .name = "3/7. the origin is never drained",
	  .origin_viewers = 0,
	  .hosts = { { "h1", false, { { NULL, 0 } } } },
	  .actions = "", .open = "origin=0", .desired = 1 },
	{ .name = "4. drain finished at zero viewers: stops before delete",
	  .origin_viewers = 8000,
	  .replicas = { SERVING("r1", 100, 8000), DRAINING("d1", 50, 0, NOW - 1000) },
	  .hosts = { { "h1", false, { ACTIVE("r1"), ACTIVE("d1") } },
	             { "h2", false, { ACTIVE("d1"), ACTIVE("r1") } } },
	  .actions = "stop d1 h1; stop d1 h2; delete d1", .open = "origin=8000 r1=8000",
	  .desired = 2 },
	{ .name = "4. drain timeout reached with viewers left",
	  .origin_viewers = 8000,
	  .replicas = { SERVING("r1", 100, 8000), DRAINING("d1", 50, 40, NOW - 600000) },
	  .hosts = { { "h1", false, { ACTIVE("r1"), ACTIVE("d1") } } },
	  .actions = "stop d1 h1; delete d1", .open = "origin=8000 r1=8000", .desired = 2 },
	{ .name = "4. drain timeout not yet reached: keep feeding",
	  .origin_viewers = 8000,
	  .replicas = { SERVING("r1", 100, 8000), DRAINING("d1", 50, 40, NOW - 599999) },
	  .hosts = { { "h1", false, { ACTIVE("r1"), STOPPED("d1") } } },
	  .actions = "start d1 h1", .open = "origin=8000 r1=8000", .desired = 2 },
	{ .name = "4. an operator's drain ends like any other: empty, stops then delete",
	  .origin_viewers = 8000,
	  .replicas = { SERVING("r1", 100, 8000), OPERATOR_DRAINED("d1", 50, 0, NOW - 1000) },
	  .hosts = { { "h1", false, { ACTIVE("r1"), ACTIVE("d1") } } },
	  .actions = "stop d1 h1; delete d1", .open = "origin=8000 r1=8000", .desired = 2 },
	{ .name = "4. an operator's drain past its timeout goes while growth replaces it",
	  .origin_viewers = 12000,
	  .replicas = { OPERATOR_DRAINED("d1", 50, 700, NOW - 600000) },
	  .hosts = { { "h1", false, { ACTIVE("d1") } } },
	  .actions = "stop d1 h1; delete d1; create h1", .open = "origin=12000", .desired = 2 },
	{ .name = "4. a finished drain without replications is just deleted",
	  .origin_viewers = 8000,
	  .replicas = { SERVING("r1", 100, 8000), DRAINING("d1", 50, 0, NOW - 5) },
	  .hosts = { { "h1", false, { ACTIVE("r1"), STOPPED("d1") } } },
	  .actions = "delete d1", .open = "origin=8000 r1=8000", .desired = 2 },
	{ .name = "4/7. only replications into the deleted stage are stopped",
	  .origin_viewers = 8000,
	  .replicas = { SERVING("r1", 100, 8000), DRAINING("d1", 50, 0, NOW - 5) },
	  .hosts = { { "h1", false, { ACTIVE("r1"), ACTIVE("d1"), ACTIVE("other-fleet") } } },
	  .actions = "stop d1 h1; delete d1", .open = "origin=8000 r1=8000", .desired = 2 },
	{ .name = "5. fail static, viewers unavailable: no delete, starts continue",
	  .origin_viewers = 8000, .viewers_fail = true,
	  .replicas = { SERVING("r1", 100, 8000), DRAINING("d1", 50, 0, NOW - 700000) },
	  .hosts = { { "h1", false, { STOPPED("r1"), ACTIVE("d1") } } },
	  .actions = "start r1 h1", .open = "origin=8000 r1=8000", .desired = 2,
	  .fail_reason = "viewer counts unavailable" },
	{ .name = "5. fail static, participant list failed: no mark",
	  .origin_viewers = 0, .hosts_fail = true,
	  .replicas = { SERVING("r1", 100, 0), SERVING("r2", 100, 0) },
	  .hosts = { { "h1", false, { ACTIVE("r1"), ACTIVE("r2") } } },
	  .actions = "", .open = "origin=0 r1=0 r2=0", .desired = 2,
	  .fail_reason = "participant list unavailable" },
	{ .name = "5. fail static, participant list failed: still creates",
	  .origin_viewers = 24000, .hosts_fail = true,
	  .hosts = { { "h1", false, { { NULL, 0 } } } },
	  .actions = "create h1; create h1", .open = "origin=24000", .desired = 3,
	  .fail_reason = "participant list unavailable" },
	{ .name = "5. fail static, stage list incomplete: unmark but no create, no delete",
	  .origin_viewers = 24000, .stages_fail = true,
	  .replicas = { DRAINING("d1", 50, 10, NOW - 1000), DRAINING("d2", 50, 0, NOW - 5) },
	  .hosts = { { "h1", false, { ACTIVE("d1"), ACTIVE("d2") } } },
	  .actions = "unmark-draining d1; unmark-draining d2", .open = "origin=24000 d1=10 d2=0",
	  .desired = 3, .fail_reason = "stage list incomplete" },
	{ .name = "5. fail static, stage list incomplete: no create even with the origin unseen",
	  .origin_viewers = 24000, .stages_fail = true, .origin_missing = true,
	  .hosts = { { "h1", false, { { NULL, 0 } } } },
	  .actions = "", .open = "origin=24000", .desired = 3,
	  .fail_reason = "stage list incomplete" },
	{ .name = "5/8. one host's replicas unreadable: no start for it, no delete",
	  .origin_viewers = 8000,
	  .replicas = { SERVING("r1", 100, 8000), DRAINING("d1", 50, 0, NOW - 5) },
	  .hosts = { { "h1", true, { { NULL, 0 } } }, { "h2", false, { STOPPED("r1") } } },
	  .actions = "start r1 h2; start d1 h2", .open = "origin=8000 r1=8000", .desired = 2,
	  .fail_reason = "participant replicas unavailable" },
	{ .name = "5. one stage's viewer count invalid: no shrink, no mark",
	  .origin_viewers = 0,
	  .replicas = { SERVING("r1", 100, 0), { A("r2"), "r2", 100, false, 0, false, 0 } },
	  .hosts = { { "h1", false, { ACTIVE("r1"), ACTIVE("r2") } } },
	  .actions = "", .open = "origin=0 r1=0 r2=0", .desired = 3,
	  .fail_reason = "viewer counts unavailable" },
	{ .name = "5. invalid override is ignored and is not a failed read",
	  .origin_viewers = 8000, .override = PLAN_OVERRIDE_INVALID,
	  .replicas = { SERVING("r1", 100, 8000) },
	  .hosts = { { "h1", false, { ACTIVE("r1") } } },
	  .actions = "", .open = "origin=8000 r1=8000", .desired = 2 },
	{ .name = "1. valid override replaces the viewer demand",
	  .origin_viewers = 0, .override = PLAN_OVERRIDE_VALID, .override_stages = 3,
	  .hosts = { { "h1", false, { { NULL, 0 } } } },
	  .actions = "create h1; create h1", .open = "origin=0", .desired = 3 },
	{ .name = "1. override above max_replicas is clamped",
	  .origin_viewers = 0, .override = PLAN_OVERRIDE_VALID, .override_stages = 5,
	  .max_replicas_plus_one = 2,
	  .replicas = { SERVING("r1", 100, 0) },
	  .hosts = { { "h1", false, { ACTIVE("r1") } } },
	  .actions = "create h1", .open = "origin=0 r1=0", .desired = 3 },
	{ .name = "6. multiple hosts into every replica stage",
	  .origin_viewers = 12000,
	  .replicas = { SERVING("r1", 100, 6000), SERVING("r2", 200, 6000) },
	  .hosts = { { "h1", false, { ACTIVE("r1") } }, { "h2", false, { { NULL, 0 } } } },
	  .actions = "start r1 h2; start r2 h1; start r2 h2",
	  .open = "origin=12000 r1=6000 r2=6000", .desired = 3 },
	{ .name = "6. STOPPED replication is restarted",
	  .origin_viewers = 8000,
	  .replicas = { SERVING("r1", 100, 8000) },
	  .hosts = { { "h1", false, { STOPPED("r1") } } },
	  .actions = "start r1 h1", .open = "origin=8000 r1=8000", .desired = 2 },
	{ .name = "6. 8 stages of demand: 5 replicas, capped",
	  .origin_viewers = 32000,
	  .replicas = { SERVING("r1", 100, 32000) },
	  .hosts = { { "h1", false, { ACTIVE("r1") } } },
	  .actions = "create h1; create h1; create h1; create h1",
	  .open = "origin=32000 r1=32000", .desired = 6, .capped = true },
	{ .name = "6. at the cap with 5 fed replicas: no more starts, capped",
	  .origin_viewers = 40000,
	  .replicas = { SERVING("r1", 1, 8000), SERVING("r2", 2, 8000), SERVING("r3", 3, 8000),
	                SERVING("r4", 4, 8000), SERVING("r5", 5, 8000) },
	  .hosts = { { "h1", false, { ACTIVE("r1"), ACTIVE("r2"), ACTIVE("r3"), ACTIVE("r4"),
	                              ACTIVE("r5") } } },
	  .actions = "", .open = "origin=40000 r1=8000 r2=8000 r3=8000 r4=8000 r5=8000",
	  .desired = 6, .capped = true },
	{ .name = "6/7. outside and manual replications count toward the cap",
	  .origin_viewers = 24000,
	  .replicas = { SERVING("r1", 1, 0), SERVING("r2", 2, 0) },
	  .hosts = { { "h1", false, { ACTIVE("other-1"), ACTIVE("other-2"), ACTIVE("other-3") } } },
	  .manual = { { A("elsewhere"), A("other-4"), "h1" } },
	  .actions = "start r1 h1", .open = "origin=24000 r1=0 r2=0", .desired = 3,
	  .capped = true },
	{ .name = "6/7. a listed manual replication is counted once",
	  .origin_viewers = 24000,
	  .replicas = { SERVING("r1", 1, 0), SERVING("r2", 2, 0) },
	  .hosts = { { "h1", false, { ACTIVE("other-1"), ACTIVE("other-2"), ACTIVE("manual") } } },
	  .manual = { { ORIGIN, A("manual"), "h1" } },
	  .actions = "start r1 h1; start r2 h1", .open = "origin=24000 r1=0 r2=0", .desired = 3 },
	{ .name = "6. under the cap serving stages are fed before draining ones",
	  .origin_viewers = 8000,
	  .replicas = { DRAINING("d1", 1, 50, NOW - 1000), SERVING("r1", 2, 8000) },
	  .hosts = { { "h1", false, { ACTIVE("o1"), ACTIVE("o2"), ACTIVE("o3"), ACTIVE("o4") } } },
	  .actions = "start r1 h1", .open = "origin=8000 r1=8000", .desired = 2, .capped = true },
	{ .name = "6. a full host is left out of a new stage's host list",
	  .origin_viewers = 24000,
	  .replicas = { SERVING("r1", 1, 0) },
	  .hosts = { { "h1", false, { ACTIVE("r1"), ACTIVE("o1"), ACTIVE("o2"), ACTIVE("o3"),
	                              ACTIVE("o4") } },
	             { "h2", false, { ACTIVE("r1") } } },
	  .actions = "create h2", .open = "origin=24000 r1=0", .desired = 3, .capped = true },
	{ .name = "7. manual replication into a finished drain: not stopped, delete held",
	  .origin_viewers = 8000,
	  .replicas = { SERVING("r1", 100, 8000), DRAINING("d1", 50, 0, NOW - 5) },
	  .hosts = { { "h1", false, { ACTIVE("r1"), ACTIVE("d1") } } },
	  .manual = { { ORIGIN, A("d1"), "h1" } },
	  .actions = "", .open = "origin=8000 r1=8000", .desired = 2 },
	{ .name = "7. a replica entry naming the origin, and duplicates, are ignored",
	  .origin_viewers = 8000,
	  .replicas = { DRAINING("origin", 1, 0, NOW - 700000), SERVING("r1", 100, 8000),
	                DRAINING("r1", 100, 0, NOW - 700000) },
	  .hosts = { { "h1", false, { ACTIVE("r1"), STOPPED("origin") } } },
	  .actions = "", .open = "origin=8000 r1=8000", .desired = 2 },
	{ .name = "8. a host listed twice is fed once",
	  .origin_viewers = 8000,
	  .replicas = { SERVING("r1", 100, 8000) },
	  .hosts = { { "h1", false, { { NULL, 0 } } }, { "h1", false, { { NULL, 0 } } } },
	  .actions = "start r1 h1", .open = "origin=8000 r1=8000", .desired = 2 },
	{ .name = "8. no hosts: stages are still sized, creates carry no hosts",
	  .origin_viewers = 16000,
	  .actions = "create -", .open = "origin=16000", .desired = 2 },
	{ .name = "9. origin missing: no actions at all",
	  .origin_viewers = 80000, .origin_missing = true,
	  .replicas = { SERVING("r1", 100, 0), DRAINING("d1", 50, 0, NOW - 700000) },
	  .hosts = { { "h1", false, { STOPPED("r1"), ACTIVE("d1") } } },
	  .actions = "", .open = "", .desired = 0 },
};

struct built {
	struct plan_replica_stage replicas[8];
	struct plan_host hosts[4];
	struct plan_manual_replication manual[3];
	struct plan_input in;
};

static void build_input(const struct plan_case *c, struct built *b)
{
	size_t i, j;

	memset(b, 0, sizeof(*b));
	b->in.fleet = "main";
	b->in.origin_arn = ORIGIN;
	b->in.origin_seen = !c->origin_missing;
	b->in.origin_viewers_known = true;
	b->in.origin_viewers = c->origin_viewers;
	for (i = 0; i < 8 && c->replicas[i].arn != NULL; i++)
		b->replicas[i] = c->replicas[i];
	b->in.replicas = b->replicas;
	b->in.n_replicas = i;
	for (i = 0; i < 4 && c->hosts[i].id != NULL; i++) {
		b->hosts[i].participant_id = c->hosts[i].id;
		b->hosts[i].replicas_ok = !c->hosts[i].read_failed;
		b->hosts[i].replications = c->hosts[i].repl;
		for (j = 0; j < 8 && c->hosts[i].repl[j].destination_arn != NULL; j++)
			;
		b->hosts[i].n_replications = j;
	}
	b->in.hosts = b->hosts;
	b->in.n_hosts = i;
	for (i = 0; i < 3 && c->manual[i].participant_id != NULL; i++)
		b->manual[i] = c->manual[i];
	b->in.manual = b->manual;
	b->in.n_manual = i;
	b->in.stages_ok = !c->stages_fail;
	b->in.hosts_ok = !c->hosts_fail;
	b->in.viewers_ok = !c->viewers_fail;
	b->in.override = c->override;
	b->in.override_stages = c->override_stages;
	b->in.policy = (struct fleet_policy){ 10000, 0.8, 0, 5, 0, 600000, 0 };
	if (c->max_replicas_plus_one > 0)
		b->in.policy.max_replicas = c->max_replicas_plus_one;
	b->in.max_creates = c->max_creates;
}

static const char *short_arn(const char *arn)
{
	const char *slash = arn != NULL ? strrchr(arn, '/') : NULL;

	return slash != NULL ? slash + 1 : "(null)";
}

static void append(char *buf, size_t size, const char *s)
{
	size_t len = strlen(buf);

	assert_true(len + strlen(s) < size);
	memcpy(buf + len, s, strlen(s) + 1);
}

static void render_actions(const struct plan_output *out, char *buf, size_t size)
{
	size_t i, j;

	buf[0] = '\0';
	for (i = 0; i < out->n_actions; i++) {
		const struct plan_action *a = &out->actions[i];

		if (i > 0)
			append(buf, size, "; ");
		append(buf, size, plan_action_kind_name(a->kind));
		append(buf, size, " ");
		if (a->kind == PLAN_CREATE_STAGE) {
			for (j = 0; j < a->n_hosts; j++) {
				if (j > 0)
					append(buf, size, ",");
				append(buf, size, a->hosts[j]);
			}
			if (a->n_hosts == 0)
				append(buf, size, "-");
			continue;
		}
		append(buf, size, short_arn(a->stage_arn));
		if (a->participant_id != NULL) {
			append(buf, size, " ");
			append(buf, size, a->participant_id);
		}
	}
}

static void render_open(const struct plan_output *out, char *buf, size_t size)
{
	char item[128];
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < out->n_open; i++) {
		snprintf(item, sizeof(item), "%s%s=%llu", i > 0 ? " " : "",
		         short_arn(out->open[i].arn), (unsigned long long)out->open[i].viewers);
		append(buf, size, item);
	}
}

/* Properties every plan must have, whatever the case. */
static void assert_plan_invariants(const struct plan_input *in, const struct plan_output *out)
{
	size_t i, j;

	assert_int_equal(plan_check(in, out), 0);
	for (i = 0; i < out->n_actions; i++) {
		const struct plan_action *a = &out->actions[i];

		if (a->stage_arn != NULL)
			assert_string_not_equal(a->stage_arn, in->origin_arn);
		if (a->kind == PLAN_START_REPLICATION)
			assert_string_equal(a->source_arn, in->origin_arn);
		if (a->kind == PLAN_STOP_REPLICATION)
			assert_non_null(a->source_arn);
		if (a->kind != PLAN_DELETE_STAGE)
			continue;
		assert_true(a->after_stops);
		/* every stop into a deleted stage comes before its delete */
		for (j = i + 1; j < out->n_actions; j++)
			if (out->actions[j].kind == PLAN_STOP_REPLICATION)
				assert_string_not_equal(out->actions[j].stage_arn, a->stage_arn);
	}
}

static void test_cases(void **unused)
{
	char got[2048];
	size_t i;

	(void)unused;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct plan_case *c = &cases[i];
		struct policy_state state;
		struct plan_output out;
		struct built b;

		print_message("case: %s\n", c->name);
		build_input(c, &b);
		policy_state_init(&state);
		assert_int_equal(plan_fleet(&b.in, &state, NOW, &out), 0);
		render_actions(&out, got, sizeof(got));
		assert_string_equal(got, c->actions);
		render_open(&out, got, sizeof(got));
		assert_string_equal(got, c->open);
		assert_int_equal(out.summary.desired_stages, c->desired);
		assert_int_equal(out.summary.capped, c->capped);
		assert_int_equal(out.summary.fail_static, c->fail_reason != NULL);
		if (c->fail_reason != NULL)
			assert_string_equal(out.summary.fail_reason, c->fail_reason);
		else
			assert_null(out.summary.fail_reason);
		assert_plan_invariants(&b.in, &out);
	}
}

static const struct plan_case *find_case(const char *prefix)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (strncmp(cases[i].name, prefix, strlen(prefix)) == 0)
			return &cases[i];
	fail_msg("no case %s", prefix);
	return NULL;
}

static void test_summary_details(void **unused)
{
	struct policy_state state;
	struct plan_output out;
	struct built b;

	(void)unused;
	policy_state_init(&state);
	build_input(find_case("9. origin missing"), &b);
	assert_int_equal(plan_fleet(&b.in, &state, NOW, &out), 0);
	assert_string_equal(out.summary.note, "origin stage missing");
	assert_int_equal(out.n_open, 0);
	assert_int_equal(state.bucket_ms, 0);     /* nothing recorded for a missing origin */

	build_input(find_case("5. invalid override"), &b);
	assert_int_equal(plan_fleet(&b.in, &state, NOW, &out), 0);
	assert_true(out.summary.override_invalid);
	assert_string_equal(out.summary.decision.reason, "within tolerance");

	build_input(find_case("7. manual replication into a finished drain"), &b);
	assert_int_equal(plan_fleet(&b.in, &state, NOW, &out), 0);
	assert_int_equal(out.summary.deletes_held, 1);
	assert_int_equal(out.summary.draining_stages, 1);

	build_input(find_case("7. a replica entry naming the origin"), &b);
	assert_int_equal(plan_fleet(&b.in, &state, NOW, &out), 0);
	assert_int_equal(out.summary.ignored_stages, 2);
	assert_int_equal(out.summary.serving_stages, 2);

	build_input(find_case("6. multiple hosts"), &b);
	assert_int_equal(plan_fleet(&b.in, &state, NOW, &out), 0);
	assert_int_equal(out.summary.hosts, 2);
	assert_int_equal(out.summary.expected_replications, 4);
	assert_int_equal(out.summary.active_replications, 1);

	build_input(find_case("8. a host listed twice"), &b);
	assert_int_equal(plan_fleet(&b.in, &state, NOW, &out), 0);
	assert_int_equal(out.summary.hosts, 1);
}

/* One action as render_actions writes it. */
static void render_action(const struct plan_action *a, char *buf, size_t size)
{
	struct plan_output one = { .n_actions = 1 };

	one.actions[0] = *a;
	render_actions(&one, buf, size);
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

static int compare_string_ptrs(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * The actions of o as sorted rendered lines (into lines[], a CREATE's hosts sorted too; count
 * returned), and the sequence of their kinds in plan order into kinds.
 */
static size_t sorted_actions(const struct plan_output *o, char lines[][128], char *kinds,
			     size_t kinds_size)
{
	kinds[0] = '\0';
	for (size_t i = 0; i < o->n_actions; i++) {
		struct plan_action a = o->actions[i];
		qsort(a.hosts, a.n_hosts, sizeof(a.hosts[0]), compare_string_ptrs);
		render_action(&a, lines[i], 128);
		append(kinds, kinds_size, plan_action_kind_name(a.kind));
		append(kinds, kinds_size, " ");
	}
	qsort(lines, o->n_actions, 128, compare_strings);
	return o->n_actions;
}

/*
 * Same input, same plan; and the input order of hosts only changes the order of the per-host
 * actions (starts, stops, the hosts a create carries), never which actions, the sequence of
 * their kinds (stops before deletes) or the summary: every case is planned again with its
 * hosts in every order (at most 4 hosts: 24 orders).
 */
static void test_deterministic(void **unused)
{
	static const size_t perms[24][4] = {
		{0,1,2,3},{0,1,3,2},{0,2,1,3},{0,2,3,1},{0,3,1,2},{0,3,2,1},
		{1,0,2,3},{1,0,3,2},{1,2,0,3},{1,2,3,0},{1,3,0,2},{1,3,2,0},
		{2,0,1,3},{2,0,3,1},{2,1,0,3},{2,1,3,0},{2,3,0,1},{2,3,1,0},
		{3,0,1,2},{3,0,2,1},{3,1,0,2},{3,1,2,0},{3,2,0,1},{3,2,1,0},
	};
	struct policy_state s1, s2;
	struct plan_output *o1, *o2;
	struct built b;
	struct plan_host hosts[4];
	static char lines1[PLAN_MAX_ACTIONS][128], lines2[PLAN_MAX_ACTIONS][128];
	char kinds1[2048], kinds2[2048];
	size_t i, permuted = 0;

	(void)unused;
	o1 = test_malloc(sizeof(*o1));
	o2 = test_malloc(sizeof(*o2));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		build_input(&cases[i], &b);
		policy_state_init(&s1);
		policy_state_init(&s2);
		assert_int_equal(plan_fleet(&b.in, &s1, NOW, o1), 0);
		assert_int_equal(plan_fleet(&b.in, &s2, NOW, o2), 0);
		assert_int_equal(o1->n_actions, o2->n_actions);
		assert_memory_equal(o1->actions, o2->actions, o1->n_actions * sizeof(o1->actions[0]));
		assert_memory_equal(&o1->summary, &o2->summary, sizeof(o1->summary));

		print_message("case: %s, hosts in every order\n", cases[i].name);
		size_t n1 = sorted_actions(o1, lines1, kinds1, sizeof(kinds1));
		memcpy(hosts, b.hosts, sizeof(hosts));
		for (size_t k = 0; k < 24; k++) {
			size_t n = 0;
			/* The orders of the case's hosts: the permutation's entries below n_hosts. */
			for (size_t j = 0; j < 4; j++)
				if (perms[k][j] < b.in.n_hosts)
					b.hosts[n++] = hosts[perms[k][j]];
			assert_int_equal(n, b.in.n_hosts);
			policy_state_init(&s2);
			assert_int_equal(plan_fleet(&b.in, &s2, NOW, o2), 0);
			assert_int_equal(o2->n_actions, o1->n_actions);
			size_t n2 = sorted_actions(o2, lines2, kinds2, sizeof(kinds2));
			assert_int_equal(n2, n1);
			for (size_t j = 0; j < n1; j++)
				assert_string_equal(lines2[j], lines1[j]);
			assert_string_equal(kinds2, kinds1);
			assert_int_equal(o2->summary.desired_stages, o1->summary.desired_stages);
			assert_int_equal(o2->summary.serving_stages, o1->summary.serving_stages);
			assert_int_equal(o2->summary.capped, o1->summary.capped);
			assert_int_equal(o2->summary.fail_static, o1->summary.fail_static);
			assert_int_equal(o2->summary.draining_stages, o1->summary.draining_stages);
			assert_int_equal(o2->summary.hosts, o1->summary.hosts);
			assert_int_equal(o2->summary.expected_replications,
					 o1->summary.expected_replications);
			assert_int_equal(o2->summary.active_replications,
					 o1->summary.active_replications);
			permuted += b.in.n_hosts > 1;
		}
		memcpy(b.hosts, hosts, sizeof(hosts));
	}
	assert_true(permuted > 0);      /* some case has hosts to permute */
	test_free(o1);
	test_free(o2);
}

/* Stabilization through the planner: a fall is held for scale_down_delay, then one per pass. */
static void test_stabilization_across_passes(void **unused)
{
	static const struct plan_replication fed[] = {
		ACTIVE("r1"), ACTIVE("r2"),
	};
	struct plan_replica_stage replicas[] = { SERVING("r1", 1, 8000), SERVING("r2", 2, 8000) };
	struct plan_host host = { "h1", true, fed, 2 };
	struct plan_input in = { 0 };
	struct policy_state state;
	struct plan_output out;
	char got[256];

	(void)unused;
	in.fleet = "main";
	in.origin_arn = ORIGIN;
	in.origin_seen = true;
	in.origin_viewers_known = true;
	in.origin_viewers = 8000;
	in.replicas = replicas;
	in.n_replicas = 2;
	in.hosts = &host;
	in.n_hosts = 1;
	in.stages_ok = in.hosts_ok = in.viewers_ok = true;
	in.policy = (struct fleet_policy){ 10000, 0.8, 0, 5, 300000, 600000, 0 };
	policy_state_init(&state);

	assert_int_equal(plan_fleet(&in, &state, 0, &out), 0);
	assert_int_equal(out.n_actions, 0);
	assert_int_equal(out.summary.desired_stages, 3);

	in.origin_viewers = 100;
	replicas[0].viewers = 50;
	replicas[1].viewers = 10;
	assert_int_equal(plan_fleet(&in, &state, 120000, &out), 0);
	assert_int_equal(out.n_actions, 0);
	assert_true(out.summary.decision.held);
	/* less than a whole window since the start: the hold, then the window */
	assert_string_equal(out.summary.decision.reason, "warming up");

	assert_int_equal(plan_fleet(&in, &state, 310000, &out), 0);
	render_actions(&out, got, sizeof(got));
	assert_string_equal(got, "mark-draining r2");
	assert_int_equal(out.summary.desired_stages, 2);
}

static void test_invalid_input(void **unused)
{
	struct plan_replica_stage bad_stage[] = { { NULL, "x", 0, true, 0, false, 0, false, NULL, 0,
	                                            false } };
	struct plan_replication bad_repl[] = { { A("r1"), (enum plan_replication_state)7 } };
	struct plan_replication null_repl[] = { { NULL, PLAN_REPLICATION_ACTIVE } };
	struct plan_host bad_host[] = { { "h1", true, bad_repl, 1 } };
	struct plan_host null_repl_host[] = { { "h1", true, null_repl, 1 } };
	struct plan_host nameless_host[] = { { "", true, NULL, 0 } };
	struct plan_manual_replication bad_manual[] = { { ORIGIN, NULL, "h1" } };
	struct plan_replica_stage many[PLAN_MAX_REPLICA_STAGES + 1];
	struct plan_host many_hosts[PLAN_MAX_HOSTS + 1];
	struct policy_state state;
	struct plan_output out;
	struct plan_input in;
	struct built b;

	(void)unused;
	memset(many, 0, sizeof(many));
	memset(many_hosts, 0, sizeof(many_hosts));
	policy_state_init(&state);
	build_input(find_case("1. steady"), &b);

	in = b.in; in.origin_arn = NULL;
	assert_int_equal(plan_fleet(&in, &state, NOW, &out), -EINVAL);
	in = b.in; in.origin_arn = "";
	assert_int_equal(plan_fleet(&in, &state, NOW, &out), -EINVAL);
	in = b.in; in.fleet = NULL;
	assert_int_equal(plan_fleet(&in, &state, NOW, &out), -EINVAL);
	in = b.in; in.policy.viewers_per_stage = 0;
	assert_int_equal(plan_fleet(&in, &state, NOW, &out), -EINVAL);
	in = b.in; in.replicas = bad_stage; in.n_replicas = 1;
	assert_int_equal(plan_fleet(&in, &state, NOW, &out), -EINVAL);
	in = b.in; in.replicas = NULL; in.n_replicas = 1;
	assert_int_equal(plan_fleet(&in, &state, NOW, &out), -EINVAL);
	in = b.in; in.hosts = bad_host;
	assert_int_equal(plan_fleet(&in, &state, NOW, &out), -EINVAL);
	in = b.in; in.hosts = null_repl_host;
	assert_int_equal(plan_fleet(&in, &state, NOW, &out), -EINVAL);
	in = b.in; in.hosts = nameless_host;
	assert_int_equal(plan_fleet(&in, &state, NOW, &out), -EINVAL);
	in = b.in; in.manual = bad_manual; in.n_manual = 1;
	assert_int_equal(plan_fleet(&in, &state, NOW, &out), -EINVAL);
	in = b.in; in.replicas = many; in.n_replicas = PLAN_MAX_REPLICA_STAGES + 1;
	assert_int_equal(plan_fleet(&in, &state, NOW, &out), -E2BIG);
	in = b.in; in.hosts = many_hosts; in.n_hosts = PLAN_MAX_HOSTS + 1;
	assert_int_equal(plan_fleet(&in, &state, NOW, &out), -E2BIG);
	assert_int_equal(out.n_actions, 0);
	assert_int_equal(out.n_open, 0);
	assert_int_equal(state.bucket_ms, 0);     /* rejected input leaves the history alone */
	assert_int_equal(plan_fleet(NULL, &state, NOW, &out), -EINVAL);
	assert_int_equal(plan_fleet(&b.in, NULL, NOW, &out), -EINVAL);
	assert_int_equal(plan_fleet(&b.in, &state, NOW, NULL), -EINVAL);
}

/* plan_check rejects every kind of unsafe action, whoever produced it. */
static void test_check_rejects(void **unused)
{
	struct plan_output out;
	struct plan_input in;
	struct built b;

	(void)unused;
	build_input(find_case("7. manual replication into a finished drain"), &b);
	memset(&out, 0, sizeof(out));
	out.n_actions = 1;

	in = b.in;
	out.actions[0] = (struct plan_action){ .kind = PLAN_DELETE_STAGE, .stage_arn = A("r1"),
	                                       .after_stops = true };
	assert_int_equal(plan_check(&in, &out), 0);
	out.actions[0].after_stops = false;
	assert_int_equal(plan_check(&in, &out), -EPERM);
	out.actions[0] = (struct plan_action){ .kind = PLAN_DELETE_STAGE, .stage_arn = ORIGIN,
	                                       .after_stops = true };
	assert_int_equal(plan_check(&in, &out), -EPERM);
	out.actions[0].stage_arn = A("not-owned");
	assert_int_equal(plan_check(&in, &out), -EPERM);
	out.actions[0] = (struct plan_action){ .kind = PLAN_MARK_DRAINING, .stage_arn = ORIGIN };
	assert_int_equal(plan_check(&in, &out), -EPERM);
	out.actions[0] = (struct plan_action){ .kind = PLAN_STOP_REPLICATION, .stage_arn = A("d1"),
	                                       .source_arn = ORIGIN, .participant_id = "h1" };
	assert_int_equal(plan_check(&in, &out), -EPERM);       /* a manual replication */
	out.actions[0].stage_arn = A("r1");
	assert_int_equal(plan_check(&in, &out), 0);
	out.actions[0].source_arn = A("r1");
	assert_int_equal(plan_check(&in, &out), -EPERM);
	out.actions[0] = (struct plan_action){ .kind = PLAN_START_REPLICATION,
	                                       .stage_arn = A("r1"), .source_arn = ORIGIN,
	                                       .participant_id = "stranger" };
	assert_int_equal(plan_check(&in, &out), -EPERM);
	out.actions[0] = (struct plan_action){ .kind = PLAN_CREATE_STAGE, .stage_arn = A("r1") };
	assert_int_equal(plan_check(&in, &out), -EPERM);

	in.viewers_ok = false;   /* fail static: no mark, stop or delete */
	out.actions[0] = (struct plan_action){ .kind = PLAN_MARK_DRAINING, .stage_arn = A("r1") };
	assert_int_equal(plan_check(&in, &out), -EPERM);
	out.actions[0] = (struct plan_action){ .kind = PLAN_UNMARK_DRAINING, .stage_arn = A("d1") };
	assert_int_equal(plan_check(&in, &out), 0);
	{
		/* An operator's drain is never put back in service. */
		struct plan_replica_stage reps[8];
		assert_true(in.n_replicas <= 8);
		memcpy(reps, in.replicas, in.n_replicas * sizeof(reps[0]));
		for (size_t i = 0; i < in.n_replicas; i++)
			reps[i].operator_drain = reps[i].draining;
		in.replicas = reps;
		assert_int_equal(plan_check(&in, &out), -EPERM);
		in = b.in;
		in.viewers_ok = false;
	}

	in = b.in;
	in.origin_seen = false;
	assert_int_equal(plan_check(&in, &out), -EPERM);
}

/* Twelve hosts feeding five stages overflow no buffer; the cap still holds per host. */
static void test_many_hosts(void **unused)
{
	static const char *const ids[PLAN_MAX_HOSTS] = {
		"h01", "h02", "h03", "h04", "h05", "h06", "h07", "h08", "h09", "h10", "h11", "h12",
	};
	struct plan_replica_stage replicas[] = {
		SERVING("r1", 1, 8000), SERVING("r2", 2, 8000), SERVING("r3", 3, 8000),
		SERVING("r4", 4, 8000), SERVING("r5", 5, 8000),
	};
	struct plan_host hosts[PLAN_MAX_HOSTS];
	struct plan_input in = { 0 };
	struct policy_state state;
	struct plan_output *out;
	size_t i, starts = 0;

	(void)unused;
	for (i = 0; i < PLAN_MAX_HOSTS; i++)
		hosts[i] = (struct plan_host){ ids[i], true, NULL, 0 };
	in.fleet = "main";
	in.origin_arn = ORIGIN;
	in.origin_seen = true;
	in.origin_viewers_known = true;
	in.origin_viewers = 8000;
	in.replicas = replicas;
	in.n_replicas = 5;
	in.hosts = hosts;
	in.n_hosts = PLAN_MAX_HOSTS;
	in.stages_ok = in.hosts_ok = in.viewers_ok = true;
	in.policy = (struct fleet_policy){ 10000, 0.8, 0, 5, 0, 600000, 0 };
	policy_state_init(&state);
	out = test_malloc(sizeof(*out));
	assert_int_equal(plan_fleet(&in, &state, NOW, out), 0);
	for (i = 0; i < out->n_actions; i++)
		if (out->actions[i].kind == PLAN_START_REPLICATION)
			starts++;
	assert_int_equal(starts, 5 * PLAN_MAX_HOSTS);
	assert_false(out->summary.truncated);
	assert_false(out->summary.capped);
	assert_int_equal(out->summary.expected_replications, 5 * PLAN_MAX_HOSTS);
	test_free(out);
}

/* One origin with 8000 viewers, r1 serving, r2 draining since `since` with `v2` viewers. */
static void drain_input(struct plan_input *in, struct plan_replica_stage *replicas, int64_t since,
                        uint64_t v2)
{
	struct plan_replica_stage r[] = { SERVING("r1", 1, 8000), DRAINING("r2", 2, 0, 0) };

	r[1].viewers = v2;
	r[1].draining_since_ms = since;
	replicas[0] = r[0];
	replicas[1] = r[1];
	memset(in, 0, sizeof(*in));
	in->fleet = "main";
	in->origin_arn = ORIGIN;
	in->origin_seen = true;
	in->origin_viewers_known = true;
	in->origin_viewers = 8000;
	in->replicas = replicas;
	in->n_replicas = 2;
	in->stages_ok = in->hosts_ok = in->viewers_ok = true;
	in->policy = (struct fleet_policy){ 10000, 0.8, 0, 5, 0, 600000, 30000 };
}

/*
 * Rule 4: a replication into a draining stage whose source is not a host any more (it dropped
 * and is inside its reconnect window) is found in the stage and stopped before the delete.
 */
static void test_feeders_stopped_before_delete(void **unused)
{
	static const struct plan_replication fed[] = { ACTIVE("r1"), ACTIVE("r2") };
	const struct plan_feeder feeders[] = {
		{ ORIGIN, "away" },           /* disconnected host, replication still ACTIVE */
		{ ORIGIN, "h1" },             /* the host's own: stopped once, from its listing */
		{ ORIGIN, "away" },           /* listed twice */
		{ A("elsewhere"), "guest" },  /* another source replicating into our stage */
	};
	struct plan_replica_stage replicas[2];
	struct plan_host host = { "h1", true, fed, 2 };
	struct plan_input in;
	struct policy_state state;
	struct plan_output out;
	char got[512];

	(void)unused;
	drain_input(&in, replicas, 0, 0);
	in.policy.drain_min_ms = 0;
	replicas[1].feeders = feeders;
	replicas[1].n_feeders = 4;
	in.hosts = &host;
	in.n_hosts = 1;
	policy_state_init(&state);
	assert_int_equal(plan_fleet(&in, &state, NOW, &out), 0);
	render_actions(&out, got, sizeof(got));
	assert_string_equal(got, "stop r2 h1; stop r2 away; stop r2 guest; delete r2");
	assert_string_equal(out.actions[1].source_arn, ORIGIN);
	assert_string_equal(out.actions[2].source_arn, A("elsewhere"));
	assert_plan_invariants(&in, &out);

	/* no host at all: the feeders alone */
	in.n_hosts = 0;
	replicas[1].n_feeders = 1;
	assert_int_equal(plan_fleet(&in, &state, NOW, &out), 0);
	render_actions(&out, got, sizeof(got));
	assert_string_equal(got, "stop r2 away; delete r2");
	assert_plan_invariants(&in, &out);

	/* feeders unknown: the stage stays this pass */
	replicas[1].feeders_unknown = true;
	assert_int_equal(plan_fleet(&in, &state, NOW, &out), 0);
	assert_int_equal(out.n_actions, 0);

	/* plan_check: a stop of something that is neither a host's nor a feeder's is refused */
	replicas[1].feeders_unknown = false;
	assert_int_equal(plan_fleet(&in, &state, NOW, &out), 0);
	out.actions[0].participant_id = "stranger";
	assert_int_equal(plan_check(&in, &out), -EPERM);

	/* a feeder with an empty field is invalid input */
	const struct plan_feeder bad[] = { { ORIGIN, "" } };
	replicas[1].feeders = bad;
	assert_int_equal(plan_fleet(&in, &state, NOW, &out), -EINVAL);
}

/* Rule 4: a drained stage must read 0 viewers on every pass for drain_min before it goes. */
static void test_drain_min(void **unused)
{
	struct plan_replica_stage replicas[2];
	struct plan_input in;
	struct policy_state state;
	struct plan_output out;
	char got[256];

	(void)unused;
	drain_input(&in, replicas, 0, 0);
	policy_state_init(&state);
	assert_int_equal(plan_fleet(&in, &state, 100000, &out), 0);
	assert_int_equal(out.n_actions, 0);
	assert_int_equal(out.summary.drains_waiting, 1);
	assert_int_equal(plan_fleet(&in, &state, 129999, &out), 0);
	assert_int_equal(out.n_actions, 0);
	/* a viewer comes back at 130 s: the run starts again when it leaves */
	replicas[1].viewers = 1;
	assert_int_equal(plan_fleet(&in, &state, 130000, &out), 0);
	assert_int_equal(out.n_actions, 0);
	assert_int_equal(out.summary.drains_waiting, 0);
	replicas[1].viewers = 0;
	assert_int_equal(plan_fleet(&in, &state, 140000, &out), 0);
	assert_int_equal(out.n_actions, 0);
	/* unknown viewers break the run too */
	replicas[1].viewers_known = false;
	in.viewers_ok = false;
	assert_int_equal(plan_fleet(&in, &state, 150000, &out), 0);
	assert_int_equal(out.n_actions, 0);
	replicas[1].viewers_known = true;
	in.viewers_ok = true;
	assert_int_equal(plan_fleet(&in, &state, 160000, &out), 0);
	assert_int_equal(plan_fleet(&in, &state, 189999, &out), 0);
	assert_int_equal(out.n_actions, 0);
	assert_int_equal(plan_fleet(&in, &state, 190000, &out), 0);
	render_actions(&out, got, sizeof(got));
	assert_string_equal(got, "delete r2");

	/* a fresh start (empty state) begins the run afresh, whatever the draining mark's age */
	policy_state_init(&state);
	assert_int_equal(plan_fleet(&in, &state, 190000, &out), 0);
	assert_int_equal(out.n_actions, 0);

	/* drain_min is never longer than drain_timeout: drain_timeout 20 s, drain_min 30 s */
	in.policy.drain_timeout_ms = 20000;
	drain_input(&in, replicas, 1000000, 0);
	in.policy.drain_timeout_ms = 20000;
	policy_state_init(&state);
	assert_int_equal(plan_fleet(&in, &state, 1000000, &out), 0);
	assert_int_equal(out.n_actions, 0);
	assert_int_equal(plan_fleet(&in, &state, 1020000, &out), 0);
	render_actions(&out, got, sizeof(got));
	assert_string_equal(got, "delete r2");

	/* viewers that stay: only drain_timeout deletes */
	drain_input(&in, replicas, 0, 5);
	policy_state_init(&state);
	assert_int_equal(plan_fleet(&in, &state, 599999, &out), 0);
	assert_int_equal(out.n_actions, 0);
	assert_int_equal(plan_fleet(&in, &state, 600000, &out), 0);
	render_actions(&out, got, sizeof(got));
	assert_string_equal(got, "delete r2");
}

/* Rule 10: every viewer key gone at once is "viewers unknown" for a while, not 0 viewers. */
static void test_viewer_keys_vanished(void **unused)
{
	struct plan_replica_stage replicas[2];
	struct plan_input in;
	struct policy_state state;
	struct plan_output out;

	(void)unused;
	drain_input(&in, replicas, 0, 0);
	in.policy.scale_down_delay_ms = 60000;
	in.policy.drain_min_ms = 0;
	in.viewer_keys = 2;
	policy_state_init(&state);
	assert_int_equal(plan_fleet(&in, &state, 0, &out), 0);
	assert_false(out.summary.viewer_keys_vanished);
	/* every key gone: fail static, the draining stage is kept */
	in.viewer_keys = 0;
	in.origin_viewers = 0;
	replicas[0].viewers = 0;
	assert_int_equal(plan_fleet(&in, &state, 1000, &out), 0);
	assert_true(out.summary.viewer_keys_vanished);
	assert_true(out.summary.fail_static);
	assert_string_equal(out.summary.fail_reason, "viewer keys vanished");
	assert_int_equal(out.n_actions, 0);
	assert_int_equal(out.summary.desired_stages, 2);
	/* still none 59 s later: still unknown */
	assert_int_equal(plan_fleet(&in, &state, 60999, &out), 0);
	assert_true(out.summary.viewer_keys_vanished);
	/* a key is back: known again */
	in.viewer_keys = 1;
	assert_int_equal(plan_fleet(&in, &state, 61000, &out), 0);
	assert_false(out.summary.viewer_keys_vanished);
	assert_false(out.summary.fail_static);
	/* gone again, and for a whole scale_down_delay: then 0 is believed */
	in.viewer_keys = 0;
	assert_int_equal(plan_fleet(&in, &state, 62000, &out), 0);
	assert_true(out.summary.viewer_keys_vanished);
	assert_int_equal(plan_fleet(&in, &state, 122000, &out), 0);
	assert_false(out.summary.viewer_keys_vanished);
	assert_false(out.summary.fail_static);
	/* a Redis read that failed tells nothing: the spell is neither begun nor ended */
	in.viewer_keys = 3;
	assert_int_equal(plan_fleet(&in, &state, 123000, &out), 0);
	in.viewer_keys = 0;
	in.viewers_ok = false;
	assert_int_equal(plan_fleet(&in, &state, 124000, &out), 0);
	assert_false(out.summary.viewer_keys_vanished);
	in.viewers_ok = true;
	assert_int_equal(plan_fleet(&in, &state, 125000, &out), 0);
	assert_true(out.summary.viewer_keys_vanished);
	/* a caller that never reports keys never sees the rule */
	policy_state_init(&state);
	assert_int_equal(plan_fleet(&in, &state, 0, &out), 0);
	assert_false(out.summary.viewer_keys_vanished);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_summary_details),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_stabilization_across_passes),
		cmocka_unit_test(test_invalid_input),
		cmocka_unit_test(test_check_rejects),
		cmocka_unit_test(test_many_hosts),
		cmocka_unit_test(test_feeders_stopped_before_delete),
		cmocka_unit_test(test_drain_min),
		cmocka_unit_test(test_viewer_keys_vanished),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
