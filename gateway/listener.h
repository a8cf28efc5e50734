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

#include <uv.h>

struct lws_vhost;

typedef struct listener listener_t;

/* Whether to take one more socket; false closes it at once. */
typedef bool listener_admit_fn(void *arg);

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
