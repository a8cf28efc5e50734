#!/usr/bin/python3
"""integration.shutdown: SIGTERM closes every watcher with 1001 and exits 0.

Phase 1: watchers of two orders are connected (plus an idle keep-alive HTTP
connection and a half-sent request, which must not hold the exit up).  After
SIGTERM each watcher sees close code 1001 with a reason, trackgated exits 0
within a few seconds without waiting for its drain timeout, and the port no
longer accepts connections.

Phase 2: a new trackgated with --drain-timeout 2 and one watcher that never
reads (so never acknowledges the close): the other watchers still get 1001 at
once, /healthz on a kept-alive connection answers 503 while draining, and the
process still exits 0 once the drain timeout has passed.
"""
import asyncio
import http.client
import os
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

EXIT_WITHIN = 5.0
DRAIN = 2


def keepalive_healthz(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/healthz")
    r = conn.getresponse()
    r.read()
    h.check_eq(r.status, 200, "keep-alive /healthz")
    return conn


async def sigterm(env):
    """Sends SIGTERM; returns a future of the exit status (waited for in a thread)."""
    proc = env.daemon.proc
    env.daemon.terminated = True
    proc.send_signal(signal.SIGTERM)
    return asyncio.ensure_future(asyncio.to_thread(proc.wait, 10 + EXIT_WITHIN + DRAIN))


async def expect_1001(watchers, timeout):
    for w in watchers:
        code, reason = await w.wait_closed(timeout=timeout)
        h.check(code == 1001, f"{w.path}: close code {code} ({reason!r}), want 1001 "
                f"(frames {w.frames!r})")
        h.check(reason, f"{w.path}: the 1001 close has no reason")


async def phase1(env):
    orders = [f"shut-a-{os.getpid()}", f"shut-b-{os.getpid()}"]
    base = h.now_ms() - 60_000
    watchers = [await env.watch(o) for o in orders for _ in range(3)]
    for o in orders:
        await env.aapply(h.update(o, base, status="picked_up"))
    for w in watchers:
        await w.update()
    idle = keepalive_healthz(env.port)
    half = socket.create_connection(("127.0.0.1", env.port))
    half.sendall(b"POST /v1/updates HTTP/1.1\r\nHost: t\r\nContent-Le")

    t0 = time.monotonic()
    exit_wait = await sigterm(env)
    # The closes are awaited on the loop (the client must answer the close
    # frames) while a thread waits for the process.
    await expect_1001(watchers, EXIT_WITHIN)
    try:
        rc = await exit_wait
    except Exception as e:
        raise h.TestFailure(f"trackgated did not exit after SIGTERM: {e!r}")
    took = time.monotonic() - t0
    print(f"phase 1: trackgated exited {rc} {took:.2f} s after SIGTERM")
    h.check_eq(rc, 0, "exit status after SIGTERM")
    h.check(took < EXIT_WITHIN, f"trackgated took {took:.2f} s to exit (want < {EXIT_WITHIN} s)")
    idle.close()
    half.close()

    log = h.tail(env.daemon.log, 400)
    h.check("shutting_down why=SIGTERM" in log, "no shutting_down line in the log")
    h.check("drain_timeout" not in log, "phase 1 waited for the drain timeout instead of finishing")
    try:
        socket.create_connection(("127.0.0.1", env.port), timeout=1).close()
        h.check(False, "the port still accepts connections after the exit")
    except ConnectionRefusedError:
        pass


async def phase2(env):
    env.daemon.extra_args = ["--drain-timeout", str(DRAIN)]
    env.daemon.terminated = False
    env.daemon.start()
    oid = f"shut-c-{os.getpid()}"
    stuck = await env.watch(oid)
    others = [await env.watch(oid) for _ in range(2)]
    idle = keepalive_healthz(env.port)
    stuck.ws.transport.pause_reading()  # never sees (nor answers) the close frame

    t0 = time.monotonic()
    exit_wait = await sigterm(env)
    await expect_1001(others, EXIT_WITHIN)  # the drain has begun: /healthz must say so
    if not exit_wait.done():
        idle.request("GET", "/healthz")
        r = idle.getresponse()
        body = r.read()
        h.check_eq(r.status, 503, f"/healthz while draining ({body!r})")
        h.check(b'"error"' in body and b'"message"' in body, f"/healthz 503 body: {body!r}")
    idle.close()
    try:
        rc = await exit_wait
    except Exception as e:
        raise h.TestFailure(f"trackgated did not exit after SIGTERM with a stuck watcher: {e!r}")
    took = time.monotonic() - t0
    print(f"phase 2: trackgated exited {rc} {took:.2f} s after SIGTERM (drain-timeout {DRAIN})")
    h.check_eq(rc, 0, "exit status after a drain timeout")
    h.check(took < DRAIN + EXIT_WITHIN, f"took {took:.2f} s with --drain-timeout {DRAIN}")
    stuck.ws.transport.abort()


async def test(env):
    await phase1(env)
    await phase2(env)


if __name__ == "__main__":
    h.main(test)
