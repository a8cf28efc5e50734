#!/usr/bin/python3
"""integration.poll_tokens_race: the poller's answer races the review found (commit "poller:
the review's findings"), against the fake provider APIs (fake_providers.py).  Each phase
runs a fresh trackgated (and an empty Redis) with its own [poll.*] sections.

- A late 401 for an old Uber token (20 polled deliveries, interval-ms 1000; the fake answers
  every 401 after 0.8 s, so GETs with the old token are still on their way when the first
  401 makes a new one): after one revocation the fake sees at most 2 token requests in the
  6 s after (each late 401 used to drop the fresh token: one request each), and the
  deliveries are polled with success again.
- A source moved to another provider while its GET is on its way (Onfleet and Uber Direct,
  interval-ms 500, lease-ms 300: a renewal every 100 ms; the Onfleet answer delayed 0.8 s
  and the source PUT to Uber meanwhile): once quiet, trackgate_poll_requests_total of
  uber_direct equals the Uber GETs the fake answered (the old Onfleet answer used to be
  counted and parsed as Uber's), none of uber_direct's results is a failure, and onfleet's
  total is not above the fake's Onfleet count.
- A 429 with Retry-After: 18446744073709552 (seconds; times 1000 it wrapped to 384 ms):
  no GET to that provider within 5 s after, and the hold shared in Redis
  (trk:poll_budget:{onfleet}) lives about an hour (the cap).
Every phase ends with SIGTERM -> exit 0 and no sanitizer report in the daemon's log.
"""
import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import fake_providers as fp  # noqa: E402

HUGE_RETRY_AFTER = 18446744073709552  # * 1000 = 2^64 + 384
HOLD_WINDOW_S = 5.0


class SlowAuthFake(fp.FakeProviders):
    """The fake, answering every API 401 after slow_401_s (a slow edge in front of a revoked
    token: the requests that carried it are still on their way when the first 401 is read)."""

    slow_401_s = 0.0

    def _answer(self, h_, r, status, body, headers=None, content_type="application/json"):
        if status == 401 and r.kind == "api" and self.slow_401_s:
            self.closing.wait(self.slow_401_s)
        return super()._answer(h_, r, status, body, headers, content_type)








async def put(env, oid, provider, ref):
    st, raw = await asyncio.to_thread(fp.put_source, env.port, oid, provider, ref, h.INGEST_KEY)
    h.check(st == 204, f"PUT source {oid} {provider} {ref}: {st} {raw!r}")


async def late_401(env, ck):
    print("--- a late 401 for an old token keeps the new one")
    fake = SlowAuthFake()
    try:
        await fp.restart(env, fake, "late401", {"interval-ms": 1000, "budget": 100},
                         providers=("uber_direct",))
        n = 20
        for i in range(n):
            fake.set_state("uber_direct", f"del_401_{i}", lat=52.5, lng=13.4, status="pickup")
            await put(env, f"race-401-{os.getpid()}-{i}", "uber_direct", f"del_401_{i}")
        for i in range(n):
            await env.watch(f"race-401-{os.getpid()}-{i}")
        t = time.monotonic()
        await asyncio.to_thread(fake.wait_count, 2 * n, "uber_direct", since=t, timeout=6.0,
                                status=200, what="every delivery polled twice")
        fake.slow_401_s = 0.8
        t = time.monotonic()
        fake.revoke_tokens()
        await asyncio.sleep(6.0)  # an absence check over a bounded window
        tokens = fake.count(kind="token", since=t)
        ok_after = fake.count("uber_direct", since=t + 3.0, status=200)
        ck(tokens <= 2, f"{tokens} token requests in the 6 s after one revocation (want <= 2; "
           f"401s: {fake.count('uber_direct', since=t, status=401)})")
        ck(ok_after >= n, f"polled with success again after the revocation: {ok_after} 200s in "
           f"the last 3 s (want >= {n})")
        print(f"  {tokens} token requests, {fake.count('uber_direct', since=t, status=401)} "
              f"401s, {ok_after} 200s in the last 3 s")
        fake.slow_401_s = 0.0
        await fp.end_phase(env, ck, "late 401")
    finally:
        await env.close_watchers()
        env.watchers.clear()
        await asyncio.to_thread(fake.close)


def quiet_counts(env, fake):
    """(metrics, fake's answered API requests per provider) at a moment when no request is
    on its way and none was answered in the last 150 ms, nor arrives during the scrape; None
    when this moment is not quiet."""
    before = fake.requests(kind="api")
    if any(r.t_done is None for r in before):
        return None
    if before and time.monotonic() - max(r.t_done for r in before) < 0.15:
        return None
    m = env.metrics()
    if len(fake.requests(kind="api")) != len(before):
        return None
    return m, {p: len([r for r in before if r.provider == p]) for p in fp.PROVIDERS}


async def moved_source(env, ck):
    print("--- a source moved to another provider while its GET is on its way")
    fake = fp.FakeProviders()
    try:
        await fp.restart(env, fake, "moved", {"interval-ms": 500, "lease-ms": 300},
                         providers=("onfleet", "uber_direct"))
        oid = f"race-moved-{os.getpid()}"
        fake.set_state("onfleet", "wrk_moved", lat=52.50, lng=13.40)
        fake.set_state("uber_direct", "del_moved", lat=52.60, lng=13.50, status="pickup")
        await put(env, oid, "onfleet", "wrk_moved")
        await env.watch(oid)
        await asyncio.to_thread(fake.wait_count, 2, "onfleet", "wrk_moved", timeout=5.0,
                                what="the order polled at Onfleet")
        fake.fault("onfleet", "delay", delay_s=0.8, ref="wrk_moved")
        await h.async_wait_until(
            lambda: any(r.fault and r.fault.startswith("delay") and r.t_done is None
                        for r in fake.requests("onfleet", "wrk_moved")), 3.0,
            interval=0.01, what="the delayed Onfleet GET on its way")
        await put(env, oid, "uber_direct", "del_moved")
        t_put = time.monotonic()
        await asyncio.to_thread(fake.wait_count, 3, "uber_direct", "del_moved", since=t_put,
                                timeout=5.0, what="the order polled at Uber")
        await h.async_wait_until(
            lambda: all(r.t_done is not None for r in fake.requests("onfleet")), 2.0,
            what="the delayed Onfleet GET answered")
        m, counts = await h.async_wait_until(lambda: quiet_counts(env, fake), 5.0, interval=0.02,
                                             what="a quiet moment (no GET on its way)")
        got = {p: fp.metric(m, "trackgate_poll_requests_total", provider=p)
               for p in ("onfleet", "uber_direct")}
        uber_failed = {k: v for k, v in m.items()
                       if k.startswith("trackgate_poll_requests_total{") and
                       'provider="uber_direct"' in k and 'result="ok"' not in k and v}
        ck(got["uber_direct"] == counts["uber_direct"],
           f"trackgate_poll_requests_total uber_direct {got['uber_direct']}, the fake answered "
           f"{counts['uber_direct']} Uber GETs (the Onfleet answer counted as Uber's?)")
        ck(not uber_failed, f"uber_direct results other than ok: {uber_failed} (the Onfleet "
           f"answer parsed as Uber's?)")
        ck(got["onfleet"] <= counts["onfleet"],
           f"trackgate_poll_requests_total onfleet {got['onfleet']}, above the fake's "
           f"{counts['onfleet']} Onfleet GETs")
        late = fake.count("onfleet", since=t_put + 0.5)
        ck(late == 0, f"{late} Onfleet GETs from 0.5 s after the source moved to Uber")
        print(f"  daemon {got}, fake {counts}")
        await fp.end_phase(env, ck, "moved source")
    finally:
        await env.close_watchers()
        env.watchers.clear()
        await asyncio.to_thread(fake.close)


async def huge_retry_after(env, ck):
    print(f"--- a 429 with Retry-After: {HUGE_RETRY_AFTER}")
    fake = fp.FakeProviders()
    try:
        await fp.restart(env, fake, "retry_after", {"interval-ms": 200})
        oid = f"race-429-{os.getpid()}"
        fake.set_state("onfleet", "wrk_429", lat=52.50, lng=13.40)
        await put(env, oid, "onfleet", "wrk_429")
        await env.watch(oid)
        await asyncio.to_thread(fake.wait_count, 2, "onfleet", "wrk_429", timeout=5.0,
                                what="the order polled")
        fake.fault("onfleet", 429, retry_after=HUGE_RETRY_AFTER)
        r429 = await h.async_wait_until(
            lambda: next((r for r in fake.requests("onfleet") if r.status == 429 and
                          r.t_done is not None), None), 3.0, what="the 429 answered")
        await asyncio.sleep(max(0.0, r429.t_done + HOLD_WINDOW_S - time.monotonic()))
        after = fake.requests("onfleet", since=r429.t_done)
        ck(not after, f"{len(after)} GETs within {HOLD_WINDOW_S:.0f} s of the 429 with "
           f"Retry-After {HUGE_RETRY_AFTER}, the first {after[0].t - r429.t_done:.2f} s after"
           if after else "")
        pttl = int(env.redis.cli("PTTL", "trk:poll_budget:{onfleet}"))
        ck(3500 * 1000 < pttl <= 3600 * 1000, f"the shared hold trk:poll_budget:{{onfleet}}: "
           f"PTTL {pttl} ms (want about the 1 h cap)")
        print(f"  {len(after)} GETs in {HOLD_WINDOW_S:.0f} s, budget key PTTL {pttl} ms")
        await fp.end_phase(env, ck, "huge Retry-After")
    finally:
        await env.close_watchers()
        env.watchers.clear()
        await asyncio.to_thread(fake.close)


async def test(env):
    ck = h.Checks()
    env.redis.start()
    await late_401(env, ck)
    await moved_source(env, ck)
    await huge_retry_after(env, ck)
    ck.done()


if __name__ == "__main__":
    h.main(test, start=False)
