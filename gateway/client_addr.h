/*
 * client_addr.h - the address rate limits, per-client caps and logs are
 * about: the peer's, or, behind a trusted proxy, the one its proxy-header
 * names.
 *
 * One header is honoured, the one proxy-header configures (X-Forwarded-For,
 * X-Real-IP or any other name), and only when the peer is one of
 * trusted-proxies.  Its value is read as a comma-separated list (as lws
 * joins repeated headers); Forwarded's RFC 7239 "for=" form is not parsed,
 * so proxy-header = forwarded never yields an address.
 *
 * Pure: no lws, no allocation; the caller copies the peer and the header
 * out of lws.  Unit-tested (tests/unit/test_client_addr.c) and fuzzed
 * (tests/fuzz/fuzz_client_addr.c).
 */
#ifndef TRACKGATE_CLIENT_ADDR_H
#define TRACKGATE_CLIENT_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define CLIENT_ADDR_TRUSTED_LEN 48 /* one trusted-proxies entry and its NUL (config_t's rows) */
#define CLIENT_ADDR_HEADER_MAX 512 /* a header value this long or longer is ignored */

/* Where the configured proxy-header is read from in lws. */
typedef enum client_addr_header {
	CLIENT_ADDR_HEADER_NONE = 0,	    /* proxy-header is "": the peer is the client */
	CLIENT_ADDR_HEADER_X_FORWARDED_FOR, /* WSI_TOKEN_X_FORWARDED_FOR (repeats joined by ',') */
	CLIENT_ADDR_HEADER_X_REAL_IP,	    /* WSI_TOKEN_HTTP_X_REAL_IP */
	CLIENT_ADDR_HEADER_CUSTOM,	    /* lws_hdr_custom_copy of "NAME:" (the first one) */
} client_addr_header_t;

/* The lws source of proxy_header (config_t.proxy_header: lower case, "" when unset). */
client_addr_header_t client_addr_header_of(const char *proxy_header);

/* Whether addr is exactly one of trusted[0..n_trusted) (no CIDRs, no normalisation). */
bool client_addr_trusted(const char *addr, const char (*trusted)[CLIENT_ADDR_TRUSTED_LEN],
			 unsigned n_trusted);

/*
 * Writes the client's address into out[len] (len >= 2; callers use 48 or
 * more) and returns true when it came from the header, false when it is
 * the peer's.
 *
 * peer: the socket's peer address (lws_get_peer_simple; NULL when that
 * failed).  NULL, or too long for out, gives "?".  A leading "::ffff:" (an
 * IPv4-mapped IPv6 address) is stripped.
 *
 * header: the proxy-header's value, NULL when absent or proxy-header is
 * unset.  It is read only when the peer (stripped) is trusted, and values
 * of CLIENT_ADDR_HEADER_MAX bytes or more are ignored (lws_hdr_copy into
 * the 512-byte buffer conn.c uses refuses them).  The entries are tried
 * from the right: spaces (not tabs) around an entry are trimmed, an entry
 * that is not a numeric IPv4 or IPv6 address (inet_pton) or that is itself
 * trusted is skipped, and the first other one is the client's (cut to
 * len - 1 bytes).  When none is, the peer stays.
 */
bool client_addr(const char *peer, const char *header,
		 const char (*trusted)[CLIENT_ADDR_TRUSTED_LEN], unsigned n_trusted, char *out,
		 size_t len);

#endif
