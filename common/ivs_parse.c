/*
 * ivs_parse.c — see ivs_parse.h.
 */
#include "ivs_parse.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum presence { OPTIONAL = 0, REQUIRED = 1 };

static int parse_error(struct aws_error *err, const char *path, const char *what)
{
	aws_error_clear(err);
	aws_error_set(err, AWS_ERR_PARSE, "%s: %s", path, what);
	return -EBADMSG;
}

static json_t *load_object(const char *body, size_t len, const char *what, struct aws_error *err,
			   int *r)
{
	json_error_t jerr;
	json_t *root;

	*r = 0;
	if (len > IVS_PARSE_MAX_BODY) {
		*r = parse_error(err, what, "response too large");
		return NULL;
	}
	if (body == NULL || len == 0) {
		*r = parse_error(err, what, "empty response body");
		return NULL;
	}
	root = json_loadb(body, len, 0, &jerr);
	if (root == NULL) {
		aws_error_clear(err);
		aws_error_set(err, AWS_ERR_PARSE, "%s: not JSON: %s at line %d column %d", what,
			      jerr.text, jerr.line, jerr.column);
		*r = -EBADMSG;
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		*r = parse_error(err, what, "expected a JSON object");
		return NULL;
	}
	return root;
}

/* Copy string member name of obj into buf (max bytes + NUL). Absent/null → "" unless required. */
static int get_string(json_t *obj, const char *name, char *buf, size_t max, enum presence p,
		      const char *path, struct aws_error *err)
{
	char where[256];
	json_t *v = json_object_get(obj, name);
	size_t len;

	buf[0] = '\0';
	snprintf(where, sizeof(where), "%s.%s", path, name);
	if (v == NULL || json_is_null(v)) {
		if (p == REQUIRED)
			return parse_error(err, where, "required member missing");
		return 0;
	}
	if (!json_is_string(v))
		return parse_error(err, where, "expected a string");
	len = json_string_length(v);
	if (len > max)
		return parse_error(err, where, "string too long");
	if (p == REQUIRED && len == 0)
		return parse_error(err, where, "required member is empty");
	memcpy(buf, json_string_value(v), len);
	buf[len] = '\0';
	return 0;
}

static int get_bool(json_t *obj, const char *name, bool *out, const char *path,
		    struct aws_error *err)
{
	char where[256];
	json_t *v = json_object_get(obj, name);

	*out = false;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_boolean(v)) {
		snprintf(where, sizeof(where), "%s.%s", path, name);
		return parse_error(err, where, "expected a boolean");
	}
	*out = json_is_true(v);
	return 0;
}

/* names[0] is the value for absent/""; names[i] maps to enum value i; no match → unknown. */
static int get_enum(json_t *obj, const char *name, const char *const *names, int count,
		    int unknown, int *out, const char *path, struct aws_error *err)
{
	char buf[64];
	int i, r;

	*out = 0;
	r = get_string(obj, name, buf, sizeof(buf) - 1, OPTIONAL, path, err);
	if (r == -EBADMSG && strstr(err->message, "too long") != NULL) {
		*out = unknown;
		aws_error_clear(err);
		return 0;
	}
	if (r < 0 || buf[0] == '\0')
		return r;
	for (i = 1; i < count; i++) {
		if (strcmp(buf, names[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	*out = unknown;
	return 0;
}

static const char *const participant_state_names[] = { "", "CONNECTED", "DISCONNECTED" };
static const char *const replication_type_names[] = { "NONE", "SOURCE", "REPLICA" };
static const char *const replication_state_names[] = { "", "ACTIVE", "STOPPED" };

const char *ivs_participant_state_name(enum ivs_participant_state s)
{
	switch (s) {
	case IVS_PARTICIPANT_STATE_UNSET: return "UNSET";
	case IVS_PARTICIPANT_CONNECTED: return "CONNECTED";
	case IVS_PARTICIPANT_DISCONNECTED: return "DISCONNECTED";
	case IVS_PARTICIPANT_STATE_UNKNOWN: break;
	}
	return "UNKNOWN";
}

const char *ivs_replication_type_name(enum ivs_replication_type t)
{
	switch (t) {
	case IVS_REPLICATION_TYPE_NONE: return "NONE";
	case IVS_REPLICATION_TYPE_SOURCE: return "SOURCE";
	case IVS_REPLICATION_TYPE_REPLICA: return "REPLICA";
	case IVS_REPLICATION_TYPE_UNKNOWN: break;
	}
	return "UNKNOWN";
}

const char *ivs_replication_state_name(enum ivs_replication_state s)
{
	switch (s) {
	case IVS_REPLICATION_STATE_NONE: return "NONE";
	case IVS_REPLICATION_ACTIVE: return "ACTIVE";
	case IVS_REPLICATION_STOPPED: return "STOPPED";
	case IVS_REPLICATION_STATE_UNKNOWN: break;
	}
	return "UNKNOWN";
}

void ivs_stage_clear(struct ivs_stage *stage)
{
	size_t i;

	for (i = 0; i < stage->ntags; i++) {
		free(stage->tags[i].key);
		free(stage->tags[i].value);
	}
	free(stage->tags);
	memset(stage, 0, sizeof(*stage));
}

void ivs_stage_list_clear(struct ivs_stage_list *list)
{
	size_t i;

	for (i = 0; i < list->n; i++)
		ivs_stage_clear(&list->items[i]);
	free(list->items);
	memset(list, 0, sizeof(*list));
}

void ivs_participant_list_clear(struct ivs_participant_list *list)
{
	free(list->items);
	memset(list, 0, sizeof(*list));
}

void ivs_replica_list_clear(struct ivs_replica_list *list)
{
	free(list->items);
	memset(list, 0, sizeof(*list));
}

const char *ivs_stage_tag(const struct ivs_stage *stage, const char *key)
{
	size_t i;

	for (i = 0; i < stage->ntags; i++)
		if (strcmp(stage->tags[i].key, key) == 0)
			return stage->tags[i].value;
	return NULL;
}

static int parse_tags(json_t *obj, struct ivs_stage *out, const char *path, struct aws_error *err)
{
	char where[256];
	json_t *tags = json_object_get(obj, "tags"), *v;
	const char *key;
	size_t n, klen, vlen;

	snprintf(where, sizeof(where), "%s.tags", path);
	if (tags == NULL || json_is_null(tags))
		return 0;
	if (!json_is_object(tags))
		return parse_error(err, where, "expected an object");
	n = json_object_size(tags);
	if (n > IVS_TAGS_MAX)
		return parse_error(err, where, "more than 50 tags");
	if (n == 0)
		return 0;
	out->tags = calloc(n, sizeof(*out->tags));
	if (out->tags == NULL)
		return -ENOMEM;
	json_object_foreach(tags, key, v) {
		struct ivs_tag *t = &out->tags[out->ntags];

		if (!json_is_string(v))
			return parse_error(err, where, "tag value is not a string");
		klen = strlen(key);
		vlen = json_string_length(v);
		if (klen == 0 || klen > IVS_TAG_KEY_MAX || vlen > IVS_TAG_VALUE_MAX)
			return parse_error(err, where, "tag key or value length out of range");
		t->key = strndup(key, klen);
		t->value = strndup(json_string_value(v), vlen);
		out->ntags++;
		if (t->key == NULL || t->value == NULL)
			return -ENOMEM;
	}
	return 0;
}

/* Stage and StageSummary share the members we keep. On error *out is cleared. */
static int parse_stage(json_t *obj, struct ivs_stage *out, const char *path, struct aws_error *err)
{
	int r;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(obj)) {
		r = parse_error(err, path, "expected an object");
		goto fail;
	}
	r = get_string(obj, "arn", out->arn, IVS_ARN_MAX, REQUIRED, path, err);
	if (r == 0)
		r = get_string(obj, "name", out->name, IVS_STAGE_NAME_MAX, OPTIONAL, path, err);
	if (r == 0)
		r = get_string(obj, "activeSessionId", out->active_session_id, IVS_SESSION_ID_MAX,
			       OPTIONAL, path, err);
	if (r == 0)
		r = parse_tags(obj, out, path, err);
	if (r == 0)
		return 0;
fail:
	ivs_stage_clear(out);
	return r;
}

static int parse_participant(json_t *obj, struct ivs_participant *out, const char *path,
			     struct aws_error *err)
{
	int r, e = 0;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(obj))
		return parse_error(err, path, "expected an object");
	r = get_string(obj, "participantId", out->participant_id, IVS_PARTICIPANT_ID_MAX,
		       OPTIONAL, path, err);
	if (r == 0)
		r = get_string(obj, "userId", out->user_id, IVS_USER_ID_MAX, OPTIONAL, path, err);
	if (r == 0)
		r = get_enum(obj, "state", participant_state_names, 3,
			     IVS_PARTICIPANT_STATE_UNKNOWN, &e, path, err);
	out->state = (enum ivs_participant_state)e;
	if (r == 0)
		r = get_bool(obj, "published", &out->published, path, err);
	if (r == 0)
		r = get_enum(obj, "replicationType", replication_type_names, 3,
			     IVS_REPLICATION_TYPE_UNKNOWN, &e, path, err);
	out->replication_type = (enum ivs_replication_type)e;
	if (r == 0)
		r = get_enum(obj, "replicationState", replication_state_names, 3,
			     IVS_REPLICATION_STATE_UNKNOWN, &e, path, err);
	out->replication_state = (enum ivs_replication_state)e;
	if (r == 0)
		r = get_string(obj, "sourceStageArn", out->source_stage_arn, IVS_ARN_MAX, OPTIONAL,
			       path, err);
	if (r == 0)
		r = get_string(obj, "sourceSessionId", out->source_session_id, IVS_SESSION_ID_MAX,
			       OPTIONAL, path, err);
	if (r == 0)
		r = get_string(obj, "firstJoinTime", out->first_join_time, IVS_TIME_MAX, OPTIONAL,
			       path, err);
	return r;
}

static int parse_replica(json_t *obj, struct ivs_replica *out, const char *path,
			 struct aws_error *err)
{
	int r, e = 0;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(obj))
		return parse_error(err, path, "expected an object");
	r = get_string(obj, "sourceStageArn", out->source_stage_arn, IVS_ARN_MAX, REQUIRED, path,
		       err);
	if (r == 0)
		r = get_string(obj, "participantId", out->participant_id, IVS_PARTICIPANT_ID_MAX,
			       REQUIRED, path, err);
	if (r == 0)
		r = get_string(obj, "sourceSessionId", out->source_session_id, IVS_SESSION_ID_MAX,
			       OPTIONAL, path, err);
	if (r == 0)
		r = get_string(obj, "destinationStageArn", out->destination_stage_arn, IVS_ARN_MAX,
			       REQUIRED, path, err);
	if (r == 0)
		r = get_string(obj, "destinationSessionId", out->destination_session_id,
			       IVS_SESSION_ID_MAX, OPTIONAL, path, err);
	if (r == 0 && json_object_get(obj, "replicationState") == NULL)
		r = parse_error(err, path, "replicationState: required member missing");
	if (r == 0)
		r = get_enum(obj, "replicationState", replication_state_names, 3,
			     IVS_REPLICATION_STATE_UNKNOWN, &e, path, err);
	out->replication_state = (enum ivs_replication_state)e;
	return r;
}

int ivs_parse_stage_response(const char *body, size_t len, struct ivs_stage *out,
			     struct aws_error *err)
{
	json_t *root, *stage;
	int r;

	memset(out, 0, sizeof(*out));
	root = load_object(body, len, "stage response", err, &r);
	if (root == NULL)
		return r;
	stage = json_object_get(root, "stage");
	if (stage == NULL || json_is_null(stage))
		r = parse_error(err, "stage", "required member missing");
	else
		r = parse_stage(stage, out, "stage", err);
	json_decref(root);
	return r;
}

int ivs_parse_participant_response(const char *body, size_t len, struct ivs_participant *out,
				   struct aws_error *err)
{
	json_t *root, *p;
	int r;

	memset(out, 0, sizeof(*out));
	root = load_object(body, len, "participant response", err, &r);
	if (root == NULL)
		return r;
	p = json_object_get(root, "participant");
	if (p == NULL || json_is_null(p))
		r = parse_error(err, "participant", "required member missing");
	else
		r = parse_participant(p, out, "participant", err);
	json_decref(root);
	return r;
}

/* Shared page frame: the array member, its size check and nextToken. */
static json_t *page_array(const char *body, size_t len, const char *member, size_t have,
			  char *next_token, json_t **root, struct aws_error *err, int *r)
{
	json_t *arr;

	next_token[0] = '\0';
	*root = load_object(body, len, member, err, r);
	if (*root == NULL)
		return NULL;
	arr = json_object_get(*root, member);
	if (arr == NULL || json_is_null(arr)) {
		*r = parse_error(err, member, "required member missing");
		return NULL;
	}
	if (!json_is_array(arr)) {
		*r = parse_error(err, member, "expected an array");
		return NULL;
	}
	if (json_array_size(arr) > IVS_PARSE_MAX_ITEMS - have) {
		*r = parse_error(err, member, "too many items");
		return NULL;
	}
	*r = get_string(*root, "nextToken", next_token, IVS_NEXT_TOKEN_MAX, OPTIONAL, "$", err);
	if (*r < 0)
		return NULL;
	return arr;
}

static int grow(void **items, size_t *cap, size_t need, size_t size)
{
	size_t ncap;
	void *p;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap : 16;
	while (ncap < need)
		ncap *= 2;
	p = reallocarray(*items, ncap, size);
	if (p == NULL)
		return -ENOMEM;
	*items = p;
	*cap = ncap;
	return 0;
}

typedef int (*parse_item_fn)(json_t *obj, void *out, const char *path, struct aws_error *err);

/* Adapters, so each item parser keeps its typed signature and no function pointer is cast. */
static int parse_stage_item(json_t *obj, void *out, const char *path, struct aws_error *err)
{
	return parse_stage(obj, out, path, err);
}

static int parse_participant_item(json_t *obj, void *out, const char *path, struct aws_error *err)
{
	return parse_participant(obj, out, path, err);
}

static int parse_replica_item(json_t *obj, void *out, const char *path, struct aws_error *err)
{
	return parse_replica(obj, out, path, err);
}

/*
 * The one page loop behind the three listings: frame the page, make room for its items, parse
 * each into the next free slot of items (item_size bytes each) and count it in *n only once it
 * parsed, so on error the list holds exactly the items that parsed (their owner clears them).
 */
static int parse_page(const char *body, size_t len, const char *member, void **items,
		      size_t *n, size_t *cap, size_t item_size, parse_item_fn parse_item,
		      char next_token[IVS_NEXT_TOKEN_MAX + 1], struct aws_error *err)
{
	char path[64];
	json_t *root = NULL, *arr, *v;
	size_t i;
	int r;

	arr = page_array(body, len, member, *n, next_token, &root, err, &r);
	if (arr == NULL)
		goto out;
	r = grow(items, cap, *n + json_array_size(arr), item_size);
	if (r < 0)
		goto out;
	json_array_foreach(arr, i, v) {
		snprintf(path, sizeof(path), "%s[%zu]", member, i);
		r = parse_item(v, (char *)*items + *n * item_size, path, err);
		if (r < 0)
			goto out;
		(*n)++;
	}
out:
	json_decref(root);
	if (r < 0)
		next_token[0] = '\0';
	return r;
}

int ivs_parse_stage_page(const char *body, size_t len, struct ivs_stage_list *list,
			 char next_token[IVS_NEXT_TOKEN_MAX + 1], struct aws_error *err)
{
	return parse_page(body, len, "stages", (void **)&list->items, &list->n, &list->cap,
			  sizeof(*list->items), parse_stage_item, next_token, err);
}

int ivs_parse_participant_page(const char *body, size_t len, struct ivs_participant_list *list,
			       char next_token[IVS_NEXT_TOKEN_MAX + 1], struct aws_error *err)
{
	return parse_page(body, len, "participants", (void **)&list->items, &list->n, &list->cap,
			  sizeof(*list->items), parse_participant_item, next_token, err);
}

int ivs_parse_replica_page(const char *body, size_t len, struct ivs_replica_list *list,
			   char next_token[IVS_NEXT_TOKEN_MAX + 1], struct aws_error *err)
{
	return parse_page(body, len, "replicas", (void **)&list->items, &list->n, &list->cap,
			  sizeof(*list->items), parse_replica_item, next_token, err);
}
