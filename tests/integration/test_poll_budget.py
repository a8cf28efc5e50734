#!/usr/bin/python3
"""integration.poll_budget: the per-provider request budget is shared by the whole group
(/tmp/poll_spec.md, budget), against the fake Onfleet API (fake_providers.py).

Two trackgated processes on one Redis, each with [poll.onfleet] budget 5 and interval-ms
500 (so the 30 orders want 60 requests a second, far over the budget).  30 orders, each
with its own Onfleet worker: 10 are watched on the first daemon only, 10 on the second
only, 10 on both.

- The fake's most requests in any sliding 1 s window stays within the budget (5), over
  the whole run (trackgate spaces GETs 1100/budget ms apart group-wide); the fake never
  needs to answer 429.
- Polling still progresses for every order: each watcher gets its worker's first position,
  and after every worker moves, each watcher gets the new one; every worker was polled at
  least twice.
- Both daemons polled (their trackgate_poll_requests_total{result="ok"} add up to what the
  fake answered), and the token-free Onfleet auth was right on every request.
"""
import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import fake_providers as fp  # noqa: E402

BUDGET = 5
INTERVAL_MS = 500
ORDERS = 30
# One round over every order at the budget's spacing, plus start-up and slack (the spec
# promises progress for every order, not a round-robin order).
ROUND_S = ORDERS * 1.1 / BUDGET + 15.0


def near(a, b):
    return a is not None and abs(a[0] - b[0]) < 1e-6 and abs(a[1] - b[1]) < 1e-6


async def watch_on(env, port, oid):
    w = h.Watcher(port, f"/v1/track/{oid}")
    await w.connect()
    env.watchers.append(w)
    await w.snapshot()
    return w


async def all_reach(watchers, positions, timeout, what):
    async def one(oid, w):
        await fp.next_matching(w, lambda f: f.get("type") == "update" and
                               near(fp.location_of(f), positions[oid]), timeout,
                               f"{what} of {oid}")
    await asyncio.gather(*(one(oid, w) for oid, w in watchers))


async def test(env):
    ck = h.Checks()
    fake = fp.FakeProviders()
    second = None
    try:
        conf = fp.write_poll_config(fake, env.log_dir, providers=("onfleet",),
                                    common={"interval-ms": INTERVAL_MS, "budget": BUDGET})
        env.daemon.extra_args += ["--config", conf]
        env.start()
        second = fp.start_second(env, conf)
        t0 = time.monotonic()
        pid = os.getpid()
        oids = [f"pbud-{i}-{pid}" for i in range(ORDERS)]
        refs = {oid: f"wrk_budget_{i}" for i, oid in enumerate(oids)}
        positions = {}
        for i, oid in enumerate(oids):
            positions[oid] = (52.40 + i * 1e-3, 13.30 + i * 1e-3)
            fake.set_state("onfleet", refs[oid], lat=positions[oid][0], lng=positions[oid][1])
            st, raw = await asyncio.to_thread(fp.put_source, env.port, oid, "onfleet",
                                              refs[oid], h.INGEST_KEY)
            h.check(st == 204, f"PUT source {oid}: {st} {raw!r}")
        watchers = []
        for i, oid in enumerate(oids):
            if i < 10 or i >= 20:
                watchers.append((oid, await watch_on(env, env.port, oid)))
            if i >= 10:
                watchers.append((oid, await watch_on(env, second.port, oid)))
        print(f"--- {ORDERS} orders, {len(watchers)} watchers on two daemons, budget {BUDGET}")
        await all_reach(watchers, positions, ROUND_S, "the first position")
        print(f"  ok  every watcher got its worker's first position "
              f"({time.monotonic() - t0:.1f} s)")
        for i, oid in enumerate(oids):
            positions[oid] = (52.60 + i * 1e-3, 13.50 + i * 1e-3)
            fake.set_state("onfleet", refs[oid], lat=positions[oid][0], lng=positions[oid][1])
        t1 = time.monotonic()
        await all_reach(watchers, positions, ROUND_S, "the moved position")
        print(f"  ok  every watcher got its worker's move ({time.monotonic() - t1:.1f} s)")

        worst = fake.max_in_window("onfleet", 1.0)
        total = fake.count("onfleet")
        elapsed = time.monotonic() - t0
        ck(worst <= BUDGET, f"the fake saw {worst} requests within one sliding second, "
           f"budget {BUDGET}")
        ck(fake.count("onfleet", status=429) == 0,
           f"the fake answered 429 {fake.count('onfleet', status=429)} times")
        per = fake.per_ref("onfleet")
        starved = sorted(oid for oid in oids if per.get(refs[oid], 0) < 2)
        ck(not starved, f"orders polled fewer than twice: {starved}")
        ck(not fake.bad_auth("onfleet"), f"bad credentials: {fake.bad_auth('onfleet')[:3]!r}")
        ma, mb = await asyncio.to_thread(h.scrape_metrics, env.port), \
            await asyncio.to_thread(h.scrape_metrics, second.port)
        oka = fp.metric(ma, "trackgate_poll_requests_total", provider="onfleet", result="ok")
        okb = fp.metric(mb, "trackgate_poll_requests_total", provider="onfleet", result="ok")
        ck(oka > 0 and okb > 0, f"both daemons polled: ok {oka} and {okb}")
        ok_fake = fake.count("onfleet", status=200)
        ck(ok_fake - 2 <= oka + okb <= ok_fake,
           f"the daemons counted {oka} + {okb} ok requests, the fake answered {ok_fake}")
        print(f"  ok  {total} requests in {elapsed:.1f} s ({total / elapsed:.2f}/s), at most "
              f"{worst} in any second (budget {BUDGET}); daemon 1 {oka:.0f}, daemon 2 {okb:.0f}; "
              f"polls per order {min(per.values())}..{max(per.values())}")
        env.assert_alive()
        ck(second.alive(), "the second daemon died")
        ck.done()
    finally:
        await env.close_watchers()
        if second is not None and second.alive():
            await asyncio.to_thread(second.terminate)
        per = fake.per_ref("onfleet")
        print(f"fake: {len(fake.log)} requests; polls per worker "
              f"{dict(sorted(per.items(), key=lambda kv: int(kv[0].rsplit('_', 1)[1])))}; "
              f"max in a second {fake.max_in_window('onfleet')}")
        await asyncio.to_thread(fake.close)


if __name__ == "__main__":
    h.main(test, start=False)
