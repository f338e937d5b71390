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
};

/* What a refresh needs to fetch again. */
struct creds_source {
	enum creds_source_kind kind;
	char *command;          /* credential_process */
	char *url;              /* container */
	char *auth_token;       /* container, literal */
	char *auth_token_file;  /* container, read on every fetch */
	char *endpoint;         /* IMDS base URL, no trailing '/' */
};

/* "environment", "shared-files", ... for log lines and creds_provider_source(). */
const char *creds_source_name(enum creds_source_kind kind);
int creds_source_fetch(const struct creds_source *src, struct aws_credentials *out, char *why,
		       size_t n);
void creds_source_clear(struct creds_source *s);

/* ---- the sources ---- */

int creds_env_try(struct aws_credentials *out, char *tried, size_t tn, char *why, size_t n);
int creds_profile_try(const struct creds_options *opts, struct creds_source *src,
		      struct aws_credentials *out, char *tried, size_t tn, char *why, size_t n);
int creds_process_fetch(const struct creds_source *src, struct aws_credentials *out, char *why,
			size_t n);
int creds_container_try(struct creds_source *src, struct aws_credentials *out, char *tried,
			size_t tn, char *why, size_t n);
int creds_container_fetch(const struct creds_source *src, struct aws_credentials *out,
			  char *why, size_t n);
int creds_imds_try(struct creds_source *src, struct aws_credentials *out, char *tried, size_t tn);
int creds_imds_fetch(const struct creds_source *src, struct aws_credentials *out, char *why,
		     size_t n);

/* ---- shared files (creds_profile.c), also used for the region ---- */

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
 * One request on a fresh easy handle: no proxy, no redirects, 1 s to connect, total_ms in all.
 * 0 with the status and body, or <0 with why.
 */
int creds_http_request(const char *method, const char *url, struct curl_slist *headers,
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
