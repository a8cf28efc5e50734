/*
 * page.c - the tracking page and its assets, served from memory.
 *
 * The HTML is the same for every order: the script reads the order id from
 * the path and the token from the query, so the page needs no Redis read and
 * no token check of its own (the websocket checks the token and closes with
 * 4401/4403, which the page turns into a sentence).  The token is in the URL,
 * so the page is never stored by caches (no-store) and never sent as a
 * Referer (no-referrer), not even to a tile server.
 *
 * Assets are revalidated (no-cache + ETag, 304 when unchanged), so a new
 * build's files are picked up at once without versioned names.
 */
#include "page.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "config.h"
#include "conn.h"
#include "http_reply.h"
#include "proto.h"

/* Generated from gateway/http/page/ by CMake (proto/embed.cmake). */
extern const char page_track_html[], page_track_css[], page_track_js[], page_view_js[];
extern const size_t page_track_html_len, page_track_css_len, page_track_js_len, page_view_js_len;

static void page_etag(const char *data, size_t len, char out[20])
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a 64 */

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)data[i];
		h *= 1099511628211ULL;
	}
	snprintf(out, 20, "\"%016llx\"", (unsigned long long)h);
}

/* Appends s HTML-escaped for an attribute value; returns the new length. */
static size_t page_escape(char *dst, size_t at, const char *s)
{
	for (; *s; s++) {
		const char *e = NULL;

		switch (*s) {
		case '&':
			e = "&amp;";
			break;
		case '<':
			e = "&lt;";
			break;
		case '>':
			e = "&gt;";
			break;
		case '"':
			e = "&quot;";
			break;
		case '\'':
			e = "&#39;";
			break;
		default:
			break;
		}
		if (e) {
			if (dst)
				memcpy(dst + at, e, strlen(e));
			at += strlen(e);
		} else {
			if (dst)
				dst[at] = *s;
			at++;
		}
	}
	return at;
}

/* template with each {{NAME}} of names[] replaced by values[] (escaped); malloc'd. */
static char *page_fill(const char *tpl, size_t tpl_len, const char *const names[],
		       const char *const values[], size_t n, size_t *out_len)
{
	char *out = NULL;

	for (int pass = 0; pass < 2; pass++) {
		size_t at = 0;

		for (size_t i = 0; i < tpl_len;) {
			size_t k;

			for (k = 0; k < n; k++) {
				size_t nl = strlen(names[k]);

				if (tpl_len - i >= nl && !memcmp(tpl + i, names[k], nl))
					break;
			}
			if (k < n) {
				at = page_escape(out, at, values[k]);
				i += strlen(names[k]);
				continue;
			}
			if (out)
				out[at] = tpl[i];
			at++;
			i++;
		}
		if (out) {
			out[at] = '\0';
			*out_len = at;
			return out;
		}
		out = malloc(at + 1);
		if (!out)
			return NULL;
	}
	return out;
}

int page_init(page_t *p, const config_t *cfg)
{
	static const char *const names[] = {"{{TILES}}", "{{ATTRIBUTION}}"};
	const char *values[] = {cfg->page_tile_url, cfg->page_tile_attribution};
	char origin[CONFIG_TILE_URL_MAX + 1] = "";
	const page_asset_t assets[] = {
	    {"track.css", "text/css; charset=utf-8", page_track_css, page_track_css_len, ""},
	    {"track.js", "text/javascript; charset=utf-8", page_track_js, page_track_js_len, ""},
	    {"view.js", "text/javascript; charset=utf-8", page_view_js, page_view_js_len, ""},
	};

	memset(p, 0, sizeof(*p));
	p->html = page_fill(page_track_html, page_track_html_len, names, values, 2, &p->html_len);
	if (!p->html)
		return -1;
	page_etag(p->html, p->html_len, p->html_etag);
	memcpy(p->assets, assets, sizeof(assets));
	for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++)
		page_etag(p->assets[i].data, p->assets[i].len, p->assets[i].etag);

	/* Tiles are images from the template's origin (scheme://host[:port]). */
	if (cfg->page_tile_url[0]) {
		const char *host = strstr(cfg->page_tile_url, "://") + 3;
		size_t n = (size_t)(strchr(host, '/') - cfg->page_tile_url);

		memcpy(origin, cfg->page_tile_url, n);
		origin[n] = '\0';
	}
	snprintf(
	    p->csp, sizeof(p->csp),
	    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:%s%s; "
	    "connect-src 'self'; base-uri 'none'; form-action 'none'",
	    origin[0] ? " " : "", origin);
	return 0;
}

void page_free(page_t *p)
{
	free(p->html);
	p->html = NULL;
}

size_t page_total_bytes(const page_t *p)
{
	size_t n = p->html_len;

	for (size_t i = 0; i < sizeof(p->assets) / sizeof(p->assets[0]); i++)
		n += p->assets[i].len;
	return n;
}

/* True when the request's If-None-Match names etag (or is "*"). */
static bool page_not_modified(struct lws *wsi, const char *etag)
{
	char inm[256];

	if (lws_hdr_copy(wsi, inm, sizeof(inm), WSI_TOKEN_HTTP_IF_NONE_MATCH) <= 0)
		return false;
	return strstr(inm, etag) != NULL || !strcmp(inm, "*");
}

static int page_send(struct lws *wsi, const char *type, const char *data, size_t len,
		     const char *etag, const http_header_t *extra, size_t n_extra)
{
	http_header_t h[8];
	size_t n = 0;
	bool fresh = page_not_modified(wsi, etag);

	h[n++] = (http_header_t){"etag:", etag};
	h[n++] = (http_header_t){"x-content-type-options:", "nosniff"};
	for (size_t i = 0; i < n_extra && n < sizeof(h) / sizeof(h[0]); i++)
		h[n++] = extra[i];
	return http_reply_ex(wsi, fresh ? 304 : 200, type, data, len, false, h, n);
}

int page_serve(const page_t *p, struct lws *wsi, const char *rest, bool get_or_head)
{
	if (!get_or_head)
		return http_error(wsi, 405, "method_not_allowed", "use GET", true, "GET, HEAD");
	if (!strncmp(rest, "assets/", 7)) {
		/* Public files: a merchant's own page may import track.js from here
		 * (a cross-origin module script needs CORS). */
		const http_header_t h[] = {
		    {"cache-control:", "no-cache"},
		    {"access-control-allow-origin:", "*"},
		};

		for (size_t i = 0; i < sizeof(p->assets) / sizeof(p->assets[0]); i++)
			if (!strcmp(rest + 7, p->assets[i].name))
				return page_send(wsi, p->assets[i].type, p->assets[i].data,
						 p->assets[i].len, p->assets[i].etag, h,
						 sizeof(h) / sizeof(h[0]));
		return http_error(wsi, 404, "not_found", "no such asset", false, NULL);
	}
	if (!proto_order_id_valid(rest, strlen(rest))) {
		static const char body[] =
		    "<!doctype html><meta charset=utf-8><title>Not a tracking link</title>"
		    "<p>This is not a valid tracking link: the order id must be 1-128 characters "
		    "of A-Z a-z 0-9 . _ ~ -.</p>\n";
		return http_reply(wsi, 400, "text/html; charset=utf-8", body, sizeof(body) - 1,
				  false, NULL);
	}
	{
		/* The page reads the token from its URL; one given twice is refused here as
		 * the websocket would refuse it, not left to the script to pick one. */
		char qbuf[CONN_QUERY_MAX];
		const char *token;
		size_t token_len;
		query_t query;
		int rc = conn_query(wsi, &query, qbuf, sizeof(qbuf));

		if (rc == 0)
			rc = query_get(&query, "token", &token, &token_len);
		if (rc != QUERY_OK && rc != QUERY_ABSENT) {
			static const char body[] =
			    "<!doctype html><meta charset=utf-8><title>Not a tracking link</title>"
			    "<p>This is not a valid tracking link: it gives the token more than "
			    "once.</p>\n";
			return http_reply(wsi, 400, "text/html; charset=utf-8", body,
					  sizeof(body) - 1, false, NULL);
		}
	}
	const http_header_t h[] = {
	    {"content-security-policy:", p->csp},
	    {"referrer-policy:", "no-referrer"},
	    {"cache-control:", "no-store"},
	};
	return page_send(wsi, "text/html; charset=utf-8", p->html, p->html_len, p->html_etag, h,
			 sizeof(h) / sizeof(h[0]));
}
