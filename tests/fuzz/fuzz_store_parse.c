/*
 * fuzz_store_parse.c — every Redis value (and record key) parser over arbitrary bytes. The first
 * byte picks the parser so one corpus covers them all (of the stage ARN's share, 10 mod 12 is the
 * stage record); the rest is the value. Invariants checked: success means
 * the output obeys the documented limits; failure always leaves a NUL-terminated reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[STORE_ERR_MAX];
	const char *s = (const char *)data + 1;
	size_t len;

	if (size == 0)
		return 0;
	len = size - 1;
	err[0] = '\0';
	switch (data[0] % 6) {
	case 0: {
		int v;
		if (store_parse_desired(s, len, &v, err, sizeof(err)) == 0 &&
		    (v < STORE_DESIRED_MIN || v > STORE_DESIRED_MAX))
			abort();
		break;
	}
	case 1: {
		long long v;
		if (store_parse_viewers(s, len, &v, err, sizeof(err)) == 0 &&
		    (v < 0 || v > STORE_VIEWERS_MAX))
			abort();
		break;
	}
	case 2: {
		int64_t v;
		if (store_parse_draining(s, len, &v, err, sizeof(err)) == 0 && v < 0)
			abort();
		break;
	}
	case 3: {
		struct store_publisher p;
		if (store_parse_publisher(s, len, &p, err, sizeof(err)) == 0) {
			size_t n = strnlen(p.participant_id, sizeof(p.participant_id));
			if (n == 0 || n > STORE_PARTICIPANT_ID_MAX)
				abort();
			if (p.stage_arn[0] != '\0' && !store_is_stage_arn(p.stage_arn, strlen(p.stage_arn)))
				abort();
		}
		break;
	}
	case 5: {
		/* a key: NUL-terminated copy; a record key's ARN must be a stage ARN */
		char *key = malloc(len + 1), arn[STORE_STAGE_ARN_MAX + 1];
		if (key == NULL)
			return 0;
		memcpy(key, s, len);
		key[len] = '\0';
		if (store_parse_record_key("ivs:", key, arn, sizeof(arn)) == 1 &&
		    !store_is_stage_arn(arn, strlen(arn)))
			abort();
		free(key);
		break;
	}
	default: {
		/* Stage ARNs, and the manual-replication members made of them. */
		struct store_manual_replication m;
		char back[2 * STORE_STAGE_ARN_MAX + STORE_PARTICIPANT_ID_MAX + 3];
		if (data[0] % 12 == 10) {
			/* stage:{arn} records: a parent is a stage ARN or nothing. */
			char parent[160];
			if (store_parse_stage_parent(s, len, parent, sizeof(parent), err, sizeof(err)) == 0 &&
			    parent[0] != '\0' && !store_is_stage_arn(parent, strlen(parent)))
				abort();
			break;
		}
		(void)store_is_stage_arn(s, len);
		if (store_parse_manual(s, len, &m, err, sizeof(err)) == 0 &&
		    (!store_is_stage_arn(m.src, strlen(m.src)) ||
		     !store_is_stage_arn(m.dst, strlen(m.dst)) ||
		     store_format_manual(back, sizeof(back), m.src, m.dst, m.participant) != (int)len ||
		     memcmp(back, s, len) != 0))
			abort();      /* a parsed member formats back to the same bytes */
		break;
	}
	}
	if (memchr(err, '\0', sizeof(err)) == NULL)
		abort();
	return 0;
}
