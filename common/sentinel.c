/*
 * sentinel.c — see sentinel.h.
 */
#include "sentinel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_string(const redisReply *r)
{
	return r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

int sentinel_parse_master_addr(const redisReply *reply, char *host, size_t hostlen, int *port)
{
	char *end;
	long p;

	if (reply == NULL)
		return -EPROTO;
	if (reply->type == REDIS_REPLY_NIL)
		return -ENOENT;
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    !is_string(reply->element[0]) || !is_string(reply->element[1]))
		return -EPROTO;
	if (reply->element[0]->len == 0 || reply->element[0]->len >= hostlen ||
	    memchr(reply->element[0]->str, '\0', reply->element[0]->len) != NULL)
		return -EPROTO;
	errno = 0;
	p = strtol(reply->element[1]->str, &end, 10);
	if (errno != 0 || end == reply->element[1]->str || *end != '\0' || p <= 0 || p > 65535)
		return -EPROTO;
	memcpy(host, reply->element[0]->str, reply->element[0]->len + 1);
	*port = (int)p;
	return 0;
}

int sentinel_role_is_master(const redisReply *reply, char *role, size_t rolelen)
{
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
	    !is_string(reply->element[0]))
		return -EPROTO;
	snprintf(role, rolelen, "%s", reply->element[0]->str);
	return strcmp(reply->element[0]->str, "master") == 0 ? 1 : 0;
}

bool sentinel_is_switch_master(const redisReply *reply, const char *master_name)
{
	const char *payload;
	size_t n = strlen(master_name);

	/* ["message", "+switch-master", "<name> <oldip> <oldport> <newip> <newport>"] */
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
	    !is_string(reply->element[0]) || !is_string(reply->element[1]) ||
	    !is_string(reply->element[2]))
		return false;
	if (strcmp(reply->element[0]->str, "message") != 0 ||
	    strcmp(reply->element[1]->str, "+switch-master") != 0)
		return false;
	payload = reply->element[2]->str;
	return strncmp(payload, master_name, n) == 0 && payload[n] == ' ';
}
