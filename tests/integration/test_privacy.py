#!/usr/bin/python3
"""integration.privacy: no courier position before courier-visible-from or after the order ends.

The rule lives in the Redis script, so every reader follows it: update
frames, snapshots, replays, GET /v1/orders/{ID}.  With the default
courier-visible-from (courier_assigned):

1. status created with a location: applied, the frame and the state carry
   the status and no location; a location alone then answers "withheld", is
   neither stored nor published (the watcher's next frame is a later one).
2. courier_assigned: locations flow.
3. delivered in an update that also has a location: the frame has the
   status and no location; the stored location is gone (state, snapshot of a
   new watcher, GET /v1/orders, a replay with since).
4. after delivered: a location alone is "withheld" (no frame); an ETA with a
   location applies as an ETA only.
5. the daemon restarted with courier-visible-from = picked_up:
   en_route_to_pickup hides the position, picked_up shows it; and with
   created, a created order shows it.
"""
import asyncio
import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def state_of(env, oid):
    r = env.http("GET", f"/v1/orders/{oid}")
    h.check(r.status == 200, f"GET /v1/orders/{oid}: {r!r}")
    return r.json.get("state") or {}


async def results(env, u):
    res = await env.apost_ok(u)
    h.check(len(res) == 1, f"one result for one update: {res!r}")
    return res[0]


async def expect_no_location(env, oid, what):
    st = await asyncio.to_thread(state_of, env, oid)
    h.check("location" not in st or st["location"] is None,
            f"{what}: GET /v1/orders/{oid} still has a location: {st!r}")
    w = await env.watch(oid, snapshot=False)
    snap = await w.snapshot()
    h.check("location" not in (snap.get("state") or {}),
            f"{what}: a new watcher's snapshot has a location: {snap!r}")
    await w.close()


async def phase_default(env, oid):
    t = h.now_ms() - 60000
    w = await env.watch(oid)

    print("--- 1. created")
    r = await results(env, h.update(oid, t + 1, lat=52.50, lng=13.40, status="created"))
    h.check_eq(r.get("result"), "applied", "created with a location")
    f = await w.update()
    h.check(f["update"].get("status") == "created" and "location" not in f["update"],
            f"created: the frame carries a location: {f!r}")
    r = await results(env, h.update(oid, t + 2, lat=52.51, lng=13.41))
    h.check_eq(r.get("result"), "withheld", "a location while created")
    await expect_no_location(env, oid, "created")

    print("--- 2. courier_assigned")
    c = await env.aapply(h.update(oid, t + 3, lat=52.52, lng=13.42, status="courier_assigned"))
    f = await w.update()
    h.check(f["cursor"] == c and f["update"].get("location", {}).get("lat") == 52.52,
            f"courier_assigned: want the frame at {c} with its location (the withheld fix was "
            f"not published), got {f!r}")
    c = await env.aapply(h.update(oid, t + 4, lat=52.53, lng=13.43))
    f = await w.update()
    h.check(f["cursor"] == c and "location" in f["update"], f"a location while assigned: {f!r}")
    before_delivery = c

    print("--- 3. delivered with a location")
    r = await results(env, h.update(oid, t + 5, lat=52.54, lng=13.44, status="delivered"))
    h.check_eq(r.get("result"), "applied", "delivered with a location")
    f = await w.update()
    h.check(f["update"].get("status") == "delivered" and "location" not in f["update"],
            f"delivered: the frame carries a location: {f!r}")
    await expect_no_location(env, oid, "delivered")
    # A replay from before the delivery holds the delivered frame without a location.
    rw = h.Watcher(env.port, f"/v1/track/{oid}?since={before_delivery}")
    await rw.connect()
    env.watchers.append(rw)
    f = await rw.update()
    h.check(f["update"].get("status") == "delivered" and "location" not in f["update"],
            f"delivered, replayed: {f!r}")
    await rw.close()

    print("--- 4. after delivered")
    r = await results(env, h.update(oid, t + 6, lat=52.55, lng=13.45))
    h.check_eq(r.get("result"), "withheld", "a location after delivered")
    eta = {"dropoff": t + 600000}
    c = await env.aapply(h.update(oid, t + 7, lat=52.56, lng=13.46, eta=eta))
    f = await w.update()
    h.check(f["cursor"] == c and "location" not in f["update"] and f["update"].get("eta") == eta,
            f"after delivered: want the ETA frame at {c} without a location (and no frame for "
            f"the withheld fix), got {f!r}")
    await expect_no_location(env, oid, "after delivered")
    await w.close()


async def test(env):
    pid = os.getpid()
    env.start()
    await phase_default(env, f"pv-{pid}")

    print("--- 5. courier-visible-from = picked_up, then created")
    for setting, hidden, shown in (("picked_up", "en_route_to_pickup", "picked_up"),
                                   ("created", None, "created")):
        await asyncio.to_thread(env.daemon.terminate)
        env.daemon.extra_args = ["--courier-visible-from", setting]
        # Not in a worker thread: the harness ties its children's lives to the
        # thread that spawns them (PR_SET_PDEATHSIG).
        env.daemon.start()
        oid = f"pv-{setting}-{pid}"
        t = h.now_ms() - 60000
        if hidden:
            await env.aapply(h.update(oid, t, status=hidden))
            r = await results(env, h.update(oid, t + 1, lat=50.1, lng=8.6))
            h.check_eq(r.get("result"), "withheld", f"{setting}: a location while {hidden}")
        await env.aapply(h.update(oid, t + 2, lat=50.2, lng=8.7, status=shown))
        st = await asyncio.to_thread(state_of, env, oid)
        h.check(st.get("location", {}).get("lat") == 50.2,
                f"{setting}: the location while {shown} is not stored: {st!r}")
    # A terminal status as the setting is refused at start-up.
    bad = await asyncio.to_thread(
        subprocess.run, [env.args.trackgated, "--courier-visible-from", "delivered",
                           "--check-config", "--ingest-key-file", env.key_file],
        capture_output=True, timeout=10)
    h.check(bad.returncode == 1 and b"courier-visible-from" in bad.stderr,
            f"--courier-visible-from delivered: exit {bad.returncode}, {bad.stderr!r}")
    print("PASS checks")


if __name__ == "__main__":
    h.main(test, start=False)
