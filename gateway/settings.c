/*
 * settings.c - the settings table (config_private.h): one row per setting
 * with the parser that checks and stores its value and the printer that
 * writes it back for --check-config, the value parsers the rows use
 * (numbers, addresses, Redis URLs, tile URLs, lists), and what reads one
 * row: config_setting_info, config_set and config_defaults.  Reading the
 * config file and the command line, the key and secret files, --help,
 * --check-config and SIGHUP's swap are config.c's.
 */
#include "config_private.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static int config_parse_uint(const char *value, unsigned long long min, unsigned long long max,
			     unsigned long long *out)
{
	char *end;
	unsigned long long v;

	if (!*value || *value == '-' || *value == '+')
		return -1;
	errno = 0;
	v = strtoull(value, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int config_parse_port(const char *s, int *port)
{
	unsigned long long v;

	if (config_parse_uint(s, 1, 65535, &v))
		return -1;
	*port = (int)v;
	return 0;
}

int config_parse_listen(const char *value, char *host, size_t host_len, int *port)
{
	const char *colon = strrchr(value, ':');
	size_t hlen;

	if (!colon)
		return -1;
	hlen = (size_t)(colon - value);
	if (hlen >= host_len)
		return -1;
	if (config_parse_port(colon + 1, port))
		return -1;
	memset(host, 0, host_len);
	/* [::1]:8080 style */
	if (hlen >= 2 && value[0] == '[' && value[hlen - 1] == ']') {
		memcpy(host, value + 1, hlen - 2);
		host[hlen - 2] = '\0';
	} else {
		memcpy(host, value, hlen);
		host[hlen] = '\0';
	}
	if (strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0)
		host[0] = '\0';
	return 0;
}

/* lws binds an interface name or a numeric address; names are not resolved. */
static int config_numeric_host(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return !host[0] || inet_pton(AF_INET, host, buf) == 1 ||
	       inet_pton(AF_INET6, host, buf) == 1;
}

/*
 * page-tile-url: http(s)://HOST[:PORT]/... with {z}, {x} and {y}, of URL
 * characters only (it goes into the page's HTML and its Content-Security-
 * Policy).  NULL when good, else why not.
 */
const char *config_tile_url_check(const char *url)
{
	const char *host;

	if (strlen(url) > CONFIG_TILE_URL_MAX)
		return "at most 255 bytes";
	if (!strncmp(url, "https://", 8))
		host = url + 8;
	else if (!strncmp(url, "http://", 7))
		host = url + 7;
	else
		return "expected an http:// or https:// URL";
	if (!*host || *host == '/' || !strchr(host, '/'))
		return "expected http(s)://HOST/PATH";
	if (memchr(host, '{', (size_t)(strchr(host, '/') - host)))
		return "the host must be a plain name (no {s} subdomains): the page's policy names "
		       "it";
	for (const char *c = url; *c; c++)
		if (*c <= ' ' || *c > '~' || strchr("\"'<>\\`^|", *c))
			return "only URL characters (no spaces, quotes, <, >, \\, `, ^ or |)";
	if (!strstr(url, "{z}") || !strstr(url, "{x}") || !strstr(url, "{y}"))
		return "the template needs {z}, {x} and {y}";
	return NULL;
}

/* A parser's answer when it printed its message itself, or when a number is out of range. */
const char config_printed[] = "";
static const char config_out_of_range[] = "";

const char *config_parse_number(config_t *cfg, const config_setting_t *s, const char *v)
{
	unsigned long long n;

	if (config_parse_uint(v, s->min, s->max, &n))
		return config_out_of_range;
	if (s->field[0].len == sizeof(size_t))
		*(size_t *)FIELD(cfg, s, 0) = (size_t)n;
	else
		*(unsigned *)FIELD(cfg, s, 0) = (unsigned)n;
	return NULL;
}

static void config_print_number(const config_t *cfg, const config_setting_t *s, FILE *out)
{
	if (s->field[0].len == sizeof(size_t))
		fprintf(out, "%s = %zu\n", s->info.name, *(const size_t *)CFIELD(cfg, s, 0));
	else
		fprintf(out, "%s = %u\n", s->info.name, *(const unsigned *)CFIELD(cfg, s, 0));
}

static const char *config_parse_path(config_t *cfg, const config_setting_t *s, const char *v)
{
	if (!*v || strlen(v) >= s->field[0].len)
		return "expected a file path";
	config_copy(FIELD(cfg, s, 0), s->field[0].len, v);
	return NULL;
}

/* A string setting, printed when set. */
static void config_print_string(const config_t *cfg, const config_setting_t *s, FILE *out)
{
	if (*CFIELD(cfg, s, 0))
		fprintf(out, "%s = %s\n", s->info.name, CFIELD(cfg, s, 0));
}

/* HOST:PORT into field 0 (the host) and field 1 (the port). */
static const char *config_parse_address(config_t *cfg, const config_setting_t *s, const char *v)
{
	char *host = FIELD(cfg, s, 0);

	if (config_parse_listen(v, host, s->field[0].len, (int *)FIELD(cfg, s, 1)))
		return "expected HOST:PORT with a port in 1..65535";
	if (!config_numeric_host(host))
		return "expected a numeric address (127.0.0.1, ::1, 0.0.0.0 or *), not a name";
	return NULL;
}

void config_print_hostport(FILE *out, const char *prefix, const char *host, int port)
{
	bool v6 = strchr(host, ':') != NULL;

	fprintf(out, "%s%s%s%s:%d\n", prefix, v6 ? "[" : "", host[0] ? host : "*", v6 ? "]" : "",
		port);
}

static void config_print_address(const config_t *cfg, const config_setting_t *s, FILE *out)
{
	char prefix[64];
	int port = *(const int *)CFIELD(cfg, s, 1);

	snprintf(prefix, sizeof(prefix), "%s = ", s->info.name);
	if (port) /* metrics-listen: 0 = unset */
		config_print_hostport(out, prefix, CFIELD(cfg, s, 0), port);
}

/* The ingest-key-file, with how many keys it held (never the keys). */
static void config_print_key_file(const config_t *cfg, const config_setting_t *s, FILE *out)
{
	fprintf(out, "# %u key(s) read, masked\n", cfg->n_ingest_keys);
	config_print_string(cfg, s, out);
}

static const char *config_parse_log_level(config_t *cfg, const config_setting_t *s, const char *v)
{
	(void)s;
	return log_level_parse(v, &cfg->log_level) ? "expected error, warn, info or debug" : NULL;
}

static void config_print_log_level(const config_t *cfg, const config_setting_t *s, FILE *out)
{
	fprintf(out, "%s = %s\n", s->info.name, log_level_name(cfg->log_level));
}

static const char *config_parse_log_format(config_t *cfg, const config_setting_t *s, const char *v)
{
	(void)s;
	if (!strcmp(v, "text"))
		cfg->log_format = LOG_FORMAT_TEXT;
	else if (!strcmp(v, "json"))
		cfg->log_format = LOG_FORMAT_JSON;
	else
		return "expected text or json";
	return NULL;
}

static void config_print_log_format(const config_t *cfg, const config_setting_t *s, FILE *out)
{
	fprintf(out, "%s = %s\n", s->info.name,
		cfg->log_format == LOG_FORMAT_JSON ? "json" : "text");
}

static const char *config_parse_visible_from(config_t *cfg, const config_setting_t *s,
					     const char *v)
{
	proto_status_t st;

	if (proto_status_from_name(v, &st) != 0 || st >= PROTO_STATUS_DELIVERED)
		return "expected a status from created to at_dropoff";
	config_copy(FIELD(cfg, s, 0), s->field[0].len, v);
	return NULL;
}

static const char *config_parse_header(config_t *cfg, const config_setting_t *s, const char *v)
{
	char name[sizeof(cfg->proxy_header)];
	size_t i;

	for (i = 0; v[i] && i < sizeof(name) - 1; i++)
		name[i] = (char)tolower((unsigned char)v[i]);
	name[i] = '\0';
	if (v[i] || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != i)
		return "expected a header name";
	config_copy(FIELD(cfg, s, 0), s->field[0].len, name);
	return NULL;
}

/* A comma-separated list into field 0 (max items of equal size) and its count, field 1. */
static const char *config_parse_list(config_t *cfg, const config_setting_t *s, const char *v,
				     bool numeric, const char *why)
{
	char list[8192], *save = NULL, *items = FIELD(cfg, s, 0);
	unsigned *n = (unsigned *)FIELD(cfg, s, 1);
	size_t item_len = s->field[0].len / s->max;

	if (strlen(v) >= sizeof(list))
		return why;
	snprintf(list, sizeof(list), "%s", v);
	memset(items, 0, s->field[0].len);
	*n = 0;
	for (char *a = strtok_r(list, ", ", &save); a; a = strtok_r(NULL, ", ", &save)) {
		if (*n == s->max || strlen(a) >= item_len || (numeric && !config_numeric_host(a)))
			return why;
		memcpy(items + (*n)++ * item_len, a, strlen(a));
	}
	return NULL;
}

static const char *config_parse_proxies(config_t *cfg, const config_setting_t *s, const char *v)
{
	return config_parse_list(cfg, s, v, true, "at most 16 numeric addresses");
}

static const char *config_parse_origins(config_t *cfg, const config_setting_t *s, const char *v)
{
	return config_parse_list(cfg, s, v, false, "at most 16 origins of at most 255 bytes");
}

static void config_print_list(const config_t *cfg, const config_setting_t *s, FILE *out)
{
	unsigned n = *(const unsigned *)CFIELD(cfg, s, 1);

	if (!n)
		return;
	fprintf(out, "%s =", s->info.name);
	for (unsigned i = 0; i < n; i++)
		fprintf(out, "%s%s", i ? ", " : " ",
			CFIELD(cfg, s, 0) + i * (s->field[0].len / s->max));
	fprintf(out, "\n");
}

static const char *config_parse_tile_url(config_t *cfg, const config_setting_t *s, const char *v)
{
	const char *why = config_tile_url_check(v);

	if (!why)
		config_copy(FIELD(cfg, s, 0), s->field[0].len, v);
	return why;
}

static const char *config_parse_attribution(config_t *cfg, const config_setting_t *s, const char *v)
{
	if (strlen(v) > CONFIG_TILE_ATTR_MAX)
		return "at most 160 bytes";
	for (const char *c = v; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return "no control characters";
	config_copy(FIELD(cfg, s, 0), s->field[0].len, v);
	return NULL;
}

/* --webhook-secret-file PROVIDER=PATH */
static const char *config_parse_webhook_arg(config_t *cfg, const config_setting_t *s, const char *v)
{
	char provider[33];
	const char *eq = strchr(v, '=');

	(void)s;
	if (!eq || eq == v || (size_t)(eq - v) >= sizeof(provider))
		return "expected PROVIDER=PATH";
	memcpy(provider, v, (size_t)(eq - v));
	provider[eq - v] = '\0';
	return config_set_webhook(cfg, provider, "secret-file", eq + 1, "command line")
		   ? config_printed
		   : NULL;
}

/* Each webhook as its [webhook.PROVIDER] section; an inline secret only as a comment. */
static void config_print_webhooks(const config_t *cfg, const config_setting_t *s, FILE *out)
{
	(void)s;
	for (unsigned i = 0; i < cfg->n_webhooks; i++) {
		const config_webhook_t *w = &cfg->webhooks[i];

		fprintf(out, "[webhook.%s]\n", w->provider);
		if (w->secret_file[0])
			fprintf(out, "# %zu bytes, masked\nsecret-file = %s\n", w->secret_len,
				w->secret_file);
		else
			fprintf(out, "# secret = (inline, %zu bytes, masked: put it back here)\n",
				w->secret_len);
		if (w->header[0])
			fprintf(out, "header = %s\n", w->header);
	}
}

/* --token-key-file KID=ALG:PATH */
static const char *config_parse_token_arg(config_t *cfg, const config_setting_t *s, const char *v)
{
	char kid[AUTH_KID_MAX + 1], alg[8];
	const char *eq = strchr(v, '='), *colon = eq ? strchr(eq, ':') : NULL;

	(void)s;
	if (!eq || !colon || eq == v || (size_t)(eq - v) > AUTH_KID_MAX ||
	    (size_t)(colon - eq - 1) >= sizeof(alg))
		return "expected KID=HS256:PATH or KID=ES256:PATH";
	memcpy(kid, v, (size_t)(eq - v));
	kid[eq - v] = '\0';
	memcpy(alg, eq + 1, (size_t)(colon - eq - 1));
	alg[colon - eq - 1] = '\0';
	if (config_set_token_key(cfg, kid, "alg", alg, "command line") ||
	    config_set_token_key(cfg, kid, "secret-file", colon + 1, "command line"))
		return config_printed;
	return NULL;
}

static void config_print_token_keys(const config_t *cfg, const config_setting_t *s, FILE *out)
{
	(void)s;
	for (unsigned i = 0; i < cfg->token_keys.n; i++) {
		const auth_key_t *k = &cfg->token_keys.keys[i];
		bool hs = k->alg == AUTH_HS256;

		fprintf(out, "[token-key.%s]\nalg = %s\n", k->kid, hs ? "HS256" : "ES256");
		if (cfg->token_key_files[i][0])
			fprintf(out, "# %zu bytes, masked\n%s = %s\n", k->key_len,
				hs ? "secret-file" : "public-key-file", cfg->token_key_files[i]);
		else
			fprintf(out, "# secret = (inline, %zu bytes, masked: put it back here)\n",
				k->key_len);
	}
}

static void config_print_config_file(const config_t *cfg, const config_setting_t *s, FILE *out)
{
	(void)s;
	if (cfg->config_file[0])
		fprintf(out, "# read from %s and the command line\n", cfg->config_file);
}

static const char *config_parse_check(config_t *cfg, const config_setting_t *s, const char *v)
{
	(void)s;
	(void)v;
	cfg->check_only = true;
	return NULL;
}

#define F(f)                                                                                       \
	{                                                                                          \
		offsetof(config_t, f), sizeof(((config_t *)0)->f)                                  \
	}
#define RESTART CONFIG_RELOAD_RESTART
#define LIVE CONFIG_RELOAD_LIVE
#define FILES CONFIG_RELOAD_FILES
/* A setting of the file and the command line. */
#define SET(name, arg, def, reload, parse, print, help, ...)                                       \
	{                                                                                          \
		{name, arg, def, reload, false}, help, parse, print, false, 0, 0,                  \
		{                                                                                  \
			__VA_ARGS__                                                                \
		}                                                                                  \
	}
/* A whole number in lo..hi; a new value takes a restart. */
#define NUM(name, arg, def, field, lo, hi, help)                                                   \
	{                                                                                          \
		{name, arg, def, RESTART, false}, help, config_parse_number, config_print_number,  \
		    false, lo, hi,                                                                 \
		{                                                                                  \
			F(field)                                                                   \
		}                                                                                  \
	}
#define LIST(name, parse, reload, field, count, help)                                              \
	{                                                                                          \
		{name, "LIST", NULL, reload, false}, help, parse, config_print_list, false, 16,    \
		    16,                                                                            \
		{                                                                                  \
			F(field), F(count)                                                         \
		}                                                                                  \
	}
/* Command line only; early ones are taken before the config file is read. */
#define CLI(name, arg, reload, early, parse, print, help, ...)                                     \
	{                                                                                          \
		{name, arg, NULL, reload, true}, help, parse, print, early, 0, 0,                  \
		{                                                                                  \
			__VA_ARGS__                                                                \
		}                                                                                  \
	}

/*
 * In --help order, which is also --check-config's: the rows that print
 * [sections] come after every plain setting, or the settings after them
 * would be read back as keys of the last section.
 */
const config_setting_t config_settings[] = {
    CLI("config", "FILE", FILES, true, config_parse_path, config_print_config_file,
	"read settings from FILE: INI lines `setting = value` with the names below minus "
	"the leading --, '-' and '_' alike; the command line wins over the file",
	F(config_file)),
    SET("listen", "HOST:PORT", "127.0.0.1:8080", RESTART, config_parse_address,
	config_print_address,
	"address to serve HTTP and websockets on; *:PORT or "
	"0.0.0.0:PORT for all addresses",
	F(listen_host), F(listen_port)),
    SET("metrics-listen", "HOST:PORT", NULL, RESTART, config_parse_address, config_print_address,
	"serve GET /metrics on this address only (default: on the main "
	"address)",
	F(metrics_host), F(metrics_port)),
    SET("redis", "URL", "redis://127.0.0.1:6379", RESTART, config_parse_redis_url,
	config_print_redis,
	"redis://HOST:PORT, unix:///PATH, or redis+sentinel://IP:PORT[,IP:PORT...]/MASTER "
	"(the master a Sentinel group names, followed across failovers)",
	F(redis_host), F(redis_port), F(redis_unix), F(redis_sentinel)),
    SET("ingest-key-file", "PATH", NULL, LIVE, config_parse_path, config_print_key_file,
	"file of bearer keys for POST /v1/updates, one per line, each 16..256 printable "
	"bytes; '#' starts a comment (required)",
	F(ingest_key_file), F(ingest_keys), F(ingest_key_len), F(n_ingest_keys)),
    SET("tls-cert", "PATH", NULL, FILES, config_parse_path, config_print_string,
	"serve HTTPS/WSS with this PEM certificate chain (with tls-key)", F(tls_cert)),
    SET("tls-key", "PATH", NULL, FILES, config_parse_path, config_print_string,
	"the PEM private key of tls-cert", F(tls_key)),
    LIST("allowed-origins", config_parse_origins, LIVE, allowed_origins, n_allowed_origins,
	 "comma-separated Origin values allowed to open websockets; a request without an "
	 "Origin header (not a browser) is not refused by it (default: any)"),
    SET("page-tile-url", "URL", NULL, RESTART, config_parse_tile_url, config_print_string,
	"map tiles for the tracking page, an http(s) URL template with {z}, {x} and {y}, e.g. "
	"https://tile.example/{z}/{x}/{y}.png (default: a plain map without tiles)",
	F(page_tile_url)),
    SET("page-tile-attribution", "TEXT", NULL, RESTART, config_parse_attribution,
	config_print_string,
	"the tiles' attribution, shown on the map (e.g. \"(c) "
	"OpenStreetMap contributors\")",
	F(page_tile_attribution)),
    SET("log-level", "LEVEL", "info", RESTART, config_parse_log_level, config_print_log_level,
	"error, warn, info or debug", F(log_level)),
    SET("log-format", "FORMAT", "text", RESTART, config_parse_log_format, config_print_log_format,
	"text or json: one JSON object per line with ts, level, event "
	"and the event's fields",
	F(log_format)),
    NUM("workers", "N", "1", workers, 1, 64,
	"processes sharing the listening port "
	"(SO_REUSEPORT), each with its own loop and Redis connections; 1 = no parent"),
    NUM("worker-stall-timeout", "SECONDS", "10", stall_timeout_s, 1, 3600,
	"with workers > 1, a worker whose event loop has not run for this long is killed "
	"(SIGKILL) and restarted; keep it below the unit's WatchdogSec"),
    NUM("body-limit", "BYTES", "65536", body_limit, 1024, 16u << 20, "largest accepted POST body"),
    NUM("outq-limit", "BYTES", "262144", outq_limit, 4096, 64u << 20,
	"bytes queued for one watcher before it is closed with 4408"),
    NUM("send-buffer", "BYTES", "65536", send_buffer, 0, 16u << 20,
	"kernel send buffer (SO_SNDBUF) of each accepted socket, so that a client that stops "
	"reading pushes back within this much; 0 = the kernel's autotuning, up to tcp_wmem"),
    NUM("slow-timeout", "SECONDS", "30", slow_timeout_s, 1, 3600,
	"a watcher whose queue has not drained for this long is closed with 4408"),
    NUM("ttl-active", "SECONDS", "86400", ttl_active, 60, 30u * 86400,
	"lifetime of an order's Redis keys while active"),
    NUM("ttl-terminal", "SECONDS", "3600", ttl_terminal, 1, 30u * 86400,
	"lifetime after delivered/cancelled/returned/failed"),
    NUM("log-maxlen", "N", "1000", log_maxlen, 1, 100000,
	"update frames kept per order for resuming"),
    SET("courier-visible-from", "STATUS", "courier_assigned", RESTART, config_parse_visible_from,
	config_print_string,
	"the status from which the courier's "
	"position is stored and shown (created = always); never after delivered, cancelled, "
	"returned or failed",
	F(courier_visible_from)),
    NUM("redis-timeout", "MS", "2000", redis_timeout_ms, 10, 60000,
	"Redis connect timeout in milliseconds"),
    NUM("max-connections", "N", "18000", max_connections, 1, 1000000,
	"sockets one process serves at once; more get 503 or close 1013"),
    NUM("max-per-client", "N", "200", max_per_client, 1, 1000000,
	"websockets one client address may hold"),
    NUM("ping-interval", "SECONDS", "30", ping_interval_s, 1, 3600,
	"ping each websocket this long after its last pong"),
    NUM("pong-timeout", "SECONDS", "30", pong_timeout_s, 1, 3600,
	"drop a websocket silent this long after a ping"),
    NUM("http-timeout", "SECONDS", "10", http_timeout_s, 1, 3600,
	"time allowed for a request's headers and body, and for an idle keep-alive "
	"connection"),
    NUM("first-byte-timeout", "SECONDS", "5", first_byte_timeout_s, 1, 3600,
	"a new connection that sends nothing for this long is closed before it holds any "
	"server state"),
    NUM("max-pending-per-client", "N", "64", max_pending_per_client, 1, 1000000,
	"connections one client address may hold that have not sent a whole request head; "
	"more are closed at accept (trusted-proxies are exempt)"),
    NUM("upgrade-rate", "N", "50", upgrade_rate, 1, 1000000,
	"websocket upgrades per second per client address; more get close 1013"),
    NUM("upgrade-burst", "N", "200", upgrade_burst, 1, 1000000,
	"upgrades one address may make at once"),
    NUM("ingest-rate", "N", "5000", ingest_rate, 1, 1000000,
	"ingest and webhook requests per second per client address; more get 429"),
    NUM("ingest-burst", "N", "10000", ingest_burst, 1, 1000000,
	"ingest requests one address may make at once"),
    NUM("webhook-replay-window", "SECONDS", "300", webhook_replay_window_s, 1, 86400,
	"a webhook whose signature covers its time of sending (rappi's t) is refused with 401 "
	"when that time is further than this from the receive time, either way"),
    SET("proxy-header", "NAME", NULL, RESTART, config_parse_header, config_print_string,
	"the header a trusted proxy puts the client address in, e.g. X-Forwarded-For "
	"(default: none)",
	F(proxy_header)),
    LIST("trusted-proxies", config_parse_proxies, RESTART, trusted_proxies, n_trusted_proxies,
	 "comma-separated proxy addresses whose proxy-header is believed"),
    NUM("drain-timeout", "SECONDS", "10", drain_timeout_s, 1, 3600,
	"longest wait on SIGTERM for watchers to close and ingest requests to finish"),
    CLI("webhook-secret-file", "PROVIDER=PATH", LIVE, false, config_parse_webhook_arg,
	config_print_webhooks,
	"the secret of POST /v1/webhooks/PROVIDER, read from PATH; in "
	"the config file: [webhook.PROVIDER] with secret = VALUE or secret-file = PATH. "
	"Providers not configured get 404",
	F(webhooks), F(n_webhooks)),
    CLI("poll", "PROVIDER.KEY=VALUE", RESTART, false, config_parse_poll_arg, config_print_polls,
	"poll PROVIDER's API for the couriers of watched orders that have a source "
	"(PUT /v1/orders/{ID}/source); in the config file: [poll.PROVIDER] with base-url, "
	"interval-ms, budget (requests/s for the whole group), timeout-ms, connect-timeout-ms, "
	"lease-ms, ca-file and the provider's credentials (uber_direct: client-id, customer-id, "
	"client-secret-file; doordash_drive: developer-id, key-id, signing-secret-file; onfleet: "
	"api-key-file). Providers: uber_direct, doordash_drive, onfleet",
	F(polls), F(n_polls)),
    CLI("token-key-file", "KID=ALG:PATH", LIVE, false, config_parse_token_arg,
	config_print_token_keys,
	"a key for tracking-link tokens (ALG HS256: the secret; "
	"ES256: a PEM public key); with none, links are unchecked. In the file: "
	"[token-key.KID] alg = .., secret-file = ..",
	F(token_keys), F(token_key_files)),
    CLI("check-config", NULL, CONFIG_RELOAD_NONE, true, config_parse_check, NULL,
	"validate the settings, print them as a config file (secrets masked) and exit 0, or "
	"print what is wrong and exit 1",
	F(check_only)),
    CLI("help", NULL, CONFIG_RELOAD_NONE, true, NULL, NULL, "print this and exit", {0, 0}),
    CLI("version", NULL, CONFIG_RELOAD_NONE, true, NULL, NULL, "print the version and exit",
	{0, 0}),
};

#define CONFIG_N_SETTINGS (sizeof(config_settings) / sizeof(config_settings[0]))

_Static_assert(CONFIG_N_SETTINGS <= CONFIG_SETTINGS_MAX, "raise CONFIG_SETTINGS_MAX");

const size_t config_n_settings = CONFIG_N_SETTINGS;

const config_setting_info_t *config_setting_info(size_t i)
{
	return i < CONFIG_N_SETTINGS ? &config_settings[i].info : NULL;
}

static const config_setting_t *config_find(const char *name)
{
	char norm[64];
	size_t i;

	for (i = 0; name[i] && i < sizeof(norm) - 1; i++)
		norm[i] = name[i] == '_' ? '-' : name[i];
	norm[i] = '\0';
	for (i = 0; i < CONFIG_N_SETTINGS; i++)
		if (strcmp(config_settings[i].info.name, norm) == 0)
			return &config_settings[i];
	return NULL;
}

/* Parses value into s's fields; on error prints one line naming s and origin. */
int config_apply(config_t *cfg, const config_setting_t *s, const char *value, const char *origin)
{
	const char *why = s->parse(cfg, s, value);

	/* The value of a setting is never a secret (keys live in files). */
	if (why == config_out_of_range)
		config_err("trackgated: %s: bad %s '%s': expected a whole number in "
			   "%llu..%llu\n",
			   origin, s->info.name, value, s->min, s->max);
	else if (why && why != config_printed)
		config_err("trackgated: %s: bad %s '%s': %s\n", origin, s->info.name, value, why);
	return why ? CONFIG_EINVAL : CONFIG_OK;
}

/*
 * Applies one setting of the file (or of a test).  origin names where it
 * came from ("command line", "FILE:LINE") for the error message.
 */
int config_set(config_t *cfg, const char *name, const char *value, const char *origin)
{
	const config_setting_t *s = config_find(name);

	if (!s || !s->parse) {
		config_err("trackgated: %s: unknown setting '%s' (see --help)\n", origin, name);
		return CONFIG_EINVAL;
	}
	if (s->info.cli_only) {
		config_err("trackgated: %s: %s is for the command line only (see --help)\n", origin,
			   s->info.name);
		return CONFIG_EINVAL;
	}
	return config_apply(cfg, s, value, origin);
}

void config_defaults(config_t *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < CONFIG_N_SETTINGS; i++)
		if (config_settings[i].info.def)
			config_settings[i].parse(cfg, &config_settings[i],
						 config_settings[i].info.def);
}
