/*
 * ivs.h — the typed IVS Real-time API the controller uses, over aws.c and jansson.
 *
 * Every function queues a call and returns 0 or a negative errno; the callback runs once from
 * the event loop with err->kind == AWS_OK on success. Results passed to callbacks (stages,
 * participants, replicas, lists) are owned by this module and valid ONLY during the callback:
 * copy what you keep. List operations follow nextToken through all pages (at most
 * IVS_MAX_PAGES; a repeated token is an error) before calling back once.
 * Request bodies contain only members of the model (service-2.json). A call, with all its
 * pages, has the client's class (aws_client_set_class) at the time it is queued.
 */
#ifndef IVS_IVS_H
#define IVS_IVS_H

#include <stdbool.h>
#include <stddef.h>

#include "aws.h"
#include "ivs_parse.h"

#define IVS_MAX_PAGES 200

struct ivs_kv {
	const char *key;
	const char *value;
};

enum ivs_participant_filter_kind {
	IVS_FILTER_NONE = 0,
	IVS_FILTER_PUBLISHED,       /* filterByPublished = published */
	IVS_FILTER_STATE,           /* filterByState = state (CONNECTED / DISCONNECTED) */
	IVS_FILTER_USER_ID,         /* filterByUserId = user_id */
};

struct ivs_participant_filter {
	enum ivs_participant_filter_kind kind;
	bool published;
	enum ivs_participant_state state;
	const char *user_id;
};

typedef void (*ivs_done_fn)(void *ud, const struct aws_error *err);
typedef void (*ivs_stage_fn)(void *ud, const struct aws_error *err, const struct ivs_stage *stage);
typedef void (*ivs_stages_fn)(void *ud, const struct aws_error *err,
			      const struct ivs_stage_list *stages);
typedef void (*ivs_participant_fn)(void *ud, const struct aws_error *err,
				   const struct ivs_participant *participant);
typedef void (*ivs_participants_fn)(void *ud, const struct aws_error *err,
				    const struct ivs_participant_list *participants);
typedef void (*ivs_replicas_fn)(void *ud, const struct aws_error *err,
				const struct ivs_replica_list *replicas);

/*
 * What a 409 ConflictException of StartParticipantReplication means. IVS says it only in the
 * message text ("participant <id> is already replicating to stage <arn>", "participant <id> is
 * not publishing"); this is the one place that reads it. IVS_CONFLICT_NONE for anything that is
 * not such a conflict (success included).
 */
enum ivs_conflict {
	IVS_CONFLICT_NONE = 0,
	IVS_CONFLICT_ALREADY_REPLICATING,   /* the replication exists: as good as started */
	IVS_CONFLICT_NOT_PUBLISHING,        /* the host stopped publishing: retry later */
	IVS_CONFLICT_OTHER,                 /* another conflict */
};
enum ivs_conflict ivs_conflict_of(const struct aws_error *err);

/* stage is NULL on error. tags: ntags pairs (0..50). name may be NULL. */
int ivs_create_stage(struct aws_client *c, const char *name, const struct ivs_kv *tags,
		     size_t ntags, ivs_stage_fn cb, void *ud);
int ivs_get_stage(struct aws_client *c, const char *arn, ivs_stage_fn cb, void *ud);
int ivs_delete_stage(struct aws_client *c, const char *arn, ivs_done_fn cb, void *ud);
/* POST /tags/{arn} {"tags": {...}}: add (or overwrite) tags on a resource; ntags 1..50. */
int ivs_tag_resource(struct aws_client *c, const char *arn, const struct ivs_kv *tags,
		     size_t ntags, ivs_done_fn cb, void *ud);
int ivs_list_stages(struct aws_client *c, ivs_stages_fn cb, void *ud);
/*
 * ListStages page by page, so a listing of any size costs one page of memory: page runs for
 * each page as it arrives (valid only during the call; the next page is requested after it
 * returns), then done runs once with the outcome (its list is empty on success). After an
 * error, what page delivered before is incomplete: the caller must not trust a partial
 * listing for anything but what it read.
 */
typedef void (*ivs_stage_page_fn)(void *ud, const struct ivs_stage_list *page);
int ivs_list_stages_paged(struct aws_client *c, ivs_stage_page_fn page, ivs_stages_fn done,
			  void *ud);
int ivs_list_participants(struct aws_client *c, const char *stage_arn, const char *session_id,
			  const struct ivs_participant_filter *filter, ivs_participants_fn cb,
			  void *ud);
int ivs_get_participant(struct aws_client *c, const char *stage_arn, const char *session_id,
			const char *participant_id, ivs_participant_fn cb, void *ud);
/* reconnect_window_s 0..300; attributes may be NULL. */
int ivs_start_participant_replication(struct aws_client *c, const char *source_stage_arn,
				      const char *destination_stage_arn,
				      const char *participant_id, int reconnect_window_s,
				      const struct ivs_kv *attributes, size_t nattributes,
				      ivs_done_fn cb, void *ud);
int ivs_stop_participant_replication(struct aws_client *c, const char *source_stage_arn,
				     const char *destination_stage_arn,
				     const char *participant_id, ivs_done_fn cb, void *ud);
int ivs_list_participant_replicas(struct aws_client *c, const char *source_stage_arn,
				  const char *participant_id, ivs_replicas_fn cb, void *ud);

/* Does this operation change anything in IVS? (Only a leader may send those.) */
bool ivs_operation_mutates(const char *operation);

#endif
