/*
 * test_poll_parse.c - gateway/poll/poll_parse.c: polled answers of Uber
 * Direct (GET delivery), DoorDash Drive (GET delivery) and Onfleet (GET
 * worker), on fixtures in fixtures/poll/ written after each provider's
 * documented example responses; every update is re-validated by proto.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "poll_parse.h"

#define NOW 1714650000000LL
#define ORDER "order-42"

/* The fixture's bytes, malloc'd and NUL-terminated, next to this file. */
static char *load_fixture(const char *name, size_t *len)
{
	const char *slash = strrchr(__FILE__, '/');
	char path[1024];
	char *buf;
	long size;
	FILE *f;

	snprintf(path, sizeof(path), "%.*s/fixtures/poll/%s",
		 slash != NULL ? (int)(slash - __FILE__) : 1, slash != NULL ? __FILE__ : ".", name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	assert_true(size > 0);
	rewind(f);
	buf = malloc((size_t)size + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	buf[size] = '\0';
	*len = (size_t)size;
	return buf;
}

/* proto takes the update, and gives the same JSON back after a round trip. */
static void assert_proto_valid(const proto_update_t *u)
{
	proto_update_t again;
	proto_error_t err;
	char *json = proto_update_to_json(u), *json2;

	assert_non_null(json);
	assert_int_equal(proto_update_parse(json, strlen(json), &again, &err), PROTO_OK);
	json2 = proto_update_to_json(&again);
	assert_non_null(json2);
	assert_string_equal(json, json2);
	free(json);
	free(json2);
}

static int parse(const char *provider, const char *body, proto_update_t *u, int *n,
		 proto_error_t *err)
{
	const poll_parser_t *p = poll_parser_find(provider);
	int rc;

	assert_non_null(p);
	memset(err, 0, sizeof(*err));
	*n = -1;
	rc = p->parse(body, strlen(body), ORDER, NOW, u, n, err);
	if (rc == 0 && *n == 1) {
		assert_string_equal(u->provider, provider);
		assert_string_equal(u->order_id, ORDER);
		assert_memory_equal(u->event_id, "sha256:", 7);
		assert_proto_valid(u);
	}
	if (rc != 0) {
		assert_int_equal(*n, 0);
		assert_true(err->message[0] != '\0');
	}
	return rc;
}

static void expect_invalid(const char *provider, const char *body, const char *field)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	assert_int_equal(parse(provider, body, &u, &n, &err), ADAPTER_EINVAL);
	assert_string_equal(err.field, field);
}

static void expect_nothing(const char *provider, const char *body)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	assert_int_equal(parse(provider, body, &u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 0);
}

/* --- the table --------------------------------------------------------------------- */

static void the_three_polled_providers_have_parsers(void **state)
{
	const poll_parser_t *const *all = poll_parser_all();
	int count = 0;

	(void)state;
	for (; all[count] != NULL; count++)
		assert_ptr_equal(poll_parser_find(all[count]->provider), all[count]);
	assert_int_equal(count, 3);
	assert_string_equal(poll_parser_find("onfleet")->resource, "worker");
	assert_null(poll_parser_find("stuart"));
	assert_null(poll_parser_find(NULL));
}

/* --- Uber Direct -------------------------------------------------------------------- */

static void an_uber_delivery_gives_status_position_courier_etas_and_places(void **state)
{
	proto_update_t u;
	proto_error_t err;
	size_t len;
	char *body = load_fixture("uber_direct_delivery.json", &len);
	int n;

	(void)state;
	assert_int_equal(parse("uber_direct", body, &u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_int_equal(u.ts, 1688620146000LL); /* updated, 2023-07-06T05:09:06Z */
	assert_int_equal(u.status, PROTO_STATUS_EN_ROUTE_TO_PICKUP);
	assert_true(u.has_location);
	assert_true(u.location.lat == 40.71093 && u.location.lng == -74.0119);
	assert_string_equal(u.courier.name, "Cori R.");
	assert_string_equal(u.courier.vehicle, "car");
	assert_true(u.eta.has_pickup && u.eta.has_dropoff);
	assert_int_equal(u.eta.pickup, 1688620469000LL);
	assert_true(u.places.has_pickup && u.places.has_dropoff);
	assert_true(u.places.dropoff.lat == 40.71932);
	free(body);
}

static void the_same_answer_polled_twice_has_the_same_event_id(void **state)
{
	proto_update_t a, b;
	proto_error_t err;
	size_t len;
	char *body = load_fixture("uber_direct_delivery.json", &len);
	char *moved;
	int n;

	(void)state;
	assert_int_equal(parse("uber_direct", body, &a, &n, &err), 0);
	assert_int_equal(parse("uber_direct", body, &b, &n, &err), 0);
	assert_string_equal(a.event_id, b.event_id);
	moved = strdup(body);
	assert_non_null(moved);
	memcpy(strstr(moved, "40.71093"), "40.71094", 8);
	assert_int_equal(parse("uber_direct", moved, &b, &n, &err), 0);
	assert_string_not_equal(a.event_id, b.event_id);
	free(moved);
	free(body);
}

static void an_uber_delivery_without_a_courier_gives_its_status_at_the_receive_time(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(
	    parse("uber_direct", "{\"status\":\"pending\",\"courier\":null}", &u, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(u.status, PROTO_STATUS_CREATED);
	assert_false(u.has_location);
	assert_int_equal(u.ts, NOW);
	expect_nothing("uber_direct", "{\"status\":\"something_new\"}");
}

static void a_malformed_uber_delivery_is_refused_naming_the_field(void **state)
{
	(void)state;
	expect_invalid("uber_direct", "{\"status\":", "");
	expect_invalid("uber_direct", "{\"status\":5}", "status");
	expect_invalid("uber_direct", "{\"courier\":[]}", "courier");
	expect_invalid("uber_direct", "{\"courier\":{\"location\":{\"lat\":91,\"lng\":0}}}",
		       "courier.location.lat");
	expect_invalid("uber_direct", "{\"courier\":{\"location\":{\"lat\":1}}}",
		       "courier.location.lng");
	expect_invalid("uber_direct", "{\"updated\":\"yesterday\",\"status\":\"pickup\"}",
		       "updated");
	expect_invalid("uber_direct", "{\"status\":\"pickup\",\"dropoff_eta\":true}",
		       "dropoff_eta");
	expect_invalid("uber_direct", "{\"status\":\"pickup\",\"courier\":{\"name\":1}}",
		       "courier.name");
}

static void an_invalid_order_id_is_refused(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(
	    poll_parse_uber_direct("{\"status\":\"pickup\"}", 19, "bad id", NOW, &u, &n, &err),
	    ADAPTER_EINVAL);
	assert_string_equal(err.field, "order_id");
}

/* --- DoorDash Drive ----------------------------------------------------------------- */

static void a_doordash_delivery_gives_status_dasher_position_and_etas(void **state)
{
	proto_update_t u;
	proto_error_t err;
	size_t len;
	char *body = load_fixture("doordash_drive_delivery.json", &len);
	int n;

	(void)state;
	assert_int_equal(parse("doordash_drive", body, &u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_int_equal(u.ts, 1780411205654LL); /* updated_at, 2026-06-02T14:40:05.654321Z */
	assert_int_equal(u.status, PROTO_STATUS_EN_ROUTE_TO_DROPOFF);
	assert_true(u.location.lat == 37.422 && u.location.lng == -122.084);
	assert_string_equal(u.courier.id, "1234567");
	assert_string_equal(u.courier.name, "Alex D.");
	assert_true(u.eta.has_pickup && u.eta.has_dropoff);
	free(body);
}

static void doordash_statuses_map_to_canonical_ones(void **state)
{
	static const struct {
		const char *name;
		proto_status_t status;
	} cases[] = {
	    {"created", PROTO_STATUS_CREATED},
	    {"confirmed", PROTO_STATUS_COURIER_ASSIGNED},
	    {"arrived_at_pickup", PROTO_STATUS_AT_PICKUP},
	    {"picked_up", PROTO_STATUS_PICKED_UP},
	    {"arrived_at_dropoff", PROTO_STATUS_AT_DROPOFF},
	    {"delivered", PROTO_STATUS_DELIVERED},
	    {"cancelled", PROTO_STATUS_CANCELLED},
	    {"enroute_to_return", PROTO_STATUS_FAILED},
	    {"returned", PROTO_STATUS_RETURNED},
	};
	proto_update_t u;
	proto_error_t err;
	char body[128];
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(body, sizeof(body), "{\"delivery_status\":\"%s\"}", cases[i].name);
		assert_int_equal(parse("doordash_drive", body, &u, &n, &err), 0);
		assert_int_equal(n, 1);
		assert_int_equal(u.status, cases[i].status);
	}
	expect_nothing("doordash_drive", "{\"delivery_status\":\"quote\"}");
}

static void a_doordash_delivery_takes_created_at_without_updated_at(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(parse("doordash_drive",
			       "{\"delivery_status\":\"created\",\"created_at\":"
			       "\"2026-06-02T14:10:00Z\"}",
			       &u, &n, &err),
			 0);
	assert_int_equal(u.ts, 1780409400000LL);
}

static void a_malformed_doordash_delivery_is_refused_naming_the_field(void **state)
{
	(void)state;
	expect_invalid("doordash_drive", "[1]", "");
	expect_invalid("doordash_drive", "{\"delivery_status\":[]}", "delivery_status");
	expect_invalid("doordash_drive", "{\"dasher_location\":\"here\"}", "dasher_location");
	expect_invalid("doordash_drive", "{\"dasher_location\":{\"lat\":1,\"lng\":181}}",
		       "dasher_location.lng");
	expect_invalid("doordash_drive", "{\"delivery_status\":\"created\",\"dasher_id\":-1}",
		       "dasher_id");
	expect_invalid("doordash_drive", "{\"updated_at\":1e300}", "updated_at");
	expect_invalid("doordash_drive", "{\"delivery_status\":\"created\",\"created_at\":\"x\"}",
		       "created_at");
}

/* --- Onfleet ------------------------------------------------------------------------ */

static void an_onfleet_worker_gives_its_position_lng_lat_at_time_last_seen(void **state)
{
	proto_update_t u;
	proto_error_t err;
	size_t len;
	char *body = load_fixture("onfleet_worker.json", &len);
	int n;

	(void)state;
	assert_int_equal(parse("onfleet", body, &u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	/* [longitude, latitude] in the body. */
	assert_true(u.location.lat == 37.7870017);
	assert_true(u.location.lng == -122.4015496);
	assert_int_equal(u.ts, 1455156649007LL);
	/* Position only: it coalesces. */
	assert_int_equal(u.status, PROTO_STATUS_NONE);
	assert_false(u.has_courier || u.has_eta || u.has_places);
	free(body);
}

static void an_onfleet_worker_never_seen_gives_nothing(void **state)
{
	(void)state;
	expect_nothing("onfleet", "{\"id\":\"w\",\"location\":null}");
	expect_nothing("onfleet", "{\"id\":\"w\",\"location\":[]}");
	expect_nothing("onfleet", "{\"id\":\"w\"}");
}

static void a_malformed_onfleet_worker_is_refused_naming_the_field(void **state)
{
	proto_update_t u;
	proto_error_t err;
	int n;

	(void)state;
	expect_invalid("onfleet", "", "");
	expect_invalid("onfleet", "{\"location\":{\"lat\":1,\"lng\":2}}", "location");
	expect_invalid("onfleet", "{\"location\":[1]}", "location");
	expect_invalid("onfleet", "{\"location\":[1,2,3]}", "location");
	expect_invalid("onfleet", "{\"location\":[\"1\",2]}", "location");
	/* Latitude first would be a mistake Onfleet's order catches: 122 is no latitude. */
	expect_invalid("onfleet", "{\"location\":[37.78,-122.40]}", "location");
	assert_int_equal(parse("onfleet", "{\"location\":[37.78,-122.40]}", &u, &n, &err),
			 ADAPTER_EINVAL);
	assert_non_null(strstr(err.message, "latitude"));
	expect_invalid("onfleet", "{\"location\":[200,10]}", "location");
	expect_invalid("onfleet", "{\"location\":[1,2],\"timeLastSeen\":\"soon\"}", "timeLastSeen");
	expect_invalid("onfleet", "{\"location\":[1,2],\"location\":[3,4]}", "location");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(the_three_polled_providers_have_parsers),
	    cmocka_unit_test(an_uber_delivery_gives_status_position_courier_etas_and_places),
	    cmocka_unit_test(the_same_answer_polled_twice_has_the_same_event_id),
	    cmocka_unit_test(
		an_uber_delivery_without_a_courier_gives_its_status_at_the_receive_time),
	    cmocka_unit_test(a_malformed_uber_delivery_is_refused_naming_the_field),
	    cmocka_unit_test(an_invalid_order_id_is_refused),
	    cmocka_unit_test(a_doordash_delivery_gives_status_dasher_position_and_etas),
	    cmocka_unit_test(doordash_statuses_map_to_canonical_ones),
	    cmocka_unit_test(a_doordash_delivery_takes_created_at_without_updated_at),
	    cmocka_unit_test(a_malformed_doordash_delivery_is_refused_naming_the_field),
	    cmocka_unit_test(an_onfleet_worker_gives_its_position_lng_lat_at_time_last_seen),
	    cmocka_unit_test(an_onfleet_worker_never_seen_gives_nothing),
	    cmocka_unit_test(a_malformed_onfleet_worker_is_refused_naming_the_field),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
