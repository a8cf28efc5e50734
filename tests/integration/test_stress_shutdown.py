#!/usr/bin/python3
"""integration.stress.shutdown: SIGTERM with 1 000 watchers over 50 orders.

1 000 websockets (20 per order) connect in concurrent batches, from 10
loopback addresses (127.0.0.1 .. 127.0.0.10, 100 each, within the default
max-per-client); each gets its snapshot and one update.  Then SIGTERM:

  - every watcher is closed with 1001 and a non-empty reason;
  - the listening socket is closed at once (a new connection is refused
    within 2 s of SIGTERM, polled for, and after the exit);
  - trackgated exits 0 within --drain-timeout (10) + 2 s, without waiting for
    the drain timeout (every client answers its close), and logs
    shutting_down / exited status=0.
"""
import asyncio
import os
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

N_ORDERS = 50
N_WATCHERS = 1000
N_ADDRS = 10
CONNECT_BATCH = 100
DRAIN = 10


async def connect(env, oid, addr):
    w = h.Watcher(env.port, f"/v1/track/{oid}")
    w.ws = await h.websockets.connect(w.url, open_timeout=20, close_timeout=10,
                                      ping_interval=None, max_queue=None,
                                      local_addr=(addr, 0))
    w._task = asyncio.ensure_future(w._reader())
    env.watchers.append(w)
    return w


async def test(env):
    ck = h.Checks()
    base = h.now_ms() - 60_000
    orders = [f"shut-{os.getpid()}-{k}" for k in range(N_ORDERS)]
    t0 = time.monotonic()
    watchers = []
    for b in range(0, N_WATCHERS, CONNECT_BATCH):
        watchers += await asyncio.gather(*(
            connect(env, orders[i % N_ORDERS], f"127.0.0.{1 + i % N_ADDRS}")
            for i in range(b, b + CONNECT_BATCH)))
    for w in watchers:
        snap = await w.snapshot(timeout=20)
        ck(snap.get("order_id") == w.path.rsplit("/", 1)[1], f"{w.path}: snapshot {snap!r}")
    print(f"{len(watchers)} watchers connected with their snapshots in "
          f"{time.monotonic() - t0:.1f} s")
    cursors = {}
    for k, o in enumerate(orders):
        cursors[o] = await env.aapply(h.update(o, base + k, lat=50.0, lng=8.0,
                                               status="picked_up"))
    for w in watchers:
        f = await w.update(timeout=20)
        ck(f.get("cursor") == cursors[w.path.rsplit("/", 1)[1]], f"{w.path}: update {f!r}")
    ck.done()
    print(f"every watcher got its order's update ({time.monotonic() - t0:.1f} s)")

    proc = env.daemon.proc
    env.daemon.terminated = True
    t1 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    exit_wait = asyncio.ensure_future(asyncio.to_thread(proc.wait, DRAIN + 2 + 30))

    def refused():
        try:
            socket.create_connection(("127.0.0.1", env.port), timeout=2).close()
            return False
        except OSError:
            return True
    # The listening socket is closed as SIGTERM is handled: polled for (2 s).
    try:
        await h.async_wait_until(refused, 2, what="a new TCP connection refused after SIGTERM")
        print(f"new connections refused {time.monotonic() - t1:.2f} s after SIGTERM, "
              f"{sum(1 for w in watchers if w.closed.is_set())} watchers closed by then")
    except h.TestFailure as e:
        ck(False, f"{e}: the listening socket should be closed at once")

    codes = {}
    no_reason = 0
    for w in watchers:
        try:
            left = DRAIN + 2 - (time.monotonic() - t1)
            code, reason = await w.wait_closed(timeout=max(0.1, left))
        except h.TestFailure:
            code, reason = "not closed", None
        codes[code] = codes.get(code, 0) + 1
        if code == 1001 and not reason:
            no_reason += 1
    closed_in = time.monotonic() - t1
    print(f"closes {closed_in:.2f} s after SIGTERM: {codes}")
    ck(codes.get(1001, 0) == N_WATCHERS, f"close codes after SIGTERM: {codes}, want "
       f"{{1001: {N_WATCHERS}}}")
    ck(no_reason == 0, f"{no_reason} 1001 closes without a reason")

    try:
        rc = await asyncio.wait_for(exit_wait, max(0.1, DRAIN + 2 - (time.monotonic() - t1)))
    except asyncio.TimeoutError:
        rc = None
    took = time.monotonic() - t1
    print(f"trackgated exited with {rc} {took:.2f} s after SIGTERM (--drain-timeout {DRAIN})")
    if rc is None:
        proc.kill()
        await exit_wait
        ck(False, f"trackgated did not exit within --drain-timeout {DRAIN} + 2 s of SIGTERM")
    else:
        ck(rc == 0, f"exit status {rc} after SIGTERM, want 0")
    log = h.tail(env.daemon.log, 200)
    ck("shutting_down why=SIGTERM" in log, "no shutting_down line in the log")
    ck("exited status=0" in log, "no `exited status=0` line in the log")
    ck("drain_timeout" not in log, "the daemon waited for the drain timeout although every "
       "client answered its close")
    try:
        socket.create_connection(("127.0.0.1", env.port), timeout=1).close()
        ck(False, "the port still accepts connections after the exit")
    except OSError:
        pass
    ck.done()


if __name__ == "__main__":
    h.main(test, daemon_args=["--drain-timeout", str(DRAIN)])
