/*
 * config_print.c — the effective configuration, as `ivs-autoscaler -t` prints it (see config.h):
 * YAML that loads back to the same values, every string double-quoted, secrets as "***".
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

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
