#!/usr/bin/python3
"""integration.status_rank: a Wolt Drive status never moves backwards along the course.

The rule lives in the Redis script (proto/apply_update.lua, "Status rank" in
proto/README.md): providers deliver webhooks out of order, and some give no
event time, so a late event from an earlier step can carry a newer ts.

1. picked_up applies.
2. en_route_to_pickup with a newer ts, alone: "stale", no frame, state kept.
3. at_pickup with a newer ts, a location and an ETA: "applied", and the frame
   and the state carry the location only (the status and the ETA of the
   earlier step do not apply).
4. at_dropoff, then delivered: forward moves apply.
5. en_route_to_dropoff after delivered with a location: "withheld" (the
   status is refused, the position hidden after the end).
6. The four terminal statuses share the last rank: a newer failed replaces
   delivered (judged by ts alone).
7. The other rules still hold: a repeated event_id is "duplicate", an older
   update of a higher status is "stale".
8. Only the providers in the script's RANKED (Wolt Drive, which gives no event
   time) are ranked: for others (and /v1/updates) ts is the only order, and a
   newer lower status applies (Onfleet's taskUnassigned goes back to created).
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def update(*a, **kw):
    """An update from Wolt Drive, whose statuses are ranked (RANKED in the script)."""
    kw.setdefault("provider", "wolt_drive")
    return h.update(*a, **kw)


async def result(env, u):
    res = await env.apost_ok(u)
    h.check(len(res) == 1, f"one result for one update: {res!r}")
    return res[0]


def state_of(env, oid):
    r = env.http("GET", f"/v1/orders/{oid}")
    h.check(r.status == 200, f"GET /v1/orders/{oid}: {r!r}")
    return r.json.get("state") or {}


async def test(env):
    oid = f"rank-{os.getpid()}"
    t = h.now_ms() - 60_000
    w = await env.watch(oid)

    print("--- 1. picked_up")
    a = update(oid, t + 1000, lat=52.50, lng=13.40, status="picked_up",
                 eta={"dropoff": t + 900_000}, event_id="ev-a")
    ca = await env.aapply(a)

    print("--- 2. a late en_route_to_pickup with a newer ts, alone")
    r = await result(env, update(oid, t + 2000, status="en_route_to_pickup"))
    h.check_eq(r.get("result"), "stale", "a lower status with a newer ts")
    h.check("cursor" not in r, f"a stale result carries no cursor: {r!r}")
    st = state_of(env, oid)
    h.check_eq((st.get("status"), st.get("status_ts")), ("picked_up", t + 1000), "status kept")

    print("--- 3. a late at_pickup with a newer ts, a location and an ETA")
    r = await result(env, update(oid, t + 3000, lat=52.51, lng=13.41, status="at_pickup",
                                   eta={"pickup": t + 100_000, "dropoff": t + 1_200_000}))
    h.check_eq(r.get("result"), "applied", "a lower status with a newer location")
    c3 = r["cursor"]
    st = state_of(env, oid)
    h.check_eq((st.get("status"), st.get("status_ts")), ("picked_up", t + 1000),
               "the status after a lower one with a location")
    h.check_eq((st["location"]["lat"], st["location"]["ts"]), (52.51, t + 3000),
               "the newer location applies")
    h.check_eq(st.get("eta", {}).get("dropoff"), t + 900_000,
               "the ETA of the earlier step does not apply")
    h.check("pickup" not in st.get("eta", {}), f"no pickup ETA stored: {st!r}")

    print("--- 4. at_dropoff, then delivered")
    c4 = await env.aapply(update(oid, t + 4000, lat=52.52, lng=13.42, status="at_dropoff"))
    c5 = await env.aapply(update(oid, t + 5000, status="delivered"))

    print("--- 5. en_route_to_dropoff after delivered, with a location")
    r = await result(env, update(oid, t + 6000, lat=52.53, lng=13.43,
                                   status="en_route_to_dropoff"))
    h.check_eq(r.get("result"), "withheld", "a lower status with a location after the end")
    st = state_of(env, oid)
    h.check_eq(st.get("status"), "delivered", "delivered kept")
    h.check("location" not in st or st["location"] is None, f"no location after the end: {st!r}")

    print("--- 6. terminal statuses share the last rank")
    c7 = await env.aapply(update(oid, t + 7000, status="failed"))
    h.check_eq(state_of(env, oid).get("status"), "failed", "a newer terminal status applies")

    print("--- 7. the other rules still hold")
    r = await result(env, a)
    h.check_eq(r.get("result"), "duplicate", "a repeated event_id")
    oid2 = f"rank2-{os.getpid()}"
    await env.aapply(update(oid2, t + 2000, status="at_pickup"))
    r = await result(env, update(oid2, t + 1000, status="picked_up"))
    h.check_eq(r.get("result"), "stale", "a higher status with an older ts")
    h.check_eq(state_of(env, oid2).get("status"), "at_pickup", "the older higher status is refused")

    print("--- 8. other providers keep ts as the only order: a status may really go back")
    oid3 = f"rank3-{os.getpid()}"
    await env.aapply(h.update(oid3, t + 1000, status="courier_assigned"))
    r = await result(env, h.update(oid3, t + 2000, status="created"))  # Onfleet's taskUnassigned
    h.check_eq(r.get("result"), "applied", "an unranked provider's newer lower status")
    h.check_eq(state_of(env, oid3).get("status"), "created", "the status went back")

    print("--- the watcher's frames")
    f = await w.update()
    h.check_eq((f.get("cursor"), f.get("update")), (ca, a), "frame 1: picked_up")
    f = await w.update()
    h.check_eq(f.get("cursor"), c3, "frame 2: the location of the late at_pickup")
    got = f.get("update") or {}
    h.check("status" not in got and "eta" not in got,
            f"the frame of a lower status carries neither it nor its ETA: {got!r}")
    h.check_eq(got.get("location", {}).get("lat"), 52.51, "frame 2 location")
    for i, (cursor, status) in enumerate(((c4, "at_dropoff"), (c5, "delivered"), (c7, "failed"))):
        f = await w.update()
        h.check_eq((f.get("cursor"), (f.get("update") or {}).get("status")), (cursor, status),
                   f"frame {3 + i}")
    h.check_eq(w.pending(), [], "no frame for a stale or withheld update")
    print("PASS checks")


if __name__ == "__main__":
    h.main(test)
