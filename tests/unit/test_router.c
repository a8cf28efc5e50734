/*
 * Unit tests of gateway/router.c: every endpoint of server_http and
 * every refusal the request line alone decides, with the status, code,
 * message and Allow value clients see.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "router.h"

#define GET ROUTER_METHOD_GET
#define POST ROUTER_METHOD_POST
#define HEAD ROUTER_METHOD_HEAD
#define OTHER ROUTER_METHOD_OTHER
#define PUT ROUTER_METHOD_PUT
#define DELETE ROUTER_METHOD_DELETE

#define ORDER_ID_MESSAGE "the order id must be 1-128 characters of A-Z a-z 0-9 . _ ~ -"

/* The main address, metrics-listen unset. */
static router_route_t route(router_method_t m, const char *path, router_match_t *out)
{
	return router_route(m, path, strlen(path), false, false, out);
}

static void expect_served(const router_match_t *r, router_route_t want)
{
	assert_string_equal(router_route_name(r->route), router_route_name(want));
	assert_int_equal(r->refusal.status, 0);
	assert_null(r->refusal.code);
	assert_null(r->refusal.allow);
}

static void expect_refused(const router_match_t *r, router_route_t want, unsigned status,
			   const char *code, const char *message, const char *allow)
{
	assert_string_equal(router_route_name(r->route), router_route_name(want));
	assert_int_equal(r->refusal.status, status);
	assert_string_equal(r->refusal.code, code);
	assert_string_equal(r->refusal.message, message);
	if (allow) {
		assert_non_null(r->refusal.allow);
		assert_string_equal(r->refusal.allow, allow);
	} else {
		assert_null(r->refusal.allow);
	}
	assert_int_equal(r->refusal.close, status == 405);
}

static void expect_method_refused(router_method_t m, const char *path, router_route_t want,
				  const char *message, const char *allow)
{
	router_match_t r;

	assert_int_equal(route(m, path, &r), want);
	expect_refused(&r, want, 405, "method_not_allowed", message, allow);
}

static void probes_are_served_to_get_and_head(void **state)
{
	static const char *const paths[] = {"/healthz", "/readyz", "/metrics"};
	static const router_route_t routes[] = {ROUTER_HEALTHZ, ROUTER_READYZ, ROUTER_METRICS};
	router_match_t r;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(route(GET, paths[i], &r), routes[i]);
		expect_served(&r, routes[i]);
		assert_true(r.drain_exempt);
		assert_int_equal(route(HEAD, paths[i], &r), routes[i]);
		expect_served(&r, routes[i]);
	}
}

static void probes_refuse_other_methods_with_their_allow(void **state)
{
	(void)state;
	expect_method_refused(POST, "/healthz", ROUTER_HEALTHZ, "use GET", "GET, HEAD");
	expect_method_refused(OTHER, "/healthz", ROUTER_HEALTHZ, "use GET", "GET, HEAD");
	expect_method_refused(POST, "/readyz", ROUTER_READYZ, "use GET", "GET, HEAD");
	expect_method_refused(OTHER, "/readyz", ROUTER_READYZ, "use GET", "GET, HEAD");
	/* /metrics accepts HEAD but has always said Allow: GET. */
	expect_method_refused(POST, "/metrics", ROUTER_METRICS, "use GET", "GET");
	expect_method_refused(OTHER, "/metrics", ROUTER_METRICS, "use GET", "GET");
}

static void the_metrics_address_serves_metrics_and_healthz_only(void **state)
{
	static const char *const others[] = {"/readyz",
					     "/v1/updates",
					     "/v1/orders/a",
					     "/t/a",
					     "/v1/webhooks/onfleet",
					     "/v1/track/a",
					     "/nope",
					     "/",
					     ""};
	router_match_t r;

	(void)state;
	assert_int_equal(router_route(GET, "/metrics", 8, true, true, &r), ROUTER_METRICS);
	expect_served(&r, ROUTER_METRICS);
	assert_int_equal(router_route(GET, "/healthz", 8, true, true, &r), ROUTER_HEALTHZ);
	expect_served(&r, ROUTER_HEALTHZ);
	assert_int_equal(router_route(POST, "/healthz", 8, true, true, &r), ROUTER_HEALTHZ);
	expect_refused(&r, ROUTER_HEALTHZ, 405, "method_not_allowed", "use GET", "GET, HEAD");
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		assert_int_equal(router_route(POST, others[i], strlen(others[i]), true, true, &r),
				 ROUTER_METRICS_ONLY);
		expect_refused(&r, ROUTER_METRICS_ONLY, 404, "not_found",
			       "this address serves /metrics only", NULL);
	}
}

static void metrics_on_the_main_address_is_not_found_once_metrics_listen_is_set(void **state)
{
	router_match_t r;

	(void)state;
	assert_int_equal(router_route(GET, "/metrics", 8, false, true, &r), ROUTER_NOT_FOUND);
	expect_refused(&r, ROUTER_NOT_FOUND, 404, "not_found", "no such endpoint", NULL);
	/* Still exempt from the drain's 503: it was answered 404 while draining too. */
	assert_true(r.drain_exempt);
	assert_int_equal(router_route(GET, "/readyz", 7, false, true, &r), ROUTER_READYZ);
	expect_served(&r, ROUTER_READYZ);
}

static void only_the_probes_are_exempt_from_the_drain(void **state)
{
	static const char *const paths[] = {"/v1/updates", "/v1/orders/a", "/t/a", "/v1/track/a",
					    "/healthz/",   "/metricsx",	   "/"};
	router_match_t r;

	(void)state;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		route(GET, paths[i], &r);
		assert_false(r.drain_exempt);
	}
}

static void updates_take_post_only(void **state)
{
	router_match_t r;

	(void)state;
	assert_int_equal(route(POST, "/v1/updates", &r), ROUTER_UPDATES);
	expect_served(&r, ROUTER_UPDATES);
	expect_method_refused(GET, "/v1/updates", ROUTER_UPDATES, "use POST", "POST");
	expect_method_refused(HEAD, "/v1/updates", ROUTER_UPDATES, "use POST", "POST");
	expect_method_refused(OTHER, "/v1/updates", ROUTER_UPDATES, "use POST", "POST");
}

static void an_order_get_gives_its_order_id(void **state)
{
	router_match_t r;

	(void)state;
	assert_int_equal(route(GET, "/v1/orders/ord-1.2_x~Y", &r), ROUTER_ORDER_GET);
	expect_served(&r, ROUTER_ORDER_GET);
	assert_int_equal(r.order_id_len, 11);
	assert_memory_equal(r.order_id, "ord-1.2_x~Y", 11);
	assert_string_equal(r.order_id, "ord-1.2_x~Y");
}

static void an_order_get_refuses_the_method_before_the_id(void **state)
{
	router_match_t r;

	(void)state;
	/* HEAD is refused here, unlike the probes and the page. */
	expect_method_refused(HEAD, "/v1/orders/abc", ROUTER_ORDER_GET, "use GET", "GET");
	expect_method_refused(POST, "/v1/orders/abc", ROUTER_ORDER_GET, "use GET", "GET");
	expect_method_refused(POST, "/v1/orders/a b", ROUTER_ORDER_GET, "use GET", "GET");
	assert_int_equal(route(GET, "/v1/orders/a b", &r), ROUTER_ORDER_GET);
	expect_refused(&r, ROUTER_ORDER_GET, 400, "invalid_order_id", ORDER_ID_MESSAGE, NULL);
	assert_int_equal(route(GET, "/v1/orders/", &r), ROUTER_ORDER_GET);
	expect_refused(&r, ROUTER_ORDER_GET, 400, "invalid_order_id", ORDER_ID_MESSAGE, NULL);
	assert_int_equal(route(GET, "/v1/orders/a/b", &r), ROUTER_ORDER_GET);
	expect_refused(&r, ROUTER_ORDER_GET, 400, "invalid_order_id", ORDER_ID_MESSAGE, NULL);
}

static void an_order_source_takes_get_put_and_delete_and_gives_its_order_id(void **state)
{
	static const router_method_t methods[] = {GET, PUT, DELETE};
	router_match_t r;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(route(methods[i], "/v1/orders/ord-1.2_x~Y/source", &r),
				 ROUTER_ORDER_SOURCE);
		expect_served(&r, ROUTER_ORDER_SOURCE);
		assert_false(r.drain_exempt);
		assert_int_equal(r.order_id_len, 11);
		assert_memory_equal(r.order_id, "ord-1.2_x~Y", 11);
		/* Not NUL-terminated at its length: "/source" follows the id. */
		assert_memory_equal(r.order_id + 11, "/source", 7);
	}
}

static void an_order_source_refuses_the_method_before_the_id(void **state)
{
	static const router_method_t refused[] = {HEAD, POST, OTHER};
	router_match_t r;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		expect_method_refused(refused[i], "/v1/orders/abc/source", ROUTER_ORDER_SOURCE,
				      "use GET, PUT or DELETE", "GET, PUT, DELETE");
		expect_method_refused(refused[i], "/v1/orders/a b/source", ROUTER_ORDER_SOURCE,
				      "use GET, PUT or DELETE", "GET, PUT, DELETE");
	}
	assert_int_equal(route(PUT, "/v1/orders/a b/source", &r), ROUTER_ORDER_SOURCE);
	expect_refused(&r, ROUTER_ORDER_SOURCE, 400, "invalid_order_id", ORDER_ID_MESSAGE, NULL);
	assert_int_equal(route(DELETE, "/v1/orders//source", &r), ROUTER_ORDER_SOURCE);
	expect_refused(&r, ROUTER_ORDER_SOURCE, 400, "invalid_order_id", ORDER_ID_MESSAGE, NULL);
	assert_int_equal(r.order_id_len, 0);
	/* An id cannot hold '/': a longer path before /source is an invalid id, not another. */
	assert_int_equal(route(GET, "/v1/orders/a/b/source", &r), ROUTER_ORDER_SOURCE);
	expect_refused(&r, ROUTER_ORDER_SOURCE, 400, "invalid_order_id", ORDER_ID_MESSAGE, NULL);
}

static void an_order_named_source_and_other_tails_stay_order_gets(void **state)
{
	router_match_t r;

	(void)state;
	/* "source" alone is an order id; a tail after /source is not the source route. */
	assert_int_equal(route(GET, "/v1/orders/source", &r), ROUTER_ORDER_GET);
	expect_served(&r, ROUTER_ORDER_GET);
	assert_string_equal(r.order_id, "source");
	assert_int_equal(route(GET, "/v1/orders/abc/source/", &r), ROUTER_ORDER_GET);
	expect_refused(&r, ROUTER_ORDER_GET, 400, "invalid_order_id", ORDER_ID_MESSAGE, NULL);
	assert_int_equal(route(GET, "/v1/orders/abc/sources", &r), ROUTER_ORDER_GET);
	expect_refused(&r, ROUTER_ORDER_GET, 400, "invalid_order_id", ORDER_ID_MESSAGE, NULL);
	/* PUT and DELETE elsewhere are refused like any other method. */
	expect_method_refused(PUT, "/v1/orders/abc", ROUTER_ORDER_GET, "use GET", "GET");
	expect_method_refused(DELETE, "/v1/updates", ROUTER_UPDATES, "use POST", "POST");
}

static void an_order_source_id_of_128_characters_is_valid_and_129_is_not(void **state)
{
	char path[11 + 129 + 7 + 1];
	router_match_t r;

	(void)state;
	memcpy(path, "/v1/orders/", 11);
	memset(path + 11, 'a', 128);
	memcpy(path + 11 + 128, "/source", 8);
	route(PUT, path, &r);
	expect_served(&r, ROUTER_ORDER_SOURCE);
	assert_int_equal(r.order_id_len, 128);
	memset(path + 11, 'a', 129);
	memcpy(path + 11 + 129, "/source", 8);
	route(PUT, path, &r);
	expect_refused(&r, ROUTER_ORDER_SOURCE, 400, "invalid_order_id", ORDER_ID_MESSAGE, NULL);
}

static void an_order_id_of_128_characters_is_valid_and_129_is_not(void **state)
{
	char path[11 + 129 + 1];
	router_match_t r;

	(void)state;
	memcpy(path, "/v1/orders/", 11);
	memset(path + 11, 'a', 129);
	path[11 + 128] = '\0';
	route(GET, path, &r);
	expect_served(&r, ROUTER_ORDER_GET);
	assert_int_equal(r.order_id_len, 128);
	path[11 + 128] = 'a';
	path[11 + 129] = '\0';
	route(GET, path, &r);
	expect_refused(&r, ROUTER_ORDER_GET, 400, "invalid_order_id", ORDER_ID_MESSAGE, NULL);
}

static void the_page_takes_get_and_head_and_gives_the_rest(void **state)
{
	router_match_t r;

	(void)state;
	assert_int_equal(route(GET, "/t/abc", &r), ROUTER_PAGE);
	expect_served(&r, ROUTER_PAGE);
	assert_int_equal(r.page_len, 3);
	assert_string_equal(r.page, "abc");
	assert_int_equal(route(HEAD, "/t/assets/track.js", &r), ROUTER_PAGE);
	expect_served(&r, ROUTER_PAGE);
	assert_string_equal(r.page, "assets/track.js");
	/* page_serve judges the rest (400 page, 404 asset): not the router. */
	assert_int_equal(route(GET, "/t/", &r), ROUTER_PAGE);
	expect_served(&r, ROUTER_PAGE);
	assert_int_equal(r.page_len, 0);
	expect_method_refused(POST, "/t/abc", ROUTER_PAGE, "use GET", "GET, HEAD");
	expect_method_refused(OTHER, "/t/abc", ROUTER_PAGE, "use GET", "GET, HEAD");
}

static void a_webhook_gives_its_provider(void **state)
{
	router_match_t r;

	(void)state;
	assert_int_equal(route(POST, "/v1/webhooks/uber_direct", &r), ROUTER_WEBHOOK);
	expect_served(&r, ROUTER_WEBHOOK);
	assert_int_equal(r.provider_len, 11);
	assert_string_equal(r.provider, "uber_direct");
	assert_false(r.onfleet_check);
	/* Any provider routes: whether one is configured is server.c's 404 unknown_provider. */
	assert_int_equal(route(POST, "/v1/webhooks/", &r), ROUTER_WEBHOOK);
	expect_served(&r, ROUTER_WEBHOOK);
	assert_int_equal(r.provider_len, 0);
	assert_int_equal(route(POST, "/v1/webhooks/no/such", &r), ROUTER_WEBHOOK);
	assert_string_equal(r.provider, "no/such");
}

static void a_get_to_onfleet_is_its_validation_request(void **state)
{
	router_match_t r;

	(void)state;
	assert_int_equal(route(GET, "/v1/webhooks/onfleet", &r), ROUTER_WEBHOOK);
	expect_served(&r, ROUTER_WEBHOOK);
	assert_true(r.onfleet_check);
	assert_int_equal(route(POST, "/v1/webhooks/onfleet", &r), ROUTER_WEBHOOK);
	expect_served(&r, ROUTER_WEBHOOK);
	assert_false(r.onfleet_check);
	/* Only GET, and only onfleet exactly. */
	expect_method_refused(HEAD, "/v1/webhooks/onfleet", ROUTER_WEBHOOK, "use POST", "POST");
	expect_method_refused(GET, "/v1/webhooks/onfleetx", ROUTER_WEBHOOK, "use POST", "POST");
	expect_method_refused(GET, "/v1/webhooks/Onfleet", ROUTER_WEBHOOK, "use POST", "POST");
	expect_method_refused(GET, "/v1/webhooks/stuart", ROUTER_WEBHOOK, "use POST", "POST");
	expect_method_refused(OTHER, "/v1/webhooks/stuart", ROUTER_WEBHOOK, "use POST", "POST");
}

static void track_over_plain_http_is_upgrade_required(void **state)
{
	router_match_t r;

	(void)state;
	assert_int_equal(route(GET, "/v1/track/abc", &r), ROUTER_TRACK);
	expect_refused(&r, ROUTER_TRACK, 426, "upgrade_required",
		       "this endpoint is a websocket: send Upgrade: websocket", NULL);
	assert_string_equal(r.order_id, "abc");
	assert_int_equal(route(GET, "/v1/track/a%b", &r), ROUTER_TRACK);
	expect_refused(&r, ROUTER_TRACK, 400, "invalid_order_id", ORDER_ID_MESSAGE, NULL);
	assert_int_equal(route(GET, "/v1/track/", &r), ROUTER_TRACK);
	expect_refused(&r, ROUTER_TRACK, 400, "invalid_order_id", ORDER_ID_MESSAGE, NULL);
	expect_method_refused(HEAD, "/v1/track/abc", ROUTER_TRACK,
			      "use GET with a websocket upgrade", "GET");
	expect_method_refused(POST, "/v1/track/a b", ROUTER_TRACK,
			      "use GET with a websocket upgrade", "GET");
}

static void anything_else_is_not_found(void **state)
{
	static const char *const paths[] = {
	    "",
	    "/",
	    "/healthz/",
	    "/HEALTHZ",
	    "/readyz?x",
	    "/v1/updates/",
	    "/v1/orders",
	    "/v1/webhooks",
	    "/v1/track",
	    "/t",
	    "//healthz",
	    "healthz",
	    "/v1/Track/a",
	    "/v2/track/a",
	};
	router_match_t r;

	(void)state;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		for (router_method_t m = OTHER; m <= HEAD; m++) {
			assert_int_equal(route(m, paths[i], &r), ROUTER_NOT_FOUND);
			expect_refused(&r, ROUTER_NOT_FOUND, 404, "not_found", "no such endpoint",
				       NULL);
		}
	}
}

static void the_path_is_its_length_not_its_nul(void **state)
{
	router_match_t r;

	(void)state;
	/* The first 8 bytes of "/healthzzz" are /healthz: len decides. */
	assert_int_equal(router_route(GET, "/healthzzz", 8, false, false, &r), ROUTER_HEALTHZ);
	assert_int_equal(router_route(GET, "/healthz", 7, false, false, &r), ROUTER_NOT_FOUND);
	assert_int_equal(router_route(GET, NULL, 0, false, false, &r), ROUTER_NOT_FOUND);
	assert_int_equal(router_route(GET, "/v1/orders/ab", 12, false, false, &r),
			 ROUTER_ORDER_GET);
	assert_int_equal(r.order_id_len, 1);
}

static void the_websocket_path_is_track_or_refused_with_a_close_code(void **state)
{
	router_match_t r;

	(void)state;
	assert_int_equal(router_websocket("/v1/track/abc", 13, false, &r), ROUTER_TRACK);
	expect_served(&r, ROUTER_TRACK);
	assert_int_equal(r.order_id_len, 3);
	assert_string_equal(r.order_id, "abc");
	assert_int_equal(router_websocket("/v1/track/a b", 13, false, &r), ROUTER_TRACK);
	assert_int_equal(r.refusal.status, 4400);
	assert_string_equal(r.refusal.code, "invalid_order_id");
	assert_string_equal(r.refusal.message, ORDER_ID_MESSAGE);
	assert_false(r.refusal.close);
	assert_int_equal(router_websocket("/v1/track/", 10, false, &r), ROUTER_TRACK);
	assert_int_equal(r.refusal.status, 4400);
	assert_int_equal(router_websocket("/v1/track/abc", 13, true, &r), ROUTER_NOT_FOUND);
	assert_int_equal(r.refusal.status, 4404);
	assert_string_equal(r.refusal.code, "not_found");
	assert_string_equal(r.refusal.message,
			    "no such websocket endpoint; use /v1/track/{order_id}");
	assert_int_equal(router_websocket("/healthz", 8, false, &r), ROUTER_NOT_FOUND);
	assert_int_equal(r.refusal.status, 4404);
	/* lws_hdr_copy failed (a path of 256 bytes or more): len 0. */
	assert_int_equal(router_websocket("", 0, false, &r), ROUTER_NOT_FOUND);
	assert_int_equal(r.refusal.status, 4404);
}

static void every_route_has_a_name(void **state)
{
	(void)state;
	for (int i = 0; i < ROUTER__COUNT; i++)
		assert_string_not_equal(router_route_name((router_route_t)i), "?");
	assert_string_equal(router_route_name(ROUTER__COUNT), "?");
	assert_string_equal(router_route_name(ROUTER_ORDER_GET), "order_get");
	assert_string_equal(router_route_name(ROUTER_ORDER_SOURCE), "order_source");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(probes_are_served_to_get_and_head),
	    cmocka_unit_test(probes_refuse_other_methods_with_their_allow),
	    cmocka_unit_test(the_metrics_address_serves_metrics_and_healthz_only),
	    cmocka_unit_test(metrics_on_the_main_address_is_not_found_once_metrics_listen_is_set),
	    cmocka_unit_test(only_the_probes_are_exempt_from_the_drain),
	    cmocka_unit_test(updates_take_post_only),
	    cmocka_unit_test(an_order_get_gives_its_order_id),
	    cmocka_unit_test(an_order_get_refuses_the_method_before_the_id),
	    cmocka_unit_test(an_order_source_takes_get_put_and_delete_and_gives_its_order_id),
	    cmocka_unit_test(an_order_source_refuses_the_method_before_the_id),
	    cmocka_unit_test(an_order_named_source_and_other_tails_stay_order_gets),
	    cmocka_unit_test(an_order_source_id_of_128_characters_is_valid_and_129_is_not),
	    cmocka_unit_test(an_order_id_of_128_characters_is_valid_and_129_is_not),
	    cmocka_unit_test(the_page_takes_get_and_head_and_gives_the_rest),
	    cmocka_unit_test(a_webhook_gives_its_provider),
	    cmocka_unit_test(a_get_to_onfleet_is_its_validation_request),
	    cmocka_unit_test(track_over_plain_http_is_upgrade_required),
	    cmocka_unit_test(anything_else_is_not_found),
	    cmocka_unit_test(the_path_is_its_length_not_its_nul),
	    cmocka_unit_test(the_websocket_path_is_track_or_refused_with_a_close_code),
	    cmocka_unit_test(every_route_has_a_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
