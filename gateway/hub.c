#include "hub.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

void hub_init(hub_t *hub, const hub_ops_t *ops, void *ctx, size_t outq_limit)
{
	memset(hub, 0, sizeof(*hub));
	hub->ops = ops;
	hub->ctx = ctx;
	hub->outq_limit = outq_limit;
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

/* Asks for w's snapshot, or drops w when the request cannot be sent. */
static void hub_request_snapshot(hub_t *hub, watcher_t *w)
{
	int rc;

	w->snapshot_wanted = 0;
	rc = hub->ops->snapshot(hub->ctx, w);
	if (rc == HUB_AGAIN)
		return; /* hub_commands_up() asks again */
	if (rc != 0) {
		w->state = WATCHER_CLOSING;
		hub->ops->drop(hub->ctx, w, 1013, "state store unavailable, try again later");
	}
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

int hub_join(hub_t *hub, watcher_t *w, const char *id, size_t len)
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
	o->n_watchers++;
	hub->n_watchers++;
	w->state = WATCHER_JOINING;

	switch (o->sub) {
	case HUB_SUB_NONE:
		hub_subscribe(hub, o);
		break;
	case HUB_SUB_ACTIVE:
		hub_request_snapshot(hub, w);
		break;
	case HUB_SUB_PENDING:
		/* hub_subscribed() asks for the snapshot. */
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
		if (w->snapshot_req)
			w->snapshot_wanted = 1; /* sent before this subscription: ask again */
		else
			hub_request_snapshot(hub, w);
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

void hub_message(hub_t *hub, const char *id, size_t len, const char *payload, size_t plen)
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
	if (proto_frame_update_cursor(payload, plen, &f->cursor) != 0)
		log_event(LOG_WARN, "frame_without_cursor", "order=%s bytes=%zu", o->id, plen);

	for (w = o->watchers; w; w = w->next) {
		if (w->state == WATCHER_CLOSING)
			continue;
		if (w->state == WATCHER_LIVE && (w->floor.ms || w->floor.seq)) {
			/*
			 * The snapshot came on the command connection and may have
			 * overtaken frames it already holds on the subscriber: skip
			 * those.  Frames arrive in cursor order, so the first newer
			 * one ends the check.
			 */
			if (proto_cursor_cmp(&f->cursor, &w->floor) <= 0)
				continue;
			w->floor = (proto_cursor_t){0, 0};
		}
		if (outq_push(&w->q, f, hub->outq_limit) != OUTQ_OK) {
			w->state = WATCHER_CLOSING;
			hub->stats.dropped++;
			hub->ops->drop(hub->ctx, w, 4408, "too slow: output queue full, resume with your cursor");
			continue;
		}
		hub->stats.frames_out++;
		if (w->state == WATCHER_LIVE)
			hub->ops->wake(hub->ctx, w);
	}
	frame_unref(f);
}

void hub_snapshot(hub_t *hub, watcher_t *w, frame_t *snap)
{
	hub_order_t *o = w->order;

	w->snapshot_req = NULL;
	if (w->state != WATCHER_JOINING || !o) {
		return;
	}
	if (!snap) {
		w->state = WATCHER_CLOSING;
		hub->ops->drop(hub->ctx, w, 1013, "could not read the order's state, try again");
		return;
	}
	if (o->sub != HUB_SUB_ACTIVE) {
		/* The subscription was lost meanwhile; hub_subscribed() asks again. */
		return;
	}
	if (w->snapshot_wanted) {
		hub_request_snapshot(hub, w);
		return;
	}
	outq_drop_upto(&w->q, &snap->cursor);
	if (outq_push_front(&w->q, snap) != OUTQ_OK) {
		w->state = WATCHER_CLOSING;
		hub->ops->drop(hub->ctx, w, 1011, "out of memory");
		return;
	}
	w->state = WATCHER_LIVE;
	w->floor = snap->cursor;
	hub->stats.frames_out++;
	hub->ops->wake(hub->ctx, w);
}

void hub_snapshot_lost(hub_t *hub, watcher_t *w)
{
	w->snapshot_req = NULL;
	w->snapshot_wanted = 0;
}

void hub_commands_up(hub_t *hub)
{
	hub_order_t *o, *tmp;
	watcher_t *w;

	HASH_ITER(hh, hub->orders, o, tmp) {
		if (o->sub != HUB_SUB_ACTIVE)
			continue; /* hub_subscribed() asks when the subscription is back */
		for (w = o->watchers; w; w = w->next)
			if (w->state == WATCHER_JOINING && !w->snapshot_req)
				hub_request_snapshot(hub, w);
	}
}

void hub_redis_down(hub_t *hub)
{
	hub_order_t *o, *tmp;
	watcher_t *w;

	hub->redis_up = false;
	HASH_ITER(hh, hub->orders, o, tmp) {
		if (!o->n_watchers) {
			hub_order_free(hub, o);
			continue;
		}
		o->sub = HUB_SUB_NONE;
		/* Whatever is published meanwhile is lost to us: resync from a snapshot. */
		for (w = o->watchers; w; w = w->next)
			if (w->state == WATCHER_LIVE)
				w->state = WATCHER_JOINING;
	}
}

void hub_redis_up(hub_t *hub)
{
	hub_order_t *o, *tmp;

	hub->redis_up = true;
	HASH_ITER(hh, hub->orders, o, tmp) {
		if (o->sub == HUB_SUB_NONE)
			hub_subscribe(hub, o);
	}
}
