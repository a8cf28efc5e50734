/*
 * http/http.h - plain HTTP requests: ingest (POST /v1/updates and the
 * providers' webhooks), GET /v1/orders/{ID}, the tracking page, health and
 * metrics.  server.c dispatches lws's HTTP callbacks here.
 *
 * A request answered at once is written from its head callback.  One that
 * waits (for its body, for Redis) keeps its http_session_t in lws's
 * per-session data through http_phase_t; session.c owns that life,
 * including pipelining.
 */
#ifndef TRACKGATE_HTTP_H
#define TRACKGATE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>
#include <uv.h>

#include "broker.h"
#include "config.h"
#include "hub.h"
#include "ingest.h"
#include "listener.h"
#include "metrics.h"
#include "page.h"
#include "ratelimit.h"

struct order_read;
struct source_req;

typedef struct http_session {
	struct http *http; /* the module it belongs to */
	struct lws *wsi;
	ingest_t *ingest;	   /* the POST in progress, owned here */
	struct order_read *read;   /* a GET /v1/orders/{ID} in progress, owned here */
	struct source_req *source; /* a /v1/orders/{ID}/source request in progress, owned here */
	uint8_t route;		   /* router_route_t, decided from the request line */
	uint8_t phase;		   /* http_phase_t of the request in progress */
	uint8_t held;		   /* input paused (rx flow control) while it waits */
	uint8_t pipelined;	   /* lws offered input behind it: answer, then close */
	uint8_t body_seen;	   /* a body chunk of this request came */
	uint8_t reoffers;	   /* body completions offered again while HTTP_QUEUED */
	uint8_t in_redis;	   /* its ingest or source write is counted in http->n_ingest */
	struct http_session *queue_prev, *queue_next; /* in http->queue while HTTP_QUEUED */
} http_session_t;

/* The HTTP side of the server: what it owns, and what it reads of the server's. */
typedef struct http {
	uv_loop_t *loop;
	const config_t *cfg;
	broker_t *broker;
	const hub_t *hub;
	metrics_t *metrics;
	ratelimit_t *rates;
	const bool *stopping;			/* the server's: draining */
	const unsigned *n_conns;		/* the server's: sockets lws holds */
	listener_stats_t (*pending)(void *arg); /* the listeners' lobbies, for /metrics */
	void *pending_arg;
	/* This process's sample for /metrics (the server's server_sample). */
	void (*sample)(void *arg, metrics_sample_t *out);
	void *sample_arg;
	page_t page;		    /* the tracking page, GET /t/{ID} */
	unsigned n_ingest;	    /* requests handed to Redis and not yet answered */
	http_session_t *queue;	    /* bodies complete this loop turn (see session.c) */
	unsigned last_error_status; /* the status of the last error answered */
} http_t;

/* lws's HTTP callbacks for session s of wsi.  Each returns what the callback returns. */
int http_on_head(http_t *h, struct lws *wsi, http_session_t *s, const char *path);
int http_on_body(http_session_t *s, const void *in, size_t len);
int http_on_body_done(http_session_t *s);
int http_on_writeable(http_session_t *s);
void http_on_closed(http_session_t *s);

/* An answer refusing a request at once (503 overloaded, ...): see http_reply.h. */
int http_refuse(http_t *h, struct lws *wsi, unsigned status, const char *code, const char *message);

/* At the end of each loop turn: hands the bodies completed in it to ingest. */
void http_after_io(http_t *h);

/* Nothing in flight: no request in Redis, none queued. */
bool http_idle(const http_t *h);

#endif
