/*
 * creds_json.c — the documents credential sources send: JSON credentials (credential_process,
 * the container endpoint, IMDS) and the RFC 3339 times in them. Pure: no I/O.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "creds_source.h"

static int digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int creds_parse_time(const char *s, int64_t *out)
{
	int year, mon, day, hour, min, sec, oh = 0, om = 0, sign = 0;
	struct tm tm = { 0 }, check;
	const char *p;
	time_t t;

	if (s == NULL || strlen(s) < 20)
		return -EINVAL;
	if (digits(s, 4, &year) < 0 || s[4] != '-' || digits(s + 5, 2, &mon) < 0 || s[7] != '-' ||
	    digits(s + 8, 2, &day) < 0 || (s[10] != 'T' && s[10] != 't') ||
	    digits(s + 11, 2, &hour) < 0 || s[13] != ':' || digits(s + 14, 2, &min) < 0 ||
	    s[16] != ':' || digits(s + 17, 2, &sec) < 0)
		return -EINVAL;
	p = s + 19;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		sign = 0;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && digits(p + 1, 2, &oh) == 0 &&
		   p[3] == ':' && digits(p + 4, 2, &om) == 0 && oh < 24 && om < 60) {
		sign = *p == '+' ? 1 : -1;
	} else {
		return -EINVAL;
	}
	if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
		return -EINVAL;
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec == 60 ? 59 : sec;
	t = timegm(&tm);
	/* timegm normalises 31 February into March; such a date is malformed, not a time. */
	if (t == (time_t)-1 || gmtime_r(&t, &check) == NULL || check.tm_mday != day ||
	    check.tm_mon != mon - 1)
		return -EINVAL;
	*out = (int64_t)t - sign * (int64_t)(oh * 3600 + om * 60);
	return 0;
}

/* ---- JSON credential documents (process, container, IMDS) ---- */

static int take_string(json_t *root, const char *key, int required, const char **out,
		       char *why, size_t n)
{
	json_t *v = json_object_get(root, key);

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (required) {
			snprintf(why, n, "%s missing", key);
			return -EINVAL;
		}
		return 0;
	}
	if (!json_is_string(v)) {
		snprintf(why, n, "%s is not a string", key);
		return -EINVAL;
	}
	*out = json_string_value(v);
	if (required && (*out)[0] == '\0') {
		snprintf(why, n, "%s is empty", key);
		return -EINVAL;
	}
	return 0;
}

int creds_parse_json(const char *body, size_t len, const struct creds_json_shape *shape,
		     struct aws_credentials *out, char *why, size_t n)
{
	json_error_t jerr;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	const char *akid, *secret, *token, *exp, *code;
	struct aws_credentials c = { 0 };
	int r = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (root == NULL) {
		snprintf(why, n, "not JSON: %s", jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		snprintf(why, n, "not a JSON object");
		goto out;
	}
	if (shape->need_version) {
		json_t *v = json_object_get(root, "Version");
		if (!json_is_integer(v) || json_integer_value(v) != 1) {
			snprintf(why, n, "Version is not 1");
			goto out;
		}
	}
	/* IMDS answers 200 with an error document when the role cannot be used. */
	if (take_string(root, "Code", 0, &code, why, n) < 0)
		goto out;
	if (code != NULL && strcmp(code, "Success") != 0) {
		snprintf(why, n, "Code is \"%.40s\"", code);
		goto out;
	}
	if (take_string(root, "AccessKeyId", 1, &akid, why, n) < 0 ||
	    take_string(root, "SecretAccessKey", 1, &secret, why, n) < 0 ||
	    take_string(root, shape->token_key, shape->need_token, &token, why, n) < 0 ||
	    take_string(root, "Expiration", shape->need_expiration, &exp, why, n) < 0)
		goto out;
	if (exp != NULL && creds_parse_time(exp, &c.expiration) < 0) {
		snprintf(why, n, "Expiration \"%.40s\" is not an RFC 3339 time", exp);
		goto out;
	}
	c.access_key_id = strdup(akid);
	c.secret_access_key = strdup(secret);
	c.session_token = token != NULL && token[0] != '\0' ? strdup(token) : NULL;
	if (c.access_key_id == NULL || c.secret_access_key == NULL ||
	    (token != NULL && token[0] != '\0' && c.session_token == NULL)) {
		snprintf(why, n, "out of memory");
		aws_credentials_clear(&c);
		r = -ENOMEM;
		goto out;
	}
	*out = c;
	r = 0;
out:
	json_decref(root);
	return r;
}

