#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <libwebsockets.h>

static log_level_t log_threshold = LOG_INFO;

static const char *const log_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *name, log_level_t *out)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
		if (strcmp(name, log_names[i]) == 0) {
			*out = (log_level_t)i;
			return 0;
		}
	}
	return -1;
}

const char *log_level_name(log_level_t level)
{
	return (unsigned)level < sizeof(log_names) / sizeof(log_names[0]) ? log_names[level] : "?";
}

void log_set_level(log_level_t level)
{
	log_threshold = level;
}

int log_enabled(log_level_t level)
{
	return level <= log_threshold;
}

void log_event(log_level_t level, const char *event, const char *fmt, ...)
{
	char line[1024];
	struct timeval tv;
	struct tm tm;
	size_t n;
	va_list ap;

	if (!log_enabled(level))
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s %s", (long)tv.tv_usec / 1000,
			      log_level_name(level), event);
	if (fmt && *fmt && n < sizeof(line) - 2) {
		line[n++] = ' ';
		va_start(ap, fmt);
		int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		va_end(ap);
		if (m > 0)
			n += (size_t)m;
	}
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line so lines of concurrent workers never interleave. */
	fwrite(line, 1, n, stderr);
}

static void log_lws_emit(int level, const char *line)
{
	size_t len = strlen(line);

	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	/* lws prefixes its own timestamp; keep its text as one field. */
	log_event(level == LLL_ERR ? LOG_ERROR : level == LLL_WARN ? LOG_WARN : LOG_INFO, "lws",
		  "msg=\"%.*s\"", (int)len, line);
}

void log_route_lws(void)
{
	/* TRACKGATE_LWS_LOG=<lws level bitmask> shows lws's own notices, for debugging lws. */
	const char *env = getenv("TRACKGATE_LWS_LOG");
	int levels = env ? atoi(env) : LLL_ERR | LLL_WARN;

	lws_set_log_level(levels, log_lws_emit);
}
