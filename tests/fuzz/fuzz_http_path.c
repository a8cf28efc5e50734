/*
 * fuzz_http_path.c - the pure pieces a request target goes through in
 * gateway/server.c, on any bytes.
 *
 * The daemon routes on the path in server_http and reads the query with
 * gateway/query.c (http_query feeds it lws's '&'-separated fragments); the
 * routing is not a pure function, so this target replays it with what is
 * pure:
 *
 *   /v1/track/{order_id}?since=C  the order id check (proto_order_id_valid
 *                                 on the path's tail), then the query:
 *                                 query_get must agree with a plain count of
 *                                 each name (one: its value; two or more:
 *                                 refused), then the cursor
 *                                 (proto_cursor_parse on since's value);
 *   /v1/webhooks/{provider}       adapter_find on the tail;
 *   a valid order id              proto_keys_for, and proto_channel_order_id
 *                                 must read the id back out of its channel
 *                                 name "trk:{ID}" (broker.c routes pub/sub
 *                                 messages that way);
 *   the raw input                 proto_channel_order_id, as a channel name
 *                                 Redis sends.
 *
 * The input is the request target ("/v1/track/abc?since=1-0").  As lws
 * does, the target is cut at the first NUL and split at the first '?'.
 *
 * The token check of ?token= (gateway/auth.c) has its own target.
 */
#include <stdbool.h>

#include "adapter.h"
#include "fuzz.h"
#include "proto.h"
#include "query.h"
#include "script.h"

#define URI_MAX 256 /* server.c copies the URI into char uri[256] */

/*
 * query_get(name) against a plain scan of the '&'-separated arguments:
 * found once gives its value, twice or more is refused, more arguments than
 * QUERY_ARGS_MAX refuse everything.  Returns the value (NUL-terminated copy)
 * or NULL.
 */
static char *check_query_arg(const char *qs, const char *name)
{
	size_t nl = strlen(name), n_args = 0, count = 0, want_len = 0;
	const char *want = NULL, *p = qs, *v = NULL;
	size_t len = 0;
	query_t q;
	int rc;

	while (*p) {
		const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);

		if (end > p) {
			const char *eq = memchr(p, '=', (size_t)(end - p));
			size_t name_len = eq ? (size_t)(eq - p) : (size_t)(end - p);

			n_args++;
			if (name_len == nl && !memcmp(p, name, nl)) {
				count++;
				want = eq ? eq + 1 : end;
				want_len = (size_t)(end - want);
			}
		}
		p = amp ? amp + 1 : end;
	}
	query_parse(&q, qs, strlen(qs));
	rc = query_get(&q, name, &v, &len);
	if (n_args > QUERY_ARGS_MAX) {
		FUZZ_CHECK(rc == QUERY_TOO_MANY, "%zu arguments: query_get(%s) gave %d", n_args, name,
			   rc);
		return NULL;
	}
	FUZZ_CHECK(rc == (count == 0 ? QUERY_ABSENT : count == 1 ? QUERY_OK : QUERY_REPEATED),
		   "%s given %zu times: query_get gave %d", name, count, rc);
	if (rc != QUERY_OK)
		return NULL;
	FUZZ_CHECK(len == want_len && !memcmp(v, want, len), "the value of %s is not its own", name);
	return fuzz_strndup((const uint8_t *)v, len);
}

static void check_order_id(const char *id)
{
	size_t len = strlen(id), got_len = 0;
	bool valid = proto_order_id_valid(id, len);
	proto_keys_t keys;
	const char *got;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)id[i];
		bool allowed = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '~' ||
			       c == '-';
		if (!allowed) {
			FUZZ_CHECK(!valid, "order id with byte 0x%02x accepted", c);
			break;
		}
	}
	FUZZ_CHECK(!valid || (len >= 1 && len <= PROTO_ORDER_ID_MAX), "order id of %zu bytes", len);
	if (!valid)
		return;
	memset(&keys, 0, sizeof(keys));
	proto_keys_for(id, &keys);
	FUZZ_CHECK(strlen(keys.channel) == len + 6 && strlen(keys.state) == len + 12 &&
		       strlen(keys.log) == len + 10 && strlen(keys.seen) == len + 11,
		   "a key of '%s' was cut", id);
	got = proto_channel_order_id(keys.channel, strlen(keys.channel), &got_len);
	FUZZ_CHECK(got != NULL && got_len == len && memcmp(got, id, len) == 0,
		   "channel %s does not give back the order id", keys.channel);
	FUZZ_CHECK(proto_channel_order_id(keys.state, strlen(keys.state), &got_len) == NULL,
		   "the state key %s reads as a channel", keys.state);
}

static void check_since(const char *query)
{
	char text[64], *since;
	proto_cursor_t c;

	if (query == NULL)
		return;
	free(check_query_arg(query, "token"));
	since = check_query_arg(query, "since");
	if (since == NULL)
		return;
	if (proto_cursor_parse(since, strlen(since), &c) == PROTO_OK) {
		snprintf(text, sizeof(text), "%llu-%llu", (unsigned long long)c.ms,
			 (unsigned long long)c.seq);
		FUZZ_CHECK(strcmp(text, since) == 0, "since=%s reads as %s", since, text);
	}
	free(since);
}

static void check_channel(const uint8_t *data, size_t size)
{
	size_t len = 0;
	const char *id = proto_channel_order_id((const char *)data, size, &len);

	if (id == NULL)
		return;
	FUZZ_CHECK(id == (const char *)data + 5 && len == size - 6, "the id is not trk:{ID}'s");
	FUZZ_CHECK(proto_order_id_valid(id, len), "an invalid id from a channel name");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *target, *query;
	const adapter_ops_t *a;

	check_channel(data, size);
	if (size >= URI_MAX) /* lws_hdr_copy into uri[256] fails: 404 */
		return 0;
	target = fuzz_strndup(data, size);
	query = strchr(target, '?');
	if (query != NULL)
		*query++ = '\0';

	if (strncmp(target, "/v1/track/", 10) == 0) {
		check_order_id(target + 10);
		if (proto_order_id_valid(target + 10, strlen(target + 10)))
			check_since(query);
	} else if (strncmp(target, "/v1/webhooks/", 13) == 0) {
		a = adapter_find(target + 13);
		FUZZ_CHECK(a == NULL || strcmp(a->name, target + 13) == 0,
			   "adapter_find(%s) gave %s", target + 13, a->name);
	} else {
		/* Any other tail still goes through the id check in a fuzzed form. */
		check_order_id(target);
		check_since(query);
	}
	free(target);
	return 0;
}
