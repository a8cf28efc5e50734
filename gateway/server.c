/*
 * server.c - the lws side of trackgated: one protocol that answers plain
 * HTTP (ingest, health) and serves tracking websockets, and the hub's
 * hooks into lws and the broker.
 *
 * A connection's state lives in its lws per-session data (session_t).  A
 * websocket's session embeds its watcher, so a watcher costs no allocation
 * of its own; the hub links it while the socket is open and
 * LWS_CALLBACK_CLOSED unlinks it.
 */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <libwebsockets.h>

#include "adapter.h"
#include "auth.h"
#include "http.h"
#include "ingest.h"
#include "log.h"
#include "proto.h"

#include <uthash.h>

#define WS_RX_BUFFER 128          /* clients send nothing but control frames (<= 125 bytes) */
#define WS_TX_PACKET 65536        /* the most one send() may carry */
#define WS_CLIENT_MESSAGE_MAX 1024 /* a larger client message closes with 1009 */

typedef enum session_kind {
	SESSION_HTTP = 0,
	SESSION_WS,
} session_kind_t;

/* GET /v1/orders/{ID}: the snapshot read in flight, then the answer. */
typedef struct order_read {
	struct lws *wsi;
	broker_req_t *req;  /* while in flight; owned by the broker */
	char *body;         /* is malloc'd: the answer once done */
	size_t len;
	unsigned status;
	char order_id[PROTO_ORDER_ID_MAX + 1];
} order_read_t;

typedef struct session {
	watcher_t w;              /* SESSION_WS: the watcher, linked by the hub */
	struct server_client *client; /* SESSION_WS: its row in the per-address count */
	ingest_t *ingest;         /* SESSION_HTTP: the POST in progress, owned here */
	order_read_t *read;       /* SESSION_HTTP: a GET /v1/orders/{ID} in progress, owned here */
	const char *close_reason; /* static text sent with close_code */
	uint16_t close_code;      /* nonzero: close once the queue is flushed */
	uint16_t rx_len;          /* bytes of the client message being received */
	uint8_t utf8;             /* server_utf8() state of the text message being received */
	uint8_t kind;             /* session_kind_t */
	uint8_t close_sent;       /* the close handshake has started */
	uint8_t ka_state;         /* ka_state_t: which keepalive queue it is in */
	uint8_t ping_pending;     /* a ping is due: the next writeable sends it first */
	uint8_t killed;           /* a send failed: dropped through an lws timeout, never written again */
	uint8_t resume_signal;    /* joined with since: its replay ends with a resumed frame */
	uint8_t phase;            /* SESSION_HTTP: http_phase_t of the request in progress */
	uint8_t held;             /* SESSION_HTTP: input paused (rx flow control) while it waits */
	uint8_t pipelined;        /* SESSION_HTTP: lws offered input behind it: answer, then close */
	uint8_t body_seen;        /* SESSION_HTTP: a body chunk of this request came */
	uint8_t reoffers;         /* SESSION_HTTP: body completions offered again while HTTP_QUEUED */
	struct session *queue_prev, *queue_next; /* SESSION_HTTP: in server_queue while HTTP_QUEUED */
	struct session *ka_prev, *ka_next; /* in g->ka_head[ka_state - 1] */
	uint64_t ka_due_ms;       /* loop time its ping, or its pong, is due */
} session_t;

/*
 * The life of a plain HTTP request whose answer comes later.  A request
 * answered at once never leaves HTTP_IDLE.
 */
typedef enum http_phase {
	HTTP_IDLE = 0, /* nothing pending */
	HTTP_BODY,     /* a POST body is being read */
	HTTP_QUEUED,   /* the body is complete; handed to ingest at the end of this loop turn */
	HTTP_WAITING,  /* waiting for Redis, input held */
	HTTP_READY,    /* the answer is ready to write */
} http_phase_t;

typedef enum ka_state {
	KA_NONE = 0, /* not a websocket, or closing */
	KA_WAIT,     /* ping at ka_due_ms */
	KA_PONG,     /* pinged: hang up at ka_due_ms unless a pong comes */
} ka_state_t;

static void server_ka_unlink(gateway_t *g, session_t *s);
static void server_ka_append(gateway_t *g, session_t *s, ka_state_t state, uint64_t due_ms);
static void server_ws_kill(gateway_t *g, session_t *s);

#define SESSION_OF(watcher) ((session_t *)((char *)(watcher) - offsetof(session_t, w)))

static gateway_t *server_gateway(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

/* --- hub hooks ------------------------------------------------------------- */

static int server_hub_subscribe(void *ctx, hub_order_t *order)
{
	gateway_t *g = ctx;

	return broker_subscribe(g->broker, order->id);
}

static int server_hub_unsubscribe(void *ctx, hub_order_t *order)
{
	gateway_t *g = ctx;

	return broker_unsubscribe(g->broker, order->id);
}

/*
 * The snapshot frame of a stored state and cursor (each NULL when absent),
 * or NULL when they do not hold up: a reply from Redis is outside input
 * too, so it is checked before a browser sees it.
 */
static frame_t *server_snapshot_frame(const watcher_t *w, const char *state, size_t state_len,
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
			log_event(LOG_ERROR, "bad_stored_state", "order=%s what=state", w->order->id);
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

static void server_snapshot_done(void *arg, int rc, const char *state, size_t state_len,
				 const char *cursor, size_t cursor_len)
{
	watcher_t *w = arg;
	gateway_t *g = server_gateway(w->conn);
	frame_t *f = NULL;

	if (rc == BROKER_ELOST) {
		/* The command connection went down: ask again when it is back. */
		hub_sync_lost(&g->hub, w);
		return;
	}
	if (rc == BROKER_OK)
		f = server_snapshot_frame(w, state, state_len, cursor, cursor_len, false);
	hub_synced(&g->hub, w, f != NULL, &f, f ? 1 : 0, f ? &f->cursor : &w->last);
	frame_unref(f);
}

/* The resumed frame that ends the replay of w's resume, with the cursor it reached. */
static frame_t *server_resumed_frame(const watcher_t *w, const proto_cursor_t *upto, size_t replayed)
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
static void server_resume_done(void *arg, int rc, const broker_resume_result_t *r)
{
	watcher_t *w = arg;
	gateway_t *g = server_gateway(w->conn);
	session_t *s = SESSION_OF(w);
	frame_t **frames = NULL;
	proto_cursor_t upto = w->last;
	size_t n = 0, replayed = 0;
	bool ok = false, joining;

	if (rc == BROKER_ELOST) {
		hub_sync_lost(&g->hub, w);
		return;
	}
	if (rc != BROKER_OK)
		goto done;
	if (r->reset) {
		/* The log no longer holds everything after the cursor: start again. */
		frames = calloc(1, sizeof(*frames));
		if (frames)
			frames[0] = server_snapshot_frame(w, r->state, r->state_len, r->cursor,
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
			log_event(LOG_ERROR, "bad_stored_log", "order=%s entry=%zu", w->order->id, n);
			n++;
			goto done;
		}
		frames[n]->coalesce = 0;
		upto = frames[n]->cursor;
	}
	replayed = n;
	if (s->resume_signal) {
		if (!(frames[n] = server_resumed_frame(w, &upto, replayed)))
			goto done;
		n++;
	}
	ok = true;
done:
	joining = w->state == WATCHER_JOINING;
	hub_synced(&g->hub, w, ok, frames, ok ? n : 0, &upto);
	if (joining && w->state == WATCHER_LIVE) {
		g->metrics.resumes[r->reset ? RESUME_RESET :
				   replayed ? RESUME_REPLAYED : RESUME_NOTHING_MISSED]++;
		/* Once live, later resyncs (after a Redis outage) are the gateway's own. */
		s->resume_signal = 0;
	}
	for (size_t i = 0; i < n; i++)
		frame_unref(frames[i]);
	free(frames);
}

static int server_hub_sync(void *ctx, watcher_t *w)
{
	gateway_t *g = ctx;
	broker_req_t *req = NULL;
	char cursor[PROTO_CURSOR_MAX + 1];
	int rc;

	if (w->last.ms || w->last.seq) {
		snprintf(cursor, sizeof(cursor), "%llu-%llu", (unsigned long long)w->last.ms,
			 (unsigned long long)w->last.seq);
		rc = broker_resume(g->broker, w->order->id, cursor, g->cfg->log_maxlen,
				   server_resume_done, w, &req);
	} else {
		rc = broker_snapshot(g->broker, w->order->id, server_snapshot_done, w, &req);
	}
	if (rc == BROKER_OK)
		w->sync_req = req;
	return rc == BROKER_EDOWN ? HUB_AGAIN : rc;
}

static void server_frame_written(gateway_t *g, const frame_t *f);

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
static bool server_ws_can_send_now(watcher_t *w)
{
	return w->state == WATCHER_LIVE && !SESSION_OF(w)->close_code &&
	       !lws_partial_buffered(w->conn);
}

static bool server_hub_send_now(void *ctx, watcher_t *w, frame_t *f)
{
	if (!server_ws_can_send_now(w))
		return false; /* queued */
	if (lws_write(w->conn, frame_payload(f), f->len, LWS_WRITE_TEXT) < (int)f->len) {
		server_ws_kill(ctx, SESSION_OF(w)); /* the frame goes with the connection */
		return true;
	}
	server_frame_written(ctx, f);
	return true;
}

/* w has queued frames (a snapshot, a replay, or frames behind a full socket). */
static void server_hub_wake(void *ctx, watcher_t *w)
{
	for (int i = 0; i < 16 && hub_writable(w); i++) {
		if (!server_hub_send_now(ctx, w, outq_peek(&w->q)))
			break;
		if (SESSION_OF(w)->killed)
			return; /* the kill emptied the queue */
		outq_pop(&w->q);
	}
	if (outq_empty(&w->q))
		hub_drained(w);
	else
		lws_callback_on_writable(w->conn);
}

/*
 * Closes w's socket from its next writeable callback: never from here,
 * because the hub may be iterating the order's watchers.
 */
static void server_ws_close_async(watcher_t *w, int close_code, const char *reason)
{
	session_t *s = SESSION_OF(w);
	gateway_t *g = server_gateway(w->conn);

	if (s->close_code)
		return;
	s->close_code = (uint16_t)close_code;
	s->close_reason = reason;
	w->state = WATCHER_CLOSING;
	/* A peer that never lets the close frame out (it stopped reading) is dropped
	 * pong-timeout later; nothing it sends meanwhile extends that. */
	server_ka_append(g, s, KA_PONG, uv_now(g->loop) + (uint64_t)g->cfg->pong_timeout_s * 1000);
	lws_callback_on_writable(w->conn);
}

/*
 * A send failed outside lws's callbacks: lws has marked the socket unusable
 * and will not call back to write (and a later write would go out without a
 * frame header).  Drop it through an lws timeout due at once; lws looks at
 * its timers after an event, which lws_cancel_service() makes.
 */
static void server_ws_kill(gateway_t *g, session_t *s)
{
	if (s->killed)
		return;
	s->killed = 1;
	s->close_sent = 1;
	if (!s->close_code) {
		s->close_code = 1006;
		s->close_reason = "send failed";
	}
	s->w.state = WATCHER_CLOSING;
	outq_clear(&s->w.q);
	server_ka_unlink(g, s);
	lws_set_timeout(s->w.conn, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
	if (g->lws)
		lws_cancel_service(g->lws);
}

static void server_hub_drop(void *ctx, watcher_t *w, int close_code, const char *reason)
{
	gateway_t *g = ctx;

	g->metrics.frames_dropped += w->q.count;
	outq_clear(&w->q);
	log_event(close_code == 4408 ? LOG_INFO : LOG_WARN, "watcher_dropped",
		  "order=%s code=%d reason=\"%s\"", w->order ? w->order->id : "-", close_code,
		  reason);
	server_ws_close_async(w, close_code, reason);
}

const hub_ops_t server_hub_ops = {
	.subscribe = server_hub_subscribe,
	.unsubscribe = server_hub_unsubscribe,
	.sync = server_hub_sync,
	.wake = server_hub_wake,
	.send_now = server_hub_send_now,
	.drop = server_hub_drop,
};

/*
 * Whether wsi came in on the metrics-listen address: its socket's local
 * port (one getsockname, only when metrics-listen is set).
 */
static bool server_on_metrics_port(const gateway_t *g, struct lws *wsi)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int port = 0;

	if (!g->cfg->metrics_port ||
	    getsockname(lws_get_socket_fd(wsi), (struct sockaddr *)&ss, &len) != 0)
		return false;
	if (ss.ss_family == AF_INET)
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	else if (ss.ss_family == AF_INET6)
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return port == g->cfg->metrics_port;
}

/* --- the client's address -------------------------------------------------- */

static bool server_trusted_proxy(const gateway_t *g, const char *addr)
{
	for (unsigned i = 0; i < g->cfg->n_trusted_proxies; i++)
		if (!strcmp(g->cfg->trusted_proxies[i], addr))
			return true;
	return false;
}

/*
 * The address limits and logs are about: the peer, or, when the peer is a
 * trusted proxy, the rightmost address of proxy-header that is not itself a
 * trusted proxy (the leftmost ones are the client's own claims).
 */
static void server_client_address(const gateway_t *g, struct lws *wsi, char *out, size_t len)
{
	char hdr[512], key[80];
	int n;

	if (!lws_get_peer_simple(wsi, out, len))
		snprintf(out, len, "?");
	if (!strncmp(out, "::ffff:", 7))
		memmove(out, out + 7, strlen(out + 7) + 1);
	if (!g->cfg->proxy_header[0] || !server_trusted_proxy(g, out))
		return;
	if (!strcmp(g->cfg->proxy_header, "x-forwarded-for")) {
		n = lws_hdr_copy(wsi, hdr, sizeof(hdr), WSI_TOKEN_X_FORWARDED_FOR);
	} else if (!strcmp(g->cfg->proxy_header, "x-real-ip")) {
		n = lws_hdr_copy(wsi, hdr, sizeof(hdr), WSI_TOKEN_HTTP_X_REAL_IP);
	} else {
		n = snprintf(key, sizeof(key), "%s:", g->cfg->proxy_header);
		n = lws_hdr_custom_copy(wsi, hdr, sizeof(hdr), key, n);
	}
	while (n > 0) {
		char *comma = memrchr(hdr, ',', (size_t)n), *a = comma ? comma + 1 : hdr;
		unsigned char bin[16];

		while (*a == ' ')
			a++;
		for (char *e = hdr + n; e > a && e[-1] == ' '; e--)
			e[-1] = '\0';
		hdr[n] = '\0';
		if ((inet_pton(AF_INET, a, bin) == 1 || inet_pton(AF_INET6, a, bin) == 1) &&
		    !server_trusted_proxy(g, a)) {
			/* A numeric address: at most 45 bytes, well inside out. */
			size_t l = strnlen(a, len - 1);

			memcpy(out, a, l);
			out[l] = '\0';
			return;
		}
		if (!comma)
			return;
		n = (int)(comma - hdr);
	}
}

/* Takes a token from the address's bucket; false (and *retry_s) when it is empty. */
static bool server_rate_ok(gateway_t *g, struct lws *wsi, ratelimit_kind_t kind, unsigned *retry_s)
{
	char addr[64];

	server_client_address(g, wsi, addr, sizeof(addr));
	if (ratelimit_take(&g->rates, addr, kind, uv_now(g->loop), retry_s))
		return true;
	g->metrics.refused[REFUSE_RATE]++;
	log_event(LOG_INFO, "rate_limited", "client=%s kind=%s", addr,
		  kind == RATELIMIT_UPGRADE ? "upgrade" : "ingest");
	return false;
}

/* --- connections per client address -------------------------------------- */

/* One row per client address holding websockets here; freed at zero. */
typedef struct server_client {
	UT_hash_handle hh;
	unsigned n;
	char addr[48];
} server_client_t;

static server_client_t *server_clients; /* by addr; the loop thread's only */

/*
 * Counts s's websocket against its client address; -1 when the address
 * already holds max-per-client.  s keeps the row until server_client_release.
 */
static int server_client_acquire(gateway_t *g, struct lws *wsi, session_t *s)
{
	server_client_t *c = NULL;
	char addr[48];

	server_client_address(g, wsi, addr, sizeof(addr));
	HASH_FIND_STR(server_clients, addr, c);
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return -1;
		snprintf(c->addr, sizeof(c->addr), "%s", addr);
		HASH_ADD_STR(server_clients, addr, c);
	}
	if (c->n >= g->cfg->max_per_client) {
		log_event(LOG_WARN, "connection_refused", "reason=max_per_client client=%s", addr);
		if (!c->n) {
			HASH_DEL(server_clients, c);
			free(c);
		}
		return -1;
	}
	c->n++;
	s->client = c;
	return 0;
}

static void server_client_release(session_t *s)
{
	server_client_t *c = s->client;

	if (!c)
		return;
	s->client = NULL;
	if (--c->n == 0) {
		HASH_DEL(server_clients, c);
		free(c);
	}
}

/* --- websockets ---------------------------------------------------------- */

/*
 * Close reasons must outlive the callback (they are sent later): the few
 * auth_check can give are matched to static strings here.
 */
static const char *server_static_reason(const char *why)
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

static void server_refused(gateway_t *g, metrics_refusal_t reason)
{
	g->stats.ws_refused++;
	g->metrics.refused[reason]++;
}

/* Queues an error frame, then the close: for refusals right after the upgrade. */
static void server_ws_refuse(session_t *s, int close_code, const char *code, const char *reason)
{
	int len = proto_frame_error(NULL, 0, code, reason);
	frame_t *f = len > 0 ? frame_new(FRAME_ERROR, (size_t)len) : NULL;

	if (f) {
		proto_frame_error((char *)frame_payload(f), (size_t)len, code, reason);
		outq_push(&s->w.q, f, SIZE_MAX);
		frame_unref(f);
	}
	server_ws_close_async(&s->w, close_code, reason);
}

/* --- keepalive ------------------------------------------------------------ */

/*
 * Every ping-interval a websocket gets a ping; without a pong (or anything)
 * back within pong-timeout it is hung up on: a peer that vanished (a phone
 * losing coverage) would otherwise hold its socket until TCP gives up.  Two
 * FIFO queues hold the websockets: a queue whose entries all get the same
 * delay is in due order, so a join, a pong and a due entry each cost O(1),
 * and the tick looks at the due entries only.
 */
static void server_ka_unlink(gateway_t *g, session_t *s)
{
	int q = s->ka_state - 1;

	if (s->ka_state == KA_NONE)
		return;
	if (s->ka_prev)
		s->ka_prev->ka_next = s->ka_next;
	else
		g->ka_head[q] = s->ka_next;
	if (s->ka_next)
		s->ka_next->ka_prev = s->ka_prev;
	else
		g->ka_tail[q] = s->ka_prev;
	s->ka_prev = s->ka_next = NULL;
	s->ka_state = KA_NONE;
}

static void server_ka_append(gateway_t *g, session_t *s, ka_state_t state, uint64_t due_ms)
{
	int q = state - 1;

	server_ka_unlink(g, s);
	s->ka_state = (uint8_t)state;
	s->ka_due_ms = due_ms;
	s->ka_next = NULL;
	s->ka_prev = g->ka_tail[q];
	if (g->ka_tail[q])
		g->ka_tail[q]->ka_next = s;
	else
		g->ka_head[q] = s;
	g->ka_tail[q] = s;
}

/* The peer said something (a pong, or any frame): ping again a whole interval from now. */
static void server_ka_alive(gateway_t *g, session_t *s)
{
	if (s->ka_state != KA_NONE && !s->close_code)
		server_ka_append(g, s, KA_WAIT,
				 uv_now(g->loop) + (uint64_t)g->cfg->ping_interval_s * 1000);
}

/* One ping; 0 when lws took it.  Not empty: lws 4.1 gives no RECEIVE_PONG callback
 * for an empty pong. */
static int server_ws_ping(struct lws *wsi)
{
	unsigned char ping[LWS_PRE + 1] = {[LWS_PRE] = 'k'};

	return lws_write(wsi, ping + LWS_PRE, 1, LWS_WRITE_PING) < 0 ? -1 : 0;
}

void server_keepalive(gateway_t *g, uint64_t now_ms)
{
	session_t *s;
	bool killed = false;

	while ((s = g->ka_head[KA_PONG - 1]) && s->ka_due_ms <= now_ms) {
		server_ka_unlink(g, s);
		g->metrics.pong_timeouts++;
		/* A silent peer takes no close handshake (and may never be writeable): drop
		 * the socket through an lws timeout that is due at once. */
		lws_set_timeout(s->w.conn, PENDING_TIMEOUT_WS_PONG_CHECK_GET_PONG, LWS_TO_KILL_ASYNC);
		killed = true;
	}
	/* lws looks at its timers after it handles an event: make one, or the kill
	 * waits for the next socket activity. */
	if (killed && g->lws)
		lws_cancel_service(g->lws);
	while ((s = g->ka_head[KA_WAIT - 1]) && s->ka_due_ms <= now_ms) {
		server_ka_append(g, s, KA_PONG, now_ms + (uint64_t)g->cfg->pong_timeout_s * 1000);
		/* Like frames, a ping goes out at once unless lws holds unsent bytes. */
		if (s->close_code || lws_partial_buffered(s->w.conn)) {
			s->ping_pending = 1;
			lws_callback_on_writable(s->w.conn);
		} else if (server_ws_ping(s->w.conn)) {
			server_ws_kill(g, s);
		}
	}
}

/* --- token expiry -------------------------------------------------------- */

static void server_wheel_add(gateway_t *g, watcher_t *w, int64_t exp_s)
{
	watcher_t **b = &g->exp_wheel[exp_s % GATEWAY_WHEEL];

	if (g->exp_swept_s && exp_s + AUTH_LEEWAY_S <= g->exp_swept_s) {
		/* Its second was swept already: expire it now rather than a wheel turn later. */
		server_ws_close_async(w, 4401, "the tracking link has expired");
		return;
	}
	w->exp_s = exp_s;
	w->exp_prev = NULL;
	w->exp_next = *b;
	if (*b)
		(*b)->exp_prev = w;
	*b = w;
}

static void server_wheel_del(gateway_t *g, watcher_t *w)
{
	if (!w->exp_s)
		return;
	if (w->exp_prev)
		w->exp_prev->exp_next = w->exp_next;
	else
		g->exp_wheel[w->exp_s % GATEWAY_WHEEL] = w->exp_next;
	if (w->exp_next)
		w->exp_next->exp_prev = w->exp_prev;
	w->exp_prev = w->exp_next = NULL;
	w->exp_s = 0;
}

/*
 * Sweeps the buckets of the seconds since the last sweep: work in proportion
 * to the watchers expiring (plus those a whole wheel turn later), not to all.
 */
void server_expire_tokens(gateway_t *g, int64_t now_s)
{
	int64_t from = g->exp_swept_s ? g->exp_swept_s + 1 : now_s - AUTH_LEEWAY_S;

	if (now_s - from >= GATEWAY_WHEEL)
		from = now_s - GATEWAY_WHEEL + 1;
	for (int64_t t = from; t <= now_s; t++) {
		watcher_t *w = g->exp_wheel[(t - AUTH_LEEWAY_S + GATEWAY_WHEEL * 4) % GATEWAY_WHEEL];

		while (w) {
			watcher_t *next = w->exp_next;

			if (w->exp_s + AUTH_LEEWAY_S <= now_s) {
				server_wheel_del(g, w);
				outq_clear(&w->q);
				server_ws_close_async(w, 4401, "the tracking link has expired");
			}
			w = next;
		}
	}
	g->exp_swept_s = now_s;
}

/*
 * Why a query argument the gateway reads cannot be used (rc from
 * query_get), as a static sentence for a close reason or an error body.
 */
static const char *server_query_problem(int rc, const char *name)
{
	if (rc == QUERY_TOO_MANY)
		return "the query has too many arguments";
	if (!strcmp(name, "token"))
		return "the query gives token more than once";
	if (!strcmp(name, "since"))
		return "the query gives since more than once";
	if (!strcmp(name, "check"))
		return "the query gives check more than once";
	return "the query gives an argument more than once";
}

/*
 * query_get for an argument that may be absent (*value NULL then): false,
 * with *rc, when the query cannot be used.
 */
static bool server_query_arg(const query_t *q, const char *name, const char **value, size_t *len,
			     int *rc)
{
	*value = NULL;
	*len = 0;
	*rc = query_get(q, name, value, len);
	return *rc == QUERY_OK || *rc == QUERY_ABSENT;
}

static void server_ws_established(gateway_t *g, struct lws *wsi, session_t *s)
{
	char uri[256], origin[256], qbuf[HTTP_QUERY_MAX];
	const char *since, *token, *bad;
	size_t since_len, token_len;
	proto_cursor_t cursor;
	query_t query;
	int n, rc;

	s->kind = SESSION_WS;
	s->w.conn = wsi;
	g->stats.ws_opened++;
	n = lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);
	if (n <= 0 || strncmp(uri, "/v1/track/", 10) != 0 || server_on_metrics_port(g, wsi)) {
		server_refused(g, REFUSE_NOT_FOUND);
		server_ws_refuse(s, 4404, "not_found", "no such websocket endpoint; use /v1/track/{order_id}");
		return;
	}
	if (!proto_order_id_valid(uri + 10, (size_t)n - 10)) {
		server_refused(g, REFUSE_ORDER_ID);
		server_ws_refuse(s, 4400, "invalid_order_id",
				 "the order id must be 1-128 characters of A-Z a-z 0-9 . _ ~ -");
		return;
	}
	if (g->stopping) {
		server_refused(g, REFUSE_STOPPING);
		server_ws_close_async(&s->w, 1001, "server shutting down, reconnect");
		return;
	}
	if (http_query(wsi, &query, qbuf, sizeof(qbuf)) != 0) {
		server_refused(g, REFUSE_QUERY);
		server_ws_refuse(s, 4400, "invalid_query", "the query is too long");
		return;
	}
	if (!server_query_arg(&query, bad = "since", &since, &since_len, &rc) ||
	    !server_query_arg(&query, bad = "token", &token, &token_len, &rc)) {
		server_refused(g, REFUSE_QUERY);
		server_ws_refuse(s, 4400, "invalid_query", server_query_problem(rc, bad));
		return;
	}
	if (since && proto_cursor_parse(since, since_len, &cursor) != PROTO_OK) {
		server_refused(g, REFUSE_CURSOR);
		server_ws_refuse(s, 4400, "invalid_cursor",
				 "since must be a cursor from a frame, <ms>-<seq>");
		return;
	}
	if (g->n_conns > g->cfg->max_connections) {
		server_refused(g, REFUSE_OVERLOADED);
		server_ws_refuse(s, 1013, "overloaded", "server full, try again later");
		return;
	}
	{
		unsigned retry;

		if (!server_rate_ok(g, wsi, RATELIMIT_UPGRADE, &retry)) {
			g->stats.ws_refused++; /* the metric was counted by server_rate_ok */
			server_ws_refuse(s, 1013, "rate_limited",
					 "too many connections from your address, try again later");
			return;
		}
	}
	if (server_client_acquire(g, wsi, s) != 0) {
		server_refused(g, REFUSE_PER_CLIENT);
		server_ws_refuse(s, 1008, "too_many_connections",
				 "too many connections from your address");
		return;
	}
	if (!config_origin_ok(g->cfg, lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) > 0 &&
			      lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) > 0 ?
			      origin : NULL)) {
		server_refused(g, REFUSE_ORIGIN);
		server_ws_refuse(s, 1008, "origin_not_allowed", "this page may not open the stream");
		return;
	}
	if (g->cfg->token_keys.n) {
		/* The token is checked after the order id and before the watcher joins. */
		char why[96];
		int64_t exp = 0;
		auth_result_t ar;

		uri[n] = '\0';
		ar = auth_check(&g->cfg->token_keys, token, token_len, uri + 10,
				(int64_t)time(NULL), &exp, why, sizeof(why));
		if (ar != AUTH_OK) {
			server_refused(g, ar == AUTH_FORBIDDEN ? REFUSE_TOKEN_ORDER : REFUSE_TOKEN);
			server_ws_refuse(s, ar == AUTH_FORBIDDEN ? 4403 : 4401,
					 ar == AUTH_FORBIDDEN ? "forbidden" : "unauthorized",
					 ar == AUTH_FORBIDDEN ? "the token is for another order" :
					 server_static_reason(why));
			return;
		}
		server_wheel_add(g, &s->w, exp);
	}
	s->resume_signal = since != NULL;
	if (hub_join(&g->hub, &s->w, uri + 10, (size_t)n - 10, since ? &cursor : NULL) != 0) {
		g->stats.ws_refused++;
		server_ws_close_async(&s->w, 1011, "out of memory");
		return;
	}
	server_ka_append(g, s, KA_WAIT, uv_now(g->loop) + (uint64_t)g->cfg->ping_interval_s * 1000);
	log_event(LOG_DEBUG, "watcher_joined", "order=%s watchers=%u", s->w.order->id,
		  s->w.order->n_watchers);
}

/*
 * Counts a frame written, and for an update how old it is (its ts to now).
 * Now is the loop's time on the wall clock (gateway_wall_ms): no clock read
 * per frame.
 */
static void server_frame_written(gateway_t *g, const frame_t *f)
{
	g->metrics.frames_written++;
	if (f->kind != FRAME_UPDATE || !f->ts_ms)
		return;
	metrics_observe(&g->metrics.update_age, (double)(gateway_wall_ms(g) - f->ts_ms));
}

static int server_ws_writeable(struct lws *wsi, session_t *s)
{
	frame_t *f = outq_peek(&s->w.q);
	int n;

	if (s->ping_pending && !s->close_code) {
		s->ping_pending = 0;
		if (server_ws_ping(wsi))
			return -1;
		if (f)
			lws_callback_on_writable(wsi);
		return 0;
	}
	if (f && (hub_writable(&s->w) || s->close_code)) {
		/* One lws_write per writeable callback; the frame's headroom takes the header. */
		n = lws_write(wsi, frame_payload(f), f->len, LWS_WRITE_TEXT);
		if (n < (int)f->len)
			return -1;
		server_frame_written(server_gateway(wsi), f);
		outq_pop(&s->w.q);
		if (outq_empty(&s->w.q))
			hub_drained(&s->w);
		if (hub_writable(&s->w) || s->close_code)
			lws_callback_on_writable(wsi);
		return 0;
	}
	if (s->close_code && !s->close_sent) {
		/*
		 * Start the close handshake here and return 0, rather than the
		 * usual lws_close_reason() + return -1: Debian's lws 4.1.6 is a
		 * _DEBUG build whose libuv path closes a connection a second time
		 * right after a callback returns -1 ("uv repeat test"), which
		 * kills the socket before the close frame is sent.  This way lws
		 * sends the frame, waits for the peer's ack and then closes.
		 */
		s->close_sent = 1;
		lws_close_reason(wsi, (enum lws_close_status)s->close_code,
				 (unsigned char *)s->close_reason, strlen(s->close_reason));
		lws_close_free_wsi(wsi, LWS_CLOSE_STATUS_NOSTATUS, "trackgate close");
	}
	return 0;
}

/*
 * UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF),
 * checked as it arrives: *st is 0 between characters, else the bytes still
 * due << 4 | which lead byte narrows the next one (1 E0, 2 ED, 3 F0, 4 F4).
 * 0 when p[0..n) cannot continue valid text; a message is whole only if *st
 * is 0 at its end.  lws 4.1 checks only with LWS_SERVER_OPTION_VALIDATE_UTF8,
 * and then drops a close frame with a bad reason without any close code.
 */
static int server_utf8(uint8_t *st, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned c = p[i], due = *st >> 4, lo = 0x80, hi = 0xbf;

		if (due) {
			if ((*st & 0xf) == 1)
				lo = 0xa0;
			else if ((*st & 0xf) == 2)
				hi = 0x9f;
			else if ((*st & 0xf) == 3)
				lo = 0x90;
			else if ((*st & 0xf) == 4)
				hi = 0x8f;
			if (c < lo || c > hi)
				return 0;
			*st = (uint8_t)((due - 1) << 4);
		} else if (c >= 0xc2 && c <= 0xdf) {
			*st = 1 << 4;
		} else if (c >= 0xe0 && c <= 0xef) {
			*st = (uint8_t)(2 << 4 | (c == 0xe0 ? 1 : c == 0xed ? 2 : 0));
		} else if (c >= 0xf0 && c <= 0xf4) {
			*st = (uint8_t)(3 << 4 | (c == 0xf0 ? 3 : c == 0xf4 ? 4 : 0));
		} else if (c >= 0x80) {
			return 0;
		}
	}
	return 1;
}

static int server_ws_receive(struct lws *wsi, session_t *s, const void *in, size_t len)
{
	int end = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);

	/* Clients have nothing to say but pings (lws answers those); ignore small messages. */
	if ((size_t)s->rx_len + len > WS_CLIENT_MESSAGE_MAX) {
		server_gateway(wsi)->metrics.refused[REFUSE_CLIENT_MESSAGE]++;
		server_ws_close_async(&s->w, 1009, "clients may send at most 1024-byte messages");
		outq_clear(&s->w.q);
		return 0;
	}
	/* RFC 6455 8.1: a text message that is not UTF-8 fails the connection (1007). */
	if (!lws_frame_is_binary(wsi) &&
	    (!server_utf8(&s->utf8, in, len) || (end && s->utf8))) {
		server_ws_close_async(&s->w, 1007, "a text message that is not UTF-8");
		outq_clear(&s->w.q);
		return 0;
	}
	s->rx_len = (uint16_t)(s->rx_len + len);
	if (end)
		s->rx_len = s->utf8 = 0;
	return 0;
}

/*
 * The client's close frame (RFC 6455 5.5.1, 7.4), before lws echoes its
 * payload: lws 4.1 has already turned a code below 1000, 1004-1006 and
 * 1012-2999 into 1002 in that payload.  Left to the gateway: a 1-byte
 * payload (lws would echo it: a malformed close of its own), codes 5000 and
 * up (echoed as they came), and a reason that is not UTF-8.  The code and
 * reason are rewritten in place: the echo says 1002 or 1007 and lws then
 * closes at once.  A 1-byte payload cannot grow, so the gateway sends its
 * own 1002 close instead (lws then waits up to 5 s for an answer).
 */
static int server_ws_peer_close(struct lws *wsi, unsigned char *in, size_t len)
{
	static const char one_byte[] = "a close frame cannot carry 1 byte";
	uint8_t st = 0;
	unsigned code;

	if (len == 1) {
		lws_close_reason(wsi, LWS_CLOSE_STATUS_PROTOCOL_ERR, (unsigned char *)one_byte,
				 sizeof(one_byte) - 1);
		return -1;
	}
	if (len < 2)
		return 0;
	code = (unsigned)in[0] << 8 | in[1];
	if (!server_utf8(&st, in + 2, len - 2) || st) {
		code = LWS_CLOSE_STATUS_INVALID_PAYLOAD;
		memset(in + 2, '?', len - 2);
	} else if (code >= 5000) {
		code = LWS_CLOSE_STATUS_PROTOCOL_ERR;
	}
	in[0] = (unsigned char)(code >> 8);
	in[1] = (unsigned char)(code & 0xff);
	return 0;
}

void server_close_watchers(gateway_t *g, int close_code, const char *reason)
{
	hub_order_t *o, *tmp;
	watcher_t *w;

	HASH_ITER(hh, g->hub.orders, o, tmp) {
		for (w = o->watchers; w; w = w->next) {
			outq_clear(&w->q);
			server_ws_close_async(w, close_code, reason);
		}
	}
}

/* --- plain HTTP ------------------------------------------------------------ */

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
 *   (server_after_io).  One offered again before that is lws looping inside
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
static session_t *server_queue; /* HTTP_QUEUED sessions; the loop thread's only */

/* Body completions of one queued request lws may offer in one loop turn before it counts as
 * lws looping (it offers 2 for a request parsed from its buffer). */
#define SERVER_REOFFERS_MAX 8

static void server_queue_del(session_t *s)
{
	if (s->phase != HTTP_QUEUED)
		return;
	if (s->queue_prev)
		s->queue_prev->queue_next = s->queue_next;
	else
		server_queue = s->queue_next;
	if (s->queue_next)
		s->queue_next->queue_prev = s->queue_prev;
	s->queue_prev = s->queue_next = NULL;
	s->phase = HTTP_IDLE;
}

static void server_queue_add(struct lws *wsi, session_t *s)
{
	s->w.conn = wsi; /* a plain HTTP session has no watcher: its conn is the wsi */
	s->phase = HTTP_QUEUED;
	s->reoffers = 0;
	s->queue_prev = NULL;
	s->queue_next = server_queue;
	if (server_queue)
		server_queue->queue_prev = s;
	server_queue = s;
}

static void server_http_hold(struct lws *wsi, session_t *s)
{
	if (!s->held) {
		s->held = 1;
		lws_rx_flow_control(wsi, 0);
	}
}

/* The answer is ready: let lws service the connection again, and write it. */
static void server_http_ready(struct lws *wsi, session_t *s)
{
	s->phase = HTTP_READY;
	if (s->held) {
		s->held = 0;
		lws_rx_flow_control(wsi, 1);
	}
	lws_callback_on_writable(wsi);
}

typedef enum http_method {
	METHOD_OTHER = 0,
	METHOD_GET,
	METHOD_POST,
	METHOD_HEAD,
} http_method_t;

static http_method_t server_method(struct lws *wsi)
{
	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI))
		return METHOD_GET;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI))
		return METHOD_POST;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI))
		return METHOD_HEAD;
	return METHOD_OTHER;
}

static int server_reply_json(gateway_t *g, struct lws *wsi, unsigned status, const char *body)
{
	return http_reply(wsi, status, "application/json", body, strlen(body), false, NULL);
}

static int server_error(gateway_t *g, struct lws *wsi, unsigned status, const char *code,
			const char *message, bool close, const char *allow)
{
	g->stats.http_errors++;
	g->last_error_status = status;
	log_event(LOG_DEBUG, "http_error", "status=%u error=%s", status, code);
	return http_error(wsi, status, code, message, close, allow);
}

/* "application/json", optionally followed by parameters such as "; charset=utf-8". */
static bool server_is_json(struct lws *wsi)
{
	char ct[128];
	int n = lws_hdr_copy(wsi, ct, sizeof(ct), WSI_TOKEN_HTTP_CONTENT_TYPE);

	if (n < 16 || strncasecmp(ct, "application/json", 16) != 0)
		return false;
	return ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ';
}

static bool server_authorized(gateway_t *g, struct lws *wsi)
{
	char auth[CONFIG_INGEST_KEY_MAX + 32];
	int n = lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION);

	if (n <= 7 || strncasecmp(auth, "Bearer ", 7) != 0)
		return false;
	return config_ingest_key_ok(g->cfg, auth + 7, (size_t)n - 7);
}

static void server_ingest_ready(void *arg)
{
	struct lws *wsi = arg;

	server_http_ready(wsi, lws_wsi_user(wsi));
}

/*
 * Checks what a POST with a JSON body needs before the body is read (the
 * ingest key when bearer is set, the media type, the length) and starts
 * collecting it.
 */
static int server_body_check(gateway_t *g, struct lws *wsi, session_t *s, bool bearer);

static int server_body_start(gateway_t *g, struct lws *wsi, session_t *s, unsigned provider,
			     bool bearer)
{
	static const unsigned none[RESULT__COUNT];
	int rc;

	g->last_error_status = 0;
	{
		unsigned retry;
		char secs[16];

		if (!server_rate_ok(g, wsi, RATELIMIT_INGEST, &retry)) {
			char *body = http_error_body("rate_limited", "too many requests from your "
						     "address; retry after the Retry-After seconds");

			snprintf(secs, sizeof(secs), "%u", retry);
			g->stats.http_errors++;
			rc = body ? http_reply_hdr(wsi, 429, "application/json", body, strlen(body), true,
						   "retry-after:", secs) : -1;
			free(body);
			metrics_request(&g->metrics, provider, 429, none, -1);
			return rc;
		}
	}
	rc = server_body_check(g, wsi, s, bearer);
	if (!s->ingest) /* answered before the body: count it here */
		metrics_request(&g->metrics, provider, g->last_error_status, none, -1);
	return rc;
}

/* The checks of server_body_start; on success s->ingest collects the body. */
static int server_body_check(gateway_t *g, struct lws *wsi, session_t *s, bool bearer)
{
	char clen[32];
	unsigned long long len;
	char *end;

	if (bearer && !server_authorized(g, wsi))
		return server_error(g, wsi, 401, "unauthorized",
				    "missing or wrong `Authorization: Bearer KEY`", true, NULL);
	if (!server_is_json(wsi))
		return server_error(g, wsi, 415, "unsupported_media_type",
				    "the body must be application/json", true, NULL);
	if (lws_hdr_copy(wsi, clen, sizeof(clen), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
		return server_error(g, wsi, 411, "length_required",
				    "a Content-Length header is required", true, NULL);
	len = strtoull(clen, &end, 10);
	if (*end || clen[0] == '-' || clen[0] == '+')
		return server_error(g, wsi, 400, "bad_request", "bad Content-Length", true, NULL);
	if (len > g->cfg->body_limit) {
		char msg[96];

		snprintf(msg, sizeof(msg), "the body may be at most %zu bytes", g->cfg->body_limit);
		return server_error(g, wsi, 413, "body_too_large", msg, true, NULL);
	}
	if (len == 0)
		return server_error(g, wsi, 400, "malformed_json", "the body is empty", true, NULL);
	s->ingest = ingest_new(g, (size_t)len, server_ingest_ready, wsi);
	if (!s->ingest)
		return server_error(g, wsi, 503, "out_of_memory", "retry later", true, NULL);
	s->phase = HTTP_BODY;
	s->body_seen = 0;
	return 0; /* the body follows in LWS_CALLBACK_HTTP_BODY */
}

/* The metrics index of an adapter (1.. in registry order). */
static unsigned server_provider_index(const char *provider)
{
	const adapter_ops_t *const *all = adapter_all();

	for (unsigned i = 0; all[i]; i++)
		if (!strcmp(all[i]->name, provider))
			return i + 1;
	return 0;
}

/* The adapter and configured secret of /v1/webhooks/{provider}; NULLs when either is missing. */
static const adapter_ops_t *server_webhook_of(gateway_t *g, const char *provider,
					      const config_webhook_t **w)
{
	const adapter_ops_t *a = adapter_find(provider);

	*w = a ? config_webhook(g->cfg, provider) : NULL;
	return *w ? a : NULL;
}

/*
 * POST /v1/webhooks/{provider}: the body is read like /v1/updates' (the
 * same 411/413/415), then verified and parsed by the provider's adapter at
 * LWS_CALLBACK_HTTP_BODY_COMPLETION.  GET answers Onfleet's validation
 * request (?check=VALUE, echoed as text).
 */
static int server_webhook_start(gateway_t *g, struct lws *wsi, session_t *s, const char *provider,
				int method)
{
	const config_webhook_t *w;

	if (!server_webhook_of(g, provider, &w))
		return server_error(g, wsi, 404, "unknown_provider",
				    "no webhook is configured for this provider", false, NULL);
	if (method == METHOD_GET && !strcmp(provider, "onfleet")) {
		char qbuf[HTTP_QUERY_MAX];
		const char *check;
		size_t check_len;
		query_t query;
		int rc = QUERY_TOO_MANY;

		if (http_query(wsi, &query, qbuf, sizeof(qbuf)) != 0 ||
		    !server_query_arg(&query, "check", &check, &check_len, &rc))
			return server_error(g, wsi, 400, "invalid_query",
					    server_query_problem(rc, "check"), false, NULL);
		if (!check)
			return server_error(g, wsi, 400, "bad_request",
					    "Onfleet's validation request carries ?check=VALUE", false,
					    NULL);
		return http_reply(wsi, 200, "text/plain", check, check_len, false, NULL);
	}
	if (method != METHOD_POST)
		return server_error(g, wsi, 405, "method_not_allowed", "use POST", true, "POST");
	return server_body_start(g, wsi, s, server_provider_index(provider), false);
}

typedef struct server_headers {
	struct lws *wsi;
	unsigned used;
	char slot[8][1024]; /* copies handed to the adapter, valid during its call */
} server_headers_t;

/* adapter_request_t's header lookup: lower-case name, NUL-terminated value or NULL. */
static const char *server_header(void *ctx, const char *name)
{
	server_headers_t *h = ctx;
	char key[64];
	char *dst;
	int n;

	if (h->used == sizeof(h->slot) / sizeof(h->slot[0]))
		return NULL;
	dst = h->slot[h->used];
	if (!strcmp(name, "authorization")) {
		n = lws_hdr_copy(h->wsi, dst, sizeof(h->slot[0]), WSI_TOKEN_HTTP_AUTHORIZATION);
	} else {
		n = snprintf(key, sizeof(key), "%s:", name);
		if (n <= 0 || (size_t)n >= sizeof(key))
			return NULL;
		n = lws_hdr_custom_copy(h->wsi, dst, sizeof(h->slot[0]), key, n);
	}
	if (n < 0 || (n == 0 && !dst[0]))
		return NULL;
	h->used++;
	return dst;
}

static bool server_webhook_finish(gateway_t *g, struct lws *wsi, session_t *s)
{
	server_headers_t *headers;
	const config_webhook_t *w;
	const adapter_ops_t *a;
	struct timespec wall;
	char uri[256];
	bool now;

	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_POST_URI) <= 13 ||
	    !(a = server_webhook_of(g, uri + 13, &w))) {
		ingest_fail(s->ingest, 404, "unknown_provider", "no webhook is configured for this "
							       "provider");
		return true;
	}
	headers = calloc(1, sizeof(*headers));
	if (!headers) {
		ingest_fail(s->ingest, 503, "out_of_memory", "retry later");
		return true;
	}
	headers->wsi = wsi;
	clock_gettime(CLOCK_REALTIME, &wall);
	/* The receive time as ms since the epoch (uv_now is a monotonic clock, not a date). */
	now = ingest_finish_webhook(s->ingest, a, w->secret, w->secret_len, server_header, headers,
				    (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000);
	free(headers);
	return now;
}

static int server_ingest_write(gateway_t *g, struct lws *wsi, const ingest_t *ing, bool close)
{
	unsigned status;
	const char *body;
	size_t len;

	ingest_response(ing, &status, &body, &len);
	if (status >= 400)
		g->stats.http_errors++;
	ingest_account(ing, &g->metrics, status);
	return http_reply(wsi, status, "application/json", body, len, close, NULL);
}

static void server_order_read_free(order_read_t *r)
{
	if (!r)
		return;
	if (r->req)
		broker_req_cancel(r->req);
	free(r->body);
	free(r);
}

static void server_order_read_done(void *arg, int rc, const char *state, size_t state_len,
				   const char *cursor, size_t cursor_len)
{
	order_read_t *r = arg;
	proto_cursor_t c;
	cJSON *doc = NULL;
	int len;

	r->req = NULL;
	r->status = 503;
	if (rc == BROKER_OK && (!cursor || proto_cursor_parse(cursor, cursor_len, &c) == PROTO_OK) &&
	    (!state || cJSON_IsObject(doc = cJSON_ParseWithLength(state, state_len)))) {
		/* The same bytes a websocket's snapshot frame carries, minus the frame type. */
		len = proto_frame_snapshot(NULL, 0, r->order_id, state, state_len, cursor, false);
		r->body = len > 0 ? malloc((size_t)len) : NULL;
		if (r->body) {
			proto_frame_snapshot(r->body, (size_t)len, r->order_id, state, state_len, cursor,
					     false);
			/* {"type":"snapshot","order_id":... -> {"order_id":... */
			memmove(r->body + 1, r->body + 19, (size_t)len - 19);
			r->len = (size_t)len - 18;
			r->status = 200;
		}
	}
	cJSON_Delete(doc);
	if (r->status != 200) {
		r->body = http_error_body("redis_unavailable", "the order's state could not be read");
		r->len = r->body ? strlen(r->body) : 0;
	}
	server_http_ready(r->wsi, lws_wsi_user(r->wsi));
}

/* GET /v1/orders/{ID}?token=T: the snapshot as plain JSON, for clients without websockets. */
static int server_order_get(gateway_t *g, struct lws *wsi, session_t *s, const char *id, int method)
{
	char why[96];
	int64_t exp;
	order_read_t *r;

	if (method != METHOD_GET)
		return server_error(g, wsi, 405, "method_not_allowed", "use GET", true, "GET");
	if (!proto_order_id_valid(id, strlen(id)))
		return server_error(g, wsi, 400, "invalid_order_id",
				    "the order id must be 1-128 characters of A-Z a-z 0-9 . _ ~ -",
				    false, NULL);
	if (g->cfg->token_keys.n) {
		char qbuf[HTTP_QUERY_MAX];
		const char *token;
		size_t token_len;
		query_t query;
		auth_result_t ar;
		int rc = QUERY_TOO_MANY;

		if (http_query(wsi, &query, qbuf, sizeof(qbuf)) != 0 ||
		    !server_query_arg(&query, "token", &token, &token_len, &rc)) {
			g->metrics.refused[REFUSE_QUERY]++;
			return server_error(g, wsi, 400, "invalid_query",
					    server_query_problem(rc, "token"), false, NULL);
		}
		ar = auth_check(&g->cfg->token_keys, token, token_len, id, (int64_t)time(NULL), &exp,
				why, sizeof(why));
		if (ar != AUTH_OK) {
			g->metrics.refused[ar == AUTH_FORBIDDEN ? REFUSE_TOKEN_ORDER : REFUSE_TOKEN]++;
			return server_error(g, wsi, ar == AUTH_FORBIDDEN ? 403 : 401,
					    ar == AUTH_FORBIDDEN ? "forbidden" : "unauthorized", why,
					    false, NULL);
		}
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return server_error(g, wsi, 503, "out_of_memory", "retry later", false, NULL);
	r->wsi = wsi;
	snprintf(r->order_id, sizeof(r->order_id), "%s", id);
	if (broker_snapshot(g->broker, id, server_order_read_done, r, &r->req) != BROKER_OK) {
		free(r);
		return server_error(g, wsi, 503, "redis_unavailable",
				    "the state store is unreachable; retry later", false, NULL);
	}
	s->read = r;
	s->phase = HTTP_WAITING;
	server_http_hold(wsi, s);
	return 0;
}

static int server_http(gateway_t *g, struct lws *wsi, session_t *s, const char *path)
{
	http_method_t m = server_method(wsi);

	s->kind = SESSION_HTTP;
	if (g->stopping && strcmp(path, "/healthz") && strcmp(path, "/readyz") &&
	    strcmp(path, "/metrics"))
		/* Requests read before the drain began are answered; later ones go elsewhere. */
		return server_error(g, wsi, 503, "shutting_down",
				    "this node is shutting down; retry (another node answers)", true,
				    NULL);
	if ((m == METHOD_GET || m == METHOD_HEAD) && http_body_declared(wsi))
		/* Its answer could only come after the body: refuse it at the head (and close). */
		return server_error(g, wsi, 400, "body_not_allowed",
				    "a GET or HEAD request carries no body", true, NULL);
	if (!strcmp(path, "/healthz")) {
		if (m != METHOD_GET && m != METHOD_HEAD)
			return server_error(g, wsi, 405, "method_not_allowed", "use GET", true, "GET, HEAD");
		if (g->stopping)
			return server_error(g, wsi, 503, "shutting_down", "draining", true, NULL);
		return server_reply_json(g, wsi, 200, "{\"status\":\"ok\"}");
	}
	bool metrics_port = server_on_metrics_port(g, wsi);

	if (!strcmp(path, "/metrics") && (!g->cfg->metrics_port || metrics_port)) {
		char *text;
		size_t tlen;
		int rc;

		if (m != METHOD_GET && m != METHOD_HEAD)
			return server_error(g, wsi, 405, "method_not_allowed", "use GET", true, "GET");
		text = metrics_render(g, &tlen);
		if (!text)
			return server_error(g, wsi, 503, "out_of_memory", "retry", false, NULL);
		rc = http_reply(wsi, 200, "text/plain; version=0.0.4", text, tlen, false, NULL);
		free(text);
		return rc;
	}
	if (metrics_port)
		return server_error(g, wsi, 404, "not_found", "this address serves /metrics only", false,
				    NULL);
	if (!strcmp(path, "/readyz")) {
		if (m != METHOD_GET && m != METHOD_HEAD)
			return server_error(g, wsi, 405, "method_not_allowed", "use GET", true, "GET, HEAD");
		if (g->stopping)
			return server_error(g, wsi, 503, "shutting_down", "draining", true, NULL);
		if (!broker_ready(g->broker))
			return server_error(g, wsi, 503, "redis_unavailable",
					    "a Redis connection is down", false, NULL);
		return server_reply_json(g, wsi, 200, "{\"status\":\"ready\"}");
	}
	if (!strcmp(path, "/v1/updates")) {
		if (m != METHOD_POST)
			return server_error(g, wsi, 405, "method_not_allowed", "use POST", true,
					    "POST");
		return server_body_start(g, wsi, s, 0, true);
	}
	if (!strncmp(path, "/v1/orders/", 11))
		return server_order_get(g, wsi, s, path + 11, m);
	if (!strncmp(path, "/t/", 3))
		return page_serve(&g->page, wsi, path + 3, m == METHOD_GET || m == METHOD_HEAD);
	if (!strncmp(path, "/v1/webhooks/", 13))
		return server_webhook_start(g, wsi, s, path + 13, m);
	if (!strncmp(path, "/v1/track/", 10)) {
		const char *id = path + 10;

		if (m != METHOD_GET)
			return server_error(g, wsi, 405, "method_not_allowed",
					    "use GET with a websocket upgrade", true, "GET");
		if (!proto_order_id_valid(id, strlen(id)))
			return server_error(g, wsi, 400, "invalid_order_id",
					    "the order id must be 1-128 characters of "
					    "A-Z a-z 0-9 . _ ~ -", false, NULL);
		return server_error(g, wsi, 426, "upgrade_required",
				    "this endpoint is a websocket: send Upgrade: websocket", false,
				    NULL);
	}
	return server_error(g, wsi, 404, "not_found", "no such endpoint", false, NULL);
}

/*
 * Writes the pending answer (HTTP_READY) and ends the transaction, or the
 * connection when input was pipelined behind it or the server is draining.
 * Returns what the lws callback must return; lws frees s with the
 * transaction, so nothing may touch s after this.
 */
static int server_http_write(gateway_t *g, struct lws *wsi, session_t *s)
{
	bool close = s->pipelined || g->stopping;
	ingest_t *ing = s->ingest;
	int rc;

	s->phase = HTTP_IDLE;
	if (s->read) {
		order_read_t *r = s->read;

		s->read = NULL;
		rc = http_reply(wsi, r->status, "application/json", r->body ? r->body : "{}",
				r->body ? r->len : 2, close, NULL);
		server_order_read_free(r);
		return rc;
	}
	if (!ing)
		return -1;
	s->ingest = NULL;
	rc = server_ingest_write(g, wsi, ing, close);
	ingest_free(ing);
	gateway_maybe_finish(g);
	return rc;
}

/* 503 "pipelined" and close, before anything of the request is stored. */
static int server_refuse_pipelined(gateway_t *g, struct lws *wsi, session_t *s)
{
	ingest_free(s->ingest);
	s->ingest = NULL;
	s->phase = HTTP_IDLE;
	g->metrics.refused[REFUSE_PIPELINED]++;
	log_event(LOG_INFO, "http_pipelined", "action=refused");
	return server_error(g, wsi, 503, "pipelined",
			    "requests were pipelined behind this one; nothing was stored: "
			    "send each request after the answer to the one before",
			    true, NULL);
}

/* lws offers input while s's answer is pending: bytes pipelined behind the request. */
static int server_http_pipelined(gateway_t *g, struct lws *wsi, session_t *s)
{
	s->pipelined = 1;
	switch (s->phase) {
	case HTTP_READY:
		return server_http_write(g, wsi, s);
	case HTTP_QUEUED:
		/*
		 * Offered again before the loop turn ended.  lws offers a body
		 * completion a second time for a request it parsed from its own
		 * buffer; more than that is its loop inside one call, which only
		 * a close ends.  Nothing is stored yet.
		 */
		if (++s->reoffers < SERVER_REOFFERS_MAX) {
			s->pipelined = 0;
			return 0;
		}
		server_queue_del(s);
		return server_refuse_pipelined(g, wsi, s);
	case HTTP_WAITING:
		server_http_hold(wsi, s);
		return 0;
	default:
		return -1;
	}
}

bool server_has_queued(void)
{
	return server_queue != NULL;
}

/* Hands the request bodies completed this loop turn to ingest (see server_queue). */
void server_after_io(gateway_t *g)
{
	session_t *s;

	while ((s = server_queue)) {
		struct lws *wsi = s->w.conn;
		char uri[256];
		bool webhook, now;

		server_queue_del(s);
		s->phase = HTTP_WAITING;
		webhook = lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_POST_URI) >= 13 &&
			  !strncmp(uri, "/v1/webhooks/", 13);
		now = webhook ? server_webhook_finish(g, wsi, s) : ingest_finish(s->ingest);
		if (now)
			server_http_ready(wsi, s);
		else if (s->phase == HTTP_WAITING)
			server_http_hold(wsi, s);
	}
}

/* --- the protocol callback --------------------------------------------------- */

static int server_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
			   void *in, size_t len)
{
	gateway_t *g = server_gateway(wsi);
	session_t *s = user;

	switch (reason) {
	case LWS_CALLBACK_WSI_CREATE:
		g->n_conns++;
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		if (g->n_conns)
			g->n_conns--;
		return 0;

	case LWS_CALLBACK_HTTP:
		if (s->phase != HTTP_IDLE)
			return server_http_pipelined(g, wsi, s);
		if (g->n_conns > g->cfg->max_connections)
			return server_error(g, wsi, 503, "overloaded", "server full, try again later",
					    true, NULL);
	{
		int rc;

		http_head_begin(wsi); /* an answer before the body closes (see http.h) */
		rc = server_http(g, wsi, s, in ? (const char *)in : "");
		http_head_end();
		return rc;
	}
	case LWS_CALLBACK_HTTP_BODY:
		if (!s->ingest || s->phase != HTTP_BODY)
			return -1;
		if (!s->body_seen++ && http_body_is_own_head(in, len))
			/* lws parses this request from its buffer (see http.h): end it now. */
			return server_refuse_pipelined(g, wsi, s);
		if (ingest_body(s->ingest, in, len))
			return server_error(g, wsi, 400, "bad_request",
					    "the body is longer than its Content-Length", true,
					    NULL);
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (s->phase == HTTP_BODY) {
			server_queue_add(wsi, s);
			return 0;
		}
		if (s->phase != HTTP_IDLE)
			return server_http_pipelined(g, wsi, s);
		return -1;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (s->phase != HTTP_READY)
			return 0;
		return server_http_write(g, wsi, s);
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (!s)
			return 0;
		server_queue_del(s);
		s->phase = HTTP_IDLE;
		if (s->read) {
			server_order_read_free(s->read);
			s->read = NULL;
		}
		if (s->ingest) {
			ingest_free(s->ingest);
			s->ingest = NULL;
			gateway_maybe_finish(g);
		}
		return 0;

	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		if (g->stopping)
			return 1;
		return 0;
	case LWS_CALLBACK_ESTABLISHED:
		server_ws_established(g, wsi, s);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return server_ws_writeable(wsi, s);
	case LWS_CALLBACK_RECEIVE:
		server_ka_alive(g, s);
		return server_ws_receive(wsi, s, in, len);
	case LWS_CALLBACK_RECEIVE_PONG:
		server_ka_alive(g, s);
		return 0;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		/* lws answers the close: nothing may be written after it (RFC 6455 5.5.1). */
		if (!s->close_code) {
			s->close_code = 1000;
			s->close_reason = "closed by the client";
		}
		s->close_sent = 1;
		s->w.state = WATCHER_CLOSING;
		outq_clear(&s->w.q);
		return server_ws_peer_close(wsi, in, len);
	case LWS_CALLBACK_CLOSED:
		server_ka_unlink(g, s);
		if (s->w.sync_req) {
			broker_req_cancel(s->w.sync_req);
			s->w.sync_req = NULL;
		}
		server_wheel_del(g, &s->w);
		hub_leave(&g->hub, &s->w);
		server_client_release(s);
		gateway_maybe_finish(g);
		return 0;

	default:
		break;
	}
	return 0;
}

const struct lws_protocols server_protocols[] = {
	{
		.name = "trackgate",
		.callback = server_callback,
		.per_session_data_size = sizeof(session_t),
		.rx_buffer_size = WS_RX_BUFFER,
		/* Without it lws 4.1 cuts every send to rx_buffer_size + LWS_PRE + 4 bytes:
		 * a 250-byte frame went out in two send()s and a wait for POLLOUT. */
		.tx_packet_size = WS_TX_PACKET,
	},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};
