/*
 * check.h — `ivs-autoscaler --check-config --online`: what a valid file cannot tell.
 */
#ifndef IVS_CHECK_H
#define IVS_CHECK_H

#include <stdio.h>

struct config;

/*
 * Resolve the region and the credentials, list the stages (the credentials are accepted and
 * may list), confirm every fleet's origin exists in that region (ListStages, then GetStage for
 * one not listed), and PING Redis. One line per check on out ("ok: ..." / "error: ..."), the
 * failures also on err. Returns 0 when every check passed, 1 otherwise.
 */
int check_online(const struct config *config, FILE *out, FILE *err);

#endif
