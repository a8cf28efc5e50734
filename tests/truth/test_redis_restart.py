#!/usr/bin/python3
"""truth.redis_restart: redis-server killed (SIGKILL) and restarted without persistence.

One trackgated, 3 orders with a continuous stream of updates (POST /v1/updates
and signed Uber Direct webhooks); watchers: 2 tracking pages (chromium) and 12
websocket clients (short and long tokens, both orders of ?token and ?since).
Mid-stream redis-server is SIGKILLed; the gateway notices (/readyz 503), the
generator's posts fail and are retried; redis-server starts again on the same
unix socket with nothing (no persistence: the states, logs and de-duplication
sets are gone).  From its first PING the convergence is timed.  Every watcher
must have received a snapshot with "reset":true after the kill (its cursor is
in no log any more), converge, and end on the order's final state with every
invariant of truth.check_watcher.

The generator sends no stale fixes here: after Redis lost the order, an old fix
arriving late is news to it, and a page would rightly show it.
"""
import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import truth as T  # noqa: E402


async def fault(s):
    s.redis.start()
    node = s.node("a").start()
    orders = s.orders(3)
    gen = s.generator(node.host, node.port, orders, period=0.1, inject=False)
    gen.start()
    agent = await s.agent()
    await s.populate(agent, node.url(""), node.ws, orders, pages=2, per_order=4, ping=1)
    await s.converge(agent, gen, time.time())
    await s.stream(gen, 10)

    t_kill = time.time()
    s.redis.proc.kill()
    s.redis.proc.wait(10)
    await asyncio.to_thread(
        T.h.wait_until,
        lambda: T.http_once(node.host, node.port, "GET", "/readyz").status == 503, 10, 0.02,
        "/readyz 503 once redis-server is dead")
    T.log(f"redis-server killed; the gateway noticed in {time.time() - t_kill:.2f} s")
    s.redis.start()  # same socket, empty (no persistence); from the main thread (PDEATHSIG)
    t_end = time.time()
    await s.converge(agent, gen, t_end, "redis_restart")
    await s.stream(gen, 10)
    dump, truth = await s.finish(agent, gen)
    for w in dump["watchers"]:
        resets = [f for c in w["conns"] for f in c["frames"]
                  if f[T.F_TYPE] == "snapshot" and f[T.F_RESET] and f[T.F_T] >= t_kill]
        s.ck(resets, f"{w['kind']} {w['id']}: no snapshot with reset:true after the restart")
    await agent.close()
    await s.stop_nodes()


if __name__ == "__main__":
    T.main(fault, "redis_restart")
