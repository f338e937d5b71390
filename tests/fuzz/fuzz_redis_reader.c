/*
 * fuzz_redis_reader.c — the reply reader wrapper (redis_reader_feed) over arbitrary bytes, as
 * the server would send them. The first byte picks how the stream is split into feeds (1..256
 * bytes per feed), so one input also checks that replies split at any point parse the same.
 * Invariants: never crashes or leaks; every reply handed over is a well-formed tree (no
 * deeper than hiredis 0.14's limit); an error always leaves a NUL-terminated reason and the
 * same error whatever the split.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "redis_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_tree(const redisReply *r, int depth)
{
	if (r == NULL || depth > 8)
		abort();
	switch (r->type) {
	case REDIS_REPLY_STRING:
	case REDIS_REPLY_STATUS:
	case REDIS_REPLY_ERROR:
		if (r->str == NULL || r->str[r->len] != '\0')
			abort();
		break;
	case REDIS_REPLY_ARRAY:
		for (size_t i = 0; i < r->elements; i++)
			check_tree(r->element[i], depth + 1);
		break;
	case REDIS_REPLY_INTEGER:
	case REDIS_REPLY_NIL:
		break;
	default:
		abort();
	}
}

static void on_reply(void *ud, redisReply *reply)
{
	size_t *count = ud;

	check_tree(reply, 0);
	(*count)++;
	freeReplyObject(reply);
}

/* Feeds data in pieces of step bytes; returns replies seen, or -1 on a reader error. */
static long run(const uint8_t *data, size_t size, size_t step, char *err, size_t errlen)
{
	redisReader *reader = redis_reader_new();
	size_t count = 0;
	long result;

	if (reader == NULL)
		return -2;
	err[0] = '\0';
	result = 0;
	for (size_t off = 0; off < size; off += step) {
		size_t n = size - off < step ? size - off : step;
		if (redis_reader_feed(reader, (const char *)data + off, n, on_reply, &count, err,
				      errlen) < 0) {
			if (memchr(err, '\0', errlen) == NULL || err[0] == '\0')
				abort();
			result = -1;
			break;
		}
	}
	redisReaderFree(reader);
	return result < 0 ? -1 : (long)count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err1[256], err2[256];
	long whole, split;

	if (size == 0)
		return 0;
	whole = run(data + 1, size - 1, size, err1, sizeof(err1));
	split = run(data + 1, size - 1, (size_t)data[0] + 1, err2, sizeof(err2));
	/* The split changes when replies are handed over, never which ones or whether it fails. */
	if (whole == -2 || split == -2)
		return 0;
	if ((whole < 0) != (split < 0) || (whole >= 0 && whole != split))
		abort();
	return 0;
}
