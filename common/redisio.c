/*
 * redisio.c — see redisio.h.
 *
 * Each link is a small state machine:
 *   IDLE --retry timer--> CONNECTING --handshake done--> READY
 *   CONNECTING/READY --error, timeout--> CLOSING (hiredis is failing the callbacks) --> IDLE
 * The context is only ever freed from our own timer callbacks or redisio_free(), never from
 * inside a hiredis callback: a failure noticed inside one (an AUTH error, say) arms the deadline
 * timer to fire at once, and the timer drops the link.
 */
#include "redisio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <hiredis/async.h>

#include "log.h"
#include "redis_sdevent.h"

#define DEFAULT_TIMEOUT_MS   5000
#define DEFAULT_BACKOFF_MS   100
#define DEFAULT_BACKOFF_MAX  30000
#define USEC_PER_MSEC        1000ULL

enum link_kind { LINK_COMMAND, LINK_SUBSCRIBER };
enum link_state { LINK_IDLE, LINK_CONNECTING, LINK_READY, LINK_CLOSING };

struct pending {
	struct pending *next;
	struct link *link;
	redisio_reply_cb *cb;
	void *ud;
	uint64_t deadline_usec;
};

struct link {
	struct redisio *rio;
	enum link_kind kind;
	const char *name;
	enum link_state state;
	redisAsyncContext *ac;
	unsigned handshake_left;     /* replies still due before the link is READY */
	bool announced_up;           /* on_state(true) given, on_state(false) owed */
	bool was_subscribed;         /* for the catch-up wake after a re-subscribe */
	unsigned attempt;            /* consecutive failed attempts, for the backoff */
	const char *drop_reason;     /* why we are dropping it, for the failed callbacks */
	const char *fail_reason;     /* failure noticed in a callback, acted on by the timer */
	char fail_buf[128];
	sd_event_source *deadline;   /* connect timeout, command timeout, or deferred failure */
	sd_event_source *retry;
	struct pending *head, *tail; /* outstanding commands, oldest first */
};

struct redisio {
	sd_event *event;
	char *host, *unix_path, *username, *password, *wake_channel, *keyspace_pattern;
	int port, db;
	uint64_t connect_timeout_usec, command_timeout_usec;
	uint32_t backoff_initial_ms, backoff_max_ms;
	double (*random01)(void *);
	void *random_ud;
	uint64_t rng;
	struct redisio_callbacks cbs;
	void *userdata;
	bool freeing;
	struct link command;
	struct link subscriber;
	bool have_subscriber;
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
	uint32_t ms = redisio_backoff_ms(l->attempt, rio->backoff_initial_ms, rio->backoff_max_ms,
	                                 rio->random01(rio->random_ud));

	if (l->attempt < 32)
		l->attempt++;
	log_debug("redis %s link: reconnecting in %u ms", l->name, ms);
	arm(l->retry, now_usec(rio) + ms * USEC_PER_MSEC);
}

/* The context is gone (or going, inside hiredis): forget it and plan the reconnect. Idempotent. */
static void link_down(struct link *l, const char *reason)
{
	struct redisio *rio = l->rio;
	bool was_up = l->announced_up;

	if (l->state == LINK_IDLE)
		return;
	l->state = LINK_IDLE;
	l->ac = NULL;
	l->announced_up = false;
	disarm(l->deadline);
	if (rio->freeing)
		return;
	if (was_up || l->attempt == 0)
		log_warnx("redis %s link down: %s", l->name, reason);
	else
		log_debug("redis %s link: connect failed: %s", l->name, reason);
	schedule_retry(l);
	if (was_up && l->kind == LINK_COMMAND && rio->cbs.on_state != NULL)
		rio->cbs.on_state(rio->userdata, false);
}

/* Drop the connection now. Only from outside hiredis callbacks (timers, redisio_free). */
static void link_drop(struct link *l, const char *reason)
{
	redisAsyncContext *ac = l->ac;

	if (l->state == LINK_IDLE)
		return;
	l->state = LINK_CLOSING;
	l->drop_reason = reason;
	/* Fails every pending callback with a NULL reply, then (if connected) on_disconnect. */
	if (ac != NULL)
		redisAsyncFree(ac);
	link_down(l, reason);
	l->drop_reason = NULL;
}

/* A failure seen inside a hiredis callback: let the deadline timer drop the link at once. */
static void link_fail_soon(struct link *l, const char *what, const char *detail)
{
	if (l->fail_reason != NULL)
		return;    /* keep the first cause: later ones are usually its consequences */
	snprintf(l->fail_buf, sizeof(l->fail_buf), "%s%.100s", what, detail);
	l->fail_reason = l->fail_buf;
	arm(l->deadline, 1);    /* any time in the past: the next loop iteration */
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct link *l = userdata;
	const char *reason;

	(void)s;
	(void)usec;
	if (l->fail_reason != NULL)
		reason = l->fail_reason;
	else if (l->state == LINK_CONNECTING)
		reason = "connect timeout";
	else
		reason = "command timeout";
	link_drop(l, reason);
	l->fail_reason = NULL;
	return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct link *l = userdata;

	(void)s;
	(void)usec;
	if (l->state == LINK_IDLE)
		link_connect(l);
	return 0;
}

static const char *failure_text(const struct link *l, const redisAsyncContext *ac)
{
	if (l->drop_reason != NULL)
		return l->drop_reason;
	if (ac != NULL && ac->err != 0 && ac->errstr != NULL && ac->errstr[0] != '\0')
		return ac->errstr;
	return "connection lost";
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct link *l = ac->data;

	if (status != REDIS_OK && l != NULL && l->ac == ac)
		link_down(l, failure_text(l, ac));    /* hiredis frees ac after we return */
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct link *l = ac->data;

	(void)status;
	if (l != NULL && l->ac == ac)
		link_down(l, failure_text(l, ac));
}

static void link_ready(struct link *l)
{
	struct redisio *rio = l->rio;

	l->state = LINK_READY;
	l->attempt = 0;
	disarm(l->deadline);
	log_info("redis %s link up", l->name);
	if (l->kind == LINK_COMMAND) {
		l->announced_up = true;
		rearm_command_deadline(l);
		if (rio->cbs.on_state != NULL)
			rio->cbs.on_state(rio->userdata, true);
	} else {
		bool catch_up = l->was_subscribed;
		l->was_subscribed = true;
		if (catch_up && rio->cbs.on_wake != NULL)
			rio->cbs.on_wake(rio->userdata, "wake");
	}
}

/* ---- subscriber link ------------------------------------------------------------------------- */

static bool element_is(const redisReply *r, size_t i, int type)
{
	return i < r->elements && r->element[i] != NULL && r->element[i]->type == type;
}

static void on_subscription(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct link *l = privdata;
	struct redisio *rio = l->rio;
	redisReply *r = reply;
	const char *kind;

	(void)ac;
	if (r == NULL || l->state == LINK_IDLE || l->state == LINK_CLOSING)
		return;
	if (r->type != REDIS_REPLY_ARRAY || !element_is(r, 0, REDIS_REPLY_STRING)) {
		link_fail_soon(l, "unexpected reply on the subscriber link", "");
		return;
	}
	kind = r->element[0]->str;
	if (strcmp(kind, "subscribe") == 0 || strcmp(kind, "psubscribe") == 0) {
		if (l->state == LINK_CONNECTING && l->handshake_left > 0 && --l->handshake_left == 0)
			link_ready(l);
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

static int subscribe(struct link *l)
{
	struct redisio *rio = l->rio;

	l->handshake_left = 0;
	if (rio->wake_channel != NULL) {
		const char *argv[] = { "SUBSCRIBE", rio->wake_channel };
		if (redisAsyncCommandArgv(l->ac, on_subscription, l, 2, argv, NULL) != REDIS_OK)
			return -EIO;
		l->handshake_left++;
	}
	if (rio->keyspace_pattern != NULL) {
		const char *argv[] = { "PSUBSCRIBE", rio->keyspace_pattern };
		if (redisAsyncCommandArgv(l->ac, on_subscription, l, 2, argv, NULL) != REDIS_OK)
			return -EIO;
		l->handshake_left++;
	}
	return 0;
}

/* ---- handshake ------------------------------------------------------------------------------- */

static void on_handshake_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct link *l = privdata;
	redisReply *r = reply;

	(void)ac;
	if (r == NULL || l->state != LINK_CONNECTING)
		return;    /* the link is failing; link_down() reports it */
	if (r->type == REDIS_REPLY_ERROR) {
		/* e.g. WRONGPASS or an out-of-range db: the server's text carries no secret. */
		link_fail_soon(l, "handshake refused: ", r->str);
		return;
	}
	if (r->type != REDIS_REPLY_STATUS) {
		link_fail_soon(l, "unexpected handshake reply", "");
		return;
	}
	if (--l->handshake_left > 0)
		return;
	if (l->kind == LINK_SUBSCRIBER) {
		if (subscribe(l) < 0)
			link_fail_soon(l, "cannot subscribe", "");
		return;
	}
	link_ready(l);
}

static int send_handshake(struct link *l)
{
	struct redisio *rio = l->rio;
	char db[16];

	l->handshake_left = 0;
	if (rio->password != NULL) {
		const char *argv[3] = { "AUTH", rio->username, rio->password };
		int argc = 3;
		if (rio->username == NULL) {
			argv[1] = rio->password;
			argc = 2;
		}
		if (redisAsyncCommandArgv(l->ac, on_handshake_reply, l, argc, argv, NULL) != REDIS_OK)
			return -EIO;
		l->handshake_left++;
	}
	/* SELECT also serves as the probe that proves the server answers. */
	snprintf(db, sizeof(db), "%d", rio->db);
	const char *argv[] = { "SELECT", db };
	if (redisAsyncCommandArgv(l->ac, on_handshake_reply, l, 2, argv, NULL) != REDIS_OK)
		return -EIO;
	l->handshake_left++;
	return 0;
}

static void link_connect(struct link *l)
{
	struct redisio *rio = l->rio;
	redisAsyncContext *ac;

	ac = rio->unix_path != NULL ? redisAsyncConnectUnix(rio->unix_path)
	                            : redisAsyncConnect(rio->host, rio->port);
	if (ac == NULL || ac->err != 0) {
		char reason[128];
		snprintf(reason, sizeof(reason), "%s", ac != NULL ? ac->errstr : "out of memory");
		if (ac != NULL)
			redisAsyncFree(ac);
		l->state = LINK_CONNECTING;    /* so that link_down() accounts for it */
		link_down(l, reason);
		return;
	}
	l->ac = ac;
	l->state = LINK_CONNECTING;
	ac->data = l;
	if (rio->unix_path == NULL)
		(void)redisEnableKeepAlive(&ac->c);
	if (redis_sdevent_attach(ac, rio->event) < 0 ||
	    redisAsyncSetConnectCallback(ac, on_connect) != REDIS_OK ||
	    redisAsyncSetDisconnectCallback(ac, on_disconnect) != REDIS_OK ||
	    send_handshake(l) < 0) {
		link_fail_soon(l, "cannot set up the connection", "");
		return;
	}
	arm(l->deadline, now_usec(rio) + rio->connect_timeout_usec);
}

/* ---- commands -------------------------------------------------------------------------------- */

static void on_command_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct pending *p = privdata, **pp;
	struct link *l = p->link;

	for (pp = &l->head; *pp != NULL && *pp != p; pp = &(*pp)->next)
		;
	if (*pp == p) {
		*pp = p->next;
		if (l->tail == p) {
			l->tail = NULL;
			for (struct pending *q = l->head; q != NULL; q = q->next)
				l->tail = q;
		}
	}
	if (reply == NULL) {
		/* The link is failing: nobody may queue onto it from inside this callback. */
		if (l->state == LINK_READY || l->state == LINK_CONNECTING)
			l->state = LINK_CLOSING;
		p->cb(p->ud, NULL, failure_text(l, ac));
	} else {
		rearm_command_deadline(l);
		p->cb(p->ud, reply, NULL);
	}
	free(p);
}

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
	p->link = l;
	p->cb = cb;
	p->ud = ud;
	p->deadline_usec = now_usec(rio) + rio->command_timeout_usec;
	if (redisAsyncCommandArgv(l->ac, on_command_reply, p, argc, argv, argvlen) != REDIS_OK) {
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

/* ---- life cycle ------------------------------------------------------------------------------ */

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

static int link_init(struct redisio *rio, struct link *l, enum link_kind kind)
{
	int r;

	l->rio = rio;
	l->kind = kind;
	l->name = kind == LINK_COMMAND ? "command" : "subscriber";
	l->state = LINK_IDLE;
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

static void link_fini(struct link *l)
{
	if (l->rio == NULL)
		return;
	l->drop_reason = "shutting down";
	if (l->ac != NULL) {
		l->state = LINK_CLOSING;
		redisAsyncFree(l->ac);
	}
	l->ac = NULL;
	l->state = LINK_IDLE;
	l->deadline = sd_event_source_disable_unref(l->deadline);
	l->retry = sd_event_source_disable_unref(l->retry);
}

struct redisio *redisio_new(sd_event *event, const struct redisio_options *opts,
                            const struct redisio_callbacks *cbs, void *userdata)
{
	struct redisio *rio;
	int r = -EINVAL;

	if (event == NULL || opts == NULL || opts->db < 0 ||
	    (opts->unix_path == NULL && (opts->host == NULL || opts->port <= 0 ||
	                                 opts->port > 65535))) {
		errno = EINVAL;
		return NULL;
	}
	rio = calloc(1, sizeof(*rio));
	if (rio == NULL)
		return NULL;
	rio->event = sd_event_ref(event);
	rio->port = opts->port;
	rio->db = opts->db;
	rio->connect_timeout_usec = (opts->connect_timeout_ms ? opts->connect_timeout_ms
	                                                      : DEFAULT_TIMEOUT_MS) * USEC_PER_MSEC;
	rio->command_timeout_usec = (opts->command_timeout_ms ? opts->command_timeout_ms
	                                                      : DEFAULT_TIMEOUT_MS) * USEC_PER_MSEC;
	rio->backoff_initial_ms = opts->backoff_initial_ms ? opts->backoff_initial_ms
	                                                   : DEFAULT_BACKOFF_MS;
	rio->backoff_max_ms = opts->backoff_max_ms ? opts->backoff_max_ms : DEFAULT_BACKOFF_MAX;
	rio->random01 = opts->random01 != NULL ? opts->random01 : internal_random01;
	rio->random_ud = opts->random01 != NULL ? opts->random_ud : rio;
	if (getrandom(&rio->rng, sizeof(rio->rng), GRND_NONBLOCK) != sizeof(rio->rng) ||
	    rio->rng == 0)
		rio->rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)rio;
	if (cbs != NULL)
		rio->cbs = *cbs;
	rio->userdata = userdata;
	r = -ENOMEM;
	if (dup_opt(&rio->host, opts->unix_path == NULL ? opts->host : NULL) < 0 ||
	    dup_opt(&rio->unix_path, opts->unix_path) < 0 ||
	    dup_opt(&rio->username, opts->username) < 0 ||
	    dup_opt(&rio->password, opts->password != NULL && opts->password[0] != '\0' ?
	                            opts->password : NULL) < 0 ||
	    dup_opt(&rio->wake_channel, opts->wake_channel) < 0)
		goto fail;
	if (opts->subscribe_keyspace) {
		rio->keyspace_pattern = keyspace_pattern(opts->db,
		                                         opts->key_prefix ? opts->key_prefix : "");
		if (rio->keyspace_pattern == NULL)
			goto fail;
	}
	r = link_init(rio, &rio->command, LINK_COMMAND);
	if (r < 0)
		goto fail;
	rio->have_subscriber = rio->wake_channel != NULL || rio->keyspace_pattern != NULL;
	if (rio->have_subscriber) {
		r = link_init(rio, &rio->subscriber, LINK_SUBSCRIBER);
		if (r < 0)
			goto fail;
		link_connect(&rio->subscriber);
	}
	link_connect(&rio->command);
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
	link_fini(&rio->command);
	link_fini(&rio->subscriber);
	if (rio->password != NULL)
		explicit_bzero(rio->password, strlen(rio->password));
	free(rio->host);
	free(rio->unix_path);
	free(rio->username);
	free(rio->password);
	free(rio->wake_channel);
	free(rio->keyspace_pattern);
	sd_event_unref(rio->event);
	free(rio);
}
