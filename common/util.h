/*
 * util.h — small, strict parsers shared by the config loader and the daemon: durations,
 * decimal integers, hex digits, and bounded file reads (configuration and secret files).
 *
 * All parsers are strict on purpose: input comes from files and Redis written by someone else,
 * and "5 " or "+5" or "1.5" silently becoming 5 or 1 hides mistakes.
 */
#ifndef IVS_UTIL_H
#define IVS_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Secrets larger than this are refused: a password or key file is a few hundred bytes. */
#define UTIL_SECRET_MAX (64 * 1024)

/*
 * parse_duration_ms: "250ms", "15s", "5m", "2h", "1h30m", "1m30s500ms". Units ms, s, m, h;
 * several units may be combined, each at most once and from largest to smallest. No sign,
 * no fraction, no spaces. "0s" is valid (callers reject zero where it is meaningless).
 * Returns 0, -EINVAL for malformed input, -ERANGE when the value does not fit in uint64_t ms.
 */
int parse_duration_ms(const char *s, uint64_t *out_ms);

/*
 * format_duration_ms: the inverse, shortest form ("5m", "1h30m", "1s500ms", "0s").
 * Returns the length written, or -ENOSPC when buf is too small (buf then holds "").
 */
int format_duration_ms(uint64_t ms, char *buf, size_t size);

/*
 * parse_uint64: decimal digits only (no sign, no spaces, no "0x"), value <= max.
 * parse_int64: an optional leading '-', then digits; min <= value <= max.
 * Both return 0, -EINVAL when malformed, -ERANGE when out of range (out is then untouched).
 */
int parse_uint64(const char *s, uint64_t max, uint64_t *out);
int parse_int64(const char *s, int64_t min, int64_t max, int64_t *out);

/* hex_digit_value: 0..15 for 0-9, a-f, A-F; -1 for anything else. */
int hex_digit_value(int c);

/*
 * read_file_bounded: reads a regular file of at most max bytes into a new NUL-terminated
 * buffer (*out, caller frees; *len without the NUL; *mode its permission bits when mode is not
 * NULL). Reads until EOF, never beyond max. Returns 0 or a negative errno: when a system call
 * failed, *failed names it ("open", "stat" or "read"); otherwise *failed is NULL and the error
 * is -EINVAL (not a regular file), -EFBIG (larger than max) or -ENOMEM. The buffer is wiped
 * before it is freed on error.
 */
int read_file_bounded(const char *path, size_t max, char **out, size_t *len, unsigned *mode,
		      const char **failed);

/*
 * read_file_secret: reads a small regular file (at most UTIL_SECRET_MAX bytes) into a new
 * NUL-terminated string (*out, caller frees), with one trailing "\n" or "\r\n" removed.
 * A file readable by group or others is accepted with a log_warnx naming the path (never the
 * contents). A file holding a NUL byte is refused. On error returns -errno and writes a
 * one-line reason (without the contents) into err.
 */
int read_file_secret(const char *path, char **out, char *err, size_t errlen);

/* 1 when s starts with prefix. */
int str_has_prefix(const char *s, const char *prefix);

/* FNV-1a (64 bits) of a NUL-terminated string: a hash for tables and change checks. */
uint64_t str_hash64(const char *s);

#endif
