#!/usr/bin/python3
"""integration.rate_limits: token buckets per client address, and the trusted proxy's header.

trackgated runs with small buckets (--upgrade-rate 1 --upgrade-burst 5
--ingest-rate 1 --ingest-burst 5) behind a "proxy" it trusts
(--proxy-header X-Forwarded-For --trusted-proxies 127.0.0.1): every request
comes from 127.0.0.1, and X-Forwarded-For names the client, so each phase
uses its own client address and starts with a full bucket.

A bucket refills while the test runs (1 token a second: the smallest rate the
daemon takes), so no answer is assumed from "the bucket is empty now".  The
test keeps, per bucket, an upper and a lower bound of its tokens from its own
clock (class Bucket: each request is handled between its send and its
answer): a request must pass when the lower bound has a token, must be
refused when the upper bound has none, and may go either way in between.  A
check that wants a refusal repeats its request until one comes, every pass
before it explained by refill.

Ingest (POST /v1/updates and /v1/webhooks/stuart share one bucket per address):
  - a burst of requests: the first 5 are answered 202, then 429
    {"error":"rate_limited","message":..} with Retry-After (whole seconds >= 1);
    no more pass than the bucket allows;
  - over the rate, a wrong key gets 429 too (the limit comes before the key:
    401s would otherwise pass the bucket's bound);
    so does a webhook from the same address;
  - the same client behind a longer chain ("10.9.9.9, C" and "C, 127.0.0.1")
    is still C and still limited; "C, 10.3.3.3" is 10.3.3.3 (the rightmost
    address that is not a trusted proxy) with its own bucket; so is another
    X-Forwarded-For value and the proxy itself (no header);
  - after Retry-After seconds the client is served again;
  - webhooks alone from a fresh address: 5 pass, then 429.
Websocket upgrades: the first 5 get their snapshot, then an error frame and
close 1013 with a reason; another address is not affected; the upgrade
bucket is not the ingest one; once refill has given a token back an upgrade
passes again.
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

RATE, BURST = 1, 5
SLACK = 0.05  # s: the daemon's loop clock (whole ms, read per loop iteration) against ours
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


class Bucket:
    """What the test can know of one of the daemon's token buckets from its own clock.

    The daemon refills RATE tokens a second up to BURST (a new bucket is full), takes
    one for each request it lets through and none for a refused one.  Each request is
    handled at some instant between its send and its answer (SLACK either side), so
    the test keeps an upper bound `hi` (valid from t_hi on, growing by refill) and a
    lower bound `lo` (valid from t_lo on) of the tokens, and checks every answer
    against them: a pass needs hi >= 1, a refusal needs lo < 1."""

    def __init__(self, label):
        self.label = label
        self.hi = self.lo = float(BURST)
        self.t_hi = self.t_lo = None  # None: the bucket does not exist yet (full)

    def _hi(self, t):
        return self.hi if self.t_hi is None else min(BURST, self.hi + RATE * max(0, t - self.t_hi))

    def _lo(self, t):
        return self.lo if self.t_lo is None else min(BURST, self.lo + RATE * max(0, t - self.t_lo))

    def observe(self, ck, what, sent, done, passed):
        """Checks one answer (passed or refused) against the bounds, then updates them."""
        hi, lo = self._hi(done + SLACK), self._lo(sent - SLACK)
        if passed:
            ok = ck(hi >= 1, f"{what}: passed, but {self.label} had {hi:.2f} tokens at most "
                             f"(burst {BURST}, refill {RATE}/s): too many passed")
            self.hi, self.t_hi = min(BURST, hi - 1 + RATE * (done - sent + 2 * SLACK)), done
            self.lo, self.t_lo = max(0.0, lo - 1), done + SLACK
        else:
            ok = ck(lo < 1, f"{what}: refused, but {self.label} had {lo:.2f} tokens at least "
                            f"(burst {BURST}, refill {RATE}/s)")
            self.hi, self.t_hi = min(hi, 1 + RATE * (done - sent + 2 * SLACK)), done
        return ok

    def token_at(self):
        """The monotonic time from which a token is certain (no request in between)."""
        if self._lo(time.monotonic()) >= 1:
            return time.monotonic()
        return self.t_lo + (1 - self.lo) / RATE


def timed(send):
    t0 = time.monotonic()
    r = send()
    return r, t0, time.monotonic()


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


def until_refused(ck, what, send, ok_status, bucket, seen, refusals=1, n=12):
    """Sends requests one after another until `refusals` of them got 429 (at most n).
    Every answer is ok_status or 429 and agrees with the bucket's bounds; at least one
    429 must come (the bound forces it within a few requests).  Returns (statuses,
    the last 429's Retry-After, its answer time)."""
    statuses, retry, t_429 = [], None, None
    for i in range(n):
        r, sent, done = timed(send)
        statuses.append(r.status)
        if not ck(r.status in (ok_status, 429), f"{what} #{i + 1}: {r!r}, want {ok_status} "
                                                 f"or 429"):
            break
        if not bucket.observe(ck, f"{what} #{i + 1}", sent, done, r.status == ok_status):
            break
        if r.status == 429:
            retry, t_429 = check_429(ck, f"{what} #{i + 1}", r, seen), done
            if statuses.count(429) >= refusals:
                break
    ck(429 in statuses, f"{what}: nothing was refused in {len(statuses)} requests: {statuses}")
    return statuses, retry, t_429


def burst(ck, what, send, ok_status, bucket, seen):
    """A fresh address's burst: the first BURST pass (the bound says they must), then
    requests until two 429s."""
    t0 = time.monotonic()
    statuses, retry, t_429 = until_refused(ck, what, send, ok_status, bucket, seen, refusals=2,
                                           n=BURST + 12)
    print(f"  {what}: {statuses} in {time.monotonic() - t0:.2f} s")
    ck(statuses[:BURST] == [ok_status] * BURST,
       f"{what}: the first {BURST} (the burst) must pass with {ok_status}: {statuses}")
    return retry, t_429


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


async def ws_observed(ck, what, port, oid, headers, bucket, seen=None):
    """One upgrade, its outcome checked against the bucket: (outcome, watcher).  A 1013
    is checked and counted in seen (when given)."""
    sent = time.monotonic()
    try:
        code, w = await ws_status(port, oid, headers)
    except (h.TestFailure, OSError, h.websockets.exceptions.WebSocketException) as e:
        ck(False, f"{what}: {type(e).__name__}: {e}")
        return None, None
    if ck(code in ("snapshot", 1013), f"{what}: {code}, want a snapshot or 1013"):
        bucket.observe(ck, what, sent, time.monotonic(), code == "snapshot")
    if code == 1013 and seen is not None:
        check_1013(ck, what, w, seen)
    return code, w


def check_1013(ck, what, w, seen):
    seen.n += 1
    seen.ws += 1
    first = w.frames[0] if w.frames else {}
    ck(first.get("type") == "error" and readable(first.get("message")),
       f"{what}: a 1013 without an error frame first: {w.frames!r}")
    ck(readable(w.close_reason), f"{what}: 1013 with the reason {w.close_reason!r}")
    if first.get("error") is not None:
        ck(first.get("error") == "rate_limited", f"{what}: the error frame {first!r}")


async def ws_burst(ck, what, port, oid, headers, bucket, seen, n=BURST + 8):
    """Upgrades until one is refused with 1013: the first BURST must pass."""
    t0 = time.monotonic()
    codes = []
    for i in range(n):
        code, w = await ws_observed(ck, f"{what} #{i + 1}", port, oid, headers, bucket, seen)
        codes.append(code)
        if code != "snapshot":
            break
    print(f"  {what}: {codes} in {time.monotonic() - t0:.2f} s")
    ck(codes[:BURST] == ["snapshot"] * BURST, f"{what}: the first {BURST} upgrades must pass: "
                                              f"{codes}")
    ck(1013 in codes, f"{what}: no upgrade was refused with 1013: {codes}")
    return codes


async def shared_bucket(ck, label, port, oid):
    """On a daemon that must ignore X-Forwarded-For: every address shares 127.0.0.1's bucket."""
    seen = Seen()
    ingest, upgrade = Bucket(f"{label}: 127.0.0.1's ingest bucket"), \
        Bucket(f"{label}: 127.0.0.1's upgrade bucket")
    for i in range(BURST):
        r, sent, done = await asyncio.to_thread(timed, lambda: post_update(
            port, oid, f"10.1.1.{i % 3 + 1}"))
        ck(r.status == 202, f"{label}: POST {i + 1} of the first {BURST}: {r!r}")
        ingest.observe(ck, f"{label}: POST {i + 1} of the first {BURST}", sent, done,
                       r.status == 202)
    for addr in ("10.1.1.1", "10.1.1.2", "10.200.0.1", None):
        # Were the header believed, each of these would be a fresh bucket: its passes
        # would break 127.0.0.1's bound.
        await asyncio.to_thread(until_refused, ck, f"{label}: X-Forwarded-For {addr} after "
                                f"the burst of 127.0.0.1", lambda: post_update(port, oid, addr),
                                202, ingest, seen)
    codes = []
    for i in range(BURST + 8):
        code, w = await ws_observed(ck, f"{label}: upgrade {i + 1}", port, oid,
                                    xff(f"10.5.5.{i + 1}"), upgrade)
        codes.append(code)
        if code != "snapshot":
            break
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
    bucket = {}  # (kind, address) -> Bucket

    def b(kind, addr):
        return bucket.setdefault((kind, addr), Bucket(f"the {kind} bucket of {addr}"))
    retry, t_429 = await asyncio.to_thread(burst, ck, f"POST /v1/updates as {client}",
                                           lambda: post_update(port, oid, client), 202,
                                           b("ingest", client), seen)
    # Each wants a 429 from C's bucket, a pass being what that request gets with a token.
    limited = [
        ("a wrong key over the rate (the limit comes before the key)",
         lambda: post_update(port, oid, client, key="wrong-key-" * 3), 401),
        ("a webhook from the same client (one ingest bucket)", lambda: post_webhook(port, client),
         200),
        ("the same client behind another proxy (10.9.9.9, C)",
         lambda: post_update(port, oid, f"10.9.9.9, {client}"), 202),
        ("the same client with the trusted proxy appended (C, 127.0.0.1)",
         lambda: post_update(port, oid, f"{client}, 127.0.0.1"), 202),
    ]
    for what, send, passed in limited:
        statuses, r_retry, r_t = await asyncio.to_thread(until_refused, ck, what, send, passed,
                                                         b("ingest", client), seen)
        if 429 in statuses:
            retry, t_429 = r_retry, r_t
            print(f"  ok  {what}: {statuses}")
    # Each from a bucket of its own, full: must pass.
    fresh = [
        ("another X-Forwarded-For value (10.1.1.2): its own bucket", "10.1.1.2",
         lambda: post_update(port, oid, "10.1.1.2"), 202),
        ("C, 10.3.3.3: the client is 10.3.3.3 (rightmost not trusted)", "10.3.3.3",
         lambda: post_update(port, oid, f"{client}, 10.3.3.3"), 202),
        ("the proxy itself (no X-Forwarded-For): 127.0.0.1's bucket", "127.0.0.1",
         lambda: post_update(port, oid, None), 202),
        ("a webhook from another client (10.4.4.1)", "10.4.4.1",
         lambda: post_webhook(port, "10.4.4.1"), 200),
    ]
    for what, addr, send, want in fresh:
        r, sent, done = await asyncio.to_thread(timed, send)
        if ck(r.status == want, f"{what}: {r!r}, want {want}"):
            b("ingest", addr).observe(ck, what, sent, done, True)
            print(f"  ok  {what}: {r.status}")
    # Retry-After, counted from C's last 429 (nothing of C's since): a token by then.
    if retry is not None:
        await asyncio.sleep(max(0.0, t_429 + retry + SLACK - time.monotonic()))
        r = await asyncio.to_thread(post_update, port, oid, client)
        if ck(r.status == 202, f"{client} {retry} s after its last 429 (Retry-After {retry}): "
                               f"{r!r}, want 202"):
            print(f"  ok  {client} after Retry-After ({retry} s): 202")

    print("--- ingest: webhooks alone (X-Forwarded-For 10.4.4.4)")
    await asyncio.to_thread(burst, ck, "POST /v1/webhooks/stuart as 10.4.4.4",
                            lambda: post_webhook(port, "10.4.4.4"), 200, b("ingest", "10.4.4.4"),
                            seen)

    print("--- websocket upgrades (X-Forwarded-For 10.5.5.5)")
    await env.aapply(h.update(oid, h.now_ms(), lat=52.0, lng=13.0))
    await ws_burst(ck, "upgrades as 10.5.5.5", port, oid, xff("10.5.5.5"),
                   b("upgrade", "10.5.5.5"), seen)
    code, _ = await ws_observed(ck, "an upgrade from 10.5.5.6 after 10.5.5.5's burst", port, oid,
                                xff("10.5.5.6"), b("upgrade", "10.5.5.6"), seen)
    ck(code == "snapshot", f"an upgrade from 10.5.5.6 after 10.5.5.5's burst: {code}")
    r, sent, done = await asyncio.to_thread(timed, lambda: post_update(port, oid, "10.5.5.5"))
    if ck(r.status == 202, f"POST from 10.5.5.5 (upgrades do not spend ingest tokens): {r!r}"):
        b("ingest", "10.5.5.5").observe(ck, "POST from 10.5.5.5", sent, done, True)
    # Refill gives the upgrade bucket a token back: from then on an upgrade must pass.
    up = b("upgrade", "10.5.5.5")
    await asyncio.sleep(max(0.0, up.token_at() - time.monotonic()))
    code, _ = await ws_observed(ck, "an upgrade from 10.5.5.5 once refill gave a token back",
                                port, oid, xff("10.5.5.5"), up, seen)
    ck(code == "snapshot", f"an upgrade from 10.5.5.5 once refill gave a token back: {code}")
    print("  ok  another address, the ingest bucket and a refilled token are not limited")

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
