/*
 * leader.h — leader election for ha.enabled: drives the lease state machine (common/lease.h)
 * over the daemon's Redis command link (redisio), on an sd-event timer.
 *
 * leader_may_mutate() is what rec_may_mutate() and the AWS client's send gate ask: true only
 * while this daemon holds the lease and the renew deadline has not passed, read from the
 * monotonic clock at the moment of the question (not from the last timer), so a process that
 * was stopped (SIGSTOP, a long pause) starts no mutating call when it runs again.
 *
 * A NULL struct leader means "HA off": this daemon is always the leader.
 */
#ifndef IVS_LEADER_H
#define IVS_LEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "lease.h"

struct config;
struct redisio;
struct leader;

struct leader_hooks {
	/*
	 * The role changed (change != LEASE_UNCHANGED), or the first acquire that reached Redis
	 * answered (LEASE_UNCHANGED, once: the role is now known). From the loop; may be NULL.
	 */
	void (*changed)(void *ud, enum lease_change change);
	void *ud;
};

/* Starts trying to acquire at once. NULL on ENOMEM or an sd-event failure. */
struct leader *leader_new(sd_event *event, struct redisio *redis, const struct config *config,
			  const struct leader_hooks *hooks);
/* Call after redisio_free() (which answers pending commands) or before it with none pending. */
void leader_free(struct leader *l);

bool leader_may_mutate(const struct leader *l);
bool leader_is_leader(const struct leader *l);
/* The instance holding the lease as last seen ("" = none or unknown); ours when leading. */
void leader_holder(const struct leader *l, char *buf, size_t size);
/* Wall-clock ms at which our right to mutate ends; 0 when not leading. */
int64_t leader_deadline_wall_ms(const struct leader *l);
uint64_t leader_transitions(const struct leader *l);
const char *leader_instance(const struct leader *l);

/* The command link came up: try at once rather than at the next retry. */
void leader_redis_up(struct leader *l);

/*
 * Stopping: step down now, then delete the key if it may be ours (compare-and-delete).
 * Returns 1 when a release was sent (done runs once it is answered or fails), 0 when there was
 * nothing to release (done is not called).
 */
int leader_release(struct leader *l, void (*done)(void *ud), void *ud);

#endif
