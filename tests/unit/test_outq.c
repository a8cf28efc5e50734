/* Unit tests of gateway/outq.c: refcounted frames and bounded per-watcher queues. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "outq.h"

static frame_t *update(uint64_t ms, uint64_t seq, size_t len)
{
	frame_t *f = frame_new(FRAME_UPDATE, len);

	memset(frame_payload(f), 'x', len);
	f->cursor = (proto_cursor_t){ms, seq};
	return f;
}

static void idle_queue_owns_no_memory(void **state)
{
	outq_t q = {0};
	frame_t *f = update(1, 0, 10);

	assert_int_equal(outq_push(&q, f, 100), OUTQ_OK);
	assert_non_null(q.ring);
	outq_pop(&q);
	assert_null(q.ring);
	assert_int_equal(q.bytes, 0);
	frame_unref(f);
}

static void frames_come_out_in_order_across_growth(void **state)
{
	outq_t q = {0};

	for (uint64_t i = 0; i < 100; i++) {
		frame_t *f = update(i, 0, 1);

		assert_int_equal(outq_push(&q, f, 1000), OUTQ_OK);
		frame_unref(f);
		if (i % 3 == 0) {
			/* pop some along the way so the ring wraps */
			outq_pop(&q);
		}
	}
	uint64_t last = 0;
	int n = 0;

	while (!outq_empty(&q)) {
		frame_t *f = outq_peek(&q);

		assert_true(n == 0 || f->cursor.ms > last);
		last = f->cursor.ms;
		outq_pop(&q);
		n++;
	}
	assert_int_equal(n, 100 - 34);
}

static void push_past_the_byte_bound_fails_and_changes_nothing(void **state)
{
	outq_t q = {0};
	frame_t *a = update(1, 0, 60), *b = update(2, 0, 50);

	assert_int_equal(outq_push(&q, a, 100), OUTQ_OK);
	assert_int_equal(outq_push(&q, b, 100), OUTQ_EFULL);
	assert_int_equal(q.count, 1);
	assert_int_equal(q.bytes, 60);
	assert_int_equal(b->refs, 1);
	outq_clear(&q);
	frame_unref(a);
	frame_unref(b);
}

static void shared_frame_is_freed_by_its_last_owner(void **state)
{
	outq_t q1 = {0}, q2 = {0};
	frame_t *f = update(1, 0, 8);

	outq_push(&q1, f, 100);
	outq_push(&q2, f, 100);
	assert_int_equal(f->refs, 3);
	frame_unref(f); /* the creator lets go */
	outq_pop(&q1);
	assert_int_equal(f->refs, 1);
	outq_pop(&q2); /* freed here; ASan would catch a double free or leak */
}

static void snapshot_goes_first_and_drops_updates_it_holds(void **state)
{
	outq_t q = {0};
	frame_t *u1 = update(5, 0, 4), *u2 = update(5, 1, 4), *u3 = update(6, 0, 4);
	frame_t *snap = frame_new(FRAME_SNAPSHOT, 4);

	snap->cursor = (proto_cursor_t){5, 1};
	outq_push(&q, u1, 100);
	outq_push(&q, u2, 100);
	outq_push(&q, u3, 100);
	outq_drop_upto(&q, &snap->cursor);
	assert_int_equal(outq_push_front(&q, snap), OUTQ_OK);
	assert_int_equal(q.count, 2);
	assert_ptr_equal(outq_peek(&q), snap);
	outq_pop(&q);
	assert_ptr_equal(outq_peek(&q), u3);
	assert_int_equal(q.bytes, 4);
	outq_clear(&q);
	frame_unref(u1);
	frame_unref(u2);
	frame_unref(u3);
	frame_unref(snap);
}

static void frame_keeps_lws_headroom_before_the_payload(void **state)
{
	frame_t *f = frame_copy(FRAME_UPDATE, "abc", 3);

	assert_true(frame_payload(f) - f->buf >= 16);
	assert_memory_equal(frame_payload(f), "abc", 3);
	assert_int_equal(f->len, 3);
	frame_unref(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(idle_queue_owns_no_memory),
	    cmocka_unit_test(frames_come_out_in_order_across_growth),
	    cmocka_unit_test(push_past_the_byte_bound_fails_and_changes_nothing),
	    cmocka_unit_test(shared_frame_is_freed_by_its_last_owner),
	    cmocka_unit_test(snapshot_goes_first_and_drops_updates_it_holds),
	    cmocka_unit_test(frame_keeps_lws_headroom_before_the_payload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
