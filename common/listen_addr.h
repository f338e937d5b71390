/*
 * listen_addr.h — "HOST:PORT" for a listening TCP socket, numeric only.
 *
 * Accepted: an IPv4 address ("127.0.0.1:9464") or a bracketed IPv6 address ("[::1]:9464"),
 * a colon, then a decimal port 0..65535 without sign or leading zeros. Host names are refused:
 * a listener resolved through DNS at start-up could bind somewhere else than the operator
 * meant. Pure: no I/O.
 */
#ifndef IVS_LISTEN_ADDR_H
#define IVS_LISTEN_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/*
 * 0 with *addr and *addrlen filled, or -EINVAL with *why (may be NULL) pointing at a static
 * one-line reason.
 * A port of 0 parses (the kernel picks one); callers that need a fixed port check it.
 */
int listen_addr_parse(const char *s, struct sockaddr_storage *addr, socklen_t *addrlen,
		      const char **why);

/* The port of a parsed address (host byte order). */
unsigned listen_addr_port(const struct sockaddr_storage *addr);

#endif
