/*
 * backoff.h — per-item exponential backoff of failed actions: a small hash table keyed by the
 * action ("StartParticipantReplication|<stage>|<participant>|"), grown as needed. An item that
 * cannot be remembered (out of memory) is reported to the caller, never dropped silently.
 */
#ifndef IVS_BACKOFF_H
#define IVS_BACKOFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct backoff;

struct backoff *backoff_new(void);
void backoff_free(struct backoff *b);

/* True while key failed and its delay has not run out at now (ms). */
bool backoff_blocked(const struct backoff *b, const char *key, int64_t now);
/*
 * One more failure of key at now: the next attempt waits initial_ms, doubled per earlier
 * failure, at most max_ms. 0, or -ENOMEM when the item could not be remembered.
 */
int backoff_fail(struct backoff *b, const char *key, int64_t now, uint64_t initial_ms,
		 uint64_t max_ms);
/* When key may be tried again (ms, the clock of backoff_fail); 0 when it is not backing off. */
int64_t backoff_next(const struct backoff *b, const char *key);
/* key succeeded: forget it. */
void backoff_ok(struct backoff *b, const char *key);
/* Items remembered. */
size_t backoff_count(const struct backoff *b);

#endif
