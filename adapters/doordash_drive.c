/*
 * doordash_drive.c - DoorDash Drive (v2, "Drive API") delivery webhooks
 * (adapters/README.md#doordash_drive has the field and status tables and
 * the documentation they come from).
 *
 * DoorDash signs nothing: the webhook endpoint is protected by the Basic
 * or Bearer credential configured for it in the Developer Portal, which
 * DoorDash sends in the Authorization header.  The configured secret is
 * that credential ("user:password" for Basic, the token for Bearer).
 *
 * One webhook gives at most one update:
 *   - a lifecycle event (DASHER_CONFIRMED, ..., DELIVERY_RETURNED): its
 *     status, the Dasher's name and id, the estimated pickup/dropoff times
 *     and the Dasher's position when present;
 *   - a tracking event (DASHER_ENROUTE_TO_PICKUP/_DROPOFF/_RETURN) or an
 *     event with no canonical status (DASHER_CONFIRMED_RETURN_ARRIVAL,
 *     DELIVERY_BATCHED): the Dasher's position only, so the gateway may
 *     coalesce it, and nothing when there is none;
 *   - any other event_name: nothing.
 * DoorDash documents no event id: the event id is a hash of the body, so
 * the retries of one webhook (the same bytes) are applied once.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "adapters_private.h"

#define PROVIDER "doordash_drive"

enum dd_kind {
	DD_STATUS,   /* a lifecycle event: status and everything else */
	DD_LOCATION, /* the Dasher's position only */
};

static const struct {
	const char *event_name;
	enum dd_kind kind;
	proto_status_t status;
} dd_events[] = {
    {"DASHER_CONFIRMED", DD_STATUS, PROTO_STATUS_EN_ROUTE_TO_PICKUP},
    {"DASHER_CONFIRMED_PICKUP_ARRIVAL", DD_STATUS, PROTO_STATUS_AT_PICKUP},
    {"DASHER_PICKED_UP", DD_STATUS, PROTO_STATUS_PICKED_UP},
    {"DASHER_CONFIRMED_DROPOFF_ARRIVAL", DD_STATUS, PROTO_STATUS_AT_DROPOFF},
    {"DASHER_DROPPED_OFF", DD_STATUS, PROTO_STATUS_DELIVERED},
    {"DELIVERY_CANCELLED", DD_STATUS, PROTO_STATUS_CANCELLED},
    {"DELIVERY_RETURN_INITIALIZED", DD_STATUS, PROTO_STATUS_FAILED},
    {"DELIVERY_RETURNED", DD_STATUS, PROTO_STATUS_RETURNED},
    {"DASHER_CONFIRMED_RETURN_ARRIVAL", DD_LOCATION, PROTO_STATUS_NONE},
    {"DELIVERY_BATCHED", DD_LOCATION, PROTO_STATUS_NONE},
    {"DASHER_ENROUTE_TO_PICKUP", DD_LOCATION, PROTO_STATUS_NONE},
    {"DASHER_ENROUTE_TO_DROPOFF", DD_LOCATION, PROTO_STATUS_NONE},
    {"DASHER_ENROUTE_TO_RETURN", DD_LOCATION, PROTO_STATUS_NONE},
};

/*
 * The entry of an event name, or -1.  Case-insensitive: the lifecycle
 * events are documented in upper case, the opt-in tracking events as
 * dasher_enroute_... in lower case.
 */
static int dd_event(const char *name)
{
	for (size_t i = 0; i < sizeof(dd_events) / sizeof(dd_events[0]); i++) {
		if (strcasecmp(name, dd_events[i].event_name) == 0)
			return (int)i;
	}
	return -1;
}

static int doordash_drive_verify(const adapter_request_t *req, proto_error_t *err)
{
	/* DoorDash lets the merchant name the header; [webhook.doordash_drive] header = NAME. */
	const char *name = req->credential_header ? req->credential_header : "authorization";
	const char *auth = req->header != NULL ? req->header(req->header_ctx, name) : NULL;

	if (req->secret == NULL || req->secret_len == 0)
		return adapter_fail(err, ADAPTER_EAUTH, "", "no webhook credential is configured");
	if (auth == NULL)
		return adapter_fail(err, ADAPTER_EAUTH, name, "is missing");
	if (!adapter_authorization_ok(auth, req->secret, req->secret_len))
		return adapter_fail(err, ADAPTER_EAUTH, name,
				    "is not the credential configured for this webhook");
	return ADAPTER_OK;
}

/* dasher_id: an integer in the documented example; a string is taken too (webhooks and the
 * poll of GET delivery alike: adapters_private.h). */
int adapter_doordash_dasher_id(const cJSON *root, proto_courier_t *courier, proto_error_t *err)
{
	const cJSON *item = adapter_get(root, "dasher_id");

	if (item == NULL)
		return ADAPTER_OK;
	if (cJSON_IsString(item) && item->valuestring != NULL) {
		adapter_copy_text(courier->id, sizeof(courier->id), item->valuestring);
		return ADAPTER_OK;
	}
	if (cJSON_IsNumber(item) && isfinite(item->valuedouble) && item->valuedouble >= 0 &&
	    item->valuedouble <= (double)PROTO_INT_MAX &&
	    floor(item->valuedouble) == item->valuedouble) {
		snprintf(courier->id, sizeof(courier->id), "%.0f", item->valuedouble);
		return ADAPTER_OK;
	}
	return adapter_fail(err, ADAPTER_EINVAL, "dasher_id",
			    "must be a non-negative integer or a string");
}

/* The status event's Dasher, ETAs. */
static int dd_details(const cJSON *root, proto_update_t *u, proto_error_t *err)
{
	const char *name = NULL;
	int rc;

	if ((rc = adapter_get_time(root, "pickup_time_estimated", false, &u->eta.pickup, err)) < 0)
		return rc;
	u->eta.has_pickup = rc == 0;
	if ((rc = adapter_get_time(root, "dropoff_time_estimated", false, &u->eta.dropoff, err)) <
	    0)
		return rc;
	u->eta.has_dropoff = rc == 0;
	u->has_eta = u->eta.has_pickup || u->eta.has_dropoff;

	if ((rc = adapter_doordash_dasher_id(root, &u->courier, err)) < 0 ||
	    (rc = adapter_get_string(root, "dasher_name", false, &name, err)) < 0)
		return rc;
	adapter_copy_text(u->courier.name, sizeof(u->courier.name), name);
	u->has_courier = u->courier.id[0] != '\0' || u->courier.name[0] != '\0';
	return ADAPTER_OK;
}

/*
 * The event's time: the newer of created_at and updated_at, whichever are
 * there (the delivery's payload carries both once it has changed), so a
 * later change of one delivery is never judged older than an earlier one.
 * Neither leaves *ts (the receive time).  *field names the member the time
 * came from, for an error about it.
 */
static int dd_event_time(const cJSON *root, int64_t *ts, const char **field, proto_error_t *err)
{
	int64_t created = 0, updated = 0;
	int rc_created, rc_updated;

	if ((rc_created = adapter_get_time(root, "created_at", false, &created, err)) < 0)
		return rc_created;
	if ((rc_updated = adapter_get_time(root, "updated_at", false, &updated, err)) < 0)
		return rc_updated;
	if (rc_updated == 0 && (rc_created != 0 || updated > created)) {
		*ts = updated;
		*field = "updated_at";
	} else if (rc_created == 0) {
		*ts = created;
		*field = "created_at";
	}
	return ADAPTER_OK;
}

static int doordash_drive_parse(const adapter_request_t *req, proto_update_t *out, int max, int *n,
				proto_error_t *err)
{
	cJSON *root;
	const char *event_name = NULL, *order_id = NULL, *ts_field = "created_at";
	char event_id[PROTO_EVENT_ID_MAX + 1];
	proto_error_t scratch;
	proto_update_t u;
	bool found = false;
	int64_t ts = req->now_ms;
	int rc, ev;

	*n = 0;
	if (err == NULL)
		err = &scratch;
	root = adapter_parse_json(req->body, req->body_len, err);
	if (root == NULL)
		return strcmp(err->message, ADAPTER_MSG_NOMEM) == 0 ? ADAPTER_ENOMEM
								    : ADAPTER_EINVAL;
	if ((rc = adapter_get_string(root, "event_name", true, &event_name, err)) < 0)
		goto out;
	ev = dd_event(event_name);
	if (ev < 0) {
		rc = ADAPTER_OK; /* an event this adapter does not track */
		goto out;
	}

	if ((rc = adapter_get_string(root, "external_delivery_id", true, &order_id, err)) < 0 ||
	    (rc = dd_event_time(root, &ts, &ts_field, err)) < 0)
		goto out;
	adapter_body_event_id(req->body, req->body_len, event_id);
	if ((rc = adapter_update_init(&u, PROVIDER, order_id, ts, event_id, err)) < 0) {
		if (strcmp(err->field, "order_id") == 0)
			snprintf(err->field, sizeof(err->field), "external_delivery_id");
		else if (strcmp(err->field, "ts") == 0)
			snprintf(err->field, sizeof(err->field), "%s", ts_field);
		goto out;
	}

	if ((rc = adapter_get_latlng(root, "dasher_location.lat", "dasher_location.lng", false,
				     &u.location.lat, &u.location.lng, &found, err)) < 0)
		goto out;
	u.has_location = found;
	if (dd_events[ev].kind == DD_STATUS) {
		u.status = dd_events[ev].status;
		if ((rc = dd_details(root, &u, err)) < 0)
			goto out;
	}
	rc = adapter_emit_one(&u, out, max, n, err);
out:
	cJSON_Delete(root);
	return rc;
}

const adapter_ops_t adapter_doordash_drive = {PROVIDER, doordash_drive_verify,
					      doordash_drive_parse};
