/*
 * proto.c - identifiers, cursors, and the JSON decode/validate/encode of the
 * canonical update v1 and of the order state.  proto/README.md is the
 * contract; every rule there is checked here, in the order the README lists
 * the fields, and the first failure is reported.
 *
 * Every input may come straight from the network (and is fuzzed): each cJSON
 * type is checked before its value is used, every length is bounded before a
 * copy, and a failed decode leaves *out untouched.
 */
#include "proto.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- identifiers ------------------------------------------------------- */

static const char *const status_names[PROTO_STATUS__COUNT] = {
    [PROTO_STATUS_NONE] = NULL,
    [PROTO_STATUS_CREATED] = "created",
    [PROTO_STATUS_COURIER_ASSIGNED] = "courier_assigned",
    [PROTO_STATUS_EN_ROUTE_TO_PICKUP] = "en_route_to_pickup",
    [PROTO_STATUS_AT_PICKUP] = "at_pickup",
    [PROTO_STATUS_PICKED_UP] = "picked_up",
    [PROTO_STATUS_EN_ROUTE_TO_DROPOFF] = "en_route_to_dropoff",
    [PROTO_STATUS_AT_DROPOFF] = "at_dropoff",
    [PROTO_STATUS_DELIVERED] = "delivered",
    [PROTO_STATUS_CANCELLED] = "cancelled",
    [PROTO_STATUS_RETURNED] = "returned",
    [PROTO_STATUS_FAILED] = "failed",
};

static bool order_id_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '~' || c == '-';
}

static bool provider_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool proto_order_id_valid(const char *s, size_t len)
{
	if (s == NULL || len < 1 || len > PROTO_ORDER_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!order_id_char((unsigned char)s[i]))
			return false;
	}
	return true;
}

const char *proto_status_name(proto_status_t status)
{
	if ((int)status <= (int)PROTO_STATUS_NONE || (int)status >= (int)PROTO_STATUS__COUNT)
		return NULL;
	return status_names[status];
}

int proto_status_from_name(const char *name, proto_status_t *out)
{
	if (name == NULL)
		return PROTO_EINVAL;
	for (int i = PROTO_STATUS_NONE + 1; i < PROTO_STATUS__COUNT; i++) {
		if (strcmp(name, status_names[i]) == 0) {
			if (out != NULL)
				*out = (proto_status_t)i;
			return PROTO_OK;
		}
	}
	return PROTO_EINVAL;
}

bool proto_status_is_terminal(proto_status_t status)
{
	return status == PROTO_STATUS_DELIVERED || status == PROTO_STATUS_CANCELLED ||
	       status == PROTO_STATUS_RETURNED || status == PROTO_STATUS_FAILED;
}

/* --- cursors ----------------------------------------------------------- */

/*
 * One decimal uint64 in canonical spelling: 1..20 digits, no leading zero
 * (except "0" itself), no overflow.  The script writes cursors with %.0f, so
 * a cursor has exactly one spelling and two equal cursors are equal strings.
 */
static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		uint64_t d = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

int proto_cursor_parse(const char *s, size_t len, proto_cursor_t *out)
{
	proto_cursor_t c;
	const char *dash;

	if (s == NULL || len < 3 || len > PROTO_CURSOR_MAX)
		return PROTO_EINVAL;
	dash = memchr(s, '-', len);
	if (dash == NULL)
		return PROTO_EINVAL;
	if (!parse_u64(s, (size_t)(dash - s), &c.ms) ||
	    !parse_u64(dash + 1, len - (size_t)(dash - s) - 1, &c.seq))
		return PROTO_EINVAL;
	if (out != NULL)
		*out = c;
	return PROTO_OK;
}

int proto_cursor_cmp(const proto_cursor_t *a, const proto_cursor_t *b)
{
	if (a->ms != b->ms)
		return a->ms < b->ms ? -1 : 1;
	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	return 0;
}

/* --- decoding helpers ---------------------------------------------------- */

#define MSG_REQUIRED "is required"
#define MSG_STRING "must be a string"
#define MSG_OBJECT "must be an object"
#define MSG_INT_MS "must be an integer in [1, 99999999999999] (ms since epoch)"
#define MSG_STATUS                                                                                 \
	"must be one of created, courier_assigned, en_route_to_pickup, at_pickup, picked_up, "     \
	"en_route_to_dropoff, at_dropoff, delivered, cancelled, returned, failed"

_Static_assert(sizeof(MSG_STATUS) <= sizeof(((proto_error_t *)0)->message),
	       "the status message must fit proto_error_t.message");

static int fail(proto_error_t *err, int code, const char *field, const char *message)
{
	if (err != NULL) {
		snprintf(err->field, sizeof(err->field), "%s", field);
		snprintf(err->message, sizeof(err->message), "%s", message);
	}
	return code;
}

/* The member name of a path: "location.lat" -> "lat". */
static const char *path_leaf(const char *path)
{
	const char *dot = strrchr(path, '.');

	return dot != NULL ? dot + 1 : path;
}

/* strlen that stops looking after max bytes (returns max + 1 then). */
static size_t bounded_len(const char *s, size_t max)
{
	size_t n = 0;

	while (n <= max && s[n] != '\0')
		n++;
	return n;
}

/*
 * Finds the member named by the leaf of path, case-sensitively.  *item is the
 * member as it is (possibly a JSON null) or NULL when absent.  A member that
 * appears twice is an error: cJSON would read the first and the script's Lua
 * cjson the last, and the two must never disagree on what an update says.
 */
static int find_member(const cJSON *obj, const char *path, const cJSON **item, proto_error_t *err)
{
	const char *name = path_leaf(path);
	const cJSON *found = NULL;

	for (const cJSON *c = obj->child; c != NULL; c = c->next) {
		if (c->string == NULL || strcmp(c->string, name) != 0)
			continue;
		if (found != NULL)
			return fail(err, PROTO_EINVAL, path, "appears more than once");
		found = c;
	}
	*item = found;
	return PROTO_OK;
}

/*
 * Looks up an optional or required member.  An optional member that is
 * absent or null gives *item == NULL; a required one that is absent is
 * reported "is required" (a null required member is left to the type check,
 * which reports it as the wrong type).
 */
static int lookup(const cJSON *obj, const char *path, bool required, const cJSON **item,
		  proto_error_t *err)
{
	int rc = find_member(obj, path, item, err);

	if (rc != PROTO_OK)
		return rc;
	if (*item == NULL && required)
		return fail(err, PROTO_EINVAL, path, MSG_REQUIRED);
	if (*item != NULL && !required && cJSON_IsNull(*item))
		*item = NULL;
	return PROTO_OK;
}

/* An optional object member; *item NULL when absent or null. */
static int get_object(const cJSON *obj, const char *path, const cJSON **item, proto_error_t *err)
{
	int rc = lookup(obj, path, false, item, err);

	if (rc != PROTO_OK)
		return rc;
	if (*item != NULL && !cJSON_IsObject(*item))
		return fail(err, PROTO_EINVAL, path, MSG_OBJECT);
	return PROTO_OK;
}

/* A string member; *s NULL when an optional one is absent or null. */
static int get_string(const cJSON *obj, const char *path, bool required, const char **s,
		      proto_error_t *err)
{
	const cJSON *item;
	int rc = lookup(obj, path, required, &item, err);

	*s = NULL;
	if (rc != PROTO_OK)
		return rc;
	if (item == NULL)
		return PROTO_OK;
	if (!cJSON_IsString(item) || item->valuestring == NULL)
		return fail(err, PROTO_EINVAL, path, MSG_STRING);
	*s = item->valuestring;
	return PROTO_OK;
}

struct num_rule {
	double min;
	double max;
	bool max_open; /* max itself is outside the range */
	const char *message;
};

static const struct num_rule rule_lat = {-90.0, 90.0, false, "must be a number in [-90, 90]"};
static const struct num_rule rule_lng = {-180.0, 180.0, false, "must be a number in [-180, 180]"};
static const struct num_rule rule_heading = {0.0, 360.0, true, "must be a number in [0, 360)"};
static const struct num_rule rule_nonneg = {0.0, HUGE_VAL, true, "must be a number >= 0"};

/*
 * A finite number member within rule.  *found false when an optional one is
 * absent or null.  Infinity (cJSON reads 1e999 as inf) is out of every range.
 */
static int get_number(const cJSON *obj, const char *path, bool required,
		      const struct num_rule *rule, double *val, bool *found, proto_error_t *err)
{
	const cJSON *item;
	int rc = lookup(obj, path, required, &item, err);
	double d;

	*found = false;
	if (rc != PROTO_OK)
		return rc;
	if (item == NULL)
		return PROTO_OK;
	if (!cJSON_IsNumber(item))
		return fail(err, PROTO_EINVAL, path, rule->message);
	d = item->valuedouble;
	if (!isfinite(d) || d < rule->min || d > rule->max || (rule->max_open && d == rule->max))
		return fail(err, PROTO_EINVAL, path, rule->message);
	*val = d;
	*found = true;
	return PROTO_OK;
}

/*
 * An integer of milliseconds since the epoch in [1, 2^53]: a JSON number
 * whose value is integral (1700000000000, 1.7e12 and 1700000000000.0 are the
 * same number in JSON), never a string.  2^53 is the largest integer every
 * JSON reader (JavaScript, Lua, cJSON) holds exactly.
 */
static int get_ms(const cJSON *obj, const char *path, bool required, int64_t *val, bool *found,
		  proto_error_t *err)
{
	const cJSON *item;
	int rc = lookup(obj, path, required, &item, err);
	double d;

	*found = false;
	if (rc != PROTO_OK)
		return rc;
	if (item == NULL)
		return PROTO_OK;
	if (!cJSON_IsNumber(item))
		return fail(err, PROTO_EINVAL, path, MSG_INT_MS);
	d = item->valuedouble;
	/* The range check comes first so the cast below is defined. */
	if (!(d >= 1.0 && d <= (double)PROTO_MS_MAX) || (double)(int64_t)d != d)
		return fail(err, PROTO_EINVAL, path, MSG_INT_MS);
	*val = (int64_t)d;
	*found = true;
	return PROTO_OK;
}

/* Copies a validated string of len bytes (len < dst size) into dst. */
static void copy_str(char *dst, const char *s, size_t len)
{
	memcpy(dst, s, len);
	dst[len] = '\0';
}

static int decode_order_id(const cJSON *obj, char *dst, proto_error_t *err)
{
	const char *s;
	size_t len;
	int rc = get_string(obj, "order_id", true, &s, err);

	if (rc != PROTO_OK)
		return rc;
	len = bounded_len(s, PROTO_ORDER_ID_MAX);
	if (len < 1 || len > PROTO_ORDER_ID_MAX)
		return fail(err, PROTO_EINVAL, "order_id", "must be 1 to 128 characters long");
	if (!proto_order_id_valid(s, len))
		return fail(err, PROTO_EINVAL, "order_id", "may only contain A-Z a-z 0-9 . _ ~ -");
	copy_str(dst, s, len);
	return PROTO_OK;
}

static int decode_provider(const cJSON *obj, bool required, char *dst, proto_error_t *err)
{
	const char *s;
	size_t len;
	int rc = get_string(obj, "provider", required, &s, err);

	if (rc != PROTO_OK || s == NULL)
		return rc;
	len = bounded_len(s, PROTO_PROVIDER_MAX);
	if (len < 1 || len > PROTO_PROVIDER_MAX)
		return fail(err, PROTO_EINVAL, "provider", "must be 1 to 64 characters long");
	for (size_t i = 0; i < len; i++) {
		if (!provider_char((unsigned char)s[i]))
			return fail(err, PROTO_EINVAL, "provider", "may only contain a-z 0-9 _ -");
	}
	copy_str(dst, s, len);
	return PROTO_OK;
}

static int decode_event_id(const cJSON *obj, char *dst, proto_error_t *err)
{
	const char *s;
	size_t len;
	int rc = get_string(obj, "event_id", false, &s, err);

	if (rc != PROTO_OK || s == NULL)
		return rc;
	len = bounded_len(s, PROTO_EVENT_ID_MAX);
	if (len < 1 || len > PROTO_EVENT_ID_MAX)
		return fail(err, PROTO_EINVAL, "event_id", "must be 1 to 128 characters long");
	for (size_t i = 0; i < len; i++) {
		if (s[i] < 0x20 || s[i] > 0x7e)
			return fail(err, PROTO_EINVAL, "event_id",
				    "may only contain printable ASCII (0x20 to 0x7e)");
	}
	copy_str(dst, s, len);
	return PROTO_OK;
}

static int decode_status(const cJSON *obj, proto_status_t *out, proto_error_t *err)
{
	const char *s;
	int rc = get_string(obj, "status", false, &s, err);

	if (rc != PROTO_OK || s == NULL)
		return rc;
	if (proto_status_from_name(s, out) != PROTO_OK)
		return fail(err, PROTO_EINVAL, "status", MSG_STATUS);
	return PROTO_OK;
}

/*
 * lat and lng are required, the rest optional.  With ts_out (the state), the
 * part's "ts" member is required too.
 */
static int decode_location(const cJSON *loc, proto_location_t *out, int64_t *ts_out,
			   proto_error_t *err)
{
	bool found;
	int rc;

	if ((rc = get_number(loc, "location.lat", true, &rule_lat, &out->lat, &found, err)) ||
	    (rc = get_number(loc, "location.lng", true, &rule_lng, &out->lng, &found, err)) ||
	    (rc = get_number(loc, "location.heading_deg", false, &rule_heading, &out->heading_deg,
			     &out->has_heading, err)) ||
	    (rc = get_number(loc, "location.speed_mps", false, &rule_nonneg, &out->speed_mps,
			     &out->has_speed, err)) ||
	    (rc = get_number(loc, "location.accuracy_m", false, &rule_nonneg, &out->accuracy_m,
			     &out->has_accuracy, err)))
		return rc;
	if (ts_out != NULL)
		return get_ms(loc, "location.ts", true, ts_out, &found, err);
	return PROTO_OK;
}

/* One courier string: 1..max UTF-8 bytes, no control characters. */
static int decode_courier_string(const cJSON *courier, const char *path, size_t max, char *dst,
				 proto_error_t *err)
{
	static const char *const too_long[] = {"must be 1 to 32 bytes long",
					       "must be 1 to 128 bytes long"};
	const char *s;
	size_t len;
	int rc = get_string(courier, path, false, &s, err);

	if (rc != PROTO_OK || s == NULL)
		return rc;
	len = bounded_len(s, max);
	if (len < 1 || len > max)
		return fail(err, PROTO_EINVAL, path,
			    too_long[max == PROTO_COURIER_VEHICLE_MAX ? 0 : 1]);
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		size_t n;
		if (c < 0x20 || c == 0x7f)
			return fail(err, PROTO_EINVAL, path, "must not contain control characters");
		n = proto_utf8_seq_len(s + i, len - i);
		if (n == 0)
			return fail(err, PROTO_EINVAL, path, "must be valid UTF-8");
		i += n;
	}
	copy_str(dst, s, len);
	return PROTO_OK;
}

_Static_assert(PROTO_COURIER_ID_MAX == 128 && PROTO_COURIER_NAME_MAX == 128 &&
		   PROTO_COURIER_VEHICLE_MAX == 32,
	       "decode_courier_string's messages state these limits");

static int decode_courier(const cJSON *courier, proto_courier_t *out, proto_error_t *err)
{
	int rc;

	if ((rc = decode_courier_string(courier, "courier.id", PROTO_COURIER_ID_MAX, out->id,
					err)) ||
	    (rc = decode_courier_string(courier, "courier.name", PROTO_COURIER_NAME_MAX, out->name,
					err)) ||
	    (rc = decode_courier_string(courier, "courier.vehicle", PROTO_COURIER_VEHICLE_MAX,
					out->vehicle, err)))
		return rc;
	return PROTO_OK;
}

/*
 * pickup and dropoff are optional.  An update's eta needs at least one of
 * them; the state's eta (ts_out != NULL) carries the part's "ts" instead.
 */
static int decode_eta(const cJSON *eta, proto_eta_t *out, int64_t *ts_out, proto_error_t *err)
{
	bool found;
	int rc;

	if ((rc = get_ms(eta, "eta.pickup", false, &out->pickup, &out->has_pickup, err)) ||
	    (rc = get_ms(eta, "eta.dropoff", false, &out->dropoff, &out->has_dropoff, err)))
		return rc;
	if (ts_out != NULL)
		return get_ms(eta, "eta.ts", true, ts_out, &found, err);
	if (!out->has_pickup && !out->has_dropoff)
		return fail(err, PROTO_EINVAL, "eta", "needs at least one of pickup, dropoff");
	return PROTO_OK;
}

/*
 * One place: lat and lng, both required (path is "places.pickup" or
 * "places.dropoff").  In the state (ts_out != NULL) each place carries the
 * "ts" of the update that set it.
 */
static int decode_point(const cJSON *obj, const char *path, proto_point_t *out, bool *has,
			int64_t *ts_out, proto_error_t *err)
{
	char lat_path[32], lng_path[32], ts_path[32];
	const cJSON *item;
	bool found;
	int rc;

	if ((rc = get_object(obj, path, &item, err)) != PROTO_OK || item == NULL)
		return rc;
	snprintf(lat_path, sizeof(lat_path), "%s.lat", path);
	snprintf(lng_path, sizeof(lng_path), "%s.lng", path);
	snprintf(ts_path, sizeof(ts_path), "%s.ts", path);
	if ((rc = get_number(item, lat_path, true, &rule_lat, &out->lat, &found, err)) ||
	    (rc = get_number(item, lng_path, true, &rule_lng, &out->lng, &found, err)))
		return rc;
	if (ts_out != NULL && (rc = get_ms(item, ts_path, true, ts_out, &found, err)))
		return rc;
	*has = true;
	return PROTO_OK;
}

/*
 * pickup and dropoff: at least one in an update; the state's places may
 * hold either, each with its own ts (pickup_ts, dropoff_ts NULL for an update).
 */
static int decode_places(const cJSON *places, proto_places_t *out, int64_t *pickup_ts,
			 int64_t *dropoff_ts, proto_error_t *err)
{
	int rc;

	if ((rc = decode_point(places, "places.pickup", &out->pickup, &out->has_pickup, pickup_ts,
			       err)) ||
	    (rc = decode_point(places, "places.dropoff", &out->dropoff, &out->has_dropoff,
			       dropoff_ts, err)))
		return rc;
	if (pickup_ts == NULL && !out->has_pickup && !out->has_dropoff)
		return fail(err, PROTO_EINVAL, "places", "needs at least one of pickup, dropoff");
	return PROTO_OK;
}

static void clear_error(proto_error_t *err)
{
	if (err != NULL) {
		err->field[0] = '\0';
		err->message[0] = '\0';
	}
}

/* --- the canonical update ---------------------------------------------- */

int proto_update_from_json(const cJSON *obj, proto_update_t *out, proto_error_t *err)
{
	proto_update_t u;
	const cJSON *item;
	bool found;
	int rc;

	clear_error(err);
	if (out == NULL)
		return fail(err, PROTO_EINVAL, "", "no output given");
	if (obj == NULL || !cJSON_IsObject(obj))
		return fail(err, PROTO_EJSON, "", "must be a JSON object");
	memset(&u, 0, sizeof(u));

	if ((rc = lookup(obj, "v", true, &item, err)) != PROTO_OK)
		return rc;
	if (!cJSON_IsNumber(item) || item->valuedouble != PROTO_VERSION)
		return fail(err, PROTO_EINVAL, "v", "must be 1");

	if ((rc = decode_order_id(obj, u.order_id, err)) ||
	    (rc = decode_provider(obj, true, u.provider, err)) ||
	    (rc = get_ms(obj, "ts", true, &u.ts, &found, err)) ||
	    (rc = decode_event_id(obj, u.event_id, err)))
		return rc;

	if ((rc = get_object(obj, "location", &item, err)) != PROTO_OK)
		return rc;
	if (item != NULL) {
		if ((rc = decode_location(item, &u.location, NULL, err)) != PROTO_OK)
			return rc;
		u.has_location = true;
	}

	if ((rc = decode_status(obj, &u.status, err)) != PROTO_OK)
		return rc;

	if ((rc = get_object(obj, "courier", &item, err)) != PROTO_OK)
		return rc;
	if (item != NULL) {
		if ((rc = decode_courier(item, &u.courier, err)) != PROTO_OK)
			return rc;
		u.has_courier = true;
	}

	if ((rc = get_object(obj, "eta", &item, err)) != PROTO_OK)
		return rc;
	if (item != NULL) {
		if ((rc = decode_eta(item, &u.eta, NULL, err)) != PROTO_OK)
			return rc;
		u.has_eta = true;
	}

	if ((rc = get_object(obj, "places", &item, err)) != PROTO_OK)
		return rc;
	if (item != NULL) {
		if ((rc = decode_places(item, &u.places, NULL, NULL, err)) != PROTO_OK)
			return rc;
		u.has_places = true;
	}

	if (!u.has_location && u.status == PROTO_STATUS_NONE && !u.has_eta && !u.has_places)
		return fail(err, PROTO_EINVAL, "",
			    "needs at least one of location, status, eta, places");

	*out = u;
	return PROTO_OK;
}

/*
 * True when the JSON text holds the escape \u0000 inside a string.  cJSON
 * silently cuts a string at such a NUL ("a\u0000b" reads as "a"), so an id
 * would be read differently here than by the script; such text is refused.
 * Outside strings a backslash is not valid JSON, so no string tracking is
 * needed: an escape is a backslash preceded by an even number of backslashes.
 */
bool proto_json_has_nul_escape(const char *json, size_t len)
{
	size_t run = 0; /* backslashes immediately before i */

	for (size_t i = 0; i < len; i++) {
		if (json[i] == '\\') {
			run++;
			continue;
		}
		if (run % 2 == 1 && json[i] == 'u' && len - i >= 5 &&
		    memcmp(json + i + 1, "0000", 4) == 0)
			return true;
		run = 0;
	}
	return false;
}

/*
 * Parses len bytes of JSON text.  The text is copied into a NUL-terminated
 * buffer first: cJSON 1.7.15's length-bounded parser has had reads past the
 * given length on malformed input, and the copy makes that impossible.
 * Trailing bytes other than JSON whitespace are an error.
 */
static int parse_json(const char *json, size_t len, cJSON **root, proto_error_t *err)
{
	char *copy;
	const char *end = NULL;
	char msg[64];
	int rc = PROTO_OK;

	*root = NULL;
	if (json == NULL || len == 0)
		return fail(err, PROTO_EJSON, "", "is not valid JSON (empty)");
	if (len == SIZE_MAX || (copy = malloc(len + 1)) == NULL)
		return fail(err, PROTO_ENOMEM, "", "out of memory");
	memcpy(copy, json, len);
	copy[len] = '\0';

	*root = cJSON_ParseWithLengthOpts(copy, len, &end, false);
	if (*root == NULL) {
		size_t at =
		    end != NULL && end >= copy && end <= copy + len ? (size_t)(end - copy) : 0;
		snprintf(msg, sizeof(msg), "is not valid JSON (at byte %zu)", at);
		rc = fail(err, PROTO_EJSON, "", msg);
		goto out;
	}
	for (size_t i = (size_t)(end - copy); i < len; i++) {
		if (copy[i] != ' ' && copy[i] != '\t' && copy[i] != '\n' && copy[i] != '\r') {
			snprintf(msg, sizeof(msg), "is not valid JSON (trailing data at byte %zu)",
				 i);
			rc = fail(err, PROTO_EJSON, "", msg);
			goto out;
		}
	}
	if (proto_json_has_nul_escape(copy, len))
		rc = fail(err, PROTO_EINVAL, "", "must not contain the escape \\u0000");
out:
	if (rc != PROTO_OK) {
		cJSON_Delete(*root);
		*root = NULL;
	}
	free(copy);
	return rc;
}

int proto_update_parse(const char *json, size_t len, proto_update_t *out, proto_error_t *err)
{
	cJSON *root;
	int rc;

	clear_error(err);
	rc = parse_json(json, len, &root, err);
	if (rc != PROTO_OK)
		return rc;
	rc = proto_update_from_json(root, out, err);
	cJSON_Delete(root);
	return rc;
}

/* --- encoding ------------------------------------------------------------ */

/*
 * An output buffer with snprintf semantics: writes what fits in cap and
 * counts everything, so one pass with cap 0 sizes the second.
 */
struct out {
	char *buf;
	size_t cap;
	size_t len;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->len < o->cap) {
		size_t room = o->cap - o->len;
		memcpy(o->buf + o->len, s, n < room ? n : room);
	}
	o->len += n;
}

static void put_lit(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* A JSON string of at most max bytes of s.  Valid updates hold no control
 * characters, but an update built in C may, and the output stays valid JSON. */
static void put_string(struct out *o, const char *s, size_t max)
{
	size_t len = bounded_len(s, max);
	char esc[8];

	if (len > max)
		len = max;
	put(o, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(o, esc, 2);
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			put(o, esc, 6);
		} else {
			put(o, s + i, 1);
		}
	}
	put(o, "\"", 1);
}

static void put_int(struct out *o, int64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%lld", (long long)v);

	put(o, num, (size_t)n);
}

/*
 * The shortest of %.15g, %.16g and %.17g that reads back as the same double
 * (%.17g always does).  Assumes the "C" LC_NUMERIC locale, the default of
 * every C program that does not call setlocale().
 */
static void put_double(struct out *o, double d)
{
	char num[32];
	int n = 0;

	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(num, sizeof(num), "%.*g", prec, d);
		if (strtod(num, NULL) == d)
			break;
	}
	put(o, num, (size_t)n);
}

static void put_member(struct out *o, bool *first, const char *name)
{
	if (!*first)
		put(o, ",", 1);
	*first = false;
	put(o, "\"", 1);
	put_lit(o, name);
	put(o, "\":", 2);
}

static bool update_encodable(const proto_update_t *u)
{
	const proto_location_t *l = &u->location;

	if (u->status != PROTO_STATUS_NONE && proto_status_name(u->status) == NULL)
		return false;
	if (u->has_location && (!isfinite(l->lat) || !isfinite(l->lng) ||
				(l->has_heading && !isfinite(l->heading_deg)) ||
				(l->has_speed && !isfinite(l->speed_mps)) ||
				(l->has_accuracy && !isfinite(l->accuracy_m))))
		return false;
	if (u->has_places && ((u->places.has_pickup && (!isfinite(u->places.pickup.lat) ||
							!isfinite(u->places.pickup.lng))) ||
			      (u->places.has_dropoff && (!isfinite(u->places.dropoff.lat) ||
							 !isfinite(u->places.dropoff.lng)))))
		return false;
	return true;
}

static void put_point(struct out *o, bool *first, const char *name, const proto_point_t *p)
{
	put_member(o, first, name);
	put_lit(o, "{\"lat\":");
	put_double(o, p->lat);
	put_lit(o, ",\"lng\":");
	put_double(o, p->lng);
	put(o, "}", 1);
}

static void encode_update(struct out *o, const proto_update_t *u)
{
	bool first = true;

	put_lit(o, "{\"v\":1,\"order_id\":");
	put_string(o, u->order_id, PROTO_ORDER_ID_MAX);
	put_lit(o, ",\"provider\":");
	put_string(o, u->provider, PROTO_PROVIDER_MAX);
	put_lit(o, ",\"ts\":");
	put_int(o, u->ts);
	if (u->event_id[0] != '\0') {
		put_lit(o, ",\"event_id\":");
		put_string(o, u->event_id, PROTO_EVENT_ID_MAX);
	}
	if (u->has_location) {
		const proto_location_t *l = &u->location;
		put_lit(o, ",\"location\":{\"lat\":");
		put_double(o, l->lat);
		put_lit(o, ",\"lng\":");
		put_double(o, l->lng);
		if (l->has_heading) {
			put_lit(o, ",\"heading_deg\":");
			put_double(o, l->heading_deg);
		}
		if (l->has_speed) {
			put_lit(o, ",\"speed_mps\":");
			put_double(o, l->speed_mps);
		}
		if (l->has_accuracy) {
			put_lit(o, ",\"accuracy_m\":");
			put_double(o, l->accuracy_m);
		}
		put(o, "}", 1);
	}
	if (u->status != PROTO_STATUS_NONE) {
		put_lit(o, ",\"status\":\"");
		put_lit(o, proto_status_name(u->status));
		put(o, "\"", 1);
	}
	if (u->has_courier) {
		put_lit(o, ",\"courier\":{");
		if (u->courier.id[0] != '\0') {
			put_member(o, &first, "id");
			put_string(o, u->courier.id, PROTO_COURIER_ID_MAX);
		}
		if (u->courier.name[0] != '\0') {
			put_member(o, &first, "name");
			put_string(o, u->courier.name, PROTO_COURIER_NAME_MAX);
		}
		if (u->courier.vehicle[0] != '\0') {
			put_member(o, &first, "vehicle");
			put_string(o, u->courier.vehicle, PROTO_COURIER_VEHICLE_MAX);
		}
		put(o, "}", 1);
	}
	if (u->has_eta) {
		first = true;
		put_lit(o, ",\"eta\":{");
		if (u->eta.has_pickup) {
			put_member(o, &first, "pickup");
			put_int(o, u->eta.pickup);
		}
		if (u->eta.has_dropoff) {
			put_member(o, &first, "dropoff");
			put_int(o, u->eta.dropoff);
		}
		put(o, "}", 1);
	}
	if (u->has_places) {
		first = true;
		put_lit(o, ",\"places\":{");
		if (u->places.has_pickup)
			put_point(o, &first, "pickup", &u->places.pickup);
		if (u->places.has_dropoff)
			put_point(o, &first, "dropoff", &u->places.dropoff);
		put(o, "}", 1);
	}
	put(o, "}", 1);
}

char *proto_update_to_json(const proto_update_t *u)
{
	struct out o = {NULL, 0, 0};

	if (u == NULL || !update_encodable(u))
		return NULL;
	encode_update(&o, u);
	o.cap = o.len + 1;
	o.len = 0;
	o.buf = malloc(o.cap);
	if (o.buf == NULL)
		return NULL;
	encode_update(&o, u);
	o.buf[o.len] = '\0';
	return o.buf;
}

/* --- the order state ----------------------------------------------------- */

/*
 * The state is what apply_update.lua writes: members in any order, unknown
 * members (a location's extra fields are copied as sent) ignored, and a null
 * member (Lua cjson keeps explicit nulls) read as absent.  The parts carry
 * the ts of the update that set them: status_ts, location.ts, eta.ts,
 * places.pickup.ts, places.dropoff.ts.
 */
int proto_state_from_json(const cJSON *obj, proto_state_t *out, proto_error_t *err)
{
	proto_state_t st;
	const cJSON *item;
	bool found;
	int rc;

	clear_error(err);
	if (out == NULL)
		return fail(err, PROTO_EINVAL, "", "no output given");
	if (obj == NULL || !cJSON_IsObject(obj))
		return fail(err, PROTO_EJSON, "", "must be a JSON object");
	memset(&st, 0, sizeof(st));

	if ((rc = decode_order_id(obj, st.order_id, err)) ||
	    (rc = decode_provider(obj, false, st.provider, err)) ||
	    (rc = decode_status(obj, &st.status, err)) ||
	    (rc = get_ms(obj, "status_ts", st.status != PROTO_STATUS_NONE, &st.status_ts, &found,
			 err)))
		return rc;

	if ((rc = get_object(obj, "location", &item, err)) != PROTO_OK)
		return rc;
	if (item != NULL) {
		if ((rc = decode_location(item, &st.location, &st.location_ts, err)) != PROTO_OK)
			return rc;
		st.has_location = true;
	}

	if ((rc = get_object(obj, "courier", &item, err)) != PROTO_OK)
		return rc;
	if (item != NULL) {
		if ((rc = decode_courier(item, &st.courier, err)) != PROTO_OK)
			return rc;
		st.has_courier = true;
	}

	if ((rc = get_object(obj, "eta", &item, err)) != PROTO_OK)
		return rc;
	if (item != NULL) {
		if ((rc = decode_eta(item, &st.eta, &st.eta_ts, err)) != PROTO_OK)
			return rc;
		st.has_eta = true;
	}

	if ((rc = get_object(obj, "places", &item, err)) != PROTO_OK)
		return rc;
	if (item != NULL) {
		if ((rc = decode_places(item, &st.places, &st.pickup_ts, &st.dropoff_ts, err)) !=
		    PROTO_OK)
			return rc;
		st.has_places = true;
	}

	if ((rc = get_ms(obj, "updated_at", true, &st.updated_at, &found, err)) != PROTO_OK)
		return rc;

	*out = st;
	return PROTO_OK;
}

int proto_state_parse(const char *json, size_t len, proto_state_t *out, proto_error_t *err)
{
	cJSON *root;
	int rc;

	clear_error(err);
	rc = parse_json(json, len, &root, err);
	if (rc != PROTO_OK)
		return rc;
	rc = proto_state_from_json(root, out, err);
	cJSON_Delete(root);
	return rc;
}
