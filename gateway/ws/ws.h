/*
 * ws/ws.h - tracking websockets: a session per socket (its watcher, its
 * close, its keepalive and token expiry), and the hub's hooks into lws and
 * the broker.  server.c dispatches lws's websocket callbacks here.
 *
 * A websocket's session embeds its watcher, so a watcher costs no
 * allocation of its own; the hub links it while the socket is open and
 * ws_closed unlinks it.
 */
#ifndef TRACKGATE_WS_H
#define TRACKGATE_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>
#include <uv.h>

#include "broker.h"
#include "config.h"
#include "hub.h"
#include "metrics.h"
#include "ratelimit.h"
#include "poll/poller.h"

#define WS_WHEEL 4096 /* seconds; a token further out waits for later turns */

/*
 * The one state of a websocket session; ws_set_state (ws/session.c) is its
 * only writer.  Whether an open session is still joining or live is the
 * hub's (watcher_t.state).
 *
 *   OPEN --(refusal, expiry, drop, drain, bad frame: ws_close_async)--> CLOSING
 *   CLOSING --(queue flushed, close frame sent)--> CLOSE_SENT
 *   OPEN/CLOSING --(the peer's close frame)--> CLOSE_SENT
 *   any --(a send failed: ws_kill)--> KILLED
 */
typedef enum ws_state {
	WS_OPEN = 0,   /* frames flow once the hub has it live */
	WS_CLOSING,    /* close_code is due once the queue is flushed */
	WS_CLOSE_SENT, /* the close handshake started: nothing more is written */
	WS_KILLED,     /* a send failed: dropped through an lws timeout, never written again */
} ws_state_t;

typedef struct ws ws_t;

typedef struct ws_session {
	watcher_t w;		  /* the watcher, linked by the hub */
	ws_t *ws;		  /* the module it belongs to */
	struct ws_client *client; /* its row in the per-address count */
	const char *close_reason; /* static text sent with close_code */
	uint16_t close_code;	  /* the close to send once the queue is flushed */
	uint16_t rx_len;	  /* bytes of the client message being received */
	uint8_t state;		  /* ws_state_t */
	uint8_t utf8;		  /* UTF-8 state of the text message being received */
	char *rx_buf;	       /* is malloc'd: the text message being received, while it arrives */
	uint8_t ka_state;      /* which keepalive queue it is in (ws/keepalive.c) */
	uint8_t ping_pending;  /* a ping is due: the next writeable sends it first */
	uint8_t resume_signal; /* joined with since: its replay ends with a resumed frame */
	struct ws_session *ka_prev, *ka_next; /* in ws->ka_head[ka_state - 1] */
	uint64_t ka_due_ms;		      /* loop time its ping, or its pong, is due */
} ws_session_t;

/* The websocket side of the server: what it owns, and what it reads of the server's. */
struct ws {
	uv_loop_t *loop;
	const config_t *cfg;
	hub_t *hub;
	broker_t *broker;
	poller_t *poller; /* the server's poll mode, or NULL */
	metrics_t *metrics;
	ratelimit_t *rates;
	const bool *stopping;	       /* the server's: draining */
	const unsigned *n_conns;       /* the server's: sockets lws holds */
	const int64_t *wall_offset_ms; /* the server's: wall clock minus uv_now() */
	/* Keepalive: [0] waiting to be pinged, [1] waiting for a pong.  FIFO queues, each
	 * in due order since all of its entries get the same delay. */
	ws_session_t *ka_head[2], *ka_tail[2];
	/* Watchers by token expiry second, WS_WHEEL buckets; the tick closes the due ones. */
	watcher_t *exp_wheel[WS_WHEEL];
	int64_t exp_swept_s;	   /* the last second whose bucket was swept */
	struct ws_client *clients; /* websockets per client address (uthash by address) */
};

/* The hub's hooks; their ctx is the ws_t. */
extern const hub_ops_t ws_hub_ops;

/* lws's websocket callbacks for session s of wsi.  Each returns what the callback returns. */
void ws_established(ws_t *ws, struct lws *wsi, ws_session_t *s);
int ws_writeable(ws_session_t *s);
int ws_receive(ws_session_t *s, const void *in, size_t len);
void ws_pong(ws_session_t *s);
int ws_peer_close(ws_session_t *s, unsigned char *in, size_t len);
void ws_closed(ws_session_t *s);

/* Pings websockets whose ping is due and hangs up those whose pong is late (the tick). */
void ws_keepalive(ws_t *ws, uint64_t now_ms);

/* Closes the websockets whose token expired by now_s (the tick). */
void ws_expire_tokens(ws_t *ws, int64_t now_s);

/* Closes every watcher asynchronously with close_code and reason (static text). */
void ws_close_all(ws_t *ws, int close_code, const char *reason);

/* Frees the per-address rows left (after the loop ran dry). */
void ws_free(ws_t *ws);

#endif
