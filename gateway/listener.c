#include "listener.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "log.h"

#define LISTENER_BACKLOG 1024
#define LISTENER_ACCEPTS_PER_EVENT 64 /* so a connect storm cannot starve the loop */
#define LISTENER_EMFILE_PAUSE_MS 100

struct listener {
	uv_poll_t poll;
	uv_timer_t pause;     /* resumes accepting after running out of descriptors */
	int fd;
	int open_handles;     /* handles still to be closed */
	struct lws_vhost *vhost;
	listener_admit_fn *admit;
	void *arg;
	int send_buffer;      /* SO_SNDBUF of accepted sockets; 0 = the kernel's autotuning */
};

static void listener_poll_cb(uv_poll_t *h, int status, int events);

static void listener_resume_cb(uv_timer_t *t)
{
	listener_t *l = t->data;

	uv_poll_start(&l->poll, UV_READABLE, listener_poll_cb);
}

static void listener_poll_cb(uv_poll_t *h, int status, int events)
{
	listener_t *l = h->data;

	if (status < 0) {
		log_event(LOG_ERROR, "accept_poll_failed", "error=\"%s\"", uv_strerror(status));
		return;
	}
	for (int i = 0; i < LISTENER_ACCEPTS_PER_EVENT; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				/* The pending connection stays in the backlog; try again shortly. */
				log_event(LOG_ERROR, "accept_out_of_descriptors", "error=\"%s\"",
					  strerror(errno));
				uv_poll_stop(&l->poll);
				uv_timer_start(&l->pause, listener_resume_cb, LISTENER_EMFILE_PAUSE_MS,
					       0);
			} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
				   errno != ECONNABORTED) {
				log_event(LOG_WARN, "accept_failed", "error=\"%s\"", strerror(errno));
			}
			return;
		}
		if (!l->admit(l->arg)) {
			close(fd);
			continue;
		}
		/*
		 * No Nagle: a frame written while the previous one is unacknowledged
		 * must not wait for the ACK (lws adopting a socket sets no option).
		 */
		int one = 1;

		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		/*
		 * A bounded send buffer: autotuned, a client that stops reading makes
		 * the kernel hold up to tcp_wmem's maximum (4 MiB) for it before the
		 * gateway sees any push-back, so outq-limit and slow-timeout would
		 * not apply for minutes, and many such clients press every socket.
		 */
		if (l->send_buffer > 0)
			(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &l->send_buffer,
					 sizeof(l->send_buffer));
		/* lws owns fd from here, also when adoption fails (it closes it then). */
		if (!lws_adopt_socket_vhost(l->vhost, fd))
			log_event(LOG_WARN, "adopt_failed", "%s", "");
	}
}

void listener_set_send_buffer(listener_t *l, int bytes)
{
	l->send_buffer = bytes;
}

listener_t *listener_open(uv_loop_t *loop, const char *host, int port, bool reuseport,
			  struct lws_vhost *vhost, listener_admit_fn *admit, void *arg)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL;
	char portstr[8];
	listener_t *l;
	int one = 1, zero = 0, rc;

	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->fd = -1;
	l->vhost = vhost;
	l->admit = admit;
	l->arg = arg;
	snprintf(portstr, sizeof(portstr), "%d", port);
	/* Numeric only (config checked it): no DNS.  "" = IPv6 any, which takes IPv4 too. */
	rc = getaddrinfo(host[0] ? host : "::", portstr, &hints, &res);
	if (rc != 0) {
		log_event(LOG_ERROR, "listen_failed", "addr=%s:%d error=\"%s\"", host, port,
			  gai_strerror(rc));
		goto fail;
	}
	l->fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0 && !host[0]) {
		/* No IPv6 here: every IPv4 address then. */
		freeaddrinfo(res);
		res = NULL;
		if (getaddrinfo("0.0.0.0", portstr, &hints, &res) == 0)
			l->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	}
	if (l->fd < 0)
		goto fail_errno;
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport && setsockopt(l->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
		goto fail_errno;
	if (res->ai_family == AF_INET6)
		setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, host[0] ? &one : &zero, sizeof(one));
	if (bind(l->fd, res->ai_addr, res->ai_addrlen) != 0 || listen(l->fd, LISTENER_BACKLOG) != 0)
		goto fail_errno;
	freeaddrinfo(res);
	res = NULL;

	if (uv_poll_init(loop, &l->poll, l->fd) != 0 || uv_timer_init(loop, &l->pause) != 0) {
		log_event(LOG_ERROR, "listen_failed", "addr=%s:%d error=\"uv init\"", host, port);
		goto fail;
	}
	l->open_handles = 2;
	l->poll.data = l->pause.data = l;
	uv_poll_start(&l->poll, UV_READABLE, listener_poll_cb);
	return l;

fail_errno:
	log_event(LOG_ERROR, "listen_failed", "addr=%s:%d error=\"%s\"", host[0] ? host : "*", port,
		  strerror(errno));
fail:
	if (res)
		freeaddrinfo(res);
	if (l->fd >= 0)
		close(l->fd);
	free(l);
	return NULL;
}

static void listener_closed(uv_handle_t *h)
{
	listener_t *l = h->data;

	if (--l->open_handles == 0) {
		close(l->fd);
		free(l);
	}
}

void listener_close(listener_t *l)
{
	if (!l)
		return;
	uv_poll_stop(&l->poll);
	uv_timer_stop(&l->pause);
	uv_close((uv_handle_t *)&l->poll, listener_closed);
	uv_close((uv_handle_t *)&l->pause, listener_closed);
}
