#!/usr/bin/python3
"""integration.redis_down: Redis goes away and comes back on the same socket.

While it is down: /readyz 503, POST /v1/updates 503 with a JSON error, /healthz
still 200, and connected watchers stay connected.  After redis-server is
restarted on the same unix socket: /readyz is 200 again within 10 s, the order
is subscribed again, POSTs are applied, and a watcher connected throughout
(and one that joined during the outage) receives the new updates, possibly
after a fresh snapshot (README: "When the subscriber comes back, every watched
order is subscribed again, and each watcher gets a fresh snapshot").

trackgated's two Redis connections (subscriber, commands) reconnect on their
own jittered backoff timers, so which one is back first varies from run to
run.  The outage is repeated (up to MAX_CYCLES times) until both orders have
been seen, so that both paths are exercised in one run.
"""
import asyncio
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

RECOVERY_TIMEOUT = 10.0
MIN_CYCLES = 2
MAX_CYCLES = 8


def log_size(env):
    try:
        return os.path.getsize(env.daemon.log)
    except OSError:
        return 0


def reconnect_order(env, offset):
    """The order of the redis_connected lines logged since offset: e.g. ['subscriber', 'commands']."""
    with open(env.daemon.log, "rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", "replace")
    return re.findall(r" redis_connected conn=(\w+)", text)


async def next_update(w, what, order, cursor):
    """The frame that brings cursor: its update frame, skipping the fresh snapshots a resync
    may send, or a resync snapshot that already holds it (a sync read after the update
    was applied covers it, and its frame is then not sent again)."""
    while True:
        if w.closed.is_set() and w._queue.empty():
            raise h.TestFailure(
                f"{w.path}: a watcher connected throughout the Redis restart was closed with "
                f"{w.close_code} {w.close_reason!r} after Redis came back (reconnect order "
                f"{order}); frames: {w.frames!r}")
        f = await w.next(what=what)
        if f.get("type") == "snapshot":
            h.check_eq(f.get("order_id"), w.path.rsplit("/", 1)[1], f"{w.path}: resync snapshot")
            if f.get("cursor") and h.parse_cursor(f["cursor"]) >= h.parse_cursor(cursor):
                return f
            continue
        h.check_eq(f.get("type"), "update", f"{w.path}: frame type")
        return f


async def outage(env, oid, watchers, base, cycle):
    env.redis.stop()
    r = await h.async_wait_until(
        lambda: (lambda r: r if r.status == 503 else None)(env.http("GET", "/readyz")), 5.0,
        what="/readyz 503 once Redis is down")
    h.check(isinstance(r.json, dict) and r.json.get("error") == "redis_unavailable" and
            r.json.get("message"), f"/readyz 503 body: {r!r}")
    h.check_eq(env.http("GET", "/healthz").status, 200, "/healthz while Redis is down")

    u = h.update(oid, base + 1, status="picked_up")
    for body, label in ((u, "one update"), ([u, u], "a batch")):
        r = await env.apost(body)
        h.check_eq(r.status, 503, f"POST {label} while Redis is down: {r!r}")
        h.check(isinstance(r.json, dict) and r.json.get("error") and r.json.get("message"),
                f"POST {label} while Redis is down: the 503 needs a JSON error: {r!r}")
    r = await env.apost(u, key="wrong-key-wrong-key-wrong")
    h.check_eq(r.status, 401, "a bad key while Redis is down")

    # A watcher joining during the outage waits for its snapshot.  Once the daemon counts
    # it (its join was handled), none of them may have been closed.
    joiner = await env.watch(oid, snapshot=False)
    await env.wait_metric('trackgate_connections{state="websocket"}', lambda n: n == len(
        watchers) + 1 or any(w.closed.is_set() for w in watchers + [joiner]))
    for w in watchers + [joiner]:
        h.check(not w.closed.is_set(), f"cycle {cycle}: {w.path} closed during the outage: "
                f"{w.close_code} {w.close_reason!r}")

    offset = log_size(env)
    t0 = time.monotonic()
    env.redis.start()
    await h.async_wait_until(lambda: env.http("GET", "/readyz").status == 200, RECOVERY_TIMEOUT,
                             what="/readyz 200 after Redis is back")
    took = time.monotonic() - t0
    order = reconnect_order(env, offset)
    print(f"cycle {cycle}: ready {took:.2f} s after redis-server restarted; reconnect order {order}")

    # The watchers must still be there, and get a fresh snapshot / the new updates.
    snap_or_close = await joiner.next(timeout=5.0, what="the outage joiner's snapshot") \
        if not joiner.closed.is_set() else None
    for w in watchers + [joiner]:
        h.check(not w.closed.is_set(),
                f"cycle {cycle}: {w.path} was closed with {w.close_code} {w.close_reason!r} after "
                f"Redis came back (reconnect order {order}); trackgated must resync it instead")
    h.check(snap_or_close and snap_or_close.get("type") == "snapshot",
            f"the outage joiner's first frame: {snap_or_close!r}")
    watchers.append(joiner)
    await h.async_wait_until(lambda: env.redis.numsub(f"trk:{{{oid}}}") == 1, 5.0,
                             what="the order to be subscribed again")

    fresh = h.update(oid, base + 2, lat=45.0 + cycle, lng=7.0, status="en_route_to_dropoff")
    cursor = await env.aapply(fresh)
    for w in watchers:
        f = await next_update(w, f"the first update after Redis came back (cycle {cycle})", order,
                              cursor)
        if f.get("type") == "snapshot":
            st = f.get("state") or {}
            h.check(f.get("cursor") == cursor and st.get("status") == fresh["status"] and
                    (st.get("location") or {}).get("lat") == fresh["location"]["lat"],
                    f"{w.path}: a resync snapshot covering {cursor} must hold {fresh!r}: {f!r}")
        else:
            h.check(f.get("cursor") == cursor and f.get("update") == fresh,
                    f"{w.path}: expected {fresh!r} at {cursor}, got {f!r}")
        h.check_eq(w.pending(), [], f"{w.path}: extra frames after the update")
    return order[0] if order else None


async def test(env):
    oid = f"down-{os.getpid()}"
    base = h.now_ms() - 60_000
    w = await env.watch(oid)
    c = await env.aapply(h.update(oid, base, lat=45.0, lng=7.0, status="created"))
    f = await w.update()
    h.check_eq(f.get("cursor"), c, "update before the outage")
    watchers = [w]
    firsts = set()
    for cycle in range(1, MAX_CYCLES + 1):
        base += 100
        firsts.add(await outage(env, oid, watchers, base, cycle))
        if cycle >= MIN_CYCLES and {"subscriber", "commands"} <= firsts:
            break
    else:
        print(f"note: in {MAX_CYCLES} cycles the first connection back was always {firsts}")
    h.check(not w.closed.is_set(), "the first watcher must have stayed connected throughout")

    # A late joiner sees the state written after the restarts.
    late = await env.watch(oid)
    st = late.frames[0]["state"]
    h.check(st is not None and st.get("status") == "en_route_to_dropoff",
            f"snapshot after the restarts: {late.frames[0]!r}")


if __name__ == "__main__":
    h.main(test)
