/*
 * daemon.c — brings the components up in one sd-event loop and takes them down again.
 *
 * Order matters and follows the systemd conventions (anchors §D1): signals are blocked before
 * any thread exists (the credentials refresher is one), READY=1 is sent once the configuration
 * is loaded and the admin socket listens — not after the first AWS call — and the watchdog
 * proves only that this loop turns.
 */
#include "daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "aws.h"
#include "commands.h"
#include "config.h"
#include "control.h"
#include "creds.h"
#include "ivs.h"
#include "leader.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "reconcile.h"
#include "redis_options.h"
#include "redisio.h"

struct daemon {
	const struct daemon_options *opts;
	sd_event *event;
	struct config *config;
	struct config *pending_config;          /* valid reload waiting for the pass to end */
	struct creds_provider *creds;
	struct aws_client *aws;
	struct redisio *redis;
	struct control *control;
	struct metrics_http *metrics_http;
	struct ivs_metrics metrics;
	bool metrics_ready;
	struct reconciler *reconciler;
	struct leader *leader;                  /* ha.enabled; NULL: always the leader */
	bool started;                           /* reconciler_start ran */
	bool releasing;                         /* stopping: the lease release is on the wire */
	sd_event_source *once_timer;            /* --once with ha: start even if Redis never answers */
	struct command_context commands;
	sd_event_source *stop_timer;
	uint64_t started_s;
	uint64_t aws_seen[AWS_MAX_OPERATIONS][AWS_ERR_KIND_COUNT + 3];
	char region[64];
	char wake_channel[CONFIG_KEY_MAX];
	bool stopping;
	bool finishing;
	int exit_code;
	/* The last reload (SIGHUP or the reload command), for status: 0 = none yet. */
	int64_t last_reload_ms;
	bool last_reload_ok;
	char last_reload_error[512];
};

static uint64_t mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

static uint64_t uptime_s(void *ud)
{
	struct daemon *d = ud;
	return mono_s() - d->started_s;
}

/* ---- metrics: copy the AWS client's counters (monotonic) into the registry ---------------- */

static void add_delta(struct metric *m, const char *const *labels, uint64_t now, uint64_t *seen)
{
	if (now > *seen)
		metric_add(m, labels, (double)(now - *seen));
	*seen = now;
}

static void refresh_metrics(void *ud)
{
	struct daemon *d = ud;
	size_t n = 0;
	const struct aws_op_stats *st;

	if (d->aws == NULL || !d->metrics_ready)
		return;
	if (d->creds != NULL)
		metric_set(d->metrics.credentials_expiry, NULL,
			   (double)creds_provider_expiration(d->creds));
	st = aws_client_stats(d->aws, &n);
	for (size_t i = 0; i < n && i < AWS_MAX_OPERATIONS; i++) {
		const char *op[1] = { st[i].operation };
		for (int k = 0; k < AWS_ERR_KIND_COUNT; k++) {
			const char *labels[2] = { st[i].operation,
						  k == AWS_OK ? "success" : aws_error_kind_name(k) };
			if (st[i].outcomes[k] > d->aws_seen[i][k])
				add_delta(d->metrics.aws_requests_total, labels, st[i].outcomes[k],
					  &d->aws_seen[i][k]);
		}
		add_delta(d->metrics.aws_throttled_total, op, st[i].throttles,
			  &d->aws_seen[i][AWS_ERR_KIND_COUNT]);
		add_delta(d->metrics.aws_retries_total, op, st[i].retries,
			  &d->aws_seen[i][AWS_ERR_KIND_COUNT + 1]);
		add_delta(d->metrics.aws_rate_limit_waits_total, op, st[i].rate_waits,
			  &d->aws_seen[i][AWS_ERR_KIND_COUNT + 2]);
	}
}

/* ---- shutdown and reload ------------------------------------------------------------------- */

/*
 * The first decision to exit wins: tearing down cancels calls in flight, and the callbacks
 * that cancellation runs (a pass abandoned, say) must not rewrite the exit status.
 */
static void finish(struct daemon *d, int code)
{
	if (d->finishing)
		return;
	d->finishing = true;
	d->exit_code = code;
	sd_event_exit(d->event, code);
}

static void on_lease_released(void *ud)
{
	struct daemon *d = ud;
	finish(d, d->exit_code);
}

/*
 * A clean end: nothing is in flight any more, so the lease can go (compare-and-delete) and a
 * standby take over at its next retry instead of waiting for the key to expire.
 */
static void finish_releasing(struct daemon *d, int code)
{
	if (d->finishing || d->releasing)
		return;
	d->exit_code = code;
	if (leader_release(d->leader, on_lease_released, d) == 1) {
		d->releasing = true;
		return;
	}
	finish(d, code);
}

static int on_stop_deadline(sd_event_source *s, uint64_t usec, void *ud)
{
	struct daemon *d = ud;
	(void)s; (void)usec;
	log_warnx("stop deadline reached; abandoning calls in flight (the next start re-derives "
		  "everything from IVS)");
	aws_client_cancel_all(d->aws);
	finish(d, 0);
	return 0;
}

static void swap_config(struct daemon *d);

/*
 * Stopping and swapping a reloaded configuration both wait for the reconciler to be idle: no
 * pass running (it points into the config) and no call or Redis write owed to it. The
 * reconciler says when it gets there (on_idle); nothing polls.
 */
static void begin_stop(struct daemon *d, const char *why)
{
	if (d->stopping)
		return;
	d->stopping = true;
	log_info("stopping (%s)", why);
	sd_notify(0, "STOPPING=1\nSTATUS=stopping");
	if (d->control != NULL)
		control_stop_accepting(d->control);
	if (reconciler_stop(d->reconciler)) {
		finish_releasing(d, 0);
		return;
	}
	if (sd_event_add_time_relative(d->event, &d->stop_timer, CLOCK_MONOTONIC,
				       d->config->reconcile.stop_timeout_ms * 1000u, 1000,
				       on_stop_deadline, d) < 0) {
		log_warnx("cannot arm the stop deadline; abandoning calls in flight now");
		aws_client_cancel_all(d->aws);
		finish(d, 0);
		return;
	}
	/* on_idle finishes once the calls in flight have answered (or the deadline cancels them). */
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *ud)
{
	(void)s;
	begin_stop(ud, si->ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
	return 0;
}

static void describe_restart_only_changes(const struct config *old, const struct config *new)
{
	if (strcmp(old->metrics.listen, new->metrics.listen) != 0)
		log_warnx("reload: metrics.listen takes effect only after a restart");
	if (strcmp(old->aws.endpoint, new->aws.endpoint) != 0 ||
	    strcmp(old->aws.region, new->aws.region) != 0 ||
	    strcmp(old->control.socket, new->control.socket) != 0 ||
	    strcmp(old->redis.key_prefix, new->redis.key_prefix) != 0)
		log_warnx("reload: aws and control connection settings and redis.key_prefix take "
			  "effect only after a restart; fleets and policies changed now");
	if (old->ha.enabled != new->ha.enabled || strcmp(old->ha.lease_key, new->ha.lease_key) != 0 ||
	    old->ha.lease_duration_ms != new->ha.lease_duration_ms ||
	    old->ha.renew_deadline_ms != new->ha.renew_deadline_ms ||
	    old->ha.retry_period_ms != new->ha.retry_period_ms ||
	    strcmp(old->controller.instance, new->controller.instance) != 0)
		log_warnx("reload: ha settings and controller.instance take effect only after a "
			  "restart; controller.owner changed now");
}

static int redis_options(struct daemon *d, const struct config *cfg, struct redisio_options *ro,
			 SSL_CTX **tls);

static bool same_string(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

/* Do the Redis connection settings differ (then the links reconnect with the new ones)? */
static bool redis_settings_changed(const struct config_redis *a, const struct config_redis *b)
{
	if (!same_string(a->url, b->url) || !same_string(a->password, b->password) ||
	    a->timeout_ms != b->timeout_ms || !same_string(a->wake_channel, b->wake_channel) ||
	    !same_string(a->tls_ca_file, b->tls_ca_file) ||
	    !same_string(a->tls_server_name, b->tls_server_name) ||
	    !same_string(a->tls_cert_file, b->tls_cert_file) ||
	    !same_string(a->tls_key_file, b->tls_key_file) ||
	    !same_string(a->sentinel_master, b->sentinel_master) ||
	    !same_string(a->sentinel_password, b->sentinel_password) ||
	    a->n_sentinels != b->n_sentinels)
		return true;
	for (size_t i = 0; i < a->n_sentinels; i++)
		if (!same_string(a->sentinel_hosts[i], b->sentinel_hosts[i]) ||
		    a->sentinel_ports[i] != b->sentinel_ports[i])
			return true;
	/* TLS files may have been replaced in place (a renewed certificate): reload them too. */
	return a->tls;
}

static void reconfigure_redis(struct daemon *d, const struct config *fresh)
{
	struct redisio_options ro;
	SSL_CTX *tls = NULL;

	if (d->redis == NULL || !redis_settings_changed(&d->config->redis, &fresh->redis))
		return;
	if (redis_options(d, fresh, &ro, &tls) < 0 || redisio_reconfigure(d->redis, &ro) < 0)
		log_errorx("reload: cannot apply the new Redis settings; keeping the old ones");
	SSL_CTX_free(tls);
}

/* Swap in the pending configuration; only when the reconciler is idle (see on_idle). */
static void swap_config(struct daemon *d)
{
	const char **names;

	describe_restart_only_changes(d->config, d->pending_config);
	reconfigure_redis(d, d->pending_config);
	if (reconciler_set_config(d->reconciler, d->pending_config) < 0) {
		log_errorx("reload: out of memory; keeping the old configuration");
		config_free(d->pending_config);
		d->pending_config = NULL;
		return;
	}
	names = calloc(d->pending_config->n_fleets + 1, sizeof(*names));
	for (size_t i = 0; names != NULL && i < d->pending_config->n_fleets; i++)
		names[i] = d->pending_config->fleets[i].name;
	if (names != NULL && d->metrics_ready)
		ivs_metrics_set_fleets(&d->metrics, names, d->pending_config->n_fleets);
	free(names);
	/* The old config's strings must outlive anything that still points at them: the
	 * reconciler dropped its observation, so nothing does now. */
	config_free(d->config);
	d->config = d->pending_config;
	d->pending_config = NULL;
	log_event(LOG_NOTICE, MSGID_CONFIG_RELOADED, NULL, "configuration reloaded (%zu fleets)",
		  d->config->n_fleets);
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Parse the configuration file into a new config and, when valid, swap it in now or once the
 * reconciler is idle (*pending). SIGHUP and the reload command both come here. 0, or -1 with
 * the reason (the first error, and how many more) in err; the outcome is kept for status.
 */
static int reload_config(struct daemon *d, bool *pending, char *err, size_t errlen)
{
	struct config_errors errs = { 0 };
	struct config *fresh = NULL;
	struct timespec ts;
	int rc = 0;

	*pending = false;
	/* READY=1 after STOPPING=1 would tell systemd the stop was called off. */
	if (d->stopping) {
		log_info("reload ignored: stopping");
		snprintf(err, errlen, "the daemon is stopping");
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
		   (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
	d->last_reload_ms = wall_ms();
	if (config_load_file(d->opts->config_path, &fresh, &errs) < 0) {
		for (size_t i = 0; i < errs.count; i++)
			log_errorx("reload: %s", errs.msgs[i]);
		log_errorx("reload: %s is invalid; keeping the running configuration",
			   d->opts->config_path);
		if (errs.count > 1 || errs.truncated)
			snprintf(err, errlen, "%s (and %zu more error%s)", errs.msgs[0],
				 errs.count - 1, errs.count - 1 == 1 && !errs.truncated ? "" : "s");
		else
			snprintf(err, errlen, "%s", errs.count == 1 ? errs.msgs[0]
							   : "cannot read the configuration");
		d->last_reload_ok = false;
		snprintf(d->last_reload_error, sizeof(d->last_reload_error), "%s", err);
		rc = -1;
		if (d->metrics_ready)
			metric_add(d->metrics.config_reload_failures_total, NULL, 1);
	} else {
		config_free(d->pending_config);
		d->pending_config = fresh;
		d->last_reload_ok = true;
		d->last_reload_error[0] = '\0';
		/* Otherwise on_idle swaps it in once the running passes and their calls are done
		 * (no pass starts meanwhile, and the resync walk stops early). */
		if (reconciler_idle(d->reconciler))
			swap_config(d);
		else
			reconciler_hold(d->reconciler);
		*pending = d->pending_config != NULL;
	}
	config_errors_free(&errs);
	sd_notify(0, "READY=1");
	return rc;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *ud)
{
	char err[512];
	bool pending;
	(void)s; (void)si;
	(void)reload_config(ud, &pending, err, sizeof(err));
	return 0;
}

static int reload_command(void *ud, bool *pending, char *err, size_t errlen)
{
	char why[512];
	if (reload_config(ud, pending, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "reload refused: %s", why);
		return -1;
	}
	return 0;
}

static json_t *last_reload(void *ud)
{
	struct daemon *d = ud;
	char at[40];
	time_t s;
	struct tm tm;

	if (d->last_reload_ms == 0)
		return NULL;
	s = (time_t)(d->last_reload_ms / 1000);
	gmtime_r(&s, &tm);
	snprintf(at, sizeof(at), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)(d->last_reload_ms % 1000));
	if (d->last_reload_ok)
		return json_pack("{s:s, s:s}", "result", "ok", "at", at);
	return json_pack("{s:s, s:s, s:s}", "result", "failed", "at", at,
			 "error", d->last_reload_error);
}

/* ---- reconciler hooks ---------------------------------------------------------------------- */

static void on_pass_done(void *ud, bool ok)
{
	struct daemon *d = ud;
	char line[512];

	reconciler_status_line(d->reconciler, line, sizeof(line));
	sd_notifyf(0, "STATUS=%s", line);
	/* A stop asked for by a signal exits 0, whatever the mode, once nothing is in flight. */
	if (d->stopping) {
		if (reconciler_idle(d->reconciler))
			finish_releasing(d, 0);
		return;
	}
	if (d->opts->dry_run) {
		reconciler_print_plan(d->reconciler, stdout);
		fflush(stdout);
		finish(d, ok ? 0 : 1);
		return;
	}
	if (d->opts->once) {
		finish_releasing(d, ok ? 0 : 1);
		return;
	}
}

static void on_idle(void *ud)
{
	struct daemon *d = ud;

	if (d->finishing)
		return;
	if (d->stopping)
		finish_releasing(d, 0);
	else if (d->pending_config != NULL)
		swap_config(d);
}

/* ---- Redis callbacks ----------------------------------------------------------------------- */

static void on_redis_state(void *ud, bool connected)
{
	struct daemon *d = ud;
	reconciler_set_redis_up(d->reconciler, connected);
	if (connected) {
		log_info("redis connected");
		leader_redis_up(d->leader);
		reconciler_wake(d->reconciler, "redis connected");
	} else {
		log_warnx("redis connection lost; reconnecting");
	}
}

/*
 * Which fleet does a changed key concern? Its desired_stages or publisher key, or the viewers
 * key of one of its stages (the last observations say whose stage it is; a stage not seen yet
 * concerns every fleet: SIZE_MAX). *matched is false when the key is no input at all: our own
 * writes must not wake us up.
 */
static size_t fleet_of_key(const struct daemon *d, const char *key, bool *matched)
{
	const struct config *c = d->config;

	*matched = false;
	for (size_t i = 0; i < c->n_fleets; i++) {
		const struct config_keys *k = &c->fleets[i].redis_keys;
		const char *arn = strstr(k->viewers, "{arn}");
		if (strcmp(key, k->desired_stages) == 0 || strcmp(key, k->publisher) == 0) {
			*matched = true;
			return i;
		}
		if (arn != NULL) {
			size_t head = (size_t)(arn - k->viewers), tail = strlen(arn + 5), len = strlen(key);
			if (len > head + tail && strncmp(key, k->viewers, head) == 0 &&
			    strcmp(key + len - tail, arn + 5) == 0) {
				char stage[256];
				size_t n = len - head - tail;
				*matched = true;
				if (n >= sizeof(stage))
					continue;
				memcpy(stage, key + head, n);
				stage[n] = '\0';
				size_t owner = reconciler_fleet_of_stage(d->reconciler, stage);
				if (owner != SIZE_MAX)
					return owner;
			}
		}
	}
	return SIZE_MAX;
}

static void on_redis_wake(void *ud, const char *reason)
{
	struct daemon *d = ud;
	bool matched;
	size_t fleet;

	if (strcmp(reason, "wake") == 0) {
		reconciler_wake(d->reconciler, "wake channel");
		return;
	}
	fleet = fleet_of_key(d, reason, &matched);
	if (matched)
		reconciler_wake_debounced(d->reconciler, fleet, reason);
}

/* A message on the wake channel: a fleet's name wakes that fleet; anything else, every fleet. */
static void on_redis_wake_message(void *ud, const char *message)
{
	struct daemon *d = ud;

	if (reconciler_wake_fleet(d->reconciler, message, "wake channel") < 0)
		reconciler_wake(d->reconciler, "wake channel");
}

/* ---- leadership ---------------------------------------------------------------------------- */

static void start_reconciler(struct daemon *d)
{
	if (d->started)
		return;
	d->started = true;
	if (reconciler_start(d->reconciler) < 0) {
		log_errorx("cannot start the reconciler");
		finish(d, 1);
	}
}

/* Every change of role: a journald event, the metrics, STATUS=, and a pass at once. */
static void on_leader_changed(void *ud, enum lease_change change)
{
	struct daemon *d = ud;
	char holder[LEASE_INSTANCE_MAX + 1], line[512];
	bool leading = leader_is_leader(d->leader);

	if (change != LEASE_UNCHANGED) {
		leader_holder(d->leader, holder, sizeof(holder));
		if (leading)
			log_event(LOG_NOTICE, MSGID_LEADERSHIP,
				  LOG_FIELDS("IVS_ROLE", "leader", "IVS_INSTANCE", leader_instance(d->leader)),
				  "%s is the leader now: mutating calls allowed",
				  leader_instance(d->leader));
		else
			log_event(change == LEASE_RELEASED ? LOG_NOTICE : LOG_WARNING, MSGID_LEADERSHIP,
				  LOG_FIELDS("IVS_ROLE", "standby", "IVS_INSTANCE",
					     leader_instance(d->leader), "IVS_LEADER",
					     holder[0] ? holder : NULL),
				  "%s is no longer the leader (%s): no new mutating calls; standing by",
				  leader_instance(d->leader), lease_change_name(change));
		if (d->metrics_ready) {
			metric_set(d->metrics.leader, NULL, leading ? 1 : 0);
			metric_add(d->metrics.leader_transitions, NULL, 1);
		}
		reconciler_status_line(d->reconciler, line, sizeof(line));
		sd_notifyf(0, "STATUS=%s", line);
		if (leading)
			reconciler_reread_admin_state(d->reconciler);
		if (leading && d->started)
			reconciler_wake(d->reconciler, "became leader");
	}
	/* --once acts only as the leader: its pass starts once the first acquire answered. */
	if (d->opts->once && !d->started) {
		if (!leading) {
			leader_holder(d->leader, holder, sizeof(holder));
			log_warnx("--once: the lease is held by %s; this pass observes and plans only",
				  holder[0] ? holder : "another daemon");
		}
		start_reconciler(d);
	}
}

static int on_once_deadline(sd_event_source *s, uint64_t usec, void *ud)
{
	struct daemon *d = ud;
	(void)s; (void)usec;
	if (!d->started)
		log_warnx("--once: no answer from Redis about the lease; this pass cannot act");
	start_reconciler(d);
	return 0;
}

/* The AWS client's gate: reads always, mutating operations only while leading. */
static bool may_send(void *ud, const char *operation)
{
	struct daemon *d = ud;
	return !ivs_operation_mutates(operation) || leader_may_mutate(d->leader);
}

/* ---- credentials --------------------------------------------------------------------------- */

static int get_credentials(void *ctx, struct aws_credentials *out)
{
	return creds_provider_get(ctx, out);
}

/* ---- bring-up ------------------------------------------------------------------------------ */

static int setup_signals(struct daemon *d)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	signal(SIGPIPE, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	if (sd_event_add_signal(d->event, NULL, SIGTERM, on_sigterm, d) < 0 ||
	    sd_event_add_signal(d->event, NULL, SIGINT, on_sigterm, d) < 0 ||
	    sd_event_add_signal(d->event, NULL, SIGHUP, on_sighup, d) < 0)
		return -EIO;
	return 0;
}

static int setup_aws(struct daemon *d)
{
	struct creds_options co = { .profile = d->config->aws.profile,
				    .credentials_file = d->config->aws.credentials_file,
				    .region = d->region };
	char err[512];
	int rc;

	if (creds_resolve_region(d->config->aws.region, d->config->aws.profile, d->region,
				 sizeof(d->region), err, sizeof(err)) < 0) {
		log_errorx("%s", err);
		return -EINVAL;
	}
	d->creds = creds_provider_new(&co, err, sizeof(err));
	if (d->creds == NULL) {
		log_errorx("%s", err);
		return -EINVAL;
	}
	/* The provider has logged where the credentials come from; say where they go. */
	log_info("AWS region %s, endpoint %s", d->region,
		 d->config->aws.endpoint[0] ? d->config->aws.endpoint : "the regional IVS endpoint");
	struct aws_client_options ao = {
		.region = d->region,
		.endpoint = d->config->aws.endpoint,
		.max_tps = d->config->aws.max_tps,
		.resync_share = d->config->aws.resync_share,
		.timeout_ms = (long)d->config->aws.timeout_ms,
		.connect_timeout_ms = (long)d->config->aws.connect_timeout_ms,
		.credentials = get_credentials,
		.credentials_ctx = d->creds,
		.may_send = may_send,
		.may_send_ctx = d,
	};
	rc = aws_client_new(d->event, &ao, &d->aws);
	if (rc < 0)
		log_errorx("cannot set up the AWS client for %s: %s",
			   d->config->aws.endpoint[0] ? d->config->aws.endpoint : "IVS", strerror(-rc));
	return rc;
}

/* The Redis client settings of cfg; *tls gets a new TLS context (or NULL) the caller frees. */
static int redis_options(struct daemon *d, const struct config *cfg, struct redisio_options *ro,
			 SSL_CTX **tls)
{
	char err[PATH_MAX + 256];

	if (redis_options_from_config(cfg, ro, tls, d->wake_channel, sizeof(d->wake_channel), err,
				      sizeof(err)) < 0) {
		log_errorx("redis.tls: %s", err);
		return -EINVAL;
	}
	return 0;
}

static int setup_redis(struct daemon *d)
{
	static const struct redisio_callbacks cbs = { .on_state = on_redis_state,
						      .on_wake = on_redis_wake,
						      .on_wake_message = on_redis_wake_message };
	struct redisio_options ro;
	SSL_CTX *tls = NULL;

	if (redis_options(d, d->config, &ro, &tls) < 0)
		return -EINVAL;
	d->redis = redisio_new(d->event, &ro, &cbs, d);
	SSL_CTX_free(tls);
	if (d->redis == NULL) {
		log_errorx("cannot set up the Redis client");
		return -ENOMEM;
	}
	return 0;
}

static int setup_control(struct daemon *d)
{
	struct control_options co = {
		.socket_path = d->config->control.socket,
		.admin_group = d->config->control.admin_group,
		.max_clients = d->config->control.max_clients,
		.idle_timeout_ms = d->config->control.idle_timeout_ms,
	};
	size_t n;
	const struct control_command *table = commands_table(&n);

	d->commands = (struct command_context){
		.reconciler = d->reconciler, .metrics = &d->metrics, .uptime_s = uptime_s,
		.refresh_metrics = refresh_metrics, .reload = reload_command,
		.last_reload = last_reload, .ud = d,
	};
	d->control = control_new(d->event, &co, table, n, &d->commands);
	return d->control != NULL ? 0 : -errno;
}

static int render_metrics_http(void *ud, struct strbuf *out)
{
	struct daemon *d = ud;

	refresh_metrics(d);
	return metrics_render(d->metrics.reg, out);
}

/* The optional scrape endpoint (metrics.listen); only for the service, like the admin socket. */
static int setup_metrics_http(struct daemon *d)
{
	struct metrics_http_options o = { .listen = d->config->metrics.listen };
	char err[256];
	int rc;

	if (d->config->metrics.listen[0] == '\0')
		return 0;
	rc = metrics_http_new(d->event, &o, render_metrics_http, d, &d->metrics_http, err,
			      sizeof(err));
	if (rc < 0) {
		log_errorx("metrics endpoint: %s", err);
		return rc;
	}
	log_info("metrics endpoint listening on http://%s/metrics", d->config->metrics.listen);
	return 0;
}

static int setup_metrics(struct daemon *d)
{
	const char **names = calloc(d->config->n_fleets + 1, sizeof(*names));
	int rc;
	if (names == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < d->config->n_fleets; i++)
		names[i] = d->config->fleets[i].name;
	rc = ivs_metrics_init(&d->metrics, IVS_AUTOSCALER_VERSION, names, d->config->n_fleets);
	free(names);
	d->metrics_ready = rc == 0;
	return rc;
}

int daemon_run(const struct daemon_options *opts, struct config *config)
{
	struct daemon d = { .opts = opts, .config = config, .exit_code = 1 };
	bool service = !opts->once && !opts->dry_run;
	int rc;

	d.started_s = mono_s();
	if (sd_event_default(&d.event) < 0 || setup_signals(&d) < 0) {
		log_errorx("cannot set up the event loop");
		goto out;
	}
	if (setup_metrics(&d) < 0 || setup_aws(&d) < 0 || setup_redis(&d) < 0)
		goto out;
	struct reconciler_hooks hooks = { on_pass_done, &d, on_idle };
	d.reconciler = reconciler_new(d.event, d.config, d.aws, d.redis, &d.metrics,
				      opts->dry_run, &hooks);
	if (d.reconciler == NULL) {
		log_errorx("out of memory");
		goto out;
	}
	/* A wake during the one pass (Redis connecting, say) must not start a second one that
	 * the exit would cancel half-way and report as a failed read. */
	if (!service)
		reconciler_one_pass(d.reconciler);
	reconciler_set_region(d.reconciler, d.region);
	/* --once and --dry-run leave the admin socket to the running service. */
	if (service && setup_control(&d) < 0) {
		log_errorx("cannot open the admin socket %s", d.config->control.socket);
		goto out;
	}
	if (service && setup_metrics_http(&d) < 0)
		goto out;
	if (service)
		sd_event_set_watchdog(d.event, true);
	if (d.config->ha.enabled && !opts->dry_run) {
		static const struct leader_hooks lh = { on_leader_changed, NULL };
		struct leader_hooks h = lh;
		h.ud = &d;
		d.leader = leader_new(d.event, d.redis, d.config, &h);
		if (d.leader == NULL) {
			log_errorx("cannot set up leader election");
			goto out;
		}
		reconciler_set_leader(d.reconciler, d.leader);
		log_info("ha: instance %s, lease %s%s, standby until the lease is acquired",
			 d.config->controller.instance, d.config->redis.key_prefix,
			 d.config->ha.lease_key);
	}
	if (d.metrics_ready)
		metric_set(d.metrics.leader, NULL, d.leader == NULL ? 1 : 0);
	if (!(opts->once && d.leader != NULL)) {
		d.started = true;
		if (reconciler_start(d.reconciler) < 0)
			goto out;
	} else if (sd_event_add_time_relative(d.event, &d.once_timer, CLOCK_MONOTONIC,
					      d.config->ha.lease_duration_ms * 1000u, 1000,
					      on_once_deadline, &d) < 0) {
		goto out;
	}
	log_event(LOG_NOTICE, MSGID_STARTED, NULL, "ivs-autoscaler %s started: %zu fleets%s%s",
		  IVS_AUTOSCALER_VERSION, d.config->n_fleets, opts->dry_run ? ", dry run" : "",
		  opts->once ? ", one pass" : "");
	sd_notify(0, "READY=1\nSTATUS=first reconcile pass running");
	rc = sd_event_loop(d.event);
	if (rc < 0) {
		log_errorx("event loop failed: %s", strerror(-rc));
		d.exit_code = 1;
	}
out:
	if (d.reconciler != NULL)
		reconciler_stop(d.reconciler);
	if (d.aws != NULL)
		aws_client_cancel_all(d.aws);
	redisio_free(d.redis);         /* pending Redis callbacks run while the reconciler lives */
	leader_free(d.leader);         /* after redisio_free: that answered its pending requests */
	control_free(d.control);
	metrics_http_free(d.metrics_http);
	reconciler_free(d.reconciler);
	aws_client_free(d.aws);
	creds_provider_free(d.creds);
	if (d.metrics_ready)
		ivs_metrics_free(&d.metrics);
	sd_event_source_disable_unref(d.stop_timer);
	sd_event_source_disable_unref(d.once_timer);
	sd_event_unref(d.event);
	config_free(d.pending_config);
	config_free(d.config);
	return d.exit_code;
}
