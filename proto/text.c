/*
 * text.c - the project's one UTF-8 validator and one base64 decoder
 * (proto.h, "bytes from the outside").
 *
 * UTF-8 is RFC 3629: no overlong forms, no surrogates (U+D800..U+DFFF),
 * nothing past U+10FFFF.  One state machine does all of it, a byte at a
 * time, so the streaming form (websocket fragments), the whole-buffer form
 * and the per-sequence form cannot disagree.
 *
 * base64 is decoded here rather than with OpenSSL's EVP_DecodeBlock, which
 * knows only the standard alphabet, wants whole padded 4-character groups
 * (callers had to copy, translate and pad first), skips surrounding
 * whitespace silently and returns the padding as zero bytes that the caller
 * must subtract again.  This decoder reads the text once, in place, and
 * refuses whatever is not exactly base64.
 */
#include "proto.h"

/*
 * The state is 0 between characters, else the continuation bytes still due
 * << 4 | which lead byte narrows the range of the next one: 1 after E0 (no
 * overlong 3-byte forms), 2 after ED (no surrogates), 3 after F0 (no
 * overlong 4-byte forms), 4 after F4 (nothing past U+10FFFF).
 */
static bool utf8_step(uint8_t *state, unsigned c)
{
	unsigned due = *state >> 4, lo = 0x80, hi = 0xbf;

	if (due) {
		switch (*state & 0xf) {
		case 1:
			lo = 0xa0;
			break;
		case 2:
			hi = 0x9f;
			break;
		case 3:
			lo = 0x90;
			break;
		case 4:
			hi = 0x8f;
			break;
		}
		if (c < lo || c > hi)
			return false;
		*state = (uint8_t)((due - 1) << 4);
		return true;
	}
	if (c < 0x80)
		return true;
	if (c >= 0xc2 && c <= 0xdf)
		*state = 1 << 4;
	else if (c >= 0xe0 && c <= 0xef)
		*state = (uint8_t)(2 << 4 | (c == 0xe0 ? 1 : c == 0xed ? 2 : 0));
	else if (c >= 0xf0 && c <= 0xf4)
		*state = (uint8_t)(3 << 4 | (c == 0xf0 ? 3 : c == 0xf4 ? 4 : 0));
	else
		return false; /* a continuation byte, C0/C1 (overlong) or F5..FF */
	return true;
}

bool proto_utf8_feed(uint8_t *state, const void *bytes, size_t len)
{
	const unsigned char *p = bytes;

	for (size_t i = 0; i < len; i++) {
		if (!utf8_step(state, p[i]))
			return false;
	}
	return true;
}

bool proto_utf8_valid(const void *bytes, size_t len)
{
	const unsigned char *p = bytes;
	uint8_t state = 0;
	size_t i = 0;

	while (i < len) {
		/* ASCII runs are most of any text. */
		if (p[i] < 0x80 && state == 0) {
			i++;
			continue;
		}
		if (!utf8_step(&state, p[i++]))
			return false;
	}
	return state == 0;
}

size_t proto_utf8_seq_len(const void *bytes, size_t avail)
{
	const unsigned char *p = bytes;
	uint8_t state = 0;

	for (size_t i = 0; i < avail && i < 4; i++) {
		if (!utf8_step(&state, p[i]))
			return 0;
		if (state == 0)
			return i + 1;
	}
	return 0; /* nothing, or a sequence cut short */
}

/* The 6-bit value of c in the chosen alphabet, -1 for any other byte ('=' included). */
static int base64_value(unsigned char c, bool url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

int proto_base64_decode(const char *in, size_t len, unsigned flags, unsigned char *out, size_t cap,
			size_t *out_len)
{
	bool url = (flags & PROTO_BASE64_URL) != 0;
	size_t data = len, pad = 0, n = 0;
	uint32_t acc = 0;
	unsigned bits = 0;

	if ((in == NULL && len != 0) || (out == NULL && cap != 0))
		return PROTO_EINVAL;
	while (pad < 2 && data > 0 && in[data - 1] == '=') {
		data--;
		pad++;
	}
	/* 1 character mod 4 holds no whole byte; padding, when present, ends a whole group. */
	if (data % 4 == 1 || (pad != 0 && ((flags & PROTO_BASE64_NOPAD) || len % 4 != 0)))
		return PROTO_EINVAL;
	if (data / 4 * 3 + (data % 4 ? data % 4 - 1 : 0) > cap)
		return PROTO_EINVAL;
	for (size_t i = 0; i < data; i++) {
		int v = base64_value((unsigned char)in[i], url);

		if (v < 0)
			return PROTO_EINVAL;
		acc = (acc << 6 | (uint32_t)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	/* The unused low bits of the last character are not checked, as OpenSSL does not. */
	*out_len = n;
	return PROTO_OK;
}
