/*
 * reconcile.h — the reconcile loop: observe → plan → act → record, per fleet.
 *
 * Passes: a wake-up names fleets (or all) and starts a targeted pass over them, whose calls go
 * first in each operation's budget; the resync walks every fleet at a steady pace
 * (aws.resync_share x max_tps), one round per resync_interval or back to back when the fleets
 * need longer. Passes run side by side; one fleet is in at most one pass at a time (a wake-up
 * for it meanwhile makes exactly one more pass follow).
 *
 * A pass is a small state machine driven by completions on the daemon's sd-event loop:
 *   observe: ListStages (all pages) → per fleet, in parallel: the Redis read (viewers,
 *            overrides, draining marks) and, when the origin has a session, ListParticipants
 *            (published) → ListParticipantReplicas per host;
 *   plan:    plan_fleet() per fleet (pure, common/plan.c);
 *   act:     every action of every fleet concurrently (the AWS client holds them to the
 *            per-operation rate budget); stops before deletes; per-item exponential backoff;
 *   record:  Redis write-backs, metrics, the snapshot the admin commands read, a log line.
 * Events (timer, Redis wake-ups, admin "reconcile") only start a pass; every pass re-reads
 * everything. Nothing here blocks.
 */
#ifndef IVS_RECONCILE_H
#define IVS_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <systemd/sd-event.h>

struct aws_client;
struct config;
struct ivs_metrics;
struct leader;
struct redisio;
struct reconciler;

struct reconciler_hooks {
	/* Called at the end of every pass (ok = no read failed and no action failed). */
	void (*pass_done)(void *ud, bool ok);
	void *ud;
	/*
	 * Called from the event loop (never from inside another callback) after the reconciler
	 * went idle: no pass running and no AWS call or Redis write owed to it. May be NULL. A
	 * stop or a config swap waits for this; check reconciler_idle() again when it comes.
	 */
	void (*idle)(void *ud);
};

struct reconciler *reconciler_new(sd_event *event, const struct config *config,
				  struct aws_client *aws, struct redisio *redis,
				  struct ivs_metrics *metrics, bool dry_run,
				  const struct reconciler_hooks *hooks);
void reconciler_free(struct reconciler *r);

/* A new configuration (after SIGHUP); fleets are matched by name, state is kept. */
int reconciler_set_config(struct reconciler *r, const struct config *config);

/* A pass over every fleet now (each fleet right after its running pass, if any). */
void reconciler_wake(struct reconciler *r, const char *reason);
/* A pass over one fleet (NULL or "": all). 0, or -ENOENT (no such fleet). */
int reconciler_wake_fleet(struct reconciler *r, const char *fleet, const char *reason);
/*
 * Like reconciler_wake_fleet for fleet (configuration index; SIZE_MAX: all), but at most one
 * targeted pass per second over the fleets changed meanwhile (keyspace events can be many).
 */
void reconciler_wake_debounced(struct reconciler *r, size_t fleet, const char *reason);
/* Arm the periodic resync timer (jittered); the first pass starts at once. */
int reconciler_start(struct reconciler *r);
/*
 * A new configuration waits for the reconciler to be idle: start no pass (wake-ups are kept)
 * and let the resync walk end early, until reconciler_set_config.
 */
void reconciler_hold(struct reconciler *r);
/* No new passes or actions; true once nothing is in flight. */
bool reconciler_stop(struct reconciler *r);
/* --once / --dry-run: run the first pass only; wakes after it start nothing. */
void reconciler_one_pass(struct reconciler *r);
bool reconciler_idle(const struct reconciler *r);

void reconciler_set_redis_up(struct reconciler *r, bool up);
/* Became the leader (ha.enabled): read the admin state kept in Redis again, replacing memory. */
void reconciler_reread_admin_state(struct reconciler *r);
/* The AWS region in use (resolved from the config, environment or profile), for messages. */
void reconciler_set_region(struct reconciler *r, const char *region);
/* The leader lease (ha.enabled); NULL = always the leader. Not owned. */
void reconciler_set_leader(struct reconciler *r, struct leader *leader);
/*
 * 0 when this daemon leads; else -EBUSY with "not the leader (leader: <instance>)" in err.
 * Mutating admin commands ask this first.
 */
int reconciler_check_leader(const struct reconciler *r, char *err, size_t errlen);

/* Admin steering. 0, or -ENOENT (no such fleet / stage), -EINVAL, -EPERM (with err). */
int reconciler_pause(struct reconciler *r, const char *fleet, bool paused);
int reconciler_drain(struct reconciler *r, const char *stage_arn, char *err, size_t errlen);
int reconciler_replication(struct reconciler *r, bool start, const char *src, const char *dst,
			   const char *participant, char *err, size_t errlen);

/* Views for the admin socket: new references built from the last observation. */
/* The status without its "fleets" member, which is made one fleet at a time (the admin socket
 * streams it: a status of hundreds of fleets is large). */
json_t *reconciler_status_json(const struct reconciler *r);
size_t reconciler_n_fleets(const struct reconciler *r);
json_t *reconciler_fleet_json(const struct reconciler *r, size_t i);   /* i < n_fleets */
json_t *reconciler_fleets_json(const struct reconciler *r);
json_t *reconciler_stages_json(const struct reconciler *r, const char *fleet);
json_t *reconciler_replicas_json(const struct reconciler *r, const char *fleet);
json_t *reconciler_plan_json(const struct reconciler *r, const char *fleet);
json_t *reconciler_publisher_json(const struct reconciler *r, const char *fleet);
json_t *reconciler_replication_status_json(const struct reconciler *r, const char *stage_arn);
bool reconciler_has_fleet(const struct reconciler *r, const char *fleet);
/* The fleet (configuration index) whose origin or replica stage arn is, as last observed;
 * SIZE_MAX when none. */
size_t reconciler_fleet_of_stage(const struct reconciler *r, const char *arn);

/* "resync period 40 s: 300 fleets at 2 observation calls/s (...)" when the resync takes longer
 * than resync_interval, else "". */
void reconciler_resync_line(const struct reconciler *r, char *buf, size_t len);
/* One line for sd_notify STATUS=. */
void reconciler_status_line(const struct reconciler *r, char *buf, size_t len);
/* The plans of the last pass as text (for --dry-run). */
void reconciler_print_plan(const struct reconciler *r, FILE *f);

#endif
