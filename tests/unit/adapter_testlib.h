/*
 * adapter_testlib.h - what the adapter unit tests (tests/unit/test_adapter_*.c)
 * share: reading fixtures, request headers, requests, HMAC signatures
 * computed independently of the adapters (with OpenSSL), and the checks every
 * update an adapter produces must pass.  The helpers fail the running cmocka
 * test themselves, so a test calls them without checking results.
 *
 * Built into each adapter test (tests/CMakeLists.txt), whose target defines
 * TG_FIXTURES, the folder of tests/unit/fixtures.
 */
#ifndef TRACKGATE_ADAPTER_TESTLIB_H
#define TRACKGATE_ADAPTER_TESTLIB_H

#include <stddef.h>
#include <stdint.h>

#include "adapters_private.h"

/* --- fixtures ---------------------------------------------------------------------- */

/*
 * The bytes of the file at path, malloc'd and NUL-terminated (the caller
 * frees them); their count in *len unless len is NULL.  Fails the test when
 * the file cannot be read or is empty.
 */
char *atl_load_file(const char *path, size_t *len);

/* atl_load_file of TG_FIXTURES/dir/name, e.g. ("onfleet", "task_eta.json"). */
char *atl_load_fixture(const char *dir, const char *name, size_t *len);

/* --- requests ----------------------------------------------------------------------- */

#define ATL_HEADERS_MAX 4

/*
 * A request's headers: value[i] under name[i], lower case as the gateway
 * passes them; a slot whose name is NULL is unused, a NULL value is a header
 * looked up but absent.  {{NULL}, {NULL}} is no header at all.
 */
typedef struct atl_headers {
	const char *name[ATL_HEADERS_MAX];
	const char *value[ATL_HEADERS_MAX];
} atl_headers_t;

/* Puts name: value in the first unused slot; fails the test when none is left. */
void atl_headers_add(atl_headers_t *h, const char *name, const char *value);

/*
 * adapter_request_t.header for ctx an atl_headers_t: the value of the first
 * slot named exactly name (names compare case-sensitively), NULL when none is.
 */
const char *atl_headers_lookup(void *ctx, const char *name);

/*
 * A request for body[0..len) received at now_ms, with the provider's secret
 * secret[0..secret_len) and the headers h, looked up by atl_headers_lookup
 * (h NULL: the request has no header function at all).
 */
adapter_request_t atl_request(const char *body, size_t len, atl_headers_t *h, const void *secret,
			      size_t secret_len, int64_t now_ms);

/* --- signatures --------------------------------------------------------------------- */

/*
 * The lower-case hex HMAC (SHA-256 or SHA-512 by alg) of data[0..len) under
 * key[0..key_len), computed with OpenSSL and written NUL-terminated to hex,
 * which has room for 65 (SHA-256) or 129 (SHA-512) chars.
 */
void atl_hmac_hex(adapter_hmac_alg_t alg, const void *key, size_t key_len, const void *data,
		  size_t len, char *hex);

/* --- the updates an adapter produces ------------------------------------------------ */

/*
 * What the proto round trip of an update compares besides order_id,
 * event_id, ts and status (always compared), one flag per group.
 */
enum {
	ATL_CHECK_BASIC = 0,
	ATL_CHECK_EVENT_ID = 1 << 0,   /* the event id is not empty */
	ATL_CHECK_PRESENCE = 1 << 1,   /* has_location and has_eta */
	ATL_CHECK_COURIER_ID = 1 << 2, /* courier.id */
	/* the position, both ETAs with their flags, has_courier, courier name and vehicle */
	ATL_CHECK_PARTS = 1 << 3,
	ATL_CHECK_ALL =
	    ATL_CHECK_EVENT_ID | ATL_CHECK_PRESENCE | ATL_CHECK_COURIER_ID | ATL_CHECK_PARTS,
};

/* What a test file expects of every update its adapter produces. */
typedef struct atl_expect {
	const char *provider; /* the updates' provider; NULL: not compared */
	int max_updates;      /* most updates one body may give */
	unsigned checks;      /* ATL_CHECK_* */
} atl_expect_t;

/*
 * Asserts u survives proto: proto_update_to_json encodes it, and
 * proto_update_parse accepts the JSON and reads back u's order_id, event_id,
 * ts and status, provider (unless NULL) as the provider, and what checks
 * (ATL_CHECK_*) adds.
 */
void atl_assert_update_valid(const proto_update_t *u, const char *provider, unsigned checks);

/* Asserts 0 <= n <= expect->max_updates, then atl_assert_update_valid of u[0..n). */
void atl_assert_updates_valid(const proto_update_t *u, int n, const atl_expect_t *expect);

/*
 * Runs ops->parse on req into out (room for ADAPTER_UPDATES_MAX) after
 * setting *n to -1 and clearing *err, and asserts the adapter kept its
 * contract: no update when it fails, otherwise atl_assert_updates_valid.
 * Returns what parse returned.
 */
int atl_parse(const adapter_ops_t *ops, const adapter_request_t *req, proto_update_t *out, int *n,
	      proto_error_t *err, const atl_expect_t *expect);

/*
 * verify then parse of req, as the gateway runs them: *n is set to -1 and
 * *err cleared first; returns verify's failure, or what atl_parse returns.
 */
int atl_verify_then_parse(const adapter_ops_t *ops, const adapter_request_t *req,
			  proto_update_t *out, int *n, proto_error_t *err,
			  const atl_expect_t *expect);

/* The outcome of one parse, for the assertions below. */
typedef struct atl_parsed {
	int rc;
	int n;
	proto_update_t u[ADAPTER_UPDATES_MAX];
	proto_error_t err;
} atl_parsed_t;

/* atl_parse into p (cleared first); on failure also asserts err.message says why. */
void atl_parse_into(const adapter_ops_t *ops, const adapter_request_t *req,
		    const atl_expect_t *expect, atl_parsed_t *p);

/* Asserts the parse succeeded with exactly one update (failing with its error if not). */
void atl_assert_one_update(const atl_parsed_t *p);

/* Asserts the parse succeeded with nothing to track: no update. */
void atl_assert_ignored(const atl_parsed_t *p);

/* Asserts the parse failed as malformed (ADAPTER_EINVAL), naming field unless it is NULL. */
void atl_assert_invalid(const atl_parsed_t *p, const char *field);

/* --- text ------------------------------------------------------------------------- */

/* printf into a malloc'd string (the caller frees it). */
char *atl_format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A malloc'd copy of s with its first occurrence of from replaced by to; fails without one. */
char *atl_replace_once(const char *s, const char *from, const char *to);

#endif
