/*
 * config.c — see config.h.
 *
 * Two stages. First libyaml's event parser builds a small tree of our own (scalars, mappings,
 * sequences, each with its 1-based line/column); this is where the document-level rules live:
 * size, depth, one document, no anchors/aliases, no tags. Then a table-driven walk checks the
 * schema field by field, collecting errors instead of stopping at the first, and finally the
 * cross-field rules (min <= max, unique fleets, no Redis key shared by two fleets) run on the
 * filled struct.
 *
 * Every error names the key path ("fleets[1].max_replicas") and points at the offending node:
 * the value for a bad value, the key for an unknown or duplicate key, the enclosing mapping for a
 * missing key. Error text never includes a secret (the Redis URL may hold a password, so URL
 * errors describe the problem without echoing the URL).
 */
#include "config.h"
#include "policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "listen_addr.h"
#include "log.h"
#include "redis_tls.h"
#include "util.h"

#define MAP_MAX_ENTRIES  64    /* the largest schema mapping is tags (45); bounds the O(n^2) checks */
#define FLEETS_MAX       256
#define NODES_MAX        20000 /* far above any real config; bounds memory on hostile input */
#define STRING_MAX       1024  /* generous bound on any single configured string */
#define DURATION_MAX_MS  (30ULL * 24 * 3600 * 1000)
#define SUN_PATH_MAX     107   /* sizeof(sockaddr_un.sun_path) - 1 */

/* ---- errors ---------------------------------------------------------------------------- */

static void errors_addv(struct config_errors *errs, const char *fmt, va_list ap)
{
	char buf[1024];
	char **grown;

	if (errs->count >= CONFIG_ERRORS_MAX) {
		errs->truncated = 1;
		return;
	}
	vsnprintf(buf, sizeof(buf), fmt, ap);
	grown = realloc(errs->msgs, (errs->count + 1) * sizeof(*grown));
	if (grown == NULL) {
		errs->truncated = 1;
		return;
	}
	errs->msgs = grown;
	errs->msgs[errs->count] = strdup(buf);
	if (errs->msgs[errs->count] == NULL) {
		errs->truncated = 1;
		return;
	}
	errs->count++;
}

static void errors_add(struct config_errors *errs, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void errors_add(struct config_errors *errs, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errors_addv(errs, fmt, ap);
	va_end(ap);
}

void config_errors_free(struct config_errors *errs)
{
	if (errs == NULL)
		return;
	for (size_t i = 0; i < errs->count; i++)
		free(errs->msgs[i]);
	free(errs->msgs);
	errs->msgs = NULL;
	errs->count = 0;
	errs->truncated = 0;
}

/* ---- the YAML tree --------------------------------------------------------------------- */

enum node_kind { NODE_SCALAR, NODE_MAP, NODE_SEQ };

struct node {
	enum node_kind kind;
	unsigned line, col;       /* 1-based */
	char *value;              /* scalars */
	size_t len;
	bool plain;               /* an unquoted scalar: the only kind that can be null/bool/number */
	struct node **items;      /* sequences: items; mappings: key, value, key, value, ... */
	size_t n, cap;
};

static void node_free(struct node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->n; i++)
		node_free(n->items[i]);
	free(n->items);
	free(n->value);
	free(n);
}

static struct node *node_new(enum node_kind kind, yaml_mark_t mark)
{
	struct node *n = calloc(1, sizeof(*n));

	if (n == NULL)
		return NULL;
	n->kind = kind;
	n->line = (unsigned)mark.line + 1;
	n->col = (unsigned)mark.column + 1;
	return n;
}

static int node_append(struct node *parent, struct node *child)
{
	if (parent->n == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 8;
		struct node **items = realloc(parent->items, cap * sizeof(*items));
		if (items == NULL)
			return -ENOMEM;
		parent->items = items;
		parent->cap = cap;
	}
	parent->items[parent->n++] = child;
	return 0;
}

/* libyaml's reader errors carry a byte offset, not a mark: turn it into line/column. */
static void offset_to_mark(const char *data, size_t len, size_t offset, unsigned *line, unsigned *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < offset && i < len; i++) {
		if (data[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if (((unsigned char)data[i] & 0xc0) != 0x80) {
			(*col)++;
		}
	}
}

static void yaml_error(const char *name, const yaml_parser_t *p, const char *data, size_t len,
		       struct config_errors *errs)
{
	unsigned line, col;
	const char *problem = p->problem ? p->problem : "malformed YAML";

	if (p->error == YAML_READER_ERROR) {
		offset_to_mark(data, len, p->problem_offset, &line, &col);
		errors_add(errs, "%s:%u:%u: %s (not valid UTF-8 text?)", name, line, col, problem);
	} else if (p->error == YAML_MEMORY_ERROR) {
		errors_add(errs, "%s:1:1: out of memory while parsing", name);
	} else if (p->context != NULL) {
		errors_add(errs, "%s:%u:%u: %s %s", name, (unsigned)p->problem_mark.line + 1,
			   (unsigned)p->problem_mark.column + 1, problem, p->context);
	} else {
		errors_add(errs, "%s:%u:%u: %s", name, (unsigned)p->problem_mark.line + 1,
			   (unsigned)p->problem_mark.column + 1, problem);
	}
}

static void mark_error(struct config_errors *errs, const char *name, yaml_mark_t mark,
		       const char *msg)
{
	errors_add(errs, "%s:%u:%u: %s", name, (unsigned)mark.line + 1, (unsigned)mark.column + 1, msg);
}

/*
 * Builds the tree of the single document in data. Returns 0 and *root (NULL for an empty
 * stream), or -EINVAL with the reason in errs.
 */
static int build_tree(const char *name, const char *data, size_t len, struct node **root,
		      struct config_errors *errs)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	struct node *stack[CONFIG_MAX_DEPTH + 1];
	size_t depth = 0;
	struct node *doc = NULL;
	int documents = 0, r = -EINVAL;
	size_t nodes = 0;
	bool done = false;

	*root = NULL;
	if (!yaml_parser_initialize(&parser)) {
		errors_add(errs, "%s:1:1: out of memory", name);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	while (!done) {
		struct node *n = NULL;
		const yaml_char_t *anchor = NULL, *tag = NULL;

		if (!yaml_parser_parse(&parser, &ev)) {
			yaml_error(name, &parser, data, len, errs);
			goto out;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++documents > 1) {
				mark_error(errs, name, ev.start_mark,
					   "only one YAML document is allowed (found a second one)");
				goto out_event;
			}
			break;
		case YAML_ALIAS_EVENT:
			mark_error(errs, name, ev.start_mark,
				   "YAML aliases (*name) are not allowed in the configuration");
			goto out_event;
		case YAML_SCALAR_EVENT:
			anchor = ev.data.scalar.anchor;
			tag = ev.data.scalar.tag;
			n = node_new(NODE_SCALAR, ev.start_mark);
			if (n != NULL) {
				n->len = ev.data.scalar.length;
				n->value = malloc(n->len + 1);
				if (n->value != NULL) {
					memcpy(n->value, ev.data.scalar.value, n->len);
					n->value[n->len] = '\0';
				}
				n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
			}
			break;
		case YAML_SEQUENCE_START_EVENT:
			anchor = ev.data.sequence_start.anchor;
			tag = ev.data.sequence_start.tag;
			n = node_new(NODE_SEQ, ev.start_mark);
			break;
		case YAML_MAPPING_START_EVENT:
			anchor = ev.data.mapping_start.anchor;
			tag = ev.data.mapping_start.tag;
			n = node_new(NODE_MAP, ev.start_mark);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (depth > 0)
				depth--;
			break;
		default:
			break;
		}
		if (anchor != NULL) {
			node_free(n);
			mark_error(errs, name, ev.start_mark,
				   "YAML anchors (&name) are not allowed in the configuration");
			goto out_event;
		}
		if (tag != NULL) {
			node_free(n);
			mark_error(errs, name, ev.start_mark,
				   "YAML tags (!tag) are not allowed in the configuration");
			goto out_event;
		}
		if (ev.type == YAML_SCALAR_EVENT || ev.type == YAML_SEQUENCE_START_EVENT ||
		    ev.type == YAML_MAPPING_START_EVENT) {
			if (++nodes > NODES_MAX) {
				node_free(n);
				mark_error(errs, name, ev.start_mark,
					   "too many YAML nodes (more than 20000) for a configuration");
				goto out_event;
			}
			if (n == NULL || (n->kind == NODE_SCALAR && n->value == NULL)) {
				node_free(n);
				errors_add(errs, "%s:1:1: out of memory", name);
				r = -ENOMEM;
				goto out_event;
			}
			if (depth == 0) {
				doc = n;
			} else if (node_append(stack[depth - 1], n) < 0) {
				node_free(n);
				errors_add(errs, "%s:1:1: out of memory", name);
				r = -ENOMEM;
				goto out_event;
			}
			if (n->kind != NODE_SCALAR) {
				if (depth >= CONFIG_MAX_DEPTH) {
					mark_error(errs, name, ev.start_mark,
						   "nesting deeper than 16 levels is not allowed");
					goto out_event;
				}
				stack[depth++] = n;
			}
		}
		yaml_event_delete(&ev);
	}
	*root = doc;
	doc = NULL;
	r = 0;
	goto out;
out_event:
	yaml_event_delete(&ev);
out:
	node_free(doc);
	yaml_parser_delete(&parser);
	return r;
}

/* ---- loading: context and typed scalars ------------------------------------------------ */

struct loader {
	const char *name;
	struct config_errors *errs;
	struct config *cfg;
	enum config_secret_source password_source;
	const struct node *url_node, *password_node, *password_file_node, *credentials_file_node;
	const struct node **fleet_nodes;         /* the mapping of each fleet */
	const struct node **fleet_keys_nodes;    /* its keys: override, or NULL */
	const struct node **fleet_name_nodes;
	const struct node **fleet_arn_nodes;
	size_t current_fleet;                    /* the fleet custom handlers are filling */
	char *inline_password;                   /* redis.password, until sources are reconciled */
	const struct node *tls_node, *tls_ca_node, *tls_cert_node, *tls_key_node;
	const struct node *sentinel_node, *sentinel_addresses_node, *sentinel_password_file_node;
};

static void node_error(struct loader *l, const struct node *n, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void node_error(struct loader *l, const struct node *n, const char *path, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (path != NULL && path[0] != '\0')
		errors_add(l->errs, "%s:%u:%u: %s: %s", l->name, n->line, n->col, path, msg);
	else
		errors_add(l->errs, "%s:%u:%u: %s", l->name, n->line, n->col, msg);
}

static bool is_null(const struct node *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

	if (n->kind != NODE_SCALAR || !n->plain)
		return false;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(n->value, nulls[i]) == 0)
			return true;
	return false;
}

/* YAML 1.1 booleans too: "on"/"yes" as a string is almost always a surprise. */
static bool is_bool(const struct node *n)
{
	static const char *const bools[] = {
		"true", "True", "TRUE", "false", "False", "FALSE", "yes", "Yes", "YES",
		"no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
	};

	if (n->kind != NODE_SCALAR || !n->plain)
		return false;
	for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++)
		if (strcmp(n->value, bools[i]) == 0)
			return true;
	return false;
}

static const char *kind_name(const struct node *n)
{
	if (n->kind == NODE_MAP)
		return "a mapping";
	if (n->kind == NODE_SEQ)
		return "a sequence";
	if (is_null(n))
		return "null";
	if (is_bool(n))
		return "a boolean";
	return n->plain ? "a plain scalar" : "a quoted string";
}

/* A string value: any scalar except null and booleans; numbers are taken as their text. */
static const char *want_string(struct loader *l, const struct node *n, const char *path)
{
	if (n->kind != NODE_SCALAR || is_null(n) || is_bool(n)) {
		node_error(l, n, path, "expected a string, got %s%s", kind_name(n),
			   n->kind == NODE_SCALAR ? " (quote it if you mean the text)" : "");
		return NULL;
	}
	if (strlen(n->value) != n->len) {
		node_error(l, n, path, "string contains a NUL character");
		return NULL;
	}
	if (n->len > STRING_MAX) {
		node_error(l, n, path, "string is longer than %d bytes", STRING_MAX);
		return NULL;
	}
	return n->value;
}

static bool has_control_chars(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static int set_string(char **dst, const char *value)
{
	char *copy = strdup(value);

	if (copy == NULL)
		return -ENOMEM;
	free(*dst);
	*dst = copy;
	return 0;
}

/* ---- string validators: NULL when fine, else the reason ---------------------------------- */

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

/*
 * Splits "host[:port]" or "[v6][:port]" of length len. host is copied without brackets.
 * Returns 0, or -EINVAL.
 */
static int split_host_port(const char *s, size_t len, char *host, size_t hostsize,
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
	if (split_host_port(rest, len, host, sizeof(host), &port, &bracketed) < 0)
		return "has an invalid host or port";
	if (!https && !is_loopback_host(host, bracketed))
		return "http:// is only allowed for loopback hosts (127.0.0.0/8, localhost, [::1]); use https://";
	return NULL;
}

static const char *check_text(const char *s)
{
	if (strlen(s) > 256)
		return "must be at most 256 characters";
	if (has_control_chars(s))
		return "must not contain control characters";
	return NULL;
}

static const char *check_path(const char *s)
{
	if (strlen(s) > PATH_MAX - 1)
		return "path is too long";
	if (has_control_chars(s))
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

	if (n->kind != NODE_SCALAR || !n->plain || is_null(n) || is_bool(n)) {
		node_error(l, n, path, "expected an integer, got %s", kind_name(n));
		return;
	}
	r = parse_uint64(n->value, f->max, &v);
	if (r == -EINVAL && n->value[0] == '-' && parse_uint64(n->value + 1, UINT64_MAX, &v) == 0)
		r = -ERANGE;
	if (r == -EINVAL) {
		node_error(l, n, path, "expected an integer, got \"%.64s\"", n->value);
		return;
	}
	if (r == -ERANGE || v < f->min) {
		node_error(l, n, path, "must be between %llu and %llu, got %.64s",
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

	if (n->kind != NODE_SCALAR || !n->plain || is_null(n) || is_bool(n)) {
		node_error(l, n, path, "expected a number, got %s", kind_name(n));
		return;
	}
	ip = strspn(s, "0123456789");
	if (s[ip] == '.')
		fp = strspn(s + ip + 1, "0123456789");
	if ((s[ip] == '.' ? s[ip + 1 + fp] : s[ip]) != '\0' || ip + fp == 0 || n->len > 32) {
		if (s[0] == '-' && strspn(s + 1, "0123456789.") == n->len - 1 && n->len > 1)
			node_error(l, n, path, "must be greater than %g and at most %g, got %.64s",
				   f->dmin_exclusive, f->dmax, s);
		else
			node_error(l, n, path, "expected a number, got \"%.64s\"", s);
		return;
	}
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !(v > f->dmin_exclusive && v <= f->dmax)) {
		node_error(l, n, path, "must be greater than %g and at most %g, got %.64s",
			   f->dmin_exclusive, f->dmax, s);
		return;
	}
	*(double *)FIELD_AT(base, f) = v;
}

static void parse_duration_field(struct loader *l, const struct node *n, const char *path,
				 const struct field *f, void *base)
{
	char lo[48], hi[48];
	const char *s = want_string(l, n, path);
	uint64_t v;
	int r;

	if (s == NULL)
		return;
	if (s[0] == '-') {
		node_error(l, n, path, "must not be negative");
		return;
	}
	r = parse_duration_ms(s, &v);
	if (r == -EINVAL) {
		node_error(l, n, path, "expected a duration like 250ms, 15s, 5m or 1h30m, got \"%.64s\"", s);
		return;
	}
	format_duration_ms(f->min, lo, sizeof(lo));
	format_duration_ms(f->max, hi, sizeof(hi));
	if (r == -ERANGE || v > f->max) {
		node_error(l, n, path, "must be at most %s", hi);
		return;
	}
	if (v < f->min) {
		if (f->min == 1)
			node_error(l, n, path, "must be greater than 0");
		else
			node_error(l, n, path, "must be at least %s", lo);
		return;
	}
	if (f->whole_seconds && v % 1000 != 0) {
		node_error(l, n, path, "must be a whole number of seconds");
		return;
	}
	*(uint64_t *)FIELD_AT(base, f) = v;
}

static void parse_string_field(struct loader *l, const struct node *n, const char *path,
			       const struct field *f, void *base)
{
	const char *s = want_string(l, n, path);
	const char *why;

	if (s == NULL)
		return;
	why = f->check != NULL ? f->check(s) : check_text(s);
	if (why != NULL) {
		node_error(l, n, path, "%s", why);
		return;
	}
	if (set_string((char **)FIELD_AT(base, f), s) < 0)
		node_error(l, n, path, "out of memory");
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
	if (is_null(n))
		goto required;
	if (n->kind != NODE_MAP) {
		node_error(l, n, path, "expected a mapping, got %s", kind_name(n));
		return;
	}
	if (n->n / 2 > MAP_MAX_ENTRIES) {
		node_error(l, n, path, "too many keys (more than %d)", MAP_MAX_ENTRIES);
		return;
	}
	for (size_t k = 0; k + 1 < n->n; k += 2) {
		const struct node *key = n->items[k], *value = n->items[k + 1];
		char sub[512];
		size_t i;
		bool dup = false;

		if (key->kind != NODE_SCALAR || strlen(key->value) != key->len) {
			node_error(l, key, path, "mapping keys must be plain strings");
			continue;
		}
		join_path(sub, sizeof(sub), path, key->value);
		for (size_t j = 0; j < k && !dup; j += 2)
			if (n->items[j]->kind == NODE_SCALAR && strcmp(n->items[j]->value, key->value) == 0) {
				node_error(l, key, sub, "duplicate key (first given at line %u)",
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
			node_error(l, key, sub, "unknown key (expected one of: %s)", allowed);
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
			node_error(l, n, path, "missing required key \"%s\"", fields[i].key);
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

/* ---- redis URL ------------------------------------------------------------------------- */

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes src[0..len) into a new string; NULL on a malformed escape or a %00. */
static char *percent_decode(const char *src, size_t len)
{
	char *out = malloc(len + 1);
	size_t o = 0;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		int hi, lo;
		if (src[i] != '%') {
			out[o++] = src[i];
			continue;
		}
		if (i + 2 >= len)
			goto bad;
		hi = hex_value(src[i + 1]);
		lo = hi < 0 ? -1 : hex_value(src[i + 2]);
		if (lo < 0 || (hi == 0 && lo == 0))
			goto bad;
		out[o++] = (char)(hi * 16 + lo);
		i += 2;
	}
	out[o] = '\0';
	return out;
bad:
	explicit_bzero(out, len + 1);
	free(out);
	return NULL;
}

/*
 * redis://[user[:password]@]host[:port][/db] and unix:///path[?db=N]. Messages never repeat the
 * URL: it may hold a password.
 */
static const char *parse_redis_url(struct config_redis *r, const char *url, enum config_secret_source *src)
{
	char host[256];
	uint64_t db = 0;
	bool bracketed;
	unsigned port;

	*src = CONFIG_SECRET_NONE;
	if (str_has_prefix(url, "unix://")) {
		const char *path = url + 7, *q = strchr(path, '?');
		size_t plen = q ? (size_t)(q - path) : strlen(path);
		if (path[0] != '/')
			return "unix socket URL must be unix:///absolute/path.sock[?db=N]";
		if (plen > SUN_PATH_MAX)
			return "unix socket path is longer than 107 bytes";
		if (q != NULL) {
			if (!str_has_prefix(q, "?db=") || parse_uint64(q + 4, 65535, &db) < 0)
				return "unix socket URL query must be ?db=N with N between 0 and 65535";
		}
		free(r->unix_path);
		r->unix_path = strndup(path, plen);
		if (r->unix_path == NULL)
			return "out of memory";
		if (has_control_chars(r->unix_path))
			return "unix socket path must not contain control characters";
		if (set_string(&r->host, "") < 0)
			return "out of memory";
		r->port = 0;
		r->db = (unsigned)db;
		r->tls = false;
		return NULL;
	}
	r->tls = str_has_prefix(url, "rediss://");
	if (!r->tls && !str_has_prefix(url, "redis://"))
		return "must be redis[s]://[user[:password]@]host[:port][/db] or unix:///path.sock[?db=N]";
	{
		const char *rest = url + (r->tls ? 9 : 8);
		const char *slash = strchr(rest, '/');
		size_t auth_end = slash ? (size_t)(slash - rest) : strlen(rest);
		const char *at = NULL;
		const char *hp;
		size_t hplen;

		for (size_t i = 0; i < auth_end; i++)
			if (rest[i] == '@')
				at = rest + i;
		hp = at ? at + 1 : rest;
		hplen = (size_t)(rest + auth_end - hp);
		if (split_host_port(hp, hplen, host, sizeof(host), &port, &bracketed) < 0)
			return "has an invalid host or port (redis://host:port/db)";
		if (slash != NULL && slash[1] != '\0' && parse_uint64(slash + 1, 65535, &db) < 0)
			return "database must be a number between 0 and 65535 (redis://host:port/db)";
		if (at != NULL) {
			const char *colon = memchr(rest, ':', (size_t)(at - rest));
			size_t ulen = colon ? (size_t)(colon - rest) : (size_t)(at - rest);
			char *user = percent_decode(rest, ulen), *pass = NULL;
			if (user == NULL)
				return "user name has a malformed %-escape";
			if (colon != NULL) {
				pass = percent_decode(colon + 1, (size_t)(at - colon - 1));
				if (pass == NULL) {
					free(user);
					return "password has a malformed %-escape";
				}
			}
			free(r->user);
			r->user = user;
			if (pass != NULL && pass[0] != '\0') {
				free(r->password);
				r->password = pass;
				*src = CONFIG_SECRET_URL;
			} else {
				free(pass);
			}
		}
		if (set_string(&r->host, host) < 0)
			return "out of memory";
		r->port = port ? port : 6379;
		r->unix_path[0] = '\0';
		r->db = (unsigned)db;
	}
	return NULL;
}

static void custom_redis_url(struct loader *l, const struct node *n, const char *path, void *base)
{
	struct config_redis *r = base;
	const char *s = want_string(l, n, path), *why;

	if (s == NULL)
		return;
	l->url_node = n;
	why = parse_redis_url(r, s, &l->password_source);
	if (why != NULL) {
		node_error(l, n, path, "%s", why);
		return;
	}
	if (set_string(&r->url, s) < 0)
		node_error(l, n, path, "out of memory");
}

static void custom_redis_password(struct loader *l, const struct node *n, const char *path, void *base)
{
	const char *s = want_string(l, n, path);
	(void)base;

	l->password_node = n;
	if (s == NULL || s[0] == '\0')
		return;  /* "" = no password */
	if (set_string(&l->inline_password, s) < 0)
		node_error(l, n, path, "out of memory");
}

static void custom_password_file(struct loader *l, const struct node *n, const char *path, void *base)
{
	struct config_redis *r = base;
	const char *s = want_string(l, n, path), *why;

	l->password_file_node = n;
	if (s == NULL)
		return;
	why = check_path(s);
	if (why != NULL)
		node_error(l, n, path, "%s", why);
	else if (set_string(&r->password_file, s) < 0)
		node_error(l, n, path, "out of memory");
}

static void custom_credentials_file(struct loader *l, const struct node *n, const char *path, void *base)
{
	struct config_aws *a = base;
	const char *s = want_string(l, n, path), *why;

	l->credentials_file_node = n;
	if (s == NULL)
		return;
	why = check_path(s);
	if (why != NULL)
		node_error(l, n, path, "%s", why);
	else if (set_string(&a->credentials_file, s) < 0)
		node_error(l, n, path, "out of memory");
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

/* ---- redis.tls and redis.sentinel --------------------------------------------------------- */

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
	if (is_null(n))
		return;
	if (n->kind != NODE_SEQ) {
		node_error(l, n, path, "expected a sequence of \"host:port\", got %s", kind_name(n));
		return;
	}
	if (n->n > 64) {
		node_error(l, n, path, "too many sentinels (more than 64)");
		return;
	}
	r->sentinel_hosts = calloc(n->n ? n->n : 1, sizeof(*r->sentinel_hosts));
	r->sentinel_ports = calloc(n->n ? n->n : 1, sizeof(*r->sentinel_ports));
	if (r->sentinel_hosts == NULL || r->sentinel_ports == NULL) {
		node_error(l, n, path, "out of memory");
		return;
	}
	for (size_t i = 0; i < n->n; i++) {
		const char *s = want_string(l, n->items[i], path);
		char host[256];
		unsigned port;
		bool bracketed;

		if (s == NULL)
			continue;
		if (split_host_port(s, strlen(s), host, sizeof(host), &port, &bracketed) < 0 ||
		    port == 0) {
			node_error(l, n->items[i], path, "must be host:port (e.g. \"10.0.0.5:26379\")");
			continue;
		}
		r->sentinel_hosts[r->n_sentinels] = strdup(host);
		if (r->sentinel_hosts[r->n_sentinels] == NULL) {
			node_error(l, n->items[i], path, "out of memory");
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

	if (is_null(n))
		return;
	if (n->kind != NODE_MAP) {
		node_error(l, n, path, "expected a mapping of tag names to values, got %s", kind_name(n));
		return;
	}
	if (n->n / 2 > CONFIG_MAX_TAGS) {
		node_error(l, n, path, "at most %d tags are allowed (IVS allows 50, 5 are ours), got %zu",
			   CONFIG_MAX_TAGS, n->n / 2);
		return;
	}
	f->tags = calloc(n->n / 2 + 1, sizeof(*f->tags));
	if (f->tags == NULL) {
		node_error(l, n, path, "out of memory");
		return;
	}
	for (size_t k = 0; k + 1 < n->n; k += 2) {
		const struct node *key = n->items[k], *value = n->items[k + 1];
		const char *ks, *vs;
		char sub[512];
		bool dup = false;

		ks = want_string(l, key, path);
		if (ks == NULL)
			continue;
		join_path(sub, sizeof(sub), path, ks);
		for (size_t j = 0; j < f->n_tags && !dup; j++)
			dup = strcmp(f->tags[j].key, ks) == 0;
		if (dup) {
			node_error(l, key, sub, "duplicate tag");
			continue;
		}
		if (strlen(ks) < 1 || strlen(ks) > 128 || !tag_text_ok(ks)) {
			node_error(l, key, sub, "tag keys must be 1 to 128 characters of letters, digits, "
				   "spaces and _ . : / = + - @");
			continue;
		}
		if (str_has_prefix(ks, "ivs-autoscaler:") || str_has_prefix(ks, "aws:")) {
			node_error(l, key, sub, "tag keys starting with \"ivs-autoscaler:\" or \"aws:\" are reserved");
			continue;
		}
		vs = want_string(l, value, sub);
		if (vs == NULL)
			continue;
		if (strlen(vs) > 256 || !tag_text_ok(vs)) {
			node_error(l, value, sub, "tag values must be at most 256 characters of letters, "
				   "digits, spaces and _ . : / = + - @");
			continue;
		}
		f->tags[f->n_tags].key = strdup(ks);
		f->tags[f->n_tags].value = strdup(vs);
		f->n_tags++;
		if (f->tags[f->n_tags - 1].key == NULL || f->tags[f->n_tags - 1].value == NULL)
			node_error(l, value, sub, "out of memory");
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
		node_error(l, n, path, "expected a sequence of fleets (- name: ...), got %s", kind_name(n));
		return;
	}
	if (n->n == 0) {
		node_error(l, n, path, "at least one fleet is required");
		return;
	}
	if (n->n > FLEETS_MAX) {
		node_error(l, n, path, "at most %d fleets are supported", FLEETS_MAX);
		return;
	}
	cfg->fleets = calloc(n->n, sizeof(*cfg->fleets));
	l->fleet_nodes = calloc(n->n, sizeof(*l->fleet_nodes));
	l->fleet_keys_nodes = calloc(n->n, sizeof(*l->fleet_keys_nodes));
	l->fleet_name_nodes = calloc(n->n, sizeof(*l->fleet_name_nodes));
	l->fleet_arn_nodes = calloc(n->n, sizeof(*l->fleet_arn_nodes));
	if (cfg->fleets == NULL || l->fleet_nodes == NULL || l->fleet_keys_nodes == NULL ||
	    l->fleet_name_nodes == NULL || l->fleet_arn_nodes == NULL) {
		node_error(l, n, path, "out of memory");
		return;
	}
	cfg->n_fleets = n->n;
	for (size_t i = 0; i < n->n; i++) {
		struct config_fleet *f = &cfg->fleets[i];
		const struct node *item = n->items[i];
		char sub[64];

		f->viewers_per_stage = 10000;
		f->target_utilization = 0.8;
		f->min_replicas = 0;
		f->max_replicas = 5;
		f->scale_down_delay_ms = 5 * 60 * 1000;
		f->drain_timeout_ms = 10 * 60 * 1000;
		f->drain_min_ms = 30 * 1000;
		f->reconnect_window_ms = 60 * 1000;
		l->fleet_nodes[i] = item;
		l->current_fleet = i;
		snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
		if (item->kind != NODE_MAP) {
			node_error(l, item, sub, "expected a mapping with name and origin_stage_arn, got %s",
				   kind_name(item));
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
			node_error(l, at != NULL ? at : item, where,
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
		node_error(l, seen[i] != NULL ? seen[i] : n, "reconcile.backoff_initial",
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

/* ---- controller and ha sections ------------------------------------------------------- */

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
		node_error(l, n, path, "expected true or false, got %s%.64s%s",
			   n->kind == NODE_SCALAR ? "\"" : kind_name(n),
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
		node_error(l, seen[rd] != NULL ? seen[rd] : n, "ha.renew_deadline",
			   "must be less than ha.lease_duration");
	else if (h->retry_period_ms >= h->renew_deadline_ms)
		node_error(l, seen[rp] != NULL ? seen[rp] : n, "ha.retry_period",
			   "must be less than ha.renew_deadline");
}

/* The host name as an instance name: characters outside [A-Za-z0-9_-] become '-'. */
static int default_instance(struct config *c)
{
	char host[256] = "";
	size_t n;

	if (c->controller.instance[0] != '\0')
		return 0;
	if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "ivs-autoscaler");
	host[64] = '\0';
	n = strlen(host);
	for (size_t i = 0; i < n; i++)
		if (!((host[i] >= 'a' && host[i] <= 'z') || (host[i] >= 'A' && host[i] <= 'Z') ||
		      (host[i] >= '0' && host[i] <= '9') || host[i] == '_' || host[i] == '-'))
			host[i] = '-';
	return set_string(&c->controller.instance, host);
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

/* ---- defaults, post-processing --------------------------------------------------------- */

static int config_set_defaults(struct config *c)
{
	struct {
		char **dst;
		const char *value;
	} strings[] = {
		{ &c->aws.region, "" }, { &c->aws.endpoint, "" }, { &c->aws.profile, "" },
		{ &c->aws.credentials_file, "" },
		{ &c->redis.url, "redis://127.0.0.1:6379/0" }, { &c->redis.host, "127.0.0.1" },
		{ &c->redis.unix_path, "" }, { &c->redis.user, "" }, { &c->redis.password, "" },
		{ &c->redis.password_file, "" }, { &c->redis.key_prefix, "ivs:prod:" },
		{ &c->redis.wake_channel, "autoscaler:wake" },
		{ &c->redis.keys.viewers, "stage:{arn}:viewers" },
		{ &c->redis.keys.publisher, "publisher:info" },
		{ &c->redis.keys.desired_stages, "desired_stages" },
		{ &c->redis.keys.open_stages, "autoscaler:fleet:{fleet}:stages" },
		{ &c->redis.tls_ca_file, "" }, { &c->redis.tls_server_name, "" },
		{ &c->redis.tls_cert_file, "" }, { &c->redis.tls_key_file, "" },
		{ &c->redis.sentinel_master, "" }, { &c->redis.sentinel_password, "" },
		{ &c->redis.sentinel_password_file, "" },
		{ &c->control.socket, "/run/ivs-autoscaler/control.sock" },
		{ &c->control.admin_group, "" },
		{ &c->controller.owner, "" }, { &c->controller.instance, "" },
		{ &c->ha.lease_key, "autoscaler:leader" },
		{ &c->metrics.listen, "" },
	};

	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
		if (set_string(strings[i].dst, strings[i].value) < 0)
			return -ENOMEM;
	c->aws.max_tps = 4;
	c->aws.resync_share = 0.5;
	c->aws.timeout_ms = 10000;
	c->aws.connect_timeout_ms = 3000;
	c->redis.port = 6379;
	c->redis.db = 0;
	c->redis.timeout_ms = 2000;
	c->control.max_clients = 64;
	c->control.idle_timeout_ms = 60000;
	c->reconcile.resync_interval_ms = 15000;
	c->reconcile.backoff_initial_ms = 1000;
	c->reconcile.backoff_max_ms = 5 * 60 * 1000;
	c->reconcile.stop_timeout_ms = 20000;
	c->ha.lease_duration_ms = 15000;
	c->ha.renew_deadline_ms = 10000;
	c->ha.retry_period_ms = 2000;
	return 0;
}

/* Where relative *_file paths live: systemd's LoadCredential= directory, else the config's. */
static int resolve_secret_path(const char *config_name, const char *file, char *out, size_t size)
{
	const char *credentials = getenv("CREDENTIALS_DIRECTORY");
	const char *slash;
	int n;

	if (file[0] == '/')
		n = snprintf(out, size, "%s", file);
	else if (credentials != NULL && credentials[0] != '\0')
		n = snprintf(out, size, "%s/%s", credentials, file);
	else if ((slash = strrchr(config_name, '/')) != NULL)
		n = snprintf(out, size, "%.*s/%s", (int)(slash - config_name), config_name, file);
	else
		n = snprintf(out, size, "%s", file);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/*
 * Appended to the error about a relative *_file that could not be read outside systemd's
 * LoadCredential= (no $CREDENTIALS_DIRECTORY): where it was looked for and how systemd would
 * provide it.
 */
static const char *relative_secret_hint(const char *file)
{
	const char *credentials = getenv("CREDENTIALS_DIRECTORY");

	if (file[0] == '/' || (credentials != NULL && credentials[0] != '\0'))
		return "";
	return " (a relative path is looked up in $CREDENTIALS_DIRECTORY, which systemd sets for "
	       "LoadCredential=NAME:/path/to/file in the unit; without it, next to the "
	       "configuration file)";
}

static void load_secret_files(struct loader *l)
{
	struct config_redis *r = &l->cfg->redis;
	struct config_aws *a = &l->cfg->aws;
	char resolved[PATH_MAX], err[PATH_MAX + 128];
	char *secret = NULL;

	int sources = (l->password_source == CONFIG_SECRET_URL) + (l->inline_password != NULL) +
		      (r->password_file[0] != '\0');

	if (sources > 1) {
		const struct node *at = r->password_file[0] != '\0' ? l->password_file_node : l->password_node;
		node_error(l, at, at == l->password_node ? "redis.password" : "redis.password_file",
			   "give the Redis password only once (password_file, password or in the url)");
	} else if (l->inline_password != NULL) {
		free(r->password);
		r->password = l->inline_password;
		l->inline_password = NULL;
		l->password_source = CONFIG_SECRET_INLINE;
	} else if (r->password_file[0] != '\0') {
		if (resolve_secret_path(l->name, r->password_file, resolved, sizeof(resolved)) < 0) {
			node_error(l, l->password_file_node, "redis.password_file", "path is too long");
		} else if (read_file_secret(resolved, &secret, err, sizeof(err)) < 0) {
			node_error(l, l->password_file_node, "redis.password_file", "%s%s", err,
				   relative_secret_hint(r->password_file));
		} else if (secret[0] == '\0') {
			node_error(l, l->password_file_node, "redis.password_file", "%s is empty", resolved);
		} else {
			free(r->password);
			r->password = secret;
			secret = NULL;
			l->password_source = CONFIG_SECRET_FILE;
			if (set_string(&r->password_file, resolved) < 0)
				node_error(l, l->password_file_node, "redis.password_file", "out of memory");
		}
	}
	if (r->user[0] != '\0' && r->password[0] == '\0' && sources <= 1 && l->url_node != NULL)
		node_error(l, l->url_node, "redis.url",
			   "a Redis user needs a password (in the url, password or password_file)");
	if (secret != NULL) {
		explicit_bzero(secret, strlen(secret));
		free(secret);
		secret = NULL;
	}
	if (a->credentials_file[0] != '\0') {
		/* Read once now so a missing or unreadable file fails at load, not at the first call. */
		if (resolve_secret_path(l->name, a->credentials_file, resolved, sizeof(resolved)) < 0) {
			node_error(l, l->credentials_file_node, "aws.credentials_file", "path is too long");
		} else if (read_file_secret(resolved, &secret, err, sizeof(err)) < 0) {
			node_error(l, l->credentials_file_node, "aws.credentials_file", "%s%s", err,
				   relative_secret_hint(a->credentials_file));
		} else {
			explicit_bzero(secret, strlen(secret));
			free(secret);
			if (set_string(&a->credentials_file, resolved) < 0)
				node_error(l, l->credentials_file_node, "aws.credentials_file", "out of memory");
		}
	}
}

/* A relative TLS file resolved like the secrets; "" stays "". false after reporting an error. */
static bool resolve_tls_path(struct loader *l, char **path, const struct node *at, const char *key)
{
	char resolved[PATH_MAX];

	if ((*path)[0] == '\0')
		return true;
	if (resolve_secret_path(l->name, *path, resolved, sizeof(resolved)) < 0) {
		node_error(l, at, key, "path is too long");
		return false;
	}
	if (set_string(path, resolved) < 0) {
		node_error(l, at, key, "out of memory");
		return false;
	}
	return true;
}

/*
 * redis.tls only with rediss://; the files are loaded now (into a throw-away TLS context), so a
 * missing CA bundle or a key that does not match its certificate fails here, with its line.
 */
static void check_redis_tls(struct loader *l)
{
	struct config_redis *r = &l->cfg->redis;
	const struct node *url = l->url_node != NULL ? l->url_node : l->tls_node;
	bool any = r->tls_ca_file[0] || r->tls_server_name[0] || r->tls_cert_file[0] ||
		   r->tls_key_file[0];
	char err[PATH_MAX + 256];
	SSL_CTX *ctx;

	if (!r->tls) {
		if (any)
			node_error(l, l->tls_node, "redis.tls",
				   "TLS settings need a rediss:// url (the url is %s)",
				   r->unix_path[0] ? "a unix socket" : "redis://, plain text");
		return;
	}
	if ((r->tls_cert_file[0] != '\0') != (r->tls_key_file[0] != '\0')) {
		node_error(l, r->tls_cert_file[0] ? l->tls_cert_node : l->tls_key_node,
			   r->tls_cert_file[0] ? "redis.tls.cert_file" : "redis.tls.key_file",
			   "a client certificate needs both cert_file and key_file");
		return;
	}
	if (!resolve_tls_path(l, &r->tls_ca_file, l->tls_ca_node, "redis.tls.ca_file") ||
	    !resolve_tls_path(l, &r->tls_cert_file, l->tls_cert_node, "redis.tls.cert_file") ||
	    !resolve_tls_path(l, &r->tls_key_file, l->tls_key_node, "redis.tls.key_file"))
		return;
	ctx = redis_tls_ctx_new(&(struct redis_tls_options){ .ca_file = r->tls_ca_file },
				err, sizeof(err));
	if (ctx == NULL) {
		node_error(l, l->tls_ca_node != NULL ? l->tls_ca_node : url,
			   l->tls_ca_node != NULL ? "redis.tls.ca_file" : "redis.url", "%s", err);
		return;
	}
	SSL_CTX_free(ctx);
	if (r->tls_cert_file[0] == '\0')
		return;
	ctx = redis_tls_ctx_new(&(struct redis_tls_options){ .ca_file = r->tls_ca_file,
							     .cert_file = r->tls_cert_file,
							     .key_file = r->tls_key_file },
				err, sizeof(err));
	if (ctx == NULL)
		node_error(l, l->tls_cert_node, "redis.tls.cert_file", "%s", err);
	SSL_CTX_free(ctx);
}

static void check_redis_sentinel(struct loader *l)
{
	struct config_redis *r = &l->cfg->redis;
	char resolved[PATH_MAX], err[PATH_MAX + 128];
	char *secret = NULL;

	if (r->sentinel_master[0] == '\0') {
		if (r->n_sentinels > 0 || r->sentinel_password_file[0] != '\0')
			node_error(l, l->sentinel_node, "redis.sentinel",
				   "sentinel addresses or password_file without a master_name");
		return;
	}
	if (r->n_sentinels == 0) {
		node_error(l, l->sentinel_addresses_node ? l->sentinel_addresses_node : l->sentinel_node,
			   "redis.sentinel.addresses",
			   "master_name needs at least one sentinel address (\"host:port\")");
		return;
	}
	if (r->unix_path[0] != '\0') {
		node_error(l, l->url_node != NULL ? l->url_node : l->sentinel_node, "redis.url",
			   "Sentinel needs a redis:// or rediss:// url (its scheme, user and db are used)");
		return;
	}
	if (r->sentinel_password_file[0] == '\0')
		return;
	if (resolve_secret_path(l->name, r->sentinel_password_file, resolved, sizeof(resolved)) < 0) {
		node_error(l, l->sentinel_password_file_node, "redis.sentinel.password_file",
			   "path is too long");
	} else if (read_file_secret(resolved, &secret, err, sizeof(err)) < 0) {
		node_error(l, l->sentinel_password_file_node, "redis.sentinel.password_file", "%s", err);
	} else if (secret[0] == '\0') {
		node_error(l, l->sentinel_password_file_node, "redis.sentinel.password_file",
			   "%s is empty", resolved);
		free(secret);
	} else {
		free(r->sentinel_password);
		r->sentinel_password = secret;
		if (set_string(&r->sentinel_password_file, resolved) < 0)
			node_error(l, l->sentinel_password_file_node, "redis.sentinel.password_file",
				   "out of memory");
	}
}

/* ---- key templates --------------------------------------------------------------------- */

/* keep_arn: leave {arn} in place (the per-fleet viewers template is expanded per stage later). */
static int expand_template(const char *template, const char *fleet, const char *arn, bool keep_arn,
			   char *out, size_t size)
{
	size_t used = 0;

	if (size == 0)
		return -ENAMETOOLONG;
	for (const char *p = template; *p != '\0';) {
		const char *piece = p;
		size_t len = 1;

		if (str_has_prefix(p, "{fleet}")) {
			if (fleet == NULL)
				return -EINVAL;
			piece = fleet;
			len = strlen(fleet);
			p += 7;
		} else if (str_has_prefix(p, "{arn}") && !keep_arn) {
			if (arn == NULL)
				return -EINVAL;
			piece = arn;
			len = strlen(arn);
			p += 5;
		} else {
			p++;
		}
		if (len >= size - used) {
			out[0] = '\0';
			return -ENAMETOOLONG;
		}
		memcpy(out + used, piece, len);
		used += len;
	}
	out[used] = '\0';
	return (int)used;
}

int config_expand_key(const char *template, const char *fleet, const char *arn, char *out, size_t size)
{
	return expand_template(template, fleet, arn, false, out, size);
}

static const struct {
	const char *name;
	size_t offset;
} key_kinds[] = {
	{ "viewers", offsetof(struct config_keys, viewers) },
	{ "publisher", offsetof(struct config_keys, publisher) },
	{ "desired_stages", offsetof(struct config_keys, desired_stages) },
	{ "open_stages", offsetof(struct config_keys, open_stages) },
};
#define KEY_SLOT(keys, i) (*(char **)((char *)(keys) + key_kinds[i].offset))

/* Fills each fleet's templates (global unless overridden) and its full Redis keys. */
static void resolve_fleet_keys(struct loader *l)
{
	struct config *cfg = l->cfg;

	for (size_t i = 0; i < cfg->n_fleets; i++) {
		struct config_fleet *f = &cfg->fleets[i];
		const struct node *at = l->fleet_keys_nodes[i] ? l->fleet_keys_nodes[i] : l->fleet_nodes[i];
		char path[64];

		if (f->name == NULL)
			continue;  /* already reported as missing */
		snprintf(path, sizeof(path), "fleets[%zu].keys", i);
		for (size_t k = 0; k < sizeof(key_kinds) / sizeof(key_kinds[0]); k++) {
			char full[CONFIG_KEY_MAX], prefixed[CONFIG_KEY_MAX];
			char **tmpl = &KEY_SLOT(&f->keys, k);
			int n;

			if (*tmpl == NULL && set_string(tmpl, KEY_SLOT(&cfg->redis.keys, k)) < 0) {
				node_error(l, at, path, "out of memory");
				return;
			}
			n = snprintf(prefixed, sizeof(prefixed), "%s%s", cfg->redis.key_prefix, *tmpl);
			if (n < 0 || (size_t)n >= sizeof(prefixed) ||
			    expand_template(prefixed, f->name, NULL, true, full, sizeof(full)) < 0) {
				node_error(l, at, path, "the %s key is longer than %d bytes", key_kinds[k].name,
					   CONFIG_KEY_MAX - 1);
				continue;
			}
			if (set_string(&KEY_SLOT(&f->redis_keys, k), full) < 0)
				node_error(l, at, path, "out of memory");
		}
	}
}

/*
 * Two fleets writing the same Redis key would silently fight over it, so any collision among
 * the per-fleet keys (publisher, desired_stages, open_stages) of different fleets — or of the
 * same fleet — is an error. viewers is per stage ({arn}), so it cannot collide.
 */
static void check_key_collisions(struct loader *l)
{
	struct config *cfg = l->cfg;
	const size_t nk = sizeof(key_kinds) / sizeof(key_kinds[0]);

	for (size_t i = 0; i < cfg->n_fleets; i++) {
		for (size_t ki = 1; ki < nk; ki++) {
			const char *a = KEY_SLOT(&cfg->fleets[i].redis_keys, ki);
			bool reported = false;
			if (a == NULL)
				continue;
			for (size_t j = 0; j <= i && !reported; j++) {
				for (size_t kj = 1; kj < nk && !reported; kj++) {
					const char *b = KEY_SLOT(&cfg->fleets[j].redis_keys, kj);
					const struct node *at;
					char path[64];
					if (b == NULL || (j == i && kj >= ki) || strcmp(a, b) != 0)
						continue;
					at = l->fleet_keys_nodes[i] ? l->fleet_keys_nodes[i] : l->fleet_nodes[i];
					snprintf(path, sizeof(path), "fleets[%zu].keys.%s", i, key_kinds[ki].name);
					node_error(l, at, path,
						   "Redis key \"%s\" of fleet \"%s\" is also the %s key of fleet "
						   "\"%s\"; a template shared by two fleets is a config error: "
						   "put {fleet} in it or set keys.%s for each fleet",
						   a, cfg->fleets[i].name, key_kinds[kj].name,
						   cfg->fleets[j].name, key_kinds[ki].name);
					reported = true;
				}
			}
		}
	}
}

static void check_unique_fleets(struct loader *l)
{
	struct config *cfg = l->cfg;

	for (size_t i = 0; i < cfg->n_fleets; i++) {
		for (size_t j = 0; j < i; j++) {
			const struct config_fleet *a = &cfg->fleets[i], *b = &cfg->fleets[j];
			char path[64];
			if (a->name != NULL && b->name != NULL && strcmp(a->name, b->name) == 0) {
				snprintf(path, sizeof(path), "fleets[%zu].name", i);
				node_error(l, l->fleet_name_nodes[i], path,
					   "duplicate fleet name \"%s\" (also fleets[%zu], line %u)", a->name, j,
					   l->fleet_name_nodes[j]->line);
			}
			if (a->origin_stage_arn != NULL && b->origin_stage_arn != NULL &&
			    strcmp(a->origin_stage_arn, b->origin_stage_arn) == 0) {
				snprintf(path, sizeof(path), "fleets[%zu].origin_stage_arn", i);
				node_error(l, l->fleet_arn_nodes[i], path,
					   "origin stage is also used by fleet \"%s\" (line %u)",
					   b->name ? b->name : "?", l->fleet_arn_nodes[j]->line);
			}
		}
	}
}

/* ---- public API ------------------------------------------------------------------------ */

static void keys_free(struct config_keys *k)
{
	free(k->viewers);
	free(k->publisher);
	free(k->desired_stages);
	free(k->open_stages);
}

static void free_secret(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

void config_free(struct config *c)
{
	if (c == NULL)
		return;
	free(c->source);
	free(c->aws.region);
	free(c->aws.endpoint);
	free(c->aws.profile);
	free(c->aws.credentials_file);
	free_secret(c->redis.url);
	free(c->redis.host);
	free(c->redis.unix_path);
	free(c->redis.user);
	free_secret(c->redis.password);
	free(c->redis.password_file);
	free(c->redis.key_prefix);
	free(c->redis.wake_channel);
	keys_free(&c->redis.keys);
	free(c->redis.tls_ca_file);
	free(c->redis.tls_server_name);
	free(c->redis.tls_cert_file);
	free(c->redis.tls_key_file);
	free(c->redis.sentinel_master);
	for (size_t i = 0; i < c->redis.n_sentinels; i++)
		free(c->redis.sentinel_hosts[i]);
	free(c->redis.sentinel_hosts);
	free(c->redis.sentinel_ports);
	free_secret(c->redis.sentinel_password);
	free(c->redis.sentinel_password_file);
	free(c->control.socket);
	free(c->control.admin_group);
	free(c->controller.owner);
	free(c->controller.instance);
	free(c->ha.lease_key);
	free(c->metrics.listen);
	for (size_t i = 0; i < c->n_fleets; i++) {
		struct config_fleet *f = &c->fleets[i];
		free(f->name);
		free(f->origin_stage_arn);
		for (size_t t = 0; t < f->n_tags; t++) {
			free(f->tags[t].key);
			free(f->tags[t].value);
		}
		free(f->tags);
		keys_free(&f->keys);
		keys_free(&f->redis_keys);
	}
	free(c->fleets);
	free(c);
}

const struct config_fleet *config_find_fleet(const struct config *c, const char *name)
{
	if (c == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < c->n_fleets; i++)
		if (strcmp(c->fleets[i].name, name) == 0)
			return &c->fleets[i];
	return NULL;
}

int config_load_buffer(const char *name, const char *data, size_t len, struct config **out,
		       struct config_errors *errs)
{
	struct loader l = { .name = name, .errs = errs };
	const struct node *seen[NFIELDS(top_fields)];
	struct node *root = NULL, empty = { .kind = NODE_SCALAR, .line = 1, .col = 1, .value = (char *)"",
					    .plain = true };
	int r;

	*out = NULL;
	errs->msgs = NULL;
	errs->count = 0;
	errs->truncated = 0;
	if (len > CONFIG_MAX_BYTES) {
		errors_add(errs, "%s:1:1: the configuration is larger than 1 MiB", name);
		return -EFBIG;
	}
	r = build_tree(name, data, len, &root, errs);
	if (r < 0)
		return r;
	l.cfg = calloc(1, sizeof(*l.cfg));
	if (l.cfg == NULL || config_set_defaults(l.cfg) < 0 || set_string(&l.cfg->source, name) < 0) {
		errors_add(errs, "%s:1:1: out of memory", name);
		r = -ENOMEM;
		goto out;
	}
	if (root != NULL && root->kind != NODE_MAP && !is_null(root))
		node_error(&l, root, "", "the top level must be a mapping (aws:, redis:, fleets:, ...)");
	else
		walk_mapping(&l, root != NULL ? root : &empty, "", top_fields, NFIELDS(top_fields), NULL, seen);
	/* Secrets are only read from files when the rest is sound: no warnings for a broken config. */
	check_unique_fleets(&l);
	if (errs->count == 0)
		load_secret_files(&l);
	if (errs->count == 0)
		check_redis_tls(&l);
	if (errs->count == 0)
		check_redis_sentinel(&l);
	if (errs->count == 0)
		resolve_fleet_keys(&l);
	if (errs->count == 0)
		check_key_collisions(&l);
	if (errs->count == 0 && default_instance(l.cfg) < 0)
		errors_add(errs, "%s:1:1: out of memory", name);
	r = errs->count == 0 && !errs->truncated ? 0 : -EINVAL;
	if (errs->truncated && errs->count == 0)
		errors_add(errs, "%s:1:1: out of memory", name);
out:
	if (r == 0) {
		l.cfg->redis.password_source = l.password_source;
		*out = l.cfg;
		l.cfg = NULL;
	}
	free_secret(l.inline_password);
	config_free(l.cfg);
	free(l.fleet_nodes);
	free(l.fleet_keys_nodes);
	free(l.fleet_name_nodes);
	free(l.fleet_arn_nodes);
	node_free(root);
	return r;
}

int config_load_file(const char *path, struct config **out, struct config_errors *errs)
{
	struct stat st;
	char *data = NULL;
	size_t len = 0;
	int fd, r;

	*out = NULL;
	errs->msgs = NULL;
	errs->count = 0;
	errs->truncated = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		errors_add(errs, "%s: cannot open: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		errors_add(errs, "%s: cannot stat: %s", path, strerror(-r));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		errors_add(errs, "%s: not a regular file", path);
		goto out;
	}
	data = malloc(CONFIG_MAX_BYTES + 1);
	if (data == NULL) {
		r = -ENOMEM;
		errors_add(errs, "%s: out of memory", path);
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, data + len, CONFIG_MAX_BYTES + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			errors_add(errs, "%s: cannot read: %s", path, strerror(-r));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CONFIG_MAX_BYTES)
			break;  /* config_load_buffer reports the size */
	}
	close(fd);
	fd = -1;
	r = config_load_buffer(path, data, len, out, errs);
out:
	if (fd >= 0)
		close(fd);
	free(data);
	return r;
}

/* ---- printing -------------------------------------------------------------------------- */

/* A YAML double-quoted scalar: always safe to reload, whatever the text. */
static void put_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void put_string(FILE *f, int indent, const char *key, const char *value)
{
	fprintf(f, "%*s%s: ", indent, "", key);
	put_quoted(f, value);
	fputc('\n', f);
}

static void put_duration(FILE *f, int indent, const char *key, uint64_t ms)
{
	char buf[48];

	format_duration_ms(ms, buf, sizeof(buf));
	fprintf(f, "%*s%s: %s\n", indent, "", key, buf);
}

/* The Redis URL rebuilt from its parts, with "***" where a password was. */
static void put_redis_url(FILE *f, const struct config_redis *r)
{
	char url[PATH_MAX + 64];

	if (r->unix_path[0] != '\0') {
		snprintf(url, sizeof(url), "unix://%s?db=%u", r->unix_path, r->db);
	} else {
		bool v6 = strchr(r->host, ':') != NULL;
		bool url_secret = r->password_source == CONFIG_SECRET_URL;
		snprintf(url, sizeof(url), "%s://%s%s%s%s%s%s:%u/%u", r->tls ? "rediss" : "redis",
			 r->user,
			 url_secret ? ":***" : "", r->user[0] != '\0' || url_secret ? "@" : "",
			 v6 ? "[" : "", r->host, v6 ? "]" : "", r->port, r->db);
	}
	put_string(f, 2, "url", url);
}

static void put_keys(FILE *f, int indent, const struct config_keys *k, bool with_viewers)
{
	fprintf(f, "%*skeys:\n", indent, "");
	if (with_viewers)
		put_string(f, indent + 2, "viewers", k->viewers);
	put_string(f, indent + 2, "publisher", k->publisher);
	put_string(f, indent + 2, "desired_stages", k->desired_stages);
	put_string(f, indent + 2, "open_stages", k->open_stages);
}

void config_print(const struct config *c, FILE *f)
{
	const struct config_redis *r = &c->redis;

	fprintf(f, "# effective configuration of ");
	for (const char *p = c->source; *p != '\0'; p++)
		fputc((unsigned char)*p < 0x20 ? '?' : *p, f);
	fprintf(f, "\naws:\n");
	put_string(f, 2, "region", c->aws.region);
	put_string(f, 2, "endpoint", c->aws.endpoint);
	put_string(f, 2, "profile", c->aws.profile);
	put_string(f, 2, "credentials_file", c->aws.credentials_file);
	fprintf(f, "  max_tps: %.15g\n", c->aws.max_tps);
	fprintf(f, "  resync_share: %.15g\n", c->aws.resync_share);
	put_duration(f, 2, "timeout", c->aws.timeout_ms);
	put_duration(f, 2, "connect_timeout", c->aws.connect_timeout_ms);

	fprintf(f, "redis:\n");
	put_redis_url(f, r);
	if (r->password_source == CONFIG_SECRET_INLINE)
		put_string(f, 2, "password", "***");
	if (r->password_source == CONFIG_SECRET_FILE)
		put_string(f, 2, "password_file", r->password_file);
	put_string(f, 2, "key_prefix", r->key_prefix);
	put_duration(f, 2, "timeout", r->timeout_ms);
	put_string(f, 2, "wake_channel", r->wake_channel);
	put_keys(f, 2, &r->keys, true);
	fprintf(f, "  tls:\n");
	put_string(f, 4, "ca_file", r->tls_ca_file);
	put_string(f, 4, "server_name", r->tls_server_name);
	put_string(f, 4, "cert_file", r->tls_cert_file);
	put_string(f, 4, "key_file", r->tls_key_file);
	fprintf(f, "  sentinel:\n");
	put_string(f, 4, "master_name", r->sentinel_master);
	fprintf(f, "    addresses: [");
	for (size_t i = 0; i < r->n_sentinels; i++) {
		char addr[300];
		bool v6 = strchr(r->sentinel_hosts[i], ':') != NULL;
		snprintf(addr, sizeof(addr), "%s%s%s:%u", v6 ? "[" : "", r->sentinel_hosts[i],
			 v6 ? "]" : "", r->sentinel_ports[i]);
		fprintf(f, "%s", i ? ", " : "");
		put_quoted(f, addr);
	}
	fprintf(f, "]\n");
	/* The file's path is not secret; its contents never appear. */
	put_string(f, 4, "password_file", r->sentinel_password_file);

	fprintf(f, "control:\n");
	put_string(f, 2, "socket", c->control.socket);
	put_string(f, 2, "admin_group", c->control.admin_group);
	fprintf(f, "  max_clients: %u\n", c->control.max_clients);
	put_duration(f, 2, "idle_timeout", c->control.idle_timeout_ms);

	fprintf(f, "reconcile:\n");
	put_duration(f, 2, "resync_interval", c->reconcile.resync_interval_ms);
	put_duration(f, 2, "backoff_initial", c->reconcile.backoff_initial_ms);
	put_duration(f, 2, "backoff_max", c->reconcile.backoff_max_ms);
	put_duration(f, 2, "stop_timeout", c->reconcile.stop_timeout_ms);

	fprintf(f, "controller:\n");
	put_string(f, 2, "owner", c->controller.owner);
	put_string(f, 2, "instance", c->controller.instance);

	fprintf(f, "ha:\n");
	fprintf(f, "  enabled: %s\n", c->ha.enabled ? "true" : "false");
	put_string(f, 2, "lease_key", c->ha.lease_key);
	put_duration(f, 2, "lease_duration", c->ha.lease_duration_ms);
	put_duration(f, 2, "renew_deadline", c->ha.renew_deadline_ms);
	put_duration(f, 2, "retry_period", c->ha.retry_period_ms);

	fprintf(f, "metrics:\n");
	put_string(f, 2, "listen", c->metrics.listen);

	fprintf(f, "fleets:\n");
	for (size_t i = 0; i < c->n_fleets; i++) {
		const struct config_fleet *fl = &c->fleets[i];
		fprintf(f, "  - name: ");
		put_quoted(f, fl->name);
		fputc('\n', f);
		put_string(f, 4, "origin_stage_arn", fl->origin_stage_arn);
		fprintf(f, "    viewers_per_stage: %u\n", (unsigned)fl->viewers_per_stage);
		fprintf(f, "    target_utilization: %.15g\n", fl->target_utilization);
		fprintf(f, "    min_replicas: %u\n", fl->min_replicas);
		fprintf(f, "    max_replicas: %u\n", fl->max_replicas);
		put_duration(f, 4, "scale_down_delay", fl->scale_down_delay_ms);
		put_duration(f, 4, "drain_timeout", fl->drain_timeout_ms);
		put_duration(f, 4, "drain_min", fl->drain_min_ms);
		put_duration(f, 4, "reconnect_window", fl->reconnect_window_ms);
		if (fl->n_tags == 0)
			fprintf(f, "    tags: {}\n");
		else
			fprintf(f, "    tags:\n");
		for (size_t t = 0; t < fl->n_tags; t++) {
			fprintf(f, "      ");
			put_quoted(f, fl->tags[t].key);
			fprintf(f, ": ");
			put_quoted(f, fl->tags[t].value);
			fputc('\n', f);
		}
		put_keys(f, 4, &fl->keys, false);
	}
}
