/*
 * listen_addr.c — see listen_addr.h.
 */
#include "listen_addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

static int fail(const char **why, const char *msg)
{
	if (why != NULL)
		*why = msg;
	return -EINVAL;
}

static int parse_port(const char *s, unsigned *port)
{
	unsigned v = 0;
	size_t i;

	if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
		return -EINVAL;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 5)
			return -EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return -EINVAL;
	*port = v;
	return 0;
}

int listen_addr_parse(const char *s, struct sockaddr_storage *addr, socklen_t *addrlen,
		      const char **why)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *h = s;
	size_t hlen;
	unsigned port;

	if (s == NULL || s[0] == '\0')
		return fail(why, "expected HOST:PORT, got an empty string");
	memset(addr, 0, sizeof(*addr));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			return fail(why, "expected [IPV6]:PORT");
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return fail(why, "expected HOST:PORT (missing the port)");
		hlen = (size_t)(colon - s);
		if (memchr(s, ':', hlen) != NULL)
			return fail(why, "an IPv6 address goes in brackets: [IPV6]:PORT");
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return fail(why, "expected a numeric IPv4 or [IPv6] address before the port");
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (parse_port(colon + 1, &port) < 0)
		return fail(why, "the port must be a number from 0 to 65535");
	if (s[0] == '[') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
		if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
			return fail(why, "not a numeric IPv6 address");
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*addrlen = sizeof(*a6);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			return fail(why, "not a numeric IPv4 address (host names are not "
				    "resolved)");
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*addrlen = sizeof(*a4);
	}
	return 0;
}

unsigned listen_addr_port(const struct sockaddr_storage *addr)
{
	if (addr->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)addr)->sin6_port);
	if (addr->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)addr)->sin_port);
	return 0;
}
