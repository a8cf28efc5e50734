/*
 * In-process tests of gateway/listener.c: the listener on a real uv loop on
 * 127.0.0.1, real client sockets, and a real lws context on the same loop
 * (a foreign loop, as gateway.c sets it up) to adopt what the lobby hands on.
 * What lws sees of a connection is its protocol callback: a new client when
 * the lobby adopts the socket, then LWS_CALLBACK_HTTP with the request's URI.
 *
 * Every test ends with listener_close(), the lws context destroyed, and
 * uv_loop_close() == 0.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <libwebsockets.h>

#include "inproc.h"
#include "listener.h"
#include "log.h"

#define WAIT_MS 5000
#define FIRST_BYTE_MS 300 /* the lobby's first-byte timeout in these tests */
#define MAX_CLIENTS 8
/* libuv's clock may be the coarse one (a few ms behind the test's): timeouts are checked with this
 * slack. */
#define CLOCK_SLACK_MS 10

typedef struct client {
	int fd;	     /* -1 when none */
	bool closed; /* the listener (or lws) closed it: EOF or reset seen */
} client_t;

typedef struct fixture {
	inproc_loop_t l;
	struct lws_context *lws; /* NULLed by lws through info.pcontext once freed */
	struct lws_vhost *vhost;
	listener_t *listener;
	int port;
	bool refuse;	   /* what admit answers: false = take it */
	unsigned admitted; /* admit calls */
	unsigned adopted;  /* LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED: a socket lws took */
	unsigned requests; /* LWS_CALLBACK_HTTP: a request head lws parsed */
	char last_uri[64];
	client_t clients[MAX_CLIENTS];
} fixture_t;

/* --- lws's side: what was handed on ---------------------------------------------- */

static int fx_lws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			   size_t len)
{
	fixture_t *fx = lws_context_user(lws_get_context(wsi));

	if (reason == LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED)
		fx->adopted++;
	if (reason == LWS_CALLBACK_HTTP) {
		fx->requests++;
		snprintf(fx->last_uri, sizeof(fx->last_uri), "%s", (const char *)in);
		return -1; /* seen: close it */
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols fx_protocols[] = {
    {"http", fx_lws_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static bool fx_admit(void *arg, unsigned pending)
{
	fixture_t *fx = arg;

	fx->admitted++;
	return !fx->refuse;
}

/*
 * The port the listener bound.  listener.h does not say (listener_open takes
 * port 0 but keeps its socket to itself), so it is found the only way left:
 * the one listening IPv4 socket of this process.
 */
static int find_listening_port(void)
{
	int port = -1;

	for (int fd = 3; fd < 1024; fd++) {
		struct sockaddr_in sa;
		socklen_t slen = sizeof(sa);
		int listening = 0;
		socklen_t llen = sizeof(listening);

		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &llen) != 0 || !listening)
			continue;
		if (getsockname(fd, (struct sockaddr *)&sa, &slen) != 0 || sa.sin_family != AF_INET)
			continue;
		assert_int_equal(port, -1); /* exactly one */
		port = ntohs(sa.sin_port);
	}
	return port;
}

/* --- clients ----------------------------------------------------------------------- */

/* Connects a client (the kernel completes the handshake; the listener accepts it later). */
static client_t *client_connect(fixture_t *fx)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx->port)};
	client_t *c = NULL;

	for (int i = 0; i < MAX_CLIENTS && !c; i++)
		if (fx->clients[i].fd < 0)
			c = &fx->clients[i];
	assert_non_null(c);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c->fd >= 0);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	c->closed = false;
	return c;
}

static void client_send(client_t *c, const char *bytes)
{
	size_t len = strlen(bytes);

	assert_int_equal(send(c->fd, bytes, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Reads what is there; true once the other side has closed. */
static bool client_is_closed(void *arg)
{
	client_t *c = arg;
	char buf[512];
	ssize_t n;

	while (!c->closed) {
		n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			c->closed = true;
		else if (n < 0)
			break;
	}
	return c->closed;
}

static void client_close(client_t *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* --- conditions -------------------------------------------------------------------- */

static bool one_request_seen(void *arg)
{
	fixture_t *fx = arg;

	return fx->requests == 1;
}

typedef struct count_wait {
	fixture_t *fx;
	unsigned pending;
	unsigned admitted;
} count_wait_t;

static bool lobby_holds(void *arg)
{
	count_wait_t *w = arg;

	return w->fx->admitted == w->admitted &&
	       listener_stats(w->fx->listener).pending == w->pending;
}

/* --- setup and teardown ------------------------------------------------------------- */

static void fx_set_lobby(fixture_t *fx, uint64_t first_byte_ms, uint64_t head_ms,
			 unsigned max_per_client)
{
	listener_lobby_t lobby = {
	    .first_byte_timeout_ms = first_byte_ms,
	    .head_timeout_ms = head_ms,
	    .max_per_client = max_per_client,
	};

	listener_set_lobby(fx->listener, &lobby);
}

static int listener_setup(void **state)
{
	fixture_t *fx = calloc(1, sizeof(*fx));
	struct lws_context_creation_info info;
	void *foreign_loops[1];

	assert_non_null(fx);
	for (int i = 0; i < MAX_CLIENTS; i++)
		fx->clients[i].fd = -1;
	assert_int_equal(inproc_loop_init(&fx->l), 0);
	foreign_loops[0] = &fx->l.loop;

	/* As gateway_start() does it: lws on our loop, a vhost without a socket of its own. */
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	info.foreign_loops = foreign_loops;
	info.pcontext = &fx->lws;
	info.user = fx;
	info.port = CONTEXT_PORT_NO_LISTEN;
	fx->lws = lws_create_context(&info);
	assert_non_null(fx->lws);
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_LIBUV;
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = fx_protocols;
	info.vhost_name = "inproc";
	fx->vhost = lws_create_vhost(fx->lws, &info);
	assert_non_null(fx->vhost);

	fx->listener = listener_open(&fx->l.loop, "127.0.0.1", 0, false, fx->vhost, fx_admit, fx);
	assert_non_null(fx->listener);
	fx_set_lobby(fx, FIRST_BYTE_MS, 10000, 64);
	fx->port = find_listening_port();
	assert_true(fx->port > 0);
	*state = fx;
	return 0;
}

static int listener_teardown(void **state)
{
	fixture_t *fx = *state;

	for (int i = 0; i < MAX_CLIENTS; i++)
		client_close(&fx->clients[i]);
	listener_close(fx->listener);
	/* gateway_teardown()'s order: the first destroy closes lws's handles, the second frees. */
	lws_context_destroy(fx->lws);
	assert_true(inproc_run_down(&fx->l, WAIT_MS));
	if (fx->lws)
		lws_context_destroy(fx->lws);
	assert_int_equal(inproc_loop_close(&fx->l, WAIT_MS), 0);
	free(fx);
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	log_set_level(LOG_WARN);
	log_route_lws();
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* --- tests -------------------------------------------------------------------------- */

static void a_whole_request_head_is_handed_on_at_once(void **state)
{
	fixture_t *fx = *state;
	client_t *c = client_connect(fx);

	client_send(c, "GET /whole HTTP/1.1\r\nHost: inproc\r\n\r\n");
	assert_true(inproc_run_until(&fx->l, one_request_seen, fx, WAIT_MS));
	assert_string_equal(fx->last_uri, "/whole");
	assert_int_equal(fx->admitted, 1);
	assert_int_equal(fx->adopted, 1);
	assert_int_equal(listener_stats(fx->listener).pending, 0);
	/* lws closed it (the callback said so): the socket is lws's now, not the lobby's. */
	assert_true(inproc_run_until(&fx->l, client_is_closed, c, WAIT_MS));
	assert_int_equal(listener_stats(fx->listener).first_byte_timeouts, 0);
}

static void a_silent_connection_is_closed_after_the_first_byte_timeout(void **state)
{
	fixture_t *fx = *state;
	uint64_t t0 = inproc_now_ms();
	client_t *c = client_connect(fx);

	assert_true(inproc_run_until(&fx->l, client_is_closed, c, WAIT_MS));
	assert_true(inproc_now_ms() - t0 + CLOCK_SLACK_MS >= FIRST_BYTE_MS);
	assert_int_equal(listener_stats(fx->listener).first_byte_timeouts, 1);
	assert_int_equal(listener_stats(fx->listener).pending, 0);
	/* lws never saw it. */
	assert_int_equal(fx->adopted, 0);
	assert_int_equal(fx->requests, 0);
}

static void a_head_is_handed_on_only_once_it_is_whole(void **state)
{
	fixture_t *fx = *state;
	client_t *silent, *slow;

	/* Two at once: the silent one is the clock.  When the first-byte timeout
	 * has closed it, the slow one has sat in the lobby at least as long. */
	silent = client_connect(fx);
	slow = client_connect(fx);
	client_send(slow, "GET /slow HTTP/1.1\r\n");
	assert_true(inproc_run_until(&fx->l, client_is_closed, silent, WAIT_MS));
	client_send(slow, "Host: inproc\r\n");
	/* Its first byte came in time; its head is not whole: still in the lobby, not in lws. */
	assert_false(client_is_closed(slow));
	assert_int_equal(listener_stats(fx->listener).pending, 1);
	assert_int_equal(fx->adopted, 0);
	assert_int_equal(fx->requests, 0);
	/* The blank line ends the head: handed on, and lws reads the request the lobby peeked. */
	client_send(slow, "\r\n");
	assert_true(inproc_run_until(&fx->l, one_request_seen, fx, WAIT_MS));
	assert_string_equal(fx->last_uri, "/slow");
	assert_int_equal(fx->adopted, 1);
	assert_int_equal(listener_stats(fx->listener).pending, 0);
	assert_int_equal(listener_stats(fx->listener).head_timeouts, 0);
	assert_int_equal(listener_stats(fx->listener).first_byte_timeouts, 1);
}

static void a_head_that_never_ends_is_closed_after_the_head_timeout(void **state)
{
	fixture_t *fx = *state;
	uint64_t t0 = inproc_now_ms();
	client_t *c;

	fx_set_lobby(fx, 5000, 400, 64);
	c = client_connect(fx);
	client_send(c, "GET /never HTTP/1.1\r\nHost: inproc\r\n");
	assert_true(inproc_run_until(&fx->l, client_is_closed, c, WAIT_MS));
	assert_true(inproc_now_ms() - t0 + CLOCK_SLACK_MS >= 400);
	assert_int_equal(listener_stats(fx->listener).head_timeouts, 1);
	assert_int_equal(listener_stats(fx->listener).first_byte_timeouts, 0);
	assert_int_equal(fx->adopted, 0);
	assert_int_equal(fx->requests, 0);
}

static void a_connection_admit_refuses_is_closed_at_accept(void **state)
{
	fixture_t *fx = *state;
	client_t *c;

	fx->refuse = true;
	c = client_connect(fx);
	client_send(c, "GET /refused HTTP/1.1\r\nHost: inproc\r\n\r\n");
	assert_true(inproc_run_until(&fx->l, client_is_closed, c, WAIT_MS));
	assert_int_equal(fx->admitted, 1);
	assert_int_equal(listener_stats(fx->listener).pending, 0);
	assert_int_equal(listener_stats(fx->listener).first_byte_timeouts, 0);
	assert_int_equal(fx->adopted, 0);
	assert_int_equal(fx->requests, 0);
}

static void connections_past_max_per_client_are_closed_at_accept(void **state)
{
	fixture_t *fx = *state;
	count_wait_t two = {fx, 2, 2};
	client_t *third;

	fx_set_lobby(fx, 10000, 10000, 2);
	client_connect(fx);
	client_connect(fx);
	assert_true(inproc_run_until(&fx->l, lobby_holds, &two, WAIT_MS));
	third = client_connect(fx);
	assert_true(inproc_run_until(&fx->l, client_is_closed, third, WAIT_MS));
	assert_int_equal(listener_stats(fx->listener).refused_per_client, 1);
	assert_int_equal(listener_stats(fx->listener).pending, 2);
	/* The two in the lobby are untouched: one of them may still ask. */
	assert_false(client_is_closed(&fx->clients[0]));
	client_send(&fx->clients[0], "GET /first HTTP/1.1\r\nHost: inproc\r\n\r\n");
	assert_true(inproc_run_until(&fx->l, one_request_seen, fx, WAIT_MS));
	assert_string_equal(fx->last_uri, "/first");
}

/* True when a connect to the listener's port is refused: nothing listens there. */
static bool port_refuses(void *arg)
{
	fixture_t *fx = arg;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx->port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool refused;

	assert_true(fd >= 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	refused = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno == ECONNREFUSED;
	close(fd);
	return refused;
}

static void closing_the_listener_closes_its_lobby_and_its_port(void **state)
{
	fixture_t *fx = *state;
	count_wait_t two = {fx, 2, 2};

	client_connect(fx);
	client_send(client_connect(fx), "GET /half HTTP/1.1\r\n");
	assert_true(inproc_run_until(&fx->l, lobby_holds, &two, WAIT_MS));
	assert_false(port_refuses(fx));
	listener_close(fx->listener);
	fx->listener = NULL;
	assert_true(inproc_run_until(&fx->l, client_is_closed, &fx->clients[0], WAIT_MS));
	assert_true(inproc_run_until(&fx->l, client_is_closed, &fx->clients[1], WAIT_MS));
	assert_int_equal(fx->adopted, 0);
	/* Once its handles are closed the port is closed too. */
	assert_true(inproc_run_until(&fx->l, port_refuses, fx, WAIT_MS));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(a_whole_request_head_is_handed_on_at_once,
					    listener_setup, listener_teardown),
	    cmocka_unit_test_setup_teardown(
		a_silent_connection_is_closed_after_the_first_byte_timeout, listener_setup,
		listener_teardown),
	    cmocka_unit_test_setup_teardown(a_head_is_handed_on_only_once_it_is_whole,
					    listener_setup, listener_teardown),
	    cmocka_unit_test_setup_teardown(a_head_that_never_ends_is_closed_after_the_head_timeout,
					    listener_setup, listener_teardown),
	    cmocka_unit_test_setup_teardown(a_connection_admit_refuses_is_closed_at_accept,
					    listener_setup, listener_teardown),
	    cmocka_unit_test_setup_teardown(connections_past_max_per_client_are_closed_at_accept,
					    listener_setup, listener_teardown),
	    cmocka_unit_test_setup_teardown(closing_the_listener_closes_its_lobby_and_its_port,
					    listener_setup, listener_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
