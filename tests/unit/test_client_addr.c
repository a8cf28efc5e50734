/*
 * Unit tests of gateway/client_addr.c: whose address a request is counted
 * against, from the peer, trusted-proxies and the proxy-header's value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "client_addr.h"

/* Two proxies, as config_t holds trusted-proxies. */
static const char proxies[2][CLIENT_ADDR_TRUSTED_LEN] = {"10.0.0.1", "fd00::1"};

/* The client address of a request from peer with the header, from server.c's 64-byte buffer. */
static void expect_client(const char *peer, const char *header, const char *want, bool from_header)
{
	char out[64];

	memset(out, 'x', sizeof(out));
	assert_int_equal(client_addr(peer, header, proxies, 2, out, sizeof(out)), from_header);
	assert_string_equal(out, want);
}

static void an_untrusted_peer_is_the_client_whatever_it_sends(void **state)
{
	(void)state;
	expect_client("203.0.113.7", "198.51.100.1", "203.0.113.7", false);
	expect_client("203.0.113.7", NULL, "203.0.113.7", false);
	expect_client("2001:db8::7", "198.51.100.1", "2001:db8::7", false);
}

static void a_trusted_peer_without_the_header_is_the_client(void **state)
{
	(void)state;
	expect_client("10.0.0.1", NULL, "10.0.0.1", false);
	expect_client("10.0.0.1", "", "10.0.0.1", false);
}

static void a_trusted_peer_hands_over_to_the_rightmost_untrusted_entry(void **state)
{
	(void)state;
	expect_client("10.0.0.1", "198.51.100.1", "198.51.100.1", true);
	/* The leftmost entries are the client's own claims. */
	expect_client("10.0.0.1", "192.0.2.66, 198.51.100.1", "198.51.100.1", true);
	/* Trusted proxies in the chain are skipped. */
	expect_client("10.0.0.1", "198.51.100.1, 10.0.0.1", "198.51.100.1", true);
	expect_client("10.0.0.1", "198.51.100.1,fd00::1,10.0.0.1", "198.51.100.1", true);
}

static void spaces_around_entries_are_trimmed_but_tabs_are_not(void **state)
{
	(void)state;
	expect_client("10.0.0.1", "  198.51.100.1  ", "198.51.100.1", true);
	expect_client("10.0.0.1", "192.0.2.1 ,   198.51.100.1   ,  10.0.0.1 ", "198.51.100.1",
		      true);
	/* A tab makes the entry non-numeric: it is skipped, and the one left of it is taken. */
	expect_client("10.0.0.1", "192.0.2.1,\t198.51.100.1", "192.0.2.1", true);
	expect_client("10.0.0.1", "\t198.51.100.1", "10.0.0.1", false);
}

static void entries_that_are_not_numeric_addresses_are_skipped(void **state)
{
	(void)state;
	/* So is a port, an obfuscated name, a bracketed IPv6, a CIDR or an empty entry. */
	expect_client("10.0.0.1", "192.0.2.1, 198.51.100.1:4711", "192.0.2.1", true);
	expect_client("10.0.0.1", "192.0.2.1, unknown", "192.0.2.1", true);
	expect_client("10.0.0.1", "192.0.2.1, [2001:db8::1]", "192.0.2.1", true);
	expect_client("10.0.0.1", "192.0.2.1, 198.51.100.0/24", "192.0.2.1", true);
	expect_client("10.0.0.1", "192.0.2.1,,", "192.0.2.1", true);
	expect_client("10.0.0.1", "192.0.2.1, 1.2.3", "192.0.2.1", true);
	expect_client("10.0.0.1", "192.0.2.1, 01.2.3.4", "192.0.2.1", true);
	expect_client("10.0.0.1", "garbage, ,,nope", "10.0.0.1", false);
	expect_client("10.0.0.1", ",", "10.0.0.1", false);
}

static void ipv6_entries_are_taken_as_written(void **state)
{
	(void)state;
	expect_client("10.0.0.1", "2001:db8::1", "2001:db8::1", true);
	expect_client("fd00::1", "2001:DB8:0:0:0:0:0:1", "2001:DB8:0:0:0:0:0:1", true);
	/* A mapped address in the header is not unmapped (only the peer's is). */
	expect_client("10.0.0.1", "::ffff:198.51.100.1", "::ffff:198.51.100.1", true);
	expect_client("10.0.0.1", "0000:0000:0000:0000:0000:ffff:198.51.100.255",
		      "0000:0000:0000:0000:0000:ffff:198.51.100.255", true);
}

static void a_mapped_ipv4_peer_is_unmapped_before_the_trust_check(void **state)
{
	(void)state;
	expect_client("::ffff:203.0.113.7", NULL, "203.0.113.7", false);
	expect_client("::ffff:10.0.0.1", "198.51.100.1", "198.51.100.1", true);
	/* Only the exact lower-case prefix. */
	expect_client("::FFFF:10.0.0.1", "198.51.100.1", "::FFFF:10.0.0.1", false);
}

static void trust_is_an_exact_string_match(void **state)
{
	(void)state;
	expect_client("10.0.0.10", "198.51.100.1", "10.0.0.10", false);
	expect_client("fd00:0::1", "198.51.100.1", "fd00:0::1", false);
	assert_true(client_addr_trusted("10.0.0.1", proxies, 2));
	assert_false(client_addr_trusted("10.0.0.1", proxies, 0));
	assert_false(client_addr_trusted("10.0.0.", proxies, 2));
	assert_false(client_addr_trusted("", proxies, 2));
}

static void a_failed_or_oversized_peer_is_a_question_mark(void **state)
{
	char out[8];

	(void)state;
	expect_client(NULL, "198.51.100.1", "?", false);
	assert_false(client_addr("2001:db8::7", NULL, proxies, 2, out, sizeof(out)));
	assert_string_equal(out, "?");
	assert_false(client_addr("1.2.3.4", NULL, proxies, 2, out, sizeof(out)));
	assert_string_equal(out, "1.2.3.4");
}

static void a_header_of_512_bytes_or_more_is_ignored(void **state)
{
	char header[600];
	size_t n;

	(void)state;
	/* "192.0.2.1," then spaces up to 511 bytes, then the address: 511 is read. */
	memset(header, ' ', sizeof(header));
	memcpy(header, "192.0.2.1,", 10);
	n = 511 - strlen("198.51.100.1");
	memcpy(header + n, "198.51.100.1", 12);
	header[511] = '\0';
	assert_int_equal(strlen(header), 511);
	expect_client("10.0.0.1", header, "198.51.100.1", true);
	header[511] = ' ';
	header[512] = '\0';
	expect_client("10.0.0.1", header, "10.0.0.1", false);
	memcpy(header + 512, "5.6.7.8", 8);
	expect_client("10.0.0.1", header, "10.0.0.1", false);
}

static void many_entries_are_all_looked_at(void **state)
{
	char header[CLIENT_ADDR_HEADER_MAX];
	size_t n = 0;

	(void)state;
	n += (size_t)snprintf(header + n, sizeof(header) - n, "198.51.100.9");
	while (n + 10 < sizeof(header))
		n += (size_t)snprintf(header + n, sizeof(header) - n, ",10.0.0.1");
	expect_client("10.0.0.1", header, "198.51.100.9", true);
}

static void a_short_buffer_cuts_the_address(void **state)
{
	char out[12];

	(void)state;
	assert_true(client_addr("10.0.0.1", "2001:db8:1:2:3:4:5:6", proxies, 2, out, sizeof(out)));
	assert_string_equal(out, "2001:db8:1:");
}

static void the_proxy_header_names_its_lws_source(void **state)
{
	(void)state;
	assert_int_equal(client_addr_header_of(""), CLIENT_ADDR_HEADER_NONE);
	assert_int_equal(client_addr_header_of(NULL), CLIENT_ADDR_HEADER_NONE);
	assert_int_equal(client_addr_header_of("x-forwarded-for"),
			 CLIENT_ADDR_HEADER_X_FORWARDED_FOR);
	assert_int_equal(client_addr_header_of("x-real-ip"), CLIENT_ADDR_HEADER_X_REAL_IP);
	assert_int_equal(client_addr_header_of("forwarded"), CLIENT_ADDR_HEADER_CUSTOM);
	assert_int_equal(client_addr_header_of("cf-connecting-ip"), CLIENT_ADDR_HEADER_CUSTOM);
}

static void forwarded_in_rfc_7239_form_gives_no_address(void **state)
{
	(void)state;
	expect_client("10.0.0.1", "for=198.51.100.1", "10.0.0.1", false);
	expect_client("10.0.0.1", "for=192.0.2.43, for=\"[2001:db8:cafe::17]\"", "10.0.0.1", false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(an_untrusted_peer_is_the_client_whatever_it_sends),
	    cmocka_unit_test(a_trusted_peer_without_the_header_is_the_client),
	    cmocka_unit_test(a_trusted_peer_hands_over_to_the_rightmost_untrusted_entry),
	    cmocka_unit_test(spaces_around_entries_are_trimmed_but_tabs_are_not),
	    cmocka_unit_test(entries_that_are_not_numeric_addresses_are_skipped),
	    cmocka_unit_test(ipv6_entries_are_taken_as_written),
	    cmocka_unit_test(a_mapped_ipv4_peer_is_unmapped_before_the_trust_check),
	    cmocka_unit_test(trust_is_an_exact_string_match),
	    cmocka_unit_test(a_failed_or_oversized_peer_is_a_question_mark),
	    cmocka_unit_test(a_header_of_512_bytes_or_more_is_ignored),
	    cmocka_unit_test(many_entries_are_all_looked_at),
	    cmocka_unit_test(a_short_buffer_cuts_the_address),
	    cmocka_unit_test(the_proxy_header_names_its_lws_source),
	    cmocka_unit_test(forwarded_in_rfc_7239_form_gives_no_address),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
