#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <libwebsockets.h>

static log_level_t log_threshold = LOG_INFO;
static log_format_t log_format = LOG_FORMAT_TEXT;
static int log_worker = -1;

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

void log_set_format(log_format_t format)
{
	log_format = format;
}

void log_set_worker(int worker)
{
	log_worker = worker;
}

int log_enabled(log_level_t level)
{
	return level <= log_threshold;
}

/* Appends s[0..len) to out as JSON string content (no quotes). */
static size_t log_json_escape(char *out, size_t cap, size_t n, const char *s, size_t len)
{
	for (size_t i = 0; i < len && n + 7 < cap; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
		} else {
			out[n++] = (char)c;
		}
	}
	return n;
}

static bool log_is_number(const char *s, size_t len)
{
	char buf[32];
	char *end;

	if (!len || len >= sizeof(buf) || s[0] == '+' || s[0] == '.' ||
	    (len > 1 && s[0] == '0' && s[1] != '.'))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	strtod(buf, &end);
	return *end == '\0' && strspn(buf, "-0123456789.eE") == len;
}

/* key=value key="quoted value" ... as JSON members, appended after a comma. */
static size_t log_json_fields(char *out, size_t cap, size_t n, const char *f)
{
	while (*f && n + 16 < cap) {
		const char *key, *val;
		size_t klen, vlen;
		bool quoted = false;

		while (*f == ' ')
			f++;
		key = f;
		while (*f && *f != '=' && *f != ' ')
			f++;
		klen = (size_t)(f - key);
		if (*f != '=' || !klen) {
			while (*f && *f != ' ')
				f++;
			continue;
		}
		f++;
		if (*f == '"') {
			quoted = true;
			val = ++f;
			while (*f && !(*f == '"' && f[-1] != '\\'))
				f++;
			vlen = (size_t)(f - val);
			if (*f == '"')
				f++;
		} else {
			val = f;
			while (*f && *f != ' ')
				f++;
			vlen = (size_t)(f - val);
		}
		out[n++] = ',';
		out[n++] = '"';
		n = log_json_escape(out, cap, n, key, klen);
		out[n++] = '"';
		out[n++] = ':';
		if (!quoted && log_is_number(val, vlen)) {
			if (n + vlen < cap) {
				memcpy(out + n, val, vlen);
				n += vlen;
			}
		} else {
			out[n++] = '"';
			n = log_json_escape(out, cap, n, val, vlen);
			if (n < cap)
				out[n++] = '"';
		}
	}
	return n;
}

void log_event(log_level_t level, const char *event, const char *fmt, ...)
{
	char line[2048], fields[1024] = "", ts[40];
	struct timeval tv;
	struct tm tm;
	size_t n = 0;
	va_list ap;

	if (!log_enabled(level))
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", (long)tv.tv_usec / 1000);
	if (fmt && *fmt) {
		va_start(ap, fmt);
		vsnprintf(fields, sizeof(fields), fmt, ap);
		va_end(ap);
	}
	if (log_format == LOG_FORMAT_JSON) {
		n = (size_t)snprintf(line, sizeof(line),
				     "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":\"", ts,
				     log_level_name(level));
		n = log_json_escape(line, sizeof(line), n, event, strlen(event));
		line[n++] = '"';
		if (log_worker >= 0)
			n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"worker\":%d",
					      log_worker);
		n = log_json_fields(line, sizeof(line) - 2, n, fields);
		line[n++] = '}';
	} else {
		n = (size_t)snprintf(line, sizeof(line), "%s %s %s", ts, log_level_name(level),
				     event);
		if (log_worker >= 0 && n < sizeof(line))
			n += (size_t)snprintf(line + n, sizeof(line) - n, " worker=%d", log_worker);
		if (fields[0] && n < sizeof(line))
			n += (size_t)snprintf(line + n, sizeof(line) - n, " %s", fields);
		if (n > sizeof(line) - 2)
			n = sizeof(line) - 2;
	}
	line[n++] = '\n';
	/* One write per line so lines of concurrent workers never interleave. */
	fwrite(line, 1, n, stderr);
}

static void log_lws_emit(int level, const char *line)
{
	size_t len = strlen(line);

	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	/* lws 4.1 logs these at error level for every socket adopted with its first
	 * bytes (listener.c's lobby does that for every connection): noise. */
	if (strstr(line, "adopt_socket_readbuf: calling service") ||
	    strstr(line, "adopt_socket_readbuf: deferring handling ah"))
		return;
	/* lws prefixes its own timestamp; keep its text as one field. */
	log_event(level == LLL_ERR    ? LOG_ERROR
		  : level == LLL_WARN ? LOG_WARN
				      : LOG_INFO,
		  "lws", "msg=\"%.*s\"", (int)len, line);
}

void log_route_lws(void)
{
	/* TRACKGATE_LWS_LOG=<lws level bitmask> shows lws's own notices, for debugging lws. */
	const char *env = getenv("TRACKGATE_LWS_LOG");
	int levels = env ? atoi(env) : LLL_ERR | LLL_WARN;

	lws_set_log_level(levels, log_lws_emit);
}
