/*
 * commands.h — the admin command table the daemon hands to control_new().
 */
#ifndef IVS_COMMANDS_H
#define IVS_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <jansson.h>

struct control_command;
struct ivs_metrics;
struct reconciler;

/* The userdata every handler receives (control_new's ud). */
struct command_context {
	struct reconciler *reconciler;
	struct ivs_metrics *metrics;
	uint64_t (*uptime_s)(void *ud);
	void (*refresh_metrics)(void *ud);   /* copy AWS client stats into the registry */
	/*
	 * Reload the configuration file as SIGHUP does. 0 when it is valid (*pending: it is
	 * swapped in once the running pass ends), -1 with the reason in err when it is refused.
	 */
	int (*reload)(void *ud, bool *pending, char *err, size_t errlen);
	/* The last reload's outcome for status (a new reference), or NULL when none yet. */
	json_t *(*last_reload)(void *ud);
	void *ud;
};

const struct control_command *commands_table(size_t *n);

#endif
