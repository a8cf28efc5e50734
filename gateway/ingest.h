/*
 * ingest.h - POST /v1/updates: one canonical update or an array of up to
 * INGEST_BATCH_MAX, validated by proto and applied by the Redis script.
 *
 * The answer is built only once Redis has answered every valid item, so a
 * 2xx always means stored: 202 with one result per item (applied, stale,
 * duplicate, or the item's validation error); 503 when any valid item could
 * not be stored (the results say which were), so the sender retries (a
 * retry of an item with an event_id is harmless).
 */
#ifndef TRACKGATE_INGEST_H
#define TRACKGATE_INGEST_H

#include <stdbool.h>
#include <stddef.h>

#include "adapter.h"
#include "broker.h"
#include "metrics.h"

#define INGEST_BATCH_MAX 100

typedef struct ingest ingest_t;

/* ready(arg) is called when the answer is ready, never from ingest_finish itself. */
typedef void ingest_ready_fn(void *arg);

ingest_t *ingest_new(broker_t *broker, size_t content_length, ingest_ready_fn *ready, void *arg);

/* Appends body bytes; -1 when they exceed the announced Content-Length. */
int ingest_body(ingest_t *in, const void *p, size_t len);

/*
 * The body is complete: validate it and send the valid items to Redis.
 * Returns true when the answer is already known (bad JSON, Redis down, ...),
 * false when ready() will be called.
 */
bool ingest_finish(ingest_t *in);

/*
 * The same for POST /v1/webhooks/{provider}: the adapter verifies the raw
 * body with the provider's secret (401), parses it (400 naming the field;
 * 200 ignored when it carries nothing to track), and each update goes the
 * /v1/updates way.  header/header_ctx: the request's headers by lower-case
 * name, valid during this call.  Success is 200, as providers expect; a
 * webhook with nothing to track is answered with the adapter's
 * adapter_ignored_reply() when it has one (Rappi's PING).  replay_window_ms:
 * the webhook-replay-window setting, for adapters whose signature covers a
 * time of sending.  credential_header: the webhook's configured header for
 * its credential, or NULL (the adapter's own).
 */
bool ingest_finish_webhook(ingest_t *in, const adapter_ops_t *adapter, const unsigned char *secret,
			   size_t secret_len, const char *(*header)(void *, const char *),
			   void *header_ctx, int64_t now_ms, int64_t replay_window_ms,
			   const char *credential_header);

/* Counts the answered request (status as written) in the metrics. */
void ingest_account(const ingest_t *in, metrics_t *m, unsigned status);

/* Settles the answer as an error before anything was sent to Redis. */
void ingest_fail(ingest_t *in, unsigned status, const char *code, const char *message);

/* The answer; valid once ingest_finish returned true or ready() was called. */
void ingest_response(const ingest_t *in, unsigned *status, const char **body, size_t *len);

/* Cancels what is in flight (the connection closed) and frees in. */
void ingest_free(ingest_t *in);

#endif
