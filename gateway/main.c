/*
 * trackgated - trackgate's order-tracking websocket gateway.
 *
 * Start-up reads the configuration and the key file (the only synchronous
 * file I/O), then everything runs on one uv loop until SIGINT/SIGTERM.
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

int main(int argc, char **argv)
{
	static config_t cfg;
	static gateway_t g;
	uv_loop_t loop;
	int rc;

	config_defaults(&cfg);
	rc = config_load(&cfg, argc, argv);
	if (rc == CONFIG_EXIT_OK)
		return 0;
	if (rc != CONFIG_OK)
		return 2;
	log_set_level(cfg.log_level);
	/* Writes to a closed socket report EPIPE rather than kill the process. */
	signal(SIGPIPE, SIG_IGN);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());

	if (uv_loop_init(&loop)) {
		log_event(LOG_ERROR, "loop_init_failed", "%s", "");
		return 1;
	}
	rc = gateway_start(&g, &loop, &cfg);
	if (rc == 0)
		uv_run(&loop, UV_RUN_DEFAULT);
	if (gateway_teardown(&g) != 0)
		rc = 1;
	log_event(LOG_INFO, "exited", "status=%d", rc ? 1 : 0);
	return rc ? 1 : 0;
}
