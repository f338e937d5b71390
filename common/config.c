/*
 * config.c — loading the configuration (see config.h): defaults, the error list, the secret and
 * TLS files, the rules across fields and sections, and freeing.
 *
 * Two stages. config_yaml.c turns the document into a small tree with line/column; then
 * config_schema.c walks it against the field tables, collecting errors instead of stopping at
 * the first. Only when that is clean are the secret files read, the TLS files loaded and the
 * cross-field rules (unique fleets, Sentinel, no Redis key shared by two fleets: config_keys.c)
 * checked on the filled struct. Error text never includes a secret.
 */
#include "config_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "redis_tls.h"
#include "util.h"

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

void config_errors_add(struct config_errors *errs, const char *fmt, ...)
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

/* ---- defaults -------------------------------------------------------------------------- */

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
		if (config_set_string(strings[i].dst, strings[i].value) < 0)
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
	return config_set_string(&c->controller.instance, host);
}


void config_fleet_defaults(struct config_fleet *f)
{
	f->viewers_per_stage = 10000;
	f->target_utilization = 0.8;
	f->min_replicas = 0;
	f->max_replicas = 5;
	f->scale_down_delay_ms = 5 * 60 * 1000;
	f->drain_timeout_ms = 10 * 60 * 1000;
	f->drain_min_ms = 30 * 1000;
	f->reconnect_window_ms = 60 * 1000;
}

/* ---- secret and TLS files -------------------------------------------------------------- */

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
		config_node_error(l, at, at == l->password_node ? "redis.password" : "redis.password_file",
				  "give the Redis password only once (password_file, password or in the url)");
	} else if (l->inline_password != NULL) {
		free(r->password);
		r->password = l->inline_password;
		l->inline_password = NULL;
		l->password_source = CONFIG_SECRET_INLINE;
	} else if (r->password_file[0] != '\0') {
		if (resolve_secret_path(l->name, r->password_file, resolved, sizeof(resolved)) < 0) {
			config_node_error(l, l->password_file_node, "redis.password_file", "path is too long");
		} else if (read_file_secret(resolved, &secret, err, sizeof(err)) < 0) {
			config_node_error(l, l->password_file_node, "redis.password_file", "%s%s", err,
					  relative_secret_hint(r->password_file));
		} else if (secret[0] == '\0') {
			config_node_error(l, l->password_file_node, "redis.password_file", "%s is empty", resolved);
		} else {
			free(r->password);
			r->password = secret;
			secret = NULL;
			l->password_source = CONFIG_SECRET_FILE;
			if (config_set_string(&r->password_file, resolved) < 0)
				config_node_error(l, l->password_file_node, "redis.password_file", "out of memory");
		}
	}
	if (r->user[0] != '\0' && r->password[0] == '\0' && sources <= 1 && l->url_node != NULL)
		config_node_error(l, l->url_node, "redis.url",
				  "a Redis user needs a password (in the url, password or password_file)");
	if (secret != NULL) {
		explicit_bzero(secret, strlen(secret));
		free(secret);
		secret = NULL;
	}
	if (a->credentials_file[0] != '\0') {
		/* Read once now so a missing or unreadable file fails at load, not at the first call. */
		if (resolve_secret_path(l->name, a->credentials_file, resolved, sizeof(resolved)) < 0) {
			config_node_error(l, l->credentials_file_node, "aws.credentials_file", "path is too long");
		} else if (read_file_secret(resolved, &secret, err, sizeof(err)) < 0) {
			config_node_error(l, l->credentials_file_node, "aws.credentials_file", "%s%s", err,
					  relative_secret_hint(a->credentials_file));
		} else {
			explicit_bzero(secret, strlen(secret));
			free(secret);
			if (config_set_string(&a->credentials_file, resolved) < 0)
				config_node_error(l, l->credentials_file_node, "aws.credentials_file", "out of memory");
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
		config_node_error(l, at, key, "path is too long");
		return false;
	}
	if (config_set_string(path, resolved) < 0) {
		config_node_error(l, at, key, "out of memory");
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
			config_node_error(l, l->tls_node, "redis.tls",
					  "TLS settings need a rediss:// url (the url is %s)",
					  r->unix_path[0] ? "a unix socket" : "redis://, plain text");
		return;
	}
	if ((r->tls_cert_file[0] != '\0') != (r->tls_key_file[0] != '\0')) {
		config_node_error(l, r->tls_cert_file[0] ? l->tls_cert_node : l->tls_key_node,
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
		config_node_error(l, l->tls_ca_node != NULL ? l->tls_ca_node : url,
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
		config_node_error(l, l->tls_cert_node, "redis.tls.cert_file", "%s", err);
	SSL_CTX_free(ctx);
}

static void check_redis_sentinel(struct loader *l)
{
	struct config_redis *r = &l->cfg->redis;
	char resolved[PATH_MAX], err[PATH_MAX + 128];
	char *secret = NULL;

	if (r->sentinel_master[0] == '\0') {
		if (r->n_sentinels > 0 || r->sentinel_password_file[0] != '\0')
			config_node_error(l, l->sentinel_node, "redis.sentinel",
					  "sentinel addresses or password_file without a master_name");
		return;
	}
	if (r->n_sentinels == 0) {
		config_node_error(l, l->sentinel_addresses_node ? l->sentinel_addresses_node : l->sentinel_node,
				  "redis.sentinel.addresses",
				  "master_name needs at least one sentinel address (\"host:port\")");
		return;
	}
	if (r->unix_path[0] != '\0') {
		config_node_error(l, l->url_node != NULL ? l->url_node : l->sentinel_node, "redis.url",
				  "Sentinel needs a redis:// or rediss:// url (its scheme, user and db are used)");
		return;
	}
	if (r->sentinel_password_file[0] == '\0')
		return;
	if (resolve_secret_path(l->name, r->sentinel_password_file, resolved, sizeof(resolved)) < 0) {
		config_node_error(l, l->sentinel_password_file_node, "redis.sentinel.password_file",
				  "path is too long");
	} else if (read_file_secret(resolved, &secret, err, sizeof(err)) < 0) {
		config_node_error(l, l->sentinel_password_file_node, "redis.sentinel.password_file", "%s", err);
	} else if (secret[0] == '\0') {
		config_node_error(l, l->sentinel_password_file_node, "redis.sentinel.password_file",
				  "%s is empty", resolved);
		free(secret);
	} else {
		free(r->sentinel_password);
		r->sentinel_password = secret;
		if (config_set_string(&r->sentinel_password_file, resolved) < 0)
			config_node_error(l, l->sentinel_password_file_node, "redis.sentinel.password_file",
					  "out of memory");
	}
}

/* ---- rules across fields --------------------------------------------------------------- */

static void check_unique_fleets(struct loader *l)
{
	struct config *cfg = l->cfg;

	for (size_t i = 0; i < cfg->n_fleets; i++) {
		for (size_t j = 0; j < i; j++) {
			const struct config_fleet *a = &cfg->fleets[i], *b = &cfg->fleets[j];
			char path[64];
			if (a->name != NULL && b->name != NULL && strcmp(a->name, b->name) == 0) {
				snprintf(path, sizeof(path), "fleets[%zu].name", i);
				config_node_error(l, l->fleet_name_nodes[i], path,
						  "duplicate fleet name \"%s\" (also fleets[%zu], line %u)", a->name, j,
						  l->fleet_name_nodes[j]->line);
			}
			if (a->origin_stage_arn != NULL && b->origin_stage_arn != NULL &&
			    strcmp(a->origin_stage_arn, b->origin_stage_arn) == 0) {
				snprintf(path, sizeof(path), "fleets[%zu].origin_stage_arn", i);
				config_node_error(l, l->fleet_arn_nodes[i], path,
						  "origin stage is also used by fleet \"%s\" (line %u)",
						  b->name ? b->name : "?", l->fleet_arn_nodes[j]->line);
			}
		}
	}
}

/* ---- free, find, load ------------------------------------------------------------------ */

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
	struct node *root = NULL;
	int r;

	*out = NULL;
	errs->msgs = NULL;
	errs->count = 0;
	errs->truncated = 0;
	if (len > CONFIG_MAX_BYTES) {
		config_errors_add(errs, "%s:1:1: the configuration is larger than 1 MiB", name);
		return -EFBIG;
	}
	r = config_yaml_parse(name, data, len, &root, errs);
	if (r < 0)
		return r;
	l.cfg = calloc(1, sizeof(*l.cfg));
	if (l.cfg == NULL || config_set_defaults(l.cfg) < 0 || config_set_string(&l.cfg->source, name) < 0) {
		config_errors_add(errs, "%s:1:1: out of memory", name);
		r = -ENOMEM;
		goto out;
	}
	config_walk_document(&l, root);
	/* Secrets are only read from files when the rest is sound: no warnings for a broken config. */
	check_unique_fleets(&l);
	if (errs->count == 0)
		load_secret_files(&l);
	if (errs->count == 0)
		check_redis_tls(&l);
	if (errs->count == 0)
		check_redis_sentinel(&l);
	if (errs->count == 0)
		config_resolve_fleet_keys(&l);
	if (errs->count == 0)
		config_check_key_collisions(&l);
	if (errs->count == 0 && default_instance(l.cfg) < 0)
		config_errors_add(errs, "%s:1:1: out of memory", name);
	r = errs->count == 0 && !errs->truncated ? 0 : -EINVAL;
	if (errs->truncated && errs->count == 0)
		config_errors_add(errs, "%s:1:1: out of memory", name);
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
	config_node_free(root);
	return r;
}

int config_load_file(const char *path, struct config **out, struct config_errors *errs)
{
	const char *failed;
	char *data;
	size_t len;
	int r;

	*out = NULL;
	errs->msgs = NULL;
	errs->count = 0;
	errs->truncated = 0;
	r = read_file_bounded(path, CONFIG_MAX_BYTES, &data, &len, NULL, &failed);
	if (r < 0 && failed != NULL)
		config_errors_add(errs, "%s: cannot %s: %s", path, failed, strerror(-r));
	else if (r == -EINVAL)
		config_errors_add(errs, "%s: not a regular file", path);
	else if (r == -EFBIG)
		config_errors_add(errs, "%s:1:1: the configuration is larger than 1 MiB", path);
	else if (r < 0)
		config_errors_add(errs, "%s: out of memory", path);
	if (r < 0)
		return r;
	r = config_load_buffer(path, data, len, out, errs);
	free(data);
	return r;
}
