/*
 * poll/poller.h - poll mode: the orders watched in this process whose
 * source (PUT /v1/orders/{ID}/source) names a provider with a
 * [poll.PROVIDER] section are polled at that provider's API, one node at a
 * time per order, within a request budget the whole group shares.
 *
 * For each watched order (poller_watch, from the hub's first watcher; ws/feed.c):
 *
 *   source   read trk:{ID}:source; none, or a provider not polled: read it
 *            again every POLLER_SOURCE_RECHECK_MS while watched
 *   lease    acquire trk:{ID}:poll_lease (proto/poll_lease.lua); another
 *            node holds it: try again when it would expire (a holder that
 *            died is taken over within about lease-ms)
 *   poll     while held, renewed every lease-ms / 3: at once (this fills
 *            the first snapshot), then every interval-ms +-10 %; each
 *            request takes a slot of the provider's budget (Redis,
 *            proto/poll_budget.lua: 1.1 s / budget apart group-wide), the
 *            provider's credentials (poll_auth.h), one GET on the loop
 *            (http_client.h), the provider's parser (poll_parse.h) and the
 *            apply script, as a webhook's update would
 *   done     a terminal status, polled or stored (the lease's answer says):
 *            no more requests, the lease released
 *
 * Faults: 429 holds back the provider's budget for every node
 * (Retry-After, else 1 s doubling); other failures back off that order
 * (max(interval, 1 s) doubling to 60 s); a 401 on Uber drops the token and
 * polls again with a new one.  poller_unwatch (the last watcher left)
 * cancels what is in flight and releases the lease.
 *
 * Nothing here blocks: Redis through the broker, HTTP through libcurl's
 * multi interface, timers on the loop.
 */
#ifndef TRACKGATE_POLL_POLLER_H
#define TRACKGATE_POLL_POLLER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "broker.h"
#include "config.h"
#include "metrics.h"

#define POLLER_SOURCE_RECHECK_MS 2000 /* a watched order without a source reads it again */
#define POLLER_BACKOFF_MAX_MS 60000   /* the longest wait after failures in a row */

typedef struct poller poller_t;

/*
 * A poller for cfg's [poll.*] sections (cfg, broker and *metrics outlive
 * it; *metrics may change: the server's slot).  wall_offset_ms: the wall
 * clock minus uv_now(), for the JWTs it mints and the updates' receive
 * time.  NULL when out of memory (logged).
 */
poller_t *poller_new(uv_loop_t *loop, broker_t *broker, const config_t *cfg,
		     metrics_t *const *metrics, const int64_t *wall_offset_ms);

/* The first watcher of order id joined this process / the last one left. */
void poller_watch(poller_t *p, const char *id, size_t len);
void poller_unwatch(poller_t *p, const char *id, size_t len);

/* This process's watched orders by state, for /metrics. */
void poller_counts(const poller_t *p, uint64_t out[POLL_STATE__COUNT]);

/*
 * Cancels every request, releases the leases held and closes every handle;
 * done(arg) once nothing of the poller is left on the loop.  Then
 * poller_free().  Before the broker stops, so that the releases are sent.
 */
void poller_stop(poller_t *p, void (*done)(void *arg), void *arg);
void poller_free(poller_t *p);

#endif
