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

#include "client_addr.h"
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

void conn_client_address(const config_t *cfg, struct lws *wsi, char *out, size_t len)
{
	char peer[64], hdr[CLIENT_ADDR_HEADER_MAX], key[80];
	const char *value = NULL;
	int n = -1;

	if (!lws_get_peer_simple(wsi, peer, sizeof(peer)))
		peer[0] = '\0';
	switch (client_addr_header_of(cfg->proxy_header)) {
	case CLIENT_ADDR_HEADER_X_FORWARDED_FOR:
		n = lws_hdr_copy(wsi, hdr, sizeof(hdr), WSI_TOKEN_X_FORWARDED_FOR);
		break;
	case CLIENT_ADDR_HEADER_X_REAL_IP:
		n = lws_hdr_copy(wsi, hdr, sizeof(hdr), WSI_TOKEN_HTTP_X_REAL_IP);
		break;
	case CLIENT_ADDR_HEADER_CUSTOM:
		n = snprintf(key, sizeof(key), "%s:", cfg->proxy_header);
		n = lws_hdr_custom_copy(wsi, hdr, sizeof(hdr), key, n);
		break;
	case CLIENT_ADDR_HEADER_NONE:
		break;
	}
	if (n >= 0)
		value = hdr;
	client_addr(peer[0] ? peer : NULL, value, cfg->trusted_proxies, cfg->n_trusted_proxies, out,
		    len);
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
							   WSI_TOKEN_HTTP_URI_ARGS, idx)
				   : -1;

		if (n < 0) {
			/* Past the last fragment, or one that did not fit. */
			return lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, idx) > 0 ? -1
											      : 0;
		}
		query_add(q, buf + used, (size_t)n);
		used += (size_t)n + 1;
	}
}
