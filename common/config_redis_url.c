/*
 * config_redis_url.c — redis.url to its parts (see config_internal.h). Pure: no I/O, and no
 * message repeats the URL, which may hold a password.
 */
#include "config_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Percent-decodes src[0..len) into a new string; NULL on a malformed escape or a %00. */
static char *percent_decode(const char *src, size_t len)
{
	char *out = malloc(len + 1);
	size_t o = 0;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		int hi, lo;
		if (src[i] != '%') {
			out[o++] = src[i];
			continue;
		}
		if (i + 2 >= len)
			goto bad;
		hi = hex_digit_value((unsigned char)src[i + 1]);
		lo = hi < 0 ? -1 : hex_digit_value((unsigned char)src[i + 2]);
		if (lo < 0 || (hi == 0 && lo == 0))
			goto bad;
		out[o++] = (char)(hi * 16 + lo);
		i += 2;
	}
	out[o] = '\0';
	return out;
bad:
	explicit_bzero(out, len + 1);
	free(out);
	return NULL;
}

/*
 * redis://[user[:password]@]host[:port][/db] and unix:///path[?db=N]. Messages never repeat the
 * URL: it may hold a password.
 */
const char *config_parse_redis_url(struct config_redis *r, const char *url, enum config_secret_source *src)
{
	char host[256];
	uint64_t db = 0;
	bool bracketed;
	unsigned port;

	*src = CONFIG_SECRET_NONE;
	if (str_has_prefix(url, "unix://")) {
		const char *path = url + 7, *q = strchr(path, '?');
		size_t plen = q ? (size_t)(q - path) : strlen(path);
		if (path[0] != '/')
			return "unix socket URL must be unix:///absolute/path.sock[?db=N]";
		if (plen > SUN_PATH_MAX)
			return "unix socket path is longer than 107 bytes";
		if (q != NULL) {
			if (!str_has_prefix(q, "?db=") || parse_uint64(q + 4, 65535, &db) < 0)
				return "unix socket URL query must be ?db=N with N between 0 and 65535";
		}
		free(r->unix_path);
		r->unix_path = strndup(path, plen);
		if (r->unix_path == NULL)
			return "out of memory";
		if (config_has_control_chars(r->unix_path))
			return "unix socket path must not contain control characters";
		if (config_set_string(&r->host, "") < 0)
			return "out of memory";
		r->port = 0;
		r->db = (unsigned)db;
		r->tls = false;
		return NULL;
	}
	r->tls = str_has_prefix(url, "rediss://");
	if (!r->tls && !str_has_prefix(url, "redis://"))
		return "must be redis[s]://[user[:password]@]host[:port][/db] or unix:///path.sock[?db=N]";
	{
		const char *rest = url + (r->tls ? 9 : 8);
		const char *slash = strchr(rest, '/');
		size_t auth_end = slash ? (size_t)(slash - rest) : strlen(rest);
		const char *at = NULL;
		const char *hp;
		size_t hplen;

		for (size_t i = 0; i < auth_end; i++)
			if (rest[i] == '@')
				at = rest + i;
		hp = at ? at + 1 : rest;
		hplen = (size_t)(rest + auth_end - hp);
		if (config_split_host_port(hp, hplen, host, sizeof(host), &port, &bracketed) < 0)
			return "has an invalid host or port (redis://host:port/db)";
		if (slash != NULL && slash[1] != '\0' && parse_uint64(slash + 1, 65535, &db) < 0)
			return "database must be a number between 0 and 65535 (redis://host:port/db)";
		if (at != NULL) {
			const char *colon = memchr(rest, ':', (size_t)(at - rest));
			size_t ulen = colon ? (size_t)(colon - rest) : (size_t)(at - rest);
			char *user = percent_decode(rest, ulen), *pass = NULL;
			if (user == NULL)
				return "user name has a malformed %-escape";
			if (colon != NULL) {
				pass = percent_decode(colon + 1, (size_t)(at - colon - 1));
				if (pass == NULL) {
					free(user);
					return "password has a malformed %-escape";
				}
			}
			free(r->user);
			r->user = user;
			if (pass != NULL && pass[0] != '\0') {
				free(r->password);
				r->password = pass;
				*src = CONFIG_SECRET_URL;
			} else {
				free(pass);
			}
		}
		if (config_set_string(&r->host, host) < 0)
			return "out of memory";
		r->port = port ? port : 6379;
		if (config_set_string(&r->unix_path, "") < 0)
			return "out of memory";
		r->db = (unsigned)db;
	}
	return NULL;
}
