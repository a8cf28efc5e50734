#!/usr/bin/python3
"""integration.stress.redis_restart: redis-server killed (-9) under continuous ingest.

3 orders x 3 watchers.  A poster posts one update every ~10 ms, round robin
over the orders, recording each POST's status and times.  Mid-stream
redis-server is killed with SIGKILL; posting goes on for ~1.5 s; redis-server
is restarted on the same unix socket (no persistence: state and logs are
gone); posting goes on until a few updates per order were applied again.
Finally one last update per order is posted.

Checks:
  - while Redis is down (from the kill until the restart) every POST answers
    503 with a JSON error: never a 2xx; /readyz is 503 meanwhile;
  - after the restart POSTs are applied again (2xx), and every update answered
    2xx after the kill is in the new Redis's log (a 2xx means stored);
  - no watcher is closed; each one's cursors (update frames and snapshots
    with a cursor) strictly increase: no duplicate, no step back;
  - before the kill each watcher got a gap-free prefix of its order's applied
    updates (frames in flight when Redis died are lost with it);
  - after the outage each watcher resyncs (a replay of the log after its
    cursor, or a snapshot - "reset": true for a cursor the new Redis does not
    have) and from there gets exactly the updates applied after that point;
  - each watcher's last update frame is its order's last applied cursor.
"""
import asyncio
import json
import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

N_ORDERS = 3
WATCHERS_PER_ORDER = 3
INTERVAL = 0.010     # between POSTs
BEFORE_KILL = 1.0    # seconds of posting before the kill
DOWN_FOR = 1.5       # seconds of posting while Redis is dead
AFTER_2XX = 3        # applied updates per order after the restart before the poster stops


class Post:
    __slots__ = ("oid", "u", "t_sent", "t_done", "status", "cursor", "body")

    def __init__(self, oid, u):
        self.oid, self.u = oid, u
        self.t_sent = self.t_done = None
        self.status = self.cursor = self.body = None

    @property
    def ok(self):
        return self.status is not None and 200 <= self.status < 300


async def post_one(env, p):
    p.t_sent = time.monotonic()
    try:
        r = await env.apost(p.u)
        p.status = r.status
        p.body = r.json
        if r.status == 202:
            res = r.json["results"][0]
            if res.get("result") == "applied":
                p.cursor = res["cursor"]
    except OSError as e:
        p.body = repr(e)
    p.t_done = time.monotonic()


def cursor_key(c):
    return h.parse_cursor(c)


async def test(env):
    ck = h.Checks()
    base = h.now_ms() - 600_000
    orders = [f"rr-{os.getpid()}-{k}" for k in range(N_ORDERS)]
    watchers = {o: [await env.watch(o) for _ in range(WATCHERS_PER_ORDER)] for o in orders}

    posts = []
    marks = {}
    stop = asyncio.Event()

    async def poster():
        i = 0
        while not stop.is_set():
            oid = orders[i % N_ORDERS]
            u = h.update(oid, base + i, lat=45 + (i % 1000) / 1000, lng=7.5,
                         status=("picked_up" if i % 7 == 0 else None), event_id=f"e{i}")
            p = Post(oid, u)
            posts.append(p)
            await post_one(env, p)
            i += 1
            await asyncio.sleep(INTERVAL)

    task = asyncio.ensure_future(poster())
    try:
        await asyncio.sleep(BEFORE_KILL)
        marks["kill0"] = time.monotonic()
        await asyncio.to_thread(env.redis.stop, signal.SIGKILL)
        marks["kill1"] = time.monotonic()
        await asyncio.sleep(0.3)
        r = await asyncio.to_thread(env.http, "GET", "/readyz")
        ck(r.status == 503, f"/readyz while Redis is dead: {r!r}")
        await asyncio.sleep(DOWN_FOR - 0.3)
        marks["start0"] = time.monotonic()
        await asyncio.to_thread(env.redis.start)
        marks["start1"] = time.monotonic()
        deadline = time.monotonic() + 20
        while True:
            after = [p for p in posts if p.ok and p.t_sent > marks["start1"]]
            if all(sum(1 for p in after if p.oid == o) >= AFTER_2XX for o in orders):
                break
            h.check(time.monotonic() < deadline, f"no {AFTER_2XX} applied updates per order "
                    f"within 20 s of the restart (statuses since: "
                    f"{[p.status for p in posts if p.t_sent > marks['start1']][-20:]})")
            h.check(not task.done(), "the poster stopped")
            await asyncio.sleep(0.05)
        marks["recovered"] = time.monotonic()
    finally:
        stop.set()
        await task

    await h.async_wait_until(lambda: env.http("GET", "/readyz").status == 200, 10,
                             what="/readyz 200 after the restart")
    final = {}
    for k, o in enumerate(orders):
        u = h.update(o, base + 10 ** 6 + k, lat=46.0, lng=7.5, status="at_dropoff")
        p = Post(o, u)
        posts.append(p)
        await post_one(env, p)
        h.check(p.ok and p.cursor, f"the last update of {o}: {p.status} {p.body!r}")
        final[o] = p.cursor
    for o in orders:
        for w in watchers[o]:
            try:
                await wait_for_cursor(w, final[o], 10)
            except h.TestFailure as e:
                ck(False, str(e))

    # --- ingest: 503 while down, 2xx after, a 2xx is stored ---------------------
    down = [p for p in posts if p.t_sent >= marks["kill1"] and p.t_done <= marks["start0"]]
    after = [p for p in posts if p.t_sent >= marks["start1"]]
    statuses = lambda ps: {s: sum(1 for p in ps if p.status == s) for s in {p.status for p in ps}}
    print(f"{len(posts)} POSTs: {sum(p.ok for p in posts)} applied; while Redis was dead "
          f"({marks['start0'] - marks['kill1']:.2f} s): {statuses(down)}; after the restart "
          f"(ready {marks['recovered'] - marks['start1']:.2f} s later at the latest): "
          f"{statuses(after)}")
    ck(len(down) >= 20, f"only {len(down)} POSTs while Redis was dead")
    bad = [p for p in down if p.status != 503]
    ck(not bad, f"{len(bad)} POSTs while Redis was dead did not answer 503: "
       f"{[(p.status, p.body) for p in bad[:3]]}")
    no_json = [p for p in down if p.status == 503 and not (
        isinstance(p.body, dict) and p.body.get("error") and p.body.get("message"))]
    ck(not no_json, f"503s without a JSON error: {[p.body for p in no_json[:3]]}")
    ck(sum(p.ok for p in after) >= AFTER_2XX * N_ORDERS, "too few 2xx after the restart")
    for o in orders:
        log = env.redis.cli("XRANGE", f"trk:{{{o}}}:log", "-", "+").splitlines()
        stored = {line for line in log if re.fullmatch(r"\d+-\d+", line)}
        lost = [p.cursor for p in posts if p.oid == o and p.ok and p.t_sent >= marks["kill1"]
                and p.cursor not in stored]
        ck(not lost, f"{o}: {len(lost)} updates answered 2xx after the kill are not in the new "
           f"Redis's log: {lost[:5]}")

    # --- watchers --------------------------------------------------------------
    by_cursor = {p.cursor: p for p in posts if p.ok}
    for o in orders:
        applied = [p for p in posts if p.oid == o and p.ok]
        pre = [p.cursor for p in applied if p.t_done <= marks["kill0"]]
        post_restart = [p.cursor for p in applied if p.t_sent >= marks["start1"]]
        unsure = [p for p in posts if p.oid == o and not p.ok]  # 503s may have been stored
        for n, w in enumerate(watchers[o]):
            label = f"{o} watcher {n}"
            ck(not w.closed.is_set(), f"{label}: closed {w.close_code} {w.close_reason!r}")
            frames = w.frames
            seq = [(f.get("type"), f.get("cursor")) for f in frames]
            cur = [cursor_key(c) for _, c in seq if c]
            if not ck(all(a < b for a, b in zip(cur, cur[1:])),
                      f"{label}: cursors do not strictly increase: "
                      f"{[s for s in seq if s[1]][:60]}"):
                continue
            # Frame contents: each update frame is a posted update.
            for f in frames:
                if f.get("type") != "update":
                    continue
                p = by_cursor.get(f.get("cursor"))
                if p is not None:
                    ck(f.get("update") == p.u, f"{label}: frame {f['cursor']} is not the "
                       f"update applied there: {json.dumps(f)[:300]}")
                else:
                    ck(any(f.get("update") == q.u for q in unsure),
                       f"{label}: frame {f.get('cursor')} is no update that was posted: "
                       f"{json.dumps(f)[:300]}")
            ups = [c for t, c in seq if t == "update"]
            # Before the kill: a gap-free prefix of the applied updates.
            got_pre = [c for c in ups if c in set(pre)]
            ck(got_pre == pre[:len(got_pre)],
               f"{label}: before the kill it got {len(got_pre)} of {len(pre)} updates with a "
               f"gap: {got_pre[:5]}...")
            # The resync point: the last snapshot after the first, else its last
            # frame from before the restart.
            snaps = [i for i, (t, _) in enumerate(seq) if t == "snapshot"]
            if len(snaps) > 1:
                i = snaps[-1]
                floor = cursor_key(seq[i][1]) if seq[i][1] else (0, 0)
                rest = [c for t, c in seq[i + 1:] if t == "update"]
                how = f"snapshot {seq[i][1]}{' reset' if frames[i].get('reset') else ''}"
            else:
                old = [c for c in ups if c not in set(post_restart)]
                floor = cursor_key(old[-1]) if old else (0, 0)
                rest = [c for c in ups if c in set(post_restart)]
                how = f"replay after {old[-1] if old else None}"
            want = [c for c in post_restart if cursor_key(c) > floor]  # the final one too
            ck(rest == want, f"{label}: after the outage (resync: {how}) it got {len(rest)} "
               f"updates, want the {len(want)} applied after that point; missing "
               f"{[c for c in want if c not in set(rest)][:5]}, unexpected "
               f"{[c for c in rest if c not in set(want)][:5]}")
            last_up = ups[-1] if ups else None
            ck(last_up == final[o], f"{label}: last update frame {last_up}, want the last "
               f"applied cursor {final[o]}")
            if n == 0:
                print(f"{o}: {len(applied)} applied ({len(pre)} before the kill, "
                      f"{len(post_restart)} after the restart); watcher 0 got {len(ups)} "
                      f"updates, resync by {how}")
    r = await asyncio.to_thread(env.http, "GET", "/healthz")
    ck(r.status == 200, f"/healthz at the end: {r!r}")
    await h.stop_daemon(env, ck)
    ck.done()


async def wait_for_cursor(w, cursor, timeout):
    deadline = time.monotonic() + timeout
    while not any(f.get("cursor") == cursor for f in w.frames):
        if w.closed.is_set():
            raise h.TestFailure(f"{w.path}: closed {w.close_code} {w.close_reason!r} before "
                                f"the last update {cursor}")
        if time.monotonic() > deadline:
            tailc = [(f.get("type"), f.get("cursor")) for f in w.frames[-5:]]
            raise h.TestFailure(f"{w.path}: no frame with the last cursor {cursor} within "
                                f"{timeout} s; last frames {tailc}")
        await asyncio.sleep(0.02)


if __name__ == "__main__":
    h.main(test)
