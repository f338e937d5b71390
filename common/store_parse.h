/*
 * store_parse.h — pure parsers and formatters for the values ivs-autoscaler keeps in Redis.
 *
 * Every byte read from Redis is untrusted: the application (the original Node.js server) or an
 * operator may have written anything. Each parser takes a (pointer, length) pair — Redis strings
 * are binary and need not be NUL-terminated — and on failure returns -EINVAL and writes a short,
 * printable reason into err (raw values are truncated and non-printable bytes replaced by '?').
 * No clock, no I/O, no globals.
 */
#ifndef IVS_STORE_PARSE_H
#define IVS_STORE_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_DESIRED_MIN        1
#define STORE_DESIRED_MAX        1000
#define STORE_VIEWERS_MAX        1000000000LL   /* a larger "count" is a bug, not an audience */
#define STORE_PUBLISHER_MAX_SIZE 8192           /* bytes of publisher:info JSON we accept */
#define STORE_PARTICIPANT_ID_MAX 64
#define STORE_STAGE_ARN_MAX      128
#define STORE_USER_ID_MAX        128
#define STORE_JOINED_AT_MAX      64
#define STORE_ERR_MAX            160            /* size of the error buffers in our structs */

/* The host as the Node.js server stores it in publisher:info. Empty string = field absent. */
struct store_publisher {
	char participant_id[STORE_PARTICIPANT_ID_MAX + 1];
	char stage_arn[STORE_STAGE_ARN_MAX + 1];
	char user_id[STORE_USER_ID_MAX + 1];
	char joined_at[STORE_JOINED_AT_MAX + 1];
};

/*
 * Strict non-negative decimal integer: digits only (no sign, no spaces, no "0x", non-empty),
 * value <= max. Returns 0, or -EINVAL with a reason.
 */
int store_parse_uint(const char *s, size_t len, long long max, long long *out,
                     char *err, size_t errlen);

/* desired_stages: strict integer in [STORE_DESIRED_MIN, STORE_DESIRED_MAX]. */
int store_parse_desired(const char *s, size_t len, int *out, char *err, size_t errlen);

/* A viewers key stored as a STRING: non-negative integer <= STORE_VIEWERS_MAX. */
int store_parse_viewers(const char *s, size_t len, long long *out, char *err, size_t errlen);

/* stage:{arn}:draining: drain start in ms since the epoch (our own format). */
int store_parse_draining(const char *s, size_t len, int64_t *since_ms, char *err, size_t errlen);

/*
 * publisher:info: JSON object {participantId, stageArn, userId, joinedAt}. participantId is
 * required and matches [a-zA-Z0-9-]{1,64}; stageArn, when present and not null, must be a stage
 * ARN; userId and joinedAt are optional strings (null = absent). Unknown members are ignored
 * (the server may add fields). At most STORE_PUBLISHER_MAX_SIZE bytes.
 */
int store_parse_publisher(const char *s, size_t len, struct store_publisher *out,
                          char *err, size_t errlen);

/*
 * stage:{arn}: JSON object {name, arn, autoScaled, createdAt, parentStage}; only parentStage is
 * read: a stage ARN, or absent / null (parent = ""). Other members are ignored. 0 or -EINVAL
 * (with err) for anything that is not such an object.
 */
int store_parse_stage_parent(const char *s, size_t len, char *parent, size_t parentlen,
                             char *err, size_t errlen);

/* 1 when s is a stage ARN as the IVS model defines it (arn:aws:ivs:REGION:ACCOUNT:stage/ID). */
int store_is_stage_arn(const char *s, size_t len);

/*
 * One member of the manual-replications set: "SRC_STAGE_ARN DST_STAGE_ARN PARTICIPANT_ID", the
 * arguments of `replication start`, one blank between them. Returns 0 with the three fields
 * copied (NUL-terminated), or -EINVAL with a reason.
 */
struct store_manual_replication {
	char src[STORE_STAGE_ARN_MAX + 1];
	char dst[STORE_STAGE_ARN_MAX + 1];
	char participant[STORE_PARTICIPANT_ID_MAX + 1];
};
int store_parse_manual(const char *s, size_t len, struct store_manual_replication *out,
                       char *err, size_t errlen);
/* The member for a manual replication into buf; its length, or -ENAMETOOLONG / -EINVAL. */
int store_format_manual(char *buf, size_t size, const char *src, const char *dst,
                        const char *participant);

/*
 * JSON documents in the exact shape the Node.js server wrote (JSON.stringify: compact, members in
 * this order). Return a malloc'd NUL-terminated string the caller frees, or NULL on ENOMEM/EINVAL
 * (a NULL or non-UTF-8 argument). parent_stage_arn may be NULL (written as null).
 *   stage:{arn}        {"name","arn","autoScaled":true,"createdAt","parentStage"}
 *   replication:{dest} {"sourceStageArn","destStageArn","participantId","startedAt"}
 */
char *store_format_stage_info(const char *arn, const char *name, const char *created_at_iso,
                              const char *parent_stage_arn);
char *store_format_replication(const char *source_stage_arn, const char *dest_stage_arn,
                               const char *participant_id, const char *started_at_iso);

/*
 * The stage ARN in one of the controller's per-stage record keys under prefix:
 * "<prefix>stage:<arn>", "<prefix>stage:<arn>:draining", "<prefix>stage:<arn>:drained_by",
 * "<prefix>replication:<arn>", where <arn> is a stage ARN (store_is_stage_arn). Any other
 * key (the application's viewer sets, the status hash, ...) is not one: returns 0. 1 with the
 * ARN copied into arn.
 */
int store_parse_record_key(const char *prefix, const char *key, char *arn, size_t arnlen);

/* key with the glob characters of SCAN MATCH (* ? [ ] \) escaped by a backslash. 0 or -ENAMETOOLONG. */
int store_glob_escape(const char *key, char *out, size_t outlen);

#endif
