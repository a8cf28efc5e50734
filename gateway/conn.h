/*
 * conn.h - what HTTP and websocket handling both ask of an lws connection:
 * the client's address (behind trusted proxies), the address it came in on,
 * and the per-address rate limit.
 */
#ifndef TRACKGATE_CONN_H
#define TRACKGATE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "metrics.h"
#include "query.h"
#include "ratelimit.h"

struct lws;

/*
 * The request's query arguments, copied into buf (cap bytes) and split into
 * q.  lws hands the query over as one fragment per '&'-separated argument,
 * already %-decoded; each is copied whole, whatever its length, so no
 * argument hides another (lws_get_urlarg_by_name stops at the first one
 * longer than its buffer).  Returns 0, or -1 when the arguments do not fit
 * in buf (cap >= CONN_QUERY_MAX always fits: lws holds at most that much).
 */
#define CONN_QUERY_MAX 4200
int conn_query(struct lws *wsi, query_t *q, char *buf, size_t cap);

/*
 * The address limits and logs are about: the peer, or, when the peer is a
 * trusted proxy, the rightmost address of proxy-header that is not itself a
 * trusted proxy (the leftmost ones are the client's own claims).
 */
void conn_client_address(const config_t *cfg, struct lws *wsi, char *out, size_t len);

/* Whether wsi came in on the metrics-listen address. */
bool conn_on_metrics_port(const config_t *cfg, struct lws *wsi);

/* Takes a token from the client address's bucket; false (counted, logged, *retry_s) when empty. */
bool conn_rate_ok(const config_t *cfg, ratelimit_t *rates, metrics_t *m, struct lws *wsi,
		  ratelimit_kind_t kind, uint64_t now_ms, unsigned *retry_s);

#endif
