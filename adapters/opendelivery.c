/*
 * opendelivery.c - Open Delivery (the Abrasel standard) logistics events:
 * the "Tracking Event Webhook" (POST /v1/newLogisticEvent) a Logistic
 * Service sends to whoever requested the delivery.
 *
 * The body is a DeliveryOrderEvent (Open Delivery API v1.7; unchanged in the
 * v2 logistics spec): orderId (the order key, given by the requester in
 * POST /logistics/delivery; every event of a combined delivery is sent once
 * per order), event {type, datetime}, deliveryPerson {id, name},
 * vehicle {type}, eta {pickupEtaDatetime, deliveryEtaDatetime},
 * geoLocalization {latitude, longitude}, and fields not used here
 * (deliveryId, orderDisplayId, merchant, customerName, deliveryPrice,
 * problem, combinedOrdersIds, externalTrackingURL).
 *
 * X-App-Signature is the lower-case hex HMAC-SHA256 of the raw body keyed
 * with the client secret.  ts is event.datetime (UTC by the spec's
 * guidelines; any RFC 3339 offset is read).  An event has no id of its own:
 * event_id is a hash of the body, except for the status part of a moving
 * event (below).  See adapters/README.md for the table.
 *
 * PICKUP_ONGOING, DELIVERY_ONGOING and RETURNING_TO_MERCHANT are repeated
 * while the courier moves, to report the position.  Each gives two updates:
 * the status with the ETAs and the courier, whose event_id is a hash of
 * those values (so a repeat that only moved is a duplicate, and a changed
 * ETA is a new update), and the position alone, whose event_id is the body
 * hash.  Positions then coalesce for slow watchers like every periodic
 * position (adapters/README.md, "Coalescing").
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "adapters_private.h"

#define OD_PROVIDER "opendelivery"

/*
 * Every DeliveryEvent type of the spec.  REJECTED (the Logistic Service
 * refused the request; the requester may retry under the same orderId) and
 * DELIVERY_FINISHED (bookkeeping after ORDER_DELIVERED or
 * RETURNED_TO_MERCHANT) have nothing to show the customer: ignored, like
 * types added to the spec later.
 */
static const struct od_event {
	const char *type;
	proto_status_t status; /* PROTO_STATUS_NONE: ignored */
	bool moving;	       /* repeated to report the position */
} od_events[] = {
    {"PENDING", PROTO_STATUS_CREATED, false},
    {"ACCEPTED", PROTO_STATUS_COURIER_ASSIGNED, false},
    {"REJECTED", PROTO_STATUS_NONE, false},
    {"PICKUP_ONGOING", PROTO_STATUS_EN_ROUTE_TO_PICKUP, true},
    {"ARRIVED_AT_MERCHANT", PROTO_STATUS_AT_PICKUP, false},
    {"ORDER_PICKED", PROTO_STATUS_PICKED_UP, false},
    {"DELIVERY_ONGOING", PROTO_STATUS_EN_ROUTE_TO_DROPOFF, true},
    {"ARRIVED_AT_CUSTOMER", PROTO_STATUS_AT_DROPOFF, false},
    {"ORDER_DELIVERED", PROTO_STATUS_DELIVERED, false},
    {"RETURNING_TO_MERCHANT", PROTO_STATUS_FAILED, true},
    {"RETURNED_TO_MERCHANT", PROTO_STATUS_RETURNED, false},
    {"DELIVERY_FINISHED", PROTO_STATUS_NONE, false},
    {"CANCELLED", PROTO_STATUS_CANCELLED, false},
};

/* ChosenVehicle.type, as a word a tracking page can show. */
static const struct od_vehicle {
	const char *type;
	const char *vehicle;
} od_vehicles[] = {
    {"MOTORBIKE_BAG", "motorbike"},
    {"MOTORBIKE_BOX", "motorbike"},
    {"CAR", "car"},
    {"BICYCLE", "bicycle"},
    {"SCOOTER", "scooter"},
    {"VUC", "truck"}, /* veiculo urbano de carga: a light urban truck */
};

/* The tracked event called type, or NULL (ignored). */
static const struct od_event *od_event(const char *type)
{
	for (size_t i = 0; i < sizeof(od_events) / sizeof(od_events[0]); i++) {
		if (strcmp(od_events[i].type, type) == 0)
			return od_events[i].status != PROTO_STATUS_NONE ? &od_events[i] : NULL;
	}
	return NULL;
}

static const char *od_vehicle(const char *type)
{
	for (size_t i = 0; i < sizeof(od_vehicles) / sizeof(od_vehicles[0]); i++) {
		if (strcmp(od_vehicles[i].type, type) == 0)
			return od_vehicles[i].vehicle;
	}
	return type; /* a type added later: shown as sent */
}

static int od_verify(const adapter_request_t *req, proto_error_t *err)
{
	const char *signature =
	    req->header != NULL ? req->header(req->header_ctx, "x-app-signature") : NULL;

	if (req->secret == NULL || req->secret_len == 0)
		return adapter_fail(err, ADAPTER_EAUTH, "x-app-signature",
				    "no client secret is configured for opendelivery");
	if (signature == NULL)
		return adapter_fail(err, ADAPTER_EAUTH, "x-app-signature", "is missing");
	if (!adapter_hmac_hex_ok(ADAPTER_HMAC_SHA256, req->secret, req->secret_len, req->body,
				 req->body_len, signature))
		return adapter_fail(err, ADAPTER_EAUTH, "x-app-signature",
				    "is not the HMAC-SHA256 of the body under the client secret");
	return ADAPTER_OK;
}

/* Delivery person and vehicle; all optional (absent before ACCEPTED). */
static int od_courier(const cJSON *root, proto_courier_t *courier, bool *has_courier,
		      proto_error_t *err)
{
	const char *id = NULL, *name = NULL, *vehicle = NULL;
	int rc;

	if ((rc = adapter_get_string(root, "deliveryPerson.id", false, &id, err)) < 0 ||
	    (rc = adapter_get_string(root, "deliveryPerson.name", false, &name, err)) < 0 ||
	    (rc = adapter_get_string(root, "vehicle.type", false, &vehicle, err)) < 0)
		return rc;
	adapter_copy_text(courier->id, sizeof(courier->id), id);
	adapter_copy_text(courier->name, sizeof(courier->name), name);
	adapter_copy_text(courier->vehicle, sizeof(courier->vehicle),
			  vehicle != NULL ? od_vehicle(vehicle) : NULL);
	*has_courier =
	    courier->id[0] != '\0' || courier->name[0] != '\0' || courier->vehicle[0] != '\0';
	return ADAPTER_OK;
}

/*
 * The event_id of a moving event's status part: a hash of what that part
 * says (the order, the delivery attempt, the event type, the ETAs and the
 * courier), not of the position or the time, which change on every repeat.
 */
static int od_status_event_id(const cJSON *root, const char *type, proto_update_t *u,
			      proto_error_t *err)
{
	char key[1024]; /* fits every part: ids are at most 128 bytes, courier text 288 */
	const char *delivery_id = NULL;
	int rc;

	if ((rc = adapter_get_string(root, "deliveryId", false, &delivery_id, err)) < 0)
		return rc;
	snprintf(key, sizeof(key), "%s\n%.128s\n%.32s\n%" PRId64 "\n%" PRId64 "\n%s\n%s\n%s",
		 u->order_id, delivery_id != NULL ? delivery_id : "", type,
		 u->eta.has_pickup ? u->eta.pickup : (int64_t)-1,
		 u->eta.has_dropoff ? u->eta.dropoff : (int64_t)-1, u->courier.id, u->courier.name,
		 u->courier.vehicle);
	adapter_body_event_id(key, strlen(key), u->event_id);
	return ADAPTER_OK;
}

/*
 * The updates of a tracked event: one with the status, the position, the
 * ETAs and the courier; for a moving event, the status part and the
 * position part apart (see the top of the file).  Ignored event types are
 * not checked beyond event.type.
 */
static int od_parse(const adapter_request_t *req, proto_update_t *out, int max, int *n,
		    proto_error_t *err)
{
	const struct od_event *event;
	const char *type, *order_id;
	char event_id[PROTO_EVENT_ID_MAX + 1];
	proto_update_t u, position;
	int64_t ts = 0;
	int count = 1;
	bool found;
	cJSON *root;
	int rc;

	*n = 0;
	root = adapter_parse_json(req->body, req->body_len, err);
	if (root == NULL)
		return strcmp(err->message, ADAPTER_MSG_NOMEM) == 0 ? ADAPTER_ENOMEM
								    : ADAPTER_EINVAL;
	if ((rc = adapter_get_string(root, "event.type", true, &type, err)) < 0)
		goto done;
	event = od_event(type);
	if (event == NULL)
		goto done; /* REJECTED, DELIVERY_FINISHED, types added later */

	if ((rc = adapter_get_string(root, "orderId", true, &order_id, err)) < 0)
		goto done;
	if (!proto_order_id_valid(order_id, strlen(order_id))) {
		rc = adapter_fail(err, ADAPTER_EINVAL, "orderId",
				  "is not an order id (1-128 of A-Z a-z 0-9 . _ ~ -)");
		goto done;
	}
	if ((rc = adapter_get_time(root, "event.datetime", true, &ts, err)) < 0)
		goto done;
	adapter_body_event_id(req->body, req->body_len, event_id);
	if ((rc = adapter_update_init(&u, OD_PROVIDER, order_id, ts, event_id, err)) < 0)
		goto done;
	u.status = event->status;

	rc = adapter_get_latlng(root, "geoLocalization.latitude", "geoLocalization.longitude",
				false, &u.location.lat, &u.location.lng, &found, err);
	if (rc < 0)
		goto done;
	u.has_location = found;
	rc = adapter_get_time(root, "eta.pickupEtaDatetime", false, &u.eta.pickup, err);
	if (rc < 0)
		goto done;
	u.eta.has_pickup = rc == 0;
	rc = adapter_get_time(root, "eta.deliveryEtaDatetime", false, &u.eta.dropoff, err);
	if (rc < 0)
		goto done;
	u.eta.has_dropoff = rc == 0;
	u.has_eta = u.eta.has_pickup || u.eta.has_dropoff;
	if ((rc = od_courier(root, &u.courier, &u.has_courier, err)) < 0)
		goto done;

	if (event->moving) {
		if ((rc = od_status_event_id(root, type, &u, err)) < 0)
			goto done;
		if (u.has_location) {
			/* The position alone, under the body's event_id. */
			if ((rc = adapter_update_init(&position, OD_PROVIDER, order_id, ts,
						      event_id, err)) < 0)
				goto done;
			position.location = u.location;
			position.has_location = true;
			memset(&u.location, 0, sizeof(u.location));
			u.has_location = false;
			count = 2;
		}
	}
	if (max < count) {
		rc = adapter_fail(err, ADAPTER_EINVAL, "", "no room for %d updates (max %d)", count,
				  max);
		goto done;
	}
	out[0] = u;
	if (count == 2)
		out[1] = position;
	*n = count;
done:
	cJSON_Delete(root);
	return rc < 0 ? rc : ADAPTER_OK;
}

const adapter_ops_t adapter_opendelivery = {OD_PROVIDER, od_verify, od_parse};
