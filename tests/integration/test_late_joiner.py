#!/usr/bin/python3
"""integration.late_joiner: a watcher that joins after updates gets the newest state.

Its snapshot holds the merged state (newest location, newest status, eta,
courier, provider, updated_at) and the cursor of the last applied update;
then it receives the updates posted after it joined, and nothing older.
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


async def test(env):
    oid = f"late-{os.getpid()}"
    other = f"late-other-{os.getpid()}"
    base = h.now_ms() - 60_000
    early = await env.watch(oid)

    # A history: status changes, locations, an eta and a courier; the newest
    # location is not in the newest update.
    history = [
        h.update(oid, base + 0, status="created"),
        h.update(oid, base + 10, status="courier_assigned",
                 courier={"id": "c-17", "name": "Ada", "vehicle": "bike"}),
        h.update(oid, base + 20, lat=52.5200, lng=13.4050),
        h.update(oid, base + 30, lat=52.5210, lng=13.4061, status="picked_up"),
        h.update(oid, base + 40, eta={"dropoff": base + 900_000}),
        h.update(oid, base + 50, lat=52.5230, lng=13.4077),
        h.update(oid, base + 60, status="en_route_to_dropoff"),
    ]
    cursors = [await env.aapply(u) for u in history]
    # Another order's update must not leak into this order's snapshot.
    await env.aapply(h.update(other, base + 70, lat=1.0, lng=1.0, status="delivered"))
    for i in range(len(history)):
        f = await early.update()
        h.check_eq(f.get("cursor"), cursors[i], f"early watcher, update {i}")

    late = await env.watch(oid)
    snap = late.frames[0]
    h.check_eq(snap.get("cursor"), cursors[-1], "late snapshot cursor = last applied cursor")
    st = snap.get("state")
    h.check(isinstance(st, dict), f"late snapshot has no state: {snap!r}")
    h.check_eq(st.get("order_id"), oid, "state.order_id")
    h.check_eq(st.get("status"), "en_route_to_dropoff", "state.status (newest)")
    h.check_eq(st.get("status_ts"), base + 60, "state.status_ts")
    loc = st.get("location") or {}
    h.check_eq((loc.get("lat"), loc.get("lng"), loc.get("ts")), (52.5230, 13.4077, base + 50),
               "state.location (newest)")
    eta = st.get("eta") or {}
    h.check_eq((eta.get("dropoff"), eta.get("ts")), (base + 900_000, base + 40), "state.eta")
    h.check_eq(st.get("courier"), {"id": "c-17", "name": "Ada", "vehicle": "bike"}, "state.courier")
    h.check_eq(st.get("provider"), "itest", "state.provider")
    h.check_eq(st.get("updated_at"), base + 60, "state.updated_at")
    h.check_eq(late.pending(), [], "late watcher: frames right after the snapshot")

    # The stored state agrees with the snapshot (the snapshot is Redis's state, verbatim).
    stored = env.redis.cli("HGET", f"trk:{{{oid}}}:state", "cursor")
    h.check_eq(stored, cursors[-1], "trk:{ID}:state cursor in Redis")

    # Subsequent updates reach both watchers, in order.
    more = [h.update(oid, base + 80, lat=52.5240, lng=13.4080),
            h.update(oid, base + 90, status="at_dropoff")]
    more_cursors = [await env.aapply(u) for u in more]
    for name, w in (("late", late), ("early", early)):
        for u, c in zip(more, more_cursors):
            f = await w.update()
            h.check(f.get("cursor") == c and f.get("update") == u,
                    f"{name} watcher: expected {u!r} at {c}, got {f!r}")
        h.check(h.parse_cursor(more_cursors[0]) > h.parse_cursor(cursors[-1]),
                "cursors after the snapshot must be greater than its cursor")
        h.check_eq(w.pending(), [], f"{name} watcher: extra frames")

    # TTLs: refreshed on each update; the shorter terminal one after "delivered".
    for key in ("state", "log"):
        ttl = int(env.redis.cli("TTL", f"trk:{{{oid}}}:{key}"))
        h.check(86400 - 60 < ttl <= 86400, f"TTL of trk:{{ID}}:{key} while active: {ttl}")
    h.check(int(env.redis.cli("TTL", f"trk:{{{other}}}:state")) <= 3600,
            "TTL of a delivered order's state must be the terminal one (<= 3600)")

    # A third watcher now sees the newest status and location again.
    last = await env.watch(oid)
    st = last.frames[0]["state"]
    h.check_eq(last.frames[0]["cursor"], more_cursors[-1], "third snapshot cursor")
    h.check_eq((st["status"], st["location"]["lat"], st["location"]["lng"]),
               ("at_dropoff", 52.5240, 13.4080), "third snapshot state")


if __name__ == "__main__":
    h.main(test)
