/*
 * config_yaml.c — the YAML document to a small tree of our own (see config_internal.h).
 *
 * libyaml's event parser builds scalars, mappings and sequences, each with its 1-based
 * line/column; this is where the document-level rules live: size of the tree, depth, one
 * document, no anchors/aliases (no alias bombs), no tags. What a plain scalar means (null,
 * boolean) is decided here too, once for the whole schema.
 */
#include "config_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#define NODES_MAX        20000 /* far above any real config; bounds memory on hostile input */

void config_node_free(struct node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->n; i++)
		config_node_free(n->items[i]);
	free(n->items);
	free(n->value);
	free(n);
}

static struct node *node_new(enum node_kind kind, yaml_mark_t mark)
{
	struct node *n = calloc(1, sizeof(*n));

	if (n == NULL)
		return NULL;
	n->kind = kind;
	n->line = (unsigned)mark.line + 1;
	n->col = (unsigned)mark.column + 1;
	return n;
}

static int node_append(struct node *parent, struct node *child)
{
	if (parent->n == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 8;
		struct node **items = realloc(parent->items, cap * sizeof(*items));
		if (items == NULL)
			return -ENOMEM;
		parent->items = items;
		parent->cap = cap;
	}
	parent->items[parent->n++] = child;
	return 0;
}

/* libyaml's reader errors carry a byte offset, not a mark: turn it into line/column. */
static void offset_to_mark(const char *data, size_t len, size_t offset, unsigned *line, unsigned *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < offset && i < len; i++) {
		if (data[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if (((unsigned char)data[i] & 0xc0) != 0x80) {
			(*col)++;
		}
	}
}

static void yaml_error(const char *name, const yaml_parser_t *p, const char *data, size_t len,
		       struct config_errors *errs)
{
	unsigned line, col;
	const char *problem = p->problem ? p->problem : "malformed YAML";

	if (p->error == YAML_READER_ERROR) {
		offset_to_mark(data, len, p->problem_offset, &line, &col);
		config_errors_add(errs, "%s:%u:%u: %s (not valid UTF-8 text?)", name, line, col, problem);
	} else if (p->error == YAML_MEMORY_ERROR) {
		config_errors_add(errs, "%s:1:1: out of memory while parsing", name);
	} else if (p->context != NULL) {
		config_errors_add(errs, "%s:%u:%u: %s %s", name, (unsigned)p->problem_mark.line + 1,
				  (unsigned)p->problem_mark.column + 1, problem, p->context);
	} else {
		config_errors_add(errs, "%s:%u:%u: %s", name, (unsigned)p->problem_mark.line + 1,
				  (unsigned)p->problem_mark.column + 1, problem);
	}
}

static void mark_error(struct config_errors *errs, const char *name, yaml_mark_t mark,
		       const char *msg)
{
	config_errors_add(errs, "%s:%u:%u: %s", name, (unsigned)mark.line + 1, (unsigned)mark.column + 1, msg);
}

int config_yaml_parse(const char *name, const char *data, size_t len, struct node **root,
		      struct config_errors *errs)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	struct node *stack[CONFIG_MAX_DEPTH + 1];
	size_t depth = 0;
	struct node *doc = NULL;
	int documents = 0, r = -EINVAL;
	size_t nodes = 0;
	bool done = false;

	*root = NULL;
	if (!yaml_parser_initialize(&parser)) {
		config_errors_add(errs, "%s:1:1: out of memory", name);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	while (!done) {
		struct node *n = NULL;
		const yaml_char_t *anchor = NULL, *tag = NULL;

		if (!yaml_parser_parse(&parser, &ev)) {
			yaml_error(name, &parser, data, len, errs);
			goto out;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++documents > 1) {
				mark_error(errs, name, ev.start_mark,
					   "only one YAML document is allowed (found a second one)");
				goto out_event;
			}
			break;
		case YAML_ALIAS_EVENT:
			mark_error(errs, name, ev.start_mark,
				   "YAML aliases (*name) are not allowed in the configuration");
			goto out_event;
		case YAML_SCALAR_EVENT:
			anchor = ev.data.scalar.anchor;
			tag = ev.data.scalar.tag;
			n = node_new(NODE_SCALAR, ev.start_mark);
			if (n != NULL) {
				n->len = ev.data.scalar.length;
				n->value = malloc(n->len + 1);
				if (n->value != NULL) {
					memcpy(n->value, ev.data.scalar.value, n->len);
					n->value[n->len] = '\0';
				}
				n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
			}
			break;
		case YAML_SEQUENCE_START_EVENT:
			anchor = ev.data.sequence_start.anchor;
			tag = ev.data.sequence_start.tag;
			n = node_new(NODE_SEQ, ev.start_mark);
			break;
		case YAML_MAPPING_START_EVENT:
			anchor = ev.data.mapping_start.anchor;
			tag = ev.data.mapping_start.tag;
			n = node_new(NODE_MAP, ev.start_mark);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (depth > 0)
				depth--;
			break;
		default:
			break;
		}
		if (anchor != NULL) {
			config_node_free(n);
			mark_error(errs, name, ev.start_mark,
				   "YAML anchors (&name) are not allowed in the configuration");
			goto out_event;
		}
		if (tag != NULL) {
			config_node_free(n);
			mark_error(errs, name, ev.start_mark,
				   "YAML tags (!tag) are not allowed in the configuration");
			goto out_event;
		}
		if (ev.type == YAML_SCALAR_EVENT || ev.type == YAML_SEQUENCE_START_EVENT ||
		    ev.type == YAML_MAPPING_START_EVENT) {
			if (++nodes > NODES_MAX) {
				config_node_free(n);
				mark_error(errs, name, ev.start_mark,
					   "too many YAML nodes (more than 20000) for a configuration");
				goto out_event;
			}
			if (n == NULL || (n->kind == NODE_SCALAR && n->value == NULL)) {
				config_node_free(n);
				config_errors_add(errs, "%s:1:1: out of memory", name);
				r = -ENOMEM;
				goto out_event;
			}
			if (depth == 0) {
				doc = n;
			} else if (node_append(stack[depth - 1], n) < 0) {
				config_node_free(n);
				config_errors_add(errs, "%s:1:1: out of memory", name);
				r = -ENOMEM;
				goto out_event;
			}
			if (n->kind != NODE_SCALAR) {
				if (depth >= CONFIG_MAX_DEPTH) {
					mark_error(errs, name, ev.start_mark,
						   "nesting deeper than 16 levels is not allowed");
					goto out_event;
				}
				stack[depth++] = n;
			}
		}
		yaml_event_delete(&ev);
	}
	*root = doc;
	doc = NULL;
	r = 0;
	goto out;
out_event:
	yaml_event_delete(&ev);
out:
	config_node_free(doc);
	yaml_parser_delete(&parser);
	return r;
}

bool config_node_is_null(const struct node *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

	if (n->kind != NODE_SCALAR || !n->plain)
		return false;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(n->value, nulls[i]) == 0)
			return true;
	return false;
}

/* YAML 1.1 booleans too: "on"/"yes" as a string is almost always a surprise. */
bool config_node_is_bool(const struct node *n)
{
	static const char *const bools[] = {
		"true", "True", "TRUE", "false", "False", "FALSE", "yes", "Yes", "YES",
		"no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
	};

	if (n->kind != NODE_SCALAR || !n->plain)
		return false;
	for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++)
		if (strcmp(n->value, bools[i]) == 0)
			return true;
	return false;
}

const char *config_node_kind(const struct node *n)
{
	if (n->kind == NODE_MAP)
		return "a mapping";
	if (n->kind == NODE_SEQ)
		return "a sequence";
	if (config_node_is_null(n))
		return "null";
	if (config_node_is_bool(n))
		return "a boolean";
	return n->plain ? "a plain scalar" : "a quoted string";
}
