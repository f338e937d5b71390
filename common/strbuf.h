/*
 * strbuf.h — a growable byte/string buffer with a hard size cap.
 *
 * Used to build replies and renderings whose size depends on outside data. Every append either
 * fits completely under the cap or changes nothing and marks the buffer as overflowed; the flag
 * is sticky, so a renderer can append without checking each call and the caller checks once
 * (strbuf_overflowed) before sending. The contents are always NUL-terminated.
 */
#ifndef IVS_STRBUF_H
#define IVS_STRBUF_H

#include <stddef.h>

struct strbuf {
	char *data;      /* NULL until the first append; use strbuf_str() for a C string */
	size_t len;      /* bytes in use, not counting the terminating NUL */
	size_t alloc;    /* bytes allocated */
	size_t max;      /* hard cap on len */
	int overflow;    /* an append did not fit (or allocation failed) */
};

/* Empty buffer that never grows beyond max bytes. No allocation happens here. */
void strbuf_init(struct strbuf *sb, size_t max);
/* Release the memory; the buffer is empty (and still usable) afterwards. */
void strbuf_free(struct strbuf *sb);
/* Forget the contents and the overflow flag; keep the allocation. */
void strbuf_reset(struct strbuf *sb);

/* Append n bytes. 0, or -ENOBUFS when the cap would be exceeded, -ENOMEM on allocation failure. */
int strbuf_append(struct strbuf *sb, const void *p, size_t n);
int strbuf_puts(struct strbuf *sb, const char *s);
int strbuf_putc(struct strbuf *sb, char c);
int strbuf_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Remove the first n bytes (n > len removes everything); used after a partial write. */
void strbuf_consume(struct strbuf *sb, size_t n);
/* Keep the first len bytes (len >= the length changes nothing). */
void strbuf_truncate(struct strbuf *sb, size_t len);

/* The contents as a C string ("" when empty). Valid until the next modification. */
const char *strbuf_str(const struct strbuf *sb);
int strbuf_overflowed(const struct strbuf *sb);

#endif
