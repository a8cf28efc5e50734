/*
 * http/ingest.c - POST /v1/updates and POST /v1/webhooks/{provider}: the
 * checks before the body (rate, key, media type, length), the provider's
 * adapter at the end of it, and the answer ingest settles.
 */
#include "http_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "adapter.h"
#include "conn.h"
#include "http_reply.h"
#include "log.h"
#include "query.h"

bool http_is_json(struct lws *wsi)
{
	char ct[128];
	int n = lws_hdr_copy(wsi, ct, sizeof(ct), WSI_TOKEN_HTTP_CONTENT_TYPE);

	if (n < 16 || strncasecmp(ct, "application/json", 16) != 0)
		return false;
	return ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ';
}

bool http_authorized(http_t *h, struct lws *wsi)
{
	char auth[CONFIG_INGEST_KEY_MAX + 32];
	int n = lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION);

	if (n <= 7 || strncasecmp(auth, "Bearer ", 7) != 0)
		return false;
	return config_ingest_key_ok(h->cfg, auth + 7, (size_t)n - 7);
}

static void http_ingest_ready(void *arg)
{
	http_session_t *s = arg;

	http_ready(s->wsi, s);
}

/*
 * Checks what a POST with a JSON body needs before the body is read (the
 * ingest key when bearer is set, the media type, the length) and starts
 * collecting it.
 */
static int http_body_check(http_t *h, struct lws *wsi, http_session_t *s, bool bearer);

int http_body_start(http_t *h, struct lws *wsi, http_session_t *s, unsigned provider, bool bearer)
{
	static const unsigned none[RESULT__COUNT];
	int rc;

	h->last_error_status = 0;
	{
		unsigned retry;
		char secs[16];

		if (!conn_rate_ok(h->cfg, h->rates, h->metrics, wsi, RATELIMIT_INGEST,
				  uv_now(h->loop), &retry)) {
			char *body = http_error_body(
			    "rate_limited", "too many requests from your "
					    "address; retry after the Retry-After seconds");

			snprintf(secs, sizeof(secs), "%u", retry);
			rc = body ? http_reply_hdr(wsi, 429, "application/json", body, strlen(body),
						   true, "retry-after:", secs)
				  : -1;
			free(body);
			metrics_request(h->metrics, provider, 429, none, -1);
			return rc;
		}
	}
	rc = http_body_check(h, wsi, s, bearer);
	if (!s->ingest) /* answered before the body: count it here */
		metrics_request(h->metrics, provider, h->last_error_status, none, -1);
	return rc;
}

bool http_json_length(http_t *h, struct lws *wsi, size_t limit, size_t *len, int *rc)
{
	char clen[32], msg[96], *end;
	unsigned long long n;

	/* Every refusal closes: the body behind the head is never read. */
	if (!http_is_json(wsi)) {
		*rc = http_fail(h, wsi, 415, "unsupported_media_type",
				"the body must be application/json", true, NULL);
		return false;
	}
	if (lws_hdr_copy(wsi, clen, sizeof(clen), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0) {
		*rc = http_fail(h, wsi, 411, "length_required",
				"a Content-Length header is required", true, NULL);
		return false;
	}
	n = strtoull(clen, &end, 10);
	if (*end || clen[0] == '-' || clen[0] == '+') {
		*rc = http_fail(h, wsi, 400, "bad_request", "bad Content-Length", true, NULL);
		return false;
	}
	if (n > limit) {
		snprintf(msg, sizeof(msg), "the body may be at most %zu bytes", limit);
		*rc = http_fail(h, wsi, 413, "body_too_large", msg, true, NULL);
		return false;
	}
	if (n == 0) {
		*rc = http_fail(h, wsi, 400, "malformed_json", "the body is empty", true, NULL);
		return false;
	}
	*len = (size_t)n;
	return true;
}

/* The checks of http_body_start; on success s->ingest collects the body. */
static int http_body_check(http_t *h, struct lws *wsi, http_session_t *s, bool bearer)
{
	size_t len;
	int rc;

	if (bearer && !http_authorized(h, wsi))
		return http_fail(h, wsi, 401, "unauthorized",
				 "missing or wrong `Authorization: Bearer KEY`", true, NULL);
	if (!http_json_length(h, wsi, h->cfg->body_limit, &len, &rc))
		return rc;
	s->ingest = ingest_new(h->broker, len, http_ingest_ready, s);
	if (!s->ingest)
		return http_fail(h, wsi, 503, "out_of_memory", "retry later", true, NULL);
	s->phase = HTTP_BODY;
	s->body_seen = 0;
	return 0; /* the body follows in LWS_CALLBACK_HTTP_BODY */
}

/* The metrics index of an adapter (1.. in registry order). */
static unsigned http_provider_index(const char *provider)
{
	const adapter_ops_t *const *all = adapter_all();

	for (unsigned i = 0; all[i]; i++)
		if (!strcmp(all[i]->name, provider))
			return i + 1;
	return 0;
}

/* The adapter and configured secret of /v1/webhooks/{provider}; NULLs when either is missing. */
static const adapter_ops_t *http_webhook_of(http_t *h, const char *provider,
					    const config_webhook_t **w)
{
	const adapter_ops_t *a = adapter_find(provider);

	*w = a ? config_webhook(h->cfg, provider) : NULL;
	return *w ? a : NULL;
}

/*
 * POST /v1/webhooks/{provider}: the body is read like /v1/updates' (the
 * same 411/413/415), then verified and parsed by the provider's adapter at
 * LWS_CALLBACK_HTTP_BODY_COMPLETION.  GET answers Onfleet's validation
 * request (?check=VALUE, echoed as text).
 */
int http_webhook_start(http_t *h, struct lws *wsi, http_session_t *s, const router_match_t *r)
{
	const config_webhook_t *w;

	if (!http_webhook_of(h, r->provider, &w))
		return http_fail(h, wsi, 404, "unknown_provider",
				 "no webhook is configured for this provider", false, NULL);
	if (r->refusal.status)
		return http_fail(h, wsi, r->refusal.status, r->refusal.code, r->refusal.message,
				 r->refusal.close, r->refusal.allow);
	if (r->onfleet_check) {
		char qbuf[CONN_QUERY_MAX];
		const char *check;
		size_t check_len;
		query_t query;
		int rc = QUERY_TOO_MANY;

		if (conn_query(wsi, &query, qbuf, sizeof(qbuf)) != 0 ||
		    !query_arg(&query, "check", &check, &check_len, &rc))
			return http_fail(h, wsi, 400, "invalid_query", query_problem(rc, "check"),
					 false, NULL);
		if (!check)
			return http_fail(h, wsi, 400, "bad_request",
					 "Onfleet's validation request carries ?check=VALUE", false,
					 NULL);
		return http_reply(wsi, 200, "text/plain", check, check_len, false, NULL);
	}
	return http_body_start(h, wsi, s, http_provider_index(r->provider), false);
}

typedef struct http_headers {
	struct lws *wsi;
	unsigned used;
	char slot[8][1024]; /* copies handed to the adapter, valid during its call */
} http_headers_t;

/* adapter_request_t's header lookup: lower-case name, NUL-terminated value or NULL. */
static const char *http_header(void *ctx, const char *name)
{
	http_headers_t *h = ctx;
	char key[64];
	char *dst;
	int n;

	if (h->used == sizeof(h->slot) / sizeof(h->slot[0]))
		return NULL;
	dst = h->slot[h->used];
	if (!strcmp(name, "authorization")) {
		n = lws_hdr_copy(h->wsi, dst, sizeof(h->slot[0]), WSI_TOKEN_HTTP_AUTHORIZATION);
	} else {
		n = snprintf(key, sizeof(key), "%s:", name);
		if (n <= 0 || (size_t)n >= sizeof(key))
			return NULL;
		n = lws_hdr_custom_copy(h->wsi, dst, sizeof(h->slot[0]), key, n);
	}
	if (n < 0 || (n == 0 && !dst[0]))
		return NULL;
	h->used++;
	return dst;
}

bool http_webhook_finish(http_t *h, struct lws *wsi, http_session_t *s)
{
	http_headers_t *headers;
	const config_webhook_t *w;
	const adapter_ops_t *a;
	struct timespec wall;
	char uri[256];
	bool now;

	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_POST_URI) <= 13 ||
	    !(a = http_webhook_of(h, uri + 13, &w))) {
		ingest_fail(s->ingest, 404, "unknown_provider",
			    "no webhook is configured for this "
			    "provider");
		return true;
	}
	headers = calloc(1, sizeof(*headers));
	if (!headers) {
		ingest_fail(s->ingest, 503, "out_of_memory", "retry later");
		return true;
	}
	headers->wsi = wsi;
	clock_gettime(CLOCK_REALTIME, &wall);
	/* The receive time as ms since the epoch (uv_now is a monotonic clock, not a date). */
	now = ingest_finish_webhook(s->ingest, a, w->secret, w->secret_len, http_header, headers,
				    (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000,
				    (int64_t)h->cfg->webhook_replay_window_s * 1000,
				    w->header[0] ? w->header : NULL);
	free(headers);
	return now;
}

int http_ingest_write(http_t *h, struct lws *wsi, const ingest_t *ing, bool close)
{
	unsigned status;
	const char *body;
	size_t len;

	ingest_response(ing, &status, &body, &len);
	ingest_account(ing, h->metrics, status);
	return http_reply(wsi, status, "application/json", body, len, close, NULL);
}
