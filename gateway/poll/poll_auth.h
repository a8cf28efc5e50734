/*
 * poll/poll_auth.h - the credentials poll mode sends to each provider's API,
 * as each provider documents them.  Pure: no I/O, no clock (the caller
 * passes now_ms), no allocation; secrets are copied into caller-owned
 * buffers and cleansed when replaced.
 *
 *   - Uber Direct: OAuth 2.0 client credentials.  A token is requested with
 *     POST https://auth.uber.com/oauth/v2/token (form body grant_type,
 *     client_id, client_secret, scope=eats.deliveries), cached, sent as
 *     "Authorization: Bearer TOKEN" and replaced before it expires.
 *     poll_oauth_t is that cache's state machine.
 *   - DoorDash Drive: a JWT trackgate mints itself, HS256 with the header
 *     {"alg":"HS256","typ":"JWT","dd-ver":"DD-JWT-V1"} and the claims
 *     aud "doordash", iss (developer id), kid (key id), iat, exp (at most
 *     30 minutes after iat), signed with the base64url-decoded signing
 *     secret, sent as "Authorization: Bearer JWT".
 *   - Onfleet: HTTP Basic with the API key as the user name and an empty
 *     password: "Authorization: Basic base64(KEY:)".
 *
 * Results: 0 (or a length, for the writers) on success, a negative
 * POLL_AUTH_E* code on failure with the field and the reason in
 * proto_error_t when one is passed.  Nothing here ever puts a secret in an
 * error message.
 */
#ifndef TRACKGATE_POLL_AUTH_H
#define TRACKGATE_POLL_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

enum {
	POLL_AUTH_OK = 0,
	POLL_AUTH_EINVAL = -2, /* a malformed credential or token response: field and reason */
	POLL_AUTH_ENOMEM = -3,
	POLL_AUTH_ESPACE = -4, /* the result does not fit in the caller's buffer */
};

/* --- Uber Direct: OAuth 2.0 client credentials --------------------------------------- */

#define POLL_UBER_TOKEN_URL "https://auth.uber.com/oauth/v2/token"
#define POLL_UBER_SCOPE "eats.deliveries"

/* Longest access token kept (Uber's are a few hundred bytes). */
#define POLL_OAUTH_TOKEN_MAX 4096
/* A token is replaced this long before it expires (less for a short-lived one: a tenth). */
#define POLL_OAUTH_REFRESH_MARGIN_MS (10 * 60 * 1000LL)
/* A token request unanswered this long counts as failed (the HTTP client times out before). */
#define POLL_OAUTH_FETCH_TIMEOUT_MS (60 * 1000LL)
/*
 * After a failed token request, the next waits 5 s, doubling per failure up
 * to 10 min: Uber limits the client-credentials endpoint to 100 requests an
 * hour.  A Retry-After that asks for longer is honoured.
 */
#define POLL_OAUTH_BACKOFF_MIN_MS (5 * 1000LL)
#define POLL_OAUTH_BACKOFF_MAX_MS (10 * 60 * 1000LL)

typedef enum poll_oauth_state {
	POLL_OAUTH_EMPTY,    /* no token, nothing asked: the next step fetches */
	POLL_OAUTH_FETCHING, /* a token request is in flight (a valid old token may remain) */
	POLL_OAUTH_VALID,    /* a token, good until expires_ms */
	POLL_OAUTH_BACKOFF,  /* the last request failed; the next waits until retry_ms */
} poll_oauth_state_t;

/* What the caller does next with the API request it wants to send. */
typedef enum poll_oauth_action {
	POLL_OAUTH_USE,		    /* send it with poll_oauth_authorization() */
	POLL_OAUTH_USE_AND_REFRESH, /* send it, and also request a new token now (FETCHING) */
	POLL_OAUTH_FETCH,	    /* no usable token: request one now (FETCHING), send later */
	POLL_OAUTH_WAIT,	    /* no usable token and a request in flight or backing off */
} poll_oauth_action_t;

/* One provider account's token cache.  Zeroed (or poll_oauth_init) is EMPTY. */
typedef struct poll_oauth {
	poll_oauth_state_t state;
	char access_token[POLL_OAUTH_TOKEN_MAX + 1]; /* "" when none; cleansed when replaced */
	int64_t expires_ms;			     /* the token's end (now + expires_in) */
	int64_t refresh_ms;			     /* from when a new one is requested */
	int64_t fetch_started_ms;		     /* FETCHING: when the request was sent */
	int64_t retry_ms;			     /* BACKOFF: no request before this */
	unsigned failures;			     /* failed requests in a row */
} poll_oauth_t;

void poll_oauth_init(poll_oauth_t *t);

/*
 * The decision for an API request at now_ms, and the state change it
 * implies: FETCH and USE_AND_REFRESH move the cache to FETCHING (the caller
 * must then send poll_oauth_request_body() to POLL_UBER_TOKEN_URL and report
 * the answer with poll_oauth_token_response() or poll_oauth_fetch_failed()).
 * A token is used up to its expiry; from refresh_ms it is used while a new
 * one is requested, once.  A request unanswered for
 * POLL_OAUTH_FETCH_TIMEOUT_MS counts as failed.
 */
poll_oauth_action_t poll_oauth_step(poll_oauth_t *t, int64_t now_ms);

/*
 * Reads the token endpoint's answer: on HTTP 200, a JSON object with a
 * non-empty access_token (RFC 6750 b64token characters only, at most
 * POLL_OAUTH_TOKEN_MAX) and expires_in (whole seconds, 1 .. 10 years);
 * token_type, when present, must be "Bearer" (any case).  Then VALID and 0.
 * Anything else (another status, a malformed body) is a failed request:
 * BACKOFF, POLL_AUTH_EINVAL naming the field ("status" for a non-200
 * answer).  retry_after_s is the answer's Retry-After (-1: none).  A valid
 * old token is kept for use until it expires.
 */
int poll_oauth_token_response(poll_oauth_t *t, int64_t now_ms, long http_status, long retry_after_s,
			      const char *body, size_t len, proto_error_t *err);

/* The token request got no answer (connect, TLS, timeout): BACKOFF. */
void poll_oauth_fetch_failed(poll_oauth_t *t, int64_t now_ms, long retry_after_s);

/*
 * The API refused the token (401): it is dropped and cleansed, and the next
 * step fetches (unless a request is already in flight or backing off).
 */
void poll_oauth_invalidate(poll_oauth_t *t);

/*
 * The form body of the token request, application/x-www-form-urlencoded:
 * grant_type=client_credentials&client_id=..&client_secret=..&scope=..,
 * values percent-encoded (all but A-Z a-z 0-9 - . _ ~).  scope NULL: the
 * Direct API's POLL_UBER_SCOPE.  Works like snprintf: writes at most cap
 * bytes (NUL included) and returns the length the body needs, or
 * POLL_AUTH_EINVAL for an empty client_id or client_secret.
 */
int poll_oauth_request_body(const char *client_id, const char *client_secret, const char *scope,
			    char *dst, size_t cap);

/* "Bearer TOKEN" into dst like snprintf; POLL_AUTH_EINVAL when there is no token. */
int poll_oauth_authorization(const poll_oauth_t *t, char *dst, size_t cap);

/* --- DoorDash Drive: a self-minted JWT ---------------------------------------------- */

#define POLL_DOORDASH_JWT_TTL_MAX_S 1800    /* DoorDash: exp at most 30 min past iat */
#define POLL_DOORDASH_JWT_TTL_DEFAULT_S 300 /* what DoorDash's own samples use */
/* The longest JWT minted: ids of up to 128 bytes each fit well within it. */
#define POLL_DOORDASH_JWT_MAX 1024
#define POLL_DOORDASH_ID_MAX 128

/*
 * Mints "HEADER.CLAIMS.SIGNATURE" (base64url without padding, RFC 7515)
 * for developer_id and key_id (each 1..POLL_DOORDASH_ID_MAX printable ASCII
 * characters, no quote or backslash: DoorDash's are UUIDs), iat = now_ms in
 * whole seconds and exp = iat + ttl_s (ttl_s in 1..1800; 0: the default),
 * signed HMAC-SHA256 with signing_secret decoded from base64url (the
 * standard alphabet and '=' padding are accepted too, as DoorDash's own
 * samples decode it).  Into dst (NUL-terminated) like snprintf: the length,
 * or POLL_AUTH_EINVAL naming developer_id, key_id, signing_secret or ttl_s,
 * or POLL_AUTH_ESPACE.
 */
int poll_doordash_jwt(const char *developer_id, const char *key_id, const char *signing_secret,
		      int64_t now_ms, int ttl_s, char *dst, size_t cap, proto_error_t *err);

/*
 * A minted JWT reused until refresh_margin before its exp: poll_doordash_jwt_get
 * mints a new one (ttl_s, as above) when there is none or it is that close
 * to expiring, and returns the current one (NUL-terminated, in the cache),
 * or NULL with err filled.
 */
typedef struct poll_doordash_jwt_cache {
	char jwt[POLL_DOORDASH_JWT_MAX + 1];
	int64_t exp_ms; /* 0: none */
} poll_doordash_jwt_cache_t;

#define POLL_DOORDASH_JWT_MARGIN_MS (60 * 1000LL)

const char *poll_doordash_jwt_get(poll_doordash_jwt_cache_t *c, const char *developer_id,
				  const char *key_id, const char *signing_secret, int64_t now_ms,
				  int ttl_s, proto_error_t *err);

/* --- Onfleet: HTTP Basic with the API key ------------------------------------------- */

/*
 * "Basic base64(API_KEY:)" into dst like snprintf (the length it needs), or
 * POLL_AUTH_EINVAL for an empty key or one holding ':' or a control
 * character (it would change what the header says).
 */
int poll_onfleet_authorization(const char *api_key, char *dst, size_t cap);

#endif
