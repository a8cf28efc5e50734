#!/usr/bin/python3
"""integration.stress.resume: GET /v1/track/{ID}?since=CURSOR.

The daemon keeps each order's update frames in a capped log stream; a
watcher that reconnects with the cursor of the last frame it got receives
exactly the update frames after it (no snapshot first), then live frames: no
gap, no duplicate.  When the log cannot give that (the cursor is older than
the oldest kept entry, or newer than the newest one) the first frame is a
snapshot with "reset": true holding the current state.  An invalid cursor is
refused with an error frame and close 4400.

Phase A (default --log-maxlen 1000):
  1. read the snapshot and 5 updates, disconnect, 50 updates are posted,
     reconnect with since=<last cursor>: exactly those 50, then a resumed
     frame (cursor of the 50th, replayed 50), then live ones;
  2. since=<the newest cursor>: only a resumed frame (replayed 0), then live;
  3. since=99999999999999-0 (the future): a reset snapshot of the newest state;
  4. since=garbage (and other malformed cursors): error frame + 4400;
  5. resumes while updates are being posted in batches (the resume script and
     the live frames race into the daemon on its two Redis connections):
     a. since=<a cursor in the log>, 20 joiners: each gets exactly the posted
        cursors after it, in order, with one resumed frame right after the
        replayed part (its replayed count and cursor match what came before it);
     b. since=99999999999999-0, 60 joiners: each gets a reset snapshot, then
        exactly the posted cursors after the snapshot's.
Phase B (the daemon restarted with --log-maxlen 20, same Redis):
  6. an early cursor trimmed out of the log (checked with XRANGE): a reset
     snapshot of the newest state, then live frames; also under load (as 5b).
Every update posted under load carries a status, so no frame may be coalesced:
a missing one is a gap.
"""
import asyncio
import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

FUTURE = "99999999999999-0"


def loc_update(oid, ts, i, status=None):
    return h.update(oid, ts, lat=40 + (i % 1000) / 1000, lng=8 + (i // 1000) / 1000, status=status)


async def post_many(env, oid, ts0, n, start=0, batch=50):
    """Posts n updates (a status change every 10th) in batches; returns [(cursor, update)]."""
    out = []
    for b in range(0, n, batch):
        us = [loc_update(oid, ts0 + start + i, start + i,
                         status="en_route_to_dropoff" if (start + i) % 10 == 0 else None)
              for i in range(b, min(n, b + batch))]
        res = await env.apost_ok(us)
        for u, r in zip(us, res):
            h.check(r.get("result") == "applied", f"{oid}: not applied: {r!r}")
            out.append((r["cursor"], u))
    return out


async def expect_updates(w, posted, what):
    """The next len(posted) frames are exactly these update frames, in order."""
    for i, (c, u) in enumerate(posted):
        f = await w.next(timeout=10, what=f"{what}: frame {i} of {len(posted)}")
        h.check(f.get("type") == "update" and f.get("cursor") == c and f.get("update") == u,
                f"{w.path}: {what}: frame {i} of {len(posted)}: expected the update at {c}, "
                f"got {json.dumps(f)[:300]}")


async def expect_resumed(w, cursor, replayed, what):
    """The next frame says the resume is complete: {"type":"resumed",...}."""
    f = await w.next(timeout=10, what=f"{what}: the resumed frame")
    want = {"type": "resumed", "order_id": w.path.split("/")[3].split("?")[0], "cursor": cursor,
            "replayed": replayed}
    h.check(f == want, f"{w.path}: {what}: want {want!r}, got {json.dumps(f)[:300]}")


def check_resumed_place(got, since, label):
    """got: the frames of a resume; exactly one resumed frame, right after the replay it counts."""
    idx = [i for i, f in enumerate(got) if f.get("type") == "resumed"]
    h.check(len(idx) == 1, f"{label}: want one resumed frame, got {len(idx)}")
    f, before = got[idx[0]], got[:idx[0]]
    h.check(f.get("replayed") == len(before) and
            f.get("cursor") == (before[-1]["cursor"] if before else since),
            f"{label}: the resumed frame {f!r} does not follow the {len(before)} replayed frames")
    return got[:idx[0]] + got[idx[0] + 1:]


async def expect_quiet(w, what):
    """Nothing more has come, and the socket is open.  No sleep decides "nothing more will
    come": every caller next posts live updates and expects exactly them on this watcher
    (expect_updates), and pub/sub keeps order, so anything extra sent before them shows
    up there as the wrong frame."""
    extra = w.pending()
    h.check(not extra, f"{w.path}: {what}: unexpected frames {json.dumps(extra)[:400]}")
    h.check(not w.closed.is_set(), f"{w.path}: {what}: closed {w.close_code} {w.close_reason!r}")


def check_reset_snapshot(f, oid, newest_cursor, newest_update, what):
    h.check(f.get("type") == "snapshot", f"{what}: the first frame is not a snapshot: {f!r}")
    h.check(f.get("reset") is True, f"{what}: the snapshot lacks \"reset\": true: {f!r}")
    h.check_eq(f.get("order_id"), oid, f"{what}: snapshot order_id")
    h.check_eq(f.get("cursor"), newest_cursor, f"{what}: reset snapshot cursor (the newest)")
    st = f.get("state") or {}
    h.check(st.get("location", {}).get("lat") == newest_update["location"]["lat"] and
            st.get("updated_at") == newest_update["ts"],
            f"{what}: the reset snapshot does not hold the newest state "
            f"({newest_update!r}): {f!r}")


async def replay_under_load(env, oid, ts0, since, label, n=800, joins=20, batch=20):
    """Resumes `joins` watchers with ?since=since (a cursor in the log) while n updates
    are posted in batches.

    Each must get exactly the posted cursors after `since`: the replay from the
    log, then the live frames that arrived while the log was being read, neither
    lost nor repeated.  Returns the posted list.
    """
    posted = []
    done = asyncio.Event()

    async def poster():
        # Batches: their applies reach Redis pipelined, so the resume script runs
        # between applies and its reply races their frames into the daemon.
        try:
            for b in range(0, n, batch):
                # Each with a status: such frames are never coalesced, so any
                # missing one is a gap, not a position replaced by a newer one.
                us = [loc_update(oid, ts0 + i, 5000 + i, status="en_route_to_dropoff")
                      for i in range(b, min(n, b + batch))]
                res = await env.apost_ok(us)
                for u, r in zip(us, res):
                    h.check(r.get("result") == "applied", f"{oid}: not applied: {r!r}")
                    posted.append((r["cursor"], u))
        finally:
            done.set()

    task = asyncio.ensure_future(poster())
    ws = []
    try:
        while len(ws) < joins and not done.is_set():
            await asyncio.sleep(0.01)
            ws.append(await env.watch(path=f"/v1/track/{oid}?since={since}", snapshot=False))
    finally:
        await done.wait()
        await task
    bracket_u = loc_update(oid, ts0 + n, 5000 + n, status="at_dropoff")
    bracket = await env.aapply(bracket_u)
    problems = []
    for k, w in enumerate(ws):
        got = []
        while True:
            f = await w.next(timeout=10, what=f"{label}: frames up to the bracketing update")
            if f.get("cursor") == bracket:
                break
            got.append(f)
        got = check_resumed_place(got, since, f"{label} joiner {k}")
        floor = h.parse_cursor(since)
        want = [c for c, _ in posted if h.parse_cursor(c) > floor]
        got_c = [f.get("cursor") if f.get("type") == "update" else f"<{f.get('type')}>"
                 for f in got]
        if got_c != want:
            missing = [c for c in want if c not in got_c]
            extra = [c for c in got_c if c not in want]
            i = next(i for i, (a, b) in enumerate(zip(got_c + [None], want + [None])) if a != b)
            problems.append(f"{label} joiner {k} (snapshot/since {floor}): got {len(got_c)} "
                            f"frames, want {len(want)}; first difference at frame {i}: got "
                            f"{got_c[max(0, i - 2):i + 3]}, want {want[max(0, i - 2):i + 3]}; "
                            f"missing {missing[:3]}.. ({len(missing)}), unexpected "
                            f"{extra[:3]}.. ({len(extra)})")
    for w in ws:
        await w.close()
    print(f"{label}: {len(ws)} resumes under load of {n} updates; {len(problems)} with a gap or "
          f"a repeat")
    h.check(not problems, f"{label}: resumed watchers did not get exactly the updates after "
            f"their cursor:\n  " + "\n  ".join(problems))
    return posted + [(bracket, bracket_u)]


async def reset_under_load(env, oid, ts0, since, label, joins=60, first=30, batch=20):
    """Resumes `joins` watchers with a cursor the log cannot serve, while batches are posted.

    Each must get a reset snapshot and then exactly the posted cursors after
    the snapshot's: the junction is right after the snapshot, so only the
    first `first` updates of each are compared.
    """
    posted = []
    stop = asyncio.Event()
    ts = ts0

    async def poster():
        nonlocal ts
        while not stop.is_set():
            us = []
            for i in range(batch):
                us.append(loc_update(oid, ts, ts - ts0, status="en_route_to_dropoff"))
                ts += 1
            res = await env.apost_ok(us)
            for u, r in zip(us, res):
                h.check(r.get("result") == "applied", f"{oid}: not applied: {r!r}")
                posted.append((r["cursor"], u))

    async def joiner(k):
        await asyncio.sleep(0.015 * k)
        w = await env.watch(path=f"/v1/track/{oid}?since={since}", snapshot=False)
        got = [await w.next(timeout=10, what=f"{label} joiner {k}: its frames")
               for _ in range(first + 1)]
        return w, got

    # The joiners stay (and read) until the end: the more watchers the daemon
    # feeds, the wider the window between the resume script and its reply.
    task = asyncio.ensure_future(poster())
    try:
        results = await asyncio.gather(*(joiner(k) for k in range(joins)))
    finally:
        stop.set()
        await task
    for w, _ in results:
        await w.close()
    problems = []
    for k, (_, got) in enumerate(results):
        snap = got.pop(0)
        if snap.get("type") != "snapshot" or snap.get("reset") is not True:
            problems.append(f"{label} joiner {k}: first frame is not a reset snapshot: "
                            f"{json.dumps(snap)[:300]}")
            continue
        floor = h.parse_cursor(snap["cursor"]) if snap.get("cursor") else (0, 0)
        want = [c for c, _ in posted if h.parse_cursor(c) > floor][:first]
        got_c = [f.get("cursor") if f.get("type") == "update" else f"<{f.get('type')}>"
                 for f in got]
        if got_c != want:
            i = next(i for i, (a, b) in enumerate(zip(got_c + [None], want + [None])) if a != b)
            problems.append(f"{label} joiner {k} (reset snapshot at {snap.get('cursor')}): "
                            f"first difference at update {i}: got {got_c[max(0, i - 1):i + 3]}, "
                            f"want {want[max(0, i - 1):i + 3]}")
    print(f"{label}: {joins} resumes while {len(posted)} updates were posted in batches of "
          f"{batch}; {len(problems)} with a gap or a repeat after the reset snapshot")
    h.check(not problems, f"{label}: after the reset snapshot, resumed watchers did not get "
            f"exactly the updates after its cursor (frames applied while the resume was "
            f"being read are lost):\n  " + "\n  ".join(problems))


async def phase_a(env, ck):
    oid = f"res-{os.getpid()}"
    ts0 = h.now_ms() - 3_600_000

    # 1. exact replay of 50 missed updates
    w = await env.watch(oid)
    first = await post_many(env, oid, ts0, 5)
    await expect_updates(w, first, "before disconnecting")
    cursor = w.frames[-1]["cursor"]
    await w.close()
    missed = await post_many(env, oid, ts0, 50, start=5)
    w2 = await env.watch(path=f"/v1/track/{oid}?since={cursor}", snapshot=False)
    await expect_updates(w2, missed, "replay of the 50 missed updates (no snapshot first)")
    await expect_resumed(w2, missed[-1][0], 50, "after the replay")
    await expect_quiet(w2, "after the replay")
    live = await post_many(env, oid, ts0, 5, start=55)
    await expect_updates(w2, live, "live frames after the replay")
    await expect_quiet(w2, "after the live frames")
    print(f"1. since={cursor}: replayed exactly the 50 missed updates, then 5 live ones")
    newest_c, newest_u = live[-1]

    # 2. since = the newest cursor: nothing to replay
    w3 = await env.watch(path=f"/v1/track/{oid}?since={newest_c}", snapshot=False)
    await expect_resumed(w3, newest_c, 0, "since=<newest cursor>: nothing replayed")
    await expect_quiet(w3, "since=<newest cursor>: nothing may be replayed")
    live2 = await post_many(env, oid, ts0, 3, start=60)
    await expect_updates(w3, live2, "since=<newest cursor>: live frames")
    await expect_updates(w2, live2, "the first resumed watcher: live frames")
    newest_c, newest_u = live2[-1]
    print("2. since=<newest cursor>: nothing replayed, then live frames")

    # 3. a cursor from the future: reset snapshot
    w4 = await env.watch(path=f"/v1/track/{oid}?since={FUTURE}", snapshot=False)
    f = await w4.next(what="the reset snapshot of a future cursor")
    check_reset_snapshot(f, oid, newest_c, newest_u, f"since={FUTURE}")
    await expect_quiet(w4, "after the reset snapshot")
    live3 = await post_many(env, oid, ts0, 2, start=63)
    await expect_updates(w4, live3, "live frames after the reset snapshot")
    print(f"3. since={FUTURE}: reset snapshot at {f.get('cursor')}, then live frames")
    for x in (w2, w3, w4):
        await x.close()

    # 4. invalid cursors
    for bad in ("garbage", "123", "1-x", "-1-2", "1-2-3", ""):
        wb = await env.watch(path=f"/v1/track/{oid}?since={bad}", snapshot=False)
        code, reason = await wb.wait_closed(timeout=5)
        if ck(code == 4400, f"since={bad!r}: close code {code} {reason!r}, want 4400 "
              f"(frames {wb.frames!r})"):
            ck(bool(reason), f"since={bad!r}: the 4400 close has no reason")
            ck(wb.frames and wb.frames[0].get("type") == "error",
               f"since={bad!r}: no error frame before the close: {wb.frames!r}")
            ck(not [x for x in wb.frames if x.get("type") in ("snapshot", "update")],
               f"since={bad!r}: got data frames: {wb.frames!r}")
    print("4. invalid cursors: error frame + 4400")

    # 5. resumes racing live frames
    ts1 = ts0 + 10_000
    mid = (await post_many(env, oid, ts1 - 1000, 1, start=100))[0][0]
    try:
        # n < --log-maxlen (1000): the cursor stays in the log throughout.
        await replay_under_load(env, oid, ts1, mid, "5a. since=<a cursor in the log>", n=800)
    except h.TestFailure as e:
        ck(False, str(e))
    try:
        await reset_under_load(env, oid, ts1 + 10_000, FUTURE, f"5b. since={FUTURE}")
    except h.TestFailure as e:
        ck(False, str(e))


async def phase_b(env, ck):
    """--log-maxlen 20: a cursor trimmed out of the log."""
    oid = f"trim-{os.getpid()}"
    ts0 = h.now_ms() - 1_800_000
    w = await env.watch(oid)
    early = await post_many(env, oid, ts0, 1)
    await expect_updates(w, early, "the early update")
    early_c = early[0][0]
    await w.close()
    posted = await post_many(env, oid, ts0, 250, start=1)
    first = env.redis.cli("XRANGE", f"trk:{{{oid}}}:log", "-", "+", "COUNT", "1").splitlines()
    xlen = int(env.redis.cli("XLEN", f"trk:{{{oid}}}:log"))
    h.check(first and h.parse_cursor(first[0]) > h.parse_cursor(early_c),
            f"precondition: the log (XLEN {xlen}) still holds {early_c}: first entry {first[:1]}")
    print(f"6. the log holds {xlen} of 251 entries, oldest {first[0]}; resuming from {early_c}")
    newest_c, newest_u = posted[-1]
    w2 = await env.watch(path=f"/v1/track/{oid}?since={early_c}", snapshot=False)
    f = await w2.next(what="the reset snapshot of a trimmed cursor")
    check_reset_snapshot(f, oid, newest_c, newest_u, f"since=<trimmed {early_c}>")
    await expect_quiet(w2, "after the reset snapshot of a trimmed cursor")
    live = await post_many(env, oid, ts0, 3, start=300)
    await expect_updates(w2, live, "live frames after the reset snapshot (trimmed cursor)")
    await w2.close()
    try:
        await reset_under_load(env, oid, ts0 + 1000, early_c, "6b. since=<trimmed cursor>")
    except h.TestFailure as e:
        ck(False, str(e))


async def test(env):
    ck = h.Checks()
    t0 = time.monotonic()
    await phase_a(env, ck)
    print(f"phase A done in {time.monotonic() - t0:.1f} s")

    await env.close_watchers()
    await asyncio.to_thread(env.daemon.terminate)
    env.daemon.terminated = False
    env.daemon.extra_args = ["--log-maxlen", "20"]
    env.daemon.start()
    await phase_b(env, ck)
    print(f"phase B done in {time.monotonic() - t0:.1f} s")
    r = await asyncio.to_thread(env.http, "GET", "/healthz")
    ck(r.status == 200, f"/healthz at the end: {r!r}")
    await h.stop_daemon(env, ck)
    ck.done()


if __name__ == "__main__":
    h.main(test)
