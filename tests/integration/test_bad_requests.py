#!/usr/bin/python3
"""integration.bad_requests: every refusal has its status and a JSON error body.

Each case checks the status, Content-Type application/json and a body
{"error": CODE, "message": TEXT}; that the daemon is still alive after it;
and at the end that it still serves (/healthz 200, an update is accepted and
delivered).  All cases run even when one fails, and all failures are listed.
"""
import json
import os
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

KEY = h.INGEST_KEY
JSON_CT = "application/json"


def auth(key=KEY, ct=JSON_CT):
    hd = {"Authorization": f"Bearer {key}"}
    if ct is not None:
        hd["Content-Type"] = ct
    return hd


def parse_raw_response(raw):
    """(status, headers, parsed JSON or None) of one raw HTTP/1.x response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return None, {}, None
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", len(body)))
    try:
        doc = json.loads(body[:n])
    except ValueError:
        doc = None
    return status, headers, doc


async def test(env):
    ok = h.Checks()
    oid = f"bad-{os.getpid()}"
    base = h.now_ms() - 60_000
    port = env.port

    def expect(label, r, status, error=None, message_has=None):
        """r: a harness.Response (or a (status, headers, json) tuple from a raw exchange)."""
        if isinstance(r, tuple):
            st, hd, doc = r
        else:
            st, hd, doc = r.status, r.headers, r.json
        ok(st == status, f"{label}: status {st}, want {status} (body {doc!r})")
        ok((hd.get("content-type") or "").startswith(JSON_CT),
           f"{label}: Content-Type {hd.get('content-type')!r}, want {JSON_CT}")
        good = isinstance(doc, dict) and isinstance(doc.get("error"), str) and doc["error"] \
            and isinstance(doc.get("message"), str) and doc["message"]
        ok(good, f"{label}: body is not {{\"error\":..,\"message\":..}}: {doc!r}")
        if good and error:
            ok(doc["error"] == error, f"{label}: error {doc['error']!r}, want {error!r}")
        if good and message_has:
            ok(message_has in doc["message"],
               f"{label}: message {doc['message']!r} does not mention {message_has!r}")
        ok(env.daemon.alive(), f"{label}: trackgated died")

    def post(body, headers):
        return env.http("POST", "/v1/updates", body, headers)

    valid = h.update(oid, base, lat=10.0, lng=20.0, status="created")

    # -- POST /v1/updates refusals -------------------------------------------------
    expect("malformed JSON", post(b'{"v":1,"order_id":', auth()), 400, "malformed_json")
    expect("not JSON at all", post(b"hello", auth()), 400, "malformed_json")
    expect("missing bearer", post(valid, {"Content-Type": JSON_CT}), 401, "unauthorized")
    expect("wrong bearer", post(valid, auth("x" * 32)), 401, "unauthorized")
    expect("truncated key", post(valid, auth(KEY[:-1])), 401, "unauthorized")
    expect("key plus a suffix", post(valid, auth(KEY + "x")), 401, "unauthorized")
    expect("Basic scheme", post(valid, {"Content-Type": JSON_CT, "Authorization": f"Basic {KEY}"}),
           401, "unauthorized")
    r = env.http("GET", "/v1/updates")
    expect("GET /v1/updates", r, 405, "method_not_allowed")
    ok(r.headers.get("allow") == "POST", f"405 without Allow: POST: {r.headers!r}")
    expect("wrong Content-Type", post(valid, auth(ct="text/plain")), 415, "unsupported_media_type")
    expect("no Content-Type", post(valid, auth(ct=None)), 415, "unsupported_media_type")
    expect("application/jsonx", post(valid, auth(ct="application/jsonx")), 415,
           "unsupported_media_type")
    expect("empty array", post(b"[]", auth()), 400, "empty_batch")
    expect("empty body", post(b"", auth()), 400)
    expect("JSON scalar", post(b"42", auth()), 400, "invalid_update")
    many = [h.update(oid, base + i, status="created") for i in range(101)]
    expect("array of 101", post(many, auth()), 413, "batch_too_large")
    ok(len(json.dumps(many)) < 65536, "the 101-item array must be under the body limit")

    # Over the 64 KiB body limit: refused from the headers alone...
    raw = h.raw_exchange(port, (
        "POST /v1/updates HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {KEY}\r\nContent-Length: 70000\r\n\r\n").encode(), timeout=3)
    expect("Content-Length 70000 (headers only)", parse_raw_response(raw), 413, "body_too_large")
    # ... and with the whole body sent (the refusal may race our upload: retry a reset).
    big = [h.update(oid, base + i, status="created", event_id=f"{i:0>120}") for i in range(500)]
    for attempt in range(3):
        try:
            r = post(big, auth())
            break
        except (ConnectionResetError, BrokenPipeError) as e:
            r = e
    ok(not isinstance(r, Exception), f"a 70 KB body: the connection was reset 3 times ({r!r})")
    if not isinstance(r, Exception):
        expect("a 70 KB body", r, 413, "body_too_large")

    # No Content-Length (also chunked uploads): 411.
    for label, extra in (("no Content-Length", b""),
                         ("chunked", b"Transfer-Encoding: chunked\r\n")):
        raw = h.raw_exchange(port, b"POST /v1/updates HTTP/1.1\r\nHost: t\r\n"
                             b"Content-Type: application/json\r\nAuthorization: Bearer " +
                             KEY.encode() + b"\r\n" + extra + b"Connection: close\r\n\r\n" +
                             (b"2\r\n{}\r\n0\r\n\r\n" if extra else b""), timeout=3)
        expect(label, parse_raw_response(raw), 411, "length_required")

    # A single invalid update: 400 naming the field.
    for label, u, field in [
        ("lat out of range", dict(valid, location={"lat": 100.0, "lng": 0.0}), "location.lat"),
        ("missing ts", {k: v for k, v in valid.items() if k != "ts"}, "ts"),
        ("unknown status", dict(valid, status="teleported"), "status"),
        ("v 2", dict(valid, v=2), "v"),
        ("ts a string", dict(valid, ts="soon"), "ts"),
        ("bad order_id", dict(valid, order_id="no spaces"), "order_id"),
        ("no location/status/eta", {"v": 1, "order_id": oid, "provider": "itest", "ts": base},
         "location"),
    ]:
        expect(f"invalid update ({label})", post(u, auth()), 400, "invalid_update", field)

    # A batch mixing valid and invalid items: 202 with a result per item.
    mixed = [h.update(oid, base + 10, lat=10.1, lng=20.1),
             dict(valid, location={"lat": 0.0, "lng": 200.0}),
             "not an object",
             h.update(oid, base + 20, status="picked_up")]
    r = post(mixed, auth())
    ok(r.status == 202, f"mixed batch: status {r.status}, want 202: {r!r}")
    res = (r.json or {}).get("results") or []
    ok(len(res) == 4, f"mixed batch: {len(res)} results, want 4: {r!r}")
    if len(res) == 4:
        ok([x.get("index") for x in res] == [0, 1, 2, 3], f"mixed batch indexes: {res!r}")
        ok([x.get("result") for x in res] == ["applied", "invalid", "invalid", "applied"],
           f"mixed batch results: {res!r}")
        ok(res[1].get("field") == "location.lng" and res[1].get("message"),
           f"mixed batch: item 1 must name location.lng: {res[1]!r}")
        ok(res[1].get("order_id") == oid, f"mixed batch: item 1 keeps its order_id: {res[1]!r}")
        ok(isinstance(res[2].get("message"), str) and "field" in res[2],
           f"mixed batch: item 2 (a string) must say why: {res[2]!r}")
        ok(all(isinstance(res[i].get("cursor"), str) for i in (0, 3)) and
           h.parse_cursor(res[0]["cursor"]) < h.parse_cursor(res[3]["cursor"]),
           f"mixed batch: applied items carry increasing cursors: {res!r}")
        ok(all("cursor" not in res[i] for i in (1, 2)), f"invalid items carry no cursor: {res!r}")
        ok((r.json.get("applied"), r.json.get("invalid")) == (2, 2), f"mixed batch counts: {r.json!r}")

    # -- other paths -----------------------------------------------------------------
    expect("unknown path", env.http("GET", "/nope"), 404, "not_found")
    expect("unknown path under /v1", env.http("POST", "/v1/update", valid, auth()), 404, "not_found")
    expect("GET /v1/track/x without upgrade", env.http("GET", "/v1/track/x"), 426, "upgrade_required")
    expect("invalid order id over HTTP (!)", env.http("GET", "/v1/track/bad!id"), 400,
           "invalid_order_id")
    expect("invalid order id over HTTP (129 chars)", env.http("GET", "/v1/track/" + "a" * 129), 400,
           "invalid_order_id")
    expect("empty order id over HTTP", env.http("GET", "/v1/track/"), 400, "invalid_order_id")
    r = env.http("POST", "/healthz", b"", {"Content-Type": JSON_CT})
    expect("POST /healthz", r, 405, "method_not_allowed")
    # HEAD gets GET's status and headers and no body (it used to be a 405 with a body,
    # which a keep-alive client would read as the start of its next response).
    raw = h.raw_exchange(port, b"HEAD /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                         timeout=2.0)
    head, _, rest = raw.partition(b"\r\n\r\n")
    ok(head.startswith(b"HTTP/1.1 200"), f"HEAD /healthz: {head[:40]!r}, want 200")
    ok(rest == b"", f"HEAD /healthz carried a body: {rest[:80]!r}")

    # A GET or HEAD with a body: 400 at the head, and the connection closes (lws 4.1 spun
    # forever over input behind a body it was told to skip: integration.http_fuzz).
    for method in (b"GET", b"HEAD"):
        raw = h.raw_exchange(port, method + b" /healthz HTTP/1.1\r\nHost: t\r\n"
                             b"Content-Length: 2\r\n\r\n{}GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
                             timeout=3.0)
        head, _, rest = raw.partition(b"\r\n\r\n")
        ok(head.startswith(b"HTTP/1.1 400") and b"connection: close" in head.lower(),
           f"{method.decode()} /healthz with a body: {head[:120]!r}, want 400 with Connection: close")
        ok(b"HTTP/1.1" not in rest, f"{method.decode()} with a body: a second answer {rest[:80]!r}")
    raw = h.raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
                         b"Connection: close\r\n\r\n{}", timeout=3.0)
    ok(b'"body_not_allowed"' in raw, f"GET with a body: {raw[:200]!r}, want body_not_allowed")
    # A POST answered before its body (here a 405) also closes: its body is never read.
    raw = h.raw_exchange(port, b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}"
                         b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", timeout=3.0)
    head, _, rest = raw.partition(b"\r\n\r\n")
    ok(head.startswith(b"HTTP/1.1 405") and b"connection: close" in head.lower(),
       f"POST /healthz with a body: {head[:120]!r}, want 405 with Connection: close")

    # -- request lines in the log, never a query string ------------------------------
    env.http("GET", "/healthz?token=query-secret-1234")
    log = h.tail(env.daemon.log, 400)
    ok("http method=GET path=/healthz status=200 client=127.0.0.1" in log,
       "no request line for GET /healthz in the log")
    ok("query-secret-1234" not in log and "token=" not in log,
       "a query string reached the log")

    # -- the listening socket is bound to the configured address only ------------------
    # (lws 4.1.6 bound 127.0.0.1 as a wildcard IPv6 socket, reachable on every address)
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.settimeout(2)
    try:
        probe.connect(("127.0.0.2", port))
        ok(False, f"127.0.0.2:{port} accepted a connection: the daemon listens beyond 127.0.0.1")
    except ConnectionRefusedError:
        pass
    finally:
        probe.close()

    # -- websockets ------------------------------------------------------------------
    for path, code, error in [("/v1/track/bad!id", 4400, "invalid_order_id"),
                              ("/v1/track/" + "b" * 129, 4400, "invalid_order_id"),
                              ("/v1/track/", 4400, "invalid_order_id"),
                              ("/nope", 4404, "not_found"),
                              ("/v1/trackx/abc", 4404, "not_found")]:
        w = h.Watcher(port, path)
        try:
            await w.connect()
            got, reason = await w.wait_closed()
            ok(got == code, f"websocket {path[:40]}: close code {got} ({reason!r}), want {code}")
            ok(bool(reason), f"websocket {path[:40]}: the close has no readable reason")
            ok(len(w.frames) == 1 and w.frames[0].get("type") == "error" and
               w.frames[0].get("error") == error and w.frames[0].get("message"),
               f"websocket {path[:40]}: want one error frame {error!r} first: {w.frames!r}")
        except Exception as e:
            ok(False, f"websocket {path[:40]}: {e!r}")
        ok(env.daemon.alive(), f"websocket {path[:40]}: trackgated died")

    # Clients may send small messages (ignored; a token refresh is the only one read);
    # one over 4 KiB closes with 1009.
    w = await env.watch(oid)
    await w.ws.send("hello")
    await w.ws.send("x" * 4000)
    c = await env.aapply(h.update(oid, base + 25, lat=10.5, lng=20.5))
    f = await w.update()
    ok(f.get("cursor") == c, f"a watcher that sent small messages still gets updates: {f!r}")
    await w.ws.send("y" * 5000)
    code, reason = await w.wait_closed()
    ok(code == 1009 and reason, f"a 5000-byte client message: close {code} {reason!r}, want 1009")

    # A query string is not part of the order id (tokens and cursors will go there).
    w = await env.watch(oid, path=f"/v1/track/{oid}?token=abc&since=1-0")
    ok(w.frames[0].get("order_id") == oid, f"websocket with a query string: {w.frames[0]!r}")
    await w.close()

    # The longest valid order id (128 characters) is accepted.
    long_id = ("A-z.0_~" * 19)[:128]
    w = await env.watch(long_id)
    ok(w.frames[0].get("order_id") == long_id, f"128-char order id snapshot: {w.frames[0]!r}")
    c = await env.aapply(h.update(long_id, base, status="created"))
    f = await w.update()
    ok(f.get("cursor") == c, f"128-char order id update: {f!r}")
    r = env.http("GET", f"/v1/track/{long_id}")
    ok(r.status == 426, f"GET /v1/track/<128 chars> without upgrade: {r!r}")

    # -- raw TCP abuse ---------------------------------------------------------------
    # A request that stays incomplete must not block anyone else.
    hang_hdr = socket.create_connection(("127.0.0.1", port))
    hang_hdr.sendall(b"POST /v1/updates HTTP/1.1\r\nHost: t\r\nContent-Ty")
    hang_body = socket.create_connection(("127.0.0.1", port))
    hang_body.sendall((f"POST /v1/updates HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                       f"Authorization: Bearer {KEY}\r\nContent-Length: 500\r\n\r\n"
                       '{"v":1,"order_id":"').encode())
    t0 = time.monotonic()
    r = env.http("GET", "/healthz", timeout=5)

    def still_hanging(s):
        s.setblocking(False)
        try:
            s.recv(1)  # an answer or EOF: not hanging any more
            return False
        except BlockingIOError:
            return True
        except OSError:
            return False
    # Answered while both still hang (the default http-timeout, 10 s, closes them later):
    # it did not wait for them, however slow this machine is.
    hanging = [still_hanging(s) for s in (hang_hdr, hang_body)]
    ok(r.status == 200 and hanging == [True, True],
       f"/healthz while two requests hang half-sent: {r!r} after {time.monotonic() - t0:.2f} s; "
       f"the half-sent requests still open (header, body): {hanging}")
    hang_hdr.close()
    hang_body.close()  # the body never completes

    for label, data in [
        ("garbage bytes", b"\x00\xff\xfe garbage \x01\x02\r\n\r\n"),
        ("random binary", bytes(range(256)) * 8),
        ("a bare newline flood", b"\r\n" * 2000),
        ("a truncated request line", b"GET /heal"),
        ("a truncated header block", b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: b"),
        ("a truncated body", (f"POST /v1/updates HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
                              f"\r\nAuthorization: Bearer {KEY}\r\nContent-Length: 400\r\n\r\n"
                              '{"v":1,"order_id":"x"').encode()),
        ("a 10 KB header", b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 10000 + b"\r\n\r\n"),
        ("an unknown method", b"BREW /healthz HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("a bad Content-Length", (f"POST /v1/updates HTTP/1.1\r\nHost: t\r\nContent-Type: "
                                  f"application/json\r\nAuthorization: Bearer {KEY}\r\n"
                                  f"Content-Length: -5\r\n\r\n").encode()),
        ("a websocket upgrade with a bad key", b"GET /v1/track/abc HTTP/1.1\r\nHost: t\r\n"
         b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
         b"Sec-WebSocket-Key: nope\r\n\r\n"),
    ]:
        try:
            # shut_write: the client sends nothing more; the server may answer or just close.
            h.raw_exchange(port, data, timeout=0.5, shut_write=True)
        except OSError:
            pass
        ok(env.daemon.alive(), f"{label}: trackgated died")
        try:
            r = env.http("GET", "/healthz", timeout=3)
            ok(r.status == 200, f"after {label}: /healthz {r!r}")
        except OSError as e:
            ok(False, f"after {label}: /healthz failed: {e!r}")

    # -- still serving -----------------------------------------------------------------
    r = env.http("GET", "/healthz")
    ok(r.status == 200 and r.json == {"status": "ok"}, f"/healthz at the end: {r!r}")
    r = env.http("GET", "/readyz")
    ok(r.status == 200, f"/readyz at the end: {r!r}")
    w = await env.watch(oid)
    fresh = h.update(oid, base + 30_000, lat=11.0, lng=21.0, status="at_dropoff")
    r = post(fresh, auth())
    ok(r.status == 202 and r.json["results"][0]["result"] == "applied",
       f"a valid update at the end: {r!r}")
    if r.status == 202:
        f = await w.update()
        ok(f.get("update") == fresh and f.get("cursor") == r.json["results"][0].get("cursor"),
           f"the valid update at the end was not delivered: {f!r}")
    # The other key in the key file works too.
    r = post(h.update(oid, base + 30_001, status="picked_up"), auth(h.OTHER_KEY))
    ok(r.status == 202, f"the second ingest key: {r!r}")
    ok.done()


if __name__ == "__main__":
    h.main(test)
