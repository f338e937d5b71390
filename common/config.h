/*
 * config.h — the daemon's YAML configuration: schema, defaults, validation.
 *
 * Loading parses into a new struct config and validates everything; on any error nothing is
 * returned and errs holds up to CONFIG_ERRORS_MAX messages of the form
 * "file:line:column: key.path: message" (line and column 1-based). A reload therefore parses
 * into a fresh config and swaps only on success.
 *
 * Durations are milliseconds. Every string is heap-owned by the config and never NULL
 * (absent optional strings are ""). Secrets (redis password, from the URL, `password` or
 * `password_file`) are kept in memory only; config_print shows "***" instead.
 */
#ifndef IVS_CONFIG_H
#define IVS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_ERRORS_MAX     20
#define CONFIG_MAX_BYTES      (1024 * 1024)
#define CONFIG_MAX_DEPTH      16
#define CONFIG_MAX_TAGS       45      /* IVS allows 50 per stage; 5 are ours */
#define CONFIG_KEY_MAX        512     /* longest expanded Redis key */

struct config_errors {
	char **msgs;
	size_t count;
	int truncated;  /* more errors than CONFIG_ERRORS_MAX were found */
};

/* Redis key templates, relative to redis.key_prefix. {fleet} and (viewers only) {arn}. */
struct config_keys {
	char *viewers;
	char *publisher;
	char *desired_stages;
	char *open_stages;
};

struct config_aws {
	char *region;            /* "" = resolve from the environment / profile */
	char *endpoint;          /* "" = https://ivsrealtime.<region>.amazonaws.com */
	char *profile;
	char *credentials_file;  /* resolved path, or "" */
	double max_tps;
	double resync_share;     /* of max_tps, for the background resync's reads (0 < x <= 1) */
	uint64_t timeout_ms;
	uint64_t connect_timeout_ms;
};

/* Where the Redis password came from; config_print masks each form. */
enum config_secret_source {
	CONFIG_SECRET_NONE,
	CONFIG_SECRET_URL,       /* redis://user:password@host */
	CONFIG_SECRET_INLINE,    /* redis.password */
	CONFIG_SECRET_FILE,      /* redis.password_file */
};

struct config_redis {
	char *url;               /* as configured; may contain a password: never log it */
	char *host;              /* "" for unix sockets */
	unsigned port;
	char *unix_path;         /* "" for TCP */
	unsigned db;
	char *user;              /* "" = no ACL user */
	char *password;          /* secret; "" = no AUTH */
	char *password_file;     /* resolved path, or "" */
	enum config_secret_source password_source;
	char *key_prefix;
	uint64_t timeout_ms;
	char *wake_channel;      /* relative to key_prefix */
	struct config_keys keys; /* global templates */
	/* redis.tls: in effect with a rediss:// url (tls true). Paths resolved; "" = unset. */
	bool tls;
	char *tls_ca_file;       /* "" = the system store */
	char *tls_server_name;   /* "" = the url's host (with Sentinel: the master's address) */
	char *tls_cert_file;     /* client certificate for mutual TLS, with tls_key_file */
	char *tls_key_file;
	/* redis.sentinel: a non-empty master name = find the master through the sentinels. */
	char *sentinel_master;
	char **sentinel_hosts;   /* n_sentinels host names or addresses ... */
	unsigned *sentinel_ports;/* ... and their ports */
	size_t n_sentinels;
	char *sentinel_password; /* secret; "" = no AUTH to the sentinels */
	char *sentinel_password_file; /* resolved path, or "" */
};

struct config_control {
	char *socket;
	char *admin_group;       /* "" = root only */
	unsigned max_clients;
	uint64_t idle_timeout_ms;
};

/* The optional Prometheus scrape endpoint. */
struct config_metrics {
	char *listen;            /* "HOST:PORT" (numeric), "" = no HTTP endpoint */
};

struct config_reconcile {
	uint64_t resync_interval_ms;
	uint64_t backoff_initial_ms;
	uint64_t backoff_max_ms;
	uint64_t stop_timeout_ms;
};

/* controller: identities (see "Two hosts" in the operator guide). */
struct config_controller {
	char *owner;             /* "" = no owner tag on stages, none required to match */
	char *instance;          /* this daemon in the lease and in logs; default: the host name */
};

/* ha: leader election over a Redis lease. Durations in ms; lease_key relative to key_prefix. */
struct config_ha {
	bool enabled;
	char *lease_key;
	uint64_t lease_duration_ms;   /* 1s..5m: the Redis PX */
	uint64_t renew_deadline_ms;   /* >= 500ms, < lease_duration: the right to mutate */
	uint64_t retry_period_ms;     /* >= 100ms, < renew_deadline: renew / acquire interval */
};

struct config_tag {
	char *key;
	char *value;
};

struct config_fleet {
	char *name;
	char *origin_stage_arn;
	uint32_t viewers_per_stage;
	double target_utilization;
	unsigned min_replicas;
	unsigned max_replicas;
	uint64_t scale_down_delay_ms;
	uint64_t drain_timeout_ms;
	uint64_t drain_min_ms;        /* as configured; the planner caps it at drain_timeout */
	uint64_t reconnect_window_ms;
	struct config_tag *tags;
	size_t n_tags;
	/* Templates in effect for this fleet (global ones unless overridden), as configured. */
	struct config_keys keys;
	/* The same with key_prefix prepended and {fleet} replaced: full Redis keys, except
	 * that viewers still holds {arn} (use config_expand_key). */
	struct config_keys redis_keys;
};

struct config {
	char *source;            /* file name used in messages */
	struct config_aws aws;
	struct config_redis redis;
	struct config_control control;
	struct config_reconcile reconcile;
	struct config_controller controller;
	struct config_ha ha;
	struct config_metrics metrics;
	struct config_fleet *fleets;
	size_t n_fleets;
};

/* Reads and validates path. 0 with *out set, or negative errno with errs filled. */
int config_load_file(const char *path, struct config **out, struct config_errors *errs);

/* Same on a buffer; name is used in messages and its directory for relative *_file paths. */
int config_load_buffer(const char *name, const char *data, size_t len, struct config **out,
		       struct config_errors *errs);

void config_free(struct config *config);
void config_errors_free(struct config_errors *errs);

/* The effective configuration as YAML that loads back to the same values; secrets as "***". */
void config_print(const struct config *config, FILE *f);

/* The fleet with that name, or NULL. */
const struct config_fleet *config_find_fleet(const struct config *config, const char *name);

/*
 * Replaces {fleet} and {arn} in template. A placeholder whose value is NULL is -EINVAL;
 * a result that does not fit in size bytes is -ENAMETOOLONG. Returns the length.
 */
int config_expand_key(const char *template, const char *fleet, const char *arn, char *out,
		      size_t size);

#endif
