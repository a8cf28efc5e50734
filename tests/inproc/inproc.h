/*
 * inproc.h - what the in-process tests share: a private redis-server on a
 * unix socket in a temp dir, and a uv loop driven until a condition holds or
 * a deadline passes.
 *
 * No test waits a fixed time: every wait is for a condition, bounded by a
 * deadline after which the test fails.
 */
#ifndef TRACKGATE_TESTS_INPROC_H
#define TRACKGATE_TESTS_INPROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

/* A redis-server of the test's own; it dies with the test (PR_SET_PDEATHSIG). */
typedef struct inproc_redis {
	char dir[80];	/* the temp dir holding the socket and the log; "" until created */
	char sock[100]; /* <dir>/r.sock: short enough for sun_path (108) */
	char log[100];	/* <dir>/redis.log */
	pid_t pid;	/* 0 when not running */
} inproc_redis_t;

/*
 * Starts redis-server (creating the temp dir on the first start; a restart
 * keeps the socket path) and waits until it answers PING on its socket, at
 * most timeout_ms.  0 on success; -1 with the reason and the server's log on
 * stderr, the server then stopped.
 */
int inproc_redis_start(inproc_redis_t *r, unsigned timeout_ms);
/* SIGKILLs the server and reaps it: gone without a goodbye, as in a crash. */
void inproc_redis_kill(inproc_redis_t *r);
/* Kills the server if it runs and removes the temp dir. */
void inproc_redis_cleanup(inproc_redis_t *r);

/* A loop and the deadline timer of its waits. */
typedef struct inproc_loop {
	uv_loop_t loop;
	uv_timer_t deadline;
	bool expired;
} inproc_loop_t;

int inproc_loop_init(inproc_loop_t *l);
/*
 * Runs the loop until cond(arg) holds (checked before each turn and after
 * it) or timeout_ms have passed.  Returns cond's last answer.
 */
bool inproc_run_until(inproc_loop_t *l, bool (*cond)(void *arg), void *arg, unsigned timeout_ms);
/*
 * Runs the loop until nothing keeps it alive (the deadline does not), at most
 * timeout_ms.  True when it got there: what was being closed is closed.
 */
bool inproc_run_down(inproc_loop_t *l, unsigned timeout_ms);
/*
 * Closes the deadline timer, runs the loop until nothing is left on it (at
 * most timeout_ms: a handle left open would keep it running for ever) and
 * returns uv_loop_close(): 0 when the code under test closed all it opened.
 * Prints what is still open otherwise.
 */
int inproc_loop_close(inproc_loop_t *l, unsigned timeout_ms);

/* Milliseconds on the monotonic clock. */
uint64_t inproc_now_ms(void);

#endif
