/*
 * ratelimit.h - token buckets per client address, for websocket upgrades
 * and for ingest (POST /v1/updates, /v1/webhooks): each address refills at
 * `rate` per second up to `burst`.  Buckets that are full and idle are
 * swept now and then, so memory follows the active addresses only.
 */
#ifndef TRACKGATE_RATELIMIT_H
#define TRACKGATE_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef enum ratelimit_kind {
	RATELIMIT_UPGRADE = 0,
	RATELIMIT_INGEST,
	RATELIMIT__COUNT
} ratelimit_kind_t;

struct ratelimit_bucket;

typedef struct ratelimit {
	struct ratelimit_bucket *table; /* uthash by address; owns the buckets */
	double rate[RATELIMIT__COUNT];
	double burst[RATELIMIT__COUNT];
	unsigned n;
} ratelimit_t;

void ratelimit_init(ratelimit_t *rl, unsigned upgrade_rate, unsigned upgrade_burst,
		    unsigned ingest_rate, unsigned ingest_burst);
void ratelimit_free(ratelimit_t *rl);

/*
 * Takes one token of kind for addr at now_ms.  False when the bucket is
 * empty; *retry_s then says when one will be there (whole seconds, >= 1).
 */
bool ratelimit_take(ratelimit_t *rl, const char *addr, ratelimit_kind_t kind, uint64_t now_ms,
		    unsigned *retry_s);

/* Drops buckets that have refilled completely: called every few seconds. */
void ratelimit_sweep(ratelimit_t *rl, uint64_t now_ms);

#endif
