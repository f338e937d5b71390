/*
 * creds_http.c — blocking HTTP for the credential endpoints (container, IMDS): one libcurl easy
 * handle per request, short timeouts, no proxy, no redirects, a bounded body.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "creds_source.h"

size_t creds_body_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct creds_body *b = userdata;
	size_t n = size * nmemb;
	char *nd;

	if (n > CREDS_MAX_BODY - b->len) {
		b->too_big = 1;
		return 0;
	}
	nd = realloc(b->data, b->len + n + 1);
	if (nd == NULL)
		return 0;
	b->data = nd;
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

void creds_body_free(struct creds_body *b)
{
	if (b->data != NULL)
		OPENSSL_cleanse(b->data, b->len);
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* 0 with the status and body, or -EIO with why. Redirects are never followed; proxies are
 * not used for the metadata endpoints, which are link-local and must not be reached through
 * anything else (metadata = 1), but are for STS, as for IVS (the usual proxy variables). */
static int request(const char *method, const char *url, struct curl_slist *headers,
		   const char *data, size_t data_len, int metadata, long total_ms, long *status,
		   struct creds_body *out, char *why, size_t n)
{
	CURL *h = curl_easy_init();
	CURLcode rc;
	int r = -EIO;

	memset(out, 0, sizeof(*out));
	*status = 0;
	if (h == NULL) {
		snprintf(why, n, "curl_easy_init failed");
		return -ENOMEM;
	}
	if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    (metadata && curl_easy_setopt(h, CURLOPT_NOPROXY, "*") != CURLE_OK) ||
	    (data != NULL && (curl_easy_setopt(h, CURLOPT_POSTFIELDS, data) != CURLE_OK ||
			      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
					       (curl_off_t)data_len) != CURLE_OK)) ||
	    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, total_ms) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, creds_body_write) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, out) != CURLE_OK) {
		snprintf(why, n, "curl_easy_setopt failed");
		goto out;
	}
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		snprintf(why, n, "%s %s: %s", method, url,
			 out->too_big ? "response larger than 64 KiB" : curl_easy_strerror(rc));
		goto out;
	}
	if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status) != CURLE_OK) {
		snprintf(why, n, "%s %s: no status", method, url);
		goto out;
	}
	r = 0;
out:
	if (r < 0)
		creds_body_free(out);
	curl_easy_cleanup(h);
	return r;
}

int creds_http_request(const char *method, const char *url, struct curl_slist *headers,
		       long total_ms, long *status, struct creds_body *out, char *why, size_t n)
{
	return request(method, url, headers, NULL, 0, 1, total_ms, status, out, why, n);
}

int creds_http_post(const char *url, struct curl_slist *headers, const char *data, size_t len,
		    long total_ms, long *status, struct creds_body *out, char *why, size_t n)
{
	return request("POST", url, headers, data, len, 0, total_ms, status, out, why, n);
}
