/*
 * ws/feed.c - the hub's hooks: subscriptions and snapshots through the
 * broker, frames onto the sockets.
 */
#include "ws_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "proto.h"

static int ws_hub_subscribe(void *ctx, hub_order_t *order)
{
	ws_t *ws = ctx;

	return broker_subscribe(ws->broker, order->id);
}

static int ws_hub_unsubscribe(void *ctx, hub_order_t *order)
{
	ws_t *ws = ctx;

	return broker_unsubscribe(ws->broker, order->id);
}

/*
 * The snapshot frame of a stored state and cursor (each NULL when absent),
 * or NULL when they do not hold up: a reply from Redis is outside input
 * too, so it is checked before a browser sees it.
 */
static frame_t *ws_snapshot_frame(const watcher_t *w, const char *state, size_t state_len,
				  const char *cursor, size_t cursor_len, bool reset)
{
	proto_cursor_t c = {0, 0};
	frame_t *f;
	int len;

	if (cursor && proto_cursor_parse(cursor, cursor_len, &c) != PROTO_OK) {
		log_event(LOG_ERROR, "bad_stored_state", "order=%s what=cursor", w->order->id);
		return NULL;
	}
	if (state) {
		cJSON *doc = cJSON_ParseWithLength(state, state_len);
		bool ok = cJSON_IsObject(doc);

		cJSON_Delete(doc);
		if (!ok) {
			log_event(LOG_ERROR, "bad_stored_state", "order=%s what=state",
				  w->order->id);
			return NULL;
		}
	}
	len = proto_frame_snapshot(NULL, 0, w->order->id, state, state_len, cursor, reset);
	if (len < 0)
		return NULL;
	f = frame_new(FRAME_SNAPSHOT, (size_t)len);
	if (!f)
		return NULL;
	proto_frame_snapshot((char *)frame_payload(f), (size_t)len, w->order->id, state, state_len,
			     cursor, reset);
	f->cursor = c;
	return f;
}

static void ws_snapshot_done(void *arg, int rc, const char *state, size_t state_len,
			     const char *cursor, size_t cursor_len)
{
	watcher_t *w = arg;
	ws_t *ws = WS_OF(w)->ws;
	frame_t *f = NULL;

	if (rc == BROKER_ELOST) {
		/* The command connection went down: ask again when it is back. */
		hub_sync_lost(ws->hub, w);
		return;
	}
	if (rc == BROKER_OK)
		f = ws_snapshot_frame(w, state, state_len, cursor, cursor_len, false);
	hub_synced(ws->hub, w, f != NULL, &f, f ? 1 : 0, f ? &f->cursor : &w->last,
		   uv_now(ws->loop));
	frame_unref(f);
}

/* The resumed frame that ends the replay of w's resume, with the cursor it reached. */
static frame_t *ws_resumed_frame(const watcher_t *w, const proto_cursor_t *upto, size_t replayed)
{
	char cursor[PROTO_CURSOR_MAX + 1];
	frame_t *f;
	int len;

	snprintf(cursor, sizeof(cursor), "%llu-%llu", (unsigned long long)upto->ms,
		 (unsigned long long)upto->seq);
	len = proto_frame_resumed(NULL, 0, w->order->id, cursor, replayed);
	if (len < 0 || !(f = frame_new(FRAME_RESUMED, (size_t)len)))
		return NULL;
	proto_frame_resumed((char *)frame_payload(f), (size_t)len, w->order->id, cursor, replayed);
	f->cursor = *upto;
	return f;
}

/*
 * A replay from the log arrived: every logged frame after w->last, or a
 * reset (the log cannot serve the cursor whole) answered with a snapshot
 * marked reset.  A resume the client asked for (?since=) ends with a
 * resumed frame, so the client knows it is live and missed nothing even
 * when nothing was replayed; a resync of the gateway's own (after a Redis
 * outage) sends only what was missed.
 */
static void ws_resume_done(void *arg, int rc, const broker_resume_result_t *r)
{
	watcher_t *w = arg;
	ws_session_t *s = WS_OF(w);
	ws_t *ws = s->ws;
	frame_t **frames = NULL;
	proto_cursor_t upto = w->last;
	size_t n = 0, replayed = 0;
	bool ok = false, joining;

	if (rc == BROKER_ELOST) {
		hub_sync_lost(ws->hub, w);
		return;
	}
	if (rc != BROKER_OK)
		goto done;
	if (r->reset) {
		/* The log no longer holds everything after the cursor: start again. */
		frames = calloc(1, sizeof(*frames));
		if (frames)
			frames[0] = ws_snapshot_frame(w, r->state, r->state_len, r->cursor,
						      r->cursor_len, true);
		if (!frames || !frames[0])
			goto done;
		n = 1;
		upto = frames[0]->cursor;
		ok = true;
		goto done;
	}
	/* One slot more for the resumed frame. */
	frames = calloc(r->n_frames + 1, sizeof(*frames));
	if (!frames)
		goto done;
	for (n = 0; n < r->n_frames; n++) {
		frames[n] = frame_copy(FRAME_UPDATE, r->frames[n], r->frame_lens[n]);
		if (!frames[n])
			goto done;
		if (proto_frame_update_cursor(r->frames[n], r->frame_lens[n], &frames[n]->cursor) !=
		    PROTO_OK) {
			log_event(LOG_ERROR, "bad_stored_log", "order=%s entry=%zu", w->order->id,
				  n);
			n++;
			goto done;
		}
		frames[n]->coalesce = 0;
		upto = frames[n]->cursor;
	}
	replayed = n;
	if (s->resume_signal) {
		if (!(frames[n] = ws_resumed_frame(w, &upto, replayed)))
			goto done;
		n++;
	}
	ok = true;
done:
	joining = w->state == WATCHER_JOINING;
	hub_synced(ws->hub, w, ok, frames, ok ? n : 0, &upto, uv_now(ws->loop));
	if (joining && w->state == WATCHER_LIVE) {
		ws->metrics->resumes[r->reset	? RESUME_RESET
				     : replayed ? RESUME_REPLAYED
						: RESUME_NOTHING_MISSED]++;
		/* Once live, later resyncs (after a Redis outage) are the gateway's own. */
		s->resume_signal = 0;
	}
	for (size_t i = 0; i < n; i++)
		frame_unref(frames[i]);
	free(frames);
}

static int ws_hub_sync(void *ctx, watcher_t *w)
{
	ws_t *ws = ctx;
	broker_req_t *req = NULL;
	char cursor[PROTO_CURSOR_MAX + 1];
	int rc;

	if (w->last.ms || w->last.seq) {
		snprintf(cursor, sizeof(cursor), "%llu-%llu", (unsigned long long)w->last.ms,
			 (unsigned long long)w->last.seq);
		rc = broker_resume(ws->broker, w->order->id, cursor, ws->cfg->log_maxlen,
				   ws_resume_done, w, &req);
	} else {
		rc = broker_snapshot(ws->broker, w->order->id, ws_snapshot_done, w, &req);
	}
	if (rc == BROKER_OK)
		w->sync_req = req;
	return rc == BROKER_EDOWN ? HUB_AGAIN : rc;
}

/*
 * Frames go out at once when lws holds nothing unsent for the socket: one
 * send() each, where asking for POLLOUT and writing from the writeable
 * callback cost two epoll_ctl() and an event more per frame (perf: most of
 * the gateway's own CPU at 50 000 frames/s).  What the socket does not take
 * lws keeps and sends first on POLLOUT; from then on frames wait in the
 * watcher's queue, bounded and coalesced, until the writeable callback
 * drains it.  lws_write() never closes or frees the connection here, so the
 * hub may be iterating the order's watchers.
 */
static bool ws_can_send_now(watcher_t *w)
{
	return w->state == WATCHER_LIVE && !ws_closing(WS_OF(w)) && !lws_partial_buffered(w->conn);
}

static bool ws_hub_send_now(void *ctx, watcher_t *w, frame_t *f)
{
	if (!ws_can_send_now(w))
		return false; /* queued */
	if (lws_write(w->conn, frame_payload(f), f->len, LWS_WRITE_TEXT) < (int)f->len) {
		ws_kill(WS_OF(w)); /* the frame goes with the connection */
		return true;
	}
	ws_frame_written(ctx, f);
	return true;
}

/* w has queued frames (a snapshot, a replay, or frames behind a full socket). */
static void ws_hub_wake(void *ctx, watcher_t *w)
{
	for (int i = 0; i < 16 && hub_writable(w); i++) {
		if (!ws_hub_send_now(ctx, w, outq_peek(&w->q)))
			break;
		if (WS_OF(w)->state == WS_KILLED)
			return; /* the kill emptied the queue */
		outq_pop(&w->q);
	}
	if (outq_empty(&w->q))
		hub_drained(w);
	else
		lws_callback_on_writable(w->conn);
}

static void ws_hub_drop(void *ctx, watcher_t *w, int close_code, const char *reason)
{
	ws_t *ws = ctx;

	ws->metrics->frames_dropped += w->q.count;
	outq_clear(&w->q);
	log_event(close_code == 4408 ? LOG_INFO : LOG_WARN, "watcher_dropped",
		  "order=%s code=%d reason=\"%s\"", w->order ? w->order->id : "-", close_code,
		  reason);
	ws_close_async(WS_OF(w), close_code, reason);
}

/* Poll mode polls the orders someone watches (poll/poller.h). */
static void ws_hub_watched(void *ctx, hub_order_t *order)
{
	ws_t *ws = ctx;

	if (ws->poller)
		poller_watch(ws->poller, order->id, order->id_len);
}

static void ws_hub_unwatched(void *ctx, hub_order_t *order)
{
	ws_t *ws = ctx;

	if (ws->poller)
		poller_unwatch(ws->poller, order->id, order->id_len);
}

const hub_ops_t ws_hub_ops = {
    .subscribe = ws_hub_subscribe,
    .unsubscribe = ws_hub_unsubscribe,
    .sync = ws_hub_sync,
    .wake = ws_hub_wake,
    .send_now = ws_hub_send_now,
    .drop = ws_hub_drop,
    .watched = ws_hub_watched,
    .unwatched = ws_hub_unwatched,
};

/*
 * Whether wsi came in on the metrics-listen address: its socket's local
 * port (one getsockname, only when metrics-listen is set).
 */
