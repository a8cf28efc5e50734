#include "outq.h"

#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#define OUTQ_MIN_SLOTS 4
#define OUTQ_MAX_SLOTS 32768

frame_t *frame_new(frame_kind_t kind, size_t len)
{
	frame_t *f;

	if (len > UINT32_MAX - LWS_PRE)
		return NULL;
	f = malloc(sizeof(*f) + LWS_PRE + len);
	if (!f)
		return NULL;
	f->refs = 1;
	f->len = (uint32_t)len;
	f->cursor = (proto_cursor_t){0, 0};
	f->ts_ms = 0;
	f->kind = (uint8_t)kind;
	f->coalesce = 0;
	return f;
}

frame_t *frame_copy(frame_kind_t kind, const void *p, size_t len)
{
	frame_t *f = frame_new(kind, len);

	if (f)
		memcpy(f->buf + LWS_PRE, p, len);
	return f;
}

unsigned char *frame_payload(frame_t *f)
{
	return f->buf + LWS_PRE;
}

frame_t *frame_ref(frame_t *f)
{
	f->refs++;
	return f;
}

void frame_unref(frame_t *f)
{
	if (f && --f->refs == 0)
		free(f);
}

/* Makes room for one more frame: grows the ring by doubling. */
static int outq_reserve(outq_t *q)
{
	frame_t **ring;
	uint16_t cap;

	if (q->count < q->cap)
		return OUTQ_OK;
	if (q->cap >= OUTQ_MAX_SLOTS)
		return OUTQ_EFULL;
	cap = q->cap ? (uint16_t)(q->cap * 2) : OUTQ_MIN_SLOTS;
	ring = malloc(sizeof(*ring) * cap);
	if (!ring)
		return OUTQ_ENOMEM;
	for (uint16_t i = 0; i < q->count; i++)
		ring[i] = q->ring[(q->head + i) & (q->cap - 1)];
	free(q->ring);
	q->ring = ring;
	q->cap = cap;
	q->head = 0;
	return OUTQ_OK;
}

int outq_push(outq_t *q, frame_t *f, size_t limit)
{
	int rc;

	if ((size_t)q->bytes + f->len > limit)
		return OUTQ_EFULL;
	rc = outq_reserve(q);
	if (rc)
		return rc;
	q->ring[(q->head + q->count) & (q->cap - 1)] = frame_ref(f);
	q->count++;
	q->bytes += f->len;
	return OUTQ_OK;
}

int outq_push_front(outq_t *q, frame_t *f)
{
	int rc = outq_reserve(q);

	if (rc)
		return rc;
	q->head = (uint16_t)((q->head + q->cap - 1) & (q->cap - 1));
	q->ring[q->head] = frame_ref(f);
	q->count++;
	q->bytes += f->len;
	return OUTQ_OK;
}

frame_t *outq_peek(const outq_t *q)
{
	return q->count ? q->ring[q->head] : NULL;
}

void outq_pop(outq_t *q)
{
	frame_t *f;

	if (!q->count)
		return;
	f = q->ring[q->head];
	q->head = (uint16_t)((q->head + 1) & (q->cap - 1));
	q->count--;
	q->bytes -= f->len;
	frame_unref(f);
	if (!q->count) {
		/* An idle watcher keeps no queue memory. */
		free(q->ring);
		q->ring = NULL;
		q->cap = 0;
		q->head = 0;
	}
}

void outq_drop_upto(outq_t *q, const proto_cursor_t *upto)
{
	uint16_t kept = 0;

	for (uint16_t i = 0; i < q->count; i++) {
		frame_t *f = q->ring[(q->head + i) & (q->cap - 1)];

		if (f->kind == FRAME_UPDATE && proto_cursor_cmp(&f->cursor, upto) <= 0) {
			q->bytes -= f->len;
			frame_unref(f);
			continue;
		}
		q->ring[(q->head + kept) & (q->cap - 1)] = f;
		kept++;
	}
	q->count = kept;
	if (!q->count)
		outq_clear(q);
}

void outq_clear(outq_t *q)
{
	while (q->count)
		outq_pop(q);
	free(q->ring);
	q->ring = NULL;
	q->cap = 0;
	q->head = 0;
	q->bytes = 0;
}

unsigned outq_drop_coalescable(outq_t *q)
{
	uint16_t kept = 0;
	unsigned dropped = 0;

	for (uint16_t i = 0; i < q->count; i++) {
		frame_t *f = q->ring[(q->head + i) & (q->cap - 1)];

		if (f->coalesce) {
			q->bytes -= f->len;
			frame_unref(f);
			dropped++;
			continue;
		}
		q->ring[(q->head + kept) & (q->cap - 1)] = f;
		kept++;
	}
	q->count = kept;
	if (!q->count)
		outq_clear(q);
	return dropped;
}

int outq_splice(outq_t *q, uint16_t held, frame_t *const *frames, size_t n,
		const proto_cursor_t *upto)
{
	outq_t out = {0};
	uint16_t sendable = held > q->count ? 0 : (uint16_t)(q->count - held);
	int rc = OUTQ_OK;
	uint16_t i;

	for (i = 0; i < sendable && rc == OUTQ_OK; i++)
		rc = outq_push(&out, q->ring[(q->head + i) & (q->cap - 1)], SIZE_MAX);
	for (size_t k = 0; k < n && rc == OUTQ_OK; k++)
		rc = outq_push(&out, frames[k], SIZE_MAX);
	for (; i < q->count && rc == OUTQ_OK; i++) {
		frame_t *f = q->ring[(q->head + i) & (q->cap - 1)];

		if (f->kind == FRAME_UPDATE && proto_cursor_cmp(&f->cursor, upto) <= 0)
			continue; /* the snapshot or the replay holds it */
		rc = outq_push(&out, f, SIZE_MAX);
	}
	if (rc != OUTQ_OK) {
		outq_clear(&out);
		return rc;
	}
	outq_clear(q);
	*q = out;
	return OUTQ_OK;
}

proto_cursor_t outq_max_cursor(const outq_t *q, const proto_cursor_t *floor)
{
	proto_cursor_t max = *floor;

	for (uint16_t i = 0; i < q->count; i++) {
		const frame_t *f = q->ring[(q->head + i) & (q->cap - 1)];

		if (f->kind != FRAME_ERROR && proto_cursor_cmp(&f->cursor, &max) > 0)
			max = f->cursor;
	}
	return max;
}
