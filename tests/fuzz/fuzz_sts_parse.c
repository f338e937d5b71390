/*
 * fuzz_sts_parse.c — the STS XML answer parser over arbitrary bytes, for both actions (the
 * first byte picks AssumeRole or AssumeRoleWithWebIdentity). Invariants: success means either an
 * error with a code or credentials with all three strings and an expiry; failure leaves a reason
 * and no credentials; nothing leaks.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sts_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *action;
	struct sts_answer a;
	char why[160] = "";
	int r;

	if (size == 0)
		return 0;
	action = data[0] & 1 ? "AssumeRoleWithWebIdentity" : "AssumeRole";
	r = sts_parse_answer(action, (const char *)data + 1, size - 1, &a, why, sizeof(why));
	if (r == 0) {
		if (a.is_error ? a.error_code[0] == '\0' :
				 a.credentials.access_key_id == NULL ||
					 a.credentials.secret_access_key == NULL ||
					 a.credentials.session_token == NULL)
			abort();
		sts_answer_clear(&a);
	} else if ((r != -EINVAL && r != -ENOMEM) || why[0] == '\0' ||
		   a.credentials.access_key_id != NULL) {
		abort();
	}
	return 0;
}
