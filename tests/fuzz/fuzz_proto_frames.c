/*
 * fuzz_proto_frames.c - the websocket frame code of proto/frame.c and the
 * cursor parser it relies on.
 *
 * The whole input is first scanned by proto_frame_update_cursor (frames
 * come back from Redis pub/sub and the log stream).  Then it is read as
 *
 *   FLAGS ORDER_ID \0 CURSOR \0 JSON \0 CODE \0 MESSAGE
 *
 * (one flags byte, then fields split on NUL bytes; missing fields are
 * empty) and every writer is driven with those strings.  Checks:
 *  - proto_cursor_parse: a valid cursor has one spelling (printing it back
 *    gives the input), a refused one leaves *out untouched;
 *  - the scanner: what it accepts ends in ,"cursor":"<that cursor>"};
 *  - the writers behave like snprintf: the size asked with cap 0 is the
 *    size written, a smaller cap writes a prefix of the same bytes and
 *    never past cap (buffers are malloc'd to the exact size for ASan), the
 *    result does not depend on cap;
 *  - the frames agree with their readers: an update frame's cursor is found
 *    by the scanner, a snapshot of valid state JSON is valid JSON, an error
 *    frame is always valid JSON and gives back valid UTF-8 strings;
 *  - the order document is the snapshot frame without its type;
 *  - the location-only and ts scans read only the input (ASan) and the ts
 *    stays in range;
 *  - proto_utf8_valid agrees with an independent checker on the message, and
 *    proto_utf8_feed gives the same answer with the message cut in two;
 *  - proto_base64_decode of the message (both alphabets, with and without
 *    padding allowed) writes at most what it reports, into an exact buffer.
 */
#include <limits.h>
#include <stdbool.h>

#include <cjson/cJSON.h>

#include "fuzz.h"
#include "proto.h"

enum {
	FLAG_RESET = 1 << 0,	   /* snapshot: "reset":true */
	FLAG_NULL_STATE = 1 << 1,  /* snapshot: state null */
	FLAG_NULL_CURSOR = 1 << 2, /* snapshot: cursor null */
	/* the other bits choose the short cap tried: (flags >> 3) * (size + 1) / 32 */
};

/* The text of a cursor as the script writes it. */
static int cursor_text(const proto_cursor_t *c, char *buf, size_t cap)
{
	return snprintf(buf, cap, "%llu-%llu", (unsigned long long)c->ms,
			(unsigned long long)c->seq);
}

static void check_cursor(const char *s, size_t len)
{
	proto_cursor_t c, sentinel = {0x5a5a5a5a5a5a5a5aULL, 0xa5a5a5a5a5a5a5a5ULL};
	char text[64];
	int rc, n;

	c = sentinel;
	rc = proto_cursor_parse(s, len, &c);
	FUZZ_CHECK(rc == PROTO_OK || rc == PROTO_EINVAL, "result %d", rc);
	FUZZ_CHECK(proto_cursor_parse(s, len, NULL) == rc, "a different result without out");
	if (rc != PROTO_OK) {
		FUZZ_CHECK(memcmp(&c, &sentinel, sizeof(c)) == 0, "a refused cursor wrote *out");
		return;
	}
	n = cursor_text(&c, text, sizeof(text));
	FUZZ_CHECK(n > 0 && (size_t)n == len && memcmp(text, s, len) == 0,
		   "cursor '%.*s' reads as %s: not its one spelling", (int)len, s, text);
	FUZZ_CHECK(len <= PROTO_CURSOR_MAX, "a cursor of %zu bytes", len);
	FUZZ_CHECK(proto_cursor_cmp(&c, &c) == 0, "a cursor differs from itself");
}

static void check_scanner(const uint8_t *data, size_t size)
{
	static const char prefix[] = "{\"type\":\"update\",\"order_id\":\"";
	static const char tail[] = ",\"cursor\":\"";
	proto_cursor_t c;
	char text[64];
	int n;

	if (proto_frame_update_cursor((const char *)data, size, &c) != PROTO_OK)
		return;
	n = cursor_text(&c, text, sizeof(text));
	FUZZ_CHECK(size >= sizeof(prefix) - 1 && memcmp(data, prefix, sizeof(prefix) - 1) == 0,
		   "accepted a frame without the update prefix");
	FUZZ_CHECK(size >= (size_t)n + 2 + sizeof(tail) - 1 &&
		       memcmp(data + size - 2 - n, text, (size_t)n) == 0 &&
		       memcmp(data + size - 2, "\"}", 2) == 0 &&
		       memcmp(data + size - 2 - n - (sizeof(tail) - 1), tail, sizeof(tail) - 1) ==
			   0,
		   "the frame does not end in ,\"cursor\":\"%s\"}", text);
}

/* One frame writer with its arguments bound. */
typedef struct writer {
	const char *name;
	int (*write)(const struct writer *w, char *dst, size_t cap);
	const char *order_id, *json, *cursor, *code, *message;
	size_t json_len;
	bool reset;
} writer_t;

static int write_snapshot(const writer_t *w, char *dst, size_t cap)
{
	return proto_frame_snapshot(dst, cap, w->order_id, w->json, w->json_len, w->cursor,
				    w->reset);
}

static int write_update(const writer_t *w, char *dst, size_t cap)
{
	return proto_frame_update(dst, cap, w->order_id, w->json, w->json_len, w->cursor);
}

static int write_error(const writer_t *w, char *dst, size_t cap)
{
	return proto_frame_error(dst, cap, w->code, w->message);
}

/*
 * Drives w the snprintf way and returns the frame (malloc'd, *len bytes, no
 * NUL) or NULL when the writer refused its arguments.
 */
static char *check_writer(const writer_t *w, unsigned cap_eighths, size_t *len)
{
	char probe[16];
	char *full, *part;
	size_t cap;
	int n, rc;

	n = w->write(w, NULL, 0);
	FUZZ_CHECK(n >= 0 || n == PROTO_EINVAL || n == PROTO_ENOMEM, "%s: result %d", w->name, n);
	FUZZ_CHECK(w->write(w, NULL, 1) == PROTO_EINVAL, "%s: wrote to NULL with cap 1", w->name);
	if (n < 0) {
		rc = w->write(w, probe, sizeof(probe));
		FUZZ_CHECK(rc == n, "%s: %d with cap 0, %d with a buffer", w->name, n, rc);
		return NULL;
	}
	FUZZ_CHECK(n > 0, "%s: an empty frame", w->name);
	full = malloc((size_t)n);
	FUZZ_CHECK(full != NULL, "out of memory");
	rc = w->write(w, full, (size_t)n);
	FUZZ_CHECK(rc == n, "%s: sized %d, wrote %d", w->name, n, rc);

	cap = (size_t)n * cap_eighths / 32;
	part = malloc(cap != 0 ? cap : 1);
	FUZZ_CHECK(part != NULL, "out of memory");
	rc = w->write(w, part, cap);
	FUZZ_CHECK(rc == n, "%s: %d with cap %zu, %d with room", w->name, rc, cap, n);
	FUZZ_CHECK(cap == 0 || memcmp(part, full, cap) == 0,
		   "%s: cap %zu did not write a prefix of the frame", w->name, cap);
	free(part);
	*len = (size_t)n;
	return full;
}

static int json_depth(const cJSON *item)
{
	int deepest = 0;

	for (const cJSON *c = item != NULL ? item->child : NULL; c != NULL; c = c->next) {
		int d = json_depth(c);
		if (d > deepest)
			deepest = d;
	}
	return deepest + 1;
}

/* Parses len bytes as one whole JSON text (NUL-terminated copy, nothing after). */
static cJSON *parse_whole(const char *s, size_t len)
{
	char *copy = fuzz_strndup((const uint8_t *)s, len);
	const char *end = NULL;
	cJSON *root = NULL;

	if (strlen(copy) == len)
		root = cJSON_ParseWithOpts(copy, &end, true);
	free(copy);
	return root;
}

/* Length of the valid UTF-8 sequence at p (NUL-terminated), 0 if invalid. */
static size_t utf8_len(const unsigned char *p)
{
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		return (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (p[0] >= 0xe0 && p[0] <= 0xef) {
		unsigned char lo = p[0] == 0xe0 ? 0xa0 : 0x80, hi = p[0] == 0xed ? 0x9f : 0xbf;
		return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		unsigned char lo = p[0] == 0xf0 ? 0x90 : 0x80, hi = p[0] == 0xf4 ? 0x8f : 0xbf;
		return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80
			   ? 4
			   : 0;
	}
	return 0;
}

static bool valid_utf8(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0';) {
		size_t n = utf8_len(p);
		if (n == 0)
			return false;
		p += n;
	}
	return true;
}

static void check_text(const char *s, size_t cut)
{
	size_t len = strlen(s);
	uint8_t st = 0;
	bool whole = proto_utf8_valid(s, len), fed;

	FUZZ_CHECK(whole == valid_utf8(s), "proto_utf8_valid says %d for '%s'", whole, s);
	if (cut > len)
		cut = len;
	fed = proto_utf8_feed(&st, s, cut) && proto_utf8_feed(&st, s + cut, len - cut) && st == 0;
	FUZZ_CHECK(fed == whole, "proto_utf8_feed cut at %zu says %d, the whole text %d", cut, fed,
		   whole);
}

static void check_base64(const char *s, unsigned flags)
{
	size_t len = strlen(s), n = 0, again = 0;
	size_t cap = PROTO_BASE64_DECODED_MAX(len);
	unsigned char *out = malloc(cap != 0 ? cap : 1);
	int rc;

	FUZZ_CHECK(out != NULL, "out of memory");
	rc = proto_base64_decode(s, len, flags, out, cap, &n);
	FUZZ_CHECK(rc == PROTO_OK || rc == PROTO_EINVAL, "proto_base64_decode: %d", rc);
	if (rc == PROTO_OK) {
		FUZZ_CHECK(n <= cap && n <= len * 3 / 4, "%zu bytes out of %zu characters", n, len);
		free(out);
		/* An exact buffer is enough, one byte less is not. */
		out = malloc(n != 0 ? n : 1);
		FUZZ_CHECK(out != NULL, "out of memory");
		FUZZ_CHECK(proto_base64_decode(s, len, flags, out, n, &again) == PROTO_OK &&
			       again == n,
			   "needs more than the %zu bytes it reports", n);
		FUZZ_CHECK(n == 0 || proto_base64_decode(s, len, flags, out, n - 1, &again) ==
					 PROTO_EINVAL,
			   "wrote %zu bytes into %zu", n, n - 1);
		FUZZ_CHECK(!(flags & PROTO_BASE64_NOPAD) || memchr(s, '=', len) == NULL,
			   "took padding with PROTO_BASE64_NOPAD");
	}
	free(out);
}

static void check_member(const cJSON *root, const char *name, const char *want)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, name);

	FUZZ_CHECK(cJSON_IsString(item) && item->valuestring != NULL, "no string member %s", name);
	FUZZ_CHECK(strcmp(item->valuestring, want) == 0, "member %s is '%s', not '%s'", name,
		   item->valuestring, want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *field[5] = {NULL};
	size_t field_len[5] = {0};
	char *str[5];
	unsigned flags, cap_eighths;
	writer_t w;
	char *frame;
	size_t len;
	proto_cursor_t want, got;
	cJSON *root, *state;

	check_scanner(data, size);
	FUZZ_CHECK(proto_frame_update_ts((const char *)data, size) < PROTO_MS_MAX * 10 + 10,
		   "a ts past what the scan reads");
	(void)proto_frame_update_location_only((const char *)data, size);
	if (size == 0)
		return 0;
	flags = data[0];
	cap_eighths = flags >> 3; /* 0..31 */
	data++;
	size--;
	for (int i = 0; i < 5; i++) {
		if (i < 4)
			fuzz_next_field(&data, &size, 0, &field[i], &field_len[i]);
		else {
			field[i] = data;
			field_len[i] = size;
		}
		str[i] =
		    fuzz_strndup(field[i] != NULL ? field[i] : (const uint8_t *)"", field_len[i]);
	}
	/* 0 order id, 1 cursor, 2 json, 3 code, 4 message (may hold NULs: read up to the first) */
	check_cursor(str[1], field_len[1]);

	memset(&w, 0, sizeof(w));
	w.order_id = str[0];
	w.cursor = str[1];
	w.json = str[2];
	w.json_len = field_len[2];
	w.code = str[3];
	w.message = str[4];

	/* The snapshot frame. */
	w.name = "proto_frame_snapshot";
	w.write = write_snapshot;
	w.reset = (flags & FLAG_RESET) != 0;
	if (flags & FLAG_NULL_STATE) {
		w.json = NULL;
		w.json_len = 0;
	}
	if (flags & FLAG_NULL_CURSOR)
		w.cursor = NULL;
	frame = check_writer(&w, cap_eighths, &len);
	if (frame != NULL) {
		state = w.json != NULL ? parse_whole(w.json, w.json_len) : NULL;
		/* A state near cJSON's nesting limit would not fit one level deeper. */
		if (w.json == NULL || (state != NULL && json_depth(state) < 900)) {
			root = parse_whole(frame, len);
			FUZZ_CHECK(root != NULL, "a snapshot of valid state is not JSON: %.*s",
				   (int)len, frame);
			check_member(root, "type", "snapshot");
			check_member(root, "order_id", w.order_id);
			if (w.cursor != NULL)
				check_member(root, "cursor", w.cursor);
			cJSON_Delete(root);
		}
		cJSON_Delete(state);
		/* The order document: the same bytes without "type":"snapshot", (18 bytes). */
		if (!w.reset) {
			char *doc = malloc(len - 18);
			FUZZ_CHECK(doc != NULL, "out of memory");
			FUZZ_CHECK(proto_order_doc(doc, len - 18, w.order_id, w.json, w.json_len,
						   w.cursor) == (int)(len - 18) &&
				       doc[0] == '{' && memcmp(doc + 1, frame + 19, len - 19) == 0,
				   "the order document is not the snapshot frame without its type");
			free(doc);
		}
		free(frame);
	}

	/* The update frame, and the scanner reading it back. */
	w.name = "proto_frame_update";
	w.write = write_update;
	w.json = str[2];
	w.json_len = field_len[2];
	w.cursor = str[1];
	frame = check_writer(&w, cap_eighths, &len);
	if (frame != NULL) {
		FUZZ_CHECK(proto_cursor_parse(w.cursor, strlen(w.cursor), &want) == PROTO_OK,
			   "an update frame with cursor '%s'", w.cursor);
		if (w.json_len >= 2) {
			FUZZ_CHECK(proto_frame_update_cursor(frame, len, &got) == PROTO_OK,
				   "the scanner misses the cursor of %.*s", (int)len, frame);
			FUZZ_CHECK(proto_cursor_cmp(&want, &got) == 0,
				   "the scanner reads another cursor in %.*s", (int)len, frame);
		}
		free(frame);
	}

	/* The error frame: valid JSON whatever the strings hold. */
	w.name = "proto_frame_error";
	w.write = write_error;
	frame = check_writer(&w, cap_eighths, &len);
	FUZZ_CHECK(frame != NULL, "the error frame refused its strings");
	root = parse_whole(frame, len);
	FUZZ_CHECK(root != NULL, "an error frame is not JSON: %.*s", (int)len, frame);
	check_member(root, "type", "error");
	if (valid_utf8(w.code))
		check_member(root, "error", w.code);
	if (valid_utf8(w.message))
		check_member(root, "message", w.message);
	cJSON_Delete(root);
	free(frame);

	check_text(w.message, field_len[0]);
	check_base64(w.message, flags & 3);

	for (int i = 0; i < 5; i++)
		free(str[i]);
	return 0;
}
