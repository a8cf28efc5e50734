/*
 * poll/poll_provider.c - one polled provider (poller_private.h): its HTTP
 * client on the loop, its credentials as it documents them (poll_auth.h:
 * Uber Direct's OAuth2 token, fetched and refreshed here; DoorDash Drive's
 * self-minted JWT; Onfleet's Basic), and the URL of the resource a source's
 * ref names.  Secrets go into request headers only, never into a log.
 */
#include "poller_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static void po_token_start(poll_provider_t *pv);

int pp_init(poller_t *p, poll_provider_t *pv, const config_poll_t *c)
{
	const poll_http_config_t hc = {
	    .connect_timeout_ms = c->connect_timeout_ms,
	    .timeout_ms = c->timeout_ms,
	    .body_max = POLLER_BODY_MAX,
	    .ca_file = c->ca_file,
	};

	pv->p = p;
	pv->cfg = c;
	pv->parser = poll_parser_find(c->provider);
	pv->mi = metrics_provider_index(c->provider);
	pv->lease_ms =
	    c->lease_ms ? c->lease_ms : (3 * c->interval_ms > 2000 ? 3 * c->interval_ms : 2000);
	/* 10 % under the budget: timer and network jitter never push the provider's count over. */
	pv->spacing_us = (unsigned)(1100000ULL / c->budget);
	if (!pv->parser)
		return -1;
	pv->http = poll_http_new(p->loop, &hc);
	if (!pv->http)
		return -1;
	p->n_open++;
	if (!strcmp(c->provider, "uber_direct")) {
		pv->oauth = calloc(1, sizeof(*pv->oauth));
		if (!pv->oauth)
			return -1;
		poll_oauth_init(pv->oauth);
	} else if (!strcmp(c->provider, "onfleet")) {
		if (poll_onfleet_authorization(c->secret, pv->basic, sizeof(pv->basic)) < 0 ||
		    strlen(pv->basic) >= sizeof(pv->basic)) {
			log_event(LOG_ERROR, "poll_config",
				  "provider=onfleet error=\"the api key "
				  "cannot be sent as HTTP Basic\"");
			return -1;
		}
	}
	return 0;
}

static void po_token_done(void *arg, const poll_http_response_t *r)
{
	poll_provider_t *pv = arg;
	int64_t now = po_wall(pv->p);
	proto_error_t err = {0};
	bool ok = false;

	pv->token_req = NULL;
	if (r->error != POLL_HTTP_ERR_NONE) {
		poll_oauth_fetch_failed(pv->oauth, now, r->retry_after_s);
		log_event(LOG_WARN, "poll_token_failed", "provider=%s result=%s why=\"%.200s\"",
			  pv->cfg->provider, poll_http_error_name(r->error), r->why ? r->why : "");
	} else if (poll_oauth_token_response(pv->oauth, now, r->status, r->retry_after_s, r->body,
					     r->body_len, &err) == POLL_AUTH_OK) {
		ok = true;
		pv->token_gen++;
	} else {
		/* The field, never the body: it could hold a secret. */
		log_event(LOG_WARN, "poll_token_failed", "provider=%s status=%ld field=%s",
			  pv->cfg->provider, r->status, err.field[0] ? err.field : "?");
	}
	po_metrics(pv->p)->poll_tokens[pv->mi][ok ? 0 : 1]++;
	poller_token_arrived(pv);
}

static void po_token_start(poll_provider_t *pv)
{
	const char *headers[] = {"Content-Type: application/x-www-form-urlencoded",
				 "Accept: application/json"};
	const config_poll_t *c = pv->cfg;
	char body[2048];
	int len = poll_oauth_request_body(c->client_id, c->secret, c->scope, body, sizeof(body));

	if (len < 0 || (size_t)len >= sizeof(body) ||
	    poll_http_request(pv->http, "POST", c->token_url, headers, 2, body, (size_t)len,
			      po_token_done, pv, &pv->token_req) != POLL_HTTP_OK) {
		pv->token_req = NULL;
		poll_oauth_fetch_failed(pv->oauth, po_wall(pv->p), -1);
		po_metrics(pv->p)->poll_tokens[pv->mi][1]++;
	}
	explicit_bzero(body, sizeof(body));
}

/*
 * The Authorization header line of pv's next request into dst; 0, or 1 when
 * the request must wait for a token (the order waits in STEP_TOKEN), or -1.
 */
static int po_authorization(poll_provider_t *pv, char *dst, size_t cap)
{
	const config_poll_t *c = pv->cfg;
	int64_t now = po_wall(pv->p);
	proto_error_t err = {0};
	const char *jwt;
	int n;

	if (pv->oauth) {
		switch (poll_oauth_step(pv->oauth, now)) {
		case POLL_OAUTH_USE_AND_REFRESH:
			po_token_start(pv); /* the current token is still good: use it meanwhile */
			__attribute__((fallthrough));
		case POLL_OAUTH_USE:
			n = snprintf(dst, cap, "Authorization: ");
			return poll_oauth_authorization(pv->oauth, dst + n, cap - (size_t)n) < 0
				   ? -1
				   : 0;
		case POLL_OAUTH_FETCH:
			po_token_start(pv);
			return 1;
		case POLL_OAUTH_WAIT:
			return 1;
		}
		return -1;
	}
	if (pv->basic[0]) {
		n = snprintf(dst, cap, "Authorization: %s", pv->basic);
		return n > 0 && (size_t)n < cap ? 0 : -1;
	}
	jwt = poll_doordash_jwt_get(&pv->jwt, c->developer_id, c->key_id, c->secret, now, 0, &err);
	if (!jwt) {
		log_event(LOG_ERROR, "poll_auth_failed", "provider=%s field=%s", c->provider,
			  err.field[0] ? err.field : "?");
		return -1;
	}
	n = snprintf(dst, cap, "Authorization: Bearer %s", jwt);
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* ref percent-encoded (all but A-Z a-z 0-9 - . _ ~) into dst, which holds 3 x strlen(ref) + 1. */
static void pp_encode(char *dst, const char *ref)
{
	size_t j = 0;

	for (const unsigned char *c = (const unsigned char *)ref; *c; c++) {
		if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
		    (*c >= '0' && *c <= '9') || *c == '-' || *c == '.' || *c == '_' || *c == '~')
			dst[j++] = (char)*c;
		else
			j += (size_t)snprintf(dst + j, 4, "%%%02X", *c);
	}
	dst[j] = '\0';
}

int pp_request(poll_provider_t *pv, const char *ref, poll_http_done_fn *fn, void *arg,
	       poll_http_req_t **req)
{
	char url[CONFIG_URL_MAX + 512], enc[3 * 160 + 1], auth[POLL_OAUTH_TOKEN_MAX + 64];
	const char *headers[3] = {auth, "Accept: application/json",
				  "User-Agent: trackgated/" TRACKGATE_VERSION};
	int rc, n;

	if (strlen(ref) >= 160)
		return -2;
	rc = po_authorization(pv, auth, sizeof(auth));
	if (rc != 0)
		return rc;
	/* The ref is the provider's id: percent-encoded into the path, whatever it holds. */
	pp_encode(enc, ref);
	n = snprintf(url, sizeof(url), "%s", pv->cfg->base_url);
	if (pv->oauth)
		n += snprintf(url + n, sizeof(url) - (size_t)n, pv->parser->path,
			      pv->cfg->customer_id, enc);
	else
		n += snprintf(url + n, sizeof(url) - (size_t)n, pv->parser->path, enc);
	rc = (size_t)n < sizeof(url) && poll_http_request(pv->http, "GET", url, headers, 3, NULL, 0,
							  fn, arg, req) == POLL_HTTP_OK
		 ? 0
		 : -2;
	explicit_bzero(auth, sizeof(auth));
	return rc;
}

void pp_free(poll_provider_t *pv)
{
	if (pv->http)
		poll_http_free(pv->http);
	pv->http = NULL;
	if (pv->oauth)
		explicit_bzero(pv->oauth, sizeof(*pv->oauth));
	free(pv->oauth);
	pv->oauth = NULL;
	explicit_bzero(&pv->jwt, sizeof(pv->jwt));
}
