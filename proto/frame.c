/*
 * frame.c - the websocket frames trackgate sends (proto/README.md), the
 * order document of GET /v1/orders/{ID}, and the byte scans of update frames
 * for the fan-out hot path (cursor, location-only, ts).
 *
 * The writers check what they insert as JSON text: an order id must be valid
 * and a cursor canonical, so neither needs escaping; state and update JSON are
 * inserted verbatim (they come from the script or from proto_update_to_json);
 * the error frame's strings are escaped.
 */
#include "proto.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* snprintf-like output: writes what fits in cap, counts everything. */
struct frame_out {
	char *dst;
	size_t cap;
	size_t len;
};

static void put(struct frame_out *o, const char *s, size_t n)
{
	if (o->len < o->cap) {
		size_t room = o->cap - o->len;
		memcpy(o->dst + o->len, s, n < room ? n : room);
	}
	o->len += n;
}

static void put_lit(struct frame_out *o, const char *s)
{
	put(o, s, strlen(s));
}

static int finish(const struct frame_out *o)
{
	return o->len > (size_t)INT_MAX ? PROTO_EINVAL : (int)o->len;
}

/* strlen that stops looking after max bytes (returns max + 1 then). */
static size_t bounded_len(const char *s, size_t max)
{
	size_t n = 0;

	while (n <= max && s[n] != '\0')
		n++;
	return n;
}

static bool valid_order_id(const char *order_id)
{
	return order_id != NULL &&
	       proto_order_id_valid(order_id, bounded_len(order_id, PROTO_ORDER_ID_MAX));
}

static bool valid_cursor(const char *cursor)
{
	return cursor != NULL &&
	       proto_cursor_parse(cursor, bounded_len(cursor, PROTO_CURSOR_MAX), NULL) == PROTO_OK;
}

/*
 * s as a JSON string.  Quote and backslash are escaped, control characters
 * (and DEL) become \n-style or \u00XX escapes, valid UTF-8 passes through,
 * and each byte that is not part of valid UTF-8 becomes \ufffd, so the frame
 * is valid JSON whatever the message echoes back of the client's input.
 */
static void put_json_string(struct frame_out *o, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	char esc[8];

	put(o, "\"", 1);
	while (*p != '\0') {
		size_t n;
		switch (*p) {
		case '"':
			put(o, "\\\"", 2);
			break;
		case '\\':
			put(o, "\\\\", 2);
			break;
		case '\b':
			put(o, "\\b", 2);
			break;
		case '\f':
			put(o, "\\f", 2);
			break;
		case '\n':
			put(o, "\\n", 2);
			break;
		case '\r':
			put(o, "\\r", 2);
			break;
		case '\t':
			put(o, "\\t", 2);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				snprintf(esc, sizeof(esc), "\\u%04x", *p);
				put(o, esc, 6);
				break;
			}
			n = proto_utf8_seq_len(p, strnlen((const char *)p, 4));
			if (n == 0) {
				put(o, "\\ufffd", 6);
				break;
			}
			put(o, (const char *)p, n);
			p += n;
			continue;
		}
		p++;
	}
	put(o, "\"", 1);
}

static bool order_args_valid(const char *dst, size_t cap, const char *order_id,
			     const char *state_json, size_t state_len, const char *cursor)
{
	return (dst != NULL || cap == 0) && valid_order_id(order_id) &&
	       (state_json == NULL || (state_len != 0 && state_len <= (size_t)INT_MAX)) &&
	       (cursor == NULL || valid_cursor(cursor));
}

/*
 * The snapshot frame's members after its type, checked by order_args_valid:
 * also the GET /v1/orders/{ID} document.
 */
static int put_order(struct frame_out *o, const char *order_id, const char *state_json,
		     size_t state_len, const char *cursor, bool reset)
{
	put_lit(o, "\"order_id\":\"");
	put_lit(o, order_id);
	put_lit(o, "\",\"state\":");
	if (state_json != NULL)
		put(o, state_json, state_len);
	else
		put_lit(o, "null");
	put_lit(o, ",\"cursor\":");
	if (cursor != NULL) {
		put(o, "\"", 1);
		put_lit(o, cursor);
		put(o, "\"", 1);
	} else {
		put_lit(o, "null");
	}
	if (reset)
		put_lit(o, ",\"reset\":true");
	put(o, "}", 1);
	return finish(o);
}

int proto_frame_snapshot(char *dst, size_t cap, const char *order_id, const char *state_json,
			 size_t state_len, const char *cursor, bool reset)
{
	struct frame_out o = {dst, cap, 0};

	if (!order_args_valid(dst, cap, order_id, state_json, state_len, cursor))
		return PROTO_EINVAL;
	put_lit(&o, "{\"type\":\"snapshot\",");
	return put_order(&o, order_id, state_json, state_len, cursor, reset);
}

int proto_order_doc(char *dst, size_t cap, const char *order_id, const char *state_json,
		    size_t state_len, const char *cursor)
{
	struct frame_out o = {dst, cap, 0};

	if (!order_args_valid(dst, cap, order_id, state_json, state_len, cursor))
		return PROTO_EINVAL;
	put(&o, "{", 1);
	return put_order(&o, order_id, state_json, state_len, cursor, false);
}

int proto_frame_update(char *dst, size_t cap, const char *order_id, const char *update_json,
		       size_t update_len, const char *cursor)
{
	struct frame_out o = {dst, cap, 0};

	if ((dst == NULL && cap != 0) || !valid_order_id(order_id) || update_json == NULL ||
	    update_len == 0 || update_len > (size_t)INT_MAX || !valid_cursor(cursor))
		return PROTO_EINVAL;
	/* The same bytes as apply_update.lua's frame. */
	put_lit(&o, "{\"type\":\"update\",\"order_id\":\"");
	put_lit(&o, order_id);
	put_lit(&o, "\",\"update\":");
	put(&o, update_json, update_len);
	put_lit(&o, ",\"cursor\":\"");
	put_lit(&o, cursor);
	put_lit(&o, "\"}");
	return finish(&o);
}

int proto_frame_resumed(char *dst, size_t cap, const char *order_id, const char *cursor,
			size_t replayed)
{
	struct frame_out o = {dst, cap, 0};
	char n[24];

	if ((dst == NULL && cap != 0) || !valid_order_id(order_id) || cursor == NULL ||
	    !valid_cursor(cursor))
		return PROTO_EINVAL;
	put_lit(&o, "{\"type\":\"resumed\",\"order_id\":\"");
	put_lit(&o, order_id);
	put_lit(&o, "\",\"cursor\":\"");
	put_lit(&o, cursor);
	put_lit(&o, "\",\"replayed\":");
	snprintf(n, sizeof(n), "%zu", replayed);
	put_lit(&o, n);
	put(&o, "}", 1);
	return finish(&o);
}

int proto_frame_refreshed(char *dst, size_t cap, const char *order_id, int64_t exp)
{
	struct frame_out o = {dst, cap, 0};
	char n[24];

	if ((dst == NULL && cap != 0) || !valid_order_id(order_id) || exp < 0)
		return PROTO_EINVAL;
	put_lit(&o, "{\"type\":\"refreshed\",\"order_id\":\"");
	put_lit(&o, order_id);
	put_lit(&o, "\",\"exp\":");
	snprintf(n, sizeof(n), "%lld", (long long)exp);
	put_lit(&o, n);
	put(&o, "}", 1);
	return finish(&o);
}

int proto_frame_error(char *dst, size_t cap, const char *code, const char *message)
{
	struct frame_out o = {dst, cap, 0};

	if ((dst == NULL && cap != 0) || code == NULL || message == NULL)
		return PROTO_EINVAL;
	put_lit(&o, "{\"type\":\"error\",\"error\":");
	put_json_string(&o, code);
	put_lit(&o, ",\"message\":");
	put_json_string(&o, message);
	put(&o, "}", 1);
	return finish(&o);
}

/*
 * The frame must be laid out as the script writes it:
 *   {"type":"update","order_id":"<valid id>","update":<at least 2 bytes>,"cursor":"<ms>-<seq>"}
 * with a canonical cursor and nothing after the closing brace.  The update
 * JSON in the middle is not looked at.  The id is scanned forward over at most
 * PROTO_ORDER_ID_MAX bytes and the cursor backward over at most
 * PROTO_CURSOR_MAX bytes, each only after checking the bytes exist, so no
 * input makes this read outside frame[0..len).
 */
int proto_frame_update_cursor(const char *frame, size_t len, proto_cursor_t *out)
{
	static const char prefix[] = "{\"type\":\"update\",\"order_id\":\"";
	static const char middle[] = "\",\"update\":";
	static const char tail[] = ",\"cursor\":\"";
	const size_t prefix_len = sizeof(prefix) - 1;
	const size_t middle_len = sizeof(middle) - 1;
	const size_t tail_len = sizeof(tail) - 1;
	size_t id_len = 0, body, end, start;

	/* The shortest frame: a 1-byte id, update {}, cursor 0-0. */
	if (frame == NULL || len < prefix_len + 1 + middle_len + 2 + tail_len + 3 + 2)
		return PROTO_EINVAL;
	if (memcmp(frame, prefix, prefix_len) != 0)
		return PROTO_EINVAL;
	while (id_len < PROTO_ORDER_ID_MAX && prefix_len + id_len < len &&
	       proto_order_id_valid(frame + prefix_len + id_len, 1))
		id_len++;
	body = prefix_len + id_len + middle_len; /* first byte of the update JSON */
	if (id_len == 0 || body + 2 + tail_len + 3 + 2 > len ||
	    memcmp(frame + prefix_len + id_len, middle, middle_len) != 0)
		return PROTO_EINVAL;
	if (frame[len - 1] != '}' || frame[len - 2] != '"')
		return PROTO_EINVAL;
	end = len - 2;
	start = end;
	while (start > body + 2 + tail_len && end - start < PROTO_CURSOR_MAX &&
	       ((frame[start - 1] >= '0' && frame[start - 1] <= '9') || frame[start - 1] == '-'))
		start--;
	if (memcmp(frame + start - tail_len, tail, tail_len) != 0)
		return PROTO_EINVAL;
	return proto_cursor_parse(frame + start, end - start, out);
}

bool proto_frame_update_location_only(const char *frame, size_t len)
{
	return memmem(frame, len, "\"location\":", 11) && !memmem(frame, len, "\"status\":", 9) &&
	       !memmem(frame, len, "\"eta\":", 6) && !memmem(frame, len, "\"courier\":", 10) &&
	       !memmem(frame, len, "\"places\":", 9);
}

int64_t proto_frame_update_ts(const char *frame, size_t len)
{
	const char *t = memmem(frame, len, "\"ts\":", 5);
	int64_t v = 0;

	if (!t)
		return 0;
	for (t += 5; t < frame + len && *t >= '0' && *t <= '9' && v < PROTO_MS_MAX; t++)
		v = v * 10 + (*t - '0');
	return v;
}
