/*
 * control.h — the admin socket: a Unix stream socket speaking a line protocol.
 *
 * Protocol. The client sends one command per line (at most line_cap bytes including the
 * newline; a longer line gets "line too long" and the connection is closed). Words are
 * separated by blanks; there is no quoting. A line whose first word is "json" asks for the JSON
 * form of that one reply. Several commands may be sent on one connection; replies come in order.
 *   text reply:  the rendered lines, then ONE empty line. No reply line is ever empty.
 *                An error is "error: <message>" followed by the empty line.
 *   JSON reply:  exactly one line, {"ok":true,"data":...} or {"ok":false,"error":"..."}.
 * Blank lines are ignored. An unknown command is answered with an error listing the usage.
 *
 * Commands are matched by name, which may be several words ("replication status"); the longest
 * matching name wins. The handler gets the words after the name as req->argv.
 *
 * Authorisation: the peer's credentials come from SO_PEERCRED (and SO_PEERGROUPS). Mutating
 * commands run only for uid 0, the daemon's own euid and members of the admin group; others
 * get "permission denied". Every mutating command is logged (MSGID_ADMIN_COMMAND), allowed or
 * not.
 *
 * Handlers run synchronously inside the event loop, so they must be fast: read the in-memory
 * snapshot of the controller's state, or record an intent (pause, reconcile now) for the loop
 * to act on. Never wait on AWS or Redis from a handler.
 */
#ifndef IVS_CONTROL_H
#define IVS_CONTROL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <systemd/sd-event.h>

struct strbuf;

#define CONTROL_LINE_CAP     4096      /* default and maximum line length, newline included */
#define CONTROL_OUTPUT_CAP   (1u << 20) /* a reply larger than this is refused */
#define CONTROL_MAX_ARGS     32

/*
 * One array member of a reply made item by item, for replies too large to build as one tree
 * (the status of hundreds of fleets is ~0.5 MB of JSON objects). A handler whose data is an
 * object may fill req->stream: a JSON reply serialises each item as it is made and frees it,
 * as the object's last member; a text reply gets the whole array in data before rendering.
 */
struct control_stream {
	const char *key;                         /* NULL: no streamed member */
	size_t n;
	json_t *(*item)(void *ud, size_t i);     /* a new reference; NULL: out of memory */
	void *ud;
};

struct control_request {
	int argc;          /* words after the command name */
	char **argv;
	uid_t uid;         /* the peer, from SO_PEERCRED */
	gid_t gid;
	pid_t pid;
	int admin;         /* the peer may run mutating commands */
	int json;          /* the reply will be JSON */
	struct control_stream *stream;   /* the handler may fill it (above); never NULL */
};

/*
 * Returns 0 with *data_out set (a new reference, or NULL for "no data"), or -1 with a message
 * in err (which the server sends as the error reply).
 */
typedef int (*control_handler_fn)(void *ud, const struct control_request *req,
				  json_t **data_out, char *err, size_t errlen);
/*
 * Text form of a successful reply. Must not emit empty lines (the server drops any, since an
 * empty line ends the reply). NULL render: strings are printed as is, objects as "key: value"
 * lines, anything else as compact JSON; no data prints "ok".
 */
typedef void (*control_render_fn)(const json_t *data, struct strbuf *out);

struct control_command {
	const char *name;     /* one or more words, e.g. "replication start" */
	const char *usage;    /* argument synopsis, e.g. "SRC DST PARTICIPANT" (may be "") */
	int mutating;
	int min_args;
	int max_args;         /* -1: no limit (still bounded by CONTROL_MAX_ARGS) */
	control_handler_fn handler;
	control_render_fn render;
};

struct control_options {
	const char *socket_path;   /* used when not socket-activated */
	const char *admin_group;   /* group whose members may mutate; NULL or "" for none */
	unsigned max_clients;      /* 0 → 64; when full, the client idle longest with no reply
				      being written is closed to admit a new one */
	uint64_t idle_timeout_ms;  /* 0 → 60000 */
	size_t line_cap;           /* 0 → CONTROL_LINE_CAP; never above it */
	size_t output_cap;         /* 0 → CONTROL_OUTPUT_CAP */
	mode_t socket_mode;        /* 0 → 0660; tests use 0666 */
	int no_activation;         /* 1: ignore LISTEN_FDS (tests, tools) */
};

struct control;

/*
 * Start serving. Takes the socket from systemd when socket-activated, else binds
 * opts->socket_path (refusing when another instance answers there, replacing a stale socket,
 * refusing a non-socket file). commands must outlive the server. Returns NULL with errno set
 * and a logged explanation: EADDRINUSE (another instance answers), EEXIST (not a socket),
 * ENAMETOOLONG, or the failing call's errno.
 */
struct control *control_new(sd_event *event, const struct control_options *opts,
			    const struct control_command *commands, size_t ncommands, void *ud);
/* Stop accepting new connections (shutdown begins); existing clients are still served. */
int control_stop_accepting(struct control *ctl);
/* Close everything; unlinks the socket only when control_new created it. NULL is fine. */
void control_free(struct control *ctl);
/* Connected clients right now (for status output and tests). */
unsigned control_client_count(const struct control *ctl);

/* ---- pure parts, exposed for tests ------------------------------------------------------- */

/*
 * Find the first complete line in buf[0..len). Returns 1 with *line_len (without the newline
 * and without a trailing '\r') and *consumed (including the newline); 0 when more bytes are
 * needed; -EMSGSIZE when cap bytes hold no newline (the line is too long).
 */
int control_next_line(const char *buf, size_t len, size_t cap, size_t *line_len,
		      size_t *consumed);

/*
 * 0 when line[0..len) is valid UTF-8 with no control characters except tab; -EILSEQ otherwise.
 */
int control_check_line(const char *line, size_t len);

/*
 * Split a NUL-terminated line in place on blanks. Returns the number of words, or -E2BIG when
 * there are more than max.
 */
int control_tokenize(char *line, char **argv, int max);

/*
 * The command whose (possibly multi-word) name is the longest prefix of argv, with *name_words
 * set to its word count; NULL when none matches.
 */
const struct control_command *control_match(const struct control_command *commands,
					    size_t ncommands, int argc, char **argv,
					    int *name_words);

/* Whether a peer may run mutating commands. admin_gid NULL: no admin group configured. */
int control_peer_is_admin(uid_t peer_uid, gid_t peer_gid, const gid_t *groups, size_t ngroups,
			  uid_t daemon_euid, const gid_t *admin_gid);

/*
 * Reply framing. Text: rendered text with empty lines removed, a final newline ensured, then the
 * terminating empty line. Errors: "error: " before the first line. JSON: one line. Each returns
 * 0 or -ENOBUFS/-ENOMEM (the reply does not fit the buffer's cap); after an error the buffer may
 * hold part of the reply, so the caller resets it before framing the error.
 */
int control_frame_text(struct strbuf *out, const char *text, size_t len);
int control_frame_text_error(struct strbuf *out, const char *message);
int control_frame_json(struct strbuf *out, const json_t *data);
/* The same with a streamed member (stream NULL or without key: control_frame_json). */
int control_frame_json_stream(struct strbuf *out, const json_t *data,
			      const struct control_stream *stream);
/* Put the streamed member into data (a text reply renders the whole tree). 0 or -ENOMEM. */
int control_stream_into(json_t *data, const struct control_stream *stream);
int control_frame_json_error(struct strbuf *out, const char *message);

/* The default text rendering described at control_render_fn. */
void control_render_default(const json_t *data, struct strbuf *out);

/* "usage:" followed by one line per command ("  name usage"), no trailing newline. */
int control_usage(const struct control_command *commands, size_t ncommands, struct strbuf *out);

#endif
