/*
 * ws/expiry.c - a websocket opened with a token is closed 4401 when the
 * token expires.  Watchers wait in a wheel of WS_WHEEL one-second buckets;
 * the tick sweeps the buckets of the seconds since the last sweep: work in
 * proportion to the watchers expiring (plus those a whole wheel turn
 * later), not to all.
 */
#include "ws_private.h"

#include "auth.h"

void ws_wheel_add(ws_session_t *s, int64_t exp_s)
{
	ws_t *ws = s->ws;
	watcher_t *w = &s->w, **b = &ws->exp_wheel[exp_s % WS_WHEEL];

	if (ws->exp_swept_s && exp_s + AUTH_LEEWAY_S <= ws->exp_swept_s) {
		/* Its second was swept already: expire it now rather than a wheel turn later. */
		ws_close_async(s, 4401, "the tracking link has expired");
		return;
	}
	w->exp_s = exp_s;
	w->exp_prev = NULL;
	w->exp_next = *b;
	if (*b)
		(*b)->exp_prev = w;
	*b = w;
}

void ws_wheel_del(ws_session_t *s)
{
	watcher_t *w = &s->w;

	if (!w->exp_s)
		return;
	if (w->exp_prev)
		w->exp_prev->exp_next = w->exp_next;
	else
		s->ws->exp_wheel[w->exp_s % WS_WHEEL] = w->exp_next;
	if (w->exp_next)
		w->exp_next->exp_prev = w->exp_prev;
	w->exp_prev = w->exp_next = NULL;
	w->exp_s = 0;
}

void ws_expire_tokens(ws_t *ws, int64_t now_s)
{
	int64_t from = ws->exp_swept_s ? ws->exp_swept_s + 1 : now_s - AUTH_LEEWAY_S;

	if (now_s - from >= WS_WHEEL)
		from = now_s - WS_WHEEL + 1;
	for (int64_t t = from; t <= now_s; t++) {
		watcher_t *w = ws->exp_wheel[(t - AUTH_LEEWAY_S + WS_WHEEL * 4) % WS_WHEEL];

		while (w) {
			watcher_t *next = w->exp_next;

			if (w->exp_s + AUTH_LEEWAY_S <= now_s) {
				ws_wheel_del(WS_OF(w));
				outq_clear(&w->q);
				ws_close_async(WS_OF(w), 4401, "the tracking link has expired");
			}
			w = next;
		}
	}
	ws->exp_swept_s = now_s;
}
