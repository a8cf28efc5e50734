#!/usr/bin/python3
"""integration.token_refresh: a tracking page refreshes its token without dropping the socket.

A client sends {"type":"refresh","token":T} on its open websocket (proto/README.md).
trackgated runs with an HS256 token key; tokens are minted with PyJWT (python3-jwt),
the way a merchant's backend mints them.

- A watcher whose token runs out within the leeway (exp = now - 27 s: closed by the
  gateway about 3 s later) sends a refresh with a token good for an hour: it gets
  {"type":"refreshed","order_id":ID,"exp":E} with the new exp, and is still open and
  receiving updates after the old token's expiry has passed; a second watcher with the
  same short token and no refresh is closed 4401 meanwhile (so the first one would have
  been).
- A refresh whose token is 1.5 kB (extra claims), sent in one frame, works too (lws
  hands it over in 128-byte pieces).
- A refresh with a token for another order: an error frame, then 4403.
- A refresh with a token that is not valid (bad signature): an error frame, then 4401.
- A refresh without a token string: 4401.
- Other text messages are ignored (the watcher stays and gets updates).
- A second trackgated without token keys ignores a refresh: nothing is sent back, the
  socket stays.
"""
import asyncio
import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import jwt  # noqa: E402  (python3-jwt)

LEEWAY = 30  # gateway/auth.h AUTH_LEEWAY_S


def mint(secret, order_id, exp, **extra):
    claims = {"order_id": order_id, "iat": int(time.time()), "exp": exp}
    claims.update(extra)
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": "k1"})


async def refresh(w, token):
    await w.ws.send(json.dumps({"type": "refresh", "token": token}))


async def expect_refreshed(w, oid, exp, what):
    while True:
        f = await w.next(what=f"{what}: the refreshed frame")
        if f.get("type") == "refreshed":
            h.check(f == {"type": "refreshed", "order_id": oid, "exp": exp},
                    f"{what}: refreshed frame {f!r}, want exp {exp}")
            return
        h.check(f.get("type") == "update", f"{what}: unexpected frame {f!r}")


async def expect_refused(w, code, what):
    got, reason = await w.wait_closed(timeout=10)
    h.check(got == code, f"{what}: close {got} {reason!r}, want {code}")
    h.check(bool(reason), f"{what}: the close has no reason")
    errors = [f for f in w.frames if f.get("type") == "error"]
    h.check(errors, f"{what}: no error frame before the close: {w.frames!r}")
    print(f"  ok  {what}: error frame, close {got} {reason!r}")


async def test(env):
    secret = env.hs256_token_key()
    env.start()
    oid = f"refr-{os.getpid()}"
    await env.aapply(h.update(oid, h.now_ms(), lat=52.5, lng=13.4, status="picked_up"))

    print("--- a refresh keeps a watcher whose token runs out")
    short_exp = int(time.time()) - LEEWAY + 3
    short = mint(secret, oid, short_exp)
    kept = await env.watch(path=f"/v1/track/{oid}?token={short}")
    control = await env.watch(path=f"/v1/track/{oid}?token={short}")
    long_exp = int(time.time()) + 3600
    await refresh(kept, mint(secret, oid, long_exp))
    await expect_refreshed(kept, oid, long_exp, "refresh")
    print(f"  ok  refreshed: exp {long_exp}")
    code, reason = await control.wait_closed(timeout=15)
    h.check(code == 4401, f"the watcher without a refresh: close {code} {reason!r}, want 4401")
    print(f"  ok  the watcher without a refresh was closed 4401 {reason!r}")
    # Its old token is past the leeway now (the control's close proves the sweep ran).
    c = await env.aapply(h.update(oid, h.now_ms(), lat=52.51, lng=13.41))
    f = await kept.update()
    h.check(f.get("cursor") == c, f"the refreshed watcher: update {f!r}, want cursor {c}")
    h.check(not kept.closed.is_set(), "the refreshed watcher was closed")
    print("  ok  the refreshed watcher is open and gets updates past its old expiry")

    print("--- a 1.5 kB token")
    big = mint(secret, oid, long_exp + 1, pad="x" * 1100)
    h.check(len(big) > 1500, f"the long token is {len(big)} bytes")
    await refresh(kept, big)
    await expect_refreshed(kept, oid, long_exp + 1, "a 1.5 kB refresh")
    print(f"  ok  a {len(big)}-byte token refreshed")

    print("--- other messages are ignored")
    await kept.ws.send(json.dumps({"type": "hello"}))
    await kept.ws.send("not json")
    c = await env.aapply(h.update(oid, h.now_ms(), lat=52.52, lng=13.42))
    f = await kept.update()
    h.check(f.get("cursor") == c, f"after other messages: update {f!r}, want cursor {c}")
    print("  ok  still open and fed")

    print("--- bad refreshes close as a refused upgrade would")
    w = await env.watch(path=f"/v1/track/{oid}?token={mint(secret, oid, long_exp)}")
    await refresh(w, mint(secret, "another-order", long_exp))
    await expect_refused(w, 4403, "a token for another order")
    w = await env.watch(path=f"/v1/track/{oid}?token={mint(secret, oid, long_exp)}")
    await refresh(w, mint("0" * 64, oid, long_exp))
    await expect_refused(w, 4401, "a token with a bad signature")
    w = await env.watch(path=f"/v1/track/{oid}?token={mint(secret, oid, long_exp)}")
    await w.ws.send(json.dumps({"type": "refresh", "token": 42}))
    await expect_refused(w, 4401, "a refresh without a token string")
    h.check(not kept.closed.is_set(), "the refreshed watcher was closed by others' refusals")

    print("--- without token keys a refresh is ignored")
    other_dir = os.path.join(env.log_dir, "no-keys")
    os.makedirs(other_dir, exist_ok=True)
    second = h.Daemon(env.args.trackgated, env.redis.sock, env.key_file, other_dir)
    second.start()  # from the main thread: PR_SET_PDEATHSIG follows the thread that spawned
    try:
        w = h.Watcher(second.port, f"/v1/track/{oid}")
        await w.connect()
        env.watchers.append(w)
        await w.snapshot()
        await refresh(w, mint(secret, oid, long_exp))
        c = await env.aapply(h.update(oid, h.now_ms(), lat=52.53, lng=13.43))
        f = await w.update()
        h.check(f.get("cursor") == c, f"no token keys: the next frame {f!r}, want the update {c}")
        h.check(not w.closed.is_set(), "no token keys: the watcher was closed")
        print("  ok  ignored; the watcher is open")
    finally:
        await asyncio.to_thread(second.terminate)


if __name__ == "__main__":
    h.main(test, start=False)
