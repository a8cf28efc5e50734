/*
 * metrics.h - trackgated's counters and histograms, and GET /metrics in the
 * Prometheus text format (version 0.0.4).
 *
 * Everything here is plain counters updated on the loop thread; rendering
 * walks them once per scrape.  What one process contributes to a scrape is
 * a metrics_sample_t: its metrics_t, the counters other modules keep (hub,
 * broker, listeners) and its gauges, read from the gateway through a
 * metrics_view_t.  A sample is nothing but uint64_t words, so the samples
 * of a worker group (group.h) add up word by word into the group's.
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

/* How one poll of a provider's API ended (trackgate_poll_requests_total). */
typedef enum metrics_poll_result {
	POLL_OK = 0,	    /* 2xx, the body parsed */
	POLL_UNAUTHORIZED,  /* 401 / 403 */
	POLL_RATE_LIMITED,  /* 429 */
	POLL_HTTP_ERROR,    /* any other status */
	POLL_TIMEOUT,	    /* no whole answer within timeout-ms */
	POLL_CONNECT_ERROR, /* no connection: refused, DNS, TLS */
	POLL_MALFORMED,	    /* a 2xx whose body is not the provider's document, or too large */
	POLL_RESULT__COUNT
} metrics_poll_result_t;

/* What became of a polled answer (trackgate_poll_updates_total). */
typedef enum metrics_poll_update {
	POLL_UPDATE_APPLIED = 0,
	POLL_UPDATE_STALE,
	POLL_UPDATE_DUPLICATE,
	POLL_UPDATE_WITHHELD,
	POLL_UPDATE_EMPTY,	 /* nothing to track in it yet */
	POLL_UPDATE_UNAVAILABLE, /* Redis could not store it */
	POLL_UPDATE__COUNT
} metrics_poll_update_t;

/* Where a watched order stands in poll mode (trackgate_poll_orders). */
typedef enum metrics_poll_state {
	POLL_STATE_IDLE = 0, /* no source, or its provider is not polled */
	POLL_STATE_WAITING,  /* another node holds its lease */
	POLL_STATE_POLLING,  /* this process holds its lease and polls */
	POLL_STATE_DONE,     /* terminal: no more polls */
	POLL_STATE__COUNT
} metrics_poll_state_t;

/*
 * Cumulative buckets (observations <= the bucket's bound), rendered with
 * their bounds and sum in seconds, as Prometheus names base units.
 */
typedef struct metrics_hist {
	uint64_t bucket[METRICS_BUCKETS]; /* observations <= the bucket's bound */
	uint64_t count;
	uint64_t sum_ns; /* the observations' sum, in nanoseconds (a word that adds up) */
} metrics_hist_t;

#define METRICS_STATUSES 12

typedef struct metrics {
	uint64_t refused[REFUSE__COUNT];
	uint64_t resumes[RESUME__COUNT];
	uint64_t requests[METRICS_PROVIDERS][METRICS_STATUSES]; /* by provider and answer status */
	uint64_t updates[METRICS_PROVIDERS][RESULT__COUNT];	/* by provider and result */
	uint64_t frames_written;				/* websocket frames written */
	uint64_t frames_dropped; /* frames discarded when a watcher was closed behind */
	uint64_t pong_timeouts;	 /* websockets hung up on: no pong within pong-timeout */
	uint64_t poll_requests[METRICS_PROVIDERS][POLL_RESULT__COUNT]; /* by provider, result */
	uint64_t poll_updates[METRICS_PROVIDERS][POLL_UPDATE__COUNT];
	uint64_t poll_tokens[METRICS_PROVIDERS][2]; /* OAuth token requests: [0] ok, [1] failed */
	uint64_t poll_leases;			    /* poll leases this process acquired */
	metrics_hist_t ingest_latency;		    /* request complete -> answer ready */
	metrics_hist_t update_age;		    /* update ts -> frame written to a websocket */
	metrics_hist_t loop_busy; /* one loop iteration's work, its wait for events excluded */
} metrics_t;

/* One observation, in milliseconds (what the loop's clocks give); < 0 counts as 0. */
void metrics_observe(metrics_hist_t *h, double ms);

/*
 * One answered ingest request: status, its per-result counts, and how long
 * it took from a complete body to the answer (< 0: refused before the body).
 */
void metrics_request(metrics_t *m, unsigned provider, unsigned status,
		     const unsigned results[RESULT__COUNT], double latency_ms);

/* The provider label of an index (0 = "canonical"). */
const char *metrics_provider_name(unsigned provider);
/* The result label of a poll ("ok", "timeout", ...). */
const char *metrics_poll_result_name(metrics_poll_result_t r);
/* The index of an adapter's name (its label); 0 when it is none. */
unsigned metrics_provider_index(const char *name);

/* What a scrape shows beside the counters: gauges, read when it is rendered. */
typedef struct metrics_view {
	const metrics_t *m;
	const hub_t *hub;
	const broker_stats_t *broker;
	bool redis_up;
	unsigned n_conns;	  /* sockets lws holds */
	listener_stats_t pending; /* the listeners' lobbies, summed */
} metrics_view_t;

/* The counters kept outside metrics_t: the hub's, the broker's, the listeners'. */
typedef struct metrics_counters {
	uint64_t frames_in, frames_queued, frames_coalesced, slow_closes;
	uint64_t redis_reconnects, redis_bad_replies, redis_subscriber_stalls;
	uint64_t first_byte_timeouts, head_timeouts, refused_per_client, adopt_failed;
} metrics_counters_t;

/* What is now.  A group's are the sums over its live workers. */
typedef struct metrics_gauges {
	uint64_t processes; /* serving processes counted: 1, or the group's live workers */
	uint64_t websockets, http_conns, pending, watched_orders, subscriptions;
	uint64_t redis_up; /* processes with both Redis connections up */
	uint64_t heap_in_use, heap_free;
	uint64_t poll_orders[POLL_STATE__COUNT]; /* watched orders by poll state */
} metrics_gauges_t;

/* What one process (or, summed, a group) shows; uint64_t words only. */
typedef struct metrics_sample {
	metrics_t m;
	metrics_counters_t c;
	metrics_gauges_t g;
} metrics_sample_t;

#define METRICS_SAMPLE_WORDS (sizeof(metrics_sample_t) / sizeof(uint64_t))

/* This process's sample, from v (metrics_t copied, gauges read now). */
void metrics_sample(metrics_sample_t *out, const metrics_view_t *v);

/* dst += src, word by word: counters, histograms and gauges alike. */
void metrics_sample_add(metrics_sample_t *dst, const metrics_sample_t *src);

/*
 * The standard process metrics (process_*), of one process or summed over
 * a group's: CPU time, resident memory and open descriptors add up; the
 * descriptor limit and the start time are one process's.
 */
typedef struct metrics_process {
	uint64_t cpu_ns;	 /* user + system */
	uint64_t resident_bytes; /* RSS */
	uint64_t open_fds;
	uint64_t max_fds;    /* RLIMIT_NOFILE's soft limit */
	double start_time_s; /* since the epoch */
} metrics_process_t;

/*
 * Adds process pid's CPU time, RSS and open descriptors (from /proc) to *p
 * and, when with_start, sets its start time and descriptor limit.  A
 * process that is gone adds nothing: -1.
 */
int metrics_process_add(metrics_process_t *p, int pid, int with_start);

/* The whole exposition of sample s and process p, malloc'd (the caller frees); NULL on OOM. */
char *metrics_render(const metrics_sample_t *s, const metrics_process_t *p, size_t *len);

#endif
