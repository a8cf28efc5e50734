#!/usr/bin/python3
"""integration.tokens: tracking-link tokens (JWTs) on websockets and GET /v1/orders/{ID}.

trackgated runs with two token keys: k1 (HS256, a shared secret) and k2
(ES256, a P-256 public key).  Tokens are minted here by hand (HS256 with
hmac, ES256 with the openssl CLI, its DER signature turned into JOSE's
64-byte r||s) and with tools/trackgate-token.  For the websocket
(/v1/track/{ID}?token=) and for GET /v1/orders/{ID}?token=:

  - valid HS256 and ES256 tokens get the snapshot / 200 {order_id,state,cursor};
  - nbf and exp within the 30 s leeway are accepted;
  - refused with 4401 / 401: expired (beyond the leeway), not valid yet, signed
    with another key, unknown kid, no kid with two keys, alg "none" (with and
    without a kid), an HS256 token naming the ES256 key (signed with its PEM
    as the HMAC secret: the classic algorithm mix-up) and an ES256 token
    naming the HS256 key, a payload changed after signing, no exp, no
    order_id, garbage, no token at all;
  - refused with 4403 / 403: a valid token for another order;
  - every websocket refusal sends an error frame first and closes with a
    non-empty readable reason; every HTTP refusal is JSON {error, message};
  - the refusals are counted in /metrics (reason token / token_order);
  - trackgate-watch --token T connects, and without it is refused 4401.

Key rotation: a second trackgated with two HS256 keys k1 and k1b accepts
tokens of both kids at once (both watchers get the same update).  A third
with one key accepts a token without kid.

Expiry while connected: a watcher whose token has exp = now - 25 (inside the
leeway, so accepted) is closed with 4401 "...expired" some 5 s later, while
a watcher with a long token on the same order stays open and still receives
an update.

The helpers (mint_hs256, EcKey, ...) are imported by the other access-control
tests (reload, secrets_in_logs).
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

LEEWAY_S = 30


# --- minting ------------------------------------------------------------------------

def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jdumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def claims(order_id, ttl=3600, exp=None, nbf=None, **extra):
    """Claims for order_id: exp = now + ttl unless exp is given; None values are left out."""
    now = int(time.time())
    c = {"order_id": order_id, "iat": now, "exp": exp if exp is not None else now + ttl}
    if nbf is not None:
        c["nbf"] = nbf
    c.update(extra)
    return {k: v for k, v in c.items() if v is not None}


def header(alg, kid=None):
    hd = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        hd["kid"] = kid
    return hd


def mint_hs256(cl, secret, kid=None, hdr=None):
    """A compact JWS signed with HMAC-SHA256 under secret (bytes or str)."""
    if isinstance(secret, str):
        secret = secret.encode()
    signing_input = b64url(jdumps(hdr if hdr is not None else header("HS256", kid))) + "." + \
        b64url(jdumps(cl))
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


def der_ecdsa_to_jose(der, size=32):
    """ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } (DER) -> r || s, size bytes each."""
    def length(buf, i):
        n = buf[i]
        if n < 0x80:
            return n, i + 1
        k = n & 0x7F
        return int.from_bytes(buf[i + 1:i + 1 + k], "big"), i + 1 + k

    h.check(der[0] == 0x30, f"not a DER SEQUENCE: {der[:4].hex()}")
    _, i = length(der, 1)
    out = b""
    for _ in range(2):
        h.check(der[i] == 0x02, f"not a DER INTEGER at {i}: {der.hex()}")
        n, i = length(der, i + 1)
        v = der[i:i + n].lstrip(b"\0")
        h.check(len(v) <= size, f"integer of {len(v)} bytes in an ES256 signature")
        out += v.rjust(size, b"\0")
        i += n
    return out


class EcKey:
    """A P-256 key pair made with the openssl CLI: priv (PEM private key), pub (PEM public key)."""

    def __init__(self, directory, name):
        self.priv = os.path.join(directory, f"{name}.priv.pem")
        self.pub = os.path.join(directory, f"{name}.pub.pem")
        subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout",
                        "-out", self.priv], check=True, capture_output=True, timeout=30)
        subprocess.run(["openssl", "ec", "-in", self.priv, "-pubout", "-out", self.pub],
                       check=True, capture_output=True, timeout=30)
        with open(self.pub, "rb") as f:
            self.pub_pem = f.read()

    def sign(self, data):
        r = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.priv], input=data,
                           check=True, capture_output=True, timeout=30)
        return der_ecdsa_to_jose(r.stdout)

    def mint(self, cl, kid=None, hdr=None):
        signing_input = b64url(jdumps(hdr if hdr is not None else header("ES256", kid))) + "." + \
            b64url(jdumps(cl))
        return signing_input + "." + b64url(self.sign(signing_input.encode()))


def random_secret(nbytes=32):
    """A printable HS256 secret of 2 * nbytes hex characters."""
    return os.urandom(nbytes).hex()


def write_secret(path, text):
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    return path


def token_tool(args):
    """Path of build/tools/trackgate-token: the sibling of --watch's binary."""
    h.check(args.watch, "--watch PATH is needed to find trackgate-token beside it")
    return os.path.join(os.path.dirname(os.path.abspath(args.watch)), "trackgate-token")


def tool_mint(args, key_file, order_id, *opts):
    r = subprocess.run([token_tool(args), "--key-file", key_file, *opts, order_id],
                       capture_output=True, timeout=30)
    h.check(r.returncode == 0, f"trackgate-token {' '.join(opts)} {order_id}: status "
                               f"{r.returncode}: {r.stderr.decode(errors='replace')}")
    return r.stdout.decode().strip()


def tamper_payload(token, **changes):
    """The token with its claims changed but the original header and signature kept."""
    hd, payload, sig = token.split(".")
    cl = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    cl.update(changes)
    return f"{hd}.{b64url(jdumps(cl))}.{sig}"


# --- checking -----------------------------------------------------------------------

def readable(reason):
    return isinstance(reason, str) and reason.strip() != "" and reason.isprintable()


class Refusals:
    """Counts the refusals a test expects, to compare with /metrics."""

    def __init__(self):
        self.token = 0
        self.token_order = 0

    def count(self, code):
        if code in (4401, 401):
            self.token += 1
        elif code in (4403, 403):
            self.token_order += 1


async def ws_refused(port, ck, what, path, want_code, words=(), headers=None, origin=None,
                     refusals=None, error_frame=True):
    """Opens path; checks it is refused: an error frame first (when error_frame), no
    snapshot, then a close with want_code and a non-empty readable reason holding words."""
    w = h.Watcher(port, path)
    try:
        w.ws = await h.websockets.connect(w.url, open_timeout=5, close_timeout=5,
                                          ping_interval=None, max_queue=None,
                                          extra_headers=headers or {}, origin=origin)
    except Exception as e:  # an HTTP refusal of the upgrade itself
        ck(False, f"{what}: the upgrade failed ({type(e).__name__}: {e}); want an error "
                  f"frame and close {want_code}")
        return None, None
    w._task = asyncio.ensure_future(w._reader())
    try:
        code, reason = await w.wait_closed(10)
    except h.TestFailure as e:
        ck(False, f"{what}: {e}")
        await w.close()
        return None, None
    if refusals is not None:
        refusals.count(want_code)
    ok = ck(code == want_code, f"{what}: close code {code} {reason!r}, want {want_code}")
    ok &= ck(readable(reason), f"{what}: the close reason {reason!r} is not a readable text")
    for word in words:
        ok &= ck(word in (reason or "").lower(), f"{what}: the close reason {reason!r} does "
                                                 f"not say {word!r}")
    ok &= ck(not any(f.get("type") == "snapshot" for f in w.frames),
             f"{what}: a refused socket got a snapshot: {w.frames!r}")
    if error_frame:
        first = w.frames[0] if w.frames else {}
        ok &= ck(first.get("type") == "error" and isinstance(first.get("error"), str)
                 and readable(first.get("message")),
                 f"{what}: the first frame is not an error frame with a message: {w.frames!r}")
    if ok:
        print(f"  ok  {what}: {code} {reason!r}")
    return code, reason


async def ws_accepted(env, ck, what, order_id, token, cursor=None):
    """Opens /v1/track/order_id?token=token; checks the snapshot. Returns the watcher or None."""
    w = h.Watcher(env.port, f"/v1/track/{order_id}?token={token}")
    try:
        await w.connect()
        env.watchers.append(w)
        snap = await w.snapshot()
    except (h.TestFailure, OSError, h.websockets.exceptions.WebSocketException) as e:
        ck(False, f"{what}: want the snapshot: {e}")
        return None
    ok = ck(snap.get("order_id") == order_id, f"{what}: snapshot for {snap.get('order_id')!r}")
    if cursor is not None:
        ok &= ck(snap.get("cursor") == cursor, f"{what}: snapshot cursor {snap.get('cursor')!r}, "
                                                f"want {cursor!r}")
    if ok:
        print(f"  ok  {what}: snapshot")
    return w


def get_order(port, order_id, token):
    path = f"/v1/orders/{order_id}" + (f"?token={token}" if token is not None else "")
    return h.http_request(port, "GET", path)


async def http_accepted(port, ck, what, order_id, token, cursor=None):
    r = await asyncio.to_thread(get_order, port, order_id, token)
    ok = ck(r.status == 200 and isinstance(r.json, dict), f"{what}: GET /v1/orders -> {r!r}, "
                                                          f"want 200")
    if ok:
        ok &= ck(set(r.json) >= {"order_id", "state", "cursor"} and r.json["order_id"] == order_id,
                 f"{what}: GET /v1/orders body {r.json!r}")
        ok &= ck(r.headers.get("content-type", "").startswith("application/json"),
                 f"{what}: Content-Type {r.headers.get('content-type')!r}")
        if cursor is not None:
            ok &= ck(r.json.get("cursor") == cursor, f"{what}: cursor {r.json.get('cursor')!r}, "
                                                     f"want {cursor!r}")
    if ok:
        print(f"  ok  {what}: GET 200")
    return r


async def http_refused(port, ck, what, order_id, token, want_status, words=(), refusals=None):
    r = await asyncio.to_thread(get_order, port, order_id, token)
    if refusals is not None:
        refusals.count(want_status)
    want_error = {401: "unauthorized", 403: "forbidden"}.get(want_status)
    ok = ck(r.status == want_status, f"{what}: GET /v1/orders -> {r!r}, want {want_status}")
    ok &= ck(isinstance(r.json, dict) and (want_error is None or r.json.get("error") == want_error)
             and readable(r.json.get("message")),
             f"{what}: the {r.status} body is not JSON {{error: {want_error}, message}}: {r!r}")
    ok &= ck("state" not in (r.json or {}), f"{what}: a refusal carries the order's state: {r!r}")
    msg = ((r.json or {}).get("message") or "").lower()
    for word in words:
        ok &= ck(word in msg, f"{what}: the message {msg!r} does not say {word!r}")
    if ok:
        print(f"  ok  {what}: GET {r.status} {msg!r}")
    return r


def scrape_refused(port):
    r = h.http_request(port, "GET", "/metrics")
    h.check_eq(r.status, 200, "GET /metrics")
    out = {}
    for m in re.finditer(r'^trackgate_refused_total\{reason="(\w+)"\} (\d+)$', r.raw.decode(), re.M):
        out[m.group(1)] = int(m.group(2))
    return out


# --- the test -------------------------------------------------------------------------

async def test(env):
    ck = h.Checks()
    refusals = Refusals()
    pid = os.getpid()
    key_dir = env.log_dir
    k1_secret = random_secret()
    k1_file = write_secret(os.path.join(key_dir, "k1.secret"), k1_secret)
    es = EcKey(key_dir, "k2")
    env.daemon.extra_args += ["--token-key-file", f"k1=HS256:{k1_file}",
                              "--token-key-file", f"k2=ES256:{es.pub}"]
    env.start()
    port = env.port
    before = await asyncio.to_thread(scrape_refused, port)

    oid = f"tok-{pid}"
    other = f"tok-other-{pid}"
    cursor = await env.aapply(h.update(oid, h.now_ms(), lat=52.52, lng=13.40, status="picked_up"))
    now = int(time.time())

    print("--- accepted")
    good_hs = mint_hs256(claims(oid), k1_secret, kid="k1")
    good_es = es.mint(claims(oid), kid="k2")
    tool_hs = tool_mint(env.args, k1_file, oid, "--kid", "k1", "--ttl", "600")
    tool_es = tool_mint(env.args, es.priv, oid, "--alg", "ES256", "--kid", "k2", "--ttl", "600")
    link = tool_mint(env.args, k1_file, oid, "--kid", "k1", "--base-url", "https://track.example")
    m = re.fullmatch(rf"https://track\.example/t/{re.escape(oid)}\?token=([A-Za-z0-9_.-]+)", link)
    ck(m is not None, f"trackgate-token --base-url printed {link!r}")
    accepted = {
        "HS256 k1 (minted here)": good_hs,
        "ES256 k2 (minted here, openssl)": good_es,
        "HS256 k1 (trackgate-token)": tool_hs,
        "ES256 k2 (trackgate-token)": tool_es,
        # Minted when used (below): inside the leeway for 5 s only.
        "HS256 k1 exp 25 s ago (inside the leeway)": lambda: mint_hs256(
            claims(oid, exp=int(time.time()) - 25), k1_secret, kid="k1"),
        "ES256 k2 nbf 20 s ahead (inside the leeway)": es.mint(claims(oid, nbf=now + 20), kid="k2"),
        "HS256 k1 nbf in the past": mint_hs256(claims(oid, nbf=now - 60), k1_secret, kid="k1"),
    }
    if m:
        accepted["the token of trackgate-token --base-url's link"] = m.group(1)
    for what, tok in accepted.items():
        tok = tok() if callable(tok) else tok
        w = await ws_accepted(env, ck, f"ws {what}", oid, tok, cursor)
        if w is not None:
            await w.close()
        await http_accepted(port, ck, f"GET {what}", oid, tok, cursor)

    print("--- refused: 4401 / 401")
    wrong_secret = random_secret()
    expired = mint_hs256(claims(oid, exp=now - 3600), k1_secret, kid="k1")
    refused = [
        ("expired an hour ago (HS256)", expired, ["expired"]),
        ("expired 60 s ago, beyond the leeway (ES256)",
         es.mint(claims(oid, exp=now - 60), kid="k2"), ["expired"]),
        ("nbf an hour ahead (HS256)", mint_hs256(claims(oid, nbf=now + 3600), k1_secret, kid="k1"),
         ["not valid yet"]),
        ("nbf an hour ahead (ES256)", es.mint(claims(oid, nbf=now + 3600), kid="k2"),
         ["not valid yet"]),
        ("nbf an hour ahead (trackgate-token --nbf)",
         tool_mint(env.args, k1_file, oid, "--kid", "k1", "--nbf", str(now + 3600)),
         ["not valid yet"]),
        ("HS256 signed with another secret", mint_hs256(claims(oid), wrong_secret, kid="k1"),
         ["signature"]),
        ("ES256 signed with another EC key", EcKey(key_dir, "wrong").mint(claims(oid), kid="k2"),
         ["signature"]),
        ("unknown kid k9", mint_hs256(claims(oid), k1_secret, kid="k9"), ["unknown"]),
        ("no kid with two keys configured", mint_hs256(claims(oid), k1_secret), ["kid"]),
        ('alg "none", no kid, empty signature',
         f"{b64url(jdumps({'alg': 'none', 'typ': 'JWT'}))}.{b64url(jdumps(claims(oid)))}.", []),
        ('alg "none" with kid k1, empty signature',
         f"{b64url(jdumps({'alg': 'none', 'kid': 'k1'}))}.{b64url(jdumps(claims(oid)))}.",
         ["algorithm"]),
        ("HS256 naming the ES256 key k2, HMAC keyed with its public PEM",
         mint_hs256(claims(oid), es.pub_pem, kid="k2"), ["algorithm"]),
        ("ES256 naming the HS256 key k1", es.mint(claims(oid), kid="k1"), ["algorithm"]),
        ("expired token with exp pushed forward after signing",
         tamper_payload(expired, exp=now + 3600), ["signature"]),
        ("token for another order re-pointed at this one after signing",
         tamper_payload(mint_hs256(claims(other), k1_secret, kid="k1"), order_id=oid),
         ["signature"]),
        ("ES256 token with its claims changed after signing",
         tamper_payload(good_es, exp=now + 7200), ["signature"]),
        ("ES256 token with a DER (not JOSE) signature",
         good_es.rsplit(".", 1)[0] + "." + b64url(subprocess.run(
             ["openssl", "dgst", "-sha256", "-sign", es.priv],
             input=good_es.rsplit(".", 1)[0].encode(), capture_output=True, check=True).stdout),
         []),
        ("token without exp", mint_hs256({"order_id": oid, "iat": now}, k1_secret, kid="k1"),
         ["exp"]),
        ("token without order_id", mint_hs256({"exp": now + 600}, k1_secret, kid="k1"),
         ["order_id"]),
        ("garbage token", "not-a-jwt", []),
        ("header of an unsigned token only", b64url(jdumps(header("HS256", "k1"))), []),
        ("empty token", "", []),
        ("no token at all", None, ["token"]),
    ]
    for what, tok, words in refused:
        path = f"/v1/track/{oid}" + (f"?token={tok}" if tok is not None else "")
        await ws_refused(port, ck, f"ws {what}", path, 4401, words, refusals=refusals)
        await http_refused(port, ck, f"GET {what}", oid, tok, 401, words, refusals=refusals)
    # The token in another query position, and a cursor beside it, change nothing.
    await ws_refused(port, ck, "ws expired token after since=", f"/v1/track/{oid}?since={cursor}"
                     f"&token={expired}", 4401, ["expired"], refusals=refusals)

    print("--- refused: 4403 / 403 (a token for another order)")
    for what, tok in (("HS256 for another order", mint_hs256(claims(other), k1_secret, kid="k1")),
                      ("ES256 for another order", es.mint(claims(other), kid="k2")),
                      ("trackgate-token for another order",
                       tool_mint(env.args, k1_file, other, "--kid", "k1"))):
        await ws_refused(port, ck, f"ws {what}", f"/v1/track/{oid}?token={tok}", 4403,
                         refusals=refusals)
        await http_refused(port, ck, f"GET {what}", oid, tok, 403, refusals=refusals)
    # ... while the same token opens its own order.
    w = await ws_accepted(env, ck, "ws the other order's token on its order", other,
                          mint_hs256(claims(other), k1_secret, kid="k1"))
    if w is not None:
        await w.close()

    print("--- trackgate-watch --token")
    if env.args.watch:
        r = await asyncio.to_thread(
            subprocess.run, [env.args.watch, "--server", f"127.0.0.1:{port}", "--token", good_hs,
                             "--count", "1", "--timeout", "10", oid],
            capture_output=True, timeout=30)
        out = r.stdout.decode(errors="replace")
        ck(r.returncode == 0 and '"type":"snapshot"' in out,
           f"trackgate-watch --token: status {r.returncode}, stdout {out[:200]!r}, "
           f"stderr {r.stderr.decode(errors='replace')[:300]!r}")
        # No --count: the refusal's error frame would count as a frame (and exit 0).
        r = await asyncio.to_thread(
            subprocess.run, [env.args.watch, "--server", f"127.0.0.1:{port}",
                             "--timeout", "10", oid], capture_output=True, timeout=30)
        refusals.count(4401)
        err = r.stderr.decode(errors="replace")
        ck(r.returncode == 1 and "4401" in err,
           f"trackgate-watch without --token: status {r.returncode}, stderr {err[:300]!r}")

    print("--- /metrics")
    after = await asyncio.to_thread(scrape_refused, port)
    for reason, want in (("token", refusals.token), ("token_order", refusals.token_order)):
        got = after.get(reason, 0) - before.get(reason, 0)
        ck(got == want, f'trackgate_refused_total{{reason="{reason}"}} moved by {got}, want {want}')

    print("--- expiry while connected")
    xo = f"tok-exp-{pid}"
    await env.aapply(h.update(xo, h.now_ms(), lat=1.0, lng=2.0))
    long_w = await ws_accepted(env, ck, "ws long token", xo,
                               mint_hs256(claims(xo, ttl=3600), k1_secret, kid="k1"))
    exp = int(time.time()) - 25
    short_w = await ws_accepted(env, ck, "ws exp = now - 25 (accepted inside the leeway)", xo,
                                es.mint(claims(xo, exp=exp), kid="k2"))
    if short_w is not None:
        try:
            code, reason = await short_w.wait_closed(max(1.0, exp + LEEWAY_S - time.time()) + 7)
            closed_at = time.time()
            print(f"  the short token's watcher closed {closed_at - exp - LEEWAY_S:.1f} s after "
                  f"exp + {LEEWAY_S} s: {code} {reason!r}")
            ck(code == 4401 and "expired" in (reason or ""),
               f"expiring token: closed {code} {reason!r}, want 4401 ...expired")
            # Not at once: the daemon closes once exp + leeway <= its time() (the same
            # wall clock as ours), so never before exp + 30 s.
            ck(closed_at >= exp + LEEWAY_S, f"expiring token: closed {exp + LEEWAY_S - closed_at:.1f}"
                                            f" s before exp + {LEEWAY_S} s")
        except h.TestFailure as e:
            ck(False, f"expiring token: not closed within 7 s of exp + {LEEWAY_S} s: {e}")
    if long_w is not None:
        ck(not long_w.closed.is_set(), f"the long token's watcher was closed too: "
                                       f"{long_w.close_code} {long_w.close_reason!r}")
        c = await env.aapply(h.update(xo, h.now_ms(), lat=1.5, lng=2.5))
        try:
            f = await long_w.update()
            ck(f.get("cursor") == c, f"the long token's watcher got {f!r}, want cursor {c}")
        except h.TestFailure as e:
            ck(False, f"the long token's watcher after the other's expiry: {e}")

    print("--- key rotation: k1 and k1b at once (second trackgated)")
    rot_dir = os.path.join(env.log_dir, "rotation")
    os.makedirs(rot_dir, exist_ok=True)
    k1b_secret = random_secret()
    k1b_file = write_secret(os.path.join(rot_dir, "k1b.secret"), k1b_secret)
    rot = h.Daemon(env.args.trackgated, env.redis.sock, env.key_file, rot_dir,
                   ["--token-key-file", f"k1=HS256:{k1_file}",
                    "--token-key-file", f"k1b=HS256:{k1b_file}"])
    rot.start()  # from the main thread: PR_SET_PDEATHSIG follows the thread that spawned
    try:
        ro = f"tok-rot-{pid}"
        rc = await env.aapply(h.update(ro, h.now_ms(), lat=3.0, lng=4.0))
        renv = RotEnv(rot, env)
        old_w = await ws_accepted(renv, ck, "rotation: old kid k1", ro,
                                  mint_hs256(claims(ro), k1_secret, kid="k1"), rc)
        new_w = await ws_accepted(renv, ck, "rotation: new kid k1b", ro,
                                  mint_hs256(claims(ro), k1b_secret, kid="k1b"), rc)
        await http_accepted(rot.port, ck, "rotation: GET old kid k1", ro,
                            mint_hs256(claims(ro), k1_secret, kid="k1"), rc)
        await http_accepted(rot.port, ck, "rotation: GET new kid k1b", ro,
                            mint_hs256(claims(ro), k1b_secret, kid="k1b"), rc)
        await ws_refused(rot.port, ck, "rotation: k1b's kid with k1's secret",
                         f"/v1/track/{ro}?token={mint_hs256(claims(ro), k1_secret, kid='k1b')}",
                         4401, ["signature"])
        await ws_refused(rot.port, ck, "rotation: no kid with two keys",
                         f"/v1/track/{ro}?token={mint_hs256(claims(ro), k1b_secret)}", 4401)
        c2 = await env.aapply(h.update(ro, h.now_ms(), lat=3.5, lng=4.5))
        for what, w in (("k1", old_w), ("k1b", new_w)):
            if w is None:
                continue
            try:
                f = await w.update()
                ck(f.get("cursor") == c2, f"rotation: the {what} watcher got {f!r}")
            except h.TestFailure as e:
                ck(False, f"rotation: the {what} watcher: {e}")
        for w in (old_w, new_w):
            if w is not None:
                await w.close()
    finally:
        try:
            await asyncio.to_thread(rot.terminate)
        except h.TestFailure as e:
            ck(False, f"rotation trackgated: {e}\n{h.tail(rot.log, 30)}")

    print("--- one key: a token without kid is accepted (third trackgated)")
    one_dir = os.path.join(env.log_dir, "one-key")
    os.makedirs(one_dir, exist_ok=True)
    one = h.Daemon(env.args.trackgated, env.redis.sock, env.key_file, one_dir,
                   ["--token-key-file", f"k1=HS256:{k1_file}"])
    one.start()
    try:
        await http_accepted(one.port, ck, "one key: GET without kid", oid,
                            mint_hs256(claims(oid), k1_secret), cursor)
        await http_accepted(one.port, ck, "one key: GET with kid k1", oid,
                            mint_hs256(claims(oid), k1_secret, kid="k1"), cursor)
        await http_refused(one.port, ck, "one key: GET with kid k2", oid,
                           mint_hs256(claims(oid), k1_secret, kid="k2"), 401, ["unknown"])
        w = await ws_accepted(RotEnv(one, env), ck, "one key: ws without kid", oid,
                              mint_hs256(claims(oid), k1_secret), cursor)
        if w is not None:
            await w.close()
    finally:
        try:
            await asyncio.to_thread(one.terminate)
        except h.TestFailure as e:
            ck(False, f"one-key trackgated: {e}\n{h.tail(one.log, 30)}")

    env.assert_alive()
    h.check_eq(env.http("GET", "/healthz").status, 200, "/healthz at the end")
    ck.done()


class RotEnv:
    """What ws_accepted needs of an Env, for a second daemon: its port and a watcher list."""

    def __init__(self, daemon, env):
        self.port = daemon.port
        self.watchers = env.watchers


if __name__ == "__main__":
    h.main(test, start=False)
