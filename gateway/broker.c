#include "broker.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "log.h"
#include "redis_uv.h"
#include "script.h"

#define BROKER_BACKOFF_MIN_MS 100
#define BROKER_BACKOFF_MAX_MS 5000

typedef enum broker_conn_state {
	CONN_IDLE = 0,   /* waiting for the retry timer */
	CONN_RESOLVING,  /* uv_getaddrinfo in flight */
	CONN_CONNECTING, /* redisAsyncConnect* issued, no connect callback yet */
	CONN_UP,
	CONN_STOPPED,
} broker_conn_state_t;

typedef struct broker_conn {
	broker_t *b;
	const char *name;       /* "subscriber" or "commands", for logs */
	redisAsyncContext *ac;  /* owned by hiredis once connecting; NULL when none */
	uv_timer_t timer;       /* retry delay and connect timeout */
	uv_getaddrinfo_t gai;
	broker_conn_state_t state;
	unsigned attempt;       /* failures since the last success */
	bool timer_closed;
	bool gai_active;
	bool was_up;            /* had been up before: a reconnect, not the first connect */
} broker_conn_t;

struct broker {
	uv_loop_t *loop;
	const config_t *cfg;
	hub_t *hub;
	broker_conn_t sub;
	broker_conn_t cmd;
	char sha[41];           /* the script's SHA1 from SCRIPT LOAD; "" until known */
	char ttl_active[16];
	char ttl_terminal[16];
	char maxlen[16];
	bool stopping;
	broker_stopped_fn *stopped;
	void *stopped_arg;
	broker_stats_t stats;
};

typedef enum broker_req_kind {
	REQ_APPLY,
	REQ_SNAPSHOT,
	REQ_RESUME,
} broker_req_kind_t;

struct broker_req {
	broker_t *b;
	broker_req_kind_t kind;
	bool cancelled;
	bool tried_eval;        /* EVALSHA met NOSCRIPT and was re-sent as EVAL */
	union {
		broker_apply_fn *apply;
		broker_snapshot_fn *snapshot;
		broker_resume_fn *resume;
	} fn;
	void *arg;
	char *update;           /* is malloc'd: the update JSON of an apply */
	size_t update_len;
	/* The order; its key names are built when a command is sent (hiredis copies
	 * them), which keeps a request small while thousands of joins wait. */
	char order_id[PROTO_ORDER_ID_MAX + 1];
};

static void broker_conn_connect(broker_conn_t *c);
static void broker_maybe_stopped(broker_t *b);

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

broker_t *broker_new(uv_loop_t *loop, const config_t *cfg, hub_t *hub)
{
	broker_t *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->loop = loop;
	b->cfg = cfg;
	b->hub = hub;
	snprintf(b->ttl_active, sizeof(b->ttl_active), "%u", cfg->ttl_active);
	snprintf(b->ttl_terminal, sizeof(b->ttl_terminal), "%u", cfg->ttl_terminal);
	snprintf(b->maxlen, sizeof(b->maxlen), "%u", cfg->log_maxlen);
	b->sub = (broker_conn_t){.b = b, .name = "subscriber"};
	b->cmd = (broker_conn_t){.b = b, .name = "commands"};
	return b;
}

void broker_free(broker_t *b)
{
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

/* --- connection life cycle ------------------------------------------------ */

static void broker_conn_up(broker_conn_t *c);
static void broker_conn_down(broker_conn_t *c);

static void broker_retry_cb(uv_timer_t *t)
{
	broker_conn_t *c = t->data;

	if (c->state == CONN_CONNECTING && c->ac) {
		/* Connect timeout: a context that never connected calls no callback when freed. */
		log_event(LOG_WARN, "redis_connect_timeout", "conn=%s after_ms=%u", c->name,
			  c->b->cfg->redis_timeout_ms);
		redisAsyncFree(c->ac);
		c->ac = NULL;
		broker_conn_down(c);
		return;
	}
	if (c->state == CONN_IDLE)
		broker_conn_connect(c);
}

/* Schedules the next attempt: 100 ms doubling to 5 s, each with 50..100% jitter. */
static void broker_conn_schedule(broker_conn_t *c)
{
	uint64_t delay = BROKER_BACKOFF_MIN_MS;

	c->state = CONN_IDLE;
	if (c->b->stopping)
		return;
	for (unsigned i = 0; i < c->attempt && delay < BROKER_BACKOFF_MAX_MS; i++)
		delay *= 2;
	if (delay > BROKER_BACKOFF_MAX_MS)
		delay = BROKER_BACKOFF_MAX_MS;
	delay = delay / 2 + (uint64_t)rand() % (delay / 2 + 1);
	c->attempt++;
	uv_timer_start(&c->timer, broker_retry_cb, delay, 0);
}

static void broker_on_connect(const redisAsyncContext *ac, int status)
{
	broker_conn_t *c = ac->data;

	uv_timer_stop(&c->timer);
	if (status != REDIS_OK) {
		/* hiredis frees the context after this callback. */
		log_event(c->attempt ? LOG_DEBUG : LOG_WARN, "redis_connect_failed",
			  "conn=%s error=\"%s\"", c->name, ac->errstr);
		c->ac = NULL;
		broker_conn_down(c);
		return;
	}
	c->state = CONN_UP;
	c->attempt = 0;
	/* Notice a Redis host that vanished without a FIN (a moved VIP, a dead host). */
	if (!c->b->cfg->redis_unix[0])
		redisEnableKeepAlive((redisContext *)&ac->c);
	if (c->was_up)
		c->b->stats.reconnects++;
	c->was_up = true;
	log_event(LOG_INFO, "redis_connected", "conn=%s", c->name);
	broker_conn_up(c);
}

static void broker_on_disconnect(const redisAsyncContext *ac, int status)
{
	broker_conn_t *c = ac->data;

	c->ac = NULL;
	if (c->b->stopping) {
		c->state = CONN_STOPPED;
		broker_maybe_stopped(c->b);
		return;
	}
	log_event(LOG_WARN, "redis_disconnected", "conn=%s error=\"%s\"", c->name,
		  status == REDIS_OK ? "closed" : ac->errstr);
	broker_conn_down(c);
}

static void broker_conn_open(broker_conn_t *c, const char *ip)
{
	const config_t *cfg = c->b->cfg;
	redisAsyncContext *ac;

	ac = cfg->redis_unix[0] ? redisAsyncConnectUnix(cfg->redis_unix)
				: redisAsyncConnect(ip, cfg->redis_port);
	if (!ac || ac->err) {
		log_event(c->attempt ? LOG_DEBUG : LOG_WARN, "redis_connect_failed",
			  "conn=%s error=\"%s\"", c->name, ac ? ac->errstr : "out of memory");
		if (ac)
			redisAsyncFree(ac);
		broker_conn_schedule(c);
		return;
	}
	ac->data = c;
	if (redis_uv_attach(ac, c->b->loop) != REDIS_OK) {
		log_event(LOG_ERROR, "redis_attach_failed", "conn=%s", c->name);
		redisAsyncFree(ac);
		broker_conn_schedule(c);
		return;
	}
	redisAsyncSetConnectCallback(ac, broker_on_connect);
	redisAsyncSetDisconnectCallback(ac, broker_on_disconnect);
	c->ac = ac;
	c->state = CONN_CONNECTING;
	uv_timer_start(&c->timer, broker_retry_cb, cfg->redis_timeout_ms, 0);
}

static void broker_gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	broker_conn_t *c = req->data;
	char ip[INET6_ADDRSTRLEN] = "";

	c->gai_active = false;
	if (c->b->stopping) {
		uv_freeaddrinfo(res);
		c->state = CONN_STOPPED;
		broker_maybe_stopped(c->b);
		return;
	}
	if (status == 0 && res) {
		if (res->ai_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, ip,
				  sizeof(ip));
		else if (res->ai_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr, ip,
				  sizeof(ip));
	}
	uv_freeaddrinfo(res);
	if (!ip[0]) {
		log_event(LOG_WARN, "redis_resolve_failed", "conn=%s host=%s error=\"%s\"", c->name,
			  c->b->cfg->redis_host, status ? uv_strerror(status) : "no address");
		broker_conn_schedule(c);
		return;
	}
	broker_conn_open(c, ip);
}

static bool broker_is_numeric(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static void broker_conn_connect(broker_conn_t *c)
{
	const config_t *cfg = c->b->cfg;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	int rc;

	if (cfg->redis_unix[0] || broker_is_numeric(cfg->redis_host)) {
		broker_conn_open(c, cfg->redis_host);
		return;
	}
	c->gai.data = c;
	rc = uv_getaddrinfo(c->b->loop, &c->gai, broker_gai_cb, cfg->redis_host, NULL, &hints);
	if (rc) {
		log_event(LOG_WARN, "redis_resolve_failed", "conn=%s host=%s error=\"%s\"", c->name,
			  cfg->redis_host, uv_strerror(rc));
		broker_conn_schedule(c);
		return;
	}
	c->gai_active = true;
	c->state = CONN_RESOLVING;
}

/* --- replies ---------------------------------------------------------------- */

static void broker_req_free(broker_req_t *req)
{
	free(req->update);
	free(req);
}

/* A request on the command connection, or NULL (nothing sent) when it is down or out of memory. */
static broker_req_t *broker_req_new(broker_t *b, broker_req_kind_t kind, const char *order_id,
				    void *arg, int *rc)
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
	req->kind = kind;
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
		c->b->hub->now_ms = uv_now(c->b->loop);
		hub_message(c->b->hub, id, id_len, reply->element[2]->str, reply->element[2]->len);
	} else if (!strcmp(kind->str, "subscribe")) {
		hub_subscribed(c->b->hub, id, id_len);
	} else if (!strcmp(kind->str, "unsubscribe")) {
		hub_unsubscribed(c->b->hub, id, id_len);
	} else {
		goto bad;
	}
	return;
bad:
	c->b->stats.bad_replies++;
	log_event(LOG_WARN, "redis_unexpected_reply", "conn=%s type=%d", c->name, reply->type);
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
	if (reply->type == REDIS_REPLY_ERROR && !strncmp(reply->str, "NOSCRIPT", 8) &&
	    !req->tried_eval) {
		/* Redis restarted or flushed its script cache: send the body, which reloads it. */
		req->tried_eval = true;
		b->sha[0] = '\0';
		if (broker_send_apply(b, req) == BROKER_OK)
			return;
		rc = BROKER_EDOWN;
		why = "the Redis connection is down";
		goto done;
	}
	if (reply->type == REDIS_REPLY_ERROR) {
		rc = BROKER_EREPLY;
		why = reply->str;
		log_event(LOG_WARN, "redis_script_error", "order=%.128s error=\"%.200s\"",
			  req->order_id, reply->str);
		if (!strncmp(reply->str, "READONLY", 8) && b->cmd.ac && b->cmd.state == CONN_UP) {
			/* A replica now (a failover behind a VIP or proxy): reconnect to the primary. */
			log_event(LOG_WARN, "redis_readonly", "action=reconnect");
			redisAsyncDisconnect(b->cmd.ac);
		}
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
	const char *argv[11];
	size_t argvlen[11];
	proto_keys_t keys;
	int n = 0;

	if (b->cmd.state != CONN_UP || !b->cmd.ac)
		return BROKER_EDOWN;
	proto_keys_for(req->order_id, &keys);
	if (b->sha[0] && !req->tried_eval) {
		argv[n] = "EVALSHA";
		argvlen[n++] = 7;
		argv[n] = b->sha;
		argvlen[n++] = strlen(b->sha);
	} else {
		argv[n] = "EVAL";
		argvlen[n++] = 4;
		argv[n] = proto_script_apply_update;
		argvlen[n++] = proto_script_apply_update_len;
	}
	argv[n] = "3";
	argvlen[n++] = 1;
	argv[n] = keys.state;
	argvlen[n++] = strlen(keys.state);
	argv[n] = keys.log;
	argvlen[n++] = strlen(keys.log);
	argv[n] = keys.seen;
	argvlen[n++] = strlen(keys.seen);
	argv[n] = req->update;
	argvlen[n++] = req->update_len;
	argv[n] = b->ttl_active;
	argvlen[n++] = strlen(b->ttl_active);
	argv[n] = b->ttl_terminal;
	argvlen[n++] = strlen(b->ttl_terminal);
	argv[n] = b->maxlen;
	argvlen[n++] = strlen(b->maxlen);
	argv[n] = b->cfg->courier_visible_from;
	argvlen[n++] = strlen(b->cfg->courier_visible_from);
	if (redisAsyncCommandArgv(b->cmd.ac, broker_apply_cb, req, n, argv, argvlen) != REDIS_OK)
		return BROKER_EDOWN;
	return BROKER_OK;
}

int broker_apply(broker_t *b, const char *order_id, const char *update_json, size_t len,
		 broker_apply_fn *fn, void *arg, broker_req_t **out)
{
	broker_req_t *req;
	int rc;

	req = broker_req_new(b, REQ_APPLY, order_id, arg, &rc);
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

	req = broker_req_new(b, REQ_SNAPSHOT, order_id, arg, &rc);
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
		log_event(LOG_WARN, "redis_script_error", "script=resume error=\"%.200s\"", reply->str);
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

	req = broker_req_new(b, REQ_RESUME, order_id, arg, &rc);
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

static void broker_script_load_cb(redisAsyncContext *ac, void *r, void *privdata)
{
	broker_t *b = privdata;
	redisReply *reply = r;

	if (!reply)
		return;
	if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
		b->stats.bad_replies++;
		log_event(LOG_ERROR, "redis_script_load_failed", "error=\"%.200s\"",
			  reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
		return;
	}
	memcpy(b->sha, reply->str, 40);
	b->sha[40] = '\0';
	b->stats.script_loads++;
	log_event(LOG_DEBUG, "redis_script_loaded", "sha=%s", b->sha);
}

static void broker_conn_up(broker_conn_t *c)
{
	broker_t *b = c->b;

	if (c == &b->cmd) {
		/* Until the SHA is known, applies go as EVAL (which caches the script too). */
		b->sha[0] = '\0';
		redisAsyncCommand(c->ac, broker_script_load_cb, b, "SCRIPT LOAD %b",
				  proto_script_apply_update, proto_script_apply_update_len);
		hub_commands_up(b->hub);
	} else {
		hub_redis_up(b->hub);
	}
}

static void broker_conn_down(broker_conn_t *c)
{
	bool was_up = c->state == CONN_UP;

	if (c == &c->b->sub && was_up)
		hub_redis_down(c->b->hub);
	broker_conn_schedule(c);
}

/* --- start and stop --------------------------------------------------------- */

int broker_start(broker_t *b)
{
	broker_conn_t *conns[] = {&b->sub, &b->cmd};

	for (int i = 0; i < 2; i++) {
		if (uv_timer_init(b->loop, &conns[i]->timer))
			return BROKER_ENOMEM;
		conns[i]->timer.data = conns[i];
	}
	broker_conn_connect(&b->sub);
	broker_conn_connect(&b->cmd);
	return BROKER_OK;
}

static void broker_timer_closed(uv_handle_t *h)
{
	broker_conn_t *c = h->data;

	c->timer_closed = true;
	broker_maybe_stopped(c->b);
}

static void broker_maybe_stopped(broker_t *b)
{
	broker_conn_t *conns[] = {&b->sub, &b->cmd};

	if (!b->stopping || !b->stopped)
		return;
	for (int i = 0; i < 2; i++)
		if (conns[i]->ac || conns[i]->gai_active || !conns[i]->timer_closed)
			return;
	broker_stopped_fn *done = b->stopped;
	b->stopped = NULL;
	done(b->stopped_arg);
}

void broker_stop(broker_t *b, broker_stopped_fn *done, void *arg)
{
	broker_conn_t *conns[] = {&b->sub, &b->cmd};

	b->stopping = true;
	b->stopped = done;
	b->stopped_arg = arg;
	for (int i = 0; i < 2; i++) {
		broker_conn_t *c = conns[i];

		uv_timer_stop(&c->timer);
		uv_close((uv_handle_t *)&c->timer, broker_timer_closed);
		if (c->gai_active)
			uv_cancel((uv_req_t *)&c->gai);
		if (c->ac && c->state == CONN_UP) {
			/* Pending replies are still delivered; the disconnect callback follows. */
			redisAsyncDisconnect(c->ac);
		} else if (c->ac) {
			redisAsyncFree(c->ac);
			c->ac = NULL;
		}
		if (!c->ac && !c->gai_active)
			c->state = CONN_STOPPED;
	}
}
