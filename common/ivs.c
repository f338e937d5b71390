/*
 * ivs.c — see ivs.h.
 */
#include "ivs.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IVS_TAG_PATH_MAX 320         /* "/tags/" + a percent-encoded ARN */

enum result_kind { R_DONE, R_STAGE, R_STAGES, R_PARTICIPANT, R_PARTICIPANTS, R_REPLICAS };

struct ivs_call {
	struct aws_client *client;
	struct aws_call_class cls;          /* the client's class when queued: every page keeps it */
	enum result_kind kind;
	const char *operation;              /* static string */
	/* Heap, TagResource only: "/tags/<percent-encoded ARN>"; NULL: "/Operation". A queued
	 * CreateStage is one of hundreds at a scale-up: nothing here is sized for the longest. */
	char *path;
	json_t *request;
	void *cb;
	ivs_stage_page_fn page_cb;          /* ListStages page by page: each page, then cb */
	void *ud;
	unsigned pages;
	bool at_most_once;                  /* CreateStage: no blind retry (retry.h) */
	char *next_token;                   /* heap: the token of the page asked for last, or NULL */
	struct ivs_stage_list stages;
	struct ivs_participant_list participants;
	struct ivs_replica_list replicas;
};

static void call_free(struct ivs_call *call)
{
	json_decref(call->request);
	free(call->path);
	free(call->next_token);
	ivs_stage_list_clear(&call->stages);
	ivs_participant_list_clear(&call->participants);
	ivs_replica_list_clear(&call->replicas);
	free(call);
}

/* Invoke the typed callback (result pointers NULL on error), then free the call. */
static void deliver(struct ivs_call *call, const struct aws_error *err, const void *one)
{
	bool ok = err->kind == AWS_OK;

	switch (call->kind) {
	case R_DONE:
		((ivs_done_fn)call->cb)(call->ud, err);
		break;
	case R_STAGE:
		((ivs_stage_fn)call->cb)(call->ud, err, ok ? one : NULL);
		break;
	case R_STAGES:
		/* page by page: the pages went to page_cb, what is left here is empty */
		((ivs_stages_fn)call->cb)(call->ud, err, ok ? &call->stages : NULL);
		break;
	case R_PARTICIPANT:
		((ivs_participant_fn)call->cb)(call->ud, err, ok ? one : NULL);
		break;
	case R_PARTICIPANTS:
		((ivs_participants_fn)call->cb)(call->ud, err, ok ? &call->participants : NULL);
		break;
	case R_REPLICAS:
		((ivs_replicas_fn)call->cb)(call->ud, err, ok ? &call->replicas : NULL);
		break;
	}
	call_free(call);
}

static void on_aws_done(void *ud, const struct aws_error *aerr, int status, const char *body,
			size_t len);

enum ivs_conflict ivs_conflict_of(const struct aws_error *err)
{
	if (err == NULL || err->kind != AWS_ERR_CONFLICT)
		return IVS_CONFLICT_NONE;
	if (strstr(err->message, "already") != NULL)
		return IVS_CONFLICT_ALREADY_REPLICATING;
	if (strstr(err->message, "not publishing") != NULL)
		return IVS_CONFLICT_NOT_PUBLISHING;
	return IVS_CONFLICT_OTHER;
}

static int send_call(struct ivs_call *call)
{
	char *body = json_dumps(call->request, JSON_COMPACT);
	char op_path[64];
	int r;

	if (body == NULL)
		return -ENOMEM;
	snprintf(op_path, sizeof(op_path), "/%s", call->operation);
	r = aws_request_class(call->client, &call->cls, call->operation, "POST",
			      call->path != NULL ? call->path : op_path, body,
			      call->at_most_once ? AWS_REQUEST_AT_MOST_ONCE : 0, on_aws_done, call);
	free(body);
	/* aws.c keeps the body it sends: only a listing needs the request again (nextToken).
	 * A queued CreateStage held about 1 kB of JSON tree beside its body. */
	if (r == 0 && call->kind != R_STAGES && call->kind != R_PARTICIPANTS &&
	    call->kind != R_REPLICAS) {
		json_decref(call->request);
		call->request = NULL;
	}
	return r;
}

/* Another page? 1 = sent, 0 = listing complete, <0 = error filled in err. */
static int next_page(struct ivs_call *call, const char *token, struct aws_error *err)
{
	int r;

	if (token[0] == '\0')
		return 0;
	if (call->next_token != NULL && strcmp(token, call->next_token) == 0) {
		aws_error_set(err, AWS_ERR_PARSE, "%s: the service repeated nextToken", call->operation);
		return -EBADMSG;
	}
	if (++call->pages >= IVS_MAX_PAGES) {
		aws_error_set(err, AWS_ERR_PARSE, "%s: more than %d pages", call->operation,
			      IVS_MAX_PAGES);
		return -E2BIG;
	}
	free(call->next_token);
	call->next_token = strdup(token);
	if (call->next_token == NULL ||
	    json_object_set_new(call->request, "nextToken", json_string(token)) < 0)
		r = -ENOMEM;
	else
		r = send_call(call);
	if (r < 0) {
		aws_error_set(err, AWS_ERR_LOCAL, "%s: cannot request the next page: %s",
			      call->operation, strerror(-r));
		return r;
	}
	return 1;
}

static void on_aws_done(void *ud, const struct aws_error *aerr, int status, const char *body,
			size_t len)
{
	struct ivs_call *call = ud;
	char token[IVS_NEXT_TOKEN_MAX + 1] = "";
	struct aws_error err = *aerr;
	struct ivs_stage stage = { 0 };
	struct ivs_participant participant;
	const void *one = NULL;
	int r = 0;

	(void)status;
	if (err.kind != AWS_OK) {
		deliver(call, &err, NULL);
		return;
	}
	switch (call->kind) {
	case R_DONE:
		break;
	case R_STAGE:
		r = ivs_parse_stage_response(body, len, &stage, &err);
		one = &stage;
		break;
	case R_PARTICIPANT:
		r = ivs_parse_participant_response(body, len, &participant, &err);
		one = &participant;
		break;
	case R_STAGES:
		r = ivs_parse_stage_page(body, len, &call->stages, token, &err);
		break;
	case R_PARTICIPANTS:
		r = ivs_parse_participant_page(body, len, &call->participants, token, &err);
		break;
	case R_REPLICAS:
		r = ivs_parse_replica_page(body, len, &call->replicas, token, &err);
		break;
	}
	if (r == -ENOMEM)
		aws_error_set(&err, AWS_ERR_LOCAL, "%s: out of memory", call->operation);
	if (r < 0) {
		/* keep the request id of the response that did not parse */
		snprintf(err.request_id, sizeof(err.request_id), "%s", aerr->request_id);
		deliver(call, &err, NULL);
		return;
	}
	if (call->page_cb != NULL) {
		/* hand the page over and forget it: memory stays one page whatever the listing */
		call->page_cb(call->ud, &call->stages);
		ivs_stage_list_clear(&call->stages);
	}
	if (call->kind == R_STAGES || call->kind == R_PARTICIPANTS || call->kind == R_REPLICAS) {
		r = next_page(call, token, &err);
		if (r > 0)
			return;
		if (r < 0) {
			deliver(call, &err, NULL);
			return;
		}
	}
	deliver(call, &err, one);
	ivs_stage_clear(&stage);
}

static struct ivs_call *call_new(struct aws_client *c, enum result_kind kind,
				 const char *operation, void *cb, void *ud)
{
	struct ivs_call *call;

	if (cb == NULL)
		return NULL;
	call = calloc(1, sizeof(*call));
	if (call == NULL)
		return NULL;
	call->request = json_object();
	if (call->request == NULL) {
		free(call);
		return NULL;
	}
	call->client = c;
	call->cls = aws_client_class(c);
	call->kind = kind;
	call->operation = operation;
	call->cb = cb;
	call->ud = ud;
	return call;
}

/* Set string members (name, value, ..., NULL); a NULL value is an error. */
static int set_strings(json_t *obj, ...)
{
	va_list ap;
	const char *k, *v;
	int r = 0;

	va_start(ap, obj);
	while (r == 0 && (k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		if (v == NULL || v[0] == '\0')
			r = -EINVAL;
		else if (json_object_set_new(obj, k, json_string(v)) < 0)
			r = -EINVAL;    /* also invalid UTF-8 */
	}
	va_end(ap);
	return r;
}

static int set_map(json_t *obj, const char *member, const struct ivs_kv *kv, size_t n)
{
	json_t *map;
	size_t i;

	if (n == 0)
		return 0;
	if (kv == NULL || n > IVS_TAGS_MAX)
		return -EINVAL;
	map = json_object();
	if (map == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (kv[i].key == NULL || kv[i].value == NULL || kv[i].key[0] == '\0' ||
		    json_object_set_new(map, kv[i].key, json_string(kv[i].value)) < 0) {
			json_decref(map);
			return -EINVAL;
		}
	}
	return json_object_set_new(obj, member, map) < 0 ? -ENOMEM : 0;
}

static int start(struct ivs_call *call, int r)
{
	if (r == 0)
		r = send_call(call);
	if (r < 0)
		call_free(call);
	return r;
}

int ivs_create_stage(struct aws_client *c, const char *name, const struct ivs_kv *tags,
		     size_t ntags, ivs_stage_fn cb, void *ud)
{
	struct ivs_call *call = call_new(c, R_STAGE, "CreateStage", (void *)cb, ud);
	int r = 0;

	if (call == NULL)
		return cb ? -ENOMEM : -EINVAL;
	/* No idempotency token: a create whose answer was lost is looked up, never resent. */
	call->at_most_once = true;
	if (name != NULL && name[0] != '\0')
		r = set_strings(call->request, "name", name, NULL);
	if (r == 0)
		r = set_map(call->request, "tags", tags, ntags);
	return start(call, r);
}

int ivs_get_stage(struct aws_client *c, const char *arn, ivs_stage_fn cb, void *ud)
{
	struct ivs_call *call = call_new(c, R_STAGE, "GetStage", (void *)cb, ud);

	if (call == NULL)
		return cb ? -ENOMEM : -EINVAL;
	return start(call, set_strings(call->request, "arn", arn, NULL));
}

int ivs_delete_stage(struct aws_client *c, const char *arn, ivs_done_fn cb, void *ud)
{
	struct ivs_call *call = call_new(c, R_DONE, "DeleteStage", (void *)cb, ud);

	if (call == NULL)
		return cb ? -ENOMEM : -EINVAL;
	return start(call, set_strings(call->request, "arn", arn, NULL));
}

/* RFC 3986 unreserved characters stay, everything else is %XX (the ARN's ':' and '/'). */
static int percent_encode(const char *s, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		bool keep = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~';
		if (n + (keep ? 1 : 3) >= size)
			return -ENAMETOOLONG;
		if (keep) {
			out[n++] = (char)ch;
		} else {
			out[n++] = '%';
			out[n++] = hex[ch >> 4];
			out[n++] = hex[ch & 15];
		}
	}
	out[n] = '\0';
	return 0;
}

int ivs_tag_resource(struct aws_client *c, const char *arn, const struct ivs_kv *tags,
		     size_t ntags, ivs_done_fn cb, void *ud)
{
	struct ivs_call *call = call_new(c, R_DONE, "TagResource", (void *)cb, ud);
	char encoded[IVS_TAG_PATH_MAX];
	int r;

	if (call == NULL)
		return cb ? -ENOMEM : -EINVAL;
	r = arn != NULL && arn[0] != '\0' && ntags > 0 ? 0 : -EINVAL;
	if (r == 0)
		r = percent_encode(arn, encoded, sizeof(encoded) - 6);
	if (r == 0) {
		r = asprintf(&call->path, "/tags/%s", encoded) < 0 ? -ENOMEM : 0;
		if (r < 0)
			call->path = NULL;
	}
	if (r == 0) {
		r = set_map(call->request, "tags", tags, ntags);
	}
	return start(call, r);
}

int ivs_list_stages(struct aws_client *c, ivs_stages_fn cb, void *ud)
{
	struct ivs_call *call = call_new(c, R_STAGES, "ListStages", (void *)cb, ud);

	if (call == NULL)
		return cb ? -ENOMEM : -EINVAL;
	return start(call, json_object_set_new(call->request, "maxResults", json_integer(100)));
}

int ivs_list_stages_paged(struct aws_client *c, ivs_stage_page_fn page, ivs_stages_fn done,
			  void *ud)
{
	struct ivs_call *call;

	if (page == NULL)
		return -EINVAL;
	call = call_new(c, R_STAGES, "ListStages", (void *)done, ud);
	if (call == NULL)
		return done ? -ENOMEM : -EINVAL;
	call->page_cb = page;
	return start(call, json_object_set_new(call->request, "maxResults", json_integer(100)));
}

int ivs_list_participants(struct aws_client *c, const char *stage_arn, const char *session_id,
			  const struct ivs_participant_filter *filter, ivs_participants_fn cb,
			  void *ud)
{
	struct ivs_call *call = call_new(c, R_PARTICIPANTS, "ListParticipants", (void *)cb, ud);
	json_t *req;
	int r;

	if (call == NULL)
		return cb ? -ENOMEM : -EINVAL;
	req = call->request;
	r = set_strings(req, "stageArn", stage_arn, "sessionId", session_id, NULL);
	if (r == 0)
		r = json_object_set_new(req, "maxResults", json_integer(100));
	if (r == 0 && filter != NULL) {
		switch (filter->kind) {
		case IVS_FILTER_NONE:
			break;
		case IVS_FILTER_PUBLISHED:
			r = json_object_set_new(req, "filterByPublished",
						json_boolean(filter->published));
			break;
		case IVS_FILTER_STATE:
			if (filter->state == IVS_PARTICIPANT_CONNECTED ||
			    filter->state == IVS_PARTICIPANT_DISCONNECTED)
				r = set_strings(req, "filterByState",
						ivs_participant_state_name(filter->state), NULL);
			else
				r = -EINVAL;
			break;
		case IVS_FILTER_USER_ID:
			r = set_strings(req, "filterByUserId", filter->user_id, NULL);
			break;
		default:
			r = -EINVAL;
		}
	}
	return start(call, r < 0 ? -EINVAL : 0);
}

int ivs_get_participant(struct aws_client *c, const char *stage_arn, const char *session_id,
			const char *participant_id, ivs_participant_fn cb, void *ud)
{
	struct ivs_call *call = call_new(c, R_PARTICIPANT, "GetParticipant", (void *)cb, ud);

	if (call == NULL)
		return cb ? -ENOMEM : -EINVAL;
	return start(call, set_strings(call->request, "stageArn", stage_arn, "sessionId", session_id,
				       "participantId", participant_id, NULL));
}

int ivs_start_participant_replication(struct aws_client *c, const char *source_stage_arn,
				      const char *destination_stage_arn,
				      const char *participant_id, int reconnect_window_s,
				      const struct ivs_kv *attributes, size_t nattributes,
				      ivs_done_fn cb, void *ud)
{
	struct ivs_call *call = call_new(c, R_DONE, "StartParticipantReplication", (void *)cb, ud);
	int r;

	if (call == NULL)
		return cb ? -ENOMEM : -EINVAL;
	r = set_strings(call->request, "sourceStageArn", source_stage_arn, "destinationStageArn",
			destination_stage_arn, "participantId", participant_id, NULL);
	if (r == 0 && (reconnect_window_s < 0 || reconnect_window_s > 300))
		r = -EINVAL;
	if (r == 0 && reconnect_window_s > 0)
		r = json_object_set_new(call->request, "reconnectWindowSeconds",
					json_integer(reconnect_window_s)) < 0 ? -ENOMEM : 0;
	if (r == 0)
		r = set_map(call->request, "attributes", attributes, nattributes);
	return start(call, r);
}

int ivs_stop_participant_replication(struct aws_client *c, const char *source_stage_arn,
				     const char *destination_stage_arn,
				     const char *participant_id, ivs_done_fn cb, void *ud)
{
	struct ivs_call *call = call_new(c, R_DONE, "StopParticipantReplication", (void *)cb, ud);

	if (call == NULL)
		return cb ? -ENOMEM : -EINVAL;
	return start(call, set_strings(call->request, "sourceStageArn", source_stage_arn,
				       "destinationStageArn", destination_stage_arn,
				       "participantId", participant_id, NULL));
}

int ivs_list_participant_replicas(struct aws_client *c, const char *source_stage_arn,
				  const char *participant_id, ivs_replicas_fn cb, void *ud)
{
	struct ivs_call *call = call_new(c, R_REPLICAS, "ListParticipantReplicas", (void *)cb, ud);
	int r;

	if (call == NULL)
		return cb ? -ENOMEM : -EINVAL;
	r = set_strings(call->request, "sourceStageArn", source_stage_arn, "participantId",
			participant_id, NULL);
	if (r == 0)
		r = json_object_set_new(call->request, "maxResults", json_integer(50));
	return start(call, r < 0 ? -EINVAL : 0);
}

bool ivs_operation_mutates(const char *operation)
{
	static const char *const reads[] = {
		"ListStages", "GetStage", "ListParticipants", "GetParticipant",
		"ListParticipantReplicas", "ListTagsForResource",
	};

	/* Everything not known to be a read counts as a write: a new operation is gated too. */
	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
		if (strcmp(operation, reads[i]) == 0)
			return false;
	return true;
}
