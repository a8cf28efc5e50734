#include "metrics.h"

#include <dirent.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "adapter.h"
#include "listener.h"

#ifndef TRACKGATE_VERSION
#define TRACKGATE_VERSION "dev"
#endif

/* The buckets' bounds in milliseconds (observations come in ms); rendered in seconds. */
static const double metrics_bounds[METRICS_BUCKETS] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 60000,
};

_Static_assert(sizeof(metrics_sample_t) % sizeof(uint64_t) == 0,
	       "a sample is uint64_t words: nothing else may go in it");

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
	h->sum_ns += (uint64_t)(ms * 1e6);
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

unsigned metrics_provider_index(const char *name)
{
	const adapter_ops_t *const *all = adapter_all();

	for (unsigned i = 0; name && all[i] && i + 1 < METRICS_PROVIDERS; i++)
		if (!strcmp(all[i]->name, name))
			return i + 1;
	return 0;
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
		metrics_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, metrics_bounds[i] / 1000,
			       (unsigned long long)h->bucket[i]);
	metrics_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9f\n%s_count %llu\n", name,
		       (unsigned long long)h->count, name, (double)h->sum_ns / 1e9, name,
		       (unsigned long long)h->count);
}

void metrics_sample(metrics_sample_t *out, const metrics_view_t *v)
{
	const hub_stats_t *hs = &v->hub->stats;
	const hub_order_t *o, *tmp;
	unsigned ws = v->hub->n_watchers;
	uint64_t subs = 0;

	memset(out, 0, sizeof(*out));
	out->m = *v->m;
	HASH_ITER(hh, v->hub->orders, o, tmp)
	subs += o->sub == HUB_SUB_ACTIVE;
	out->c = (metrics_counters_t){
	    .frames_in = hs->frames_in,
	    .frames_queued = hs->frames_out,
	    .frames_coalesced = hs->coalesced,
	    .slow_closes = hs->dropped,
	    .redis_reconnects = v->broker->reconnects,
	    .redis_bad_replies = v->broker->bad_replies,
	    .redis_subscriber_stalls = v->broker->subscriber_stalls,
	    .first_byte_timeouts = v->pending.first_byte_timeouts,
	    .head_timeouts = v->pending.head_timeouts,
	    .refused_per_client = v->pending.refused_per_client,
	    .adopt_failed = v->pending.adopt_failed,
	};
	{
		/* glibc's view of the heap: what is allocated, and what is free but kept. */
		struct mallinfo2 mi = mallinfo2();

		out->g = (metrics_gauges_t){
		    .processes = 1,
		    .websockets = ws,
		    .http_conns = v->n_conns > ws ? v->n_conns - ws : 0,
		    .pending = v->pending.pending,
		    .watched_orders = v->hub->n_orders,
		    .subscriptions = subs,
		    .redis_up = v->redis_up ? 1 : 0,
		    .heap_in_use = mi.uordblks + mi.hblkhd,
		    .heap_free = mi.fordblks,
		};
	}
}

void metrics_sample_add(metrics_sample_t *dst, const metrics_sample_t *src)
{
	uint64_t *d = (uint64_t *)dst;
	const uint64_t *s = (const uint64_t *)src;

	for (size_t i = 0; i < METRICS_SAMPLE_WORDS; i++)
		d[i] += s[i];
}

/* The fields of /proc/PID/stat after the command's closing parenthesis; 0 or -1. */
static int metrics_proc_stat(int pid, unsigned long long *utime, unsigned long long *stime,
			     unsigned long long *start, long long *rss_pages)
{
	char path[64], buf[1024], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (!(f = fopen(path, "re")))
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (!(p = strrchr(buf, ')')))
		return -1;
	/* state is field 3; utime 14, stime 15, starttime 22, rss 24. */
	if (sscanf(p + 2,
		   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
		   "%*d %llu %*u %lld",
		   utime, stime, start, rss_pages) != 4)
		return -1;
	return 0;
}

static unsigned long long metrics_boot_time_s(void)
{
	char line[256];
	unsigned long long btime = 0;
	FILE *f = fopen("/proc/stat", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %llu", &btime) == 1)
			break;
	fclose(f);
	return btime;
}

int metrics_process_add(metrics_process_t *p, int pid, int with_start)
{
	unsigned long long utime, stime, start;
	long long rss;
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	char path[64];
	DIR *d;
	struct dirent *e;

	if (metrics_proc_stat(pid, &utime, &stime, &start, &rss) != 0 || tck <= 0)
		return -1;
	p->cpu_ns += (utime + stime) * (1000000000ull / (unsigned long long)tck);
	p->resident_bytes += rss > 0 ? (uint64_t)rss * (uint64_t)page : 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	if ((d = opendir(path))) {
		while ((e = readdir(d)))
			p->open_fds += e->d_name[0] != '.';
		closedir(d);
		if (pid == getpid())
			p->open_fds--; /* the descriptor that read the directory */
	}
	if (with_start) {
		struct rlimit rl;

		p->start_time_s = (double)metrics_boot_time_s() + (double)start / (double)tck;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
			p->max_fds = rl.rlim_cur == RLIM_INFINITY ? 0 : (uint64_t)rl.rlim_cur;
	}
	return 0;
}

static void metrics_gauge(metrics_buf_t *b, const char *name, const char *help, uint64_t value)
{
	metrics_head(b, name, "gauge", help);
	metrics_printf(b, "%s %llu\n", name, (unsigned long long)value);
}

static void metrics_counter(metrics_buf_t *b, const char *name, const char *help, uint64_t value)
{
	metrics_head(b, name, "counter", help);
	metrics_printf(b, "%s %llu\n", name, (unsigned long long)value);
}

static void metrics_render_process(metrics_buf_t *b, const metrics_process_t *p)
{
	metrics_head(b, "process_cpu_seconds_total", "counter",
		     "Total user and system CPU time spent in seconds.");
	metrics_printf(b, "process_cpu_seconds_total %.2f\n", (double)p->cpu_ns / 1e9);
	metrics_gauge(b, "process_resident_memory_bytes", "Resident memory size in bytes.",
		      p->resident_bytes);
	metrics_gauge(b, "process_open_fds", "Number of open file descriptors.", p->open_fds);
	metrics_gauge(b, "process_max_fds", "Maximum number of open file descriptors.", p->max_fds);
	metrics_head(b, "process_start_time_seconds", "gauge",
		     "Start time of the process since unix epoch in seconds.");
	metrics_printf(b, "process_start_time_seconds %.2f\n", p->start_time_s);
}

static const char *const metrics_poll_result_names[POLL_RESULT__COUNT] = {
    "ok", "unauthorized", "rate_limited", "http_error", "timeout", "connect_error", "malformed"};
static const char *const metrics_poll_update_names[POLL_UPDATE__COUNT] = {
    "applied", "stale", "duplicate", "withheld", "empty", "unavailable"};
static const char *const metrics_poll_state_names[POLL_STATE__COUNT] = {"idle", "waiting",
									"polling", "done"};

const char *metrics_poll_result_name(metrics_poll_result_t r)
{
	return r < POLL_RESULT__COUNT ? metrics_poll_result_names[r] : "?";
}

/*
 * One counter family by provider and result: a row per result of each
 * provider whose shown[] is set, its count at counts[provider * row_words + result].
 */
static void metrics_render_by_provider(metrics_buf_t *b, const char *name, const char *help,
				       const bool shown[METRICS_PROVIDERS],
				       const char *const *results, int n_results,
				       const uint64_t *counts, size_t row_words)
{
	metrics_head(b, name, "counter", help);
	for (unsigned pr = 1; pr < METRICS_PROVIDERS; pr++)
		for (int r = 0; r < n_results && shown[pr]; r++)
			metrics_printf(b, "%s{provider=\"%s\",result=\"%s\"} %llu\n", name,
				       metrics_provider_name(pr), results[r],
				       (unsigned long long)counts[pr * row_words + (size_t)r]);
}

/* Poll mode's families: a provider's rows once it was polled at all. */
static void metrics_render_poll(metrics_buf_t *b, const metrics_sample_t *s)
{
	static const char *const token_results[2] = {"ok", "failed"};
	const metrics_t *m = &s->m;
	bool polled[METRICS_PROVIDERS] = {false}, tokens[METRICS_PROVIDERS] = {false};

	for (unsigned pr = 0; pr < METRICS_PROVIDERS; pr++) {
		tokens[pr] = m->poll_tokens[pr][0] || m->poll_tokens[pr][1];
		polled[pr] = tokens[pr];
		for (int r = 0; r < POLL_RESULT__COUNT; r++)
			polled[pr] = polled[pr] || m->poll_requests[pr][r];
	}
	metrics_render_by_provider(
	    b, "trackgate_poll_requests_total",
	    "Requests to providers' APIs in poll mode, by provider and result.", polled,
	    metrics_poll_result_names, POLL_RESULT__COUNT, &m->poll_requests[0][0],
	    POLL_RESULT__COUNT);
	metrics_render_by_provider(
	    b, "trackgate_poll_updates_total",
	    "Polled answers, by provider and what the Redis script made of them.", polled,
	    metrics_poll_update_names, POLL_UPDATE__COUNT, &m->poll_updates[0][0],
	    POLL_UPDATE__COUNT);
	metrics_render_by_provider(b, "trackgate_poll_token_requests_total",
				   "OAuth token requests of poll mode, by provider and result.",
				   tokens, token_results, 2, &m->poll_tokens[0][0], 2);
	metrics_head(b, "trackgate_poll_orders", "gauge",
		     "Watched orders by poll state (idle: no source or provider not polled; "
		     "waiting: another node polls; polling: this process polls; done: terminal).");
	for (int st = 0; st < POLL_STATE__COUNT; st++)
		metrics_printf(b, "trackgate_poll_orders{state=\"%s\"} %llu\n",
			       metrics_poll_state_names[st],
			       (unsigned long long)s->g.poll_orders[st]);
	metrics_counter(b, "trackgate_poll_leases_acquired_total",
			"Poll leases this node acquired (first polls and takeovers).",
			m->poll_leases);
}

char *metrics_render(const metrics_sample_t *s, const metrics_process_t *p, size_t *len)
{
	const metrics_t *m = &s->m;
	const metrics_counters_t *c = &s->c;
	const metrics_gauges_t *g = &s->g;
	metrics_buf_t b = {.cap = 16384};

	b.p = malloc(b.cap);
	if (!b.p)
		return NULL;
	metrics_head(&b, "trackgate_build_info", "gauge",
		     "Always 1; the version of trackgated in its label.");
	metrics_printf(&b, "trackgate_build_info{version=\"%s\"} 1\n", TRACKGATE_VERSION);
	metrics_render_process(&b, p);
	metrics_gauge(&b, "trackgate_workers",
		      "Serving processes this scrape sums up (1 without --workers).", g->processes);
	metrics_head(&b, "trackgate_heap_bytes", "gauge",
		     "Heap bytes by state (glibc malloc: in use, or free but kept).");
	metrics_printf(&b, "trackgate_heap_bytes{state=\"in_use\"} %llu\n",
		       (unsigned long long)g->heap_in_use);
	metrics_printf(&b, "trackgate_heap_bytes{state=\"free\"} %llu\n",
		       (unsigned long long)g->heap_free);
	metrics_head(&b, "trackgate_connections", "gauge", "Open sockets by kind.");
	metrics_printf(&b, "trackgate_connections{state=\"websocket\"} %llu\n",
		       (unsigned long long)g->websockets);
	metrics_printf(&b, "trackgate_connections{state=\"http\"} %llu\n",
		       (unsigned long long)g->http_conns);
	metrics_printf(&b, "trackgate_connections{state=\"pending\"} %llu\n",
		       (unsigned long long)g->pending);
	metrics_head(&b, "trackgate_pending_closed_total", "counter",
		     "Connections closed before they sent a whole request head, by reason.");
	metrics_printf(&b, "trackgate_pending_closed_total{reason=\"first_byte_timeout\"} %llu\n",
		       (unsigned long long)c->first_byte_timeouts);
	metrics_printf(&b, "trackgate_pending_closed_total{reason=\"head_timeout\"} %llu\n",
		       (unsigned long long)c->head_timeouts);
	metrics_printf(&b,
		       "trackgate_pending_closed_total{reason=\"max_pending_per_client\"} %llu\n",
		       (unsigned long long)c->refused_per_client);
	metrics_printf(&b, "trackgate_pending_closed_total{reason=\"adopt_failed\"} %llu\n",
		       (unsigned long long)c->adopt_failed);
	metrics_gauge(&b, "trackgate_watched_orders", "Orders with watchers.", g->watched_orders);
	metrics_gauge(&b, "trackgate_redis_subscriptions", "Active SUBSCRIBEs (one per order).",
		      g->subscriptions);
	metrics_gauge(&b, "trackgate_redis_up",
		      "1 while both Redis connections are up (in every worker).",
		      g->processes && g->redis_up == g->processes);
	metrics_counter(&b, "trackgate_redis_reconnects_total",
			"Redis connections re-established after a loss.", c->redis_reconnects);
	metrics_counter(&b, "trackgate_redis_bad_replies_total",
			"Redis replies of an unexpected shape (logged and handled).",
			c->redis_bad_replies);
	metrics_counter(&b, "trackgate_redis_subscriber_stalls_total",
			"Subscriber connections reconnected because their heartbeat did not come "
			"back.",
			c->redis_subscriber_stalls);
	metrics_counter(&b, "trackgate_frames_in_total", "Update frames received from Redis.",
			c->frames_in);
	metrics_counter(&b, "trackgate_frames_queued_total",
			"Frames queued on watchers (snapshots, replays, updates).",
			c->frames_queued);
	metrics_counter(&b, "trackgate_frames_out_total", "Frames written to websockets.",
			m->frames_written);
	metrics_counter(&b, "trackgate_frames_coalesced_total",
			"Queued location frames replaced by a newer one for a watcher behind.",
			c->frames_coalesced);
	metrics_counter(&b, "trackgate_pong_timeouts_total",
			"Websockets hung up on because no pong came within pong-timeout.",
			m->pong_timeouts);
	metrics_counter(&b, "trackgate_frames_dropped_total",
			"Queued frames discarded when a watcher was closed.", m->frames_dropped);
	metrics_counter(&b, "trackgate_slow_closes_total",
			"Watchers closed with 4408 (behind past outq-limit or slow-timeout).",
			c->slow_closes);

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
	for (unsigned pr = 0; pr < METRICS_PROVIDERS; pr++) {
		for (int st = 0; st < METRICS_STATUSES; st++) {
			char status[16] = "other";

			if (!m->requests[pr][st])
				continue;
			if (metrics_statuses[st])
				snprintf(status, sizeof(status), "%u", metrics_statuses[st]);
			metrics_printf(&b,
				       "trackgate_ingest_requests_total{provider=\"%s\","
				       "status=\"%s\"} %llu\n",
				       metrics_provider_name(pr), status,
				       (unsigned long long)m->requests[pr][st]);
		}
	}
	metrics_head(&b, "trackgate_ingest_updates_total", "counter",
		     "Updates ingested, by provider and result.");
	for (unsigned pr = 0; pr < METRICS_PROVIDERS; pr++)
		for (int r = 0; r < RESULT__COUNT; r++)
			if (m->updates[pr][r] || pr == 0)
				metrics_printf(&b,
					       "trackgate_ingest_updates_total{provider=\"%s\","
					       "result=\"%s\"} %llu\n",
					       metrics_provider_name(pr), metrics_result_names[r],
					       (unsigned long long)m->updates[pr][r]);

	metrics_render_poll(&b, s);

	metrics_hist_render(&b, "trackgate_ingest_latency_seconds",
			    "Ingest request complete to answer ready, in seconds.",
			    &m->ingest_latency);
	metrics_hist_render(&b, "trackgate_update_age_seconds",
			    "Update ts to its frame written to a websocket, in seconds.",
			    &m->update_age);
	metrics_hist_render(
	    &b, "trackgate_loop_busy_seconds",
	    "Work of one event-loop iteration, its wait for events excluded, in seconds: "
	    "how long any connection's next event may wait behind it.",
	    &m->loop_busy);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}
