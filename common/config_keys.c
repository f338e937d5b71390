/*
 * config_keys.c — Redis key templates (see config.h and config_internal.h): {fleet} and {arn}
 * expansion, each fleet's full keys, and the rule that no two fleets share a key.
 */
#include "config_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

/* keep_arn: leave {arn} in place (the per-fleet viewers template is expanded per stage later). */
static int expand_template(const char *template, const char *fleet, const char *arn, bool keep_arn,
			   char *out, size_t size)
{
	size_t used = 0;

	if (size == 0)
		return -ENAMETOOLONG;
	for (const char *p = template; *p != '\0';) {
		const char *piece = p;
		size_t len = 1;

		if (str_has_prefix(p, "{fleet}")) {
			if (fleet == NULL)
				return -EINVAL;
			piece = fleet;
			len = strlen(fleet);
			p += 7;
		} else if (str_has_prefix(p, "{arn}") && !keep_arn) {
			if (arn == NULL)
				return -EINVAL;
			piece = arn;
			len = strlen(arn);
			p += 5;
		} else {
			p++;
		}
		if (len >= size - used) {
			out[0] = '\0';
			return -ENAMETOOLONG;
		}
		memcpy(out + used, piece, len);
		used += len;
	}
	out[used] = '\0';
	return (int)used;
}

int config_expand_key(const char *template, const char *fleet, const char *arn, char *out, size_t size)
{
	return expand_template(template, fleet, arn, false, out, size);
}

static const struct {
	const char *name;
	size_t offset;
} key_kinds[] = {
	{ "viewers", offsetof(struct config_keys, viewers) },
	{ "publisher", offsetof(struct config_keys, publisher) },
	{ "desired_stages", offsetof(struct config_keys, desired_stages) },
	{ "open_stages", offsetof(struct config_keys, open_stages) },
};
#define KEY_SLOT(keys, i) (*(char **)((char *)(keys) + key_kinds[i].offset))

void config_resolve_fleet_keys(struct loader *l)
{
	struct config *cfg = l->cfg;

	for (size_t i = 0; i < cfg->n_fleets; i++) {
		struct config_fleet *f = &cfg->fleets[i];
		const struct node *at = l->fleet_keys_nodes[i] ? l->fleet_keys_nodes[i] : l->fleet_nodes[i];
		char path[64];

		if (f->name == NULL)
			continue;  /* already reported as missing */
		snprintf(path, sizeof(path), "fleets[%zu].keys", i);
		for (size_t k = 0; k < sizeof(key_kinds) / sizeof(key_kinds[0]); k++) {
			char full[CONFIG_KEY_MAX], prefixed[CONFIG_KEY_MAX];
			char **tmpl = &KEY_SLOT(&f->keys, k);
			int n;

			if (*tmpl == NULL && config_set_string(tmpl, KEY_SLOT(&cfg->redis.keys, k)) < 0) {
				config_node_error(l, at, path, "out of memory");
				return;
			}
			n = snprintf(prefixed, sizeof(prefixed), "%s%s", cfg->redis.key_prefix, *tmpl);
			if (n < 0 || (size_t)n >= sizeof(prefixed) ||
			    expand_template(prefixed, f->name, NULL, true, full, sizeof(full)) < 0) {
				config_node_error(l, at, path, "the %s key is longer than %d bytes", key_kinds[k].name,
						  CONFIG_KEY_MAX - 1);
				continue;
			}
			if (config_set_string(&KEY_SLOT(&f->redis_keys, k), full) < 0)
				config_node_error(l, at, path, "out of memory");
		}
	}
}

/*
 * Two fleets writing the same Redis key would silently fight over it, so any collision among
 * the per-fleet keys (publisher, desired_stages, open_stages) of different fleets — or of the
 * same fleet — is an error. viewers is per stage ({arn}), so it cannot collide.
 */
void config_check_key_collisions(struct loader *l)
{
	struct config *cfg = l->cfg;
	const size_t nk = sizeof(key_kinds) / sizeof(key_kinds[0]);

	for (size_t i = 0; i < cfg->n_fleets; i++) {
		for (size_t ki = 1; ki < nk; ki++) {
			const char *a = KEY_SLOT(&cfg->fleets[i].redis_keys, ki);
			bool reported = false;
			if (a == NULL)
				continue;
			for (size_t j = 0; j <= i && !reported; j++) {
				for (size_t kj = 1; kj < nk && !reported; kj++) {
					const char *b = KEY_SLOT(&cfg->fleets[j].redis_keys, kj);
					const struct node *at;
					char path[64];
					if (b == NULL || (j == i && kj >= ki) || strcmp(a, b) != 0)
						continue;
					at = l->fleet_keys_nodes[i] ? l->fleet_keys_nodes[i] : l->fleet_nodes[i];
					snprintf(path, sizeof(path), "fleets[%zu].keys.%s", i, key_kinds[ki].name);
					config_node_error(l, at, path,
							  "Redis key \"%s\" of fleet \"%s\" is also the %s key of fleet "
							  "\"%s\"; a template shared by two fleets is a config error: "
							  "put {fleet} in it or set keys.%s for each fleet",
							  a, cfg->fleets[i].name, key_kinds[kj].name,
							  cfg->fleets[j].name, key_kinds[ki].name);
					reported = true;
				}
			}
		}
	}
}
