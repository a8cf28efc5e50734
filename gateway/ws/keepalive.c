/*
 * ws/keepalive.c - every ping-interval a websocket gets a ping; without a
 * pong (or anything) back within pong-timeout it is hung up on: a peer
 * that vanished (a phone losing coverage) would otherwise hold its socket
 * until TCP gives up.  Two FIFO queues hold the websockets: a queue whose
 * entries all get the same delay is in due order, so a join, a pong and a
 * due entry each cost O(1), and the tick looks at the due entries only.
 */
#include "ws_private.h"

void ws_ka_unlink(ws_session_t *s)
{
	ws_t *ws = s->ws;
	int q = s->ka_state - 1;

	if (s->ka_state == KA_NONE)
		return;
	if (s->ka_prev)
		s->ka_prev->ka_next = s->ka_next;
	else
		ws->ka_head[q] = s->ka_next;
	if (s->ka_next)
		s->ka_next->ka_prev = s->ka_prev;
	else
		ws->ka_tail[q] = s->ka_prev;
	s->ka_prev = s->ka_next = NULL;
	s->ka_state = KA_NONE;
}

void ws_ka_append(ws_session_t *s, ka_state_t state, uint64_t due_ms)
{
	ws_t *ws = s->ws;
	int q = state - 1;

	ws_ka_unlink(s);
	s->ka_state = (uint8_t)state;
	s->ka_due_ms = due_ms;
	s->ka_next = NULL;
	s->ka_prev = ws->ka_tail[q];
	if (ws->ka_tail[q])
		ws->ka_tail[q]->ka_next = s;
	else
		ws->ka_head[q] = s;
	ws->ka_tail[q] = s;
}

/* The peer said something (a pong, or any frame): ping again a whole interval from now. */
void ws_ka_alive(ws_session_t *s)
{
	if (s->ka_state != KA_NONE && !ws_closing(s))
		ws_ka_append(s, KA_WAIT,
			     uv_now(s->ws->loop) + (uint64_t)s->ws->cfg->ping_interval_s * 1000);
}

/* One ping; 0 when lws took it.  Not empty: lws 4.1 gives no RECEIVE_PONG callback
 * for an empty pong. */
int ws_ping(struct lws *wsi)
{
	unsigned char ping[LWS_PRE + 1] = {[LWS_PRE] = 'k'};

	return lws_write(wsi, ping + LWS_PRE, 1, LWS_WRITE_PING) < 0 ? -1 : 0;
}

void ws_keepalive(ws_t *ws, uint64_t now_ms)
{
	struct lws_context *killed = NULL;
	ws_session_t *s;

	while ((s = ws->ka_head[KA_PONG - 1]) && s->ka_due_ms <= now_ms) {
		ws_ka_unlink(s);
		ws->metrics->pong_timeouts++;
		/* A silent peer takes no close handshake (and may never be writeable): drop
		 * the socket through an lws timeout that is due at once. */
		lws_set_timeout(s->w.conn, PENDING_TIMEOUT_WS_PONG_CHECK_GET_PONG,
				LWS_TO_KILL_ASYNC);
		killed = lws_get_context(s->w.conn);
	}
	/* lws looks at its timers after it handles an event: make one, or the kill
	 * waits for the next socket activity. */
	if (killed)
		lws_cancel_service(killed);
	while ((s = ws->ka_head[KA_WAIT - 1]) && s->ka_due_ms <= now_ms) {
		ws_ka_append(s, KA_PONG, now_ms + (uint64_t)ws->cfg->pong_timeout_s * 1000);
		/* Like frames, a ping goes out at once unless lws holds unsent bytes. */
		if (ws_closing(s) || lws_partial_buffered(s->w.conn)) {
			s->ping_pending = 1;
			lws_callback_on_writable(s->w.conn);
		} else if (ws_ping(s->w.conn)) {
			ws_kill(s);
		}
	}
}
