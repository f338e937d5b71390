/*
 * test_ownership.c — which fleet a stage belongs to, from its tags: a table of tag sets against
 * two configured fleets, with and without an owner.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ownership.h"

static const struct ownership_fleet fleets[] = {
	{ "main", "arn:aws:ivs:us-east-1:123456789012:stage/OriginProd" },
	{ "side", "arn:aws:ivs:us-east-1:123456789012:stage/OriginSide" },
};

struct row {
	const char *what;
	struct ownership_tags tags;
	const char *owner;
	enum stage_ownership want;
	size_t fleet;
};

#define NONE SIZE_MAX
static const struct row rows[] = {
	{ "untagged", { NULL, NULL, NULL, NULL }, NULL, STAGE_UNMANAGED, NONE },
	{ "managed=false", { "false", "main", "OriginProd", NULL }, NULL, STAGE_UNMANAGED, NONE },
	{ "managed=TRUE is not ours", { "TRUE", "main", "OriginProd", NULL }, NULL, STAGE_UNMANAGED, NONE },
	{ "ours", { "true", "main", "OriginProd", NULL }, NULL, STAGE_OWNED, 0 },
	{ "second fleet", { "true", "side", "OriginSide", NULL }, "", STAGE_OWNED, 1 },
	{ "same name, other origin", { "true", "main", "OriginStaging", NULL }, NULL, STAGE_FOREIGN, NONE },
	{ "origin of the other fleet", { "true", "main", "OriginSide", NULL }, NULL, STAGE_FOREIGN, NONE },
	{ "unknown fleet", { "true", "other", "OriginProd", NULL }, NULL, STAGE_FOREIGN, NONE },
	{ "no fleet tag", { "true", NULL, "OriginProd", NULL }, NULL, STAGE_FOREIGN, NONE },
	{ "0.1-style: no origin tag", { "true", "main", NULL, NULL }, NULL, STAGE_LEGACY, 0 },
	{ "0.1-style with an owner configured", { "true", "side", NULL, NULL }, "prod", STAGE_LEGACY, 1 },
	{ "0.1-style, unknown fleet", { "true", "gone", NULL, NULL }, NULL, STAGE_FOREIGN, NONE },
	{ "owner matches", { "true", "main", "OriginProd", "prod" }, "prod", STAGE_OWNED, 0 },
	{ "owner differs", { "true", "main", "OriginProd", "staging" }, "prod", STAGE_FOREIGN, NONE },
	{ "owner missing on the stage", { "true", "main", "OriginProd", NULL }, "prod", STAGE_FOREIGN, NONE },
	{ "owner tag, none configured", { "true", "main", "OriginProd", "prod" }, "", STAGE_OWNED, 0 },
	{ "no origin, other owner", { "true", "main", NULL, "staging" }, "prod", STAGE_FOREIGN, NONE },
	{ "owner is case-sensitive", { "true", "main", "OriginProd", "Prod" }, "prod", STAGE_FOREIGN, NONE },
	{ "origin is case-sensitive", { "true", "main", "originprod", NULL }, NULL, STAGE_FOREIGN, NONE },
	{ "empty origin tag", { "true", "main", "", NULL }, NULL, STAGE_FOREIGN, NONE },
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		size_t fleet = 42;
		enum stage_ownership got = ownership_classify(&rows[i].tags, fleets, 2, rows[i].owner,
							      &fleet);
		if (got != rows[i].want || fleet != rows[i].fleet)
			fail_msg("%s: got %s fleet %zu, want %s fleet %zu", rows[i].what,
				 ownership_name(got), fleet, ownership_name(rows[i].want), rows[i].fleet);
	}
}

static void test_origin_id(void **state)
{
	(void)state;
	assert_string_equal(ownership_origin_id("arn:aws:ivs:us-east-1:1:stage/AbC123"), "AbC123");
	assert_string_equal(ownership_origin_id("no-slash"), "no-slash");
	assert_string_equal(ownership_origin_id("ends/"), "");
	assert_string_equal(ownership_origin_id(NULL), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_origin_id),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
