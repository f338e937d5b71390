/*
 * creds.h — the AWS credentials chain and a cached, background-refreshed provider.
 *
 * Sources, first that yields credentials wins (see ../shared/research/aws-credentials.md):
 *   1. environment: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
 *   2. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (+ AWS_ROLE_SESSION_NAME),
 *      STS AssumeRoleWithWebIdentity, the token file read again at every refresh;
 *   3. shared files, selected profile (options.profile, else AWS_PROFILE, else "default"):
 *      the credentials file (options.credentials_file, else AWS_SHARED_CREDENTIALS_FILE, else
 *      ~/.aws/credentials, section [NAME]) over the config file (AWS_CONFIG_FILE, else
 *      ~/.aws/config, section [profile NAME] or [default]); role_arn (STS AssumeRole with
 *      source_profile, chained up to 5 hops, or credential_source; or web_identity_token_file),
 *      else static keys, else the profile's credential_process (split like a shell would, run
 *      without a shell);
 *   4. the container endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI,
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE / _TOKEN);
 *   5. EC2 IMDSv2 (AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_EC2_METADATA_DISABLED); never v1.
 * A source that is configured but fails (malformed file, partial keys, process exit status,
 * bad JSON) is an error, not a reason to try the next one: that would hide misconfiguration.
 * The exception is a role STS refuses or cannot be reached for at start-up: the provider
 * starts without credentials and its thread retries with backoff (get() says -EKEYEXPIRED).
 * Not supported: SSO profiles and mfa_serial — reported as errors.
 *
 * Network fetches use blocking libcurl easy handles with short timeouts; they run in
 * creds_provider_new() (start-up) or in the provider's refresh thread, never on the event loop.
 */
#ifndef IVS_CREDS_H
#define IVS_CREDS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "aws_credentials.h"

struct creds_options {
	const char *profile;           /* aws.profile from our config; NULL/"" = AWS_PROFILE/default */
	const char *credentials_file;  /* explicit path; NULL/"" = AWS_SHARED_CREDENTIALS_FILE/~ */
	const char *region;            /* the resolved region: STS endpoint and scope; NULL = global */
	time_t (*now)(void);           /* wall clock for expiry decisions; NULL = time(NULL) */
};

struct creds_provider;

/*
 * Resolve once, synchronously. NULL with a one-line error in err naming every source tried,
 * e.g. "no AWS credentials: environment (AWS_ACCESS_KEY_ID unset), shared files (...), ...",
 * or naming the one source that is configured but failed.
 */
struct creds_provider *creds_provider_new(const struct creds_options *opts, char *err,
					  size_t errlen);

/*
 * Non-blocking: copy the current credentials into *out (clear with aws_credentials_clear).
 * Within the refresh window before expiry (5 min; 15 min for IMDS; at most half the lifetime of
 * the credentials) it wakes the refresh thread
 * and still returns the old, valid credentials. -EKEYEXPIRED when they have expired and no
 * refresh has succeeded yet; -ENOMEM.
 */
int creds_provider_get(struct creds_provider *p, struct aws_credentials *out);

/* "environment", "shared-files", "credential-process", "container", "imds", "assume-role",
 * "web-identity". */
const char *creds_provider_source(const struct creds_provider *p);

/* UNIX time at which the current credentials expire; 0 when they do not expire. */
int64_t creds_provider_expiration(struct creds_provider *p);

/* Stops and joins the refresh thread, wipes the credentials. NULL is fine. */
void creds_provider_free(struct creds_provider *p);

/*
 * Region: configured (non-empty), else AWS_REGION, else AWS_DEFAULT_REGION, else "region" of
 * the profile (profile, else AWS_PROFILE, else "default") in the config file, else the
 * instance's region from IMDSv2 (unless AWS_EC2_METADATA_DISABLED). 0, or -ENOENT /
 * -EINVAL / -ENAMETOOLONG with a one-line error.
 */
int creds_resolve_region(const char *configured, const char *profile, char *out, size_t n,
			 char *err, size_t errlen);

/*
 * RFC 3339 / ISO 8601 UTC time as the credential sources send it ("2026-08-30T18:52:16Z",
 * optional fraction, "Z" or "+hh:mm"/"-hh:mm") to UNIX seconds. 0 or -EINVAL.
 */
int creds_parse_time(const char *s, int64_t *out);

#endif
