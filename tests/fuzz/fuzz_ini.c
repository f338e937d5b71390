/*
 * fuzz_ini.c — the AWS shared-file parser on arbitrary bytes: it must either parse or fail
 * with -EINVAL and a message, never crash or leak; a parsed file must be searchable.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ini.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ini_file *f = NULL;
	char err[128];
	int r = ini_parse((const char *)data, size, &f, err, sizeof(err));

	if (r == 0) {
		for (size_t i = 0; i < f->nsections; i++) {
			const struct ini_section *s = ini_find_section(f, f->sections[i].name);
			if (s == NULL)
				abort();
			for (size_t j = 0; j < s->nprops; j++)
				if (ini_get(s, s->props[j].name) == NULL)
					abort();
		}
		ini_free(f);
	} else if ((r == -EINVAL && (err[0] == '\0' || f != NULL)) || (r != -EINVAL && r != -ENOMEM)) {
		abort();
	}
	return 0;
}
