#!/usr/bin/python3
"""integration.workers: `--workers 2` runs a supervisor and two workers sharing the port.

Phase 1 (trackgated --workers 2 --drain-timeout 3):
  - the supervisor has exactly two worker children and holds no socket itself;
  - 30 watchers over 3 orders are spread over both workers: which worker
    serves a watcher is read from /proc (the server side of its TCP
    connection, found in /proc/net/tcp{,6} by the watcher's own port, is a
    socket inode that one worker's /proc/PID/fd holds); both must hold some;
  - updates posted (to either worker) reach every watcher, in order;
  - SIGKILL to one worker: the supervisor logs worker_died and forks a new
    worker in the same slot within a few seconds; from the moment the killed
    process is gone (requests it had already accepted die with it), /readyz
    answers 200 all along, the new worker included once it listens; the
    killed worker's watchers see 1006, the others stay open; the
    dropped ones reconnect and get a snapshot with the last cursor; the new
    worker serves watchers too; a further update reaches everyone;
  - SIGTERM to the supervisor: every watcher gets 1001, the supervisor exits
    0 within drain-timeout + a few seconds and no worker is left.

Phase 2: with the port held by another socket (no SO_REUSEPORT), every
worker fails to bind; the supervisor gives up after a few restarts and
exits 1 with workers_giving_up in its log, instead of restarting forever.

Phase 3: SIGKILL to the supervisor: its workers notice (PR_SET_PDEATHSIG)
and exit on their own.

Worker pids go into the harness's pid list too, so integration.cleanup also
catches a worker that outlives its test.
"""
import asyncio
import os
import re
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

N_WORKERS = 2
DRAIN = 3
N_ORDERS = 3
N_PER_ORDER = 10
N_UPDATES = 5
RESTART_WITHIN = 5.0      # seconds for the supervisor to replace a killed worker
EXIT_SLACK = 4.0          # seconds beyond drain-timeout the supervisor may take to exit
READY_POLL = 1.0          # seconds /readyz is polled at least after the kill


# --- processes and sockets, from /proc -------------------------------------------------

def children_of(ppid):
    """Pids whose parent is ppid (live or zombie)."""
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == ppid and fields[0] != "Z":
            kids.append(int(name))
    return sorted(kids)


def gone(pid, start):
    """True when pid no longer names the process that started at `start` (or is a zombie)."""
    return h._proc_starttime(pid) != start or h._proc_state(pid) in (None, "Z")


recorded = {}   # worker pid -> start time


def record_workers(pids):
    """Adds worker pids to the harness's pid list, for integration.cleanup."""
    for pid in pids:
        if pid in recorded:
            continue
        start = h._proc_starttime(pid)
        if start is None:
            continue
        recorded[pid] = start
        if h._pid_file:
            with open(h._pid_file, "a") as f:
                f.write(f"{pid} {start} trackgated-worker {sys.argv[0]}\n")


def server_sockets(port):
    """{client port: socket inode} of the established connections accepted on port."""
    return dict(h.tcp_sockets(port, "01"))


def listening(pid, port):
    """True when pid holds a socket listening on port."""
    return bool({inode for _, inode in h.tcp_sockets(port, "0A")} & h.socket_inodes(pid))


def worker_of(watchers, port, workers):
    """{watcher: worker pid serving it (None if not found)}."""
    by_client = server_sockets(port)
    owner = {}
    for pid in workers:
        for inode in h.socket_inodes(pid):
            owner[inode] = pid
    out = {}
    for w in watchers:
        client_port = w.ws.transport.get_extra_info("sockname")[1]
        out[w] = owner.get(by_client.get(client_port))
    return out


def listening_workers(parent, port):
    """The supervisor's children once there are N_WORKERS, each listening on port; else None."""
    kids = children_of(parent)
    if len(kids) == N_WORKERS and all(listening(pid, port) for pid in kids):
        return kids
    return None


def log_text(env):
    with open(env.daemon.log, "rb") as f:
        return f.read().decode("utf-8", "replace")


# --- phase 1 ------------------------------------------------------------------------------

async def post_round(env, orders, base, r):
    """One update per order; returns {order: (update, cursor)}."""
    out = {}
    for k, o in enumerate(orders):
        u = h.update(o, base + r * 100 + k, lat=48.0 + r / 1000, lng=2.0 + k / 1000,
                     status="en_route_to_dropoff" if r else "courier_assigned")
        out[o] = (u, await env.aapply(u))
    return out


async def expect_updates(watchers, expected, what):
    """Every watcher of an order gets exactly that order's (update, cursor) list, in order."""
    for o, ws in watchers.items():
        for n, w in enumerate(ws):
            for i, (u, cursor) in enumerate(expected[o]):
                f = await w.update()
                h.check(f.get("cursor") == cursor and f.get("update") == u,
                        f"{what}: {o} watcher {n} update {i}: expected {cursor}, got {f!r}")
            h.check_eq(w.pending(), [], f"{what}: {o} watcher {n}: extra frames")


async def phase1(env):
    parent = env.daemon.proc.pid
    port = env.port
    workers = await h.async_wait_until(lambda: listening_workers(parent, port), 10,
                                       what="two worker processes, each listening on the port")
    record_workers(workers)
    log = log_text(env)
    h.check(f"workers_started n={N_WORKERS} pid={parent}" in log, "no workers_started line")
    for pid in workers:
        h.check(re.search(rf"worker_started worker=\d+ pid={pid} starts=1", log),
                f"no worker_started line for pid {pid}")
    h.check_eq(h.socket_inodes(parent), set(), "sockets held by the supervisor")
    print(f"supervisor {parent}, workers {workers}")

    # 30 watchers; which worker serves each.
    orders = [f"wk-{i}.{os.getpid()}" for i in range(N_ORDERS)]
    watchers = {o: [await env.watch(o) for _ in range(N_PER_ORDER)] for o in orders}
    everyone = [w for ws in watchers.values() for w in ws]
    served = worker_of(everyone, port, workers)
    counts = {pid: sum(1 for p in served.values() if p == pid) for pid in workers}
    print(f"watchers per worker: {counts}")
    h.check(all(p is not None for p in served.values()),
            f"some watchers are held by no worker: {served!r}")
    h.check(all(c > 0 for c in counts.values()), f"one worker holds no watcher: {counts}")

    base = h.now_ms() - 60_000
    rounds = [await post_round(env, orders, base, r) for r in range(N_UPDATES)]
    await expect_updates(watchers, {o: [r[o] for r in rounds] for o in orders}, "before the kill")

    # SIGKILL one worker.
    victim = workers[0]
    survivor = workers[1]
    victim_start = recorded[victim]
    os.kill(victim, signal.SIGKILL)
    await h.async_wait_until(lambda: gone(victim, victim_start), 5, what="the killed worker gone")
    t_kill = time.monotonic()
    ready = []
    new = None
    # /readyz is asked all along, and for at least READY_POLL seconds.
    while time.monotonic() - t_kill < RESTART_WITHIN + 1:
        r = await asyncio.to_thread(env.http, "GET", "/readyz", None, None, 2.0)
        ready.append(r.status)
        kids = children_of(parent)
        fresh = [p for p in kids if p not in workers]
        if new is None and fresh and len(kids) == N_WORKERS and listening(fresh[0], port):
            new = fresh[0]
        if new is not None and time.monotonic() - t_kill >= READY_POLL:
            break
        await asyncio.sleep(0.05)
    h.check(new is not None, f"no new worker within {RESTART_WITHIN} s (children: "
            f"{children_of(parent)})")
    record_workers([new])
    print(f"worker {victim} killed; new worker {new} listening; {len(ready)} /readyz answers "
          f"in {time.monotonic() - t_kill:.2f} s")
    h.check(all(s == 200 for s in ready), f"/readyz while a worker was down: {ready}")
    h.check_eq(sorted(children_of(parent)), sorted([survivor, new]), "workers after the restart")
    log = log_text(env)
    h.check(re.search(rf"error worker_died worker=\d+ pid={victim} signal=SIGKILL ", log),
            "no worker_died line for the killed worker")
    h.check(re.search(rf"worker_started worker=\d+ pid={new} starts=2", log),
            "the new worker is not logged as the slot's second start")

    dropped = [w for w in everyone if served[w] == victim]
    kept = [w for w in everyone if served[w] == survivor]
    for w in dropped:
        code, _ = await w.wait_closed(5)
        h.check_eq(code, 1006, f"{w.path}: close code of a watcher on the killed worker")
    h.check(not any(w.closed.is_set() for w in kept), "a watcher on the other worker was closed")

    # The dropped watchers reconnect and resume from a snapshot.
    last = rounds[-1]
    current = {o: [w for w in watchers[o] if w in kept] for o in orders}
    for o in orders:
        for w in watchers[o]:
            if w in dropped:
                again = await env.watch(o)
                h.check_eq(again.frames[0].get("cursor"), last[o][1],
                           f"{o}: cursor of the snapshot after reconnecting")
                current[o].append(again)
    # The new worker serves too: open watchers until one lands on it.
    for i in range(40):
        extra = await env.watch(orders[i % N_ORDERS])
        current[orders[i % N_ORDERS]].append(extra)
        if worker_of([extra], port, [survivor, new])[extra] == new:
            break
    everyone_now = [w for ws in current.values() for w in ws]
    served = worker_of(everyone_now, port, [survivor, new])
    counts = {pid: sum(1 for p in served.values() if p == pid) for pid in (survivor, new)}
    print(f"after the restart, watchers per worker: {counts}")
    h.check(counts[new] > 0, "the restarted worker serves no watcher")

    final = await post_round(env, orders, base, N_UPDATES)
    await expect_updates(current, {o: [final[o]] for o in orders}, "after the restart")

    # SIGTERM to the supervisor: 1001 everywhere, exit 0, no worker left.
    env.daemon.terminated = True
    t0 = time.monotonic()
    env.daemon.proc.send_signal(signal.SIGTERM)
    exit_wait = asyncio.ensure_future(asyncio.to_thread(env.daemon.proc.wait, DRAIN + 10))
    for w in everyone_now:
        code, reason = await w.wait_closed(DRAIN + EXIT_SLACK)
        h.check(code == 1001 and reason, f"{w.path}: close {code} {reason!r}, want 1001")
    rc = await exit_wait
    took = time.monotonic() - t0
    print(f"supervisor exited {rc} {took:.2f} s after SIGTERM")
    h.check_eq(rc, 0, "supervisor exit status after SIGTERM")
    h.check(took < DRAIN + EXIT_SLACK, f"took {took:.2f} s (drain-timeout {DRAIN})")
    h.check(all(gone(pid, start) for pid, start in recorded.items()),
            f"workers still running after the supervisor exited: {recorded}")
    log = log_text(env)
    for pid in (survivor, new):
        h.check(re.search(rf"info worker_exited worker=\d+ pid={pid} exit=0 ", log),
                f"no clean worker_exited line for {pid}")
    h.check("info supervisor_exited status=0" in log, "no supervisor_exited status=0 line")


# --- phases 2 and 3 ---------------------------------------------------------------------

def start_supervisor(env, port, log_name, extra=()):
    log_path = os.path.join(env.log_dir, log_name)
    argv = [env.args.trackgated, "--listen", f"127.0.0.1:{port}",
            "--redis", f"unix://{env.redis.sock}", "--ingest-key-file", env.key_file,
            "--workers", str(N_WORKERS), "--drain-timeout", str(DRAIN)] + list(extra)
    return h.spawn(argv, log_path, "trackgated"), log_path


def phase2(env):
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        proc, log_path = start_supervisor(env, port, "busy-port.log")
        t0 = time.monotonic()
        try:
            rc = proc.wait(timeout=20)
        except Exception:
            proc.kill()
            raise h.TestFailure(f"the supervisor kept restarting workers on a busy port:\n"
                                f"{h.tail(log_path)}")
        took = time.monotonic() - t0
    finally:
        holder.close()
    log = h.tail(log_path, 200)
    print(f"busy port: supervisor exited {rc} after {took:.2f} s")
    h.check_eq(rc, 1, f"supervisor exit status on a busy port:\n{log}")
    h.check("listen_failed" in log, "no listen_failed line from the workers")
    h.check(re.search(r"error workers_giving_up worker=\d+ failures=\d+", log),
            f"no workers_giving_up line:\n{log}")
    h.check_eq(children_of(proc.pid), [], "workers left after giving up")


def phase3(env):
    # A fresh port on each attempt: another process may take a probed port before the
    # workers bind it (they then log listen_failed).
    for attempt in range(5):
        port = h.free_port()
        proc, log_path = start_supervisor(env, port, f"orphans-{attempt + 1}.log")

        def up():
            if " listen_failed " in h.tail(log_path, 50):
                return "taken"
            return listening_workers(proc.pid, port)
        workers = h.wait_until(up, 10, what="two worker processes of the second supervisor, "
                               "each listening")
        if workers != "taken":
            break
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=DRAIN + EXIT_SLACK)
    else:
        raise h.TestFailure(f"the second supervisor's workers could not bind a port in 5 "
                            f"attempts:\n{h.tail(log_path)}")
    record_workers(workers)
    starts = {pid: recorded[pid] for pid in workers}
    proc.kill()
    proc.wait(timeout=5)
    t0 = time.monotonic()
    h.wait_until(lambda: all(gone(pid, s) for pid, s in starts.items()), DRAIN + EXIT_SLACK,
                 what="the workers of a SIGKILLed supervisor to exit")
    print(f"supervisor SIGKILLed: its workers exited within {time.monotonic() - t0:.2f} s")
    log = h.tail(log_path, 50)
    h.check(len(re.findall(r"shutting_down (?:worker=\d+ )?why=SIGTERM", log)) >= N_WORKERS,
            f"the orphaned workers did not stop gracefully:\n{log}")


async def test(env):
    await phase1(env)
    await asyncio.to_thread(phase2, env)
    await asyncio.to_thread(phase3, env)


if __name__ == "__main__":
    h.main(test, daemon_args=["--workers", str(N_WORKERS), "--drain-timeout", str(DRAIN)])
