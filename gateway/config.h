/*
 * config.h - trackgated's settings: defaults, the config file (INI, parsed
 * by libinih), the command line, validation and the ingest key file.
 *
 * Every setting has one name, used as `--name` on the command line and as
 * `name = value` in the config file (dashes or underscores alike).  The
 * command line wins over the file.  One table in settings.c holds every
 * setting with its parser, its printer, its default, its --help text and
 * how SIGHUP treats it; config_set, --help, --check-config, the defaults
 * and config_apply_reload all come from it.  config.c reads the files and
 * the command line, synchronously: at start-up, and by a reload in the
 * thread pool.
 */
#ifndef TRACKGATE_CONFIG_H
#define TRACKGATE_CONFIG_H

#include <stddef.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "log.h"

#define CONFIG_HOST_MAX 256
#define CONFIG_PATH_MAX 1024
#define CONFIG_INGEST_KEYS_MAX 16
#define CONFIG_INGEST_KEY_MIN 16 /* bytes; shorter keys are refused */
#define CONFIG_INGEST_KEY_MAX 256

#define CONFIG_WEBHOOKS_MAX 16
#define CONFIG_SECRET_MAX 1024

/* A provider's webhook secret: inline in the config file, or read from a file. */
typedef struct config_webhook {
	char provider[33];
	char secret_file[CONFIG_PATH_MAX];	 /* "" when inline */
	unsigned char secret[CONFIG_SECRET_MAX]; /* secret, never logged */
	size_t secret_len;
	/* header = NAME: where the provider puts its credential, lower case; "" = the
	 * adapter's own (DoorDash Drive lets the merchant choose the header's name). */
	char header[64];
} config_webhook_t;

#define CONFIG_POLLS_MAX 4
#define CONFIG_URL_MAX 512
#define CONFIG_ID_MAX 128

/*
 * A provider's API polled for its couriers' positions ([poll.PROVIDER], config_poll.c).
 * Which credential fields a provider takes is its own: Uber Direct client-id, customer-id,
 * scope and client-secret-file (OAuth2 client credentials, token-url); DoorDash Drive
 * developer-id, key-id and signing-secret-file (a self-minted JWT); Onfleet api-key-file.
 */
typedef struct config_poll {
	char provider[33];
	char base_url[CONFIG_URL_MAX];	/* the API, without a trailing '/' */
	char token_url[CONFIG_URL_MAX]; /* uber_direct: the OAuth2 token endpoint */
	char client_id[CONFIG_ID_MAX + 1];
	char customer_id[CONFIG_ID_MAX + 1];
	char scope[CONFIG_ID_MAX + 1];
	char developer_id[CONFIG_ID_MAX + 1];
	char key_id[CONFIG_ID_MAX + 1];
	char secret_file[CONFIG_PATH_MAX];  /* client-secret-file, signing-secret-file, api-key-file
					     */
	char ca_file[CONFIG_PATH_MAX];	    /* "" = the system's CA store */
	char secret[CONFIG_SECRET_MAX + 1]; /* read from secret_file; never logged */
	size_t secret_len;
	unsigned interval_ms;	     /* each watched order polled once per interval */
	unsigned budget;	     /* requests per second for the whole group */
	unsigned timeout_ms;	     /* one whole request */
	unsigned connect_timeout_ms; /* its connect + TLS handshake */
	unsigned lease_ms;	     /* the order's poll lease; 0 = max(3 x interval, 2 s) */
} config_poll_t;

#define CONFIG_TILE_URL_MAX 255	 /* page-tile-url */
#define CONFIG_TILE_ATTR_MAX 160 /* page-tile-attribution */

#define CONFIG_SENTINELS_MAX 8

/* redis+sentinel://IP:PORT[,...]/MASTER: where the primary is asked for (n = 0: not used). */
typedef struct config_sentinel {
	char host[CONFIG_SENTINELS_MAX][48]; /* numeric IPv4 or IPv6 addresses */
	int port[CONFIG_SENTINELS_MAX];
	unsigned n;
	char master[64];
} config_sentinel_t;

typedef struct config {
	char listen_host[CONFIG_HOST_MAX]; /* "" or "*" = all addresses */
	int listen_port;
	char metrics_host[CONFIG_HOST_MAX]; /* metrics-listen: GET /metrics only there */
	int metrics_port;		    /* 0 = /metrics on the main address */

	/* redis: either TCP host:port or a unix socket path */
	char redis_host[CONFIG_HOST_MAX];
	int redis_port;
	char redis_unix[CONFIG_PATH_MAX]; /* non-empty = use the unix socket */
	config_sentinel_t redis_sentinel; /* n > 0: the primary is the Sentinels' MASTER */

	char ingest_key_file[CONFIG_PATH_MAX];
	char tls_cert[CONFIG_PATH_MAX]; /* PEM certificate chain; "" = plain HTTP */
	char tls_key[CONFIG_PATH_MAX];	/* PEM private key */
	char config_file[CONFIG_PATH_MAX];
	log_level_t log_level;
	log_format_t log_format;
	bool check_only; /* --check-config: validate, print, exit */

	size_t body_limit;	       /* bytes of one POST body */
	size_t outq_limit;	       /* bytes queued for one watcher before it is closed */
	size_t send_buffer;	       /* SO_SNDBUF of accepted sockets; 0 = kernel autotuning */
	unsigned ttl_active;	       /* seconds an order's keys live while active */
	unsigned ttl_terminal;	       /* ... once delivered/cancelled/returned/failed */
	unsigned log_maxlen;	       /* entries kept in an order's log stream */
	char courier_visible_from[24]; /* the status from which the courier's position is shown */
	unsigned redis_timeout_ms;     /* connect timeout of each Redis connection */
	unsigned max_connections;      /* sockets this process serves at once */
	unsigned drain_timeout_s;      /* longest graceful stop */
	unsigned workers;	       /* processes sharing the port; 1 = this process serves */
	unsigned stall_timeout_s;      /* a worker whose loop stalls this long is restarted */
	unsigned slow_timeout_s;       /* longest a watcher's queue may stay undrained */
	unsigned max_per_client;       /* websockets per client address */
	unsigned ping_interval_s;      /* ping a websocket idle this long */
	unsigned pong_timeout_s;       /* then close it when nothing came back in this long */
	unsigned http_timeout_s;       /* headers + body of a request; idle keep-alive */
	unsigned
	    first_byte_timeout_s; /* a new connection that sends nothing is closed after this */
	unsigned max_pending_per_client; /* connections one address may hold before a whole request
					    head */
	unsigned upgrade_rate, upgrade_burst; /* websocket upgrades per second per address */
	unsigned ingest_rate, ingest_burst;   /* ingest/webhook requests per second per address */
	unsigned webhook_replay_window_s;     /* a signed webhook time may be this far off */
	char proxy_header[64];		      /* e.g. "x-forwarded-for"; "" = none */
	char trusted_proxies[16][48];	      /* peers whose proxy_header is believed */
	unsigned n_trusted_proxies;

	/* loaded from ingest_key_file; secret, never logged */
	char ingest_keys[CONFIG_INGEST_KEYS_MAX][CONFIG_INGEST_KEY_MAX + 1];
	size_t ingest_key_len[CONFIG_INGEST_KEYS_MAX];
	unsigned n_ingest_keys;

	/* [token-key.KID] sections and --token-key-file KID=ALG:PATH: tracking-link keys */
	auth_keys_t token_keys;
	char token_key_files[AUTH_KEYS_MAX][CONFIG_PATH_MAX]; /* "" when inline */

	/* allowed-origins: websocket Origin values accepted; none = any */
	char allowed_origins[16][256];
	unsigned n_allowed_origins;

	/* the tracking page (GET /t/{ID}): map tiles under it, when configured */
	char page_tile_url[CONFIG_TILE_URL_MAX + 1]; /* "" = a plain map without tiles */
	char page_tile_attribution[CONFIG_TILE_ATTR_MAX + 1];

	/* [webhook.PROVIDER] sections and --webhook-secret-file PROVIDER=PATH */
	config_webhook_t webhooks[CONFIG_WEBHOOKS_MAX];
	unsigned n_webhooks;

	/* [poll.PROVIDER] sections and --poll PROVIDER.KEY=VALUE */
	config_poll_t polls[CONFIG_POLLS_MAX];
	unsigned n_polls;
} config_t;

/* What SIGHUP does with a new value of a setting (the reload column of the table). */
typedef enum config_reload {
	CONFIG_RELOAD_RESTART = 0, /* nothing: a new value takes a restart */
	CONFIG_RELOAD_LIVE,	   /* applied, with the files it names read again */
	CONFIG_RELOAD_FILES,	   /* its files are read again, at the path given at start */
	CONFIG_RELOAD_NONE,	   /* not a setting: an action of the command line (--help) */
} config_reload_t;

/* One row of the settings table, as tests and documentation checks see it. */
typedef struct config_setting_info {
	const char *name; /* --name, and name = in the file unless cli_only */
	const char *arg;  /* the value's name in --help; NULL when it takes none */
	const char *def;  /* the default as a value; NULL when there is none */
	config_reload_t reload;
	bool cli_only; /* command line only (in the file: a section, or nothing) */
} config_setting_info_t;

enum {
	CONFIG_OK = 0,
	CONFIG_EXIT_OK = 1, /* --help or --version was printed: exit 0 */
	CONFIG_EINVAL = -1, /* a bad setting; the message was printed */
};

void config_defaults(config_t *cfg);

/*
 * Parses the command line and the config file it names (--config), then
 * validates everything and loads the key file.  On error prints one clear
 * line on stderr naming the setting and returns CONFIG_EINVAL.
 */
int config_load(config_t *cfg, int argc, char **argv);

/*
 * From now on this thread's configuration errors (each "trackgated: ..."
 * line config_load would print) go into buf[len] instead of stderr, the
 * newest last and cut to fit, until config_capture_errors(NULL, 0).  For a
 * SIGHUP's re-read, whose failure is logged as one event with its reason.
 */
void config_capture_errors(char *buf, size_t len);

/* Individual steps, for tests. */
int config_set(config_t *cfg, const char *name, const char *value, const char *origin);
int config_parse_listen(const char *value, char *host, size_t host_len, int *port);
int config_parse_redis(const char *value, config_t *cfg);
int config_load_keys(config_t *cfg);
/* NULL when url is a usable page-tile-url template, else why not. */
const char *config_tile_url_check(const char *url);

/* True when origin (the Origin header, or NULL) may open a websocket: with
 * allowed-origins set, a listed one, or none at all (not a browser). */
bool config_origin_ok(const config_t *cfg, const char *origin);

/* The configured webhook of provider, or NULL (not configured: 404). */
const config_webhook_t *config_webhook(const config_t *cfg, const char *provider);

/* The polled provider's settings, or NULL (not polled). */
const config_poll_t *config_poll(const config_t *cfg, const char *provider);

/* Constant-time comparison of a presented key against the configured ones. */
int config_ingest_key_ok(const config_t *cfg, const char *key, size_t len);

/* The i-th row of the settings table, in --help order; NULL past the last. */
const config_setting_info_t *config_setting_info(size_t i);

/* Prints --help: every row of the table, then what the signals do. */
void config_usage(void);

/*
 * Prints the effective settings as a config file that loads back to the same
 * configuration: `name = value` lines, then the [webhook.*] and
 * [token-key.*] sections.  Secrets are never printed: an inline one becomes
 * a comment (so that file fails to load until it is put back), a secret in a
 * file is printed as its path.
 */
void config_print(const config_t *cfg, FILE *out);

/*
 * A SIGHUP's swap, on the loop: copies from fresh (a config_load of the same
 * command line) into live the settings whose reload is CONFIG_RELOAD_LIVE,
 * with the keys and secrets read from their files.  Writes into unapplied
 * (when len > 0) the comma-separated names of the other settings whose value
 * differs and so waits for a restart, or "".  Returns whether a live setting
 * (a key, a secret, an origin) changed.
 */
bool config_apply_reload(config_t *live, const config_t *fresh, char *unapplied, size_t len);

#endif
