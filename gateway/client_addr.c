/*
 * client_addr.c - the client's address from the peer and a trusted proxy's
 * header (see client_addr.h), without lws; conn.c copies the peer and the
 * header out of lws and calls it.
 */
#include "client_addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

/* trusted-proxies is handed over as config_t holds it: rows of this size. */
_Static_assert(sizeof(((config_t *)0)->trusted_proxies[0]) == CLIENT_ADDR_TRUSTED_LEN,
	       "config_t.trusted_proxies rows are CLIENT_ADDR_TRUSTED_LEN bytes");

client_addr_header_t client_addr_header_of(const char *proxy_header)
{
	if (proxy_header == NULL || !proxy_header[0])
		return CLIENT_ADDR_HEADER_NONE;
	if (!strcmp(proxy_header, "x-forwarded-for"))
		return CLIENT_ADDR_HEADER_X_FORWARDED_FOR;
	if (!strcmp(proxy_header, "x-real-ip"))
		return CLIENT_ADDR_HEADER_X_REAL_IP;
	return CLIENT_ADDR_HEADER_CUSTOM;
}

bool client_addr_trusted(const char *addr, const char (*trusted)[CLIENT_ADDR_TRUSTED_LEN],
			 unsigned n_trusted)
{
	for (unsigned i = 0; i < n_trusted; i++)
		if (!strncmp(trusted[i], addr, CLIENT_ADDR_TRUSTED_LEN))
			return true;
	return false;
}

static bool numeric_address(const char *a)
{
	unsigned char bin[16];

	return inet_pton(AF_INET, a, bin) == 1 || inet_pton(AF_INET6, a, bin) == 1;
}

bool client_addr(const char *peer, const char *header,
		 const char (*trusted)[CLIENT_ADDR_TRUSTED_LEN], unsigned n_trusted, char *out,
		 size_t len)
{
	char hdr[CLIENT_ADDR_HEADER_MAX];
	size_t n;

	if (len == 0)
		return false;
	if (peer == NULL || strlen(peer) >= len) /* inet_ntop refuses a short buffer */
		peer = "?";
	snprintf(out, len, "%s", peer);
	if (!strncmp(out, "::ffff:", 7))
		memmove(out, out + 7, strlen(out + 7) + 1);
	if (header == NULL || !client_addr_trusted(out, trusted, n_trusted))
		return false;
	n = strnlen(header, sizeof(hdr));
	if (n == sizeof(hdr))
		return false;
	memcpy(hdr, header, n + 1);
	/* From the right: each pass looks at hdr[0..n), cut at its last comma. */
	while (n > 0) {
		char *comma = memrchr(hdr, ',', n), *a = comma ? comma + 1 : hdr;

		while (*a == ' ')
			a++;
		for (char *e = hdr + n; e > a && e[-1] == ' '; e--)
			e[-1] = '\0';
		hdr[n] = '\0';
		if (numeric_address(a) && !client_addr_trusted(a, trusted, n_trusted)) {
			size_t l = strnlen(a, len - 1);

			memcpy(out, a, l);
			out[l] = '\0';
			return true;
		}
		if (comma == NULL)
			break;
		n = (size_t)(comma - hdr);
	}
	return false;
}
