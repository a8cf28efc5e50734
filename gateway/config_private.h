/*
 * config_private.h - what config.c and settings.c share, for gateway/ only:
 * the settings table's row type, the table itself (settings.c), applying a
 * value to a row, and the [webhook.*] and [token-key.*] setters (config.c)
 * that both the config file's sections and the command line's
 * --webhook-secret-file and --token-key-file go through.
 */
#ifndef TRACKGATE_CONFIG_PRIVATE_H
#define TRACKGATE_CONFIG_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

/*
 * The settings table.  A row is one setting: its name and --help text, its
 * default (a value its parser takes), the parser that checks a value and
 * stores it, the printer that writes it back as config-file lines for
 * --check-config, what SIGHUP does with it, and the fields of config_t it
 * owns (so that a reload can copy or compare them).  A parser returns NULL
 * or why the value is bad.
 */
typedef struct config_setting config_setting_t;
typedef const char *config_parse_fn(config_t *cfg, const config_setting_t *s, const char *value);
typedef void config_print_fn(const config_t *cfg, const config_setting_t *s, FILE *out);

struct config_setting {
	config_setting_info_t info;
	const char *help;
	config_parse_fn *parse;	     /* NULL for --help and --version */
	config_print_fn *print;	     /* NULL: not in --check-config's output */
	bool early;		     /* taken in the first pass over the command line */
	unsigned long long min, max; /* numbers: the range; lists: the number of items */
	struct {
		size_t off, len;
	} field[4]; /* the fields of config_t it sets */
};

#define FIELD(cfg, s, i) ((char *)(cfg) + (s)->field[i].off)
#define CFIELD(cfg, s, i) ((const char *)(cfg) + (s)->field[i].off)

/* Where an error of the configuration goes: stderr, or the buffer
 * config_capture_errors set on this thread. */
void config_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The rows in --help order (settings.c), config_n_settings of them, at most CONFIG_SETTINGS_MAX. */
#define CONFIG_SETTINGS_MAX 64
extern const config_setting_t config_settings[];
extern const size_t config_n_settings;

/* The parser of the rows that take a whole number in min..max (--help prints the range). */
config_parse_fn config_parse_number;

/* Parses value into s's fields; on error prints one line naming s and origin. */
int config_apply(config_t *cfg, const config_setting_t *s, const char *value, const char *origin);

/* secret = VALUE or secret-file = PATH for provider (the value is never printed). */
int config_set_webhook(config_t *cfg, const char *provider, const char *name, const char *value,
		       const char *origin);

/* alg = HS256|ES256, secret = VALUE (HS256), secret-file / public-key-file = PATH. */
int config_set_token_key(config_t *cfg, const char *kid, const char *name, const char *value,
			 const char *origin);

/* A parser's answer when it printed its message itself (settings.c). */
extern const char config_printed[];

/* "PREFIX HOST:PORT\n", HOST in brackets when it is an IPv6 address, "*" when empty. */
void config_print_hostport(FILE *out, const char *prefix, const char *host, int port);
/* The redis setting (config_redis.c). */
config_parse_fn config_parse_redis_url;
config_print_fn config_print_redis;

/* KEY = VALUE of [poll.PROVIDER] (config_poll.c); the section's defaults come with its first
 * key. */
int config_set_poll(config_t *cfg, const char *provider, const char *name, const char *value,
		    const char *origin);
/* Checks every [poll.*] section is whole and reads its secret file. */
int config_load_polls(config_t *cfg);
/* --poll PROVIDER.KEY=VALUE: one key of [poll.PROVIDER]. */
config_parse_fn config_parse_poll_arg;
/* The [poll.*] sections as config-file lines (secrets as their paths). */
config_print_fn config_print_polls;

/* Copies value into dst, clearing all of it first (config_apply_reload compares whole fields). */
static inline void config_copy(char *dst, size_t size, const char *value)
{
	memset(dst, 0, size);
	memcpy(dst, value, strnlen(value, size - 1));
}

#endif
