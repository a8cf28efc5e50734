/*
 * http.h - answering a plain HTTP request on an lws connection.
 */
#ifndef TRACKGATE_HTTP_H
#define TRACKGATE_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "query.h"

struct lws;

/*
 * The request's query arguments, copied into buf (cap bytes) and split into
 * q.  lws hands the query over as one fragment per '&'-separated argument,
 * already %-decoded; each is copied whole, whatever its length, so no
 * argument hides another (lws_get_urlarg_by_name stops at the first one
 * longer than its buffer).  Returns 0, or -1 when the arguments do not fit
 * in buf (cap >= HTTP_QUERY_MAX always fits: lws holds at most that much).
 */
#define HTTP_QUERY_MAX 4200
int http_query(struct lws *wsi, query_t *q, char *buf, size_t cap);

/*
 * Writes status, headers and body in one lws_write and ends the
 * transaction.  With close (or when lws says the connection cannot be kept)
 * the connection is closed once the answer is flushed.  Returns what the
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
int http_error(struct lws *wsi, unsigned status, const char *code, const char *message,
	       bool close, const char *allow);

/* The JSON error body, malloc'd; NULL on OOM. */
char *http_error_body(const char *code, const char *message);

#endif
