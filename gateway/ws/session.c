/*
 * ws/session.c - a tracking websocket from upgrade to close: the checks
 * that admit it (order id, query, token, limits, origin), its one state
 * (ws_set_state), what it writes, what the client may send, and the close.
 */
#include "ws_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "auth.h"
#include "conn.h"
#include "log.h"
#include "proto.h"
#include "query.h"
#include "router.h"

#define WS_CLIENT_MESSAGE_MAX 4096 /* a larger client message closes with 1009 */

void ws_set_state(ws_session_t *s, ws_state_t to)
{
	if (to <= s->state)
		return;
	s->state = (uint8_t)to;
	/* The hub feeds it no more: its queue is flushed, or cleared. */
	hub_stop_feeding(&s->w);
}

void ws_close_async(ws_session_t *s, int close_code, const char *reason)
{
	ws_t *ws = s->ws;

	if (s->state != WS_OPEN)
		return;
	s->close_code = (uint16_t)close_code;
	s->close_reason = reason;
	ws_set_state(s, WS_CLOSING);
	/* A peer that never lets the close frame out (it stopped reading) is dropped
	 * pong-timeout later; nothing it sends meanwhile extends that. */
	ws_ka_append(s, KA_PONG, uv_now(ws->loop) + (uint64_t)ws->cfg->pong_timeout_s * 1000);
	lws_callback_on_writable(s->w.conn);
}

/*
 * A send failed outside lws's callbacks: lws has marked the socket unusable
 * and will not call back to write (and a later write would go out without a
 * frame header).  Drop it through an lws timeout due at once; lws looks at
 * its timers after an event, which lws_cancel_service() makes.
 */
void ws_kill(ws_session_t *s)
{
	if (s->state == WS_KILLED)
		return;
	if (!s->close_code) {
		s->close_code = 1006;
		s->close_reason = "send failed";
	}
	ws_set_state(s, WS_KILLED);
	outq_clear(&s->w.q);
	ws_ka_unlink(s);
	lws_set_timeout(s->w.conn, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
	lws_cancel_service(lws_get_context(s->w.conn));
}

/*
 * Close reasons must outlive the callback (they are sent later): the few
 * auth_check can give are matched to static strings here.
 */
static const char *ws_static_reason(const char *why)
{
	static const char *const reasons[] = {
	    "a token is required (?token=)",
	    "the token is malformed",
	    "the token's key (kid) is unknown",
	    "the token names no key (kid)",
	    "the token's algorithm is not allowed for its key",
	    "the token's signature is not valid",
	    "the token has no expiry (exp)",
	    "the token's expiry (exp) is not a number",
	    "the token's start (nbf) is not a number",
	    "the token's issue time (iat) is not a number",
	    "the tracking link has expired",
	    "the tracking link is not valid yet",
	    "the token names no order (order_id)",
	};

	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (!strcmp(why, reasons[i]))
			return reasons[i];
	return "the token is not valid";
}

/* Queues an error frame, then the close: for refusals right after the upgrade. */
static void ws_refuse(ws_session_t *s, metrics_refusal_t why, int close_code, const char *code,
		      const char *reason)
{
	int len = proto_frame_error(NULL, 0, code, reason);
	frame_t *f = len > 0 ? frame_new(FRAME_ERROR, (size_t)len) : NULL;

	if (why != REFUSE__COUNT) /* REFUSE__COUNT: counted already */
		s->ws->metrics->refused[why]++;
	if (log_enabled(LOG_INFO)) {
		/* The reason is one of the gateway's own static sentences: never the token. */
		char client[64];

		conn_client_address(s->ws->cfg, s->w.conn, client, sizeof(client));
		log_event(LOG_INFO, "ws_refused", "code=%d error=%s reason=\"%s\" client=%s",
			  close_code, code, reason, client);
	}
	if (f) {
		proto_frame_error((char *)frame_payload(f), (size_t)len, code, reason);
		outq_push(&s->w.q, f, SIZE_MAX);
		frame_unref(f);
	}
	ws_close_async(s, close_code, reason);
}

void ws_established(ws_t *ws, struct lws *wsi, ws_session_t *s)
{
	char uri[256], origin[256], qbuf[CONN_QUERY_MAX];
	const char *since, *token, *bad;
	size_t since_len, token_len;
	proto_cursor_t cursor;
	query_t query;
	router_match_t route;
	unsigned retry;
	int n, rc;

	s->ws = ws;
	s->w.conn = wsi;
	n = lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);
	router_websocket(uri, n > 0 ? (size_t)n : 0, conn_on_metrics_port(ws->cfg, wsi), &route);
	if (route.refusal.status)
		return ws_refuse(
		    s, route.route == ROUTER_TRACK ? REFUSE_ORDER_ID : REFUSE_NOT_FOUND,
		    (int)route.refusal.status, route.refusal.code, route.refusal.message);
	if (*ws->stopping) {
		ws->metrics->refused[REFUSE_STOPPING]++;
		ws_close_async(s, 1001, "server shutting down, reconnect");
		return;
	}
	if (conn_query(wsi, &query, qbuf, sizeof(qbuf)) != 0)
		return ws_refuse(s, REFUSE_QUERY, 4400, "invalid_query", "the query is too long");
	if (!query_arg(&query, bad = "since", &since, &since_len, &rc) ||
	    !query_arg(&query, bad = "token", &token, &token_len, &rc))
		return ws_refuse(s, REFUSE_QUERY, 4400, "invalid_query", query_problem(rc, bad));
	if (since && proto_cursor_parse(since, since_len, &cursor) != PROTO_OK)
		return ws_refuse(s, REFUSE_CURSOR, 4400, "invalid_cursor",
				 "since must be a cursor from a frame, <ms>-<seq>");
	if (*ws->n_conns > ws->cfg->max_connections)
		return ws_refuse(s, REFUSE_OVERLOADED, 1013, "overloaded",
				 "server full, try again later");
	if (!conn_rate_ok(ws->cfg, ws->rates, ws->metrics, wsi, RATELIMIT_UPGRADE, uv_now(ws->loop),
			  &retry))
		return ws_refuse(s, REFUSE__COUNT, 1013, "rate_limited",
				 "too many connections from your address, try again later");
	if (ws_client_acquire(s, wsi) != 0)
		return ws_refuse(s, REFUSE_PER_CLIENT, 1008, "too_many_connections",
				 "too many connections from your address");
	if (!config_origin_ok(
		ws->cfg, lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) > 0 &&
				 lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) > 0
			     ? origin
			     : NULL))
		return ws_refuse(s, REFUSE_ORIGIN, 1008, "origin_not_allowed",
				 "this page may not open the stream");
	if (ws->cfg->token_keys.n) {
		/* The token is checked after the order id and before the watcher joins. */
		char why[96];
		int64_t exp = 0;
		auth_result_t ar;

		ar = auth_check(&ws->cfg->token_keys, token, token_len, route.order_id,
				(int64_t)time(NULL), &exp, why, sizeof(why));
		if (ar == AUTH_FORBIDDEN)
			return ws_refuse(s, REFUSE_TOKEN_ORDER, 4403, "forbidden",
					 "the token is for another order");
		if (ar != AUTH_OK)
			return ws_refuse(s, REFUSE_TOKEN, 4401, "unauthorized",
					 ws_static_reason(why));
		ws_wheel_add(s, exp);
	}
	s->resume_signal = since != NULL;
	if (hub_join(ws->hub, &s->w, route.order_id, route.order_id_len, since ? &cursor : NULL) !=
	    0) {
		ws_close_async(s, 1011, "out of memory");
		return;
	}
	ws_ka_append(s, KA_WAIT, uv_now(ws->loop) + (uint64_t)ws->cfg->ping_interval_s * 1000);
	log_event(LOG_DEBUG, "watcher_joined", "order=%s watchers=%u", s->w.order->id,
		  s->w.order->n_watchers);
}

/*
 * Counts a frame written, and for an update how old it is (its ts to now).
 * Now is the loop's time on the wall clock: no clock read per frame.
 */
void ws_frame_written(ws_t *ws, const frame_t *f)
{
	ws->metrics->frames_written++;
	if (f->kind != FRAME_UPDATE || !f->ts_ms)
		return;
	metrics_observe(&ws->metrics->update_age,
			(double)((int64_t)uv_now(ws->loop) + *ws->wall_offset_ms - f->ts_ms));
}

int ws_writeable(ws_session_t *s)
{
	struct lws *wsi = s->w.conn;
	frame_t *f = outq_peek(&s->w.q);
	int n;

	if (s->state >= WS_CLOSE_SENT)
		return 0;
	if (s->ping_pending && !ws_closing(s)) {
		s->ping_pending = 0;
		if (ws_ping(wsi))
			return -1;
		if (f)
			lws_callback_on_writable(wsi);
		return 0;
	}
	if (f && (hub_writable(&s->w) || ws_closing(s))) {
		/* One lws_write per writeable callback; the frame's headroom takes the header. */
		n = lws_write(wsi, frame_payload(f), f->len, LWS_WRITE_TEXT);
		if (n < (int)f->len)
			return -1;
		ws_frame_written(s->ws, f);
		outq_pop(&s->w.q);
		if (outq_empty(&s->w.q))
			hub_drained(&s->w);
		if (hub_writable(&s->w) || ws_closing(s))
			lws_callback_on_writable(wsi);
		return 0;
	}
	if (s->state == WS_CLOSING) {
		/*
		 * Start the close handshake here and return 0, rather than the
		 * usual lws_close_reason() + return -1: Debian's lws 4.1.6 is a
		 * _DEBUG build whose libuv path closes a connection a second time
		 * right after a callback returns -1 ("uv repeat test"), which
		 * kills the socket before the close frame is sent.  This way lws
		 * sends the frame, waits for the peer's ack and then closes.
		 */
		ws_set_state(s, WS_CLOSE_SENT);
		lws_close_reason(wsi, (enum lws_close_status)s->close_code,
				 (unsigned char *)s->close_reason, strlen(s->close_reason));
		lws_close_free_wsi(wsi, LWS_CLOSE_STATUS_NOSTATUS, "trackgate close");
	}
	return 0;
}

/*
 * A token refresh on the open socket, {"type":"refresh","token":T}
 * (proto/README.md): T is checked as at the upgrade, for this order; a good
 * one moves the watcher's expiry and is answered {"type":"refreshed",...};
 * a bad one closes the socket as a refused upgrade would (4401, 4403).
 */
static void ws_refresh(ws_session_t *s, const char *token, size_t token_len)
{
	ws_t *ws = s->ws;
	char why[96];
	int64_t exp = 0;
	auth_result_t ar;
	frame_t *f;
	int len;

	ar = auth_check(&ws->cfg->token_keys, token, token_len, s->w.order->id, (int64_t)time(NULL),
			&exp, why, sizeof(why));
	if (ar != AUTH_OK)
		outq_clear(&s->w.q); /* the close is what matters now, not what was queued */
	if (ar == AUTH_FORBIDDEN)
		return ws_refuse(s, REFUSE_TOKEN_ORDER, 4403, "forbidden",
				 "the token is for another order");
	if (ar != AUTH_OK)
		return ws_refuse(s, REFUSE_TOKEN, 4401, "unauthorized", ws_static_reason(why));
	ws_wheel_del(s);
	ws_wheel_add(s, exp);
	len = proto_frame_refreshed(NULL, 0, s->w.order->id, exp);
	if (len < 0 || !(f = frame_new(FRAME_REFRESHED, (size_t)len)))
		return;
	proto_frame_refreshed((char *)frame_payload(f), (size_t)len, s->w.order->id, exp);
	hub_push_own(&s->w, f);
	frame_unref(f);
	if (hub_writable(&s->w))
		lws_callback_on_writable(s->w.conn);
	log_event(LOG_DEBUG, "token_refreshed", "order=%s exp=%lld", s->w.order->id,
		  (long long)exp);
}

/* A whole text message from the client: a token refresh, or nothing the gateway reads. */
static void ws_message(ws_session_t *s, const char *msg, size_t len)
{
	cJSON *m, *type, *token;

	if (!s->ws->cfg->token_keys.n || !s->w.order || ws_closing(s))
		return; /* no tokens here: there is nothing to refresh */
	m = cJSON_ParseWithLength(msg, len);
	type = cJSON_GetObjectItemCaseSensitive(m, "type");
	token = cJSON_GetObjectItemCaseSensitive(m, "token");
	if (cJSON_IsString(type) && !strcmp(type->valuestring, "refresh")) {
		if (cJSON_IsString(token))
			ws_refresh(s, token->valuestring, strlen(token->valuestring));
		else
			ws_refuse(s, REFUSE_TOKEN, 4401, "unauthorized",
				  "a refresh carries the new token as a string (token)");
	}
	cJSON_Delete(m);
}

int ws_receive(ws_session_t *s, const void *in, size_t len)
{
	struct lws *wsi = s->w.conn;
	int end = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);
	bool text = !lws_frame_is_binary(wsi);

	ws_ka_alive(s);
	/* Clients have little to say: pings (lws answers those) and token refreshes. */
	if ((size_t)s->rx_len + len > WS_CLIENT_MESSAGE_MAX) {
		s->ws->metrics->refused[REFUSE_CLIENT_MESSAGE]++;
		ws_close_async(s, 1009, "clients may send at most 4096-byte messages");
		outq_clear(&s->w.q);
		goto done;
	}
	/* RFC 6455 8.1: a text message that is not UTF-8 fails the connection (1007). */
	if (text && (!proto_utf8_feed(&s->utf8, in, len) || (end && s->utf8))) {
		ws_close_async(s, 1007, "a text message that is not UTF-8");
		outq_clear(&s->w.q);
		goto done;
	}
	/* A text message is kept whole only where a refresh can mean something: the buffer
	 * lives while the message arrives, not with the socket. */
	if (text && s->ws->cfg->token_keys.n && !ws_closing(s)) {
		if (!s->rx_buf && !(s->rx_buf = malloc(WS_CLIENT_MESSAGE_MAX)))
			goto done;
		memcpy(s->rx_buf + s->rx_len, in, len);
	}
	s->rx_len = (uint16_t)(s->rx_len + len);
	if (!end)
		return 0;
	if (s->rx_buf)
		ws_message(s, s->rx_buf, s->rx_len);
done:
	free(s->rx_buf);
	s->rx_buf = NULL;
	s->rx_len = s->utf8 = 0;
	return 0;
}

void ws_pong(ws_session_t *s)
{
	ws_ka_alive(s);
}

/*
 * The client's close frame (RFC 6455 5.5.1, 7.4), before lws echoes its
 * payload; lws answers the close, so nothing may be written after it.
 * lws 4.1 has already turned a code below 1000, 1004-1006 and 1012-2999
 * into 1002 in that payload.  Left to the gateway: a 1-byte payload (lws
 * would echo it: a malformed close of its own), codes 5000 and up (echoed
 * as they came), and a reason that is not UTF-8.  The code and reason are
 * rewritten in place: the echo says 1002 or 1007 and lws then closes at
 * once.  A 1-byte payload cannot grow, so the gateway sends its own 1002
 * close instead (lws then waits up to 5 s for an answer).
 */
int ws_peer_close(ws_session_t *s, unsigned char *in, size_t len)
{
	static const char one_byte[] = "a close frame cannot carry 1 byte";
	unsigned code;

	if (!s->close_code) {
		s->close_code = 1000;
		s->close_reason = "closed by the client";
	}
	ws_set_state(s, WS_CLOSE_SENT);
	outq_clear(&s->w.q);
	if (len == 1) {
		lws_close_reason(s->w.conn, LWS_CLOSE_STATUS_PROTOCOL_ERR,
				 (unsigned char *)one_byte, sizeof(one_byte) - 1);
		return -1;
	}
	if (len < 2)
		return 0;
	code = (unsigned)in[0] << 8 | in[1];
	if (!proto_utf8_valid(in + 2, len - 2)) {
		code = LWS_CLOSE_STATUS_INVALID_PAYLOAD;
		memset(in + 2, '?', len - 2);
	} else if (code >= 5000) {
		code = LWS_CLOSE_STATUS_PROTOCOL_ERR;
	}
	in[0] = (unsigned char)(code >> 8);
	in[1] = (unsigned char)(code & 0xff);
	return 0;
}

/* The socket is gone: unlink it from everything that holds it. */
void ws_closed(ws_session_t *s)
{
	ws_t *ws = s->ws;

	if (!ws)
		return; /* never established */
	ws_ka_unlink(s);
	if (s->w.sync_req) {
		broker_req_cancel(s->w.sync_req);
		s->w.sync_req = NULL;
	}
	ws_wheel_del(s);
	hub_leave(ws->hub, &s->w);
	ws_client_release(s);
	free(s->rx_buf);
	s->rx_buf = NULL;
}

void ws_close_all(ws_t *ws, int close_code, const char *reason)
{
	hub_order_t *o, *tmp;
	watcher_t *w;

	HASH_ITER(hh, ws->hub->orders, o, tmp)
	{
		for (w = o->watchers; w; w = w->next) {
			outq_clear(&w->q);
			ws_close_async(WS_OF(w), close_code, reason);
		}
	}
}
