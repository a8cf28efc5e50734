/*
 * test_adapter_wolt_drive.c - adapters/wolt_drive.c: the JWT check (HS256
 * only, with the merchant's client secret) and the mapping of Wolt Drive
 * events to canonical updates.
 *
 * The fixtures in fixtures/wolt_drive/ are the claims of the events, shaped
 * like Wolt's documented payload (type, dispatched_at, details); each test
 * signs them here, with libjwt for well-formed tokens and by hand (OpenSSL
 * HMAC) for the malformed ones libjwt would refuse to build.
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
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "adapter_testlib.h"

#define SECRET "wolt-client-secret-7Hq2"
#define NOW_MS 1714650000000LL

/* What every update must keep through proto, besides order_id, event_id, ts and status. */
static const atl_expect_t EXPECT = {"wolt_drive", 1, ATL_CHECK_EVENT_ID | ATL_CHECK_PRESENCE};

/* cmocka 1.1 has no assert_double_equal. */
#define assert_near(a, b) assert_true(fabs((double)(a) - (double)(b)) < 1e-9)

/* --- helpers -------------------------------------------------------------------- */

/* The claims in fixtures/wolt_drive/name, NUL-terminated (the caller frees them). */
static char *load_fixture(const char *name)
{
	return atl_load_fixture("wolt_drive", name, NULL);
}

/* A token for claims, signed by libjwt with alg under key. */
static char *mint(const char *claims, jwt_alg_t alg, const char *key)
{
	jwt_t *jwt = NULL;
	char *token;

	assert_int_equal(jwt_new(&jwt), 0);
	assert_int_equal(jwt_add_grants_json(jwt, claims), 0);
	if (alg == JWT_ALG_NONE)
		assert_int_equal(jwt_set_alg(jwt, alg, NULL, 0), 0);
	else
		assert_int_equal(
		    jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)strlen(key)), 0);
	token = jwt_encode_str(jwt);
	assert_non_null(token);
	jwt_free(jwt);
	return token;
}

/* base64url without padding of in[0..len), appended to out (malloc'd by the caller). */
static void b64url_append(char *out, const void *in, size_t len)
{
	size_t cap = 4 * ((len + 2) / 3) + 1;
	char *tmp = malloc(cap);
	int n;

	assert_non_null(tmp);
	n = EVP_EncodeBlock((unsigned char *)tmp, in, (int)len);
	while (n > 0 && tmp[n - 1] == '=')
		n--;
	for (int i = 0; i < n; i++)
		tmp[i] = tmp[i] == '+' ? '-' : tmp[i] == '/' ? '_' : tmp[i];
	tmp[n] = '\0';
	strcat(out, tmp);
	free(tmp);
}

/*
 * A token built by hand: base64url(header).base64url(claims).signature,
 * where the signature is the HMAC with md (NULL: empty, as for alg none)
 * under key.  Claims may hold any bytes.
 */
static char *hand_token(const char *header, const char *claims, size_t claims_len, const EVP_MD *md,
			const char *key)
{
	size_t cap = 4 * (strlen(header) + claims_len + 64) / 3 + 256;
	char *token = calloc(1, cap);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;

	assert_non_null(token);
	b64url_append(token, header, strlen(header));
	strcat(token, ".");
	b64url_append(token, claims, claims_len);
	if (md != NULL) {
		assert_non_null(HMAC(md, key, (int)strlen(key), (const unsigned char *)token,
				     strlen(token), mac, &mac_len));
		strcat(token, ".");
		b64url_append(token, mac, mac_len);
	} else {
		strcat(token, ".");
	}
	return token;
}

/* The documented body: {"token": "<JWT>"}. */
static char *envelope(const char *token)
{
	size_t len = strlen(token) + 16;
	char *body = malloc(len);

	assert_non_null(body);
	snprintf(body, len, "{\"token\":\"%s\"}", token);
	return body;
}

/* A request without headers (the token is in the body). */
static adapter_request_t request(const char *body, size_t len, const char *secret)
{
	return atl_request(body, len, NULL, secret, secret != NULL ? strlen(secret) : 0, NOW_MS);
}

/*
 * verify then parse of body, as the gateway runs them; returns the first
 * failure, or what parse returned.  Checks every update against proto.
 */
static int run_body(const char *body, size_t len, const char *secret, proto_update_t *u, int *n,
		    proto_error_t *err)
{
	adapter_request_t req = request(body, len, secret);

	return atl_verify_then_parse(&adapter_wolt_drive, &req, u, n, err, &EXPECT);
}

/* Signs claims (HS256, the test secret) into the documented envelope and runs it. */
static int run_claims(const char *claims, proto_update_t *u, int *n, proto_error_t *err)
{
	char *token = mint(claims, JWT_ALG_HS256, SECRET);
	char *body = envelope(token);
	int rc = run_body(body, strlen(body), SECRET, u, n, err);

	free(body);
	free(token);
	return rc;
}

static int run_fixture(const char *name, proto_update_t *u, int *n, proto_error_t *err)
{
	char *claims = load_fixture(name);
	int rc = run_claims(claims, u, n, err);

	free(claims);
	return rc;
}

/* Runs a hand-made token in the envelope with the test secret. */
static int run_token(const char *token, proto_update_t *u, int *n, proto_error_t *err)
{
	char *body = envelope(token);
	int rc = run_body(body, strlen(body), SECRET, u, n, err);

	free(body);
	return rc;
}

#define HS256_HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

/* --- every event type ----------------------------------------------------------- */

static void each_event_type_maps_to_its_canonical_status(void **state)
{
	static const struct {
		const char *fixture;
		proto_status_t status;
	} cases[] = {
	    {"order_received.json", PROTO_STATUS_CREATED},
	    {"order_rejected.json", PROTO_STATUS_CANCELLED},
	    {"order_cancelled.json", PROTO_STATUS_CANCELLED},
	    {"order_pickup_eta_updated.json", PROTO_STATUS_NONE},
	    {"order_pickup_started.json", PROTO_STATUS_EN_ROUTE_TO_PICKUP},
	    {"order_pickup_arrival.json", PROTO_STATUS_AT_PICKUP},
	    {"order_picked_up.json", PROTO_STATUS_PICKED_UP},
	    {"order_dropoff_started.json", PROTO_STATUS_EN_ROUTE_TO_DROPOFF},
	    {"order_dropoff_eta_updated.json", PROTO_STATUS_NONE},
	    {"order_dropoff_arrival.json", PROTO_STATUS_AT_DROPOFF},
	    {"order_customer_no_show.json", PROTO_STATUS_FAILED},
	    {"order_dropoff_completed.json", PROTO_STATUS_DELIVERED},
	    {"order_delivered.json", PROTO_STATUS_DELIVERED},
	    {"order_location_updated.json", PROTO_STATUS_NONE},
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
		assert_string_equal(u[0].order_id, "ord-1001");
		assert_string_equal(u[0].provider, "wolt_drive");
	}
}

static void picked_up_carries_position_etas_and_courier(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(run_fixture("order_picked_up.json", u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_int_equal(u[0].ts, 1714644930123LL); /* dispatched_at, microseconds cut to ms */
	assert_true(u[0].has_location);
	assert_near(u[0].location.lat, 60.1699);
	assert_near(u[0].location.lng, 24.9384); /* from "lon" */
	assert_true(u[0].has_eta && u[0].eta.has_pickup && u[0].eta.has_dropoff);
	assert_int_equal(u[0].eta.pickup, 1714644840000LL);
	assert_int_equal(u[0].eta.dropoff, 1714646100000LL); /* 13:35+03:00 */
	assert_true(u[0].has_courier);
	assert_string_equal(u[0].courier.id, "48213"); /* a JSON number */
	assert_string_equal(u[0].courier.vehicle, "bicycle");
	assert_string_equal(u[0].courier.name, "");
}

static void location_updated_reads_lat_and_lon(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(run_fixture("order_location_updated.json", u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_int_equal(u[0].status, PROTO_STATUS_NONE);
	assert_true(u[0].has_location);
	assert_near(u[0].location.lat, 60.1720);
	assert_near(u[0].location.lng, 24.9450);
	assert_false(u[0].has_eta);
	assert_false(u[0].has_courier);
	assert_int_equal(u[0].ts, 1714645500000LL);

	/* Location-only even when the event repeats ETAs and the courier: it may be coalesced. */
	assert_int_equal(
	    run_claims("{\"type\":\"order.location_updated\",\"details\":{"
		       "\"merchant_order_reference_id\":\"ord-1\",\"courier_location\":"
		       "{\"lat\":1,\"lon\":2},\"pickup\":{\"eta\":1714644840},"
		       "\"courier\":{\"id\":\"c1\"}}}",
		       u, &n, &err),
	    ADAPTER_OK);
	assert_true(u[0].has_location);
	assert_false(u[0].has_eta);
	assert_false(u[0].has_courier);
}

static void string_coordinates_are_read_as_numbers(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(run_fixture("location_string_coordinates.json", u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_near(u[0].location.lat, 60.1722);
	assert_near(u[0].location.lng, 24.9455);
}

static void eta_events_carry_only_the_eta(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(run_fixture("order_pickup_eta_updated.json", u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_true(u[0].eta.has_pickup);
	assert_false(u[0].eta.has_dropoff);
	assert_int_equal(u[0].eta.pickup, 1714644840000LL);
	assert_false(u[0].has_location);
}

static void dropoff_eta_range_uses_its_max(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(run_fixture("order_dropoff_eta_updated.json", u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_true(u[0].eta.has_dropoff);
	assert_int_equal(u[0].eta.dropoff, 1714646280000LL);

	/* Only a min: the min. */
	assert_int_equal(
	    run_claims("{\"type\":\"order.dropoff_eta_updated\","
		       "\"dispatched_at\":\"2024-05-02T10:20:00Z\",\"details\":{"
		       "\"merchant_order_reference_id\":\"ord-1\",\"dropoff\":{\"eta\":"
		       "{\"min\":\"2024-05-02T10:30:00Z\",\"max\":null}}}}",
		       u, &n, &err),
	    ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_int_equal(u[0].eta.dropoff, 1714645800000LL);

	/* An empty range carries no ETA, so the event has nothing to track. */
	assert_int_equal(
	    run_claims("{\"type\":\"order.dropoff_eta_updated\",\"details\":{"
		       "\"merchant_order_reference_id\":\"ord-1\",\"dropoff\":{\"eta\":{}}}}",
		       u, &n, &err),
	    ADAPTER_OK);
	assert_int_equal(n, 0);
}

/* --- missing fields, nothing to track, unknown types --------------------------- */

static void missing_optional_fields_give_a_status_only_update(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(run_fixture("picked_up_minimal.json", u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_int_equal(u[0].status, PROTO_STATUS_PICKED_UP);
	assert_false(u[0].has_location);
	assert_false(u[0].has_eta);
	assert_false(u[0].has_courier);
}

static void missing_dispatched_at_uses_the_receive_time(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(run_claims("{\"type\":\"order.delivered\",\"details\":"
				    "{\"merchant_order_reference_id\":\"ord-1\"}}",
				    u, &n, &err),
			 ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_int_equal(u[0].ts, NOW_MS);
}

static void an_event_with_nothing_to_track_gives_no_update(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(run_fixture("order_handshake_delivery.json", u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 0);
	/* A location event without a location, and without any order key: still nothing. */
	assert_int_equal(
	    run_claims("{\"type\":\"order.location_updated\",\"details\":{}}", u, &n, &err),
	    ADAPTER_OK);
	assert_int_equal(n, 0);
}

static void an_unknown_event_type_gives_no_update(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(run_fixture("unknown_type.json", u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 0);
	/* Unknown types are not looked at further, even when oddly shaped. */
	assert_int_equal(run_claims("{\"type\":\"venue.closed\",\"details\":7}", u, &n, &err),
			 ADAPTER_OK);
	assert_int_equal(n, 0);
}

/* --- the order key ---------------------------------------------------------------- */

static void the_order_key_falls_back_to_the_delivery_id(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(run_fixture("order_key_from_details_id.json", u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_string_equal(u[0].order_id, "6633645f9a5c1b0e7d2f4a10");
	/* An empty merchant reference counts as absent too. */
	assert_int_equal(run_claims("{\"type\":\"order.picked_up\",\"details\":{"
				    "\"merchant_order_reference_id\":\"\",\"id\":\"d-9\"}}",
				    u, &n, &err),
			 ADAPTER_OK);
	assert_string_equal(u[0].order_id, "d-9");
}

static void a_missing_order_key_is_an_error_naming_it(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(run_claims("{\"type\":\"order.picked_up\",\"details\":{}}", u, &n, &err),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "details.merchant_order_reference_id");
}

static void an_order_key_trackgate_cannot_use_is_an_error_naming_it(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	assert_int_equal(run_claims("{\"type\":\"order.picked_up\",\"details\":{"
				    "\"merchant_order_reference_id\":\"order #17\"}}",
				    u, &n, &err),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "details.merchant_order_reference_id");
	assert_int_equal(run_claims("{\"type\":\"order.picked_up\",\"details\":{"
				    "\"merchant_order_reference_id\":\"\",\"id\":\"a/b\"}}",
				    u, &n, &err),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "details.id");
}

/* --- times ------------------------------------------------------------------------ */

static void every_time_format_becomes_epoch_ms(void **state)
{
	static const struct {
		const char *value; /* as JSON */
		int64_t ms;
	} cases[] = {
	    {"\"2024-05-02T10:15:30Z\"", 1714644930000LL},
	    {"\"2024-05-02T10:15:30.123456Z\"", 1714644930123LL},
	    {"\"2024-05-02T12:15:30.5+02:00\"", 1714644930500LL},
	    {"\"2024-05-02 10:15:30z\"", 1714644930000LL},
	    {"1714644930", 1714644930000LL},
	    {"1714644930.25", 1714644930250LL},
	    {"1714644930123", 1714644930123LL},
	    {"\"1714644930123\"", 1714644930123LL},
	};
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	char claims[256];
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(claims, sizeof(claims),
			 "{\"type\":\"order.picked_up\",\"dispatched_at\":%s,\"details\":{"
			 "\"merchant_order_reference_id\":\"ord-1\",\"pickup\":{\"eta\":%s}}}",
			 cases[i].value, cases[i].value);
		if (run_claims(claims, u, &n, &err) != ADAPTER_OK || n != 1)
			fail_msg("%s: %s %s", cases[i].value, err.field, err.message);
		assert_int_equal(u[0].ts, cases[i].ms);
		assert_int_equal(u[0].eta.pickup, cases[i].ms);
	}
}

static void a_bad_time_is_an_error_naming_it(void **state)
{
	static const char *const values[] = {
	    "\"yesterday\"",
	    "\"2024-13-02T10:15:30Z\"",
	    "\"2024-05-02T10:15:30\"",
	    "true",
	    "{}",
	    "-5",
	    "1e300",
	    "\"\"",
	};
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	char claims[256];
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		snprintf(claims, sizeof(claims),
			 "{\"type\":\"order.picked_up\",\"dispatched_at\":%s,\"details\":{"
			 "\"merchant_order_reference_id\":\"ord-1\"}}",
			 values[i]);
		if (run_claims(claims, u, &n, &err) != ADAPTER_EINVAL)
			fail_msg("dispatched_at %s was accepted", values[i]);
		assert_string_equal(err.field, "dispatched_at");
	}
}

/* --- the token ---------------------------------------------------------------------- */

static void a_bare_jwt_body_is_accepted_too(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	char *claims = load_fixture("order_delivered.json");
	char *token = mint(claims, JWT_ALG_HS256, SECRET);
	char body[4096];
	int n;

	(void)state;
	snprintf(body, sizeof(body), "  %s\r\n", token);
	assert_int_equal(run_body(body, strlen(body), SECRET, u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_int_equal(u[0].status, PROTO_STATUS_DELIVERED);
	free(token);
	free(claims);
}

static void a_wrong_or_missing_secret_is_refused(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	char *claims = load_fixture("order_picked_up.json");
	char *token = mint(claims, JWT_ALG_HS256, "another-merchant-secret");
	char *body = envelope(token);
	adapter_request_t req = request(body, strlen(body), SECRET);
	int n;

	(void)state;
	assert_int_equal(run_body(body, strlen(body), SECRET, u, &n, &err), ADAPTER_EAUTH);
	assert_string_equal(err.field, "token");
	/* parse checks the token too: it never trusts a body it was handed. */
	assert_int_equal(adapter_wolt_drive.parse(&req, u, ADAPTER_UPDATES_MAX, &n, &err),
			 ADAPTER_EAUTH);
	assert_int_equal(n, 0);
	/* No secret configured. */
	assert_int_equal(run_body(body, strlen(body), NULL, u, &n, &err), ADAPTER_EAUTH);
	assert_int_equal(run_body(body, strlen(body), "", u, &n, &err), ADAPTER_EAUTH);
	free(body);
	free(token);
	free(claims);
}

static void a_body_without_a_token_is_refused(void **state)
{
	static const char *const bodies[] = {
	    "",
	    "   ",
	    "{}",
	    "{\"token\":null}",
	    "{\"token\":42}",
	    "{\"token\":\"\"}",
	    "{\"token\":\"not-a-jwt\"}",
	    "{\"token\":\"a.b.c\"}",
	    "{\"tok",
	    "[\"eyJ.eyJ.sig\"]",
	    "hello world",
	    "eyJhbGciOiJIUzI1NiJ9.e30",
	};
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		if (run_body(bodies[i], strlen(bodies[i]), SECRET, u, &n, &err) != ADAPTER_EAUTH)
			fail_msg("body %s was not refused", bodies[i]);
}

static void alg_none_is_refused(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	char *claims = load_fixture("order_picked_up.json");
	char *token = mint(claims, JWT_ALG_NONE, NULL);
	char *hand;
	int n;

	(void)state;
	assert_int_equal(run_token(token, u, &n, &err), ADAPTER_EAUTH);
	/* "none" with an HS256 MAC appended, and with the alg spelled otherwise. */
	hand = hand_token("{\"alg\":\"none\",\"typ\":\"JWT\"}", claims, strlen(claims),
			  EVP_sha256(), SECRET);
	assert_int_equal(run_token(hand, u, &n, &err), ADAPTER_EAUTH);
	free(hand);
	hand = hand_token("{\"alg\":\"None\"}", claims, strlen(claims), NULL, SECRET);
	assert_int_equal(run_token(hand, u, &n, &err), ADAPTER_EAUTH);
	free(hand);
	hand = hand_token("{\"typ\":\"JWT\"}", claims, strlen(claims), NULL, SECRET);
	assert_int_equal(run_token(hand, u, &n, &err), ADAPTER_EAUTH);
	free(hand);
	free(token);
	free(claims);
}

static void hs384_and_hs512_are_refused_even_with_the_right_secret(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	char *claims = load_fixture("order_picked_up.json");
	char *token;
	int n;

	(void)state;
	token = mint(claims, JWT_ALG_HS512, SECRET);
	assert_int_equal(run_token(token, u, &n, &err), ADAPTER_EAUTH);
	assert_non_null(strstr(err.message, "HS256"));
	free(token);
	token = mint(claims, JWT_ALG_HS384, SECRET);
	assert_int_equal(run_token(token, u, &n, &err), ADAPTER_EAUTH);
	free(token);
	free(claims);
}

static void a_tampered_payload_or_signature_is_refused(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	char *claims = load_fixture("order_picked_up.json");
	char *token = mint(claims, JWT_ALG_HS256, SECRET);
	char *forged, *other_claims, *other;
	int n;

	(void)state;
	assert_int_equal(run_token(token, u, &n, &err), ADAPTER_OK);

	/* The claims of another event under the first event's signature. */
	other_claims = load_fixture("order_delivered.json");
	other = mint(other_claims, JWT_ALG_HS256, SECRET);
	forged = calloc(1, strlen(token) + strlen(other) + 1);
	assert_non_null(forged);
	memcpy(forged, other, (size_t)(strrchr(other, '.') - other)); /* header.claims */
	strcat(forged, strrchr(token, '.'));			      /* token's signature */
	assert_int_equal(run_token(forged, u, &n, &err), ADAPTER_EAUTH);
	free(forged);

	/* One character of the signature changed. */
	forged = strdup(token);
	assert_non_null(forged);
	forged[strlen(forged) - 2] = forged[strlen(forged) - 2] == 'A' ? 'B' : 'A';
	assert_int_equal(run_token(forged, u, &n, &err), ADAPTER_EAUTH);
	free(forged);

	/* The signature cut off. */
	forged = strdup(token);
	assert_non_null(forged);
	*(strrchr(forged, '.') + 1) = '\0';
	assert_int_equal(run_token(forged, u, &n, &err), ADAPTER_EAUTH);
	free(forged);

	free(other);
	free(other_claims);
	free(token);
	free(claims);
}

/* --- malformed claims ----------------------------------------------------------------- */

static void wrong_types_are_errors_naming_the_field(void **state)
{
	static const struct {
		const char *claims;
		const char *field;
	} cases[] = {
	    {"{\"type\":7}", "type"},
	    {"{\"details\":{}}", "type"},
	    {"{\"type\":\"order.picked_up\",\"details\":\"ord-1\"}", "details"},
	    {"{\"type\":\"order.picked_up\",\"details\":{\"merchant_order_reference_id\":1}}",
	     "details.merchant_order_reference_id"},
	    {"{\"type\":\"order.picked_up\",\"details\":{\"merchant_order_reference_id\":\"o\","
	     "\"courier_location\":[60.1,24.9]}}",
	     "details.courier_location"},
	    {"{\"type\":\"order.picked_up\",\"details\":{\"merchant_order_reference_id\":\"o\","
	     "\"courier_location\":{\"lat\":true,\"lon\":24.9}}}",
	     "details.courier_location.lat"},
	    {"{\"type\":\"order.picked_up\",\"details\":{\"merchant_order_reference_id\":\"o\","
	     "\"courier_location\":{\"lat\":60.1}}}",
	     "details.courier_location.lon"},
	    {"{\"type\":\"order.picked_up\",\"details\":{\"merchant_order_reference_id\":\"o\","
	     "\"courier_location\":{\"lat\":91,\"lon\":24.9}}}",
	     "details.courier_location.lat"},
	    {"{\"type\":\"order.picked_up\",\"details\":{\"merchant_order_reference_id\":\"o\","
	     "\"courier_location\":{\"lat\":60,\"lon\":\"east\"}}}",
	     "details.courier_location.lon"},
	    {"{\"type\":\"order.picked_up\",\"details\":{\"merchant_order_reference_id\":\"o\","
	     "\"pickup\":{\"eta\":[1]}}}",
	     "details.pickup.eta"},
	    {"{\"type\":\"order.picked_up\",\"details\":{\"merchant_order_reference_id\":\"o\","
	     "\"dropoff\":{\"eta\":{\"max\":false}}}}",
	     "details.dropoff.eta.max"},
	    {"{\"type\":\"order.picked_up\",\"details\":{\"merchant_order_reference_id\":\"o\","
	     "\"courier\":{\"id\":{}}}}",
	     "details.courier.id"},
	    {"{\"type\":\"order.picked_up\",\"details\":{\"merchant_order_reference_id\":\"o\","
	     "\"courier\":{\"id\":1.5}}}",
	     "details.courier.id"},
	    {"{\"type\":\"order.picked_up\",\"details\":{\"merchant_order_reference_id\":\"o\","
	     "\"courier\":{\"vehicle_type\":3}}}",
	     "details.courier.vehicle_type"},
	    {"{\"type\":\"order.picked_up\",\"details\":{\"merchant_order_reference_id\":\"o\","
	     "\"courier\":\"bike\"}}",
	     "details.courier"},
	};
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = run_claims(cases[i].claims, u, &n, &err);
		if (rc != ADAPTER_EINVAL)
			fail_msg("%s: rc %d, want EINVAL", cases[i].claims, rc);
		if (strcmp(err.field, cases[i].field) != 0)
			fail_msg("%s: field %s (%s), want %s", cases[i].claims, err.field,
				 err.message, cases[i].field);
	}
}

static void signed_claims_that_are_not_json_are_a_400_not_a_401(void **state)
{
	static const char truncated[] = "{\"type\":\"order.picked_up\",\"details\":{\"merc";
	static const char not_utf8[] = "{\"type\":\"order.picked_up\",\"x\":\"\xff\xfe\","
				       "\"details\":{\"merchant_order_reference_id\":\"o\"}}";
	static const char big_int[] = "{\"type\":\"order.picked_up\",\"n\":"
				      "123456789012345678901234567890123456789,"
				      "\"details\":{\"merchant_order_reference_id\":\"o\"}}";
	static const char *const cases[] = {truncated, not_utf8, big_int, "[1,2]", ""};
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	char *token;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		token = hand_token(HS256_HEADER, cases[i], strlen(cases[i]), EVP_sha256(), SECRET);
		if (run_token(token, u, &n, &err) != ADAPTER_EINVAL)
			fail_msg("claims %zu: %s %s", i, err.field, err.message);
		assert_string_equal(err.field, "token");
		free(token);
		/* The same claims signed with another key stay a 401. */
		token = hand_token(HS256_HEADER, cases[i], strlen(cases[i]), EVP_sha256(), "x");
		assert_int_equal(run_token(token, u, &n, &err), ADAPTER_EAUTH);
		free(token);
	}
}

static void a_truncated_or_non_utf8_body_is_refused(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	char *claims = load_fixture("order_picked_up.json");
	char *token = mint(claims, JWT_ALG_HS256, SECRET);
	char *body = envelope(token);
	size_t len = strlen(body);
	int n;

	(void)state;
	/* Every truncation of the body: none may pass, none may crash. */
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(run_body(body, cut, SECRET, u, &n, &err), ADAPTER_EAUTH);
	/* A non-UTF-8 byte in the envelope. */
	body[len - 1] = '\xff';
	assert_int_equal(run_body(body, len, SECRET, u, &n, &err), ADAPTER_EAUTH);
	/* A NUL byte inside the token. */
	body[len - 1] = '}';
	body[20] = '\0';
	assert_int_equal(run_body(body, len, SECRET, u, &n, &err), ADAPTER_EAUTH);
	free(body);
	free(token);
	free(claims);
}

static void huge_numbers_are_errors(void **state)
{
	static const struct {
		const char *claims;
		const char *field;
	} cases[] = {
	    {"{\"type\":\"order.picked_up\",\"dispatched_at\":1e300,\"details\":"
	     "{\"merchant_order_reference_id\":\"o\"}}",
	     "dispatched_at"},
	    {"{\"type\":\"order.picked_up\",\"dispatched_at\":99999999999999999,\"details\":"
	     "{\"merchant_order_reference_id\":\"o\"}}",
	     "dispatched_at"},
	    {"{\"type\":\"order.picked_up\",\"details\":{\"merchant_order_reference_id\":\"o\","
	     "\"courier_location\":{\"lat\":1e308,\"lon\":1e308}}}",
	     "details.courier_location.lat"},
	    {"{\"type\":\"order.picked_up\",\"details\":{\"merchant_order_reference_id\":\"o\","
	     "\"courier_location\":{\"lat\":\"1e999\",\"lon\":0}}}",
	     "details.courier_location.lat"},
	    {"{\"type\":\"order.picked_up\",\"details\":{\"merchant_order_reference_id\":\"o\","
	     "\"courier\":{\"id\":1e20}}}",
	     "details.courier.id"},
	    {"{\"type\":\"order.picked_up\",\"details\":{\"merchant_order_reference_id\":\"o\","
	     "\"pickup\":{\"eta\":\"99999-01-01T00:00:00Z\"}}}",
	     "details.pickup.eta"},
	};
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = run_claims(cases[i].claims, u, &n, &err);
		if (rc != ADAPTER_EINVAL || strcmp(err.field, cases[i].field) != 0)
			fail_msg("%s: rc %d field %s, want EINVAL %s", cases[i].claims, rc,
				 err.field, cases[i].field);
	}
}

static void a_60_kib_body_is_handled(void **state)
{
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	static const char head[] =
	    "{\"type\":\"order.location_updated\",\"dispatched_at\":\"2024-05-02T10:25:00Z\","
	    "\"details\":{\"merchant_order_reference_id\":\"ord-1001\",\"courier_location\":"
	    "{\"lat\":60.17,\"lon\":24.94},\"note\":\"";
	size_t pad = 46 * 1024;
	char *claims = malloc(sizeof(head) + pad + 8);
	char *token, *body;
	int n;

	(void)state;
	assert_non_null(claims);
	memcpy(claims, head, sizeof(head) - 1);
	memset(claims + sizeof(head) - 1, 'x', pad);
	strcpy(claims + sizeof(head) - 1 + pad, "\"}}");
	token = mint(claims, JWT_ALG_HS256, SECRET);
	body = envelope(token);
	assert_true(strlen(body) > 60 * 1024);
	assert_int_equal(run_body(body, strlen(body), SECRET, u, &n, &err), ADAPTER_OK);
	assert_int_equal(n, 1);
	assert_near(u[0].location.lat, 60.17);

	/* 60 KiB of noise is refused, not crashed on. */
	memset(body, 'A', strlen(body));
	assert_int_equal(run_body(body, strlen(body), SECRET, u, &n, &err), ADAPTER_EAUTH);
	free(body);
	free(token);
	free(claims);
}

/* --- de-duplication ----------------------------------------------------------------- */

static void a_retried_webhook_has_the_same_event_id(void **state)
{
	proto_update_t first[ADAPTER_UPDATES_MAX], again[ADAPTER_UPDATES_MAX];
	proto_update_t other[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	char *claims = load_fixture("order_picked_up.json");
	char *token = mint(claims, JWT_ALG_HS256, SECRET);
	char *body = envelope(token);
	char *other_claims = load_fixture("order_delivered.json");
	char *other_token = mint(other_claims, JWT_ALG_HS256, SECRET);
	char *other_body = envelope(other_token);
	int n;

	(void)state;
	assert_int_equal(run_body(body, strlen(body), SECRET, first, &n, &err), ADAPTER_OK);
	assert_int_equal(run_body(body, strlen(body), SECRET, again, &n, &err), ADAPTER_OK);
	assert_int_equal(strncmp(first[0].event_id, "sha256:", 7), 0);
	assert_string_equal(first[0].event_id, again[0].event_id);
	assert_int_equal(run_body(other_body, strlen(other_body), SECRET, other, &n, &err),
			 ADAPTER_OK);
	assert_string_not_equal(first[0].event_id, other[0].event_id);
	free(other_body);
	free(other_token);
	free(other_claims);
	free(body);
	free(token);
	free(claims);
}

static void the_adapter_is_registered_as_wolt_drive(void **state)
{
	(void)state;
	assert_ptr_equal(adapter_find("wolt_drive"), &adapter_wolt_drive);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(each_event_type_maps_to_its_canonical_status),
	    cmocka_unit_test(picked_up_carries_position_etas_and_courier),
	    cmocka_unit_test(location_updated_reads_lat_and_lon),
	    cmocka_unit_test(string_coordinates_are_read_as_numbers),
	    cmocka_unit_test(eta_events_carry_only_the_eta),
	    cmocka_unit_test(dropoff_eta_range_uses_its_max),
	    cmocka_unit_test(missing_optional_fields_give_a_status_only_update),
	    cmocka_unit_test(missing_dispatched_at_uses_the_receive_time),
	    cmocka_unit_test(an_event_with_nothing_to_track_gives_no_update),
	    cmocka_unit_test(an_unknown_event_type_gives_no_update),
	    cmocka_unit_test(the_order_key_falls_back_to_the_delivery_id),
	    cmocka_unit_test(a_missing_order_key_is_an_error_naming_it),
	    cmocka_unit_test(an_order_key_trackgate_cannot_use_is_an_error_naming_it),
	    cmocka_unit_test(every_time_format_becomes_epoch_ms),
	    cmocka_unit_test(a_bad_time_is_an_error_naming_it),
	    cmocka_unit_test(a_bare_jwt_body_is_accepted_too),
	    cmocka_unit_test(a_wrong_or_missing_secret_is_refused),
	    cmocka_unit_test(a_body_without_a_token_is_refused),
	    cmocka_unit_test(alg_none_is_refused),
	    cmocka_unit_test(hs384_and_hs512_are_refused_even_with_the_right_secret),
	    cmocka_unit_test(a_tampered_payload_or_signature_is_refused),
	    cmocka_unit_test(wrong_types_are_errors_naming_the_field),
	    cmocka_unit_test(signed_claims_that_are_not_json_are_a_400_not_a_401),
	    cmocka_unit_test(a_truncated_or_non_utf8_body_is_refused),
	    cmocka_unit_test(huge_numbers_are_errors),
	    cmocka_unit_test(a_60_kib_body_is_handled),
	    cmocka_unit_test(a_retried_webhook_has_the_same_event_id),
	    cmocka_unit_test(the_adapter_is_registered_as_wolt_drive),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
