/*
 * poll/http_client.c - libcurl's multi-socket API on the uv loop (see
 * http_client.h).
 *
 * curl says which sockets it wants watched for what (the socket callback:
 * one poll_http_sock_t with its uv_poll_t per socket, made on the first
 * call for it and closed on CURL_POLL_REMOVE) and when it next needs to be
 * called without any I/O (the timer callback: one uv_timer_t).  Each of
 * them hands the event to curl_multi_socket_action(), and after each the
 * finished transfers are collected (http_check_done) and their callbacks
 * called: outside of every curl callback, so a callback may start, cancel
 * or close.
 */
#include "http_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

struct poll_http_req {
	poll_http_t *c;
	CURL *easy;		    /* curl's: curl_easy_cleanup */
	struct curl_slist *headers; /* curl's: curl_slist_free_all, after the easy handle */
	poll_http_done_fn *fn;
	void *arg;
	char *body; /* is malloc'd: the response body so far, NUL-terminated */
	size_t body_len;
	size_t body_cap;
	long retry_after_s;
	bool too_large; /* the write callback refused a body past body_max */
	char err[CURL_ERROR_SIZE];
	poll_http_req_t *prev, *next; /* in c->reqs */
};

/* One socket curl watches; its memory is released in the poll handle's close callback. */
typedef struct poll_http_sock {
	poll_http_t *c;
	uv_poll_t poll;
	curl_socket_t fd;
	struct poll_http_sock *prev, *next; /* in c->socks until closed */
} poll_http_sock_t;

struct poll_http {
	uv_loop_t *loop;
	CURLM *multi; /* curl's; NULL once closed */
	uv_timer_t timer;
	poll_http_config_t cfg;
	char *ca_file; /* is malloc'd; cfg.ca_file points here */
	poll_http_req_t *reqs;
	poll_http_sock_t *socks;
	unsigned n_reqs;
	unsigned closing; /* uv_close() calls whose callback has not run yet */
	bool stopping;
	bool in_cleanup; /* inside curl_multi_cleanup: the multi is going away */
	bool global_init;
	void (*done)(void *arg);
	void *done_arg;
};

const char *poll_http_error_name(poll_http_error_t e)
{
	switch (e) {
	case POLL_HTTP_ERR_NONE:
		return "none";
	case POLL_HTTP_ERR_CONNECT:
		return "connect";
	case POLL_HTTP_ERR_RESOLVE:
		return "resolve";
	case POLL_HTTP_ERR_TIMEOUT:
		return "timeout";
	case POLL_HTTP_ERR_TLS:
		return "tls";
	case POLL_HTTP_ERR_TOO_LARGE:
		return "too_large";
	case POLL_HTTP_ERR_OTHER:
		return "other";
	}
	return "?";
}

/* --- closing ------------------------------------------------------------------- */

static void http_maybe_done(poll_http_t *c)
{
	void (*done)(void *arg) = c->done;

	if (!c->stopping || c->closing || !done)
		return;
	c->done = NULL;
	done(c->done_arg);
}

static void http_sock_closed(uv_handle_t *h)
{
	poll_http_sock_t *s = h->data;
	poll_http_t *c = s->c;

	free(s);
	c->closing--;
	http_maybe_done(c);
}

static void http_sock_close(poll_http_sock_t *s)
{
	poll_http_t *c = s->c;

	if (s->prev)
		s->prev->next = s->next;
	else
		c->socks = s->next;
	if (s->next)
		s->next->prev = s->prev;
	if (c->multi && !c->in_cleanup)
		curl_multi_assign(c->multi, s->fd, NULL);
	c->closing++;
	uv_close((uv_handle_t *)&s->poll, http_sock_closed);
}

/* --- the loop's side of curl --------------------------------------------------- */

static void http_check_done(poll_http_t *c);

static void http_poll_cb(uv_poll_t *h, int status, int events)
{
	poll_http_sock_t *s = h->data;
	poll_http_t *c = s->c;
	int flags = 0, running;

	if (status < 0)
		flags = CURL_CSELECT_ERR;
	else
		flags = (events & UV_READABLE ? CURL_CSELECT_IN : 0) |
			(events & UV_WRITABLE ? CURL_CSELECT_OUT : 0);
	curl_multi_socket_action(c->multi, s->fd, flags, &running);
	http_check_done(c);
}

static void http_timer_cb(uv_timer_t *t)
{
	poll_http_t *c = t->data;
	int running;

	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	http_check_done(c);
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what, or stop (CURL_POLL_REMOVE). */
static int http_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	poll_http_t *c = userp;
	poll_http_sock_t *s = socketp;
	int events = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s)
			http_sock_close(s);
		return 0;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -1;
		s->c = c;
		s->fd = fd;
		if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
			free(s);
			return -1;
		}
		s->poll.data = s;
		s->next = c->socks;
		if (c->socks)
			c->socks->prev = s;
		c->socks = s;
		curl_multi_assign(c->multi, fd, s);
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		events |= UV_READABLE;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= UV_WRITABLE;
	uv_poll_start(&s->poll, events, http_poll_cb);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: call curl_multi_socket_action(TIMEOUT) in timeout_ms; -1: never. */
static int http_timer_set(CURLM *multi, long timeout_ms, void *userp)
{
	poll_http_t *c = userp;

	(void)multi;
	if (timeout_ms < 0)
		uv_timer_stop(&c->timer);
	else
		uv_timer_start(&c->timer, http_timer_cb, (uint64_t)timeout_ms, 0);
	return 0;
}

/* --- one request --------------------------------------------------------------- */

static size_t http_write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	poll_http_req_t *r = userp;
	size_t n = size * nmemb;

	if (n > r->c->cfg.body_max - r->body_len) {
		r->too_large = true;
		return 0; /* curl ends the transfer: CURLE_WRITE_ERROR */
	}
	if (r->body_len + n + 1 > r->body_cap) {
		size_t cap = r->body_cap ? r->body_cap : 1024;
		char *body;

		while (cap < r->body_len + n + 1)
			cap *= 2;
		if (cap > r->c->cfg.body_max + 1)
			cap = r->c->cfg.body_max + 1;
		body = realloc(r->body, cap);
		if (!body)
			return 0;
		r->body = body;
		r->body_cap = cap;
	}
	memcpy(r->body + r->body_len, data, n);
	r->body_len += n;
	r->body[r->body_len] = '\0';
	return n;
}

/* Retry-After's value: delta-seconds or an HTTP-date; -1 when neither. */
static long http_retry_after(const char *v)
{
	char *end;
	long n;
	time_t t;

	if (*v >= '0' && *v <= '9') {
		n = strtol(v, &end, 10);
		return *end == '\0' && n >= 0 ? n : -1;
	}
	t = curl_getdate(v, NULL);
	if (t < 0)
		return -1;
	return t > time(NULL) ? (long)(t - time(NULL)) : 0;
}

/* CURLOPT_HEADERFUNCTION: one header line (not NUL-terminated), or a status line. */
static size_t http_header_cb(char *line, size_t size, size_t nmemb, void *userp)
{
	poll_http_req_t *r = userp;
	size_t n = size * nmemb, i = 12, j;
	char v[64];

	if (n >= 5 && !memcmp(line, "HTTP/", 5)) {
		r->retry_after_s = -1; /* a new answer (after a 100 Continue) */
		return n;
	}
	if (n <= 12 || strncasecmp(line, "retry-after:", 12) != 0)
		return n;
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	j = n;
	while (j > i && (line[j - 1] == '\r' || line[j - 1] == '\n' || line[j - 1] == ' ' ||
			 line[j - 1] == '\t'))
		j--;
	if (j - i < sizeof(v)) {
		memcpy(v, line + i, j - i);
		v[j - i] = '\0';
		r->retry_after_s = http_retry_after(v);
	}
	return n;
}

static void http_req_unlink(poll_http_req_t *r)
{
	poll_http_t *c = r->c;

	if (r->prev)
		r->prev->next = r->next;
	else
		c->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	c->n_reqs--;
}

/* Removes r from the multi and frees it; no callback. */
static void http_req_free(poll_http_req_t *r)
{
	http_req_unlink(r);
	if (r->c->multi)
		curl_multi_remove_handle(r->c->multi, r->easy);
	curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	free(r->body);
	free(r);
}

static poll_http_error_t http_error_of(const poll_http_req_t *r, CURLcode rc)
{
	switch (rc) {
	case CURLE_OK:
		return POLL_HTTP_ERR_NONE;
	case CURLE_COULDNT_CONNECT:
		return POLL_HTTP_ERR_CONNECT;
	case CURLE_COULDNT_RESOLVE_HOST:
		return POLL_HTTP_ERR_RESOLVE;
	case CURLE_OPERATION_TIMEDOUT:
		return POLL_HTTP_ERR_TIMEOUT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return POLL_HTTP_ERR_TLS;
	case CURLE_FILESIZE_EXCEEDED:
		return POLL_HTTP_ERR_TOO_LARGE;
	case CURLE_WRITE_ERROR:
		return r->too_large ? POLL_HTTP_ERR_TOO_LARGE : POLL_HTTP_ERR_OTHER;
	default:
		return POLL_HTTP_ERR_OTHER;
	}
}

/* The transfers curl has finished: each callback, then the request is freed. */
static void http_check_done(poll_http_t *c)
{
	CURLMsg *msg;
	int left;

	while (c->multi && (msg = curl_multi_info_read(c->multi, &left))) {
		poll_http_response_t res = {.retry_after_s = -1, .body = ""};
		poll_http_req_t *r = NULL;
		poll_http_done_fn *fn;
		void *arg;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		res.error = http_error_of(r, msg->data.result);
		if (res.error == POLL_HTTP_ERR_NONE) {
			curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res.status);
			res.retry_after_s = r->retry_after_s;
			if (r->body) {
				res.body = r->body;
				res.body_len = r->body_len;
			}
		} else {
			res.why = r->err[0] ? r->err : curl_easy_strerror(msg->data.result);
			if (res.error == POLL_HTTP_ERR_TOO_LARGE)
				res.why = "the response body is longer than the limit";
		}
		/* Out of the multi before the callback, which may start, cancel or close. */
		http_req_unlink(r);
		curl_multi_remove_handle(c->multi, r->easy);
		fn = r->fn;
		arg = r->arg;
		fn(arg, &res);
		curl_easy_cleanup(r->easy);
		curl_slist_free_all(r->headers);
		free(r->body);
		free(r);
	}
}

/* A method is an upper-case token (RFC 9110 9.1 allows more; providers use these). */
static bool http_method_ok(const char *m)
{
	size_t n = strlen(m);

	if (n < 3 || n > 16)
		return false;
	for (size_t i = 0; i < n; i++)
		if (m[i] < 'A' || m[i] > 'Z')
			return false;
	return true;
}

int poll_http_request(poll_http_t *c, const char *method, const char *url,
		      const char *const *headers, size_t n_headers, const char *body,
		      size_t body_len, poll_http_done_fn *fn, void *arg, poll_http_req_t **out)
{
	poll_http_req_t *r;
	struct curl_slist *l;
	CURL *e;
	int rc = POLL_HTTP_ENOMEM;

	if (c->stopping)
		return POLL_HTTP_ESTOPPED;
	if (!http_method_ok(method) ||
	    (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0))
		return POLL_HTTP_EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return POLL_HTTP_ENOMEM;
	r->c = c;
	r->fn = fn;
	r->arg = arg;
	r->retry_after_s = -1;
	r->easy = e = curl_easy_init();
	if (!e)
		goto fail;
	/* Expect: 100-continue would wait a second for a body over 1 KiB: none. */
	if (!(r->headers = curl_slist_append(NULL, "Expect:")))
		goto fail;
	for (size_t i = 0; i < n_headers; i++) {
		if (!(l = curl_slist_append(r->headers, headers[i])))
			goto fail;
		r->headers = l;
	}
	rc = POLL_HTTP_EINVAL;
	if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK)
		goto fail;
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->err);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "trackgate");
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->cfg.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->cfg.timeout_ms);
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->cfg.body_max);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http_header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	if (c->cfg.ca_file && c->cfg.ca_file[0])
		curl_easy_setopt(e, CURLOPT_CAINFO, c->cfg.ca_file);
	if (body || !strcmp(method, "POST")) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		rc = POLL_HTTP_ENOMEM;
		if (curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body ? body : "") != CURLE_OK)
			goto fail;
	}
	if (!strcmp(method, "HEAD"))
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	rc = POLL_HTTP_ENOMEM;
	if (curl_multi_add_handle(c->multi, e) != CURLM_OK)
		goto fail;
	r->next = c->reqs;
	if (c->reqs)
		c->reqs->prev = r;
	c->reqs = r;
	c->n_reqs++;
	if (out)
		*out = r;
	return POLL_HTTP_OK;
fail:
	if (e)
		curl_easy_cleanup(e);
	curl_slist_free_all(r->headers);
	free(r);
	return rc;
}

void poll_http_cancel(poll_http_req_t *r)
{
	if (r)
		http_req_free(r);
}

unsigned poll_http_pending(const poll_http_t *c)
{
	return c->n_reqs;
}

/* --- the client ---------------------------------------------------------------- */

poll_http_t *poll_http_new(uv_loop_t *loop, const poll_http_config_t *cfg)
{
	poll_http_t *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->loop = loop;
	c->cfg = *cfg;
	c->ca_file = strdup(cfg->ca_file ? cfg->ca_file : "");
	if (!c->ca_file || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		goto fail;
	c->global_init = true;
	c->cfg.ca_file = c->ca_file;
	c->multi = curl_multi_init();
	if (!c->multi)
		goto fail;
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, http_socket_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, http_timer_set);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	return c;
fail:
	if (c->multi)
		curl_multi_cleanup(c->multi);
	if (c->global_init)
		curl_global_cleanup();
	free(c->ca_file);
	free(c);
	return NULL;
}

static void http_timer_closed(uv_handle_t *h)
{
	poll_http_t *c = h->data;

	c->closing--;
	http_maybe_done(c);
}

void poll_http_close(poll_http_t *c, void (*done)(void *arg), void *arg)
{
	if (c->stopping)
		return;
	c->stopping = true;
	c->done = done;
	c->done_arg = arg;
	while (c->reqs)
		http_req_free(c->reqs);
	/* Closes the kept-alive connections: their sockets come back as CURL_POLL_REMOVE. */
	c->in_cleanup = true;
	curl_multi_cleanup(c->multi);
	c->multi = NULL;
	c->in_cleanup = false;
	while (c->socks)
		http_sock_close(c->socks);
	uv_timer_stop(&c->timer);
	c->closing++;
	uv_close((uv_handle_t *)&c->timer, http_timer_closed);
}

void poll_http_free(poll_http_t *c)
{
	if (!c)
		return;
	if (c->global_init)
		curl_global_cleanup();
	free(c->ca_file);
	free(c);
}
