/*
 * ownership.h — which fleet a stage belongs to, from its IVS tags alone (pure).
 *
 * The daemon tags every stage it creates with
 *   ivs-autoscaler:managed=true, ivs-autoscaler:fleet=<name>,
 *   ivs-autoscaler:origin=<origin stage id>   (the last segment of the origin stage ARN),
 *   ivs-autoscaler:owner=<controller.owner>   (only when an owner is configured).
 * A stage belongs to a fleet only when its fleet AND origin tags (AND owner tag, when this
 * daemon has an owner) match that fleet. A managed stage that matches no configured fleet is
 * foreign-managed: another deployment's, shown but never planned on, fed, drained or deleted.
 * A managed stage without an origin tag (tagged by version 0.1) whose fleet tag names one of
 * our fleets is a legacy candidate: adopted only when its Redis stage:{arn} record names that
 * fleet's origin as parentStage (the caller checks), then given the missing tags.
 */
#ifndef IVS_OWNERSHIP_H
#define IVS_OWNERSHIP_H

#include <stddef.h>

#define TAG_MANAGED   "ivs-autoscaler:managed"
#define TAG_FLEET     "ivs-autoscaler:fleet"
#define TAG_ORIGIN    "ivs-autoscaler:origin"
#define TAG_OWNER     "ivs-autoscaler:owner"
#define TAG_CREATED   "ivs-autoscaler:created"
/* Tags of ours on a created stage, at most (managed, fleet, origin, owner, created). */
#define OWNERSHIP_TAGS_MAX 5

enum stage_ownership {
	STAGE_UNMANAGED,         /* no managed=true tag: not ours, not shown */
	STAGE_OWNED,             /* *fleet is the index of the owning fleet */
	STAGE_LEGACY,            /* 0.1-style; *fleet may adopt it if its parentStage record agrees */
	STAGE_FOREIGN,           /* managed by another deployment */
};

struct ownership_fleet {
	const char *name;
	const char *origin_arn;
};

/* The tags of one stage (NULL = absent). */
struct ownership_tags {
	const char *managed;
	const char *fleet;
	const char *origin;
	const char *owner;
};

/*
 * Classify a stage. owner is controller.owner ("" or NULL = none configured). A configured
 * origin stage is never classified here (the caller checks origins first). *fleet is set for
 * STAGE_OWNED and STAGE_LEGACY, else SIZE_MAX.
 */
enum stage_ownership ownership_classify(const struct ownership_tags *tags,
					const struct ownership_fleet *fleets, size_t n_fleets,
					const char *owner, size_t *fleet);

/* The stage id of an ARN: the text after the last '/' (the whole string without one). */
const char *ownership_origin_id(const char *arn);

const char *ownership_name(enum stage_ownership o);

#endif
