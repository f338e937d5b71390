/*
 * creds_profile.c — the shared files (credentials and config): file locations, profile
 * selection, and the selected profile's static keys or credential_process.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creds_source.h"
#include "util.h"

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

/* A profile's keys: the credentials file wins over the config file, key by key. */
struct profile {
	const char *name;
	const struct ini_section *cred, *config;
};

static const char *get(const struct profile *p, const char *key)
{
	const char *v = ini_get(p->cred, key);

	return v != NULL ? v : ini_get(p->config, key);
}

/* NULL when absent or empty. */
static const char *get_nonempty(const struct profile *p, const char *key)
{
	const char *v = get(p, key);

	return v != NULL && v[0] != '\0' ? v : NULL;
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

/* ---- resolution: from the profile's keys to a source, without I/O ---- */

struct resolve_ctx {
	const struct profile_files *pf;
	const struct creds_options *opts;
	const char *chain[CREDS_MAX_ROLE_CHAIN + 1];   /* profile names, selected first */
	char *why;
	size_t n;
};

static int resolve(struct resolve_ctx *ctx, int depth, struct creds_source *src);

static int fail(struct resolve_ctx *ctx, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct resolve_ctx *ctx, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctx->why, ctx->n, fmt, ap);
	va_end(ap);
	return r;
}

static int valid_chars(const char *s, const char *extra)
{
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr(extra, *s) != NULL))
			return 0;
	return 1;
}

static int set_static_source(struct creds_source *src, enum creds_source_kind kind,
			     const char *akid, const char *secret, const char *token)
{
	src->kind = kind;
	return creds_set_static(&src->fixed, akid, secret, token);
}

/* credential_source = Environment | Ec2InstanceMetadata | EcsContainer */
static int resolve_credential_source(struct resolve_ctx *ctx, const struct profile *p,
				     const char *value, struct creds_source *base)
{
	int r;

	if (strcmp(value, "Environment") == 0) {
		const char *akid = creds_env_nonempty("AWS_ACCESS_KEY_ID");
		const char *secret = creds_env_nonempty("AWS_SECRET_ACCESS_KEY");
		if (akid == NULL || secret == NULL)
			return fail(ctx, -EINVAL, "profile \"%s\": credential_source = Environment "
				    "but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set",
				    p->name);
		return set_static_source(base, CREDS_SRC_ENV, akid, secret,
					 creds_env_nonempty("AWS_SESSION_TOKEN")) < 0 ? -ENOMEM : 1;
	}
	if (strcmp(value, "Ec2InstanceMetadata") == 0) {
		if ((r = creds_imds_configure(base)) == 0)
			return fail(ctx, -EINVAL, "profile \"%s\": credential_source = "
				    "Ec2InstanceMetadata but AWS_EC2_METADATA_DISABLED is true", p->name);
		return r;
	}
	if (strcmp(value, "EcsContainer") == 0) {
		char inner[400] = "";
		if ((r = creds_container_configure(base, inner, sizeof(inner))) == 0)
			return fail(ctx, -EINVAL, "profile \"%s\": credential_source = EcsContainer "
				    "but AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI are unset",
				    p->name);
		if (r < 0)
			return fail(ctx, r, "profile \"%s\": %s", p->name, inner);
		return r;
	}
	return fail(ctx, -EINVAL, "profile \"%s\": credential_source \"%.64s\" is not one of "
		    "Environment, Ec2InstanceMetadata, EcsContainer", p->name, value);
}

static int resolve_role(struct resolve_ctx *ctx, int depth, const struct profile *p,
			int has_static, struct creds_source *src)
{
	const char *role = get_nonempty(p, "role_arn");
	const char *source_profile = get_nonempty(p, "source_profile");
	const char *credential_source = get_nonempty(p, "credential_source");
	const char *token_file = get_nonempty(p, "web_identity_token_file");
	const char *session = get_nonempty(p, "role_session_name");
	const char *external_id = get_nonempty(p, "external_id");
	const char *duration = get_nonempty(p, "duration_seconds");
	char name[80];
	uint64_t seconds = 3600;
	int r;

	if (get_nonempty(p, "mfa_serial") != NULL)
		return fail(ctx, -ENOTSUP, "profile \"%s\": mfa_serial is set, but a daemon cannot "
			    "prompt for an MFA code; use a role whose trust policy does not require "
			    "MFA for this host", p->name);
	if (strncmp(role, "arn:", 4) != 0 || strlen(role) < 20 || strlen(role) > 2048)
		return fail(ctx, -EINVAL, "profile \"%s\": role_arn \"%.100s\" is not a role ARN",
			    p->name, role);
	if (token_file != NULL && (source_profile != NULL || credential_source != NULL))
		return fail(ctx, -EINVAL, "profile \"%s\": web_identity_token_file cannot be combined "
			    "with %s", p->name, source_profile ? "source_profile" : "credential_source");
	if (source_profile != NULL && credential_source != NULL)
		return fail(ctx, -EINVAL, "profile \"%s\": source_profile and credential_source "
			    "cannot both be set", p->name);
	if (token_file == NULL && source_profile == NULL && credential_source == NULL)
		return fail(ctx, -EINVAL, "profile \"%s\": role_arn needs source_profile, "
			    "credential_source or web_identity_token_file", p->name);
	if (session == NULL) {
		creds_default_session_name(name, sizeof(name));
		session = name;
	} else if (strlen(session) < 2 || strlen(session) > 64 || !valid_chars(session, "_+=,.@-")) {
		return fail(ctx, -EINVAL, "profile \"%s\": role_session_name must be 2 to 64 of "
			    "A-Z a-z 0-9 _+=,.@-", p->name);
	}
	if (external_id != NULL &&
	    (strlen(external_id) < 2 || strlen(external_id) > 1224 ||
	     !valid_chars(external_id, "_+=,.@:/-")))
		return fail(ctx, -EINVAL, "profile \"%s\": external_id must be 2 to 1224 of "
			    "A-Z a-z 0-9 _+=,.@:/-", p->name);
	if (duration != NULL && (parse_uint64(duration, 43200, &seconds) < 0 || seconds < 900))
		return fail(ctx, -EINVAL, "profile \"%s\": duration_seconds must be 900 to 43200, "
			    "not \"%.32s\"", p->name, duration);
	src->kind = token_file != NULL ? CREDS_SRC_WEB_IDENTITY : CREDS_SRC_ASSUME_ROLE;
	src->duration_seconds = (int)seconds;
	if ((src->role_arn = strdup(role)) == NULL || (src->session_name = strdup(session)) == NULL ||
	    (src->profile = strdup(p->name)) == NULL ||
	    (external_id != NULL && (src->external_id = strdup(external_id)) == NULL) ||
	    (token_file != NULL && (src->token_file = strdup(token_file)) == NULL))
		return -ENOMEM;
	if ((r = creds_sts_configure(src, ctx->opts ? ctx->opts->region : NULL, ctx->why,
				     ctx->n)) < 0)
		return r;
	if (token_file != NULL)
		return 1;
	if ((src->base = calloc(1, sizeof(*src->base))) == NULL)
		return -ENOMEM;
	if (credential_source != NULL)
		return resolve_credential_source(ctx, p, credential_source, src->base);
	if (strcmp(source_profile, p->name) == 0) {
		/* A profile may name itself only to use its own keys for its role. */
		if (!has_static)
			return fail(ctx, -EINVAL, "profile \"%s\" is its own source_profile but has no "
				    "static keys", p->name);
		return set_static_source(src->base, CREDS_SRC_FILES, get(p, "aws_access_key_id"),
					 get(p, "aws_secret_access_key"),
					 get(p, "aws_session_token")) < 0 ? -ENOMEM : 1;
	}
	for (int i = 0; i <= depth; i++) {
		if (strcmp(ctx->chain[i], source_profile) != 0)
			continue;
		char path[512] = "";
		for (int j = 0; j <= depth; j++)
			creds_err_append(path, sizeof(path), "%s -> ", ctx->chain[j]);
		return fail(ctx, -ELOOP, "profiles form a cycle through source_profile: %s%s", path,
			    source_profile);
	}
	if (depth + 1 > CREDS_MAX_ROLE_CHAIN)
		return fail(ctx, -ELOOP, "profile \"%s\": more than %d source_profile hops from "
			    "profile \"%s\"", p->name, CREDS_MAX_ROLE_CHAIN, ctx->chain[0]);
	ctx->chain[depth + 1] = source_profile;
	return resolve(ctx, depth + 1, src->base);
}

/*
 * The selected profile (depth 0): role_arn > static keys > credential_process, as aws-c-auth.
 * A source profile further down the chain: static keys > role_arn > credential_process.
 */
static int resolve(struct resolve_ctx *ctx, int depth, struct creds_source *src)
{
	const char *name = ctx->chain[depth];
	struct profile p = { name, ini_find_section(ctx->pf->cred, name),
			     creds_config_section(ctx->pf->config, name) };
	const char *akid, *secret, *process, *role;

	if (p.cred == NULL && p.config == NULL)
		return fail(ctx, -ENOENT, "shared files: profile \"%s\"%s%s%s is in neither %.300s nor "
			    "%.300s", name, depth > 0 ? " (source_profile of \"" : "",
			    depth > 0 ? ctx->chain[depth - 1] : "", depth > 0 ? "\")" : "",
			    ctx->pf->cred_path, ctx->pf->config_path);
	akid = get_nonempty(&p, "aws_access_key_id");
	secret = get_nonempty(&p, "aws_secret_access_key");
	if ((akid != NULL) != (secret != NULL))
		return fail(ctx, -EINVAL, "shared files: profile \"%s\" has %s but not %s", name,
			    akid ? "aws_access_key_id" : "aws_secret_access_key",
			    akid ? "aws_secret_access_key" : "aws_access_key_id");
	role = get_nonempty(&p, "role_arn");
	if (role != NULL && (depth == 0 || akid == NULL))
		return resolve_role(ctx, depth, &p, akid != NULL, src);
	if (akid != NULL) {
		const char *token = get(&p, "aws_session_token");
		if (token == NULL)
			token = get(&p, "aws_security_token");
		return set_static_source(src, CREDS_SRC_FILES, akid, secret, token) < 0 ? -ENOMEM : 1;
	}
	process = get_nonempty(&p, "credential_process");
	if (process != NULL) {
		src->kind = CREDS_SRC_PROCESS;
		return (src->command = strdup(process)) == NULL ? -ENOMEM : 1;
	}
	if (get(&p, "sso_session") != NULL || get(&p, "sso_start_url") != NULL)
		return fail(ctx, -ENOTSUP, "shared files: profile \"%s\" uses SSO, which this daemon "
			    "does not support; use a role, static keys, credential_process, or an "
			    "instance/container role", name);
	if (depth > 0)
		return fail(ctx, -EINVAL, "shared files: profile \"%s\" (source_profile of \"%s\") "
			    "holds no credentials", name, ctx->chain[depth - 1]);
	return 0;
}

static int resolve_selected(const struct creds_options *opts, const struct profile_files *pf,
			    const char *profile, struct creds_source *src, char *why, size_t n)
{
	struct resolve_ctx ctx = { .pf = pf, .opts = opts, .why = why, .n = n };

	ctx.chain[0] = profile;
	return resolve(&ctx, 0, src);
}

int creds_profile_source(const struct creds_options *opts, const char *profile,
			 struct creds_source *src, char *why, size_t n)
{
	struct profile_files pf;
	int r;

	if ((r = load_profile_files(opts, profile, &pf, why, n)) == 0)
		r = resolve_selected(opts, &pf, profile, src, why, n);
	profile_files_free(&pf);
	return r;
}

int creds_profile_try(const struct creds_options *opts, struct creds_source *src,
		      struct aws_credentials *out, char *tried, size_t tn, char *why, size_t n)
{
	const char *profile = creds_selected_profile(opts ? opts->profile : NULL);
	int explicit = strcmp(profile, "default") != 0 ||
		       (opts != NULL && opts->profile != NULL && opts->profile[0] != '\0') ||
		       creds_env_nonempty("AWS_PROFILE") != NULL;
	struct profile_files pf;
	char inner[768] = "";
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
		creds_err_append(tried, tn, ", shared files (no profile \"%.64s\" in %.300s or %.300s)",
				 profile, pf.cred_path, pf.config_path);
		creds_err_append(tried, tn, ", credential_process (no profile)");
		r = 0;
		goto out;
	}
	if ((r = resolve_selected(opts, &pf, profile, src, why, n)) <= 0) {
		if (r == 0) {
			creds_err_append(tried, tn, ", shared files (profile \"%s\" has no keys)", profile);
			creds_err_append(tried, tn, ", credential_process (not in profile \"%s\")",
					 profile);
		}
		goto out;
	}
	switch (src->kind) {
	case CREDS_SRC_FILES:
		r = aws_credentials_copy(out, &src->fixed) < 0 ? -ENOMEM : 1;
		break;
	case CREDS_SRC_PROCESS:
		if ((r = creds_process_fetch(src, out, inner, sizeof(inner))) < 0)
			snprintf(why, n, "profile \"%s\": %s", profile, inner);
		else
			r = 1;
		break;
	default:
		/* A role: STS may refuse now and accept later (a trust policy being fixed, a
		 * throttled burst); the provider starts and its refresh thread retries. */
		r = creds_sts_fetch(src, out, why, n) < 0 ? 2 : 1;
		break;
	}
out:
	profile_files_free(&pf);
	return r;
}
