#include "ratelimit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

typedef struct ratelimit_bucket {
	UT_hash_handle hh;
	double tokens[RATELIMIT__COUNT];
	uint64_t last_ms; /* when tokens were last brought up to date */
	char addr[48];
} ratelimit_bucket_t;

void ratelimit_init(ratelimit_t *rl, unsigned upgrade_rate, unsigned upgrade_burst,
		    unsigned ingest_rate, unsigned ingest_burst)
{
	memset(rl, 0, sizeof(*rl));
	rl->rate[RATELIMIT_UPGRADE] = upgrade_rate;
	rl->burst[RATELIMIT_UPGRADE] = upgrade_burst;
	rl->rate[RATELIMIT_INGEST] = ingest_rate;
	rl->burst[RATELIMIT_INGEST] = ingest_burst;
}

void ratelimit_free(ratelimit_t *rl)
{
	ratelimit_bucket_t *b, *tmp;

	HASH_ITER(hh, rl->table, b, tmp)
	{
		HASH_DEL(rl->table, b);
		free(b);
	}
	rl->n = 0;
}

static void ratelimit_refill(const ratelimit_t *rl, ratelimit_bucket_t *b, uint64_t now_ms)
{
	double dt = now_ms > b->last_ms ? (double)(now_ms - b->last_ms) / 1000.0 : 0;

	for (int k = 0; k < RATELIMIT__COUNT; k++) {
		b->tokens[k] += dt * rl->rate[k];
		if (b->tokens[k] > rl->burst[k])
			b->tokens[k] = rl->burst[k];
	}
	b->last_ms = now_ms;
}

bool ratelimit_take(ratelimit_t *rl, const char *addr, ratelimit_kind_t kind, uint64_t now_ms,
		    unsigned *retry_s)
{
	ratelimit_bucket_t *b = NULL;

	HASH_FIND_STR(rl->table, addr, b);
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b)
			return true; /* out of memory: do not refuse honest clients for it */
		snprintf(b->addr, sizeof(b->addr), "%s", addr);
		for (int k = 0; k < RATELIMIT__COUNT; k++)
			b->tokens[k] = rl->burst[k];
		b->last_ms = now_ms;
		HASH_ADD_STR(rl->table, addr, b);
		rl->n++;
	}
	ratelimit_refill(rl, b, now_ms);
	if (b->tokens[kind] >= 1.0) {
		b->tokens[kind] -= 1.0;
		return true;
	}
	*retry_s =
	    (unsigned)ceil((1.0 - b->tokens[kind]) / (rl->rate[kind] > 0 ? rl->rate[kind] : 1));
	if (*retry_s < 1)
		*retry_s = 1;
	return false;
}

void ratelimit_sweep(ratelimit_t *rl, uint64_t now_ms)
{
	ratelimit_bucket_t *b, *tmp;

	HASH_ITER(hh, rl->table, b, tmp)
	{
		bool full = true;

		ratelimit_refill(rl, b, now_ms);
		for (int k = 0; k < RATELIMIT__COUNT; k++)
			full &= b->tokens[k] >= rl->burst[k];
		if (full) {
			HASH_DEL(rl->table, b);
			free(b);
			rl->n--;
		}
	}
}
