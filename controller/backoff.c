/*
 * backoff.c — see backoff.h. Separate chaining over a power-of-two bucket array that doubles
 * when the table holds more items than buckets.
 */
#include "backoff.h"

#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define INITIAL_BUCKETS 64

struct backoff_item {
	struct backoff_item *next;
	unsigned failures;
	int64_t next_ms;
	char key[];
};

struct backoff {
	struct backoff_item **buckets;
	size_t n_buckets;                        /* a power of two */
	size_t n_items;
};

struct backoff *backoff_new(void)
{
	struct backoff *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	b->buckets = calloc(INITIAL_BUCKETS, sizeof(*b->buckets));
	if (b->buckets == NULL) {
		free(b);
		return NULL;
	}
	b->n_buckets = INITIAL_BUCKETS;
	return b;
}

void backoff_free(struct backoff *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n_buckets; i++) {
		struct backoff_item *it = b->buckets[i];
		while (it != NULL) {
			struct backoff_item *next = it->next;
			free(it);
			it = next;
		}
	}
	free(b->buckets);
	free(b);
}

static struct backoff_item **slot_of(const struct backoff *b, const char *key)
{
	struct backoff_item **p = &b->buckets[str_hash64(key) & (b->n_buckets - 1)];
	while (*p != NULL && strcmp((*p)->key, key) != 0)
		p = &(*p)->next;
	return p;
}

static int grow(struct backoff *b)
{
	size_t n = b->n_buckets * 2;
	struct backoff_item **nb = calloc(n, sizeof(*nb));
	if (nb == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < b->n_buckets; i++) {
		struct backoff_item *it = b->buckets[i];
		while (it != NULL) {
			struct backoff_item *next = it->next;
			size_t j = str_hash64(it->key) & (n - 1);
			it->next = nb[j];
			nb[j] = it;
			it = next;
		}
	}
	free(b->buckets);
	b->buckets = nb;
	b->n_buckets = n;
	return 0;
}

bool backoff_blocked(const struct backoff *b, const char *key, int64_t now)
{
	const struct backoff_item *it = *slot_of(b, key);
	return it != NULL && now < it->next_ms;
}

int64_t backoff_next(const struct backoff *b, const char *key)
{
	const struct backoff_item *it = *slot_of(b, key);
	return it != NULL ? it->next_ms : 0;
}

int backoff_fail(struct backoff *b, const char *key, int64_t now, uint64_t initial_ms,
		 uint64_t max_ms)
{
	struct backoff_item **p = slot_of(b, key), *it = *p;
	uint64_t delay = initial_ms;

	if (it == NULL) {
		size_t len = strlen(key);
		/* A failed grow only makes chains longer; the item is still kept. */
		if (b->n_items >= b->n_buckets && grow(b) == 0)
			p = slot_of(b, key);
		it = calloc(1, sizeof(*it) + len + 1);
		if (it == NULL)
			return -ENOMEM;
		memcpy(it->key, key, len + 1);
		*p = it;
		b->n_items++;
	}
	for (unsigned i = 0; i < it->failures && delay < max_ms; i++)
		delay *= 2;
	if (delay > max_ms)
		delay = max_ms;
	it->failures++;
	it->next_ms = now + (int64_t)delay;
	return 0;
}

void backoff_ok(struct backoff *b, const char *key)
{
	struct backoff_item **p = slot_of(b, key), *it = *p;
	if (it == NULL)
		return;
	*p = it->next;
	free(it);
	b->n_items--;
}

size_t backoff_count(const struct backoff *b)
{
	return b->n_items;
}
