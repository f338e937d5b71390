/*
 * creds_profile.c — the shared files (credentials and config): file locations, profile
 * selection, and the selected profile's static keys or credential_process.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creds_source.h"

int creds_home_path(const char *env, const char *suffix, char *out, size_t n)
{
	const char *v = creds_env_nonempty(env), *home;

	if (v != NULL) {
		if (v[0] == '~' && v[1] == '/') {
			if ((home = creds_env_nonempty("HOME")) == NULL)
				return -ENOENT;
			return (size_t)snprintf(out, n, "%s%s", home, v + 1) >= n ? -ENAMETOOLONG : 0;
		}
		return (size_t)snprintf(out, n, "%s", v) >= n ? -ENAMETOOLONG : 0;
	}
	if ((home = creds_env_nonempty("HOME")) == NULL)
		return -ENOENT;
	return (size_t)snprintf(out, n, "%s/%s", home, suffix) >= n ? -ENAMETOOLONG : 0;
}

const char *creds_selected_profile(const char *configured)
{
	const char *p;

	if (configured != NULL && configured[0] != '\0')
		return configured;
	if ((p = creds_env_nonempty("AWS_PROFILE")) != NULL)
		return p;
	return "default";
}

/* In config: [profile NAME], and for default also [default]. */
const struct ini_section *creds_config_section(const struct ini_file *cfg, const char *profile)
{
	const struct ini_section *s;

	if (cfg == NULL)
		return NULL;
	if (strcmp(profile, "default") == 0 && (s = ini_find_section(cfg, "default")) != NULL)
		return s;
	for (size_t i = 0; i < cfg->nsections; i++) {
		const char *name = cfg->sections[i].name;
		if (strncmp(name, "profile", 7) != 0 || (name[7] != ' ' && name[7] != '\t'))
			continue;
		name += 7;
		while (*name == ' ' || *name == '\t')
			name++;
		if (strcmp(name, profile) == 0)
			return &cfg->sections[i];
	}
	return NULL;
}

struct profile_files {
	char cred_path[1024], config_path[1024];
	struct ini_file *cred, *config;
	const struct ini_section *cred_sec, *config_sec;
};

/* The credentials file wins over the config file, key by key. */
static const char *profile_get(const struct profile_files *pf, const char *key)
{
	const char *v = ini_get(pf->cred_sec, key);

	return v != NULL ? v : ini_get(pf->config_sec, key);
}

/* 0 (files read, sections found or not), or -EINVAL with why for a malformed file. */
static int load_profile_files(const struct creds_options *opts, const char *profile,
			      struct profile_files *pf, char *why, size_t n)
{
	int r;

	memset(pf, 0, sizeof(*pf));
	if (opts != NULL && opts->credentials_file != NULL && opts->credentials_file[0] != '\0')
		snprintf(pf->cred_path, sizeof(pf->cred_path), "%s", opts->credentials_file);
	else if (creds_home_path("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials", pf->cred_path,
			   sizeof(pf->cred_path)) < 0)
		snprintf(pf->cred_path, sizeof(pf->cred_path), "~/.aws/credentials");
	if (creds_home_path("AWS_CONFIG_FILE", ".aws/config", pf->config_path,
		      sizeof(pf->config_path)) < 0)
		snprintf(pf->config_path, sizeof(pf->config_path), "~/.aws/config");
	if (pf->cred_path[0] != '~' &&
	    (r = ini_load_file(pf->cred_path, &pf->cred, why, n)) < 0 && r != -ENOENT)
		return r;
	if (pf->config_path[0] != '~' &&
	    (r = ini_load_file(pf->config_path, &pf->config, why, n)) < 0 && r != -ENOENT)
		return r;
	pf->cred_sec = ini_find_section(pf->cred, profile);
	pf->config_sec = creds_config_section(pf->config, profile);
	return 0;
}

static void profile_files_free(struct profile_files *pf)
{
	ini_free(pf->cred);
	ini_free(pf->config);
	memset(pf, 0, sizeof(*pf));
}

int creds_profile_try(const struct creds_options *opts, struct creds_source *src,
		       struct aws_credentials *out, char *tried, size_t tn, char *why, size_t n)
{
	const char *profile = creds_selected_profile(opts ? opts->profile : NULL);
	int explicit = strcmp(profile, "default") != 0 ||
		       (opts != NULL && opts->profile != NULL && opts->profile[0] != '\0') ||
		       creds_env_nonempty("AWS_PROFILE") != NULL;
	struct profile_files pf;
	const char *akid, *secret, *process;
	int r;

	if ((r = load_profile_files(opts, profile, &pf, why, n)) < 0)
		goto out;
	if (pf.cred_sec == NULL && pf.config_sec == NULL) {
		if (explicit) {
			snprintf(why, n, "shared files: profile \"%s\" is in neither %.300s nor %.300s",
				 profile, pf.cred_path, pf.config_path);
			r = -ENOENT;
			goto out;
		}
		creds_err_append(tried, tn, ", shared files (no profile \"%.64s\" in %.300s or %.300s)", profile,
			   pf.cred_path, pf.config_path);
		creds_err_append(tried, tn, ", credential_process (no profile)");
		r = 0;
		goto out;
	}
	akid = profile_get(&pf, "aws_access_key_id");
	secret = profile_get(&pf, "aws_secret_access_key");
	if (akid != NULL && akid[0] == '\0')
		akid = NULL;
	if (secret != NULL && secret[0] == '\0')
		secret = NULL;
	if (akid != NULL && secret != NULL) {
		const char *token = profile_get(&pf, "aws_session_token");
		if (token == NULL)
			token = profile_get(&pf, "aws_security_token");
		src->kind = CREDS_SRC_FILES;
		r = creds_set_static(out, akid, secret, token) < 0 ? -ENOMEM : 1;
		goto out;
	}
	if (akid != NULL || secret != NULL) {
		snprintf(why, n, "shared files: profile \"%s\" has %s but not %s", profile,
			 akid ? "aws_access_key_id" : "aws_secret_access_key",
			 akid ? "aws_secret_access_key" : "aws_access_key_id");
		r = -EINVAL;
		goto out;
	}
	process = profile_get(&pf, "credential_process");
	if (process != NULL && process[0] != '\0') {
		char inner[512] = "";
		src->kind = CREDS_SRC_PROCESS;
		if ((src->command = strdup(process)) == NULL) {
			r = -ENOMEM;
			goto out;
		}
		if ((r = creds_process_fetch(src, out, inner, sizeof(inner))) < 0) {
			snprintf(why, n, "profile \"%s\": %s", profile, inner);
			goto out;
		}
		r = 1;
		goto out;
	}
	if (profile_get(&pf, "role_arn") != NULL || profile_get(&pf, "sso_session") != NULL ||
	    profile_get(&pf, "sso_start_url") != NULL) {
		snprintf(why, n, "shared files: profile \"%s\" uses role_arn or SSO, which this "
				 "daemon does not support; use static keys, credential_process, or "
				 "an instance/container role", profile);
		r = -ENOTSUP;
		goto out;
	}
	creds_err_append(tried, tn, ", shared files (profile \"%s\" has no keys)", profile);
	creds_err_append(tried, tn, ", credential_process (not in profile \"%s\")", profile);
	r = 0;
out:
	profile_files_free(&pf);
	return r;
}

