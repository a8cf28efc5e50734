/*
 * poll/poll_auth.c - provider credentials for poll mode (poll_auth.h): the
 * Uber Direct token cache, DoorDash Drive's JWT, Onfleet's Basic header.
 *
 * The HMAC and base64 encoding come from OpenSSL's libcrypto, the base64
 * decoding from proto (the project's one decoder), the token response is
 * read with the adapters' strict JSON helpers: nothing hand-made here is
 * cryptography.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "adapters_private.h"
#include "poll_auth.h"

/* Longest expires_in taken: 10 years (Uber's are 30 days). */
#define POLL_OAUTH_EXPIRES_MAX_S (10LL * 365 * 24 * 3600)

/* Longest DoorDash signing secret taken, in base64 characters. */
#define POLL_DOORDASH_SECRET_MAX 512

static int auth_fail(proto_error_t *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int auth_fail(proto_error_t *err, const char *field, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL) {
		snprintf(err->field, sizeof(err->field), "%s", field);
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return POLL_AUTH_EINVAL;
}

/* --- Uber Direct ---------------------------------------------------------------------- */

void poll_oauth_init(poll_oauth_t *t)
{
	memset(t, 0, sizeof(*t));
	t->state = POLL_OAUTH_EMPTY;
}

static bool oauth_token_usable(const poll_oauth_t *t, int64_t now_ms)
{
	return t->access_token[0] != '\0' && now_ms < t->expires_ms;
}

static void oauth_drop_token(poll_oauth_t *t)
{
	OPENSSL_cleanse(t->access_token, sizeof(t->access_token));
	t->access_token[0] = '\0';
	t->expires_ms = 0;
	t->refresh_ms = 0;
}

poll_oauth_action_t poll_oauth_step(poll_oauth_t *t, int64_t now_ms)
{
	if (t->state == POLL_OAUTH_FETCHING &&
	    now_ms - t->fetch_started_ms >= POLL_OAUTH_FETCH_TIMEOUT_MS)
		poll_oauth_fetch_failed(t, now_ms, -1);
	if (t->access_token[0] != '\0' && now_ms >= t->expires_ms)
		oauth_drop_token(t);

	switch (t->state) {
	case POLL_OAUTH_FETCHING:
		return oauth_token_usable(t, now_ms) ? POLL_OAUTH_USE : POLL_OAUTH_WAIT;
	case POLL_OAUTH_BACKOFF:
		if (now_ms < t->retry_ms)
			return oauth_token_usable(t, now_ms) ? POLL_OAUTH_USE : POLL_OAUTH_WAIT;
		break;
	case POLL_OAUTH_VALID:
		if (!oauth_token_usable(t, now_ms))
			break;
		if (now_ms < t->refresh_ms)
			return POLL_OAUTH_USE;
		t->state = POLL_OAUTH_FETCHING;
		t->fetch_started_ms = now_ms;
		return POLL_OAUTH_USE_AND_REFRESH;
	case POLL_OAUTH_EMPTY:
		break;
	}
	/* EMPTY, a VALID token that expired, or a BACKOFF that is over. */
	t->state = POLL_OAUTH_FETCHING;
	t->fetch_started_ms = now_ms;
	return oauth_token_usable(t, now_ms) ? POLL_OAUTH_USE_AND_REFRESH : POLL_OAUTH_FETCH;
}

void poll_oauth_fetch_failed(poll_oauth_t *t, int64_t now_ms, long retry_after_s)
{
	int64_t wait = POLL_OAUTH_BACKOFF_MIN_MS;

	for (unsigned i = 0; i < t->failures && wait < POLL_OAUTH_BACKOFF_MAX_MS; i++)
		wait *= 2;
	if (wait > POLL_OAUTH_BACKOFF_MAX_MS)
		wait = POLL_OAUTH_BACKOFF_MAX_MS;
	/* Retry-After may ask for longer (never for less), up to a day. */
	if (retry_after_s > 0 && retry_after_s <= 86400 && retry_after_s * 1000LL > wait)
		wait = retry_after_s * 1000LL;
	if (t->failures < 64)
		t->failures++;
	t->state = POLL_OAUTH_BACKOFF;
	t->retry_ms = now_ms + wait;
}

void poll_oauth_invalidate(poll_oauth_t *t)
{
	oauth_drop_token(t);
	if (t->state == POLL_OAUTH_VALID)
		t->state = POLL_OAUTH_EMPTY;
}

/* RFC 6750 2.1 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=". */
static bool oauth_b64token(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len &&
	       (strchr("-._~+/", s[i]) != NULL || (s[i] >= '0' && s[i] <= '9') ||
		(s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z')) &&
	       s[i] != '\0')
		i++;
	if (i == 0)
		return false;
	while (i < len && s[i] == '=')
		i++;
	return i == len;
}

/* Reads the token response into token/expires_in; POLL_AUTH_EINVAL naming the field. */
static int oauth_read_token(const char *body, size_t len, char *token, size_t cap,
			    double *expires_in, proto_error_t *err)
{
	const char *access = NULL, *type = NULL;
	cJSON *root;
	size_t n;
	int rc;

	root = adapter_parse_json(body, len, err);
	if (root == NULL)
		return err != NULL && strcmp(err->message, ADAPTER_MSG_NOMEM) == 0
			   ? POLL_AUTH_ENOMEM
			   : POLL_AUTH_EINVAL;
	rc = adapter_get_string(root, "access_token", true, &access, err);
	if (rc != 0)
		goto out;
	n = strlen(access);
	if (n == 0 || n > cap - 1) {
		rc = auth_fail(err, "access_token", "must be 1 to %zu characters long", cap - 1);
		goto out;
	}
	if (!oauth_b64token(access, n)) {
		rc = auth_fail(err, "access_token",
			       "holds characters a bearer token may not (RFC 6750 b64token)");
		goto out;
	}
	rc = adapter_get_string(root, "token_type", false, &type, err);
	if (rc < 0)
		goto out;
	if (rc == 0 && strcasecmp(type, "Bearer") != 0) {
		rc = auth_fail(err, "token_type", "must be Bearer");
		goto out;
	}
	rc = adapter_get_number(root, "expires_in", true, expires_in, err);
	if (rc != 0)
		goto out;
	if (!(*expires_in >= 1 && *expires_in <= (double)POLL_OAUTH_EXPIRES_MAX_S) ||
	    floor(*expires_in) != *expires_in) {
		rc = auth_fail(err, "expires_in",
			       "must be a whole number of seconds, 1 to 10 years");
		goto out;
	}
	memcpy(token, access, n + 1);
	rc = POLL_AUTH_OK;
out:
	cJSON_Delete(root);
	return rc < 0 ? rc : rc == 1 ? POLL_AUTH_EINVAL : POLL_AUTH_OK;
}

int poll_oauth_token_response(poll_oauth_t *t, int64_t now_ms, long http_status, long retry_after_s,
			      const char *body, size_t len, proto_error_t *err)
{
	char token[POLL_OAUTH_TOKEN_MAX + 1];
	double expires_in = 0;
	int64_t lifetime, margin;
	int rc;

	if (http_status != 200) {
		poll_oauth_fetch_failed(t, now_ms, retry_after_s);
		return auth_fail(err, "status", "the token endpoint answered %ld, not 200",
				 http_status);
	}
	rc = oauth_read_token(body, len, token, sizeof(token), &expires_in, err);
	if (rc != POLL_AUTH_OK) {
		OPENSSL_cleanse(token, sizeof(token));
		poll_oauth_fetch_failed(t, now_ms, retry_after_s);
		return rc;
	}
	oauth_drop_token(t);
	memcpy(t->access_token, token, strlen(token) + 1);
	OPENSSL_cleanse(token, sizeof(token));
	lifetime = (int64_t)expires_in * 1000;
	margin = lifetime / 10 < POLL_OAUTH_REFRESH_MARGIN_MS ? lifetime / 10
							      : POLL_OAUTH_REFRESH_MARGIN_MS;
	t->expires_ms = now_ms + lifetime;
	t->refresh_ms = t->expires_ms - margin;
	t->state = POLL_OAUTH_VALID;
	t->failures = 0;
	t->retry_ms = 0;
	return POLL_AUTH_OK;
}

/* Appends s percent-encoded (RFC 3986 unreserved kept) at *len, writing within cap. */
static void form_append(char *dst, size_t cap, size_t *len, const char *s, bool encode)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		bool keep = !encode || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
		char enc[3] = {'%', hex[c >> 4], hex[c & 15]};

		for (size_t i = 0; i < (keep ? 1u : 3u); i++, (*len)++)
			if (*len + 1 < cap)
				dst[*len] = keep ? (char)c : enc[i];
	}
}

int poll_oauth_request_body(const char *client_id, const char *client_secret, const char *scope,
			    char *dst, size_t cap)
{
	size_t len = 0;

	if (client_id == NULL || client_id[0] == '\0' || client_secret == NULL ||
	    client_secret[0] == '\0')
		return POLL_AUTH_EINVAL;
	if (scope == NULL)
		scope = POLL_UBER_SCOPE;
	form_append(dst, cap, &len, "grant_type=client_credentials&client_id=", false);
	form_append(dst, cap, &len, client_id, true);
	form_append(dst, cap, &len, "&client_secret=", false);
	form_append(dst, cap, &len, client_secret, true);
	form_append(dst, cap, &len, "&scope=", false);
	form_append(dst, cap, &len, scope, true);
	if (cap != 0)
		dst[len < cap ? len : cap - 1] = '\0';
	return len > (size_t)INT32_MAX ? POLL_AUTH_ESPACE : (int)len;
}

int poll_oauth_authorization(const poll_oauth_t *t, char *dst, size_t cap)
{
	if (t->access_token[0] == '\0')
		return POLL_AUTH_EINVAL;
	return snprintf(dst, cap, "Bearer %s", t->access_token);
}

/* --- base64 ------------------------------------------------------------------------- */

/* base64 of in (RFC 4648 4, padded), or base64url without padding; NUL-terminated. */
static int base64_encode(const void *in, size_t len, bool url, char *dst, size_t cap)
{
	int n;

	if (len > (size_t)INT32_MAX / 2 || cap < 4 * ((len + 2) / 3) + 1)
		return POLL_AUTH_ESPACE;
	n = EVP_EncodeBlock((unsigned char *)dst, in, (int)len);
	if (n < 0)
		return POLL_AUTH_ENOMEM;
	if (url) {
		while (n > 0 && dst[n - 1] == '=')
			n--;
		for (int i = 0; i < n; i++)
			dst[i] = dst[i] == '+' ? '-' : dst[i] == '/' ? '_' : dst[i];
	}
	dst[n] = '\0';
	return n;
}

/* --- DoorDash Drive ------------------------------------------------------------------- */

static bool doordash_id_ok(const char *s)
{
	size_t n = s != NULL ? strnlen(s, POLL_DOORDASH_ID_MAX + 1) : 0;

	if (n == 0 || n > POLL_DOORDASH_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
			return false;
	return true;
}

/* The signing secret's bytes: base64url, else standard base64 (padding optional). */
static int doordash_key(const char *secret, unsigned char *key, size_t cap, size_t *key_len)
{
	size_t len = secret != NULL ? strnlen(secret, POLL_DOORDASH_SECRET_MAX + 1) : 0;

	if (len == 0 || len > POLL_DOORDASH_SECRET_MAX)
		return POLL_AUTH_EINVAL;
	if (proto_base64_decode(secret, len, PROTO_BASE64_URL, key, cap, key_len) == 0 ||
	    proto_base64_decode(secret, len, 0, key, cap, key_len) == 0)
		return *key_len != 0 ? POLL_AUTH_OK : POLL_AUTH_EINVAL;
	return POLL_AUTH_EINVAL;
}

int poll_doordash_jwt(const char *developer_id, const char *key_id, const char *signing_secret,
		      int64_t now_ms, int ttl_s, char *dst, size_t cap, proto_error_t *err)
{
	static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"dd-ver\":\"DD-JWT-V1\"}";
	unsigned char key[PROTO_BASE64_DECODED_MAX(POLL_DOORDASH_SECRET_MAX)];
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	char claims[2 * POLL_DOORDASH_ID_MAX + 128];
	char token[POLL_DOORDASH_JWT_MAX + 1];
	size_t key_len = 0, len;
	long long iat;
	int n, rc;

	if (!doordash_id_ok(developer_id))
		return auth_fail(err, "developer_id",
				 "must be 1 to %d printable characters (DoorDash's is a UUID)",
				 POLL_DOORDASH_ID_MAX);
	if (!doordash_id_ok(key_id))
		return auth_fail(err, "key_id",
				 "must be 1 to %d printable characters (DoorDash's is a UUID)",
				 POLL_DOORDASH_ID_MAX);
	if (ttl_s == 0)
		ttl_s = POLL_DOORDASH_JWT_TTL_DEFAULT_S;
	if (ttl_s < 1 || ttl_s > POLL_DOORDASH_JWT_TTL_MAX_S)
		return auth_fail(err, "ttl_s", "must be 1 to %d seconds (DoorDash's limit)",
				 POLL_DOORDASH_JWT_TTL_MAX_S);
	if (now_ms < 1000 || now_ms > PROTO_MS_MAX)
		return auth_fail(err, "now_ms", "is not a time");
	if (doordash_key(signing_secret, key, sizeof(key), &key_len) != POLL_AUTH_OK) {
		OPENSSL_cleanse(key, sizeof(key));
		return auth_fail(err, "signing_secret",
				 "must be the access key's signing secret, base64url as the "
				 "Developer Portal shows it");
	}

	iat = (long long)(now_ms / 1000);
	snprintf(claims, sizeof(claims),
		 "{\"aud\":\"doordash\",\"iss\":\"%s\",\"kid\":\"%s\",\"iat\":%lld,\"exp\":%lld}",
		 developer_id, key_id, iat, iat + ttl_s);

	/* base64url(header) "." base64url(claims), then "." base64url(HMAC of both). */
	n = base64_encode(header, strlen(header), true, token, sizeof(token));
	len = (size_t)n;
	token[len++] = '.';
	n = base64_encode(claims, strlen(claims), true, token + len, sizeof(token) - len);
	if (n < 0) {
		rc = n;
		goto out;
	}
	len += (size_t)n;
	if (HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)token, len, mac,
		 &mac_len) == NULL) {
		rc = POLL_AUTH_ENOMEM;
		goto out;
	}
	token[len++] = '.';
	n = base64_encode(mac, mac_len, true, token + len, sizeof(token) - len);
	if (n < 0) {
		rc = n;
		goto out;
	}
	len += (size_t)n;
	if (len + 1 > cap) {
		rc = POLL_AUTH_ESPACE;
		goto out;
	}
	memcpy(dst, token, len + 1);
	rc = (int)len;
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(mac, sizeof(mac));
	if (rc == POLL_AUTH_ESPACE)
		auth_fail(err, "", "the JWT does not fit in the buffer");
	return rc;
}

const char *poll_doordash_jwt_get(poll_doordash_jwt_cache_t *c, const char *developer_id,
				  const char *key_id, const char *signing_secret, int64_t now_ms,
				  int ttl_s, proto_error_t *err)
{
	int n;

	if (c->exp_ms != 0 && now_ms < c->exp_ms - POLL_DOORDASH_JWT_MARGIN_MS &&
	    now_ms >= c->exp_ms - (int64_t)POLL_DOORDASH_JWT_TTL_MAX_S * 1000)
		return c->jwt;
	n = poll_doordash_jwt(developer_id, key_id, signing_secret, now_ms, ttl_s, c->jwt,
			      sizeof(c->jwt), err);
	if (n < 0) {
		c->jwt[0] = '\0';
		c->exp_ms = 0;
		return NULL;
	}
	c->exp_ms = (now_ms / 1000 + (ttl_s == 0 ? POLL_DOORDASH_JWT_TTL_DEFAULT_S : ttl_s)) * 1000;
	return c->jwt;
}

/* --- Onfleet ------------------------------------------------------------------------- */

int poll_onfleet_authorization(const char *api_key, char *dst, size_t cap)
{
	char user_pass[512 + 2];
	char b64[4 * ((sizeof(user_pass) + 2) / 3) + 1];
	size_t len = api_key != NULL ? strnlen(api_key, 513) : 0;
	int n;

	if (len == 0 || len > 512)
		return POLL_AUTH_EINVAL;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)api_key[i] < 0x20 || api_key[i] == 0x7f || api_key[i] == ':')
			return POLL_AUTH_EINVAL;
	memcpy(user_pass, api_key, len);
	user_pass[len] = ':';
	n = base64_encode(user_pass, len + 1, false, b64, sizeof(b64));
	OPENSSL_cleanse(user_pass, sizeof(user_pass));
	if (n < 0)
		return n;
	n = snprintf(dst, cap, "Basic %s", b64);
	OPENSSL_cleanse(b64, sizeof(b64));
	return n;
}
