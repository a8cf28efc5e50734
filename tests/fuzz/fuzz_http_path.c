/*
 * fuzz_http_path.c - what a request target goes through in the gateway, on
 * any bytes: the router (gateway/router.c) that server.c's HTTP and
 * websocket callbacks call, and the pure pieces behind it.
 *
 * The path (the target up to its first '?', cut at the first NUL as lws
 * does) is routed with every method, on the main address and the metrics
 * one, with metrics-listen set and not, and as a websocket upgrade.  The
 * checks are the router's promises, not a second router:
 *
 *   the route is the path's alone: the same for every method; only the
 *   refusal changes with it, and a 405 comes exactly when the route does
 *   not take the method (with its Allow value and a close); 404s are
 *   NOT_FOUND's and METRICS_ONLY's, the latter only on the metrics address,
 *   which routes nothing but /metrics and /healthz;
 *   the order id, page and provider are the path's own tail after the
 *   route's prefix, and unused fields are empty;
 *   ORDER_GET and TRACK refuse 400 exactly when proto_order_id_valid does
 *   not take the id; router_websocket agrees with router_route's TRACK.
 *
 * Then, as before, what the daemon does next with a routed target:
 *
 *   /v1/track/{order_id}?since=C  the order id (proto_order_id_valid against
 *                                 its character set), then the query:
 *                                 query_get must agree with a plain count of
 *                                 each name (one: its value; two or more:
 *                                 refused), then the cursor
 *                                 (proto_cursor_parse on since's value);
 *   /v1/webhooks/{provider}       adapter_find on the provider;
 *   a valid order id              proto_keys_for, and proto_channel_order_id
 *                                 must read the id back out of its channel
 *                                 name "trk:{ID}" (broker.c routes pub/sub
 *                                 messages that way);
 *   the raw input                 proto_channel_order_id, as a channel name
 *                                 Redis sends.
 *
 * The input is the request target ("/v1/track/abc?since=1-0").
 *
 * The token check of ?token= (gateway/auth.c) has its own target.
 */
#include <stdbool.h>

#include "adapter.h"
#include "fuzz.h"
#include "router.h"
#include "proto.h"
#include "query.h"
#include "script.h"

#define URI_MAX 256 /* the websocket path is copied into char uri[256]: longer is len 0 */

/*
 * query_get(name) against a plain scan of the '&'-separated arguments:
 * found once gives its value, twice or more is refused, more arguments than
 * QUERY_ARGS_MAX refuse everything.  Returns the value (NUL-terminated copy)
 * or NULL.
 */
static char *check_query_arg(const char *qs, const char *name)
{
	size_t nl = strlen(name), n_args = 0, count = 0, want_len = 0;
	const char *want = NULL, *p = qs, *v = NULL;
	size_t len = 0;
	query_t q;
	int rc;

	while (*p) {
		const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);

		if (end > p) {
			const char *eq = memchr(p, '=', (size_t)(end - p));
			size_t name_len = eq ? (size_t)(eq - p) : (size_t)(end - p);

			n_args++;
			if (name_len == nl && !memcmp(p, name, nl)) {
				count++;
				want = eq ? eq + 1 : end;
				want_len = (size_t)(end - want);
			}
		}
		p = amp ? amp + 1 : end;
	}
	query_parse(&q, qs, strlen(qs));
	rc = query_get(&q, name, &v, &len);
	if (n_args > QUERY_ARGS_MAX) {
		FUZZ_CHECK(rc == QUERY_TOO_MANY, "%zu arguments: query_get(%s) gave %d", n_args,
			   name, rc);
		return NULL;
	}
	FUZZ_CHECK(rc == (count == 0   ? QUERY_ABSENT
			  : count == 1 ? QUERY_OK
				       : QUERY_REPEATED),
		   "%s given %zu times: query_get gave %d", name, count, rc);
	if (rc != QUERY_OK)
		return NULL;
	FUZZ_CHECK(len == want_len && !memcmp(v, want, len), "the value of %s is not its own",
		   name);
	return fuzz_strndup((const uint8_t *)v, len);
}

static void check_order_id(const char *id)
{
	size_t len = strlen(id), got_len = 0;
	bool valid = proto_order_id_valid(id, len);
	proto_keys_t keys;
	const char *got;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)id[i];
		bool allowed = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '~' ||
			       c == '-';
		if (!allowed) {
			FUZZ_CHECK(!valid, "order id with byte 0x%02x accepted", c);
			break;
		}
	}
	FUZZ_CHECK(!valid || (len >= 1 && len <= PROTO_ORDER_ID_MAX), "order id of %zu bytes", len);
	if (!valid)
		return;
	memset(&keys, 0, sizeof(keys));
	proto_keys_for(id, &keys);
	FUZZ_CHECK(strlen(keys.channel) == len + 6 && strlen(keys.state) == len + 12 &&
		       strlen(keys.log) == len + 10 && strlen(keys.seen) == len + 11,
		   "a key of '%s' was cut", id);
	got = proto_channel_order_id(keys.channel, strlen(keys.channel), &got_len);
	FUZZ_CHECK(got != NULL && got_len == len && memcmp(got, id, len) == 0,
		   "channel %s does not give back the order id", keys.channel);
	FUZZ_CHECK(proto_channel_order_id(keys.state, strlen(keys.state), &got_len) == NULL,
		   "the state key %s reads as a channel", keys.state);
}

static void check_since(const char *query)
{
	char text[64], *since;
	proto_cursor_t c;

	if (query == NULL)
		return;
	free(check_query_arg(query, "token"));
	since = check_query_arg(query, "since");
	if (since == NULL)
		return;
	if (proto_cursor_parse(since, strlen(since), &c) == PROTO_OK) {
		snprintf(text, sizeof(text), "%llu-%llu", (unsigned long long)c.ms,
			 (unsigned long long)c.seq);
		FUZZ_CHECK(strcmp(text, since) == 0, "since=%s reads as %s", since, text);
	}
	free(since);
}

static void check_channel(const uint8_t *data, size_t size)
{
	size_t len = 0;
	const char *id = proto_channel_order_id((const char *)data, size, &len);

	if (id == NULL)
		return;
	FUZZ_CHECK(id == (const char *)data + 5 && len == size - 6, "the id is not trk:{ID}'s");
	FUZZ_CHECK(proto_order_id_valid(id, len), "an invalid id from a channel name");
}

/* Whether the route takes method m (anything else is its 405). */
static bool route_takes(const router_match_t *r, router_method_t m)
{
	bool get_or_head = m == ROUTER_METHOD_GET || m == ROUTER_METHOD_HEAD;

	switch (r->route) {
	case ROUTER_HEALTHZ:
	case ROUTER_READYZ:
	case ROUTER_METRICS:
	case ROUTER_PAGE:
		return get_or_head;
	case ROUTER_UPDATES:
		return m == ROUTER_METHOD_POST;
	case ROUTER_ORDER_GET:
	case ROUTER_TRACK:
		return m == ROUTER_METHOD_GET;
	case ROUTER_ORDER_SOURCE:
		return m == ROUTER_METHOD_GET || m == ROUTER_METHOD_PUT ||
		       m == ROUTER_METHOD_DELETE;
	case ROUTER_WEBHOOK:
		return m == ROUTER_METHOD_POST || r->onfleet_check;
	default:
		return true; /* refused 404 whatever the method */
	}
}

/* A tail of path after prefix: tail == path + strlen(prefix), up to its end. */
static void check_tail(const char *path, size_t len, const char *prefix, const char *tail,
		       size_t tail_len)
{
	size_t n = strlen(prefix);

	FUZZ_CHECK(len >= n && memcmp(path, prefix, n) == 0, "%s without its prefix %s", path,
		   prefix);
	FUZZ_CHECK(tail == path + n && tail_len == len - n, "the tail of %s is not its own", path);
}

static void check_refusal(const router_match_t *r, router_method_t m, const char *path)
{
	const router_refusal_t *f = &r->refusal;
	bool takes = route_takes(r, m);

	FUZZ_CHECK(f->status == 0 || f->status == 400 || f->status == 404 || f->status == 405 ||
		       f->status == 426,
		   "%s: status %u", path, f->status);
	FUZZ_CHECK((f->status == 405) == !takes, "%s (method %d, route %s): status %u", path,
		   (int)m, router_route_name(r->route), f->status);
	FUZZ_CHECK((f->status == 404) ==
		       (r->route == ROUTER_NOT_FOUND || r->route == ROUTER_METRICS_ONLY),
		   "%s: 404 from route %s", path, router_route_name(r->route));
	FUZZ_CHECK((f->status == 0) == (f->code == NULL && f->message == NULL),
		   "%s: a refusal without a code or message", path);
	FUZZ_CHECK((f->status == 405) == (f->allow != NULL) && (f->status == 405) == f->close,
		   "%s: a 405 without Allow and close, or Allow elsewhere", path);
	FUZZ_CHECK(f->status != 405 || strcmp(f->code, "method_not_allowed") == 0, "%s: 405 %s",
		   path, f->code);
	FUZZ_CHECK(f->status != 426 || (r->route == ROUTER_TRACK && m == ROUTER_METHOD_GET),
		   "%s: 426 off GET /v1/track/", path);
}

/* Routes path[0..len) every way and checks what router.h promises. */
static void check_route(const char *path, size_t len, const char *query)
{
	static const router_method_t methods[] = {ROUTER_METHOD_OTHER, ROUTER_METHOD_GET,
						  ROUTER_METHOD_POST,  ROUTER_METHOD_HEAD,
						  ROUTER_METHOD_PUT,   ROUTER_METHOD_DELETE};
	static const bool ports[3][2] = {{false, false}, {false, true}, {true, true}};
	router_route_t main_route = ROUTER__COUNT;
	bool drain_exempt = false;
	router_match_t r, ws;

	for (size_t p = 0; p < 3; p++) {
		bool on_metrics = ports[p][0], metrics_set = ports[p][1];
		router_route_t first = ROUTER__COUNT;

		for (size_t i = 0; i < 4; i++) {
			router_method_t m = methods[i];
			router_route_t got =
			    router_route(m, path, len, on_metrics, metrics_set, &r);

			FUZZ_CHECK(got == r.route && (int)got >= 0 && got < ROUTER__COUNT,
				   "%s: route %d", path, got);
			FUZZ_CHECK(first == ROUTER__COUNT || got == first,
				   "%s: route %s for one method, %s for another", path,
				   router_route_name(first), router_route_name(got));
			first = got;
			FUZZ_CHECK((p == 0 && i == 0) || r.drain_exempt == drain_exempt,
				   "%s: drain_exempt depends on the method or address", path);
			drain_exempt = r.drain_exempt;
			FUZZ_CHECK(!r.drain_exempt || got == ROUTER_HEALTHZ ||
				       got == ROUTER_READYZ || got == ROUTER_METRICS ||
				       got == ROUTER_NOT_FOUND || got == ROUTER_METRICS_ONLY,
				   "%s: drain-exempt route %s", path, router_route_name(got));
			FUZZ_CHECK(!on_metrics || got == ROUTER_METRICS || got == ROUTER_HEALTHZ ||
				       got == ROUTER_METRICS_ONLY,
				   "%s: route %s on the metrics address", path,
				   router_route_name(got));
			FUZZ_CHECK(on_metrics || got != ROUTER_METRICS_ONLY,
				   "%s: metrics_only on the main address", path);
			FUZZ_CHECK(!(metrics_set && !on_metrics) || got != ROUTER_METRICS,
				   "%s: /metrics on the main address with metrics-listen set",
				   path);
			check_refusal(&r, m, path);

			FUZZ_CHECK((r.order_id != NULL) ==
				       (got == ROUTER_ORDER_GET || got == ROUTER_TRACK ||
					got == ROUTER_ORDER_SOURCE),
				   "%s: an order id on route %s", path, router_route_name(got));
			FUZZ_CHECK((r.page != NULL) == (got == ROUTER_PAGE) &&
				       (r.provider != NULL) == (got == ROUTER_WEBHOOK),
				   "%s: a page or provider on route %s", path,
				   router_route_name(got));
			FUZZ_CHECK(!r.onfleet_check ||
				       (got == ROUTER_WEBHOOK && m == ROUTER_METHOD_GET &&
					r.provider_len == 7 && !memcmp(r.provider, "onfleet", 7)),
				   "%s: an onfleet check", path);
			if (got == ROUTER_ORDER_GET || got == ROUTER_TRACK) {
				bool valid = proto_order_id_valid(r.order_id, r.order_id_len);

				check_tail(path, len,
					   got == ROUTER_TRACK ? "/v1/track/" : "/v1/orders/",
					   r.order_id, r.order_id_len);
				FUZZ_CHECK((r.refusal.status == 400) ==
					       (route_takes(&r, m) && !valid),
					   "%s: 400 and the id's validity disagree", path);
			}
			if (got == ROUTER_ORDER_SOURCE) {
				/* /v1/orders/{ID}/source: the id is what lies between. */
				FUZZ_CHECK(len >= 18 && !memcmp(path, "/v1/orders/", 11) &&
					       !memcmp(path + len - 7, "/source", 7) &&
					       r.order_id == path + 11 &&
					       r.order_id_len == len - 18,
					   "%s: the source route's order id", path);
				FUZZ_CHECK((r.refusal.status == 400) ==
					       (route_takes(&r, m) &&
						!proto_order_id_valid(r.order_id, r.order_id_len)),
					   "%s: 400 and the id's validity disagree", path);
			}
			if (got == ROUTER_PAGE)
				check_tail(path, len, "/t/", r.page, r.page_len);
			if (got == ROUTER_WEBHOOK)
				check_tail(path, len, "/v1/webhooks/", r.provider, r.provider_len);
		}
		if (p == 0)
			main_route = first;
	}

	/* The upgrade: the main address's TRACK, refused 4400 where GET was refused 400. */
	router_route(ROUTER_METHOD_GET, path, len, false, false, &r);
	router_websocket(path, len < URI_MAX ? len : 0, false, &ws);
	FUZZ_CHECK(ws.route == ROUTER_TRACK || ws.route == ROUTER_NOT_FOUND, "%s: websocket %s",
		   path, router_route_name(ws.route));
	FUZZ_CHECK(ws.route != ROUTER_TRACK || main_route == ROUTER_TRACK,
		   "%s: a websocket route the HTTP router does not know", path);
	if (len < URI_MAX)
		FUZZ_CHECK((ws.route == ROUTER_TRACK) == (main_route == ROUTER_TRACK),
			   "%s: the websocket and HTTP routers disagree on track", path);
	if (ws.route == ROUTER_TRACK) {
		check_tail(path, len, "/v1/track/", ws.order_id, ws.order_id_len);
		FUZZ_CHECK(ws.refusal.status == (r.refusal.status == 400 ? 4400u : 0u),
			   "%s: websocket refusal %u beside HTTP %u", path, ws.refusal.status,
			   r.refusal.status);
		check_order_id(ws.order_id);
		if (ws.refusal.status == 0)
			check_since(query);
	} else {
		FUZZ_CHECK(ws.refusal.status == 4404 && ws.order_id == NULL, "%s: websocket %u",
			   path, ws.refusal.status);
	}
	router_websocket(path, len, true, &ws);
	FUZZ_CHECK(ws.route == ROUTER_NOT_FOUND && ws.refusal.status == 4404,
		   "%s: a websocket on the metrics address", path);

	if (main_route == ROUTER_WEBHOOK) {
		const adapter_ops_t *a = adapter_find(path + 13);

		FUZZ_CHECK(a == NULL || strcmp(a->name, path + 13) == 0, "adapter_find(%s) gave %s",
			   path + 13, a->name);
	} else if (main_route != ROUTER_TRACK) {
		/* Any other tail still goes through the id check in a fuzzed form. */
		check_order_id(path);
		check_since(query);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *target, *query;

	check_channel(data, size);
	target = fuzz_strndup(data, size);
	query = strchr(target, '?');
	if (query != NULL)
		*query++ = '\0';
	check_route(target, strlen(target), query);
	free(target);
	return 0;
}
