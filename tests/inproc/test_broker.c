/*
 * In-process tests of gateway/broker.c and broker_conn.c: the broker on a
 * real uv loop against a real redis-server on a unix socket, with the real
 * hub (gateway/hub.c) behind it.  The broker's events go to the hub and the
 * hub's I/O (hub_ops_t) to the broker here the way the server wires them,
 * minus the websockets: a watcher is a watcher_t whose queue the test reads.
 *
 * Every test starts from a broker that is ready and ends with broker_stop(),
 * then asserts uv_loop_close() == 0: nothing of the broker is left on the loop.
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

#include "broker.h"
#include "config.h"
#include "hub.h"
#include "inproc.h"
#include "log.h"
#include "outq.h"
#include "proto.h"

#define WAIT_MS 5000
/* Reconnecting backs off up to 5 s (broker.c); a restart may need a few attempts. */
#define RECONNECT_WAIT_MS 20000

static inproc_redis_t redis;

/* One answer of broker_apply. */
typedef struct apply_answer {
	int calls;
	int rc;
	broker_result_t result;
	char cursor[PROTO_CURSOR_MAX + 1];
	char why[256];
} apply_answer_t;

typedef struct fixture {
	inproc_loop_t l;
	config_t cfg; /* the defaults the broker's settings are taken from, as the server does */
	hub_t hub;
	broker_t *b;
	bool stopped;
	/* what the hub asked of its transport */
	int wakes;
	int drops;
	int last_drop_code;
	int syncs;
	int synced;
} fixture_t;

/* --- the hub's I/O, as the server does it ------------------------------------ */

static int fx_subscribe(void *ctx, hub_order_t *o)
{
	fixture_t *fx = ctx;

	return broker_subscribe(fx->b, o->id);
}

static int fx_unsubscribe(void *ctx, hub_order_t *o)
{
	fixture_t *fx = ctx;

	return broker_unsubscribe(fx->b, o->id);
}

typedef struct sync_ctx {
	fixture_t *fx;
	watcher_t *w;
} sync_ctx_t;

/* The snapshot came: the watcher is synced up to its cursor (no snapshot frame needed here). */
static void fx_snapshot_cb(void *arg, int rc, const char *state, size_t state_len,
			   const char *cursor, size_t cursor_len)
{
	sync_ctx_t *s = arg;
	proto_cursor_t upto = {0, 0};

	if (rc == BROKER_ELOST) {
		hub_sync_lost(&s->fx->hub, s->w);
	} else {
		if (cursor)
			assert_int_equal(proto_cursor_parse(cursor, cursor_len, &upto), 0);
		s->fx->synced++;
		hub_synced(&s->fx->hub, s->w, rc == BROKER_OK, NULL, 0, &upto,
			   uv_now(&s->fx->l.loop));
	}
	free(s);
}

static int fx_sync(void *ctx, watcher_t *w)
{
	fixture_t *fx = ctx;
	sync_ctx_t *s = calloc(1, sizeof(*s));
	broker_req_t *req = NULL;
	int rc;

	assert_non_null(s);
	s->fx = fx;
	s->w = w;
	fx->syncs++;
	rc = broker_snapshot(fx->b, w->order->id, fx_snapshot_cb, s, &req);
	if (rc != BROKER_OK) {
		free(s);
		return rc == BROKER_EDOWN ? HUB_AGAIN : -1;
	}
	w->sync_req = req;
	return 0;
}

static void fx_wake(void *ctx, watcher_t *w)
{
	fixture_t *fx = ctx;

	fx->wakes++;
}

static void fx_drop(void *ctx, watcher_t *w, int close_code, const char *reason)
{
	fixture_t *fx = ctx;

	fx->drops++;
	fx->last_drop_code = close_code;
}

static const hub_ops_t fx_hub_ops = {
    .subscribe = fx_subscribe,
    .unsubscribe = fx_unsubscribe,
    .sync = fx_sync,
    .wake = fx_wake,
    .drop = fx_drop,
};

/* --- the broker's events, to the hub, as the server does it ------------------ */

static void fx_on_message(void *arg, const char *order_id, size_t id_len, const char *payload,
			  size_t len, uint64_t now_ms)
{
	fixture_t *fx = arg;

	hub_message(&fx->hub, order_id, id_len, payload, len, now_ms);
}

static void fx_on_subscribed(void *arg, const char *order_id, size_t id_len)
{
	fixture_t *fx = arg;

	hub_subscribed(&fx->hub, order_id, id_len);
}

static void fx_on_unsubscribed(void *arg, const char *order_id, size_t id_len)
{
	fixture_t *fx = arg;

	hub_unsubscribed(&fx->hub, order_id, id_len);
}

static void fx_on_subscriber_up(void *arg)
{
	fixture_t *fx = arg;

	hub_redis_up(&fx->hub);
}

static void fx_on_subscriber_down(void *arg)
{
	fixture_t *fx = arg;

	hub_redis_down(&fx->hub);
}

static void fx_on_commands_up(void *arg)
{
	fixture_t *fx = arg;

	hub_commands_up(&fx->hub);
}

/* --- conditions -------------------------------------------------------------- */

static bool broker_is_ready(void *arg)
{
	fixture_t *fx = arg;

	return broker_ready(fx->b);
}

static bool broker_is_down(void *arg)
{
	fixture_t *fx = arg;

	return !broker_ready(fx->b) && !fx->hub.redis_up;
}

static bool broker_is_stopped(void *arg)
{
	fixture_t *fx = arg;

	return fx->stopped;
}

static bool answered(void *arg)
{
	apply_answer_t *a = arg;

	return a->calls > 0;
}

static bool watcher_is_live(void *arg)
{
	watcher_t *w = arg;

	return w->state == WATCHER_LIVE;
}

static bool watcher_has_frame(void *arg)
{
	watcher_t *w = arg;

	return w->q.count > 0;
}

/* --- helpers ----------------------------------------------------------------- */

static void on_apply(void *arg, int rc, broker_result_t result, const char *cursor, const char *why)
{
	apply_answer_t *a = arg;

	a->calls++;
	a->rc = rc;
	a->result = result;
	snprintf(a->cursor, sizeof(a->cursor), "%s", cursor ? cursor : "");
	snprintf(a->why, sizeof(a->why), "%s", why ? why : "");
}

/* A canonical update of order_id: a position at ts, with event_id unless NULL. */
static char *make_update(const char *order_id, int64_t ts, const char *event_id)
{
	proto_update_t u;
	char *json;

	memset(&u, 0, sizeof(u));
	snprintf(u.order_id, sizeof(u.order_id), "%s", order_id);
	snprintf(u.provider, sizeof(u.provider), "inproc");
	if (event_id)
		snprintf(u.event_id, sizeof(u.event_id), "%s", event_id);
	u.ts = ts;
	u.has_location = true;
	u.location.lat = 52.52;
	u.location.lng = 13.405;
	u.status = PROTO_STATUS_PICKED_UP;
	json = proto_update_to_json(&u);
	assert_non_null(json);
	return json;
}

/* Applies an update and runs the loop until it is answered. */
static apply_answer_t apply(fixture_t *fx, const char *order_id, int64_t ts, const char *event_id)
{
	apply_answer_t a;
	char *json = make_update(order_id, ts, event_id);

	memset(&a, 0, sizeof(a));
	assert_int_equal(broker_apply(fx->b, order_id, json, strlen(json), on_apply, &a, NULL),
			 BROKER_OK);
	free(json);
	/* Never from within the call that sent it. */
	assert_int_equal(a.calls, 0);
	assert_true(inproc_run_until(&fx->l, answered, &a, WAIT_MS));
	assert_int_equal(a.calls, 1);
	return a;
}

static void join(fixture_t *fx, watcher_t *w, const char *order_id)
{
	memset(w, 0, sizeof(*w));
	assert_int_equal(hub_join(&fx->hub, w, order_id, strlen(order_id), NULL), 0);
	assert_true(inproc_run_until(&fx->l, watcher_is_live, w, WAIT_MS));
}

/* The frame at the head of w's queue is an update frame of order_id with cursor. */
static void expect_frame(watcher_t *w, const char *order_id, const char *cursor)
{
	frame_t *f = outq_peek(&w->q);
	char want[256];
	proto_cursor_t c;

	assert_non_null(f);
	assert_int_equal(f->kind, FRAME_UPDATE);
	snprintf(want, sizeof(want), "\"order_id\":\"%s\"", order_id);
	assert_non_null(memmem(frame_payload(f), f->len, want, strlen(want)));
	assert_int_equal(proto_cursor_parse(cursor, strlen(cursor), &c), 0);
	assert_int_equal(proto_cursor_cmp(&f->cursor, &c), 0);
	outq_pop(&w->q);
	hub_drained(w);
}

static void on_stopped(void *arg)
{
	fixture_t *fx = arg;

	fx->stopped = true;
}

/* --- setup and teardown ------------------------------------------------------- */

static int group_setup(void **state)
{
	(void)state;
	log_set_level(LOG_WARN);
	/* hiredis writes with write(): a dead server's socket would kill the test (main.c does
	 * this). */
	signal(SIGPIPE, SIG_IGN);
	return inproc_redis_start(&redis, WAIT_MS);
}

static int group_teardown(void **state)
{
	(void)state;
	inproc_redis_cleanup(&redis);
	return 0;
}

static int broker_setup(void **state)
{
	fixture_t *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	/* A test before may have killed it and failed before restarting it. */
	if (!redis.pid)
		assert_int_equal(inproc_redis_start(&redis, WAIT_MS), 0);
	assert_int_equal(inproc_loop_init(&fx->l), 0);
	config_defaults(&fx->cfg);
	snprintf(fx->cfg.redis_unix, sizeof(fx->cfg.redis_unix), "%s", redis.sock);
	hub_init(&fx->hub, &fx_hub_ops, fx, 64 * 1024, 0);
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
	    .message = fx_on_message,
	    .subscribed = fx_on_subscribed,
	    .unsubscribed = fx_on_unsubscribed,
	    .subscriber_up = fx_on_subscriber_up,
	    .subscriber_down = fx_on_subscriber_down,
	    .commands_up = fx_on_commands_up,
	    .arg = fx,
	};
	fx->b = broker_new(&fx->l.loop, &bcfg, &ev);
	assert_non_null(fx->b);
	assert_int_equal(broker_start(fx->b), BROKER_OK);
	assert_true(inproc_run_until(&fx->l, broker_is_ready, fx, WAIT_MS));
	*state = fx;
	return 0;
}

static int broker_teardown(void **state)
{
	fixture_t *fx = *state;

	broker_stop(fx->b, on_stopped, fx);
	assert_true(inproc_run_until(&fx->l, broker_is_stopped, fx, WAIT_MS));
	broker_free(fx->b);
	hub_destroy(&fx->hub);
	assert_int_equal(inproc_loop_close(&fx->l, WAIT_MS), 0);
	free(fx);
	return 0;
}

/* --- tests ------------------------------------------------------------------- */

static void the_broker_connects_and_reports_ready(void **state)
{
	fixture_t *fx = *state;

	/* The setup waited for it; both halves are up, the hub knows. */
	assert_true(broker_ready(fx->b));
	assert_true(fx->hub.redis_up);
	assert_int_equal(broker_stats(fx->b)->reconnects, 0);
	assert_int_equal(broker_stats(fx->b)->bad_replies, 0);
}

static void an_update_is_applied_then_its_repeat_is_a_duplicate(void **state)
{
	fixture_t *fx = *state;
	apply_answer_t a;

	a = apply(fx, "inproc-dup", 1700000000000, "evt-1");
	assert_int_equal(a.rc, BROKER_OK);
	assert_int_equal(a.result, BROKER_APPLIED);
	assert_true(strlen(a.cursor) > 2);
	/* The same event again: the script has seen its event_id. */
	a = apply(fx, "inproc-dup", 1700000000000, "evt-1");
	assert_int_equal(a.rc, BROKER_OK);
	assert_int_equal(a.result, BROKER_DUPLICATE);
	assert_string_equal(broker_result_name(a.result), "duplicate");
}

static void an_older_update_is_stale(void **state)
{
	fixture_t *fx = *state;
	apply_answer_t a;

	a = apply(fx, "inproc-stale", 1700000005000, "evt-new");
	assert_int_equal(a.result, BROKER_APPLIED);
	a = apply(fx, "inproc-stale", 1700000004999, "evt-old");
	assert_int_equal(a.rc, BROKER_OK);
	assert_int_equal(a.result, BROKER_STALE);
	/* Without an event_id an update with the same ts is not older: it applies again. */
	a = apply(fx, "inproc-stale", 1700000005000, NULL);
	assert_int_equal(a.result, BROKER_APPLIED);
}

static void a_bad_update_is_answered_with_redis_error(void **state)
{
	fixture_t *fx = *state;
	static const char bad[] = "{\"order_id\":\"inproc-bad\",\"ts\":-1}";
	apply_answer_t a;

	memset(&a, 0, sizeof(a));
	assert_int_equal(
	    broker_apply(fx->b, "inproc-bad", bad, sizeof(bad) - 1, on_apply, &a, NULL), BROKER_OK);
	assert_true(inproc_run_until(&fx->l, answered, &a, WAIT_MS));
	assert_int_equal(a.rc, BROKER_EREPLY);
	assert_non_null(strstr(a.why, "trackgate:"));
	/* The connection is still good for the next one. */
	assert_true(broker_ready(fx->b));
	assert_int_equal(apply(fx, "inproc-bad", 1700000000000, "evt-ok").result, BROKER_APPLIED);
}

static void a_watcher_receives_the_frame_the_script_publishes(void **state)
{
	fixture_t *fx = *state;
	apply_answer_t a;
	watcher_t w;

	join(fx, &w, "inproc-fanout");
	assert_int_equal(fx->syncs, 1);
	a = apply(fx, "inproc-fanout", 1700000000000, "evt-f1");
	assert_int_equal(a.result, BROKER_APPLIED);
	assert_true(inproc_run_until(&fx->l, watcher_has_frame, &w, WAIT_MS));
	expect_frame(&w, "inproc-fanout", a.cursor);
	assert_true(fx->wakes >= 1);
	/* A duplicate publishes nothing: the next frame is the next update's. */
	assert_int_equal(apply(fx, "inproc-fanout", 1700000000000, "evt-f1").result,
			 BROKER_DUPLICATE);
	a = apply(fx, "inproc-fanout", 1700000001000, "evt-f2");
	assert_true(inproc_run_until(&fx->l, watcher_has_frame, &w, WAIT_MS));
	expect_frame(&w, "inproc-fanout", a.cursor);
	assert_int_equal(fx->drops, 0);
	hub_leave(&fx->hub, &w);
}

typedef struct snapshot_answer {
	int calls;
	int rc;
	char state[1024];
	char cursor[PROTO_CURSOR_MAX + 1];
} snapshot_answer_t;

static void on_snapshot(void *arg, int rc, const char *st, size_t st_len, const char *cursor,
			size_t cursor_len)
{
	snapshot_answer_t *s = arg;

	s->calls++;
	s->rc = rc;
	snprintf(s->state, sizeof(s->state), "%.*s", (int)st_len, st ? st : "");
	snprintf(s->cursor, sizeof(s->cursor), "%.*s", (int)cursor_len, cursor ? cursor : "");
}

static bool snapshot_answered(void *arg)
{
	snapshot_answer_t *s = arg;

	return s->calls > 0;
}

static void a_snapshot_reads_what_was_applied(void **state)
{
	fixture_t *fx = *state;
	snapshot_answer_t s;
	apply_answer_t a;

	a = apply(fx, "inproc-snap", 1700000000000, "evt-s1");
	memset(&s, 0, sizeof(s));
	assert_int_equal(broker_snapshot(fx->b, "inproc-snap", on_snapshot, &s, NULL), BROKER_OK);
	assert_true(inproc_run_until(&fx->l, snapshot_answered, &s, WAIT_MS));
	assert_int_equal(s.rc, BROKER_OK);
	assert_string_equal(s.cursor, a.cursor);
	assert_non_null(strstr(s.state, "\"picked_up\""));
	/* An order never written: no state, no cursor. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(broker_snapshot(fx->b, "inproc-none", on_snapshot, &s, NULL), BROKER_OK);
	assert_true(inproc_run_until(&fx->l, snapshot_answered, &s, WAIT_MS));
	assert_int_equal(s.rc, BROKER_OK);
	assert_string_equal(s.state, "");
	assert_string_equal(s.cursor, "");
}

static void a_cancelled_request_is_never_answered(void **state)
{
	fixture_t *fx = *state;
	apply_answer_t cancelled, after;
	broker_req_t *req = NULL;
	char *json = make_update("inproc-cancel", 1700000000000, "evt-c1");

	memset(&cancelled, 0, sizeof(cancelled));
	assert_int_equal(
	    broker_apply(fx->b, "inproc-cancel", json, strlen(json), on_apply, &cancelled, &req),
	    BROKER_OK);
	free(json);
	assert_non_null(req);
	broker_req_cancel(req);
	/* Replies come in order: once the next is answered, the cancelled one was handled. */
	after = apply(fx, "inproc-cancel", 1700000000000, "evt-c1");
	assert_int_equal(cancelled.calls, 0);
	/* It was sent and applied all the same. */
	assert_int_equal(after.result, BROKER_DUPLICATE);
}

static void a_redis_restart_takes_the_broker_down_and_back_up(void **state)
{
	fixture_t *fx = *state;
	apply_answer_t refused, a;
	char *json;
	watcher_t w;

	join(fx, &w, "inproc-restart");
	inproc_redis_kill(&redis);
	assert_true(inproc_run_until(&fx->l, broker_is_down, fx, WAIT_MS));
	/* The watcher waits for a resync; it is not dropped for the outage. */
	assert_int_equal(w.state, WATCHER_JOINING);
	assert_int_equal(fx->drops, 0);
	/* Down: a request is refused at once and its callback never called. */
	memset(&refused, 0, sizeof(refused));
	json = make_update("inproc-restart", 1700000000000, "evt-r0");
	assert_int_equal(
	    broker_apply(fx->b, "inproc-restart", json, strlen(json), on_apply, &refused, NULL),
	    BROKER_EDOWN);
	free(json);
	assert_int_equal(broker_subscribe(fx->b, "inproc-restart"), BROKER_EDOWN);

	assert_int_equal(inproc_redis_start(&redis, WAIT_MS), 0);
	assert_true(inproc_run_until(&fx->l, broker_is_ready, fx, RECONNECT_WAIT_MS));
	assert_true(broker_stats(fx->b)->reconnects >= 2); /* both connections */
	/* The hub resubscribed and resynced the watcher. */
	assert_true(inproc_run_until(&fx->l, watcher_is_live, &w, WAIT_MS));
	/* An empty Redis without the script: the apply still works, and is published. */
	a = apply(fx, "inproc-restart", 1700000000000, "evt-r1");
	assert_int_equal(a.rc, BROKER_OK);
	assert_int_equal(a.result, BROKER_APPLIED);
	assert_true(inproc_run_until(&fx->l, watcher_has_frame, &w, WAIT_MS));
	expect_frame(&w, "inproc-restart", a.cursor);
	assert_int_equal(refused.calls, 0);
	hub_leave(&fx->hub, &w);
}

static void a_request_in_flight_when_redis_dies_is_answered_lost(void **state)
{
	fixture_t *fx = *state;
	apply_answer_t a;
	char *json = make_update("inproc-lost", 1700000000000, "evt-l1");

	memset(&a, 0, sizeof(a));
	assert_int_equal(broker_apply(fx->b, "inproc-lost", json, strlen(json), on_apply, &a, NULL),
			 BROKER_OK);
	free(json);
	/* Killed before the loop ran: the command was never written, or never answered. */
	inproc_redis_kill(&redis);
	assert_true(inproc_run_until(&fx->l, answered, &a, WAIT_MS));
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.rc, BROKER_ELOST);
	assert_true(inproc_run_until(&fx->l, broker_is_down, fx, WAIT_MS));
	assert_int_equal(inproc_redis_start(&redis, WAIT_MS), 0);
	assert_true(inproc_run_until(&fx->l, broker_is_ready, fx, RECONNECT_WAIT_MS));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(the_broker_connects_and_reports_ready, broker_setup,
					    broker_teardown),
	    cmocka_unit_test_setup_teardown(an_update_is_applied_then_its_repeat_is_a_duplicate,
					    broker_setup, broker_teardown),
	    cmocka_unit_test_setup_teardown(an_older_update_is_stale, broker_setup,
					    broker_teardown),
	    cmocka_unit_test_setup_teardown(a_bad_update_is_answered_with_redis_error, broker_setup,
					    broker_teardown),
	    cmocka_unit_test_setup_teardown(a_snapshot_reads_what_was_applied, broker_setup,
					    broker_teardown),
	    cmocka_unit_test_setup_teardown(a_watcher_receives_the_frame_the_script_publishes,
					    broker_setup, broker_teardown),
	    cmocka_unit_test_setup_teardown(a_cancelled_request_is_never_answered, broker_setup,
					    broker_teardown),
	    cmocka_unit_test_setup_teardown(a_redis_restart_takes_the_broker_down_and_back_up,
					    broker_setup, broker_teardown),
	    cmocka_unit_test_setup_teardown(a_request_in_flight_when_redis_dies_is_answered_lost,
					    broker_setup, broker_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
