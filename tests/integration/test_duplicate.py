#!/usr/bin/python3
"""integration.duplicate: a retried update (same event_id) is a no-op.

The second POST of the same event_id answers "duplicate" without a cursor,
and watchers receive the update once.  The same holds inside one batch and
for a retry whose content differs (the event_id alone decides).
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


async def test(env):
    oid = f"dup-{os.getpid()}"
    base = h.now_ms() - 60_000
    w = await env.watch(oid)

    first = h.update(oid, base + 100, lat=35.68, lng=139.76, status="picked_up", event_id="evt-1")
    c1 = await env.aapply(first)

    r = await env.apost(first)
    h.check_eq(r.status, 202, f"the retried POST: {r!r}")
    res = r.json["results"]
    h.check_eq(len(res), 1, "one result")
    h.check_eq(res[0].get("result"), "duplicate", "second POST of the same event_id")
    h.check("cursor" not in res[0], f"a duplicate carries no cursor: {res[0]!r}")
    h.check_eq((r.json.get("applied"), r.json.get("duplicate")), (0, 1), "counts of the retry")

    # A retry with a newer ts and other content is still the same event: a no-op.
    changed = dict(first, ts=base + 200, location={"lat": 0.5, "lng": 0.5})
    h.check_eq((await env.apost_ok(changed))[0].get("result"), "duplicate",
               "same event_id, different content")

    # In one batch: the first occurrence applies, the second is a duplicate.
    b1 = h.update(oid, base + 300, lat=35.69, lng=139.77, event_id="evt-2")
    b2 = dict(b1)
    b3 = h.update(oid, base + 400, lat=35.70, lng=139.78, event_id="evt-3")
    res = await env.apost_ok([b1, b2, b3])
    h.check_eq([x.get("result") for x in res], ["applied", "duplicate", "applied"],
               "batch with a repeated event_id")

    # Without event_id nothing is de-duplicated: the same body twice applies twice.
    n1 = h.update(oid, base + 500, status="at_dropoff")
    cn1 = await env.aapply(n1)
    cn2 = await env.aapply(n1)

    expected = [(first, c1), (b1, res[0]["cursor"]), (b3, res[2]["cursor"]), (n1, cn1), (n1, cn2)]
    for i, (u, c) in enumerate(expected):
        f = await w.update()
        h.check(f.get("cursor") == c and f.get("update") == u,
                f"frame {i}: expected {u!r} at {c} (a duplicate must not be delivered), got {f!r}")
    h.check_eq(w.pending(), [], "frames after the last update")

    for evt in ("evt-1", "evt-2", "evt-3"):
        h.check_eq(env.redis.cli("SISMEMBER", f"trk:{{{oid}}}:seen", evt), "1",
                   f"{evt} in trk:{{ID}}:seen")
    h.check_eq(int(env.redis.cli("XLEN", f"trk:{{{oid}}}:log")), len(expected),
               "log entries (duplicates are not logged)")
    # The duplicate's different location never reached the state.
    late = await env.watch(oid)
    loc = late.frames[0]["state"]["location"]
    h.check_eq((loc["lat"], loc["lng"]), (35.70, 139.78), "stored location")


if __name__ == "__main__":
    h.main(test)
