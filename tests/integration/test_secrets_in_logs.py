#!/usr/bin/python3
"""integration.secrets_in_logs: no secret and no token ever reaches trackgated's log.

trackgated runs with --log-level debug and known secrets: an ingest key (its
key file), a stuart webhook secret inline in the config file, an uber_direct
secret in a secret-file, an HS256 token key k1 in a secret-file and k3
inline in the config file.  Then every failure path this test can reach:

  - POST /v1/updates with no key, a wrong key, the real key with a character
    appended, the real key as Basic credentials; a good one; a bad body and a
    wrong Content-Type with the good key;
  - webhooks with a wrong signature, a wrong bearer, another provider's
    secret as the bearer, an unknown provider; good ones;
  - websockets and GET /v1/orders with good, expired, wrong-order, badly
    signed, unknown-kid, tampered and over-long tokens; tokens on paths that
    do not take one (a bad order id, an unknown websocket path, /healthz, a
    404, an unknown method on a raw socket, the token as a Bearer header);
    a watcher whose token expires while connected;
  - SIGHUP reloads that fail: an HS256 secret-file holding a secret too short
    (itself a secret), an ingest key file with an invalid key line, a config
    file with a line that is not `setting = value` and one with a secret under
    an unknown setting name; then a good reload.
The daemon is stopped (SIGTERM, exit 0) and its whole log is searched: none
of the secrets, the wrong credentials presented, the tokens or their
signatures may appear (nor "token=" or a JWT's "eyJ").  `--check-config`
and a start-up that fails on a bad key file are checked the same way.
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_reload import sighup, write_atomic  # noqa: E402
from test_tokens import claims, mint_hs256, random_secret, tamper_payload  # noqa: E402


def rnd(prefix, n=12):
    return f"{prefix}-{os.urandom(n).hex()}"


UBER_IGNORED = json.dumps({"id": "evt_refund1", "kind": "event.refund_request",
                           "created": "2026-11-21T10:00:00.000Z",
                           "delivery_id": "del_G_8_eeo4Q5WrYpYkATt6SA",
                           "data": {"id": "6817a070-115e-4ca9-8266-c245fe18a2d6",
                                    "total_amount": 1100, "currency_code": "usd"}}).encode()
STUART_IGNORED = json.dumps({"event": "driver", "type": "online",
                             "data": {"status": "online", "latitude": 48.8,
                                      "longitude": 2.3}}).encode()


class Secrets:
    """Every string that must stay out of the log, with what it is."""

    def __init__(self):
        self.items = {}

    def add(self, what, value):
        self.items[value] = what
        return value

    def token(self, what, tok):
        self.items[tok] = f"token: {what}"
        parts = tok.split(".")
        if len(parts) == 3 and len(parts[2]) >= 16:
            self.items[parts[2]] = f"the signature of token: {what}"
        return tok

    def leaks(self, text):
        found = []
        for value, what in self.items.items():
            forms = {value}
            raw = value.encode()
            forms.add(base64.b64encode(raw).decode().rstrip("="))
            forms.add(base64.urlsafe_b64encode(raw).decode().rstrip("="))
            for f in forms:
                if f and f in text:
                    found.append(f"{what} ({f[:12]}...)")
                    break
        return found


def config_text(ns, extra=()):
    return "\n".join([
        "[trackgated]", "ping-interval = 30", "",
        "[token-key.k1]", "alg = HS256", f"secret-file = {ns['k1_file']}", "",
        "[token-key.k3]", "alg = HS256", f"secret = {ns['k3']}", "",
        "[webhook.stuart]", f"secret = {ns['stuart']}", "",
        "[webhook.uber_direct]", f"secret-file = {ns['uber_file']}", "",
        *extra, ""])


async def test(env):
    ck = h.Checks()
    s = Secrets()
    d = env.log_dir
    pid = os.getpid()
    oid, other = f"sec-{pid}", f"sec-other-{pid}"

    ingest = s.add("the ingest key", rnd("ingest-secret"))
    k1 = s.add("token key k1 (secret-file)", random_secret())
    k3 = s.add("token key k3 (inline)", random_secret())
    stuart = s.add("the stuart secret (inline)", rnd("stuart-secret"))
    uber = s.add("the uber secret (secret-file)", rnd("uber-secret"))
    ns = {"k1_file": os.path.join(d, "k1.secret"), "k3": k3, "stuart": stuart,
          "uber_file": os.path.join(d, "uber.secret")}
    conf = os.path.join(d, "trackgated.conf")
    write_atomic(env.key_file, f"# keys\n{ingest}\n")
    write_atomic(ns["k1_file"], k1 + "\n")
    write_atomic(ns["uber_file"], uber + "\n")
    write_atomic(conf, config_text(ns))
    env.daemon.extra_args += ["--config", conf]
    env.start()
    port = env.port
    now = int(time.time())

    def req(method, path, body=None, headers=None):
        try:
            return h.http_request(port, method, path, body, headers)
        except OSError as e:
            return e

    async def areq(*a, **kw):
        return await asyncio.to_thread(req, *a, **kw)

    async def ws(path, wait_close=True):
        """Opens a websocket and waits for its snapshot or its close."""
        w = h.Watcher(port, path)
        try:
            await w.connect()
        except Exception as e:  # a refused upgrade is fine here: only the log matters
            return str(e)
        env.watchers.append(w)
        try:
            f = await w.next(what="a first frame")
        except h.TestFailure:
            f = None
        if wait_close and (f is None or f.get("type") != "snapshot"):
            await w.wait_closed(10)
        return w

    print("--- ingest: keys")
    json_h = {"Content-Type": "application/json"}
    upd = h.update(oid, h.now_ms(), lat=1.0, lng=2.0)
    wrong = s.add("a wrong bearer presented", rnd("wrong-bearer"))
    for what, auth in (("no key", None), ("a wrong key", f"Bearer {wrong}"),
                       ("the key plus a character", f"Bearer {ingest}x"),
                       ("the key as Basic", "Basic " + base64.b64encode(
                           f"user:{ingest}".encode()).decode()),
                       ("the key without Bearer", ingest), ("the good key", f"Bearer {ingest}")):
        hd = dict(json_h, **({"Authorization": auth} if auth else {}))
        r = await areq("POST", "/v1/updates", upd, hd)
        print(f"  POST /v1/updates, {what}: {getattr(r, 'status', r)}")
    r = await areq("POST", "/v1/updates", b"{not json", dict(json_h, Authorization=f"Bearer {ingest}"))
    r = await areq("POST", "/v1/updates", upd, {"Content-Type": "text/plain",
                                                "Authorization": f"Bearer {ingest}"})
    r = await areq("POST", f"/v1/updates?key={ingest}", upd, json_h)
    print(f"  bad body, wrong Content-Type, the key in the query: done ({getattr(r, 'status', r)})")

    print("--- webhooks")
    bad_sig = hmac.new(wrong.encode(), UBER_IGNORED, hashlib.sha256).hexdigest()
    good_sig = hmac.new(uber.encode(), UBER_IGNORED, hashlib.sha256).hexdigest()
    stuart_wrong = s.add("a wrong stuart bearer presented", rnd("stuart-wrong"))
    for what, path, body, hd in (
            ("uber, wrong signature", "/v1/webhooks/uber_direct", UBER_IGNORED,
             {"X-Uber-Signature": bad_sig}),
            ("uber, no signature", "/v1/webhooks/uber_direct", UBER_IGNORED, {}),
            ("uber, good", "/v1/webhooks/uber_direct", UBER_IGNORED,
             {"X-Uber-Signature": good_sig}),
            ("uber, the secret itself as the signature", "/v1/webhooks/uber_direct", UBER_IGNORED,
             {"X-Uber-Signature": uber}),
            ("stuart, wrong bearer", "/v1/webhooks/stuart", STUART_IGNORED,
             {"Authorization": f"Bearer {stuart_wrong}"}),
            ("stuart, uber's secret as bearer", "/v1/webhooks/stuart", STUART_IGNORED,
             {"Authorization": f"Bearer {uber}"}),
            ("stuart, good", "/v1/webhooks/stuart", STUART_IGNORED,
             {"Authorization": f"Bearer {stuart}"}),
            ("stuart, good, bad body", "/v1/webhooks/stuart", b"{\"event\":",
             {"Authorization": f"Bearer {stuart}"}),
            ("unknown provider with the ingest key", "/v1/webhooks/nobody", STUART_IGNORED,
             {"Authorization": f"Bearer {ingest}"})):
        r = await areq("POST", path, body, dict(json_h, **hd))
        print(f"  {what}: {getattr(r, 'status', r)}")

    print("--- tokens")
    await asyncio.to_thread(env.post, upd, key=ingest)
    good = s.token("good k1", mint_hs256(claims(oid), k1, kid="k1"))
    good3 = s.token("good k3", mint_hs256(claims(oid), k3, kid="k3"))
    expired = s.token("expired", mint_hs256(claims(oid, exp=now - 3600), k1, kid="k1"))
    toks = {
        "good k1": good, "good k3": good3, "expired": expired,
        "not valid yet": s.token("nbf", mint_hs256(claims(oid, nbf=now + 3600), k1, kid="k1")),
        "another order": s.token("another order", mint_hs256(claims(other), k1, kid="k1")),
        "badly signed": s.token("badly signed", mint_hs256(claims(oid), random_secret(), kid="k1")),
        "unknown kid": s.token("unknown kid", mint_hs256(claims(oid), k1, kid="k9")),
        "no kid": s.token("no kid", mint_hs256(claims(oid), k1)),
        "tampered": s.token("tampered", tamper_payload(expired, exp=now + 3600)),
        "alg none": s.token("alg none", base64.urlsafe_b64encode(b'{"alg":"none","kid":"k1"}')
                            .decode().rstrip("=") + "." + good.split(".")[1] + "."),
        "over-long": s.add("an over-long token", "eyJ" + rnd("overlong-canary") * 200),
        "garbage": s.add("a garbage token", rnd("garbage-token")),
    }
    for what, tok in toks.items():
        w = await ws(f"/v1/track/{oid}?token={tok}")
        r = await areq("GET", f"/v1/orders/{oid}?token={tok}")
        code = getattr(w, "close_code", None) if not isinstance(w, str) else w
        print(f"  {what}: ws {code if code is not None else 'open'}, GET {getattr(r, 'status', r)}")
    await ws(f"/v1/track/{oid}?since=1-0&token={expired}")
    await ws(f"/v1/track/{oid}?token={good}&since=not-a-cursor")
    await ws(f"/v1/track/bad!id?token={good}")
    await ws(f"/v1/nope?token={good}")
    for path in (f"/healthz?token={good}", f"/v1/nothing?token={good}",
                 f"/v1/orders/bad!id?token={good}", f"/v1/orders/{oid}?token={good}&x=1"):
        await areq("GET", path)
    await areq("GET", f"/v1/orders/{oid}", headers={"Authorization": f"Bearer {good}"})
    await areq("POST", f"/v1/orders/{oid}?token={good}", b"{}", json_h)
    await asyncio.to_thread(h.raw_exchange, port,
                            f"BREW /v1/orders/{oid}?token={good} HTTP/1.1\r\nHost: x\r\n\r\n"
                            .encode(), 2)
    await asyncio.to_thread(h.raw_exchange, port,
                            f"GET /v1/track/{oid}?token={good} HTTP/1.1\r\nHost: x\r\n"
                            f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                            f"Sec-WebSocket-Version: 13\r\n\r\n".encode(), 2)
    print("  tokens on other paths, methods and headers: done")

    print("--- a token expiring while connected")
    short = s.token("expiring", mint_hs256(claims(oid, exp=int(time.time()) - 28), k1, kid="k1"))
    w = await ws(f"/v1/track/{oid}?token={short}", wait_close=False)
    if not isinstance(w, str):
        try:
            code, reason = await w.wait_closed(10)
            print(f"  closed {code} {reason!r}")
        except h.TestFailure as e:
            ck(False, f"the expiring watcher: {e}")

    print("--- reloads that fail")
    short_secret = s.add("a too-short HS256 secret in a key file", rnd("short", 6))  # 18 bytes
    write_atomic(ns["k1_file"], short_secret + "\n")
    await sighup(env, ck, "HS256 secret-file too short", want_ok=False)
    write_atomic(ns["k1_file"], k1 + "\n")
    bad_line = s.add("an invalid ingest key line (a space)", rnd("bad key") + " " + rnd("rest"))
    tiny = s.add("an ingest key too short", rnd("tiny", 4))  # 13 bytes
    new_ingest = s.add("a new ingest key", rnd("ingest-next"))
    write_atomic(env.key_file, f"{new_ingest}\n{bad_line}\n")
    await sighup(env, ck, "an ingest key with a space", want_ok=False)
    write_atomic(env.key_file, f"{new_ingest}\n{tiny}\n")
    await sighup(env, ck, "an ingest key too short", want_ok=False)
    write_atomic(env.key_file, f"{new_ingest}\n{ingest}\n")
    no_eq = s.add("a config line that is not `setting = value`", rnd("config-line-secret"))
    write_atomic(conf, config_text(ns, [no_eq]))
    await sighup(env, ck, "a config line without =", want_ok=False)
    misnamed = s.add("a secret under an unknown setting", rnd("misnamed-secret"))
    write_atomic(conf, config_text(ns, ["[trackgated]", f"ingest-key = {misnamed}"]))
    await sighup(env, ck, "a secret under an unknown setting name", want_ok=False)
    bad_wh = s.add("a webhook secret for an unknown provider", rnd("unknown-provider-secret"))
    write_atomic(conf, config_text(ns, ["[webhook.nobody]", f"secret = {bad_wh}"]))
    await sighup(env, ck, "a secret for an unknown provider", want_ok=False)
    write_atomic(conf, config_text(ns))
    await sighup(env, ck, "the good config again", want_ok=True)
    r = await asyncio.to_thread(env.post, upd, key=new_ingest)
    ck(r.status == 202, f"the new ingest key after the good reload: {r!r}")

    print("--- stop, and search the whole log")
    await h.stop_daemon(env, ck)
    with open(env.daemon.log, "rb") as f:
        log = f.read().decode("utf-8", "replace")
    print(f"  {len(log.splitlines())} log lines, {len(s.items)} secret strings")
    for leak in s.leaks(log):
        ck(False, f"the log holds {leak}")
    for canary in ("token=", "eyJ"):
        if canary in log:
            line = next(ln for ln in log.splitlines() if canary in ln)
            ck(False, f"the log holds {canary!r}: {line[:200]!r}")
    ck(" reload_failed" in log and " reload " in log, "the reload lines are missing from the log")

    print("--- --check-config and a start-up that fails")
    base = [env.args.trackgated, "--listen", "127.0.0.1:1", "--redis", "unix:///nonexistent",
            "--ingest-key-file", env.key_file, "--config", conf]
    r = await asyncio.to_thread(subprocess.run, base + ["--check-config"], capture_output=True,
                                timeout=30)
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    ck(r.returncode == 0, f"--check-config: status {r.returncode}: {out[-500:]}")
    for leak in s.leaks(out):
        ck(False, f"--check-config prints {leak}")
    write_atomic(ns["k1_file"], short_secret + "\n")
    try:
        r = await asyncio.to_thread(subprocess.run, base, capture_output=True, timeout=15)
        out = (r.stdout + r.stderr).decode("utf-8", "replace")
        ck(r.returncode != 0, f"a start with a too-short HS256 secret: status {r.returncode}")
    except subprocess.TimeoutExpired as e:
        out = ((e.stdout or b"") + (e.stderr or b"")).decode("utf-8", "replace")
        ck(False, "a start with a too-short HS256 secret did not fail (still running after 15 s)")
    for leak in s.leaks(out):
        ck(False, f"a failed start-up prints {leak}")
    print(f"  --check-config and the failed start-up: {len(out.splitlines())} lines checked")
    ck.done()


if __name__ == "__main__":
    h.main(test, start=False)
