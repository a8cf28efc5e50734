/*
 * trackgate-watch - prints the frames of one order's tracking websocket,
 * one JSON frame per line on stdout, and how the socket closed on stderr.
 *
 *   trackgate-watch [--server HOST:PORT] [--since CURSOR] [--token T] [--count N]
 *                   [--timeout SECONDS] [--pretty] ORDER_ID
 *
 * Every frame is printed as it came, byte for byte.  The snapshot, update
 * and resumed frames count towards --count; a resume's "resumed" frame
 * (every missed update was sent before it) also gets a line on stderr.  An
 * "error" frame is the server refusing the socket: it is printed, does not
 * count, and the close that follows is reported with its code and reason.
 *
 * Exit status: 0 after --count frames or a normal close (1000/1001) without
 * an error frame, 1 when the connection failed, was refused (an error frame,
 * or a close with any other code: 1008, 1013, 4400, 4401, ...) or timed out,
 * 2 on bad usage.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

#include "proto.h"

typedef struct watch {
	char *msg; /* is malloc'd: the message being reassembled */
	size_t len, cap;
	long count;	/* frames printed */
	long max_count; /* stop after this many; 0 = no limit */
	int close_code;
	int refused; /* an error frame came: the exit status is 1 */
	int status;  /* exit status */
	int done;
	int pretty;
} watch_t;

static volatile sig_atomic_t watch_interrupted;

static void watch_sigint(int sig)
{
	(void)sig;
	watch_interrupted = 1;
}

/*
 * Prints the message just reassembled as one line, then looks at its type:
 * an error frame marks the socket refused; a resumed frame is announced on
 * stderr; every other frame counts towards --count.
 */
static void watch_print(watch_t *wt)
{
	time_t now = time(NULL);
	struct tm tm;
	char ts[16];
	cJSON *frame;
	const cJSON *type, *replayed, *cursor;

	localtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
	if (wt->pretty)
		printf("%s %.*s\n", ts, (int)wt->len, wt->msg);
	else
		printf("%.*s\n", (int)wt->len, wt->msg);
	fflush(stdout);
	frame = cJSON_ParseWithLength(wt->msg, wt->len);
	type = cJSON_GetObjectItemCaseSensitive(frame, "type");
	if (cJSON_IsString(type) && !strcmp(type->valuestring, "error")) {
		wt->refused = 1;
		wt->status = 1;
		cJSON_Delete(frame);
		return;
	}
	if (cJSON_IsString(type) && !strcmp(type->valuestring, "resumed")) {
		replayed = cJSON_GetObjectItemCaseSensitive(frame, "replayed");
		cursor = cJSON_GetObjectItemCaseSensitive(frame, "cursor");
		fprintf(stderr,
			"trackgate-watch: resumed: %.0f missed frame(s) replayed, live after %s\n",
			cJSON_IsNumber(replayed) ? replayed->valuedouble : 0.0,
			cJSON_IsString(cursor) ? cursor->valuestring : "?");
	}
	cJSON_Delete(frame);
	wt->count++;
	if (wt->max_count && wt->count >= wt->max_count) {
		wt->done = 1;
		wt->status = 0;
	}
}

static int watch_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			  size_t len)
{
	watch_t *wt = lws_context_user(lws_get_context(wsi));

	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		fprintf(stderr, "trackgate-watch: connection failed: %s\n",
			in ? (const char *)in : "unknown error");
		wt->status = 1;
		wt->done = 1;
		break;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		fprintf(stderr, "trackgate-watch: connected\n");
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (wt->len + len > wt->cap) {
			size_t cap = (wt->len + len) * 2;
			char *p = realloc(wt->msg, cap);

			if (!p)
				return -1;
			wt->msg = p;
			wt->cap = cap;
		}
		memcpy(wt->msg + wt->len, in, len);
		wt->len += len;
		if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
			watch_print(wt);
			wt->len = 0;
		}
		if (wt->done)
			return -1;
		break;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
		const unsigned char *p = in;

		if (len >= 2) {
			wt->close_code = (p[0] << 8) | p[1];
			fprintf(stderr, "trackgate-watch: closed by server: %d %.*s\n",
				wt->close_code, (int)(len - 2), (const char *)p + 2);
		} else {
			fprintf(stderr, "trackgate-watch: closed by server without a code\n");
		}
		wt->status =
		    !wt->refused && (wt->close_code == 1000 || wt->close_code == 1001) ? 0 : 1;
		break;
	}
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (!wt->close_code && !wt->done && !watch_interrupted) {
			fprintf(stderr, "trackgate-watch: connection lost\n");
			wt->status = 1;
		}
		wt->done = 1;
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols watch_protocols[] = {
    {"trackgate-watch", watch_callback, 0, 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void watch_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: trackgate-watch [--server HOST:PORT] [--since CURSOR] [--token T] [--count N]\n"
	    "                       [--timeout SECONDS] [--pretty] ORDER_ID\n"
	    "Prints each frame of the order's tracking websocket as one line of JSON.\n"
	    "  --server    trackgated's address (default 127.0.0.1:8080)\n"
	    "  --since     resume after CURSOR\n"
	    "  --token     the tracking link's token (when trackgated checks tokens)\n"
	    "  --count     exit 0 after N frames (snapshot, update, resumed)\n"
	    "  --timeout   exit 1 after SECONDS without finishing\n"
	    "  --pretty    prefix each line with the local time\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"server", required_argument, NULL, 's'}, {"since", required_argument, NULL, 'c'},
	    {"count", required_argument, NULL, 'n'},  {"timeout", required_argument, NULL, 't'},
	    {"pretty", no_argument, NULL, 'p'},	      {"help", no_argument, NULL, 'h'},
	    {"token", required_argument, NULL, 'T'},  {NULL, 0, NULL, 0},
	};
	struct lws_context_creation_info info;
	struct lws_client_connect_info ci;
	struct lws_context *ctx;
	watch_t wt = {.status = 1};
	char host[256] = "127.0.0.1", path[4608];
	const char *since = NULL, *token = NULL, *id;
	long timeout = 0;
	int port = 8080, c;
	time_t start;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': {
			const char *colon = strrchr(optarg, ':');

			if (!colon || (size_t)(colon - optarg) >= sizeof(host) ||
			    (port = atoi(colon + 1)) <= 0 || port > 65535) {
				fprintf(stderr, "trackgate-watch: --server wants HOST:PORT\n");
				return 2;
			}
			memcpy(host, optarg, (size_t)(colon - optarg));
			host[colon - optarg] = '\0';
			break;
		}
		case 'c':
			since = optarg;
			break;
		case 'T':
			token = optarg;
			break;
		case 'n':
			wt.max_count = atol(optarg);
			break;
		case 't':
			timeout = atol(optarg);
			break;
		case 'p':
			wt.pretty = 1;
			break;
		case 'h':
			watch_usage(stdout);
			return 0;
		default:
			watch_usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		watch_usage(stderr);
		return 2;
	}
	id = argv[optind];
	if (!proto_order_id_valid(id, strlen(id))) {
		fprintf(stderr, "trackgate-watch: '%s' is not a valid order id\n", id);
		return 2;
	}
	if (snprintf(path, sizeof(path), "/v1/track/%s%s%s%s%s", id, since || token ? "?" : "",
		     since ? "since=" : "", since ? since : "", "") >= (int)sizeof(path) ||
	    (token && snprintf(path + strlen(path), sizeof(path) - strlen(path), "%stoken=%s",
			       since ? "&" : "", token) >= (int)(sizeof(path) - strlen(path)))) {
		fprintf(stderr, "trackgate-watch: the token or cursor is too long\n");
		return 2;
	}

	signal(SIGINT, watch_sigint);
	signal(SIGTERM, watch_sigint);
	lws_set_log_level(LLL_ERR, NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = watch_protocols;
	info.user = &wt;
	ctx = lws_create_context(&info);
	if (!ctx) {
		fprintf(stderr, "trackgate-watch: cannot create the lws context\n");
		return 1;
	}
	memset(&ci, 0, sizeof(ci));
	ci.context = ctx;
	ci.address = host;
	ci.port = port;
	ci.path = path;
	ci.host = host;
	/* No Origin: a native client, which allowed-origins (a browser check) lets through. */
	ci.origin = NULL;
	ci.protocol = NULL;
	ci.local_protocol_name = "trackgate-watch";
	if (!lws_client_connect_via_info(&ci)) {
		fprintf(stderr, "trackgate-watch: cannot connect to %s:%d\n", host, port);
		lws_context_destroy(ctx);
		return 1;
	}
	start = time(NULL);
	while (!wt.done && !watch_interrupted) {
		if (timeout && time(NULL) - start >= timeout) {
			fprintf(stderr, "trackgate-watch: timed out after %ld s (%ld frames)\n",
				timeout, wt.count);
			wt.status = 1;
			break;
		}
		if (lws_service(ctx, 0) < 0)
			break;
	}
	if (watch_interrupted)
		wt.status = 0;
	lws_context_destroy(ctx);
	free(wt.msg);
	return wt.status;
}
