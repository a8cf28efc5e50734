#!/usr/bin/python3
"""integration.poll_races: the poller's lease and apply races the review found (commit
"poller: the review's findings"), against the fake Onfleet API (fake_providers.py).  Each
phase runs a fresh trackgated (and an empty Redis) with its own [poll.onfleet] section.

- The first lease (interval-ms 3000: lease-ms defaults to 9000, renewed every 3 s): while one
  watcher stays, trk:{ID}:poll_lease never expires (its PTTL never reads -2 once it exists,
  sampled every 100 ms over 4 s, past the first renewal), its PTTL after the first renewal
  is above the 2 s the first acquire used to take, and
  trackgate_poll_leases_acquired_total is 1 (it was taken again after expiring: 2).
- An acquire in flight when the last watcher leaves (Redis paused with CLIENT PAUSE while a
  watcher comes and goes): once Redis runs again the lease is released within 1 s (it
  was left behind until it expired), and trackgate_poll_orders is 0 in every state.
- An apply in flight when a lease renewal says "no source" (interval-ms 100, lease-ms 300,
  30 polled orders, every GET answered after 150 ms): every source DELeted and Redis
  paused 400 ms in one go, so that renewals and applies queue in Redis in either order.
  trackgated stays alive (the apply's answer read the gone provider: SIGSEGV), logs no
  sanitizer report, and every order goes idle.
Every phase ends with SIGTERM -> exit 0 (an ASan build's leak check included).
"""
import asyncio
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import fake_providers as fp  # noqa: E402









def metric(env, name, **labels):
    return fp.metric(env.metrics(), name, **labels)


async def first_lease(env, fake, ck):
    print("--- the first lease outlives its first renewal (interval-ms 3000)")
    await fp.restart(env, fake, "first_lease", {"interval-ms": 3000})
    oid = f"race-ttl-{os.getpid()}"
    key = f"trk:{{{oid}}}:poll_lease"
    fake.set_state("onfleet", "wrk_ttl", lat=52.50, lng=13.40)
    st, raw = await asyncio.to_thread(fp.put_source, env.port, oid, "onfleet", "wrk_ttl",
                                      h.INGEST_KEY)
    h.check(st == 204, f"PUT source: {st} {raw!r}")
    await env.watch(oid)
    await h.async_wait_until(lambda: env.redis.cli("EXISTS", key) == "1", 3.0,
                             what=f"{key} taken")
    t0 = time.monotonic()
    samples = []
    while time.monotonic() - t0 < 4.0:  # the first renewal is due 3 s after the acquire
        samples.append((round(time.monotonic() - t0, 2), int(env.redis.cli("PTTL", key))))
        await asyncio.sleep(0.1)
    gone = [s for s in samples if s[1] == -2]
    ck(not gone, f"the lease expired during a continuous watch: PTTL -2 at {gone[:5]} "
       f"(samples {samples[::5]})")
    late = [p for t, p in samples if t >= 3.5]
    ck(late and min(late) > 2000, f"PTTL after the first renewal (3.5-4 s): {late} (want > 2000:"
       f" renewed to lease-ms 9000)")
    acquired = await asyncio.to_thread(metric, env, "trackgate_poll_leases_acquired_total")
    ck(acquired == 1, f"trackgate_poll_leases_acquired_total {acquired} for one continuous "
       f"watch (want 1)")
    print(f"  lease PTTL min {min(p for _, p in samples)}, acquired {acquired}")
    await fp.end_phase(env, ck, "first lease")


async def orphan_acquire(env, fake, ck):
    print("--- an acquire in flight when the last watcher leaves")
    await fp.restart(env, fake, "orphan", {"interval-ms": 2000})
    oid = f"race-orphan-{os.getpid()}"
    key = f"trk:{{{oid}}}:poll_lease"
    fake.set_state("onfleet", "wrk_orphan", lat=52.51, lng=13.41)
    st, raw = await asyncio.to_thread(fp.put_source, env.port, oid, "onfleet", "wrk_orphan",
                                      h.INGEST_KEY)
    h.check(st == 204, f"PUT source: {st} {raw!r}")
    env.redis.cli("CLIENT", "PAUSE", "600", "ALL")
    t_pause = time.monotonic()
    w = await env.watch(oid, snapshot=False)  # the snapshot waits for Redis
    await asyncio.sleep(0.15)
    await w.close()
    env.watchers.remove(w)
    left = 0.6 - (time.monotonic() - t_pause)
    ck(left > 0.1, f"the watcher came and went within the pause ({0.6 - left:.2f} s of 0.6)")
    await asyncio.sleep(max(0.0, left))
    t_resume = time.monotonic()
    try:
        await h.async_wait_until(lambda: env.redis.cli("EXISTS", key) == "0", 1.0,
                                 what=f"{key} released")
    except h.TestFailure as e:
        ck(False, f"lease left behind after the last watcher left: {e} (holds "
           f"{env.redis.cli('GET', key)!r}, PTTL {env.redis.cli('PTTL', key)})")
    took = time.monotonic() - t_resume
    try:
        await h.async_wait_until(lambda: metric(env, "trackgate_poll_orders") == 0, 2.0,
                                 what="trackgate_poll_orders 0")
    except h.TestFailure:
        pass  # reported below, state by state
    m = await asyncio.to_thread(env.metrics)
    gauge = {k: v for k, v in m.items() if k.startswith("trackgate_poll_orders{")}
    ck(all(v == 0 for v in gauge.values()), f"trackgate_poll_orders after the last watcher left: "
       f"{gauge}")
    print(f"  lease checked {took:.2f} s after Redis resumed; gauge {gauge}")
    await fp.end_phase(env, ck, "orphan acquire")


async def apply_without_source(env, fake, ck):
    print("--- an apply in flight when a renewal says the source is gone")
    n = 30
    await fp.restart(env, fake, "delapply", {"interval-ms": 100, "lease-ms": 300, "budget": 1000})
    base = f"race-del-{os.getpid()}"
    for i in range(n):
        fake.set_state("onfleet", f"wrk_del_{i}", lat=52.5 + i / 100, lng=13.4)
        st, raw = await asyncio.to_thread(fp.put_source, env.port, f"{base}-{i}", "onfleet",
                                          f"wrk_del_{i}", h.INGEST_KEY)
        h.check(st == 204, f"PUT source {i}: {st} {raw!r}")
    for i in range(n):
        await env.watch(f"{base}-{i}")
    await env.wait_metric('trackgate_poll_orders{state="polling"}', n, timeout=5.0)
    t = time.monotonic()
    await asyncio.to_thread(fake.wait_count, 2 * n, "onfleet", since=t, timeout=5.0,
                            what="every order polled")
    fake.fault("onfleet", "delay", n=100000, delay_s=0.15)  # every answer from now on
    await asyncio.sleep(0.3)  # GETs with the delay on their way
    keys = " ".join(f"trk:{{{base}-{i}}}:source" for i in range(n))
    # The DEL and the pause in one connection, back to back: renewals and applies sent
    # during the pause run in the order they were sent.
    r = await asyncio.to_thread(subprocess.run, [h.REDIS_CLI, "-s", env.redis.sock],
                                input=f"DEL {keys}\nCLIENT PAUSE 400 ALL\n".encode(),
                                capture_output=True, timeout=10)
    out = r.stdout.decode().split()
    h.check(r.returncode == 0 and out[:1] == [str(n)], f"DEL + CLIENT PAUSE: {out!r}")
    await asyncio.sleep(1.2)
    ck(env.daemon.alive(), f"trackgated alive after the renewals said no source with applies "
       f"in flight (exit status {env.daemon.proc.returncode})")
    if env.daemon.alive():
        try:
            await env.wait_metric('trackgate_poll_orders{state="idle"}', n, timeout=3.0)
        except h.TestFailure as e:
            ck(False, f"every order idle once its source is gone: {e}")
    fake.faults["onfleet"].clear()
    await fp.end_phase(env, ck, "apply without source")


async def test(env):
    ck = h.Checks()
    fake = fp.FakeProviders(onfleet_rate_limit=100000)
    try:
        env.redis.start()
        await first_lease(env, fake, ck)
        await orphan_acquire(env, fake, ck)
        await apply_without_source(env, fake, ck)
        ck.done()
    finally:
        await env.close_watchers()
        print(f"fake: {len(fake.log)} requests")
        await asyncio.to_thread(fake.close)


if __name__ == "__main__":
    h.main(test, start=False)
