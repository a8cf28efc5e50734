/*
 * ws/clients.c - websockets per client address: one row per address holding
 * websockets here, freed at zero; an address holds at most max-per-client.
 */
#include "ws_private.h"

#include <stdio.h>
#include <stdlib.h>

#include <uthash.h>

#include "conn.h"
#include "log.h"

typedef struct ws_client {
	UT_hash_handle hh;
	unsigned n;
	char addr[48];
} ws_client_t;

int ws_client_acquire(ws_session_t *s, struct lws *wsi)
{
	ws_t *ws = s->ws;
	ws_client_t *c = NULL;
	char addr[48];

	conn_client_address(ws->cfg, wsi, addr, sizeof(addr));
	HASH_FIND_STR(ws->clients, addr, c);
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return -1;
		snprintf(c->addr, sizeof(c->addr), "%s", addr);
		HASH_ADD_STR(ws->clients, addr, c);
	}
	if (c->n >= ws->cfg->max_per_client) {
		log_event(LOG_WARN, "connection_refused", "reason=max_per_client client=%s", addr);
		if (!c->n) {
			HASH_DEL(ws->clients, c);
			free(c);
		}
		return -1;
	}
	c->n++;
	s->client = c;
	return 0;
}

void ws_client_release(ws_session_t *s)
{
	ws_client_t *c = s->client;

	if (!c)
		return;
	s->client = NULL;
	if (--c->n == 0) {
		HASH_DEL(s->ws->clients, c);
		free(c);
	}
}

void ws_free(ws_t *ws)
{
	ws_client_t *c, *tmp;

	HASH_ITER(hh, ws->clients, c, tmp)
	{
		HASH_DEL(ws->clients, c);
		free(c);
	}
}
