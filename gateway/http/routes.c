/*
 * http/routes.c - which request goes where: the router's route (router.c:
 * method and path, decided once and kept in the session) to its handler,
 * and the answers that need nothing else (health, readiness, metrics).
 */
#include "http_private.h"

#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "group.h"
#include "http_reply.h"
#include "log.h"
#include "router.h"

router_method_t http_method(struct lws *wsi)
{
	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI))
		return ROUTER_METHOD_GET;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI))
		return ROUTER_METHOD_POST;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI))
		return ROUTER_METHOD_HEAD;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_PUT_URI))
		return ROUTER_METHOD_PUT;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_DELETE_URI))
		return ROUTER_METHOD_DELETE;
	return ROUTER_METHOD_OTHER;
}

static int http_reply_json(struct lws *wsi, unsigned status, const char *body)
{
	return http_reply(wsi, status, "application/json", body, strlen(body), false, NULL);
}

/*
 * The metrics text, malloc'd: this process's counters and gauges read now;
 * in a worker of a group, the group's sum over every worker (group.h), so
 * that whichever worker a scrape reaches, it sees the same counters.
 */
static char *http_metrics(const http_t *h, size_t *len)
{
	metrics_sample_t s;
	metrics_process_t p;

	h->sample(h->sample_arg, &s);
	group_scrape(&s, &p);
	return metrics_render(&s, &p, len);
}

int http_fail(http_t *h, struct lws *wsi, unsigned status, const char *code, const char *message,
	      bool close, const char *allow)
{
	h->last_error_status = status;
	log_event(LOG_DEBUG, "http_error", "status=%u error=%s", status, code);
	return http_error(wsi, status, code, message, close, allow);
}

static int http_refused(http_t *h, struct lws *wsi, const router_refusal_t *r)
{
	return http_fail(h, wsi, r->status, r->code, r->message, r->close, r->allow);
}

int http_route(http_t *h, struct lws *wsi, http_session_t *s, const char *path)
{
	router_method_t m = http_method(wsi);
	router_match_t r;

	router_route(m, path, strlen(path), conn_on_metrics_port(h->cfg, wsi),
		     h->cfg->metrics_port != 0, &r);
	s->route = (uint8_t)r.route;
	if (*h->stopping && !r.drain_exempt)
		/* Requests read before the drain began are answered; later ones go elsewhere. */
		return http_fail(h, wsi, 503, "shutting_down",
				 "this node is shutting down; retry (another node answers)", true,
				 NULL);
	if ((m == ROUTER_METHOD_GET || m == ROUTER_METHOD_HEAD) && http_body_declared(wsi))
		/* Its answer could only come after the body: refuse it at the head (and close). */
		return http_fail(h, wsi, 400, "body_not_allowed",
				 "a GET or HEAD request carries no body", true, NULL);
	if (r.route == ROUTER_WEBHOOK)
		return http_webhook_start(h, wsi, s, &r); /* its 404 comes before the refusal */
	if (r.route == ROUTER_PAGE)
		return page_serve(&h->page, wsi, r.page, r.refusal.status == 0); /* its own 405 */
	if (r.refusal.status)
		return http_refused(h, wsi, &r.refusal);
	switch (r.route) {
	case ROUTER_HEALTHZ:
		if (*h->stopping)
			return http_fail(h, wsi, 503, "shutting_down", "draining", true, NULL);
		return http_reply_json(wsi, 200, "{\"status\":\"ok\"}");
	case ROUTER_READYZ:
		if (*h->stopping)
			return http_fail(h, wsi, 503, "shutting_down", "draining", true, NULL);
		if (!broker_ready(h->broker))
			return http_fail(h, wsi, 503, "redis_unavailable",
					 "a Redis connection is down", false, NULL);
		if (!broker_subscriber_healthy(h->broker))
			/* Ingest still works (the command connection is fine): only readiness says
			 * that watchers here may miss updates until the subscriber is back. */
			return http_fail(h, wsi, 503, "redis_subscriber_stalled",
					 "the Redis subscriber stopped receiving; reconnecting",
					 false, NULL);
		return http_reply_json(wsi, 200, "{\"status\":\"ready\"}");
	case ROUTER_METRICS: {
		size_t tlen;
		char *text = http_metrics(h, &tlen);
		int rc;

		if (!text)
			return http_fail(h, wsi, 503, "out_of_memory", "retry", false, NULL);
		rc = http_reply(wsi, 200, "text/plain; version=0.0.4", text, tlen, false, NULL);
		free(text);
		return rc;
	}
	case ROUTER_UPDATES:
		return http_body_start(h, wsi, s, 0, true);
	case ROUTER_ORDER_GET:
		return http_order_get(h, wsi, s, r.order_id);
	case ROUTER_ORDER_SOURCE:
		return http_source_start(h, wsi, s, &r);
	default:
		/* Every other route is refused by the router. */
		return http_fail(h, wsi, 404, "not_found", "no such endpoint", false, NULL);
	}
}
