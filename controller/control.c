/*
 * control.c — see control.h: the listener and the client connections (buffers, back-pressure,
 * credentials). The pure protocol (framing, tokenizer, matcher, authorisation) is protocol.c.
 *
 * Shape (after OpenBSD bgpd/relayd control.c): a listener accepts non-blocking connections and
 * reads the peer's credentials once; each client has a fixed input buffer of line_cap bytes and
 * an output buffer capped at output_cap. One line is answered at a time: while a reply is still
 * being written the client's input is not read (back-pressure), so a client that never reads
 * costs at most one reply of memory and never blocks the loop or the other clients.
 */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "strbuf.h"

#define DEFAULT_MAX_CLIENTS   64
#define DEFAULT_IDLE_MS       60000
#define LISTEN_BACKLOG        64
#define ACCEPT_PAUSE_USEC     1000000   /* out of descriptors: retry accepting after 1 s */
#define ACCEPTS_PER_WAKEUP    32        /* let other sources run during a connection storm */
#define ERRLEN                512

struct client {
	struct client *prev, *next;
	struct control *ctl;
	int fd;
	sd_event_source *io;
	sd_event_source *idle;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int admin;
	int closing;        /* close once the pending output is written */
	uint64_t active_usec;  /* CLOCK_MONOTONIC of the last byte read or written */
	char *in;           /* line_cap bytes */
	size_t inlen;
	struct strbuf out;
};

struct control {
	sd_event *event;
	const struct control_command *commands;
	size_t ncommands;
	void *ud;

	int listen_fd;
	int activated;       /* the socket came from systemd: never unlink it */
	int created;         /* we bound socket_path and must unlink it at the end */
	char *path;
	dev_t dev;
	ino_t ino;
	sd_event_source *listen_src;
	sd_event_source *accept_timer;
	int accepting;
	int accept_paused;

	struct client *clients;
	unsigned nclients;
	unsigned max_clients;
	uint64_t idle_usec;
	size_t line_cap;
	size_t output_cap;

	uid_t euid;
	gid_t admin_gid;
	int have_admin_gid;
};

/* ---- clients ---------------------------------------------------------------------------- */

static void accept_resume(struct control *ctl);

static void client_free(struct client *c)
{
	struct control *ctl = c->ctl;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		ctl->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	ctl->nclients--;
	sd_event_source_disable_unref(c->io);
	sd_event_source_disable_unref(c->idle);
	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	strbuf_free(&c->out);
	free(c);
	/* A descriptor was freed: if accepting was paused for lack of them, try again now. */
	if (ctl->accept_paused)
		accept_resume(ctl);
}

static uint64_t now_usec(const struct control *ctl)
{
	uint64_t now = 0;

	(void)sd_event_now(ctl->event, CLOCK_MONOTONIC, &now);
	return now;
}

static void client_touch(struct client *c)
{
	int r = sd_event_source_set_time_relative(c->idle, c->ctl->idle_usec);

	c->active_usec = now_usec(c->ctl);
	if (r < 0)
		log_warnx("control: cannot re-arm idle timer: %s", strerror(-r));
}

/* Write what we can. 0 (maybe with output left), or negative errno: the client is gone. */
static int client_flush(struct client *c)
{
	while (c->out.len > 0) {
		ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		strbuf_consume(&c->out, (size_t)n);
		client_touch(c);
	}
	strbuf_reset(&c->out);
	return 0;
}

static void reply_error(struct client *c, int json, const char *message)
{
	strbuf_reset(&c->out);
	if (json)
		control_frame_json_error(&c->out, message);
	else
		control_frame_text_error(&c->out, message);
}

/*
 * The audit record of a mutating command: who, what, and how it ended. ADMIN_RESULT is
 * "denied" (not authorised, not run), "failed" (run, refused with ADMIN_ERROR) or
 * "succeeded". Logged once per command, after it ran.
 */
static void log_admin_command(const struct client *c, const char *line, const char *result,
			      const char *error)
{
	char uid[24], pid[24];
	int ok = strcmp(result, "succeeded") == 0;

	snprintf(uid, sizeof(uid), "%lu", (unsigned long)c->uid);
	snprintf(pid, sizeof(pid), "%ld", (long)c->pid);
	log_event(ok ? LOG_NOTICE : LOG_WARNING, MSGID_ADMIN_COMMAND,
		  LOG_FIELDS("ADMIN_UID", uid, "ADMIN_PID", pid, "ADMIN_COMMAND", line,
			     "ADMIN_RESULT", result, "ADMIN_ERROR", error),
		  "admin command \"%s\" from uid %s pid %s %s%s%s", line, uid, pid, result,
		  error != NULL ? ": " : "", error != NULL ? error : "");
}

static void reply_unknown(struct client *c, int json, const char *word)
{
	struct strbuf msg;

	strbuf_init(&msg, 16384);
	strbuf_printf(&msg, "unknown command \"%.64s\"\n", word);
	control_usage(c->ctl->commands, c->ctl->ncommands, &msg);
	reply_error(c, json, strbuf_overflowed(&msg) ? "unknown command" : strbuf_str(&msg));
	strbuf_free(&msg);
}

/* Run and frame the reply. 0, or -1 with the error that was sent in err_out. */
static int run_command(struct client *c, const struct control_command *cmd, int json,
		       int argc, char **argv, char *err_out, size_t err_len)
{
	struct control_stream stream = { 0 };
	struct control_request req = {
		.argc = argc, .argv = argv, .uid = c->uid, .gid = c->gid, .pid = c->pid,
		.admin = c->admin, .json = json, .stream = &stream,
	};
	char err[ERRLEN] = "";
	json_t *data = NULL;
	struct strbuf text;
	int r;

	if (cmd->handler(c->ctl->ud, &req, &data, err, sizeof(err)) < 0) {
		snprintf(err_out, err_len, "%s", err[0] != '\0' ? err : "command failed");
		reply_error(c, json, err_out);
		json_decref(data);
		return -1;
	}
	if (json) {
		r = control_frame_json_stream(&c->out, data, &stream);
	} else if ((r = control_stream_into(data, &stream)) == 0) {
		strbuf_init(&text, c->ctl->output_cap);
		if (cmd->render != NULL)
			cmd->render(data, &text);
		else
			control_render_default(data, &text);
		r = strbuf_overflowed(&text) ? -ENOBUFS
					     : control_frame_text(&c->out, text.data != NULL ?
								  text.data : "", text.len);
		strbuf_free(&text);
	}
	json_decref(data);
	if (r < 0) {
		snprintf(err_out, err_len, r == -ENOMEM ? "out of memory" : "reply too large");
		reply_error(c, json, err_out);
		return -1;
	}
	return 0;
}

/* One complete line: validate, tokenize, authorise, dispatch; the reply lands in c->out. */
static void client_line(struct client *c, const char *raw, size_t len)
{
	const struct control_command *cmd;
	char line[CONTROL_LINE_CAP + 1];
	char *argv[CONTROL_MAX_ARGS + 1];
	int argc, words, nargs, json;

	/* Decided before validation so that a bad line in JSON mode still gets a JSON error. */
	json = len >= 4 && memcmp(raw, "json", 4) == 0 &&
	       (len == 4 || raw[4] == ' ' || raw[4] == '\t');
	if (control_check_line(raw, len) < 0) {
		reply_error(c, json, "invalid command line: control characters or invalid UTF-8");
		return;
	}
	memcpy(line, raw, len);
	line[len] = '\0';
	argc = control_tokenize(line, argv, CONTROL_MAX_ARGS + 1);
	if (argc < 0) {
		reply_error(c, json, "too many words in the command line");
		return;
	}
	if (argc == 0)
		return;     /* blank line: nothing to answer */
	if (json) {
		if (argc == 1) {
			reply_error(c, json, "missing command after \"json\"");
			return;
		}
		argc--;
		memmove(argv, argv + 1, (size_t)argc * sizeof(argv[0]));
	}
	cmd = control_match(c->ctl->commands, c->ctl->ncommands, argc, argv, &words);
	if (cmd == NULL) {
		reply_unknown(c, json, argv[0]);
		return;
	}
	nargs = argc - words;
	if (nargs < cmd->min_args || (cmd->max_args >= 0 && nargs > cmd->max_args)) {
		char msg[256];

		snprintf(msg, sizeof(msg), "usage: %s%s%s", cmd->name,
			 cmd->usage[0] != '\0' ? " " : "", cmd->usage);
		reply_error(c, json, msg);
		return;
	}
	if (cmd->mutating) {
		/* Log the validated original text, not the tokenized copy. */
		char shown[CONTROL_LINE_CAP + 1], err[ERRLEN];

		memcpy(shown, raw, len);
		shown[len] = '\0';
		if (!c->admin) {
			log_admin_command(c, shown, "denied", "permission denied");
			reply_error(c, json, "permission denied");
			return;
		}
		if (run_command(c, cmd, json, nargs, argv + words, err, sizeof(err)) < 0)
			log_admin_command(c, shown, "failed", err);
		else
			log_admin_command(c, shown, "succeeded", NULL);
		return;
	}
	{
		char err[ERRLEN];
		run_command(c, cmd, json, nargs, argv + words, err, sizeof(err));
	}
}

/*
 * Answer complete lines one at a time, writing each reply before looking at the next line, and
 * choose what to wait for: writability while output is pending, else more input.
 */
static void client_pump(struct client *c)
{
	size_t line_len, consumed;
	int r;

	for (;;) {
		if (c->out.len > 0) {
			r = client_flush(c);
			if (r < 0) {
				log_debug("control: client went away mid-reply: %s", strerror(-r));
				client_free(c);
				return;
			}
			if (c->out.len > 0)
				break;
		}
		if (c->closing) {
			client_free(c);
			return;
		}
		r = control_next_line(c->in, c->inlen, c->ctl->line_cap, &line_len, &consumed);
		if (r == 0)
			break;
		if (r < 0) {
			/* The line's start is known, so a "json ..." line gets a JSON error. */
			reply_error(c, c->inlen > 4 && memcmp(c->in, "json", 4) == 0 &&
					       (c->in[4] == ' ' || c->in[4] == '\t'),
				    "line too long");
			c->closing = 1;
			continue;
		}
		client_line(c, c->in, line_len);
		memmove(c->in, c->in + consumed, c->inlen - consumed);
		c->inlen -= consumed;
	}
	r = sd_event_source_set_io_events(c->io, c->out.len > 0 ? EPOLLOUT : EPOLLIN);
	if (r < 0) {
		log_warnx("control: cannot update client events: %s", strerror(-r));
		client_free(c);
	}
}

static void client_read(struct client *c)
{
	ssize_t n;

	n = read(c->fd, c->in + c->inlen, c->ctl->line_cap - c->inlen);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		log_debug("control: read from client failed: %s", strerror(errno));
		client_free(c);
		return;
	}
	if (n == 0) {
		client_free(c);
		return;
	}
	c->inlen += (size_t)n;
	client_touch(c);
	client_pump(c);
}

static int on_client_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct client *c = userdata;

	(void)s;
	(void)fd;
	if (c->out.len > 0)
		client_pump(c);     /* writable, or an error that the write will report */
	else if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
		client_read(c);
	return 0;
}

static int on_client_idle(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct client *c = userdata;

	(void)s;
	(void)usec;
	log_debug("control: closing idle client (uid %lu pid %ld)", (unsigned long)c->uid,
		  (long)c->pid);
	client_free(c);
	return 0;
}

/* Supplementary groups of the peer; only needed when an admin group is configured. */
static int peer_in_admin_group(int fd, gid_t admin_gid)
{
	gid_t small[64], *groups = small;
	socklen_t len = sizeof(small);
	int found = 0;
	size_t i;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
		if (errno != ERANGE)
			return 0;
		groups = malloc(len);
		if (groups == NULL)
			return 0;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
			len = 0;
	}
	for (i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == admin_gid)
			found = 1;
	if (groups != small)
		free(groups);
	return found;
}

static int client_new(struct control *ctl, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct client *c;
	int r;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->in = malloc(ctl->line_cap);
	if (c->in == NULL) {
		free(c);
		return -ENOMEM;
	}
	c->ctl = ctl;
	c->fd = fd;
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->pid = cred.pid;
	c->active_usec = now_usec(ctl);
	c->admin = control_peer_is_admin(cred.uid, cred.gid, NULL, 0, ctl->euid,
					 ctl->have_admin_gid ? &ctl->admin_gid : NULL);
	if (!c->admin && ctl->have_admin_gid)
		c->admin = peer_in_admin_group(fd, ctl->admin_gid);
	strbuf_init(&c->out, ctl->output_cap);
	/* Linked first so that client_free can undo a partial set-up. */
	c->next = ctl->clients;
	if (ctl->clients != NULL)
		ctl->clients->prev = c;
	ctl->clients = c;
	ctl->nclients++;

	r = sd_event_add_io(ctl->event, &c->io, fd, EPOLLIN, on_client_io, c);
	if (r >= 0)
		r = sd_event_add_time_relative(ctl->event, &c->idle, CLOCK_MONOTONIC,
					       ctl->idle_usec, 0, on_client_idle, c);
	if (r < 0) {
		c->fd = -1;     /* the caller closes it */
		client_free(c);
		return r;
	}
	(void)sd_event_source_set_description(c->io, "control-client");
	(void)sd_event_source_set_description(c->idle, "control-client-idle");
	return 0;
}

/* ---- listener --------------------------------------------------------------------------- */

static void accept_resume(struct control *ctl)
{
	ctl->accept_paused = 0;
	if (ctl->accept_timer != NULL)
		(void)sd_event_source_set_enabled(ctl->accept_timer, SD_EVENT_OFF);
	if (ctl->accepting && ctl->listen_src != NULL)
		(void)sd_event_source_set_enabled(ctl->listen_src, SD_EVENT_ON);
}

static int on_accept_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)s;
	(void)usec;
	accept_resume(userdata);
	return 0;
}

/* Out of descriptors: stop listening for a moment instead of spinning on a readable socket. */
static void accept_pause(struct control *ctl)
{
	int r;

	if (ctl->accept_paused)
		return;
	log_warnx("control: out of file descriptors; not accepting for 1 s");
	ctl->accept_paused = 1;
	(void)sd_event_source_set_enabled(ctl->listen_src, SD_EVENT_OFF);
	if (ctl->accept_timer == NULL) {
		r = sd_event_add_time_relative(ctl->event, &ctl->accept_timer, CLOCK_MONOTONIC,
					       ACCEPT_PAUSE_USEC, 0, on_accept_timer, ctl);
	} else {
		r = sd_event_source_set_time_relative(ctl->accept_timer, ACCEPT_PAUSE_USEC);
		if (r >= 0)
			r = sd_event_source_set_enabled(ctl->accept_timer, SD_EVENT_ONESHOT);
	}
	if (r < 0) {
		log_warnx("control: cannot arm accept timer: %s", strerror(-r));
		accept_resume(ctl);
	}
}

/*
 * Full: make room by closing the client idle longest that has no request in progress (no
 * reply being written). Idle connections are cheap to open, so without this anyone who may
 * connect could hold every slot and lock the operators out until idle_timeout. 1 when a client
 * was closed, 0 when every client is busy.
 */
static int evict_idle_client(struct control *ctl)
{
	static const char evicted[] = "error: closed to admit another client (too many clients)\n\n";
	struct client *c, *oldest = NULL;

	for (c = ctl->clients; c != NULL; c = c->next)
		if (c->out.len == 0 && !c->closing &&
		    (oldest == NULL || c->active_usec <= oldest->active_usec))
			oldest = c;
	if (oldest == NULL)
		return 0;
	log_debug("control: closing the client idle longest (uid %lu pid %ld) to admit another",
		  (unsigned long)oldest->uid, (long)oldest->pid);
	(void)send(oldest->fd, evicted, sizeof(evicted) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	client_free(oldest);
	return 1;
}

static int on_listen(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	static const char too_many[] = "error: too many clients\n\n";
	struct control *ctl = userdata;
	int i, cfd, r;

	(void)s;
	(void)revents;
	for (i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
		cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				accept_pause(ctl);
			else if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("control: accept");
			break;
		}
		if (ctl->nclients >= ctl->max_clients && !evict_idle_client(ctl)) {
			/* Best effort: the message fits any socket buffer, and we never wait. */
			(void)send(cfd, too_many, sizeof(too_many) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(cfd);
			continue;
		}
		r = client_new(ctl, cfd);
		if (r < 0) {
			log_warnx("control: cannot set up client: %s", strerror(-r));
			close(cfd);
		}
	}
	return 0;
}

/* The socket from systemd, when socket-activated: 1 taken, 0 not activated, <0 error. */
static int take_activated_socket(struct control *ctl)
{
	int n, r, fd = SD_LISTEN_FDS_START;

	n = sd_listen_fds(1);
	if (n < 0) {
		log_warnx("control: sd_listen_fds: %s", strerror(-n));
		return n;
	}
	if (n == 0)
		return 0;
	if (n > 1)
		log_warnx("control: %d sockets passed by systemd; using the first", n);
	r = sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0);
	if (r <= 0) {
		log_errorx("control: the socket passed by systemd is not a listening Unix stream "
			   "socket");
		return r < 0 ? r : -EINVAL;
	}
	r = fcntl(fd, F_GETFL);
	if (r < 0 || fcntl(fd, F_SETFL, r | O_NONBLOCK) < 0)
		return -errno;
	ctl->listen_fd = fd;
	ctl->activated = 1;
	log_info("control: using the admin socket passed by systemd");
	return 1;
}

/* Something exists at path: refuse if it is alive or not a socket, unlink if stale. */
static int clear_stale_socket(const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, r;

	if (lstat(sa->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		log_errorx("control: %s exists and is not a socket; refusing to replace it",
			   sa->sun_path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	r = r == 0 ? 0 : errno;
	close(fd);
	if (r == 0 || r == EAGAIN) {
		log_errorx("control: another ivs-autoscaler answers on %s; refusing to start",
			   sa->sun_path);
		return -EADDRINUSE;
	}
	if (r != ECONNREFUSED) {
		log_errorx("control: cannot probe %s: %s", sa->sun_path, strerror(r));
		return -r;
	}
	log_info("control: removing stale socket %s", sa->sun_path);
	if (unlink(sa->sun_path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static int bind_socket(struct control *ctl, const struct control_options *opts, mode_t mode)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = opts->socket_path;
	struct stat st;
	mode_t old_umask;
	int fd = -1, r;

	if (path == NULL || path[0] == '\0')
		return -EINVAL;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_errorx("control: socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	r = clear_stale_socket(&sa);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Never expose the socket wider than asked, not even between bind() and chmod(). */
	old_umask = umask((mode_t)(~mode & 0777));
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old_umask);
	if (r < 0) {
		r = -errno;
		log_errorx("control: bind %s: %s", path, strerror(errno));
		goto fail;
	}
	ctl->created = 1;
	if (chmod(path, mode) < 0 || listen(fd, LISTEN_BACKLOG) < 0 || stat(path, &st) < 0) {
		r = -errno;
		log_errorx("control: set up %s: %s", path, strerror(errno));
		goto fail;
	}
	if (ctl->have_admin_gid && chown(path, (uid_t)-1, ctl->admin_gid) < 0)
		log_warn("control: cannot give %s to group %s", path, opts->admin_group);
	ctl->dev = st.st_dev;
	ctl->ino = st.st_ino;
	ctl->listen_fd = fd;
	return 0;
fail:
	if (ctl->created)
		unlink(path);
	ctl->created = 0;
	close(fd);
	return r;
}

static void resolve_admin_group(struct control *ctl, const char *name)
{
	struct group *gr;

	if (name == NULL || name[0] == '\0')
		return;
	errno = 0;
	gr = getgrnam(name);
	if (gr == NULL) {
		log_warnx("control: admin group \"%s\" does not exist; only root and the daemon's "
			  "own user may run mutating commands", name);
		return;
	}
	ctl->admin_gid = gr->gr_gid;
	ctl->have_admin_gid = 1;
}

struct control *control_new(sd_event *event, const struct control_options *opts,
			    const struct control_command *commands, size_t ncommands, void *ud)
{
	struct control *ctl;
	int r;

	ctl = calloc(1, sizeof(*ctl));
	if (ctl == NULL)
		return NULL;
	ctl->event = sd_event_ref(event);
	ctl->commands = commands;
	ctl->ncommands = ncommands;
	ctl->ud = ud;
	ctl->listen_fd = -1;
	ctl->max_clients = opts->max_clients ? opts->max_clients : DEFAULT_MAX_CLIENTS;
	ctl->idle_usec = (opts->idle_timeout_ms ? opts->idle_timeout_ms : DEFAULT_IDLE_MS) * 1000;
	ctl->line_cap = opts->line_cap && opts->line_cap < CONTROL_LINE_CAP ? opts->line_cap
									  : CONTROL_LINE_CAP;
	ctl->output_cap = opts->output_cap ? opts->output_cap : CONTROL_OUTPUT_CAP;
	ctl->euid = geteuid();
	resolve_admin_group(ctl, opts->admin_group);
	if (opts->socket_path != NULL) {
		ctl->path = strdup(opts->socket_path);
		if (ctl->path == NULL) {
			r = -ENOMEM;
			goto fail;
		}
	}

	r = opts->no_activation ? 0 : take_activated_socket(ctl);
	if (r == 0)
		r = bind_socket(ctl, opts, opts->socket_mode ? opts->socket_mode : 0660);
	if (r < 0)
		goto fail;
	r = sd_event_add_io(event, &ctl->listen_src, ctl->listen_fd, EPOLLIN, on_listen, ctl);
	if (r < 0)
		goto fail;
	(void)sd_event_source_set_description(ctl->listen_src, "control-listen");
	ctl->accepting = 1;
	return ctl;
fail:
	control_free(ctl);
	errno = -r;
	return NULL;
}

int control_stop_accepting(struct control *ctl)
{
	ctl->accepting = 0;
	if (ctl->listen_src == NULL)
		return 0;
	return sd_event_source_set_enabled(ctl->listen_src, SD_EVENT_OFF);
}

unsigned control_client_count(const struct control *ctl)
{
	return ctl->nclients;
}

void control_free(struct control *ctl)
{
	struct stat st;

	if (ctl == NULL)
		return;
	while (ctl->clients != NULL)
		client_free(ctl->clients);
	sd_event_source_disable_unref(ctl->listen_src);
	sd_event_source_disable_unref(ctl->accept_timer);
	if (ctl->listen_fd >= 0)
		close(ctl->listen_fd);     /* systemd's copy stays open: never shutdown() it */
	/* Unlink only our own socket: another instance may have replaced it since. */
	if (ctl->created && ctl->path != NULL && lstat(ctl->path, &st) == 0 &&
	    st.st_dev == ctl->dev && st.st_ino == ctl->ino)
		unlink(ctl->path);
	free(ctl->path);
	sd_event_unref(ctl->event);
	free(ctl);
}
