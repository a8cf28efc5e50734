#!/usr/bin/python3
"""integration.jwt_claims: exp, nbf and iat must be JSON numbers (RFC 7519 NumericDate).

Issue 14 item 5: a token whose nbf (or exp, iat) was a string, a boolean,
null, an array or an object was accepted (libjwt 1.10 reads such a claim as
0, and a 0 nbf or iat is "absent"), so a tracking link meant to open only
later, minted by a backend that wrote "nbf": "1893456000", opened at once.
trackgated runs with an HS256 key k1 and an ES256 key k2.  Tokens are minted
with PyJWT (Debian's python3-jwt, an outside JWT library: it signs whatever
claims it is given) and, for claims written as raw JSON text (1.9e9 in
exponent form), by hand (base64url + HMAC, as test_tokens.py does).

  - refused, websocket close 4401 (after an error frame) and GET
    /v1/orders/{ID} 401 {"error":"unauthorized"}: each of exp, nbf and iat
    as a string of digits, "", true, false, null, {}, [] (nbf also in an
    ES256 token).  The GET message names the claim and says "not a number";
    the websocket reason does too once ws/session.c's static reason list has the
    sentences, and is "the token is not valid" until then (both are accepted
    here, and the test prints which it saw);
  - accepted (snapshot / 200): fractional NumericDates: exp = 1.9e9 + 0.5
    (the issue's example), exp now + 3600.5 with nbf now - 60.25 and iat
    now - 0.75, and "exp":1.9e9 as raw JSON;
  - a fraction does not stretch the rules: nbf = now + 3600.5 is "not valid
    yet", exp = now - 3600.5 "expired";
  - every refusal is counted in /metrics (reason token).
"""
import asyncio
import hashlib
import hmac
import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import test_tokens as tt  # noqa: E402

try:
    import jwt as pyjwt  # Debian's python3-jwt (PyJWT)
except ImportError:  # pragma: no cover - reported by the test
    pyjwt = None

# What the websocket close reason may be until ws/session.c lists the new sentences.
GENERIC_REASON = "the token is not valid"
NOT_NUMBERS = ('"{n}"', '""', "true", "false", "null", "{}", "[]")


def mint_raw_hs256(claims_json, secret, kid):
    """A compact JWS over claims_json exactly as given (raw JSON text), HMAC-SHA256."""
    signing_input = tt.b64url(tt.jdumps(tt.header("HS256", kid))) + "." + tt.b64url(claims_json)
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + tt.b64url(sig)


def py_hs256(cl, secret, kid):
    return pyjwt.encode(cl, secret, algorithm="HS256", headers={"kid": kid})


async def ws_refused(env, ck, what, path, want_code, words=(), refusals=None):
    """tt.ws_refused, but a socket that gets a snapshot (the bug: the token was accepted)
    fails at once instead of after tt.ws_refused's 10 s wait for a close."""
    w = h.Watcher(env.port, path)
    try:
        await w.connect()
    except (OSError, h.websockets.exceptions.WebSocketException) as e:
        ck(False, f"{what}: the upgrade failed ({type(e).__name__}: {e})")
        return None, None
    env.watchers.append(w)
    try:
        first = await w.next(5, "the error frame")
    except h.TestFailure:
        first = None  # closed without a frame, or nothing in 5 s: tt.ws_refused says which
    if first is not None and first.get("type") == "snapshot":
        ck(False, f"{what}: accepted (a snapshot), want close {want_code}")
        await w.close()
        return None, None
    # The server closes after its error frame: wait for that close (a close of our own
    # could overtake it and be what the socket reports).
    try:
        code, reason = await w.wait_closed(10)
    except h.TestFailure as e:
        ck(False, f"{what}: {e}")
        await w.close()
        return None, None
    if refusals is not None:
        refusals.count(want_code)
    ok = ck(code == want_code, f"{what}: close code {code} {reason!r}, want {want_code}")
    ok &= ck(tt.readable(reason), f"{what}: the close reason {reason!r} is not readable")
    for word in words:
        ok &= ck(word in (reason or "").lower(), f"{what}: close reason {reason!r} does not say "
                                                 f"{word!r}")
    ok &= ck(first is not None and first.get("type") == "error"
             and tt.readable(first.get("message")),
             f"{what}: the first frame is not an error frame with a message: {w.frames!r}")
    if ok:
        print(f"  ok  {what}: {code} {reason!r}")
    return code, reason


async def refused_both(env, ck, what, oid, tok, claim, refusals):
    """4401 on the websocket, 401 on GET; the reasons say why (see the docstring)."""
    code, reason = await ws_refused(env, ck, f"ws {what}", f"/v1/track/{oid}?token={tok}", 4401,
                                    refusals=refusals)
    if code == 4401:
        specific = claim in (reason or "") and "not a number" in (reason or "")
        ck(specific or reason == GENERIC_REASON,
           f"ws {what}: close reason {reason!r}: want one naming {claim} and 'not a number' "
           f"(or {GENERIC_REASON!r} until ws/session.c lists the sentence)")
        if reason == GENERIC_REASON:
            print(f"  note  ws {what}: the generic reason (server_static_reason lacks the "
                  f"sentence)")
    await tt.http_refused(env.port, ck, f"GET {what}", oid, tok, 401, [claim, "not a number"],
                          refusals=refusals)


async def test(env):
    ck = h.Checks()
    h.check(pyjwt is not None, "/usr/bin/python3 cannot import jwt (apt install python3-jwt)")
    print(f"PyJWT {pyjwt.__version__}")
    refusals = tt.Refusals()
    secret = tt.random_secret()
    k1_file = tt.write_secret(os.path.join(env.log_dir, "k1.secret"), secret)
    es = tt.EcKey(env.log_dir, "k2")
    env.daemon.extra_args += ["--token-key-file", f"k1=HS256:{k1_file}",
                              "--token-key-file", f"k2=ES256:{es.pub}"]
    env.start()
    before = await asyncio.to_thread(tt.scrape_refused, env.port)
    oid = f"jwtc-{os.getpid()}"
    cursor = await env.aapply(h.update(oid, h.now_ms(), lat=52.52, lng=13.40, status="picked_up"))
    now = int(time.time())

    print("--- refused: a NumericDate that is not a number")
    for claim in ("exp", "nbf", "iat"):
        for raw in NOT_NUMBERS:
            # A string holding a plausible date: an hour ahead for nbf (the link must not open
            # yet), an hour ahead for exp, now for iat.
            raw = raw.replace("{n}", str(now + 3600 if claim != "iat" else now))
            exp = f"{now + 3600}" if claim != "exp" else raw
            extra = f',"{claim}":{raw}' if claim != "exp" else ""
            body = f'{{"order_id":"{oid}","exp":{exp}{extra}}}'.encode()
            # PyJWT signs any JSON value it is given; the claims go through json, so parse
            # them back into Python values for it.
            cl = json.loads(body)
            tok = py_hs256(cl, secret, "k1")
            await refused_both(env, ck, f"{claim} = {raw} (PyJWT, HS256)", oid, tok, claim,
                               refusals)
    await refused_both(env, ck, 'nbf = "<an hour ahead>" (ES256)', oid,
                       es.mint(tt.claims(oid, nbf=str(now + 3600)), kid="k2"), "nbf", refusals)

    print("--- accepted: fractional NumericDates")
    accepted = {
        "exp = 1.9e9 + 0.5 (PyJWT)": py_hs256({"order_id": oid, "exp": 1.9e9 + 0.5}, secret, "k1"),
        "exp now + 3600.5, nbf now - 60.25, iat now - 0.75 (PyJWT)": py_hs256(
            {"order_id": oid, "exp": now + 3600.5, "nbf": now - 60.25, "iat": now - 0.75},
            secret, "k1"),
        'raw "exp":1.9e9 (by hand)': mint_raw_hs256(
            f'{{"order_id":"{oid}","exp":1.9e9,"iat":{now}.5}}'.encode(), secret, "k1"),
        "ES256 exp now + 600.5": es.mint({"order_id": oid, "exp": now + 600.5}, kid="k2"),
    }
    for what, tok in accepted.items():
        w = await tt.ws_accepted(env, ck, f"ws {what}", oid, tok, cursor)
        if w is not None:
            await w.close()
        await tt.http_accepted(env.port, ck, f"GET {what}", oid, tok, cursor)

    print("--- a fraction does not stretch nbf or exp")
    for what, tok, words in (
            ("nbf now + 3600.5", py_hs256({"order_id": oid, "exp": now + 7200, "nbf": now + 3600.5},
                                          secret, "k1"), ["not valid yet"]),
            ("exp now - 3600.5", py_hs256({"order_id": oid, "exp": now - 3600.5}, secret, "k1"),
             ["expired"])):
        await ws_refused(env, ck, f"ws {what}", f"/v1/track/{oid}?token={tok}", 4401, words,
                         refusals=refusals)
        await tt.http_refused(env.port, ck, f"GET {what}", oid, tok, 401, words,
                              refusals=refusals)

    print("--- /metrics")
    after = await asyncio.to_thread(tt.scrape_refused, env.port)
    got = after.get("token", 0) - before.get("token", 0)
    ck(got == refusals.token, f'trackgate_refused_total{{reason="token"}} moved by {got}, '
                              f'want {refusals.token}')
    env.assert_alive()
    ck.done()


if __name__ == "__main__":
    h.main(test, start=False)
