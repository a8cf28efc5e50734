#!/usr/bin/python3
"""truth.slow_reader: a client that stops reading, next to the others.

One trackgated with small per-socket bounds (send-buffer 4 KiB, outq-limit
16 KiB, slow-timeout 3 s, pong-timeout 5 s), 3 orders with a continuous stream
of updates (~20 per order per second).  On the first order: the stalled client
(a 4 KiB receive buffer, a websocket read buffer of 4 KiB and a message queue
of 1, so not reading pushes back to the gateway at once), a tracking page
(chromium) and websocket clients; more clients on the other orders.

The stalled client stops reading until the gateway gives up on it
(trackgate_slow_closes_total rises: the 4408), then reads again; from then the
convergence is timed.  Checks: the stalled client's connection ends (4408, or
the socket dropped when the close could not get out) and it resumes with
?since= (the missed frames and `resumed`, or a reset snapshot), converging like
the others; the others are never disconnected and never delayed while it is
stalled (each frame within 2 s of its POST's answer; the worst is printed);
every watcher ends on the order's final state with every invariant of
truth.check_watcher.
"""
import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import truth as T  # noqa: E402

MAX_DELAY_S = 2.0


async def fault(s):
    s.redis.start()
    node = s.node("a", extra=["--send-buffer", "4096", "--outq-limit", "16384",
                              "--slow-timeout", "3", "--pong-timeout", "5",
                              "--metrics-listen", f"127.0.0.1:{T.h.free_port()}"]).start()
    mport = int(node.extra[node.extra.index("--metrics-listen") + 1].rsplit(":", 1)[1])
    orders = s.orders(3)
    gen = s.generator(node.host, node.port, orders, period=0.05)
    gen.start()
    agent = await s.agent()
    await s.populate(agent, node.url(""), node.ws, orders, pages=1, per_order=3, ping=1)
    slow = {"id": "slow", "order": orders[0], "url": node.ws(orders[0]),
            "token": T.mint(orders[0], long=True), "slow": True, "rcvbuf": 4096}
    await agent.ws([slow])
    await s.converge(agent, gen, time.time())
    await s.stream(gen, 10)

    closes0 = T.metric("127.0.0.1", mport, "trackgate_slow_closes_total")
    await agent.call("stall", ids=["slow"])
    t_stall = time.time()
    try:
        await asyncio.to_thread(
            T.h.wait_until,
            lambda: T.metric("127.0.0.1", mport, "trackgate_slow_closes_total") > closes0,
            30 * s.scale, 0.05, "the gateway giving up on the stalled client (4408)")
    finally:
        await agent.call("unstall", ids=["slow"])
    t_end = time.time()
    T.log(f"the stalled client was dropped {t_end - t_stall:.2f} s after it stopped reading")
    await s.converge(agent, gen, t_end, "slow_reader")
    await s.stream(gen, 10)
    dump, truth = await s.finish(agent, gen)

    done = {}
    for p in gen.snapshot():
        if p.cursor:
            done[(p.order, p.cursor)] = p.t_done
    worst = (0.0, None)
    for w in dump["watchers"]:
        wid = f"{w['kind']} {w['id']}"
        if w["id"] == "slow":
            first = w["conns"][0]
            s.ck(first["t_close"] is not None and first["t_close"] >= t_stall,
                 f"the stalled client's first connection did not end ({first['code']})")
            s.ck(first["code"] in (4408, 1006, None),
                 f"the stalled client was closed with {first['code']} {first['reason']!r}")
            later = [c for c in w["conns"][1:] if c["t_open"]]
            s.ck(later and later[0]["since"], "the stalled client did not resume with ?since=")
            if later:
                kinds = [f[T.F_TYPE] for f in later[0]["frames"]]
                s.ck("resumed" in kinds or (kinds and kinds[0] == "snapshot"
                                            and later[0]["frames"][0][T.F_RESET]),
                     f"the stalled client's resume: frames {kinds[:6]}")
            continue
        opened = [c for c in w["conns"] if c["t_open"]]
        s.ck(len(opened) == 1, f"{wid} was disconnected: "
                               f"{[(c['code'], c['error']) for c in w['conns']]}")
        for c in w["conns"]:
            for f in c["frames"]:
                if f[T.F_TYPE] != "update" or not (t_stall <= f[T.F_T] <= t_end):
                    continue
                d = f[T.F_T] - done.get((w["order"], f[T.F_CUR]), f[T.F_T])
                if d > worst[0]:
                    worst = (d, f"{wid} {f[T.F_CUR]}")
    print(f"truth: slow_reader: the others' worst delay while one client was stalled: "
          f"{worst[0] * 1000:.0f} ms ({worst[1]})", flush=True)
    s.ck(worst[0] <= MAX_DELAY_S * s.scale,
         f"a watcher next to the stalled one was delayed {worst[0]:.2f} s ({worst[1]})")
    await agent.close()
    await s.stop_nodes()


if __name__ == "__main__":
    T.main(fault, "slow_reader")
