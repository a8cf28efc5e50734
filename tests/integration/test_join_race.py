#!/usr/bin/python3
"""integration.join_race: watchers that join while updates are being posted.

README: "After [the snapshot] come the update frames: every update applied
after the snapshot's cursor, each exactly once and in order."  Up to 40
watchers join one order at random moments while updates are posted one by
one (300, and on until every watcher has joined, so that the joins fall
within the load however fast either side runs); each must get, after its
snapshot, exactly the updates whose cursor is greater than the snapshot's
cursor: no gap, no repeat, in order.  The moments come from a seeded random
generator: the seed is printed, TRACKGATE_TEST_SEED=<seed> replays it.

The race this probes: the snapshot is read on the command connection (HMGET)
while the update frames arrive on the subscriber connection, so the frame of
an update the snapshot already holds can reach the daemon after the snapshot.
"""
import asyncio
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


async def join_under_load(env, n_updates=300, max_joiners=40):
    oid = f"load-{os.getpid()}"
    base = h.now_ms() - 60_000
    posted = []  # (cursor, update) in posting (= cursor) order
    done = asyncio.Event()
    joined = asyncio.Event()

    async def poster():
        try:
            i = 0
            while i < n_updates or (not joined.is_set() and i < 10 * n_updates):
                u = h.update(oid, base + i, lat=30 + i / 1000, lng=31.0,
                             status="en_route_to_dropoff" if i % 10 == 0 else None)
                posted.append((await env.aapply(u), u))
                i += 1
        finally:
            done.set()

    rnd = h.seeded_random("join_race: join moments")
    task = asyncio.ensure_future(poster())
    joiners = []
    try:
        while not done.is_set() and len(joiners) < max_joiners:
            await asyncio.sleep(rnd.uniform(0, 0.02))  # paces the joins (the load)
            joiners.append(await env.watch(oid))
    finally:
        joined.set()
    await done.wait()
    await task  # re-raises a posting failure
    final = posted[-1][0]
    mid = [w for w in joiners if w.frames[0]["cursor"] not in (None, final)]
    h.check(len(mid) >= 3, f"only {len(mid)} of {len(joiners)} joiners took their snapshot while "
            f"updates were being posted; the load is too short to test anything")

    # One more update brackets every stream: pub/sub keeps order, so whatever
    # a watcher gets before it is all it will ever get of the load.
    bracket = await env.aapply(h.update(oid, base + len(posted), status="at_dropoff"))
    problems = []
    for n, w in enumerate(joiners):
        snap = w.frames[0]
        sc = h.parse_cursor(snap["cursor"]) if snap["cursor"] else (0, 0)
        want = [(c, u) for c, u in posted if h.parse_cursor(c) > sc]
        if snap["cursor"]:
            h.check(any(c == snap["cursor"] for c, _ in posted),
                    f"joiner {n}: snapshot cursor {snap['cursor']} is not a posted cursor")
            last = next(u for c, u in posted if c == snap["cursor"])
            h.check_eq(snap["state"]["location"]["lat"], last["location"]["lat"],
                       f"joiner {n}: snapshot location = the update at its cursor")
        # Everything that arrives up to the bracketing update posted below.
        got = []
        while True:
            f = await w.update(timeout=5)
            if f.get("cursor") == bracket:
                break
            got.append(f)
        got_c = [f.get("cursor") for f in got]
        want_c = [c for c, _ in want]
        if got_c != want_c:
            extra = [c for c in got_c if c not in want_c]
            missing = [c for c in want_c if c not in got_c]
            i = next(i for i, (a, b) in enumerate(zip(got_c + [None], want_c + [None])) if a != b)
            problems.append(f"joiner {n} (snapshot cursor {snap['cursor']}): "
                            f"{len(got_c)} updates, want {len(want_c)}; first difference at update "
                            f"{i}: got {(got_c + [None])[i]}, want {(want_c + [None])[i]}; "
                            f"unexpected: {extra[:3]}; missing: {missing[:3]}")
        else:
            for (c, u), f in zip(want, got):
                h.check_eq(f.get("update"), u, f"joiner {n}: update at {c}")
    print(f"join under load: {len(joiners)} joiners ({len(mid)} mid-stream), {len(posted)} updates, "
          f"{len(problems)} joiners with a wrong stream")
    h.check(not problems, "after its snapshot a watcher must get exactly the updates with a greater "
            "cursor, each once, in order:\n  " + "\n  ".join(problems))


async def test(env):
    await join_under_load(env)


if __name__ == "__main__":
    h.main(test)
