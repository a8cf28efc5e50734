/*
 * http/routes.c - which request goes where: method and path to the
 * handler, and the answers that need nothing else (health, readiness,
 * metrics, the refusals).
 */
#include "http_private.h"

#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "http_reply.h"
#include "log.h"
#include "proto.h"

http_method_t http_method(struct lws *wsi)
{
	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI))
		return METHOD_GET;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI))
		return METHOD_POST;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI))
		return METHOD_HEAD;
	return METHOD_OTHER;
}

static int http_reply_json(struct lws *wsi, unsigned status, const char *body)
{
	return http_reply(wsi, status, "application/json", body, strlen(body), false, NULL);
}

/* The metrics text, malloc'd: the counters, and gauges read now. */
static char *http_metrics(const http_t *h, size_t *len)
{
	metrics_view_t v = {
		.m = h->metrics,
		.hub = h->hub,
		.broker = broker_stats(h->broker),
		.redis_up = broker_ready(h->broker),
		.n_conns = *h->n_conns,
	};

	if (h->pending)
		v.pending = h->pending(h->pending_arg);
	return metrics_render(&v, len);
}

int http_fail(http_t *h, struct lws *wsi, unsigned status, const char *code, const char *message,
	      bool close, const char *allow)
{
	h->last_error_status = status;
	log_event(LOG_DEBUG, "http_error", "status=%u error=%s", status, code);
	return http_error(wsi, status, code, message, close, allow);
}

int http_route(http_t *h, struct lws *wsi, http_session_t *s, const char *path)
{
	http_method_t m = http_method(wsi);

	if (*h->stopping && strcmp(path, "/healthz") && strcmp(path, "/readyz") &&
	    strcmp(path, "/metrics"))
		/* Requests read before the drain began are answered; later ones go elsewhere. */
		return http_fail(h, wsi, 503, "shutting_down",
				    "this node is shutting down; retry (another node answers)", true,
				    NULL);
	if ((m == METHOD_GET || m == METHOD_HEAD) && http_body_declared(wsi))
		/* Its answer could only come after the body: refuse it at the head (and close). */
		return http_fail(h, wsi, 400, "body_not_allowed",
				    "a GET or HEAD request carries no body", true, NULL);
	if (!strcmp(path, "/healthz")) {
		if (m != METHOD_GET && m != METHOD_HEAD)
			return http_fail(h, wsi, 405, "method_not_allowed", "use GET", true, "GET, HEAD");
		if (*h->stopping)
			return http_fail(h, wsi, 503, "shutting_down", "draining", true, NULL);
		return http_reply_json(wsi, 200, "{\"status\":\"ok\"}");
	}
	bool metrics_port = conn_on_metrics_port(h->cfg, wsi);

	if (!strcmp(path, "/metrics") && (!h->cfg->metrics_port || metrics_port)) {
		char *text;
		size_t tlen;
		int rc;

		if (m != METHOD_GET && m != METHOD_HEAD)
			return http_fail(h, wsi, 405, "method_not_allowed", "use GET", true, "GET");
		text = http_metrics(h, &tlen);
		if (!text)
			return http_fail(h, wsi, 503, "out_of_memory", "retry", false, NULL);
		rc = http_reply(wsi, 200, "text/plain; version=0.0.4", text, tlen, false, NULL);
		free(text);
		return rc;
	}
	if (metrics_port)
		return http_fail(h, wsi, 404, "not_found", "this address serves /metrics only", false,
				    NULL);
	if (!strcmp(path, "/readyz")) {
		if (m != METHOD_GET && m != METHOD_HEAD)
			return http_fail(h, wsi, 405, "method_not_allowed", "use GET", true, "GET, HEAD");
		if (*h->stopping)
			return http_fail(h, wsi, 503, "shutting_down", "draining", true, NULL);
		if (!broker_ready(h->broker))
			return http_fail(h, wsi, 503, "redis_unavailable",
					    "a Redis connection is down", false, NULL);
		return http_reply_json(wsi, 200, "{\"status\":\"ready\"}");
	}
	if (!strcmp(path, "/v1/updates")) {
		if (m != METHOD_POST)
			return http_fail(h, wsi, 405, "method_not_allowed", "use POST", true,
					    "POST");
		return http_body_start(h, wsi, s, 0, true);
	}
	if (!strncmp(path, "/v1/orders/", 11))
		return http_order_get(h, wsi, s, path + 11, m);
	if (!strncmp(path, "/t/", 3))
		return page_serve(&h->page, wsi, path + 3, m == METHOD_GET || m == METHOD_HEAD);
	if (!strncmp(path, "/v1/webhooks/", 13))
		return http_webhook_start(h, wsi, s, path + 13, m);
	if (!strncmp(path, "/v1/track/", 10)) {
		const char *id = path + 10;

		if (m != METHOD_GET)
			return http_fail(h, wsi, 405, "method_not_allowed",
					    "use GET with a websocket upgrade", true, "GET");
		if (!proto_order_id_valid(id, strlen(id)))
			return http_fail(h, wsi, 400, "invalid_order_id",
					    "the order id must be 1-128 characters of "
					    "A-Z a-z 0-9 . _ ~ -", false, NULL);
		return http_fail(h, wsi, 426, "upgrade_required",
				    "this endpoint is a websocket: send Upgrade: websocket", false,
				    NULL);
	}
	return http_fail(h, wsi, 404, "not_found", "no such endpoint", false, NULL);
}

