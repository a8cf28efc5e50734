/*
 * config.c - loading the configuration (config.h): the command line and
 * the config file it names, applied through the settings table
 * (settings.c); the [webhook.*] and [token-key.*] sections; validation
 * across settings; the ingest key file and the webhook and token key files;
 * --help, --check-config and SIGHUP's swap, each a walk over the table.
 */
#include "config_private.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <ini.h>

#include "adapter.h"

#ifndef TRACKGATE_VERSION
#define TRACKGATE_VERSION "dev"
#endif

/* The error buffer of this thread's config_capture_errors, or NULL: stderr. */
static _Thread_local char *config_err_buf;
static _Thread_local size_t config_err_len;

void config_capture_errors(char *buf, size_t len)
{
	config_err_buf = len ? buf : NULL;
	config_err_len = len;
	if (config_err_buf)
		buf[0] = '\0';
}

void config_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (!config_err_buf) {
		vfprintf(stderr, fmt, ap);
	} else {
		size_t used = strlen(config_err_buf);

		if (used + 1 < config_err_len)
			vsnprintf(config_err_buf + used, config_err_len - used, fmt, ap);
	}
	va_end(ap);
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

		config_err("trackgated: %s: unknown webhook provider '%s' (known:", origin,
			   provider);
		for (size_t i = 0; all[i]; i++)
			config_err(" %s", all[i]->name);
		config_err(")\n");
		return NULL;
	}
	for (unsigned i = 0; i < cfg->n_webhooks; i++)
		if (!strcmp(cfg->webhooks[i].provider, provider))
			return &cfg->webhooks[i];
	if (cfg->n_webhooks == CONFIG_WEBHOOKS_MAX) {
		config_err("trackgated: %s: too many webhook providers\n", origin);
		return NULL;
	}
	config_webhook_t *w = &cfg->webhooks[cfg->n_webhooks++];

	memset(w, 0, sizeof(*w));
	snprintf(w->provider, sizeof(w->provider), "%s", provider);
	return w;
}

/* secret = VALUE, secret-file = PATH (the secret is never printed) or header = NAME for provider.
 */
int config_set_webhook(config_t *cfg, const char *provider, const char *name, const char *value,
		       const char *origin)
{
	config_webhook_t *w = config_webhook_slot(cfg, provider, origin);
	size_t len = strlen(value);

	if (!w)
		return CONFIG_EINVAL;
	if (!strcmp(name, "secret")) {
		if (!len || len > CONFIG_SECRET_MAX) {
			config_err("trackgated: %s: [webhook.%s] secret must be 1..%d bytes\n",
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
			config_err("trackgated: %s: [webhook.%s] bad secret-file\n", origin,
				   provider);
			return CONFIG_EINVAL;
		}
		snprintf(w->secret_file, sizeof(w->secret_file), "%s", value);
		return CONFIG_OK;
	}
	if (!strcmp(name, "header")) {
		/* An HTTP field name (RFC 9110 5.1: a token), kept lower case as lws looks it up.
		 */
		if (!len || len >= sizeof(w->header) ||
		    strspn(value, "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz") != len) {
			config_err("trackgated: %s: [webhook.%s] header must be a header name of "
				   "1..%zu characters\n",
				   origin, provider, sizeof(w->header) - 1);
			return CONFIG_EINVAL;
		}
		for (size_t i = 0; i <= len; i++)
			w->header[i] = (char)tolower((unsigned char)value[i]);
		return CONFIG_OK;
	}
	config_err("trackgated: %s: [webhook.%s] knows secret, secret-file and header, not '%s'\n",
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
				config_err("trackgated: cannot read the %s webhook secret-file %s: "
					   "%s\n",
					   w->provider, w->secret_file, strerror(errno));
				return CONFIG_EINVAL;
			}
			unsigned char buf[CONFIG_SECRET_MAX + 3];

			n = fread(buf, 1, sizeof(buf), f);
			fclose(f);
			/* A trailing newline (echo > file) is not part of the secret. */
			while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
				n--;
			if (n > CONFIG_SECRET_MAX) {
				config_err("trackgated: %s: a webhook secret is at most %d bytes\n",
					   w->secret_file, CONFIG_SECRET_MAX);
				return CONFIG_EINVAL;
			}
			memcpy(w->secret, buf, n);
			w->secret_len = n;
		}
		if (!w->secret_len) {
			config_err("trackgated: the %s webhook has no secret (secret or "
				   "secret-file)\n",
				   w->provider);
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
		config_err("trackgated: %s: a token key id is 1..%d bytes\n", origin, AUTH_KID_MAX);
		return NULL;
	}
	for (unsigned i = 0; i < k->n; i++)
		if (!strcmp(k->keys[i].kid, kid))
			return &k->keys[i];
	if (k->n == AUTH_KEYS_MAX) {
		config_err("trackgated: %s: at most %d token keys\n", origin, AUTH_KEYS_MAX);
		return NULL;
	}
	memset(&k->keys[k->n], 0, sizeof(k->keys[0]));
	cfg->token_key_files[k->n][0] = '\0';
	snprintf(k->keys[k->n].kid, sizeof(k->keys[0].kid), "%s", kid);
	return &k->keys[k->n++];
}

/* alg = HS256|ES256, secret = VALUE (HS256), secret-file / public-key-file = PATH. */
int config_set_token_key(config_t *cfg, const char *kid, const char *name, const char *value,
			 const char *origin)
{
	auth_key_t *key = config_token_slot(cfg, kid, origin);
	size_t idx;

	if (!key)
		return CONFIG_EINVAL;
	idx = (size_t)(key - cfg->token_keys.keys);
	if (!strcmp(name, "alg")) {
		if (auth_alg_parse(value, &key->alg) == 0)
			return CONFIG_OK;
		config_err("trackgated: %s: [token-key.%s] alg must be HS256 or ES256\n", origin,
			   kid);
		return CONFIG_EINVAL;
	}
	if (!strcmp(name, "secret")) {
		size_t len = strlen(value);

		if (!len || len > AUTH_KEY_MAX) {
			config_err("trackgated: %s: [token-key.%s] bad secret length\n", origin,
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
		config_copy(cfg->token_key_files[idx], CONFIG_PATH_MAX, value);
		return CONFIG_OK;
	}
	config_err("trackgated: %s: [token-key.%s] knows alg, secret, secret-file and "
		   "public-key-file, not '%s'\n",
		   origin, kid, name);
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
				config_err("trackgated: cannot read the key file of token key %s, "
					   "%s: %s\n",
					   k->kid, path, strerror(errno));
				return CONFIG_EINVAL;
			}
			n = fread(buf, 1, sizeof(buf), f);
			fclose(f);
			/* An HS secret loses its trailing newline; a PEM keeps its text. */
			while (k->alg == AUTH_HS256 && n &&
			       (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
				n--;
			if (n > AUTH_KEY_MAX) {
				config_err("trackgated: %s: a token key is at most %d bytes\n",
					   path, AUTH_KEY_MAX);
				return CONFIG_EINVAL;
			}
			memcpy(k->key, buf, n);
			k->key_len = n;
		}
		if (!k->key_len) {
			config_err("trackgated: token key %s has no key material\n", k->kid);
			return CONFIG_EINVAL;
		}
		if (k->alg == AUTH_ES256 && !memmem(k->key, k->key_len, "PUBLIC KEY", 10)) {
			config_err("trackgated: token key %s: ES256 wants a PEM public key\n",
				   k->kid);
			return CONFIG_EINVAL;
		}
		if (k->alg == AUTH_HS256 && k->key_len < 32) {
			config_err("trackgated: token key %s: an HS256 secret must be at least 32 "
				   "bytes\n",
				   k->kid);
			return CONFIG_EINVAL;
		}
	}
	return CONFIG_OK;
}

/* Prints text's words from column col on, wrapped before column 80 to column indent. */
static void config_wrap(const char *text, size_t indent, size_t col)
{
	bool first = true;

	while (*text) {
		size_t n = strcspn(text, " ");

		if (!first && col + 1 + n > 79) {
			printf("\n%*s", (int)indent, "");
			col = indent;
		} else if (!first) {
			putchar(' ');
			col++;
		}
		printf("%.*s", (int)n, text);
		col += n;
		first = false;
		text += n;
		text += strspn(text, " ");
	}
	putchar('\n');
}

/* "a, b and c": the names of the settings whose reload is r. */
static void config_names(char *buf, size_t len, config_reload_t r)
{
	size_t n = 0, k = 0, used = 0;

	for (size_t i = 0; i < config_n_settings; i++)
		n += config_settings[i].info.reload == r;
	buf[0] = '\0';
	for (size_t i = 0; i < config_n_settings && used < len; i++)
		if (config_settings[i].info.reload == r)
			used += (size_t)snprintf(buf + used, len - used, "%s%s",
						 !k++	  ? ""
						 : k == n ? " and "
							  : ", ",
						 config_settings[i].info.name);
}

void config_usage(void)
{
	char live[256], files[256], text[1024];

	printf("usage: trackgated [--config FILE] [--SETTING VALUE]...\n"
	       "\n"
	       "trackgate's real-time order-tracking gateway: takes courier updates over HTTP,\n"
	       "stores and publishes them through Redis and pushes them to every websocket\n"
	       "watching the order.\n"
	       "\n");
	for (size_t i = 0; i < config_n_settings; i++) {
		const config_setting_t *s = &config_settings[i];
		char left[64];

		snprintf(left, sizeof(left), "--%s%s%s", s->info.name, s->info.arg ? " " : "",
			 s->info.arg ? s->info.arg : "");
		if (strlen(left) > 22)
			printf("  %s\n%25s", left, "");
		else
			printf("  %-22s ", left);
		if (s->parse == config_parse_number)
			snprintf(text, sizeof(text), "%s (%llu..%llu, default %s)", s->help, s->min,
				 s->max, s->info.def);
		else if (s->info.def)
			snprintf(text, sizeof(text), "%s (default %s)", s->help, s->info.def);
		else
			snprintf(text, sizeof(text), "%s", s->help);
		config_wrap(text, 25, 25);
	}
	config_names(live, sizeof(live), CONFIG_RELOAD_LIVE);
	config_names(files, sizeof(files), CONFIG_RELOAD_FILES);
	snprintf(text, sizeof(text),
		 "Signals: SIGINT/SIGTERM stop accepting, close websockets with 1001, finish "
		 "in-flight ingest (at most drain-timeout) and exit 0. SIGHUP reloads without "
		 "dropping a connection: it reads the command line and the config file again, and "
		 "when they are valid applies %s, keys and secrets read again; it reads the files "
		 "of %s again at their start-up paths. Other settings take a restart. With "
		 "workers > 1 the parent forwards the signals to every worker.",
		 live, files);
	putchar('\n');
	config_wrap(text, 0, 0);
}

void config_print(const config_t *cfg, FILE *out)
{
	for (size_t i = 0; i < config_n_settings; i++)
		if (config_settings[i].print)
			config_settings[i].print(cfg, &config_settings[i], out);
}

bool config_apply_reload(config_t *live, const config_t *fresh, char *unapplied, size_t len)
{
	size_t used = 0;
	bool changed = false;

	if (len)
		unapplied[0] = '\0';
	for (size_t i = 0; i < config_n_settings; i++) {
		const config_setting_t *s = &config_settings[i];
		bool differs = false;

		for (size_t f = 0; f < 4 && s->field[f].len; f++) {
			char *to = FIELD(live, s, f);
			const char *from = CFIELD(fresh, s, f);

			if (s->info.reload == CONFIG_RELOAD_LIVE) {
				changed |= memcmp(to, from, s->field[f].len) != 0;
				memcpy(to, from, s->field[f].len);
			} else if (memcmp(to, from, s->field[f].len)) {
				differs = true;
			}
		}
		if (differs && s->info.reload != CONFIG_RELOAD_NONE && used + 1 < len)
			used += (size_t)snprintf(unapplied + used, len - used, "%s%s",
						 used ? "," : "", s->info.name);
	}
	return changed;
}

bool config_origin_ok(const config_t *cfg, const char *origin)
{
	/* No Origin header: not a browser (a native app, trackgate-watch), which the origin
	 * check cannot be about; the token is what guards those (RFC 6455 10.2). */
	if (!cfg->n_allowed_origins || !origin)
		return true;
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
	if (section && !strncmp(section, "poll.", 5)) {
		if (config_set_poll(fc->cfg, section + 5, name, value, origin)) {
			fc->failed = 1;
			return 0;
		}
		return 1;
	}
	if (section && *section && strcmp(section, "trackgated") != 0) {
		config_err("trackgated: %s: unknown section [%s] (use [trackgated], "
			   "[webhook.PROVIDER], [poll.PROVIDER] or [token-key.KID])\n",
			   origin, section);
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
		config_err("trackgated: cannot read config file %s: %s\n", path, strerror(errno));
		return CONFIG_EINVAL;
	}
	if (fc.failed)
		return CONFIG_EINVAL;
	if (rc > 0) {
		config_err("trackgated: %s:%d: not a `setting = value` line\n", path, rc);
		return CONFIG_EINVAL;
	}
	if (rc < 0) {
		config_err("trackgated: cannot parse config file %s\n", path);
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
		config_err("trackgated: no ingest-key-file set: POST /v1/updates needs at "
			   "least one key (see --help)\n");
		return CONFIG_EINVAL;
	}
	f = fopen(cfg->ingest_key_file, "r");
	if (!f) {
		config_err("trackgated: cannot read ingest-key-file %s: %s\n", cfg->ingest_key_file,
			   strerror(errno));
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
			config_err("trackgated: %s:%d: a key must be %d..%d bytes long\n",
				   cfg->ingest_key_file, lineno, CONFIG_INGEST_KEY_MIN,
				   CONFIG_INGEST_KEY_MAX);
			rc = CONFIG_EINVAL;
			goto out;
		}
		for (size_t i = 0; i < len; i++) {
			if (key[i] < 0x21 || key[i] > 0x7e) {
				config_err("trackgated: %s:%d: a key must be printable ASCII "
					   "without spaces\n",
					   cfg->ingest_key_file, lineno);
				rc = CONFIG_EINVAL;
				goto out;
			}
		}
		if (cfg->n_ingest_keys == CONFIG_INGEST_KEYS_MAX) {
			config_err("trackgated: %s: more than %d keys\n", cfg->ingest_key_file,
				   CONFIG_INGEST_KEYS_MAX);
			rc = CONFIG_EINVAL;
			goto out;
		}
		memcpy(cfg->ingest_keys[cfg->n_ingest_keys], key, len + 1);
		cfg->ingest_key_len[cfg->n_ingest_keys] = len;
		cfg->n_ingest_keys++;
	}
	if (!cfg->n_ingest_keys) {
		config_err("trackgated: %s holds no key\n", cfg->ingest_key_file);
		rc = CONFIG_EINVAL;
	}
out:
	fclose(f);
	return rc;
}

int config_ingest_key_ok(const config_t *cfg, const char *key, size_t len)
{
	int found = 0;

	/* Compare against every key, each in time independent of the content (the length leaks). */
	for (unsigned k = 0; k < cfg->n_ingest_keys; k++)
		found |= cfg->ingest_key_len[k] == len &&
			 CRYPTO_memcmp(cfg->ingest_keys[k], key, len) == 0;
	return found;
}

int config_load(config_t *cfg, int argc, char **argv)
{
	struct option opts[CONFIG_SETTINGS_MAX + 1];
	int rc, c, idx;

	for (size_t i = 0; i < config_n_settings; i++)
		opts[i] = (struct option){
		    config_settings[i].info.name,
		    config_settings[i].info.arg ? required_argument : no_argument, NULL, 0};
	opts[config_n_settings] = (struct option){NULL, 0, NULL, 0};

	/*
	 * Two passes: the first takes --config, --check-config, --help and
	 * --version, the second everything else, after the file: the command
	 * line wins over it.
	 */
	for (int pass = 0; pass < 2; pass++) {
		opterr = 0;
		optind = 1;
		while ((c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
			const config_setting_t *s;

			if (c == '?') {
				config_err("trackgated: bad option '%s' (see --help)\n",
					   argv[optind - 1]);
				return CONFIG_EINVAL;
			}
			s = &config_settings[idx];
			if (s->early != !pass)
				continue;
			if (!s->parse) {
				if (!strcmp(s->info.name, "help"))
					config_usage();
				else
					printf("trackgated %s\n", TRACKGATE_VERSION);
				return CONFIG_EXIT_OK;
			}
			if (config_apply(cfg, s, optarg, "command line"))
				return CONFIG_EINVAL;
		}
		if (optind < argc) {
			config_err("trackgated: unexpected argument '%s' (see --help)\n",
				   argv[optind]);
			return CONFIG_EINVAL;
		}
		if (!pass && cfg->config_file[0] && (rc = config_load_file(cfg, cfg->config_file)))
			return rc;
	}
	rc = config_load_keys(cfg);
	if (rc)
		return rc;
	rc = config_load_token_keys(cfg);
	if (rc)
		return rc;
	if (!cfg->tls_cert[0] != !cfg->tls_key[0]) {
		config_err("trackgated: tls-cert and tls-key go together\n");
		return CONFIG_EINVAL;
	}
	for (int t = 0; t < 2 && cfg->tls_cert[0]; t++) {
		const char *path = t ? cfg->tls_key : cfg->tls_cert;
		FILE *f = fopen(path, "r");

		if (!f) {
			config_err("trackgated: cannot read %s %s: %s\n",
				   t ? "tls-key" : "tls-cert", path, strerror(errno));
			return CONFIG_EINVAL;
		}
		fclose(f);
	}
	rc = config_load_webhook_secrets(cfg);
	if (rc)
		return rc;
	return config_load_polls(cfg);
}
