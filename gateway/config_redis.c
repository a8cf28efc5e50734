/*
 * config_redis.c - the redis setting: redis://HOST[:PORT], unix:///PATH, or
 * redis+sentinel://IP:PORT[,IP:PORT...]/MASTER, where trackgated asks the
 * Sentinels which server is MASTER's primary (broker_sentinel.c) and
 * follows it across failovers.
 */
#include "config_private.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* IP:PORT,IP:PORT.../MASTER: numeric addresses (no name to resolve), a master name of
 * [A-Za-z0-9._-]{1,63}. */
static int config_parse_sentinel(const char *v, config_t *cfg)
{
	config_sentinel_t *st = &cfg->redis_sentinel;
	const char *slash = strrchr(v, '/'), *at = v;
	unsigned char addr[sizeof(struct in6_addr)];

	if (!slash || !slash[1] || strlen(slash + 1) >= sizeof(st->master) ||
	    strspn(slash + 1,
		   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
		strlen(slash + 1))
		return -1;
	while (at < slash) {
		const char *end = memchr(at, ',', (size_t)(slash - at));
		size_t len = (size_t)((end ? end : slash) - at);
		char buf[CONFIG_HOST_MAX], host[CONFIG_HOST_MAX];
		int port = 0;

		if (st->n == CONFIG_SENTINELS_MAX || !len || len >= sizeof(buf))
			return -1;
		memcpy(buf, at, len);
		buf[len] = '\0';
		/* The port is required: 26379 is only a convention. */
		if (config_parse_listen(buf, host, sizeof(host), &port) || !host[0] ||
		    strlen(host) >= sizeof(st->host[0]) ||
		    (inet_pton(AF_INET, host, addr) != 1 && inet_pton(AF_INET6, host, addr) != 1))
			return -1;
		config_copy(st->host[st->n], sizeof(st->host[0]), host);
		st->port[st->n++] = port;
		at = end ? end + 1 : slash;
		if (end && at == slash)
			return -1; /* a trailing comma: an empty address */
	}
	if (!st->n)
		return -1;
	config_copy(st->master, sizeof(st->master), slash + 1);
	memset(cfg->redis_host, 0, sizeof(cfg->redis_host));
	memset(cfg->redis_unix, 0, sizeof(cfg->redis_unix));
	cfg->redis_port = 0;
	return 0;
}

int config_parse_redis(const char *value, config_t *cfg)
{
	memset(&cfg->redis_sentinel, 0, sizeof(cfg->redis_sentinel));
	if (strncmp(value, "redis+sentinel://", 17) == 0)
		return config_parse_sentinel(value + 17, cfg);
	if (strncmp(value, "unix://", 7) == 0) {
		const char *path = value + 7;

		if (path[0] != '/' || strlen(path) >= sizeof(cfg->redis_unix))
			return -1;
		config_copy(cfg->redis_unix, sizeof(cfg->redis_unix), path);
		return 0;
	}
	if (strncmp(value, "redis://", 8) == 0) {
		char host[CONFIG_HOST_MAX];
		int port = 6379;
		const char *hp = value + 8;
		const char *slash = strchr(hp, '/');
		char buf[CONFIG_HOST_MAX + 8]; /* HOST and :PORT, so that what is printed loads */
		size_t len = slash ? (size_t)(slash - hp) : strlen(hp);

		/* A path may only select database 0: trackgate keeps everything there. */
		if (slash && strcmp(slash, "/") != 0 && strcmp(slash, "/0") != 0)
			return -1;
		if (len == 0 || len >= sizeof(buf) || memchr(hp, '@', len))
			return -1;
		memcpy(buf, hp, len);
		buf[len] = '\0';
		/*
		 * listen's any-address (* or 0.0.0.0) is no host to connect to:
		 * refused with a port (config_parse_listen makes it "") and so
		 * without one too, or --check-config would print a redis line
		 * that does not load back.
		 */
		if (strchr(buf, ':')) {
			unsigned char a6[sizeof(struct in6_addr)];

			/* HOST:PORT: a host with a ':' is an IPv6 address or nothing
			 * (fuzz_config_parse: "[2:7..]2222:6" was taken as host
			 * "2:7..]2222" and printed back in brackets, which does not load). */
			if (config_parse_listen(buf, host, sizeof(host), &port) || !host[0] ||
			    (strchr(host, ':')
				 ? inet_pton(AF_INET6, host, a6) != 1
				 : strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
						"qrstuvwxyz0123456789.-_") != strlen(host)))
				return -1;
		} else if (len >= CONFIG_HOST_MAX || !strcmp(buf, "*") || !strcmp(buf, "0.0.0.0") ||
			   strspn(buf, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				       "0123456789.-_") != len) {
			/* A host name or an IPv4 address; brackets only around an IPv6 address
			 * with its port (fuzz_config_parse: "redis://[2]0]" printed back as
			 * "[2]0]:6379", which loads as host "2]0"). */
			return -1;
		} else {
			memcpy(host, buf, len + 1); /* len < CONFIG_HOST_MAX, checked above */
		}
		config_copy(cfg->redis_host, sizeof(cfg->redis_host), host);
		cfg->redis_port = port;
		memset(cfg->redis_unix, 0, sizeof(cfg->redis_unix));
		return 0;
	}
	return -1;
}

void config_print_redis(const config_t *cfg, const config_setting_t *s, FILE *out)
{
	const config_sentinel_t *st = &cfg->redis_sentinel;

	(void)s;
	if (st->n) {
		fprintf(out, "redis = redis+sentinel://");
		for (unsigned i = 0; i < st->n; i++) {
			bool v6 = strchr(st->host[i], ':') != NULL;

			fprintf(out, "%s%s%s%s:%d", i ? "," : "", v6 ? "[" : "", st->host[i],
				v6 ? "]" : "", st->port[i]);
		}
		fprintf(out, "/%s\n", st->master);
	} else if (cfg->redis_unix[0])
		fprintf(out, "redis = unix://%s\n", cfg->redis_unix);
	else
		config_print_hostport(out, "redis = redis://", cfg->redis_host, cfg->redis_port);
}

const char *config_parse_redis_url(config_t *cfg, const config_setting_t *s, const char *v)
{
	(void)s;
	return config_parse_redis(v, cfg)
		   ? "expected redis://HOST[:PORT], unix:///ABSOLUTE/PATH or "
		     "redis+sentinel://IP:PORT[,IP:PORT...]/MASTER (numeric IPs, at most 8)"
		   : NULL;
}
