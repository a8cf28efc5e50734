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
 * the sync (a snapshot, or with a cursor the log entries after it) is
 * requested only once the subscription is confirmed; live frames that
 * arrive meanwhile are held at the tail of the watcher's queue; the sync
 * then goes in front of them and drops those it already holds.  Each
 * watcher remembers the newest cursor it was given, so a frame that the
 * sync overtook on the other Redis connection is skipped, and a resync
 * after a Redis outage replays exactly what it missed.
 *
 * A watcher that falls behind gets the newest position, not a backlog: a
 * queued location-only frame is replaced by the next one.  Past the byte
 * bound, or undrained for slow_timeout_ms, it is closed with 4408.
 *
 * The hub does no I/O: it calls hub_ops_t for that, which keeps it
 * unit-testable.  Nor does it read a clock: the calls that need the time
 * take the loop's (now_ms, uv_now()).  All calls come from the loop thread.
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
	HUB_SUB_ACTIVE,	      /* ack received: messages flow */
	HUB_SUB_UNSUBSCRIBING /* UNSUBSCRIBE sent; the order is freed on its ack */
} hub_sub_state_t;

typedef enum watcher_state {
	WATCHER_JOINING = 0, /* waiting for its snapshot or replay; new frames are held */
	WATCHER_LIVE,	     /* synced; frames flow */
	WATCHER_CLOSING,     /* being closed; takes no more frames */
} watcher_state_t;

struct hub_order;

typedef struct watcher {
	struct hub_order *order;     /* NULL when not joined */
	struct watcher *prev, *next; /* in order->watchers */
	void *conn;		     /* the transport's handle (struct lws *) */
	void *sync_req; /* the in-flight snapshot/replay request, owned by the broker */
	outq_t q;
	proto_cursor_t last; /* newest cursor queued to it (or asked for with since); 0-0 = none */
	uint64_t behind_since; /* the now_ms since which its queue is not empty; 0 = drained */
	struct watcher *exp_prev,
	    *exp_next;	    /* in the gateway's expiry wheel while a token applies */
	int64_t exp_s;	    /* the token's expiry (unix s); 0 = none */
	uint16_t held;	    /* frames at the tail of q held until the sync arrives */
	uint8_t state;	    /* watcher_state_t */
	uint8_t sync_again; /* the in-flight request predates the subscription: ask again */
} watcher_t;

typedef struct hub_order {
	UT_hash_handle hh;
	watcher_t *watchers; /* doubly linked, not owned */
	uint32_t n_watchers;
	uint8_t sub; /* hub_sub_state_t */
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
	 * Syncs w: a replay of its order's log after w->last when that is set
	 * (a resume, or a resync after Redis came back), else a snapshot.  The
	 * answer comes back as hub_synced().  HUB_AGAIN: the command connection
	 * is down, ask again on hub_commands_up(); negative: failed for good.
	 */
	int (*sync)(void *ctx, watcher_t *w);
	/* w has frames to write. */
	void (*wake)(void *ctx, watcher_t *w);
	/*
	 * Optional: hands f to w's transport at once, for a live watcher with
	 * nothing queued.  Returns true when the transport took all of it (the
	 * frame then never enters the queue); false to queue it and wake w.
	 */
	bool (*send_now)(void *ctx, watcher_t *w, frame_t *f);
	/* w's queue passed its bound, or a snapshot failed: close it (asynchronously). */
	void (*drop)(void *ctx, watcher_t *w, int close_code, const char *reason);
	/* Optional: order has its first watcher / lost its last one (poll mode follows them). */
	void (*watched)(void *ctx, hub_order_t *order);
	void (*unwatched)(void *ctx, hub_order_t *order);
} hub_ops_t;

typedef struct hub_stats {
	uint64_t frames_in;  /* messages received from Redis */
	uint64_t frames_out; /* frames queued on watchers */
	uint64_t coalesced;  /* queued location frames replaced by a newer one */
	uint64_t dropped;    /* watchers closed for falling behind (4408) */
} hub_stats_t;

typedef struct hub {
	hub_order_t *orders; /* uthash by id; owns the hub_orders */
	const hub_ops_t *ops;
	void *ctx;
	size_t outq_limit;
	uint64_t slow_timeout_ms; /* a queue undrained this long closes its watcher */
	uint32_t n_orders;
	uint32_t n_watchers;
	bool redis_up; /* the subscriber connection is up */
	hub_stats_t stats;
} hub_t;

void hub_init(hub_t *hub, const hub_ops_t *ops, void *ctx, size_t outq_limit,
	      uint64_t slow_timeout_ms);
/* Frees every order; the watchers must have left. */
void hub_destroy(hub_t *hub);

hub_order_t *hub_find(hub_t *hub, const char *id, size_t len);

/*
 * Adds w (zeroed by the caller, conn set) as a watcher of order id.  since:
 * the client's cursor to resume after, or NULL for a snapshot.
 */
int hub_join(hub_t *hub, watcher_t *w, const char *id, size_t len, const proto_cursor_t *since);
/* Removes w; drops its queue.  Safe to call for a watcher that never joined. */
void hub_leave(hub_t *hub, watcher_t *w);

/* Redis events, from the broker (the server wires them). */
void hub_subscribed(hub_t *hub, const char *id, size_t len);
void hub_unsubscribed(hub_t *hub, const char *id, size_t len);
/* A message on trk:{ID}, received at now_ms (the loop's clock). */
void hub_message(hub_t *hub, const char *id, size_t len, const char *payload, size_t plen,
		 uint64_t now_ms);

/*
 * w's sync arrived at now_ms: frames[0..n) in order (a snapshot frame, or
 * the update frames replayed from the log, possibly none), covering
 * everything up to upto.  The hub takes its own refs.  ok = false: it could
 * not be fetched (the watcher is dropped with 1013).
 */
void hub_synced(hub_t *hub, watcher_t *w, bool ok, frame_t *const *frames, size_t n,
		const proto_cursor_t *upto, uint64_t now_ms);

/* w's socket is closing: the hub feeds it nothing more (it stays linked until hub_leave). */
static inline void hub_stop_feeding(watcher_t *w)
{
	w->state = WATCHER_CLOSING;
}

/*
 * Queues f, a frame of the socket's own (a token refresh's answer), behind
 * what is queued: while w joins it waits with the held frames, behind the
 * snapshot or replay to come, so nothing is written before it.  OUTQ_*.
 */
int hub_push_own(watcher_t *w, frame_t *f);

/* w wrote its queue empty: it is no longer behind. */
static inline void hub_drained(watcher_t *w)
{
	w->behind_since = 0;
}

/* w's sync request was lost with the command connection: ask again once it is back. */
void hub_sync_lost(hub_t *hub, watcher_t *w);

/* The frames of w that may be written now (the rest are held). */
static inline bool hub_writable(const watcher_t *w)
{
	return w->q.count > w->held;
}

/* The subscriber connection went down / came back: resubscribe every order. */
void hub_redis_down(hub_t *hub);
void hub_redis_up(hub_t *hub);

/* The command connection is (back) up: ask for the syncs that waited for it. */
void hub_commands_up(hub_t *hub);

#endif
