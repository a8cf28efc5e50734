#!/usr/bin/python3
"""integration.order_source: PUT/GET/DELETE /v1/orders/{ID}/source (poll mode's binding
of an order to a provider's delivery) on the real trackgated and a real redis-server.

- PUT {"provider","ref"} with the ingest key answers 204 and stores
  {"order_id","provider","ref","set_at"} in trk:{ID}:source with the ttl-active lifetime;
  a second PUT replaces it; GET answers the stored document (200), DELETE removes it (204),
  then 404 for both.
- Bad bodies are 400 with the field named (and nothing stored); 401 without or with a wrong
  key (for every method); 405 with Allow for the other methods; 400 invalid_order_id; 411,
  413, 415.
- The source key has the order's hash tag: CLUSTER KEYSLOT of a cluster-enabled
  redis-server gives it the slot of the order's state and log keys.
- Two PUTs pipelined in one write: the connection ends, the daemon goes on serving.
- Redis down: PUT, GET and DELETE are 503 redis_unavailable; once Redis is back, PUT works.
"""
import os
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

JSON = "application/json"
ALLOW = "GET, PUT, DELETE"


def auth(key=h.INGEST_KEY):
    return {"Authorization": f"Bearer {key}"}


def put(env, oid, body, key=h.INGEST_KEY, content_type=JSON):
    hdrs = {"Content-Type": content_type}
    if key is not None:
        hdrs.update(auth(key))
    return env.http("PUT", f"/v1/orders/{oid}/source", body, hdrs)


def check_error(ck, r, status, code, what, field=None):
    ok = ck(r.status == status, f"{what}: status {r.status}, want {status}: {r!r}")
    ok = ok and ck(isinstance(r.json, dict) and r.json.get("error") == code and
                   isinstance(r.json.get("message"), str) and r.json["message"],
                   f"{what}: want error {code} with a message: {r!r}")
    if ok and field is not None:
        ck(r.json.get("field") == field and r.json["message"].startswith(field + ":"),
           f"{what}: the field {field} is not named: {r!r}")


def put_get_delete(env, ck):
    oid = "src-1"
    before = h.now_ms()
    r = put(env, oid, {"provider": "onfleet", "ref": "task-ABC_123", "extra": [1, 2]})
    ck(r.status == 204 and r.raw == b"", f"PUT source: {r!r}")
    r = env.http("GET", f"/v1/orders/{oid}/source", headers=auth())
    ck(r.status == 200 and r.headers.get("content-type", "").startswith(JSON),
       f"GET source: {r!r}")
    doc = r.json or {}
    ck(doc.get("order_id") == oid and doc.get("provider") == "onfleet" and
       doc.get("ref") == "task-ABC_123" and "extra" not in doc, f"GET source document: {doc!r}")
    ck(isinstance(doc.get("set_at"), int) and before - 1000 <= doc["set_at"] <= h.now_ms() + 1000,
       f"set_at is the wall clock in ms: {doc!r}")
    stored = env.redis.cli("GET", f"trk:{{{oid}}}:source")
    ck(stored.encode() == r.raw, f"GET answers what Redis holds: {stored!r} vs {r.raw!r}")
    ttl = int(env.redis.cli("TTL", f"trk:{{{oid}}}:source"))
    ck(86400 - 60 <= ttl <= 86400, f"the source lives ttl-active (86400 s): TTL {ttl}")

    r = put(env, oid, {"provider": "uber_direct", "ref": "del 42 ~!"})
    ck(r.status == 204, f"second PUT: {r!r}")
    r = env.http("GET", f"/v1/orders/{oid}/source", headers=auth(h.OTHER_KEY))
    ck(r.status == 200 and (r.json or {}).get("provider") == "uber_direct" and
       r.json.get("ref") == "del 42 ~!", f"the second PUT replaced the first: {r!r}")

    r = env.http("DELETE", f"/v1/orders/{oid}/source", headers=auth())
    ck(r.status == 204 and r.raw == b"", f"DELETE: {r!r}")
    ck(env.redis.cli("EXISTS", f"trk:{{{oid}}}:source") == "0", "DELETE removed the key")
    check_error(ck, env.http("DELETE", f"/v1/orders/{oid}/source", headers=auth()), 404,
                "no_source", "DELETE of a deleted source")
    check_error(ck, env.http("GET", f"/v1/orders/{oid}/source", headers=auth()), 404,
                "no_source", "GET of a deleted source")
    check_error(ck, env.http("GET", "/v1/orders/never-set/source", headers=auth()), 404,
                "no_source", "GET of an order without a source")


def bad_requests(env, ck):
    oid = "src-bad"
    long_ref = "r" * 129
    cases = [
        (b"{not json", "malformed_json", None, "not JSON"),
        (b'[{"provider":"onfleet","ref":"a"}]', "malformed_json", None, "an array"),
        (b'"onfleet"', "malformed_json", None, "a string"),
        ({"ref": "a"}, "invalid_source", "provider", "no provider"),
        ({"provider": "fedex", "ref": "a"}, "invalid_source", "provider", "an unknown provider"),
        ({"provider": 7, "ref": "a"}, "invalid_source", "provider", "a provider number"),
        ({"provider": "Onfleet", "ref": "a"}, "invalid_source", "provider", "a provider's case"),
        ({"provider": "onfleet"}, "invalid_source", "ref", "no ref"),
        ({"provider": "onfleet", "ref": ""}, "invalid_source", "ref", "an empty ref"),
        ({"provider": "onfleet", "ref": long_ref}, "invalid_source", "ref", "a 129-char ref"),
        ({"provider": "onfleet", "ref": "a\nb"}, "invalid_source", "ref", "a ref with a newline"),
        ({"provider": "onfleet", "ref": "caf\u00e9"}, "invalid_source", "ref", "a non-ASCII ref"),
        ({"provider": "onfleet", "ref": 12}, "invalid_source", "ref", "a ref number"),
        ({"provider": "onfleet", "ref": None}, "invalid_source", "ref", "a null ref"),
        # The poller puts ref in a URL path: "." and ".." would name its parent (review).
        ({"provider": "onfleet", "ref": "."}, "invalid_source", "ref", "a ref of ."),
        ({"provider": "uber_direct", "ref": ".."}, "invalid_source", "ref", "a ref of .."),
    ]
    for body, code, field, what in cases:
        check_error(ck, put(env, oid, body), 400, code, f"PUT {what}", field)
    ck(env.redis.cli("EXISTS", f"trk:{{{oid}}}:source") == "0",
       "nothing was stored by the refused bodies")
    r = put(env, oid, {"provider": "onfleet", "ref": "r" * 128})
    ck(r.status == 204, f"a 128-char ref is taken: {r!r}")
    r = put(env, oid, {"provider": "onfleet", "ref": "x"}, content_type="text/plain")
    check_error(ck, r, 415, "unsupported_media_type", "PUT text/plain")
    r = env.http("PUT", f"/v1/orders/{oid}/source", b'{"provider":"onfleet","ref":"' +
                 b"x" * 5000 + b'"}', {"Content-Type": JSON, **auth()})
    check_error(ck, r, 413, "body_too_large", "PUT of 5 KB")
    check_error(ck, put(env, oid, b""), 400, "malformed_json", "PUT with an empty body")
    r = h.raw_exchange(env.port, (f"PUT /v1/orders/{oid}/source HTTP/1.1\r\nHost: x\r\n"
                                  f"Authorization: Bearer {h.INGEST_KEY}\r\n"
                                  "Content-Type: application/json\r\n\r\n").encode())
    ck(r.startswith(b"HTTP/1.1 411"), f"PUT without Content-Length: {r[:200]!r}")
    r = env.http("GET", f"/v1/orders/{oid}/source", headers=auth())
    ck(r.status == 200 and (r.json or {}).get("ref") == "r" * 128,
       f"the refusals after the 128-char ref left it in place: {r!r}")

    # The key: none, a wrong one, another scheme; for every method.
    for method, body in (("PUT", {"provider": "onfleet", "ref": "a"}), ("GET", None),
                         ("DELETE", None)):
        for hdrs, what in (({}, "no key"), (auth("wrong-key-0123456789abcdef"), "a wrong key"),
                           ({"Authorization": f"Basic {h.INGEST_KEY}"}, "Basic")):
            if body is not None:
                hdrs = {**hdrs, "Content-Type": JSON}
            r = env.http(method, f"/v1/orders/{oid}/source", body, hdrs)
            check_error(ck, r, 401, "unauthorized", f"{method} with {what}")
    ck(env.redis.cli("EXISTS", f"trk:{{{oid}}}:source") == "1",
       "a DELETE without the key deleted nothing")

    # The methods the route refuses, with Allow; the order id.
    for method in ("POST", "HEAD", "PATCH", "OPTIONS"):
        r = env.http(method, f"/v1/orders/{oid}/source", headers=auth())
        ck(r.status == 405 and r.headers.get("allow") == ALLOW,
           f"{method} source: 405 with Allow {ALLOW!r}: {r!r} {r.headers!r}")
        if method != "HEAD":
            check_error(ck, r, 405, "method_not_allowed", f"{method} source")
    for method in ("PUT", "GET", "DELETE"):
        # (An empty id is the router's unit test: lws folds "//" in a path into "/".)
        for bad in ("a!b", "a/b", "x" * 129):
            r = env.http(method, f"/v1/orders/{bad}/source", {"provider": "onfleet", "ref": "a"}
                         if method == "PUT" else None,
                         {"Content-Type": JSON, **auth()} if method == "PUT" else auth())
            check_error(ck, r, 400, "invalid_order_id", f"{method} source of id {bad[:10]!r}")


def cluster_keyslot(env, keys):
    """CLUSTER KEYSLOT of each key, from a cluster-enabled redis-server of the test's own."""
    sock = os.path.join(env.sock_dir, "cluster.sock")
    proc = h.spawn([h.REDIS_SERVER, "--port", "0", "--unixsocket", sock, "--save", "",
                    "--appendonly", "no", "--dir", env.sock_dir, "--cluster-enabled", "yes",
                    "--cluster-config-file", os.path.join(env.sock_dir, "nodes.conf")],
                   os.path.join(env.log_dir, "redis-cluster.log"), "redis-server-cluster")
    try:
        def cli(*args):
            import subprocess
            r = subprocess.run([h.REDIS_CLI, "-s", sock] + list(args), capture_output=True,
                               stdin=subprocess.DEVNULL, timeout=10)
            return r.stdout.decode().strip() if r.returncode == 0 else None
        h.wait_until(lambda: os.path.exists(sock) and cli("PING") == "PONG", 10,
                     what="the cluster-enabled redis-server")
        return {k: cli("CLUSTER", "KEYSLOT", k) for k in keys}
    finally:
        proc.kill()
        proc.wait(timeout=5)


def hash_tag(env, ck):
    oid = "tag-ord.1_~x"
    env.apply(h.update(oid, h.now_ms(), status="picked_up"))
    r = put(env, oid, {"provider": "doordash_drive", "ref": "D-1"})
    ck(r.status == 204, f"PUT source of {oid}: {r!r}")
    keys = sorted(env.redis.cli("KEYS", f"trk:{{{oid}}}*").split())
    ck(f"trk:{{{oid}}}:source" in keys and f"trk:{{{oid}}}:state" in keys and
       f"trk:{{{oid}}}:log" in keys, f"the order's keys in Redis: {keys!r}")
    slots = cluster_keyslot(env, keys + [f"trk:{{{oid}}}"])
    ck(None not in slots.values() and len(set(slots.values())) == 1,
       f"one Cluster slot for the order's keys, the source included: {slots!r}")
    other = cluster_keyslot(env, [f"trk:{{{oid}x}}:source"])
    ck(set(other.values()) != set(slots.values()),
       f"the slot depends on the order id (the check can fail): {other!r} vs {slots!r}")


def pipelined(env, ck):
    req = (f"PUT /v1/orders/pipe-1/source HTTP/1.1\r\nHost: x\r\n"
           f"Authorization: Bearer {h.INGEST_KEY}\r\nContent-Type: application/json\r\n"
           "Content-Length: 34\r\n\r\n" + '{"provider":"onfleet","ref":"p-1"}').encode()
    ck(len(req.split(b"\r\n\r\n", 1)[1]) == 34, "the pipelined body's length")
    out = h.raw_exchange(env.port, req + req.replace(b"p-1", b"p-2"), timeout=5)
    ck(out.startswith(b"HTTP/1.1 "), f"two pipelined PUTs: an answer: {out[:300]!r}")
    ck(out.count(b"HTTP/1.1 ") <= 2, f"two pipelined PUTs: at most two answers: {out[:600]!r}")
    r = env.http("GET", "/v1/orders/pipe-1/source", headers=auth())
    ck(r.status in (200, 404), f"the daemon serves after pipelined PUTs: {r!r}")
    env.assert_alive()


def redis_down(env, ck):
    oid = "src-down"
    ck(put(env, oid, {"provider": "onfleet", "ref": "a"}).status == 204, "PUT before the outage")
    env.redis.stop()
    h.wait_until(lambda: env.http("GET", "/readyz").status == 503, 5, what="/readyz 503")
    check_error(ck, put(env, oid, {"provider": "onfleet", "ref": "b"}), 503, "redis_unavailable",
                "PUT while Redis is down")
    check_error(ck, env.http("GET", f"/v1/orders/{oid}/source", headers=auth()), 503,
                "redis_unavailable", "GET while Redis is down")
    check_error(ck, env.http("DELETE", f"/v1/orders/{oid}/source", headers=auth()), 503,
                "redis_unavailable", "DELETE while Redis is down")
    check_error(ck, put(env, oid, {"provider": "nope", "ref": "b"}), 400, "invalid_source",
                "a bad body while Redis is down is still a 400", "provider")
    env.redis.start()
    h.wait_until(lambda: env.http("GET", "/readyz").status == 200, 15, what="/readyz 200 again")
    ck(put(env, oid, {"provider": "onfleet", "ref": "c"}).status == 204, "PUT after the outage")
    r = env.http("GET", f"/v1/orders/{oid}/source", headers=auth())
    ck(r.status == 200 and (r.json or {}).get("ref") == "c", f"GET after the outage: {r!r}")


def test(env):
    ck = h.Checks()
    put_get_delete(env, ck)
    bad_requests(env, ck)
    hash_tag(env, ck)
    pipelined(env, ck)
    redis_down(env, ck)
    env.assert_alive()
    ck.done()


if __name__ == "__main__":
    h.main(test)
