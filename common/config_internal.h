/*
 * config_internal.h — what the files of the configuration loader share; the rest of the daemon
 * uses config.h.
 *
 *   config_yaml.c       the YAML document -> a small tree with line/column (sizes, depth, one
 *                       document, no anchors/aliases/tags) and what a scalar node is
 *   config_schema.c     the field tables, typed scalars and per-field validators: the walk
 *   config_redis_url.c  redis.url -> host, port, db, user, password (pure)
 *   config_keys.c       Redis key templates: expansion, per-fleet keys, collisions
 *   config.c            loading: defaults, the error list, secret and TLS files, cross-field
 *                       rules, free
 *   config_print.c      the effective configuration (`-t`), secrets as "***"
 */
#ifndef IVS_CONFIG_INTERNAL_H
#define IVS_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define STRING_MAX       1024  /* generous bound on any single configured string */
#define SUN_PATH_MAX     107   /* sizeof(sockaddr_un.sun_path) - 1 */

/* ---- the error list (config.c) ---------------------------------------------------------- */

/* Appends one message; past CONFIG_ERRORS_MAX (or out of memory) only sets truncated. */
void config_errors_add(struct config_errors *errs, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- the YAML tree (config_yaml.c) -------------------------------------------------------- */

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

/*
 * Builds the tree of the single document in data. Returns 0 and *root (NULL for an empty
 * stream; free with config_node_free), or -EINVAL / -ENOMEM with the reason in errs.
 */
int config_yaml_parse(const char *name, const char *data, size_t len, struct node **root,
		      struct config_errors *errs);
void config_node_free(struct node *n);

/* A plain null ("", ~, null) or boolean (YAML 1.1 too: yes/no/on/off) scalar. */
bool config_node_is_null(const struct node *n);
bool config_node_is_bool(const struct node *n);
/* "a mapping", "null", "a quoted string", ...: for "expected X, got Y" messages. */
const char *config_node_kind(const struct node *n);

/* ---- the loader's state (filled by config_schema.c, used by config.c and config_keys.c) ---- */

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

/* "file:line:col: path: message" at node n (without "path: " when path is NULL or ""). */
void config_node_error(struct loader *l, const struct node *n, const char *path,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- the schema (config_schema.c) --------------------------------------------------------- */

/* Walks the document (root may be NULL: an empty file) into l->cfg, errors into l->errs. */
void config_walk_document(struct loader *l, const struct node *root);

/* A string value: any scalar except null and booleans; NULL after reporting an error. */
const char *config_want_string(struct loader *l, const struct node *n, const char *path);
/* Replaces *dst with a copy of value; -ENOMEM leaves *dst as it was. */
int config_set_string(char **dst, const char *value);
bool config_has_control_chars(const char *s);

/*
 * Splits "host[:port]" or "[v6][:port]" of length len. host is copied without brackets; port
 * is 0 when absent. Returns 0, or -EINVAL.
 */
int config_split_host_port(const char *s, size_t len, char *host, size_t hostsize,
			   unsigned *port, bool *bracketed);

/* ---- defaults (config.c) ------------------------------------------------------------------ */

/* The values of a fleet's optional keys before its mapping is read. */
void config_fleet_defaults(struct config_fleet *f);

/* ---- redis.url (config_redis_url.c) -------------------------------------------------------- */

/*
 * redis[s]://[user[:password]@]host[:port][/db] and unix:///path[?db=N] into r's url fields
 * (host, port, unix_path, db, tls, user, password); *src says whether the URL held a password.
 * NULL on success, else the reason, which never repeats the URL (it may hold a password).
 */
const char *config_parse_redis_url(struct config_redis *r, const char *url,
				   enum config_secret_source *src);

/* ---- key templates (config_keys.c) --------------------------------------------------------- */

/* Fills each fleet's templates (global unless overridden) and its full Redis keys. */
void config_resolve_fleet_keys(struct loader *l);
/* Any Redis key shared by two fleets (or two kinds of one fleet) is an error. */
void config_check_key_collisions(struct loader *l);

#endif
