/*
 * adapter_testlib.c - the helpers the adapter unit tests share (see
 * adapter_testlib.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "adapter_testlib.h"

/* --- fixtures ---------------------------------------------------------------------- */

char *atl_load_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long size;

	if (f == NULL)
		fail_msg("cannot open %s", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	assert_true(size > 0);
	rewind(f);
	buf = malloc((size_t)size + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
	buf[size] = '\0';
	fclose(f);
	if (len != NULL)
		*len = (size_t)size;
	return buf;
}

char *atl_load_fixture(const char *dir, const char *name, size_t *len)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s/%s", TG_FIXTURES, dir, name);
	return atl_load_file(path, len);
}

/* --- requests ----------------------------------------------------------------------- */

void atl_headers_add(atl_headers_t *h, const char *name, const char *value)
{
	for (int i = 0; i < ATL_HEADERS_MAX; i++) {
		if (h->name[i] == NULL) {
			h->name[i] = name;
			h->value[i] = value;
			return;
		}
	}
	fail_msg("no room for header %s", name);
}

const char *atl_headers_lookup(void *ctx, const char *name)
{
	const atl_headers_t *h = ctx;

	for (int i = 0; i < ATL_HEADERS_MAX; i++) {
		if (h->name[i] != NULL && strcmp(h->name[i], name) == 0)
			return h->value[i];
	}
	return NULL;
}

adapter_request_t atl_request(const char *body, size_t len, atl_headers_t *h, const void *secret,
			      size_t secret_len, int64_t now_ms)
{
	adapter_request_t req = {
	    .body = body,
	    .body_len = len,
	    .header = h != NULL ? atl_headers_lookup : NULL,
	    .header_ctx = h,
	    .secret = secret,
	    .secret_len = secret_len,
	    .now_ms = now_ms,
	};
	return req;
}

/* --- signatures --------------------------------------------------------------------- */

void atl_hmac_hex(adapter_hmac_alg_t alg, const void *key, size_t key_len, const void *data,
		  size_t len, char *hex)
{
	const EVP_MD *md = alg == ADAPTER_HMAC_SHA512 ? EVP_sha512() : EVP_sha256();
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;

	assert_non_null(HMAC(md, key, (int)key_len, data, len, mac, &mac_len));
	assert_int_equal(mac_len, alg == ADAPTER_HMAC_SHA512 ? 64 : 32);
	for (unsigned int i = 0; i < mac_len; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
}

/* --- the updates an adapter produces ------------------------------------------------ */

/* The ATL_CHECK_PARTS comparison of u with back, its copy read back by proto. */
static void assert_parts_equal(const proto_update_t *back, const proto_update_t *u)
{
	if (u->has_location) {
		assert_true(back->location.lat == u->location.lat);
		assert_true(back->location.lng == u->location.lng);
	}
	assert_int_equal(back->eta.has_pickup, u->eta.has_pickup);
	assert_int_equal(back->eta.has_dropoff, u->eta.has_dropoff);
	if (u->eta.has_pickup)
		assert_int_equal(back->eta.pickup, u->eta.pickup);
	if (u->eta.has_dropoff)
		assert_int_equal(back->eta.dropoff, u->eta.dropoff);
	assert_int_equal(back->has_courier, u->has_courier);
	assert_string_equal(back->courier.name, u->courier.name);
	assert_string_equal(back->courier.vehicle, u->courier.vehicle);
}

void atl_assert_update_valid(const proto_update_t *u, const char *provider, unsigned checks)
{
	proto_update_t back;
	proto_error_t err;
	char *json = proto_update_to_json(u);

	memset(&err, 0, sizeof(err));
	assert_non_null(json);
	if (proto_update_parse(json, strlen(json), &back, &err) != PROTO_OK)
		fail_msg("proto refuses %s: %s %s", json, err.field, err.message);
	assert_string_equal(back.order_id, u->order_id);
	if (provider != NULL)
		assert_string_equal(back.provider, provider);
	assert_string_equal(back.event_id, u->event_id);
	if (checks & ATL_CHECK_EVENT_ID)
		assert_true(back.event_id[0] != '\0');
	assert_int_equal(back.ts, u->ts);
	assert_int_equal(back.status, u->status);
	if (checks & ATL_CHECK_PRESENCE) {
		assert_int_equal(back.has_location, u->has_location);
		assert_int_equal(back.has_eta, u->has_eta);
	}
	if (checks & ATL_CHECK_COURIER_ID)
		assert_string_equal(back.courier.id, u->courier.id);
	if (checks & ATL_CHECK_PARTS)
		assert_parts_equal(&back, u);
	free(json);
}

void atl_assert_updates_valid(const proto_update_t *u, int n, const atl_expect_t *expect)
{
	assert_in_range(n, 0, expect->max_updates);
	for (int i = 0; i < n; i++)
		atl_assert_update_valid(&u[i], expect->provider, expect->checks);
}

int atl_parse(const adapter_ops_t *ops, const adapter_request_t *req, proto_update_t *out, int *n,
	      proto_error_t *err, const atl_expect_t *expect)
{
	int rc;

	*n = -1;
	memset(err, 0, sizeof(*err));
	rc = ops->parse(req, out, ADAPTER_UPDATES_MAX, n, err);
	if (rc != ADAPTER_OK)
		assert_int_equal(*n, 0);
	atl_assert_updates_valid(out, *n, expect);
	return rc;
}

int atl_verify_then_parse(const adapter_ops_t *ops, const adapter_request_t *req,
			  proto_update_t *out, int *n, proto_error_t *err,
			  const atl_expect_t *expect)
{
	int rc;

	*n = -1;
	memset(err, 0, sizeof(*err));
	rc = ops->verify(req, err);
	if (rc != ADAPTER_OK)
		return rc;
	return atl_parse(ops, req, out, n, err, expect);
}

void atl_parse_into(const adapter_ops_t *ops, const adapter_request_t *req,
		    const atl_expect_t *expect, atl_parsed_t *p)
{
	memset(p, 0, sizeof(*p));
	p->rc = atl_parse(ops, req, p->u, &p->n, &p->err, expect);
	if (p->rc != ADAPTER_OK)
		assert_true(p->err.message[0] != '\0');
}

void atl_assert_one_update(const atl_parsed_t *p)
{
	if (p->rc != ADAPTER_OK)
		fail_msg("parse failed: %s %s", p->err.field, p->err.message);
	assert_int_equal(p->n, 1);
}

void atl_assert_ignored(const atl_parsed_t *p)
{
	if (p->rc != ADAPTER_OK)
		fail_msg("parse failed: %s %s", p->err.field, p->err.message);
	assert_int_equal(p->n, 0);
}

void atl_assert_invalid(const atl_parsed_t *p, const char *field)
{
	assert_int_equal(p->rc, ADAPTER_EINVAL);
	assert_int_equal(p->n, 0);
	if (field != NULL && strcmp(p->err.field, field) != 0)
		fail_msg("error names \"%s\" (%s), expected \"%s\"", p->err.field, p->err.message,
			 field);
}

/* --- text ------------------------------------------------------------------------- */

char *atl_format(const char *fmt, ...)
{
	va_list ap;
	char *out;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	assert_true(len >= 0);
	out = malloc((size_t)len + 1);
	assert_non_null(out);
	va_start(ap, fmt);
	vsnprintf(out, (size_t)len + 1, fmt, ap);
	va_end(ap);
	return out;
}

char *atl_replace_once(const char *s, const char *from, const char *to)
{
	const char *at = strstr(s, from);
	size_t head, len;
	char *out;

	if (at == NULL)
		fail_msg("\"%s\" is not in the text", from);
	head = (size_t)(at - s);
	len = strlen(s) - strlen(from) + strlen(to);
	out = malloc(len + 1);
	assert_non_null(out);
	memcpy(out, s, head);
	memcpy(out + head, to, strlen(to));
	strcpy(out + head + strlen(to), at + strlen(from));
	return out;
}
