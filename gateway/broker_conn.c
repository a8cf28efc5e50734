/*
 * broker_conn.c - the life of the broker's two connections: resolve the
 * host off the loop thread, connect with a timeout, back off and reconnect
 * after a failure or a loss, and stop.  Each connection's state
 * (broker_conn_state_t) changes only here; broker.c sends on a connection
 * that is CONN_UP.
 */
#include "broker_private.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdlib.h>

#include <hiredis/hiredis.h>

#include "log.h"
#include "redis_uv.h"

#define BROKER_BACKOFF_MIN_MS 100
#define BROKER_BACKOFF_MAX_MS 5000

static void broker_conn_connect(broker_conn_t *c);
static void broker_conn_up(broker_conn_t *c);
static void broker_conn_down(broker_conn_t *c);

void broker_conn_timeout_cb(uv_timer_t *t)
{
	broker_conn_t *c = t->data;

	if (c->state == CONN_CONNECTING && c->ac) {
		/* Connect timeout (or, in Sentinel mode, ROLE unanswered): a context that never
		 * connected calls no callback when freed; a connected one reports its loss. */
		log_event(LOG_WARN, "redis_connect_timeout", "conn=%s after_ms=%u", c->name,
			  c->b->timeout_ms);
		redisAsyncFree(c->ac);
		c->ac = NULL;
		if (c->state == CONN_CONNECTING)
			broker_conn_down(c);
		return;
	}
	if (c->state == CONN_IDLE)
		broker_conn_connect(c);
}

/* Schedules the next attempt: 100 ms doubling to 5 s, each with 50..100% jitter. */
void broker_conn_retry(broker_conn_t *c)
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
	uv_timer_start(&c->timer, broker_conn_timeout_cb, delay, 0);
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
	if (broker_sentinel_mode(c->b)) {
		/* A Sentinel may lag a failover: used once ROLE says master. */
		if (broker_sentinel_confirm(c) != REDIS_OK)
			redisAsyncDisconnect(c->ac);
		return;
	}
	broker_conn_confirmed(c);
}

void broker_conn_confirmed(broker_conn_t *c)
{
	const redisAsyncContext *ac = c->ac;

	c->state = CONN_UP;
	c->attempt = 0;
	/* Notice a Redis host that vanished without a FIN (a moved VIP, a dead host). */
	if (!c->b->redis_unix[0])
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

void broker_conn_open(broker_conn_t *c, const char *ip, int port)
{
	broker_t *b = c->b;
	redisAsyncContext *ac;

	ac = b->redis_unix[0] ? redisAsyncConnectUnix(b->redis_unix) : redisAsyncConnect(ip, port);
	if (!ac || ac->err) {
		log_event(c->attempt ? LOG_DEBUG : LOG_WARN, "redis_connect_failed",
			  "conn=%s error=\"%s\"", c->name, ac ? ac->errstr : "out of memory");
		if (ac)
			redisAsyncFree(ac);
		broker_conn_retry(c);
		return;
	}
	ac->data = c;
	if (redis_uv_attach(ac, c->b->loop) != REDIS_OK) {
		log_event(LOG_ERROR, "redis_attach_failed", "conn=%s", c->name);
		redisAsyncFree(ac);
		broker_conn_retry(c);
		return;
	}
	redisAsyncSetConnectCallback(ac, broker_on_connect);
	redisAsyncSetDisconnectCallback(ac, broker_on_disconnect);
	c->ac = ac;
	c->state = CONN_CONNECTING;
	uv_timer_start(&c->timer, broker_conn_timeout_cb, b->timeout_ms, 0);
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
			  c->b->redis_host, status ? uv_strerror(status) : "no address");
		broker_conn_retry(c);
		return;
	}
	broker_conn_open(c, ip, c->b->redis_port);
}

static bool broker_is_numeric(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static void broker_conn_connect(broker_conn_t *c)
{
	broker_t *b = c->b;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	int rc;

	if (broker_sentinel_mode(b)) {
		broker_sentinel_resolve(c);
		return;
	}
	if (b->redis_unix[0] || broker_is_numeric(b->redis_host)) {
		broker_conn_open(c, b->redis_host, b->redis_port);
		return;
	}
	c->gai.data = c;
	rc = uv_getaddrinfo(b->loop, &c->gai, broker_gai_cb, b->redis_host, NULL, &hints);
	if (rc) {
		log_event(LOG_WARN, "redis_resolve_failed", "conn=%s host=%s error=\"%s\"", c->name,
			  b->redis_host, uv_strerror(rc));
		broker_conn_retry(c);
		return;
	}
	c->gai_active = true;
	c->state = CONN_RESOLVING;
}

static void broker_conn_up(broker_conn_t *c)
{
	broker_t *b = c->b;

	if (c == &b->cmd) {
		broker_script_load(b);
		b->ev.commands_up(b->ev.arg);
	} else {
		broker_hb_sub_up(b); /* its SUBSCRIBE goes before the orders' */
		b->ev.subscriber_up(b->ev.arg);
	}
}

static void broker_conn_down(broker_conn_t *c)
{
	bool was_up = c->state == CONN_UP;

	if (c == &c->b->sub && was_up) {
		broker_hb_sub_down(c->b);
		c->b->ev.subscriber_down(c->b->ev.arg);
	}
	broker_conn_retry(c);
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
	if (broker_hb_start(b) || broker_sentinel_start(b))
		return BROKER_ENOMEM;
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

void broker_maybe_stopped(broker_t *b)
{
	broker_conn_t *conns[] = {&b->sub, &b->cmd};

	if (!b->stopping || !b->stopped || !b->hb.timer_closed || !broker_sentinel_stopped(b))
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
	broker_hb_stop(b);
	broker_sentinel_stop(b);
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
