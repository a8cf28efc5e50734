/* Unit tests of gateway/ratelimit.c: token buckets per address and kind, on explicit clocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ratelimit.h"

/* An arbitrary loop clock: the module must not care where uv_now() starts. */
#define T0 1000000

/* Takes n tokens at now_ms and asserts each was given. */
static void take_n(ratelimit_t *rl, const char *addr, ratelimit_kind_t kind, uint64_t now_ms,
		   unsigned n)
{
	unsigned retry_s = 0;

	for (unsigned i = 0; i < n; i++)
		assert_true(ratelimit_take(rl, addr, kind, now_ms, &retry_s));
}

static bool refused(ratelimit_t *rl, const char *addr, ratelimit_kind_t kind, uint64_t now_ms)
{
	unsigned retry_s = 0;

	return !ratelimit_take(rl, addr, kind, now_ms, &retry_s);
}

static void a_new_address_gets_its_whole_burst_then_is_refused(void **state)
{
	ratelimit_t rl;
	unsigned retry_s = 0;

	(void)state;
	ratelimit_init(&rl, 2, 5, 10, 20);
	take_n(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0, 5);
	assert_false(ratelimit_take(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0, &retry_s));
	assert_true(retry_s >= 1);
	ratelimit_free(&rl);
}

static void a_refused_take_says_to_retry_after_at_least_a_second(void **state)
{
	ratelimit_t rl;
	unsigned retry_s = 0;

	(void)state;
	/* 1 per second: from empty the next token is one second away. */
	ratelimit_init(&rl, 1, 1, 1, 1);
	take_n(&rl, "192.0.2.1", RATELIMIT_INGEST, T0, 1);
	assert_false(ratelimit_take(&rl, "192.0.2.1", RATELIMIT_INGEST, T0, &retry_s));
	assert_int_equal(retry_s, 1);
	/* Fast refill: the next token is 1/100 s away, still said as whole seconds. */
	ratelimit_free(&rl);
	ratelimit_init(&rl, 100, 1, 100, 1);
	take_n(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0, 1);
	retry_s = 0;
	assert_false(ratelimit_take(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0, &retry_s));
	assert_int_equal(retry_s, 1);
	ratelimit_free(&rl);
}

static void an_empty_bucket_refills_at_the_rate(void **state)
{
	ratelimit_t rl;

	(void)state;
	/* 2 per second: one token every 500 ms. */
	ratelimit_init(&rl, 2, 3, 1, 1);
	take_n(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0, 3);
	assert_true(refused(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0 + 499));
	take_n(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0 + 500, 1);
	assert_true(refused(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0 + 500));
	/* Refused takes cost nothing: 500 ms later there is one again. */
	take_n(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0 + 1000, 1);
	/* 1.5 s: three tokens. */
	take_n(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0 + 2500, 3);
	assert_true(refused(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0 + 2500));
	ratelimit_free(&rl);
}

static void an_idle_bucket_refills_no_further_than_its_burst(void **state)
{
	ratelimit_t rl;

	(void)state;
	ratelimit_init(&rl, 10, 4, 1, 1);
	take_n(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0, 4);
	/* An hour idle is worth 36 000 tokens at 10/s; the bucket holds 4. */
	take_n(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0 + 3600 * 1000, 4);
	assert_true(refused(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0 + 3600 * 1000));
	ratelimit_free(&rl);
}

static void a_clock_that_goes_back_adds_no_tokens(void **state)
{
	ratelimit_t rl;

	(void)state;
	ratelimit_init(&rl, 1, 2, 1, 1);
	take_n(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0 + 5000, 2);
	assert_true(refused(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0));
	ratelimit_free(&rl);
}

static void addresses_have_buckets_of_their_own(void **state)
{
	/* IPv4, IPv6 and the longest text form of an address (45 bytes). */
	static const char *const addrs[] = {
	    "192.0.2.1",
	    "192.0.2.10",
	    "2001:db8::1",
	    "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
	};
	ratelimit_t rl;

	(void)state;
	ratelimit_init(&rl, 1, 3, 1, 1);
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		take_n(&rl, addrs[i], RATELIMIT_UPGRADE, T0, 3);
		assert_true(refused(&rl, addrs[i], RATELIMIT_UPGRADE, T0));
		/* The ones emptied before are still empty: each address counts alone. */
		for (size_t j = 0; j < i; j++)
			assert_true(refused(&rl, addrs[j], RATELIMIT_UPGRADE, T0));
	}
	ratelimit_free(&rl);
}

static void upgrades_and_ingest_are_limited_apart(void **state)
{
	ratelimit_t rl;

	(void)state;
	ratelimit_init(&rl, 1, 2, 5, 7);
	take_n(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0, 2);
	assert_true(refused(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0));
	/* The same address still has its whole ingest burst, with its own numbers. */
	take_n(&rl, "192.0.2.1", RATELIMIT_INGEST, T0, 7);
	assert_true(refused(&rl, "192.0.2.1", RATELIMIT_INGEST, T0));
	/* 200 ms: one ingest token at 5/s, no upgrade token at 1/s. */
	take_n(&rl, "192.0.2.1", RATELIMIT_INGEST, T0 + 200, 1);
	assert_true(refused(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0 + 200));
	ratelimit_free(&rl);
}

static void a_sweep_forgets_only_the_buckets_that_are_full_again(void **state)
{
	ratelimit_t rl;

	(void)state;
	/* 1 per second, burst 2. */
	ratelimit_init(&rl, 1, 2, 1, 2);
	take_n(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0, 2);	   /* empty */
	take_n(&rl, "192.0.2.2", RATELIMIT_UPGRADE, T0 + 1500, 1); /* half */
	take_n(&rl, "192.0.2.3", RATELIMIT_INGEST, T0 + 1900, 1);  /* one ingest token used */
	assert_int_equal(rl.n, 3);
	/* At T0 + 2000 the first has refilled both tokens, the others not yet. */
	ratelimit_sweep(&rl, T0 + 2000);
	assert_int_equal(rl.n, 2);
	/* What is kept keeps its count: the second has 1.5 tokens, not a fresh 2. */
	take_n(&rl, "192.0.2.2", RATELIMIT_UPGRADE, T0 + 2000, 1);
	assert_true(refused(&rl, "192.0.2.2", RATELIMIT_UPGRADE, T0 + 2000));
	/* Much later every bucket is full: the table is empty. */
	ratelimit_sweep(&rl, T0 + 60000);
	assert_int_equal(rl.n, 0);
	ratelimit_free(&rl);
}

static void a_forgotten_address_starts_again_with_its_burst(void **state)
{
	ratelimit_t rl;

	(void)state;
	ratelimit_init(&rl, 1, 3, 1, 1);
	take_n(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0, 3);
	ratelimit_sweep(&rl, T0 + 3000);
	assert_int_equal(rl.n, 0);
	/* Exactly what it would have had if it had been kept: 3, no more. */
	take_n(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0 + 3000, 3);
	assert_true(refused(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0 + 3000));
	ratelimit_free(&rl);
}

static void the_table_follows_the_active_addresses(void **state)
{
	char addr[48];
	ratelimit_t rl;

	(void)state;
	ratelimit_init(&rl, 1, 1, 1, 1);
	for (unsigned i = 0; i < 5000; i++) {
		snprintf(addr, sizeof(addr), "10.%u.%u.%u", i >> 16, (i >> 8) & 0xff, i & 0xff);
		take_n(&rl, addr, RATELIMIT_UPGRADE, T0, 1);
	}
	assert_int_equal(rl.n, 5000);
	ratelimit_sweep(&rl, T0 + 500);
	assert_int_equal(rl.n, 5000);
	/* A second later one of them is busy again: only it is kept. */
	take_n(&rl, "10.0.0.7", RATELIMIT_UPGRADE, T0 + 1000, 1);
	ratelimit_sweep(&rl, T0 + 1000);
	assert_int_equal(rl.n, 1);
	ratelimit_sweep(&rl, T0 + 2000);
	assert_int_equal(rl.n, 0);
	ratelimit_free(&rl);
	assert_int_equal(rl.n, 0);
}

static void freeing_a_table_leaves_it_usable(void **state)
{
	ratelimit_t rl;

	(void)state;
	ratelimit_init(&rl, 1, 1, 1, 1);
	take_n(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0, 1);
	take_n(&rl, "192.0.2.2", RATELIMIT_UPGRADE, T0, 1);
	ratelimit_free(&rl);
	assert_int_equal(rl.n, 0);
	/* The addresses are forgotten: each has its burst again. */
	take_n(&rl, "192.0.2.1", RATELIMIT_UPGRADE, T0, 1);
	assert_int_equal(rl.n, 1);
	ratelimit_free(&rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_new_address_gets_its_whole_burst_then_is_refused),
	    cmocka_unit_test(a_refused_take_says_to_retry_after_at_least_a_second),
	    cmocka_unit_test(an_empty_bucket_refills_at_the_rate),
	    cmocka_unit_test(an_idle_bucket_refills_no_further_than_its_burst),
	    cmocka_unit_test(a_clock_that_goes_back_adds_no_tokens),
	    cmocka_unit_test(addresses_have_buckets_of_their_own),
	    cmocka_unit_test(upgrades_and_ingest_are_limited_apart),
	    cmocka_unit_test(a_sweep_forgets_only_the_buckets_that_are_full_again),
	    cmocka_unit_test(a_forgotten_address_starts_again_with_its_burst),
	    cmocka_unit_test(the_table_follows_the_active_addresses),
	    cmocka_unit_test(freeing_a_table_leaves_it_usable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
