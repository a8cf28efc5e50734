/*
 * http/session.c - the life of a plain HTTP request on its connection:
 * answered at once from its head, or through http_phase_t (its body, the
 * end of the loop turn, Redis, the answer), and what lws 4.1 does with
 * requests pipelined behind it.
 */
#include "http_private.h"

#include <stdlib.h>
#include <string.h>

#include "http_reply.h"
#include "log.h"

/*
 * Pipelining (RFC 9112 9.3).  A client may send its next requests before the
 * answer to the first; lws 4.1 reads them into its own buffer and, while the
 * first is unanswered, offers those bytes again and again as the same
 * request's body completion: on every loop turn (the process spun at 100 %
 * of a core), or, for a POST it parsed from that buffer with more bytes
 * behind it, in a loop inside one call (lws_http_action) that only a close
 * ends.  So:
 *
 * - A request that waits for Redis holds its connection's input (rx flow
 *   control) until its answer is ready: lws offers nothing meanwhile.  The
 *   hold ends before POLLOUT is asked for, because lws 4.1's h1 server
 *   services no POLLOUT at all on a flow-controlled connection.
 * - A body completion is handed to ingest only at the end of the loop turn
 *   (http_after_io).  One offered again before that is lws looping inside
 *   one call: the request is answered 503 "pipelined" with Connection:
 *   close, before anything of it is stored.
 * - Any other input lws offers while an answer is pending marks the
 *   connection pipelined: the answer is written (at once when it is ready)
 *   with Connection: close and the connection ends.
 *
 * Every request handed to Redis is answered; requests behind it are answered
 * 503 or, once the connection closes, never read: nothing they carry is
 * stored.  A client without pipelining keeps its keep-alive connection.
 */
/* Body completions of one queued request lws may offer in one loop turn before it counts as
 * lws looping (it offers 2 for a request parsed from its buffer). */
#define HTTP_REOFFERS_MAX 8

static void http_queue_del(http_session_t *s)
{
	if (s->phase != HTTP_QUEUED)
		return;
	if (s->queue_prev)
		s->queue_prev->queue_next = s->queue_next;
	else
		s->http->queue = s->queue_next;
	if (s->queue_next)
		s->queue_next->queue_prev = s->queue_prev;
	s->queue_prev = s->queue_next = NULL;
	s->phase = HTTP_IDLE;
}

static void http_queue_add(http_session_t *s)
{
	http_t *h = s->http;

	s->phase = HTTP_QUEUED;
	s->reoffers = 0;
	s->queue_prev = NULL;
	s->queue_next = h->queue;
	if (h->queue)
		h->queue->queue_prev = s;
	h->queue = s;
}

void http_hold(struct lws *wsi, http_session_t *s)
{
	if (!s->held) {
		s->held = 1;
		lws_rx_flow_control(wsi, 0);
	}
}

/* The answer is ready: let lws service the connection again, and write it. */
void http_ready(struct lws *wsi, http_session_t *s)
{
	s->phase = HTTP_READY;
	if (s->held) {
		s->held = 0;
		lws_rx_flow_control(wsi, 1);
	}
	lws_callback_on_writable(wsi);
}

/* Frees s's source request, and counts it out of what the drain waits for. */
static void http_source_drop(http_session_t *s)
{
	if (!s->source)
		return;
	if (s->in_redis) {
		s->in_redis = 0;
		s->http->n_ingest--;
	}
	http_source_free(s->source);
	s->source = NULL;
}

/* Frees s's ingest, and counts it out of what the drain waits for. */
void http_ingest_drop(http_session_t *s)
{
	if (!s->ingest)
		return;
	if (s->in_redis) {
		s->in_redis = 0;
		s->http->n_ingest--;
	}
	ingest_free(s->ingest);
	s->ingest = NULL;
}

/*
 * Writes the pending answer (HTTP_READY) and ends the transaction, or the
 * connection when input was pipelined behind it or the server is draining.
 * Returns what the lws callback must return; lws frees s with the
 * transaction, so nothing may touch s after this.
 */
static int http_write(http_t *h, struct lws *wsi, http_session_t *s)
{
	bool close = s->pipelined || *h->stopping;
	ingest_t *ing;
	int rc;

	s->phase = HTTP_IDLE;
	if (s->read) {
		order_read_t *r = s->read;

		s->read = NULL;
		return http_order_write(wsi, r, close);
	}
	if (s->source) {
		source_req_t *r = s->source;

		if (s->in_redis)
			h->n_ingest--;
		s->in_redis = 0;
		s->source = NULL;
		return http_source_write(wsi, r, close);
	}
	ing = s->ingest;
	if (!ing)
		return -1;
	/* Counted until written: the drain waits for the answer, not just for Redis. */
	if (s->in_redis)
		h->n_ingest--;
	s->ingest = NULL;
	s->in_redis = 0;
	rc = http_ingest_write(h, wsi, ing, close); /* s may be freed from here */
	ingest_free(ing);
	return rc;
}

/* 503 "pipelined" and close, before anything of the request is stored. */
static int http_refuse_pipelined(http_t *h, struct lws *wsi, http_session_t *s)
{
	http_ingest_drop(s);
	http_source_drop(s);
	s->phase = HTTP_IDLE;
	h->metrics->refused[REFUSE_PIPELINED]++;
	log_event(LOG_INFO, "http_pipelined", "action=refused");
	return http_fail(h, wsi, 503, "pipelined",
			 "requests were pipelined behind this one; nothing was stored: "
			 "send each request after the answer to the one before",
			 true, NULL);
}

/* lws offers input while s's answer is pending: bytes pipelined behind the request. */
static int http_pipelined(http_t *h, struct lws *wsi, http_session_t *s)
{
	s->pipelined = 1;
	switch (s->phase) {
	case HTTP_READY:
		return http_write(h, wsi, s);
	case HTTP_QUEUED:
		/*
		 * Offered again before the loop turn ended.  lws offers a body
		 * completion a second time for a request it parsed from its own
		 * buffer; more than that is its loop inside one call, which only
		 * a close ends.  Nothing is stored yet.
		 */
		if (++s->reoffers < HTTP_REOFFERS_MAX) {
			s->pipelined = 0;
			return 0;
		}
		http_queue_del(s);
		return http_refuse_pipelined(h, wsi, s);
	case HTTP_WAITING:
		http_hold(wsi, s);
		return 0;
	default:
		return -1;
	}
}

bool http_idle(const http_t *h)
{
	return h->n_ingest == 0 && !h->queue;
}

/* Hands the request bodies completed this loop turn to ingest (see the top). */
void http_after_io(http_t *h)
{
	http_session_t *s;

	while ((s = h->queue)) {
		struct lws *wsi = s->wsi;
		bool now;

		http_queue_del(s);
		s->phase = HTTP_WAITING;
		if (s->route == ROUTER_WEBHOOK)
			now = http_webhook_finish(h, wsi, s);
		else if (s->route == ROUTER_ORDER_SOURCE)
			now = http_source_finish(h, s);
		else
			now = ingest_finish(s->ingest);
		if (now) {
			http_ready(wsi, s);
		} else {
			s->in_redis = 1;
			h->n_ingest++;
			if (s->phase == HTTP_WAITING)
				http_hold(wsi, s);
		}
	}
}

/* --- lws's callbacks ------------------------------------------------------- */

int http_on_head(http_t *h, struct lws *wsi, http_session_t *s, const char *path)
{
	int rc;

	if (s->phase != HTTP_IDLE)
		return http_pipelined(h, wsi, s);
	s->http = h;
	s->wsi = wsi;
	if (*h->n_conns > h->cfg->max_connections)
		return http_fail(h, wsi, 503, "overloaded", "server full, try again later", true,
				 NULL);
	http_head_begin(wsi); /* an answer before the body closes (see http_reply.h) */
	rc = http_route(h, wsi, s, path);
	http_head_end();
	return rc;
}

int http_on_body(http_session_t *s, const void *in, size_t len)
{
	if ((!s->ingest && !s->source) || s->phase != HTTP_BODY)
		return -1;
	if (!s->body_seen++ && http_body_is_own_head(s->source ? "PUT" : "POST", in, len))
		/* lws parses this request from its buffer (see http_reply.h): end it now. */
		return http_refuse_pipelined(s->http, s->wsi, s);
	if (s->source ? http_source_body(s->source, in, len) : ingest_body(s->ingest, in, len))
		return http_fail(s->http, s->wsi, 400, "bad_request",
				 "the body is longer than its Content-Length", true, NULL);
	return 0;
}

int http_on_body_done(http_session_t *s)
{
	if (s->phase == HTTP_BODY) {
		http_queue_add(s);
		return 0;
	}
	if (s->phase != HTTP_IDLE)
		return http_pipelined(s->http, s->wsi, s);
	return -1;
}

int http_on_writeable(http_session_t *s)
{
	if (s->phase != HTTP_READY)
		return 0;
	return http_write(s->http, s->wsi, s);
}

void http_on_closed(http_session_t *s)
{
	if (!s->http)
		return;
	http_queue_del(s);
	s->phase = HTTP_IDLE;
	if (s->read) {
		http_order_read_free(s->read);
		s->read = NULL;
	}
	http_source_drop(s);
	http_ingest_drop(s);
}
