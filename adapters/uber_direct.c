/*
 * uber_direct.c - Uber Direct (DaaS) webhooks: event.delivery_status and
 * event.courier_update (adapters/README.md#uber_direct has the field and
 * status tables and the documentation they come from).
 *
 * Signature: the hex HMAC-SHA256 of the raw body under the webhook's
 * signing key, in X-Postmates-Signature (older docs) or X-Uber-Signature
 * (newer docs); either header may carry it.
 *
 * One webhook gives at most one update:
 *   - event.courier_update (every ~20 s while a courier is assigned): the
 *     courier's position only, from the top-level location (or
 *     data.courier.location), so the gateway may coalesce it;
 *   - event.delivery_status: the status, the courier's name and vehicle,
 *     the pickup/dropoff ETAs, the pickup/dropoff places (data.pickup/
 *     dropoff.location) and the courier's position when present.
 * Other kinds (event.refund_request, event.shopping_progress, ...) carry
 * nothing to track and give no update, and so does the Direct API's
 * dapi.status_changed notification (no kind, an event_type).
 */
#include <stdio.h>
#include <string.h>

#include "adapters_private.h"

#define PROVIDER "uber_direct"

static const struct {
	const char *name;
	proto_status_t status;
} uber_statuses[] = {
    {"pending", PROTO_STATUS_CREATED},		 {"pickup", PROTO_STATUS_EN_ROUTE_TO_PICKUP},
    {"pickup_complete", PROTO_STATUS_PICKED_UP}, {"dropoff", PROTO_STATUS_EN_ROUTE_TO_DROPOFF},
    {"delivered", PROTO_STATUS_DELIVERED},	 {"canceled", PROTO_STATUS_CANCELLED},
    {"returned", PROTO_STATUS_RETURNED},
};

/* The canonical status of an Uber delivery status; NONE for one not documented. */
static proto_status_t uber_status(const char *s)
{
	for (size_t i = 0; i < sizeof(uber_statuses) / sizeof(uber_statuses[0]); i++) {
		if (strcmp(s, uber_statuses[i].name) == 0)
			return uber_statuses[i].status;
	}
	return PROTO_STATUS_NONE;
}

static const char *request_header(const adapter_request_t *req, const char *name)
{
	return req->header != NULL ? req->header(req->header_ctx, name) : NULL;
}

static int uber_direct_verify(const adapter_request_t *req, proto_error_t *err)
{
	static const char *const headers[] = {"x-postmates-signature", "x-uber-signature"};
	bool present = false;

	if (req->secret == NULL || req->secret_len == 0)
		return adapter_fail(err, ADAPTER_EAUTH, "", "no webhook signing key is configured");
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		const char *sig = request_header(req, headers[i]);
		if (sig == NULL)
			continue;
		present = true;
		if (adapter_hmac_hex_ok(ADAPTER_HMAC_SHA256, req->secret, req->secret_len,
					req->body, req->body_len, sig))
			return ADAPTER_OK;
	}
	if (!present)
		return adapter_fail(err, ADAPTER_EAUTH, "x-postmates-signature",
				    "is missing (neither X-Postmates-Signature nor "
				    "X-Uber-Signature was sent)");
	return adapter_fail(err, ADAPTER_EAUTH, "x-postmates-signature",
			    "is not the HMAC-SHA256 of the body under the signing key");
}

/*
 * The order: data.external_id (the merchant's id given when the delivery
 * was created) when present and not empty, else the delivery id (top-level
 * delivery_id, else data.id).  *field names where it came from.
 */
static int uber_order_id(const cJSON *root, const char **order_id, const char **field,
			 proto_error_t *err)
{
	static const char *const paths[] = {"data.external_id", "delivery_id", "data.id"};
	int rc;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		const char *s = NULL;
		rc = adapter_get_string(root, paths[i], false, &s, err);
		if (rc < 0)
			return rc;
		if (rc == 0 && s[0] != '\0') {
			*order_id = s;
			*field = paths[i];
			return ADAPTER_OK;
		}
	}
	return adapter_fail(err, ADAPTER_EINVAL, "delivery_id",
			    "is required (no data.external_id, delivery_id or data.id)");
}

/* The courier's position: top-level location, else data.courier.location. */
static int uber_location(const cJSON *root, proto_update_t *u, proto_error_t *err)
{
	static const char *const paths[][2] = {
	    {"location.lat", "location.lng"},
	    {"data.courier.location.lat", "data.courier.location.lng"},
	};
	bool found = false;
	int rc;

	for (size_t i = 0; i < 2 && !found; i++) {
		rc = adapter_get_latlng(root, paths[i][0], paths[i][1], false, &u->location.lat,
					&u->location.lng, &found, err);
		if (rc != ADAPTER_OK)
			return rc;
	}
	u->has_location = found;
	return ADAPTER_OK;
}

/* Status, courier and ETAs of an event.delivery_status. */
static int uber_delivery_status(const cJSON *root, proto_update_t *u, proto_error_t *err)
{
	const char *status = NULL, *name = NULL, *vehicle = NULL;
	int rc;

	/* The event's own status, else the copy in the delivery object. */
	rc = adapter_get_string(root, "status", false, &status, err);
	if (rc == 1)
		rc = adapter_get_string(root, "data.status", false, &status, err);
	if (rc < 0)
		return rc;
	if (status != NULL)
		u->status = uber_status(status);

	if ((rc = adapter_get_time(root, "data.pickup_eta", false, &u->eta.pickup, err)) < 0)
		return rc;
	u->eta.has_pickup = rc == 0;
	if ((rc = adapter_get_time(root, "data.dropoff_eta", false, &u->eta.dropoff, err)) < 0)
		return rc;
	u->eta.has_dropoff = rc == 0;
	u->has_eta = u->eta.has_pickup || u->eta.has_dropoff;

	if ((rc = adapter_get_string(root, "data.courier.name", false, &name, err)) < 0 ||
	    (rc = adapter_get_string(root, "data.courier.vehicle_type", false, &vehicle, err)) < 0)
		return rc;
	adapter_copy_text(u->courier.name, sizeof(u->courier.name), name);
	adapter_copy_text(u->courier.vehicle, sizeof(u->courier.vehicle), vehicle);
	u->has_courier = u->courier.name[0] != '\0' || u->courier.vehicle[0] != '\0';

	/* The delivery's pickup and dropoff, for the page's markers (courier
	 * updates leave them out: they stay position-only and coalescable). */
	adapter_get_place(root, "data.pickup.location.lat", "data.pickup.location.lng",
			  &u->places.pickup, &u->places.has_pickup);
	adapter_get_place(root, "data.dropoff.location.lat", "data.dropoff.location.lng",
			  &u->places.dropoff, &u->places.has_dropoff);
	u->has_places = u->places.has_pickup || u->places.has_dropoff;

	return uber_location(root, u, err);
}

static int uber_direct_parse(const adapter_request_t *req, proto_update_t *out, int max, int *n,
			     proto_error_t *err)
{
	cJSON *root;
	const char *kind = NULL, *event_id = NULL, *order_id = NULL, *order_field = "";
	char body_id[PROTO_EVENT_ID_MAX + 1];
	proto_update_t u;
	bool courier_update;
	proto_error_t scratch;
	int64_t ts = req->now_ms;
	int rc;

	*n = 0;
	if (err == NULL)
		err = &scratch;
	root = adapter_parse_json(req->body, req->body_len, err);
	if (root == NULL)
		return strcmp(err->message, ADAPTER_MSG_NOMEM) == 0 ? ADAPTER_ENOMEM
								    : ADAPTER_EINVAL;
	if ((rc = adapter_get_string(root, "kind", false, &kind, err)) < 0)
		goto out;
	if (rc == 1) {
		/* No kind: the Direct API's notification ({event_id, event_time,
		 * event_type: "dapi.status_changed", meta}) is another product's
		 * format that points at its own delivery resource.  Answered 200
		 * with nothing stored, so Uber does not retry it; anything else
		 * without a kind is malformed. */
		if ((rc = adapter_get_string(root, "event_type", false, &kind, err)) == 0) {
			rc = ADAPTER_OK;
			goto out;
		}
		if (rc == 1)
			rc = adapter_fail(err, ADAPTER_EINVAL, "kind", "is required");
		goto out;
	}
	courier_update = strcmp(kind, "event.courier_update") == 0;
	if (!courier_update && strcmp(kind, "event.delivery_status") != 0) {
		rc = ADAPTER_OK; /* another kind of event: nothing to track */
		goto out;
	}

	if ((rc = adapter_get_string(root, "id", false, &event_id, err)) < 0 ||
	    (rc = adapter_get_time(root, "created", false, &ts, err)) < 0 ||
	    (rc = uber_order_id(root, &order_id, &order_field, err)) < 0)
		goto out;
	if (event_id == NULL || event_id[0] == '\0') {
		adapter_body_event_id(req->body, req->body_len, body_id);
		event_id = body_id;
	}
	if ((rc = adapter_update_init(&u, PROVIDER, order_id, ts, event_id, err)) < 0) {
		if (strcmp(err->field, "order_id") == 0)
			snprintf(err->field, sizeof(err->field), "%s", order_field);
		else if (strcmp(err->field, "ts") == 0)
			snprintf(err->field, sizeof(err->field), "created");
		goto out;
	}

	rc = courier_update ? uber_location(root, &u, err) : uber_delivery_status(root, &u, err);
	if (rc < 0)
		goto out;
	rc = adapter_emit_one(&u, out, max, n, err);
out:
	cJSON_Delete(root);
	return rc;
}

const adapter_ops_t adapter_uber_direct = {PROVIDER, uber_direct_verify, uber_direct_parse};
