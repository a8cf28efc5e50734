/*
 * test_adapter_uber_direct.c - adapters/uber_direct.c on payloads written
 * from Uber Direct's documented webhook samples (tests/unit/fixtures/
 * uber_direct/), and on hostile variants of them.  Every update produced is
 * checked to pass proto validation after an encode/decode round trip.
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

#define KEY "c5c26d5a-70d6-46c7-a652-d7c09825ad29"
#define NOW_MS 1700000000000LL

/* Uber's own worked example (developer.uber.com/docs/deliveries/webhooks). */
#define DOCS_PAYLOAD                                                                               \
	"{\"kind\": \"event.courier_update\", \"location\": {\"lat\": 37.7974109, \"lng\": "       \
	"-122.424145}}"
#define DOCS_SIGNATURE "cdff8133fb065f8d37a2c1c94c3331b6a82766d14e7ea4faacc4886558cedd65"

/* What every update must keep through proto: order_id, event_id, ts and status. */
static const atl_expect_t EXPECT = {NULL, 1, ATL_CHECK_BASIC};

/* --- the request ------------------------------------------------------------- */

static adapter_request_t request(const char *body, size_t len, atl_headers_t *h)
{
	return atl_request(body, len, h, KEY, strlen(KEY), NOW_MS);
}

static char *load(const char *name, size_t *len)
{
	return atl_load_fixture("uber_direct", name, len);
}

/* Parses body (signature not involved) and checks every update with proto. */
static int parse_len(const char *body, size_t len, proto_update_t *u, int *n, proto_error_t *err)
{
	atl_headers_t h = {{NULL}, {NULL}};
	adapter_request_t req = request(body, len, &h);
	proto_update_t out[ADAPTER_UPDATES_MAX];
	int rc = atl_parse(&adapter_uber_direct, &req, out, n, err, &EXPECT);

	if (*n == 1 && u != NULL)
		*u = out[0];
	return rc;
}

static int parse(const char *body, proto_update_t *u, int *n, proto_error_t *err)
{
	return parse_len(body, strlen(body), u, n, err);
}

static int parse_fixture(const char *name, proto_update_t *u, int *n, proto_error_t *err)
{
	size_t len;
	char *body = load(name, &len);
	int rc = parse_len(body, len, u, n, err);

	free(body);
	return rc;
}

/* A minimal delivery_status event around the given members of data. */
#define STATUS_EVENT(status, data)                                                                 \
	"{\"kind\":\"event.delivery_status\",\"id\":\"evt_1\",\"created\":"                        \
	"\"2024-05-01T12:00:00.250Z\",\"delivery_id\":\"del_1\",\"status\":\"" status "\","        \
	"\"data\":{" data "}}"

/* --- verify ---------------------------------------------------------------------- */

static void verify_accepts_the_documented_example(void **state)
{
	atl_headers_t h = {{"x-postmates-signature"}, {DOCS_SIGNATURE}};
	adapter_request_t req = request(DOCS_PAYLOAD, strlen(DOCS_PAYLOAD), &h);
	proto_error_t err;

	(void)state;
	assert_int_equal(adapter_uber_direct.verify(&req, &err), ADAPTER_OK);
	h.name[0] = "x-uber-signature";
	assert_int_equal(adapter_uber_direct.verify(&req, &err), ADAPTER_OK);
}

static void verify_accepts_upper_case_hex(void **state)
{
	char sig[65];
	atl_headers_t h = {{"x-uber-signature"}, {sig}};
	adapter_request_t req = request(DOCS_PAYLOAD, strlen(DOCS_PAYLOAD), &h);
	proto_error_t err;

	(void)state;
	snprintf(sig, sizeof(sig), "%s", DOCS_SIGNATURE);
	for (char *p = sig; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	assert_int_equal(adapter_uber_direct.verify(&req, &err), ADAPTER_OK);
}

static void verify_signs_the_raw_fixture_bytes(void **state)
{
	char sig[65];
	size_t len;
	char *body = load("courier_update.json", &len);
	atl_headers_t h = {{"x-postmates-signature"}, {sig}};
	adapter_request_t req = request(body, len, &h);
	proto_error_t err;

	(void)state;
	atl_hmac_hex(ADAPTER_HMAC_SHA256, KEY, strlen(KEY), body, len, sig);
	assert_int_equal(adapter_uber_direct.verify(&req, &err), ADAPTER_OK);
	/* One byte more (a trailing newline) is another body. */
	req.body_len = len - 1;
	assert_int_equal(adapter_uber_direct.verify(&req, &err), ADAPTER_EAUTH);
	free(body);
}

static void verify_refuses_a_missing_signature(void **state)
{
	atl_headers_t h = {{NULL}, {NULL}};
	adapter_request_t req = request(DOCS_PAYLOAD, strlen(DOCS_PAYLOAD), &h);
	proto_error_t err;

	(void)state;
	assert_int_equal(adapter_uber_direct.verify(&req, &err), ADAPTER_EAUTH);
	assert_string_equal(err.field, "x-postmates-signature");
	/* Header names arrive lower-cased; another header is not a signature. */
	h.name[0] = "x-signature";
	h.value[0] = DOCS_SIGNATURE;
	assert_int_equal(adapter_uber_direct.verify(&req, &err), ADAPTER_EAUTH);
	req.header = NULL;
	assert_int_equal(adapter_uber_direct.verify(&req, &err), ADAPTER_EAUTH);
}

static void verify_refuses_a_wrong_signature(void **state)
{
	atl_headers_t h = {{"x-postmates-signature"}, {DOCS_SIGNATURE}};
	adapter_request_t req = request(DOCS_PAYLOAD, strlen(DOCS_PAYLOAD), &h);
	char tampered[] = DOCS_PAYLOAD;
	proto_error_t err;

	(void)state;
	tampered[10] = 'X';
	req.body = tampered;
	assert_int_equal(adapter_uber_direct.verify(&req, &err), ADAPTER_EAUTH);
	req.body = DOCS_PAYLOAD;
	req.secret = (const unsigned char *)"another-key";
	req.secret_len = 11;
	assert_int_equal(adapter_uber_direct.verify(&req, &err), ADAPTER_EAUTH);
	req.secret = (const unsigned char *)KEY;
	req.secret_len = strlen(KEY);
	h.value[0] = "cdff8133";
	assert_int_equal(adapter_uber_direct.verify(&req, &err), ADAPTER_EAUTH);
	h.value[0] = "";
	assert_int_equal(adapter_uber_direct.verify(&req, &err), ADAPTER_EAUTH);
	h.value[0] = "sha1=" DOCS_SIGNATURE;
	assert_int_equal(adapter_uber_direct.verify(&req, &err), ADAPTER_EAUTH);
}

static void verify_takes_either_header(void **state)
{
	atl_headers_t h = {{"x-postmates-signature", "x-uber-signature"}, {NULL, DOCS_SIGNATURE}};
	adapter_request_t req = request(DOCS_PAYLOAD, strlen(DOCS_PAYLOAD), &h);
	proto_error_t err;

	(void)state;
	/* A wrong X-Postmates-Signature does not hide a right X-Uber-Signature. */
	h.value[0] = "0000000000000000000000000000000000000000000000000000000000000000";
	assert_int_equal(adapter_uber_direct.verify(&req, &err), ADAPTER_OK);
	h.value[1] = h.value[0];
	assert_int_equal(adapter_uber_direct.verify(&req, &err), ADAPTER_EAUTH);
}

static void verify_refuses_without_a_configured_key(void **state)
{
	atl_headers_t h = {{"x-postmates-signature"}, {DOCS_SIGNATURE}};
	adapter_request_t req = request(DOCS_PAYLOAD, strlen(DOCS_PAYLOAD), &h);
	proto_error_t err;

	(void)state;
	req.secret_len = 0;
	assert_int_equal(adapter_uber_direct.verify(&req, &err), ADAPTER_EAUTH);
	req.secret = NULL;
	assert_int_equal(adapter_uber_direct.verify(&req, &err), ADAPTER_EAUTH);
}

/* --- delivery_status ----------------------------------------------------------- */

static void delivery_status_gives_status_courier_eta_and_position(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse_fixture("delivery_status_pickup_complete.json", &u, &n, &err),
			 ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_string_equal(u.provider, "uber_direct");
	assert_string_equal(u.order_id, "ORD-1001"); /* data.external_id */
	assert_string_equal(u.event_id, "evt_5bVtQ4eXRf2mZp0Hn7kYaA");
	assert_int_equal(u.ts, 1649957958287);
	assert_int_equal(u.status, PROTO_STATUS_PICKED_UP);
	assert_true(u.has_eta && u.eta.has_pickup && u.eta.has_dropoff);
	assert_int_equal(u.eta.pickup, 1649957958187);
	assert_int_equal(u.eta.dropoff, 1649959410572);
	assert_true(u.has_courier);
	assert_string_equal(u.courier.name, "Cori R.");
	assert_string_equal(u.courier.vehicle, "car");
	assert_string_equal(u.courier.id, "");
	assert_true(u.has_location);
	assert_true(u.location.lat == 40.7484 && u.location.lng == -73.9857);
	/* data.pickup.location and data.dropoff.location: the page's markers. */
	assert_true(u.has_places && u.places.has_pickup && u.places.has_dropoff);
	assert_true(u.places.pickup.lat == 40.748441 && u.places.pickup.lng == -73.985664);
	assert_true(u.places.dropoff.lat == 40.724533 && u.places.dropoff.lng == -74.00839);
}

/* A bad place is left out; the status in the same webhook still goes through. */
static void a_bad_place_is_left_out_not_refused(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	/* Uber's own sample carries lat 99.99999; a string that is no number; half a pair. */
	assert_int_equal(
	    parse(STATUS_EVENT("pickup",
			       "\"pickup\":{\"location\":{\"lat\":99.99999,\"lng\":-99.99999}},"
			       "\"dropoff\":{\"location\":{\"lat\":\"north\",\"lng\":2}}"),
		  &u, &n, &err),
	    ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_int_equal(u.status, PROTO_STATUS_EN_ROUTE_TO_PICKUP);
	assert_false(u.has_places || u.places.has_pickup || u.places.has_dropoff);
	assert_int_equal(
	    parse(STATUS_EVENT("pickup", "\"pickup\":{\"location\":{\"lat\":0,\"lng\":0}},"
					 "\"dropoff\":{\"location\":{\"lat\":52.5}}"),
		  &u, &n, &err),
	    ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_false(u.has_places); /* 0,0 is a placeholder; a lat alone is half a place */
	/* One good place is kept alone. */
	assert_int_equal(
	    parse(STATUS_EVENT("pickup",
			       "\"pickup\":{\"location\":null},"
			       "\"dropoff\":{\"location\":{\"lat\":\"52.5\",\"lng\":13.4}}"),
		  &u, &n, &err),
	    ADAPTER_OK);
	assert_true(u.has_places && !u.places.has_pickup && u.places.has_dropoff);
	assert_true(u.places.dropoff.lat == 52.5 && u.places.dropoff.lng == 13.4);
}

/* Courier updates stay position-only (coalescable), even when data has the places. */
static void courier_update_leaves_the_places_out(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(
	    parse("{\"kind\":\"event.courier_update\",\"id\":\"evt_2\",\"created\":"
		  "\"2024-05-01T12:00:00Z\",\"delivery_id\":\"del_1\",\"location\":{\"lat\":52.51,"
		  "\"lng\":13.41},\"data\":{\"pickup\":{\"location\":{\"lat\":52.5,\"lng\":13.4}},"
		  "\"dropoff\":{\"location\":{\"lat\":52.6,\"lng\":13.5}}}}",
		  &u, &n, &err),
	    ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_true(u.has_location);
	assert_false(u.has_places);
}

static void pending_without_courier_or_external_id_uses_delivery_id(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse_fixture("delivery_status_pending.json", &u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_string_equal(u.order_id, "del_Xl2aTn3pS0yKzP8vQm1cBw");
	assert_int_equal(u.status, PROTO_STATUS_CREATED);
	assert_int_equal(u.ts, 1649957283901);
	assert_false(u.has_courier);
	assert_false(u.has_location);
	assert_int_equal(u.eta.pickup, 1649958004000);
	assert_int_equal(u.eta.dropoff, 1649959530000);
}

static void every_documented_status_maps(void **state)
{
	static const struct {
		const char *uber;
		proto_status_t status;
	} map[] = {
	    {"pending", PROTO_STATUS_CREATED},
	    {"pickup", PROTO_STATUS_EN_ROUTE_TO_PICKUP},
	    {"pickup_complete", PROTO_STATUS_PICKED_UP},
	    {"dropoff", PROTO_STATUS_EN_ROUTE_TO_DROPOFF},
	    {"delivered", PROTO_STATUS_DELIVERED},
	    {"canceled", PROTO_STATUS_CANCELLED},
	    {"returned", PROTO_STATUS_RETURNED},
	};
	char body[512];
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		snprintf(body, sizeof(body),
			 "{\"kind\":\"event.delivery_status\",\"id\":\"evt_1\",\"created\":"
			 "\"2024-05-01T12:00:00Z\",\"delivery_id\":\"del_1\",\"status\":\"%s\","
			 "\"data\":{\"status\":\"%s\"}}",
			 map[i].uber, map[i].uber);
		assert_int_equal(parse(body, &u, &n, &err), ADAPTER_OK);
		assert_int_equal(n, 1);
		assert_int_equal(u.status, map[i].status);
		assert_string_equal(u.order_id, "del_1");
		assert_int_equal(u.ts, 1714564800000);
	}
}

static void the_status_falls_back_to_data_status(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse("{\"kind\":\"event.delivery_status\",\"id\":\"e\",\"delivery_id\":"
			       "\"d\",\"data\":{\"status\":\"delivered\"}}",
			       &u, &n, &err),
			 ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_int_equal(u.status, PROTO_STATUS_DELIVERED);
	/* No created: the receive time. */
	assert_int_equal(u.ts, NOW_MS);
}

static void an_unknown_status_is_left_out(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse(STATUS_EVENT("scheduled", "\"status\":\"scheduled\""), &u, &n, &err),
			 ADAPTER_OK);
	assert_int_equal(n, 0);
	assert_int_equal(
	    parse(STATUS_EVENT("scheduled", "\"dropoff_eta\":\"2024-05-01T12:30:00Z\""), &u, &n,
		  &err),
	    ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_int_equal(u.status, PROTO_STATUS_NONE);
	assert_true(u.has_eta && !u.eta.has_pickup && u.eta.has_dropoff);
	/* Places alone are something to track. */
	assert_int_equal(
	    parse(
		STATUS_EVENT("scheduled", "\"dropoff\":{\"location\":{\"lat\":52.5,\"lng\":13.4}}"),
		&u, &n, &err),
	    ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_int_equal(u.status, PROTO_STATUS_NONE);
	assert_true(u.has_places && u.places.has_dropoff && !u.has_eta && !u.has_location);
}

static void optional_fields_may_be_absent_or_null(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse(STATUS_EVENT("pickup", "\"courier\":null,\"pickup_eta\":null,"
						      "\"external_id\":null"),
			       &u, &n, &err),
			 ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_false(u.has_courier || u.has_eta || u.has_location);
	assert_int_equal(
	    parse(STATUS_EVENT("pickup", "\"courier\":{\"name\":\"Cori R.\"}"), &u, &n, &err),
	    ADAPTER_OK);
	assert_true(u.has_courier);
	assert_string_equal(u.courier.vehicle, "");
	assert_false(u.has_location);
}

static void courier_text_is_cleaned_and_truncated(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse(STATUS_EVENT("pickup", "\"courier\":{\"name\":\"Ana\\nSilva\","
						      "\"vehicle_type\":\"cargo bicycle with a "
						      "very long description\"}"),
			       &u, &n, &err),
			 ADAPTER_OK);
	assert_string_equal(u.courier.name, "Ana Silva");
	assert_int_equal(strlen(u.courier.vehicle), PROTO_COURIER_VEHICLE_MAX);
}

/* --- courier_update ------------------------------------------------------------ */

static void courier_update_gives_the_position_only(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse_fixture("courier_update.json", &u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_string_equal(u.order_id, "ORD-2002");
	assert_string_equal(u.event_id, "evt_WNjLziAJT4eiOKgPsLNtbw");
	assert_int_equal(u.ts, 1688620147173);
	assert_true(u.has_location);
	assert_true(u.location.lat == 40.71093 && u.location.lng == -74.0119);
	/* Nothing that would keep the gateway from coalescing it. */
	assert_int_equal(u.status, PROTO_STATUS_NONE);
	assert_false(u.has_eta);
	assert_false(u.has_courier);
}

static void courier_update_falls_back_to_data_courier_location(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	/* The fixture also has string coordinates. */
	assert_int_equal(parse_fixture("courier_update_data_only.json", &u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_string_equal(u.order_id, "ORD-3003");
	assert_int_equal(u.ts, 1648594605895);
	assert_true(u.location.lat == 45.432121 && u.location.lng == -123.12341);
}

static void courier_update_without_a_position_is_ignored(void **state)
{
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse("{\"kind\":\"event.courier_update\",\"id\":\"e\",\"delivery_id\":"
			       "\"d\",\"data\":{\"status\":\"pickup\",\"courier\":{}}}",
			       NULL, &n, &err),
			 ADAPTER_OK);
	assert_int_equal(n, 0);
}

static void the_documented_example_has_no_order_and_is_refused(void **state)
{
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse(DOCS_PAYLOAD, NULL, &n, &err), ADAPTER_EINVAL);
	assert_string_equal(err.field, "delivery_id");
}

/* --- other kinds ---------------------------------------------------------------- */

static void other_kinds_are_ignored(void **state)
{
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse_fixture("refund_request.json", NULL, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 0);
	assert_int_equal(parse("{\"kind\":\"event.shopping_progress\"}", NULL, &n, &err),
			 ADAPTER_OK);
	assert_int_equal(n, 0);
	/* The kind is compared exactly. */
	assert_int_equal(parse("{\"kind\":\"EVENT.COURIER_UPDATE\",\"location\":{\"lat\":1,"
			       "\"lng\":2},\"delivery_id\":\"d\"}",
			       NULL, &n, &err),
			 ADAPTER_OK);
	assert_int_equal(n, 0);
}

/* The Direct API's notification, from Uber's "Delivery Status Notification" example. */
static void the_direct_apis_status_changed_notification_is_ignored(void **state)
{
	proto_error_t err;
	int n = -1;

	(void)state;
	assert_int_equal(parse_fixture("dapi_status_changed.json", NULL, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 0);
	n = -1;
	assert_int_equal(parse("{\"event_type\":\"dapi.status_changed\",\"meta\":{\"status\":"
			       "\"COMPLETED\"}}",
			       NULL, &n, &err),
			 ADAPTER_OK);
	assert_int_equal(n, 0);
	/* An event_type that is not a string is still malformed. */
	assert_int_equal(parse("{\"event_type\":7}", NULL, &n, &err), ADAPTER_EINVAL);
	assert_string_equal(err.field, "event_type");
}

static void kind_is_required_and_a_string(void **state)
{
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse("{\"delivery_id\":\"d\",\"status\":\"pickup\"}", NULL, &n, &err),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "kind");
	assert_int_equal(parse("{\"kind\":7}", NULL, &n, &err), ADAPTER_EINVAL);
	assert_string_equal(err.field, "kind");
	assert_int_equal(parse("{\"kind\":null}", NULL, &n, &err), ADAPTER_EINVAL);
}

/* --- the order id ------------------------------------------------------------------- */

static void order_id_prefers_external_id_then_delivery_id_then_data_id(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(
	    parse(STATUS_EVENT("pickup", "\"external_id\":\"\",\"id\":\"del_2\""), &u, &n, &err),
	    ADAPTER_OK);
	assert_string_equal(u.order_id, "del_1");
	assert_int_equal(parse("{\"kind\":\"event.delivery_status\",\"status\":\"pickup\","
			       "\"data\":{\"id\":\"del_2\"}}",
			       &u, &n, &err),
			 ADAPTER_OK);
	assert_string_equal(u.order_id, "del_2");
}

static void order_id_must_be_present_and_valid(void **state)
{
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(
	    parse("{\"kind\":\"event.delivery_status\",\"status\":\"pickup\"}", NULL, &n, &err),
	    ADAPTER_EINVAL);
	assert_string_equal(err.field, "delivery_id");
	assert_int_equal(
	    parse(STATUS_EVENT("pickup", "\"external_id\":\"order #12\""), NULL, &n, &err),
	    ADAPTER_EINVAL);
	assert_string_equal(err.field, "data.external_id");
	assert_int_equal(parse(STATUS_EVENT("pickup", "\"external_id\":12"), NULL, &n, &err),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "data.external_id");
	assert_int_equal(parse("{\"kind\":\"event.delivery_status\",\"status\":\"pickup\","
			       "\"delivery_id\":\"\xc3\xa9t\xc3\xa9\"}",
			       NULL, &n, &err),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "delivery_id");
}

/* --- times ------------------------------------------------------------------------ */

static void every_time_format_is_read(void **state)
{
	static const struct {
		const char *created;
		int64_t ms;
	} times[] = {
	    {"\"2024-05-01T12:00:00.250Z\"", 1714564800250},
	    {"\"2024-05-01T12:00:00Z\"", 1714564800000},
	    {"\"2024-05-01T12:00:00.250123Z\"", 1714564800250},
	    {"\"2024-05-01T14:00:00.250+02:00\"", 1714564800250},
	    {"\"2024-05-01 12:00:00.25z\"", 1714564800250},
	    {"1714564800", 1714564800000},
	    {"1714564800250", 1714564800250},
	    {"\"1714564800\"", 1714564800000},
	};
	char body[256];
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		snprintf(body, sizeof(body),
			 "{\"kind\":\"event.delivery_status\",\"delivery_id\":\"d\",\"created\":%s,"
			 "\"status\":\"pickup\"}",
			 times[i].created);
		assert_int_equal(parse(body, &u, &n, &err), ADAPTER_OK);
		assert_int_equal(u.ts, times[i].ms);
	}
}

static void bad_times_are_refused_naming_the_field(void **state)
{
	static const char *const bad[] = {
	    "\"2024-13-01T12:00:00Z\"",
	    "\"yesterday\"",
	    "\"2024-05-01T12:00:00\"",
	    "true",
	    "1e300",
	    "-1",
	    "{}",
	    "\"NaN\"",
	};
	char body[256];
	proto_error_t err;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body),
			 "{\"kind\":\"event.delivery_status\",\"delivery_id\":\"d\",\"created\":%s,"
			 "\"status\":\"pickup\"}",
			 bad[i]);
		assert_int_equal(parse(body, NULL, &n, &err), ADAPTER_EINVAL);
		assert_string_equal(err.field, "created");
	}
	assert_int_equal(parse(STATUS_EVENT("pickup", "\"dropoff_eta\":\"soon\""), NULL, &n, &err),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "data.dropoff_eta");
}

static void without_created_or_receive_time_the_event_is_refused(void **state)
{
	const char *body = "{\"kind\":\"event.delivery_status\",\"delivery_id\":\"d\","
			   "\"status\":\"pickup\"}";
	atl_headers_t h = {{NULL}, {NULL}};
	adapter_request_t req = request(body, strlen(body), &h);
	proto_update_t out[1];
	proto_error_t err;
	int n;

	(void)state;
	req.now_ms = 0;
	assert_int_equal(adapter_uber_direct.parse(&req, out, 1, &n, &err), ADAPTER_EINVAL);
	assert_string_equal(err.field, "created");
	assert_int_equal(n, 0);
}

/* --- event ids ----------------------------------------------------------------------- */

static void a_repeated_event_gives_the_same_event_id(void **state)
{
	proto_update_t a, b;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse_fixture("courier_update.json", &a, &n, &err), ADAPTER_OK);
	assert_int_equal(parse_fixture("courier_update.json", &b, &n, &err), ADAPTER_OK);
	assert_string_equal(a.event_id, b.event_id);
	assert_string_equal(a.event_id, "evt_WNjLziAJT4eiOKgPsLNtbw");
}

static void without_an_id_the_event_id_is_a_body_hash(void **state)
{
	const char *body = "{\"kind\":\"event.courier_update\",\"delivery_id\":\"d\","
			   "\"location\":{\"lat\":1,\"lng\":2}}";
	char want[PROTO_EVENT_ID_MAX + 1];
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse(body, &u, &n, &err), ADAPTER_OK);
	adapter_body_event_id(body, strlen(body), want);
	assert_string_equal(u.event_id, want);
	assert_memory_equal(u.event_id, "sha256:", 7);
}

static void a_long_or_odd_id_is_made_valid(void **state)
{
	char body[600], id[300];
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	memset(id, 'e', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	snprintf(body, sizeof(body),
		 "{\"kind\":\"event.courier_update\",\"id\":\"%s\",\"delivery_id\":\"d\","
		 "\"location\":{\"lat\":1,\"lng\":2}}",
		 id);
	assert_int_equal(parse(body, &u, &n, &err), ADAPTER_OK);
	assert_int_equal(strlen(u.event_id), PROTO_EVENT_ID_MAX);
	assert_int_equal(parse("{\"kind\":\"event.courier_update\",\"id\":\"\\u00e9\\t\","
			       "\"delivery_id\":\"d\",\"location\":{\"lat\":1,\"lng\":2}}",
			       &u, &n, &err),
			 ADAPTER_OK);
	assert_string_equal(u.event_id, "___");
	assert_int_equal(parse("{\"kind\":\"event.courier_update\",\"id\":5,"
			       "\"delivery_id\":\"d\",\"location\":{\"lat\":1,\"lng\":2}}",
			       &u, &n, &err),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "id");
}

/* --- hostile input ---------------------------------------------------------------- */

#define COURIER_AT(loc)                                                                            \
	"{\"kind\":\"event.courier_update\",\"id\":\"e\",\"delivery_id\":\"d\",\"location\":" loc  \
	"}"

static void coordinates_may_be_strings(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(
	    parse(COURIER_AT("{\"lat\":\"-33.8688\",\"lng\":\"151.2093\"}"), &u, &n, &err),
	    ADAPTER_OK);
	assert_true(u.location.lat == -33.8688 && u.location.lng == 151.2093);
}

static void bad_coordinates_are_refused_naming_the_field(void **state)
{
	static const struct {
		const char *loc;
		const char *field;
	} bad[] = {
	    {"{\"lat\":true,\"lng\":1}", "location.lat"},
	    {"{\"lat\":1,\"lng\":[1]}", "location.lng"},
	    {"{\"lat\":91,\"lng\":1}", "location.lat"},
	    {"{\"lat\":1,\"lng\":-180.01}", "location.lng"},
	    {"{\"lat\":1e999,\"lng\":1}", "location.lat"},
	    {"{\"lat\":1,\"lng\":1e308}", "location.lng"},
	    {"{\"lat\":\"NaN\",\"lng\":1}", "location.lat"},
	    {"{\"lat\":\"1e999\",\"lng\":1}", "location.lat"},
	    {"{\"lat\":\"0x10\",\"lng\":1}", "location.lat"},
	    {"{\"lat\":1}", "location.lng"},
	    {"\"40.7,-74.0\"", "location"},
	    {"[40.7,-74.0]", "location"},
	};
	char body[256];
	proto_error_t err;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body), COURIER_AT("%s"), bad[i].loc);
		assert_int_equal(parse(body, NULL, &n, &err), ADAPTER_EINVAL);
		if (strcmp(err.field, bad[i].field) != 0)
			fail_msg("%s: field %s, want %s", bad[i].loc, err.field, bad[i].field);
	}
}

static void wrong_types_are_refused(void **state)
{
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse("{\"kind\":\"event.delivery_status\",\"delivery_id\":\"d\","
			       "\"status\":1}",
			       NULL, &n, &err),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "status");
	assert_int_equal(parse("{\"kind\":\"event.delivery_status\",\"delivery_id\":\"d\","
			       "\"status\":\"pickup\",\"data\":\"x\"}",
			       NULL, &n, &err),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "data");
	assert_int_equal(parse(STATUS_EVENT("pickup", "\"courier\":{\"name\":7}"), NULL, &n, &err),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "data.courier.name");
	assert_int_equal(parse(STATUS_EVENT("pickup", "\"courier\":[]"), NULL, &n, &err),
			 ADAPTER_EINVAL);
	assert_int_equal(parse("{\"kind\":\"event.delivery_status\",\"delivery_id\":[\"d\"],"
			       "\"status\":\"pickup\"}",
			       NULL, &n, &err),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "delivery_id");
}

static void malformed_bodies_are_refused(void **state)
{
	static const char *const bad[] = {
	    "",
	    "{",
	    "{\"kind\":\"event.courier_update\"",
	    "{\"kind\":\"event.courier_update\"}}",
	    "[]",
	    "null",
	    "{\"kind\":\"event.courier_update\",\"kind\":\"event.delivery_status\"}",
	    "{\"kind\":\"event.delivery_status\",\"delivery_id\":\"d\\u0000x\",\"status\":"
	    "\"pickup\"}",
	    "{\"kind\":\"event.delivery_status\",\"delivery_id\":\"d\xff\",\"status\":"
	    "\"pickup\"}",
	    "{\"kind\":\"event.delivery_status\",\"delivery_id\":\"d\xed\xa0\x80\"}",
	};
	proto_error_t err;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], NULL, &n, &err) != ADAPTER_EINVAL)
			fail_msg("accepted %s", bad[i]);
	}
	/* An embedded NUL byte. */
	assert_int_equal(parse_len("{\"kind\":\"event.x\"}\0", 19, NULL, &n, &err), ADAPTER_EINVAL);
}

static void every_truncation_of_a_fixture_is_refused(void **state)
{
	size_t len;
	char *body = load("delivery_status_pickup_complete.json", &len);
	proto_error_t err;
	int n;

	(void)state;
	/* Only the whitespace after the closing brace may go. */
	while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == ' '))
		len--;
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(parse_len(body, cut, NULL, &n, &err), ADAPTER_EINVAL);
	free(body);
}

static void flipped_bytes_never_crash(void **state)
{
	size_t len;
	char *body = load("courier_update.json", &len);
	static const char flips[] = {'"', '{', '}', '[', ':', ',', '\\', '\xff', '0', '.'};
	proto_error_t err;
	int n;

	(void)state;
	for (size_t i = 0; i < len; i += 3) {
		char saved = body[i];
		body[i] = flips[i % sizeof(flips)];
		int rc = parse_len(body, len, NULL, &n, &err);
		assert_true(rc == ADAPTER_OK || rc == ADAPTER_EINVAL);
		body[i] = saved;
	}
	free(body);
}

static void a_60_kib_body_with_a_big_ignored_field_parses(void **state)
{
	size_t pad = 60 * 1024;
	const char *head = "{\"kind\":\"event.courier_update\",\"id\":\"evt_big\",\"delivery_id\":"
			   "\"del_big\",\"location\":{\"lat\":52.52,\"lng\":13.405},\"notes\":\"";
	const char *tail = "\"}";
	size_t len = strlen(head) + pad + strlen(tail);
	char *body = malloc(len);
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_non_null(body);
	memcpy(body, head, strlen(head));
	memset(body + strlen(head), 'x', pad);
	memcpy(body + strlen(head) + pad, tail, strlen(tail));
	assert_int_equal(parse_len(body, len, &u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_string_equal(u.order_id, "del_big");
	free(body);
}

static void no_room_is_an_error(void **state)
{
	const char *body = COURIER_AT("{\"lat\":1,\"lng\":2}");
	atl_headers_t h = {{NULL}, {NULL}};
	adapter_request_t req = request(body, strlen(body), &h);
	proto_update_t out[1];
	proto_error_t err;
	int n = 7;

	(void)state;
	assert_int_equal(adapter_uber_direct.parse(&req, out, 0, &n, &err), ADAPTER_EINVAL);
	assert_int_equal(n, 0);
	assert_int_equal(adapter_uber_direct.parse(&req, out, 1, &n, NULL), ADAPTER_OK);
	assert_int_equal(n, 1);
}

static void the_registry_finds_the_adapter(void **state)
{
	(void)state;
	assert_ptr_equal(adapter_find("uber_direct"), &adapter_uber_direct);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(verify_accepts_the_documented_example),
	    cmocka_unit_test(verify_accepts_upper_case_hex),
	    cmocka_unit_test(verify_signs_the_raw_fixture_bytes),
	    cmocka_unit_test(verify_refuses_a_missing_signature),
	    cmocka_unit_test(verify_refuses_a_wrong_signature),
	    cmocka_unit_test(verify_takes_either_header),
	    cmocka_unit_test(verify_refuses_without_a_configured_key),
	    cmocka_unit_test(delivery_status_gives_status_courier_eta_and_position),
	    cmocka_unit_test(a_bad_place_is_left_out_not_refused),
	    cmocka_unit_test(courier_update_leaves_the_places_out),
	    cmocka_unit_test(pending_without_courier_or_external_id_uses_delivery_id),
	    cmocka_unit_test(every_documented_status_maps),
	    cmocka_unit_test(the_status_falls_back_to_data_status),
	    cmocka_unit_test(an_unknown_status_is_left_out),
	    cmocka_unit_test(optional_fields_may_be_absent_or_null),
	    cmocka_unit_test(courier_text_is_cleaned_and_truncated),
	    cmocka_unit_test(courier_update_gives_the_position_only),
	    cmocka_unit_test(courier_update_falls_back_to_data_courier_location),
	    cmocka_unit_test(courier_update_without_a_position_is_ignored),
	    cmocka_unit_test(the_documented_example_has_no_order_and_is_refused),
	    cmocka_unit_test(other_kinds_are_ignored),
	    cmocka_unit_test(the_direct_apis_status_changed_notification_is_ignored),
	    cmocka_unit_test(kind_is_required_and_a_string),
	    cmocka_unit_test(order_id_prefers_external_id_then_delivery_id_then_data_id),
	    cmocka_unit_test(order_id_must_be_present_and_valid),
	    cmocka_unit_test(every_time_format_is_read),
	    cmocka_unit_test(bad_times_are_refused_naming_the_field),
	    cmocka_unit_test(without_created_or_receive_time_the_event_is_refused),
	    cmocka_unit_test(a_repeated_event_gives_the_same_event_id),
	    cmocka_unit_test(without_an_id_the_event_id_is_a_body_hash),
	    cmocka_unit_test(a_long_or_odd_id_is_made_valid),
	    cmocka_unit_test(coordinates_may_be_strings),
	    cmocka_unit_test(bad_coordinates_are_refused_naming_the_field),
	    cmocka_unit_test(wrong_types_are_refused),
	    cmocka_unit_test(malformed_bodies_are_refused),
	    cmocka_unit_test(every_truncation_of_a_fixture_is_refused),
	    cmocka_unit_test(flipped_bytes_never_crash),
	    cmocka_unit_test(a_60_kib_body_with_a_big_ignored_field_parses),
	    cmocka_unit_test(no_room_is_an_error),
	    cmocka_unit_test(the_registry_finds_the_adapter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
