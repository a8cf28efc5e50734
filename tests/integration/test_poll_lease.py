#!/usr/bin/python3
"""integration.poll_lease: one node at a time polls an order, and another takes over when it
dies (/tmp/poll_spec.md, Lease), against the fake Onfleet API (fake_providers.py).

Two trackgated processes on one Redis, [poll.onfleet] interval-ms 200 and lease-ms 600,
both watching one order whose source is an Onfleet worker.

- Only one polls: over a window of many intervals one daemon's
  trackgate_poll_requests_total grows and the other's does not; trackgate_poll_orders is
  {state="polling"} 1 on the holder and {state="waiting"} 1 on the other; the Redis lease
  trk:{ID}:poll_lease holds a node id and lives at most lease-ms; the fake sees one poll
  per interval (+-10 %), not two.
- SIGKILL the holder: the other daemon polls within about lease-ms + lease-ms/3 (the fake
  measures the gap), counts trackgate_poll_leases_acquired_total, shows {state="polling"}
  1, the lease holds another node id, and its watcher keeps getting frames: moves of the
  worker after the kill reach it.
"""
import asyncio
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import fake_providers as fp  # noqa: E402

INTERVAL_MS = 200
LEASE_MS = 600
TAKEOVER_S = (LEASE_MS + LEASE_MS / 3 + INTERVAL_MS) / 1000 + 0.4  # "about": one interval + slack
REF = "wrk_lease_1"


def near(a, b):
    return a is not None and abs(a[0] - b[0]) < 1e-6 and abs(a[1] - b[1]) < 1e-6


def polled(d):
    return fp.metric(h.scrape_metrics(d.port), "trackgate_poll_requests_total",
                     provider="onfleet")


async def test(env):
    ck = h.Checks()
    fake = fp.FakeProviders()
    second = None
    try:
        conf = fp.write_poll_config(fake, env.log_dir, providers=("onfleet",),
                                    common={"interval-ms": INTERVAL_MS, "lease-ms": LEASE_MS})
        env.daemon.extra_args += ["--config", conf]
        env.start()
        second = fp.start_second(env, conf)
        daemons = {"daemon 1": env.daemon, "daemon 2": second}
        oid = f"plea-{os.getpid()}"
        lease_key = f"trk:{{{oid}}}:poll_lease"
        fake.set_state("onfleet", REF, lat=52.50, lng=13.40)
        st, raw = await asyncio.to_thread(fp.put_source, env.port, oid, "onfleet", REF,
                                          h.INGEST_KEY)
        h.check(st == 204, f"PUT source: {st} {raw!r}")
        watchers = {}
        for name, d in daemons.items():
            w = h.Watcher(d.port, f"/v1/track/{oid}")
            await w.connect()
            env.watchers.append(w)
            await w.snapshot()
            watchers[name] = w
        await asyncio.to_thread(fake.wait_count, 2, "onfleet", REF, timeout=6.0,
                                what="the order polled")

        print("--- only one polls")
        before = {n: await asyncio.to_thread(polled, d) for n, d in daemons.items()}
        since = time.monotonic()
        await asyncio.sleep(10 * INTERVAL_MS / 1000)  # an absence check: a window of intervals
        after = {n: await asyncio.to_thread(polled, d) for n, d in daemons.items()}
        grew = [n for n in daemons if after[n] > before[n]]
        ck(len(grew) == 1, f"exactly one daemon polled over 10 intervals: {before} -> {after}")
        n_window = fake.count("onfleet", REF, since=since, until=since + 10 * INTERVAL_MS / 1000)
        ck(n_window <= 10 / 0.9 + 1, f"{n_window} polls in 10 intervals: more than one poller?")
        holder_name = grew[0] if grew else max(after, key=after.get)
        holder = daemons[holder_name]
        other_name = next(n for n in daemons if n != holder_name)
        other = daemons[other_name]
        mh = await asyncio.to_thread(h.scrape_metrics, holder.port)
        mo = await asyncio.to_thread(h.scrape_metrics, other.port)
        ck(fp.metric(mh, "trackgate_poll_orders", state="polling") == 1 and
           fp.metric(mo, "trackgate_poll_orders", state="waiting") == 1 and
           fp.metric(mo, "trackgate_poll_orders", state="polling") == 0,
           f"poll_orders: holder polling {fp.metric(mh, 'trackgate_poll_orders', state='polling')}"
           f", other waiting {fp.metric(mo, 'trackgate_poll_orders', state='waiting')} polling "
           f"{fp.metric(mo, 'trackgate_poll_orders', state='polling')}")
        node_before = env.redis.cli("GET", lease_key)
        pttl = int(env.redis.cli("PTTL", lease_key))
        ck(node_before != "" and 0 < pttl <= LEASE_MS,
           f"the lease {lease_key}: {node_before!r}, PTTL {pttl} (lease-ms {LEASE_MS})")
        acquired_before = fp.metric(mo, "trackgate_poll_leases_acquired_total")
        print(f"  ok  {holder_name} polls ({after[holder_name] - before[holder_name]:.0f} in the "
              f"window), {other_name} waits; lease {node_before!r}, PTTL {pttl} ms")

        print(f"--- SIGKILL {holder_name}")
        holder.proc.send_signal(signal.SIGKILL)
        holder.proc.wait(timeout=5)
        t_kill = time.monotonic()
        if holder is env.daemon:  # the harness stops env.daemon at the end: the survivor
            env.daemon = other
        first = await asyncio.to_thread(fake.wait_count, 1, "onfleet", REF, since=t_kill,
                                        timeout=TAKEOVER_S + 5, what="a poll after the kill")
        took = fake.requests("onfleet", REF, since=t_kill)[0].t - t_kill
        ck(took <= TAKEOVER_S, f"{other_name} polled {took:.2f} s after the kill, want within "
           f"about lease-ms + lease-ms/3 ({TAKEOVER_S:.2f} s with slack)")
        print(f"  ok  {other_name} polled {took:.2f} s after the kill ({first} request)")
        await asyncio.sleep(0)
        for i in range(3):
            pos = (52.51 + i * 1e-3, 13.41 + i * 1e-3)
            fake.set_state("onfleet", REF, lat=pos[0], lng=pos[1])
            await fp.next_matching(watchers[other_name], lambda f: f.get("type") == "update" and
                                   near(fp.location_of(f), pos), 3.0,
                                   f"move {i + 1} after the takeover")
        print(f"  ok  {other_name}'s watcher got 3 moves after the takeover")
        mo = await asyncio.to_thread(h.scrape_metrics, other.port)
        ck(fp.metric(mo, "trackgate_poll_leases_acquired_total") > acquired_before,
           f"{other_name}: leases_acquired_total {acquired_before} -> "
           f"{fp.metric(mo, 'trackgate_poll_leases_acquired_total')}")
        ck(fp.metric(mo, "trackgate_poll_orders", state="polling") == 1,
           f"{other_name}: poll_orders polling "
           f"{fp.metric(mo, 'trackgate_poll_orders', state='polling')}")
        node_after = env.redis.cli("GET", lease_key)
        ck(node_after not in ("", node_before), f"the lease moved: {node_before!r} -> {node_after!r}")
        ck(not fake.bad_auth("onfleet"), "bad credentials")
        env.assert_alive()
        ck.done()
    finally:
        await env.close_watchers()
        if second is not None and second is not env.daemon and second.alive():
            await asyncio.to_thread(second.terminate)
        print(f"fake: {len(fake.log)} requests; last: {fake.log[-3:]!r}")
        await asyncio.to_thread(fake.close)


if __name__ == "__main__":
    h.main(test, start=False)
