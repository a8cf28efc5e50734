#!/usr/bin/python3
"""client.live: track.js in node against the real trackgated, a token refresh above all.

trackgated runs with an HS256 token key (tokens minted with PyJWT, as a backend
mints them); live_client.mjs runs TrackingClient on Debian's ws (node-ws) and
reports its events.  The test plays the merchant's page:

- the client connects with a token that runs out within seconds, goes live and
  gets the order;
- refreshToken(a token good for an hour) sends {"type":"refresh"} on the open
  socket: a "refreshed" event with the new exp, on the same socket;
- a python watcher with the old token is closed 4401 meanwhile (so the client
  would have been), while the client stays live (no reconnect) and gets the
  next update;
- a refresh with a token for another order: the gateway closes 4403, the client
  tries that token once more on a new connect, is refused 4403 again and stops
  in "forbidden"; refreshToken(a good token) then connects again and resumes
  (resumed, replayed 0: live, nothing missed).
"""
import asyncio
import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness as h  # noqa: E402
import jwt  # noqa: E402  (python3-jwt)

LEEWAY = 30  # gateway/auth.h AUTH_LEEWAY_S
HERE = os.path.dirname(os.path.abspath(__file__))


def mint(secret, order_id, exp):
    return jwt.encode({"order_id": order_id, "exp": exp}, secret, algorithm="HS256",
                      headers={"kid": "k1"})


class Node:
    """live_client.mjs: send() commands, expect() events."""

    def __init__(self, proc):
        self.proc = proc
        self.events = []

    async def send(self, **cmd):
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()

    async def expect(self, what, pred, timeout=10):
        for e in self.events:
            if pred(e):
                return e
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            h.check(left > 0, f"the client: no {what} within {timeout} s; events: {self.events!r}")
            try:
                line = await asyncio.wait_for(self.proc.stdout.readline(), left)
            except asyncio.TimeoutError:
                continue
            h.check(line, f"the client exited while waiting for {what}; events: {self.events!r}")
            e = json.loads(line)
            self.events.append(e)
            if pred(e):
                return e

    def states(self):
        return [e["state"] for e in self.events if e["event"] == "connection"]


async def test(env):
    secret = env.hs256_token_key()
    env.start()
    oid = f"live-{os.getpid()}"
    await env.aapply(h.update(oid, h.now_ms(), lat=52.5, lng=13.4, status="picked_up"))

    short = mint(secret, oid, int(time.time()) - LEEWAY + 4)
    proc = await asyncio.create_subprocess_exec(
        "node", os.path.join(HERE, "live_client.mjs"), f"ws://127.0.0.1:{env.port}/v1/track/{oid}",
        oid, short, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    node = Node(proc)
    try:
        control = await env.watch(path=f"/v1/track/{oid}?token={short}")
        await node.send(cmd="start")
        await node.expect("live", lambda e: e.get("state") == "live")
        e = await node.expect("the order", lambda e: e["event"] == "order")
        h.check(e["order"]["location"]["lat"] == 52.5, f"the order: {e!r}")
        print("  ok  live with the short token, the order shown")

        long_exp = int(time.time()) + 3600
        await node.send(cmd="refresh", token=mint(secret, oid, long_exp))
        e = await node.expect("refresh_sent", lambda e: e["event"] == "refresh_sent")
        h.check(e["sent"] is True, f"refreshToken on an open socket returned {e['sent']!r}")
        e = await node.expect("refreshed", lambda e: e["event"] == "refreshed")
        h.check_eq((e["orderId"], e["exp"]), (oid, long_exp), "the refreshed event")
        print(f"  ok  refreshed on the open socket: exp {long_exp}")

        code, reason = await control.wait_closed(timeout=15)
        h.check(code == 4401, f"the watcher with the old token: close {code} {reason!r}, want 4401")
        c = await env.aapply(h.update(oid, h.now_ms(), lat=52.51, lng=13.41))
        await node.expect("the update after the old token's expiry",
                          lambda e: e["event"] == "order" and e["cursor"] == c)
        h.check_eq(node.states(), ["connecting", "live"], "the client's states (no reconnect)")
        print("  ok  the old token's watcher closed 4401; the client is on the same socket, fed")

        await node.send(cmd="refresh", token=mint(secret, "another-order", long_exp))
        e = await node.expect("forbidden", lambda e: e.get("state") == "forbidden")
        h.check_eq(e["code"], 4403, "the close code of forbidden")
        h.check_eq(node.states()[2:], ["reconnecting", "forbidden"],
                   "a refused refresh: one connect with that token, then forbidden")
        await node.send(cmd="refresh", token=mint(secret, oid, long_exp + 1))
        await node.expect("live again", lambda e: e.get("state") == "live" and
                          node.states().count("live") == 2)
        h.check_eq(node.states()[-2:], ["connecting", "live"], "a new token after forbidden")
        print("  ok  a refresh for another order: 4403, one retry, forbidden; a good token: live again")
        await node.send(cmd="stop")
        await node.expect("stopped", lambda e: e.get("state") == "stopped")
    finally:
        if proc.returncode is None:
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
    h.check_eq(proc.returncode, 0, "live_client.mjs exit status")
    print("PASS checks")


if __name__ == "__main__":
    h.main(test, start=False)
