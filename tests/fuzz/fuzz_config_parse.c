/*
 * fuzz_config_parse.c - the address parsers of gateway/settings.c:
 * config_parse_listen (listen, metrics-listen and the HOST:PORT part of
 * redis) and config_parse_redis, on any string.
 *
 * Input: one byte choosing the host buffer's size for config_parse_listen
 * (1..256: the buffer is malloc'd to exactly that size, so ASan sees a
 * write past it), then the value; the value is cut at its first NUL, as a
 * config file line or argv string would be.  Checks that what is accepted
 * is well-formed: a terminated host that fits, a port in 1..65535, a unix
 * socket path that is absolute, a Redis host that is not empty.
 *
 * Then the same value as the setting of the table's row data[0] (rows of
 * the file only): when config_set accepts it, --check-config's line for it
 * must be accepted back and print the same again (the output of
 * --check-config loads back to the same configuration).  Values a config
 * file line cannot carry (a line break, spaces around it, which libinih
 * trims) are skipped.
 */
#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* cfg's printed line of setting name (after "name = "), malloc'd, or NULL. */
static char *config_line(const config_t *cfg, const char *name)
{
	char *buf = NULL, *line, *value = NULL;
	size_t len = 0, nlen = strlen(name);
	FILE *out = open_memstream(&buf, &len);

	FUZZ_CHECK(out != NULL, "out of memory");
	config_print(cfg, out);
	fclose(out);
	for (line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
		if (!strncmp(line, name, nlen) && !strncmp(line + nlen, " = ", 3)) {
			value = strndup(line + nlen + 3, strcspn(line + nlen + 3, "\n"));
			break;
		}
	free(buf);
	return value;
}

static void config_round_trip(uint8_t pick, const char *value)
{
	static config_t cfg, again;
	size_t n = 0, len = strlen(value);
	const config_setting_info_t *row;
	char *printed, *reprinted;

	while (config_setting_info(n))
		n++;
	row = config_setting_info(pick % n);
	if (row->cli_only || strpbrk(value, "\r\n") ||
	    (len && (strchr(" \t", value[0]) || strchr(" \t", value[len - 1]))))
		return;
	config_defaults(&cfg);
	if (config_set(&cfg, row->name, value, "fuzz") != CONFIG_OK)
		return;
	printed = config_line(&cfg, row->name);
	if (!printed)
		return; /* an empty value: not printed, and the default is empty too */
	config_defaults(&again);
	FUZZ_CHECK(config_set(&again, row->name, printed, "fuzz") == CONFIG_OK,
		   "%s = '%s' printed as '%s', which is refused", row->name, value, printed);
	reprinted = config_line(&again, row->name);
	FUZZ_CHECK(reprinted && !strcmp(printed, reprinted), "%s = '%s': printed '%s', then '%s'",
		   row->name, value, printed, reprinted ? reprinted : "(nothing)");
	free(printed);
	free(reprinted);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static config_t cfg; /* large: not on the stack */
	size_t host_len;
	char *value, *host;
	int port = -1, rc;

	if (size == 0)
		return 0;
	host_len = (size_t)data[0] + 1;
	value = fuzz_strndup(data + 1, size - 1);

	host = malloc(host_len);
	FUZZ_CHECK(host != NULL, "out of memory");
	rc = config_parse_listen(value, host, host_len, &port);
	FUZZ_CHECK(rc == 0 || rc == -1, "config_parse_listen: result %d", rc);
	if (rc == 0) {
		FUZZ_CHECK(memchr(host, '\0', host_len) != NULL, "'%s': an unterminated host",
			   value);
		FUZZ_CHECK(port >= 1 && port <= 65535, "'%s': port %d", value, port);
		FUZZ_CHECK(strcmp(host, "*") != 0 && strcmp(host, "0.0.0.0") != 0,
			   "'%s': the any-address was not made \"\"", value);
	}
	free(host);

	config_defaults(&cfg);
	rc = config_parse_redis(value, &cfg);
	FUZZ_CHECK(rc == 0 || rc == -1, "config_parse_redis: result %d", rc);
	FUZZ_CHECK(FUZZ_TERMINATED(cfg.redis_host) && FUZZ_TERMINATED(cfg.redis_unix),
		   "'%s': an unterminated redis setting", value);
	if (rc == 0) {
		if (cfg.redis_unix[0] != '\0') {
			FUZZ_CHECK(cfg.redis_unix[0] == '/', "'%s': a relative unix path", value);
		} else {
			FUZZ_CHECK(cfg.redis_host[0] != '\0', "'%s': an empty redis host", value);
			FUZZ_CHECK(cfg.redis_port >= 1 && cfg.redis_port <= 65535,
				   "'%s': redis port %d", value, cfg.redis_port);
		}
	}
	config_round_trip(data[0], value);
	free(value);
	return 0;
}
