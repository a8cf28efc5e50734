/*
 * Tests of adapters/opendelivery.c on delivery events shaped like the Open
 * Delivery logistics spec's DeliveryOrderEvent (tests/unit/fixtures/
 * opendelivery/).  Signatures are computed here with OpenSSL; every update a
 * test gets back is also put through proto: encoded, decoded and compared.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "adapter_testlib.h"

#define FIXTURE(name) TG_FIXTURES "/opendelivery/" name

#define ORDER_ID "52122852-6626-11ed-9022-0242ac120002"
#define NOW_MS 1714570000000LL /* the receive time; never used by this adapter */

/* Times of the fixtures, in ms since the epoch. */
#define T_1130_12Z 1714563012000LL
#define T_1131Z 1714563060000LL
#define T_1140Z 1714563600000LL
#define T_1148_30Z 1714564110000LL
#define T_1155Z 1714564500000LL
#define T_1220Z 1714566000000LL
#define T_1220_45Z 1714566045000LL
#define T_1440Z 1714574400000LL

static const unsigned char SECRET[] = "od-client-secret-8f1e0c";

/* --- helpers ------------------------------------------------------------------ */

/* What every update must keep through proto: all of it, and "opendelivery" as the provider. */
static const atl_expect_t EXPECT = {"opendelivery", 2, ATL_CHECK_ALL};

static const adapter_ops_t *opendelivery(void)
{
	const adapter_ops_t *ops = adapter_find("opendelivery");

	assert_non_null(ops);
	return ops;
}

/* The lower-case hex HMAC-SHA256 of body under key, as X-App-Signature carries it. */
static void sign(const unsigned char *key, size_t key_len, const char *body, size_t len,
		 char hex[65])
{
	atl_hmac_hex(ADAPTER_HMAC_SHA256, key, key_len, body, len, hex);
}

static int verify_with(const char *body, size_t len, const char *signature,
		       const unsigned char *secret, size_t secret_len, proto_error_t *err)
{
	atl_headers_t h = {.name = {"x-app-id", "x-app-merchantid"},
			   .value = {"a7b0f3c2-6626-11ed-9022-0242ac120002",
				     "22815773000169-dbc7e35a-c936-4665-9e13-eb55eb8b6824"}};
	adapter_request_t req = atl_request(body, len, &h, secret, secret_len, NOW_MS);

	if (signature != NULL)
		atl_headers_add(&h, "x-app-signature", signature);
	memset(err, 0, sizeof(*err));
	return opendelivery()->verify(&req, err);
}

static void parse_len(const char *body, size_t len, atl_parsed_t *p)
{
	atl_headers_t none = {{NULL}, {NULL}};
	adapter_request_t req = atl_request(body, len, &none, SECRET, sizeof(SECRET) - 1, NOW_MS);

	atl_parse_into(opendelivery(), &req, &EXPECT, p);
}

static void parse_text(const char *body, atl_parsed_t *p)
{
	parse_len(body, strlen(body), p);
}

static void parse_fixture(const char *path, atl_parsed_t *p)
{
	size_t len;
	char *body = atl_load_file(path, &len);

	parse_len(body, len, p);
	free(body);
}

/* A moving event with a position: the status part, then the position alone. */
static void assert_status_and_position(const atl_parsed_t *p)
{
	if (p->rc != ADAPTER_OK)
		fail_msg("parse failed: %s %s", p->err.field, p->err.message);
	assert_int_equal(p->n, 2);
	assert_false(p->u[0].has_location);
	assert_true(p->u[0].status != PROTO_STATUS_NONE);
	assert_true(p->u[1].has_location);
	assert_int_equal(p->u[1].status, PROTO_STATUS_NONE);
	assert_false(p->u[1].has_eta);
	assert_false(p->u[1].has_courier);
	assert_int_equal(p->u[1].ts, p->u[0].ts);
	assert_string_equal(p->u[1].order_id, p->u[0].order_id);
	assert_string_not_equal(p->u[1].event_id, p->u[0].event_id);
}

/* A DELIVERY_ONGOING-style event of the given type with more members (",..." or ""). */
static char *od_event(const char *type, const char *members)
{
	return atl_format("{\"orderId\":\"" ORDER_ID "\",\"event\":{\"type\":\"%s\","
			  "\"datetime\":\"2024-05-01T11:55:00Z\"}%s}",
			  type, members);
}

/* --- verify ------------------------------------------------------------------- */

static void verify_accepts_the_hmac_of_the_raw_body(void **state)
{
	size_t len;
	char *body = atl_load_file(FIXTURE("delivery_ongoing.json"), &len);
	char hex[65], upper[65], prefixed[80];
	proto_error_t err;

	(void)state;
	sign(SECRET, sizeof(SECRET) - 1, body, len, hex);
	assert_int_equal(verify_with(body, len, hex, SECRET, sizeof(SECRET) - 1, &err), ADAPTER_OK);

	/* Tolerated spellings: upper-case digits, a "sha256=" prefix, surrounding space. */
	for (int i = 0; i < 65; i++)
		upper[i] = (char)(hex[i] >= 'a' && hex[i] <= 'f' ? hex[i] - 'a' + 'A' : hex[i]);
	assert_int_equal(verify_with(body, len, upper, SECRET, sizeof(SECRET) - 1, &err),
			 ADAPTER_OK);
	snprintf(prefixed, sizeof(prefixed), " sha256=%s ", hex);
	assert_int_equal(verify_with(body, len, prefixed, SECRET, sizeof(SECRET) - 1, &err),
			 ADAPTER_OK);
	free(body);
}

static void verify_refuses_a_missing_signature(void **state)
{
	static const char body[] = "{\"orderId\":\"x\"}";
	proto_error_t err;

	(void)state;
	assert_int_equal(
	    verify_with(body, sizeof(body) - 1, NULL, SECRET, sizeof(SECRET) - 1, &err),
	    ADAPTER_EAUTH);
	assert_string_equal(err.field, "x-app-signature");
}

static void verify_refuses_a_wrong_signature(void **state)
{
	static const unsigned char other_key[] = "od-client-secret-8f1e0d";
	size_t len;
	char *body = atl_load_file(FIXTURE("delivery_ongoing.json"), &len);
	char good[65], hex[65], longer[67];
	char *edited;
	proto_error_t err;

	(void)state;
	sign(SECRET, sizeof(SECRET) - 1, body, len, good);

	/* Another key. */
	sign(other_key, sizeof(other_key) - 1, body, len, hex);
	assert_int_equal(verify_with(body, len, hex, SECRET, sizeof(SECRET) - 1, &err),
			 ADAPTER_EAUTH);
	assert_string_equal(err.field, "x-app-signature");

	/* The right signature, but the body was changed (one coordinate) or cut. */
	edited = atl_replace_once(body, "-23.54809", "-23.54808");
	assert_int_equal(
	    verify_with(edited, strlen(edited), good, SECRET, sizeof(SECRET) - 1, &err),
	    ADAPTER_EAUTH);
	assert_int_equal(verify_with(body, len - 1, good, SECRET, sizeof(SECRET) - 1, &err),
			 ADAPTER_EAUTH);
	free(edited);

	/* Mangled signatures. */
	memcpy(hex, good, 65);
	hex[63] = '\0';
	assert_int_equal(verify_with(body, len, hex, SECRET, sizeof(SECRET) - 1, &err),
			 ADAPTER_EAUTH);
	snprintf(longer, sizeof(longer), "%s00", good);
	assert_int_equal(verify_with(body, len, longer, SECRET, sizeof(SECRET) - 1, &err),
			 ADAPTER_EAUTH);
	memcpy(hex, good, 65);
	hex[10] = 'g';
	assert_int_equal(verify_with(body, len, hex, SECRET, sizeof(SECRET) - 1, &err),
			 ADAPTER_EAUTH);
	memcpy(hex, good, 65);
	hex[0] = hex[0] == '0' ? '1' : '0';
	assert_int_equal(verify_with(body, len, hex, SECRET, sizeof(SECRET) - 1, &err),
			 ADAPTER_EAUTH);
	assert_int_equal(verify_with(body, len, "", SECRET, sizeof(SECRET) - 1, &err),
			 ADAPTER_EAUTH);
	assert_int_equal(verify_with(body, len, "sha512=00", SECRET, sizeof(SECRET) - 1, &err),
			 ADAPTER_EAUTH);

	/* The secret itself is not a signature. */
	assert_int_equal(
	    verify_with(body, len, (const char *)SECRET, SECRET, sizeof(SECRET) - 1, &err),
	    ADAPTER_EAUTH);
	free(body);
}

static void verify_refuses_everything_without_a_configured_secret(void **state)
{
	static const char body[] = "{}";
	char hex[65];
	proto_error_t err;

	(void)state;
	sign(SECRET, sizeof(SECRET) - 1, body, 2, hex);
	assert_int_equal(verify_with(body, 2, hex, SECRET, 0, &err), ADAPTER_EAUTH);
	assert_int_equal(verify_with(body, 2, hex, NULL, 0, &err), ADAPTER_EAUTH);
}

static void a_signed_documented_event_passes_verify_then_parse(void **state)
{
	size_t len;
	char *body = atl_load_file(FIXTURE("combined_orders.json"), &len);
	char hex[65];
	atl_headers_t h = {{"x-app-signature"}, {hex}};
	adapter_request_t req = atl_request(body, len, &h, SECRET, sizeof(SECRET) - 1, NOW_MS);
	proto_update_t out[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n = -1;

	(void)state;
	sign(SECRET, sizeof(SECRET) - 1, body, len, hex);
	assert_int_equal(opendelivery()->verify(&req, &err), ADAPTER_OK);
	assert_int_equal(opendelivery()->parse(&req, out, ADAPTER_UPDATES_MAX, &n, &err),
			 ADAPTER_OK);
	/* Combined orders are sent once per order: only this event's orderId is updated. */
	assert_int_equal(n, 2);
	assert_string_equal(out[0].order_id, ORDER_ID);
	assert_string_equal(out[1].order_id, ORDER_ID);
	atl_assert_update_valid(&out[0], EXPECT.provider, EXPECT.checks);
	atl_assert_update_valid(&out[1], EXPECT.provider, EXPECT.checks);
	free(body);
}

/* --- the documented events ------------------------------------------------------ */

static void delivery_ongoing_gives_the_status_part_and_the_position_apart(void **state)
{
	atl_parsed_t p;
	const proto_update_t *u = &p.u[0], *position = &p.u[1];
	size_t len;
	char *body = atl_load_file(FIXTURE("delivery_ongoing.json"), &len);
	char body_id[PROTO_EVENT_ID_MAX + 1];

	(void)state;
	parse_len(body, len, &p);
	assert_status_and_position(&p);
	assert_string_equal(position->provider, "opendelivery");
	assert_int_equal(position->ts, T_1155Z);
	adapter_body_event_id(body, len, body_id);
	assert_string_equal(position->event_id, body_id);
	assert_true(position->location.lat == -23.54809);
	assert_true(position->location.lng == -46.63638);
	assert_false(position->location.has_heading);

	assert_string_equal(u->order_id, ORDER_ID);
	assert_string_equal(u->provider, "opendelivery");
	assert_int_equal(u->ts, T_1155Z);
	assert_int_equal(strncmp(u->event_id, "sha256:", 7), 0);
	assert_int_equal(u->status, PROTO_STATUS_EN_ROUTE_TO_DROPOFF);
	assert_true(u->has_eta);
	assert_int_equal(u->eta.pickup, T_1148_30Z);
	assert_int_equal(u->eta.dropoff, T_1220_45Z);
	assert_true(u->has_courier);
	assert_string_equal(u->courier.id, "dp-7781");
	assert_string_equal(u->courier.name, "Jo\xc3\xa3o Silva");
	assert_string_equal(u->courier.vehicle, "motorbike");
	free(body);
}

static void a_repeated_moving_event_repeats_only_its_position(void **state)
{
	atl_parsed_t first, again;
	char *body = atl_load_file(FIXTURE("delivery_ongoing.json"), NULL);
	char *moved, *later, *new_eta, *new_attempt;

	(void)state;
	/* 30 s later, 100 m further: the status part is a duplicate, the position is new. */
	moved = atl_replace_once(body, "\"latitude\": -23.54809", "\"latitude\": -23.54900");
	later = atl_replace_once(moved, "\"datetime\": \"2024-05-01T11:55:00Z\"",
				 "\"datetime\": \"2024-05-01T11:55:30Z\"");
	parse_text(body, &first);
	parse_text(later, &again);
	assert_status_and_position(&first);
	assert_status_and_position(&again);
	assert_string_equal(again.u[0].event_id, first.u[0].event_id);
	assert_string_not_equal(again.u[1].event_id, first.u[1].event_id);
	assert_int_equal(again.u[1].ts, T_1155Z + 30000);

	/* A new ETA is news: a new status part. */
	new_eta = atl_replace_once(later, "\"deliveryEtaDatetime\": \"2024-05-01T12:20:45Z\"",
				   "\"deliveryEtaDatetime\": \"2024-05-01T12:25:00Z\"");
	parse_text(new_eta, &again);
	assert_status_and_position(&again);
	assert_string_not_equal(again.u[0].event_id, first.u[0].event_id);

	/* So is another delivery attempt for the same order. */
	new_attempt = atl_replace_once(body, "48ae4d68-6626-11ed-9022-0242ac120002",
				       "59bf5e79-6626-11ed-9022-0242ac120002");
	parse_text(new_attempt, &again);
	assert_status_and_position(&again);
	assert_string_not_equal(again.u[0].event_id, first.u[0].event_id);

	/* Without a position a moving event gives its status part alone. */
	parse_text("{\"orderId\":\"" ORDER_ID "\",\"event\":{\"type\":\"PICKUP_ONGOING\","
		   "\"datetime\":\"2024-05-01T11:35:00Z\"}}",
		   &again);
	atl_assert_one_update(&again);
	assert_int_equal(again.u[0].status, PROTO_STATUS_EN_ROUTE_TO_PICKUP);
	assert_false(again.u[0].has_location);

	/* A deliveryId of the wrong type is named, since it keys the status part. */
	parse_text("{\"orderId\":\"" ORDER_ID "\",\"deliveryId\":7,\"event\":{\"type\":"
		   "\"PICKUP_ONGOING\",\"datetime\":\"2024-05-01T11:35:00Z\"}}",
		   &again);
	atl_assert_invalid(&again, "deliveryId");
	free(new_attempt);
	free(new_eta);
	free(later);
	free(moved);
	free(body);
}

static void pending_with_only_the_required_fields_gives_created(void **state)
{
	atl_parsed_t p;
	const proto_update_t *u = &p.u[0];

	(void)state;
	parse_fixture(FIXTURE("pending.json"), &p);
	atl_assert_one_update(&p);
	assert_int_equal(u->ts, T_1130_12Z);
	assert_int_equal(u->status, PROTO_STATUS_CREATED);
	assert_false(u->has_location);
	assert_false(u->has_eta);
	assert_false(u->has_courier);
}

static void accepted_gives_the_assigned_courier_and_etas(void **state)
{
	atl_parsed_t p;
	const proto_update_t *u = &p.u[0];

	(void)state;
	parse_fixture(FIXTURE("accepted.json"), &p);
	atl_assert_one_update(&p);
	assert_int_equal(u->ts, T_1131Z);
	assert_int_equal(u->status, PROTO_STATUS_COURIER_ASSIGNED);
	assert_false(u->has_location);
	assert_int_equal(u->eta.pickup, T_1140Z);
	assert_int_equal(u->eta.dropoff, T_1220Z);
	assert_string_equal(u->courier.id, "dp-7781");
	assert_string_equal(u->courier.vehicle, "bicycle");
}

static void cancelled_with_a_local_offset_is_read_in_utc(void **state)
{
	atl_parsed_t p;

	(void)state;
	parse_fixture(FIXTURE("cancelled.json"), &p);
	atl_assert_one_update(&p);
	assert_int_equal(p.u[0].status, PROTO_STATUS_CANCELLED);
	assert_int_equal(p.u[0].ts, T_1440Z);
}

static void rejected_and_delivery_finished_are_ignored(void **state)
{
	atl_parsed_t p;

	(void)state;
	parse_fixture(FIXTURE("rejected.json"), &p);
	atl_assert_ignored(&p);
	parse_fixture(FIXTURE("delivery_finished.json"), &p);
	atl_assert_ignored(&p);
}

static void every_event_type_maps_to_a_canonical_status_or_is_ignored(void **state)
{
	static const struct {
		const char *type;
		proto_status_t status; /* NONE: ignored */
		bool moving;	       /* status part and position apart */
	} table[] = {
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
	    {"delivery_ongoing", PROTO_STATUS_NONE, false},
	    {"ORDER_TELEPORTED", PROTO_STATUS_NONE, false},
	    {"", PROTO_STATUS_NONE, false},
	};
	char *fixture = atl_load_file(FIXTURE("delivery_ongoing.json"), NULL);
	atl_parsed_t p;

	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		char *type = atl_format("\"type\": \"%s\"", table[i].type);
		char *body = atl_replace_once(fixture, "\"type\": \"DELIVERY_ONGOING\"", type);

		parse_text(body, &p);
		if (table[i].status == PROTO_STATUS_NONE) {
			atl_assert_ignored(&p);
		} else if (table[i].moving) {
			assert_status_and_position(&p);
			assert_int_equal(p.u[0].status, table[i].status);
			assert_true(p.u[0].has_courier);
		} else {
			atl_assert_one_update(&p);
			assert_int_equal(p.u[0].status, table[i].status);
			assert_true(p.u[0].has_location);
			assert_true(p.u[0].has_courier);
		}
		free(body);
		free(type);
	}
	free(fixture);
}

static void an_ignored_event_is_not_checked_further(void **state)
{
	atl_parsed_t p;

	(void)state;
	parse_text("{\"orderId\":5,\"event\":{\"type\":\"REJECTED\",\"datetime\":false}}", &p);
	atl_assert_ignored(&p);
	parse_text("{\"event\":{\"type\":\"DELIVERY_FINISHED\"}}", &p);
	atl_assert_ignored(&p);
}

static void vehicle_types_are_shown_as_words(void **state)
{
	static const struct {
		const char *type;
		const char *vehicle;
	} table[] = {
	    {"MOTORBIKE_BAG", "motorbike"},
	    {"MOTORBIKE_BOX", "motorbike"},
	    {"CAR", "car"},
	    {"BICYCLE", "bicycle"},
	    {"SCOOTER", "scooter"},
	    {"VUC", "truck"},
	    {"DRONE", "DRONE"},
	};
	atl_parsed_t p;

	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		char *members = atl_format(
		    ",\"vehicle\":{\"type\":\"%s\",\"container\":\"NORMAL\"}", table[i].type);
		char *body = od_event("ACCEPTED", members);

		parse_text(body, &p);
		atl_assert_one_update(&p);
		assert_true(p.u[0].has_courier);
		assert_string_equal(p.u[0].courier.vehicle, table[i].vehicle);
		assert_string_equal(p.u[0].courier.name, "");
		free(body);
		free(members);
	}
}

/* --- optional fields, coordinates and times ------------------------------------- */

static void missing_optional_fields_leave_their_parts_out(void **state)
{
	atl_parsed_t p;
	char *body;

	(void)state;
	body =
	    od_event("ORDER_PICKED", ",\"deliveryPerson\":{\"name\":\"Ana\"},"
				     "\"eta\":{\"deliveryEtaDatetime\":\"2024-05-01T12:20:45Z\"}");
	parse_text(body, &p);
	atl_assert_one_update(&p);
	assert_int_equal(p.u[0].status, PROTO_STATUS_PICKED_UP);
	assert_false(p.u[0].has_location);
	assert_true(p.u[0].has_eta);
	assert_false(p.u[0].eta.has_pickup);
	assert_int_equal(p.u[0].eta.dropoff, T_1220_45Z);
	assert_true(p.u[0].has_courier);
	assert_string_equal(p.u[0].courier.id, "");
	assert_string_equal(p.u[0].courier.name, "Ana");
	assert_string_equal(p.u[0].courier.vehicle, "");
	free(body);

	/* Empty objects and nulls count as absent. */
	body = od_event("ORDER_PICKED", ",\"deliveryPerson\":{},\"eta\":null,\"vehicle\":{},"
					"\"geoLocalization\":null");
	parse_text(body, &p);
	atl_assert_one_update(&p);
	assert_false(p.u[0].has_location);
	assert_false(p.u[0].has_eta);
	assert_false(p.u[0].has_courier);
	free(body);

	/* A position without coordinates (only the last address) is no position. */
	body = od_event("DELIVERY_ONGOING",
			",\"geoLocalization\":{\"lastAddress\":{\"city\":\"S\\u00e3o Paulo\"}}");
	parse_text(body, &p);
	atl_assert_one_update(&p);
	assert_false(p.u[0].has_location);
	free(body);
}

static void coordinates_given_as_strings_are_read(void **state)
{
	atl_parsed_t p;
	char *body;

	(void)state;
	body = od_event(
	    "PICKUP_ONGOING",
	    ",\"geoLocalization\":{\"latitude\":\"-23.54809\",\"longitude\":\"-46.63638\"}");
	parse_text(body, &p);
	assert_status_and_position(&p);
	assert_true(p.u[1].location.lat == -23.54809);
	assert_true(p.u[1].location.lng == -46.63638);
	free(body);

	body =
	    od_event("PICKUP_ONGOING",
		     ",\"geoLocalization\":{\"latitude\":\"-23,54809\",\"longitude\":\"-46.6\"}");
	parse_text(body, &p);
	atl_assert_invalid(&p, "geoLocalization.latitude");
	free(body);
}

static void out_of_range_or_half_coordinates_are_refused(void **state)
{
	static const struct {
		const char *geo;
		const char *field;
	} table[] = {
	    {"\"latitude\":-90.5,\"longitude\":-46.6", "geoLocalization.latitude"},
	    {"\"latitude\":90.5,\"longitude\":-46.6", "geoLocalization.latitude"},
	    {"\"latitude\":-23.5,\"longitude\":-180.01", "geoLocalization.longitude"},
	    {"\"latitude\":-23.5", "geoLocalization.longitude"},
	    {"\"longitude\":-46.6", "geoLocalization.latitude"},
	};
	atl_parsed_t p;

	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		char *members = atl_format(",\"geoLocalization\":{%s}", table[i].geo);
		char *body = od_event("DELIVERY_ONGOING", members);

		parse_text(body, &p);
		atl_assert_invalid(&p, table[i].field);
		free(body);
		free(members);
	}
}

static void every_time_format_is_read_with_its_offset(void **state)
{
	static const struct {
		const char *json; /* event.datetime */
		int64_t ms;
	} table[] = {
	    {"\"2024-05-01T11:55:00Z\"", T_1155Z},
	    {"\"2024-05-01T11:55:00.000Z\"", T_1155Z},
	    {"\"2024-05-01T11:55:00.7Z\"", T_1155Z + 700},
	    {"\"2024-05-01T11:55:00.123456Z\"", T_1155Z + 123},
	    {"\"2024-05-01T11:55:00z\"", T_1155Z},
	    {"\"2024-05-01t11:55:00Z\"", T_1155Z},
	    {"\"2024-05-01T11:55:00+00:00\"", T_1155Z},
	    {"\"2024-05-01T08:55:00-03:00\"", T_1155Z},
	    {"\"2024-05-01T08:55:00.000-03:00\"", T_1155Z},
	    {"\"2024-05-01T13:55:00+02:00\"", T_1155Z},
	    {"\"2024-05-01T17:25:00+05:30\"", T_1155Z},
	    {"\"2024-04-30T23:55:00-12:00\"", T_1155Z},
	    {"\"2024-05-01 11:55:00Z\"", T_1155Z},
	    {"1714564500", T_1155Z},
	    {"1714564500000", T_1155Z},
	    {"\"1714564500000\"", T_1155Z},
	};
	atl_parsed_t p;

	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		char *body = atl_format("{\"orderId\":\"" ORDER_ID "\",\"event\":{\"type\":"
					"\"ORDER_DELIVERED\",\"datetime\":%s}}",
					table[i].json);

		parse_text(body, &p);
		atl_assert_one_update(&p);
		if (p.u[0].ts != table[i].ms)
			fail_msg("%s read as %lld", table[i].json, (long long)p.u[0].ts);
		free(body);
	}
}

static void a_time_that_is_not_a_time_is_refused(void **state)
{
	static const char *const bad[] = {
	    "\"2024-05-01\"",
	    "\"2024-05-01T11:55:00\"",
	    "\"2024-05-01T11:55\"",
	    "\"01/05/2024 11:55\"",
	    "\"2024-05-01T11:55:00 -03:00\"",
	    "\"2024-05-01T11:55:00-0300\"",
	    "\"2024-05-32T11:55:00Z\"",
	    "\"2023-02-29T11:55:00Z\"",
	    "\"2024-05-01T11:60:00Z\"",
	    "\"\"",
	    "0",
	    "-1714564500",
	    "1e999",
	    "null",
	    "true",
	    "[\"2024-05-01T11:55:00Z\"]",
	};
	atl_parsed_t p;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *body = atl_format("{\"orderId\":\"" ORDER_ID "\",\"event\":{\"type\":"
					"\"ORDER_DELIVERED\",\"datetime\":%s}}",
					bad[i]);

		parse_text(body, &p);
		if (p.rc != ADAPTER_EINVAL)
			fail_msg("accepted event.datetime %s", bad[i]);
		assert_string_equal(p.err.field, "event.datetime");
		free(body);
	}
}

static void an_eta_that_is_not_a_time_is_named(void **state)
{
	atl_parsed_t p;
	char *body;

	(void)state;
	body = od_event("DELIVERY_ONGOING", ",\"eta\":{\"pickupEtaDatetime\":\"soon\"}");
	parse_text(body, &p);
	atl_assert_invalid(&p, "eta.pickupEtaDatetime");
	free(body);
	body = od_event("DELIVERY_ONGOING", ",\"eta\":{\"deliveryEtaInMinutes\":25,"
					    "\"deliveryEtaDatetime\":-25}");
	parse_text(body, &p);
	atl_assert_invalid(&p, "eta.deliveryEtaDatetime"); /* before 1970 */
	free(body);
}

/* --- malformed bodies --------------------------------------------------------------- */

static void a_missing_required_member_is_named(void **state)
{
	static const struct {
		const char *body;
		const char *field;
	} table[] = {
	    {"{\"event\":{\"type\":\"ORDER_PICKED\",\"datetime\":\"2024-05-01T11:55:00Z\"}}",
	     "orderId"},
	    {"{\"orderId\":null,\"event\":{\"type\":\"ORDER_PICKED\","
	     "\"datetime\":\"2024-05-01T11:55:00Z\"}}",
	     "orderId"},
	    {"{\"orderId\":\"" ORDER_ID "\"}", "event.type"},
	    {"{\"orderId\":\"" ORDER_ID "\",\"event\":{}}", "event.type"},
	    {"{\"orderId\":\"" ORDER_ID "\",\"event\":null}", "event.type"},
	    {"{\"orderId\":\"" ORDER_ID "\",\"event\":{\"type\":\"ORDER_PICKED\"}}",
	     "event.datetime"},
	    {"{}", "event.type"},
	};
	atl_parsed_t p;

	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		parse_text(table[i].body, &p);
		atl_assert_invalid(&p, table[i].field);
	}
}

static void a_member_of_the_wrong_type_is_named(void **state)
{
	static const struct {
		const char *body;
		const char *field;
	} table[] = {
	    {"{\"orderId\":\"" ORDER_ID "\",\"event\":\"ORDER_PICKED\"}", "event"},
	    {"{\"orderId\":\"" ORDER_ID "\",\"event\":[]}", "event"},
	    {"{\"orderId\":\"" ORDER_ID "\",\"event\":{\"type\":5}}", "event.type"},
	    {"{\"orderId\":123,\"event\":{\"type\":\"ORDER_PICKED\","
	     "\"datetime\":\"2024-05-01T11:55:00Z\"}}",
	     "orderId"},
	    {"{\"orderId\":[\"" ORDER_ID "\"],\"event\":{\"type\":\"ORDER_PICKED\","
	     "\"datetime\":\"2024-05-01T11:55:00Z\"}}",
	     "orderId"},
	};
	static const struct {
		const char *members;
		const char *field;
	} extra[] = {
	    {",\"geoLocalization\":\"-23.5,-46.6\"", "geoLocalization"},
	    {",\"geoLocalization\":{\"latitude\":true,\"longitude\":1}",
	     "geoLocalization.latitude"},
	    {",\"geoLocalization\":{\"latitude\":1,\"longitude\":[2]}",
	     "geoLocalization.longitude"},
	    {",\"eta\":[]", "eta"},
	    {",\"eta\":{\"deliveryEtaDatetime\":{}}", "eta.deliveryEtaDatetime"},
	    {",\"deliveryPerson\":1", "deliveryPerson"},
	    {",\"deliveryPerson\":{\"name\":5}", "deliveryPerson.name"},
	    {",\"deliveryPerson\":{\"id\":7781,\"name\":\"Ana\"}", "deliveryPerson.id"},
	    {",\"vehicle\":\"CAR\"", "vehicle"},
	    {",\"vehicle\":{\"type\":[\"CAR\"]}", "vehicle.type"},
	};
	atl_parsed_t p;

	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		parse_text(table[i].body, &p);
		atl_assert_invalid(&p, table[i].field);
	}
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		char *body = od_event("DELIVERY_ONGOING", extra[i].members);

		parse_text(body, &p);
		atl_assert_invalid(&p, extra[i].field);
		free(body);
	}
}

static void an_order_id_that_trackgate_cannot_use_is_refused(void **state)
{
	char id[131];
	atl_parsed_t p;
	char *body;

	(void)state;
	static const char *const bad[] = {"", "pedido 42", "pedido#42", "pedido/42", "p\xc3\xa9"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		body = atl_format("{\"orderId\":\"%s\",\"event\":{\"type\":\"ORDER_PICKED\","
				  "\"datetime\":\"2024-05-01T11:55:00Z\"}}",
				  bad[i]);
		parse_text(body, &p);
		atl_assert_invalid(&p, "orderId");
		free(body);
	}
	memset(id, 'a', 129);
	id[129] = '\0';
	body = atl_format("{\"orderId\":\"%s\",\"event\":{\"type\":\"ORDER_PICKED\","
			  "\"datetime\":\"2024-05-01T11:55:00Z\"}}",
			  id);
	parse_text(body, &p);
	atl_assert_invalid(&p, "orderId");
	free(body);
	id[128] = '\0';
	body = atl_format("{\"orderId\":\"%s\",\"event\":{\"type\":\"ORDER_PICKED\","
			  "\"datetime\":\"2024-05-01T11:55:00Z\"}}",
			  id);
	parse_text(body, &p);
	atl_assert_one_update(&p);
	assert_string_equal(p.u[0].order_id, id);
	free(body);
}

static void a_body_that_is_not_one_json_object_is_refused(void **state)
{
	static const char *const bodies[] = {
	    "",
	    "\n",
	    "[]",
	    "null",
	    "true",
	    "\"ORDER_PICKED\"",
	    "{\"orderId\":\"" ORDER_ID "\"",
	    "{\"orderId\":\"" ORDER_ID "\",\"orderId\":\"other\",\"event\":{\"type\":\"CANCELLED\","
	    "\"datetime\":\"2024-05-01T11:55:00Z\"}}",
	    "{\"orderId\":\"" ORDER_ID "\",\"event\":{\"type\":\"CANCELLED\","
	    "\"datetime\":\"2024-05-01T11:55:00Z\"}}x",
	    "{\"orderId\":\"" ORDER_ID "\",\"event\":{\"type\":\"CANCELLED\","
	    "\"datetime\":\"2024-05-01T11:55:00Z\"},\"note\":\"a\\u0000b\"}",
	};
	atl_parsed_t p;

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		parse_text(bodies[i], &p);
		if (p.rc != ADAPTER_EINVAL)
			fail_msg("accepted %s", bodies[i]);
	}
}

static void every_truncation_of_a_documented_event_is_refused(void **state)
{
	size_t len;
	char *body = atl_load_file(FIXTURE("delivery_ongoing.json"), &len);
	size_t last = (size_t)(strrchr(body, '}') - body);
	atl_parsed_t p;

	(void)state;
	for (size_t cut = 0; cut <= last; cut++) {
		parse_len(body, cut, &p);
		if (p.rc != ADAPTER_EINVAL)
			fail_msg("cut at %zu accepted", cut);
	}
	free(body);
}

static void huge_numbers_are_refused_not_wrapped(void **state)
{
	static const struct {
		const char *members;
		const char *field;
	} table[] = {
	    {",\"geoLocalization\":{\"latitude\":1e999,\"longitude\":1}",
	     "geoLocalization.latitude"},
	    {",\"geoLocalization\":{\"latitude\":1,\"longitude\":-1e999}",
	     "geoLocalization.longitude"},
	    {",\"geoLocalization\":{\"latitude\":1e30,\"longitude\":1}",
	     "geoLocalization.latitude"},
	    {",\"geoLocalization\":{\"latitude\":\"1"
	     "0000000000000000000000000000000000000000000000000000000000000000000\","
	     "\"longitude\":1}",
	     "geoLocalization.latitude"},
	    {",\"eta\":{\"pickupEtaDatetime\":1e300}", "eta.pickupEtaDatetime"},
	    {",\"eta\":{\"pickupEtaDatetime\":100000000000000}", "eta.pickupEtaDatetime"},
	    {",\"eta\":{\"pickupEtaDatetime\":99999999999999}", NULL}, /* the last ms: fine */
	    {",\"eta\":{\"pickupEtaInMinutes\":1e999}", NULL},	       /* not read */
	};
	atl_parsed_t p;

	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		char *body = od_event("PICKUP_ONGOING", table[i].members);

		parse_text(body, &p);
		if (table[i].field == NULL)
			atl_assert_one_update(&p);
		else
			atl_assert_invalid(&p, table[i].field);
		free(body);
	}
}

static void bytes_that_are_not_utf8_are_refused(void **state)
{
	static const char *const names[] = {
	    "Jo\xe3o", /* Latin-1, as a misconfigured sender would send it */
	    "\xc0\x80", "\xbf", "\xed\xb0\x80", "\xf8\x88\x80\x80\x80", "Ana\xc3",
	};
	atl_parsed_t p;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *members =
		    atl_format(",\"deliveryPerson\":{\"id\":\"dp-1\",\"name\":\"%s\"}", names[i]);
		char *body = od_event("ACCEPTED", members);

		parse_text(body, &p);
		atl_assert_invalid(&p, NULL);
		free(body);
		free(members);
	}
}

static void courier_text_is_cleaned_and_cut_for_proto(void **state)
{
	atl_parsed_t p;
	char *body, name[301];

	(void)state;
	body = od_event("ACCEPTED", ",\"deliveryPerson\":{\"id\":\"dp\\t1\","
				    "\"name\":\"Jo\\u00e3o\\r\\nSilva\\u007f\"}");
	parse_text(body, &p);
	atl_assert_one_update(&p);
	assert_string_equal(p.u[0].courier.id, "dp 1");
	assert_string_equal(p.u[0].courier.name, "Jo\xc3\xa3o  Silva ");
	free(body);

	/* 100 three-byte characters: cut to 42 of them (126 bytes), never mid-character. */
	for (int i = 0; i < 100; i++)
		memcpy(name + 3 * i, "\xe2\x82\xac", 3);
	name[300] = '\0';
	body =
	    atl_format("{\"orderId\":\"" ORDER_ID "\",\"event\":{\"type\":\"ACCEPTED\","
		       "\"datetime\":\"2024-05-01T11:31:00Z\"},\"deliveryPerson\":{\"id\":\"%s\","
		       "\"name\":\"%s\"},\"vehicle\":{\"type\":\"%s\"}}",
		       name, name, name);
	parse_text(body, &p);
	atl_assert_one_update(&p);
	assert_int_equal(strlen(p.u[0].courier.id), 126);
	assert_int_equal(strlen(p.u[0].courier.name), 126);
	assert_int_equal(strlen(p.u[0].courier.vehicle), 30);
	free(body);
}

static void a_60_kib_body_is_parsed(void **state)
{
	atl_parsed_t p;
	char *body = atl_load_file(FIXTURE("delivery_ongoing.json"), NULL);
	char *pad = malloc(61441), *message, *big;

	(void)state;
	assert_non_null(pad);
	memset(pad, 'z', 61440);
	pad[61440] = '\0';
	message = atl_format("\"message\": \"%s\"", pad);
	big = atl_replace_once(body, "\"message\": \"Entregador a caminho do cliente\"", message);
	assert_true(strlen(big) > 60 * 1024);
	parse_text(big, &p);
	assert_status_and_position(&p);
	assert_int_equal(p.u[0].status, PROTO_STATUS_EN_ROUTE_TO_DROPOFF);
	free(big);
	free(message);
	free(pad);
	free(body);
}

static void the_same_body_twice_gives_the_same_event_id(void **state)
{
	atl_parsed_t first, second;
	char *body = atl_load_file(FIXTURE("delivery_ongoing.json"), NULL);
	char *moved = atl_replace_once(body, "-23.54809", "-23.54900");

	(void)state;
	parse_text(body, &first);
	parse_text(body, &second);
	assert_status_and_position(&first);
	assert_status_and_position(&second);
	for (int i = 0; i < 2; i++) {
		assert_string_equal(first.u[i].event_id, second.u[i].event_id);
		assert_int_equal(strlen(first.u[i].event_id), 7 + 32);
	}

	/* One byte changed: another webhook, another id (the position's). */
	parse_text(moved, &second);
	assert_status_and_position(&second);
	assert_string_not_equal(first.u[1].event_id, second.u[1].event_id);

	/* Events that are not repeated take the body's hash for their one update. */
	free(moved);
	moved = atl_load_file(FIXTURE("accepted.json"), NULL);
	parse_text(moved, &first);
	parse_text(moved, &second);
	atl_assert_one_update(&first);
	assert_string_equal(first.u[0].event_id, second.u[0].event_id);
	free(moved);
	free(body);
}

static void no_room_for_an_update_is_an_error(void **state)
{
	atl_headers_t none = {{NULL}, {NULL}};
	proto_update_t u;
	proto_error_t err;
	char *body = atl_load_file(FIXTURE("pending.json"), NULL);
	adapter_request_t req =
	    atl_request(body, strlen(body), &none, SECRET, sizeof(SECRET) - 1, NOW_MS);
	int n = 5;

	(void)state;
	assert_int_equal(opendelivery()->parse(&req, &u, 0, &n, &err), ADAPTER_EINVAL);
	assert_int_equal(n, 0);
	assert_int_equal(opendelivery()->parse(&req, &u, 1, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	free(body);

	/* A moving event with a position needs two. */
	body = atl_load_file(FIXTURE("delivery_ongoing.json"), NULL);
	req.body = body;
	req.body_len = strlen(body);
	n = 5;
	assert_int_equal(opendelivery()->parse(&req, &u, 1, &n, &err), ADAPTER_EINVAL);
	assert_int_equal(n, 0);
	free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(verify_accepts_the_hmac_of_the_raw_body),
	    cmocka_unit_test(verify_refuses_a_missing_signature),
	    cmocka_unit_test(verify_refuses_a_wrong_signature),
	    cmocka_unit_test(verify_refuses_everything_without_a_configured_secret),
	    cmocka_unit_test(a_signed_documented_event_passes_verify_then_parse),
	    cmocka_unit_test(delivery_ongoing_gives_the_status_part_and_the_position_apart),
	    cmocka_unit_test(a_repeated_moving_event_repeats_only_its_position),
	    cmocka_unit_test(pending_with_only_the_required_fields_gives_created),
	    cmocka_unit_test(accepted_gives_the_assigned_courier_and_etas),
	    cmocka_unit_test(cancelled_with_a_local_offset_is_read_in_utc),
	    cmocka_unit_test(rejected_and_delivery_finished_are_ignored),
	    cmocka_unit_test(every_event_type_maps_to_a_canonical_status_or_is_ignored),
	    cmocka_unit_test(an_ignored_event_is_not_checked_further),
	    cmocka_unit_test(vehicle_types_are_shown_as_words),
	    cmocka_unit_test(missing_optional_fields_leave_their_parts_out),
	    cmocka_unit_test(coordinates_given_as_strings_are_read),
	    cmocka_unit_test(out_of_range_or_half_coordinates_are_refused),
	    cmocka_unit_test(every_time_format_is_read_with_its_offset),
	    cmocka_unit_test(a_time_that_is_not_a_time_is_refused),
	    cmocka_unit_test(an_eta_that_is_not_a_time_is_named),
	    cmocka_unit_test(a_missing_required_member_is_named),
	    cmocka_unit_test(a_member_of_the_wrong_type_is_named),
	    cmocka_unit_test(an_order_id_that_trackgate_cannot_use_is_refused),
	    cmocka_unit_test(a_body_that_is_not_one_json_object_is_refused),
	    cmocka_unit_test(every_truncation_of_a_documented_event_is_refused),
	    cmocka_unit_test(huge_numbers_are_refused_not_wrapped),
	    cmocka_unit_test(bytes_that_are_not_utf8_are_refused),
	    cmocka_unit_test(courier_text_is_cleaned_and_cut_for_proto),
	    cmocka_unit_test(a_60_kib_body_is_parsed),
	    cmocka_unit_test(the_same_body_twice_gives_the_same_event_id),
	    cmocka_unit_test(no_room_for_an_update_is_an_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
