/*
 * strbuf.c — see strbuf.h.
 */
#include "strbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strbuf_init(struct strbuf *sb, size_t max)
{
	sb->data = NULL;
	sb->len = 0;
	sb->alloc = 0;
	sb->max = max;
	sb->overflow = 0;
}

void strbuf_free(struct strbuf *sb)
{
	free(sb->data);
	strbuf_init(sb, sb->max);
}

void strbuf_reset(struct strbuf *sb)
{
	sb->len = 0;
	sb->overflow = 0;
	if (sb->data != NULL)
		sb->data[0] = '\0';
}

/* Make room for `extra` more bytes plus the NUL; grows geometrically, never beyond max + 1. */
static int strbuf_reserve(struct strbuf *sb, size_t extra)
{
	size_t need, want;
	char *p;

	if (extra > sb->max - sb->len)
		return -ENOBUFS;
	need = sb->len + extra + 1;
	if (need <= sb->alloc)
		return 0;
	want = sb->alloc < 64 ? 64 : sb->alloc;
	while (want < need)
		want = want > SIZE_MAX / 2 ? need : want * 2;
	if (want > sb->max + 1)
		want = sb->max + 1;
	p = realloc(sb->data, want);
	if (p == NULL)
		return -ENOMEM;
	sb->data = p;
	sb->alloc = want;
	return 0;
}

int strbuf_append(struct strbuf *sb, const void *p, size_t n)
{
	int r;

	if (sb->overflow)
		return -ENOBUFS;
	r = strbuf_reserve(sb, n);
	if (r < 0) {
		sb->overflow = 1;
		return r;
	}
	if (n > 0)
		memcpy(sb->data + sb->len, p, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
	return 0;
}

int strbuf_puts(struct strbuf *sb, const char *s)
{
	return strbuf_append(sb, s, strlen(s));
}

int strbuf_putc(struct strbuf *sb, char c)
{
	return strbuf_append(sb, &c, 1);
}

int strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	if (sb->overflow)
		return -ENOBUFS;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		sb->overflow = 1;
		return -EINVAL;
	}
	r = strbuf_reserve(sb, (size_t)n);
	if (r < 0) {
		sb->overflow = 1;
		return r;
	}
	va_start(ap, fmt);
	vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
	return 0;
}

void strbuf_consume(struct strbuf *sb, size_t n)
{
	if (n >= sb->len) {
		sb->len = 0;
	} else {
		memmove(sb->data, sb->data + n, sb->len - n);
		sb->len -= n;
	}
	if (sb->data != NULL)
		sb->data[sb->len] = '\0';
}

void strbuf_truncate(struct strbuf *sb, size_t len)
{
	if (len >= sb->len)
		return;
	sb->len = len;
	sb->data[len] = '\0';
}

const char *strbuf_str(const struct strbuf *sb)
{
	return sb->data != NULL ? sb->data : "";
}

int strbuf_overflowed(const struct strbuf *sb)
{
	return sb->overflow;
}
