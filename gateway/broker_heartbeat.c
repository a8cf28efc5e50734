/*
 * broker_heartbeat.c - proof that the subscriber still receives.
 *
 * A subscriber connection can die without closing: a proxy or NAT that
 * forgets the flow, a half-open path, a Redis that dropped the client while
 * the socket stays up.  TCP keepalive sees none of these in time (and nothing
 * on a unix socket), and no message only means no update.  So the node
 * sends itself one: every BROKER_HB_INTERVAL_MS it PUBLISHes on its own
 * channel, trk:hb:{NODE} (NODE = host:pid:random, no other process shares
 * it), from the command connection, the path updates take; the subscriber
 * subscribes to that channel each time it connects.  A heartbeat that Redis
 * accepted and that has not come back within BROKER_HB_DEAD_MS (or a
 * subscription to the channel that was not acknowledged within it) means
 * the subscriber is stalled: it is logged, counted, and the connection is
 * torn down, which reconnects it the way a loss does (the hub subscribes
 * every order again and resyncs each watcher from its cursor).  From that
 * moment until a heartbeat comes back on the new connection the subscriber
 * is not healthy (broker_subscriber_healthy(), /readyz 503).
 *
 * The wait counts from the heartbeat's send, but only once Redis replied to
 * its PUBLISH: a stalled command connection (no reply) is not blamed on the
 * subscriber.  With a tick each second, a stall is found 3 to 4 s after the
 * path went dark.
 * One heartbeat is in flight at a time, so a stuck command connection
 * queues at most one.  The work per tick is constant: nothing here looks at
 * orders or watchers.
 *
 * Both bounds are constants, not settings: they only need to be well above
 * Redis's round trip and well below what a watcher notices (settings.c has
 * no room for two more rows that nobody needs to tune).
 */
#include "broker_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "log.h"

#define BROKER_HB_INTERVAL_MS 1000 /* one heartbeat, and one check, per second */
#define BROKER_HB_DEAD_MS 3000	   /* a heartbeat missing this long: the subscriber is stalled */

void broker_hb_init(broker_t *b)
{
	char host[64] = "node";
	unsigned char rnd[6] = {0};

	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		for (size_t i = 0; i < sizeof(rnd); i++)
			rnd[i] = (unsigned char)rand();
	snprintf(b->hb.channel, sizeof(b->hb.channel), "trk:hb:{%.60s:%d:%02x%02x%02x%02x%02x%02x}",
		 host, (int)getpid(), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
}

bool broker_subscriber_healthy(const broker_t *b)
{
	return !b->hb.stalled;
}

/* What the subscriber receives on the heartbeat channel: its subscription's ack, or a heartbeat. */
static void broker_hb_sub_cb(redisAsyncContext *ac, void *r, void *privdata)
{
	broker_t *b = ((broker_conn_t *)ac->data)->b;
	redisReply *reply = r;
	const char *kind;

	if (!reply)
		return; /* the connection is going away; broker_hb_sub_down() follows */
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
	    reply->element[0]->type != REDIS_REPLY_STRING) {
		b->stats.bad_replies++;
		log_event(LOG_WARN, "redis_unexpected_reply", "conn=subscriber channel=heartbeat");
		return;
	}
	kind = reply->element[0]->str;
	if (!strcmp(kind, "subscribe")) {
		b->hb.subscribed = true;
		b->hb.waiting = false;
	} else if (!strcmp(kind, "message")) {
		uint64_t now = uv_now(b->loop);

		b->hb.waiting = false;
		if (b->hb.stalled) {
			b->hb.stalled = false;
			log_event(LOG_INFO, "redis_subscriber_healed", "unhealthy_ms=%llu",
				  (unsigned long long)(now - b->hb.stalled_at));
		}
	}
}

/* Redis answered a heartbeat's PUBLISH: from now on it must reach the subscriber. */
static void broker_hb_publish_cb(redisAsyncContext *ac, void *r, void *privdata)
{
	broker_t *b = ((broker_conn_t *)ac->data)->b;
	redisReply *reply = r;
	unsigned gen = (unsigned)(uintptr_t)privdata;

	b->hb.in_flight = false;
	if (!reply)
		return; /* the command connection is gone: nothing was proven either way */
	if (reply->type != REDIS_REPLY_INTEGER) {
		b->stats.bad_replies++;
		log_event(LOG_DEBUG, "redis_heartbeat_refused", "error=\"%.200s\"",
			  reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
		return;
	}
	/* A reply for an earlier subscriber connection proves nothing about this one.  Zero
	 * receivers means Redis no longer counts our subscription: the deadline will tell. */
	if (gen != b->hb.sub_gen || !b->hb.subscribed || b->hb.waiting)
		return;
	b->hb.waiting = true;
	b->hb.waiting_since = b->hb.sent_at;
}

/* The subscriber did not show it receives: reconnect it, unhealthy until a heartbeat is back. */
static void broker_hb_stalled(broker_t *b, uint64_t now)
{
	redisAsyncContext *ac = b->sub.ac;

	b->stats.subscriber_stalls++;
	if (!b->hb.stalled) {
		b->hb.stalled = true;
		b->hb.stalled_at = now;
	}
	log_event(LOG_WARN, "redis_subscriber_stalled", "waited_ms=%llu for=%s action=reconnect",
		  (unsigned long long)(now - b->hb.waiting_since),
		  b->hb.subscribed ? "heartbeat" : "subscribe_ack");
	b->hb.waiting = false;
	/*
	 * Not redisAsyncDisconnect(): it waits for the replies a stalled connection never
	 * sends.  We are in a timer callback, not in one of hiredis's, so the context is freed
	 * now; its disconnect callback (broker_conn.c) reports the loss and schedules the
	 * reconnect.
	 */
	redisAsyncFree(ac);
}

static void broker_hb_tick(uv_timer_t *t)
{
	broker_t *b = t->data;
	uint64_t now = uv_now(b->loop);

	if (b->stopping || b->sub.state != CONN_UP || !b->sub.ac)
		return;
	if (b->hb.waiting && now - b->hb.waiting_since >= BROKER_HB_DEAD_MS) {
		broker_hb_stalled(b, now);
		return;
	}
	if (!b->hb.subscribed || b->hb.in_flight || b->cmd.state != CONN_UP || !b->cmd.ac)
		return;
	if (redisAsyncCommand(b->cmd.ac, broker_hb_publish_cb, (void *)(uintptr_t)b->hb.sub_gen,
			      "PUBLISH %s %llu", b->hb.channel,
			      (unsigned long long)++b->hb.seq) == REDIS_OK) {
		b->hb.in_flight = true;
		b->hb.sent_at = now;
	}
}

void broker_hb_sub_up(broker_t *b)
{
	b->hb.sub_gen++;
	b->hb.subscribed = false;
	/* The subscription's ack is the first proof asked of a new connection. */
	b->hb.waiting = true;
	b->hb.waiting_since = uv_now(b->loop);
	/* A send that fails leaves the wait running: the tick reconnects after the bound. */
	redisAsyncCommand(b->sub.ac, broker_hb_sub_cb, NULL, "SUBSCRIBE %s", b->hb.channel);
}

void broker_hb_sub_down(broker_t *b)
{
	b->hb.subscribed = false;
	b->hb.waiting = false;
}

int broker_hb_start(broker_t *b)
{
	if (uv_timer_init(b->loop, &b->hb.timer))
		return BROKER_ENOMEM;
	b->hb.timer.data = b;
	b->hb.timer_inited = true;
	uv_timer_start(&b->hb.timer, broker_hb_tick, BROKER_HB_INTERVAL_MS, BROKER_HB_INTERVAL_MS);
	return BROKER_OK;
}

static void broker_hb_closed(uv_handle_t *h)
{
	broker_t *b = h->data;

	b->hb.timer_closed = true;
	broker_maybe_stopped(b);
}

void broker_hb_stop(broker_t *b)
{
	if (!b->hb.timer_inited) {
		b->hb.timer_closed = true;
		return;
	}
	uv_timer_stop(&b->hb.timer);
	uv_close((uv_handle_t *)&b->hb.timer, broker_hb_closed);
}
