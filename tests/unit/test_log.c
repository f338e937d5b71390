/*
 * test_log.c — the stderr fallback of common/log.c: "<N>message KEY=value" lines, quoting,
 * control characters, level filtering, errno handling, and when JOURNAL_STREAM selects the
 * journal. stderr is redirected to a temporary file around each call.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

struct capture {
	FILE *file;
	int saved_stderr;
};

static void capture_start(struct capture *c)
{
	c->file = tmpfile();
	assert_non_null(c->file);
	fflush(stderr);
	c->saved_stderr = dup(STDERR_FILENO);
	assert_true(c->saved_stderr >= 0);
	assert_true(dup2(fileno(c->file), STDERR_FILENO) >= 0);
}

/* Restores stderr and returns what was written (caller frees). */
static char *capture_end(struct capture *c)
{
	char *out;
	long len;

	fflush(stderr);
	assert_true(dup2(c->saved_stderr, STDERR_FILENO) >= 0);
	close(c->saved_stderr);
	assert_int_equal(fseek(c->file, 0, SEEK_END), 0);
	len = ftell(c->file);
	assert_true(len >= 0);
	rewind(c->file);
	out = calloc(1, (size_t)len + 1);
	assert_non_null(out);
	assert_int_equal(fread(out, 1, (size_t)len, c->file), (size_t)len);
	fclose(c->file);
	return out;
}

static int setup_stderr_mode(void **state)
{
	(void)state;
	unsetenv("JOURNAL_STREAM");
	log_init("test_log", 0);
	return log_to_journal() == 0 ? 0 : -1;
}

#define CAPTURE(out, ...) do { \
		struct capture cap_; \
		capture_start(&cap_); \
		__VA_ARGS__; \
		(out) = capture_end(&cap_); \
	} while (0)

static void test_format_table(void **state)
{
	static const char tab_msg[] = "line1\nline2\tend";
	struct {
		const char *what;
		char *got;
		const char *want;
	} cases[] = {
		{ "plain info", NULL, "<6>hello world\n" },
		{ "fields", NULL, "<6>created IVS_FLEET=main IVS_STAGE_ARN=arn:aws:ivs:us-east-1:1:stage/x\n" },
		{ "space quoted", NULL, "<5>note KEY=\"a b\"\n" },
		{ "quote and backslash", NULL, "<4>w KEY=\"say \\\"hi\\\" c:\\\\x\"\n" },
		{ "control chars in value", NULL, "<3>e KEY=\"a\\x0ab\\x09c\"\n" },
		{ "empty value", NULL, "<6>i KEY=\"\"\n" },
		{ "NULL value skipped", NULL, "<6>i B=2\n" },
		{ "control chars in message", NULL, "<6>line1?line2?end\n" },
		{ "message id", NULL, "<6>started MESSAGE_ID=" MSGID_STARTED " A=1\n" },
		{ "event with errno", NULL, NULL },
	};
	(void)state;

	CAPTURE(cases[0].got, log_info("hello %s", "world"));
	CAPTURE(cases[1].got, log_event(LOG_INFO, NULL,
					LOG_FIELDS("IVS_FLEET", "main", "IVS_STAGE_ARN",
						   "arn:aws:ivs:us-east-1:1:stage/x"), "created"));
	CAPTURE(cases[2].got, log_event(LOG_NOTICE, NULL, LOG_FIELDS("KEY", "a b"), "note"));
	CAPTURE(cases[3].got, log_event(LOG_WARNING, NULL, LOG_FIELDS("KEY", "say \"hi\" c:\\x"), "w"));
	CAPTURE(cases[4].got, log_event(LOG_ERR, NULL, LOG_FIELDS("KEY", "a\nb\tc"), "e"));
	CAPTURE(cases[5].got, log_event(LOG_INFO, NULL, LOG_FIELDS("KEY", ""), "i"));
	CAPTURE(cases[6].got, log_event(LOG_INFO, NULL, LOG_FIELDS("A", NULL, "B", "2"), "i"));
	CAPTURE(cases[7].got, log_info("%s", tab_msg));
	CAPTURE(cases[8].got, log_event(LOG_INFO, MSGID_STARTED, LOG_FIELDS("A", "1"), "started"));
	CAPTURE(cases[9].got, log_event_err(LOG_WARNING, ENOENT, NULL, NULL, "open %s", "x"));
	{
		char want[256];
		snprintf(want, sizeof(want), "<4>open x: %s ERRNO=%d\n", strerror(ENOENT), ENOENT);
		assert_string_equal(cases[9].got, want);
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].want != NULL && strcmp(cases[i].got, cases[i].want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].what, cases[i].got, cases[i].want);
		free(cases[i].got);
	}
}

static void test_warn_appends_strerror(void **state)
{
	char *got, want[256];
	(void)state;

	errno = EACCES;
	CAPTURE(got, log_warn("cannot open %s", "/etc/x"));
	snprintf(want, sizeof(want), "<4>cannot open /etc/x: %s ERRNO=%d\n", strerror(EACCES), EACCES);
	assert_string_equal(got, want);
	free(got);

	errno = EACCES;
	CAPTURE(got, log_warnx("cannot open %s", "/etc/x"));
	assert_string_equal(got, "<4>cannot open /etc/x\n");
	free(got);

	errno = EPIPE;
	CAPTURE(got, log_error("write"));
	snprintf(want, sizeof(want), "<3>write: %s ERRNO=%d\n", strerror(EPIPE), EPIPE);
	assert_string_equal(got, want);
	free(got);

	/* Logging must not clobber errno: callers often log, then return -errno. */
	errno = ETIMEDOUT;
	CAPTURE(got, log_info("x"));
	assert_int_equal(errno, ETIMEDOUT);
	free(got);
}

static void test_level_filtering(void **state)
{
	char *got;
	(void)state;

	log_init("test_log", 0);
	CAPTURE(got, log_debug("hidden"));
	assert_string_equal(got, "");
	free(got);

	log_init("test_log", 1);
	assert_int_equal(log_get_level(), LOG_DEBUG);
	CAPTURE(got, log_debug("shown"));
	assert_string_equal(got, "<7>shown\n");
	free(got);

	log_set_level(LOG_WARNING);
	CAPTURE(got, (log_info("no"), log_notice("no"), log_warnx("yes"), log_errorx("also")));
	assert_string_equal(got, "<4>yes\n<3>also\n");
	free(got);

	log_set_level(99);  /* invalid: ignored */
	assert_int_equal(log_get_level(), LOG_WARNING);
	log_init("test_log", 0);
	assert_int_equal(log_get_level(), LOG_INFO);
}

static void test_level_names(void **state)
{
	(void)state;
	assert_int_equal(log_level_from_string("debug"), LOG_DEBUG);
	assert_int_equal(log_level_from_string("info"), LOG_INFO);
	assert_int_equal(log_level_from_string("notice"), LOG_NOTICE);
	assert_int_equal(log_level_from_string("warning"), LOG_WARNING);
	assert_int_equal(log_level_from_string("warn"), LOG_WARNING);
	assert_int_equal(log_level_from_string("err"), LOG_ERR);
	assert_int_equal(log_level_from_string("error"), LOG_ERR);
	assert_int_equal(log_level_from_string("DEBUG"), -1);
	assert_int_equal(log_level_from_string(""), -1);
	assert_int_equal(log_level_from_string(NULL), -1);
	assert_string_equal(log_level_to_string(LOG_ERR), "error");
	assert_string_equal(log_level_to_string(LOG_WARNING), "warning");
	assert_string_equal(log_level_to_string(LOG_DEBUG), "debug");
	/* Every name we print parses back. */
	for (int p = LOG_ERR; p <= LOG_DEBUG; p++)
		assert_int_equal(log_level_from_string(log_level_to_string(p)), p);
}

static void test_long_message_is_one_line(void **state)
{
	char *big = malloc(20000), *got;
	(void)state;

	assert_non_null(big);
	memset(big, 'x', 19999);
	big[19999] = '\0';
	CAPTURE(got, log_event(LOG_INFO, NULL, LOG_FIELDS("K", big), "%s", big));
	assert_true(strlen(got) > 4000);
	assert_int_equal(strncmp(got, "<6>xxx", 6), 0);
	assert_non_null(strchr(got, '\n'));
	assert_int_equal(strchr(got, '\n')[1], '\0');   /* exactly one line, newline-terminated */
	free(got);
	free(big);
}

/* JOURNAL_STREAM selects the journal only when it names our own stderr. */
static void test_journal_stream_detection(void **state)
{
	struct stat st;
	char value[64];
	struct capture cap;
	char *got;
	(void)state;

	static const char *const mismatched[] = { "1:2", "", "abc", "12", "1:2:3", "1:2x" };
	for (size_t i = 0; i < sizeof(mismatched) / sizeof(mismatched[0]); i++) {
		assert_int_equal(setenv("JOURNAL_STREAM", mismatched[i], 1), 0);
		log_init("test_log", 0);
		assert_int_equal(log_to_journal(), 0);
	}
	/* Still stderr mode: the line lands on stderr. */
	CAPTURE(got, log_info("to stderr"));
	assert_string_equal(got, "<6>to stderr\n");
	free(got);

	/* Point JOURNAL_STREAM at whatever stderr is right now: detection must say "journal". */
	capture_start(&cap);
	assert_int_equal(fstat(STDERR_FILENO, &st), 0);
	snprintf(value, sizeof(value), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	assert_int_equal(setenv("JOURNAL_STREAM", value, 1), 0);
	log_init("test_log", 0);
	assert_int_equal(log_to_journal(), 1);
	got = capture_end(&cap);
	free(got);

	unsetenv("JOURNAL_STREAM");
	log_init("test_log", 0);
	assert_int_equal(log_to_journal(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_table),
		cmocka_unit_test(test_warn_appends_strerror),
		cmocka_unit_test(test_level_filtering),
		cmocka_unit_test(test_level_names),
		cmocka_unit_test(test_long_message_is_one_line),
		cmocka_unit_test(test_journal_stream_detection),
	};
	return cmocka_run_group_tests(tests, setup_stderr_mode, NULL);
}
