/*
 * workers.h - `--workers N`: a supervisor process and N worker processes
 * that share the listening port (SO_REUSEPORT, the kernel spreads the
 * connections), each with its own loop, lws context and Redis connections.
 *
 * The supervisor holds no socket and never touches lws, hiredis or libuv
 * (libuv's signal handlers and their pipe would be inherited by every
 * fork): its loop is sigtimedwait with a deadline, never longer than the
 * next heartbeat check.  It forks the workers, forwards SIGTERM, SIGINT and
 * SIGHUP to them, restarts a worker that crashed (with a per-slot backoff),
 * SIGKILLs and restarts one whose loop stalled past worker-stall-timeout,
 * and gives up, exiting 1, when a worker keeps failing at start-up.
 *
 * The workers share one segment with it (group.h): each worker's loop
 * beats a heartbeat in its slot and counts its metrics there, so any
 * worker answers /metrics for the whole group.  Only the supervisor speaks
 * to systemd: READY=1 once every worker is ready, WATCHDOG=1 while every
 * worker's heartbeat is fresh, STATUS= with the counts, STOPPING=1.
 */
#ifndef TRACKGATE_WORKERS_H
#define TRACKGATE_WORKERS_H

#include "config.h"

/* Serves in this process until it is stopped; returns the exit status. */
typedef int workers_serve_fn(const config_t *cfg);

/*
 * Runs cfg->workers (> 1) copies of serve, each in a child process, and
 * supervises them.  Returns in the supervisor only, with its exit status:
 * 0 when a SIGTERM/SIGINT stopped every worker and each exited 0, else 1.
 * A child never returns from here: it exits with serve's result.
 *
 * A child starts with SIGTERM and SIGINT blocked, so that a signal the
 * supervisor forwards while the child is still starting is held rather
 * than killing it; serve must call workers_release_signals() once its
 * loop's own handlers are in place.
 */
int workers_run(const config_t *cfg, workers_serve_fn *serve);

/*
 * Unblocks SIGTERM and SIGINT (and delivers any that are pending to the
 * handlers now installed).  Does nothing visible in a single process,
 * where they were never blocked.
 */
void workers_release_signals(void);

#endif
