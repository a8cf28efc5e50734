/*
 * test_poll_auth.c - gateway/poll/poll_auth.c: the Uber Direct token
 * request and cache, DoorDash Drive's self-minted JWT (decoded and its
 * signature checked here with OpenSSL, independently of the module), and
 * Onfleet's Basic header.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cjson/cJSON.h>

#include "poll_auth.h"

#define NOW 1714650000000LL

static const char token_fixture[] =
    "{\"access_token\":\"IA.VUNmGAAAAAAAEgASAAAABwAIAAwAAA\",\"expires_in\":2592000,"
    "\"token_type\":\"Bearer\",\"scope\":\"eats.deliveries\"}";

/* --- Uber Direct: the request ------------------------------------------------------- */

static void the_token_request_is_the_documented_form_body(void **state)
{
	char body[256];
	int n;

	(void)state;
	n = poll_oauth_request_body("my-client", "s3cr3t", NULL, body, sizeof(body));
	assert_int_equal(n, (int)strlen(body));
	assert_string_equal(body, "grant_type=client_credentials&client_id=my-client"
				  "&client_secret=s3cr3t&scope=eats.deliveries");
	assert_string_equal(POLL_UBER_TOKEN_URL, "https://auth.uber.com/oauth/v2/token");
}

static void the_token_request_percent_encodes_the_credentials(void **state)
{
	char body[256];

	(void)state;
	poll_oauth_request_body("a b", "x&y=z+/~", NULL, body, sizeof(body));
	assert_string_equal(body, "grant_type=client_credentials&client_id=a%20b"
				  "&client_secret=x%26y%3Dz%2B%2F~&scope=eats.deliveries");
}

static void the_token_request_sizes_like_snprintf_and_refuses_empty_credentials(void **state)
{
	char small[8];
	int n;

	(void)state;
	n = poll_oauth_request_body("id", "secret", NULL, NULL, 0);
	assert_true(n > 0);
	assert_int_equal(poll_oauth_request_body("id", "secret", NULL, small, sizeof(small)), n);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(poll_oauth_request_body("", "secret", NULL, small, sizeof(small)),
			 POLL_AUTH_EINVAL);
	assert_int_equal(poll_oauth_request_body("id", NULL, NULL, small, sizeof(small)),
			 POLL_AUTH_EINVAL);
}

/* --- Uber Direct: the cache ------------------------------------------------------- */

static void fetch_token(poll_oauth_t *t, int64_t now, const char *body)
{
	proto_error_t err;

	assert_int_equal(poll_oauth_step(t, now), POLL_OAUTH_FETCH);
	assert_int_equal(t->state, POLL_OAUTH_FETCHING);
	assert_int_equal(poll_oauth_token_response(t, now, 200, -1, body, strlen(body), &err),
			 POLL_AUTH_OK);
}

static void an_empty_cache_fetches_then_uses_the_token(void **state)
{
	poll_oauth_t t;
	char auth[128];

	(void)state;
	poll_oauth_init(&t);
	fetch_token(&t, NOW, token_fixture);
	assert_int_equal(t.state, POLL_OAUTH_VALID);
	assert_int_equal(t.expires_ms, NOW + 2592000000LL);
	assert_int_equal(poll_oauth_step(&t, NOW + 1000), POLL_OAUTH_USE);
	assert_true(poll_oauth_authorization(&t, auth, sizeof(auth)) > 0);
	assert_string_equal(auth, "Bearer IA.VUNmGAAAAAAAEgASAAAABwAIAAwAAA");
}

static void a_request_in_flight_makes_the_next_wait(void **state)
{
	poll_oauth_t t;

	(void)state;
	poll_oauth_init(&t);
	assert_int_equal(poll_oauth_step(&t, NOW), POLL_OAUTH_FETCH);
	assert_int_equal(poll_oauth_step(&t, NOW + 10), POLL_OAUTH_WAIT);
	/* Unanswered past the timeout: failed, backing off, then asked again. */
	assert_int_equal(poll_oauth_step(&t, NOW + POLL_OAUTH_FETCH_TIMEOUT_MS), POLL_OAUTH_WAIT);
	assert_int_equal(t.state, POLL_OAUTH_BACKOFF);
	assert_int_equal(
	    poll_oauth_step(&t, NOW + POLL_OAUTH_FETCH_TIMEOUT_MS + POLL_OAUTH_BACKOFF_MIN_MS),
	    POLL_OAUTH_FETCH);
}

static void the_token_is_refreshed_before_it_expires_and_used_meanwhile(void **state)
{
	poll_oauth_t t;
	const char *body = token_fixture;
	int64_t refresh;

	(void)state;
	poll_oauth_init(&t);
	fetch_token(&t, NOW, body);
	refresh = t.expires_ms - POLL_OAUTH_REFRESH_MARGIN_MS;
	assert_int_equal(t.refresh_ms, refresh);
	assert_int_equal(poll_oauth_step(&t, refresh - 1), POLL_OAUTH_USE);
	assert_int_equal(poll_oauth_step(&t, refresh), POLL_OAUTH_USE_AND_REFRESH);
	/* Once: the refresh is in flight, the old token still serves. */
	assert_int_equal(poll_oauth_step(&t, refresh + 1), POLL_OAUTH_USE);
	assert_int_equal(
	    poll_oauth_token_response(&t, refresh + 2, 200, -1, body, strlen(body), NULL),
	    POLL_AUTH_OK);
	assert_int_equal(t.expires_ms, refresh + 2 + 2592000000LL);
	assert_int_equal(poll_oauth_step(&t, refresh + 3), POLL_OAUTH_USE);
}

static void a_short_lived_token_is_refreshed_with_a_tenth_of_its_life_left(void **state)
{
	static const char body[] = "{\"access_token\":\"abc\",\"expires_in\":60}";
	poll_oauth_t t;

	(void)state;
	poll_oauth_init(&t);
	fetch_token(&t, NOW, body);
	assert_int_equal(t.refresh_ms, NOW + 54000);
}

static void an_expired_token_is_never_sent(void **state)
{
	static const char body[] = "{\"access_token\":\"abc\",\"expires_in\":60}";
	poll_oauth_t t;

	(void)state;
	poll_oauth_init(&t);
	fetch_token(&t, NOW, body);
	/* The refresh failed (connect error) and the token ran out meanwhile. */
	assert_int_equal(poll_oauth_step(&t, NOW + 55000), POLL_OAUTH_USE_AND_REFRESH);
	poll_oauth_fetch_failed(&t, NOW + 56000, -1);
	assert_int_equal(poll_oauth_step(&t, NOW + 57000), POLL_OAUTH_USE);
	assert_int_equal(poll_oauth_step(&t, NOW + 60000), POLL_OAUTH_WAIT);
	assert_string_equal(t.access_token, "");
	assert_int_equal(poll_oauth_step(&t, NOW + 61000), POLL_OAUTH_FETCH);
}

static void failures_back_off_doubling_and_honour_retry_after(void **state)
{
	poll_oauth_t t;
	proto_error_t err;
	int64_t now = NOW;

	(void)state;
	poll_oauth_init(&t);
	assert_int_equal(poll_oauth_step(&t, now), POLL_OAUTH_FETCH);
	assert_int_equal(poll_oauth_token_response(&t, now, 500, -1, "", 0, &err),
			 POLL_AUTH_EINVAL);
	assert_string_equal(err.field, "status");
	assert_int_equal(t.retry_ms, now + POLL_OAUTH_BACKOFF_MIN_MS);
	now = t.retry_ms;
	assert_int_equal(poll_oauth_step(&t, now - 1), POLL_OAUTH_WAIT);
	assert_int_equal(poll_oauth_step(&t, now), POLL_OAUTH_FETCH);
	poll_oauth_fetch_failed(&t, now, -1);
	assert_int_equal(t.retry_ms, now + 2 * POLL_OAUTH_BACKOFF_MIN_MS);
	now = t.retry_ms;
	assert_int_equal(poll_oauth_step(&t, now), POLL_OAUTH_FETCH);
	/* 429 with Retry-After: 120 waits 120 s, longer than the backoff. */
	poll_oauth_token_response(&t, now, 429, 120, "", 0, &err);
	assert_int_equal(t.retry_ms, now + 120000);
	for (int i = 0; i < 20; i++)
		poll_oauth_fetch_failed(&t, now, -1);
	assert_int_equal(t.retry_ms, now + POLL_OAUTH_BACKOFF_MAX_MS);
	/* A success resets the count. */
	now = t.retry_ms;
	fetch_token(&t, now, token_fixture);
	assert_int_equal(t.failures, 0);
}

static void a_refused_token_is_dropped_and_fetched_again(void **state)
{
	poll_oauth_t t;

	(void)state;
	poll_oauth_init(&t);
	fetch_token(&t, NOW, token_fixture);
	poll_oauth_invalidate(&t);
	assert_string_equal(t.access_token, "");
	assert_int_equal(poll_oauth_authorization(&t, NULL, 0), POLL_AUTH_EINVAL);
	assert_int_equal(poll_oauth_step(&t, NOW + 1), POLL_OAUTH_FETCH);
}

static void expect_refused(const char *body, const char *field)
{
	poll_oauth_t t;
	proto_error_t err;

	poll_oauth_init(&t);
	assert_int_equal(poll_oauth_step(&t, NOW), POLL_OAUTH_FETCH);
	memset(&err, 0, sizeof(err));
	assert_int_equal(poll_oauth_token_response(&t, NOW, 200, -1, body, strlen(body), &err),
			 POLL_AUTH_EINVAL);
	assert_string_equal(err.field, field);
	assert_true(err.message[0] != '\0');
	assert_int_equal(t.state, POLL_OAUTH_BACKOFF);
	assert_string_equal(t.access_token, "");
}

static void a_malformed_token_response_is_refused_naming_the_field(void **state)
{
	(void)state;
	expect_refused("not json", "");
	expect_refused("[]", "");
	expect_refused("{\"expires_in\":3600}", "access_token");
	expect_refused("{\"access_token\":\"\",\"expires_in\":3600}", "access_token");
	expect_refused("{\"access_token\":7,\"expires_in\":3600}", "access_token");
	expect_refused("{\"access_token\":\"a b\",\"expires_in\":3600}", "access_token");
	expect_refused("{\"access_token\":\"a\\r\\nX-Evil: 1\",\"expires_in\":3600}",
		       "access_token");
	expect_refused("{\"access_token\":\"abc\"}", "expires_in");
	expect_refused("{\"access_token\":\"abc\",\"expires_in\":0}", "expires_in");
	expect_refused("{\"access_token\":\"abc\",\"expires_in\":-5}", "expires_in");
	expect_refused("{\"access_token\":\"abc\",\"expires_in\":1.5}", "expires_in");
	expect_refused("{\"access_token\":\"abc\",\"expires_in\":1e300}", "expires_in");
	expect_refused("{\"access_token\":\"abc\",\"expires_in\":true}", "expires_in");
	expect_refused("{\"access_token\":\"abc\",\"expires_in\":60,\"token_type\":\"mac\"}",
		       "token_type");
}

static void the_documented_token_response_is_taken(void **state)
{
	char path[1024];
	char body[4096];
	const char *slash = strrchr(__FILE__, '/');
	poll_oauth_t t;
	FILE *f;
	size_t len;

	(void)state;
	snprintf(path, sizeof(path), "%.*s/fixtures/poll/uber_token.json",
		 slash != NULL ? (int)(slash - __FILE__) : 1, slash != NULL ? __FILE__ : ".");
	f = fopen(path, "rb");
	assert_non_null(f);
	len = fread(body, 1, sizeof(body), f);
	fclose(f);
	poll_oauth_init(&t);
	assert_int_equal(poll_oauth_step(&t, NOW), POLL_OAUTH_FETCH);
	assert_int_equal(poll_oauth_token_response(&t, NOW, 200, -1, body, len, NULL),
			 POLL_AUTH_OK);
	assert_int_equal(t.expires_ms - NOW, 2592000LL * 1000);
}

/* --- DoorDash Drive ----------------------------------------------------------------- */

#define DD_DEVELOPER "582e4f20-0f48-4bc2-99c2-e094675e2919"
#define DD_KEY "585698aa-2aa6-4bb4-8b3f-dd9d3f47dc28"
/* 32 bytes 0x00..0x1f in base64url, without padding. */
#define DD_SECRET "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"

/* base64url (no padding) of in[0..len) into a malloc'd string. */
static char *b64url_decode(const char *in, size_t len, size_t *out_len)
{
	size_t n = len + (4 - len % 4) % 4;
	char *padded = calloc(n + 1, 1);
	unsigned char *out = calloc(n, 1);
	int got;

	assert_non_null(padded);
	assert_non_null(out);
	for (size_t i = 0; i < len; i++)
		padded[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
	for (size_t i = len; i < n; i++)
		padded[i] = '=';
	got = EVP_DecodeBlock(out, (unsigned char *)padded, (int)n);
	assert_true(got >= 0);
	*out_len = (size_t)got - (n - len);
	out[*out_len] = '\0';
	free(padded);
	return (char *)out;
}

static void the_jwt_has_doordashs_header_claims_and_a_valid_signature(void **state)
{
	unsigned char key[32], mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	char jwt[POLL_DOORDASH_JWT_MAX + 1];
	const char *dot1, *dot2;
	char *header, *claims, *sig;
	size_t header_len, claims_len, sig_len;
	cJSON *h, *c;
	proto_error_t err;
	int n;

	(void)state;
	for (int i = 0; i < 32; i++)
		key[i] = (unsigned char)i;
	n = poll_doordash_jwt(DD_DEVELOPER, DD_KEY, DD_SECRET, NOW + 999, 0, jwt, sizeof(jwt),
			      &err);
	assert_true(n > 0);
	assert_int_equal(n, (int)strlen(jwt));
	dot1 = strchr(jwt, '.');
	assert_non_null(dot1);
	dot2 = strchr(dot1 + 1, '.');
	assert_non_null(dot2);
	assert_null(strchr(jwt, '='));

	header = b64url_decode(jwt, (size_t)(dot1 - jwt), &header_len);
	h = cJSON_Parse(header);
	assert_non_null(h);
	assert_string_equal(cJSON_GetObjectItem(h, "alg")->valuestring, "HS256");
	assert_string_equal(cJSON_GetObjectItem(h, "typ")->valuestring, "JWT");
	assert_string_equal(cJSON_GetObjectItem(h, "dd-ver")->valuestring, "DD-JWT-V1");

	claims = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &claims_len);
	c = cJSON_Parse(claims);
	assert_non_null(c);
	assert_string_equal(cJSON_GetObjectItem(c, "aud")->valuestring, "doordash");
	assert_string_equal(cJSON_GetObjectItem(c, "iss")->valuestring, DD_DEVELOPER);
	assert_string_equal(cJSON_GetObjectItem(c, "kid")->valuestring, DD_KEY);
	assert_true(cJSON_GetObjectItem(c, "iat")->valuedouble == (double)(NOW / 1000));
	assert_true(cJSON_GetObjectItem(c, "exp")->valuedouble ==
		    (double)(NOW / 1000 + POLL_DOORDASH_JWT_TTL_DEFAULT_S));

	/* HMAC-SHA256 of "header.claims" under the decoded secret, by OpenSSL here. */
	assert_non_null(HMAC(EVP_sha256(), key, sizeof(key), (const unsigned char *)jwt,
			     (size_t)(dot2 - jwt), mac, &mac_len));
	sig = b64url_decode(dot2 + 1, strlen(dot2 + 1), &sig_len);
	assert_int_equal(sig_len, mac_len);
	assert_memory_equal(sig, mac, mac_len);

	cJSON_Delete(h);
	cJSON_Delete(c);
	free(header);
	free(claims);
	free(sig);
}

static void the_jwt_lives_at_most_thirty_minutes(void **state)
{
	char jwt[POLL_DOORDASH_JWT_MAX + 1];
	proto_error_t err;

	(void)state;
	assert_true(poll_doordash_jwt(DD_DEVELOPER, DD_KEY, DD_SECRET, NOW, 1800, jwt, sizeof(jwt),
				      &err) > 0);
	assert_int_equal(
	    poll_doordash_jwt(DD_DEVELOPER, DD_KEY, DD_SECRET, NOW, 1801, jwt, sizeof(jwt), &err),
	    POLL_AUTH_EINVAL);
	assert_string_equal(err.field, "ttl_s");
	assert_int_equal(
	    poll_doordash_jwt(DD_DEVELOPER, DD_KEY, DD_SECRET, NOW, -1, jwt, sizeof(jwt), &err),
	    POLL_AUTH_EINVAL);
}

static void the_standard_base64_spelling_of_the_secret_signs_the_same(void **state)
{
	char a[POLL_DOORDASH_JWT_MAX + 1], b[POLL_DOORDASH_JWT_MAX + 1];

	(void)state;
	assert_true(poll_doordash_jwt(DD_DEVELOPER, DD_KEY, DD_SECRET, NOW, 0, a, sizeof(a), NULL) >
		    0);
	assert_true(
	    poll_doordash_jwt(DD_DEVELOPER, DD_KEY, DD_SECRET "=", NOW, 0, b, sizeof(b), NULL) > 0);
	assert_string_equal(a, b);
}

static void bad_doordash_credentials_are_refused_naming_them(void **state)
{
	char jwt[POLL_DOORDASH_JWT_MAX + 1];
	proto_error_t err;

	(void)state;
	assert_int_equal(poll_doordash_jwt("", DD_KEY, DD_SECRET, NOW, 0, jwt, sizeof(jwt), &err),
			 POLL_AUTH_EINVAL);
	assert_string_equal(err.field, "developer_id");
	assert_int_equal(
	    poll_doordash_jwt(DD_DEVELOPER, "a\"b", DD_SECRET, NOW, 0, jwt, sizeof(jwt), &err),
	    POLL_AUTH_EINVAL);
	assert_string_equal(err.field, "key_id");
	assert_int_equal(
	    poll_doordash_jwt(DD_DEVELOPER, DD_KEY, "not base64!", NOW, 0, jwt, sizeof(jwt), &err),
	    POLL_AUTH_EINVAL);
	assert_string_equal(err.field, "signing_secret");
	assert_null(strstr(err.message, "not base64"));
	assert_int_equal(
	    poll_doordash_jwt(DD_DEVELOPER, DD_KEY, "", NOW, 0, jwt, sizeof(jwt), &err),
	    POLL_AUTH_EINVAL);
	assert_int_equal(poll_doordash_jwt(DD_DEVELOPER, DD_KEY, DD_SECRET, NOW, 0, jwt, 20, &err),
			 POLL_AUTH_ESPACE);
}

static void the_jwt_cache_reuses_a_token_until_a_minute_before_exp(void **state)
{
	poll_doordash_jwt_cache_t c;
	char first[POLL_DOORDASH_JWT_MAX + 1];
	const char *jwt;

	(void)state;
	memset(&c, 0, sizeof(c));
	jwt = poll_doordash_jwt_get(&c, DD_DEVELOPER, DD_KEY, DD_SECRET, NOW, 300, NULL);
	assert_non_null(jwt);
	snprintf(first, sizeof(first), "%s", jwt);
	assert_int_equal(c.exp_ms, NOW + 300000);
	jwt = poll_doordash_jwt_get(&c, DD_DEVELOPER, DD_KEY, DD_SECRET, NOW + 239999, 300, NULL);
	assert_string_equal(jwt, first);
	jwt = poll_doordash_jwt_get(&c, DD_DEVELOPER, DD_KEY, DD_SECRET, NOW + 240000, 300, NULL);
	assert_string_not_equal(jwt, first);
	assert_int_equal(c.exp_ms, NOW + 540000);
}

/* --- Onfleet ------------------------------------------------------------------------ */

static void onfleet_sends_the_key_as_the_basic_user_with_no_password(void **state)
{
	char auth[128];
	int n;

	(void)state;
	n = poll_onfleet_authorization("abc", auth, sizeof(auth));
	assert_int_equal(n, (int)strlen(auth));
	assert_string_equal(auth, "Basic YWJjOg==");
	assert_int_equal(poll_onfleet_authorization("", auth, sizeof(auth)), POLL_AUTH_EINVAL);
	assert_int_equal(poll_onfleet_authorization("a:b", auth, sizeof(auth)), POLL_AUTH_EINVAL);
	assert_int_equal(poll_onfleet_authorization("a\nb", auth, sizeof(auth)), POLL_AUTH_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(the_token_request_is_the_documented_form_body),
	    cmocka_unit_test(the_token_request_percent_encodes_the_credentials),
	    cmocka_unit_test(the_token_request_sizes_like_snprintf_and_refuses_empty_credentials),
	    cmocka_unit_test(an_empty_cache_fetches_then_uses_the_token),
	    cmocka_unit_test(a_request_in_flight_makes_the_next_wait),
	    cmocka_unit_test(the_token_is_refreshed_before_it_expires_and_used_meanwhile),
	    cmocka_unit_test(a_short_lived_token_is_refreshed_with_a_tenth_of_its_life_left),
	    cmocka_unit_test(an_expired_token_is_never_sent),
	    cmocka_unit_test(failures_back_off_doubling_and_honour_retry_after),
	    cmocka_unit_test(a_refused_token_is_dropped_and_fetched_again),
	    cmocka_unit_test(a_malformed_token_response_is_refused_naming_the_field),
	    cmocka_unit_test(the_documented_token_response_is_taken),
	    cmocka_unit_test(the_jwt_has_doordashs_header_claims_and_a_valid_signature),
	    cmocka_unit_test(the_jwt_lives_at_most_thirty_minutes),
	    cmocka_unit_test(the_standard_base64_spelling_of_the_secret_signs_the_same),
	    cmocka_unit_test(bad_doordash_credentials_are_refused_naming_them),
	    cmocka_unit_test(the_jwt_cache_reuses_a_token_until_a_minute_before_exp),
	    cmocka_unit_test(onfleet_sends_the_key_as_the_basic_user_with_no_password),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
