/*
 * rappi.c - Rappi partner webhooks (dev-portal.rappi.com, "Webhook Events").
 *
 * Rappi registers one URL per event type; all of them may point at
 * POST /v1/webhooks/rappi, because the bodies tell themselves apart:
 *
 *   ORDER_OTHER_EVENT, ORDER_EVENT_CANCEL  {"event": E, "order_id": "109",
 *                                           "store_id": ..., "event_time": ...,
 *                                           "additional_information": {...}}
 *   ORDER_RT_TRACKING                      {"lat": ..., "lng": ..., "order_id": 1234,
 *                                           "eta_in_millis": ..., ...}: no "event"
 *   PING                                   {"store_id": 999}
 *   NEW_ORDER, MENU_*, STORE_CONNECTIVITY, STORE_PROVISIONING_STATUS: other
 *   shapes, nothing to track.
 *
 * Every request carries "Rappi-Signature: t=T,sign=HEX": HEX is the
 * HMAC-SHA256 of T + "." + the raw body under the webhook's secret, and T
 * is the time of that request, so the signature gets a replay window
 * (req->replay_window_ms).  Rappi documents no event id: event_id is the
 * body's hash.  The event times Rappi sends ("2023-05-04 12:01:22",
 * "10/10/2023 12:00:20") name no zone, so an update's ts is the signed T
 * (Rappi's clock), or the receive time when T cannot be read.  What Rappi's
 * docs do and do not say is in adapters/README.md.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters_private.h"

#define RAPPI_PROVIDER "rappi"
#define RAPPI_HEADER "rappi-signature"
#define RAPPI_FIELD "Rappi-Signature"

/* sign= entries looked at in one header; t= digits accepted (epoch ms fit in 14). */
#define RAPPI_SIGNS_MAX 4
#define RAPPI_T_DIGITS_MAX 14
/* Longest sign= value compared: a SHA-256 in hex with a "sha256=" prefix and spaces. */
#define RAPPI_SIGN_MAX 80

/* Longest eta_to_store accepted, in seconds (a day). */
#define RAPPI_ETA_MAX_S 86400.0

/* PING must be answered with status OK (anything else and Rappi turns the store off). */
const char adapter_rappi_ignored_reply[] =
    "{\"status\":\"OK\",\"description\":\"trackgate received the webhook\","
    "\"ignored\":true,\"results\":[]}";

/* The order events of Rappi's "Order events" and "Cancellation events" tables. */
static const struct rappi_event {
	const char *name;
	proto_status_t status;
	bool courier; /* carries additional_information.courier_data and eta_to_store */
} rappi_events[] = {
    /* The store took the order; with courier_data, a courier was assigned. */
    {"taken_visible_order", PROTO_STATUS_CREATED, true},
    {"replace_storekeeper", PROTO_STATUS_COURIER_ASSIGNED, true},
    /* The store has the order ready: nothing about the courier. */
    {"ready_for_pick_up", PROTO_STATUS_NONE, false},
    {"domiciliary_in_store", PROTO_STATUS_AT_PICKUP, false},
    {"hand_to_domiciliary", PROTO_STATUS_PICKED_UP, false},
    {"arrive", PROTO_STATUS_AT_DROPOFF, false},
    {"close_order", PROTO_STATUS_DELIVERED, false},
    {"cancel_by_user", PROTO_STATUS_CANCELLED, false},
    {"canceled_with_charge", PROTO_STATUS_CANCELLED, false},
    {"cancel_without_charges", PROTO_STATUS_CANCELLED, false},
    {"cancel_by_support", PROTO_STATUS_CANCELLED, false},
    {"cancel_by_support_with_charge", PROTO_STATUS_CANCELLED, false},
    {"cancel_by_application_user", PROTO_STATUS_CANCELLED, false},
    {"canceled_from_cms", PROTO_STATUS_CANCELLED, false},
    {"canceled_by_fraud_automation", PROTO_STATUS_CANCELLED, false},
    {"canceled_store_closed", PROTO_STATUS_CANCELLED, false},
    {"cancel_by_sk_with_charge", PROTO_STATUS_CANCELLED, false},
};

static const struct rappi_event *rappi_event(const char *name)
{
	for (size_t i = 0; i < sizeof(rappi_events) / sizeof(rappi_events[0]); i++) {
		if (strcmp(rappi_events[i].name, name) == 0)
			return &rappi_events[i];
	}
	return NULL;
}

/* --- the signature ------------------------------------------------------------ */

typedef struct rappi_signature {
	const char *t; /* the digits of t=, inside the header value */
	size_t t_len;
	int64_t t_ms; /* t as ms since the epoch */
	const char *sign[RAPPI_SIGNS_MAX];
	size_t sign_len[RAPPI_SIGNS_MAX];
	int n_sign;
} rappi_signature_t;

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Splits "t=T,sign=HEX" (elements in any order, blanks around them, other
 * keys ignored, sign= up to RAPPI_SIGNS_MAX times) into sig.  t must be 1 to
 * 14 digits: epoch seconds, or milliseconds from 10^11 on (the rule of
 * adapter_parse_time).  NULL when it holds, else what is wrong.
 */
static const char *rappi_split(const char *value, rappi_signature_t *sig)
{
	const char *p = value;

	memset(sig, 0, sizeof(*sig));
	while (*p != '\0') {
		const char *start, *end, *eq;
		size_t key_len, val_len;

		while (is_blank(*p))
			p++;
		start = p;
		while (*p != '\0' && *p != ',')
			p++;
		end = p;
		if (*p == ',')
			p++;
		while (end > start && is_blank(end[-1]))
			end--;
		if (end == start)
			continue; /* an empty element: ",," or a trailing comma */
		eq = memchr(start, '=', (size_t)(end - start));
		if (eq == NULL)
			return "must be t=UNIX,sign=HEX: an element has no '='";
		key_len = (size_t)(eq - start);
		while (key_len > 0 && is_blank(start[key_len - 1]))
			key_len--;
		eq++;
		while (eq < end && is_blank(*eq))
			eq++;
		val_len = (size_t)(end - eq);
		if (key_len == 1 && start[0] == 't') {
			if (sig->t != NULL)
				return "must carry t= once";
			sig->t = eq;
			sig->t_len = val_len;
		} else if (key_len == 4 && memcmp(start, "sign", 4) == 0) {
			if (sig->n_sign == RAPPI_SIGNS_MAX)
				return "carries too many sign= values";
			sig->sign[sig->n_sign] = eq;
			sig->sign_len[sig->n_sign] = val_len;
			sig->n_sign++;
		}
	}
	if (sig->t == NULL)
		return "must be t=UNIX,sign=HEX: t= is missing";
	if (sig->n_sign == 0)
		return "must be t=UNIX,sign=HEX: sign= is missing";
	if (sig->t_len == 0 || sig->t_len > RAPPI_T_DIGITS_MAX)
		return "t= must be 1 to 14 digits of epoch seconds or milliseconds";
	for (size_t i = 0; i < sig->t_len; i++) {
		if (sig->t[i] < '0' || sig->t[i] > '9')
			return "t= must be 1 to 14 digits of epoch seconds or milliseconds";
		sig->t_ms = sig->t_ms * 10 + (sig->t[i] - '0');
	}
	if (sig->t_ms < 100000000000LL)
		sig->t_ms *= 1000;
	return NULL;
}

/* The signature header's value, split; NULL message when it holds. */
static const char *rappi_header(const adapter_request_t *req, rappi_signature_t *sig, bool *present)
{
	const char *value = req->header != NULL ? req->header(req->header_ctx, RAPPI_HEADER) : NULL;

	*present = value != NULL;
	if (value == NULL)
		return "is missing";
	return rappi_split(value, sig);
}

/*
 * The header must be "t=T,sign=HEX" with HEX the HMAC-SHA256 of T + "." +
 * the raw body under the configured secret (any one sign= may match), and T
 * within the replay window of the receive time.
 */
static int rappi_verify(const adapter_request_t *req, proto_error_t *err)
{
	rappi_signature_t sig;
	const char *problem;
	char *signed_payload;
	size_t len;
	bool present, ok = false;

	if (req->secret == NULL || req->secret_len == 0)
		return adapter_fail(err, ADAPTER_EAUTH, RAPPI_FIELD,
				    "no secret is configured for rappi");
	problem = rappi_header(req, &sig, &present);
	if (problem != NULL)
		return adapter_fail(err, ADAPTER_EAUTH, RAPPI_FIELD, "%s", problem);
	if (req->body == NULL && req->body_len != 0)
		return adapter_fail(err, ADAPTER_EAUTH, RAPPI_FIELD, "there is no body");
	if (req->body_len > SIZE_MAX - sig.t_len - 2 ||
	    (signed_payload = malloc(sig.t_len + 1 + req->body_len + 1)) == NULL)
		return adapter_fail(err, ADAPTER_ENOMEM, "", ADAPTER_MSG_NOMEM);
	/* signed_payload = T "." body, exactly as received. */
	memcpy(signed_payload, sig.t, sig.t_len);
	signed_payload[sig.t_len] = '.';
	if (req->body_len != 0)
		memcpy(signed_payload + sig.t_len + 1, req->body, req->body_len);
	len = sig.t_len + 1 + req->body_len;
	for (int i = 0; i < sig.n_sign; i++) {
		char hex[RAPPI_SIGN_MAX + 1];

		if (sig.sign_len[i] > RAPPI_SIGN_MAX)
			continue;
		memcpy(hex, sig.sign[i], sig.sign_len[i]);
		hex[sig.sign_len[i]] = '\0';
		/* Every value is checked, so the time taken does not say which one matched. */
		if (adapter_hmac_hex_ok(ADAPTER_HMAC_SHA256, req->secret, req->secret_len,
					signed_payload, len, hex))
			ok = true;
	}
	free(signed_payload);
	if (!ok)
		return adapter_fail(err, ADAPTER_EAUTH, RAPPI_FIELD,
				    "sign= is not the HMAC-SHA256 of t + \".\" + the body under "
				    "the configured secret");
	return adapter_check_replay_window(req, sig.t_ms, RAPPI_FIELD, err);
}

/* --- the body ---------------------------------------------------------------------- */

/*
 * An id that Rappi sends as a string ("344949817") or an integer (729365):
 * 0 with the text in buf, 1 when absent or null (and not required),
 * ADAPTER_EINVAL naming path otherwise.
 */
static int get_id(const cJSON *root, const char *path, bool required, char *buf, size_t cap,
		  proto_error_t *err)
{
	const cJSON *item = adapter_get(root, path);
	const char *unused;
	int rc;

	if (item == NULL) {
		rc = adapter_get_string(root, path, required, &unused, err);
		return rc < 0 ? rc : 1;
	}
	if (cJSON_IsString(item) && item->valuestring != NULL) {
		if (strlen(item->valuestring) >= cap)
			return adapter_fail(err, ADAPTER_EINVAL, path, "is longer than %zu bytes",
					    cap - 1);
		memcpy(buf, item->valuestring, strlen(item->valuestring) + 1);
		return 0;
	}
	if (cJSON_IsNumber(item) && isfinite(item->valuedouble) && item->valuedouble >= 0 &&
	    item->valuedouble <= 9007199254740991.0 &&
	    floor(item->valuedouble) == item->valuedouble) {
		snprintf(buf, cap, "%lld", (long long)item->valuedouble);
		return 0;
	}
	return adapter_fail(err, ADAPTER_EINVAL, path,
			    "must be a string or a whole number from 0 to 2^53 - 1");
}

/* The signed T as ms, or the receive time when the header cannot be read. */
static int64_t rappi_ts(const adapter_request_t *req)
{
	rappi_signature_t sig;
	bool present;

	if (rappi_header(req, &sig, &present) == NULL && sig.t_ms >= 1 && sig.t_ms <= PROTO_MS_MAX)
		return sig.t_ms;
	return req->now_ms;
}

/*
 * The courier of taken_visible_order / replace_storekeeper:
 * additional_information.courier_data (id, full_name or first_name +
 * last_name, else additional_information.storekeeper_name) and
 * eta_to_store, read as seconds from ts.  *assigned is true when
 * courier_data is there.
 */
static int rappi_courier(const cJSON *root, proto_update_t *u, bool *assigned, proto_error_t *err)
{
	const cJSON *info = NULL, *courier = NULL;
	const char *full = NULL, *first = NULL, *last = NULL, *storekeeper = NULL;
	char id[PROTO_COURIER_ID_MAX + 1], name[2 * PROTO_COURIER_NAME_MAX + 2];
	double eta_s = 0;
	int rc;

	*assigned = false;
	if ((rc = adapter_get_object(root, "additional_information", false, &info, err)) != 0)
		return rc < 0 ? rc : ADAPTER_OK;
	if ((rc = adapter_get_object(root, "additional_information.courier_data", false, &courier,
				     err)) < 0)
		return rc;
	if ((rc = adapter_get_string(root, "additional_information.storekeeper_name", false,
				     &storekeeper, err)) < 0)
		return rc;
	rc = adapter_get_number(root, "additional_information.eta_to_store", false, &eta_s, err);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		if (!(eta_s >= 0 && eta_s <= RAPPI_ETA_MAX_S))
			return adapter_fail(err, ADAPTER_EINVAL,
					    "additional_information.eta_to_store",
					    "must be seconds from 0 to %.0f", RAPPI_ETA_MAX_S);
		u->eta.pickup = u->ts + (int64_t)floor(eta_s * 1000.0 + 0.5);
		u->eta.has_pickup = true;
		u->has_eta = true;
	}
	if (courier == NULL)
		return ADAPTER_OK;
	*assigned = true;
	rc = get_id(root, "additional_information.courier_data.id", false, id, sizeof(id), err);
	if (rc < 0)
		return rc;
	if (rc == 0)
		adapter_copy_text(u->courier.id, sizeof(u->courier.id), id);
	if ((rc = adapter_get_string(root, "additional_information.courier_data.full_name", false,
				     &full, err)) < 0 ||
	    (rc = adapter_get_string(root, "additional_information.courier_data.first_name", false,
				     &first, err)) < 0 ||
	    (rc = adapter_get_string(root, "additional_information.courier_data.last_name", false,
				     &last, err)) < 0)
		return rc;
	if (full != NULL && full[0] != '\0')
		snprintf(name, sizeof(name), "%s", full);
	else if ((first != NULL && first[0] != '\0') || (last != NULL && last[0] != '\0'))
		snprintf(name, sizeof(name), "%s%s%s", first != NULL ? first : "",
			 first != NULL && first[0] != '\0' && last != NULL && last[0] != '\0' ? " "
											      : "",
			 last != NULL ? last : "");
	else
		snprintf(name, sizeof(name), "%s", storekeeper != NULL ? storekeeper : "");
	adapter_copy_text(u->courier.name, sizeof(u->courier.name), name);
	u->has_courier = u->courier.id[0] != '\0' || u->courier.name[0] != '\0';
	return ADAPTER_OK;
}

static int rappi_parse(const adapter_request_t *req, proto_update_t *out, int max, int *n,
		       proto_error_t *err)
{
	const struct rappi_event *ev = NULL;
	const char *event = NULL, *event_time = NULL;
	char order_id[PROTO_ORDER_ID_MAX + 1], event_id[PROTO_EVENT_ID_MAX + 1];
	proto_update_t u;
	bool tracking = false, found = false, assigned = false;
	cJSON *root;
	int rc;

	*n = 0;
	root = adapter_parse_json(req->body, req->body_len, err);
	if (root == NULL)
		return strcmp(err->message, ADAPTER_MSG_NOMEM) == 0 ? ADAPTER_ENOMEM
								    : ADAPTER_EINVAL;
	if ((rc = adapter_get_string(root, "event", false, &event, err)) < 0)
		goto done;
	if (rc == 0) {
		ev = rappi_event(event);
		if (ev == NULL || (ev->status == PROTO_STATUS_NONE && !ev->courier)) {
			rc = 1;
			goto done; /* an event with nothing to track, or one added later */
		}
	} else if (adapter_get(root, "lat") != NULL || adapter_get(root, "lng") != NULL) {
		tracking = true; /* ORDER_RT_TRACKING */
	} else {
		goto done; /* PING, NEW_ORDER, MENU_*, STORE_CONNECTIVITY, ... */
	}
	if ((rc = get_id(root, "order_id", true, order_id, sizeof(order_id), err)) < 0)
		goto done;
	if (!proto_order_id_valid(order_id, strlen(order_id))) {
		rc = adapter_fail(err, ADAPTER_EINVAL, "order_id",
				  "is not an order id (1-128 of A-Z a-z 0-9 . _ ~ -)");
		goto done;
	}
	adapter_body_event_id(req->body, req->body_len, event_id);
	if ((rc = adapter_update_init(&u, RAPPI_PROVIDER, order_id, rappi_ts(req), event_id, err)) <
	    0)
		goto done;
	if (tracking) {
		/* A periodic position: the position alone, so that it coalesces. */
		rc = adapter_get_latlng(root, "lat", "lng", true, &u.location.lat, &u.location.lng,
					&found, err);
		if (rc < 0)
			goto done;
		u.has_location = found;
	} else {
		/* Read for its type only: it names no zone, so it cannot be the update's ts. */
		if ((rc = adapter_get_string(root, "event_time", false, &event_time, err)) < 0)
			goto done;
		u.status = ev->status;
		if (ev->courier) {
			if ((rc = rappi_courier(root, &u, &assigned, err)) < 0)
				goto done;
			if (assigned && u.status == PROTO_STATUS_CREATED)
				u.status = PROTO_STATUS_COURIER_ASSIGNED;
		}
	}
	rc = adapter_emit_one(&u, out, max, n, err);
done:
	cJSON_Delete(root);
	return rc < 0 ? rc : ADAPTER_OK;
}

const adapter_ops_t adapter_rappi = {RAPPI_PROVIDER, rappi_verify, rappi_parse};
