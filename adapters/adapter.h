/*
 * adapter.h - the interface every provider adapter implements: verify the
 * raw webhook request, then parse its body into canonical updates.
 *
 * Adapters are pure functions of their input (no I/O, no globals), one file
 * per provider, found by name through the registry.  The providers
 * themselves arrive with the adapters issue; the gateway's ingest path
 * (proto validation, the Redis script) is what they will feed.
 */
#ifndef TRACKGATE_ADAPTER_H
#define TRACKGATE_ADAPTER_H

#include <stddef.h>

#include "proto.h"

typedef struct adapter_request {
	const char *body;
	size_t body_len;
	/* Header lookup by lower-case name; NULL when absent. */
	const char *(*header)(void *ctx, const char *name);
	void *header_ctx;
	const char *secret; /* the provider's configured secret */
	size_t secret_len;
	int64_t now_ms;     /* receive time, for providers that send none */
} adapter_request_t;

typedef struct adapter_ops {
	const char *name; /* the {provider} of POST /v1/webhooks/{provider} */
	/* 0 when the request is authentic; negative with err filled otherwise. */
	int (*verify)(const adapter_request_t *req, proto_error_t *err);
	/* Fills up to max updates; returns how many, or negative with err filled. */
	int (*parse)(const adapter_request_t *req, proto_update_t *out, int max, proto_error_t *err);
} adapter_ops_t;

/* The adapter called name, or NULL. */
const adapter_ops_t *adapter_find(const char *name);

/* Every registered adapter, NULL-terminated. */
const adapter_ops_t *const *adapter_all(void);

#endif
