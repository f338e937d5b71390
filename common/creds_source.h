/*
 * creds_source.h — the interface between the credentials chain (creds.c) and the sources it
 * asks, one file each: creds_env.c, creds_profile.c (shared files), creds_process.c,
 * creds_container.c, creds_imds.c. Internal to the credentials code; the rest of the daemon
 * uses creds.h.
 *
 * Each source has two entry points:
 *   creds_X_try():   at start-up, decide whether the source is configured. 1 with credentials
 *                    in *out and *src filled for later refreshes; 0 when not configured (a
 *                    note is appended to tried, ", "-separated); <0 when configured but failing
 *                    (a one-line reason in why).
 *   creds_X_fetch(): fetch again from a filled *src (the refresh thread); 0 or <0 with why.
 * Fetches block (short timeouts) and never run on the event loop.
 */
#ifndef IVS_CREDS_SOURCE_H
#define IVS_CREDS_SOURCE_H

#include <stddef.h>

#include <curl/curl.h>

#include "aws_credentials.h"
#include "creds.h"
#include "ini.h"

/* Responses and process output larger than this are refused. */
#define CREDS_MAX_BODY (64 * 1024)

enum creds_source_kind {
	CREDS_SRC_ENV,
	CREDS_SRC_FILES,
	CREDS_SRC_PROCESS,
	CREDS_SRC_CONTAINER,
	CREDS_SRC_IMDS,
	CREDS_SRC_ASSUME_ROLE,
	CREDS_SRC_WEB_IDENTITY,
};

/* Longest chain of source_profile hops from the selected profile. */
#define CREDS_MAX_ROLE_CHAIN 5

/* What a refresh needs to fetch again. */
struct creds_source {
	enum creds_source_kind kind;
	char *command;          /* credential_process */
	char *url;              /* container */
	char *auth_token;       /* container, literal */
	char *auth_token_file;  /* container, read on every fetch */
	char *endpoint;         /* IMDS base URL, no trailing '/' */
	struct aws_credentials fixed; /* environment, shared-files as the base of a role */
	/* assume-role, web-identity */
	char *role_arn;
	char *session_name;
	char *external_id;      /* assume-role, may be NULL */
	char *token_file;       /* web-identity, read on every fetch */
	char *profile;          /* the profile that named the role (messages), NULL for env */
	char *sts_url;          /* "https://sts.REGION.amazonaws.com", no trailing '/' */
	char *sts_region;       /* the SigV4 scope region */
	int duration_seconds;   /* assume-role, 900..43200 */
	struct creds_source *base; /* assume-role: the credentials that sign the call (owned) */
};

/* "environment", "shared-files", ... for log lines and creds_provider_source(). */
const char *creds_source_name(enum creds_source_kind kind);
int creds_source_fetch(const struct creds_source *src, struct aws_credentials *out, char *why,
		       size_t n);
void creds_source_clear(struct creds_source *s);

/* ---- the sources ---- */

int creds_env_try(struct aws_credentials *out, char *tried, size_t tn, char *why, size_t n);
/* Returns 2 (configured, first STS call failed: why says why, refresh retries) as well. */
int creds_profile_try(const struct creds_options *opts, struct creds_source *src,
		      struct aws_credentials *out, char *tried, size_t tn, char *why, size_t n);
int creds_process_fetch(const struct creds_source *src, struct aws_credentials *out, char *why,
			size_t n);
int creds_container_try(struct creds_source *src, struct aws_credentials *out, char *tried,
			size_t tn, char *why, size_t n);
int creds_container_fetch(const struct creds_source *src, struct aws_credentials *out,
			  char *why, size_t n);
int creds_imds_try(struct creds_source *src, struct aws_credentials *out, char *tried, size_t tn);
/* Fill src for the container endpoint from the environment: 1, 0 (variables unset), <0. */
int creds_container_configure(struct creds_source *src, char *why, size_t n);
/* Fill src for IMDS: 1, 0 (disabled by AWS_EC2_METADATA_DISABLED), <0. */
int creds_imds_configure(struct creds_source *src);
/* The instance's region from IMDSv2 (placement/region). 0 or <0 with why. */
int creds_imds_region(char *out, size_t size, char *why, size_t n);
int creds_imds_fetch(const struct creds_source *src, struct aws_credentials *out, char *why,
		     size_t n);

/*
 * STS (creds_sts.c): AssumeRole signed with the base source's credentials, and
 * AssumeRoleWithWebIdentity (unsigned) with the token file read again at every fetch. Both
 * retry throttling, server and network errors a few times before giving up.
 */
int creds_sts_fetch(const struct creds_source *src, struct aws_credentials *out, char *why,
		    size_t n);
/*
 * The STS endpoint for src: AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL, else
 * https://sts.REGION.amazonaws.com (region NULL/"": https://sts.amazonaws.com, scope us-east-1).
 * https only, or http to a loopback address. 0 or -EINVAL with why.
 */
int creds_sts_configure(struct creds_source *src, const char *region, char *why, size_t n);
/* The default RoleSessionName: "ivs-autoscaler-HOST", cut to STS's 64 characters. */
void creds_default_session_name(char *out, size_t n);
/* Web identity from AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (+ AWS_ROLE_SESSION_NAME). */
int creds_web_identity_try(const struct creds_options *opts, struct creds_source *src,
			   struct aws_credentials *out, char *tried, size_t tn, char *why, size_t n);

/* ---- shared files (creds_profile.c), also used for the region ---- */

/*
 * The source the profile describes, without any I/O: role_arn (with web_identity_token_file,
 * source_profile or credential_source), static keys, credential_process. 1 with *src filled,
 * 0 when the profile holds no credentials, -ENOENT when it is in neither file, other <0 for a
 * misconfiguration (cycles, chains deeper than CREDS_MAX_ROLE_CHAIN, conflicting keys,
 * mfa_serial, SSO) with why.
 */
int creds_profile_source(const struct creds_options *opts, const char *profile,
			 struct creds_source *src, char *why, size_t n);

/* $env (with "~/" expanded), else $HOME/suffix. 0, -ENOENT (no HOME), -ENAMETOOLONG. */
int creds_home_path(const char *env, const char *suffix, char *out, size_t n);
/* configured (non-empty), else AWS_PROFILE, else "default". */
const char *creds_selected_profile(const char *configured);
/* In the config file: [profile NAME], and for default also [default]. NULL when absent. */
const struct ini_section *creds_config_section(const struct ini_file *cfg, const char *profile);

/* ---- credential documents (creds_json.c) ---- */

struct creds_json_shape {
	const char *token_key;   /* "SessionToken" (process) or "Token" */
	int need_token, need_expiration, need_version;
};

/* The JSON document of credential_process, the container endpoint or IMDS. 0 or <0 + why. */
int creds_parse_json(const char *body, size_t len, const struct creds_json_shape *shape,
		     struct aws_credentials *out, char *why, size_t n);

/* ---- blocking HTTP for the metadata endpoints (creds_http.c) ---- */

struct creds_body {
	char *data;
	size_t len;
	int too_big;
};

/* A curl write callback appending to a struct creds_body, at most CREDS_MAX_BODY bytes. */
size_t creds_body_write(char *ptr, size_t size, size_t nmemb, void *userdata);
/* Wipe and free. */
void creds_body_free(struct creds_body *b);
/*
 * One request to a metadata endpoint on a fresh easy handle: no proxy, no redirects, 1 s to
 * connect, total_ms in all.
 * 0 with the status and body, or <0 with why.
 */
int creds_http_request(const char *method, const char *url, struct curl_slist *headers,
		       long total_ms, long *status, struct creds_body *out, char *why, size_t n);

/* A form POST (STS): like creds_http_request, but proxies from the environment are used. */
int creds_http_post(const char *url, struct curl_slist *headers, const char *data, size_t len,
		    long total_ms, long *status, struct creds_body *out, char *why, size_t n);

/* ---- small helpers (creds.c) ---- */

void creds_wipe_free(char *s);
/* getenv, with "" treated as unset. */
const char *creds_env_nonempty(const char *name);
/* Append to a ", "-separated list in err (the "tried" notes). */
void creds_err_append(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Copy static keys into *out (token NULL or "" = none). 0 or -ENOMEM. */
int creds_set_static(struct aws_credentials *out, const char *akid, const char *secret,
		     const char *token);

#endif
