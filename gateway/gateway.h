/*
 * gateway.h - one trackgated process: its lifecycle.  The loop, the lws
 * context on it, the listeners, signals (SIGTERM's drain, SIGHUP's reload),
 * systemd's readiness and watchdog; what is served is the server's
 * (server.h).
 */
#ifndef TRACKGATE_GATEWAY_H
#define TRACKGATE_GATEWAY_H

#include <stdbool.h>
#include <stdint.h>

#include <libwebsockets.h>
#include <uv.h>

#include "config.h"
#include "server.h"

struct lws_context;
struct lws_vhost;

typedef struct gateway {
	uv_loop_t *loop;
	const config_t *cfg;
	server_t server;	 /* everything a connection touches */
	struct lws_context *lws; /* NULLed by lws when it is finally destroyed */
	struct lws_vhost *vhost;
	struct listener *listener; /* the listening socket; NULL once draining */
	struct listener *metrics_listener;
	uv_signal_t sigint;
	uv_signal_t sigterm;
	uv_signal_t sighup;
	uv_timer_t drain_timer;
	uv_timer_t tick;       /* readiness, watchdog and the server's tick, twice a second */
	uv_check_t loop_check; /* after each iteration's I/O: the server's deferred work, the
				* drain's end, metrics.loop_busy */
	bool loop_metrics;     /* libuv measures idle time: loop_busy is observed */
	uint64_t loop_mark_ns; /* uv_hrtime() at the last check; 0 before the first */
	uint64_t loop_idle_ns; /* uv_metrics_idle_time() at the last check */
	bool notified_ready;   /* READY=1 was sent */
	bool reloading;	       /* a SIGHUP TLS reload is reading files in the thread pool */
	bool reloading_config; /* a SIGHUP config reload is reading files in the thread pool */
	bool reload_pending;   /* another SIGHUP came meanwhile: reload again after */
	bool tls_reload_pending;
	int argc; /* the command line, for SIGHUP's re-read */
	char **argv;
	bool watchdog;	      /* systemd's WatchdogSec is set: ping from the tick */
	lws_retry_bo_t retry; /* websocket ping/hangup policy, from the config */
	bool stopping;	      /* SIGINT/SIGTERM seen: draining */
	bool finished;	      /* the teardown has started */
} gateway_t;

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

#endif
