/* Unit tests of gateway/config.c: settings, the config file, the key file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static char tmpdir[64];

static int make_dir(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tg-config-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int remove_dir(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *write_file(const char *name, const char *text)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static int load(config_t *cfg, int argc, const char **argv)
{
	config_defaults(cfg);
	return config_load(cfg, argc, (char **)argv);
}

static void listen_accepts_host_port_and_wildcards(void **state)
{
	char host[64];
	int port;

	assert_int_equal(config_parse_listen("127.0.0.1:8080", host, sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 8080);
	assert_int_equal(config_parse_listen("*:9000", host, sizeof(host), &port), 0);
	assert_string_equal(host, "");
	assert_int_equal(config_parse_listen("[::1]:80", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
}

static void listen_rejects_bad_ports(void **state)
{
	char host[64];
	int port;

	assert_int_not_equal(config_parse_listen("127.0.0.1", host, sizeof(host), &port), 0);
	assert_int_not_equal(config_parse_listen("h:0", host, sizeof(host), &port), 0);
	assert_int_not_equal(config_parse_listen("h:65536", host, sizeof(host), &port), 0);
	assert_int_not_equal(config_parse_listen("h:80x", host, sizeof(host), &port), 0);
	assert_int_not_equal(config_parse_listen("h:-1", host, sizeof(host), &port), 0);
}

static void redis_url_forms_are_understood(void **state)
{
	config_t cfg;

	config_defaults(&cfg);
	assert_int_equal(config_parse_redis("redis://10.0.0.5:6380", &cfg), 0);
	assert_string_equal(cfg.redis_host, "10.0.0.5");
	assert_int_equal(cfg.redis_port, 6380);
	assert_int_equal(config_parse_redis("redis://cache", &cfg), 0);
	assert_int_equal(cfg.redis_port, 6379);
	assert_int_equal(config_parse_redis("unix:///run/redis.sock", &cfg), 0);
	assert_string_equal(cfg.redis_unix, "/run/redis.sock");
	assert_int_not_equal(config_parse_redis("unix://relative.sock", &cfg), 0);
	assert_int_not_equal(config_parse_redis("http://x", &cfg), 0);
	assert_int_not_equal(config_parse_redis("redis://x/3", &cfg), 0);
	assert_int_not_equal(config_parse_redis("redis://user:pw@x", &cfg), 0);
}

static void courier_visible_from_takes_a_status_before_the_end(void **state)
{
	config_t cfg;
	const char *keys = write_file("keys-cvf", "0123456789abcdef\n");
	char kpath[128];

	snprintf(kpath, sizeof(kpath), "%s", keys);
	const char *dflt[] = {"trackgated", "--ingest-key-file", kpath};
	assert_int_equal(load(&cfg, 3, dflt), CONFIG_OK);
	assert_string_equal(cfg.courier_visible_from, "courier_assigned");
	const char *created[] = {"trackgated", "--ingest-key-file", kpath, "--courier-visible-from",
				 "created"};
	assert_int_equal(load(&cfg, 5, created), CONFIG_OK);
	assert_string_equal(cfg.courier_visible_from, "created");
	const char *terminal[] = {"trackgated", "--ingest-key-file", kpath,
				  "--courier-visible-from", "delivered"};
	assert_int_not_equal(load(&cfg, 5, terminal), CONFIG_OK);
	const char *unknown[] = {"trackgated", "--ingest-key-file", kpath, "--courier-visible-from",
				 "assigned"};
	assert_int_not_equal(load(&cfg, 5, unknown), CONFIG_OK);
}

static void command_line_wins_over_the_file(void **state)
{
	config_t cfg;
	const char *keys = write_file("keys", "# comment\n\n0123456789abcdef\n");
	char kpath[128];

	snprintf(kpath, sizeof(kpath), "%s", keys);
	const char *conf = write_file("conf", "[trackgated]\nlisten = 0.0.0.0:7000\n"
					      "log_level = debug\nbody-limit = 2048\n"
					      "send-buffer = 0\n");
	char cpath[128];

	snprintf(cpath, sizeof(cpath), "%s", conf);
	const char *argv[] = {"trackgated", "--config", cpath, "--ingest-key-file", kpath,
			      "--listen", "127.0.0.1:7001"};

	assert_int_equal(load(&cfg, 7, argv), CONFIG_OK);
	assert_int_equal(cfg.listen_port, 7001);
	assert_int_equal(cfg.log_level, LOG_DEBUG);
	assert_int_equal(cfg.body_limit, 2048);
	assert_int_equal(cfg.send_buffer, 0); /* 0: the kernel's autotuning */
	assert_int_equal(cfg.n_ingest_keys, 1);
}

static void unknown_setting_in_file_is_an_error(void **state)
{
	config_t cfg;
	char kpath[128], cpath[128];

	snprintf(kpath, sizeof(kpath), "%s", write_file("keys", "0123456789abcdef\n"));
	snprintf(cpath, sizeof(cpath), "%s", write_file("conf", "lisen = 1.2.3.4:5\n"));
	const char *argv[] = {"trackgated", "--config", cpath, "--ingest-key-file", kpath};

	assert_int_equal(load(&cfg, 5, argv), CONFIG_EINVAL);
}

static void bad_values_are_errors(void **state)
{
	config_t cfg;
	char kpath[128];

	snprintf(kpath, sizeof(kpath), "%s", write_file("keys", "0123456789abcdef\n"));
	const char *bad[][2] = {
		{"--body-limit", "12"},   {"--body-limit", "-5"}, {"--log-level", "loud"},
		{"--ttl-active", "0"},    {"--redis", "nope"},    {"--max-connections", "x"},
		{"--page-tile-url", "ftp://t.example/{z}/{x}/{y}.png"},
		{"--page-tile-url", "https://t.example/{z}/{x}.png"},
		{"--page-tile-url", "https://t.example/{z}/{x}/{y}.png\"onerror=\"x"},
		{"--page-tile-url", "https://t.example/a b/{z}/{x}/{y}"},
		{"--page-tile-url", "https:///{z}/{x}/{y}"},
		{"--page-tile-url", "https://{s}.t.example/{z}/{x}/{y}.png"},
		{"--page-tile-attribution", "line\nbreak"},
		{"--send-buffer", "-1"},  {"--send-buffer", "17000000"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *argv[] = {"trackgated", "--ingest-key-file", kpath, bad[i][0], bad[i][1]};

		assert_int_equal(load(&cfg, 5, argv), CONFIG_EINVAL);
	}
}

static void page_tile_settings_are_kept(void **state)
{
	config_t cfg;
	char kpath[128];

	(void)state;
	snprintf(kpath, sizeof(kpath), "%s", write_file("keys", "0123456789abcdef\n"));
	const char *argv[] = {"trackgated", "--ingest-key-file", kpath, "--page-tile-url",
			      "https://tile.example.org:8443/osm/{z}/{x}/{y}.png?key=k",
			      "--page-tile-attribution", "(c) OpenStreetMap contributors"};
	assert_int_equal(load(&cfg, 7, argv), CONFIG_OK);
	assert_string_equal(cfg.page_tile_url, "https://tile.example.org:8443/osm/{z}/{x}/{y}.png?key=k");
	assert_string_equal(cfg.page_tile_attribution, "(c) OpenStreetMap contributors");
}

static void key_file_is_required_and_checked(void **state)
{
	config_t cfg;
	char kpath[128];
	const char *none[] = {"trackgated"};

	assert_int_equal(load(&cfg, 1, none), CONFIG_EINVAL);
	snprintf(kpath, sizeof(kpath), "%s", write_file("short", "tooshort\n"));
	const char *argv[] = {"trackgated", "--ingest-key-file", kpath};

	assert_int_equal(load(&cfg, 3, argv), CONFIG_EINVAL);
	snprintf(kpath, sizeof(kpath), "%s", write_file("empty", "# nothing\n"));
	assert_int_equal(load(&cfg, 3, argv), CONFIG_EINVAL);
	snprintf(kpath, sizeof(kpath), "%s/missing", tmpdir);
	assert_int_equal(load(&cfg, 3, argv), CONFIG_EINVAL);
}

static void ingest_key_compare_matches_exactly(void **state)
{
	config_t cfg;
	char kpath[128];

	snprintf(kpath, sizeof(kpath), "%s",
		 write_file("keys", "0123456789abcdef\nsecond-key-000000000\n"));
	const char *argv[] = {"trackgated", "--ingest-key-file", kpath};

	assert_int_equal(load(&cfg, 3, argv), CONFIG_OK);
	assert_true(config_ingest_key_ok(&cfg, "0123456789abcdef", 16));
	assert_true(config_ingest_key_ok(&cfg, "second-key-000000000", 20));
	assert_false(config_ingest_key_ok(&cfg, "0123456789abcde", 15));
	assert_false(config_ingest_key_ok(&cfg, "0123456789abcdefg", 17));
	assert_false(config_ingest_key_ok(&cfg, "", 0));
}

static void example_config_in_deploy_loads(void **state)
{
	config_t cfg;
	char kpath[128];

	snprintf(kpath, sizeof(kpath), "%s", write_file("keys", "0123456789abcdef\n"));
	const char *argv[] = {"trackgated", "--config", TG_EXAMPLE_CONFIG, "--ingest-key-file",
			      kpath};

	assert_int_equal(load(&cfg, 5, argv), CONFIG_OK);
	assert_int_equal(cfg.listen_port, 8080);
	assert_int_equal(cfg.workers, 1);
	assert_int_equal(cfg.send_buffer, 65536);
}

static void webhook_secrets_come_from_sections_and_files(void **state)
{
	config_t cfg;
	char kpath[128], spath[128], cpath[256];

	snprintf(kpath, sizeof(kpath), "%s", write_file("keys", "0123456789abcdef\n"));
	snprintf(spath, sizeof(spath), "%s", write_file("onfleet.secret", "a1b2c3\n"));
	snprintf(cpath, sizeof(cpath), "%s", write_file("conf", "[webhook.uber_direct]\n"
								 "secret = s3cr3t\n"));
	char arg[200];

	snprintf(arg, sizeof(arg), "onfleet=%s", spath);
	const char *argv[] = {"trackgated", "--config", cpath, "--ingest-key-file", kpath,
			      "--webhook-secret-file", arg};

	assert_int_equal(load(&cfg, 7, argv), CONFIG_OK);
	assert_int_equal(cfg.n_webhooks, 2);
	assert_memory_equal(config_webhook(&cfg, "uber_direct")->secret, "s3cr3t", 6);
	/* the file's trailing newline is not part of the secret */
	assert_int_equal(config_webhook(&cfg, "onfleet")->secret_len, 6);
	assert_null(config_webhook(&cfg, "stuart"));
}

static void unknown_webhook_provider_is_an_error(void **state)
{
	config_t cfg;
	char kpath[128], cpath[256];

	snprintf(kpath, sizeof(kpath), "%s", write_file("keys", "0123456789abcdef\n"));
	snprintf(cpath, sizeof(cpath), "%s", write_file("conf", "[webhook.ubr]\nsecret = x\n"));
	const char *argv[] = {"trackgated", "--config", cpath, "--ingest-key-file", kpath};

	assert_int_equal(load(&cfg, 5, argv), CONFIG_EINVAL);
}

static void webhook_secret_file_of_the_largest_size_loads_with_or_without_newline(void **state)
{
	config_t cfg;
	char kpath[128], spath[128], arg[200], secret[1026];

	snprintf(kpath, sizeof(kpath), "%s", write_file("keys", "0123456789abcdef\n"));
	memset(secret, 'x', 1024);
	secret[1024] = '\n';
	secret[1025] = '\0';
	snprintf(spath, sizeof(spath), "%s", write_file("big.secret", secret));
	snprintf(arg, sizeof(arg), "onfleet=%s", spath);
	const char *argv[] = {"trackgated", "--ingest-key-file", kpath, "--webhook-secret-file", arg};

	assert_int_equal(load(&cfg, 5, argv), CONFIG_OK);
	assert_int_equal(config_webhook(&cfg, "onfleet")->secret_len, 1024);
	secret[1024] = '\0'; /* exactly 1024 bytes, no newline */
	snprintf(spath, sizeof(spath), "%s", write_file("big.secret", secret));
	assert_int_equal(load(&cfg, 5, argv), CONFIG_OK);
	secret[1024] = 'x'; /* 1025 bytes */
	snprintf(spath, sizeof(spath), "%s", write_file("big.secret", secret));
	assert_int_equal(load(&cfg, 5, argv), CONFIG_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(listen_accepts_host_port_and_wildcards),
		cmocka_unit_test(listen_rejects_bad_ports),
		cmocka_unit_test(redis_url_forms_are_understood),
		cmocka_unit_test(courier_visible_from_takes_a_status_before_the_end),
		cmocka_unit_test(command_line_wins_over_the_file),
		cmocka_unit_test(unknown_setting_in_file_is_an_error),
		cmocka_unit_test(bad_values_are_errors),
		cmocka_unit_test(page_tile_settings_are_kept),
		cmocka_unit_test(key_file_is_required_and_checked),
		cmocka_unit_test(ingest_key_compare_matches_exactly),
		cmocka_unit_test(example_config_in_deploy_loads),
		cmocka_unit_test(webhook_secrets_come_from_sections_and_files),
		cmocka_unit_test(unknown_webhook_provider_is_an_error),
		cmocka_unit_test(webhook_secret_file_of_the_largest_size_loads_with_or_without_newline),
	};

	return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
