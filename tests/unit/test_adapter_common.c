/*
 * test_adapter_common.c - adapters/common.c: signatures and credentials,
 * the JSON body, dotted-path getters, times, coordinates and the update
 * helpers.  Expected digests come from RFC 4231-style known answers computed
 * with Python's hmac/hashlib; expected times from Python's datetime.
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

#include "adapters_private.h"

#define FOX "The quick brown fox jumps over the lazy dog"
#define FOX_SHA256 "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
#define FOX_SHA512                                                                                 \
	"b42af09057bac1e2d41708e48a902e09b5ff7f12ab428a4fe86653c73dd248fb82f948a549f"              \
	"7b791a5b41915ee4d1ec3935357e4e2317250d0372afa2ebeeb3a"
#define KEY ((const unsigned char *)"key")

static bool fox256(const char *hex)
{
	return adapter_hmac_hex_ok(ADAPTER_HMAC_SHA256, KEY, 3, FOX, strlen(FOX), hex);
}

/* --- adapter_fail ---------------------------------------------------------- */

static void fail_fills_field_and_message(void **state)
{
	proto_error_t err;

	(void)state;
	assert_int_equal(adapter_fail(&err, ADAPTER_EINVAL, "data.status", "bad %d", 7),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "data.status");
	assert_string_equal(err.message, "bad 7");
	assert_int_equal(adapter_fail(NULL, ADAPTER_EAUTH, "x", "y"), ADAPTER_EAUTH);
}

/* --- HMAC ------------------------------------------------------------------ */

static void hmac_sha256_known_answer_matches(void **state)
{
	(void)state;
	assert_true(fox256(FOX_SHA256));
}

static void hmac_hex_is_case_insensitive(void **state)
{
	(void)state;
	assert_true(fox256("F7BC83F430538424B13298E6AA6FB143EF4D59A14946175997479DBC2D1A3CD8"));
	assert_true(fox256("f7BC83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cD8"));
}

static void hmac_tolerates_prefix_and_whitespace(void **state)
{
	(void)state;
	assert_true(fox256("sha256=" FOX_SHA256));
	assert_true(fox256("SHA256=" FOX_SHA256));
	assert_true(fox256("  " FOX_SHA256 "\r\n"));
	assert_false(fox256("sha512=" FOX_SHA256));
	assert_false(fox256("sha256 =" FOX_SHA256));
}

static void hmac_refuses_wrong_digest_or_length(void **state)
{
	(void)state;
	assert_false(fox256("e7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"));
	assert_false(fox256("f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd"));
	assert_false(fox256(FOX_SHA256 "00"));
	assert_false(fox256(FOX_SHA256 " 00"));
	assert_false(fox256("g7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"));
	assert_false(fox256(""));
	assert_false(fox256(NULL));
	assert_false(
	    adapter_hmac_hex_ok(ADAPTER_HMAC_SHA256, KEY, 3, FOX, strlen(FOX) - 1, FOX_SHA256));
	assert_false(adapter_hmac_hex_ok(ADAPTER_HMAC_SHA256, (const unsigned char *)"kez", 3, FOX,
					 strlen(FOX), FOX_SHA256));
}

static void hmac_refuses_an_empty_key(void **state)
{
	(void)state;
	assert_false(
	    adapter_hmac_hex_ok(ADAPTER_HMAC_SHA256, KEY, 0, FOX, strlen(FOX), FOX_SHA256));
	assert_false(
	    adapter_hmac_hex_ok(ADAPTER_HMAC_SHA256, NULL, 3, FOX, strlen(FOX), FOX_SHA256));
}

static void hmac_sha512_known_answer_matches(void **state)
{
	(void)state;
	assert_true(adapter_hmac_hex_ok(ADAPTER_HMAC_SHA512, KEY, 3, FOX, strlen(FOX), FOX_SHA512));
	assert_true(adapter_hmac_hex_ok(ADAPTER_HMAC_SHA512, KEY, 3, FOX, strlen(FOX),
					"sha512=" FOX_SHA512));
	assert_false(
	    adapter_hmac_hex_ok(ADAPTER_HMAC_SHA512, KEY, 3, FOX, strlen(FOX), FOX_SHA256));
	assert_false(
	    adapter_hmac_hex_ok(ADAPTER_HMAC_SHA256, KEY, 3, FOX, strlen(FOX), FOX_SHA512));
}

static void hmac_of_an_empty_body_works(void **state)
{
	/* HMAC-SHA256("key", "") */
	(void)state;
	assert_true(adapter_hmac_hex_ok(
	    ADAPTER_HMAC_SHA256, KEY, 3, NULL, 0,
	    "5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0"));
}

/* --- equality and hex ------------------------------------------------------ */

static void equal_compares_content_and_length(void **state)
{
	(void)state;
	assert_true(adapter_equal("abc", 3, "abc", 3));
	assert_false(adapter_equal("abc", 3, "abd", 3));
	assert_false(adapter_equal("abc", 3, "abcd", 4));
	assert_true(adapter_equal("", 0, "", 0));
	assert_false(adapter_equal(NULL, 1, "a", 1));
}

static void hex_decode_accepts_both_cases(void **state)
{
	unsigned char out[4];

	(void)state;
	assert_int_equal(adapter_hex_decode("00fFa9", 6, out, sizeof(out)), 3);
	assert_int_equal(out[0], 0x00);
	assert_int_equal(out[1], 0xff);
	assert_int_equal(out[2], 0xa9);
	assert_int_equal(adapter_hex_decode("", 0, out, sizeof(out)), 0);
}

static void hex_decode_refuses_bad_input(void **state)
{
	unsigned char out[2];

	(void)state;
	assert_int_equal(adapter_hex_decode("abc", 3, out, sizeof(out)), -1);
	assert_int_equal(adapter_hex_decode("zz", 2, out, sizeof(out)), -1);
	assert_int_equal(adapter_hex_decode("0x", 2, out, sizeof(out)), -1);
	assert_int_equal(adapter_hex_decode("aabbcc", 6, out, sizeof(out)), -1);
	assert_int_equal(adapter_hex_decode(NULL, 2, out, sizeof(out)), -1);
}

/* --- Authorization ----------------------------------------------------------- */

#define SECRET(s) (const unsigned char *)(s), strlen(s)

static void authorization_accepts_bearer(void **state)
{
	(void)state;
	assert_true(adapter_authorization_ok("Bearer s3cret", SECRET("s3cret")));
	assert_true(adapter_authorization_ok("bearer s3cret", SECRET("s3cret")));
	assert_true(adapter_authorization_ok("BEARER   s3cret  ", SECRET("s3cret")));
	assert_false(adapter_authorization_ok("Bearer s3cre", SECRET("s3cret")));
	assert_false(adapter_authorization_ok("Bearer s3cret2", SECRET("s3cret")));
	assert_false(adapter_authorization_ok("Bearers3cret", SECRET("s3cret")));
	assert_false(adapter_authorization_ok("Bearer ", SECRET("s3cret")));
	assert_false(adapter_authorization_ok("s3cret", SECRET("s3cret")));
	assert_false(adapter_authorization_ok("Token s3cret", SECRET("s3cret")));
}

static void authorization_accepts_basic_with_any_padding(void **state)
{
	(void)state;
	/* user:pass has no padding, user:pas one '=', user:pa two. */
	assert_true(adapter_authorization_ok("Basic dXNlcjpwYXNz", SECRET("user:pass")));
	assert_true(adapter_authorization_ok("basic dXNlcjpwYXM=", SECRET("user:pas")));
	assert_true(adapter_authorization_ok("Basic dXNlcjpwYQ==", SECRET("user:pa")));
	/* Padding left out is tolerated. */
	assert_true(adapter_authorization_ok("Basic dXNlcjpwYXM", SECRET("user:pas")));
	assert_true(adapter_authorization_ok("Basic dXNlcjpwYQ", SECRET("user:pa")));
	/* The padding bytes never become part of the credential. */
	assert_false(
	    adapter_authorization_ok("Basic dXNlcjpwYQ==", (const unsigned char *)"user:pa\0", 8));
}

static void authorization_refuses_bad_basic(void **state)
{
	(void)state;
	assert_false(adapter_authorization_ok("Basic dXNlcjpwYXNz", SECRET("user:pasz")));
	assert_false(adapter_authorization_ok("Basic dXNlcjpwYQ=", SECRET("user:pa")));
	assert_false(adapter_authorization_ok("Basic dXNlcjpwYQ===", SECRET("user:pa")));
	assert_false(adapter_authorization_ok("Basic dXNlc=jpwYQ==", SECRET("user:pa")));
	assert_false(adapter_authorization_ok("Basic dXNlcjpwY", SECRET("user:pa")));
	assert_false(adapter_authorization_ok("Basic dXNl cjpwYQ==", SECRET("user:pa")));
	assert_false(adapter_authorization_ok("Basic d*NlcjpwYQ==", SECRET("user:pa")));
	assert_false(adapter_authorization_ok("Basic ", SECRET("user:pa")));
	assert_false(adapter_authorization_ok("Basic ====", SECRET("user:pa")));
	/* Bearer with the base64 text is not Basic. */
	assert_false(adapter_authorization_ok("Bearer dXNlcjpwYXNz", SECRET("user:pass")));
}

static void authorization_refuses_missing_header_or_secret(void **state)
{
	(void)state;
	assert_false(adapter_authorization_ok(NULL, SECRET("s")));
	assert_false(adapter_authorization_ok("Bearer s", (const unsigned char *)"", 0));
	assert_false(adapter_authorization_ok("Bearer s", NULL, 1));
}

static void authorization_refuses_huge_values(void **state)
{
	char *big = malloc(10000);

	(void)state;
	assert_non_null(big);
	memcpy(big, "Basic ", 6);
	memset(big + 6, 'A', 10000 - 7);
	big[9999] = '\0';
	assert_false(adapter_authorization_ok(big, SECRET("user:pass")));
	memcpy(big, "Bearer ", 7);
	assert_false(adapter_authorization_ok(big, SECRET("user:pass")));
	free(big);
}

/* --- event ids ---------------------------------------------------------------- */

static void body_event_id_is_a_sha256_prefix(void **state)
{
	char id[PROTO_EVENT_ID_MAX + 1];

	(void)state;
	adapter_body_event_id("abc", 3, id);
	assert_string_equal(id, "sha256:ba7816bf8f01cfea414140de5dae2223");
	adapter_body_event_id(NULL, 0, id);
	assert_string_equal(id, "sha256:e3b0c44298fc1c149afbf4c8996fb924");
}

/* --- the JSON body -------------------------------------------------------------- */

static cJSON *parse(const char *s, proto_error_t *err)
{
	return adapter_parse_json(s, strlen(s), err);
}

static void parse_json_accepts_an_object(void **state)
{
	proto_error_t err;
	cJSON *root = parse(" {\"a\":{\"b\":\"\xc3\xa9\"}} \r\n", &err);

	(void)state;
	assert_non_null(root);
	cJSON_Delete(root);
}

static void parse_json_needs_no_nul_terminator(void **state)
{
	const char buf[] = {'{', '"', 'a', '"', ':', '1', '}', 'x'};
	proto_error_t err;
	cJSON *root = adapter_parse_json(buf, 7, &err);

	(void)state;
	assert_non_null(root);
	cJSON_Delete(root);
	assert_null(adapter_parse_json(buf, 8, &err));
}

static void parse_json_refuses_non_objects(void **state)
{
	proto_error_t err;

	(void)state;
	assert_null(parse("[1]", &err));
	assert_null(parse("\"s\"", &err));
	assert_null(parse("1", &err));
	assert_null(parse("null", &err));
	assert_string_equal(err.message, "the body must be a JSON object");
	assert_null(parse("", &err));
	assert_null(adapter_parse_json(NULL, 0, &err));
}

static void parse_json_refuses_trailing_data_and_truncation(void **state)
{
	proto_error_t err;

	(void)state;
	assert_null(parse("{\"a\":1} x", &err));
	assert_null(parse("{\"a\":1}{}", &err));
	assert_null(parse("{\"a\":1", &err));
	assert_null(parse("{\"a\":\"x", &err));
	assert_null(parse("{\"a\":", &err));
	assert_null(parse("{", &err));
}

static void parse_json_refuses_nul_bytes_and_escapes(void **state)
{
	const char raw[] = "{\"a\":\"x\0y\"}";
	proto_error_t err;

	(void)state;
	assert_null(adapter_parse_json(raw, sizeof(raw) - 1, &err));
	assert_non_null(strstr(err.message, "NUL"));
	assert_null(parse("{\"a\":\"x\\u0000y\"}", &err));
	/* An escaped backslash followed by u0000 is text, not an escape. */
	cJSON *root = parse("{\"a\":\"x\\\\u0000y\"}", &err);
	assert_non_null(root);
	cJSON_Delete(root);
}

static void parse_json_refuses_invalid_utf8(void **state)
{
	proto_error_t err;

	(void)state;
	assert_null(parse("{\"a\":\"\xff\"}", &err));
	assert_non_null(strstr(err.message, "UTF-8"));
	assert_null(parse("{\"a\":\"\xc3\"}", &err));		  /* truncated */
	assert_null(parse("{\"a\":\"\xc0\xaf\"}", &err));	  /* overlong */
	assert_null(parse("{\"a\":\"\xed\xa0\x80\"}", &err));	  /* surrogate */
	assert_null(parse("{\"a\":\"\xf4\x90\x80\x80\"}", &err)); /* > U+10FFFF */
	assert_null(parse("{\"a\":\"\xe2\x82\"}", &err));
	assert_null(parse("{\"a\":\"\\ud800\"}", &err)); /* lone surrogate escape */
}

static void parse_json_refuses_duplicate_top_level_members(void **state)
{
	proto_error_t err;
	cJSON *root;

	(void)state;
	assert_null(parse("{\"a\":1,\"b\":2,\"a\":3}", &err));
	assert_string_equal(err.field, "a");
	root = parse("{\"a\":{\"x\":1},\"b\":{\"x\":1}}", &err);
	assert_non_null(root);
	cJSON_Delete(root);
}

static void parse_json_survives_deep_nesting(void **state)
{
	size_t depth = 5000;
	char *s = malloc(2 * depth + 8);
	proto_error_t err;
	size_t n = 0;

	(void)state;
	assert_non_null(s);
	s[n++] = '{';
	memcpy(s + n, "\"a\":", 4);
	n += 4;
	for (size_t i = 0; i < depth; i++)
		s[n++] = '[';
	for (size_t i = 0; i < depth; i++)
		s[n++] = ']';
	s[n++] = '}';
	assert_null(adapter_parse_json(s, n, &err));
	free(s);
}

/* --- getters ---------------------------------------------------------------------- */

#define DOC                                                                                        \
	"{\"id\":\"e1\",\"n\":1.5,\"ns\":\"-2.25e1\",\"nul\":null,\"t\":true,\"big\":1e999,"       \
	"\"data\":{\"courier\":{\"location\":{\"lat\":\"52.5\",\"lng\":13.4}},\"s\":\"x\"},"       \
	"\"arr\":[1],\"str\":\"hello\"}"

static void get_steps_through_objects(void **state)
{
	proto_error_t err;
	cJSON *root = parse(DOC, &err);

	(void)state;
	assert_non_null(root);
	assert_non_null(adapter_get(root, "data.courier.location.lng"));
	assert_null(adapter_get(root, "data.courier.nope"));
	assert_null(adapter_get(root, "nul"));
	assert_null(adapter_get(root, "nul.x"));
	assert_null(adapter_get(root, "str.x"));
	assert_null(adapter_get(root, "arr.0"));
	assert_null(adapter_get(root, "ID"));
	assert_null(adapter_get(root, "data."));
	assert_null(adapter_get(root, ""));
	assert_null(adapter_get(NULL, "id"));
	cJSON_Delete(root);
}

static void get_string_reports_presence_and_types(void **state)
{
	proto_error_t err;
	cJSON *root = parse(DOC, &err);
	const char *s = "untouched";

	(void)state;
	assert_int_equal(adapter_get_string(root, "id", true, &s, &err), 0);
	assert_string_equal(s, "e1");
	s = "untouched";
	assert_int_equal(adapter_get_string(root, "missing", false, &s, &err), 1);
	assert_int_equal(adapter_get_string(root, "nul", false, &s, &err), 1);
	assert_string_equal(s, "untouched");
	assert_int_equal(adapter_get_string(root, "missing", true, &s, &err), ADAPTER_EINVAL);
	assert_string_equal(err.field, "missing");
	assert_int_equal(adapter_get_string(root, "n", false, &s, &err), ADAPTER_EINVAL);
	assert_string_equal(err.field, "n");
	assert_int_equal(adapter_get_string(root, "data", false, &s, &err), ADAPTER_EINVAL);
	/* A step that is not an object is an error naming that step. */
	assert_int_equal(adapter_get_string(root, "str.x", false, &s, &err), ADAPTER_EINVAL);
	assert_string_equal(err.field, "str");
	assert_int_equal(adapter_get_string(root, "data.s.y", false, &s, &err), ADAPTER_EINVAL);
	assert_string_equal(err.field, "data.s");
	cJSON_Delete(root);
}

static void get_number_takes_numbers_and_numeric_strings(void **state)
{
	proto_error_t err;
	cJSON *root = parse(DOC, &err);
	double d = 0;

	(void)state;
	assert_int_equal(adapter_get_number(root, "n", true, &d, &err), 0);
	assert_true(d == 1.5);
	assert_int_equal(adapter_get_number(root, "ns", true, &d, &err), 0);
	assert_true(d == -22.5);
	assert_int_equal(adapter_get_number(root, "data.courier.location.lat", true, &d, &err), 0);
	assert_true(d == 52.5);
	assert_int_equal(adapter_get_number(root, "missing", false, &d, &err), 1);
	assert_int_equal(adapter_get_number(root, "t", false, &d, &err), ADAPTER_EINVAL);
	assert_int_equal(adapter_get_number(root, "str", false, &d, &err), ADAPTER_EINVAL);
	assert_string_equal(err.field, "str");
	assert_int_equal(adapter_get_number(root, "big", false, &d, &err), ADAPTER_EINVAL);
	cJSON_Delete(root);
}

static int number_of(const char *json_value, double *d)
{
	char doc[256];
	proto_error_t err;
	cJSON *root;
	int rc;

	snprintf(doc, sizeof(doc), "{\"v\":%s}", json_value);
	root = parse(doc, &err);
	assert_non_null(root);
	rc = adapter_get_number(root, "v", true, d, &err);
	cJSON_Delete(root);
	return rc;
}

static void get_number_refuses_non_decimal_strings(void **state)
{
	static const char *const bad[] = {
	    "\"nan\"",	"\"NaN\"",
	    "\"inf\"",	"\"-Infinity\"",
	    "\"0x10\"", "\" 1\"",
	    "\"1 \"",	"\"\"",
	    "\"1e\"",	"\"1e+\"",
	    "\".\"",	"\"-\"",
	    "\"1,5\"",	"\"1e999\"",
	    "\"--1\"",	"\"12345678901234567890123456789012345678901234567890123456789012345\"",
	};
	double d;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (number_of(bad[i], &d) != ADAPTER_EINVAL)
			fail_msg("accepted %s", bad[i]);
	}
	assert_int_equal(number_of("\".5\"", &d), 0);
	assert_true(d == 0.5);
	assert_int_equal(number_of("\"5.\"", &d), 0);
	assert_int_equal(number_of("\"+5E2\"", &d), 0);
	assert_true(d == 500);
	assert_int_equal(number_of("1e308", &d), 0);
	assert_int_equal(number_of("-1e999", &d), ADAPTER_EINVAL);
}

/* --- times ------------------------------------------------------------------------ */

static int64_t t(const char *s)
{
	int64_t ms = -12345;

	if (adapter_parse_time(s, &ms) != ADAPTER_OK)
		return -1;
	return ms;
}

static void time_parses_rfc3339_utc(void **state)
{
	(void)state;
	assert_int_equal(t("2024-05-01T12:00:00Z"), 1714564800000);
	assert_int_equal(t("2024-05-01t12:00:00z"), 1714564800000);
	assert_int_equal(t("2024-05-01 12:00:00Z"), 1714564800000);
	assert_int_equal(t("2024-05-01T12:00:00+00:00"), 1714564800000);
	assert_int_equal(t("2024-05-01T12:00:00-00:00"), 1714564800000);
	assert_int_equal(t("2000-03-01T00:00:00Z"), 951868800000);
}

static void time_keeps_ms_and_truncates_longer_fractions(void **state)
{
	(void)state;
	assert_int_equal(t("2024-05-01T12:00:00.1Z"), 1714564800100);
	assert_int_equal(t("2024-05-01T12:00:00.12Z"), 1714564800120);
	assert_int_equal(t("2024-05-01T12:00:00.123Z"), 1714564800123);
	assert_int_equal(t("2024-05-01T12:00:00.123456Z"), 1714564800123);
	assert_int_equal(t("2024-05-01T12:00:00.123456789Z"), 1714564800123);
	assert_int_equal(t("2024-05-01T12:00:00.999999999999999999999Z"), 1714564800999);
	assert_int_equal(t("2024-05-01T12:00:00.Z"), -1);
}

static void time_applies_offsets_across_midnight(void **state)
{
	(void)state;
	/* 01:30 at +02:00 is 23:30 UTC of the previous day (and year). */
	assert_int_equal(t("2024-01-01T01:30:00+02:00"), 1704065400000);
	/* 22:30 at -05:00 is 03:30 UTC of the next day (and year). */
	assert_int_equal(t("2023-12-31T22:30:00-05:00"), 1704079800000);
	assert_int_equal(t("2024-05-01T17:45:00.5+05:45"), 1714564800500);
	assert_int_equal(t("2024-05-01T00:00:00-12:00"), 1714564800000 + 0);
}

static void time_knows_leap_years(void **state)
{
	(void)state;
	assert_int_equal(t("2024-02-29T00:00:00Z"), 1709164800000);
	assert_int_equal(t("2400-02-29T00:00:00Z"), 13574563200000);
	assert_int_equal(t("2000-02-29T00:00:00Z"), 951868800000 - 86400000);
	assert_int_equal(t("2023-02-29T00:00:00Z"), -1);
	assert_int_equal(t("2100-02-29T00:00:00Z"), -1);
	assert_int_equal(t("2024-02-30T00:00:00Z"), -1);
	assert_int_equal(t("2024-04-31T00:00:00Z"), -1);
}

static void time_refuses_out_of_range_fields(void **state)
{
	static const char *const bad[] = {
	    "2024-13-01T00:00:00Z", "2024-00-01T00:00:00Z",	 "2024-01-32T00:00:00Z",
	    "2024-01-00T00:00:00Z", "2024-01-01T24:00:00Z",	 "2024-01-01T00:60:00Z",
	    "2024-01-01T00:00:61Z", "2024-01-01T00:00:00+24:00", "2024-01-01T00:00:00+01:60",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (t(bad[i]) != -1)
			fail_msg("accepted %s", bad[i]);
	}
	/* A leap second is valid RFC 3339; it reads as the next second. */
	assert_int_equal(t("2016-12-31T23:59:60Z"), t("2017-01-01T00:00:00Z"));
}

static void time_refuses_bad_formats(void **state)
{
	static const char *const bad[] = {
	    "2024-05-01T12:00:00",	     "2024-05-01",
	    "2024-5-01T12:00:00Z",	     "2024-05-01T12:00Z",
	    "2024-05-01T12:00:00+0200",	     "2024-05-01T12:00:00+02",
	    "2024-05-01T12:00:00Zjunk",	     "2024-05-01T12:00:00 Z",
	    "2024-05-01X12:00:00Z",	     " 2024-05-01T12:00:00Z",
	    "2024/05/01T12:00:00Z",	     "+2024-05-01T12:00:00Z",
	    "2024-05-01T12:00:00UTC",	     "",
	    "Wed, 01 May 2024 12:00:00 GMT", "2024-05-01T1:00:00Z",
	    "2024-05-01T12:00:00.12a Z",     "２０２４-05-01T12:00:00Z",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (t(bad[i]) != -1)
			fail_msg("accepted %s", bad[i]);
	}
	assert_int_equal(adapter_parse_time(NULL, NULL), ADAPTER_EINVAL);
}

static void time_range_is_1_to_proto_ms_max(void **state)
{
	(void)state;
	assert_int_equal(t("1970-01-01T00:00:00Z"), -1);
	assert_int_equal(t("1970-01-01T00:00:00.001Z"), 1);
	assert_int_equal(t("1969-12-31T23:59:59Z"), -1);
	assert_int_equal(t("1970-01-01T01:00:00+01:00"), -1);
	assert_int_equal(t("5138-11-16T09:46:39.999Z"), PROTO_MS_MAX);
	assert_int_equal(t("5138-11-16T09:46:40Z"), -1);
	assert_int_equal(t("9999-12-31T23:59:59Z"), -1);
}

static void time_reads_epoch_seconds_and_ms_strings(void **state)
{
	(void)state;
	assert_int_equal(t("1700000000"), 1700000000000);
	assert_int_equal(t("1700000000.5"), 1700000000500);
	assert_int_equal(t("1700000000.123"), 1700000000123);
	assert_int_equal(t("1700000000123"), 1700000000123);
	/* Below 10^11 is seconds, from 10^11 on milliseconds. */
	assert_int_equal(t("99999999999"), 99999999999000);
	assert_int_equal(t("100000000000"), 100000000000);
	assert_int_equal(t("99999999999999"), PROTO_MS_MAX);
	assert_int_equal(t("100000000000000"), -1);
	assert_int_equal(t("1e300"), -1);
	assert_int_equal(t("0"), -1);
	assert_int_equal(t("-1700000000"), -1);
	assert_int_equal(t("nan"), -1);
	assert_int_equal(t("inf"), -1);
	assert_int_equal(t("0x65"), -1);
}

static void get_time_takes_strings_and_numbers(void **state)
{
	proto_error_t err;
	cJSON *root = parse("{\"a\":\"2024-05-01T12:00:00Z\",\"b\":1714564800,\"c\":1714564800000,"
			    "\"d\":true,\"e\":\"soon\",\"f\":1e999,\"g\":-5,\"h\":null}",
			    &err);
	int64_t ms = 7;

	(void)state;
	assert_non_null(root);
	assert_int_equal(adapter_get_time(root, "a", true, &ms, &err), 0);
	assert_int_equal(ms, 1714564800000);
	ms = 7;
	assert_int_equal(adapter_get_time(root, "b", true, &ms, &err), 0);
	assert_int_equal(ms, 1714564800000);
	assert_int_equal(adapter_get_time(root, "c", true, &ms, &err), 0);
	assert_int_equal(ms, 1714564800000);
	ms = 7;
	assert_int_equal(adapter_get_time(root, "h", false, &ms, &err), 1);
	assert_int_equal(adapter_get_time(root, "x", false, &ms, &err), 1);
	assert_int_equal(ms, 7);
	assert_int_equal(adapter_get_time(root, "x", true, &ms, &err), ADAPTER_EINVAL);
	assert_string_equal(err.field, "x");
	assert_int_equal(adapter_get_time(root, "d", false, &ms, &err), ADAPTER_EINVAL);
	assert_string_equal(err.field, "d");
	assert_int_equal(adapter_get_time(root, "e", false, &ms, &err), ADAPTER_EINVAL);
	assert_int_equal(adapter_get_time(root, "f", false, &ms, &err), ADAPTER_EINVAL);
	assert_int_equal(adapter_get_time(root, "g", false, &ms, &err), ADAPTER_EINVAL);
	assert_int_equal(ms, 7);
	cJSON_Delete(root);
}

/* --- coordinates ------------------------------------------------------------------ */

static int latlng(const char *doc, bool required, double *lat, double *lng, bool *found,
		  proto_error_t *err)
{
	cJSON *root = parse(doc, err);
	int rc;

	assert_non_null(root);
	rc = adapter_get_latlng(root, "loc.lat", "loc.lng", required, lat, lng, found, err);
	cJSON_Delete(root);
	return rc;
}

static void latlng_reads_numbers_and_strings(void **state)
{
	proto_error_t err;
	double lat = 0, lng = 0;
	bool found = false;

	(void)state;
	assert_int_equal(
	    latlng("{\"loc\":{\"lat\":52.5,\"lng\":\"-13.25\"}}", true, &lat, &lng, &found, &err),
	    0);
	assert_true(found);
	assert_true(lat == 52.5 && lng == -13.25);
	assert_int_equal(
	    latlng("{\"loc\":{\"lat\":-90,\"lng\":180}}", true, &lat, &lng, &found, &err), 0);
	assert_int_equal(
	    latlng("{\"loc\":{\"lat\":90,\"lng\":-180}}", true, &lat, &lng, &found, &err), 0);
}

static void latlng_absent_is_not_found_unless_required(void **state)
{
	proto_error_t err;
	double lat = 1, lng = 2;
	bool found = true;

	(void)state;
	assert_int_equal(latlng("{\"x\":1}", false, &lat, &lng, &found, &err), 0);
	assert_false(found);
	assert_true(lat == 1 && lng == 2);
	assert_int_equal(latlng("{\"loc\":null}", false, &lat, &lng, &found, &err), 0);
	assert_false(found);
	assert_int_equal(latlng("{\"x\":1}", true, &lat, &lng, &found, &err), ADAPTER_EINVAL);
	assert_string_equal(err.field, "loc.lat");
}

static void latlng_refuses_half_a_position(void **state)
{
	proto_error_t err;
	double lat, lng;
	bool found;

	(void)state;
	assert_int_equal(latlng("{\"loc\":{\"lat\":1}}", false, &lat, &lng, &found, &err),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "loc.lng");
	assert_int_equal(latlng("{\"loc\":{\"lng\":1}}", false, &lat, &lng, &found, &err),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "loc.lat");
}

static void latlng_refuses_out_of_range_and_non_finite(void **state)
{
	proto_error_t err;
	double lat, lng;
	bool found;

	(void)state;
	assert_int_equal(
	    latlng("{\"loc\":{\"lat\":90.0001,\"lng\":0}}", false, &lat, &lng, &found, &err),
	    ADAPTER_EINVAL);
	assert_string_equal(err.field, "loc.lat");
	assert_int_equal(
	    latlng("{\"loc\":{\"lat\":0,\"lng\":-180.5}}", false, &lat, &lng, &found, &err),
	    ADAPTER_EINVAL);
	assert_string_equal(err.field, "loc.lng");
	assert_int_equal(
	    latlng("{\"loc\":{\"lat\":1e999,\"lng\":0}}", false, &lat, &lng, &found, &err),
	    ADAPTER_EINVAL);
	assert_int_equal(
	    latlng("{\"loc\":{\"lat\":\"NaN\",\"lng\":0}}", false, &lat, &lng, &found, &err),
	    ADAPTER_EINVAL);
	assert_int_equal(
	    latlng("{\"loc\":{\"lat\":[1],\"lng\":0}}", false, &lat, &lng, &found, &err),
	    ADAPTER_EINVAL);
	assert_int_equal(latlng("{\"loc\":\"52.5,13.4\"}", false, &lat, &lng, &found, &err),
			 ADAPTER_EINVAL);
	assert_string_equal(err.field, "loc");
	assert_false(found);
}

/* --- building updates ----------------------------------------------------------- */

static void update_init_fills_the_update(void **state)
{
	proto_error_t err;
	proto_update_t u;

	(void)state;
	memset(&u, 0x5a, sizeof(u));
	assert_int_equal(
	    adapter_update_init(&u, "uber_direct", "ord-1.a_b~C", 1700000000000, "evt_1", &err), 0);
	assert_string_equal(u.order_id, "ord-1.a_b~C");
	assert_string_equal(u.provider, "uber_direct");
	assert_int_equal(u.ts, 1700000000000);
	assert_string_equal(u.event_id, "evt_1");
	assert_false(u.has_location);
	assert_false(u.has_courier);
	assert_false(u.has_eta);
	assert_int_equal(u.status, PROTO_STATUS_NONE);
	assert_int_equal(adapter_update_init(&u, "p", "o", 1, NULL, &err), 0);
	assert_string_equal(u.event_id, "");
}

static void update_init_checks_the_order_id(void **state)
{
	char long_id[PROTO_ORDER_ID_MAX + 2];
	proto_error_t err;
	proto_update_t u;

	(void)state;
	assert_int_equal(adapter_update_init(&u, "p", "", 1, NULL, &err), ADAPTER_EINVAL);
	assert_string_equal(err.field, "order_id");
	assert_int_equal(adapter_update_init(&u, "p", NULL, 1, NULL, &err), ADAPTER_EINVAL);
	assert_int_equal(adapter_update_init(&u, "p", "a b", 1, NULL, &err), ADAPTER_EINVAL);
	assert_int_equal(adapter_update_init(&u, "p", "a/b", 1, NULL, &err), ADAPTER_EINVAL);
	assert_int_equal(adapter_update_init(&u, "p", "\xc3\xa9", 1, NULL, &err), ADAPTER_EINVAL);
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[PROTO_ORDER_ID_MAX] = '\0';
	assert_int_equal(adapter_update_init(&u, "p", long_id, 1, NULL, &err), 0);
	long_id[PROTO_ORDER_ID_MAX] = 'a';
	long_id[PROTO_ORDER_ID_MAX + 1] = '\0';
	assert_int_equal(adapter_update_init(&u, "p", long_id, 1, NULL, &err), ADAPTER_EINVAL);
}

static void update_init_checks_ts(void **state)
{
	proto_error_t err;
	proto_update_t u;

	(void)state;
	assert_int_equal(adapter_update_init(&u, "p", "o", 0, NULL, &err), ADAPTER_EINVAL);
	assert_string_equal(err.field, "ts");
	assert_int_equal(adapter_update_init(&u, "p", "o", PROTO_MS_MAX + 1, NULL, &err),
			 ADAPTER_EINVAL);
	assert_int_equal(adapter_update_init(&u, "p", "o", PROTO_MS_MAX, NULL, &err), 0);
}

static void update_init_makes_event_ids_printable_and_short(void **state)
{
	char long_id[300];
	proto_error_t err;
	proto_update_t u;

	(void)state;
	assert_int_equal(adapter_update_init(&u, "p", "o", 1, "a\tb\xc3\xa9~\x7f", &err), 0);
	assert_string_equal(u.event_id, "a_b__~_");
	memset(long_id, 'e', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	assert_int_equal(adapter_update_init(&u, "p", "o", 1, long_id, &err), 0);
	assert_int_equal(strlen(u.event_id), PROTO_EVENT_ID_MAX);
}

static void copy_text_truncates_at_utf8_boundaries(void **state)
{
	char dst[6];

	(void)state;
	adapter_copy_text(dst, sizeof(dst), "abcdefgh");
	assert_string_equal(dst, "abcde");
	/* "abcd" + é (2 bytes) does not fit in 5: é is left out whole. */
	adapter_copy_text(dst, sizeof(dst), "abcd\xc3\xa9");
	assert_string_equal(dst, "abcd");
	adapter_copy_text(dst, sizeof(dst), "a\xe2\x82\xac\xe2\x82\xac");
	assert_string_equal(dst, "a\xe2\x82\xac");
	adapter_copy_text(dst, sizeof(dst), "\xf0\x9f\x9a\xb2!");
	assert_string_equal(dst, "\xf0\x9f\x9a\xb2!");
	adapter_copy_text(dst, sizeof(dst), NULL);
	assert_string_equal(dst, "");
	adapter_copy_text(dst, 1, "abc");
	assert_string_equal(dst, "");
	adapter_copy_text(NULL, 0, "abc");
}

static void copy_text_replaces_control_chars_and_bad_bytes(void **state)
{
	char dst[32];

	(void)state;
	adapter_copy_text(dst, sizeof(dst),
			  "a\tb\nc\x7f"
			  "d");
	assert_string_equal(dst, "a b c d");
	adapter_copy_text(dst, sizeof(dst),
			  "a\xff"
			  "b\xc3");
	assert_string_equal(dst, "a?b?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(fail_fills_field_and_message),
	    cmocka_unit_test(hmac_sha256_known_answer_matches),
	    cmocka_unit_test(hmac_hex_is_case_insensitive),
	    cmocka_unit_test(hmac_tolerates_prefix_and_whitespace),
	    cmocka_unit_test(hmac_refuses_wrong_digest_or_length),
	    cmocka_unit_test(hmac_refuses_an_empty_key),
	    cmocka_unit_test(hmac_sha512_known_answer_matches),
	    cmocka_unit_test(hmac_of_an_empty_body_works),
	    cmocka_unit_test(equal_compares_content_and_length),
	    cmocka_unit_test(hex_decode_accepts_both_cases),
	    cmocka_unit_test(hex_decode_refuses_bad_input),
	    cmocka_unit_test(authorization_accepts_bearer),
	    cmocka_unit_test(authorization_accepts_basic_with_any_padding),
	    cmocka_unit_test(authorization_refuses_bad_basic),
	    cmocka_unit_test(authorization_refuses_missing_header_or_secret),
	    cmocka_unit_test(authorization_refuses_huge_values),
	    cmocka_unit_test(body_event_id_is_a_sha256_prefix),
	    cmocka_unit_test(parse_json_accepts_an_object),
	    cmocka_unit_test(parse_json_needs_no_nul_terminator),
	    cmocka_unit_test(parse_json_refuses_non_objects),
	    cmocka_unit_test(parse_json_refuses_trailing_data_and_truncation),
	    cmocka_unit_test(parse_json_refuses_nul_bytes_and_escapes),
	    cmocka_unit_test(parse_json_refuses_invalid_utf8),
	    cmocka_unit_test(parse_json_refuses_duplicate_top_level_members),
	    cmocka_unit_test(parse_json_survives_deep_nesting),
	    cmocka_unit_test(get_steps_through_objects),
	    cmocka_unit_test(get_string_reports_presence_and_types),
	    cmocka_unit_test(get_number_takes_numbers_and_numeric_strings),
	    cmocka_unit_test(get_number_refuses_non_decimal_strings),
	    cmocka_unit_test(time_parses_rfc3339_utc),
	    cmocka_unit_test(time_keeps_ms_and_truncates_longer_fractions),
	    cmocka_unit_test(time_applies_offsets_across_midnight),
	    cmocka_unit_test(time_knows_leap_years),
	    cmocka_unit_test(time_refuses_out_of_range_fields),
	    cmocka_unit_test(time_refuses_bad_formats),
	    cmocka_unit_test(time_range_is_1_to_proto_ms_max),
	    cmocka_unit_test(time_reads_epoch_seconds_and_ms_strings),
	    cmocka_unit_test(get_time_takes_strings_and_numbers),
	    cmocka_unit_test(latlng_reads_numbers_and_strings),
	    cmocka_unit_test(latlng_absent_is_not_found_unless_required),
	    cmocka_unit_test(latlng_refuses_half_a_position),
	    cmocka_unit_test(latlng_refuses_out_of_range_and_non_finite),
	    cmocka_unit_test(update_init_fills_the_update),
	    cmocka_unit_test(update_init_checks_the_order_id),
	    cmocka_unit_test(update_init_checks_ts),
	    cmocka_unit_test(update_init_makes_event_ids_printable_and_short),
	    cmocka_unit_test(copy_text_truncates_at_utf8_boundaries),
	    cmocka_unit_test(copy_text_replaces_control_chars_and_bad_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
