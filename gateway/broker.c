/*
 * broker.c - the broker's API on its connections: the requests of the
 * command connection (apply, snapshot, resume), the subscriptions, and what
 * the subscriber receives, reported through the broker_events_t.  Poll
 * mode's requests (source, lease, budget) are broker_poll.c; the
 * connections' life (connect, back off, reconnect, stop) is broker_conn.c.
 */
#include "broker_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "log.h"
#include "proto.h"
#include "script.h"

const char *broker_result_name(broker_result_t r)
{
	switch (r) {
	case BROKER_APPLIED:
		return "applied";
	case BROKER_STALE:
		return "stale";
	case BROKER_DUPLICATE:
		return "duplicate";
	case BROKER_WITHHELD:
		return "withheld";
	}
	return "?";
}

/* A copy of s, "" for NULL; NULL when out of memory. */
static char *broker_strdup(const char *s)
{
	return strdup(s ? s : "");
}

broker_t *broker_new(uv_loop_t *loop, const broker_config_t *cfg, const broker_events_t *ev)
{
	broker_t *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->loop = loop;
	b->ev = *ev;
	b->redis_unix = broker_strdup(cfg->redis_unix);
	b->redis_host = broker_strdup(cfg->redis_host);
	b->courier_visible_from = broker_strdup(cfg->courier_visible_from);
	if (!b->redis_unix || !b->redis_host || !b->courier_visible_from) {
		broker_free(b);
		return NULL;
	}
	b->redis_port = cfg->redis_port;
	if (cfg->sentinel)
		b->sentinel.cfg = *cfg->sentinel;
	b->timeout_ms = cfg->timeout_ms;
	snprintf(b->ttl_active, sizeof(b->ttl_active), "%u", cfg->ttl_active);
	snprintf(b->ttl_terminal, sizeof(b->ttl_terminal), "%u", cfg->ttl_terminal);
	snprintf(b->maxlen, sizeof(b->maxlen), "%u", cfg->log_maxlen);
	b->sub = (broker_conn_t){.b = b, .name = "subscriber"};
	b->cmd = (broker_conn_t){.b = b, .name = "commands"};
	broker_hb_init(b);
	return b;
}

void broker_free(broker_t *b)
{
	if (!b)
		return;
	free(b->redis_unix);
	free(b->redis_host);
	free(b->courier_visible_from);
	free(b);
}

bool broker_ready(const broker_t *b)
{
	return b->sub.state == CONN_UP && b->cmd.state == CONN_UP;
}

const broker_stats_t *broker_stats(const broker_t *b)
{
	return &b->stats;
}

/* --- requests and replies ------------------------------------------------------ */

void broker_req_free(broker_req_t *req)
{
	free(req->update);
	free(req->node_id);
	free(req);
}

/* A request on the command connection, or NULL (nothing sent) when it is down or out of memory. */
broker_req_t *broker_req_new(broker_t *b, const char *order_id, void *arg, int *rc)
{
	broker_req_t *req;

	*rc = BROKER_EDOWN;
	if (b->cmd.state != CONN_UP || !b->cmd.ac)
		return NULL;
	*rc = BROKER_ENOMEM;
	req = calloc(1, sizeof(*req));
	if (!req)
		return NULL;
	req->b = b;
	req->arg = arg;
	snprintf(req->order_id, sizeof(req->order_id), "%s", order_id);
	*rc = BROKER_OK;
	return req;
}

static void broker_sub_cb(redisAsyncContext *ac, void *r, void *privdata)
{
	broker_conn_t *c = ac->data;
	redisReply *reply = r;
	const redisReply *kind, *chan;
	const char *id;
	size_t id_len;

	if (!reply)
		return; /* the connection is going away; broker_conn_down() handles it */
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
	    reply->element[0]->type != REDIS_REPLY_STRING ||
	    reply->element[1]->type != REDIS_REPLY_STRING)
		goto bad;
	kind = reply->element[0];
	chan = reply->element[1];
	id = proto_channel_order_id(chan->str, chan->len, &id_len);
	if (!id)
		goto bad;
	if (!strcmp(kind->str, "message")) {
		if (reply->element[2]->type != REDIS_REPLY_STRING)
			goto bad;
		c->b->ev.message(c->b->ev.arg, id, id_len, reply->element[2]->str,
				 reply->element[2]->len, uv_now(c->b->loop));
	} else if (!strcmp(kind->str, "subscribe")) {
		c->b->ev.subscribed(c->b->ev.arg, id, id_len);
	} else if (!strcmp(kind->str, "unsubscribe")) {
		c->b->ev.unsubscribed(c->b->ev.arg, id, id_len);
	} else {
		goto bad;
	}
	return;
bad:
	c->b->stats.bad_replies++;
	log_event(LOG_WARN, "redis_unexpected_reply", "conn=%s type=%d", c->name, reply->type);
}

/*
 * An error reply to a script sent by SHA.  NOSCRIPT (Redis restarted, failed over or flushed its
 * scripts): send() sends the request once more with the body, which runs it and caches it again
 * under the same SHA (which stays good); true then.  READONLY (a replica now, behind a VIP or
 * proxy): the connection reconnects to find the primary.  Else *rc is BROKER_EREPLY, or
 * BROKER_EDOWN when the resend failed.
 */
bool broker_script_resent(broker_t *b, broker_req_t *req, const redisReply *reply,
			  const char *script, int (*send)(broker_t *, broker_req_t *), int *rc)
{
	if (!strncmp(reply->str, "NOSCRIPT", 8) && !req->tried_eval) {
		req->tried_eval = true;
		*rc = BROKER_EDOWN; /* the answer when it cannot be sent again */
		return send(b, req) == BROKER_OK;
	}
	*rc = BROKER_EREPLY;
	log_event(LOG_WARN, "redis_script_error", "script=%s order=%.128s error=\"%.200s\"", script,
		  req->order_id, reply->str);
	if (!strncmp(reply->str, "READONLY", 8) && b->cmd.ac && b->cmd.state == CONN_UP) {
		log_event(LOG_WARN, "redis_readonly", "action=reconnect");
		redisAsyncDisconnect(b->cmd.ac); /* hiredis disconnects once the callback returns */
	}
	return false;
}

static int broker_send_apply(broker_t *b, broker_req_t *req);

static void broker_apply_cb(redisAsyncContext *ac, void *r, void *privdata)
{
	broker_req_t *req = privdata;
	broker_t *b = req->b;
	redisReply *reply = r;
	broker_result_t result = BROKER_APPLIED;
	const char *cursor = NULL, *why = NULL;
	int rc = BROKER_OK;

	if (!reply) {
		rc = BROKER_ELOST;
		why = "the Redis connection was lost before it answered";
		goto done;
	}
	if (reply->type == REDIS_REPLY_ERROR) {
		if (broker_script_resent(b, req, reply, "apply_update", broker_send_apply, &rc))
			return;
		why = rc == BROKER_EDOWN ? "the Redis connection is down" : reply->str;
		goto done;
	}
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
	    reply->element[0]->type != REDIS_REPLY_STRING)
		goto bad;
	if (!strcmp(reply->element[0]->str, "applied")) {
		if (reply->elements < 2 || reply->element[1]->type != REDIS_REPLY_STRING)
			goto bad;
		cursor = reply->element[1]->str;
	} else if (!strcmp(reply->element[0]->str, "stale")) {
		result = BROKER_STALE;
	} else if (!strcmp(reply->element[0]->str, "duplicate")) {
		result = BROKER_DUPLICATE;
	} else if (!strcmp(reply->element[0]->str, "withheld")) {
		result = BROKER_WITHHELD;
	} else {
		goto bad;
	}
	goto done;
bad:
	b->stats.bad_replies++;
	rc = BROKER_EREPLY;
	why = "unexpected reply from the apply script";
	log_event(LOG_ERROR, "redis_unexpected_reply", "conn=commands type=%d", reply->type);
done:
	if (!req->cancelled)
		req->fn.apply(req->arg, rc, result, cursor, why);
	broker_req_free(req);
}

static int broker_send_apply(broker_t *b, broker_req_t *req)
{
	bool by_sha = b->sha[0] && !req->tried_eval;
	const char *script = by_sha ? b->sha : proto_script_apply_update;
	size_t script_len = by_sha ? 40 : proto_script_apply_update_len;
	proto_keys_t keys;

	if (b->cmd.state != CONN_UP || !b->cmd.ac)
		return BROKER_EDOWN;
	proto_keys_for(req->order_id, &keys);
	/* Each %s and %b is one argument, spaces and all (the update is not NUL-terminated). */
	if (redisAsyncCommand(b->cmd.ac, broker_apply_cb, req, "%s %b 3 %s %s %s %b %s %s %s %s",
			      by_sha ? "EVALSHA" : "EVAL", script, script_len, keys.state, keys.log,
			      keys.seen, req->update, req->update_len, b->ttl_active,
			      b->ttl_terminal, b->maxlen, b->courier_visible_from) != REDIS_OK)
		return BROKER_EDOWN;
	return BROKER_OK;
}

int broker_apply(broker_t *b, const char *order_id, const char *update_json, size_t len,
		 broker_apply_fn *fn, void *arg, broker_req_t **out)
{
	broker_req_t *req;
	int rc;

	req = broker_req_new(b, order_id, arg, &rc);
	if (!req)
		return rc;
	req->fn.apply = fn;
	req->update = malloc(len);
	if (!req->update) {
		broker_req_free(req);
		return BROKER_ENOMEM;
	}
	memcpy(req->update, update_json, len);
	req->update_len = len;
	rc = broker_send_apply(b, req);
	if (rc) {
		broker_req_free(req);
		return rc;
	}
	if (out)
		*out = req;
	return BROKER_OK;
}

static void broker_snapshot_cb(redisAsyncContext *ac, void *r, void *privdata)
{
	broker_req_t *req = privdata;
	redisReply *reply = r;
	const redisReply *state, *cursor;
	int rc = BROKER_OK;

	if (!reply) {
		rc = BROKER_ELOST;
		goto fail;
	}
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
		goto bad;
	state = reply->element[0];
	cursor = reply->element[1];
	if ((state->type != REDIS_REPLY_STRING && state->type != REDIS_REPLY_NIL) ||
	    (cursor->type != REDIS_REPLY_STRING && cursor->type != REDIS_REPLY_NIL))
		goto bad;
	if (!req->cancelled)
		req->fn.snapshot(req->arg, BROKER_OK,
				 state->type == REDIS_REPLY_STRING ? state->str : NULL,
				 state->type == REDIS_REPLY_STRING ? state->len : 0,
				 cursor->type == REDIS_REPLY_STRING ? cursor->str : NULL,
				 cursor->type == REDIS_REPLY_STRING ? cursor->len : 0);
	broker_req_free(req);
	return;
bad:
	req->b->stats.bad_replies++;
	rc = BROKER_EREPLY;
	log_event(LOG_ERROR, "redis_unexpected_reply", "conn=commands cmd=HMGET type=%d",
		  reply->type);
fail:
	if (!req->cancelled)
		req->fn.snapshot(req->arg, rc, NULL, 0, NULL, 0);
	broker_req_free(req);
}

int broker_snapshot(broker_t *b, const char *order_id, broker_snapshot_fn *fn, void *arg,
		    broker_req_t **out)
{
	broker_req_t *req;
	proto_keys_t keys;
	int rc;

	req = broker_req_new(b, order_id, arg, &rc);
	if (!req)
		return rc;
	req->fn.snapshot = fn;
	proto_keys_for(order_id, &keys);
	if (redisAsyncCommand(b->cmd.ac, broker_snapshot_cb, req, "HMGET %s state cursor",
			      keys.state) != REDIS_OK) {
		broker_req_free(req);
		return BROKER_EDOWN;
	}
	if (out)
		*out = req;
	return BROKER_OK;
}

static void broker_resume_cb(redisAsyncContext *ac, void *r, void *privdata)
{
	broker_req_t *req = privdata;
	redisReply *reply = r;
	broker_resume_result_t res = {0};
	const char **frames = NULL;
	size_t *lens = NULL;
	int rc = BROKER_OK;

	if (!reply) {
		rc = BROKER_ELOST;
		goto done;
	}
	if (reply->type == REDIS_REPLY_ERROR) {
		log_event(LOG_WARN, "redis_script_error", "script=resume error=\"%.200s\"",
			  reply->str);
		rc = BROKER_EREPLY;
		goto done;
	}
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
	    reply->element[0]->type != REDIS_REPLY_STRING)
		goto bad;
	if (!strcmp(reply->element[0]->str, "reset")) {
		const redisReply *state, *cursor;

		if (reply->elements != 3)
			goto bad;
		state = reply->element[1];
		cursor = reply->element[2];
		if ((state->type != REDIS_REPLY_STRING && state->type != REDIS_REPLY_NIL) ||
		    (cursor->type != REDIS_REPLY_STRING && cursor->type != REDIS_REPLY_NIL))
			goto bad;
		res.reset = true;
		if (state->type == REDIS_REPLY_STRING) {
			res.state = state->str;
			res.state_len = state->len;
		}
		if (cursor->type == REDIS_REPLY_STRING) {
			res.cursor = cursor->str;
			res.cursor_len = cursor->len;
		}
	} else if (!strcmp(reply->element[0]->str, "ok")) {
		res.n_frames = reply->elements - 1;
		if (res.n_frames) {
			frames = malloc(res.n_frames * sizeof(*frames));
			lens = malloc(res.n_frames * sizeof(*lens));
			if (!frames || !lens) {
				rc = BROKER_ENOMEM;
				goto done;
			}
		}
		for (size_t i = 0; i < res.n_frames; i++) {
			const redisReply *e = reply->element[i + 1];

			if (e->type != REDIS_REPLY_STRING)
				goto bad;
			frames[i] = e->str;
			lens[i] = e->len;
		}
		res.frames = frames;
		res.frame_lens = lens;
	} else {
		goto bad;
	}
	goto done;
bad:
	req->b->stats.bad_replies++;
	rc = BROKER_EREPLY;
	log_event(LOG_ERROR, "redis_unexpected_reply", "conn=commands script=resume type=%d",
		  reply->type);
done:
	if (!req->cancelled)
		req->fn.resume(req->arg, rc, rc == BROKER_OK ? &res : NULL);
	free(frames);
	free(lens);
	broker_req_free(req);
}

int broker_resume(broker_t *b, const char *order_id, const char *cursor, unsigned max,
		  broker_resume_fn *fn, void *arg, broker_req_t **out)
{
	char maxs[16];
	const char *argv[7];
	size_t argvlen[7];
	proto_keys_t keys;
	broker_req_t *req;
	int rc;

	req = broker_req_new(b, order_id, arg, &rc);
	if (!req)
		return rc;
	req->fn.resume = fn;
	snprintf(maxs, sizeof(maxs), "%u", max);
	/* EVAL, not EVALSHA: resumes are rare and Redis caches the script by its SHA anyway. */
	argv[0] = "EVAL";
	argv[1] = proto_script_resume;
	argv[2] = "2";
	proto_keys_for(req->order_id, &keys);
	argv[3] = keys.log;
	argv[4] = keys.state;
	argv[5] = cursor;
	argv[6] = maxs;
	for (int i = 0; i < 7; i++)
		argvlen[i] = i == 1 ? proto_script_resume_len : strlen(argv[i]);
	if (redisAsyncCommandArgv(b->cmd.ac, broker_resume_cb, req, 7, argv, argvlen) != REDIS_OK) {
		broker_req_free(req);
		return BROKER_EDOWN;
	}
	if (out)
		*out = req;
	return BROKER_OK;
}

void broker_req_cancel(broker_req_t *req)
{
	if (req) {
		req->cancelled = true;
		req->arg = NULL;
	}
}

int broker_subscribe(broker_t *b, const char *order_id)
{
	proto_keys_t keys;

	if (b->sub.state != CONN_UP || !b->sub.ac)
		return BROKER_EDOWN;
	proto_keys_for(order_id, &keys);
	if (redisAsyncCommand(b->sub.ac, broker_sub_cb, NULL, "SUBSCRIBE %s", keys.channel) !=
	    REDIS_OK)
		return BROKER_EDOWN;
	return BROKER_OK;
}

int broker_unsubscribe(broker_t *b, const char *order_id)
{
	proto_keys_t keys;

	if (b->sub.state != CONN_UP || !b->sub.ac)
		return BROKER_EDOWN;
	proto_keys_for(order_id, &keys);
	/* UNSUBSCRIBE takes no callback: its ack reaches the SUBSCRIBE callback. */
	if (redisAsyncCommand(b->sub.ac, NULL, NULL, "UNSUBSCRIBE %s", keys.channel) != REDIS_OK)
		return BROKER_EDOWN;
	return BROKER_OK;
}

/* A SCRIPT LOAD answered: privdata is where its SHA goes (b->sha, lease_sha or budget_sha). */
static void broker_script_load_cb(redisAsyncContext *ac, void *r, void *privdata)
{
	redisReply *reply = r;
	char *sha = privdata;
	broker_t *b;

	if (!reply)
		return;
	b = ((broker_conn_t *)ac->data)->b;
	if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
		b->stats.bad_replies++;
		log_event(LOG_ERROR, "redis_script_load_failed", "script=%s error=\"%.200s\"",
			  sha == b->sha		? "apply_update"
			  : sha == b->lease_sha ? "poll_lease"
						: "poll_budget",
			  reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
		return;
	}
	memcpy(sha, reply->str, 40);
	sha[40] = '\0';
	b->stats.script_loads++;
	log_event(LOG_DEBUG, "redis_script_loaded", "sha=%s", sha);
}

void broker_script_load(broker_t *b)
{
	/* Until the SHAs are known, applies and leases go as EVAL (which caches the script too). */
	b->sha[0] = '\0';
	b->lease_sha[0] = '\0';
	b->budget_sha[0] = '\0';
	redisAsyncCommand(b->cmd.ac, broker_script_load_cb, b->sha, "SCRIPT LOAD %b",
			  proto_script_apply_update, proto_script_apply_update_len);
	redisAsyncCommand(b->cmd.ac, broker_script_load_cb, b->lease_sha, "SCRIPT LOAD %b",
			  proto_script_poll_lease, proto_script_poll_lease_len);
	redisAsyncCommand(b->cmd.ac, broker_script_load_cb, b->budget_sha, "SCRIPT LOAD %b",
			  proto_script_poll_budget, proto_script_poll_budget_len);
}
