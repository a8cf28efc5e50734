/*
 * redis_uv.h - attaches a hiredis async context to a uv loop.
 *
 * Our own version of hiredis's adapters/libuv.h, because the one in Debian
 * 12's hiredis 0.14.1 drops poll errors: when libuv reports POLLERR (a peer
 * that died with data in flight, e.g. redis-server killed mid-command) it
 * stops the poll handle and calls back with status < 0, and that adapter
 * returns without telling hiredis.  The connection then hangs forever with
 * its replies pending.  Here an error is handed to hiredis as a read (and a
 * write), so the failing read()/write() disconnects the context and every
 * pending callback is answered.  (hiredis fixed its adapter the same way
 * after 1.0.)
 */
#ifndef TRACKGATE_REDIS_UV_H
#define TRACKGATE_REDIS_UV_H

#include <hiredis/async.h>
#include <uv.h>

/* REDIS_OK, or REDIS_ERR when ac already has an event library or on OOM. */
int redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop);

#endif
