/*
 * broker_private.h - what the broker's two files share: the broker itself
 * and the state of its two connections.
 *
 * broker.c is the broker's API on a connection that is up: the requests on
 * the command connection, the subscriptions and what the subscriber
 * receives.  broker_conn.c is the connections' life: resolve, connect,
 * time out, back off and reconnect, and stop.
 */
#ifndef TRACKGATE_BROKER_PRIVATE_H
#define TRACKGATE_BROKER_PRIVATE_H

#include <stdbool.h>

#include <hiredis/async.h>
#include <uv.h>

#include "broker.h"

typedef enum broker_conn_state {
	CONN_IDLE = 0,	 /* waiting for the retry timer */
	CONN_RESOLVING,	 /* uv_getaddrinfo in flight */
	CONN_CONNECTING, /* redisAsyncConnect* issued, no connect callback yet */
	CONN_UP,
	CONN_STOPPED,
} broker_conn_state_t;

typedef struct broker_conn {
	broker_t *b;
	const char *name;      /* "subscriber" or "commands", for logs */
	redisAsyncContext *ac; /* owned by hiredis once connecting; NULL when none */
	uv_timer_t timer;      /* retry delay and connect timeout */
	uv_getaddrinfo_t gai;
	broker_conn_state_t state;
	unsigned attempt; /* failures since the last success */
	bool timer_closed;
	bool gai_active;
	bool was_up; /* had been up before: a reconnect, not the first connect */
} broker_conn_t;

struct broker {
	uv_loop_t *loop;
	broker_events_t ev;
	char *redis_unix; /* is malloc'd (broker_free): "" = TCP */
	char *redis_host; /* is malloc'd (broker_free) */
	int redis_port;
	unsigned timeout_ms;
	char *courier_visible_from; /* is malloc'd (broker_free) */
	broker_conn_t sub;
	broker_conn_t cmd;
	char sha[41];	    /* apply_update.lua's SHA1 from SCRIPT LOAD; "" until known */
	char lease_sha[41]; /* poll_lease.lua's SHA1 from SCRIPT LOAD; "" until known */
	char ttl_active[16];
	char ttl_terminal[16];
	char maxlen[16];
	bool stopping;
	broker_stopped_fn *stopped;
	void *stopped_arg;
	broker_stats_t stats;
};

/*
 * The command connection is (back) up: forgets the scripts' SHAs and sends
 * SCRIPT LOAD of apply_update.lua and poll_lease.lua; applies and leases go
 * as EVAL until its answers (broker.c).
 */
void broker_script_load(broker_t *b);

#endif
