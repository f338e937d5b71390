/*
 * store.h — typed reads and writes of ivs-autoscaler's Redis keys (ARCHITECTURE.md §3), over
 * redisio. Each operation is one round trip: its commands are pipelined and the callback fires
 * when the last reply arrives (writes that must be atomic are wrapped in MULTI/EXEC).
 *
 * Key names are passed in fully expanded, prefix included: the caller owns the key layout
 * (templates, prefix, fleet placeholders). store_key() builds one from a template.
 *
 * Every operation returns 0 and then calls its callback exactly once, or returns a negative
 * errno (-ENOTCONN while Redis is down, -EINVAL, -ENOMEM) and never calls it.
 * Nothing read from Redis is trusted: every reply type is checked.
 */
#ifndef IVS_STORE_H
#define IVS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redisio.h"
#include "store_parse.h"

enum store_state { STORE_ABSENT, STORE_OK, STORE_INVALID };

struct store_stage_keys {
	const char *viewers;      /* e.g. "ivs:prod:stage:{arn}:viewers" expanded */
	const char *draining;     /* e.g. "ivs:prod:stage:{arn}:draining" expanded */
	const char *drained_by;   /* e.g. "ivs:prod:stage:{arn}:drained_by"; NULL: not read */
};

struct store_fleet_keys {
	const char *desired_stages;
	const char *publisher;
	size_t n_stages;
	const struct store_stage_keys *stages;
};

struct store_stage_read {
	enum store_state viewers_state;   /* ABSENT: count 0 */
	long long viewers;
	char viewers_error[STORE_ERR_MAX];
	bool draining;                    /* the draining key exists */
	int64_t draining_since_ms;        /* -1: present but unparsable (treat as "now") */
	bool by_operator;                 /* drained_by holds "operator" */
};

struct store_fleet_read {
	bool ok;                          /* false: Redis down or the read failed; see error */
	char error[STORE_ERR_MAX];
	struct {
		enum store_state state;
		int value;
		char error[STORE_ERR_MAX];
	} desired;
	struct {
		enum store_state state;
		struct store_publisher info;
		char error[STORE_ERR_MAX];
	} publisher;
	size_t n_stages;                  /* same order as store_fleet_keys.stages */
	struct store_stage_read *stages;
};

/* The result is valid only during the call. */
typedef void store_read_cb(void *ud, const struct store_fleet_read *result);
/* err: 0, -EIO (Redis replied with an error or an unexpected type), -ENOTCONN (link failed). */
typedef void store_write_cb(void *ud, int err, const char *error);

/*
 * Desired count (GET), publisher (GET), and per stage: viewers (SCARD; a WRONGTYPE key gets a
 * follow-up GET + TYPE, so a STRING integer is accepted), draining (GET) and, when its key is
 * given, drained_by (GET).
 */
int store_read_fleet(struct redisio *rio, const struct store_fleet_keys *keys,
                     store_read_cb *cb, void *ud);

/* SET key to the stage info JSON (store_format_stage_info). parent may be NULL. */
int store_put_stage_info(struct redisio *rio, const char *key, const char *arn, const char *name,
                         const char *created_at_iso, const char *parent_stage_arn,
                         store_write_cb *cb, void *ud);
/* SET key to the replication JSON (store_format_replication). */
int store_put_replication(struct redisio *rio, const char *key, const char *source_stage_arn,
                          const char *dest_stage_arn, const char *participant_id,
                          const char *started_at_iso, store_write_cb *cb, void *ud);
/*
 * The same two records, written only when the key is absent (SET NX): the reconciler records
 * a stage or replication it finds in IVS without having seen it created, and never replaces
 * the creation-time record. cb gets 0 whether or not the key was set.
 */
int store_put_stage_info_nx(struct redisio *rio, const char *key, const char *arn,
                            const char *name, const char *created_at_iso,
                            const char *parent_stage_arn, store_write_cb *cb, void *ud);
int store_put_replication_nx(struct redisio *rio, const char *key, const char *source_stage_arn,
                             const char *dest_stage_arn, const char *participant_id,
                             const char *started_at_iso, store_write_cb *cb, void *ud);
int store_del_replication(struct redisio *rio, const char *key, store_write_cb *cb, void *ud);
/* SET key since_ms NX: a restart keeps the original drain start. */
int store_mark_draining(struct redisio *rio, const char *key, int64_t since_ms,
                        store_write_cb *cb, void *ud);
/*
 * An operator's drain: the draining mark as above, plus by_key = "operator" (SET), which keeps
 * the stage from being put back in service. The value of the draining key stays a number, so
 * an application that only checks for the key sees an ordinary drain.
 */
int store_mark_draining_by_operator(struct redisio *rio, const char *key, const char *by_key,
                                    int64_t since_ms, store_write_cb *cb, void *ud);
int store_unmark_draining(struct redisio *rio, const char *key, store_write_cb *cb, void *ud);
/*
 * DEL stage info, replication, draining and drained_by keys of a stage that is gone (one
 * atomic DEL). drained_by_key may be NULL.
 */
int store_forget_stage(struct redisio *rio, const char *stage_key, const char *replication_key,
                       const char *draining_key, const char *drained_by_key,
                       store_write_cb *cb, void *ud);
/* MULTI; DEL key; ZADD key viewers[i] arns[i]...; EXEC. n == 0 just deletes the key. */
int store_set_open_stages(struct redisio *rio, const char *key, size_t n,
                          const char *const *arns, const long long *viewers,
                          store_write_cb *cb, void *ud);
/* HSET key field value ... (n pairs, n >= 1). */
int store_put_status(struct redisio *rio, const char *key, size_t n, const char *const *fields,
                     const char *const *values, store_write_cb *cb, void *ud);

/*
 * buf = prefix + tmpl with "{arn}" and "{fleet}" replaced (a NULL value for a placeholder that
 * occurs is -EINVAL). Returns the length, -ENAMETOOLONG when it does not fit, -EINVAL.
 */
int store_key(char *buf, size_t size, const char *prefix, const char *tmpl, const char *arn,
              const char *fleet);

/* The keys of ours that are not configurable templates (§3); their spelling lives in store.c. */
enum store_stage_key {
	STORE_KEY_STAGE,          /* stage:{arn}              the stage record (HASH) */
	STORE_KEY_DRAINING,       /* stage:{arn}:draining     drain mark, ms since the epoch */
	STORE_KEY_DRAINED_BY,     /* stage:{arn}:drained_by   "operator" for an operator's drain */
	STORE_KEY_REPLICATION,    /* replication:{arn}        the replication into the stage (HASH) */
};
/* buf = prefix + the key of stage arn. 0, -ENAMETOOLONG, -EINVAL. */
int store_stage_key(char *buf, size_t size, const char *prefix, enum store_stage_key which,
                    const char *arn);
/* buf = prefix + "autoscaler:status". 0, -ENAMETOOLONG. */
int store_status_key(char *buf, size_t size, const char *prefix);

/*
 * One page of SCAN cursor MATCH match COUNT count. next is the cursor to send next ("0": the
 * scan is complete); keys[n] are the page's keys (binary-safe, NUL-terminated copies). The
 * arguments are valid only during the call. err: 0, -EIO (error reply, wrong shape), -ENOTCONN.
 */
typedef void store_scan_cb(void *ud, int err, const char *error, const char *next,
                           const char *const *keys, size_t n);
int store_scan(struct redisio *rio, const char *cursor, const char *match, unsigned count,
               store_scan_cb *cb, void *ud);

#endif
