/*
 * gateway.h - one trackgated process: its loop, the lws context on it, the
 * hub, the broker, and the start/stop sequence.
 */
#ifndef TRACKGATE_GATEWAY_H
#define TRACKGATE_GATEWAY_H

#include <stdbool.h>
#include <stdint.h>

#include <libwebsockets.h>
#include <uv.h>

#include "broker.h"
#include "config.h"
#include "hub.h"
#include "metrics.h"
#include "page.h"
#include "ratelimit.h"

struct lws_context;
struct lws_vhost;

#define GATEWAY_WHEEL 4096 /* seconds; a token further out waits for later turns */

typedef struct gateway_stats {
	uint64_t ingest_requests;
	uint64_t ingest_applied;
	uint64_t ingest_stale;
	uint64_t ingest_duplicate;
	uint64_t ingest_invalid;
	uint64_t ingest_unavailable; /* requests answered 503 */
	uint64_t ws_opened;
	uint64_t ws_refused;
	uint64_t http_errors;        /* 4xx/5xx answers */
	uint64_t refused_at_accept;  /* sockets closed at accept (stopping, far past the limit) */
} gateway_stats_t;

typedef struct gateway {
	uv_loop_t *loop;
	const config_t *cfg;
	struct lws_context *lws;  /* NULLed by lws when it is finally destroyed */
	struct lws_vhost *vhost;
	struct listener *listener; /* the listening socket; NULL once draining */
	broker_t *broker;
	hub_t hub;
	uv_signal_t sigint;
	uv_signal_t sigterm;
	uv_signal_t sighup;
	uv_timer_t drain_timer;
	uv_timer_t tick;          /* readiness, watchdog and gauges, twice a second */
	uv_check_t loop_check;    /* after each iteration's I/O: server_after_io, metrics.loop_busy */
	bool loop_metrics;        /* libuv measures idle time: loop_busy is observed */
	uint64_t loop_mark_ns;    /* uv_hrtime() at the last check; 0 before the first */
	uint64_t loop_idle_ns;    /* uv_metrics_idle_time() at the last check */
	bool notified_ready;      /* READY=1 was sent */
	bool reloading;           /* a SIGHUP TLS reload is reading files in the thread pool */
	bool reloading_config;    /* a SIGHUP config reload is reading files in the thread pool */
	bool reload_pending;      /* another SIGHUP came meanwhile: reload again after */
	bool tls_reload_pending;
	unsigned ticks;
	int argc;                 /* the command line, for SIGHUP's re-read */
	char **argv;
	unsigned last_error_status; /* the status of the last http error answered */
	bool watchdog;            /* systemd's WatchdogSec is set: ping from the tick */
	lws_retry_bo_t retry;     /* websocket ping/hangup policy, from the config */
	unsigned n_ingest;        /* ingest requests handed to Redis and not yet answered */
	unsigned n_conns;         /* accepted sockets */
	bool stopping;            /* SIGINT/SIGTERM seen: draining */
	bool finished;            /* the teardown has started */
	gateway_stats_t stats;
	metrics_t metrics;
	ratelimit_t rates;        /* per-address token buckets */
	page_t page;              /* the tracking page, GET /t/{ID} */
	/* Watchers by token expiry second, GATEWAY_WHEEL buckets; the tick closes the due ones. */
	struct watcher *exp_wheel[GATEWAY_WHEEL];
	int64_t exp_swept_s;      /* the last second whose bucket was swept */
	struct listener *metrics_listener;
	/* Websocket keepalive (server.c): [0] waiting to be pinged, [1] waiting for a pong.
	 * FIFO queues, each in due order since all of its entries get the same delay. */
	struct session *ka_head[2], *ka_tail[2];
	int64_t wall_offset_ms;   /* wall clock (ms since the epoch) minus uv_now(), set by the tick */
} gateway_t;

/* The loop's current time on the wall clock, in ms since the epoch (no clock read). */
static inline int64_t gateway_wall_ms(const gateway_t *g)
{
	return (int64_t)uv_now(g->loop) + g->wall_offset_ms;
}

/*
 * Creates the lws context on loop, listens, starts the broker and the
 * signal handlers.  Returns 0, or -1 with the reason logged (the caller
 * then runs gateway_teardown and exits 1).
 */
int gateway_start(gateway_t *g, uv_loop_t *loop, const config_t *cfg);

/* Starts a graceful stop, as SIGTERM does. */
void gateway_shutdown(gateway_t *g, const char *why);

/* After uv_run returned: frees what is left; returns uv_loop_close's result. */
int gateway_teardown(gateway_t *g);

/* Closes the websockets whose token expired by now (server.c). */
void server_expire_tokens(gateway_t *g, int64_t now_s);

/* Called by the server when a watcher or an ingest request ends. */
void gateway_maybe_finish(gateway_t *g);

#endif
