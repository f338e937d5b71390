/*
 * fuzz_listen_addr.c — metrics.listen's address parser on arbitrary bytes: it must accept
 * (with a port it can report) or refuse with -EINVAL and a reason, never crash or overread.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "listen_addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage addr;
	socklen_t len = 0;
	const char *why = NULL;
	char *s = malloc(size + 1);
	int r;

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	r = listen_addr_parse(s, &addr, &len, &why);
	if (r == 0) {
		if (listen_addr_port(&addr) > 65535 || len == 0)
			abort();
	} else if (r != -EINVAL || why == NULL || why[0] == '\0') {
		abort();
	}
	free(s);
	return 0;
}
