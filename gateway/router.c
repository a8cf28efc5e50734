/*
 * router.c - method + path -> endpoint and the refusals of the request
 * line (see router.h).  The texts are the ones server.c and page.c answered
 * with before routing was its own module; clients and tests match on them.
 */
#include "router.h"

#include <string.h>

#include "proto.h"

#define ORDER_ID_MESSAGE "the order id must be 1-128 characters of A-Z a-z 0-9 . _ ~ -"

static const char *const route_names[ROUTER__COUNT] = {
    [ROUTER_NOT_FOUND] = "not_found", [ROUTER_METRICS_ONLY] = "metrics_only",
    [ROUTER_HEALTHZ] = "healthz",     [ROUTER_READYZ] = "readyz",
    [ROUTER_METRICS] = "metrics",     [ROUTER_UPDATES] = "updates",
    [ROUTER_ORDER_GET] = "order_get", [ROUTER_ORDER_SOURCE] = "order_source",
    [ROUTER_PAGE] = "page",	      [ROUTER_WEBHOOK] = "webhook",
    [ROUTER_TRACK] = "track",
};

/* path[0..len) is exactly lit. */
static bool path_is(const char *path, size_t len, const char *lit)
{
	size_t n = strlen(lit);

	return len == n && memcmp(path, lit, n) == 0;
}

/* path[0..len) starts with prefix; the rest is then path + strlen(prefix). */
static bool path_has_prefix(const char *path, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(path, prefix, n) == 0;
}

/* path[0..len) ends with suffix. */
static bool path_has_suffix(const char *path, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);

	return len >= n && memcmp(path + len - n, suffix, n) == 0;
}

static void refuse(router_match_t *out, unsigned status, const char *code, const char *message,
		   const char *allow)
{
	out->refusal.status = status;
	out->refusal.code = code;
	out->refusal.message = message;
	out->refusal.allow = allow;
	out->refusal.close = allow != NULL; /* a 405 closes: its body may follow unread */
}

static void refuse_method(router_match_t *out, const char *message, const char *allow)
{
	refuse(out, 405, "method_not_allowed", message, allow);
}

static router_route_t route_as(router_match_t *out, router_route_t route)
{
	out->route = route;
	return route;
}

router_route_t router_route(router_method_t m, const char *path, size_t len, bool on_metrics_port,
			    bool metrics_port_set, router_match_t *out)
{
	bool get_or_head = m == ROUTER_METHOD_GET || m == ROUTER_METHOD_HEAD;

	memset(out, 0, sizeof(*out));
	if (path == NULL)
		len = 0;
	out->drain_exempt = path_is(path, len, "/healthz") || path_is(path, len, "/readyz") ||
			    path_is(path, len, "/metrics");

	/* /healthz is answered on every address, the metrics one included. */
	if (path_is(path, len, "/healthz")) {
		if (!get_or_head)
			refuse_method(out, "use GET", "GET, HEAD");
		return route_as(out, ROUTER_HEALTHZ);
	}
	if (path_is(path, len, "/metrics") && (!metrics_port_set || on_metrics_port)) {
		if (!get_or_head)
			refuse_method(out, "use GET", "GET");
		return route_as(out, ROUTER_METRICS);
	}
	if (on_metrics_port) {
		refuse(out, 404, "not_found", "this address serves /metrics only", NULL);
		return route_as(out, ROUTER_METRICS_ONLY);
	}
	if (path_is(path, len, "/readyz")) {
		if (!get_or_head)
			refuse_method(out, "use GET", "GET, HEAD");
		return route_as(out, ROUTER_READYZ);
	}
	if (path_is(path, len, "/v1/updates")) {
		if (m != ROUTER_METHOD_POST)
			refuse_method(out, "use POST", "POST");
		return route_as(out, ROUTER_UPDATES);
	}
	if (path_has_prefix(path, len, "/v1/orders/") &&
	    path_has_suffix(path + 11, len - 11, "/source")) {
		/* An order id holds no '/': whatever comes before "/source" is the id, valid or
		 * not. */
		out->order_id = path + 11;
		out->order_id_len = len - 11 - 7;
		if (m != ROUTER_METHOD_GET && m != ROUTER_METHOD_PUT && m != ROUTER_METHOD_DELETE)
			refuse_method(out, "use GET, PUT or DELETE", "GET, PUT, DELETE");
		else if (!proto_order_id_valid(out->order_id, out->order_id_len))
			refuse(out, 400, "invalid_order_id", ORDER_ID_MESSAGE, NULL);
		return route_as(out, ROUTER_ORDER_SOURCE);
	}
	if (path_has_prefix(path, len, "/v1/orders/")) {
		out->order_id = path + 11;
		out->order_id_len = len - 11;
		if (m != ROUTER_METHOD_GET)
			refuse_method(out, "use GET", "GET");
		else if (!proto_order_id_valid(out->order_id, out->order_id_len))
			refuse(out, 400, "invalid_order_id", ORDER_ID_MESSAGE, NULL);
		return route_as(out, ROUTER_ORDER_GET);
	}
	if (path_has_prefix(path, len, "/t/")) {
		out->page = path + 3;
		out->page_len = len - 3;
		if (!get_or_head)
			refuse_method(out, "use GET", "GET, HEAD");
		return route_as(out, ROUTER_PAGE);
	}
	if (path_has_prefix(path, len, "/v1/webhooks/")) {
		out->provider = path + 13;
		out->provider_len = len - 13;
		out->onfleet_check =
		    m == ROUTER_METHOD_GET && path_is(out->provider, out->provider_len, "onfleet");
		if (m != ROUTER_METHOD_POST && !out->onfleet_check)
			refuse_method(out, "use POST", "POST");
		return route_as(out, ROUTER_WEBHOOK);
	}
	if (path_has_prefix(path, len, "/v1/track/")) {
		out->order_id = path + 10;
		out->order_id_len = len - 10;
		if (m != ROUTER_METHOD_GET)
			refuse_method(out, "use GET with a websocket upgrade", "GET");
		else if (!proto_order_id_valid(out->order_id, out->order_id_len))
			refuse(out, 400, "invalid_order_id", ORDER_ID_MESSAGE, NULL);
		else
			refuse(out, 426, "upgrade_required",
			       "this endpoint is a websocket: send Upgrade: websocket", NULL);
		return route_as(out, ROUTER_TRACK);
	}
	refuse(out, 404, "not_found", "no such endpoint", NULL);
	return route_as(out, ROUTER_NOT_FOUND);
}

router_route_t router_websocket(const char *path, size_t len, bool on_metrics_port,
				router_match_t *out)
{
	memset(out, 0, sizeof(*out));
	if (path == NULL || on_metrics_port || !path_has_prefix(path, len, "/v1/track/")) {
		refuse(out, 4404, "not_found",
		       "no such websocket endpoint; use /v1/track/{order_id}", NULL);
		return route_as(out, ROUTER_NOT_FOUND);
	}
	out->order_id = path + 10;
	out->order_id_len = len - 10;
	if (!proto_order_id_valid(out->order_id, out->order_id_len))
		refuse(out, 4400, "invalid_order_id", ORDER_ID_MESSAGE, NULL);
	return route_as(out, ROUTER_TRACK);
}

const char *router_route_name(router_route_t route)
{
	if ((int)route < 0 || (int)route >= ROUTER__COUNT)
		return "?";
	return route_names[route];
}
