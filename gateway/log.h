/*
 * log.h - one line per event on stderr: time, level, event name, fields.
 *
 *   2026-11-21T21:40:00.123Z info listening addr=127.0.0.1:8080
 *
 * Callers pass values, never secrets or query strings: the logger cannot
 * tell them apart, so the rule is kept at the call sites.
 */
#ifndef TRACKGATE_LOG_H
#define TRACKGATE_LOG_H

typedef enum log_level {
	LOG_ERROR = 0,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG,
} log_level_t;

/* 0 and *out set for "error", "warn", "info", "debug"; -1 otherwise. */
int log_level_parse(const char *name, log_level_t *out);
const char *log_level_name(log_level_t level);

typedef enum log_format {
	LOG_FORMAT_TEXT = 0, /* 2026-11-21T21:40:00.123Z info listening addr=... */
	LOG_FORMAT_JSON,     /* {"ts":"...","level":"info","event":"listening","addr":"..."} */
} log_format_t;

void log_set_level(log_level_t level);
void log_set_format(log_format_t format);
/* Prefixes every line with worker=N (a --workers child); -1 = none. */
void log_set_worker(int worker);
int log_enabled(log_level_t level);

/*
 * event: a short snake_case name; fmt: space-separated key=value fields, a
 * value either bare (no spaces) or in double quotes.  In JSON the fields
 * become members: numbers stay numbers, everything else a string.
 */
void log_event(log_level_t level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Routes libwebsockets' own log lines (warnings and errors) through log_event. */
void log_route_lws(void);

#endif
