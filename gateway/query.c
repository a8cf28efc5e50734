#include "query.h"

#include <string.h>

void query_init(query_t *q)
{
	q->n = 0;
	q->error = QUERY_OK;
}

void query_add(query_t *q, const char *arg, size_t len)
{
	const char *eq;
	query_arg_t *a;

	if (!len)
		return;
	if (q->n == QUERY_ARGS_MAX) {
		q->error = QUERY_TOO_MANY;
		return;
	}
	a = &q->arg[q->n++];
	eq = memchr(arg, '=', len);
	a->name = arg;
	a->name_len = eq ? (size_t)(eq - arg) : len;
	a->value = eq ? eq + 1 : arg + len;
	a->value_len = eq ? len - a->name_len - 1 : 0;
}

void query_parse(query_t *q, const char *qs, size_t len)
{
	const char *end = qs + len;

	query_init(q);
	while (qs < end) {
		const char *amp = memchr(qs, '&', (size_t)(end - qs));
		const char *stop = amp ? amp : end;

		query_add(q, qs, (size_t)(stop - qs));
		qs = amp ? amp + 1 : end;
	}
}

int query_get(const query_t *q, const char *name, const char **value, size_t *len)
{
	size_t nl = strlen(name);
	const query_arg_t *found = NULL;

	if (q->error)
		return q->error;
	for (unsigned i = 0; i < q->n; i++) {
		const query_arg_t *a = &q->arg[i];

		if (a->name_len != nl || memcmp(a->name, name, nl) != 0)
			continue;
		if (found)
			return QUERY_REPEATED;
		found = a;
	}
	if (!found)
		return QUERY_ABSENT;
	*value = found->value;
	*len = found->value_len;
	return QUERY_OK;
}

bool query_arg(const query_t *q, const char *name, const char **value, size_t *len, int *rc)
{
	*value = NULL;
	*len = 0;
	*rc = query_get(q, name, value, len);
	return *rc == QUERY_OK || *rc == QUERY_ABSENT;
}

const char *query_problem(int rc, const char *name)
{
	if (rc == QUERY_TOO_MANY)
		return "the query has too many arguments";
	if (!strcmp(name, "token"))
		return "the query gives token more than once";
	if (!strcmp(name, "since"))
		return "the query gives since more than once";
	if (!strcmp(name, "check"))
		return "the query gives check more than once";
	return "the query gives an argument more than once";
}
