/*
 * onfleet.c - the Onfleet adapter.
 *
 * Onfleet signs each webhook POST with X-Onfleet-Signature: the hex
 * HMAC-SHA512 of the raw body, keyed with the organization's webhook
 * secret decoded from the hexadecimal form the dashboard shows.  The body
 * is one trigger's payload:
 *
 *   {"triggerId": 1, "triggerName": "taskEta", "time": 1612990000000,
 *    "taskId": "..", "workerId": "..", "etaSeconds": 300,
 *    "data": {"task": {"id": .., "shortId": .., "pickupTask": false,
 *                      "worker": .., "metadata": [{"name": .., "value": ..}],
 *                      "completionDetails": {"lastLocation": [lng, lat]}},
 *             "worker": {"id": .., "name": .., "location": [lng, lat],
 *                        "vehicle": {"type": "CAR"}}}}
 *
 * Coordinates are GeoJSON order, [longitude, latitude].  One Onfleet task
 * is one stop, pickup or dropoff (data.task.pickupTask), so the same
 * trigger means a different canonical status for each kind; see the table
 * in README.md.  The GET ?check= validation handshake is answered by the
 * gateway, not here.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "adapters_private.h"

#define ONFLEET_PROVIDER "onfleet"

/* Longest configured secret looked at, in hex digits (Onfleet's are 64). */
#define ONFLEET_SECRET_HEX_MAX 1024

/* The metadata entry of a task that names the order, when present. */
#define ONFLEET_ORDER_METADATA "order_id"

typedef enum onfleet_kind {
	ONFLEET_IGNORED,  /* nothing to track: worker, route plan, SMS, batch triggers */
	ONFLEET_STATUS,	  /* a status, possibly with a position */
	ONFLEET_ETA,	  /* taskEta: time + etaSeconds */
	ONFLEET_POSITION, /* no status; a worker position when the payload has one */
} onfleet_kind_t;

typedef struct onfleet_trigger {
	int id;
	const char *name;
	onfleet_kind_t kind;
	proto_status_t pickup_status;  /* for a task with pickupTask: true */
	proto_status_t dropoff_status; /* for any other task */
} onfleet_trigger_t;

/* Onfleet's trigger table (docs.onfleet.com/reference/webhooks), ids and names. */
static const onfleet_trigger_t onfleet_triggers[] = {
    {0, "taskStarted", ONFLEET_STATUS, PROTO_STATUS_EN_ROUTE_TO_PICKUP,
     PROTO_STATUS_EN_ROUTE_TO_DROPOFF},
    {1, "taskEta", ONFLEET_ETA, PROTO_STATUS_NONE, PROTO_STATUS_NONE},
    {2, "taskArrival", ONFLEET_STATUS, PROTO_STATUS_AT_PICKUP, PROTO_STATUS_AT_DROPOFF},
    {3, "taskCompleted", ONFLEET_STATUS, PROTO_STATUS_PICKED_UP, PROTO_STATUS_DELIVERED},
    {4, "taskFailed", ONFLEET_STATUS, PROTO_STATUS_FAILED, PROTO_STATUS_FAILED},
    {5, "workerDuty", ONFLEET_IGNORED, PROTO_STATUS_NONE, PROTO_STATUS_NONE},
    {6, "taskCreated", ONFLEET_STATUS, PROTO_STATUS_CREATED, PROTO_STATUS_CREATED},
    {7, "taskUpdated", ONFLEET_POSITION, PROTO_STATUS_NONE, PROTO_STATUS_NONE},
    {8, "taskDeleted", ONFLEET_STATUS, PROTO_STATUS_CANCELLED, PROTO_STATUS_CANCELLED},
    {9, "taskAssigned", ONFLEET_STATUS, PROTO_STATUS_COURIER_ASSIGNED,
     PROTO_STATUS_COURIER_ASSIGNED},
    {10, "taskUnassigned", ONFLEET_STATUS, PROTO_STATUS_CREATED, PROTO_STATUS_CREATED},
    {12, "taskDelayed", ONFLEET_POSITION, PROTO_STATUS_NONE, PROTO_STATUS_NONE},
    {13, "taskCloned", ONFLEET_IGNORED, PROTO_STATUS_NONE, PROTO_STATUS_NONE},
    {14, "smsRecipientResponseMissed", ONFLEET_IGNORED, PROTO_STATUS_NONE, PROTO_STATUS_NONE},
    {15, "workerCreated", ONFLEET_IGNORED, PROTO_STATUS_NONE, PROTO_STATUS_NONE},
    {16, "workerDeleted", ONFLEET_IGNORED, PROTO_STATUS_NONE, PROTO_STATUS_NONE},
    {17, "SMSRecipientOptOut", ONFLEET_IGNORED, PROTO_STATUS_NONE, PROTO_STATUS_NONE},
    {18, "autoDispatchJobCompleted", ONFLEET_IGNORED, PROTO_STATUS_NONE, PROTO_STATUS_NONE},
    {19, "taskBatchCreateJobCompleted", ONFLEET_IGNORED, PROTO_STATUS_NONE, PROTO_STATUS_NONE},
    {20, "routeOptimizationJobCompleted", ONFLEET_IGNORED, PROTO_STATUS_NONE, PROTO_STATUS_NONE},
    {22, "routePlanCreated", ONFLEET_IGNORED, PROTO_STATUS_NONE, PROTO_STATUS_NONE},
    {23, "routePlanStarted", ONFLEET_IGNORED, PROTO_STATUS_NONE, PROTO_STATUS_NONE},
    {24, "routePlanCompleted", ONFLEET_IGNORED, PROTO_STATUS_NONE, PROTO_STATUS_NONE},
    {25, "workerUpdated", ONFLEET_IGNORED, PROTO_STATUS_NONE, PROTO_STATUS_NONE},
    {26, "routePlanUpdated", ONFLEET_IGNORED, PROTO_STATUS_NONE, PROTO_STATUS_NONE},
    {27, "routePlanUnassigned", ONFLEET_IGNORED, PROTO_STATUS_NONE, PROTO_STATUS_NONE},
    {28, "routePlanAssigned", ONFLEET_IGNORED, PROTO_STATUS_NONE, PROTO_STATUS_NONE},
    {29, "routePlanDelayed", ONFLEET_IGNORED, PROTO_STATUS_NONE, PROTO_STATUS_NONE},
    {30, "predictedTaskDelay", ONFLEET_POSITION, PROTO_STATUS_NONE, PROTO_STATUS_NONE},
};

#define ONFLEET_TRIGGER_COUNT (sizeof(onfleet_triggers) / sizeof(onfleet_triggers[0]))

/* --- the signature --------------------------------------------------------------- */

static bool onfleet_is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int onfleet_verify(const adapter_request_t *req, proto_error_t *err)
{
	unsigned char key[ONFLEET_SECRET_HEX_MAX / 2];
	const char *secret = (const char *)req->secret;
	const char *signature;
	size_t len = req->secret_len, start = 0;
	long key_len;
	bool ok;

	if (secret == NULL || len == 0)
		return adapter_fail(err, ADAPTER_EAUTH, "",
				    "no onfleet webhook secret is configured");
	/* Tolerate the whitespace a copy and paste of the secret brings along. */
	while (start < len && onfleet_is_space((unsigned char)secret[start]))
		start++;
	while (len > start && onfleet_is_space((unsigned char)secret[len - 1]))
		len--;
	if (len - start > ONFLEET_SECRET_HEX_MAX)
		return adapter_fail(err, ADAPTER_EAUTH, "",
				    "the configured onfleet secret is longer than %d hex digits",
				    ONFLEET_SECRET_HEX_MAX);
	key_len = adapter_hex_decode(secret + start, len - start, key, sizeof(key));
	if (key_len <= 0)
		return adapter_fail(err, ADAPTER_EAUTH, "",
				    "the configured onfleet secret must be the hexadecimal webhook "
				    "secret shown on the Onfleet dashboard (an even number of "
				    "0-9a-f digits)");
	signature =
	    req->header != NULL ? req->header(req->header_ctx, "x-onfleet-signature") : NULL;
	if (signature == NULL) {
		OPENSSL_cleanse(key, sizeof(key));
		return adapter_fail(err, ADAPTER_EAUTH, "X-Onfleet-Signature", "is missing");
	}
	ok = adapter_hmac_hex_ok(ADAPTER_HMAC_SHA512, key, (size_t)key_len, req->body,
				 req->body_len, signature);
	OPENSSL_cleanse(key, sizeof(key));
	if (!ok)
		return adapter_fail(
		    err, ADAPTER_EAUTH, "X-Onfleet-Signature",
		    "is not the HMAC-SHA512 of the body under the configured secret");
	return ADAPTER_OK;
}

/* --- the payload ----------------------------------------------------------------- */

/*
 * The trigger of the payload: by triggerName, else by triggerId.  *out is
 * NULL for a trigger this table does not list (a newer one), which is not
 * an error: there is nothing trackgate knows to track in it.
 */
static int onfleet_trigger(const cJSON *root, const onfleet_trigger_t **out, proto_error_t *err)
{
	const char *name = NULL;
	double id = 0;
	int rc;

	*out = NULL;
	rc = adapter_get_string(root, "triggerName", false, &name, err);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		for (size_t i = 0; i < ONFLEET_TRIGGER_COUNT; i++)
			if (strcmp(onfleet_triggers[i].name, name) == 0)
				*out = &onfleet_triggers[i];
		return ADAPTER_OK;
	}
	rc = adapter_get_number(root, "triggerId", false, &id, err);
	if (rc < 0)
		return rc;
	if (rc == 1)
		return adapter_fail(err, ADAPTER_EINVAL, "triggerName",
				    "is required (or triggerId)");
	for (size_t i = 0; i < ONFLEET_TRIGGER_COUNT; i++)
		if ((double)onfleet_triggers[i].id == id)
			*out = &onfleet_triggers[i];
	return ADAPTER_OK;
}

/* One coordinate of a [lng, lat] array: a number or a numeric string. */
static bool onfleet_coordinate(const cJSON *item, double *out)
{
	const char *s;
	char *end;
	double d;

	if (cJSON_IsNumber(item)) {
		d = item->valuedouble;
	} else if (cJSON_IsString(item) && item->valuestring != NULL) {
		s = item->valuestring;
		/* Digits, sign, point and exponent only: no spaces, hex, inf or nan. */
		if (s[0] == '\0' || strlen(s) > 64 || strspn(s, "0123456789+-.eE") != strlen(s))
			return false;
		d = strtod(s, &end);
		if (*end != '\0')
			return false;
	} else {
		return false;
	}
	if (!isfinite(d))
		return false;
	*out = d;
	return true;
}

/*
 * A GeoJSON position at path: [longitude, latitude].  Absent, null or an
 * empty array (what Onfleet sends before there is a location) is no
 * position; anything but two in-range coordinates is an error.
 */
static int onfleet_position(const cJSON *root, const char *path, proto_location_t *loc, bool *found,
			    proto_error_t *err)
{
	const cJSON *arr = adapter_get(root, path);
	double lng, lat;

	*found = false;
	if (arr == NULL)
		return ADAPTER_OK;
	if (!cJSON_IsArray(arr))
		return adapter_fail(err, ADAPTER_EINVAL, path, "must be an array [lng, lat]");
	if (cJSON_GetArraySize(arr) == 0)
		return ADAPTER_OK;
	if (cJSON_GetArraySize(arr) != 2 || !onfleet_coordinate(cJSON_GetArrayItem(arr, 0), &lng) ||
	    !onfleet_coordinate(cJSON_GetArrayItem(arr, 1), &lat))
		return adapter_fail(err, ADAPTER_EINVAL, path,
				    "must be [lng, lat], two numbers (or numeric strings)");
	if (!(lng >= -180.0 && lng <= 180.0))
		return adapter_fail(err, ADAPTER_EINVAL, path,
				    "longitude (first) must be in [-180, 180]");
	if (!(lat >= -90.0 && lat <= 90.0))
		return adapter_fail(err, ADAPTER_EINVAL, path,
				    "latitude (second) must be in [-90, 90]");
	memset(loc, 0, sizeof(*loc));
	loc->lat = lat;
	loc->lng = lng;
	*found = true;
	return ADAPTER_OK;
}

/*
 * The courier's position: data.worker.location (the worker's last known
 * position, on triggers that include the worker), else, for a finished
 * task, data.task.completionDetails.lastLocation.
 */
static int onfleet_location(const cJSON *root, proto_update_t *u, proto_error_t *err)
{
	static const char *const paths[] = {"data.worker.location",
					    "data.task.completionDetails.lastLocation"};
	bool found = false;
	int rc;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		rc = onfleet_position(root, paths[i], &u->location, &found, err);
		if (rc != ADAPTER_OK)
			return rc;
		if (found) {
			u->has_location = true;
			return ADAPTER_OK;
		}
	}
	return ADAPTER_OK;
}

/*
 * The task's stop, data.task.destination.location, as the pickup place of a
 * pickup task or the dropoff of any other: the page's marker.  Like every
 * place (adapter_get_place), a bad or 0,0 one is left out, not refused.
 */
static void onfleet_place(const cJSON *root, bool pickup, proto_update_t *u)
{
	proto_location_t loc;
	proto_error_t ignored;
	proto_point_t *p = pickup ? &u->places.pickup : &u->places.dropoff;
	bool *has = pickup ? &u->places.has_pickup : &u->places.has_dropoff;
	bool found = false;

	if (onfleet_position(root, "data.task.destination.location", &loc, &found, &ignored) !=
		ADAPTER_OK ||
	    !found)
		return;
	adapter_keep_place(loc.lat, loc.lng, p, has);
	u->has_places = *has;
}

/* Copies a courier string when it is a non-empty string; wrong types are errors. */
static int onfleet_courier_text(const cJSON *root, const char *path, char *dst, size_t cap,
				proto_error_t *err)
{
	const char *s = NULL;
	int rc = adapter_get_string(root, path, false, &s, err);

	if (rc < 0)
		return rc;
	if (rc == 0 && dst[0] == '\0' && s[0] != '\0')
		adapter_copy_text(dst, cap, s);
	return ADAPTER_OK;
}

/*
 * The courier: data.worker {id, name, vehicle.type}, else the id of the
 * task's worker (data.task.worker).  The top-level workerId is not used: it
 * names whoever caused the event, not necessarily the task's courier.
 */
static int onfleet_courier(const cJSON *root, proto_update_t *u, proto_error_t *err)
{
	static const char *const id_paths[] = {"data.worker.id", "data.task.worker"};
	proto_courier_t *c = &u->courier;
	int rc;

	for (size_t i = 0; i < sizeof(id_paths) / sizeof(id_paths[0]); i++) {
		rc = onfleet_courier_text(root, id_paths[i], c->id, sizeof(c->id), err);
		if (rc != ADAPTER_OK)
			return rc;
	}
	rc = onfleet_courier_text(root, "data.worker.name", c->name, sizeof(c->name), err);
	if (rc != ADAPTER_OK)
		return rc;
	rc = onfleet_courier_text(root, "data.worker.vehicle.type", c->vehicle, sizeof(c->vehicle),
				  err);
	if (rc != ADAPTER_OK)
		return rc;
	u->has_courier = c->id[0] != '\0' || c->name[0] != '\0' || c->vehicle[0] != '\0';
	return ADAPTER_OK;
}

/*
 * The order key, by this rule: the value of the task's metadata entry
 * named "order_id" (a string, or an integer number), else
 * data.task.shortId, else taskId (or data.task.id).  *field names where it
 * came from, for errors.
 */
static int onfleet_order_key(const cJSON *root, char *out, size_t cap, const char **field,
			     proto_error_t *err)
{
	static const char *const paths[] = {"data.task.shortId", "taskId", "data.task.id"};
	const cJSON *metadata = adapter_get(root, "data.task.metadata");
	const cJSON *entry;
	const char *s = NULL;
	int rc;

	if (metadata != NULL && !cJSON_IsArray(metadata))
		return adapter_fail(err, ADAPTER_EINVAL, "data.task.metadata", "must be an array");
	cJSON_ArrayForEach(entry, metadata)
	{
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(entry, "name");
		const cJSON *value = cJSON_GetObjectItemCaseSensitive(entry, "value");

		if (!cJSON_IsString(name) || strcmp(name->valuestring, ONFLEET_ORDER_METADATA) != 0)
			continue;
		*field = "data.task.metadata[order_id].value";
		if (cJSON_IsString(value) && value->valuestring[0] != '\0') {
			snprintf(out, cap, "%s", value->valuestring);
			return ADAPTER_OK;
		}
		if (cJSON_IsNumber(value) && isfinite(value->valuedouble) &&
		    value->valuedouble == floor(value->valuedouble) &&
		    fabs(value->valuedouble) <= (double)PROTO_INT_MAX) {
			snprintf(out, cap, "%lld", (long long)value->valuedouble);
			return ADAPTER_OK;
		}
		return adapter_fail(err, ADAPTER_EINVAL, *field,
				    "must be a non-empty string or an integer");
	}
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		rc = adapter_get_string(root, paths[i], false, &s, err);
		if (rc < 0)
			return rc;
		if (rc == 0 && s[0] != '\0') {
			*field = paths[i];
			snprintf(out, cap, "%s", s);
			return ADAPTER_OK;
		}
	}
	return adapter_fail(err, ADAPTER_EINVAL, "data.task.shortId",
			    "is required (or an order_id metadata entry, or taskId) to know "
			    "which order this is");
}

/* data.task.pickupTask: true for a pickup stop; absent or false for a dropoff. */
static int onfleet_is_pickup(const cJSON *root, bool *pickup, proto_error_t *err)
{
	const cJSON *item = adapter_get(root, "data.task.pickupTask");

	*pickup = false;
	if (item == NULL)
		return ADAPTER_OK;
	if (!cJSON_IsBool(item))
		return adapter_fail(err, ADAPTER_EINVAL, "data.task.pickupTask",
				    "must be true or false");
	*pickup = cJSON_IsTrue(item);
	return ADAPTER_OK;
}

/* Maps a parsed payload to at most one update; *n is 0 when there is nothing to track. */
static int onfleet_map(const adapter_request_t *req, const cJSON *root, proto_update_t *u, int *n,
		       proto_error_t *err)
{
	static const char *const objects[] = {"data", "data.task", "data.worker",
					      "data.task.completionDetails", "data.worker.vehicle"};
	const onfleet_trigger_t *trigger = NULL;
	char order_key[PROTO_ORDER_ID_MAX + 2];
	char event_id[PROTO_EVENT_ID_MAX + 1];
	const char *order_field = "data.task.shortId";
	proto_update_t scratch;
	bool pickup = false;
	double eta_seconds = 0;
	int64_t ts = req->now_ms;
	int rc;

	rc = onfleet_trigger(root, &trigger, err);
	if (rc != ADAPTER_OK)
		return rc;
	if (trigger == NULL || trigger->kind == ONFLEET_IGNORED)
		return ADAPTER_OK;
	for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); i++) {
		const cJSON *item = adapter_get(root, objects[i]);
		if (item != NULL && !cJSON_IsObject(item))
			return adapter_fail(err, ADAPTER_EINVAL, objects[i], "must be an object");
	}
	rc = adapter_get_time(root, "time", false, &ts, err);
	if (rc < 0)
		return rc;
	if (ts < 1 || ts > PROTO_MS_MAX)
		return adapter_fail(err, ADAPTER_EINVAL, "time",
				    "is missing and the receive time is out of range");
	rc = onfleet_is_pickup(root, &pickup, err);
	if (rc != ADAPTER_OK)
		return rc;

	memset(&scratch, 0, sizeof(scratch));
	scratch.status = pickup ? trigger->pickup_status : trigger->dropoff_status;
	rc = onfleet_location(root, &scratch, err);
	if (rc != ADAPTER_OK)
		return rc;
	if (trigger->kind == ONFLEET_ETA) {
		rc = adapter_get_number(root, "etaSeconds", true, &eta_seconds, err);
		if (rc != 0)
			return rc;
		if (!(eta_seconds >= 0 && eta_seconds * 1000.0 <= (double)(PROTO_MS_MAX - ts)))
			return adapter_fail(err, ADAPTER_EINVAL, "etaSeconds",
					    "must be a number of seconds >= 0 that keeps the ETA "
					    "before the year 5138");
		if (pickup) {
			scratch.eta.pickup = ts + (int64_t)llround(eta_seconds * 1000.0);
			scratch.eta.has_pickup = true;
		} else {
			scratch.eta.dropoff = ts + (int64_t)llround(eta_seconds * 1000.0);
			scratch.eta.has_dropoff = true;
		}
		scratch.has_eta = true;
	}
	if (scratch.status == PROTO_STATUS_NONE && !scratch.has_location && !scratch.has_eta)
		return ADAPTER_OK;
	/*
	 * Position-only triggers stay location-only, so the gateway may coalesce
	 * them (adapters/README.md).  After taskUnassigned the worker in the
	 * payload is the one who left.
	 */
	if (trigger->kind != ONFLEET_POSITION && strcmp(trigger->name, "taskUnassigned") != 0) {
		rc = onfleet_courier(root, &scratch, err);
		if (rc != ADAPTER_OK)
			return rc;
	}
	if (trigger->kind == ONFLEET_STATUS) /* ETA and position triggers stay coalescable */
		onfleet_place(root, pickup, &scratch);

	rc = onfleet_order_key(root, order_key, sizeof(order_key), &order_field, err);
	if (rc != ADAPTER_OK)
		return rc;
	adapter_body_event_id(req->body, req->body_len, event_id);
	rc = adapter_update_init(u, ONFLEET_PROVIDER, order_key, ts, event_id, err);
	if (rc != ADAPTER_OK) {
		/* Name the field the order id came from, not the canonical one. */
		if (err != NULL && strcmp(err->field, "order_id") == 0)
			snprintf(err->field, sizeof(err->field), "%s", order_field);
		return rc;
	}
	u->status = scratch.status;
	u->location = scratch.location;
	u->has_location = scratch.has_location;
	u->eta = scratch.eta;
	u->has_eta = scratch.has_eta;
	u->courier = scratch.courier;
	u->has_courier = scratch.has_courier;
	u->places = scratch.places;
	u->has_places = scratch.has_places;
	*n = 1;
	return ADAPTER_OK;
}

static int onfleet_parse(const adapter_request_t *req, proto_update_t *out, int max, int *n,
			 proto_error_t *err)
{
	cJSON *root;
	int rc;

	*n = 0;
	if (max < 1)
		return adapter_fail(err, ADAPTER_EINVAL, "", "no room for an update");
	root = adapter_parse_json(req->body, req->body_len, err);
	if (root == NULL)
		return err != NULL && strcmp(err->message, ADAPTER_MSG_NOMEM) == 0 ? ADAPTER_ENOMEM
										   : ADAPTER_EINVAL;
	rc = onfleet_map(req, root, out, n, err);
	if (rc != ADAPTER_OK)
		*n = 0;
	cJSON_Delete(root);
	return rc;
}

const adapter_ops_t adapter_onfleet = {ONFLEET_PROVIDER, onfleet_verify, onfleet_parse};
