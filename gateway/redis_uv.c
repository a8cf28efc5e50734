#include "redis_uv.h"

#include <stdlib.h>

typedef struct redis_uv {
	redisAsyncContext *ac; /* NULL once hiredis has let go of us */
	uv_poll_t poll;
	int events; /* UV_READABLE | UV_WRITABLE wanted by hiredis */
	int active; /* the events the poll handle was last started with */
} redis_uv_t;

static void redis_uv_poll_cb(uv_poll_t *h, int status, int events)
{
	redis_uv_t *r = h->data;

	/*
	 * On an error libuv has stopped the handle: let hiredis find the error
	 * itself by reading and writing, which ends in its disconnect path.
	 */
	if (status < 0)
		events = r->events | UV_READABLE;
	if (r->ac && (events & UV_READABLE))
		redisAsyncHandleRead(r->ac);
	if (r->ac && (events & UV_WRITABLE))
		redisAsyncHandleWrite(r->ac);
}

/*
 * hiredis asks for reads again after every read.  uv_poll_start() always
 * stops the handle first (epoll DEL, then ADD): two system calls per Redis
 * message when nothing changed, so only a change reaches libuv.
 */
static void redis_uv_update(redis_uv_t *r)
{
	if (r->events == r->active && uv_is_active((uv_handle_t *)&r->poll) == !!r->events)
		return;
	if (r->events)
		uv_poll_start(&r->poll, r->events, redis_uv_poll_cb);
	else
		uv_poll_stop(&r->poll);
	r->active = r->events;
}

static void redis_uv_add_read(void *data)
{
	redis_uv_t *r = data;

	r->events |= UV_READABLE;
	redis_uv_update(r);
}

static void redis_uv_del_read(void *data)
{
	redis_uv_t *r = data;

	r->events &= ~UV_READABLE;
	redis_uv_update(r);
}

static void redis_uv_add_write(void *data)
{
	redis_uv_t *r = data;

	r->events |= UV_WRITABLE;
	redis_uv_update(r);
}

static void redis_uv_del_write(void *data)
{
	redis_uv_t *r = data;

	r->events &= ~UV_WRITABLE;
	redis_uv_update(r);
}

static void redis_uv_closed(uv_handle_t *h)
{
	free(h->data);
}

/* hiredis is done with the context: the handle memory goes in its close callback. */
static void redis_uv_cleanup(void *data)
{
	redis_uv_t *r = data;

	r->ac = NULL;
	uv_close((uv_handle_t *)&r->poll, redis_uv_closed);
}

int redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
	redis_uv_t *r;

	if (ac->ev.data)
		return REDIS_ERR;
	r = calloc(1, sizeof(*r));
	if (!r)
		return REDIS_ERR;
	if (uv_poll_init(loop, &r->poll, ac->c.fd) != 0) {
		free(r);
		return REDIS_ERR;
	}
	r->ac = ac;
	r->poll.data = r;
	ac->ev.data = r;
	ac->ev.addRead = redis_uv_add_read;
	ac->ev.delRead = redis_uv_del_read;
	ac->ev.addWrite = redis_uv_add_write;
	ac->ev.delWrite = redis_uv_del_write;
	ac->ev.cleanup = redis_uv_cleanup;
	return REDIS_OK;
}
