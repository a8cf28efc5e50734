/*
 * metrics.h - trackgated's counters and histograms, and GET /metrics in the
 * Prometheus text format (version 0.0.4).
 *
 * Everything here is plain counters updated on the loop thread; rendering
 * walks them once per scrape.  Gauges (connections, orders, subscriptions,
 * Redis state) are read from the gateway at scrape time.
 */
#ifndef TRACKGATE_METRICS_H
#define TRACKGATE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "hub.h"
#include "listener.h"

/* Index 0 is POST /v1/updates ("canonical"), then the adapters in registry order. */
#define METRICS_PROVIDERS 8
#define METRICS_BUCKETS 14

typedef enum metrics_refusal {
	REFUSE_ACCEPT_LIMIT = 0, /* closed at accept: far past max-connections, or stopping */
	REFUSE_OVERLOADED,	 /* 503 / 1013 past max-connections */
	REFUSE_PER_CLIENT,	 /* 1008 past max-per-client */
	REFUSE_STOPPING,	 /* 1001 to a websocket opened while draining */
	REFUSE_NOT_FOUND,	 /* 4404: no such websocket endpoint */
	REFUSE_ORDER_ID,	 /* 4400: invalid order id */
	REFUSE_CURSOR,		 /* 4400: invalid since */
	REFUSE_CLIENT_MESSAGE,	 /* 1009: a client message too large */
	REFUSE_TOKEN,		 /* 4401 / 401: no, bad or expired token */
	REFUSE_TOKEN_ORDER,	 /* 4403 / 403: a token for another order */
	REFUSE_ORIGIN,		 /* 1008: an Origin not in allowed-origins */
	REFUSE_RATE,		 /* 429 / 1013: over the per-address rate */
	REFUSE_QUERY,		 /* 4400 / 400: a query argument given twice, or too many */
	REFUSE_PIPELINED,	 /* 503: a request lws offered with more pipelined behind it */
	REFUSE__COUNT
} metrics_refusal_t;

/* How a replay from the log ended (a resume with since, or a resync after an outage). */
typedef enum metrics_resume {
	RESUME_REPLAYED = 0,   /* the missed frames were sent */
	RESUME_NOTHING_MISSED, /* the cursor was the newest: nothing to send */
	RESUME_RESET,	       /* the log could not serve the cursor whole: a reset snapshot */
	RESUME__COUNT
} metrics_resume_t;

typedef enum metrics_result {
	RESULT_APPLIED = 0,
	RESULT_STALE,
	RESULT_DUPLICATE,
	RESULT_WITHHELD,
	RESULT_INVALID,
	RESULT_UNAVAILABLE,
	RESULT__COUNT
} metrics_result_t;

/* Cumulative buckets in milliseconds (le), as Prometheus wants them. */
typedef struct metrics_hist {
	uint64_t bucket[METRICS_BUCKETS]; /* observations <= the bucket's bound */
	uint64_t count;
	double sum;
} metrics_hist_t;

#define METRICS_STATUSES 12

typedef struct metrics {
	uint64_t refused[REFUSE__COUNT];
	uint64_t resumes[RESUME__COUNT];
	uint64_t requests[METRICS_PROVIDERS][METRICS_STATUSES]; /* by provider and answer status */
	uint64_t updates[METRICS_PROVIDERS][RESULT__COUNT];	/* by provider and result */
	uint64_t frames_written;				/* websocket frames written */
	uint64_t frames_dropped;       /* frames discarded when a watcher was closed behind */
	uint64_t pong_timeouts;	       /* websockets hung up on: no pong within pong-timeout */
	metrics_hist_t ingest_latency; /* request complete -> answer ready (ms) */
	metrics_hist_t update_age;     /* update ts -> frame written to a websocket (ms) */
	metrics_hist_t loop_busy; /* one loop iteration's work, its wait for events excluded (ms) */
} metrics_t;

void metrics_observe(metrics_hist_t *h, double ms);

/*
 * One answered ingest request: status, its per-result counts, and how long
 * it took from a complete body to the answer (< 0: refused before the body).
 */
void metrics_request(metrics_t *m, unsigned provider, unsigned status,
		     const unsigned results[RESULT__COUNT], double latency_ms);

/* The provider label of an index (0 = "canonical"). */
const char *metrics_provider_name(unsigned provider);

/* What a scrape shows beside the counters: gauges, read when it is rendered. */
typedef struct metrics_view {
	const metrics_t *m;
	const hub_t *hub;
	const broker_stats_t *broker;
	bool redis_up;
	unsigned n_conns;	  /* sockets lws holds */
	listener_stats_t pending; /* the listeners' lobbies, summed */
} metrics_view_t;

/* The whole exposition, malloc'd (the caller frees); NULL on OOM. */
char *metrics_render(const metrics_view_t *v, size_t *len);

#endif
