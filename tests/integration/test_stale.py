#!/usr/bin/python3
"""integration.stale: older updates are answered "stale" and never delivered.

Staleness is per part (proto/apply_update.lua): an update whose location is
older than the stored one but whose status is newer is applied, and the frame
carries only the status.  Fresh updates posted after a stale one bracket the
stream: pub/sub keeps order, so a wrongly published stale update would arrive
before them.
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def result_of(results):
    h.check(len(results) == 1, f"one result expected: {results!r}")
    return results[0]


async def test(env):
    oid = f"stale-{os.getpid()}"
    base = h.now_ms() - 60_000
    w = await env.watch(oid)
    w2 = await env.watch(oid)

    a = h.update(oid, base + 1000, lat=40.0, lng=-3.0, status="picked_up")
    ca = await env.aapply(a)

    # Entirely stale: older location only.
    b = h.update(oid, base + 500, lat=41.0, lng=-4.0)
    rb = result_of(await env.apost_ok(b))
    h.check_eq(rb.get("result"), "stale", "an update older than the stored location")
    h.check("cursor" not in rb, f"a stale result carries no cursor: {rb!r}")
    # Entirely stale: older location and older status.
    b2 = h.update(oid, base + 999, lat=41.5, lng=-4.5, status="created")
    h.check_eq(result_of(await env.apost_ok(b2)).get("result"), "stale", "older location+status")

    c = h.update(oid, base + 2000, lat=40.1, lng=-3.1)
    cc = await env.aapply(c)

    # Stale in a batch, between two fresh items.
    d1 = h.update(oid, base + 2100, lat=40.2, lng=-3.2)
    d2 = h.update(oid, base + 1500, lat=49.0, lng=9.0)
    d3 = h.update(oid, base + 2200, lat=40.3, lng=-3.3)
    r = await env.apost([d1, d2, d3])
    h.check_eq(r.status, 202, f"batch with a stale item: {r!r}")
    res = r.json["results"]
    h.check_eq([x.get("result") for x in res], ["applied", "stale", "applied"], "batch results")
    h.check_eq([r.json.get(k) for k in ("applied", "stale", "duplicate", "invalid")], [2, 1, 0, 0],
               "batch counts applied/stale/duplicate/invalid")

    # Partial: location stale (2150 < 2200), status fresh (2150 > 1000).
    p = h.update(oid, base + 2150, lat=50.0, lng=10.0, status="en_route_to_dropoff")
    rp = result_of(await env.apost_ok(p))
    h.check_eq(rp.get("result"), "applied", "location stale + status fresh")
    cp = rp["cursor"]

    e = h.update(oid, base + 3000, lat=40.4, lng=-3.4)
    ce = await env.aapply(e)

    expected = [(a, ca), (c, cc), (d1, res[0]["cursor"]), (d3, res[2]["cursor"]), (None, cp), (e, ce)]
    for name, watcher in (("w1", w), ("w2", w2)):
        for i, (u, cursor) in enumerate(expected):
            f = await watcher.update()
            h.check_eq(f.get("cursor"), cursor, f"{name} frame {i} cursor "
                       f"(a stale update must never be delivered)")
            if u is not None:
                h.check_eq(f.get("update"), u, f"{name} frame {i} update")
            else:
                got = f.get("update") or {}
                h.check("location" not in got,
                        f"{name}: the partially stale frame must not carry the stale location: {got!r}")
                h.check_eq(got.get("status"), "en_route_to_dropoff", f"{name}: partial frame status")
                h.check_eq(got.get("ts"), base + 2150, f"{name}: partial frame ts")
                h.check_eq(got.get("order_id"), oid, f"{name}: partial frame order_id")
        h.check_eq(watcher.pending(), [], f"{name}: frames after the last fresh update")

    # The stored state never went back: newest location from e, status from p.
    late = await env.watch(oid)
    st = late.frames[0]["state"]
    h.check_eq(late.frames[0]["cursor"], ce, "snapshot cursor after stale updates")
    h.check_eq((st["location"]["lat"], st["location"]["lng"], st["location"]["ts"]),
               (40.4, -3.4, base + 3000), "stored location")
    h.check_eq((st["status"], st["status_ts"]), ("en_route_to_dropoff", base + 2150), "stored status")
    n_log = int(env.redis.cli("XLEN", f"trk:{{{oid}}}:log"))
    h.check_eq(n_log, len(expected), "entries in trk:{ID}:log (stale updates are not logged)")

    # An equal ts is not older: it is applied (>= in the script).
    same = h.update(oid, base + 3000, lat=40.5, lng=-3.5)
    cs = await env.aapply(same)
    for name, watcher in (("w1", w), ("w2", w2), ("late", late)):
        f = await watcher.update()
        h.check(f.get("cursor") == cs and f.get("update") == same,
                f"{name}: an update with the same ts must be delivered: {f!r}")


if __name__ == "__main__":
    h.main(test)
