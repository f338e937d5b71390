/*
 * ownership.c — see ownership.h.
 */
#include "ownership.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

const char *ownership_origin_id(const char *arn)
{
	const char *slash = arn != NULL ? strrchr(arn, '/') : NULL;
	return slash != NULL ? slash + 1 : arn != NULL ? arn : "";
}

static bool same(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

enum stage_ownership ownership_classify(const struct ownership_tags *tags,
					const struct ownership_fleet *fleets, size_t n_fleets,
					const char *owner, size_t *fleet)
{
	bool have_owner = owner != NULL && owner[0] != '\0';

	*fleet = SIZE_MAX;
	if (!same(tags->managed, "true"))
		return STAGE_UNMANAGED;
	for (size_t i = 0; i < n_fleets; i++) {
		if (!same(tags->fleet, fleets[i].name))
			continue;
		/* Fleet names are unique in a configuration: this is the only candidate. */
		if (tags->origin == NULL) {
			if (have_owner && tags->owner != NULL && strcmp(tags->owner, owner) != 0)
				return STAGE_FOREIGN;
			*fleet = i;
			return STAGE_LEGACY;
		}
		if (strcmp(tags->origin, ownership_origin_id(fleets[i].origin_arn)) != 0)
			return STAGE_FOREIGN;
		if (have_owner && !same(tags->owner, owner))
			return STAGE_FOREIGN;
		*fleet = i;
		return STAGE_OWNED;
	}
	return STAGE_FOREIGN;
}

const char *ownership_name(enum stage_ownership o)
{
	switch (o) {
	case STAGE_UNMANAGED: return "unmanaged";
	case STAGE_OWNED: return "owned";
	case STAGE_LEGACY: return "legacy";
	case STAGE_FOREIGN: return "foreign-managed";
	}
	return "?";
}
