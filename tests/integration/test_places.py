#!/usr/bin/python3
"""integration.places: the pickup and dropoff places of an order.

The script (proto/apply_update.lua) merges places by member, each with its
own ts: an update naming only the dropoff keeps the stored pickup, a pickup
older than the stored pickup is stale (whatever the dropoff's time), and a
frame carries only the places that applied.  The snapshot and
GET /v1/orders/{ID} show the merged places.
"""
import asyncio
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

PICKUP = {"lat": 52.5, "lng": 13.4}
DROPOFF = {"lat": 52.53, "lng": 13.42}
DROPOFF2 = {"lat": 52.54, "lng": 13.43}


async def test(env):
    oid = f"places-{os.getpid()}"
    base = h.now_ms() - 60_000
    w = await env.watch(oid)

    # courier_assigned: a courier is on it, so its position shows (courier-visible-from).
    a = h.update(oid, base + 1000, places={"pickup": PICKUP, "dropoff": DROPOFF},
                 status="courier_assigned")
    ca = await env.aapply(a)
    # Only the dropoff moves: the pickup stays.
    b = h.update(oid, base + 2000, places={"dropoff": DROPOFF2})
    cb = await env.aapply(b)
    # A pickup older than the stored pickup: stale, nothing published.
    old = h.update(oid, base + 500, places={"pickup": {"lat": 1.0, "lng": 1.0}})
    r = (await env.apost_ok(old))[0]
    h.check_eq(r.get("result"), "stale", "a pickup older than the stored pickup")
    # Late, but newer than the stored pickup (1000) though older than the dropoff (2000):
    # the pickup applies, the stale dropoff does not, and the frame carries the pickup only.
    pickup2 = {"lat": 52.501, "lng": 13.401}
    late = h.update(oid, base + 1500, places={"pickup": pickup2, "dropoff": {"lat": 2.0, "lng": 2.0}})
    rl = (await env.apost_ok(late))[0]
    h.check_eq(rl.get("result"), "applied", "a late pickup newer than the stored pickup")
    # Places stale, location fresh: applied, the frame carries no places.
    c = h.update(oid, base + 1400, lat=52.51, lng=13.41, places={"pickup": {"lat": 2.0, "lng": 2.0}})
    rc = (await env.apost_ok(c))[0]
    h.check_eq(rc.get("result"), "applied", "fresh location with stale places")

    for i, (u, cursor) in enumerate(((a, ca), (b, cb))):
        f = await w.update()
        h.check_eq((f.get("cursor"), f.get("update")), (cursor, u), f"frame {i}")
    f = await w.update()
    h.check_eq(f.get("cursor"), rl["cursor"], "the late pickup's frame")
    h.check_eq(f["update"].get("places"), {"pickup": pickup2}, "only the pickup that applied")
    f = await w.update()
    h.check_eq(f.get("cursor"), rc["cursor"], "the partly stale frame")
    h.check("places" not in f["update"], f"stale places must not be published: {f!r}")
    h.check_eq(f["update"]["location"], {"lat": 52.51, "lng": 13.41}, "its location")

    late_watcher = await env.watch(oid)
    st = late_watcher.frames[0]["state"]
    h.check_eq(st.get("places"), {"pickup": dict(pickup2, ts=base + 1500),
                                  "dropoff": dict(DROPOFF2, ts=base + 2000)},
               "stored places (merged by member, each with its ts)")
    resp = await asyncio.to_thread(env.http, "GET", f"/v1/orders/{oid}")
    h.check_eq(resp.status, 200, f"GET /v1/orders: {resp!r}")
    h.check_eq(resp.json["state"]["places"]["dropoff"]["lat"], DROPOFF2["lat"],
               "places in GET /v1/orders")

    # A publisher calling the script directly with junk in places: junk is neither
    # stored nor published.
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto",
                           "apply_update.lua")) as fh:
        script = fh.read()
    junk = h.update(oid, base + 2500, places={"pickup": "Main St 1", "dropoff": {"lat": 3.0, "lng": 4.0}})
    k = f"trk:{{{oid}}}"
    res = await asyncio.to_thread(env.redis.cli, "EVAL", script, 3, f"{k}:state", f"{k}:log", f"{k}:seen",
                                  json.dumps(junk), 86400, 3600, 1000)
    h.check(res.startswith("applied"), f"the script applied the valid member: {res!r}")
    f = await w.update()
    h.check_eq(f["update"].get("places"), {"dropoff": {"lat": 3.0, "lng": 4.0}},
               "only the valid member is published")
    st = json.loads(await asyncio.to_thread(env.redis.cli, "HGET", f"{k}:state", "state"))
    h.check_eq(st["places"]["pickup"], dict(pickup2, ts=base + 1500), "the junk pickup was not stored")

    # A place without lng is refused with the field named.
    bad = h.update(oid, base + 3000, places={"dropoff": {"lat": 1.0}})
    rb = await env.apost(bad)
    h.check_eq(rb.status, 400, f"invalid places: {rb!r}")
    h.check("places.dropoff.lng" in rb.raw.decode(), f"the field is named: {rb.raw!r}")


if __name__ == "__main__":
    h.main(test)
