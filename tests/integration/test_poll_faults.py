#!/usr/bin/python3
"""integration.poll_faults: poll mode when the providers' APIs misbehave (/tmp/poll_spec.md,
Faults), against fake provider APIs (fake_providers.py) that answer what the test queues.

trackgated polls four watched orders (interval-ms 300, timeout-ms 500, connect-timeout-ms
400): two Onfleet workers, one Uber Direct and one DoorDash Drive delivery.  Gaps are measured by the fake,
from the moment it answered (or, for a timeout, from when the client's 500 ms ran out) to
the next request's arrival.

- 429 with Retry-After: 2 (Onfleet): no GET to Onfleet, for either worker (the hold is
  group-wide for the provider), for 2 s; a 429 without Retry-After: 1 s; a Retry-After
  as an HTTP date 3 s ahead: not before that date.  result="rate_limited" counts them.
- 500 twice in a row (DoorDash): that order backs off max(interval, 1 s) = 1 s, then 2 s
  (a 10 % allowance for jitter), the daemon logs poll_failed ... result=http_error
  status=500 retry_in_ms=N; meanwhile the other orders are polled on; after a good
  answer it polls at its interval again (the back-off is reset) and a move reaches the
  watcher.  result="http_error" counts them.
- An answer later than timeout-ms (Uber, the fake delays 1.5 s): result="timeout", a
  back-off of at least 1 s after the client gave up, then recovery.
- A malformed body (Onfleet) and a truncated JSON (Uber): result="malformed", back-off,
  recovery.
- 401 for DoorDash (not Uber: no token to drop): result="unauthorized", back-off, logged,
  recovery.
- A connection cut halfway through the body (Onfleet): counted as a failure (not ok),
  back-off, recovery.  (Not a close before any byte: curl retries that by itself on a
  reused connection, so trackgated would rightly see an answer.)
Throughout, /healthz answers 200, the daemon stays up and every watcher still gets the
good answers that follow.
"""
import asyncio
import email.utils
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import fake_providers as fp  # noqa: E402

INTERVAL_MS = 300
TIMEOUT_MS = 500
BACKOFF_MIN_S = max(INTERVAL_MS / 1000, 1.0)
JITTER = 0.9      # a back-off may be jittered like the interval (+-10 %)
SLACK_S = 0.05    # timer granularity: a wait measured by the fake may look this much shorter
FAILURES = ("unauthorized", "rate_limited", "http_error", "timeout", "connect_error", "malformed")

ORDERS = {  # name: (provider, ref, first position)
    "onfleet-a": ("onfleet", "wrk_fault_a", (52.50, 13.40)),
    "onfleet-b": ("onfleet", "wrk_fault_b", (52.51, 13.41)),
    "uber": ("uber_direct", "del_fault_1", (52.52, 13.42)),
    "doordash": ("doordash_drive", "D-fault-1", (52.53, 13.43)),
}
STATUS = {"onfleet": {}, "uber_direct": {"status": "dropoff"},
          "doordash_drive": {"status": "enroute_to_dropoff"}}


def near(a, b):
    return a is not None and abs(a[0] - b[0]) < 1e-6 and abs(a[1] - b[1]) < 1e-6


class Run:
    def __init__(self, env, fake, ck):
        self.env, self.fake, self.ck = env, fake, ck
        self.watchers = {}
        self.oids = {}
        self.moves = 0

    def result_count(self, provider, result):
        return fp.metric(self.env.metrics(), "trackgate_poll_requests_total", provider=provider,
                         result=result)

    async def healthy(self, what):
        r = await asyncio.to_thread(self.env.http, "GET", "/healthz")
        self.ck(r.status == 200, f"{what}: /healthz {r!r}")
        self.env.assert_alive()

    async def recover(self, name, what):
        """Moves the order's courier; the good answer must reach its watcher."""
        provider, ref, _ = ORDERS[name]
        self.moves += 1
        pos = (52.40 + self.moves * 1e-3, 13.30 + self.moves * 1e-3)
        self.fake.set_state(provider, ref, lat=pos[0], lng=pos[1])
        await fp.next_matching(self.watchers[name], lambda f: f.get("type") == "update" and
                               near(fp.location_of(f), pos), 8.0, f"{what}: the recovered position")

    async def faulted(self, name, kind, n=1, **kw):
        """Queues n faults of kind for the order; returns the faulted requests once the fake
        answered them all and the request after the last one has arrived."""
        provider, ref, _ = ORDERS[name]
        since = time.monotonic()
        self.fake.fault(provider, kind, n, ref=ref, **kw)
        got = await h.async_wait_until(
            lambda: (lambda got: got if self.fake.pending_faults(provider) == 0 and
                     all(r.t_done is not None for r in got) else None)(
                [r for r in self.fake.requests(provider, ref, since=since) if r.fault]),
            15.0, what=f"{name}: {n} x {kind} answered")
        await asyncio.to_thread(self.fake.wait_count, 1, provider, ref, since=got[-1].t_done,
                                timeout=10.0, what=f"{name}: a request after the {kind}")
        return got

    def gaps(self, name, faulted, base_of=lambda r: r.t_done):
        provider, ref, _ = ORDERS[name]
        out = []
        for r in faulted:
            base = base_of(r)
            nxt = self.fake.requests(provider, ref, since=base)
            out.append(nxt[0].t - base if nxt else None)
        return out

    def check_backoff(self, name, what, gaps, first=BACKOFF_MIN_S):
        want = first
        for g in gaps:
            self.ck(g is not None and g >= want * JITTER - SLACK_S,
                    f"{what}: the order waited {g if g is None else round(g, 3)} s after a "
                    f"failure, want >= {want:.1f} s (x{JITTER} for jitter)")
            want = min(want * 2, 60.0)
        print(f"  ok  {what}: back-off {[round(g, 2) for g in gaps if g is not None]} s")

    async def reset_after_success(self, name, what):
        """After a good answer the order is polled at its interval again."""
        provider, ref, _ = ORDERS[name]
        since = time.monotonic()
        await asyncio.to_thread(self.fake.wait_count, 3, provider, ref, since=since,
                                timeout=5.0, what=f"{name}: polls after recovering")
        gap = self.fake.max_gap(provider, ref, since=since)
        self.ck(gap <= INTERVAL_MS * 1.1 / 1000 + 0.25,
                f"{what}: after a success the order is polled every {gap:.2f} s, want its "
                f"interval ({INTERVAL_MS} ms): the back-off was not reset")

    # --- the faults ---------------------------------------------------------------------

    async def rate_limited(self):
        before = await asyncio.to_thread(self.result_count, "onfleet", "rate_limited")
        for label, retry_after, hold in (("Retry-After: 2", 2, lambda t: 2.0),
                                         ("no Retry-After", None, lambda t: 1.0),
                                         ("Retry-After: HTTP date", "date", None)):
            if retry_after == "date":
                target = int(time.time()) + 4
                retry_after = email.utils.formatdate(target, usegmt=True)
                hold = (lambda target: lambda t_wall: target - t_wall)(target)
            faulted = await self.faulted("onfleet-a", 429, retry_after=retry_after)
            r = faulted[0]
            t_wall = time.time() - (time.monotonic() - r.t_done)
            want = hold(t_wall)
            # group-wide: no GET to Onfleet at all, for either worker
            await asyncio.to_thread(self.fake.wait_count, 1, "onfleet", ORDERS["onfleet-b"][1],
                                    since=r.t_done, timeout=10.0,
                                    what="onfleet-b polled after the 429")
            nxt = self.fake.requests("onfleet", since=r.t_done)
            gap = nxt[0].t - r.t_done
            self.ck(gap >= want - SLACK_S,
                    f"429 {label}: the next GET to Onfleet came {gap:.3f} s after the 429 "
                    f"({nxt[0].ref}), want >= {want:.2f} s")
            print(f"  ok  429 {label}: no GET to Onfleet (either worker) for {gap:.2f} s "
                  f"(want >= {want:.2f})")
            await self.recover("onfleet-a", f"429 {label}")
            await self.recover("onfleet-b", f"429 {label}")
        after = await asyncio.to_thread(self.result_count, "onfleet", "rate_limited")
        self.ck(after - before == 3, f"rate_limited counted {after - before}, want 3")
        await self.healthy("after the 429s")

    async def http_errors(self):
        before = await asyncio.to_thread(self.result_count, "doordash_drive", "http_error")
        log_at = h.log_size(self.env.daemon.log)
        others_before = {n: self.fake.count(ORDERS[n][0], ORDERS[n][1]) for n in ("uber",
                                                                                   "onfleet-a")}
        faulted = await self.faulted("doordash", 500, n=2)
        self.check_backoff("doordash", "500 twice", self.gaps("doordash", faulted))
        for n, c in others_before.items():
            self.ck(self.fake.count(ORDERS[n][0], ORDERS[n][1]) >= c + 5,
                    f"{n} was not polled on while doordash backed off "
                    f"({self.fake.count(ORDERS[n][0], ORDERS[n][1]) - c} polls)")
        await self.recover("doordash", "500 twice")
        await self.reset_after_success("doordash", "500 twice")
        after = await asyncio.to_thread(self.result_count, "doordash_drive", "http_error")
        self.ck(after - before == 2, f"http_error counted {after - before}, want 2")
        log = h.log_since(self.env.daemon.log, log_at)
        lines = re.findall(rf"poll_failed provider=doordash_drive order={self.oids['doordash']} "
                           r"result=http_error status=500 retry_in_ms=(\d+)", log)
        self.ck(len(lines) == 2 and int(lines[0]) >= BACKOFF_MIN_S * 1000 * JITTER and
                int(lines[1]) >= 2 * BACKOFF_MIN_S * 1000 * JITTER,
                f"poll_failed log lines for the 500s (retry_in_ms {lines}): "
                f"{[l for l in log.splitlines() if 'poll_failed' in l][:4]!r}")
        await self.healthy("after the 500s")

    async def timeout(self):
        before = await asyncio.to_thread(self.result_count, "uber_direct", "timeout")
        faulted = await self.faulted("uber", "delay", delay_s=1.5)
        gaps = self.gaps("uber", faulted, base_of=lambda r: r.t + TIMEOUT_MS / 1000)
        self.check_backoff("uber", f"an answer later than timeout-ms {TIMEOUT_MS}", gaps)
        await self.recover("uber", "a timeout")
        after = await asyncio.to_thread(self.result_count, "uber_direct", "timeout")
        self.ck(after - before == 1, f"timeout counted {after - before}, want 1")
        await self.healthy("after a timeout")

    async def malformed(self):
        for name, kind in (("onfleet-a", "malformed"), ("uber", "truncated")):
            provider = ORDERS[name][0]
            before = await asyncio.to_thread(self.result_count, provider, "malformed")
            faulted = await self.faulted(name, kind)
            self.check_backoff(name, f"a {kind} body", self.gaps(name, faulted))
            await self.recover(name, f"a {kind} body")
            after = await asyncio.to_thread(self.result_count, provider, "malformed")
            self.ck(after - before == 1, f"{kind} ({provider}): malformed counted "
                    f"{after - before}, want 1")
        await self.healthy("after malformed bodies")

    async def unauthorized(self):
        before = await asyncio.to_thread(self.result_count, "doordash_drive", "unauthorized")
        log_at = h.log_size(self.env.daemon.log)
        faulted = await self.faulted("doordash", 401)
        self.check_backoff("doordash", "401 (DoorDash)", self.gaps("doordash", faulted))
        await self.recover("doordash", "a 401")
        after = await asyncio.to_thread(self.result_count, "doordash_drive", "unauthorized")
        self.ck(after - before == 1, f"unauthorized counted {after - before}, want 1")
        log = h.log_since(self.env.daemon.log, log_at)
        self.ck(re.search(rf"poll_failed provider=doordash_drive order={self.oids['doordash']} "
                          r"result=unauthorized status=401 retry_in_ms=\d+", log),
                "the DoorDash 401 is logged as poll_failed ... result=unauthorized status=401")
        await self.healthy("after a 401")

    async def cut_connection(self):
        m0 = await asyncio.to_thread(self.env.metrics)
        before = sum(fp.metric(m0, "trackgate_poll_requests_total", provider="onfleet", result=r)
                     for r in FAILURES)
        faulted = await self.faulted("onfleet-b", "cut")
        self.check_backoff("onfleet-b", "a connection cut halfway through the body",
                           self.gaps("onfleet-b", faulted))
        await self.recover("onfleet-b", "a cut connection")
        m1 = await asyncio.to_thread(self.env.metrics)
        after = sum(fp.metric(m1, "trackgate_poll_requests_total", provider="onfleet", result=r)
                    for r in FAILURES)
        self.ck(after - before == 1, f"a cut connection counted {after - before} failures")
        await self.healthy("after a cut connection")


async def test(env):
    ck = h.Checks()
    fake = fp.FakeProviders()
    try:
        conf = fp.write_poll_config(fake, env.log_dir,
                                    common={"interval-ms": INTERVAL_MS, "timeout-ms": TIMEOUT_MS,
                                            # (trackgated refuses a timeout-ms below it)
                                            "connect-timeout-ms": TIMEOUT_MS - 100})
        env.daemon.extra_args += ["--config", conf]
        env.start()
        run = Run(env, fake, ck)
        for name, (provider, ref, pos) in ORDERS.items():
            oid = f"pf-{name}-{os.getpid()}"
            run.oids[name] = oid
            fake.set_state(provider, ref, lat=pos[0], lng=pos[1], **STATUS[provider])
            st, raw = await asyncio.to_thread(fp.put_source, env.port, oid, provider, ref,
                                              h.INGEST_KEY)
            h.check(st == 204, f"PUT source {oid}: {st} {raw!r}")
            run.watchers[name] = await env.watch(oid)
        for name, (_, _, pos) in ORDERS.items():
            await fp.next_matching(run.watchers[name], lambda f: f.get("type") == "update" and
                                   near(fp.location_of(f), pos), 5.0, f"{name}: the first poll")
        print("  ok  four orders polled")
        print("--- 429")
        await run.rate_limited()
        print("--- 500, 500")
        await run.http_errors()
        print("--- timeout")
        await run.timeout()
        print("--- malformed, truncated")
        await run.malformed()
        print("--- 401 (DoorDash)")
        await run.unauthorized()
        print("--- a connection cut mid-body")
        await run.cut_connection()
        m = await asyncio.to_thread(env.metrics)
        for name, (provider, ref, _) in ORDERS.items():
            ok = fp.metric(m, "trackgate_poll_requests_total", provider=provider, result="ok")
            ck(ok > 0, f"{provider}: requests ok {ok}")
        ck(fp.metric(m, "trackgate_poll_orders", state="polling") == 4,
           f"trackgate_poll_orders{{state=polling}} "
           f"{fp.metric(m, 'trackgate_poll_orders', state='polling')}, want 4")
        env.assert_alive()
        ck.done()
    finally:
        print(f"fake: {len(fake.log)} requests; faulted: "
              f"{[r for r in fake.log if r.fault][-12:]!r}")
        await asyncio.to_thread(fake.close)


if __name__ == "__main__":
    h.main(test, start=False)
