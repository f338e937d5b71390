/*
 * reconcile.c — see reconcile.h for the shape of a pass.
 *
 * Memory: each pass builds a fresh observation (struct pass) and, once the pass is recorded,
 * it replaces the previous one, which the admin views read. Strings handed to the planner point
 * into that observation, so a plan is valid exactly as long as its pass.
 *
 * Safety rules kept here (the planner keeps the rest, see common/plan.h):
 *   - ownership comes from IVS tags only; a stage without our tags never reaches the planner;
 *   - a pass whose reads failed may create and replicate but never drain, stop or delete;
 *   - the single "may I mutate now?" check is may_mutate();
 *   - every action is idempotent against IVS (404 on stop/delete = done, "already
 *     replicating" = done), so a crash at any point is repaired by the next pass.
 */
#include "reconcile.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "config.h"
#include "ivs.h"
#include "log.h"
#include "metrics.h"
#include "plan.h"
#include "policy.h"
#include "redisio.h"
#include "store_parse.h"

#define TAG_MANAGED   "ivs-autoscaler:managed"
#define TAG_FLEET     "ivs-autoscaler:fleet"
#define TAG_CREATED   "ivs-autoscaler:created"
#define MAX_BACKOFF_ITEMS 1024
#define MAX_MANUAL        64
#define KEY_MAX           CONFIG_KEY_MAX

/* ---- observation of one pass ------------------------------------------------------------ */

struct obs_host {
	char participant_id[IVS_PARTICIPANT_ID_MAX + 1];
	char user_id[IVS_USER_ID_MAX + 1];
	bool replicas_ok;
	struct plan_replication *replications;  /* destinations point into dest[] */
	char (*dest)[IVS_ARN_MAX + 1];
	size_t n_replications;
};

struct obs_stage {
	char arn[IVS_ARN_MAX + 1];
	char name[IVS_STAGE_NAME_MAX + 1];
	int64_t created_ms;
	bool viewers_known;
	uint64_t viewers;
	bool draining;
	int64_t draining_since_ms;
};

struct obs_fleet {
	const struct config_fleet *cfg;
	bool origin_seen;
	char origin_session[IVS_SESSION_ID_MAX + 1];
	struct obs_stage origin;                 /* viewers of the origin */
	struct obs_stage *replicas;
	size_t n_replicas, cap_replicas;
	struct obs_host *hosts;
	size_t n_hosts;
	bool hosts_ok;
	bool viewers_ok;
	bool redis_ok;
	enum plan_override override;
	uint32_t override_stages;
	char override_error[STORE_ERR_MAX];
	bool publisher_present;
	struct store_publisher publisher;
	char publisher_error[STORE_ERR_MAX];
	char viewers_error[STORE_ERR_MAX];
	unsigned outstanding;                    /* replicas reads of hosts in flight */
	struct plan_output *plan;                /* heap; NULL until planned */
	bool planned;
	unsigned actions_failed;
	unsigned not_publishing;
	/* Stages created by this pass: open to viewers at once, like the observed serving ones. */
	char created[PLAN_MAX_REPLICA_STAGES][IVS_ARN_MAX + 1];
	size_t n_created;
};

struct pass {
	uint64_t id;
	int64_t started_ms;                      /* wall clock */
	uint64_t started_us;                     /* monotonic */
	bool stages_ok;
	char stages_error[300];
	struct obs_fleet *fleets;
	size_t n_fleets;
	unsigned outstanding;
	int phase;                               /* 0 observe, 1 act, 2 delete, 3 record */
	unsigned reads_failed, actions_failed, actions_done;
	struct pass_stop_failure { char arn[IVS_ARN_MAX + 1]; } *stop_failed;
	size_t n_stop_failed;
	int64_t finished_ms;
	uint64_t duration_us;
	bool ok;
};

/* ---- long-lived per-fleet state --------------------------------------------------------- */

struct fleet_state {
	char name[65];
	struct policy_state policy;
	bool paused;
	bool capped_reported;
	bool no_host_reported;
	bool fail_static_reported;
	struct obs_fleet *last;                  /* points into r->last (NULL before first pass) */
};

struct backoff_item {
	char key[2 * IVS_ARN_MAX + IVS_PARTICIPANT_ID_MAX + 16];
	unsigned failures;
	int64_t next_ms;
	bool warned;
};

struct manual_replication {
	char src[IVS_ARN_MAX + 1];
	char dst[IVS_ARN_MAX + 1];
	char participant[IVS_PARTICIPANT_ID_MAX + 1];
};

struct reconciler {
	sd_event *event;
	const struct config *config;
	struct aws_client *aws;
	struct redisio *redis;
	struct ivs_metrics *metrics;
	bool dry_run;
	struct reconciler_hooks hooks;

	struct fleet_state *fleets;
	size_t n_fleets;
	struct pass *current;                    /* running pass or NULL */
	struct pass *last;                       /* last recorded pass or NULL */
	uint64_t passes;
	uint64_t next_pass_id;
	bool wake_pending;
	bool stopping;
	bool redis_up;
	sd_event_source *timer;
	sd_event_source *defer;
	sd_event_source *debounce;
	uint64_t last_pass_start_us;
	struct backoff_item backoff[MAX_BACKOFF_ITEMS];
	size_t n_backoff;
	struct manual_replication manual[MAX_MANUAL];
	size_t n_manual;
	int64_t last_success_ms;
	uint64_t in_flight;                      /* callbacks owed to us (AWS + Redis) */
	unsigned record_writes;                  /* record-phase Redis writes not yet answered */
	bool hook_pending;                       /* pass_done waits for those writes */
	bool hook_ok;
	uint64_t stage_seq;                      /* makes stage names unique within a millisecond */
};

/* Each outstanding callback carries one of these so a late callback finds its pass. */
struct op {
	struct reconciler *r;
	struct pass *pass;
	size_t fleet;
	size_t index;                            /* host / action index */
	struct plan_action action;               /* copy; strings point into the pass */
	char created_arn[IVS_ARN_MAX + 1];
	char key[KEY_MAX];
	char value[512];
};

static void pass_step(struct reconciler *r, struct pass *p);
static void pass_record(struct reconciler *r, struct pass *p);

/* ---- small helpers ---------------------------------------------------------------------- */

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void iso_time(int64_t ms, char *buf, size_t len)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

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

static struct fleet_state *fleet_state_find(const struct reconciler *r, const char *name)
{
	for (size_t i = 0; i < r->n_fleets; i++)
		if (strcmp(r->fleets[i].name, name) == 0)
			return &r->fleets[i];
	return NULL;
}

static size_t fleet_index(const struct reconciler *r, const char *name)
{
	for (size_t i = 0; i < r->config->n_fleets; i++)
		if (strcmp(r->config->fleets[i].name, name) == 0)
			return i;
	return SIZE_MAX;
}

/* Full Redis key: prefix + "stage:" + arn + suffix (keys of ours not covered by templates). */
static int stage_key(const struct reconciler *r, const char *what, const char *arn,
		     const char *suffix, char *out, size_t len)
{
	int n = snprintf(out, len, "%s%s%s%s", r->config->redis.key_prefix, what, arn, suffix);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The one "may I mutate now?" check (leadership will join it here). */
static bool may_mutate(const struct reconciler *r, const struct fleet_state *fs)
{
	return !r->dry_run && !r->stopping && !(fs != NULL && fs->paused);
}

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

/* ---- pass lifetime ----------------------------------------------------------------------- */

static void obs_fleet_clear(struct obs_fleet *f)
{
	for (size_t h = 0; h < f->n_hosts; h++) {
		free(f->hosts[h].replications);
		free(f->hosts[h].dest);
	}
	free(f->hosts);
	free(f->replicas);
	free(f->plan);
	memset(f, 0, sizeof(*f));
}

static void pass_free(struct pass *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n_fleets; i++)
		obs_fleet_clear(&p->fleets[i]);
	free(p->fleets);
	free(p->stop_failed);
	free(p);
}

static struct op *op_new(struct reconciler *r, struct pass *p, size_t fleet)
{
	struct op *op = calloc(1, sizeof(*op));
	if (op == NULL)
		return NULL;
	op->r = r;
	op->pass = p;
	op->fleet = fleet;
	p->outstanding++;
	r->in_flight++;
	return op;
}

/* Every completion ends here: one outstanding operation fewer; maybe the next phase. */
static void op_done(struct op *op)
{
	struct reconciler *r = op->r;
	struct pass *p = op->pass;
	free(op);
	r->in_flight--;
	if (--p->outstanding == 0)
		pass_step(r, p);
}

/* ---- observe: Redis ---------------------------------------------------------------------- */

/*
 * One pipelined round trip per fleet: GET desired, GET publisher, then per stage (origin
 * first) SCARD viewers and GET draining. Replies arrive in order; a WRONGTYPE on SCARD means
 * the application stores the count as a STRING, which costs one more GET for that key.
 */
struct redis_read {
	struct op *op;
	unsigned pending;
	bool failed;
};

struct redis_reply_ctx {
	struct redis_read *rr;
	int kind;                                /* 0 desired, 1 publisher, 2 viewers, 3 draining, 4 viewers-as-string */
	struct obs_stage *stage;
};

static void redis_read_finish(struct redis_read *rr)
{
	struct op *op = rr->op;
	struct obs_fleet *f = &op->pass->fleets[op->fleet];
	if (rr->failed) {
		f->redis_ok = false;
		f->viewers_ok = false;
		op->pass->reads_failed++;
	}
	free(rr);
	op_done(op);
}

static void set_viewers_invalid(struct obs_fleet *f, struct obs_stage *s, const char *why)
{
	s->viewers_known = false;
	f->viewers_ok = false;
	if (f->viewers_error[0] == '\0')
		snprintf(f->viewers_error, sizeof(f->viewers_error), "%s: %s", s->arn, why);
}

static int redis_send(struct redis_reply_ctx *ctx, int argc, const char **argv);

static void on_redis_reply(void *ud, redisReply *reply, const char *error)
{
	struct redis_reply_ctx *ctx = ud;
	struct redis_read *rr = ctx->rr;
	struct obs_fleet *f = &rr->op->pass->fleets[rr->op->fleet];
	char err[STORE_ERR_MAX];

	if (reply == NULL) {
		(void)error;
		rr->failed = true;
		goto out;
	}
	switch (ctx->kind) {
	case 0: /* desired_stages override */
		if (reply->type == REDIS_REPLY_NIL) {
			f->override = PLAN_OVERRIDE_ABSENT;
		} else if (reply->type == REDIS_REPLY_STRING) {
			int v;
			if (store_parse_desired(reply->str, reply->len, &v, err, sizeof(err)) == 0) {
				f->override = PLAN_OVERRIDE_VALID;
				f->override_stages = (uint32_t)v;
			} else {
				f->override = PLAN_OVERRIDE_INVALID;
				snprintf(f->override_error, sizeof(f->override_error), "%s", err);
			}
		} else {
			f->override = PLAN_OVERRIDE_INVALID;
			snprintf(f->override_error, sizeof(f->override_error), "not a string value");
		}
		break;
	case 1: /* publisher:info */
		if (reply->type == REDIS_REPLY_STRING) {
			if (store_parse_publisher(reply->str, reply->len, &f->publisher, err,
						  sizeof(err)) == 0)
				f->publisher_present = true;
			else
				snprintf(f->publisher_error, sizeof(f->publisher_error), "%s", err);
		} else if (reply->type != REDIS_REPLY_NIL) {
			snprintf(f->publisher_error, sizeof(f->publisher_error), "not a string value");
		}
		break;
	case 2: /* SCARD viewers */
		if (reply->type == REDIS_REPLY_INTEGER && reply->integer >= 0) {
			ctx->stage->viewers_known = true;
			ctx->stage->viewers = (uint64_t)reply->integer;
		} else if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "WRONGTYPE", 9) == 0) {
			char key[KEY_MAX];
			const char *argv[2] = { "GET", key };
			struct redis_reply_ctx *again = malloc(sizeof(*again));
			if (again == NULL ||
			    config_expand_key(f->cfg->redis_keys.viewers, f->cfg->name,
					      ctx->stage->arn, key, sizeof(key)) < 0) {
				free(again);
				set_viewers_invalid(f, ctx->stage, "key too long");
				break;
			}
			*again = (struct redis_reply_ctx){ rr, 4, ctx->stage };
			if (redis_send(again, 2, argv) < 0)
				rr->failed = true;
		} else {
			set_viewers_invalid(f, ctx->stage, "unexpected reply to SCARD");
		}
		break;
	case 4: { /* viewers stored as a STRING integer */
		long long v;
		if (reply->type == REDIS_REPLY_STRING &&
		    store_parse_viewers(reply->str, reply->len, &v, err, sizeof(err)) == 0) {
			ctx->stage->viewers_known = true;
			ctx->stage->viewers = (uint64_t)v;
		} else if (reply->type == REDIS_REPLY_ERROR) {
			set_viewers_invalid(f, ctx->stage, "wrong type (neither a set nor an integer string)");
		} else {
			set_viewers_invalid(f, ctx->stage, reply->type == REDIS_REPLY_STRING ? err : "not an integer");
		}
		break;
	}
	case 3: /* draining mark */
		if (reply->type == REDIS_REPLY_STRING) {
			int64_t since;
			ctx->stage->draining = true;
			if (store_parse_draining(reply->str, reply->len, &since, err, sizeof(err)) == 0)
				ctx->stage->draining_since_ms = since;
			else
				ctx->stage->draining_since_ms = rr->op->pass->started_ms;
		}
		break;
	}
out:
	free(ctx);
	if (--rr->pending == 0)
		redis_read_finish(rr);
}

static int redis_send(struct redis_reply_ctx *ctx, int argc, const char **argv)
{
	struct reconciler *r = ctx->rr->op->r;
	if (redisio_command_argv(r->redis, argc, argv, NULL, on_redis_reply, ctx) < 0) {
		free(ctx);
		return -EIO;
	}
	ctx->rr->pending++;
	return 0;
}

static int redis_queue(struct redis_read *rr, int kind, struct obs_stage *stage, const char *cmd,
		       const char *key)
{
	struct redis_reply_ctx *ctx = malloc(sizeof(*ctx));
	const char *argv[2] = { cmd, key };
	if (ctx == NULL)
		return -ENOMEM;
	*ctx = (struct redis_reply_ctx){ rr, kind, stage };
	return redis_send(ctx, 2, argv);
}

static void observe_redis(struct reconciler *r, struct pass *p, size_t fi)
{
	struct obs_fleet *f = &p->fleets[fi];
	struct op *op = op_new(r, p, fi);
	struct redis_read *rr = calloc(1, sizeof(*rr));
	char key[KEY_MAX];
	int rc = 0;

	f->redis_ok = true;
	f->viewers_ok = true;
	if (op == NULL || rr == NULL) {
		free(rr);
		f->redis_ok = f->viewers_ok = false;
		if (op != NULL)
			op_done(op);
		return;
	}
	rr->op = op;
	rr->pending = 1;        /* held until every command is queued */
	if (r->redis == NULL || !redisio_connected(r->redis)) {
		rr->failed = true;
		goto done;
	}
	rc |= redis_queue(rr, 0, NULL, "GET", f->cfg->redis_keys.desired_stages);
	rc |= redis_queue(rr, 1, NULL, "GET", f->cfg->redis_keys.publisher);
	for (size_t i = 0; i <= f->n_replicas; i++) {
		struct obs_stage *s = i == 0 ? &f->origin : &f->replicas[i - 1];
		if (config_expand_key(f->cfg->redis_keys.viewers, f->cfg->name, s->arn, key,
				      sizeof(key)) < 0) {
			set_viewers_invalid(f, s, "viewers key too long");
			continue;
		}
		rc |= redis_queue(rr, 2, s, "SCARD", key);
		if (i > 0 && stage_key(r, "stage:", s->arn, ":draining", key, sizeof(key)) == 0)
			rc |= redis_queue(rr, 3, s, "GET", key);
	}
	if (rc != 0)
		rr->failed = true;
done:
	if (--rr->pending == 0)
		redis_read_finish(rr);
}

/* ---- observe: IVS ------------------------------------------------------------------------ */

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
	h->dest = calloc(list->n ? list->n : 1, sizeof(*h->dest));
	if (h->replications == NULL || h->dest == NULL) {
		h->replicas_ok = false;
		op->pass->reads_failed++;
		goto out;
	}
	for (size_t i = 0; i < list->n; i++) {
		const struct ivs_replica *rep = &list->items[i];
		if (rep->replication_state != IVS_REPLICATION_ACTIVE &&
		    rep->replication_state != IVS_REPLICATION_STOPPED)
			continue;
		snprintf(h->dest[h->n_replications], sizeof(h->dest[0]), "%s", rep->destination_stage_arn);
		h->replications[h->n_replications].destination_arn = h->dest[h->n_replications];
		h->replications[h->n_replications].state =
			rep->replication_state == IVS_REPLICATION_ACTIVE ? PLAN_REPLICATION_ACTIVE
									: PLAN_REPLICATION_STOPPED;
		h->n_replications++;
	}
	h->replicas_ok = true;
out:
	op_done(op);
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
		snprintf(h->user_id, sizeof(h->user_id), "%s", pt->user_id);
	}
	for (size_t i = 0; i < f->n_hosts; i++) {
		struct op *rop = op_new(r, op->pass, op->fleet);
		if (rop == NULL) {
			f->hosts[i].replicas_ok = false;
			continue;
		}
		rop->index = i;
		if (ivs_list_participant_replicas(r->aws, f->cfg->origin_stage_arn,
						  f->hosts[i].participant_id, on_replicas, rop) < 0) {
			f->hosts[i].replicas_ok = false;
			op->pass->reads_failed++;
			op_done(rop);
		}
	}
out:
	op_done(op);
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
	struct obs_stage *s = &f->replicas[f->n_replicas++];
	memset(s, 0, sizeof(*s));
	snprintf(s->arn, sizeof(s->arn), "%s", st->arn);
	snprintf(s->name, sizeof(s->name), "%s", st->name);
	s->created_ms = parse_iso_ms(ivs_stage_tag(st, TAG_CREATED));
	return 0;
}

static void on_stages(void *ud, const struct aws_error *err, const struct ivs_stage_list *list)
{
	struct op *op = ud;
	struct reconciler *r = op->r;
	struct pass *p = op->pass;

	if (err != NULL && err->kind != AWS_OK) {
		p->stages_ok = false;
		p->reads_failed++;
		snprintf(p->stages_error, sizeof(p->stages_error), "ListStages: %s %s",
			 aws_error_kind_name(err->kind), err->message);
		log_event(LOG_WARNING, NULL,
			  LOG_FIELDS("IVS_OPERATION", "ListStages", "AWS_REQUEST_ID", err->request_id),
			  "listing stages failed: %s %s", aws_error_kind_name(err->kind), err->message);
	} else {
		p->stages_ok = true;
		for (size_t i = 0; i < list->n; i++) {
			const struct ivs_stage *st = &list->items[i];
			const char *managed = ivs_stage_tag(st, TAG_MANAGED);
			const char *fleet = ivs_stage_tag(st, TAG_FLEET);
			for (size_t fi = 0; fi < p->n_fleets; fi++) {
				struct obs_fleet *f = &p->fleets[fi];
				if (strcmp(st->arn, f->cfg->origin_stage_arn) == 0) {
					f->origin_seen = true;
					snprintf(f->origin_session, sizeof(f->origin_session), "%s",
						 st->active_session_id);
				} else if (managed != NULL && strcmp(managed, "true") == 0 &&
					   fleet != NULL && strcmp(fleet, f->cfg->name) == 0) {
					if (obs_add_replica(f, st) < 0)
						p->stages_ok = false;
				}
			}
		}
	}
	for (size_t fi = 0; fi < p->n_fleets; fi++) {
		struct obs_fleet *f = &p->fleets[fi];
		observe_redis(r, p, fi);
		if (!p->stages_ok) {
			/* Without the origin's session there is no way to list hosts. */
			f->hosts_ok = false;
			continue;
		}
		if (!f->origin_seen || f->origin_session[0] == '\0') {
			f->hosts_ok = true;             /* no session: no hosts, truthfully */
			continue;
		}
		struct op *hop = op_new(r, p, fi);
		struct ivs_participant_filter filter = { .kind = IVS_FILTER_PUBLISHED, .published = true };
		if (hop == NULL)
			continue;
		if (ivs_list_participants(r->aws, f->cfg->origin_stage_arn, f->origin_session,
					  &filter, on_participants, hop) < 0) {
			f->hosts_ok = false;
			p->reads_failed++;
			op_done(hop);
		}
	}
	op_done(op);
}

static void pass_begin(struct reconciler *r)
{
	struct pass *p = calloc(1, sizeof(*p));
	struct op *op;

	if (p == NULL)
		return;
	p->fleets = calloc(r->config->n_fleets ? r->config->n_fleets : 1, sizeof(*p->fleets));
	if (p->fleets == NULL) {
		free(p);
		return;
	}
	p->n_fleets = r->config->n_fleets;
	p->id = ++r->next_pass_id;
	p->started_ms = wall_ms();
	p->started_us = mono_us();
	for (size_t i = 0; i < p->n_fleets; i++) {
		p->fleets[i].cfg = &r->config->fleets[i];
		snprintf(p->fleets[i].origin.arn, sizeof(p->fleets[i].origin.arn), "%s",
			 r->config->fleets[i].origin_stage_arn);
	}
	r->current = p;
	r->wake_pending = false;
	r->last_pass_start_us = p->started_us;
	log_debug("reconcile pass %" PRIu64 " begins", p->id);
	op = op_new(r, p, 0);
	if (op == NULL)
		return;
	/* Keep the pass open until ListStages answers. */
	if (ivs_list_stages(r->aws, on_stages, op) < 0) {
		struct aws_error e = { .kind = AWS_ERR_LOCAL };
		snprintf(e.message, sizeof(e.message), "could not queue the request");
		on_stages(op, &e, NULL);
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
	};
}

/*
 * Build the planner's input from an observation. The arrays live in *scratch (freed by the
 * caller with free()), strings point into the observation.
 */
struct plan_scratch {
	struct plan_replica_stage replicas[PLAN_MAX_REPLICA_STAGES];
	struct plan_host hosts[PLAN_MAX_HOSTS];
	struct plan_manual_replication manual[MAX_MANUAL];
};

static void plan_input_build(const struct reconciler *r, const struct pass *p,
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
	in->stages_ok = p->stages_ok && f->n_replicas <= PLAN_MAX_REPLICA_STAGES;
	in->hosts_ok = f->hosts_ok;
	in->viewers_ok = f->redis_ok && f->viewers_ok;
	in->override = f->override;
	in->override_stages = f->override_stages;
	fleet_policy_from_config(f->cfg, &in->policy);
}

/* ---- act --------------------------------------------------------------------------------- */

static void record_failure(struct op *op, const char *what, const struct aws_error *err)
{
	struct obs_fleet *f = &op->pass->fleets[op->fleet];
	char key[sizeof(((struct backoff_item *)0)->key)];
	char status[8];

	action_key(&op->action, f->cfg->name, key, sizeof(key));
	backoff_fail(op->r, key, wall_ms());
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

static void redis_fire_and_forget(struct reconciler *r, int argc, const char **argv);

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
		char now[40], rkey[KEY_MAX], *json;
		backoff_ok(r, key);
		op->pass->actions_done++;
		log_event(LOG_INFO, MSGID_REPLICATION_STARTED,
			  LOG_FIELDS("IVS_FLEET", f->cfg->name, "IVS_STAGE_ARN", dst,
				     "IVS_PARTICIPANT_ID", op->action.participant_id,
				     "IVS_OPERATION", "StartParticipantReplication"),
			  "replicating %s into %s", op->action.participant_id, dst);
		iso_time(wall_ms(), now, sizeof(now));
		json = store_format_replication(op->action.source_arn, dst, op->action.participant_id, now);
		if (json != NULL && stage_key(r, "replication:", dst, "", rkey, sizeof(rkey)) == 0) {
			const char *argv[3] = { "SET", rkey, json };
			redis_fire_and_forget(r, 3, argv);
		}
		free(json);
	} else if (err->kind == AWS_ERR_CONFLICT && strstr(err->message, "not publishing") != NULL) {
		/* The host went quiet between observe and act: retry on a later pass, quietly. */
		f->not_publishing++;
		backoff_fail(r, key, wall_ms());
		log_event(LOG_DEBUG, NULL, LOG_FIELDS("IVS_FLEET", f->cfg->name,
						      "IVS_PARTICIPANT_ID", op->action.participant_id),
			  "host %s is not publishing; replication deferred", op->action.participant_id);
	} else if (err->kind == AWS_ERR_QUOTA) {
		struct fleet_state *fs = fleet_state_find(r, f->cfg->name);
		backoff_fail(r, key, wall_ms());
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
	op_done(op);
}

static int start_replication(struct reconciler *r, struct pass *p, size_t fi,
			     const struct plan_action *a, const char *dst)
{
	struct obs_fleet *f = &p->fleets[fi];
	struct op *op = op_new(r, p, fi);
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
		op_done(op);
		return;
	}
	backoff_ok(r, key);
	op->pass->actions_done++;
	log_event(LOG_NOTICE, MSGID_STAGE_CREATED,
		  LOG_FIELDS("IVS_FLEET", f->cfg->name, "IVS_STAGE_ARN", stage->arn,
			     "IVS_OPERATION", "CreateStage"),
		  "created replica stage %s (%s) for fleet %s", stage->name, stage->arn, f->cfg->name);
	{
		char now[40], skey[KEY_MAX], *json;
		iso_time(wall_ms(), now, sizeof(now));
		json = store_format_stage_info(stage->arn, stage->name, now, f->cfg->origin_stage_arn);
		if (json != NULL && stage_key(r, "stage:", stage->arn, "", skey, sizeof(skey)) == 0) {
			const char *argv[3] = { "SET", skey, json };
			redis_fire_and_forget(r, 3, argv);
		}
		free(json);
	}
	if (f->n_created < PLAN_MAX_REPLICA_STAGES)
		snprintf(f->created[f->n_created++], sizeof(f->created[0]), "%s", stage->arn);
	/* Feed the new stage at once: the host list travelled with the create action. */
	snprintf(op->created_arn, sizeof(op->created_arn), "%s", stage->arn);
	for (size_t h = 0; h < op->action.n_hosts && !r->stopping; h++) {
		struct plan_action a = op->action;
		a.participant_id = op->action.hosts[h];
		a.source_arn = f->cfg->origin_stage_arn;
		a.stage_arn = NULL;
		start_replication(r, op->pass, op->fleet, &a, op->created_arn);
	}
	op_done(op);
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
	} else {
		struct pass *p = op->pass;
		struct pass_stop_failure *n = realloc(p->stop_failed, (p->n_stop_failed + 1) * sizeof(*n));
		if (n != NULL) {
			p->stop_failed = n;
			snprintf(n[p->n_stop_failed++].arn, sizeof(n->arn), "%s", op->action.stage_arn);
		}
		record_failure(op, "StopParticipantReplication", err);
	}
	op_done(op);
}

static void on_delete_done(void *ud, const struct aws_error *err)
{
	struct op *op = ud;
	struct reconciler *r = op->r;
	struct obs_fleet *f = &op->pass->fleets[op->fleet];

	if (err == NULL || err->kind == AWS_OK || err->kind == AWS_ERR_NOT_FOUND) {
		char k1[KEY_MAX], k2[KEY_MAX], k3[KEY_MAX];
		op->pass->actions_done++;
		log_event(LOG_NOTICE, MSGID_STAGE_DELETED,
			  LOG_FIELDS("IVS_FLEET", f->cfg->name, "IVS_STAGE_ARN", op->action.stage_arn,
				     "IVS_OPERATION", "DeleteStage"),
			  "deleted drained replica stage %s", op->action.stage_arn);
		if (stage_key(r, "stage:", op->action.stage_arn, "", k1, sizeof(k1)) == 0 &&
		    stage_key(r, "replication:", op->action.stage_arn, "", k2, sizeof(k2)) == 0 &&
		    stage_key(r, "stage:", op->action.stage_arn, ":draining", k3, sizeof(k3)) == 0) {
			const char *argv[4] = { "DEL", k1, k2, k3 };
			redis_fire_and_forget(r, 4, argv);
		}
	} else {
		record_failure(op, "DeleteStage", err);
	}
	op_done(op);
}

/* Redis writes whose outcome only matters for the next pass (which re-reads everything). */
static void on_redis_write(void *ud, redisReply *reply, const char *error)
{
	struct reconciler *r = ud;
	r->in_flight--;
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
		log_event(LOG_WARNING, NULL, NULL, "redis write failed: %s",
			  reply != NULL ? reply->str : (error ? error : "no reply"));
}

/*
 * The record phase's writes: the pass_done hook waits for their answers, so that --once exits
 * (and a stop finishes) only after Redis holds what the pass recorded.
 */
static void pass_done_hook(struct reconciler *r)
{
	r->hook_pending = false;
	if (r->hooks.pass_done != NULL)
		r->hooks.pass_done(r->hooks.ud, r->hook_ok);
}

static void on_record_write(void *ud, redisReply *reply, const char *error)
{
	struct reconciler *r = ud;
	on_redis_write(ud, reply, error);
	if (--r->record_writes == 0 && r->hook_pending)
		pass_done_hook(r);
}

static void redis_record_write(struct reconciler *r, int argc, const char **argv)
{
	if (r->redis == NULL || r->dry_run)
		return;
	if (!redisio_connected(r->redis)) {
		/* The pass already reported the outage (fail static); one line per write is noise. */
		log_debug("redis write of %s skipped (redis down)", argc > 1 ? argv[1] : argv[0]);
		return;
	}
	r->in_flight++;
	r->record_writes++;
	if (redisio_command_argv(r->redis, argc, argv, NULL, on_record_write, r) < 0) {
		r->in_flight--;
		r->record_writes--;
		log_event(LOG_WARNING, NULL, NULL, "redis write of %s not queued (redis down)",
			  argc > 1 ? argv[1] : argv[0]);
	}
}

static void redis_fire_and_forget(struct reconciler *r, int argc, const char **argv)
{
	if (r->redis == NULL || r->dry_run)
		return;
	r->in_flight++;
	if (redisio_command_argv(r->redis, argc, argv, NULL, on_redis_write, r) < 0) {
		r->in_flight--;
		log_event(LOG_WARNING, NULL, NULL, "redis write of %s not queued (redis down)",
			  argc > 1 ? argv[1] : argv[0]);
	}
}

/* MARK and UNMARK are Redis writes; the next pass reads the mark back. */
static void on_mark_done(void *ud, redisReply *reply, const char *error)
{
	struct op *op = ud;
	struct obs_fleet *f = &op->pass->fleets[op->fleet];
	bool mark = op->action.kind == PLAN_MARK_DRAINING;

	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		struct aws_error e = { .kind = AWS_ERR_LOCAL };
		snprintf(e.message, sizeof(e.message), "redis: %s",
			 reply != NULL ? reply->str : (error ? error : "no reply"));
		record_failure(op, mark ? "MarkDraining" : "UnmarkDraining", &e);
	} else {
		op->pass->actions_done++;
		log_event(LOG_NOTICE, mark ? MSGID_STAGE_DRAINING : NULL,
			  LOG_FIELDS("IVS_FLEET", f->cfg->name, "IVS_STAGE_ARN", op->action.stage_arn),
			  mark ? "draining replica stage %s (%s)" : "stage %s back in service (%s)",
			  op->action.stage_arn, op->action.reason);
	}
	op_done(op);
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
		struct ivs_kv tags[3 + CONFIG_MAX_TAGS];
		size_t nt = 0;
		int64_t now = wall_ms();
		op = op_new(r, p, fi);
		if (op == NULL)
			return;
		op->action = *a;
		iso_time(now, created, sizeof(created));
		snprintf(name, sizeof(name), "%.64s-replica-%" PRId64 "-%" PRIu64, f->cfg->name, now,
			 ++r->stage_seq);
		tags[nt++] = (struct ivs_kv){ TAG_MANAGED, "true" };
		tags[nt++] = (struct ivs_kv){ TAG_FLEET, f->cfg->name };
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
		op = op_new(r, p, fi);
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
		char key[KEY_MAX], since[32];
		op = op_new(r, p, fi);
		if (op == NULL)
			return;
		op->action = *a;
		snprintf(since, sizeof(since), "%" PRId64, p->started_ms);
		if (stage_key(r, "stage:", a->stage_arn, ":draining", key, sizeof(key)) < 0 ||
		    r->redis == NULL) {
			on_mark_done(op, NULL, "key too long");
			return;
		}
		const char *mark_argv[5] = { "SET", key, since, "NX", NULL };
		const char *unmark_argv[2] = { "DEL", key };
		if (a->kind == PLAN_MARK_DRAINING)
			rc = redisio_command_argv(r->redis, 4, mark_argv, NULL, on_mark_done, op);
		else
			rc = redisio_command_argv(r->redis, 2, unmark_argv, NULL, on_mark_done, op);
		if (rc < 0)
			on_mark_done(op, NULL, "redis is down");
		return;
	}
	case PLAN_DELETE_STAGE:
		return;  /* phase 2 */
	}
}

static bool stop_failed_for(const struct pass *p, const char *arn)
{
	for (size_t i = 0; i < p->n_stop_failed; i++)
		if (strcmp(p->stop_failed[i].arn, arn) == 0)
			return true;
	return false;
}

static void act_deletes(struct reconciler *r, struct pass *p)
{
	for (size_t fi = 0; fi < p->n_fleets; fi++) {
		struct obs_fleet *f = &p->fleets[fi];
		struct fleet_state *fs = fleet_state_find(r, f->cfg->name);
		if (f->plan == NULL || !may_mutate(r, fs))
			continue;
		for (size_t i = 0; i < f->plan->n_actions; i++) {
			const struct plan_action *a = &f->plan->actions[i];
			char key[sizeof(((struct backoff_item *)0)->key)];
			if (a->kind != PLAN_DELETE_STAGE)
				continue;
			action_key(a, f->cfg->name, key, sizeof(key));
			if (stop_failed_for(p, a->stage_arn) || backoff_blocked(r, key, wall_ms()))
				continue;
			struct op *op = op_new(r, p, fi);
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
}

static void log_fleet_decisions(struct reconciler *r, struct obs_fleet *f, struct fleet_state *fs)
{
	const struct plan_summary *s = &f->plan->summary;
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
	if (f->override == PLAN_OVERRIDE_INVALID)
		log_event(LOG_WARNING, NULL, LOG_FIELDS("IVS_FLEET", f->cfg->name),
			  "fleet %s: desired_stages override ignored: %s", f->cfg->name, f->override_error);
	if (f->publisher_error[0])
		log_event(LOG_WARNING, NULL, LOG_FIELDS("IVS_FLEET", f->cfg->name),
			  "fleet %s: publisher info ignored: %s", f->cfg->name, f->publisher_error);
	if (f->viewers_error[0])
		log_event(LOG_WARNING, NULL, LOG_FIELDS("IVS_FLEET", f->cfg->name),
			  "fleet %s: viewer count ignored: %s", f->cfg->name, f->viewers_error);
	(void)r;
}

static void pass_plan_and_act(struct reconciler *r, struct pass *p)
{
	int64_t now = wall_ms();

	for (size_t fi = 0; fi < p->n_fleets; fi++) {
		struct obs_fleet *f = &p->fleets[fi];
		struct fleet_state *fs = fleet_state_find(r, f->cfg->name);
		struct plan_scratch *scratch = malloc(sizeof(*scratch));
		struct plan_input in;
		int rc;

		f->plan = calloc(1, sizeof(*f->plan));
		if (scratch == NULL || f->plan == NULL || fs == NULL) {
			free(scratch);
			free(f->plan);
			f->plan = NULL;
			continue;
		}
		plan_input_build(r, p, f, scratch, &in);
		rc = plan_fleet(&in, &fs->policy, now, f->plan);
		free(scratch);
		if (rc < 0) {
			log_event(LOG_ERR, NULL, LOG_FIELDS("IVS_FLEET", f->cfg->name),
				  "fleet %s: planning failed: %s", f->cfg->name, strerror(-rc));
			free(f->plan);
			f->plan = NULL;
			p->actions_failed++;
			continue;
		}
		f->planned = true;
		log_fleet_decisions(r, f, fs);
		if (!may_mutate(r, fs))
			continue;
		for (size_t i = 0; i < f->plan->n_actions; i++) {
			const struct plan_action *a = &f->plan->actions[i];
			char key[sizeof(((struct backoff_item *)0)->key)];
			action_key(a, f->cfg->name, key, sizeof(key));
			if (a->kind != PLAN_DELETE_STAGE && backoff_blocked(r, key, now))
				continue;
			act_one(r, p, fi, a);
		}
	}
}

/* ---- record ------------------------------------------------------------------------------ */

static void record_fleet_redis(struct reconciler *r, const struct obs_fleet *f)
{
	const struct plan_output *o = f->plan;
	const char **argv;
	char (*scores)[24];
	size_t n = 0, cap;

	if (o == NULL || r->dry_run || r->redis == NULL)
		return;
	/* The open-stages ZSET, replaced atomically: MULTI; DEL; ZADD ...; EXEC. */
	cap = 2 + 2 * (o->n_open + f->n_created);
	argv = calloc(cap, sizeof(*argv));
	scores = calloc(o->n_open + f->n_created + 1, sizeof(*scores));
	if (argv == NULL || scores == NULL)
		goto out;
	{
		const char *multi[1] = { "MULTI" }, *exec[1] = { "EXEC" };
		const char *del[2] = { "DEL", f->cfg->redis_keys.open_stages };
		redis_record_write(r, 1, multi);
		redis_record_write(r, 2, del);
		if (o->n_open > 0) {
			argv[n++] = "ZADD";
			argv[n++] = f->cfg->redis_keys.open_stages;
			for (size_t i = 0; i < o->n_open; i++) {
				snprintf(scores[i], sizeof(scores[i]), "%" PRIu64, o->open[i].viewers);
				argv[n++] = scores[i];
				argv[n++] = o->open[i].arn;
			}
			for (size_t i = 0; i < f->n_created; i++) {
				argv[n++] = "0";
				argv[n++] = f->created[i];
			}
			redis_record_write(r, (int)n, argv);
		}
		redis_record_write(r, 1, exec);
	}
out:
	free(argv);
	free(scores);
}

/*
 * The records the application reads for every serving replica stage, written only when absent
 * (SET NX): a stage adopted after a crash, or a replication that IVS shows ACTIVE although its
 * StartParticipantReplication answer was never seen (the daemon died first), still gets its
 * stage:{arn} and replication:{dest} keys. Existing keys are the creation-time records, kept.
 */
static void record_fleet_keys(struct reconciler *r, const struct obs_fleet *f)
{
	char key[KEY_MAX], when[40];

	if (f->plan == NULL || r->dry_run || r->redis == NULL)
		return;
	for (size_t i = 0; i < f->n_replicas; i++) {
		const struct obs_stage *s = &f->replicas[i];
		char *json;
		if (s->draining)
			continue;
		iso_time(s->created_ms > 0 ? s->created_ms : wall_ms(), when, sizeof(when));
		json = store_format_stage_info(s->arn, s->name, when, f->cfg->origin_stage_arn);
		if (json != NULL && stage_key(r, "stage:", s->arn, "", key, sizeof(key)) == 0) {
			const char *argv[4] = { "SET", key, json, "NX" };
			redis_record_write(r, 4, argv);
		}
		free(json);
		for (size_t h = 0; h < f->n_hosts; h++) {
			const struct obs_host *host = &f->hosts[h];
			const struct plan_replication *rep = NULL;
			for (size_t k = 0; k < host->n_replications; k++)
				if (host->replications[k].state == PLAN_REPLICATION_ACTIVE &&
				    strcmp(host->replications[k].destination_arn, s->arn) == 0)
					rep = &host->replications[k];
			if (rep == NULL)
				continue;
			iso_time(wall_ms(), when, sizeof(when));
			json = store_format_replication(f->cfg->origin_stage_arn, s->arn,
							host->participant_id, when);
			if (json != NULL &&
			    stage_key(r, "replication:", s->arn, "", key, sizeof(key)) == 0) {
				const char *argv[4] = { "SET", key, json, "NX" };
				redis_record_write(r, 4, argv);
			}
			free(json);
			break;                  /* one record per destination, as the server kept it */
		}
	}
}

static void record_status_hash(struct reconciler *r, const struct pass *p)
{
	char key[KEY_MAX], at[40], passes[24], dur[24];
	if (r->dry_run || r->redis == NULL)
		return;
	snprintf(key, sizeof(key), "%sautoscaler:status", r->config->redis.key_prefix);
	iso_time(p->finished_ms, at, sizeof(at));
	snprintf(passes, sizeof(passes), "%" PRIu64, r->passes);
	snprintf(dur, sizeof(dur), "%" PRIu64, p->duration_us / 1000);
	const char *argv[] = { "HSET", key, "last_pass_at", at, "last_pass_result",
			       p->ok ? "ok" : "error", "last_pass_duration_ms", dur, "passes", passes,
			       "version", IVS_AUTOSCALER_VERSION, "leader", "true" };
	redis_record_write(r, (int)(sizeof(argv) / sizeof(argv[0])), argv);
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
		if (f->plan == NULL)
			continue;
		const struct plan_summary *s = &f->plan->summary;
		metric_set(m->desired_stages, fleet, s->desired_stages);
		metric_set(m->actual_stages, fleet, s->serving_stages);
		metric_set(m->replications_active, fleet, s->active_replications);
		metric_set(m->fleet_capped, fleet, s->capped);
		metric_set(m->fleet_fail_static, fleet, s->fail_static);
	}
}

static void pass_record(struct reconciler *r, struct pass *p)
{
	p->finished_ms = wall_ms();
	p->duration_us = mono_us() - p->started_us;
	p->ok = p->reads_failed == 0 && p->actions_failed == 0;
	r->passes++;
	if (p->ok)
		r->last_success_ms = p->finished_ms;
	for (size_t fi = 0; fi < p->n_fleets; fi++) {
		record_fleet_redis(r, &p->fleets[fi]);
		record_fleet_keys(r, &p->fleets[fi]);
	}
	record_status_hash(r, p);
	record_metrics(r, p);
	log_event(p->ok ? LOG_DEBUG : LOG_INFO, NULL, NULL,
		  "reconcile pass %" PRIu64 " %s in %" PRIu64 " ms (%u actions done, %u failed, %u "
		  "reads failed)", p->id, p->ok ? "ok" : "incomplete", p->duration_us / 1000,
		  p->actions_done, p->actions_failed, p->reads_failed);

	/* The pass becomes what the admin views show. */
	for (size_t i = 0; i < r->n_fleets; i++)
		r->fleets[i].last = NULL;
	for (size_t fi = 0; fi < p->n_fleets; fi++) {
		struct fleet_state *fs = fleet_state_find(r, p->fleets[fi].cfg->name);
		if (fs != NULL)
			fs->last = &p->fleets[fi];
	}
	pass_free(r->last);
	r->last = p;
	r->current = NULL;
	r->hook_ok = p->ok;
	if (r->record_writes == 0)
		pass_done_hook(r);
	else
		r->hook_pending = true;
	if (r->wake_pending && !r->stopping)
		sd_event_source_set_enabled(r->defer, SD_EVENT_ONESHOT);
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
}

/* Advance the pass to its next phase when everything of the current one has completed. */
static void pass_step(struct reconciler *r, struct pass *p)
{
	while (p->outstanding == 0) {
		switch (p->phase++) {
		case 0:
			if (r->stopping) {
				pass_abandon(r, p);
				return;
			}
			pass_plan_and_act(r, p);
			break;
		case 1:
			if (!r->stopping)
				act_deletes(r, p);
			break;
		case 2:
			pass_record(r, p);
			return;
		default:
			return;
		}
	}
}

/* ---- wake-ups ---------------------------------------------------------------------------- */

static uint64_t jittered_interval_us(const struct reconciler *r)
{
	uint64_t base = r->config->reconcile.resync_interval_ms * 1000u;
	double jitter = ((double)random() / (double)RAND_MAX) * 0.2 - 0.1;   /* ±10 % */
	return (uint64_t)((double)base * (1.0 + jitter));
}

static int on_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct reconciler *r = ud;
	(void)usec;
	sd_event_source_set_time_relative(s, jittered_interval_us(r));
	sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	reconciler_wake(r, "resync");
	return 0;
}

static int on_defer(sd_event_source *s, void *ud)
{
	struct reconciler *r = ud;
	(void)s;
	if (r->current == NULL && !r->stopping)
		pass_begin(r);
	return 0;
}

void reconciler_wake(struct reconciler *r, const char *reason)
{
	if (r->stopping)
		return;
	log_debug("wake: %s", reason ? reason : "?");
	r->wake_pending = true;
	if (r->current == NULL)
		sd_event_source_set_enabled(r->defer, SD_EVENT_ONESHOT);
}

static int on_debounce(sd_event_source *s, uint64_t usec, void *ud)
{
	(void)s; (void)usec;
	reconciler_wake(ud, "keyspace");
	return 0;
}

#define DEBOUNCE_US 1000000u

void reconciler_wake_debounced(struct reconciler *r, const char *reason)
{
	uint64_t now = mono_us(), due = r->last_pass_start_us + DEBOUNCE_US;
	int enabled = SD_EVENT_OFF;

	if (r->stopping)
		return;
	if (now >= due && r->current == NULL) {
		reconciler_wake(r, reason);
		return;
	}
	if (r->debounce != NULL && sd_event_source_get_enabled(r->debounce, &enabled) >= 0 &&
	    enabled != SD_EVENT_OFF)
		return;
	if (r->debounce == NULL) {
		if (sd_event_add_time_relative(r->event, &r->debounce, CLOCK_MONOTONIC,
					       now >= due ? 1 : due - now, 10000, on_debounce, r) < 0)
			return;
		sd_event_source_set_description(r->debounce, "keyspace-debounce");
	} else {
		sd_event_source_set_time_relative(r->debounce, now >= due ? 1 : due - now);
		sd_event_source_set_enabled(r->debounce, SD_EVENT_ONESHOT);
	}
}

int reconciler_start(struct reconciler *r)
{
	int rc = sd_event_add_time_relative(r->event, &r->timer, CLOCK_MONOTONIC,
					    jittered_interval_us(r), 10000, on_timer, r);
	if (rc < 0)
		return rc;
	sd_event_source_set_description(r->timer, "resync");
	reconciler_wake(r, "start");
	return 0;
}

bool reconciler_idle(const struct reconciler *r)
{
	return r->current == NULL && r->in_flight == 0;
}

bool reconciler_stop(struct reconciler *r)
{
	r->stopping = true;
	if (r->timer != NULL)
		sd_event_source_set_enabled(r->timer, SD_EVENT_OFF);
	return reconciler_idle(r);
}

void reconciler_set_redis_up(struct reconciler *r, bool up)
{
	r->redis_up = up;
	if (r->metrics != NULL)
		metric_set(r->metrics->redis_up, NULL, up ? 1 : 0);
}

/* ---- life cycle ---------------------------------------------------------------------------- */

static int fleets_from_config(struct reconciler *r, const struct config *config)
{
	struct fleet_state *n = calloc(config->n_fleets ? config->n_fleets : 1, sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < config->n_fleets; i++) {
		struct fleet_state *old = r->fleets ? fleet_state_find(r, config->fleets[i].name) : NULL;
		if (old != NULL)
			n[i] = *old;           /* keep history, pause state */
		snprintf(n[i].name, sizeof(n[i].name), "%s", config->fleets[i].name);
		n[i].last = NULL;
	}
	free(r->fleets);
	r->fleets = n;
	r->n_fleets = config->n_fleets;
	return 0;
}

struct reconciler *reconciler_new(sd_event *event, const struct config *config,
				  struct aws_client *aws, struct redisio *redis,
				  struct ivs_metrics *metrics, bool dry_run,
				  const struct reconciler_hooks *hooks)
{
	struct reconciler *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->event = event;
	r->config = config;
	r->aws = aws;
	r->redis = redis;
	r->metrics = metrics;
	r->dry_run = dry_run;
	if (hooks != NULL)
		r->hooks = *hooks;
	srandom((unsigned)(mono_us() ^ (uint64_t)getpid()));
	if (fleets_from_config(r, config) < 0 ||
	    sd_event_add_defer(event, &r->defer, on_defer, r) < 0) {
		reconciler_free(r);
		return NULL;
	}
	sd_event_source_set_description(r->defer, "reconcile-wake");
	sd_event_source_set_enabled(r->defer, SD_EVENT_OFF);
	return r;
}

void reconciler_free(struct reconciler *r)
{
	if (r == NULL)
		return;
	sd_event_source_disable_unref(r->timer);
	sd_event_source_disable_unref(r->defer);
	sd_event_source_disable_unref(r->debounce);
	/* A pass still running here means the AWS client was cancelled first; its ops are gone. */
	pass_free(r->current);
	pass_free(r->last);
	free(r->fleets);
	free(r);
}

int reconciler_set_config(struct reconciler *r, const struct config *config)
{
	/* The running pass keeps pointers into the old config: callers swap only when idle. */
	int rc = fleets_from_config(r, config);
	if (rc < 0)
		return rc;
	r->config = config;
	/* The last observation refers to the old config's fleets: drop it. */
	pass_free(r->last);
	r->last = NULL;
	reconciler_wake(r, "reload");
	return 0;
}

bool reconciler_has_fleet(const struct reconciler *r, const char *fleet)
{
	return fleet_state_find(r, fleet) != NULL;
}

int reconciler_pause(struct reconciler *r, const char *fleet, bool paused)
{
	bool found = false;
	for (size_t i = 0; i < r->n_fleets; i++) {
		if (fleet == NULL || strcmp(r->fleets[i].name, fleet) == 0) {
			r->fleets[i].paused = paused;
			found = true;
		}
	}
	if (!found)
		return -ENOENT;
	if (!paused)
		reconciler_wake(r, "resume");
	return 0;
}

/* An operator-requested drain is an ordinary draining mark; the planner does the rest. */
int reconciler_drain(struct reconciler *r, const char *stage_arn, char *err, size_t errlen)
{
	char key[KEY_MAX], since[32];
	bool owned = false;

	if (r->last != NULL) {
		for (size_t fi = 0; fi < r->last->n_fleets && !owned; fi++) {
			const struct obs_fleet *f = &r->last->fleets[fi];
			for (size_t i = 0; i < f->n_replicas; i++)
				if (strcmp(f->replicas[i].arn, stage_arn) == 0)
					owned = true;
		}
	}
	if (!owned) {
		snprintf(err, errlen, "%s is not a replica stage this daemon owns (origin and "
			 "unowned stages are never drained)", stage_arn);
		return -EPERM;
	}
	if (stage_key(r, "stage:", stage_arn, ":draining", key, sizeof(key)) < 0) {
		snprintf(err, errlen, "stage ARN too long");
		return -EINVAL;
	}
	if (r->redis == NULL || !redisio_connected(r->redis)) {
		snprintf(err, errlen, "redis is not connected; try again");
		return -EAGAIN;
	}
	snprintf(since, sizeof(since), "%" PRId64, wall_ms());
	const char *argv[5] = { "SET", key, since, "NX", NULL };
	redis_fire_and_forget(r, 4, argv);
	reconciler_wake(r, "drain");
	return 0;
}

static void on_manual_done(void *ud, const struct aws_error *err)
{
	struct reconciler *r = ud;
	r->in_flight--;
	if (err != NULL && err->kind != AWS_OK && err->kind != AWS_ERR_NOT_FOUND)
		log_event(LOG_WARNING, NULL, NULL, "manual replication request failed: %s %s",
			  aws_error_kind_name(err->kind), err->message);
	else
		log_event(LOG_NOTICE, NULL, NULL, "manual replication request done");
	reconciler_wake(r, "manual replication");
}

static const struct obs_fleet *fleet_of_origin(const struct reconciler *r, const char *origin,
					       const struct fleet_state **fs_out)
{
	for (size_t i = 0; i < r->n_fleets; i++) {
		const struct obs_fleet *f = r->fleets[i].last;
		if (f != NULL && strcmp(f->cfg->origin_stage_arn, origin) == 0) {
			*fs_out = &r->fleets[i];
			return f;
		}
	}
	return NULL;
}

int reconciler_replication(struct reconciler *r, bool start, const char *src, const char *dst,
			   const char *participant, char *err, size_t errlen)
{
	size_t i;
	int rc;

	if (!store_is_stage_arn(src, strlen(src)) || !store_is_stage_arn(dst, strlen(dst)) ||
	    strlen(participant) > IVS_PARTICIPANT_ID_MAX || participant[0] == '\0') {
		snprintf(err, errlen, "expected SRC_STAGE_ARN DST_STAGE_ARN PARTICIPANT_ID");
		return -EINVAL;
	}
	for (i = 0; i < r->n_manual; i++)
		if (strcmp(r->manual[i].src, src) == 0 && strcmp(r->manual[i].dst, dst) == 0 &&
		    strcmp(r->manual[i].participant, participant) == 0)
			break;
	if (start) {
		if (i == r->n_manual) {
			if (r->n_manual == MAX_MANUAL) {
				snprintf(err, errlen, "too many manual replications (%d)", MAX_MANUAL);
				return -ENOSPC;
			}
			snprintf(r->manual[i].src, sizeof(r->manual[i].src), "%s", src);
			snprintf(r->manual[i].dst, sizeof(r->manual[i].dst), "%s", dst);
			snprintf(r->manual[i].participant, sizeof(r->manual[i].participant), "%s", participant);
			r->n_manual++;
		}
		r->in_flight++;
		rc = ivs_start_participant_replication(r->aws, src, dst, participant, 0, NULL, 0,
						       on_manual_done, r);
	} else {
		/* Refuse to undo what the controller wants, unless the fleet is paused. */
		const struct fleet_state *fs = NULL;
		const struct obs_fleet *f = fleet_of_origin(r, src, &fs);
		if (i == r->n_manual && f != NULL && !fs->paused) {
			for (size_t s = 0; s < f->n_replicas; s++) {
				if (strcmp(f->replicas[s].arn, dst) == 0 && !f->replicas[s].draining) {
					snprintf(err, errlen, "fleet %s feeds %s by design; pause the fleet "
						 "first (pause %s) or drain the stage", f->cfg->name, dst,
						 f->cfg->name);
					return -EPERM;
				}
			}
		}
		if (i < r->n_manual)
			r->manual[i] = r->manual[--r->n_manual];
		r->in_flight++;
		rc = ivs_stop_participant_replication(r->aws, src, dst, participant, on_manual_done, r);
	}
	if (rc < 0) {
		r->in_flight--;
		snprintf(err, errlen, "could not queue the request: %s", strerror(-rc));
		return rc;
	}
	return 0;
}

/* ---- views ------------------------------------------------------------------------------- */

static json_t *fleet_summary_json(const struct reconciler *r, const struct fleet_state *fs)
{
	const struct obs_fleet *f = fs->last;
	json_t *o = json_pack("{s:s, s:b}", "name", fs->name, "paused", fs->paused);
	size_t idx = fleet_index(r, fs->name);
	if (idx != SIZE_MAX)
		json_object_set_new(o, "origin", json_string(r->config->fleets[idx].origin_stage_arn));
	if (f == NULL || f->plan == NULL) {
		json_object_set_new(o, "observed", json_false());
		return o;
	}
	const struct plan_summary *s = &f->plan->summary;
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
	if (f->override_error[0])
		json_object_set_new(o, "override_error", json_string(f->override_error));
	if (f->publisher_error[0])
		json_object_set_new(o, "publisher_error", json_string(f->publisher_error));
	if (f->viewers_error[0])
		json_object_set_new(o, "viewers_error", json_string(f->viewers_error));
	json_object_set_new(o, "actions_failed", json_integer(f->actions_failed));
	json_object_set_new(o, "hosts_not_publishing", json_integer(f->not_publishing));
	return o;
}

json_t *reconciler_status_json(const struct reconciler *r)
{
	json_t *o = json_object(), *fleets = json_array();
	char at[40] = "";
	if (r->last != NULL)
		iso_time(r->last->finished_ms, at, sizeof(at));
	json_object_set_new(o, "version", json_string(IVS_AUTOSCALER_VERSION));
	json_object_set_new(o, "leader", json_true());
	json_object_set_new(o, "dry_run", json_boolean(r->dry_run));
	json_object_set_new(o, "passes", json_integer((json_int_t)r->passes));
	json_object_set_new(o, "pass_running", json_boolean(r->current != NULL));
	json_object_set_new(o, "redis_connected", json_boolean(r->redis_up));
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
	for (size_t i = 0; i < r->n_fleets; i++)
		json_array_append_new(fleets, fleet_summary_json(r, &r->fleets[i]));
	json_object_set_new(o, "fleets", fleets);
	return o;
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
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b}", "fleet", f->cfg->name, "arn", s->arn,
			      "name", s->name, "role", role, "draining", s->draining);
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

static json_t *plan_json(const struct obs_fleet *f, const struct plan_output *o)
{
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
	return json_pack("{s:s, s:i, s:i, s:b, s:b, s:o}", "fleet", f->cfg->name, "desired",
			 o->summary.desired_stages, "serving", o->summary.serving_stages,
			 "capped", o->summary.capped, "fail_static", o->summary.fail_static,
			 "actions", acts);
}

/* What the next pass would do, computed now on the last observation, without acting. */
json_t *reconciler_plan_json(const struct reconciler *r, const char *fleet)
{
	json_t *a = json_array();
	if (r->last == NULL)
		return a;
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
			plan_input_build(r, r->last, f, scratch, &in);
			if (plan_fleet(&in, &history, wall_ms(), out) == 0)
				json_array_append_new(a, plan_json(f, out));
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
		json_t *o = json_pack("{s:s, s:b}", "fleet", f->cfg->name, "hasPublisher",
				      f->publisher_present);
		if (f->publisher_present)
			json_object_set_new(o, "publisherInfo", json_pack("{s:s, s:s, s:s, s:s}",
				"participantId", f->publisher.participant_id,
				"stageArn", f->publisher.stage_arn, "userId", f->publisher.user_id,
				"joinedAt", f->publisher.joined_at));
		else
			json_object_set_new(o, "publisherInfo", json_null());
		if (f->publisher_error[0])
			json_object_set_new(o, "error", json_string(f->publisher_error));
		/* What IVS says: is the stored participant publishing in the origin right now? */
		bool live = false;
		json_t *hosts = json_array();
		for (size_t h = 0; h < f->n_hosts; h++) {
			json_array_append_new(hosts, json_pack("{s:s, s:s}", "participantId",
				f->hosts[h].participant_id, "userId", f->hosts[h].user_id));
			if (f->publisher_present &&
			    strcmp(f->hosts[h].participant_id, f->publisher.participant_id) == 0)
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
					"sourceStageArn", f->cfg->origin_stage_arn,
					"destStageArn", rep->destination_arn,
					"participantId", f->hosts[h].participant_id,
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
	for (size_t i = 0; i < r->n_fleets && used < len; i++) {
		const struct obs_fleet *f = r->fleets[i].last;
		int n;
		if (f == NULL || f->plan == NULL)
			n = snprintf(buf + used, len - used, "%s%s: not observed yet", i ? "; " : "",
				     r->fleets[i].name);
		else
			n = snprintf(buf + used, len - used, "%s%s: %u/%u stages, %u/%u replicas%s%s%s",
				     i ? "; " : "", r->fleets[i].name, f->plan->summary.serving_stages,
				     f->plan->summary.desired_stages, f->plan->summary.active_replications,
				     f->plan->summary.expected_replications,
				     f->plan->summary.capped ? ", capped" : "",
				     f->plan->summary.fail_static ? ", fail-static" : "",
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
	for (size_t fi = 0; fi < r->last->n_fleets; fi++) {
		const struct obs_fleet *f = &r->last->fleets[fi];
		if (f->plan == NULL) {
			fprintf(out, "fleet %s: no plan\n", f->cfg->name);
			continue;
		}
		const struct plan_summary *s = &f->plan->summary;
		fprintf(out, "fleet %s: desired %u stages, serving %u, draining %u, hosts %u%s%s\n",
			f->cfg->name, s->desired_stages, s->serving_stages, s->draining_stages,
			s->hosts, s->capped ? ", capped" : "", s->fail_static ? ", fail-static" : "");
		for (size_t i = 0; i < f->plan->n_actions; i++) {
			const struct plan_action *a = &f->plan->actions[i];
			fprintf(out, "  %s%s%s%s%s (%s)\n", plan_action_kind_name(a->kind),
				a->stage_arn ? " " : "", a->stage_arn ? a->stage_arn : "",
				a->participant_id ? " participant " : "",
				a->participant_id ? a->participant_id : "", a->reason ? a->reason : "");
		}
	}
}
