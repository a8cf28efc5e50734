/*
 * http/http_private.h - what the files of http/ share: session.c (a
 * request's life), routes.c (which handler), ingest.c (updates and
 * webhooks), orders.c (GET /v1/orders/{ID}), sources.c
 * (/v1/orders/{ID}/source), page.c.
 */
#ifndef TRACKGATE_HTTP_PRIVATE_H
#define TRACKGATE_HTTP_PRIVATE_H

#include "http.h"
#include "router.h"

/*
 * The life of a plain HTTP request whose answer comes later.  A request
 * answered at once never leaves HTTP_IDLE.
 */
typedef enum http_phase {
	HTTP_IDLE = 0, /* nothing pending */
	HTTP_BODY,     /* a POST body is being read */
	HTTP_QUEUED,   /* the body is complete; handed to ingest at the end of this loop turn */
	HTTP_WAITING,  /* waiting for Redis, input held */
	HTTP_READY,    /* the answer is ready to write */
} http_phase_t;

/* The request's method, from the head lws parsed. */
router_method_t http_method(struct lws *wsi);

/* Answers {"error":code,"message":message} and remembers the status (for the metrics of a
 * request refused before its body). */
int http_fail(http_t *h, struct lws *wsi, unsigned status, const char *code, const char *message,
	      bool close, const char *allow);

/* Routes a request whose head is complete (routes.c). */
int http_route(http_t *h, struct lws *wsi, http_session_t *s, const char *path);

/* s waits: its input is held (rx flow control) until http_ready. */
void http_hold(struct lws *wsi, http_session_t *s);
/* s's answer is ready: its input is released and the answer written when writeable. */
void http_ready(struct lws *wsi, http_session_t *s);

/* Frees s's ingest, and counts it out of what the drain waits for. */
void http_ingest_drop(http_session_t *s);

/* The request's Content-Type is "application/json", optionally with parameters such as
 * "; charset=utf-8" (ingest.c). */
bool http_is_json(struct lws *wsi);
/* The request carries `Authorization: Bearer KEY` with a configured ingest key (ingest.c). */
bool http_authorized(http_t *h, struct lws *wsi);

/*
 * The media type and Content-Length of a JSON body of at most limit bytes
 * (415, 411, 400, 413, 400 empty, each closing): true with *len, or false when
 * refused (answered; *rc is what the lws callback returns).
 */
bool http_json_length(http_t *h, struct lws *wsi, size_t limit, size_t *len, int *rc);

/* POST bodies (ingest.c). */
int http_body_start(http_t *h, struct lws *wsi, http_session_t *s, unsigned provider, bool bearer);
int http_webhook_start(http_t *h, struct lws *wsi, http_session_t *s, const router_match_t *r);
bool http_webhook_finish(http_t *h, struct lws *wsi, http_session_t *s);
int http_ingest_write(http_t *h, struct lws *wsi, const ingest_t *ing, bool close);

/* GET /v1/orders/{ID} (orders.c). */
typedef struct order_read order_read_t;
int http_order_get(http_t *h, struct lws *wsi, http_session_t *s, const char *id);
void http_order_read_free(order_read_t *r);
/* Writes r's answer and frees r; returns what the lws callback must return. */
int http_order_write(struct lws *wsi, order_read_t *r, bool close);

/*
 * /v1/orders/{ID}/source (sources.c), for a route the router did not refuse.
 * http_source_start checks the ingest key; GET and DELETE then wait for
 * Redis, a PUT reads its body into s->source (http_source_body, -1 past its
 * Content-Length) and http_source_finish validates and stores it at the end
 * of the loop turn: true when the answer is ready at once (a 400, a 503),
 * false while Redis has it.  http_source_write writes the answer and frees r.
 */
typedef struct source_req source_req_t;
int http_source_start(http_t *h, struct lws *wsi, http_session_t *s, const router_match_t *r);
int http_source_body(source_req_t *r, const void *in, size_t len);
bool http_source_finish(http_t *h, http_session_t *s);
int http_source_write(struct lws *wsi, source_req_t *r, bool close);
void http_source_free(source_req_t *r);

#endif
