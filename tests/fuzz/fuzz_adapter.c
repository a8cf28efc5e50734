/*
 * fuzz_adapter.c - one provider adapter (adapters/), built once per provider
 * as fuzz_adapter_<provider> with FUZZ_PROVIDER set to its name.
 *
 * The gateway runs an adapter on POST /v1/webhooks/{provider}: verify on the
 * raw request, then parse when it holds (gateway/ingest.c).  The first input
 * byte chooses how the request is made:
 *
 *   bit 0 set: SIGNED.  The rest of the input is the body (for wolt_drive:
 *     the JWT's claims), and the credential is computed for it with a fixed
 *     secret, the way the provider does, so verify passes and parse sees
 *     every body.  Bits 1 and 2 pick a spelling of the credential (case,
 *     prefix, whitespace, Basic or Bearer, bare token or envelope); bit 5
 *     sends uber_direct's X-Uber-Signature instead of X-Postmates-Signature.
 *     For rappi the header is t=T,sign=HEX with T the receive time (inside the
 *     replay window); bit 1 puts sign= first.
 *   bit 0 clear: RAW.  The second byte is a mask of the headers present
 *     (bit i: header_names[i]; bit 7: the secret comes from the input too);
 *     each present value runs to the next '\n', in that order, and the rest
 *     is the body, verbatim.  This fuzzes verify itself.
 *   bits 3-4: parse's max, 1..4 (ADAPTER_UPDATES_MAX).
 *
 * Checks, besides ASan/UBSan/leaks: verify passes a correctly signed request
 * (SIGNED, every provider but wolt_drive, whose claims libjwt may refuse);
 * results are ADAPTER_E* codes with terminated error strings; parse returns
 * at most max updates, each carrying the provider's name and an event id,
 * and each valid for proto: it encodes, decodes, and encodes to the same
 * bytes again (the check ingest.c makes before an update reaches Redis).
 */
#include <stdbool.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "adapter.h"
#include "fuzz.h"
#include "proto.h"

#ifndef FUZZ_PROVIDER
#error "FUZZ_PROVIDER must name the adapter (tests/fuzz/CMakeLists.txt sets it)"
#endif

#define NOW_MS 1714650000000LL

typedef enum sign_kind {
	SIGN_HMAC_SHA256_HEX,	  /* hex HMAC-SHA256 of the body under the secret */
	SIGN_HMAC_SHA512_HEX_KEY, /* hex HMAC-SHA512 under the hex-decoded secret (Onfleet) */
	SIGN_AUTHORIZATION,	  /* Authorization: Bearer SECRET / Basic base64(SECRET) */
	SIGN_JWT_HS256,		  /* the body is {"token": JWT(claims)} (Wolt Drive) */
	SIGN_RAPPI,		  /* Rappi-Signature: t=T,sign=hex HMAC-SHA256 of "T." body */
} sign_kind_t;

typedef struct provider {
	const char *name;
	sign_kind_t kind;
	const char *header;	/* where the credential goes */
	const char *alt_header; /* a second accepted header, or NULL */
	const char *secret;	/* as configured */
} provider_t;

static const provider_t providers[] = {
    {"uber_direct", SIGN_HMAC_SHA256_HEX, "x-postmates-signature", "x-uber-signature",
     "uber-direct-signing-key"},
    {"doordash_drive", SIGN_AUTHORIZATION, "authorization", NULL, "trackgate:s3cr3t-pa55"},
    {"wolt_drive", SIGN_JWT_HS256, NULL, NULL, "wolt-client-secret-7Hq2"},
    {"onfleet", SIGN_HMAC_SHA512_HEX_KEY, "x-onfleet-signature", NULL,
     "7c3e1a9f0b8d2c4e6a5f3b1d9e7c0a2b4d6f8e1c3a5b7d9f0e2c4a6b8d1f3e5a"},
    {"stuart", SIGN_AUTHORIZATION, "authorization", NULL, "stuart-webhook-secret"},
    {"opendelivery", SIGN_HMAC_SHA256_HEX, "x-app-signature", NULL, "opendelivery-secret"},
    {"rappi", SIGN_RAPPI, "rappi-signature", NULL, "rappi-webhook-secret"},
};

/* The headers RAW mode may send, by bit of the mask byte. */
static const char *const header_names[] = {
    "authorization",	   "x-postmates-signature", "x-uber-signature",
    "x-onfleet-signature", "x-app-signature",	    "rappi-signature",
};
#define N_HEADERS (sizeof(header_names) / sizeof(header_names[0]))
#define MASK_SECRET (1u << 7)

enum {
	MODE_SIGNED = 1 << 0,
	VARIANT_A = 1 << 1,
	VARIANT_B = 1 << 2,
	ALT_HEADER = 1 << 5,
};

typedef struct headers {
	const char *name[N_HEADERS + 1];
	char *value[N_HEADERS + 1]; /* malloc'd */
	size_t n;
} headers_t;

/* adapter_request_t's header lookup: NUL-terminated value by lower-case name, or NULL. */
static const char *lookup_header(void *ctx, const char *name)
{
	const headers_t *h = ctx;

	for (size_t i = 0; i < h->n; i++)
		if (strcmp(h->name[i], name) == 0)
			return h->value[i];
	return NULL;
}

static void add_header(headers_t *h, const char *name, char *value)
{
	FUZZ_CHECK(h->n < N_HEADERS + 1 && value != NULL, "header table full");
	h->name[h->n] = name;
	h->value[h->n] = value;
	h->n++;
}

/* --- signing -------------------------------------------------------------------- */

static char *hex_of(const unsigned char *bytes, size_t len, bool upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char *hex = malloc(2 * len + 1);

	FUZZ_CHECK(hex != NULL, "out of memory");
	for (size_t i = 0; i < len; i++) {
		hex[2 * i] = digits[bytes[i] >> 4];
		hex[2 * i + 1] = digits[bytes[i] & 0x0f];
	}
	hex[2 * len] = '\0';
	return hex;
}

static size_t hex_decode(const char *hex, unsigned char *out, size_t cap)
{
	size_t n = strlen(hex) / 2;

	FUZZ_CHECK(n <= cap, "secret too long");
	for (size_t i = 0; i < n; i++) {
		unsigned int byte;
		FUZZ_CHECK(sscanf(hex + 2 * i, "%2x", &byte) == 1, "secret not hex");
		out[i] = (unsigned char)byte;
	}
	return n;
}

/* base64 (RFC 4648 section 4, padded), or base64url without padding. */
static char *base64_of(const void *in, size_t len, bool url)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	int n;

	FUZZ_CHECK(out != NULL && len <= (size_t)INT32_MAX, "out of memory");
	n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	FUZZ_CHECK(n >= 0, "EVP_EncodeBlock");
	if (url) {
		while (n > 0 && out[n - 1] == '=')
			n--;
		for (int i = 0; i < n; i++)
			out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	}
	out[n] = '\0';
	return out;
}

static char *concat(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *s = malloc(la + lb + lc + 1);

	FUZZ_CHECK(s != NULL, "out of memory");
	memcpy(s, a, la);
	memcpy(s + la, b, lb);
	memcpy(s + la + lb, c, lc);
	s[la + lb + lc] = '\0';
	return s;
}

/* The value of an HMAC signature header, in one of the spellings providers use. */
static char *hmac_header(const EVP_MD *md, const unsigned char *key, size_t key_len,
			 const char *body, size_t body_len, unsigned flags)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	char *hex, *value;

	FUZZ_CHECK(HMAC(md, key, (int)key_len, (const unsigned char *)body, body_len, mac,
			&mac_len) != NULL,
		   "HMAC");
	hex = hex_of(mac, mac_len, (flags & VARIANT_A) != 0);
	value =
	    concat((flags & VARIANT_B) ? " \t" : "",
		   (flags & VARIANT_A) ? (md == EVP_sha256() ? "sha256=" : "sha512=") : "", hex);
	free(hex);
	if (flags & VARIANT_B) {
		hex = value;
		value = concat(hex, " ", "");
		free(hex);
	}
	return value;
}

/*
 * A compact JWS of claims, HS256 under key: base64url(header) "."
 * base64url(claims) "." base64url(HMAC-SHA256(key, first two parts)).
 */
static char *jwt_of(const char *claims, size_t claims_len, const char *key, unsigned flags)
{
	const char *header =
	    (flags & VARIANT_B) ? "{\"alg\":\"HS256\"}" : "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	char *h = base64_of(header, strlen(header), true);
	char *c = base64_of(claims, claims_len, true);
	char *input = concat(h, ".", c);
	char *sig, *token;

	FUZZ_CHECK(HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)input,
			strlen(input), mac, &mac_len) != NULL,
		   "HMAC");
	sig = base64_of(mac, mac_len, true);
	token = concat(input, ".", sig);
	free(h);
	free(c);
	free(input);
	free(sig);
	return token;
}

/* --- checks --------------------------------------------------------------------- */

static void check_result(const char *what, int rc, const proto_error_t *err)
{
	FUZZ_CHECK(rc == ADAPTER_OK || rc == ADAPTER_EAUTH || rc == ADAPTER_EINVAL ||
		       rc == ADAPTER_ENOMEM,
		   "%s: result %d", what, rc);
	FUZZ_CHECK(FUZZ_TERMINATED(err->field) && FUZZ_TERMINATED(err->message),
		   "%s: an unterminated proto_error_t", what);
}

/* What ingest.c relies on: a valid, canonical update of this provider with an event id. */
static void check_update(const adapter_ops_t *a, const proto_update_t *u)
{
	proto_update_t again;
	proto_error_t err;
	char *json, *json2;
	int rc;

	FUZZ_CHECK(FUZZ_TERMINATED(u->order_id) && FUZZ_TERMINATED(u->provider) &&
		       FUZZ_TERMINATED(u->event_id) && FUZZ_TERMINATED(u->courier.id) &&
		       FUZZ_TERMINATED(u->courier.name) && FUZZ_TERMINATED(u->courier.vehicle),
		   "an unterminated string in an update");
	FUZZ_CHECK(strcmp(u->provider, a->name) == 0, "provider '%s'", u->provider);
	FUZZ_CHECK(u->event_id[0] != '\0', "an update without an event id");
	json = proto_update_to_json(u);
	FUZZ_CHECK(json != NULL, "an update that does not encode (order %s)", u->order_id);
	rc = proto_update_parse(json, strlen(json), &again, &err);
	FUZZ_CHECK(rc == PROTO_OK, "an update proto refuses (%s: %s): %s", err.field, err.message,
		   json);
	json2 = proto_update_to_json(&again);
	FUZZ_CHECK(json2 != NULL && strcmp(json, json2) == 0, "an update that changes:\n%s\n%s",
		   json, json2 != NULL ? json2 : "(null)");
	free(json2);
	free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const provider_t *p;
	static const adapter_ops_t *a;
	headers_t h = {{NULL}, {NULL}, 0};
	adapter_request_t req;
	proto_update_t out[ADAPTER_UPDATES_MAX];
	proto_error_t err;
	unsigned char key[128];
	char *body = NULL, *secret = NULL;
	unsigned flags;
	int max, n = -1, rc;

	if (a == NULL) {
		for (size_t i = 0; i < sizeof(providers) / sizeof(providers[0]); i++)
			if (strcmp(providers[i].name, FUZZ_PROVIDER) == 0)
				p = &providers[i];
		a = adapter_find(FUZZ_PROVIDER);
		FUZZ_CHECK(p != NULL && a != NULL, "no adapter %s", FUZZ_PROVIDER);
	}
	if (size == 0)
		return 0;
	flags = data[0];
	max = (int)((flags >> 3) & 3) + 1;
	data++;
	size--;

	memset(&req, 0, sizeof(req));
	req.header = lookup_header;
	req.header_ctx = &h;
	req.secret = (const unsigned char *)p->secret;
	req.secret_len = strlen(p->secret);
	req.now_ms = NOW_MS;

	if (flags & MODE_SIGNED) {
		switch (p->kind) {
		case SIGN_HMAC_SHA256_HEX:
			add_header(
			    &h, (flags & ALT_HEADER) && p->alt_header ? p->alt_header : p->header,
			    hmac_header(EVP_sha256(), req.secret, req.secret_len,
					(const char *)data, size, flags));
			break;
		case SIGN_HMAC_SHA512_HEX_KEY: {
			size_t key_len = hex_decode(p->secret, key, sizeof(key));
			add_header(&h, p->header,
				   hmac_header(EVP_sha512(), key, key_len, (const char *)data, size,
					       flags));
			break;
		}
		case SIGN_AUTHORIZATION:
			if (flags & VARIANT_A) {
				char *b64 = base64_of(p->secret, strlen(p->secret), false);
				add_header(
				    &h, p->header,
				    concat((flags & VARIANT_B) ? "basic   " : "Basic ", b64, ""));
				free(b64);
			} else {
				add_header(&h, p->header,
					   concat((flags & VARIANT_B) ? "BEARER  " : "Bearer ",
						  p->secret, (flags & VARIANT_B) ? " " : ""));
			}
			break;
		case SIGN_RAPPI: {
			char t[24], *signed_input, *mac;
			unsigned char raw[EVP_MAX_MD_SIZE];
			unsigned int raw_len = 0;

			snprintf(t, sizeof(t), "%lld", NOW_MS / 1000);
			signed_input = malloc(strlen(t) + 1 + size + 1);
			FUZZ_CHECK(signed_input != NULL, "out of memory");
			memcpy(signed_input, t, strlen(t));
			signed_input[strlen(t)] = '.';
			memcpy(signed_input + strlen(t) + 1, data, size);
			FUZZ_CHECK(HMAC(EVP_sha256(), req.secret, (int)req.secret_len,
					(const unsigned char *)signed_input, strlen(t) + 1 + size,
					raw, &raw_len) != NULL,
				   "HMAC");
			mac = hex_of(raw, raw_len, false);
			{
				char *tail = (flags & VARIANT_A) ? concat(",t=", t, "")
								 : concat(",sign=", mac, "");

				add_header(&h, p->header,
					   (flags & VARIANT_A) ? concat("sign=", mac, tail)
							       : concat("t=", t, tail));
				free(tail);
			}
			free(signed_input);
			free(mac);
			break;
		}
		case SIGN_JWT_HS256: {
			char *token = jwt_of((const char *)data, size, p->secret, flags);
			body = (flags & VARIANT_A) ? concat(token, "", "")
						   : concat("{\"token\":\"", token, "\"}");
			free(token);
			break;
		}
		}
		req.body = body != NULL ? body : (const char *)data;
		req.body_len = body != NULL ? strlen(body) : size;
	} else {
		unsigned mask = size != 0 ? data[0] : 0;
		const uint8_t *value;
		size_t len;

		if (size != 0) {
			data++;
			size--;
		}
		for (size_t i = 0; i < N_HEADERS; i++) {
			if (!(mask & (1u << i)))
				continue;
			fuzz_next_field(&data, &size, '\n', &value, &len);
			add_header(&h, header_names[i], fuzz_strndup(value, len));
		}
		if (mask & MASK_SECRET) {
			fuzz_next_field(&data, &size, '\n', &value, &len);
			secret = fuzz_strndup(value, len);
			req.secret = (const unsigned char *)secret;
			req.secret_len = len;
		}
		req.body = (const char *)data;
		req.body_len = size;
	}

	memset(&err, 0, sizeof(err));
	rc = a->verify(&req, &err);
	check_result("verify", rc, &err);
	if ((flags & MODE_SIGNED) && p->kind != SIGN_JWT_HS256)
		FUZZ_CHECK(rc == ADAPTER_OK, "a correctly signed request fails verify (%d, %s: %s)",
			   rc, err.field, err.message);
	if (rc == ADAPTER_OK) {
		memset(&err, 0, sizeof(err));
		rc = a->parse(&req, out, max, &n, &err);
		check_result("parse", rc, &err);
		if (rc == ADAPTER_OK) {
			FUZZ_CHECK(n >= 0 && n <= max, "%d updates for a max of %d", n, max);
			for (int i = 0; i < n; i++)
				check_update(a, &out[i]);
		}
	}

	for (size_t i = 0; i < h.n; i++)
		free(h.value[i]);
	free(secret);
	free(body);
	return 0;
}
