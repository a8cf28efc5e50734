/* Unit tests of gateway/auth.c: tracking-link tokens (JWT), every way one can be wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jwt.h>

#include "auth.h"

#define HS_SECRET "0123456789abcdef0123456789abcdef-test-secret"
#define NOW 1800000000LL

static auth_keys_t keys;
static char ec_private[4096], other_private[4096];

static size_t read_fixture(const char *name, char *buf, size_t cap)
{
	char path[512];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/auth/%s", TG_FIXTURES, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n;
}

static int setup(void **state)
{
	memset(&keys, 0, sizeof(keys));
	snprintf(keys.keys[0].kid, sizeof(keys.keys[0].kid), "hs1");
	keys.keys[0].alg = AUTH_HS256;
	memcpy(keys.keys[0].key, HS_SECRET, strlen(HS_SECRET));
	keys.keys[0].key_len = strlen(HS_SECRET);
	snprintf(keys.keys[1].kid, sizeof(keys.keys[1].kid), "ec1");
	keys.keys[1].alg = AUTH_ES256;
	keys.keys[1].key_len =
	    read_fixture("ec_public.pem", (char *)keys.keys[1].key, AUTH_KEY_MAX);
	keys.n = 2;
	read_fixture("ec_private.pem", ec_private, sizeof(ec_private));
	read_fixture("other_private.pem", other_private, sizeof(other_private));
	return 0;
}

/* A token: alg, kid (NULL = none), the key to sign with, claims. exp/nbf 0 = absent. */
static char *mint(jwt_alg_t alg, const char *kid, const char *key, const char *order_id, long exp,
		  long nbf)
{
	jwt_t *jwt = NULL;
	char *t;

	assert_int_equal(jwt_new(&jwt), 0);
	if (order_id)
		assert_int_equal(jwt_add_grant(jwt, "order_id", order_id), 0);
	if (exp)
		assert_int_equal(jwt_add_grant_int(jwt, "exp", exp), 0);
	if (nbf)
		assert_int_equal(jwt_add_grant_int(jwt, "nbf", nbf), 0);
	if (kid)
		assert_int_equal(jwt_add_header(jwt, "kid", kid), 0);
	assert_int_equal(
	    jwt_set_alg(jwt, alg, (const unsigned char *)key, key ? (int)strlen(key) : 0), 0);
	t = jwt_encode_str(jwt);
	jwt_free(jwt);
	assert_non_null(t);
	return t;
}

static auth_result_t check(const char *token, const char *order, char *why)
{
	int64_t exp = 0;

	return auth_check(&keys, token, token ? strlen(token) : 0, order, NOW, &exp, why, 96);
}

/* An HS256 token (kid hs1) whose claims are exactly json: any JSON type in any claim. */
static char *mint_json(const char *json)
{
	jwt_t *jwt = NULL;
	char *t;

	assert_int_equal(jwt_new(&jwt), 0);
	assert_int_equal(jwt_add_grants_json(jwt, json), 0);
	assert_int_equal(jwt_add_header(jwt, "kid", "hs1"), 0);
	assert_int_equal(jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)HS_SECRET,
				     (int)strlen(HS_SECRET)),
			 0);
	t = jwt_encode_str(jwt);
	jwt_free(jwt);
	assert_non_null(t);
	return t;
}

/* auth_check of the claims json (printf-style) at NOW for A1; *exp_s in *exp when given. */
static auth_result_t check_claims(char *why, int64_t *exp, const char *fmt, ...)
{
	char json[512], *t;
	int64_t e = 0;
	auth_result_t r;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(json, sizeof(json), fmt, ap);
	va_end(ap);
	t = mint_json(json);
	why[0] = '\0';
	r = auth_check(&keys, t, strlen(t), "A1", NOW, &e, why, 96);
	free(t);
	if (exp)
		*exp = e;
	return r;
}

static void valid_hs256_token_is_accepted(void **state)
{
	char why[96], *t = mint(JWT_ALG_HS256, "hs1", HS_SECRET, "A1", NOW + 60, 0);
	int64_t exp = 0;

	assert_int_equal(auth_check(&keys, t, strlen(t), "A1", NOW, &exp, why, sizeof(why)),
			 AUTH_OK);
	assert_int_equal(exp, NOW + 60);
	free(t);
}

static void valid_es256_token_is_accepted(void **state)
{
	char why[96], *t = mint(JWT_ALG_ES256, "ec1", ec_private, "A1", NOW + 60, 0);

	assert_int_equal(check(t, "A1", why), AUTH_OK);
	free(t);
}

static void token_for_another_order_is_forbidden(void **state)
{
	char why[96], *t = mint(JWT_ALG_HS256, "hs1", HS_SECRET, "A2", NOW + 60, 0);

	assert_int_equal(check(t, "A1", why), AUTH_FORBIDDEN);
	free(t);
}

static void expired_token_is_invalid_after_the_leeway(void **state)
{
	char why[96], *t = mint(JWT_ALG_HS256, "hs1", HS_SECRET, "A1", NOW - AUTH_LEEWAY_S - 1, 0);
	char *ok = mint(JWT_ALG_HS256, "hs1", HS_SECRET, "A1", NOW - AUTH_LEEWAY_S + 1, 0);

	assert_int_equal(check(t, "A1", why), AUTH_INVALID);
	assert_non_null(strstr(why, "expired"));
	assert_int_equal(check(ok, "A1", why), AUTH_OK);
	free(t);
	free(ok);
}

static void token_without_exp_is_invalid(void **state)
{
	char why[96], *t = mint(JWT_ALG_HS256, "hs1", HS_SECRET, "A1", 0, 0);

	assert_int_equal(check(t, "A1", why), AUTH_INVALID);
	free(t);
}

static void not_yet_valid_token_is_invalid(void **state)
{
	char why[96], *t = mint(JWT_ALG_HS256, "hs1", HS_SECRET, "A1", NOW + 600, NOW + 300);

	assert_int_equal(check(t, "A1", why), AUTH_INVALID);
	assert_non_null(strstr(why, "not valid yet"));
	free(t);
}

static void wrong_key_unknown_kid_and_missing_kid_are_invalid(void **state)
{
	char why[96];
	char *wrong =
	    mint(JWT_ALG_HS256, "hs1", "another-secret-another-secret-x", "A1", NOW + 60, 0);
	char *unknown = mint(JWT_ALG_HS256, "nope", HS_SECRET, "A1", NOW + 60, 0);
	char *nokid = mint(JWT_ALG_HS256, NULL, HS_SECRET, "A1", NOW + 60, 0);
	char *ec_wrong = mint(JWT_ALG_ES256, "ec1", other_private, "A1", NOW + 60, 0);

	assert_int_equal(check(wrong, "A1", why), AUTH_INVALID);
	assert_int_equal(check(unknown, "A1", why), AUTH_INVALID);
	assert_int_equal(check(nokid, "A1", why), AUTH_INVALID); /* two keys: kid needed */
	assert_int_equal(check(ec_wrong, "A1", why), AUTH_INVALID);
	free(wrong);
	free(unknown);
	free(nokid);
	free(ec_wrong);
}

static void alg_none_is_refused(void **state)
{
	char why[96], *t = mint(JWT_ALG_NONE, "hs1", NULL, "A1", NOW + 60, 0);

	assert_int_equal(check(t, "A1", why), AUTH_INVALID);
	free(t);
}

static void hs_token_for_the_es_key_is_refused(void **state)
{
	/* The classic mix-up: HMAC with the public key's PEM text as the secret. */
	char why[96];
	char *t = mint(JWT_ALG_HS256, "ec1", (const char *)keys.keys[1].key, "A1", NOW + 60, 0);

	assert_int_equal(check(t, "A1", why), AUTH_INVALID);
	assert_non_null(strstr(why, "algorithm"));
	free(t);
}

static void tampered_payload_or_signature_is_refused(void **state)
{
	char why[96], *t = mint(JWT_ALG_HS256, "hs1", HS_SECRET, "A1", NOW + 60, 0);
	char *other = mint(JWT_ALG_HS256, "hs1", HS_SECRET, "A2", NOW + 60, 0);
	char *p1 = strchr(t, '.'), *p2 = strchr(other, '.');
	char spliced[1024];

	/* A2's payload under A1's signature. */
	snprintf(spliced, sizeof(spliced), "%.*s%.*s%s", (int)(p1 - t), t,
		 (int)(strrchr(other, '.') - p2), p2, strrchr(t, '.'));
	assert_int_equal(check(spliced, "A2", why), AUTH_INVALID);
	t[strlen(t) - 2] ^= 1; /* a flipped signature bit */
	assert_int_equal(check(t, "A1", why), AUTH_INVALID);
	free(t);
	free(other);
}

static void garbage_and_missing_tokens_are_invalid(void **state)
{
	char why[96];
	static const char *const bad[] = {"",	  "a",	      "a.b",	    "a.b.c",
					  "....", "e30.e30.", "%%%.%%%.%%%"};

	assert_int_equal(check(NULL, "A1", why), AUTH_INVALID);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(check(bad[i], "A1", why), AUTH_INVALID);
}

static void single_key_needs_no_kid_and_rotation_accepts_both_kids(void **state)
{
	char why[96], *t = mint(JWT_ALG_HS256, NULL, HS_SECRET, "A1", NOW + 60, 0);
	auth_keys_t one = keys;

	one.n = 1;
	assert_int_equal(auth_check(&one, t, strlen(t), "A1", NOW, &(int64_t){0}, why, 96),
			 AUTH_OK);
	free(t);
	/* rotation: hs1 and hs2 at once */
	one = keys;
	snprintf(one.keys[1].kid, sizeof(one.keys[1].kid), "hs2");
	one.keys[1].alg = AUTH_HS256;
	memcpy(one.keys[1].key, "second-secret-second-secret-second", 34);
	one.keys[1].key_len = 34;
	t = mint(JWT_ALG_HS256, "hs2", "second-secret-second-secret-second", "A1", NOW + 60, 0);
	assert_int_equal(auth_check(&one, t, strlen(t), "A1", NOW, &(int64_t){0}, why, 96),
			 AUTH_OK);
	free(t);
	t = mint(JWT_ALG_HS256, "hs1", HS_SECRET, "A1", NOW + 60, 0);
	assert_int_equal(auth_check(&one, t, strlen(t), "A1", NOW, &(int64_t){0}, why, 96),
			 AUTH_OK);
	free(t);
}

static void exp_nbf_or_iat_that_is_not_a_number_is_invalid_and_says_which(void **state)
{
	/* RFC 7519 NumericDate: a JSON number.  libjwt reads each of these as 0. */
	static const char *const values[] = {
	    "\"1800000060\"",	  "\"\"",	  "true", "false", "null", "{}",
	    "{\"n\":1800000060}", "[1800000060]",
	};
	static const struct {
		const char *claim, *word;
	} claims[] = {{"exp", "exp"}, {"nbf", "nbf"}, {"iat", "iat"}};
	char why[96];

	for (size_t c = 0; c < sizeof(claims) / sizeof(claims[0]); c++) {
		for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
			auth_result_t r;

			if (!strcmp(claims[c].claim, "exp"))
				r = check_claims(why, NULL, "{\"order_id\":\"A1\",\"exp\":%s}",
						 values[v]);
			else
				r = check_claims(why, NULL,
						 "{\"order_id\":\"A1\",\"exp\":%lld,\"%s\":%s}",
						 NOW + 60, claims[c].claim, values[v]);
			if (r != AUTH_INVALID || !strstr(why, claims[c].word) ||
			    !strstr(why, "not a number"))
				fail_msg(
				    "%s = %s: result %d, reason \"%s\"; want AUTH_INVALID saying "
				    "\"(%s) is not a number\"",
				    claims[c].claim, values[v], (int)r, why, claims[c].word);
		}
	}
}

static void a_string_nbf_far_in_the_future_does_not_pass_as_absent(void **state)
{
	char why[96];

	/* The outside tester's token: a quoted nbf was ignored, so the token was accepted. */
	assert_int_equal(check_claims(why, NULL,
				      "{\"order_id\":\"A1\",\"exp\":%lld,\"nbf\":"
				      "\"%lld\"}",
				      NOW + 600, NOW + 300),
			 AUTH_INVALID);
	assert_non_null(strstr(why, "nbf"));
}

static void fractional_numeric_dates_are_accepted(void **state)
{
	char why[96];
	int64_t exp = 0;

	/* exp 1.9e9 + 0.5 (issue 14's example), written both ways. */
	assert_int_equal(check_claims(why, &exp, "{\"order_id\":\"A1\",\"exp\":1900000000.5}"),
			 AUTH_OK);
	assert_int_equal(exp, 1900000000);
	assert_int_equal(check_claims(why, &exp, "{\"order_id\":\"A1\",\"exp\":1.9e9}"), AUTH_OK);
	assert_int_equal(exp, 1900000000);
	assert_int_equal(check_claims(why, &exp,
				      "{\"order_id\":\"A1\",\"exp\":%lld.25,\"nbf\":"
				      "%lld.75,\"iat\":%lld.5}",
				      NOW + 60, NOW - 1, NOW - 1),
			 AUTH_OK);
	assert_int_equal(exp, NOW + 60);
}

static void fractional_exp_and_nbf_are_compared_to_the_leeway_exactly(void **state)
{
	char why[96];
	int64_t exp = 0;

	/* exp: valid while exp + leeway >= now. */
	assert_int_equal(
	    check_claims(why, &exp, "{\"order_id\":\"A1\",\"exp\":%lld.5}", NOW - AUTH_LEEWAY_S),
	    AUTH_OK);
	assert_int_equal(exp, NOW - AUTH_LEEWAY_S);
	assert_int_equal(check_claims(why, NULL, "{\"order_id\":\"A1\",\"exp\":%lld.5}",
				      NOW - AUTH_LEEWAY_S - 1),
			 AUTH_INVALID);
	assert_non_null(strstr(why, "expired"));
	/* nbf: valid once nbf <= now + leeway; half a second later is not yet. */
	assert_int_equal(check_claims(why, NULL,
				      "{\"order_id\":\"A1\",\"exp\":%lld,\"nbf\":%lld.5}",
				      NOW + 600, NOW + AUTH_LEEWAY_S - 1),
			 AUTH_OK);
	assert_int_equal(check_claims(why, NULL,
				      "{\"order_id\":\"A1\",\"exp\":%lld,\"nbf\":%lld.5}",
				      NOW + 600, NOW + AUTH_LEEWAY_S),
			 AUTH_INVALID);
	assert_non_null(strstr(why, "not valid yet"));
}

static void extreme_numeric_dates_neither_overflow_nor_pass(void **state)
{
	char why[96];
	int64_t exp = 0;

	/* Far future: accepted, and the expiry the server keeps is positive and finite. */
	assert_int_equal(check_claims(why, &exp, "{\"order_id\":\"A1\",\"exp\":1e300}"), AUTH_OK);
	assert_true(exp > NOW && exp <= (int64_t)1 << 53);
	/* Zero, negative and far past: expired. */
	assert_int_equal(check_claims(why, NULL, "{\"order_id\":\"A1\",\"exp\":0}"), AUTH_INVALID);
	assert_int_equal(check_claims(why, NULL, "{\"order_id\":\"A1\",\"exp\":-0.0}"),
			 AUTH_INVALID);
	assert_int_equal(check_claims(why, NULL, "{\"order_id\":\"A1\",\"exp\":-1e300}"),
			 AUTH_INVALID);
	assert_non_null(strstr(why, "expired"));
	/* nbf far ahead: not valid yet; far behind: fine. */
	assert_int_equal(
	    check_claims(why, NULL, "{\"order_id\":\"A1\",\"exp\":%lld,\"nbf\":1e300}", NOW + 60),
	    AUTH_INVALID);
	assert_int_equal(
	    check_claims(why, NULL, "{\"order_id\":\"A1\",\"exp\":%lld,\"nbf\":-1e300}", NOW + 60),
	    AUTH_OK);
}

static void header_that_is_not_unpadded_base64url_is_malformed(void **state)
{
	char why[96], bad[1024], *t = mint(JWT_ALG_HS256, "hs1", HS_SECRET, "A1", NOW + 60, 0);
	size_t head = (size_t)(strchr(t, '.') - t);

	(void)state;
	/* '=' padding (RFC 7515 2 has none), and the standard alphabet's '+'. */
	snprintf(bad, sizeof(bad), "%.*s==%s", (int)head, t, t + head);
	assert_int_equal(check(bad, "A1", why), AUTH_INVALID);
	assert_string_equal(why, "the token is malformed");
	snprintf(bad, sizeof(bad), "+%s", t + 1);
	assert_int_equal(check(bad, "A1", why), AUTH_INVALID);
	assert_string_equal(why, "the token is malformed");
	/* A header that decodes to more than 511 bytes is not read. */
	memset(bad, 'e', 700);
	snprintf(bad + 700, sizeof(bad) - 700, "%s", t + head);
	assert_int_equal(check(bad, "A1", why), AUTH_INVALID);
	assert_string_equal(why, "the token is malformed");
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(valid_hs256_token_is_accepted),
	    cmocka_unit_test(valid_es256_token_is_accepted),
	    cmocka_unit_test(token_for_another_order_is_forbidden),
	    cmocka_unit_test(expired_token_is_invalid_after_the_leeway),
	    cmocka_unit_test(token_without_exp_is_invalid),
	    cmocka_unit_test(not_yet_valid_token_is_invalid),
	    cmocka_unit_test(wrong_key_unknown_kid_and_missing_kid_are_invalid),
	    cmocka_unit_test(alg_none_is_refused),
	    cmocka_unit_test(hs_token_for_the_es_key_is_refused),
	    cmocka_unit_test(tampered_payload_or_signature_is_refused),
	    cmocka_unit_test(garbage_and_missing_tokens_are_invalid),
	    cmocka_unit_test(header_that_is_not_unpadded_base64url_is_malformed),
	    cmocka_unit_test(single_key_needs_no_kid_and_rotation_accepts_both_kids),
	    cmocka_unit_test(exp_nbf_or_iat_that_is_not_a_number_is_invalid_and_says_which),
	    cmocka_unit_test(a_string_nbf_far_in_the_future_does_not_pass_as_absent),
	    cmocka_unit_test(fractional_numeric_dates_are_accepted),
	    cmocka_unit_test(fractional_exp_and_nbf_are_compared_to_the_leeway_exactly),
	    cmocka_unit_test(extreme_numeric_dates_neither_overflow_nor_pass),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
