/*
 * Unit tests of gateway/log.c: levels, the text line, and JSON lines that stay
 * valid JSON whatever a value holds.  log_event() writes to stderr; each test
 * captures descriptor 2 into a temporary file for the call and reads it back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <libwebsockets.h>

#include "log.h"

/* What was written to stderr between capture_begin() and capture_end(). */
typedef struct capture {
	FILE *file;
	int saved_fd;
	char text[8192];
	size_t len;
} capture_t;

static void capture_begin(capture_t *c)
{
	memset(c, 0, sizeof(*c));
	fflush(stderr);
	c->file = tmpfile();
	assert_non_null(c->file);
	c->saved_fd = dup(STDERR_FILENO);
	assert_true(c->saved_fd >= 0);
	assert_true(dup2(fileno(c->file), STDERR_FILENO) >= 0);
}

static void capture_end(capture_t *c)
{
	fflush(stderr);
	assert_true(dup2(c->saved_fd, STDERR_FILENO) >= 0);
	close(c->saved_fd);
	rewind(c->file);
	c->len = fread(c->text, 1, sizeof(c->text) - 1, c->file);
	c->text[c->len] = '\0';
	fclose(c->file);
}

static unsigned count_lines(const capture_t *c)
{
	unsigned n = 0;

	for (size_t i = 0; i < c->len; i++)
		n += c->text[i] == '\n';
	return n;
}

/* The one line captured, parsed as JSON; the caller frees it. */
static cJSON *json_line(const capture_t *c)
{
	cJSON *obj;

	assert_int_equal(count_lines(c), 1);
	assert_int_equal(c->text[c->len - 1], '\n');
	obj = cJSON_ParseWithLength(c->text, c->len - 1);
	if (!obj)
		fail_msg("not JSON: %s", c->text);
	assert_true(cJSON_IsObject(obj));
	return obj;
}

static const char *json_string(const cJSON *obj, const char *name)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (!cJSON_IsString(m))
		fail_msg("member %s is not a string", name);
	return m->valuestring;
}

static double json_number(const cJSON *obj, const char *name)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (!cJSON_IsNumber(m))
		fail_msg("member %s is not a number", name);
	return m->valuedouble;
}

/* Every test starts from the defaults: info, text, no worker. */
static int log_defaults(void **state)
{
	(void)state;
	log_set_level(LOG_INFO);
	log_set_format(LOG_FORMAT_TEXT);
	log_set_worker(-1);
	return 0;
}

static void level_names_parse_back_to_their_level(void **state)
{
	static const log_level_t levels[] = {LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG};
	log_level_t out;

	(void)state;
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		out = (log_level_t)-1;
		assert_int_equal(log_level_parse(log_level_name(levels[i]), &out), 0);
		assert_int_equal(out, levels[i]);
	}
	assert_string_equal(log_level_name(LOG_WARN), "warn");
}

static void unknown_level_names_are_refused(void **state)
{
	static const char *const names[] = {"", "INFO", "warning", "info ", "trace"};
	log_level_t out = LOG_WARN;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_int_equal(log_level_parse(names[i], &out), -1);
	assert_int_equal(out, LOG_WARN);
	assert_string_equal(log_level_name((log_level_t)42), "?");
}

static void events_below_the_level_are_not_written(void **state)
{
	capture_t c;

	(void)state;
	log_set_level(LOG_WARN);
	assert_true(log_enabled(LOG_ERROR));
	assert_true(log_enabled(LOG_WARN));
	assert_false(log_enabled(LOG_INFO));
	capture_begin(&c);
	log_event(LOG_INFO, "quiet", "a=1");
	log_event(LOG_DEBUG, "quieter", "a=1");
	log_event(LOG_WARN, "loud", "a=1");
	capture_end(&c);
	assert_int_equal(count_lines(&c), 1);
	assert_non_null(strstr(c.text, " warn loud a=1\n"));
}

static void a_text_line_is_time_level_event_and_fields(void **state)
{
	int y, mo, d, h, mi, s, ms;
	char rest[256];
	capture_t c;

	(void)state;
	capture_begin(&c);
	log_event(LOG_INFO, "listening", "addr=%s:%d", "127.0.0.1", 8080);
	capture_end(&c);
	assert_int_equal(count_lines(&c), 1);
	/* 2026-11-21T21:40:00.123Z info listening addr=127.0.0.1:8080 */
	assert_int_equal(c.text[23], 'Z');
	assert_int_equal(
	    sscanf(c.text, "%4d-%2d-%2dT%2d:%2d:%2d.%3d", &y, &mo, &d, &h, &mi, &s, &ms), 7);
	assert_true(mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && s <= 60);
	snprintf(rest, sizeof(rest), "%s", c.text + 24);
	assert_string_equal(rest, " info listening addr=127.0.0.1:8080\n");
}

static void a_text_line_without_fields_ends_at_the_event(void **state)
{
	capture_t c;

	(void)state;
	capture_begin(&c);
	log_event(LOG_ERROR, "stopped", "%s", "");
	log_event(LOG_ERROR, "stopped", NULL);
	capture_end(&c);
	assert_int_equal(count_lines(&c), 2);
	/* Two lines of the same length: time, then " error stopped". */
	assert_int_equal(c.len % 2, 0);
	c.text[c.len / 2 - 1] = '\0';
	assert_string_equal(c.text + 24, " error stopped");
	assert_string_equal(c.text + c.len / 2 + 24, " error stopped\n");
}

static void a_worker_is_named_on_every_line(void **state)
{
	capture_t c;
	cJSON *obj;

	(void)state;
	log_set_worker(3);
	capture_begin(&c);
	log_event(LOG_INFO, "started", "pid=%d", 77);
	capture_end(&c);
	assert_non_null(strstr(c.text, " info started worker=3 pid=77\n"));

	log_set_format(LOG_FORMAT_JSON);
	capture_begin(&c);
	log_event(LOG_INFO, "started", "pid=%d", 77);
	capture_end(&c);
	obj = json_line(&c);
	assert_true(json_number(obj, "worker") == 3);
	assert_true(json_number(obj, "pid") == 77);
	cJSON_Delete(obj);
}

static void a_json_line_has_time_level_event_and_fields_as_members(void **state)
{
	capture_t c;
	cJSON *obj;

	(void)state;
	log_set_format(LOG_FORMAT_JSON);
	capture_begin(&c);
	log_event(LOG_WARN, "redis_disconnected", "conn=%s error=\"%s\"", "subscriber",
		  "Connection reset by peer");
	capture_end(&c);
	obj = json_line(&c);
	assert_int_equal(strlen(json_string(obj, "ts")), 24);
	assert_int_equal(json_string(obj, "ts")[23], 'Z');
	assert_string_equal(json_string(obj, "level"), "warn");
	assert_string_equal(json_string(obj, "event"), "redis_disconnected");
	assert_string_equal(json_string(obj, "conn"), "subscriber");
	assert_string_equal(json_string(obj, "error"), "Connection reset by peer");
	assert_null(cJSON_GetObjectItemCaseSensitive(obj, "worker"));
	cJSON_Delete(obj);
}

static void json_numbers_stay_numbers_and_the_rest_are_strings(void **state)
{
	capture_t c;
	cJSON *obj;

	(void)state;
	log_set_format(LOG_FORMAT_JSON);
	capture_begin(&c);
	log_event(LOG_INFO, "mixed",
		  "n=42 neg=-7 real=2.5 exp=1e3 zero=0 "
		  "octal=007 plus=+1 dot=.5 addr=127.0.0.1:80 quoted=\"42\" word=yes");
	capture_end(&c);
	obj = json_line(&c);
	assert_true(json_number(obj, "n") == 42);
	assert_true(json_number(obj, "neg") == -7);
	assert_true(json_number(obj, "real") == 2.5);
	assert_true(json_number(obj, "exp") == 1000);
	assert_true(json_number(obj, "zero") == 0);
	/* Not JSON numbers as written: kept as the text they were. */
	assert_string_equal(json_string(obj, "octal"), "007");
	assert_string_equal(json_string(obj, "plus"), "+1");
	assert_string_equal(json_string(obj, "dot"), ".5");
	assert_string_equal(json_string(obj, "addr"), "127.0.0.1:80");
	/* A quoted value is a string even when it reads as a number. */
	assert_string_equal(json_string(obj, "quoted"), "42");
	assert_string_equal(json_string(obj, "word"), "yes");
	cJSON_Delete(obj);
}

static void json_escapes_quotes_backslashes_and_control_characters(void **state)
{
	capture_t c;
	cJSON *obj;

	(void)state;
	log_set_format(LOG_FORMAT_JSON);
	capture_begin(&c);
	log_event(LOG_ERROR, "lws", "msg=\"%s\" path=%s", "tab\there\nnew line\x01\x7f end",
		  "C:\\dir\\\"x");
	capture_end(&c);
	/* One line: the newline in the value is escaped, not written. */
	obj = json_line(&c);
	assert_string_equal(json_string(obj, "msg"), "tab\there\nnew line\x01\x7f end");
	/* A bare value's quotes and backslashes are content. */
	assert_string_equal(json_string(obj, "path"), "C:\\dir\\\"x");
	cJSON_Delete(obj);
}

static void json_keeps_utf8_as_it_is(void **state)
{
	capture_t c;
	cJSON *obj;

	(void)state;
	log_set_format(LOG_FORMAT_JSON);
	capture_begin(&c);
	log_event(LOG_INFO, "courier", "name=\"%s\"", "Zoë Åström 配達");
	capture_end(&c);
	obj = json_line(&c);
	assert_string_equal(json_string(obj, "name"), "Zoë Åström 配達");
	cJSON_Delete(obj);
}

static void json_escapes_the_event_name_too(void **state)
{
	capture_t c;
	cJSON *obj;

	(void)state;
	log_set_format(LOG_FORMAT_JSON);
	capture_begin(&c);
	log_event(LOG_INFO, "odd\"event\\\n", "%s", "");
	capture_end(&c);
	obj = json_line(&c);
	assert_string_equal(json_string(obj, "event"), "odd\"event\\\n");
	cJSON_Delete(obj);
}

static void text_that_is_not_a_field_is_left_out_of_json(void **state)
{
	capture_t c;
	cJSON *obj;

	(void)state;
	log_set_format(LOG_FORMAT_JSON);
	capture_begin(&c);
	log_event(LOG_INFO, "loose", "  stray =novalue a=1  trailing");
	capture_end(&c);
	obj = json_line(&c);
	assert_true(json_number(obj, "a") == 1);
	/* ts, level, event and a: nothing made up from the rest. */
	assert_int_equal(cJSON_GetArraySize(obj), 4);
	cJSON_Delete(obj);
}

static void a_json_line_too_long_is_cut_but_stays_one_object(void **state)
{
	static char value[1500];
	capture_t c;
	cJSON *obj;

	(void)state;
	log_set_format(LOG_FORMAT_JSON);
	/* Each control character takes 6 bytes escaped: far more than a line holds. */
	memset(value, '\x01', sizeof(value) - 1);
	capture_begin(&c);
	log_event(LOG_INFO, "long", "a=1 v=\"%s\" after=2", value);
	capture_end(&c);
	assert_true(c.len <= 2048);
	obj = json_line(&c);
	assert_true(json_number(obj, "a") == 1);
	assert_true(strlen(json_string(obj, "v")) > 0);
	cJSON_Delete(obj);
}

static void a_text_line_too_long_is_cut_to_one_line(void **state)
{
	static char value[3000];
	capture_t c;

	(void)state;
	memset(value, 'x', sizeof(value) - 1);
	capture_begin(&c);
	log_event(LOG_INFO, "long", "v=%s", value);
	capture_end(&c);
	assert_int_equal(count_lines(&c), 1);
	assert_true(c.len <= 2048);
	assert_non_null(strstr(c.text, " info long v=xxxx"));
}

static void lws_warnings_come_out_as_lws_events(void **state)
{
	capture_t c;
	cJSON *obj;

	(void)state;
	unsetenv("TRACKGATE_LWS_LOG");
	log_set_format(LOG_FORMAT_JSON);
	log_route_lws();
	capture_begin(&c);
	lwsl_warn("a warning from lws\n");
	/* lws's notices are not routed by default ... */
	lwsl_notice("a notice from lws\n");
	/* ... nor its noise about adopting a socket with its first bytes. */
	lwsl_err("adopt_socket_readbuf: calling service\n");
	capture_end(&c);
	obj = json_line(&c);
	assert_string_equal(json_string(obj, "event"), "lws");
	assert_string_equal(json_string(obj, "level"), "warn");
	assert_non_null(strstr(json_string(obj, "msg"), "a warning from lws"));
	/* The trailing newline is lws's, not part of the message. */
	assert_null(strchr(json_string(obj, "msg"), '\n'));
	cJSON_Delete(obj);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(level_names_parse_back_to_their_level, log_defaults),
	    cmocka_unit_test_setup(unknown_level_names_are_refused, log_defaults),
	    cmocka_unit_test_setup(events_below_the_level_are_not_written, log_defaults),
	    cmocka_unit_test_setup(a_text_line_is_time_level_event_and_fields, log_defaults),
	    cmocka_unit_test_setup(a_text_line_without_fields_ends_at_the_event, log_defaults),
	    cmocka_unit_test_setup(a_worker_is_named_on_every_line, log_defaults),
	    cmocka_unit_test_setup(a_json_line_has_time_level_event_and_fields_as_members,
				   log_defaults),
	    cmocka_unit_test_setup(json_numbers_stay_numbers_and_the_rest_are_strings,
				   log_defaults),
	    cmocka_unit_test_setup(json_escapes_quotes_backslashes_and_control_characters,
				   log_defaults),
	    cmocka_unit_test_setup(json_keeps_utf8_as_it_is, log_defaults),
	    cmocka_unit_test_setup(json_escapes_the_event_name_too, log_defaults),
	    cmocka_unit_test_setup(text_that_is_not_a_field_is_left_out_of_json, log_defaults),
	    cmocka_unit_test_setup(a_json_line_too_long_is_cut_but_stays_one_object, log_defaults),
	    cmocka_unit_test_setup(a_text_line_too_long_is_cut_to_one_line, log_defaults),
	    cmocka_unit_test_setup(lws_warnings_come_out_as_lws_events, log_defaults),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
