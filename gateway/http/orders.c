/*
 * http/orders.c - GET /v1/orders/{ID}?token=T: an order's snapshot as plain
 * JSON, read from Redis, for clients without websockets.
 */
#include "http_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "auth.h"
#include "conn.h"
#include "http_reply.h"
#include "proto.h"
#include "query.h"

/* GET /v1/orders/{ID}: the snapshot read in flight, then the answer. */
struct order_read {
	http_session_t *s; /* whose answer it becomes */
	broker_req_t *req; /* while in flight; owned by the broker */
	char *body;	   /* is malloc'd: the answer once done */
	size_t len;
	unsigned status;
	char order_id[PROTO_ORDER_ID_MAX + 1];
};

void http_order_read_free(order_read_t *r)
{
	if (!r)
		return;
	if (r->req)
		broker_req_cancel(r->req);
	free(r->body);
	free(r);
}

static void http_order_read_done(void *arg, int rc, const char *state, size_t state_len,
				 const char *cursor, size_t cursor_len)
{
	order_read_t *r = arg;
	proto_cursor_t c;
	cJSON *doc = NULL;
	int len;

	r->req = NULL;
	r->status = 503;
	if (rc == BROKER_OK &&
	    (!cursor || proto_cursor_parse(cursor, cursor_len, &c) == PROTO_OK) &&
	    (!state || cJSON_IsObject(doc = cJSON_ParseWithLength(state, state_len)))) {
		/* The same bytes a websocket's snapshot frame carries, minus the frame type. */
		len = proto_order_doc(NULL, 0, r->order_id, state, state_len, cursor);
		r->body = len > 0 ? malloc((size_t)len) : NULL;
		if (r->body) {
			proto_order_doc(r->body, (size_t)len, r->order_id, state, state_len,
					cursor);
			r->len = (size_t)len;
			r->status = 200;
		}
	}
	cJSON_Delete(doc);
	if (r->status != 200) {
		r->body =
		    http_error_body("redis_unavailable", "the order's state could not be read");
		r->len = r->body ? strlen(r->body) : 0;
	}
	http_ready(r->s->wsi, r->s);
}

/* GET /v1/orders/{ID}?token=T: the snapshot as plain JSON, for clients without websockets. */
int http_order_get(http_t *h, struct lws *wsi, http_session_t *s, const char *id)
{
	char why[96];
	int64_t exp;
	order_read_t *r;

	if (h->cfg->token_keys.n) {
		char qbuf[CONN_QUERY_MAX];
		const char *token;
		size_t token_len;
		query_t query;
		auth_result_t ar;
		int rc = QUERY_TOO_MANY;

		if (conn_query(wsi, &query, qbuf, sizeof(qbuf)) != 0 ||
		    !query_arg(&query, "token", &token, &token_len, &rc)) {
			h->metrics->refused[REFUSE_QUERY]++;
			return http_fail(h, wsi, 400, "invalid_query", query_problem(rc, "token"),
					 false, NULL);
		}
		ar = auth_check(&h->cfg->token_keys, token, token_len, id, (int64_t)time(NULL),
				&exp, why, sizeof(why));
		if (ar != AUTH_OK) {
			h->metrics
			    ->refused[ar == AUTH_FORBIDDEN ? REFUSE_TOKEN_ORDER : REFUSE_TOKEN]++;
			return http_fail(h, wsi, ar == AUTH_FORBIDDEN ? 403 : 401,
					 ar == AUTH_FORBIDDEN ? "forbidden" : "unauthorized", why,
					 false, NULL);
		}
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return http_fail(h, wsi, 503, "out_of_memory", "retry later", false, NULL);
	r->s = s;
	snprintf(r->order_id, sizeof(r->order_id), "%s", id);
	if (broker_snapshot(h->broker, id, http_order_read_done, r, &r->req) != BROKER_OK) {
		free(r);
		return http_fail(h, wsi, 503, "redis_unavailable",
				 "the state store is unreachable; retry later", false, NULL);
	}
	s->read = r;
	s->phase = HTTP_WAITING;
	http_hold(wsi, s);
	return 0;
}

int http_order_write(struct lws *wsi, order_read_t *r, bool close)
{
	int rc = http_reply(wsi, r->status, "application/json", r->body ? r->body : "{}",
			    r->body ? r->len : 2, close, NULL);

	http_order_read_free(r);
	return rc;
}
