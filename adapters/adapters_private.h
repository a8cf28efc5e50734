/*
 * adapters_private.h - what the provider adapters share: signature checks,
 * time and coordinate parsing, JSON getters with error paths, and the
 * update helpers.  Only for files of adapters/ (implemented in common.c).
 */
#ifndef TRACKGATE_ADAPTERS_PRIVATE_H
#define TRACKGATE_ADAPTERS_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "adapter.h"

/* Each provider's table, defined in its own file and listed in registry.c. */
extern const adapter_ops_t adapter_uber_direct;
extern const adapter_ops_t adapter_doordash_drive;
extern const adapter_ops_t adapter_wolt_drive;
extern const adapter_ops_t adapter_onfleet;
extern const adapter_ops_t adapter_stuart;
extern const adapter_ops_t adapter_opendelivery;
extern const adapter_ops_t adapter_rappi;

/* rappi's answer to a webhook with nothing to track (PING): see adapter_ignored_reply(). */
extern const char adapter_rappi_ignored_reply[];

/* Fills err and returns code (for `return adapter_fail(...)`). */
int adapter_fail(proto_error_t *err, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* --- signatures and credentials (constant time) --------------------------- */

typedef enum adapter_hmac_alg {
	ADAPTER_HMAC_SHA256,
	ADAPTER_HMAC_SHA512,
} adapter_hmac_alg_t;

/*
 * True when hex (case-insensitive, surrounding whitespace and an optional
 * "sha256=" / "sha512=" prefix tolerated) is the HMAC of body under key.
 */
bool adapter_hmac_hex_ok(adapter_hmac_alg_t alg, const unsigned char *key, size_t key_len,
			 const char *body, size_t body_len, const char *hex);

/* Constant-time equality of two byte strings (length leaks, content does not). */
bool adapter_equal(const void *a, size_t a_len, const void *b, size_t b_len);

/* Decodes hex into out (at most cap bytes); the decoded length, or -1 when not hex. */
long adapter_hex_decode(const char *hex, size_t len, unsigned char *out, size_t cap);

/*
 * Checks an Authorization header against the secret: either "Bearer SECRET",
 * or "Basic base64(user:password)" where the secret is "user:password".
 */
bool adapter_authorization_ok(const char *header_value, const unsigned char *secret,
			      size_t secret_len);

/*
 * The replay window: 0 when signed_ms, the time of sending that the
 * provider's signature covers, is within req->replay_window_ms (0: the
 * default) of the receive time req->now_ms, either way; otherwise
 * ADAPTER_EAUTH with field and a message that says how far off it is and
 * what the window is.  Call it only once the signature holds, so an
 * unsigned request learns nothing about the clock.
 */
int adapter_check_replay_window(const adapter_request_t *req, int64_t signed_ms, const char *field,
				proto_error_t *err);

/* "sha256:" + the first 32 hex digits of SHA-256(body): an event id for bodies without one. */
void adapter_body_event_id(const char *body, size_t len, char out[PROTO_EVENT_ID_MAX + 1]);

/* --- parsing the body ---------------------------------------------------------- */

/*
 * Parses the raw body as a JSON object (NUL bytes, invalid UTF-8 in
 * strings, duplicate members at the top level and trailing data rejected).
 * NULL with err filled (ADAPTER_EINVAL) on failure; the caller cJSON_Deletes.
 * When memory ran out, err->message is exactly ADAPTER_MSG_NOMEM (answer
 * ADAPTER_ENOMEM then, so the provider retries).
 */
#define ADAPTER_MSG_NOMEM "out of memory"
cJSON *adapter_parse_json(const char *body, size_t len, proto_error_t *err);

/*
 * The member at a dotted path ("data.courier.location"), or NULL when any
 * step is missing or null.  Steps through objects only.
 */
const cJSON *adapter_get(const cJSON *root, const char *path);

/*
 * Typed getters: 0 and the value when present and of the right type; 1 when
 * absent or null (value untouched) and not required; ADAPTER_EINVAL naming
 * the path otherwise (wrong type, or absent and required).
 */
/* An object member: the typed getters' contract (a null member counts as absent). */
int adapter_get_object(const cJSON *root, const char *path, bool required, const cJSON **out,
		       proto_error_t *err);
int adapter_get_string(const cJSON *root, const char *path, bool required, const char **out,
		       proto_error_t *err);
/* A number, or a string holding a finite decimal number ("52.5"). */
int adapter_get_number(const cJSON *root, const char *path, bool required, double *out,
		       proto_error_t *err);

/*
 * A time as ms since the epoch: RFC 3339 ("2024-05-01T12:00:00Z",
 * "...T12:00:00.123456+02:00", any fraction digits, 'T' or ' ', 'Z' or an
 * offset), or a number (or numeric string) of epoch seconds or
 * milliseconds (values below 10^11 are seconds).  Out-of-range results
 * (outside 1..PROTO_MS_MAX) are errors.
 */
int adapter_parse_time(const char *s, int64_t *out_ms);
int adapter_get_time(const cJSON *root, const char *path, bool required, int64_t *out_ms,
		     proto_error_t *err);

/*
 * Latitude/longitude, each a number or numeric string, range-checked; field
 * names the path.  0 with *found true when both are present; 0 with *found
 * false (lat/lng untouched) when both are absent or null and not required;
 * ADAPTER_EINVAL when only one is present, a type is wrong or out of range.
 */
int adapter_get_latlng(const cJSON *root, const char *lat_path, const char *lng_path, bool required,
		       double *lat, double *lng, bool *found, proto_error_t *err);

/*
 * A pickup or dropoff place (proto places) at lat_path/lng_path: *has is
 * true when both are present, numbers in range and not exactly 0,0 (a
 * placeholder).  Anything else leaves the place out and is no error: a
 * place is a map marker, and a bad one must not cost the status and the
 * position that came in the same webhook (retried, it would fail again).
 */
void adapter_get_place(const cJSON *root, const char *lat_path, const char *lng_path,
		       proto_point_t *p, bool *has);

/* Stores lat/lng (read and range-checked) in p unless it is the 0,0 placeholder. */
void adapter_keep_place(double lat, double lng, proto_point_t *p, bool *has);

/* --- building updates ---------------------------------------------------------- */

/*
 * Starts an update: v1, order_id (checked: 1..128 of [A-Za-z0-9._~-]), the
 * provider's name, ts, event_id (copied, truncated to 128 bytes).
 */
int adapter_update_init(proto_update_t *u, const char *provider, const char *order_id, int64_t ts,
			const char *event_id, proto_error_t *err);

/*
 * Hands one built update to the caller: *n = 0 when it carries nothing to
 * track (no location, status, eta or places), else out[0] = *u and *n = 1;
 * ADAPTER_EINVAL when max leaves no room.
 */
int adapter_emit_one(const proto_update_t *u, proto_update_t *out, int max, int *n,
		     proto_error_t *err);

/* Copies s (may be NULL) into a courier field of size cap, truncating at a UTF-8 boundary. */
void adapter_copy_text(char *dst, size_t cap, const char *s);

/* DoorDash's dasher_id (an integer, or a string) into courier->id; absent is fine. */
int adapter_doordash_dasher_id(const cJSON *root, proto_courier_t *courier, proto_error_t *err);

#endif
