/*
 * fuzz_protocol.c — the admin socket's line protocol (controller/protocol.c) over arbitrary
 * bytes, the way control.c feeds it: frame lines out of a capped buffer, check each for UTF-8
 * and control characters, tokenize it, match it against the command table, and frame text and
 * JSON replies (including errors that echo the client's words). Invariants checked: a framed
 * line lies inside the buffer and holds no newline; a checked line is NUL-free; the tokenizer
 * never returns more words than asked and each word is non-empty and blank-free; a match names
 * a command whose words equal the first words of the line; every framed reply ends in the
 * protocol's terminator.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int handler(void *ud, const struct control_request *req, json_t **data, char *err,
		   size_t errlen)
{
	(void)ud; (void)req; (void)data; (void)err; (void)errlen;
	return 0;
}

/* The shape of the daemon's table: one-word and multi-word names sharing a first word. */
static const struct control_command commands[] = {
	{ "status", "", 0, 0, 0, handler, NULL },
	{ "stages", "[FLEET]", 0, 0, 1, handler, NULL },
	{ "replication status", "STAGE_ARN", 0, 1, 1, handler, NULL },
	{ "replication start", "SRC DST PARTICIPANT", 1, 3, 3, handler, NULL },
	{ "replication", "", 0, 0, 0, handler, NULL },
	{ "log-level", "debug|info|notice|warning", 1, 1, 1, handler, NULL },
	{ "reload", "", 1, 0, 0, handler, NULL },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void check_reply(const char *raw, size_t len, char **argv, int argc)
{
	struct strbuf out;
	json_t *words = json_array();

	/* Text framing of the raw line as a reply body, and as an error message. */
	strbuf_init(&out, 1u << 16);
	if (control_frame_text(&out, raw, len) == 0 &&
	    (out.len < 1 || out.data[out.len - 1] != '\n' ||
	     (out.len >= 2 && out.data[out.len - 2] != '\n')))
		abort();
	strbuf_free(&out);
	/* JSON framing of the words (as "unknown command" echoes them). */
	for (int i = 0; i < argc && words != NULL; i++)
		json_array_append_new(words, json_string(argv[i]));
	strbuf_init(&out, 1u << 16);
	if (control_frame_json(&out, words) == 0 &&
	    (out.len < 2 || out.data[out.len - 1] != '\n' || memchr(out.data, '\n', out.len - 1)))
		abort();
	strbuf_free(&out);
	strbuf_init(&out, 1u << 16);
	if (argc > 0)
		control_frame_json_error(&out, argv[0]);
	strbuf_free(&out);
	json_decref(words);
}

static void one_line(const char *raw, size_t len)
{
	char line[CONTROL_LINE_CAP + 1];
	char *argv[CONTROL_MAX_ARGS + 1];
	const struct control_command *cmd;
	int argc, words;

	if (len > CONTROL_LINE_CAP || memchr(raw, '\n', len) != NULL)
		abort();
	if (control_check_line(raw, len) < 0)
		return;
	if (memchr(raw, '\0', len) != NULL)
		abort();                        /* NUL is a control character */
	memcpy(line, raw, len);
	line[len] = '\0';
	argc = control_tokenize(line, argv, CONTROL_MAX_ARGS + 1);
	if (argc < 0)
		return;
	if (argc > CONTROL_MAX_ARGS + 1)
		abort();
	for (int i = 0; i < argc; i++)
		if (argv[i][0] == '\0' || strpbrk(argv[i], " \t") != NULL)
			abort();
	cmd = control_match(commands, NCOMMANDS, argc, argv, &words);
	if (cmd != NULL) {
		const char *p = cmd->name;
		if (words < 1 || words > argc)
			abort();
		for (int i = 0; i < words; i++) {
			size_t n = strlen(argv[i]);
			if (strncmp(p, argv[i], n) != 0 || (p[n] != ' ' && p[n] != '\0'))
				abort();
			p += n;
			while (*p == ' ')
				p++;
		}
		if (*p != '\0')
			abort();
	} else if (words != 0) {
		abort();
	}
	check_reply(raw, len, argv, argc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	size_t off = 0, line_len, consumed;
	/* A small cap now and then, as control_options.line_cap allows, to reach the limit. */
	size_t cap = size > 0 && data[0] == 0xff ? 64 : CONTROL_LINE_CAP;

	for (;;) {
		int r = control_next_line(buf + off, size - off, cap, &line_len, &consumed);
		if (r == 0 || r == -EMSGSIZE)
			break;
		if (r != 1 || consumed == 0 || consumed > size - off || line_len >= consumed ||
		    line_len > cap)
			abort();
		one_line(buf + off, line_len);
		off += consumed;
	}
	return 0;
}
