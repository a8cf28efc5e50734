#!/usr/bin/python3
"""integration.attack: silent and slow connections do not starve anyone else.

lws 4.1 keeps a bounded pool of header tables (256 here) and every connection
it adopted held one until http-timeout, so 400 connections dribbling their
headers a byte a second, or thousands that send nothing, made every new
/healthz, POST and websocket upgrade wait for http-timeout or fail.  The
listener now keeps such connections in its lobby, where they hold no lws
state, and adopts a connection once its request head is complete.

trackgated runs with --http-timeout 30 (so a starved client would wait 30 s),
--max-pending-per-client 100000 (so the lobby itself, not the per-address
cap, is what protects; phase 3 checks the cap).  During each attack a
legitimate client makes 100 /healthz requests and 30 websocket upgrades (each
with its snapshot), every one with a 5 s deadline, and the test prints their
p50 and p99:

1. 400 connections, each sending "GET /healthz HTTP/1.1\\r\\n" and then one
   header byte per second, from 10 loopback addresses;
2. 5 000 TCP connections that send nothing, from 100 loopback addresses
   (trackgate_connections{state="pending"} shows them all held);
3. with the default cap (a second trackgated): 200 silent connections from
   one address, of which max-pending-per-client (64) are kept and the rest
   closed at accept (trackgate_pending_closed_total{reason="max_pending_per_client"}).
Afterwards silent connections are closed after first-byte-timeout (counted).
The p99 figures are information; what is asserted is that every legitimate
request was answered (the old build failed them all after 256 attackers).
"""
import asyncio
import os
import socket
import statistics
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

DEADLINE = 5.0


def open_from(port, addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((addr, 0))
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    return s


class Dribblers:
    """n connections sending a request line, then a header byte per second (bounded)."""

    def __init__(self, port, n, addrs):
        self.socks = [open_from(port, addrs[i % len(addrs)]) for i in range(n)]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self):
        first = True
        for _ in range(60):  # at most a minute
            for s in self.socks:
                try:
                    s.send(b"GET /healthz HTTP/1.1\r\n" if first else b"x")
                except OSError:
                    pass
            first = False
            if self.stop.wait(1.0):  # the attack's pace
                return

    def close(self):
        self.stop.set()
        self.thread.join(10)
        for s in self.socks:
            s.close()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


async def legit(env, oid, what):
    """100 /healthz and 30 upgrades, each with a deadline; returns the latencies."""
    http_ms, ws_ms = [], []
    for _ in range(100):
        t0 = time.monotonic()
        r = await asyncio.to_thread(h.http_request, env.port, "GET", "/healthz", None, None,
                                    DEADLINE)
        http_ms.append((time.monotonic() - t0) * 1000)
        h.check(r.status == 200, f"{what}: /healthz {r!r}")
    for _ in range(30):
        t0 = time.monotonic()
        w = h.Watcher(env.port, f"/v1/track/{oid}")
        await w.connect(timeout=DEADLINE)
        await w.snapshot(timeout=DEADLINE)
        ws_ms.append((time.monotonic() - t0) * 1000)
        await w.close()
    print(f"{what}: /healthz p50 {statistics.median(http_ms):.1f} ms p99 {pct(http_ms, 99):.1f} ms; "
          f"websocket upgrade + snapshot p50 {statistics.median(ws_ms):.1f} ms "
          f"p99 {pct(ws_ms, 99):.1f} ms")
    return http_ms, ws_ms


async def test(env):
    env.daemon.extra_args += ["--http-timeout", "30", "--max-pending-per-client", "100000",
                              "--max-connections", "18000"]
    env.start()
    oid = f"atk-{os.getpid()}"
    await env.aapply(h.update(oid, h.now_ms(), lat=52.5, lng=13.4))
    await legit(env, oid, "no attack")

    print("--- 1. 400 dribblers")
    d = Dribblers(env.port, 400, [f"127.0.10.{i + 1}" for i in range(10)])
    d.thread.start()
    try:
        await env.wait_metric('trackgate_connections{state="pending"}', lambda v: (v or 0) >= 400,
                              10)
        await legit(env, oid, "400 dribblers")
    finally:
        d.close()

    print("--- 2. 5 000 silent connections")
    silent = [open_from(env.port, f"127.0.{20 + i // 250}.{i % 250 + 1}") for i in range(5000)]
    try:
        await env.wait_metric('trackgate_connections{state="pending"}',
                              lambda v: (v or 0) >= 5000, 20)
        await legit(env, oid, "5 000 silent connections")
    finally:
        for s in silent:
            s.close()
    await env.wait_metric('trackgate_connections{state="pending"}', 0, 20)

    print("--- 3. the per-address cap, and first-byte-timeout")
    capped_dir = os.path.join(env.log_dir, "capped")
    os.makedirs(capped_dir, exist_ok=True)
    capped = h.Daemon(env.args.trackgated, env.redis.sock, env.key_file, capped_dir,
                      ["--first-byte-timeout", "1"])
    capped.start()
    try:
        socks = [open_from(capped.port, "127.0.30.1") for _ in range(200)]
        await asyncio.to_thread(h.wait_until, lambda: h.scrape_metrics(capped.port).get(
            'trackgate_pending_closed_total{reason="max_pending_per_client"}', 0) >= 136, 10,
            what="136 connections past max-pending-per-client closed")
        kept = h.scrape_metrics(capped.port).get('trackgate_connections{state="pending"}')
        print(f"200 silent connections from one address: {kept:.0f} kept, the rest closed")
        h.check(kept == 64, f"pending connections from one address: {kept}, want 64")
        r = await asyncio.to_thread(h.http_request, capped.port, "GET", "/healthz", None, None,
                                    DEADLINE)
        h.check(r.status == 200, f"/healthz beside the capped attacker: {r!r}")
        await asyncio.to_thread(h.wait_until, lambda: h.scrape_metrics(capped.port).get(
            'trackgate_pending_closed_total{reason="first_byte_timeout"}', 0) >= 64, 10,
            what="the 64 silent connections closed after first-byte-timeout 1 s")
        for s in socks:
            s.close()
    finally:
        await asyncio.to_thread(capped.terminate)
    print("PASS checks")


if __name__ == "__main__":
    h.main(test, start=False)
