#!/usr/bin/python3
"""integration.query_args: query arguments as real clients write them.

Tokens are configured, as in production, and minted with an outside library
(PyJWT, Debian's python3-jwt), long ones among them (a JWT with a large
claim, > 500 characters).  Browsers build the websocket URL with
URLSearchParams, token first; other clients put since first.  For every
order and length:

1. ?token=LONG&since=C and ?since=C&token=LONG both resume: the missed
   update frames, then a resumed frame {"type":"resumed","cursor":..,
   "replayed":N}; with nothing missed, only the resumed frame (replayed 0).
2. ?token=LONG&since=zzz is refused with 4400 (invalid_cursor), as
   ?since=zzz&token=LONG is.
3. An argument given twice is refused, never "first wins" or "last wins":
   since twice or token twice on the websocket -> error frame invalid_query +
   close 4400; token twice on GET /v1/orders/{ID} -> 400 invalid_query; the
   page /t/{ID} with token twice -> 400; Onfleet's ?check= twice -> 400.
4. Arguments the gateway does not read (utm_source=..., a bare flag, an
   empty one) change nothing, before or after the token.
5. GET /v1/orders/{ID}?x=LONG&token=T answers 200: the token is found after
   a long argument.
"""
import asyncio
import json
import os
import sys
import time
import urllib.parse

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

import jwt  # noqa: E402  (python3-jwt: tokens minted the way a backend mints them)

SECRET = os.urandom(32).hex()


def mint(order_id, pad=0):
    claims = {"order_id": order_id, "exp": int(time.time()) + 3600}
    if pad:
        claims["merchant_note"] = "m" * pad  # what a backend may put in its links
    return jwt.encode(claims, SECRET, algorithm="HS256", headers={"kid": "k1"})


async def refused(env, path, code, error, what):
    w = h.Watcher(env.port, path)
    await w.connect()
    env.watchers.append(w)
    await w.wait_closed(5)
    h.check(w.close_code == code, f"{what}: closed with {w.close_code} {w.close_reason!r}, want {code}")
    h.check(w.frames and w.frames[0].get("type") == "error" and w.frames[0].get("error") == error,
            f"{what}: first frame {w.frames[:1]!r}, want an error frame {error!r}")
    return w


async def resume(env, oid, query, posted, what):
    """Connects with query; expects exactly posted [(cursor, update)], then resumed."""
    w = h.Watcher(env.port, f"/v1/track/{oid}?{query}")
    await w.connect()
    env.watchers.append(w)
    for i, (c, u) in enumerate(posted):
        f = await w.next(timeout=5, what=f"{what}: replayed frame {i}")
        h.check(f.get("type") == "update" and f.get("cursor") == c,
                f"{what}: frame {i}: want the update at {c}, got {json.dumps(f)[:300]}")
    f = await w.next(timeout=5, what=f"{what}: the resumed frame")
    h.check(f.get("type") == "resumed", f"{what}: want a resumed frame, got {json.dumps(f)[:300]}")
    h.check_eq(f.get("order_id"), oid, f"{what}: resumed order_id")
    h.check_eq(f.get("replayed"), len(posted), f"{what}: resumed replayed")
    want_cursor = posted[-1][0] if posted else dict(urllib.parse.parse_qsl(query))["since"]
    h.check_eq(f.get("cursor"), want_cursor, f"{what}: resumed cursor")
    return w


async def test(env):
    env.hs256_token_key(secret=SECRET)
    hook_file = os.path.join(env.log_dir, "onfleet.secret")
    with open(hook_file, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    os.chmod(hook_file, 0o600)
    env.daemon.extra_args += ["--webhook-secret-file", f"onfleet={hook_file}"]
    env.start()
    r = await asyncio.to_thread(env.http, "GET", f"/v1/webhooks/onfleet?x={'y' * 400}&check=abc")
    h.check(r.status == 200 and r.raw.endswith(b"abc"),
            f"Onfleet's check after a long argument: {r!r} (want 200 abc)")
    r = await asyncio.to_thread(env.http, "GET", "/v1/webhooks/onfleet?check=abc&check=def")
    h.check(r.status == 400 and r.json.get("error") == "invalid_query",
            f"Onfleet's check twice: {r!r} (want 400 invalid_query)")
    pid = os.getpid()

    # The largest keeps the token-twice URL inside lws's 4 KiB of header space.
    for pad in (0, 300, 1000):
        oid = f"q-{pid}-{pad}"
        tok = mint(oid, pad)
        print(f"--- token of {len(tok)} characters")
        first = await env.aapply(h.update(oid, h.now_ms(), lat=52.5, lng=13.4, status="picked_up"))
        missed = []
        for i in range(3):
            u = h.update(oid, h.now_ms() + i + 1, lat=52.5 + i / 100, lng=13.4)
            missed.append((await env.aapply(u), u))
        for name, q in (("token first (URLSearchParams)",
                         urllib.parse.urlencode({"token": tok, "since": first})),
                        ("since first", urllib.parse.urlencode({"since": first, "token": tok})),
                        ("among unread arguments",
                         f"utm_source=sms&flag&&token={tok}&x={'y' * 200}&since={first}")):
            w = await resume(env, oid, q, missed, f"{oid}: {name}")
            await w.close()
        newest = missed[-1][0]
        w = await resume(env, oid, urllib.parse.urlencode({"token": tok, "since": newest}), [],
                         f"{oid}: nothing missed")
        # Live after the resumed frame: the next update arrives.
        u = h.update(oid, h.now_ms() + 10, lat=52.6, lng=13.5)
        c = await env.aapply(u)
        f = await w.update()
        h.check_eq(f.get("cursor"), c, f"{oid}: the live update after a clean resume")
        await w.close()

        await refused(env, f"/v1/track/{oid}?token={tok}&since=zzz", 4400, "invalid_cursor",
                      f"{oid}: token then a bad since")
        await refused(env, f"/v1/track/{oid}?since=zzz&token={tok}", 4400, "invalid_cursor",
                      f"{oid}: a bad since then token")
        await refused(env, f"/v1/track/{oid}?token={tok}&since={first}&since={newest}", 4400,
                      "invalid_query", f"{oid}: since twice")
        await refused(env, f"/v1/track/{oid}?token={tok}&since={first}&token={tok}", 4400,
                      "invalid_query", f"{oid}: token twice")

        r = await asyncio.to_thread(env.http, "GET", f"/v1/orders/{oid}?x={'y' * 300}&token={tok}")
        h.check(r.status == 200 and r.json.get("order_id") == oid,
                f"GET /v1/orders/{oid} with the token after a long argument: {r!r}")
        r = await asyncio.to_thread(env.http, "GET", f"/v1/orders/{oid}?token={tok}&token={tok}")
        h.check(r.status == 400 and r.json.get("error") == "invalid_query",
                f"GET /v1/orders/{oid} with token twice: {r!r} (want 400 invalid_query)")
        r = await asyncio.to_thread(env.http, "GET", f"/t/{oid}?token={tok}&token={tok}")
        h.check(r.status == 400, f"GET /t/{oid} with token twice: {r!r} (want 400)")
        r = await asyncio.to_thread(env.http, "GET", f"/t/{oid}?utm_source=sms&token={tok}")
        h.check(r.status == 200, f"GET /t/{oid} with an unread argument: {r!r} (want 200)")

    # A plain connect (no since) still starts with the snapshot, and no resumed frame.
    oid = f"q-{pid}-0"
    w = h.Watcher(env.port, f"/v1/track/{oid}?token={mint(oid, 300)}")
    await w.connect()
    env.watchers.append(w)
    snap = await w.snapshot()
    h.check_eq(snap.get("order_id"), oid, "a plain connect's snapshot")
    await w.close()
    h.check(not any(f.get("type") == "resumed" for f in w.frames),
            f"a connect without since got a resumed frame: {w.frames!r}")
    print("PASS checks")


if __name__ == "__main__":
    h.main(test, start=False)
