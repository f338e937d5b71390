/*
 * main.c — command line of ivs-autoscaler: parse flags, load the configuration, then hand over
 * to the daemon (daemon.c). Nothing here talks to IVS or Redis.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "daemon.h"
#include "log.h"

#define DEFAULT_CONFIG "/etc/ivs-autoscaler/config.yaml"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ivs-autoscaler [-v] [-c FILE] [--once] [--dry-run]\n"
		"       ivs-autoscaler -t [--online] [-c FILE]\n"
		"       ivs-autoscaler --version | -h\n"
		"\n"
		"  -c, --config FILE    configuration file (default " DEFAULT_CONFIG ")\n"
		"  -t, --check-config   validate the configuration, print the effective one, exit 0/1\n"
		"      --online         with -t: also check the credentials, that every origin stage\n"
		"                       exists in the region, and that Redis answers\n"
		"      --once           run one reconcile pass, then exit (0 when it succeeded)\n"
		"      --dry-run        observe and plan, print the plan, never change anything\n"
		"  -v, --verbose        debug logging\n"
		"      --version        print the version and exit\n"
		"  -h, --help           this help\n");
}

static void print_errors(const struct config_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++)
		fprintf(stderr, "%s\n", errs->msgs[i]);
	if (errs->truncated)
		fprintf(stderr, "(more errors not shown)\n");
}

int main(int argc, char **argv)
{
	enum { OPT_ONCE = 256, OPT_DRY_RUN, OPT_VERSION, OPT_ONLINE };
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 't' },
		{ "online", no_argument, NULL, OPT_ONLINE },
		{ "once", no_argument, NULL, OPT_ONCE },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon_options opts = { .config_path = DEFAULT_CONFIG };
	struct config_errors errs = { 0 };
	struct config *config = NULL;
	int check_only = 0, online = 0, c, rc;

	while ((c = getopt_long(argc, argv, "c:tvh", options, NULL)) != -1) {
		switch (c) {
		case 'c': opts.config_path = optarg; break;
		case 't': check_only = 1; break;
		case 'v': opts.verbose = 1; break;
		case OPT_ONCE: opts.once = 1; break;
		case OPT_DRY_RUN: opts.dry_run = 1; break;
		case OPT_ONLINE: online = 1; break;
		case OPT_VERSION: printf("ivs-autoscaler %s\n", IVS_AUTOSCALER_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (online && !check_only) {
		fprintf(stderr, "ivs-autoscaler: --online goes with -t/--check-config\n");
		usage(stderr);
		return 2;
	}
	if (optind != argc) {
		fprintf(stderr, "ivs-autoscaler: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	log_init("ivs-autoscaler", opts.verbose);
	rc = config_load_file(opts.config_path, &config, &errs);
	if (rc < 0) {
		print_errors(&errs);
		config_errors_free(&errs);
		return 1;
	}
	config_errors_free(&errs);
	if (check_only) {
		config_print(config, stdout);
		rc = online ? check_online(config, stdout, stderr) : 0;
		config_free(config);
		return rc;
	}
	/* daemon_run takes ownership of config. */
	return daemon_run(&opts, config);
}
