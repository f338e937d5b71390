/*
 * redisio.c — see redisio.h.
 *
 * Each link is a small state machine:
 *   IDLE --retry timer--> CONNECTING --handshake done--> READY
 *   CONNECTING/READY --error, timeout--> CLOSING (pending callbacks being failed) --> IDLE
 * With sentinels, CONNECTING has two phases: asking a sentinel for the master (rotating through
 * the sentinels without backoff until one answers or all have failed), then the server itself.
 * A connection is only ever dropped from our own timer callbacks, reconfiguration or
 * redisio_free(), never from inside a reply callback: a failure noticed inside one (an AUTH
 * error, say) arms the deadline timer to fire at once, and the timer drops the link.
 */
#include "redisio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "redis_conn.h"
#include "sentinel.h"

#define DEFAULT_TIMEOUT_MS   5000
#define DEFAULT_BACKOFF_MS   100
#define DEFAULT_BACKOFF_MAX  30000
#define USEC_PER_MSEC        1000ULL

enum link_kind { LINK_COMMAND, LINK_SUBSCRIBER, LINK_WATCH };
enum link_state { LINK_IDLE, LINK_CONNECTING, LINK_READY, LINK_CLOSING };
enum link_phase { PHASE_SENTINEL, PHASE_SERVER };

struct pending {
	struct pending *next;
	redisio_reply_cb *cb;
	void *ud;
	uint64_t deadline_usec;
};

struct link {
	struct redisio *rio;
	enum link_kind kind;
	const char *name;
	enum link_state state;
	enum link_phase phase;
	struct redis_conn *conn;
	char where[300];             /* address of the current connection, for messages */
	unsigned handshake_left;     /* replies still due before the link is READY */
	bool expect_role;            /* the last handshake reply is ROLE's */
	bool subscribing;            /* handshake done, (P)SUBSCRIBE confirmations due */
	bool to_master;              /* the sentinel answered: connect to the master next */
	size_t sentinel;             /* the sentinel to ask next (the last one that answered) */
	size_t sentinels_tried;      /* in this round */
	char master_host[256];
	int master_port;
	bool announced_up;           /* on_state(true) given, on_state(false) owed */
	bool was_subscribed;         /* for the catch-up wake after a re-subscribe */
	bool next_sentinel;          /* the failure is one sentinel's: ask the next one now */
	bool reconnect_now;          /* failover hint: reconnect without backoff */
	unsigned attempt;            /* consecutive failed attempts, for the backoff */
	const char *fail_reason;     /* failure noticed in a callback, acted on by the timer */
	char fail_buf[480];
	sd_event_source *deadline;   /* connect timeout, command timeout, or deferred failure */
	sd_event_source *retry;
	struct pending *head, *tail; /* outstanding commands, oldest first */
};

struct settings {
	char *host, *unix_path, *username, *password, *wake_channel, *keyspace_pattern;
	int port, db;
	SSL_CTX *tls;
	char *tls_server_name;
	char *sentinel_master, *sentinel_password;
	char **sentinel_hosts;
	int *sentinel_ports;
	size_t n_sentinels;
	uint64_t connect_timeout_usec, command_timeout_usec;
	uint32_t backoff_initial_ms, backoff_max_ms;
};

struct redisio {
	sd_event *event;
	struct settings set;
	struct settings next;        /* pending reconfiguration, applied by the timer */
	bool have_next;
	sd_event_source *reconfigure;
	double (*random01)(void *);
	void *random_ud;
	uint64_t rng;
	struct redisio_callbacks cbs;
	void *userdata;
	bool freeing;
	char last_error[600];        /* the last failure logged at error level */
	struct link command;
	struct link subscriber;
	struct link watch;
};

static void link_connect(struct link *l);

uint32_t redisio_backoff_ms(unsigned attempt, uint32_t initial_ms, uint32_t max_ms, double r)
{
	uint64_t d = initial_ms;

	if (max_ms < initial_ms)
		max_ms = initial_ms;
	for (unsigned i = 0; i < attempt && d < max_ms; i++)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	if (r < 0 || r >= 1)
		r = 0;
	return (uint32_t)(d / 2 + (uint64_t)((double)(d - d / 2) * r));
}

static double internal_random01(void *ud)
{
	struct redisio *rio = ud;

	/* xorshift64*: jitter only needs to decorrelate instances, not to be secret. */
	rio->rng ^= rio->rng >> 12;
	rio->rng ^= rio->rng << 25;
	rio->rng ^= rio->rng >> 27;
	return (double)((rio->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static uint64_t now_usec(struct redisio *rio)
{
	uint64_t now = 0;

	(void)sd_event_now(rio->event, CLOCK_MONOTONIC, &now);
	return now;
}

static void arm(sd_event_source *s, uint64_t usec)
{
	(void)sd_event_source_set_time(s, usec);
	(void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static void disarm(sd_event_source *s)
{
	(void)sd_event_source_set_enabled(s, SD_EVENT_OFF);
}

static bool have_subscriber(const struct redisio *rio)
{
	return rio->set.wake_channel != NULL || rio->set.keyspace_pattern != NULL;
}

/* ---- logging ------------------------------------------------------------------------------- */

/* One error line per change of cause: the same failure again (or on the other link) is debug. */
static void report_failure(struct link *l, const char *reason)
{
	struct redisio *rio = l->rio;
	char line[sizeof(rio->last_error)];

	snprintf(line, sizeof(line), "%s: %s", l->where, reason);
	if (strcmp(line, rio->last_error) == 0) {
		log_debug("redis %s link: %s", l->name, line);
		return;
	}
	snprintf(rio->last_error, sizeof(rio->last_error), "%s", line);
	log_errorx("redis %s link: %s", l->name, line);
}

/* ---- link life cycle ------------------------------------------------------------------------- */

/* Deadline of the oldest outstanding command, or nothing to wait for. */
static void rearm_command_deadline(struct link *l)
{
	if (l->state != LINK_READY)
		return;
	if (l->head != NULL)
		arm(l->deadline, l->head->deadline_usec);
	else
		disarm(l->deadline);
}

static void schedule_retry(struct link *l)
{
	struct redisio *rio = l->rio;
	uint32_t ms = redisio_backoff_ms(l->attempt, rio->set.backoff_initial_ms,
					 rio->set.backoff_max_ms, rio->random01(rio->random_ud));

	if (l->reconnect_now) {
		ms = 0;
		l->reconnect_now = false;
	} else if (l->attempt < 32) {
		l->attempt++;
	}
	log_debug("redis %s link: reconnecting in %u ms", l->name, ms);
	arm(l->retry, now_usec(rio) + ms * USEC_PER_MSEC);
}

/* Fail the outstanding commands, oldest first, with reason. */
static void fail_pending(struct link *l, const char *reason)
{
	struct pending *p = l->head;

	l->head = l->tail = NULL;
	while (p != NULL) {
		struct pending *next = p->next;
		p->cb(p->ud, NULL, reason);
		free(p);
		p = next;
	}
}

/*
 * Drop the connection now and plan the reconnect. Only from outside reply callbacks (timers,
 * reconfiguration, redisio_free). quiet: the cause was logged already (or is not an error).
 */
static void link_drop(struct link *l, const char *reason, bool quiet)
{
	struct redisio *rio = l->rio;
	bool was_up = l->announced_up;

	if (l->state == LINK_IDLE)
		return;
	l->state = LINK_CLOSING;
	redis_conn_free(l->conn);
	l->conn = NULL;
	disarm(l->deadline);
	fail_pending(l, reason);
	l->state = LINK_IDLE;
	l->announced_up = false;
	l->subscribing = false;
	l->phase = PHASE_SENTINEL;
	if (rio->freeing)
		return;
	if (l->kind == LINK_WATCH) {
		/* Only a hint: a sentinel that is down costs nothing but a debug line. */
		log_debug("redis sentinel watch link: %s: %s", l->where, reason);
		l->sentinel = (l->sentinel + 1) % rio->set.n_sentinels;
	}
	if (!quiet && l->kind != LINK_WATCH)
		report_failure(l, reason);
	schedule_retry(l);
	if (was_up && l->kind == LINK_COMMAND && rio->cbs.on_state != NULL)
		rio->cbs.on_state(rio->userdata, false);
}

/* A failure seen inside a callback: let the deadline timer act on it at once. */
static void link_fail_soon(struct link *l, const char *what, const char *detail)
{
	if (l->fail_reason != NULL)
		return;    /* keep the first cause: later ones are usually its consequences */
	snprintf(l->fail_buf, sizeof(l->fail_buf), "%s%.300s", what, detail);
	l->fail_reason = l->fail_buf;
	if (l->state == LINK_READY || l->state == LINK_CONNECTING)
		l->state = LINK_CLOSING;   /* no new commands onto a failing link */
	arm(l->deadline, 1);    /* any time in the past: the next loop iteration */
}

static bool using_sentinels(const struct link *l)
{
	return l->rio->set.n_sentinels > 0;
}

/* A sentinel failed us: ask the next one at once, or give up this round. */
static void next_sentinel_or_fail(struct link *l, const char *reason)
{
	struct redisio *rio = l->rio;

	log_debug("redis %s link: sentinel %s: %s", l->name, l->where, reason);
	redis_conn_free(l->conn);
	l->conn = NULL;
	disarm(l->deadline);
	if (++l->sentinels_tried < rio->set.n_sentinels) {
		l->sentinel = (l->sentinel + 1) % rio->set.n_sentinels;
		l->state = LINK_IDLE;
		link_connect(l);
		return;
	}
	char why[sizeof(l->fail_buf) + 64];
	snprintf(why, sizeof(why), "no sentinel named the master; the last one, %s, said: %s",
		 l->where, reason);
	l->state = LINK_CONNECTING;
	snprintf(l->where, sizeof(l->where), "sentinels of %s", rio->set.sentinel_master);
	l->sentinel = (l->sentinel + 1) % rio->set.n_sentinels;
	link_drop(l, why, false);
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct link *l = userdata;
	char reason[sizeof(l->fail_buf) + 64];
	bool next_sentinel = l->next_sentinel;

	(void)s;
	(void)usec;
	l->next_sentinel = false;
	if (l->to_master && l->fail_reason == NULL) {
		l->to_master = false;
		redis_conn_free(l->conn);
		l->conn = NULL;
		l->phase = PHASE_SERVER;
		l->state = LINK_IDLE;
		link_connect(l);
		return 0;
	}
	l->to_master = false;
	if (l->fail_reason != NULL)
		snprintf(reason, sizeof(reason), "%s", l->fail_reason);
	else if (l->state == LINK_CONNECTING && l->conn != NULL)
		snprintf(reason, sizeof(reason), "%s timed out%s", redis_conn_phase(l->conn),
			 strcmp(redis_conn_phase(l->conn), "TLS handshake") == 0 ?
			 " (a plain-text server behind rediss://?)" : "");
	else if (l->state == LINK_CONNECTING)
		snprintf(reason, sizeof(reason), "connect timeout");
	else
		snprintf(reason, sizeof(reason), "command timeout");
	l->fail_reason = NULL;
	if (l->phase == PHASE_SENTINEL && using_sentinels(l) && l->kind != LINK_WATCH &&
	    (next_sentinel || l->state == LINK_CONNECTING || l->state == LINK_CLOSING)) {
		next_sentinel_or_fail(l, reason);
		return 0;
	}
	link_drop(l, reason, l->reconnect_now || l->kind == LINK_WATCH);
	return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct link *l = userdata;

	(void)s;
	(void)usec;
	if (l->state == LINK_IDLE) {
		l->sentinels_tried = 0;
		link_connect(l);
	}
	return 0;
}

/* Drop both data links so they reconnect at once (failover). From inside callbacks too. */
static void failover_hint(struct redisio *rio, const char *why)
{
	struct link *links[] = { &rio->command, &rio->subscriber };

	for (size_t i = 0; i < 2; i++) {
		struct link *l = links[i];
		if (l->rio == NULL || (l->state != LINK_READY && l->state != LINK_CONNECTING))
			continue;
		l->reconnect_now = true;
		l->attempt = 0;
		link_fail_soon(l, why, "");
	}
}

static void link_ready(struct link *l)
{
	struct redisio *rio = l->rio;

	l->state = LINK_READY;
	l->attempt = 0;
	disarm(l->deadline);
	if (l->kind == LINK_COMMAND) {
		log_info("redis command link up: %s%s", l->where,
			 rio->set.tls != NULL && rio->set.unix_path == NULL ? " (TLS)" : "");
		rio->last_error[0] = '\0';
		l->announced_up = true;
		rearm_command_deadline(l);
		if (rio->cbs.on_state != NULL)
			rio->cbs.on_state(rio->userdata, true);
	} else if (l->kind == LINK_SUBSCRIBER) {
		bool catch_up = l->was_subscribed;
		log_debug("redis subscriber link up: %s", l->where);
		l->was_subscribed = true;
		if (catch_up && rio->cbs.on_wake != NULL)
			rio->cbs.on_wake(rio->userdata, "wake");
	} else {
		log_debug("redis sentinel watch link up: %s", l->where);
	}
}

/* ---- replies --------------------------------------------------------------------------------- */

static bool element_is(const redisReply *r, size_t i, int type)
{
	return i < r->elements && r->element[i] != NULL && r->element[i]->type == type;
}

static bool error_is(const redisReply *r, const char *code)
{
	size_t n = strlen(code);

	return r->type == REDIS_REPLY_ERROR && r->len >= n && strncmp(r->str, code, n) == 0 &&
	       (r->str[n] == ' ' || r->str[n] == '\0');
}

/* Messages on the subscriber link (wake channel, keyspace events). */
static void on_subscription(struct link *l, redisReply *r)
{
	struct redisio *rio = l->rio;
	const char *kind;

	if (r->type != REDIS_REPLY_ARRAY || !element_is(r, 0, REDIS_REPLY_STRING)) {
		link_fail_soon(l, "unexpected reply on the subscriber link", "");
		return;
	}
	kind = r->element[0]->str;
	if (strcmp(kind, "subscribe") == 0 || strcmp(kind, "psubscribe") == 0) {
		if (l->state == LINK_CONNECTING && l->handshake_left > 0 && --l->handshake_left == 0)
			link_ready(l);
	} else if (l->kind == LINK_WATCH) {
		if (sentinel_is_switch_master(r, rio->set.sentinel_master)) {
			log_info("redis: sentinel %s reports a new master for %s; reconnecting", l->where,
				 rio->set.sentinel_master);
			failover_hint(rio, "the sentinels switched the master");
		}
	} else if (strcmp(kind, "message") == 0 && r->elements == 3) {
		if (rio->cbs.on_wake_message != NULL) {
			char msg[REDISIO_WAKE_MESSAGE_MAX + 1] = "";
			if (element_is(r, 2, REDIS_REPLY_STRING) &&
			    r->element[2]->len <= REDISIO_WAKE_MESSAGE_MAX &&
			    memchr(r->element[2]->str, '\0', r->element[2]->len) == NULL)
				memcpy(msg, r->element[2]->str, r->element[2]->len);
			rio->cbs.on_wake_message(rio->userdata, msg);
		} else if (rio->cbs.on_wake != NULL) {
			rio->cbs.on_wake(rio->userdata, "wake");
		}
	} else if (strcmp(kind, "pmessage") == 0 && r->elements == 4 &&
		   element_is(r, 2, REDIS_REPLY_STRING)) {
		/* Channel "__keyspace@<db>__:<key>": hand over the key. */
		const char *channel = r->element[2]->str;
		const char *sep = strncmp(channel, "__keyspace@", 11) == 0 ?
				  strstr(channel + 11, "__:") : NULL;
		if (sep != NULL && sep[3] != '\0' && rio->cbs.on_wake != NULL)
			rio->cbs.on_wake(rio->userdata, sep + 3);
	}
}

static int send_argv(struct link *l, int argc, const char **argv)
{
	return redis_conn_send(l->conn, argc, argv, NULL);
}

static int subscribe(struct link *l)
{
	struct redisio *rio = l->rio;

	l->handshake_left = 0;
	l->subscribing = true;
	if (l->kind == LINK_WATCH) {
		const char *argv[] = { "SUBSCRIBE", "+switch-master" };
		if (send_argv(l, 2, argv) < 0)
			return -EIO;
		l->handshake_left++;
		return 0;
	}
	if (rio->set.wake_channel != NULL) {
		const char *argv[] = { "SUBSCRIBE", rio->set.wake_channel };
		if (send_argv(l, 2, argv) < 0)
			return -EIO;
		l->handshake_left++;
	}
	if (rio->set.keyspace_pattern != NULL) {
		const char *argv[] = { "PSUBSCRIBE", rio->set.keyspace_pattern };
		if (send_argv(l, 2, argv) < 0)
			return -EIO;
		l->handshake_left++;
	}
	return 0;
}

/* The sentinel's answer: connect to the master it names (from the timer, not from here). */
static void on_master_addr(struct link *l, const redisReply *r)
{
	struct redisio *rio = l->rio;
	int rc = sentinel_parse_master_addr(r, l->master_host, sizeof(l->master_host),
					    &l->master_port);

	if (rc < 0) {
		l->next_sentinel = true;
		link_fail_soon(l, rc == -ENOENT ? "the sentinel does not know the master " :
				  "unexpected answer to get-master-addr-by-name for ",
			       rio->set.sentinel_master);
		return;
	}
	/* l->sentinel stays: next time, start with the sentinel that answered. */
	l->state = LINK_CLOSING;
	l->to_master = true;
	arm(l->deadline, 1);
}

static void on_handshake_reply(struct link *l, redisReply *r)
{
	char role[32];

	if (r->type == REDIS_REPLY_ERROR) {
		/* e.g. WRONGPASS, NOAUTH or an out-of-range db: the server's text carries no secret. */
		l->next_sentinel = l->phase == PHASE_SENTINEL && using_sentinels(l);
		link_fail_soon(l, "handshake refused: ", r->str);
		return;
	}
	if (l->handshake_left == 1 && l->phase == PHASE_SENTINEL && using_sentinels(l) &&
	    l->kind != LINK_WATCH) {
		l->handshake_left = 0;
		on_master_addr(l, r);
		return;
	}
	if (l->handshake_left == 1 && l->expect_role) {
		int m = sentinel_role_is_master(r, role, sizeof(role));
		if (m != 1) {
			link_fail_soon(l, "the server is not the master; its role: ",
				       m == 0 ? role : "unknown");
			return;
		}
	} else if (r->type != REDIS_REPLY_STATUS) {
		link_fail_soon(l, "unexpected handshake reply", "");
		return;
	}
	if (--l->handshake_left > 0)
		return;
	if (l->kind != LINK_COMMAND) {
		if (subscribe(l) < 0)
			link_fail_soon(l, "cannot subscribe", "");
		return;
	}
	link_ready(l);
}

static void on_command_reply(struct link *l, redisReply *r)
{
	struct pending *p = l->head;

	if (p == NULL) {
		link_fail_soon(l, "a reply nobody asked for", "");
		return;
	}
	l->head = p->next;
	if (l->head == NULL)
		l->tail = NULL;
	if (error_is(r, "READONLY")) {
		/* The node became a replica (failover): find the master again, now. */
		report_failure(l, "answered READONLY: it is a replica now; reconnecting");
		l->reconnect_now = true;
		l->attempt = 0;
		link_fail_soon(l, "the server became a replica (READONLY)", "");
		if (l->rio->subscriber.rio != NULL)
			failover_hint(l->rio, "the server became a replica (READONLY)");
	} else if (error_is(r, "MOVED") || error_is(r, "ASK")) {
		link_fail_soon(l, "the server is a cluster-mode endpoint (MOVED/ASK); cluster mode is not "
				  "supported: use a cluster-mode-disabled endpoint (the primary endpoint)", "");
	} else {
		rearm_command_deadline(l);
	}
	p->cb(p->ud, r, NULL);
	free(p);
}

static void on_conn_reply(void *ud, redisReply *r)
{
	struct link *l = ud;

	if (l->state == LINK_CLOSING || l->state == LINK_IDLE)
		return;
	if (l->state == LINK_CONNECTING && l->handshake_left > 0 && !l->subscribing) {
		on_handshake_reply(l, r);
		return;
	}
	if (l->kind == LINK_COMMAND)
		on_command_reply(l, r);
	else
		on_subscription(l, r);
}

static void on_conn_error(void *ud, const char *why)
{
	struct link *l = ud;

	l->next_sentinel = l->phase == PHASE_SENTINEL && using_sentinels(l) && l->kind != LINK_WATCH;
	link_fail_soon(l, why, "");
}

/* ---- handshake ------------------------------------------------------------------------------- */

static int send_auth(struct link *l, const char *username, const char *password)
{
	const char *argv[3] = { "AUTH", username, password };
	int argc = 3;

	if (password == NULL)
		return 0;
	if (username == NULL) {
		argv[1] = password;
		argc = 2;
	}
	if (send_argv(l, argc, argv) < 0)
		return -EIO;
	l->handshake_left++;
	return 0;
}

static int send_handshake(struct link *l)
{
	struct redisio *rio = l->rio;
	char db[16];

	l->handshake_left = 0;
	l->expect_role = false;
	if (l->kind == LINK_WATCH || (l->phase == PHASE_SENTINEL && using_sentinels(l))) {
		if (send_auth(l, NULL, rio->set.sentinel_password) < 0)
			return -EIO;
		if (l->kind == LINK_WATCH)
			return l->handshake_left == 0 ? subscribe(l) : 0;
		const char *argv[] = { "SENTINEL", "get-master-addr-by-name", rio->set.sentinel_master };
		if (send_argv(l, 3, argv) < 0)
			return -EIO;
		l->handshake_left++;
		return 0;
	}
	if (send_auth(l, rio->set.username, rio->set.password) < 0)
		return -EIO;
	/* SELECT also serves as the probe that proves the server answers. */
	snprintf(db, sizeof(db), "%d", rio->set.db);
	const char *argv[] = { "SELECT", db };
	if (send_argv(l, 2, argv) < 0)
		return -EIO;
	l->handshake_left++;
	if (using_sentinels(l)) {
		/* Writes never go to a replica: the sentinels' answer may be stale. */
		const char *role[] = { "ROLE" };
		if (send_argv(l, 1, role) < 0)
			return -EIO;
		l->handshake_left++;
		l->expect_role = true;
	}
	return 0;
}

static void link_connect(struct link *l)
{
	struct redisio *rio = l->rio;
	const struct redis_conn_callbacks cbs = { NULL, on_conn_reply, on_conn_error };
	struct redis_conn_options o = { .tls = rio->set.tls };
	char err[400];
	bool ask_sentinel = using_sentinels(l) && (l->kind == LINK_WATCH || l->phase == PHASE_SENTINEL);

	if (ask_sentinel) {
		l->phase = PHASE_SENTINEL;
		o.host = rio->set.sentinel_hosts[l->sentinel];
		o.port = rio->set.sentinel_ports[l->sentinel];
	} else if (using_sentinels(l)) {
		o.host = l->master_host;
		o.port = l->master_port;
		o.server_name = rio->set.tls_server_name;
	} else {
		o.host = rio->set.host;
		o.port = rio->set.port;
		o.unix_path = rio->set.unix_path;
		o.server_name = rio->set.tls_server_name;
	}
	if (o.unix_path != NULL)
		snprintf(l->where, sizeof(l->where), "%s", o.unix_path);
	else
		snprintf(l->where, sizeof(l->where), strchr(o.host, ':') ? "[%s]:%d" : "%s:%d",
			 o.host, o.port);
	l->state = LINK_CONNECTING;
	l->fail_reason = NULL;
	l->subscribing = false;
	l->conn = redis_conn_new(rio->event, &o, &cbs, l, err, sizeof(err));
	if (l->conn == NULL) {
		if (ask_sentinel && l->kind != LINK_WATCH) {
			next_sentinel_or_fail(l, err);
			return;
		}
		link_drop(l, err, false);
		return;
	}
	if (send_handshake(l) < 0) {
		link_fail_soon(l, "cannot set up the connection", "");
		return;
	}
	arm(l->deadline, now_usec(rio) + rio->set.connect_timeout_usec);
}

/* ---- commands -------------------------------------------------------------------------------- */

int redisio_command_argv(struct redisio *rio, int argc, const char **argv, const size_t *argvlen,
			 redisio_reply_cb *cb, void *ud)
{
	struct link *l = &rio->command;
	struct pending *p;

	if (argc < 1 || argv == NULL || cb == NULL)
		return -EINVAL;
	for (int i = 0; i < argc; i++)
		if (argv[i] == NULL)
			return -EINVAL;
	if (l->state != LINK_READY || rio->freeing)
		return -ENOTCONN;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	p->cb = cb;
	p->ud = ud;
	p->deadline_usec = now_usec(rio) + rio->set.command_timeout_usec;
	if (redis_conn_send(l->conn, argc, argv, argvlen) < 0) {
		free(p);
		return -ENOTCONN;
	}
	if (l->tail != NULL)
		l->tail->next = p;
	else
		l->head = p;
	l->tail = p;
	if (l->head == p)
		rearm_command_deadline(l);
	return 0;
}

bool redisio_connected(const struct redisio *rio)
{
	return rio != NULL && rio->command.state == LINK_READY;
}

/* ---- settings -------------------------------------------------------------------------------- */

/* "__keyspace@<db>__:<prefix>*" with the glob characters of the prefix escaped. */
static char *keyspace_pattern(int db, const char *prefix)
{
	size_t n = strlen(prefix), len = 0, cap = 48 + 2 * n;
	char *out = malloc(cap);

	if (out == NULL)
		return NULL;
	len = (size_t)snprintf(out, cap, "__keyspace@%d__:", db);
	for (size_t i = 0; i < n; i++) {
		if (strchr("*?[]\\", prefix[i]) != NULL)
			out[len++] = '\\';
		out[len++] = prefix[i];
	}
	out[len++] = '*';
	out[len] = '\0';
	return out;
}

static int dup_opt(char **dst, const char *src)
{
	*dst = NULL;
	if (src == NULL)
		return 0;
	*dst = strdup(src);
	return *dst != NULL ? 0 : -ENOMEM;
}

static const char *nonempty(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : NULL;
}

static void wipe_free(char *s)
{
	if (s != NULL)
		explicit_bzero(s, strlen(s));
	free(s);
}

static void settings_free(struct settings *s)
{
	free(s->host);
	free(s->unix_path);
	free(s->username);
	wipe_free(s->password);
	free(s->wake_channel);
	free(s->keyspace_pattern);
	SSL_CTX_free(s->tls);
	free(s->tls_server_name);
	free(s->sentinel_master);
	wipe_free(s->sentinel_password);
	for (size_t i = 0; i < s->n_sentinels; i++)
		free(s->sentinel_hosts[i]);
	free(s->sentinel_hosts);
	free(s->sentinel_ports);
	memset(s, 0, sizeof(*s));
}

static bool options_valid(const struct redisio_options *o)
{
	if (o == NULL || o->db < 0)
		return false;
	if (o->sentinel_master != NULL) {
		if (o->n_sentinels == 0 || o->sentinel_hosts == NULL || o->sentinel_ports == NULL)
			return false;
		for (size_t i = 0; i < o->n_sentinels; i++)
			if (o->sentinel_hosts[i] == NULL || o->sentinel_ports[i] == 0 ||
			    o->sentinel_ports[i] > 65535)
				return false;
		return true;
	}
	return o->unix_path != NULL ||
	       (o->host != NULL && o->port > 0 && o->port <= 65535);
}

static int settings_from(struct settings *s, const struct redisio_options *o)
{
	memset(s, 0, sizeof(*s));
	s->port = o->port;
	s->db = o->db;
	s->connect_timeout_usec = (o->connect_timeout_ms ? o->connect_timeout_ms
							 : DEFAULT_TIMEOUT_MS) * USEC_PER_MSEC;
	s->command_timeout_usec = (o->command_timeout_ms ? o->command_timeout_ms
							 : DEFAULT_TIMEOUT_MS) * USEC_PER_MSEC;
	s->backoff_initial_ms = o->backoff_initial_ms ? o->backoff_initial_ms : DEFAULT_BACKOFF_MS;
	s->backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : DEFAULT_BACKOFF_MAX;
	if (o->tls != NULL) {
		if (SSL_CTX_up_ref(o->tls) != 1)
			return -ENOMEM;
		s->tls = o->tls;
	}
	if (dup_opt(&s->host, o->unix_path == NULL ? o->host : NULL) < 0 ||
	    dup_opt(&s->unix_path, o->unix_path) < 0 ||
	    dup_opt(&s->username, o->username) < 0 ||
	    dup_opt(&s->password, nonempty(o->password)) < 0 ||
	    dup_opt(&s->wake_channel, o->wake_channel) < 0 ||
	    dup_opt(&s->tls_server_name, nonempty(o->tls_server_name)) < 0 ||
	    dup_opt(&s->sentinel_master, o->sentinel_master) < 0 ||
	    dup_opt(&s->sentinel_password, nonempty(o->sentinel_password)) < 0)
		return -ENOMEM;
	if (o->subscribe_keyspace) {
		s->keyspace_pattern = keyspace_pattern(o->db, o->key_prefix ? o->key_prefix : "");
		if (s->keyspace_pattern == NULL)
			return -ENOMEM;
	}
	if (o->sentinel_master != NULL) {
		s->sentinel_hosts = calloc(o->n_sentinels, sizeof(*s->sentinel_hosts));
		s->sentinel_ports = calloc(o->n_sentinels, sizeof(*s->sentinel_ports));
		if (s->sentinel_hosts == NULL || s->sentinel_ports == NULL)
			return -ENOMEM;
		s->n_sentinels = o->n_sentinels;
		for (size_t i = 0; i < o->n_sentinels; i++) {
			s->sentinel_ports[i] = (int)o->sentinel_ports[i];
			if (dup_opt(&s->sentinel_hosts[i], o->sentinel_hosts[i]) < 0)
				return -ENOMEM;
		}
	}
	return 0;
}

/* ---- life cycle ------------------------------------------------------------------------------ */

static int link_init(struct redisio *rio, struct link *l, enum link_kind kind)
{
	static const char *const names[] = { "command", "subscriber", "sentinel watch" };
	int r;

	l->rio = rio;
	l->kind = kind;
	l->name = names[kind];
	l->state = LINK_IDLE;
	l->phase = PHASE_SENTINEL;
	r = sd_event_add_time(rio->event, &l->deadline, CLOCK_MONOTONIC, UINT64_MAX, USEC_PER_MSEC,
			      on_deadline, l);
	if (r < 0)
		return r;
	r = sd_event_add_time(rio->event, &l->retry, CLOCK_MONOTONIC, UINT64_MAX, USEC_PER_MSEC,
			      on_retry, l);
	if (r < 0)
		return r;
	disarm(l->deadline);
	disarm(l->retry);
	(void)sd_event_source_set_description(l->deadline, "redis-deadline");
	(void)sd_event_source_set_description(l->retry, "redis-retry");
	return 0;
}

static void link_fini(struct link *l, const char *reason)
{
	if (l->rio == NULL)
		return;
	l->state = LINK_CLOSING;
	redis_conn_free(l->conn);
	l->conn = NULL;
	fail_pending(l, reason);
	l->state = LINK_IDLE;
	l->deadline = sd_event_source_disable_unref(l->deadline);
	l->retry = sd_event_source_disable_unref(l->retry);
	l->rio = NULL;
}

/* Create the links the settings need and start them. */
static int links_start(struct redisio *rio)
{
	int r = link_init(rio, &rio->command, LINK_COMMAND);

	if (r < 0)
		return r;
	if (have_subscriber(rio)) {
		r = link_init(rio, &rio->subscriber, LINK_SUBSCRIBER);
		if (r < 0)
			return r;
	}
	if (rio->set.n_sentinels > 0) {
		r = link_init(rio, &rio->watch, LINK_WATCH);
		if (r < 0)
			return r;
	}
	/* Connecting calls nothing back (failures come from the loop): start now, as early as
	 * possible, so the first pass finds the links up. */
	link_connect(&rio->command);
	if (rio->subscriber.rio != NULL)
		link_connect(&rio->subscriber);
	if (rio->watch.rio != NULL)
		link_connect(&rio->watch);
	return 0;
}

static void links_stop(struct redisio *rio, const char *reason)
{
	bool was_up = rio->command.announced_up;

	link_fini(&rio->command, reason);
	link_fini(&rio->subscriber, reason);
	link_fini(&rio->watch, reason);
	memset(&rio->command, 0, sizeof(rio->command));
	memset(&rio->subscriber, 0, sizeof(rio->subscriber));
	memset(&rio->watch, 0, sizeof(rio->watch));
	if (was_up && !rio->freeing && rio->cbs.on_state != NULL)
		rio->cbs.on_state(rio->userdata, false);
}

static int on_reconfigure(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct redisio *rio = userdata;

	(void)s;
	(void)usec;
	if (!rio->have_next)
		return 0;
	log_info("redis: connection settings changed; reconnecting");
	links_stop(rio, "reconnecting with new settings");
	settings_free(&rio->set);
	rio->set = rio->next;
	memset(&rio->next, 0, sizeof(rio->next));
	rio->have_next = false;
	rio->last_error[0] = '\0';
	if (links_start(rio) < 0)
		log_errorx("redis: cannot restart the links (out of memory)");
	return 0;
}

int redisio_reconfigure(struct redisio *rio, const struct redisio_options *opts)
{
	struct settings s;
	int r;

	if (!options_valid(opts))
		return -EINVAL;
	r = settings_from(&s, opts);
	if (r < 0) {
		settings_free(&s);
		return r;
	}
	if (rio->have_next)
		settings_free(&rio->next);
	rio->next = s;
	rio->have_next = true;
	arm(rio->reconfigure, 1);
	return 0;
}

struct redisio *redisio_new(sd_event *event, const struct redisio_options *opts,
			    const struct redisio_callbacks *cbs, void *userdata)
{
	struct redisio *rio;
	int r = -EINVAL;

	if (event == NULL || !options_valid(opts)) {
		errno = EINVAL;
		return NULL;
	}
	rio = calloc(1, sizeof(*rio));
	if (rio == NULL)
		return NULL;
	rio->event = sd_event_ref(event);
	rio->random01 = opts->random01 != NULL ? opts->random01 : internal_random01;
	rio->random_ud = opts->random01 != NULL ? opts->random_ud : rio;
	if (getrandom(&rio->rng, sizeof(rio->rng), GRND_NONBLOCK) != sizeof(rio->rng) ||
	    rio->rng == 0)
		rio->rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)rio;
	if (cbs != NULL)
		rio->cbs = *cbs;
	rio->userdata = userdata;
	r = settings_from(&rio->set, opts);
	if (r < 0)
		goto fail;
	r = sd_event_add_time(event, &rio->reconfigure, CLOCK_MONOTONIC, UINT64_MAX, USEC_PER_MSEC,
			      on_reconfigure, rio);
	if (r < 0)
		goto fail;
	disarm(rio->reconfigure);
	r = links_start(rio);
	if (r < 0)
		goto fail;
	return rio;
fail:
	redisio_free(rio);
	errno = -r;
	return NULL;
}

void redisio_free(struct redisio *rio)
{
	if (rio == NULL)
		return;
	rio->freeing = true;
	links_stop(rio, "shutting down");
	sd_event_source_disable_unref(rio->reconfigure);
	settings_free(&rio->set);
	settings_free(&rio->next);
	sd_event_unref(rio->event);
	free(rio);
}
