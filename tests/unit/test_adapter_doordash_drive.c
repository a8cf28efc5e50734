/*
 * test_adapter_doordash_drive.c - adapters/doordash_drive.c on payloads
 * written from DoorDash Drive's documented webhook example and event list
 * (tests/unit/fixtures/doordash_drive/), and on hostile variants of them.
 * Every update produced is checked to pass proto validation after an
 * encode/decode round trip.
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

#define BASIC_SECRET "trackgate:s3cr3t-pa55"
#define BASIC_HEADER "Basic dHJhY2tnYXRlOnMzY3IzdC1wYTU1" /* base64(BASIC_SECRET) */
#define NOW_MS 1700000000000LL

/* What every update must keep through proto: order_id, event_id, ts, status and courier id. */
static const atl_expect_t EXPECT = {NULL, 1, ATL_CHECK_COURIER_ID};

/* --- the request ------------------------------------------------------------- */

static adapter_request_t request(const char *body, size_t len, atl_headers_t *h)
{
	return atl_request(body, len, h, BASIC_SECRET, strlen(BASIC_SECRET), NOW_MS);
}

static char *load(const char *name, size_t *len)
{
	return atl_load_fixture("doordash_drive", name, len);
}

static int parse_len(const char *body, size_t len, proto_update_t *u, int *n, proto_error_t *err)
{
	atl_headers_t h = {{NULL}, {NULL}};
	adapter_request_t req = request(body, len, &h);
	proto_update_t out[ADAPTER_UPDATES_MAX];
	int rc = atl_parse(&adapter_doordash_drive, &req, out, n, err, &EXPECT);

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

/* A minimal event: "{" EVENT(name) [, more members] "}". */
#define EVENT(name)                                                                                \
	"\"event_name\":\"" name "\",\"external_delivery_id\":\"D-1\",\"created_at\":"             \
	"\"2024-05-01T12:00:00.123456Z\""

/* --- verify ---------------------------------------------------------------------- */

static int verify_with(const char *authorization, const char *secret)
{
	atl_headers_t h = {{"authorization"}, {authorization}};
	adapter_request_t req = request("{}", 2, &h);
	proto_error_t err;

	if (secret != NULL) {
		req.secret = (const unsigned char *)secret;
		req.secret_len = strlen(secret);
	}
	return adapter_doordash_drive.verify(&req, &err);
}

static void verify_accepts_the_configured_basic_credential(void **state)
{
	(void)state;
	assert_int_equal(verify_with(BASIC_HEADER, NULL), ADAPTER_OK);
	assert_int_equal(verify_with("basic dHJhY2tnYXRlOnMzY3IzdC1wYTU1", NULL), ADAPTER_OK);
	/* One '=' of padding, then two. */
	assert_int_equal(verify_with("Basic dXNlcjpwYXM=", "user:pas"), ADAPTER_OK);
	assert_int_equal(verify_with("Basic dXNlcjpwYQ==", "user:pa"), ADAPTER_OK);
}

static void verify_accepts_the_configured_bearer_token(void **state)
{
	(void)state;
	assert_int_equal(verify_with("Bearer tok_9f8e7d6c", "tok_9f8e7d6c"), ADAPTER_OK);
	assert_int_equal(verify_with("bearer tok_9f8e7d6c", "tok_9f8e7d6c"), ADAPTER_OK);
}

static void verify_refuses_a_wrong_credential(void **state)
{
	(void)state;
	assert_int_equal(verify_with("Basic dHJhY2tnYXRlOnMzY3IzdC1wYTU2", NULL), ADAPTER_EAUTH);
	assert_int_equal(verify_with("Bearer " BASIC_SECRET "x", NULL), ADAPTER_EAUTH);
	assert_int_equal(verify_with("Bearer tok_9f8e7d6", "tok_9f8e7d6c"), ADAPTER_EAUTH);
	assert_int_equal(verify_with(BASIC_SECRET, NULL), ADAPTER_EAUTH);
	assert_int_equal(verify_with("Basic", NULL), ADAPTER_EAUTH);
	assert_int_equal(verify_with("Basic !!!!", NULL), ADAPTER_EAUTH);
	assert_int_equal(verify_with("", NULL), ADAPTER_EAUTH);
}

static void verify_refuses_a_missing_header(void **state)
{
	atl_headers_t h = {{"Authorization"}, {BASIC_HEADER}};
	adapter_request_t req = request("{}", 2, &h);
	proto_error_t err;

	(void)state;
	/* The gateway passes lower-case names: the adapter asks for "authorization". */
	assert_int_equal(adapter_doordash_drive.verify(&req, &err), ADAPTER_EAUTH);
	assert_string_equal(err.field, "authorization");
	req.header = NULL;
	assert_int_equal(adapter_doordash_drive.verify(&req, &err), ADAPTER_EAUTH);
}

static void verify_refuses_without_a_configured_credential(void **state)
{
	atl_headers_t h = {{"authorization"}, {"Bearer "}};
	adapter_request_t req = request("{}", 2, &h);
	proto_error_t err;

	(void)state;
	req.secret = (const unsigned char *)"";
	req.secret_len = 0;
	assert_int_equal(adapter_doordash_drive.verify(&req, &err), ADAPTER_EAUTH);
	req.secret = NULL;
	assert_int_equal(adapter_doordash_drive.verify(&req, &err), ADAPTER_EAUTH);
}

/* --- lifecycle events ----------------------------------------------------------- */

static void dropped_off_example_gives_delivered_with_dasher_and_position(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse_fixture("dasher_dropped_off.json", &u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_string_equal(u.provider, "doordash_drive");
	assert_string_equal(u.order_id, "c19a5d37-e457-4247-9a67-921ec0134125");
	assert_int_equal(u.ts, 1643757502791); /* microseconds truncated to ms */
	assert_int_equal(u.status, PROTO_STATUS_DELIVERED);
	assert_true(u.has_location);
	assert_true(u.location.lat == 43.333333333 && u.location.lng == -79.333333333);
	assert_true(u.has_courier);
	assert_string_equal(u.courier.id, "123212");
	assert_string_equal(u.courier.name, "John D.");
	assert_false(u.has_eta);
	assert_memory_equal(u.event_id, "sha256:", 7);
}

static void confirmed_gives_en_route_to_pickup_with_etas(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse_fixture("dasher_confirmed.json", &u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_string_equal(u.order_id, "D-12345");
	assert_int_equal(u.ts, 1709661731123);
	assert_int_equal(u.status, PROTO_STATUS_EN_ROUTE_TO_PICKUP);
	assert_true(u.has_eta && u.eta.has_pickup && u.eta.has_dropoff);
	assert_int_equal(u.eta.pickup, 1709662500000);
	assert_int_equal(u.eta.dropoff, 1709664000000);
	assert_string_equal(u.courier.id, "987654");
	assert_string_equal(u.courier.name, "Ana S.");
}

static void cancelled_without_a_dasher_gives_the_status_alone(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse_fixture("delivery_cancelled.json", &u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_string_equal(u.order_id, "D-67890");
	assert_int_equal(u.status, PROTO_STATUS_CANCELLED);
	assert_int_equal(u.ts, 1709661900000);
	assert_false(u.has_location || u.has_courier || u.has_eta);
}

static void every_lifecycle_event_maps(void **state)
{
	static const struct {
		const char *event_name;
		proto_status_t status;
	} map[] = {
	    {"DASHER_CONFIRMED", PROTO_STATUS_EN_ROUTE_TO_PICKUP},
	    {"DASHER_CONFIRMED_PICKUP_ARRIVAL", PROTO_STATUS_AT_PICKUP},
	    {"DASHER_PICKED_UP", PROTO_STATUS_PICKED_UP},
	    {"DASHER_CONFIRMED_DROPOFF_ARRIVAL", PROTO_STATUS_AT_DROPOFF},
	    {"DASHER_DROPPED_OFF", PROTO_STATUS_DELIVERED},
	    {"DELIVERY_CANCELLED", PROTO_STATUS_CANCELLED},
	    {"DELIVERY_RETURN_INITIALIZED", PROTO_STATUS_FAILED},
	    {"DELIVERY_RETURNED", PROTO_STATUS_RETURNED},
	    {"dasher_picked_up", PROTO_STATUS_PICKED_UP},
	};
	char body[256];
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		snprintf(body, sizeof(body),
			 "{\"event_name\":\"%s\",\"external_delivery_id\":\"D-1\","
			 "\"created_at\":\"2024-05-01T12:00:00.123456Z\"}",
			 map[i].event_name);
		assert_int_equal(parse(body, &u, &n, &err), ADAPTER_OK);
		assert_int_equal(n, 1);
		assert_int_equal(u.status, map[i].status);
		assert_int_equal(u.ts, 1714564800123);
		assert_string_equal(u.order_id, "D-1");
	}
}

/* --- tracking and other events ------------------------------------------------------ */

static void enroute_events_give_the_position_only(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse_fixture("dasher_enroute_to_dropoff.json", &u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_string_equal(u.order_id, "D-12345");
	assert_int_equal(u.ts, 1709663265500);
	assert_true(u.has_location);
	assert_true(u.location.lat == 37.7801 && u.location.lng == -122.4139);
	/* Nothing that would keep the gateway from coalescing it. */
	assert_int_equal(u.status, PROTO_STATUS_NONE);
	assert_false(u.has_eta || u.has_courier);
}

static void enroute_events_are_matched_in_any_case(void **state)
{
	static const char *const names[] = {
	    "DASHER_ENROUTE_TO_PICKUP",	 "dasher_enroute_to_pickup",
	    "DASHER_ENROUTE_TO_DROPOFF", "dasher_enroute_to_dropoff",
	    "DASHER_ENROUTE_TO_RETURN",	 "DASHER_CONFIRMED_RETURN_ARRIVAL",
	    "DELIVERY_BATCHED",
	};
	char body[256];
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(body, sizeof(body),
			 "{\"event_name\":\"%s\",\"external_delivery_id\":\"D-1\","
			 "\"dasher_location\":{\"lat\":\"37.78\",\"lng\":\"-122.41\"}}",
			 names[i]);
		assert_int_equal(parse(body, &u, &n, &err), ADAPTER_OK);
		assert_int_equal(n, 1);
		assert_int_equal(u.status, PROTO_STATUS_NONE);
		assert_true(u.location.lat == 37.78 && u.location.lng == -122.41);
		assert_int_equal(u.ts, NOW_MS); /* no created_at: the receive time */
	}
}

static void events_without_anything_to_track_are_ignored(void **state)
{
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse("{" EVENT("DASHER_ENROUTE_TO_PICKUP") "}", NULL, &n, &err),
			 ADAPTER_OK);
	assert_int_equal(n, 0);
	assert_int_equal(
	    parse("{" EVENT("DELIVERY_BATCHED") ",\"force_batch_id\":\"b1\"}", NULL, &n, &err),
	    ADAPTER_OK);
	assert_int_equal(n, 0);
}

static void unknown_events_are_ignored(void **state)
{
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse("{" EVENT("DELIVERY_POST_TIP_RECEIVED") ",\"dasher_location\":"
								       "{\"lat\":1,\"lng\":2}}",
			       NULL, &n, &err),
			 ADAPTER_OK);
	assert_int_equal(n, 0);
	/* Not even the order id is looked at. */
	assert_int_equal(parse("{\"event_name\":\"SOMETHING_NEW\"}", NULL, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 0);
}

static void event_name_is_required_and_a_string(void **state)
{
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse("{\"external_delivery_id\":\"D-1\"}", NULL, &n, &err),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "event_name");
	assert_int_equal(parse("{\"event_name\":[\"DASHER_PICKED_UP\"]}", NULL, &n, &err),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "event_name");
}

/* --- the order id and the Dasher ------------------------------------------------------- */

static void external_delivery_id_is_required_and_valid(void **state)
{
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse("{\"event_name\":\"DASHER_PICKED_UP\"}", NULL, &n, &err),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "external_delivery_id");
	assert_int_equal(parse("{\"event_name\":\"DASHER_PICKED_UP\",\"external_delivery_id\":"
			       "\"D 1\"}",
			       NULL, &n, &err),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "external_delivery_id");
	assert_int_equal(parse("{\"event_name\":\"DASHER_PICKED_UP\",\"external_delivery_id\":"
			       "\"\"}",
			       NULL, &n, &err),
			 ADAPTER_EINVAL);
	assert_int_equal(parse("{\"event_name\":\"DASHER_PICKED_UP\",\"external_delivery_id\":"
			       "12345}",
			       NULL, &n, &err),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "external_delivery_id");
}

static void dasher_id_may_be_a_string_but_not_a_fraction(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(
	    parse("{" EVENT("DASHER_CONFIRMED") ",\"dasher_id\":\"dx-77\"}", &u, &n, &err),
	    ADAPTER_OK);
	assert_string_equal(u.courier.id, "dx-77");
	assert_int_equal(
	    parse("{" EVENT("DASHER_CONFIRMED") ",\"dasher_id\":9007199254740992}", &u, &n, &err),
	    ADAPTER_OK);
	assert_string_equal(u.courier.id, "9007199254740992");
	static const char *const bad[] = {"1.5", "-1", "1e300", "true", "{}", "9007199254740994"};
	char body[256];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body), "{" EVENT("DASHER_CONFIRMED") ",\"dasher_id\":%s}",
			 bad[i]);
		assert_int_equal(parse(body, NULL, &n, &err), ADAPTER_EINVAL);
		assert_string_equal(err.field, "dasher_id");
	}
}

static void dasher_name_is_cleaned_and_optional(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(
	    parse("{" EVENT("DASHER_CONFIRMED") ",\"dasher_name\":\"Jo\\tD.\"}", &u, &n, &err),
	    ADAPTER_OK);
	assert_string_equal(u.courier.name, "Jo D.");
	assert_int_equal(
	    parse("{" EVENT("DASHER_CONFIRMED") ",\"dasher_name\":null}", &u, &n, &err),
	    ADAPTER_OK);
	assert_false(u.has_courier);
	assert_int_equal(parse("{" EVENT("DASHER_CONFIRMED") ",\"dasher_name\":5}", NULL, &n, &err),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "dasher_name");
}

/* --- positions and times --------------------------------------------------------------- */

static void bad_positions_are_refused_naming_the_field(void **state)
{
	static const struct {
		const char *loc;
		const char *field;
	} bad[] = {
	    {"{\"lat\":false,\"lng\":1}", "dasher_location.lat"},
	    {"{\"lat\":1,\"lng\":\"east\"}", "dasher_location.lng"},
	    {"{\"lat\":-90.5,\"lng\":1}", "dasher_location.lat"},
	    {"{\"lat\":1,\"lng\":181}", "dasher_location.lng"},
	    {"{\"lat\":1e999,\"lng\":1}", "dasher_location.lat"},
	    {"{\"lat\":\"inf\",\"lng\":1}", "dasher_location.lat"},
	    {"{\"lng\":1}", "dasher_location.lat"},
	    {"\"37.78,-122.41\"", "dasher_location"},
	};
	char body[256];
	proto_error_t err;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body),
			 "{" EVENT("DASHER_PICKED_UP") ",\"dasher_location\":%s}", bad[i].loc);
		assert_int_equal(parse(body, NULL, &n, &err), ADAPTER_EINVAL);
		if (strcmp(err.field, bad[i].field) != 0)
			fail_msg("%s: field %s, want %s", bad[i].loc, err.field, bad[i].field);
	}
}

static void every_time_format_is_read(void **state)
{
	static const struct {
		const char *created_at;
		int64_t ms;
	} times[] = {
	    {"\"2024-05-01T12:00:00.123456Z\"", 1714564800123},
	    {"\"2024-05-01T12:00:00.123Z\"", 1714564800123},
	    {"\"2024-05-01T12:00:00Z\"", 1714564800000},
	    {"\"2024-05-01T05:00:00.999999-07:00\"", 1714564800999},
	    {"\"2024-05-01t12:00:00+00:00\"", 1714564800000},
	    {"1714564800", 1714564800000},
	    {"\"1714564800123\"", 1714564800123},
	};
	char body[256];
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		snprintf(body, sizeof(body),
			 "{\"event_name\":\"DASHER_PICKED_UP\",\"external_delivery_id\":\"D-1\","
			 "\"created_at\":%s,\"dropoff_time_estimated\":%s}",
			 times[i].created_at, times[i].created_at);
		assert_int_equal(parse(body, &u, &n, &err), ADAPTER_OK);
		assert_int_equal(u.ts, times[i].ms);
		assert_int_equal(u.eta.dropoff, times[i].ms);
	}
}

static void bad_times_are_refused_naming_the_field(void **state)
{
	static const char *const bad[] = {
	    "\"2024-02-30T12:00:00Z\"",
	    "\"2024-05-01T24:00:00Z\"",
	    "\"2024-05-01T12:00\"",
	    "\"\"",
	    "0",
	    "1e20",
	    "[]",
	};
	char body[256];
	proto_error_t err;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body),
			 "{\"event_name\":\"DASHER_PICKED_UP\",\"external_delivery_id\":\"D-1\","
			 "\"created_at\":%s}",
			 bad[i]);
		assert_int_equal(parse(body, NULL, &n, &err), ADAPTER_EINVAL);
		assert_string_equal(err.field, "created_at");
		snprintf(body, sizeof(body),
			 "{" EVENT("DASHER_PICKED_UP") ",\"pickup_time_estimated\":%s}", bad[i]);
		assert_int_equal(parse(body, NULL, &n, &err), ADAPTER_EINVAL);
		assert_string_equal(err.field, "pickup_time_estimated");
	}
}

static void without_created_at_or_receive_time_the_event_is_refused(void **state)
{
	const char *body = "{\"event_name\":\"DASHER_PICKED_UP\",\"external_delivery_id\":\"D-1\"}";
	atl_headers_t h = {{NULL}, {NULL}};
	adapter_request_t req = request(body, strlen(body), &h);
	proto_update_t out[1];
	proto_error_t err;
	int n;

	(void)state;
	req.now_ms = -5;
	assert_int_equal(adapter_doordash_drive.parse(&req, out, 1, &n, &err), ADAPTER_EINVAL);
	assert_string_equal(err.field, "created_at");
	assert_int_equal(n, 0);
}

/* A webhook sent after the delivery changed carries both times: the event's is the newer. */
static void ts_is_updated_at_when_it_is_newer_than_created_at(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse_fixture("dasher_picked_up_updated.json", &u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_int_equal(u.status, PROTO_STATUS_PICKED_UP);
	assert_int_equal(u.ts, 1709662907654); /* updated_at, not created_at (1709661731123) */
}

static void ts_is_created_at_when_it_is_the_newer(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse("{" EVENT("DASHER_PICKED_UP") ",\"updated_at\":"
							     "\"2024-05-01T11:59:59Z\"}",
			       &u, &n, &err),
			 ADAPTER_OK);
	assert_int_equal(u.ts, 1714564800123);
	assert_int_equal(parse("{" EVENT("DASHER_PICKED_UP") ",\"updated_at\":"
							     "\"2024-05-01T12:00:00.123Z\"}",
			       &u, &n, &err),
			 ADAPTER_OK);
	assert_int_equal(u.ts, 1714564800123);
}

static void ts_is_updated_at_alone_or_null_created_at(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(
	    parse("{\"event_name\":\"DASHER_PICKED_UP\",\"external_delivery_id\":\"D-1\","
		  "\"updated_at\":\"2024-05-01T12:00:05Z\"}",
		  &u, &n, &err),
	    ADAPTER_OK);
	assert_int_equal(u.ts, 1714564805000);
	assert_int_equal(
	    parse("{\"event_name\":\"DASHER_PICKED_UP\",\"external_delivery_id\":\"D-1\","
		  "\"created_at\":null,\"updated_at\":\"2024-05-01T12:00:05Z\"}",
		  &u, &n, &err),
	    ADAPTER_OK);
	assert_int_equal(u.ts, 1714564805000);
}

static void a_bad_updated_at_is_refused_naming_it(void **state)
{
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(
	    parse("{" EVENT("DASHER_PICKED_UP") ",\"updated_at\":\"2024-02-30T12:00:00Z\"}", NULL,
		  &n, &err),
	    ADAPTER_EINVAL);
	assert_string_equal(err.field, "updated_at");
	assert_int_equal(parse("{" EVENT("DASHER_PICKED_UP") ",\"updated_at\":[]}", NULL, &n, &err),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "updated_at");
}

/* --- event ids ------------------------------------------------------------------------ */

static void a_repeated_webhook_gives_the_same_event_id(void **state)
{
	proto_update_t a, b, c;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse_fixture("dasher_dropped_off.json", &a, &n, &err), ADAPTER_OK);
	assert_int_equal(parse_fixture("dasher_dropped_off.json", &b, &n, &err), ADAPTER_OK);
	assert_string_equal(a.event_id, b.event_id);
	/* Another body is another event. */
	assert_int_equal(parse("{" EVENT("DASHER_DROPPED_OFF") "}", &c, &n, &err), ADAPTER_OK);
	assert_string_not_equal(a.event_id, c.event_id);
}

static void the_event_id_is_the_body_hash(void **state)
{
	const char *body = "{" EVENT("DASHER_PICKED_UP") "}";
	char want[PROTO_EVENT_ID_MAX + 1];
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse(body, &u, &n, &err), ADAPTER_OK);
	adapter_body_event_id(body, strlen(body), want);
	assert_string_equal(u.event_id, want);
}

/* --- hostile input --------------------------------------------------------------------- */

static void malformed_bodies_are_refused(void **state)
{
	static const char *const bad[] = {
	    "",
	    "   ",
	    "{\"event_name\":\"DASHER_PICKED_UP\",",
	    "{\"event_name\":\"DASHER_PICKED_UP\"} x",
	    "\"DASHER_PICKED_UP\"",
	    "{\"event_name\":\"DASHER_PICKED_UP\",\"event_name\":\"DELIVERY_CANCELLED\","
	    "\"external_delivery_id\":\"D-1\"}",
	    "{\"event_name\":\"DASHER_PICKED_UP\",\"external_delivery_id\":\"D-\xc0\xaf\"}",
	    "{\"event_name\":\"DASHER_PICKED_UP\",\"external_delivery_id\":\"D\\u0000\"}",
	    "{\"event_name\":\"DASHER_PICKED_UP\",\"external_delivery_id\":\"D-1\",\"x\":"
	    "1e999999999999999999}",
	};
	proto_error_t err;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse(bad[i], NULL, &n, &err);
		/* The huge ignored number is inf to cJSON; being ignored, it is no error. */
		if (strstr(bad[i], "1e999999") != NULL)
			assert_int_equal(rc, ADAPTER_OK);
		else if (rc != ADAPTER_EINVAL)
			fail_msg("accepted %s", bad[i]);
	}
	assert_int_equal(parse_len("{\"event_name\":\"\0\"}", 18, NULL, &n, &err), ADAPTER_EINVAL);
}

static void every_truncation_of_a_fixture_is_refused(void **state)
{
	size_t len;
	char *body = load("dasher_confirmed.json", &len);
	proto_error_t err;
	int n;

	(void)state;
	while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == ' '))
		len--;
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(parse_len(body, cut, NULL, &n, &err), ADAPTER_EINVAL);
	free(body);
}

static void flipped_bytes_never_crash(void **state)
{
	size_t len;
	char *body = load("dasher_dropped_off.json", &len);
	static const char flips[] = {'"', '{', '}', '[', ':', ',', '\\', '\x80', '9', '-'};
	proto_error_t err;
	int n;

	(void)state;
	for (size_t i = 0; i < len; i++) {
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
	const char *head = "{" EVENT("DASHER_PICKED_UP") ",\"dasher_location\":{\"lat\":52.52,"
							 "\"lng\":13.405},\"items\":[";
	const char *tail = "0]}";
	size_t len = strlen(head) + pad + strlen(tail);
	char *body = malloc(len);
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_non_null(body);
	memcpy(body, head, strlen(head));
	for (size_t i = 0; i < pad; i += 2)
		memcpy(body + strlen(head) + i, "1,", 2);
	memcpy(body + strlen(head) + pad, tail, strlen(tail));
	assert_int_equal(parse_len(body, len, &u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_int_equal(u.status, PROTO_STATUS_PICKED_UP);
	free(body);
}

static void no_room_is_an_error(void **state)
{
	const char *body = "{" EVENT("DASHER_PICKED_UP") "}";
	atl_headers_t h = {{NULL}, {NULL}};
	adapter_request_t req = request(body, strlen(body), &h);
	proto_update_t out[1];
	proto_error_t err;
	int n = 3;

	(void)state;
	assert_int_equal(adapter_doordash_drive.parse(&req, out, 0, &n, &err), ADAPTER_EINVAL);
	assert_int_equal(n, 0);
	assert_int_equal(adapter_doordash_drive.parse(&req, out, 1, &n, NULL), ADAPTER_OK);
	assert_int_equal(n, 1);
}

static void the_registry_finds_the_adapter(void **state)
{
	(void)state;
	assert_ptr_equal(adapter_find("doordash_drive"), &adapter_doordash_drive);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(verify_accepts_the_configured_basic_credential),
	    cmocka_unit_test(verify_accepts_the_configured_bearer_token),
	    cmocka_unit_test(verify_refuses_a_wrong_credential),
	    cmocka_unit_test(verify_refuses_a_missing_header),
	    cmocka_unit_test(verify_refuses_without_a_configured_credential),
	    cmocka_unit_test(dropped_off_example_gives_delivered_with_dasher_and_position),
	    cmocka_unit_test(confirmed_gives_en_route_to_pickup_with_etas),
	    cmocka_unit_test(cancelled_without_a_dasher_gives_the_status_alone),
	    cmocka_unit_test(every_lifecycle_event_maps),
	    cmocka_unit_test(enroute_events_give_the_position_only),
	    cmocka_unit_test(enroute_events_are_matched_in_any_case),
	    cmocka_unit_test(events_without_anything_to_track_are_ignored),
	    cmocka_unit_test(unknown_events_are_ignored),
	    cmocka_unit_test(event_name_is_required_and_a_string),
	    cmocka_unit_test(external_delivery_id_is_required_and_valid),
	    cmocka_unit_test(dasher_id_may_be_a_string_but_not_a_fraction),
	    cmocka_unit_test(dasher_name_is_cleaned_and_optional),
	    cmocka_unit_test(bad_positions_are_refused_naming_the_field),
	    cmocka_unit_test(every_time_format_is_read),
	    cmocka_unit_test(bad_times_are_refused_naming_the_field),
	    cmocka_unit_test(without_created_at_or_receive_time_the_event_is_refused),
	    cmocka_unit_test(ts_is_updated_at_when_it_is_newer_than_created_at),
	    cmocka_unit_test(ts_is_created_at_when_it_is_the_newer),
	    cmocka_unit_test(ts_is_updated_at_alone_or_null_created_at),
	    cmocka_unit_test(a_bad_updated_at_is_refused_naming_it),
	    cmocka_unit_test(a_repeated_webhook_gives_the_same_event_id),
	    cmocka_unit_test(the_event_id_is_the_body_hash),
	    cmocka_unit_test(malformed_bodies_are_refused),
	    cmocka_unit_test(every_truncation_of_a_fixture_is_refused),
	    cmocka_unit_test(flipped_bytes_never_crash),
	    cmocka_unit_test(a_60_kib_body_with_a_big_ignored_field_parses),
	    cmocka_unit_test(no_room_is_an_error),
	    cmocka_unit_test(the_registry_finds_the_adapter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
