#!/usr/bin/python3
"""integration.rate_limits: token buckets per client address, and the trusted proxy's header.

trackgated runs with small buckets (--upgrade-rate 2 --upgrade-burst 5
--ingest-rate 2 --ingest-burst 5) behind a "proxy" it trusts
(--proxy-header X-Forwarded-For --trusted-proxies 127.0.0.1): every request
comes from 127.0.0.1, and X-Forwarded-For names the client, so each phase
uses its own client address and starts with a full bucket.

Ingest (POST /v1/updates and /v1/webhooks/stuart share one bucket per address):
  - a burst of requests: the first 5 are answered 202, then 429
    {"error":"rate_limited","message":..} with Retry-After (whole seconds >= 1);
    no more pass than burst + rate x elapsed;
  - over the rate, a wrong key gets 429 too (the limit comes before the key);
    so does a webhook from the same address;
  - the same client behind a longer chain ("10.9.9.9, C" and "C, 127.0.0.1")
    is still C and still limited; "C, 10.3.3.3" is 10.3.3.3 (the rightmost
    address that is not a trusted proxy) with its own bucket; so is another
    X-Forwarded-For value and the proxy itself (no header);
  - after Retry-After seconds the client is served again;
  - webhooks alone from a fresh address: 5 pass, then 429.
Websocket upgrades: the first 5 get their snapshot, then an error frame and
close 1013 with a reason; another address is not affected; the upgrade
bucket is not the ingest one; after a second an upgrade passes again.
max-per-client counts the forwarded address too (--max-per-client 4).
/metrics: trackgate_refused_total{reason="rate"} moves by the number of 429s
and 1013s seen.

A second trackgated trusts another proxy (192.0.2.1), and a third has no
proxy settings: both ignore X-Forwarded-For, so all the requests share
127.0.0.1's bucket.
"""
import asyncio
import json
import math
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_tokens import readable, scrape_refused, ws_refused  # noqa: E402

RATE, BURST = 2, 5
LIMITS = ["--upgrade-rate", str(RATE), "--upgrade-burst", str(BURST),
          "--ingest-rate", str(RATE), "--ingest-burst", str(BURST)]
STUART_SECRET = f"stuart-rate-{os.urandom(8).hex()}"
IGNORED_EVENT = {"event": "driver", "type": "online",
                 "data": {"status": "online", "latitude": 48.8, "longitude": 2.3}}


def xff(addr):
    return {"X-Forwarded-For": addr} if addr is not None else {}


def post_update(port, oid, addr, key=h.INGEST_KEY):
    hd = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    hd.update(xff(addr))
    return h.http_request(port, "POST", "/v1/updates", h.update(oid, h.now_ms(), lat=1.0, lng=2.0),
                          hd)


def post_webhook(port, addr, secret=STUART_SECRET):
    hd = {"Content-Type": "application/json", "Authorization": f"Bearer {secret}"}
    hd.update(xff(addr))
    return h.http_request(port, "POST", "/v1/webhooks/stuart", json.dumps(IGNORED_EVENT), hd)


class Seen:
    """Counts the rate refusals seen, to compare with /metrics."""

    def __init__(self):
        self.n = 0
        self.ws = 0  # of which websocket 1013s


def check_429(ck, what, r, seen):
    """r must be a 429 rate_limited with a Retry-After; returns its seconds (or None)."""
    if r.status == 429:
        seen.n += 1
    ok = ck(r.status == 429, f"{what}: {r!r}, want 429")
    if not ok:
        return None
    ck(isinstance(r.json, dict) and r.json.get("error") == "rate_limited"
       and readable(r.json.get("message")),
       f"{what}: the 429 body is not {{\"error\":\"rate_limited\",\"message\":..}}: {r!r}")
    ck(r.headers.get("content-type", "").startswith("application/json"),
       f"{what}: 429 Content-Type {r.headers.get('content-type')!r}")
    ra = r.headers.get("retry-after")
    if not ck(ra is not None and ra.isdigit() and 1 <= int(ra) <= 60,
              f"{what}: Retry-After {ra!r}, want whole seconds 1..60"):
        return None
    return int(ra)


def burst(ck, what, send, ok_status, seen, n=12):
    """Sends n requests at once; checks the first BURST pass, some get 429, no more than
    the bucket allows pass.  Returns the last Retry-After seen."""
    t0 = time.monotonic()
    results = [send() for _ in range(n)]
    elapsed = time.monotonic() - t0
    statuses = [r.status for r in results]
    print(f"  {what}: {statuses} in {elapsed:.2f} s")
    passed = sum(1 for s in statuses if s == ok_status)
    ck(statuses[:BURST] == [ok_status] * BURST,
       f"{what}: the first {BURST} (the burst) must pass with {ok_status}: {statuses}")
    allowed = BURST + math.ceil(RATE * elapsed) + 1
    ck(passed <= allowed, f"{what}: {passed} passed in {elapsed:.2f} s, the bucket allows "
                          f"{allowed} at most")
    ck(set(statuses) <= {ok_status, 429}, f"{what}: unexpected statuses {statuses}")
    retry = None
    for i, r in enumerate(results):
        if r.status == 429:
            retry = check_429(ck, f"{what} #{i + 1}", r, seen)
    ck(429 in statuses, f"{what}: nothing was refused: {statuses}")
    return retry


async def open_ws(port, path, headers=None):
    w = h.Watcher(port, path)
    w.ws = await h.websockets.connect(w.url, open_timeout=5, close_timeout=5, ping_interval=None,
                                      max_queue=None, extra_headers=headers or {})
    w._task = asyncio.ensure_future(w._reader())
    return w


async def ws_status(port, oid, headers):
    """Opens a websocket; 'snapshot' (then closes it) or its close code."""
    w = await open_ws(port, f"/v1/track/{oid}", headers)
    f = await w.next(what="the first frame")
    if f.get("type") == "snapshot":
        await w.close()
        return "snapshot", w
    code, _ = await w.wait_closed()
    return code, w


async def ws_burst(ck, what, port, oid, headers, seen, n=9):
    t0 = time.monotonic()
    results = []
    for _ in range(n):
        try:
            results.append(await ws_status(port, oid, headers))
        except (h.TestFailure, OSError, h.websockets.exceptions.WebSocketException) as e:
            results.append((f"{type(e).__name__}: {e}", None))
    elapsed = time.monotonic() - t0
    codes = [c for c, _ in results]
    print(f"  {what}: {codes} in {elapsed:.2f} s")
    ck(codes[:BURST] == ["snapshot"] * BURST, f"{what}: the first {BURST} upgrades must pass: "
                                              f"{codes}")
    passed = codes.count("snapshot")
    allowed = BURST + math.ceil(RATE * elapsed) + 1
    ck(passed <= allowed, f"{what}: {passed} upgrades passed in {elapsed:.2f} s, the bucket "
                          f"allows {allowed} at most")
    ck(1013 in codes, f"{what}: no upgrade was refused with 1013: {codes}")
    ck(set(codes) <= {"snapshot", 1013}, f"{what}: unexpected outcomes {codes}")
    for code, w in results:
        if code != 1013:
            continue
        seen.n += 1
        seen.ws += 1
        first = w.frames[0] if w.frames else {}
        ck(first.get("type") == "error" and readable(first.get("message")),
           f"{what}: a 1013 without an error frame first: {w.frames!r}")
        ck(readable(w.close_reason), f"{what}: 1013 with the reason {w.close_reason!r}")
        if first.get("error") is not None:
            ck(first.get("error") == "rate_limited", f"{what}: the error frame {first!r}")
    return results


async def shared_bucket(ck, label, port, oid):
    """On a daemon that must ignore X-Forwarded-For: every address shares 127.0.0.1's bucket."""
    seen = Seen()
    statuses = [post_update(port, oid, f"10.1.1.{i % 3 + 1}").status for i in range(BURST)]
    ck(statuses == [202] * BURST, f"{label}: the first {BURST} POSTs: {statuses}")
    for addr in ("10.1.1.1", "10.1.1.2", "10.200.0.1", None):
        r = post_update(port, oid, addr)
        check_429(ck, f"{label}: X-Forwarded-For {addr} after the burst of 127.0.0.1", r, seen)
    codes = []
    for i in range(BURST + 2):
        code, _ = await ws_status(port, oid, xff(f"10.5.5.{i + 1}"))
        codes.append(code)
    ck(codes[:BURST] == ["snapshot"] * BURST and 1013 in codes,
       f"{label}: upgrades from 'different' forwarded addresses share one bucket: {codes}")
    print(f"  {label}: POST after the burst -> 429 whatever the header; upgrades {codes}")


async def test(env):
    ck = h.Checks()
    pid = os.getpid()
    secret_file = os.path.join(env.log_dir, "stuart.secret")
    with open(secret_file, "w") as f:
        f.write(STUART_SECRET + "\n")
    env.daemon.extra_args += LIMITS + ["--proxy-header", "X-Forwarded-For",
                                       "--trusted-proxies", "127.0.0.1",
                                       "--max-per-client", "4",
                                       "--webhook-secret-file", f"stuart={secret_file}"]
    env.start()
    port = env.port
    oid = f"rate-{pid}"
    seen = Seen()
    before = await asyncio.to_thread(scrape_refused, port)

    print("--- ingest: one client (X-Forwarded-For 10.1.1.1)")
    client = "10.1.1.1"
    retry = await asyncio.to_thread(burst, ck, f"POST /v1/updates as {client}",
                                    lambda: post_update(port, oid, client), 202, seen)
    checks = [
        ("a wrong key over the rate", lambda: post_update(port, oid, client, key="wrong-key-" * 3),
         429),
        ("a webhook from the same client (one ingest bucket)", lambda: post_webhook(port, client),
         429),
        ("the same client behind another proxy (10.9.9.9, C)",
         lambda: post_update(port, oid, f"10.9.9.9, {client}"), 429),
        ("the same client with the trusted proxy appended (C, 127.0.0.1)",
         lambda: post_update(port, oid, f"{client}, 127.0.0.1"), 429),
        ("another X-Forwarded-For value (10.1.1.2): its own bucket",
         lambda: post_update(port, oid, "10.1.1.2"), 202),
        ("C, 10.3.3.3: the client is 10.3.3.3 (rightmost not trusted)",
         lambda: post_update(port, oid, f"{client}, 10.3.3.3"), 202),
        ("the proxy itself (no X-Forwarded-For): 127.0.0.1's bucket",
         lambda: post_update(port, oid, None), 202),
        ("a webhook from another client (10.4.4.1)", lambda: post_webhook(port, "10.4.4.1"), 200),
    ]
    for what, send, want in checks:
        r = await asyncio.to_thread(send)
        if want == 429:
            if check_429(ck, what, r, seen) is not None:
                print(f"  ok  {what}: 429 Retry-After {r.headers.get('retry-after')}")
        elif ck(r.status == want, f"{what}: {r!r}, want {want}"):
            print(f"  ok  {what}: {r.status}")
    wait = max(retry or 1, 1 / RATE) + 0.2
    await asyncio.sleep(wait)
    r = await asyncio.to_thread(post_update, port, oid, client)
    if ck(r.status == 202, f"{client} {wait:.1f} s later (after Retry-After): {r!r}, want 202"):
        print(f"  ok  {client} after Retry-After ({wait:.1f} s): 202")

    print("--- ingest: webhooks alone (X-Forwarded-For 10.4.4.4)")
    await asyncio.to_thread(burst, ck, "POST /v1/webhooks/stuart as 10.4.4.4",
                            lambda: post_webhook(port, "10.4.4.4"), 200, seen)

    print("--- websocket upgrades (X-Forwarded-For 10.5.5.5)")
    await env.aapply(h.update(oid, h.now_ms(), lat=52.0, lng=13.0))
    await ws_burst(ck, "upgrades as 10.5.5.5", port, oid, xff("10.5.5.5"), seen)
    code, _ = await ws_status(port, oid, xff("10.5.5.6"))
    ck(code == "snapshot", f"an upgrade from 10.5.5.6 after 10.5.5.5's burst: {code}")
    r = await asyncio.to_thread(post_update, port, oid, "10.5.5.5")
    ck(r.status == 202, f"POST from 10.5.5.5 (upgrades do not spend ingest tokens): {r!r}")
    await asyncio.sleep(1 / RATE + 0.3)
    code, _ = await ws_status(port, oid, xff("10.5.5.5"))
    ck(code == "snapshot", f"an upgrade from 10.5.5.5 a second after its burst: {code}")
    print("  ok  another address, the ingest bucket and a second later are not limited")

    print("--- max-per-client counts the forwarded address (X-Forwarded-For 10.6.6.6)")
    held = []
    for i in range(4):
        w = await open_ws(port, f"/v1/track/{oid}", xff("10.6.6.6"))
        env.watchers.append(w)
        try:
            await w.snapshot()
            held.append(w)
        except h.TestFailure as e:
            ck(False, f"10.6.6.6 watcher {i + 1} of 4: {e}")
    await ws_refused(port, ck, "10.6.6.6's 5th websocket (max-per-client 4)", f"/v1/track/{oid}",
                     1008, headers=xff("10.6.6.6"))
    code, _ = await ws_status(port, oid, xff("10.6.6.7"))
    ck(code == "snapshot", f"10.6.6.7 while 10.6.6.6 holds 4: {code}")
    c = await env.aapply(h.update(oid, h.now_ms(), lat=52.1, lng=13.1))
    for w in held:
        try:
            f = await w.update()
            ck(f.get("cursor") == c, f"a held watcher got {f!r}")
        except h.TestFailure as e:
            ck(False, f"a held watcher: {e}")
    for w in held:
        await w.close()

    print("--- /metrics")
    after = await asyncio.to_thread(scrape_refused, port)
    got = after.get("rate", 0) - before.get("rate", 0)
    ck(got == seen.n, f'trackgate_refused_total{{reason="rate"}} moved by {got}; the test saw '
                      f'{seen.n} rate refusals ({seen.n - seen.ws} HTTP 429s and {seen.ws} '
                      f'websocket 1013s)')
    print(f"  refused rate: +{got}, seen {seen.n}")
    h.check_eq(env.http("GET", "/healthz").status, 200, "/healthz")

    for label, args in (("a proxy that is not trusted (192.0.2.1)",
                         ["--proxy-header", "X-Forwarded-For", "--trusted-proxies", "192.0.2.1"]),
                        ("no proxy settings", [])):
        print(f"--- X-Forwarded-For ignored: {label} (another trackgated)")
        d_dir = os.path.join(env.log_dir, "untrusted" if args else "no-proxy")
        os.makedirs(d_dir, exist_ok=True)
        d = h.Daemon(env.args.trackgated, env.redis.sock, env.key_file, d_dir, LIMITS + args)
        d.start()  # from the main thread: PR_SET_PDEATHSIG follows the thread that spawned
        try:
            await shared_bucket(ck, label, d.port, oid)
        finally:
            try:
                await asyncio.to_thread(d.terminate)
            except h.TestFailure as e:
                ck(False, f"{label}: {e}\n{h.tail(d.log, 30)}")

    env.assert_alive()
    ck.done()


if __name__ == "__main__":
    h.main(test, start=False)
