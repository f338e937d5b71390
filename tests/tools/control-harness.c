/*
 * control-harness — runs the admin socket server in an sd-event loop with a few fake commands,
 * so that tests can drive the real socket code (and the real ivs-autoscalerctl) without the
 * daemon.
 *
 *   control-harness -s PATH [-m MODE] [-g GROUP] [-c MAX_CLIENTS] [-i IDLE_MS] [-n NOFILE] [-v]
 *
 * -n lowers RLIMIT_NOFILE so that tests can make accept() fail with EMFILE.
 * -a accepts a socket passed by systemd (LISTEN_FDS) instead of binding PATH.
 *
 * Prints "ready" on stdout once the socket listens; exits 0 on SIGTERM/SIGINT, 1 when the
 * server cannot start (e.g. another instance answers on PATH).
 *
 * Fake commands: status, fleets, echo [ARGS...], metrics, big BYTES, blank-lines, fail,
 * replication status ARN, and the mutating pause [FLEET], reconcile [FLEET],
 * replication start SRC DST PARTICIPANT, replication stop SRC DST PARTICIPANT.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <systemd/sd-event.h>

#include "control.h"
#include "log.h"
#include "metrics.h"
#include "strbuf.h"

struct harness {
	struct control *control;
	struct ivs_metrics metrics;
	unsigned commands_run;
};

static int cmd_status(void *ud, const struct control_request *req, json_t **out, char *err,
		      size_t errlen)
{
	struct harness *h = ud;

	(void)err;
	(void)errlen;
	*out = json_pack("{s:s, s:i, s:i, s:b}", "version", "harness",
			 "clients", (int)control_client_count(h->control),
			 "uid", (int)req->uid, "admin", req->admin);
	return *out != NULL ? 0 : -1;
}

static int cmd_fleets(void *ud, const struct control_request *req, json_t **out, char *err,
		      size_t errlen)
{
	(void)ud;
	(void)req;
	(void)err;
	(void)errlen;
	*out = json_pack("[s, s]", "main", "eu");
	return *out != NULL ? 0 : -1;
}

static int cmd_echo(void *ud, const struct control_request *req, json_t **out, char *err,
		    size_t errlen)
{
	json_t *a = json_array();
	int i;

	(void)ud;
	if (a == NULL)
		return -1;
	for (i = 0; i < req->argc; i++) {
		if (json_array_append_new(a, json_string(req->argv[i])) < 0) {
			json_decref(a);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	*out = a;
	return 0;
}

static int cmd_metrics(void *ud, const struct control_request *req, json_t **out, char *err,
		       size_t errlen)
{
	struct harness *h = ud;
	struct strbuf sb;
	int r;

	(void)req;
	strbuf_init(&sb, CONTROL_OUTPUT_CAP / 2);
	r = metrics_render(h->metrics.reg, &sb);
	if (r == 0)
		*out = json_stringn(strbuf_str(&sb), sb.len);
	strbuf_free(&sb);
	if (r < 0 || *out == NULL) {
		snprintf(err, errlen, "cannot render metrics");
		return -1;
	}
	return 0;
}

static int cmd_big(void *ud, const struct control_request *req, json_t **out, char *err,
		   size_t errlen)
{
	char *end, *s;
	unsigned long n, i;

	(void)ud;
	errno = 0;
	n = strtoul(req->argv[0], &end, 10);
	if (errno != 0 || *end != '\0' || n == 0 || n > 4ul << 20) {
		snprintf(err, errlen, "big: BYTES must be 1..4194304");
		return -1;
	}
	s = malloc(n);
	if (s == NULL)
		return -1;
	for (i = 0; i < n; i++)
		s[i] = (i % 100 == 99) ? '\n' : (char)('a' + i % 26);
	*out = json_stringn(s, n);
	free(s);
	return *out != NULL ? 0 : -1;
}

static int cmd_blank_lines(void *ud, const struct control_request *req, json_t **out, char *err,
			   size_t errlen)
{
	(void)ud;
	(void)req;
	(void)err;
	(void)errlen;
	*out = json_string("first\n\n\nsecond\n\n");
	return *out != NULL ? 0 : -1;
}

static int cmd_fail(void *ud, const struct control_request *req, json_t **out, char *err,
		    size_t errlen)
{
	(void)ud;
	(void)req;
	(void)out;
	snprintf(err, errlen, "the fake command failed");
	return -1;
}

/* pause, reconcile, replication start/stop/status: echo what would be done. */
static int cmd_action(void *ud, const struct control_request *req, json_t **out, char *err,
		      size_t errlen)
{
	struct harness *h = ud;
	json_t *args;

	h->commands_run++;
	if (cmd_echo(ud, req, &args, err, errlen) < 0)
		return -1;
	*out = json_pack("{s:o, s:i}", "args", args, "run", (int)h->commands_run);
	return *out != NULL ? 0 : -1;
}

static void render_status(const json_t *data, struct strbuf *out)
{
	strbuf_printf(out, "version  %s\nclients  %lld\n",
		      json_string_value(json_object_get(data, "version")),
		      json_integer_value(json_object_get(data, "clients")));
}

static const struct control_command commands[] = {
	{ "status", "", 0, 0, 0, cmd_status, render_status },
	{ "fleets", "", 0, 0, 0, cmd_fleets, NULL },
	{ "echo", "[ARGS...]", 0, 0, -1, cmd_echo, NULL },
	{ "metrics", "", 0, 0, 0, cmd_metrics, NULL },
	{ "big", "BYTES", 0, 1, 1, cmd_big, NULL },
	{ "blank-lines", "", 0, 0, 0, cmd_blank_lines, NULL },
	{ "fail", "", 0, 0, 0, cmd_fail, NULL },
	{ "pause", "[FLEET]", 1, 0, 1, cmd_action, NULL },
	{ "reconcile", "[FLEET]", 1, 0, 1, cmd_action, NULL },
	{ "replication status", "STAGE_ARN", 0, 1, 1, cmd_action, NULL },
	{ "replication start", "SRC DST PARTICIPANT", 1, 3, 3, cmd_action, NULL },
	{ "replication stop", "SRC DST PARTICIPANT", 1, 3, 3, cmd_action, NULL },
};

static void usage(void)
{
	fprintf(stderr, "usage: control-harness -s PATH [-m MODE] [-g GROUP] [-c MAX_CLIENTS] "
		"[-i IDLE_MS] [-n NOFILE] [-a] [-v]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *const fleets[] = { "main", "eu \"west\"" };
	struct control_options opts = { .no_activation = 1 };
	struct harness h = { 0 };
	sd_event *event = NULL;
	sigset_t mask;
	int c, r, verbose = 0, rc = 1;
	struct rlimit nofile = { 0, 0 };

	while ((c = getopt(argc, argv, "ac:g:i:m:n:s:v")) != -1) {
		switch (c) {
		case 'a': opts.no_activation = 0; break;
		case 'c': opts.max_clients = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'g': opts.admin_group = optarg; break;
		case 'i': opts.idle_timeout_ms = strtoull(optarg, NULL, 10); break;
		case 'm': opts.socket_mode = (mode_t)strtoul(optarg, NULL, 8); break;
		case 'n': nofile.rlim_cur = nofile.rlim_max = strtoul(optarg, NULL, 10); break;
		case 's': opts.socket_path = optarg; break;
		case 'v': verbose = 1; break;
		default: usage();
		}
	}
	if (opts.socket_path == NULL || optind != argc)
		usage();
	log_init("control-harness", verbose);
	if (nofile.rlim_cur > 0 && setrlimit(RLIMIT_NOFILE, &nofile) < 0) {
		perror("control-harness: setrlimit");
		return 1;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return 1;
	r = sd_event_default(&event);
	if (r >= 0)
		r = sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
	if (r >= 0)
		r = sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
	if (r < 0) {
		fprintf(stderr, "control-harness: event loop: %s\n", strerror(-r));
		goto out;
	}
	r = ivs_metrics_init(&h.metrics, "0.0.0-harness", fleets, 2);
	if (r < 0) {
		fprintf(stderr, "control-harness: metrics: %s\n", strerror(-r));
		goto out;
	}
	metric_observe(h.metrics.reconcile_duration, NULL, 0.42);
	metric_add(h.metrics.reconcile_total, (const char *[]){ "success" }, 1);
	h.control = control_new(event, &opts, commands, sizeof(commands) / sizeof(commands[0]),
				&h);
	if (h.control == NULL) {
		fprintf(stderr, "control-harness: cannot start: %s\n", strerror(errno));
		goto out;
	}
	printf("ready\n");
	fflush(stdout);
	r = sd_event_loop(event);
	rc = r < 0 ? 1 : 0;
out:
	control_free(h.control);
	ivs_metrics_free(&h.metrics);
	sd_event_unref(event);
	return rc;
}
