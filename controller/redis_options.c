/* redis_options.c — see redis_options.h. */
#include "redis_options.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "redis_tls.h"

int redis_options_from_config(const struct config *cfg, struct redisio_options *ro, SSL_CTX **tls,
			      char *wake_channel, size_t size, char *err, size_t errlen)
{
	const struct config_redis *rc = &cfg->redis;
	bool sentinel = rc->sentinel_master[0] != '\0';

	*tls = NULL;
	if (rc->tls) {
		struct redis_tls_options to = { .ca_file = rc->tls_ca_file,
						.cert_file = rc->tls_cert_file,
						.key_file = rc->tls_key_file };
		*tls = redis_tls_ctx_new(&to, err, errlen);
		if (*tls == NULL)
			return -EINVAL;
	}
	if (wake_channel != NULL)
		snprintf(wake_channel, size, "%s%s", rc->key_prefix, rc->wake_channel);
	*ro = (struct redisio_options){
		.host = rc->unix_path[0] ? NULL : rc->host,
		.port = (int)rc->port,
		.unix_path = rc->unix_path[0] ? rc->unix_path : NULL,
		.db = (int)rc->db,
		.username = rc->user[0] ? rc->user : NULL,
		.password = rc->password,
		.tls = *tls,
		.tls_server_name = rc->tls_server_name,
		.sentinel_master = sentinel ? rc->sentinel_master : NULL,
		.sentinel_hosts = (const char *const *)rc->sentinel_hosts,
		.sentinel_ports = rc->sentinel_ports,
		.n_sentinels = sentinel ? rc->n_sentinels : 0,
		.sentinel_password = rc->sentinel_password,
		.connect_timeout_ms = (uint32_t)rc->timeout_ms,
		.command_timeout_ms = (uint32_t)rc->timeout_ms,
		.key_prefix = rc->key_prefix,
		.wake_channel = wake_channel,
		.subscribe_keyspace = wake_channel != NULL,
	};
	return 0;
}
