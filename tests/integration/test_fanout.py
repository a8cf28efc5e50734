#!/usr/bin/python3
"""integration.fanout: 3 orders x 5 watchers; 20 updates per order, interleaved.

Every watcher must get its snapshot, then exactly its own order's 20 updates,
in order: the cursors the POSTs returned, strictly increasing, each update as
posted, and nothing of another order.
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

N_ORDERS = 3
N_WATCHERS = 5
N_UPDATES = 20


async def test(env):
    orders = [f"fan-{i}.{os.getpid()}" for i in range(N_ORDERS)]
    watchers = {o: [] for o in orders}
    for o in orders:
        for _ in range(N_WATCHERS):
            w = await env.watch(o)  # waits for the snapshot: subscribed from here on
            h.check(w.frames[0]["state"] is None and w.frames[0]["cursor"] is None,
                    f"a new order's snapshot must have null state and cursor: {w.frames[0]!r}")
            watchers[o].append(w)

    # 20 rounds; each round one update per order.  Rounds 0-9 as single POSTs,
    # rounds 10-19 as one array of 3 (one per order), so both paths fan out.
    base = h.now_ms() - 60_000
    posted = {o: [] for o in orders}   # (update, cursor) in posting order
    for r in range(N_UPDATES):
        batch = []
        for k, o in enumerate(orders):
            ts = base + r * 100 + k
            if r % 2:
                u = h.update(o, ts, lat=48.0 + r / 1000 + k / 10, lng=2.0 + r / 1000)
            else:
                u = h.update(o, ts, lat=48.0 + r / 1000 + k / 10, lng=2.0 + r / 1000,
                             status="en_route_to_dropoff" if r else "courier_assigned",
                             event_id=f"fan-{o}-{r}")
            batch.append(u)
        if r < N_UPDATES // 2:
            for u in batch:
                posted[u["order_id"]].append((u, await env.aapply(u)))
        else:
            results = await env.apost_ok(batch)
            h.check_eq(len(results), len(batch), "results of a batch")
            for i, (u, res) in enumerate(zip(batch, results)):
                h.check(res.get("index") == i and res.get("order_id") == u["order_id"] and
                        res.get("result") == "applied", f"batch item {i}: {res!r}")
                posted[u["order_id"]].append((u, res["cursor"]))

    for o in orders:
        cursors = [h.parse_cursor(c) for _, c in posted[o]]
        h.check(all(a < b for a, b in zip(cursors, cursors[1:])),
                f"{o}: the POST answers' cursors are not strictly increasing: {posted[o]!r}")
        for n, w in enumerate(watchers[o]):
            got = [await w.update() for _ in range(N_UPDATES)]
            for i, (f, (u, cursor)) in enumerate(zip(got, posted[o])):
                where = f"{o} watcher {n} update {i}"
                h.check_eq(f.get("order_id"), o, f"{where}: order_id")
                h.check_eq(f.get("cursor"), cursor, f"{where}: cursor")
                h.check_eq(f.get("update"), u, f"{where}: update")
            ts = [f["update"]["ts"] for f in got]
            h.check(ts == sorted(ts) and len(set(ts)) == len(ts), f"{o} watcher {n}: ts order {ts}")

    # Nothing else may arrive: one more update per order brackets the stream
    # (pub/sub keeps order, so anything extra would arrive before it).
    for o in orders:
        u = h.update(o, base + 10_000, status="at_dropoff")
        cursor = await env.aapply(u)
        for n, w in enumerate(watchers[o]):
            f = await w.update()
            h.check(f.get("cursor") == cursor and f.get("update") == u,
                    f"{o} watcher {n}: expected only the bracketing update, got {f!r}")
            h.check_eq(w.pending(), [], f"{o} watcher {n}: frames after the last update")
            h.check_eq(len(w.frames), 1 + N_UPDATES + 1, f"{o} watcher {n}: frame count")
            h.check(not w.closed.is_set(), f"{o} watcher {n} was closed: {w.close_code}")


if __name__ == "__main__":
    h.main(test)
