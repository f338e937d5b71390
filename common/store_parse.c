/*
 * store_parse.c — see store_parse.h. Pure functions over (pointer, length) inputs.
 */
#include "store_parse.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#define RAW_SHOWN 32   /* bytes of a bad raw value quoted in an error message */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* A printable, bounded copy of an untrusted value for error messages. */
static void quote_raw(char *dst, size_t dstlen, const char *s, size_t len)
{
	size_t n = 0, i;

	if (dstlen == 0)
		return;
	for (i = 0; i < len && n + 1 < dstlen && i < RAW_SHOWN; i++) {
		unsigned char c = (unsigned char)s[i];
		dst[n++] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c : '?';
	}
	dst[n] = '\0';
	if (i < len && n + 4 < dstlen) {
		memcpy(dst + n, "...", 4);
	}
}

int store_parse_uint(const char *s, size_t len, long long max, long long *out,
                     char *err, size_t errlen)
{
	char shown[RAW_SHOWN + 8];
	long long v = 0;

	if (s == NULL || len == 0) {
		set_err(err, errlen, "empty value");
		return -EINVAL;
	}
	quote_raw(shown, sizeof(shown), s, len);
	if (s[0] == '-' && len > 1) {
		size_t i;
		for (i = 1; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == len) {
			set_err(err, errlen, "negative value \"%s\"", shown);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9') {
			set_err(err, errlen, "not an integer: \"%s\"", shown);
			return -EINVAL;
		}
		if (v > (max - (s[i] - '0')) / 10) {
			set_err(err, errlen, "out of range (max %lld): \"%s\"", max, shown);
			return -EINVAL;
		}
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int store_parse_desired(const char *s, size_t len, int *out, char *err, size_t errlen)
{
	long long v;
	char shown[RAW_SHOWN + 8];

	if (store_parse_uint(s, len, STORE_DESIRED_MAX, &v, err, errlen) < 0)
		return -EINVAL;
	if (v < STORE_DESIRED_MIN) {
		quote_raw(shown, sizeof(shown), s, len);
		set_err(err, errlen, "out of range (min %d): \"%s\"", STORE_DESIRED_MIN, shown);
		return -EINVAL;
	}
	*out = (int)v;
	return 0;
}

int store_parse_viewers(const char *s, size_t len, long long *out, char *err, size_t errlen)
{
	return store_parse_uint(s, len, STORE_VIEWERS_MAX, out, err, errlen);
}

int store_parse_draining(const char *s, size_t len, int64_t *since_ms, char *err, size_t errlen)
{
	long long v;

	/* 2^53: any later time is not a plausible wall clock in ms and would overflow arithmetic. */
	if (store_parse_uint(s, len, 9007199254740992LL, &v, err, errlen) < 0)
		return -EINVAL;
	*since_ms = (int64_t)v;
	return 0;
}

static int is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Length of the longest prefix of s[0..len) made of [a-z0-9-] (lower=1) or [a-zA-Z0-9-]. */
static size_t span_id(const char *s, size_t len, int lower)
{
	size_t i;

	for (i = 0; i < len; i++) {
		char c = s[i];
		if (c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'))
			continue;
		if (!lower && c >= 'A' && c <= 'Z')
			continue;
		break;
	}
	return i;
}

int store_is_stage_arn(const char *s, size_t len)
{
	static const char head[] = "arn:aws:ivs:";
	size_t n, i;

	if (s == NULL || len < 1 || len > STORE_STAGE_ARN_MAX || len < sizeof(head) - 1 ||
	    memcmp(s, head, sizeof(head) - 1) != 0)
		return 0;
	i = sizeof(head) - 1;
	n = span_id(s + i, len - i, 1);             /* region */
	if (n == 0 || i + n >= len || s[i + n] != ':')
		return 0;
	i += n + 1;
	for (n = 0; i + n < len && s[i + n] >= '0' && s[i + n] <= '9'; n++)
		;                                       /* account */
	if (n == 0 || i + n >= len || s[i + n] != ':')
		return 0;
	i += n + 1;
	if (len - i < 7 || memcmp(s + i, "stage/", 6) != 0)
		return 0;
	i += 6;
	n = span_id(s + i, len - i, 0);             /* stage id */
	return n > 0 && i + n == len;
}

static int participant_id_ok(const char *s, size_t len)
{
	if (len == 0 || len > STORE_PARTICIPANT_ID_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!is_alnum(s[i]) && s[i] != '-')
			return 0;
	return 1;
}

/*
 * An optional string member: absent or null leaves dst empty; a string is copied when it fits;
 * anything else is an error.
 */
static int get_opt_string(json_t *obj, const char *name, char *dst, size_t dstsize,
                          char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, name);
	size_t len;

	dst[0] = '\0';
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		set_err(err, errlen, "%s is not a string", name);
		return -EINVAL;
	}
	len = json_string_length(v);
	if (len >= dstsize) {
		set_err(err, errlen, "%s is too long (%zu bytes, max %zu)", name, len, dstsize - 1);
		return -EINVAL;
	}
	if (memchr(json_string_value(v), '\0', len) != NULL) {
		set_err(err, errlen, "%s contains a NUL character", name);
		return -EINVAL;
	}
	memcpy(dst, json_string_value(v), len + 1);
	return 0;
}

/* A JSON object of at most STORE_PUBLISHER_MAX_SIZE bytes, duplicate keys refused; NULL with
 * the reason in err. */
static json_t *load_json_object(const char *s, size_t len, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root;

	if (s == NULL || len == 0) {
		set_err(err, errlen, "empty value");
		return NULL;
	}
	if (len > STORE_PUBLISHER_MAX_SIZE) {
		set_err(err, errlen, "too large (%zu bytes, max %d)", len, STORE_PUBLISHER_MAX_SIZE);
		return NULL;
	}
	root = json_loadb(s, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		set_err(err, errlen, "not JSON: %s at line %d column %d", jerr.text, jerr.line,
		        jerr.column);
		return NULL;
	}
	if (!json_is_object(root)) {
		set_err(err, errlen, "not a JSON object");
		json_decref(root);
		return NULL;
	}
	return root;
}

int store_parse_publisher(const char *s, size_t len, struct store_publisher *out,
                          char *err, size_t errlen)
{
	struct store_publisher p;
	json_t *root = NULL, *id;
	int r = -EINVAL;

	memset(&p, 0, sizeof(p));
	root = load_json_object(s, len, err, errlen);
	if (root == NULL)
		return -EINVAL;
	id = json_object_get(root, "participantId");
	if (id == NULL || json_is_null(id)) {
		set_err(err, errlen, "participantId is missing");
		goto out;
	}
	if (!json_is_string(id)) {
		set_err(err, errlen, "participantId is not a string");
		goto out;
	}
	if (json_string_length(id) == 0) {
		set_err(err, errlen, "participantId is empty");
		goto out;
	}
	if (!participant_id_ok(json_string_value(id), json_string_length(id))) {
		set_err(err, errlen, "participantId is not 1-64 characters of [a-zA-Z0-9-]");
		goto out;
	}
	memcpy(p.participant_id, json_string_value(id), json_string_length(id) + 1);
	if (get_opt_string(root, "stageArn", p.stage_arn, sizeof(p.stage_arn), err, errlen) < 0 ||
	    get_opt_string(root, "userId", p.user_id, sizeof(p.user_id), err, errlen) < 0 ||
	    get_opt_string(root, "joinedAt", p.joined_at, sizeof(p.joined_at), err, errlen) < 0)
		goto out;
	if (p.stage_arn[0] != '\0' && !store_is_stage_arn(p.stage_arn, strlen(p.stage_arn))) {
		set_err(err, errlen, "stageArn is not a stage ARN");
		goto out;
	}
	*out = p;
	r = 0;
out:
	json_decref(root);
	return r;
}

int store_parse_manual(const char *s, size_t len, struct store_manual_replication *out,
                       char *err, size_t errlen)
{
	const char *sp1 = s != NULL ? memchr(s, ' ', len) : NULL;
	const char *sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - s)) : NULL;
	size_t n1, n2, n3;

	if (sp2 == NULL) {
		set_err(err, errlen, "expected \"SRC_STAGE_ARN DST_STAGE_ARN PARTICIPANT_ID\"");
		return -EINVAL;
	}
	n1 = (size_t)(sp1 - s);
	n2 = (size_t)(sp2 - sp1 - 1);
	n3 = len - (size_t)(sp2 + 1 - s);
	if (!store_is_stage_arn(s, n1) || !store_is_stage_arn(sp1 + 1, n2)) {
		set_err(err, errlen, "not a stage ARN");
		return -EINVAL;
	}
	if (!participant_id_ok(sp2 + 1, n3)) {
		set_err(err, errlen, "participant id is not [a-zA-Z0-9-]{1,64}");
		return -EINVAL;
	}
	memcpy(out->src, s, n1);
	out->src[n1] = '\0';
	memcpy(out->dst, sp1 + 1, n2);
	out->dst[n2] = '\0';
	memcpy(out->participant, sp2 + 1, n3);
	out->participant[n3] = '\0';
	return 0;
}

int store_format_manual(char *buf, size_t size, const char *src, const char *dst,
                        const char *participant)
{
	int n;

	if (buf == NULL || src == NULL || dst == NULL || participant == NULL)
		return -EINVAL;
	n = snprintf(buf, size, "%s %s %s", src, dst, participant);
	if (n < 0)
		return -EINVAL;
	return (size_t)n >= size ? -ENAMETOOLONG : n;
}

/* A JSON string, or null for a NULL argument. NULL on error. */
static json_t *str_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static char *dump_pairs(const char *const *names, json_t **values, size_t n)
{
	json_t *obj = json_object();
	char *out = NULL;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		if (obj == NULL || values[i] == NULL)
			goto out;
		/* json_object_set_new takes the reference even when it fails. */
		rc = json_object_set_new(obj, names[i], values[i]);
		values[i] = NULL;
		if (rc < 0)
			goto out;
	}
	out = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	for (i = 0; i < n; i++)
		json_decref(values[i]);
	json_decref(obj);
	return out;
}

int store_parse_stage_parent(const char *s, size_t len, char *parent, size_t parentlen,
                             char *err, size_t errlen)
{
	json_t *root;
	int r = -EINVAL;

	if (parentlen > 0)
		parent[0] = '\0';
	root = load_json_object(s, len, err, errlen);
	if (root == NULL)
		return -EINVAL;
	if (get_opt_string(root, "parentStage", parent, parentlen, err, errlen) < 0)
		goto out;
	if (parent[0] != '\0' && !store_is_stage_arn(parent, strlen(parent))) {
		set_err(err, errlen, "parentStage is not a stage ARN");
		parent[0] = '\0';
		goto out;
	}
	r = 0;
out:
	json_decref(root);
	return r;
}

char *store_format_stage_info(const char *arn, const char *name, const char *created_at_iso,
                              const char *parent_stage_arn)
{
	static const char *const names[] = { "name", "arn", "autoScaled", "createdAt",
	                                     "parentStage" };
	json_t *values[5];

	if (arn == NULL || name == NULL || created_at_iso == NULL)
		return NULL;
	values[0] = json_string(name);
	values[1] = json_string(arn);
	values[2] = json_true();
	values[3] = json_string(created_at_iso);
	values[4] = str_or_null(parent_stage_arn);
	return dump_pairs(names, values, 5);
}

char *store_format_replication(const char *source_stage_arn, const char *dest_stage_arn,
                               const char *participant_id, const char *started_at_iso)
{
	static const char *const names[] = { "sourceStageArn", "destStageArn", "participantId",
	                                     "startedAt" };
	json_t *values[4];

	if (source_stage_arn == NULL || dest_stage_arn == NULL || participant_id == NULL ||
	    started_at_iso == NULL)
		return NULL;
	values[0] = json_string(source_stage_arn);
	values[1] = json_string(dest_stage_arn);
	values[2] = json_string(participant_id);
	values[3] = json_string(started_at_iso);
	return dump_pairs(names, values, 4);
}

int store_parse_record_key(const char *prefix, const char *key, char *arn, size_t arnlen)
{
	static const char *const heads[] = { "stage:", "replication:" };
	static const char *const tails[] = { "", ":draining", ":drained_by" };
	size_t plen, klen;

	if (prefix == NULL || key == NULL || arn == NULL || arnlen == 0)
		return 0;
	plen = strlen(prefix);
	klen = strlen(key);
	if (klen < plen || strncmp(key, prefix, plen) != 0)
		return 0;
	key += plen;
	klen -= plen;
	for (size_t h = 0; h < 2; h++) {
		size_t hl = strlen(heads[h]);
		if (klen <= hl || strncmp(key, heads[h], hl) != 0)
			continue;
		for (size_t t = 0; t < (h == 0 ? 3u : 1u); t++) {
			size_t tl = strlen(tails[t]), alen;
			if (klen < hl + tl || strcmp(key + klen - tl, tails[t]) != 0)
				continue;
			alen = klen - hl - tl;
			if (alen == 0 || alen > STORE_STAGE_ARN_MAX || alen >= arnlen ||
			    !store_is_stage_arn(key + hl, alen))
				continue;
			memcpy(arn, key + hl, alen);
			arn[alen] = '\0';
			return 1;
		}
	}
	return 0;
}

int store_glob_escape(const char *key, char *out, size_t outlen)
{
	size_t n = 0;

	for (; *key != '\0'; key++) {
		if (strchr("*?[]\\", *key) != NULL) {
			if (n + 1 >= outlen)
				return -ENAMETOOLONG;
			out[n++] = '\\';
		}
		if (n + 1 >= outlen)
			return -ENAMETOOLONG;
		out[n++] = *key;
	}
	if (outlen == 0)
		return -ENAMETOOLONG;
	out[n] = '\0';
	return 0;
}
