#!/usr/bin/python3
"""integration.poll_basic: poll mode end to end for Uber Direct, DoorDash Drive and Onfleet
(/tmp/poll_spec.md, issue 17), against fake provider APIs (fake_providers.py) on 127.0.0.1.

trackgated runs with a config file holding [poll.uber_direct], [poll.doordash_drive] and
[poll.onfleet] (base-url and Uber's token-url at the fake, interval-ms 300, the credentials
in secret files).  For each provider:

- a watcher joins an order that has no state (snapshot state null) and no source; then
  PUT /v1/orders/{ID}/source names the provider's delivery / worker: polling starts within
  about 2 s (the source is re-read every 2 s) and the first poll's answer reaches the
  watcher as an update frame (provider, position; Uber's and DoorDash's status and
  courier); a watcher joining later gets a snapshot holding it;
- moving the fake courier twice reaches the watcher as two update frames;
- an unchanged answer polled again is applied once: several more polls, no more frames,
  trackgate_poll_updates_total{result="duplicate"} counts them;
- the fake saw every request with the right credentials (Uber: a token from the token
  endpoint, client credentials form; DoorDash: a JWT that PyJWT verifies with dd-ver,
  aud, iss, kid, exp <= iat + 1800; Onfleet: Basic base64(KEY:)), none with an expired
  token; trackgate_poll_requests_total{result="ok"} and trackgate_poll_orders{state=
  "polling"} count them.

Then, for the Onfleet order, pushed updates and polled answers are judged by the same
script: a POST /v1/updates newer than the last poll applies and reaches the watcher; a
polled answer older than it (timeLastSeen before it) is stale (counted, never delivered);
a POST older than the stored position answers stale; a polled answer newer than the push
wins again.
"""
import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import fake_providers as fp  # noqa: E402
from test_metrics import promtool_check  # noqa: E402

INTERVAL_MS = 300
START_S = 2.0 + 2.0  # the source is re-read every 2 s; plus slack for the first poll

CASES = [
    # provider, ref, first state, the canonical status the first frame must carry
    ("uber_direct", "del_basic~1", dict(lat=52.5219, lng=13.4132, status="pickup"),
     "en_route_to_pickup"),
    ("doordash_drive", "D-basic-1", dict(lat=52.5232, lng=13.4101, status="enroute_to_dropoff"),
     "en_route_to_dropoff"),
    ("onfleet", "wrk*basic1", dict(lat=52.5246, lng=13.4068), None),
]


def near(a, b):
    return a is not None and b is not None and abs(a[0] - b[0]) < 1e-6 and abs(a[1] - b[1]) < 1e-6


async def first_poll(env, fake, ck, oid, provider, ref, state, status):
    w = await env.watch(oid, snapshot=False)
    snap = await w.snapshot()
    ck(snap.get("state") is None and snap.get("cursor") is None,
       f"{provider}: the order has no state before the source is set: {snap!r}")
    fake.set_state(provider, ref, **state)
    st, raw = await asyncio.to_thread(fp.put_source, env.port, oid, provider, ref, h.INGEST_KEY)
    h.check(st == 204, f"{provider}: PUT source: {st} {raw!r}")
    t_put = time.monotonic()
    want = (state["lat"], state["lng"])
    f = await fp.next_matching(w, lambda f: f.get("type") == "update" and
                               near(fp.location_of(f), want), START_S + 1,
                               f"{provider}'s first polled position {want}")
    took = time.monotonic() - t_put
    print(f"  ok  {provider}: the first poll reached the watcher {took:.2f} s after the PUT")
    u = f["update"]
    ck(u.get("provider") == provider and u.get("order_id") == oid,
       f"{provider}: the update's provider and order: {u!r}")
    if status is not None:
        ck(u.get("status") == status, f"{provider}: the first frame's status: {u!r}, want {status}")
    if provider == "uber_direct":
        ck((u.get("courier") or {}).get("name") == "Cori R." and
           (u.get("courier") or {}).get("vehicle") == "car",
           f"uber_direct: the courier's name and vehicle: {u!r}")
        ck(isinstance((u.get("eta") or {}).get("dropoff"), int), f"uber_direct: dropoff eta: {u!r}")
    if provider == "doordash_drive":
        ck((u.get("courier") or {}).get("id") == "1234567" and
           (u.get("courier") or {}).get("name") == "Cori R.",
           f"doordash_drive: the dasher's id and name: {u!r}")
    ck(u.get("ts") == fake.state(provider, ref)["ts_ms"],
       f"{provider}: the update's ts is the answer's own time: {u.get('ts')} vs "
       f"{fake.state(provider, ref)['ts_ms']}")
    late = await env.watch(oid, snapshot=False)
    snap = await late.snapshot()
    loc = ((snap.get("state") or {}).get("location") or {})
    ck(near((loc.get("lat"), loc.get("lng")), want),
       f"{provider}: a later watcher's snapshot holds the polled position: {snap!r}")
    await late.close()
    return w


async def moves(env, fake, ck, w, provider, ref):
    for i, (lat, lng) in enumerate(((52.5258, 13.4031), (52.5267, 13.3994))):
        fake.set_state(provider, ref, lat=lat, lng=lng)
        await fp.next_matching(w, lambda f: f.get("type") == "update" and
                               near(fp.location_of(f), (lat, lng)), 3.0,
                               f"{provider}: move {i + 1} to {(lat, lng)}")
    print(f"  ok  {provider}: two moves of the fake courier reached the watcher")


async def unchanged(env, fake, ck, watchers):
    """Every order's answer is unchanged now: more polls, no more frames."""
    since = time.monotonic()
    for provider, _, _, _ in CASES:
        ref = next(c[1] for c in CASES if c[0] == provider)
        await asyncio.to_thread(fake.wait_count, 4, provider, ref, since=since, timeout=5.0)
    for provider, w in watchers.items():
        extra = [f for f in w.pending() if f.get("type") == "update"]
        ck(not extra, f"{provider}: an unchanged answer was delivered again: {extra!r}")
    m = await asyncio.to_thread(env.metrics)
    for provider, _, _, _ in CASES:
        ck(fp.metric(m, "trackgate_poll_updates_total", provider=provider, result="duplicate") >= 3,
           f"{provider}: unchanged answers counted as duplicate: "
           f"{fp.metric(m, 'trackgate_poll_updates_total', provider=provider, result='duplicate')}")
    print("  ok  unchanged answers: polled again, applied once (duplicate)")


def auth_seen(env, fake, ck):
    m = env.metrics()
    for provider, ref, _, _ in CASES:
        reqs = fake.requests(provider, ref)
        ck(reqs and all(r.auth_ok for r in reqs),
           f"{provider}: every GET had the right credentials: "
           f"{[r for r in reqs if not r.auth_ok][:3]!r}")
        ok = fp.metric(m, "trackgate_poll_requests_total", provider=provider, result="ok")
        ck(ok >= len(reqs) - 1 and ok <= len(reqs),
           f"{provider}: trackgate_poll_requests_total ok {ok}, the fake answered {len(reqs)}")
    tokens = fake.token_requests()
    ck(tokens and all(r.auth_ok and r.status == 200 for r in tokens) and
       all("content-type=application/x-www-form-urlencoded grant_type=client_credentials "
           "scope=eats.deliveries" in r.detail for r in tokens),
       f"uber_direct: the token requests, client credentials: {tokens!r}")
    used = {r.token for r in fake.requests("uber_direct")}
    ck(used <= {r.token for r in tokens}, "uber_direct: GETs carry tokens the endpoint issued")
    ck(fp.metric(m, "trackgate_poll_token_requests_total", provider="uber_direct",
                 result="ok") == len(tokens),
       f"trackgate_poll_token_requests_total ok: "
       f"{fp.metric(m, 'trackgate_poll_token_requests_total', result='ok')}, "
       f"the fake issued {len(tokens)}")
    dd = fake.requests("doordash_drive")
    ck(all("'dd-ver': 'DD-JWT-V1'" in r.detail and "'aud': 'doordash'" in r.detail for r in dd),
       f"doordash_drive: JWT header and claims: {dd[0].detail if dd else None}")
    ck(not fake.expired_token_used(), f"no expired token: {fake.expired_token_used()!r}")
    ck(fp.metric(m, "trackgate_poll_orders", state="polling") == 3,
       f"trackgate_poll_orders{{state=polling}}: "
       f"{fp.metric(m, 'trackgate_poll_orders', state='polling')}, want 3")
    print(f"  ok  credentials: {len(tokens)} Uber token(s), "
          f"{len(dd)} DoorDash JWTs verified, Onfleet Basic")


async def push_and_poll(env, fake, ck, w, oid, ref):
    """The Onfleet order: a push newer than the poll wins, an older polled answer is stale."""
    t1 = fake.state("onfleet", ref)["ts_ms"]
    pushed = (52.5301, 13.3850)
    res = await env.apost_ok(h.update(oid, t1 + 5000, lat=pushed[0], lng=pushed[1]))
    ck(res[0].get("result") == "applied", f"a push newer than the poll: {res!r}")
    await fp.next_matching(w, lambda f: f.get("type") == "update" and
                           near(fp.location_of(f), pushed), 3.0, "the pushed position")
    print("  ok  a POST /v1/updates newer than the last poll applied and reached the watcher")

    stale_before = fp.metric(await asyncio.to_thread(env.metrics), "trackgate_poll_updates_total",
                             provider="onfleet", result="stale")
    older = (52.5292, 13.3886)
    fake.set_state("onfleet", ref, lat=older[0], lng=older[1], ts_ms=t1 + 1000)
    await h.async_wait_until(
        lambda: fp.metric(env.metrics(), "trackgate_poll_updates_total", provider="onfleet",
                          result="stale") > stale_before, 5.0,
        what="a polled answer older than the push counted stale")
    since = time.monotonic()
    await asyncio.to_thread(fake.wait_count, 3, "onfleet", ref, since=since, timeout=5.0)
    bad = [f for f in w.pending() if near(fp.location_of(f), older)]
    ck(not bad, f"the stale polled position reached the watcher: {bad!r}")
    print("  ok  a polled answer older than the push: stale, not delivered")

    res = await env.apost_ok(h.update(oid, t1 + 500, lat=52.0, lng=13.0))
    ck(res[0].get("result") == "stale", f"a push older than the stored position: {res!r}")
    print("  ok  a POST older than the stored position: stale")

    newer = (52.5283, 13.3921)
    fake.set_state("onfleet", ref, lat=newer[0], lng=newer[1], ts_ms=t1 + 6000)
    await fp.next_matching(w, lambda f: f.get("type") == "update" and
                           near(fp.location_of(f), newer), 3.0, "the newer polled position")
    print("  ok  a polled answer newer than the push applied and reached the watcher")


async def test(env):
    ck = h.Checks()
    fake = fp.FakeProviders()
    try:
        conf = fp.write_poll_config(fake, env.log_dir, common={"interval-ms": INTERVAL_MS})
        env.daemon.extra_args += ["--config", conf]
        env.start()
        watchers = {}
        pid = os.getpid()
        oids = {}
        for provider, ref, state, status in CASES:
            print(f"--- {provider}")
            oid = f"pb-{provider}-{pid}"
            oids[provider] = oid
            w = await first_poll(env, fake, ck, oid, provider, ref, state, status)
            watchers[provider] = w
            await moves(env, fake, ck, w, provider, ref)
        print("--- unchanged answers, credentials")
        await unchanged(env, fake, ck, watchers)
        await asyncio.to_thread(auth_seen, env, fake, ck)
        print("--- pushed and polled updates (onfleet)")
        await push_and_poll(env, fake, ck, watchers["onfleet"], oids["onfleet"], CASES[2][1])
        print("--- the scrape with every poll family filled passes promtool")
        r = await asyncio.to_thread(h.http_request, env.port, "GET", "/metrics")
        await asyncio.to_thread(promtool_check, r.raw)
        print("  ok  promtool check metrics: clean")
        env.assert_alive()
        ck.done()
    finally:
        print(f"fake: {len(fake.log)} requests; last: {fake.log[-5:]!r}")
        await asyncio.to_thread(fake.close)


if __name__ == "__main__":
    h.main(test, start=False)
