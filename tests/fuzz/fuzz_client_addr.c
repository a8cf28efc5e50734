/*
 * fuzz_client_addr.c - client_addr (gateway/client_addr.c), the address a
 * request is counted against, on any peer, trusted-proxies and
 * proxy-header value.
 *
 * Input: one flags byte, then PEER '\n' TRUSTED '\n' HEADER.
 *   bit 0  the peer is absent (lws_get_peer_simple failed);
 *   bit 1  the header is absent;
 *   bits 2-7  the output buffer is 2 + that many bytes (2..65), exact-size.
 * TRUSTED is a comma-separated list of at most 16 entries, each cut to 47
 * bytes as config_t holds them.  HEADER is the rest, read up to a NUL.
 *
 * Checks beyond the sanitizers, in an exact-size buffer and a large one:
 * the output is terminated inside its buffer; an address from the header
 * is the rightmost entry (spaces trimmed) that inet_pton takes and that is
 * not trusted, found here by a left-to-right scan instead, cut to the
 * buffer, and only behind a trusted peer; otherwise the address is the
 * peer's (unmapped from ::ffff:), or "?" when it is absent or does not fit.
 */
#include <arpa/inet.h>
#include <stdbool.h>

#include "client_addr.h"
#include "fuzz.h"

#define OUT_BIG 72 /* above every short buffer (server.c's callers use 64 and 48) */

static bool numeric(const char *a)
{
	unsigned char bin[16];

	return inet_pton(AF_INET, a, bin) == 1 || inet_pton(AF_INET6, a, bin) == 1;
}

/*
 * The rightmost entry of header that is numeric and not trusted, scanning
 * from the left and keeping the last one seen: a malloc'd copy, or NULL.
 */
static char *expected_entry(const char *header, const char (*trusted)[CLIENT_ADDR_TRUSTED_LEN],
			    unsigned n_trusted)
{
	const char *p = header;
	char *found = NULL;

	for (;;) {
		const char *end = strchr(p, ','), *stop = end ? end : p + strlen(p), *b = p,
			   *e = stop;
		char *entry;

		while (b < e && *b == ' ')
			b++;
		while (e > b && e[-1] == ' ')
			e--;
		entry = fuzz_strndup((const uint8_t *)b, (size_t)(e - b));
		if (numeric(entry) && !client_addr_trusted(entry, trusted, n_trusted)) {
			free(found);
			found = entry;
		} else {
			free(entry);
		}
		if (end == NULL)
			return found;
		p = end + 1;
	}
}

/*
 * What client_addr must write into a buffer of size bytes, from the
 * contract in client_addr.h: a malloc'd string, and *from_header.
 */
static char *expected(const char *peer, const char *header,
		      const char (*trusted)[CLIENT_ADDR_TRUSTED_LEN], unsigned n_trusted,
		      size_t size, bool *from_header)
{
	const char *p = peer == NULL || strlen(peer) >= size ? "?" : peer;
	char *entry = NULL;

	if (!strncmp(p, "::ffff:", 7))
		p += 7;
	if (header != NULL && strlen(header) < CLIENT_ADDR_HEADER_MAX &&
	    client_addr_trusted(p, trusted, n_trusted))
		entry = expected_entry(header, trusted, n_trusted);
	*from_header = entry != NULL;
	if (entry == NULL)
		return fuzz_strndup((const uint8_t *)p, strlen(p));
	entry[strnlen(entry, size - 1)] = '\0';
	return entry;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char trusted[16][CLIENT_ADDR_TRUSTED_LEN], out[65], big[OUT_BIG];
	const uint8_t *field;
	size_t len, out_len, field_len;
	char *peer, *list, *header, *exact, *want = NULL, *save = NULL;
	const char *peer_arg, *header_arg;
	unsigned n_trusted = 0;
	bool from_header, big_from_header, want_from_header;
	uint8_t flags;

	if (size == 0)
		return 0;
	flags = data[0];
	data++;
	size--;
	out_len = 2 + (flags >> 2);

	fuzz_next_field(&data, &size, '\n', &field, &field_len);
	peer = fuzz_strndup(field, field_len);
	fuzz_next_field(&data, &size, '\n', &field, &field_len);
	list = fuzz_strndup(field, field_len);
	header = fuzz_strndup(data, size);
	for (char *a = strtok_r(list, ",", &save); a && n_trusted < 16;
	     a = strtok_r(NULL, ",", &save))
		snprintf(trusted[n_trusted++], sizeof(trusted[0]), "%s", a);

	peer_arg = flags & 1 ? NULL : peer;
	header_arg = flags & 2 ? NULL : header;

	/* The output buffer is exactly out_len bytes: ASan sees any write past it. */
	exact = malloc(out_len);
	if (exact == NULL)
		abort();
	from_header = client_addr(peer_arg, header_arg, trusted, n_trusted, exact, out_len);
	len = strnlen(exact, out_len);
	FUZZ_CHECK(len < out_len, "the address is not terminated in %zu bytes", out_len);
	memcpy(out, exact, len + 1);
	free(exact);

	big_from_header = client_addr(peer_arg, header_arg, trusted, n_trusted, big, sizeof(big));
	FUZZ_CHECK(FUZZ_TERMINATED(big), "the address is not terminated in %d bytes", OUT_BIG);

	want = expected(peer_arg, header_arg, trusted, n_trusted, sizeof(big), &want_from_header);
	FUZZ_CHECK(big_from_header == want_from_header && strcmp(big, want) == 0,
		   "'%s' (from the header: %d), expected '%s' (%d)", big, big_from_header, want,
		   want_from_header);
	free(want);
	want = expected(peer_arg, header_arg, trusted, n_trusted, out_len, &want_from_header);
	FUZZ_CHECK(from_header == want_from_header && strcmp(out, want) == 0,
		   "'%s' (from the header: %d) in %zu bytes, expected '%s' (%d)", out, from_header,
		   out_len, want, want_from_header);

	free(want);
	free(peer);
	free(list);
	free(header);
	return 0;
}
