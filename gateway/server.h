/*
 * server.h - what one trackgated process serves: the lws protocol that
 * answers plain HTTP (http/) and tracking websockets (ws/), and the state
 * they share.  The gateway (gateway.c) owns the process lifecycle and one
 * server_t; the server owns everything a connection touches.
 */
#ifndef TRACKGATE_SERVER_H
#define TRACKGATE_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <libwebsockets.h>
#include <uv.h>

#include "broker.h"
#include "config.h"
#include "hub.h"
#include "listener.h"
#include "metrics.h"
#include "ratelimit.h"
#include "poll/poller.h"
#include "http/http.h"
#include "ws/ws.h"

/* What the server asks of the process around it (the gateway fills it in). */
typedef struct server_events {
	/* The connections waiting in the listeners' lobbies, for /metrics. */
	listener_stats_t (*pending)(void *arg);
	void *arg;
} server_events_t;

typedef struct server {
	uv_loop_t *loop;
	const config_t *cfg;
	broker_t *broker;
	poller_t *poller; /* poll mode; NULL without [poll.*] sections */
	hub_t hub;
	metrics_t *metrics;    /* own_metrics, or this worker's slot of the group (group.h) */
	metrics_t own_metrics; /* a process outside a group counts here */
	ratelimit_t rates;     /* per-address token buckets, HTTP and websockets */
	ws_t ws;	       /* the websockets (ws/) */
	http_t http;	       /* plain HTTP (http/) */
	bool stopping;	       /* draining: new requests are refused */
	unsigned n_conns;      /* sockets lws holds (HTTP and websocket) */
	unsigned ticks;
	int64_t
	    wall_offset_ms; /* wall clock (ms since the epoch) minus uv_now(), set by the tick */
	void (*closed)(void *arg); /* server_close's */
	void *closed_arg;
} server_t;

/* The loop's current time on the wall clock, in ms since the epoch (no clock read). */
static inline int64_t server_wall_ms(const server_t *sv)
{
	return (int64_t)uv_now(sv->loop) + sv->wall_offset_ms;
}

/* Sets up what needs no I/O (hub, buckets, page); -1 (logged) when out of memory. */
int server_init(server_t *sv, uv_loop_t *loop, const config_t *cfg, const server_events_t *ev);

/* Starts the broker on the loop; -1 with the reason logged. */
int server_start(server_t *sv);

/* The vhost's protocol list: one protocol for HTTP and websockets, then the terminator.
 * The lws context's user pointer must be the server_t. */
extern const struct lws_protocols server_protocols[];

/* Twice a second: clocks, token expiry, keepalive, bucket sweeps. */
void server_tick(server_t *sv);

/* Runs at the end of each loop iteration (a uv_check): the work deferred to it. */
void server_after_io(server_t *sv);

/* Starts the drain: new requests get 503, every watcher is closed with 1001. */
void server_stop(server_t *sv);

/* Draining and nothing left to answer: no watcher, no request in Redis or queued. */
bool server_idle(const server_t *sv);

/* This process's sample for /metrics and the group (metrics.h): counters and gauges now. */
void server_sample(server_t *sv, metrics_sample_t *out);

/* Whether Redis is up (both connections). */
bool server_ready(const server_t *sv);

/* Stops the poller, then the broker; done(arg) runs once their handles are closed. */
void server_close(server_t *sv, void (*done)(void *arg), void *arg);

/* After the loop ran dry: frees what is left. */
void server_free(server_t *sv);

#endif
