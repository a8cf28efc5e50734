/*
 * Tests of adapters/rappi.c on payloads written from the examples of Rappi's
 * "Webhook Events" page (tests/unit/fixtures/rappi/), and of the replay
 * window (adapter_check_replay_window in adapters/common.c) through it.
 * Every update a test gets back is also put through proto.
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

#define FIXTURE(name) TG_FIXTURES "/rappi/" name

/* 2024-05-01T12:00:00.123Z: the receive time the tests hand in. */
#define NOW_MS 1714564800123LL
/* The signed t of a request sent one second before it was received, in seconds. */
#define T_SENT_S 1714564799LL
#define T_SENT_MS (T_SENT_S * 1000)

static const unsigned char SECRET[] = "rappi-webhook-secret-5c1d";

static const atl_expect_t EXPECT = {"rappi", 1, ATL_CHECK_ALL};

/* --- helpers ------------------------------------------------------------------ */

static const adapter_ops_t *rappi(void)
{
	const adapter_ops_t *ops = adapter_find("rappi");

	assert_non_null(ops);
	return ops;
}

/* "t=T,sign=HEX" for body under key, T given as text (seconds or ms). */
static char *signature(const unsigned char *key, size_t key_len, const char *t, const char *body,
		       size_t len)
{
	char *payload = atl_format("%s.%.*s", t, (int)len, body);
	char hex[65], *header;

	atl_hmac_hex(ADAPTER_HMAC_SHA256, key, key_len, payload, strlen(payload), hex);
	header = atl_format("t=%s,sign=%s", t, hex);
	free(payload);
	return header;
}

/* verify of body with the Rappi-Signature value header (NULL: absent) at now_ms. */
static int verify_at(const char *body, size_t len, const char *header, int64_t now_ms,
		     int64_t window_ms, proto_error_t *err)
{
	atl_headers_t h = {{NULL}, {NULL}};
	adapter_request_t req;

	if (header != NULL)
		atl_headers_add(&h, "rappi-signature", header);
	req = atl_request(body, len, &h, SECRET, sizeof(SECRET) - 1, now_ms);
	req.replay_window_ms = window_ms;
	memset(err, 0, sizeof(*err));
	return rappi()->verify(&req, err);
}

/* verify of body signed with t = t_text under the right key, received at now_ms. */
static int verify_signed_at(const char *body, const char *t_text, int64_t now_ms, int64_t window_ms,
			    proto_error_t *err)
{
	char *header = signature(SECRET, sizeof(SECRET) - 1, t_text, body, strlen(body));
	int rc = verify_at(body, strlen(body), header, now_ms, window_ms, err);

	free(header);
	return rc;
}

/* verify then parse of body, signed with t = T_SENT_S, received at NOW_MS. */
static void post(const char *body, size_t len, atl_parsed_t *p)
{
	char *header = signature(SECRET, sizeof(SECRET) - 1, "1714564799", body, len);
	atl_headers_t h = {{NULL}, {NULL}};
	adapter_request_t req;
	proto_error_t err;

	atl_headers_add(&h, "rappi-signature", header);
	req = atl_request(body, len, &h, SECRET, sizeof(SECRET) - 1, NOW_MS);
	memset(&err, 0, sizeof(err));
	assert_int_equal(rappi()->verify(&req, &err), ADAPTER_OK);
	atl_parse_into(rappi(), &req, &EXPECT, p);
	free(header);
}

static void post_text(const char *body, atl_parsed_t *p)
{
	post(body, strlen(body), p);
}

static void post_fixture(const char *path, atl_parsed_t *p)
{
	size_t len;
	char *body = atl_load_file(path, &len);

	post(body, len, p);
	free(body);
}

/* The message of a refused verify names what is wrong. */
static void assert_refused(int rc, const proto_error_t *err, const char *says)
{
	assert_int_equal(rc, ADAPTER_EAUTH);
	assert_string_equal(err->field, "Rappi-Signature");
	if (strstr(err->message, says) == NULL)
		fail_msg("the reason \"%s\" does not say \"%s\"", err->message, says);
}

static const char ORDER_BODY[] = "{\"event\":\"close_order\",\"order_id\":\"109\"}";

/* --- the signature ----------------------------------------------------------- */

static void verify_accepts_the_hmac_of_t_dot_body_with_t_in_seconds(void **state)
{
	proto_error_t err;
	size_t len;
	char *body = atl_load_file(FIXTURE("taken_visible_order.json"), &len);

	(void)state;
	assert_int_equal(verify_signed_at(body, "1714564799", NOW_MS, 0, &err), ADAPTER_OK);
	free(body);
}

static void verify_accepts_t_in_milliseconds(void **state)
{
	proto_error_t err;

	(void)state;
	assert_int_equal(verify_signed_at(ORDER_BODY, "1714564799500", NOW_MS, 0, &err),
			 ADAPTER_OK);
}

static void verify_accepts_blanks_other_keys_and_a_second_sign(void **state)
{
	char *good =
	    signature(SECRET, sizeof(SECRET) - 1, "1714564799", ORDER_BODY, strlen(ORDER_BODY));
	const char *hex = strstr(good, "sign=") + 5;
	char *header = atl_format(" v=2 , sign=%064d ,t=1714564799, sign=%s ", 0, hex);
	proto_error_t err;

	(void)state;
	assert_int_equal(verify_at(ORDER_BODY, strlen(ORDER_BODY), header, NOW_MS, 0, &err),
			 ADAPTER_OK);
	free(header);
	free(good);
}

static void verify_refuses_a_missing_signature_header(void **state)
{
	proto_error_t err;

	(void)state;
	assert_refused(verify_at(ORDER_BODY, strlen(ORDER_BODY), NULL, NOW_MS, 0, &err), &err,
		       "is missing");
}

static void verify_refuses_a_signature_under_another_key(void **state)
{
	static const unsigned char other[] = "not-the-rappi-secret";
	char *header =
	    signature(other, sizeof(other) - 1, "1714564799", ORDER_BODY, strlen(ORDER_BODY));
	proto_error_t err;

	(void)state;
	assert_refused(verify_at(ORDER_BODY, strlen(ORDER_BODY), header, NOW_MS, 0, &err), &err,
		       "HMAC-SHA256");
	free(header);
}

static void verify_refuses_a_changed_body_or_t(void **state)
{
	char *header =
	    signature(SECRET, sizeof(SECRET) - 1, "1714564799", ORDER_BODY, strlen(ORDER_BODY));
	char *other_t = atl_replace_once(header, "t=1714564799", "t=1714564798");
	char *sign_only = atl_replace_once(header, "t=1714564799,", "");
	proto_error_t err;

	(void)state;
	/* The body cut by one byte, then t changed: the HMAC covers both. */
	assert_refused(verify_at(ORDER_BODY, strlen(ORDER_BODY) - 1, header, NOW_MS, 0, &err), &err,
		       "HMAC-SHA256");
	assert_refused(verify_at(ORDER_BODY, strlen(ORDER_BODY), other_t, NOW_MS, 0, &err), &err,
		       "HMAC-SHA256");
	/* The HMAC of the body alone (as Uber signs) is not Rappi's. */
	assert_refused(verify_at(ORDER_BODY, strlen(ORDER_BODY), sign_only, NOW_MS, 0, &err), &err,
		       "t= is missing");
	free(sign_only);
	free(other_t);
	free(header);
}

static void verify_refuses_a_malformed_header(void **state)
{
	static const char *const headers[][2] = {
	    {"", "t= is missing"},	  {"t=1714564799", "sign= is missing"},
	    {"1714564799,abc", "no '='"}, {"t=17145x4799,sign=00", "digits"},
	    {"t=,sign=00", "digits"},	  {"t=123456789012345,sign=00", "digits"},
	    {"t=1,t=2,sign=00", "once"},  {"t=1,sign=0,sign=1,sign=2,sign=3,sign=4", "too many"},
	};
	proto_error_t err;

	(void)state;
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++)
		assert_refused(
		    verify_at(ORDER_BODY, strlen(ORDER_BODY), headers[i][0], NOW_MS, 0, &err), &err,
		    headers[i][1]);
}

static void verify_refuses_everything_without_a_configured_secret(void **state)
{
	char *header =
	    signature((const unsigned char *)"", 0, "1714564799", ORDER_BODY, strlen(ORDER_BODY));
	atl_headers_t h = {{NULL}, {NULL}};
	adapter_request_t req;
	proto_error_t err;

	(void)state;
	atl_headers_add(&h, "rappi-signature", header);
	req = atl_request(ORDER_BODY, strlen(ORDER_BODY), &h, "", 0, NOW_MS);
	assert_refused(rappi()->verify(&req, &err), &err, "no secret");
	free(header);
}

static void verify_survives_a_request_without_a_header_function(void **state)
{
	adapter_request_t req =
	    atl_request(ORDER_BODY, strlen(ORDER_BODY), NULL, SECRET, sizeof(SECRET) - 1, NOW_MS);
	proto_error_t err;

	(void)state;
	assert_refused(rappi()->verify(&req, &err), &err, "is missing");
}

/* --- the replay window ------------------------------------------------------------ */

static void a_t_older_than_the_default_window_is_refused_as_a_replay(void **state)
{
	proto_error_t err;

	(void)state;
	/* 300 s is still in; 301 s (and an hour) are not. */
	assert_int_equal(verify_signed_at(ORDER_BODY, "1714564500", 1714564800000LL, 0, &err),
			 ADAPTER_OK);
	assert_refused(verify_signed_at(ORDER_BODY, "1714564499", 1714564800000LL, 0, &err), &err,
		       "301 s before the receive time, outside the replay window of 300 s");
	assert_refused(verify_signed_at(ORDER_BODY, "1714561200", 1714564800000LL, 0, &err), &err,
		       "replayed");
}

static void a_t_ahead_of_the_receive_time_past_the_window_is_refused(void **state)
{
	proto_error_t err;

	(void)state;
	assert_int_equal(verify_signed_at(ORDER_BODY, "1714565100", 1714564800000LL, 0, &err),
			 ADAPTER_OK);
	assert_refused(verify_signed_at(ORDER_BODY, "1714565101", 1714564800000LL, 0, &err), &err,
		       "301 s after the receive time");
}

static void the_configured_window_replaces_the_default(void **state)
{
	proto_error_t err;

	(void)state;
	assert_int_equal(verify_signed_at(ORDER_BODY, "1714564790", 1714564800000LL, 10000, &err),
			 ADAPTER_OK);
	assert_refused(verify_signed_at(ORDER_BODY, "1714564789", 1714564800000LL, 10000, &err),
		       &err, "replay window of 10 s");
	assert_refused(verify_signed_at(ORDER_BODY, "1714564811", 1714564800000LL, 10000, &err),
		       &err, "after the receive time");
}

static void a_signature_of_t_zero_is_refused(void **state)
{
	proto_error_t err;

	(void)state;
	assert_refused(verify_signed_at(ORDER_BODY, "0", NOW_MS, 0, &err), &err, "replay window");
}

/* --- events ---------------------------------------------------------------------- */

static void taken_visible_order_with_courier_data_assigns_the_courier_and_the_eta(void **state)
{
	atl_parsed_t p;

	(void)state;
	post_fixture(FIXTURE("taken_visible_order.json"), &p);
	atl_assert_one_update(&p);
	assert_string_equal(p.u[0].order_id, "344949817");
	assert_string_equal(p.u[0].provider, "rappi");
	assert_int_equal(p.u[0].status, PROTO_STATUS_COURIER_ASSIGNED);
	/* ts is the signed t: event_time names no zone. */
	assert_int_equal(p.u[0].ts, T_SENT_MS);
	assert_true(p.u[0].has_courier);
	assert_string_equal(p.u[0].courier.id, "729365");
	assert_string_equal(p.u[0].courier.name, "Daletzi Karina Olmedo Plata");
	assert_string_equal(p.u[0].courier.vehicle, "");
	assert_true(p.u[0].has_eta && p.u[0].eta.has_pickup && !p.u[0].eta.has_dropoff);
	assert_int_equal(p.u[0].eta.pickup, T_SENT_MS + 147000);
	assert_false(p.u[0].has_location);
	assert_memory_equal(p.u[0].event_id, "sha256:", 7);
}

static void taken_visible_order_of_the_store_alone_is_created(void **state)
{
	atl_parsed_t p;

	(void)state;
	post_fixture(FIXTURE("taken_visible_order_store.json"), &p);
	atl_assert_one_update(&p);
	assert_string_equal(p.u[0].order_id, "109");
	assert_int_equal(p.u[0].status, PROTO_STATUS_CREATED);
	assert_false(p.u[0].has_courier);
	assert_false(p.u[0].has_eta);
}

static void replace_storekeeper_names_the_new_courier_from_first_and_last_name(void **state)
{
	atl_parsed_t p;

	(void)state;
	post_text(
	    "{\"event\":\"replace_storekeeper\",\"order_id\":\"77\",\"additional_information\":"
	    "{\"courier_data\":{\"id\":\"c-9\",\"first_name\":\"Ana\",\"last_name\":\"Ruiz\"},"
	    "\"eta_to_store\":\"60\"}}",
	    &p);
	atl_assert_one_update(&p);
	assert_int_equal(p.u[0].status, PROTO_STATUS_COURIER_ASSIGNED);
	assert_string_equal(p.u[0].courier.id, "c-9");
	assert_string_equal(p.u[0].courier.name, "Ana Ruiz");
	assert_int_equal(p.u[0].eta.pickup, T_SENT_MS + 60000);

	post_text(
	    "{\"event\":\"replace_storekeeper\",\"order_id\":\"77\",\"additional_information\":"
	    "{\"courier_data\":{\"id\":5},\"storekeeper_name\":\"Luis\"}}",
	    &p);
	atl_assert_one_update(&p);
	assert_string_equal(p.u[0].courier.name, "Luis");
	assert_false(p.u[0].has_eta);
}

static void every_order_event_maps_to_its_canonical_status(void **state)
{
	static const struct {
		const char *event;
		proto_status_t status;
	} cases[] = {
	    {"domiciliary_in_store", PROTO_STATUS_AT_PICKUP},
	    {"hand_to_domiciliary", PROTO_STATUS_PICKED_UP},
	    {"arrive", PROTO_STATUS_AT_DROPOFF},
	    {"close_order", PROTO_STATUS_DELIVERED},
	    {"cancel_by_user", PROTO_STATUS_CANCELLED},
	    {"canceled_with_charge", PROTO_STATUS_CANCELLED},
	    {"cancel_without_charges", PROTO_STATUS_CANCELLED},
	    {"cancel_by_support", PROTO_STATUS_CANCELLED},
	    {"cancel_by_support_with_charge", PROTO_STATUS_CANCELLED},
	    {"cancel_by_application_user", PROTO_STATUS_CANCELLED},
	    {"canceled_from_cms", PROTO_STATUS_CANCELLED},
	    {"canceled_by_fraud_automation", PROTO_STATUS_CANCELLED},
	    {"canceled_store_closed", PROTO_STATUS_CANCELLED},
	    {"cancel_by_sk_with_charge", PROTO_STATUS_CANCELLED},
	};
	atl_parsed_t p;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *body = atl_format("{\"event\":\"%s\",\"order_id\":\"106\",\"store_id\":"
					"\"900109448\",\"event_time\":\"2023-05-04 12:01:22\"}",
					cases[i].event);

		post_text(body, &p);
		atl_assert_one_update(&p);
		if (p.u[0].status != cases[i].status)
			fail_msg("%s gave status %d, expected %d", cases[i].event, p.u[0].status,
				 cases[i].status);
		assert_false(p.u[0].has_courier);
		free(body);
	}
}

static void the_documented_cancellation_example_is_cancelled(void **state)
{
	atl_parsed_t p;

	(void)state;
	post_fixture(FIXTURE("canceled_with_charge.json"), &p);
	atl_assert_one_update(&p);
	assert_string_equal(p.u[0].order_id, "106");
	assert_int_equal(p.u[0].status, PROTO_STATUS_CANCELLED);
}

static void ready_for_pick_up_and_unknown_events_are_ignored(void **state)
{
	atl_parsed_t p;

	(void)state;
	post_text("{\"event\":\"ready_for_pick_up\",\"order_id\":\"109\"}", &p);
	atl_assert_ignored(&p);
	/* Not looked at further: an event added later never fails. */
	post_text("{\"event\":\"drone_launched\",\"order_id\":{}}", &p);
	atl_assert_ignored(&p);
}

static void order_rt_tracking_gives_the_position_alone(void **state)
{
	atl_parsed_t p;

	(void)state;
	post_fixture(FIXTURE("order_rt_tracking.json"), &p);
	atl_assert_one_update(&p);
	assert_string_equal(p.u[0].order_id, "1234");
	assert_int_equal(p.u[0].ts, T_SENT_MS);
	assert_true(p.u[0].has_location);
	assert_float_equal(p.u[0].location.lat, 4.6711, 1e-9);
	assert_float_equal(p.u[0].location.lng, -74.0546, 1e-9);
	assert_int_equal(p.u[0].status, PROTO_STATUS_NONE);
	assert_false(p.u[0].has_eta);
	assert_false(p.u[0].has_courier);
}

static void the_documented_tracking_example_has_coordinates_out_of_range(void **state)
{
	atl_parsed_t p;

	(void)state;
	/* Rappi's own example: lat 123.3, lng 1234.5, placeholders. */
	post_fixture(FIXTURE("order_rt_tracking_doc_example.json"), &p);
	atl_assert_invalid(&p, "lat");
}

static void ping_is_ignored_and_answered_with_status_ok(void **state)
{
	const char *reply = adapter_ignored_reply(rappi());
	atl_parsed_t p;

	(void)state;
	post_fixture(FIXTURE("ping.json"), &p);
	atl_assert_ignored(&p);
	assert_non_null(reply);
	assert_non_null(strstr(reply, "\"status\":\"OK\""));
	assert_non_null(strstr(reply, "\"ignored\":true"));
	assert_null(adapter_ignored_reply(adapter_find("stuart")));
}

static void menu_and_store_events_are_ignored(void **state)
{
	atl_parsed_t p;

	(void)state;
	post_fixture(FIXTURE("menu_approved.json"), &p);
	atl_assert_ignored(&p);
	post_fixture(FIXTURE("store_connectivity.json"), &p);
	atl_assert_ignored(&p);
}

static void without_a_readable_t_ts_is_the_receive_time(void **state)
{
	adapter_request_t req =
	    atl_request(ORDER_BODY, strlen(ORDER_BODY), NULL, SECRET, sizeof(SECRET) - 1, NOW_MS);
	atl_parsed_t p;

	(void)state;
	atl_parse_into(rappi(), &req, &EXPECT, &p);
	atl_assert_one_update(&p);
	assert_int_equal(p.u[0].ts, NOW_MS);
}

static void the_event_id_is_the_body_hash_so_a_retry_is_the_same_event(void **state)
{
	char want[PROTO_EVENT_ID_MAX + 1];
	atl_parsed_t p;

	(void)state;
	adapter_body_event_id(ORDER_BODY, strlen(ORDER_BODY), want);
	post_text(ORDER_BODY, &p);
	atl_assert_one_update(&p);
	assert_string_equal(p.u[0].event_id, want);
}

/* --- malformed bodies -------------------------------------------------------------- */

static void every_field_of_the_wrong_type_is_refused_by_name(void **state)
{
	static const char *const cases[][2] = {
	    {"[1]", ""},
	    {"{\"event\":", ""},
	    {"{\"event\":7,\"order_id\":\"1\"}", "event"},
	    {"{\"event\":\"arrive\"}", "order_id"},
	    {"{\"event\":\"arrive\",\"order_id\":{}}", "order_id"},
	    {"{\"event\":\"arrive\",\"order_id\":true}", "order_id"},
	    {"{\"event\":\"arrive\",\"order_id\":1.5}", "order_id"},
	    {"{\"event\":\"arrive\",\"order_id\":-3}", "order_id"},
	    {"{\"event\":\"arrive\",\"order_id\":\"a b\"}", "order_id"},
	    {"{\"event\":\"arrive\",\"order_id\":\"\"}", "order_id"},
	    {"{\"event\":\"arrive\",\"order_id\":\"1\",\"event_time\":5}", "event_time"},
	    {"{\"event\":\"taken_visible_order\",\"order_id\":\"1\",\"additional_information\":"
	     "\"x\"}",
	     "additional_information"},
	    {"{\"event\":\"taken_visible_order\",\"order_id\":\"1\",\"additional_information\":"
	     "{\"courier_data\":[]}}",
	     "additional_information.courier_data"},
	    {"{\"event\":\"taken_visible_order\",\"order_id\":\"1\",\"additional_information\":"
	     "{\"courier_data\":{\"id\":true}}}",
	     "additional_information.courier_data.id"},
	    {"{\"event\":\"taken_visible_order\",\"order_id\":\"1\",\"additional_information\":"
	     "{\"courier_data\":{\"full_name\":1}}}",
	     "additional_information.courier_data.full_name"},
	    {"{\"event\":\"taken_visible_order\",\"order_id\":\"1\",\"additional_information\":"
	     "{\"courier_data\":{\"first_name\":[]}}}",
	     "additional_information.courier_data.first_name"},
	    {"{\"event\":\"taken_visible_order\",\"order_id\":\"1\",\"additional_information\":"
	     "{\"courier_data\":{\"last_name\":{}}}}",
	     "additional_information.courier_data.last_name"},
	    {"{\"event\":\"replace_storekeeper\",\"order_id\":\"1\",\"additional_information\":"
	     "{\"storekeeper_name\":2}}",
	     "additional_information.storekeeper_name"},
	    {"{\"event\":\"replace_storekeeper\",\"order_id\":\"1\",\"additional_information\":"
	     "{\"eta_to_store\":\"soon\"}}",
	     "additional_information.eta_to_store"},
	    {"{\"event\":\"replace_storekeeper\",\"order_id\":\"1\",\"additional_information\":"
	     "{\"eta_to_store\":-1}}",
	     "additional_information.eta_to_store"},
	    {"{\"event\":\"replace_storekeeper\",\"order_id\":\"1\",\"additional_information\":"
	     "{\"eta_to_store\":86401}}",
	     "additional_information.eta_to_store"},
	    {"{\"lat\":4.6,\"lng\":-74.0}", "order_id"},
	    {"{\"lat\":\"north\",\"lng\":-74.0,\"order_id\":1}", "lat"},
	    {"{\"lat\":4.6,\"lng\":[],\"order_id\":1}", "lng"},
	    {"{\"lat\":4.6,\"lng\":200,\"order_id\":1}", "lng"},
	    {"{\"lat\":4.6,\"order_id\":1}", "lng"},
	    {"{\"lng\":-74.0,\"order_id\":1}", "lat"},
	    {"{\"lat\":4.6,\"lng\":-74.0,\"order_id\":null}", "order_id"},
	};
	atl_parsed_t p;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		post_text(cases[i][0], &p);
		if (p.rc != ADAPTER_EINVAL || strcmp(p.err.field, cases[i][1]) != 0)
			fail_msg("%s: rc %d field \"%s\" (%s), expected 400 naming \"%s\"",
				 cases[i][0], p.rc, p.err.field, p.err.message, cases[i][1]);
		atl_assert_invalid(&p, cases[i][1]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(verify_accepts_the_hmac_of_t_dot_body_with_t_in_seconds),
	    cmocka_unit_test(verify_accepts_t_in_milliseconds),
	    cmocka_unit_test(verify_accepts_blanks_other_keys_and_a_second_sign),
	    cmocka_unit_test(verify_refuses_a_missing_signature_header),
	    cmocka_unit_test(verify_refuses_a_signature_under_another_key),
	    cmocka_unit_test(verify_refuses_a_changed_body_or_t),
	    cmocka_unit_test(verify_refuses_a_malformed_header),
	    cmocka_unit_test(verify_refuses_everything_without_a_configured_secret),
	    cmocka_unit_test(verify_survives_a_request_without_a_header_function),
	    cmocka_unit_test(a_t_older_than_the_default_window_is_refused_as_a_replay),
	    cmocka_unit_test(a_t_ahead_of_the_receive_time_past_the_window_is_refused),
	    cmocka_unit_test(the_configured_window_replaces_the_default),
	    cmocka_unit_test(a_signature_of_t_zero_is_refused),
	    cmocka_unit_test(taken_visible_order_with_courier_data_assigns_the_courier_and_the_eta),
	    cmocka_unit_test(taken_visible_order_of_the_store_alone_is_created),
	    cmocka_unit_test(replace_storekeeper_names_the_new_courier_from_first_and_last_name),
	    cmocka_unit_test(every_order_event_maps_to_its_canonical_status),
	    cmocka_unit_test(the_documented_cancellation_example_is_cancelled),
	    cmocka_unit_test(ready_for_pick_up_and_unknown_events_are_ignored),
	    cmocka_unit_test(order_rt_tracking_gives_the_position_alone),
	    cmocka_unit_test(the_documented_tracking_example_has_coordinates_out_of_range),
	    cmocka_unit_test(ping_is_ignored_and_answered_with_status_ok),
	    cmocka_unit_test(menu_and_store_events_are_ignored),
	    cmocka_unit_test(without_a_readable_t_ts_is_the_receive_time),
	    cmocka_unit_test(the_event_id_is_the_body_hash_so_a_retry_is_the_same_event),
	    cmocka_unit_test(every_field_of_the_wrong_type_is_refused_by_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
