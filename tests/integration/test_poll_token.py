#!/usr/bin/python3
"""integration.poll_token: Uber Direct's OAuth token in poll mode (/tmp/poll_spec.md, Faults:
OAuth token, 401), against the fake Uber Direct (fake_providers.py).

trackgated polls one watched Uber Direct delivery (interval-ms 200) with a token from the
fake's POST /oauth/v2/token (client credentials form).

- The first token request fails (500): trackgated sends no GET without a token, counts
  trackgate_poll_token_requests_total{result="failed"}, and asks again only after the
  token endpoint's back-off (5 s); the token it then gets is used and the first poll
  reaches the watcher.
- A GET answered 401 (an injected fault, with a token that is still good): the token is
  dropped (never sent again), a new one is fetched at once and the poll goes on with it;
  trackgate_poll_requests_total{result="unauthorized"} counts it.  The same when the fake
  revokes every token it issued.
- Short tokens (expires_in 3 s) over about 10 s: each is replaced before it expires (the
  next token request comes within its lifetime) but cached (not one per GET); no GET ever
  carries an expired token (the fake judges by its own clock); the GETs go on without a
  stall while tokens change; moves of the courier keep reaching the watcher; the token
  counters equal what the fake issued and refused.
"""
import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import fake_providers as fp  # noqa: E402

INTERVAL_MS = 200  # a GET falls in every short token's last tenth, however the refresh is timed
SHORT_S = 3
BACKOFF_MIN_S = 5.0  # the token endpoint's first back-off (spec: 5 s doubling)
REF = "del_token_1"


def near(a, b):
    return a is not None and abs(a[0] - b[0]) < 1e-6 and abs(a[1] - b[1]) < 1e-6


async def move(fake, w, lat, lng, what):
    fake.set_state("uber_direct", REF, lat=lat, lng=lng)
    await fp.next_matching(w, lambda f: f.get("type") == "update" and
                           near(fp.location_of(f), (lat, lng)), 4.0, what)


async def first_token_fails(env, fake, ck, oid):
    fake.fault("uber_direct_token", 500)
    fake.set_state("uber_direct", REF, lat=52.52, lng=13.40, status="pickup")
    st, raw = await asyncio.to_thread(fp.put_source, env.port, oid, "uber_direct", REF,
                                      h.INGEST_KEY)
    h.check(st == 204, f"PUT source: {st} {raw!r}")
    w = await env.watch(oid)
    await asyncio.to_thread(fake.wait_count, 1, "uber_direct", kind="token", timeout=5.0,
                            what="the first token request")
    await fp.next_matching(w, lambda f: f.get("type") == "update" and
                           near(fp.location_of(f), (52.52, 13.40)), BACKOFF_MIN_S + 6,
                           "the first poll, after a token")
    tokens = fake.token_requests()
    ck(len(tokens) >= 2 and tokens[0].status == 500 and tokens[1].status == 200,
       f"token requests: a 500 then a 200: {tokens!r}")
    if len(tokens) >= 2:
        gap = tokens[1].t - tokens[0].t_done
        ck(gap >= BACKOFF_MIN_S - 0.05, f"the token request after a failure waited {gap:.2f} s, "
           f"want >= {BACKOFF_MIN_S} s")
        print(f"  ok  the failed token request was retried {gap:.2f} s later")
        early = fake.requests("uber_direct", until=tokens[1].t_done)
        ck(not early, f"GETs before the first token arrived: {early!r}")
    m = await asyncio.to_thread(env.metrics)
    ck(fp.metric(m, "trackgate_poll_token_requests_total", provider="uber_direct",
                 result="failed") == 1,
       f"token_requests failed: {fp.metric(m, 'trackgate_poll_token_requests_total', result='failed')}")
    ck(not fake.bad_auth("uber_direct"), f"GETs without a good token: {fake.bad_auth()!r}")
    return w


async def refused_get(env, fake, ck, w, how):
    """One GET refused 401 (how: 'fault' or 'revoke'); a new token, and polling goes on."""
    before_tokens = len(fake.token_requests(ok=True))
    old = fake.requests("uber_direct")[-1].token
    since = time.monotonic()
    if how == "fault":
        fake.fault("uber_direct", 401)
    else:
        fake.revoke_tokens()
    refused = await h.async_wait_until(
        lambda: next((r for r in fake.requests("uber_direct", since=since) if r.status == 401),
                     None), 3.0, what=f"a GET refused 401 ({how})")
    await asyncio.to_thread(fake.wait_count, before_tokens + 1, "uber_direct", kind="token",
                            status=200, timeout=3.0, what="a new token after the 401")
    new = fake.token_requests(ok=True)[-1]
    took = new.t - refused.t_done
    ck(took < 2.0, f"{how}: the new token was requested {took:.2f} s after the 401")
    after = await h.async_wait_until(
        lambda: next((r for r in fake.requests("uber_direct", since=new.t_done)
                      if r.status == 200), None), 3.0, what="a GET after the new token")
    ck(after.token == new.token, f"{how}: the next GET carries the new token")
    reused = [r for r in fake.requests("uber_direct", since=refused.t_done) if r.token == old]
    ck(not reused, f"{how}: the refused token was sent again: {reused!r}")
    await move(fake, w, 52.521 + len(fake.token_log) * 1e-4, 13.401, f"a move after the {how}")
    print(f"  ok  401 ({how}): a new token {took:.2f} s later, the poll went on with it")


async def short_tokens(env, fake, ck, w):
    fake.uber_expires_in = SHORT_S
    t0 = time.monotonic()
    await refused_get(env, fake, ck, w, "revoke")  # the next token is a short one
    first_short = len(fake.token_log) - 1
    window_start = time.monotonic()
    for i in range(5):
        await asyncio.sleep(2.0)
        await move(fake, w, 52.53 + i * 1e-3, 13.41 + i * 1e-3, f"move {i + 1} with short tokens")
    window_end = time.monotonic()
    short = fake.token_log[first_short:]
    ck(len(short) >= 3, f"short tokens over {window_end - t0:.1f} s: {len(short)} issued, "
       f"want >= 3 (each replaced before it expires)")
    for (ta, _, life), (tb, _, _) in zip(short, short[1:]):
        ck(tb - ta < life, f"a token was replaced {tb - ta:.2f} s after it was issued; it "
           f"expired after {life} s")
        ck(tb - ta >= life / 2, f"a token was replaced after only {tb - ta:.2f} s of its {life} s "
           "(not cached)")
    expired = fake.expired_token_used()
    ck(not expired, f"GETs with an expired token: {expired!r}")
    bad = fake.bad_auth("uber_direct")
    ck(len(bad) == 1 and bad[0].status == 401 and not bad[0].token_expired,
       f"the only GET with a bad token is the revoked one: {bad!r}")
    gap = fake.max_gap("uber_direct", since=window_start, until=window_end)
    ck(gap <= INTERVAL_MS * 1.1 / 1000 + 0.5,
       f"the GETs stalled {gap:.2f} s while tokens changed (interval {INTERVAL_MS} ms)")
    print(f"  ok  {len(short)} short tokens, each replaced {[round(b[0] - a[0], 2) for a, b in zip(short, short[1:])]} s "
          f"after issue; no expired token sent; longest GET gap {gap:.2f} s")


async def test(env):
    ck = h.Checks()
    fake = fp.FakeProviders(uber_expires_in=3600)
    try:
        conf = fp.write_poll_config(fake, env.log_dir, providers=("uber_direct",),
                                    common={"interval-ms": INTERVAL_MS})
        env.daemon.extra_args += ["--config", conf]
        env.start()
        oid = f"ptok-{os.getpid()}"
        print("--- the first token request fails")
        w = await first_token_fails(env, fake, ck, oid)
        print("--- a GET refused 401")
        await refused_get(env, fake, ck, w, "fault")
        print("--- short tokens (expires_in 3 s)")
        await short_tokens(env, fake, ck, w)
        m = await asyncio.to_thread(env.metrics)
        ok_tokens = len(fake.token_requests(ok=True))
        ck(fp.metric(m, "trackgate_poll_token_requests_total", provider="uber_direct",
                     result="ok") == ok_tokens,
           f"token_requests ok {fp.metric(m, 'trackgate_poll_token_requests_total', result='ok')}"
           f", the fake issued {ok_tokens}")
        refused = fake.count("uber_direct", status=401)
        ck(fp.metric(m, "trackgate_poll_requests_total", provider="uber_direct",
                     result="unauthorized") == refused,
           f"requests unauthorized {fp.metric(m, 'trackgate_poll_requests_total', result='unauthorized')}"
           f", the fake refused {refused}")
        env.assert_alive()
        ck.done()
    finally:
        print(f"fake: {len(fake.log)} requests, {len(fake.token_log)} tokens issued; "
              f"last: {fake.log[-4:]!r}")
        await asyncio.to_thread(fake.close)


if __name__ == "__main__":
    h.main(test, start=False)
