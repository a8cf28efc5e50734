#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "adapter.h"

#ifndef TRACKGATE_VERSION
#define TRACKGATE_VERSION "dev"
#endif

/*
 * One row per setting: the single table behind --help, the file and the
 * command line.  Numeric settings carry their range and where they go, so
 * they need no code of their own.
 */
typedef enum config_kind {
	CONFIG_SPECIAL = 0, /* parsed by its own branch in config_set() */
	CONFIG_UINT,        /* unsigned, stored at offset */
	CONFIG_SIZE,        /* size_t, stored at offset */
} config_kind_t;

typedef struct config_setting {
	const char *name;
	const char *arg;
	const char *help;
	config_kind_t kind;
	size_t offset;
	unsigned long long min, max;
} config_setting_t;

#define NUM(kind, field, lo, hi) kind, offsetof(config_t, field), lo, hi

static const config_setting_t config_settings[] = {
	{"listen", "HOST:PORT", "address to serve HTTP and websockets on (default 127.0.0.1:8080;\n"
				"                         *:PORT or 0.0.0.0:PORT for all addresses)", CONFIG_SPECIAL, 0, 0, 0},
	{"metrics-listen", "HOST:PORT", "serve GET /metrics on this address only (default: on the\n"
					"                         main address)", CONFIG_SPECIAL, 0, 0, 0},
	{"redis", "URL", "redis://HOST:PORT or unix:///PATH (default redis://127.0.0.1:6379)",
	 CONFIG_SPECIAL, 0, 0, 0},
	{"ingest-key-file", "PATH", "file of bearer keys for POST /v1/updates, one per line, each\n"
				    "                         16..256 printable bytes; '#' starts a comment (required)",
	 CONFIG_SPECIAL, 0, 0, 0},
	{"tls-cert", "PATH", "serve HTTPS/WSS with this PEM certificate chain (with tls-key);\n"
			     "                         SIGHUP reloads both files", CONFIG_SPECIAL, 0, 0, 0},
	{"tls-key", "PATH", "the PEM private key of tls-cert", CONFIG_SPECIAL, 0, 0, 0},
	{"allowed-origins", "LIST", "comma-separated Origin values allowed to open websockets\n"
				    "                         (default: any)", CONFIG_SPECIAL, 0, 0, 0},
	{"page-tile-url", "URL", "map tiles for the tracking page, an http(s) URL template with\n"
				 "                         {z}, {x} and {y}, e.g. https://tile.example/{z}/{x}/{y}.png\n"
				 "                         (default: a plain map without tiles)", CONFIG_SPECIAL, 0, 0, 0},
	{"page-tile-attribution", "TEXT", "the tiles' attribution, shown on the map (e.g.\n"
					  "                         \"(c) OpenStreetMap contributors\")", CONFIG_SPECIAL, 0, 0, 0},
	{"log-level", "LEVEL", "error, warn, info or debug (default info)", CONFIG_SPECIAL, 0, 0, 0},
	{"log-format", "FORMAT", "text (default) or json: one JSON object per line with ts,\n"
				 "                         level, event and the event's fields",
	 CONFIG_SPECIAL, 0, 0, 0},
	{"workers", "N", "processes sharing the listening port (SO_REUSEPORT), each with its\n"
			 "                         own loop and Redis connections; 1 = no parent (default 1)",
	 NUM(CONFIG_UINT, workers, 1, 64)},
	{"body-limit", "BYTES", "largest accepted POST body (default 65536)",
	 NUM(CONFIG_SIZE, body_limit, 1024, 16u << 20)},
	{"outq-limit", "BYTES", "bytes queued for one watcher before it is closed with 4408\n"
				"                         (default 262144)",
	 NUM(CONFIG_SIZE, outq_limit, 4096, 64u << 20)},
	{"send-buffer", "BYTES", "kernel send buffer (SO_SNDBUF) of each accepted socket, so that a\n"
				 "                         client that stops reading pushes back within this much;\n"
				 "                         0 = the kernel's autotuning, up to tcp_wmem (default 65536)",
	 NUM(CONFIG_SIZE, send_buffer, 0, 16u << 20)},
	{"slow-timeout", "SECONDS", "a watcher whose queue has not drained for this long is closed\n"
				    "                         with 4408 (default 30)",
	 NUM(CONFIG_UINT, slow_timeout_s, 1, 3600)},
	{"ttl-active", "SECONDS", "lifetime of an order's Redis keys while active (default 86400)",
	 NUM(CONFIG_UINT, ttl_active, 60, 30u * 86400)},
	{"ttl-terminal", "SECONDS", "lifetime after delivered/cancelled/returned/failed (default 3600)",
	 NUM(CONFIG_UINT, ttl_terminal, 1, 30u * 86400)},
	{"log-maxlen", "N", "update frames kept per order for resuming (default 1000)",
	 NUM(CONFIG_UINT, log_maxlen, 1, 100000)},
	{"courier-visible-from", "STATUS", "the status from which the courier's position is stored and\n"
					   "                         shown (default courier_assigned; created = always); never\n"
					   "                         after delivered, cancelled, returned or failed",
	 CONFIG_SPECIAL, 0, 0, 0},
	{"redis-timeout", "MS", "Redis connect timeout in milliseconds (default 2000)",
	 NUM(CONFIG_UINT, redis_timeout_ms, 10, 60000)},
	{"max-connections", "N", "sockets one process serves at once; more get 503 or close\n"
				 "                         1013 (default 18000)",
	 NUM(CONFIG_UINT, max_connections, 1, 1000000)},
	{"max-per-client", "N", "websockets one client address may hold (default 200)",
	 NUM(CONFIG_UINT, max_per_client, 1, 1000000)},
	{"ping-interval", "SECONDS", "ping each websocket this long after its last pong (default 30)",
	 NUM(CONFIG_UINT, ping_interval_s, 1, 3600)},
	{"pong-timeout", "SECONDS", "drop a websocket silent this long after a ping (default 30)",
	 NUM(CONFIG_UINT, pong_timeout_s, 1, 3600)},
	{"http-timeout", "SECONDS", "time allowed for a request's headers and body, and for an\n"
				    "                         idle keep-alive connection (default 10)",
	 NUM(CONFIG_UINT, http_timeout_s, 1, 3600)},
	{"first-byte-timeout", "SECONDS", "a new connection that sends nothing for this long is closed\n"
					  "                         before it holds any server state (default 5)",
	 NUM(CONFIG_UINT, first_byte_timeout_s, 1, 3600)},
	{"max-pending-per-client", "N", "connections one client address may hold that have not sent a\n"
					"                         whole request head; more are closed at accept (default 64;\n"
					"                         trusted-proxies are exempt)",
	 NUM(CONFIG_UINT, max_pending_per_client, 1, 1000000)},
	{"upgrade-rate", "N", "websocket upgrades per second per client address (default 50);\n"
			      "                         more get close 1013", NUM(CONFIG_UINT, upgrade_rate, 1, 1000000)},
	{"upgrade-burst", "N", "upgrades one address may make at once (default 200)",
	 NUM(CONFIG_UINT, upgrade_burst, 1, 1000000)},
	{"ingest-rate", "N", "ingest and webhook requests per second per client address\n"
			     "                         (default 5000); more get 429", NUM(CONFIG_UINT, ingest_rate, 1, 1000000)},
	{"ingest-burst", "N", "ingest requests one address may make at once (default 10000)",
	 NUM(CONFIG_UINT, ingest_burst, 1, 1000000)},
	{"proxy-header", "NAME", "the header a trusted proxy puts the client address in, e.g.\n"
				 "                         X-Forwarded-For (default: none)", CONFIG_SPECIAL, 0, 0, 0},
	{"trusted-proxies", "LIST", "comma-separated proxy addresses whose proxy-header is believed",
	 CONFIG_SPECIAL, 0, 0, 0},
	{"drain-timeout", "SECONDS", "longest wait on SIGTERM for watchers to close and ingest\n"
				     "                         requests to finish (default 10)",
	 NUM(CONFIG_UINT, drain_timeout_s, 1, 3600)},
};

#define CONFIG_N_SETTINGS (sizeof(config_settings) / sizeof(config_settings[0]))

void config_usage(void)
{
	printf("usage: trackgated [--config FILE] [--SETTING VALUE]...\n"
	       "\n"
	       "trackgate's real-time order-tracking gateway: takes courier updates over HTTP,\n"
	       "stores and publishes them through Redis and pushes them to every websocket\n"
	       "watching the order.\n"
	       "\n"
	       "  --config FILE          read settings from FILE: INI lines `setting = value`\n"
	       "                         with the names below minus the leading --, '-' and\n"
	       "                         '_' alike; the command line wins over the file\n");
	for (size_t i = 0; i < CONFIG_N_SETTINGS; i++) {
		char left[64];

		snprintf(left, sizeof(left), "--%s %s", config_settings[i].name, config_settings[i].arg);
		if (strlen(left) > 22)
			printf("  %s\n  %-22s %s\n", left, "", config_settings[i].help);
		else
			printf("  %-22s %s\n", left, config_settings[i].help);
	}
	printf("  --webhook-secret-file PROVIDER=PATH\n"
	       "                         the secret of POST /v1/webhooks/PROVIDER, read from PATH;\n"
	       "                         in the config file: [webhook.PROVIDER] with secret = VALUE\n"
	       "                         or secret-file = PATH.  Providers not configured get 404\n");
	printf("  --token-key-file KID=ALG:PATH\n"
	       "                         a key for tracking-link tokens (ALG HS256: the secret;\n"
	       "                         ES256: a PEM public key); with none, links are unchecked.\n"
	       "                         In the file: [token-key.KID] alg = .., secret-file = ..\n");
	printf("  --check-config         validate the settings, print them (secrets masked) and\n"
	       "                         exit 0, or print what is wrong and exit 1\n");
	printf("  --help                 print this and exit\n"
	       "  --version              print the version and exit\n"
	       "\n"
	       "Signals: SIGINT/SIGTERM stop accepting, close websockets with 1001, finish\n"
	       "in-flight ingest (at most drain-timeout) and exit 0; SIGHUP reloads the TLS\n"
	       "certificate and key.\n"
	       "With workers > 1 the parent forwards them to every worker.\n");
}

void config_defaults(config_t *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->listen_host, sizeof(cfg->listen_host), "127.0.0.1");
	cfg->listen_port = 8080;
	snprintf(cfg->redis_host, sizeof(cfg->redis_host), "127.0.0.1");
	cfg->redis_port = 6379;
	cfg->log_level = LOG_INFO;
	cfg->body_limit = 65536;
	cfg->outq_limit = 262144;
	cfg->send_buffer = 65536;
	cfg->ttl_active = 86400;
	cfg->ttl_terminal = 3600;
	cfg->log_maxlen = 1000;
	cfg->first_byte_timeout_s = 5;
	cfg->max_pending_per_client = 64;
	snprintf(cfg->courier_visible_from, sizeof(cfg->courier_visible_from), "courier_assigned");
	cfg->redis_timeout_ms = 2000;
	cfg->max_connections = 18000;
	cfg->drain_timeout_s = 10;
	cfg->workers = 1;
	cfg->upgrade_rate = 50;
	cfg->upgrade_burst = 200;
	cfg->ingest_rate = 5000; /* a backend posts from one address: be generous */
	cfg->ingest_burst = 10000;
	cfg->slow_timeout_s = 30;
	cfg->max_per_client = 200;
	cfg->ping_interval_s = 30;
	cfg->pong_timeout_s = 30;
	cfg->http_timeout_s = 10;
}

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

	return !host[0] || inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
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
		return "the host must be a plain name (no {s} subdomains): the page's policy names it";
	for (const char *c = url; *c; c++)
		if (*c <= ' ' || *c > '~' || strchr("\"'<>\\`^|", *c))
			return "only URL characters (no spaces, quotes, <, >, \\, `, ^ or |)";
	if (!strstr(url, "{z}") || !strstr(url, "{x}") || !strstr(url, "{y}"))
		return "the template needs {z}, {x} and {y}";
	return NULL;
}

int config_parse_redis(const char *value, config_t *cfg)
{
	if (strncmp(value, "unix://", 7) == 0) {
		const char *path = value + 7;

		if (path[0] != '/' || strlen(path) >= sizeof(cfg->redis_unix))
			return -1;
		snprintf(cfg->redis_unix, sizeof(cfg->redis_unix), "%s", path);
		return 0;
	}
	if (strncmp(value, "redis://", 8) == 0) {
		char host[CONFIG_HOST_MAX];
		int port = 6379;
		const char *hp = value + 8;
		const char *slash = strchr(hp, '/');
		char buf[CONFIG_HOST_MAX];
		size_t len = slash ? (size_t)(slash - hp) : strlen(hp);

		/* A path may only select database 0: trackgate keeps everything there. */
		if (slash && strcmp(slash, "/") != 0 && strcmp(slash, "/0") != 0)
			return -1;
		if (len == 0 || len >= sizeof(buf) || memchr(hp, '@', len))
			return -1;
		memcpy(buf, hp, len);
		buf[len] = '\0';
		if (strchr(buf, ':')) {
			if (config_parse_listen(buf, host, sizeof(host), &port) || !host[0])
				return -1;
		} else {
			snprintf(host, sizeof(host), "%s", buf);
		}
		snprintf(cfg->redis_host, sizeof(cfg->redis_host), "%s", host);
		cfg->redis_port = port;
		cfg->redis_unix[0] = '\0';
		return 0;
	}
	return -1;
}

static const config_setting_t *config_find(const char *name)
{
	char norm[64];
	size_t i;

	for (i = 0; name[i] && i < sizeof(norm) - 1; i++)
		norm[i] = name[i] == '_' ? '-' : name[i];
	norm[i] = '\0';
	for (i = 0; i < CONFIG_N_SETTINGS; i++)
		if (strcmp(config_settings[i].name, norm) == 0)
			return &config_settings[i];
	return NULL;
}

/*
 * Applies one setting.  origin names where it came from ("command line",
 * "FILE:LINE") for the error message.
 */
int config_set(config_t *cfg, const char *name, const char *value, const char *origin)
{
	const config_setting_t *s = config_find(name);
	unsigned long long v;
	const char *why = NULL;

	if (!s) {
		fprintf(stderr, "trackgated: %s: unknown setting '%s' (see --help)\n", origin, name);
		return CONFIG_EINVAL;
	}
	if (!strcmp(s->name, "listen")) {
		if (config_parse_listen(value, cfg->listen_host, sizeof(cfg->listen_host),
					&cfg->listen_port))
			why = "expected HOST:PORT with a port in 1..65535";
		else if (!config_numeric_host(cfg->listen_host))
			why = "expected a numeric address (127.0.0.1, ::1, 0.0.0.0 or *), not a name";
	} else if (!strcmp(s->name, "metrics-listen")) {
		if (config_parse_listen(value, cfg->metrics_host, sizeof(cfg->metrics_host),
					&cfg->metrics_port))
			why = "expected HOST:PORT with a port in 1..65535";
		else if (!config_numeric_host(cfg->metrics_host))
			why = "expected a numeric address (127.0.0.1, ::1, 0.0.0.0 or *), not a name";
	} else if (!strcmp(s->name, "redis")) {
		if (config_parse_redis(value, cfg))
			why = "expected redis://HOST[:PORT] or unix:///ABSOLUTE/PATH";
	} else if (!strcmp(s->name, "ingest-key-file")) {
		if (!*value || strlen(value) >= sizeof(cfg->ingest_key_file))
			why = "expected a file path";
		else
			snprintf(cfg->ingest_key_file, sizeof(cfg->ingest_key_file), "%s", value);
	} else if (!strcmp(s->name, "tls-cert") || !strcmp(s->name, "tls-key")) {
		char *dst = s->name[4] == 'c' ? cfg->tls_cert : cfg->tls_key;

		if (!*value || strlen(value) >= CONFIG_PATH_MAX)
			why = "expected a file path";
		else
			snprintf(dst, CONFIG_PATH_MAX, "%s", value);
	} else if (!strcmp(s->name, "proxy-header")) {
		size_t i;

		for (i = 0; value[i] && i < sizeof(cfg->proxy_header) - 1; i++)
			cfg->proxy_header[i] = (char)tolower((unsigned char)value[i]);
		cfg->proxy_header[i] = '\0';
		if (value[i] || strspn(cfg->proxy_header, "abcdefghijklmnopqrstuvwxyz0123456789-") != i)
			why = "expected a header name";
	} else if (!strcmp(s->name, "trusted-proxies")) {
		char list[1024], *save = NULL;

		snprintf(list, sizeof(list), "%s", value);
		cfg->n_trusted_proxies = 0;
		for (char *a = strtok_r(list, ", ", &save); a; a = strtok_r(NULL, ", ", &save)) {
			if (cfg->n_trusted_proxies == 16 || strlen(a) >= 48 ||
			    !config_numeric_host(a)) {
				why = "at most 16 numeric addresses";
				break;
			}
			snprintf(cfg->trusted_proxies[cfg->n_trusted_proxies++], 48, "%s", a);
		}
	} else if (!strcmp(s->name, "allowed-origins")) {
		char list[4096], *save = NULL;

		snprintf(list, sizeof(list), "%s", value);
		cfg->n_allowed_origins = 0;
		for (char *o = strtok_r(list, ", ", &save); o; o = strtok_r(NULL, ", ", &save)) {
			if (cfg->n_allowed_origins == 16 || strlen(o) >= 256) {
				why = "at most 16 origins of at most 255 bytes";
				break;
			}
			snprintf(cfg->allowed_origins[cfg->n_allowed_origins++], 256, "%s", o);
		}
	} else if (!strcmp(s->name, "page-tile-url")) {
		why = config_tile_url_check(value);
		if (!why)
			snprintf(cfg->page_tile_url, sizeof(cfg->page_tile_url), "%s", value);
	} else if (!strcmp(s->name, "page-tile-attribution")) {
		if (strlen(value) > CONFIG_TILE_ATTR_MAX)
			why = "at most 160 bytes";
		for (const char *c = value; !why && *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				why = "no control characters";
		if (!why)
			snprintf(cfg->page_tile_attribution, sizeof(cfg->page_tile_attribution), "%s",
				 value);
	} else if (!strcmp(s->name, "log-format")) {
		if (!strcmp(value, "text"))
			cfg->log_format = LOG_FORMAT_TEXT;
		else if (!strcmp(value, "json"))
			cfg->log_format = LOG_FORMAT_JSON;
		else
			why = "expected text or json";
	} else if (!strcmp(s->name, "log-level")) {
		if (log_level_parse(value, &cfg->log_level))
			why = "expected error, warn, info or debug";
	} else if (!strcmp(s->name, "courier-visible-from")) {
		proto_status_t st;

		if (proto_status_from_name(value, &st) != 0 || st >= PROTO_STATUS_DELIVERED)
			why = "expected a status from created to at_dropoff";
		else
			snprintf(cfg->courier_visible_from, sizeof(cfg->courier_visible_from), "%s",
				 value);
	} else if (s->kind != CONFIG_SPECIAL) {
		static char range[80];

		if (config_parse_uint(value, s->min, s->max, &v)) {
			snprintf(range, sizeof(range), "expected a whole number in %llu..%llu", s->min,
				 s->max);
			why = range;
		} else if (s->kind == CONFIG_UINT) {
			*(unsigned *)((char *)cfg + s->offset) = (unsigned)v;
		} else {
			*(size_t *)((char *)cfg + s->offset) = (size_t)v;
		}
	}
	if (why) {
		/* The value of a setting is never a secret (keys live in files). */
		fprintf(stderr, "trackgated: %s: bad %s '%s': %s\n", origin, s->name, value, why);
		return CONFIG_EINVAL;
	}
	return CONFIG_OK;
}

typedef struct config_file_ctx {
	config_t *cfg;
	const char *path;
	int failed;
} config_file_ctx_t;

/* The webhook entry of provider, added when missing; NULL (message printed) when invalid. */
static config_webhook_t *config_webhook_slot(config_t *cfg, const char *provider,
					     const char *origin)
{
	if (!adapter_find(provider)) {
		const adapter_ops_t *const *all = adapter_all();

		fprintf(stderr, "trackgated: %s: unknown webhook provider '%s' (known:", origin,
			provider);
		for (size_t i = 0; all[i]; i++)
			fprintf(stderr, " %s", all[i]->name);
		fprintf(stderr, ")\n");
		return NULL;
	}
	for (unsigned i = 0; i < cfg->n_webhooks; i++)
		if (!strcmp(cfg->webhooks[i].provider, provider))
			return &cfg->webhooks[i];
	if (cfg->n_webhooks == CONFIG_WEBHOOKS_MAX) {
		fprintf(stderr, "trackgated: %s: too many webhook providers\n", origin);
		return NULL;
	}
	config_webhook_t *w = &cfg->webhooks[cfg->n_webhooks++];

	memset(w, 0, sizeof(*w));
	snprintf(w->provider, sizeof(w->provider), "%s", provider);
	return w;
}

/* secret = VALUE or secret-file = PATH for provider (the value is never printed). */
static int config_set_webhook(config_t *cfg, const char *provider, const char *name,
			      const char *value, const char *origin)
{
	config_webhook_t *w = config_webhook_slot(cfg, provider, origin);
	size_t len = strlen(value);

	if (!w)
		return CONFIG_EINVAL;
	if (!strcmp(name, "secret")) {
		if (!len || len > CONFIG_SECRET_MAX) {
			fprintf(stderr, "trackgated: %s: [webhook.%s] secret must be 1..%d bytes\n",
				origin, provider, CONFIG_SECRET_MAX);
			return CONFIG_EINVAL;
		}
		memcpy(w->secret, value, len);
		w->secret_len = len;
		w->secret_file[0] = '\0';
		return CONFIG_OK;
	}
	if (!strcmp(name, "secret-file") || !strcmp(name, "secret_file")) {
		if (!len || len >= sizeof(w->secret_file)) {
			fprintf(stderr, "trackgated: %s: [webhook.%s] bad secret-file\n", origin,
				provider);
			return CONFIG_EINVAL;
		}
		snprintf(w->secret_file, sizeof(w->secret_file), "%s", value);
		return CONFIG_OK;
	}
	fprintf(stderr, "trackgated: %s: [webhook.%s] knows secret and secret-file, not '%s'\n",
		origin, provider, name);
	return CONFIG_EINVAL;
}

/* Reads every secret-file; checks each configured webhook has a secret. */
static int config_load_webhook_secrets(config_t *cfg)
{
	for (unsigned i = 0; i < cfg->n_webhooks; i++) {
		config_webhook_t *w = &cfg->webhooks[i];

		if (w->secret_file[0]) {
			FILE *f = fopen(w->secret_file, "rb");
			size_t n;

			if (!f) {
				fprintf(stderr, "trackgated: cannot read the %s webhook secret-file %s: "
						"%s\n", w->provider, w->secret_file, strerror(errno));
				return CONFIG_EINVAL;
			}
			unsigned char buf[CONFIG_SECRET_MAX + 3];

			n = fread(buf, 1, sizeof(buf), f);
			fclose(f);
			/* A trailing newline (echo > file) is not part of the secret. */
			while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
				n--;
			if (n > CONFIG_SECRET_MAX) {
				fprintf(stderr, "trackgated: %s: a webhook secret is at most %d bytes\n",
					w->secret_file, CONFIG_SECRET_MAX);
				return CONFIG_EINVAL;
			}
			memcpy(w->secret, buf, n);
			w->secret_len = n;
		}
		if (!w->secret_len) {
			fprintf(stderr, "trackgated: the %s webhook has no secret (secret or "
					"secret-file)\n", w->provider);
			return CONFIG_EINVAL;
		}
	}
	return CONFIG_OK;
}

const config_webhook_t *config_webhook(const config_t *cfg, const char *provider)
{
	for (unsigned i = 0; i < cfg->n_webhooks; i++)
		if (!strcmp(cfg->webhooks[i].provider, provider))
			return &cfg->webhooks[i];
	return NULL;
}

/* The token key kid, added when missing; NULL (message printed) when full or invalid. */
static auth_key_t *config_token_slot(config_t *cfg, const char *kid, const char *origin)
{
	auth_keys_t *k = &cfg->token_keys;

	if (!kid[0] || strlen(kid) > AUTH_KID_MAX) {
		fprintf(stderr, "trackgated: %s: a token key id is 1..%d bytes\n", origin,
			AUTH_KID_MAX);
		return NULL;
	}
	for (unsigned i = 0; i < k->n; i++)
		if (!strcmp(k->keys[i].kid, kid))
			return &k->keys[i];
	if (k->n == AUTH_KEYS_MAX) {
		fprintf(stderr, "trackgated: %s: at most %d token keys\n", origin, AUTH_KEYS_MAX);
		return NULL;
	}
	memset(&k->keys[k->n], 0, sizeof(k->keys[0]));
	cfg->token_key_files[k->n][0] = '\0';
	snprintf(k->keys[k->n].kid, sizeof(k->keys[0].kid), "%s", kid);
	return &k->keys[k->n++];
}

/* alg = HS256|ES256, secret = VALUE (HS256), secret-file / public-key-file = PATH. */
static int config_set_token_key(config_t *cfg, const char *kid, const char *name,
				const char *value, const char *origin)
{
	auth_key_t *key = config_token_slot(cfg, kid, origin);
	size_t idx;

	if (!key)
		return CONFIG_EINVAL;
	idx = (size_t)(key - cfg->token_keys.keys);
	if (!strcmp(name, "alg")) {
		if (auth_alg_parse(value, &key->alg) == 0)
			return CONFIG_OK;
		fprintf(stderr, "trackgated: %s: [token-key.%s] alg must be HS256 or ES256\n", origin,
			kid);
		return CONFIG_EINVAL;
	}
	if (!strcmp(name, "secret")) {
		size_t len = strlen(value);

		if (!len || len > AUTH_KEY_MAX) {
			fprintf(stderr, "trackgated: %s: [token-key.%s] bad secret length\n", origin,
				kid);
			return CONFIG_EINVAL;
		}
		memcpy(key->key, value, len);
		key->key_len = len;
		return CONFIG_OK;
	}
	if (!strcmp(name, "secret-file") || !strcmp(name, "public-key-file") ||
	    !strcmp(name, "secret_file") || !strcmp(name, "public_key_file")) {
		if (!*value || strlen(value) >= CONFIG_PATH_MAX)
			return CONFIG_EINVAL;
		snprintf(cfg->token_key_files[idx], CONFIG_PATH_MAX, "%s", value);
		return CONFIG_OK;
	}
	fprintf(stderr, "trackgated: %s: [token-key.%s] knows alg, secret, secret-file and "
			"public-key-file, not '%s'\n", origin, kid, name);
	return CONFIG_EINVAL;
}

/* Reads the token key files and checks each key has material. */
static int config_load_token_keys(config_t *cfg)
{
	for (unsigned i = 0; i < cfg->token_keys.n; i++) {
		auth_key_t *k = &cfg->token_keys.keys[i];
		const char *path = cfg->token_key_files[i];

		if (path[0]) {
			unsigned char buf[AUTH_KEY_MAX + 3];
			FILE *f = fopen(path, "rb");
			size_t n;

			if (!f) {
				fprintf(stderr, "trackgated: cannot read the key file of token key %s, "
						"%s: %s\n", k->kid, path, strerror(errno));
				return CONFIG_EINVAL;
			}
			n = fread(buf, 1, sizeof(buf), f);
			fclose(f);
			/* An HS secret loses its trailing newline; a PEM keeps its text. */
			while (k->alg == AUTH_HS256 && n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
				n--;
			if (n > AUTH_KEY_MAX) {
				fprintf(stderr, "trackgated: %s: a token key is at most %d bytes\n", path,
					AUTH_KEY_MAX);
				return CONFIG_EINVAL;
			}
			memcpy(k->key, buf, n);
			k->key_len = n;
		}
		if (!k->key_len) {
			fprintf(stderr, "trackgated: token key %s has no key material\n", k->kid);
			return CONFIG_EINVAL;
		}
		if (k->alg == AUTH_ES256 && !memmem(k->key, k->key_len, "PUBLIC KEY", 10)) {
			fprintf(stderr, "trackgated: token key %s: ES256 wants a PEM public key\n",
				k->kid);
			return CONFIG_EINVAL;
		}
		if (k->alg == AUTH_HS256 && k->key_len < 32) {
			fprintf(stderr, "trackgated: token key %s: an HS256 secret must be at least 32 "
					"bytes\n", k->kid);
			return CONFIG_EINVAL;
		}
	}
	return CONFIG_OK;
}

bool config_origin_ok(const config_t *cfg, const char *origin)
{
	if (!cfg->n_allowed_origins)
		return true;
	if (!origin)
		return false;
	for (unsigned i = 0; i < cfg->n_allowed_origins; i++)
		if (!strcmp(cfg->allowed_origins[i], origin))
			return true;
	return false;
}

static int config_ini_handler(void *user, const char *section, const char *name, const char *value)
{
	config_file_ctx_t *fc = user;
	const char *origin = fc->path;

	if (section && !strncmp(section, "token-key.", 10)) {
		if (config_set_token_key(fc->cfg, section + 10, name, value, origin)) {
			fc->failed = 1;
			return 0;
		}
		return 1;
	}

	if (section && !strncmp(section, "webhook.", 8)) {
		if (config_set_webhook(fc->cfg, section + 8, name, value, origin)) {
			fc->failed = 1;
			return 0;
		}
		return 1;
	}
	if (section && *section && strcmp(section, "trackgated") != 0) {
		fprintf(stderr, "trackgated: %s: unknown section [%s] (use [trackgated] or "
				"[webhook.PROVIDER])\n", origin, section);
		fc->failed = 1;
		return 0;
	}
	if (config_set(fc->cfg, name, value, origin)) {
		fc->failed = 1;
		return 0;
	}
	return 1;
}

static int config_load_file(config_t *cfg, const char *path)
{
	config_file_ctx_t fc = {.cfg = cfg, .path = path};
	int rc = ini_parse(path, config_ini_handler, &fc);

	if (rc == -1) {
		fprintf(stderr, "trackgated: cannot read config file %s: %s\n", path, strerror(errno));
		return CONFIG_EINVAL;
	}
	if (fc.failed)
		return CONFIG_EINVAL;
	if (rc > 0) {
		fprintf(stderr, "trackgated: %s:%d: not a `setting = value` line\n", path, rc);
		return CONFIG_EINVAL;
	}
	if (rc < 0) {
		fprintf(stderr, "trackgated: cannot parse config file %s\n", path);
		return CONFIG_EINVAL;
	}
	return CONFIG_OK;
}

/* Trims ASCII whitespace from both ends in place. */
static char *config_trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
		*--end = '\0';
	return s;
}

int config_load_keys(config_t *cfg)
{
	char line[1024];
	FILE *f;
	int lineno = 0, rc = CONFIG_OK;

	cfg->n_ingest_keys = 0;
	if (!cfg->ingest_key_file[0]) {
		fprintf(stderr, "trackgated: no ingest-key-file set: POST /v1/updates needs at "
				"least one key (see --help)\n");
		return CONFIG_EINVAL;
	}
	f = fopen(cfg->ingest_key_file, "r");
	if (!f) {
		fprintf(stderr, "trackgated: cannot read ingest-key-file %s: %s\n",
			cfg->ingest_key_file, strerror(errno));
		return CONFIG_EINVAL;
	}
	while (fgets(line, sizeof(line), f)) {
		char *key = config_trim(line);
		size_t len = strlen(key);

		lineno++;
		if (!len || key[0] == '#')
			continue;
		/* The message names the line, never the key. */
		if (len < CONFIG_INGEST_KEY_MIN || len > CONFIG_INGEST_KEY_MAX) {
			fprintf(stderr, "trackgated: %s:%d: a key must be %d..%d bytes long\n",
				cfg->ingest_key_file, lineno, CONFIG_INGEST_KEY_MIN,
				CONFIG_INGEST_KEY_MAX);
			rc = CONFIG_EINVAL;
			goto out;
		}
		for (size_t i = 0; i < len; i++) {
			if (key[i] < 0x21 || key[i] > 0x7e) {
				fprintf(stderr, "trackgated: %s:%d: a key must be printable ASCII "
						"without spaces\n", cfg->ingest_key_file, lineno);
				rc = CONFIG_EINVAL;
				goto out;
			}
		}
		if (cfg->n_ingest_keys == CONFIG_INGEST_KEYS_MAX) {
			fprintf(stderr, "trackgated: %s: more than %d keys\n", cfg->ingest_key_file,
				CONFIG_INGEST_KEYS_MAX);
			rc = CONFIG_EINVAL;
			goto out;
		}
		memcpy(cfg->ingest_keys[cfg->n_ingest_keys], key, len + 1);
		cfg->ingest_key_len[cfg->n_ingest_keys] = len;
		cfg->n_ingest_keys++;
	}
	if (!cfg->n_ingest_keys) {
		fprintf(stderr, "trackgated: %s holds no key\n", cfg->ingest_key_file);
		rc = CONFIG_EINVAL;
	}
out:
	fclose(f);
	return rc;
}

int config_ingest_key_ok(const config_t *cfg, const char *key, size_t len)
{
	int found = 0;

	/* Compare against every key, each in time independent of the content. */
	for (unsigned k = 0; k < cfg->n_ingest_keys; k++) {
		const char *want = cfg->ingest_keys[k];
		size_t wlen = cfg->ingest_key_len[k];
		unsigned char diff = (unsigned char)(wlen != len);

		for (size_t i = 0; i < wlen; i++)
			diff |= (unsigned char)(want[i] ^ (i < len ? key[i] : 0));
		found |= diff == 0;
	}
	return found;
}

int config_load(config_t *cfg, int argc, char **argv)
{
	struct option opts[CONFIG_N_SETTINGS + 7];
	const char *config_path = NULL;
	int rc, c, idx;
	size_t i;

	for (i = 0; i < CONFIG_N_SETTINGS; i++)
		opts[i] = (struct option){config_settings[i].name, required_argument, NULL, 0};
	opts[i++] = (struct option){"config", required_argument, NULL, 'c'};
	opts[i++] = (struct option){"webhook-secret-file", required_argument, NULL, 'w'};
	opts[i++] = (struct option){"check-config", no_argument, NULL, 'k'};
	opts[i++] = (struct option){"token-key-file", required_argument, NULL, 't'};
	opts[i++] = (struct option){"help", no_argument, NULL, 'h'};
	opts[i++] = (struct option){"version", no_argument, NULL, 'V'};
	opts[i] = (struct option){NULL, 0, NULL, 0};

	/* First pass: find --config, --help, --version; the file goes under the command line. */
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
		if (c == 'h') {
			config_usage();
			return CONFIG_EXIT_OK;
		}
		if (c == 'V') {
			printf("trackgated %s\n", TRACKGATE_VERSION);
			return CONFIG_EXIT_OK;
		}
		if (c == 'c')
			config_path = optarg;
		if (c == 'k')
			cfg->check_only = true;
		if (c == '?') {
			fprintf(stderr, "trackgated: bad option '%s' (see --help)\n", argv[optind - 1]);
			return CONFIG_EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "trackgated: unexpected argument '%s' (see --help)\n", argv[optind]);
		return CONFIG_EINVAL;
	}
	if (config_path) {
		if (strlen(config_path) >= sizeof(cfg->config_file)) {
			fprintf(stderr, "trackgated: config path too long\n");
			return CONFIG_EINVAL;
		}
		snprintf(cfg->config_file, sizeof(cfg->config_file), "%s", config_path);
		rc = config_load_file(cfg, config_path);
		if (rc)
			return rc;
	}

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
		if (c == 0 && config_set(cfg, opts[idx].name, optarg, "command line"))
			return CONFIG_EINVAL;
		if (c == 't') {
			/* KID=ALG:PATH */
			char kid[AUTH_KID_MAX + 1], alg[8];
			const char *eq = strchr(optarg, '='), *colon = eq ? strchr(eq, ':') : NULL;

			if (!eq || !colon || eq == optarg || (size_t)(eq - optarg) > AUTH_KID_MAX ||
			    (size_t)(colon - eq - 1) >= sizeof(alg)) {
				fprintf(stderr, "trackgated: --token-key-file wants KID=HS256:PATH or "
						"KID=ES256:PATH\n");
				return CONFIG_EINVAL;
			}
			memcpy(kid, optarg, (size_t)(eq - optarg));
			kid[eq - optarg] = '\0';
			memcpy(alg, eq + 1, (size_t)(colon - eq - 1));
			alg[colon - eq - 1] = '\0';
			if (config_set_token_key(cfg, kid, "alg", alg, "command line") ||
			    config_set_token_key(cfg, kid, "secret-file", colon + 1, "command line"))
				return CONFIG_EINVAL;
		}
		if (c == 'w') {
			char provider[33];
			const char *eq = strchr(optarg, '=');

			if (!eq || eq == optarg || (size_t)(eq - optarg) >= sizeof(provider)) {
				fprintf(stderr, "trackgated: --webhook-secret-file wants PROVIDER=PATH\n");
				return CONFIG_EINVAL;
			}
			memcpy(provider, optarg, (size_t)(eq - optarg));
			provider[eq - optarg] = '\0';
			if (config_set_webhook(cfg, provider, "secret-file", eq + 1, "command line"))
				return CONFIG_EINVAL;
		}
	}
	rc = config_load_keys(cfg);
	if (rc)
		return rc;
	rc = config_load_token_keys(cfg);
	if (rc)
		return rc;
	if (!cfg->tls_cert[0] != !cfg->tls_key[0]) {
		fprintf(stderr, "trackgated: tls-cert and tls-key go together\n");
		return CONFIG_EINVAL;
	}
	for (int t = 0; t < 2 && cfg->tls_cert[0]; t++) {
		const char *path = t ? cfg->tls_key : cfg->tls_cert;
		FILE *f = fopen(path, "r");

		if (!f) {
			fprintf(stderr, "trackgated: cannot read %s %s: %s\n", t ? "tls-key" : "tls-cert",
				path, strerror(errno));
			return CONFIG_EINVAL;
		}
		fclose(f);
	}
	return config_load_webhook_secrets(cfg);
}

void config_print(const config_t *cfg, FILE *out)
{
	fprintf(out, "listen = %s%s%s:%d\n", strchr(cfg->listen_host, ':') ? "[" : "",
		cfg->listen_host[0] ? cfg->listen_host : "*", strchr(cfg->listen_host, ':') ? "]" : "",
		cfg->listen_port);
	if (cfg->metrics_port)
		fprintf(out, "metrics-listen = %s:%d\n",
			cfg->metrics_host[0] ? cfg->metrics_host : "*", cfg->metrics_port);
	if (cfg->redis_unix[0])
		fprintf(out, "redis = unix://%s\n", cfg->redis_unix);
	else
		fprintf(out, "redis = redis://%s:%d\n", cfg->redis_host, cfg->redis_port);
	fprintf(out, "ingest-key-file = %s  # %u key(s), masked\n", cfg->ingest_key_file,
		cfg->n_ingest_keys);
	if (cfg->tls_cert[0])
		fprintf(out, "tls-cert = %s\ntls-key = %s\n", cfg->tls_cert, cfg->tls_key);
	fprintf(out, "log-level = %s\n", log_level_name(cfg->log_level));
	fprintf(out, "log-format = %s\n", cfg->log_format == LOG_FORMAT_JSON ? "json" : "text");
	fprintf(out, "courier-visible-from = %s\n", cfg->courier_visible_from);
	for (size_t i = 0; i < CONFIG_N_SETTINGS; i++) {
		const config_setting_t *st = &config_settings[i];

		if (st->kind == CONFIG_UINT)
			fprintf(out, "%s = %u\n", st->name,
				*(const unsigned *)((const char *)cfg + st->offset));
		else if (st->kind == CONFIG_SIZE)
			fprintf(out, "%s = %zu\n", st->name,
				*(const size_t *)((const char *)cfg + st->offset));
	}
	if (cfg->page_tile_url[0])
		fprintf(out, "page-tile-url = %s\n", cfg->page_tile_url);
	if (cfg->page_tile_attribution[0])
		fprintf(out, "page-tile-attribution = %s\n", cfg->page_tile_attribution);
	if (cfg->n_allowed_origins) {
		fprintf(out, "allowed-origins =");
		for (unsigned i = 0; i < cfg->n_allowed_origins; i++)
			fprintf(out, "%s%s", i ? ", " : " ", cfg->allowed_origins[i]);
		fprintf(out, "\n");
	}
	for (unsigned i = 0; i < cfg->token_keys.n; i++) {
		const auth_key_t *k = &cfg->token_keys.keys[i];

		fprintf(out, "[token-key.%s]\nalg = %s\n", k->kid,
			k->alg == AUTH_HS256 ? "HS256" : "ES256");
		if (cfg->token_key_files[i][0])
			fprintf(out, "%s = %s  # %zu bytes, masked\n",
				k->alg == AUTH_HS256 ? "secret-file" : "public-key-file",
				cfg->token_key_files[i], k->key_len);
		else
			fprintf(out, "secret = ********  # %zu bytes\n", k->key_len);
	}
	for (unsigned i = 0; i < cfg->n_webhooks; i++) {
		const config_webhook_t *w = &cfg->webhooks[i];

		fprintf(out, "[webhook.%s]\n", w->provider);
		if (w->secret_file[0])
			fprintf(out, "secret-file = %s  # %zu bytes, masked\n", w->secret_file,
				w->secret_len);
		else
			fprintf(out, "secret = ********  # %zu bytes\n", w->secret_len);
	}
}
