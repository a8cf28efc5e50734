/*
 * conn.c - the client's address, the local port, the rate limit of an lws
 * connection (conn.h).
 */
#include "conn.h"

#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <libwebsockets.h>

#include "log.h"

/*
 * Whether wsi came in on the metrics-listen address: its socket's local
 * port (one getsockname, only when metrics-listen is set).
 */
bool conn_on_metrics_port(const config_t *cfg, struct lws *wsi)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int port = 0;

	if (!cfg->metrics_port ||
	    getsockname(lws_get_socket_fd(wsi), (struct sockaddr *)&ss, &len) != 0)
		return false;
	if (ss.ss_family == AF_INET)
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	else if (ss.ss_family == AF_INET6)
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return port == cfg->metrics_port;
}

/* --- the client's address -------------------------------------------------- */

static bool conn_trusted_proxy(const config_t *cfg, const char *addr)
{
	for (unsigned i = 0; i < cfg->n_trusted_proxies; i++)
		if (!strcmp(cfg->trusted_proxies[i], addr))
			return true;
	return false;
}

/*
 * The address limits and logs are about: the peer, or, when the peer is a
 * trusted proxy, the rightmost address of proxy-header that is not itself a
 * trusted proxy (the leftmost ones are the client's own claims).
 */
void conn_client_address(const config_t *cfg, struct lws *wsi, char *out, size_t len)
{
	char hdr[512], key[80];
	int n;

	if (!lws_get_peer_simple(wsi, out, len))
		snprintf(out, len, "?");
	if (!strncmp(out, "::ffff:", 7))
		memmove(out, out + 7, strlen(out + 7) + 1);
	if (!cfg->proxy_header[0] || !conn_trusted_proxy(cfg, out))
		return;
	if (!strcmp(cfg->proxy_header, "x-forwarded-for")) {
		n = lws_hdr_copy(wsi, hdr, sizeof(hdr), WSI_TOKEN_X_FORWARDED_FOR);
	} else if (!strcmp(cfg->proxy_header, "x-real-ip")) {
		n = lws_hdr_copy(wsi, hdr, sizeof(hdr), WSI_TOKEN_HTTP_X_REAL_IP);
	} else {
		n = snprintf(key, sizeof(key), "%s:", cfg->proxy_header);
		n = lws_hdr_custom_copy(wsi, hdr, sizeof(hdr), key, n);
	}
	while (n > 0) {
		char *comma = memrchr(hdr, ',', (size_t)n), *a = comma ? comma + 1 : hdr;
		unsigned char bin[16];

		while (*a == ' ')
			a++;
		for (char *e = hdr + n; e > a && e[-1] == ' '; e--)
			e[-1] = '\0';
		hdr[n] = '\0';
		if ((inet_pton(AF_INET, a, bin) == 1 || inet_pton(AF_INET6, a, bin) == 1) &&
		    !conn_trusted_proxy(cfg, a)) {
			/* A numeric address: at most 45 bytes, well inside out. */
			size_t l = strnlen(a, len - 1);

			memcpy(out, a, l);
			out[l] = '\0';
			return;
		}
		if (!comma)
			return;
		n = (int)(comma - hdr);
	}
}

bool conn_rate_ok(const config_t *cfg, ratelimit_t *rates, metrics_t *m, struct lws *wsi,
		  ratelimit_kind_t kind, uint64_t now_ms, unsigned *retry_s)
{
	char addr[64];

	conn_client_address(cfg, wsi, addr, sizeof(addr));
	if (ratelimit_take(rates, addr, kind, now_ms, retry_s))
		return true;
	m->refused[REFUSE_RATE]++;
	log_event(LOG_INFO, "rate_limited", "client=%s kind=%s", addr,
		  kind == RATELIMIT_UPGRADE ? "upgrade" : "ingest");
	return false;
}


int conn_query(struct lws *wsi, query_t *q, char *buf, size_t cap)
{
	size_t used = 0;

	query_init(q);
	for (int idx = 0;; idx++) {
		int n = used < cap ? lws_hdr_copy_fragment(wsi, buf + used, (int)(cap - used),
							   WSI_TOKEN_HTTP_URI_ARGS, idx) : -1;

		if (n < 0) {
			/* Past the last fragment, or one that did not fit. */
			return lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, idx) > 0 ? -1 : 0;
		}
		query_add(q, buf + used, (size_t)n);
		used += (size_t)n + 1;
	}
}
