/*
 * query.h - the arguments of a request's query string, looked up by name.
 *
 * Every argument the gateway reads (token, since, check) is found wherever
 * it stands in the query and however long the others are: the query is
 * split once into name/value pairs that point into the caller's buffer, and
 * a lookup looks at all of them.  A name given twice is an error the caller
 * refuses (4400 / 400), so no reader can take the first where another takes
 * the last.  Pure: no lws, no allocation; unit-tested and fuzzed on its own.
 */
#ifndef TRACKGATE_QUERY_H
#define TRACKGATE_QUERY_H

#include <stdbool.h>

#include <stddef.h>

#define QUERY_ARGS_MAX 32 /* more arguments than this make the query invalid */

enum {
	QUERY_OK = 0,
	QUERY_ABSENT = -1,   /* the name is not in the query */
	QUERY_REPEATED = -2, /* the name is there more than once */
	QUERY_TOO_MANY = -3, /* more than QUERY_ARGS_MAX arguments */
};

typedef struct query_arg {
	const char *name; /* points into the caller's buffer, not NUL-terminated */
	const char *value;
	size_t name_len;
	size_t value_len; /* 0 for "name=" and for a bare "name" */
} query_arg_t;

typedef struct query {
	query_arg_t arg[QUERY_ARGS_MAX];
	unsigned n;
	int error; /* QUERY_TOO_MANY once an argument did not fit, else QUERY_OK */
} query_t;

/* An empty query. */
void query_init(query_t *q);
/*
 * Adds one argument, "name=value" or a bare "name" (len bytes at arg, which
 * must outlive q).  An empty argument (from "a=1&&b=2") is skipped.
 */
void query_add(query_t *q, const char *arg, size_t len);
/* Splits a raw query "a=1&b=2" (no '?', no decoding) into q. */
void query_parse(query_t *q, const char *qs, size_t len);
/*
 * The value of name: QUERY_OK with *value and *len set, QUERY_ABSENT,
 * QUERY_REPEATED, or QUERY_TOO_MANY when the query was invalid as a whole
 * (an argument past the limit might have been this one).
 */
int query_get(const query_t *q, const char *name, const char **value, size_t *len);

/*
 * query_get for an argument that may be absent (*value NULL then): false,
 * with *rc, when the query cannot be used.
 */
bool query_arg(const query_t *q, const char *name, const char **value, size_t *len, int *rc);

/*
 * Why an argument cannot be used (rc from query_get or query_arg), as a
 * static sentence for a close reason or an error body.
 */
const char *query_problem(int rc, const char *name);

#endif
