/*
 * test_util.c — durations, strict integers and secret files.
 */
#include <ctype.h>
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
#include "util.h"

static const struct duration_case {
	const char *in;
	int rc;
	uint64_t ms;
} duration_cases[] = {
	{ "0", -EINVAL, 0 },
	{ "", -EINVAL, 0 },
	{ "s", -EINVAL, 0 },
	{ "5", -EINVAL, 0 },
	{ "5x", -EINVAL, 0 },
	{ "0s", 0, 0 },
	{ "0ms", 0, 0 },
	{ "250ms", 0, 250 },
	{ "15s", 0, 15000 },
	{ "5m", 0, 300000 },
	{ "2h", 0, 7200000 },
	{ "1h30m", 0, 5400000 },
	{ "1h0m5s", 0, 3605000 },
	{ "1m30s500ms", 0, 90500 },
	{ "90s", 0, 90000 },
	{ "007s", 0, 7000 },
	{ "18446744073709551615ms", 0, UINT64_MAX },
	{ "18446744073709551616ms", -ERANGE, 0 },
	{ "18446744073709551615s", -ERANGE, 0 },
	{ "5124095576030h", 0, 5124095576030ULL * 3600000ULL },
	{ "5124095576031h", -ERANGE, 0 },
	{ "5124095576030h1h", -EINVAL, 0 },     /* repeated unit */
	{ "5124095576030h25m51s615ms", 0, UINT64_MAX },
	{ "5124095576030h25m51s616ms", -ERANGE, 0 },
	{ "30m1h", -EINVAL, 0 },                /* units out of order */
	{ "1s1s", -EINVAL, 0 },
	{ " 5s", -EINVAL, 0 },
	{ "5s ", -EINVAL, 0 },
	{ "5 s", -EINVAL, 0 },
	{ "-5s", -EINVAL, 0 },
	{ "+5s", -EINVAL, 0 },
	{ "1.5s", -EINVAL, 0 },
	{ "5S", -EINVAL, 0 },
	{ "1d", -EINVAL, 0 },
	{ "5sec", -EINVAL, 0 },
	{ "5mss", -EINVAL, 0 },
	{ "h", -EINVAL, 0 },
	{ "1h30", -EINVAL, 0 },
	{ "5s\n", -EINVAL, 0 },
};

static void test_parse_duration(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(duration_cases) / sizeof(duration_cases[0]); i++) {
		const struct duration_case *c = &duration_cases[i];
		uint64_t ms = 12345;
		int rc = parse_duration_ms(c->in, &ms);
		if (rc != c->rc)
			fail_msg("parse_duration_ms(\"%s\") = %d, want %d", c->in, rc, c->rc);
		if (rc == 0 && ms != c->ms)
			fail_msg("parse_duration_ms(\"%s\") -> %llu, want %llu", c->in,
				 (unsigned long long)ms, (unsigned long long)c->ms);
		if (rc != 0 && ms != 12345)
			fail_msg("parse_duration_ms(\"%s\") wrote its output on error", c->in);
	}
	assert_int_equal(parse_duration_ms(NULL, &(uint64_t){ 0 }), -EINVAL);
}

static const struct {
	uint64_t ms;
	const char *out;
} format_cases[] = {
	{ 0, "0s" }, { 1, "1ms" }, { 250, "250ms" }, { 1000, "1s" }, { 1500, "1s500ms" },
	{ 60000, "1m" }, { 300000, "5m" }, { 5400000, "1h30m" }, { 7200000, "2h" },
	{ 3600001, "1h1ms" }, { 86400000, "24h" },
	{ UINT64_MAX, "5124095576030h25m51s615ms" },
};

static void test_format_duration(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(format_cases) / sizeof(format_cases[0]); i++) {
		char buf[64];
		uint64_t back = 0;
		int len = format_duration_ms(format_cases[i].ms, buf, sizeof(buf));
		assert_int_equal(len, (int)strlen(format_cases[i].out));
		assert_string_equal(buf, format_cases[i].out);
		/* Round trip: what we print, we parse back to the same value. */
		assert_int_equal(parse_duration_ms(buf, &back), 0);
		assert_true(back == format_cases[i].ms);
	}
}

static void test_format_duration_small_buffer(void **state)
{
	char buf[6];
	(void)state;
	assert_int_equal(format_duration_ms(5400000, buf, sizeof(buf)), 5); /* "1h30m" needs 6 */
	assert_int_equal(format_duration_ms(5400001, buf, sizeof(buf)), -ENOSPC);
	assert_string_equal(buf, "");
	assert_int_equal(format_duration_ms(5400000, buf, 5), -ENOSPC);
	assert_string_equal(buf, "");
	assert_int_equal(format_duration_ms(0, buf, 2), -ENOSPC);
	assert_int_equal(format_duration_ms(0, buf, 0), -ENOSPC);
}

static const struct uint_case {
	const char *in;
	uint64_t max;
	int rc;
	uint64_t out;
} uint_cases[] = {
	{ "0", 10, 0, 0 },
	{ "10", 10, 0, 10 },
	{ "11", 10, -ERANGE, 0 },
	{ "007", 10, 0, 7 },
	{ "", 10, -EINVAL, 0 },
	{ "-1", 10, -EINVAL, 0 },
	{ "+1", 10, -EINVAL, 0 },
	{ " 1", 10, -EINVAL, 0 },
	{ "1 ", 10, -EINVAL, 0 },
	{ "1x", 10, -EINVAL, 0 },
	{ "0x10", 100, -EINVAL, 0 },
	{ "1.5", 10, -EINVAL, 0 },
	{ "1e3", 10000, -EINVAL, 0 },
	{ "18446744073709551615", UINT64_MAX, 0, UINT64_MAX },
	{ "18446744073709551616", UINT64_MAX, -ERANGE, 0 },
	{ "99999999999999999999999", UINT64_MAX, -ERANGE, 0 },
	{ "99999999999999999999999x", UINT64_MAX, -EINVAL, 0 },
	{ "5", 0, -ERANGE, 0 },
	{ "0", 0, 0, 0 },
};

static void test_parse_uint64(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(uint_cases) / sizeof(uint_cases[0]); i++) {
		const struct uint_case *c = &uint_cases[i];
		uint64_t out = 42;
		int rc = parse_uint64(c->in, c->max, &out);
		if (rc != c->rc)
			fail_msg("parse_uint64(\"%s\", %llu) = %d, want %d", c->in,
				 (unsigned long long)c->max, rc, c->rc);
		if (rc == 0 && out != c->out)
			fail_msg("parse_uint64(\"%s\") -> %llu", c->in, (unsigned long long)out);
		if (rc != 0 && out != 42)
			fail_msg("parse_uint64(\"%s\") wrote its output on error", c->in);
	}
	assert_int_equal(parse_uint64(NULL, 1, &(uint64_t){ 0 }), -EINVAL);
}

static const struct int_case {
	const char *in;
	int64_t min, max;
	int rc;
	int64_t out;
} int_cases[] = {
	{ "0", -5, 5, 0, 0 },
	{ "-5", -5, 5, 0, -5 },
	{ "-6", -5, 5, -ERANGE, 0 },
	{ "6", -5, 5, -ERANGE, 0 },
	{ "-0", -5, 5, 0, 0 },
	{ "-", -5, 5, -EINVAL, 0 },
	{ "--1", -5, 5, -EINVAL, 0 },
	{ "+1", -5, 5, -EINVAL, 0 },
	{ "1 ", -5, 5, -EINVAL, 0 },
	{ "", -5, 5, -EINVAL, 0 },
	{ "9223372036854775807", INT64_MIN, INT64_MAX, 0, INT64_MAX },
	{ "9223372036854775808", INT64_MIN, INT64_MAX, -ERANGE, 0 },
	{ "-9223372036854775808", INT64_MIN, INT64_MAX, 0, INT64_MIN },
	{ "-9223372036854775809", INT64_MIN, INT64_MAX, -ERANGE, 0 },
	{ "-99999999999999999999", INT64_MIN, INT64_MAX, -ERANGE, 0 },
	{ "12a", INT64_MIN, INT64_MAX, -EINVAL, 0 },
	{ "1", 5, 10, -ERANGE, 0 },
};

static void test_parse_int64(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(int_cases) / sizeof(int_cases[0]); i++) {
		const struct int_case *c = &int_cases[i];
		int64_t out = 42;
		int rc = parse_int64(c->in, c->min, c->max, &out);
		if (rc != c->rc)
			fail_msg("parse_int64(\"%s\") = %d, want %d", c->in, rc, c->rc);
		if (rc == 0 && out != c->out)
			fail_msg("parse_int64(\"%s\") -> %lld", c->in, (long long)out);
	}
	assert_int_equal(parse_int64("1", 5, 1, &(int64_t){ 0 }), -EINVAL);
}

/* ---- secret files ---------------------------------------------------------------------- */

static char tmpdir[64];

static int setup_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_util.XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown_tmpdir(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

/* Runs read_file_secret with stderr captured in a temporary file; returns what was logged. */
static int read_secret_capture(const char *path, char **out, char *err, size_t errlen,
			       char *logged, size_t loglen)
{
	FILE *cap = tmpfile();
	int saved = dup(STDERR_FILENO), rc;
	size_t n;

	assert_non_null(cap);
	assert_true(saved >= 0);
	fflush(stderr);
	assert_true(dup2(fileno(cap), STDERR_FILENO) >= 0);
	unsetenv("JOURNAL_STREAM");
	log_init("test_util", 0);
	rc = read_file_secret(path, out, err, errlen);
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(cap);
	n = fread(logged, 1, loglen - 1, cap);
	logged[n] = '\0';
	fclose(cap);
	return rc;
}

static void test_read_secret(void **state)
{
	static const struct {
		const char *content;
		size_t len;
		const char *want;
	} cases[] = {
		{ "hunter2\n", 8, "hunter2" },
		{ "hunter2", 7, "hunter2" },
		{ "hunter2\r\n", 9, "hunter2" },
		{ "hunter2\n\n", 9, "hunter2\n" },   /* only one newline is stripped */
		{ "", 0, "" },
		{ " spaced pass \n", 14, " spaced pass " },
	};
	char path[128], err[256], logged[1024];
	(void)state;

	snprintf(path, sizeof(path), "%s/secret", tmpdir);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = NULL;
		write_file(path, cases[i].content, cases[i].len, 0600);
		assert_int_equal(read_secret_capture(path, &out, err, sizeof(err), logged, sizeof(logged)), 0);
		assert_string_equal(out, cases[i].want);
		assert_string_equal(logged, "");
		free(out);
	}
}

static void test_read_secret_group_readable_warns(void **state)
{
	char path[128], err[256], logged[1024];
	char *out = NULL;
	(void)state;

	snprintf(path, sizeof(path), "%s/open-secret", tmpdir);
	write_file(path, "s3cr3t-value\n", 13, 0640);
	assert_int_equal(read_secret_capture(path, &out, err, sizeof(err), logged, sizeof(logged)), 0);
	assert_string_equal(out, "s3cr3t-value");
	assert_non_null(strstr(logged, "<4>"));
	assert_non_null(strstr(logged, "readable by group or others"));
	assert_non_null(strstr(logged, path));
	assert_null(strstr(logged, "s3cr3t-value"));   /* the secret itself never reaches the log */
	free(out);
}

static void test_read_secret_errors(void **state)
{
	char path[128], big[128], nul[128], err[256], logged[1024];
	char *out = (char *)"untouched";
	char *data;
	(void)state;

	snprintf(path, sizeof(path), "%s/missing", tmpdir);
	assert_int_equal(read_secret_capture(path, &out, err, sizeof(err), logged, sizeof(logged)), -ENOENT);
	assert_null(out);
	assert_non_null(strstr(err, "cannot open"));
	assert_non_null(strstr(err, "missing"));

	assert_int_equal(read_secret_capture(tmpdir, &out, err, sizeof(err), logged, sizeof(logged)), -EINVAL);
	assert_non_null(strstr(err, "not a regular file"));

	snprintf(big, sizeof(big), "%s/big", tmpdir);
	data = calloc(1, UTIL_SECRET_MAX + 1);
	assert_non_null(data);
	memset(data, 'a', UTIL_SECRET_MAX + 1);
	write_file(big, data, UTIL_SECRET_MAX + 1, 0600);
	assert_int_equal(read_secret_capture(big, &out, err, sizeof(err), logged, sizeof(logged)), -EFBIG);
	assert_null(out);
	/* Exactly the cap is fine. */
	write_file(big, data, UTIL_SECRET_MAX, 0600);
	assert_int_equal(read_secret_capture(big, &out, err, sizeof(err), logged, sizeof(logged)), 0);
	assert_int_equal(strlen(out), UTIL_SECRET_MAX);
	free(out);
	free(data);

	snprintf(nul, sizeof(nul), "%s/nul", tmpdir);
	write_file(nul, "ab\0cd", 5, 0600);
	assert_int_equal(read_secret_capture(nul, &out, err, sizeof(err), logged, sizeof(logged)), -EINVAL);
	assert_non_null(strstr(err, "NUL"));
}

static void test_read_file_bounded(void **state)
{
	char path[128], missing[128];
	const char *failed = "untouched";
	char *out = (char *)"untouched";
	size_t len = 99;
	unsigned mode = 0;
	(void)state;

	snprintf(path, sizeof(path), "%s/bounded", tmpdir);
	write_file(path, "a\0b\n", 4, 0640);
	/* The bytes as they are: NUL bytes and newlines kept, a NUL added after them. */
	assert_int_equal(read_file_bounded(path, 4, &out, &len, &mode, &failed), 0);
	assert_int_equal(len, 4);
	assert_memory_equal(out, "a\0b\n", 5);
	assert_int_equal(mode, 0640);
	free(out);

	assert_int_equal(read_file_bounded(path, 3, &out, &len, NULL, &failed), -EFBIG);
	assert_null(out);
	assert_null(failed);

	write_file(path, "", 0, 0600);
	assert_int_equal(read_file_bounded(path, 0, &out, &len, NULL, &failed), 0);
	assert_int_equal(len, 0);
	assert_string_equal(out, "");
	free(out);

	assert_int_equal(read_file_bounded(tmpdir, 16, &out, &len, NULL, &failed), -EINVAL);
	assert_null(failed);

	snprintf(missing, sizeof(missing), "%s/missing", tmpdir);
	assert_int_equal(read_file_bounded(missing, 16, &out, &len, NULL, &failed), -ENOENT);
	assert_non_null(failed);
	assert_string_equal(failed, "open");
	assert_null(out);
}

static void test_hex_digit_value(void **state)
{
	static const char digits[] = "0123456789abcdef";
	(void)state;

	for (int i = 0; i < 16; i++) {
		assert_int_equal(hex_digit_value(digits[i]), i);
		assert_int_equal(hex_digit_value(toupper((unsigned char)digits[i])), i);
	}
	assert_int_equal(hex_digit_value('g'), -1);
	assert_int_equal(hex_digit_value('G'), -1);
	assert_int_equal(hex_digit_value('/'), -1);
	assert_int_equal(hex_digit_value(':'), -1);
	assert_int_equal(hex_digit_value('%'), -1);
	assert_int_equal(hex_digit_value('\0'), -1);
	assert_int_equal(hex_digit_value(0xe9), -1);
}

static void test_str_has_prefix(void **state)
{
	(void)state;
	assert_true(str_has_prefix("ivs-autoscaler:fleet", "ivs-autoscaler:"));
	assert_true(str_has_prefix("abc", ""));
	assert_false(str_has_prefix("ab", "abc"));
	assert_false(str_has_prefix("xabc", "abc"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_format_duration),
		cmocka_unit_test(test_format_duration_small_buffer),
		cmocka_unit_test(test_parse_uint64),
		cmocka_unit_test(test_parse_int64),
		cmocka_unit_test(test_read_secret),
		cmocka_unit_test(test_read_secret_group_readable_warns),
		cmocka_unit_test(test_read_secret_errors),
		cmocka_unit_test(test_read_file_bounded),
		cmocka_unit_test(test_hex_digit_value),
		cmocka_unit_test(test_str_has_prefix),
	};
	return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
