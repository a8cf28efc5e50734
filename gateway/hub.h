/*
 * hub.h - which watchers watch which order, and the Redis subscriptions
 * that follow from it.
 *
 * The hub keeps one hub_order per order id watched in this process, with
 * the list of its watchers.  The first watcher of an order subscribes to
 * trk:{ID}; the last one to leave unsubscribes: one SUBSCRIBE per order per
 * process, however many watchers.  A message from Redis becomes one shared
 * frame queued on each watcher of its order.
 *
 * Joining is two-step so a watcher neither misses nor repeats an update:
 * the snapshot is requested only once the subscription is confirmed, and
 * live frames that arrive before the snapshot are held in the watcher's
 * queue; the snapshot then drops those it already contains (cursor <=
 * snapshot cursor) and goes first.
 *
 * The hub does no I/O: it calls hub_ops_t for that, which keeps it
 * unit-testable.  All calls come from the loop thread.
 */
#ifndef TRACKGATE_HUB_H
#define TRACKGATE_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uthash.h>

#include "outq.h"
#include "proto.h"

typedef enum hub_sub_state {
	HUB_SUB_NONE = 0,     /* not subscribed (Redis down) */
	HUB_SUB_PENDING,      /* SUBSCRIBE sent, no ack yet */
	HUB_SUB_ACTIVE,       /* ack received: messages flow */
	HUB_SUB_UNSUBSCRIBING /* UNSUBSCRIBE sent; the order is freed on its ack */
} hub_sub_state_t;

typedef enum watcher_state {
	WATCHER_JOINING = 0, /* waiting for its snapshot; live frames are held */
	WATCHER_LIVE,        /* snapshot queued; frames flow */
	WATCHER_CLOSING,     /* being closed; takes no more frames */
} watcher_state_t;

struct hub_order;

typedef struct watcher {
	struct hub_order *order; /* NULL when not joined */
	struct watcher *prev, *next; /* in order->watchers */
	void *conn;              /* the transport's handle (struct lws *) */
	void *snapshot_req;      /* the in-flight snapshot request, owned by the broker */
	outq_t q;
	proto_cursor_t floor;    /* once live: drop update frames at or below it (0-0 = none) */
	uint8_t state;           /* watcher_state_t */
	uint8_t snapshot_wanted; /* ask for a snapshot once subscribed */
} watcher_t;

typedef struct hub_order {
	UT_hash_handle hh;
	watcher_t *watchers; /* doubly linked, not owned */
	uint32_t n_watchers;
	uint8_t sub;         /* hub_sub_state_t */
	uint8_t id_len;
	char id[PROTO_ORDER_ID_MAX + 1];
} hub_order_t;

#define HUB_AGAIN 1

typedef struct hub_ops {
	/* Sends SUBSCRIBE trk:{ID}; nonzero when it could not be sent. */
	int (*subscribe)(void *ctx, hub_order_t *order);
	/* Sends UNSUBSCRIBE trk:{ID}; nonzero when it could not be sent. */
	int (*unsubscribe)(void *ctx, hub_order_t *order);
	/*
	 * Asks for w's snapshot; the answer comes back as hub_snapshot().
	 * HUB_AGAIN: the command connection is down, ask again on
	 * hub_commands_up(); negative: failed for good.
	 */
	int (*snapshot)(void *ctx, watcher_t *w);
	/* w has frames to write. */
	void (*wake)(void *ctx, watcher_t *w);
	/* w's queue passed its bound, or a snapshot failed: close it (asynchronously). */
	void (*drop)(void *ctx, watcher_t *w, int close_code, const char *reason);
} hub_ops_t;

typedef struct hub_stats {
	uint64_t frames_in;   /* messages received from Redis */
	uint64_t frames_out;  /* frames queued on watchers */
	uint64_t dropped;     /* watchers closed for falling behind */
} hub_stats_t;

typedef struct hub {
	hub_order_t *orders; /* uthash by id; owns the hub_orders */
	const hub_ops_t *ops;
	void *ctx;
	size_t outq_limit;
	uint32_t n_orders;
	uint32_t n_watchers;
	bool redis_up; /* the subscriber connection is up */
	hub_stats_t stats;
} hub_t;

void hub_init(hub_t *hub, const hub_ops_t *ops, void *ctx, size_t outq_limit);
/* Frees every order; the watchers must have left. */
void hub_destroy(hub_t *hub);

hub_order_t *hub_find(hub_t *hub, const char *id, size_t len);

/* Adds w (zeroed by the caller, conn set) as a watcher of order id. */
int hub_join(hub_t *hub, watcher_t *w, const char *id, size_t len);
/* Removes w; drops its queue.  Safe to call for a watcher that never joined. */
void hub_leave(hub_t *hub, watcher_t *w);

/* Redis events, from the broker. */
void hub_subscribed(hub_t *hub, const char *id, size_t len);
void hub_unsubscribed(hub_t *hub, const char *id, size_t len);
void hub_message(hub_t *hub, const char *id, size_t len, const char *payload, size_t plen);

/*
 * w's snapshot arrived: snap is the frame (the hub takes its own ref; the
 * caller keeps and drops its own), or NULL when
 * it could not be fetched (the watcher is dropped with 1011).
 */
void hub_snapshot(hub_t *hub, watcher_t *w, frame_t *snap);

/* w's snapshot request was lost with the command connection: ask again once it is back. */
void hub_snapshot_lost(hub_t *hub, watcher_t *w);

/* The subscriber connection went down / came back: resubscribe every order. */
void hub_redis_down(hub_t *hub);
void hub_redis_up(hub_t *hub);

/* The command connection is (back) up: ask for the snapshots that waited for it. */
void hub_commands_up(hub_t *hub);

#endif
