#!/usr/bin/python3
"""integration.pipelining: HTTP/1.1 requests pipelined in one segment (RFC 9112 9.3).

lws 4.1 offered the bytes behind a request that waits for Redis again and
again: three POSTs to /v1/updates in one write made trackgated spin at 100 %
of a core forever, and SIGTERM no longer stopped it.  Each case below writes
all its requests with one send() on a fresh connection and reads until the
server closes or goes quiet, then checks:

- the answers come in order, each a whole HTTP response;
- every update Redis stored (its event_id is in the order's seen set) was
  answered 202 on the wire; requests not answered stored nothing; a request
  refused as pipelined (503 "pipelined") stored nothing;
- the first request is always answered;
- the process does not spin: over the next second it uses well under half a
  second of CPU (a spinning loop uses all of it);
- at the end, SIGTERM stops it within drain-timeout (the harness).

Cases: GET /healthz x2 (answered at once: both answered, keep-alive);
POST x2, x3, x8; GET /healthz + POST + POST; POST + GET /healthz;
GET /v1/orders/{ID} x2; a webhook-free mix of POST and GET /v1/orders.
"""
import json
import os
import re
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

STATUS = re.compile(rb"HTTP/1\.1 (\d{3})")


def post(oid, eid, ts):
    body = json.dumps(h.update(oid, ts, lat=52.5, lng=13.4, event_id=eid)).encode()
    return (b"POST /v1/updates HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + h.INGEST_KEY.encode() + b"\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body), eid


def get(path):
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n\r\n", None


def responses(data):
    """Splits the bytes read into (status, headers, body) by Content-Length."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        h.check(sep, f"a partial response: {data[:200]!r}")
        m = STATUS.match(head)
        h.check(m, f"not an HTTP response: {head[:200]!r}")
        n = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
        h.check(len(rest) >= n, f"a response cut short: {data[:300]!r}")
        out.append((int(m.group(1)), head.lower(), rest[:n]))
        data = rest[n:]
    return out


def exchange(port, reqs, quiet=1.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"".join(r for r, _ in reqs))
    s.settimeout(quiet)
    data, closed = b"", False
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            d = s.recv(65536)
        except socket.timeout:
            if len(responses(data)) >= len(reqs):
                break
            continue
        if not d:
            closed = True
            break
        data += d
    s.close()
    return responses(data), closed


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stored_events(env, oid):
    out = env.redis.cli("SMEMBERS", f"trk:{{{oid}}}:seen")
    return set(out.split()) if out else set()


def run_case(env, name, reqs, oids):
    print(f"--- {name}")
    got, closed = exchange(env.port, reqs)
    h.check(got, f"{name}: the first request was not answered")
    for i, (status, head, body) in enumerate(got):
        print(f"    {i}: {status} {'close' if b'connection: close' in head else 'keep-alive'} "
              f"{body[:80]!r}")
    answered = set()
    for (status, head, body), (_, eid) in zip(got, reqs):
        if eid is None:
            continue
        if status == 202:
            answered.add(eid)
        else:
            h.check(status == 503 and json.loads(body).get("error") == "pipelined",
                    f"{name}: a POST answered {status} {body!r}")
    stored = set()
    for oid in oids:
        stored |= stored_events(env, oid)
    mine = {eid for _, eid in reqs if eid}
    h.check((stored & mine) <= answered,
            f"{name}: stored but never answered: {sorted((stored & mine) - answered)}")
    h.check(answered <= stored, f"{name}: answered 202 but not stored: {sorted(answered - stored)}")
    if len(got) < len(reqs):
        h.check(closed and b"connection: close" in got[-1][1],
                f"{name}: {len(got)} of {len(reqs)} answered, and the last answer did not say "
                f"Connection: close")
    t0 = cpu_seconds(env.daemon.proc.pid)
    time.sleep(1.0)  # a window to measure CPU over, not a wait for a condition
    used = cpu_seconds(env.daemon.proc.pid) - t0
    h.check(used < 0.5, f"{name}: trackgated used {used:.2f} s of CPU in 1 s after the requests "
            f"(it spins)")
    r = env.http("GET", "/healthz")
    h.check(r.status == 200, f"{name}: /healthz afterwards: {r!r}")
    return got


def test(env):
    pid = os.getpid()
    ts = h.now_ms()
    run_case(env, "GET /healthz twice", [get("/healthz"), get("/healthz")], [])
    for n in (2, 3, 8):
        oid = f"pl{n}-{pid}"
        got = run_case(env, f"{n} POSTs", [post(oid, f"{oid}-e{i}", ts + i) for i in range(n)],
                       [oid])
        h.check(got[0][0] == 202, f"{n} POSTs: the first was not applied: {got[0]!r}")
    oid = f"plm-{pid}"
    run_case(env, "GET /healthz, then 2 POSTs",
             [get("/healthz"), post(oid, f"{oid}-a", ts), post(oid, f"{oid}-b", ts + 1)], [oid])
    oid = f"plp-{pid}"
    got = run_case(env, "POST, then GET /healthz", [post(oid, f"{oid}-a", ts), get("/healthz")],
                   [oid])
    h.check(got[0][0] == 202, f"POST then GET: the POST was not applied: {got[0]!r}")
    env.apply(h.update(f"plo-{pid}", ts, lat=1, lng=2))
    got = run_case(env, "GET /v1/orders twice",
                   [get(f"/v1/orders/plo-{pid}"), get(f"/v1/orders/plo-{pid}")], [])
    h.check(got[0][0] == 200 and json.loads(got[0][2]).get("order_id") == f"plo-{pid}",
            f"GET /v1/orders twice: the first answer {got[0]!r}")
    oid = f"plg-{pid}"
    run_case(env, "GET /v1/orders, POST, POST",
             [get(f"/v1/orders/plo-{pid}"), post(oid, f"{oid}-a", ts), post(oid, f"{oid}-b", ts + 1)],
             [oid])
    print("PASS checks")


if __name__ == "__main__":
    h.main(test)
