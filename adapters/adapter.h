/*
 * adapter.h - the interface every provider adapter implements: verify the
 * raw webhook request, then parse its body into canonical updates.
 *
 * Adapters are pure functions of their input (no I/O, no globals, no
 * clock: the receive time comes in the request), one file per provider,
 * found by name through the registry.  The gateway runs them on
 * POST /v1/webhooks/{provider} and hands what they return to the same
 * atomic Redis path as POST /v1/updates.
 *
 * Results: 0 on success, a negative ADAPTER_E* code on failure with the
 * failing field and a readable reason in proto_error_t.
 */
#ifndef TRACKGATE_ADAPTER_H
#define TRACKGATE_ADAPTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* Most canonical updates one webhook may produce. */
#define ADAPTER_UPDATES_MAX 4

/*
 * How far a signed timestamp may lie from the receive time, either way, when
 * the request does not say (replay_window_ms == 0): the default of the
 * webhook-replay-window setting, 300 s.
 */
#define ADAPTER_REPLAY_WINDOW_DEFAULT_MS 300000

enum {
	ADAPTER_OK = 0,
	ADAPTER_EAUTH = -1,  /* signature or credential missing or wrong: 401 */
	ADAPTER_EINVAL = -2, /* malformed: 400 naming the field */
	ADAPTER_ENOMEM = -3,
};

typedef struct adapter_request {
	const char *body; /* the raw body, exactly as received; not NUL-terminated */
	size_t body_len;
	/* A request header by lower-case name, NUL-terminated; NULL when absent. */
	const char *(*header)(void *ctx, const char *name);
	void *header_ctx;
	const unsigned char *secret; /* the provider's configured secret, as configured */
	size_t secret_len;
	int64_t now_ms; /* receive time, for providers that send none */
	/*
	 * For providers whose signature covers the time of sending (rappi's t):
	 * the most that time may differ from now_ms, either way, before the
	 * request is refused as a replay (401).  0: ADAPTER_REPLAY_WINDOW_DEFAULT_MS.
	 */
	int64_t replay_window_ms;
	/* The credential's header when the webhook's config names one ([webhook.X]
	 * header = NAME, lower case), else NULL: the adapter's own. */
	const char *credential_header;
} adapter_request_t;

typedef struct adapter_ops {
	const char *name; /* the {provider} of POST /v1/webhooks/{provider} */
	/*
	 * Checks the request's signature or credential against req->secret, on
	 * the raw body, before anything is parsed, in constant time.
	 * ADAPTER_EAUTH when it does not hold.
	 */
	int (*verify)(const adapter_request_t *req, proto_error_t *err);
	/*
	 * Parses a verified body into at most max canonical updates and stores
	 * how many in *n: 0 for a well-formed event with nothing to track (a
	 * ping, a price change), which the gateway answers 200 and ignores.
	 * Every update is valid for proto (the caller re-checks) and carries an
	 * event_id: the provider's event id, or a hash of the body when the
	 * provider has none, so a retried webhook is applied once.
	 */
	int (*parse)(const adapter_request_t *req, proto_update_t *out, int max, int *n,
		     proto_error_t *err);
} adapter_ops_t;

/* The adapter called name, or NULL. */
const adapter_ops_t *adapter_find(const char *name);

/* Every registered adapter, NULL-terminated. */
const adapter_ops_t *const *adapter_all(void);

/*
 * The JSON body to answer a webhook of adapter with when it gives no update
 * (parse stored *n = 0), for providers that read that answer: Rappi's PING
 * must be answered {"status":"OK", ...} or Rappi turns the store off.  NULL:
 * the gateway's usual {"ignored":true,"results":[]}.  Static text.
 */
const char *adapter_ignored_reply(const adapter_ops_t *adapter);

#endif
