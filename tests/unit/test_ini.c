/*
 * test_ini.c — the AWS shared-file parser: the SDK format rules and malformed files.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ini.h"

static struct ini_file *parse_ok(const char *text)
{
	struct ini_file *f = NULL;
	char err[128];
	int r = ini_parse(text, strlen(text), &f, err, sizeof(err));

	if (r != 0)
		fail_msg("parse failed (%d): %s\n%s", r, err, text);
	return f;
}

static void test_sections_and_properties(void **state)
{
	struct ini_file *f = parse_ok("# comment\n"
				      "; another\n"
				      "[default]\n"
				      "aws_access_key_id = AKID ; not a comment\n"
				      "aws_secret_access_key=se=cret\r\n"
				      "\n"
				      "[ profile  prod ]   # trailing comment\n"
				      "region = eu-west-1\n"
				      "s3 =\n"
				      "  max_concurrent_requests = 10\n"
				      "\tmax_queue_size = 5\n"
				      "[default]\n"
				      "aws_access_key_id = AKID2\n"
				      "empty =\n");
	const struct ini_section *d = ini_find_section(f, "default");
	const struct ini_section *p = ini_find_section(f, "profile  prod");

	(void)state;
	assert_int_equal(f->nsections, 2);
	assert_non_null(d);
	assert_non_null(p);
	/* repeated section merges, repeated key keeps the last value */
	assert_string_equal(ini_get(d, "aws_access_key_id"), "AKID2");
	assert_string_equal(ini_get(d, "aws_secret_access_key"), "se=cret");
	assert_string_equal(ini_get(d, "empty"), "");
	assert_string_equal(ini_get(p, "region"), "eu-west-1");
	assert_string_equal(ini_get(p, "s3"), "\nmax_concurrent_requests = 10\nmax_queue_size = 5");
	assert_null(ini_get(p, "REGION")); /* case-sensitive */
	assert_null(ini_get(NULL, "x"));
	assert_null(ini_find_section(f, "prod"));
	ini_free(f);

	f = parse_ok("");
	assert_int_equal(f->nsections, 0);
	ini_free(f);
	f = parse_ok("[a]\nk = v"); /* no final newline */
	assert_string_equal(ini_get(ini_find_section(f, "a"), "k"), "v");
	ini_free(f);
}

static void test_malformed(void **state)
{
	static const struct {
		const char *text, *err;
	} cases[] = {
		{ "[default\nk = v\n", "line 1: unterminated section header" },
		{ "[default]\nno equals sign\n", "line 2: expected 'name = value'" },
		{ "k = v\n", "line 1: property outside a [section]" },
		{ "[]\n", "line 1: empty section name" },
		{ "[ ]\n", "line 1: empty section name" },
		{ "[a] junk\n", "line 1: text after section header" },
		{ "[a]\n= v\n", "line 2: empty property name" },
		{ "[a]\n\n  indented\n", "line 3: indented line without a property to continue" },
		{ "  [a]\n", "line 1: indented line without a property to continue" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ini_file *f = (void *)1;
		char err[128];
		int r = ini_parse(cases[i].text, strlen(cases[i].text), &f, err, sizeof(err));
		if (r != -EINVAL)
			fail_msg("case %zu: expected -EINVAL, got %d", i, r);
		assert_null(f);
		assert_string_equal(err, cases[i].err);
	}
}

static void test_huge_line_and_nul(void **state)
{
	size_t n = INI_MAX_LINE + 100;
	char *text = malloc(n + 16);
	struct ini_file *f = NULL;
	char err[128];

	(void)state;
	assert_non_null(text);
	memcpy(text, "[a]\nk = ", 8);
	memset(text + 8, 'x', n - 8);
	assert_int_equal(ini_parse(text, n, &f, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "line 2: line too long");
	assert_null(f);
	free(text);

	assert_int_equal(ini_parse("[a]\nk = v\0w\n", 12, &f, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "line 2: NUL byte");
}

static void test_load_file(void **state)
{
	char dir[] = "/tmp/test_ini.XXXXXX", path[128], err[256];
	struct ini_file *f = NULL;
	FILE *fp;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/config", dir);
	assert_int_equal(ini_load_file(path, &f, err, sizeof(err)), -ENOENT);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("[default]\nregion = us-east-1\n[oops\n", fp);
	fclose(fp);
	assert_int_equal(ini_load_file(path, &f, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "config: line 3: unterminated section header"));
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("[default]\nregion = us-east-1\n", fp);
	fclose(fp);
	assert_int_equal(ini_load_file(path, &f, err, sizeof(err)), 0);
	assert_string_equal(ini_get(ini_find_section(f, "default"), "region"), "us-east-1");
	ini_free(f);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sections_and_properties),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_huge_line_and_nul),
		cmocka_unit_test(test_load_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
