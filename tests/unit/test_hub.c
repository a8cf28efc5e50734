/* Unit tests of gateway/hub.c: joins, leaves, refcounted subscriptions, fan-out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hub.h"

/* A recording fake of the hub's I/O. */
typedef struct fake {
	int subscribes;
	int unsubscribes;
	int snapshots;
	int wakes;
	int drops;
	int last_drop_code;
	int fail_subscribe;
	int fail_snapshot;
	int snapshot_again; /* the command connection is down */
	char last_sub[PROTO_ORDER_ID_MAX + 1];
	char last_unsub[PROTO_ORDER_ID_MAX + 1];
	int sent_now;	     /* frames the transport took at once */
	int refuse_send_now; /* the transport's socket is full */
} fake_t;

static int fake_subscribe(void *ctx, hub_order_t *o)
{
	fake_t *f = ctx;

	f->subscribes++;
	strcpy(f->last_sub, o->id);
	return f->fail_subscribe ? -1 : 0;
}

static int fake_unsubscribe(void *ctx, hub_order_t *o)
{
	fake_t *f = ctx;

	f->unsubscribes++;
	strcpy(f->last_unsub, o->id);
	return 0;
}

static int fake_sync(void *ctx, watcher_t *w)
{
	fake_t *f = ctx;

	f->snapshots++;
	if (f->fail_snapshot)
		return -1;
	if (f->snapshot_again)
		return HUB_AGAIN;
	w->sync_req = (void *)1; /* any non-NULL handle */
	return 0;
}

static void fake_wake(void *ctx, watcher_t *w)
{
	((fake_t *)ctx)->wakes++;
}

static bool fake_send_now(void *ctx, watcher_t *w, frame_t *fr)
{
	fake_t *f = ctx;

	(void)w;
	(void)fr;
	if (f->refuse_send_now)
		return false;
	f->sent_now++;
	return true;
}

static void fake_drop(void *ctx, watcher_t *w, int code, const char *reason)
{
	fake_t *f = ctx;

	f->drops++;
	f->last_drop_code = code;
	outq_clear(&w->q);
}

static const hub_ops_t fake_ops = {
    .subscribe = fake_subscribe,
    .unsubscribe = fake_unsubscribe,
    .sync = fake_sync,
    .wake = fake_wake,
    .drop = fake_drop,
};

typedef struct fixture {
	hub_t hub;
	fake_t fake;
	watcher_t w[8];
	uint64_t now_ms; /* the loop's clock, as the hub is told it */
} fixture_t;

static int setup(void **state)
{
	fixture_t *fx = calloc(1, sizeof(*fx));

	hub_init(&fx->hub, &fake_ops, &fx->fake, 4096, 0);
	fx->hub.redis_up = true;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	fixture_t *fx = *state;

	for (int i = 0; i < 8; i++)
		hub_leave(&fx->hub, &fx->w[i]);
	hub_destroy(&fx->hub);
	assert_int_equal(fx->hub.n_orders, 0);
	free(fx);
	return 0;
}

static const char update_a[] =
    "{\"type\":\"update\",\"order_id\":\"A\",\"update\":{},\"cursor\":\"100-0\"}";
static const char update_b[] =
    "{\"type\":\"update\",\"order_id\":\"A\",\"update\":{},\"cursor\":\"100-1\"}";

static void join(fixture_t *fx, int i, const char *id)
{
	assert_int_equal(hub_join(&fx->hub, &fx->w[i], id, strlen(id), NULL), 0);
}

static frame_t *snapshot_frame(uint64_t ms, uint64_t seq)
{
	static const char body[] = "{\"type\":\"snapshot\"}";
	frame_t *f = frame_copy(FRAME_SNAPSHOT, body, sizeof(body) - 1);

	f->cursor = (proto_cursor_t){ms, seq};
	return f;
}

/* Confirms the subscription and delivers snapshots at cursor ms-seq to watchers [0, n). */
static void make_live(fixture_t *fx, const char *id, int n, uint64_t ms, uint64_t seq)
{
	hub_subscribed(&fx->hub, id, strlen(id));
	for (int i = 0; i < n; i++) {
		frame_t *f = snapshot_frame(ms, seq);

		hub_synced(&fx->hub, &fx->w[i], true, &f, 1, &f->cursor, fx->now_ms);
		frame_unref(f);
	}
}

static void first_watcher_subscribes_once(void **state)
{
	fixture_t *fx = *state;

	join(fx, 0, "A");
	join(fx, 1, "A");
	join(fx, 2, "A");
	assert_int_equal(fx->fake.subscribes, 1);
	assert_string_equal(fx->fake.last_sub, "A");
	assert_int_equal(fx->hub.n_orders, 1);
	assert_int_equal(hub_find(&fx->hub, "A", 1)->n_watchers, 3);
}

static void each_order_gets_its_own_subscription(void **state)
{
	fixture_t *fx = *state;

	join(fx, 0, "A");
	join(fx, 1, "B");
	assert_int_equal(fx->fake.subscribes, 2);
	assert_int_equal(fx->hub.n_orders, 2);
}

static void snapshot_is_requested_only_after_the_subscription_is_confirmed(void **state)
{
	fixture_t *fx = *state;

	join(fx, 0, "A");
	assert_int_equal(fx->fake.snapshots, 0);
	hub_subscribed(&fx->hub, "A", 1);
	assert_int_equal(fx->fake.snapshots, 1);
	/* a later joiner of a confirmed order asks at once */
	join(fx, 1, "A");
	assert_int_equal(fx->fake.snapshots, 2);
}

static void last_watcher_leaving_unsubscribes(void **state)
{
	fixture_t *fx = *state;

	join(fx, 0, "A");
	join(fx, 1, "A");
	hub_subscribed(&fx->hub, "A", 1);
	hub_leave(&fx->hub, &fx->w[0]);
	assert_int_equal(fx->fake.unsubscribes, 0);
	hub_leave(&fx->hub, &fx->w[1]);
	assert_int_equal(fx->fake.unsubscribes, 1);
	assert_string_equal(fx->fake.last_unsub, "A");
	/* the order stays until the ack, then goes */
	assert_non_null(hub_find(&fx->hub, "A", 1));
	hub_unsubscribed(&fx->hub, "A", 1);
	assert_null(hub_find(&fx->hub, "A", 1));
	assert_int_equal(fx->hub.n_watchers, 0);
}

static void rejoin_while_unsubscribing_subscribes_again_after_the_ack(void **state)
{
	fixture_t *fx = *state;

	join(fx, 0, "A");
	hub_subscribed(&fx->hub, "A", 1);
	hub_leave(&fx->hub, &fx->w[0]);
	join(fx, 1, "A");
	assert_int_equal(fx->fake.subscribes, 1);
	hub_unsubscribed(&fx->hub, "A", 1);
	assert_int_equal(fx->fake.subscribes, 2);
	hub_subscribed(&fx->hub, "A", 1);
	assert_int_equal(hub_find(&fx->hub, "A", 1)->sub, HUB_SUB_ACTIVE);
	assert_int_equal(fx->fake.snapshots, 2);
}

static void message_is_shared_by_every_watcher_of_the_order(void **state)
{
	fixture_t *fx = *state;
	frame_t *f0, *f1;

	join(fx, 0, "A");
	join(fx, 1, "A");
	join(fx, 2, "B");
	make_live(fx, "A", 2, 50, 0);
	hub_message(&fx->hub, "A", 1, update_a, sizeof(update_a) - 1, fx->now_ms);
	/* snapshot + update each */
	assert_int_equal(fx->w[0].q.count, 2);
	assert_int_equal(fx->w[1].q.count, 2);
	assert_int_equal(fx->w[2].q.count, 0);
	outq_pop(&fx->w[0].q);
	outq_pop(&fx->w[1].q);
	f0 = outq_peek(&fx->w[0].q);
	f1 = outq_peek(&fx->w[1].q);
	assert_ptr_equal(f0, f1); /* one frame, not a copy per watcher */
	assert_int_equal(f0->refs, 2);
	assert_memory_equal(frame_payload(f0), update_a, sizeof(update_a) - 1);
	assert_int_equal(f0->cursor.ms, 100);
}

static void messages_for_unwatched_orders_are_ignored(void **state)
{
	fixture_t *fx = *state;

	hub_message(&fx->hub, "Z", 1, update_a, sizeof(update_a) - 1, fx->now_ms);
	assert_int_equal(fx->fake.wakes, 0);
	assert_int_equal(fx->hub.stats.frames_out, 0);
}

static void frames_before_the_snapshot_are_held_and_those_it_holds_are_dropped(void **state)
{
	fixture_t *fx = *state;
	frame_t *snap;

	join(fx, 0, "A");
	hub_subscribed(&fx->hub, "A", 1);
	hub_message(&fx->hub, "A", 1, update_a, sizeof(update_a) - 1, fx->now_ms); /* 100-0 */
	hub_message(&fx->hub, "A", 1, update_b, sizeof(update_b) - 1, fx->now_ms); /* 100-1 */
	assert_int_equal(fx->fake.wakes, 0);					   /* held */
	snap = snapshot_frame(100, 0);						   /* holds 100-0 */
	hub_synced(&fx->hub, &fx->w[0], true, &snap, 1, &snap->cursor, fx->now_ms);
	frame_unref(snap);
	assert_int_equal(fx->w[0].state, WATCHER_LIVE);
	assert_int_equal(fx->w[0].q.count, 2);
	assert_int_equal(outq_peek(&fx->w[0].q)->kind, FRAME_SNAPSHOT);
	outq_pop(&fx->w[0].q);
	assert_int_equal(outq_peek(&fx->w[0].q)->cursor.seq, 1);
	assert_int_equal(fx->fake.wakes, 1);
}

/* A frame of the socket's own (a refresh's answer) queued while joining waits behind the
 * snapshot: nothing is sendable before the snapshot comes (hub_push_own). */
static void an_own_frame_while_joining_waits_behind_the_snapshot(void **state)
{
	fixture_t *fx = *state;
	frame_t *snap, *own = frame_new(FRAME_REFRESHED, 8);

	join(fx, 0, "A");
	hub_subscribed(&fx->hub, "A", 1);
	hub_message(&fx->hub, "A", 1, update_b, sizeof(update_b) - 1, fx->now_ms); /* 100-1 */
	assert_non_null(own);
	assert_int_equal(hub_push_own(&fx->w[0], own), OUTQ_OK);
	frame_unref(own);
	assert_false(hub_writable(&fx->w[0])); /* the held update and the own frame wait */
	snap = snapshot_frame(100, 0);
	hub_synced(&fx->hub, &fx->w[0], true, &snap, 1, &snap->cursor, fx->now_ms);
	frame_unref(snap);
	assert_int_equal(fx->w[0].q.count, 3);
	assert_int_equal(outq_peek(&fx->w[0].q)->kind, FRAME_SNAPSHOT);
	outq_pop(&fx->w[0].q);
	assert_int_equal(outq_peek(&fx->w[0].q)->kind, FRAME_UPDATE);
	outq_pop(&fx->w[0].q);
	assert_int_equal(outq_peek(&fx->w[0].q)->kind, FRAME_REFRESHED);
}

static void watcher_past_its_byte_bound_is_dropped_with_4408(void **state)
{
	fixture_t *fx = *state;
	char big[3000];
	int n;

	/* a 3000-byte update frame: padding inside the update, the cursor at the end */
	n = snprintf(big, sizeof(big),
		     "{\"type\":\"update\",\"order_id\":\"A\",\"update\":{\"p\":\"");
	memset(big + n, 'x', sizeof(big) - (size_t)n);
	memcpy(big + sizeof(big) - 18, "\"},\"cursor\":\"2-0\"}", 18);
	join(fx, 0, "A");
	join(fx, 1, "A");
	make_live(fx, "A", 2, 1, 0);
	hub_message(&fx->hub, "A", 1, big, sizeof(big), fx->now_ms);
	assert_int_equal(fx->fake.drops, 0);
	outq_clear(&fx->w[1].q); /* watcher 1 keeps up */
	memcpy(big + sizeof(big) - 18, "\"},\"cursor\":\"3-0\"}", 18);
	hub_message(&fx->hub, "A", 1, big, sizeof(big), fx->now_ms);
	assert_int_equal(fx->fake.drops, 1);
	assert_int_equal(fx->fake.last_drop_code, 4408);
	assert_int_equal(fx->w[0].state, WATCHER_CLOSING);
	assert_int_equal(fx->w[1].state, WATCHER_LIVE);
	assert_int_equal(fx->w[1].q.count, 1);
	assert_int_equal(fx->hub.stats.dropped, 1);
}

static void failed_snapshot_drops_the_watcher(void **state)
{
	fixture_t *fx = *state;

	join(fx, 0, "A");
	hub_subscribed(&fx->hub, "A", 1);
	hub_synced(&fx->hub, &fx->w[0], false, NULL, 0, &fx->w[0].last, fx->now_ms);
	assert_int_equal(fx->fake.drops, 1);
	assert_int_equal(fx->fake.last_drop_code, 1013);
}

static void redis_loss_resubscribes_and_resyncs_every_watcher(void **state)
{
	fixture_t *fx = *state;

	join(fx, 0, "A");
	join(fx, 1, "B");
	make_live(fx, "A", 1, 1, 0);
	hub_subscribed(&fx->hub, "B", 1);
	hub_redis_down(&fx->hub);
	assert_int_equal(fx->w[0].state, WATCHER_JOINING);
	/* a join while down waits for the connection */
	join(fx, 2, "C");
	assert_int_equal(fx->fake.subscribes, 2);
	hub_redis_up(&fx->hub);
	assert_int_equal(fx->fake.subscribes, 5);
	hub_subscribed(&fx->hub, "A", 1);
	assert_int_equal(fx->w[0].sync_req, (void *)1);
}

static void invalid_order_id_is_refused(void **state)
{
	fixture_t *fx = *state;

	assert_int_not_equal(hub_join(&fx->hub, &fx->w[0], "a b", 3, NULL), 0);
	assert_int_not_equal(hub_join(&fx->hub, &fx->w[0], "", 0, NULL), 0);
	assert_int_equal(fx->hub.n_orders, 0);
}

static void update_frames_the_snapshot_holds_are_skipped_after_it(void **state)
{
	fixture_t *fx = *state;

	join(fx, 0, "A");
	/* the snapshot (cursor 100-0) overtook the frame of 100-0 on the other connection */
	make_live(fx, "A", 1, 100, 0);
	/* 100-0: held already */
	hub_message(&fx->hub, "A", 1, update_a, sizeof(update_a) - 1, fx->now_ms);
	assert_int_equal(fx->w[0].q.count, 1); /* the snapshot alone */
	/* 100-1: new */
	hub_message(&fx->hub, "A", 1, update_b, sizeof(update_b) - 1, fx->now_ms);
	assert_int_equal(fx->w[0].q.count, 2);
	/* the newest cursor given moves on */
	assert_int_equal(fx->w[0].last.seq, 1);
}

static void snapshot_waits_while_the_command_connection_is_down(void **state)
{
	fixture_t *fx = *state;

	fx->fake.snapshot_again = 1;
	join(fx, 0, "A");
	hub_subscribed(&fx->hub, "A", 1);
	assert_int_equal(fx->fake.snapshots, 1);
	assert_int_equal(fx->fake.drops, 0);
	assert_int_equal(fx->w[0].state, WATCHER_JOINING);
	fx->fake.snapshot_again = 0;
	hub_commands_up(&fx->hub);
	assert_int_equal(fx->fake.snapshots, 2);
	assert_non_null(fx->w[0].sync_req);
	assert_int_equal(fx->fake.drops, 0);
}

static void snapshot_lost_with_the_connection_is_asked_again(void **state)
{
	fixture_t *fx = *state;

	join(fx, 0, "A");
	hub_subscribed(&fx->hub, "A", 1);
	hub_sync_lost(&fx->hub, &fx->w[0]);
	assert_null(fx->w[0].sync_req);
	hub_commands_up(&fx->hub);
	assert_int_equal(fx->fake.snapshots, 2);
	assert_int_equal(fx->fake.drops, 0);
}

/* An update frame of order A at cursor ms-0: a location, then extra members. */
static void post_with(fixture_t *fx, uint64_t ms, const char *extra)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf),
			 "{\"type\":\"update\",\"order_id\":\"A\",\"update\":{\"location\":{}%s},"
			 "\"cursor\":\"%llu-0\"}",
			 extra, (unsigned long long)ms);

	hub_message(&fx->hub, "A", 1, buf, (size_t)n, fx->now_ms);
}

/* loc_only: a location and nothing else; else a location and a status. */
static void post(fixture_t *fx, uint64_t ms, bool loc_only)
{
	post_with(fx, ms, loc_only ? "" : ",\"status\":\"picked_up\"");
}

static void behind_watcher_gets_the_newest_position_and_every_status(void **state)
{
	fixture_t *fx = *state;
	uint64_t want[] = {3, 5, 6};

	join(fx, 0, "A");
	make_live(fx, "A", 1, 1, 0);
	outq_pop(&fx->w[0].q); /* the snapshot went out; the socket then stalls */
	hub_drained(&fx->w[0]);
	fx->now_ms = 1000;
	post(fx, 2, true);
	fx->now_ms = 3000; /* behind for 2 s from here on */
	post(fx, 3, false);
	post(fx, 4, true);
	post(fx, 5, false);
	post(fx, 6, true); /* replaces 4, which replaced 2 */
	assert_int_equal(fx->w[0].q.count, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(outq_peek(&fx->w[0].q)->cursor.ms, want[i]);
		outq_pop(&fx->w[0].q);
	}
	assert_int_equal(fx->hub.stats.coalesced, 2);
}

/* A frame carrying the pickup/dropoff places, an eta or a courier beside a location is never
 * replaced by a newer position: only a location-only frame is. */
static void behind_watcher_keeps_places_eta_and_courier_frames(void **state)
{
	fixture_t *fx = *state;
	static const char *const extra[] = {",\"places\":{\"dropoff\":{\"lat\":1,\"lng\":2}}",
					    ",\"eta\":{\"dropoff\":5}", ",\"courier\":{}"};

	join(fx, 0, "A");
	make_live(fx, "A", 1, 1, 0);
	outq_pop(&fx->w[0].q);
	hub_drained(&fx->w[0]);
	fx->now_ms = 3000; /* behind from here on */
	for (int i = 0; i < 3; i++)
		post_with(fx, 2 + (uint64_t)i, extra[i]);
	post(fx, 5, true);
	assert_int_equal(fx->w[0].q.count, 4);
	assert_int_equal(fx->hub.stats.coalesced, 0);
}

/* A live watcher with nothing queued: its transport takes the frame at once, until its
 * socket is full; from then on frames queue (in order) behind the first one queued. */
static void frames_go_straight_out_until_the_transport_refuses(void **state)
{
	static const hub_ops_t ops = {
	    .subscribe = fake_subscribe,
	    .unsubscribe = fake_unsubscribe,
	    .sync = fake_sync,
	    .wake = fake_wake,
	    .send_now = fake_send_now,
	    .drop = fake_drop,
	};
	fixture_t *fx = *state;

	fx->hub.ops = &ops;
	join(fx, 0, "A");
	make_live(fx, "A", 1, 1, 0);
	outq_pop(&fx->w[0].q); /* the snapshot went out */
	hub_drained(&fx->w[0]);
	int wakes = fx->fake.wakes;

	post(fx, 2, true);
	post(fx, 3, false);
	assert_int_equal(fx->fake.sent_now, 2);
	assert_int_equal(fx->w[0].q.count, 0);
	assert_int_equal(fx->fake.wakes, wakes);
	assert_int_equal(fx->w[0].last.ms, 3);
	fx->fake.refuse_send_now = 1;
	post(fx, 4, false);
	fx->fake.refuse_send_now = 0;
	post(fx, 5, false); /* behind a queued frame: queued too, never around it */
	assert_int_equal(fx->fake.sent_now, 2);
	assert_int_equal(fx->w[0].q.count, 2);
	assert_int_equal(outq_peek(&fx->w[0].q)->cursor.ms, 4);
	assert_int_equal(fx->w[0].last.ms, 5);
	assert_true(fx->fake.wakes > wakes);
}

static void watcher_behind_longer_than_the_slow_timeout_is_dropped(void **state)
{
	fixture_t *fx = *state;

	fx->hub.slow_timeout_ms = 1000;
	join(fx, 0, "A");
	join(fx, 1, "A");
	fx->now_ms = 10000;
	make_live(fx, "A", 2, 1, 0);
	outq_pop(&fx->w[1].q);
	hub_drained(&fx->w[1]); /* watcher 1 keeps up; watcher 0 never writes */
	fx->now_ms = 10500;
	post(fx, 2, false);
	assert_int_equal(fx->fake.drops, 0);
	outq_pop(&fx->w[1].q);
	hub_drained(&fx->w[1]);
	fx->now_ms = 11000;
	post(fx, 3, false);
	assert_int_equal(fx->fake.drops, 1);
	assert_int_equal(fx->w[0].state, WATCHER_CLOSING);
	assert_int_equal(fx->w[1].state, WATCHER_LIVE);
}

static void join_with_a_cursor_asks_for_a_replay_after_it(void **state)
{
	fixture_t *fx = *state;
	proto_cursor_t since = {7, 2};

	assert_int_equal(hub_join(&fx->hub, &fx->w[0], "A", 1, &since), 0);
	hub_subscribed(&fx->hub, "A", 1);
	assert_int_equal(fx->fake.snapshots, 1);
	assert_int_equal(fx->w[0].last.ms, 7);
	assert_int_equal(fx->w[0].last.seq, 2);
	post(fx, 7, false); /* at the cursor: held until the sync says what the log holds */
	assert_int_equal(fx->w[0].held, 1);
	proto_cursor_t upto = {7, 2};
	hub_synced(&fx->hub, &fx->w[0], true, NULL, 0, &upto, fx->now_ms); /* nothing missed */
	assert_int_equal(fx->w[0].q.count, 0); /* the held repeat is gone */
}

static void join_with_a_future_cursor_keeps_what_follows_the_reset_snapshot(void **state)
{
	fixture_t *fx = *state;
	proto_cursor_t future = {999999, 0};
	frame_t *snap;

	assert_int_equal(hub_join(&fx->hub, &fx->w[0], "A", 1, &future), 0);
	hub_subscribed(&fx->hub, "A", 1);
	post(fx, 9, false); /* applied after the snapshot was read */
	snap = snapshot_frame(8, 0);
	hub_synced(&fx->hub, &fx->w[0], true, &snap, 1, &snap->cursor, fx->now_ms);
	frame_unref(snap);
	assert_int_equal(fx->w[0].q.count, 2);
	outq_pop(&fx->w[0].q);
	assert_int_equal(outq_peek(&fx->w[0].q)->cursor.ms, 9);
	assert_int_equal(fx->w[0].last.ms, 9);
}

static void resync_after_redis_loss_replays_between_what_was_queued_and_what_is_held(void **state)
{
	fixture_t *fx = *state;
	frame_t *replay[2];
	proto_cursor_t upto = {5, 0};

	join(fx, 0, "A");
	make_live(fx, "A", 1, 1, 0);
	outq_pop(&fx->w[0].q);
	post(fx, 2, false); /* queued, not yet written */
	hub_redis_down(&fx->hub);
	hub_redis_up(&fx->hub);
	hub_subscribed(&fx->hub, "A", 1);
	assert_int_equal(fx->w[0].last.ms, 2); /* the resync asks for what came after 2-0 */
	post(fx, 5, false);		       /* live again, held: the replay below holds it too */
	post(fx, 6, false);		       /* held */
	assert_int_equal(fx->w[0].held, 2);
	assert_true(hub_writable(&fx->w[0])); /* 2-0 may still go out meanwhile */
	replay[0] = snapshot_frame(4, 0);
	replay[0]->kind = FRAME_UPDATE;
	replay[1] = snapshot_frame(5, 0);
	replay[1]->kind = FRAME_UPDATE;
	hub_synced(&fx->hub, &fx->w[0], true, replay, 2, &upto, fx->now_ms);
	frame_unref(replay[0]);
	frame_unref(replay[1]);
	uint64_t want[] = {2, 4, 5, 6};
	assert_int_equal(fx->w[0].q.count, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(outq_peek(&fx->w[0].q)->cursor.ms, want[i]);
		outq_pop(&fx->w[0].q);
	}
	assert_int_equal(fx->w[0].last.ms, 6);
}

static void message_without_a_cursor_is_not_forwarded(void **state)
{
	fixture_t *fx = *state;
	static const char junk[] = "{\"type\":\"update\"}";

	join(fx, 0, "A");
	make_live(fx, "A", 1, 1, 0);
	hub_message(&fx->hub, "A", 1, junk, sizeof(junk) - 1, fx->now_ms);
	assert_int_equal(fx->w[0].q.count, 1); /* the snapshot only */
}

static void healthy_watcher_gets_every_position_of_a_burst(void **state)
{
	fixture_t *fx = *state;

	join(fx, 0, "A");
	make_live(fx, "A", 1, 1, 0);
	outq_pop(&fx->w[0].q);
	hub_drained(&fx->w[0]);
	fx->now_ms = 1000;
	for (uint64_t ms = 2; ms < 12; ms++)
		post(fx, ms, true); /* one read from Redis, no write in between */
	assert_int_equal(fx->w[0].q.count, 10);
	assert_int_equal(fx->hub.stats.coalesced, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(first_watcher_subscribes_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(an_own_frame_while_joining_waits_behind_the_snapshot,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(behind_watcher_keeps_places_eta_and_courier_frames,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(frames_go_straight_out_until_the_transport_refuses,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(each_order_gets_its_own_subscription, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		snapshot_is_requested_only_after_the_subscription_is_confirmed, setup, teardown),
	    cmocka_unit_test_setup_teardown(last_watcher_leaving_unsubscribes, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		rejoin_while_unsubscribing_subscribes_again_after_the_ack, setup, teardown),
	    cmocka_unit_test_setup_teardown(message_is_shared_by_every_watcher_of_the_order, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(messages_for_unwatched_orders_are_ignored, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		frames_before_the_snapshot_are_held_and_those_it_holds_are_dropped, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(watcher_past_its_byte_bound_is_dropped_with_4408, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(failed_snapshot_drops_the_watcher, setup, teardown),
	    cmocka_unit_test_setup_teardown(redis_loss_resubscribes_and_resyncs_every_watcher,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(invalid_order_id_is_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(update_frames_the_snapshot_holds_are_skipped_after_it,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(snapshot_waits_while_the_command_connection_is_down,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(snapshot_lost_with_the_connection_is_asked_again, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		behind_watcher_gets_the_newest_position_and_every_status, setup, teardown),
	    cmocka_unit_test_setup_teardown(watcher_behind_longer_than_the_slow_timeout_is_dropped,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(join_with_a_cursor_asks_for_a_replay_after_it, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		join_with_a_future_cursor_keeps_what_follows_the_reset_snapshot, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		resync_after_redis_loss_replays_between_what_was_queued_and_what_is_held, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(message_without_a_cursor_is_not_forwarded, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(healthy_watcher_gets_every_position_of_a_burst, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
