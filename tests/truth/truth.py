#!/usr/bin/python3
"""truth.py - the convergence suite's shared module (ctest label `truth`).

The promise under test: every watcher of an order - the real tracking page in
headless chromium, and independent websocket clients - ends on the order's
final state after a fault, never sees an update twice, never sees a cursor
go back, never skips an update that carries a status, ETA, courier or places,
and never shows a location older than one it already showed.  Each fault
script (test_*.py beside this file) builds its world with the pieces here:

  Suite       one test: argument parsing, a private redis-server (harness.Redis),
              trackgated nodes (Node), haproxy (HAProxy), network namespaces
              (Netns), the update generator (Generator), the watchers' agent
              (Agent), the convergence timer (Suite.converge), the final
              check (Suite.finish) and cleanup (finally + atexit + signals).
  Generator   a thread posting a continuous stream of updates for N orders,
              round robin, through POST /v1/updates and Uber Direct webhooks
              (signed), with stale fixes and retried duplicates mixed in; it
              records every answer (order, cursor, times).
  Agent       a child process (`truth.py agent`, run inside the watchers'
              network namespace when there is one) that holds the watchers:
              websocket clients (python websockets; they reconnect and resume
              with ?since= like track.js does) and chromium tabs on
              GET /t/{ID}?token=T.  It answers commands on stdin/stdout
              (JSON lines) and dumps what every watcher received.
  check_*     the invariants, keyed by (order, cursor), on that dump.

A page is read through a script injected before the page's own
(Page.addScriptToEvaluateOnNewDocument): it wraps window.WebSocket to record
every frame the page receives, and hooks the page's own `globalThis.trackgate
= {client, map}` (view.js) to record each order event (the cursor, the shown
location's ts, the status, the marker's target) and each connection state;
every 100 ms it samples the DOM (#conn data-state, #status-text data-status,
the canvas's data-courier).

Convergence: at a fault's end (time.time(), shared by every process on the
machine) the generator keeps posting; the target of each order is the first
update applied after the fault ended, and a watcher has converged when it
received a frame at or past that cursor (a page: and its connection state is
live).  The time printed is from the fault's end to the last watcher's
convergence: `truth: <fault> converged in N ms (watchers=W)`; it is also
written to the --results JSON file (one entry per fault label).

Run with Debian's /usr/bin/python3 (python3-websockets).
"""

import argparse
import asyncio
import atexit
import base64
import fcntl
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
from datetime import datetime, timezone

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import harness as h  # noqa: E402

TOKEN_SECRET = "truth-suite-hs256-secret-0123456789abcdef"
UBER_SECRET = "truth-suite-uber-signing-key-0123456789"
TERMINAL = ("delivered", "cancelled", "returned", "failed")
BEARING = ("status", "eta", "courier", "places")  # parts a watcher must never miss
LONG_TOKEN_MIN = 300

TestFailure = h.TestFailure


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- cursors, tokens, webhooks --------------------------------------------------------

def cur(c):
    """'ms-seq' -> (ms, seq); None -> None."""
    if c is None:
        return None
    ms, _, seq = str(c).partition("-")
    return int(ms), int(seq)


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(order_id, long=False, ttl=3600):
    """An HS256 JWT for order_id (kid k1).  long: an extra claim makes it > 300
    characters, as real links with a few claims are (the bug hid `since` behind it)."""
    now = int(time.time())
    claims = {"order_id": order_id, "iat": now, "exp": now + ttl}
    if long:
        claims["ctx"] = "m-" + hashlib.sha256(order_id.encode()).hexdigest() * 5
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}, separators=(",", ":")))
    body = b64url(json.dumps(claims, separators=(",", ":")))
    sig = hmac.new(TOKEN_SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    tok = f"{head}.{body}.{b64url(sig)}"
    if long and len(tok) <= LONG_TOKEN_MIN:
        raise AssertionError("long token is not long")
    return tok


def rfc3339(ms):
    secs, msec = divmod(ms, 1000)
    return datetime.fromtimestamp(secs, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{msec:03d}Z"


def uber_sign(body):
    return hmac.new(UBER_SECRET.encode(), body, hashlib.sha256).hexdigest()


# --- small HTTP client (any host) ------------------------------------------------------

class Http:
    """A keep-alive HTTP/1.1 connection to host:port, reopened after any error."""

    def __init__(self, host, port, timeout=10.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body, separators=(",", ":")).encode()
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                raw = r.read()
                if (r.getheader("Connection") or "").lower() == "close":
                    self.close()
                return h.Response(r.status, {k.lower(): v for k, v in r.getheaders()}, raw)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                # A keep-alive connection the server closed meanwhile: once more on a new one.
                self.close()
                if attempt:
                    raise e
            except Exception:
                self.close()
                raise

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None


def http_once(host, port, method, path, body=None, headers=None, timeout=5.0):
    c = Http(host, port, timeout)
    try:
        return c.request(method, path, body, headers)
    finally:
        c.close()


def metric(host, port, name):
    """The sum of every sample of metric `name` on GET /metrics (0 when absent)."""
    r = http_once(host, port, "GET", "/metrics")
    total = 0.0
    for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", r.raw.decode(), re.M):
        total += float(m.group(1))
    return total


# --- trackgated -------------------------------------------------------------------------

class Node:
    """One trackgated on host:port, sharing the suite's Redis, keys and secrets."""

    def __init__(self, suite, name, host="127.0.0.1", extra=()):
        self.s = suite
        self.name = name
        self.host = host
        self.extra = list(extra)
        self.port = None
        self.proc = None
        self.stopped = False  # the test killed or stopped it on purpose
        self.log = os.path.join(suite.log_dir, f"trackgated-{name}.log")

    def argv(self):
        s = self.s
        return [s.args.trackgated, "--listen", f"{self.host}:{self.port}",
                "--redis", f"unix://{s.redis.sock}", "--ingest-key-file", s.key_file,
                "--token-key-file", f"k1=HS256:{s.token_file}",
                "--webhook-secret-file", f"uber_direct={s.uber_file}",
                "--log-level", "info"] + self.extra

    def start(self, port=None, attempts=8):
        """Starts on port (or a free one); waits for /readyz 200.  A busy port is retried
        (a fixed one after waiting until nothing listens on it any more)."""
        for attempt in range(attempts):
            self.port = port or h.free_port()
            with open(self.log, "ab") as f:
                f.write(f"=== start attempt {attempt + 1}: {' '.join(self.argv())}\n".encode())
            self.proc = h.spawn(self.argv(), self.log, f"trackgated-{self.name}")
            try:
                self.wait_ready()
                return self
            except TestFailure:
                if self.proc.poll() is not None and "listen_failed" in h.tail(self.log, 20):
                    if port is not None:
                        h.wait_until(lambda: not self.listening(), 10, what=f"port {port} free")
                    continue
                raise
        raise TestFailure(f"{self.name}: trackgated could not bind in {attempts} attempts:\n"
                          f"{h.tail(self.log)}")

    def listening(self):
        try:
            with socket.create_connection((self.host, self.port), timeout=1):
                return True
        except OSError:
            return False

    def wait_ready(self, timeout=h.STARTUP_TIMEOUT * 2):
        deadline = time.monotonic() + timeout
        last = None
        while True:
            if self.proc.poll() is not None:
                raise TestFailure(f"{self.name}: trackgated exited with {self.proc.returncode}:\n"
                                  f"{h.tail(self.log)}")
            try:
                last = http_once(self.host, self.port, "GET", "/readyz", timeout=1.0)
                if last.status == 200:
                    return
            except OSError as e:
                last = e
            if time.monotonic() >= deadline:
                raise TestFailure(f"{self.name}: not ready after {timeout} s ({last!r}):\n"
                                  f"{h.tail(self.log)}")
            time.sleep(0.02)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        self.stopped = True
        self.proc.kill()
        self.proc.wait(10)

    def sigterm(self):
        self.stopped = True
        self.proc.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout):
        """Waits for the exit; returns (status, seconds) or raises."""
        t0 = time.monotonic()
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TestFailure(f"{self.name}: still running {timeout} s after SIGTERM:\n"
                              f"{h.tail(self.log, 30)}")
        return rc, time.monotonic() - t0

    def url(self, path):
        return f"http://{self.host}:{self.port}{path}"

    def ws(self, order):
        return f"ws://{self.host}:{self.port}/v1/track/{order}"


# --- haproxy ----------------------------------------------------------------------------

HAPROXY = "/usr/sbin/haproxy"


class HAProxy:
    """Debian's haproxy in front of nodes: HTTP mode (websockets pass through as tunnels),
    round robin, /healthz checks every 200 ms, a refused server retried on another
    (redispatch), X-Trackgate-Node naming the server that answered."""

    def __init__(self, suite, nodes):
        self.s = suite
        self.nodes = nodes
        self.port = None
        self.proc = None
        self.dir = tempfile.mkdtemp(prefix="tg-truth-hap-")
        self.stats = os.path.join(self.dir, "stats.sock")
        self.cfg = os.path.join(suite.log_dir, "haproxy.cfg")
        self.log = os.path.join(suite.log_dir, "haproxy.log")

    def config(self):
        servers = "\n".join(f"  server {n.name} {n.host}:{n.port} check" for n in self.nodes)
        return f"""# written by tests/truth (truth.py HAProxy)
global
  maxconn 8000
  stats socket {self.stats} mode 600 level admin
  log stderr format raw local0 notice

defaults
  mode http
  log global
  option httplog
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout tunnel 10m
  timeout http-request 10s
  timeout http-keep-alive 10s
  retries 3
  option redispatch 1
  option forwardfor

frontend truth
  bind 127.0.0.1:{self.port}
  maxconn 8000
  use_backend websockets if {{ path_beg /v1/track/ }}
  default_backend http

backend http
  balance roundrobin
  option httpchk GET /healthz
  http-check expect status 200
  default-server inter 200ms fall 1 rise 1
  http-response set-header X-Trackgate-Node %[srv_name]
{servers}

backend websockets
  balance roundrobin
  option httpchk GET /healthz
  http-check expect status 200
  default-server inter 200ms fall 1 rise 1 maxconn 6000
  http-response set-header X-Trackgate-Node %[srv_name]
{servers}
"""

    def start(self):
        if not os.access(HAPROXY, os.X_OK):
            raise TestFailure(f"{HAPROXY} is missing: run tools/deps (Debian's haproxy)")
        self.port = h.free_port()
        with open(self.cfg, "w") as f:
            f.write(self.config())
        r = subprocess.run([HAPROXY, "-c", "-f", self.cfg], capture_output=True, timeout=20)
        if r.returncode != 0:
            raise TestFailure(f"haproxy -c refused {self.cfg}: {r.stdout!r} {r.stderr!r}")
        self.proc = h.spawn([HAPROXY, "-db", "-f", self.cfg], self.log, "haproxy")
        h.wait_until(lambda: self.up_servers() == {n.name for n in self.nodes}, 20,
                     what="haproxy: every server UP in both backends")
        return self

    def show_stat(self):
        if self.proc.poll() is not None:
            raise TestFailure(f"haproxy exited with {self.proc.returncode}:\n{h.tail(self.log)}")
        try:
            with socket.socket(socket.AF_UNIX) as sk:
                sk.settimeout(2)
                sk.connect(self.stats)
                sk.sendall(b"show stat\n")
                data = b""
                while True:
                    chunk = sk.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        except OSError:
            return []
        lines = data.decode().splitlines()
        if not lines or not lines[0].startswith("# "):
            return []
        cols = lines[0][2:].split(",")
        return [dict(zip(cols, line.split(","))) for line in lines[1:] if line]

    def up_servers(self):
        """Names of the servers UP in every backend."""
        rows = [r for r in self.show_stat() if r.get("svname") not in ("FRONTEND", "BACKEND")]
        up = {}
        for r in rows:
            up.setdefault(r["svname"], []).append(r.get("status", "").startswith("UP"))
        return {n for n, v in up.items() if v and all(v) and len(v) == 2}

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# --- network namespaces ------------------------------------------------------------------

def _run(argv, check=True):
    r = subprocess.run(argv, capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise TestFailure(f"{' '.join(argv)} failed ({r.returncode}): "
                          f"{r.stderr.decode(errors='replace').strip()}")
    return r.stdout.decode(errors="replace")


class Netns:
    """Watchers in their own network namespace W, behind a router namespace R:

        gateway (this namespace)  G ==veth== RG  [R]  RW ==veth== WI  (watchers, W)

    Addresses come from 198.18.0.0/15 (RFC 2544's benchmarking range), two /30s
    picked from this process's pid; this namespace gets a route to W's /30 via R
    (it goes with the veth).  A drop is `tc qdisc replace dev X root pfifo limit 0`
    on R's two interfaces (this kernel has no netem; dropping on an endpoint's own
    veth would make the kernel destroy its sockets); its drop counters
    (`tc -s qdisc show`) prove it.  Namespaces and veths are removed in cleanup()
    (finally, atexit), and stale ones of dead runs at creation."""

    PREFIX = "tgt"

    def __init__(self):
        pid = os.getpid()
        self.r = f"{self.PREFIX}{pid}r"
        self.w = f"{self.PREFIX}{pid}w"
        self.g_if = f"{self.PREFIX}{pid}g"
        self.rg_if = f"{self.PREFIX}{pid}rg"
        self.rw_if = f"{self.PREFIX}{pid}rw"
        self.w_if = f"{self.PREFIX}{pid}w"
        self.created = []
        self.gw_addr = self.w_addr = None

    @classmethod
    def remove_stale(cls):
        for line in _run(["ip", "netns", "list"], check=False).splitlines():
            m = re.match(rf"^({cls.PREFIX}(\d+)[rw])\b", line)
            if m and not os.path.exists(f"/proc/{m.group(2)}"):
                _run(["ip", "netns", "del", m.group(1)], check=False)

    def _pick_addresses(self):
        used = _run(["ip", "-o", "-4", "addr", "show"], check=False)
        routes = _run(["ip", "-4", "route", "show"], check=False)
        k0 = os.getpid() % 16384
        for i in range(64):
            k = (k0 + i * 97) % 16384
            base = (198 << 24) | (18 << 16)
            n = base + k * 8
            q = lambda x: socket.inet_ntoa(x.to_bytes(4, "big"))  # noqa: E731
            a = [q(n + 1), q(n + 2), q(n + 5), q(n + 6), q(n + 4)]
            if not any(x in used or x in routes for x in a):
                return a
        raise TestFailure("no free 198.18.0.0/15 subnet for the namespaces")

    def create(self):
        if os.geteuid() != 0:
            raise TestFailure("network namespaces need root (CAP_SYS_ADMIN, CAP_NET_ADMIN): "
                              "run the truth suite as root, as CI does")
        for tool in ("ip", "tc"):
            if not shutil.which(tool):
                raise TestFailure(f"`{tool}` is missing: run tools/deps (iproute2)")
        self.remove_stale()
        try:
            _run(["ip", "netns", "add", self.r])
            self.created.append(self.r)
            _run(["ip", "netns", "add", self.w])
            self.created.append(self.w)
        except TestFailure as e:
            raise TestFailure(f"cannot create network namespaces (root with CAP_SYS_ADMIN "
                              f"needed): {e}")
        g, rg, rw_, wi, wnet = self._pick_addresses()
        self.gw_addr, self.w_addr = g, wi
        nr = ["ip", "netns", "exec", self.r]
        nw = ["ip", "netns", "exec", self.w]
        _run(["ip", "link", "add", self.g_if, "type", "veth", "peer", "name", self.rg_if,
              "netns", self.r])
        _run(nr + ["ip", "link", "add", self.rw_if, "type", "veth", "peer", "name", self.w_if,
                   "netns", self.w])
        for ns, ifs in ((None, [self.g_if]), (self.r, ["lo", self.rg_if, self.rw_if]),
                        (self.w, ["lo", self.w_if])):
            pre = ["ip", "netns", "exec", ns] if ns else []
            for i in ifs:
                if i != "lo":
                    _run(pre + ["sysctl", "-qw", f"net.ipv6.conf.{i}.disable_ipv6=1"], check=False)
                _run(pre + ["ip", "link", "set", i, "up"])
        _run(["ip", "addr", "add", f"{g}/30", "dev", self.g_if])
        _run(nr + ["ip", "addr", "add", f"{rg}/30", "dev", self.rg_if])
        _run(nr + ["ip", "addr", "add", f"{rw_}/30", "dev", self.rw_if])
        _run(nr + ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        _run(nw + ["ip", "addr", "add", f"{wi}/30", "dev", self.w_if])
        _run(nw + ["ip", "route", "add", "default", "via", rw_])
        _run(["ip", "route", "add", f"{wnet}/30", "via", rg, "dev", self.g_if])
        log(f"netns: gateway {g} ({self.g_if}) <-> router {self.r} ({rg} {self.rg_if}, "
            f"{rw_} {self.rw_if}) <-> watchers {self.w} ({wi} {self.w_if})")
        return self

    def prefix(self):
        return ["ip", "netns", "exec", self.w]

    def drop(self):
        for i in (self.rw_if, self.rg_if):
            _run(["ip", "netns", "exec", self.r, "tc", "qdisc", "replace", "dev", i, "root",
                  "pfifo", "limit", "0"])

    def drops(self):
        """{interface: packets dropped by its root qdisc} on the router."""
        out = {}
        for i in (self.rw_if, self.rg_if):
            text = _run(["ip", "netns", "exec", self.r, "tc", "-s", "qdisc", "show", "dev", i])
            m = re.search(r"dropped (\d+)", text)
            out[i] = (int(m.group(1)) if m else 0, text.splitlines()[0] if text else "")
        return out

    def undrop(self):
        for i in (self.rw_if, self.rg_if):
            _run(["ip", "netns", "exec", self.r, "tc", "qdisc", "del", "dev", i, "root"])

    def cleanup(self):
        for ns in reversed(self.created):
            # Our own children in there are killed by the suite first; delete the name.
            _run(["ip", "netns", "del", ns], check=False)
        self.created = []
        _run(["ip", "link", "del", self.g_if], check=False)


# --- the update generator ------------------------------------------------------------------

NONTERMINAL_PATH = ["en_route_to_pickup", "at_pickup", "picked_up", "en_route_to_dropoff",
                    "at_dropoff"]
UBER_STATUS = {"en_route_to_pickup": "pickup", "picked_up": "pickup_complete",
               "en_route_to_dropoff": "dropoff", "delivered": "delivered"}
PICKUP = {"lat": 52.52460, "lng": 13.40220}
DROPOFF = {"lat": 52.51605, "lng": 13.39460}


class Post:
    __slots__ = ("order", "via", "kind", "t_sent", "t_done", "result", "cursor", "bearing",
                 "loc_ts", "event_id", "tries", "http")

    def as_dict(self):
        return {k: getattr(self, k) for k in self.__slots__}


class Generator(threading.Thread):
    """Posts updates for `orders` round robin, one round every `period` s, through
    POST /v1/updates and signed Uber Direct webhooks (alternating), until stop().
    Mixed in: stale fixes (ts older than the newest: must answer stale) and retried
    duplicates (the same event_id again: must answer duplicate), unless inject=False.
    A failed request (connection error, 5xx) is retried with the same event_id until
    `retry_for` s have passed.  Every answer is recorded (Post)."""

    def __init__(self, suite, host, port, orders, period=0.1, inject=True, retry_for=60.0):
        super().__init__(daemon=True, name="generator")
        self.s = suite
        self.http = Http(host, port, timeout=15)
        self.orders = list(orders)
        self.period = period
        self.inject = inject
        self.retry_for = retry_for
        self.rng = random.Random(suite.seed ^ 0x5eed)
        self.k = {o: 0 for o in self.orders}
        self.ts = {o: 0 for o in self.orders}
        self.status = {o: None for o in self.orders}
        self.last_direct = {}
        self.posts = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()  # the stream ends after the current post
        self.abort = threading.Event()     # cleanup: no more retries either
        self.kicked = threading.Event()    # start the next round now
        self.held = set()                  # orders that get no update meanwhile
        self.error = None
        self.final = {}

    # -- updates
    def _ts(self, o):
        t = max(self.ts[o] + 1, int(time.time() * 1000))
        self.ts[o] = t
        return t

    def _where(self, o, k):
        i = self.orders.index(o)
        f = (k % 400) / 400.0
        return (round(PICKUP["lat"] + (DROPOFF["lat"] - PICKUP["lat"]) * f + i * 0.0007, 6),
                round(PICKUP["lng"] + (DROPOFF["lng"] - PICKUP["lng"]) * f + i * 0.0005, 6))

    def _direct(self, o, ts, evt, **parts):
        u = {"v": 1, "order_id": o, "provider": "truth", "ts": ts, "event_id": evt}
        u.update(parts)
        return u

    def next_update(self, o):
        """(via, kind, body dict/bytes, bearing, loc_ts, event_id) of order o's next update."""
        k = self.k[o]
        self.k[o] = k + 1
        lat, lng = self._where(o, k)
        evt = f"tr-{o}-{k}"
        if k == 0:
            ts = self._ts(o)
            self.status[o] = "courier_assigned"
            u = self._direct(o, ts, evt, status="courier_assigned",
                             location={"lat": lat, "lng": lng, "heading_deg": 200.0},
                             courier={"id": "c-1", "name": "Ana Silva", "vehicle": "bicycle"},
                             eta={"pickup": ts + 300_000, "dropoff": ts + 1_500_000},
                             places={"pickup": PICKUP, "dropoff": DROPOFF})
            return "direct", "first", u, True, ts, evt
        if self.inject and k % 9 == 4 and o in self.last_direct:
            return ("direct", "duplicate", self.last_direct[o], True, None,
                    self.last_direct[o]["event_id"])
        if self.inject and k % 7 == 3 and self.ts[o] > 5000:
            ts = self.ts[o] - 3000  # an old fix arriving late: stale
            return ("direct", "stale", self._direct(o, ts, evt, location={"lat": lat, "lng": lng}),
                    False, ts, evt)
        ts = self._ts(o)
        if k % 12 == 0:
            path = NONTERMINAL_PATH
            nxt = path[min(len(path) - 1, (k // 12) - 1)] if k >= 12 else path[0]
            self.status[o] = nxt
            if nxt in UBER_STATUS and (k // 12) % 2 == 0:
                return self._uber_status(o, ts, evt, nxt, lat, lng)
            return ("direct", "status", self._direct(o, ts, evt, status=nxt,
                                                     location={"lat": lat, "lng": lng}),
                    True, ts, evt)
        if k % 5 == 0:
            return ("direct", "eta", self._direct(o, ts, evt, eta={"dropoff": ts + 900_000},
                                                  location={"lat": lat, "lng": lng}),
                    True, ts, evt)
        if k % 2:
            return self._uber_position(o, ts, evt, lat, lng)
        return ("direct", "location", self._direct(o, ts, evt, location={"lat": lat, "lng": lng,
                                                                         "heading_deg": 200.0}),
                False, ts, evt)

    def _uber_position(self, o, ts, evt, lat, lng):
        body = {"created": rfc3339(ts), "kind": "event.courier_update", "live_mode": False,
                "delivery_id": f"del-{o}", "id": evt, "location": {"lat": lat, "lng": lng},
                "data": {"id": f"del-{o}", "status": "dropoff", "external_id": o,
                         "courier": {"name": "Ana Silva", "vehicle_type": "bicycle",
                                     "location": {"lat": lat, "lng": lng}}}}
        return "uber", "location", body, False, ts, evt

    def _uber_status(self, o, ts, evt, status, lat, lng):
        body = {"created": rfc3339(ts), "kind": "event.delivery_status",
                "status": UBER_STATUS[status], "live_mode": False, "delivery_id": f"del-{o}",
                "id": evt,
                "data": {"id": f"del-{o}", "status": UBER_STATUS[status], "external_id": o,
                         "complete": status == "delivered",
                         "dropoff_eta": rfc3339(ts + 900_000),
                         "courier": {"name": "Ana Silva", "vehicle_type": "bicycle",
                                     "location": {"lat": lat, "lng": lng}},
                         "pickup": {"location": PICKUP}, "dropoff": {"location": DROPOFF}}}
        return "uber", "status", body, True, ts, evt

    # -- posting
    def post(self, o, via, kind, body, bearing, loc_ts, evt):
        p = Post()
        p.order, p.via, p.kind, p.bearing, p.loc_ts, p.event_id = o, via, kind, bearing, loc_ts, evt
        p.result = p.cursor = p.http = None
        p.tries = 0
        if via == "direct":
            raw = json.dumps(body, separators=(",", ":")).encode()
            path = "/v1/updates"
            hdr = {"Content-Type": "application/json", "Authorization": f"Bearer {h.INGEST_KEY}"}
            if kind not in ("duplicate", "stale"):
                self.last_direct[o] = body
        else:
            raw = json.dumps(body, separators=(",", ":")).encode()
            path = "/v1/webhooks/uber_direct"
            hdr = {"Content-Type": "application/json", "X-Uber-Signature": uber_sign(raw)}
        p.t_sent = time.time()
        deadline = time.monotonic() + self.retry_for
        delay = 0.05
        while True:
            p.tries += 1
            try:
                r = self.http.request("POST", path, raw, hdr)
                p.http = r.status
                if 200 <= r.status < 300:
                    res = (r.json or {}).get("results") or []
                    if res:
                        p.result = res[0].get("result")
                        p.cursor = res[0].get("cursor")
                    elif via == "uber":
                        p.result = "no_update"
                    break
                if r.status < 500:
                    raise TestFailure(f"{path} {kind} for {o}: {r!r}")
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() >= deadline or self.abort.is_set():
                p.result = "failed"
                break
            time.sleep(delay)  # a retry's pacing; nothing is asserted here
            delay = min(0.5, delay * 2)
        p.t_done = time.time()
        with self.lock:
            self.posts.append(p)
        return p

    def run(self):
        try:
            next_round = time.monotonic()
            while not self.stopping.is_set():
                for o in self.orders:
                    if self.stopping.is_set():
                        break
                    if o not in self.held:
                        self.post(o, *self.next_update(o))
                next_round += self.period
                pause = next_round - time.monotonic()
                if pause > 0 and not self.kicked.is_set():
                    self.kicked.wait(pause)
                if self.kicked.is_set() or pause <= 0:
                    self.kicked.clear()
                    next_round = time.monotonic()
        except BaseException as e:  # surfaced by stop() / check()
            self.error = e
            traceback.print_exc()

    def kick(self):
        """The next round starts now (at a fault's end: a fresh update of every order)."""
        self.kicked.set()

    def stop(self):
        self.stopping.set()
        self.kicked.set()
        self.join(60)
        if self.is_alive():
            raise TestFailure("the generator did not stop within 60 s")
        if self.error:
            raise TestFailure(f"the generator failed: {self.error!r}")

    def post_final(self):
        """After stop(): the last update of every order, `delivered` (status only)."""
        for o in self.orders:
            ts = self._ts(o)
            evt = f"tr-{o}-final"
            p = self.post(o, "direct", "final", self._direct(o, ts, evt, status="delivered"),
                          True, None, evt)
            if p.result != "applied":
                raise TestFailure(f"the final update of {o} was not applied: {p.as_dict()}")
            self.final[o] = p.cursor

    # -- what happened
    def snapshot(self):
        with self.lock:
            return list(self.posts)

    def first_applied_after(self, t, orders=None):
        """{order: cursor} of the first update of each order (of `orders`, default all)
        sent after wall time t and applied, or None while some order has none yet."""
        orders = set(orders or self.orders)
        out = {}
        for p in self.snapshot():
            if p.t_sent >= t and p.result == "applied" and p.order in orders \
                    and p.order not in out:
                out[p.order] = p.cursor
        return out if len(out) == len(orders) else None

    def last_applied(self, order):
        return next((p.cursor for p in reversed(self.snapshot())
                     if p.order == order and p.result == "applied"), None)

    def count(self):
        with self.lock:
            return len(self.posts)


# --- the agent: the watchers' process ----------------------------------------------------

HOOK_JS = r"""
(() => {
  if (window.__truth) return;
  const T = { frames: [], conns: [], events: [], states: [], samples: [] };
  window.__truth = T;
  const Native = window.WebSocket;
  class TruthSocket extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      const c = { url: String(url), t: Date.now(), open: null, close: null, code: null };
      const n = T.conns.push(c) - 1;
      this.addEventListener("open", () => { c.open = Date.now(); });
      this.addEventListener("message", (ev) => { T.frames.push([n, Date.now(), String(ev.data)]); });
      this.addEventListener("close", (ev) => { c.close = Date.now(); c.code = ev.code; });
    }
  }
  window.WebSocket = TruthSocket;
  let tg;
  Object.defineProperty(window, "trackgate", {
    configurable: true,
    get() { return tg; },
    set(v) {
      tg = v;
      const cl = v.client;
      T.states.push([Date.now(), cl.state, null]);
      cl.addEventListener("connection", (e) => T.states.push([Date.now(), e.detail.state, e.detail.code]));
      cl.addEventListener("order", (e) => {
        const o = e.detail.order, loc = o && o.location, m = v.map;
        T.events.push([Date.now(), cl.cursor, loc ? loc.ts : null, loc ? loc.lat : null,
                       loc ? loc.lng : null, o ? (o.status || null) : null, !!e.detail.reset,
                       m && m.courier ? m.courier.to : null, !!(m && m.showCourier)]);
      });
    },
  });
  setInterval(() => {
    const cv = document.getElementById("map"), st = document.getElementById("status-text");
    const cn = document.getElementById("conn");
    const o = tg && tg.client.order, loc = o && o.location;
    T.samples.push([Date.now(), cv ? (cv.dataset.courier || null) : null,
                    st ? (st.dataset.status || null) : null, cn ? cn.dataset.state : null,
                    loc ? loc.ts : null]);
  }, 100);
  T.take = (a, b, c, d) => ({ frames: T.frames.slice(a), events: T.events.slice(b),
                              states: T.states.slice(c), samples: T.samples.slice(d),
                              conns: T.conns, visibility: document.visibilityState });
})();
"""

# A compact frame: [t, type, cursor, reset, loc_ts, bearing, status, lat, lng, replayed, order_id]
F_T, F_TYPE, F_CUR, F_RESET, F_LOCTS, F_BEAR, F_STATUS, F_LAT, F_LNG, F_REPLAYED, F_ORDER = range(11)


def parse_frame(raw, t):
    try:
        f = json.loads(raw)
    except (TypeError, ValueError):
        return [t, "<not json>", None, False, None, False, None, None, None, None, None]
    if not isinstance(f, dict):
        return [t, "<not an object>", None, False, None, False, None, None, None, None, None]
    typ = f.get("type")
    loc_ts = lat = lng = status = replayed = None
    bearing = False
    if typ == "update":
        u = f.get("update") or {}
        loc = u.get("location")
        if isinstance(loc, dict):
            loc_ts, lat, lng = u.get("ts"), loc.get("lat"), loc.get("lng")
        status = u.get("status")
        bearing = any(k in u for k in BEARING)
    elif typ == "snapshot":
        st = f.get("state") or {}
        loc = st.get("location")
        if isinstance(loc, dict):
            loc_ts, lat, lng = loc.get("ts"), loc.get("lat"), loc.get("lng")
        status = st.get("status")
    elif typ == "resumed":
        replayed = f.get("replayed")
    return [t, typ, f.get("cursor"), bool(f.get("reset")), loc_ts, bearing, status, lat, lng,
            replayed, f.get("order_id")]


class Progress:
    """A watcher's position over time: (cursor tuple, t) each time it moved forward."""

    def __init__(self):
        self.hist = []
        self.max = None
        self.cache = {}

    def add(self, c, t):
        if c is None:
            return
        ct = cur(c)
        if self.max is None or ct > self.max:
            self.max = ct
        self.hist.append((ct, t))

    def reached(self, target, after=None):
        """First time (at or after wall time `after`) a frame put the position at or past
        target (a cursor string), or None."""
        key = (target, after)
        if key in self.cache:
            return self.cache[key]
        tt = cur(target)
        if self.max is None or self.max < tt:
            return None
        for ct, t in self.hist:
            if ct >= tt and (after is None or t >= after):
                self.cache[key] = t
                return t
        return None


RETRY_CLOSES = {1000, 1001, 1006, 1009, 1011, 1012, 1013, 4408, None}


class WsWatcher:
    """A websocket client like track.js: reconnects with backoff and jitter, resumes with
    ?since= the cursor of the last frame it got, merges updates into its state."""

    def __init__(self, spec, rng):
        self.id = spec["id"]
        self.order = spec["order"]
        self.base = spec["url"]
        self.token = spec.get("token")
        self.style = spec.get("style", "token_first")
        self.ping = spec.get("ping")
        self.rcvbuf = spec.get("rcvbuf")
        self.local_addr = spec.get("local_addr")
        self.slow = bool(spec.get("slow"))
        self.rng = rng
        self.conns = []
        self.cursor = None
        self.state = {}
        self.prog = Progress()
        self.stopped = False
        self.gave_up = None
        self.attempt = 0
        self.connected = False
        self.unstalled = asyncio.Event()
        self.unstalled.set()
        self.ws = None
        self.task = None

    def url(self):
        q = []
        if self.token:
            q.append(("token", self.token))
        if self.cursor:
            if self.style == "since_first":
                q.insert(0, ("since", self.cursor))
            else:
                q.append(("since", self.cursor))
        return self.base + ("?" + urllib.parse.urlencode(q) if q else "")

    def backoff(self, code):
        base = 2.0 if code == 1013 else 0.5
        ceiling = min(30.0, base * 2 ** min(self.attempt, 10))
        self.attempt += 1
        return ceiling / 2 + self.rng.random() * ceiling / 2

    async def _open(self, url):
        import websockets
        kw = dict(open_timeout=10, close_timeout=3, max_size=4 << 20, compression=None)
        if self.ping:
            kw.update(ping_interval=self.ping, ping_timeout=20)
        else:
            kw.update(ping_interval=None)
        if self.slow:
            kw.update(max_queue=1, read_limit=4096)
        if self.rcvbuf or self.local_addr:
            u = urllib.parse.urlsplit(url)
            sk = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sk.setblocking(False)
            if self.rcvbuf:
                sk.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            if self.local_addr:
                sk.bind((self.local_addr, 0))
            try:
                await asyncio.wait_for(asyncio.get_running_loop().sock_connect(
                    sk, (u.hostname, u.port)), 10)
            except BaseException:
                sk.close()
                raise
            kw["sock"] = sk
        return await websockets.connect(url, **kw)

    async def run(self):
        import websockets
        while not self.stopped:
            url = self.url()
            c = {"since": self.cursor, "t_open": None, "t_close": None, "code": None,
                 "reason": None, "node": None, "error": None, "frames": [],
                 "t_try": time.time()}
            self.conns.append(c)
            try:
                self.ws = await self._open(url)
            except Exception as e:
                c["error"] = repr(e)[:200]
                c["t_close"] = time.time()
                code = getattr(e, "status_code", None)
                await asyncio.sleep(self.backoff(1013 if code in (503, 429) else None))
                continue
            c["t_open"] = time.time()
            c["node"] = self.ws.response_headers.get("X-Trackgate-Node")
            self.connected = True
            try:
                async for msg in self.ws:
                    self.frame(c, msg)
                    if not self.unstalled.is_set():
                        await self.unstalled.wait()
            except websockets.exceptions.ConnectionClosed:
                pass
            except Exception as e:
                c["error"] = repr(e)[:200]
            self.connected = False
            c["t_close"] = time.time()
            c["code"], c["reason"] = self.ws.close_code, self.ws.close_reason
            if self.stopped:
                break
            if c["code"] not in RETRY_CLOSES:
                self.gave_up = f"closed with {c['code']} {c['reason']!r}: not retried"
                break
            await asyncio.sleep(self.backoff(c["code"]))

    def frame(self, c, msg):
        t = time.time()
        f = parse_frame(msg, t)
        c["frames"].append(f)
        typ = f[F_TYPE]
        if typ == "snapshot":
            self.attempt = 0
            self.state = {"status": f[F_STATUS], "loc": (f[F_LAT], f[F_LNG], f[F_LOCTS])
                          if f[F_LOCTS] is not None else None}
            if f[F_CUR]:
                self.cursor = f[F_CUR]
            self.prog.add(f[F_CUR], t)
        elif typ == "update":
            self.attempt = 0
            if f[F_STATUS]:
                self.state["status"] = f[F_STATUS]
            if f[F_LOCTS] is not None:
                self.state["loc"] = (f[F_LAT], f[F_LNG], f[F_LOCTS])
            self.cursor = f[F_CUR]
            self.prog.add(f[F_CUR], t)
        elif typ == "resumed":
            self.attempt = 0
            if f[F_CUR]:
                self.cursor = f[F_CUR]
            self.prog.add(f[F_CUR], t)

    def live_since(self):
        return self.conns[-1]["t_open"] if self.connected and self.conns else None

    def dump(self):
        return {"id": self.id, "order": self.order, "kind": "ws", "conns": self.conns,
                "final": {"cursor": self.cursor, "status": self.state.get("status"),
                          "loc": self.state.get("loc")},
                "connected": self.connected, "gave_up": self.gave_up,
                "long_token": bool(self.token and len(self.token) > LONG_TOKEN_MIN),
                "style": self.style, "slow": self.slow}


class PageWatcher:
    """The tracking page in a chromium tab."""

    def __init__(self, spec):
        self.id = spec["id"]
        self.order = spec["order"]
        self.url = spec["url"]
        self.tab = None
        self.raw_conns = []
        self.conns = []
        self.events = []
        self.states = []
        self.samples = []
        self.nodes = []   # (t, X-Trackgate-Node) of each websocket handshake
        self.prog = Progress()
        self.visibility = None
        self.dom = None
        self.errors = []

    async def open(self, browser):
        # A window of its own (cdp.Browser.new_tab's steps, with newWindow): a second tab
        # in one window would be hidden, and a hidden page runs no animation frames and
        # throttles its timers - the customer's screen is a visible page.
        import cdp
        target = (await browser.send("Target.createTarget", {"url": "about:blank",
                                                              "newWindow": True}))["targetId"]
        session = (await browser.send("Target.attachToTarget",
                                      {"targetId": target, "flatten": True}))["sessionId"]
        self.tab = cdp.Tab(browser, session, target)
        browser.tabs[session] = self.tab
        for domain in ("Page", "Runtime", "Log", "Network"):
            await self.tab.send(f"{domain}.enable")
        await self.tab.send("Emulation.setDeviceMetricsOverride",
                            {"width": 360, "height": 740, "deviceScaleFactor": 1, "mobile": True})
        orig = self.tab._event

        def event(method, p, orig=orig):
            if method == "Network.webSocketHandshakeResponseReceived":
                hdrs = {k.lower(): v for k, v in (p.get("response", {}).get("headers") or {}).items()}
                self.nodes.append((time.time(), hdrs.get("x-trackgate-node")))
            orig(method, p)
        self.tab._event = event
        await self.tab.send("Page.addScriptToEvaluateOnNewDocument", {"source": HOOK_JS})
        await self.tab.goto(self.url, timeout=30)
        await self.tab.wait_for("!!(window.__truth && window.trackgate)", timeout=20,
                                what="the page's trackgate hook")
        # Its websocket open before the next watcher connects: the order of connections
        # is the order a balancer sees.
        await self.tab.wait_for("__truth.conns.length > 0 && !!__truth.conns[0].open",
                                timeout=20, what="the page's websocket open")

    async def pull(self):
        r = await self.tab.eval(f"__truth.take({sum(len(c['frames']) for c in self.conns)},"
                                f"{len(self.events)},{len(self.states)},{len(self.samples)})")
        self.visibility = r["visibility"]
        self.raw_conns = r["conns"]
        while len(self.conns) < len(self.raw_conns):
            rc = self.raw_conns[len(self.conns)]
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(rc["url"]).query)
            self.conns.append({"since": (q.get("since") or [None])[0], "frames": [],
                               "t_try": rc["t"] / 1000.0, "t_open": None, "t_close": None,
                               "code": None, "node": None, "error": None, "reason": None})
        for i, rc in enumerate(self.raw_conns):
            c = self.conns[i]
            c["t_open"] = rc["open"] / 1000.0 if rc["open"] else None
            c["t_close"] = rc["close"] / 1000.0 if rc["close"] else None
            c["code"] = rc["code"]
        for n, t, data in r["frames"]:
            f = parse_frame(data, t / 1000.0)
            self.conns[n]["frames"].append(f)
            if f[F_TYPE] == "resumed":
                self.prog.add(f[F_CUR], f[F_T])  # no order event: nothing changed
        for e in r["events"]:
            e[0] = e[0] / 1000.0
            self.events.append(e)
            self.prog.add(e[1], e[0])
        for s_ in r["states"]:
            s_[0] = s_[0] / 1000.0
            self.states.append(s_)
        for s_ in r["samples"]:
            s_[0] = s_[0] / 1000.0
            self.samples.append(s_)

    def live_since(self):
        if not self.states or self.states[-1][1] != "live":
            return None
        return self.states[-1][0]

    async def read_dom(self):
        self.dom = await self.tab.eval("""(() => {
          const cv = document.getElementById('map'), st = document.getElementById('status-text');
          const cn = document.getElementById('conn'), c = window.trackgate && trackgate.client;
          const o = c && c.order, loc = o && o.location;
          return {courier: cv.dataset.courier || null, status: st.dataset.status || null,
                  conn: cn.dataset.state, conn_text: cn.textContent, cursor: c ? c.cursor : null,
                  state: c ? c.state : null, loc: loc ? [loc.lat, loc.lng, loc.ts] : null,
                  order_status: o ? (o.status || null) : null};
        })()""")
        self.errors = [e for e in self.tab.errors]
        return self.dom

    def dump(self):
        return {"id": self.id, "order": self.order, "kind": "page", "conns": self.conns,
                "events": self.events, "states": self.states, "samples": self.samples,
                "nodes": self.nodes, "dom": self.dom, "visibility": self.visibility,
                "errors": self.errors,
                "final": {"cursor": self.dom and self.dom["cursor"],
                          "status": self.dom and self.dom["order_status"],
                          "loc": tuple(self.dom["loc"]) if self.dom and self.dom["loc"] else None}}


class AgentServer:
    """The agent's side: commands on stdin, one JSON answer per line on stdout."""

    def __init__(self, seed, log_path):
        self.rng = random.Random(seed)
        self.log_path = log_path
        self.ws = {}
        self.pages = {}
        self.browser = None

    async def handle(self, req):
        cmd = req["cmd"]
        if cmd == "ws":
            for spec in req["specs"]:
                w = WsWatcher(spec, random.Random(self.rng.random()))
                self.ws[w.id] = w
                w.task = asyncio.ensure_future(w.run())
            return {"ok": True, "n": len(self.ws)}
        if cmd == "page":
            if self.browser is None:
                import cdp
                binary = cdp.find_chromium()
                if not binary:
                    return {"error": "chromium not found (tools/deps installs it)"}
                self.browser = cdp.Browser(binary, self.log_path + ".chromium")
                await self.browser.start()
            p = PageWatcher(req["spec"])
            await p.open(self.browser)
            self.pages[p.id] = p
            return {"ok": True, "chromium_pid": self.browser.proc.pid}
        if cmd == "progress":
            return await self.progress(req["targets"], req.get("ids"), req.get("after"))
        if cmd == "knock":
            # UDP datagrams to the gateway: a witness that the watcher-to-gateway direction
            # is cut (the router's qdisc counts them), whatever TCP is doing meanwhile.
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sk:
                for _ in range(req.get("n", 3)):
                    sk.sendto(b"truth-knock", (req["host"], req["port"]))
            return {"ok": True}
        if cmd == "ready":
            ids = req["ids"]
            ready = [i for i in ids if self.ws[i].prog.hist or any(
                c["frames"] for c in self.ws[i].conns)]
            lag = [i for i in ids if i not in set(ready)][:3]
            return {"ready": len(ready), "sample": [self.ws[i].dump()["conns"][-1:] for i in lag]}
        if cmd == "stall":
            for i in req["ids"]:
                self.ws[i].unstalled.clear()
            return {"ok": True}
        if cmd == "unstall":
            for i in req["ids"]:
                self.ws[i].unstalled.set()
            return {"ok": True}
        if cmd == "summary":
            return {"ws": {i: {"connected": w.connected, "conns": len(w.conns),
                               "frames": sum(len(c["frames"]) for c in w.conns),
                               "codes": [c["code"] for c in w.conns if c["t_close"]],
                               "cursor": w.cursor, "gave_up": w.gave_up}
                           for i, w in self.ws.items() if i in (req.get("ids") or self.ws)}}
        if cmd == "dump":
            final = req.get("final") or {}
            for p in self.pages.values():
                want = final.get(p.order)
                if want:
                    # The page draws on its next animation frame: wait (bounded) for the DOM
                    # to show the final status (and no courier after a terminal one); the
                    # checker judges what it shows then.
                    terminal = json.dumps(want in TERMINAL)
                    try:
                        await p.tab.wait_for(
                            f"(() => {{ const st = document.getElementById('status-text');"
                            f" const cv = document.getElementById('map');"
                            f" return st.dataset.status === {json.dumps(want)} &&"
                            f" !({terminal} && cv.dataset.courier); }})()", timeout=10)
                    except Exception:
                        pass
                await p.pull()
                await p.read_dom()
            data = {"watchers": [w.dump() for w in self.ws.values()] +
                    [p.dump() for p in self.pages.values()]}
            with open(req["path"], "w") as f:
                json.dump(data, f)
            return {"ok": True, "path": req["path"]}
        if cmd == "close":
            await self.close()
            return {"ok": True}
        return {"error": f"unknown command {cmd}"}

    async def progress(self, targets, ids=None, after=None):
        """For each watcher: when it reached its order's target (and, for a page, went
        live); which ones have not."""
        for p in self.pages.values():
            await p.pull()
        reached, lagging, n, pages = [], [], 0, []
        for w in list(self.ws.values()) + list(self.pages.values()):
            if ids is not None and w.id not in ids:
                continue
            if w.order not in targets:
                continue
            n += 1
            gave_up = getattr(w, "gave_up", None)
            t = w.prog.reached(targets[w.order], after)
            live = w.live_since()
            if t is not None and live is not None and not gave_up:
                if isinstance(w, PageWatcher):
                    reached.append(max(t, live))
                    pages.append(max(t, live))
                else:
                    reached.append(t)
            else:
                lagging.append({"id": w.id, "order": w.order, "max": w.prog.max,
                                "live": live is not None, "gave_up": gave_up})
        return {"n": n, "done": not lagging, "t": max(reached) if reached else None,
                "t_pages": max(pages) if pages else None,
                "lagging": lagging[:5], "n_lagging": len(lagging),
                "visibility": {p.id: p.visibility for p in self.pages.values()}}

    async def close(self):
        for w in self.ws.values():
            w.stopped = True
            w.unstalled.set()
        socks = [w.ws for w in self.ws.values() if w.ws is not None and w.connected]
        for ws in socks:
            ws.transport.abort()
        for w in self.ws.values():
            if w.task:
                w.task.cancel()
        await asyncio.gather(*(w.task for w in self.ws.values() if w.task),
                             return_exceptions=True)
        if self.browser:
            await self.browser.close()
            self.browser = None


def agent_main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--log", required=True)
    a = ap.parse_args(argv)
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything printed by accident goes to the log, not the protocol
    srv = AgentServer(a.seed, a.log)

    async def main():
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=16 << 20)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break  # the test went away
                req = json.loads(line)
                try:
                    res = await srv.handle(req)
                except Exception as e:
                    res = {"error": f"{e!r}\n{traceback.format_exc()}"}
                res["rid"] = req.get("rid")
                out.write(json.dumps(res) + "\n")
                out.flush()
                if req["cmd"] == "close":
                    break
        finally:
            await srv.close()

    def on_term(signum, frame):
        raise SystemExit(1)
    signal.signal(signal.SIGTERM, on_term)
    asyncio.run(main())


class Agent:
    """The test's handle on an agent process (optionally inside a network namespace)."""

    def __init__(self, suite, name, prefix=()):
        self.s = suite
        self.name = name
        self.prefix = list(prefix)
        self.proc = None
        self.rid = 0
        self.log = os.path.join(suite.log_dir, f"agent-{name}.log")
        self.lock = asyncio.Lock()

    async def start(self):
        argv = self.prefix + [sys.executable, os.path.abspath(__file__), "agent",
                              "--seed", str(self.s.seed), "--log", self.log]
        logf = open(self.log, "ab")
        parent = os.getpid()
        self.proc = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=logf,
            limit=64 << 20, start_new_session=True, preexec_fn=h._child_preexec(parent))
        logf.close()
        self.s.record_pid(self.proc.pid, f"agent-{self.name}")
        return self

    async def call(self, cmd, timeout=60, **kw):
        async with self.lock:
            self.rid += 1
            kw.update(cmd=cmd, rid=self.rid)
            if self.proc.returncode is not None:
                raise TestFailure(f"agent {self.name} exited ({self.proc.returncode}):\n"
                                  f"{h.tail(self.log)}")
            self.proc.stdin.write((json.dumps(kw) + "\n").encode())
            await self.proc.stdin.drain()
            try:
                line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            except asyncio.TimeoutError:
                raise TestFailure(f"agent {self.name}: no answer to {cmd} within {timeout} s:\n"
                                  f"{h.tail(self.log)}")
            if not line:
                raise TestFailure(f"agent {self.name} died during {cmd}:\n{h.tail(self.log)}")
            res = json.loads(line)
            if "error" in res:
                raise TestFailure(f"agent {self.name}: {cmd}: {res['error']}")
            return res

    async def ws(self, specs):
        return await self.call("ws", specs=specs)

    async def page(self, spec):
        r = await self.call("page", spec=spec, timeout=90)
        self.s.record_pid(r["chromium_pid"], f"chromium-{self.name}")
        return r

    async def close(self):
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            await self.call("close", timeout=30)
            await asyncio.wait_for(self.proc.wait(), 15)
        except (TestFailure, asyncio.TimeoutError, OSError):
            pass
        self.kill()

    def kill(self):
        if self.proc is not None and self.proc.returncode is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass


# --- the invariants -----------------------------------------------------------------------

def truth_of(suite, gen):
    """{order: {"entries": {cursor: bearing}, "final": {...}, "applied_t": {cursor: t}}}
    from the generator's answers and Redis (the log and the state: the source of truth)."""
    out = {}
    for o in gen.orders:
        entries, applied_t = {}, {}
        for p in gen.snapshot():
            if p.order == o and p.result == "applied" and p.cursor:
                entries[p.cursor] = p.bearing
                applied_t[p.cursor] = p.t_done
        key = f"trk:{{{o}}}"
        lines = suite.redis.cli("XRANGE", f"{key}:log", "-", "+").splitlines()
        if len(lines) % 3:
            raise TestFailure(f"XRANGE {key}:log: unexpected output {lines[:6]!r}")
        for i in range(0, len(lines), 3):
            frame = json.loads(lines[i + 2])
            u = frame.get("update") or {}
            entries[lines[i]] = any(k in u for k in BEARING)
        state = suite.redis.cli("HGET", f"{key}:state", "state")
        cursor = suite.redis.cli("HGET", f"{key}:state", "cursor") or None
        st = json.loads(state) if state else {}
        loc = st.get("location")
        out[o] = {"entries": entries, "applied_t": applied_t,
                  "final": {"cursor": cursor, "status": st.get("status"),
                            "loc": (loc["lat"], loc["lng"], loc["ts"]) if loc else None}}
    return out


def check_watcher(w, truth, ck, until=None):
    """Every invariant of one watcher's record; failures go to ck (a harness.Checks),
    at most a few per kind.  until: cursor-checks stop at this wall time (None: all)."""
    wid = f"{w['kind']} {w['id']} ({w['order']})"
    T = truth[w["order"]]
    fails = {}

    def fail(kind, msg):
        n = fails.get(kind, 0)
        fails[kind] = n + 1
        if n < 3:
            ck(False, f"{wid}: {msg}")

    last = None
    seen = set()
    shown = None
    stream = []  # every frame in order, for the skip check
    for ci, c in enumerate(w["conns"]):
        fr = c["frames"]
        since = c.get("since")
        if since is None:
            if fr and fr[0][F_TYPE] != "snapshot":
                fail("first", f"connection {ci} (no since) began with {fr[0][F_TYPE]}, not a snapshot")
        elif fr or c["t_open"]:
            first = fr[0] if fr else None
            if first is not None and first[F_TYPE] == "snapshot" and not first[F_RESET]:
                fail("ignored", f"connection {ci} asked ?since={since} "
                                f"({'long' if w.get('long_token') or w['kind'] == 'page' else 'short'}"
                                f" token, {w.get('style', 'token_first')}) and got a plain snapshot:"
                                f" the resume was ignored")
            elif first is None or first[F_TYPE] != "snapshot":
                n, lastrep, done = 0, None, False
                for f in fr:
                    if f[F_TYPE] == "update":
                        n += 1
                        lastrep = f[F_CUR]
                    elif f[F_TYPE] == "resumed":
                        want = lastrep or since
                        if f[F_CUR] != want or f[F_REPLAYED] != n:
                            fail("resumed", f"connection {ci}: resumed {f[F_CUR]} replayed="
                                            f"{f[F_REPLAYED]} after {n} replayed frames "
                                            f"(want cursor {want}, replayed {n})")
                        done = True
                        break
                    else:
                        fail("resumed", f"connection {ci}: a {f[F_TYPE]} frame inside the replay")
                        break
                if not done and c["t_close"] is None:
                    fail("resumed", f"connection {ci} (?since={since}) is open with {n} frames "
                                    f"and no resumed frame: the client cannot know it is live")
        for f in fr:
            stream.append(f)
            if f[F_ORDER] != w["order"]:
                fail("order", f"a frame for order {f[F_ORDER]}")
            typ = f[F_TYPE]
            if typ == "update":
                c_ = cur(f[F_CUR])
                if (w["order"], f[F_CUR]) in seen:
                    fail("twice", f"update {f[F_CUR]} arrived twice")
                elif last is not None and c_ <= last:
                    fail("order", f"update {f[F_CUR]} after {last}: the cursor went back")
                seen.add((w["order"], f[F_CUR]))
                last = c_ if last is None else max(last, c_)
            elif typ == "snapshot":
                if f[F_CUR]:
                    c_ = cur(f[F_CUR])
                    if last is not None and c_ < last and not f[F_RESET]:
                        fail("order", f"snapshot {f[F_CUR]} after {last}: the cursor went back")
                    last = c_ if f[F_RESET] or last is None else max(last, c_)
                elif f[F_RESET]:
                    last = None
            elif typ not in ("resumed",):
                fail("type", f"unexpected frame {typ}")
            if f[F_LOCTS] is not None:
                if shown is not None and f[F_LOCTS] < shown:
                    fail("older", f"frame {typ} {f[F_CUR]} carries a location of ts {f[F_LOCTS]}"
                                  f" after one of ts {shown} was shown")
                shown = f[F_LOCTS] if shown is None else max(shown, f[F_LOCTS])
    if w["kind"] == "page":
        # A resume is the page's signal that it is live and gapless: Live within 1 s of the
        # resumed frame, even when nothing was replayed (bug 3 of issue 13).
        for ci, c in enumerate(w["conns"]):
            res = next((f for f in c["frames"] if f[F_TYPE] == "resumed"), None)
            if res is None or not c["t_open"]:
                continue
            live = [st[0] for st in w["states"] if st[1] == "live"
                    and c["t_open"] - 0.05 <= st[0] <= res[F_T] + 1.0]
            if not live:
                fail("live", f"connection {ci}: not Live within 1 s of its resumed frame "
                             f"(replayed={res[F_REPLAYED]})")
        shown = None
        for e in w["events"]:
            if e[2] is None:
                continue
            if shown is not None and e[2] < shown:
                fail("older", f"the page showed a location of ts {e[2]} after one of ts {shown}")
            shown = e[2] if shown is None else max(shown, e[2])
        shown = None
        for s_ in w["samples"]:
            if s_[4] is None:
                continue
            if shown is not None and s_[4] < shown:
                fail("older", f"a sample of the page shows a location of ts {s_[4]} after {shown}")
            shown = s_[4] if shown is None else max(shown, s_[4])
    # Skips: an applied update with a status/eta/courier/places part that the watcher
    # passed without receiving it, with no snapshot in between that holds it.
    pos = []
    for i, f in enumerate(stream):
        if f[F_TYPE] in ("update", "snapshot", "resumed") and f[F_CUR]:
            pos.append((cur(f[F_CUR]), i))
    for cursor, bearing in sorted(T["entries"].items(), key=lambda kv: cur(kv[0])):
        if not bearing or (w["order"], cursor) in seen:
            continue
        ct = cur(cursor)
        passed = next((i for c_, i in pos if c_ >= ct), None)
        if passed is None:
            continue  # never got that far: the final check says so
        f = stream[passed]
        if f[F_TYPE] == "snapshot":
            continue  # the snapshot's state holds it
        covered = False
        for j in range(passed - 1, -1, -1):
            g = stream[j]
            if g[F_TYPE] == "snapshot" and g[F_RESET]:
                covered = True  # Redis lost it; the reset snapshot replaced it
                break
            if g[F_TYPE] in ("update", "snapshot") and g[F_CUR] and cur(g[F_CUR]) < ct:
                break
        if not covered:
            fail("skipped", f"update {cursor} (a status/eta/courier/places part) was skipped: "
                            f"the watcher went on to {f[F_TYPE]} {f[F_CUR]} without it")
    # The end: the order's final state.
    fin, want = w["final"], T["final"]
    if fin["cursor"] != want["cursor"]:
        fail("final", f"ends on cursor {fin['cursor']}, the order's is {want['cursor']}")
    if fin["status"] != want["status"]:
        fail("final", f"ends on status {fin['status']}, the order's is {want['status']}")
    if want["loc"] is not None and tuple(fin["loc"] or ()) != tuple(want["loc"]):
        fail("final", f"ends on location {fin['loc']}, the order's is {want['loc']}")
    if w["kind"] == "page":
        dom = w["dom"] or {}
        if dom.get("status") != want["status"]:
            fail("final", f"the page says status {dom.get('status')}, the order's is {want['status']}")
        if dom.get("conn") not in ("live", "delivered"):
            fail("final", f"the page's connection shows {dom.get('conn')} {dom.get('conn_text')!r}")
        if want["status"] in TERMINAL and dom.get("courier"):
            fail("final", f"the page still draws the courier at {dom['courier']} after "
                          f"{want['status']}")
        errs = [e for e in w.get("errors", []) if "WebSocket" not in str(e[1])
                and "ERR_" not in str(e[1])]
        if errs:
            fail("errors", f"the page logged errors: {errs[:3]}")
    if w.get("gave_up"):
        fail("gave_up", f"stopped reconnecting: {w['gave_up']}")
    return sum(fails.values())


# --- the suite ------------------------------------------------------------------------------

class Suite:
    """One fault test's world; see the module's doc."""

    def __init__(self, args, name):
        self.args = args
        self.name = name
        self.seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)
        self.rng = random.Random(self.seed)
        self.log_dir = os.path.join(args.run_dir, f"truth.{name}")
        shutil.rmtree(self.log_dir, ignore_errors=True)
        os.makedirs(self.log_dir, exist_ok=True)
        self.sock_dir = tempfile.mkdtemp(prefix="tg-truth-")
        self.key_file = self._secret("ingest.keys", f"# truth suite\n{h.INGEST_KEY}\n")
        self.token_file = self._secret("k1.secret", TOKEN_SECRET + "\n")
        self.uber_file = self._secret("uber_direct.secret", UBER_SECRET + "\n")
        self.redis = h.Redis(self.sock_dir, self.log_dir)
        self.nodes = []
        self.agents = []
        self.gens = []
        self.netns = None
        self.haproxy = None
        self.ck = h.Checks()
        self.results = []
        self.pidfile = os.path.join(args.run_dir, "pids")
        self.asan = self._is_asan(args.trackgated)
        self.scale = 2.0 if self.asan else 1.0
        log(f"truth.{name}: seed {self.seed}{' (ASan build)' if self.asan else ''}; "
            f"logs in {self.log_dir}")

    @staticmethod
    def _is_asan(path):
        try:
            with open(path, "rb") as f:
                return b"__asan_init" in f.read()
        except OSError:
            return False

    def _secret(self, name, text):
        p = os.path.join(self.log_dir, name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, 0o600)
        return p

    def record_pid(self, pid, name):
        try:
            with open(self.pidfile, "a") as f:
                f.write(f"{pid} {h._proc_starttime(pid)} {name} {sys.argv[0]}\n")
        except OSError:
            pass

    def node(self, name, host="127.0.0.1", extra=()):
        n = Node(self, name, host, extra)
        self.nodes.append(n)
        return n

    async def agent(self, name="watchers", netns=None):
        a = Agent(self, name, netns.prefix() if netns else ())
        self.agents.append(a)
        return await a.start()

    def generator(self, host, port, orders, **kw):
        g = Generator(self, host, port, orders, **kw)
        self.gens.append(g)
        return g

    def orders(self, n, tag=None):
        return [f"tr-{tag or self.name.replace('_', '-')}-{os.getpid()}-{i}" for i in range(n)]

    # -- watchers
    @staticmethod
    def ws_specs(node_ws, orders, per_order, prefix="w", ping=None, local_addrs=None):
        """per_order websocket clients per order, mixing short and long tokens and the
        order of ?token and ?since: [short token-first, long token-first, long since-first,
        short since-first, ...]."""
        specs = []
        kinds = [(False, "token_first"), (True, "token_first"), (True, "since_first"),
                 (False, "since_first")]
        toks = {}
        for o in orders:
            toks[(o, False)] = mint(o)
            toks[(o, True)] = mint(o, long=True)
        i = 0
        for k in range(per_order):
            for o in orders:
                long_, style = kinds[k % len(kinds)]
                spec = {"id": f"{prefix}{i}", "order": o, "url": node_ws(o),
                        "token": toks[(o, long_)], "style": style, "ping": ping}
                if local_addrs:
                    spec["local_addr"] = local_addrs[i % len(local_addrs)]
                specs.append(spec)
                i += 1
        return specs

    @staticmethod
    def page_spec(base_url, order, pid):
        return {"id": pid, "order": order,
                "url": f"{base_url}/t/{order}?token={mint(order, long=True)}"}

    async def populate(self, agent, base_url, ws_of, orders, pages=1, per_order=4, ping=None,
                       local_addrs=None, batch=200):
        """Opens `pages` tracking pages (one per order, from the first) and per_order
        websocket clients per order, in batches that each wait for their snapshots."""
        for i, o in enumerate(orders[:pages]):
            await agent.page(self.page_spec(base_url, o, f"page{i}"))
        specs = self.ws_specs(ws_of, orders, per_order, ping=ping, local_addrs=local_addrs)
        for b in range(0, len(specs), batch):
            part = specs[b:b + batch]
            await agent.ws(part)
            ids = [sp["id"] for sp in part]
            deadline = time.monotonic() + 60 * self.scale
            while True:
                r = await agent.call("ready", ids=ids)
                if r["ready"] == len(ids):
                    break
                if time.monotonic() >= deadline:
                    raise TestFailure(f"{len(ids) - r['ready']} of {len(ids)} websocket clients "
                                      f"got no snapshot within 60 s: {r['sample']}")
                await asyncio.sleep(0.05)
        log(f"{pages} page(s) and {len(specs)} websocket clients watch {len(orders)} orders")
        return specs

    # -- waiting
    async def converge(self, agent, gen, t_end, label=None, timeout=60, ids=None, orders=None):
        """Waits until every watcher shows an update applied after t_end (and, a page,
        is live); returns the ms from t_end to the last one; prints and records it
        when label is given."""
        timeout *= self.scale
        gen.kick()
        deadline = time.monotonic() + timeout
        targets = None
        last = None
        while True:
            if targets is None:
                targets = gen.first_applied_after(t_end, orders)
            if targets is not None:
                last = await agent.call("progress", targets=targets, ids=ids)
                if last["done"]:
                    break
            if gen.error:
                raise TestFailure(f"the generator failed: {gen.error!r}")
            self.assert_alive()
            if time.monotonic() >= deadline:
                raise TestFailure(
                    f"{label or 'start'}: not every watcher converged within {timeout:.0f} s "
                    f"(targets {targets}; {last and last['n_lagging']} lagging, e.g. "
                    f"{last and last['lagging']})")
            await asyncio.sleep(0.05)
        ms = max(0, int(round((last["t"] - t_end) * 1000)))
        sent = {(p.order, p.cursor): p.t_sent for p in gen.snapshot()}
        lag = max(sent.get((o, c), t_end) - t_end for o, c in targets.items())
        if label:
            page_ms = (max(0, int(round((last["t_pages"] - t_end) * 1000)))
                       if last.get("t_pages") else None)
            print(f"truth: {label} converged in {ms} ms (watchers={last['n']}; the pages in "
                  f"{page_ms} ms; the updates waited for were sent at most "
                  f"{int(lag * 1000)} ms after the fault's end)", flush=True)
            self.results.append({"fault": label, "ms": ms, "watchers": last["n"],
                                 "pages_ms": page_ms, "target_sent_ms": int(lag * 1000)})
        return ms

    def assert_alive(self):
        """Fails at once when a node, redis-server or haproxy the test did not stop died."""
        for n in self.nodes:
            if n.proc is not None and not n.stopped and n.proc.poll() is not None:
                hint = (" - the test did not kill it: a SIGKILL from outside (a `pkill "
                        "trackgated` or the like on this machine) or the OOM killer"
                        if n.proc.returncode == -signal.SIGKILL else "")
                raise TestFailure(f"trackgated {n.name} died (exit status {n.proc.returncode})"
                                  f"{hint}:\n{h.tail(n.log, 30)}")
        if self.haproxy and self.haproxy.proc and self.haproxy.proc.poll() is not None:
            raise TestFailure(f"haproxy died (exit status {self.haproxy.proc.returncode})")

    async def stream(self, gen, rounds=10, timeout=30):
        """Waits until the generator answered `rounds` more updates of every order."""
        want = gen.count() + rounds * len(gen.orders)
        deadline = time.monotonic() + timeout * self.scale
        while gen.count() < want and not gen.error:
            self.assert_alive()
            if time.monotonic() >= deadline:
                raise TestFailure(f"the generator answered {gen.count()} of {want} updates "
                                  f"within {timeout * self.scale:.0f} s")
            await asyncio.sleep(0.02)

    async def converge_to(self, agent, targets, after=None, timeout=60):
        """Waits until every watcher of these orders got a frame at or past its target
        (at or after wall time `after`, when given) and is connected (a page: live)."""
        deadline = time.monotonic() + timeout * self.scale
        while True:
            r = await agent.call("progress", targets=targets, after=after)
            if r["done"]:
                return r
            self.assert_alive()
            if time.monotonic() >= deadline:
                raise TestFailure(f"not every watcher reached {targets} within "
                                  f"{timeout * self.scale:.0f} s: {r['n_lagging']} lagging, "
                                  f"e.g. {r['lagging']}")
            await asyncio.sleep(0.05)

    async def finish(self, agent, gen, extra_checks=None):
        """Stops the generator, posts `delivered` for every order, waits for every watcher
        to end on it, dumps the watchers and checks every invariant.  Returns the dump."""
        await asyncio.to_thread(gen.stop)
        await asyncio.to_thread(gen.post_final)
        timeout = 60 * self.scale
        deadline = time.monotonic() + timeout
        while True:
            r = await agent.call("progress", targets=gen.final)
            if r["done"]:
                break
            if time.monotonic() >= deadline:
                self.ck(False, f"not every watcher reached the final cursors {gen.final} within "
                               f"{timeout:.0f} s: {r['n_lagging']} lagging, e.g. {r['lagging']}")
                break
            await asyncio.sleep(0.05)
        # The page renders on the same event; its DOM is read by the dump.
        path = os.path.join(self.log_dir, f"dump-{agent.name}.json")
        await agent.call("dump", path=path, timeout=120,
                         final={o: "delivered" for o in gen.orders})
        with open(path) as f:
            dump = json.load(f)
        truth = await asyncio.to_thread(truth_of, self, gen)
        self.check_posts(gen)
        bad = 0
        for w in dump["watchers"]:
            bad += 1 if check_watcher(w, truth, self.ck) else 0
        frames = sum(len(c["frames"]) for w in dump["watchers"] for c in w["conns"])
        log(f"checked {len(dump['watchers'])} watchers ({frames} frames, "
            f"{sum(len(t['entries']) for t in truth.values())} logged updates): "
            f"{bad} with failures")
        return dump, truth

    def check_posts(self, gen):
        posts = gen.snapshot()
        by = {}
        for p in posts:
            by.setdefault((p.kind, p.result), 0)
            by[(p.kind, p.result)] += 1
        log("generator: " + ", ".join(f"{k}/{r}={n}" for (k, r), n in sorted(
            by.items(), key=lambda kv: (kv[0][0], str(kv[0][1])))))
        for p in posts:
            if p.result == "failed":
                self.ck(False, f"a {p.kind} update of {p.order} could not be posted within "
                               f"{gen.retry_for} s")
                break
        if gen.inject:
            for p in posts:
                if p.kind == "stale" and p.result not in ("stale",) and p.tries == 1:
                    self.ck(False, f"a stale fix of {p.order} answered {p.result}")
                    break

    def write_results(self):
        path = self.args.results
        if not path:
            return
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path + ".lock", "w") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)
            try:
                with open(path) as f:
                    data = json.load(f)
            except (OSError, ValueError):
                data = {}
            data.setdefault("faults", {})
            for r in self.results:
                r = dict(r, test=f"truth.{self.name}", seed=self.seed, asan=self.asan,
                         at=time.strftime("%Y-%m-%dT%H:%M:%S"))
                data["faults"][r["fault"]] = r
            with open(path + ".tmp", "w") as f:
                json.dump(data, f, indent=1, sort_keys=True)
            os.replace(path + ".tmp", path)

    def dump_logs(self):
        for n in self.nodes:
            rc = n.proc.poll() if n.proc else None
            print(f"----- tail of {n.log} ({'running' if rc is None else f'exit status {rc}'})"
                  f" -----\n{h.tail(n.log, 40)}")
        for a in self.agents:
            print(f"----- tail of {a.log} -----\n{h.tail(a.log, 30)}")
        if self.haproxy:
            print(f"----- tail of {self.haproxy.log} -----\n{h.tail(self.haproxy.log, 20)}")
        print(f"----- tail of {self.redis.log} -----\n{h.tail(self.redis.log, 10)}")

    async def close(self):
        for g in self.gens:
            g.stopping.set()
        for a in self.agents:
            await a.close()

    def cleanup(self):
        for g in self.gens:
            g.stopping.set()
            g.abort.set()
        for a in self.agents:
            a.kill()
        h.kill_all_children()
        if self.netns:
            self.netns.cleanup()
        if self.haproxy:
            self.haproxy.close()
        shutil.rmtree(self.sock_dir, ignore_errors=True)

    async def stop_nodes(self):
        """SIGTERM every node still running: each must exit 0 within 15 s (an ASan build
        reports leaks through its exit status)."""
        for n in self.nodes:
            if n.alive():
                n.sigterm()
                try:
                    rc, took = await asyncio.to_thread(n.wait_exit, 15 * self.scale)
                    self.ck(rc == 0, f"{n.name}: exit status {rc} after SIGTERM:\n{h.tail(n.log, 30)}")
                except TestFailure as e:
                    self.ck(False, str(e))


def parse_args(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--trackgated", required=True)
    ap.add_argument("--watch")
    ap.add_argument("--bench")
    ap.add_argument("--run-dir", default=None)
    ap.add_argument("--results", default=None, help="JSON file the convergence times go to")
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args(argv)
    if not a.run_dir:
        a.run_dir = tempfile.mkdtemp(prefix="tg-truth-run-")
    os.makedirs(a.run_dir, exist_ok=True)
    return a


def main(fault, name, budget=270):
    """Runs `await fault(suite)`; always cleans up; exits 0 on success, 1 on failure."""
    args = parse_args()
    h._pid_file = os.path.join(args.run_dir, "pids")
    h.install_signal_handlers()
    if h.websockets is None:
        print("FAIL: /usr/bin/python3 cannot import websockets (apt install python3-websockets)")
        sys.exit(1)
    t0 = time.monotonic()
    s = None
    ok = False
    atexit.register(lambda: s and s.cleanup())
    try:
        s = Suite(args, name)

        async def run():
            try:
                await asyncio.wait_for(fault(s), budget)
            finally:
                await s.close()
        asyncio.run(run())
        s.ck.done()
        ok = True
    except (Exception, h.Interrupted) as e:
        if isinstance(e, asyncio.TimeoutError):
            print(f"FAIL: truth.{name} did not finish within {budget} s")
        traceback.print_exc(file=sys.stdout)
        if s is not None:
            s.dump_logs()
    finally:
        if s is not None:
            try:
                s.write_results()
            except Exception:
                traceback.print_exc(file=sys.stdout)
            s.cleanup()
    print(f"{'PASS' if ok else 'FAIL'} truth.{name} ({time.monotonic() - t0:.1f} s, "
          f"seed {s.seed if s else '?'}; logs in {s.log_dir if s else '?'})", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "agent":
        agent_main(sys.argv[2:])
    else:
        print("usage: truth.py agent --seed N --log FILE  (the fault scripts import this module)")
        sys.exit(2)
