#include "hub.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

void hub_init(hub_t *hub, const hub_ops_t *ops, void *ctx, size_t outq_limit,
	      uint64_t slow_timeout_ms)
{
	memset(hub, 0, sizeof(*hub));
	hub->ops = ops;
	hub->ctx = ctx;
	hub->outq_limit = outq_limit;
	hub->slow_timeout_ms = slow_timeout_ms;
}

static void hub_order_free(hub_t *hub, hub_order_t *o)
{
	HASH_DEL(hub->orders, o);
	hub->n_orders--;
	free(o);
}

void hub_destroy(hub_t *hub)
{
	hub_order_t *o, *tmp;

	HASH_ITER(hh, hub->orders, o, tmp)
	hub_order_free(hub, o);
}

hub_order_t *hub_find(hub_t *hub, const char *id, size_t len)
{
	hub_order_t *o = NULL;

	HASH_FIND(hh, hub->orders, id, len, o);
	return o;
}

static bool hub_cursor_set(const proto_cursor_t *c)
{
	return c->ms || c->seq;
}

/* Closes w (asynchronously, through ops->drop) and stops feeding it. */
static void hub_drop(hub_t *hub, watcher_t *w, int code, const char *reason)
{
	w->state = WATCHER_CLOSING;
	w->held = 0;
	if (code == 4408)
		hub->stats.dropped++;
	hub->ops->drop(hub->ctx, w, code, reason);
}

/* Asks for w's sync, or drops w when the request cannot be sent. */
static void hub_request_sync(hub_t *hub, watcher_t *w)
{
	int rc;

	w->sync_again = 0;
	rc = hub->ops->sync(hub->ctx, w);
	if (rc == HUB_AGAIN)
		return; /* hub_commands_up() asks again */
	if (rc != 0)
		hub_drop(hub, w, 1013, "state store unavailable, try again later");
}

static void hub_subscribe(hub_t *hub, hub_order_t *o)
{
	if (!hub->redis_up) {
		/* hub_redis_up() subscribes it when the connection is back. */
		o->sub = HUB_SUB_NONE;
		return;
	}
	o->sub = HUB_SUB_PENDING;
	if (hub->ops->subscribe(hub->ctx, o) != 0)
		o->sub = HUB_SUB_NONE;
}

int hub_join(hub_t *hub, watcher_t *w, const char *id, size_t len, const proto_cursor_t *since)
{
	hub_order_t *o;

	if (!proto_order_id_valid(id, len))
		return -1;
	o = hub_find(hub, id, len);
	if (!o) {
		o = calloc(1, sizeof(*o));
		if (!o)
			return -1;
		memcpy(o->id, id, len);
		o->id[len] = '\0';
		o->id_len = (uint8_t)len;
		HASH_ADD(hh, hub->orders, id, len, o);
		hub->n_orders++;
	}
	w->order = o;
	w->prev = NULL;
	w->next = o->watchers;
	if (o->watchers)
		o->watchers->prev = w;
	o->watchers = w;
	if (o->n_watchers++ == 0 && hub->ops->watched)
		hub->ops->watched(hub->ctx, o);
	hub->n_watchers++;
	w->state = WATCHER_JOINING;
	w->held = 0;
	w->last = since ? *since : (proto_cursor_t){0, 0};

	switch (o->sub) {
	case HUB_SUB_NONE:
		hub_subscribe(hub, o);
		break;
	case HUB_SUB_ACTIVE:
		hub_request_sync(hub, w);
		break;
	case HUB_SUB_PENDING:
		/* hub_subscribed() asks for the sync. */
		break;
	case HUB_SUB_UNSUBSCRIBING:
		/* hub_unsubscribed() sees the new watcher and subscribes again. */
		break;
	}
	return 0;
}

void hub_leave(hub_t *hub, watcher_t *w)
{
	hub_order_t *o = w->order;

	outq_clear(&w->q);
	w->held = 0;
	w->state = WATCHER_CLOSING;
	if (!o)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		o->watchers = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	w->order = NULL;
	o->n_watchers--;
	hub->n_watchers--;
	if (o->n_watchers)
		return;
	if (hub->ops->unwatched)
		hub->ops->unwatched(hub->ctx, o);

	switch (o->sub) {
	case HUB_SUB_PENDING:
	case HUB_SUB_ACTIVE:
		/* Keep the order until the ack, so a rejoin in between subscribes again. */
		o->sub = HUB_SUB_UNSUBSCRIBING;
		if (hub->ops->unsubscribe(hub->ctx, o) != 0)
			hub_order_free(hub, o);
		break;
	case HUB_SUB_NONE:
		hub_order_free(hub, o);
		break;
	case HUB_SUB_UNSUBSCRIBING:
		break;
	}
}

void hub_subscribed(hub_t *hub, const char *id, size_t len)
{
	hub_order_t *o = hub_find(hub, id, len);
	watcher_t *w;

	if (!o || o->sub != HUB_SUB_PENDING)
		return; /* an ack for a subscription given up since */
	o->sub = HUB_SUB_ACTIVE;
	for (w = o->watchers; w; w = w->next) {
		if (w->state != WATCHER_JOINING)
			continue;
		if (w->sync_req)
			w->sync_again = 1; /* sent before this subscription: ask again */
		else
			hub_request_sync(hub, w);
	}
}

void hub_unsubscribed(hub_t *hub, const char *id, size_t len)
{
	hub_order_t *o = hub_find(hub, id, len);

	if (!o || o->sub != HUB_SUB_UNSUBSCRIBING)
		return;
	if (o->n_watchers) {
		/* Someone joined while the UNSUBSCRIBE was in flight. */
		o->sub = HUB_SUB_NONE;
		hub_subscribe(hub, o);
		return;
	}
	hub_order_free(hub, o);
}

/*
 * A watcher is behind when its queue holds a quarter of its byte bound, or
 * has not drained for HUB_BEHIND_MS: a burst read from Redis in one go
 * queues several frames on a healthy watcher too, and those it must get.
 */
#define HUB_BEHIND_MS 1000

static bool hub_behind(const hub_t *hub, const watcher_t *w, uint64_t now_ms)
{
	if (!w->q.count)
		return false;
	return w->q.bytes >= hub->outq_limit / 4 ||
	       (w->behind_since && now_ms - w->behind_since >= HUB_BEHIND_MS);
}

/* Queues f on one watcher of its order, or drops the watcher past its bounds. */
static void hub_feed(hub_t *hub, watcher_t *w, frame_t *f, uint64_t now_ms)
{
	if (w->state == WATCHER_CLOSING)
		return;
	if (w->state == WATCHER_JOINING) {
		/*
		 * Held until the sync, which drops those it covers.  Not filtered
		 * by w->last here: a since cursor is only a claim until the sync
		 * says what the log holds (one from the future gets a snapshot,
		 * and then these frames are the ones after it).  Not counted
		 * against the watcher's speed either.
		 */
		if (outq_push(&w->q, f, hub->outq_limit) != OUTQ_OK) {
			hub_drop(hub, w, 4408,
				 "too slow: output queue full, resume with your cursor");
			return;
		}
		w->held++;
		hub->stats.frames_out++;
		return;
	}
	/*
	 * The sync may have overtaken this frame on the other Redis connection:
	 * frames arrive in cursor order, so one at or below the newest cursor
	 * given is a repeat.
	 */
	if (hub_cursor_set(&w->last) && proto_cursor_cmp(&f->cursor, &w->last) <= 0)
		return;
	/* Nothing queued: the frame may go straight out (no queue memory, no wake). */
	if (!w->q.count && hub->ops->send_now && hub->ops->send_now(hub->ctx, w, f)) {
		hub->stats.frames_out++;
		w->last = f->cursor;
		return;
	}
	if (w->q.count && hub->slow_timeout_ms && w->behind_since &&
	    now_ms - w->behind_since >= hub->slow_timeout_ms) {
		hub_drop(hub, w, 4408, "too slow: behind for too long, resume with your cursor");
		return;
	}
	if (f->coalesce && hub_behind(hub, w, now_ms))
		hub->stats.coalesced += outq_drop_coalescable(&w->q);
	if (outq_push(&w->q, f, hub->outq_limit) != OUTQ_OK) {
		hub_drop(hub, w, 4408, "too slow: output queue full, resume with your cursor");
		return;
	}
	if (!w->behind_since)
		w->behind_since = now_ms ? now_ms : 1;
	hub->stats.frames_out++;
	w->last = f->cursor;
	hub->ops->wake(hub->ctx, w);
}

void hub_message(hub_t *hub, const char *id, size_t len, const char *payload, size_t plen,
		 uint64_t now_ms)
{
	hub_order_t *o = hub_find(hub, id, len);
	frame_t *f;
	watcher_t *w;

	hub->stats.frames_in++;
	if (!o || o->sub != HUB_SUB_ACTIVE || !o->watchers)
		return;
	f = frame_copy(FRAME_UPDATE, payload, plen);
	if (!f) {
		log_event(LOG_ERROR, "frame_alloc_failed", "order=%s bytes=%zu", o->id, plen);
		return;
	}
	if (proto_frame_update_cursor(payload, plen, &f->cursor) != 0) {
		/* Not a frame of the apply script: forward nothing we cannot place in order. */
		log_event(LOG_WARN, "frame_without_cursor", "order=%s bytes=%zu", o->id, plen);
		frame_unref(f);
		return;
	}
	f->coalesce = proto_frame_update_location_only(payload, plen);
	f->ts_ms = proto_frame_update_ts(payload, plen);
	for (w = o->watchers; w; w = w->next)
		hub_feed(hub, w, f, now_ms);
	frame_unref(f);
}

void hub_synced(hub_t *hub, watcher_t *w, bool ok, frame_t *const *frames, size_t n,
		const proto_cursor_t *upto, uint64_t now_ms)
{
	hub_order_t *o = w->order;

	w->sync_req = NULL;
	if (w->state != WATCHER_JOINING || !o)
		return;
	if (!ok) {
		hub_drop(hub, w, 1013, "could not read the order's state, try again");
		return;
	}
	if (o->sub != HUB_SUB_ACTIVE)
		return; /* the subscription was lost meanwhile; hub_subscribed() asks again */
	if (w->sync_again) {
		hub_request_sync(hub, w);
		return;
	}
	if (outq_splice(&w->q, w->held, frames, n, upto) != OUTQ_OK) {
		hub_drop(hub, w, 1011, "out of memory");
		return;
	}
	w->held = 0;
	w->state = WATCHER_LIVE;
	w->last = outq_max_cursor(&w->q, upto);
	if (w->q.count && !w->behind_since)
		w->behind_since = now_ms ? now_ms : 1;
	hub->stats.frames_out += n;
	hub->ops->wake(hub->ctx, w);
}

void hub_sync_lost(hub_t *hub, watcher_t *w)
{
	w->sync_req = NULL;
	w->sync_again = 0;
}

void hub_commands_up(hub_t *hub)
{
	hub_order_t *o, *tmp;
	watcher_t *w;

	HASH_ITER(hh, hub->orders, o, tmp)
	{
		if (o->sub != HUB_SUB_ACTIVE)
			continue; /* hub_subscribed() asks when the subscription is back */
		for (w = o->watchers; w; w = w->next)
			if (w->state == WATCHER_JOINING && !w->sync_req)
				hub_request_sync(hub, w);
	}
}

void hub_redis_down(hub_t *hub)
{
	hub_order_t *o, *tmp;
	watcher_t *w;

	hub->redis_up = false;
	HASH_ITER(hh, hub->orders, o, tmp)
	{
		if (!o->n_watchers) {
			hub_order_free(hub, o);
			continue;
		}
		o->sub = HUB_SUB_NONE;
		/*
		 * What is published meanwhile is lost to us: each watcher keeps
		 * writing what it has and resyncs from its newest cursor (a
		 * replay of the log) once the subscription is back.
		 */
		for (w = o->watchers; w; w = w->next) {
			if (w->state == WATCHER_LIVE) {
				w->state = WATCHER_JOINING;
				w->held = 0;
			}
		}
	}
}

void hub_redis_up(hub_t *hub)
{
	hub_order_t *o, *tmp;

	hub->redis_up = true;
	HASH_ITER(hh, hub->orders, o, tmp)
	{
		if (o->sub == HUB_SUB_NONE)
			hub_subscribe(hub, o);
	}
}

int hub_push_own(watcher_t *w, frame_t *f)
{
	int rc = outq_push(&w->q, f, SIZE_MAX);

	if (rc == OUTQ_OK && w->state == WATCHER_JOINING)
		w->held++;
	return rc;
}
