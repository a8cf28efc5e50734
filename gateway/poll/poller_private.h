/*
 * poll/poller_private.h - what the poller's two files share: the
 * scheduler (poller.c: orders, steps, timers) and the providers
 * (poll_provider.c: HTTP clients, credentials, the polled URL).
 */
#ifndef TRACKGATE_POLL_POLLER_PRIVATE_H
#define TRACKGATE_POLL_POLLER_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include <uthash.h>

#include "http_client.h"
#include "poll_auth.h"
#include "poll_parse.h"
#include "poller.h"
#include "proto.h"

#define POLLER_RETRY_MS 1000	   /* Redis down, or out of memory: try the step again */
#define POLLER_BODY_MAX 262144	   /* the longest API answer read */
#define POLLER_QUEUE_MAX_MS 600000 /* the furthest budget slot an order reserves */
#define POLLER_429_MIN_MS                                                                          \
	1000 /* a 429 without Retry-After holds the budget this long, doubling                     \
	      */

typedef enum po_step {
	STEP_NONE = 0, /* waiting for due_ms */
	STEP_LEASE,    /* the lease acquire is in Redis */
	STEP_BUDGET,   /* asking for a budget slot */
	STEP_SLOT,     /* a slot is reserved at slot_ms */
	STEP_TOKEN,    /* waiting for the provider's OAuth token */
	STEP_HTTP,     /* the GET is in flight */
	STEP_APPLY,    /* the update is in Redis */
} po_step_t;

typedef struct poll_provider {
	poller_t *p;
	const config_poll_t *cfg;
	const poll_parser_t *parser;
	unsigned mi; /* its metrics index */
	poll_http_t *http;
	poll_oauth_t *oauth; /* uber_direct: the token cache; is malloc'd */
	poll_http_req_t *token_req;
	poll_doordash_jwt_cache_t jwt; /* doordash_drive */
	char basic[512];	       /* onfleet: the Authorization value */
	unsigned token_gen;  /* uber_direct: tokens received so far (which one a request carried) */
	unsigned n429;	     /* 429s in a row */
	uint64_t hold_until; /* loop time before which a 429 holds requests back */
	unsigned lease_ms;
	unsigned spacing_us; /* between two of its requests, group-wide */
} poll_provider_t;

typedef struct poll_order {
	UT_hash_handle hh;
	poller_t *p;
	poll_provider_t *pv; /* from the source; NULL while it names none polled here */
	uv_timer_t timer;
	broker_req_t *req;   /* the step's Redis request */
	broker_req_t *renew; /* a renewal in flight */
	poll_http_req_t *http;
	uint64_t due_ms;    /* loop time of the next step */
	uint64_t slot_ms;   /* STEP_SLOT: loop time of the reserved slot */
	uint64_t renew_ms;  /* held: loop time of the next renewal */
	unsigned failures;  /* polls failed in a row */
	unsigned token_gen; /* the provider's token_gen its GET was sent with */
	unsigned apply_mi;  /* the metrics index of the provider whose answer is being applied */
	uint8_t state;	    /* metrics_poll_state_t */
	uint8_t step;	    /* po_step_t */
	bool held;
	bool retried_401; /* a 401's one immediate retry was used */
	bool watched;	  /* false: unwatched, its timer closing */
	char ref[160];
	char id[PROTO_ORDER_ID_MAX + 1];
} poll_order_t;

struct poller {
	uv_loop_t *loop;
	broker_t *broker;
	const config_t *cfg;
	metrics_t *const *metrics;
	const int64_t *wall_offset_ms;
	poll_provider_t prov[CONFIG_POLLS_MAX];
	unsigned n_prov;
	unsigned lease_max;		       /* the longest lease_ms of the providers */
	char providers[CONFIG_POLLS_MAX * 34]; /* "a,b,c": what the lease asks for */
	poll_order_t *orders;		       /* uthash by id: the watched ones */
	unsigned n_open;		       /* handles and clients not yet closed */
	uint64_t counts[POLL_STATE__COUNT];
	bool stopping;
	void (*done)(void *arg);
	void *done_arg;
	char node_id[96];
};

static inline int64_t po_wall(const poller_t *p)
{
	return (int64_t)uv_now(p->loop) + *p->wall_offset_ms;
}

static inline metrics_t *po_metrics(const poller_t *p)
{
	return *p->metrics;
}

/* pv's client and credentials for c; -1 (logged) when they cannot be set up. */
int pp_init(poller_t *p, poll_provider_t *pv, const config_poll_t *c);
/* Frees what pp_init made (its client closed first, by poller_stop). */
void pp_free(poll_provider_t *pv);

/*
 * Sends pv's GET of ref with its credentials: 0 (fn is called once), 1 when
 * it must wait for an OAuth token (poller_token_arrived() tells when),
 * -1 when the credentials cannot be made, -2 when the request could not start.
 */
int pp_request(poll_provider_t *pv, const char *ref, poll_http_done_fn *fn, void *arg,
	       poll_http_req_t **req);

/* pv's token request ended (a token or a failure): the orders waiting for it go on. */
void poller_token_arrived(poll_provider_t *pv);

#endif
