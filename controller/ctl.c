/*
 * ivs-autoscalerctl — query and steer ivs-autoscaler over its admin socket.
 *
 *   ivs-autoscalerctl [-s PATH] [-j] [-t SECONDS] COMMAND [ARGS...]
 *   ivs-autoscalerctl help [COMMAND]
 *
 * Sends one command line and prints the reply: text replies as they are (without the empty line
 * that ends them), JSON replies (-j) as their one line. Exit status: 0 ok, 1 the daemon
 * answered with an error, 2 usage error, 3 cannot talk to the daemon.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "strbuf.h"

#define DEFAULT_SOCKET    "/run/ivs-autoscaler/control.sock"
#define LINE_CAP          4096          /* the server's line cap, newline included */
#define REPLY_CAP         (2u << 20)    /* above the server's 1 MiB output cap */
#define DEFAULT_TIMEOUT_S 10

enum { EXIT_OK = 0, EXIT_DAEMON_ERROR = 1, EXIT_USAGE = 2, EXIT_CONNECT = 3 };

static const char *progname = "ivs-autoscalerctl";

/*
 * What `help` prints. The daemon's command table (controller/commands.c) is the authority on
 * what it accepts; tests/integration/test_cli.py checks that this list names exactly those
 * commands, so the two cannot drift apart. Kept here so that help works without a daemon.
 */
static const struct ctl_help {
	const char *name;
	const char *args;
	int admin;
	const char *summary;
	const char *details;     /* what the text reply holds; may be NULL */
} commands[] = {
	{ "status", "", 0, "daemon, Redis and last pass, then one row per fleet",
	  "Lines: version, pid, uptime and leader/standby; with ha.enabled, this instance, the\n"
	  "leader's instance, the lease deadline and the role changes; redis connected or DOWN; the\n"
	  "last pass (result, time, duration, actions done/failed, reads failed); passes so far;\n"
	  "one line per foreign-managed stage. Then the fleets table (see `help fleets`)." },
	{ "fleets", "", 0, "one row per fleet: stage and replication counts, flags, decision",
	  "Columns: FLEET; STAGES(SRV/DES) stages serving viewers (origin included, draining\n"
	  "excluded) / stages the sizing policy wants; DRAINING stages being drained; HOSTS hosts\n"
	  "publishing in the origin; REPLICAS(ACT/EXP) replications ACTIVE now / replications\n"
	  "wanted (hosts x replica stages); FLAGS: paused, capped (demand above the replication\n"
	  "cap), fail-static (an input could not be read: nothing is removed), origin-missing (the\n"
	  "origin stage is not in the stage list), override-invalid (the desired-stages key does\n"
	  "not parse), or -; DECISION the sizing policy's reason." },
	{ "stages", "[FLEET]", 0, "every stage of the last pass with its viewers and replications",
	  "Columns: FLEET, ROLE (origin|replica|foreign-managed: another deployment's, never\n"
	  "touched), ARN, VIEWERS (? when unknown), DRAINING (yes|no), REPLICATION\n"
	  "(participant=ACTIVE|STOPPED|none|unknown per host); last line: the count." },
	{ "replicas", "[FLEET]", 0, "the replications IVS reports for each host",
	  "Columns: FLEET, PARTICIPANT, DESTINATION stage ARN, STATE (ACTIVE|STOPPED); last line:\n"
	  "the count." },
	{ "plan", "[FLEET]", 0, "what the next pass would do, computed on the last observation",
	  "Per fleet: stages desired and serving, flags (as in `help fleets`), then the actions:\n"
	  "ACTION (create|start|stop|mark-draining|unmark-draining|delete), STAGE, PARTICIPANT,\n"
	  "REASON; or \"nothing to do\"." },
	{ "metrics", "", 0, "every metric in the Prometheus text format 0.0.4", NULL },
	{ "publisher", "[FLEET]", 0, "the host the application recorded, and whether IVS sees it",
	  "From the publisher key in Redis: participant_id, stage_arn, user_id, joined_at; then\n"
	  "whether that participant is publishing in the origin now." },
	{ "replication status", "STAGE_ARN", 0, "replications into a stage (or all of a fleet's)",
	  "Columns: SOURCE, DESTINATION, PARTICIPANT, STATE, STARTED_BY (autoscaler|operator).\n"
	  "Given a fleet's origin stage, every replication of that fleet." },
	{ "reconcile", "[FLEET]", 1, "start a pass now (over every fleet; FLEET is only checked)",
	  NULL },
	{ "pause", "[FLEET]", 1, "keep observing and planning, take no action until resume",
	  "Kept in Redis (autoscaler:paused): a restart keeps the fleet paused." },
	{ "resume", "[FLEET]", 1, "undo pause and start a pass", NULL },
	{ "drain", "STAGE_ARN", 1, "drain one owned replica stage now; it is deleted once empty",
	  "The stage leaves the open-stages set and is deleted when its viewers reach 0 or after\n"
	  "drain_timeout. It is never taken back into service; never the origin." },
	{ "log-level", "debug|info|notice|warning", 1, "set the log level", NULL },
	{ "reload", "", 1,
	  "read the configuration file again, as SIGHUP does, and say whether it was taken",
	  "Answers ok, or `error: reload refused: FILE:LINE:COL: ...` (exit 1) and the running\n"
	  "configuration stays; `status` shows the last reload." },
	{ "replication start", "SRC DST PARTICIPANT", 1, "start a replication by hand",
	  "Recorded only once IVS accepted it (kept in Redis, autoscaler:manual_replications);\n"
	  "the daemon never stops a replication started this way." },
	{ "replication stop", "SRC DST PARTICIPANT", 1, "stop a replication",
	  "Refused for a stage the fleet feeds unless the fleet is paused or the stage drains." },
	{ "help", "[COMMAND]", 0, "this list, or one command in detail (answered locally)", NULL },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [-hjV] [-s path] [-t seconds] command [argument ...]\n"
		"  -s, --socket PATH   admin socket (default $IVS_AUTOSCALER_SOCKET or "
		DEFAULT_SOCKET ")\n"
		"  -j, --json          print the reply as one JSON object\n"
		"  -t, --timeout SEC   give up waiting for the reply after SEC seconds (default %d)\n"
		"  -h, --help          this help\n"
		"  -V, --version       print the version\n"
		"Run `%s help` for the commands, `%s help COMMAND` for one of them.\n",
		progname, DEFAULT_TIMEOUT_S, progname, progname);
}

static void help_list(void)
{
	usage(stdout);
	for (int admin = 0; admin <= 1; admin++) {
		printf("\n%s\n", admin ? "Commands that change something (root, the daemon's user or "
			"control.admin_group):" : "Commands that only read:");
		for (size_t i = 0; i < N_COMMANDS; i++) {
			char synopsis[64];

			if (commands[i].admin != admin)
				continue;
			snprintf(synopsis, sizeof(synopsis), "%s%s%s", commands[i].name,
				 commands[i].args[0] ? " " : "", commands[i].args);
			printf("  %-38s %s\n", synopsis, commands[i].summary);
		}
	}
}

/* `help WORDS...`: 0, or EXIT_USAGE for a command that does not exist. */
static int help_command(int argc, char **argv)
{
	char name[128] = "";
	size_t used = 0;

	for (int i = 0; i < argc && used < sizeof(name); i++)
		used += (size_t)snprintf(name + used, sizeof(name) - used, "%s%s", i ? " " : "",
					 argv[i]);
	for (size_t i = 0; i < N_COMMANDS; i++) {
		const struct ctl_help *h = &commands[i];

		if (strcmp(h->name, name) != 0)
			continue;
		printf("usage: %s %s%s%s\n%s%s.\n", progname, h->name, h->args[0] ? " " : "",
		       h->args, h->admin ? "(admin) " : "", h->summary);
		if (h->details != NULL)
			printf("%s\n", h->details);
		printf("With -j: {\"ok\":true,\"data\":...}, keys in snake_case; see "
		       "ivs-autoscalerctl(8).\n");
		return EXIT_OK;
	}
	fprintf(stderr, "%s: no command \"%s\"; `%s help` lists them\n", progname, name,
		progname);
	return EXIT_USAGE;
}

/* The protocol has no quoting: an argument must be one non-empty word of printable text. */
static int build_line(int argc, char **argv, int json, struct strbuf *line)
{
	int i;

	if (json)
		strbuf_puts(line, "json ");
	for (i = 0; i < argc; i++) {
		const char *a = argv[i];
		size_t j;

		if (a[0] == '\0') {
			fprintf(stderr, "%s: empty argument\n", progname);
			return -EINVAL;
		}
		for (j = 0; a[j] != '\0'; j++) {
			unsigned char ch = (unsigned char)a[j];

			if (ch <= ' ' || ch == 0x7f) {
				fprintf(stderr, "%s: argument \"%s\" contains a blank or control "
					"character\n", progname, a);
				return -EINVAL;
			}
		}
		if (i > 0)
			strbuf_putc(line, ' ');
		strbuf_puts(line, a);
	}
	strbuf_putc(line, '\n');
	if (strbuf_overflowed(line)) {
		fprintf(stderr, "%s: command longer than %d bytes\n", progname, LINE_CAP - 1);
		return -E2BIG;
	}
	return 0;
}

static const char *connect_hint(int err)
{
	switch (err) {
	case ENOENT:
		return "is ivs-autoscaler running?";
	case EACCES:
	case EPERM:
		return "permission denied: are you in the admin group?";
	case ECONNREFUSED:
		return "ivs-autoscaler is not running (stale socket)";
	default:
		return strerror(err);
	}
}

static int connect_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "%s: cannot connect to %s: socket path too long\n", progname, path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = errno;
		fprintf(stderr, "%s: socket: %s\n", progname, strerror(err));
		return -err;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = errno;
		fprintf(stderr, "%s: cannot connect to %s: %s\n", progname, path,
			connect_hint(err));
		close(fd);
		return -err;
	}
	return fd;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1 when reply holds a complete reply: one line for JSON, up to the empty line for text. */
static int reply_complete(const struct strbuf *reply, int json)
{
	if (json)
		return memchr(reply->data, '\n', reply->len) != NULL;
	if (reply->len == 1 && reply->data[0] == '\n')
		return 1;
	return reply->len >= 2 && memmem(reply->data, reply->len, "\n\n", 2) != NULL;
}

/* Send the line and read one reply before the deadline. 0 or negative errno (message printed). */
static int exchange(int fd, const struct strbuf *line, int json, int timeout_s,
		    const char *path, struct strbuf *reply)
{
	long long deadline = now_ms() + (long long)timeout_s * 1000;
	size_t sent = 0;
	char buf[16384];

	while (sent < line->len || reply->len == 0 || !reply_complete(reply, json)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long long left = deadline - now_ms();
		ssize_t n;
		int r;

		if (sent < line->len)
			p.events |= POLLOUT;
		if (left <= 0) {
			fprintf(stderr, "%s: no reply from %s within %d s\n", progname, path,
				timeout_s);
			return -ETIMEDOUT;
		}
		r = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			continue;
		if ((p.revents & POLLOUT) && sent < line->len) {
			n = send(fd, line->data + sent, line->len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0 && errno != EAGAIN && errno != EINTR && errno != EPIPE) {
				fprintf(stderr, "%s: write to %s: %s\n", progname, path,
					strerror(errno));
				return -errno;
			}
			/* On EPIPE the daemon may already have said why: read it below. */
			if (n < 0 && errno == EPIPE)
				sent = line->len;
			else if (n > 0)
				sent += (size_t)n;
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0) {
				if (reply->len > 0 && !json && reply->data[reply->len - 1] == '\n')
					return 0;   /* closed right after a reply; accept it */
				fprintf(stderr, "%s: %s closed the connection before the reply "
					"was complete\n", progname, path);
				return -ECONNRESET;
			}
			if (strbuf_append(reply, buf, (size_t)n) < 0) {
				fprintf(stderr, "%s: reply too large\n", progname);
				return -ENOBUFS;
			}
		}
	}
	return 0;
}

/* Print the reply; returns the exit status. */
static int print_reply(const struct strbuf *reply, int json)
{
	const char *text = strbuf_str(reply);
	size_t len = reply->len;

	if (json) {
		const char *nl = memchr(text, '\n', len);
		size_t n = nl != NULL ? (size_t)(nl - text) : len;
		json_error_t jerr;
		json_t *obj = json_loadb(text, n, 0, &jerr);
		json_t *ok = json_object_get(obj, "ok");
		int rc;

		if (obj != NULL) {
			fwrite(text, 1, n, stdout);
			fputc('\n', stdout);
		}
		if (obj == NULL && strncmp(text, "error: ", 7) == 0) {
			/* Refused before the daemon read our line (e.g. too many clients). */
			fwrite(text, 1, n, stderr);
			fputc('\n', stderr);
			rc = EXIT_DAEMON_ERROR;
		} else if (obj == NULL || !json_is_boolean(ok)) {
			fprintf(stderr, "%s: the daemon's reply is not a valid JSON reply\n",
				progname);
			rc = EXIT_CONNECT;
		} else {
			rc = json_is_true(ok) ? EXIT_OK : EXIT_DAEMON_ERROR;
		}
		json_decref(obj);
		return rc;
	}
	/* Text: everything up to the empty line that ends the reply. */
	const char *end = len == 1 ? text : memmem(text, len, "\n\n", 2);
	size_t n = end != NULL ? (size_t)(end - text) + (len == 1 ? 0 : 1) : len;

	if (strncmp(text, "error: ", 7) == 0) {
		fwrite(text, 1, n, stderr);
		return EXIT_DAEMON_ERROR;
	}
	fwrite(text, 1, n, stdout);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = getenv("IVS_AUTOSCALER_SOCKET");
	struct strbuf line, reply;
	int c, json = 0, timeout_s = DEFAULT_TIMEOUT_S, fd, rc;
	char *end;

	if (path == NULL || path[0] == '\0')
		path = DEFAULT_SOCKET;
	while ((c = getopt_long(argc, argv, "+hjs:t:V", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'j':
			json = 1;
			break;
		case 's':
			path = optarg;
			break;
		case 't':
			errno = 0;
			timeout_s = (int)strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || timeout_s <= 0 || timeout_s > 3600) {
				fprintf(stderr, "%s: --timeout wants 1..3600 seconds\n", progname);
				return EXIT_USAGE;
			}
			break;
		case 'V':
			printf("%s %s\n", progname, IVS_AUTOSCALER_VERSION);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[optind], "help") == 0) {
		if (optind + 1 == argc) {
			help_list();
			return EXIT_OK;
		}
		return help_command(argc - optind - 1, argv + optind + 1);
	}
	strbuf_init(&line, LINE_CAP);
	strbuf_init(&reply, REPLY_CAP);
	if (build_line(argc - optind, argv + optind, json, &line) < 0) {
		rc = EXIT_USAGE;
		goto out;
	}
	fd = connect_socket(path);
	if (fd < 0) {
		rc = EXIT_CONNECT;
		goto out;
	}
	rc = exchange(fd, &line, json, timeout_s, path, &reply) < 0 ? EXIT_CONNECT
								     : print_reply(&reply, json);
	close(fd);
out:
	strbuf_free(&line);
	strbuf_free(&reply);
	return rc;
}
