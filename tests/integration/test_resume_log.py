#!/usr/bin/python3
"""integration.resume_log: a resume delivers every logged entry after its cursor, or resets.

With the default log-maxlen (1000), 1 100 updates are posted to one order;
the newest of them is a status change.  Then, each on a fresh websocket with
?since=:

1. the oldest cursor the log holds (XRANGE - + COUNT 1): every entry after it
   (exactly what XRANGE lists, the status change among them), then a
   resumed frame with replayed = that count and the newest cursor; then
   live frames;
2. a cursor just trimmed (the one before the oldest): a reset snapshot of
   the newest state, no replay, no resumed frame;
3. the newest cursor: only a resumed frame, replayed 0;
4. a cursor from the future: a reset snapshot;
5. a log longer than log-maxlen (a publisher that calls the script with a
   larger cap, as any publisher may): a resume from its oldest entry resets
   rather than delivering a part and going live.
The log holds exactly log-maxlen entries after the 1 100 updates (exact trim).
"""
import asyncio
import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto",
                      "apply_update.lua")
FUTURE = "99999999999999-0"


def log_ids(env, oid):
    out = env.redis.cli("XRANGE", f"trk:{{{oid}}}:log", "-", "+").splitlines()
    # redis-cli's raw output: id, field, value for each entry.
    return [out[i] for i in range(0, len(out), 3)]


async def post_many(env, oid, ts0, n, last_status):
    posted = []
    for b in range(0, n, 100):
        us = [h.update(oid, ts0 + i, lat=40 + i / 10000, lng=8,
                       status=last_status if i == n - 1 else None)
              for i in range(b, min(n, b + 100))]
        res = await env.apost_ok(us)
        for u, r in zip(us, res):
            h.check(r.get("result") == "applied", f"{oid}: not applied: {r!r}")
            posted.append((r["cursor"], u))
    return posted


async def connect(env, oid, since):
    w = h.Watcher(env.port, f"/v1/track/{oid}?since={since}")
    await w.connect()
    env.watchers.append(w)
    return w


async def expect_reset(w, newest, what):
    f = await w.next(timeout=5, what=f"{what}: the reset snapshot")
    h.check(f.get("type") == "snapshot" and f.get("reset") is True and f.get("cursor") == newest,
            f"{what}: want a reset snapshot at {newest}, got {json.dumps(f)[:300]}")
    return f


async def test(env):
    pid = os.getpid()
    oid = f"rl-{pid}"
    posted = await post_many(env, oid, h.now_ms() - 100000, 1100, "at_dropoff")
    newest = posted[-1][0]
    ids = await asyncio.to_thread(log_ids, env, oid)
    h.check_eq(len(ids), 1000, "entries in the log after 1 100 updates (log-maxlen 1000)")
    h.check_eq(ids[-1], newest, "the log's newest entry")
    by_cursor = {c: u for c, u in posted}

    print("--- 1. since = the oldest logged cursor")
    w = await connect(env, oid, ids[0])
    for i, c in enumerate(ids[1:]):
        f = await w.next(timeout=10, what=f"replayed frame {i}")
        h.check(f.get("type") == "update" and f.get("cursor") == c and f.get("update") == by_cursor[c],
                f"oldest: frame {i}: want the update at {c}, got {json.dumps(f)[:300]}")
    f = await w.next(timeout=5, what="the resumed frame")
    h.check(f == {"type": "resumed", "order_id": oid, "cursor": newest, "replayed": len(ids) - 1},
            f"oldest: want resumed at {newest} replayed {len(ids) - 1}, got {f!r}")
    h.check(any(fr.get("update", {}).get("status") == "at_dropoff" for fr in w.frames),
            "oldest: the newest status change was not delivered")
    live = await env.aapply(h.update(oid, h.now_ms(), lat=41, lng=9))
    f = await w.update()
    h.check_eq(f.get("cursor"), live, "oldest: the live frame after the replay")
    await w.close()
    newest = live

    print("--- 2. since = a cursor just trimmed")
    ids = await asyncio.to_thread(log_ids, env, oid)
    trimmed = max((c for c, _ in posted if h.parse_cursor(c) < h.parse_cursor(ids[0])),
                  key=h.parse_cursor)
    w = await connect(env, oid, trimmed)
    snap = await expect_reset(w, newest, "just trimmed")
    h.check_eq(snap["state"].get("status"), "at_dropoff", "just trimmed: the snapshot's status")
    await w.close()
    h.check(not any(fr.get("type") in ("update", "resumed") for fr in w.frames),
            f"just trimmed: frames besides the reset snapshot: {w.frames[:3]!r}")

    print("--- 3. since = the newest cursor")
    w = await connect(env, oid, newest)
    f = await w.next(timeout=5, what="the resumed frame")
    h.check(f == {"type": "resumed", "order_id": oid, "cursor": newest, "replayed": 0},
            f"newest: want only a resumed frame, got {f!r}")
    await w.close()

    print("--- 4. since = the future")
    w = await connect(env, oid, FUTURE)
    await expect_reset(w, newest, "future")
    await w.close()

    print("--- 5. a log longer than log-maxlen")
    big = f"rl-big-{pid}"
    with open(SCRIPT) as f:
        sha = await asyncio.to_thread(env.redis.cli, "SCRIPT", "LOAD", f.read())
    ts0 = h.now_ms() - 50000
    keys = f"trk:{{{big}}}:state trk:{{{big}}}:log trk:{{{big}}}:seen"
    # One redis-cli reading 1 100 commands; json.dumps quotes as redis-cli parses.
    cmds = "".join(f"EVALSHA {sha} 3 {keys} "
                   f"{json.dumps(json.dumps(h.update(big, ts0 + i, lat=40 + i / 10000, lng=8)))}"
                   f" 3600 600 5000\n" for i in range(1100))
    r = await asyncio.to_thread(subprocess.run, [h.REDIS_CLI, "-s", env.redis.sock],
                                input=cmds.encode(), capture_output=True, timeout=60)
    h.check(r.returncode == 0 and r.stdout.decode().count("applied") == 1100,
            f"EVALSHA with a cap of 5000: {r.stdout[-300:]!r} {r.stderr[-300:]!r}")
    ids = await asyncio.to_thread(log_ids, env, big)
    h.check_eq(len(ids), 1100, "entries in the longer log")
    w = await connect(env, big, ids[0])
    await expect_reset(w, ids[-1], "a log longer than log-maxlen")
    await w.close()
    h.check(not any(fr.get("type") == "update" for fr in w.frames),
            "a log longer than log-maxlen: a partial replay was sent")
    print("PASS checks")


if __name__ == "__main__":
    h.main(test)
