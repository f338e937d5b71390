/*
 * daemon.h — the running daemon: one sd-event loop that owns every component (AWS client,
 * Redis, admin socket, metrics, reconciler), signals, sd_notify and the watchdog.
 */
#ifndef IVS_DAEMON_H
#define IVS_DAEMON_H

struct config;

struct daemon_options {
	const char *config_path;
	int once;        /* one pass, then exit (0 when it succeeded) */
	int dry_run;     /* observe and plan, print the plan, never mutate */
	int verbose;
};

/* Runs until SIGTERM/SIGINT (or the end of --once/--dry-run). Takes ownership of config.
 * Returns the process exit status. */
int daemon_run(const struct daemon_options *opts, struct config *config);

#endif
