#!/usr/bin/python3
"""integration.slow_watcher: one watcher that stops reading delays nobody.

Two watchers of one order; one stops reading (its socket has a small receive
buffer and the client pauses reading).  Updates are posted in batches until
trackgated drops the stuck one (its output queue passes --outq-limit).  The
reading watcher must get every update, in order, without being dropped; the
stuck one, once it reads again, finds some of the updates (in order, each as
posted) and then close code 4408 with a reason.  The daemon stays healthy and
the order stays subscribed.  The drop comes within a few hundred updates: the
socket's kernel send buffer is bounded by send-buffer (64 KiB by default).
"""
import asyncio
import os
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

OUTQ_LIMIT = 65536
MAX_BATCHES = 400  # 40 000 updates of ~460 bytes: far more than the kernel buffers hold


async def test(env):
    oid = f"slow-{os.getpid()}"
    base = h.now_ms() - 3_600_000

    # The stuck watcher: a small receive buffer, set before connecting.
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", env.port))
    stuck = h.Watcher(env.port, f"/v1/track/{oid}")
    stuck.ws = await h.websockets.connect(stuck.url, sock=s, ping_interval=None, max_queue=None,
                                          close_timeout=5)
    stuck._task = asyncio.ensure_future(stuck._reader())
    env.watchers.append(stuck)
    await stuck.snapshot()
    reader = await env.watch(oid)
    stuck.ws.transport.pause_reading()

    courier = {"id": "c" * 128, "name": "n" * 128, "vehicle": "v" * 32}
    posted = {}  # cursor -> update
    order = []
    dropped = False
    t0 = time.monotonic()
    offset = os.path.getsize(env.daemon.log)
    for b in range(MAX_BATCHES):
        batch = [h.update(oid, base + b * 100 + i, lat=10 + i / 1000, lng=20 + b / 1000,
                          status="en_route_to_dropoff", courier=courier) for i in range(100)]
        results = await env.apost_ok(batch)
        for u, r in zip(batch, results):
            h.check(r.get("result") == "applied", f"batch {b}: {r!r}")
            posted[r["cursor"]] = u
            order.append(r["cursor"])
        with open(env.daemon.log, "rb") as f:
            f.seek(offset)
            if b"watcher_dropped" in f.read():
                dropped = True
                break
    took = time.monotonic() - t0
    print(f"posted {len(order)} updates in {took:.2f} s; stuck watcher dropped: {dropped}")
    h.check(dropped, f"the stuck watcher was not dropped after {len(order)} updates "
            f"(--outq-limit {OUTQ_LIMIT})")
    # Push-back comes within outq-limit plus the kernel's buffers, which send-buffer
    # (default 64 KiB) bounds: a few hundred of these ~600-byte frames.  With the
    # kernel's autotuning it took 5 300 (megabytes held in the kernel for one client).
    h.check(len(order) <= 1500, f"the stuck watcher was dropped only after {len(order)} updates: "
            "the kernel's send buffer is not bounded (send-buffer)")

    # The reading watcher got everything, in order, and is still open.
    for i, cursor in enumerate(order):
        f = await reader.update(timeout=10)
        h.check(f.get("cursor") == cursor and f.get("update") == posted[cursor],
                f"reading watcher, update {i}: expected {cursor}, got {f.get('cursor')!r}")
    h.check(not reader.closed.is_set(),
            f"the reading watcher was closed: {reader.close_code} {reader.close_reason!r}")
    h.check_eq(env.redis.numsub(f"trk:{{{oid}}}"), 1, "subscribers while the reader remains")

    # The stuck watcher, reading again: updates in order (each as posted), then 4408.
    stuck.ws.transport.resume_reading()
    code, reason = await stuck.wait_closed(timeout=10)
    got = stuck.frames[1:]
    h.check_eq(code, 4408, f"close code of the stuck watcher (reason {reason!r})")
    h.check(reason, "the 4408 close needs a readable reason")
    odd = [f for f in got if f.get("type") != "update"]
    h.check(not odd, f"the stuck watcher got a non-update frame: {odd[:1]!r}")
    cursors = [h.parse_cursor(f["cursor"]) for f in got]
    h.check(all(a < b for a, b in zip(cursors, cursors[1:])),
            "the stuck watcher's frames are not in cursor order")
    for f in got:
        h.check(posted.get(f["cursor"]) == f.get("update"),
                f"the stuck watcher got a frame that was not posted: {f!r}")
    print(f"the stuck watcher read {len(got)} of {len(order)} updates before its 4408")

    # Everyone else is unaffected.
    r = await asyncio.to_thread(env.http, "GET", "/readyz")
    h.check_eq(r.status, 200, "/readyz after dropping a slow watcher")
    u = h.update(oid, base + 10 ** 6, status="at_dropoff")
    c = await env.aapply(u)
    f = await reader.update()
    h.check(f.get("cursor") == c and f.get("update") == u, f"an update after the drop: {f!r}")


if __name__ == "__main__":
    h.main(test, daemon_args=["--outq-limit", str(OUTQ_LIMIT)])
