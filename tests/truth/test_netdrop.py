#!/usr/bin/python3
"""truth.netdrop: five 2-second network drops between the watchers and the gateway.

The watchers live in a network namespace of their own, behind a router
namespace (truth.Netns):  gateway (this namespace) == router == watchers.
trackgated listens on this namespace's end of the link; the agent holding the
watchers runs inside the watchers' namespace (`ip netns exec`): 2 tracking pages
(chromium, its own profile) and 12 websocket clients (short and long tokens,
both orders of ?token and ?since, pinging every second).  Updates flow
continuously (POST /v1/updates and signed Uber Direct webhooks, from this
namespace).

Five times: every packet through the router is dropped for 2 s
(`tc qdisc replace dev X root pfifo limit 0` on both of the router's veths; this
kernel has no netem), proven by both qdiscs' drop counters; then the qdiscs are
removed and the convergence is timed from that moment.  The gateway-to-watchers
counter counts the update frames (and their retransmissions) that were cut; in
the other direction the agent also sends three UDP datagrams to the gateway
during each drop, so that counter never depends on TCP's retransmission timing.  Finally every watcher
must end on the order's final state with every invariant of truth.check_watcher.

Network namespaces need root: without them this test FAILS, it never skips.
"""
import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import truth as T  # noqa: E402

DROPS = 5
DROP_S = 2.0


async def fault(s):
    s.netns = T.Netns().create()
    s.redis.start()
    node = s.node("a", host=s.netns.gw_addr).start()
    orders = s.orders(3)
    gen = s.generator(node.host, node.port, orders, period=0.1)
    gen.start()
    agent = await s.agent(netns=s.netns)
    await s.populate(agent, node.url(""), node.ws, orders, pages=2, per_order=4, ping=1)
    await s.converge(agent, gen, time.time())
    times = []
    for k in range(1, DROPS + 1):
        await s.stream(gen, 5)
        s.netns.drop()
        t0 = time.time()
        try:
            await agent.call("knock", host=node.host, port=node.port, n=3)
            await asyncio.sleep(DROP_S - (time.time() - t0))  # the fault's duration
            drops = s.netns.drops()
        finally:
            s.netns.undrop()
        t_end = time.time()
        T.log(f"drop {k}: {t_end - t0:.2f} s; router qdiscs: "
              + ", ".join(f"{i} dropped {n}" for i, (n, _) in drops.items()))
        for i, (n, line) in drops.items():
            T.h.check(n > 0, f"drop {k}: {i}'s qdisc dropped nothing ({line}): no fault happened")
        times.append(await s.converge(agent, gen, t_end, f"netdrop_2s#{k}"))
    print(f"truth: netdrop_2s x{DROPS}: slowest {max(times)} ms, mean "
          f"{sum(times) // len(times)} ms", flush=True)
    s.results.append({"fault": "netdrop_2s", "ms": max(times), "watchers": 14,
                      "each_ms": times})
    await s.stream(gen, 5)
    await s.finish(agent, gen)
    await agent.close()
    await s.stop_nodes()


if __name__ == "__main__":
    T.main(fault, "netdrop")
