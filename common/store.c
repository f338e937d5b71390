/*
 * store.c — see store.h.
 */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- key names ------------------------------------------------------------------------------- */

static int append(char *buf, size_t size, size_t *len, const char *s, size_t n)
{
	if (n >= size - *len)
		return -ENAMETOOLONG;
	memcpy(buf + *len, s, n);
	*len += n;
	buf[*len] = '\0';
	return 0;
}

int store_key(char *buf, size_t size, const char *prefix, const char *tmpl, const char *arn,
              const char *fleet)
{
	size_t len = 0;
	int r;

	if (buf == NULL || size == 0 || tmpl == NULL)
		return -EINVAL;
	buf[0] = '\0';
	if (prefix != NULL && (r = append(buf, size, &len, prefix, strlen(prefix))) < 0)
		return r;
	while (*tmpl != '\0') {
		const char *value = NULL;
		size_t skip = 1;
		if (strncmp(tmpl, "{arn}", 5) == 0) {
			value = arn;
			skip = 5;
		} else if (strncmp(tmpl, "{fleet}", 7) == 0) {
			value = fleet;
			skip = 7;
		}
		if (skip > 1 && value == NULL)
			return -EINVAL;
		r = skip > 1 ? append(buf, size, &len, value, strlen(value))
		             : append(buf, size, &len, tmpl, 1);
		if (r < 0)
			return r;
		tmpl += skip;
	}
	return (int)len;
}

int store_stage_key(char *buf, size_t size, const char *prefix, enum store_stage_key which,
                    const char *arn)
{
	static const char *const tmpl[] = {
		[STORE_KEY_STAGE] = "stage:{arn}",
		[STORE_KEY_DRAINING] = "stage:{arn}:draining",
		[STORE_KEY_DRAINED_BY] = "stage:{arn}:drained_by",
		[STORE_KEY_REPLICATION] = "replication:{arn}",
	};
	int r;

	if ((unsigned)which >= sizeof(tmpl) / sizeof(tmpl[0]) || arn == NULL)
		return -EINVAL;
	r = store_key(buf, size, prefix, tmpl[which], arn, NULL);
	return r < 0 ? r : 0;
}

int store_status_key(char *buf, size_t size, const char *prefix)
{
	int r = store_key(buf, size, prefix, "autoscaler:status", NULL, NULL);
	return r < 0 ? r : 0;
}

/* ---- writes ---------------------------------------------------------------------------------- */

/* Which reply types a command of a write may legitimately get. */
#define OK_STATUS  (1u << REDIS_REPLY_STATUS)
#define OK_INT     (1u << REDIS_REPLY_INTEGER)
#define OK_NIL     (1u << REDIS_REPLY_NIL)
#define OK_ARRAY   (1u << REDIS_REPLY_ARRAY)

struct write_op;

struct write_slot {
	struct write_op *op;
	unsigned accept;      /* OK_* mask */
};

struct write_op {
	store_write_cb *cb;
	void *ud;
	unsigned outstanding;
	int err;
	char error[STORE_ERR_MAX];
	struct write_slot slots[];
};

static void write_finish_maybe(struct write_op *op)
{
	if (--op->outstanding > 0)
		return;
	op->cb(op->ud, op->err, op->err != 0 ? op->error : NULL);
	free(op);
}

static void write_fail(struct write_op *op, int err, const char *what, const char *detail)
{
	if (op->err != 0)
		return;    /* the first failure explains the rest */
	op->err = err;
	snprintf(op->error, sizeof(op->error), "%s%.120s", what, detail);
}

static void on_write_reply(void *ud, redisReply *r, const char *error)
{
	struct write_slot *slot = ud;
	struct write_op *op = slot->op;

	if (r == NULL)
		write_fail(op, -ENOTCONN, "", error);
	else if (r->type == REDIS_REPLY_ERROR)
		write_fail(op, -EIO, "", r->str != NULL ? r->str : "error reply");
	else if (r->type < 0 || r->type > 31 || !(slot->accept & (1u << r->type)))
		write_fail(op, -EIO, "unexpected reply type", "");
	else if (r->type == REDIS_REPLY_ARRAY) {
		/* EXEC: every queued command's own result must not be an error. */
		for (size_t i = 0; i < r->elements; i++)
			if (r->element[i] != NULL && r->element[i]->type == REDIS_REPLY_ERROR)
				write_fail(op, -EIO, "in transaction: ",
				           r->element[i]->str != NULL ? r->element[i]->str : "error");
	}
	write_finish_maybe(op);
}

struct command {
	int argc;
	const char **argv;
	const size_t *argvlen;
	unsigned accept;
};

/* Pipeline the commands; cb fires after the last reply. */
static int write_commands(struct redisio *rio, const struct command *cmds, size_t n,
                          store_write_cb *cb, void *ud)
{
	struct write_op *op;
	int r;

	if (!redisio_connected(rio))
		return -ENOTCONN;
	op = calloc(1, sizeof(*op) + n * sizeof(op->slots[0]));
	if (op == NULL)
		return -ENOMEM;
	op->cb = cb;
	op->ud = ud;
	op->outstanding = 1;    /* held until every command is sent */
	for (size_t i = 0; i < n; i++) {
		op->slots[i].op = op;
		op->slots[i].accept = cmds[i].accept;
		r = redisio_command_argv(rio, cmds[i].argc, cmds[i].argv, cmds[i].argvlen,
		                         on_write_reply, &op->slots[i]);
		if (r < 0) {
			if (i == 0) {
				free(op);
				return r;
			}
			/*
			 * Only a link failure gets here mid-way, and a failed link also fails the
			 * commands already sent (and discards an open MULTI with the connection).
			 */
			write_fail(op, r, "cannot send: ", strerror(-r));
			break;
		}
		op->outstanding++;
	}
	write_finish_maybe(op);
	return 0;
}

static int set_value(struct redisio *rio, const char *key, const char *value, bool nx,
                     store_write_cb *cb, void *ud)
{
	const char *argv[] = { "SET", key, value, "NX" };
	struct command c = { nx ? 4 : 3, argv, NULL, OK_STATUS | (nx ? OK_NIL : 0) };

	if (key == NULL || value == NULL || cb == NULL)
		return -EINVAL;
	return write_commands(rio, &c, 1, cb, ud);
}

static int put_stage_info(struct redisio *rio, const char *key, const char *arn,
                          const char *name, const char *created_at_iso,
                          const char *parent_stage_arn, bool nx, store_write_cb *cb, void *ud)
{
	char *json = store_format_stage_info(arn, name, created_at_iso, parent_stage_arn);
	int r;

	if (json == NULL)
		return -EINVAL;
	r = set_value(rio, key, json, nx, cb, ud);
	free(json);
	return r;
}

int store_put_stage_info(struct redisio *rio, const char *key, const char *arn, const char *name,
                         const char *created_at_iso, const char *parent_stage_arn,
                         store_write_cb *cb, void *ud)
{
	return put_stage_info(rio, key, arn, name, created_at_iso, parent_stage_arn, false, cb, ud);
}

int store_put_stage_info_nx(struct redisio *rio, const char *key, const char *arn,
                            const char *name, const char *created_at_iso,
                            const char *parent_stage_arn, store_write_cb *cb, void *ud)
{
	return put_stage_info(rio, key, arn, name, created_at_iso, parent_stage_arn, true, cb, ud);
}

static int put_replication(struct redisio *rio, const char *key, const char *source_stage_arn,
                           const char *dest_stage_arn, const char *participant_id,
                           const char *started_at_iso, bool nx, store_write_cb *cb, void *ud)
{
	char *json = store_format_replication(source_stage_arn, dest_stage_arn, participant_id,
	                                      started_at_iso);
	int r;

	if (json == NULL)
		return -EINVAL;
	r = set_value(rio, key, json, nx, cb, ud);
	free(json);
	return r;
}

int store_put_replication(struct redisio *rio, const char *key, const char *source_stage_arn,
                          const char *dest_stage_arn, const char *participant_id,
                          const char *started_at_iso, store_write_cb *cb, void *ud)
{
	return put_replication(rio, key, source_stage_arn, dest_stage_arn, participant_id,
	                       started_at_iso, false, cb, ud);
}

int store_put_replication_nx(struct redisio *rio, const char *key, const char *source_stage_arn,
                             const char *dest_stage_arn, const char *participant_id,
                             const char *started_at_iso, store_write_cb *cb, void *ud)
{
	return put_replication(rio, key, source_stage_arn, dest_stage_arn, participant_id,
	                       started_at_iso, true, cb, ud);
}

static int del_keys(struct redisio *rio, int nkeys, const char **keys, store_write_cb *cb,
                    void *ud)
{
	const char *argv[5] = { "DEL" };
	struct command c = { nkeys + 1, argv, NULL, OK_INT };

	if (cb == NULL || nkeys < 1 || nkeys > 4)
		return -EINVAL;
	for (int i = 0; i < nkeys; i++) {
		if (keys[i] == NULL)
			return -EINVAL;
		argv[i + 1] = keys[i];
	}
	return write_commands(rio, &c, 1, cb, ud);
}

int store_del_replication(struct redisio *rio, const char *key, store_write_cb *cb, void *ud)
{
	return del_keys(rio, 1, &key, cb, ud);
}

int store_mark_draining(struct redisio *rio, const char *key, int64_t since_ms,
                        store_write_cb *cb, void *ud)
{
	char value[24];

	if (since_ms < 0)
		return -EINVAL;
	snprintf(value, sizeof(value), "%" PRId64, since_ms);
	return set_value(rio, key, value, true, cb, ud);
}

int store_mark_draining_by_operator(struct redisio *rio, const char *key, const char *by_key,
                                    int64_t since_ms, store_write_cb *cb, void *ud)
{
	char value[24];
	const char *mark[] = { "SET", key, value, "NX" };
	const char *by[] = { "SET", by_key, "operator" };
	const struct command cmds[] = {
		{ 4, mark, NULL, OK_STATUS | OK_NIL },
		{ 3, by, NULL, OK_STATUS },
	};

	if (key == NULL || by_key == NULL || cb == NULL || since_ms < 0)
		return -EINVAL;
	snprintf(value, sizeof(value), "%" PRId64, since_ms);
	return write_commands(rio, cmds, 2, cb, ud);
}

int store_unmark_draining(struct redisio *rio, const char *key, store_write_cb *cb, void *ud)
{
	return del_keys(rio, 1, &key, cb, ud);
}

int store_forget_stage(struct redisio *rio, const char *stage_key, const char *replication_key,
                       const char *draining_key, const char *drained_by_key,
                       store_write_cb *cb, void *ud)
{
	const char *keys[] = { stage_key, replication_key, draining_key, drained_by_key };
	return del_keys(rio, drained_by_key != NULL ? 4 : 3, keys, cb, ud);
}

int store_set_open_stages(struct redisio *rio, const char *key, size_t n,
                          const char *const *arns, const long long *viewers,
                          store_write_cb *cb, void *ud)
{
	const char *multi[] = { "MULTI" }, *exec[] = { "EXEC" }, *del[] = { "DEL", key };
	const char **zadd = NULL;
	char (*scores)[24] = NULL;
	struct command cmds[4];
	size_t ncmds = 0;
	int r = -EINVAL;

	if (key == NULL || cb == NULL || (n > 0 && (arns == NULL || viewers == NULL)) ||
	    n > 100000)
		return -EINVAL;
	cmds[ncmds++] = (struct command){ 1, multi, NULL, OK_STATUS };
	cmds[ncmds++] = (struct command){ 2, del, NULL, OK_STATUS };     /* QUEUED */
	if (n > 0) {
		r = -ENOMEM;
		zadd = calloc(2 + 2 * n, sizeof(*zadd));
		scores = calloc(n, sizeof(*scores));
		if (zadd == NULL || scores == NULL)
			goto out;
		zadd[0] = "ZADD";
		zadd[1] = key;
		r = -EINVAL;
		for (size_t i = 0; i < n; i++) {
			if (arns[i] == NULL)
				goto out;
			snprintf(scores[i], sizeof(scores[i]), "%lld", viewers[i]);
			zadd[2 + 2 * i] = scores[i];
			zadd[3 + 2 * i] = arns[i];
		}
		cmds[ncmds++] = (struct command){ (int)(2 + 2 * n), zadd, NULL, OK_STATUS };
	}
	/* nil from EXEC would mean an aborted transaction: not accepted. */
	cmds[ncmds++] = (struct command){ 1, exec, NULL, OK_ARRAY };
	r = write_commands(rio, cmds, ncmds, cb, ud);
out:
	free(zadd);
	free(scores);
	return r;
}

int store_put_status(struct redisio *rio, const char *key, size_t n, const char *const *fields,
                     const char *const *values, store_write_cb *cb, void *ud)
{
	const char **argv;
	struct command c;
	int r;

	if (key == NULL || cb == NULL || n == 0 || n > 1000 || fields == NULL || values == NULL)
		return -EINVAL;
	argv = calloc(2 + 2 * n, sizeof(*argv));
	if (argv == NULL)
		return -ENOMEM;
	argv[0] = "HSET";
	argv[1] = key;
	r = -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (fields[i] == NULL || values[i] == NULL)
			goto out;
		argv[2 + 2 * i] = fields[i];
		argv[3 + 2 * i] = values[i];
	}
	c = (struct command){ (int)(2 + 2 * n), argv, NULL, OK_INT };
	r = write_commands(rio, &c, 1, cb, ud);
out:
	free(argv);
	return r;
}

/* ---- the fleet read -------------------------------------------------------------------------- */

enum read_what { READ_DESIRED, READ_PUBLISHER, READ_SCARD, READ_DRAINING, READ_DRAINED_BY,
                 READ_GET, READ_TYPE };

struct read_op;

struct read_slot {
	struct read_op *op;
	enum read_what what;
	size_t stage;
};

struct read_op {
	struct redisio *rio;
	store_read_cb *cb;
	void *ud;
	unsigned outstanding;
	bool second_round;
	char **viewer_keys;            /* copies, for the follow-up GET of WRONGTYPE keys */
	bool *wrongtype;
	struct read_slot *slots;       /* 2 + 3n for the first round, 2n for the second */
	struct store_fleet_read res;
};

static void read_free(struct read_op *op)
{
	for (size_t i = 0; op->viewer_keys != NULL && i < op->res.n_stages; i++)
		free(op->viewer_keys[i]);
	free(op->viewer_keys);
	free(op->wrongtype);
	free(op->slots);
	free(op->res.stages);
	free(op);
}

static void read_fail(struct read_op *op, const char *error)
{
	if (!op->res.ok)
		return;
	op->res.ok = false;
	snprintf(op->res.error, sizeof(op->res.error), "%s", error);
}

static bool is_wrongtype(const redisReply *r)
{
	return r->type == REDIS_REPLY_ERROR && r->str != NULL && strncmp(r->str, "WRONGTYPE", 9) == 0;
}

/* A GET of one of our STRING values: NULL + ABSENT, the bytes, or NULL + a reason in err. */
static const char *string_reply(const redisReply *r, size_t *len, enum store_state *state,
                                char *err, size_t errlen)
{
	*len = 0;
	if (r->type == REDIS_REPLY_NIL) {
		*state = STORE_ABSENT;
		return NULL;
	}
	*state = STORE_INVALID;
	if (r->type == REDIS_REPLY_STRING) {
		*len = r->len;
		return r->str;
	}
	if (is_wrongtype(r))
		snprintf(err, errlen, "wrong type: not a string");
	else if (r->type == REDIS_REPLY_ERROR)
		snprintf(err, errlen, "error: %.100s", r->str != NULL ? r->str : "");
	else
		snprintf(err, errlen, "unexpected reply type %d", r->type);
	return NULL;
}

static void read_first_round(struct read_op *op, struct read_slot *slot, const redisReply *r)
{
	struct store_fleet_read *res = &op->res;
	const char *s;
	size_t len;
	enum store_state st;

	switch (slot->what) {
	case READ_DESIRED:
		s = string_reply(r, &len, &st, res->desired.error, sizeof(res->desired.error));
		res->desired.state = st;
		if (s != NULL)
			res->desired.state = store_parse_desired(s, len, &res->desired.value,
			                                         res->desired.error,
			                                         sizeof(res->desired.error)) == 0
			                     ? STORE_OK : STORE_INVALID;
		break;
	case READ_PUBLISHER:
		s = string_reply(r, &len, &st, res->publisher.error, sizeof(res->publisher.error));
		res->publisher.state = st;
		if (s != NULL)
			res->publisher.state = store_parse_publisher(s, len, &res->publisher.info,
			                                             res->publisher.error,
			                                             sizeof(res->publisher.error)) == 0
			                       ? STORE_OK : STORE_INVALID;
		break;
	case READ_SCARD: {
		struct store_stage_read *sr = &res->stages[slot->stage];
		if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0 &&
		    r->integer <= STORE_VIEWERS_MAX) {
			/* SCARD of a missing key is 0: report it as ABSENT with count 0. */
			sr->viewers_state = r->integer > 0 ? STORE_OK : STORE_ABSENT;
			sr->viewers = r->integer;
		} else if (is_wrongtype(r)) {
			op->wrongtype[slot->stage] = true;    /* maybe a STRING integer: GET it */
		} else {
			sr->viewers_state = STORE_INVALID;
			snprintf(sr->viewers_error, sizeof(sr->viewers_error),
			         "unexpected SCARD reply (type %d)", r->type);
		}
		break;
	}
	case READ_DRAINING: {
		struct store_stage_read *sr = &res->stages[slot->stage];
		char err[STORE_ERR_MAX];
		s = string_reply(r, &len, &st, err, sizeof(err));
		sr->draining = st != STORE_ABSENT;
		sr->draining_since_ms = -1;
		if (s != NULL && store_parse_draining(s, len, &sr->draining_since_ms, err,
		                                      sizeof(err)) < 0)
			sr->draining_since_ms = -1;
		break;
	}
	case READ_DRAINED_BY: {
		struct store_stage_read *sr = &res->stages[slot->stage];
		char err[STORE_ERR_MAX];
		s = string_reply(r, &len, &st, err, sizeof(err));
		/* Anything but "operator" is no claim at all. */
		sr->by_operator = s != NULL && len == 8 && memcmp(s, "operator", 8) == 0;
		break;
	}
	default:
		break;
	}
}

static void read_second_round(struct read_op *op, struct read_slot *slot, const redisReply *r)
{
	struct store_stage_read *sr = &op->res.stages[slot->stage];
	size_t len;
	enum store_state st;
	const char *s;

	if (slot->what == READ_GET) {
		s = string_reply(r, &len, &st, sr->viewers_error, sizeof(sr->viewers_error));
		sr->viewers_state = st;
		if (s != NULL)
			sr->viewers_state = store_parse_viewers(s, len, &sr->viewers, sr->viewers_error,
			                                        sizeof(sr->viewers_error)) == 0
			                    ? STORE_OK : STORE_INVALID;
		if (sr->viewers_state != STORE_OK)
			sr->viewers = 0;
	} else if (slot->what == READ_TYPE && sr->viewers_state == STORE_INVALID &&
	           r->type == REDIS_REPLY_STATUS && r->str != NULL &&
	           strcmp(r->str, "string") != 0) {
		/* Replies come in order: GET's verdict is in, name the real type. */
		snprintf(sr->viewers_error, sizeof(sr->viewers_error),
		         "wrong type: a %.20s, expected a set or an integer string", r->str);
	}
}

static void read_complete(struct read_op *op);

static void on_read_reply(void *ud, redisReply *r, const char *error)
{
	struct read_slot *slot = ud;
	struct read_op *op = slot->op;

	if (r == NULL)
		read_fail(op, error);
	else if (op->second_round)
		read_second_round(op, slot, r);
	else
		read_first_round(op, slot, r);
	if (--op->outstanding == 0)
		read_complete(op);
}

static int send_read(struct read_op *op, struct read_slot *slot, const char *cmd,
                     const char *key)
{
	const char *argv[] = { cmd, key };
	int r = redisio_command_argv(op->rio, 2, argv, NULL, on_read_reply, slot);

	if (r == 0)
		op->outstanding++;
	return r;
}

/* The second round: GET + TYPE for every viewers key that was not a set. */
static int read_follow_up(struct read_op *op)
{
	size_t k = 0;
	int r;

	op->second_round = true;
	op->outstanding = 1;
	for (size_t i = 0; i < op->res.n_stages; i++) {
		if (!op->wrongtype[i])
			continue;
		op->slots[k] = (struct read_slot){ op, READ_GET, i };
		op->slots[k + 1] = (struct read_slot){ op, READ_TYPE, i };
		if ((r = send_read(op, &op->slots[k], "GET", op->viewer_keys[i])) < 0 ||
		    (r = send_read(op, &op->slots[k + 1], "TYPE", op->viewer_keys[i])) < 0) {
			read_fail(op, "cannot send the follow-up read");
			break;
		}
		k += 2;
	}
	return --op->outstanding == 0 ? 1 : 0;
}

static void read_complete(struct read_op *op)
{
	if (!op->second_round && op->res.ok) {
		bool any = false;
		for (size_t i = 0; i < op->res.n_stages; i++)
			any = any || op->wrongtype[i];
		if (any && read_follow_up(op) == 0)
			return;    /* wait for the second round */
	}
	op->cb(op->ud, &op->res);
	read_free(op);
}

int store_read_fleet(struct redisio *rio, const struct store_fleet_keys *keys,
                     store_read_cb *cb, void *ud)
{
	struct read_op *op;
	size_t n, k = 0;
	int r = -ENOMEM;

	if (keys == NULL || cb == NULL || keys->desired_stages == NULL || keys->publisher == NULL ||
	    (keys->n_stages > 0 && keys->stages == NULL) || keys->n_stages > 10000)
		return -EINVAL;
	n = keys->n_stages;
	for (size_t i = 0; i < n; i++)
		if (keys->stages[i].viewers == NULL || keys->stages[i].draining == NULL)
			return -EINVAL;
	if (!redisio_connected(rio))
		return -ENOTCONN;
	op = calloc(1, sizeof(*op));
	if (op == NULL)
		return -ENOMEM;
	op->rio = rio;
	op->cb = cb;
	op->ud = ud;
	op->res.ok = true;
	op->res.n_stages = n;
	op->res.stages = calloc(n + 1, sizeof(*op->res.stages));
	op->viewer_keys = calloc(n + 1, sizeof(*op->viewer_keys));
	op->wrongtype = calloc(n + 1, sizeof(*op->wrongtype));
	op->slots = calloc(2 + 3 * n, sizeof(*op->slots));
	if (op->res.stages == NULL || op->viewer_keys == NULL || op->wrongtype == NULL ||
	    op->slots == NULL)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		op->viewer_keys[i] = strdup(keys->stages[i].viewers);
		if (op->viewer_keys[i] == NULL)
			goto fail;
		op->res.stages[i].draining_since_ms = -1;
	}
	op->outstanding = 1;    /* held until every command is sent */
	op->slots[k] = (struct read_slot){ op, READ_DESIRED, 0 };
	if ((r = send_read(op, &op->slots[k++], "GET", keys->desired_stages)) < 0)
		goto fail;    /* nothing in flight yet */
	op->slots[k] = (struct read_slot){ op, READ_PUBLISHER, 0 };
	if (send_read(op, &op->slots[k++], "GET", keys->publisher) < 0)
		read_fail(op, "cannot send the read");
	for (size_t i = 0; i < n && op->res.ok; i++) {
		op->slots[k] = (struct read_slot){ op, READ_SCARD, i };
		op->slots[k + 1] = (struct read_slot){ op, READ_DRAINING, i };
		if (send_read(op, &op->slots[k], "SCARD", keys->stages[i].viewers) < 0 ||
		    send_read(op, &op->slots[k + 1], "GET", keys->stages[i].draining) < 0)
			read_fail(op, "cannot send the read");
		k += 2;
		if (keys->stages[i].drained_by != NULL && op->res.ok) {
			op->slots[k] = (struct read_slot){ op, READ_DRAINED_BY, i };
			if (send_read(op, &op->slots[k], "GET", keys->stages[i].drained_by) < 0)
				read_fail(op, "cannot send the read");
			k++;
		}
	}
	if (--op->outstanding == 0)
		read_complete(op);
	return 0;
fail:
	read_free(op);
	return r;
}

/* ---- SCAN -------------------------------------------------------------------------------- */

struct scan_op {
	store_scan_cb *cb;
	void *ud;
};

static void on_scan_reply(void *ud, redisReply *r, const char *error)
{
	struct scan_op *op = ud;
	const char **keys = NULL;
	size_t n = 0;

	if (r == NULL) {
		op->cb(op->ud, -ENOTCONN, error != NULL ? error : "connection lost", NULL, NULL, 0);
		goto out;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		op->cb(op->ud, -EIO, r->str, NULL, NULL, 0);
		goto out;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
		op->cb(op->ud, -EIO, "SCAN: unexpected reply", NULL, NULL, 0);
		goto out;
	}
	keys = calloc(r->element[1]->elements + 1, sizeof(*keys));
	if (keys == NULL) {
		op->cb(op->ud, -ENOMEM, "out of memory", NULL, NULL, 0);
		goto out;
	}
	for (size_t i = 0; i < r->element[1]->elements; i++) {
		const redisReply *k = r->element[1]->element[i];
		/* hiredis NUL-terminates strings; a key with a NUL inside is no key of ours */
		if (k->type == REDIS_REPLY_STRING && strlen(k->str) == k->len)
			keys[n++] = k->str;
	}
	op->cb(op->ud, 0, NULL, r->element[0]->str, keys, n);
out:
	free(keys);
	free(op);
}

int store_scan(struct redisio *rio, const char *cursor, const char *match, unsigned count,
               store_scan_cb *cb, void *ud)
{
	char cnt[16];
	const char *argv[] = { "SCAN", cursor, "MATCH", match, "COUNT", cnt };
	struct scan_op *op;
	int r;

	if (rio == NULL || cursor == NULL || match == NULL || cb == NULL || count == 0)
		return -EINVAL;
	op = calloc(1, sizeof(*op));
	if (op == NULL)
		return -ENOMEM;
	op->cb = cb;
	op->ud = ud;
	snprintf(cnt, sizeof(cnt), "%u", count);
	r = redisio_command_argv(rio, 6, argv, NULL, on_scan_reply, op);
	if (r < 0)
		free(op);
	return r;
}
