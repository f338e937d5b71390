/*
 * fuzz_config.c — feeds arbitrary bytes to the config loader. Whatever the input, the loader
 * must return (0 with a config, or an error list), never crash, leak or read out of bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *config = NULL;
	struct config_errors errs = { 0 };
	static FILE *sink;

	if (sink == NULL)
		sink = fopen("/dev/null", "w");
	/* A bare name: relative *_file paths resolve in the current directory. */
	if (config_load_buffer("fuzz.yaml", (const char *)data, size, &config, &errs) == 0) {
		if (sink != NULL)
			config_print(config, sink);
		config_free(config);
	}
	config_errors_free(&errs);
	return 0;
}
