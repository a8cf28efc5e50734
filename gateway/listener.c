#include "listener.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <libwebsockets.h>
#include <uthash.h>

#include "log.h"

#define LISTENER_BACKLOG 1024
#define LISTENER_ACCEPTS_PER_EVENT 64 /* so a connect storm cannot starve the loop */
#define LISTENER_EMFILE_PAUSE_MS 100
#define LOBBY_PEEK_MAX 8192 /* more than lws's 4 KiB of headers: it then refuses them itself */
#define LOBBY_SWEEP_MS 100
/* Closes at most this many per sweep, so thousands that came together and expire
 * together cannot stall the loop in one turn (the rest go on the next sweeps). */
#define LOBBY_SWEEP_BATCH 256
#define LOBBY_REPEEK_MS                                                                            \
	25 /* a request head still incomplete is looked at again this much later                   \
	    */

/*
 * A connection that has not yet sent a whole request head.  It holds no lws
 * state: lws 4.1's pool of header tables is bounded (256 here), and every
 * connection it adopted held one until http-timeout, so a few hundred
 * silent or dribbling connections made every newcomer wait.  The lobby looks
 * at the request head (MSG_PEEK: the bytes stay in the socket for lws) and
 * adopts the socket once the head is complete; lws then answers at once.
 * (Adopting with the bytes read instead, lws_adopt_socket_vhost_readbuf,
 * does not work for a POST: lws 4.1 parses a body from its own buffer
 * wrongly.)  A head that is not complete yet is looked at again
 * LOBBY_REPEEK_MS later, not on every readable event (the peeked bytes keep
 * the socket readable).  A connection that sends nothing
 * within first-byte-timeout, or no whole head within http-timeout of its
 * first byte, is closed; so is one past max-pending-per-client from one
 * address.  With TLS the bytes are a handshake, not a request: the lobby
 * then only waits for the first byte.
 */
typedef struct lobby_addr {
	UT_hash_handle hh;
	unsigned n;
	char addr[48];
} lobby_addr_t;

typedef struct lobby_conn {
	uv_poll_t poll;
	listener_t *l;
	struct lobby_conn *prev, *next;		      /* in l->head[list] */
	struct lobby_conn *repeek_prev, *repeek_next; /* in l->repeek while its poll is stopped */
	lobby_addr_t *from;			      /* NULL for a trusted proxy: not capped */
	uint64_t due_ms;
	uint64_t repeek_ms; /* when to look at its head again */
	uint8_t list;	    /* LOBBY_SILENT or LOBBY_HEAD */
	uint8_t gone;	    /* adopted or closed: only its handle is left */
	uint8_t repeeking;  /* in l->repeek */
	int fd;
} lobby_conn_t;

enum { LOBBY_SILENT = 0, LOBBY_HEAD = 1 };

struct listener {
	uv_poll_t poll;
	uv_timer_t pause; /* resumes accepting after running out of descriptors */
	int fd;
	int open_handles; /* handles still to be closed */
	struct lws_vhost *vhost;
	listener_admit_fn *admit;
	void *arg;
	int send_buffer;  /* SO_SNDBUF of accepted sockets; 0 = the kernel's autotuning */
	uv_timer_t sweep; /* closes lobby connections past their time */
	uv_loop_t *loop;
	lobby_conn_t *head[2], *tail[2];    /* the lobby, by list, each in due order */
	lobby_conn_t *repeek, *repeek_tail; /* incomplete heads to look at again, in due order */
	uv_timer_t repeek_timer;
	lobby_addr_t *addrs; /* lobby connections per client address */
	listener_lobby_t cfg;
	listener_stats_t stats;
	bool closing;
};

static void lobby_unlink(lobby_conn_t *c)
{
	listener_t *l = c->l;

	if (c->prev)
		c->prev->next = c->next;
	else
		l->head[c->list] = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		l->tail[c->list] = c->prev;
	c->prev = c->next = NULL;
}

static void lobby_append(lobby_conn_t *c, int list, uint64_t due_ms)
{
	listener_t *l = c->l;

	c->list = (uint8_t)list;
	c->due_ms = due_ms;
	c->next = NULL;
	c->prev = l->tail[list];
	if (l->tail[list])
		l->tail[list]->next = c;
	else
		l->head[list] = c;
	l->tail[list] = c;
}

static void lobby_repeek_del(lobby_conn_t *c)
{
	listener_t *l = c->l;

	if (!c->repeeking)
		return;
	if (c->repeek_prev)
		c->repeek_prev->repeek_next = c->repeek_next;
	else
		l->repeek = c->repeek_next;
	if (c->repeek_next)
		c->repeek_next->repeek_prev = c->repeek_prev;
	else
		l->repeek_tail = c->repeek_prev;
	c->repeek_prev = c->repeek_next = NULL;
	c->repeeking = 0;
}

static void lobby_freed(uv_handle_t *h)
{
	lobby_conn_t *c = h->data;
	listener_t *l = c->l;

	close(c->fd);
	free(c);
	if (--l->open_handles == 0) {
		close(l->fd);
		free(l);
	}
}

/* Takes c out of the lobby and closes its descriptor (once its handle is closed). */
static void lobby_leave(lobby_conn_t *c)
{
	listener_t *l = c->l;

	if (c->gone)
		return;
	c->gone = 1;
	lobby_unlink(c);
	lobby_repeek_del(c);
	l->stats.pending--;
	if (c->from && --c->from->n == 0) {
		HASH_DEL(l->addrs, c->from);
		free(c->from);
	}
	uv_close((uv_handle_t *)&c->poll, lobby_freed);
}

/* The end of a request head: "\r\n\r\n" (lws takes bare "\n\n" too). */
static bool lobby_head_complete(const char *p, size_t len)
{
	return memmem(p, len, "\r\n\r\n", 4) || memmem(p, len, "\n\n", 2);
}

/*
 * Hands the socket to lws, which reads the request itself.  lws gets a
 * duplicate descriptor: closing a uv_poll removes its descriptor from epoll
 * at once (uv__platform_invalidate_fd), which would take lws's registration
 * of the same number with it; a second number is a separate epoll entry.
 */
static void lobby_adopt(lobby_conn_t *c)
{
	listener_t *l = c->l;
	int fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);

	lobby_leave(c);
	/* lws owns fd from here, also when adoption fails (it closes it then). */
	if (fd < 0 || !lws_adopt_socket_vhost(l->vhost, fd)) {
		l->stats.adopt_failed++;
		log_event(LOG_DEBUG, "adopt_failed", "%s", "");
	}
}

static void lobby_poll_cb(uv_poll_t *h, int status, int events);

static void lobby_repeek_cb(uv_timer_t *t)
{
	listener_t *l = t->data;
	uint64_t now = uv_now(l->loop);
	lobby_conn_t *c;

	while ((c = l->repeek) && c->repeek_ms <= now) {
		lobby_repeek_del(c);
		uv_poll_start(&c->poll, UV_READABLE | UV_DISCONNECT, lobby_poll_cb);
	}
	if (l->repeek)
		uv_timer_start(&l->repeek_timer, lobby_repeek_cb, l->repeek->repeek_ms - now, 0);
}

/* c's head is incomplete: stop watching it, look again LOBBY_REPEEK_MS later. */
static void lobby_repeek_later(lobby_conn_t *c)
{
	listener_t *l = c->l;

	uv_poll_stop(&c->poll);
	c->repeek_ms = uv_now(l->loop) + LOBBY_REPEEK_MS;
	c->repeeking = 1;
	c->repeek_next = NULL;
	c->repeek_prev = l->repeek_tail;
	if (l->repeek_tail)
		l->repeek_tail->repeek_next = c;
	else
		l->repeek = c;
	l->repeek_tail = c;
	if (!uv_is_active((uv_handle_t *)&l->repeek_timer))
		uv_timer_start(&l->repeek_timer, lobby_repeek_cb, LOBBY_REPEEK_MS, 0);
}

static void lobby_poll_cb(uv_poll_t *h, int status, int events)
{
	static char peek[LOBBY_PEEK_MAX]; /* the loop thread's only */
	lobby_conn_t *c = h->data;
	listener_t *l = c->l;
	ssize_t n;

	if (c->gone)
		return;
	/* Gone (EPOLLRDHUP) before its request was whole: what it sent is moot. */
	if (status < 0 || (events & UV_DISCONNECT)) {
		lobby_leave(c);
		return;
	}
	if (l->cfg.peek_only) {
		lobby_adopt(c);
		return;
	}
	n = recv(c->fd, peek, sizeof(peek), MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		lobby_leave(c); /* gone, or reset, before asking anything */
		return;
	}
	if (c->list == LOBBY_SILENT) {
		lobby_unlink(c);
		lobby_append(c, LOBBY_HEAD, uv_now(l->loop) + l->cfg.head_timeout_ms);
	}
	/* Whole, or longer than lws takes: lws answers it either way. */
	if (n == (ssize_t)sizeof(peek) || lobby_head_complete(peek, (size_t)n))
		lobby_adopt(c);
	else
		lobby_repeek_later(c);
}

static void lobby_sweep_cb(uv_timer_t *t)
{
	listener_t *l = t->data;
	uint64_t now = uv_now(l->loop);
	lobby_conn_t *c;

	unsigned budget = LOBBY_SWEEP_BATCH;

	for (int list = 0; list < 2; list++) {
		while (budget && (c = l->head[list]) && c->due_ms <= now) {
			budget--;
			if (list == LOBBY_SILENT)
				l->stats.first_byte_timeouts++;
			else
				l->stats.head_timeouts++;
			lobby_leave(c);
		}
	}
}

/* Puts a just-accepted socket in the lobby; false when it was closed instead. */
static bool lobby_enter(listener_t *l, int fd, const struct sockaddr_storage *peer)
{
	char addr[48] = "?";
	lobby_addr_t *a = NULL;
	lobby_conn_t *c;

	if (peer->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, addr,
			  sizeof(addr));
	else if (peer->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)peer)->sin6_addr, addr,
			  sizeof(addr));
	if (!strncmp(addr, "::ffff:", 7))
		memmove(addr, addr + 7, strlen(addr + 7) + 1);
	if (!l->cfg.trusted || !l->cfg.trusted(l->cfg.trusted_arg, addr)) {
		HASH_FIND_STR(l->addrs, addr, a);
		if (a && a->n >= l->cfg.max_per_client) {
			/* Closed at once (a RST would do as well); the count says why. */
			l->stats.refused_per_client++;
			close(fd);
			return false;
		}
		if (!a) {
			if (!(a = calloc(1, sizeof(*a)))) {
				close(fd);
				return false;
			}
			snprintf(a->addr, sizeof(a->addr), "%s", addr);
			HASH_ADD_STR(l->addrs, addr, a);
		}
	}
	c = calloc(1, sizeof(*c));
	if (!c || uv_poll_init(l->loop, &c->poll, fd) != 0) {
		free(c);
		if (a && !a->n) {
			HASH_DEL(l->addrs, a);
			free(a);
		}
		close(fd);
		return false;
	}
	c->l = l;
	c->fd = fd;
	c->from = a;
	if (a)
		a->n++;
	c->poll.data = c;
	l->open_handles++;
	l->stats.pending++;
	lobby_append(c, LOBBY_SILENT, uv_now(l->loop) + l->cfg.first_byte_timeout_ms);
	uv_poll_start(&c->poll, UV_READABLE | UV_DISCONNECT, lobby_poll_cb);
	return true;
}

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
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		int fd =
		    accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				/* The pending connection stays in the backlog; try again shortly.
				 */
				log_event(LOG_ERROR, "accept_out_of_descriptors", "error=\"%s\"",
					  strerror(errno));
				uv_poll_stop(&l->poll);
				uv_timer_start(&l->pause, listener_resume_cb,
					       LISTENER_EMFILE_PAUSE_MS, 0);
			} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
				   errno != ECONNABORTED) {
				log_event(LOG_WARN, "accept_failed", "error=\"%s\"",
					  strerror(errno));
			}
			return;
		}
		if (!l->admit(l->arg, l->stats.pending)) {
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
		lobby_enter(l, fd, &peer);
	}
}

void listener_set_lobby(listener_t *l, const listener_lobby_t *cfg)
{
	l->cfg = *cfg;
}

listener_stats_t listener_stats(const listener_t *l)
{
	listener_stats_t none = {0};

	return l ? l->stats : none;
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
	l->loop = loop;
	l->cfg.first_byte_timeout_ms = 5000;
	l->cfg.head_timeout_ms = 10000;
	l->cfg.max_per_client = 64;
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

	if (uv_poll_init(loop, &l->poll, l->fd) != 0 || uv_timer_init(loop, &l->pause) != 0 ||
	    uv_timer_init(loop, &l->sweep) != 0 || uv_timer_init(loop, &l->repeek_timer) != 0) {
		log_event(LOG_ERROR, "listen_failed", "addr=%s:%d error=\"uv init\"", host, port);
		goto fail;
	}
	l->open_handles = 4;
	l->poll.data = l->pause.data = l->sweep.data = l->repeek_timer.data = l;
	uv_poll_start(&l->poll, UV_READABLE, listener_poll_cb);
	uv_timer_start(&l->sweep, lobby_sweep_cb, LOBBY_SWEEP_MS, LOBBY_SWEEP_MS);
	uv_unref((uv_handle_t *)&l->sweep);
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
	uv_timer_stop(&l->sweep);
	uv_timer_stop(&l->repeek_timer);
	/* Connections that never asked anything are simply closed. */
	for (int list = 0; list < 2; list++)
		while (l->head[list])
			lobby_leave(l->head[list]);
	uv_close((uv_handle_t *)&l->poll, listener_closed);
	uv_close((uv_handle_t *)&l->pause, listener_closed);
	uv_close((uv_handle_t *)&l->sweep, listener_closed);
	uv_close((uv_handle_t *)&l->repeek_timer, listener_closed);
}
