#!/usr/bin/python3
"""integration.noscript: the apply script survives Redis forgetting it.

trackgated loads apply_update.lua once (SCRIPT LOAD) and calls it by EVALSHA.
After SCRIPT FLUSH (as after a Redis restart or failover) the next EVALSHA
meets NOSCRIPT; the update must still be applied, and delivered, by sending
the script's body once more, and the following ones must go by EVALSHA again.
"""
import hashlib
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


async def test(env):
    oid = f"noscript-{os.getpid()}"
    base = h.now_ms() - 60_000
    w = await env.watch(oid)

    c1 = await env.aapply(h.update(oid, base + 100, lat=48.85, lng=2.35, status="picked_up"))
    h.check_eq(env.redis.cli("SCRIPT", "FLUSH"), "OK", "SCRIPT FLUSH")
    c2 = await env.aapply(h.update(oid, base + 200, lat=48.86, lng=2.36))
    c3 = await env.aapply(h.update(oid, base + 300, lat=48.87, lng=2.37))
    for c in (c1, c2, c3):
        f = await w.update()
        h.check_eq(f.get("cursor"), c, "update frame after SCRIPT FLUSH")
    # The retry re-cached the script (the SHA of the exact bytes trackgated embeds).
    lua = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto",
                       "apply_update.lua")
    with open(lua, "rb") as f:
        sha = hashlib.sha1(f.read()).hexdigest()
    h.check_eq(env.redis.cli("SCRIPT", "EXISTS", sha), "1", "the script is cached again")

if __name__ == "__main__":
    h.main(test)
