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
static void fleet_done(struct reconciler *r, struct pass *p, size_t fi);
static void follow_up_arm(struct reconciler *r, uint64_t at);
#define FOLLOW_UP_STALL_US 500000u               /* see "follow-ups" below */

/* ---- lifetime ---------------------------------------------------------------------------- */

static void obs_fleet_clear(struct obs_fleet *f)
{
	for (size_t h = 0; h < f->n_hosts; h++) {
		free(f->hosts[h].user_id);
		free(f->hosts[h].replications);
		free(f->hosts[h].dest);
	}
	free(f->hosts);
	free(f->notes);
	for (size_t i = 0; i < f->n_replicas; i++) {
		free(f->replicas[i].feeders);
		free((char *)f->replicas[i].arn);         /* the block holds the name too */
	}
	free(f->replicas);
	free(f->actions);
	free(f->open);
	free(f->created);
	for (size_t i = 0; i < f->n_legacy; i++)
		free((char *)f->legacy[i].arn);         /* the block holds the name too */
	free(f->legacy);
	memset(f, 0, sizeof(*f));
}

void pass_free(struct pass *p)
{
	if (p == NULL)
		return;
	/* memory only: the owners (r->running, r->last, fs->last) let go first */
	for (size_t i = 0; i < p->n_fleets; i++)
		obs_fleet_clear(&p->fleets[i]);
	free(p->fleets);
	free(p->stops_done);
	free(p->foreign);
	free(p->listed);
	free(p->own_fleets);
	free(p->obs_queue);
	free(p);
}

struct obs_notes *obs_notes_of(struct obs_fleet *f)
{
	if (f->notes == NULL)
		f->notes = calloc(1, sizeof(*f->notes));
	return f->notes;
}

void pass_unref(struct pass *p)
{
	if (p != NULL && --p->refs == 0)
		pass_free(p);
}

static void running_remove(struct reconciler *r, struct pass *p)
{
	struct pass **pp;

	for (pp = &r->running; *pp != NULL; pp = &(*pp)->next_running)
		if (*pp == p) {
			*pp = p->next_running;
			p->next_running = NULL;
			break;
		}
	if (r->resync == p)
		r->resync = NULL;
}

bool pass_begin(struct reconciler *r, enum pass_kind kind, const bool *want)
{
	struct pass *p;
	size_t n = 0, k = 0;

	for (size_t i = 0; i < r->n_fleets; i++)
		n += want[i] && r->fleets[i].busy == NULL;
	if (n == 0 || (p = calloc(1, sizeof(*p))) == NULL)
		return false;
	p->fleets = calloc(n, sizeof(*p->fleets));
	if (p->fleets == NULL) {
		free(p);
		return false;
	}
	p->kind = kind;
	p->n_fleets = n;
	p->fleets_observing = n;
	p->answered_us = rec_mono_us();
	p->id = ++r->next_pass_id;
	p->started_ms = rec_wall_ms();
	p->started_us = rec_mono_us();
	for (size_t i = 0; i < r->n_fleets; i++) {
		if (!want[i] || r->fleets[i].busy != NULL)
			continue;
		struct obs_fleet *f = &p->fleets[k++];
		f->cfg = &r->config->fleets[i];
		f->index = i;
		f->pass = p;
		f->origin.arn = r->config->fleets[i].origin_stage_arn;
		f->origin.name = "";
		/* Held until ListStages has answered and the fleet's own reads are sent. */
		f->pending = 1;
		r->fleets[i].busy = p;
		/* This pass is the follow-up a scale-up cut by the step was owed (pass_follow_up). */
		if (r->fleets[i].follow_up) {
			r->fleets[i].follow_up = false;
			r->n_follow_up--;
		}
	}
	p->listing = true;
	p->refs = 1;                            /* running */
	p->next_running = r->running;
	r->running = p;
	if (kind == PASS_RESYNC)
		r->resync = p;
	else
		r->last_pass_start_us = p->started_us;
	log_debug("reconcile pass %" PRIu64 " begins (%s, %zu fleets)", p->id,
		  kind == PASS_RESYNC ? "resync" : "targeted", n);
	if (observe_pass(r, p) < 0) {
		/* Out of memory before anything was sent: drop the pass; a later wake retries. */
		for (size_t i = 0; i < p->n_fleets; i++)
			r->fleets[p->fleets[i].index].busy = NULL;
		running_remove(r, p);
		pass_unref(p);
		return false;
	}
	/* Otherwise p may already be gone (ListStages not queued, every fleet done at once). */
	return true;
}

struct aws_call_class pass_call_class(const struct pass *p, size_t fi)
{
	const struct obs_fleet *f = &p->fleets[fi];

	return (struct aws_call_class){
		.priority = p->kind == PASS_RESYNC && !f->urgent ? AWS_PRIORITY_RESYNC
								  : AWS_PRIORITY_URGENT,
		.fleet = (uint32_t)(f->index + 1),
	};
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
	if (p->kind == PASS_RESYNC) {
		/* the walk goes on from its timer (reconcile.c); the pass is open till it ends */
		p->listing = false;
		if (r->stopping)
			pass_walk_abandon(r, p);
		else
			rec_walk_schedule(r, p);
		return;
	}
	for (size_t fi = 0; fi < p->n_fleets; fi++) {
		p->fleets[fi].reached = true;
		observe_fleet(r, p, fi);
		pass_release(r, p, fi);
	}
	p->listing = false;
	pass_end_if_done(r, p);
}

/* The fleet leaves p before any read of its own: done, not recorded, free for another pass. */
static void pass_skip(struct reconciler *r, struct pass *p, size_t fi)
{
	struct obs_fleet *f = &p->fleets[fi];

	f->reached = true;
	f->skipped = true;
	f->phase = FLEET_DONE;
	p->fleets_observing--;
	f->pending--;                           /* the hold taken at pass_begin */
	p->fleets_done++;
	r->fleets[f->index].busy = NULL;
}

bool pass_walk_step(struct reconciler *r, struct pass *p)
{
	while (p->walk_next < p->n_fleets) {
		size_t fi = p->walk_next++;
		struct obs_fleet *f = &p->fleets[fi];
		struct fleet_state *fs = &r->fleets[f->index];
		if (f->reached)
			continue;                   /* taken over by a targeted pass */
		/*
		 * The listing must be younger than the fleet's last CreateStage/DeleteStage answer,
		 * or a stage created since would be missed (and created twice). Such a fleet was
		 * just handled by a targeted pass, with a listing of its own: skip it this round.
		 */
		if (r->stopping || fs->stages_changed_us >= p->started_us) {
			pass_skip(r, p, fi);
			continue;
		}
		bool more = p->walk_next < p->n_fleets;
		f->reached = true;
		observe_fleet(r, p, fi);
		pass_release(r, p, fi);         /* may end the pass when it was the last fleet */
		return more;
	}
	pass_end_if_done(r, p);
	return false;
}

void pass_walk_abandon(struct reconciler *r, struct pass *p)
{
	for (size_t fi = 0; fi < p->n_fleets; fi++)
		if (!p->fleets[fi].reached)
			pass_skip(r, p, fi);
	p->walk_next = p->n_fleets;
	if (!p->listing)
		pass_end_if_done(r, p);
}

bool pass_fleet_reached(const struct pass *p, size_t fleet)
{
	for (size_t fi = 0; fi < p->n_fleets; fi++)
		if (p->fleets[fi].index == fleet)
			return p->fleets[fi].reached;
	return true;
}

bool pass_take_over(struct reconciler *r, struct pass *p, size_t fleet)
{
	for (size_t fi = 0; fi < p->n_fleets; fi++) {
		struct obs_fleet *f = &p->fleets[fi];
		if (f->index != fleet || f->phase == FLEET_DONE)
			continue;
		if (!f->reached) {
			pass_skip(r, p, fi);
			pass_end_if_done(r, p);     /* may free p */
			return true;
		}
		if (!f->urgent) {
			f->urgent = true;
			aws_client_promote(r->aws, (uint32_t)(fleet + 1));
		}
		return false;
	}
	return false;
}

/* Every completion ends here: one callback fewer; maybe the next phase, or the pass's end. */
void pass_op_done(struct op *op)
{
	struct reconciler *r = op->r;
	struct pass *p = op->pass;
	size_t fleet = op->fleet;

	free(op);
	r->in_flight--;
	p->answered_us = rec_mono_us();
	if (p->kind == PASS_TARGETED && r->n_follow_up > 0)
		follow_up_arm(r, p->answered_us + FOLLOW_UP_STALL_US);
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
			fleet_done(r, p, fi);
			break;
		}
		f->pending++;
		if (finished == FLEET_OBSERVING) {
			observe_fleet_done(r, p, fi);
			if (--p->fleets_observing == 0 && p->kind == PASS_TARGETED)
				follow_up_arm(r, rec_mono_us() + FOLLOW_UP_STALL_US);
		}
		if (finished == FLEET_OBSERVING && !r->stopping)
			act_fleet(r, p, fi);
		else if (finished == FLEET_ACTING && !r->stopping)
			act_fleet_deletes(r, p, fi);
		f->pending--;
	}
	pass_end_if_done(r, p);
}

/* ---- follow-ups of a scale-up cut by the step -------------------------------------------- */

/*
 * A fleet of a targeted pass whose creations were cut by the step is owed one more pass. It
 * starts when that pass ends, or earlier when the pass is held up: it has planned and acted
 * on every fleet, none of its calls has answered for FOLLOW_UP_STALL_US (what holds it is a
 * slow call: a hung request's timeout, a retry's backoff), and at most FOLLOW_UP_CREATES_LEFT
 * creations of every pass are still owed an answer (the CreateStage budget is about to idle).
 * - Not at the fleet's own end: a follow-up's listing and reads would run beside a first pass
 *   that is still observing fleets and queueing their calls, which is the memory peak.
 * - Not while the pass's calls answer: it is busy and ends soon (a follow-up started then
 *   would run beside its last calls, for little).
 * - 0.5 s is 2.5 creations at IVS's CreateStage rate (5 TPS): the bucket keeps those tokens
 *   (up to its burst of a second), and the follow-up's listing, Redis read and two calls take
 *   less than the rest of that second.
 * The wakes go through rec_wake_soon: fleets due together share one targeted pass.
 */
#define FOLLOW_UP_CREATES_LEFT 5u

static int on_follow_up_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct reconciler *r = ud;

	(void)s;
	(void)usec;
	sd_event_source_set_enabled(r->defer, SD_EVENT_ONESHOT);
	return 0;
}

/* Look again at monotonic time at (µs), unless the timer already looks earlier. */
static void follow_up_arm(struct reconciler *r, uint64_t at)
{
	uint64_t when = 0;
	int enabled = SD_EVENT_OFF;

	if (r->n_follow_up == 0 || r->stopping)
		return;
	if (r->follow_up_timer == NULL) {
		if (sd_event_add_time(r->event, &r->follow_up_timer, CLOCK_MONOTONIC, at, 10000,
				      on_follow_up_timer, r) < 0)
			return;                  /* the pass's end still wakes them */
		sd_event_source_set_description(r->follow_up_timer, "scale-up-follow-up");
		return;
	}
	if (sd_event_source_get_enabled(r->follow_up_timer, &enabled) >= 0 &&
	    enabled != SD_EVENT_OFF && sd_event_source_get_time(r->follow_up_timer, &when) >= 0 &&
	    when <= at)
		return;
	sd_event_source_set_time(r->follow_up_timer, at);
	sd_event_source_set_enabled(r->follow_up_timer, SD_EVENT_ONESHOT);
}

static void follow_up_wake(struct reconciler *r, size_t fleet)
{
	struct fleet_state *fs = &r->fleets[fleet];

	fs->follow_up_due = false;
	if (!fs->follow_up)
		return;
	fs->follow_up = false;
	r->n_follow_up--;
	if (!r->stopping)
		rec_wake_soon(r, fleet);
}

void pass_create_sent(struct reconciler *r)
{
	r->creates_out++;
}

void pass_create_answered(struct reconciler *r)
{
	r->creates_out--;
}

/*
 * From the event loop (on_defer), never from inside a pass. The fleets due are marked first
 * and woken after the walk over the running passes: a wake may end the resync's pass.
 */
void pass_follow_up(struct reconciler *r)
{
	uint64_t now = rec_mono_us(), next = UINT64_MAX;
	bool any = false;

	if (r->n_follow_up == 0 || r->stopping)
		return;
	for (const struct pass *p = r->running; p != NULL; p = p->next_running) {
		bool owed = false;
		if (p->kind != PASS_TARGETED || p->fleets_observing > 0)
			continue;
		for (size_t fi = 0; fi < p->n_fleets && !owed; fi++)
			owed = p->fleets[fi].phase == FLEET_DONE &&
			       r->fleets[p->fleets[fi].index].follow_up;
		if (!owed)
			continue;
		if (now - p->answered_us < FOLLOW_UP_STALL_US ||
		    r->creates_out > FOLLOW_UP_CREATES_LEFT) {
			/* not held up yet (a creation answering re-arms through pass_op_done) */
			if (p->answered_us + FOLLOW_UP_STALL_US < next)
				next = p->answered_us + FOLLOW_UP_STALL_US;
			continue;
		}
		for (size_t fi = 0; fi < p->n_fleets; fi++) {
			struct fleet_state *fs = &r->fleets[p->fleets[fi].index];
			if (p->fleets[fi].phase == FLEET_DONE && fs->follow_up)
				any = fs->follow_up_due = true;
		}
	}
	for (size_t i = 0; any && i < r->n_fleets; i++)
		if (r->fleets[i].follow_up_due)
			follow_up_wake(r, i);
	if (next != UINT64_MAX)
		follow_up_arm(r, next > now ? next : now + FOLLOW_UP_STALL_US);
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
 * One fleet is through: its record (Redis write-backs, the admin views) is written now, not at
 * the end of a resync that may walk for minutes, and another pass may take it.
 */
static void fleet_done(struct reconciler *r, struct pass *p, size_t fi)
{
	struct obs_fleet *f = &p->fleets[fi];
	struct fleet_state *fs = &r->fleets[f->index];

	fs->busy = NULL;
	/*
	 * The scale-up step (max(S, 4) new stages a pass) left stages to create: another pass
	 * follows, soon after the walk's visit, or for a targeted pass when it ends or is held up
	 * while the creations have stalled (pass_follow_up). A pass that created nothing does not
	 * ask again.
	 */
	if (f->n_created > 0 && f->summary.decision.reason != NULL &&
	    strcmp(f->summary.decision.reason, "scale-up limit") == 0) {
		if (p->kind == PASS_RESYNC) {
			rec_wake_soon(r, f->index);
		} else if (!fs->follow_up) {
			fs->follow_up = true;
			r->n_follow_up++;
			follow_up_arm(r, p->answered_us + FOLLOW_UP_STALL_US);
		}
	}
	if (f->planned && p->kind == PASS_TARGETED)
		act_reads_outcome(r, f);
	if (f->planned) {
		record_fleet(r, p, fi);
		if (fs->last != NULL)
			pass_unref(fs->last->pass);
		fs->last = f;
		p->refs++;
	}
	if (fs->wake && !r->stopping)
		sd_event_source_set_enabled(r->defer, SD_EVENT_ONESHOT);
}

/*
 * Stopping with the observation complete but nothing decided: there is nothing to act on or
 * record, so the pass ends here and the owner hears of it (it may be waiting to exit).
 */
static void pass_abandon(struct reconciler *r, struct pass *p)
{
	running_remove(r, p);
	pass_unref(p);
	/* a stop may be waiting for it; a walk whose every fleet left is not news */
	if (r->stopping && r->hooks.pass_done != NULL)
		r->hooks.pass_done(r->hooks.ud, false);
	rec_check_idle(r);
}

/* Recorded: the pass becomes the last one the status shows, and wake-ups waiting may go. */
static void pass_end(struct reconciler *r, struct pass *p)
{
	p->finished_ms = rec_wall_ms();
	p->duration_us = rec_mono_us() - p->started_us;
	p->ok = p->reads_failed == 0 && p->actions_failed == 0;
	r->passes++;
	if (p->ok)
		r->last_success_ms = p->finished_ms;
	record_pass(r, p);
	if (r->last != NULL)
		pass_unref(r->last);
	r->last = p;
	p->refs++;
	if (p->kind == PASS_RESYNC)
		rec_resync_ended(r, p);
	for (size_t fi = 0; fi < p->n_fleets; fi++)
		follow_up_wake(r, p->fleets[fi].index);
	running_remove(r, p);
	pass_unref(p);                          /* the running reference; r->last keeps it */
	r->hook_ok = p->ok;
	if (r->record_writes == 0)
		pass_report(r);
	else
		r->hook_pending = true;
	if (!r->stopping)
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
	/* Stopped before anything was decided, or every fleet left: nothing to record. */
	if ((r->stopping || p->kind == PASS_RESYNC) && !planned) {
		if (p->kind == PASS_RESYNC)
			rec_resync_ended(r, p);
		pass_abandon(r, p);
		return;
	}
	pass_end(r, p);
}
