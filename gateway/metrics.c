#include "metrics.h"

#include <stdarg.h>
#include <stdbool.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "listener.h"

static const double metrics_bounds[METRICS_BUCKETS] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 60000,
};

static const unsigned metrics_statuses[METRICS_STATUSES] = {
    200, 202, 400, 401, 404, 405, 411, 413, 415, 429, 503, 0 /* any other */
};

static const char *const metrics_refusal_names[REFUSE__COUNT] = {
    "accept_limit", "overloaded", "max_per_client", "stopping",	 "not_found",
    "order_id",	    "cursor",	  "client_message", "token",	 "token_order",
    "origin",	    "rate",	  "query",	    "pipelined",
};

static const char *const metrics_resume_names[RESUME__COUNT] = {
    "replayed",
    "nothing_missed",
    "reset",
};

static const char *const metrics_result_names[RESULT__COUNT] = {
    "applied", "stale", "duplicate", "withheld", "invalid", "unavailable",
};

void metrics_observe(metrics_hist_t *h, double ms)
{
	if (ms < 0)
		ms = 0;
	for (int i = 0; i < METRICS_BUCKETS; i++)
		if (ms <= metrics_bounds[i])
			h->bucket[i]++;
	h->count++;
	h->sum += ms;
}

void metrics_request(metrics_t *m, unsigned provider, unsigned status,
		     const unsigned results[RESULT__COUNT], double latency_ms)
{
	unsigned s = 0;

	if (provider >= METRICS_PROVIDERS)
		return;
	while (metrics_statuses[s] && metrics_statuses[s] != status)
		s++;
	m->requests[provider][s]++;
	for (int r = 0; r < RESULT__COUNT; r++)
		m->updates[provider][r] += results[r];
	if (latency_ms >= 0) /* < 0: refused before the body, nothing was timed */
		metrics_observe(&m->ingest_latency, latency_ms);
}

const char *metrics_provider_name(unsigned provider)
{
	const adapter_ops_t *const *all = adapter_all();

	if (provider == 0)
		return "canonical";
	for (unsigned i = 0; all[i]; i++)
		if (i + 1 == provider)
			return all[i]->name;
	return "unknown";
}

/* A growing text buffer; on OOM it stops growing and remembers it. */
typedef struct metrics_buf {
	char *p;
	size_t len, cap;
	bool oom;
} metrics_buf_t;

static void metrics_printf(metrics_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void metrics_printf(metrics_buf_t *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap * 2 + (size_t)n;
		char *p = realloc(b->p, cap);

		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

static void metrics_head(metrics_buf_t *b, const char *name, const char *type, const char *help)
{
	metrics_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics_hist_render(metrics_buf_t *b, const char *name, const char *help,
				const metrics_hist_t *h)
{
	metrics_head(b, name, "histogram", help);
	for (int i = 0; i < METRICS_BUCKETS; i++)
		metrics_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, metrics_bounds[i],
			       (unsigned long long)h->bucket[i]);
	metrics_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.3f\n%s_count %llu\n", name,
		       (unsigned long long)h->count, name, h->sum, name,
		       (unsigned long long)h->count);
}

char *metrics_render(const metrics_view_t *v, size_t *len)
{
	const metrics_t *m = v->m;
	const broker_stats_t *bs = v->broker;
	const hub_stats_t *hs = &v->hub->stats;
	metrics_buf_t b = {.cap = 16384};
	unsigned ws = v->hub->n_watchers, subs = 0;
	const hub_order_t *o, *tmp;

	b.p = malloc(b.cap);
	if (!b.p)
		return NULL;
	HASH_ITER(hh, v->hub->orders, o, tmp)
	subs += o->sub == HUB_SUB_ACTIVE;

	{
		/* glibc's view of the heap: what is allocated, and what is free but kept. */
		struct mallinfo2 mi = mallinfo2();

		metrics_head(&b, "trackgate_heap_bytes", "gauge",
			     "Heap bytes by state (glibc malloc: in use, or free but kept).");
		metrics_printf(&b, "trackgate_heap_bytes{state=\"in_use\"} %zu\n",
			       mi.uordblks + mi.hblkhd);
		metrics_printf(&b, "trackgate_heap_bytes{state=\"free\"} %zu\n", mi.fordblks);
	}
	metrics_head(&b, "trackgate_connections", "gauge", "Open sockets by kind.");
	metrics_printf(&b, "trackgate_connections{state=\"websocket\"} %u\n", ws);
	metrics_printf(&b, "trackgate_connections{state=\"http\"} %u\n",
		       v->n_conns > ws ? v->n_conns - ws : 0);
	{
		const listener_stats_t *p = &v->pending;

		metrics_printf(&b, "trackgate_connections{state=\"pending\"} %u\n", p->pending);
		metrics_head(
		    &b, "trackgate_pending_closed_total", "counter",
		    "Connections closed before they sent a whole request head, by reason.");
		metrics_printf(
		    &b, "trackgate_pending_closed_total{reason=\"first_byte_timeout\"} %llu\n",
		    (unsigned long long)p->first_byte_timeouts);
		metrics_printf(&b, "trackgate_pending_closed_total{reason=\"head_timeout\"} %llu\n",
			       (unsigned long long)p->head_timeouts);
		metrics_printf(&b,
			       "trackgate_pending_closed_total{reason=\"max_pending_per_client\"} "
			       "%llu\n",
			       (unsigned long long)p->refused_per_client);
		metrics_printf(&b, "trackgate_pending_closed_total{reason=\"adopt_failed\"} %llu\n",
			       (unsigned long long)p->adopt_failed);
	}
	metrics_head(&b, "trackgate_watched_orders", "gauge",
		     "Orders with watchers in this process.");
	metrics_printf(&b, "trackgate_watched_orders %u\n", v->hub->n_orders);
	metrics_head(&b, "trackgate_redis_subscriptions", "gauge",
		     "Active SUBSCRIBEs (one per order).");
	metrics_printf(&b, "trackgate_redis_subscriptions %u\n", subs);
	metrics_head(&b, "trackgate_redis_up", "gauge", "1 while both Redis connections are up.");
	metrics_printf(&b, "trackgate_redis_up %d\n", v->redis_up ? 1 : 0);
	metrics_head(&b, "trackgate_redis_reconnects_total", "counter",
		     "Redis connections re-established after a loss.");
	metrics_printf(&b, "trackgate_redis_reconnects_total %llu\n",
		       (unsigned long long)bs->reconnects);
	metrics_head(&b, "trackgate_redis_bad_replies_total", "counter",
		     "Redis replies of an unexpected shape (logged and handled).");
	metrics_printf(&b, "trackgate_redis_bad_replies_total %llu\n",
		       (unsigned long long)bs->bad_replies);

	metrics_head(&b, "trackgate_frames_in_total", "counter",
		     "Update frames received from Redis.");
	metrics_printf(&b, "trackgate_frames_in_total %llu\n", (unsigned long long)hs->frames_in);
	metrics_head(&b, "trackgate_frames_queued_total", "counter",
		     "Frames queued on watchers (snapshots, replays, updates).");
	metrics_printf(&b, "trackgate_frames_queued_total %llu\n",
		       (unsigned long long)hs->frames_out);
	metrics_head(&b, "trackgate_frames_out_total", "counter", "Frames written to websockets.");
	metrics_printf(&b, "trackgate_frames_out_total %llu\n",
		       (unsigned long long)m->frames_written);
	metrics_head(&b, "trackgate_frames_coalesced_total", "counter",
		     "Queued location frames replaced by a newer one for a watcher behind.");
	metrics_printf(&b, "trackgate_frames_coalesced_total %llu\n",
		       (unsigned long long)hs->coalesced);
	metrics_head(&b, "trackgate_pong_timeouts_total", "counter",
		     "Websockets hung up on because no pong came within pong-timeout.");
	metrics_printf(&b, "trackgate_pong_timeouts_total %llu\n",
		       (unsigned long long)m->pong_timeouts);
	metrics_head(&b, "trackgate_frames_dropped_total", "counter",
		     "Queued frames discarded when a watcher was closed.");
	metrics_printf(&b, "trackgate_frames_dropped_total %llu\n",
		       (unsigned long long)m->frames_dropped);
	metrics_head(&b, "trackgate_slow_closes_total", "counter",
		     "Watchers closed with 4408 (behind past outq-limit or slow-timeout).");
	metrics_printf(&b, "trackgate_slow_closes_total %llu\n", (unsigned long long)hs->dropped);

	metrics_head(&b, "trackgate_refused_total", "counter", "Connections refused, by reason.");
	for (int r = 0; r < REFUSE__COUNT; r++)
		metrics_printf(&b, "trackgate_refused_total{reason=\"%s\"} %llu\n",
			       metrics_refusal_names[r], (unsigned long long)m->refused[r]);

	metrics_head(&b, "trackgate_resumes_total", "counter",
		     "Replays from an order's log (a resume with since, or a resync after a Redis "
		     "outage), by how they ended.");
	for (int r = 0; r < RESUME__COUNT; r++)
		metrics_printf(&b, "trackgate_resumes_total{result=\"%s\"} %llu\n",
			       metrics_resume_names[r], (unsigned long long)m->resumes[r]);

	metrics_head(
	    &b, "trackgate_ingest_requests_total", "counter",
	    "POST /v1/updates and /v1/webhooks/{provider} answers, by provider and status.");
	for (unsigned p = 0; p < METRICS_PROVIDERS; p++) {
		for (int s = 0; s < METRICS_STATUSES; s++) {
			char status[16] = "other";

			if (!m->requests[p][s])
				continue;
			if (metrics_statuses[s])
				snprintf(status, sizeof(status), "%u", metrics_statuses[s]);
			metrics_printf(&b,
				       "trackgate_ingest_requests_total{provider=\"%s\","
				       "status=\"%s\"} %llu\n",
				       metrics_provider_name(p), status,
				       (unsigned long long)m->requests[p][s]);
		}
	}
	metrics_head(&b, "trackgate_ingest_updates_total", "counter",
		     "Updates ingested, by provider and result.");
	for (unsigned p = 0; p < METRICS_PROVIDERS; p++)
		for (int r = 0; r < RESULT__COUNT; r++)
			if (m->updates[p][r] || p == 0)
				metrics_printf(&b,
					       "trackgate_ingest_updates_total{provider=\"%s\","
					       "result=\"%s\"} %llu\n",
					       metrics_provider_name(p), metrics_result_names[r],
					       (unsigned long long)m->updates[p][r]);

	metrics_hist_render(&b, "trackgate_ingest_latency_ms",
			    "Ingest request complete to answer ready, in ms.", &m->ingest_latency);
	metrics_hist_render(&b, "trackgate_update_age_ms",
			    "Update ts to its frame written to a websocket, in ms.",
			    &m->update_age);
	metrics_hist_render(
	    &b, "trackgate_loop_busy_ms",
	    "Work of one event-loop iteration, its wait for events excluded, in ms: "
	    "how long any connection's next event may wait behind it.",
	    &m->loop_busy);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}
