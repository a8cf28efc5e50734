/* The in-process tests' redis-server and loop helpers (inproc.h). */
#include "inproc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define INPROC_REDIS "redis-server"
#define INPROC_RETRY_MS 10 /* between two looks at a condition outside a loop */

uint64_t inproc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void inproc_pause(void)
{
	struct timespec ts = {0, INPROC_RETRY_MS * 1000000L};

	nanosleep(&ts, NULL);
}

/* Prints the server's log: why it did not come up. */
static void inproc_redis_dump_log(const inproc_redis_t *r)
{
	char buf[4096];
	FILE *f = fopen(r->log, "r");
	size_t n;

	if (!f)
		return;
	fprintf(stderr, "--- %s\n", r->log);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stderr);
	fclose(f);
}

/* True once the server answers +PONG on its socket. */
static bool inproc_redis_pongs(const inproc_redis_t *r)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {1, 0};
	char reply[8] = "";
	bool ok = false;
	ssize_t n;
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", r->sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && write(fd, "PING\r\n", 6) == 6 &&
	    (n = read(fd, reply, sizeof(reply) - 1)) > 0) {
		reply[n] = '\0';
		ok = !strncmp(reply, "+PONG", 5);
	}
	close(fd);
	return ok;
}

static void inproc_redis_exec(const inproc_redis_t *r)
{
	char *const argv[] = {
	    INPROC_REDIS,
	    "--port",
	    "0",
	    "--unixsocket",
	    (char *)r->sock,
	    "--save",
	    "",
	    "--appendonly",
	    "no",
	    "--dir",
	    (char *)r->dir,
	    "--logfile",
	    (char *)r->log,
	    NULL,
	};
	int null = open("/dev/null", O_RDWR);

	/* Gone with the test, however the test ends. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
	}
	/* Nothing of the test's (its client sockets above all) stays open in the server. */
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	execvp(argv[0], argv);
	_exit(127);
}

int inproc_redis_start(inproc_redis_t *r, unsigned timeout_ms)
{
	uint64_t deadline = inproc_now_ms() + timeout_ms;
	int status;

	if (!r->dir[0]) {
		const char *tmp = getenv("TMPDIR");

		if (snprintf(r->dir, sizeof(r->dir), "%s/tg-inproc-XXXXXX",
			     tmp && *tmp ? tmp : "/tmp") >= (int)sizeof(r->dir)) {
			fprintf(stderr, "TMPDIR too long for a unix socket path: %s\n", tmp);
			r->dir[0] = '\0';
			return -1;
		}
		if (!mkdtemp(r->dir)) {
			fprintf(stderr, "mkdtemp %s: %s\n", r->dir, strerror(errno));
			r->dir[0] = '\0';
			return -1;
		}
		snprintf(r->sock, sizeof(r->sock), "%s/r.sock", r->dir);
		snprintf(r->log, sizeof(r->log), "%s/redis.log", r->dir);
	}
	fflush(NULL);
	r->pid = fork();
	if (r->pid < 0) {
		fprintf(stderr, "fork: %s\n", strerror(errno));
		r->pid = 0;
		return -1;
	}
	if (r->pid == 0)
		inproc_redis_exec(r);
	while (!inproc_redis_pongs(r)) {
		if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
			fprintf(stderr, "%s exited (status %d) before answering\n", INPROC_REDIS,
				status);
			r->pid = 0;
			inproc_redis_dump_log(r);
			return -1;
		}
		if (inproc_now_ms() >= deadline) {
			fprintf(stderr, "%s did not answer on %s within %u ms\n", INPROC_REDIS,
				r->sock, timeout_ms);
			inproc_redis_kill(r);
			inproc_redis_dump_log(r);
			return -1;
		}
		inproc_pause();
	}
	return 0;
}

void inproc_redis_kill(inproc_redis_t *r)
{
	if (r->pid <= 0)
		return;
	kill(r->pid, SIGKILL);
	while (waitpid(r->pid, NULL, 0) < 0 && errno == EINTR)
		;
	r->pid = 0;
}

void inproc_redis_cleanup(inproc_redis_t *r)
{
	inproc_redis_kill(r);
	if (!r->dir[0])
		return;
	unlink(r->sock);
	unlink(r->log);
	if (rmdir(r->dir) != 0)
		fprintf(stderr, "rmdir %s: %s\n", r->dir, strerror(errno));
	r->dir[0] = '\0';
}

static void inproc_deadline_cb(uv_timer_t *t)
{
	inproc_loop_t *l = t->data;

	l->expired = true;
}

int inproc_loop_init(inproc_loop_t *l)
{
	memset(l, 0, sizeof(*l));
	if (uv_loop_init(&l->loop) != 0)
		return -1;
	if (uv_timer_init(&l->loop, &l->deadline) != 0)
		return -1;
	l->deadline.data = l;
	return 0;
}

bool inproc_run_until(inproc_loop_t *l, bool (*cond)(void *arg), void *arg, unsigned timeout_ms)
{
	bool ok;

	l->expired = false;
	uv_timer_start(&l->deadline, inproc_deadline_cb, timeout_ms, 0);
	while (!(ok = cond(arg)) && !l->expired)
		uv_run(&l->loop, UV_RUN_ONCE);
	uv_timer_stop(&l->deadline);
	return ok;
}

static void inproc_print_handle(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		fprintf(stderr, "left on the loop: %s handle %p (%s)\n",
			uv_handle_type_name(uv_handle_get_type(h)), (void *)h,
			uv_is_active(h) ? "active" : "inactive");
}

bool inproc_run_down(inproc_loop_t *l, unsigned timeout_ms)
{
	bool idle;

	/* The deadline does not keep the loop alive; it only ends a loop that others keep. */
	l->expired = false;
	uv_timer_start(&l->deadline, inproc_deadline_cb, timeout_ms, 0);
	uv_unref((uv_handle_t *)&l->deadline);
	while ((idle = !uv_loop_alive(&l->loop)) == false && !l->expired)
		uv_run(&l->loop, UV_RUN_ONCE);
	uv_timer_stop(&l->deadline);
	uv_ref((uv_handle_t *)&l->deadline);
	return idle;
}

int inproc_loop_close(inproc_loop_t *l, unsigned timeout_ms)
{
	int rc;

	inproc_run_down(l, timeout_ms);
	uv_close((uv_handle_t *)&l->deadline, NULL);
	uv_run(&l->loop, UV_RUN_NOWAIT);
	rc = uv_loop_close(&l->loop);
	if (rc != 0)
		uv_walk(&l->loop, inproc_print_handle, NULL);
	return rc;
}
