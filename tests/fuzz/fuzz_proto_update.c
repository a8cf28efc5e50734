/*
 * fuzz_proto_update.c - proto_update_parse (POST /v1/updates bodies, and the
 * canonical form every adapter produces) on any bytes.
 *
 * Beyond "no crash, no leak, no UB" it checks what proto.h promises:
 *  - the result is one of the PROTO_E* codes, the error strings are
 *    terminated, and a failed decode leaves *out untouched;
 *  - passing no proto_error_t gives the same result;
 *  - an accepted update survives proto_update_to_json and back unchanged
 *    (every field, doubles bit for bit), and encoding is canonical: the
 *    re-parsed update encodes to the very same bytes.
 */
#include <math.h>
#include <stdbool.h>

#include "fuzz.h"
#include "proto.h"

static bool same_double(double a, double b)
{
	return memcmp(&a, &b, sizeof(a)) == 0;
}

static bool same_location(const proto_location_t *a, const proto_location_t *b)
{
	return same_double(a->lat, b->lat) && same_double(a->lng, b->lng) &&
	       a->has_heading == b->has_heading && a->has_speed == b->has_speed &&
	       a->has_accuracy == b->has_accuracy &&
	       (!a->has_heading || same_double(a->heading_deg, b->heading_deg)) &&
	       (!a->has_speed || same_double(a->speed_mps, b->speed_mps)) &&
	       (!a->has_accuracy || same_double(a->accuracy_m, b->accuracy_m));
}

/* Field by field: the structs' padding and unused string tails are not compared. */
static bool same_update(const proto_update_t *a, const proto_update_t *b)
{
	if (strcmp(a->order_id, b->order_id) != 0 || strcmp(a->provider, b->provider) != 0 ||
	    strcmp(a->event_id, b->event_id) != 0 || a->ts != b->ts || a->status != b->status ||
	    a->has_location != b->has_location || a->has_courier != b->has_courier ||
	    a->has_eta != b->has_eta || a->has_places != b->has_places)
		return false;
	if (a->has_places &&
	    (a->places.has_pickup != b->places.has_pickup ||
	     a->places.has_dropoff != b->places.has_dropoff ||
	     (a->places.has_pickup && (!same_double(a->places.pickup.lat, b->places.pickup.lat) ||
				       !same_double(a->places.pickup.lng, b->places.pickup.lng))) ||
	     (a->places.has_dropoff &&
	      (!same_double(a->places.dropoff.lat, b->places.dropoff.lat) ||
	       !same_double(a->places.dropoff.lng, b->places.dropoff.lng)))))
		return false;
	if (a->has_location && !same_location(&a->location, &b->location))
		return false;
	if (a->has_courier && (strcmp(a->courier.id, b->courier.id) != 0 ||
			       strcmp(a->courier.name, b->courier.name) != 0 ||
			       strcmp(a->courier.vehicle, b->courier.vehicle) != 0))
		return false;
	if (a->has_eta &&
	    (a->eta.has_pickup != b->eta.has_pickup || a->eta.has_dropoff != b->eta.has_dropoff ||
	     (a->eta.has_pickup && a->eta.pickup != b->eta.pickup) ||
	     (a->eta.has_dropoff && a->eta.dropoff != b->eta.dropoff)))
		return false;
	return true;
}

/* The invariants of a decoded update (proto/README.md). */
static void check_valid(const proto_update_t *u)
{
	FUZZ_CHECK(FUZZ_TERMINATED(u->order_id) && FUZZ_TERMINATED(u->provider) &&
		       FUZZ_TERMINATED(u->event_id) && FUZZ_TERMINATED(u->courier.id) &&
		       FUZZ_TERMINATED(u->courier.name) && FUZZ_TERMINATED(u->courier.vehicle),
		   "an unterminated string");
	FUZZ_CHECK(proto_order_id_valid(u->order_id, strlen(u->order_id)), "order_id '%s'",
		   u->order_id);
	FUZZ_CHECK(u->provider[0] != '\0', "empty provider");
	FUZZ_CHECK(u->ts >= 1 && u->ts <= PROTO_MS_MAX, "ts %lld", (long long)u->ts);
	FUZZ_CHECK(u->status == PROTO_STATUS_NONE || proto_status_name(u->status) != NULL,
		   "status %d", (int)u->status);
	FUZZ_CHECK(u->has_location || u->status != PROTO_STATUS_NONE || u->has_eta || u->has_places,
		   "an update with nothing in it");
	if (u->has_places) {
		const proto_places_t *p = &u->places;
		FUZZ_CHECK(p->has_pickup || p->has_dropoff, "empty places");
		FUZZ_CHECK(!p->has_pickup || (p->pickup.lat >= -90 && p->pickup.lat <= 90 &&
					      p->pickup.lng >= -180 && p->pickup.lng <= 180),
			   "pickup %g %g", p->pickup.lat, p->pickup.lng);
		FUZZ_CHECK(!p->has_dropoff || (p->dropoff.lat >= -90 && p->dropoff.lat <= 90 &&
					       p->dropoff.lng >= -180 && p->dropoff.lng <= 180),
			   "dropoff %g %g", p->dropoff.lat, p->dropoff.lng);
	}
	if (u->has_location) {
		const proto_location_t *l = &u->location;
		FUZZ_CHECK(l->lat >= -90 && l->lat <= 90 && l->lng >= -180 && l->lng <= 180,
			   "lat %g lng %g", l->lat, l->lng);
		FUZZ_CHECK(!l->has_heading || (l->heading_deg >= 0 && l->heading_deg < 360),
			   "heading %g", l->heading_deg);
		FUZZ_CHECK(!l->has_speed || (isfinite(l->speed_mps) && l->speed_mps >= 0),
			   "speed %g", l->speed_mps);
		FUZZ_CHECK(!l->has_accuracy || (isfinite(l->accuracy_m) && l->accuracy_m >= 0),
			   "accuracy %g", l->accuracy_m);
	}
	if (u->has_eta) {
		FUZZ_CHECK(u->eta.has_pickup || u->eta.has_dropoff, "an empty eta");
		FUZZ_CHECK(!u->eta.has_pickup ||
			       (u->eta.pickup >= 1 && u->eta.pickup <= PROTO_MS_MAX),
			   "eta.pickup %lld", (long long)u->eta.pickup);
		FUZZ_CHECK(!u->eta.has_dropoff ||
			       (u->eta.dropoff >= 1 && u->eta.dropoff <= PROTO_MS_MAX),
			   "eta.dropoff %lld", (long long)u->eta.dropoff);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	proto_update_t u, untouched, again;
	proto_error_t err;
	char *json, *json2;
	int rc, rc2;

	memset(&u, 0x5a, sizeof(u));
	untouched = u;
	memset(&err, 0x5a, sizeof(err));
	rc = proto_update_parse((const char *)data, size, &u, &err);
	FUZZ_CHECK(rc == PROTO_OK || rc == PROTO_EJSON || rc == PROTO_EINVAL || rc == PROTO_ENOMEM,
		   "result %d", rc);
	FUZZ_CHECK(FUZZ_TERMINATED(err.field) && FUZZ_TERMINATED(err.message),
		   "an unterminated proto_error_t");
	rc2 = proto_update_parse((const char *)data, size, &again, NULL);
	FUZZ_CHECK(rc2 == rc, "%d with a proto_error_t, %d without", rc, rc2);
	if (rc != PROTO_OK) {
		FUZZ_CHECK(memcmp(&u, &untouched, sizeof(u)) == 0,
			   "a failed decode (%d, %s: %s) wrote *out", rc, err.field, err.message);
		FUZZ_CHECK(err.message[0] != '\0', "a failure (%d) without a message", rc);
		return 0;
	}
	check_valid(&u);

	json = proto_update_to_json(&u);
	FUZZ_CHECK(json != NULL, "a decoded update does not encode");
	memset(&again, 0, sizeof(again));
	rc = proto_update_parse(json, strlen(json), &again, &err);
	FUZZ_CHECK(rc == PROTO_OK, "its encoding does not decode (%s: %s): %s", err.field,
		   err.message, json);
	FUZZ_CHECK(same_update(&u, &again), "the round trip changed the update: %s", json);
	json2 = proto_update_to_json(&again);
	FUZZ_CHECK(json2 != NULL && strcmp(json, json2) == 0, "not canonical:\n%s\n%s", json,
		   json2 != NULL ? json2 : "(null)");
	free(json2);
	free(json);
	return 0;
}
