#include "http_reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <libwebsockets.h>

#include "log.h"

#define HTTP_HEADERS_MAX 512

/* The request whose head is being handled, when it declares a body: its
 * answers close the connection (http_head_begin).  The loop thread's only. */
static const struct lws *http_head_with_body;

bool http_body_declared(struct lws *wsi)
{
	char clen[24];

	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
	    lws_hdr_copy(wsi, clen, sizeof(clen) - 1, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
		return atoll(clen) > 0; /* as lws reads it */
	return lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0 ||
	       lws_hdr_total_length(wsi, WSI_TOKEN_PUT_URI) > 0 ||
	       lws_hdr_total_length(wsi, WSI_TOKEN_PATCH_URI) > 0;
}

bool http_body_is_own_head(const char *method, const void *first, size_t len)
{
	const char *p = first;
	size_t i = 0, n, mlen = strlen(method);

	while (i < len && (p[i] == '\r' || p[i] == '\n'))
		i++;
	/* As much of "METHOD /" as there are bytes. */
	for (n = 0; i + n < len && n < mlen + 2; n++) {
		char want = n < mlen ? method[n] : n == mlen ? ' ' : '/';

		if (p[i + n] != want)
			return false;
	}
	return n > 0;
}

void http_head_begin(struct lws *wsi)
{
	http_head_with_body = http_body_declared(wsi) ? wsi : NULL;
}

void http_head_end(void)
{
	http_head_with_body = NULL;
}

/*
 * One request line per answer, for the journal: method, path (lws keeps the
 * query string apart, so tokens in it never reach the log), status, client.
 * The path is outside input: anything but printable ASCII without quotes,
 * spaces and backslashes is shown as '?'.
 */
static void http_log(struct lws *wsi, unsigned status)
{
	static const struct {
		enum lws_token_indexes token;
		const char *name;
	} methods[] = {
	    {WSI_TOKEN_GET_URI, "GET"},		{WSI_TOKEN_POST_URI, "POST"},
	    {WSI_TOKEN_HEAD_URI, "HEAD"},	{WSI_TOKEN_PUT_URI, "PUT"},
	    {WSI_TOKEN_DELETE_URI, "DELETE"},	{WSI_TOKEN_PATCH_URI, "PATCH"},
	    {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
	};
	char path[160] = "-", client[48] = "-";
	const char *method = "-";

	if (!log_enabled(LOG_INFO))
		return;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		if (lws_hdr_total_length(wsi, methods[i].token) > 0) {
			method = methods[i].name;
			if (lws_hdr_copy(wsi, path, sizeof(path), methods[i].token) < 0)
				snprintf(path, sizeof(path), "(too long)");
			break;
		}
	}
	for (char *p = path; *p; p++)
		if (*p <= ' ' || *p > '~' || *p == '"' || *p == '\\')
			*p = '?';
	lws_get_peer_simple(wsi, client, sizeof(client));
	log_event(LOG_INFO, "http", "method=%s path=%s status=%u client=%s", method, path, status,
		  client);
}

int http_reply(struct lws *wsi, unsigned status, const char *content_type, const char *body,
	       size_t len, bool close, const char *allow)
{
	return http_reply_hdr(wsi, status, content_type, body, len, close, allow ? "allow:" : NULL,
			      allow);
}

int http_reply_hdr(struct lws *wsi, unsigned status, const char *content_type, const char *body,
		   size_t len, bool close, const char *hdr_name, const char *hdr_value)
{
	http_header_t h = {hdr_name, hdr_value};

	return http_reply_ex(wsi, status, content_type, body, len, close, &h, hdr_name ? 1 : 0);
}

int http_reply_ex(struct lws *wsi, unsigned status, const char *content_type, const char *body,
		  size_t len, bool close, const http_header_t *hdrs, size_t n_hdrs)
{
	unsigned char *buf, *start, *p, *end;
	size_t hcap = HTTP_HEADERS_MAX;
	bool cache_set = false;
	char clen[24];
	int n, rc = -1;

	close = close || wsi == http_head_with_body;
	http_log(wsi, status);
	for (size_t i = 0; i < n_hdrs; i++) {
		hcap += strlen(hdrs[i].name) + strlen(hdrs[i].value) + 4;
		cache_set |= !strcmp(hdrs[i].name, "cache-control:");
	}
	buf = malloc(LWS_PRE + hcap + len);
	if (!buf)
		return -1;
	start = p = buf + LWS_PRE;
	end = start + hcap;
	n = snprintf(clen, sizeof(clen), "%zu", len);
	if (lws_add_http_header_status(wsi, status, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
					 (const unsigned char *)content_type,
					 (int)strlen(content_type), &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
					 (const unsigned char *)clen, n, &p, end))
		goto out;
	if (!cache_set &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (const unsigned char *)"no-store", 8, &p, end))
		goto out;
	for (size_t i = 0; i < n_hdrs; i++)
		if (lws_add_http_header_by_name(wsi, (const unsigned char *)hdrs[i].name,
						(const unsigned char *)hdrs[i].value,
						(int)strlen(hdrs[i].value), &p, end))
			goto out;
	if (close && lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
						  (const unsigned char *)"close", 5, &p, end))
		goto out;
	if (lws_finalize_http_header(wsi, &p, end))
		goto out;
	/* HEAD gets the headers GET would, Content-Length included, and no body;
	 * so does a 304. */
	if (!lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) && status != 304) {
		memcpy(p, body, len);
		p += len;
	}
	n = (int)(p - start);
	/* lws keeps what the socket does not take now and sends it before the
	 * transaction completes. */
	if (lws_write(wsi, start, (size_t)n, LWS_WRITE_HTTP) != n)
		goto out;
	if (close)
		goto out; /* -1: lws flushes what is buffered, then closes */
	rc = lws_http_transaction_completed(wsi) ? -1 : 0;
out:
	free(buf);
	return rc;
}

char *http_error_body(const char *code, const char *message)
{
	cJSON *o = cJSON_CreateObject();
	char *s = NULL;

	if (o && cJSON_AddStringToObject(o, "error", code) &&
	    cJSON_AddStringToObject(o, "message", message))
		s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

int http_error(struct lws *wsi, unsigned status, const char *code, const char *message, bool close,
	       const char *allow)
{
	char *body = http_error_body(code, message);
	int rc;

	if (!body)
		return -1;
	rc = http_reply(wsi, status, "application/json", body, strlen(body), close, allow);
	free(body);
	return rc;
}
