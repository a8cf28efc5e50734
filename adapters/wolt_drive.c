/*
 * wolt_drive.c - the Wolt Drive adapter.
 *
 * Wolt Drive posts each event as a JSON Web Token: the body is
 * {"token": "<JWT>"}, signed HS256 with the client_secret the merchant gave
 * when registering the webhook (used as raw bytes: Wolt's docs say the
 * signature "is not base64 encoded").  The claims are the event:
 *
 *   {"type": "order.picked_up", "dispatched_at": "2024-05-01T12:00:00Z",
 *    "details": {"id": .., "wolt_order_reference_id": ..,
 *                "merchant_order_reference_id": .., "pickup": {"eta": ..},
 *                "dropoff": {"eta": ..}, "courier": {"id": .., "vehicle_type": ..},
 *                "courier_location": {"lat": .., "lon": ..}}}
 *
 * verify decodes the token with libjwt and the secret, and accepts only
 * alg HS256; parse decodes it again (both are pure functions of the
 * request) and maps the claims to at most one canonical update.  The
 * README next to this file has the table of event types.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "adapters_private.h"

#define WOLT_PROVIDER "wolt_drive"

/* The longest courier id a JSON number becomes: 2^53 has 16 digits, plus a sign. */
#define WOLT_NUMBER_ID_MAX 24

/* What one event type means for the order; see the table in README.md. */
typedef struct wolt_event {
	const char *type;
	proto_status_t status; /* PROTO_STATUS_NONE: the event carries no status */
} wolt_event_t;

static const wolt_event_t wolt_events[] = {
    {"order.received", PROTO_STATUS_CREATED},
    {"order.rejected", PROTO_STATUS_CANCELLED},
    {"order.cancelled", PROTO_STATUS_CANCELLED},
    {"order.pickup_eta_updated", PROTO_STATUS_NONE},
    {"order.pickup_started", PROTO_STATUS_EN_ROUTE_TO_PICKUP},
    {"order.pickup_arrival", PROTO_STATUS_AT_PICKUP},
    {"order.picked_up", PROTO_STATUS_PICKED_UP},
    {"order.dropoff_started", PROTO_STATUS_EN_ROUTE_TO_DROPOFF},
    {"order.dropoff_eta_updated", PROTO_STATUS_NONE},
    {"order.dropoff_arrival", PROTO_STATUS_AT_DROPOFF},
    {"order.customer_no_show", PROTO_STATUS_FAILED},
    {"order.handshake_delivery", PROTO_STATUS_NONE},
    {"order.dropoff_completed", PROTO_STATUS_DELIVERED},
    {"order.delivered", PROTO_STATUS_DELIVERED},
    {"order.location_updated", PROTO_STATUS_NONE},
};

static const wolt_event_t *wolt_event_find(const char *type)
{
	for (size_t i = 0; i < sizeof(wolt_events) / sizeof(wolt_events[0]); i++)
		if (strcmp(wolt_events[i].type, type) == 0)
			return &wolt_events[i];
	return NULL;
}

/* --- the token ------------------------------------------------------------------ */

static bool wolt_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool wolt_is_b64url(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* True when s[0..len) has the shape of a compact JWS: three base64url segments. */
static bool wolt_is_compact_jwt(const char *s, size_t len)
{
	size_t dots = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.')
			dots++;
		else if (!wolt_is_b64url(s[i]))
			return false;
	}
	return dots == 2;
}

/*
 * Finds the JWT in the body and returns a malloc'd NUL-terminated copy in
 * *out: the "token" member of a JSON object (the documented envelope), or
 * the whole body when it is a bare compact JWT, which some Wolt
 * integrations describe.  ADAPTER_EAUTH when there is no token: nothing
 * in such a body can be authenticated.
 */
static int wolt_token(const adapter_request_t *req, char **out, proto_error_t *err)
{
	const char *body = req->body;
	size_t len = req->body_len, start = 0;
	const char *token = NULL;
	cJSON *root = NULL;
	int rc;

	*out = NULL;
	if (body == NULL || len == 0)
		return adapter_fail(err, ADAPTER_EAUTH, "token", "is missing: the body is empty");
	while (start < len && wolt_is_space(body[start]))
		start++;
	while (len > start && wolt_is_space(body[len - 1]))
		len--;
	if (start < len && body[start] != '{') {
		if (!wolt_is_compact_jwt(body + start, len - start))
			return adapter_fail(err, ADAPTER_EAUTH, "token",
					    "is missing: the body is neither {\"token\": JWT} nor "
					    "a JWT");
		*out = strndup(body + start, len - start);
		return *out != NULL ? ADAPTER_OK
				    : adapter_fail(err, ADAPTER_ENOMEM, "", ADAPTER_MSG_NOMEM);
	}
	root = adapter_parse_json(req->body, req->body_len, err);
	if (root == NULL) {
		char why[sizeof(err->message)];

		if (err != NULL && strcmp(err->message, ADAPTER_MSG_NOMEM) == 0)
			return ADAPTER_ENOMEM;
		/* Keep the JSON error's detail (copied: err is rewritten), as the 401 it is. */
		snprintf(why, sizeof(why), "%s",
			 err != NULL ? err->message : "the body is not JSON");
		return adapter_fail(err, ADAPTER_EAUTH, "token", "is missing: %s", why);
	}
	rc = adapter_get_string(root, "token", true, &token, err);
	if (rc != 0) {
		rc = adapter_fail(err, ADAPTER_EAUTH, "token", "must be a string holding the JWT");
		goto out;
	}
	*out = strdup(token);
	rc = *out != NULL ? ADAPTER_OK : adapter_fail(err, ADAPTER_ENOMEM, "", ADAPTER_MSG_NOMEM);
out:
	cJSON_Delete(root);
	return rc;
}

/* The longest header segment decoded (base64url characters). */
#define WOLT_HEADER_B64_MAX 4096

/* The JSON of a token's header segment, or NULL when it is not base64url of a JSON object. */
static cJSON *wolt_header_json(const char *token)
{
	const char *dot = strchr(token, '.');
	size_t len = dot != NULL ? (size_t)(dot - token) : 0, n;
	char raw[PROTO_BASE64_DECODED_MAX(WOLT_HEADER_B64_MAX) + 1];
	cJSON *header;

	if (len == 0 || len > WOLT_HEADER_B64_MAX ||
	    proto_base64_decode(token, len, PROTO_BASE64_URL, (unsigned char *)raw, sizeof(raw) - 1,
				&n) != PROTO_OK)
		return NULL;
	raw[n] = '\0';
	header = cJSON_Parse(raw);
	if (header != NULL && !cJSON_IsObject(header)) {
		cJSON_Delete(header);
		header = NULL;
	}
	return header;
}

/*
 * True when the token's header names alg HS256 and its third segment is the
 * base64url HS256 MAC of its first two under key: the signer knew the
 * secret, whatever libjwt thought of the claims.  Used only to tell a
 * malformed but genuine token (400) from a forged one (401) after libjwt
 * refused it.
 */
static bool wolt_hs256_mac_holds(const char *token, const unsigned char *key, size_t key_len)
{
	static const char b64url[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	char want[64];
	size_t want_len = 0, bits = 0;
	uint32_t acc = 0;
	const char *sig = strrchr(token, '.');
	cJSON *header;
	bool hs256;

	if (sig == NULL || sig == token || key_len == 0 || key_len > INT_MAX)
		return false;
	header = wolt_header_json(token);
	hs256 = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(header, "alg")) &&
		strcmp(cJSON_GetObjectItemCaseSensitive(header, "alg")->valuestring, "HS256") == 0;
	cJSON_Delete(header);
	if (!hs256)
		return false;
	if (HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)token,
		 (size_t)(sig - token), mac, &mac_len) == NULL ||
	    mac_len != 32)
		return false;
	for (unsigned int i = 0; i < mac_len; i++) {
		acc = acc << 8 | mac[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			want[want_len++] = b64url[(acc >> bits) & 0x3f];
		}
	}
	if (bits > 0)
		want[want_len++] = b64url[(acc << (6 - bits)) & 0x3f];
	sig++;
	return adapter_equal(sig, strlen(sig), want, want_len);
}

/*
 * Decodes and verifies the request's token with the configured secret and
 * returns the libjwt object in *out (the caller jwt_frees it).  Refuses
 * every alg but HS256: libjwt verifies HS384/HS512 with the same key too,
 * and a token that names "none" must never pass.
 */
static int wolt_decode(const adapter_request_t *req, jwt_t **out, proto_error_t *err)
{
	char *token = NULL;
	jwt_t *jwt = NULL;
	int rc, jrc;

	*out = NULL;
	if (req->secret == NULL || req->secret_len == 0)
		return adapter_fail(err, ADAPTER_EAUTH, "",
				    "no wolt_drive client secret is configured");
	if (req->secret_len > INT_MAX)
		return adapter_fail(err, ADAPTER_EAUTH, "", "the configured secret is too long");
	rc = wolt_token(req, &token, err);
	if (rc != ADAPTER_OK)
		return rc;
	jrc = jwt_decode(&jwt, token, req->secret, (int)req->secret_len);
	if (jrc == ENOMEM) {
		rc = adapter_fail(err, ADAPTER_ENOMEM, "", ADAPTER_MSG_NOMEM);
		goto out;
	}
	if (jrc != 0 || jwt == NULL) {
		if (wolt_hs256_mac_holds(token, req->secret, req->secret_len))
			rc = adapter_fail(err, ADAPTER_EINVAL, "token",
					  "is signed with the client secret, but its claims are "
					  "not valid JSON");
		else
			rc = adapter_fail(err, ADAPTER_EAUTH, "token",
					  "does not verify with the configured client secret "
					  "(wrong secret, tampered or malformed token)");
		goto out;
	}
	if (jwt_get_alg(jwt) != JWT_ALG_HS256) {
		rc = adapter_fail(err, ADAPTER_EAUTH, "token", "must be signed with HS256, not %s",
				  jwt_alg_str(jwt_get_alg(jwt)) != NULL
				      ? jwt_alg_str(jwt_get_alg(jwt))
				      : "an unknown alg");
		goto out;
	}
	*out = jwt;
	jwt = NULL;
	rc = ADAPTER_OK;
out:
	if (jwt != NULL)
		jwt_free(jwt);
	free(token);
	return rc;
}

static int wolt_drive_verify(const adapter_request_t *req, proto_error_t *err)
{
	jwt_t *jwt = NULL;
	int rc = wolt_decode(req, &jwt, err);

	if (jwt != NULL)
		jwt_free(jwt);
	return rc;
}

/* --- the claims ----------------------------------------------------------------- */

/* Reports path as EINVAL when its member is present but not an object. */
static int wolt_want_object(const cJSON *claims, const char *path, proto_error_t *err)
{
	const cJSON *item = adapter_get(claims, path);

	if (item != NULL && !cJSON_IsObject(item))
		return adapter_fail(err, ADAPTER_EINVAL, path, "must be an object");
	return ADAPTER_OK;
}

/*
 * The order key: details.merchant_order_reference_id (the merchant's own
 * id, set when the delivery was created), else details.id (the delivery
 * id Wolt returned on creation).  Empty strings count as absent.  *field
 * names where the key came from, for errors.
 */
static int wolt_order_key(const cJSON *claims, const char **out, const char **field,
			  proto_error_t *err)
{
	static const char *const paths[] = {"details.merchant_order_reference_id", "details.id"};
	const char *s = NULL;
	int rc;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		rc = adapter_get_string(claims, paths[i], false, &s, err);
		if (rc < 0)
			return rc;
		if (rc == 0 && s[0] != '\0') {
			*out = s;
			*field = paths[i];
			return ADAPTER_OK;
		}
	}
	return adapter_fail(err, ADAPTER_EINVAL, "details.merchant_order_reference_id",
			    "is required (or details.id) to know which order this is");
}

/*
 * details.dropoff.eta: an RFC 3339 time, as Wolt's delivery objects have
 * it, or an object {min, max}, as some integrations report for webhooks;
 * then max, the latest promised arrival, is the ETA.
 */
static int wolt_dropoff_eta(const cJSON *claims, proto_update_t *u, proto_error_t *err)
{
	const cJSON *eta = adapter_get(claims, "details.dropoff.eta");
	int64_t ms;
	int rc;

	if (eta == NULL)
		return ADAPTER_OK;
	if (cJSON_IsObject(eta)) {
		rc = adapter_get_time(claims, "details.dropoff.eta.max", false, &ms, err);
		if (rc == 1)
			rc = adapter_get_time(claims, "details.dropoff.eta.min", false, &ms, err);
	} else {
		rc = adapter_get_time(claims, "details.dropoff.eta", false, &ms, err);
	}
	if (rc < 0)
		return rc;
	if (rc == 0) {
		u->eta.dropoff = ms;
		u->eta.has_dropoff = true;
		u->has_eta = true;
	}
	return ADAPTER_OK;
}

/* details.courier: id (a number or a string) and vehicle_type, both optional. */
static int wolt_courier(const cJSON *claims, proto_update_t *u, proto_error_t *err)
{
	const cJSON *id = adapter_get(claims, "details.courier.id");
	const char *vehicle = NULL;
	char number[WOLT_NUMBER_ID_MAX + 1];
	int rc;

	if (id != NULL) {
		if (cJSON_IsString(id) && id->valuestring != NULL) {
			adapter_copy_text(u->courier.id, sizeof(u->courier.id), id->valuestring);
		} else if (cJSON_IsNumber(id) && isfinite(id->valuedouble) &&
			   id->valuedouble == floor(id->valuedouble) &&
			   fabs(id->valuedouble) <= (double)PROTO_INT_MAX) {
			snprintf(number, sizeof(number), "%lld", (long long)id->valuedouble);
			adapter_copy_text(u->courier.id, sizeof(u->courier.id), number);
		} else {
			return adapter_fail(err, ADAPTER_EINVAL, "details.courier.id",
					    "must be a string or an integer");
		}
	}
	rc = adapter_get_string(claims, "details.courier.vehicle_type", false, &vehicle, err);
	if (rc < 0)
		return rc;
	if (rc == 0)
		adapter_copy_text(u->courier.vehicle, sizeof(u->courier.vehicle), vehicle);
	u->has_courier = u->courier.id[0] != '\0' || u->courier.vehicle[0] != '\0';
	return ADAPTER_OK;
}

/*
 * Maps verified claims to at most one update in *u; *n is 0 for an event
 * with nothing to track (an unknown type, or a known one without status,
 * position or ETA).
 */
static int wolt_map(const adapter_request_t *req, const cJSON *claims, proto_update_t *u, int *n,
		    proto_error_t *err)
{
	static const char *const objects[] = {
	    "details",	       "details.pickup",	   "details.dropoff",
	    "details.courier", "details.courier_location",
	};
	const wolt_event_t *event;
	const char *type = NULL, *order_key = NULL, *order_field = NULL;
	char event_id[PROTO_EVENT_ID_MAX + 1];
	proto_update_t scratch;
	double lat = 0, lng = 0;
	bool has_location = false;
	int64_t ts = req->now_ms, pickup_eta = 0;
	int rc;

	rc = adapter_get_string(claims, "type", true, &type, err);
	if (rc != 0)
		return rc;
	event = wolt_event_find(type);
	if (event == NULL)
		return ADAPTER_OK; /* an event type trackgate does not know: nothing to track */
	for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); i++) {
		rc = wolt_want_object(claims, objects[i], err);
		if (rc != ADAPTER_OK)
			return rc;
	}

	/* Everything optional first, into a scratch update, to know whether to track. */
	memset(&scratch, 0, sizeof(scratch));
	rc = adapter_get_latlng(claims, "details.courier_location.lat",
				"details.courier_location.lon", false, &lat, &lng, &has_location,
				err);
	if (rc != ADAPTER_OK)
		return rc;
	rc = adapter_get_time(claims, "details.pickup.eta", false, &pickup_eta, err);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		scratch.eta.pickup = pickup_eta;
		scratch.eta.has_pickup = true;
		scratch.has_eta = true;
	}
	rc = wolt_dropoff_eta(claims, &scratch, err);
	if (rc != ADAPTER_OK)
		return rc;
	rc = wolt_courier(claims, &scratch, err);
	if (rc != ADAPTER_OK)
		return rc;
	/*
	 * The periodic position event stays location-only, so the gateway may
	 * coalesce it (adapters/README.md); ETAs and the courier come with the
	 * status events.
	 */
	if (strcmp(event->type, "order.location_updated") == 0)
		memset(&scratch, 0, sizeof(scratch));
	if (event->status == PROTO_STATUS_NONE && !has_location && !scratch.has_eta)
		return ADAPTER_OK;

	rc = adapter_get_time(claims, "dispatched_at", false, &ts, err);
	if (rc < 0)
		return rc;
	rc = wolt_order_key(claims, &order_key, &order_field, err);
	if (rc != ADAPTER_OK)
		return rc;
	adapter_body_event_id(req->body, req->body_len, event_id);
	rc = adapter_update_init(u, WOLT_PROVIDER, order_key, ts, event_id, err);
	if (rc != ADAPTER_OK) {
		/* Name the field the order id came from, not the canonical one. */
		if (err != NULL && strcmp(err->field, "order_id") == 0)
			snprintf(err->field, sizeof(err->field), "%s", order_field);
		return rc;
	}
	u->status = event->status;
	u->eta = scratch.eta;
	u->has_eta = scratch.has_eta;
	u->courier = scratch.courier;
	u->has_courier = scratch.has_courier;
	if (has_location) {
		u->location.lat = lat;
		u->location.lng = lng;
		u->has_location = true;
	}
	*n = 1;
	return ADAPTER_OK;
}

static int wolt_drive_parse(const adapter_request_t *req, proto_update_t *out, int max, int *n,
			    proto_error_t *err)
{
	jwt_t *jwt = NULL;
	char *claims_json = NULL;
	cJSON *claims = NULL;
	int rc;

	*n = 0;
	if (max < 1)
		return adapter_fail(err, ADAPTER_EINVAL, "", "no room for an update");
	rc = wolt_decode(req, &jwt, err);
	if (rc != ADAPTER_OK)
		return rc;
	/* libjwt 1.10 has no jwt_free_str: the string comes from its default allocator, malloc. */
	claims_json = jwt_get_grants_json(jwt, NULL);
	if (claims_json == NULL) {
		rc = adapter_fail(err, ADAPTER_EINVAL, "token", "has no claims");
		goto out;
	}
	claims = adapter_parse_json(claims_json, strlen(claims_json), err);
	if (claims == NULL) {
		if (err != NULL && strcmp(err->message, ADAPTER_MSG_NOMEM) == 0) {
			rc = ADAPTER_ENOMEM;
		} else {
			char why[sizeof(err->message)];
			snprintf(why, sizeof(why), "%s", err != NULL ? err->message : "");
			rc = adapter_fail(err, ADAPTER_EINVAL, "token", "claims: %s", why);
		}
		goto out;
	}
	rc = wolt_map(req, claims, out, n, err);
	if (rc != ADAPTER_OK)
		*n = 0;
out:
	cJSON_Delete(claims);
	free(claims_json);
	jwt_free(jwt);
	return rc;
}

const adapter_ops_t adapter_wolt_drive = {WOLT_PROVIDER, wolt_drive_verify, wolt_drive_parse};
