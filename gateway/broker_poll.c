/*
 * broker_poll.c - poll mode's requests on the command connection: an
 * order's source (GET/SET/DEL trk:{ID}:source), its lease
 * (proto/poll_lease.lua) and a provider's request budget shared by the
 * group (proto/poll_budget.lua).  Requests and script handling are
 * broker.c's (broker_private.h).
 */
#include "broker_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "log.h"
#include "script.h"

static void broker_source_cb(redisAsyncContext *ac, void *r, void *privdata)
{
	broker_req_t *req = privdata;
	redisReply *reply = r;
	const char *json = NULL;
	size_t len = 0;
	bool found = false;
	int rc = BROKER_OK;

	if (!reply) {
		rc = BROKER_ELOST;
		goto done;
	}
	switch (req->source_op) {
	case SOURCE_SET:
		found = reply->type == REDIS_REPLY_STATUS && !strcmp(reply->str, "OK");
		if (!found)
			goto bad;
		break;
	case SOURCE_GET:
		if (reply->type == REDIS_REPLY_STRING) {
			found = true;
			json = reply->str;
			len = reply->len;
		} else if (reply->type != REDIS_REPLY_NIL) {
			goto bad;
		}
		break;
	case SOURCE_DEL:
		if (reply->type != REDIS_REPLY_INTEGER)
			goto bad;
		found = reply->integer > 0;
		break;
	}
	goto done;
bad:
	req->b->stats.bad_replies++;
	rc = BROKER_EREPLY;
	log_event(LOG_ERROR, "redis_unexpected_reply",
		  "conn=commands cmd=source type=%d error=\"%.200s\"", reply->type,
		  reply->type == REDIS_REPLY_ERROR ? reply->str : "");
done:
	if (!req->cancelled)
		req->fn.source(req->arg, rc, found, json, len);
	broker_req_free(req);
}

/* Sends one source command (argv[1] is the key, filled in here) for order_id. */
static int broker_source_send(broker_t *b, const char *order_id, broker_source_op_t op, int argc,
			      const char **argv, size_t *argvlen, broker_source_fn *fn, void *arg,
			      broker_req_t **out)
{
	proto_poll_keys_t keys;
	broker_req_t *req;
	int rc;

	req = broker_req_new(b, order_id, arg, &rc);
	if (!req)
		return rc;
	req->fn.source = fn;
	req->source_op = (uint8_t)op;
	proto_poll_keys_for(req->order_id, &keys);
	argv[1] = keys.source;
	argvlen[1] = strlen(keys.source);
	if (redisAsyncCommandArgv(b->cmd.ac, broker_source_cb, req, argc, argv, argvlen) !=
	    REDIS_OK) {
		broker_req_free(req);
		return BROKER_EDOWN;
	}
	if (out)
		*out = req;
	return BROKER_OK;
}

int broker_source_set(broker_t *b, const char *order_id, const char *json, size_t len,
		      broker_source_fn *fn, void *arg, broker_req_t **out)
{
	/* One command, so the source and its lifetime are written together. */
	const char *argv[5] = {"SET", NULL, json, "EX", b->ttl_active};
	size_t argvlen[5] = {3, 0, len, 2, strlen(b->ttl_active)};

	return broker_source_send(b, order_id, SOURCE_SET, 5, argv, argvlen, fn, arg, out);
}

int broker_source_get(broker_t *b, const char *order_id, broker_source_fn *fn, void *arg,
		      broker_req_t **out)
{
	const char *argv[2] = {"GET", NULL};
	size_t argvlen[2] = {3, 0};

	return broker_source_send(b, order_id, SOURCE_GET, 2, argv, argvlen, fn, arg, out);
}

int broker_source_del(broker_t *b, const char *order_id, broker_source_fn *fn, void *arg,
		      broker_req_t **out)
{
	const char *argv[2] = {"DEL", NULL};
	size_t argvlen[2] = {3, 0};

	return broker_source_send(b, order_id, SOURCE_DEL, 2, argv, argvlen, fn, arg, out);
}

static int broker_send_lease(broker_t *b, broker_req_t *req);

static void broker_lease_cb(redisAsyncContext *ac, void *r, void *privdata)
{
	broker_req_t *req = privdata;
	redisReply *reply = r;
	int64_t remaining_ms = 0;
	char status[32] = "";
	const char *source = NULL;
	size_t source_len = 0;
	bool held = false;
	int rc = BROKER_OK;

	if (!reply) {
		rc = BROKER_ELOST;
	} else if (reply->type == REDIS_REPLY_ERROR) {
		if (broker_script_resent(req->b, req, reply, "poll_lease", broker_send_lease, &rc))
			return;
	} else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 4 &&
		   reply->element[0]->type == REDIS_REPLY_INTEGER &&
		   reply->element[1]->type == REDIS_REPLY_INTEGER &&
		   reply->element[2]->type == REDIS_REPLY_STRING &&
		   reply->element[3]->type == REDIS_REPLY_STRING &&
		   (reply->element[0]->integer & ~1LL) == 0 && reply->element[1]->integer >= 0 &&
		   reply->element[2]->len < sizeof(status)) {
		held = reply->element[0]->integer == 1;
		remaining_ms = reply->element[1]->integer;
		memcpy(status, reply->element[2]->str, reply->element[2]->len);
		status[reply->element[2]->len] = '\0';
		if (reply->element[3]->len) {
			source = reply->element[3]->str;
			source_len = reply->element[3]->len;
		}
	} else {
		req->b->stats.bad_replies++;
		rc = BROKER_EREPLY;
		log_event(LOG_ERROR, "redis_unexpected_reply",
			  "conn=commands script=poll_lease type=%d", reply->type);
	}
	if (!req->cancelled)
		req->fn.lease(req->arg, rc, held, remaining_ms, status[0] ? status : NULL, source,
			      source_len);
	broker_req_free(req);
}

/* EVALSHA once poll_lease.lua's SHA is known and the request has not met NOSCRIPT, else EVAL. */
static int broker_send_lease(broker_t *b, broker_req_t *req)
{
	static const char *const actions[] = {"acquire", "renew", "release"};
	bool by_sha = b->lease_sha[0] && !req->tried_eval;
	const char *script = by_sha ? b->lease_sha : proto_script_poll_lease;
	size_t script_len = by_sha ? 40 : proto_script_poll_lease_len;
	proto_poll_keys_t keys;
	proto_keys_t order;

	if (b->cmd.state != CONN_UP || !b->cmd.ac)
		return BROKER_EDOWN;
	proto_poll_keys_for(req->order_id, &keys);
	proto_keys_for(req->order_id, &order);
	/* An action out of the enum goes as "?", which the script refuses (BROKER_EREPLY). */
	if (redisAsyncCommand(
		b->cmd.ac, broker_lease_cb, req, "%s %b 3 %s %s %s %s %s %u %s",
		by_sha ? "EVALSHA" : "EVAL", script, script_len, keys.lease, order.state,
		keys.source, req->lease_action < 3 ? actions[req->lease_action] : "?", req->node_id,
		req->lease_ttl_ms, req->update ? req->update : "") != REDIS_OK)
		return BROKER_EDOWN;
	return BROKER_OK;
}

int broker_lease(broker_t *b, const char *order_id, const char *node_id,
		 broker_lease_action_t action, unsigned ttl_ms, const char *providers,
		 broker_lease_fn *fn, void *arg, broker_req_t **out)
{
	broker_req_t *req;
	int rc;

	req = broker_req_new(b, order_id, arg, &rc);
	if (!req)
		return rc;
	req->fn.lease = fn;
	req->lease_action = action <= BROKER_LEASE_RELEASE ? (uint8_t)action : UINT8_MAX;
	req->lease_ttl_ms = ttl_ms;
	req->node_id = strdup(node_id ? node_id : "");
	/* The providers ride in the update field, which a lease request has no other use for. */
	req->update = strdup(providers ? providers : "");
	rc = req->node_id && req->update ? broker_send_lease(b, req) : BROKER_ENOMEM;
	if (rc) {
		broker_req_free(req);
		return rc;
	}
	if (out)
		*out = req;
	return BROKER_OK;
}

static int broker_send_budget(broker_t *b, broker_req_t *req);

static void broker_budget_cb(redisAsyncContext *ac, void *r, void *privdata)
{
	broker_req_t *req = privdata;
	redisReply *reply = r;
	int64_t delay_ms = 0;
	bool granted = false;
	int rc = BROKER_OK;

	(void)ac;
	if (!reply) {
		rc = BROKER_ELOST;
	} else if (reply->type == REDIS_REPLY_ERROR) {
		if (broker_script_resent(req->b, req, reply, "poll_budget", broker_send_budget,
					 &rc))
			return;
	} else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
		   reply->element[0]->type == REDIS_REPLY_INTEGER &&
		   reply->element[1]->type == REDIS_REPLY_INTEGER &&
		   (reply->element[0]->integer & ~1LL) == 0 && reply->element[1]->integer >= 0) {
		granted = reply->element[0]->integer == 1;
		delay_ms = reply->element[1]->integer;
	} else {
		req->b->stats.bad_replies++;
		rc = BROKER_EREPLY;
		log_event(LOG_ERROR, "redis_unexpected_reply",
			  "conn=commands script=poll_budget type=%d", reply->type);
	}
	if (!req->cancelled)
		req->fn.budget(req->arg, rc, granted, delay_ms);
	broker_req_free(req);
}

/* EVALSHA once poll_budget.lua's SHA is known and the request has not met NOSCRIPT, else EVAL. */
static int broker_send_budget(broker_t *b, broker_req_t *req)
{
	bool by_sha = b->budget_sha[0] && !req->tried_eval;
	const char *script = by_sha ? b->budget_sha : proto_script_poll_budget;
	size_t script_len = by_sha ? 40 : proto_script_poll_budget_len;
	bool take = req->budget_action == BROKER_BUDGET_TAKE;
	char key[sizeof("trk:poll_budget:{}") + sizeof(req->order_id)];

	if (b->cmd.state != CONN_UP || !b->cmd.ac)
		return BROKER_EDOWN;
	/* The provider's own hash tag: in a cluster its slot is one node's, whatever order asks. */
	snprintf(key, sizeof(key), "trk:poll_budget:{%s}", req->order_id);
	if (redisAsyncCommand(b->cmd.ac, broker_budget_cb, req, "%s %b 1 %s %s %u %u",
			      by_sha ? "EVALSHA" : "EVAL", script, script_len, key,
			      take ? "take" : "hold", req->budget_ms[0],
			      req->budget_ms[1]) != REDIS_OK)
		return BROKER_EDOWN;
	return BROKER_OK;
}

int broker_budget(broker_t *b, const char *provider, broker_budget_action_t action, unsigned a,
		  unsigned b_ms, broker_budget_fn *fn, void *arg, broker_req_t **out)
{
	broker_req_t *req;
	int rc;

	if (!provider || !*provider || strlen(provider) > 64 ||
	    (action != BROKER_BUDGET_TAKE && action != BROKER_BUDGET_HOLD))
		return BROKER_EREPLY;
	req = broker_req_new(b, provider, arg, &rc);
	if (!req)
		return rc;
	req->fn.budget = fn;
	req->budget_action = (uint8_t)action;
	req->budget_ms[0] = a;
	req->budget_ms[1] = b_ms;
	rc = broker_send_budget(b, req);
	if (rc) {
		broker_req_free(req);
		return rc;
	}
	if (out)
		*out = req;
	return BROKER_OK;
}
