/*
 * ini.h — parser for the AWS shared `credentials` and `config` files.
 *
 * The format as the SDKs read it (botocore's RawConfigParser, aws-c-sdkutils' aws_profile.c):
 * "[section]" headers, "name = value" properties (both trimmed), whole-line comments starting
 * with '#' or ';' (no inline comments: "key = a ; b" has the value "a ; b"), and indented lines
 * that continue the previous property (joined with '\n', as for sub-properties such as "s3 =").
 * Names are case-sensitive. A section seen twice is merged; a property seen twice keeps the
 * last value. Anything else (a property outside a section, a line without '=', an unterminated
 * "[", a line longer than INI_MAX_LINE) is an error with its line number.
 */
#ifndef IVS_INI_H
#define IVS_INI_H

#include <stddef.h>

#define INI_MAX_LINE 8192
#define INI_MAX_FILE (1024 * 1024)

struct ini_property {
	char *name;
	char *value;
};

struct ini_section {
	char *name;
	struct ini_property *props;
	size_t nprops;
};

struct ini_file {
	struct ini_section *sections;
	size_t nsections;
};

/* Parse len bytes (need not be NUL-terminated). 0 and *out (free with ini_free), or -EINVAL
 * with "line N: why" in err, or -ENOMEM. */
int ini_parse(const char *text, size_t len, struct ini_file **out, char *err, size_t errlen);

/* Read and parse a file: -ENOENT when it does not exist (not an error for the chain),
 * -EFBIG over INI_MAX_FILE, -EINVAL with "PATH: line N: why", other -errno. */
int ini_load_file(const char *path, struct ini_file **out, char *err, size_t errlen);

void ini_free(struct ini_file *f);

const struct ini_section *ini_find_section(const struct ini_file *f, const char *name);
/* Value of name in section s, or NULL. s may be NULL. */
const char *ini_get(const struct ini_section *s, const char *name);

#endif
