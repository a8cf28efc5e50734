/*
 * fuzz_poll_parse.c - the poll-mode parsers of outside bytes
 * (gateway/poll/poll_parse.c, and the Uber Direct token response of
 * gateway/poll/poll_auth.c).
 *
 * The first input byte chooses what reads the rest: bits 0-1 pick the
 * Uber Direct, DoorDash Drive or Onfleet answer parser, or (3) the token
 * endpoint's answer into a token cache; bit 2 gives the parsers an order id
 * that is not one.  Checks, besides ASan/UBSan/leaks: results are the
 * documented codes with terminated error strings; a parser gives at most one
 * update, of its provider, for the caller's order, with an event id, valid
 * for proto (it encodes, decodes and encodes to the same bytes again); a
 * token cache that took an answer holds a usable bearer token, one that did
 * not holds none.
 */
#include <stdbool.h>

#include "fuzz.h"
#include "poll_auth.h"
#include "poll_parse.h"
#include "proto.h"

#define NOW_MS 1714650000000LL
#define ORDER "order-1"

static void check_error(const char *what, const proto_error_t *err)
{
	FUZZ_CHECK(FUZZ_TERMINATED(err->field) && FUZZ_TERMINATED(err->message),
		   "%s: an unterminated proto_error_t", what);
}

static void check_update(const poll_parser_t *p, const proto_update_t *u)
{
	proto_update_t again;
	proto_error_t err;
	char *json, *json2;

	FUZZ_CHECK(FUZZ_TERMINATED(u->order_id) && FUZZ_TERMINATED(u->provider) &&
		       FUZZ_TERMINATED(u->event_id) && FUZZ_TERMINATED(u->courier.id) &&
		       FUZZ_TERMINATED(u->courier.name) && FUZZ_TERMINATED(u->courier.vehicle),
		   "an unterminated string in an update");
	FUZZ_CHECK(strcmp(u->provider, p->provider) == 0, "provider '%s'", u->provider);
	FUZZ_CHECK(strcmp(u->order_id, ORDER) == 0, "order '%s'", u->order_id);
	FUZZ_CHECK(u->event_id[0] != '\0', "an update without an event id");
	json = proto_update_to_json(u);
	FUZZ_CHECK(json != NULL, "an update that does not encode");
	FUZZ_CHECK(proto_update_parse(json, strlen(json), &again, &err) == PROTO_OK,
		   "an update proto refuses (%s: %s): %s", err.field, err.message, json);
	json2 = proto_update_to_json(&again);
	FUZZ_CHECK(json2 != NULL && strcmp(json, json2) == 0, "an update that changes:\n%s\n%s",
		   json, json2 != NULL ? json2 : "(null)");
	free(json2);
	free(json);
}

static void fuzz_token_response(const uint8_t *data, size_t size)
{
	poll_oauth_t t;
	proto_error_t err;
	char auth[POLL_OAUTH_TOKEN_MAX + 16];
	int rc;

	poll_oauth_init(&t);
	FUZZ_CHECK(poll_oauth_step(&t, NOW_MS) == POLL_OAUTH_FETCH, "an empty cache must fetch");
	memset(&err, 0, sizeof(err));
	rc = poll_oauth_token_response(&t, NOW_MS, 200, -1, (const char *)data, size, &err);
	check_error("token", &err);
	if (rc == POLL_AUTH_OK) {
		FUZZ_CHECK(t.state == POLL_OAUTH_VALID && t.expires_ms > NOW_MS &&
			       t.refresh_ms <= t.expires_ms && t.refresh_ms > NOW_MS,
			   "a taken token with a bad lifetime");
		FUZZ_CHECK(poll_oauth_step(&t, NOW_MS) == POLL_OAUTH_USE, "a fresh token unused");
		FUZZ_CHECK(poll_oauth_authorization(&t, auth, sizeof(auth)) > 7, "no header");
		/* "Bearer " and then visible ASCII only: nothing that ends the header. */
		FUZZ_CHECK(strncmp(auth, "Bearer ", 7) == 0, "not a bearer header");
		for (const char *c = auth + 7; *c != '\0'; c++)
			FUZZ_CHECK(*c > 0x20 && *c < 0x7f, "a header byte 0x%02x",
				   (unsigned char)*c);
	} else {
		FUZZ_CHECK(rc == POLL_AUTH_EINVAL || rc == POLL_AUTH_ENOMEM, "token result %d", rc);
		FUZZ_CHECK(t.state == POLL_OAUTH_BACKOFF && t.access_token[0] == '\0',
			   "a refused answer left a token");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const poll_parser_t *const *all = poll_parser_all();
	const poll_parser_t *p;
	proto_update_t out;
	proto_error_t err;
	unsigned flags;
	char *body;
	int n = -1, rc;

	if (size == 0)
		return 0;
	flags = data[0];
	data++;
	size--;
	if ((flags & 3) == 3) {
		fuzz_token_response(data, size);
		return 0;
	}
	p = all[flags & 3];
	FUZZ_CHECK(p != NULL, "no parser %u", flags & 3);
	/* An exact-size copy, so ASan sees any read past the body's end. */
	body = malloc(size != 0 ? size : 1);
	FUZZ_CHECK(body != NULL, "out of memory");
	if (size != 0)
		memcpy(body, data, size);
	memset(&err, 0, sizeof(err));
	rc = p->parse(body, size, (flags & 4) ? "not an order id" : ORDER, NOW_MS, &out, &n, &err);
	check_error(p->provider, &err);
	FUZZ_CHECK(rc == ADAPTER_OK || rc == ADAPTER_EINVAL || rc == ADAPTER_ENOMEM,
		   "%s: result %d", p->provider, rc);
	if (rc == ADAPTER_OK) {
		FUZZ_CHECK(n == 0 || n == 1, "%d updates", n);
		FUZZ_CHECK(n == 0 || !(flags & 4), "an update for an invalid order id");
		if (n == 1)
			check_update(p, &out);
	} else {
		FUZZ_CHECK(n == 0, "%d updates with an error", n);
	}
	free(body);
	return 0;
}
