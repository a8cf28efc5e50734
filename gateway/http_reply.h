/*
 * http_reply.h - answering a plain HTTP request on an lws connection.
 */
#ifndef TRACKGATE_HTTP_REPLY_H
#define TRACKGATE_HTTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

struct lws;

/*
 * Whether lws reads a body after this request's head: a Content-Length
 * over 0, or a POST, PUT or PATCH without one (lws 4.1 then reads up to
 * 100 MiB).  Decided from the parsed head exactly as lws decides it.
 */
bool http_body_declared(struct lws *wsi);

/*
 * Whether the first body bytes lws hands over for a request of method (POST,
 * PUT) are its own head: lws 4.1 parses a request it kept in its buffer (input pipelined
 * behind an earlier one) twice, first handing the head itself over as the
 * body, then the real body from a buffer it has freed meanwhile (read by
 * nobody: the connection must end at once).  After optional CR/LF, they
 * begin like "METHOD /" (as much of it as there are bytes), which no JSON body
 * does.  Pure.
 */
bool http_body_is_own_head(const char *method, const void *first, size_t len);

/*
 * The head of wsi's request is being handled (LWS_CALLBACK_HTTP); until
 * http_head_end(), an answer to it that is written at once closes the
 * connection when the request declares a body.  lws 4.1 cannot skip a body
 * behind an answered head: it switches to discarding it and then loops
 * forever inside lws_http_action over input pipelined behind it (the spin
 * integration.http_fuzz found).  Closing is what RFC 9112 9.6 allows, and
 * nothing of the unread body is ever acted on.
 */
void http_head_begin(struct lws *wsi);
void http_head_end(void);

/*
 * Writes status, headers and body in one lws_write and ends the
 * transaction.  With close (or when lws says the connection cannot be kept,
 * or the answer is to a head whose body is not read: http_head_begin) the
 * connection is closed once the answer is flushed.  Returns what the
 * lws callback must return.  allow: the Allow header value of a 405, or NULL.
 */
int http_reply(struct lws *wsi, unsigned status, const char *content_type, const char *body,
	       size_t len, bool close, const char *allow);

/* The same with one extra header (name with its colon, e.g. "retry-after:"). */
int http_reply_hdr(struct lws *wsi, unsigned status, const char *content_type, const char *body,
		   size_t len, bool close, const char *hdr_name, const char *hdr_value);

/* One extra header: name with its colon, lower case ("content-security-policy:"). */
typedef struct http_header {
	const char *name;
	const char *value;
} http_header_t;

/* The same with n_hdrs extra headers; a "cache-control:" among them replaces the
 * default no-store.  A 304 is sent without its body (len still gives Content-Length). */
int http_reply_ex(struct lws *wsi, unsigned status, const char *content_type, const char *body,
		  size_t len, bool close, const http_header_t *hdrs, size_t n_hdrs);

/* {"error":CODE,"message":MESSAGE} with the status. */
int http_error(struct lws *wsi, unsigned status, const char *code, const char *message, bool close,
	       const char *allow);

/* The JSON error body, malloc'd; NULL on OOM. */
char *http_error_body(const char *code, const char *message);

#endif
