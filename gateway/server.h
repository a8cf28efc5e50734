/*
 * server.h - the lws protocol of trackgated and the hub's hooks.
 */
#ifndef TRACKGATE_SERVER_H
#define TRACKGATE_SERVER_H

#include "gateway.h"
#include "hub.h"

#include <libwebsockets.h>

/* The vhost's protocol list: one protocol for HTTP and websockets, then the terminator. */
extern const struct lws_protocols server_protocols[];
extern const hub_ops_t server_hub_ops;

/* Closes every watcher asynchronously with close_code and reason (static text). */
void server_close_watchers(gateway_t *g, int close_code, const char *reason);
/* Pings websockets whose ping is due and hangs up those whose pong is late (the tick). */
void server_keepalive(gateway_t *g, uint64_t now_ms);
/* Runs at the end of each loop iteration (a uv_check): the work deferred to it. */
void server_after_io(gateway_t *g);
/* Request bodies complete but not yet handed to ingest (the drain waits for them). */
bool server_has_queued(void);

#endif
