/*
 * broker.h - trackgated's two Redis connections on the loop: the
 * subscriber (SUBSCRIBE/UNSUBSCRIBE trk:{ID}, the messages published there)
 * and the command connection (the apply script, snapshot and log reads, poll
 * sources and leases).
 *
 * Both are hiredis async contexts attached to the process's uv loop.  Each
 * reconnects by itself with capped exponential backoff and jitter; host
 * names are resolved with uv_getaddrinfo (the thread pool), never on the
 * loop thread.
 *
 * The broker is a Redis client and knows nothing of who watches what: what
 * happens on the connections it reports through a broker_events_t that its
 * owner fills in (the server hands the events to the hub, which resubscribes
 * every order when the subscriber is back).
 *
 * Requests that answer later (apply, snapshot, resume, source, lease, budget)
 * return a broker_req_t that the caller cancels if it goes away first: the
 * callback is then never called.  A callback is never called from within the
 * call that sent the request.
 */
#ifndef TRACKGATE_BROKER_H
#define TRACKGATE_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"

typedef struct broker broker_t;
typedef struct broker_req broker_req_t;

enum {
	BROKER_OK = 0,
	BROKER_EDOWN = -1, /* the connection is not up: nothing was sent */
	BROKER_ENOMEM = -2,
	BROKER_EREPLY = -3, /* Redis answered with an error or an unexpected reply */
	BROKER_ELOST = -4,  /* the connection went away before the reply */
};

typedef enum broker_result {
	BROKER_APPLIED = 0,
	BROKER_STALE,
	BROKER_DUPLICATE,
	BROKER_WITHHELD, /* only a courier position the privacy rule keeps back: nothing written */
} broker_result_t;

const char *broker_result_name(broker_result_t r);

/*
 * rc: BROKER_OK with result (and cursor for APPLIED), or a negative BROKER_E*
 * with a readable why (Redis's own error text for BROKER_EREPLY).
 */
typedef void broker_apply_fn(void *arg, int rc, broker_result_t result, const char *cursor,
			     const char *why);

/*
 * rc: BROKER_OK with the stored state JSON and cursor (each NULL when the
 * order has none), or a negative BROKER_E*.
 */
typedef void broker_snapshot_fn(void *arg, int rc, const char *state, size_t state_len,
				const char *cursor, size_t cursor_len);

typedef void broker_stopped_fn(void *arg);

typedef struct broker_stats {
	uint64_t reconnects;
	uint64_t subscriber_stalls; /* heartbeats that did not come back: subscriber reconnected */
	uint64_t script_loads;
	uint64_t bad_replies;
} broker_stats_t;

/*
 * What the broker reads of the configuration.  broker_new() copies it,
 * strings too: nothing of it needs to outlive the call.
 */
typedef struct broker_config {
	const char *redis_unix; /* a unix socket path; NULL or "" = TCP to host:port */
	const char *redis_host; /* a numeric address or a name to resolve */
	int redis_port;
	unsigned timeout_ms; /* connect timeout of each connection */
	unsigned ttl_active; /* the apply script's arguments: key lifetimes (s), */
	unsigned ttl_terminal;
	unsigned log_maxlen;		  /* the log's length, */
	const char *courier_visible_from; /* and the status that shows the courier */
	/* NULL or n == 0: redis_unix or redis_host; else the Sentinels' master (copied) */
	const config_sentinel_t *sentinel;
} broker_config_t;

/*
 * What the broker reports, each with arg, from its hiredis and libuv
 * callbacks on the loop, never from within a broker_* call (broker_stop
 * reports nothing).  Every member is set.
 */
typedef struct broker_events {
	/* A message published on trk:{ID}, received at now_ms (uv_now() of the loop). */
	void (*message)(void *arg, const char *order_id, size_t id_len, const char *payload,
			size_t len, uint64_t now_ms);
	/* Redis acknowledged a broker_subscribe / broker_unsubscribe of order_id. */
	void (*subscribed)(void *arg, const char *order_id, size_t id_len);
	void (*unsubscribed)(void *arg, const char *order_id, size_t id_len);
	/*
	 * The subscriber connection is up (the first time, and after each
	 * reconnect: it then holds no subscription) / went down after being up.
	 */
	void (*subscriber_up)(void *arg);
	void (*subscriber_down)(void *arg);
	/* The command connection is up (again): requests are taken. */
	void (*commands_up)(void *arg);
	void *arg;
} broker_events_t;

/* A broker that reports through a copy of *ev; NULL when out of memory. */
broker_t *broker_new(uv_loop_t *loop, const broker_config_t *cfg, const broker_events_t *ev);
/* Starts connecting both connections. */
int broker_start(broker_t *b);
/*
 * Disconnects both connections (pending requests are answered BROKER_ELOST)
 * and closes every handle; calls done(arg) once nothing of the broker is
 * left on the loop.  Then broker_free().
 */
void broker_stop(broker_t *b, broker_stopped_fn *done, void *arg);
void broker_free(broker_t *b);

/* Both connections are up. */
bool broker_ready(const broker_t *b);
/*
 * The subscriber is not known to be stalled: false from the moment its heartbeat
 * (trk:hb:{NODE}, published each second from the command connection) failed to come back
 * within 3 s, which reconnects it, until a heartbeat comes back on the new connection.
 */
bool broker_subscriber_healthy(const broker_t *b);
const broker_stats_t *broker_stats(const broker_t *b);

int broker_subscribe(broker_t *b, const char *order_id);
int broker_unsubscribe(broker_t *b, const char *order_id);

/* Applies one canonical update (JSON from proto_update_to_json) with the script. */
int broker_apply(broker_t *b, const char *order_id, const char *update_json, size_t len,
		 broker_apply_fn *fn, void *arg, broker_req_t **req);

/* Reads an order's state and cursor. */
int broker_snapshot(broker_t *b, const char *order_id, broker_snapshot_fn *fn, void *arg,
		    broker_req_t **req);

/*
 * The answer to broker_resume: either the frames logged after the cursor
 * (reset = false; possibly none), or reset = true with the state and cursor
 * (each NULL when absent) because the log no longer holds all of them.
 */
typedef struct broker_resume_result {
	bool reset;
	size_t n_frames;
	const char *const *frames;
	const size_t *frame_lens;
	const char *state;
	size_t state_len;
	const char *cursor;
	size_t cursor_len;
} broker_resume_result_t;

typedef void broker_resume_fn(void *arg, int rc, const broker_resume_result_t *r);

/* Reads what an order's log holds after cursor (at most max frames). */
int broker_resume(broker_t *b, const char *order_id, const char *cursor, unsigned max,
		  broker_resume_fn *fn, void *arg, broker_req_t **req);

/*
 * An order's poll source: the JSON document PUT /v1/orders/{ID}/source
 * stored (http/sources.c writes it, broker.c does not read it), under
 * proto_poll_keys_t.source, beside the order's other keys.
 *
 * rc: BROKER_OK with found (set: true; get: a source is stored, json and len
 * are its bytes, valid during the call; del: a source was there and is
 * gone), or a negative BROKER_E*: nothing is known of the source then.
 */
typedef void broker_source_fn(void *arg, int rc, bool found, const char *json, size_t len);

/* Stores json as order_id's source, replacing any; it lives ttl-active seconds from now. */
int broker_source_set(broker_t *b, const char *order_id, const char *json, size_t len,
		      broker_source_fn *fn, void *arg, broker_req_t **req);
/* Reads order_id's source. */
int broker_source_get(broker_t *b, const char *order_id, broker_source_fn *fn, void *arg,
		      broker_req_t **req);
/* Deletes order_id's source. */
int broker_source_del(broker_t *b, const char *order_id, broker_source_fn *fn, void *arg,
		      broker_req_t **req);

/*
 * An order's poll lease: the one node that polls the order's provider holds
 * it (proto/poll_lease.lua, under proto_poll_keys_t.lease).  A holder renews
 * it well within ttl_ms while it polls and releases it when it stops; when
 * it dies, the lease expires ttl_ms after its last renewal and another
 * node's acquire takes it.
 */
typedef enum broker_lease_action {
	BROKER_LEASE_ACQUIRE =
	    0,		      /* take it when no one holds it (SET NX PX), or start ours again */
	BROKER_LEASE_RENEW,   /* extend it to ttl_ms from now, only when node_id holds it */
	BROKER_LEASE_RELEASE, /* delete it, only when node_id holds it; ttl_ms is unused */
} broker_lease_action_t;

/*
 * rc: BROKER_OK with held (node_id holds the lease after the call: always
 * false after a release) and remaining_ms (the lease's time left: node_id's
 * when held, else the other holder's, 0 when no one holds it), or a negative
 * BROKER_E*: nothing is known of the lease then (BROKER_EREPLY for an empty
 * node_id or a ttl_ms of 0).  BROKER_ELOST may come after Redis did it: an
 * acquire may have taken the lease (the next acquire tells: it answers held),
 * a renew may have extended it (the holder keeps to its earlier deadline).
 * status: the order's stored status (proto/README.md), read in the same
 * script, or NULL when it has no state; source, source_len: its stored
 * source document, or NULL; both valid during the call.
 */
typedef void broker_lease_fn(void *arg, int rc, bool held, int64_t remaining_ms, const char *status,
			     const char *source, size_t source_len);

/*
 * Sends one action on order_id's lease for node_id (a non-empty id unique to
 * this node; copied).  ttl_ms is at most 10^12 - 1.  providers (copied; NULL
 * or "": any source, or none): the comma-separated providers the caller
 * polls; acquire takes the lease and renew keeps it only while the order's
 * source names one of them (renew releases it otherwise).
 */
int broker_lease(broker_t *b, const char *order_id, const char *node_id,
		 broker_lease_action_t action, unsigned ttl_ms, const char *providers,
		 broker_lease_fn *fn, void *arg, broker_req_t **req);

/*
 * A provider's request budget, shared by every node on this Redis
 * (proto/poll_budget.lua, under the key trk:poll_budget:{PROVIDER}): the
 * provider's API requests are given slots at least spacing_ms apart on
 * Redis's clock, whichever node asks.
 */
typedef enum broker_budget_action {
	BROKER_BUDGET_TAKE = 0, /* reserve the next slot, unless it is more than max_wait_ms away */
	BROKER_BUDGET_HOLD,	/* no slot before hold_ms from now (a 429's Retry-After) */
} broker_budget_action_t;

/*
 * rc: BROKER_OK with granted (TAKE: a slot is reserved, send in delay_ms;
 * not granted: the next slot is delay_ms away, more than max_wait_ms; HOLD:
 * always granted, delay 0) or a negative BROKER_E* (nothing reserved).
 */
typedef void broker_budget_fn(void *arg, int rc, bool granted, int64_t delay_ms);

/* TAKE: a = spacing_us (microseconds between slots, 1..10^9), b = max_wait_ms; HOLD: a = hold_ms.
 */
int broker_budget(broker_t *b, const char *provider, broker_budget_action_t action, unsigned a,
		  unsigned b_ms, broker_budget_fn *fn, void *arg, broker_req_t **req);

/* The caller no longer wants the answer; the request is freed when it comes. */
void broker_req_cancel(broker_req_t *req);

#endif
