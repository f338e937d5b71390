/*
 * lease.h — the leader lease as a pure state machine (no clock, no I/O): the caller passes the
 * monotonic time into every call and performs the Redis requests this module asks for.
 *
 * The protocol (the single-instance Redis lock, with client-go's timings):
 *   acquire  SET <key> <instance>:<random> NX PX <lease_duration>; when that answers nil, the
 *            caller GETs the key and reports the holder's value;
 *   renew    every retry_period, a script that PEXPIREs the key only while it still holds our
 *            value (answers 1) and otherwise answers 0;
 *   release  a script that DELetes the key only while it holds our value (on SIGTERM).
 *
 * The right to mutate ends at (send time of the last successful acquire or renewal +
 * renew_deadline). Redis starts its TTL when it runs the command, which is after the send
 * time, so with renew_deadline < lease_duration the leader stops at least
 * lease_duration - renew_deadline before anyone else can acquire (as long as the clocks of
 * this host and of Redis run at about the same rate). A renewal whose outcome is unknown
 * (timeout, link down, error reply) counts as failed: it does not move the deadline. A
 * renewal answered 0 (the key expired or holds another value) loses the lease at once.
 *
 * A candidate whose acquire finds its own value in the key (an acquire whose answer was lost,
 * or a leader that passed its deadline while Redis was unreachable) renews it: only a
 * successful renewal, with a known send time, makes it the leader again.
 */
#ifndef IVS_LEASE_H
#define IVS_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LEASE_INSTANCE_MAX 64
#define LEASE_RANDOM_MAX   32
#define LEASE_VALUE_MAX    (LEASE_INSTANCE_MAX + 1 + LEASE_RANDOM_MAX)

enum lease_role { LEASE_CANDIDATE, LEASE_LEADER };

enum lease_request { LEASE_REQ_NONE, LEASE_REQ_ACQUIRE, LEASE_REQ_RENEW, LEASE_REQ_RELEASE };

enum lease_outcome {
	LEASE_OUTCOME_OK,        /* SET answered OK; the renew or release script answered 1 */
	LEASE_OUTCOME_REFUSED,   /* SET answered nil; a script answered 0 (not ours) */
	LEASE_OUTCOME_UNKNOWN,   /* no usable answer: timeout, link down, an error reply */
};

/* What a call changed, for logs, metrics and the reconciler. */
enum lease_change {
	LEASE_UNCHANGED,
	LEASE_BECAME_LEADER,
	LEASE_LOST_DEADLINE,     /* no successful renewal within renew_deadline */
	LEASE_LOST_TAKEN,        /* a renewal found the key gone or holding another value */
	LEASE_RELEASED,          /* lease_release_begin: we stepped down */
};

struct lease_timing {
	uint64_t duration_us;
	uint64_t renew_deadline_us;
	uint64_t retry_period_us;
};

struct lease {
	struct lease_timing timing;
	char instance[LEASE_INSTANCE_MAX + 1];
	char value[LEASE_VALUE_MAX + 1];     /* ours: "<instance>:<random>"; "" until the first acquire */
	char holder[LEASE_VALUE_MAX + 1];    /* the value last seen in Redis; "" = none or unknown */
	enum lease_role role;
	enum lease_request in_flight;        /* LEASE_REQ_NONE when nothing is outstanding */
	uint64_t sent_us;                    /* send time of in_flight */
	uint64_t valid_until_us;             /* leader: last good send + renew_deadline */
	uint64_t next_us;                    /* when the next request is due */
	bool renew_own;                      /* a candidate saw its own value: renew, do not SET */
	bool new_value;                      /* the next acquire draws a new random */
	bool released;                       /* stepped down for good (stopping) */
	uint64_t transitions;                /* changes of role */
};

/* Candidate, first acquire due at now_us. instance is truncated to LEASE_INSTANCE_MAX. */
void lease_init(struct lease *l, const struct lease_timing *timing, const char *instance,
		uint64_t now_us);

/*
 * Step down when the deadline passed. Call before acting on the role (lease_may_mutate does
 * not change state; this does). Returns LEASE_LOST_DEADLINE once, else LEASE_UNCHANGED.
 */
enum lease_change lease_tick(struct lease *l, uint64_t now_us);

/* The request due now (LEASE_REQ_NONE while one is outstanding, stepped down, or not yet). */
enum lease_request lease_due(const struct lease *l, uint64_t now_us);

/*
 * The request is being sent now. For LEASE_REQ_ACQUIRE without a value yet (or after a loss),
 * random (hex, at most LEASE_RANDOM_MAX characters) makes the new value. Returns the value to
 * send (SET's value, the scripts' ARGV[1]).
 */
const char *lease_begin(struct lease *l, enum lease_request req, const char *random,
			uint64_t now_us);

/*
 * The outstanding request answered. holder: after an acquire was refused, the key's value as
 * read (NULL or "" = none or unknown). Returns what changed.
 */
enum lease_change lease_done(struct lease *l, enum lease_outcome outcome, const char *holder,
			     uint64_t now_us);

/*
 * Stopping: step down at once (no mutating call may start after this), and say whether a
 * release should be sent (we may hold the key). Later lease_due() answers NONE for good.
 */
bool lease_release_begin(struct lease *l, enum lease_change *change);

/* May a mutating call start now? Leader and before the deadline. */
bool lease_may_mutate(const struct lease *l, uint64_t now_us);

/* When the caller should look again (a request due, or the deadline); UINT64_MAX = never. */
uint64_t lease_next_wakeup(const struct lease *l);

/* The instance part of a lease value (up to the last ':'), into buf; "" for "". */
void lease_holder_instance(const char *value, char *buf, size_t size);

const char *lease_change_name(enum lease_change c);

#endif
