/*
 * server.c - one lws protocol for everything trackgated serves: plain HTTP
 * (http/) and tracking websockets (ws/), dispatched from lws's callbacks by
 * the session's kind; and the state both read (server.h).
 *
 * A connection's state lives in its lws per-session data (session_t): the
 * HTTP or the websocket half, whichever the connection is.
 */
#include "server.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "group.h"
#include "log.h"

#define WS_RX_BUFFER 128   /* clients send nothing but control frames (<= 125 bytes) */
#define WS_TX_PACKET 65536 /* the most one send() may carry */

typedef enum session_kind {
	SESSION_NONE = 0, /* lws has not said yet */
	SESSION_HTTP,
	SESSION_WS,
} session_kind_t;

typedef struct session {
	uint8_t kind; /* session_kind_t */
	union {
		http_session_t http;
		ws_session_t ws;
	} u;
} session_t;

static server_t *server_of(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

static void server_set_wall_offset(server_t *sv)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	sv->wall_offset_ms =
	    (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 - (int64_t)uv_now(sv->loop);
}

static void server_sample_cb(void *arg, metrics_sample_t *out)
{
	server_sample(arg, out);
}

int server_init(server_t *sv, uv_loop_t *loop, const config_t *cfg, const server_events_t *ev)
{
	memset(sv, 0, sizeof(*sv));
	sv->loop = loop;
	sv->cfg = cfg;
	sv->metrics = group_own_metrics();
	if (!sv->metrics)
		sv->metrics = &sv->own_metrics;
	hub_init(&sv->hub, &ws_hub_ops, &sv->ws, cfg->outq_limit,
		 (uint64_t)cfg->slow_timeout_s * 1000);
	ratelimit_init(&sv->rates, cfg->upgrade_rate, cfg->upgrade_burst, cfg->ingest_rate,
		       cfg->ingest_burst);
	sv->ws = (ws_t){
	    .loop = loop,
	    .cfg = cfg,
	    .hub = &sv->hub,
	    .metrics = sv->metrics,
	    .rates = &sv->rates,
	    .stopping = &sv->stopping,
	    .n_conns = &sv->n_conns,
	    .wall_offset_ms = &sv->wall_offset_ms,
	};
	sv->http = (http_t){
	    .loop = loop,
	    .cfg = cfg,
	    .hub = &sv->hub,
	    .metrics = sv->metrics,
	    .rates = &sv->rates,
	    .stopping = &sv->stopping,
	    .n_conns = &sv->n_conns,
	    .pending = ev->pending,
	    .pending_arg = ev->arg,
	    .sample = server_sample_cb,
	    .sample_arg = sv,
	};
	server_set_wall_offset(sv);
	if (page_init(&sv->http.page, cfg)) {
		log_event(LOG_ERROR, "out_of_memory", "what=\"the tracking page\"");
		return -1;
	}
	return 0;
}

/* --- the broker's events, to the hub ----------------------------------------- */

static void server_on_message(void *arg, const char *order_id, size_t id_len, const char *payload,
			      size_t len, uint64_t now_ms)
{
	hub_message(arg, order_id, id_len, payload, len, now_ms);
}

static void server_on_subscribed(void *arg, const char *order_id, size_t id_len)
{
	hub_subscribed(arg, order_id, id_len);
}

static void server_on_unsubscribed(void *arg, const char *order_id, size_t id_len)
{
	hub_unsubscribed(arg, order_id, id_len);
}

static void server_on_subscriber_up(void *arg)
{
	hub_redis_up(arg);
}

static void server_on_subscriber_down(void *arg)
{
	hub_redis_down(arg);
}

static void server_on_commands_up(void *arg)
{
	hub_commands_up(arg);
}

int server_start(server_t *sv)
{
	const config_t *cfg = sv->cfg;
	const broker_config_t bcfg = {
	    .redis_unix = cfg->redis_unix,
	    .redis_host = cfg->redis_host,
	    .redis_port = cfg->redis_port,
	    .timeout_ms = cfg->redis_timeout_ms,
	    .ttl_active = cfg->ttl_active,
	    .ttl_terminal = cfg->ttl_terminal,
	    .log_maxlen = cfg->log_maxlen,
	    .courier_visible_from = cfg->courier_visible_from,
	    .sentinel = &cfg->redis_sentinel,
	};
	const broker_events_t ev = {
	    .message = server_on_message,
	    .subscribed = server_on_subscribed,
	    .unsubscribed = server_on_unsubscribed,
	    .subscriber_up = server_on_subscriber_up,
	    .subscriber_down = server_on_subscriber_down,
	    .commands_up = server_on_commands_up,
	    .arg = &sv->hub,
	};

	sv->broker = broker_new(sv->loop, &bcfg, &ev);
	if (!sv->broker || broker_start(sv->broker) != BROKER_OK) {
		log_event(LOG_ERROR, "broker_failed", "%s", "");
		return -1;
	}
	sv->ws.broker = sv->http.broker = sv->broker;
	if (cfg->n_polls) {
		sv->poller =
		    poller_new(sv->loop, sv->broker, cfg, &sv->metrics, &sv->wall_offset_ms);
		if (!sv->poller)
			return -1; /* logged */
		sv->ws.poller = sv->poller;
	}
	return 0;
}

void server_tick(server_t *sv)
{
	server_set_wall_offset(sv);
	/* Always: a reload may remove every key while tokened watchers remain. */
	ws_expire_tokens(&sv->ws, (int64_t)time(NULL));
	ws_keepalive(&sv->ws, uv_now(sv->loop));
	if (++sv->ticks % 20 == 0)
		ratelimit_sweep(&sv->rates, uv_now(sv->loop)); /* every 10 s */
}

void server_after_io(server_t *sv)
{
	http_after_io(&sv->http);
}

void server_stop(server_t *sv)
{
	sv->stopping = true;
	ws_close_all(&sv->ws, 1001, "server shutting down, reconnect");
}

bool server_idle(const server_t *sv)
{
	return sv->stopping && sv->hub.n_watchers == 0 && http_idle(&sv->http);
}

bool server_ready(const server_t *sv)
{
	return sv->broker && broker_ready(sv->broker);
}

void server_sample(server_t *sv, metrics_sample_t *out)
{
	static const broker_stats_t none;
	metrics_view_t v = {
	    .m = sv->metrics,
	    .hub = &sv->hub,
	    .broker = sv->broker ? broker_stats(sv->broker) : &none,
	    .redis_up = server_ready(sv),
	    .n_conns = sv->n_conns,
	};

	if (sv->http.pending)
		v.pending = sv->http.pending(sv->http.pending_arg);
	metrics_sample(out, &v);
	poller_counts(sv->poller, out->g.poll_orders);
}

/* The poller's handles are closed (its lease releases sent): the broker goes next. */
static void server_poller_stopped(void *arg)
{
	server_t *sv = arg;

	if (sv->broker)
		broker_stop(sv->broker, sv->closed, sv->closed_arg);
	else
		sv->closed(sv->closed_arg);
}

void server_close(server_t *sv, void (*done)(void *arg), void *arg)
{
	sv->closed = done;
	sv->closed_arg = arg;
	if (sv->poller)
		poller_stop(sv->poller, server_poller_stopped, sv);
	else
		server_poller_stopped(sv);
}

void server_free(server_t *sv)
{
	poller_free(sv->poller);
	sv->poller = NULL;
	sv->ws.poller = NULL;
	broker_free(sv->broker);
	sv->broker = NULL;
	hub_destroy(&sv->hub);
	ws_free(&sv->ws);
	ratelimit_free(&sv->rates);
	page_free(&sv->http.page);
}

/* --- the protocol callback --------------------------------------------------- */

static int server_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			   size_t len)
{
	session_t *s = user;
	server_t *sv;

	switch (reason) {
	case LWS_CALLBACK_WSI_CREATE:
		server_of(wsi)->n_conns++;
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		sv = server_of(wsi);
		if (sv->n_conns)
			sv->n_conns--;
		return 0;

	case LWS_CALLBACK_HTTP:
		s->kind = SESSION_HTTP;
		return http_on_head(&server_of(wsi)->http, wsi, &s->u.http,
				    in ? (const char *)in : "");
	case LWS_CALLBACK_HTTP_BODY:
		return s->kind == SESSION_HTTP ? http_on_body(&s->u.http, in, len) : -1;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return s->kind == SESSION_HTTP ? http_on_body_done(&s->u.http) : -1;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return s && s->kind == SESSION_HTTP ? http_on_writeable(&s->u.http) : 0;
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (s && s->kind == SESSION_HTTP)
			http_on_closed(&s->u.http);
		return 0;

	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return server_of(wsi)->stopping ? 1 : 0;
	case LWS_CALLBACK_ESTABLISHED:
		s->kind = SESSION_WS;
		ws_established(&server_of(wsi)->ws, wsi, &s->u.ws);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return s->kind == SESSION_WS ? ws_writeable(&s->u.ws) : 0;
	case LWS_CALLBACK_RECEIVE:
		return s->kind == SESSION_WS ? ws_receive(&s->u.ws, in, len) : 0;
	case LWS_CALLBACK_RECEIVE_PONG:
		if (s->kind == SESSION_WS)
			ws_pong(&s->u.ws);
		return 0;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		return s->kind == SESSION_WS ? ws_peer_close(&s->u.ws, in, len) : 0;
	case LWS_CALLBACK_CLOSED:
		if (s && s->kind == SESSION_WS)
			ws_closed(&s->u.ws);
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
