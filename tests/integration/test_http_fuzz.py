#!/usr/bin/python3
"""integration.http_fuzz: pipelined and fragmented HTTP input never makes trackgated spin,
hang or leave a stored update unanswered (issue 14).

lws 4.1 offered the bytes behind a request that waits for Redis again and again:
pipelined requests made the process spin at 100 % of a core forever, and SIGTERM
no longer stopped it.  Beside the hand-written cases of integration.pipelining,
this is a scripted fuzz run against the real daemon.  It generates N inputs
(seeded: the seed is printed; TRACKGATE_TEST_SEED=<n> replays the run,
TRACKGATE_HTTP_FUZZ_ONLY=i,j only those of its inputs, TRACKGATE_HTTP_FUZZ_N=<n>
makes more or fewer), each a sequence of 1-5 requests concatenated:

  GET /healthz, GET /readyz, GET /v1/orders/ID, POST /v1/updates (valid, an
  array of two, malformed JSON, an invalid update, without the key), an
  unsigned POST /v1/webhooks/onfleet and its GET ?check= handshake, a
  websocket upgrade (then, mostly, the end of the input), garbage bytes, a
  truncated request head, a wrong or doubled Content-Length, a chunked body
  (well and badly formed), a header of 5-20 KiB;

then split at random points into 1-7 segments, sent with gaps of 0-20 ms on
one connection with TCP_NODELAY.  Every POST that could be stored names an
order of its own, so what Redis stored can be traced to its answer.

Inputs 0-6 come first, fixed, one segment each but 6: issue 14's GET /healthz twice
and three POSTs, and four inputs this run found making trackgated spin at
100 % in lws_service_do_ripe_rxflow at commit 535eac5 (unresponsive to
everyone, still running after SIGTERM): GET /healthz, then a GET /healthz
with a 2-byte body; GET /healthz, a GET /healthz with one more header (or a
header line without a colon), then a POST; a 404, a head cut off inside a
header, then two POSTs; and (in two segments, the second the POST's body but its first 100 bytes) GET /healthz then a POST, which made lws 4.1 hand over the POST's body
from a buffer it had freed (heap-use-after-free under ASan at b9b8844).  The
random inputs are 7 to N+6.

For each input:
- the server answers or closes within BOUND s of the last byte: the test
  reads to the end of the stream (trackgated runs with --http-timeout 1, so an
  idle or unfinished connection is closed within about 2 s: lws's timers tick
  once a second), or, once a websocket upgrade was answered 101 and its first
  frame (the snapshot, or a close) came, closes itself;
- what came back is whole HTTP responses (the last one may be cut short only
  when the connection was reset);
- every update Redis stored (SCARD trk:{ID}:seen) was answered 202 on that
  connection, "applied" for its order in the results; a 202 "applied" for an
  order Redis did not store is also a failure.  Checked after each 20 inputs
  and again at the end (an update stored after its connection closed).
The inputs run 20 at a time on 20 connections.  After each 20, the process
does not spin (its CPU time, /proc/PID/stat utime+stime, over a 0.5 s window
stays under 0.2 s; a spinning loop takes all of it), and /healthz answers.
At the end SIGTERM stops it within drain-timeout (the harness).  About 25 s.
"""
import concurrent.futures
import json
import os
import re
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

N = int(os.environ.get("TRACKGATE_HTTP_FUZZ_N", "300"))
ONLY = os.environ.get("TRACKGATE_HTTP_FUZZ_ONLY")  # "7,12": only these inputs of the run
BATCH = 20
BOUND = 4.0       # s after the last byte: http-timeout 1 s + lws's 1 s timer tick + 2 s margin
CPU_WINDOW = 0.5  # s
CPU_MAX = 0.2     # s of CPU allowed in the window
ONFLEET_SECRET = "a1b2c3d4e5f60718293a4b5c6d7e8f90"

STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})")


class Item:
    """One request (or piece of garbage) of an input."""

    def __init__(self, kind, data, oids=()):
        self.kind = kind
        self.data = data
        self.oids = list(oids)  # orders this request would store, if the server took it


class Gen:
    def __init__(self, rng, run):
        self.rng = rng
        self.run = run
        self.n = 0

    def oid(self):
        self.n += 1
        return f"fz{self.run}-{self.n}"

    def headers(self, extra=()):
        r = self.rng
        hs = [b"Host: t"] + list(extra)
        if r.random() < 0.2:
            hs.append(b"User-Agent: fuzz/" + str(r.randrange(100)).encode())
        if r.random() < 0.1:
            hs.append(b"Connection: close")
        if r.random() < 0.1:
            hs.append(b"Connection: keep-alive")
        r.shuffle(hs)
        return hs

    def request(self, method, path, hs=(), body=b""):
        return (method + b" " + path + b" HTTP/1.1\r\n" + b"".join(x + b"\r\n" for x in hs) +
                b"\r\n" + body)

    def update_body(self, oid):
        u = h.update(oid, h.now_ms(), lat=52.5 + self.rng.random() / 100, lng=13.4,
                     event_id=f"{oid}-e")
        return json.dumps(u).encode()

    def post(self, body, key=True, cl=None, ctype=b"application/json", extra=()):
        hs = [b"Content-Type: " + ctype] + list(extra)
        if key:
            hs.append(b"Authorization: Bearer " + h.INGEST_KEY.encode())
        if cl is not False:
            hs.append(b"Content-Length: " + (str(len(body)).encode() if cl is None else cl))
        return self.request(b"POST", b"/v1/updates", self.headers(hs), body)

    def item(self):
        r = self.rng
        k = r.choices(
            ["healthz", "readyz", "order", "post", "batch", "badjson", "invalid", "nokey",
             "onfleet", "check", "upgrade", "garbage", "truncated", "wrongcl", "chunked",
             "huge"],
            weights=[10, 4, 6, 14, 4, 5, 4, 3, 4, 2, 6, 6, 6, 6, 5, 4])[0]
        if k == "healthz":
            return Item(k, self.request(b"GET", b"/healthz", self.headers()))
        if k == "readyz":
            return Item(k, self.request(b"GET", b"/readyz", self.headers()))
        if k == "order":
            oid = r.choice([f"fz{self.run}-{max(1, self.n)}", "no-such-order", "x" * 200, "a%2Fb"])
            return Item(k, self.request(b"GET", b"/v1/orders/" + oid.encode(), self.headers()))
        if k == "post":
            oid = self.oid()
            return Item(k, self.post(self.update_body(oid)), [oid])
        if k == "batch":
            a, b = self.oid(), self.oid()
            body = b"[" + self.update_body(a) + b"," + self.update_body(b) + b"]"
            return Item(k, self.post(body), [a, b])
        if k == "badjson":
            body = r.choice([b"{", b"{\"v\":1,", b"null", b"", b"\xff\xfe", b"[]", b"{}" * 3])
            return Item(k, self.post(body))
        if k == "invalid":
            return Item(k, self.post(json.dumps({"v": 1, "order_id": self.oid()}).encode()))
        if k == "nokey":
            oid = self.oid()
            return Item(k, self.post(self.update_body(oid), key=False), [oid])
        if k == "onfleet":
            body = json.dumps({"taskId": "t1", "triggerId": 0, "time": h.now_ms(),
                               "data": {"task": {"shortId": self.oid()}}}).encode()
            hs = [b"Content-Type: application/json", b"Content-Length: %d" % len(body)]
            return Item(k, self.request(b"POST", b"/v1/webhooks/onfleet", self.headers(hs), body))
        if k == "check":
            return Item(k, self.request(b"GET", b"/v1/webhooks/onfleet?check=" +
                                        str(r.randrange(10 ** 6)).encode(), self.headers()))
        if k == "upgrade":
            key = os.urandom(16).hex()[:22].encode() + b"=="
            hs = [b"Upgrade: websocket", b"Connection: Upgrade", b"Sec-WebSocket-Key: " + key,
                  b"Sec-WebSocket-Version: 13", b"Host: t"]
            return Item(k, self.request(b"GET", b"/v1/track/" + f"fz{self.run}-w".encode(), hs))
        if k == "garbage":
            return Item(k, r.choice([
                bytes(r.randrange(256) for _ in range(r.randrange(1, 200))),
                b"\r\n", b"\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"HELLO\r\n\r\n",
                b"GET /healthz\r\n\r\n", b"GET  /healthz HTTP/1.1\r\n\r\n",
                b"POST /v1/updates HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n"
                b"abcdefg",
                b"GET /healthz HTTP/1.1\r\nHost: t\r\nbad header line\r\n\r\n",
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello on plain HTTP
                b"GET /healthz HTTP/1.1\nHost: t\n\n",
                b"GET /%00 HTTP/1.1\r\nHost: t\r\n\r\n",
            ]))
        if k == "truncated":
            whole = self.request(b"GET", b"/healthz", self.headers())
            return Item(k, whole[:r.randrange(1, len(whole) - 2)])
        if k == "wrongcl":
            oid = self.oid()
            body = self.update_body(oid)
            cl = r.choice([str(len(body) + r.randrange(1, 50)).encode(),
                           str(max(0, len(body) - r.randrange(1, 50))).encode(),
                           b"-1", b"abc", b"99999999999999999999", b" " + str(len(body)).encode(),
                           b"0x10"])
            return Item(k, self.post(body, cl=cl), [oid])
        if k == "chunked":
            oid = self.oid()
            body = self.update_body(oid)
            if r.random() < 0.6:
                cut = r.randrange(1, len(body))
                enc = (b"%x\r\n" % cut + body[:cut] + b"\r\n" + b"%x\r\n" % (len(body) - cut) +
                       body[cut:] + b"\r\n0\r\n\r\n")
            else:
                enc = r.choice([b"zz\r\n" + body + b"\r\n0\r\n\r\n",
                                b"%x\r\n" % (len(body) + 9) + body + b"\r\n0\r\n\r\n",
                                b"%x\r\n" % len(body) + body])
            te = [b"Transfer-Encoding: chunked"]
            if r.random() < 0.2:
                te.append(b"Content-Length: %d" % len(body))
            return Item(k, self.post(enc, cl=False, extra=te), [oid])
        # huge: a header of 5-20 KiB, on a GET or a valid POST
        big = b"X-Big: " + b"a" * r.randrange(5000, 20000)
        if r.random() < 0.5:
            return Item(k, self.request(b"GET", b"/healthz", self.headers([big])))
        oid = self.oid()
        return Item(k, self.post(self.update_body(oid), extra=[big]), [oid])

    def sequence(self):
        r = self.rng
        items = [self.item() for _ in range(r.randrange(1, 6))]
        ups = [i for i in items if i.kind == "upgrade"]
        if ups and r.random() < 0.8:  # mostly the end of the input: what follows is frames
            items = [i for i in items if i.kind != "upgrade"] + [ups[0]]
        return items

    def split(self, data):
        r = self.rng
        cuts = sorted(set(r.randrange(1, len(data)) for _ in range(r.randrange(0, 7))
                          if len(data) > 1))
        segs, last = [], 0
        for c in cuts + [len(data)]:
            segs.append((data[last:c], r.choice([0, 0, 0.001, 0.005, 0.02])))
            last = c
        return segs


def frame_complete(b):
    """Whether b starts with a whole websocket frame."""
    if len(b) < 2:
        return False
    n, hl = b[1] & 0x7f, 2
    if n == 126:
        if len(b) < 4:
            return False
        n, hl = int.from_bytes(b[2:4], "big"), 4
    elif n == 127:
        if len(b) < 10:
            return False
        n, hl = int.from_bytes(b[2:10], "big"), 10
    return len(b) >= hl + n


def parse(data, reset):
    """The responses in data: [(status, lower-case head, body)], whether a 101 was followed by
    a whole websocket frame, and a complaint (or None)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            return out, False, None if reset else f"a response cut short: {data[:200]!r}"
        m = STATUS.match(head)
        if not m:
            return out, False, f"not an HTTP response: {head[:200]!r}"
        status, low = int(m.group(1)), head.lower()
        if status == 101:
            out.append((101, low, b""))
            return out, frame_complete(rest), None
        cl = re.search(rb"content-length: *(\d+)", low)
        if not cl:
            return out, False, f"a response without Content-Length: {head[:200]!r}"
        n = int(cl.group(1))
        if len(rest) < n:
            return out, False, None if reset else f"a response body cut short: {data[:300]!r}"
        out.append((status, low, rest[:n]))
        data = rest[n:]
    return out, False, None


def run_input(port, idx, items, segs):
    """Sends one input and reads what comes back.  Returns a dict."""
    res = {"idx": idx, "kinds": [i.kind for i in items], "data": b"", "closed": False,
           "reset": False, "upgraded": False, "took": 0.0, "error": None}
    s = socket.create_connection(("127.0.0.1", port), timeout=BOUND)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for seg, gap in segs:
            try:
                s.sendall(seg)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server closed already: what it said is still to be read
            except socket.timeout:
                res["error"] = f"the server stopped reading for {BOUND} s mid-input"
                return res
            if gap:
                time.sleep(gap)  # the gap between two segments of the input
        sent_at = time.monotonic()
        deadline = sent_at + BOUND
        data = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                res["error"] = (f"neither answered nor closed within {BOUND} s of the last byte "
                                f"(read {len(data)} bytes: {data[:200]!r})")
                break
            s.settimeout(left)
            try:
                d = s.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                res["reset"] = res["closed"] = True
                break
            if not d:
                res["closed"] = True
                break
            data += d
            if b" 101 " in data and parse(data, False)[1]:
                res["upgraded"] = True  # the upgrade answered and its first frame is in: done
                break
        res["took"] = time.monotonic() - sent_at
        res["data"] = data
    finally:
        s.close()
    return res


class Redis:
    """SCARD over the private Redis's unix socket, pipelined."""

    def __init__(self, path):
        self.path = path

    def scard(self, keys):
        if not keys:
            return []
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.path)
            s.sendall(b"".join(b"*2\r\n$5\r\nSCARD\r\n$%d\r\n%s\r\n" % (len(k), k.encode())
                               for k in keys))
            buf = b""
            while buf.count(b"\r\n") < len(keys):
                d = s.recv(65536)
                h.check(d, "Redis closed the connection")
                buf += d
        lines = buf.split(b"\r\n")[:len(keys)]
        h.check(all(x.startswith(b":") for x in lines), f"SCARD answers: {lines[:5]!r}")
        return [int(x[1:]) for x in lines]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fixed_inputs(gen):
    """Inputs 0-6 (see fixed_segments), before the random ones: the cases of issue 14 and
    what this fuzz run found since (a spin at 100 % in lws_service_do_ripe_rxflow at commit
    535eac5, the whole process unresponsive)."""
    def get(extra=b""):
        return Item("healthz", b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + extra + b"\r\n")

    def post():
        oid = gen.oid()
        return Item("post", gen.post(gen.update_body(oid)), [oid])

    oid6 = gen.oid()

    return [
        [get(), get()],                                       # issue 14: GET /healthz twice
        [post(), post(), post()],                             # issue 14: three POSTs
        [get(), Item("healthz",
                     b"GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}")],
        [get(), get(b"bad header line\r\n"), post()],
        [get(), get(b"X-A: b\r\n"), post()],
        [Item("garbage", b"GET /%00 HTTP/1.1\r\nHost: t\r\n\r\n"),
         Item("truncated", b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection:"), post(), post()],
        # Cut before its body (fixed_segments): a POST lws parses from its own buffer
        # with a body longer than what is there (ASan: heap-use-after-free in
        # ingest_body at b9b8844, lws handing over the body from a segment it had freed).
        [get(), Item("post", gen.post(gen.update_body(oid6) + b" " * PAD6), [oid6])],
    ]


PAD6 = 400  # JSON whitespace after input 6's update: its body is longer than its head


def fixed_segments(i, items):
    """Input 6 goes in two segments 20 ms apart, the second its POST's body but for its
    first 100 bytes (the head and those are fewer bytes than the body); the others in
    one."""
    data = b"".join(x.data for x in items)
    if i != 6:
        return [(data, 0)]
    cut = len(data) - data.rindex(b"\r\n\r\n") - 4 - 100  # 100 bytes of it go first
    return [(data[:-cut], 0.02), (data[-cut:], 0)]


def describe(items, segs):
    return (" + ".join(i.kind for i in items) + f" in {len(segs)} segment(s) of " +
            ", ".join(f"{len(s)} bytes (then {g * 1000:.0f} ms)" for s, g in segs) +
            "; first bytes " + repr(b"".join(i.data for i in items)[:160]))


def test(env):
    rng = h.seeded_random("http_fuzz")
    # Fixed width, so that a replay's inputs have the same lengths (and cut points).
    run = f"{os.getpid() % 100000:05d}x{rng.randrange(10 ** 6):06d}"
    gen = Gen(rng, run)
    redis = Redis(env.redis.sock)
    pid = env.daemon.proc.pid
    t_start = time.monotonic()
    inputs = [(items, fixed_segments(i, items))
              for i, items in enumerate(fixed_inputs(gen))]
    n_fixed = len(inputs)
    for i in range(N):
        items = gen.sequence()
        inputs.append((items, gen.split(b"".join(x.data for x in items))))
    order = [int(x) for x in ONLY.split(",")] if ONLY else list(range(n_fixed + N))
    kinds, statuses = {}, {}
    traced = []  # (key, oid, applied on its connection, what) of every update that could be stored
    closed = upgraded = reset = stored_total = 0
    slowest = 0.0
    for b0 in range(0, len(order), BATCH):
        batch = order[b0:b0 + BATCH]
        with concurrent.futures.ThreadPoolExecutor(len(batch)) as pool:
            results = list(pool.map(lambda i: run_input(env.port, i, *inputs[i]), batch))
        # A spinning process starves every connection of the batch: say that first.
        c0 = cpu_seconds(pid)
        time.sleep(CPU_WINDOW)  # a window to measure CPU over, not a wait for a condition
        used = cpu_seconds(pid) - c0
        hung = [r["idx"] for r in results if r["error"]]
        h.check(used < CPU_MAX,
                f"trackgated used {used:.2f} s of CPU in {CPU_WINDOW} s after inputs {batch} "
                f"(it spins; {len(hung)} of them neither answered nor closed: {hung}; "
                f"TRACKGATE_HTTP_FUZZ_ONLY=i with this seed replays one). The inputs: " +
                "; ".join(f"{i}: {describe(*inputs[i])}" for i in batch))
        keys, owners = [], []
        for r in results:
            items, segs = inputs[r["idx"]]
            what = f"input {r['idx']} ({describe(items, segs)})"
            h.check(r["error"] is None, f"{what}: {r['error']}")
            resp, _, bad = parse(r["data"], r["reset"])
            h.check(bad is None, f"{what}: {bad}")
            applied = set()
            for status, _, body in resp:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 202:
                    for it in json.loads(body).get("results", []):
                        if it.get("result") == "applied":
                            applied.add(it.get("order_id"))
            r["applied"] = applied
            for it in items:
                kinds[it.kind] = kinds.get(it.kind, 0) + 1
                for oid in it.oids:
                    keys.append(f"trk:{{{oid}}}:seen")
                    owners.append((r, oid, what))
            closed += r["closed"]
            upgraded += r["upgraded"]
            reset += r["reset"]
            slowest = max(slowest, r["took"])
        traced += [(k, oid, r["applied"], what) for k, (r, oid, what) in zip(keys, owners)]
        for n, (r, oid, what) in zip(redis.scard(keys), owners):
            h.check(n == 0 or oid in r["applied"],
                    f"{what}: Redis stored the update of {oid}, and it was not answered 202 "
                    f"(answers: {parse(r['data'], r['reset'])[0]!r:.600})")
            h.check(n > 0 or oid not in r["applied"],
                    f"{what}: answered 202 applied for {oid}, which Redis did not store")
        hr = env.http("GET", "/healthz", timeout=BOUND)
        h.check(hr.status == 200, f"/healthz after inputs {batch[0]}-{batch[-1]}: {hr!r}")
    # Once more at the end: an update stored after its connection was closed (a Redis answer
    # still on its way) must not go unnoticed.
    for n, (_, oid, applied, what) in zip(redis.scard([t[0] for t in traced]), traced):
        stored_total += n > 0
        h.check(n == 0 or oid in applied,
                f"{what}: Redis stored the update of {oid} by the end of the run, and it was "
                f"not answered 202 on its connection")
    print(f"{len(order)} inputs in {time.monotonic() - t_start:.1f} s: requests by kind "
          f"{dict(sorted(kinds.items()))}")
    print(f"answers by status {dict(sorted(statuses.items()))}; {closed} closed by the server "
          f"({reset} reset), {upgraded} upgraded; {stored_total} updates stored, each answered "
          f"202; slowest answer-or-close {slowest:.2f} s after the last byte (bound {BOUND} s)")
    print("PASS checks")


def main_test(env):
    secret = os.path.join(env.log_dir, "onfleet.secret")
    with open(secret, "w") as f:
        f.write(ONFLEET_SECRET + "\n")
    env.daemon.extra_args += ["--http-timeout", "1", "--webhook-secret-file", f"onfleet={secret}"]
    env.start()
    test(env)


if __name__ == "__main__":
    h.main(main_test, start=False)
