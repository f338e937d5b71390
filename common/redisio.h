/*
 * redisio.h — the daemon's Redis connections, inside the sd-event loop, never blocking it.
 *
 * Two links to one server:
 *  - the command link: non-blocking connect, then AUTH (when a password is set) and SELECT as the
 *    first commands; redisio_connected() is true and on_state(true) fires only once those have
 *    succeeded. Commands are pipelined; each gets exactly one callback.
 *  - the subscriber link: SUBSCRIBEs the wake channel and PSUBSCRIBEs
 *    "__keyspace@<db>__:<key_prefix>*" (glob characters in the prefix escaped). Keyspace events
 *    only arrive when the server has notify-keyspace-events enabled; we never CONFIG SET it.
 *
 * Transport: redis_conn.c (TCP, Unix socket, or TLS with redis_tls.c). Timeouts are sd-event
 * timers here: a connect that has not finished its handshake within connect_timeout_ms, or a
 * command (the oldest outstanding one) not answered within command_timeout_ms, marks the link
 * down and drops the connection from the timer callback. Every dropped link reconnects with
 * jittered exponential backoff (redisio_backoff_ms()), resolving the host name again.
 *
 * Failover: a -READONLY reply (the server became a replica) drops both links and reconnects at
 * once. With sentinels configured, every connection first asks the sentinels in turn for the
 * master (SENTINEL get-master-addr-by-name), then confirms it with ROLE as the last handshake
 * command; a third link subscribes to +switch-master on a sentinel and takes it as a hint to
 * reconnect at once. A -MOVED/-ASK reply (a cluster-mode endpoint) drops the link with an error
 * telling the operator to use a cluster-mode-disabled endpoint.
 *
 * Logging: one error-level line per change of the failure cause, naming the address; one info
 * line when the command link comes up. Passwords are never logged.
 *
 * Threading and reentrancy: everything runs in the loop's thread. Callbacks may issue new
 * commands; they must not call redisio_free() (free from a timer, signal or other event instead).
 */
#ifndef IVS_REDISIO_H
#define IVS_REDISIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <openssl/ssl.h>
#include <systemd/sd-event.h>

struct redisio;

struct redisio_options {
	const char *host;              /* TCP host (numeric address preferred), or NULL */
	int port;                      /* TCP port, used with host */
	const char *unix_path;         /* Unix socket path; wins over host when set */
	int db;                        /* SELECT db (0..) */
	const char *username;          /* ACL user (AUTH user pass); NULL = AUTH pass */
	const char *password;          /* NULL or "" = no AUTH. Never logged. */
	/*
	 * TLS: a context from redis_tls_ctx_new() (redisio takes its own reference), NULL = plain
	 * text. tls_server_name: the name checked in the certificate; NULL or "" = host (with
	 * sentinels: the master's address as the sentinels report it).
	 */
	SSL_CTX *tls;
	const char *tls_server_name;
	/*
	 * Sentinel: non-NULL sentinel_master = ask these sentinels (same TLS settings, the
	 * sentinel's own host is the name checked) for the master instead of using host:port.
	 */
	const char *sentinel_master;
	const char *const *sentinel_hosts;
	const unsigned *sentinel_ports;
	size_t n_sentinels;
	const char *sentinel_password; /* AUTH for the sentinels; NULL or "" = none. Never logged. */
	uint32_t connect_timeout_ms;   /* 0 = 5000 */
	uint32_t command_timeout_ms;   /* 0 = 5000 */
	/*
	 * Prefix of our keys ("ivs:prod:"), used only for the keyspace pattern. NULL = "".
	 */
	const char *key_prefix;
	/*
	 * Full wake channel name, already prefixed by the caller (e.g. "ivs:prod:autoscaler:wake").
	 * NULL = no subscription to a wake channel.
	 */
	const char *wake_channel;
	bool subscribe_keyspace;       /* PSUBSCRIBE keyspace events of key_prefix* */
	/* Reconnect backoff: first delay and cap in ms (0 = 100 and 30000). */
	uint32_t backoff_initial_ms;
	uint32_t backoff_max_ms;
	/* Randomness for the jitter: a value in [0, 1). NULL = an internal generator. */
	double (*random01)(void *random_ud);
	void *random_ud;
};

struct redisio_callbacks {
	/* The command link came up (handshake done) or went down. May be NULL. */
	void (*on_state)(void *userdata, bool connected);
	/*
	 * Something may have changed: reason is "wake" for a message on the wake channel, or the full
	 * key name (including key_prefix) of a keyspace event. The daemon's own writes also produce
	 * keyspace events: the caller must ignore the keys it writes itself or it wakes itself up.
	 * After the subscriber link re-subscribes following a drop, on_wake fires once with "wake"
	 * (events may have been missed while it was down). May be NULL.
	 */
	void (*on_wake)(void *userdata, const char *reason);
	/*
	 * A message on the wake channel, with its payload (a fleet name, or "" = all; at most
	 * REDISIO_WAKE_MESSAGE_MAX bytes, longer ones arrive as ""). When NULL, on_wake gets "wake".
	 */
	void (*on_wake_message)(void *userdata, const char *message);
};

#define REDISIO_WAKE_MESSAGE_MAX 128

/*
 * Reply callback. On success reply is the server's reply (any type, including
 * REDIS_REPLY_ERROR: that is the command's result, not a link failure) and error is NULL. When
 * the link fails (timeout, connection lost, shutting down), reply is NULL and error says why.
 * Both are valid only during the call; hiredis frees the reply afterwards.
 */
typedef void redisio_reply_cb(void *ud, redisReply *reply, const char *error);

/*
 * Create the connections and start connecting (asynchronously: the first on_state(true) comes
 * from the loop). opts' strings are copied. Returns NULL on invalid options or ENOMEM (errno set).
 */
struct redisio *redisio_new(sd_event *event, const struct redisio_options *opts,
                            const struct redisio_callbacks *cbs, void *userdata);

/*
 * Send one command. Returns 0 and cb is then called exactly once (from the loop, or from inside
 * a later redisio call that drops the link), or a negative errno and cb is never called:
 * -ENOTCONN while the command link is not up, -EINVAL for argc < 1, -ENOMEM.
 * Blocking commands and KEYS must not be sent: the link and the server are shared.
 */
int redisio_command_argv(struct redisio *rio, int argc, const char **argv, const size_t *argvlen,
                         redisio_reply_cb *cb, void *ud);

/* true while the command link is up (handshake done and not dropped). */
bool redisio_connected(const struct redisio *rio);

/*
 * Replace the connection settings (after a configuration reload): the links are dropped and
 * reconnect at once with the new settings, from the loop (never inside this call). The same
 * validation as redisio_new: 0, -EINVAL, -ENOMEM (the old settings then stay).
 */
int redisio_reconfigure(struct redisio *rio, const struct redisio_options *opts);

/*
 * Close both links; pending commands get their callback with the error "shutting down"
 * before this returns. No on_state call. NULL is a no-op.
 */
void redisio_free(struct redisio *rio);

/*
 * Reconnect delay for attempt n (0 = first retry): initial * 2^n capped at max, then "equal
 * jitter": half fixed, half random (r in [0, 1)). Pure.
 */
uint32_t redisio_backoff_ms(unsigned attempt, uint32_t initial_ms, uint32_t max_ms, double r);

#endif
