/*
 * router.h - which endpoint a request is for, decided once from its
 * method and path, and the refusal its path and method alone call for.
 *
 * http/routes.c answers a request with a switch over router_route_t: the router
 * has done every string compare and every check that needs nothing but the
 * request line (the method's 405 with its Allow value, the order id's 400,
 * the metrics address's 404, the websocket path's 426).  What needs the
 * server (draining, Redis, the configured webhooks, tokens, the body) stays
 * in http/routes.c (and ws/session.c), in the order documented on each route below.
 *
 * Pure: no lws, no server state, no allocation; every string it hands out
 * is static or points into the caller's path.  Unit-tested
 * (tests/unit/test_router.c) and fuzzed (tests/fuzz/fuzz_http_path.c).
 */
#ifndef TRACKGATE_HTTP_ROUTER_H
#define TRACKGATE_HTTP_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

/* The request's method, as lws tells it (WSI_TOKEN_GET_URI, _POST_URI, _HEAD_URI,
 * _PUT_URI, _DELETE_URI). */
typedef enum router_method {
	ROUTER_METHOD_OTHER = 0,
	ROUTER_METHOD_GET,
	ROUTER_METHOD_POST,
	ROUTER_METHOD_HEAD,
	ROUTER_METHOD_PUT,
	ROUTER_METHOD_DELETE,
} router_method_t;

/*
 * The endpoints.  For each, what http/routes.c does after the router, in order
 * (a refusal is router_match_t.refusal, answered when its status is not 0):
 *
 *   NOT_FOUND     always refused: 404 not_found "no such endpoint".
 *   METRICS_ONLY  the metrics address, any path but /metrics and /healthz:
 *                 always refused: 404 not_found "this address serves /metrics only".
 *   HEALTHZ       the refusal (405 unless GET or HEAD), then 503 while draining, then 200.
 *   READYZ        the refusal (405 unless GET or HEAD), then 503 while draining,
 *                 then 503 redis_unavailable, then 200.
 *   METRICS       the refusal (405 unless GET or HEAD; Allow is "GET" only, as
 *                 always), then the text.
 *   UPDATES       the refusal (405 unless POST), then the body.
 *   ORDER_GET     the refusal (405 unless GET: HEAD is refused too; then 400
 *                 invalid_order_id), then the token and the snapshot of order_id.
 *   ORDER_SOURCE  /v1/orders/{ID}/source, where poll mode finds an order's
 *                 courier data: the refusal (405 unless GET, PUT or DELETE: HEAD
 *                 is refused too; then 400 invalid_order_id), then the ingest
 *                 key, then (PUT) the body, and Redis (http/sources.c).
 *   PAGE          the refusal (405 unless GET or HEAD), then page_serve on page.
 *   WEBHOOK       first 404 unknown_provider when provider has no adapter or no
 *                 configured secret, then the refusal (405 unless POST, or GET to
 *                 onfleet), then Onfleet's validation request when onfleet_check,
 *                 else the body.
 *   TRACK         always refused over plain HTTP: 405 unless GET, 400
 *                 invalid_order_id, else 426 upgrade_required.  router_websocket
 *                 is the same path's upgrade.
 */
typedef enum router_route {
	ROUTER_NOT_FOUND = 0,
	ROUTER_METRICS_ONLY,
	ROUTER_HEALTHZ,
	ROUTER_READYZ,
	ROUTER_METRICS,
	ROUTER_UPDATES,
	ROUTER_ORDER_GET,
	ROUTER_ORDER_SOURCE,
	ROUTER_PAGE,
	ROUTER_WEBHOOK,
	ROUTER_TRACK,
	ROUTER__COUNT,
} router_route_t;

/* An answer decided by the request line alone; static strings. */
typedef struct router_refusal {
	unsigned status;     /* 0: none; else 400, 404, 405 or 426 (router_websocket: 4400, 4404) */
	const char *code;    /* the error code of the JSON body, e.g. "method_not_allowed" */
	const char *message; /* its message */
	const char *allow;   /* a 405's Allow header value; NULL otherwise */
	bool close;	     /* close the connection after the answer (every 405) */
} router_refusal_t;

typedef struct router_match {
	router_route_t route;
	/* The path is /healthz, /readyz or /metrics, whatever the address: a drain
	 * answers these and refuses everything else with 503 shutting_down.  (So
	 * /metrics on the main address with metrics-listen set is 404 then, not 503.) */
	bool drain_exempt;
	/* ORDER_GET, ORDER_SOURCE, TRACK: the order id, the path after its prefix
	 * (ORDER_SOURCE: up to "/source"); valid when the refusal is none
	 * (ORDER_GET, ORDER_SOURCE) or 426 (TRACK). */
	const char *order_id;
	size_t order_id_len;
	/* PAGE: what follows "/t/" (an order id or "assets/NAME"), for page_serve. */
	const char *page;
	size_t page_len;
	/* WEBHOOK: the provider, the path after "/v1/webhooks/" (any bytes). */
	const char *provider;
	size_t provider_len;
	/* WEBHOOK: a GET to /v1/webhooks/onfleet, Onfleet's validation request (?check=). */
	bool onfleet_check;
	router_refusal_t refusal;
} router_match_t;

/*
 * Routes the request for path[0..len) (lws's decoded path, without the
 * query; http/routes.c passes strlen of it) with method m.  on_metrics_port:
 * the request came in on the metrics-listen address; metrics_port_set:
 * metrics-listen is configured (/metrics is served on the main address
 * only without it).  Fills *out (every field: those a route does not use
 * are NULL, 0 or false) and returns out->route.  The pointers in *out
 * point into path: when path is NUL-terminated at len, so are they, but
 * for ORDER_SOURCE's order_id, which "/source" follows (use its length).
 */
router_route_t router_route(router_method_t m, const char *path, size_t len, bool on_metrics_port,
			    bool metrics_port_set, router_match_t *out);

/*
 * The path of a websocket upgrade (lws's WSI_TOKEN_GET_URI; len 0 when it
 * could not be copied).  ROUTER_TRACK with the order id, refusal none;
 * ROUTER_TRACK refused 4400 invalid_order_id when the id is not valid; or
 * ROUTER_NOT_FOUND refused 4404 not_found for any other path and for any
 * path on the metrics address.  refusal.status is the close code then.
 */
router_route_t router_websocket(const char *path, size_t len, bool on_metrics_port,
				router_match_t *out);

/* The route's name for logs and tests ("healthz", "order_get", ...); "?" when out of range. */
const char *router_route_name(router_route_t route);

#endif
