/*
 * observe.c — the observe phase of a reconcile pass: ListStages (ownership from tags), then per
 * fleet the Redis read and ListParticipants → ListParticipantReplicas. It only fills struct pass;
 * pass.c decides what happens next.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "ivs.h"
#include "log.h"
#include "plan.h"
#include "ownership.h"
#include "pass.h"
#include "reconcile_internal.h"
#include "redisio.h"
#include "store.h"
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
 * One store_read_fleet per fleet (one pipelined round trip, plus a follow-up for viewer counts
 * stored as STRING integers). Stages are read origin first; stage_of maps the read's stage
 * index back to the observation, since a stage whose key does not fit is left out.
 */
struct redis_read {
	struct op *op;
	struct obs_stage **stage_of;
	bool *is_replica;
};

static void redis_read_free(struct redis_read *rr)
{
	if (rr == NULL)
		return;
	free(rr->stage_of);
	free(rr->is_replica);
	free(rr);
}

static void set_viewers_invalid(struct obs_fleet *f, struct obs_stage *s, const char *why)
{
	s->viewers_known = false;
	f->viewers_ok = false;
	struct obs_notes *n = obs_notes_of(f);
	if (n != NULL && n->viewers_error[0] == '\0')
		snprintf(n->viewers_error, sizeof(n->viewers_error), "%s: %s", s->arn, why);
}

static void redis_read_failed(struct obs_fleet *f, struct pass *p)
{
	f->redis_ok = false;
	f->viewers_ok = false;
	p->reads_failed++;
}

/*
 * What replicates into a draining stage, seen from the stage: its REPLICA participants. A host
 * that dropped (or stopped publishing) is no host any more, but IVS keeps its replications
 * ACTIVE for the reconnect window; they must be stopped before the stage is deleted.
 */
static void on_feeders(void *ud, const struct aws_error *err,
		       const struct ivs_participant_list *list)
{
	struct op *op = ud;
	struct obs_fleet *f = &op->pass->fleets[op->fleet];
	struct obs_stage *s = &f->replicas[op->index];
	struct obs_feeders *fd;

	if (err != NULL && err->kind != AWS_OK) {
		s->feeders_unknown = true;
		op->pass->reads_failed++;
		log_event(LOG_WARNING, NULL,
			  LOG_FIELDS("IVS_FLEET", f->cfg->name, "IVS_STAGE_ARN", s->arn,
				     "IVS_OPERATION", "ListParticipants", "AWS_REQUEST_ID", err->request_id),
			  "listing the replications into draining stage %s failed: %s %s; it is kept",
			  s->arn, aws_error_kind_name(err->kind), err->message);
		goto out;
	}
	fd = calloc(1, sizeof(*fd));
	if (fd == NULL) {
		s->feeders_unknown = true;
		goto out;
	}
	for (size_t i = 0; i < list->n; i++) {
		const struct ivs_participant *pt = &list->items[i];
		if (pt->replication_type != IVS_REPLICATION_TYPE_REPLICA ||
		    pt->replication_state == IVS_REPLICATION_STOPPED ||
		    pt->participant_id[0] == '\0' || pt->source_stage_arn[0] == '\0')
			continue;
		if (fd->n == PLAN_MAX_HOSTS) {
			s->feeders_unknown = true;       /* more than a stage can hold: be safe */
			break;
		}
		snprintf(fd->src[fd->n], sizeof(fd->src[0]), "%s", pt->source_stage_arn);
		snprintf(fd->pid[fd->n], sizeof(fd->pid[0]), "%s", pt->participant_id);
		fd->items[fd->n] = (struct plan_feeder){ fd->src[fd->n], fd->pid[fd->n] };
		fd->n++;
	}
	if (fd->n == 0)
		free(fd);
	else
		s->feeders = fd;
out:
	pass_op_done(op);
}

/* List the feeders of the fleet's draining stages (a stage with no session has none). */
static void observe_feeders(struct op *parent, struct obs_fleet *f)
{
	struct ivs_participant_filter filter = { .kind = IVS_FILTER_PUBLISHED, .published = true };
	struct reconciler *r = parent->r;

	for (size_t i = 0; i < f->n_replicas; i++) {
		struct obs_stage *s = &f->replicas[i];
		struct op *op;
		if (!s->draining || s->session[0] == '\0')
			continue;
		op = pass_op_new(r, parent->pass, parent->fleet);
		if (op == NULL) {
			s->feeders_unknown = true;
			continue;
		}
		op->index = i;
		if (ivs_list_participants(r->aws, s->arn, s->session, &filter, on_feeders, op) < 0)
			on_feeders(op, &pass_not_queued, NULL);
	}
}

/*
 * A pass observes its fleets a few at a time: each fleet's Redis read and its IVS reads are
 * sent when it gets one of OBSERVE_AT_ONCE slots, and the slot is free again when the fleet
 * is through observing (observe_fleet_done). 200 fleets observed at once held 0.6 MB of
 * hiredis output buffers and 200 queued ListParticipants (0.5 MB); the per-operation budget,
 * not this window, is what limits a pass. A queued fleet already holds its op, so it stays
 * observing.
 */
#define OBSERVE_AT_ONCE 16

static void observe_redis(struct reconciler *r, struct pass *p, size_t fi, struct op *op);
static void observe_hosts(struct reconciler *r, struct pass *p, size_t fi);

/*
 * Start queued fleets while fewer than OBSERVE_AT_ONCE observe. Called only while an op of p
 * is outstanding (the queued fleet's own at least), so p outlives the loop; a fleet that is
 * through at once re-enters through observe_fleet_done, a no-op then.
 */
static void observe_pump(struct reconciler *r, struct pass *p)
{
	if (p->obs_pumping)
		return;
	p->obs_pumping = true;
	while (p->obs_in_flight < OBSERVE_AT_ONCE && p->obs_head != p->obs_tail) {
		size_t fi = p->obs_queue[p->obs_head++];
		struct obs_fleet *f = &p->fleets[fi];
		struct op *op = f->redis_op;
		f->redis_op = NULL;
		f->observing = true;
		p->obs_in_flight++;
		/* hosts first: the Redis op still holds the fleet while they are sent */
		observe_hosts(r, p, fi);
		observe_redis(r, p, fi, op);
	}
	p->obs_pumping = false;
}

void observe_fleet_done(struct reconciler *r, struct pass *p, size_t fi)
{
	if (!p->fleets[fi].observing)
		return;
	p->fleets[fi].observing = false;
	p->obs_in_flight--;
	observe_pump(r, p);
}

static void on_fleet_read(void *ud, const struct store_fleet_read *res)
{
	struct redis_read *rr = ud;
	struct op *op = rr->op;
	struct obs_fleet *f = &op->pass->fleets[op->fleet];

	if (!res->ok) {
		redis_read_failed(f, op->pass);
		goto out;
	}
	switch (res->desired.state) {
	case STORE_ABSENT:
		f->override = PLAN_OVERRIDE_ABSENT;
		break;
	case STORE_OK:
		f->override = PLAN_OVERRIDE_VALID;
		f->override_stages = (uint32_t)res->desired.value;
		break;
	case STORE_INVALID:
		f->override = PLAN_OVERRIDE_INVALID;
		if (obs_notes_of(f) != NULL)
			snprintf(f->notes->override_error, sizeof(f->notes->override_error), "%s",
				 res->desired.error);
		break;
	}
	if (res->publisher.state == STORE_OK && obs_notes_of(f) != NULL) {
		f->notes->publisher = res->publisher.info;
		f->notes->publisher_present = true;
	} else if (res->publisher.state == STORE_INVALID && obs_notes_of(f) != NULL) {
		snprintf(f->notes->publisher_error, sizeof(f->notes->publisher_error), "%s",
			 res->publisher.error);
	}
	for (size_t i = 0; i < res->n_stages; i++) {
		const struct store_stage_read *sr = &res->stages[i];
		struct obs_stage *s = rr->stage_of[i];
		if (sr->viewers_state != STORE_ABSENT)
			f->viewer_keys++;
		if (sr->viewers_state == STORE_INVALID) {
			set_viewers_invalid(f, s, sr->viewers_error);
		} else {
			/* A missing key is a stage nobody watches yet. */
			s->viewers_known = true;
			s->viewers = (uint64_t)sr->viewers;
		}
		if (rr->is_replica[i] && sr->draining) {
			s->draining = true;
			s->operator_drain = sr->by_operator;
			/* An unparsable mark still drains; it counts from this pass. */
			s->draining_since_ms = sr->draining_since_ms >= 0 ? sr->draining_since_ms
									  : op->pass->started_ms;
		}
	}
	if (op->pass->stages_ok)
		observe_feeders(op, f);
out:
	redis_read_free(rr);
	pass_op_done(op);
}

static void observe_redis(struct reconciler *r, struct pass *p, size_t fi, struct op *op)
{
	struct obs_fleet *f = &p->fleets[fi];
	struct redis_read *rr = calloc(1, sizeof(*rr));
	size_t n_all = f->n_replicas + 1, n = 0;
	char (*keys)[3][KEY_MAX] = calloc(n_all, sizeof(*keys));
	struct store_stage_keys *sk = calloc(n_all, sizeof(*sk));
	int rc = -ENOMEM;

	f->redis_ok = true;
	f->viewers_ok = true;
	if (rr == NULL || keys == NULL || sk == NULL)
		goto fail;
	rr->op = op;
	rr->stage_of = calloc(n_all, sizeof(*rr->stage_of));
	rr->is_replica = calloc(n_all, sizeof(*rr->is_replica));
	if (rr->stage_of == NULL || rr->is_replica == NULL)
		goto fail;
	rc = -ENOTCONN;
	if (r->redis == NULL || !redisio_connected(r->redis))
		goto fail;
	for (size_t i = 0; i < n_all; i++) {
		struct obs_stage *s = i == 0 ? &f->origin : &f->replicas[i - 1];
		if (config_expand_key(f->cfg->redis_keys.viewers, f->cfg->name, s->arn, keys[n][0],
				      sizeof(keys[n][0])) < 0 ||
		    rec_stage_key(r, STORE_KEY_DRAINING, s->arn, keys[n][1],
				  sizeof(keys[n][1])) < 0 ||
		    rec_stage_key(r, STORE_KEY_DRAINED_BY, s->arn, keys[n][2],
				  sizeof(keys[n][2])) < 0) {
			set_viewers_invalid(f, s, "viewers key too long");
			continue;
		}
		sk[n] = (struct store_stage_keys){ keys[n][0], keys[n][1], i > 0 ? keys[n][2] : NULL };
		rr->stage_of[n] = s;
		rr->is_replica[n] = i > 0;
		n++;
	}
	struct store_fleet_keys fk = {
		.desired_stages = f->cfg->redis_keys.desired_stages,
		.publisher = f->cfg->redis_keys.publisher,
		.n_stages = n,
		.stages = sk,
	};
	rc = store_read_fleet(r->redis, &fk, on_fleet_read, rr);
	if (rc < 0)
		goto fail;
	free(keys);
	free(sk);
	return;
fail:
	if (rc != -ENOTCONN)
		log_warnx("fleet %s: redis read not sent: %s", f->cfg->name, strerror(-rc));
	free(keys);
	free(sk);
	redis_read_free(rr);
	redis_read_failed(f, p);
	pass_op_done(op);
}

/* ---- observe: IVS ------------------------------------------------------------------------ */

/* The ARN of one of the fleet's replica stages equal to arn, or NULL. */
static const char *replica_arn(const struct obs_fleet *f, const char *arn)
{
	for (size_t i = 0; i < f->n_replicas; i++)
		if (strcmp(f->replicas[i].arn, arn) == 0)
			return f->replicas[i].arn;
	return NULL;
}

static bool kept_state(const struct ivs_replica *rep)
{
	return rep->replication_state == IVS_REPLICATION_ACTIVE ||
	       rep->replication_state == IVS_REPLICATION_STOPPED;
}

/*
 * The host's ACTIVE and STOPPED replications. A destination that is one of the fleet's replicas
 * (ListStages answered before any host is read) points at that stage's ARN; the others are
 * copied into one right-sized block, h->dest. 1,000 replications in two live observations
 * took 0.25 MB as 129-byte slots.
 */
static int keep_destinations(const struct obs_fleet *f, struct obs_host *h,
			     const struct ivs_replica_list *list)
{
	size_t need = 0, used = 0;

	for (size_t i = 0; i < list->n; i++)
		if (kept_state(&list->items[i]) &&
		    replica_arn(f, list->items[i].destination_stage_arn) == NULL)
			need += strlen(list->items[i].destination_stage_arn) + 1;
	if (need > 0 && (h->dest = malloc(need)) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < list->n; i++) {
		const struct ivs_replica *rep = &list->items[i];
		const char *arn;

		if (!kept_state(rep))
			continue;
		arn = replica_arn(f, rep->destination_stage_arn);
		if (arn == NULL) {
			size_t len = strlen(rep->destination_stage_arn) + 1;

			memcpy(h->dest + used, rep->destination_stage_arn, len);
			arn = h->dest + used;
			used += len;
		}
		h->replications[h->n_replications].destination_arn = arn;
		h->replications[h->n_replications].state =
			rep->replication_state == IVS_REPLICATION_ACTIVE ? PLAN_REPLICATION_ACTIVE
									: PLAN_REPLICATION_STOPPED;
		h->n_replications++;
	}
	return 0;
}

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
	if (h->replications == NULL || keep_destinations(f, h, list) < 0) {
		h->replicas_ok = false;
		op->pass->reads_failed++;
		goto out;
	}
	h->replicas_ok = true;
out:
	pass_op_done(op);
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
		h->user_id = strdup(pt->user_id);
	}
	for (size_t i = 0; i < f->n_hosts; i++) {
		struct op *rop = pass_op_new(r, op->pass, op->fleet);
		if (rop == NULL) {
			f->hosts[i].replicas_ok = false;
			continue;
		}
		rop->index = i;
		struct aws_call_class prev = aws_client_set_class(r->aws,
								  pass_call_class(op->pass, op->fleet));
		int rc = ivs_list_participant_replicas(r->aws, f->cfg->origin_stage_arn,
						       f->hosts[i].participant_id, on_replicas, rop);
		aws_client_set_class(r->aws, prev);
		if (rc < 0) {
			f->hosts[i].replicas_ok = false;
			op->pass->reads_failed++;
			pass_op_done(rop);
		}
	}
out:
	pass_op_done(op);
}

/* A stage's names in one heap block (freed with the observation) and its tags' facts. */
static int obs_stage_init(struct obs_stage *s, const struct ivs_stage *st)
{
	size_t alen = strlen(st->arn), nlen = strlen(st->name);
	char *block = malloc(alen + nlen + 2);

	if (block == NULL)
		return -ENOMEM;
	memcpy(block, st->arn, alen + 1);
	memcpy(block + alen + 1, st->name, nlen + 1);
	memset(s, 0, sizeof(*s));
	s->arn = block;
	s->name = block + alen + 1;
	snprintf(s->session, sizeof(s->session), "%s", st->active_session_id);
	s->created_ms = parse_iso_ms(ivs_stage_tag(st, TAG_CREATED));
	return 0;
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
	if (obs_stage_init(&f->replicas[f->n_replicas], st) < 0)
		return -ENOMEM;
	f->n_replicas++;
	return 0;
}

/* ListParticipants of the origin's session, then ListParticipantReplicas per host. */
static void observe_hosts(struct reconciler *r, struct pass *p, size_t fi)
{
	struct obs_fleet *f = &p->fleets[fi];
	struct ivs_participant_filter filter = { .kind = IVS_FILTER_PUBLISHED, .published = true };
	struct op *hop;

	if (!p->stages_ok) {
		/* Without the origin's session there is no way to list hosts. */
		f->hosts_ok = false;
		return;
	}
	if (!f->origin_seen || f->origin_session[0] == '\0') {
		f->hosts_ok = true;             /* no session: no hosts, truthfully */
		return;
	}
	hop = pass_op_new(r, p, fi);
	if (hop == NULL)
		return;
	struct aws_call_class prev = aws_client_set_class(r->aws, pass_call_class(p, fi));
	int rc = ivs_list_participants(r->aws, f->cfg->origin_stage_arn, f->origin_session,
				       &filter, on_participants, hop);
	aws_client_set_class(r->aws, prev);
	if (rc < 0) {
		f->hosts_ok = false;
		p->reads_failed++;
		pass_op_done(hop);
	}
}

/* The fleet's Redis read and its hosts, once it has a slot (observe_pump). */
static void observe_fleet_reads(struct reconciler *r, struct pass *p, size_t fi)
{
	struct obs_fleet *f = &p->fleets[fi];
	struct op *rop = pass_op_new(r, p, fi);

	if (p->obs_queue == NULL)
		p->obs_queue = calloc(p->n_fleets, sizeof(*p->obs_queue));
	if (rop == NULL || p->obs_queue == NULL) {
		/* no memory to wait: observe now, outside the window */
		redis_read_failed(f, p);
		observe_hosts(r, p, fi);
		if (rop != NULL)
			pass_op_done(rop);      /* cannot end the pass: the machine holds the fleet */
		return;
	}
	f->redis_op = rop;                      /* queued: observe_pump starts it in its turn */
	p->obs_queue[p->obs_tail++] = fi;
	observe_pump(r, p);
}

/*
 * A configured origin is never one of our replicas, even when it carries our tags (a replica an
 * operator promoted to the origin of another fleet): origins are configured, not owned.
 */
static bool is_configured_origin(const struct config *c, const char *arn)
{
	for (size_t i = 0; i < c->n_fleets; i++)
		if (strcmp(c->fleets[i].origin_stage_arn, arn) == 0)
			return true;
	return false;
}

/* ---- ownership (common/ownership.h) ------------------------------------------------------ */

static int add_foreign(struct pass *p, const struct ivs_stage *st, bool legacy)
{
	struct obs_foreign *n = realloc(p->foreign, (p->n_foreign + 1) * sizeof(*n));
	const char *fleet = ivs_stage_tag(st, TAG_FLEET), *origin = ivs_stage_tag(st, TAG_ORIGIN);
	const char *owner = ivs_stage_tag(st, TAG_OWNER);

	if (n == NULL)
		return -ENOMEM;
	p->foreign = n;
	n = &p->foreign[p->n_foreign++];
	memset(n, 0, sizeof(*n));
	snprintf(n->arn, sizeof(n->arn), "%s", st->arn);
	snprintf(n->name, sizeof(n->name), "%s", st->name);
	snprintf(n->fleet, sizeof(n->fleet), "%.128s", fleet != NULL ? fleet : "");
	snprintf(n->origin, sizeof(n->origin), "%.128s", origin != NULL ? origin : "");
	snprintf(n->owner, sizeof(n->owner), "%.128s", owner != NULL ? owner : "");
	n->legacy = legacy;
	return 0;
}

static int add_legacy(struct obs_fleet *f, const struct ivs_stage *st)
{
	struct obs_stage *n = realloc(f->legacy, (f->n_legacy + 1) * sizeof(*n));

	if (n == NULL)
		return -ENOMEM;
	f->legacy = n;
	n = &f->legacy[f->n_legacy];
	if (obs_stage_init(n, st) < 0)
		return -ENOMEM;
	f->n_legacy++;
	return 0;
}

/*
 * Which fleet, if any, a listed stage (not an origin) belongs to, among every configured fleet
 * (a targeted pass holds a few of them: a stage of a fleet outside the pass is ours all the
 * same, only not observed by this pass). 0 or -ENOMEM.
 */
static int classify_stage(const struct reconciler *r, struct pass *p,
			  const struct ownership_fleet *fleets, const struct ivs_stage *st)
{
	struct ownership_tags tags = {
		ivs_stage_tag(st, TAG_MANAGED), ivs_stage_tag(st, TAG_FLEET),
		ivs_stage_tag(st, TAG_ORIGIN), ivs_stage_tag(st, TAG_OWNER),
	};
	enum stage_ownership o;
	size_t ci;

	o = ownership_classify(&tags, fleets, r->config->n_fleets, r->config->controller.owner, &ci);
	if (o == STAGE_UNMANAGED)
		return 0;
	if (o == STAGE_FOREIGN)
		return add_foreign(p, st, false);
	for (size_t fi = 0; fi < p->n_fleets; fi++) {
		if (p->fleets[fi].index != ci)
			continue;
		return o == STAGE_OWNED ? obs_add_replica(&p->fleets[fi], st)
					: add_legacy(&p->fleets[fi], st);
	}
	return 0;                               /* a fleet this pass does not observe */
}

/* true the first time arn is seen here (for as long as the daemon runs): warn once. */
static bool first_warning(struct reconciler *r, const char *arn)
{
	char (*n)[IVS_ARN_MAX + 1];

	for (size_t k = 0; k < r->n_foreign_warned; k++)
		if (strcmp(r->foreign_warned[k], arn) == 0)
			return false;
	if (r->n_foreign_warned >= 4096)
		return false;
	n = realloc(r->foreign_warned, (r->n_foreign_warned + 1) * sizeof(*n));
	if (n == NULL)
		return false;
	r->foreign_warned = n;
	snprintf(n[r->n_foreign_warned++], sizeof(*n), "%s", arn);
	return true;
}

static void warn_foreign(struct reconciler *r, const struct pass *p)
{
	for (size_t i = 0; i < p->n_foreign; i++) {
		const struct obs_foreign *s = &p->foreign[i];
		if (!first_warning(r, s->arn))
			continue;
		log_event(LOG_WARNING, NULL, LOG_FIELDS("IVS_STAGE_ARN", s->arn, "IVS_FLEET", s->fleet),
			  "stage %s is managed by another deployment (fleet \"%s\", origin \"%s\", "
			  "owner \"%s\"): it is never planned on, fed, drained or deleted", s->arn,
			  s->fleet, s->origin, s->owner);
	}
}

/* A 0.1-style stage's record: adopted when its parentStage is this fleet's origin. */
static void on_legacy_record(void *ud, redisReply *reply, const char *error)
{
	struct op *op = ud;
	struct reconciler *r = op->r;
	struct pass *p = op->pass;
	struct obs_fleet *f = &p->fleets[op->fleet];
	struct obs_stage *s = &f->legacy[op->index];
	char parent[IVS_ARN_MAX + 1] = "", why[STORE_ERR_MAX] = "no stage record";
	bool unknown = reply == NULL || reply->type == REDIS_REPLY_ERROR;

	if (unknown) {
		/* Unknown, not "no": the fleet's stage list counts as incomplete this pass. */
		f->legacy_unknown = true;
		snprintf(why, sizeof(why), "redis: %s", reply != NULL && reply->str != NULL ? reply->str
			 : error != NULL ? error : "?");
	} else if (reply->type == REDIS_REPLY_STRING &&
		 store_parse_stage_parent(reply->str, reply->len, parent, sizeof(parent), why,
					  sizeof(why)) == 0 && parent[0] == '\0')
		snprintf(why, sizeof(why), "its stage record names no parentStage");
	else if (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_NIL)
		snprintf(why, sizeof(why), "its stage record is not a string");
	if (parent[0] != '\0' && strcmp(parent, f->cfg->origin_stage_arn) == 0) {
		struct ivs_stage st = { 0 };
		snprintf(st.arn, sizeof(st.arn), "%s", s->arn);
		snprintf(st.name, sizeof(st.name), "%s", s->name);
		if (obs_add_replica(f, &st) == 0) {
			f->replicas[f->n_replicas - 1].created_ms = s->created_ms;
			f->replicas[f->n_replicas - 1].adopted = true;
		} else {
			p->stages_ok = false;
		}
	} else {
		struct ivs_stage st = { 0 };
		struct ivs_tag tags[2] = { { (char *)TAG_MANAGED, (char *)"true" },
					   { (char *)TAG_FLEET, (char *)f->cfg->name } };
		snprintf(st.arn, sizeof(st.arn), "%s", s->arn);
		snprintf(st.name, sizeof(st.name), "%s", s->name);
		st.tags = tags;
		st.ntags = 2;
		if (parent[0] != '\0')
			snprintf(why, sizeof(why), "its parentStage is %s", parent);
		if (unknown)
			log_debug("stage %s: its record could not be read (%s); left alone this pass",
				  s->arn, why);
		else if (first_warning(r, s->arn))
			log_event(LOG_WARNING, NULL,
				  LOG_FIELDS("IVS_FLEET", f->cfg->name, "IVS_STAGE_ARN", s->arn),
				  "stage %s has fleet %s's tag but no origin tag, and %s: left alone",
				  s->arn, f->cfg->name, why);
		if (add_foreign(p, &st, true) < 0)
			p->stages_ok = false;
	}
	if (--f->legacy_pending == 0)
		observe_fleet_reads(r, p, op->fleet);
	pass_op_done(op);
}

/*
 * Ask Redis about each 0.1-style candidate of a fleet. true when the fleet waits for the
 * answers (the last one starts observe_fleet_reads); false: nothing to ask (or Redis down: the
 * candidates are left alone this pass) and the caller observes the fleet now.
 */
static bool check_legacy(struct reconciler *r, struct pass *p, size_t fi)
{
	struct obs_fleet *f = &p->fleets[fi];
	bool redis_up = r->redis != NULL && redisio_connected(r->redis);

	f->legacy_pending = 1;                  /* a hold: no answer may observe the fleet yet */
	for (size_t i = 0; i < f->n_legacy; i++) {
		char key[KEY_MAX];
		const char *argv[2] = { "GET", key };
		struct op *op = NULL;
		if (redis_up && rec_stage_key(r, STORE_KEY_STAGE, f->legacy[i].arn, key, sizeof(key)) == 0)
			op = pass_op_new(r, p, fi);
		if (op != NULL) {
			/* The fleet is observed when the last answer is in; a candidate that Redis
			 * cannot vouch for this pass is left alone. */
			op->index = i;
			f->legacy_pending++;
			if (redisio_command_argv(r->redis, 2, argv, NULL, on_legacy_record, op) == 0)
				continue;
			f->legacy_pending--;
			pass_op_done(op);
		}
		struct ivs_stage st = { 0 };
		snprintf(st.arn, sizeof(st.arn), "%s", f->legacy[i].arn);
		snprintf(st.name, sizeof(st.name), "%s", f->legacy[i].name);
		f->legacy_unknown = true;
		if (add_foreign(p, &st, true) < 0)
			p->stages_ok = false;
	}
	return --f->legacy_pending > 0;
}

/* One fleet's reads, once its 0.1-style candidates (if any) have been checked. */
void observe_fleet(struct reconciler *r, struct pass *p, size_t fi)
{
	if (!check_legacy(r, p, fi))
		observe_fleet_reads(r, p, fi);
}

/*
 * One page of ListStages: the origins' sessions and our replica stages, by fleet. The page is
 * forgotten once it is read, so memory holds one page of 100, not the whole listing.
 */
static void on_stage_page(void *ud, const struct ivs_stage_list *list)
{
	struct op *op = ud;
	struct pass *p = op->pass;

	p->stage_pages++;
	/* Every ARN listed, as hashes, for the records sweep (sweep.c). Short of memory, none:
	 * the sweep is then skipped (a partial list would make listed stages look gone). */
	if (!p->listed_lost && list->n > 0) {
		uint64_t *grown = realloc(p->listed, (p->n_listed + list->n) * sizeof(*grown));
		if (grown == NULL) {
			free(p->listed);
			p->listed = NULL;
			p->n_listed = 0;
			p->listed_lost = true;
		} else {
			p->listed = grown;
			for (size_t i = 0; i < list->n; i++)
				p->listed[p->n_listed++] = sweep_arn_hash(list->items[i].arn);
		}
	}
	if (p->own_fleets == NULL) {
		const struct config *c = op->r->config;
		p->own_fleets = calloc(c->n_fleets + 1, sizeof(*p->own_fleets));
		if (p->own_fleets == NULL) {
			p->stages_alloc_failed = true;
			return;
		}
		for (size_t ci = 0; ci < c->n_fleets; ci++)
			p->own_fleets[ci] = (struct ownership_fleet){ c->fleets[ci].name,
								      c->fleets[ci].origin_stage_arn };
	}
	for (size_t i = 0; i < list->n; i++) {
		const struct ivs_stage *st = &list->items[i];
		for (size_t fi = 0; fi < p->n_fleets; fi++) {
			struct obs_fleet *f = &p->fleets[fi];
			if (strcmp(st->arn, f->cfg->origin_stage_arn) == 0) {
				f->origin_seen = true;
				snprintf(f->origin_session, sizeof(f->origin_session), "%s",
					 st->active_session_id);
			}
		}
		/* Origins are configured, not owned, whatever their tags say. */
		if (!is_configured_origin(op->r->config, st->arn) &&
		    classify_stage(op->r, p, p->own_fleets, st) < 0)
			p->stages_alloc_failed = true;
	}
}

static void on_stages(void *ud, const struct aws_error *err, const struct ivs_stage_list *list)
{
	struct op *op = ud;
	struct pass *p = op->pass;

	(void)list;
	if (err != NULL && err->kind != AWS_OK) {
		p->stages_ok = false;
		p->reads_failed++;
		snprintf(p->stages_error, sizeof(p->stages_error), "ListStages: %s %s",
			 aws_error_kind_name(err->kind), err->message);
		log_event(LOG_WARNING, NULL,
			  LOG_FIELDS("IVS_OPERATION", "ListStages", "AWS_REQUEST_ID", err->request_id),
			  "listing stages failed: %s %s", aws_error_kind_name(err->kind), err->message);
	} else {
		p->stages_ok = !p->stages_alloc_failed;
		if (p->listed == NULL && !p->listed_lost)
			p->listed = calloc(1, sizeof(*p->listed));      /* nothing listed at all */
		if (p->listed != NULL)
			sweep_sort_hashes(p->listed, p->n_listed);
		warn_foreign(op->r, p);
	}
	for (size_t fi = 0; fi < p->n_fleets; fi++) {
		struct obs_fleet *f = &p->fleets[fi];
		/* Two observations of every fleet are alive at once (this pass and the one before):
		 * give back the doubling's slack. */
		if (f->n_replicas > 0 && f->n_replicas < f->cap_replicas) {
			struct obs_stage *fit = realloc(f->replicas, f->n_replicas * sizeof(*fit));
			if (fit != NULL) {
				f->replicas = fit;
				f->cap_replicas = f->n_replicas;
			}
		}
	}
	/* The machine sends each fleet's own reads next (observe_fleet). */
	pass_op_done(op);
}

/* The pass's own call: ListStages. Its answer fills the pass; pass.c then observes each fleet. */
int observe_pass(struct reconciler *r, struct pass *p)
{
	struct op *op = pass_op_new(r, p, PASS_WHOLE);

	if (op == NULL)
		return -ENOMEM;
	/* The resync's listing is paced like its other reads; a targeted pass's goes first. */
	struct aws_call_class cls = {
		.priority = p->kind == PASS_RESYNC ? AWS_PRIORITY_RESYNC : AWS_PRIORITY_URGENT,
	};
	struct aws_call_class prev = aws_client_set_class(r->aws, cls);
	int rc = ivs_list_stages_paged(r->aws, on_stage_page, on_stages, op);
	aws_client_set_class(r->aws, prev);
	if (rc < 0)
		on_stages(op, &pass_not_queued, NULL);
	return 0;
}
