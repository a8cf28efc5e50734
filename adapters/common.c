/*
 * common.c - what the provider adapters share (adapters_private.h):
 * signature and credential checks, the JSON body, dotted-path getters,
 * times, coordinates and the update helpers.
 *
 * Everything here sees bytes from the outside.  Every function is total:
 * it returns an error for any input instead of reading past a buffer, and
 * it never consults the environment (no locale-dependent time functions,
 * no TZ): a time is computed from its digits alone.
 */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "adapters_private.h"

int adapter_fail(proto_error_t *err, int code, const char *field, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return code;
	snprintf(err->field, sizeof(err->field), "%s", field != NULL ? field : "");
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return code;
}

/* --- signatures and credentials ------------------------------------------------- */

bool adapter_equal(const void *a, size_t a_len, const void *b, size_t b_len)
{
	if (a_len != b_len)
		return false;
	if (a_len == 0)
		return true;
	if (a == NULL || b == NULL)
		return false;
	return CRYPTO_memcmp(a, b, a_len) == 0;
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long adapter_hex_decode(const char *hex, size_t len, unsigned char *out, size_t cap)
{
	if (hex == NULL || len % 2 != 0 || len / 2 > cap || len / 2 > (size_t)LONG_MAX)
		return -1;
	for (size_t i = 0; i < len; i += 2) {
		int hi = hex_value((unsigned char)hex[i]);
		int lo = hex_value((unsigned char)hex[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (unsigned char)(hi << 4 | lo);
	}
	return (long)(len / 2);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Case-insensitive ASCII prefix test; s is NUL-terminated. */
static bool has_prefix_ci(const char *s, const char *prefix)
{
	for (; *prefix != '\0'; s++, prefix++) {
		if (tolower((unsigned char)*s) != tolower((unsigned char)*prefix))
			return false;
	}
	return true;
}

bool adapter_hmac_hex_ok(adapter_hmac_alg_t alg, const unsigned char *key, size_t key_len,
			 const char *body, size_t body_len, const char *hex)
{
	const EVP_MD *md;
	const char *prefix;
	unsigned char want[EVP_MAX_MD_SIZE], got[EVP_MAX_MD_SIZE];
	unsigned int want_len = 0;
	size_t md_len, len;
	long got_len;

	if (hex == NULL || key == NULL || key_len == 0 || key_len > INT_MAX ||
	    (body == NULL && body_len != 0))
		return false;
	if (alg == ADAPTER_HMAC_SHA256) {
		md = EVP_sha256();
		prefix = "sha256=";
	} else if (alg == ADAPTER_HMAC_SHA512) {
		md = EVP_sha512();
		prefix = "sha512=";
	} else {
		return false;
	}
	md_len = (size_t)EVP_MD_get_size(md);

	while (is_space(*hex))
		hex++;
	if (has_prefix_ci(hex, prefix))
		hex += strlen(prefix);
	/* Never look further than a digest's worth of digits plus trailing space. */
	len = strnlen(hex, 2 * md_len + 1);
	while (len > 0 && is_space(hex[len - 1]))
		len--;
	if (len != 2 * md_len)
		return false;
	for (size_t i = len; hex[i] != '\0'; i++) {
		if (!is_space(hex[i]))
			return false;
	}
	got_len = adapter_hex_decode(hex, len, got, sizeof(got));
	if (got_len != (long)md_len)
		return false;
	if (HMAC(md, key, (int)key_len,
		 body != NULL ? (const unsigned char *)body : (const unsigned char *)"", body_len,
		 want, &want_len) == NULL ||
	    want_len != md_len)
		return false;
	return CRYPTO_memcmp(want, got, md_len) == 0;
}

/* Longest Authorization credential looked at; longer values are refused. */
#define AUTH_CREDENTIAL_MAX 4096

bool adapter_authorization_ok(const char *header_value, const unsigned char *secret,
			      size_t secret_len)
{
	unsigned char decoded[PROTO_BASE64_DECODED_MAX(AUTH_CREDENTIAL_MAX)];
	const char *credential;
	size_t len, n;
	bool ok, bearer;

	if (header_value == NULL || secret == NULL || secret_len == 0)
		return false;
	while (is_space(*header_value))
		header_value++;
	/* RFC 9110 11.1: the scheme is case-insensitive, then one or more spaces. */
	if (has_prefix_ci(header_value, "Bearer") && is_space(header_value[6])) {
		bearer = true;
		credential = header_value + 6;
	} else if (has_prefix_ci(header_value, "Basic") && is_space(header_value[5])) {
		bearer = false;
		credential = header_value + 5;
	} else {
		return false;
	}
	while (is_space(*credential))
		credential++;
	len = strnlen(credential, AUTH_CREDENTIAL_MAX + 1);
	if (len > AUTH_CREDENTIAL_MAX)
		return false;
	while (len > 0 && is_space(credential[len - 1]))
		len--;
	if (len == 0)
		return false;
	if (bearer)
		return adapter_equal(credential, len, secret, secret_len);
	/* RFC 7617: standard base64; the '=' padding is tolerated missing. */
	ok = proto_base64_decode(credential, len, 0, decoded, sizeof(decoded), &n) == PROTO_OK &&
	     n != 0 && adapter_equal(decoded, n, secret, secret_len);
	OPENSSL_cleanse(decoded, sizeof(decoded));
	return ok;
}

int adapter_check_replay_window(const adapter_request_t *req, int64_t signed_ms, const char *field,
				proto_error_t *err)
{
	int64_t window =
	    req->replay_window_ms > 0 ? req->replay_window_ms : ADAPTER_REPLAY_WINDOW_DEFAULT_MS;
	int64_t skew;

	/* Both are in 0..PROTO_MS_MAX-ish ranges checked by the callers; no overflow. */
	if (signed_ms < 0 || signed_ms > PROTO_MS_MAX || req->now_ms < 0 ||
	    req->now_ms > PROTO_MS_MAX)
		return adapter_fail(err, ADAPTER_EAUTH, field,
				    "the signed time is not a time between 1970 and 5138");
	skew = req->now_ms - signed_ms;
	if (skew > window)
		return adapter_fail(err, ADAPTER_EAUTH, field,
				    "the signed time is %lld s before the receive time, outside "
				    "the replay window of %lld s: a replayed or late webhook",
				    (long long)(skew / 1000), (long long)(window / 1000));
	if (-skew > window)
		return adapter_fail(err, ADAPTER_EAUTH, field,
				    "the signed time is %lld s after the receive time, outside "
				    "the replay window of %lld s: check the clocks",
				    (long long)(-skew / 1000), (long long)(window / 1000));
	return ADAPTER_OK;
}

void adapter_body_event_id(const char *body, size_t len, char out[PROTO_EVENT_ID_MAX + 1])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	char *p = out;

	out[0] = '\0';
	if (body == NULL && len != 0)
		return;
	if (EVP_Digest(body != NULL ? body : "", len, md, &md_len, EVP_sha256(), NULL) != 1 ||
	    md_len < 16)
		return;
	memcpy(p, "sha256:", 7);
	p += 7;
	for (size_t i = 0; i < 16; i++) {
		*p++ = digits[md[i] >> 4];
		*p++ = digits[md[i] & 0x0f];
	}
	*p = '\0';
}

/* --- the JSON body ------------------------------------------------------------- */

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Reports a top-level member given twice: cJSON reads the first, others the last. */
static int check_duplicates(const cJSON *root, proto_error_t *err)
{
	const char **names;
	size_t count = 0, i = 0;
	int rc = ADAPTER_OK;

	for (const cJSON *c = root->child; c != NULL; c = c->next)
		count++;
	if (count < 2)
		return ADAPTER_OK;
	names = malloc(count * sizeof(*names));
	if (names == NULL)
		return adapter_fail(err, ADAPTER_ENOMEM, "", ADAPTER_MSG_NOMEM);
	for (const cJSON *c = root->child; c != NULL; c = c->next)
		names[i++] = c->string != NULL ? c->string : "";
	qsort(names, count, sizeof(*names), compare_names);
	for (i = 1; i < count; i++) {
		if (strcmp(names[i - 1], names[i]) == 0) {
			rc = adapter_fail(err, ADAPTER_EINVAL, names[i], "appears more than once");
			break;
		}
	}
	free(names);
	return rc;
}

cJSON *adapter_parse_json(const char *body, size_t len, proto_error_t *err)
{
	const char *end = NULL;
	cJSON *root = NULL;
	char *copy;

	if (body == NULL || len == 0) {
		adapter_fail(err, ADAPTER_EINVAL, "", "the body is empty");
		return NULL;
	}
	/* The raw bytes first: JSON text is UTF-8 and never holds a NUL byte. */
	for (size_t i = 0; i < len;) {
		size_t n;
		if (body[i] == '\0') {
			adapter_fail(err, ADAPTER_EINVAL, "",
				     "the body holds a NUL byte (at byte %zu)", i);
			return NULL;
		}
		n = proto_utf8_seq_len(body + i, len - i);
		if (n == 0) {
			adapter_fail(err, ADAPTER_EINVAL, "",
				     "the body is not valid UTF-8 (at byte %zu)", i);
			return NULL;
		}
		i += n;
	}
	if (proto_json_has_nul_escape(body, len)) {
		adapter_fail(err, ADAPTER_EINVAL, "",
			     "the body must not contain the escape \\u0000");
		return NULL;
	}
	/*
	 * cJSON gets a NUL-terminated copy and a length that counts the NUL, so
	 * it can never read past the copy and require_null_terminated rejects
	 * anything but whitespace after the value.
	 */
	if (len == SIZE_MAX || (copy = malloc(len + 1)) == NULL) {
		adapter_fail(err, ADAPTER_ENOMEM, "", ADAPTER_MSG_NOMEM);
		return NULL;
	}
	memcpy(copy, body, len);
	copy[len] = '\0';
	root = cJSON_ParseWithLengthOpts(copy, len + 1, &end, true);
	if (root == NULL) {
		size_t at =
		    end != NULL && end >= copy && end <= copy + len ? (size_t)(end - copy) : 0;
		adapter_fail(err, ADAPTER_EINVAL, "", "the body is not valid JSON (at byte %zu)",
			     at);
		goto out;
	}
	if (!cJSON_IsObject(root)) {
		adapter_fail(err, ADAPTER_EINVAL, "", "the body must be a JSON object");
		goto fail;
	}
	if (check_duplicates(root, err) != ADAPTER_OK)
		goto fail;
	goto out;
fail:
	cJSON_Delete(root);
	root = NULL;
out:
	free(copy);
	return root;
}

/* --- getters ------------------------------------------------------------------- */

enum lookup_result {
	LOOKUP_FOUND,
	LOOKUP_ABSENT,	   /* some step missing or null */
	LOOKUP_NOT_OBJECT, /* a step before the last is neither an object nor null */
};

/*
 * Walks path through objects.  On LOOKUP_NOT_OBJECT, *bad_len is the length
 * of the path prefix that names the offending member.
 */
static enum lookup_result lookup(const cJSON *root, const char *path, const cJSON **item,
				 size_t *bad_len)
{
	const cJSON *cur = root;
	const char *seg = path;

	*item = NULL;
	if (root == NULL || path == NULL)
		return LOOKUP_ABSENT;
	for (;;) {
		const char *dot = strchr(seg, '.');
		size_t seg_len = dot != NULL ? (size_t)(dot - seg) : strlen(seg);
		const cJSON *next = NULL;

		if (cur == NULL || cJSON_IsNull(cur))
			return LOOKUP_ABSENT;
		if (!cJSON_IsObject(cur)) {
			*bad_len = seg > path ? (size_t)(seg - path - 1) : 0;
			return LOOKUP_NOT_OBJECT;
		}
		for (const cJSON *c = cur->child; c != NULL; c = c->next) {
			if (c->string != NULL && strncmp(c->string, seg, seg_len) == 0 &&
			    c->string[seg_len] == '\0') {
				next = c;
				break;
			}
		}
		cur = next;
		if (dot == NULL)
			break;
		seg = dot + 1;
	}
	if (cur == NULL || cJSON_IsNull(cur))
		return LOOKUP_ABSENT;
	*item = cur;
	return LOOKUP_FOUND;
}

const cJSON *adapter_get(const cJSON *root, const char *path)
{
	const cJSON *item;
	size_t bad_len;

	return lookup(root, path, &item, &bad_len) == LOOKUP_FOUND ? item : NULL;
}

/*
 * The item at path: 0 when found, 1 when absent and optional, else the
 * error (absent and required, or a step that is not an object).
 */
static int get_item(const cJSON *root, const char *path, bool required, const cJSON **item,
		    proto_error_t *err)
{
	size_t bad_len = 0;

	switch (lookup(root, path, item, &bad_len)) {
	case LOOKUP_FOUND:
		return 0;
	case LOOKUP_NOT_OBJECT:
		adapter_fail(err, ADAPTER_EINVAL, "", "must be an object");
		if (err != NULL)
			snprintf(err->field, sizeof(err->field), "%.*s", (int)bad_len, path);
		return ADAPTER_EINVAL;
	case LOOKUP_ABSENT:
	default:
		break;
	}
	if (required)
		return adapter_fail(err, ADAPTER_EINVAL, path, "is required");
	return 1;
}

int adapter_get_string(const cJSON *root, const char *path, bool required, const char **out,
		       proto_error_t *err)
{
	const cJSON *item;
	int rc = get_item(root, path, required, &item, err);

	if (rc != 0)
		return rc;
	if (!cJSON_IsString(item) || item->valuestring == NULL)
		return adapter_fail(err, ADAPTER_EINVAL, path, "must be a string");
	*out = item->valuestring;
	return 0;
}

/* Longest numeric string accepted: more digits than a double holds, and then some. */
#define NUMBER_TEXT_MAX 64

/*
 * Parses s as a whole decimal number: [-+]digits[.digits][(e|E)[-+]digits]
 * (or .digits).  No spaces, no hex, no "nan"/"inf", finite result.  strtod
 * runs on a bounded copy whose grammar is already checked, so it consumes
 * the whole copy; with the process in the "C" locale (trackgate never calls
 * setlocale) the decimal point is '.'.
 */
static bool parse_decimal(const char *s, double *out)
{
	char copy[NUMBER_TEXT_MAX + 1];
	size_t len = strnlen(s, NUMBER_TEXT_MAX + 1);
	size_t i = 0, int_digits = 0, frac_digits = 0;
	char *end;
	double d;

	if (len == 0 || len > NUMBER_TEXT_MAX)
		return false;
	if (s[i] == '-' || s[i] == '+')
		i++;
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		i++;
		int_digits++;
	}
	if (i < len && s[i] == '.') {
		i++;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			i++;
			frac_digits++;
		}
	}
	if (int_digits + frac_digits == 0)
		return false;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		size_t exp_digits = 0;
		i++;
		if (i < len && (s[i] == '-' || s[i] == '+'))
			i++;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			i++;
			exp_digits++;
		}
		if (exp_digits == 0)
			return false;
	}
	if (i != len)
		return false;
	memcpy(copy, s, len);
	copy[len] = '\0';
	d = strtod(copy, &end);
	if (end != copy + len || !isfinite(d))
		return false;
	*out = d;
	return true;
}

int adapter_get_number(const cJSON *root, const char *path, bool required, double *out,
		       proto_error_t *err)
{
	const cJSON *item;
	int rc = get_item(root, path, required, &item, err);
	double d;

	if (rc != 0)
		return rc;
	if (cJSON_IsNumber(item)) {
		d = item->valuedouble;
		if (!isfinite(d))
			return adapter_fail(err, ADAPTER_EINVAL, path, "must be a finite number");
	} else if (cJSON_IsString(item) && item->valuestring != NULL) {
		if (!parse_decimal(item->valuestring, &d))
			return adapter_fail(
			    err, ADAPTER_EINVAL, path,
			    "must be a number or a string holding a decimal number");
	} else {
		return adapter_fail(err, ADAPTER_EINVAL, path, "must be a number");
	}
	*out = d;
	return 0;
}

/* --- times --------------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static bool is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Reads exactly n digits at *s (NUL-terminated) into *out and advances. */
static bool read_digits(const char **s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char c = (*s)[i];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*s += n;
	*out = v;
	return true;
}

static bool expect(const char **s, char c)
{
	if (**s != c)
		return false;
	(*s)++;
	return true;
}

/* ms since the epoch of an RFC 3339 date-time (section 5.6), strictly. */
static bool parse_rfc3339(const char *s, int64_t *out)
{
	int year, month, day, hour, minute, second, off_h = 0, off_m = 0, frac_ms = 0;
	int sign = 0;
	int64_t secs;

	if (!read_digits(&s, 4, &year) || !expect(&s, '-') || !read_digits(&s, 2, &month) ||
	    !expect(&s, '-') || !read_digits(&s, 2, &day))
		return false;
	if (*s != 'T' && *s != 't' && *s != ' ')
		return false;
	s++;
	if (!read_digits(&s, 2, &hour) || !expect(&s, ':') || !read_digits(&s, 2, &minute) ||
	    !expect(&s, ':') || !read_digits(&s, 2, &second))
		return false;
	if (*s == '.') {
		size_t digits = 0;
		s++;
		while (*s >= '0' && *s <= '9') {
			if (digits < 3)
				frac_ms = frac_ms * 10 + (*s - '0');
			digits++;
			s++;
		}
		if (digits == 0)
			return false;
		for (; digits < 3; digits++)
			frac_ms *= 10;
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		sign = *s == '+' ? 1 : -1;
		s++;
		if (!read_digits(&s, 2, &off_h) || !expect(&s, ':') || !read_digits(&s, 2, &off_m))
			return false;
	} else {
		return false;
	}
	if (*s != '\0')
		return false;
	/* RFC 3339 allows second 60 (a leap second); it is read as the next second. */
	if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
	    minute > 59 || second > 60 || off_h > 23 || off_m > 59)
		return false;
	secs = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second -
	       sign * (off_h * 3600 + off_m * 60);
	*out = secs * 1000 + frac_ms;
	return true;
}

/*
 * Epoch seconds or milliseconds as a double: below 10^11 it is seconds (10^11
 * seconds is the year 5138; 10^11 ms is 1973), rounded to the nearest ms.
 */
static int ms_from_number(double v, int64_t *out_ms)
{
	double ms;

	if (!isfinite(v) || v <= 0)
		return ADAPTER_EINVAL;
	ms = v < 1e11 ? v * 1000.0 : v;
	ms = floor(ms + 0.5);
	if (!(ms >= 1.0 && ms <= (double)PROTO_MS_MAX))
		return ADAPTER_EINVAL;
	*out_ms = (int64_t)ms;
	return ADAPTER_OK;
}

int adapter_parse_time(const char *s, int64_t *out_ms)
{
	int64_t ms;
	double v;

	if (s == NULL)
		return ADAPTER_EINVAL;
	if (parse_rfc3339(s, &ms)) {
		if (ms < 1 || ms > PROTO_MS_MAX)
			return ADAPTER_EINVAL;
		*out_ms = ms;
		return ADAPTER_OK;
	}
	if (parse_decimal(s, &v))
		return ms_from_number(v, out_ms);
	return ADAPTER_EINVAL;
}

int adapter_get_time(const cJSON *root, const char *path, bool required, int64_t *out_ms,
		     proto_error_t *err)
{
	const cJSON *item;
	int rc = get_item(root, path, required, &item, err);

	if (rc != 0)
		return rc;
	if (cJSON_IsString(item) && item->valuestring != NULL)
		rc = adapter_parse_time(item->valuestring, out_ms);
	else if (cJSON_IsNumber(item))
		rc = ms_from_number(item->valuedouble, out_ms);
	else
		rc = ADAPTER_EINVAL;
	if (rc != ADAPTER_OK)
		return adapter_fail(err, ADAPTER_EINVAL, path,
				    "must be an RFC 3339 time or epoch seconds/ms, "
				    "between 1970 and 5138");
	return 0;
}

/* --- coordinates --------------------------------------------------------------- */

int adapter_get_latlng(const cJSON *root, const char *lat_path, const char *lng_path, bool required,
		       double *lat, double *lng, bool *found, proto_error_t *err)
{
	double la = 0, ln = 0;
	int rc_lat, rc_lng;

	*found = false;
	rc_lat = adapter_get_number(root, lat_path, required, &la, err);
	if (rc_lat < 0)
		return rc_lat;
	rc_lng = adapter_get_number(root, lng_path, required, &ln, err);
	if (rc_lng < 0)
		return rc_lng;
	if (rc_lat == 1 && rc_lng == 1)
		return ADAPTER_OK;
	if (rc_lat == 1)
		return adapter_fail(err, ADAPTER_EINVAL, lat_path, "is required with %.40s",
				    lng_path);
	if (rc_lng == 1)
		return adapter_fail(err, ADAPTER_EINVAL, lng_path, "is required with %.40s",
				    lat_path);
	if (!(la >= -90.0 && la <= 90.0))
		return adapter_fail(err, ADAPTER_EINVAL, lat_path, "must be a number in [-90, 90]");
	if (!(ln >= -180.0 && ln <= 180.0))
		return adapter_fail(err, ADAPTER_EINVAL, lng_path,
				    "must be a number in [-180, 180]");
	*lat = la;
	*lng = ln;
	*found = true;
	return ADAPTER_OK;
}

void adapter_keep_place(double lat, double lng, proto_point_t *p, bool *has)
{
	*has = !(lat == 0 && lng == 0);
	if (*has) {
		p->lat = lat;
		p->lng = lng;
	}
}

void adapter_get_place(const cJSON *root, const char *lat_path, const char *lng_path,
		       proto_point_t *p, bool *has)
{
	proto_error_t ignored;
	double lat = 0, lng = 0;
	bool found = false;

	*has = false;
	if (adapter_get_latlng(root, lat_path, lng_path, false, &lat, &lng, &found, &ignored) ==
		ADAPTER_OK &&
	    found)
		adapter_keep_place(lat, lng, p, has);
}

/* --- building updates ---------------------------------------------------------- */

int adapter_update_init(proto_update_t *u, const char *provider, const char *order_id, int64_t ts,
			const char *event_id, proto_error_t *err)
{
	size_t len;

	memset(u, 0, sizeof(*u));
	if (order_id == NULL)
		return adapter_fail(err, ADAPTER_EINVAL, "order_id", "is required");
	len = strnlen(order_id, PROTO_ORDER_ID_MAX + 1);
	if (len < 1 || len > PROTO_ORDER_ID_MAX)
		return adapter_fail(err, ADAPTER_EINVAL, "order_id",
				    "must be 1 to 128 characters long");
	if (!proto_order_id_valid(order_id, len))
		return adapter_fail(err, ADAPTER_EINVAL, "order_id",
				    "may only contain A-Z a-z 0-9 . _ ~ -");
	if (ts < 1 || ts > PROTO_MS_MAX)
		return adapter_fail(err, ADAPTER_EINVAL, "ts", "must be in [1, 99999999999999] ms");
	memcpy(u->order_id, order_id, len);
	snprintf(u->provider, sizeof(u->provider), "%s", provider != NULL ? provider : "");
	u->ts = ts;
	if (event_id != NULL) {
		size_t i;
		for (i = 0; i < PROTO_EVENT_ID_MAX && event_id[i] != '\0'; i++) {
			unsigned char c = (unsigned char)event_id[i];
			u->event_id[i] = c >= 0x20 && c <= 0x7e ? (char)c : '_';
		}
		u->event_id[i] = '\0';
	}
	return ADAPTER_OK;
}

void adapter_copy_text(char *dst, size_t cap, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t used = 0;

	if (dst == NULL || cap == 0)
		return;
	if (s != NULL) {
		while (*p != '\0') {
			size_t n = proto_utf8_seq_len(p, strnlen((const char *)p, 4));
			if (n == 0) {
				/* Not UTF-8: one replacement byte, so the copy stays valid. */
				if (used + 1 > cap - 1)
					break;
				dst[used++] = '?';
				p++;
				continue;
			}
			if (used + n > cap - 1)
				break;
			if (n == 1 && (*p < 0x20 || *p == 0x7f))
				dst[used] = ' ';
			else
				memcpy(dst + used, p, n);
			used += n;
			p += n;
		}
	}
	dst[used] = '\0';
}

int adapter_emit_one(const proto_update_t *u, proto_update_t *out, int max, int *n,
		     proto_error_t *err)
{
	*n = 0;
	if (!u->has_location && u->status == PROTO_STATUS_NONE && !u->has_eta && !u->has_places)
		return ADAPTER_OK; /* nothing to track */
	if (max < 1)
		return adapter_fail(err, ADAPTER_EINVAL, "", "no room for the update");
	out[0] = *u;
	*n = 1;
	return ADAPTER_OK;
}

/*
 * The object at path: 0 and *out when it is one, 1 when absent or null and
 * not required, ADAPTER_EINVAL naming the path otherwise.  adapter_get()
 * cannot tell "absent" from "a step on the way is not an object"; the string
 * getter can, and it never finds a string where adapter_get() found nothing.
 */
int adapter_get_object(const cJSON *root, const char *path, bool required, const cJSON **out,
		       proto_error_t *err)
{
	const cJSON *item = adapter_get(root, path);
	const char *unused;
	int rc;

	if (item == NULL) {
		rc = adapter_get_string(root, path, required, &unused, err);
		return rc < 0 ? rc : 1;
	}
	if (!cJSON_IsObject(item))
		return adapter_fail(err, ADAPTER_EINVAL, path, "must be an object");
	*out = item;
	return 0;
}
