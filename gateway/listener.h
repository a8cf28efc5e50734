/*
 * listener.h - trackgated's listening socket, owned by the gateway rather
 * than by lws.
 *
 * The gateway binds exactly the configured address (lws 4.1.6 turned an
 * IPv4 address into a wildcard IPv6 socket), sets SO_REUSEPORT when several
 * workers share the port (lws 4.1.6 sets it only with several service
 * threads, which Debian's build does not have), accepts on the loop and
 * hands each socket to lws with lws_adopt_socket_vhost().  It also decides
 * at accept time what lws never sees: sockets far past max-connections are
 * closed at once, and running out of descriptors pauses accepting instead
 * of spinning.
 */
#ifndef TRACKGATE_LISTENER_H
#define TRACKGATE_LISTENER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

struct lws_vhost;

typedef struct listener listener_t;

/* Whether to take one more socket (pending: those in the lobby now); false closes it at once. */
typedef bool listener_admit_fn(void *arg, unsigned pending);

/* How the lobby (listener.c) treats connections that have not sent a whole request head. */
typedef struct listener_lobby {
	uint64_t first_byte_timeout_ms; /* closed when nothing came within this */
	uint64_t
	    head_timeout_ms;	 /* closed when no whole head came this long after the first byte */
	unsigned max_per_client; /* lobby connections one address may hold */
	bool peek_only;		 /* TLS: adopt at the first byte, read nothing */
	/* Addresses exempt from max_per_client (trusted proxies); NULL: none. */
	bool (*trusted)(void *arg, const char *addr);
	void *trusted_arg;
} listener_lobby_t;

typedef struct listener_stats {
	unsigned pending;	      /* connections in the lobby now */
	uint64_t first_byte_timeouts; /* closed: nothing within first-byte-timeout */
	uint64_t head_timeouts;	      /* closed: no whole request head within http-timeout */
	uint64_t refused_per_client; /* closed at accept: the address held max-pending-per-client */
	uint64_t adopt_failed;	     /* lws did not take a socket (out of memory or descriptors) */
} listener_stats_t;

void listener_set_lobby(listener_t *l, const listener_lobby_t *cfg);
listener_stats_t listener_stats(const listener_t *l);

/* Sets SO_SNDBUF on every accepted socket from now on (0: the kernel's autotuning). */
void listener_set_send_buffer(listener_t *l, int bytes);

/*
 * Binds host:port ("" = every address, IPv6 and IPv4) and starts accepting
 * into vhost.  Returns NULL with the reason logged.
 */
listener_t *listener_open(uv_loop_t *loop, const char *host, int port, bool reuseport,
			  struct lws_vhost *vhost, listener_admit_fn *admit, void *arg);

/* Stops accepting and closes the socket; frees l once its handles are closed. */
void listener_close(listener_t *l);

#endif
