/*
 * Tests of adapters/stuart.c on payloads shaped like Stuart's documented
 * webhook examples (tests/unit/fixtures/stuart/).  Every update a test gets
 * back is also put through proto: encoded, decoded and compared.
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

#define FIXTURE(name) TG_FIXTURES "/stuart/" name

/* 2024-05-01T12:00:00.123Z: the receive time the tests hand in. */
#define NOW_MS 1714564800123LL

/* 2024-05-01T14:05:00.000+02:00 and the other times of the fixtures, in ms. */
#define T_1405_CEST 1714565100000LL
#define T_1348_30_CEST 1714564110000LL
#define T_1352_10_CEST 1714564330000LL
#define T_1420_45_CEST 1714566045000LL

static const unsigned char SECRET[] = "s3cr3t-stuart-webhook";

/* --- helpers ------------------------------------------------------------------ */

/* What every update must keep through proto: all of it, and "stuart" as the provider. */
static const atl_expect_t EXPECT = {"stuart", 1, ATL_CHECK_ALL};

static const adapter_ops_t *stuart(void)
{
	const adapter_ops_t *ops = adapter_find("stuart");

	assert_non_null(ops);
	return ops;
}

static void parse_at(const char *body, size_t len, int64_t now_ms, atl_parsed_t *p)
{
	atl_headers_t none = {{NULL}, {NULL}};
	adapter_request_t req = atl_request(body, len, &none, SECRET, sizeof(SECRET) - 1, now_ms);

	atl_parse_into(stuart(), &req, &EXPECT, p);
}

static void parse_len(const char *body, size_t len, atl_parsed_t *p)
{
	parse_at(body, len, NOW_MS, p);
}

static void parse_text(const char *body, atl_parsed_t *p)
{
	parse_at(body, strlen(body), NOW_MS, p);
}

static void parse_fixture(const char *path, atl_parsed_t *p)
{
	size_t len;
	char *body = atl_load_file(path, &len);

	parse_len(body, len, p);
	free(body);
}

/* A delivery/update event whose data object is members (JSON text without braces). */
static char *delivery_event(const char *members)
{
	return atl_format("{\"event\":\"delivery\",\"type\":\"update\",\"data\":{%s}}", members);
}

static int verify_with(const char *authorization, const unsigned char *secret, size_t secret_len,
		       proto_error_t *err)
{
	static const char body[] = "{\"event\":\"job\",\"type\":\"update\",\"data\":{}}";
	atl_headers_t h = {{NULL}, {NULL}};
	adapter_request_t req = atl_request(body, sizeof(body) - 1, &h, secret, secret_len, NOW_MS);

	if (authorization != NULL)
		atl_headers_add(&h, "authorization", authorization);
	memset(err, 0, sizeof(*err));
	return stuart()->verify(&req, err);
}

/* --- verify ------------------------------------------------------------------- */

static void verify_accepts_the_bearer_secret(void **state)
{
	proto_error_t err;

	(void)state;
	assert_int_equal(
	    verify_with("Bearer s3cr3t-stuart-webhook", SECRET, sizeof(SECRET) - 1, &err),
	    ADAPTER_OK);
	assert_int_equal(
	    verify_with("bearer   s3cr3t-stuart-webhook ", SECRET, sizeof(SECRET) - 1, &err),
	    ADAPTER_OK);
}

static void verify_accepts_basic_credentials_when_the_secret_is_user_colon_password(void **state)
{
	static const unsigned char user_pass[] = "stuart:hunter2";
	proto_error_t err;

	(void)state;
	/* base64("stuart:hunter2") */
	assert_int_equal(
	    verify_with("Basic c3R1YXJ0Omh1bnRlcjI=", user_pass, sizeof(user_pass) - 1, &err),
	    ADAPTER_OK);
	assert_int_equal(
	    verify_with("Basic c3R1YXJ0Omh1bnRlcjM=", user_pass, sizeof(user_pass) - 1, &err),
	    ADAPTER_EAUTH);
}

static void verify_refuses_a_missing_authorization_header(void **state)
{
	proto_error_t err;

	(void)state;
	assert_int_equal(verify_with(NULL, SECRET, sizeof(SECRET) - 1, &err), ADAPTER_EAUTH);
	assert_string_equal(err.field, "authorization");
}

static void verify_refuses_a_wrong_secret(void **state)
{
	static const char *const wrong[] = {
	    "Bearer s3cr3t-stuart-webhooK",
	    "Bearer s3cr3t-stuart-webhook2",
	    "Bearer s3cr3t-stuart-webhoo",
	    "Bearer ",
	    "Bearer",
	    "",
	    "s3cr3t-stuart-webhook",
	    "Token s3cr3t-stuart-webhook",
	    "Basic s3cr3t-stuart-webhook",
	    "Bearer s3cr3t stuart-webhook",
	};
	proto_error_t err;

	(void)state;
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		if (verify_with(wrong[i], SECRET, sizeof(SECRET) - 1, &err) != ADAPTER_EAUTH)
			fail_msg("accepted \"%s\"", wrong[i]);
		assert_string_equal(err.field, "authorization");
	}
}

static void verify_refuses_everything_without_a_configured_secret(void **state)
{
	proto_error_t err;

	(void)state;
	assert_int_equal(verify_with("Bearer ", SECRET, 0, &err), ADAPTER_EAUTH);
	assert_int_equal(verify_with("Bearer x", NULL, 0, &err), ADAPTER_EAUTH);
}

static void verify_survives_a_request_without_a_header_function(void **state)
{
	adapter_request_t req = {
	    .body = "{}", .body_len = 2, .secret = SECRET, .secret_len = sizeof(SECRET) - 1};
	proto_error_t err;

	(void)state;
	assert_int_equal(stuart()->verify(&req, &err), ADAPTER_EAUTH);
}

/* --- the documented events ------------------------------------------------------ */

static void job_create_without_a_current_delivery_is_ignored(void **state)
{
	atl_parsed_t p;

	(void)state;
	parse_fixture(FIXTURE("job_create.json"), &p);
	atl_assert_ignored(&p);
}

static void job_update_gives_the_delivery_status_driver_and_etas(void **state)
{
	atl_parsed_t p;
	const proto_update_t *u = &p.u[0];

	(void)state;
	parse_fixture(FIXTURE("job_update.json"), &p);
	atl_assert_one_update(&p);
	assert_string_equal(u->order_id, "ord-20240501-0042");
	assert_string_equal(u->provider, "stuart");
	assert_int_equal(u->ts, NOW_MS);
	assert_int_equal(strncmp(u->event_id, "sha256:", 7), 0);
	assert_int_equal(u->status, PROTO_STATUS_EN_ROUTE_TO_DROPOFF);
	assert_true(u->has_location);
	assert_true(u->location.lat == 48.85349);
	assert_true(u->location.lng == 2.37467);
	assert_true(u->has_eta);
	assert_int_equal(u->eta.pickup, T_1348_30_CEST);
	assert_int_equal(u->eta.dropoff, T_1405_CEST);
	assert_true(u->has_courier);
	assert_string_equal(u->courier.id, "");
	assert_string_equal(u->courier.name, "Camille Martin");
	assert_string_equal(u->courier.vehicle, "motorbike");
}

static void delivery_create_without_a_client_reference_is_ignored(void **state)
{
	atl_parsed_t p;

	(void)state;
	parse_fixture(FIXTURE("delivery_create.json"), &p);
	atl_assert_ignored(&p);
}

static void delivery_update_gives_the_status_position_and_etas(void **state)
{
	atl_parsed_t p;
	const proto_update_t *u = &p.u[0];

	(void)state;
	parse_fixture(FIXTURE("delivery_update.json"), &p);
	atl_assert_one_update(&p);
	assert_string_equal(u->order_id, "ord-20240501-0042");
	assert_int_equal(u->ts, NOW_MS);
	assert_int_equal(u->status, PROTO_STATUS_EN_ROUTE_TO_PICKUP);
	assert_true(u->location.lat == 48.83868);
	assert_true(u->location.lng == 2.3998);
	assert_int_equal(u->eta.pickup, T_1352_10_CEST);
	assert_int_equal(u->eta.dropoff, T_1420_45_CEST);
	assert_string_equal(u->courier.name, "Camille Martin");
	assert_string_equal(u->courier.vehicle, "bike");
}

static void driver_update_gives_the_position_alone_at_receive_time(void **state)
{
	atl_parsed_t p;
	const proto_update_t *u = &p.u[0];

	(void)state;
	parse_fixture(FIXTURE("driver_update.json"), &p);
	atl_assert_one_update(&p);
	assert_string_equal(u->order_id, "ord-20240501-0042");
	assert_int_equal(u->ts, NOW_MS);
	assert_int_equal(u->status, PROTO_STATUS_NONE);
	assert_true(u->has_location);
	assert_true(u->location.lat == 48.85559);
	assert_true(u->location.lng == 2.36014);
	/* Location only, so that it coalesces: the ETAs and courier come with job updates. */
	assert_false(u->has_eta);
	assert_false(u->has_courier);
}

static void driver_update_without_a_position_is_ignored(void **state)
{
	atl_parsed_t p;

	(void)state;
	parse_text("{\"event\":\"driver\",\"type\":\"update\",\"data\":{\"name\":\"Camille\","
		   "\"latitude\":null,\"longitude\":null,\"job\":{\"currentDelivery\":{"
		   "\"status\":\"delivering\",\"clientReference\":\"ord-1\","
		   "\"etaToDestination\":\"2024-05-01T14:05:00.000+02:00\"}}}}",
		   &p);
	atl_assert_ignored(&p);
}

static void driver_update_without_a_job_is_ignored(void **state)
{
	atl_parsed_t p;

	(void)state;
	parse_fixture(FIXTURE("driver_update_idle.json"), &p);
	atl_assert_ignored(&p);
	parse_text("{\"event\":\"driver\",\"type\":\"update\",\"data\":{\"latitude\":48.8,"
		   "\"longitude\":2.3}}",
		   &p);
	atl_assert_ignored(&p);
	parse_text("{\"event\":\"driver\",\"type\":\"update\",\"data\":{\"latitude\":48.8,"
		   "\"longitude\":2.3,\"job\":{\"id\":1,\"currentDelivery\":null}}}",
		   &p);
	atl_assert_ignored(&p);
}

static void a_client_reference_that_is_not_an_order_id_is_refused(void **state)
{
	atl_parsed_t p;
	char *body, *long_ref;

	(void)state;
	parse_fixture(FIXTURE("driver_update_hash_reference.json"), &p);
	atl_assert_invalid(&p, "data.job.currentDelivery.clientReference");

	long_ref = malloc(130);
	assert_non_null(long_ref);
	memset(long_ref, 'a', 129);
	long_ref[129] = '\0';
	body = atl_format("{\"event\":\"delivery\",\"type\":\"update\",\"data\":{\"status\":"
			  "\"picking\",\"clientReference\":\"%s\"}}",
			  long_ref);
	parse_text(body, &p);
	atl_assert_invalid(&p, "data.clientReference");
	free(body);
	long_ref[128] = '\0'; /* 128 characters: the longest order id */
	body = atl_format("{\"event\":\"delivery\",\"type\":\"update\",\"data\":{\"status\":"
			  "\"picking\",\"clientReference\":\"%s\"}}",
			  long_ref);
	parse_text(body, &p);
	atl_assert_one_update(&p);
	assert_string_equal(p.u[0].order_id, long_ref);
	free(body);
	free(long_ref);

	body = delivery_event("\"status\":\"picking\",\"clientReference\":\"ord 1\"");
	parse_text(body, &p);
	atl_assert_invalid(&p, "data.clientReference");
	free(body);
}

static void an_empty_client_reference_is_ignored(void **state)
{
	atl_parsed_t p;
	char *body = delivery_event("\"status\":\"picking\",\"clientReference\":\"\"");

	(void)state;
	parse_text(body, &p);
	atl_assert_ignored(&p);
	free(body);
}

/* --- statuses --------------------------------------------------------------------- */

static void every_stuart_delivery_status_maps_to_a_canonical_status(void **state)
{
	static const struct {
		const char *stuart;
		proto_status_t status;
	} table[] = {
	    {"pending", PROTO_STATUS_CREATED},
	    {"picking", PROTO_STATUS_EN_ROUTE_TO_PICKUP},
	    {"almost_picking", PROTO_STATUS_EN_ROUTE_TO_PICKUP},
	    {"waiting_at_pickup", PROTO_STATUS_AT_PICKUP},
	    {"delivering", PROTO_STATUS_EN_ROUTE_TO_DROPOFF},
	    {"almost_delivering", PROTO_STATUS_EN_ROUTE_TO_DROPOFF},
	    {"waiting_at_dropoff", PROTO_STATUS_AT_DROPOFF},
	    {"delivered", PROTO_STATUS_DELIVERED},
	    {"cancelled", PROTO_STATUS_CANCELLED},
	};
	atl_parsed_t p;

	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		char *members =
		    atl_format("\"status\":\"%s\",\"clientReference\":\"ord-1\"", table[i].stuart);
		char *body = delivery_event(members);
		char *job =
		    atl_format("{\"event\":\"job\",\"type\":\"update\",\"data\":{\"status\":"
			       "\"in_progress\",\"currentDelivery\":{%s}}}",
			       members);

		parse_text(body, &p);
		atl_assert_one_update(&p);
		assert_int_equal(p.u[0].status, table[i].status);
		assert_false(p.u[0].has_location);
		assert_false(p.u[0].has_eta);
		assert_false(p.u[0].has_courier);
		parse_text(job, &p);
		atl_assert_one_update(&p);
		assert_int_equal(p.u[0].status, table[i].status);
		free(job);
		free(body);
		free(members);
	}
}

static void an_unknown_status_is_dropped_but_the_rest_is_kept(void **state)
{
	atl_parsed_t p;
	char *body;

	(void)state;
	body = delivery_event("\"status\":\"teleporting\",\"clientReference\":\"ord-1\","
			      "\"etaToDestination\":\"2024-05-01T14:05:00.000+02:00\"");
	parse_text(body, &p);
	atl_assert_one_update(&p);
	assert_int_equal(p.u[0].status, PROTO_STATUS_NONE);
	assert_int_equal(p.u[0].eta.dropoff, T_1405_CEST);
	free(body);

	/* Nothing left to track: ignored. */
	body = delivery_event("\"status\":\"teleporting\",\"clientReference\":\"ord-1\"");
	parse_text(body, &p);
	atl_assert_ignored(&p);
	free(body);
	/* The job's own status ("canceled", one l) is not a delivery status. */
	body = delivery_event("\"status\":\"canceled\",\"clientReference\":\"ord-1\"");
	parse_text(body, &p);
	atl_assert_ignored(&p);
	free(body);
}

static void events_that_carry_nothing_to_track_are_ignored(void **state)
{
	static const char *const bodies[] = {
	    "{\"event\":\"driver\",\"type\":\"online\",\"data\":{\"latitude\":1,\"longitude\":2}}",
	    "{\"event\":\"driver\",\"type\":\"offline\",\"data\":{}}",
	    "{\"event\":\"driver\",\"type\":\"create\",\"data\":{}}",
	    "{\"event\":\"job\",\"type\":\"delete\",\"data\":{}}",
	    "{\"event\":\"package\",\"type\":\"update\",\"data\":{\"clientReference\":\"a\"}}",
	    "{\"event\":\"\",\"type\":\"\",\"data\":{}}",
	    "{\"event\":\"JOB\",\"type\":\"UPDATE\",\"data\":{\"currentDelivery\":{"
	    "\"status\":\"delivered\",\"clientReference\":\"a\"}}}",
	    "{\"event\":\"delivery\",\"type\":\"update\",\"data\":{}}",
	    "{\"event\":\"job\",\"type\":\"update\",\"data\":{\"currentDelivery\":{}}}",
	};
	atl_parsed_t p;

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		parse_text(bodies[i], &p);
		if (p.rc != ADAPTER_OK || p.n != 0)
			fail_msg("not ignored: %s", bodies[i]);
	}
}

/* --- optional fields, coordinates and times ------------------------------------- */

static void missing_optional_fields_leave_their_parts_out(void **state)
{
	atl_parsed_t p;
	char *body;

	(void)state;
	body = delivery_event("\"id\":1,\"status\":\"waiting_at_dropoff\",\"clientReference\":"
			      "\"ord-1\",\"driver\":null,\"etaToOrigin\":null,"
			      "\"etaToDestination\":null,\"transportType\":null");
	parse_text(body, &p);
	atl_assert_one_update(&p);
	assert_int_equal(p.u[0].status, PROTO_STATUS_AT_DROPOFF);
	assert_false(p.u[0].has_location);
	assert_false(p.u[0].has_eta);
	assert_false(p.u[0].has_courier);
	free(body);

	/* A driver without a position, name or vehicle; the delivery's vehicle is used. */
	body =
	    delivery_event("\"status\":\"picking\",\"clientReference\":\"ord-1\","
			   "\"driver\":{\"status\":\"busy\",\"latitude\":null,\"longitude\":null,"
			   "\"name\":null},\"transportType\":{\"code\":\"cargobike\"}");
	parse_text(body, &p);
	atl_assert_one_update(&p);
	assert_false(p.u[0].has_location);
	assert_true(p.u[0].has_courier);
	assert_string_equal(p.u[0].courier.name, "");
	assert_string_equal(p.u[0].courier.vehicle, "cargobike");
	free(body);

	/* Only one ETA. */
	body = delivery_event("\"status\":\"delivering\",\"clientReference\":\"ord-1\","
			      "\"etaToDestination\":\"2024-05-01T14:05:00.000+02:00\"");
	parse_text(body, &p);
	atl_assert_one_update(&p);
	assert_true(p.u[0].has_eta);
	assert_false(p.u[0].eta.has_pickup);
	assert_true(p.u[0].eta.has_dropoff);
	free(body);
}

static void coordinates_given_as_strings_are_read(void **state)
{
	atl_parsed_t p;
	char *body;

	(void)state;
	body = atl_format("{\"event\":\"driver\",\"type\":\"update\",\"data\":{\"latitude\":"
			  "\"48.85559\",\"longitude\":\"-2.5e-1\",\"job\":{\"currentDelivery\":{"
			  "\"clientReference\":\"ord-1\"}}}}");
	parse_text(body, &p);
	atl_assert_one_update(&p);
	assert_true(p.u[0].location.lat == 48.85559);
	assert_true(p.u[0].location.lng == -0.25);
	free(body);

	body = atl_format("{\"event\":\"driver\",\"type\":\"update\",\"data\":{\"latitude\":"
			  "\"48.8 \",\"longitude\":\"2.3\",\"job\":{\"currentDelivery\":{"
			  "\"clientReference\":\"ord-1\"}}}}");
	parse_text(body, &p);
	atl_assert_invalid(&p, "data.latitude");
	free(body);
}

static void out_of_range_or_half_coordinates_are_refused(void **state)
{
	static const struct {
		const char *driver;
		const char *field;
	} table[] = {
	    {"\"latitude\":90.0001,\"longitude\":2", "data.driver.latitude"},
	    {"\"latitude\":-91,\"longitude\":2", "data.driver.latitude"},
	    {"\"latitude\":48,\"longitude\":180.5", "data.driver.longitude"},
	    {"\"latitude\":48", "data.driver.longitude"},
	    {"\"longitude\":2", "data.driver.latitude"},
	    {"\"latitude\":48,\"longitude\":null", "data.driver.longitude"},
	};
	atl_parsed_t p;

	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		char *members = atl_format("\"status\":\"picking\",\"clientReference\":\"ord-1\","
					   "\"driver\":{%s}",
					   table[i].driver);
		char *body = delivery_event(members);

		parse_text(body, &p);
		atl_assert_invalid(&p, table[i].field);
		free(body);
		free(members);
	}
}

static void every_time_format_is_read_with_its_offset(void **state)
{
	static const struct {
		const char *json; /* the etaToDestination member's value */
		int64_t ms;
	} table[] = {
	    {"\"2024-05-01T14:05:00.000+02:00\"", T_1405_CEST},
	    {"\"2024-05-01T14:05:00+02:00\"", T_1405_CEST},
	    {"\"2024-05-01T12:05:00Z\"", T_1405_CEST},
	    {"\"2024-05-01T12:05:00.000Z\"", T_1405_CEST},
	    {"\"2024-05-01T12:05:00.5Z\"", T_1405_CEST + 500},
	    {"\"2024-05-01T12:05:00.123456789Z\"", T_1405_CEST + 123},
	    {"\"2024-05-01T06:35:00.000-05:30\"", T_1405_CEST},
	    {"\"2024-05-01T23:05:00+11:00\"", T_1405_CEST},
	    {"\"2024-05-01T12:05:00+00:00\"", T_1405_CEST},
	    {"\"2024-05-01T12:05:00-00:00\"", T_1405_CEST},
	    {"\"2024-05-01 14:05:00+02:00\"", T_1405_CEST},
	    {"\"2024-05-02T01:35:00+13:30\"", T_1405_CEST},
	    {"\"2024-04-30T23:05:00.000-13:00\"", T_1405_CEST},
	    {"1714565100", T_1405_CEST},
	    {"1714565100000", T_1405_CEST},
	    {"\"1714565100\"", T_1405_CEST},
	    {"1714565100.25", T_1405_CEST + 250},
	};
	atl_parsed_t p;

	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		char *members =
		    atl_format("\"status\":\"delivering\",\"clientReference\":\"ord-1\","
			       "\"etaToDestination\":%s",
			       table[i].json);
		char *body = delivery_event(members);

		parse_text(body, &p);
		atl_assert_one_update(&p);
		if (p.u[0].eta.dropoff != table[i].ms)
			fail_msg("%s read as %lld", table[i].json, (long long)p.u[0].eta.dropoff);
		free(body);
		free(members);
	}
}

static void a_time_that_is_not_a_time_is_refused(void **state)
{
	static const char *const bad[] = {
	    "\"2024-05-01\"",
	    "\"2024-05-01T12:05:00\"",
	    "\"2024-05-01T12:05Z\"",
	    "\"2024-13-01T12:05:00Z\"",
	    "\"2024-02-30T12:05:00Z\"",
	    "\"2024-05-01T24:05:00Z\"",
	    "\"2024-05-01T12:05:00+2:00\"",
	    "\"2024-05-01T12:05:00.Z\"",
	    "\"2024-05-01T12:05:00Z trailing\"",
	    "\"tomorrow\"",
	    "\"\"",
	    "0",
	    "-5",
	    "1e300",
	    "\"1e300\"",
	    "\"0x5f\"",
	    "true",
	    "{}",
	    "[]",
	};
	atl_parsed_t p;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *members =
		    atl_format("\"status\":\"delivering\",\"clientReference\":\"ord-1\","
			       "\"etaToDestination\":%s",
			       bad[i]);
		char *body = delivery_event(members);

		parse_text(body, &p);
		if (p.rc != ADAPTER_EINVAL)
			fail_msg("accepted etaToDestination %s", bad[i]);
		assert_string_equal(p.err.field, "data.etaToDestination");
		free(body);
		free(members);
	}
}

static void a_receive_time_out_of_range_is_refused(void **state)
{
	atl_parsed_t p;
	char *body = atl_load_file(FIXTURE("driver_update.json"), NULL);

	(void)state;
	parse_at(body, strlen(body), 0, &p);
	atl_assert_invalid(&p, "ts");
	parse_at(body, strlen(body), PROTO_MS_MAX + 1, &p);
	atl_assert_invalid(&p, "ts");
	parse_at(body, strlen(body), PROTO_MS_MAX, &p);
	atl_assert_one_update(&p);
	free(body);
}

/* --- malformed bodies --------------------------------------------------------------- */

static void a_missing_envelope_member_is_named(void **state)
{
	static const struct {
		const char *body;
		const char *field;
	} table[] = {
	    {"{}", "event"},
	    {"{\"type\":\"update\",\"data\":{}}", "event"},
	    {"{\"event\":\"job\",\"data\":{}}", "type"},
	    {"{\"event\":\"job\",\"type\":\"update\"}", "data"},
	    {"{\"event\":\"job\",\"type\":\"update\",\"data\":null}", "data"},
	    {"{\"event\":null,\"type\":\"update\",\"data\":{}}", "event"},
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
	    {"{\"event\":1,\"type\":\"update\",\"data\":{}}", "event"},
	    {"{\"event\":\"job\",\"type\":true,\"data\":{}}", "type"},
	    {"{\"event\":\"job\",\"type\":\"update\",\"data\":[]}", "data"},
	    {"{\"event\":\"job\",\"type\":\"update\",\"data\":\"x\"}", "data"},
	    {"{\"event\":\"job\",\"type\":\"update\",\"data\":{\"currentDelivery\":5}}",
	     "data.currentDelivery"},
	    {"{\"event\":\"job\",\"type\":\"update\",\"data\":{\"currentDelivery\":[]}}",
	     "data.currentDelivery"},
	    {"{\"event\":\"driver\",\"type\":\"update\",\"data\":{\"job\":\"x\"}}", "data.job"},
	    {"{\"event\":\"driver\",\"type\":\"update\",\"data\":{\"job\":{\"currentDelivery\":"
	     "true}}}",
	     "data.job.currentDelivery"},
	    {"{\"event\":\"delivery\",\"type\":\"update\",\"data\":{\"clientReference\":42}}",
	     "data.clientReference"},
	    {"{\"event\":\"delivery\",\"type\":\"update\",\"data\":{\"clientReference\":\"a\","
	     "\"status\":3}}",
	     "data.status"},
	    {"{\"event\":\"delivery\",\"type\":\"update\",\"data\":{\"clientReference\":\"a\","
	     "\"status\":\"picking\",\"driver\":3}}",
	     "data.driver"},
	    {"{\"event\":\"delivery\",\"type\":\"update\",\"data\":{\"clientReference\":\"a\","
	     "\"status\":\"picking\",\"driver\":{\"latitude\":true,\"longitude\":2}}}",
	     "data.driver.latitude"},
	    {"{\"event\":\"delivery\",\"type\":\"update\",\"data\":{\"clientReference\":\"a\","
	     "\"status\":\"picking\",\"driver\":{\"latitude\":\"north\",\"longitude\":2}}}",
	     "data.driver.latitude"},
	    {"{\"event\":\"delivery\",\"type\":\"update\",\"data\":{\"clientReference\":\"a\","
	     "\"status\":\"picking\",\"driver\":{\"latitude\":1,\"longitude\":{}}}}",
	     "data.driver.longitude"},
	    {"{\"event\":\"delivery\",\"type\":\"update\",\"data\":{\"clientReference\":\"a\","
	     "\"status\":\"picking\",\"driver\":{\"name\":7}}}",
	     "data.driver.name"},
	    {"{\"event\":\"delivery\",\"type\":\"update\",\"data\":{\"clientReference\":\"a\","
	     "\"status\":\"picking\",\"driver\":{\"transportType\":\"car\"}}}",
	     "data.driver.transportType"},
	    {"{\"event\":\"delivery\",\"type\":\"update\",\"data\":{\"clientReference\":\"a\","
	     "\"status\":\"picking\",\"driver\":{\"transportType\":{\"code\":1}}}}",
	     "data.driver.transportType.code"},
	    {"{\"event\":\"delivery\",\"type\":\"update\",\"data\":{\"clientReference\":\"a\","
	     "\"status\":\"picking\",\"transportType\":{\"code\":[]}}}",
	     "data.transportType.code"},
	    {"{\"event\":\"delivery\",\"type\":\"update\",\"data\":{\"clientReference\":\"a\","
	     "\"status\":\"picking\",\"etaToOrigin\":false}}",
	     "data.etaToOrigin"},
	    {"{\"event\":\"driver\",\"type\":\"update\",\"data\":{\"latitude\":[1],"
	     "\"longitude\":2,\"job\":{\"currentDelivery\":{\"clientReference\":\"a\"}}}}",
	     "data.latitude"},
	};
	atl_parsed_t p;

	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		parse_text(table[i].body, &p);
		atl_assert_invalid(&p, table[i].field);
	}
}

static void a_body_that_is_not_one_json_object_is_refused(void **state)
{
	static const char *const bodies[] = {
	    "",
	    " ",
	    "[]",
	    "null",
	    "\"job\"",
	    "42",
	    "{\"event\":\"job\"",
	    "{\"event\":\"job\",}",
	    "{\"event\":\"job\",\"type\":\"update\",\"data\":{}} {}",
	    "{\"event\":\"job\",\"event\":\"driver\",\"type\":\"update\",\"data\":{}}",
	    "{'event':'job'}",
	    "{\"event\":\"job\",\"type\":\"update\",\"data\":{},\"x\":\"\\u0000\"}",
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
	static const char *const fixtures[] = {FIXTURE("job_update.json"),
					       FIXTURE("driver_update.json")};
	atl_parsed_t p;

	(void)state;
	for (size_t f = 0; f < sizeof(fixtures) / sizeof(fixtures[0]); f++) {
		size_t len;
		char *body = atl_load_file(fixtures[f], &len);
		size_t last = (size_t)(strrchr(body, '}') - body);

		for (size_t cut = 0; cut <= last; cut++) {
			parse_len(body, cut, &p);
			if (p.rc != ADAPTER_EINVAL)
				fail_msg("%s cut at %zu accepted", fixtures[f], cut);
		}
		free(body);
	}
}

static void huge_numbers_are_refused_not_wrapped(void **state)
{
	static const struct {
		const char *members;
		const char *field;
	} table[] = {
	    {"\"driver\":{\"latitude\":1e999,\"longitude\":2}", "data.driver.latitude"},
	    {"\"driver\":{\"latitude\":-1e999,\"longitude\":2}", "data.driver.latitude"},
	    {"\"driver\":{\"latitude\":1,\"longitude\":123456789012345678901234567890}",
	     "data.driver.longitude"},
	    {"\"driver\":{\"latitude\":\"1e400\",\"longitude\":2}", "data.driver.latitude"},
	    {"\"etaToDestination\":1e999", "data.etaToDestination"},
	    {"\"etaToDestination\":99999999999999999999", "data.etaToDestination"},
	    {"\"etaToDestination\":\"99999-05-01T12:05:00Z\"", "data.etaToDestination"},
	    {"\"etaToDestination\":\"5000-05-01T12:05:00Z\"", NULL}, /* in range: fine */
	};
	atl_parsed_t p;

	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		char *members = atl_format(
		    "\"status\":\"picking\",\"clientReference\":\"ord-1\",%s", table[i].members);
		char *body = delivery_event(members);

		parse_text(body, &p);
		if (table[i].field == NULL)
			atl_assert_one_update(&p);
		else
			atl_assert_invalid(&p, table[i].field);
		free(body);
		free(members);
	}
}

static void bytes_that_are_not_utf8_are_refused(void **state)
{
	static const char *const names[] = {
	    "Cam\xffille", "\xc0\xaf", "\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "abc\xe2\x82",
	};
	atl_parsed_t p;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *members = atl_format("\"status\":\"picking\",\"clientReference\":\"ord-1\","
					   "\"driver\":{\"name\":\"%s\"}",
					   names[i]);
		char *body = delivery_event(members);

		parse_text(body, &p);
		atl_assert_invalid(&p, NULL);
		free(body);
		free(members);
	}

	/* A NUL byte inside the body. */
	{
		static const char with_nul[] =
		    "{\"event\":\"job\",\"type\":\"update\",\"data\":{}}\0";
		parse_len(with_nul, sizeof(with_nul), &p);
		atl_assert_invalid(&p, NULL);
	}
}

static void courier_text_is_cleaned_and_cut_for_proto(void **state)
{
	atl_parsed_t p;
	char *body, name[401];

	(void)state;
	body = delivery_event("\"status\":\"picking\",\"clientReference\":\"ord-1\","
			      "\"driver\":{\"name\":\"Camille\\nMartin\\t\\u001b\","
			      "\"transportType\":{\"code\":\"motorbike\\r\"}}");
	parse_text(body, &p);
	atl_assert_one_update(&p);
	assert_string_equal(p.u[0].courier.name, "Camille Martin  ");
	assert_string_equal(p.u[0].courier.vehicle, "motorbike ");
	free(body);

	/* 200 two-byte characters: cut to 64 of them (128 bytes), never mid-character. */
	for (int i = 0; i < 200; i++)
		memcpy(name + 2 * i, "\xc3\xa9", 2);
	name[400] = '\0';
	body = atl_format(
	    "{\"event\":\"delivery\",\"type\":\"update\",\"data\":{\"status\":\"picking\","
	    "\"clientReference\":\"ord-1\",\"driver\":{\"name\":\"%s\",\"transportType\":"
	    "{\"code\":\"%s\"}}}}",
	    name, name);
	parse_text(body, &p);
	atl_assert_one_update(&p);
	assert_int_equal(strlen(p.u[0].courier.name), 128);
	assert_int_equal(strlen(p.u[0].courier.vehicle), 32);
	assert_memory_equal(p.u[0].courier.name, name, 128);
	free(body);
}

static void a_60_kib_body_is_parsed(void **state)
{
	atl_parsed_t p;
	char *body = atl_load_file(FIXTURE("delivery_update.json"), NULL);
	char *pad = malloc(61441), *members, *big;

	(void)state;
	assert_non_null(pad);
	memset(pad, 'x', 61440);
	pad[61440] = '\0';
	members = atl_format("\"id\": 40567, \"comment\": \"%s\",", pad);
	big = atl_replace_once(body, "\"id\": 40567,", members);
	assert_true(strlen(big) > 60 * 1024);
	parse_text(big, &p);
	atl_assert_one_update(&p);
	assert_int_equal(p.u[0].status, PROTO_STATUS_EN_ROUTE_TO_PICKUP);
	free(big);
	free(members);
	free(pad);
	free(body);
}

static void the_same_body_twice_gives_the_same_event_id(void **state)
{
	atl_parsed_t first, second;
	char *body = atl_load_file(FIXTURE("driver_update.json"), NULL);
	char *moved = atl_replace_once(body, "48.85559", "48.85560");

	(void)state;
	parse_at(body, strlen(body), NOW_MS, &first);
	parse_at(body, strlen(body), NOW_MS + 30000, &second); /* a retry, 30 s later */
	atl_assert_one_update(&first);
	atl_assert_one_update(&second);
	assert_string_equal(first.u[0].event_id, second.u[0].event_id);
	assert_int_equal(strlen(first.u[0].event_id), 7 + 32);

	parse_text(moved, &second);
	atl_assert_one_update(&second);
	assert_string_not_equal(first.u[0].event_id, second.u[0].event_id);
	free(moved);
	free(body);
}

/* --- webhooks v3 ----------------------------------------------------------------- */

/* 2024-05-01T11:58:30.250Z and 13:52:10.500+02:00, the occurred_at of the v3 fixtures. */
#define T_1158_30_250_UTC 1714564710250LL
#define T_1352_10_500_CEST 1714564330500LL

/* A v3 event with topic and the members of details (JSON text without braces). */
static char *v3_event(const char *topic, const char *details)
{
	return atl_format("{\"version\":\"v3\",\"occurred_at\":\"2024-05-01T11:58:30.250Z\","
			  "\"event_id\":\"evt-1\",\"webhook_id\":1207,\"topic\":\"%s\","
			  "\"details\":{%s}}",
			  topic, details);
}

static void v3_package_delivering_gives_the_status_at_its_own_time_and_id(void **state)
{
	atl_parsed_t p;
	const proto_update_t *u = &p.u[0];

	(void)state;
	parse_fixture(FIXTURE("v3_package_delivering.json"), &p);
	atl_assert_one_update(&p);
	assert_string_equal(u->order_id, "ord-40567");
	assert_string_equal(u->provider, "stuart");
	assert_int_equal(u->ts, T_1158_30_250_UTC);
	assert_string_equal(u->event_id, "5f0c2d4e-8a7b-4c1d-9e3f-2a6b8c0d1e4f");
	assert_int_equal(u->status, PROTO_STATUS_EN_ROUTE_TO_DROPOFF);
	/* No source shows a position, ETAs or a courier in a v3 body. */
	assert_false(u->has_location);
	assert_false(u->has_eta);
	assert_false(u->has_courier);
}

static void v3_courier_arriving_is_en_route_to_its_task(void **state)
{
	atl_parsed_t p;
	char *body = atl_load_file(FIXTURE("v3_courier_arriving.json"), NULL);
	char *dropoff = atl_replace_once(body, "\"task\": \"pickup\"", "\"task\": \"dropoff\"");
	char *other = atl_replace_once(body, "\"task\": \"pickup\"", "\"task\": \"return\"");
	char *none = atl_replace_once(body, ",\n    \"task\": \"pickup\"", "");

	(void)state;
	parse_text(body, &p);
	atl_assert_one_update(&p);
	assert_int_equal(p.u[0].status, PROTO_STATUS_EN_ROUTE_TO_PICKUP);
	assert_int_equal(p.u[0].ts, T_1352_10_500_CEST);
	assert_string_equal(p.u[0].event_id, "c7e1a3b5-2d4f-4a6c-8e0b-1f3d5a7c9e2b");
	parse_text(dropoff, &p);
	atl_assert_one_update(&p);
	assert_int_equal(p.u[0].status, PROTO_STATUS_EN_ROUTE_TO_DROPOFF);
	parse_text(other, &p);
	atl_assert_ignored(&p);
	assert_true(strstr(none, "task") == NULL);
	parse_text(none, &p);
	atl_assert_ignored(&p);
	free(none);
	free(other);
	free(dropoff);
	free(body);
}

static void every_v3_topic_maps_to_a_canonical_status(void **state)
{
	static const struct {
		const char *topic;
		proto_status_t status;
	} table[] = {
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
	atl_parsed_t p;

	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		char *body = v3_event(table[i].topic, "\"package\":{\"reference\":\"ord-1\"}");

		parse_text(body, &p);
		atl_assert_one_update(&p);
		if (p.u[0].status != table[i].status)
			fail_msg("%s: status %d, want %d", table[i].topic, (int)p.u[0].status,
				 (int)table[i].status);
		assert_string_equal(p.u[0].order_id, "ord-1");
		assert_string_equal(p.u[0].event_id, "evt-1");
		free(body);
	}
}

static void v3_events_with_nothing_to_track_are_ignored(void **state)
{
	static const struct {
		const char *topic;
		const char *details;
	} table[] = {
	    {"package_updated", "\"package\":{\"reference\":\"ord-1\"}"}, /* unknown topic */
	    {"Package_Delivered", "\"package\":{\"reference\":\"ord-1\"}"},
	    {"package_delivered", ""},
	    {"package_delivered", "\"package\":null"},
	    {"package_delivered", "\"package\":{\"id\":100734322}"},
	    {"package_delivered", "\"package\":{\"reference\":null}"},
	    {"package_delivered", "\"package\":{\"reference\":\"\"}"},
	};
	atl_parsed_t p;

	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		char *body = v3_event(table[i].topic, table[i].details);

		parse_text(body, &p);
		if (p.rc != ADAPTER_OK || p.n != 0)
			fail_msg("%s {%s}: rc %d, %d updates", table[i].topic, table[i].details,
				 p.rc, p.n);
		free(body);
	}
}

static void v3_without_an_event_id_or_a_time_uses_the_hash_and_the_receive_time(void **state)
{
	static const char body[] = "{\"version\":\"v3\",\"topic\":\"package_delivered\","
				   "\"details\":{\"package\":{\"reference\":\"ord-1\"}}}";
	static const char empty_id[] =
	    "{\"version\":\"v3\",\"event_id\":\"\",\"occurred_at\":null,"
	    "\"topic\":\"package_delivered\",\"details\":{\"package\":{\"reference\":\"ord-1\"}}}";
	atl_parsed_t p;

	(void)state;
	parse_text(body, &p);
	atl_assert_one_update(&p);
	assert_int_equal(p.u[0].ts, NOW_MS);
	assert_int_equal(strncmp(p.u[0].event_id, "sha256:", 7), 0);
	assert_int_equal(p.u[0].status, PROTO_STATUS_DELIVERED);
	parse_text(empty_id, &p);
	atl_assert_one_update(&p);
	assert_int_equal(p.u[0].ts, NOW_MS);
	assert_int_equal(strncmp(p.u[0].event_id, "sha256:", 7), 0);
}

static void v3_courier_name_is_copied_when_sent(void **state)
{
	atl_parsed_t p;
	char *body = v3_event("courier_assigned", "\"package\":{\"reference\":\"ord-1\"},"
						  "\"courier\":{\"name\":\"Camille\\nM.\","
						  "\"phone\":\"+33600000000\"}");

	(void)state;
	parse_text(body, &p);
	atl_assert_one_update(&p);
	assert_int_equal(p.u[0].status, PROTO_STATUS_COURIER_ASSIGNED);
	assert_true(p.u[0].has_courier);
	assert_string_equal(p.u[0].courier.name, "Camille M.");
	assert_string_equal(p.u[0].courier.id, "");
	free(body);
}

static void v3_malformed_members_are_named(void **state)
{
	static const struct {
		const char *body;
		const char *field;
	} table[] = {
	    {"{\"version\":\"v3\",\"details\":{}}", "topic"},
	    {"{\"version\":\"v3\",\"topic\":7,\"details\":{}}", "topic"},
	    {"{\"version\":\"v3\",\"topic\":\"package_delivered\"}", "details"},
	    {"{\"version\":\"v3\",\"topic\":\"package_delivered\",\"details\":[]}", "details"},
	    {"{\"version\":\"v3\",\"topic\":\"x\",\"event_id\":5,\"details\":{}}", "event_id"},
	    {"{\"version\":\"v3\",\"topic\":\"x\",\"occurred_at\":\"yesterday\",\"details\":{}}",
	     "occurred_at"},
	    {"{\"version\":\"v3\",\"topic\":\"x\",\"details\":{\"package\":\"ord-1\"}}",
	     "details.package"},
	    {"{\"version\":\"v3\",\"topic\":\"x\",\"details\":{\"package\":{\"reference\":7}}}",
	     "details.package.reference"},
	    {"{\"version\":\"v3\",\"topic\":\"package_delivered\",\"details\":{\"package\":"
	     "{\"reference\":\"Order_ID#1234_1\"}}}",
	     "details.package.reference"},
	    {"{\"version\":\"v3\",\"topic\":\"x\",\"details\":{\"task\":1}}", "details.task"},
	    {"{\"version\":\"v3\",\"topic\":\"x\",\"details\":{\"courier\":{\"name\":1}}}",
	     "details.courier.name"},
	    {"{\"version\":3,\"topic\":\"x\",\"details\":{}}", "version"},
	    {"{\"version\":\"v2\",\"event\":\"job\",\"type\":\"update\",\"data\":{}}", "version"},
	    {"{\"version\":\"v4\",\"topic\":\"x\",\"details\":{}}", "version"},
	    {"{\"version\":\"V3\",\"topic\":\"x\",\"details\":{}}", "version"},
	    /* No version: read as v2, whose first member is missing. */
	    {"{\"topic\":\"package_delivered\",\"details\":{\"package\":{\"reference\":\"o\"}}}",
	     "event"},
	};
	atl_parsed_t p;

	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		parse_text(table[i].body, &p);
		atl_assert_invalid(&p, table[i].field);
	}
}

static void every_truncation_of_a_v3_event_is_refused(void **state)
{
	static const char *const fixtures[] = {FIXTURE("v3_package_delivering.json"),
					       FIXTURE("v3_courier_arriving.json")};
	atl_parsed_t p;

	(void)state;
	for (size_t f = 0; f < sizeof(fixtures) / sizeof(fixtures[0]); f++) {
		size_t len;
		char *body = atl_load_file(fixtures[f], &len);
		size_t last = (size_t)(strrchr(body, '}') - body);

		for (size_t cut = 0; cut <= last; cut++) {
			parse_len(body, cut, &p);
			if (p.rc != ADAPTER_EINVAL)
				fail_msg("%s cut at %zu accepted", fixtures[f], cut);
		}
		free(body);
	}
}

static void no_room_for_an_update_is_an_error(void **state)
{
	atl_headers_t none = {{NULL}, {NULL}};
	proto_update_t u;
	proto_error_t err;
	char *body = atl_load_file(FIXTURE("job_update.json"), NULL);
	adapter_request_t req =
	    atl_request(body, strlen(body), &none, SECRET, sizeof(SECRET) - 1, NOW_MS);
	int n = 5;

	(void)state;
	assert_int_equal(stuart()->parse(&req, &u, 0, &n, &err), ADAPTER_EINVAL);
	assert_int_equal(n, 0);
	assert_int_equal(stuart()->parse(&req, &u, 1, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(verify_accepts_the_bearer_secret),
	    cmocka_unit_test(
		verify_accepts_basic_credentials_when_the_secret_is_user_colon_password),
	    cmocka_unit_test(verify_refuses_a_missing_authorization_header),
	    cmocka_unit_test(verify_refuses_a_wrong_secret),
	    cmocka_unit_test(verify_refuses_everything_without_a_configured_secret),
	    cmocka_unit_test(verify_survives_a_request_without_a_header_function),
	    cmocka_unit_test(job_create_without_a_current_delivery_is_ignored),
	    cmocka_unit_test(job_update_gives_the_delivery_status_driver_and_etas),
	    cmocka_unit_test(delivery_create_without_a_client_reference_is_ignored),
	    cmocka_unit_test(delivery_update_gives_the_status_position_and_etas),
	    cmocka_unit_test(driver_update_gives_the_position_alone_at_receive_time),
	    cmocka_unit_test(driver_update_without_a_position_is_ignored),
	    cmocka_unit_test(driver_update_without_a_job_is_ignored),
	    cmocka_unit_test(a_client_reference_that_is_not_an_order_id_is_refused),
	    cmocka_unit_test(an_empty_client_reference_is_ignored),
	    cmocka_unit_test(every_stuart_delivery_status_maps_to_a_canonical_status),
	    cmocka_unit_test(an_unknown_status_is_dropped_but_the_rest_is_kept),
	    cmocka_unit_test(events_that_carry_nothing_to_track_are_ignored),
	    cmocka_unit_test(missing_optional_fields_leave_their_parts_out),
	    cmocka_unit_test(coordinates_given_as_strings_are_read),
	    cmocka_unit_test(out_of_range_or_half_coordinates_are_refused),
	    cmocka_unit_test(every_time_format_is_read_with_its_offset),
	    cmocka_unit_test(a_time_that_is_not_a_time_is_refused),
	    cmocka_unit_test(a_receive_time_out_of_range_is_refused),
	    cmocka_unit_test(a_missing_envelope_member_is_named),
	    cmocka_unit_test(a_member_of_the_wrong_type_is_named),
	    cmocka_unit_test(a_body_that_is_not_one_json_object_is_refused),
	    cmocka_unit_test(every_truncation_of_a_documented_event_is_refused),
	    cmocka_unit_test(huge_numbers_are_refused_not_wrapped),
	    cmocka_unit_test(bytes_that_are_not_utf8_are_refused),
	    cmocka_unit_test(courier_text_is_cleaned_and_cut_for_proto),
	    cmocka_unit_test(a_60_kib_body_is_parsed),
	    cmocka_unit_test(the_same_body_twice_gives_the_same_event_id),
	    cmocka_unit_test(v3_package_delivering_gives_the_status_at_its_own_time_and_id),
	    cmocka_unit_test(v3_courier_arriving_is_en_route_to_its_task),
	    cmocka_unit_test(every_v3_topic_maps_to_a_canonical_status),
	    cmocka_unit_test(v3_events_with_nothing_to_track_are_ignored),
	    cmocka_unit_test(v3_without_an_event_id_or_a_time_uses_the_hash_and_the_receive_time),
	    cmocka_unit_test(v3_courier_name_is_copied_when_sent),
	    cmocka_unit_test(v3_malformed_members_are_named),
	    cmocka_unit_test(every_truncation_of_a_v3_event_is_refused),
	    cmocka_unit_test(no_room_for_an_update_is_an_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
