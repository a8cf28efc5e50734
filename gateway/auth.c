#include "auth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <jwt.h>

#include "proto.h"

int auth_alg_parse(const char *name, auth_alg_t *out)
{
	if (!strcmp(name, "HS256"))
		*out = AUTH_HS256;
	else if (!strcmp(name, "ES256"))
		*out = AUTH_ES256;
	else
		return -1;
	return 0;
}

/*
 * Reads the unverified header: alg and kid.  Done by hand (not by libjwt)
 * so the key, and with it the one algorithm allowed, is chosen before any
 * verification: a token cannot pick how it is checked.
 */
static int auth_header(const char *token, size_t len, char *alg, size_t alg_cap, char *kid,
		       size_t kid_cap)
{
	const char *dot = memchr(token, '.', len);
	char json[512];
	size_t n;
	cJSON *h;
	const cJSON *a, *k;
	int rc = -1;

	/* A JWS segment: base64url without padding (RFC 7515 2). */
	if (!dot ||
	    proto_base64_decode(token, (size_t)(dot - token), PROTO_BASE64_URL | PROTO_BASE64_NOPAD,
				(unsigned char *)json, sizeof(json) - 1, &n) != PROTO_OK)
		return -1;
	json[n] = '\0';
	h = cJSON_Parse(json);
	a = cJSON_GetObjectItemCaseSensitive(h, "alg");
	k = cJSON_GetObjectItemCaseSensitive(h, "kid");
	if (cJSON_IsString(a) && strlen(a->valuestring) < alg_cap &&
	    (!k || (cJSON_IsString(k) && strlen(k->valuestring) < kid_cap))) {
		snprintf(alg, alg_cap, "%s", a->valuestring);
		snprintf(kid, kid_cap, "%s", k ? k->valuestring : "");
		rc = 0;
	}
	cJSON_Delete(h);
	return rc;
}

static const auth_key_t *auth_find(const auth_keys_t *keys, const char *kid)
{
	if (!kid[0])
		return keys->n == 1 ? &keys->keys[0] : NULL;
	for (unsigned i = 0; i < keys->n; i++)
		if (!strcmp(keys->keys[i].kid, kid))
			return &keys->keys[i];
	return NULL;
}

/*
 * NumericDates (RFC 7519 2): exp, nbf and iat, when present, are JSON
 * numbers, fractional ones included.  libjwt 1.10's jwt_get_grant_int reads
 * anything else (a string "123", true, null, an object, and a fractional
 * number too) as 0 without an error, so the claims are read here, from
 * libjwt's own parse (one object, duplicate names already refused), with
 * cJSON.  A value is clamped to +-2^53 s (beyond that a double holds no
 * fraction anyway) so later arithmetic cannot overflow.
 */
#define AUTH_DATE_MAX 9007199254740992.0

typedef enum auth_date {
	AUTH_DATE_ABSENT = 0,
	AUTH_DATE_OK,
	AUTH_DATE_NOT_A_NUMBER,
} auth_date_t;

static auth_date_t auth_numeric_date(const cJSON *claims, const char *name, double *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(claims, name);

	if (!v)
		return AUTH_DATE_ABSENT;
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
		return AUTH_DATE_NOT_A_NUMBER;
	*out = fmax(-AUTH_DATE_MAX, fmin(AUTH_DATE_MAX, v->valuedouble));
	return AUTH_DATE_OK;
}

#define AUTH_FAIL(res, ...)                                                                        \
	do {                                                                                       \
		snprintf(why, why_len, __VA_ARGS__);                                               \
		rc = (res);                                                                        \
		goto out;                                                                          \
	} while (0)

auth_result_t auth_check(const auth_keys_t *keys, const char *token, size_t token_len,
			 const char *order_id, int64_t now_s, int64_t *exp_s, char *why,
			 size_t why_len)
{
	char alg[16], kid[AUTH_KID_MAX + 1], *copy = NULL, *json = NULL;
	const auth_key_t *key;
	jwt_t *jwt = NULL;
	cJSON *claims = NULL;
	const char *claim;
	auth_result_t rc = AUTH_OK;
	double exp = 0, nbf = 0, iat = 0;
	auth_date_t has_exp, has_nbf;

	if (!token || !token_len)
		AUTH_FAIL(AUTH_INVALID, "a token is required (?token=)");
	if (token_len > AUTH_TOKEN_MAX || memchr(token, '\0', token_len))
		AUTH_FAIL(AUTH_INVALID, "the token is malformed");
	if (auth_header(token, token_len, alg, sizeof(alg), kid, sizeof(kid)) != 0)
		AUTH_FAIL(AUTH_INVALID, "the token is malformed");
	key = auth_find(keys, kid);
	if (!key)
		AUTH_FAIL(AUTH_INVALID, kid[0] ? "the token's key (kid) is unknown"
					       : "the token names no key (kid)");
	if (strcmp(alg, key->alg == AUTH_HS256 ? "HS256" : "ES256") != 0)
		AUTH_FAIL(AUTH_INVALID, "the token's algorithm is not allowed for its key");
	copy = strndup(token, token_len);
	if (!copy)
		AUTH_FAIL(AUTH_INVALID, "out of memory");
	if (jwt_decode(&jwt, copy, key->key, (int)key->key_len) != 0 || !jwt)
		AUTH_FAIL(AUTH_INVALID, "the token's signature is not valid");
	/* libjwt verified with this key; make sure it did so with the expected algorithm. */
	if (jwt_get_alg(jwt) != (key->alg == AUTH_HS256 ? JWT_ALG_HS256 : JWT_ALG_ES256))
		AUTH_FAIL(AUTH_INVALID, "the token's algorithm is not allowed for its key");
	json = jwt_get_grants_json(jwt, NULL);
	claims = json ? cJSON_Parse(json) : NULL;
	if (!cJSON_IsObject(claims))
		AUTH_FAIL(AUTH_INVALID, "the token is malformed");
	has_exp = auth_numeric_date(claims, "exp", &exp);
	if (has_exp == AUTH_DATE_NOT_A_NUMBER)
		AUTH_FAIL(AUTH_INVALID, "the token's expiry (exp) is not a number");
	has_nbf = auth_numeric_date(claims, "nbf", &nbf);
	if (has_nbf == AUTH_DATE_NOT_A_NUMBER)
		AUTH_FAIL(AUTH_INVALID, "the token's start (nbf) is not a number");
	if (auth_numeric_date(claims, "iat", &iat) == AUTH_DATE_NOT_A_NUMBER)
		AUTH_FAIL(AUTH_INVALID, "the token's issue time (iat) is not a number");
	if (has_exp == AUTH_DATE_ABSENT)
		AUTH_FAIL(AUTH_INVALID, "the token has no expiry (exp)");
	/* now_s is whole seconds: exp + leeway < now iff floor(exp) + leeway < now (nbf: ceil). */
	exp = floor(exp);
	if (exp <= 0 || exp + AUTH_LEEWAY_S < (double)now_s)
		AUTH_FAIL(AUTH_INVALID, "the tracking link has expired");
	if (has_nbf == AUTH_DATE_OK && ceil(nbf) > (double)now_s + AUTH_LEEWAY_S)
		AUTH_FAIL(AUTH_INVALID, "the tracking link is not valid yet");
	claim = jwt_get_grant(jwt, "order_id");
	if (!claim)
		AUTH_FAIL(AUTH_INVALID, "the token names no order (order_id)");
	if (strcmp(claim, order_id) != 0)
		AUTH_FAIL(AUTH_FORBIDDEN, "the token is for another order");
	*exp_s = (int64_t)exp;
out:
	cJSON_Delete(claims);
	free(json);
	jwt_free(jwt);
	free(copy);
	return rc;
}
