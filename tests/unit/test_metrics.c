/*
 * Unit tests of gateway/metrics.c: the exposition a scrape gets from the
 * counters and a metrics_view_t, rendered without a gateway or a socket;
 * and of gateway/group.c: a worker group's sum of its slots and of the
 * totals its exited workers left.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "group.h"
#include "metrics.h"

typedef struct fixture {
	metrics_t m;
	hub_t hub;
	broker_stats_t bs;
	metrics_view_t v;
} fixture_t;

static int setup(void **state)
{
	fixture_t *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	hub_init(&f->hub, NULL, NULL, 64, 30000);
	f->v = (metrics_view_t){.m = &f->m, .hub = &f->hub, .broker = &f->bs};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture_t *f = *state;

	hub_destroy(&f->hub);
	free(f);
	return 0;
}

static char *render(fixture_t *f)
{
	size_t len = 0;
	metrics_sample_t s;
	metrics_process_t p = {.cpu_ns = 1500000000, .max_fds = 1024, .start_time_s = 1.7e9};
	char *text;

	metrics_sample(&s, &f->v);
	text = metrics_render(&s, &p, &len);

	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	return text;
}

/* The value of the sample line that starts with name (labels included), or -1. */
static double sample(const char *text, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, name, n) && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

static void counters_and_gauges_are_shown(void **state)
{
	fixture_t *f = *state;
	char *text;

	f->m.frames_written = 42;
	f->m.pong_timeouts = 3;
	f->m.refused[REFUSE_PIPELINED] = 2;
	f->bs.reconnects = 5;
	f->bs.subscriber_stalls = 2;
	f->v.redis_up = true;
	f->v.n_conns = 7; /* no watchers: all HTTP */
	f->v.pending = (listener_stats_t){.pending = 4, .first_byte_timeouts = 9};
	text = render(f);
	assert_true(sample(text, "trackgate_frames_out_total") == 42);
	assert_true(sample(text, "trackgate_pong_timeouts_total") == 3);
	assert_true(sample(text, "trackgate_refused_total{reason=\"pipelined\"}") == 2);
	assert_true(sample(text, "trackgate_redis_reconnects_total") == 5);
	assert_true(sample(text, "trackgate_redis_subscriber_stalls_total") == 2);
	assert_true(sample(text, "trackgate_redis_up") == 1);
	assert_true(sample(text, "trackgate_connections{state=\"http\"}") == 7);
	assert_true(sample(text, "trackgate_connections{state=\"websocket\"}") == 0);
	assert_true(sample(text, "trackgate_connections{state=\"pending\"}") == 4);
	assert_true(sample(text, "trackgate_pending_closed_total{reason=\"first_byte_timeout\"}") ==
		    9);
	assert_true(sample(text, "trackgate_watched_orders") == 0);
	free(text);
}

static void ingest_requests_count_by_provider_and_status(void **state)
{
	fixture_t *f = *state;
	static const unsigned results[RESULT__COUNT] = {[RESULT_APPLIED] = 2};
	char *text;

	metrics_request(&f->m, 0, 202, results, 1.5);
	metrics_request(&f->m, 0, 202, results, 0.5);
	metrics_request(&f->m, 0, 401, results, -1);
	text = render(f);
	assert_true(sample(text, "trackgate_ingest_requests_total{provider=\"canonical\","
				 "status=\"202\"}") == 2);
	assert_true(sample(text, "trackgate_ingest_requests_total{provider=\"canonical\","
				 "status=\"401\"}") == 1);
	free(text);
}

static void histograms_are_in_seconds(void **state)
{
	fixture_t *f = *state;
	char *text;

	metrics_observe(&f->m.loop_busy, 3);	/* 3 ms */
	metrics_observe(&f->m.loop_busy, 1500); /* 1.5 s */
	text = render(f);
	assert_true(sample(text, "trackgate_loop_busy_seconds_bucket{le=\"0.005\"}") == 1);
	assert_true(sample(text, "trackgate_loop_busy_seconds_bucket{le=\"2.5\"}") == 2);
	assert_true(sample(text, "trackgate_loop_busy_seconds_count") == 2);
	assert_float_equal(sample(text, "trackgate_loop_busy_seconds_sum"), 1.503, 1e-9);
	assert_null(strstr(text, "_ms"));
	free(text);
}

static void process_metrics_and_build_info_are_shown(void **state)
{
	fixture_t *f = *state;
	char *text = render(f);

	assert_true(sample(text, "process_cpu_seconds_total") == 1.5);
	assert_true(sample(text, "process_max_fds") == 1024);
	assert_true(sample(text, "process_start_time_seconds") == 1.7e9);
	assert_non_null(strstr(text, "\ntrackgate_build_info{version=\""));
	assert_true(sample(text, "trackgate_workers") == 1);
	free(text);
}

static void this_process_reads_its_own_proc_entry(void **state)
{
	metrics_process_t p = {0};

	(void)state;
	assert_int_equal(metrics_process_add(&p, (int)getpid(), 1), 0);
	assert_true(p.resident_bytes > 0);
	assert_true(p.open_fds >= 3); /* stdin, stdout, stderr */
	assert_true(p.max_fds >= p.open_fds);
	assert_true(p.start_time_s > 1e9);
	assert_int_equal(metrics_process_add(&p, 0x7fffffff, 0), -1);
}

/* A group's sum: the retired totals plus every slot, counters, histograms and gauges. */
static void a_group_sums_its_slots(void **state)
{
	group_t *g = group_create(2);
	metrics_sample_t s, sum;

	(void)state;
	assert_non_null(g);
	memset(&s, 0, sizeof(s));
	group_join(g, 0);
	group_own_metrics()->frames_written = 5;
	metrics_observe(&group_own_metrics()->ingest_latency, 2);
	s.g.processes = 1;
	s.g.websockets = 3;
	s.c.frames_in = 4;
	group_beat(true, &s);
	group_join(g, 1);
	group_own_metrics()->frames_written = 7;
	s.g.websockets = 10;
	s.c.frames_in = 1;
	group_beat(false, &s);
	group_sum(g, &sum);
	assert_int_equal(sum.m.frames_written, 12);
	assert_int_equal(sum.m.ingest_latency.count, 1);
	assert_int_equal(sum.m.ingest_latency.sum_ns, 2000000);
	assert_int_equal(sum.c.frames_in, 5);
	assert_int_equal(sum.g.websockets, 13);
	assert_int_equal(sum.g.processes, 2);
	assert_true(group_slot_ready(g, 0));
	assert_false(group_slot_ready(g, 1));
	assert_true(group_slot_heartbeat(g, 0) > 0);
	group_join(NULL, 0);
	group_destroy(g);
}

/* A worker that exits leaves its counters in the retired totals: the sum never goes down. */
static void an_exited_workers_counters_stay_in_the_sum(void **state)
{
	group_t *g = group_create(2);
	metrics_sample_t s, sum;

	(void)state;
	assert_non_null(g);
	memset(&s, 0, sizeof(s));
	group_join(g, 0);
	group_own_metrics()->requests[0][1] = 20;
	s.g.processes = 1;
	s.g.websockets = 3;
	s.c.redis_reconnects = 2;
	group_beat(true, &s);
	group_join(g, 1);
	group_own_metrics()->requests[0][1] = 3;
	group_beat(true, &s);

	group_retire(g, 0); /* slot 0's worker exited */
	group_sum(g, &sum);
	assert_int_equal(sum.m.requests[0][1], 23);
	assert_int_equal(sum.c.redis_reconnects, 4);
	assert_int_equal(sum.g.websockets, 3); /* only the live worker's gauges */
	assert_int_equal(sum.g.processes, 1);

	group_join(g, 0); /* its replacement starts from zero in the same slot */
	assert_int_equal(group_own_metrics()->requests[0][1], 0);
	group_own_metrics()->requests[0][1] = 1;
	group_retire(g, 1);
	group_sum(g, &sum);
	assert_int_equal(sum.m.requests[0][1], 24);
	assert_int_equal(sum.c.redis_reconnects, 4);
	assert_int_equal(sum.g.processes, 0);
	group_join(NULL, 0);
	group_destroy(g);
}

/* Outside a group, a scrape is this process's own. */
static void outside_a_group_a_scrape_is_the_process_own(void **state)
{
	metrics_sample_t s = {.m = {.frames_written = 9}, .g = {.processes = 1}};
	metrics_process_t p;

	(void)state;
	assert_false(group_is_worker());
	assert_null(group_own_metrics());
	group_scrape(&s, &p);
	assert_int_equal(s.m.frames_written, 9);
	assert_true(p.resident_bytes > 0);
}

/* Every sample belongs to a family announced by # HELP and # TYPE before it; lines end in \n. */
static void the_exposition_is_well_formed(void **state)
{
	fixture_t *f = *state;
	char *text = render(f), family[128] = "";

	assert_true(text[strlen(text) - 1] == '\n');
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (!strncmp(line, "# HELP ", 7)) {
			snprintf(family, sizeof(family), "%.*s", (int)strcspn(line + 7, " "),
				 line + 7);
			continue;
		}
		if (!strncmp(line, "# TYPE ", 7)) {
			assert_memory_equal(line + 7, family, strlen(family));
			continue;
		}
		assert_true(family[0] != '\0');
		assert_memory_equal(line, family, strlen(family));
		assert_non_null(strchr(line, ' '));
	}
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(counters_and_gauges_are_shown, setup, teardown),
	    cmocka_unit_test_setup_teardown(ingest_requests_count_by_provider_and_status, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(the_exposition_is_well_formed, setup, teardown),
	    cmocka_unit_test_setup_teardown(histograms_are_in_seconds, setup, teardown),
	    cmocka_unit_test_setup_teardown(process_metrics_and_build_info_are_shown, setup,
					    teardown),
	    cmocka_unit_test(this_process_reads_its_own_proc_entry),
	    cmocka_unit_test(a_group_sums_its_slots),
	    cmocka_unit_test(an_exited_workers_counters_stay_in_the_sum),
	    cmocka_unit_test(outside_a_group_a_scrape_is_the_process_own),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
