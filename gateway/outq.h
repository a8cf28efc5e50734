/*
 * outq.h - frames and per-watcher output queues.
 *
 * A frame is one websocket text message, allocated once with LWS_PRE bytes
 * of headroom in front of the payload (lws writes the websocket header
 * there) and shared by every watcher it is queued on: refcounted, freed by
 * the last outq that drops it.  The payload is never modified after
 * creation, so sharing needs no copy.
 *
 * An outq is a small ring of frame pointers, allocated only while frames are
 * pending (an idle watcher owns no queue memory) and bounded in bytes.
 */
#ifndef TRACKGATE_OUTQ_H
#define TRACKGATE_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

typedef enum frame_kind {
	FRAME_UPDATE = 0,
	FRAME_SNAPSHOT,
	FRAME_ERROR,
	FRAME_RESUMED,	 /* the end of a resume's replay; carries the cursor it reached */
	FRAME_REFRESHED, /* the answer to a token refresh */
} frame_kind_t;

typedef struct frame {
	uint32_t refs;	       /* owners: the creator until it unrefs, then each outq */
	uint32_t len;	       /* payload bytes */
	proto_cursor_t cursor; /* of an update or snapshot frame; 0-0 when none */
	int64_t ts_ms;	       /* an update frame's update ts (ms since epoch); 0 = unknown */
	uint8_t kind;	       /* frame_kind_t */
	uint8_t coalesce; /* an update with a location and nothing else: a newer one replaces it */
	unsigned char buf[]; /* LWS_PRE headroom, then the payload */
} frame_t;

/* A frame with refs = 1 and room for len payload bytes; NULL on OOM. */
frame_t *frame_new(frame_kind_t kind, size_t len);
/* The frame of payload bytes copied from p. */
frame_t *frame_copy(frame_kind_t kind, const void *p, size_t len);
unsigned char *frame_payload(frame_t *f);
frame_t *frame_ref(frame_t *f);
void frame_unref(frame_t *f);

enum {
	OUTQ_OK = 0,
	OUTQ_EFULL = -1, /* the byte bound would be passed */
	OUTQ_ENOMEM = -2,
};

typedef struct outq {
	frame_t **ring; /* is malloc'd while non-empty; owns one ref per slot */
	uint32_t bytes; /* payload bytes queued */
	uint16_t cap;	/* slots in ring, a power of two */
	uint16_t head;	/* index of the oldest frame */
	uint16_t count;
} outq_t;

/* Appends f (taking a new ref) unless bytes + f->len > limit. */
int outq_push(outq_t *q, frame_t *f, size_t limit);
/* Puts f first (taking a new ref); used for a snapshot. Not bounded. */
int outq_push_front(outq_t *q, frame_t *f);
frame_t *outq_peek(const outq_t *q);
/* Drops the oldest frame (and its ref). */
void outq_pop(outq_t *q);
/* Drops every update frame whose cursor is <= upto: those a snapshot holds. */
void outq_drop_upto(outq_t *q, const proto_cursor_t *upto);
/* Drops everything and frees the ring. */
void outq_clear(outq_t *q);

/* Removes the queued frames marked coalesce; returns how many went. */
unsigned outq_drop_coalescable(outq_t *q);

/*
 * Rebuilds the queue as: its first count - held frames (sendable, untouched),
 * then frames[0..n) (taking a ref on each), then the last held frames minus
 * the update frames whose cursor is <= upto.  This is how a snapshot or a
 * replay from the log goes in front of the live frames held while it was
 * fetched, without reordering what was already sendable.  Not bounded.
 */
int outq_splice(outq_t *q, uint16_t held, frame_t *const *frames, size_t n,
		const proto_cursor_t *upto);

/* The largest cursor of the queued update and snapshot frames, or *floor if larger. */
proto_cursor_t outq_max_cursor(const outq_t *q, const proto_cursor_t *floor);

static inline bool outq_empty(const outq_t *q)
{
	return q->count == 0;
}

#endif
