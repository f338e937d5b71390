/*
 * util.c — see util.h.
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static const struct {
	const char *name;
	uint64_t ms;
} duration_units[] = {
	/* Largest first: the parser requires units in this order, so "30m1h" is refused. */
	{ "h", 3600000 }, { "m", 60000 }, { "s", 1000 }, { "ms", 1 },
};
#define N_UNITS (sizeof(duration_units) / sizeof(duration_units[0]))

/* Which unit starts at p? "ms" must win over "m", so compare whole unit tokens. */
static int match_unit(const char *p, size_t *len)
{
	size_t n = 0;

	while (p[n] >= 'a' && p[n] <= 'z')
		n++;
	for (size_t i = 0; i < N_UNITS; i++) {
		if (strlen(duration_units[i].name) == n &&
		    strncmp(p, duration_units[i].name, n) == 0) {
			*len = n;
			return (int)i;
		}
	}
	return -1;
}

int parse_duration_ms(const char *s, uint64_t *out_ms)
{
	uint64_t total = 0;
	int last_unit = -1;
	const char *p = s;

	if (s == NULL || *s == '\0')
		return -EINVAL;
	while (*p != '\0') {
		uint64_t n = 0;
		size_t digits = 0, ulen = 0;
		int unit;

		while (*p >= '0' && *p <= '9') {
			uint64_t d = (uint64_t)(*p - '0');
			if (n > (UINT64_MAX - d) / 10)
				return -ERANGE;
			n = n * 10 + d;
			p++;
			digits++;
		}
		if (digits == 0)
			return -EINVAL;
		unit = match_unit(p, &ulen);
		if (unit < 0 || unit <= last_unit)
			return -EINVAL;
		last_unit = unit;
		p += ulen;
		if (n > UINT64_MAX / duration_units[unit].ms)
			return -ERANGE;
		n *= duration_units[unit].ms;
		if (total > UINT64_MAX - n)
			return -ERANGE;
		total += n;
	}
	*out_ms = total;
	return 0;
}

int format_duration_ms(uint64_t ms, char *buf, size_t size)
{
	size_t used = 0;

	if (size == 0)
		return -ENOSPC;
	buf[0] = '\0';
	if (ms == 0) {
		if (size < 3)
			return -ENOSPC;
		memcpy(buf, "0s", 3);
		return 2;
	}
	for (size_t i = 0; i < N_UNITS; i++) {
		uint64_t n = ms / duration_units[i].ms;
		int len;

		if (n == 0)
			continue;
		ms -= n * duration_units[i].ms;
		len = snprintf(buf + used, size - used, "%llu%s", (unsigned long long)n,
			       duration_units[i].name);
		if (len < 0 || (size_t)len >= size - used) {
			buf[0] = '\0';
			return -ENOSPC;
		}
		used += (size_t)len;
	}
	return (int)used;
}

/* Digits only, at least one; -ERANGE when the value exceeds limit. */
static int parse_digits(const char *s, uint64_t limit, uint64_t *out)
{
	uint64_t n = 0;
	int overflow = 0;

	if (*s == '\0')
		return -EINVAL;
	for (const char *p = s; *p != '\0'; p++) {
		uint64_t d;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		/* Keep scanning after overflow: "99999999999999999999x" is malformed, not too big. */
		d = (uint64_t)(*p - '0');
		if (overflow || n > (limit - d) / 10 || d > limit)
			overflow = 1;
		else
			n = n * 10 + d;
	}
	if (overflow)
		return -ERANGE;
	*out = n;
	return 0;
}

int parse_uint64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t n;
	int r;

	if (s == NULL)
		return -EINVAL;
	r = parse_digits(s, max, &n);
	if (r < 0)
		return r;
	*out = n;
	return 0;
}

int parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	int negative;
	uint64_t n;
	int r;

	if (s == NULL || min > max)
		return -EINVAL;
	negative = s[0] == '-';
	/* Magnitudes up to 2^63 fit in uint64_t, which covers INT64_MIN. */
	r = parse_digits(s + negative, (uint64_t)INT64_MAX + 1, &n);
	if (r < 0)
		return r;
	if (negative) {
		int64_t v = n == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)n;
		if (v < min || v > max)
			return -ERANGE;
		*out = v;
	} else {
		if (n > (uint64_t)INT64_MAX || (int64_t)n < min || (int64_t)n > max)
			return -ERANGE;
		*out = (int64_t)n;
	}
	return 0;
}

int hex_digit_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int read_file_bounded(const char *path, size_t max, char **out, size_t *len, unsigned *mode,
		      const char **failed)
{
	struct stat st;
	char *buf = NULL;
	size_t used = 0;
	int fd, r;

	*out = NULL;
	*len = 0;
	*failed = "open";
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		*failed = "stat";
		goto out;
	}
	*failed = NULL;
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto out;
	}
	if (st.st_size > 0 && (uint64_t)st.st_size > max) {
		r = -EFBIG;
		goto out;
	}
	buf = malloc(max + 2);
	if (buf == NULL) {
		r = -ENOMEM;
		goto out;
	}
	/* Read until EOF, not st_size: the file may change under us; never beyond the cap. */
	*failed = "read";
	for (;;) {
		ssize_t n = read(fd, buf + used, max + 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		used += (size_t)n;
		if (used > max) {
			r = -EFBIG;
			*failed = NULL;
			goto out;
		}
	}
	buf[used] = '\0';
	if (mode != NULL)
		*mode = (unsigned)(st.st_mode & 07777);
	*out = buf;
	*len = used;
	buf = NULL;
	r = 0;
out:
	if (buf != NULL) {
		explicit_bzero(buf, used);
		free(buf);
	}
	close(fd);
	return r;
}

int read_file_secret(const char *path, char **out, char *err, size_t errlen)
{
	const char *failed;
	char *buf;
	size_t len;
	unsigned mode;
	int r;

	*out = NULL;
	r = read_file_bounded(path, UTIL_SECRET_MAX, &buf, &len, &mode, &failed);
	if (r < 0 && failed != NULL) {
		snprintf(err, errlen, "cannot %s %s: %s", failed, path, strerror(-r));
		return r;
	}
	if (r == -EINVAL) {
		snprintf(err, errlen, "%s is not a regular file", path);
		return r;
	}
	if (r == -EFBIG) {
		snprintf(err, errlen, "%s is larger than %d bytes", path, UTIL_SECRET_MAX);
		return r;
	}
	if (r < 0) {
		snprintf(err, errlen, "out of memory reading %s", path);
		return r;
	}
	if (memchr(buf, '\0', len) != NULL) {
		snprintf(err, errlen, "%s contains a NUL byte", path);
		explicit_bzero(buf, len);
		free(buf);
		return -EINVAL;
	}
	if (len > 0 && buf[len - 1] == '\n') {
		len--;
		if (len > 0 && buf[len - 1] == '\r')
			len--;
	}
	buf[len] = '\0';
	if ((mode & (S_IRGRP | S_IROTH)) != 0)
		log_event(LOG_WARNING, NULL, LOG_FIELDS("SECRET_FILE", path),
			  "secret file %s is readable by group or others (mode %04o); chmod 600 it",
			  path, mode);
	*out = buf;
	return 0;
}

int str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

uint64_t str_hash64(const char *s)
{
	uint64_t h = 14695981039346656037u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}
