/*
 * trackgate-bench - the load generator of tools/bench.
 *
 *   trackgate-bench watch   [options]   hold tracking websockets, measure what arrives
 *   trackgate-bench publish [options]   publish updates at a fixed rate (or as fast as
 *                                       the server answers), through Redis, the ingest
 *                                       API or an nchan publisher
 *   trackgate-bench floor   [options]   a server that only send()s frames: the floor
 *   trackgate-bench attack  [options]   hold connections that dribble a request head a
 *                                       byte a second, or send nothing at all
 *   trackgate-bench probe   [options]   a legitimate client meanwhile: /healthz and
 *                                       websocket upgrade + snapshot latencies
 *
 * Every update carries event_id "b<seq>-<usec>": its sequence number within
 * its order and the wall-clock microsecond it was sent.  A watcher reading it
 * knows the end-to-end latency (same machine, same clock) and counts a gap in
 * the sequence as a loss.  Output: a human summary on stderr and one JSON
 * object on stdout (tools/bench/run reads it).
 *
 * One thread per process, epoll, non-blocking sockets, no allocation per
 * frame: it must cost less CPU per message than the gateway it measures.
 * --procs N forks N processes (one holds at most ~19 000 sockets here) and
 * merges their results; --sources spreads connections over loopback
 * addresses to pass the ephemeral port range.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "proto.h"
#include "script.h"

/* --- time and the latency histogram ------------------------------------------------ */

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Log-linear buckets: exact below 128 us, then 64 per power of two (1.6 % wide). */
#define HIST_N 2560
typedef struct hist {
	uint64_t n[HIST_N];
	uint64_t count, max;
} hist_t;

static int hist_bucket(uint64_t v)
{
	int e, shift, i;

	if (v < 128)
		return (int)v;
	e = 63 - __builtin_clzll(v);
	shift = e - 6;
	i = shift * 64 + (int)(v >> shift);
	return i < HIST_N ? i : HIST_N - 1;
}

static uint64_t hist_value(int i)
{
	int shift;

	if (i < 128)
		return (uint64_t)i;
	shift = i / 64 - 1;
	return (uint64_t)(i - shift * 64) << shift;
}

static void hist_add(hist_t *h, uint64_t v)
{
	h->n[hist_bucket(v)]++;
	h->count++;
	if (v > h->max)
		h->max = v;
}

static uint64_t hist_pct(const hist_t *h, double p)
{
	uint64_t want, seen = 0;

	if (!h->count)
		return 0;
	want = (uint64_t)(p / 100.0 * (double)h->count + 0.5);
	if (want < 1)
		want = 1;
	for (int i = 0; i < HIST_N; i++) {
		seen += h->n[i];
		if (seen >= want)
			return hist_value(i);
	}
	return h->max;
}

/* --- options shared by both commands --------------------------------------------------- */

typedef struct opts {
	char host[64];
	int port;
	char sources[256][16];
	int n_sources;
	int orders;
	int order_base;
	int watchers;
	double duration; /* seconds of measuring */
	double ramp;	 /* watch: seconds allowed to connect everything */
	int procs;
	int idle;	    /* watch: hold only, measure nothing per frame */
	double non_reading; /* watch: fraction of watchers that never read */
	char token[2048];
	char prefix[32]; /* order ids: PREFIX-N */
	/* publish */
	char mode[16]; /* redis | http | nchan */
	char redis[256];
	char key[300];
	double rate; /* updates per second; 0 = as fast as answered */
	int conns;   /* http: connections */
	char nchan_path[64];
	char secret[256]; /* webhook: the provider secret */
	/* attack and probe */
	char attack[16]; /* dribble | silent */
	int attackers;
	int requests;	/* probe: GET /healthz requests */
	int upgrades;	/* probe: websocket upgrades, each until its snapshot */
	double timeout; /* probe: seconds each may take */
	int quiet;
} opts_t;

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("trackgate-bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void raise_nofile(void)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

/*
 * A TCP connection to host:port from source (NULL: any), non-blocking.
 * rcvbuf > 0: a small receive window, so that a client that stops reading
 * pushes back on the gateway within seconds, not after megabytes.
 */
static int tcp_connect(const opts_t *o, const char *source, int rcvbuf)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (source) {
		struct sockaddr_in src = {.sin_family = AF_INET};

		/* The port is chosen at connect() from the whole 4-tuple, not at bind(). */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (inet_pton(AF_INET, source, &src.sin_addr) != 1 ||
		    bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
			close(fd);
			return -1;
		}
	}
	if (inet_pton(AF_INET, o->host, &sa.sin_addr) != 1)
		die("--server wants a numeric IPv4 address, not %s", o->host);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* "b<seq>-<usec>" in an event_id of text: 0 and the two numbers, or -1. */
static int parse_event(const char *p, size_t len, uint64_t *seq, uint64_t *us)
{
	const char *end = p + len, *q = memmem(p, len, "\"event_id\":\"b", 13);
	uint64_t a = 0, b = 0;

	if (!q)
		return -1;
	for (q += 13; q < end && *q >= '0' && *q <= '9'; q++)
		a = a * 10 + (uint64_t)(*q - '0');
	if (q >= end || *q != '-')
		return -1;
	for (q++; q < end && *q >= '0' && *q <= '9'; q++)
		b = b * 10 + (uint64_t)(*q - '0');
	*seq = a;
	*us = b;
	return 0;
}

/* --- watch ------------------------------------------------------------------------------ */

enum { W_CONNECTING, W_HANDSHAKE, W_OPEN, W_CLOSED };

typedef struct wconn {
	int fd;
	int order;
	uint8_t state;
	bool reader; /* false: never reads (the isolation scenario's stalled clients) */
	uint16_t close_code;
	uint64_t last_seq; /* of its order; 0 = none seen yet */
	uint32_t have;	   /* bytes kept in buf */
	uint32_t cap;
	char *buf; /* a partial frame or handshake, kept between reads */
} wconn_t;

typedef struct wstats {
	uint64_t opened, failed, closed, frames, updates, snapshots, lost, bytes;
	uint64_t cpu_us;    /* this process's CPU while measuring */
	uint64_t closes[8]; /* 1000 1001 1006 1008 1011 1013 4408 other */
	hist_t lat;
} wstats_t;

static int close_slot(unsigned code)
{
	switch (code) {
	case 1000:
		return 0;
	case 1001:
		return 1;
	case 1006:
		return 2;
	case 1008:
		return 3;
	case 1011:
		return 4;
	case 1013:
		return 5;
	case 4408:
		return 6;
	default:
		return 7;
	}
}

static void w_close(int ep, wconn_t *c, wstats_t *st, unsigned code)
{
	if (c->state == W_CLOSED)
		return;
	if (c->state == W_OPEN) {
		st->closed++;
		st->closes[close_slot(code)]++;
	} else {
		st->failed++;
	}
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->state = W_CLOSED;
	free(c->buf);
	c->buf = NULL;
	c->have = c->cap = 0;
}

static int w_send_handshake(const opts_t *o, wconn_t *c)
{
	char req[2600];
	int n = snprintf(req, sizeof(req),
			 "GET /v1/track/%s-%d%s%s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			 "Sec-WebSocket-Version: 13\r\n\r\n",
			 o->prefix, o->order_base + c->order, o->token[0] ? "?token=" : "",
			 o->token, o->host, o->port);

	return send(c->fd, req, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

/* A masked client frame (key 0: the payload goes as is). */
static void w_send_frame(wconn_t *c, int opcode, const char *payload, size_t len)
{
	char f[2 + 4 + 125];

	if (len > 125)
		len = 125;
	f[0] = (char)(0x80 | opcode);
	f[1] = (char)(0x80 | len);
	memset(f + 2, 0, 4);
	memcpy(f + 6, payload, len);
	(void)!send(c->fd, f, 6 + len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void w_text(const opts_t *o, wconn_t *c, wstats_t *st, const char *p, size_t len, uint64_t t)
{
	uint64_t seq, us;

	st->frames++;
	if (o->idle)
		return;
	if (len > 9 && !memcmp(p, "{\"type\":\"s", 10)) {
		st->snapshots++;
		return;
	}
	if (parse_event(p, len, &seq, &us))
		return;
	st->updates++;
	if (c->last_seq && seq > c->last_seq + 1)
		st->lost += seq - c->last_seq - 1;
	if (seq > c->last_seq)
		c->last_seq = seq;
	hist_add(&st->lat, t > us ? t - us : 0);
}

/* Parses whole frames of data[0..len); returns the bytes consumed, or -1 to close. */
static long w_frames(const opts_t *o, int ep, wconn_t *c, wstats_t *st, const char *data,
		     size_t len, uint64_t t)
{
	size_t at = 0;

	while (len - at >= 2) {
		const unsigned char *h = (const unsigned char *)data + at;
		size_t hl = 2, pl = h[1] & 0x7f;
		int op = h[0] & 0x0f;

		if (pl == 126) {
			if (len - at < 4)
				break;
			pl = (size_t)h[2] << 8 | h[3];
			hl = 4;
		} else if (pl == 127) {
			if (len - at < 10)
				break;
			pl = 0;
			for (int i = 2; i < 10; i++)
				pl = pl << 8 | h[i];
			hl = 10;
		}
		if (h[1] & 0x80 || pl > (64u << 20))
			return -1; /* servers do not mask */
		if (len - at < hl + pl)
			break;
		const char *p = data + at + hl;

		if (op == 1 || op == 0)
			w_text(o, c, st, p, pl, t);
		else if (op == 9)
			w_send_frame(c, 0xA, p, pl);
		else if (op == 8) {
			unsigned code =
			    pl >= 2 ? (unsigned)((unsigned char)p[0] << 8 | (unsigned char)p[1])
				    : 1005;
			w_send_frame(c, 8, p, pl >= 2 ? 2 : 0);
			w_close(ep, c, st, code);
			return -1;
		}
		at += hl + pl;
	}
	return (long)at;
}

static void w_keep(wconn_t *c, const char *data, size_t len)
{
	if (c->cap < len) {
		char *nb = realloc(c->buf, len);

		if (!nb)
			abort();
		c->buf = nb;
		c->cap = (uint32_t)len;
	}
	memmove(c->buf, data, len);
	c->have = (uint32_t)len;
}

static void w_readable(const opts_t *o, int ep, wconn_t *c, wstats_t *st, char *rbuf, size_t rcap)
{
	for (;;) {
		size_t off = 0;
		ssize_t n;

		if (c->have) { /* the kept partial frame goes first */
			memcpy(rbuf, c->buf, c->have);
			off = c->have;
			c->have = 0;
		}
		n = recv(c->fd, rbuf + off, rcap - off, 0);
		if (n <= 0) {
			if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
				if (off)
					w_keep(c, rbuf, off);
				return;
			}
			w_close(ep, c, st, 1006);
			return;
		}
		st->bytes += (uint64_t)n;
		size_t len = off + (size_t)n;
		uint64_t t = o->idle ? 0 : now_us();

		if (c->state == W_HANDSHAKE) {
			char *e = memmem(rbuf, len, "\r\n\r\n", 4);

			if (!e) {
				w_keep(c, rbuf, len);
				continue;
			}
			if (len < 12 || memcmp(rbuf + 9, "101", 3)) {
				w_close(ep, c, st, 0);
				return;
			}
			c->state = W_OPEN;
			st->opened++;
			size_t hl = (size_t)(e + 4 - rbuf);

			memmove(rbuf, rbuf + hl, len - hl);
			len -= hl;
			if (!c->reader) {
				/* Never read again: the kernel's buffers fill, then the gateway's
				 * queue. */
				struct epoll_event ev = {.events = 0, .data.ptr = c};

				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				return;
			}
		}
		long used = w_frames(o, ep, c, st, rbuf, len, t);

		if (used < 0)
			return;
		if ((size_t)used < len)
			w_keep(c, rbuf + used, len - (size_t)used);
		if ((size_t)n < rcap - off)
			return;
	}
}

/* CPU microseconds of who (RUSAGE_SELF or RUSAGE_CHILDREN). */
static uint64_t cpu_used_us(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static void watch_print(const opts_t *o, const wstats_t *st, double secs, int held)
{
	/* cpu_us: while measuring; cpu_total_us: the whole run, connecting included. */
	printf("{\"cmd\":\"watch\",\"cpu_us\":%" PRIu64 ",\"cpu_total_us\":%" PRIu64 ",",
	       st->cpu_us, cpu_used_us(RUSAGE_CHILDREN));
	printf("\"watchers\":%d,\"orders\":%d,\"held\":%d,\"opened\":%" PRIu64
	       ",\"failed\":%" PRIu64 ",\"closed\":%" PRIu64 ",\"secs\":%.3f,\"frames\":%" PRIu64
	       ",\"updates\":%" PRIu64 ",\"snapshots\":%" PRIu64 ",\"lost\":%" PRIu64
	       ",\"bytes\":%" PRIu64 ",\"lat_us\":{\"n\":%" PRIu64 ",\"p50\":%" PRIu64
	       ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64
	       "},\"closes\":{\"1000\":%" PRIu64 ",\"1001\":%" PRIu64 ",\"1006\":%" PRIu64
	       ",\"1008\":%" PRIu64 ",\"1011\":%" PRIu64 ",\"1013\":%" PRIu64 ",\"4408\":%" PRIu64
	       ",\"other\":%" PRIu64 "}}\n",
	       o->watchers, o->orders, held, st->opened, st->failed, st->closed, secs, st->frames,
	       st->updates, st->snapshots, st->lost, st->bytes, st->lat.count,
	       hist_pct(&st->lat, 50), hist_pct(&st->lat, 90), hist_pct(&st->lat, 99),
	       hist_pct(&st->lat, 99.9), st->lat.max, st->closes[0], st->closes[1], st->closes[2],
	       st->closes[3], st->closes[4], st->closes[5], st->closes[6], st->closes[7]);
	fflush(stdout);
}

/*
 * One process's share: watchers [first, first + n).  Connects them all (at most
 * 512 connecting at once), measures for o->duration seconds from the moment
 * all are open (or the ramp ran out), then writes its stats to out_fd.
 */
static void watch_run(const opts_t *o, int first, int n, int out_fd)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	wconn_t *cs = calloc((size_t)n, sizeof(*cs));
	static char rbuf[256 * 1024];
	static wstats_t st;
	struct epoll_event evs[512];
	int next = 0, pending = 0, held = 0;
	uint64_t t0 = mono_us(), measure_from = 0, measure_to = 0, ramp_end;
	wstats_t before;

	if (ep < 0 || !cs)
		die("out of memory");
	ramp_end = t0 + (uint64_t)(o->ramp * 1e6);
	while (!stop_flag) {
		uint64_t t = mono_us();

		/* Start connections, keeping at most 512 connecting or handshaking. */
		while (next < n && pending < 512 && !measure_from) {
			wconn_t *c = &cs[next];
			int gi = first + next;
			const char *src = o->n_sources ? o->sources[gi % o->n_sources] : NULL;

			c->order = gi % o->orders;
			/* Spread evenly: gi stalls when the count of stalled ones steps up at it.
			 */
			c->reader = !(o->non_reading > 0 && (uint64_t)((gi + 1) * o->non_reading) >
								(uint64_t)(gi * o->non_reading));
			c->fd = tcp_connect(o, src, c->reader ? 0 : 4096);
			next++;
			if (c->fd < 0) {
				c->state = W_CLOSED;
				st.failed++;
				continue;
			}
			c->state = W_CONNECTING;
			struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP,
						 .data.ptr = c};
			epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
			pending++;
		}
		if (!measure_from && ((next == n && pending == 0) || t >= ramp_end)) {
			measure_from = t;
			measure_to = t + (uint64_t)(o->duration * 1e6);
			before = st;
			before.cpu_us = cpu_used_us(RUSAGE_SELF);
			held = (int)st.opened;
			if (!o->quiet)
				fprintf(stderr,
					"trackgate-bench: %d/%d websockets open after %.1f s\n",
					held, n, (double)(t - t0) / 1e6);
		}
		if (measure_from && t >= measure_to)
			break;
		int k = epoll_wait(ep, evs, 512, 20);

		for (int i = 0; i < k; i++) {
			wconn_t *c = evs[i].data.ptr;

			if (c->state == W_CLOSED)
				continue;
			if (c->state == W_CONNECTING) {
				int err = 0;
				socklen_t el = sizeof(err);

				if (!(evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
					continue;
				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err || w_send_handshake(o, c)) {
					pending--;
					w_close(ep, c, &st, 0);
					continue;
				}
				c->state = W_HANDSHAKE;
				struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP,
							 .data.ptr = c};
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				continue;
			}
			bool was_handshaking = c->state == W_HANDSHAKE;

			w_readable(o, ep, c, &st, rbuf, sizeof(rbuf));
			if (was_handshaking && c->state != W_HANDSHAKE)
				pending--; /* open, or refused */
		}
	}
	/* What happened while measuring: frames and latencies since measure_from. */
	wstats_t m = st;

	if (measure_from) {
		m.frames -= before.frames;
		m.updates -= before.updates;
		m.snapshots -= before.snapshots;
		m.bytes -= before.bytes;
		m.lost -= before.lost;
		/* Latencies are kept from the start: updates only flow while measuring. */
	}
	m.opened = (uint64_t)held;
	m.cpu_us = measure_from ? cpu_used_us(RUSAGE_SELF) - before.cpu_us : 0;
	if (write(out_fd, &m, sizeof(m)) != (ssize_t)sizeof(m))
		die("cannot report to the parent");
	/* Leave the sockets to the kernel: closing 19 000 of them is the gateway's problem. */
	_exit(0);
}

static void merge(wstats_t *a, const wstats_t *b)
{
	a->opened += b->opened;
	a->failed += b->failed;
	a->closed += b->closed;
	a->frames += b->frames;
	a->updates += b->updates;
	a->snapshots += b->snapshots;
	a->lost += b->lost;
	a->bytes += b->bytes;
	a->cpu_us += b->cpu_us;
	for (int i = 0; i < 8; i++)
		a->closes[i] += b->closes[i];
	for (int i = 0; i < HIST_N; i++)
		a->lat.n[i] += b->lat.n[i];
	a->lat.count += b->lat.count;
	if (b->lat.max > a->lat.max)
		a->lat.max = b->lat.max;
}

static int cmd_watch(const opts_t *o)
{
	static wstats_t all, one;
	int procs = o->procs < 1 ? 1 : o->procs, fds[64];
	pid_t pids[64];
	uint64_t t0 = mono_us();

	if (procs > 64)
		die("--procs is at most 64");
	for (int p = 0; p < procs; p++) {
		int pipefd[2], first = o->watchers * p / procs,
			       last = o->watchers * (p + 1) / procs;

		if (pipe(pipefd))
			die("pipe: %s", strerror(errno));
		pids[p] = fork();
		if (pids[p] < 0)
			die("fork: %s", strerror(errno));
		if (pids[p] == 0) {
			close(pipefd[0]);
			watch_run(o, first, last - first, pipefd[1]);
		}
		close(pipefd[1]);
		fds[p] = pipefd[0];
	}
	for (int p = 0; p < procs; p++) {
		size_t got = 0;

		while (got < sizeof(one)) {
			ssize_t r = read(fds[p], (char *)&one + got, sizeof(one) - got);

			if (r <= 0)
				break;
			got += (size_t)r;
		}
		if (got == sizeof(one))
			merge(&all, &one);
		close(fds[p]);
		waitpid(pids[p], NULL, 0);
	}
	double secs = o->duration;

	if (!o->quiet)
		fprintf(stderr,
			"trackgate-bench watch: %" PRIu64 " open, %" PRIu64 " failed, %" PRIu64
			" closed; %" PRIu64 " frames (%.0f/s), %" PRIu64
			" lost; latency us p50 %" PRIu64 " p99 %" PRIu64 " p99.9 %" PRIu64
			" max %" PRIu64 " (%.1f s in all)\n",
			all.opened, all.failed, all.closed, all.frames, (double)all.frames / secs,
			all.lost, hist_pct(&all.lat, 50), hist_pct(&all.lat, 99),
			hist_pct(&all.lat, 99.9), all.lat.max, (double)(mono_us() - t0) / 1e6);
	watch_print(o, &all, secs, (int)all.opened);
	return 0;
}

/* --- publish ------------------------------------------------------------------------------ */

typedef struct pstats {
	uint64_t sent, ok, failed, behind;
	hist_t lat; /* request -> answer */
} pstats_t;

static uint64_t *order_seq;

/* The update JSON of one publish; returns its length. */
static int make_update(const opts_t *o, int order, char *buf, size_t cap, uint64_t t)
{
	uint64_t seq = ++order_seq[order];
	double lat = 52.52 + 0.0001 * (double)(seq % 100),
	       lng = 13.40 + 0.0001 * (double)(order % 100);

	return snprintf(buf, cap,
			"{\"v\":1,\"order_id\":\"%s-%d\",\"provider\":\"bench\",\"ts\":%" PRIu64
			",\"event_id\":\"b%" PRIu64 "-%" PRIu64 "\",\"location\":{\"lat\":%.6f,"
			"\"lng\":%.6f}}",
			o->prefix, o->order_base + order, t / 1000, seq, t, lat, lng);
}

/* nchan has no script: the publisher sends the frame the script would have built. */
static int make_frame(const opts_t *o, int order, char *buf, size_t cap, uint64_t t)
{
	char u[512];
	int n = make_update(o, order, u, sizeof(u), t);

	(void)n;
	return snprintf(
	    buf, cap,
	    "{\"type\":\"update\",\"order_id\":\"%s-%d\",\"update\":%s,\"cursor\":\"%" PRIu64
	    "-0\"}",
	    o->prefix, o->order_base + order, u, t / 1000);
}

/*
 * An Uber Direct courier_update webhook (adapters/uber_direct.c), as the
 * provider sends it: the order in data.external_id, a unique event id.
 */
static int make_uber_webhook(const opts_t *o, int order, char *buf, size_t cap, uint64_t t)
{
	uint64_t seq = ++order_seq[order];
	time_t secs = (time_t)(t / 1000000u);
	struct tm tm;
	char when[40];

	gmtime_r(&secs, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	return snprintf(
	    buf, cap,
	    "{\"id\":\"evt_b%" PRIu64 "-%" PRIu64 "\",\"kind\":\"event.courier_update\","
	    "\"created\":\"%s.%03uZ\",\"live_mode\":false,\"delivery_id\":\"del_%d\","
	    "\"location\":{\"lat\":52.52,\"lng\":13.40},\"data\":{\"id\":\"del_%d\","
	    "\"kind\":\"delivery\",\"external_id\":\"%s-%d\",\"status\":\"dropoff\","
	    "\"complete\":false,\"courier\":{\"name\":\"Bench\",\"vehicle_type\":\"bicycle\","
	    "\"location\":{\"lat\":%.6f,\"lng\":13.40}}}}",
	    seq, t, when, (unsigned)(t / 1000 % 1000), order, order, o->prefix,
	    o->order_base + order, 52.52 + 0.0001 * (double)(seq % 100));
}

static void pub_report(const opts_t *o, const pstats_t *ps, double secs)
{
	if (!o->quiet)
		fprintf(stderr,
			"trackgate-bench publish (%s): %" PRIu64 " sent (%.0f/s), %" PRIu64
			" ok, %" PRIu64 " failed, %" PRIu64 " ticks behind; answer us p50 %" PRIu64
			" p99 %" PRIu64 " max %" PRIu64 "\n",
			o->mode, ps->sent, (double)ps->sent / secs, ps->ok, ps->failed, ps->behind,
			hist_pct(&ps->lat, 50), hist_pct(&ps->lat, 99), ps->lat.max);
	printf("{\"cmd\":\"publish\",\"cpu_us\":%" PRIu64 ",", cpu_used_us(RUSAGE_SELF));
	printf("\"mode\":\"%s\",\"rate\":%.1f,\"secs\":%.3f,\"sent\":%" PRIu64 ",\"ok\":%" PRIu64
	       ",\"failed\":%" PRIu64 ",\"behind\":%" PRIu64 ",\"answer_us\":{\"p50\":%" PRIu64
	       ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64 "}}\n",
	       o->mode, o->rate, secs, ps->sent, ps->ok, ps->failed, ps->behind,
	       hist_pct(&ps->lat, 50), hist_pct(&ps->lat, 99), hist_pct(&ps->lat, 99.9),
	       ps->lat.max);
	fflush(stdout);
}

/* Redis: EVALSHA apply_update.lua, pipelined, one batch per millisecond tick. */
static int pub_redis(const opts_t *o)
{
	static pstats_t ps;
	redisContext *r;
	redisReply *rep;
	char sha[41], upd[512], ttl1[] = "86400", ttl2[] = "3600", maxlen[] = "1000";
	uint64_t t0, due = 0;
	int order = 0;

	if (!strncmp(o->redis, "unix://", 7))
		r = redisConnectUnix(o->redis + 7);
	else {
		char host[200];
		int port = 6379;

		if (sscanf(o->redis, "redis://%199[^:]:%d", host, &port) < 1)
			die("--redis wants unix:///PATH or redis://HOST:PORT");
		r = redisConnect(host, port);
	}
	if (!r || r->err)
		die("cannot connect to Redis %s: %s", o->redis, r ? r->errstr : "out of memory");
	rep = redisCommand(r, "SCRIPT LOAD %b", proto_script_apply_update,
			   proto_script_apply_update_len);
	if (!rep || rep->type != REDIS_REPLY_STRING)
		die("SCRIPT LOAD failed");
	snprintf(sha, sizeof(sha), "%s", rep->str);
	freeReplyObject(rep);

	t0 = mono_us();
	for (;;) {
		uint64_t t = mono_us(), elapsed = t - t0;
		uint64_t want;
		int batch = 0;

		if (stop_flag || elapsed >= (uint64_t)(o->duration * 1e6))
			break;
		want = o->rate > 0 ? (uint64_t)((double)elapsed * o->rate / 1e6) : due + 64;
		if (want > due + 2000) { /* more than a batch behind: count it, do not catch up */
			ps.behind++;
			due = want - 2000;
		}
		uint64_t send_t[2000];

		while (due < want && batch < 2000) {
			uint64_t ts = now_us();
			int n = make_update(o, order, upd, sizeof(upd), ts);
			char oid[PROTO_ORDER_ID_MAX + 1];
			proto_keys_t k;
			const char *argv[10];
			size_t argl[10];

			snprintf(oid, sizeof(oid), "%s-%d", o->prefix, o->order_base + order);
			proto_keys_for(oid, &k);
			argv[0] = "EVALSHA";
			argv[1] = sha;
			argv[2] = "3";
			argv[3] = k.state;
			argv[4] = k.log;
			argv[5] = k.seen;
			argv[6] = upd;
			argv[7] = ttl1;
			argv[8] = ttl2;
			argv[9] = maxlen;
			for (int i = 0; i < 10; i++)
				argl[i] = strlen(argv[i]);
			argl[6] = (size_t)n;
			redisAppendCommandArgv(r, 10, argv, argl);
			send_t[batch++] = ts;
			due++;
			order = (order + 1) % o->orders;
		}
		for (int i = 0; i < batch; i++) {
			if (redisGetReply(r, (void **)&rep) != REDIS_OK)
				die("Redis: %s", r->errstr);
			ps.sent++;
			if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
			    !strcmp(rep->element[0]->str, "applied"))
				ps.ok++;
			else
				ps.failed++;
			hist_add(&ps.lat, now_us() - send_t[i]);
			freeReplyObject(rep);
		}
		if (o->rate > 0) {
			uint64_t next = t0 + (uint64_t)((double)(due + 1) * 1e6 / o->rate);
			uint64_t m = mono_us();

			if (next > m)
				usleep((useconds_t)(next - m < 1000 ? next - m : 1000));
		}
	}
	pub_report(o, &ps, (double)(mono_us() - t0) / 1e6);
	redisFree(r);
	return 0;
}

/* HTTP: keep-alive connections, one request in flight on each. */
typedef struct hconn {
	int fd;
	bool busy, connected;
	uint64_t sent_at;
	size_t have;
	char buf[4096];
} hconn_t;

static int h_open(const opts_t *o, hconn_t *h, int ep, int idx)
{
	const char *src = o->n_sources ? o->sources[idx % o->n_sources] : NULL;

	h->fd = tcp_connect(o, src, 0);
	if (h->fd < 0)
		return -1;
	h->busy = false;
	h->connected = false;
	h->have = 0;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = h};
	return epoll_ctl(ep, EPOLL_CTL_ADD, h->fd, &ev);
}

static int h_send(const opts_t *o, hconn_t *h, int order)
{
	char body[1024], req[2048];
	uint64_t t = now_us();
	int bl, n;

	if (!strcmp(o->mode, "webhook")) {
		unsigned char mac[EVP_MAX_MD_SIZE];
		unsigned int maclen = 0;
		char hex[2 * EVP_MAX_MD_SIZE + 1];

		bl = make_uber_webhook(o, order, body, sizeof(body), t);
		HMAC(EVP_sha256(), o->secret, (int)strlen(o->secret), (unsigned char *)body,
		     (size_t)bl, mac, &maclen);
		for (unsigned int i = 0; i < maclen; i++)
			snprintf(hex + 2 * i, 3, "%02x", mac[i]);
		n = snprintf(req, sizeof(req),
			     "POST /v1/webhooks/uber_direct HTTP/1.1\r\nHost: %s\r\n"
			     "Content-Type: application/json\r\nX-Uber-Signature: %s\r\n"
			     "Content-Length: %d\r\n\r\n%s",
			     o->host, hex, bl, body);
	} else if (!strcmp(o->mode, "nchan")) {
		bl = make_frame(o, order, body, sizeof(body), t);
		n = snprintf(
		    req, sizeof(req),
		    "POST %s%s-%d HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
		    "Content-Length: %d\r\n\r\n%s",
		    o->nchan_path, o->prefix, o->order_base + order, o->host, bl, body);
	} else {
		bl = make_update(o, order, body, sizeof(body), t);
		n = snprintf(
		    req, sizeof(req),
		    "POST /v1/updates HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
		    "Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s",
		    o->host, o->key, bl, body);
	}
	h->sent_at = t;
	h->busy = true;
	return send(h->fd, req, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

/* 1 when a whole answer is in h->buf (then consumed), 0 when more is needed, -1 on error. */
static int h_answer(hconn_t *h, int *status)
{
	char *e = memmem(h->buf, h->have, "\r\n\r\n", 4), *cl;
	size_t hl, blen = 0;

	if (!e)
		return h->have == sizeof(h->buf) ? -1 : 0;
	hl = (size_t)(e + 4 - h->buf);
	*e = '\0';
	cl = strcasestr(h->buf, "\r\ncontent-length:");
	if (cl)
		blen = (size_t)strtoul(cl + 17, NULL, 10);
	*e = '\r';
	if (h->have < hl + blen)
		return 0;
	*status = atoi(h->buf + 9);
	memmove(h->buf, h->buf + hl + blen, h->have - hl - blen);
	h->have -= hl + blen;
	return 1;
}

static int pub_http(const opts_t *o)
{
	static pstats_t ps;
	int ep = epoll_create1(EPOLL_CLOEXEC), nc = o->conns < 1 ? 4 : o->conns, order = 0;
	hconn_t *hs = calloc((size_t)nc, sizeof(*hs));
	struct epoll_event evs[256];
	uint64_t t0, due = 0, end;

	if (!hs || ep < 0)
		die("out of memory");
	for (int i = 0; i < nc; i++)
		if (h_open(o, &hs[i], ep, i))
			die("cannot connect to %s:%d", o->host, o->port);
	t0 = mono_us();
	end = t0 + (uint64_t)(o->duration * 1e6);
	while (!stop_flag) {
		uint64_t t = mono_us();

		if (t >= end)
			break;
		uint64_t want =
		    o->rate > 0 ? (uint64_t)((double)(t - t0) * o->rate / 1e6) : UINT64_MAX;

		for (int i = 0; i < nc && due < want; i++) {
			if (hs[i].busy || !hs[i].connected)
				continue;
			if (h_send(o, &hs[i], order)) {
				ps.failed++;
				continue;
			}
			ps.sent++;
			due++;
			order = (order + 1) % o->orders;
		}
		if (o->rate > 0 && due + (uint64_t)nc < want) {
			ps.behind++; /* every connection busy: the server is slower than the rate */
			due = want - (uint64_t)nc;
		}
		int k = epoll_wait(ep, evs, 256, 1);

		for (int i = 0; i < k; i++) {
			hconn_t *h = evs[i].data.ptr;

			if (!h->connected && (evs[i].events & EPOLLOUT)) {
				struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP,
							 .data.ptr = h};

				h->connected = true;
				epoll_ctl(ep, EPOLL_CTL_MOD, h->fd, &ev);
			}
			if (!(evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
				continue;
			for (;;) {
				ssize_t r =
				    recv(h->fd, h->buf + h->have, sizeof(h->buf) - h->have, 0);
				int status;

				if (r < 0 && errno == EAGAIN)
					break;
				if (r <= 0) {
					if (h->busy)
						ps.failed++;
					epoll_ctl(ep, EPOLL_CTL_DEL, h->fd, NULL);
					close(h->fd);
					if (h_open(o, h, ep, (int)(h - hs)))
						die("cannot reconnect to %s:%d", o->host, o->port);
					break;
				}
				h->have += (size_t)r;
				while (h->busy && h_answer(h, &status) == 1) {
					h->busy = false;
					hist_add(&ps.lat, now_us() - h->sent_at);
					if (status >= 200 && status < 300)
						ps.ok++;
					else
						ps.failed++;
				}
			}
		}
	}
	pub_report(o, &ps, (double)(mono_us() - t0) / 1e6);
	return 0;
}

/* --- the command line ---------------------------------------------------------------------- */

/* --- floor: the least any gateway does per frame ----------------------------------------- */

/*
 * trackgate-bench floor is a websocket "gateway" that does only what no
 * gateway can skip: it accepts, answers the upgrade, and for each update
 * send()s the frame the script would have built (built once) to every
 * websocket of the order, from one thread on epoll, TCP_NODELAY as trackgated.
 * No Redis, no queue, no pings, no parsing of what clients send: a frame that
 * does not fit a socket's buffer is dropped and counted, and a websocket that
 * took only part of one is closed and counted (its stream is broken).  Its
 * CPU per frame,
 * read the same way as a gateway's, is what this machine's kernel charges for
 * one send() of that size on loopback: no gateway measured here can go below
 * it.  SIGUSR1 starts a window of --duration s at --rate; at its end one JSON
 * line on stdout.  It serves until SIGTERM.  GET /healthz answers 200.
 */
typedef struct fconn {
	struct fconn *prev, *next; /* every connection, for the exit */
	int fd;
	int order;    /* -1 until upgraded */
	uint32_t pos; /* its index in the order's list */
	uint32_t have;
	char req[1024];
} fconn_t;

typedef struct forder {
	fconn_t **c;
	uint32_t n, cap;
} forder_t;

static volatile sig_atomic_t floor_go;
static fconn_t *floor_conns;

static void on_usr1(int sig)
{
	(void)sig;
	floor_go = 1;
}

static void f_close(int ep, fconn_t *c, forder_t *orders)
{
	if (c->order >= 0) {
		forder_t *od = &orders[c->order];
		fconn_t *last = od->c[--od->n];

		od->c[c->pos] = last;
		last->pos = c->pos;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		floor_conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

/* The request in c->req is whole: 101, 200 for /healthz, else 404. 0 keeps c. */
static int f_request(const opts_t *o, fconn_t *c, forder_t *orders)
{
	static const char up[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
				 "Connection: Upgrade\r\n"
				 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
	static const char ok[] =
	    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
	static const char nf[] =
	    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	const char *path = c->req + 14, *end = NULL, *dash = NULL;
	long n;

	if (!strncmp(c->req, "GET /healthz ", 13)) {
		(void)!send(c->fd, ok, sizeof(ok) - 1, MSG_NOSIGNAL);
		return -1;
	}
	/* GET /v1/track/PREFIX-N[?query] HTTP/1.1: N after the last '-' of the path. */
	if (!strncmp(c->req, "GET /v1/track/", 14)) {
		end = path + strcspn(path, " ?\r\n");
		for (const char *q = path; q < end; q++)
			if (*q == '-')
				dash = q;
	}
	if (dash) {
		char *stop;

		n = strtol(dash + 1, &stop, 10) - o->order_base;
		if (stop == end && stop > dash + 1 && n >= 0 && n < o->orders) {
			forder_t *od = &orders[n];

			if (od->n == od->cap) {
				uint32_t cap = od->cap ? od->cap * 2 : 16;
				fconn_t **nc = realloc(od->c, cap * sizeof(*nc));

				if (!nc)
					die("out of memory");
				od->c = nc;
				od->cap = cap;
			}
			c->order = (int)n;
			c->pos = od->n;
			od->c[od->n++] = c;
			(void)!send(c->fd, up, sizeof(up) - 1, MSG_NOSIGNAL);
			return 0;
		}
	}
	(void)!send(c->fd, nf, sizeof(nf) - 1, MSG_NOSIGNAL);
	return -1;
}

static void f_readable(const opts_t *o, int ep, fconn_t *c, forder_t *orders)
{
	char sink[4096];
	ssize_t n;

	for (;;) {
		if (c->order >= 0) { /* pongs and closes: read and dropped */
			n = recv(c->fd, sink, sizeof(sink), 0);
		} else {
			n = recv(c->fd, c->req + c->have, sizeof(c->req) - 1 - c->have, 0);
			if (n > 0) {
				c->have += (uint32_t)n;
				c->req[c->have] = '\0';
				if (strstr(c->req, "\r\n\r\n")) {
					if (f_request(o, c, orders)) {
						f_close(ep, c, orders);
						return;
					}
				} else if (c->have == sizeof(c->req) - 1) {
					f_close(ep, c, orders);
					return;
				}
			}
		}
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			f_close(ep, c, orders);
			return;
		}
		if (n < 0)
			return;
	}
}

static int cmd_floor(const opts_t *o)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
	forder_t *orders = calloc((size_t)o->orders, sizeof(*orders));
	struct epoll_event evs[256];
	int ep = epoll_create1(EPOLL_CLOEXEC), one = 1;
	unsigned rr = 0;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	uint64_t t0 = 0, done = 0, frames = 0, dropped = 0, cut = 0, cpu0 = 0;
	bool on = false;

	if (!orders || ep < 0 || lfd < 0 || inet_pton(AF_INET, o->host, &sa.sin_addr) != 1)
		die("floor: cannot set up (numeric IPv4 --server?)");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0)
		die("floor: cannot listen on %s:%d: %s", o->host, o->port, strerror(errno));
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd,
		  &(struct epoll_event){.events = EPOLLIN, .data.ptr = NULL});
	signal(SIGUSR1, on_usr1);
	while (!stop_flag) {
		int n = epoll_wait(ep, evs, 256, on ? 1 : 100);

		for (int i = 0; i < n; i++) {
			fconn_t *c = evs[i].data.ptr;

			if (c) {
				f_readable(o, ep, c, orders);
				continue;
			}
			for (;;) {
				int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

				if (fd < 0)
					break;
				c = calloc(1, sizeof(*c));
				if (!c)
					die("out of memory");
				c->fd = fd;
				c->order = -1;
				c->next = floor_conns;
				if (floor_conns)
					floor_conns->prev = c;
				floor_conns = c;
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				epoll_ctl(ep, EPOLL_CTL_ADD, fd,
					  &(struct epoll_event){.events = EPOLLIN, .data.ptr = c});
			}
		}
		if (floor_go && !on) {
			floor_go = 0;
			on = true;
			t0 = mono_us();
			cpu0 = cpu_used_us(RUSAGE_SELF);
			done = frames = dropped = cut = 0;
		}
		if (!on)
			continue;
		uint64_t el = mono_us() - t0, due = (uint64_t)((double)el * o->rate / 1e6);

		if (el >= (uint64_t)(o->duration * 1e6))
			due = (uint64_t)(o->duration * o->rate);
		for (; done < due; done++) {
			char f[4 + 1024];
			int order = (int)(rr++ % (unsigned)o->orders), len;
			size_t hl;

			len = make_frame(o, order, f + 4, sizeof(f) - 4, now_us());
			if (len < 0 || len >= (int)sizeof(f) - 4)
				die("floor: frame too long");
			if (len < 126) {
				f[2] = (char)0x81;
				f[3] = (char)len;
				hl = 2;
			} else {
				f[0] = (char)0x81;
				f[1] = 126;
				f[2] = (char)(len >> 8);
				f[3] = (char)(len & 0xff);
				hl = 4;
			}
			const char *frame = f + 4 - hl;
			size_t flen = hl + (size_t)len;

			for (uint32_t k = 0; k < orders[order].n;) {
				fconn_t *fc = orders[order].c[k];
				ssize_t r = send(fc->fd, frame, flen, MSG_NOSIGNAL | MSG_DONTWAIT);

				if (r == (ssize_t)flen) {
					frames++;
				} else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
					dropped++; /* nothing of it went: the stream stays whole */
				} else {
					/* Part of a frame went (or the peer is gone): the stream is
					 * broken, so the connection goes; the last one moves to k.
					 */
					cut++;
					f_close(ep, fc, orders);
					continue;
				}
				k++;
			}
		}
		if (el >= (uint64_t)(o->duration * 1e6)) {
			uint64_t cpu = cpu_used_us(RUSAGE_SELF) - cpu0;

			on = false;
			printf("{\"cmd\":\"floor\",\"ok\":%" PRIu64 ",\"frames\":%" PRIu64
			       ",\"dropped\":%" PRIu64 ",\"cut\":%" PRIu64 ",\"cpu_us\":%" PRIu64
			       ",\"secs\":%.3f}\n",
			       done, frames, dropped, cut, cpu, (double)el / 1e6);
			fflush(stdout);
			if (!o->quiet)
				fprintf(stderr,
					"trackgate-bench floor: %" PRIu64 " updates, %" PRIu64
					" frames sent, %" PRIu64 " dropped, %" PRIu64
					" websockets cut mid-frame, %.2f us CPU per frame\n",
					done, frames, dropped, cut,
					frames ? (double)cpu / (double)frames : 0.0);
		}
	}
	while (floor_conns)
		f_close(ep, floor_conns, orders);
	for (int i = 0; i < o->orders; i++)
		free(orders[i].c);
	free(orders);
	close(lfd);
	close(ep);
	return 0;
}

/* --- attack: connections that sit in front of the gateway ------------------------------- */

/*
 * trackgate-bench attack holds --attackers connections from --sources, each
 * either "dribble" (the request line "GET /healthz HTTP/1.1\r\n" at once, then
 * one header byte a second, never the blank line) or "silent" (nothing at all).
 * A connection the server closes is opened again at once, as an attacker would:
 * the attack lasts however the server sheds it.  Once all are open (or --ramp
 * ran out) it says "N/M CONNS connections open" on stderr, then holds them for
 * --duration s or until SIGTERM, sampling how many are open every 100 ms, and
 * prints one JSON line.  --procs N splits them over N processes (one holds at
 * most ~19 000 descriptors here).
 */
enum { A_IDLE, A_CONNECTING, A_OPEN };

typedef struct aconn {
	int fd;
	uint8_t state;
	uint8_t answered; /* the server wrote something (an error answer) */
	uint32_t sent;	  /* dribble: bytes sent after the request line */
	uint64_t next_us; /* A_IDLE: when to connect; A_OPEN, dribble: the next byte */
} aconn_t;

typedef struct astats {
	uint64_t opened, connect_failed, server_closed, answered, bytes_sent;
	uint64_t held_min, held_sum, held_samples;
	int held_at_start;
} astats_t;

static const char dribble_line[] = "GET /healthz HTTP/1.1\r\n";

static void attack_run(const opts_t *o, int first, int n, int out_fd)
{
	int ep = epoll_create1(EPOLL_CLOEXEC), open_now = 0, connecting = 0;
	aconn_t *cs = calloc((size_t)n, sizeof(*cs));
	int *reopen = malloc((size_t)n * sizeof(*reopen)); /* a ring of connections to (re)open */
	int reopen_head = 0, reopen_n = n;
	bool dribble = !strcmp(o->attack, "dribble"), holding = false;
	uint64_t t0 = mono_us(), ramp_end, hold_end = 0, next_sample = 0;
	static astats_t st;
	struct epoll_event evs[512];
	char sink[4096];

	if (ep < 0 || !cs || !reopen)
		die("out of memory");
	for (int i = 0; i < n; i++) {
		cs[i].fd = -1;
		reopen[i] = i;
	}
	st.held_min = UINT64_MAX;
	ramp_end = t0 + (uint64_t)(o->ramp * 1e6);
	while (!stop_flag) {
		uint64_t t = mono_us();

		/* (Re)open connections whose time has come, at most 512 connecting at once. */
		while (reopen_n && connecting < 512) {
			int i = reopen[reopen_head];
			aconn_t *c = &cs[i];
			int gi = first + i;

			if (c->next_us > t)
				break;
			reopen_head = (reopen_head + 1) % n;
			reopen_n--;
			c->fd =
			    tcp_connect(o, o->n_sources ? o->sources[gi % o->n_sources] : NULL, 0);
			if (c->fd < 0) {
				st.connect_failed++;
				c->next_us = t + 100000; /* again in 100 ms */
				reopen[(reopen_head + reopen_n++) % n] = i;
				continue;
			}
			c->state = A_CONNECTING;
			c->answered = 0;
			c->sent = 0;
			epoll_ctl(ep, EPOLL_CTL_ADD, c->fd,
				  &(struct epoll_event){.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP,
							.data.u32 = (uint32_t)i});
			connecting++;
		}
		if (!holding && (open_now == n || t >= ramp_end)) {
			holding = true;
			hold_end = t + (uint64_t)(o->duration * 1e6);
			next_sample = t;
			st.held_at_start = open_now;
			if (!o->quiet)
				fprintf(stderr,
					"trackgate-bench: %d/%d %s connections open after %.1f s\n",
					open_now, n, o->attack, (double)(t - t0) / 1e6);
		}
		if (holding && t >= hold_end)
			break;
		if (holding && t >= next_sample) {
			st.held_sum += (uint64_t)open_now;
			st.held_samples++;
			if ((uint64_t)open_now < st.held_min)
				st.held_min = (uint64_t)open_now;
			next_sample += 100000;
		}
		if (dribble) { /* one more header byte a second on each open connection */
			for (int i = 0; i < n; i++) {
				aconn_t *c = &cs[i];

				if (c->state != A_OPEN || c->next_us > t)
					continue;
				if (send(c->fd, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) {
					c->sent++;
					st.bytes_sent++;
				}
				c->next_us += 1000000;
			}
		}
		int k = epoll_wait(ep, evs, 512, 20);

		t = mono_us();
		for (int e = 0; e < k; e++) {
			int i = (int)evs[e].data.u32;
			aconn_t *c = &cs[i];
			bool gone = false;

			if (c->state == A_CONNECTING) {
				int err = 0;
				socklen_t el = sizeof(err);

				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				connecting--;
				if (err) {
					st.connect_failed++;
					epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
					close(c->fd);
					c->fd = -1;
					c->state = A_IDLE;
					c->next_us = t + 100000;
					reopen[(reopen_head + reopen_n++) % n] = i;
					continue;
				}
				c->state = A_OPEN;
				st.opened++;
				open_now++;
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd,
					  &(struct epoll_event){.events = EPOLLIN | EPOLLRDHUP,
								.data.u32 = (uint32_t)i});
				if (dribble) {
					(void)!send(c->fd, dribble_line, sizeof(dribble_line) - 1,
						    MSG_NOSIGNAL | MSG_DONTWAIT);
					c->next_us = t + 1000000;
				}
			}
			if (!(evs[e].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
				continue;
			for (;;) {
				ssize_t r = recv(c->fd, sink, sizeof(sink), 0);

				if (r > 0) {
					if (!c->answered)
						st.answered++;
					c->answered = 1;
					continue;
				}
				gone = r == 0 || (errno != EAGAIN && errno != EINTR);
				break;
			}
			if (gone) { /* the server shed it: open it again at once */
				st.server_closed++;
				open_now--;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				c->fd = -1;
				c->state = A_IDLE;
				c->next_us = t;
				reopen[(reopen_head + reopen_n++) % n] = i;
			}
		}
	}
	if (!st.held_samples)
		st.held_min = 0;
	if (write(out_fd, &st, sizeof(st)) != (ssize_t)sizeof(st))
		die("cannot report to the parent");
	_exit(0); /* the kernel closes the sockets */
}

static int cmd_attack(const opts_t *o)
{
	static astats_t all, one;
	int procs = o->procs < 1 ? 1 : o->procs, fds[64];
	pid_t pids[64];
	uint64_t t0 = mono_us();

	if (strcmp(o->attack, "dribble") && strcmp(o->attack, "silent"))
		die("attack wants --attack dribble|silent");
	if (procs > 64)
		die("--procs is at most 64");
	for (int p = 0; p < procs; p++) {
		int pipefd[2], first = o->attackers * p / procs,
			       last = o->attackers * (p + 1) / procs;

		if (pipe(pipefd))
			die("pipe: %s", strerror(errno));
		pids[p] = fork();
		if (pids[p] < 0)
			die("fork: %s", strerror(errno));
		if (pids[p] == 0) {
			close(pipefd[0]);
			attack_run(o, first, last - first, pipefd[1]);
		}
		close(pipefd[1]);
		fds[p] = pipefd[0];
	}
	/* SIGTERM stops the children (the same process group gets it from a shell; run
	 * sends it to this process, which passes it on). */
	while (!stop_flag) {
		int st;
		pid_t w = waitpid(-1, &st, WNOHANG);

		if (w > 0 || (w < 0 && errno == ECHILD))
			break;
		usleep(20000);
	}
	if (stop_flag)
		for (int p = 0; p < procs; p++)
			kill(pids[p], SIGTERM);
	all.held_min = 0;
	for (int p = 0; p < procs; p++) {
		size_t got = 0;

		while (got < sizeof(one)) {
			ssize_t r = read(fds[p], (char *)&one + got, sizeof(one) - got);

			if (r <= 0)
				break;
			got += (size_t)r;
		}
		if (got == sizeof(one)) {
			all.opened += one.opened;
			all.connect_failed += one.connect_failed;
			all.server_closed += one.server_closed;
			all.answered += one.answered;
			all.bytes_sent += one.bytes_sent;
			all.held_min += one.held_min; /* a lower bound of the sum */
			all.held_sum += one.held_samples ? one.held_sum / one.held_samples : 0;
			all.held_at_start += one.held_at_start;
		}
		close(fds[p]);
		waitpid(pids[p], NULL, 0);
	}
	double secs = (double)(mono_us() - t0) / 1e6;

	if (!o->quiet)
		fprintf(stderr,
			"trackgate-bench attack (%s): %d connections, %d open at the start, at "
			"least %" PRIu64 " held throughout (%" PRIu64 " on average); %" PRIu64
			" opened, %" PRIu64 " closed by the server, %" PRIu64 " answered, %" PRIu64
			" failed connects (%.1f s)\n",
			o->attack, o->attackers, all.held_at_start, all.held_min, all.held_sum,
			all.opened, all.server_closed, all.answered, all.connect_failed, secs);
	printf("{\"cmd\":\"attack\",\"attack\":\"%s\",\"attackers\":%d,\"held_at_start\":%d,"
	       "\"held_min\":%" PRIu64 ",\"held_avg\":%" PRIu64 ",\"opened\":%" PRIu64
	       ",\"server_closed\":%" PRIu64 ",\"answered\":%" PRIu64 ",\"connect_failed\":%" PRIu64
	       ",\"bytes_sent\":%" PRIu64 ",\"secs\":%.3f}\n",
	       o->attack, o->attackers, all.held_at_start, all.held_min, all.held_sum, all.opened,
	       all.server_closed, all.answered, all.connect_failed, all.bytes_sent, secs);
	fflush(stdout);
	return 0;
}

/* --- probe: the legitimate client ---------------------------------------------------------- */

/*
 * trackgate-bench probe is one well-behaved client: --requests GET /healthz
 * and --upgrades websocket upgrades of /v1/track/PREFIX-0 (each until its
 * snapshot frame has arrived), interleaved evenly, each on a fresh
 * connection, one at a time, --rate starts a second at most.  Each has
 * --timeout s; one that times out, is refused (another status) or is cut off
 * counts as failed.  Nothing starts after --duration s (the rest count as
 * skipped).  Latency: connect() to the last byte of the answer (the snapshot
 * frame for an upgrade), answered ones only.
 */
typedef struct pkind {
	hist_t lat;
	uint64_t tried, ok, timeouts, refused, cut;
} pkind_t;

/* 1 once fd has one of events, 0 at the deadline (mono_us), -1 on error. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t t = mono_us();
		struct pollfd p = {.fd = fd, .events = events};
		int r;

		if (t >= deadline)
			return 0;
		r = poll(&p, 1, (int)((deadline - t + 999) / 1000));
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

enum { P_OK, P_TIMEOUT, P_REFUSED, P_CUT };

/* One request on a fresh connection; *lat_us its latency. */
static int probe_once(const opts_t *o, bool upgrade, uint64_t *lat_us)
{
	char req[512], buf[16384];
	uint64_t t0 = mono_us(), deadline = t0 + (uint64_t)(o->timeout * 1e6);
	const char *src = o->n_sources ? o->sources[0] : NULL;
	int fd = tcp_connect(o, src, 0), n, err = 0, res = P_CUT;
	socklen_t el = sizeof(err);
	size_t have = 0;

	if (fd < 0)
		return P_CUT;
	if (upgrade)
		n = snprintf(
		    req, sizeof(req),
		    "GET /v1/track/%s-%d HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
		    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		    "Sec-WebSocket-Version: 13\r\n\r\n",
		    o->prefix, o->order_base, o->host, o->port);
	else
		n = snprintf(req, sizeof(req), "GET /healthz HTTP/1.1\r\nHost: %s:%d\r\n\r\n",
			     o->host, o->port);
	int w = wait_fd(fd, POLLOUT, deadline);

	if (w <= 0) {
		res = w == 0 ? P_TIMEOUT : P_CUT;
		goto out;
	}
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
	if (err || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
		goto out;
	for (;;) {
		char *e;
		ssize_t r;

		w = wait_fd(fd, POLLIN, deadline);
		if (w <= 0) {
			res = w == 0 ? P_TIMEOUT : P_CUT;
			goto out;
		}
		r = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0)
			goto out; /* cut off before a whole answer */
		have += (size_t)r;
		buf[have] = '\0';
		e = memmem(buf, have, "\r\n\r\n", 4);
		if (!e) {
			if (have == sizeof(buf) - 1)
				goto out;
			continue;
		}
		size_t hl = (size_t)(e + 4 - buf);
		int status = have >= 12 ? atoi(buf + 9) : 0;

		if (status != (upgrade ? 101 : 200)) {
			res = P_REFUSED;
			goto out;
		}
		if (!upgrade) {
			char *cl = strcasestr(buf, "\r\ncontent-length:");
			size_t blen = cl && cl < e ? (size_t)strtoul(cl + 17, NULL, 10) : 0;

			if (have >= hl + blen) {
				res = P_OK;
				goto out;
			}
			continue;
		}
		/* The first frame after the 101: the snapshot. */
		const unsigned char *f = (const unsigned char *)buf + hl;
		size_t fl = have - hl, pl, fh = 2;

		if (fl < 2)
			continue;
		pl = f[1] & 0x7f;
		if (pl == 126) {
			if (fl < 4)
				continue;
			pl = (size_t)f[2] << 8 | f[3];
			fh = 4;
		} else if (pl == 127) {
			res = P_REFUSED; /* a snapshot is never that long here */
			goto out;
		}
		if (fl < fh + pl) {
			if (hl + fh + pl >= sizeof(buf) - 1)
				goto out;
			continue;
		}
		res = (f[0] & 0x0f) == 1 && pl > 18 && !memcmp(f + fh, "{\"type\":\"snapshot\"", 18)
			  ? P_OK
			  : P_REFUSED;
		if (res == P_OK) { /* a polite close (masked, key 0, code 1000) */
			static const char cl[] = {(char)0x88, (char)0x82, 0,	0,
						  0,	      0,	  0x03, (char)0xe8};

			(void)!send(fd, cl, sizeof(cl), MSG_NOSIGNAL | MSG_DONTWAIT);
		}
		goto out;
	}
out:
	*lat_us = mono_us() - t0;
	close(fd);
	return res;
}

static void probe_json(const char *name, const pkind_t *k)
{
	printf("\"%s\":{\"tried\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"failed\":%" PRIu64
	       ",\"timeouts\":%" PRIu64 ",\"refused\":%" PRIu64 ",\"cut\":%" PRIu64
	       ",\"p50_us\":%" PRIu64 ",\"p99_us\":%" PRIu64 ",\"max_us\":%" PRIu64 "}",
	       name, k->tried, k->ok, k->tried - k->ok, k->timeouts, k->refused, k->cut,
	       hist_pct(&k->lat, 50), hist_pct(&k->lat, 99), k->lat.max);
}

static int cmd_probe(const opts_t *o)
{
	static pkind_t kinds[2]; /* 0: /healthz, 1: upgrade */
	int total = o->requests + o->upgrades, skipped = 0;
	uint64_t t0 = mono_us(), end = t0 + (uint64_t)(o->duration * 1e6);

	if (o->requests < 0 || o->upgrades < 0 || total < 1 || o->timeout <= 0)
		die("probe wants --requests and/or --upgrades, and a positive --timeout");
	for (int i = 0; i < total; i++) {
		/* Upgrades spread evenly among the requests. */
		bool up = (long)(i + 1) * o->upgrades / total > (long)i * o->upgrades / total;
		pkind_t *k = &kinds[up];
		uint64_t lat, t = mono_us();

		if (stop_flag || t >= end) {
			skipped = total - i;
			break;
		}
		if (o->rate > 0) {
			uint64_t due = t0 + (uint64_t)((double)i * 1e6 / o->rate);

			if (due > t)
				usleep((useconds_t)(due - t));
		}
		k->tried++;
		switch (probe_once(o, up, &lat)) {
		case P_OK:
			k->ok++;
			hist_add(&k->lat, lat);
			break;
		case P_TIMEOUT:
			k->timeouts++;
			break;
		case P_REFUSED:
			k->refused++;
			break;
		default:
			k->cut++;
			break;
		}
	}
	double secs = (double)(mono_us() - t0) / 1e6;

	if (!o->quiet)
		for (int u = 0; u < 2; u++)
			fprintf(stderr,
				"trackgate-bench probe: %s %" PRIu64 " tried, %" PRIu64
				" ok, %" PRIu64 " timed out, %" PRIu64 " refused, %" PRIu64
				" cut off; us p50 %" PRIu64 " p99 %" PRIu64 " max %" PRIu64 "%s\n",
				u ? "upgrade+snapshot" : "/healthz", kinds[u].tried, kinds[u].ok,
				kinds[u].timeouts, kinds[u].refused, kinds[u].cut,
				hist_pct(&kinds[u].lat, 50), hist_pct(&kinds[u].lat, 99),
				kinds[u].lat.max,
				u && skipped ? " (budget spent: the rest skipped)" : "");
	printf("{\"cmd\":\"probe\",\"secs\":%.3f,\"skipped\":%d,", secs, skipped);
	probe_json("healthz", &kinds[0]);
	putchar(',');
	probe_json("upgrade", &kinds[1]);
	printf("}\n");
	fflush(stdout);
	return 0;
}

/* --sources: comma-separated IPv4 addresses; A.B.C.X-Y stands for A.B.C.X to A.B.C.Y. */
static void add_sources(opts_t *o, const char *arg)
{
	char list[8192], *save = NULL;

	snprintf(list, sizeof(list), "%s", arg);
	for (char *a = strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
		char *dot = strrchr(a, '.'), *dash = dot ? strchr(dot, '-') : NULL;
		int lo, hi;

		if (!dash) {
			lo = hi = -1;
		} else {
			*dash = '\0';
			lo = atoi(dot + 1);
			hi = atoi(dash + 1);
			*dot = '\0';
			if (lo < 0 || hi > 255 || lo > hi)
				die("--sources: bad range in %s", arg);
		}
		for (int x = lo; x <= hi; x++) {
			if (o->n_sources == (int)(sizeof(o->sources) / sizeof(o->sources[0])))
				die("--sources: at most %d addresses",
				    (int)(sizeof(o->sources) / sizeof(o->sources[0])));
			if (x < 0)
				snprintf(o->sources[o->n_sources], sizeof(o->sources[0]), "%s", a);
			else
				snprintf(o->sources[o->n_sources], sizeof(o->sources[0]), "%s.%d",
					 a, x);
			o->n_sources++;
		}
	}
}

static void usage(FILE *f)
{
	fputs(
	    "usage: trackgate-bench watch|publish|floor|attack|probe [options]\n"
	    "\n"
	    "common:\n"
	    "  --server HOST:PORT     the gateway (numeric IPv4; default 127.0.0.1:8080)\n"
	    "  --orders N             orders PREFIX-0 .. PREFIX-(N-1) (default 100)\n"
	    "  --order-base N         first order number (default 0)\n"
	    "  --prefix P             order id prefix (default bench)\n"
	    "  --duration SECONDS     how long to measure / publish (default 10)\n"
	    "  --sources A,B,...      loopback source addresses, round robin; A.B.C.X-Y is a\n"
	    "                         range (at most 256 in all)\n"
	    "  --quiet                only the JSON result on stdout\n"
	    "watch:\n"
	    "  --watchers N           websockets, spread over the orders (default 1000)\n"
	    "  --procs N              processes sharing them (default 1)\n"
	    "  --ramp SECONDS         time allowed to open them all (default 60)\n"
	    "  --idle                 hold them and count frames, parse nothing\n"
	    "  --non-reading FRACTION this share never reads after the handshake\n"
	    "  --token T              ?token=T on every websocket\n"
	    "publish:\n"
	    "  --redis URL            EVALSHA apply_update.lua on unix:///PATH or redis://H:P\n"
	    "  --http                 POST /v1/updates to --server with --key KEY\n"
	    "  --nchan PATH           POST frames to an nchan publisher at PATH<order id>\n"
	    "  --webhook-secret S     POST signed Uber Direct courier_update webhooks to\n"
	    "                         /v1/webhooks/uber_direct (HMAC-SHA256 with S)\n"
	    "  --rate N               updates per second (default 1000; 0 = as fast as answered)\n"
	    "  --conns N              HTTP connections (default 4)\n"
	    "floor (listens on --server; SIGUSR1 starts --duration s of --rate updates/s):\n"
	    "  a websocket server that only send()s each update's frame to its order's\n"
	    "  websockets: the kernel's cost per frame, below which no gateway can go\n"
	    "attack (held --duration s or until SIGTERM; one closed is opened again):\n"
	    "  --attack dribble|silent  a request line, then a header byte a second; or nothing\n"
	    "  --attackers N          connections (default 400), over --sources, --procs\n"
	    "  --ramp SECONDS         time allowed to open them all (default 60)\n"
	    "probe (one client, one request at a time, each on a fresh connection):\n"
	    "  --requests N           GET /healthz requests (default 500)\n"
	    "  --upgrades N           upgrades of /v1/track/PREFIX-ORDER_BASE, each until its\n"
	    "                         snapshot (default 100), spread among the requests\n"
	    "  --timeout SECONDS      what each may take (default 5); --rate N starts/s at most;\n"
	    "                         nothing starts after --duration s; source: the first of "
	    "--sources\n",
	    f);
}

int main(int argc, char **argv)
{
	static opts_t o;
	static const struct option lo[] = {
	    {"server", 1, 0, 's'},   {"orders", 1, 0, 'o'},	 {"order-base", 1, 0, 'B'},
	    {"prefix", 1, 0, 'P'},   {"duration", 1, 0, 'd'},	 {"sources", 1, 0, 'S'},
	    {"watchers", 1, 0, 'w'}, {"procs", 1, 0, 'p'},	 {"ramp", 1, 0, 'R'},
	    {"idle", 0, 0, 'i'},     {"non-reading", 1, 0, 'N'}, {"token", 1, 0, 't'},
	    {"redis", 1, 0, 'r'},    {"http", 0, 0, 'H'},	 {"key", 1, 0, 'k'},
	    {"nchan", 1, 0, 'n'},    {"rate", 1, 0, 'x'},	 {"conns", 1, 0, 'c'},
	    {"quiet", 0, 0, 'q'},    {"help", 0, 0, 'h'},	 {"webhook-secret", 1, 0, 'W'},
	    {"attack", 1, 0, 'a'},   {"attackers", 1, 0, 'A'},	 {"requests", 1, 0, 'Q'},
	    {"upgrades", 1, 0, 'U'}, {"timeout", 1, 0, 'T'},	 {0, 0, 0, 0},
	};
	const char *cmd;
	int c;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	cmd = argv[1];
	snprintf(o.host, sizeof(o.host), "127.0.0.1");
	o.port = 8080;
	o.orders = 100;
	o.watchers = 1000;
	o.duration = 10;
	o.ramp = 60;
	o.procs = 1;
	o.rate = -1; /* not given: publish and floor 1000, probe no limit */
	o.conns = 4;
	o.attackers = 400;
	o.requests = 500;
	o.upgrades = 100;
	o.timeout = 5;
	snprintf(o.prefix, sizeof(o.prefix), "bench");
	snprintf(o.mode, sizeof(o.mode), "redis");
	optind = 2;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			if (sscanf(optarg, "%63[^:]:%d", o.host, &o.port) != 2)
				die("--server wants HOST:PORT");
			break;
		case 'o':
			o.orders = atoi(optarg);
			break;
		case 'B':
			o.order_base = atoi(optarg);
			break;
		case 'P':
			snprintf(o.prefix, sizeof(o.prefix), "%s", optarg);
			break;
		case 'd':
			o.duration = atof(optarg);
			break;
		case 'S':
			add_sources(&o, optarg);
			break;
		case 'w':
			o.watchers = atoi(optarg);
			break;
		case 'p':
			o.procs = atoi(optarg);
			break;
		case 'R':
			o.ramp = atof(optarg);
			break;
		case 'i':
			o.idle = 1;
			break;
		case 'N':
			o.non_reading = atof(optarg);
			break;
		case 't':
			snprintf(o.token, sizeof(o.token), "%s", optarg);
			break;
		case 'r':
			snprintf(o.mode, sizeof(o.mode), "redis");
			snprintf(o.redis, sizeof(o.redis), "%s", optarg);
			break;
		case 'H':
			snprintf(o.mode, sizeof(o.mode), "http");
			break;
		case 'k':
			snprintf(o.key, sizeof(o.key), "%s", optarg);
			break;
		case 'n':
			snprintf(o.mode, sizeof(o.mode), "nchan");
			snprintf(o.nchan_path, sizeof(o.nchan_path), "%s", optarg);
			break;
		case 'x':
			o.rate = atof(optarg);
			break;
		case 'c':
			o.conns = atoi(optarg);
			break;
		case 'q':
			o.quiet = 1;
			break;
		case 'W':
			snprintf(o.mode, sizeof(o.mode), "webhook");
			snprintf(o.secret, sizeof(o.secret), "%s", optarg);
			break;
		case 'a':
			snprintf(o.attack, sizeof(o.attack), "%s", optarg);
			break;
		case 'A':
			o.attackers = atoi(optarg);
			break;
		case 'Q':
			o.requests = atoi(optarg);
			break;
		case 'U':
			o.upgrades = atoi(optarg);
			break;
		case 'T':
			o.timeout = atof(optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (o.orders < 1 || o.watchers < 1 || o.duration <= 0)
		die("--orders, --watchers and --duration must be positive");
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if (!strcmp(cmd, "watch"))
		return cmd_watch(&o);
	if (!strcmp(cmd, "attack"))
		return cmd_attack(&o);
	if (strcmp(cmd, "probe") && o.rate < 0)
		o.rate = 1000;
	if (!strcmp(cmd, "probe")) {
		if (o.rate < 0)
			o.rate = 0; /* no limit by default */
		return cmd_probe(&o);
	}
	if (!strcmp(cmd, "floor")) {
		order_seq = calloc((size_t)o.orders, sizeof(*order_seq));
		if (!order_seq)
			die("out of memory");
		return cmd_floor(&o);
	}
	if (!strcmp(cmd, "publish")) {
		order_seq = calloc((size_t)o.orders, sizeof(*order_seq));
		if (!order_seq)
			die("out of memory");
		if (!strcmp(o.mode, "redis")) {
			if (!o.redis[0])
				die("publish wants --redis URL, --http or --nchan PATH");
			return pub_redis(&o);
		}
		if (!strcmp(o.mode, "http") && !o.key[0])
			die("--http wants --key KEY (an ingest key)");
		return pub_http(&o);
	}
	usage(stderr);
	return 2;
}
