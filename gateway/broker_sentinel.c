/*
 * broker_sentinel.c - the broker's primary in a Sentinel group
 * (redis+sentinel://IP:PORT[,...]/MASTER), following the Sentinel client
 * guidelines (redis.io, "Sentinel clients"):
 *
 *   ask      before each connect, the Sentinels in turn, each with the
 *            connect timeout, SENTINEL get-master-addr-by-name MASTER; the
 *            first that answers an address is asked first next time
 *   confirm  on the new connection, ROLE must say "master" before it is
 *            used (a Sentinel may lag a failover); otherwise it is closed
 *            and the Sentinels asked again (broker_conn.c)
 *   follow   one more connection, to a Sentinel, SUBSCRIBEd to
 *            +switch-master; a switch of MASTER closes BOTH connections
 *            (a subscriber left on a demoted primary hears nothing: the
 *            classic silent loss), which reconnect through "ask"
 *
 * A READONLY reply (broker.c) or any connection loss also goes through
 * "ask" again, since every connect does.
 */
#include "broker_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "log.h"
#include "redis_uv.h"

#define SENTINEL_WATCH_RETRY_MS 1000 /* the +switch-master connection, after a loss */

static void sentinel_ask_next(broker_t *b);
static void sentinel_watch_open(broker_t *b);

bool broker_sentinel_mode(const broker_t *b)
{
	return b->sentinel.cfg.n > 0;
}

/* Each connection waiting for the answer gets it: an address to open, or a retry later. */
static void sentinel_answer(broker_t *b, const char *ip, int port)
{
	broker_sentinel_t *s = &b->sentinel;

	for (int i = 0; i < 2; i++) {
		broker_conn_t *c = s->waiting[i];

		s->waiting[i] = NULL;
		if (!c || b->stopping)
			continue;
		if (ip)
			broker_conn_open(c, ip, port);
		else
			broker_conn_retry(c);
	}
	if (b->stopping)
		broker_maybe_stopped(b);
}

static void sentinel_ask_done(broker_t *b, bool next)
{
	broker_sentinel_t *s = &b->sentinel;

	uv_timer_stop(&s->timer);
	s->ask = NULL;
	if (b->stopping) {
		sentinel_answer(b, NULL, 0);
		return;
	}
	if (next) {
		s->first = (s->first + 1) % s->cfg.n;
		if (++s->asked < s->cfg.n) {
			sentinel_ask_next(b);
			return;
		}
		log_event(LOG_WARN, "redis_sentinel_unanswered", "master=%s sentinels=%u",
			  s->cfg.master, s->cfg.n);
		sentinel_answer(b, NULL, 0);
	}
}

static void sentinel_addr_cb(redisAsyncContext *ac, void *r, void *privdata)
{
	broker_t *b = privdata;
	broker_sentinel_t *s = &b->sentinel;
	redisReply *reply = r;
	char ip[48];
	long port;

	if (ac != s->ask)
		return; /* timed out and freed meanwhile: its answer is not wanted */
	if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
	    reply->element[0]->type == REDIS_REPLY_STRING &&
	    reply->element[1]->type == REDIS_REPLY_STRING && reply->element[0]->len < sizeof(ip)) {
		memcpy(ip, reply->element[0]->str, reply->element[0]->len);
		ip[reply->element[0]->len] = '\0';
		port = strtol(reply->element[1]->str, NULL, 10);
		if (port > 0 && port < 65536) {
			redisAsyncDisconnect(ac);
			sentinel_ask_done(b, false);
			if (strcmp(ip, s->ip) || port != s->port)
				log_event(LOG_INFO, "redis_sentinel_master",
					  "master=%s addr=%s:%ld", s->cfg.master, ip, port);
			snprintf(s->ip, sizeof(s->ip), "%s", ip);
			s->port = (int)port;
			sentinel_answer(b, ip, (int)port);
			return;
		}
	}
	/* nil: this Sentinel does not know MASTER; an error or junk: ask the next. */
	log_event(LOG_WARN, "redis_sentinel_no_master", "sentinel=%s:%d master=%s reply=%d",
		  s->cfg.host[s->first], s->cfg.port[s->first], s->cfg.master,
		  reply ? reply->type : -1);
	redisAsyncDisconnect(ac);
	sentinel_ask_done(b, true);
}

static void sentinel_ask_connected(const redisAsyncContext *ac, int status)
{
	broker_t *b = ac->data;

	if (status != REDIS_OK && ac == b->sentinel.ask) {
		/* hiredis frees the context after this callback. */
		log_event(LOG_DEBUG, "redis_sentinel_connect_failed", "error=\"%s\"", ac->errstr);
		sentinel_ask_done(b, true);
	}
}

static void sentinel_ask_disconnected(const redisAsyncContext *ac, int status)
{
	broker_t *b = ac->data;

	(void)status;
	if (ac == b->sentinel.ask)
		sentinel_ask_done(b, true);
	broker_maybe_stopped(b);
}

static void sentinel_timeout_cb(uv_timer_t *t)
{
	broker_t *b = t->data;
	redisAsyncContext *ac = b->sentinel.ask;

	if (!ac)
		return;
	log_event(LOG_WARN, "redis_sentinel_timeout", "sentinel=%s:%d after_ms=%u",
		  b->sentinel.cfg.host[b->sentinel.first], b->sentinel.cfg.port[b->sentinel.first],
		  b->timeout_ms);
	b->sentinel.ask = NULL; /* its callbacks now see another context (or none) */
	redisAsyncFree(ac);
	sentinel_ask_done(b, true);
}

/* Asks the Sentinel s->first for MASTER's address. */
static void sentinel_ask_next(broker_t *b)
{
	broker_sentinel_t *s = &b->sentinel;
	redisAsyncContext *ac = redisAsyncConnect(s->cfg.host[s->first], s->cfg.port[s->first]);

	if (!ac || ac->err || redis_uv_attach(ac, b->loop) != REDIS_OK) {
		if (ac)
			redisAsyncFree(ac);
		sentinel_ask_done(b, true);
		return;
	}
	ac->data = b;
	redisAsyncSetConnectCallback(ac, sentinel_ask_connected);
	redisAsyncSetDisconnectCallback(ac, sentinel_ask_disconnected);
	s->ask = ac;
	uv_timer_start(&s->timer, sentinel_timeout_cb, b->timeout_ms, 0);
	redisAsyncCommand(ac, sentinel_addr_cb, b, "SENTINEL get-master-addr-by-name %s",
			  s->cfg.master);
}

void broker_sentinel_resolve(broker_conn_t *c)
{
	broker_t *b = c->b;
	broker_sentinel_t *s = &b->sentinel;

	s->waiting[c == &b->cmd] = c;
	c->state = CONN_RESOLVING;
	if (s->ask)
		return; /* the round in flight answers both */
	s->asked = 0;
	sentinel_ask_next(b);
}

/* --- confirm: ROLE on a new connection --------------------------------------- */

static void sentinel_role_cb(redisAsyncContext *ac, void *r, void *privdata)
{
	broker_conn_t *c = privdata;
	redisReply *reply = r;

	if (!reply || c->ac != ac || c->state != CONN_CONNECTING)
		return; /* the connection went meanwhile */
	if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
	    reply->element[0]->type == REDIS_REPLY_STRING &&
	    !strcmp(reply->element[0]->str, "master")) {
		uv_timer_stop(&c->timer);
		broker_conn_confirmed(c);
		return;
	}
	log_event(LOG_WARN, "redis_role_not_master", "conn=%s addr=%s:%d role=%s", c->name,
		  c->b->sentinel.ip, c->b->sentinel.port,
		  reply->type == REDIS_REPLY_ARRAY && reply->elements &&
			  reply->element[0]->type == REDIS_REPLY_STRING
		      ? reply->element[0]->str
		      : "?");
	redisAsyncDisconnect(ac); /* its loss asks the Sentinels again */
}

int broker_sentinel_confirm(broker_conn_t *c)
{
	uv_timer_start(&c->timer, broker_conn_timeout_cb, c->b->timeout_ms, 0);
	return redisAsyncCommand(c->ac, sentinel_role_cb, c, "ROLE");
}

/* --- follow: +switch-master ------------------------------------------------- */

static void sentinel_switch_cb(redisAsyncContext *ac, void *r, void *privdata)
{
	broker_t *b = privdata;
	redisReply *reply = r, *msg;
	size_t n;

	(void)ac;
	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3)
		return;
	msg = reply->element[2];
	if (reply->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(reply->element[0]->str, "message") || msg->type != REDIS_REPLY_STRING)
		return; /* the subscribe's own ack */
	/* "MASTER OLD_IP OLD_PORT NEW_IP NEW_PORT" */
	n = strlen(b->sentinel.cfg.master);
	if (msg->len <= n || strncmp(msg->str, b->sentinel.cfg.master, n) || msg->str[n] != ' ')
		return;
	log_event(LOG_WARN, "redis_sentinel_switch", "master=%s switch=\"%.200s\"",
		  b->sentinel.cfg.master, msg->str);
	/* Both, whatever state they are in: each reconnects through the Sentinels. */
	for (int i = 0; i < 2; i++) {
		broker_conn_t *c = i ? &b->cmd : &b->sub;

		if (c->ac && c->state == CONN_UP) {
			redisAsyncDisconnect(c->ac);
		} else if (c->state == CONN_IDLE) {
			/* Backing off after the old primary died: the new one is known, go now. */
			c->attempt = 0;
			uv_timer_start(&c->timer, broker_conn_timeout_cb, 0, 0);
		}
	}
}

static void sentinel_watch_retry_cb(uv_timer_t *t)
{
	sentinel_watch_open(t->data);
}

static void sentinel_watch_connected(const redisAsyncContext *ac, int status)
{
	broker_t *b = ac->data;

	if (status != REDIS_OK) {
		b->sentinel.watch = NULL;
		b->sentinel.watch_at = (b->sentinel.watch_at + 1) % b->sentinel.cfg.n;
		if (!b->stopping)
			uv_timer_start(&b->sentinel.watch_timer, sentinel_watch_retry_cb,
				       SENTINEL_WATCH_RETRY_MS, 0);
		broker_maybe_stopped(b);
	}
}

static void sentinel_watch_disconnected(const redisAsyncContext *ac, int status)
{
	broker_t *b = ac->data;

	(void)status;
	b->sentinel.watch = NULL;
	b->sentinel.watch_at = (b->sentinel.watch_at + 1) % b->sentinel.cfg.n;
	if (!b->stopping) {
		log_event(LOG_WARN, "redis_sentinel_watch_lost", "master=%s",
			  b->sentinel.cfg.master);
		uv_timer_start(&b->sentinel.watch_timer, sentinel_watch_retry_cb,
			       SENTINEL_WATCH_RETRY_MS, 0);
	}
	broker_maybe_stopped(b);
}

static void sentinel_watch_open(broker_t *b)
{
	broker_sentinel_t *s = &b->sentinel;
	redisAsyncContext *ac;

	if (b->stopping || s->watch)
		return;
	ac = redisAsyncConnect(s->cfg.host[s->watch_at], s->cfg.port[s->watch_at]);
	if (!ac || ac->err || redis_uv_attach(ac, b->loop) != REDIS_OK) {
		if (ac)
			redisAsyncFree(ac);
		s->watch_at = (s->watch_at + 1) % s->cfg.n;
		uv_timer_start(&s->watch_timer, sentinel_watch_retry_cb, SENTINEL_WATCH_RETRY_MS,
			       0);
		return;
	}
	ac->data = b;
	redisAsyncSetConnectCallback(ac, sentinel_watch_connected);
	redisAsyncSetDisconnectCallback(ac, sentinel_watch_disconnected);
	s->watch = ac;
	redisAsyncCommand(ac, sentinel_switch_cb, b, "SUBSCRIBE +switch-master");
}

int broker_sentinel_start(broker_t *b)
{
	broker_sentinel_t *s = &b->sentinel;

	if (!broker_sentinel_mode(b))
		return 0;
	if (uv_timer_init(b->loop, &s->timer) || uv_timer_init(b->loop, &s->watch_timer))
		return -1;
	s->timer.data = s->watch_timer.data = b;
	s->timers = 2;
	sentinel_watch_open(b);
	return 0;
}

static void sentinel_timer_closed(uv_handle_t *h)
{
	broker_t *b = h->data;

	b->sentinel.timers--;
	broker_maybe_stopped(b);
}

void broker_sentinel_stop(broker_t *b)
{
	broker_sentinel_t *s = &b->sentinel;

	if (!broker_sentinel_mode(b) || !s->timers)
		return;
	uv_close((uv_handle_t *)&s->timer, sentinel_timer_closed);
	uv_close((uv_handle_t *)&s->watch_timer, sentinel_timer_closed);
	if (s->ask) {
		redisAsyncContext *ac = s->ask;

		s->ask = NULL;
		redisAsyncFree(ac);
	}
	sentinel_answer(b, NULL, 0);
	if (s->watch && (s->watch->c.flags & REDIS_CONNECTED)) {
		redisAsyncDisconnect(s->watch); /* its disconnect callback clears it */
	} else if (s->watch) {
		redisAsyncContext *ac = s->watch;

		s->watch = NULL; /* a context that never connected calls nothing when freed */
		redisAsyncFree(ac);
	}
}

bool broker_sentinel_stopped(const broker_t *b)
{
	const broker_sentinel_t *s = &b->sentinel;

	return !broker_sentinel_mode(b) || (!s->ask && !s->watch && s->timers == 0);
}
