/*
 * sigv4-suite — run AWS's SigV4 known-answer cases against common/sigv4.c.
 *
 *   sigv4-suite DIR...
 *
 * Every folder below a DIR (recursively) that holds context.json and request.txt is a case, in
 * the layout of aws-c-auth's tests/aws-signing-test-suite/v4 (see
 * ../shared/aws/sigv4-testsuite/README.md). Each case is signed with header signing and the
 * canonical request, string to sign and signature are compared byte for byte with
 * header-canonical-request.txt, header-string-to-sign.txt and header-signature.txt. One line per
 * failing case, then "N passed, N failed"; exit status 1 when any case failed or none was found.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "sigv4.h"

#define MAX_FILE (1024 * 1024)
#define MAX_CASES 4096
#define MAX_HEADERS 64
#define MAX_PATH_LEN 4096

struct text {
	char *data;
	size_t len;
};

static int read_file(const char *dir, const char *name, struct text *t)
{
	char path[MAX_PATH_LEN];
	FILE *f;
	size_t n;
	int r = 0;

	t->data = NULL;
	t->len = 0;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return -ENAMETOOLONG;
	f = fopen(path, "rb");
	if (f == NULL)
		return -errno;
	t->data = malloc(MAX_FILE + 1);
	if (t->data == NULL) {
		r = -ENOMEM;
		goto out;
	}
	n = fread(t->data, 1, MAX_FILE + 1, f);
	if (ferror(f) || n > MAX_FILE) {
		r = ferror(f) ? -EIO : -EFBIG;
		goto out;
	}
	t->data[n] = '\0';
	t->len = n;
out:
	fclose(f);
	if (r < 0) {
		free(t->data);
		t->data = NULL;
	}
	return r;
}

/* ---- finding the cases ---- */

struct case_list {
	char *dirs[MAX_CASES];
	size_t n;
};

static int file_exists(const char *dir, const char *name)
{
	char path[MAX_PATH_LEN];
	struct stat st;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return 0;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int collect(const char *dir, struct case_list *cases, int depth)
{
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (depth > 16)
		return 0;
	if (file_exists(dir, "context.json") && file_exists(dir, "request.txt")) {
		if (cases->n == MAX_CASES)
			return -E2BIG;
		cases->dirs[cases->n] = strdup(dir);
		if (cases->dirs[cases->n] == NULL)
			return -ENOMEM;
		cases->n++;
	}
	d = opendir(dir);
	if (d == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		char sub[MAX_PATH_LEN];
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name) >= sizeof(sub))
			continue;
		if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode) && (r = collect(sub, cases, depth + 1)) < 0)
			break;
	}
	closedir(d);
	return r;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- one case ---- */

struct parsed_request {
	char *method;
	char *path;
	char *query;   /* NULL when the target has no '?' */
	struct sigv4_header headers[MAX_HEADERS];
	char *owned[MAX_HEADERS * 2];
	size_t nheaders, nowned;
	const char *body;
	size_t body_len;
};

static char *own(struct parsed_request *p, char *s)
{
	if (s != NULL && p->nowned < MAX_HEADERS * 2)
		p->owned[p->nowned++] = s;
	else {
		free(s);
		s = NULL;
	}
	return s;
}

static void parsed_request_free(struct parsed_request *p)
{
	free(p->method);
	free(p->path);
	free(p->query);
	for (size_t i = 0; i < p->nowned; i++)
		free(p->owned[i]);
	memset(p, 0, sizeof(*p));
}

static int add_header(struct parsed_request *p, const char *name, size_t nlen, const char *value,
		      size_t vlen)
{
	char *n, *v;

	if (p->nheaders == MAX_HEADERS)
		return -E2BIG;
	n = own(p, strndup(name, nlen));
	v = own(p, strndup(value, vlen));
	if (n == NULL || v == NULL)
		return -ENOMEM;
	p->headers[p->nheaders].name = n;
	p->headers[p->nheaders].value = v;
	p->nheaders++;
	return 0;
}

/* Continuation line (obs-fold): its text joins the previous value after one space. */
static int continue_header(struct parsed_request *p, const char *text, size_t len)
{
	struct sigv4_header *h;
	size_t old;
	char *v;

	if (p->nheaders == 0)
		return -EINVAL;
	h = &p->headers[p->nheaders - 1];
	old = strlen(h->value);
	v = own(p, malloc(old + 1 + len + 1));
	if (v == NULL)
		return -ENOMEM;
	memcpy(v, h->value, old);
	v[old] = ' ';
	memcpy(v + old + 1, text, len);
	v[old + 1 + len] = '\0';
	h->value = v;
	return 0;
}

/*
 * request.txt: "METHOD TARGET HTTP/1.1\n", header lines, and optionally an empty line and the
 * body. The target may contain spaces (get-space-*), so the version is split off at the last
 * space.
 */
static int parse_request(const struct text *t, struct parsed_request *p, const char **why)
{
	const char *s = t->data, *end = t->data + t->len;
	const char *eol = memchr(s, '\n', t->len);
	const char *sp1, *sp2, *target, *q;
	int r;

	memset(p, 0, sizeof(*p));
	*why = "request line";
	if (eol == NULL)
		return -EINVAL;
	sp1 = memchr(s, ' ', (size_t)(eol - s));
	sp2 = eol;
	while (sp2 > s && sp2[-1] != ' ')
		sp2--;
	if (sp1 == NULL || sp2 <= sp1 + 1)
		return -EINVAL;
	sp2--;
	target = sp1 + 1;
	p->method = strndup(s, (size_t)(sp1 - s));
	q = memchr(target, '?', (size_t)(sp2 - target));
	p->path = strndup(target, (size_t)((q ? q : sp2) - target));
	if (q != NULL)
		p->query = strndup(q + 1, (size_t)(sp2 - q - 1));
	if (p->method == NULL || p->path == NULL || (q != NULL && p->query == NULL))
		return -ENOMEM;

	*why = "header line";
	s = eol + 1;
	while (s < end) {
		const char *line = s, *le = memchr(s, '\n', (size_t)(end - s));
		size_t len = le ? (size_t)(le - line) : (size_t)(end - line);
		s = le ? le + 1 : end;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (len == 0) {
			p->body = s;
			p->body_len = (size_t)(end - s);
			break;
		}
		if (line[0] == ' ' || line[0] == '\t') {
			while (len > 0 && (line[0] == ' ' || line[0] == '\t')) {
				line++;
				len--;
			}
			if ((r = continue_header(p, line, len)) < 0)
				return r;
			continue;
		}
		const char *colon = memchr(line, ':', len);
		if (colon == NULL)
			return -EINVAL;
		if ((r = add_header(p, line, (size_t)(colon - line), colon + 1,
				    len - (size_t)(colon - line) - 1)) < 0)
			return r;
	}
	return 0;
}

/* Headers SDKs send but never sign (botocore's list); generated-json's cases rely on it. */
static int unsigned_header(const char *name)
{
	return strcasecmp(name, "user-agent") == 0 || strcasecmp(name, "expect") == 0 ||
	       strcasecmp(name, "x-amzn-trace-id") == 0;
}

struct context {
	const char *akid, *secret, *token, *region, *service, *timestamp;
	int normalize, sign_body, hash_body, omit_token;
};

static int get_bool(json_t *root, const char *key, int dflt, int *out)
{
	json_t *v = json_object_get(root, key);

	if (v == NULL) {
		*out = dflt;
		return 0;
	}
	if (!json_is_boolean(v))
		return -EINVAL;
	*out = json_is_true(v);
	return 0;
}

static int parse_context(json_t *root, struct context *c, const char **why)
{
	json_t *cr = json_object_get(root, "credentials");

	memset(c, 0, sizeof(*c));
	*why = "context.json: credentials";
	if (!json_is_object(cr))
		return -EINVAL;
	c->akid = json_string_value(json_object_get(cr, "access_key_id"));
	c->secret = json_string_value(json_object_get(cr, "secret_access_key"));
	c->token = json_string_value(json_object_get(cr, "token"));
	if (c->akid == NULL || c->secret == NULL ||
	    (json_object_get(cr, "token") != NULL && c->token == NULL))
		return -EINVAL;
	*why = "context.json: region/service/timestamp";
	c->region = json_string_value(json_object_get(root, "region"));
	c->service = json_string_value(json_object_get(root, "service"));
	c->timestamp = json_string_value(json_object_get(root, "timestamp"));
	if (c->region == NULL || c->service == NULL || c->timestamp == NULL)
		return -EINVAL;
	*why = "context.json: a flag is not a boolean";
	if (get_bool(root, "normalize", 1, &c->normalize) < 0 ||
	    get_bool(root, "sign_body", 0, &c->sign_body) < 0 ||
	    get_bool(root, "hash_body", 0, &c->hash_body) < 0 ||
	    get_bool(root, "omit_session_token", 0, &c->omit_token) < 0)
		return -EINVAL;
	return 0;
}

/* "2015-08-30T12:36:00Z" -> "20150830T123600Z" */
static int amz_date_from_timestamp(const char *ts, char out[17])
{
	static const int digit_pos[] = { 0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18 };
	size_t o = 0;

	if (strlen(ts) != 20 || ts[4] != '-' || ts[7] != '-' || ts[10] != 'T' || ts[13] != ':' ||
	    ts[16] != ':' || ts[19] != 'Z')
		return -EINVAL;
	for (size_t i = 0; i < sizeof(digit_pos) / sizeof(digit_pos[0]); i++) {
		char c = ts[digit_pos[i]];
		if (c < '0' || c > '9')
			return -EINVAL;
		out[o++] = c;
		if (o == 8)
			out[o++] = 'T';
	}
	out[o++] = 'Z';
	out[o] = '\0';
	return 0;
}

/* Compare one output with its expected file; describe the first difference in why. */
static int compare(const char *dir, const char *file, const char *got, char *why, size_t whylen)
{
	struct text want;
	size_t glen = strlen(got), i = 0;
	int r;

	if ((r = read_file(dir, file, &want)) < 0) {
		snprintf(why, whylen, "%s: %s", file, strerror(-r));
		return -1;
	}
	while (i < glen && i < want.len && got[i] == want.data[i])
		i++;
	r = 0;
	if (i != glen || i != want.len) {
		snprintf(why, whylen, "%s differs at byte %zu: expected \"%.20s\", got \"%.20s\"", file,
			 i, want.data + i, got + i);
		r = -1;
	}
	free(want.data);
	return r;
}

/* jansson's json_load_file takes a path; keep the join in one place. */
static json_t *load_context(const char *dir, json_error_t *err)
{
	char path[MAX_PATH_LEN];

	if ((size_t)snprintf(path, sizeof(path), "%s/context.json", dir) >= sizeof(path)) {
		snprintf(err->text, sizeof(err->text), "path too long");
		err->line = 0;
		return NULL;
	}
	return json_load_file(path, JSON_REJECT_DUPLICATES, err);
}

static int run_case(const char *dir, char *why, size_t whylen)
{
	struct text req_text = { 0 };
	struct parsed_request p;
	struct context c;
	struct aws_credentials creds = { 0 };
	struct sigv4_result res = { 0 };
	json_error_t jerr;
	json_t *root = NULL;
	char amz_date[17], body_hash[65];
	const char *what = "";
	int r, failed = 1;

	memset(&p, 0, sizeof(p));
	root = load_context(dir, &jerr);
	if (root == NULL) {
		snprintf(why, whylen, "context.json: %s (line %d)", jerr.text, jerr.line);
		goto out;
	}
	if (parse_context(root, &c, &what) < 0 || amz_date_from_timestamp(c.timestamp, amz_date) < 0) {
		snprintf(why, whylen, "%s", what[0] ? what : "context.json: timestamp");
		goto out;
	}
	if ((r = read_file(dir, "request.txt", &req_text)) < 0) {
		snprintf(why, whylen, "request.txt: %s", strerror(-r));
		goto out;
	}
	if ((r = parse_request(&req_text, &p, &what)) < 0) {
		snprintf(why, whylen, "request.txt: bad %s (%s)", what, strerror(-r));
		goto out;
	}

	/* Drop what SDKs never sign, then add what the signer's caller adds before signing. */
	size_t keep = 0;
	for (size_t i = 0; i < p.nheaders; i++)
		if (!unsigned_header(p.headers[i].name))
			p.headers[keep++] = p.headers[i];
	p.nheaders = keep;
	if (!c.sign_body && !c.hash_body) {
		/* The classic suite hashes the empty payload unless sign_body is set. */
		p.body = NULL;
		p.body_len = 0;
	}
	r = add_header(&p, "X-Amz-Date", 10, amz_date, 16);
	if (r == 0 && c.token != NULL && !c.omit_token)
		r = add_header(&p, "X-Amz-Security-Token", 20, c.token, strlen(c.token));
	if (r == 0 && c.sign_body) {
		sigv4_sha256_hex(p.body, p.body_len, body_hash);
		r = add_header(&p, "X-Amz-Content-Sha256", 20, body_hash, 64);
	}
	if (r < 0) {
		snprintf(why, whylen, "adding headers: %s", strerror(-r));
		goto out;
	}

	creds.access_key_id = (char *)c.akid;
	creds.secret_access_key = (char *)c.secret;
	creds.session_token = c.omit_token ? NULL : (char *)c.token;
	struct sigv4_request sreq = {
		.method = p.method, .path = p.path, .query = p.query, .headers = p.headers,
		.nheaders = p.nheaders, .body = p.body, .body_len = p.body_len,
	};
	struct sigv4_params params = {
		.credentials = &creds, .region = c.region, .service = c.service,
		.amz_date = amz_date, .normalize_path = c.normalize,
		/* request.txt holds the path unencoded; encoding every byte once is what
		 * the expected canonical URIs show, for the unnormalized cases as well. */
		.double_encode = 1,
	};
	if ((r = sigv4_sign(&sreq, &params, &res)) < 0) {
		snprintf(why, whylen, "sigv4_sign: %s", strerror(-r));
		goto out;
	}
	if (compare(dir, "header-canonical-request.txt", res.canonical_request, why, whylen) < 0 ||
	    compare(dir, "header-string-to-sign.txt", res.string_to_sign, why, whylen) < 0 ||
	    compare(dir, "header-signature.txt", res.signature, why, whylen) < 0)
		goto out;
	failed = 0;
out:
	sigv4_result_free(&res);
	parsed_request_free(&p);
	free(req_text.data);
	json_decref(root);
	return failed ? -1 : 0;
}

int main(int argc, char **argv)
{
	struct case_list *cases;
	size_t passed = 0, failed = 0;
	int r;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR...\n", argv[0]);
		return 2;
	}
	cases = calloc(1, sizeof(*cases));
	if (cases == NULL)
		return 2;
	for (int i = 1; i < argc; i++) {
		if ((r = collect(argv[i], cases, 0)) < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(-r));
			failed++;
		}
	}
	qsort(cases->dirs, cases->n, sizeof(cases->dirs[0]), cmp_str);
	for (size_t i = 0; i < cases->n; i++) {
		char why[512] = "";
		if (run_case(cases->dirs[i], why, sizeof(why)) == 0) {
			passed++;
		} else {
			printf("FAIL %s: %s\n", cases->dirs[i], why);
			failed++;
		}
		free(cases->dirs[i]);
	}
	if (cases->n == 0)
		printf("no cases found (a case is a folder with context.json and request.txt)\n");
	printf("%zu passed, %zu failed\n", passed, failed);
	free(cases);
	return failed > 0 || passed == 0 ? 1 : 0;
}
