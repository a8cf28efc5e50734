/*
 * Unit tests of gateway/config.c and of the settings table in
 * gateway/settings.c (one module, config.h): settings, the config file, the
 * key file, and the settings table against what documents it (the man
 * page, README, the example config: each test fails when they and the table
 * disagree).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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

/* redis+sentinel://IP:PORT[,...]/MASTER: numeric addresses with ports, a plain master name;
 * --check-config prints it back as it loads; another form afterwards forgets it. */
static void redis_sentinel_urls_are_understood_and_printed_back(void **state)
{
	static config_t cfg, again;
	char path[160];
	FILE *out;

	(void)state;
	config_defaults(&cfg);
	assert_int_equal(
	    config_parse_redis(
		"redis+sentinel://10.0.0.1:26379,[fd00::2]:26380,10.0.0.3:1/my-master.1", &cfg),
	    0);
	assert_int_equal(cfg.redis_sentinel.n, 3);
	assert_string_equal(cfg.redis_sentinel.host[1], "fd00::2");
	assert_int_equal(cfg.redis_sentinel.port[1], 26380);
	assert_string_equal(cfg.redis_sentinel.master, "my-master.1");
	assert_string_equal(cfg.redis_host, "");
	snprintf(path, sizeof(path), "%s/sentinel.conf", tmpdir);
	out = fopen(path, "w");
	assert_non_null(out);
	config_print(&cfg, out);
	fclose(out);
	config_defaults(&again);
	{
		char line[512];
		FILE *in = fopen(path, "r");
		bool seen = false;

		assert_non_null(in);
		while (fgets(line, sizeof(line), in))
			if (!strncmp(line, "redis = ", 8)) {
				line[strcspn(line, "\n")] = '\0';
				assert_string_equal(line, "redis = redis+sentinel://10.0.0.1:26379,"
							  "[fd00::2]:26380,10.0.0.3:1/my-master.1");
				assert_int_equal(config_parse_redis(line + 8, &again), 0);
				seen = true;
			}
		fclose(in);
		assert_true(seen);
	}
	assert_memory_equal(&again.redis_sentinel, &cfg.redis_sentinel, sizeof(cfg.redis_sentinel));
	/* Refused: a name (it would need resolving), no port, no master, a bad master, 9 of them.
	 */
	assert_int_not_equal(config_parse_redis("redis+sentinel://sentinel-1:26379/m", &cfg), 0);
	assert_int_not_equal(config_parse_redis("redis+sentinel://10.0.0.1/m", &cfg), 0);
	assert_int_not_equal(config_parse_redis("redis+sentinel://10.0.0.1:26379/", &cfg), 0);
	assert_int_not_equal(config_parse_redis("redis+sentinel://10.0.0.1:26379", &cfg), 0);
	assert_int_not_equal(config_parse_redis("redis+sentinel://10.0.0.1:26379/a b", &cfg), 0);
	assert_int_not_equal(config_parse_redis("redis+sentinel://10.0.0.1:26379,/m", &cfg), 0);
	assert_int_not_equal(
	    config_parse_redis("redis+sentinel://1.1.1.1:1,1.1.1.1:2,1.1.1.1:3,1.1.1.1:4,1.1.1.1:5,"
			       "1.1.1.1:6,1.1.1.1:7,1.1.1.1:8,1.1.1.1:9/m",
			       &cfg),
	    0);
	/* A plain redis:// afterwards is not in Sentinel mode any more. */
	assert_int_equal(config_parse_redis("redis://10.0.0.5:6380", &cfg), 0);
	assert_int_equal(cfg.redis_sentinel.n, 0);
}

static void redis_any_address_is_refused_with_or_without_a_port(void **state)
{
	config_t cfg;

	config_defaults(&cfg);
	assert_int_not_equal(config_parse_redis("redis://*", &cfg), 0);
	assert_int_not_equal(config_parse_redis("redis://*:6379", &cfg), 0);
	assert_int_not_equal(config_parse_redis("redis://0.0.0.0", &cfg), 0);
	assert_int_not_equal(config_parse_redis("redis://0.0.0.0:6379/0", &cfg), 0);
	assert_string_equal(cfg.redis_host, "127.0.0.1");
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
	const char *argv[] = {"trackgated", "--config", cpath,		 "--ingest-key-file",
			      kpath,	    "--listen", "127.0.0.1:7001"};

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
	    {"--body-limit", "12"},
	    {"--body-limit", "-5"},
	    {"--log-level", "loud"},
	    {"--ttl-active", "0"},
	    {"--redis", "nope"},
	    {"--max-connections", "x"},
	    {"--page-tile-url", "ftp://t.example/{z}/{x}/{y}.png"},
	    {"--page-tile-url", "https://t.example/{z}/{x}.png"},
	    {"--page-tile-url", "https://t.example/{z}/{x}/{y}.png\"onerror=\"x"},
	    {"--page-tile-url", "https://t.example/a b/{z}/{x}/{y}"},
	    {"--page-tile-url", "https:///{z}/{x}/{y}"},
	    {"--page-tile-url", "https://{s}.t.example/{z}/{x}/{y}.png"},
	    {"--page-tile-attribution", "line\nbreak"},
	    {"--send-buffer", "-1"},
	    {"--send-buffer", "17000000"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *argv[] = {"trackgated", "--ingest-key-file", kpath, bad[i][0],
				      bad[i][1]};

		assert_int_equal(load(&cfg, 5, argv), CONFIG_EINVAL);
	}
}

static void page_tile_settings_are_kept(void **state)
{
	config_t cfg;
	char kpath[128];

	(void)state;
	snprintf(kpath, sizeof(kpath), "%s", write_file("keys", "0123456789abcdef\n"));
	const char *argv[] = {"trackgated",
			      "--ingest-key-file",
			      kpath,
			      "--page-tile-url",
			      "https://tile.example.org:8443/osm/{z}/{x}/{y}.png?key=k",
			      "--page-tile-attribution",
			      "(c) OpenStreetMap contributors"};
	assert_int_equal(load(&cfg, 7, argv), CONFIG_OK);
	assert_string_equal(cfg.page_tile_url,
			    "https://tile.example.org:8443/osm/{z}/{x}/{y}.png?key=k");
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
	snprintf(cpath, sizeof(cpath), "%s",
		 write_file("conf", "[webhook.uber_direct]\n"
				    "secret = s3cr3t\n"));
	char arg[200];

	snprintf(arg, sizeof(arg), "onfleet=%s", spath);
	const char *argv[] = {
	    "trackgated", "--config", cpath, "--ingest-key-file", kpath, "--webhook-secret-file",
	    arg};

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
	const char *argv[] = {"trackgated", "--ingest-key-file", kpath, "--webhook-secret-file",
			      arg};

	assert_int_equal(load(&cfg, 5, argv), CONFIG_OK);
	assert_int_equal(config_webhook(&cfg, "onfleet")->secret_len, 1024);
	secret[1024] = '\0'; /* exactly 1024 bytes, no newline */
	snprintf(spath, sizeof(spath), "%s", write_file("big.secret", secret));
	assert_int_equal(load(&cfg, 5, argv), CONFIG_OK);
	secret[1024] = 'x'; /* 1025 bytes */
	snprintf(spath, sizeof(spath), "%s", write_file("big.secret", secret));
	assert_int_equal(load(&cfg, 5, argv), CONFIG_EINVAL);
}

/* One value, not the default, for each row of the settings table (tls files written below). */
static const char *const samples[][2] = {
    {"listen", "[::1]:7001"},
    {"metrics-listen", "127.0.0.1:9100"},
    {"redis", "redis://10.0.0.5:6380"},
    {"allowed-origins", "https://a.example, https://b.example"},
    {"page-tile-url", "https://tile.example/{z}/{x}/{y}.png"},
    {"page-tile-attribution", "(c) OpenStreetMap contributors # and others"},
    {"log-level", "debug"},
    {"log-format", "json"},
    {"workers", "3"},
    {"worker-stall-timeout", "7"},
    {"body-limit", "2048"},
    {"outq-limit", "8192"},
    {"send-buffer", "0"},
    {"slow-timeout", "31"},
    {"ttl-active", "600"},
    {"ttl-terminal", "60"},
    {"log-maxlen", "50"},
    {"courier-visible-from", "picked_up"},
    {"redis-timeout", "500"},
    {"max-connections", "1000"},
    {"max-per-client", "7"},
    {"ping-interval", "11"},
    {"pong-timeout", "12"},
    {"http-timeout", "13"},
    {"first-byte-timeout", "4"},
    {"max-pending-per-client", "9"},
    {"upgrade-rate", "5"},
    {"upgrade-burst", "6"},
    {"ingest-rate", "7"},
    {"ingest-burst", "8"},
    {"webhook-replay-window", "9"},
    {"proxy-header", "X-Forwarded-For"},
    {"trusted-proxies", "10.0.0.1, ::1"},
    {"drain-timeout", "3"},
};

static bool has_sample(const char *name)
{
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
		if (!strcmp(samples[i][0], name))
			return true;
	return false;
}

static void check_config_output_loads_back_to_the_same_config(void **state)
{
	static config_t first, again; /* large: not on the stack */
	char kpath[128], tls[2][128], hook[128], pem[128], hs[128], conf[8192], cpath[128],
	    printed[128], hook_arg[200], token_arg[200];
	size_t used = 0;
	FILE *out;

	(void)state;
	snprintf(kpath, sizeof(kpath), "%s", write_file("rt-keys", "0123456789abcdef\n"));
	snprintf(tls[0], sizeof(tls[0]), "%s", write_file("rt.crt", "cert\n"));
	snprintf(tls[1], sizeof(tls[1]), "%s", write_file("rt.key", "key\n"));
	snprintf(hook, sizeof(hook), "%s", write_file("rt-hook", "hook-secret\n"));
	snprintf(pem, sizeof(pem), "%s", write_file("rt.pem", "-----BEGIN PUBLIC KEY-----\n"));
	snprintf(hs, sizeof(hs), "%s", write_file("rt-hs", "0123456789abcdef0123456789abcdef\n"));
	/* Every setting that is not command-line only has a sample, in the file. */
	for (size_t i = 0; config_setting_info(i); i++) {
		const config_setting_info_t *in = config_setting_info(i);

		if (in->cli_only || !strcmp(in->name, "ingest-key-file") ||
		    !strncmp(in->name, "tls-", 4))
			continue;
		if (!has_sample(in->name))
			fail_msg("the round trip has no sample value of %s", in->name);
	}
	used += (size_t)snprintf(conf + used, sizeof(conf) - used,
				 "ingest-key-file = %s\ntls-cert = %s\ntls-key = %s\n", kpath,
				 tls[0], tls[1]);
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
		used += (size_t)snprintf(conf + used, sizeof(conf) - used, "%s = %s\n",
					 samples[i][0], samples[i][1]);
	snprintf(conf + used, sizeof(conf) - used,
		 "[webhook.stuart]\nsecret-file = %s\n[token-key.k2]\nalg = ES256\n"
		 "public-key-file = %s\n"
		 "[poll.uber_direct]\nbase-url = https://uber.test/api/\ntoken-url = "
		 "http://127.0.0.1:9/t\nclient-id = cid\ncustomer-id = cus\nscope = s.x\n"
		 "client-secret-file = %s\ninterval-ms = 1500\nbudget = 7\ntimeout-ms = 3000\n"
		 "connect-timeout-ms = 1000\nlease-ms = 9000\nca-file = %s\n"
		 "[poll.onfleet]\napi-key-file = %s\n",
		 hook, pem, hook, pem, hook);
	snprintf(cpath, sizeof(cpath), "%s", write_file("rt.conf", conf));
	/* The command-line-only ones on the command line. */
	snprintf(hook_arg, sizeof(hook_arg), "onfleet=%s", hook);
	snprintf(token_arg, sizeof(token_arg), "kc=HS256:%s", hs);
	const char *argv[] = {"trackgated", "--config",		cpath,	  "--webhook-secret-file",
			      hook_arg,	    "--token-key-file", token_arg};

	assert_int_equal(load(&first, 7, argv), CONFIG_OK);
	assert_int_equal(first.listen_port, 7001);
	assert_int_equal(first.n_webhooks, 2);
	assert_int_equal(first.token_keys.n, 2);
	assert_int_equal(first.n_polls, 2);
	/* A trailing '/' of base-url is dropped (paths start with one). */
	assert_string_equal(config_poll(&first, "uber_direct")->base_url, "https://uber.test/api");
	assert_int_equal(config_poll(&first, "onfleet")->budget, 18);

	snprintf(printed, sizeof(printed), "%s/printed.conf", tmpdir);
	out = fopen(printed, "w");
	assert_non_null(out);
	config_print(&first, out);
	fclose(out);
	const char *again_argv[] = {"trackgated", "--config", printed};

	assert_int_equal(load(&again, 3, again_argv), CONFIG_OK);
	/* Only the file it was read from differs. */
	memcpy(again.config_file, first.config_file, sizeof(again.config_file));
	assert_memory_equal(&again, &first, sizeof(first));
}

/* [poll.*]: the provider must be pollable, its keys its own, its credentials whole. */
static void poll_sections_are_checked_at_start_up(void **state)
{
	static const struct {
		const char *conf, *why;
	} bad[] = {
	    {"[poll.wolt_drive]\nbase-url = https://x.test\n", "a provider that is not polled"},
	    {"[poll.onfleet]\nclient-id = x\n", "another provider's key"},
	    {"[poll.onfleet]\nsecret = inline\n", "an inline secret"},
	    {"[poll.onfleet]\nbudget = 0\napi-key-file = K\n", "a budget of 0"},
	    {"[poll.onfleet]\ninterval-ms = 10\napi-key-file = K\n", "an interval under 100 ms"},
	    {"[poll.onfleet]\nbase-url = ftp://x.test\napi-key-file = K\n", "a non-http URL"},
	    {"[poll.onfleet]\ninterval-ms = 500\n", "no api-key-file"},
	    {"[poll.onfleet]\napi-key-file = /nonexistent/key\n", "an unreadable key file"},
	    {"[poll.onfleet]\napi-key-file = BADKEY\n", "a key Basic cannot carry"},
	    {"[poll.uber_direct]\nclient-id = c\nclient-secret-file = K\n", "no customer-id"},
	    {"[poll.uber_direct]\nclient-id = c d\ncustomer-id = x\nclient-secret-file = K\n",
	     "a space in an id"},
	    {"[poll.doordash_drive]\ndeveloper-id = d\nsigning-secret-file = K\n", "no key-id"},
	    {"[poll.onfleet]\ntimeout-ms = 500\nconnect-timeout-ms = 900\napi-key-file = K\n",
	     "a request timeout shorter than its connect timeout"},
	};
	config_t cfg;
	char kpath[128], key[128], badkey[128], conf[512], cpath[128];

	(void)state;
	snprintf(kpath, sizeof(kpath), "%s", write_file("poll-keys", "0123456789abcdef\n"));
	snprintf(key, sizeof(key), "%s", write_file("poll.key", "k3y\n"));
	snprintf(badkey, sizeof(badkey), "%s", write_file("poll-bad.key", "user:pass\n"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *at = bad[i].conf;
		size_t used = 0;

		/* K and BADKEY stand for the files written above. */
		while (*at && used < sizeof(conf) - 1) {
			if (!strncmp(at, "BADKEY", 6)) {
				used += (size_t)snprintf(conf + used, sizeof(conf) - used, "%s",
							 badkey);
				at += 6;
			} else if (*at == 'K' && at[1] == '\n') {
				used +=
				    (size_t)snprintf(conf + used, sizeof(conf) - used, "%s", key);
				at++;
			} else {
				conf[used++] = *at++;
			}
		}
		conf[used] = '\0';
		snprintf(cpath, sizeof(cpath), "%s", write_file("poll.conf", conf));
		const char *argv[] = {"trackgated", "--config", cpath, "--ingest-key-file", kpath};

		if (load(&cfg, 5, argv) != CONFIG_EINVAL)
			fail_msg("accepted %s:\n%s", bad[i].why, conf);
	}
	/* And the command line's form of the same keys. */
	char arg[200];

	snprintf(arg, sizeof(arg), "onfleet.api-key-file=%s", key);
	const char *argv[] = {"trackgated", "--ingest-key-file",      kpath, "--poll", arg,
			      "--poll",	    "onfleet.interval-ms=250"};

	assert_int_equal(load(&cfg, 7, argv), CONFIG_OK);
	assert_int_equal(cfg.n_polls, 1);
	assert_int_equal(config_poll(&cfg, "onfleet")->interval_ms, 250);
	assert_memory_equal(config_poll(&cfg, "onfleet")->secret, "k3y", 4);
	assert_null(config_poll(&cfg, "uber_direct"));
	const char *bad_arg[] = {"trackgated", "--ingest-key-file", kpath, "--poll", "onfleet"};

	assert_int_equal(load(&cfg, 5, bad_arg), CONFIG_EINVAL);
}

static void check_config_output_masks_inline_secrets_as_comments(void **state)
{
	config_t cfg;
	char kpath[128], cpath[128], buf[4096];
	FILE *out;
	size_t n;

	(void)state;
	snprintf(kpath, sizeof(kpath), "%s", write_file("ms-keys", "0123456789abcdef\n"));
	snprintf(cpath, sizeof(cpath), "%s",
		 write_file("ms.conf", "[webhook.stuart]\nsecret = inline-hook-secret\n"
				       "[token-key.k1]\nalg = HS256\n"
				       "secret = inline-token-secret-0123456789abcdef\n"));
	const char *argv[] = {"trackgated", "--config", cpath, "--ingest-key-file", kpath};

	assert_int_equal(load(&cfg, 5, argv), CONFIG_OK);
	out = fmemopen(buf, sizeof(buf) - 1, "w");
	assert_non_null(out);
	config_print(&cfg, out);
	n = (size_t)ftell(out);
	fclose(out);
	buf[n] = '\0';
	assert_null(strstr(buf, "inline-hook-secret"));
	assert_null(strstr(buf, "inline-token-secret"));
	assert_null(strstr(buf, "0123456789abcdef\n"));
	assert_non_null(strstr(buf, "[webhook.stuart]\n# secret = "));
	assert_non_null(strstr(buf, "[token-key.k1]\nalg = HS256\n# secret = "));
}

static void reload_applies_the_live_settings_and_names_the_others(void **state)
{
	static config_t live, fresh;
	char k1[128], k2[128], unapplied[256];

	(void)state;
	snprintf(k1, sizeof(k1), "%s", write_file("rl-keys-1", "first-key-0123456789\n"));
	snprintf(k2, sizeof(k2), "%s", write_file("rl-keys-2", "second-key-012345678\n"));
	const char *before[] = {"trackgated",	    "--ingest-key-file", k1,
				"--listen",	    "127.0.0.1:7000",	 "--allowed-origins",
				"https://a.example"};
	const char *after[] = {"trackgated",	    "--ingest-key-file", k2,
			       "--listen",	    "127.0.0.1:7001",	 "--allowed-origins",
			       "https://b.example", "--body-limit",	 "2048"};

	assert_int_equal(load(&live, 7, before), CONFIG_OK);
	assert_int_equal(load(&fresh, 9, after), CONFIG_OK);
	config_apply_reload(&live, &fresh, unapplied, sizeof(unapplied));
	assert_string_equal(unapplied, "listen,body-limit");
	assert_true(config_ingest_key_ok(&live, "second-key-012345678", 20));
	assert_false(config_ingest_key_ok(&live, "first-key-0123456789", 20));
	assert_true(config_origin_ok(&live, "https://b.example"));
	assert_false(config_origin_ok(&live, "https://a.example"));
	assert_int_equal(live.listen_port, 7000);
	assert_int_equal(live.body_limit, 65536);
	/* The same again: nothing waits for a restart. */
	assert_int_equal(load(&fresh, 7, before), CONFIG_OK);
	assert_int_equal(load(&live, 7, before), CONFIG_OK);
	config_apply_reload(&live, &fresh, unapplied, sizeof(unapplied));
	assert_string_equal(unapplied, "");
}

static void defaults_come_from_the_table(void **state)
{
	config_t cfg;

	(void)state;
	config_defaults(&cfg);
	assert_string_equal(cfg.listen_host, "127.0.0.1");
	assert_int_equal(cfg.listen_port, 8080);
	assert_string_equal(cfg.redis_host, "127.0.0.1");
	assert_int_equal(cfg.redis_port, 6379);
	assert_int_equal(cfg.log_level, LOG_INFO);
	assert_int_equal(cfg.body_limit, 65536);
	assert_int_equal(cfg.ingest_rate, 5000);
	assert_int_equal(cfg.metrics_port, 0);
	assert_string_equal(cfg.courier_visible_from, "courier_assigned");
	for (size_t i = 0; config_setting_info(i); i++)
		if (config_setting_info(i)->cli_only)
			assert_null(config_setting_info(i)->def);
}

/* The whole of a documentation file next to the example config (path relative to deploy/). */
static char *read_doc(const char *rel)
{
	char path[512], *buf, *slash;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s", TG_EXAMPLE_CONFIG);
	slash = strrchr(path, '/');
	assert_non_null(slash);
	snprintf(slash + 1, sizeof(path) - (size_t)(slash + 1 - path), "%s", rel);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot read %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* The settings named in a document, as a set the table is compared with. */
typedef struct names {
	char name[64][48];
	size_t n;
} names_t;

/* Adds word (roff \- as -, leading --, trailing punctuation dropped) if it names a row. */
static void names_add(names_t *ns, const char *word, size_t len, bool any)
{
	char w[48];
	size_t n = 0;

	for (size_t i = 0; i < len && n < sizeof(w) - 1; i++)
		if (!(word[i] == '\\' && i + 1 < len && word[i + 1] == '-'))
			w[n++] = word[i];
	w[n] = '\0';
	while (n && strchr(".,;:)\"", w[n - 1]))
		w[--n] = '\0';
	const char *name = !strncmp(w, "--", 2) ? w + 2 : w;
	bool known = false;

	for (size_t i = 0; config_setting_info(i); i++)
		known |= !strcmp(config_setting_info(i)->name, name);
	if (!known && !any)
		return;
	for (size_t i = 0; i < ns->n; i++)
		if (!strcmp(ns->name[i], name))
			return;
	assert_true(ns->n < 64);
	snprintf(ns->name[ns->n++], sizeof(ns->name[0]), "%s", name);
}

static bool names_has(const names_t *ns, const char *name)
{
	for (size_t i = 0; i < ns->n; i++)
		if (!strcmp(ns->name[i], name))
			return true;
	return false;
}

/* Fails unless ns holds exactly the rows for which want() is true. */
static void names_are_rows(const names_t *ns, bool (*want)(const config_setting_info_t *),
			   const char *what)
{
	for (size_t i = 0; config_setting_info(i); i++) {
		const config_setting_info_t *in = config_setting_info(i);

		if (want(in) && !names_has(ns, in->name))
			fail_msg("%s: %s is missing", what, in->name);
		if (!want(in) && names_has(ns, in->name))
			fail_msg("%s: %s is there but should not be", what, in->name);
	}
	for (size_t i = 0; i < ns->n; i++) {
		bool row = false;

		for (size_t r = 0; config_setting_info(r); r++)
			row |= !strcmp(config_setting_info(r)->name, ns->name[i]);
		if (!row)
			fail_msg("%s: %s is not a setting of the table", what, ns->name[i]);
	}
}

static bool every_row(const config_setting_info_t *in)
{
	(void)in;
	return true;
}

static bool reloaded(const config_setting_info_t *in)
{
	return in->reload == CONFIG_RELOAD_LIVE || in->reload == CONFIG_RELOAD_FILES;
}

static bool in_the_file(const config_setting_info_t *in)
{
	return !in->cli_only;
}

/* The part of text from the line start, up to (not with) the first of the ends after it. */
static char *section(char *text, const char *start, const char *const *ends)
{
	char *s = strstr(text, start), *e;

	if (!s)
		fail_msg("no '%s'", start);
	s += strlen(start);
	for (size_t i = 0; ends[i]; i++)
		if ((e = strstr(s, ends[i])))
			*e = '\0';
	return s;
}

/* The man page's OPTIONS: a .TP entry per row of the table, and no other. */
static void man_page_documents_every_setting_of_the_table(void **state)
{
	char *page = read_doc("trackgated.8"), *line, *save = NULL;
	const char *const ends[] = {"\n.SH ", NULL};
	bool tp = false;
	names_t ns = {0};

	(void)state;
	for (line = strtok_r(section(page, "\n.SH OPTIONS\n", ends), "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		const char *arg = !strncmp(line, ".BI ", 4)  ? line + 4
				  : !strncmp(line, ".B ", 3) ? line + 3
							     : NULL;

		if (tp && arg && !strncmp(arg, "\\-\\-", 4))
			names_add(&ns, arg, strcspn(arg, " \""), true);
		tp = !strcmp(line, ".TP");
	}
	names_are_rows(&ns, every_row, "trackgated.8 OPTIONS");
	free(page);
}

/* The man page's SIGHUP entry names exactly the rows whose reload is live or files. */
static void man_page_sighup_names_what_the_table_reloads(void **state)
{
	char *page = read_doc("trackgated.8"), *line, *save = NULL;
	const char *const ends[] = {"\n.TP", "\n.SH ", NULL};
	names_t ns = {0};

	(void)state;
	for (line = strtok_r(section(page, "\n.B SIGHUP\n", ends), "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		const char *arg = !strncmp(line, ".BR ", 4) || !strncmp(line, ".BI ", 4) ? line + 4
				  : !strncmp(line, ".B ", 3)				 ? line + 3
											 : NULL;

		if (arg)
			names_add(&ns, arg, strcspn(arg, " "), false);
	}
	names_are_rows(&ns, reloaded, "trackgated.8 SIGHUP");
	free(page);
}

/* README's settings table has a row per setting, and its SIGHUP paragraph names what reloads. */
static void readme_settings_and_sighup_agree_with_the_table(void **state)
{
	char *readme = read_doc("../README.md"), *copy = strdup(readme), *line, *save = NULL;
	const char *const table_ends[] = {"\n## ", NULL}, *const para_ends[] = {"\n\n", NULL};
	names_t table = {0}, hup = {0};

	(void)state;
	for (line = strtok_r(section(readme, "\n## Settings\n", table_ends), "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *cell = line + 1, *bar = strchr(cell, '|');

		if (strncmp(line, "| `", 3) || !bar)
			continue;
		*bar = '\0';
		for (char *tick = strchr(cell, '`'); tick; tick = strchr(tick, '`')) {
			char *close = strchr(tick + 1, '`');

			if (!close)
				break;
			names_add(&table, tick + 1, (size_t)(close - tick - 1), true);
			tick = close + 1;
		}
	}
	names_are_rows(&table, every_row, "README Settings table");
	char *para = section(copy, "\n**SIGHUP**", para_ends);

	for (char *tick = strchr(para, '`'); tick; tick = strchr(tick, '`')) {
		char *close = strchr(tick + 1, '`');

		if (!close)
			break;
		names_add(&hup, tick + 1, (size_t)(close - tick - 1), false);
		tick = close + 1;
	}
	names_are_rows(&hup, reloaded, "README **SIGHUP** paragraph");
	free(copy);
	free(readme);
}

/* The example config shows every setting of the file, set or commented out. */
static void example_config_shows_every_setting_of_the_file(void **state)
{
	char *example = read_doc("trackgated.conf.example"), *line, *save = NULL;
	names_t ns = {0};
	bool in_section = false;

	(void)state;
	for (line = strtok_r(example, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *name = line + (line[0] == '#');
		size_t n = strspn(name, "abcdefghijklmnopqrstuvwxyz-");

		/* The keys after a [section] (set or commented out) are the section's, not
		 * settings: sections come after every plain setting. */
		in_section |= name[0] == '[';
		if (n && !in_section && !strncmp(name + n, " = ", 3))
			names_add(&ns, name, n, true);
	}
	names_are_rows(&ns, in_the_file, "trackgated.conf.example");
	free(example);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(listen_accepts_host_port_and_wildcards),
	    cmocka_unit_test(listen_rejects_bad_ports),
	    cmocka_unit_test(redis_url_forms_are_understood),
	    cmocka_unit_test(redis_any_address_is_refused_with_or_without_a_port),
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
	    cmocka_unit_test(check_config_output_loads_back_to_the_same_config),
	    cmocka_unit_test(poll_sections_are_checked_at_start_up),
	    cmocka_unit_test(redis_sentinel_urls_are_understood_and_printed_back),
	    cmocka_unit_test(check_config_output_masks_inline_secrets_as_comments),
	    cmocka_unit_test(reload_applies_the_live_settings_and_names_the_others),
	    cmocka_unit_test(defaults_come_from_the_table),
	    cmocka_unit_test(man_page_documents_every_setting_of_the_table),
	    cmocka_unit_test(man_page_sighup_names_what_the_table_reloads),
	    cmocka_unit_test(readme_settings_and_sighup_agree_with_the_table),
	    cmocka_unit_test(example_config_shows_every_setting_of_the_file),
	};

	return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
