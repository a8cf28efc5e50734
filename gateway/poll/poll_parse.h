/*
 * poll/poll_parse.h - reading a provider's API answer, polled for an order,
 * into a canonical update (proto/README.md).  Pure: no I/O, no clock (the
 * receive time comes in now_ms), no globals.
 *
 *   - uber_direct: GET /v1/customers/{customer_id}/deliveries/{delivery_id},
 *     the delivery object: status, courier {name, vehicle_type, location
 *     {lat, lng}}, pickup_eta, dropoff_eta, pickup/dropoff.location,
 *     updated.
 *   - doordash_drive: GET /drive/v2/deliveries/{external_delivery_id}:
 *     delivery_status, dasher_location {lat, lng}, dasher_id, dasher_name,
 *     pickup/dropoff_time_estimated, created_at/updated_at.
 *   - onfleet: GET /api/v2/workers/{worker_id}, the worker: location as
 *     GeoJSON [longitude, latitude], timeLastSeen (ms).  A worker says
 *     nothing about the order's status: a position-only update, which the
 *     gateway may coalesce.
 *
 * The update is for the caller's order_id (the order the source was set
 * on), whatever ids the answer carries, from the provider of the parser's
 * name.  Its ts is the answer's own time (updated, updated_at/created_at,
 * timeLastSeen), else now_ms; its event_id is "sha256:" and the body's hash,
 * so an unchanged answer polled again is applied once.
 *
 * Results as the adapters': 0 with *n = 1 (the update in *out) or *n = 0
 * (nothing to track: no position, status, ETA or place yet); ADAPTER_EINVAL
 * with the failing field's provider path in err->field; ADAPTER_ENOMEM.
 */
#ifndef TRACKGATE_POLL_PARSE_H
#define TRACKGATE_POLL_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "adapter.h"
#include "proto.h"

typedef int poll_parse_fn(const char *body, size_t len, const char *order_id, int64_t now_ms,
			  proto_update_t *out, int *n, proto_error_t *err);

typedef struct poll_parser {
	const char *provider; /* the adapter's name, and the updates' provider */
	const char *resource; /* what is polled: "delivery" or "worker" */
	poll_parse_fn *parse;
	/* What the provider documents, as [poll.PROVIDER]'s defaults: */
	const char *base_url; /* its production API */
	const char *path;     /* the polled resource under base_url; %s: the source's ref */
	unsigned budget;      /* requests per second, under the provider's own limit */
} poll_parser_t;

poll_parse_fn poll_parse_uber_direct;
poll_parse_fn poll_parse_doordash_drive;
poll_parse_fn poll_parse_onfleet;

/* The parser of provider, or NULL for one that is not polled. */
const poll_parser_t *poll_parser_find(const char *provider);

/* Every parser, NULL-terminated. */
const poll_parser_t *const *poll_parser_all(void);

#endif
