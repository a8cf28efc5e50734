/*
 * page.h - the tracking page: GET /t/{ID}?token=T and its assets
 * (gateway/http/page/: track.html, track.css, track.js, view.js), embedded in the
 * binary at build time and served from memory.
 */
#ifndef TRACKGATE_PAGE_H
#define TRACKGATE_PAGE_H

#include <stdbool.h>
#include <stddef.h>

struct lws;
struct config;

typedef struct page_asset {
	const char *name; /* "track.js": served at /t/assets/NAME */
	const char *type; /* Content-Type */
	const char *data;
	size_t len;
	char etag[20]; /* "\"" 16 hex digits "\"" */
} page_asset_t;

typedef struct page {
	char *html; /* track.html with the tile settings filled in, malloc'd */
	size_t html_len;
	char html_etag[20];
	char csp[512]; /* the page's Content-Security-Policy */
	page_asset_t assets[3];
} page_t;

/* Builds the page from the embedded files and cfg's page-tile-* settings.
 * 0, or -1 on allocation failure. */
int page_init(page_t *p, const struct config *cfg);
void page_free(page_t *p);

/*
 * Answers GET/HEAD /t/REST (rest: what follows "/t/"): "assets/NAME" is an
 * asset, anything else an order id and the page.  head: a HEAD request.
 * Returns what the lws callback must return.
 */
int page_serve(const page_t *p, struct lws *wsi, const char *rest, bool get_or_head);

/* The bytes the page ships (HTML + assets), for the log and the docs. */
size_t page_total_bytes(const page_t *p);

#endif
