/*
 * script.h - the Redis scripts (apply_update.lua, resume.lua, poll_lease.lua),
 * embedded at build time, and the key names they work on.
 */
#ifndef TRACKGATE_PROTO_SCRIPT_H
#define TRACKGATE_PROTO_SCRIPT_H

#include <stddef.h>

#include "proto.h"

/* The scripts' sources, NUL-terminated; _len excludes the NUL. */
extern const char proto_script_apply_update[];
extern const size_t proto_script_apply_update_len;
/* resume.lua: the log entries after a cursor, or the state when they are gone. */
extern const char proto_script_resume[];
extern const size_t proto_script_resume_len;
/* poll_lease.lua: acquire, renew or release the lease of the node that polls an order. */
extern const char proto_script_poll_lease[];
extern const size_t proto_script_poll_lease_len;

/* poll_budget.lua: a provider's request slots, shared by the group. */
extern const char proto_script_poll_budget[];
extern const size_t proto_script_poll_budget_len;

/* "trk:{" + id + "}" + ":poll_lease" is the longest key: 5 + 128 + 1 + 11 + NUL. */
#define PROTO_KEY_MAX (PROTO_ORDER_ID_MAX + 18)

/* The Redis names of one order.  order_id must be valid (proto_order_id_valid). */
typedef struct proto_keys {
	char channel[PROTO_KEY_MAX]; /* trk:{ID}        pub/sub, payload = update frame */
	char state[PROTO_KEY_MAX];   /* trk:{ID}:state  hash {state, cursor} */
	char log[PROTO_KEY_MAX];     /* trk:{ID}:log    stream of update frames */
	char seen[PROTO_KEY_MAX];    /* trk:{ID}:seen   set of applied event ids */
} proto_keys_t;

void proto_keys_for(const char *order_id, proto_keys_t *out);

/*
 * The Redis names of one order's poll mode, in the same hash tag as its
 * proto_keys_t (one Redis Cluster slot holds them all).  order_id must be valid.
 */
typedef struct proto_poll_keys {
	char source[PROTO_KEY_MAX]; /* trk:{ID}:source      string: its source (JSON) */
	char lease[PROTO_KEY_MAX];  /* trk:{ID}:poll_lease  string: the polling node's id, PX */
} proto_poll_keys_t;

void proto_poll_keys_for(const char *order_id, proto_poll_keys_t *out);

/*
 * The order id inside a channel name "trk:{ID}", or NULL when the name is
 * not one of ours.  *len receives the id's length.  No copy is made.
 */
const char *proto_channel_order_id(const char *channel, size_t channel_len, size_t *len);

#endif
