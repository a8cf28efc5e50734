/*
 * config_poll.c - the [poll.PROVIDER] sections (and --poll
 * PROVIDER.KEY=VALUE): which providers' APIs trackgated polls for couriers'
 * positions, where, how often, within which budget, and with which
 * credentials.  Secrets come from files only, read with the other keys at
 * start-up (config_load); they are never printed or logged.
 *
 * The providers that can be polled, their production URLs and default
 * budgets are poll_parse.c's table (what each provider documents).
 */
#include "config_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "poll/poll_auth.h"
#include "poll/poll_parse.h"

/* The credential keys of a provider, the secret file's key last (NULL-terminated). */
static const char *const poll_keys_uber[] = {"token-url", "client-id",		"customer-id",
					     "scope",	  "client-secret-file", NULL};
static const char *const poll_keys_doordash[] = {"developer-id", "key-id", "signing-secret-file",
						 NULL};
static const char *const poll_keys_onfleet[] = {"api-key-file", NULL};

static const char *const *poll_provider_keys(const char *provider)
{
	if (!strcmp(provider, "uber_direct"))
		return poll_keys_uber;
	if (!strcmp(provider, "doordash_drive"))
		return poll_keys_doordash;
	return poll_keys_onfleet;
}

/* The name of provider's secret-file key. */
static const char *poll_secret_key(const char *provider)
{
	const char *const *k = poll_provider_keys(provider);

	while (k[1])
		k++;
	return *k;
}

const config_poll_t *config_poll(const config_t *cfg, const char *provider)
{
	for (unsigned i = 0; provider && i < cfg->n_polls; i++)
		if (!strcmp(cfg->polls[i].provider, provider))
			return &cfg->polls[i];
	return NULL;
}

/* provider's section, added with its defaults when missing; NULL (message printed) when invalid. */
static config_poll_t *config_poll_slot(config_t *cfg, const char *provider, const char *origin)
{
	const poll_parser_t *pp = poll_parser_find(provider);
	config_poll_t *p;

	if (!pp) {
		const poll_parser_t *const *all = poll_parser_all();

		config_err("trackgated: %s: [poll.%s]: not a provider trackgated can poll (known:",
			   origin, provider);
		for (size_t i = 0; all[i]; i++)
			config_err(" %s", all[i]->provider);
		config_err(")\n");
		return NULL;
	}
	p = (config_poll_t *)config_poll(cfg, provider);
	if (p)
		return p;
	if (cfg->n_polls == CONFIG_POLLS_MAX) {
		config_err("trackgated: %s: too many [poll.*] sections\n", origin);
		return NULL;
	}
	p = &cfg->polls[cfg->n_polls++];
	memset(p, 0, sizeof(*p));
	config_copy(p->provider, sizeof(p->provider), provider);
	config_copy(p->base_url, sizeof(p->base_url), pp->base_url);
	if (!strcmp(provider, "uber_direct")) {
		config_copy(p->token_url, sizeof(p->token_url),
			    "https://auth.uber.com/oauth/v2/token");
		config_copy(p->scope, sizeof(p->scope), "eats.deliveries");
	}
	p->interval_ms = 2000;
	p->budget = pp->budget;
	p->timeout_ms = 5000;
	p->connect_timeout_ms = 2000;
	return p;
}

/* An http(s) URL without spaces or a trailing '/' into dst (size CONFIG_URL_MAX); NULL or why not.
 */
static const char *poll_url(char *dst, const char *value)
{
	size_t len = strlen(value);

	if (strncmp(value, "https://", 8) && strncmp(value, "http://", 7))
		return "must be an http:// or https:// URL";
	if (len >= CONFIG_URL_MAX || len <= 8)
		return "must be 9..511 characters";
	for (size_t i = 0; i < len; i++)
		if (value[i] <= 0x20 || value[i] >= 0x7f)
			return "must be printable ASCII without spaces";
	while (len && value[len - 1] == '/')
		len--;
	memset(dst, 0, CONFIG_URL_MAX);
	memcpy(dst, value, len);
	return NULL;
}

/* An id (client-id, ...): 1..128 printable ASCII characters, no quote or backslash. */
static const char *poll_id(char *dst, const char *value)
{
	size_t len = strlen(value);

	if (!len || len > CONFIG_ID_MAX)
		return "must be 1..128 characters";
	for (size_t i = 0; i < len; i++)
		if (value[i] <= 0x20 || value[i] >= 0x7f || value[i] == '"' || value[i] == '\\' ||
		    value[i] == '/')
			return "must be printable ASCII without spaces, '/', quotes or backslashes";
	config_copy(dst, CONFIG_ID_MAX + 1, value);
	return NULL;
}

static const char *poll_number(unsigned *dst, const char *value, unsigned long min,
			       unsigned long max)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(value, &end, 10);
	if (errno || end == value || *end || *value == '-' || n < min || n > max)
		return "out of range";
	*dst = (unsigned)n;
	return NULL;
}

static bool poll_key_known(const char *provider, const char *name)
{
	for (const char *const *k = poll_provider_keys(provider); *k; k++)
		if (!strcmp(*k, name))
			return true;
	return false;
}

int config_set_poll(config_t *cfg, const char *provider, const char *name_in, const char *value,
		    const char *origin)
{
	config_poll_t *p = config_poll_slot(cfg, provider, origin);
	const char *why = NULL, *range = "";
	char name[32];
	size_t i;

	if (!p)
		return CONFIG_EINVAL;
	for (i = 0; name_in[i] && i < sizeof(name) - 1; i++)
		name[i] = name_in[i] == '_' ? '-' : name_in[i];
	name[i] = '\0';
	if (!strcmp(name, "base-url")) {
		why = poll_url(p->base_url, value);
	} else if (!strcmp(name, "interval-ms")) {
		why = poll_number(&p->interval_ms, value, 100, 3600000);
		range = " (100..3600000)";
	} else if (!strcmp(name, "budget")) {
		why = poll_number(&p->budget, value, 1, 1000);
		range = " (1..1000 requests per second)";
	} else if (!strcmp(name, "timeout-ms")) {
		why = poll_number(&p->timeout_ms, value, 100, 600000);
		range = " (100..600000)";
	} else if (!strcmp(name, "connect-timeout-ms")) {
		why = poll_number(&p->connect_timeout_ms, value, 100, 600000);
		range = " (100..600000)";
	} else if (!strcmp(name, "lease-ms")) {
		why = poll_number(&p->lease_ms, value, 300, 3600000);
		range = " (300..3600000)";
	} else if (!strcmp(name, "ca-file")) {
		if (!*value || strlen(value) >= sizeof(p->ca_file))
			why = "must be a path";
		else
			config_copy(p->ca_file, sizeof(p->ca_file), value);
	} else if (!poll_key_known(provider, name)) {
		config_err("trackgated: %s: [poll.%s] knows base-url, interval-ms, budget, "
			   "timeout-ms, connect-timeout-ms, lease-ms, ca-file",
			   origin, provider);
		for (const char *const *k = poll_provider_keys(provider); *k; k++)
			config_err(", %s", *k);
		config_err(", not '%s'\n", name_in);
		return CONFIG_EINVAL;
	} else if (!strcmp(name, "token-url")) {
		why = poll_url(p->token_url, value);
	} else if (!strcmp(name, "client-id")) {
		why = poll_id(p->client_id, value);
	} else if (!strcmp(name, "customer-id")) {
		why = poll_id(p->customer_id, value);
	} else if (!strcmp(name, "scope")) {
		why = poll_id(p->scope, value);
	} else if (!strcmp(name, "developer-id")) {
		why = poll_id(p->developer_id, value);
	} else if (!strcmp(name, "key-id")) {
		why = poll_id(p->key_id, value);
	} else {
		/* The secret's file (poll_secret_key): the secret itself is never inline. */
		if (!*value || strlen(value) >= sizeof(p->secret_file))
			why = "must be a path";
		else
			config_copy(p->secret_file, sizeof(p->secret_file), value);
	}
	if (why) {
		/* None of these values is a secret (the secret is in a file). */
		config_err("trackgated: %s: [poll.%s] bad %s '%.200s': %s%s\n", origin, provider,
			   name, value, why, range);
		return CONFIG_EINVAL;
	}
	return CONFIG_OK;
}

/* Reads p's secret file into p->secret; a trailing newline is not part of it. */
static int config_poll_secret(config_poll_t *p)
{
	FILE *f = fopen(p->secret_file, "rb");
	char buf[CONFIG_SECRET_MAX + 3];
	size_t n;

	if (!f) {
		config_err("trackgated: [poll.%s] cannot read %s %s: %s\n", p->provider,
			   poll_secret_key(p->provider), p->secret_file, strerror(errno));
		return CONFIG_EINVAL;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (!n || n > CONFIG_SECRET_MAX || memchr(buf, '\0', n)) {
		config_err("trackgated: [poll.%s] %s %s: the secret must be 1..%d bytes of text\n",
			   p->provider, poll_secret_key(p->provider), p->secret_file,
			   CONFIG_SECRET_MAX);
		return CONFIG_EINVAL;
	}
	memset(p->secret, 0, sizeof(p->secret));
	memcpy(p->secret, buf, n);
	p->secret_len = n;
	return CONFIG_OK;
}

int config_load_polls(config_t *cfg)
{
	for (unsigned i = 0; i < cfg->n_polls; i++) {
		config_poll_t *p = &cfg->polls[i];
		const char *missing = NULL;

		if (!strcmp(p->provider, "uber_direct"))
			missing = !p->client_id[0]     ? "client-id"
				  : !p->customer_id[0] ? "customer-id"
						       : NULL;
		else if (!strcmp(p->provider, "doordash_drive"))
			missing = !p->developer_id[0] ? "developer-id"
				  : !p->key_id[0]     ? "key-id"
						      : NULL;
		if (!missing && !p->secret_file[0])
			missing = poll_secret_key(p->provider);
		if (missing) {
			config_err("trackgated: [poll.%s] needs %s\n", p->provider, missing);
			return CONFIG_EINVAL;
		}
		if (p->timeout_ms < p->connect_timeout_ms) {
			config_err(
			    "trackgated: [poll.%s] timeout-ms (the whole request) is shorter "
			    "than connect-timeout-ms\n",
			    p->provider);
			return CONFIG_EINVAL;
		}
		if (config_poll_secret(p))
			return CONFIG_EINVAL;
		if (!strcmp(p->provider, "onfleet")) {
			char basic[CONFIG_SECRET_MAX * 2];

			/* What HTTP Basic cannot carry (a ':', a control byte) is refused here,
			 * where --check-config sees it, not when the poller starts. */
			if (poll_onfleet_authorization(p->secret, basic, sizeof(basic)) < 0) {
				config_err("trackgated: [poll.onfleet] api-key-file %s: the key "
					   "cannot be sent as HTTP Basic (no ':' or control "
					   "characters)\n",
					   p->secret_file);
				return CONFIG_EINVAL;
			}
			explicit_bzero(basic, sizeof(basic));
		}
	}
	return CONFIG_OK;
}

/* One line "key = value" when value is set. */
static void poll_line(FILE *out, const char *key, const char *value)
{
	if (value[0])
		fprintf(out, "%s = %s\n", key, value);
}

const char *config_parse_poll_arg(config_t *cfg, const config_setting_t *s, const char *v)
{
	const char *dot = strchr(v, '.'), *eq = dot ? strchr(dot, '=') : NULL;
	char provider[33], key[32];

	(void)s;
	if (!dot || !eq || dot == v || (size_t)(dot - v) >= sizeof(provider) || eq == dot + 1 ||
	    (size_t)(eq - dot - 1) >= sizeof(key))
		return "expected PROVIDER.KEY=VALUE";
	memcpy(provider, v, (size_t)(dot - v));
	provider[dot - v] = '\0';
	memcpy(key, dot + 1, (size_t)(eq - dot - 1));
	key[eq - dot - 1] = '\0';
	return config_set_poll(cfg, provider, key, eq + 1, "command line") ? config_printed : NULL;
}

void config_print_polls(const config_t *cfg, const config_setting_t *s, FILE *out)
{
	(void)s;
	for (unsigned i = 0; i < cfg->n_polls; i++) {
		const config_poll_t *p = &cfg->polls[i];

		fprintf(out, "[poll.%s]\n", p->provider);
		poll_line(out, "base-url", p->base_url);
		fprintf(out,
			"interval-ms = %u\nbudget = %u\ntimeout-ms = %u\n"
			"connect-timeout-ms = %u\n",
			p->interval_ms, p->budget, p->timeout_ms, p->connect_timeout_ms);
		if (p->lease_ms)
			fprintf(out, "lease-ms = %u\n", p->lease_ms);
		poll_line(out, "ca-file", p->ca_file);
		if (poll_key_known(p->provider, "token-url"))
			poll_line(out, "token-url", p->token_url);
		poll_line(out, "client-id", p->client_id);
		poll_line(out, "customer-id", p->customer_id);
		if (poll_key_known(p->provider, "scope"))
			poll_line(out, "scope", p->scope);
		poll_line(out, "developer-id", p->developer_id);
		poll_line(out, "key-id", p->key_id);
		if (p->secret_file[0])
			fprintf(out, "# %zu bytes, masked\n%s = %s\n", p->secret_len,
				poll_secret_key(p->provider), p->secret_file);
	}
}
