/*
 * In-process tests of gateway/poll/http_client.c: the client on a real uv
 * loop against a fake HTTP/1.1 server of the test's own on the same loop
 * (127.0.0.1, a free port), whose answer is chosen by the request's path:
 *
 *   /ok          200, "hello", keep-alive
 *   /echo        200, the request it got (head and body) as its body
 *   /429         429 with Retry-After: 7
 *   /429date     429 with Retry-After: an HTTP-date 30 s ahead
 *   /hang        nothing, ever (the connection stays open)
 *   /big         200 with Content-Length: 100000 and that many bytes
 *   /bigstream   200 without Content-Length: 100000 bytes, then close
 *
 * and a TLS ClientHello with a 400 and a close, as a plain server answers garbage.
 *
 * Every test ends with poll_http_close() (whose done callback must come),
 * the fake server closed, and uv_loop_close() == 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "http_client.h"
#include "inproc.h"

#define WAIT_MS 5000
#define TIMEOUT_MS 300	  /* the whole-request timeout of these tests */
#define BODY_MAX 4096	  /* the response body limit of these tests */
#define BIG_BODY 100000	  /* what /big and /bigstream send */
#define CLOCK_SLACK_MS 10 /* libuv's clock may be a few ms behind the test's */

/* --- the fake server ------------------------------------------------------------- */

typedef struct fake_server fake_server_t;

typedef struct fake_conn {
	fake_server_t *srv;
	uv_tcp_t tcp;
	char buf[16384];
	size_t len;
	bool closing;
	struct fake_conn *next;
} fake_conn_t;

struct fake_server {
	uv_loop_t *loop;
	uv_tcp_t tcp;
	int port;
	unsigned accepts;
	unsigned requests;
	char last_request[4096];
	fake_conn_t *conns;
};

typedef struct fake_write {
	uv_write_t req;
	fake_conn_t *conn;
	bool close_after;
	char *data; /* is malloc'd */
} fake_write_t;

static void fake_conn_closed(uv_handle_t *h)
{
	fake_conn_t *c = h->data;
	fake_conn_t **p = &c->srv->conns;

	while (*p != c)
		p = &(*p)->next;
	*p = c->next;
	free(c);
}

static void fake_conn_close(fake_conn_t *c)
{
	if (!c->closing) {
		c->closing = true;
		uv_close((uv_handle_t *)&c->tcp, fake_conn_closed);
	}
}

static void fake_written(uv_write_t *req, int status)
{
	fake_write_t *w = (fake_write_t *)req;

	(void)status;
	if (w->close_after)
		fake_conn_close(w->conn);
	free(w->data);
	free(w);
}

static void fake_send(fake_conn_t *c, const char *data, size_t len, bool close_after)
{
	fake_write_t *w = calloc(1, sizeof(*w));
	uv_buf_t b;

	assert_non_null(w);
	w->conn = c;
	w->close_after = close_after;
	w->data = malloc(len);
	assert_non_null(w->data);
	memcpy(w->data, data, len);
	b = uv_buf_init(w->data, (unsigned)len);
	assert_int_equal(uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, fake_written), 0);
}

static void fake_send_big(fake_conn_t *c, bool with_length)
{
	char head[160];
	int n =
	    snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n%s\r\n",
		     with_length ? "Content-Length: 100000\r\n" : "Connection: close\r\n");
	char *all = malloc((size_t)n + BIG_BODY);

	assert_non_null(all);
	memcpy(all, head, (size_t)n);
	memset(all + n, 'x', BIG_BODY);
	fake_send(c, all, (size_t)n + BIG_BODY, !with_length);
	free(all);
}

/* Answers one whole request (head + body of len bytes at c->buf) by its path. */
static void fake_answer(fake_conn_t *c, size_t len)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
				 "Content-Length: 5\r\n\r\nhello";
	static const char too_many[] = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n"
				       "Content-Length: 0\r\n\r\n";
	char path[64] = "", out[8192];
	int n;

	c->srv->requests++;
	snprintf(c->srv->last_request, sizeof(c->srv->last_request), "%.*s", (int)len, c->buf);
	sscanf(c->buf, "%*s %63s", path);
	if (!strcmp(path, "/ok")) {
		fake_send(c, ok, sizeof(ok) - 1, false);
	} else if (!strcmp(path, "/echo")) {
		n = snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%.*s",
			     len, (int)len, c->buf);
		fake_send(c, out, (size_t)n, false);
	} else if (!strcmp(path, "/429")) {
		fake_send(c, too_many, sizeof(too_many) - 1, false);
	} else if (!strcmp(path, "/429date")) {
		char date[64];
		time_t at = time(NULL) + 30;
		struct tm tm;

		gmtime_r(&at, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		n = snprintf(out, sizeof(out),
			     "HTTP/1.1 429 Too Many Requests\r\nRetry-After: %s\r\n"
			     "Content-Length: 0\r\n\r\n",
			     date);
		fake_send(c, out, (size_t)n, false);
	} else if (!strcmp(path, "/big")) {
		fake_send_big(c, true);
	} else if (!strcmp(path, "/bigstream")) {
		fake_send_big(c, false);
	} /* /hang: nothing */
}

static void fake_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	fake_conn_t *c = h->data;

	(void)suggested;
	*b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof(c->buf) - c->len));
}

static void fake_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	fake_conn_t *c = s->data;
	const char *end;
	size_t head, body = 0;

	(void)b;
	if (nread < 0) {
		fake_conn_close(c);
		return;
	}
	c->len += (size_t)nread;
	if (c->len && c->buf[0] == 0x16) {
		/* A TLS ClientHello: answered like a plain server answers garbage. */
		static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";

		c->len = 0;
		fake_send(c, bad, sizeof(bad) - 1, true);
		return;
	}
	while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4))) {
		const char *cl;

		head = (size_t)(end - c->buf) + 4;
		c->buf[head - 1] = '\0'; /* for the header search below; put back after */
		cl = strcasestr(c->buf, "\r\nContent-Length:");
		body = cl ? strtoul(cl + 17, NULL, 10) : 0;
		c->buf[head - 1] = '\n';
		if (c->len < head + body)
			return;
		fake_answer(c, head + body);
		memmove(c->buf, c->buf + head + body, c->len - head - body);
		c->len -= head + body;
	}
	assert_true(c->len < sizeof(c->buf));
}

static void fake_accept(uv_stream_t *server, int status)
{
	fake_server_t *srv = server->data;
	fake_conn_t *c;

	assert_int_equal(status, 0);
	c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->srv = srv;
	uv_tcp_init(srv->loop, &c->tcp);
	c->tcp.data = c;
	c->next = srv->conns;
	srv->conns = c;
	assert_int_equal(uv_accept(server, (uv_stream_t *)&c->tcp), 0);
	srv->accepts++;
	uv_read_start((uv_stream_t *)&c->tcp, fake_alloc, fake_read);
}

static void fake_start(fake_server_t *srv, uv_loop_t *loop)
{
	struct sockaddr_in addr;
	struct sockaddr_storage bound;
	int len = sizeof(bound);

	memset(srv, 0, sizeof(*srv));
	srv->loop = loop;
	uv_ip4_addr("127.0.0.1", 0, &addr);
	assert_int_equal(uv_tcp_init(loop, &srv->tcp), 0);
	srv->tcp.data = srv;
	assert_int_equal(uv_tcp_bind(&srv->tcp, (const struct sockaddr *)&addr, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&srv->tcp, 16, fake_accept), 0);
	assert_int_equal(uv_tcp_getsockname(&srv->tcp, (struct sockaddr *)&bound, &len), 0);
	srv->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void fake_stop(fake_server_t *srv)
{
	for (fake_conn_t *c = srv->conns; c; c = c->next)
		fake_conn_close(c);
	uv_close((uv_handle_t *)&srv->tcp, NULL);
}

/* A port nothing listens on: bound, then closed. */
static int closed_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* --- the fixture ----------------------------------------------------------------- */

typedef struct answer {
	int calls;
	poll_http_response_t r; /* its pointers are not kept: see body, why */
	char body[BODY_MAX + 1];
	char why[256];
	uint64_t at_ms; /* inproc_now_ms() of the callback */
} answer_t;

typedef struct fixture {
	inproc_loop_t l;
	fake_server_t srv;
	poll_http_t *c;
	bool closed;
	char url[128];
} fixture_t;

static void on_answer(void *arg, const poll_http_response_t *r)
{
	answer_t *a = arg;

	a->calls++;
	a->r = *r;
	assert_non_null(r->body);
	assert_true(r->body_len <= BODY_MAX);
	memcpy(a->body, r->body, r->body_len);
	a->body[r->body_len] = '\0';
	snprintf(a->why, sizeof(a->why), "%s", r->why ? r->why : "");
	a->at_ms = inproc_now_ms();
}

static bool answered(void *arg)
{
	return ((answer_t *)arg)->calls > 0;
}

static bool client_closed(void *arg)
{
	return ((fixture_t *)arg)->closed;
}

static void on_closed(void *arg)
{
	((fixture_t *)arg)->closed = true;
}

static const char *url(fixture_t *fx, const char *path)
{
	snprintf(fx->url, sizeof(fx->url), "http://127.0.0.1:%d%s", fx->srv.port, path);
	return fx->url;
}

static int setup(void **state)
{
	fixture_t *fx = calloc(1, sizeof(*fx));
	poll_http_config_t cfg = {
	    .connect_timeout_ms = 1000, .timeout_ms = TIMEOUT_MS, .body_max = BODY_MAX};

	assert_non_null(fx);
	assert_int_equal(inproc_loop_init(&fx->l), 0);
	fake_start(&fx->srv, &fx->l.loop);
	fx->c = poll_http_new(&fx->l.loop, &cfg);
	assert_non_null(fx->c);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	fixture_t *fx = *state;

	if (fx->c) {
		poll_http_close(fx->c, on_closed, fx);
		assert_false(fx->closed); /* done comes from the loop, not from within the call */
		assert_true(inproc_run_until(&fx->l, client_closed, fx, WAIT_MS));
		poll_http_free(fx->c);
	}
	fake_stop(&fx->srv);
	assert_int_equal(inproc_loop_close(&fx->l, WAIT_MS), 0);
	free(fx);
	return 0;
}

static void get(fixture_t *fx, const char *path, answer_t *a)
{
	assert_int_equal(
	    poll_http_request(fx->c, "GET", url(fx, path), NULL, 0, NULL, 0, on_answer, a, NULL),
	    POLL_HTTP_OK);
	assert_int_equal(a->calls, 0); /* never from within the call */
	assert_true(inproc_run_until(&fx->l, answered, a, WAIT_MS));
	assert_int_equal(a->calls, 1);
}

/* --- the tests ------------------------------------------------------------------- */

static void a_200_brings_its_status_and_body_and_the_connection_is_kept(void **state)
{
	fixture_t *fx = *state;
	answer_t a = {0}, b = {0};

	get(fx, "/ok", &a);
	assert_int_equal(a.r.error, POLL_HTTP_ERR_NONE);
	assert_int_equal(a.r.status, 200);
	assert_string_equal(a.body, "hello");
	assert_int_equal(a.r.body_len, 5);
	assert_int_equal(a.r.retry_after_s, -1);
	get(fx, "/ok", &b);
	assert_int_equal(b.r.status, 200);
	assert_int_equal(fx->srv.requests, 2);
	assert_int_equal(fx->srv.accepts, 1); /* HTTP/1.1 keep-alive: one connection */
	assert_int_equal(poll_http_pending(fx->c), 0);
}

static void a_post_sends_its_method_headers_and_body(void **state)
{
	fixture_t *fx = *state;
	static const char *const headers[] = {"X-Test: one", "Content-Type: application/json"};
	static const char body[] = "{\"a\":1}";
	answer_t a = {0};

	assert_int_equal(poll_http_request(fx->c, "POST", url(fx, "/echo"), headers, 2, body,
					   sizeof(body) - 1, on_answer, &a, NULL),
			 POLL_HTTP_OK);
	assert_true(inproc_run_until(&fx->l, answered, &a, WAIT_MS));
	assert_int_equal(a.r.status, 200);
	assert_true(!strncmp(a.body, "POST /echo HTTP/1.1\r\n", 21));
	assert_non_null(strstr(a.body, "\r\nX-Test: one\r\n"));
	assert_non_null(strstr(a.body, "\r\nContent-Length: 7\r\n"));
	assert_null(strcasestr(a.body, "Expect:"));
	assert_true(a.r.body_len > 7 && !strcmp(a.body + a.r.body_len - 7, body));
}

static void a_put_with_a_body_goes_as_put(void **state)
{
	fixture_t *fx = *state;
	answer_t a = {0};

	assert_int_equal(
	    poll_http_request(fx->c, "PUT", url(fx, "/echo"), NULL, 0, "x", 1, on_answer, &a, NULL),
	    POLL_HTTP_OK);
	assert_true(inproc_run_until(&fx->l, answered, &a, WAIT_MS));
	assert_true(!strncmp(a.body, "PUT /echo HTTP/1.1\r\n", 20));
}

static void a_429_brings_its_retry_after_in_seconds_or_as_a_date(void **state)
{
	fixture_t *fx = *state;
	answer_t a = {0}, b = {0}, c = {0};

	get(fx, "/429", &a);
	assert_int_equal(a.r.error, POLL_HTTP_ERR_NONE);
	assert_int_equal(a.r.status, 429);
	assert_int_equal(a.r.retry_after_s, 7);
	get(fx, "/429date", &b);
	assert_int_equal(b.r.status, 429);
	assert_in_range(b.r.retry_after_s, 28, 30);
	/* The next answer on the same connection has none. */
	get(fx, "/ok", &c);
	assert_int_equal(c.r.retry_after_s, -1);
}

static void a_server_that_never_answers_is_a_timeout_within_the_bound(void **state)
{
	fixture_t *fx = *state;
	answer_t a = {0};
	uint64_t t0 = inproc_now_ms();

	get(fx, "/hang", &a);
	assert_int_equal(fx->srv.requests, 1);
	assert_int_equal(a.r.error, POLL_HTTP_ERR_TIMEOUT);
	assert_string_equal(poll_http_error_name(a.r.error), "timeout");
	assert_true(a.why[0] != '\0');
	assert_in_range(a.at_ms - t0, TIMEOUT_MS - CLOCK_SLACK_MS, TIMEOUT_MS + 700);
}

static void a_closed_port_is_a_connect_error(void **state)
{
	fixture_t *fx = *state;
	answer_t a = {0};
	char u[64];

	snprintf(u, sizeof(u), "http://127.0.0.1:%d/ok", closed_port());
	assert_int_equal(poll_http_request(fx->c, "GET", u, NULL, 0, NULL, 0, on_answer, &a, NULL),
			 POLL_HTTP_OK);
	assert_true(inproc_run_until(&fx->l, answered, &a, WAIT_MS));
	assert_int_equal(a.r.error, POLL_HTTP_ERR_CONNECT);
	assert_int_equal(a.r.status, 0);
}

static void a_body_past_the_limit_is_an_error_with_or_without_its_length(void **state)
{
	fixture_t *fx = *state;
	answer_t a = {0}, b = {0};

	get(fx, "/big", &a);
	assert_int_equal(a.r.error, POLL_HTTP_ERR_TOO_LARGE);
	assert_int_equal(a.r.body_len, 0);
	get(fx, "/bigstream", &b);
	assert_int_equal(b.r.error, POLL_HTTP_ERR_TOO_LARGE);
	assert_int_equal(b.r.body_len, 0);
}

static bool server_got_request(void *arg)
{
	return ((fixture_t *)arg)->srv.requests > 0;
}

static void a_cancelled_request_never_calls_back(void **state)
{
	fixture_t *fx = *state;
	answer_t cancelled = {0}, after = {0};
	poll_http_req_t *req = NULL;

	assert_int_equal(poll_http_request(fx->c, "GET", url(fx, "/hang"), NULL, 0, NULL, 0,
					   on_answer, &cancelled, &req),
			 POLL_HTTP_OK);
	assert_non_null(req);
	assert_true(inproc_run_until(&fx->l, server_got_request, fx, WAIT_MS));
	poll_http_cancel(req);
	assert_int_equal(poll_http_pending(fx->c), 0);
	/* Past the cancelled one's timeout, on another request: no callback for it. */
	get(fx, "/hang", &after);
	assert_int_equal(after.r.error, POLL_HTTP_ERR_TIMEOUT);
	assert_int_equal(cancelled.calls, 0);
}

static void closing_with_requests_in_flight_calls_no_callback(void **state)
{
	fixture_t *fx = *state;
	answer_t a = {0}, b = {0}, late = {0};

	assert_int_equal(poll_http_request(fx->c, "GET", url(fx, "/hang"), NULL, 0, NULL, 0,
					   on_answer, &a, NULL),
			 POLL_HTTP_OK);
	assert_int_equal(
	    poll_http_request(fx->c, "GET", url(fx, "/ok"), NULL, 0, NULL, 0, on_answer, &b, NULL),
	    POLL_HTTP_OK);
	assert_true(inproc_run_until(&fx->l, server_got_request, fx, WAIT_MS));
	poll_http_close(fx->c, on_closed, fx);
	assert_int_equal(poll_http_request(fx->c, "GET", url(fx, "/ok"), NULL, 0, NULL, 0,
					   on_answer, &late, NULL),
			 POLL_HTTP_ESTOPPED);
	assert_true(inproc_run_until(&fx->l, client_closed, fx, WAIT_MS));
	assert_int_equal(a.calls, 0);
	assert_int_equal(late.calls, 0);
	/* /ok may have been answered before the close: at most once then. */
	assert_in_range(b.calls, 0, 1);
	poll_http_free(fx->c);
	fx->c = NULL; /* closed here: teardown closes only the server */
}

static void an_https_url_to_a_plain_http_server_is_a_tls_error(void **state)
{
	fixture_t *fx = *state;
	answer_t a = {0};
	char u[64];

	snprintf(u, sizeof(u), "https://127.0.0.1:%d/ok", fx->srv.port);
	assert_int_equal(poll_http_request(fx->c, "GET", u, NULL, 0, NULL, 0, on_answer, &a, NULL),
			 POLL_HTTP_OK);
	assert_true(inproc_run_until(&fx->l, answered, &a, WAIT_MS));
	assert_int_equal(a.r.error, POLL_HTTP_ERR_TLS);
}

static void a_bad_method_or_url_is_refused_at_once(void **state)
{
	fixture_t *fx = *state;
	answer_t a = {0};

	assert_int_equal(
	    poll_http_request(fx->c, "get", url(fx, "/ok"), NULL, 0, NULL, 0, on_answer, &a, NULL),
	    POLL_HTTP_EINVAL);
	assert_int_equal(poll_http_request(fx->c, "GET", "ftp://127.0.0.1/x", NULL, 0, NULL, 0,
					   on_answer, &a, NULL),
			 POLL_HTTP_EINVAL);
	assert_int_equal(poll_http_request(fx->c, "GET", "file:///etc/passwd", NULL, 0, NULL, 0,
					   on_answer, &a, NULL),
			 POLL_HTTP_EINVAL);
	assert_int_equal(poll_http_pending(fx->c), 0);
	assert_int_equal(a.calls, 0);
}

/* A callback starts the next request on the same client. */
typedef struct chain {
	fixture_t *fx;
	answer_t first, second;
} chain_t;

static void on_first(void *arg, const poll_http_response_t *r)
{
	chain_t *ch = arg;

	on_answer(&ch->first, r);
	assert_int_equal(poll_http_request(ch->fx->c, "GET", url(ch->fx, "/ok"), NULL, 0, NULL, 0,
					   on_answer, &ch->second, NULL),
			 POLL_HTTP_OK);
}

static void a_callback_may_start_the_next_request(void **state)
{
	fixture_t *fx = *state;
	chain_t ch = {.fx = fx};

	assert_int_equal(
	    poll_http_request(fx->c, "GET", url(fx, "/429"), NULL, 0, NULL, 0, on_first, &ch, NULL),
	    POLL_HTTP_OK);
	assert_true(inproc_run_until(&fx->l, answered, &ch.second, WAIT_MS));
	assert_int_equal(ch.first.r.status, 429);
	assert_int_equal(ch.second.r.status, 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		a_200_brings_its_status_and_body_and_the_connection_is_kept, setup, teardown),
	    cmocka_unit_test_setup_teardown(a_post_sends_its_method_headers_and_body, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(a_put_with_a_body_goes_as_put, setup, teardown),
	    cmocka_unit_test_setup_teardown(a_429_brings_its_retry_after_in_seconds_or_as_a_date,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		a_server_that_never_answers_is_a_timeout_within_the_bound, setup, teardown),
	    cmocka_unit_test_setup_teardown(a_closed_port_is_a_connect_error, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		a_body_past_the_limit_is_an_error_with_or_without_its_length, setup, teardown),
	    cmocka_unit_test_setup_teardown(a_cancelled_request_never_calls_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(closing_with_requests_in_flight_calls_no_callback,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(an_https_url_to_a_plain_http_server_is_a_tls_error,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(a_bad_method_or_url_is_refused_at_once, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(a_callback_may_start_the_next_request, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
