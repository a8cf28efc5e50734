/* Unit tests of gateway/http.c's pure part: telling lws 4.1's re-parse of its own buffer from a
 * body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http_reply.h"

static bool own_head(const char *s)
{
	return http_body_is_own_head("POST", s, strlen(s));
}

static void the_request_head_handed_over_as_body_is_seen(void **state)
{
	(void)state;
	assert_true(own_head("POST /v1/updates HTTP/1.1\r\nHost: t\r\n\r\n{}"));
	/* CR/LF a client sent between pipelined requests (RFC 9112 2.2). */
	assert_true(own_head("\r\n\r\nPOST /v1/webhooks/onfleet HTTP/1.1\r\n"));
	/* A short Content-Length: only as many bytes as it gives are handed over. */
	assert_true(own_head("P"));
	assert_true(own_head("POS"));
	assert_true(own_head("\nPOST "));
}

static void json_bodies_are_bodies(void **state)
{
	(void)state;
	assert_false(own_head("{\"order_id\":\"o1\",\"ts\":1}"));
	assert_false(own_head("[{}]"));
	assert_false(own_head(" {}"));
	assert_false(own_head("\r\n{}"));
	assert_false(own_head("POSTAL"));
	assert_false(own_head("GET / HTTP/1.1"));
	/* Nothing but line ends tells nothing: the JSON parser answers it. */
	assert_false(own_head("\r\n"));
	assert_false(http_body_is_own_head("POST", "", 0));
	/* A PUT (PUT /v1/orders/{ID}/source) re-parsed the same way. */
	assert_true(http_body_is_own_head("PUT", "PUT /v1/orders/a/source HTTP/1.1", 31));
	assert_false(http_body_is_own_head("PUT", "{\"provider\":\"x\"}", 16));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(the_request_head_handed_over_as_body_is_seen),
	    cmocka_unit_test(json_bodies_are_bodies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
