#!/usr/bin/python3
"""truth.redis_stop: redis-server frozen with SIGSTOP for 5 s, then SIGCONT.

One trackgated, 3 orders with a continuous stream of updates (POST /v1/updates
and signed Uber Direct webhooks, ~10 per order per second); watchers: 2 tracking
pages (chromium) and 12 websocket clients (short and long tokens, both orders of
?token and ?since).  Mid-stream redis-server is stopped; while it is, it answers
no PING (the fault is real); after 5 s it is continued.  Every watcher must
converge (the time is printed) and end on the order's final state with every
invariant of truth.check_watcher.
"""
import asyncio
import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import truth as T  # noqa: E402

STOP_S = 5.0


def redis_answers(s):
    try:
        return s.redis.cli("PING", timeout=0.5) == "PONG"
    except (subprocess.SubprocessError, OSError):
        return False


async def fault(s):
    s.redis.start()
    node = s.node("a").start()
    orders = s.orders(3)
    gen = s.generator(node.host, node.port, orders, period=0.1)
    gen.start()
    agent = await s.agent()
    await s.populate(agent, node.url(""), node.ws, orders, pages=2, per_order=4, ping=1)
    await s.converge(agent, gen, time.time())

    pid = s.redis.proc.pid
    before = gen.count()
    os.kill(pid, signal.SIGSTOP)
    t_stop = time.time()
    try:
        T.h.check(not redis_answers(s), "redis-server answered PING while stopped")
        await asyncio.sleep(STOP_S - (time.time() - t_stop))  # the fault's duration
        during = gen.count() - before
    finally:
        os.kill(pid, signal.SIGCONT)
    t_end = time.time()
    T.log(f"redis-server stopped for {t_end - t_stop:.2f} s; {during} updates answered meanwhile")
    await asyncio.to_thread(T.h.wait_until, lambda: redis_answers(s), 10, 0.05,
                            "redis-server answering PING after SIGCONT")
    await s.converge(agent, gen, t_end, "redis_sigstop_5s")
    await s.finish(agent, gen)
    await agent.close()
    await s.stop_nodes()


if __name__ == "__main__":
    T.main(fault, "redis_stop")
