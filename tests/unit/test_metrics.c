/*
 * Unit tests of gateway/metrics.c: the exposition a scrape gets from the
 * counters and a metrics_view_t, rendered without a gateway or a socket.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

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
	char *text = metrics_render(&f->v, &len);

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
	f->v.redis_up = true;
	f->v.n_conns = 7; /* no watchers: all HTTP */
	f->v.pending = (listener_stats_t){.pending = 4, .first_byte_timeouts = 9};
	text = render(f);
	assert_true(sample(text, "trackgate_frames_out_total") == 42);
	assert_true(sample(text, "trackgate_pong_timeouts_total") == 3);
	assert_true(sample(text, "trackgate_refused_total{reason=\"pipelined\"}") == 2);
	assert_true(sample(text, "trackgate_redis_reconnects_total") == 5);
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
