/*
 * broker.h - trackgated's two Redis connections on the loop: the
 * subscriber (SUBSCRIBE/UNSUBSCRIBE trk:{ID}, messages to the hub) and the
 * command connection (the apply script, snapshot reads).
 *
 * Both are hiredis async contexts attached to the process's uv loop.  Each
 * reconnects by itself with capped exponential backoff and jitter; host
 * names are resolved with uv_getaddrinfo (the thread pool), never on the
 * loop thread.  While the subscriber is down the hub knows (hub_redis_down)
 * and resubscribes every order when it is back (hub_redis_up).
 *
 * Requests that answer later (apply, snapshot) return a broker_req_t that
 * the caller cancels if it goes away first: the callback is then never
 * called.  A callback is never called from within the call that sent the
 * request.
 */
#ifndef TRACKGATE_BROKER_H
#define TRACKGATE_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "hub.h"

typedef struct broker broker_t;
typedef struct broker_req broker_req_t;

enum {
	BROKER_OK = 0,
	BROKER_EDOWN = -1,   /* the connection is not up: nothing was sent */
	BROKER_ENOMEM = -2,
	BROKER_EREPLY = -3,  /* Redis answered with an error or an unexpected reply */
	BROKER_ELOST = -4,   /* the connection went away before the reply */
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
	uint64_t script_loads;
	uint64_t bad_replies;
} broker_stats_t;

broker_t *broker_new(uv_loop_t *loop, const config_t *cfg, hub_t *hub);
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

/* The caller no longer wants the answer; the request is freed when it comes. */
void broker_req_cancel(broker_req_t *req);

#endif
