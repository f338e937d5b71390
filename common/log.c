/*
 * log.c — see log.h. One sink chosen at log_init(); no allocation on the logging path beyond a
 * bounded stack buffer, so logging works under memory pressure and never fails loudly.
 */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#define LOG_LINE_MAX   4096   /* a message longer than this is truncated, never split */
#define LOG_FIELDS_MAX 24     /* structured fields per message beyond MESSAGE/PRIORITY/... */

static int log_level = LOG_INFO;
static int log_journal;
static const char *log_ident = "ivs-autoscaler";

/* JOURNAL_STREAM is "DEV:INODE" of the stream systemd connected; compare it with our stderr. */
static int stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	if (e == NULL || sscanf(e, "%llu:%llu%c", &dev, &ino, &tail) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *ident, int verbose)
{
	if (ident != NULL)
		log_ident = ident;
	log_level = verbose ? LOG_DEBUG : LOG_INFO;
	log_journal = stderr_is_journal();
}

int log_get_level(void) { return log_level; }
int log_to_journal(void) { return log_journal; }

void log_set_level(int priority)
{
	if (priority >= LOG_EMERG && priority <= LOG_DEBUG)
		log_level = priority;
}

static const struct {
	const char *name;
	int priority;
} level_names[] = {
	{ "err", LOG_ERR }, { "error", LOG_ERR }, { "warning", LOG_WARNING }, { "warn", LOG_WARNING },
	{ "notice", LOG_NOTICE }, { "info", LOG_INFO }, { "debug", LOG_DEBUG },
};

int log_level_from_string(const char *name)
{
	if (name == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(name, level_names[i].name) == 0)
			return level_names[i].priority;
	return -1;
}

const char *log_level_to_string(int priority)
{
	switch (priority) {
	case LOG_EMERG: case LOG_ALERT: case LOG_CRIT: case LOG_ERR: return "error";
	case LOG_WARNING: return "warning";
	case LOG_NOTICE: return "notice";
	case LOG_INFO: return "info";
	default: return "debug";
	}
}

/* A field value is written bare unless it is empty or holds a space, quote or control byte. */
static void put_plain_field(FILE *f, const char *key, const char *value)
{
	int quote = value[0] == '\0';

	for (const char *p = value; *p != '\0' && !quote; p++)
		if (*p == ' ' || *p == '"' || (unsigned char)*p < 0x20)
			quote = 1;
	fprintf(f, " %s=", key);
	if (!quote) {
		fputs(value, f);
		return;
	}
	fputc('"', f);
	for (const char *p = value; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if ((unsigned char)*p < 0x20)
			fprintf(f, "\\x%02x", (unsigned char)*p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void emit_stderr(int priority, int err, const char *msgid, const char *const *fields,
			const char *msg)
{
	/* One fprintf-built line, flushed once: lines from one process never interleave. */
	char line[LOG_LINE_MAX + 1024];
	FILE *f = fmemopen(line, sizeof(line), "w");

	if (f == NULL) {
		fprintf(stderr, "<%d>%s\n", priority, msg);
		return;
	}
	/* Control characters from untrusted input must not forge extra log lines. */
	fprintf(f, "<%d>", priority);
	for (const char *p = msg; *p != '\0'; p++)
		fputc((unsigned char)*p < 0x20 ? '?' : *p, f);
	if (msgid != NULL)
		put_plain_field(f, "MESSAGE_ID", msgid);
	for (size_t i = 0; fields != NULL && fields[i] != NULL; i += 2) {
		if (fields[i + 1] == NULL)
			continue;
		put_plain_field(f, fields[i], fields[i + 1]);
	}
	if (err != 0) {
		char num[16];
		snprintf(num, sizeof(num), "%d", err);
		put_plain_field(f, "ERRNO", num);
	}
	fputc('\n', f);
	fputc('\0', f);
	fclose(f);
	line[sizeof(line) - 2] = '\n';
	line[sizeof(line) - 1] = '\0';
	fputs(line, stderr);
	fflush(stderr);
}

static void emit_journal(int priority, int err, const char *msgid, const char *const *fields,
			 const char *msg)
{
	/* All "KEY=value" strings live in one arena; a field that does not fit is dropped. */
	char arena[2 * LOG_LINE_MAX];
	struct iovec iov[LOG_FIELDS_MAX + 5];
	size_t used = 0, n = 0;

#define ADD(...) do { \
		int len_ = snprintf(arena + used, sizeof(arena) - used, __VA_ARGS__); \
		if (len_ < 0 || (size_t)len_ >= sizeof(arena) - used) break; \
		iov[n].iov_base = arena + used; iov[n].iov_len = (size_t)len_; \
		used += (size_t)len_ + 1; n++; \
	} while (0)

	ADD("MESSAGE=%s", msg);
	ADD("PRIORITY=%d", priority);
	ADD("SYSLOG_IDENTIFIER=%s", log_ident);
	if (msgid != NULL)
		ADD("MESSAGE_ID=%s", msgid);
	if (err != 0)
		ADD("ERRNO=%d", err);
	for (size_t i = 0; fields != NULL && fields[i] != NULL && n < LOG_FIELDS_MAX + 5; i += 2) {
		if (fields[i + 1] == NULL)
			continue;
		ADD("%s=%s", fields[i], fields[i + 1]);
	}
#undef ADD
	if (sd_journal_sendv(iov, (int)n) < 0)
		emit_stderr(priority, err, msgid, fields, msg);
}

void log_eventv(int priority, int err, const char *msgid, const char *const *fields,
		const char *fmt, va_list ap)
{
	char msg[LOG_LINE_MAX];
	int saved = errno;

	if (priority > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (err != 0) {
		size_t len = strlen(msg);
		snprintf(msg + len, sizeof(msg) - len, ": %s", strerror(err));
	}
	if (log_journal)
		emit_journal(priority, err, msgid, fields, msg);
	else
		emit_stderr(priority, err, msgid, fields, msg);
	errno = saved;
}

void log_event_err(int priority, int err, const char *msgid, const char *const *fields,
		   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_eventv(priority, err, msgid, fields, fmt, ap);
	va_end(ap);
}

#define DEFINE_LOG_HELPER(name, priority, with_errno) \
	void name(const char *fmt, ...) \
	{ \
		int err_ = (with_errno) ? errno : 0; \
		va_list ap; \
		va_start(ap, fmt); \
		log_eventv((priority), err_, NULL, NULL, fmt, ap); \
		va_end(ap); \
	}

DEFINE_LOG_HELPER(log_error, LOG_ERR, 1)
DEFINE_LOG_HELPER(log_errorx, LOG_ERR, 0)
DEFINE_LOG_HELPER(log_warn, LOG_WARNING, 1)
DEFINE_LOG_HELPER(log_warnx, LOG_WARNING, 0)
DEFINE_LOG_HELPER(log_notice, LOG_NOTICE, 0)
DEFINE_LOG_HELPER(log_info, LOG_INFO, 0)
DEFINE_LOG_HELPER(log_debug, LOG_DEBUG, 0)
