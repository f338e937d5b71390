/*
 * sts_parse.c — STS XML answers (see sts_parse.h) with libexpat's streaming parser: a stack of
 * element names, and the text of the few elements we read collected into bounded buffers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <expat.h>
#include <openssl/crypto.h>

#include "creds.h"
#include "sts_parse.h"

enum field {
	F_NONE = -1,
	F_AKID,
	F_SECRET,
	F_TOKEN,
	F_EXPIRATION,
	F_ROLE_ARN,
	F_CODE,
	F_MESSAGE,
	F_REQUEST_ID,
	F_COUNT
};

struct parse_state {
	XML_Parser parser;
	const char *action;
	char result_name[64];            /* "<action>Result" */
	char response_name[64];          /* "<action>Response" */
	const char *stack[STS_MAX_DEPTH];
	int depth;
	int is_error, root_seen;
	enum field capturing;            /* the element whose text is being collected */
	int capture_depth;
	char *value[F_COUNT];
	size_t value_len[F_COUNT];
	int seen[F_COUNT];
	char why[160];
};

/* Names arrive as "uri name" (ParserCreateNS with ' '); only the local name matters. */
static const char *local_name(const char *name)
{
	const char *sp = strrchr(name, ' ');

	return sp != NULL ? sp + 1 : name;
}

static void fail(struct parse_state *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct parse_state *s, const char *fmt, ...)
{
	va_list ap;

	if (s->why[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(s->why, sizeof(s->why), fmt, ap);
		va_end(ap);
	}
	XML_StopParser(s->parser, XML_FALSE);
}

static int at(const struct parse_state *s, const char *a, const char *b, const char *c)
{
	/* The current element's parents (depth = index of the new element). */
	return (a == NULL || (s->depth > 1 && strcmp(s->stack[1], a) == 0)) &&
	       (b == NULL || (s->depth > 2 && strcmp(s->stack[2], b) == 0)) &&
	       (c == NULL || (s->depth > 3 && strcmp(s->stack[3], c) == 0));
}

static enum field field_for(const struct parse_state *s, const char *name)
{
	if (!s->is_error) {
		if (s->depth == 3 && at(s, s->result_name, "Credentials", NULL)) {
			if (strcmp(name, "AccessKeyId") == 0)
				return F_AKID;
			if (strcmp(name, "SecretAccessKey") == 0)
				return F_SECRET;
			if (strcmp(name, "SessionToken") == 0)
				return F_TOKEN;
			if (strcmp(name, "Expiration") == 0)
				return F_EXPIRATION;
		}
		if (s->depth == 3 && at(s, s->result_name, "AssumedRoleUser", NULL) &&
		    strcmp(name, "Arn") == 0)
			return F_ROLE_ARN;
		if (s->depth == 2 && at(s, "ResponseMetadata", NULL, NULL) &&
		    strcmp(name, "RequestId") == 0)
			return F_REQUEST_ID;
		return F_NONE;
	}
	if (s->depth == 2 && at(s, "Error", NULL, NULL)) {
		if (strcmp(name, "Code") == 0)
			return F_CODE;
		if (strcmp(name, "Message") == 0)
			return F_MESSAGE;
	}
	if (s->depth == 1 && strcmp(name, "RequestId") == 0)
		return F_REQUEST_ID;
	return F_NONE;
}

static void XMLCALL on_start(void *ud, const XML_Char *qname, const XML_Char **attrs)
{
	struct parse_state *s = ud;
	const char *name = local_name(qname);
	enum field f;

	(void)attrs;
	if (s->capturing != F_NONE) {
		fail(s, "element <%.40s> inside a value", name);
		return;
	}
	if (s->depth >= STS_MAX_DEPTH) {
		fail(s, "elements nested deeper than %d", STS_MAX_DEPTH);
		return;
	}
	if (s->depth == 0) {
		if (s->root_seen) {
			fail(s, "a second root element <%.40s>", name);
			return;
		}
		s->root_seen = 1;
		if (strcmp(name, "ErrorResponse") == 0)
			s->is_error = 1;
		else if (strcmp(name, s->response_name) != 0) {
			fail(s, "unexpected root element <%.40s>", name);
			return;
		}
	}
	f = s->depth > 0 ? field_for(s, name) : F_NONE;
	s->stack[s->depth++] = strcmp(name, s->result_name) == 0 ? s->result_name :
			       strcmp(name, "Credentials") == 0 ? "Credentials" :
			       strcmp(name, "AssumedRoleUser") == 0 ? "AssumedRoleUser" :
			       strcmp(name, "ResponseMetadata") == 0 ? "ResponseMetadata" :
			       strcmp(name, "Error") == 0 ? "Error" : "";
	if (f != F_NONE) {
		if (s->seen[f]) {
			fail(s, "<%.40s> appears twice", name);
			return;
		}
		s->seen[f] = 1;
		s->capturing = f;
		s->capture_depth = s->depth;
	}
}

static void XMLCALL on_end(void *ud, const XML_Char *qname)
{
	struct parse_state *s = ud;

	(void)qname;
	if (s->capturing != F_NONE && s->depth == s->capture_depth)
		s->capturing = F_NONE;
	if (s->depth > 0)
		s->depth--;
}

static void XMLCALL on_text(void *ud, const XML_Char *text, int len)
{
	struct parse_state *s = ud;
	enum field f = s->capturing;
	char *nv;

	if (f == F_NONE || len <= 0)
		return;
	if ((size_t)len > STS_MAX_VALUE - s->value_len[f]) {
		fail(s, "a value longer than %d bytes", STS_MAX_VALUE);
		return;
	}
	nv = realloc(s->value[f], s->value_len[f] + (size_t)len + 1);
	if (nv == NULL) {
		fail(s, "%s", "out of memory");
		return;
	}
	s->value[f] = nv;
	memcpy(nv + s->value_len[f], text, (size_t)len);
	s->value_len[f] += (size_t)len;
	nv[s->value_len[f]] = '\0';
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
			       const XML_Char *pubid, int has_internal_subset)
{
	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal_subset;
	fail(ud, "%s", "a DOCTYPE (refused: no DTDs, no entities)");
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param,
			      const XML_Char *value, int value_length, const XML_Char *base,
			      const XML_Char *system_id, const XML_Char *public_id,
			      const XML_Char *notation)
{
	(void)name;
	(void)is_param;
	(void)value;
	(void)value_length;
	(void)base;
	(void)system_id;
	(void)public_id;
	(void)notation;
	fail(ud, "%s", "an entity declaration (refused)");
}

static void state_free(struct parse_state *s)
{
	for (int i = 0; i < F_COUNT; i++) {
		if (s->value[i] != NULL)
			OPENSSL_cleanse(s->value[i], s->value_len[i]);
		free(s->value[i]);
	}
}

/* Trimmed value (AWS pretty-prints with newlines around elements only, but be tolerant). */
static const char *value_of(struct parse_state *s, enum field f)
{
	char *v = s->value[f];
	size_t len = s->value_len[f];

	if (v == NULL)
		return NULL;
	while (len > 0 && strchr(" \t\r\n", v[len - 1]) != NULL)
		v[--len] = '\0';
	while (*v != '\0' && strchr(" \t\r\n", *v) != NULL)
		v++;
	return v;
}

static int copy_bounded(char *dst, size_t n, const char *src, const char *what, char *why,
			size_t wn)
{
	if (src == NULL)
		src = "";
	if (strlen(src) >= n) {
		snprintf(why, wn, "%s is too long", what);
		return -EINVAL;
	}
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

int sts_parse_answer(const char *action, const char *body, size_t len, struct sts_answer *out,
		     char *why, size_t n)
{
	struct parse_state s;
	int r = -EINVAL;

	memset(out, 0, sizeof(*out));
	memset(&s, 0, sizeof(s));
	s.capturing = F_NONE;
	if (action == NULL || (strcmp(action, "AssumeRole") != 0 &&
			       strcmp(action, "AssumeRoleWithWebIdentity") != 0)) {
		snprintf(why, n, "unknown STS action");
		return -EINVAL;
	}
	if (body == NULL || len == 0) {
		snprintf(why, n, "empty body");
		return -EINVAL;
	}
	if (len > STS_MAX_BODY) {
		snprintf(why, n, "body larger than %d KiB", STS_MAX_BODY / 1024);
		return -EINVAL;
	}
	s.action = action;
	snprintf(s.result_name, sizeof(s.result_name), "%sResult", action);
	snprintf(s.response_name, sizeof(s.response_name), "%sResponse", action);
	s.parser = XML_ParserCreateNS("UTF-8", ' ');
	if (s.parser == NULL) {
		snprintf(why, n, "out of memory");
		return -ENOMEM;
	}
	XML_SetUserData(s.parser, &s);
	XML_SetElementHandler(s.parser, on_start, on_end);
	XML_SetCharacterDataHandler(s.parser, on_text);
	XML_SetStartDoctypeDeclHandler(s.parser, on_doctype);
	XML_SetEntityDeclHandler(s.parser, on_entity);
	XML_SetParamEntityParsing(s.parser, XML_PARAM_ENTITY_PARSING_NEVER);
	if (XML_Parse(s.parser, body, (int)len, XML_TRUE) != XML_STATUS_OK) {
		if (s.why[0] != '\0')
			snprintf(why, n, "%s", s.why);
		else
			snprintf(why, n, "malformed XML at line %lu: %s",
				 (unsigned long)XML_GetCurrentLineNumber(s.parser),
				 XML_ErrorString(XML_GetErrorCode(s.parser)));
		goto out;
	}
	out->is_error = s.is_error;
	if (copy_bounded(out->request_id, sizeof(out->request_id), value_of(&s, F_REQUEST_ID),
			 "RequestId", why, n) < 0)
		goto out;
	if (s.is_error) {
		const char *code = value_of(&s, F_CODE);
		if (code == NULL || code[0] == '\0') {
			snprintf(why, n, "an ErrorResponse without <Error><Code>");
			goto out;
		}
		if (copy_bounded(out->error_code, sizeof(out->error_code), code, "Code", why, n) < 0)
			goto out;
		/* A long message is cut, not refused: it is only logged. */
		snprintf(out->error_message, sizeof(out->error_message), "%s",
			 value_of(&s, F_MESSAGE) ? value_of(&s, F_MESSAGE) : "");
		r = 0;
		goto out;
	}
	static const struct {
		enum field f;
		const char *name;
	} need[] = { { F_AKID, "AccessKeyId" }, { F_SECRET, "SecretAccessKey" },
		     { F_TOKEN, "SessionToken" }, { F_EXPIRATION, "Expiration" } };
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		const char *v = value_of(&s, need[i].f);
		if (v == NULL || v[0] == '\0') {
			snprintf(why, n, "<Credentials><%s> is missing or empty", need[i].name);
			goto out;
		}
	}
	if (creds_parse_time(value_of(&s, F_EXPIRATION), &out->credentials.expiration) < 0) {
		snprintf(why, n, "<Expiration> is not an ISO 8601 time");
		goto out;
	}
	if (copy_bounded(out->assumed_role_arn, sizeof(out->assumed_role_arn),
			 value_of(&s, F_ROLE_ARN), "AssumedRoleUser Arn", why, n) < 0)
		goto out;
	out->credentials.access_key_id = strdup(value_of(&s, F_AKID));
	out->credentials.secret_access_key = strdup(value_of(&s, F_SECRET));
	out->credentials.session_token = strdup(value_of(&s, F_TOKEN));
	if (out->credentials.access_key_id == NULL || out->credentials.secret_access_key == NULL ||
	    out->credentials.session_token == NULL) {
		snprintf(why, n, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	r = 0;
out:
	if (r < 0)
		sts_answer_clear(out);
	XML_ParserFree(s.parser);
	state_free(&s);
	return r;
}

void sts_answer_clear(struct sts_answer *a)
{
	aws_credentials_clear(&a->credentials);
	memset(a, 0, sizeof(*a));
}
