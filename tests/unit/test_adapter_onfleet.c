/*
 * test_adapter_onfleet.c - adapters/onfleet.c: the X-Onfleet-Signature
 * check (hex HMAC-SHA512 keyed with the hex-decoded secret) and the mapping
 * of Onfleet triggers to canonical updates.
 *
 * The fixtures in fixtures/onfleet/ are trigger payloads shaped like
 * Onfleet's documented examples (docs.onfleet.com, "Webhook Payload
 * Examples"); each test signs the exact bytes it sends.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "adapter_testlib.h"

/* The webhook secret as the Onfleet dashboard shows it: hex. */
#define SECRET_HEX "7c3e1a9f0b8d2c4e6a5f3b1d9e7c0a2b4d6f8e1c3a5b7d9f0e2c4a6b8d1f3e5a"
#define NOW_MS 1612995000000LL
#define TIME_MS 1612990000000LL /* "time" of every fixture */

/* What every update must keep through proto, besides order_id, event_id, ts and status. */
static const atl_expect_t EXPECT = {"onfleet", 1, ATL_CHECK_EVENT_ID | ATL_CHECK_PRESENCE};

/* cmocka 1.1 has no assert_double_equal. */
#define assert_near(a, b) assert_true(fabs((double)(a) - (double)(b)) < 1e-9)

/* --- helpers -------------------------------------------------------------------- */

static char *load_fixture(const char *name, size_t *len)
{
	return atl_load_fixture("onfleet", name, len);
}

/* Lower-case hex HMAC-SHA512 of body under the hex-decoded secret_hex, into out[129]. */
static void sign(const char *secret_hex, const char *body, size_t len, char out[129])
{
	unsigned char key[256];
	size_t key_len = strlen(secret_hex) / 2;

	assert_true(key_len <= sizeof(key));
	for (size_t i = 0; i < key_len; i++) {
		unsigned int byte;
		assert_int_equal(sscanf(secret_hex + 2 * i, "%2x", &byte), 1);
		key[i] = (unsigned char)byte;
	}
	atl_hmac_hex(ADAPTER_HMAC_SHA512, key, key_len, body, len, out);
}

/* verify with the given signature header, then parse; every update is checked against proto. */
static int run_signed_with(const char *body, size_t len, const char *secret, const char *signature,
			   proto_update_t *u, int *n, proto_error_t *err)
{
	atl_headers_t h = {{"x-onfleet-signature"}, {signature}}; /* NULL: absent */
	adapter_request_t req =
	    atl_request(body, len, &h, secret, secret != NULL ? strlen(secret) : 0, NOW_MS);

	return atl_verify_then_parse(&adapter_onfleet, &req, u, n, err, &EXPECT);
}

/* Signs body correctly and runs it. */
static int run_body(const char *body, size_t len, proto_update_t *u, int *n, proto_error_t *err)
{
	char signature[129];

	sign(SECRET_HEX, body, len, signature);
	return run_signed_with(body, len, SECRET_HEX, signature, u, n, err);
}

static int run_json(const char *json, proto_update_t *u, int *n, proto_error_t *err)
{
	return run_body(json, strlen(json), u, n, err);
}

static int run_fixture(const char *name, proto_update_t *u, int *n, proto_error_t *err)
{
	size_t len;
	char *body = load_fixture(name, &len);
	int rc = run_body(body, len, u, n, err);

	free(body);
	return rc;
}

/* A minimal task payload: trigger name, then extra members (with a trailing comma or empty). */
#define PAYLOAD(trigger, extra, task)                                                              \
	"{\"triggerName\":\"" trigger "\",\"time\":1612990000000," extra                           \
	"\"taskId\":\"11z1BFspwhBYDvIH_FrJfWMm\",\"data\":{\"task\":{\"shortId\":"                 \
	"\"8f983639\"" task "}}}"

/* --- every trigger ----------------------------------------------------------------- */

static void each_trigger_maps_to_its_canonical_status(void **state)
{
	static const struct {
		const char *fixture;
		proto_status_t status;
	} cases[] = {
	    {"task_created.json", PROTO_STATUS_CREATED},
	    {"task_assigned.json", PROTO_STATUS_COURIER_ASSIGNED},
	    {"task_unassigned.json", PROTO_STATUS_CREATED},
	    {"task_started.json", PROTO_STATUS_EN_ROUTE_TO_DROPOFF},
	    {"task_eta.json", PROTO_STATUS_NONE},
	    {"task_arrival.json", PROTO_STATUS_AT_DROPOFF},
	    {"task_completed.json", PROTO_STATUS_DELIVERED},
	    {"task_failed.json", PROTO_STATUS_FAILED},
	    {"task_deleted.json", PROTO_STATUS_CANCELLED},
	    {"task_updated_with_worker.json", PROTO_STATUS_NONE},
	    {"task_started_pickup.json", PROTO_STATUS_EN_ROUTE_TO_PICKUP},
	    {"task_eta_pickup.json", PROTO_STATUS_NONE},
	    {"task_arrival_pickup.json", PROTO_STATUS_AT_PICKUP},
	    {"task_completed_pickup.json", PROTO_STATUS_PICKED_UP},
	};
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = run_fixture(cases[i].fixture, u, &n, &err);
		if (rc != ADAPTER_OK || n != 1)
			fail_msg("%s: rc %d n %d (%s %s)", cases[i].fixture, rc, n, err.field,
				 err.message);
		if (u[0].status != cases[i].status)
			fail_msg("%s: status %d, want %d", cases[i].fixture, u[0].status,
				 cases[i].status);
		assert_string_equal(u[0].order_id, "ord-2002"); /* metadata order_id */
		assert_string_equal(u[0].provider, "onfleet");
		assert_int_equal(u[0].ts, TIME_MS);
	}
}

/* data.task.destination.location is the pickup of a pickup task, else the dropoff. */
static void the_task_destination_is_its_place(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(run_fixture("task_started.json", u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_true(u[0].has_places && u[0].places.has_dropoff && !u[0].places.has_pickup);
	assert_true(u[0].places.dropoff.lat == 33.8078456 &&
		    u[0].places.dropoff.lng == -117.8764687);
	assert_int_equal(run_fixture("task_arrival_pickup.json", u, &n, &err), ADAPTER_OK);
	assert_true(u[0].has_places && u[0].places.has_pickup && !u[0].places.has_dropoff);
	assert_true(u[0].places.pickup.lat == 33.8078456 && u[0].places.pickup.lng == -117.8764687);
	/* ETA triggers carry no place. */
	assert_int_equal(run_fixture("task_eta.json", u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_false(u[0].has_places);
	/* A bad destination is left out; the status still goes through. */
	static const char *const bad[] = {
	    PAYLOAD("taskStarted", "", ",\"destination\":{\"location\":[200,33.8]}"),
	    PAYLOAD("taskStarted", "", ",\"destination\":{\"location\":\"here\"}"),
	    PAYLOAD("taskStarted", "", ",\"destination\":{\"location\":[0,0]}"),
	    PAYLOAD("taskStarted", "", ",\"destination\":{\"location\":[]}"),
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(run_json(bad[i], u, &n, &err), ADAPTER_OK);
		assert_int_equal(n, 1);
		assert_int_equal(u[0].status, PROTO_STATUS_EN_ROUTE_TO_DROPOFF);
		assert_false(u[0].has_places);
	}
}

static void worker_location_is_read_as_lng_then_lat(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(run_fixture("task_started.json", u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_true(u[0].has_location);
	/* data.worker.location is [-117.8812, 33.8001]; the destination's is not used. */
	assert_near(u[0].location.lat, 33.8001);
	assert_near(u[0].location.lng, -117.8812);
	assert_true(u[0].has_courier);
	assert_string_equal(u[0].courier.id, "1Ds6ulPYWxNPgaIaoLPqlIQE");
	assert_string_equal(u[0].courier.name, "A Swartz");
	assert_string_equal(u[0].courier.vehicle, "CAR");
	assert_false(u[0].has_eta);
}

static void a_finished_task_uses_its_last_location(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(run_fixture("task_completed.json", u, &n, &err), ADAPTER_OK);
	assert_true(u[0].has_location);
	assert_near(u[0].location.lat, 33.80789);
	assert_near(u[0].location.lng, -117.87651);
	/* Without data.worker the courier id comes from data.task.worker. */
	assert_string_equal(u[0].courier.id, "1Ds6ulPYWxNPgaIaoLPqlIQE");
	assert_string_equal(u[0].courier.name, "");

	/* An unassigned task names no courier: the payload's worker is the one who left. */
	assert_int_equal(run_fixture("task_unassigned.json", u, &n, &err), ADAPTER_OK);
	assert_false(u[0].has_courier);

	/* Empty location arrays (before there is one) are no location. */
	assert_int_equal(run_fixture("task_failed.json", u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_false(u[0].has_location);
}

static void string_coordinates_are_read_as_numbers(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(run_json(PAYLOAD("taskStarted", "",
					  "},\"worker\":{\"location\":[\"-0.1276\",\"51.5072\"]"),
				  u, &n, &err),
			 ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_near(u[0].location.lat, 51.5072);
	assert_near(u[0].location.lng, -0.1276);
}

static void task_eta_sets_the_eta_from_time_and_eta_seconds(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(run_fixture("task_eta.json", u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_true(u[0].has_eta && u[0].eta.has_dropoff);
	assert_false(u[0].eta.has_pickup);
	assert_int_equal(u[0].eta.dropoff, TIME_MS + 300000);

	assert_int_equal(run_fixture("task_eta_pickup.json", u, &n, &err), ADAPTER_OK);
	assert_true(u[0].eta.has_pickup);
	assert_false(u[0].eta.has_dropoff);
	assert_int_equal(u[0].eta.pickup, TIME_MS + 90500);

	/* A numeric string works too. */
	assert_int_equal(run_json(PAYLOAD("taskEta", "\"etaSeconds\":\"60\",", ""), u, &n, &err),
			 ADAPTER_OK);
	assert_int_equal(u[0].eta.dropoff, TIME_MS + 60000);
}

static void a_bad_eta_seconds_is_an_error_naming_it(void **state)
{
	static const char *const payloads[] = {
	    PAYLOAD("taskEta", "", ""),
	    PAYLOAD("taskEta", "\"etaSeconds\":null,", ""),
	    PAYLOAD("taskEta", "\"etaSeconds\":-1,", ""),
	    PAYLOAD("taskEta", "\"etaSeconds\":\"soon\",", ""),
	    PAYLOAD("taskEta", "\"etaSeconds\":[300],", ""),
	    PAYLOAD("taskEta", "\"etaSeconds\":1e300,", ""),
	    PAYLOAD("taskEta", "\"etaSeconds\":99999999999999,", ""),
	};
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		if (run_json(payloads[i], u, &n, &err) != ADAPTER_EINVAL)
			fail_msg("%s was accepted", payloads[i]);
		assert_string_equal(err.field, "etaSeconds");
	}
}

/* --- missing fields, nothing to track, unknown triggers ------------------------------ */

static void missing_optional_fields_give_a_status_only_update(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(run_fixture("task_started_minimal.json", u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_int_equal(u[0].status, PROTO_STATUS_EN_ROUTE_TO_DROPOFF);
	assert_string_equal(u[0].order_id, "8f983639"); /* shortId */
	assert_false(u[0].has_location);
	assert_false(u[0].has_eta);
	assert_false(u[0].has_courier);
}

static void the_trigger_id_alone_is_enough(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(run_json("{\"triggerId\":3,\"time\":1612990000000,"
				  "\"data\":{\"task\":{\"shortId\":\"8f983639\"}}}",
				  u, &n, &err),
			 ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_int_equal(u[0].status, PROTO_STATUS_DELIVERED);
	/* Neither name nor id: an error. */
	assert_int_equal(run_json("{\"time\":1612990000000,\"data\":{}}", u, &n, &err),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "triggerName");
}

static void triggers_with_nothing_to_track_give_no_update(void **state)
{
	static const char *const fixtures[] = {
	    "worker_duty.json",
	    "route_plan_created.json",
	    "task_updated.json",
	    "task_delayed.json",
	};
	static const char *const payloads[] = {
	    PAYLOAD("taskCloned", "", ""),
	    PAYLOAD("smsRecipientResponseMissed", "", ""),
	    PAYLOAD("taskSomethingNew", "", ""),
	    "{\"triggerId\":99,\"time\":1612990000000}",
	    "{\"triggerId\":1e300,\"time\":1612990000000}",
	    /* An ignored trigger is not looked at further, even when oddly shaped. */
	    "{\"triggerName\":\"workerDuty\",\"time\":\"never\",\"data\":7}",
	};
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		if (run_fixture(fixtures[i], u, &n, &err) != ADAPTER_OK || n != 0)
			fail_msg("%s: n %d (%s %s)", fixtures[i], n, err.field, err.message);
	}
	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		if (run_json(payloads[i], u, &n, &err) != ADAPTER_OK || n != 0)
			fail_msg("%s: n %d (%s %s)", payloads[i], n, err.field, err.message);
	}
}

static void task_updated_with_a_worker_gives_its_position(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(run_fixture("task_updated_with_worker.json", u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_int_equal(u[0].status, PROTO_STATUS_NONE);
	assert_true(u[0].has_location);
	assert_near(u[0].location.lat, 33.8001);
	/* Location-only, so the gateway may coalesce it. */
	assert_false(u[0].has_courier);
	assert_false(u[0].has_eta);
}

/* --- the order key ---------------------------------------------------------------- */

static void the_order_key_follows_the_documented_rule(void **state)
{
	static const struct {
		const char *payload;
		const char *order_id;
	} cases[] = {
	    {PAYLOAD("taskStarted", "",
		     ",\"metadata\":[{\"name\":\"note\",\"type\":\"string\",\"value\":\"x\"},"
		     "{\"name\":\"order_id\",\"type\":\"string\",\"value\":\"A-77\"}]"),
	     "A-77"},
	    {PAYLOAD("taskStarted", "",
		     ",\"metadata\":[{\"name\":\"order_id\",\"type\":\"number\",\"value\":1042}]"),
	     "1042"},
	    {PAYLOAD("taskStarted", "", ",\"metadata\":[]"), "8f983639"},
	    {"{\"triggerName\":\"taskStarted\",\"time\":1612990000000,"
	     "\"taskId\":\"11z1BFspwhBYDvIH_FrJfWMm\",\"data\":{\"task\":{}}}",
	     "11z1BFspwhBYDvIH_FrJfWMm"},
	    {"{\"triggerName\":\"taskStarted\",\"time\":1612990000000,"
	     "\"data\":{\"task\":{\"id\":\"Zx9~q\",\"shortId\":\"\"}}}",
	     "Zx9~q"},
	};
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (run_json(cases[i].payload, u, &n, &err) != ADAPTER_OK || n != 1)
			fail_msg("%s: %s %s", cases[i].payload, err.field, err.message);
		assert_string_equal(u[0].order_id, cases[i].order_id);
	}
}

static void an_unusable_order_key_is_an_error_naming_its_field(void **state)
{
	static const struct {
		const char *payload;
		const char *field;
	} cases[] = {
	    /* Onfleet ids may hold '*', which order ids may not. */
	    {"{\"triggerName\":\"taskStarted\",\"time\":1612990000000,"
	     "\"taskId\":\"vjw*RDMKDljKVDve1Vtcplgu\"}",
	     "taskId"},
	    {"{\"triggerName\":\"taskStarted\",\"time\":1612990000000}", "data.task.shortId"},
	    {PAYLOAD(
		 "taskStarted", "",
		 ",\"metadata\":[{\"name\":\"order_id\",\"type\":\"string\",\"value\":\"a b\"}]"),
	     "data.task.metadata[order_id].value"},
	    {PAYLOAD("taskStarted", "",
		     ",\"metadata\":[{\"name\":\"order_id\",\"type\":\"boolean\",\"value\":true}]"),
	     "data.task.metadata[order_id].value"},
	    {PAYLOAD("taskStarted", "",
		     ",\"metadata\":[{\"name\":\"order_id\",\"type\":\"number\",\"value\":1e30}]"),
	     "data.task.metadata[order_id].value"},
	    {PAYLOAD("taskStarted", "", ",\"metadata\":{\"order_id\":\"x\"}"),
	     "data.task.metadata"},
	};
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = run_json(cases[i].payload, u, &n, &err);
		if (rc != ADAPTER_EINVAL || strcmp(err.field, cases[i].field) != 0)
			fail_msg("%s: rc %d field %s, want %s", cases[i].payload, rc, err.field,
				 cases[i].field);
	}
}

/* --- times ------------------------------------------------------------------------ */

static void every_time_format_becomes_epoch_ms(void **state)
{
	static const struct {
		const char *value;
		int64_t ms;
	} cases[] = {
	    {"1612990000000", TIME_MS},
	    {"1612990000", TIME_MS},
	    {"1612990000.5", TIME_MS + 500},
	    {"\"1612990000000\"", TIME_MS},
	    {"\"2021-02-10T20:46:40Z\"", TIME_MS},
	    {"\"2021-02-10T12:46:40.250-08:00\"", TIME_MS + 250},
	};
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	char json[256];
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(json, sizeof(json),
			 "{\"triggerName\":\"taskArrival\",\"time\":%s,"
			 "\"data\":{\"task\":{\"shortId\":\"8f983639\"}}}",
			 cases[i].value);
		if (run_json(json, u, &n, &err) != ADAPTER_OK || n != 1)
			fail_msg("%s: %s %s", cases[i].value, err.field, err.message);
		assert_int_equal(u[0].ts, cases[i].ms);
	}
	/* No time: the receive time. */
	assert_int_equal(run_json("{\"triggerName\":\"taskArrival\","
				  "\"data\":{\"task\":{\"shortId\":\"8f983639\"}}}",
				  u, &n, &err),
			 ADAPTER_OK);
	assert_int_equal(u[0].ts, NOW_MS);
}

static void a_bad_time_is_an_error_naming_it(void **state)
{
	static const char *const values[] = {"true", "\"soon\"", "-1", "1e300", "{}", "[]"};
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	char json[256];
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		snprintf(json, sizeof(json),
			 "{\"triggerName\":\"taskArrival\",\"time\":%s,"
			 "\"data\":{\"task\":{\"shortId\":\"8f983639\"}}}",
			 values[i]);
		if (run_json(json, u, &n, &err) != ADAPTER_EINVAL)
			fail_msg("time %s was accepted", values[i]);
		assert_string_equal(err.field, "time");
	}
}

/* --- the signature ---------------------------------------------------------------- */

static void a_correct_signature_verifies_in_any_case(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	size_t len;
	char *body = load_fixture("task_arrival.json", &len);
	char signature[129], upper[129];
	int n;

	(void)state;
	sign(SECRET_HEX, body, len, signature);
	for (size_t i = 0; i <= 128; i++)
		upper[i] = (char)(signature[i] >= 'a' && signature[i] <= 'f' ? signature[i] - 32
									     : signature[i]);
	assert_int_equal(run_signed_with(body, len, SECRET_HEX, upper, u, &n, &err), ADAPTER_OK);
	/* The configured secret in upper case, with the newline a paste brings. */
	assert_int_equal(
	    run_signed_with(body, len,
			    "7C3E1A9F0B8D2C4E6A5F3B1D9E7C0A2B4D6F8E1C3A5B7D9F0E2C4A6B8D1F3E5A\n",
			    signature, u, &n, &err),
	    ADAPTER_OK);
	free(body);
}

static void a_missing_or_wrong_signature_is_refused(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	size_t len;
	char *body = load_fixture("task_arrival.json", &len);
	char signature[129], ascii_keyed[129];
	int n;

	(void)state;
	sign(SECRET_HEX, body, len, signature);
	assert_int_equal(run_signed_with(body, len, SECRET_HEX, NULL, u, &n, &err), ADAPTER_EAUTH);
	assert_string_equal(err.field, "X-Onfleet-Signature");
	assert_int_equal(run_signed_with(body, len, SECRET_HEX, "", u, &n, &err), ADAPTER_EAUTH);
	assert_int_equal(run_signed_with(body, len, SECRET_HEX, "not hex at all", u, &n, &err),
			 ADAPTER_EAUTH);
	/* A signature of another body. */
	assert_int_equal(run_signed_with(body, len - 1, SECRET_HEX, signature, u, &n, &err),
			 ADAPTER_EAUTH);
	/* One digit changed. */
	signature[5] = signature[5] == '0' ? '1' : '0';
	assert_int_equal(run_signed_with(body, len, SECRET_HEX, signature, u, &n, &err),
			 ADAPTER_EAUTH);
	/* Keyed with the hex text itself instead of the bytes it encodes. */
	atl_hmac_hex(ADAPTER_HMAC_SHA512, SECRET_HEX, strlen(SECRET_HEX), body, len, ascii_keyed);
	assert_int_equal(run_signed_with(body, len, SECRET_HEX, ascii_keyed, u, &n, &err),
			 ADAPTER_EAUTH);
	/* A tampered body under the original signature. */
	sign(SECRET_HEX, body, len, signature);
	body[len / 2] = body[len / 2] == '1' ? '2' : '1';
	assert_int_equal(run_signed_with(body, len, SECRET_HEX, signature, u, &n, &err),
			 ADAPTER_EAUTH);
	free(body);
}

static void a_secret_that_is_not_hex_is_refused_clearly(void **state)
{
	static const char *const secrets[] = {
	    "my-onfleet-secret", "abc", "7c3e1a9f0b8d2c4e6a5f3b1d9e7c0a2g", "  ", "",
	};
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	static const char body[] = PAYLOAD("taskStarted", "", "");
	char signature[129];
	int n;

	(void)state;
	sign(SECRET_HEX, body, strlen(body), signature);
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		assert_int_equal(
		    run_signed_with(body, strlen(body), secrets[i], signature, u, &n, &err),
		    ADAPTER_EAUTH);
		assert_string_equal(err.field, "");
		assert_true(strstr(err.message, "secret") != NULL);
	}
	assert_int_equal(run_signed_with(body, strlen(body), secrets[0], signature, u, &n, &err),
			 ADAPTER_EAUTH);
	assert_non_null(strstr(err.message, "hexadecimal"));
	assert_int_equal(run_signed_with(body, strlen(body), NULL, signature, u, &n, &err),
			 ADAPTER_EAUTH);
}

/* --- malformed bodies -------------------------------------------------------------- */

static void wrong_types_are_errors_naming_the_field(void **state)
{
	static const struct {
		const char *payload;
		const char *field;
	} cases[] = {
	    {"{\"triggerName\":3}", "triggerName"},
	    {"{\"triggerId\":\"three\"}", "triggerId"},
	    {"{\"triggerName\":\"taskStarted\",\"data\":[]}", "data"},
	    {"{\"triggerName\":\"taskStarted\",\"data\":{\"task\":\"8f983639\"}}", "data.task"},
	    {"{\"triggerName\":\"taskStarted\",\"data\":{\"worker\":true}}", "data.worker"},
	    {PAYLOAD("taskStarted", "", ",\"pickupTask\":\"yes\""), "data.task.pickupTask"},
	    {PAYLOAD("taskStarted", "", "},\"worker\":{\"location\":{\"lat\":1,\"lng\":2}"),
	     "data.worker.location"},
	    {PAYLOAD("taskStarted", "", "},\"worker\":{\"location\":[1,2,3]"),
	     "data.worker.location"},
	    {PAYLOAD("taskStarted", "", "},\"worker\":{\"location\":[1]"), "data.worker.location"},
	    {PAYLOAD("taskStarted", "", "},\"worker\":{\"location\":[null,2]"),
	     "data.worker.location"},
	    {PAYLOAD("taskStarted", "", "},\"worker\":{\"location\":[\"1 \",2]"),
	     "data.worker.location"},
	    /* [lng, lat]: 95 is a fine longitude but no latitude. */
	    {PAYLOAD("taskStarted", "", "},\"worker\":{\"location\":[10,95]"),
	     "data.worker.location"},
	    {PAYLOAD("taskStarted", "", "},\"worker\":{\"location\":[-181,0]"),
	     "data.worker.location"},
	    {PAYLOAD("taskCompleted", "", ",\"completionDetails\":{\"lastLocation\":\"here\"}"),
	     "data.task.completionDetails.lastLocation"},
	    {PAYLOAD("taskCompleted", "", ",\"completionDetails\":[]"),
	     "data.task.completionDetails"},
	    {PAYLOAD("taskStarted", "", "},\"worker\":{\"name\":42"), "data.worker.name"},
	    {PAYLOAD("taskStarted", "", "},\"worker\":{\"vehicle\":\"CAR\""),
	     "data.worker.vehicle"},
	    {PAYLOAD("taskStarted", "", "},\"worker\":{\"vehicle\":{\"type\":1}"),
	     "data.worker.vehicle.type"},
	    {PAYLOAD("taskStarted", "", ",\"worker\":[\"w1\"]"), "data.task.worker"},
	    {"{\"triggerName\":\"taskStarted\",\"data\":{\"task\":{\"shortId\":8}}}",
	     "data.task.shortId"},
	};
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = run_json(cases[i].payload, u, &n, &err);
		if (rc != ADAPTER_EINVAL || strcmp(err.field, cases[i].field) != 0)
			fail_msg("%s: rc %d field %s (%s), want EINVAL %s", cases[i].payload, rc,
				 err.field, err.message, cases[i].field);
	}
}

static void truncated_or_non_utf8_json_is_an_error(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	size_t len;
	char *body = load_fixture("task_assigned.json", &len);
	char *shortid;
	int n;

	(void)state;
	while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == ' '))
		len--;
	/* Every truncation, correctly signed: malformed, never accepted, never a crash. */
	for (size_t cut = 1; cut < len; cut++) {
		int rc = run_body(body, cut, u, &n, &err);
		if (rc != ADAPTER_EINVAL)
			fail_msg("cut at %zu: rc %d", cut, rc);
	}
	/* Non-UTF-8 bytes in a string. */
	shortid = strstr(body, "8f983639");
	assert_non_null(shortid);
	shortid[0] = '\xc3';
	shortid[1] = '\x28';
	assert_int_equal(run_body(body, len, u, &n, &err), ADAPTER_EINVAL);
	/* A NUL byte. */
	shortid[0] = '\0';
	assert_int_equal(run_body(body, len, u, &n, &err), ADAPTER_EINVAL);
	free(body);
}

static void huge_numbers_are_errors(void **state)
{
	static const struct {
		const char *payload;
		const char *field;
	} cases[] = {
	    {"{\"triggerName\":\"taskStarted\",\"time\":1e300,\"data\":{\"task\":{\"shortId\":"
	     "\"8f983639\"}}}",
	     "time"},
	    {"{\"triggerName\":\"taskStarted\",\"time\":123456789012345678901234567890,"
	     "\"data\":{\"task\":{\"shortId\":\"8f983639\"}}}",
	     "time"},
	    {PAYLOAD("taskStarted", "", "},\"worker\":{\"location\":[1e400,1e400]"),
	     "data.worker.location"},
	    {PAYLOAD("taskStarted", "", "},\"worker\":{\"location\":[\"1e999\",0]"),
	     "data.worker.location"},
	    {PAYLOAD("taskEta", "\"etaSeconds\":1e400,", ""), "etaSeconds"},
	};
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = run_json(cases[i].payload, u, &n, &err);
		if (rc != ADAPTER_EINVAL || strcmp(err.field, cases[i].field) != 0)
			fail_msg("%s: rc %d field %s, want EINVAL %s", cases[i].payload, rc,
				 err.field, cases[i].field);
	}
}

static void a_60_kib_body_is_handled(void **state)
{
	static const char head[] =
	    "{\"triggerName\":\"taskArrival\",\"time\":1612990000000,\"distance\":120,"
	    "\"data\":{\"worker\":{\"location\":[-117.88,33.80]},"
	    "\"task\":{\"shortId\":\"8f983639\",\"notes\":\"";
	size_t pad = 60 * 1024;
	char *body = malloc(sizeof(head) + pad + 8);
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	assert_non_null(body);
	memcpy(body, head, sizeof(head) - 1);
	memset(body + sizeof(head) - 1, 'n', pad);
	strcpy(body + sizeof(head) - 1 + pad, "\"}}}");
	assert_true(strlen(body) > 60 * 1024);
	assert_int_equal(run_json(body, u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_int_equal(u[0].status, PROTO_STATUS_AT_DROPOFF);
	assert_near(u[0].location.lat, 33.80);

	/* 60 KiB of noise, signed: malformed, not a crash. */
	memset(body, '[', strlen(body));
	assert_int_equal(run_json(body, u, &n, &err), ADAPTER_EINVAL);
	free(body);
}

/* --- de-duplication ----------------------------------------------------------------- */

static void a_retried_webhook_has_the_same_event_id(void **state)
{
	proto_update_t first[ADAPTER_UPDATES_MAX], again[ADAPTER_UPDATES_MAX];
	proto_update_t other[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(run_fixture("task_started.json", first, &n, &err), ADAPTER_OK);
	assert_int_equal(run_fixture("task_started.json", again, &n, &err), ADAPTER_OK);
	assert_int_equal(strncmp(first[0].event_id, "sha256:", 7), 0);
	assert_string_equal(first[0].event_id, again[0].event_id);
	assert_int_equal(run_fixture("task_arrival.json", other, &n, &err), ADAPTER_OK);
	assert_string_not_equal(first[0].event_id, other[0].event_id);
}

static void the_adapter_is_registered_as_onfleet(void **state)
{
	(void)state;
	assert_ptr_equal(adapter_find("onfleet"), &adapter_onfleet);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(each_trigger_maps_to_its_canonical_status),
	    cmocka_unit_test(the_task_destination_is_its_place),
	    cmocka_unit_test(worker_location_is_read_as_lng_then_lat),
	    cmocka_unit_test(a_finished_task_uses_its_last_location),
	    cmocka_unit_test(string_coordinates_are_read_as_numbers),
	    cmocka_unit_test(task_eta_sets_the_eta_from_time_and_eta_seconds),
	    cmocka_unit_test(a_bad_eta_seconds_is_an_error_naming_it),
	    cmocka_unit_test(missing_optional_fields_give_a_status_only_update),
	    cmocka_unit_test(the_trigger_id_alone_is_enough),
	    cmocka_unit_test(triggers_with_nothing_to_track_give_no_update),
	    cmocka_unit_test(task_updated_with_a_worker_gives_its_position),
	    cmocka_unit_test(the_order_key_follows_the_documented_rule),
	    cmocka_unit_test(an_unusable_order_key_is_an_error_naming_its_field),
	    cmocka_unit_test(every_time_format_becomes_epoch_ms),
	    cmocka_unit_test(a_bad_time_is_an_error_naming_it),
	    cmocka_unit_test(a_correct_signature_verifies_in_any_case),
	    cmocka_unit_test(a_missing_or_wrong_signature_is_refused),
	    cmocka_unit_test(a_secret_that_is_not_hex_is_refused_clearly),
	    cmocka_unit_test(wrong_types_are_errors_naming_the_field),
	    cmocka_unit_test(truncated_or_non_utf8_json_is_an_error),
	    cmocka_unit_test(huge_numbers_are_errors),
	    cmocka_unit_test(a_60_kib_body_is_handled),
	    cmocka_unit_test(a_retried_webhook_has_the_same_event_id),
	    cmocka_unit_test(the_adapter_is_registered_as_onfleet),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
