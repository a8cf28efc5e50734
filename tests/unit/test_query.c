/* Unit tests of gateway/query.c: query arguments found by name, in any order, at any length. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "query.h"

static void expect_arg(const query_t *q, const char *name, const char *want)
{
	const char *v = NULL;
	size_t len = 0;

	assert_int_equal(query_get(q, name, &v, &len), QUERY_OK);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(v, want, len);
}

static void an_argument_is_found_after_a_long_one(void **state)
{
	static char qs[4096];
	query_t q;

	(void)state;
	/* The page's order (URLSearchParams: token first) with a 3 000-byte token. */
	memcpy(qs, "token=", 6);
	memset(qs + 6, 'a', 3000);
	snprintf(qs + 3006, sizeof(qs) - 3006, "&since=1700000000000-4");
	query_parse(&q, qs, strlen(qs));
	expect_arg(&q, "since", "1700000000000-4");
	assert_int_equal(q.arg[0].value_len, 3000);
}

static void arguments_are_found_in_any_order(void **state)
{
	static const char *const orders[] = {
	    "token=T&since=1-2&check=c",
	    "since=1-2&check=c&token=T",
	    "check=c&token=T&since=1-2",
	};
	query_t q;

	(void)state;
	for (size_t i = 0; i < sizeof(orders) / sizeof(orders[0]); i++) {
		query_parse(&q, orders[i], strlen(orders[i]));
		expect_arg(&q, "token", "T");
		expect_arg(&q, "since", "1-2");
		expect_arg(&q, "check", "c");
	}
}

static void an_argument_given_twice_is_refused(void **state)
{
	const char *v;
	size_t len;
	query_t q;

	(void)state;
	query_parse(&q, "since=1-2&token=T&since=1-3", 27);
	assert_int_equal(query_get(&q, "since", &v, &len), QUERY_REPEATED);
	expect_arg(&q, "token", "T");
	query_parse(&q, "token=&token=T", 14);
	assert_int_equal(query_get(&q, "token", &v, &len), QUERY_REPEATED);
}

static void names_match_whole_not_by_prefix(void **state)
{
	const char *v;
	size_t len;
	query_t q;

	(void)state;
	query_parse(&q, "sincerely=1&xsince=2&since_=3&tok=4", 35);
	assert_int_equal(query_get(&q, "since", &v, &len), QUERY_ABSENT);
	assert_int_equal(query_get(&q, "token", &v, &len), QUERY_ABSENT);
}

static void empty_bare_and_valueless_arguments(void **state)
{
	const char *v = "x";
	size_t len = 9;
	query_t q;

	(void)state;
	query_parse(&q, "&&flag&since=&a=b=c&", 20);
	assert_int_equal(q.n, 3);
	assert_int_equal(query_get(&q, "flag", &v, &len), QUERY_OK);
	assert_int_equal(len, 0);
	assert_int_equal(query_get(&q, "since", &v, &len), QUERY_OK);
	assert_int_equal(len, 0);
	expect_arg(&q, "a", "b=c");
	query_parse(&q, "", 0);
	assert_int_equal(q.n, 0);
	assert_int_equal(query_get(&q, "since", &v, &len), QUERY_ABSENT);
}

static void too_many_arguments_make_the_query_invalid(void **state)
{
	char qs[QUERY_ARGS_MAX * 8 + 16];
	size_t n = 0;
	const char *v;
	size_t len;
	query_t q;

	(void)state;
	for (int i = 0; i < QUERY_ARGS_MAX; i++)
		n += (size_t)snprintf(qs + n, sizeof(qs) - n, "a%d=1&", i);
	query_parse(&q, qs, n);
	assert_int_equal(query_get(&q, "a0", &v, &len), QUERY_OK);
	/* One more: it could have been a second token, so nothing is answered. */
	n += (size_t)snprintf(qs + n, sizeof(qs) - n, "token=T");
	query_parse(&q, qs, n);
	assert_int_equal(query_get(&q, "a0", &v, &len), QUERY_TOO_MANY);
	assert_int_equal(query_get(&q, "token", &v, &len), QUERY_TOO_MANY);
}

static void arguments_added_one_by_one_as_lws_hands_them(void **state)
{
	static const char buf[] = "token=T\0since=5-6\0";
	query_t q;

	(void)state;
	query_init(&q);
	query_add(&q, buf, 7);
	query_add(&q, buf + 8, 0);
	query_add(&q, buf + 8, 9);
	assert_int_equal(q.n, 2);
	expect_arg(&q, "token", "T");
	expect_arg(&q, "since", "5-6");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(an_argument_is_found_after_a_long_one),
	    cmocka_unit_test(arguments_are_found_in_any_order),
	    cmocka_unit_test(an_argument_given_twice_is_refused),
	    cmocka_unit_test(names_match_whole_not_by_prefix),
	    cmocka_unit_test(empty_bare_and_valueless_arguments),
	    cmocka_unit_test(too_many_arguments_make_the_query_invalid),
	    cmocka_unit_test(arguments_added_one_by_one_as_lws_hands_them),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
