/*
 * sigv4.c — AWS Signature Version 4, header signing.
 *
 * Pure functions over the caller's request: no clock, no I/O, no globals. The rules and the
 * known answers are those of AWS's signing test suite (aws-c-auth's tests/aws-signing-test-suite,
 * see ../shared/aws/sigv4-testsuite/README.md); build/tests/sigv4-suite checks them byte for byte.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sigv4.h"
#include "util.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
/* Far more than any AWS request carries; keeps the sort and the allocations bounded. */
#define SIGV4_MAX_HEADERS 256
#define SIGV4_MAX_QUERY_PARAMS 1024

/* ---- a growable string; the first failed append sticks, so callers check once ---- */

struct sbuf {
	char *p;
	size_t len;
	size_t cap;
	int failed;
};

static void sb_add(struct sbuf *b, const void *data, size_t n)
{
	if (b->failed)
		return;
	if (n > SIZE_MAX - b->len - 1) {
		b->failed = 1;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *np;
		while (cap < b->len + n + 1) {
			if (cap > SIZE_MAX / 2) {
				b->failed = 1;
				return;
			}
			cap *= 2;
		}
		np = realloc(b->p, cap);
		if (np == NULL) {
			b->failed = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_adds(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void sb_addc(struct sbuf *b, char c)
{
	sb_add(b, &c, 1);
}

/* Hand over the string (never NULL on success: an empty buffer becomes ""). */
static char *sb_take(struct sbuf *b)
{
	char *s;

	if (b->failed) {
		free(b->p);
		memset(b, 0, sizeof(*b));
		return NULL;
	}
	if (b->p == NULL)
		return strdup("");
	s = b->p;
	memset(b, 0, sizeof(*b));
	return s;
}

static void sb_free(struct sbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ---- hashing ---- */

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static int sha256(const void *data, size_t len, unsigned char out[32])
{
	unsigned int outlen = 0;

	if (EVP_Digest(data, len, out, &outlen, EVP_sha256(), NULL) != 1 || outlen != 32)
		return -EIO;
	return 0;
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];

	if (data == NULL)
		data = "";
	if (sha256(data, len, md) < 0) {
		/* Cannot happen with a working libcrypto; never hand out a plausible-looking hash. */
		memset(out, 0, 65);
		return;
	}
	hex_encode(md, sizeof(md), out);
}

static int hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
		       unsigned char out[32])
{
	unsigned int outlen = 0;

	if (keylen > INT32_MAX)
		return -EINVAL;
	if (HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &outlen) == NULL || outlen != 32)
		return -EIO;
	return 0;
}

int sigv4_derive_signing_key(const char *secret_access_key, const char *date8, const char *region,
			     const char *service, unsigned char out[32])
{
	struct sbuf k = { 0 };
	unsigned char a[32], b[32];
	int r = -EINVAL;

	if (secret_access_key == NULL || date8 == NULL || region == NULL || service == NULL)
		return -EINVAL;
	sb_adds(&k, "AWS4");
	sb_adds(&k, secret_access_key);
	if (k.failed) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = hmac_sha256(k.p, k.len, date8, strlen(date8), a)) < 0 ||
	    (r = hmac_sha256(a, 32, region, strlen(region), b)) < 0 ||
	    (r = hmac_sha256(b, 32, service, strlen(service), a)) < 0 ||
	    (r = hmac_sha256(a, 32, "aws4_request", 12, out)) < 0)
		goto out;
	r = 0;
out:
	if (k.p != NULL)
		OPENSSL_cleanse(k.p, k.len);
	sb_free(&k);
	OPENSSL_cleanse(a, sizeof(a));
	OPENSSL_cleanse(b, sizeof(b));
	return r;
}

/* ---- URI encoding ---- */

static int is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static void sb_add_pct(struct sbuf *b, unsigned char c)
{
	static const char digits[] = "0123456789ABCDEF";
	char e[3] = { '%', digits[c >> 4], digits[c & 0xf] };

	sb_add(b, e, 3);
}

/*
 * Encode every byte outside the unreserved set. keep_slash leaves '/' alone (paths);
 * keep_escapes leaves existing %XX escapes as they are (upper-cased), which is what a service
 * without double encoding (S3) signs.
 */
static void uri_encode(struct sbuf *b, const char *s, size_t n, int keep_slash, int keep_escapes)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_unreserved(c) || (keep_slash && c == '/')) {
			sb_addc(b, (char)c);
		} else if (keep_escapes && c == '%' && i + 2 < n &&
			   hex_digit_value((unsigned char)s[i + 1]) >= 0 &&
			   hex_digit_value((unsigned char)s[i + 2]) >= 0) {
			sb_add_pct(b, (unsigned char)(hex_digit_value((unsigned char)s[i + 1]) * 16 +
						     hex_digit_value((unsigned char)s[i + 2])));
			i += 2;
		} else {
			sb_add_pct(b, c);
		}
	}
}

/* Percent-decode; a '%' not followed by two hex digits stays a literal '%'. */
static void uri_decode(struct sbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hex_digit_value((unsigned char)s[i + 1]) >= 0 &&
		    hex_digit_value((unsigned char)s[i + 2]) >= 0) {
			sb_addc(b, (char)(hex_digit_value((unsigned char)s[i + 1]) * 16 +
					  hex_digit_value((unsigned char)s[i + 2])));
			i += 2;
		} else {
			sb_addc(b, s[i]);
		}
	}
}

/* ---- canonical URI ---- */

/* RFC 3986 dot-segment removal plus folding of empty segments ("//"), as the suite expects. */
static int normalize_path(struct sbuf *out, const char *path)
{
	size_t n = strlen(path);
	size_t *starts = NULL, *lens = NULL, nseg = 0, cap = n / 2 + 1;
	size_t i = 1;
	int trailing = 0;

	starts = calloc(cap, sizeof(*starts));
	lens = calloc(cap, sizeof(*lens));
	if (starts == NULL || lens == NULL) {
		free(starts);
		free(lens);
		return -ENOMEM;
	}
	while (i <= n) {
		size_t j = i;
		while (j < n && path[j] != '/')
			j++;
		size_t len = j - i;
		const char *seg = path + i;
		trailing = 0;
		if (len == 0 || (len == 1 && seg[0] == '.')) {
			trailing = 1;
		} else if (len == 2 && seg[0] == '.' && seg[1] == '.') {
			if (nseg > 0)
				nseg--;
			trailing = 1;
		} else if (nseg < cap) {
			starts[nseg] = i;
			lens[nseg] = len;
			nseg++;
		}
		i = j + 1;
	}
	sb_addc(out, '/');
	for (size_t k = 0; k < nseg; k++) {
		if (k > 0)
			sb_addc(out, '/');
		sb_add(out, path + starts[k], lens[k]);
	}
	if (nseg > 0 && trailing)
		sb_addc(out, '/');
	free(starts);
	free(lens);
	return out->failed ? -ENOMEM : 0;
}

static int canonical_uri(struct sbuf *b, const char *path, int normalize, int double_encode)
{
	struct sbuf norm = { 0 };
	int r;

	if (path[0] == '\0') {
		sb_addc(b, '/');
		return b->failed ? -ENOMEM : 0;
	}
	if (path[0] != '/')
		return -EINVAL;
	if (normalize) {
		if ((r = normalize_path(&norm, path)) < 0) {
			sb_free(&norm);
			return r;
		}
		uri_encode(b, norm.p, norm.len, 1, !double_encode);
		sb_free(&norm);
	} else {
		uri_encode(b, path, strlen(path), 1, !double_encode);
	}
	return b->failed ? -ENOMEM : 0;
}

/* ---- canonical query string ---- */

struct query_param {
	char *name;    /* encoded */
	char *value;   /* encoded */
};

static int cmp_query_param(const void *a, const void *b)
{
	const struct query_param *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : strcmp(x->value, y->value);
}

/* Decode then re-encode with the strict unreserved set, so "%7e" and "~" sign the same. */
static char *reencode(const char *s, size_t n)
{
	struct sbuf dec = { 0 }, enc = { 0 };
	char *r;

	uri_decode(&dec, s, n);
	if (dec.failed) {
		sb_free(&dec);
		return NULL;
	}
	uri_encode(&enc, dec.p ? dec.p : "", dec.len, 0, 0);
	sb_free(&dec);
	r = sb_take(&enc);
	return r;
}

static int canonical_query(struct sbuf *b, const char *query)
{
	struct query_param *params = NULL;
	size_t nparams = 0;
	const char *p = query;
	int r = 0;

	if (query == NULL || query[0] == '\0')
		return 0;
	params = calloc(SIGV4_MAX_QUERY_PARAMS, sizeof(*params));
	if (params == NULL)
		return -ENOMEM;
	while (*p != '\0') {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		if (len > 0) {
			const char *eq = memchr(p, '=', len);
			size_t nlen = eq ? (size_t)(eq - p) : len;
			if (nparams == SIGV4_MAX_QUERY_PARAMS) {
				r = -EINVAL;
				goto out;
			}
			params[nparams].name = reencode(p, nlen);
			params[nparams].value = eq ? reencode(eq + 1, len - nlen - 1) : strdup("");
			nparams++;
			if (params[nparams - 1].name == NULL || params[nparams - 1].value == NULL) {
				r = -ENOMEM;
				goto out;
			}
		}
		p += len;
		if (*p == '&')
			p++;
	}
	qsort(params, nparams, sizeof(*params), cmp_query_param);
	for (size_t i = 0; i < nparams; i++) {
		if (i > 0)
			sb_addc(b, '&');
		sb_adds(b, params[i].name);
		sb_addc(b, '=');
		sb_adds(b, params[i].value);
	}
	if (b->failed)
		r = -ENOMEM;
out:
	for (size_t i = 0; i < nparams; i++) {
		free(params[i].name);
		free(params[i].value);
	}
	free(params);
	return r;
}

/* ---- canonical headers ---- */

struct canon_header {
	char *name;     /* lower-cased */
	char *value;    /* trimmed, whitespace runs folded */
	size_t order;   /* position in the caller's list: keeps duplicates in their order */
};

static int cmp_canon_header(const void *a, const void *b)
{
	const struct canon_header *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int is_tchar(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* 0 with *out = lower-cased copy; -EINVAL for an empty name or one with non-token bytes. */
static int lower_name(const char *name, char **out)
{
	size_t n = strlen(name);
	char *s;

	*out = NULL;
	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)name[i]))
			return -EINVAL;
	s = malloc(n + 1);
	if (s == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		s[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
	s[n] = '\0';
	*out = s;
	return 0;
}

/* Trim, fold runs of blanks into one space; CR/LF are refused (header injection). */
static char *fold_value(const char *v, int *bad)
{
	size_t n = strlen(v), o = 0;
	char *s = malloc(n + 1);
	int pending_space = 0;

	*bad = 0;
	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if (c == '\r' || c == '\n') {
			*bad = 1;
			free(s);
			return NULL;
		}
		if (c == ' ' || c == '\t') {
			pending_space = o > 0;
			continue;
		}
		if (pending_space)
			s[o++] = ' ';
		pending_space = 0;
		s[o++] = c;
	}
	s[o] = '\0';
	return s;
}

static int valid_amz_date(const char *d)
{
	int month, day, hour, minute, second;

	if (d == NULL || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
		return 0;
	for (int i = 0; i < 15; i++)
		if (i != 8 && (d[i] < '0' || d[i] > '9'))
			return 0;
	month = (d[4] - '0') * 10 + (d[5] - '0');
	day = (d[6] - '0') * 10 + (d[7] - '0');
	hour = (d[9] - '0') * 10 + (d[10] - '0');
	minute = (d[11] - '0') * 10 + (d[12] - '0');
	second = (d[13] - '0') * 10 + (d[14] - '0');
	return month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour < 24 && minute < 60 &&
	       second <= 60;
}

/* Region, service and key id go into the scope; '/', ',', blanks or controls would corrupt it. */
static int valid_scope_part(const char *s)
{
	if (s == NULL || s[0] == '\0')
		return 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == '/' || *p == ',' || *p == 0x7f)
			return 0;
	return 1;
}

static void free_canon_headers(struct canon_header *h, size_t n)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(h[i].name);
		if (h[i].value != NULL)
			OPENSSL_cleanse(h[i].value, strlen(h[i].value));
		free(h[i].value);
	}
	free(h);
}

/*
 * Appends "name:v1,v2\n" per distinct header to canon and "a;b;c" to signed_names, after
 * checking that host, x-amz-date (equal to amz_date) and, with a session token, its header
 * are present.
 */
static int canonical_headers(const struct sigv4_request *req, const char *amz_date,
			     int need_token, struct sbuf *canon, struct sbuf *signed_names)
{
	struct canon_header *h;
	int have_host = 0, have_date = 0, have_token = 0, r = 0;
	size_t n = req->nheaders;

	if (n == 0 || n > SIGV4_MAX_HEADERS || req->headers == NULL)
		return -EINVAL;
	h = calloc(n, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int bad = 0;
		if (req->headers[i].name == NULL || req->headers[i].value == NULL) {
			r = -EINVAL;
			goto out;
		}
		h[i].order = i;
		if ((r = lower_name(req->headers[i].name, &h[i].name)) < 0)
			goto out;
		h[i].value = fold_value(req->headers[i].value, &bad);
		if (h[i].value == NULL) {
			r = bad ? -EINVAL : -ENOMEM;
			goto out;
		}
		if (strcmp(h[i].name, "host") == 0)
			have_host = h[i].value[0] != '\0';
		else if (strcmp(h[i].name, "x-amz-date") == 0)
			have_date = have_date || strcmp(h[i].value, amz_date) == 0;
		else if (strcmp(h[i].name, "x-amz-security-token") == 0)
			have_token = 1;
	}
	if (!have_host || !have_date || (need_token && !have_token)) {
		r = -EINVAL;
		goto out;
	}
	qsort(h, n, sizeof(*h), cmp_canon_header);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcmp(h[i].name, h[i - 1].name) == 0) {
			sb_addc(canon, ',');
			sb_adds(canon, h[i].value);
			continue;
		}
		if (i > 0) {
			sb_addc(canon, '\n');
			sb_addc(signed_names, ';');
		}
		sb_adds(canon, h[i].name);
		sb_addc(canon, ':');
		sb_adds(canon, h[i].value);
		sb_adds(signed_names, h[i].name);
	}
	sb_addc(canon, '\n');
	if (canon->failed || signed_names->failed)
		r = -ENOMEM;
out:
	free_canon_headers(h, n);
	return r;
}

/* ---- the signature ---- */

static int valid_method(const char *m)
{
	if (m == NULL || m[0] == '\0')
		return 0;
	for (const char *p = m; *p; p++)
		if (!is_tchar((unsigned char)*p))
			return 0;
	return 1;
}

int sigv4_sign(const struct sigv4_request *req, const struct sigv4_params *params,
	       struct sigv4_result *out)
{
	const struct aws_credentials *cr;
	struct sbuf creq = { 0 }, names = { 0 }, sts = { 0 }, auth = { 0 };
	char payload_hash[65], creq_hash[65], date8[9];
	unsigned char key[32], sig[32];
	int r;

	if (out == NULL)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (req == NULL || params == NULL || params->credentials == NULL)
		return -EINVAL;
	cr = params->credentials;
	if (!valid_scope_part(cr->access_key_id) || cr->secret_access_key == NULL ||
	    cr->secret_access_key[0] == '\0' || !valid_scope_part(params->region) ||
	    !valid_scope_part(params->service) || !valid_amz_date(params->amz_date) ||
	    !valid_method(req->method) || req->path == NULL ||
	    (req->body == NULL && req->body_len > 0))
		return -EINVAL;
	memcpy(date8, params->amz_date, 8);
	date8[8] = '\0';

	sb_adds(&creq, req->method);
	sb_addc(&creq, '\n');
	if ((r = canonical_uri(&creq, req->path, params->normalize_path, params->double_encode)) < 0)
		goto out;
	sb_addc(&creq, '\n');
	if ((r = canonical_query(&creq, req->query)) < 0)
		goto out;
	sb_addc(&creq, '\n');
	if ((r = canonical_headers(req, params->amz_date,
				   cr->session_token != NULL && cr->session_token[0] != '\0', &creq,
				   &names)) < 0)
		goto out;
	sb_addc(&creq, '\n');
	sb_add(&creq, names.p, names.len);
	sb_addc(&creq, '\n');
	sigv4_sha256_hex(req->body, req->body_len, payload_hash);
	sb_adds(&creq, payload_hash);
	if (creq.failed || names.failed) {
		r = -ENOMEM;
		goto out;
	}

	sigv4_sha256_hex(creq.p, creq.len, creq_hash);
	sb_adds(&sts, SIGV4_ALGORITHM "\n");
	sb_adds(&sts, params->amz_date);
	sb_addc(&sts, '\n');
	sb_adds(&sts, date8);
	sb_addc(&sts, '/');
	sb_adds(&sts, params->region);
	sb_addc(&sts, '/');
	sb_adds(&sts, params->service);
	sb_adds(&sts, "/aws4_request\n");
	sb_adds(&sts, creq_hash);
	if (sts.failed) {
		r = -ENOMEM;
		goto out;
	}

	if ((r = sigv4_derive_signing_key(cr->secret_access_key, date8, params->region,
					  params->service, key)) < 0 ||
	    (r = hmac_sha256(key, sizeof(key), sts.p, sts.len, sig)) < 0)
		goto out;
	hex_encode(sig, sizeof(sig), out->signature);

	sb_adds(&auth, SIGV4_ALGORITHM " Credential=");
	sb_adds(&auth, cr->access_key_id);
	sb_addc(&auth, '/');
	sb_adds(&auth, date8);
	sb_addc(&auth, '/');
	sb_adds(&auth, params->region);
	sb_addc(&auth, '/');
	sb_adds(&auth, params->service);
	sb_adds(&auth, "/aws4_request, SignedHeaders=");
	sb_add(&auth, names.p, names.len);
	sb_adds(&auth, ", Signature=");
	sb_adds(&auth, out->signature);

	out->canonical_request = sb_take(&creq);
	out->string_to_sign = sb_take(&sts);
	out->authorization = sb_take(&auth);
	if (out->canonical_request == NULL || out->string_to_sign == NULL ||
	    out->authorization == NULL) {
		r = -ENOMEM;
		goto out;
	}
	r = 0;
out:
	OPENSSL_cleanse(key, sizeof(key));
	if (creq.p != NULL)
		OPENSSL_cleanse(creq.p, creq.len);
	sb_free(&creq);
	sb_free(&names);
	sb_free(&sts);
	sb_free(&auth);
	if (r < 0)
		sigv4_result_free(out);
	return r;
}

void sigv4_result_free(struct sigv4_result *r)
{
	if (r == NULL)
		return;
	if (r->canonical_request != NULL)
		OPENSSL_cleanse(r->canonical_request, strlen(r->canonical_request));
	free(r->canonical_request);
	free(r->string_to_sign);
	free(r->authorization);
	memset(r, 0, sizeof(*r));
}

void sigv4_format_amz_date(long long unix_seconds, char out[17])
{
	struct tm tm;
	time_t t = (time_t)unix_seconds;

	/* A time that gmtime cannot express, or outside years 0..9999, yields a value that
	 * sigv4_sign() rejects (month 00) rather than a truncated, plausible one. */
	if ((long long)t != unix_seconds || gmtime_r(&t, &tm) == NULL || tm.tm_year < -1900 ||
	    tm.tm_year > 9999 - 1900) {
		memcpy(out, "00000000T000000Z", 17);
		return;
	}
	if (strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
		memcpy(out, "00000000T000000Z", 17);
}
