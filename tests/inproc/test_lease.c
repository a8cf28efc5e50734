/*
 * In-process tests of the poll lease (broker_lease in gateway/broker.c,
 * proto/poll_lease.lua): two brokers on one uv loop play two nodes against
 * one real redis-server on a unix socket.  What Redis itself holds is read
 * with a plain synchronous hiredis connection of the test's own, which also
 * flushes the script cache.
 *
 * Every test starts from two brokers that are ready and ends with
 * broker_stop() of both, then asserts uv_loop_close() == 0.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "broker.h"
#include "config.h"
#include "inproc.h"
#include "log.h"

#define WAIT_MS 5000
/* Reconnecting backs off up to 5 s (broker.c); a restart may need a few attempts. */
#define RECONNECT_WAIT_MS 20000
#define LEASE_MS 10000	   /* long enough never to expire during a test that does not wait for it */
#define SHORT_LEASE_MS 200 /* the lease a dead holder leaves behind */

static inproc_redis_t redis;

/* One node: its broker and the id it holds leases under. */
typedef struct node {
	broker_t *b;
	const char *id;
	bool stopped;
} node_t;

typedef struct fixture {
	inproc_loop_t l;
	config_t cfg; /* the defaults the brokers' settings are taken from, as the server does */
	node_t a, b;
} fixture_t;

/* One answer of broker_lease. */
typedef struct lease_answer {
	int calls;
	int rc;
	bool held;
	int64_t remaining_ms;
	char status[32];   /* the order's stored status, "" for none */
	size_t source_len; /* the stored source's length, 0 for none */
} lease_answer_t;

/* --- the broker's events: nothing here subscribes or waits for them ---------- */

static void ev_message(void *arg, const char *order_id, size_t id_len, const char *payload,
		       size_t len, uint64_t now_ms)
{
}

static void ev_order(void *arg, const char *order_id, size_t id_len)
{
}

static void ev_conn(void *arg)
{
}

/* --- conditions ---------------------------------------------------------------- */

static bool both_ready(void *arg)
{
	fixture_t *fx = arg;

	return broker_ready(fx->a.b) && broker_ready(fx->b.b);
}

static bool both_down(void *arg)
{
	fixture_t *fx = arg;

	return !broker_ready(fx->a.b) && !broker_ready(fx->b.b);
}

static bool both_stopped(void *arg)
{
	fixture_t *fx = arg;

	return fx->a.stopped && fx->b.stopped;
}

static bool answered(void *arg)
{
	lease_answer_t *a = arg;

	return a->calls > 0;
}

/* --- helpers ------------------------------------------------------------------- */

static void on_lease(void *arg, int rc, bool held, int64_t remaining_ms, const char *status,
		     const char *source, size_t source_len)
{
	lease_answer_t *a = arg;

	a->calls++;
	a->rc = rc;
	a->held = held;
	a->remaining_ms = remaining_ms;
	snprintf(a->status, sizeof(a->status), "%s", status ? status : "");
	a->source_len = source ? source_len : 0;
}

/* Sends one lease action of node n and runs the loop until it is answered. */
static lease_answer_t lease(fixture_t *fx, node_t *n, const char *order_id,
			    broker_lease_action_t action, unsigned ttl_ms)
{
	lease_answer_t a;

	memset(&a, 0, sizeof(a));
	assert_int_equal(
	    broker_lease(n->b, order_id, n->id, action, ttl_ms, NULL, on_lease, &a, NULL),
	    BROKER_OK);
	/* Never from within the call that sent it. */
	assert_int_equal(a.calls, 0);
	assert_true(inproc_run_until(&fx->l, answered, &a, WAIT_MS));
	assert_int_equal(a.calls, 1);
	return a;
}

/* The test's own connection to the server: one command, its reply (the caller frees it). */
static redisReply *redis_command(const char *fmt, ...)
{
	struct timeval tv = {2, 0};
	redisContext *c = redisConnectUnixWithTimeout(redis.sock, tv);
	redisReply *reply;
	va_list ap;

	assert_non_null(c);
	assert_int_equal(c->err, 0);
	va_start(ap, fmt);
	reply = redisvCommand(c, fmt, ap);
	va_end(ap);
	redisFree(c);
	assert_non_null(reply);
	return reply;
}

/* The number after "<name>" in an INFO section ("errorstat_NOSCRIPT:count="); 0 when absent. */
static long long info_count(const char *section, const char *name)
{
	redisReply *r = redis_command("INFO %s", section);
	const char *at;
	long long n = 0;

	assert_int_equal(r->type, REDIS_REPLY_STRING);
	at = strstr(r->str, name);
	if (at)
		n = strtoll(at + strlen(name), NULL, 10);
	freeReplyObject(r);
	return n;
}

/* Who holds order_id's lease in Redis ("" for no one), and its PTTL. */
static void stored_lease(const char *order_id, char *holder, size_t size, long long *pttl)
{
	redisReply *r = redis_command("GET trk:{%s}:poll_lease", order_id);

	snprintf(holder, size, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
	freeReplyObject(r);
	r = redis_command("PTTL trk:{%s}:poll_lease", order_id);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	*pttl = r->integer;
	freeReplyObject(r);
}

static void on_stopped(void *arg)
{
	node_t *n = arg;

	n->stopped = true;
}

/* --- setup and teardown -------------------------------------------------------- */

static int group_setup(void **state)
{
	(void)state;
	log_set_level(LOG_ERROR);
	/* hiredis writes with write(): a dead server's socket would kill the test. */
	signal(SIGPIPE, SIG_IGN);
	return inproc_redis_start(&redis, WAIT_MS);
}

static int group_teardown(void **state)
{
	(void)state;
	inproc_redis_cleanup(&redis);
	return 0;
}

static void node_start(fixture_t *fx, node_t *n, const char *id)
{
	const broker_config_t bcfg = {
	    .redis_unix = fx->cfg.redis_unix,
	    .redis_host = fx->cfg.redis_host,
	    .redis_port = fx->cfg.redis_port,
	    .timeout_ms = fx->cfg.redis_timeout_ms,
	    .ttl_active = fx->cfg.ttl_active,
	    .ttl_terminal = fx->cfg.ttl_terminal,
	    .log_maxlen = fx->cfg.log_maxlen,
	    .courier_visible_from = fx->cfg.courier_visible_from,
	};
	const broker_events_t ev = {
	    .message = ev_message,
	    .subscribed = ev_order,
	    .unsubscribed = ev_order,
	    .subscriber_up = ev_conn,
	    .subscriber_down = ev_conn,
	    .commands_up = ev_conn,
	    .arg = n,
	};

	n->id = id;
	n->b = broker_new(&fx->l.loop, &bcfg, &ev);
	assert_non_null(n->b);
	assert_int_equal(broker_start(n->b), BROKER_OK);
}

static int lease_setup(void **state)
{
	fixture_t *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	/* A test before may have killed it and failed before restarting it. */
	if (!redis.pid)
		assert_int_equal(inproc_redis_start(&redis, WAIT_MS), 0);
	assert_int_equal(inproc_loop_init(&fx->l), 0);
	config_defaults(&fx->cfg);
	snprintf(fx->cfg.redis_unix, sizeof(fx->cfg.redis_unix), "%s", redis.sock);
	node_start(fx, &fx->a, "node-a");
	node_start(fx, &fx->b, "node-b");
	assert_true(inproc_run_until(&fx->l, both_ready, fx, WAIT_MS));
	*state = fx;
	return 0;
}

static int lease_teardown(void **state)
{
	fixture_t *fx = *state;

	broker_stop(fx->a.b, on_stopped, &fx->a);
	broker_stop(fx->b.b, on_stopped, &fx->b);
	assert_true(inproc_run_until(&fx->l, both_stopped, fx, WAIT_MS));
	broker_free(fx->a.b);
	broker_free(fx->b.b);
	assert_int_equal(inproc_loop_close(&fx->l, WAIT_MS), 0);
	free(fx);
	return 0;
}

/* --- tests --------------------------------------------------------------------- */

static void only_one_node_holds_an_orders_lease_until_it_releases_it(void **state)
{
	fixture_t *fx = *state;
	const char *order = "lease-one";
	lease_answer_t ans;
	char holder[64];
	long long pttl;

	ans = lease(fx, &fx->a, order, BROKER_LEASE_ACQUIRE, LEASE_MS);
	assert_int_equal(ans.rc, BROKER_OK);
	assert_true(ans.held);
	assert_int_equal(ans.remaining_ms, LEASE_MS);
	/* Beside the order's other keys, holding the holder's id, with a PX expiry. */
	stored_lease(order, holder, sizeof(holder), &pttl);
	assert_string_equal(holder, "node-a");
	assert_true(pttl > 0 && pttl <= LEASE_MS);

	/* B can neither take it nor renew it; it learns how long A's lease has left. */
	ans = lease(fx, &fx->b, order, BROKER_LEASE_ACQUIRE, LEASE_MS);
	assert_int_equal(ans.rc, BROKER_OK);
	assert_false(ans.held);
	assert_true(ans.remaining_ms > 0 && ans.remaining_ms <= LEASE_MS);
	ans = lease(fx, &fx->b, order, BROKER_LEASE_RENEW, LEASE_MS);
	assert_int_equal(ans.rc, BROKER_OK);
	assert_false(ans.held);
	assert_true(ans.remaining_ms > 0);

	/* A renews it: its time starts again. */
	ans = lease(fx, &fx->a, order, BROKER_LEASE_RENEW, 2 * LEASE_MS);
	assert_int_equal(ans.rc, BROKER_OK);
	assert_true(ans.held);
	assert_int_equal(ans.remaining_ms, 2 * LEASE_MS);
	stored_lease(order, holder, sizeof(holder), &pttl);
	assert_true(pttl > LEASE_MS);

	/* B's release leaves A's lease alone. */
	ans = lease(fx, &fx->b, order, BROKER_LEASE_RELEASE, 0);
	assert_int_equal(ans.rc, BROKER_OK);
	assert_false(ans.held);
	assert_true(ans.remaining_ms > LEASE_MS);
	stored_lease(order, holder, sizeof(holder), &pttl);
	assert_string_equal(holder, "node-a");

	/* A's acquire again is A's lease again, not a refusal. */
	ans = lease(fx, &fx->a, order, BROKER_LEASE_ACQUIRE, LEASE_MS);
	assert_true(ans.held);

	/* A releases it: gone, and B takes it at once. */
	ans = lease(fx, &fx->a, order, BROKER_LEASE_RELEASE, 0);
	assert_int_equal(ans.rc, BROKER_OK);
	assert_false(ans.held);
	assert_int_equal(ans.remaining_ms, 0);
	stored_lease(order, holder, sizeof(holder), &pttl);
	assert_string_equal(holder, "");
	ans = lease(fx, &fx->b, order, BROKER_LEASE_ACQUIRE, LEASE_MS);
	assert_int_equal(ans.rc, BROKER_OK);
	assert_true(ans.held);
	stored_lease(order, holder, sizeof(holder), &pttl);
	assert_string_equal(holder, "node-b");

	/* Now A is the one refused, and a release of nothing held is not an error. */
	ans = lease(fx, &fx->a, order, BROKER_LEASE_RENEW, LEASE_MS);
	assert_false(ans.held);
	assert_false(lease(fx, &fx->b, order, BROKER_LEASE_RELEASE, 0).held);
	ans = lease(fx, &fx->b, order, BROKER_LEASE_RELEASE, 0);
	assert_int_equal(ans.rc, BROKER_OK);
	assert_false(ans.held);
	assert_int_equal(ans.remaining_ms, 0);
	/* Each order has its own lease. */
	assert_true(lease(fx, &fx->a, "lease-one-other", BROKER_LEASE_ACQUIRE, LEASE_MS).held);
	assert_true(lease(fx, &fx->b, "lease-one-another", BROKER_LEASE_ACQUIRE, LEASE_MS).held);
}

/* B waits for a lease it was refused the way a poller would: it retries when the holder's time is
 * up.
 */
typedef struct takeover {
	fixture_t *fx;
	const char *order;
	uv_timer_t retry;
	lease_answer_t last;
	int attempts;
	uint64_t held_at; /* uv_now() when B got the lease; 0 until then */
	bool closed;	  /* the retry timer's close callback ran: the test may return */
} takeover_t;

static void takeover_closed(uv_handle_t *h)
{
	takeover_t *to = h->data;

	to->closed = true;
}

static bool retry_closed(void *arg)
{
	takeover_t *to = arg;

	return to->closed;
}

static void takeover_try(uv_timer_t *t);

static void takeover_answer(void *arg, int rc, bool held, int64_t remaining_ms, const char *status,
			    const char *source, size_t source_len)
{
	takeover_t *to = arg;

	on_lease(&to->last, rc, held, remaining_ms, status, source, source_len);
	assert_int_equal(rc, BROKER_OK);
	if (held) {
		to->held_at = uv_now(&to->fx->l.loop);
		return;
	}
	assert_true(remaining_ms >= 0 && remaining_ms <= SHORT_LEASE_MS);
	uv_timer_start(&to->retry, takeover_try, (uint64_t)remaining_ms + 1, 0);
}

static void takeover_try(uv_timer_t *t)
{
	takeover_t *to = t->data;

	to->attempts++;
	assert_int_equal(broker_lease(to->fx->b.b, to->order, to->fx->b.id, BROKER_LEASE_ACQUIRE,
				      LEASE_MS, NULL, takeover_answer, to, NULL),
			 BROKER_OK);
}

static bool taken_over(void *arg)
{
	takeover_t *to = arg;

	return to->held_at != 0;
}

static void a_lease_its_holder_stops_renewing_is_taken_over_when_it_expires(void **state)
{
	fixture_t *fx = *state;
	takeover_t to = {.fx = fx, .order = "lease-expiry"};
	lease_answer_t ans;
	uint64_t acquired_at;
	char holder[64];
	long long pttl;

	assert_int_equal(uv_timer_init(&fx->l.loop, &to.retry), 0);
	to.retry.data = &to;
	ans = lease(fx, &fx->a, to.order, BROKER_LEASE_ACQUIRE, SHORT_LEASE_MS);
	assert_true(ans.held);
	assert_int_equal(ans.remaining_ms, SHORT_LEASE_MS);
	uv_update_time(&fx->l.loop);
	acquired_at = uv_now(&fx->l.loop);

	/* A goes silent.  B is refused first, then retries when A's time is up. */
	takeover_try(&to.retry);
	assert_true(inproc_run_until(&fx->l, taken_over, &to, WAIT_MS));
	assert_true(to.attempts >= 2);
	assert_true(to.held_at - acquired_at >= SHORT_LEASE_MS / 2);
	stored_lease(to.order, holder, sizeof(holder), &pttl);
	assert_string_equal(holder, "node-b");
	assert_true(pttl > SHORT_LEASE_MS);

	/* A, back, finds the lease is no longer its own and cannot take it back. */
	ans = lease(fx, &fx->a, to.order, BROKER_LEASE_RENEW, SHORT_LEASE_MS);
	assert_int_equal(ans.rc, BROKER_OK);
	assert_false(ans.held);
	assert_true(ans.remaining_ms > SHORT_LEASE_MS);
	assert_false(lease(fx, &fx->a, to.order, BROKER_LEASE_ACQUIRE, SHORT_LEASE_MS).held);

	uv_close((uv_handle_t *)&to.retry, takeover_closed);
	assert_true(inproc_run_until(&fx->l, retry_closed, &to, WAIT_MS));
}

static void a_flushed_script_cache_is_answered_through_eval(void **state)
{
	fixture_t *fx = *state;
	const char *order = "lease-noscript";
	long long noscript, evals;
	redisReply *r;

	/* Both brokers know the script's SHA: their SCRIPT LOAD was answered before this reply. */
	assert_true(lease(fx, &fx->a, order, BROKER_LEASE_ACQUIRE, LEASE_MS).held);
	assert_false(lease(fx, &fx->b, order, BROKER_LEASE_ACQUIRE, LEASE_MS).held);
	noscript = info_count("errorstats", "errorstat_NOSCRIPT:count=");
	evals = info_count("commandstats", "cmdstat_eval:calls=");

	r = redis_command("SCRIPT FLUSH");
	assert_int_equal(r->type, REDIS_REPLY_STATUS);
	freeReplyObject(r);

	/* EVALSHA meets NOSCRIPT; the broker sends the body and the caller sees only the answer. */
	assert_true(lease(fx, &fx->a, order, BROKER_LEASE_RENEW, LEASE_MS).held);
	assert_int_equal(info_count("errorstats", "errorstat_NOSCRIPT:count="), noscript + 1);
	assert_int_equal(info_count("commandstats", "cmdstat_eval:calls="), evals + 1);

	/* That EVAL cached the script again under the same SHA: B's next EVALSHA just works. */
	assert_false(lease(fx, &fx->b, order, BROKER_LEASE_ACQUIRE, LEASE_MS).held);
	assert_true(lease(fx, &fx->a, order, BROKER_LEASE_RELEASE, 0).rc == BROKER_OK);
	assert_true(lease(fx, &fx->b, order, BROKER_LEASE_ACQUIRE, LEASE_MS).held);
	assert_int_equal(info_count("errorstats", "errorstat_NOSCRIPT:count="), noscript + 1);
	assert_int_equal(info_count("commandstats", "cmdstat_eval:calls="), evals + 1);
	assert_int_equal(broker_stats(fx->a.b)->bad_replies, 0);
}

static void wrong_arguments_are_answered_with_a_redis_error(void **state)
{
	fixture_t *fx = *state;
	lease_answer_t ans;

	memset(&ans, 0, sizeof(ans));
	assert_int_equal(broker_lease(fx->a.b, "lease-args", "", BROKER_LEASE_ACQUIRE, LEASE_MS,
				      NULL, on_lease, &ans, NULL),
			 BROKER_OK);
	assert_true(inproc_run_until(&fx->l, answered, &ans, WAIT_MS));
	assert_int_equal(ans.rc, BROKER_EREPLY);
	assert_false(ans.held);
	ans = lease(fx, &fx->a, "lease-args", BROKER_LEASE_ACQUIRE, 0);
	assert_int_equal(ans.rc, BROKER_EREPLY);
	ans = lease(fx, &fx->a, "lease-args", (broker_lease_action_t)7, LEASE_MS);
	assert_int_equal(ans.rc, BROKER_EREPLY);
	/* Nothing was taken, and the connection is still good. */
	assert_true(broker_ready(fx->a.b));
	assert_true(lease(fx, &fx->b, "lease-args", BROKER_LEASE_ACQUIRE, LEASE_MS).held);
}

static void a_cancelled_lease_request_is_never_answered(void **state)
{
	fixture_t *fx = *state;
	lease_answer_t cancelled, after;
	broker_req_t *req = NULL;

	memset(&cancelled, 0, sizeof(cancelled));
	assert_int_equal(broker_lease(fx->a.b, "lease-cancel", fx->a.id, BROKER_LEASE_ACQUIRE,
				      LEASE_MS, NULL, on_lease, &cancelled, &req),
			 BROKER_OK);
	assert_non_null(req);
	broker_req_cancel(req);
	/* Replies come in order on one connection: once A's next is answered, the first was
	 * handled.
	 */
	after = lease(fx, &fx->a, "lease-cancel", BROKER_LEASE_RENEW, LEASE_MS);
	assert_int_equal(cancelled.calls, 0);
	/* It was sent and done all the same. */
	assert_true(after.held);
}

static void a_lease_request_when_redis_dies_is_answered_lost_not_left_hanging(void **state)
{
	fixture_t *fx = *state;
	lease_answer_t in_flight, refused;

	memset(&in_flight, 0, sizeof(in_flight));
	assert_int_equal(broker_lease(fx->a.b, "lease-lost", fx->a.id, BROKER_LEASE_ACQUIRE,
				      LEASE_MS, NULL, on_lease, &in_flight, NULL),
			 BROKER_OK);
	/* Killed before the loop ran: the command was never written, or never answered. */
	inproc_redis_kill(&redis);
	assert_true(inproc_run_until(&fx->l, answered, &in_flight, WAIT_MS));
	assert_int_equal(in_flight.calls, 1);
	assert_int_equal(in_flight.rc, BROKER_ELOST);
	assert_false(in_flight.held);
	assert_true(inproc_run_until(&fx->l, both_down, fx, WAIT_MS));

	/* Down: refused at once, and its callback never called. */
	memset(&refused, 0, sizeof(refused));
	assert_int_equal(broker_lease(fx->a.b, "lease-lost", fx->a.id, BROKER_LEASE_ACQUIRE,
				      LEASE_MS, NULL, on_lease, &refused, NULL),
			 BROKER_EDOWN);

	/* Back, empty and without the script: the lease works again from both nodes. */
	assert_int_equal(inproc_redis_start(&redis, WAIT_MS), 0);
	assert_true(inproc_run_until(&fx->l, both_ready, fx, RECONNECT_WAIT_MS));
	assert_true(lease(fx, &fx->a, "lease-lost", BROKER_LEASE_ACQUIRE, LEASE_MS).held);
	assert_false(lease(fx, &fx->b, "lease-lost", BROKER_LEASE_ACQUIRE, LEASE_MS).held);
	assert_int_equal(refused.calls, 0);
}

/* --- the order's status, read with the lease -------------------------------------- */

/*
 * Each answer carries the order's stored status: none without a state, the
 * state's own once the apply script wrote one (a poller learns that the
 * order is over in the round trip that renews its lease).
 */
static void the_lease_answer_carries_the_orders_stored_status(void **state)
{
	fixture_t *fx = *state;
	redisReply *r;
	lease_answer_t a;

	a = lease(fx, &fx->a, "lease-status", BROKER_LEASE_ACQUIRE, LEASE_MS);
	assert_true(a.held);
	assert_string_equal(a.status, "");
	r = redis_command("HSET trk:{lease-status}:state state %s cursor 1-0",
			  "{\"order_id\":\"lease-status\",\"status\":\"delivered\"}");
	freeReplyObject(r);
	a = lease(fx, &fx->a, "lease-status", BROKER_LEASE_RENEW, LEASE_MS);
	assert_true(a.held);
	assert_string_equal(a.status, "delivered");
	a = lease(fx, &fx->b, "lease-status", BROKER_LEASE_ACQUIRE, LEASE_MS);
	assert_false(a.held);
	assert_string_equal(a.status, "delivered");
	/* A state that is not JSON (not this project's) reads as no status. */
	r = redis_command("HSET trk:{lease-status}:state state %s", "not json");
	freeReplyObject(r);
	a = lease(fx, &fx->a, "lease-status", BROKER_LEASE_RELEASE, LEASE_MS);
	assert_int_equal(a.rc, BROKER_OK);
	assert_false(a.held);
	assert_string_equal(a.status, "");
}

/*
 * With the providers a node polls, acquire takes the lease only while the
 * source names one of them, and renew gives it up once it does not (a
 * DELETE of the source, or a source moved to another provider, ends the
 * polling within a renewal); the source comes back with every answer.
 */
static void the_lease_follows_the_orders_source_when_providers_are_given(void **state)
{
	fixture_t *fx = *state;
	char holder[64];
	long long pttl;
	redisReply *r;
	lease_answer_t a;

	memset(&a, 0, sizeof(a));
	assert_int_equal(broker_lease(fx->a.b, "lease-src", fx->a.id, BROKER_LEASE_ACQUIRE,
				      LEASE_MS, "uber_direct,onfleet", on_lease, &a, NULL),
			 BROKER_OK);
	assert_true(inproc_run_until(&fx->l, answered, &a, WAIT_MS));
	assert_int_equal(a.rc, BROKER_OK);
	assert_false(a.held); /* no source */
	assert_int_equal(a.source_len, 0);
	r = redis_command("SET trk:{lease-src}:source %s",
			  "{\"provider\":\"onfleet\",\"ref\":\"w1\"}");
	freeReplyObject(r);
	memset(&a, 0, sizeof(a));
	assert_int_equal(broker_lease(fx->a.b, "lease-src", fx->a.id, BROKER_LEASE_ACQUIRE,
				      LEASE_MS, "uber_direct,onfleet", on_lease, &a, NULL),
			 BROKER_OK);
	assert_true(inproc_run_until(&fx->l, answered, &a, WAIT_MS));
	assert_true(a.held);
	assert_int_equal(a.source_len, strlen("{\"provider\":\"onfleet\",\"ref\":\"w1\"}"));
	/* Node B polls only DoorDash: it never takes an Onfleet order's lease, even once free. */
	assert_true(lease(fx, &fx->a, "lease-src", BROKER_LEASE_RELEASE, LEASE_MS).rc == BROKER_OK);
	memset(&a, 0, sizeof(a));
	assert_int_equal(broker_lease(fx->b.b, "lease-src", fx->b.id, BROKER_LEASE_ACQUIRE,
				      LEASE_MS, "doordash_drive", on_lease, &a, NULL),
			 BROKER_OK);
	assert_true(inproc_run_until(&fx->l, answered, &a, WAIT_MS));
	assert_false(a.held);
	stored_lease("lease-src", holder, sizeof(holder), &pttl);
	assert_string_equal(holder, "");
	/* A takes it again; the source moves to DoorDash: A's renew releases it. */
	memset(&a, 0, sizeof(a));
	assert_int_equal(broker_lease(fx->a.b, "lease-src", fx->a.id, BROKER_LEASE_ACQUIRE,
				      LEASE_MS, "uber_direct,onfleet", on_lease, &a, NULL),
			 BROKER_OK);
	assert_true(inproc_run_until(&fx->l, answered, &a, WAIT_MS));
	assert_true(a.held);
	r = redis_command("SET trk:{lease-src}:source %s",
			  "{\"provider\":\"doordash_drive\",\"ref\":\"d\"}");
	freeReplyObject(r);
	memset(&a, 0, sizeof(a));
	assert_int_equal(broker_lease(fx->a.b, "lease-src", fx->a.id, BROKER_LEASE_RENEW, LEASE_MS,
				      "uber_direct,onfleet", on_lease, &a, NULL),
			 BROKER_OK);
	assert_true(inproc_run_until(&fx->l, answered, &a, WAIT_MS));
	assert_false(a.held);
	stored_lease("lease-src", holder, sizeof(holder), &pttl);
	assert_string_equal(holder, "");
}

/* --- a provider's budget, shared by the nodes ------------------------------------ */

typedef struct budget_answer {
	int calls;
	int rc;
	bool granted;
	int64_t delay_ms;
} budget_answer_t;

static void on_budget(void *arg, int rc, bool granted, int64_t delay_ms)
{
	budget_answer_t *a = arg;

	a->calls++;
	a->rc = rc;
	a->granted = granted;
	a->delay_ms = delay_ms;
}

static bool budget_answered(void *arg)
{
	budget_answer_t *a = arg;

	return a->calls > 0;
}

static budget_answer_t budget(fixture_t *fx, node_t *n, const char *provider,
			      broker_budget_action_t action, unsigned a_arg, unsigned b_arg)
{
	budget_answer_t a;

	memset(&a, 0, sizeof(a));
	assert_int_equal(broker_budget(n->b, provider, action, a_arg, b_arg, on_budget, &a, NULL),
			 BROKER_OK);
	assert_int_equal(a.calls, 0);
	assert_true(inproc_run_until(&fx->l, budget_answered, &a, WAIT_MS));
	return a;
}

#define SPACING_US 400000 /* 400 ms between slots: far above the test's own run time */

/*
 * Slots are spacing apart whichever node asks: the first is now, each next
 * one a spacing later; a slot further than the longest wait is refused
 * (nothing reserved, its distance told); a hold moves every slot past it.
 */
static void budget_slots_are_spaced_across_nodes_and_a_hold_delays_them(void **state)
{
	fixture_t *fx = *state;
	budget_answer_t a;

	a = budget(fx, &fx->a, "itest_budget", BROKER_BUDGET_TAKE, SPACING_US, 5000);
	assert_int_equal(a.rc, BROKER_OK);
	assert_true(a.granted);
	assert_int_equal(a.delay_ms, 0);
	a = budget(fx, &fx->b, "itest_budget", BROKER_BUDGET_TAKE, SPACING_US, 5000);
	assert_true(a.granted);
	/* The second slot is one spacing after the first, less the time the first answer took. */
	assert_true(a.delay_ms > 300 && a.delay_ms <= 400);
	a = budget(fx, &fx->a, "itest_budget", BROKER_BUDGET_TAKE, SPACING_US, 5000);
	assert_true(a.granted);
	assert_true(a.delay_ms > 700 && a.delay_ms <= 800);
	/* Not more than 500 ms away: refused, and nothing reserved (the next asks the same). */
	a = budget(fx, &fx->b, "itest_budget", BROKER_BUDGET_TAKE, SPACING_US, 500);
	assert_false(a.granted);
	assert_true(a.delay_ms > 1000 && a.delay_ms <= 1200);
	a = budget(fx, &fx->b, "itest_budget", BROKER_BUDGET_TAKE, SPACING_US, 500);
	assert_false(a.granted);
	assert_true(a.delay_ms > 1000 && a.delay_ms <= 1200);
	/* Another provider has its own slots. */
	a = budget(fx, &fx->b, "itest_other", BROKER_BUDGET_TAKE, SPACING_US, 0);
	assert_true(a.granted);
	assert_int_equal(a.delay_ms, 0);
	/* A 429's hold of 5 s: the next slot is at least that far away. */
	a = budget(fx, &fx->a, "itest_other", BROKER_BUDGET_HOLD, 5000, 0);
	assert_true(a.granted);
	a = budget(fx, &fx->b, "itest_other", BROKER_BUDGET_TAKE, SPACING_US, 60000);
	assert_true(a.granted);
	assert_true(a.delay_ms > 4800 && a.delay_ms <= 5000);
	/* Wrong arguments are Redis's error, not a hang. */
	a = budget(fx, &fx->a, "itest_other", BROKER_BUDGET_TAKE, 0, 0);
	assert_int_equal(a.rc, BROKER_EREPLY);
	assert_int_equal(broker_budget(fx->a.b, "", BROKER_BUDGET_TAKE, 1, 1, on_budget, &a, NULL),
			 BROKER_EREPLY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		only_one_node_holds_an_orders_lease_until_it_releases_it, lease_setup,
		lease_teardown),
	    cmocka_unit_test_setup_teardown(
		a_lease_its_holder_stops_renewing_is_taken_over_when_it_expires, lease_setup,
		lease_teardown),
	    cmocka_unit_test_setup_teardown(a_flushed_script_cache_is_answered_through_eval,
					    lease_setup, lease_teardown),
	    cmocka_unit_test_setup_teardown(wrong_arguments_are_answered_with_a_redis_error,
					    lease_setup, lease_teardown),
	    cmocka_unit_test_setup_teardown(a_cancelled_lease_request_is_never_answered,
					    lease_setup, lease_teardown),
	    cmocka_unit_test_setup_teardown(
		a_lease_request_when_redis_dies_is_answered_lost_not_left_hanging, lease_setup,
		lease_teardown),
	    cmocka_unit_test_setup_teardown(the_lease_answer_carries_the_orders_stored_status,
					    lease_setup, lease_teardown),
	    cmocka_unit_test_setup_teardown(
		the_lease_follows_the_orders_source_when_providers_are_given, lease_setup,
		lease_teardown),
	    cmocka_unit_test_setup_teardown(
		budget_slots_are_spaced_across_nodes_and_a_hold_delays_them, lease_setup,
		lease_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
