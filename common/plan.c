/*
 * plan.c — the planner; the rules are listed in plan.h.
 *
 * Everything works on small fixed arrays indexed like the input (at most 32 stages and 12
 * hosts), so the cost is a few thousand comparisons per fleet and nothing is allocated.
 * Actions are emitted in a fixed order: unmarks, marks, for each finished drain its stops then
 * its delete, starts, creates.
 */
#include "plan.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct stage_work {
	bool valid;        /* not a duplicate and not the origin's ARN */
	bool unmark;       /* reused for growth this pass */
	bool mark;         /* chosen for scale-in this pass */
	bool remove;       /* drain finished: stops + delete this pass */
	const char *remove_reason;
};

struct plan_ctx {
	const struct plan_input *in;
	struct plan_output *out;
	int64_t now_ms;
	struct stage_work stage[PLAN_MAX_REPLICA_STAGES];
	size_t unmark_order[PLAN_MAX_REPLICA_STAGES];   /* stage indices, in reuse order */
	size_t n_unmark;
	bool host_valid[PLAN_MAX_HOSTS];
	uint32_t budget[PLAN_MAX_HOSTS];     /* replications each host may still start */
	bool keys_vanished;                  /* rule 10 */
	int64_t drain_min_ms;                /* in effect */
	/* 0-viewer runs of draining stages after this pass (committed to the state at the end) */
	struct { const char *arn; int64_t since_ms; } zero[PLAN_MAX_REPLICA_STAGES];
	size_t n_zero;
	int64_t zero_since[PLAN_MAX_REPLICA_STAGES];   /* per stage index; -1 = not at 0 */
};

const char *plan_action_kind_name(enum plan_action_kind kind)
{
	switch (kind) {
	case PLAN_CREATE_STAGE:      return "create";
	case PLAN_START_REPLICATION: return "start";
	case PLAN_STOP_REPLICATION:  return "stop";
	case PLAN_MARK_DRAINING:     return "mark-draining";
	case PLAN_UNMARK_DRAINING:   return "unmark-draining";
	case PLAN_DELETE_STAGE:      return "delete";
	}
	return "unknown";
}

static bool empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

static bool same(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static int validate_input(const struct plan_input *in)
{
	size_t i, j;

	if (empty(in->fleet) || empty(in->origin_arn))
		return -EINVAL;
	if (policy_validate(&in->policy) < 0)
		return -EINVAL;
	if (in->n_replicas > PLAN_MAX_REPLICA_STAGES || in->n_hosts > PLAN_MAX_HOSTS)
		return -E2BIG;
	if ((in->n_replicas > 0 && in->replicas == NULL) ||
	    (in->n_hosts > 0 && in->hosts == NULL) ||
	    (in->n_manual > 0 && in->manual == NULL))
		return -EINVAL;
	for (i = 0; i < in->n_replicas; i++) {
		const struct plan_replica_stage *r = &in->replicas[i];

		if (empty(r->arn) || (r->n_feeders > 0 && r->feeders == NULL))
			return -EINVAL;
		for (j = 0; j < r->n_feeders; j++)
			if (empty(r->feeders[j].source_arn) || empty(r->feeders[j].participant_id))
				return -EINVAL;
	}
	for (i = 0; i < in->n_hosts; i++) {
		const struct plan_host *h = &in->hosts[i];

		if (empty(h->participant_id) || (h->n_replications > 0 && h->replications == NULL))
			return -EINVAL;
		for (j = 0; j < h->n_replications; j++) {
			if (empty(h->replications[j].destination_arn))
				return -EINVAL;
			if (h->replications[j].state != PLAN_REPLICATION_ACTIVE &&
			    h->replications[j].state != PLAN_REPLICATION_STOPPED)
				return -EINVAL;
		}
	}
	for (i = 0; i < in->n_manual; i++)
		if (empty(in->manual[i].source_arn) || empty(in->manual[i].destination_arn) ||
		    empty(in->manual[i].participant_id))
			return -EINVAL;
	return 0;
}

static bool viewers_all_known(const struct plan_input *in)
{
	size_t i;

	if (!in->viewers_ok || !in->origin_viewers_known)
		return false;
	for (i = 0; i < in->n_replicas; i++)
		if (!in->replicas[i].viewers_known)
			return false;
	return true;
}

/* The first failed read, or NULL: any of them puts the fleet in fail static. */
static const char *failed_read(const struct plan_input *in)
{
	size_t i;

	if (!in->stages_ok)
		return "stage list incomplete";
	if (!in->hosts_ok)
		return "participant list unavailable";
	if (!viewers_all_known(in))
		return "viewer counts unavailable";
	for (i = 0; i < in->n_hosts; i++)
		if (!in->hosts[i].replicas_ok)
			return "participant replicas unavailable";
	return NULL;
}

/* failed_read, plus what the fleet's memory says about the viewer keys (rule 10). */
static const char *failed_read_now(const struct plan_ctx *c)
{
	const char *why = failed_read(c->in);

	if (why == NULL && c->keys_vanished)
		return "viewer keys vanished";
	return why;
}

/*
 * Rule 10: the viewer keys' spell of absence. Updates *state (only called once planning can
 * no longer fail) and returns whether the fleet's viewers are to be taken as unknown.
 */
static bool viewer_keys_vanished(const struct plan_input *in, struct policy_state *state,
                                 int64_t now_ms)
{
	if (!in->viewers_ok)
		return state->keys_vanished;   /* nothing learnt: Redis did not answer in full */
	if (in->viewer_keys > 0) {
		state->saw_viewer_keys = true;
		state->keys_vanished = false;
		return false;
	}
	if (state->saw_viewer_keys) {
		state->saw_viewer_keys = false;
		state->keys_vanished = true;
		state->keys_vanished_ms = now_ms;
	}
	if (state->keys_vanished &&
	    now_ms - state->keys_vanished_ms >= in->policy.scale_down_delay_ms)
		state->keys_vanished = false;
	return state->keys_vanished;
}

static bool is_manual(const struct plan_input *in, const char *source, const char *dest,
                      const char *participant)
{
	size_t i;

	for (i = 0; i < in->n_manual; i++)
		if (same(in->manual[i].source_arn, source) &&
		    same(in->manual[i].destination_arn, dest) &&
		    same(in->manual[i].participant_id, participant))
			return true;
	return false;
}

static bool has_manual_into(const struct plan_input *in, const char *dest)
{
	size_t i;

	for (i = 0; i < in->n_manual; i++)
		if (same(in->manual[i].destination_arn, dest))
			return true;
	return false;
}

static bool host_active_into(const struct plan_host *h, const char *dest)
{
	size_t i;

	for (i = 0; i < h->n_replications; i++)
		if (h->replications[i].state == PLAN_REPLICATION_ACTIVE &&
		    same(h->replications[i].destination_arn, dest))
			return true;
	return false;
}

static bool host_stopped_into(const struct plan_host *h, const char *dest)
{
	size_t i;

	for (i = 0; i < h->n_replications; i++)
		if (h->replications[i].state == PLAN_REPLICATION_STOPPED &&
		    same(h->replications[i].destination_arn, dest))
			return true;
	return false;
}

/*
 * Replications the host may still start: 5 minus every ACTIVE one it has, to any
 * destination, minus the manual ones IVS did not list (e.g. from another source).
 */
static uint32_t host_budget(const struct plan_input *in, const struct plan_host *h)
{
	uint32_t active = 0;
	size_t i;

	for (i = 0; i < h->n_replications; i++)
		if (h->replications[i].state == PLAN_REPLICATION_ACTIVE)
			active++;
	for (i = 0; i < in->n_manual; i++) {
		const struct plan_manual_replication *m = &in->manual[i];

		if (!same(m->participant_id, h->participant_id))
			continue;
		if (same(m->source_arn, in->origin_arn) && host_active_into(h, m->destination_arn))
			continue;   /* already counted from the listing */
		active++;
	}
	return active >= POLICY_MAX_REPLICAS_PER_HOST ? 0 : POLICY_MAX_REPLICAS_PER_HOST - active;
}

static void mark_valid_entries(struct plan_ctx *c)
{
	const struct plan_input *in = c->in;
	size_t i, j;

	for (i = 0; i < in->n_replicas; i++) {
		bool ok = !same(in->replicas[i].arn, in->origin_arn);

		for (j = 0; ok && j < i; j++)
			if (c->stage[j].valid && same(in->replicas[j].arn, in->replicas[i].arn))
				ok = false;
		c->stage[i].valid = ok;
		if (!ok)
			c->out->summary.ignored_stages++;
	}
	for (i = 0; i < in->n_hosts; i++) {
		bool ok = true;

		for (j = 0; ok && j < i; j++)
			if (c->host_valid[j] &&
			    same(in->hosts[j].participant_id, in->hosts[i].participant_id))
				ok = false;
		c->host_valid[i] = ok;
		if (ok) {
			c->out->summary.hosts++;
			c->budget[i] = host_budget(in, &in->hosts[i]);
		}
	}
}

static int emit(struct plan_ctx *c, enum plan_action_kind kind, const char *stage_arn,
                const char *participant_id, const char *reason)
{
	struct plan_action *a;

	if (c->out->n_actions >= PLAN_MAX_ACTIONS) {
		c->out->summary.truncated = true;
		return -ENOBUFS;
	}
	a = &c->out->actions[c->out->n_actions++];
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	a->stage_arn = stage_arn;
	a->participant_id = participant_id;
	a->reason = reason;
	if (kind == PLAN_START_REPLICATION || kind == PLAN_STOP_REPLICATION)
		a->source_arn = c->in->origin_arn;
	a->after_stops = kind == PLAN_DELETE_STAGE;
	return 0;
}

static uint64_t known_viewers(const struct plan_replica_stage *s)
{
	return s->viewers_known ? s->viewers : 0;
}

/* Reuse order for draining stages: most viewers first, then ARN order. */
static bool unmark_before(const struct plan_replica_stage *a, const struct plan_replica_stage *b)
{
	if (known_viewers(a) != known_viewers(b))
		return known_viewers(a) > known_viewers(b);
	return strcmp(a->arn, b->arn) < 0;
}

/* Drain order: fewest viewers, then newest, then ARN order. */
static bool drain_before(const struct plan_replica_stage *a, const struct plan_replica_stage *b)
{
	if (known_viewers(a) != known_viewers(b))
		return known_viewers(a) < known_viewers(b);
	if (a->created_ms != b->created_ms)
		return a->created_ms > b->created_ms;
	return strcmp(a->arn, b->arn) < 0;
}

/* Unmark up to `need` draining stages; returns how many were reused. */
static uint32_t choose_unmarks(struct plan_ctx *c, uint32_t need)
{
	const struct plan_input *in = c->in;
	uint32_t done = 0;

	while (done < need) {
		size_t i, best = SIZE_MAX;

		for (i = 0; i < in->n_replicas; i++) {
			if (!c->stage[i].valid || !in->replicas[i].draining || c->stage[i].unmark ||
			    in->replicas[i].operator_drain)
				continue;
			if (best == SIZE_MAX || unmark_before(&in->replicas[i], &in->replicas[best]))
				best = i;
		}
		if (best == SIZE_MAX)
			break;
		c->stage[best].unmark = true;
		c->unmark_order[c->n_unmark++] = best;
		done++;
	}
	return done;
}

static void choose_mark(struct plan_ctx *c)
{
	const struct plan_input *in = c->in;
	size_t i, best = SIZE_MAX;

	for (i = 0; i < in->n_replicas; i++) {
		if (!c->stage[i].valid || in->replicas[i].draining)
			continue;
		if (best == SIZE_MAX || drain_before(&in->replicas[i], &in->replicas[best]))
			best = i;
	}
	if (best != SIZE_MAX)
		c->stage[best].mark = true;
}

/*
 * Rule 4's memory: since when each draining stage has read 0 viewers, pass after pass. A run
 * breaks on any other reading (a count, unknown, vanished keys) and on leaving the drain.
 */
static void track_zero_runs(struct plan_ctx *c, const struct policy_state *state)
{
	const struct plan_input *in = c->in;
	size_t i, k;

	for (i = 0; i < in->n_replicas; i++) {
		const struct plan_replica_stage *s = &in->replicas[i];
		int64_t since = c->now_ms;

		c->zero_since[i] = -1;
		if (!c->stage[i].valid || !s->draining || !s->viewers_known || s->viewers != 0 ||
		    c->keys_vanished || strlen(s->arn) > POLICY_ARN_MAX)
			continue;
		for (k = 0; k < state->n_zero && k < POLICY_ZERO_SLOTS; k++)
			if (state->zero[k].arn_hash == str_hash64(s->arn) &&
			    state->zero[k].since_ms <= c->now_ms)
				since = state->zero[k].since_ms;
		c->zero_since[i] = since;
		c->zero[c->n_zero].arn = s->arn;
		c->zero[c->n_zero++].since_ms = since;
	}
}

static void commit_zero_runs(const struct plan_ctx *c, struct policy_state *state)
{
	size_t k;

	memset(state->zero, 0, sizeof(state->zero));
	state->n_zero = 0;
	for (k = 0; k < c->n_zero && k < POLICY_ZERO_SLOTS; k++) {
		state->zero[k].arn_hash = str_hash64(c->zero[k].arn);
		state->zero[k].since_ms = c->zero[k].since_ms;
		state->n_zero++;
	}
}

static void choose_removals(struct plan_ctx *c)
{
	const struct plan_input *in = c->in;
	size_t i;

	for (i = 0; i < in->n_replicas; i++) {
		const struct plan_replica_stage *s = &in->replicas[i];
		struct stage_work *w = &c->stage[i];
		bool zero = c->zero_since[i] >= 0;

		if (!w->valid || !s->draining || w->unmark)
			continue;
		if (zero && c->now_ms - c->zero_since[i] >= c->drain_min_ms) {
			w->remove_reason = "drain finished: no viewers";
		} else if (c->now_ms - s->draining_since_ms >= in->policy.drain_timeout_ms) {
			w->remove_reason = "drain timeout";
		} else {
			if (zero)
				c->out->summary.drains_waiting++;
			continue;
		}
		if (s->feeders_unknown)
			continue;       /* what feeds it is not known: no delete this pass */
		if (has_manual_into(in, s->arn)) {
			c->out->summary.deletes_held++;
			continue;
		}
		w->remove = true;
	}
}

static bool serving_after(const struct plan_ctx *c, size_t i)
{
	const struct stage_work *w = &c->stage[i];

	return w->valid && !w->remove &&
	       ((!c->in->replicas[i].draining && !w->mark) || w->unmark);
}

static bool live_after(const struct plan_ctx *c, size_t i)
{
	return c->stage[i].valid && !c->stage[i].remove;
}

/* A host's ACTIVE replication into dest already gets its STOP from the host listing. */
static bool host_stop_covers(const struct plan_ctx *c, const struct plan_feeder *f,
                             const char *dest)
{
	const struct plan_input *in = c->in;
	size_t h;

	if (!same(f->source_arn, in->origin_arn))
		return false;
	for (h = 0; h < in->n_hosts; h++)
		if (c->host_valid[h] && same(in->hosts[h].participant_id, f->participant_id) &&
		    host_active_into(&in->hosts[h], dest))
			return true;
	return false;
}

/* The feeder is listed twice (same source and participant): only its first entry counts. */
static bool feeder_repeated(const struct plan_replica_stage *s, size_t k)
{
	size_t j;

	for (j = 0; j < k; j++)
		if (same(s->feeders[j].source_arn, s->feeders[k].source_arn) &&
		    same(s->feeders[j].participant_id, s->feeders[k].participant_id))
			return true;
	return false;
}

static bool feeder_needs_stop(const struct plan_ctx *c, const struct plan_replica_stage *s,
                              size_t k)
{
	return !feeder_repeated(s, k) && !host_stop_covers(c, &s->feeders[k], s->arn);
}

/*
 * Stops for every host's ACTIVE replication into the stage and for every other feeder found
 * in it, then its delete — or nothing.
 */
static void emit_removal(struct plan_ctx *c, size_t stage)
{
	const struct plan_input *in = c->in;
	const struct plan_replica_stage *st = &in->replicas[stage];
	const char *arn = st->arn;
	size_t h, r, k, stops = 0;

	for (h = 0; h < in->n_hosts; h++) {
		if (!c->host_valid[h])
			continue;
		for (r = 0; r < in->hosts[h].n_replications; r++)
			if (in->hosts[h].replications[r].state == PLAN_REPLICATION_ACTIVE &&
			    same(in->hosts[h].replications[r].destination_arn, arn))
				stops++;
	}
	for (k = 0; k < st->n_feeders; k++)
		if (feeder_needs_stop(c, st, k))
			stops++;
	if (c->out->n_actions + stops + 1 > PLAN_MAX_ACTIONS) {
		c->out->summary.truncated = true;
		c->stage[stage].remove = false;   /* still live: keep feeding it */
		return;
	}
	for (h = 0; h < in->n_hosts; h++) {
		const struct plan_host *host = &in->hosts[h];

		if (!c->host_valid[h])
			continue;
		for (r = 0; r < host->n_replications; r++)
			if (host->replications[r].state == PLAN_REPLICATION_ACTIVE &&
			    same(host->replications[r].destination_arn, arn))
				(void)emit(c, PLAN_STOP_REPLICATION, arn, host->participant_id,
				           c->stage[stage].remove_reason);
	}
	for (k = 0; k < st->n_feeders; k++) {
		if (!feeder_needs_stop(c, st, k))
			continue;
		if (emit(c, PLAN_STOP_REPLICATION, arn, st->feeders[k].participant_id,
		         c->stage[stage].remove_reason) == 0)
			c->out->actions[c->out->n_actions - 1].source_arn = st->feeders[k].source_arn;
	}
	(void)emit(c, PLAN_DELETE_STAGE, arn, NULL, c->stage[stage].remove_reason);
}

static void feed_stage(struct plan_ctx *c, size_t stage)
{
	const struct plan_input *in = c->in;
	const char *arn = in->replicas[stage].arn;
	struct plan_summary *sum = &c->out->summary;
	size_t h;

	for (h = 0; h < in->n_hosts; h++) {
		const struct plan_host *host = &in->hosts[h];

		if (!c->host_valid[h] || !host->replicas_ok)
			continue;
		sum->expected_replications++;
		if (host_active_into(host, arn)) {
			sum->active_replications++;
			continue;
		}
		if (c->budget[h] == 0) {
			sum->capped = true;
			continue;
		}
		if (emit(c, PLAN_START_REPLICATION, arn, host->participant_id,
		         host_stopped_into(host, arn) ? "replication stopped" :
		                                        "replication missing") == 0)
			c->budget[h]--;
	}
}

static void emit_create(struct plan_ctx *c)
{
	const struct plan_input *in = c->in;
	struct plan_action *a;
	size_t h;

	if (emit(c, PLAN_CREATE_STAGE, NULL, NULL, "scale up") < 0)
		return;
	a = &c->out->actions[c->out->n_actions - 1];
	for (h = 0; h < in->n_hosts; h++) {
		if (!c->host_valid[h] || !in->hosts[h].replicas_ok)
			continue;
		if (c->budget[h] == 0) {
			c->out->summary.capped = true;
			continue;
		}
		c->budget[h]--;
		a->hosts[a->n_hosts++] = in->hosts[h].participant_id;
	}
}

static void fill_open_stages(struct plan_ctx *c)
{
	const struct plan_input *in = c->in;
	struct plan_output *out = c->out;
	size_t i;

	out->open[out->n_open].arn = in->origin_arn;
	out->open[out->n_open++].viewers = in->origin_viewers_known ? in->origin_viewers : 0;
	for (i = 0; i < in->n_replicas; i++) {
		if (!serving_after(c, i))
			continue;
		out->open[out->n_open].arn = in->replicas[i].arn;
		out->open[out->n_open++].viewers = known_viewers(&in->replicas[i]);
	}
}

static int decide_size(struct plan_ctx *c, struct policy_state *state)
{
	const struct plan_input *in = c->in;
	struct policy_input pin = { 0 };
	size_t i;

	pin.serving_stages = 1;
	pin.viewers_known = viewers_all_known(in) && !c->keys_vanished;
	if (in->origin_viewers_known)
		pin.viewers += in->origin_viewers;
	for (i = 0; i < in->n_replicas; i++) {
		if (!c->stage[i].valid) {
			continue;
		} else if (in->replicas[i].draining) {
			c->out->summary.draining_stages++;
		} else {
			pin.serving_stages++;
			pin.viewers += known_viewers(&in->replicas[i]);
		}
	}
	if (in->override == PLAN_OVERRIDE_VALID) {
		pin.has_override = true;
		pin.override_stages = in->override_stages;
	}
	c->out->summary.override_invalid = in->override == PLAN_OVERRIDE_INVALID;
	c->out->summary.serving_stages = pin.serving_stages;
	return policy_decide(&in->policy, &pin, state, c->now_ms, &c->out->summary.decision);
}

int plan_fleet(const struct plan_input *in, struct policy_state *state, int64_t now_ms,
               struct plan_output *out)
{
	struct plan_ctx c;
	struct plan_summary *sum;
	uint32_t serving, desired, creates = 0;
	size_t i;
	int r;

	if (out == NULL)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (in == NULL || state == NULL)
		return -EINVAL;
	r = validate_input(in);
	if (r < 0)
		return r;

	memset(&c, 0, sizeof(c));
	c.in = in;
	c.out = out;
	c.now_ms = now_ms;
	sum = &out->summary;

	mark_valid_entries(&c);
	if (in->stages_ok && !in->origin_seen) {
		/* Nothing to feed from and nothing to size against: wait for the operator. */
		sum->note = "origin stage missing";
		return 0;
	}
	c.keys_vanished = viewer_keys_vanished(in, state, now_ms);
	c.drain_min_ms = policy_drain_min_ms(&in->policy);
	sum->viewer_keys_vanished = c.keys_vanished;
	sum->fail_reason = failed_read_now(&c);
	sum->fail_static = sum->fail_reason != NULL;

	r = decide_size(&c, state);
	if (r < 0) {
		memset(out, 0, sizeof(*out));
		return r;
	}
	serving = sum->serving_stages;
	desired = sum->decision.desired_stages;
	sum->desired_stages = desired;
	sum->capped = sum->decision.capped;

	if (desired > serving) {
		creates = desired - serving - choose_unmarks(&c, desired - serving);
		if (in->max_creates > 0 && creates > in->max_creates)
			creates = in->max_creates;
		if (!in->stages_ok)
			creates = 0;
	} else if (desired < serving && !sum->fail_static) {
		choose_mark(&c);    /* the policy never lowers by more than one per pass */
	}
	track_zero_runs(&c, state);
	commit_zero_runs(&c, state);
	if (!sum->fail_static)
		choose_removals(&c);

	for (i = 0; i < c.n_unmark; i++)
		(void)emit(&c, PLAN_UNMARK_DRAINING, in->replicas[c.unmark_order[i]].arn, NULL,
		           "scale up: reuse draining stage");
	for (i = 0; i < in->n_replicas; i++)
		if (c.stage[i].mark)
			(void)emit(&c, PLAN_MARK_DRAINING, in->replicas[i].arn, NULL,
			           "scale down: fewest viewers");
	for (i = 0; i < in->n_replicas; i++)
		if (c.stage[i].remove)
			emit_removal(&c, i);
	/* Serving stages are fed before draining ones when a host runs out of replications. */
	for (i = 0; i < in->n_replicas; i++)
		if (serving_after(&c, i))
			feed_stage(&c, i);
	for (i = 0; i < in->n_replicas; i++)
		if (live_after(&c, i) && !serving_after(&c, i))
			feed_stage(&c, i);
	for (i = 0; i < creates; i++)
		emit_create(&c);
	fill_open_stages(&c);

	r = plan_check(in, out);
	if (r < 0) {
		/* Cannot happen by construction; refuse rather than act on a broken plan. */
		out->n_actions = 0;
		return r;
	}
	return 0;
}

static bool is_owned_replica(const struct plan_input *in, const char *arn)
{
	size_t i;

	if (arn == NULL || same(arn, in->origin_arn))
		return false;
	for (i = 0; i < in->n_replicas; i++)
		if (same(in->replicas[i].arn, arn))
			return true;
	return false;
}

static bool is_operator_drained(const struct plan_input *in, const char *arn)
{
	size_t i;

	for (i = 0; i < in->n_replicas; i++)
		if (same(in->replicas[i].arn, arn) && in->replicas[i].draining &&
		    in->replicas[i].operator_drain)
			return true;
	return false;
}

static bool is_feeder(const struct plan_input *in, const char *dest, const char *source,
                      const char *participant)
{
	size_t i, k;

	for (i = 0; i < in->n_replicas; i++) {
		if (!same(in->replicas[i].arn, dest))
			continue;
		for (k = 0; k < in->replicas[i].n_feeders; k++)
			if (same(in->replicas[i].feeders[k].source_arn, source) &&
			    same(in->replicas[i].feeders[k].participant_id, participant))
				return true;
	}
	return false;
}

static bool is_host(const struct plan_input *in, const char *participant)
{
	size_t i;

	for (i = 0; i < in->n_hosts; i++)
		if (same(in->hosts[i].participant_id, participant))
			return true;
	return false;
}

static int check_action(const struct plan_input *in, const struct plan_action *a, bool fail)
{
	size_t i;

	if (a->kind == PLAN_CREATE_STAGE) {
		if (a->stage_arn != NULL || a->n_hosts > PLAN_MAX_HOSTS)
			return -EPERM;
		for (i = 0; i < a->n_hosts; i++)
			if (!is_host(in, a->hosts[i]))
				return -EPERM;
		return 0;
	}
	if (!is_owned_replica(in, a->stage_arn))
		return -EPERM;
	if (fail && (a->kind == PLAN_MARK_DRAINING || a->kind == PLAN_STOP_REPLICATION ||
	             a->kind == PLAN_DELETE_STAGE))
		return -EPERM;
	switch (a->kind) {
	case PLAN_START_REPLICATION:
	case PLAN_STOP_REPLICATION:
		if ((!same(a->source_arn, in->origin_arn) || !is_host(in, a->participant_id)) &&
		    (a->kind != PLAN_STOP_REPLICATION ||
		     !is_feeder(in, a->stage_arn, a->source_arn, a->participant_id)))
			return -EPERM;
		if (a->kind == PLAN_STOP_REPLICATION &&
		    is_manual(in, a->source_arn, a->stage_arn, a->participant_id))
			return -EPERM;
		return 0;
	case PLAN_DELETE_STAGE:
		return a->after_stops ? 0 : -EPERM;
	case PLAN_MARK_DRAINING:
		return 0;
	case PLAN_UNMARK_DRAINING:
		return is_operator_drained(in, a->stage_arn) ? -EPERM : 0;
	case PLAN_CREATE_STAGE:
		break;
	}
	return -EPERM;
}

int plan_check(const struct plan_input *in, const struct plan_output *out)
{
	bool fail;
	size_t i;

	if (in == NULL || out == NULL || empty(in->origin_arn) || out->n_actions > PLAN_MAX_ACTIONS)
		return -EPERM;
	if (in->stages_ok && !in->origin_seen && out->n_actions > 0)
		return -EPERM;
	fail = failed_read(in) != NULL;
	for (i = 0; i < out->n_actions; i++)
		if (check_action(in, &out->actions[i], fail) < 0)
			return -EPERM;
	return 0;
}
