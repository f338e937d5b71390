/*
 * protocol.c — the pure half of the admin socket's protocol (see control.h): line framing,
 * the UTF-8 check, the tokenizer, the command matcher, the authorisation decision, reply framing
 * and the default text rendering. No I/O: control.c feeds it the bytes of one client.
 */
#include "control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "strbuf.h"

/* ---- pure parts ------------------------------------------------------------------------- */

int control_next_line(const char *buf, size_t len, size_t cap, size_t *line_len,
		      size_t *consumed)
{
	size_t scan = len < cap ? len : cap;
	const char *nl = memchr(buf, '\n', scan);
	size_t n;

	if (nl == NULL)
		return len >= cap ? -EMSGSIZE : 0;
	n = (size_t)(nl - buf);
	*consumed = n + 1;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	*line_len = n;
	return 1;
}

/* Length of the UTF-8 sequence at p (max n bytes), or 0 when it is not well-formed. */
static size_t utf8_sequence(const unsigned char *p, size_t n)
{
	size_t len, i;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* Overlong forms, UTF-16 surrogates and values beyond U+10FFFF are not UTF-8. */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

int control_check_line(const char *line, size_t len)
{
	const unsigned char *p = (const unsigned char *)line;
	size_t i = 0, n;

	while (i < len) {
		if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
			return -EILSEQ;
		n = utf8_sequence(p + i, len - i);
		if (n == 0)
			return -EILSEQ;
		/* C1 control characters (U+0080..U+009F) are as unwelcome as C0 ones. */
		if (n == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0)
			return -EILSEQ;
		i += n;
	}
	return 0;
}

int control_tokenize(char *line, char **argv, int max)
{
	int argc = 0;
	char *p = line;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			return argc;
		if (argc == max)
			return -E2BIG;
		argv[argc++] = p;
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
		if (*p == '\0')
			return argc;
		*p++ = '\0';
	}
}

/* Number of words of name when they equal argv[0..), else 0. */
static int name_matches(const char *name, int argc, char **argv)
{
	int words = 0;
	const char *p = name;

	while (*p != '\0') {
		size_t n = strcspn(p, " ");

		if (words >= argc || strlen(argv[words]) != n || strncmp(argv[words], p, n) != 0)
			return 0;
		words++;
		p += n;
		while (*p == ' ')
			p++;
	}
	return words;
}

const struct control_command *control_match(const struct control_command *commands,
					    size_t ncommands, int argc, char **argv,
					    int *name_words)
{
	const struct control_command *best = NULL;
	int best_words = 0;
	size_t i;

	for (i = 0; i < ncommands; i++) {
		int w = name_matches(commands[i].name, argc, argv);

		if (w > best_words) {
			best = &commands[i];
			best_words = w;
		}
	}
	*name_words = best_words;
	return best;
}

int control_peer_is_admin(uid_t peer_uid, gid_t peer_gid, const gid_t *groups, size_t ngroups,
			  uid_t daemon_euid, const gid_t *admin_gid)
{
	size_t i;

	if (peer_uid == 0 || peer_uid == daemon_euid)
		return 1;
	if (admin_gid == NULL)
		return 0;
	if (peer_gid == *admin_gid)
		return 1;
	for (i = 0; i < ngroups; i++)
		if (groups[i] == *admin_gid)
			return 1;
	return 0;
}

/* Append the non-empty lines of text, the first one after prefix, then the empty line. */
static int frame_lines(struct strbuf *out, const char *prefix, const char *text, size_t len)
{
	size_t i = 0, dropped = 0;
	int first = 1;

	while (i < len) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t n = nl != NULL ? (size_t)(nl - (text + i)) : len - i;

		if (n == 0) {
			dropped++;
		} else {
			if (first && prefix != NULL)
				strbuf_puts(out, prefix);
			first = 0;
			strbuf_append(out, text + i, n);
			strbuf_putc(out, '\n');
		}
		i += n + 1;
	}
	if (first && prefix != NULL)
		strbuf_printf(out, "%sunknown error\n", prefix);
	if (dropped > 0)
		log_debug("control: dropped %zu empty line(s) from a reply", dropped);
	strbuf_putc(out, '\n');
	return strbuf_overflowed(out) ? -ENOBUFS : 0;
}

int control_frame_text(struct strbuf *out, const char *text, size_t len)
{
	return frame_lines(out, NULL, text, len);
}

int control_frame_text_error(struct strbuf *out, const char *message)
{
	return frame_lines(out, "error: ", message, strlen(message));
}

static int append_to_strbuf(const char *buffer, size_t size, void *data)
{
	return strbuf_append(data, buffer, size) < 0 ? -1 : 0;
}

/* Serialise straight into the reply buffer: no second copy of a large reply (a status of
 * hundreds of fleets is ~100 kB) lives beside it. */
static int frame_json_object(struct strbuf *out, json_t *obj)
{
	int r;

	if (obj == NULL)
		return -ENOMEM;
	r = json_dump_callback(obj, append_to_strbuf, out, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(obj);
	if (r < 0 && !strbuf_overflowed(out))
		return -ENOMEM;
	strbuf_putc(out, '\n');
	return strbuf_overflowed(out) ? -ENOBUFS : 0;
}

int control_frame_json(struct strbuf *out, const json_t *data)
{
	json_t *obj = json_object();

	if (obj == NULL)
		return -ENOMEM;
	/* json_object_set (not _new) takes its own reference; data stays the caller's. */
	if (json_object_set_new(obj, "ok", json_true()) < 0 ||
	    json_object_set(obj, "data", data != NULL ? (json_t *)data : json_null()) < 0) {
		json_decref(obj);
		return -ENOMEM;
	}
	return frame_json_object(out, obj);
}

int control_frame_json_stream(struct strbuf *out, const json_t *data,
			      const struct control_stream *stream)
{
	json_t *key;
	int r = 0;

	if (stream == NULL || stream->key == NULL)
		return control_frame_json(out, data);
	if (!json_is_object(data) || stream->item == NULL)
		return -EINVAL;
	key = json_string(stream->key);
	if (key == NULL)
		return -ENOMEM;
	/* {"ok":true,"data":{...members,"key":[item,item...]}} with the object reopened */
	strbuf_puts(out, "{\"ok\":true,\"data\":");
	if (json_dump_callback(data, append_to_strbuf, out, JSON_COMPACT) < 0)
		r = -ENOMEM;
	if (r == 0 && !strbuf_overflowed(out)) {
		strbuf_truncate(out, out->len - 1);                 /* the closing brace */
		if (json_object_size(data) > 0)
			strbuf_putc(out, ',');
		if (json_dump_callback(key, append_to_strbuf, out, JSON_ENCODE_ANY) < 0)
			r = -ENOMEM;
		strbuf_puts(out, ":[");
	}
	json_decref(key);
	for (size_t i = 0; r == 0 && i < stream->n && !strbuf_overflowed(out); i++) {
		json_t *item = stream->item(stream->ud, i);

		if (item == NULL) {
			r = -ENOMEM;
			break;
		}
		if (i > 0)
			strbuf_putc(out, ',');
		if (json_dump_callback(item, append_to_strbuf, out,
				       JSON_COMPACT | JSON_ENCODE_ANY) < 0)
			r = -ENOMEM;
		json_decref(item);
	}
	strbuf_puts(out, "]}}\n");
	if (strbuf_overflowed(out))
		return -ENOBUFS;
	return r;
}

int control_stream_into(json_t *data, const struct control_stream *stream)
{
	json_t *a;

	if (stream == NULL || stream->key == NULL)
		return 0;
	if (!json_is_object(data) || stream->item == NULL || (a = json_array()) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < stream->n; i++) {
		if (json_array_append_new(a, stream->item(stream->ud, i)) < 0) {
			json_decref(a);
			return -ENOMEM;
		}
	}
	return json_object_set_new(data, stream->key, a) < 0 ? -ENOMEM : 0;
}

int control_frame_json_error(struct strbuf *out, const char *message)
{
	json_t *obj = json_object();
	json_t *msg = json_string(message);

	/* A message that is not UTF-8 cannot go into JSON; say so rather than send bad JSON. */
	if (msg == NULL)
		msg = json_string("error message is not valid UTF-8");
	if (obj == NULL || msg == NULL ||
	    json_object_set_new(obj, "ok", json_false()) < 0 ||
	    json_object_set_new(obj, "error", msg) < 0) {
		json_decref(obj);
		return -ENOMEM;
	}
	return frame_json_object(out, obj);
}

static void render_scalar(const json_t *v, struct strbuf *out)
{
	char *s;

	if (json_is_string(v)) {
		strbuf_append(out, json_string_value(v), json_string_length(v));
		return;
	}
	s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (s == NULL) {
		out->overflow = 1;
		return;
	}
	strbuf_puts(out, s);
	free(s);
}

void control_render_default(const json_t *data, struct strbuf *out)
{
	const char *key;
	json_t *v;
	size_t i;

	if (data == NULL) {
		strbuf_puts(out, "ok\n");
	} else if (json_is_object(data)) {
		json_object_foreach((json_t *)data, key, v) {
			strbuf_printf(out, "%s: ", key);
			render_scalar(v, out);
			strbuf_putc(out, '\n');
		}
	} else if (json_is_array(data)) {
		json_array_foreach(data, i, v) {
			render_scalar(v, out);
			strbuf_putc(out, '\n');
		}
	} else {
		render_scalar(data, out);
		if (out->len == 0 || out->data[out->len - 1] != '\n')
			strbuf_putc(out, '\n');
	}
}

int control_usage(const struct control_command *commands, size_t ncommands, struct strbuf *out)
{
	size_t i;

	strbuf_puts(out, "usage:");
	for (i = 0; i < ncommands; i++) {
		strbuf_printf(out, "\n  %s%s%s%s", commands[i].name,
			      commands[i].usage[0] != '\0' ? " " : "", commands[i].usage,
			      commands[i].mutating ? "  (admin)" : "");
	}
	return strbuf_overflowed(out) ? -ENOBUFS : 0;
}
