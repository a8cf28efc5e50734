/*
 * ws/ws_private.h - what the files of ws/ share: session.c (the socket's
 * life), feed.c (the hub's hooks), keepalive.c, expiry.c, clients.c.
 */
#ifndef TRACKGATE_WS_PRIVATE_H
#define TRACKGATE_WS_PRIVATE_H

#include "ws.h"

#define WS_OF(watcher) ((ws_session_t *)((char *)(watcher)-offsetof(ws_session_t, w)))

/*
 * The one transition function (see ws_state_t); CLOSING and later also stop
 * the hub feeding the watcher.  Moving back is refused.
 */
void ws_set_state(ws_session_t *s, ws_state_t to);

/* A close is due or under way: nothing but the queue's flush and the close goes out. */
static inline bool ws_closing(const ws_session_t *s)
{
	return s->state != WS_OPEN;
}

/*
 * Closes s's socket from its next writeable callback: never at once,
 * because the hub may be iterating the order's watchers.
 */
void ws_close_async(ws_session_t *s, int close_code, const char *reason);

/* A send failed outside lws's callbacks: drop the socket through an lws timeout. */
void ws_kill(ws_session_t *s);

/* Counts a frame written (and an update's age). */
void ws_frame_written(ws_t *ws, const frame_t *f);

/* Keepalive queues (keepalive.c). */
typedef enum ka_state {
	KA_NONE = 0, /* not in a queue (not joined, or closing) */
	KA_WAIT,     /* ping at ka_due_ms */
	KA_PONG,     /* pinged: hang up at ka_due_ms unless a pong comes */
} ka_state_t;
void ws_ka_unlink(ws_session_t *s);
void ws_ka_append(ws_session_t *s, ka_state_t state, uint64_t due_ms);
void ws_ka_alive(ws_session_t *s);
int ws_ping(struct lws *wsi);

/* The token expiry wheel (expiry.c). */
void ws_wheel_add(ws_session_t *s, int64_t exp_s);
void ws_wheel_del(ws_session_t *s);

/* Websockets per client address (clients.c): -1 when the address holds max-per-client. */
int ws_client_acquire(ws_session_t *s, struct lws *wsi);
void ws_client_release(ws_session_t *s);

#endif
