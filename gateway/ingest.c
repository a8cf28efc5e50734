#include "ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "http_reply.h"
#include "log.h"
#include "proto.h"

typedef enum item_state {
	ITEM_INVALID = 0, /* failed validation: err holds why */
	ITEM_PENDING,	  /* sent to Redis */
	ITEM_DONE,	  /* Redis answered: result / cursor */
	ITEM_FAILED,	  /* Redis could not take it */
} item_state_t;

typedef struct ingest_item {
	struct ingest *in; /* the request this item belongs to */
	item_state_t state;
	broker_result_t result;
	broker_req_t *req; /* while PENDING; owned by the broker */
	char order_id[PROTO_ORDER_ID_MAX + 1];
	char cursor[PROTO_CURSOR_MAX + 1];
	proto_error_t err;
} ingest_item_t;

struct ingest {
	broker_t *broker;
	ingest_ready_fn *ready;
	void *ready_arg;
	char *body; /* is malloc'd: the request body */
	size_t body_len;
	size_t body_cap;
	ingest_item_t *items; /* is malloc'd: one per update */
	unsigned n_items;
	unsigned n_pending;
	bool batch;   /* the body was an array */
	bool webhook; /* POST /v1/webhooks/{provider} */
	unsigned status;
	unsigned provider; /* metrics index: 0 = /v1/updates, else the adapter's */
	unsigned results[RESULT__COUNT];
	uint64_t start_ns; /* uv_hrtime() when the body was complete */
	char *response;	   /* is malloc'd: the answer's body */
	size_t response_len;
};

ingest_t *ingest_new(broker_t *broker, size_t content_length, ingest_ready_fn *ready, void *arg)
{
	ingest_t *in = calloc(1, sizeof(*in));

	if (!in)
		return NULL;
	in->body = malloc(content_length + 1);
	if (!in->body) {
		free(in);
		return NULL;
	}
	in->body_cap = content_length;
	in->broker = broker;
	in->ready = ready;
	in->ready_arg = arg;
	return in;
}

int ingest_body(ingest_t *in, const void *p, size_t len)
{
	if (len > in->body_cap - in->body_len)
		return -1;
	memcpy(in->body + in->body_len, p, len);
	in->body_len += len;
	return 0;
}

static void ingest_set_error(ingest_t *in, unsigned status, const char *code, const char *message)
{
	free(in->response);
	in->status = status;
	in->response = http_error_body(code, message);
	in->response_len = in->response ? strlen(in->response) : 0;
}

/* Builds {"results":[...], counts} from the items, for 202 and 503 alike. */
static void ingest_build_response(ingest_t *in)
{
	cJSON *root = cJSON_CreateObject(), *results, *item;
	unsigned counts[BROKER_WITHHELD + 1] = {0}, invalid = 0, failed = 0;
	char *text;

	if (!root)
		goto oom;
	if (in->status == 503) {
		cJSON_AddStringToObject(root, "error", "redis_unavailable");
		cJSON_AddStringToObject(root, "message",
					"Redis could not store every update; retry the ones "
					"whose result is \"unavailable\"");
	}
	results = cJSON_AddArrayToObject(root, "results");
	if (!results)
		goto oom;
	for (unsigned i = 0; i < in->n_items; i++) {
		ingest_item_t *it = &in->items[i];

		item = cJSON_CreateObject();
		if (!item)
			goto oom;
		cJSON_AddItemToArray(results, item);
		cJSON_AddNumberToObject(item, "index", i);
		if (it->order_id[0])
			cJSON_AddStringToObject(item, "order_id", it->order_id);
		switch (it->state) {
		case ITEM_INVALID:
			invalid++;
			cJSON_AddStringToObject(item, "result", "invalid");
			cJSON_AddStringToObject(item, "field", it->err.field);
			cJSON_AddStringToObject(item, "message", it->err.message);
			break;
		case ITEM_DONE:
			counts[it->result]++;
			cJSON_AddStringToObject(item, "result", broker_result_name(it->result));
			if (it->result == BROKER_APPLIED)
				cJSON_AddStringToObject(item, "cursor", it->cursor);
			break;
		case ITEM_PENDING:
		case ITEM_FAILED:
			failed++;
			cJSON_AddStringToObject(item, "result", "unavailable");
			break;
		}
	}
	cJSON_AddNumberToObject(root, "applied", counts[BROKER_APPLIED]);
	cJSON_AddNumberToObject(root, "stale", counts[BROKER_STALE]);
	cJSON_AddNumberToObject(root, "duplicate", counts[BROKER_DUPLICATE]);
	if (counts[BROKER_WITHHELD])
		cJSON_AddNumberToObject(root, "withheld", counts[BROKER_WITHHELD]);
	cJSON_AddNumberToObject(root, "invalid", invalid);
	if (failed)
		cJSON_AddNumberToObject(root, "unavailable", failed);
	text = cJSON_PrintUnformatted(root);
	if (!text)
		goto oom;
	cJSON_Delete(root);
	free(in->response);
	in->response = text;
	in->response_len = strlen(text);
	in->results[RESULT_APPLIED] = counts[BROKER_APPLIED];
	in->results[RESULT_STALE] = counts[BROKER_STALE];
	in->results[RESULT_DUPLICATE] = counts[BROKER_DUPLICATE];
	in->results[RESULT_WITHHELD] = counts[BROKER_WITHHELD];
	in->results[RESULT_INVALID] = invalid;
	in->results[RESULT_UNAVAILABLE] = failed;
	log_event(LOG_INFO, in->webhook ? "webhook" : "ingest",
		  "status=%u items=%u applied=%u stale=%u duplicate=%u "
		  "withheld=%u invalid=%u unavailable=%u",
		  in->status, in->n_items, counts[BROKER_APPLIED], counts[BROKER_STALE],
		  counts[BROKER_DUPLICATE], counts[BROKER_WITHHELD], invalid, failed);
	return;
oom:
	cJSON_Delete(root);
	ingest_set_error(in, 503, "out_of_memory", "the gateway ran out of memory; retry");
}

/* Every item has its answer: settle the status and the body. */
static void ingest_complete(ingest_t *in)
{
	bool failed = false;

	for (unsigned i = 0; i < in->n_items; i++)
		if (in->items[i].state == ITEM_FAILED || in->items[i].state == ITEM_PENDING)
			failed = true;
	/* Providers expect 200 from a webhook; /v1/updates answers 202. */
	in->status = failed ? 503 : in->webhook ? 200 : 202;
	ingest_build_response(in);
}

static void ingest_applied(void *arg, int rc, broker_result_t result, const char *cursor,
			   const char *why)
{
	ingest_item_t *it = arg;
	ingest_t *in;

	it->req = NULL;
	if (rc == BROKER_OK) {
		it->state = ITEM_DONE;
		it->result = result;
		if (cursor)
			snprintf(it->cursor, sizeof(it->cursor), "%s", cursor);
	} else {
		it->state = ITEM_FAILED;
	}
	in = it->in;
	(void)why;
	if (--in->n_pending == 0) {
		ingest_complete(in);
		in->ready(in->ready_arg);
	}
}

/* Sends one valid update to Redis; the item ends PENDING (answered later) or FAILED. */
static void ingest_submit(ingest_t *in, ingest_item_t *it, const proto_update_t *u)
{
	char *json;
	int rc;

	memcpy(it->order_id, u->order_id, sizeof(it->order_id));
	json = proto_update_to_json(u);
	if (!json) {
		it->state = ITEM_FAILED;
		return;
	}
	rc =
	    broker_apply(in->broker, u->order_id, json, strlen(json), ingest_applied, it, &it->req);
	free(json);
	if (rc != BROKER_OK) {
		it->state = ITEM_FAILED;
		return;
	}
	it->state = ITEM_PENDING;
	in->n_pending++;
}

/* Waits for Redis when something was sent, else settles the answer now. */
static bool ingest_wait_or_complete(ingest_t *in)
{
	if (in->n_pending)
		return false;
	ingest_complete(in);
	return true;
}

bool ingest_finish_webhook(ingest_t *in, const adapter_ops_t *adapter, const unsigned char *secret,
			   size_t secret_len, const char *(*header)(void *, const char *),
			   void *header_ctx, int64_t now_ms, int64_t replay_window_ms,
			   const char *credential_header)
{
	adapter_request_t req = {
	    .body = in->body,
	    .body_len = in->body_len,
	    .header = header,
	    .header_ctx = header_ctx,
	    .secret = secret,
	    .secret_len = secret_len,
	    .now_ms = now_ms,
	    .replay_window_ms = replay_window_ms,
	    .credential_header = credential_header,
	};
	proto_update_t updates[ADAPTER_UPDATES_MAX];
	proto_error_t err = {{0}, {0}};
	char msg[sizeof(err.field) + sizeof(err.message) + 4];
	int n = 0, rc;

	in->webhook = true;
	in->start_ns = uv_hrtime();
	for (const adapter_ops_t *const *all = adapter_all(); all[in->provider]; in->provider++)
		if (all[in->provider] == adapter)
			break;
	in->provider++; /* 0 is /v1/updates */
	/* The signature is checked on the raw bytes before anything is parsed. */
	rc = adapter->verify(&req, &err);
	if (rc != ADAPTER_OK) {
		/* EAUTH: a forgery; EINVAL: authentic but unreadable; ENOMEM: retry. */
		unsigned status = rc == ADAPTER_EAUTH ? 401 : rc == ADAPTER_ENOMEM ? 503 : 400;

		snprintf(msg, sizeof(msg), "%s%s%s", err.field, err.field[0] ? ": " : "",
			 err.message[0] ? err.message : "missing or wrong signature");
		ingest_set_error(in, status,
				 status == 401	 ? "unauthorized"
				 : status == 503 ? "out_of_memory"
						 : "invalid_webhook",
				 msg);
		log_event(LOG_INFO, "webhook", "provider=%s status=%u", adapter->name, status);
		return true;
	}
	rc = adapter->parse(&req, updates, ADAPTER_UPDATES_MAX, &n, &err);
	if (rc != ADAPTER_OK || n < 0 || n > ADAPTER_UPDATES_MAX) {
		snprintf(msg, sizeof(msg), "%s%s%s", err.field, err.field[0] ? ": " : "",
			 err.message);
		ingest_set_error(in, rc == ADAPTER_ENOMEM ? 503 : 400, "invalid_webhook", msg);
		log_event(LOG_INFO, "webhook", "provider=%s status=400 field=%s", adapter->name,
			  err.field);
		return true;
	}
	if (n == 0) {
		/* Well-formed, nothing to track: 200 so the provider does not retry it. */
		const char *reply = adapter_ignored_reply(adapter);

		in->status = 200;
		free(in->response);
		in->response = strdup(reply ? reply : "{\"ignored\":true,\"results\":[]}");
		in->response_len = in->response ? strlen(in->response) : 0;
		log_event(LOG_INFO, "webhook", "provider=%s status=200 ignored=1", adapter->name);
		return true;
	}
	if (!broker_ready(in->broker)) {
		ingest_set_error(in, 503, "redis_unavailable",
				 "the state store is unreachable; retry later");
		log_event(LOG_WARN, "webhook", "provider=%s status=503", adapter->name);
		return true;
	}
	in->items = calloc((size_t)n, sizeof(ingest_item_t));
	if (!in->items) {
		ingest_set_error(in, 503, "out_of_memory", "the gateway ran out of memory; retry");
		return true;
	}
	in->n_items = (unsigned)n;
	for (int i = 0; i < n; i++) {
		ingest_item_t *it = &in->items[i];
		char *json = proto_update_to_json(&updates[i]);
		proto_update_t check;

		it->in = in;
		/* An adapter's output goes through the same validation as /v1/updates. */
		if (!json || proto_update_parse(json, strlen(json), &check, &it->err) != PROTO_OK) {
			free(json);
			it->state = ITEM_INVALID;
			continue;
		}
		free(json);
		ingest_submit(in, it, &updates[i]);
	}
	return ingest_wait_or_complete(in);
}

bool ingest_finish(ingest_t *in)
{
	cJSON *root = NULL, *el;
	unsigned n, i = 0;
	bool now = true;

	in->start_ns = uv_hrtime();
	if (!broker_ready(in->broker)) {
		ingest_set_error(in, 503, "redis_unavailable",
				 "the state store is unreachable; retry later");
		log_event(LOG_WARN, "ingest", "status=503 error=redis_unavailable");
		goto out;
	}
	root = cJSON_ParseWithLength(in->body, in->body_len);
	if (!root) {
		ingest_set_error(in, 400, "malformed_json", "the body is not valid JSON");
		goto out;
	}
	if (cJSON_IsArray(root)) {
		in->batch = true;
		n = (unsigned)cJSON_GetArraySize(root);
		if (n == 0) {
			ingest_set_error(in, 400, "empty_batch", "the array holds no update");
			goto out;
		}
		if (n > INGEST_BATCH_MAX) {
			ingest_set_error(in, 413, "batch_too_large",
					 "an array may hold at most 100 updates");
			goto out;
		}
	} else if (cJSON_IsObject(root)) {
		n = 1;
	} else {
		ingest_set_error(in, 400, "invalid_update",
				 "expected an update object or an array of them");
		goto out;
	}

	in->items = calloc(n, sizeof(ingest_item_t));
	if (!in->items) {
		ingest_set_error(in, 503, "out_of_memory", "the gateway ran out of memory; retry");
		goto out;
	}
	in->n_items = n;
	el = in->batch ? root->child : root;
	for (; i < n && el; i++, el = in->batch ? el->next : NULL) {
		ingest_item_t *it = &in->items[i];
		proto_update_t u;

		it->in = in;
		if (proto_update_from_json(el, &u, &it->err) != PROTO_OK) {
			it->state = ITEM_INVALID;
			cJSON *oid = cJSON_IsObject(el)
					 ? cJSON_GetObjectItemCaseSensitive(el, "order_id")
					 : NULL;
			if (cJSON_IsString(oid) &&
			    proto_order_id_valid(oid->valuestring, strlen(oid->valuestring)))
				snprintf(it->order_id, sizeof(it->order_id), "%s",
					 oid->valuestring);
			continue;
		}
		ingest_submit(in, it, &u);
	}

	if (!in->batch && in->items[0].state == ITEM_INVALID) {
		/* A single update that fails validation is a bad request, not a result. */
		char msg[sizeof(in->items[0].err.field) + sizeof(in->items[0].err.message) + 4];
		const proto_error_t *e = &in->items[0].err;

		snprintf(msg, sizeof(msg), "%s%s%s", e->field, e->field[0] ? ": " : "", e->message);
		ingest_set_error(in, 400, "invalid_update", msg);
		log_event(LOG_INFO, "ingest", "status=400 items=1 invalid=1 field=%s", e->field);
		goto out;
	}
	now = ingest_wait_or_complete(in);
out:
	cJSON_Delete(root);
	return now;
}

void ingest_account(const ingest_t *in, metrics_t *m, unsigned status)
{
	metrics_request(m, in->provider, status, in->results,
			(double)(uv_hrtime() - in->start_ns) / 1e6);
}

void ingest_fail(ingest_t *in, unsigned status, const char *code, const char *message)
{
	ingest_set_error(in, status, code, message);
}

void ingest_response(const ingest_t *in, unsigned *status, const char **body, size_t *len)
{
	*status = in->status;
	*body = in->response ? in->response : "{\"error\":\"out_of_memory\",\"message\":\"\"}";
	*len = in->response ? in->response_len : strlen(*body);
}

void ingest_free(ingest_t *in)
{
	if (!in)
		return;
	for (unsigned i = 0; i < in->n_items; i++) {
		ingest_item_t *it = &in->items[i];

		if (it->req)
			broker_req_cancel(it->req);
	}
	free(in->items);
	free(in->body);
	free(in->response);
	free(in);
}
