/*
 * resolve.h — a host name lookup that never blocks the event loop.
 *
 * getaddrinfo() blocks (a slow or unreachable DNS server stalls it for seconds), and the Redis
 * transport resolves its host again on every reconnect, because a failover moves a cache
 * endpoint's address. Each lookup runs getaddrinfo() on its own short-lived detached thread;
 * the result comes back to the loop through an eventfd. A lookup that is cancelled while its
 * thread still runs is freed by that thread when getaddrinfo() returns.
 */
#ifndef IVS_RESOLVE_H
#define IVS_RESOLVE_H

#include <netdb.h>
#include <systemd/sd-event.h>

struct resolve;

/*
 * res: the addresses (SOCK_STREAM), to be freed by the callee with freeaddrinfo(); NULL when
 * the lookup failed, with gai_err (a getaddrinfo EAI_* code) and sys_errno (for EAI_SYSTEM).
 * Called once, from the loop; the lookup is over (and freed) when it runs.
 */
typedef void resolve_cb(void *ud, struct addrinfo *res, int gai_err, int sys_errno);

/* Start looking up host:port. NULL with errno set (ENOMEM, EAGAIN: no thread) on failure. */
struct resolve *resolve_start(sd_event *event, const char *host, int port, resolve_cb *cb,
			      void *ud);

/* Forget a lookup whose callback has not run: it never will. NULL is a no-op. */
void resolve_cancel(struct resolve *r);

#endif
