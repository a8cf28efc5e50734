/*
 * broker_private.h - what the broker's files share: the broker itself
 * and the state of its two connections.
 *
 * broker.c is the broker's API on a connection that is up: the requests on
 * the command connection, the subscriptions and what the subscriber
 * receives.  broker_conn.c is the connections' life: resolve, connect,
 * time out, back off and reconnect, and stop.  broker_heartbeat.c proves
 * the subscriber still receives, and reconnects it when it does not.
 */
#ifndef TRACKGATE_BROKER_PRIVATE_H
#define TRACKGATE_BROKER_PRIVATE_H

#include <stdbool.h>

#include <hiredis/async.h>
#include <uv.h>

#include "broker.h"
#include "config.h"
#include "proto.h"

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

/* What a source request sent, so that its reply is checked against the command's. */
typedef enum broker_source_op {
	SOURCE_SET = 0, /* SET ... EX: +OK */
	SOURCE_GET,	/* GET: a string or nil */
	SOURCE_DEL,	/* DEL: the number of keys removed */
} broker_source_op_t;

/* One request on the command connection, from its send to its reply (broker.c, broker_poll.c). */
struct broker_req {
	broker_t *b;
	bool cancelled;
	bool tried_eval;       /* EVALSHA met NOSCRIPT and was re-sent as EVAL */
	uint8_t source_op;     /* broker_source_op_t of a source request */
	uint8_t lease_action;  /* broker_lease_action_t of a lease request */
	uint8_t budget_action; /* broker_budget_action_t of a budget request */
	union {
		broker_apply_fn *apply;
		broker_snapshot_fn *snapshot;
		broker_resume_fn *resume;
		broker_source_fn *source;
		broker_lease_fn *lease;
		broker_budget_fn *budget;
	} fn;
	void *arg;
	char *update; /* is malloc'd: the update JSON of an apply */
	size_t update_len;
	char *node_id; /* is malloc'd: the caller's node id of a lease */
	unsigned lease_ttl_ms;
	unsigned budget_ms[2]; /* a budget request's arguments (broker_budget) */
	/* The order (a budget request: the provider); its key names are built when a command is
	 * sent (hiredis copies them), which keeps a request small while thousands of joins wait. */
	char order_id[PROTO_ORDER_ID_MAX + 1];
};

/* A request on the command connection, or NULL (nothing sent, *rc says why) when it is down or
 * out of memory. */
broker_req_t *broker_req_new(broker_t *b, const char *order_id, void *arg, int *rc);
void broker_req_free(broker_req_t *req);

/*
 * An error reply to a script sent by SHA: NOSCRIPT re-sends it once with send() (true then);
 * READONLY reconnects the command connection; else *rc is BROKER_EREPLY (broker.c).
 */
bool broker_script_resent(broker_t *b, broker_req_t *req, const redisReply *reply,
			  const char *script, int (*send)(broker_t *, broker_req_t *), int *rc);

/*
 * The subscriber's heartbeat (broker_heartbeat.c): PUBLISH on channel from the command
 * connection, expected back on the subscriber.  "waiting" is for a proof from the subscriber
 * (the channel's subscribe ack on a new connection, or a heartbeat Redis accepted) since
 * waiting_since; past the bound the subscriber is stalled.
 */
typedef struct broker_hb {
	uv_timer_t timer;  /* the tick: send one heartbeat, check the wait */
	char channel[112]; /* trk:hb:{host:pid:random}, this process's own */
	uint64_t seq;	   /* the last heartbeat's number (its payload) */
	uint64_t sent_at;  /* the last heartbeat's send */
	uint64_t waiting_since;
	uint64_t stalled_at; /* when the stall that made it unhealthy was detected */
	unsigned sub_gen;    /* subscriber connections so far: a PUBLISH reply is for one of them */
	bool timer_inited;
	bool timer_closed;
	bool subscribed; /* Redis acknowledged the channel on this subscriber connection */
	bool waiting;
	bool in_flight; /* a PUBLISH awaits its reply: at most one */
	bool stalled;	/* detected; cleared by the next heartbeat received */
} broker_hb_t;

/*
 * The primary of a Sentinel group (broker_sentinel.c): the Sentinels asked in
 * turn for its address before each connect, and a connection subscribed to
 * +switch-master on one of them.
 */
typedef struct broker_sentinel {
	config_sentinel_t cfg;	   /* n == 0: not in Sentinel mode */
	unsigned first;		   /* the Sentinel asked first (the last that answered) */
	unsigned asked;		   /* Sentinels asked in this round */
	unsigned watch_at;	   /* the Sentinel the watch connects to */
	redisAsyncContext *ask;	   /* the round's connection, while asking */
	redisAsyncContext *watch;  /* SUBSCRIBE +switch-master */
	uv_timer_t timer;	   /* the ask's timeout */
	uv_timer_t watch_timer;	   /* the watch's reconnect */
	unsigned timers;	   /* timers not yet closed */
	broker_conn_t *waiting[2]; /* connections waiting for the address ([0] sub, [1] cmd) */
	char ip[48];		   /* the last address the Sentinels gave */
	int port;
} broker_sentinel_t;

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
	broker_hb_t hb;
	broker_sentinel_t sentinel;
	char sha[41];	     /* apply_update.lua's SHA1 from SCRIPT LOAD; "" until known */
	char lease_sha[41];  /* poll_lease.lua's SHA1 from SCRIPT LOAD; "" until known */
	char budget_sha[41]; /* poll_budget.lua's SHA1 from SCRIPT LOAD; "" until known */
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
 * SCRIPT LOAD of apply_update.lua, poll_lease.lua and poll_budget.lua; their requests go
 * as EVAL until its answers (broker.c).
 */
void broker_script_load(broker_t *b);

/* Calls broker_stop's done once nothing of the broker is left on the loop (broker_conn.c). */
void broker_maybe_stopped(broker_t *b);

/* The heartbeat (broker_heartbeat.c): the node's channel (broker_new), the timer (broker_start,
 * broker_stop), and each subscriber connection's start and end (broker_conn.c). */
/* Sentinel mode (broker_sentinel.c), and what it calls back in broker_conn.c. */
bool broker_sentinel_mode(const broker_t *b);
int broker_sentinel_start(broker_t *b);
void broker_sentinel_stop(broker_t *b);
bool broker_sentinel_stopped(const broker_t *b);
/* c waits for the primary's address: broker_conn_open() or broker_conn_retry() follow. */
void broker_sentinel_resolve(broker_conn_t *c);
/* Sends ROLE on c, just connected: broker_conn_confirmed() follows for a master. */
int broker_sentinel_confirm(broker_conn_t *c);
void broker_conn_open(broker_conn_t *c, const char *ip, int port);
void broker_conn_retry(broker_conn_t *c);
void broker_conn_confirmed(broker_conn_t *c);
void broker_conn_timeout_cb(uv_timer_t *t);

void broker_hb_init(broker_t *b);
int broker_hb_start(broker_t *b);
void broker_hb_stop(broker_t *b);
void broker_hb_sub_up(broker_t *b);
void broker_hb_sub_down(broker_t *b);

#endif
