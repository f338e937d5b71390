/*
 * config_schema.c — the configuration's schema (see config_internal.h): typed scalars, string
 * validators, and one field table per section, walked field by field. Errors are collected,
 * not stopped at, and each names the key path ("fleets[1].max_replicas") and points at the
 * offending node: the value for a bad value, the key for an unknown or duplicate key, the
 * enclosing mapping for a missing key. Rules within one section (min <= max) live here too;
 * rules across sections and files run afterwards in config.c.
 */
#include "config_internal.h"
#include "policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "listen_addr.h"
#include "util.h"

#define MAP_MAX_ENTRIES  64    /* the largest schema mapping is tags (45); bounds the O(n^2) checks */
#define FLEETS_MAX       256
#define DURATION_MAX_MS  (30ULL * 24 * 3600 * 1000)

/* ---- typed scalars --------------------------------------------------------------------- */

void config_node_error(struct loader *l, const struct node *n, const char *path, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (path != NULL && path[0] != '\0')
		config_errors_add(l->errs, "%s:%u:%u: %s: %s", l->name, n->line, n->col, path, msg);
	else
		config_errors_add(l->errs, "%s:%u:%u: %s", l->name, n->line, n->col, msg);
}

/* Numbers are taken as their text. */
const char *config_want_string(struct loader *l, const struct node *n, const char *path)
{
	if (n->kind != NODE_SCALAR || config_node_is_null(n) || config_node_is_bool(n)) {
		config_node_error(l, n, path, "expected a string, got %s%s", config_node_kind(n),
				  n->kind == NODE_SCALAR ? " (quote it if you mean the text)" : "");
		return NULL;
	}
	if (strlen(n->value) != n->len) {
		config_node_error(l, n, path, "string contains a NUL character");
		return NULL;
	}
	if (n->len > STRING_MAX) {
		config_node_error(l, n, path, "string is longer than %d bytes", STRING_MAX);
		return NULL;
	}
	return n->value;
}

bool config_has_control_chars(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

int config_set_string(char **dst, const char *value)
{
	char *copy = strdup(value);

	if (copy == NULL)
		return -ENOMEM;
	free(*dst);
	*dst = copy;
	return 0;
}

/* ---- string validators: NULL when fine, else the reason -------------------------------- */

typedef const char *(*string_check_fn)(const char *s);

static const char *check_region(const char *s)
{
	if (strlen(s) > 32)
		return "must be at most 32 characters";
	for (const char *p = s; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return "must contain only a-z, 0-9 and '-' (e.g. us-east-1), or be \"\"";
	return NULL;
}

static bool is_hostname(const char *s, size_t len)
{
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.'))
			return false;
	}
	return true;
}

int config_split_host_port(const char *s, size_t len, char *host, size_t hostsize,
			   unsigned *port, bool *bracketed)
{
	const char *colon = NULL;
	size_t hlen;

	*port = 0;
	*bracketed = false;
	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (close == NULL)
			return -EINVAL;
		hlen = (size_t)(close - s - 1);
		if (hlen == 0 || hlen >= hostsize)
			return -EINVAL;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		*bracketed = true;
		{
			struct in6_addr a6;
			if (inet_pton(AF_INET6, host, &a6) != 1)
				return -EINVAL;
		}
		if ((size_t)(close - s + 1) < len) {
			if (close[1] != ':')
				return -EINVAL;
			colon = close + 1;
		}
	} else {
		colon = memchr(s, ':', len);
		hlen = colon ? (size_t)(colon - s) : len;
		if (!is_hostname(s, hlen) || hlen >= hostsize)
			return -EINVAL;
		memcpy(host, s, hlen);
		host[hlen] = '\0';
	}
	if (colon != NULL) {
		char digits[8];
		size_t plen = len - (size_t)(colon + 1 - s);
		uint64_t v;
		if (plen == 0 || plen >= sizeof(digits))
			return -EINVAL;
		memcpy(digits, colon + 1, plen);
		digits[plen] = '\0';
		if (parse_uint64(digits, 65535, &v) < 0 || v == 0)
			return -EINVAL;
		*port = (unsigned)v;
	}
	return 0;
}

static bool is_loopback_host(const char *host, bool bracketed)
{
	struct in_addr a4;

	if (bracketed)
		return strcmp(host, "::1") == 0;
	if (strcasecmp(host, "localhost") == 0)
		return true;
	return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

static const char *check_endpoint(const char *s)
{
	const char *rest;
	char host[256];
	unsigned port;
	bool https, bracketed;
	size_t len;

	if (s[0] == '\0')
		return NULL;
	https = str_has_prefix(s, "https://");
	if (!https && !str_has_prefix(s, "http://"))
		return "must start with https:// (or http:// for a loopback test endpoint), or be \"\"";
	rest = s + (https ? 8 : 7);
	len = strlen(rest);
	if (len > 0 && rest[len - 1] == '/')
		len--;
	if (memchr(rest, '/', len) != NULL || memchr(rest, '?', len) != NULL ||
	    memchr(rest, '@', len) != NULL || memchr(rest, '#', len) != NULL)
		return "must be scheme://host[:port] without a path, query or user";
	if (config_split_host_port(rest, len, host, sizeof(host), &port, &bracketed) < 0)
		return "has an invalid host or port";
	if (!https && !is_loopback_host(host, bracketed))
		return "http:// is only allowed for loopback hosts (127.0.0.0/8, localhost, [::1]); use https://";
	return NULL;
}

static const char *check_text(const char *s)
{
	if (strlen(s) > 256)
		return "must be at most 256 characters";
	if (config_has_control_chars(s))
		return "must not contain control characters";
	return NULL;
}

static const char *check_path(const char *s)
{
	if (strlen(s) > PATH_MAX - 1)
		return "path is too long";
	if (config_has_control_chars(s))
		return "must not contain control characters";
	return NULL;
}

static const char *check_socket_path(const char *s)
{
	if (s[0] != '/')
		return "must be an absolute path";
	if (strlen(s) > SUN_PATH_MAX)
		return "is longer than a Unix socket path may be (107 bytes)";
	return check_path(s);
}

static const char *check_group(const char *s)
{
	if (strlen(s) > 32)
		return "must be at most 32 characters";
	if (s[0] == '-')
		return "must not start with '-'";
	for (const char *p = s; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || *p == '-' || *p == '.'))
			return "must be a group name (letters, digits, '_', '-', '.') or \"\"";
	return NULL;
}

/* Redis keys are binary-safe, but spaces and control bytes in a key are always a mistake. */
static const char *check_key_text(const char *s)
{
	if (strlen(s) > 128)
		return "must be at most 128 characters";
	for (const char *p = s; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return "must not contain spaces or control characters";
	return NULL;
}

static const char *check_nonempty_key_text(const char *s)
{
	return s[0] == '\0' ? "must not be empty" : check_key_text(s);
}

/* Template rules shared by all keys; {arn} is allowed (and required) in viewers only. */
static const char *check_template(const char *s, bool viewers)
{
	bool has_arn = false;

	if (s[0] == '\0')
		return "must not be empty";
	if (strlen(s) > 200)
		return "must be at most 200 characters";
	for (const char *p = s; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return "must not contain spaces or control characters";
		if (*p == '{') {
			if (str_has_prefix(p, "{fleet}")) {
				p += 6;
			} else if (str_has_prefix(p, "{arn}")) {
				if (!viewers)
					return "{arn} is only allowed in the viewers template";
				has_arn = true;
				p += 4;
			} else {
				return "unknown placeholder (only {fleet} and {arn} are replaced)";
			}
		} else if (*p == '}') {
			return "unbalanced '}'";
		}
	}
	if (viewers && !has_arn)
		return "must contain {arn}: every stage has its own viewer key";
	return NULL;
}

static const char *check_viewers_template(const char *s) { return check_template(s, true); }
static const char *check_fleet_template(const char *s) { return check_template(s, false); }

static const char *check_fleet_name(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 64)
		return "must be 1 to 64 characters";
	for (const char *p = s; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || *p == '-'))
			return "must contain only A-Z, a-z, 0-9, '_' and '-'";
	return NULL;
}

/* ^arn:aws:ivs:[a-z0-9-]+:[0-9]+:stage/[a-zA-Z0-9-]+$, at most 128 characters. */
static const char *check_stage_arn(const char *s)
{
	static const char *const msg =
		"must be an IVS stage ARN like arn:aws:ivs:us-east-1:123456789012:stage/AbCd1234";
	const char *p = s;
	size_t n;

	if (strlen(s) > 128)
		return "must be at most 128 characters";
	if (!str_has_prefix(p, "arn:aws:ivs:"))
		return msg;
	p += strlen("arn:aws:ivs:");
	n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-");
	if (n == 0 || p[n] != ':')
		return msg;
	p += n + 1;
	n = strspn(p, "0123456789");
	if (n == 0 || p[n] != ':')
		return msg;
	p += n + 1;
	if (!str_has_prefix(p, "stage/"))
		return msg;
	p += strlen("stage/");
	n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-");
	if (n == 0 || p[n] != '\0')
		return msg;
	return NULL;
}

/* AWS tag characters: letters (any UTF-8), digits, spaces and _ . : / = + - @ */
static bool tag_text_ok(const char *s)
{
	for (const char *p = s; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr(" _.:/=+-@", c) != NULL)
			continue;
		return false;
	}
	return true;
}

/* ---- field tables ---------------------------------------------------------------------- */

enum field_type { F_STRING, F_DURATION, F_UINT, F_DOUBLE, F_CUSTOM };

struct field;
typedef void (*custom_fn)(struct loader *l, const struct node *n, const char *path, void *base);

struct field {
	const char *key;
	enum field_type type;
	size_t offset;            /* into the section struct */
	bool required;
	string_check_fn check;    /* F_STRING */
	uint64_t min, max;        /* F_UINT, F_DURATION (ms) */
	double dmin_exclusive, dmax;  /* F_DOUBLE: dmin < x <= dmax */
	bool whole_seconds;       /* F_DURATION */
	custom_fn custom;         /* F_CUSTOM */
};

#define FIELD_AT(base, f) ((char *)(base) + (f)->offset)

static void parse_uint_field(struct loader *l, const struct node *n, const char *path,
			     const struct field *f, void *base)
{
	uint64_t v;
	int r;

	if (n->kind != NODE_SCALAR || !n->plain || config_node_is_null(n) || config_node_is_bool(n)) {
		config_node_error(l, n, path, "expected an integer, got %s", config_node_kind(n));
		return;
	}
	r = parse_uint64(n->value, f->max, &v);
	if (r == -EINVAL && n->value[0] == '-' && parse_uint64(n->value + 1, UINT64_MAX, &v) == 0)
		r = -ERANGE;
	if (r == -EINVAL) {
		config_node_error(l, n, path, "expected an integer, got \"%.64s\"", n->value);
		return;
	}
	if (r == -ERANGE || v < f->min) {
		config_node_error(l, n, path, "must be between %llu and %llu, got %.64s",
				  (unsigned long long)f->min, (unsigned long long)f->max, n->value);
		return;
	}
	if (f->max <= UINT32_MAX)
		*(unsigned *)FIELD_AT(base, f) = (unsigned)v;
	else
		*(uint64_t *)FIELD_AT(base, f) = v;
}

/* Decimal numbers only ("0.8", "4", ".5"): no exponent, sign, inf or nan. */
static void parse_double_field(struct loader *l, const struct node *n, const char *path,
			       const struct field *f, void *base)
{
	const char *s = n->value;
	size_t ip, fp = 0;
	char *end;
	double v;

	if (n->kind != NODE_SCALAR || !n->plain || config_node_is_null(n) || config_node_is_bool(n)) {
		config_node_error(l, n, path, "expected a number, got %s", config_node_kind(n));
		return;
	}
	ip = strspn(s, "0123456789");
	if (s[ip] == '.')
		fp = strspn(s + ip + 1, "0123456789");
	if ((s[ip] == '.' ? s[ip + 1 + fp] : s[ip]) != '\0' || ip + fp == 0 || n->len > 32) {
		if (s[0] == '-' && strspn(s + 1, "0123456789.") == n->len - 1 && n->len > 1)
			config_node_error(l, n, path, "must be greater than %g and at most %g, got %.64s",
					  f->dmin_exclusive, f->dmax, s);
		else
			config_node_error(l, n, path, "expected a number, got \"%.64s\"", s);
		return;
	}
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !(v > f->dmin_exclusive && v <= f->dmax)) {
		config_node_error(l, n, path, "must be greater than %g and at most %g, got %.64s",
				  f->dmin_exclusive, f->dmax, s);
		return;
	}
	*(double *)FIELD_AT(base, f) = v;
}

static void parse_duration_field(struct loader *l, const struct node *n, const char *path,
				 const struct field *f, void *base)
{
	char lo[48], hi[48];
	const char *s = config_want_string(l, n, path);
	uint64_t v;
	int r;

	if (s == NULL)
		return;
	if (s[0] == '-') {
		config_node_error(l, n, path, "must not be negative");
		return;
	}
	r = parse_duration_ms(s, &v);
	if (r == -EINVAL) {
		config_node_error(l, n, path, "expected a duration like 250ms, 15s, 5m or 1h30m, got \"%.64s\"", s);
		return;
	}
	format_duration_ms(f->min, lo, sizeof(lo));
	format_duration_ms(f->max, hi, sizeof(hi));
	if (r == -ERANGE || v > f->max) {
		config_node_error(l, n, path, "must be at most %s", hi);
		return;
	}
	if (v < f->min) {
		if (f->min == 1)
			config_node_error(l, n, path, "must be greater than 0");
		else
			config_node_error(l, n, path, "must be at least %s", lo);
		return;
	}
	if (f->whole_seconds && v % 1000 != 0) {
		config_node_error(l, n, path, "must be a whole number of seconds");
		return;
	}
	*(uint64_t *)FIELD_AT(base, f) = v;
}

static void parse_string_field(struct loader *l, const struct node *n, const char *path,
			       const struct field *f, void *base)
{
	const char *s = config_want_string(l, n, path);
	const char *why;

	if (s == NULL)
		return;
	why = f->check != NULL ? f->check(s) : check_text(s);
	if (why != NULL) {
		config_node_error(l, n, path, "%s", why);
		return;
	}
	if (config_set_string((char **)FIELD_AT(base, f), s) < 0)
		config_node_error(l, n, path, "out of memory");
}

static void join_path(char *out, size_t size, const char *path, const char *key)
{
	if (path[0] == '\0')
		snprintf(out, size, "%.200s", key);
	else
		snprintf(out, size, "%s.%.200s", path, key);
}

/*
 * Walks mapping n against fields. seen[i] receives the value node of fields[i] (or NULL), so
 * callers can point cross-field errors at the right place. A null node (an empty section such
 * as "aws:") counts as an empty mapping.
 */
static void walk_mapping(struct loader *l, const struct node *n, const char *path,
			 const struct field *fields, size_t nfields, void *base,
			 const struct node **seen)
{
	for (size_t i = 0; i < nfields; i++)
		seen[i] = NULL;
	if (config_node_is_null(n))
		goto required;
	if (n->kind != NODE_MAP) {
		config_node_error(l, n, path, "expected a mapping, got %s", config_node_kind(n));
		return;
	}
	if (n->n / 2 > MAP_MAX_ENTRIES) {
		config_node_error(l, n, path, "too many keys (more than %d)", MAP_MAX_ENTRIES);
		return;
	}
	for (size_t k = 0; k + 1 < n->n; k += 2) {
		const struct node *key = n->items[k], *value = n->items[k + 1];
		char sub[512];
		size_t i;
		bool dup = false;

		if (key->kind != NODE_SCALAR || strlen(key->value) != key->len) {
			config_node_error(l, key, path, "mapping keys must be plain strings");
			continue;
		}
		join_path(sub, sizeof(sub), path, key->value);
		for (size_t j = 0; j < k && !dup; j += 2)
			if (n->items[j]->kind == NODE_SCALAR && strcmp(n->items[j]->value, key->value) == 0) {
				config_node_error(l, key, sub, "duplicate key (first given at line %u)",
						  n->items[j]->line);
				dup = true;
			}
		if (dup)
			continue;
		for (i = 0; i < nfields; i++)
			if (strcmp(fields[i].key, key->value) == 0)
				break;
		if (i == nfields) {
			char allowed[512];
			size_t used = 0;
			allowed[0] = '\0';
			for (size_t j = 0; j < nfields; j++) {
				int w = snprintf(allowed + used, sizeof(allowed) - used, "%s%s",
						 j ? ", " : "", fields[j].key);
				if (w < 0 || (size_t)w >= sizeof(allowed) - used)
					break;
				used += (size_t)w;
			}
			config_node_error(l, key, sub, "unknown key (expected one of: %s)", allowed);
			continue;
		}
		seen[i] = value;
		switch (fields[i].type) {
		case F_STRING: parse_string_field(l, value, sub, &fields[i], base); break;
		case F_DURATION: parse_duration_field(l, value, sub, &fields[i], base); break;
		case F_UINT: parse_uint_field(l, value, sub, &fields[i], base); break;
		case F_DOUBLE: parse_double_field(l, value, sub, &fields[i], base); break;
		case F_CUSTOM: fields[i].custom(l, value, sub, base); break;
		}
	}
required:
	for (size_t i = 0; i < nfields; i++)
		if (fields[i].required && seen[i] == NULL)
			config_node_error(l, n, path, "missing required key \"%s\"", fields[i].key);
}

static size_t field_index(const struct field *fields, size_t nfields, const char *key)
{
	for (size_t i = 0; i < nfields; i++)
		if (strcmp(fields[i].key, key) == 0)
			return i;
	return nfields;  /* not reached for keys of the table */
}

#define NFIELDS(t) (sizeof(t) / sizeof((t)[0]))
#define STR(st, k, chk)  { .key = #k, .type = F_STRING, .offset = offsetof(st, k), .check = (chk) }
#define DUR(st, k, lo) \
	{ .key = #k, .type = F_DURATION, .offset = offsetof(st, k##_ms), .min = (lo), .max = DURATION_MAX_MS }
#define DUR_MAX(st, k, lo, hi) \
	{ .key = #k, .type = F_DURATION, .offset = offsetof(st, k##_ms), .min = (lo), .max = (hi) }
#define UINTF(st, k, lo, hi) \
	{ .key = #k, .type = F_UINT, .offset = offsetof(st, k), .min = (lo), .max = (hi) }

/* ---- redis.url, redis.password and the *_file keys ------------------------------------- */

static void custom_redis_url(struct loader *l, const struct node *n, const char *path, void *base)
{
	struct config_redis *r = base;
	const char *s = config_want_string(l, n, path), *why;

	if (s == NULL)
		return;
	l->url_node = n;
	why = config_parse_redis_url(r, s, &l->password_source);
	if (why != NULL) {
		config_node_error(l, n, path, "%s", why);
		return;
	}
	if (config_set_string(&r->url, s) < 0)
		config_node_error(l, n, path, "out of memory");
}

static void custom_redis_password(struct loader *l, const struct node *n, const char *path, void *base)
{
	const char *s = config_want_string(l, n, path);
	(void)base;

	l->password_node = n;
	if (s == NULL || s[0] == '\0')
		return;  /* "" = no password */
	if (config_set_string(&l->inline_password, s) < 0)
		config_node_error(l, n, path, "out of memory");
}

static void custom_password_file(struct loader *l, const struct node *n, const char *path, void *base)
{
	struct config_redis *r = base;
	const char *s = config_want_string(l, n, path), *why;

	l->password_file_node = n;
	if (s == NULL)
		return;
	why = check_path(s);
	if (why != NULL)
		config_node_error(l, n, path, "%s", why);
	else if (config_set_string(&r->password_file, s) < 0)
		config_node_error(l, n, path, "out of memory");
}

static void custom_credentials_file(struct loader *l, const struct node *n, const char *path, void *base)
{
	struct config_aws *a = base;
	const char *s = config_want_string(l, n, path), *why;

	l->credentials_file_node = n;
	if (s == NULL)
		return;
	why = check_path(s);
	if (why != NULL)
		config_node_error(l, n, path, "%s", why);
	else if (config_set_string(&a->credentials_file, s) < 0)
		config_node_error(l, n, path, "out of memory");
}

/* ---- sections -------------------------------------------------------------------------- */

static const struct field aws_fields[] = {
	STR(struct config_aws, region, check_region),
	STR(struct config_aws, endpoint, check_endpoint),
	STR(struct config_aws, profile, check_text),
	{ .key = "credentials_file", .type = F_CUSTOM, .custom = custom_credentials_file },
	{ .key = "max_tps", .type = F_DOUBLE, .offset = offsetof(struct config_aws, max_tps),
	  .dmin_exclusive = 0, .dmax = 100 },
	{ .key = "resync_share", .type = F_DOUBLE,
	  .offset = offsetof(struct config_aws, resync_share), .dmin_exclusive = 0, .dmax = 1 },
	DUR(struct config_aws, timeout, 1),
	DUR(struct config_aws, connect_timeout, 1),
};

static const struct field keys_fields[] = {
	STR(struct config_keys, viewers, check_viewers_template),
	STR(struct config_keys, publisher, check_fleet_template),
	STR(struct config_keys, desired_stages, check_fleet_template),
	STR(struct config_keys, open_stages, check_fleet_template),
};

/* Per-fleet overrides: the viewers key is shared by design ({arn} makes it unique). */
static const struct field fleet_keys_fields[] = {
	STR(struct config_keys, publisher, check_fleet_template),
	STR(struct config_keys, desired_stages, check_fleet_template),
	STR(struct config_keys, open_stages, check_fleet_template),
};

static void custom_redis_keys(struct loader *l, const struct node *n, const char *path, void *base)
{
	struct config_redis *r = base;
	const struct node *seen[NFIELDS(keys_fields)];

	walk_mapping(l, n, path, keys_fields, NFIELDS(keys_fields), &r->keys, seen);
}

/* ---- redis.tls and redis.sentinel ------------------------------------------------------ */

static const char *check_server_name(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	if (s[0] == '\0' || inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1 ||
	    is_hostname(s, strlen(s)))
		return NULL;
	return "must be a DNS name or an IP address (or \"\" for the url's host)";
}

static const struct field redis_tls_fields[] = {
	{ .key = "ca_file", .type = F_STRING, .offset = offsetof(struct config_redis, tls_ca_file),
	  .check = check_path },
	{ .key = "server_name", .type = F_STRING,
	  .offset = offsetof(struct config_redis, tls_server_name), .check = check_server_name },
	{ .key = "cert_file", .type = F_STRING, .offset = offsetof(struct config_redis, tls_cert_file),
	  .check = check_path },
	{ .key = "key_file", .type = F_STRING, .offset = offsetof(struct config_redis, tls_key_file),
	  .check = check_path },
};

static void custom_redis_tls(struct loader *l, const struct node *n, const char *path, void *base)
{
	const struct node *seen[NFIELDS(redis_tls_fields)];

	l->tls_node = n;
	walk_mapping(l, n, path, redis_tls_fields, NFIELDS(redis_tls_fields), base, seen);
	l->tls_ca_node = seen[0];
	l->tls_cert_node = seen[2];
	l->tls_key_node = seen[3];
}

/* redis.sentinel.addresses: a sequence of "host:port" (port required). */
static void custom_sentinel_addresses(struct loader *l, const struct node *n, const char *path,
				      void *base)
{
	struct config_redis *r = base;

	l->sentinel_addresses_node = n;
	if (config_node_is_null(n))
		return;
	if (n->kind != NODE_SEQ) {
		config_node_error(l, n, path, "expected a sequence of \"host:port\", got %s", config_node_kind(n));
		return;
	}
	if (n->n > 64) {
		config_node_error(l, n, path, "too many sentinels (more than 64)");
		return;
	}
	r->sentinel_hosts = calloc(n->n ? n->n : 1, sizeof(*r->sentinel_hosts));
	r->sentinel_ports = calloc(n->n ? n->n : 1, sizeof(*r->sentinel_ports));
	if (r->sentinel_hosts == NULL || r->sentinel_ports == NULL) {
		config_node_error(l, n, path, "out of memory");
		return;
	}
	for (size_t i = 0; i < n->n; i++) {
		const char *s = config_want_string(l, n->items[i], path);
		char host[256];
		unsigned port;
		bool bracketed;

		if (s == NULL)
			continue;
		if (config_split_host_port(s, strlen(s), host, sizeof(host), &port, &bracketed) < 0 ||
		    port == 0) {
			config_node_error(l, n->items[i], path, "must be host:port (e.g. \"10.0.0.5:26379\")");
			continue;
		}
		r->sentinel_hosts[r->n_sentinels] = strdup(host);
		if (r->sentinel_hosts[r->n_sentinels] == NULL) {
			config_node_error(l, n->items[i], path, "out of memory");
			continue;
		}
		r->sentinel_ports[r->n_sentinels++] = port;
	}
}

static const struct field redis_sentinel_fields[] = {
	{ .key = "master_name", .type = F_STRING,
	  .offset = offsetof(struct config_redis, sentinel_master), .check = check_text },
	{ .key = "addresses", .type = F_CUSTOM, .custom = custom_sentinel_addresses },
	{ .key = "password_file", .type = F_STRING,
	  .offset = offsetof(struct config_redis, sentinel_password_file), .check = check_path },
};

static void custom_redis_sentinel(struct loader *l, const struct node *n, const char *path,
				  void *base)
{
	const struct node *seen[NFIELDS(redis_sentinel_fields)];

	l->sentinel_node = n;
	walk_mapping(l, n, path, redis_sentinel_fields, NFIELDS(redis_sentinel_fields), base, seen);
	l->sentinel_password_file_node = seen[2];
}

static const struct field redis_fields[] = {
	{ .key = "url", .type = F_CUSTOM, .custom = custom_redis_url },
	{ .key = "password", .type = F_CUSTOM, .custom = custom_redis_password },
	{ .key = "password_file", .type = F_CUSTOM, .custom = custom_password_file },
	STR(struct config_redis, key_prefix, check_key_text),
	DUR(struct config_redis, timeout, 1),
	STR(struct config_redis, wake_channel, check_nonempty_key_text),
	{ .key = "keys", .type = F_CUSTOM, .custom = custom_redis_keys },
	{ .key = "tls", .type = F_CUSTOM, .custom = custom_redis_tls },
	{ .key = "sentinel", .type = F_CUSTOM, .custom = custom_redis_sentinel },
};

static const struct field control_fields[] = {
	STR(struct config_control, socket, check_socket_path),
	STR(struct config_control, admin_group, check_group),
	UINTF(struct config_control, max_clients, 1, 1024),
	DUR(struct config_control, idle_timeout, 1),
};

static const struct field reconcile_fields[] = {
	DUR(struct config_reconcile, resync_interval, 1000),
	DUR(struct config_reconcile, backoff_initial, 1),
	DUR(struct config_reconcile, backoff_max, 1),
	DUR(struct config_reconcile, stop_timeout, 1),
};

static void custom_tags(struct loader *l, const struct node *n, const char *path, void *base)
{
	struct config_fleet *f = base;

	if (config_node_is_null(n))
		return;
	if (n->kind != NODE_MAP) {
		config_node_error(l, n, path, "expected a mapping of tag names to values, got %s", config_node_kind(n));
		return;
	}
	if (n->n / 2 > CONFIG_MAX_TAGS) {
		config_node_error(l, n, path, "at most %d tags are allowed (IVS allows 50, 5 are ours), got %zu",
				  CONFIG_MAX_TAGS, n->n / 2);
		return;
	}
	f->tags = calloc(n->n / 2 + 1, sizeof(*f->tags));
	if (f->tags == NULL) {
		config_node_error(l, n, path, "out of memory");
		return;
	}
	for (size_t k = 0; k + 1 < n->n; k += 2) {
		const struct node *key = n->items[k], *value = n->items[k + 1];
		const char *ks, *vs;
		char sub[512];
		bool dup = false;

		ks = config_want_string(l, key, path);
		if (ks == NULL)
			continue;
		join_path(sub, sizeof(sub), path, ks);
		for (size_t j = 0; j < f->n_tags && !dup; j++)
			dup = strcmp(f->tags[j].key, ks) == 0;
		if (dup) {
			config_node_error(l, key, sub, "duplicate tag");
			continue;
		}
		if (strlen(ks) < 1 || strlen(ks) > 128 || !tag_text_ok(ks)) {
			config_node_error(l, key, sub, "tag keys must be 1 to 128 characters of letters, digits, "
					  "spaces and _ . : / = + - @");
			continue;
		}
		if (str_has_prefix(ks, "ivs-autoscaler:") || str_has_prefix(ks, "aws:")) {
			config_node_error(l, key, sub, "tag keys starting with \"ivs-autoscaler:\" or \"aws:\" are reserved");
			continue;
		}
		vs = config_want_string(l, value, sub);
		if (vs == NULL)
			continue;
		if (strlen(vs) > 256 || !tag_text_ok(vs)) {
			config_node_error(l, value, sub, "tag values must be at most 256 characters of letters, "
					  "digits, spaces and _ . : / = + - @");
			continue;
		}
		f->tags[f->n_tags].key = strdup(ks);
		f->tags[f->n_tags].value = strdup(vs);
		f->n_tags++;
		if (f->tags[f->n_tags - 1].key == NULL || f->tags[f->n_tags - 1].value == NULL)
			config_node_error(l, value, sub, "out of memory");
	}
}

static void custom_fleet_keys(struct loader *l, const struct node *n, const char *path, void *base)
{
	struct config_fleet *f = base;
	const struct node *seen[NFIELDS(fleet_keys_fields)];

	l->fleet_keys_nodes[l->current_fleet] = n;
	walk_mapping(l, n, path, fleet_keys_fields, NFIELDS(fleet_keys_fields), &f->keys, seen);
}

static const struct field fleet_fields[] = {
	{ .key = "name", .type = F_STRING, .offset = offsetof(struct config_fleet, name),
	  .required = true, .check = check_fleet_name },
	{ .key = "origin_stage_arn", .type = F_STRING,
	  .offset = offsetof(struct config_fleet, origin_stage_arn), .required = true,
	  .check = check_stage_arn },
	UINTF(struct config_fleet, viewers_per_stage, 1, 1000000),
	{ .key = "target_utilization", .type = F_DOUBLE,
	  .offset = offsetof(struct config_fleet, target_utilization), .dmin_exclusive = 0, .dmax = 1 },
	/* One host feeds at most 5 replica stages (IVS: 5 replications per participant), and the
	 * policy's stabilization window is bounded: the limits are the policy's own. */
	UINTF(struct config_fleet, min_replicas, 0, POLICY_MAX_REPLICAS_PER_HOST),
	UINTF(struct config_fleet, max_replicas, 0, POLICY_MAX_REPLICAS_PER_HOST),
	DUR_MAX(struct config_fleet, scale_down_delay, 1, POLICY_MAX_DELAY_MS),
	DUR_MAX(struct config_fleet, drain_timeout, 1, POLICY_MAX_DELAY_MS),
	/* 0 allowed: delete a drained stage on its first 0-viewer reading after the mark. */
	DUR_MAX(struct config_fleet, drain_min, 0, POLICY_MAX_DELAY_MS),
	{ .key = "reconnect_window", .type = F_DURATION,
	  .offset = offsetof(struct config_fleet, reconnect_window_ms), .min = 0, .max = 300000,
	  .whole_seconds = true },
	{ .key = "tags", .type = F_CUSTOM, .custom = custom_tags },
	{ .key = "keys", .type = F_CUSTOM, .custom = custom_fleet_keys },
};

static void walk_fleets(struct loader *l, const struct node *n, const char *path)
{
	struct config *cfg = l->cfg;
	const struct node *seen[NFIELDS(fleet_fields)];

	if (n->kind != NODE_SEQ) {
		config_node_error(l, n, path, "expected a sequence of fleets (- name: ...), got %s", config_node_kind(n));
		return;
	}
	if (n->n == 0) {
		config_node_error(l, n, path, "at least one fleet is required");
		return;
	}
	if (n->n > FLEETS_MAX) {
		config_node_error(l, n, path, "at most %d fleets are supported", FLEETS_MAX);
		return;
	}
	cfg->fleets = calloc(n->n, sizeof(*cfg->fleets));
	l->fleet_nodes = calloc(n->n, sizeof(*l->fleet_nodes));
	l->fleet_keys_nodes = calloc(n->n, sizeof(*l->fleet_keys_nodes));
	l->fleet_name_nodes = calloc(n->n, sizeof(*l->fleet_name_nodes));
	l->fleet_arn_nodes = calloc(n->n, sizeof(*l->fleet_arn_nodes));
	if (cfg->fleets == NULL || l->fleet_nodes == NULL || l->fleet_keys_nodes == NULL ||
	    l->fleet_name_nodes == NULL || l->fleet_arn_nodes == NULL) {
		config_node_error(l, n, path, "out of memory");
		return;
	}
	cfg->n_fleets = n->n;
	for (size_t i = 0; i < n->n; i++) {
		struct config_fleet *f = &cfg->fleets[i];
		const struct node *item = n->items[i];
		char sub[64];

		config_fleet_defaults(f);
		l->fleet_nodes[i] = item;
		l->current_fleet = i;
		snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
		if (item->kind != NODE_MAP) {
			config_node_error(l, item, sub, "expected a mapping with name and origin_stage_arn, got %s",
					  config_node_kind(item));
			continue;
		}
		walk_mapping(l, item, sub, fleet_fields, NFIELDS(fleet_fields), f, seen);
		l->fleet_name_nodes[i] = seen[field_index(fleet_fields, NFIELDS(fleet_fields), "name")];
		l->fleet_arn_nodes[i] =
			seen[field_index(fleet_fields, NFIELDS(fleet_fields), "origin_stage_arn")];
		if (f->min_replicas > f->max_replicas) {
			const struct node *at =
				seen[field_index(fleet_fields, NFIELDS(fleet_fields), "min_replicas")];
			char where[96];
			snprintf(where, sizeof(where), "%s.min_replicas", sub);
			config_node_error(l, at != NULL ? at : item, where,
					  "min_replicas (%u) must not exceed max_replicas (%u)",
					  f->min_replicas, f->max_replicas);
		}
	}
}

static void custom_aws(struct loader *l, const struct node *n, const char *path, void *base)
{
	const struct node *seen[NFIELDS(aws_fields)];
	(void)base;
	walk_mapping(l, n, path, aws_fields, NFIELDS(aws_fields), &l->cfg->aws, seen);
}

static void custom_redis(struct loader *l, const struct node *n, const char *path, void *base)
{
	const struct node *seen[NFIELDS(redis_fields)];
	(void)base;
	walk_mapping(l, n, path, redis_fields, NFIELDS(redis_fields), &l->cfg->redis, seen);
}

static void custom_control(struct loader *l, const struct node *n, const char *path, void *base)
{
	const struct node *seen[NFIELDS(control_fields)];
	(void)base;
	walk_mapping(l, n, path, control_fields, NFIELDS(control_fields), &l->cfg->control, seen);
}

static void custom_reconcile(struct loader *l, const struct node *n, const char *path, void *base)
{
	const struct node *seen[NFIELDS(reconcile_fields)];
	struct config_reconcile *r = &l->cfg->reconcile;
	(void)base;

	walk_mapping(l, n, path, reconcile_fields, NFIELDS(reconcile_fields), r, seen);
	if (r->backoff_initial_ms > r->backoff_max_ms) {
		size_t i = field_index(reconcile_fields, NFIELDS(reconcile_fields), "backoff_initial");
		config_node_error(l, seen[i] != NULL ? seen[i] : n, "reconcile.backoff_initial",
				  "must not exceed reconcile.backoff_max");
	}
}

/* metrics: the optional scrape endpoint (controller/metrics_http.c). */
static const char *check_metrics_listen(const char *s)
{
	struct sockaddr_storage addr;
	socklen_t len;
	const char *why = NULL;

	if (s[0] == '\0')
		return NULL;
	if (listen_addr_parse(s, &addr, &len, &why) < 0)
		return why;
	if (listen_addr_port(&addr) == 0)
		return "the port must be from 1 to 65535";
	return NULL;
}

static const struct field metrics_fields[] = {
	STR(struct config_metrics, listen, check_metrics_listen),
};

static void custom_metrics(struct loader *l, const struct node *n, const char *path, void *base)
{
	const struct node *seen[NFIELDS(metrics_fields)];
	(void)base;
	walk_mapping(l, n, path, metrics_fields, NFIELDS(metrics_fields), &l->cfg->metrics, seen);
}

static void custom_fleets(struct loader *l, const struct node *n, const char *path, void *base)
{
	(void)base;
	walk_fleets(l, n, path);
}

/* ---- controller and ha sections -------------------------------------------------------- */

/* controller.owner / controller.instance: names that go into tags and the lease value. */
static const char *check_identity(const char *s)
{
	return s[0] == '\0' ? NULL : check_fleet_name(s);
}

static void custom_bool(struct loader *l, const struct node *n, const char *path, bool *out)
{
	if (n->kind == NODE_SCALAR && n->plain && strcasecmp(n->value, "true") == 0)
		*out = true;
	else if (n->kind == NODE_SCALAR && n->plain && strcasecmp(n->value, "false") == 0)
		*out = false;
	else
		config_node_error(l, n, path, "expected true or false, got %s%.64s%s",
				  n->kind == NODE_SCALAR ? "\"" : config_node_kind(n),
				  n->kind == NODE_SCALAR ? n->value : "", n->kind == NODE_SCALAR ? "\"" : "");
}

static void custom_ha_enabled(struct loader *l, const struct node *n, const char *path, void *base)
{
	custom_bool(l, n, path, &((struct config_ha *)base)->enabled);
}

static const struct field controller_fields[] = {
	STR(struct config_controller, owner, check_identity),
	STR(struct config_controller, instance, check_identity),
};

static const struct field ha_fields[] = {
	{ .key = "enabled", .type = F_CUSTOM, .custom = custom_ha_enabled },
	STR(struct config_ha, lease_key, check_nonempty_key_text),
	DUR_MAX(struct config_ha, lease_duration, 1000, 5 * 60 * 1000),
	DUR_MAX(struct config_ha, renew_deadline, 500, 5 * 60 * 1000),
	DUR_MAX(struct config_ha, retry_period, 100, 5 * 60 * 1000),
};

static void custom_controller(struct loader *l, const struct node *n, const char *path, void *base)
{
	const struct node *seen[NFIELDS(controller_fields)];
	(void)base;
	walk_mapping(l, n, path, controller_fields, NFIELDS(controller_fields), &l->cfg->controller,
		     seen);
}

/* The leader must stop (renew_deadline) before its lease can expire (lease_duration), and
 * must get several renewal attempts (retry_period) within its deadline. */
static void custom_ha(struct loader *l, const struct node *n, const char *path, void *base)
{
	const struct node *seen[NFIELDS(ha_fields)];
	struct config_ha *h = &l->cfg->ha;
	size_t rd = field_index(ha_fields, NFIELDS(ha_fields), "renew_deadline");
	size_t rp = field_index(ha_fields, NFIELDS(ha_fields), "retry_period");
	size_t before = l->errs->count;
	(void)base;

	walk_mapping(l, n, path, ha_fields, NFIELDS(ha_fields), h, seen);
	if (l->errs->count != before)
		return;
	if (h->renew_deadline_ms >= h->lease_duration_ms)
		config_node_error(l, seen[rd] != NULL ? seen[rd] : n, "ha.renew_deadline",
				  "must be less than ha.lease_duration");
	else if (h->retry_period_ms >= h->renew_deadline_ms)
		config_node_error(l, seen[rp] != NULL ? seen[rp] : n, "ha.retry_period",
				  "must be less than ha.renew_deadline");
}

static const struct field top_fields[] = {
	{ .key = "aws", .type = F_CUSTOM, .custom = custom_aws },
	{ .key = "redis", .type = F_CUSTOM, .custom = custom_redis },
	{ .key = "control", .type = F_CUSTOM, .custom = custom_control },
	{ .key = "reconcile", .type = F_CUSTOM, .custom = custom_reconcile },
	{ .key = "controller", .type = F_CUSTOM, .custom = custom_controller },
	{ .key = "ha", .type = F_CUSTOM, .custom = custom_ha },
	{ .key = "metrics", .type = F_CUSTOM, .custom = custom_metrics },
	{ .key = "fleets", .type = F_CUSTOM, .custom = custom_fleets, .required = true },
};

void config_walk_document(struct loader *l, const struct node *root)
{
	const struct node *seen[NFIELDS(top_fields)];
	const struct node empty = { .kind = NODE_SCALAR, .line = 1, .col = 1, .value = (char *)"",
				    .plain = true };

	if (root != NULL && root->kind != NODE_MAP && !config_node_is_null(root))
		config_node_error(l, root, "", "the top level must be a mapping (aws:, redis:, fleets:, ...)");
	else
		walk_mapping(l, root != NULL ? root : &empty, "", top_fields, NFIELDS(top_fields), NULL, seen);
}
