/*
 * log.h — leveled, structured logging to journald or stderr.
 *
 * When stderr is the journal (JOURNAL_STREAM names our stderr's dev:inode), every message goes
 * through sd_journal_sendv() with MESSAGE, PRIORITY, an optional MESSAGE_ID and structured
 * fields. Otherwise it is one line on stderr: "<N>message KEY=value ...", where N is the syslog
 * priority, so that systemd (or a human) can still read the level.
 *
 * Fields are given as a NULL-terminated list of alternating key/value strings; a NULL value
 * skips that field. Keys are journald field names: [A-Z0-9_], no leading underscore.
 *
 *     log_event(LOG_INFO, MSGID_STAGE_CREATED,
 *               LOG_FIELDS("IVS_FLEET", fleet, "IVS_STAGE_ARN", arn),
 *               "created replica stage %s", arn);
 *
 * Never pass secrets, Authorization headers or participant tokens to any of these.
 */
#ifndef IVS_LOG_H
#define IVS_LOG_H

#include <stdarg.h>
#include <syslog.h>

#define LOG_FIELDS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* MESSAGE_IDs of the events operators filter on (journalctl MESSAGE_ID=...). */
#define MSGID_STAGE_CREATED          "2a4a6e061370454fbc9e0050446a8862"
#define MSGID_STAGE_DELETED          "61178881a26e4f039e6e4b1a4f39d59a"
#define MSGID_REPLICATION_STARTED    "79b3c88a74604fb7ac1d6d4509dda56f"
#define MSGID_REPLICATION_STOPPED    "17cc1937973c4d22a64a66c1b6d7e8e3"
#define MSGID_SCALE_DECISION         "66651f9225b443d8bf8952371e4824a5"
#define MSGID_QUOTA_CAPPED           "6e56f458e5af48018f45d9d8c5ac8d2a"
#define MSGID_FAIL_STATIC_ENTERED    "7f57ba025f944d529b974ed6a8244cf3"
#define MSGID_FAIL_STATIC_LEFT       "4964104f9cc44686bf9759735b983149"
#define MSGID_STAGE_DRAINING         "5e0ebdf858dc42cbbd3c64d6d8c5ea3e"
#define MSGID_CONFIG_RELOADED        "8ef600a913fe42fbb891030b15ea893c"
#define MSGID_ADMIN_COMMAND          "b587123efcfe42e980c4ee6999e01969"
#define MSGID_STARTED                "fee1b3fe06c141609cf1d3099dbed12b"
#define MSGID_ORIGIN_MISSING         "abcfb0243c394b87bd4a40e5a4ad6c0b"
#define MSGID_LEADERSHIP             "fa1828038cfc4239af96a356a862acdb"

/*
 * log_init: choose the sink (journal or stderr) and the initial level. verbose != 0 enables
 * LOG_DEBUG. Safe to call again (e.g. in tests after changing JOURNAL_STREAM).
 */
void log_init(const char *ident, int verbose);

/* Current maximum priority that is emitted (LOG_ERR .. LOG_DEBUG). */
int log_get_level(void);
void log_set_level(int priority);

/* "debug", "info", "notice", "warning", "err"/"error" -> priority; -1 if unknown. */
int log_level_from_string(const char *name);
const char *log_level_to_string(int priority);

/* 1 when messages go to the journal, 0 for stderr. */
int log_to_journal(void);

/*
 * The general entry point. err != 0 appends ": strerror(err)" to the message and sets ERRNO=.
 * msgid may be NULL; fields may be NULL.
 */
void log_eventv(int priority, int err, const char *msgid, const char *const *fields,
                const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
void log_event_err(int priority, int err, const char *msgid, const char *const *fields,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define log_event(priority, msgid, fields, ...) \
	log_event_err((priority), 0, (msgid), (fields), __VA_ARGS__)

/* Plain helpers. The *x variants do not append errno; log_warn/log_error append strerror(errno). */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errorx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
