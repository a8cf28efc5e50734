#!/usr/bin/python3
"""integration.workers_heal: with --workers 2 the supervisor watches each worker's loop,
speaks for the group to systemd, and any worker answers /metrics for the whole group.

trackgated --workers 2 --worker-stall-timeout 4, with the test playing systemd (a unix
datagram socket in NOTIFY_SOCKET, SO_PASSCRED on so that each message names its sender,
and WATCHDOG_USEC set):
  - READY=1 comes once, after both workers logged `ready`; every notification (READY,
    WATCHDOG, STATUS, STOPPING) comes from the supervisor's pid, none from a worker;
  - /metrics (on metrics-listen, a fresh connection each time, so the kernel spreads
    the scrapes over both workers) says trackgate_workers 2; over 20 scrapes taken
    while updates are posted, the ingest counters never go down, never exceed what was
    posted, and equal it once the posts are answered, whichever worker answered;
    `promtool check metrics` is clean on a group scrape;
  - SIGSTOP to one worker: WATCHDOG=1 pings stop while it is stalled, the supervisor
    logs worker_stalled and SIGKILLs it within worker-stall-timeout + a margin, forks
    a new worker in the same slot (a new pid), and the pings come back; afterwards
    /healthz answers 200 on 20 fresh connections in a row (a stopped worker would hold
    some of them unanswered);
  - after the restart the counters still never go down: the killed worker's counts stay
    in the group's totals, and new posts add to them exactly;
  - SIGTERM: STOPPING=1 from the supervisor, exit 0.
"""
import calendar
import os
import re
import signal
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import test_metrics  # noqa: E402  (promtool_check)
import test_workers as tw  # noqa: E402  (children_of, listening, record_workers)

N_WORKERS = 2
STALL = 4            # --worker-stall-timeout, seconds
LATE = 2.0           # the supervisor's WORKERS_LATE_MS: a worker this late is not healthy
MARGIN = 3.0         # seconds beyond STALL for the stalled worker to be replaced
N_SCRAPES = 20
REQUESTS = 'trackgate_ingest_requests_total{provider="canonical",status="202"}'
APPLIED = 'trackgate_ingest_updates_total{provider="canonical",result="applied"}'


class FakeSystemd:
    """NOTIFY_SOCKET: records (wall time, sender pid, message) of every datagram."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.got = []
        self.lock = threading.Lock()
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        creds = struct.calcsize("3i")
        while not self.stop:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(creds))
            except socket.timeout:
                continue
            except OSError:
                return
            pid = None
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", cdata[:creds])[0]
            with self.lock:
                self.got.append((time.time(), pid, data.decode("utf-8", "replace")))

    def messages(self):
        with self.lock:
            return list(self.got)

    def with_line(self, line):
        return [(t, pid, m) for t, pid, m in self.messages() if line in m.split("\n")]

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def scrape(env):
    return h.scrape_metrics(env.daemon.ports["metrics"])


def post_and_scrape(env, oid, n, posted, seen):
    """Posts n updates of oid (one request each), scraping once after each; every scrape
    must show counters that never went down and never counted more than was posted."""
    for i in range(n):
        u = h.update(oid, h.now_ms(), lat=48.0 + (posted[0] + i) / 1e4, lng=2.0)
        r = env.post(u)
        h.check_eq(r.status, 202, f"POST {i}")
        posted[0] += 1
        m = scrape(env)
        got = (m.get(REQUESTS, 0), m.get(APPLIED, 0))
        h.check(got[0] >= seen[-1][0] and got[1] >= seen[-1][1],
                f"a counter went down: {seen[-1]} then {got}")
        h.check(got[0] <= posted[0], f"{got[0]} 202s counted, {posted[0]} posted")
        h.check_eq(m.get("trackgate_workers"), N_WORKERS, "trackgate_workers")
        seen.append(got)
    h.check_eq(seen[-1], (posted[0], posted[0]), "202s and applied updates, once answered")


def parse_log_time(line):
    """The wall time of a log line (2026-11-21T21:40:00.123Z ...), in seconds since the epoch."""
    stamp = line.split(" ", 1)[0]
    return calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) + \
        float("0" + stamp[19:-1])


def test(env):
    path = os.path.join(env.sock_dir, "notify.sock")
    systemd = FakeSystemd(path)
    os.environ["NOTIFY_SOCKET"] = path
    os.environ["WATCHDOG_USEC"] = "10000000"
    try:
        env.redis.start()
        env.daemon.start()
    finally:
        del os.environ["NOTIFY_SOCKET"]
        del os.environ["WATCHDOG_USEC"]
    try:
        run(env, systemd)
    finally:
        systemd.close()


def run(env, systemd):
    parent = env.daemon.proc.pid
    port = env.port
    workers = h.wait_until(lambda: tw.listening_workers(parent, port), 10,
                           what="two workers, each listening")
    tw.record_workers(workers)

    # READY=1 once, after every worker is ready.
    ready = h.wait_until(lambda: systemd.with_line("READY=1"), 10, what="READY=1")
    log = tw.log_text(env)
    worker_ready = [ln for ln in log.splitlines() if re.search(r" info ready worker=\d+", ln)]
    h.check_eq(len(worker_ready), N_WORKERS, f"workers logged ready by READY=1:\n"
               f"{h.tail(env.daemon.log, 40)}")
    last_worker_ready = max(parse_log_time(ln) for ln in worker_ready)
    h.check(ready[0][0] >= last_worker_ready - 0.01,
            f"READY=1 at {ready[0][0]:.3f}, a worker ready at {last_worker_ready:.3f}")
    h.wait_until(lambda: len(systemd.with_line("WATCHDOG=1")) >= 2, 3, what="WATCHDOG=1 pings")

    # One metrics view: counters that never go down, equal to what was posted.
    oid = f"heal-{os.getpid()}"
    posted, seen = [0], [(0, 0)]
    post_and_scrape(env, oid, N_SCRAPES, posted, seen)
    raw = h.http_request(env.daemon.ports["metrics"], "GET", "/metrics").raw
    test_metrics.promtool_check(raw)
    print(f"{N_SCRAPES} scrapes while posting: {[s[0] for s in seen[1:]]}")

    # SIGSTOP one worker: pings stop, it is killed and replaced, pings come back.
    victim = workers[0]
    offset = h.log_size(env.daemon.log)
    t_stop = time.time()
    os.kill(victim, signal.SIGSTOP)

    def replaced():
        kids = tw.children_of(parent)
        fresh = [p for p in kids if p not in workers]
        if victim not in kids and len(kids) == N_WORKERS and fresh and \
                tw.listening(fresh[0], port):
            return fresh[0]
        return None
    new = h.wait_until(replaced, STALL + MARGIN, what="the stalled worker replaced")
    t_new = time.time()
    tw.record_workers([new])
    since = h.log_since(env.daemon.log, offset)
    stalled = re.search(rf"^(\S+) error worker_stalled worker=\d+ pid={victim} .*$", since,
                        re.M)
    h.check(stalled, f"no worker_stalled line for {victim}:\n{since}")
    t_kill = parse_log_time(stalled.group(0))
    h.check(STALL - 0.5 <= t_kill - t_stop <= STALL + 1.5,
            f"killed {t_kill - t_stop:.2f} s after SIGSTOP (worker-stall-timeout {STALL})")
    h.check(re.search(rf"worker_died worker=\d+ pid={victim} signal=SIGKILL ", since),
            "no worker_died line for the stalled worker")
    print(f"worker {victim} stopped; killed after {t_kill - t_stop:.2f} s; "
          f"new worker {new} listening after {t_new - t_stop:.2f} s")

    pings = [t for t, _, _ in systemd.with_line("WATCHDOG=1")]
    silent = [t for t in pings if t_stop + LATE + 0.6 <= t <= t_kill]
    h.check(not silent, f"WATCHDOG=1 while a worker was stalled: {[t - t_stop for t in silent]}")
    before = [t for t in pings if t < t_stop]
    h.check(before, "no WATCHDOG=1 before the stall")
    h.wait_until(lambda: [t for t, _, _ in systemd.with_line("WATCHDOG=1") if t > t_new], 3,
                 what="WATCHDOG=1 again once the worker was replaced")

    # Every worker answers: fresh connections land on both.
    for i in range(20):
        r = h.http_request(port, "GET", "/healthz", timeout=2.0)
        h.check_eq(r.status, 200, f"/healthz {i} after the restart")

    # The killed worker's counts stay; new ones add exactly.
    m = scrape(env)
    h.check(m.get(REQUESTS, 0) == posted[0] and m.get(APPLIED, 0) == posted[0],
            f"after the restart: {m.get(REQUESTS)} 202s, {m.get(APPLIED)} applied; "
            f"{posted[0]} posted")
    post_and_scrape(env, oid, N_SCRAPES, posted, seen)

    status = [m for _, _, m in systemd.messages() if "STATUS=" in m]
    h.check(any("restarts" in m for m in status), f"no STATUS= with the counts: {status}")

    # Only the supervisor speaks to systemd.
    senders = {pid for _, pid, _ in systemd.messages()}
    h.check_eq(senders, {parent}, "pids that sent notifications")

    took = env.daemon.terminate(timeout=15)
    h.wait_until(lambda: systemd.with_line("STOPPING=1"), 2, what="STOPPING=1")
    h.check_eq({pid for _, pid, _ in systemd.messages()}, {parent}, "senders, with STOPPING")
    print(f"supervisor exited 0 {took:.2f} s after SIGTERM; "
          f"{len(systemd.messages())} notifications, all from {parent}")


if __name__ == "__main__":
    h.main(test, start=False,
           daemon_args=["--workers", str(N_WORKERS), "--worker-stall-timeout", str(STALL),
                        "--drain-timeout", "3", "--metrics-listen", h.FreePort("metrics")])
