/*
 * stuart.c - Stuart (stuart.com) webhooks: job, delivery and driver events.
 *
 * Stuart posts one event per request, {"event":E,"type":T,"data":{...}}:
 *
 *   job/create, job/update            data is the job; the delivery in
 *                                     progress is data.currentDelivery (null
 *                                     until there is one)
 *   delivery/create, delivery/update  data is the delivery
 *   driver/update                     data is the driver and its position
 *                                     (data.latitude, data.longitude); while
 *                                     on a job, data.job.currentDelivery.
 *                                     Gives the position alone.
 *
 * A delivery carries the order key, clientReference (the client's own
 * reference for the delivery, given when the job was created), its status,
 * etaToOrigin / etaToDestination (RFC 3339 with the zone's local offset,
 * "2024-05-01T14:05:00.000+02:00") and its driver (latitude, longitude,
 * name, transportType.code).
 *
 * Stuart signs nothing.  A Stuart webhook can carry an authentication header
 * chosen by the client; trackgate expects it to be "Authorization: Bearer
 * SECRET" (or Basic, for a secret "user:password").  Stuart's events carry
 * neither an event id nor a time: an update's ts is the receive time
 * (req->now_ms) and its event_id a hash of the body, so a retried webhook
 * is applied once.  See adapters/README.md for the status table.
 *
 * Stuart's newer webhooks ("v3") are told apart by their top-level
 * "version": "v3".  Their shape comes from bodies that Stuart's sandbox sent
 * to a public integration (adapters/README.md names the sources; Stuart's
 * own v3 payload reference could not be read):
 *
 *   {"version": "v3", "occurred_at": T, "event_id": UUID, "webhook_id": N,
 *    "topic": "package_delivering",
 *    "details": {"account": {...}, "package": {"reference": R, ...}, ...}}
 *
 * R is the package's reference, the client reference given at creation, so
 * the order key is the same as in v2.  A v3 event gives the topic's status
 * (and the courier's name when one is sent), never a position: no source
 * shows coordinates in a v3 body.  Its ts is occurred_at and its event_id
 * Stuart's event_id, where v2 had neither.
 */
#include <stdio.h>
#include <string.h>

#include "adapters_private.h"

#define STUART_PROVIDER "stuart"

/* Longest dotted path built here ("data.job.currentDelivery.driver.transportType.code" fits). */
#define STUART_PATH_MAX 96

/* Delivery statuses of the Stuart API, in the order a delivery goes through them. */
static const struct stuart_status {
	const char *name;
	proto_status_t status;
} stuart_statuses[] = {
    {"pending", PROTO_STATUS_CREATED},		  /* looking for a driver */
    {"picking", PROTO_STATUS_EN_ROUTE_TO_PICKUP}, /* driver assigned, on the way */
    {"almost_picking", PROTO_STATUS_EN_ROUTE_TO_PICKUP},
    {"waiting_at_pickup", PROTO_STATUS_AT_PICKUP},
    {"delivering", PROTO_STATUS_EN_ROUTE_TO_DROPOFF}, /* picked up, on the way */
    {"almost_delivering", PROTO_STATUS_EN_ROUTE_TO_DROPOFF},
    {"waiting_at_dropoff", PROTO_STATUS_AT_DROPOFF},
    {"delivered", PROTO_STATUS_DELIVERED},
    {"cancelled", PROTO_STATUS_CANCELLED},
};

/*
 * v3 topics.  package_delivering and courier_arriving are seen in Stuart's
 * sandbox bodies; the other names come from public integrations' lists of
 * Stuart's package states (adapters/README.md).  courier_arriving says which
 * task in details.task (pickup or dropoff); the table has no entry for it.
 */
static const struct stuart_status stuart_topics[] = {
    {"package_created", PROTO_STATUS_CREATED},
    {"courier_assigned", PROTO_STATUS_COURIER_ASSIGNED},
    {"package_picking_up", PROTO_STATUS_EN_ROUTE_TO_PICKUP},
    {"courier_arriving_at_pickup", PROTO_STATUS_EN_ROUTE_TO_PICKUP},
    {"courier_waiting_at_pickup", PROTO_STATUS_AT_PICKUP},
    {"package_picked_up", PROTO_STATUS_PICKED_UP},
    {"package_delivering", PROTO_STATUS_EN_ROUTE_TO_DROPOFF},
    {"courier_arriving_at_dropoff", PROTO_STATUS_EN_ROUTE_TO_DROPOFF},
    {"courier_waiting_at_dropoff", PROTO_STATUS_AT_DROPOFF},
    {"package_delivered", PROTO_STATUS_DELIVERED},
    {"package_canceled", PROTO_STATUS_CANCELLED},
};

/*
 * Where each event kind keeps its delivery and its driver.  A driver event
 * (several a minute while the driver moves) gives the position alone, so it
 * coalesces for slow watchers (adapters/README.md, "Coalescing"); its copy of
 * the delivery status is not used either: the event carries no time, so a
 * retried driver event would put back a status that a later job or delivery
 * event has already moved past (a "delivering" after "delivered").
 */
static const struct stuart_shape {
	const char *event;
	const char *type;
	const char *delivery; /* path of the delivery object */
	const char *driver;   /* path of the driver object */
	bool position_only;
} stuart_shapes[] = {
    {"job", "create", "data.currentDelivery", "data.currentDelivery.driver", false},
    {"job", "update", "data.currentDelivery", "data.currentDelivery.driver", false},
    {"delivery", "create", "data", "data.driver", false},
    {"delivery", "update", "data", "data.driver", false},
    {"driver", "update", "data.job.currentDelivery", "data", true},
};

static const char *path_join(char *buf, const char *base, const char *leaf)
{
	snprintf(buf, STUART_PATH_MAX, "%s.%s", base, leaf);
	return buf;
}

static proto_status_t status_in(const struct stuart_status *table, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(table[i].name, name) == 0)
			return table[i].status;
	}
	return PROTO_STATUS_NONE;
}

static proto_status_t stuart_status(const char *name)
{
	return status_in(stuart_statuses, sizeof(stuart_statuses) / sizeof(stuart_statuses[0]),
			 name);
}

static const struct stuart_shape *stuart_shape(const char *event, const char *type)
{
	for (size_t i = 0; i < sizeof(stuart_shapes) / sizeof(stuart_shapes[0]); i++) {
		if (strcmp(stuart_shapes[i].event, event) == 0 &&
		    strcmp(stuart_shapes[i].type, type) == 0)
			return &stuart_shapes[i];
	}
	return NULL;
}

/*
 * The request must carry "Authorization: Bearer SECRET" (or "Basic
 * base64(user:password)" for a secret "user:password"), the header the
 * Stuart webhook is configured to send.
 */
static int stuart_verify(const adapter_request_t *req, proto_error_t *err)
{
	const char *value =
	    req->header != NULL ? req->header(req->header_ctx, "authorization") : NULL;

	if (req->secret == NULL || req->secret_len == 0)
		return adapter_fail(err, ADAPTER_EAUTH, "authorization",
				    "no secret is configured for stuart");
	if (value == NULL)
		return adapter_fail(err, ADAPTER_EAUTH, "authorization", "is missing");
	if (!adapter_authorization_ok(value, req->secret, req->secret_len))
		return adapter_fail(err, ADAPTER_EAUTH, "authorization",
				    "does not hold the configured secret");
	return ADAPTER_OK;
}

/*
 * The driver's position from the driver object at driver_path and, with
 * courier, its name and vehicle; the vehicle falls back to the delivery's
 * transportType.
 */
static int stuart_driver(const cJSON *root, const char *driver_path, const char *delivery_path,
			 bool courier, proto_update_t *u, proto_error_t *err)
{
	char lat_path[STUART_PATH_MAX], lng_path[STUART_PATH_MAX], path[STUART_PATH_MAX];
	const cJSON *driver = NULL;
	const char *name = NULL, *vehicle = NULL;
	bool found = false;
	int rc;

	rc = adapter_get_object(root, driver_path, false, &driver, err);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		rc = adapter_get_latlng(root, path_join(lat_path, driver_path, "latitude"),
					path_join(lng_path, driver_path, "longitude"), false,
					&u->location.lat, &u->location.lng, &found, err);
		if (rc < 0)
			return rc;
		u->has_location = found;
	}
	if (!courier)
		return ADAPTER_OK;
	if (rc == 0 &&
	    ((rc = adapter_get_string(root, path_join(path, driver_path, "name"), false, &name,
				      err)) < 0 ||
	     (rc = adapter_get_string(root, path_join(path, driver_path, "transportType.code"),
				      false, &vehicle, err)) < 0))
		return rc;
	if (vehicle == NULL &&
	    (rc = adapter_get_string(root, path_join(path, delivery_path, "transportType.code"),
				     false, &vehicle, err)) < 0)
		return rc;
	adapter_copy_text(u->courier.name, sizeof(u->courier.name), name);
	adapter_copy_text(u->courier.vehicle, sizeof(u->courier.vehicle), vehicle);
	u->has_courier = u->courier.name[0] != '\0' || u->courier.vehicle[0] != '\0';
	return ADAPTER_OK;
}

/*
 * A v3 event: one update with the topic's status for the package whose
 * reference is the order id, or none (a topic without a canonical status,
 * a package without a reference).
 */
static int stuart_parse_v3(const adapter_request_t *req, const cJSON *root, proto_update_t *out,
			   int max, int *n, proto_error_t *err)
{
	const cJSON *details = NULL, *package = NULL;
	const char *topic, *id = NULL, *reference = NULL, *task = NULL, *name = NULL;
	char event_id[PROTO_EVENT_ID_MAX + 1];
	proto_status_t status;
	proto_update_t u;
	int64_t ts = req->now_ms;
	int rc;

	if ((rc = adapter_get_string(root, "topic", true, &topic, err)) < 0 ||
	    (rc = adapter_get_object(root, "details", true, &details, err)) < 0 ||
	    (rc = adapter_get_string(root, "event_id", false, &id, err)) < 0 ||
	    (rc = adapter_get_time(root, "occurred_at", false, &ts, err)) < 0 ||
	    (rc = adapter_get_object(root, "details.package", false, &package, err)) < 0 ||
	    (rc = adapter_get_string(root, "details.package.reference", false, &reference, err)) <
		0 ||
	    (rc = adapter_get_string(root, "details.task", false, &task, err)) < 0 ||
	    (rc = adapter_get_string(root, "details.courier.name", false, &name, err)) < 0)
		return rc;
	status = status_in(stuart_topics, sizeof(stuart_topics) / sizeof(stuart_topics[0]), topic);
	if (strcmp(topic, "courier_arriving") == 0 && task != NULL)
		status = strcmp(task, "pickup") == 0	? PROTO_STATUS_EN_ROUTE_TO_PICKUP
			 : strcmp(task, "dropoff") == 0 ? PROTO_STATUS_EN_ROUTE_TO_DROPOFF
							: PROTO_STATUS_NONE;
	if (status == PROTO_STATUS_NONE || reference == NULL || reference[0] == '\0')
		return ADAPTER_OK; /* nothing canonical, or no order to give it to */
	if (!proto_order_id_valid(reference, strlen(reference)))
		return adapter_fail(err, ADAPTER_EINVAL, "details.package.reference",
				    "is not an order id (1-128 of A-Z a-z 0-9 . _ ~ -)");
	if (id == NULL || id[0] == '\0')
		adapter_body_event_id(req->body, req->body_len, event_id);
	else
		snprintf(event_id, sizeof(event_id), "%s", id);
	if ((rc = adapter_update_init(&u, STUART_PROVIDER, reference, ts, event_id, err)) < 0)
		return rc;
	u.status = status;
	adapter_copy_text(u.courier.name, sizeof(u.courier.name), name);
	u.has_courier = u.courier.name[0] != '\0';
	return adapter_emit_one(&u, out, max, n, err);
}

/*
 * One update for the delivery an event is about, or none: for job and
 * driver events without a current delivery, deliveries without a
 * clientReference, unknown events and events with nothing to track.
 */
static int stuart_parse(const adapter_request_t *req, proto_update_t *out, int max, int *n,
			proto_error_t *err)
{
	const struct stuart_shape *shape;
	const cJSON *data = NULL, *delivery = NULL;
	const char *event, *type, *version, *reference = NULL, *status_name = NULL;
	char path[STUART_PATH_MAX], event_id[PROTO_EVENT_ID_MAX + 1];
	proto_update_t u;
	cJSON *root;
	int rc;

	*n = 0;
	root = adapter_parse_json(req->body, req->body_len, err);
	if (root == NULL)
		return strcmp(err->message, ADAPTER_MSG_NOMEM) == 0 ? ADAPTER_ENOMEM
								    : ADAPTER_EINVAL;
	/* v2 bodies carry no version; v3 bodies say "v3". */
	if ((rc = adapter_get_string(root, "version", false, &version, err)) < 0)
		goto done;
	if (rc == 0) {
		if (strcmp(version, "v3") == 0)
			rc = stuart_parse_v3(req, root, out, max, n, err);
		else
			rc =
			    adapter_fail(err, ADAPTER_EINVAL, "version",
					 "is not a Stuart webhook version trackgate reads (\"v3\", "
					 "or none for the {event, type, data} webhooks)");
		goto done;
	}
	if ((rc = adapter_get_string(root, "event", true, &event, err)) < 0 ||
	    (rc = adapter_get_string(root, "type", true, &type, err)) < 0 ||
	    (rc = adapter_get_object(root, "data", true, &data, err)) < 0)
		goto done;
	shape = stuart_shape(event, type);
	if (shape == NULL)
		goto done; /* driver online/offline, events added later: nothing to track */

	/* From here a getter's 1 (absent) for the delivery or its reference means "ignored". */
	if ((rc = adapter_get_object(root, shape->delivery, false, &delivery, err)) != 0)
		goto done;
	rc = adapter_get_string(root, path_join(path, shape->delivery, "clientReference"), false,
				&reference, err);
	if (rc != 0 || reference[0] == '\0')
		goto done; /* no reference: the delivery cannot be matched to an order */
	if (!proto_order_id_valid(reference, strlen(reference))) {
		rc = adapter_fail(err, ADAPTER_EINVAL, path,
				  "is not an order id (1-128 of A-Z a-z 0-9 . _ ~ -)");
		goto done;
	}
	adapter_body_event_id(req->body, req->body_len, event_id);
	rc = adapter_update_init(&u, STUART_PROVIDER, reference, req->now_ms, event_id, err);
	if (rc < 0)
		goto done;

	if (!shape->position_only) {
		rc = adapter_get_string(root, path_join(path, shape->delivery, "status"), false,
					&status_name, err);
		if (rc < 0)
			goto done;
		if (rc == 0)
			u.status = stuart_status(status_name); /* unknown: no status */
		rc = adapter_get_time(root, path_join(path, shape->delivery, "etaToOrigin"), false,
				      &u.eta.pickup, err);
		if (rc < 0)
			goto done;
		u.eta.has_pickup = rc == 0;
		rc = adapter_get_time(root, path_join(path, shape->delivery, "etaToDestination"),
				      false, &u.eta.dropoff, err);
		if (rc < 0)
			goto done;
		u.eta.has_dropoff = rc == 0;
		u.has_eta = u.eta.has_pickup || u.eta.has_dropoff;
	}
	rc = stuart_driver(root, shape->driver, shape->delivery, !shape->position_only, &u, err);
	if (rc < 0)
		goto done;

	if (u.status == PROTO_STATUS_NONE && !u.has_location && !u.has_eta)
		goto done; /* an unknown status and no driver yet; a driver without a position */
	if (max < 1) {
		rc = adapter_fail(err, ADAPTER_EINVAL, "", "no room for an update (max %d)", max);
		goto done;
	}
	out[0] = u;
	*n = 1;
done:
	cJSON_Delete(root);
	return rc < 0 ? rc : ADAPTER_OK;
}

const adapter_ops_t adapter_stuart = {STUART_PROVIDER, stuart_verify, stuart_parse};
