/*
 * ini.c — the AWS shared-file (credentials/config) parser; rules in ini.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ini.h"

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Trim blanks from both ends of [*s, *s + *n). */
static void trim(const char **s, size_t *n)
{
	while (*n > 0 && is_blank(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && (is_blank((*s)[*n - 1]) || (*s)[*n - 1] == '\r'))
		(*n)--;
}

static struct ini_section *find_mut(struct ini_file *f, const char *name, size_t n)
{
	for (size_t i = 0; i < f->nsections; i++)
		if (strlen(f->sections[i].name) == n && memcmp(f->sections[i].name, name, n) == 0)
			return &f->sections[i];
	return NULL;
}

static struct ini_section *add_section(struct ini_file *f, const char *name, size_t n)
{
	struct ini_section *s = find_mut(f, name, n), *ns;

	if (s != NULL)
		return s;
	ns = realloc(f->sections, (f->nsections + 1) * sizeof(*ns));
	if (ns == NULL)
		return NULL;
	f->sections = ns;
	s = &ns[f->nsections];
	memset(s, 0, sizeof(*s));
	s->name = strndup(name, n);
	if (s->name == NULL)
		return NULL;
	f->nsections++;
	return s;
}

/* Sets name = value in s (replacing an earlier value); returns the property or NULL. */
static struct ini_property *set_property(struct ini_section *s, const char *name, size_t nlen,
					 const char *value, size_t vlen)
{
	struct ini_property *p = NULL, *np;
	char *v = strndup(value, vlen);

	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < s->nprops; i++)
		if (strlen(s->props[i].name) == nlen && memcmp(s->props[i].name, name, nlen) == 0)
			p = &s->props[i];
	if (p != NULL) {
		OPENSSL_cleanse(p->value, strlen(p->value));
		free(p->value);
		p->value = v;
		return p;
	}
	np = realloc(s->props, (s->nprops + 1) * sizeof(*np));
	if (np == NULL) {
		free(v);
		return NULL;
	}
	s->props = np;
	p = &np[s->nprops];
	p->value = v;
	p->name = strndup(name, nlen);
	if (p->name == NULL) {
		free(v);
		return NULL;
	}
	s->nprops++;
	return p;
}

static int append_continuation(struct ini_property *p, const char *text, size_t n)
{
	size_t old = strlen(p->value);
	char *v = malloc(old + 1 + n + 1);

	if (v == NULL)
		return -ENOMEM;
	memcpy(v, p->value, old);
	v[old] = '\n';
	memcpy(v + old + 1, text, n);
	v[old + 1 + n] = '\0';
	OPENSSL_cleanse(p->value, old);
	free(p->value);
	p->value = v;
	return 0;
}

int ini_parse(const char *text, size_t len, struct ini_file **out, char *err, size_t errlen)
{
	struct ini_file *f;
	struct ini_section *cur = NULL;
	struct ini_property *last = NULL;
	size_t pos = 0, lineno = 0;
	const char *why = NULL;
	int r = 0;

	*out = NULL;
	if (errlen > 0)
		err[0] = '\0';
	if (text == NULL && len > 0)
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -ENOMEM;
	while (pos < len) {
		const char *line = text + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;
		int indented;

		pos += n + (nl ? 1 : 0);
		lineno++;
		if (n > INI_MAX_LINE) {
			why = "line too long";
			goto bad;
		}
		if (memchr(line, '\0', n) != NULL) {
			why = "NUL byte";
			goto bad;
		}
		indented = n > 0 && is_blank(line[0]);
		trim(&line, &n);
		if (n == 0 || line[0] == '#' || line[0] == ';')
			continue;
		if (indented && last != NULL) {
			if (append_continuation(last, line, n) < 0)
				goto nomem;
			continue;
		}
		if (indented) {
			why = "indented line without a property to continue";
			goto bad;
		}
		if (line[0] == '[') {
			const char *close = memchr(line, ']', n);
			const char *name = line + 1, *rest;
			size_t nn, rn;
			if (close == NULL) {
				why = "unterminated section header";
				goto bad;
			}
			nn = (size_t)(close - name);
			trim(&name, &nn);
			rest = close + 1;
			rn = n - (size_t)(rest - line);
			trim(&rest, &rn);
			if (nn == 0) {
				why = "empty section name";
				goto bad;
			}
			if (rn > 0 && rest[0] != '#' && rest[0] != ';') {
				why = "text after section header";
				goto bad;
			}
			cur = add_section(f, name, nn);
			if (cur == NULL)
				goto nomem;
			last = NULL;
			continue;
		}
		if (cur == NULL) {
			why = "property outside a [section]";
			goto bad;
		}
		const char *eq = memchr(line, '=', n);
		if (eq == NULL) {
			why = "expected 'name = value'";
			goto bad;
		}
		const char *name = line, *value = eq + 1;
		size_t nn = (size_t)(eq - line), vn = n - nn - 1;
		trim(&name, &nn);
		trim(&value, &vn);
		if (nn == 0) {
			why = "empty property name";
			goto bad;
		}
		last = set_property(cur, name, nn, value, vn);
		if (last == NULL)
			goto nomem;
	}
	*out = f;
	return 0;
bad:
	snprintf(err, errlen, "line %zu: %s", lineno, why);
	r = -EINVAL;
	goto fail;
nomem:
	r = -ENOMEM;
fail:
	ini_free(f);
	return r;
}

int ini_load_file(const char *path, struct ini_file **out, char *err, size_t errlen)
{
	FILE *fp;
	char *buf = NULL, inner[256];
	size_t n;
	int r;

	*out = NULL;
	if (errlen > 0)
		err[0] = '\0';
	fp = fopen(path, "re");
	if (fp == NULL) {
		r = -errno;
		if (r != -ENOENT)
			snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	buf = malloc(INI_MAX_FILE + 1);
	if (buf == NULL) {
		r = -ENOMEM;
		goto out;
	}
	n = fread(buf, 1, INI_MAX_FILE + 1, fp);
	if (ferror(fp)) {
		r = -EIO;
		snprintf(err, errlen, "%s: read error", path);
		goto out;
	}
	if (n > INI_MAX_FILE) {
		r = -EFBIG;
		snprintf(err, errlen, "%s: larger than %d bytes", path, INI_MAX_FILE);
		goto out;
	}
	r = ini_parse(buf, n, out, inner, sizeof(inner));
	if (r == -EINVAL)
		snprintf(err, errlen, "%s: %s", path, inner);
	OPENSSL_cleanse(buf, n);
out:
	free(buf);
	fclose(fp);
	return r;
}

void ini_free(struct ini_file *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->nsections; i++) {
		struct ini_section *s = &f->sections[i];
		for (size_t j = 0; j < s->nprops; j++) {
			free(s->props[j].name);
			if (s->props[j].value != NULL)
				OPENSSL_cleanse(s->props[j].value, strlen(s->props[j].value));
			free(s->props[j].value);
		}
		free(s->props);
		free(s->name);
	}
	free(f->sections);
	free(f);
}

const struct ini_section *ini_find_section(const struct ini_file *f, const char *name)
{
	if (f == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < f->nsections; i++)
		if (strcmp(f->sections[i].name, name) == 0)
			return &f->sections[i];
	return NULL;
}

const char *ini_get(const struct ini_section *s, const char *name)
{
	if (s == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < s->nprops; i++)
		if (strcmp(s->props[i].name, name) == 0)
			return s->props[i].value;
	return NULL;
}
