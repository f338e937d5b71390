/*
 * ivs_parse.h — pure parsers for IVS Real-time response bodies, and the plain C structs they
 * fill. No I/O; JSON via jansson.
 *
 * Rules (shapes and limits from service-2.json, shared/research/ivs-api.md Appendix A/B):
 *   - absent optional members are fine; "" is treated as absent (the CLI examples show
 *     sourceStageArn "" and activeSessionId may be "");
 *   - types are strict: a member of the wrong type is a parse error naming the member;
 *   - required members (stage arn, the replica members, the list arrays) must be present;
 *   - strings longer than the model allows (counted in bytes; user ids and tag values are
 *     allowed 4 bytes per character) are parse errors, so every string fits its buffer;
 *   - unknown members are ignored (the service adds members over time);
 *   - enum values outside the model map to *_UNKNOWN rather than failing: the service adds
 *     values (replicationType arrived in 2025), and the controller must keep working; callers
 *     treat UNKNOWN as "not what I am looking for";
 *   - bodies over IVS_PARSE_MAX_BODY and lists over IVS_PARSE_MAX_ITEMS are rejected.
 * Errors: 0, or -EBADMSG with err->kind = AWS_ERR_PARSE and a message, or -ENOMEM.
 */
#ifndef IVS_IVS_PARSE_H
#define IVS_IVS_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "awserr.h"

#define IVS_PARSE_MAX_BODY   (4u * 1024u * 1024u)
#define IVS_PARSE_MAX_ITEMS  100000u       /* over all pages of one listing */

#define IVS_ARN_MAX          128
#define IVS_SESSION_ID_MAX   16
#define IVS_PARTICIPANT_ID_MAX 64
#define IVS_STAGE_NAME_MAX   128
#define IVS_USER_ID_MAX      (128 * 4)
#define IVS_TIME_MAX         63
#define IVS_TAGS_MAX         50
#define IVS_TAG_KEY_MAX      (128 * 4)
#define IVS_TAG_VALUE_MAX    (256 * 4)
#define IVS_NEXT_TOKEN_MAX   1024

struct ivs_tag {
	char *key;                       /* heap, owned by the stage */
	char *value;
};

struct ivs_stage {
	char arn[IVS_ARN_MAX + 1];
	char name[IVS_STAGE_NAME_MAX + 1];
	char active_session_id[IVS_SESSION_ID_MAX + 1];   /* "" when no session is active */
	struct ivs_tag *tags;            /* heap array, ntags entries */
	size_t ntags;
};

enum ivs_participant_state {
	IVS_PARTICIPANT_STATE_UNSET = 0,
	IVS_PARTICIPANT_CONNECTED,
	IVS_PARTICIPANT_DISCONNECTED,
	IVS_PARTICIPANT_STATE_UNKNOWN,
};

enum ivs_replication_type {
	IVS_REPLICATION_TYPE_NONE = 0,   /* also when absent (model default NONE) */
	IVS_REPLICATION_TYPE_SOURCE,
	IVS_REPLICATION_TYPE_REPLICA,
	IVS_REPLICATION_TYPE_UNKNOWN,
};

enum ivs_replication_state {
	IVS_REPLICATION_STATE_NONE = 0,  /* absent */
	IVS_REPLICATION_ACTIVE,
	IVS_REPLICATION_STOPPED,
	IVS_REPLICATION_STATE_UNKNOWN,
};

struct ivs_participant {
	char participant_id[IVS_PARTICIPANT_ID_MAX + 1];
	char user_id[IVS_USER_ID_MAX + 1];
	enum ivs_participant_state state;
	bool published;
	enum ivs_replication_type replication_type;
	enum ivs_replication_state replication_state;
	char source_stage_arn[IVS_ARN_MAX + 1];
	char source_session_id[IVS_SESSION_ID_MAX + 1];
	char first_join_time[IVS_TIME_MAX + 1];      /* ISO 8601 as sent, "" when absent */
};

struct ivs_replica {
	char source_stage_arn[IVS_ARN_MAX + 1];
	char participant_id[IVS_PARTICIPANT_ID_MAX + 1];
	char source_session_id[IVS_SESSION_ID_MAX + 1];
	char destination_stage_arn[IVS_ARN_MAX + 1];
	char destination_session_id[IVS_SESSION_ID_MAX + 1];
	enum ivs_replication_state replication_state;
};

struct ivs_stage_list {
	struct ivs_stage *items;
	size_t n, cap;
};

struct ivs_participant_list {
	struct ivs_participant *items;
	size_t n, cap;
};

struct ivs_replica_list {
	struct ivs_replica *items;
	size_t n, cap;
};

void ivs_stage_clear(struct ivs_stage *stage);
void ivs_stage_list_clear(struct ivs_stage_list *list);
void ivs_participant_list_clear(struct ivs_participant_list *list);
void ivs_replica_list_clear(struct ivs_replica_list *list);

/* Value of tag key, or NULL. */
const char *ivs_stage_tag(const struct ivs_stage *stage, const char *key);

const char *ivs_participant_state_name(enum ivs_participant_state s);
const char *ivs_replication_type_name(enum ivs_replication_type t);
const char *ivs_replication_state_name(enum ivs_replication_state s);

/* {"stage": Stage} (GetStage, CreateStage). *out must be zeroed; cleared on error. */
int ivs_parse_stage_response(const char *body, size_t len, struct ivs_stage *out,
			     struct aws_error *err);

/* {"participant": Participant} (GetParticipant). */
int ivs_parse_participant_response(const char *body, size_t len, struct ivs_participant *out,
				   struct aws_error *err);

/*
 * One page of a listing: items are APPENDED to list (so pages accumulate), next_token gets
 * the page's nextToken or "" when it is the last page. On error the list keeps the items of
 * earlier pages (the caller clears it).
 */
int ivs_parse_stage_page(const char *body, size_t len, struct ivs_stage_list *list,
			 char next_token[IVS_NEXT_TOKEN_MAX + 1], struct aws_error *err);
int ivs_parse_participant_page(const char *body, size_t len, struct ivs_participant_list *list,
			       char next_token[IVS_NEXT_TOKEN_MAX + 1], struct aws_error *err);
int ivs_parse_replica_page(const char *body, size_t len, struct ivs_replica_list *list,
			   char next_token[IVS_NEXT_TOKEN_MAX + 1], struct aws_error *err);

#endif
