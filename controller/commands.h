/*
 * commands.h — the admin command table the daemon hands to control_new().
 */
#ifndef IVS_COMMANDS_H
#define IVS_COMMANDS_H

#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

struct control_command;
struct ivs_metrics;
struct reconciler;

/* The userdata every handler receives (control_new's ud). */
struct command_context {
	struct reconciler *reconciler;
	struct ivs_metrics *metrics;
	uint64_t (*uptime_s)(void *ud);
	void (*refresh_metrics)(void *ud);   /* copy AWS client stats into the registry */
	void *ud;
};

const struct control_command *commands_table(size_t *n);

#endif
