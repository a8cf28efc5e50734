#!/usr/bin/python3
"""truth.balancer_kill: two trackgated nodes behind haproxy; one is SIGKILLed mid-stream.

Two nodes share one redis-server.  Debian's haproxy, started by the test with a
config it writes (truth.HAProxy: HTTP mode, websockets passed through as
tunnels, round robin, /healthz checked every 200 ms, a refused connection
redispatched to the other server, X-Trackgate-Node naming the server), is the
only address the watchers and the generator know.  Watchers: 2 tracking pages
(chromium; round robin puts one on each node) and 12 websocket clients.
Updates flow through the balancer (POST /v1/updates and signed Uber Direct
webhooks; a request cut by the kill is retried with its event_id).

The node holding the first page is SIGKILLed.  Its pages and clients must
reconnect through the balancer to the other node and resume there (?since=:
the missed frames, then the `resumed` frame - never a plain snapshot); the
convergence is timed from the kill.  The watchers of the surviving node must
not notice.  Finally every watcher must end on the order's final state with
every invariant of truth.check_watcher.
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
    nodes = [s.node("a").start(), s.node("b").start()]
    s.haproxy = T.HAProxy(s, nodes).start()
    lb = s.haproxy
    base = f"http://127.0.0.1:{lb.port}"
    orders = s.orders(3)
    gen = s.generator("127.0.0.1", lb.port, orders, period=0.1)
    gen.start()
    agent = await s.agent()
    await s.populate(agent, base, lambda o: f"ws://127.0.0.1:{lb.port}/v1/track/{o}", orders,
                     pages=2, per_order=4, ping=1)
    await s.converge(agent, gen, time.time())
    await s.stream(gen, 10)

    # Who is where: the handshakes' X-Trackgate-Node.
    path = os.path.join(s.log_dir, "before.json")
    await agent.call("dump", path=path, timeout=60)
    with open(path) as f:
        before = T.json.load(f)["watchers"]

    def node_of(w):
        if w["kind"] == "page":
            return w["nodes"][-1][1] if w["nodes"] else None
        return w["conns"][-1]["node"]
    where = {w["id"]: node_of(w) for w in before}
    T.log("before the kill: " + ", ".join(
        f"{n.name}: {sum(1 for v in where.values() if v == n.name)} watchers" for n in nodes))
    T.h.check(None not in where.values(), f"a watcher's handshake named no node: {where}")
    victim = next(n for n in nodes if n.name == where["page0"])
    other = next(n for n in nodes if n is not victim)
    on_victim = sorted(i for i, v in where.items() if v == victim.name)
    on_other = sorted(i for i, v in where.items() if v == other.name)
    T.h.check(on_other and any(i.startswith("page") for i in on_other),
              f"round robin put no page on {other.name}: {where}")

    t_kill = time.time()
    victim.kill()
    T.log(f"SIGKILLed node {victim.name} ({len(on_victim)} watchers: {on_victim})")
    await asyncio.to_thread(T.h.wait_until, lambda: victim.name not in lb.up_servers(), 10, 0.02,
                            f"haproxy marking {victim.name} DOWN")
    T.log(f"haproxy marked {victim.name} DOWN {time.time() - t_kill:.2f} s after the kill")
    await s.converge(agent, gen, t_kill, "balancer_sigkill")
    await s.stream(gen, 10)
    dump, truth = await s.finish(agent, gen)
    for w in dump["watchers"]:
        wid = f"{w['kind']} {w['id']}"
        if w["id"] in on_victim:
            after = [c for c in w["conns"] if c["t_try"] >= t_kill - 0.001 and c["t_open"]]
            s.ck(after, f"{wid} was on {victim.name} and never reconnected")
            if not after:
                continue
            first = after[0]
            node = first["node"] if w["kind"] == "ws" else next(
                (n for t, n in w["nodes"] if t >= t_kill), None)
            s.ck(node == other.name, f"{wid} reconnected to {node}, not {other.name}")
            s.ck(first["since"] is not None, f"{wid} reconnected without ?since=")
            kinds = [f[T.F_TYPE] for f in first["frames"]]
            s.ck("resumed" in kinds and "snapshot" not in kinds,
                 f"{wid} did not resume on {other.name} (frames: {kinds[:6]})")
        else:
            s.ck(len(w["conns"]) == 1, f"{wid} on {other.name} reconnected "
                 f"({[(c['code'], c['error']) for c in w['conns']]})")
    await agent.close()
    await s.stop_nodes()


if __name__ == "__main__":
    T.main(fault, "balancer_kill")
