/*
 * creds_region.c — the AWS region: configured, AWS_REGION, AWS_DEFAULT_REGION, or the
 * profile's region in the config file.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "creds_source.h"

static int valid_region(const char *r)
{
	size_t n = strlen(r);

	if (n == 0 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
			return 0;
	return 1;
}

int creds_resolve_region(const char *configured, const char *profile, char *out, size_t n,
			 char *err, size_t errlen)
{
	const char *v = NULL, *from = NULL, *name = creds_selected_profile(profile);
	struct ini_file *cfg = NULL;
	char path[1024] = "~/.aws/config", why[512] = "", imds[64];
	int r;

	if (errlen > 0)
		err[0] = '\0';
	if (configured != NULL && configured[0] != '\0') {
		v = configured;
		from = "aws.region";
	} else if ((v = creds_env_nonempty("AWS_REGION")) != NULL) {
		from = "AWS_REGION";
	} else if ((v = creds_env_nonempty("AWS_DEFAULT_REGION")) != NULL) {
		from = "AWS_DEFAULT_REGION";
	} else {
		if (creds_home_path("AWS_CONFIG_FILE", ".aws/config", path, sizeof(path)) == 0) {
			r = ini_load_file(path, &cfg, why, sizeof(why));
			if (r < 0 && r != -ENOENT) {
				snprintf(err, errlen, "AWS region: %s", why);
				return r;
			}
		}
		v = ini_get(creds_config_section(cfg, name), "region");
		from = "profile";
		if (v == NULL || v[0] == '\0') {
			/* On EC2, as the SDKs do: the instance's own region. */
			if (creds_imds_region(imds, sizeof(imds), why, sizeof(why)) == 0) {
				v = imds;
				from = "IMDS placement/region";
			}
		}
		if (v == NULL || v[0] == '\0') {
			snprintf(err, errlen, "no AWS region: set aws.region, AWS_REGION or "
					      "AWS_DEFAULT_REGION, or region in profile \"%.64s\" of %.300s "
					      "(IMDS: %.200s)",
				 name, path, why);
			ini_free(cfg);
			return -ENOENT;
		}
	}
	if (!valid_region(v)) {
		snprintf(err, errlen, "AWS region from %s is not a region name: \"%.64s\"", from, v);
		r = -EINVAL;
	} else if ((size_t)snprintf(out, n, "%s", v) >= n) {
		snprintf(err, errlen, "AWS region too long for the buffer");
		r = -ENAMETOOLONG;
	} else {
		r = 0;
	}
	ini_free(cfg);
	return r;
}

