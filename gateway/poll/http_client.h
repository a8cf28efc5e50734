/*
 * poll/http_client.h - outbound HTTP(S) requests on the process's uv loop,
 * for polling providers' APIs: libcurl's multi-socket API, one uv_poll_t
 * per socket curl opens and one uv_timer_t for curl's timeouts, so nothing
 * blocks the loop (names are resolved by curl's threaded resolver).
 *
 * TLS peers are verified (CURLOPT_SSL_VERIFYPEER/VERIFYHOST stay on;
 * ca_file replaces the system's store, for tests).  Connections are kept
 * alive and reused between requests to the same host.  Redirects are not
 * followed; only http:// and https:// URLs are taken.
 *
 * A request answers once through its callback, never from within the call
 * that started it, unless it is cancelled first: then never.
 */
#ifndef TRACKGATE_POLL_HTTP_CLIENT_H
#define TRACKGATE_POLL_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

typedef struct poll_http poll_http_t;
typedef struct poll_http_req poll_http_req_t;

enum {
	POLL_HTTP_OK = 0,
	POLL_HTTP_ENOMEM = -1,
	POLL_HTTP_EINVAL = -2,	 /* a method or URL curl does not take */
	POLL_HTTP_ESTOPPED = -3, /* poll_http_close was called */
};

/* Why a request got no HTTP answer. */
typedef enum poll_http_error {
	POLL_HTTP_ERR_NONE = 0,	 /* an answer: status, headers, body */
	POLL_HTTP_ERR_CONNECT,	 /* no connection: refused, unreachable */
	POLL_HTTP_ERR_RESOLVE,	 /* the host name did not resolve */
	POLL_HTTP_ERR_TIMEOUT,	 /* connect_timeout_ms or timeout_ms passed */
	POLL_HTTP_ERR_TLS,	 /* the handshake failed or the peer is not trusted */
	POLL_HTTP_ERR_TOO_LARGE, /* the body is longer than body_max */
	POLL_HTTP_ERR_OTHER,	 /* anything else curl reports (why says what) */
} poll_http_error_t;

const char *poll_http_error_name(poll_http_error_t e);

typedef struct poll_http_config {
	unsigned connect_timeout_ms; /* TCP + TLS handshake */
	unsigned timeout_ms;	     /* the whole request, connect included */
	size_t body_max;	     /* the longest response body taken */
	const char *ca_file;	     /* PEM CA bundle; NULL or "": the system's */
} poll_http_config_t;

/* What a request got; valid during the callback only. */
typedef struct poll_http_response {
	poll_http_error_t error;
	const char *why; /* error != NONE: curl's words for it */
	long status;	 /* error == NONE: the HTTP status */
	/* Retry-After in seconds (delta-seconds or an HTTP-date from now, 0 when
	 * past); -1 without one or when it does not parse. */
	long retry_after_s;
	const char *body; /* NUL-terminated; "" when empty */
	size_t body_len;
} poll_http_response_t;

typedef void poll_http_done_fn(void *arg, const poll_http_response_t *r);

/* A client on loop with a copy of *cfg (ca_file copied too); NULL when out of memory. */
poll_http_t *poll_http_new(uv_loop_t *loop, const poll_http_config_t *cfg);

/*
 * Starts method (e.g. "GET", "POST") on url with n_headers "Name: value"
 * lines and body (may be NULL; copied).  fn(arg, ...) is called once with
 * what came; req (may be NULL) receives the request, valid until fn is
 * called or poll_http_cancel.
 */
int poll_http_request(poll_http_t *c, const char *method, const char *url,
		      const char *const *headers, size_t n_headers, const char *body,
		      size_t body_len, poll_http_done_fn *fn, void *arg, poll_http_req_t **req);

/* Stops and frees req at once; its callback is never called.  Not from within its own. */
void poll_http_cancel(poll_http_req_t *req);

/* Requests in flight. */
unsigned poll_http_pending(const poll_http_t *c);

/*
 * Cancels every request (no callback is called), closes every connection
 * and handle, and calls done(arg) once nothing of the client is left on the
 * loop; then poll_http_free().  May be called from a request's callback.
 */
void poll_http_close(poll_http_t *c, void (*done)(void *arg), void *arg);
void poll_http_free(poll_http_t *c);

#endif
