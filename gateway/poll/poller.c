/*
 * poll/poller.c - poll mode's scheduler (poller.h): per watched order, the
 * lease, the budget slot, the credentials, one GET, the parser and the
 * apply script, on one timer per order.
 *
 * An order's steps run one at a time (o->step): LEASE (acquire, which also
 * reads the source and the stored status), BUDGET (a slot of the
 * provider's budget), SLOT (waiting for it), TOKEN (waiting for Uber's
 * OAuth token), HTTP, APPLY.  Renewals of a held lease run beside them
 * (o->renew).  The timer fires at the earliest of: the next step
 * (o->due_ms), the reserved slot, the next renewal.
 */
#include "poller_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

#include <cjson/cJSON.h>

#include "log.h"

static void po_arm(poll_order_t *o);
static void po_step(poll_order_t *o);

static void po_set_state(poll_order_t *o, metrics_poll_state_t st)
{
	o->p->counts[o->state]--;
	o->p->counts[st]++;
	o->state = (uint8_t)st;
}

/* A jitter of +-10 % around ms. */
static uint64_t po_jitter(uint64_t ms)
{
	uint64_t span = ms / 5;

	return span ? ms - span / 2 + (uint64_t)random() % (span + 1) : ms;
}

/* --- the steps -------------------------------------------------------------------- */

static void po_noop_lease(void *arg, int rc, bool held, int64_t remaining_ms, const char *status,
			  const char *source, size_t source_len)
{
	(void)arg, (void)rc, (void)held, (void)remaining_ms, (void)status, (void)source,
	    (void)source_len;
}

static void po_noop_budget(void *arg, int rc, bool granted, int64_t delay_ms)
{
	(void)arg, (void)rc, (void)granted, (void)delay_ms;
}

/* Cancels what o has in flight. */
static void po_cancel(poll_order_t *o)
{
	if (o->req)
		broker_req_cancel(o->req);
	if (o->renew)
		broker_req_cancel(o->renew);
	if (o->http)
		poll_http_cancel(o->http);
	o->req = o->renew = NULL;
	o->http = NULL;
	if (o->step != STEP_NONE)
		o->step = STEP_NONE;
}

/* Gives up o's lease (fire and forget: it expires anyway). */
static void po_release(poll_order_t *o)
{
	if (!o->held)
		return;
	o->held = false;
	broker_lease(o->p->broker, o->id, o->p->node_id, BROKER_LEASE_RELEASE, 1, NULL,
		     po_noop_lease, NULL, NULL);
}

static void po_done(poll_order_t *o, const char *status)
{
	if (o->state == POLL_STATE_DONE)
		return;
	po_cancel(o);
	po_release(o);
	po_set_state(o, POLL_STATE_DONE);
	log_event(LOG_INFO, "poll_done", "provider=%s order=%s status=%s",
		  o->pv ? o->pv->cfg->provider : "-", o->id, status);
}

static bool po_terminal(const char *status)
{
	proto_status_t st;

	return status && proto_status_from_name(status, &st) == 0 && proto_status_is_terminal(st);
}

/* The provider the stored source names, with its ref in o->ref; NULL when none is polled here. */
static poll_provider_t *po_source(poll_order_t *o, const char *json, size_t len)
{
	cJSON *doc = json ? cJSON_ParseWithLength(json, len) : NULL;
	const cJSON *prov = cJSON_GetObjectItemCaseSensitive(doc, "provider");
	const cJSON *ref = cJSON_GetObjectItemCaseSensitive(doc, "ref");
	poll_provider_t *pv = NULL;

	/* "." and ".." would leave the resource's path (http/sources.c refuses them too). */
	if (cJSON_IsString(prov) && cJSON_IsString(ref) &&
	    strlen(ref->valuestring) < sizeof(o->ref) && strcmp(ref->valuestring, ".") &&
	    strcmp(ref->valuestring, ".."))
		for (unsigned i = 0; i < o->p->n_prov; i++)
			if (!strcmp(o->p->prov[i].cfg->provider, prov->valuestring))
				pv = &o->p->prov[i];
	if (pv)
		snprintf(o->ref, sizeof(o->ref), "%s", ref->valuestring);
	cJSON_Delete(doc);
	return pv;
}

/*
 * Drops the poll o has on its way to the provider (its GET, its reserved
 * slot, its wait for a token): the lease or the source changed under it.
 * An apply or budget request in Redis stays: their answers need no provider.
 */
static void po_abandon_poll(poll_order_t *o)
{
	if (o->http)
		poll_http_cancel(o->http);
	o->http = NULL;
	if (o->step == STEP_HTTP || o->step == STEP_SLOT || o->step == STEP_TOKEN)
		o->step = STEP_NONE;
}

/* What a lease answer (acquire or renew) says o is now. */
static void po_lease_answer(poll_order_t *o, int rc, bool held, int64_t remaining_ms,
			    const char *status, const char *source, size_t source_len)
{
	uint64_t now = uv_now(o->p->loop);
	poll_provider_t *pv, *old = o->pv;
	char old_ref[sizeof(o->ref)];
	bool was_held = o->held;

	if (rc != BROKER_OK) {
		/* Nothing known: keep what we believe and ask again soon. */
		o->due_ms = now + POLLER_RETRY_MS;
		if (o->held)
			o->renew_ms = now + POLLER_RETRY_MS;
		return;
	}
	if (po_terminal(status)) {
		o->held = held;
		po_done(o, status);
		return;
	}
	memcpy(old_ref, o->ref, sizeof(old_ref));
	pv = po_source(o, source, source_len);
	o->held = held && pv;
	if (!pv) {
		if (held) {
			o->held = true;
			po_release(o);
		}
		po_abandon_poll(o);
		o->pv = NULL;
		po_set_state(o, POLL_STATE_IDLE);
		o->due_ms = now + POLLER_SOURCE_RECHECK_MS;
		return;
	}
	if (old && (old != pv || strcmp(old_ref, o->ref))) {
		/* The source moved (another provider or delivery): the poll on its way was
		 * for the old one; poll the new one at once, with its own budget. */
		po_abandon_poll(o);
		o->failures = 0;
		o->due_ms = now;
	}
	o->pv = pv;
	if (!o->held) {
		/* Another node polls it: try again when its lease would end. */
		po_abandon_poll(o);
		po_set_state(o, POLL_STATE_WAITING);
		o->due_ms = now + (uint64_t)(remaining_ms > 0 ? remaining_ms : 0) + 20 +
			    (uint64_t)random() % 100;
		if (o->due_ms > now + pv->lease_ms)
			o->due_ms = now + pv->lease_ms;
		return;
	}
	o->renew_ms = now + pv->lease_ms / 3;
	if (!was_held) {
		po_metrics(o->p)->poll_leases++;
		log_event(LOG_INFO, "poll_lease_acquired", "provider=%s order=%s",
			  pv->cfg->provider, o->id);
		po_set_state(o, POLL_STATE_POLLING);
		o->failures = 0;
		o->due_ms = now; /* at once: the first poll fills the first snapshot */
	}
}

static void po_acquired(void *arg, int rc, bool held, int64_t remaining_ms, const char *status,
			const char *source, size_t source_len)
{
	poll_order_t *o = arg;

	o->req = NULL;
	o->step = STEP_NONE;
	po_lease_answer(o, rc, held, remaining_ms, status, source, source_len);
	po_arm(o);
}

static void po_renewed(void *arg, int rc, bool held, int64_t remaining_ms, const char *status,
		       const char *source, size_t source_len)
{
	poll_order_t *o = arg;

	o->renew = NULL;
	po_lease_answer(o, rc, held, remaining_ms, status, source, source_len);
	po_arm(o);
}

static void po_lease(poll_order_t *o, broker_lease_action_t action)
{
	/* Before the source is known, the longest lease of the providers polled here: a
	 * renewal at its third never races the lease's end. */
	unsigned ttl = o->pv ? o->pv->lease_ms : o->p->lease_max;
	broker_req_t **slot = action == BROKER_LEASE_RENEW ? &o->renew : &o->req;
	int rc = broker_lease(o->p->broker, o->id, o->p->node_id, action, ttl, o->p->providers,
			      action == BROKER_LEASE_RENEW ? po_renewed : po_acquired, o, slot);
	uint64_t now = uv_now(o->p->loop);

	if (rc != BROKER_OK) {
		*slot = NULL;
		if (action == BROKER_LEASE_RENEW)
			o->renew_ms = now + POLLER_RETRY_MS;
		else
			o->due_ms = now + POLLER_RETRY_MS;
		return;
	}
	if (action != BROKER_LEASE_RENEW)
		o->step = STEP_LEASE;
}

/* The wait after a failure (or failures in a row): max(interval, 1 s) doubling, capped. */
static uint64_t po_backoff(const poll_order_t *o)
{
	uint64_t ms = o->pv->cfg->interval_ms > 1000 ? o->pv->cfg->interval_ms : 1000;

	for (unsigned i = 1; i < o->failures && ms < POLLER_BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms < POLLER_BACKOFF_MAX_MS ? ms : POLLER_BACKOFF_MAX_MS;
}

/* A poll ended with result; the next one is due in next_ms (0: interval, or back-off). */
static void po_polled(poll_order_t *o, metrics_poll_result_t result, long status, uint64_t next_ms)
{
	uint64_t now = uv_now(o->p->loop);

	po_metrics(o->p)->poll_requests[o->pv->mi][result]++;
	o->step = STEP_NONE;
	if (result == POLL_OK) {
		o->failures = 0;
		o->retried_401 = false;
		o->due_ms = now + po_jitter(o->pv->cfg->interval_ms);
		return;
	}
	o->failures++;
	if (!next_ms)
		next_ms = po_backoff(o);
	o->due_ms = now + next_ms;
	log_event(LOG_WARN, "poll_failed",
		  "provider=%s order=%s result=%s status=%ld retry_in_ms=%llu",
		  o->pv->cfg->provider, o->id, metrics_poll_result_name(result), status,
		  (unsigned long long)next_ms);
}

static void po_applied(void *arg, int rc, broker_result_t result, const char *cursor,
		       const char *why)
{
	poll_order_t *o = arg;
	metrics_poll_update_t u = POLL_UPDATE_UNAVAILABLE;

	(void)cursor;
	o->req = NULL;
	o->step = STEP_NONE;
	if (rc == BROKER_OK)
		u = result == BROKER_APPLIED	 ? POLL_UPDATE_APPLIED
		    : result == BROKER_STALE	 ? POLL_UPDATE_STALE
		    : result == BROKER_DUPLICATE ? POLL_UPDATE_DUPLICATE
						 : POLL_UPDATE_WITHHELD;
	else
		log_event(LOG_WARN, "poll_apply_failed", "provider=%s order=%s error=\"%.200s\"",
			  metrics_provider_name(o->apply_mi), o->id, why ? why : "");
	/* The provider of the answer applied: o->pv may have changed (or gone) since. */
	po_metrics(o->p)->poll_updates[o->apply_mi][u]++;
	po_arm(o);
}

/* A 200's body: parsed, applied; a terminal status ends the polling. */
static void po_answer(poll_order_t *o, const poll_http_response_t *r)
{
	proto_update_t u;
	proto_error_t err = {0};
	char *json;
	int n = 0, rc;

	rc = o->pv->parser->parse(r->body, r->body_len, o->id, po_wall(o->p), &u, &n, &err);
	if (rc != 0) {
		po_polled(o, POLL_MALFORMED, r->status, 0);
		log_event(LOG_WARN, "poll_malformed",
			  "provider=%s order=%s field=%s reason=\"%.120s\"", o->pv->cfg->provider,
			  o->id, err.field[0] ? err.field : "-",
			  err.message[0] ? err.message : "-");
		return;
	}
	po_polled(o, POLL_OK, r->status, 0);
	if (n == 0) {
		po_metrics(o->p)->poll_updates[o->pv->mi][POLL_UPDATE_EMPTY]++;
		return;
	}
	json = proto_update_to_json(&u);
	o->apply_mi = o->pv->mi;
	if (!json || broker_apply(o->p->broker, o->id, json, strlen(json), po_applied, o,
				  &o->req) != BROKER_OK) {
		o->req = NULL;
		po_metrics(o->p)->poll_updates[o->pv->mi][POLL_UPDATE_UNAVAILABLE]++;
	} else {
		o->step = STEP_APPLY;
	}
	free(json);
	if (u.status != PROTO_STATUS_NONE && proto_status_is_terminal(u.status)) {
		/* The apply in flight stays: po_done cancels only the answer's wait. */
		broker_req_t *apply = o->req;

		o->req = NULL;
		o->step = STEP_NONE;
		po_done(o, proto_status_name(u.status));
		if (apply) {
			/* Its answer is still counted through po_applied: keep it, as o stays. */
			o->req = apply;
			o->step = STEP_APPLY;
		}
	}
}

static void po_http_done(void *arg, const poll_http_response_t *r)
{
	poll_order_t *o = arg;
	poll_provider_t *pv = o->pv;
	uint64_t hold;

	o->http = NULL;
	switch (r->error) {
	case POLL_HTTP_ERR_NONE:
		break;
	case POLL_HTTP_ERR_TIMEOUT:
		po_polled(o, POLL_TIMEOUT, 0, 0);
		goto out;
	case POLL_HTTP_ERR_TOO_LARGE:
		po_polled(o, POLL_MALFORMED, 0, 0);
		goto out;
	default:
		po_polled(o, POLL_CONNECT_ERROR, 0, 0);
		goto out;
	}
	if (r->status == 429) {
		pv->n429++;
		hold = POLLER_429_MIN_MS;
		for (unsigned i = 1; i < pv->n429 && hold < POLLER_BACKOFF_MAX_MS; i++)
			hold *= 2;
		/* In seconds first: a Retry-After of any size cannot wrap past the cap. */
		if (r->retry_after_s >= 0)
			hold = (uint64_t)(r->retry_after_s < 3600 ? r->retry_after_s : 3600) * 1000;
		pv->hold_until = uv_now(o->p->loop) + hold;
		/* Every node holds back: the provider counts the organisation, not the node. */
		broker_budget(o->p->broker, pv->cfg->provider, BROKER_BUDGET_HOLD, (unsigned)hold,
			      0, po_noop_budget, NULL, NULL);
		po_polled(o, POLL_RATE_LIMITED, r->status, hold ? hold : 1);
		goto out;
	}
	pv->n429 = 0;
	if (r->status == 401 || r->status == 403) {
		bool retry = pv->oauth && !o->retried_401;

		/* Only the token this request carried: a late 401 for an older token must not
		 * drop the new one (each drop is a request to a limited token endpoint). */
		if (pv->oauth && o->token_gen == pv->token_gen)
			poll_oauth_invalidate(pv->oauth);
		po_polled(o, POLL_UNAUTHORIZED, r->status, retry ? 1 : 0);
		o->retried_401 = retry;
		goto out;
	}
	if (r->status < 200 || r->status > 299) {
		po_polled(o, POLL_HTTP_ERROR, r->status, 0);
		goto out;
	}
	po_answer(o, r);
out:
	po_arm(o);
}

/* The reserved slot came: the GET, with the provider's credentials. */
static void po_send(poll_order_t *o)
{
	poll_provider_t *pv = o->pv;
	int rc;

	o->step = STEP_NONE;
	if (pv->hold_until > uv_now(o->p->loop)) {
		/* A slot reserved before this node's 429: ask for one past the hold instead.
		 * (Another node's reserved slots still come; the hold moves its later ones.) */
		o->due_ms = pv->hold_until;
		return;
	}
	rc = pp_request(pv, o->ref, po_http_done, o, &o->http);
	if (rc == 0) {
		o->token_gen = pv->token_gen;
		o->step = STEP_HTTP;
		return;
	}
	o->http = NULL;
	if (rc == 1) {
		o->step = STEP_TOKEN;
		/* Woken by the token's answer (poller_token_arrived); a bound in case none comes.
		 */
		o->due_ms = uv_now(o->p->loop) + POLL_OAUTH_BACKOFF_MIN_MS;
		return;
	}
	po_polled(o, rc == -1 ? POLL_UNAUTHORIZED : POLL_CONNECT_ERROR, 0, 0);
}

/* The orders of pv waiting for its token go on (a token came, or the wait ended). */
void poller_token_arrived(poll_provider_t *pv)
{
	poll_order_t *o, *tmp;

	/* Rare (once per token), so a pass over the watched orders costs nothing that matters. */
	HASH_ITER(hh, pv->p->orders, o, tmp)
	if (o->pv == pv && o->step == STEP_TOKEN) {
		o->step = STEP_NONE;
		o->due_ms = uv_now(pv->p->loop);
		po_arm(o);
	}
}

static void po_budget_done(void *arg, int rc, bool granted, int64_t delay_ms)
{
	poll_order_t *o = arg;
	uint64_t now = uv_now(o->p->loop);

	o->req = NULL;
	o->step = STEP_NONE;
	if (rc != BROKER_OK)
		o->due_ms = now + POLLER_RETRY_MS;
	else if (!granted)
		o->due_ms = now + (uint64_t)delay_ms; /* the next slot is that far: ask then */
	else if (o->state == POLL_STATE_POLLING) {
		o->step = STEP_SLOT;
		o->slot_ms = now + (uint64_t)delay_ms;
	}
	po_arm(o);
}

/* The next step of o, due now. */
static void po_step(poll_order_t *o)
{
	poll_provider_t *pv = o->pv;

	switch ((metrics_poll_state_t)o->state) {
	case POLL_STATE_IDLE:
	case POLL_STATE_WAITING:
		po_lease(o, BROKER_LEASE_ACQUIRE);
		return;
	case POLL_STATE_POLLING:
		/* A slot however far (up to POLLER_QUEUE_MAX_MS): each order holds one
		 * reservation at a time, so past the budget the orders take turns
		 * (each polled every n x spacing) instead of some starving. */
		if (broker_budget(o->p->broker, pv->cfg->provider, BROKER_BUDGET_TAKE,
				  pv->spacing_us, POLLER_QUEUE_MAX_MS, po_budget_done, o,
				  &o->req) != BROKER_OK) {
			o->req = NULL;
			o->due_ms = uv_now(o->p->loop) + POLLER_RETRY_MS;
			return;
		}
		o->step = STEP_BUDGET;
		return;
	case POLL_STATE_DONE:
	case POLL_STATE__COUNT:
		return;
	}
}

static void po_fire(uv_timer_t *t)
{
	poll_order_t *o = t->data;
	uint64_t now = uv_now(o->p->loop);

	if (o->state == POLL_STATE_DONE)
		return;
	if (o->held && !o->renew && now >= o->renew_ms)
		po_lease(o, BROKER_LEASE_RENEW);
	if (o->step == STEP_SLOT && now >= o->slot_ms)
		po_send(o);
	else if ((o->step == STEP_NONE || o->step == STEP_TOKEN) && now >= o->due_ms)
		po_step(o);
	po_arm(o);
}

/* Starts o's timer for the earliest of what it waits for. */
static void po_arm(poll_order_t *o)
{
	uint64_t now = uv_now(o->p->loop), at = UINT64_MAX;

	if (!o->watched)
		return;
	if (o->state != POLL_STATE_DONE) {
		if (o->step == STEP_NONE || o->step == STEP_TOKEN)
			at = o->due_ms;
		else if (o->step == STEP_SLOT)
			at = o->slot_ms;
		if (o->held && !o->renew && o->renew_ms < at)
			at = o->renew_ms;
	}
	if (at == UINT64_MAX) {
		uv_timer_stop(&o->timer);
		return;
	}
	uv_timer_start(&o->timer, po_fire, at > now ? at - now : 0, 0);
}

/* --- the poller ------------------------------------------------------------------- */

poller_t *poller_new(uv_loop_t *loop, broker_t *broker, const config_t *cfg,
		     metrics_t *const *metrics, const int64_t *wall_offset_ms)
{
	poller_t *p = calloc(1, sizeof(*p));
	char host[64] = "node";
	unsigned char rnd[6] = {0};
	size_t used = 0;

	if (!p)
		return NULL;
	p->loop = loop;
	p->broker = broker;
	p->cfg = cfg;
	p->metrics = metrics;
	p->wall_offset_ms = wall_offset_ms;
	/* A node id no other process shares: host, pid and 48 random bits. */
	gethostname(host, sizeof(host) - 1);
	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		memset(rnd, 0, sizeof(rnd));
	snprintf(p->node_id, sizeof(p->node_id), "%.60s:%d:%02x%02x%02x%02x%02x%02x", host,
		 (int)getpid(), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
	srandom((unsigned)(rnd[0] | rnd[1] << 8 | rnd[2] << 16) ^ (unsigned)getpid());
	for (unsigned i = 0; i < cfg->n_polls; i++) {
		poll_provider_t *pv = &p->prov[p->n_prov];

		if (pp_init(p, pv, &cfg->polls[i])) {
			log_event(LOG_ERROR, "poll_init_failed", "provider=%s",
				  cfg->polls[i].provider);
			p->n_prov++;
			poller_free(p);
			return NULL;
		}
		if (pv->lease_ms > p->lease_max)
			p->lease_max = pv->lease_ms;
		used += (size_t)snprintf(p->providers + used, sizeof(p->providers) - used, "%s%s",
					 p->n_prov ? "," : "", pv->cfg->provider);
		p->n_prov++;
	}
	return p;
}

void poller_watch(poller_t *p, const char *id, size_t len)
{
	poll_order_t *o;

	if (p->stopping || !len || len > PROTO_ORDER_ID_MAX)
		return;
	HASH_FIND(hh, p->orders, id, len, o);
	if (o)
		return;
	o = calloc(1, sizeof(*o));
	if (!o) {
		log_event(LOG_ERROR, "poll_out_of_memory", "order=%.*s", (int)len, id);
		return;
	}
	o->p = p;
	memcpy(o->id, id, len);
	o->watched = true;
	o->state = POLL_STATE_IDLE;
	p->counts[POLL_STATE_IDLE]++;
	uv_timer_init(p->loop, &o->timer);
	o->timer.data = o;
	p->n_open++;
	HASH_ADD(hh, p->orders, id, len, o);
	o->due_ms = uv_now(p->loop);
	po_step(o);
	po_arm(o);
}

static void po_closed(uv_handle_t *h)
{
	poll_order_t *o = h->data;
	poller_t *p = o->p;

	free(o);
	if (--p->n_open == 0 && p->stopping && p->done)
		p->done(p->done_arg);
}

/* Stops o and frees it once its timer is closed. */
static void po_forget(poll_order_t *o)
{
	poller_t *p = o->p;

	HASH_DEL(p->orders, o);
	p->counts[o->state]--;
	o->watched = false;
	/* An acquire in flight may take the lease after all: release it anyway (the script
	 * deletes only this node's lease). */
	if (o->step == STEP_LEASE)
		o->held = true;
	po_cancel(o);
	po_release(o);
	uv_close((uv_handle_t *)&o->timer, po_closed);
}

void poller_unwatch(poller_t *p, const char *id, size_t len)
{
	poll_order_t *o;

	HASH_FIND(hh, p->orders, id, len, o);
	if (o)
		po_forget(o);
}

void poller_counts(const poller_t *p, uint64_t out[POLL_STATE__COUNT])
{
	for (int i = 0; i < POLL_STATE__COUNT; i++)
		out[i] = p ? p->counts[i] : 0;
}

static void po_http_closed(void *arg)
{
	poller_t *p = arg;

	if (--p->n_open == 0 && p->done)
		p->done(p->done_arg);
}

void poller_stop(poller_t *p, void (*done)(void *arg), void *arg)
{
	poll_order_t *o, *tmp;

	p->stopping = true;
	p->done = done;
	p->done_arg = arg;
	HASH_ITER(hh, p->orders, o, tmp)
	po_forget(o);
	for (unsigned i = 0; i < p->n_prov; i++) {
		if (p->prov[i].token_req)
			poll_http_cancel(p->prov[i].token_req);
		p->prov[i].token_req = NULL;
		poll_http_close(p->prov[i].http, po_http_closed, p);
	}
	if (p->n_open == 0 && done)
		done(arg);
}

void poller_free(poller_t *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->n_prov; i++)
		pp_free(&p->prov[i]);
	free(p);
}
