/*
 * fuzz_token - tracking-link tokens (gateway/auth.c), the parser every
 * browser's ?token= reaches.
 *
 * The first byte picks the mode:
 *   even: the rest is the token itself, checked against an HS256 and an
 *         ES256 key (header, base64url, JSON, signature paths);
 *   odd:  the second byte picks the kid (% 3: none, "hs", "x"), the rest
 *         is a claims object, signed HS256 with the configured secret, so
 *         the claim checks behind a valid signature are reached too.  (The
 *         claims once began at the kid byte, so a seed "\x01\x01{...}" was
 *         "\x01{...}", not JSON, and no seed reached the claim checks.)
 * The EC key is tests/unit/fixtures/auth/ec_public.pem (test-only).
 * Properties: never a crash; AUTH_OK only for the order the claims name,
 * with an exp in the future of the check, and (odd mode) never when exp,
 * nbf or iat is present but not a JSON number (RFC 7519 NumericDate).
 */
#include <cjson/cJSON.h>
#include <jwt.h>

#include "auth.h"
#include "fuzz.h"

#define FUZZ_SECRET "fuzz-secret-fuzz-secret-fuzz-secret-0123"
#define FUZZ_NOW 1800000000LL

static auth_keys_t fuzz_keys;

static const char fuzz_ec_public[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEMIgvOAczf4pa6RrMRGc3ULWKE/sa\n"
    "m/CNk9zmmMLkgFy43zC5zg9P1j8yTAW4Mm7H+0L42u/5VfLFOg2KQDWYpQ==\n"
    "-----END PUBLIC KEY-----\n";

static void fuzz_keys_init(void)
{
	if (fuzz_keys.n)
		return;
	snprintf(fuzz_keys.keys[0].kid, sizeof(fuzz_keys.keys[0].kid), "hs");
	fuzz_keys.keys[0].alg = AUTH_HS256;
	memcpy(fuzz_keys.keys[0].key, FUZZ_SECRET, strlen(FUZZ_SECRET));
	fuzz_keys.keys[0].key_len = strlen(FUZZ_SECRET);
	snprintf(fuzz_keys.keys[1].kid, sizeof(fuzz_keys.keys[1].kid), "ec");
	fuzz_keys.keys[1].alg = AUTH_ES256;
	memcpy(fuzz_keys.keys[1].key, fuzz_ec_public, sizeof(fuzz_ec_public) - 1);
	fuzz_keys.keys[1].key_len = sizeof(fuzz_ec_public) - 1;
	fuzz_keys.n = 2;
}

/* 1 when the claims text (as libjwt read it) has an exp, nbf or iat that is not a number. */
static int fuzz_bad_date(const char *claims_json)
{
	static const char *const names[] = {"exp", "nbf", "iat"};
	cJSON *c = cJSON_Parse(claims_json);
	int bad = 0;

	for (size_t i = 0; c && i < sizeof(names) / sizeof(names[0]); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, names[i]);

		if (v && !cJSON_IsNumber(v))
			bad = 1;
	}
	cJSON_Delete(c);
	return bad;
}

static auth_result_t fuzz_check_token(const char *token, size_t len)
{
	char why[96];
	int64_t exp = 0;
	auth_result_t r =
	    auth_check(&fuzz_keys, token, len, "A1", FUZZ_NOW, &exp, why, sizeof(why));

	FUZZ_CHECK(r == AUTH_OK || r == AUTH_INVALID || r == AUTH_FORBIDDEN, "result %d", (int)r);
	if (r == AUTH_OK)
		FUZZ_CHECK(exp + AUTH_LEEWAY_S >= FUZZ_NOW, "accepted an expired token (exp %lld)",
			   (long long)exp);
	else
		FUZZ_CHECK(why[0] != '\0', "a refusal without a reason");
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, *token, *signed_claims;
	jwt_t *jwt = NULL;

	fuzz_keys_init();
	if (size < 2 || size > 8192)
		return 0;
	text = data[0] & 1 ? fuzz_strndup(data + 2, size - 2) : fuzz_strndup(data + 1, size - 1);
	if (!(data[0] & 1)) {
		fuzz_check_token(text, strlen(text));
	} else if (jwt_new(&jwt) == 0) {
		/* text as the claims, then a valid HS256 signature over them */
		if (jwt_add_grants_json(jwt, text) == 0 &&
		    (data[1] % 3 == 0 ||
		     jwt_add_header(jwt, "kid", data[1] % 3 == 1 ? "hs" : "x") == 0) &&
		    jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)FUZZ_SECRET,
				(int)strlen(FUZZ_SECRET)) == 0) {
			token = jwt_encode_str(jwt);
			signed_claims = jwt_get_grants_json(jwt, NULL);
			if (token && signed_claims)
				FUZZ_CHECK(fuzz_check_token(token, strlen(token)) != AUTH_OK ||
					       !fuzz_bad_date(signed_claims),
					   "accepted a non-number NumericDate: %s", signed_claims);
			free(signed_claims);
			free(token);
		}
		jwt_free(jwt);
	}
	free(text);
	return 0;
}
