#!/usr/bin/python3
"""integration.stress.redis_restart: redis-server killed (-9) under continuous ingest.

3 orders x 3 watchers.  A poster posts one update every ~10 ms, round robin
over the orders, and every 10th time a batch of one update per order (applied
in the same millisecond, their cursors mostly coincide: a cursor is a
per-order stream id, so everything here is keyed by (order, cursor)),
recording each POST's status and times.  Mid-stream redis-server is killed
with SIGKILL once each order has a few applied updates; posting goes on for
~1.5 s (and at least 25 answers); redis-server
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
BEFORE_KILL = 1.0    # seconds of posting before the kill (and MIN_BEFORE applied per order)
MIN_BEFORE = 5
DOWN_FOR = 1.5       # seconds of posting while Redis is dead (and MIN_DOWN answers)
MIN_DOWN = 25
AFTER_2XX = 3        # applied updates per order after the restart before the poster stops
BATCH_EVERY = 10     # every 10th POST is a batch of one update per order


class Post:
    __slots__ = ("oid", "u", "t_sent", "t_done", "status", "cursor", "body")

    def __init__(self, oid, u):
        self.oid, self.u = oid, u
        self.t_sent = self.t_done = None
        self.status = self.cursor = self.body = None

    @property
    def ok(self):
        return self.status is not None and 200 <= self.status < 300


async def post_some(env, ps):
    """POSTs the updates of ps (one, or a batch) and records the answer in each."""
    t_sent = time.monotonic()
    for p in ps:
        p.t_sent = t_sent
    try:
        r = await env.apost(ps[0].u if len(ps) == 1 else [p.u for p in ps])
        results = r.json.get("results") if r.status == 202 and isinstance(r.json, dict) else None
        for k, p in enumerate(ps):
            p.status, p.body = r.status, r.json
            if results and len(results) == len(ps) and results[k].get("result") == "applied":
                p.cursor = results[k]["cursor"]
    except OSError as e:
        for p in ps:
            p.body = repr(e)
    t_done = time.monotonic()
    for p in ps:
        p.t_done = t_done


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

    def one(oid, i):
        return Post(oid, h.update(oid, base + i, lat=45 + (i % 1000) / 1000, lng=7.5,
                                  status=("picked_up" if i % 7 == 0 else None),
                                  event_id=f"e{i}"))

    async def poster():
        i = 0
        while not stop.is_set():
            if i % BATCH_EVERY == BATCH_EVERY - 1:
                # One update per order in one POST: applied within the same millisecond,
                # they mostly get the same cursor (per-order stream ids).
                ps = [one(o, i) for o in orders]
            else:
                ps = [one(orders[i % N_ORDERS], i)]
            posts.extend(ps)
            await post_some(env, ps)
            i += 1
            await asyncio.sleep(INTERVAL)

    task = asyncio.ensure_future(poster())

    async def until(cond, timeout, what):
        """Lets the poster run until cond() holds; fails after timeout (what: a text, or a
        function giving it then)."""
        deadline = time.monotonic() + timeout
        while not cond():
            h.check(time.monotonic() < deadline,
                    f"no {what() if callable(what) else what} within {timeout} s")
            h.check(not task.done(), "the poster stopped")
            await asyncio.sleep(0.02)

    try:
        t0 = time.monotonic()
        await until(lambda: time.monotonic() - t0 >= BEFORE_KILL and all(
            sum(1 for p in posts if p.oid == o and p.ok) >= MIN_BEFORE for o in orders),
            20, f"{MIN_BEFORE} applied updates per order before the kill")
        marks["kill0"] = time.monotonic()
        await asyncio.to_thread(env.redis.stop, signal.SIGKILL)
        marks["kill1"] = time.monotonic()
        try:
            await h.async_wait_until(lambda: env.http("GET", "/readyz").status == 503, 5,
                                     what="/readyz 503 while Redis is dead")
        except h.TestFailure as e:
            ck(False, str(e))
        # Posting goes on while Redis is dead, for DOWN_FOR and at least MIN_DOWN answers.
        await until(lambda: time.monotonic() - marks["kill1"] >= DOWN_FOR and sum(
            1 for p in posts if p.t_sent >= marks["kill1"] and p.t_done is not None) >= MIN_DOWN,
            20, f"{MIN_DOWN} POSTs answered while Redis is dead")
        marks["start0"] = time.monotonic()
        await asyncio.to_thread(env.redis.start)
        marks["start1"] = time.monotonic()
        await until(lambda: all(sum(1 for p in posts if p.ok and p.t_sent > marks["start1"]
                                    and p.oid == o) >= AFTER_2XX for o in orders),
                    20, lambda: f"{AFTER_2XX} applied updates per order after the restart "
                    f"(statuses since: "
                    f"{[p.status for p in posts if p.t_sent > marks['start1']][-20:]})")
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
        await post_some(env, [p])
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
    ck(len(down) >= MIN_DOWN, f"only {len(down)} POSTs while Redis was dead")
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
    # Cursors are per-order stream ids: two orders' updates applied in the same
    # millisecond get the same cursor, so posts are keyed by (order, cursor).
    by_cursor = {(p.oid, p.cursor): p for p in posts if p.ok}
    orders_of = {}
    for p in posts:
        if p.cursor:
            orders_of.setdefault(p.cursor, set()).add(p.oid)
    print(f"{sum(1 for s in orders_of.values() if len(s) > 1)} cursors were given to more than "
          f"one order")
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
                if f.get("type") not in ("update", "snapshot"):
                    continue
                if not ck(f.get("order_id") == o, f"{label}: a frame of another order: "
                          f"{json.dumps(f)[:300]}"):
                    continue
                if f.get("type") != "update":
                    continue
                p = by_cursor.get((o, f.get("cursor")))
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
