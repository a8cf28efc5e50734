/*
 * poll/poll_parse.c - polled provider answers to canonical updates
 * (poll_parse.h has the fields read).
 *
 * What the adapters share (adapters_private.h) is reused: the strict JSON
 * body, the typed getters with their error paths, times, coordinates and
 * places, the body-hash event id, the update helpers.  The providers'
 * webhook parsers themselves are static to their files and read a webhook
 * envelope (kind/data, event_name, triggerName), so the field mapping of
 * each polled resource is written here; the Uber Direct status names are
 * the same as in adapters/uber_direct.c and must be kept in step with it.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "adapters_private.h"
#include "poll_parse.h"

typedef struct status_name {
	const char *name;
	proto_status_t status;
} status_name_t;

/* Uber Direct's delivery status (the same table as adapters/uber_direct.c). */
static const status_name_t uber_statuses[] = {
    {"pending", PROTO_STATUS_CREATED},		 {"pickup", PROTO_STATUS_EN_ROUTE_TO_PICKUP},
    {"pickup_complete", PROTO_STATUS_PICKED_UP}, {"dropoff", PROTO_STATUS_EN_ROUTE_TO_DROPOFF},
    {"delivered", PROTO_STATUS_DELIVERED},	 {"canceled", PROTO_STATUS_CANCELLED},
    {"returned", PROTO_STATUS_RETURNED},
};

/*
 * DoorDash Drive's delivery_status.  "quote" (not yet a delivery) and any
 * value not listed give no status; the return leg counts as a failed
 * delivery, as the webhook adapter counts DELIVERY_RETURN_INITIALIZED.
 */
static const status_name_t doordash_statuses[] = {
    {"created", PROTO_STATUS_CREATED},
    {"confirmed", PROTO_STATUS_COURIER_ASSIGNED},
    {"enroute_to_pickup", PROTO_STATUS_EN_ROUTE_TO_PICKUP},
    {"arrived_at_pickup", PROTO_STATUS_AT_PICKUP},
    {"picked_up", PROTO_STATUS_PICKED_UP},
    {"enroute_to_dropoff", PROTO_STATUS_EN_ROUTE_TO_DROPOFF},
    {"arrived_at_dropoff", PROTO_STATUS_AT_DROPOFF},
    {"delivered", PROTO_STATUS_DELIVERED},
    {"cancelled", PROTO_STATUS_CANCELLED},
    {"enroute_to_return", PROTO_STATUS_FAILED},
    {"arrived_at_return", PROTO_STATUS_FAILED},
    {"returned", PROTO_STATUS_RETURNED},
};

static proto_status_t status_of(const status_name_t *table, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(table[i].name, name) == 0)
			return table[i].status;
	return PROTO_STATUS_NONE;
}

/* The body as a JSON object, or NULL with the result code in *rc. */
static cJSON *poll_body(const char *body, size_t len, int *n, int *rc, proto_error_t *err)
{
	cJSON *root;

	*n = 0;
	root = adapter_parse_json(body, len, err);
	if (root == NULL)
		*rc = err != NULL && strcmp(err->message, ADAPTER_MSG_NOMEM) == 0 ? ADAPTER_ENOMEM
										  : ADAPTER_EINVAL;
	return root;
}

/*
 * Starts the update for the caller's order at ts with the body's hash as
 * its event id; an error about ts names ts_field, the answer's member.
 */
static int poll_update_init(proto_update_t *u, const char *provider, const char *order_id,
			    int64_t ts, const char *ts_field, const char *body, size_t len,
			    proto_error_t *err)
{
	char event_id[PROTO_EVENT_ID_MAX + 1];
	int rc;

	adapter_body_event_id(body, len, event_id);
	rc = adapter_update_init(u, provider, order_id, ts, event_id, err);
	if (rc < 0 && err != NULL && strcmp(err->field, "ts") == 0)
		snprintf(err->field, sizeof(err->field), "%s", ts_field);
	return rc;
}

/* An ETA at path into *ms and *has; absent leaves it out. */
static int poll_eta(const cJSON *root, const char *path, int64_t *ms, bool *has, proto_error_t *err)
{
	int rc = adapter_get_time(root, path, false, ms, err);

	if (rc < 0)
		return rc;
	*has = rc == 0;
	return ADAPTER_OK;
}

/* --- Uber Direct: the delivery ------------------------------------------------------- */

int poll_parse_uber_direct(const char *body, size_t len, const char *order_id, int64_t now_ms,
			   proto_update_t *out, int *n, proto_error_t *err)
{
	static const char *const objects[] = {"courier", "courier.location",
					      "pickup",	 "pickup.location",
					      "dropoff", "dropoff.location"};
	const char *status = NULL, *name = NULL, *vehicle = NULL;
	proto_update_t u;
	bool found = false;
	int64_t ts = now_ms;
	int rc = ADAPTER_OK;
	cJSON *root = poll_body(body, len, n, &rc, err);

	if (root == NULL)
		return rc;
	for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); i++) {
		const cJSON *item = adapter_get(root, objects[i]);
		if (item != NULL && !cJSON_IsObject(item)) {
			rc = adapter_fail(err, ADAPTER_EINVAL, objects[i], "must be an object");
			goto out;
		}
	}
	if ((rc = adapter_get_time(root, "updated", false, &ts, err)) < 0 ||
	    (rc = poll_update_init(&u, "uber_direct", order_id, ts, "updated", body, len, err)) < 0)
		goto out;

	if ((rc = adapter_get_string(root, "status", false, &status, err)) < 0)
		goto out;
	if (status != NULL)
		u.status = status_of(uber_statuses,
				     sizeof(uber_statuses) / sizeof(uber_statuses[0]), status);
	if ((rc = adapter_get_latlng(root, "courier.location.lat", "courier.location.lng", false,
				     &u.location.lat, &u.location.lng, &found, err)) < 0)
		goto out;
	u.has_location = found;
	if ((rc = poll_eta(root, "pickup_eta", &u.eta.pickup, &u.eta.has_pickup, err)) < 0 ||
	    (rc = poll_eta(root, "dropoff_eta", &u.eta.dropoff, &u.eta.has_dropoff, err)) < 0)
		goto out;
	u.has_eta = u.eta.has_pickup || u.eta.has_dropoff;
	/* The courier's phone number is not carried: the canonical courier has none. */
	if ((rc = adapter_get_string(root, "courier.name", false, &name, err)) < 0 ||
	    (rc = adapter_get_string(root, "courier.vehicle_type", false, &vehicle, err)) < 0)
		goto out;
	adapter_copy_text(u.courier.name, sizeof(u.courier.name), name);
	adapter_copy_text(u.courier.vehicle, sizeof(u.courier.vehicle), vehicle);
	u.has_courier = u.courier.name[0] != '\0' || u.courier.vehicle[0] != '\0';
	adapter_get_place(root, "pickup.location.lat", "pickup.location.lng", &u.places.pickup,
			  &u.places.has_pickup);
	adapter_get_place(root, "dropoff.location.lat", "dropoff.location.lng", &u.places.dropoff,
			  &u.places.has_dropoff);
	u.has_places = u.places.has_pickup || u.places.has_dropoff;
	rc = adapter_emit_one(&u, out, 1, n, err);
out:
	cJSON_Delete(root);
	return rc;
}

/* --- DoorDash Drive: the delivery ---------------------------------------------------- */

int poll_parse_doordash_drive(const char *body, size_t len, const char *order_id, int64_t now_ms,
			      proto_update_t *out, int *n, proto_error_t *err)
{
	const char *status = NULL, *name = NULL, *ts_field = "updated_at";
	int64_t created = 0, updated = 0, ts = now_ms;
	int rc_created, rc_updated, rc = ADAPTER_OK;
	proto_update_t u;
	bool found = false;
	cJSON *root = poll_body(body, len, n, &rc, err);

	if (root == NULL)
		return rc;
	if (adapter_get(root, "dasher_location") != NULL &&
	    !cJSON_IsObject(adapter_get(root, "dasher_location"))) {
		rc = adapter_fail(err, ADAPTER_EINVAL, "dasher_location", "must be an object");
		goto out;
	}
	/* The delivery's last change (updated_at), else its creation. */
	if ((rc = rc_created = adapter_get_time(root, "created_at", false, &created, err)) < 0 ||
	    (rc = rc_updated = adapter_get_time(root, "updated_at", false, &updated, err)) < 0)
		goto out;
	if (rc_updated == 0 && (rc_created != 0 || updated >= created)) {
		ts = updated;
	} else if (rc_created == 0) {
		ts = created;
		ts_field = "created_at";
	}
	if ((rc = poll_update_init(&u, "doordash_drive", order_id, ts, ts_field, body, len, err)) <
	    0)
		goto out;

	if ((rc = adapter_get_string(root, "delivery_status", false, &status, err)) < 0)
		goto out;
	if (status != NULL)
		u.status =
		    status_of(doordash_statuses,
			      sizeof(doordash_statuses) / sizeof(doordash_statuses[0]), status);
	if ((rc = adapter_get_latlng(root, "dasher_location.lat", "dasher_location.lng", false,
				     &u.location.lat, &u.location.lng, &found, err)) < 0)
		goto out;
	u.has_location = found;
	if ((rc = poll_eta(root, "pickup_time_estimated", &u.eta.pickup, &u.eta.has_pickup, err)) <
		0 ||
	    (rc = poll_eta(root, "dropoff_time_estimated", &u.eta.dropoff, &u.eta.has_dropoff,
			   err)) < 0)
		goto out;
	u.has_eta = u.eta.has_pickup || u.eta.has_dropoff;
	/* dasher_phone_number is not carried: the canonical courier has no phone. */
	if ((rc = adapter_doordash_dasher_id(root, &u.courier, err)) < 0 ||
	    (rc = adapter_get_string(root, "dasher_name", false, &name, err)) < 0)
		goto out;
	adapter_copy_text(u.courier.name, sizeof(u.courier.name), name);
	u.has_courier = u.courier.id[0] != '\0' || u.courier.name[0] != '\0';
	rc = adapter_emit_one(&u, out, 1, n, err);
out:
	cJSON_Delete(root);
	return rc;
}

/* --- Onfleet: the worker ------------------------------------------------------------- */

/* One coordinate of a GeoJSON position: a finite JSON number. */
static bool onfleet_coordinate(const cJSON *item, double *out)
{
	if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble))
		return false;
	*out = item->valuedouble;
	return true;
}

int poll_parse_onfleet(const char *body, size_t len, const char *order_id, int64_t now_ms,
		       proto_update_t *out, int *n, proto_error_t *err)
{
	const cJSON *loc;
	proto_update_t u;
	double lng = 0, lat = 0;
	int64_t ts = now_ms;
	int rc = ADAPTER_OK;
	cJSON *root = poll_body(body, len, n, &rc, err);

	if (root == NULL)
		return rc;
	/* A worker never seen has no location (null, absent or []): nothing to track. */
	loc = adapter_get(root, "location");
	if (loc == NULL || (cJSON_IsArray(loc) && cJSON_GetArraySize(loc) == 0))
		goto out;
	/* GeoJSON order: [longitude, latitude]. */
	if (!cJSON_IsArray(loc) || cJSON_GetArraySize(loc) != 2 ||
	    !onfleet_coordinate(cJSON_GetArrayItem(loc, 0), &lng) ||
	    !onfleet_coordinate(cJSON_GetArrayItem(loc, 1), &lat)) {
		rc = adapter_fail(err, ADAPTER_EINVAL, "location",
				  "must be [longitude, latitude], two numbers");
		goto out;
	}
	if (!(lng >= -180.0 && lng <= 180.0)) {
		rc = adapter_fail(err, ADAPTER_EINVAL, "location",
				  "longitude (first) must be in [-180, 180]");
		goto out;
	}
	if (!(lat >= -90.0 && lat <= 90.0)) {
		rc = adapter_fail(err, ADAPTER_EINVAL, "location",
				  "latitude (second) must be in [-90, 90]");
		goto out;
	}
	/* timeLastSeen: when the worker's app last reported, i.e. the position's time. */
	if ((rc = adapter_get_time(root, "timeLastSeen", false, &ts, err)) < 0 ||
	    (rc = poll_update_init(&u, "onfleet", order_id, ts, "timeLastSeen", body, len, err)) <
		0)
		goto out;
	/* Position only, so that it coalesces: the worker's name and vehicle do not
	 * change between polls and come with the task's webhooks. */
	u.location.lat = lat;
	u.location.lng = lng;
	u.has_location = true;
	rc = adapter_emit_one(&u, out, 1, n, err);
out:
	cJSON_Delete(root);
	return rc;
}

/* --- the table ---------------------------------------------------------------------- */

/*
 * Paths and limits as each provider documents them.  The Uber path's
 * customer id is the [poll.uber_direct] customer-id, put in by the poller
 * (the first %s); the budgets stay under the published limits: Onfleet 20
 * requests/s per organisation (it bans past them), Uber and DoorDash
 * publish none per second for these reads, so 10.
 */
static const poll_parser_t poll_uber_direct = {"uber_direct",
					       "delivery",
					       poll_parse_uber_direct,
					       "https://api.uber.com",
					       "/v1/customers/%s/deliveries/%s",
					       10};
static const poll_parser_t poll_doordash_drive = {
    "doordash_drive",	       "delivery",
    poll_parse_doordash_drive, "https://openapi.doordash.com",
    "/drive/v2/deliveries/%s", 10};
static const poll_parser_t poll_onfleet = {
    "onfleet", "worker", poll_parse_onfleet, "https://onfleet.com", "/api/v2/workers/%s", 18};

static const poll_parser_t *const poll_parsers[] = {&poll_uber_direct, &poll_doordash_drive,
						    &poll_onfleet, NULL};

const poll_parser_t *poll_parser_find(const char *provider)
{
	for (size_t i = 0; provider != NULL && poll_parsers[i] != NULL; i++)
		if (strcmp(poll_parsers[i]->provider, provider) == 0)
			return poll_parsers[i];
	return NULL;
}

const poll_parser_t *const *poll_parser_all(void)
{
	return poll_parsers;
}
