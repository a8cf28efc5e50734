#!/usr/bin/python3
"""integration.places: the pickup and dropoff places of an order.

The script (proto/apply_update.lua) merges places by member under one ts:
an update naming only the dropoff keeps the stored pickup, an older places
part is stale, and a frame carries only the places that applied.  The
snapshot and GET /v1/orders/{ID} show the merged places.
"""
import asyncio
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

    a = h.update(oid, base + 1000, places={"pickup": PICKUP, "dropoff": DROPOFF}, status="created")
    ca = await env.aapply(a)
    # Only the dropoff moves: the pickup stays.
    b = h.update(oid, base + 2000, places={"dropoff": DROPOFF2})
    cb = await env.aapply(b)
    # Older places: stale, nothing published.
    old = h.update(oid, base + 1500, places={"pickup": {"lat": 1.0, "lng": 1.0}})
    r = (await env.apost_ok(old))[0]
    h.check_eq(r.get("result"), "stale", "places older than the stored ones")
    # Places stale, location fresh: applied, the frame carries no places.
    c = h.update(oid, base + 1800, lat=52.51, lng=13.41, places={"pickup": {"lat": 2.0, "lng": 2.0}})
    rc = (await env.apost_ok(c))[0]
    h.check_eq(rc.get("result"), "applied", "fresh location with stale places")

    for i, (u, cursor) in enumerate(((a, ca), (b, cb))):
        f = await w.update()
        h.check_eq((f.get("cursor"), f.get("update")), (cursor, u), f"frame {i}")
    f = await w.update()
    h.check_eq(f.get("cursor"), rc["cursor"], "the partly stale frame")
    h.check("places" not in f["update"], f"stale places must not be published: {f!r}")
    h.check_eq(f["update"]["location"], {"lat": 52.51, "lng": 13.41}, "its location")

    late = await env.watch(oid)
    st = late.frames[0]["state"]
    h.check_eq(st.get("places"), {"pickup": PICKUP, "dropoff": DROPOFF2, "ts": base + 2000},
               "stored places (merged by member)")
    resp = await asyncio.to_thread(env.http, "GET", f"/v1/orders/{oid}")
    h.check_eq(resp.status, 200, f"GET /v1/orders: {resp!r}")
    h.check_eq(resp.json["state"]["places"]["dropoff"], DROPOFF2, "places in GET /v1/orders")

    # A place without lng is refused with the field named.
    bad = h.update(oid, base + 3000, places={"dropoff": {"lat": 1.0}})
    rb = await env.apost(bad)
    h.check_eq(rb.status, 400, f"invalid places: {rb!r}")
    h.check("places.dropoff.lng" in rb.raw.decode(), f"the field is named: {rb.raw!r}")


if __name__ == "__main__":
    h.main(test)
