/*
 * http/sources.c - /v1/orders/{ID}/source: where poll mode finds an order's
 * courier data.  PUT binds the order to a provider's delivery
 * ({"provider": NAME, "ref": DELIVERY_ID}), GET answers what is bound (for
 * ops), DELETE unbinds it.  Each takes the ingest key, as POST /v1/updates
 * does; the source is stored in Redis by the broker (broker_source_*) under
 * the order's hash tag, so any node can poll it.
 *
 * A PUT's body is read like an update's (session.c), validated here at the
 * end of the loop turn (http_source_finish), and what is stored is the
 * document this file writes, never the client's bytes:
 *   {"order_id":ID,"provider":NAME,"ref":REF,"set_at":MS}
 * GET answers that document verbatim.
 */
#include "http_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "adapter.h"
#include "http_reply.h"
#include "proto.h"

/* A source document is a few short strings: a body past this is not one. */
#define SOURCE_BODY_MAX 4096
/* The provider's delivery id: 1-128 printable ASCII characters. */
#define SOURCE_REF_MAX 128

/* One request to /v1/orders/{ID}/source, from its head to its answer. */
struct source_req {
	http_session_t *s; /* whose answer it becomes */
	broker_req_t *req; /* while in Redis; owned by the broker */
	router_method_t m; /* GET, PUT or DELETE */
	char *body;	   /* is malloc'd: a PUT's body while it is read (body_cap bytes) */
	size_t body_len;   /* bytes read so far */
	size_t body_cap;   /* its Content-Length */
	char *answer;	   /* is malloc'd: the answer's body; NULL for a 204 */
	size_t answer_len;
	unsigned status;
	char order_id[PROTO_ORDER_ID_MAX + 1];
};

void http_source_free(source_req_t *r)
{
	if (!r)
		return;
	if (r->req)
		broker_req_cancel(r->req);
	free(r->body);
	free(r->answer);
	free(r);
}

/* The JSON error of an answer, naming field when it is not NULL. */
static void source_set_error(source_req_t *r, unsigned status, const char *code, const char *field,
			     const char *message)
{
	cJSON *o = cJSON_CreateObject();

	free(r->answer);
	r->answer = NULL;
	r->status = status;
	if (o && cJSON_AddStringToObject(o, "error", code) &&
	    cJSON_AddStringToObject(o, "message", message) &&
	    (!field || cJSON_AddStringToObject(o, "field", field)))
		r->answer = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	r->answer_len = r->answer ? strlen(r->answer) : 0;
}

/* The broker answered: the status and body of the answer, then the session writes it. */
static void source_done(void *arg, int rc, bool found, const char *json, size_t len)
{
	source_req_t *r = arg;

	r->req = NULL;
	if (rc != BROKER_OK) {
		source_set_error(r, 503, "redis_unavailable", NULL,
				 "the source could not be read or written; retry later");
	} else if (!found) {
		source_set_error(r, 404, "no_source", NULL, "no source is set for this order");
	} else if (r->m == ROUTER_METHOD_GET) {
		r->answer = malloc(len ? len : 1);
		if (r->answer) {
			memcpy(r->answer, json, len);
			r->answer_len = len;
			r->status = 200;
		} else {
			source_set_error(r, 503, "out_of_memory", NULL, "retry later");
		}
	} else {
		r->status = 204;
	}
	http_ready(r->s->wsi, r->s);
}

/* The ingest key, then GET and DELETE go to Redis and PUT starts reading its body. */
int http_source_start(http_t *h, struct lws *wsi, http_session_t *s, const router_match_t *rm)
{
	router_method_t m = http_method(wsi);
	source_req_t *r;
	size_t len = 0;
	int rc;

	/* A PUT's body may follow unread: every refusal of it closes. */
	if (!http_authorized(h, wsi))
		return http_fail(h, wsi, 401, "unauthorized",
				 "missing or wrong `Authorization: Bearer KEY`",
				 m == ROUTER_METHOD_PUT, NULL);
	if (m == ROUTER_METHOD_PUT && !http_json_length(h, wsi, SOURCE_BODY_MAX, &len, &rc))
		return rc;
	r = calloc(1, sizeof(*r));
	if (r && len)
		r->body = malloc(len);
	if (!r || (len && !r->body)) {
		free(r);
		return http_fail(h, wsi, 503, "out_of_memory", "retry later", true, NULL);
	}
	r->s = s;
	r->m = m;
	r->body_cap = len;
	memcpy(r->order_id, rm->order_id, rm->order_id_len);
	r->order_id[rm->order_id_len] = '\0';
	s->source = r;
	if (m == ROUTER_METHOD_PUT) {
		s->phase = HTTP_BODY;
		s->body_seen = 0;
		return 0; /* the body follows in LWS_CALLBACK_HTTP_BODY */
	}
	rc = m == ROUTER_METHOD_GET
		 ? broker_source_get(h->broker, r->order_id, source_done, r, &r->req)
		 : broker_source_del(h->broker, r->order_id, source_done, r, &r->req);
	if (rc != BROKER_OK) {
		s->source = NULL;
		http_source_free(r);
		return http_fail(h, wsi, 503, "redis_unavailable",
				 "the state store is unreachable; retry later", false, NULL);
	}
	if (m == ROUTER_METHOD_DELETE) {
		/* A write: the drain waits for its answer, as for a PUT's. */
		s->in_redis = 1;
		h->n_ingest++;
	}
	s->phase = HTTP_WAITING;
	http_hold(wsi, s);
	return 0;
}

int http_source_body(source_req_t *r, const void *in, size_t len)
{
	if (len > r->body_cap - r->body_len)
		return -1;
	memcpy(r->body + r->body_len, in, len);
	r->body_len += len;
	return 0;
}

/* ref is 1-128 printable ASCII characters, and not "." or "..": the poller puts it in a URL's
 * path, where those would name the resource's parent (Onfleet: the whole worker list). */
static bool source_ref_valid(const char *ref)
{
	size_t n = strlen(ref);

	if (n < 1 || n > SOURCE_REF_MAX || !strcmp(ref, ".") || !strcmp(ref, ".."))
		return false;
	for (size_t i = 0; i < n; i++)
		if (ref[i] < 0x20 || ref[i] > 0x7e)
			return false;
	return true;
}

/* "provider: must be one of a, b, c" into msg. */
static void source_provider_message(char *msg, size_t size)
{
	const adapter_ops_t *const *all = adapter_all();
	size_t used = (size_t)snprintf(msg, size, "provider: must be one of");

	for (unsigned i = 0; all[i] && used < size; i++)
		used +=
		    (size_t)snprintf(msg + used, size - used, "%s %s", i ? "," : "", all[i]->name);
}

/*
 * The document to store for a valid body, malloc'd; NULL with r's 400 (or
 * 503) answer set otherwise.  Unknown fields are ignored, as in an update.
 */
static char *source_document(source_req_t *r)
{
	cJSON *in = cJSON_ParseWithLength(r->body, r->body_len), *out = NULL;
	const cJSON *provider, *ref;
	struct timespec wall;
	char msg[256], *doc = NULL;

	if (!cJSON_IsObject(in)) {
		source_set_error(
		    r, 400, "malformed_json", NULL,
		    "the body must be a JSON object {\"provider\": NAME, \"ref\": ID}");
		goto out;
	}
	provider = cJSON_GetObjectItemCaseSensitive(in, "provider");
	ref = cJSON_GetObjectItemCaseSensitive(in, "ref");
	if (!cJSON_IsString(provider) || !adapter_find(provider->valuestring)) {
		source_provider_message(msg, sizeof(msg));
		source_set_error(r, 400, "invalid_source", "provider", msg);
		goto out;
	}
	if (!cJSON_IsString(ref) || !source_ref_valid(ref->valuestring)) {
		source_set_error(r, 400, "invalid_source", "ref",
				 "ref: must be a string of 1-128 printable ASCII characters, not "
				 "\".\" or \"..\"");
		goto out;
	}
	clock_gettime(CLOCK_REALTIME, &wall);
	out = cJSON_CreateObject();
	if (out && cJSON_AddStringToObject(out, "order_id", r->order_id) &&
	    cJSON_AddStringToObject(out, "provider", provider->valuestring) &&
	    cJSON_AddStringToObject(out, "ref", ref->valuestring) &&
	    cJSON_AddNumberToObject(out, "set_at",
				    (double)((int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000)))
		doc = cJSON_PrintUnformatted(out);
	if (!doc)
		source_set_error(r, 503, "out_of_memory", NULL, "retry later");
out:
	cJSON_Delete(in);
	cJSON_Delete(out);
	return doc;
}

bool http_source_finish(http_t *h, http_session_t *s)
{
	source_req_t *r = s->source;
	char *doc;
	int rc;

	if (r->body_len != r->body_cap) {
		source_set_error(r, 400, "bad_request", NULL,
				 "the body is shorter than its Content-Length");
		return true;
	}
	doc = source_document(r);
	if (!doc)
		return true;
	rc = broker_source_set(h->broker, r->order_id, doc, strlen(doc), source_done, r, &r->req);
	free(doc);
	if (rc != BROKER_OK) {
		source_set_error(r, 503, "redis_unavailable", NULL,
				 "the state store is unreachable; retry later");
		return true;
	}
	return false;
}

int http_source_write(struct lws *wsi, source_req_t *r, bool close)
{
	int rc = http_reply(wsi, r->status, "application/json", r->answer ? r->answer : "",
			    r->answer ? r->answer_len : 0, close, NULL);

	http_source_free(r);
	return rc;
}
