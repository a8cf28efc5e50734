#include "workers.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "group.h"
#include "log.h"

#define WORKERS_MAX 64		     /* settings.c caps --workers at this */
#define WORKERS_BACKOFF_MIN_MS 100   /* first restart delay of a slot */
#define WORKERS_BACKOFF_MAX_MS 5000  /* the delay doubles up to this */
#define WORKERS_STABLE_MS 30000	     /* up this long = started well: the backoff resets */
#define WORKERS_MAX_START_FAILURES 5 /* failed exits in a row, each before WORKERS_STABLE_MS */
#define WORKERS_KILL_GRACE_MS 5000   /* after drain-timeout, what still runs is SIGKILLed */
#define WORKERS_CHECK_MS 500	     /* the heartbeats are checked (and systemd told) this often */
#define WORKERS_LATE_MS 2000	     /* a heartbeat older than this: the worker is not healthy */

/* workers_restart_delay's answers besides a delay in milliseconds. */
#define WORKERS_LEAVE (-1)
#define WORKERS_GIVE_UP (-2)

typedef struct worker_slot {
	unsigned index;
	pid_t pid;		 /* 0 = no process in this slot */
	uint64_t started_ms;	 /* when pid was forked */
	uint64_t restart_at_ms;	 /* pid == 0: when to fork again; 0 = leave the slot empty */
	uint64_t backoff_ms;	 /* the delay of the slot's next restart */
	unsigned start_failures; /* failed exits in a row that came before WORKERS_STABLE_MS */
	unsigned starts;
	bool stall_killed; /* SIGKILLed for a stalled loop; not yet reaped */
} worker_slot_t;

typedef struct workers {
	const config_t *cfg;
	workers_serve_fn *serve;
	pid_t self; /* the supervisor, as its children saw it at fork */
	worker_slot_t slots[WORKERS_MAX];
	unsigned n_slots;
	unsigned n_running;
	bool stopping;	     /* forwarded SIGTERM/SIGINT, or gave up: no more restarts */
	uint64_t kill_at_ms; /* stopping: SIGKILL what still runs at this time; 0 = done */
	int status;	     /* the supervisor's exit status */
	sigset_t waited; /* SIGCHLD, SIGTERM, SIGINT, SIGHUP: blocked, taken with sigtimedwait */
	sigset_t saved_mask; /* the mask before: what a child starts from */
	group_t *group;	     /* the shared segment: heartbeats and metrics, one slot each */
	uint64_t stall_ms;   /* worker-stall-timeout */
	uint64_t next_check_ms;
	bool watchdog;	     /* systemd's WatchdogSec is set for the supervisor */
	bool notified_ready; /* READY=1 was sent: every worker was ready at once */
	unsigned restarts;   /* workers forked after the first round */
	char sd_status[128]; /* the last STATUS= sent */
} workers_t;

static uint64_t workers_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* "exit=N" or "signal=SIGNAME" (with " core=1" when it dumped core), for log lines. */
static void workers_describe(int status, char *buf, size_t len)
{
	const char *name;

	if (WIFEXITED(status)) {
		snprintf(buf, len, "exit=%d", WEXITSTATUS(status));
	} else if (WIFSIGNALED(status)) {
		name = sigabbrev_np(WTERMSIG(status));
		if (name)
			snprintf(buf, len, "signal=SIG%s%s", name,
				 WCOREDUMP(status) ? " core=1" : "");
		else
			snprintf(buf, len, "signal=%d%s", WTERMSIG(status),
				 WCOREDUMP(status) ? " core=1" : "");
	} else {
		snprintf(buf, len, "status=0x%x", (unsigned)status);
	}
}

static bool workers_exited_cleanly(int status)
{
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* The slot's restart delay; the next one is twice as long, up to WORKERS_BACKOFF_MAX_MS. */
static uint64_t workers_take_backoff(worker_slot_t *s)
{
	uint64_t delay = s->backoff_ms;

	s->backoff_ms = delay * 2 < WORKERS_BACKOFF_MAX_MS ? delay * 2 : WORKERS_BACKOFF_MAX_MS;
	return delay;
}

/*
 * The restart policy, for a worker that exited with wait status `status`
 * after running ran_ms while the supervisor was not stopping.  A clean
 * exit 0 means somebody stopped that worker on purpose (SIGTERM sent to it
 * rather than to the supervisor, as a cgroup-wide kill does): the slot is
 * left empty (WORKERS_LEAVE).  Anything else is restarted after the slot's
 * backoff, which doubles up to WORKERS_BACKOFF_MAX_MS and resets once a
 * worker has run WORKERS_STABLE_MS.  A worker that exits non-zero by itself
 * WORKERS_MAX_START_FAILURES times in a row, each time before it was stable,
 * cannot start (port in use, a setting the process cannot serve with): the
 * answer is WORKERS_GIVE_UP.  Deaths by a signal (a crash, the OOM killer)
 * never give up; the backoff keeps them from spinning.
 */
static int64_t workers_restart_delay(worker_slot_t *s, int status, uint64_t ran_ms)
{
	if (workers_exited_cleanly(status))
		return WORKERS_LEAVE;
	if (ran_ms >= WORKERS_STABLE_MS) {
		s->backoff_ms = WORKERS_BACKOFF_MIN_MS;
		s->start_failures = 0;
	} else if (WIFEXITED(status) && ++s->start_failures >= WORKERS_MAX_START_FAILURES) {
		return WORKERS_GIVE_UP;
	}
	return (int64_t)workers_take_backoff(s);
}

/*
 * In the child, right after fork: dies with the supervisor, holds SIGTERM
 * and SIGINT until serve's loop handles them (workers_release_signals),
 * then serves and exits.  Never returns.  worker_started is logged here
 * rather than in the supervisor so that it always comes before the
 * worker's own lines.
 */
static void workers_child(workers_t *w, const worker_slot_t *s)
{
	sigset_t mask;

	/*
	 * PDEATHSIG only covers a supervisor that dies from here on; one that
	 * died since fork already made us an orphan, which getppid shows.
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != w->self)
		_exit(1);
	log_set_worker((int)s->index);
	/*
	 * Only the supervisor speaks to systemd: a worker beats its slot's
	 * heartbeat instead (group.h), so that one healthy worker cannot hide
	 * a stuck one from the watchdog.
	 */
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	group_join(w->group, s->index);
	log_event(LOG_INFO, "worker_started", "pid=%d starts=%u", (int)getpid(), s->starts);
	/* A forwarded SIGHUP does nothing until the gateway can reload. */
	signal(SIGHUP, SIG_IGN);
	mask = w->saved_mask;
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_SETMASK, &mask, NULL);
	exit(w->serve(w->cfg));
}

/* Forks slot s's worker; on failure schedules a retry as for a failed exit. */
static void workers_spawn(workers_t *w, worker_slot_t *s, uint64_t now)
{
	uint64_t delay;
	pid_t pid;

	fflush(NULL); /* nothing buffered may be written twice */
	s->starts++;
	group_slot_reset(w->group, s->index);
	pid = fork();
	if (pid == 0)
		workers_child(w, s);
	if (pid < 0) {
		s->starts--;
		delay = workers_take_backoff(s);
		log_event(LOG_ERROR, "worker_fork_failed", "worker=%u error=\"%s\" retry_ms=%llu",
			  s->index, strerror(errno), (unsigned long long)delay);
		s->restart_at_ms = now + delay;
		return;
	}
	s->pid = pid;
	s->started_ms = now;
	s->restart_at_ms = 0;
	s->stall_killed = false;
	group_slot_set_pid(w->group, s->index, pid);
	if (s->starts > 1)
		w->restarts++;
	w->n_running++;
}

static const char *workers_signal_name(int signum)
{
	return signum == SIGTERM ? "SIGTERM" : signum == SIGINT ? "SIGINT" : "SIGHUP";
}

static void workers_forward(workers_t *w, int signum)
{
	for (unsigned i = 0; i < w->n_slots; i++)
		if (w->slots[i].pid > 0)
			kill(w->slots[i].pid, signum);
}

/*
 * Stops every worker: no more restarts, signum to each running worker,
 * SIGKILL for those still running drain-timeout + WORKERS_KILL_GRACE_MS
 * later.  A repeated signal is forwarded again but moves no deadline.
 */
static void workers_stop(workers_t *w, int signum, const char *why, uint64_t now)
{
	if (!w->stopping) {
		w->stopping = true;
		w->kill_at_ms =
		    now + (uint64_t)w->cfg->drain_timeout_s * 1000 + WORKERS_KILL_GRACE_MS;
		for (unsigned i = 0; i < w->n_slots; i++)
			w->slots[i].restart_at_ms = 0;
		log_event(LOG_INFO, "workers_stopping", "why=%s running=%u", why, w->n_running);
		sd_notify(0, "STOPPING=1\nSTATUS=draining");
	}
	workers_forward(w, signum);
}

/* Handles one worker's exit: logs it, then restarts it, leaves it, or gives up on all. */
static void workers_exited(workers_t *w, worker_slot_t *s, int status, uint64_t now)
{
	uint64_t ran_ms = now - s->started_ms;
	pid_t pid = s->pid;
	char how[48];
	int64_t delay;

	s->pid = 0;
	w->n_running--;
	workers_describe(status, how, sizeof(how));
	if (w->stopping) {
		if (!workers_exited_cleanly(status))
			w->status = 1;
		log_event(workers_exited_cleanly(status) ? LOG_INFO : LOG_ERROR, "worker_exited",
			  "worker=%u pid=%d %s ran_ms=%llu", s->index, (int)pid, how,
			  (unsigned long long)ran_ms);
		return;
	}
	delay = workers_restart_delay(s, status, ran_ms);
	if (delay == WORKERS_LEAVE) {
		log_event(
		    LOG_WARN, "worker_exited",
		    "worker=%u pid=%d %s ran_ms=%llu restart=no "
		    "why=\"it exited 0: stopped by a signal sent to it, not to the supervisor\"",
		    s->index, (int)pid, how, (unsigned long long)ran_ms);
		return;
	}
	if (delay == WORKERS_GIVE_UP) {
		log_event(LOG_ERROR, "worker_died", "worker=%u pid=%d %s ran_ms=%llu restart=no",
			  s->index, (int)pid, how, (unsigned long long)ran_ms);
		log_event(LOG_ERROR, "workers_giving_up",
			  "worker=%u failures=%u hint=\"the worker keeps failing at start-up; its "
			  "own error is logged above\"",
			  s->index, s->start_failures);
		w->status = 1;
		workers_stop(w, SIGTERM, "give_up", now);
		return;
	}
	s->restart_at_ms = now + (uint64_t)delay;
	log_event(LOG_ERROR, "worker_died", "worker=%u pid=%d %s ran_ms=%llu restart_in_ms=%lld",
		  s->index, (int)pid, how, (unsigned long long)ran_ms, (long long)delay);
}

static worker_slot_t *workers_slot_of(workers_t *w, pid_t pid)
{
	for (unsigned i = 0; i < w->n_slots; i++)
		if (w->slots[i].pid == pid)
			return &w->slots[i];
	return NULL;
}

/*
 * Collects every child that has exited.  Each is first looked at without
 * being reaped (WNOWAIT): while it is a zombie its slot is folded into the
 * group's retired totals, CPU time included, so that no scrape in between
 * sees its counters gone.
 */
static void workers_reap(workers_t *w)
{
	worker_slot_t *s;
	siginfo_t info;
	pid_t pid;
	int status;

	for (;;) {
		memset(&info, 0, sizeof(info));
		if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (info.si_pid == 0)
			return;
		s = workers_slot_of(w, info.si_pid);
		if (s)
			group_retire(w->group, s->index);
		do
			pid = waitpid(info.si_pid, &status, 0); /* it has exited: no wait */
		while (pid < 0 && errno == EINTR);
		if (pid == info.si_pid && s)
			workers_exited(w, s, status, workers_now_ms());
	}
}

/* Tells systemd the counts when they changed since the last STATUS=. */
static void workers_status(workers_t *w, unsigned ready, unsigned healthy)
{
	char status[sizeof(w->sd_status)];

	snprintf(status, sizeof(status), "workers %u/%u running, %u ready, %u healthy, %u restarts",
		 w->n_running, w->n_slots, ready, healthy, w->restarts);
	if (strcmp(status, w->sd_status) == 0)
		return;
	memcpy(w->sd_status, status, sizeof(status));
	sd_notifyf(0, "STATUS=%s", status);
}

/*
 * Every WORKERS_CHECK_MS: reads each worker's heartbeat.  A worker whose
 * loop has not beaten for worker-stall-timeout (counted from its fork
 * until its first beat) is SIGKILLed; its exit restarts it as a crash
 * does.  Then speaks for the group to systemd: READY=1 once, when every
 * worker is ready at once; WATCHDOG=1 only while every worker runs and beat
 * within WORKERS_LATE_MS, so one stuck worker stops the pings until it is
 * replaced; STATUS= with the counts.
 */
static void workers_check(workers_t *w, uint64_t now)
{
	unsigned ready = 0, healthy = 0;
	uint64_t late_ms = w->stall_ms < WORKERS_LATE_MS ? w->stall_ms : WORKERS_LATE_MS;

	for (unsigned i = 0; i < w->n_slots; i++) {
		worker_slot_t *s = &w->slots[i];
		uint64_t beat = group_slot_heartbeat(w->group, i), age;

		if (s->pid <= 0 || s->stall_killed)
			continue;
		if (beat < s->started_ms)
			beat = s->started_ms;
		age = now > beat ? now - beat : 0;
		if (age > w->stall_ms) {
			log_event(LOG_ERROR, "worker_stalled",
				  "worker=%u pid=%d heartbeat_age_ms=%llu stall_timeout_s=%llu "
				  "action=SIGKILL",
				  s->index, (int)s->pid, (unsigned long long)age,
				  (unsigned long long)(w->stall_ms / 1000));
			kill(s->pid, SIGKILL);
			s->stall_killed = true;
			continue;
		}
		healthy += age <= late_ms;
		ready += group_slot_ready(w->group, i);
	}
	if (!w->notified_ready && !w->stopping && ready == w->n_slots) {
		w->notified_ready = true;
		sd_notifyf(0, "READY=1\nSTATUS=serving on %s:%d with %u workers",
			   w->cfg->listen_host[0] ? w->cfg->listen_host : "*", w->cfg->listen_port,
			   w->n_slots);
		log_event(LOG_INFO, "ready", "workers=%u", w->n_slots);
	} else if (w->notified_ready) {
		workers_status(w, ready, healthy);
	}
	if (w->watchdog && healthy == w->n_running && (w->stopping || healthy == w->n_slots))
		sd_notify(0, "WATCHDOG=1");
}

/* Forks the workers whose restart time has come; returns the next such time, or 0. */
static uint64_t workers_start_due(workers_t *w, uint64_t now)
{
	uint64_t next = 0;

	for (unsigned i = 0; i < w->n_slots && !w->stopping; i++) {
		worker_slot_t *s = &w->slots[i];

		if (s->pid || !s->restart_at_ms)
			continue;
		if (s->restart_at_ms <= now)
			workers_spawn(w, s, now);
		if (!s->pid && s->restart_at_ms && (!next || s->restart_at_ms < next))
			next = s->restart_at_ms;
	}
	return next;
}

static bool workers_any_due(const workers_t *w)
{
	for (unsigned i = 0; i < w->n_slots; i++)
		if (!w->slots[i].pid && w->slots[i].restart_at_ms)
			return true;
	return false;
}

/* SIGKILLs every worker still running past the stop's deadline. */
static void workers_kill_late(workers_t *w)
{
	for (unsigned i = 0; i < w->n_slots; i++) {
		worker_slot_t *s = &w->slots[i];

		if (s->pid > 0) {
			log_event(LOG_ERROR, "worker_killed",
				  "worker=%u pid=%d why=\"still running "
				  "%us after the stop (drain-timeout %us)\"",
				  s->index, (int)s->pid,
				  w->cfg->drain_timeout_s + WORKERS_KILL_GRACE_MS / 1000,
				  w->cfg->drain_timeout_s);
			kill(s->pid, SIGKILL);
		}
	}
	w->kill_at_ms = 0;
}

/*
 * The supervisor's loop: reap, restart what is due, wait for the next
 * signal or deadline.  Ends when no worker runs and none is to be started.
 */
static void workers_supervise(workers_t *w)
{
	struct timespec timeout;
	uint64_t now, next;
	int signum;

	for (;;) {
		workers_reap(w);
		now = workers_now_ms();
		next = workers_start_due(w, now);
		if (w->stopping) {
			if (w->kill_at_ms && now >= w->kill_at_ms)
				workers_kill_late(w);
			next = w->kill_at_ms;
		}
		if (w->n_running == 0 && (w->stopping || !workers_any_due(w)))
			return;
		if (now >= w->next_check_ms) {
			workers_check(w, now);
			w->next_check_ms = now + WORKERS_CHECK_MS;
		}
		if (!next || next > w->next_check_ms)
			next = w->next_check_ms;
		if (next) {
			uint64_t wait_ms = next > now ? next - now : 0;

			timeout.tv_sec = (time_t)(wait_ms / 1000);
			timeout.tv_nsec = (long)(wait_ms % 1000) * 1000000;
		}
		signum = sigtimedwait(&w->waited, NULL, next ? &timeout : NULL);
		if (signum == SIGTERM || signum == SIGINT) {
			workers_stop(w, signum, workers_signal_name(signum), workers_now_ms());
		} else if (signum == SIGHUP) {
			log_event(LOG_INFO, "signal_forwarded", "signal=SIGHUP running=%u",
				  w->n_running);
			workers_forward(w, SIGHUP);
		}
		/* SIGCHLD, a timeout or EINTR: the next round reaps and rechecks. */
	}
}

int workers_run(const config_t *cfg, workers_serve_fn *serve)
{
	static workers_t w;
	uint64_t now;

	memset(&w, 0, sizeof(w));
	w.cfg = cfg;
	w.serve = serve;
	w.self = getpid();
	w.n_slots = cfg->workers < WORKERS_MAX ? cfg->workers : WORKERS_MAX;
	w.stall_ms = (uint64_t)cfg->stall_timeout_s * 1000;
	{
		uint64_t usec = 0;

		w.watchdog = sd_watchdog_enabled(0, &usec) > 0;
	}
	w.group = group_create(w.n_slots);
	if (!w.group) {
		log_event(LOG_ERROR, "workers_failed", "error=\"shared memory: %s\"",
			  strerror(errno));
		return 1;
	}
	sigemptyset(&w.waited);
	sigaddset(&w.waited, SIGCHLD);
	sigaddset(&w.waited, SIGTERM);
	sigaddset(&w.waited, SIGINT);
	sigaddset(&w.waited, SIGHUP);
	/* Blocked from before the first fork so that no signal is missed. */
	sigprocmask(SIG_BLOCK, &w.waited, &w.saved_mask);

	log_event(LOG_INFO, "workers_started", "n=%u pid=%d", w.n_slots, (int)w.self);
	now = workers_now_ms();
	for (unsigned i = 0; i < w.n_slots; i++) {
		w.slots[i].index = i;
		w.slots[i].backoff_ms = WORKERS_BACKOFF_MIN_MS;
		workers_spawn(&w, &w.slots[i], now);
	}
	workers_supervise(&w);
	group_destroy(w.group);
	log_event(LOG_INFO, "supervisor_exited", "status=%d", w.status);
	return w.status;
}

void workers_release_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
}
