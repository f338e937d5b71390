/*
 * redis_options.h — the Redis client options the configuration asks for (URL, AUTH, TLS,
 * Sentinel, timeouts), built once for the daemon and for `-t --online`.
 */
#ifndef IVS_REDIS_OPTIONS_H
#define IVS_REDIS_OPTIONS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "config.h"
#include "redisio.h"

/*
 * Fill *ro from cfg->redis. With TLS, *tls is a new context (the caller frees it with
 * SSL_CTX_free once redisio_new/redisio_reconfigure has taken its reference); else NULL.
 * wake_channel (size bytes) receives prefix + wake channel, or NULL for no subscriptions.
 * 0, or -EINVAL with the reason in err (a TLS file that cannot be used).
 */
int redis_options_from_config(const struct config *cfg, struct redisio_options *ro, SSL_CTX **tls,
			      char *wake_channel, size_t size, char *err, size_t errlen);

#endif
