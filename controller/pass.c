/*
 * pass.c — the one owner of a reconcile pass: begin, step, end (see pass.h for the shape).
 *
 * Memory: each pass builds a fresh observation (struct pass) and, once the pass is recorded,
 * it replaces the previous one, which the admin views read. Strings handed to the planner point
 * into that observation, so a plan is valid exactly as long as its pass.
 */
#include "pass.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "reconcile_internal.h"

const struct aws_error pass_not_queued = {
	.kind = AWS_ERR_LOCAL,
	.message = "could not queue the request",
};

static void pass_step(struct reconciler *r, struct pass *p, size_t fi);
static void pass_end_if_done(struct reconciler *r, struct pass *p);

/* ---- lifetime ---------------------------------------------------------------------------- */

static void obs_fleet_clear(struct obs_fleet *f)
{
	for (size_t h = 0; h < f->n_hosts; h++) {
		free(f->hosts[h].replications);
		free(f->hosts[h].dest);
	}
	free(f->hosts);
	for (size_t i = 0; i < f->n_replicas; i++)
		free(f->replicas[i].feeders);
	free(f->replicas);
	free(f->actions);
	free(f->open);
	free(f->created);
	free(f->legacy);
	memset(f, 0, sizeof(*f));
}

void pass_free(struct pass *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n_fleets; i++)
		obs_fleet_clear(&p->fleets[i]);
	free(p->fleets);
	free(p->stops_done);
	free(p->foreign);
	free(p->listed);
	free(p);
}

void pass_begin(struct reconciler *r)
{
	struct pass *p = calloc(1, sizeof(*p));

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
		/* Held until ListStages has answered and the fleet's own reads are sent. */
		p->fleets[i].pending = 1;
	}
	p->listing = true;
	r->current = p;
	r->wake_pending = false;
	r->last_pass_start_us = p->started_us;
	log_debug("reconcile pass %" PRIu64 " begins", p->id);
	if (observe_pass(r, p) < 0) {
		/* Out of memory before anything was sent: drop the pass; the next resync retries. */
		r->current = NULL;
		pass_free(p);
	}
	/* Otherwise p may already be gone (ListStages not queued, every fleet done at once). */
}

/* ---- callbacks owed ---------------------------------------------------------------------- */

struct op *pass_op_new(struct reconciler *r, struct pass *p, size_t fleet)
{
	struct op *op = calloc(1, sizeof(*op));
	if (op == NULL)
		return NULL;
	op->r = r;
	op->pass = p;
	op->fleet = fleet;
	if (fleet < p->n_fleets)
		p->fleets[fleet].pending++;
	r->in_flight++;
	return op;
}

static void pass_release(struct reconciler *r, struct pass *p, size_t fi)
{
	if (--p->fleets[fi].pending == 0)
		pass_step(r, p, fi);
}

/*
 * ListStages answered (observe.c filled the pass): each fleet's own reads go out, then its hold
 * is released and it goes on by itself. The pass cannot end before the last fleet is released.
 */
static void pass_listed(struct reconciler *r, struct pass *p)
{
	for (size_t fi = 0; fi < p->n_fleets; fi++) {
		observe_fleet(r, p, fi);
		pass_release(r, p, fi);
	}
	p->listing = false;
	pass_end_if_done(r, p);
}

/* Every completion ends here: one callback fewer; maybe the next phase, or the pass's end. */
void pass_op_done(struct op *op)
{
	struct reconciler *r = op->r;
	struct pass *p = op->pass;
	size_t fleet = op->fleet;

	free(op);
	r->in_flight--;
	if (fleet < p->n_fleets)
		pass_release(r, p, fleet);
	else
		pass_listed(r, p);
	rec_check_idle(r);
}

/* ---- step -------------------------------------------------------------------------------- */

/*
 * Move one fleet through its phases while nothing of the current one is pending. The phase
 * runs under a hold, so a completion that happens inside it (a request that could not be queued
 * answers at once) cannot re-enter and start the next phase early: stops must have answered
 * before deletes are sent.
 */
static void pass_step(struct reconciler *r, struct pass *p, size_t fi)
{
	struct obs_fleet *f = &p->fleets[fi];

	while (f->pending == 0 && f->phase != FLEET_DONE) {
		enum fleet_phase finished = f->phase++;
		if (finished == FLEET_DELETING) {
			p->fleets_done++;
			break;
		}
		f->pending++;
		if (finished == FLEET_OBSERVING && !r->stopping)
			act_fleet(r, p, fi);
		else if (finished == FLEET_ACTING && !r->stopping)
			act_fleet_deletes(r, p, fi);
		f->pending--;
	}
	pass_end_if_done(r, p);
}

/* ---- end --------------------------------------------------------------------------------- */

static void pass_report(struct reconciler *r)
{
	r->hook_pending = false;
	if (r->hooks.pass_done != NULL)
		r->hooks.pass_done(r->hooks.ud, r->hook_ok);
}

/*
 * The pass_done hook waits for the record phase's Redis writes, so that --once exits (and a stop
 * finishes) only after Redis holds what the pass recorded. Other writes only matter for the
 * next pass, which re-reads everything.
 */
void pass_record_written(struct reconciler *r)
{
	if (r->record_writes == 0 && r->hook_pending)
		pass_report(r);
}

/*
 * Stopping with the observation complete but nothing decided: there is nothing to act on or
 * record, so the pass ends here and the owner hears of it (it may be waiting to exit).
 */
static void pass_abandon(struct reconciler *r, struct pass *p)
{
	if (r->current == p)
		r->current = NULL;
	pass_free(p);
	if (r->hooks.pass_done != NULL)
		r->hooks.pass_done(r->hooks.ud, false);
	rec_check_idle(r);
}

/* Recorded: the pass becomes what the admin views show, and the next one may begin. */
static void pass_end(struct reconciler *r, struct pass *p)
{
	p->finished_ms = rec_wall_ms();
	p->duration_us = rec_mono_us() - p->started_us;
	p->ok = p->reads_failed == 0 && p->actions_failed == 0;
	r->passes++;
	if (p->ok)
		r->last_success_ms = p->finished_ms;
	record_pass(r, p);
	for (size_t i = 0; i < r->n_fleets; i++)
		r->fleets[i].last = NULL;
	for (size_t fi = 0; fi < p->n_fleets; fi++) {
		struct fleet_state *fs = rec_fleet_state(r, p->fleets[fi].cfg->name);
		if (fs != NULL)
			fs->last = &p->fleets[fi];
	}
	pass_free(r->last);
	r->last = p;
	r->current = NULL;
	r->hook_ok = p->ok;
	if (r->record_writes == 0)
		pass_report(r);
	else
		r->hook_pending = true;
	if (r->wake_pending && !r->stopping)
		sd_event_source_set_enabled(r->defer, SD_EVENT_ONESHOT);
	rec_check_idle(r);
}

/* Once every fleet is done and ListStages has answered. May free p. */
static void pass_end_if_done(struct reconciler *r, struct pass *p)
{
	bool planned = false;

	if (p->ended || p->listing || p->fleets_done != p->n_fleets)
		return;
	p->ended = true;
	for (size_t i = 0; i < p->n_fleets; i++)
		planned = planned || p->fleets[i].planned;
	/* Stopped before anything was decided: nothing to record. */
	if (r->stopping && !planned) {
		pass_abandon(r, p);
		return;
	}
	pass_end(r, p);
}
