/*
 * trackgated - trackgate's order-tracking websocket gateway.
 *
 * Start-up reads the configuration and the key file (the only synchronous
 * file I/O), then everything runs on one uv loop until SIGINT/SIGTERM.
 * With --workers N > 1 this process becomes a supervisor (workers.h) and N
 * forked copies of it serve, each on its own loop, sharing the port.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "config.h"
#include "gateway.h"
#include "log.h"
#include "workers.h"

/* One serving process: its loop and gateway, from start to exit status. */
static int main_argc;
static char **main_argv;

static int main_serve(const config_t *cfg)
{
	static gateway_t g;
	uv_loop_t loop;
	int rc;

	/* Seeded here, after any fork, so that workers do not share a sequence. */
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	if (uv_loop_init(&loop)) {
		log_event(LOG_ERROR, "loop_init_failed", "%s", "");
		return 1;
	}
	rc = gateway_start(&g, &loop, cfg);
	/* SIGHUP re-reads the same command line and config file. */
	g.argc = main_argc;
	g.argv = main_argv;
	if (rc == 0) {
		workers_release_signals(); /* the loop handles SIGTERM/SIGINT from here on */
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	if (gateway_teardown(&g) != 0)
		rc = 1;
	log_event(LOG_INFO, "exited", "status=%d", rc ? 1 : 0);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	static config_t cfg;
	int rc;

	main_argc = argc;
	main_argv = argv;
	config_defaults(&cfg);
	rc = config_load(&cfg, argc, argv);
	if (rc == CONFIG_EXIT_OK)
		return 0;
	if (rc != CONFIG_OK) {
		if (cfg.check_only)
			printf("# configuration NOT OK (see above)\n");
		/* 2 tells systemd not to restart a bad configuration; --check-config says 1. */
		return cfg.check_only ? 1 : 2;
	}
	if (cfg.check_only) {
		/* Everything above succeeded: the files parsed and the keys loaded. */
		config_print(&cfg, stdout);
		printf("# configuration OK\n");
		return 0;
	}
	log_set_level(cfg.log_level);
	log_set_format(cfg.log_format);
	/* Writes to a closed socket report EPIPE rather than kill the process. */
	signal(SIGPIPE, SIG_IGN);

	if (cfg.workers > 1)
		return workers_run(&cfg, main_serve);
	return main_serve(&cfg);
}
