/*
 * test_proto.c - proto/: identifiers, cursors, the canonical update's
 * validation and encoding, the order state, the frames and the key names.
 *
 * The fixtures marked "as the script wrote it" were produced by running
 * proto/apply_update.lua in redis-server 7.0 (EVALSHA) and copied verbatim.
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

#include "proto.h"
#include "script.h"

/* --- fixtures ------------------------------------------------------------ */

#define FULL_UPDATE                                                                                \
	"{\"v\":1,\"order_id\":\"ord-8f3a2c\",\"provider\":\"uber_direct\",\"ts\":1700000000000,"  \
	"\"event_id\":\"evt_01HF3Z\",\"location\":{\"lat\":52.520008,\"lng\":13.404954,"           \
	"\"heading_deg\":90.5,\"speed_mps\":4.2,\"accuracy_m\":5},"                                \
	"\"status\":\"en_route_to_dropoff\","                                                      \
	"\"courier\":{\"id\":\"cr_77\",\"name\":\"Ana Silva\",\"vehicle\":\"bicycle\"},"           \
	"\"eta\":{\"pickup\":1699999400000,\"dropoff\":1700000600000}}"

#define MINIMAL_UPDATE                                                                             \
	"{\"v\":1,\"order_id\":\"ord-8f3a2c\",\"provider\":\"acme\",\"ts\":1700000000000,"         \
	"\"status\":\"created\"}"

/* FULL_UPDATE's frame as the script wrote it. */
#define FULL_FRAME                                                                                 \
	"{\"type\":\"update\",\"order_id\":\"ord-8f3a2c\",\"update\":" FULL_UPDATE                 \
	",\"cursor\":\"1795297140851-0\"}"

/* The state after FULL_UPDATE then a location-only update, as the script wrote it:
 * members in Lua's order, a location's unknown member copied, a null kept. */
#define SCRIPT_STATE                                                                               \
	"{\"order_id\":\"ord-8f3a2c\",\"status_ts\":1700000000000,"                                \
	"\"location\":{\"lng\":13.405,\"sat\":7,\"heading_deg\":null,\"lat\":52.5201,"             \
	"\"ts\":1700000005000},"                                                                   \
	"\"eta\":{\"pickup\":1699999400000,\"dropoff\":1700000600000,\"ts\":1700000000000},"       \
	"\"provider\":\"uber_direct\",\"status\":\"en_route_to_dropoff\","                         \
	"\"updated_at\":1700000005000,"                                                            \
	"\"courier\":{\"id\":\"cr_77\",\"vehicle\":\"bicycle\",\"name\":\"Ana Silva\"}}"

/* Members for building update variants: "{" V "," OID "," PROV "," TS "," ST "}". */
#define V "\"v\":1"
#define OID "\"order_id\":\"ord-1\""
#define PROV "\"provider\":\"acme\""
#define TS "\"ts\":1700000000000"
#define ST "\"status\":\"created\""
#define REQ V "," OID "," PROV "," TS

#define MS_MAX "99999999999999"

/* --- helpers ------------------------------------------------------------- */

static int parse(const char *json, proto_update_t *u, proto_error_t *err)
{
	return proto_update_parse(json, strlen(json), u, err);
}

static void assert_accepted(const char *json)
{
	proto_update_t u;
	proto_error_t err;
	int rc = parse(json, &u, &err);

	if (rc != PROTO_OK)
		print_error("unexpected rejection: %s: %s\n", err.field, err.message);
	assert_int_equal(rc, PROTO_OK);
}

/* Rejected with PROTO_EINVAL naming field; message checked when given. */
static void assert_rejected(const char *json, const char *field, const char *message)
{
	proto_update_t u;
	proto_error_t err;

	assert_int_equal(parse(json, &u, &err), PROTO_EINVAL);
	assert_string_equal(err.field, field);
	if (message != NULL)
		assert_string_equal(err.message, message);
}

/* printf into a fixed test buffer. */
static const char *fmt(char *buf, size_t cap, const char *format, ...)
{
	va_list ap;

	va_start(ap, format);
	int n = vsnprintf(buf, cap, format, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < cap);
	return buf;
}

/* n copies of s, NUL-terminated, in buf. */
static const char *repeat(char *buf, size_t cap, const char *s, size_t n)
{
	size_t len = strlen(s);

	assert_true(len * n < cap);
	for (size_t i = 0; i < n; i++)
		memcpy(buf + i * len, s, len);
	buf[len * n] = '\0';
	return buf;
}

static proto_update_t decoded(const char *json)
{
	proto_update_t u;
	proto_error_t err;

	assert_int_equal(parse(json, &u, &err), PROTO_OK);
	return u;
}

#define MSG_INT_MS "must be an integer in [1, 99999999999999] (ms since epoch)"
#define MSG_STATUS                                                                                 \
	"must be one of created, courier_assigned, en_route_to_pickup, at_pickup, picked_up, "     \
	"en_route_to_dropoff, at_dropoff, delivered, cancelled, returned, failed"

/* --- order ids ----------------------------------------------------------- */

static void order_id_of_every_allowed_character_is_valid(void **state)
{
	static const char id[] = "ABCXYZabcxyz0189._~-";

	(void)state;
	assert_true(proto_order_id_valid(id, strlen(id)));
}

static void order_id_of_one_character_is_valid(void **state)
{
	(void)state;
	assert_true(proto_order_id_valid("a", 1));
}

static void order_id_of_128_characters_is_valid(void **state)
{
	char buf[200];

	(void)state;
	assert_true(proto_order_id_valid(repeat(buf, sizeof(buf), "a", 128), 128));
}

static void order_id_of_129_characters_is_invalid(void **state)
{
	char buf[200];

	(void)state;
	assert_false(proto_order_id_valid(repeat(buf, sizeof(buf), "a", 129), 129));
}

static void empty_order_id_is_invalid(void **state)
{
	(void)state;
	assert_false(proto_order_id_valid("", 0));
	assert_false(proto_order_id_valid(NULL, 0));
	assert_false(proto_order_id_valid(NULL, 3));
}

static void order_id_with_any_other_character_is_invalid(void **state)
{
	(void)state;
	for (int c = 0; c < 256; c++) {
		char id[3] = {'a', (char)c, 'b'};
		bool allowed = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '~' ||
			       c == '-';
		assert_int_equal(proto_order_id_valid(id, 3), allowed);
	}
}

static void order_id_validity_reads_only_len_bytes(void **state)
{
	(void)state;
	assert_true(proto_order_id_valid("abc/def", 3));
	assert_false(proto_order_id_valid("abc/def", 4));
}

/* --- statuses ------------------------------------------------------------ */

static const struct {
	proto_status_t status;
	const char *name;
	bool terminal;
} status_table[] = {
    {PROTO_STATUS_CREATED, "created", false},
    {PROTO_STATUS_COURIER_ASSIGNED, "courier_assigned", false},
    {PROTO_STATUS_EN_ROUTE_TO_PICKUP, "en_route_to_pickup", false},
    {PROTO_STATUS_AT_PICKUP, "at_pickup", false},
    {PROTO_STATUS_PICKED_UP, "picked_up", false},
    {PROTO_STATUS_EN_ROUTE_TO_DROPOFF, "en_route_to_dropoff", false},
    {PROTO_STATUS_AT_DROPOFF, "at_dropoff", false},
    {PROTO_STATUS_DELIVERED, "delivered", true},
    {PROTO_STATUS_CANCELLED, "cancelled", true},
    {PROTO_STATUS_RETURNED, "returned", true},
    {PROTO_STATUS_FAILED, "failed", true},
};
#define STATUS_TABLE_LEN (sizeof(status_table) / sizeof(status_table[0]))

static void every_status_has_its_canonical_name(void **state)
{
	(void)state;
	assert_int_equal(STATUS_TABLE_LEN, PROTO_STATUS__COUNT - 1);
	for (size_t i = 0; i < STATUS_TABLE_LEN; i++)
		assert_string_equal(proto_status_name(status_table[i].status),
				    status_table[i].name);
}

static void every_canonical_name_maps_to_its_status(void **state)
{
	(void)state;
	for (size_t i = 0; i < STATUS_TABLE_LEN; i++) {
		proto_status_t s = PROTO_STATUS_NONE;
		assert_int_equal(proto_status_from_name(status_table[i].name, &s), PROTO_OK);
		assert_int_equal(s, status_table[i].status);
	}
}

static void status_none_and_out_of_range_have_no_name(void **state)
{
	(void)state;
	assert_null(proto_status_name(PROTO_STATUS_NONE));
	assert_null(proto_status_name(PROTO_STATUS__COUNT));
	assert_null(proto_status_name((proto_status_t)-1));
	assert_null(proto_status_name((proto_status_t)1000));
}

static void non_canonical_status_names_are_rejected(void **state)
{
	static const char *const bad[] = {"",	       "Delivered", "delivered ", "none",
					  "picked-up", "PICKED_UP", "unknown"};
	proto_status_t s = PROTO_STATUS_CREATED;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(proto_status_from_name(bad[i], &s), PROTO_EINVAL);
	assert_int_equal(proto_status_from_name(NULL, &s), PROTO_EINVAL);
	assert_int_equal(s, PROTO_STATUS_CREATED);
}

static void only_delivered_cancelled_returned_failed_are_terminal(void **state)
{
	(void)state;
	for (size_t i = 0; i < STATUS_TABLE_LEN; i++)
		assert_int_equal(proto_status_is_terminal(status_table[i].status),
				 status_table[i].terminal);
	assert_false(proto_status_is_terminal(PROTO_STATUS_NONE));
	assert_false(proto_status_is_terminal(PROTO_STATUS__COUNT));
}

/* --- cursors ------------------------------------------------------------- */

static int cursor(const char *s, proto_cursor_t *c)
{
	return proto_cursor_parse(s, strlen(s), c);
}

static void cursor_parses_ms_and_seq(void **state)
{
	proto_cursor_t c;

	(void)state;
	assert_int_equal(cursor("1700000000000-42", &c), PROTO_OK);
	assert_true(c.ms == 1700000000000ULL);
	assert_true(c.seq == 42);
}

static void cursor_of_zeros_parses(void **state)
{
	proto_cursor_t c = {9, 9};

	(void)state;
	assert_int_equal(cursor("0-0", &c), PROTO_OK);
	assert_true(c.ms == 0 && c.seq == 0);
}

static void cursor_of_two_uint64_max_parses_at_cursor_max_length(void **state)
{
	static const char s[] = "18446744073709551615-18446744073709551615";
	proto_cursor_t c;

	(void)state;
	assert_int_equal(strlen(s), PROTO_CURSOR_MAX);
	assert_int_equal(cursor(s, &c), PROTO_OK);
	assert_true(c.ms == UINT64_MAX && c.seq == UINT64_MAX);
}

static void cursor_with_ms_overflowing_uint64_is_rejected(void **state)
{
	proto_cursor_t c;

	(void)state;
	assert_int_equal(cursor("18446744073709551616-0", &c), PROTO_EINVAL);
	assert_int_equal(cursor("99999999999999999999-0", &c), PROTO_EINVAL);
}

static void cursor_with_seq_overflowing_uint64_is_rejected(void **state)
{
	proto_cursor_t c;

	(void)state;
	assert_int_equal(cursor("0-18446744073709551616", &c), PROTO_EINVAL);
}

static void cursor_longer_than_cursor_max_is_rejected(void **state)
{
	proto_cursor_t c;

	(void)state;
	assert_int_equal(cursor("1-000000000000000000000000000000000000000001", &c), PROTO_EINVAL);
	assert_int_equal(cursor("123456789012345678901-1", &c), PROTO_EINVAL);
}

static void cursor_with_empty_ms_is_rejected(void **state)
{
	proto_cursor_t c;

	(void)state;
	assert_int_equal(cursor("-1", &c), PROTO_EINVAL);
	assert_int_equal(cursor("-12", &c), PROTO_EINVAL);
}

static void cursor_with_empty_seq_is_rejected(void **state)
{
	proto_cursor_t c;

	(void)state;
	assert_int_equal(cursor("1-", &c), PROTO_EINVAL);
	assert_int_equal(cursor("12-", &c), PROTO_EINVAL);
}

static void cursor_without_dash_is_rejected(void **state)
{
	proto_cursor_t c;

	(void)state;
	assert_int_equal(cursor("1700000000000", &c), PROTO_EINVAL);
}

static void cursor_with_junk_is_rejected(void **state)
{
	static const char *const junk[] = {"1-2x",  " 1-2",  "1-2 ", "+1-2",  "1-+2",
					   "1--2",  "1-2-3", "a-b",  "1.0-2", "0x1-2",
					   "1-2\n", "-",     "1_2",  "١-٢"};
	proto_cursor_t c;

	(void)state;
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		assert_int_equal(cursor(junk[i], &c), PROTO_EINVAL);
}

static void cursor_with_leading_zero_is_rejected(void **state)
{
	proto_cursor_t c;

	(void)state;
	assert_int_equal(cursor("01-2", &c), PROTO_EINVAL);
	assert_int_equal(cursor("1-02", &c), PROTO_EINVAL);
	assert_int_equal(cursor("00-0", &c), PROTO_EINVAL);
}

static void empty_cursor_is_rejected(void **state)
{
	proto_cursor_t c;

	(void)state;
	assert_int_equal(proto_cursor_parse("", 0, &c), PROTO_EINVAL);
	assert_int_equal(proto_cursor_parse(NULL, 0, &c), PROTO_EINVAL);
	assert_int_equal(proto_cursor_parse(NULL, 5, &c), PROTO_EINVAL);
}

static void cursor_parse_reads_only_len_bytes(void **state)
{
	proto_cursor_t c;

	(void)state;
	assert_int_equal(proto_cursor_parse("1-23", 3, &c), PROTO_OK);
	assert_true(c.ms == 1 && c.seq == 2);
	assert_int_equal(proto_cursor_parse("12-3", 3, &c), PROTO_EINVAL);
}

static void cursor_parse_leaves_output_untouched_on_error(void **state)
{
	proto_cursor_t c = {7, 8};

	(void)state;
	assert_int_equal(cursor("1-x", &c), PROTO_EINVAL);
	assert_true(c.ms == 7 && c.seq == 8);
}

static void cursors_compare_by_ms_then_seq(void **state)
{
	proto_cursor_t a = {1, 9}, b = {2, 0}, c = {2, 1};
	proto_cursor_t max = {UINT64_MAX, UINT64_MAX};

	(void)state;
	assert_true(proto_cursor_cmp(&a, &b) < 0);
	assert_true(proto_cursor_cmp(&b, &a) > 0);
	assert_true(proto_cursor_cmp(&b, &c) < 0);
	assert_true(proto_cursor_cmp(&c, &b) > 0);
	assert_true(proto_cursor_cmp(&c, &max) < 0);
	assert_true(proto_cursor_cmp(&max, &a) > 0);
}

static void equal_cursors_compare_equal(void **state)
{
	proto_cursor_t a = {5, 6}, b = {5, 6};

	(void)state;
	assert_int_equal(proto_cursor_cmp(&a, &b), 0);
}

/* --- updates: accepted --------------------------------------------------- */

static void full_update_decodes_every_field(void **state)
{
	proto_update_t u = decoded(FULL_UPDATE);

	(void)state;
	assert_string_equal(u.order_id, "ord-8f3a2c");
	assert_string_equal(u.provider, "uber_direct");
	assert_true(u.ts == 1700000000000LL);
	assert_string_equal(u.event_id, "evt_01HF3Z");
	assert_true(u.has_location);
	assert_true(u.location.lat == 52.520008);
	assert_true(u.location.lng == 13.404954);
	assert_true(u.location.has_heading && u.location.heading_deg == 90.5);
	assert_true(u.location.has_speed && u.location.speed_mps == 4.2);
	assert_true(u.location.has_accuracy && u.location.accuracy_m == 5.0);
	assert_int_equal(u.status, PROTO_STATUS_EN_ROUTE_TO_DROPOFF);
	assert_true(u.has_courier);
	assert_string_equal(u.courier.id, "cr_77");
	assert_string_equal(u.courier.name, "Ana Silva");
	assert_string_equal(u.courier.vehicle, "bicycle");
	assert_true(u.has_eta);
	assert_true(u.eta.has_pickup && u.eta.pickup == 1699999400000LL);
	assert_true(u.eta.has_dropoff && u.eta.dropoff == 1700000600000LL);
}

static void minimal_update_with_a_status_decodes_with_everything_else_absent(void **state)
{
	proto_update_t u = decoded(MINIMAL_UPDATE);

	(void)state;
	assert_string_equal(u.order_id, "ord-8f3a2c");
	assert_string_equal(u.provider, "acme");
	assert_true(u.ts == 1700000000000LL);
	assert_string_equal(u.event_id, "");
	assert_int_equal(u.status, PROTO_STATUS_CREATED);
	assert_false(u.has_location);
	assert_false(u.has_courier);
	assert_false(u.has_eta);
}

static void update_with_only_a_location_is_accepted(void **state)
{
	proto_update_t u = decoded("{" REQ ",\"location\":{\"lat\":1.5,\"lng\":-2.5}}");

	(void)state;
	assert_true(u.has_location);
	assert_false(u.location.has_heading || u.location.has_speed || u.location.has_accuracy);
	assert_int_equal(u.status, PROTO_STATUS_NONE);
}

static void update_with_only_an_eta_is_accepted(void **state)
{
	proto_update_t u = decoded("{" REQ ",\"eta\":{\"dropoff\":1700000600000}}");

	(void)state;
	assert_true(u.has_eta && u.eta.has_dropoff && !u.eta.has_pickup);
}

static void unknown_members_are_ignored_at_every_level(void **state)
{
	(void)state;
	assert_accepted(
	    "{" REQ ",\"extra\":[1,{}],\"Status\":7,\"location\":{\"lat\":1,\"lng\":2,"
	    "\"alt\":\"x\"},\"courier\":{\"phone\":1},\"eta\":{\"pickup\":5,\"x\":null}}");
}

static void null_optional_members_count_as_absent(void **state)
{
	proto_update_t u = decoded("{" REQ ",\"event_id\":null,\"location\":null,\"courier\":null,"
				   "\"eta\":null," ST "}");

	(void)state;
	assert_string_equal(u.event_id, "");
	assert_false(u.has_location || u.has_courier || u.has_eta);
	assert_int_equal(u.status, PROTO_STATUS_CREATED);
}

static void members_may_come_in_any_order(void **state)
{
	(void)state;
	assert_accepted("{" ST "," TS "," PROV "," OID "," V "}");
}

static void version_written_as_1_point_0_is_version_1(void **state)
{
	(void)state;
	assert_accepted("{\"v\":1.0," OID "," PROV "," TS "," ST "}");
}

/* --- updates: the object as a whole -------------------------------------- */

static void update_without_location_status_or_eta_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" REQ ",\"event_id\":\"e\",\"courier\":{\"id\":\"c\"}}", "",
			"needs at least one of location, status, eta, places");
}

static void update_whose_parts_are_all_null_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" REQ ",\"location\":null,\"status\":null,\"eta\":null}", "",
			"needs at least one of location, status, eta, places");
}

static void update_that_is_not_json_is_rejected_as_ejson(void **state)
{
	proto_update_t u;
	proto_error_t err;

	(void)state;
	assert_int_equal(parse("{\"v\":1,", &u, &err), PROTO_EJSON);
	assert_string_equal(err.field, "");
	assert_non_null(strstr(err.message, "is not valid JSON"));
	assert_int_equal(parse("nope", &u, &err), PROTO_EJSON);
}

static void update_that_is_not_an_object_is_rejected_as_ejson(void **state)
{
	static const char *const not_objects[] = {
	    "[]", "[" MINIMAL_UPDATE "]", "1", "\"x\"", "null", "true"};
	proto_update_t u;
	proto_error_t err;

	(void)state;
	for (size_t i = 0; i < sizeof(not_objects) / sizeof(not_objects[0]); i++) {
		assert_int_equal(parse(not_objects[i], &u, &err), PROTO_EJSON);
		assert_string_equal(err.message, "must be a JSON object");
	}
}

static void empty_input_is_rejected_as_ejson(void **state)
{
	proto_update_t u;
	proto_error_t err;

	(void)state;
	assert_int_equal(proto_update_parse("", 0, &u, &err), PROTO_EJSON);
	assert_int_equal(proto_update_parse(NULL, 0, &u, &err), PROTO_EJSON);
	assert_int_equal(proto_update_parse("   ", 3, &u, &err), PROTO_EJSON);
}

static void trailing_data_after_the_object_is_rejected(void **state)
{
	proto_update_t u;
	proto_error_t err;

	(void)state;
	assert_int_equal(parse(MINIMAL_UPDATE "x", &u, &err), PROTO_EJSON);
	assert_int_equal(parse(MINIMAL_UPDATE MINIMAL_UPDATE, &u, &err), PROTO_EJSON);
	assert_int_equal(
	    proto_update_parse(MINIMAL_UPDATE "\0x", sizeof(MINIMAL_UPDATE) + 1, &u, &err),
	    PROTO_EJSON);
}

static void trailing_whitespace_is_accepted(void **state)
{
	(void)state;
	assert_accepted(" \t" MINIMAL_UPDATE " \r\n");
}

static void input_is_read_up_to_len_and_need_not_end_in_nul(void **state)
{
	char *buf = malloc(sizeof(MINIMAL_UPDATE) - 1);
	proto_update_t u;
	proto_error_t err;

	(void)state;
	assert_non_null(buf);
	memcpy(buf, MINIMAL_UPDATE, sizeof(MINIMAL_UPDATE) - 1); /* no NUL: ASan checks the bound */
	assert_int_equal(proto_update_parse(buf, sizeof(MINIMAL_UPDATE) - 1, &u, &err), PROTO_OK);
	assert_int_equal(proto_update_parse(buf, sizeof(MINIMAL_UPDATE) - 2, &u, &err),
			 PROTO_EJSON);
	free(buf);
}

static void member_given_twice_is_rejected_naming_it(void **state)
{
	(void)state;
	assert_rejected("{" REQ "," ST ",\"status\":\"delivered\"}", "status",
			"appears more than once");
	assert_rejected("{" REQ ",\"location\":{\"lat\":1,\"lng\":2,\"lat\":3}}", "location.lat",
			"appears more than once");
}

static void nul_escape_anywhere_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" V ",\"order_id\":\"ord\\u0000x\"," PROV "," TS "," ST "}", "",
			"must not contain the escape \\u0000");
	assert_rejected("{" REQ "," ST ",\"note\":\"\\u0000\"}", "", NULL);
}

static void escaped_backslash_before_u0000_text_is_not_a_nul_escape(void **state)
{
	(void)state;
	assert_accepted("{" REQ "," ST ",\"note\":\"\\\\u0000\"}");
}

static void from_json_of_null_is_rejected_as_ejson(void **state)
{
	proto_update_t u;
	proto_error_t err;

	(void)state;
	assert_int_equal(proto_update_from_json(NULL, &u, &err), PROTO_EJSON);
}

static void from_json_works_on_a_cjson_tree(void **state)
{
	cJSON *root = cJSON_Parse(FULL_UPDATE);
	proto_update_t u;
	proto_error_t err;

	(void)state;
	assert_non_null(root);
	assert_int_equal(proto_update_from_json(root, &u, &err), PROTO_OK);
	assert_string_equal(u.order_id, "ord-8f3a2c");
	cJSON_Delete(root);
}

static void from_json_rejects_a_non_finite_number_built_in_c(void **state)
{
	cJSON *root = cJSON_Parse(MINIMAL_UPDATE);
	cJSON *loc = cJSON_CreateObject();
	proto_update_t u;
	proto_error_t err;

	(void)state;
	assert_non_null(root);
	assert_non_null(loc);
	cJSON_AddNumberToObject(loc, "lat", (double)NAN);
	cJSON_AddNumberToObject(loc, "lng", 1);
	cJSON_AddItemToObject(root, "location", loc);
	assert_int_equal(proto_update_from_json(root, &u, &err), PROTO_EINVAL);
	assert_string_equal(err.field, "location.lat");
	cJSON_Delete(root);
}

static void rejected_update_leaves_output_untouched(void **state)
{
	proto_update_t u, before;
	proto_error_t err;

	(void)state;
	memset(&u, 0xab, sizeof(u));
	before = u;
	assert_int_equal(parse("{" REQ ",\"location\":{\"lat\":91,\"lng\":0}}", &u, &err),
			 PROTO_EINVAL);
	assert_memory_equal(&u, &before, sizeof(u));
}

static void error_may_be_null(void **state)
{
	proto_update_t u;

	(void)state;
	assert_int_equal(proto_update_parse("{}", 2, &u, NULL), PROTO_EINVAL);
	assert_int_equal(proto_update_parse("x", 1, &u, NULL), PROTO_EJSON);
}

/* --- v ------------------------------------------------------------------- */

static void update_without_v_is_rejected_naming_v(void **state)
{
	(void)state;
	assert_rejected("{" OID "," PROV "," TS "," ST "}", "v", "is required");
}

static void update_with_v_2_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{\"v\":2," OID "," PROV "," TS "," ST "}", "v", "must be 1");
	assert_rejected("{\"v\":0," OID "," PROV "," TS "," ST "}", "v", "must be 1");
	assert_rejected("{\"v\":1.5," OID "," PROV "," TS "," ST "}", "v", "must be 1");
}

static void update_with_v_as_string_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{\"v\":\"1\"," OID "," PROV "," TS "," ST "}", "v", "must be 1");
}

static void update_with_v_null_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{\"v\":null," OID "," PROV "," TS "," ST "}", "v", "must be 1");
}

static void update_with_v_true_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{\"v\":true," OID "," PROV "," TS "," ST "}", "v", "must be 1");
}

/* --- order_id ------------------------------------------------------------ */

static void update_without_order_id_is_rejected_naming_order_id(void **state)
{
	(void)state;
	assert_rejected("{" V "," PROV "," TS "," ST "}", "order_id", "is required");
}

static void update_with_numeric_order_id_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" V ",\"order_id\":123," PROV "," TS "," ST "}", "order_id",
			"must be a string");
}

static void update_with_null_order_id_is_rejected_as_wrong_type(void **state)
{
	(void)state;
	assert_rejected("{" V ",\"order_id\":null," PROV "," TS "," ST "}", "order_id",
			"must be a string");
}

static void update_with_object_order_id_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" V ",\"order_id\":{}," PROV "," TS "," ST "}", "order_id",
			"must be a string");
}

static void update_with_empty_order_id_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" V ",\"order_id\":\"\"," PROV "," TS "," ST "}", "order_id",
			"must be 1 to 128 characters long");
}

static void update_with_128_character_order_id_is_accepted(void **state)
{
	char id[200], json[512];

	(void)state;
	repeat(id, sizeof(id), "A", 128);
	assert_accepted(
	    fmt(json, sizeof(json), "{" V ",\"order_id\":\"%s\"," PROV "," TS "," ST "}", id));
}

static void update_with_129_character_order_id_is_rejected(void **state)
{
	char id[200], json[512];

	(void)state;
	repeat(id, sizeof(id), "A", 129);
	assert_rejected(
	    fmt(json, sizeof(json), "{" V ",\"order_id\":\"%s\"," PROV "," TS "," ST "}", id),
	    "order_id", "must be 1 to 128 characters long");
}

static void update_with_disallowed_order_id_character_is_rejected(void **state)
{
	static const char *const bad[] = {"a/b", "a b", "a:b", "{a}", "a+b", "é", "a\\tb"};
	char json[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_rejected(fmt(json, sizeof(json),
				    "{" V ",\"order_id\":\"%s\"," PROV "," TS "," ST "}", bad[i]),
				"order_id", "may only contain A-Z a-z 0-9 . _ ~ -");
}

/* --- provider ------------------------------------------------------------ */

static void update_without_provider_is_rejected_naming_provider(void **state)
{
	(void)state;
	assert_rejected("{" V "," OID "," TS "," ST "}", "provider", "is required");
}

static void update_with_numeric_provider_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" V "," OID ",\"provider\":7," TS "," ST "}", "provider",
			"must be a string");
}

static void update_with_null_provider_is_rejected_as_wrong_type(void **state)
{
	(void)state;
	assert_rejected("{" V "," OID ",\"provider\":null," TS "," ST "}", "provider",
			"must be a string");
}

static void update_with_empty_provider_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" V "," OID ",\"provider\":\"\"," TS "," ST "}", "provider",
			"must be 1 to 64 characters long");
}

static void update_with_64_character_provider_is_accepted(void **state)
{
	char p[100], json[256];

	(void)state;
	repeat(p, sizeof(p), "z", 64);
	assert_accepted(
	    fmt(json, sizeof(json), "{" V "," OID ",\"provider\":\"%s\"," TS "," ST "}", p));
}

static void update_with_65_character_provider_is_rejected(void **state)
{
	char p[100], json[256];

	(void)state;
	repeat(p, sizeof(p), "z", 65);
	assert_rejected(
	    fmt(json, sizeof(json), "{" V "," OID ",\"provider\":\"%s\"," TS "," ST "}", p),
	    "provider", "must be 1 to 64 characters long");
}

static void provider_of_lowercase_digits_underscore_and_dash_is_accepted(void **state)
{
	(void)state;
	assert_accepted("{" V "," OID ",\"provider\":\"az09_-\"," TS "," ST "}");
}

static void provider_with_uppercase_or_other_characters_is_rejected(void **state)
{
	static const char *const bad[] = {"Acme", "a.b", "a b", "a~b", "a/b"};
	char json[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_rejected(fmt(json, sizeof(json),
				    "{" V "," OID ",\"provider\":\"%s\"," TS "," ST "}", bad[i]),
				"provider", "may only contain a-z 0-9 _ -");
}

/* --- ts ------------------------------------------------------------------ */

static void update_without_ts_is_rejected_naming_ts(void **state)
{
	(void)state;
	assert_rejected("{" V "," OID "," PROV "," ST "}", "ts", "is required");
}

static void update_with_ts_as_string_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" V "," OID "," PROV ",\"ts\":\"1700000000000\"," ST "}", "ts",
			MSG_INT_MS);
}

static void update_with_ts_null_is_rejected_as_wrong_type(void **state)
{
	(void)state;
	assert_rejected("{" V "," OID "," PROV ",\"ts\":null," ST "}", "ts", MSG_INT_MS);
}

static void update_with_ts_true_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" V "," OID "," PROV ",\"ts\":true," ST "}", "ts", MSG_INT_MS);
}

static void update_with_fractional_ts_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" V "," OID "," PROV ",\"ts\":1.5," ST "}", "ts", MSG_INT_MS);
	assert_rejected("{" V "," OID "," PROV ",\"ts\":1700000000000.25," ST "}", "ts",
			MSG_INT_MS);
}

static void update_with_ts_0_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" V "," OID "," PROV ",\"ts\":0," ST "}", "ts", MSG_INT_MS);
}

static void update_with_negative_ts_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" V "," OID "," PROV ",\"ts\":-1," ST "}", "ts", MSG_INT_MS);
}

static void update_with_ts_1_is_accepted(void **state)
{
	(void)state;
	assert_accepted("{" V "," OID "," PROV ",\"ts\":1," ST "}");
}

static void update_with_ts_at_the_largest_ms_time_is_accepted(void **state)
{
	proto_update_t u = decoded("{" V "," OID "," PROV ",\"ts\":" MS_MAX "," ST "}");

	(void)state;
	assert_true(u.ts == PROTO_MS_MAX);
}

static void update_with_ts_above_the_largest_ms_time_is_rejected(void **state)
{
	(void)state;
	/* 10^14: one past the largest, which Redis's Lua cjson could not store exactly */
	assert_rejected("{" V "," OID "," PROV ",\"ts\":100000000000000," ST "}", "ts", MSG_INT_MS);
	assert_rejected("{" V "," OID "," PROV ",\"ts\":1e300," ST "}", "ts", MSG_INT_MS);
}

static void update_with_infinite_ts_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" V "," OID "," PROV ",\"ts\":1e999," ST "}", "ts", MSG_INT_MS);
}

static void update_with_integral_ts_in_exponent_form_is_accepted(void **state)
{
	proto_update_t u = decoded("{" V "," OID "," PROV ",\"ts\":1.7e12," ST "}");

	(void)state;
	assert_true(u.ts == 1700000000000LL);
}

/* --- event_id ------------------------------------------------------------ */

static void update_with_event_id_keeps_it(void **state)
{
	proto_update_t u = decoded("{" REQ ",\"event_id\":\"wh_123\"," ST "}");

	(void)state;
	assert_string_equal(u.event_id, "wh_123");
}

static void update_with_empty_event_id_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" REQ ",\"event_id\":\"\"," ST "}", "event_id",
			"must be 1 to 128 characters long");
}

static void update_with_128_character_event_id_is_accepted(void **state)
{
	char e[200], json[512];

	(void)state;
	repeat(e, sizeof(e), "e", 128);
	assert_accepted(fmt(json, sizeof(json), "{" REQ ",\"event_id\":\"%s\"," ST "}", e));
}

static void update_with_129_character_event_id_is_rejected(void **state)
{
	char e[200], json[512];

	(void)state;
	repeat(e, sizeof(e), "e", 129);
	assert_rejected(fmt(json, sizeof(json), "{" REQ ",\"event_id\":\"%s\"," ST "}", e),
			"event_id", "must be 1 to 128 characters long");
}

static void update_with_numeric_event_id_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" REQ ",\"event_id\":42," ST "}", "event_id", "must be a string");
}

static void event_id_of_space_tilde_quote_and_backslash_is_accepted(void **state)
{
	proto_update_t u = decoded("{" REQ ",\"event_id\":\" ~\\\"\\\\\"," ST "}");

	(void)state;
	assert_string_equal(u.event_id, " ~\"\\");
}

static void event_id_with_control_character_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" REQ ",\"event_id\":\"a\\tb\"," ST "}", "event_id",
			"may only contain printable ASCII (0x20 to 0x7e)");
	assert_rejected("{" REQ ",\"event_id\":\"a\\u001fb\"," ST "}", "event_id", NULL);
}

static void event_id_with_del_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" REQ ",\"event_id\":\"a\\u007fb\"," ST "}", "event_id",
			"may only contain printable ASCII (0x20 to 0x7e)");
}

static void event_id_with_non_ascii_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" REQ ",\"event_id\":\"caf\\u00e9\"," ST "}", "event_id",
			"may only contain printable ASCII (0x20 to 0x7e)");
}

/* --- location ------------------------------------------------------------ */

#define LOC(members) "{" REQ ",\"location\":{" members "}}"

static void location_that_is_not_an_object_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" REQ ",\"location\":[52.5,13.4]}", "location", "must be an object");
	assert_rejected("{" REQ ",\"location\":\"52.5,13.4\"}", "location", "must be an object");
	assert_rejected("{" REQ ",\"location\":1}", "location", "must be an object");
	assert_rejected("{" REQ ",\"location\":true}", "location", "must be an object");
}

static void location_without_lat_is_rejected_naming_location_lat(void **state)
{
	(void)state;
	assert_rejected(LOC("\"lng\":1"), "location.lat", "is required");
}

static void location_without_lng_is_rejected_naming_location_lng(void **state)
{
	(void)state;
	assert_rejected(LOC("\"lat\":1"), "location.lng", "is required");
}

static void location_with_lat_as_string_is_rejected(void **state)
{
	(void)state;
	assert_rejected(LOC("\"lat\":\"52.5\",\"lng\":1"), "location.lat",
			"must be a number in [-90, 90]");
}

static void location_with_lat_null_is_rejected_as_wrong_type(void **state)
{
	(void)state;
	assert_rejected(LOC("\"lat\":null,\"lng\":1"), "location.lat",
			"must be a number in [-90, 90]");
}

static void location_with_lng_as_string_is_rejected(void **state)
{
	(void)state;
	assert_rejected(LOC("\"lat\":1,\"lng\":\"13.4\""), "location.lng",
			"must be a number in [-180, 180]");
}

static void lat_of_minus_90_and_90_is_accepted(void **state)
{
	(void)state;
	assert_accepted(LOC("\"lat\":-90,\"lng\":0"));
	assert_accepted(LOC("\"lat\":90,\"lng\":0"));
}

static void lat_beyond_90_either_way_is_rejected(void **state)
{
	(void)state;
	assert_rejected(LOC("\"lat\":90.000001,\"lng\":0"), "location.lat",
			"must be a number in [-90, 90]");
	assert_rejected(LOC("\"lat\":-90.000001,\"lng\":0"), "location.lat",
			"must be a number in [-90, 90]");
}

static void lng_of_minus_180_and_180_is_accepted(void **state)
{
	(void)state;
	assert_accepted(LOC("\"lat\":0,\"lng\":-180"));
	assert_accepted(LOC("\"lat\":0,\"lng\":180"));
}

static void lng_beyond_180_either_way_is_rejected(void **state)
{
	(void)state;
	assert_rejected(LOC("\"lat\":0,\"lng\":180.000001"), "location.lng",
			"must be a number in [-180, 180]");
	assert_rejected(LOC("\"lat\":0,\"lng\":-180.000001"), "location.lng",
			"must be a number in [-180, 180]");
}

static void infinite_coordinates_are_rejected(void **state)
{
	(void)state;
	assert_rejected(LOC("\"lat\":1e999,\"lng\":0"), "location.lat", NULL);
	assert_rejected(LOC("\"lat\":0,\"lng\":-1e999"), "location.lng", NULL);
}

static void heading_of_0_and_just_under_360_is_accepted(void **state)
{
	proto_update_t u = decoded(LOC("\"lat\":0,\"lng\":0,\"heading_deg\":359.999999"));

	(void)state;
	assert_true(u.location.has_heading && u.location.heading_deg == 359.999999);
	assert_accepted(LOC("\"lat\":0,\"lng\":0,\"heading_deg\":0"));
}

static void heading_of_360_is_rejected(void **state)
{
	(void)state;
	assert_rejected(LOC("\"lat\":0,\"lng\":0,\"heading_deg\":360"), "location.heading_deg",
			"must be a number in [0, 360)");
}

static void negative_heading_is_rejected(void **state)
{
	(void)state;
	assert_rejected(LOC("\"lat\":0,\"lng\":0,\"heading_deg\":-0.000001"),
			"location.heading_deg", "must be a number in [0, 360)");
}

static void heading_as_string_is_rejected(void **state)
{
	(void)state;
	assert_rejected(LOC("\"lat\":0,\"lng\":0,\"heading_deg\":\"N\""), "location.heading_deg",
			"must be a number in [0, 360)");
}

static void speed_of_0_is_accepted(void **state)
{
	(void)state;
	assert_accepted(LOC("\"lat\":0,\"lng\":0,\"speed_mps\":0"));
}

static void negative_speed_is_rejected(void **state)
{
	(void)state;
	assert_rejected(LOC("\"lat\":0,\"lng\":0,\"speed_mps\":-0.000001"), "location.speed_mps",
			"must be a number >= 0");
}

static void infinite_speed_is_rejected(void **state)
{
	(void)state;
	assert_rejected(LOC("\"lat\":0,\"lng\":0,\"speed_mps\":1e999"), "location.speed_mps",
			"must be a number >= 0");
}

static void speed_as_string_is_rejected(void **state)
{
	(void)state;
	assert_rejected(LOC("\"lat\":0,\"lng\":0,\"speed_mps\":\"4\""), "location.speed_mps",
			"must be a number >= 0");
}

static void accuracy_of_0_is_accepted(void **state)
{
	(void)state;
	assert_accepted(LOC("\"lat\":0,\"lng\":0,\"accuracy_m\":0"));
}

static void negative_accuracy_is_rejected(void **state)
{
	(void)state;
	assert_rejected(LOC("\"lat\":0,\"lng\":0,\"accuracy_m\":-1"), "location.accuracy_m",
			"must be a number >= 0");
}

static void infinite_accuracy_is_rejected(void **state)
{
	(void)state;
	assert_rejected(LOC("\"lat\":0,\"lng\":0,\"accuracy_m\":1e999"), "location.accuracy_m",
			"must be a number >= 0");
}

static void accuracy_as_boolean_is_rejected(void **state)
{
	(void)state;
	assert_rejected(LOC("\"lat\":0,\"lng\":0,\"accuracy_m\":false"), "location.accuracy_m",
			"must be a number >= 0");
}

static void null_optional_location_members_count_as_absent(void **state)
{
	proto_update_t u = decoded(
	    LOC("\"lat\":0,\"lng\":0,\"heading_deg\":null,\"speed_mps\":null,\"accuracy_m\":null"));

	(void)state;
	assert_false(u.location.has_heading || u.location.has_speed || u.location.has_accuracy);
}

/* --- status -------------------------------------------------------------- */

static void every_canonical_status_is_accepted(void **state)
{
	char json[256];

	(void)state;
	for (size_t i = 0; i < STATUS_TABLE_LEN; i++) {
		proto_update_t u = decoded(
		    fmt(json, sizeof(json), "{" REQ ",\"status\":\"%s\"}", status_table[i].name));
		assert_int_equal(u.status, status_table[i].status);
	}
}

static void unknown_status_is_rejected_listing_the_canonical_ones(void **state)
{
	(void)state;
	assert_rejected("{" REQ ",\"status\":\"lost\"}", "status", MSG_STATUS);
}

static void status_in_other_case_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" REQ ",\"status\":\"Delivered\"}", "status", MSG_STATUS);
}

static void empty_status_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" REQ ",\"status\":\"\"}", "status", MSG_STATUS);
}

static void status_as_number_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" REQ ",\"status\":3}", "status", "must be a string");
}

/* --- courier ------------------------------------------------------------- */

#define COURIER(members) "{" REQ "," ST ",\"courier\":{" members "}}"

static void courier_that_is_not_an_object_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" REQ "," ST ",\"courier\":\"Ana\"}", "courier", "must be an object");
	assert_rejected("{" REQ "," ST ",\"courier\":[]}", "courier", "must be an object");
}

static void empty_courier_object_is_kept_with_no_members(void **state)
{
	proto_update_t u = decoded(COURIER(""));

	(void)state;
	assert_true(u.has_courier);
	assert_string_equal(u.courier.id, "");
	assert_string_equal(u.courier.name, "");
	assert_string_equal(u.courier.vehicle, "");
}

static void null_courier_members_count_as_absent(void **state)
{
	proto_update_t u = decoded(COURIER("\"id\":null,\"name\":\"Bo\",\"vehicle\":null"));

	(void)state;
	assert_string_equal(u.courier.id, "");
	assert_string_equal(u.courier.name, "Bo");
}

static void courier_id_of_128_bytes_is_accepted(void **state)
{
	char s[200], json[512];

	(void)state;
	repeat(s, sizeof(s), "i", 128);
	assert_accepted(fmt(json, sizeof(json), COURIER("\"id\":\"%s\""), s));
}

static void courier_id_of_129_bytes_is_rejected(void **state)
{
	char s[200], json[512];

	(void)state;
	repeat(s, sizeof(s), "i", 129);
	assert_rejected(fmt(json, sizeof(json), COURIER("\"id\":\"%s\""), s), "courier.id",
			"must be 1 to 128 bytes long");
}

static void courier_name_of_128_bytes_of_utf8_is_accepted(void **state)
{
	char s[400], json[512];
	proto_update_t u;

	(void)state;
	repeat(s, sizeof(s), "\xc3\xa9", 64); /* é, 2 bytes each */
	u = decoded(fmt(json, sizeof(json), COURIER("\"name\":\"%s\""), s));
	assert_string_equal(u.courier.name, s);
}

static void courier_name_of_129_bytes_is_rejected(void **state)
{
	char s[400], json[512];

	(void)state;
	repeat(s, sizeof(s), "\xc3\xa9", 64);
	strcat(s, "x");
	assert_rejected(fmt(json, sizeof(json), COURIER("\"name\":\"%s\""), s), "courier.name",
			"must be 1 to 128 bytes long");
}

static void courier_vehicle_of_32_bytes_is_accepted(void **state)
{
	char s[100], json[512];

	(void)state;
	repeat(s, sizeof(s), "v", 32);
	assert_accepted(fmt(json, sizeof(json), COURIER("\"vehicle\":\"%s\""), s));
}

static void courier_vehicle_of_33_bytes_is_rejected(void **state)
{
	char s[100], json[512];

	(void)state;
	repeat(s, sizeof(s), "v", 33);
	assert_rejected(fmt(json, sizeof(json), COURIER("\"vehicle\":\"%s\""), s),
			"courier.vehicle", "must be 1 to 32 bytes long");
}

static void empty_courier_strings_are_rejected(void **state)
{
	(void)state;
	assert_rejected(COURIER("\"id\":\"\""), "courier.id", "must be 1 to 128 bytes long");
	assert_rejected(COURIER("\"name\":\"\""), "courier.name", "must be 1 to 128 bytes long");
	assert_rejected(COURIER("\"vehicle\":\"\""), "courier.vehicle",
			"must be 1 to 32 bytes long");
}

static void courier_strings_of_wrong_type_are_rejected(void **state)
{
	(void)state;
	assert_rejected(COURIER("\"id\":77"), "courier.id", "must be a string");
	assert_rejected(COURIER("\"name\":[\"Ana\"]"), "courier.name", "must be a string");
	assert_rejected(COURIER("\"vehicle\":true"), "courier.vehicle", "must be a string");
}

static void courier_name_with_control_character_is_rejected(void **state)
{
	(void)state;
	assert_rejected(COURIER("\"name\":\"Ana\\nSilva\""), "courier.name",
			"must not contain control characters");
	assert_rejected(COURIER("\"vehicle\":\"\\u007f\""), "courier.vehicle",
			"must not contain control characters");
}

static void courier_name_with_invalid_utf8_is_rejected(void **state)
{
	static const char *const bad[] = {
	    "\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x80"};
	char json[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_rejected(fmt(json, sizeof(json), COURIER("\"name\":\"%s\""), bad[i]),
				"courier.name", "must be valid UTF-8");
}

static void courier_name_with_four_byte_utf8_is_accepted(void **state)
{
	proto_update_t u = decoded(COURIER("\"name\":\"\\ud83d\\udeb2 \xf0\x9f\x9a\xb2\""));

	(void)state;
	assert_string_equal(u.courier.name, "\xf0\x9f\x9a\xb2 \xf0\x9f\x9a\xb2");
}

/* --- eta ----------------------------------------------------------------- */

#define ETA(members) "{" REQ ",\"eta\":{" members "}}"

static void eta_that_is_not_an_object_is_rejected(void **state)
{
	(void)state;
	assert_rejected("{" REQ ",\"eta\":1700000600000}", "eta", "must be an object");
}

static void empty_eta_is_rejected_naming_eta(void **state)
{
	(void)state;
	assert_rejected(ETA(""), "eta", "needs at least one of pickup, dropoff");
}

static void eta_with_only_null_members_is_rejected(void **state)
{
	(void)state;
	assert_rejected(ETA("\"pickup\":null,\"dropoff\":null"), "eta",
			"needs at least one of pickup, dropoff");
}

static void eta_with_only_pickup_is_accepted(void **state)
{
	proto_update_t u = decoded(ETA("\"pickup\":1700000100000"));

	(void)state;
	assert_true(u.eta.has_pickup && !u.eta.has_dropoff && u.eta.pickup == 1700000100000LL);
}

static void eta_pickup_of_0_is_rejected(void **state)
{
	(void)state;
	assert_rejected(ETA("\"pickup\":0"), "eta.pickup", MSG_INT_MS);
}

static void eta_pickup_as_string_is_rejected(void **state)
{
	(void)state;
	assert_rejected(ETA("\"pickup\":\"soon\""), "eta.pickup", MSG_INT_MS);
}

static void fractional_eta_dropoff_is_rejected(void **state)
{
	(void)state;
	assert_rejected(ETA("\"dropoff\":1700000600000.5"), "eta.dropoff", MSG_INT_MS);
}

static void eta_dropoff_at_the_largest_ms_time_is_accepted(void **state)
{
	(void)state;
	assert_accepted(ETA("\"dropoff\":" MS_MAX));
}

static void eta_dropoff_above_the_largest_ms_time_is_rejected(void **state)
{
	(void)state;
	assert_rejected(ETA("\"dropoff\":100000000000000"), "eta.dropoff", MSG_INT_MS);
}

static void eta_dropoff_of_1_is_accepted(void **state)
{
	(void)state;
	assert_accepted(ETA("\"dropoff\":1"));
}

static void negative_eta_dropoff_is_rejected(void **state)
{
	(void)state;
	assert_rejected(ETA("\"dropoff\":-5"), "eta.dropoff", MSG_INT_MS);
}

/* --- encoding ------------------------------------------------------------ */

static void full_update_encodes_to_exactly_the_canonical_bytes(void **state)
{
	proto_update_t u = decoded(FULL_UPDATE);
	char *json = proto_update_to_json(&u);

	(void)state;
	assert_non_null(json);
	assert_string_equal(json, FULL_UPDATE);
	free(json);
}

static void minimal_update_encodes_with_absent_members_omitted(void **state)
{
	proto_update_t u = decoded(MINIMAL_UPDATE);
	char *json = proto_update_to_json(&u);

	(void)state;
	assert_non_null(json);
	assert_string_equal(json, MINIMAL_UPDATE);
	free(json);
}

static void encoding_puts_members_in_canonical_order(void **state)
{
	proto_update_t u =
	    decoded("{\"eta\":{\"dropoff\":9,\"pickup\":8},\"courier\":{\"vehicle\":"
		    "\"car\",\"id\":\"c\"},\"status\":\"at_pickup\",\"location\":{"
		    "\"accuracy_m\":1,\"lng\":2,\"lat\":3},\"ts\":4,\"provider\":\"p\","
		    "\"order_id\":\"o\",\"v\":1}");
	char *json = proto_update_to_json(&u);

	(void)state;
	assert_string_equal(json, "{\"v\":1,\"order_id\":\"o\",\"provider\":\"p\",\"ts\":4,"
				  "\"location\":{\"lat\":3,\"lng\":2,\"accuracy_m\":1},"
				  "\"status\":\"at_pickup\",\"courier\":{\"id\":\"c\",\"vehicle\":"
				  "\"car\"},\"eta\":{\"pickup\":8,\"dropoff\":9}}");
	free(json);
}

static void round_trip(const char *json)
{
	proto_update_t a = decoded(json), b;
	proto_error_t err;
	char *encoded = proto_update_to_json(&a);

	assert_non_null(encoded);
	assert_int_equal(parse(encoded, &b, &err), PROTO_OK);
	/* Decoding zeroes the whole struct first, so equal updates are equal bytes. */
	assert_memory_equal(&a, &b, sizeof(a));
	free(encoded);
}

static void full_update_survives_decode_encode_decode(void **state)
{
	(void)state;
	round_trip(FULL_UPDATE);
}

static void minimal_update_survives_decode_encode_decode(void **state)
{
	(void)state;
	round_trip(MINIMAL_UPDATE);
}

static void doubles_survive_encoding_exactly(void **state)
{
	(void)state;
	round_trip(LOC("\"lat\":0.30000000000000004,\"lng\":-179.99999999999997,\"heading_deg\":"
		       "1e-300,\"speed_mps\":5e-324,\"accuracy_m\":1.7976931348623157e308"));
	round_trip(LOC("\"lat\":-0.0,\"lng\":0.1"));
}

static void doubles_are_encoded_in_their_shortest_exact_form(void **state)
{
	proto_update_t u = decoded(LOC("\"lat\":0.1,\"lng\":0.30000000000000004"));
	char *json = proto_update_to_json(&u);

	(void)state;
	assert_non_null(strstr(json, "\"lat\":0.1,\"lng\":0.30000000000000004}"));
	free(json);
}

static void strings_are_escaped_when_encoded(void **state)
{
	proto_update_t u = decoded("{" REQ ",\"event_id\":\"a\\\"b\\\\c\"," ST ",\"courier\":{"
				   "\"name\":\"Zo\\u00eb \\\"Z\\\"\"}}");
	char *json = proto_update_to_json(&u);

	(void)state;
	assert_non_null(strstr(json, "\"event_id\":\"a\\\"b\\\\c\""));
	assert_non_null(strstr(json, "\"name\":\"Zo\xc3\xab \\\"Z\\\"\""));
	free(json);
	round_trip("{" REQ ",\"event_id\":\"a\\\"b\\\\c\"," ST "}");
}

static void update_with_non_finite_number_is_not_encoded(void **state)
{
	proto_update_t u = decoded(LOC("\"lat\":1,\"lng\":2"));

	(void)state;
	u.location.lng = (double)INFINITY;
	assert_null(proto_update_to_json(&u));
}

static void update_with_out_of_range_status_is_not_encoded(void **state)
{
	proto_update_t u = decoded(MINIMAL_UPDATE);

	(void)state;
	u.status = PROTO_STATUS__COUNT;
	assert_null(proto_update_to_json(&u));
	assert_null(proto_update_to_json(NULL));
}

/* --- state --------------------------------------------------------------- */

static void state_as_the_script_writes_it_decodes(void **state)
{
	proto_state_t st;
	proto_error_t err;

	(void)state;
	assert_int_equal(proto_state_parse(SCRIPT_STATE, strlen(SCRIPT_STATE), &st, &err),
			 PROTO_OK);
	assert_string_equal(st.order_id, "ord-8f3a2c");
	assert_string_equal(st.provider, "uber_direct");
	assert_int_equal(st.status, PROTO_STATUS_EN_ROUTE_TO_DROPOFF);
	assert_true(st.status_ts == 1700000000000LL);
	assert_true(st.has_location);
	assert_true(st.location.lat == 52.5201 && st.location.lng == 13.405);
	assert_false(st.location.has_heading); /* null */
	assert_true(st.location_ts == 1700000005000LL);
	assert_true(st.has_courier);
	assert_string_equal(st.courier.id, "cr_77");
	assert_string_equal(st.courier.name, "Ana Silva");
	assert_string_equal(st.courier.vehicle, "bicycle");
	assert_true(st.has_eta);
	assert_true(st.eta.has_pickup && st.eta.pickup == 1699999400000LL);
	assert_true(st.eta.has_dropoff && st.eta.dropoff == 1700000600000LL);
	assert_true(st.eta_ts == 1700000000000LL);
	assert_true(st.updated_at == 1700000005000LL);
}

static void state_with_only_a_status_decodes_without_other_parts(void **state)
{
	static const char json[] = "{\"order_id\":\"o\",\"updated_at\":5,\"status\":\"delivered\","
				   "\"provider\":\"p\",\"status_ts\":5}";
	proto_state_t st;
	proto_error_t err;

	(void)state;
	assert_int_equal(proto_state_parse(json, strlen(json), &st, &err), PROTO_OK);
	assert_int_equal(st.status, PROTO_STATUS_DELIVERED);
	assert_false(st.has_location || st.has_courier || st.has_eta);
}

static void state_rejection(const char *json, int code, const char *field)
{
	proto_state_t st;
	proto_error_t err;

	assert_int_equal(proto_state_parse(json, strlen(json), &st, &err), code);
	assert_string_equal(err.field, field);
}

static void state_without_order_id_is_rejected(void **state)
{
	(void)state;
	state_rejection("{\"updated_at\":5,\"status\":\"created\",\"status_ts\":5}", PROTO_EINVAL,
			"order_id");
}

static void state_without_updated_at_is_rejected(void **state)
{
	(void)state;
	state_rejection("{\"order_id\":\"o\",\"status\":\"created\",\"status_ts\":5}", PROTO_EINVAL,
			"updated_at");
}

static void state_with_status_but_no_status_ts_is_rejected(void **state)
{
	(void)state;
	state_rejection("{\"order_id\":\"o\",\"status\":\"created\",\"updated_at\":5}",
			PROTO_EINVAL, "status_ts");
}

static void state_location_without_ts_is_rejected(void **state)
{
	(void)state;
	state_rejection("{\"order_id\":\"o\",\"location\":{\"lat\":1,\"lng\":2},\"updated_at\":5}",
			PROTO_EINVAL, "location.ts");
}

static void state_eta_without_ts_is_rejected(void **state)
{
	(void)state;
	state_rejection("{\"order_id\":\"o\",\"eta\":{\"pickup\":1},\"updated_at\":5}",
			PROTO_EINVAL, "eta.ts");
}

static void state_with_unknown_status_is_rejected(void **state)
{
	(void)state;
	state_rejection("{\"order_id\":\"o\",\"status\":\"lost\",\"status_ts\":5,\"updated_at\":5}",
			PROTO_EINVAL, "status");
}

static void state_that_is_not_a_json_object_is_rejected_as_ejson(void **state)
{
	(void)state;
	state_rejection("[]", PROTO_EJSON, "");
	state_rejection("{", PROTO_EJSON, "");
}

/* --- frames: snapshot ---------------------------------------------------- */

#define SNAPSHOT_FRAME                                                                             \
	"{\"type\":\"snapshot\",\"order_id\":\"ord-8f3a2c\",\"state\":" SCRIPT_STATE               \
	",\"cursor\":\"1795297140866-0\"}"

static void snapshot_frame_carries_the_state_verbatim_and_the_cursor(void **state)
{
	char buf[1024];
	int n;

	(void)state;
	n = proto_frame_snapshot(buf, sizeof(buf), "ord-8f3a2c", SCRIPT_STATE, strlen(SCRIPT_STATE),
				 "1795297140866-0", false);
	assert_int_equal(n, strlen(SNAPSHOT_FRAME));
	assert_memory_equal(buf, SNAPSHOT_FRAME, (size_t)n);
}

static void snapshot_frame_of_unknown_order_has_null_state_and_cursor(void **state)
{
	static const char want[] = "{\"type\":\"snapshot\",\"order_id\":\"o-1\",\"state\":null,"
				   "\"cursor\":null}";
	char buf[256];
	int n;

	(void)state;
	n = proto_frame_snapshot(buf, sizeof(buf), "o-1", NULL, 0, NULL, false);
	assert_int_equal(n, sizeof(want) - 1);
	assert_memory_equal(buf, want, sizeof(want) - 1);
}

static void snapshot_frame_after_a_lost_cursor_says_reset(void **state)
{
	static const char want[] = "{\"type\":\"snapshot\",\"order_id\":\"o-1\",\"state\":{},"
				   "\"cursor\":\"5-0\",\"reset\":true}";
	char buf[256];
	int n;

	(void)state;
	n = proto_frame_snapshot(buf, sizeof(buf), "o-1", "{}", 2, "5-0", true);
	assert_int_equal(n, sizeof(want) - 1);
	assert_memory_equal(buf, want, sizeof(want) - 1);
}

static void snapshot_frame_with_cap_0_only_returns_its_length(void **state)
{
	(void)state;
	assert_int_equal(proto_frame_snapshot(NULL, 0, "ord-8f3a2c", SCRIPT_STATE,
					      strlen(SCRIPT_STATE), "1795297140866-0", false),
			 strlen(SNAPSHOT_FRAME));
}

static void snapshot_frame_with_short_cap_writes_only_cap_bytes(void **state)
{
	char buf[64];
	int n;

	(void)state;
	memset(buf, '#', sizeof(buf));
	n = proto_frame_snapshot(buf, 10, "ord-8f3a2c", SCRIPT_STATE, strlen(SCRIPT_STATE),
				 "1795297140866-0", false);
	assert_int_equal(n, strlen(SNAPSHOT_FRAME));
	assert_memory_equal(buf, SNAPSHOT_FRAME, 10);
	assert_int_equal(buf[10], '#');
}

static void snapshot_frame_with_cap_one_short_misses_only_the_last_byte(void **state)
{
	char buf[1024];
	size_t len = strlen(SNAPSHOT_FRAME);

	(void)state;
	memset(buf, '#', sizeof(buf));
	assert_int_equal(proto_frame_snapshot(buf, len - 1, "ord-8f3a2c", SCRIPT_STATE,
					      strlen(SCRIPT_STATE), "1795297140866-0", false),
			 len);
	assert_memory_equal(buf, SNAPSHOT_FRAME, len - 1);
	assert_int_equal(buf[len - 1], '#');
}

static void snapshot_frame_refuses_invalid_order_id_or_cursor(void **state)
{
	char buf[256];

	(void)state;
	assert_int_equal(proto_frame_snapshot(buf, sizeof(buf), "a\"b", NULL, 0, NULL, false),
			 PROTO_EINVAL);
	assert_int_equal(proto_frame_snapshot(buf, sizeof(buf), NULL, NULL, 0, NULL, false),
			 PROTO_EINVAL);
	assert_int_equal(proto_frame_snapshot(buf, sizeof(buf), "o", NULL, 0, "1-2\"", false),
			 PROTO_EINVAL);
	assert_int_equal(proto_frame_snapshot(buf, sizeof(buf), "o", "{}", 0, NULL, false),
			 PROTO_EINVAL);
	assert_int_equal(proto_frame_snapshot(NULL, 5, "o", NULL, 0, NULL, false), PROTO_EINVAL);
}

/* --- frames: update ------------------------------------------------------ */

static void update_frame_is_byte_for_byte_the_scripts_frame(void **state)
{
	char buf[1024];
	int n;

	(void)state;
	n = proto_frame_update(buf, sizeof(buf), "ord-8f3a2c", FULL_UPDATE, strlen(FULL_UPDATE),
			       "1795297140851-0");
	assert_int_equal(n, strlen(FULL_FRAME));
	assert_memory_equal(buf, FULL_FRAME, (size_t)n);
}

static void update_frame_with_cap_0_only_returns_its_length(void **state)
{
	char canary = '#';

	(void)state;
	assert_int_equal(proto_frame_update(&canary, 0, "ord-8f3a2c", FULL_UPDATE,
					    strlen(FULL_UPDATE), "1795297140851-0"),
			 strlen(FULL_FRAME));
	assert_int_equal(canary, '#');
}

static void update_frame_with_short_caps_writes_the_prefix_that_fits(void **state)
{
	size_t len = strlen(FULL_FRAME);

	(void)state;
	for (size_t cap = 1; cap <= len; cap++) {
		char *buf = malloc(cap); /* exact size: ASan catches a write past cap */
		assert_non_null(buf);
		assert_int_equal(proto_frame_update(buf, cap, "ord-8f3a2c", FULL_UPDATE,
						    strlen(FULL_UPDATE), "1795297140851-0"),
				 len);
		assert_memory_equal(buf, FULL_FRAME, cap);
		free(buf);
	}
}

static void update_frame_needs_a_valid_cursor_and_update(void **state)
{
	char buf[256];

	(void)state;
	assert_int_equal(proto_frame_update(buf, sizeof(buf), "o", "{}", 2, NULL), PROTO_EINVAL);
	assert_int_equal(proto_frame_update(buf, sizeof(buf), "o", "{}", 2, "x"), PROTO_EINVAL);
	assert_int_equal(proto_frame_update(buf, sizeof(buf), "o", NULL, 0, "1-0"), PROTO_EINVAL);
	assert_int_equal(proto_frame_update(buf, sizeof(buf), "o", "{}", 0, "1-0"), PROTO_EINVAL);
	assert_int_equal(proto_frame_update(buf, sizeof(buf), "o/x", "{}", 2, "1-0"), PROTO_EINVAL);
}

/* --- frames: error ------------------------------------------------------- */

static void resumed_frame_carries_the_cursor_and_the_count(void **state)
{
	static const char want[] = "{\"type\":\"resumed\",\"order_id\":\"ord-1\","
				   "\"cursor\":\"1700000000000-3\",\"replayed\":42}";
	char buf[256];
	int n;

	(void)state;
	assert_int_equal(proto_frame_resumed(NULL, 0, "ord-1", "1700000000000-3", 42),
			 sizeof(want) - 1);
	n = proto_frame_resumed(buf, sizeof(buf), "ord-1", "1700000000000-3", 42);
	assert_int_equal(n, sizeof(want) - 1);
	assert_memory_equal(buf, want, sizeof(want) - 1);
}

static void resumed_frame_refuses_a_bad_cursor_or_order(void **state)
{
	char buf[256];

	(void)state;
	assert_int_equal(proto_frame_resumed(buf, sizeof(buf), "ord-1", NULL, 0), PROTO_EINVAL);
	assert_int_equal(proto_frame_resumed(buf, sizeof(buf), "ord-1", "01-2", 0), PROTO_EINVAL);
	assert_int_equal(proto_frame_resumed(buf, sizeof(buf), "ord 1", "1-2", 0), PROTO_EINVAL);
}

static void error_frame_has_code_and_message(void **state)
{
	static const char want[] = "{\"type\":\"error\",\"error\":\"bad_token\",\"message\":"
				   "\"token expired\"}";
	char buf[256];
	int n;

	(void)state;
	n = proto_frame_error(buf, sizeof(buf), "bad_token", "token expired");
	assert_int_equal(n, sizeof(want) - 1);
	assert_memory_equal(buf, want, sizeof(want) - 1);
}

static void error_frame_escapes_quotes_backslashes_and_control_characters(void **state)
{
	static const char want[] = "{\"type\":\"error\",\"error\":\"a\\\"b\",\"message\":"
				   "\"q\\\" s\\\\ \\b\\f\\n\\r\\t \\u0001\\u001f\\u007f /\"}";
	char buf[256];
	int n;

	(void)state;
	n = proto_frame_error(buf, sizeof(buf), "a\"b", "q\" s\\ \b\f\n\r\t \x01\x1f\x7f /");
	assert_int_equal(n, sizeof(want) - 1);
	assert_memory_equal(buf, want, sizeof(want) - 1);
}

static void error_frame_passes_utf8_through(void **state)
{
	static const char want[] = "{\"type\":\"error\",\"error\":\"x\",\"message\":"
				   "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\xb2\"}";
	char buf[256];
	int n;

	(void)state;
	n = proto_frame_error(buf, sizeof(buf), "x", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\xb2");
	assert_int_equal(n, sizeof(want) - 1);
	assert_memory_equal(buf, want, sizeof(want) - 1);
}

static void error_frame_replaces_invalid_utf8_with_u_fffd(void **state)
{
	static const char want[] = "{\"type\":\"error\",\"error\":\"x\",\"message\":"
				   "\"a\\ufffdb\\ufffd\\ufffdc\\ufffd\\ufffd\"}";
	char buf[256];
	int n;

	(void)state;
	n = proto_frame_error(buf, sizeof(buf), "x",
			      "a\xff"
			      "b\xc0\xaf"
			      "c\xe2\x82");
	assert_int_equal(n, sizeof(want) - 1);
	assert_memory_equal(buf, want, sizeof(want) - 1);
}

static void error_frame_is_json_that_gives_back_the_message(void **state)
{
	static const char msg[] = "bad \"order_id\": a\\b\n\ttab \xc3\xa9";
	char buf[256];
	int n;
	cJSON *root;

	(void)state;
	n = proto_frame_error(buf, sizeof(buf), "bad_request", msg);
	assert_true(n > 0 && (size_t)n < sizeof(buf));
	root = cJSON_ParseWithLength(buf, (size_t)n);
	assert_non_null(root);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "message")->valuestring, msg);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "type")->valuestring, "error");
	cJSON_Delete(root);
}

static void error_frame_with_cap_0_only_returns_its_length(void **state)
{
	(void)state;
	/* {"type":"error","error":"x","message":"\n"} */
	assert_int_equal(proto_frame_error(NULL, 0, "x", "\n"), 43);
}

static void error_frame_with_short_cap_writes_only_cap_bytes(void **state)
{
	char buf[8];

	(void)state;
	memset(buf, '#', sizeof(buf));
	assert_int_equal(proto_frame_error(buf, 5, "x", "y"), 42);
	assert_memory_equal(buf, "{\"typ###", 8);
}

static void error_frame_needs_code_and_message(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(proto_frame_error(buf, sizeof(buf), NULL, "m"), PROTO_EINVAL);
	assert_int_equal(proto_frame_error(buf, sizeof(buf), "c", NULL), PROTO_EINVAL);
}

/* --- the cursor of an update frame --------------------------------------- */

/* Scans a malloc'd copy of exactly len bytes, so ASan sees any read past it. */
static int frame_cursor(const char *frame, size_t len, proto_cursor_t *c)
{
	char *copy = malloc(len ? len : 1);
	int rc;

	assert_non_null(copy);
	memcpy(copy, frame, len);
	rc = proto_frame_update_cursor(copy, len, c);
	free(copy);
	return rc;
}

static void cursor_of_the_scripts_update_frame_is_found(void **state)
{
	proto_cursor_t c;

	(void)state;
	assert_int_equal(frame_cursor(FULL_FRAME, strlen(FULL_FRAME), &c), PROTO_OK);
	assert_true(c.ms == 1795297140851ULL && c.seq == 0);
}

static void cursor_of_a_frame_written_in_c_is_found(void **state)
{
	char buf[256];
	proto_cursor_t c;
	int n;

	(void)state;
	n = proto_frame_update(buf, sizeof(buf), "o", "{}", 2,
			       "18446744073709551615-18446744073709551615");
	assert_true(n > 0);
	assert_int_equal(frame_cursor(buf, (size_t)n, &c), PROTO_OK);
	assert_true(c.ms == UINT64_MAX && c.seq == UINT64_MAX);
}

static void cursor_of_the_shortest_update_frame_is_found(void **state)
{
	static const char f[] = "{\"type\":\"update\",\"order_id\":\"o\",\"update\":{},"
				"\"cursor\":\"0-0\"}";
	proto_cursor_t c = {1, 1};

	(void)state;
	assert_int_equal(frame_cursor(f, strlen(f), &c), PROTO_OK);
	assert_true(c.ms == 0 && c.seq == 0);
}

static void every_truncation_of_an_update_frame_is_rejected(void **state)
{
	proto_cursor_t c;

	(void)state;
	for (size_t len = 0; len < strlen(FULL_FRAME); len++)
		assert_int_equal(frame_cursor(FULL_FRAME, len, &c), PROTO_EINVAL);
}

static void every_suffix_of_an_update_frame_is_rejected(void **state)
{
	static const char frame[] = FULL_FRAME;
	proto_cursor_t c;
	size_t len = strlen(frame);

	(void)state;
	for (size_t skip = 1; skip < len; skip++)
		assert_int_equal(frame_cursor(&frame[skip], len - skip, &c), PROTO_EINVAL);
}

static void empty_frame_has_no_cursor(void **state)
{
	proto_cursor_t c;

	(void)state;
	assert_int_equal(frame_cursor("", 0, &c), PROTO_EINVAL);
	assert_int_equal(proto_frame_update_cursor(NULL, 0, &c), PROTO_EINVAL);
	assert_int_equal(proto_frame_update_cursor(NULL, 100, &c), PROTO_EINVAL);
}

static void one_byte_frames_have_no_cursor(void **state)
{
	proto_cursor_t c;

	(void)state;
	for (int b = 0; b < 256; b++) {
		char one = (char)b;
		assert_int_equal(frame_cursor(&one, 1, &c), PROTO_EINVAL);
	}
}

static void lookalike_frames_have_no_cursor(void **state)
{
#define UPD "{\"type\":\"update\",\"order_id\":\"o\",\"update\":{}"
	static const char *const lookalikes[] = {
	    UPD ",\"cursor\":\"1-2\"}\n", /* trailing byte */
	    UPD ",\"cursor\":\"1-2\" }",  /* space before the brace */
	    UPD ",\"cursor\": \"1-2\"}",  /* space after the colon */
	    UPD " ,\"cursor\":\"1-2\"}x",
	    UPD "\"cursor\":\"1-2\"}", /* no comma */
	    UPD ",\"Cursor\":\"1-2\"}",
	    UPD ",\"cursor\":1-2}", /* not a string */
	    UPD ",\"cursor\":\"1-2}",
	    UPD ",\"cursor\":\"12\"}", /* no dash */
	    UPD ",\"cursor\":\"-2\"}",
	    UPD ",\"cursor\":\"1-\"}",
	    UPD ",\"cursor\":\"1--2\"}",
	    UPD ",\"cursor\":\"01-2\"}", /* not canonical */
	    UPD ",\"cursor\":\"18446744073709551616-0\"}",
	    UPD ",\"cursor\":\"1234567890123456789012345678901234567890-1\"}",
	    UPD ",\"cursor\":\"\"}",
	    UPD ",\"cursor\":null}",
	    "{\"type\":\"snapshot\",\"order_id\":\"o\",\"state\":{},\"cursor\":\"1-2\"}",
	    "{\"type\":\"update\",\"order_id\":\"\",\"update\":{},\"cursor\":\"1-2\"}",
	    "{\"type\":\"update\",\"order_id\":\"a/b\",\"update\":{},\"cursor\":\"1-2\"}",
	    "{\"type\":\"update\",\"order_id\":\"o\",\"update\":,\"cursor\":\"1-2\"}",
	    "{\"type\":\"update\",\"order_id\":\",\"cursor\":\"1-2\"}",
	    "{\"type\": \"update\",\"order_id\":\"o\",\"update\":{},\"cursor\":\"1-2\"}",
	};
#undef UPD
	proto_cursor_t c;

	(void)state;
	for (size_t i = 0; i < sizeof(lookalikes) / sizeof(lookalikes[0]); i++) {
		if (frame_cursor(lookalikes[i], strlen(lookalikes[i]), &c) != PROTO_EINVAL)
			fail_msg("accepted lookalike %zu: %s", i, lookalikes[i]);
	}
}

static void frame_with_129_character_order_id_has_no_cursor(void **state)
{
	char id[200], f[512];
	proto_cursor_t c;

	(void)state;
	repeat(id, sizeof(id), "a", 129);
	fmt(f, sizeof(f),
	    "{\"type\":\"update\",\"order_id\":\"%s\",\"update\":{},\"cursor\":\"1-2\"}", id);
	assert_int_equal(frame_cursor(f, strlen(f), &c), PROTO_EINVAL);
	repeat(id, sizeof(id), "a", 128);
	fmt(f, sizeof(f),
	    "{\"type\":\"update\",\"order_id\":\"%s\",\"update\":{},\"cursor\":\"1-2\"}", id);
	assert_int_equal(frame_cursor(f, strlen(f), &c), PROTO_OK);
}

/* --- Redis names --------------------------------------------------------- */

static void keys_of_an_order_share_its_hash_tag(void **state)
{
	proto_keys_t k;

	(void)state;
	proto_keys_for("ord-8f3a2c", &k);
	assert_string_equal(k.channel, "trk:{ord-8f3a2c}");
	assert_string_equal(k.state, "trk:{ord-8f3a2c}:state");
	assert_string_equal(k.log, "trk:{ord-8f3a2c}:log");
	assert_string_equal(k.seen, "trk:{ord-8f3a2c}:seen");
}

static void keys_of_a_128_character_order_id_fit(void **state)
{
	char id[200], want[200];
	proto_keys_t k;

	(void)state;
	repeat(id, sizeof(id), "z", 128);
	proto_keys_for(id, &k);
	assert_string_equal(k.state, fmt(want, sizeof(want), "trk:{%s}:state", id));
	assert_string_equal(k.seen, fmt(want, sizeof(want), "trk:{%s}:seen", id));
}

static void channel_name_gives_its_order_id(void **state)
{
	static const char ch[] = "trk:{ord-8f3a2c}";
	size_t len = 0;
	const char *id = proto_channel_order_id(ch, strlen(ch), &len);

	(void)state;
	assert_ptr_equal(id, ch + 5);
	assert_int_equal(len, strlen("ord-8f3a2c"));
}

static void other_names_are_not_order_channels(void **state)
{
	static const char *const names[] = {"trk:{}",	"trk:{a}:state", "trk:{a/b}",
					    "trk:{a}x", "trk:a",	 "foo",
					    "",		"trk:{",	 "TRK:{a}"};
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_null(proto_channel_order_id(names[i], strlen(names[i]), &len));
}

/* --- places ---------------------------------------------------------------- */

#define PLACES(members) "{" REQ ",\"places\":{" members "}}"
#define PICKUP "\"pickup\":{\"lat\":52.5,\"lng\":13.4}"
#define DROPOFF "\"dropoff\":{\"lat\":-33.9,\"lng\":151.2}"

static void update_with_only_places_is_accepted(void **state)
{
	proto_update_t u = decoded(PLACES(PICKUP "," DROPOFF));

	(void)state;
	assert_true(u.has_places);
	assert_true(u.places.has_pickup && u.places.pickup.lat == 52.5 &&
		    u.places.pickup.lng == 13.4);
	assert_true(u.places.has_dropoff && u.places.dropoff.lat == -33.9 &&
		    u.places.dropoff.lng == 151.2);
	assert_false(u.has_location || u.has_eta);
}

static void places_with_only_a_dropoff_is_accepted(void **state)
{
	proto_update_t u = decoded(PLACES(DROPOFF ",\"pickup\":null,\"name\":\"x\""));

	(void)state;
	assert_true(u.has_places && u.places.has_dropoff && !u.places.has_pickup);
}

static void empty_places_is_rejected_naming_places(void **state)
{
	(void)state;
	assert_rejected(PLACES(""), "places", "needs at least one of pickup, dropoff");
	assert_rejected("{" REQ ",\"places\":[1,2]}", "places", "must be an object");
}

static void place_without_lat_or_lng_is_rejected_naming_it(void **state)
{
	(void)state;
	assert_rejected(PLACES("\"pickup\":{\"lng\":1}"), "places.pickup.lat", "is required");
	assert_rejected(PLACES("\"dropoff\":{\"lat\":1}"), "places.dropoff.lng", "is required");
	assert_rejected(PLACES("\"dropoff\":\"Main St 1\""), "places.dropoff", "must be an object");
}

static void place_out_of_range_is_rejected(void **state)
{
	(void)state;
	assert_rejected(PLACES("\"pickup\":{\"lat\":91,\"lng\":0}"), "places.pickup.lat",
			"must be a number in [-90, 90]");
	assert_rejected(PLACES("\"dropoff\":{\"lat\":0,\"lng\":\"1\"}"), "places.dropoff.lng",
			"must be a number in [-180, 180]");
}

static void places_encode_in_canonical_order_and_round_trip(void **state)
{
	proto_update_t u = decoded(PLACES(DROPOFF "," PICKUP));
	char *json = proto_update_to_json(&u);

	(void)state;
	assert_string_equal(json, "{\"v\":1,\"order_id\":\"ord-1\",\"provider\":\"acme\","
				  "\"ts\":1700000000000,\"places\":{\"pickup\":{\"lat\":52.5,"
				  "\"lng\":13.4},\"dropoff\":{\"lat\":-33.9,\"lng\":151.2}}}");
	free(json);
	round_trip(PLACES(DROPOFF));
}

static void state_with_places_decodes_and_needs_their_ts(void **state)
{
	static const char json[] = "{\"order_id\":\"o\",\"updated_at\":5,\"places\":{"
				   "\"dropoff\":{\"lng\":2,\"lat\":1,\"ts\":4}}}";
	proto_state_t st;
	proto_error_t err;

	(void)state;
	assert_int_equal(proto_state_parse(json, strlen(json), &st, &err), PROTO_OK);
	assert_true(st.has_places && st.places.has_dropoff && !st.places.has_pickup);
	assert_true(st.places.dropoff.lat == 1 && st.places.dropoff.lng == 2 && st.dropoff_ts == 4);
	state_rejection("{\"order_id\":\"o\",\"places\":{\"pickup\":{\"lat\":1,\"lng\":2}},"
			"\"updated_at\":5}",
			PROTO_EINVAL, "places.pickup.ts");
}

/* --- the order document (GET /v1/orders/{ID}) ---------------------------- */

#define ORDER_DOC                                                                                  \
	"{\"order_id\":\"ord-8f3a2c\",\"state\":" SCRIPT_STATE ",\"cursor\":\"1795297140866-0\"}"

static void order_doc_is_the_snapshot_frame_without_its_type(void **state)
{
	char buf[1024];
	int n;

	(void)state;
	n = proto_order_doc(buf, sizeof(buf), "ord-8f3a2c", SCRIPT_STATE, strlen(SCRIPT_STATE),
			    "1795297140866-0");
	assert_int_equal(n, strlen(ORDER_DOC));
	assert_memory_equal(buf, ORDER_DOC, (size_t)n);
	/* What server.c used to cut out of the frame: its first 19 bytes after the
	 * brace. */
	assert_int_equal(strlen(SNAPSHOT_FRAME) - strlen(ORDER_DOC), 18);
	assert_memory_equal(SNAPSHOT_FRAME + 19, ORDER_DOC + 1, strlen(ORDER_DOC) - 1);
}

static void order_doc_of_unknown_order_has_null_state_and_cursor(void **state)
{
	static const char want[] = "{\"order_id\":\"ord-1\",\"state\":null,\"cursor\":null}";
	char buf[128];

	(void)state;
	assert_int_equal(proto_order_doc(buf, sizeof(buf), "ord-1", NULL, 0, NULL),
			 sizeof(want) - 1);
	assert_memory_equal(buf, want, sizeof(want) - 1);
}

static void order_doc_with_cap_0_only_returns_its_length(void **state)
{
	(void)state;
	assert_int_equal(proto_order_doc(NULL, 0, "ord-8f3a2c", SCRIPT_STATE, strlen(SCRIPT_STATE),
					 "1795297140866-0"),
			 strlen(ORDER_DOC));
}

static void order_doc_with_short_cap_writes_only_cap_bytes(void **state)
{
	char buf[64];

	(void)state;
	memset(buf, '#', sizeof(buf));
	assert_int_equal(proto_order_doc(buf, 10, "ord-8f3a2c", SCRIPT_STATE, strlen(SCRIPT_STATE),
					 "1795297140866-0"),
			 strlen(ORDER_DOC));
	assert_memory_equal(buf, ORDER_DOC, 10);
	assert_int_equal(buf[10], '#');
}

static void order_doc_refuses_what_the_snapshot_frame_refuses(void **state)
{
	char buf[256];

	(void)state;
	memset(buf, '#', sizeof(buf));
	assert_int_equal(proto_order_doc(buf, sizeof(buf), "ord 1", NULL, 0, NULL), PROTO_EINVAL);
	assert_int_equal(proto_order_doc(buf, sizeof(buf), "ord-1", NULL, 0, "01-0"), PROTO_EINVAL);
	assert_int_equal(proto_order_doc(buf, sizeof(buf), "ord-1", "{}", 0, NULL), PROTO_EINVAL);
	assert_int_equal(proto_order_doc(NULL, 1, "ord-1", NULL, 0, NULL), PROTO_EINVAL);
	assert_int_equal(buf[0], '#');
	/* Nor does a refused snapshot frame write anything. */
	assert_int_equal(proto_frame_snapshot(buf, sizeof(buf), "ord 1", NULL, 0, NULL, false),
			 PROTO_EINVAL);
	assert_int_equal(buf[0], '#');
}

/* --- update frames: location-only and ts --------------------------------- */

#define LOC_FRAME(update)                                                                          \
	"{\"type\":\"update\",\"order_id\":\"ord-1\",\"update\":" update                           \
	",\"cursor\":\"1795297140851-0\"}"

static void frame_with_only_a_location_is_location_only(void **state)
{
	static const char f[] = LOC_FRAME("{\"v\":1,\"order_id\":\"ord-1\",\"provider\":\"acme\","
					  "\"ts\":1700000005000,\"location\":{\"lat\":52.5,"
					  "\"lng\":13.4}}");

	(void)state;
	assert_true(proto_frame_update_location_only(f, sizeof(f) - 1));
}

static void frame_with_a_location_and_more_is_not_location_only(void **state)
{
	static const char *const frames[] = {
	    LOC_FRAME("{" REQ ",\"location\":{\"lat\":1,\"lng\":2},\"status\":\"picked_up\"}"),
	    LOC_FRAME("{" REQ ",\"location\":{\"lat\":1,\"lng\":2},\"eta\":{\"dropoff\":1}}"),
	    LOC_FRAME("{" REQ ",\"location\":{\"lat\":1,\"lng\":2},\"courier\":{\"id\":\"c\"}}"),
	    LOC_FRAME("{" REQ ",\"location\":{\"lat\":1,\"lng\":2},\"places\":{}}"),
	    FULL_FRAME,
	};

	(void)state;
	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++)
		assert_false(proto_frame_update_location_only(frames[i], strlen(frames[i])));
}

static void frame_without_a_location_is_not_location_only(void **state)
{
	static const char f[] = LOC_FRAME(MINIMAL_UPDATE);

	(void)state;
	assert_false(proto_frame_update_location_only(f, sizeof(f) - 1));
	assert_false(proto_frame_update_location_only("", 0));
}

static void nested_member_name_makes_a_frame_not_location_only(void **state)
{
	/* The safe side: a "status": anywhere, even inside another member, is taken
	 * for one. */
	static const char f[] = LOC_FRAME("{" REQ ",\"location\":{\"lat\":1,\"lng\":2},"
					  "\"x\":{\"status\":1}}");
	/* Inside a string value the quotes are escaped: that is no member name. */
	static const char g[] = LOC_FRAME("{" REQ ",\"location\":{\"lat\":1,\"lng\":2},"
					  "\"event_id\":\"\\\"status\\\":\"}");

	(void)state;
	assert_false(proto_frame_update_location_only(f, sizeof(f) - 1));
	assert_true(proto_frame_update_location_only(g, sizeof(g) - 1));
}

static void location_only_reads_no_byte_past_len(void **state)
{
	static const char f[] = "{\"location\":{},\"status\":\"created\"}";

	(void)state;
	/* Cut before "status": only the location is seen. */
	assert_true(proto_frame_update_location_only(f, 16));
	assert_false(proto_frame_update_location_only(f, sizeof(f) - 1));
}

static void ts_of_an_update_frame_is_the_updates_own(void **state)
{
	(void)state;
	assert_int_equal(proto_frame_update_ts(FULL_FRAME, strlen(FULL_FRAME)), 1700000000000LL);
	/* The script's cjson puts members in any order: the first "ts": is still the
	 * update's. */
	static const char f[] =
	    "{\"type\":\"update\",\"order_id\":\"ord-8f3a2c\",\"update\":{\"order_"
	    "id\":"
	    "\"ord-8f3a2c\",\"ts\":1700000003000,\"provider\":\"uber_direct\","
	    "\"status\":"
	    "\"at_dropoff\",\"v\":1},\"cursor\":\"1795297492713-0\"}";
	assert_int_equal(proto_frame_update_ts(f, sizeof(f) - 1), 1700000003000LL);
}

static void ts_of_a_frame_without_one_is_0(void **state)
{
	static const char f[] = "{\"type\":\"update\",\"order_id\":\"o\",\"update\":{},"
				"\"cursor\":\"1-0\"}";

	(void)state;
	assert_int_equal(proto_frame_update_ts(f, sizeof(f) - 1), 0);
	assert_int_equal(proto_frame_update_ts("", 0), 0);
	assert_int_equal(proto_frame_update_ts("{\"ts\":x}", 8), 0);
}

static void ts_stops_at_len_and_at_ms_max(void **state)
{
	static const char f[] = "{\"ts\":1700000000000}";
	static const char big[] = "{\"ts\":123456789012345678901234567890}";
	int64_t v;

	(void)state;
	assert_int_equal(proto_frame_update_ts(f, 9), 170);
	v = proto_frame_update_ts(big, sizeof(big) - 1);
	/* Read no further than one digit past PROTO_MS_MAX's length: no overflow. */
	assert_true(v > PROTO_MS_MAX && v < PROTO_MS_MAX * 10 + 10);
	assert_int_equal(v, 123456789012345LL);
}

/* --- UTF-8 --------------------------------------------------------------- */

static const char *const utf8_valid_cases[] = {
    "",
    "plain ASCII, with \x7f and \x01",
    "\xc2\x80",		/* U+0080, the first 2-byte character */
    "\xdf\xbf",		/* U+07FF */
    "\xe0\xa0\x80",	/* U+0800, the first 3-byte character */
    "\xed\x9f\xbf",	/* U+D7FF, just below the surrogates */
    "\xee\x80\x80",	/* U+E000, just above them */
    "\xef\xbf\xbf",	/* U+FFFF */
    "\xf0\x90\x80\x80", /* U+10000, the first 4-byte character */
    "\xf4\x8f\xbf\xbf", /* U+10FFFF, the last */
    "Ana Silva \xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\xb2",
};

static const char *const utf8_invalid_cases[] = {
    "\x80", /* a lone continuation byte */
    "\xbf",
    "a\x80",
    "\xc0\x80",			/* overlong NUL */
    "\xc1\xbf",			/* overlong U+007F */
    "\xe0\x80\x80",		/* overlong 3-byte NUL */
    "\xe0\x9f\xbf",		/* overlong U+07FF */
    "\xf0\x80\x80\x80",		/* overlong 4-byte NUL */
    "\xf0\x8f\xbf\xbf",		/* overlong U+FFFF */
    "\xed\xa0\x80",		/* U+D800, a surrogate */
    "\xed\xbf\xbf",		/* U+DFFF */
    "\xed\xa0\xbd\xed\xb2\xa9", /* a surrogate pair, CESU-8 style */
    "\xf4\x90\x80\x80",		/* U+110000 */
    "\xf5\x80\x80\x80",		/* lead bytes past U+10FFFF */
    "\xf7\xbf\xbf\xbf",
    "\xf8\x88\x80\x80\x80", /* 5-byte form */
    "\xfe",
    "\xff",
    "\xc3", /* truncated at the end */
    "\xe2\x82",
    "\xf0\x9f\x9a",
    "\xc3\x41", /* a lead byte followed by ASCII */
    "\xe2\x82\x41",
    "\xf0\x9f\x9a\x41",
    "\xe2\x82\xac\xac", /* one continuation byte too many */
};

static void valid_utf8_is_valid(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(utf8_valid_cases) / sizeof(utf8_valid_cases[0]); i++) {
		const char *c = utf8_valid_cases[i];
		uint8_t st = 0;

		assert_true(proto_utf8_valid(c, strlen(c)));
		assert_true(proto_utf8_feed(&st, c, strlen(c)));
		assert_int_equal(st, 0);
	}
	/* A NUL byte is U+0000: valid UTF-8 (JSON parsers refuse it on their own). */
	assert_true(proto_utf8_valid("a\0b", 3));
}

static void overlongs_surrogates_and_code_points_past_10ffff_are_not_utf8(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(utf8_invalid_cases) / sizeof(utf8_invalid_cases[0]); i++) {
		const char *c = utf8_invalid_cases[i];
		uint8_t st = 0;

		if (proto_utf8_valid(c, strlen(c)))
			fail_msg("case %zu is taken for UTF-8", i);
		/* Streamed: refused on the way, or not at a boundary at the end. */
		assert_false(proto_utf8_feed(&st, c, strlen(c)) && st == 0);
	}
}

static void utf8_split_anywhere_gives_the_whole_texts_answer(void **state)
{
	static const char *const *const sets[] = {utf8_valid_cases, utf8_invalid_cases};
	static const size_t counts[] = {sizeof(utf8_valid_cases) / sizeof(utf8_valid_cases[0]),
					sizeof(utf8_invalid_cases) / sizeof(utf8_invalid_cases[0])};

	(void)state;
	for (size_t set = 0; set < 2; set++) {
		for (size_t i = 0; i < counts[set]; i++) {
			const char *c = sets[set][i];
			size_t len = strlen(c);

			for (size_t cut = 0; cut <= len; cut++) {
				uint8_t st = 0;
				bool ok = proto_utf8_feed(&st, c, cut) &&
					  proto_utf8_feed(&st, c + cut, len - cut) && st == 0;
				if (ok != (set == 0))
					fail_msg("set %zu case %zu cut at %zu: %d", set, i, cut,
						 ok);
			}
		}
	}
}

static void utf8_character_cut_between_fragments_carries_over(void **state)
{
	static const char euro[] = "\xe2\x82\xac";
	uint8_t st = 0;

	(void)state;
	assert_true(proto_utf8_feed(&st, euro, 1));
	assert_int_not_equal(st, 0); /* mid-character: the message is not whole yet */
	assert_true(proto_utf8_feed(&st, euro + 1, 1));
	assert_int_not_equal(st, 0);
	assert_true(proto_utf8_feed(&st, euro + 2, 1));
	assert_int_equal(st, 0);
	/* The narrowing after ED and F4 survives a cut too. */
	st = 0;
	assert_true(proto_utf8_feed(&st, "\xed", 1));
	assert_false(proto_utf8_feed(&st, "\xa0\x80", 2));
	st = 0;
	assert_true(proto_utf8_feed(&st, "\xf4", 1));
	assert_false(proto_utf8_feed(&st, "\x90", 1));
	st = 0;
	assert_true(proto_utf8_feed(&st, "\xf0", 1));
	assert_false(proto_utf8_feed(&st, "\x8f", 1));
	st = 0;
	assert_true(proto_utf8_feed(&st, "\xe0", 1));
	assert_false(proto_utf8_feed(&st, "\x9f", 1));
	/* An empty fragment changes nothing. */
	st = 0;
	assert_true(proto_utf8_feed(&st, "\xc3", 1));
	assert_true(proto_utf8_feed(&st, NULL, 0));
	assert_true(proto_utf8_feed(&st, "\xa9", 1));
	assert_int_equal(st, 0);
}

static void utf8_sequence_length_is_that_of_one_character(void **state)
{
	(void)state;
	assert_int_equal(proto_utf8_seq_len("a\xc3\xa9", 3), 1);
	assert_int_equal(proto_utf8_seq_len("\x00", 1), 1);
	assert_int_equal(proto_utf8_seq_len("\xc3\xa9zz", 4), 2);
	assert_int_equal(proto_utf8_seq_len("\xe2\x82\xac!", 4), 3);
	assert_int_equal(proto_utf8_seq_len("\xf4\x8f\xbf\xbf\xbf", 5), 4);
	/* Invalid, or cut short by avail. */
	assert_int_equal(proto_utf8_seq_len("", 0), 0);
	assert_int_equal(proto_utf8_seq_len("\x80", 1), 0);
	assert_int_equal(proto_utf8_seq_len("\xc0\x80", 2), 0);
	assert_int_equal(proto_utf8_seq_len("\xed\xa0\x80", 3), 0);
	assert_int_equal(proto_utf8_seq_len("\xf4\x90\x80\x80", 4), 0);
	assert_int_equal(proto_utf8_seq_len("\xe2\x82\xac", 2), 0);
	assert_int_equal(proto_utf8_seq_len("\xf0\x9f\x9a\xb2", 3), 0);
	assert_int_equal(proto_utf8_seq_len("\xc3\x00", 2), 0);
}

static void courier_string_that_is_not_utf8_is_rejected(void **state)
{
	proto_update_t u;
	proto_error_t err;

	(void)state;
	assert_int_equal(
	    proto_update_parse("{" REQ "," ST ",\"courier\":{\"id\":\"c\\u00e9\","
			       "\"name\":\"\xed\xa0\x80\"}}",
			       strlen("{" REQ "," ST ",\"courier\":{\"id\":\"c\\u00e9\","
				      "\"name\":\"\xed\xa0\x80\"}}"),
			       &u, &err),
	    PROTO_EINVAL);
	assert_string_equal(err.field, "courier.name");
	assert_string_equal(err.message, "must be valid UTF-8");
}

/* --- base64 -------------------------------------------------------------- */

/* Decodes s (NUL-terminated) with flags into buf; the length, or -1. */
static long b64(const char *s, unsigned flags, unsigned char *buf, size_t cap)
{
	size_t n = 12345;

	if (proto_base64_decode(s, strlen(s), flags, buf, cap, &n) != PROTO_OK) {
		assert_int_equal(n, 12345); /* *out_len untouched on error */
		return -1;
	}
	return (long)n;
}

static void base64_decodes_the_rfc_4648_test_vectors(void **state)
{
	static const char *const enc[] = {"",	      "Zg==",	  "Zm8=",    "Zm9v",
					  "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	static const char *const dec[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	unsigned char buf[16];

	(void)state;
	for (size_t i = 0; i < sizeof(enc) / sizeof(enc[0]); i++) {
		assert_int_equal(b64(enc[i], 0, buf, sizeof(buf)), strlen(dec[i]));
		assert_memory_equal(buf, dec[i], strlen(dec[i]));
	}
}

static void base64_padding_is_optional_but_must_complete_the_group(void **state)
{
	unsigned char buf[16];

	(void)state;
	assert_int_equal(b64("Zg", 0, buf, sizeof(buf)), 1);
	assert_int_equal(b64("Zm8", 0, buf, sizeof(buf)), 2);
	assert_int_equal(b64("Zm9vYg", 0, buf, sizeof(buf)), 4);
	/* Padding that does not end a 4-character group, or too much of it. */
	assert_int_equal(b64("Zg=", 0, buf, sizeof(buf)), -1);
	assert_int_equal(b64("Zm8==", 0, buf, sizeof(buf)), -1);
	assert_int_equal(b64("Zm9v=", 0, buf, sizeof(buf)), -1);
	assert_int_equal(b64("Zm9v====", 0, buf, sizeof(buf)), -1);
	assert_int_equal(b64("Z===", 0, buf, sizeof(buf)), -1);
	assert_int_equal(b64("====", 0, buf, sizeof(buf)), -1);
	assert_int_equal(b64("=", 0, buf, sizeof(buf)), -1);
	/* Padding in the middle. */
	assert_int_equal(b64("Zg==Zg==", 0, buf, sizeof(buf)), -1);
	assert_int_equal(b64("Zm=v", 0, buf, sizeof(buf)), -1);
	/* A length of 1 mod 4 holds no whole byte. */
	assert_int_equal(b64("Z", 0, buf, sizeof(buf)), -1);
	assert_int_equal(b64("Zm9vY", 0, buf, sizeof(buf)), -1);
}

static void base64_nopad_refuses_padding(void **state)
{
	unsigned char buf[16];

	(void)state;
	assert_int_equal(b64("Zg", PROTO_BASE64_URL | PROTO_BASE64_NOPAD, buf, sizeof(buf)), 1);
	assert_int_equal(b64("Zg==", PROTO_BASE64_URL | PROTO_BASE64_NOPAD, buf, sizeof(buf)), -1);
	assert_int_equal(b64("Zm8=", PROTO_BASE64_NOPAD, buf, sizeof(buf)), -1);
	assert_int_equal(b64("Zm9v", PROTO_BASE64_NOPAD, buf, sizeof(buf)), 3);
}

static void base64_url_alphabet_is_only_taken_with_the_url_flag(void **state)
{
	unsigned char buf[16];

	(void)state;
	/* 0xfb 0xff 0xbf: "+/+/" in base64, "-_-_" in base64url. */
	assert_int_equal(b64("+/+/", 0, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "\xfb\xff\xbf", 3);
	assert_int_equal(b64("-_-_", PROTO_BASE64_URL, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "\xfb\xff\xbf", 3);
	assert_int_equal(b64("-_-_", 0, buf, sizeof(buf)), -1);
	assert_int_equal(b64("+/+/", PROTO_BASE64_URL, buf, sizeof(buf)), -1);
	assert_int_equal(b64("ab-/", PROTO_BASE64_URL, buf, sizeof(buf)), -1);
	/* A JWT header segment. */
	assert_int_equal(
	    b64("eyJhbGciOiJIUzI1NiJ9", PROTO_BASE64_URL | PROTO_BASE64_NOPAD, buf, sizeof(buf)),
	    15);
	assert_memory_equal(buf, "{\"alg\":\"HS256\"}", 15);
}

static void base64_refuses_whitespace_and_other_bytes(void **state)
{
	static const char *const bad[] = {" Zm9v", "Zm9v ",   "Zm\n9v", "Zm9v\r\n",
					  "Zm.v",  "Zm9\x80", "Zm9v\t"};
	unsigned char buf[16];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(b64(bad[i], 0, buf, sizeof(buf)), -1);
	/* A NUL byte inside the length is just another byte that is not base64. */
	assert_int_equal(proto_base64_decode("Zm\0v", 4, 0, buf, sizeof(buf), &n), PROTO_EINVAL);
}

static void base64_needs_room_for_every_byte(void **state)
{
	unsigned char buf[8];
	size_t n = 0;

	(void)state;
	memset(buf, '#', sizeof(buf));
	assert_int_equal(b64("Zm9vYmE=", 0, buf, 4), -1);
	assert_int_equal(buf[0], '#'); /* refused before anything is written */
	assert_int_equal(b64("Zm9vYmE=", 0, buf, 5), 5);
	assert_int_equal(buf[5], '#');
	assert_int_equal(b64("Zm9vYmE", 0, buf, 5), 5);
	assert_int_equal(proto_base64_decode("", 0, 0, NULL, 0, &n), PROTO_OK);
	assert_int_equal(n, 0);
	assert_int_equal(proto_base64_decode(NULL, 1, 0, buf, sizeof(buf), &n), PROTO_EINVAL);
	assert_int_equal(proto_base64_decode("Zm9v", 4, 0, NULL, 3, &n), PROTO_EINVAL);
	assert_true(PROTO_BASE64_DECODED_MAX(strlen("Zm9vYmE")) >= 5);
	assert_true(PROTO_BASE64_DECODED_MAX(strlen("Zm9vYmFy")) >= 6);
}

static void base64_does_not_check_the_unused_bits_of_the_last_character(void **state)
{
	unsigned char buf[4];

	(void)state;
	/* "Zh" and "Zg" both decode to "f" (as OpenSSL's decoder and the old decoders
	 * did). */
	assert_int_equal(b64("Zh", 0, buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'f');
}

static void base64_round_trips_every_byte_value(void **state)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[256], back[256];
	char text[400];
	size_t t = 0, n = 0;
	uint32_t acc = 0;
	unsigned bits = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(raw); i++) {
		raw[i] = (unsigned char)i;
		acc = acc << 8 | raw[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			text[t++] = alphabet[(acc >> bits) & 0x3f];
		}
	}
	if (bits)
		text[t++] = alphabet[(acc << (6 - bits)) & 0x3f];
	assert_int_equal(proto_base64_decode(text, t, PROTO_BASE64_URL | PROTO_BASE64_NOPAD, back,
					     sizeof(back), &n),
			 PROTO_OK);
	assert_int_equal(n, sizeof(raw));
	assert_memory_equal(back, raw, sizeof(raw));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(order_id_of_every_allowed_character_is_valid),
	    cmocka_unit_test(order_id_of_one_character_is_valid),
	    cmocka_unit_test(order_id_of_128_characters_is_valid),
	    cmocka_unit_test(order_id_of_129_characters_is_invalid),
	    cmocka_unit_test(empty_order_id_is_invalid),
	    cmocka_unit_test(order_id_with_any_other_character_is_invalid),
	    cmocka_unit_test(order_id_validity_reads_only_len_bytes),

	    cmocka_unit_test(every_status_has_its_canonical_name),
	    cmocka_unit_test(every_canonical_name_maps_to_its_status),
	    cmocka_unit_test(status_none_and_out_of_range_have_no_name),
	    cmocka_unit_test(non_canonical_status_names_are_rejected),
	    cmocka_unit_test(only_delivered_cancelled_returned_failed_are_terminal),

	    cmocka_unit_test(cursor_parses_ms_and_seq),
	    cmocka_unit_test(cursor_of_zeros_parses),
	    cmocka_unit_test(cursor_of_two_uint64_max_parses_at_cursor_max_length),
	    cmocka_unit_test(cursor_with_ms_overflowing_uint64_is_rejected),
	    cmocka_unit_test(cursor_with_seq_overflowing_uint64_is_rejected),
	    cmocka_unit_test(cursor_longer_than_cursor_max_is_rejected),
	    cmocka_unit_test(cursor_with_empty_ms_is_rejected),
	    cmocka_unit_test(cursor_with_empty_seq_is_rejected),
	    cmocka_unit_test(cursor_without_dash_is_rejected),
	    cmocka_unit_test(cursor_with_junk_is_rejected),
	    cmocka_unit_test(cursor_with_leading_zero_is_rejected),
	    cmocka_unit_test(empty_cursor_is_rejected),
	    cmocka_unit_test(cursor_parse_reads_only_len_bytes),
	    cmocka_unit_test(cursor_parse_leaves_output_untouched_on_error),
	    cmocka_unit_test(cursors_compare_by_ms_then_seq),
	    cmocka_unit_test(equal_cursors_compare_equal),

	    cmocka_unit_test(full_update_decodes_every_field),
	    cmocka_unit_test(minimal_update_with_a_status_decodes_with_everything_else_absent),
	    cmocka_unit_test(update_with_only_a_location_is_accepted),
	    cmocka_unit_test(update_with_only_an_eta_is_accepted),
	    cmocka_unit_test(unknown_members_are_ignored_at_every_level),
	    cmocka_unit_test(null_optional_members_count_as_absent),
	    cmocka_unit_test(members_may_come_in_any_order),
	    cmocka_unit_test(version_written_as_1_point_0_is_version_1),

	    cmocka_unit_test(update_without_location_status_or_eta_is_rejected),
	    cmocka_unit_test(update_whose_parts_are_all_null_is_rejected),
	    cmocka_unit_test(update_that_is_not_json_is_rejected_as_ejson),
	    cmocka_unit_test(update_that_is_not_an_object_is_rejected_as_ejson),
	    cmocka_unit_test(empty_input_is_rejected_as_ejson),
	    cmocka_unit_test(trailing_data_after_the_object_is_rejected),
	    cmocka_unit_test(trailing_whitespace_is_accepted),
	    cmocka_unit_test(input_is_read_up_to_len_and_need_not_end_in_nul),
	    cmocka_unit_test(member_given_twice_is_rejected_naming_it),
	    cmocka_unit_test(nul_escape_anywhere_is_rejected),
	    cmocka_unit_test(escaped_backslash_before_u0000_text_is_not_a_nul_escape),
	    cmocka_unit_test(from_json_of_null_is_rejected_as_ejson),
	    cmocka_unit_test(from_json_works_on_a_cjson_tree),
	    cmocka_unit_test(from_json_rejects_a_non_finite_number_built_in_c),
	    cmocka_unit_test(rejected_update_leaves_output_untouched),
	    cmocka_unit_test(error_may_be_null),

	    cmocka_unit_test(update_without_v_is_rejected_naming_v),
	    cmocka_unit_test(update_with_v_2_is_rejected),
	    cmocka_unit_test(update_with_v_as_string_is_rejected),
	    cmocka_unit_test(update_with_v_null_is_rejected),
	    cmocka_unit_test(update_with_v_true_is_rejected),

	    cmocka_unit_test(update_without_order_id_is_rejected_naming_order_id),
	    cmocka_unit_test(update_with_numeric_order_id_is_rejected),
	    cmocka_unit_test(update_with_null_order_id_is_rejected_as_wrong_type),
	    cmocka_unit_test(update_with_object_order_id_is_rejected),
	    cmocka_unit_test(update_with_empty_order_id_is_rejected),
	    cmocka_unit_test(update_with_128_character_order_id_is_accepted),
	    cmocka_unit_test(update_with_129_character_order_id_is_rejected),
	    cmocka_unit_test(update_with_disallowed_order_id_character_is_rejected),

	    cmocka_unit_test(update_without_provider_is_rejected_naming_provider),
	    cmocka_unit_test(update_with_numeric_provider_is_rejected),
	    cmocka_unit_test(update_with_null_provider_is_rejected_as_wrong_type),
	    cmocka_unit_test(update_with_empty_provider_is_rejected),
	    cmocka_unit_test(update_with_64_character_provider_is_accepted),
	    cmocka_unit_test(update_with_65_character_provider_is_rejected),
	    cmocka_unit_test(provider_of_lowercase_digits_underscore_and_dash_is_accepted),
	    cmocka_unit_test(provider_with_uppercase_or_other_characters_is_rejected),

	    cmocka_unit_test(update_without_ts_is_rejected_naming_ts),
	    cmocka_unit_test(update_with_ts_as_string_is_rejected),
	    cmocka_unit_test(update_with_ts_null_is_rejected_as_wrong_type),
	    cmocka_unit_test(update_with_ts_true_is_rejected),
	    cmocka_unit_test(update_with_fractional_ts_is_rejected),
	    cmocka_unit_test(update_with_ts_0_is_rejected),
	    cmocka_unit_test(update_with_negative_ts_is_rejected),
	    cmocka_unit_test(update_with_ts_1_is_accepted),
	    cmocka_unit_test(update_with_ts_at_the_largest_ms_time_is_accepted),
	    cmocka_unit_test(update_with_ts_above_the_largest_ms_time_is_rejected),
	    cmocka_unit_test(update_with_infinite_ts_is_rejected),
	    cmocka_unit_test(update_with_integral_ts_in_exponent_form_is_accepted),

	    cmocka_unit_test(update_with_event_id_keeps_it),
	    cmocka_unit_test(update_with_empty_event_id_is_rejected),
	    cmocka_unit_test(update_with_128_character_event_id_is_accepted),
	    cmocka_unit_test(update_with_129_character_event_id_is_rejected),
	    cmocka_unit_test(update_with_numeric_event_id_is_rejected),
	    cmocka_unit_test(event_id_of_space_tilde_quote_and_backslash_is_accepted),
	    cmocka_unit_test(event_id_with_control_character_is_rejected),
	    cmocka_unit_test(event_id_with_del_is_rejected),
	    cmocka_unit_test(event_id_with_non_ascii_is_rejected),

	    cmocka_unit_test(location_that_is_not_an_object_is_rejected),
	    cmocka_unit_test(location_without_lat_is_rejected_naming_location_lat),
	    cmocka_unit_test(location_without_lng_is_rejected_naming_location_lng),
	    cmocka_unit_test(location_with_lat_as_string_is_rejected),
	    cmocka_unit_test(location_with_lat_null_is_rejected_as_wrong_type),
	    cmocka_unit_test(location_with_lng_as_string_is_rejected),
	    cmocka_unit_test(lat_of_minus_90_and_90_is_accepted),
	    cmocka_unit_test(lat_beyond_90_either_way_is_rejected),
	    cmocka_unit_test(lng_of_minus_180_and_180_is_accepted),
	    cmocka_unit_test(lng_beyond_180_either_way_is_rejected),
	    cmocka_unit_test(infinite_coordinates_are_rejected),
	    cmocka_unit_test(heading_of_0_and_just_under_360_is_accepted),
	    cmocka_unit_test(heading_of_360_is_rejected),
	    cmocka_unit_test(negative_heading_is_rejected),
	    cmocka_unit_test(heading_as_string_is_rejected),
	    cmocka_unit_test(speed_of_0_is_accepted),
	    cmocka_unit_test(negative_speed_is_rejected),
	    cmocka_unit_test(infinite_speed_is_rejected),
	    cmocka_unit_test(speed_as_string_is_rejected),
	    cmocka_unit_test(accuracy_of_0_is_accepted),
	    cmocka_unit_test(negative_accuracy_is_rejected),
	    cmocka_unit_test(infinite_accuracy_is_rejected),
	    cmocka_unit_test(accuracy_as_boolean_is_rejected),
	    cmocka_unit_test(null_optional_location_members_count_as_absent),

	    cmocka_unit_test(every_canonical_status_is_accepted),
	    cmocka_unit_test(unknown_status_is_rejected_listing_the_canonical_ones),
	    cmocka_unit_test(status_in_other_case_is_rejected),
	    cmocka_unit_test(empty_status_is_rejected),
	    cmocka_unit_test(status_as_number_is_rejected),

	    cmocka_unit_test(courier_that_is_not_an_object_is_rejected),
	    cmocka_unit_test(empty_courier_object_is_kept_with_no_members),
	    cmocka_unit_test(null_courier_members_count_as_absent),
	    cmocka_unit_test(courier_id_of_128_bytes_is_accepted),
	    cmocka_unit_test(courier_id_of_129_bytes_is_rejected),
	    cmocka_unit_test(courier_name_of_128_bytes_of_utf8_is_accepted),
	    cmocka_unit_test(courier_name_of_129_bytes_is_rejected),
	    cmocka_unit_test(courier_vehicle_of_32_bytes_is_accepted),
	    cmocka_unit_test(courier_vehicle_of_33_bytes_is_rejected),
	    cmocka_unit_test(empty_courier_strings_are_rejected),
	    cmocka_unit_test(courier_strings_of_wrong_type_are_rejected),
	    cmocka_unit_test(courier_name_with_control_character_is_rejected),
	    cmocka_unit_test(courier_name_with_invalid_utf8_is_rejected),
	    cmocka_unit_test(courier_name_with_four_byte_utf8_is_accepted),

	    cmocka_unit_test(eta_that_is_not_an_object_is_rejected),
	    cmocka_unit_test(empty_eta_is_rejected_naming_eta),
	    cmocka_unit_test(eta_with_only_null_members_is_rejected),
	    cmocka_unit_test(eta_with_only_pickup_is_accepted),
	    cmocka_unit_test(eta_pickup_of_0_is_rejected),
	    cmocka_unit_test(eta_pickup_as_string_is_rejected),
	    cmocka_unit_test(fractional_eta_dropoff_is_rejected),
	    cmocka_unit_test(eta_dropoff_at_the_largest_ms_time_is_accepted),
	    cmocka_unit_test(eta_dropoff_above_the_largest_ms_time_is_rejected),
	    cmocka_unit_test(eta_dropoff_of_1_is_accepted),
	    cmocka_unit_test(negative_eta_dropoff_is_rejected),

	    cmocka_unit_test(update_with_only_places_is_accepted),
	    cmocka_unit_test(places_with_only_a_dropoff_is_accepted),
	    cmocka_unit_test(empty_places_is_rejected_naming_places),
	    cmocka_unit_test(place_without_lat_or_lng_is_rejected_naming_it),
	    cmocka_unit_test(place_out_of_range_is_rejected),
	    cmocka_unit_test(places_encode_in_canonical_order_and_round_trip),
	    cmocka_unit_test(state_with_places_decodes_and_needs_their_ts),
	    cmocka_unit_test(full_update_encodes_to_exactly_the_canonical_bytes),
	    cmocka_unit_test(minimal_update_encodes_with_absent_members_omitted),
	    cmocka_unit_test(encoding_puts_members_in_canonical_order),
	    cmocka_unit_test(full_update_survives_decode_encode_decode),
	    cmocka_unit_test(minimal_update_survives_decode_encode_decode),
	    cmocka_unit_test(doubles_survive_encoding_exactly),
	    cmocka_unit_test(doubles_are_encoded_in_their_shortest_exact_form),
	    cmocka_unit_test(strings_are_escaped_when_encoded),
	    cmocka_unit_test(update_with_non_finite_number_is_not_encoded),
	    cmocka_unit_test(update_with_out_of_range_status_is_not_encoded),

	    cmocka_unit_test(state_as_the_script_writes_it_decodes),
	    cmocka_unit_test(state_with_only_a_status_decodes_without_other_parts),
	    cmocka_unit_test(state_without_order_id_is_rejected),
	    cmocka_unit_test(state_without_updated_at_is_rejected),
	    cmocka_unit_test(state_with_status_but_no_status_ts_is_rejected),
	    cmocka_unit_test(state_location_without_ts_is_rejected),
	    cmocka_unit_test(state_eta_without_ts_is_rejected),
	    cmocka_unit_test(state_with_unknown_status_is_rejected),
	    cmocka_unit_test(state_that_is_not_a_json_object_is_rejected_as_ejson),

	    cmocka_unit_test(snapshot_frame_carries_the_state_verbatim_and_the_cursor),
	    cmocka_unit_test(snapshot_frame_of_unknown_order_has_null_state_and_cursor),
	    cmocka_unit_test(snapshot_frame_after_a_lost_cursor_says_reset),
	    cmocka_unit_test(snapshot_frame_with_cap_0_only_returns_its_length),
	    cmocka_unit_test(snapshot_frame_with_short_cap_writes_only_cap_bytes),
	    cmocka_unit_test(snapshot_frame_with_cap_one_short_misses_only_the_last_byte),
	    cmocka_unit_test(snapshot_frame_refuses_invalid_order_id_or_cursor),

	    cmocka_unit_test(update_frame_is_byte_for_byte_the_scripts_frame),
	    cmocka_unit_test(update_frame_with_cap_0_only_returns_its_length),
	    cmocka_unit_test(update_frame_with_short_caps_writes_the_prefix_that_fits),
	    cmocka_unit_test(update_frame_needs_a_valid_cursor_and_update),

	    cmocka_unit_test(error_frame_has_code_and_message),
	    cmocka_unit_test(error_frame_escapes_quotes_backslashes_and_control_characters),
	    cmocka_unit_test(error_frame_passes_utf8_through),
	    cmocka_unit_test(error_frame_replaces_invalid_utf8_with_u_fffd),
	    cmocka_unit_test(error_frame_is_json_that_gives_back_the_message),
	    cmocka_unit_test(error_frame_with_cap_0_only_returns_its_length),
	    cmocka_unit_test(error_frame_with_short_cap_writes_only_cap_bytes),
	    cmocka_unit_test(error_frame_needs_code_and_message),

	    cmocka_unit_test(cursor_of_the_scripts_update_frame_is_found),
	    cmocka_unit_test(cursor_of_a_frame_written_in_c_is_found),
	    cmocka_unit_test(cursor_of_the_shortest_update_frame_is_found),
	    cmocka_unit_test(every_truncation_of_an_update_frame_is_rejected),
	    cmocka_unit_test(every_suffix_of_an_update_frame_is_rejected),
	    cmocka_unit_test(empty_frame_has_no_cursor),
	    cmocka_unit_test(one_byte_frames_have_no_cursor),
	    cmocka_unit_test(lookalike_frames_have_no_cursor),
	    cmocka_unit_test(frame_with_129_character_order_id_has_no_cursor),

	    cmocka_unit_test(resumed_frame_carries_the_cursor_and_the_count),
	    cmocka_unit_test(resumed_frame_refuses_a_bad_cursor_or_order),
	    cmocka_unit_test(keys_of_an_order_share_its_hash_tag),
	    cmocka_unit_test(keys_of_a_128_character_order_id_fit),
	    cmocka_unit_test(channel_name_gives_its_order_id),
	    cmocka_unit_test(other_names_are_not_order_channels),

	    cmocka_unit_test(order_doc_is_the_snapshot_frame_without_its_type),
	    cmocka_unit_test(order_doc_of_unknown_order_has_null_state_and_cursor),
	    cmocka_unit_test(order_doc_with_cap_0_only_returns_its_length),
	    cmocka_unit_test(order_doc_with_short_cap_writes_only_cap_bytes),
	    cmocka_unit_test(order_doc_refuses_what_the_snapshot_frame_refuses),

	    cmocka_unit_test(frame_with_only_a_location_is_location_only),
	    cmocka_unit_test(frame_with_a_location_and_more_is_not_location_only),
	    cmocka_unit_test(frame_without_a_location_is_not_location_only),
	    cmocka_unit_test(nested_member_name_makes_a_frame_not_location_only),
	    cmocka_unit_test(location_only_reads_no_byte_past_len),
	    cmocka_unit_test(ts_of_an_update_frame_is_the_updates_own),
	    cmocka_unit_test(ts_of_a_frame_without_one_is_0),
	    cmocka_unit_test(ts_stops_at_len_and_at_ms_max),

	    cmocka_unit_test(valid_utf8_is_valid),
	    cmocka_unit_test(overlongs_surrogates_and_code_points_past_10ffff_are_not_utf8),
	    cmocka_unit_test(utf8_split_anywhere_gives_the_whole_texts_answer),
	    cmocka_unit_test(utf8_character_cut_between_fragments_carries_over),
	    cmocka_unit_test(utf8_sequence_length_is_that_of_one_character),
	    cmocka_unit_test(courier_string_that_is_not_utf8_is_rejected),

	    cmocka_unit_test(base64_decodes_the_rfc_4648_test_vectors),
	    cmocka_unit_test(base64_padding_is_optional_but_must_complete_the_group),
	    cmocka_unit_test(base64_nopad_refuses_padding),
	    cmocka_unit_test(base64_url_alphabet_is_only_taken_with_the_url_flag),
	    cmocka_unit_test(base64_refuses_whitespace_and_other_bytes),
	    cmocka_unit_test(base64_needs_room_for_every_byte),
	    cmocka_unit_test(base64_does_not_check_the_unused_bits_of_the_last_character),
	    cmocka_unit_test(base64_round_trips_every_byte_value),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
