/*
 * sentinel.h — the pure part of the Redis Sentinel client procedure (the "Sentinel client
 * spec"): read a sentinel's answer to SENTINEL get-master-addr-by-name, a server's ROLE reply,
 * and a +switch-master event. The I/O (asking each sentinel in turn, confirming the master with
 * ROLE, reconnecting early on +switch-master) is redisio.c's.
 */
#ifndef IVS_SENTINEL_H
#define IVS_SENTINEL_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

/*
 * The master's address from a get-master-addr-by-name reply: 0 with host and port set,
 * -ENOENT when the sentinel does not know the master (a null reply), -EPROTO for anything
 * else (an error reply, a malformed address). host gets at most hostlen - 1 bytes.
 */
int sentinel_parse_master_addr(const redisReply *reply, char *host, size_t hostlen, int *port);

/*
 * From a ROLE reply: 1 when the server is a master, 0 when it is not (role copied into role,
 * e.g. "slave"), -EPROTO when the reply is not a ROLE reply.
 */
int sentinel_role_is_master(const redisReply *reply, char *role, size_t rolelen);

/*
 * A pub/sub message from a sentinel: true when it is "+switch-master <master_name> <old ip>
 * <old port> <new ip> <new port>" for master_name.
 */
bool sentinel_is_switch_master(const redisReply *reply, const char *master_name);

#endif
