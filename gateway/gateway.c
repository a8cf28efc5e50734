#include "gateway.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <systemd/sd-daemon.h>

#include "client_addr.h"
#include "group.h"
#include "listener.h"
#include "log.h"

static void gateway_finish(gateway_t *g);
static void gateway_tls_start(gateway_t *g);

/*
 * Up to max-connections are served; the next GATEWAY_SPARE_CONNS are
 * accepted only to be told 503 / 1013 (server.c); past those a socket is
 * closed at once, keeping descriptors in hand.
 */
#define GATEWAY_SPARE_CONNS 64

static bool gateway_admit(void *arg, unsigned pending)
{
	gateway_t *g = arg;

	/* Connections in the listener's lobby hold a descriptor too. */
	unsigned n_conns = g->server.n_conns;

	if (g->stopping || n_conns + pending >= g->cfg->max_connections + GATEWAY_SPARE_CONNS) {
		g->server.metrics->refused[REFUSE_ACCEPT_LIMIT]++;
		log_event(LOG_WARN, "connection_refused", "reason=%s conns=%u",
			  g->stopping ? "stopping" : "max_connections", n_conns);
		return false;
	}
	return true;
}

/* The lobby's per-address cap does not apply to a trusted proxy: all its clients share it. */
static bool gateway_trusted_proxy(void *arg, const char *addr)
{
	const config_t *cfg = arg;

	return client_addr_trusted(addr, cfg->trusted_proxies, cfg->n_trusted_proxies);
}

/* The connections in both listeners' lobbies, for the server's /metrics. */
static listener_stats_t gateway_pending(void *arg)
{
	gateway_t *g = arg;
	listener_stats_t a = listener_stats(g->listener), m = listener_stats(g->metrics_listener);

	a.pending += m.pending;
	a.first_byte_timeouts += m.first_byte_timeouts;
	a.head_timeouts += m.head_timeouts;
	a.refused_per_client += m.refused_per_client;
	a.adopt_failed += m.adopt_failed;
	return a;
}

static void gateway_signal_cb(uv_signal_t *h, int signum)
{
	gateway_t *g = h->data;

	gateway_shutdown(g, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* A TLS reload in flight: the files are read in the thread pool, never on the loop. */
typedef struct gateway_tls_reload {
	uv_work_t work;
	gateway_t *g;
	char *cert, *key; /* is malloc'd: the files' contents */
	size_t cert_len, key_len;
	int err; /* errno of the failed read, 0 when both were read */
} gateway_tls_reload_t;

static char *gateway_read_file(const char *path, size_t *len, int *err)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > (1 << 20) ||
	    fseek(f, 0, SEEK_SET) != 0 || !(buf = malloc((size_t)n + 1)) ||
	    fread(buf, 1, (size_t)n, f) != (size_t)n) {
		*err = errno ? errno : EIO;
		free(buf);
		buf = NULL;
	} else {
		buf[n] = '\0';
		*len = (size_t)n;
	}
	if (f)
		fclose(f);
	return buf;
}

/* Whether cert (PEM) parses and key (PEM) is its private key. */
static bool gateway_tls_pair_ok(const char *cert, size_t cert_len, const char *key, size_t key_len)
{
	BIO *cb = BIO_new_mem_buf(cert, (int)cert_len), *kb = BIO_new_mem_buf(key, (int)key_len);
	X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
	EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
	bool ok = x && k && X509_check_private_key(x, k) == 1;

	X509_free(x);
	EVP_PKEY_free(k);
	BIO_free(cb);
	BIO_free(kb);
	ERR_clear_error();
	return ok;
}

/* In the thread pool: read both files and check they make a pair. */
static void gateway_tls_read(uv_work_t *w)
{
	gateway_tls_reload_t *r = w->data;

	errno = 0;
	r->cert = gateway_read_file(r->g->cfg->tls_cert, &r->cert_len, &r->err);
	if (r->cert)
		r->key = gateway_read_file(r->g->cfg->tls_key, &r->key_len, &r->err);
	if (r->cert && r->key && !gateway_tls_pair_ok(r->cert, r->cert_len, r->key, r->key_len))
		r->err = EINVAL;
}

static void gateway_tls_apply(uv_work_t *w, int status)
{
	gateway_tls_reload_t *r = w->data;
	gateway_t *g = r->g;

	g->reloading = false;
	if (g->tls_reload_pending && !g->finished) {
		/* Read again: the files may have changed after this read began. */
		g->tls_reload_pending = false;
		gateway_tls_start(g);
	}
	if (status == 0 && !r->err && r->cert && r->key && g->lws && !g->finished) {
		/* lws parses the new pair and swaps it in only if it is good. */
		if (lws_tls_cert_updated(g->lws, g->cfg->tls_cert, g->cfg->tls_key, r->cert,
					 r->cert_len, r->key, r->key_len) == 0)
			log_event(LOG_INFO, "tls_reloaded", "cert=%s", g->cfg->tls_cert);
		else
			log_event(
			    LOG_ERROR, "tls_reload_failed",
			    "cert=%s error=\"not a valid certificate and key; the old pair stays\"",
			    g->cfg->tls_cert);
	} else if (status == 0 && !g->finished) {
		log_event(LOG_ERROR, "tls_reload_failed",
			  "cert=%s error=\"%s; the old pair stays\"", g->cfg->tls_cert,
			  r->err == EINVAL ? "not a PEM certificate and its key"
					   : strerror(r->err));
	}
	free(r->cert);
	free(r->key);
	free(r);
}

static void gateway_reload_config(gateway_t *g);

/* A reload of the secrets: the config is re-read in the thread pool into fresh. */
typedef struct gateway_reload {
	uv_work_t work;
	gateway_t *g;
	config_t *fresh; /* is malloc'd */
	int rc;
	char why[512]; /* what config_load said was wrong */
} gateway_reload_t;

static void gateway_reload_read(uv_work_t *w)
{
	gateway_reload_t *r = w->data;

	config_defaults(r->fresh);
	config_capture_errors(r->why, sizeof(r->why));
	r->rc = config_load(r->fresh, r->g->argc, r->g->argv);
	config_capture_errors(NULL, 0);
	for (char *p = r->why; *p; p++)
		if (*p == '\n' || *p == '"')
			*p = p[1] ? (*p == '"' ? '\'' : ';') : '\0'; /* one line, one value */
}

/*
 * On the loop: swaps in what can change live, all or nothing: the settings
 * whose reload is CONFIG_RELOAD_LIVE in settings.c's table (config_apply_reload);
 * the log names the changed ones that wait for a restart.
 */
static void gateway_reload_apply(uv_work_t *w, int status)
{
	gateway_reload_t *r = w->data;
	gateway_t *g = r->g;
	config_t *live = (config_t *)g->cfg;

	g->reloading_config = false;
	if (status != 0 || r->rc != CONFIG_OK) {
		log_event(LOG_ERROR, "reload_failed",
			  "reason=\"%s\" action=\"the previous keys and secrets stay\"",
			  r->why[0] ? r->why : "the configuration or a key file is not valid");
	} else if (!g->finished) {
		char unapplied[256];
		bool changed = config_apply_reload(live, r->fresh, unapplied, sizeof(unapplied));
		const char *creds = getenv("CREDENTIALS_DIRECTORY");

		/* A reload that changed nothing says so: under systemd's LoadCredential= the
		 * files are copies made at start, which a reload reads again unchanged. */
		log_event(changed ? LOG_INFO : LOG_WARN, "reload",
			  "status=%s ingest_keys=%u webhooks=%u token_keys=%u%s%s%s",
			  changed ? "ok" : "unchanged", live->n_ingest_keys, live->n_webhooks,
			  live->token_keys.n, unapplied[0] ? " needs_restart=" : "", unapplied,
			  !changed && creds && creds[0]
			      ? " hint=\"keys under $CREDENTIALS_DIRECTORY are copied at start: "
				"systemctl restart to load changed ones\""
			      : "");
	}
	/* The copies of the secrets go with the scratch config. */
	explicit_bzero(r->fresh, sizeof(*r->fresh));
	free(r->fresh);
	free(r);
	if (g->reload_pending && !g->finished) {
		/* A SIGHUP came while this one read: its changes may be newer. */
		g->reload_pending = false;
		gateway_reload_config(g);
	}
}

static void gateway_reload_config(gateway_t *g)
{
	gateway_reload_t *r;

	if (!g->argv)
		return;
	if (g->reloading_config) {
		g->reload_pending = true;
		return;
	}
	r = calloc(1, sizeof(*r));
	if (!r || !(r->fresh = malloc(sizeof(*r->fresh)))) {
		free(r);
		log_event(LOG_ERROR, "reload_failed", "reason=\"out of memory\"");
		return;
	}
	r->g = g;
	r->work.data = r;
	if (uv_queue_work(g->loop, &r->work, gateway_reload_read, gateway_reload_apply) != 0) {
		free(r->fresh);
		free(r);
		return;
	}
	g->reloading_config = true;
}

/*
 * SIGHUP: re-reads the keys and secrets (and the TLS pair, if any) off the
 * loop and swaps them in without dropping a connection; a reload that fails
 * keeps the previous set and says why.
 */
static void gateway_sighup_cb(uv_signal_t *h, int signum)
{
	gateway_t *g = h->data;

	gateway_reload_config(g);
	if (g->cfg->tls_cert[0])
		gateway_tls_start(g);
}

/* Starts a TLS reload, or marks one to follow the reload in flight. */
static void gateway_tls_start(gateway_t *g)
{
	gateway_tls_reload_t *r;

	if (g->reloading) {
		g->tls_reload_pending = true;
		return;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return;
	r->g = g;
	r->work.data = r;
	if (uv_queue_work(g->loop, &r->work, gateway_tls_read, gateway_tls_apply) != 0) {
		free(r);
		return;
	}
	g->reloading = true;
}

/*
 * Twice a second: tells systemd we are ready once listening with both Redis
 * connections up (READY=1, once), keeps its watchdog fed from the loop
 * itself (a stuck loop stops the pings), and says how busy we are.  All
 * no-ops outside systemd (no NOTIFY_SOCKET).  A worker of a group says
 * none of it to systemd: it beats its slot's heartbeat from here (with its
 * readiness, counters and gauges), and the supervisor, which watches every
 * slot, alone speaks for the group (workers.c).
 */
static void gateway_tick_cb(uv_timer_t *t)
{
	gateway_t *g = t->data;

	if (group_is_worker()) {
		metrics_sample_t s;
		bool ready = server_ready(&g->server) && !g->stopping;

		if (ready && !g->notified_ready) {
			g->notified_ready = true; /* logged before the supervisor can see it */
			log_event(LOG_INFO, "ready", "%s", "");
		}
		server_sample(&g->server, &s);
		group_beat(ready, &s);
		server_tick(&g->server);
		return;
	}
	if (server_ready(&g->server) && !g->notified_ready && !g->stopping) {
		g->notified_ready = true;
		sd_notifyf(0, "READY=1\nSTATUS=serving on %s:%d",
			   g->cfg->listen_host[0] ? g->cfg->listen_host : "*", g->cfg->listen_port);
		log_event(LOG_INFO, "ready", "%s", "");
	}
	if (g->watchdog)
		sd_notify(0, "WATCHDOG=1");
	server_tick(&g->server);
}

/*
 * Runs after each loop iteration's I/O callbacks.  The time since the last
 * check, less what the loop spent waiting for events, is the work of one
 * iteration: timers, every ready socket's callbacks, Redis replies.  A long
 * one (a burst, or the process kept off the CPU) delays every connection.
 */
static void gateway_loop_check_cb(uv_check_t *c)
{
	gateway_t *g = c->data;
	uint64_t now, idle;

	server_after_io(&g->server);
	/* The drain ends here, after the I/O that answered or closed the last one. */
	if (g->stopping && server_idle(&g->server))
		gateway_finish(g);
	if (!g->loop_metrics)
		return;
	now = uv_hrtime();
	idle = uv_metrics_idle_time(c->loop);
	if (g->loop_mark_ns) {
		uint64_t span = now - g->loop_mark_ns, waited = idle - g->loop_idle_ns;

		metrics_observe(&g->server.metrics->loop_busy,
				span > waited ? (double)(span - waited) / 1e6 : 0);
	}
	g->loop_mark_ns = now;
	g->loop_idle_ns = idle;
}

static void gateway_drain_cb(uv_timer_t *t)
{
	gateway_t *g = t->data;

	log_event(LOG_WARN, "drain_timeout", "watchers=%u ingest=%u", g->server.hub.n_watchers,
		  g->server.http.n_ingest);
	gateway_finish(g);
}

int gateway_start(gateway_t *g, uv_loop_t *loop, const config_t *cfg)
{
	struct lws_context_creation_info info;
	void *foreign_loops[1] = {loop};

	memset(g, 0, sizeof(*g));
	g->loop = loop;
	g->cfg = cfg;
	/*
	 * No lws validity timers (hangup 0 turns them off; with no policy at all
	 * lws would apply its default of 300 s): lws 4.1 keeps them in one sorted
	 * list, so each ping, pong or new connection walked every connection.
	 * The server pings from its own queues instead (ws/keepalive.c).
	 */
	g->retry.secs_since_valid_ping = 0;
	g->retry.secs_since_valid_hangup = 0;

	uv_signal_init(loop, &g->sigint);
	uv_signal_init(loop, &g->sigterm);
	uv_signal_init(loop, &g->sighup);
	uv_timer_init(loop, &g->drain_timer);
	uv_timer_init(loop, &g->tick);
	g->tick.data = g;
	/*
	 * The idle-time metric costs libuv one epoll_wait(0) before each blocking
	 * wait: at most a few thousand cheap syscalls a second, about 0.1 us per
	 * frame at 50 000 frames/s, for knowing when the loop stalls.
	 */
	g->loop_metrics = uv_loop_configure(loop, UV_METRICS_IDLE_TIME) == 0;
	/* Also where the server's deferred work runs (server_after_io). */
	uv_check_init(loop, &g->loop_check);
	g->loop_check.data = g;
	uv_check_start(&g->loop_check, gateway_loop_check_cb);
	uv_unref((uv_handle_t *)&g->loop_check); /* it never keeps the loop alive */
	{
		uint64_t usec = 0;

		g->watchdog = !group_is_worker() && sd_watchdog_enabled(0, &usec) > 0;
	}
	g->sigint.data = g->sigterm.data = g->sighup.data = g->drain_timer.data = g;
	uv_signal_start(&g->sigint, gateway_signal_cb, SIGINT);
	uv_signal_start(&g->sigterm, gateway_signal_cb, SIGTERM);
	uv_signal_start(&g->sighup, gateway_sighup_cb, SIGHUP);
	/* After the handles above: a failure from here on tears them down (gateway_finish). */
	{
		server_events_t ev = {.pending = gateway_pending, .arg = g};

		if (server_init(&g->server, loop, cfg, &ev))
			return -1;
	}

	log_route_lws();

	memset(&info, 0, sizeof(info));
	/* No LWS_SERVER_OPTION_VALIDATE_UTF8: server.c checks text messages and close
	 * reasons itself (lws 4.1 drops a close with a bad reason without a close code). */
	info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	if (cfg->tls_cert[0])
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.foreign_loops = foreign_loops;
	info.pcontext = &g->lws;
	info.user = &g->server; /* server.c's callbacks find it there */
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.timeout_secs = cfg->http_timeout_s; /* headers, body, handshakes */
	info.max_http_header_data = 4096;
	/*
	 * At most this many requests and handshakes hold a header table (about
	 * 5.5 KiB) at once; more wait for one.  lws's default is one per
	 * descriptor, so a flood of half-sent requests could hold 20 000 of
	 * them (110 MiB).
	 */
	info.max_http_header_pool = 256;
	info.pt_serv_buf_size = 16384;
	info.retry_and_idle_policy = &g->retry;
	g->lws = lws_create_context(&info);
	if (!g->lws) {
		log_event(LOG_ERROR, "lws_context_failed",
			  "hint=\"is libwebsockets-evlib-uv installed?\"");
		return -1;
	}

	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_LIBUV;
	/* A server vhost without a socket of its own: the listener adopts into it. */
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	if (cfg->tls_cert[0]) {
		/* Adopted sockets get TLS because the vhost has it (LWS_ADOPT_ALLOW_SSL). */
		info.ssl_cert_filepath = cfg->tls_cert;
		info.ssl_private_key_filepath = cfg->tls_key;
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT; /* lws reads it per vhost */
		/* HTTP/1.1 only: websockets over h2 are not what browsers use, and lws 4.1's h2
		 * lost the request line on adopted sockets ("Missing URI"). */
		info.alpn = "http/1.1";
	}
	info.protocols = server_protocols;
	info.vhost_name = "trackgate";
	info.keepalive_timeout = (int)cfg->http_timeout_s;
	info.timeout_secs_ah_idle =
	    cfg->http_timeout_s; /* per vhost: a client holding a header table */
	info.retry_and_idle_policy = &g->retry;
	g->vhost = lws_create_vhost(g->lws, &info);
	if (!g->vhost) {
		log_event(LOG_ERROR, "vhost_failed", "%s", "");
		return -1;
	}
	g->listener = listener_open(loop, cfg->listen_host, cfg->listen_port, cfg->workers > 1,
				    g->vhost, gateway_admit, g);
	if (!g->listener)
		return -1;
	listener_set_send_buffer(g->listener, (int)cfg->send_buffer);
	{
		listener_lobby_t lobby = {
		    /* Never longer than a request head may take anyway. */
		    .first_byte_timeout_ms =
			(uint64_t)(cfg->first_byte_timeout_s < cfg->http_timeout_s
				       ? cfg->first_byte_timeout_s
				       : cfg->http_timeout_s) *
			1000,
		    .head_timeout_ms = (uint64_t)cfg->http_timeout_s * 1000,
		    .max_per_client = cfg->max_pending_per_client,
		    .peek_only = cfg->tls_cert[0] != '\0',
		    .trusted = gateway_trusted_proxy,
		    .trusted_arg = (void *)cfg,
		};

		listener_set_lobby(g->listener, &lobby);
		if (cfg->metrics_port) {
			/* Same vhost: server.c tells a scrape by the local port (lws picks vhosts
			 * by Host). */
			g->metrics_listener =
			    listener_open(loop, cfg->metrics_host, cfg->metrics_port,
					  cfg->workers > 1, g->vhost, gateway_admit, g);
			if (!g->metrics_listener)
				return -1;
			listener_set_lobby(g->metrics_listener, &lobby);
		}
	}

	if (server_start(&g->server))
		return -1;
	uv_timer_start(&g->tick, gateway_tick_cb, 0, 500);
	if (cfg->redis_sentinel.n)
		log_event(LOG_INFO, "listening",
			  "addr=%s:%d redis=redis+sentinel://%s:%d/%s sentinels=%u",
			  cfg->listen_host[0] ? cfg->listen_host : "*", cfg->listen_port,
			  cfg->redis_sentinel.host[0], cfg->redis_sentinel.port[0],
			  cfg->redis_sentinel.master, cfg->redis_sentinel.n);
	else if (cfg->redis_unix[0])
		log_event(LOG_INFO, "listening", "addr=%s:%d redis=unix://%s",
			  cfg->listen_host[0] ? cfg->listen_host : "*", cfg->listen_port,
			  cfg->redis_unix);
	else
		log_event(LOG_INFO, "listening", "addr=%s:%d redis=redis://%s:%d",
			  cfg->listen_host[0] ? cfg->listen_host : "*", cfg->listen_port,
			  cfg->redis_host, cfg->redis_port);
	return 0;
}

void gateway_shutdown(gateway_t *g, const char *why)
{
	if (g->stopping)
		return;
	g->stopping = true;
	if (!group_is_worker()) /* the supervisor says it for a group */
		sd_notify(0, "STOPPING=1\nSTATUS=draining");
	log_event(LOG_INFO, "shutting_down", "why=%s watchers=%u ingest=%u", why,
		  g->server.hub.n_watchers, g->server.http.n_ingest);
	listener_close(g->listener); /* stop accepting */
	g->listener = NULL;
	server_stop(&g->server);
	uv_timer_start(&g->drain_timer, gateway_drain_cb, (uint64_t)g->cfg->drain_timeout_s * 1000,
		       0);
	if (server_idle(&g->server))
		gateway_finish(g);
}

static void gateway_broker_stopped(void *arg)
{
	gateway_t *g = arg;

	/* First destroy: lws starts closing its handles on the loop. */
	if (g->lws)
		lws_context_destroy(g->lws);
}

/* Everything has drained (or the drain timed out): close our handles and Redis. */
static void gateway_finish(gateway_t *g)
{
	if (g->finished)
		return;
	g->finished = true;
	listener_close(g->listener);
	g->listener = NULL;
	listener_close(g->metrics_listener);
	g->metrics_listener = NULL;
	uv_timer_stop(&g->drain_timer);
	uv_close((uv_handle_t *)&g->drain_timer, NULL);
	uv_timer_stop(&g->tick);
	uv_close((uv_handle_t *)&g->tick, NULL);
	if (g->loop_check.data) {
		uv_check_stop(&g->loop_check);
		uv_close((uv_handle_t *)&g->loop_check, NULL);
	}
	uv_close((uv_handle_t *)&g->sigint, NULL);
	uv_close((uv_handle_t *)&g->sigterm, NULL);
	uv_close((uv_handle_t *)&g->sighup, NULL);
	/*
	 * Closing them restored the default actions: a second SIGTERM (an
	 * impatient supervisor, a retried stop) must not kill a process that is
	 * already on its way to exit 0.
	 */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	server_close(&g->server, gateway_broker_stopped, g);
}

int gateway_teardown(gateway_t *g)
{
	int rc;

	if (!g->finished) {
		/* Start-up failed before the loop ran: close what was opened. */
		g->stopping = true;
		gateway_finish(g);
		uv_run(g->loop, UV_RUN_DEFAULT);
	}
	/* Second destroy frees the context (lws NULLs g->lws through pcontext). */
	if (g->lws)
		lws_context_destroy(g->lws);
	uv_run(g->loop, UV_RUN_DEFAULT);
	server_free(&g->server);
	rc = uv_loop_close(g->loop);
	if (rc)
		log_event(LOG_ERROR, "loop_not_closed", "error=\"%s\"", uv_strerror(rc));
	return rc;
}
