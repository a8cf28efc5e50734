/*
 * fuzz_proto_state.c - proto_state_parse on any bytes: the state JSON comes
 * back from Redis (written by apply_update.lua), and a reply from Redis is
 * outside input too (the snapshot path checks it before a browser sees it).
 *
 * Checks: a PROTO_E* result, terminated error strings, *out untouched on
 * failure, the same result without a proto_error_t, and on success the
 * invariants of a state (valid order id, times in range, statuses named).
 */
#include <math.h>
#include <stdbool.h>

#include "fuzz.h"
#include "proto.h"

static bool ms_ok(int64_t ms)
{
	return ms >= 1 && ms <= PROTO_MS_MAX;
}

static void check_valid(const proto_state_t *st)
{
	FUZZ_CHECK(FUZZ_TERMINATED(st->order_id) && FUZZ_TERMINATED(st->provider) &&
		       FUZZ_TERMINATED(st->courier.id) && FUZZ_TERMINATED(st->courier.name) &&
		       FUZZ_TERMINATED(st->courier.vehicle),
		   "an unterminated string");
	FUZZ_CHECK(proto_order_id_valid(st->order_id, strlen(st->order_id)), "order_id '%s'",
		   st->order_id);
	FUZZ_CHECK(st->status == PROTO_STATUS_NONE || proto_status_name(st->status) != NULL,
		   "status %d", (int)st->status);
	FUZZ_CHECK(st->status == PROTO_STATUS_NONE || ms_ok(st->status_ts), "status_ts %lld",
		   (long long)st->status_ts);
	FUZZ_CHECK(ms_ok(st->updated_at), "updated_at %lld", (long long)st->updated_at);
	if (st->has_location) {
		const proto_location_t *l = &st->location;
		FUZZ_CHECK(l->lat >= -90 && l->lat <= 90 && l->lng >= -180 && l->lng <= 180,
			   "lat %g lng %g", l->lat, l->lng);
		FUZZ_CHECK(!l->has_heading || (l->heading_deg >= 0 && l->heading_deg < 360),
			   "heading %g", l->heading_deg);
		FUZZ_CHECK(!l->has_speed || (isfinite(l->speed_mps) && l->speed_mps >= 0),
			   "speed %g", l->speed_mps);
		FUZZ_CHECK(!l->has_accuracy || (isfinite(l->accuracy_m) && l->accuracy_m >= 0),
			   "accuracy %g", l->accuracy_m);
		FUZZ_CHECK(ms_ok(st->location_ts), "location.ts %lld", (long long)st->location_ts);
	}
	if (st->has_eta) {
		FUZZ_CHECK(!st->eta.has_pickup || ms_ok(st->eta.pickup), "eta.pickup %lld",
			   (long long)st->eta.pickup);
		FUZZ_CHECK(!st->eta.has_dropoff || ms_ok(st->eta.dropoff), "eta.dropoff %lld",
			   (long long)st->eta.dropoff);
		FUZZ_CHECK(ms_ok(st->eta_ts), "eta.ts %lld", (long long)st->eta_ts);
	}
	if (st->has_places) {
		const proto_places_t *p = &st->places;
		FUZZ_CHECK(!p->has_pickup || (p->pickup.lat >= -90 && p->pickup.lat <= 90 &&
					      p->pickup.lng >= -180 && p->pickup.lng <= 180 &&
					      ms_ok(st->pickup_ts)),
			   "pickup %g %g ts %lld", p->pickup.lat, p->pickup.lng,
			   (long long)st->pickup_ts);
		FUZZ_CHECK(!p->has_dropoff || (p->dropoff.lat >= -90 && p->dropoff.lat <= 90 &&
					       p->dropoff.lng >= -180 && p->dropoff.lng <= 180 &&
					       ms_ok(st->dropoff_ts)),
			   "dropoff %g %g ts %lld", p->dropoff.lat, p->dropoff.lng,
			   (long long)st->dropoff_ts);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	proto_state_t st, untouched, other;
	proto_error_t err;
	int rc, rc2;

	memset(&st, 0x5a, sizeof(st));
	untouched = st;
	memset(&err, 0x5a, sizeof(err));
	rc = proto_state_parse((const char *)data, size, &st, &err);
	FUZZ_CHECK(rc == PROTO_OK || rc == PROTO_EJSON || rc == PROTO_EINVAL || rc == PROTO_ENOMEM,
		   "result %d", rc);
	FUZZ_CHECK(FUZZ_TERMINATED(err.field) && FUZZ_TERMINATED(err.message),
		   "an unterminated proto_error_t");
	rc2 = proto_state_parse((const char *)data, size, &other, NULL);
	FUZZ_CHECK(rc2 == rc, "%d with a proto_error_t, %d without", rc, rc2);
	if (rc != PROTO_OK) {
		FUZZ_CHECK(memcmp(&st, &untouched, sizeof(st)) == 0,
			   "a failed decode (%d, %s: %s) wrote *out", rc, err.field, err.message);
		FUZZ_CHECK(err.message[0] != '\0', "a failure (%d) without a message", rc);
		return 0;
	}
	check_valid(&st);
	return 0;
}
