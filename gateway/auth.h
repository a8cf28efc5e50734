/*
 * auth.h - tracking-link tokens: standard JWTs, so any backend mints them
 * with its usual library.
 *
 *   header  {"alg":"HS256"|"ES256","kid":"<key id>"}   (kid optional with one key)
 *   claims  {"order_id":"<the order>","exp":<unix s>,"nbf":<unix s>?,"iat":<unix s>?,...}
 *
 * Each configured key has one algorithm: an HS256 key only verifies HS256,
 * an ES256 public key only ES256, so "none" and HS/ES mix-ups are refused
 * before any signature is computed.  exp is required; nbf is honoured; both
 * with AUTH_LEEWAY_S of clock skew.  exp, nbf and iat, when present, must be
 * JSON numbers (RFC 7519 NumericDate; fractions allowed): a string, a
 * boolean, null, an array or an object there is refused, never read as 0 or
 * as absent.  Pure functions: no I/O after the keys
 * are loaded at start-up (or by a reload in the thread pool).
 */
#ifndef TRACKGATE_AUTH_H
#define TRACKGATE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_KEYS_MAX 16
#define AUTH_KID_MAX 64
#define AUTH_KEY_MAX 4096   /* bytes: an HS secret or a PEM public key */
#define AUTH_TOKEN_MAX 4096 /* longer tokens are refused unread */
#define AUTH_LEEWAY_S 30

typedef enum auth_alg {
	AUTH_HS256 = 0,
	AUTH_ES256,
} auth_alg_t;

typedef struct auth_key {
	char kid[AUTH_KID_MAX + 1];
	auth_alg_t alg;
	unsigned char key[AUTH_KEY_MAX]; /* secret: never logged */
	size_t key_len;
} auth_key_t;

typedef struct auth_keys {
	auth_key_t keys[AUTH_KEYS_MAX];
	unsigned n;
} auth_keys_t;

typedef enum auth_result {
	AUTH_OK = 0,
	AUTH_INVALID,	/* missing, malformed, badly signed, expired, not yet valid: 4401 / 401 */
	AUTH_FORBIDDEN, /* valid, but for another order: 4403 / 403 */
} auth_result_t;

/*
 * Checks token for order_id at now (unix seconds).  On AUTH_OK *exp_s is
 * the token's expiry, in whole seconds (a fractional exp rounded down).  why
 * gets a readable reason otherwise (never the token itself).
 */
auth_result_t auth_check(const auth_keys_t *keys, const char *token, size_t token_len,
			 const char *order_id, int64_t now_s, int64_t *exp_s, char *why,
			 size_t why_len);

/* "HS256" / "ES256" -> alg; -1 for anything else. */
int auth_alg_parse(const char *name, auth_alg_t *out);

#endif
