/*
 * proto.h - the canonical courier update v1, the order state and the
 * websocket frames: C types, JSON decode + validation, JSON encode.
 *
 * This module is the single source of truth for trackgate's wire format
 * (see proto/README.md).  It is pure: no I/O, no globals, no allocation
 * beyond what a function documents as returned to the caller.
 *
 * Results follow one convention: 0 on success, a negative PROTO_E* code on
 * failure, with the failing field and a readable reason in proto_error_t.
 */
#ifndef TRACKGATE_PROTO_H
#define TRACKGATE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define PROTO_VERSION 1

#define PROTO_ORDER_ID_MAX 128	 /* 1..128 chars of [A-Za-z0-9._~-] */
#define PROTO_PROVIDER_MAX 64	 /* 1..64 chars of [a-z0-9_-] */
#define PROTO_EVENT_ID_MAX 128	 /* 1..128 printable ASCII chars */
#define PROTO_COURIER_ID_MAX 128 /* 1..128 UTF-8 bytes, no control chars */
#define PROTO_COURIER_NAME_MAX 128
#define PROTO_COURIER_VEHICLE_MAX 32
#define PROTO_CURSOR_MAX 41 /* "<ms>-<seq>", two uint64 and a dash; no NUL counted */

/* Largest integer a JSON number carries exactly (2^53). */
#define PROTO_INT_MAX 9007199254740992LL

/*
 * Largest millisecond time (ts, eta): 10^14 - 1, the year 5138.  Redis's Lua
 * cjson prints numbers with at most 14 significant digits, so the script
 * stores any larger time rounded; every accepted time survives it exactly.
 */
#define PROTO_MS_MAX 99999999999999LL

enum {
	PROTO_OK = 0,
	PROTO_EJSON = -1,  /* not JSON, or not the expected JSON type */
	PROTO_EINVAL = -2, /* a field is missing, of the wrong type or out of range */
	PROTO_ENOMEM = -3,
};

typedef struct proto_error {
	char field[64];	   /* JSON path of the failing field, e.g. "location.lat" */
	char message[160]; /* why, in one readable sentence fragment */
} proto_error_t;

typedef enum proto_status {
	PROTO_STATUS_NONE = 0, /* absent */
	PROTO_STATUS_CREATED,
	PROTO_STATUS_COURIER_ASSIGNED,
	PROTO_STATUS_EN_ROUTE_TO_PICKUP,
	PROTO_STATUS_AT_PICKUP,
	PROTO_STATUS_PICKED_UP,
	PROTO_STATUS_EN_ROUTE_TO_DROPOFF,
	PROTO_STATUS_AT_DROPOFF,
	PROTO_STATUS_DELIVERED,
	PROTO_STATUS_CANCELLED,
	PROTO_STATUS_RETURNED,
	PROTO_STATUS_FAILED,
	PROTO_STATUS__COUNT
} proto_status_t;

typedef struct proto_location {
	double lat;	    /* [-90, 90] */
	double lng;	    /* [-180, 180] */
	double heading_deg; /* [0, 360) */
	double speed_mps;   /* >= 0 */
	double accuracy_m;  /* >= 0 */
	bool has_heading;
	bool has_speed;
	bool has_accuracy;
} proto_location_t;

typedef struct proto_courier {
	char id[PROTO_COURIER_ID_MAX + 1]; /* "" when absent */
	char name[PROTO_COURIER_NAME_MAX + 1];
	char vehicle[PROTO_COURIER_VEHICLE_MAX + 1];
} proto_courier_t;

typedef struct proto_eta {
	int64_t pickup;	 /* ms since epoch */
	int64_t dropoff; /* ms since epoch */
	bool has_pickup;
	bool has_dropoff;
} proto_eta_t;

/* A place on the map: the pickup or the dropoff. */
typedef struct proto_point {
	double lat; /* [-90, 90] */
	double lng; /* [-180, 180] */
} proto_point_t;

/* Where the order is picked up and dropped off; either may be absent. */
typedef struct proto_places {
	proto_point_t pickup;
	proto_point_t dropoff;
	bool has_pickup;
	bool has_dropoff;
} proto_places_t;

/* One canonical update v1.  Strings are NUL-terminated copies. */
typedef struct proto_update {
	char order_id[PROTO_ORDER_ID_MAX + 1];
	char provider[PROTO_PROVIDER_MAX + 1];
	char event_id[PROTO_EVENT_ID_MAX + 1]; /* "" when absent */
	int64_t ts;			       /* ms since epoch, > 0 */
	proto_location_t location;
	proto_status_t status; /* PROTO_STATUS_NONE when absent */
	proto_courier_t courier;
	proto_eta_t eta;
	proto_places_t places;
	bool has_location;
	bool has_courier;
	bool has_eta;
	bool has_places;
} proto_update_t;

/* The merged state of one order, as the Redis script stores it. */
typedef struct proto_state {
	char order_id[PROTO_ORDER_ID_MAX + 1];
	char provider[PROTO_PROVIDER_MAX + 1];
	proto_status_t status;
	int64_t status_ts;
	proto_location_t location;
	int64_t location_ts;
	proto_courier_t courier;
	proto_eta_t eta;
	int64_t eta_ts;
	proto_places_t places;
	int64_t pickup_ts;  /* the ts of the update that set places.pickup */
	int64_t dropoff_ts; /* ... places.dropoff */
	int64_t updated_at;
	bool has_location;
	bool has_courier;
	bool has_eta;
	bool has_places;
} proto_state_t;

/* A position in an order's log: the Redis stream entry id "<ms>-<seq>". */
typedef struct proto_cursor {
	uint64_t ms;
	uint64_t seq;
} proto_cursor_t;

/* --- identifiers ------------------------------------------------------- */

/* True when s[0..len) is a valid order id: 1..128 chars of [A-Za-z0-9._~-]. */
bool proto_order_id_valid(const char *s, size_t len);

/* Canonical status names ("picked_up", ...); NULL for NONE or out of range. */
const char *proto_status_name(proto_status_t status);
/* 0 and *out set when name is a canonical status name, else PROTO_EINVAL. */
int proto_status_from_name(const char *name, proto_status_t *out);
/* delivered, cancelled, returned and failed end an order. */
bool proto_status_is_terminal(proto_status_t status);

/* --- cursors ----------------------------------------------------------- */

/* Parses "<ms>-<seq>" (both decimal uint64, no sign, no spaces, no leading zeros: the one
 * spelling the script writes).  *out is left unchanged on error; out may be NULL. */
int proto_cursor_parse(const char *s, size_t len, proto_cursor_t *out);
/* <0, 0, >0 like strcmp. */
int proto_cursor_cmp(const proto_cursor_t *a, const proto_cursor_t *b);

/*
 * True when JSON text holds the escape \u0000, which cJSON silently cuts a
 * string at: such text would mean one thing to cJSON and another to the
 * sender (or to Redis's Lua).  Parsers of outside JSON refuse it.
 */
bool proto_json_has_nul_escape(const char *json, size_t len);

/* --- bytes from the outside: UTF-8 and base64 (text.c) --------------------- */

/*
 * The project's one UTF-8 validator: RFC 3629, so no overlong forms, no
 * surrogates (U+D800..U+DFFF) and nothing past U+10FFFF.
 *
 * proto_utf8_feed checks text that arrives in pieces (websocket fragments):
 * *state starts at 0, and carries a character cut between two pieces over
 * to the next call.  It returns false as soon as bytes[0..len) cannot
 * continue valid text (*state means nothing then: start again from 0); the
 * text is whole and valid only if *state is 0 after its last piece.
 */
bool proto_utf8_feed(uint8_t *state, const void *bytes, size_t len);
/* True when bytes[0..len) is valid UTF-8 with no character cut off at its end. */
bool proto_utf8_valid(const void *bytes, size_t len);
/*
 * The length (1..4) of the valid UTF-8 character at bytes, of which avail
 * bytes may be read; 0 when it is not one (invalid, or cut short by avail).
 * For callers that go through text a character at a time.
 */
size_t proto_utf8_seq_len(const void *bytes, size_t avail);

/* proto_base64_decode flags. */
enum {
	PROTO_BASE64_URL = 1 << 0,   /* RFC 4648 5: '-' and '_' instead of '+' and '/' */
	PROTO_BASE64_NOPAD = 1 << 1, /* refuse '=' padding (a JWS segment, RFC 7515 2) */
};

/* The most bytes proto_base64_decode writes for len characters. */
#define PROTO_BASE64_DECODED_MAX(len) ((len) / 4 * 3 + 2)

/*
 * The project's one base64 decoder: in[0..len), standard base64 (RFC 4648
 * 4) or with PROTO_BASE64_URL the URL alphabet (5), into out[0..cap).  The
 * '=' padding is optional, but when present it must complete the last
 * 4-character group (and PROTO_BASE64_NOPAD refuses it).  Nothing else is
 * allowed: no whitespace, no line breaks, no character of the other
 * alphabet, no length of 1 mod 4 (no whole byte); the unused low bits of the
 * last character are not checked.  0 and *out_len set (in may be empty:
 * *out_len 0), else PROTO_EINVAL, also when the result would not fit in cap
 * (out may then hold part of it).
 */
int proto_base64_decode(const char *in, size_t len, unsigned flags, unsigned char *out, size_t cap,
			size_t *out_len);

/* --- the canonical update ---------------------------------------------- */

/*
 * Decodes and validates one update from a cJSON object.  Every rule of
 * proto/README.md is checked; the first failure is reported in *err with the
 * field's JSON path.  Unknown fields are ignored; wrong types are errors.
 */
int proto_update_from_json(const cJSON *obj, proto_update_t *out, proto_error_t *err);

/* The same from raw bytes (need not be NUL-terminated). PROTO_EJSON if not JSON or if bytes
 * other than whitespace follow the object; PROTO_ENOMEM if the input cannot be copied. */
int proto_update_parse(const char *json, size_t len, proto_update_t *out, proto_error_t *err);

/*
 * Encodes a valid update as compact canonical JSON, members in a fixed
 * order, absent optional members omitted.  Returns a malloc'd NUL-terminated
 * string the caller frees, or NULL on allocation failure, a non-finite number
 * or an out-of-range status.  Decoding the result gives back an equal update.
 */
char *proto_update_to_json(const proto_update_t *u);

/* --- the order state ----------------------------------------------------- */

/* Decodes the state JSON the Redis script stores (proto/README.md). */
int proto_state_from_json(const cJSON *obj, proto_state_t *out, proto_error_t *err);
int proto_state_parse(const char *json, size_t len, proto_state_t *out, proto_error_t *err);

/* --- websocket frames ---------------------------------------------------- */

/*
 * Frame writers work like snprintf: they write at most cap bytes (no NUL
 * terminator is counted or required) and return the full length the frame
 * needs, or a negative PROTO_E* code.  Call once with cap 0 to size a buffer
 * (dst may then be NULL).  PROTO_EINVAL for an invalid order id or cursor, a
 * NULL or empty JSON part, or a frame longer than INT_MAX.
 *
 * The update frame is normally built by the Redis script; the C writer exists
 * for tools and tests and produces the same bytes for the same inputs.
 */

/* {"type":"snapshot","order_id":ID,"state":STATE|null,"cursor":C|null[,"reset":true]}
 * state_json/state_len: the stored state JSON verbatim (NULL for null);
 * cursor: NUL-terminated cursor or NULL. */
int proto_frame_snapshot(char *dst, size_t cap, const char *order_id, const char *state_json,
			 size_t state_len, const char *cursor, bool reset);

/* {"type":"update","order_id":ID,"update":UPDATE,"cursor":C} with UPDATE verbatim. */
int proto_frame_update(char *dst, size_t cap, const char *order_id, const char *update_json,
		       size_t update_len, const char *cursor);

/*
 * {"type":"resumed","order_id":ID,"cursor":C,"replayed":N}: a resume (?since=)
 * is complete and gapless.  It follows the N replayed update frames; C is the
 * newest cursor the client now has (the last replayed frame's, or its since
 * cursor when N = 0).  cursor: NUL-terminated, required.
 */
int proto_frame_resumed(char *dst, size_t cap, const char *order_id, const char *cursor,
			size_t replayed);

/*
 * {"type":"refreshed","order_id":ID,"exp":EXP}: the answer to a client's
 * {"type":"refresh","token":T} on an open websocket (proto/README.md): the
 * new token is good for this order until EXP (unix seconds).
 */
int proto_frame_refreshed(char *dst, size_t cap, const char *order_id, int64_t exp);

/* {"type":"error","error":CODE,"message":MSG}, both strings JSON-escaped. */
int proto_frame_error(char *dst, size_t cap, const char *code, const char *message);

/*
 * {"order_id":ID,"state":STATE|null,"cursor":C|null}: the body of GET
 * /v1/orders/{ID}, the same bytes as the snapshot frame without its type
 * (and never a reset).  Arguments and result as proto_frame_snapshot.
 */
int proto_order_doc(char *dst, size_t cap, const char *order_id, const char *state_json,
		    size_t state_len, const char *cursor);

/*
 * Finds the cursor of an update frame without parsing the JSON: the frame
 * ends with ,"cursor":"<ms>-<seq>"} as the script writes it.  Used on the
 * fan-out hot path.  PROTO_EINVAL if the frame does not end that way.
 */
int proto_frame_update_cursor(const char *frame, size_t len, proto_cursor_t *out);

/*
 * The two facts the fan-out takes from an update frame of the script
 * (proto_frame_update_cursor's frames), by a byte scan instead of a parse,
 * once per frame however many watchers it goes to.
 *
 * proto_frame_update_location_only: the update has a location and nothing a
 * client must not miss (status, eta, courier, places), so a newer frame may
 * replace it in a queue that is behind.  Any doubt (a member name appearing
 * inside a string value) answers false, the safe side.
 *
 * proto_frame_update_ts: the update's ts, for the update-age metric: the
 * first "ts": of the frame is the update's own (order ids and provider names
 * hold no quotes, and a quote inside a string value is escaped).  0 when
 * there is none; the digits are read up to PROTO_MS_MAX.
 */
bool proto_frame_update_location_only(const char *frame, size_t len);
int64_t proto_frame_update_ts(const char *frame, size_t len);

#endif /* TRACKGATE_PROTO_H */
