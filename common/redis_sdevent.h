/*
 * redis_sdevent.h — run a hiredis 0.14 async context inside an sd-event loop.
 *
 * hiredis >= 1.2 ships adapters/libsdevent.h; 0.14 (Debian 12) does not, so this is a small
 * equivalent: one io event source per context whose EPOLLIN/EPOLLOUT mask follows hiredis's
 * addRead/delRead/addWrite/delWrite hooks, and hiredis's cleanup hook releases it. hiredis may
 * free the context (and so call cleanup) while we are dispatching an event to it; the adapter
 * then defers releasing its own state until the dispatch returns.
 *
 * There is no timer hook in 0.14: connect and command timeouts are redisio's job.
 */
#ifndef IVS_REDIS_SDEVENT_H
#define IVS_REDIS_SDEVENT_H

#include <hiredis/async.h>
#include <systemd/sd-event.h>

/*
 * Attach ac to event loop e. Returns 0, -EEXIST if ac already has an adapter, -ENOMEM. After
 * success the adapter lives until hiredis frees the context (redisAsyncFree, or an error).
 */
int redis_sdevent_attach(redisAsyncContext *ac, sd_event *e);

#endif
