#!/usr/bin/python3
"""integration.poll_stop: when polling an order stops (/tmp/poll_spec.md, Stops), against
fake provider APIs (fake_providers.py).

trackgated polls three watched orders, interval-ms 200, lease-ms 600.  Absence checks
watch a window of 8 intervals.

- Uber Direct: the fake's delivery turns "delivered": the watcher gets the delivered status,
  the daemon logs poll_done provider=uber_direct order=ID status=delivered, the fake sees
  no more requests for that delivery, the lease trk:{ID}:poll_lease is released, and
  trackgate_poll_orders{state="done"} counts it.  A new watcher of the finished order
  does not start polling again.
- DoorDash Drive: a POST /v1/updates says "delivered" (the stored state is terminal):
  once the node can have learnt it (a lease renewal, lease-ms/3, and the poll then in
  flight), no more requests; lease released.
- Onfleet, watched twice: the first watcher leaving changes nothing (polls go on); the
  last one leaving: at most one more request (the one in flight), then none; lease
  released.  Once every watcher has left, the trackgate_poll_orders gauge is 0 in every
  state.
"""
import asyncio
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import fake_providers as fp  # noqa: E402

INTERVAL_MS = 200
LEASE_MS = 600  # renewed every 200 ms: a renewal answers the stored status (a POST's terminal)
WINDOW_S = 8 * INTERVAL_MS / 1000
# How long a node may take to learn that the stored state turned terminal: the spec sets no
# bound; a lease renewal (lease-ms/3) and the poll then in flight.
NOTICE_S = (LEASE_MS / 3 + INTERVAL_MS) / 1000 + 0.2

ORDERS = {
    "uber_direct": ("del_stop_1", dict(lat=52.50, lng=13.40, status="dropoff")),
    "doordash_drive": ("D-stop-1", dict(lat=52.51, lng=13.41, status="enroute_to_dropoff")),
    "onfleet": ("wrk_stop_1", dict(lat=52.52, lng=13.42)),
}


def near(a, b):
    return a is not None and abs(a[0] - b[0]) < 1e-6 and abs(a[1] - b[1]) < 1e-6


async def no_more(fake, ck, provider, ref, since, what, allowed=0):
    """An absence check: at most allowed requests for ref from since, over WINDOW_S."""
    await asyncio.sleep(max(0.0, since + WINDOW_S - time.monotonic()))
    late = fake.requests(provider, ref, since=since)
    ck(len(late) <= allowed, f"{what}: {len(late)} requests for {ref} in the {WINDOW_S:.1f} s "
       f"after, want <= {allowed}: {late!r}")
    return late


async def lease_gone(env, ck, oid, what):
    key = f"trk:{{{oid}}}:poll_lease"
    try:
        await h.async_wait_until(lambda: env.redis.cli("EXISTS", key) == "0", 2.0,
                                 what=f"{key} released")
    except h.TestFailure as e:
        ck(False, f"{what}: {e} (holds {env.redis.cli('GET', key)!r})")


def gauge(env, state=None):
    m = env.metrics()
    return fp.metric(m, "trackgate_poll_orders", **({"state": state} if state else {}))


async def test(env):
    ck = h.Checks()
    fake = fp.FakeProviders()
    try:
        conf = fp.write_poll_config(fake, env.log_dir, common={"interval-ms": INTERVAL_MS,
                                                               "lease-ms": LEASE_MS})
        env.daemon.extra_args += ["--config", conf]
        env.start()
        pid = os.getpid()
        oids, watchers = {}, {}
        for provider, (ref, state) in ORDERS.items():
            oid = f"pstop-{provider}-{pid}"
            oids[provider] = oid
            fake.set_state(provider, ref, **state)
            st, raw = await asyncio.to_thread(fp.put_source, env.port, oid, provider, ref,
                                              h.INGEST_KEY)
            h.check(st == 204, f"PUT source {oid}: {st} {raw!r}")
            watchers[provider] = await env.watch(oid)
        for provider, (ref, state) in ORDERS.items():
            await fp.next_matching(watchers[provider], lambda f: f.get("type") == "update" and
                                   near(fp.location_of(f), (state["lat"], state["lng"])), 5.0,
                                   f"{provider}: the first poll")
        print("  ok  three orders polled")

        print("--- uber_direct: a terminal status in the answer")
        ref, oid = ORDERS["uber_direct"][0], oids["uber_direct"]
        log_at = h.log_size(env.daemon.log)
        t_set = time.monotonic()
        fake.set_state("uber_direct", ref, status="delivered")
        body = fake.body("uber_direct", ref)
        await fp.next_matching(watchers["uber_direct"], lambda f: f.get("type") == "update" and
                               (f.get("update") or {}).get("status") == "delivered", 3.0,
                               "uber_direct: the delivered status")
        # the first answer built after the change carried "delivered"
        t_last = fake.requests("uber_direct", ref, since=t_set, status=200)[0].t_done
        await no_more(fake, ck, "uber_direct", ref, t_last, "after the delivered answer")
        ck(re.search(rf"poll_done provider=uber_direct order={oid} status=delivered",
                     h.log_since(env.daemon.log, log_at)),
           f"poll_done provider=uber_direct order={oid} status=delivered is logged")
        await lease_gone(env, ck, oid, "uber_direct done")
        ck(await asyncio.to_thread(gauge, env, "done") == 1,
           f"poll_orders done: {await asyncio.to_thread(gauge, env, 'done')}, want 1")
        again = await env.watch(oid)
        since = time.monotonic()
        await no_more(fake, ck, "uber_direct", ref, since, "a new watcher of the delivered order")
        await again.close()
        ck(body == fake.body("uber_direct", ref), "the fake's answer did not change meanwhile")
        print("  ok  no more requests after the delivered answer; poll_done; lease released")

        print("--- doordash_drive: the stored state turns terminal (a POST)")
        ref, oid = ORDERS["doordash_drive"][0], oids["doordash_drive"]
        res = await env.apost_ok(h.update(oid, h.now_ms() + 1000, status="delivered"))
        ck(res[0].get("result") == "applied", f"POST delivered: {res!r}")
        t_post = time.monotonic()
        await asyncio.sleep(NOTICE_S)
        noticing = fake.count("doordash_drive", ref, since=t_post)
        await no_more(fake, ck, "doordash_drive", ref, t_post + NOTICE_S,
                      "after the stored state turned delivered", allowed=1)
        await lease_gone(env, ck, oid, "doordash_drive done")
        print(f"  ok  {noticing} request(s) in the {NOTICE_S:.2f} s after the POST, then none")

        print("--- onfleet: the watchers leave")
        ref, oid = ORDERS["onfleet"][0], oids["onfleet"]
        second = await env.watch(oid)
        await watchers["onfleet"].close()
        since = time.monotonic()
        await asyncio.to_thread(fake.wait_count, 3, "onfleet", ref, since=since, timeout=3.0,
                                what="polls after the first of two watchers left")
        print("  ok  one watcher left, polling goes on")
        await second.close()
        t_left = time.monotonic()
        late = await no_more(fake, ck, "onfleet", ref, t_left, "after the last watcher left",
                             allowed=1)
        await lease_gone(env, ck, oid, "onfleet unwatched")
        print(f"  ok  {len(late)} request(s) after the last watcher left, then none")

        for provider in ("uber_direct", "doordash_drive"):
            await watchers[provider].close()
        try:
            await h.async_wait_until(lambda: gauge(env) == 0, 3.0,
                                     what="trackgate_poll_orders back to 0")
        except h.TestFailure as e:
            m = env.metrics()
            ck(False, f"{e}: {dict((k, v) for k, v in m.items() if 'poll_orders' in k)}")
        print("  ok  no watcher left: trackgate_poll_orders is 0 in every state")
        ck(not fake.bad_auth(), f"bad credentials: {fake.bad_auth()[:3]!r}")
        env.assert_alive()
        ck.done()
    finally:
        print(f"fake: {len(fake.log)} requests; per order "
              f"{ {p: fake.count(p) for p in ORDERS} }")
        await asyncio.to_thread(fake.close)


if __name__ == "__main__":
    h.main(test, start=False)
