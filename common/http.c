/*
 * http.c — see http.h. The sd-event glue follows systemd's src/shared/curl-util.c.
 */
#include "http.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>

#include "log.h"

#define DEFAULT_MAX_HOST_CONNECTIONS 8
#define DEFAULT_MAX_RESPONSE_BYTES   (4u * 1024u * 1024u)
#define DEFAULT_CONNECT_MS           5000
#define DEFAULT_TOTAL_MS             10000

/* one io source per socket curl asks us to watch */
struct sock_watch {
	struct http_client *client;
	curl_socket_t fd;
	sd_event_source *source;
	struct sock_watch *prev, *next;
};

struct http_client {
	sd_event *event;
	CURLM *multi;
	sd_event_source *timer;
	sd_event_source *defer;
	struct http_request *requests;      /* doubly linked, in flight */
	struct sock_watch *watches;
	size_t in_flight;
	size_t max_body;
	char user_agent[64];
	bool closing;
};

struct http_request {
	struct http_client *client;
	CURL *easy;
	struct curl_slist *headers;
	char *body;                         /* received body, NUL-terminated */
	size_t body_len, body_cap;
	char request_id[80];
	char error_type[128];
	char errbuf[CURL_ERROR_SIZE];
	bool too_large;
	http_done_fn done;
	void *userdata;
	struct http_request *prev, *next;
};

static void copy_trimmed(char *dst, size_t size, const char *src, size_t len)
{
	while (len > 0 && (*src == ' ' || *src == '\t')) {
		src++;
		len--;
	}
	while (len > 0 && (src[len - 1] == '\r' || src[len - 1] == '\n' ||
			   src[len - 1] == ' ' || src[len - 1] == '\t'))
		len--;
	if (len >= size)
		len = size - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

int http_url_is_loopback_http(const char *url)
{
	char host[64];
	const char *p, *end;
	struct in_addr a4;
	size_t len;

	if (url == NULL || strncasecmp(url, "http://", 7) != 0)
		return 0;
	p = url + 7;
	end = p + strcspn(p, "/?#");
	/* userinfo ("http://127.0.0.1@evil.example/") would hide the real host */
	if (memchr(p, '@', (size_t)(end - p)) != NULL)
		return 0;
	if (*p == '[') {
		return strncmp(p, "[::1]", 5) == 0 && (p[5] == ':' || p + 5 == end);
	}
	len = strcspn(p, ":/?#");
	if (len == 0 || len >= sizeof(host))
		return 0;
	memcpy(host, p, len);
	host[len] = '\0';
	if (strcasecmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return 0;
}

/* ---- sd-event glue -------------------------------------------------------------------- */

static void schedule_completions(struct http_client *c)
{
	if (c->defer != NULL)
		(void)sd_event_source_set_enabled(c->defer, SD_EVENT_ONESHOT);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct http_client *c = userdata;
	int action = 0, running;

	(void)s;
	if (revents & EPOLLIN)
		action |= CURL_CSELECT_IN;
	if (revents & EPOLLOUT)
		action |= CURL_CSELECT_OUT;
	if (revents & (EPOLLERR | EPOLLHUP))
		action |= CURL_CSELECT_ERR;
	if (curl_multi_socket_action(c->multi, fd, action, &running) != CURLM_OK)
		log_warnx("http: curl_multi_socket_action failed");
	schedule_completions(c);
	return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct http_client *c = userdata;
	int running;

	(void)s;
	(void)usec;
	if (curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running) != CURLM_OK)
		log_warnx("http: curl_multi_socket_action(timeout) failed");
	schedule_completions(c);
	return 0;
}

static void watch_free(struct sock_watch *w)
{
	struct http_client *c = w->client;

	if (w->prev)
		w->prev->next = w->next;
	else
		c->watches = w->next;
	if (w->next)
		w->next->prev = w->prev;
	sd_event_source_disable_unref(w->source);
	free(w);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct http_client *c = userp;
	struct sock_watch *w = socketp;
	uint32_t events = 0;
	int r;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (w != NULL) {
			(void)curl_multi_assign(c->multi, fd, NULL);
			watch_free(w);
		}
		return 0;
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		events |= EPOLLIN;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= EPOLLOUT;
	if (w != NULL) {
		if (sd_event_source_set_io_events(w->source, events) < 0 ||
		    sd_event_source_set_enabled(w->source, SD_EVENT_ON) < 0)
			return -1;
		return 0;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -1;
	r = sd_event_add_io(c->event, &w->source, fd, events, on_io, c);
	if (r < 0) {
		free(w);
		return -1;
	}
	(void)sd_event_source_set_description(w->source, "http-socket");
	w->client = c;
	w->fd = fd;
	w->next = c->watches;
	if (c->watches)
		c->watches->prev = w;
	c->watches = w;
	if (curl_multi_assign(c->multi, fd, w) != CURLM_OK) {
		watch_free(w);
		return -1;
	}
	return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct http_client *c = userp;
	uint64_t usec;
	int r;

	(void)multi;
	if (timeout_ms < 0) {
		if (c->timer != NULL)
			(void)sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
		return 0;
	}
	usec = (uint64_t)timeout_ms * 1000 + 1;   /* never earlier than curl asked */
	if (c->timer != NULL) {
		if (sd_event_source_set_time_relative(c->timer, usec) < 0 ||
		    sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT) < 0)
			return -1;
		return 0;
	}
	/* Accuracy 1 us: 0 would mean sd-event's default of 250 ms, and curl's "act now" (0 ms)
	 * would then wait up to a quarter second before a request even starts. */
	r = sd_event_add_time_relative(c->event, &c->timer, CLOCK_MONOTONIC, usec, 1, on_timer, c);
	if (r < 0)
		return -1;
	(void)sd_event_source_set_description(c->timer, "http-timer");
	return 0;
}

/* ---- requests ------------------------------------------------------------------------- */

static void request_unlink(struct http_request *req)
{
	struct http_client *c = req->client;

	if (req->prev)
		req->prev->next = req->next;
	else if (c->requests == req)
		c->requests = req->next;
	if (req->next)
		req->next->prev = req->prev;
	req->prev = req->next = NULL;
	c->in_flight--;
}

static void request_free(struct http_request *req)
{
	if (req->easy != NULL) {
		(void)curl_multi_remove_handle(req->client->multi, req->easy);
		curl_easy_cleanup(req->easy);
	}
	curl_slist_free_all(req->headers);
	free(req->body);
	free(req);
}

static void request_finish(struct http_request *req, int curl_code, bool cancelled)
{
	struct http_response resp = { 0 };
	long status = 0;

	request_unlink(req);
	if (curl_code == CURLE_OK)
		(void)curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
	resp.curl_code = curl_code;
	resp.status = status;
	resp.body = req->body ? req->body : "";
	resp.body_len = req->body_len;
	resp.request_id = req->request_id;
	resp.error_type = req->error_type;
	resp.too_large = req->too_large;
	resp.cancelled = cancelled;
	if (cancelled)
		resp.error = "cancelled";
	else if (req->too_large)
		resp.error = "response too large";
	else if (curl_code != CURLE_OK)
		resp.error = req->errbuf[0] ? req->errbuf : curl_easy_strerror((CURLcode)curl_code);
	else
		resp.error = "";
	req->done(req->userdata, &resp);
	request_free(req);
}

static int on_defer(sd_event_source *s, void *userdata)
{
	struct http_client *c = userdata;
	struct http_request *req = NULL;
	CURLMsg *msg;
	int left;

	(void)s;
	/* one completion per iteration, then yield to the rest of the loop (as systemd does) */
	msg = curl_multi_info_read(c->multi, &left);
	if (msg == NULL)
		return 0;
	if (msg->msg == CURLMSG_DONE &&
	    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&req) == CURLE_OK &&
	    req != NULL)
		request_finish(req, (int)msg->data.result, false);
	schedule_completions(c);
	return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct http_request *req = userdata;
	size_t n = size * nmemb, need;
	char *p;

	if (n > req->client->max_body - req->body_len) {
		req->too_large = true;
		return 0;               /* makes curl fail the transfer with CURLE_WRITE_ERROR */
	}
	need = req->body_len + n + 1;
	if (need > req->body_cap) {
		size_t cap = req->body_cap ? req->body_cap : 4096;

		while (cap < need)
			cap *= 2;
		p = realloc(req->body, cap);
		if (p == NULL)
			return 0;
		req->body = p;
		req->body_cap = cap;
	}
	memcpy(req->body + req->body_len, data, n);
	req->body_len += n;
	req->body[req->body_len] = '\0';
	return n;
}

static size_t on_header(char *data, size_t size, size_t nitems, void *userdata)
{
	struct http_request *req = userdata;
	size_t n = size * nitems;
	const char *colon;

	/* a new status line (after 100 Continue) starts a new header set */
	if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		req->request_id[0] = '\0';
		req->error_type[0] = '\0';
		return n;
	}
	colon = memchr(data, ':', n);
	if (colon == NULL)
		return n;
	if ((size_t)(colon - data) == 16 && strncasecmp(data, "x-amzn-RequestId", 16) == 0)
		copy_trimmed(req->request_id, sizeof(req->request_id), colon + 1,
			     n - (size_t)(colon + 1 - data));
	else if ((size_t)(colon - data) == 16 && strncasecmp(data, "x-amzn-ErrorType", 16) == 0)
		copy_trimmed(req->error_type, sizeof(req->error_type), colon + 1,
			     n - (size_t)(colon + 1 - data));
	return n;
}

static int add_header(struct curl_slist **list, const char *name, const char *value)
{
	char line[8192];
	struct curl_slist *l;
	int n;

	if (strpbrk(name, "\r\n:") != NULL || strpbrk(value, "\r\n") != NULL)
		return -EINVAL;     /* header injection */
	n = snprintf(line, sizeof(line), "%s: %s", name, value);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -EINVAL;
	l = curl_slist_append(*list, line);
	if (l == NULL)
		return -ENOMEM;
	*list = l;
	return 0;
}

#define SETOPT(h, o, v) do { if (curl_easy_setopt((h), (o), (v)) != CURLE_OK) goto fail_io; } while (0)

int http_request_start(struct http_client *c, const char *method, const char *url,
		       const struct http_header *headers, size_t nheaders,
		       const void *body, size_t body_len, const struct http_timeouts *timeouts,
		       http_done_fn done, void *userdata, struct http_request **out)
{
	struct http_request *req;
	const char *protocols;
	long connect_ms = DEFAULT_CONNECT_MS, total_ms = DEFAULT_TOTAL_MS;
	size_t i;
	int r;

	if (out)
		*out = NULL;
	if (c->closing)
		return -ESHUTDOWN;
	if (method == NULL || url == NULL || done == NULL || method[0] == '\0')
		return -EINVAL;
	if (strncasecmp(url, "https://", 8) == 0)
		protocols = "https";
	else if (http_url_is_loopback_http(url))
		protocols = "http";
	else
		return strstr(url, "://") ? -EPROTONOSUPPORT : -EINVAL;
	if (timeouts != NULL && timeouts->connect_ms > 0)
		connect_ms = timeouts->connect_ms;
	if (timeouts != NULL && timeouts->total_ms > 0)
		total_ms = timeouts->total_ms;

	req = calloc(1, sizeof(*req));
	if (req == NULL)
		return -ENOMEM;
	req->client = c;
	req->done = done;
	req->userdata = userdata;
	for (i = 0; i < nheaders; i++) {
		r = add_header(&req->headers, headers[i].name, headers[i].value);
		if (r < 0)
			goto fail;
	}
	/* curl would add these by itself; IVS needs neither */
	r = add_header(&req->headers, "Expect", "");
	if (r < 0)
		goto fail;
	req->easy = curl_easy_init();
	if (req->easy == NULL)
		goto fail_io;
	SETOPT(req->easy, CURLOPT_URL, url);
	SETOPT(req->easy, CURLOPT_PROTOCOLS_STR, protocols);
	SETOPT(req->easy, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
	SETOPT(req->easy, CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(req->easy, CURLOPT_NOSIGNAL, 1L);
	SETOPT(req->easy, CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(req->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	SETOPT(req->easy, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	SETOPT(req->easy, CURLOPT_TIMEOUT_MS, total_ms);
	if (timeouts != NULL && timeouts->fresh_connect)
		SETOPT(req->easy, CURLOPT_FRESH_CONNECT, 1L);
	SETOPT(req->easy, CURLOPT_USERAGENT, c->user_agent);
	SETOPT(req->easy, CURLOPT_HTTPHEADER, req->headers);
	SETOPT(req->easy, CURLOPT_PRIVATE, (char *)req);
	SETOPT(req->easy, CURLOPT_ERRORBUFFER, req->errbuf);
	SETOPT(req->easy, CURLOPT_WRITEFUNCTION, on_body);
	SETOPT(req->easy, CURLOPT_WRITEDATA, req);
	SETOPT(req->easy, CURLOPT_HEADERFUNCTION, on_header);
	SETOPT(req->easy, CURLOPT_HEADERDATA, req);
	/* IVS answers are a few kB of JSON: a 4 kB receive buffer instead of curl's 16 kB per
	 * transfer; larger bodies simply arrive in more callbacks (the body cap is unchanged) */
	SETOPT(req->easy, CURLOPT_BUFFERSIZE, 4096L);
	if (strcmp(method, "GET") == 0) {
		SETOPT(req->easy, CURLOPT_HTTPGET, 1L);
	} else {
		if (strcmp(method, "POST") != 0)
			SETOPT(req->easy, CURLOPT_CUSTOMREQUEST, method);
		else
			SETOPT(req->easy, CURLOPT_POST, 1L);
		SETOPT(req->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		SETOPT(req->easy, CURLOPT_COPYPOSTFIELDS, body ? (const char *)body : "");
	}
	if (curl_multi_add_handle(c->multi, req->easy) != CURLM_OK)
		goto fail_io;
	req->next = c->requests;
	if (c->requests)
		c->requests->prev = req;
	c->requests = req;
	c->in_flight++;
	if (out)
		*out = req;
	return 0;

fail_io:
	r = -EIO;
fail:
	if (req->easy)
		curl_easy_cleanup(req->easy);
	req->easy = NULL;
	request_free(req);
	return r;
}

void http_request_cancel(struct http_request *req)
{
	if (req == NULL)
		return;
	request_unlink(req);
	request_free(req);
}

size_t http_client_in_flight(const struct http_client *c)
{
	return c->in_flight;
}

int http_client_new(sd_event *event, const struct http_options *options, struct http_client **out)
{
	struct http_client *c;
	long max_conn = DEFAULT_MAX_HOST_CONNECTIONS;
	int r = -EIO;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		free(c);
		return -EIO;
	}
	c->event = sd_event_ref(event);
	c->max_body = DEFAULT_MAX_RESPONSE_BYTES;
	snprintf(c->user_agent, sizeof(c->user_agent), "ivs-autoscaler/%s", IVS_AUTOSCALER_VERSION);
	if (options != NULL) {
		if (options->max_host_connections > 0)
			max_conn = options->max_host_connections;
		if (options->max_response_bytes > 0)
			c->max_body = options->max_response_bytes;
		if (options->user_agent != NULL)
			snprintf(c->user_agent, sizeof(c->user_agent), "%s", options->user_agent);
	}
	c->multi = curl_multi_init();
	if (c->multi == NULL)
		goto fail;
	if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_conn) != CURLM_OK)
		goto fail;
	r = sd_event_add_defer(event, &c->defer, on_defer, c);
	if (r < 0)
		goto fail;
	(void)sd_event_source_set_description(c->defer, "http-completions");
	r = sd_event_source_set_enabled(c->defer, SD_EVENT_OFF);
	if (r < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	http_client_free(c);
	return r < 0 ? r : -EIO;
}

void http_client_free(struct http_client *c)
{
	if (c == NULL)
		return;
	c->closing = true;
	while (c->requests != NULL)
		request_finish(c->requests, CURLE_ABORTED_BY_CALLBACK, true);
	if (c->multi != NULL)
		(void)curl_multi_cleanup(c->multi);
	while (c->watches != NULL)
		watch_free(c->watches);
	sd_event_source_disable_unref(c->timer);
	sd_event_source_disable_unref(c->defer);
	sd_event_unref(c->event);
	curl_global_cleanup();
	free(c);
}
