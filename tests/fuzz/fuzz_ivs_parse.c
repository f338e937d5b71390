/*
 * fuzz_ivs_parse.c — every IVS response parser (and the error classifier) over the same
 * input, so one corpus covers them all.
 */
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "ivs_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	char next[IVS_NEXT_TOKEN_MAX + 1];
	struct ivs_stage stage;
	struct ivs_participant participant;
	struct ivs_stage_list stages = { 0 };
	struct ivs_participant_list participants = { 0 };
	struct ivs_replica_list replicas = { 0 };
	struct aws_error err;

	if (ivs_parse_stage_response(body, size, &stage, &err) == 0)
		ivs_stage_clear(&stage);
	(void)ivs_parse_participant_response(body, size, &participant, &err);
	/* parse twice into the same list so the append path is exercised */
	(void)ivs_parse_stage_page(body, size, &stages, next, &err);
	(void)ivs_parse_stage_page(body, size, &stages, next, &err);
	ivs_stage_list_clear(&stages);
	(void)ivs_parse_participant_page(body, size, &participants, next, &err);
	ivs_participant_list_clear(&participants);
	(void)ivs_parse_replica_page(body, size, &replicas, next, &err);
	ivs_replica_list_clear(&replicas);
	aws_error_from_response(&err, 400, NULL, NULL, body, size);
	return 0;
}
