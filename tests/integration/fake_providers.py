#!/usr/bin/python3
"""fake_providers.py - Uber Direct, DoorDash Drive and Onfleet's APIs as poll mode sees them,
for the poll integration tests (test_poll_*.py) and the demo (tools/fake-provider).

One threaded HTTP/1.1 server (keep-alive, 127.0.0.1, a port the OS picks) answers all three
providers' paths, each as the provider documents it and as gateway/poll/poll_auth.h and
poll_parse.c send and read it:

  Uber Direct     POST /oauth/v2/token (form grant_type=client_credentials, client_id,
                  client_secret, scope=eats.deliveries): {"access_token","expires_in",
                  "token_type":"Bearer","scope"}; wrong credentials 401 {"error":"invalid_client"}.
                  GET /v1/customers/{customer_id}/deliveries/{delivery_id} with
                  "Authorization: Bearer TOKEN" (a token it issued that has not expired,
                  else 401): the delivery object (status, courier{name,vehicle_type,
                  location{lat,lng}}, pickup/dropoff{location}, pickup_eta, dropoff_eta,
                  created, updated, ...).
  DoorDash Drive  GET /drive/v2/deliveries/{external_delivery_id} with "Authorization: Bearer
                  JWT": HS256 with the base64url-decoded signing secret, header dd-ver
                  DD-JWT-V1, claims aud "doordash", iss (developer id), kid (key id), iat,
                  exp (at most iat + 1800, not expired), verified with PyJWT; else 401.  The
                  delivery (delivery_status, dasher_location{lat,lng}, dasher_id,
                  dasher_name, pickup/dropoff_time_estimated, created_at, updated_at, ...).
  Onfleet         GET /api/v2/workers/{worker_id} with "Authorization: Basic base64(KEY:)"
                  (else 401): the worker (location [longitude, latitude], timeLastSeen, ...).
                  Onfleet's documented limit (20 requests a second per organisation, here a
                  sliding 1 s window over every request that arrives; configurable) answers
                  429 past it, with X-RateLimit-Limit / X-RateLimit-Remaining.

An answer's body depends only on the resource's state, so an unchanged resource answers the
same bytes (trackgated's body-hash event id then makes it a duplicate).

Test controls (all thread-safe):
  fake.set_state(provider, ref, lat=, lng=, status=, ts_ms=, ...)   what GET answers from now
  fake.fault(provider, kind, n=1, retry_after=, delay_s=, ref=)     the next n answers:
      kind 401 / 403 / 500 / any status, 429 (with Retry-After when retry_after is given),
      "delay" (answers after delay_s: longer than the client's timeout-ms), "malformed"
      (a 200 whose body is not JSON), "truncated" (a 200 with the first half of the JSON),
      "cut" (the connection closed halfway through the body its Content-Length announced),
      "disconnect" (the connection closed without an answer: note that curl silently
      retries a request whose reused connection closed before any byte came back).
      provider "uber_direct_token" queues faults for the token endpoint.
  fake.revoke_tokens()                      every Uber token issued so far stops working
  fake.log                                  one Req per request (monotonic times)
  fake.count(), requests(), max_in_window(), gaps_after(), expired_token_used(),
  fake.token_requests(), wait_count()
  write_poll_config(fake, dir, ...)         a trackgated --config with [poll.*] sections and
                                            the secret files they name

Run alone:
  fake_providers.py --selftest                 checks the fakes with urllib, http.client, PyJWT
  fake_providers.py --demo --provider NAME [--port P] [--ref REF] [--secrets-dir DIR]
                                               one courier riding a short route in a loop
"""

import argparse
import base64
import binascii
import collections
import http.client
import http.server
import json
import os
import secrets
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

try:
    import jwt  # python3-jwt (PyJWT)
except ImportError:  # reported when DoorDash is used
    jwt = None

PROVIDERS = ("uber_direct", "doordash_drive", "onfleet")
TERMINAL = {"uber_direct": ("delivered", "canceled", "returned"),
            "doordash_drive": ("delivered", "cancelled", "returned")}
DOORDASH_JWT_TTL_MAX_S = 1800
ONFLEET_RATE_LIMIT = 20  # Onfleet: "no more than 20 requests per second" per organisation


def _rfc3339(ms, frac_digits=3):
    """An ISO-8601 UTC time with frac_digits decimals (Uber: ms; DoorDash: microseconds)."""
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000))
    frac = f"{ms % 1000:03d}" + "0" * (frac_digits - 3)
    return f"{base}.{frac}Z"


def _b64url_decode(text):
    """DoorDash's signing secrets are base64url; standard base64 and '=' padding are taken too."""
    t = text.strip().replace("+", "-").replace("/", "_").rstrip("=")
    return base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))


class Req:
    """One request the fake got: when (monotonic), for whom, and what it answered."""

    __slots__ = ("t", "t_done", "provider", "kind", "method", "path", "ref", "auth_ok", "token",
                 "token_expired", "status", "fault", "detail")

    def __init__(self, provider, kind, method, path, ref):
        self.t = time.monotonic()   # arrival (the request's head was read)
        self.t_done = None          # when the answer was written (or abandoned)
        self.provider = provider    # uber_direct, doordash_drive, onfleet, or None (unknown path)
        self.kind = kind            # "api" (a polled resource) or "token" (Uber's token endpoint)
        self.method = method
        self.path = path
        self.ref = ref              # the resource id in the path (unquoted)
        self.auth_ok = False        # the credentials were right (and a token had not expired)
        self.token = None           # the bearer token or JWT sent, if any
        self.token_expired = False  # a token it issued (or a JWT) that had expired
        self.status = None          # the status answered; None: the connection was dropped
        self.fault = None           # the injected fault that shaped the answer, if any
        self.detail = ""            # why auth failed, or the DoorDash claims

    def __repr__(self):
        return (f"<{self.provider} {self.kind} {self.method} {self.path} t={self.t:.3f} "
                f"auth={'ok' if self.auth_ok else 'BAD'} status={self.status} "
                f"fault={self.fault}{' EXPIRED' if self.token_expired else ''}"
                f"{' ' + self.detail if self.detail and not self.auth_ok else ''}>")


class Fault:
    def __init__(self, kind, retry_after=None, delay_s=None, ref=None):
        self.kind = str(kind)
        self.retry_after = retry_after
        self.delay_s = delay_s
        self.ref = ref

    def __repr__(self):
        extra = f" retry_after={self.retry_after}" if self.retry_after is not None else ""
        extra += f" delay={self.delay_s}" if self.delay_s is not None else ""
        return f"{self.kind}{extra}"


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-providers/1"
    timeout = 60  # an idle keep-alive connection ends after a minute

    def log_message(self, fmt, *args):
        if self.server.fake.verbose:
            sys.stderr.write("fake: " + (fmt % args) + "\n")

    def setup(self):
        super().setup()
        self.server.fake._conn_opened(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.fake._conn_closed(self.connection)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def do_GET(self):
        self.server.fake._handle(self, "GET", b"")

    def do_POST(self):
        self.server.fake._handle(self, "POST", self._body())

    def _other(self):
        self._body()
        self.server.fake._handle(self, self.command, b"")

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _other

    def send_answer(self, status, body, headers=None, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()


def _json(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


class FakeProviders:
    """The three providers' APIs on one server.  Start it, point [poll.*] base-url (and Uber's
    token-url) at .base_url / .token_url, drive it with set_state() and fault(), read .log."""

    def __init__(self, uber_expires_in=2592000, onfleet_rate_limit=ONFLEET_RATE_LIMIT,
                 port=0, verbose=False):
        self.verbose = verbose
        self.lock = threading.RLock()
        self.closing = threading.Event()
        # Uber Direct: OAuth client credentials and the customer
        self.uber_client_id = "itest-uber-" + secrets.token_hex(4)
        self.uber_client_secret = secrets.token_urlsafe(24)
        self.uber_customer_id = "cus-" + secrets.token_hex(6)
        self.uber_scope = "eats.deliveries"
        self.uber_expires_in = uber_expires_in  # seconds, for tokens issued from now on
        self.tokens = {}                        # access token -> expiry (monotonic)
        self.token_log = []                     # (monotonic, token, expires_in) per issued token
        # DoorDash Drive: developer id, key id and the base64url signing secret
        self.dd_developer_id = secrets.token_hex(4) + "-dev-" + secrets.token_hex(4)
        self.dd_key_id = secrets.token_hex(4) + "-key-" + secrets.token_hex(4)
        self.dd_secret_bytes = secrets.token_bytes(32)
        self.dd_signing_secret = base64.urlsafe_b64encode(self.dd_secret_bytes).decode().rstrip("=")
        # Onfleet: the API key and the organisation's rate limit
        self.onfleet_api_key = secrets.token_hex(16)
        self.onfleet_rate_limit = onfleet_rate_limit
        self.onfleet_window_s = 1.0
        self._onfleet_times = collections.deque()
        # resources, faults, the request log
        self.resources = {p: {} for p in PROVIDERS}
        self.faults = collections.defaultdict(collections.deque)
        self.log = []
        self._conns = set()
        self.server = _Server(("127.0.0.1", port), _Handler)
        self.server.fake = self
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.token_url = f"{self.base_url}/oauth/v2/token"
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name="fake-providers")
        self._thread.start()

    # --- lifetime ------------------------------------------------------------------------

    def close(self):
        """Stops serving: wakes delayed answers, closes every open connection."""
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _conn_opened(self, conn):
        with self.lock:
            self._conns.add(conn)

    def _conn_closed(self, conn):
        with self.lock:
            self._conns.discard(conn)

    # --- resources -----------------------------------------------------------------------

    def set_state(self, provider, ref, lat=None, lng=None, status=None, ts_ms=None, **extra):
        """Sets what GET answers for the resource from now on.  Only the members given change;
        ts_ms (the answer's updated / updated_at / timeLastSeen) defaults to the wall clock,
        strictly after the last one; an explicit ts_ms may go back (a stale answer).
        lat=None with clear_location=True removes the position.  Returns the state."""
        check_provider(provider)
        with self.lock:
            now = int(time.time() * 1000)
            st = self.resources[provider].get(ref)
            if st is None:
                st = {"created_ms": now - 60000, "ts_ms": 0, "lat": None, "lng": None,
                      "status": {"uber_direct": "pickup", "doordash_drive": "enroute_to_pickup",
                                 "onfleet": None}[provider],
                      "name": "Cori R.", "vehicle": "car", "dasher_id": 1234567,
                      "pickup": (52.5219, 13.4132), "dropoff": (52.5301, 13.3850),
                      "eta_pickup_ms": None, "eta_dropoff_ms": None}
                self.resources[provider][ref] = st
            if extra.pop("clear_location", False):
                st["lat"] = st["lng"] = None
            if lat is not None:
                st["lat"], st["lng"] = float(lat), float(lng)
            if status is not None:
                st["status"] = status
            for k, v in extra.items():
                if k not in st:
                    raise KeyError(f"unknown state member {k!r}")
                st[k] = v
            st["ts_ms"] = ts_ms if ts_ms is not None else max(now, st["ts_ms"] + 1)
            if st["eta_dropoff_ms"] is None:
                st["eta_dropoff_ms"] = st["ts_ms"] + 15 * 60000
            return dict(st)

    def state(self, provider, ref):
        with self.lock:
            st = self.resources[provider].get(ref)
            return dict(st) if st else None

    def body(self, provider, ref):
        """The JSON body GET answers now for the resource (None: unknown, 404)."""
        with self.lock:
            st = self.resources[provider].get(ref)
            if st is None:
                return None
            st = dict(st)
        return _json({"uber_direct": self._uber_delivery, "doordash_drive": self._dd_delivery,
                      "onfleet": self._onfleet_worker}[provider](ref, st))

    def _uber_delivery(self, ref, st):
        has_pos = st["lat"] is not None
        d = {"complete": st["status"] in TERMINAL["uber_direct"],
             "courier": None,
             "courier_imminent": False,
             "created": _rfc3339(st["created_ms"]),
             "currency": "eur",
             "dropoff": {"address": "Invalidenstrasse 117, 10115 Berlin, DE",
                         "location": {"lat": st["dropoff"][0], "lng": st["dropoff"][1]},
                         "name": "Test Customer"},
             "dropoff_eta": _rfc3339(st["eta_dropoff_ms"]),
             "external_id": "ext-" + ref,
             "fee": 699,
             "id": ref,
             "kind": "delivery",
             "live_mode": False,
             "pickup": {"address": "Karl-Liebknecht-Str. 13, 10178 Berlin, DE",
                        "location": {"lat": st["pickup"][0], "lng": st["pickup"][1]},
                        "name": "Test Store"},
             "status": st["status"],
             "tracking_url": f"https://www.ubereats.com/orders/{ref}",
             "updated": _rfc3339(st["ts_ms"])}
        if st["eta_pickup_ms"] is not None:
            d["pickup_eta"] = _rfc3339(st["eta_pickup_ms"])
        if st["status"] != "pending":
            d["courier"] = {"img_href": "https://d1w2poirtb3as9.cloudfront.net/default.jpeg",
                            "name": st["name"], "phone_number": "+11111111111",
                            "rating": "5.00", "vehicle_type": st["vehicle"]}
            if has_pos:
                d["courier"]["location"] = {"lat": st["lat"], "lng": st["lng"]}
        return d

    def _dd_delivery(self, ref, st):
        d = {"external_delivery_id": ref,
             "delivery_status": st["status"],
             "fee": 975, "currency": "EUR", "tip": 300, "order_value": 1999,
             "pickup_address": "Karl-Liebknecht-Str. 13, 10178 Berlin",
             "pickup_business_name": "Test Store",
             "pickup_phone_number": "+15555551234",
             "dropoff_address": "Invalidenstrasse 117, 10115 Berlin",
             "dropoff_phone_number": "+15555555678",
             "dropoff_time_estimated": _rfc3339(st["eta_dropoff_ms"], 6),
             "support_reference": "1343593",
             "tracking_url": f"https://doordash.com/drive/portal/track/{ref}",
             "contains_alcohol": False,
             "created_at": _rfc3339(st["created_ms"], 6),
             "updated_at": _rfc3339(st["ts_ms"], 6)}
        if st["eta_pickup_ms"] is not None:
            d["pickup_time_estimated"] = _rfc3339(st["eta_pickup_ms"], 6)
        if st["status"] not in ("created", "quote"):
            d["dasher_id"] = st["dasher_id"]
            d["dasher_name"] = st["name"]
            d["dasher_phone_number"] = "+15555550000"
            if st["lat"] is not None:
                d["dasher_location"] = {"lat": st["lat"], "lng": st["lng"]}
        return d

    def _onfleet_worker(self, ref, st):
        return {"id": ref,
                "timeCreated": st["created_ms"],
                "timeLastModified": st["ts_ms"],
                "organization": "yAM*fDkztrT3gUcz9mNDgNOL",
                "name": st["name"], "displayName": st["name"],
                "phone": "+14155552299",
                "activeTask": None, "tasks": [],
                "onDuty": True, "isResponding": True,
                "timeLastSeen": st["ts_ms"],
                "delayTime": None,
                "teams": ["9dyuPqHt6kDK5JKHFhE0xihh"],
                "metadata": [],
                "vehicle": {"id": "tN1HjcvygQWvz5FRR1JAxwL8", "type": "CAR",
                            "description": "Test car", "licensePlate": "B-TG-1",
                            "color": "purple"},
                "location": [st["lng"], st["lat"]] if st["lat"] is not None else None}

    # --- faults and tokens ---------------------------------------------------------------

    def fault(self, provider, kind, n=1, retry_after=None, delay_s=None, ref=None):
        """Queues n faulty answers for provider's next requests (of ref only, when given)."""
        if provider != "uber_direct_token":
            check_provider(provider)
        if str(kind) == "delay" and delay_s is None:
            raise ValueError("a delay fault needs delay_s")
        with self.lock:
            for _ in range(n):
                self.faults[provider].append(Fault(kind, retry_after, delay_s, ref))

    def pending_faults(self, provider):
        with self.lock:
            return len(self.faults[provider])

    def _take_fault(self, provider, ref):
        with self.lock:
            q = self.faults[provider]
            for i, f in enumerate(q):
                if f.ref is None or f.ref == ref:
                    del q[i]
                    return f
        return None

    def revoke_tokens(self):
        """Every Uber token issued so far answers 401 from now on (as if Uber revoked them)."""
        with self.lock:
            self.tokens.clear()

    # --- the request log -----------------------------------------------------------------

    def requests(self, provider=None, ref=None, kind="api", since=None, until=None, status=None):
        """The logged requests that match (kind None: every kind), in arrival order."""
        with self.lock:
            out = list(self.log)
        return [r for r in out
                if (provider is None or r.provider == provider) and (ref is None or r.ref == ref)
                and (kind is None or r.kind == kind) and (since is None or r.t >= since)
                and (until is None or r.t < until) and (status is None or r.status == status)]

    def count(self, provider=None, ref=None, kind="api", since=None, until=None, status=None):
        return len(self.requests(provider, ref, kind, since, until, status))

    def per_ref(self, provider, kind="api", since=None):
        """{ref: number of requests} for provider."""
        return dict(collections.Counter(r.ref for r in self.requests(provider, kind=kind,
                                                                      since=since)))

    def max_in_window(self, provider, window=1.0, kind="api", since=None, until=None):
        """The most requests to provider that arrived within any sliding window (seconds)."""
        times = [r.t for r in self.requests(provider, kind=kind, since=since, until=until)]
        best, j = 0, 0
        for i, t in enumerate(times):
            while t - times[j] >= window:
                j += 1
            best = max(best, i - j + 1)
        return best

    def gaps_after(self, provider, status=429, ref=None, kind="api"):
        """For each request answered status: (that request, seconds from its answer to the
        arrival of provider's next request (of ref, when given), or None when none came)."""
        reqs = self.requests(provider, ref, kind)
        out = []
        for i, r in enumerate(reqs):
            if r.status != status or r.t_done is None:
                continue
            nxt = next((q for q in reqs[i + 1:] if q.t >= r.t_done), None)
            out.append((r, None if nxt is None else nxt.t - r.t_done))
        return out

    def max_gap(self, provider, ref=None, since=None, until=None):
        """The longest time between consecutive requests (seconds; 0 with fewer than two)."""
        ts = [r.t for r in self.requests(provider, ref, since=since, until=until)]
        return max((b - a for a, b in zip(ts, ts[1:])), default=0.0)

    def expired_token_used(self, provider=None):
        """The API requests that carried an expired token (an issued Uber token past its
        expires_in, a DoorDash JWT past its exp)."""
        return [r for r in self.requests(provider) if r.token_expired]

    def bad_auth(self, provider=None, kind="api"):
        return [r for r in self.requests(provider, kind=kind) if not r.auth_ok]

    def token_requests(self, ok=None):
        """Uber token requests (ok True: answered 200; False: not; None: all)."""
        return [r for r in self.requests("uber_direct", kind="token")
                if ok is None or (r.status == 200) == ok]

    def wait_count(self, n, provider=None, ref=None, kind="api", since=None, timeout=10.0,
                   what=None, **kw):
        """Waits until count(...) >= n; returns the count or raises AssertionError."""
        deadline = time.monotonic() + timeout
        while True:
            c = self.count(provider, ref, kind, since, **kw)
            if c >= n:
                return c
            if time.monotonic() >= deadline:
                what = what or f"{n} {kind} requests to {provider} {ref or ''}"
                raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what} (got "
                                     f"{c}; last requests: {self.requests(kind=None)[-8:]!r})")
            time.sleep(0.02)

    # --- answering -----------------------------------------------------------------------

    def _route(self, method, path):
        """(provider, kind, ref) for a request path; (None, None, None) when unknown."""
        parts = path.split("?", 1)[0].split("/")
        if method == "POST" and path.split("?", 1)[0] == "/oauth/v2/token":
            return "uber_direct", "token", None
        if len(parts) == 6 and parts[1:3] == ["v1", "customers"] and parts[4] == "deliveries":
            return "uber_direct", "api", urllib.parse.unquote(parts[5])
        if len(parts) == 5 and parts[1:4] == ["drive", "v2", "deliveries"]:
            return "doordash_drive", "api", urllib.parse.unquote(parts[4])
        if len(parts) == 5 and parts[1:4] == ["api", "v2", "workers"]:
            return "onfleet", "api", urllib.parse.unquote(parts[4])
        return None, None, None

    def _handle(self, h, method, body):
        provider, kind, ref = self._route(method, h.path)
        r = Req(provider, kind, method, h.path, ref)
        with self.lock:
            self.log.append(r)
        try:
            if provider is None:
                self._answer(h, r, 404, _json({"code": "not_found", "message": "no such path"}))
            elif kind == "token":
                self._token(h, r, body)
            elif method != "GET":
                self._answer(h, r, 405, _json({"code": "method_not_allowed"}), {"Allow": "GET"})
            else:
                self._api(h, r)
        except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
            h.close_connection = True
        finally:
            if r.t_done is None:
                r.t_done = time.monotonic()

    def _answer(self, h, r, status, body, headers=None, content_type="application/json"):
        r.status = status
        try:
            h.send_answer(status, body, headers, content_type)
        finally:
            r.t_done = time.monotonic()

    def _token(self, h, r, body):
        ctype = (h.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        form = {}
        if ctype == "application/x-www-form-urlencoded":
            form = {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace"),
                                                               keep_blank_values=True).items()}
        r.detail = f"content-type={ctype} grant_type={form.get('grant_type')} scope={form.get('scope')}"
        if form.get("client_id") != self.uber_client_id or \
                form.get("client_secret") != self.uber_client_secret:
            r.detail += " (wrong client_id or client_secret)"
            return self._answer(h, r, 401, _json({"error": "invalid_client"}))
        if form.get("grant_type") != "client_credentials":
            return self._answer(h, r, 400, _json({"error": "unsupported_grant_type"}))
        if form.get("scope") != self.uber_scope:
            return self._answer(h, r, 400, _json({"error": "invalid_scope"}))
        r.auth_ok = True
        f = self._take_fault("uber_direct_token", None)
        if f is not None and self._fault_answer(h, r, f, None):
            return
        token = "IA." + secrets.token_urlsafe(96)
        with self.lock:
            expires_in = int(self.uber_expires_in)
            self.tokens[token] = time.monotonic() + expires_in
            self.token_log.append((time.monotonic(), token, expires_in))
        r.token = token
        self._answer(h, r, 200, _json({"access_token": token, "expires_in": expires_in,
                                       "token_type": "Bearer", "scope": self.uber_scope}))

    def _check_auth(self, h, r):
        """Fills r.auth_ok / token / token_expired / detail; returns the 401 body or None."""
        auth = h.headers.get("Authorization") or ""
        scheme, _, cred = auth.partition(" ")
        cred = cred.strip()
        if r.provider == "onfleet":
            if scheme.lower() == "basic":
                try:
                    user, sep, password = base64.b64decode(cred, validate=True).decode().partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    user, sep, password = "", "", ""
                if sep and user == self.onfleet_api_key and password == "":
                    r.auth_ok = True
                    return None
                r.detail = "wrong Basic credentials (want base64(KEY:))"
            else:
                r.detail = f"no Basic credentials: {auth[:40]!r}"
            return _json({"code": "InvalidCredentials",
                          "message": {"error": 1102, "message": "The API key is invalid.",
                                      "cause": None, "request": secrets.token_hex(8)}})
        if scheme.lower() != "bearer" or not cred:
            r.detail = f"no Bearer credentials: {auth[:40]!r}"
            return self._unauthorized_body(r.provider)
        r.token = cred
        if r.provider == "uber_direct":
            with self.lock:
                expiry = self.tokens.get(cred)
            if expiry is None:
                r.detail = "a token it did not issue (or revoked)"
            elif time.monotonic() >= expiry:
                r.token_expired = True
                r.detail = f"a token expired {time.monotonic() - expiry:.3f} s ago"
            else:
                r.auth_ok = True
                return None
            return self._unauthorized_body(r.provider)
        # DoorDash Drive: the JWT as DoorDash documents it
        if jwt is None:
            r.detail = "PyJWT (python3-jwt) is not installed"
            return self._unauthorized_body(r.provider)
        try:
            header = jwt.get_unverified_header(cred)
            claims = jwt.decode(cred, self.dd_secret_bytes, algorithms=["HS256"],
                                audience="doordash", issuer=self.dd_developer_id,
                                options={"require": ["exp", "iat", "aud", "iss"]})
        except jwt.ExpiredSignatureError:
            r.token_expired = True
            r.detail = "an expired JWT"
            return self._unauthorized_body(r.provider)
        except jwt.PyJWTError as e:
            r.detail = f"JWT: {type(e).__name__}: {e}"
            return self._unauthorized_body(r.provider)
        problems = []
        if header.get("alg") != "HS256":
            problems.append(f"alg {header.get('alg')!r}")
        if header.get("dd-ver") != "DD-JWT-V1":
            problems.append(f"dd-ver {header.get('dd-ver')!r}")
        if claims.get("kid") != self.dd_key_id:
            problems.append(f"kid {claims.get('kid')!r}")
        if not isinstance(claims.get("iat"), int) or not isinstance(claims.get("exp"), int) or \
                claims["exp"] - claims["iat"] > DOORDASH_JWT_TTL_MAX_S:
            problems.append(f"exp - iat = {claims.get('exp', 0) - claims.get('iat', 0)} > 1800")
        r.detail = f"header={header} claims={claims}"
        if problems:
            r.detail = "JWT: " + ", ".join(problems) + " " + r.detail
            return self._unauthorized_body(r.provider)
        r.auth_ok = True
        return None

    @staticmethod
    def _unauthorized_body(provider):
        if provider == "uber_direct":
            return _json({"code": "unauthorized", "message": "Invalid OAuth 2.0 credentials provided."})
        return _json({"code": "authentication_error",
                      "message": "The [Authorization] header is missing or invalid"})

    def _onfleet_limit(self, r):
        """The rate limit headers; True in the second item when over the limit (429)."""
        with self.lock:
            now = r.t
            q = self._onfleet_times
            while q and now - q[0] >= self.onfleet_window_s:
                q.popleft()
            q.append(now)
            over = len(q) > self.onfleet_rate_limit
            remaining = max(0, self.onfleet_rate_limit - len(q))
        return {"X-RateLimit-Limit": str(self.onfleet_rate_limit),
                "X-RateLimit-Remaining": str(remaining)}, over

    def _api(self, h, r):
        unauthorized = self._check_auth(h, r)
        if unauthorized is not None:
            hdrs = {"WWW-Authenticate": "Basic realm=\"onfleet\""} if r.provider == "onfleet" else {}
            return self._answer(h, r, 401, unauthorized, hdrs)
        hdrs = {}
        if r.provider == "onfleet":
            hdrs, over = self._onfleet_limit(r)
            if over:
                r.fault = "rate_limit"
                return self._answer(h, r, 429, _json({"code": "TooManyRequests", "message": {
                    "error": 2300, "message": "You have exceeded your request rate limit."}}), hdrs)
        if r.provider == "uber_direct" and h.path.split("/")[3] != self.uber_customer_id:
            return self._answer(h, r, 404, _json({"code": "customer_not_found",
                                                  "message": "The customer does not exist."}))
        f = self._take_fault(r.provider, r.ref)
        if f is not None and self._fault_answer(h, r, f, hdrs):
            return
        body = self.body(r.provider, r.ref)
        if body is None:
            return self._answer(h, r, 404, _json(
                {"code": "ResourceNotFound" if r.provider == "onfleet" else "not_found",
                 "message": f"{r.ref} was not found"}), hdrs)
        self._answer(h, r, 200, body, hdrs)

    def _fault_answer(self, h, r, f, hdrs):
        """Answers as the fault says; False when the normal answer should follow (a delay)."""
        r.fault = repr(f)
        hdrs = dict(hdrs or {})
        if f.kind == "delay":
            self.closing.wait(f.delay_s)
            return False
        if f.kind == "disconnect":
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        if f.kind == "cut":
            whole = self.body(r.provider, r.ref) or b'{"id":"x"}'
            r.status = 200
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(whole)))
            h.end_headers()
            h.wfile.write(whole[:len(whole) // 2])
            h.wfile.flush()
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        if f.kind == "malformed":
            self._answer(h, r, 200, b'{"status": pickup, "courier": {"location": [}', hdrs)
            return True
        if f.kind == "truncated":
            whole = self.body(r.provider, r.ref) if r.kind == "api" else _json(
                {"access_token": "IA." + "x" * 40, "expires_in": 3600, "token_type": "Bearer"})
            whole = whole or b'{"id":"' + (r.ref or "x").encode() + b'","status":"pickup"}'
            self._answer(h, r, 200, whole[:len(whole) // 2], hdrs)
            return True
        status = int(f.kind)
        if status == 429 and f.retry_after is not None:
            hdrs["Retry-After"] = str(f.retry_after)
        self._answer(h, r, status, _json({"code": {401: "unauthorized", 403: "forbidden",
                                                    429: "rate_limit_exceeded"}.get(
                                                        status, "internal_server_error"),
                                          "message": f"injected fault {f!r}"}), hdrs)
        return True


def check_provider(provider):
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r} (one of {', '.join(PROVIDERS)})")


# --- trackgated's configuration ------------------------------------------------------------

def write_secret(path, text):
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    return path


def poll_sections(fake, directory, providers=PROVIDERS, common=None, per=None):
    """The [poll.*] sections (INI text) for fake, with their secret files written into
    directory.  common: keys for every section (e.g. {"interval-ms": 300}); per: {provider:
    {key: value}} overriding or adding keys (a value None drops the key)."""
    common = dict(common or {})
    per = per or {}
    out = []
    for p in providers:
        check_provider(p)
        keys = {"base-url": fake.base_url}
        if p == "uber_direct":
            keys.update({"token-url": fake.token_url, "client-id": fake.uber_client_id,
                         "client-secret-file": write_secret(os.path.join(directory, "uber.secret"),
                                                            fake.uber_client_secret),
                         "customer-id": fake.uber_customer_id, "scope": fake.uber_scope})
        elif p == "doordash_drive":
            keys.update({"developer-id": fake.dd_developer_id, "key-id": fake.dd_key_id,
                         "signing-secret-file": write_secret(
                             os.path.join(directory, "doordash.secret"), fake.dd_signing_secret)})
        else:
            keys["api-key-file"] = write_secret(os.path.join(directory, "onfleet.key"),
                                                fake.onfleet_api_key)
        keys.update(common)
        keys.update(per.get(p, {}))
        out.append(f"[poll.{p}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()
                                             if v is not None))
    return "\n".join(out)


def write_poll_config(fake, directory, providers=PROVIDERS, common=None, per=None, extra="",
                      name="poll.conf"):
    """Writes a trackgated --config file with poll_sections(...) (and extra INI text) into
    directory; returns its path."""
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write("# written by tests/integration/fake_providers.py\n")
        f.write(poll_sections(fake, directory, providers, common, per))
        if extra:
            f.write("\n" + extra)
    return path



# --- daemons of the poll tests: phases on one Redis, a second node ---------------------------

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "AddressSanitizer:DEADLYSIGNAL")


def sanitizer_lines(env):
    """This start's sanitizer reports (the log is appended to by every start)."""
    import harness as h
    text = h.log_since(env.daemon.log, env.daemon.log_offset)
    return [line for line in text.splitlines() if any(m in line for m in SANITIZER_MARKS)]


async def restart(env, fake, name, common, providers=("onfleet",)):
    """A fresh daemon on an emptied Redis, with [poll.*] sections of providers and common."""
    import asyncio
    if env.daemon.alive():
        await asyncio.to_thread(env.daemon.terminate)
    if env.redis.proc is None:
        env.redis.start()
    env.redis.cli("FLUSHALL")
    conf = write_poll_config(fake, env.log_dir, providers=providers, common=common,
                             name=f"{name}.conf")
    env.daemon.extra_args = ["--config", conf]
    await asyncio.to_thread(env.daemon.start)


async def end_phase(env, ck, what):
    """Closes the watchers; the daemon must be alive, quiet of sanitizer reports, and exit 0
    on SIGTERM."""
    import asyncio
    import harness as h
    ck(env.daemon.alive(), f"{what}: trackgated died (exit status {env.daemon.proc.returncode})")
    await env.close_watchers()
    env.watchers.clear()
    if env.daemon.alive():
        try:
            await asyncio.to_thread(env.daemon.terminate)
        except h.TestFailure as e:
            ck(False, f"{what}: {e}")
    bad = sanitizer_lines(env)
    ck(not bad, f"{what}: sanitizer report in the log: {bad[:3]!r}")


def start_second(env, conf, name="second"):
    """Another trackgated on env's Redis and keys with --config conf, started; its logs in
    env.log_dir/name.  The caller terminates it."""
    import harness as h
    other_dir = os.path.join(env.log_dir, name)
    os.makedirs(other_dir, exist_ok=True)
    d = h.Daemon(env.args.trackgated, env.redis.sock, env.key_file, other_dir,
                 ["--config", conf])
    d.start()
    return d

# --- helpers the poll tests share ------------------------------------------------------------

def metric(samples, name, **labels):
    """The sum of the samples of name (from harness.scrape_metrics) whose labels include
    labels, in any order; 0 when there is none (a counter not yet counted)."""
    total = 0.0
    for key, value in samples.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        have = dict(part.split("=", 1) for part in rest.rstrip("}").split(",") if "=" in part)
        if all(have.get(k) == f'"{v}"' for k, v in labels.items()):
            total += value
    return total


def put_source(port, order_id, provider, ref, key):
    """PUT /v1/orders/{order_id}/source {"provider","ref"} with the ingest key; returns the
    harness-style (status, raw body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("PUT", f"/v1/orders/{order_id}/source",
                     json.dumps({"provider": provider, "ref": ref}),
                     {"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def location_of(frame):
    """(lat, lng) of an update frame's location, or None."""
    loc = ((frame or {}).get("update") or {}).get("location")
    return (loc.get("lat"), loc.get("lng")) if isinstance(loc, dict) else None


async def next_matching(watcher, pred, timeout, what):
    """Reads watcher's frames (harness.Watcher) until pred(frame) is true; returns that frame.
    Fails (AssertionError) after timeout seconds, listing the frames skipped."""
    deadline = time.monotonic() + timeout
    skipped = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{watcher.path}: no frame with {what} within {timeout:.1f} s; "
                                 f"skipped {skipped!r}")
        try:
            f = await watcher.next(timeout=round(left, 2), what=what)
        except AssertionError as e:  # harness.TestFailure: timed out or closed
            raise AssertionError(f"{e}; skipped {skipped!r}") from None
        if pred(f):
            return f
        skipped.append(f)


# --- self-check ------------------------------------------------------------------------------

def selftest():
    """Checks the fakes against the providers' documented behaviour with urllib, http.client
    and PyJWT.  Exits 0 when every check passes."""
    failures = []

    def ck(cond, what):
        print(f"  {'ok  ' if cond else 'FAIL'} {what}")
        if not cond:
            failures.append(what)
        return cond

    def call(fake, method, path, headers=None, data=None, timeout=5.0):
        req = urllib.request.Request(fake.base_url + path, data=data, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def token(fake, client_secret=None, grant="client_credentials", scope="eats.deliveries"):
        form = urllib.parse.urlencode({"grant_type": grant, "client_id": fake.uber_client_id,
                                       "client_secret": client_secret or fake.uber_client_secret,
                                       "scope": scope}).encode()
        return call(fake, "POST", "/oauth/v2/token",
                    {"Content-Type": "application/x-www-form-urlencoded"}, form)

    def dd_jwt(fake, iat=None, ttl=300, secret=None, dd_ver="DD-JWT-V1", aud="doordash", kid=None):
        iat = int(time.time()) if iat is None else iat
        hdr = {"alg": "HS256", "typ": "JWT"}
        if dd_ver is not None:
            hdr["dd-ver"] = dd_ver
        return jwt.encode({"aud": aud, "iss": fake.dd_developer_id, "kid": kid or fake.dd_key_id,
                           "iat": iat, "exp": iat + ttl}, secret or fake.dd_secret_bytes,
                          algorithm="HS256", headers=hdr)

    def basic(key):
        return "Basic " + base64.b64encode(f"{key}:".encode()).decode()

    print("--- Uber Direct")
    with FakeProviders(uber_expires_in=1) as fake:
        cid = fake.uber_customer_id
        fake.set_state("uber_direct", "del-1", lat=52.52, lng=13.40, status="pickup")
        st, _, body = token(fake)
        tok = json.loads(body) if st == 200 else {}
        ck(st == 200 and tok.get("token_type") == "Bearer" and tok.get("expires_in") == 1 and
           tok.get("scope") == "eats.deliveries" and tok.get("access_token", "").startswith("IA."),
           f"a token for the right credentials: {st} {body[:80]!r}")
        st, _, body = token(fake, client_secret="wrong")
        ck(st == 401 and json.loads(body) == {"error": "invalid_client"},
           f"wrong client_secret: 401 invalid_client ({st} {body!r})")
        st, _, body = token(fake, grant="password")
        ck(st == 400, f"another grant_type: 400 ({st} {body!r})")
        path = f"/v1/customers/{cid}/deliveries/del-1"
        st, _, body = call(fake, "GET", path)
        ck(st == 401, f"GET without a token: 401 ({st})")
        st, _, body = call(fake, "GET", path, {"Authorization": "Bearer IA.made-up"})
        ck(st == 401, f"GET with a token it did not issue: 401 ({st})")
        st, _, body = call(fake, "GET", path, {"Authorization": f"Bearer {tok['access_token']}"})
        d = json.loads(body) if st == 200 else {}
        ck(st == 200 and d.get("status") == "pickup" and
           d.get("courier", {}).get("location") == {"lat": 52.52, "lng": 13.40} and
           d.get("courier", {}).get("vehicle_type") == "car" and d.get("updated", "").endswith("Z")
           and "dropoff_eta" in d and d.get("pickup", {}).get("location"),
           f"GET with the token: the delivery ({st} {body[:120]!r})")
        st, _, again = call(fake, "GET", path, {"Authorization": f"Bearer {tok['access_token']}"})
        ck(again == body, "an unchanged delivery answers the same bytes")
        ck(not fake.expired_token_used(), "no expired token used yet")
        st, _, _ = call(fake, "GET", f"/v1/customers/other/deliveries/del-1",
                        {"Authorization": f"Bearer {tok['access_token']}"})
        ck(st == 404, f"another customer id: 404 ({st})")
        time.sleep(1.05)
        st, _, _ = call(fake, "GET", path, {"Authorization": f"Bearer {tok['access_token']}"})
        ck(st == 401 and len(fake.expired_token_used("uber_direct")) == 1,
           f"the token past expires_in: 401 and logged as expired ({st})")
        fake.uber_expires_in = 3600
        _, _, body = token(fake)
        t2 = json.loads(body)["access_token"]
        fake.revoke_tokens()
        st, _, _ = call(fake, "GET", path, {"Authorization": f"Bearer {t2}"})
        ck(st == 401 and len(fake.expired_token_used()) == 1, "a revoked token: 401, not 'expired'")
        ck(len(fake.token_requests()) == 4 and len(fake.token_requests(ok=True)) == 2,
           f"token requests counted: {len(fake.token_requests())} (2 ok)")
        fake.fault("uber_direct_token", 500)
        st, _, _ = token(fake)
        ck(st == 500, f"a token-endpoint fault: 500 ({st})")

    print("--- DoorDash Drive")
    with FakeProviders() as fake:
        fake.set_state("doordash_drive", "D-1", lat=37.42, lng=-122.08, status="enroute_to_dropoff")
        path = "/drive/v2/deliveries/D-1"
        st, _, body = call(fake, "GET", path, {"Authorization": f"Bearer {dd_jwt(fake)}"})
        d = json.loads(body) if st == 200 else {}
        ck(st == 200 and d.get("delivery_status") == "enroute_to_dropoff" and
           d.get("dasher_location") == {"lat": 37.42, "lng": -122.08} and
           d.get("dasher_id") == 1234567 and d.get("updated_at", "").endswith("Z") and
           d.get("external_delivery_id") == "D-1",
           f"a JWT as DoorDash documents it: the delivery ({st} {body[:120]!r})")
        for what, tokfn in (
                ("a wrong signing secret", lambda: dd_jwt(fake, secret=b"x" * 32)),
                ("no dd-ver header", lambda: dd_jwt(fake, dd_ver=None)),
                ("aud other than doordash", lambda: dd_jwt(fake, aud="uber")),
                ("a wrong kid", lambda: dd_jwt(fake, kid="other")),
                ("exp 1801 s after iat", lambda: dd_jwt(fake, ttl=1801)),
                ("expired", lambda: dd_jwt(fake, iat=int(time.time()) - 400))):
            st, _, body = call(fake, "GET", path, {"Authorization": f"Bearer {tokfn()}"})
            ck(st == 401, f"{what}: 401 ({st} {fake.log[-1].detail[:90]})")
        ck(len(fake.expired_token_used("doordash_drive")) == 1, "the expired JWT is logged as such")
        st, _, _ = call(fake, "GET", path, {"Authorization": f"Bearer {dd_jwt(fake, ttl=1800)}"})
        ck(st == 200, f"exp exactly 1800 s after iat: 200 ({st})")
        st, _, _ = call(fake, "GET", "/drive/v2/deliveries/nope",
                        {"Authorization": f"Bearer {dd_jwt(fake)}"})
        ck(st == 404, f"an unknown delivery: 404 ({st})")
        # The standard-alphabet form of the secret decodes to the same key.
        ck(_b64url_decode(base64.b64encode(fake.dd_secret_bytes).decode()) == fake.dd_secret_bytes,
           "the signing secret decodes from base64url and standard base64")

    print("--- Onfleet")
    with FakeProviders(onfleet_rate_limit=5) as fake:
        fake.set_state("onfleet", "w1", lat=37.787, lng=-122.4015)
        path = "/api/v2/workers/w1"
        st, hd, body = call(fake, "GET", path, {"Authorization": basic(fake.onfleet_api_key)})
        d = json.loads(body) if st == 200 else {}
        ck(st == 200 and d.get("location") == [-122.4015, 37.787] and
           isinstance(d.get("timeLastSeen"), int) and hd.get("X-RateLimit-Limit") == "5",
           f"Basic base64(KEY:): the worker, location [lng, lat] ({st} {body[:100]!r})")
        st, _, _ = call(fake, "GET", path, {"Authorization": basic("wrong")})
        ck(st == 401, f"a wrong key: 401 ({st})")
        st, _, _ = call(fake, "GET", path, {"Authorization": "Basic " + base64.b64encode(
            f"{fake.onfleet_api_key}:pw".encode()).decode()})
        ck(st == 401, f"a non-empty password: 401 ({st})")
        time.sleep(1.05)
        # keep-alive: one connection, many requests
        conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
        statuses = []
        for _ in range(8):
            conn.request("GET", path, headers={"Authorization": basic(fake.onfleet_api_key)})
            resp = conn.getresponse()
            resp.read()
            statuses.append(resp.status)
        ck(statuses == [200] * 5 + [429] * 3,
           f"the rate limit (5/s here) on one keep-alive connection: {statuses}")
        ck(fake.max_in_window("onfleet", since=time.monotonic() - 1.0) == 8,
           f"max_in_window counts every request: {fake.max_in_window('onfleet')}")
        time.sleep(1.05)
        conn.request("GET", path, headers={"Authorization": basic(fake.onfleet_api_key)})
        resp = conn.getresponse()
        resp.read()
        ck(resp.status == 200, f"a second later: 200 again ({resp.status})")
        conn.close()

    print("--- faults and log helpers")
    with FakeProviders() as fake:
        fake.set_state("onfleet", "w2", lat=1.0, lng=2.0)
        hdr = {"Authorization": basic(fake.onfleet_api_key)}
        path = "/api/v2/workers/w2"
        fake.fault("onfleet", 429, retry_after=2)
        st, hd, _ = call(fake, "GET", path, hdr)
        ck(st == 429 and hd.get("Retry-After") == "2", f"429 with Retry-After: 2 ({st} {hd})")
        time.sleep(0.3)
        call(fake, "GET", path, hdr)
        gaps = fake.gaps_after("onfleet", 429)
        ck(len(gaps) == 1 and 0.25 <= gaps[0][1] < 1.0, f"gaps_after measures it: {gaps}")
        for kind, want in ((500, 500), (401, 401), ("malformed", 200), ("truncated", 200)):
            fake.fault("onfleet", kind)
            st, _, body = call(fake, "GET", path, hdr)
            try:
                json.loads(body)
                parses = True
            except ValueError:
                parses = False
            ck(st == want and (parses if kind in (500, 401) else not parses),
               f"fault {kind}: {st}, body {'JSON' if parses else 'not JSON'} {body[:50]!r}")
        fake.fault("onfleet", "delay", delay_s=1.0)
        t0 = time.monotonic()
        try:
            call(fake, "GET", path, hdr, timeout=0.3)
            timed_out = False
        except (socket.timeout, TimeoutError, urllib.error.URLError):
            timed_out = True
        ck(timed_out and time.monotonic() - t0 < 0.9, "a delay past the client's timeout")
        fake.fault("onfleet", "disconnect")
        try:
            call(fake, "GET", path, hdr)
            dropped = False
        except (http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError):
            dropped = True
        ck(dropped, "disconnect: the connection closes without an answer")
        fake.fault("onfleet", "cut")
        try:
            call(fake, "GET", path, hdr)
            cut = False
        except (http.client.IncompleteRead, ConnectionError, urllib.error.URLError):
            cut = True
        ck(cut, "cut: the body ends before its Content-Length")
        fake.fault("onfleet", 500, ref="other")
        st, _, _ = call(fake, "GET", path, hdr)
        ck(st == 200 and fake.pending_faults("onfleet") == 1, "a fault for another ref waits")
        time.sleep(1.1)
        fake.set_state("onfleet", "w2", lat=1.5, lng=2.5)
        st, _, body = call(fake, "GET", path, hdr)
        ck(st == 200 and json.loads(body)["location"] == [2.5, 1.5], "set_state moves the worker")
        before = fake.state("onfleet", "w2")["ts_ms"]
        fake.set_state("onfleet", "w2", lat=1.6, lng=2.6, ts_ms=before - 5000)
        ck(fake.state("onfleet", "w2")["ts_ms"] == before - 5000, "an explicit older ts_ms")
        ck(fake.count("onfleet", "w2") >= 11 and fake.count("onfleet", "other") == 0,
           f"count per resource: {fake.per_ref('onfleet')}")
        ck(fake.max_gap("onfleet", "w2") >= 1.0, f"max_gap: {fake.max_gap('onfleet', 'w2'):.2f}")

    print("--- the config writer")
    with FakeProviders() as fake:
        d = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"fake-providers-{os.getpid()}")
        os.makedirs(d, exist_ok=True)
        path = write_poll_config(fake, d, common={"interval-ms": 300},
                                 per={"onfleet": {"budget": 5}})
        text = open(path).read()
        ck(text.count("[poll.") == 3 and "budget = 5" in text and "interval-ms = 300" in text and
           f"token-url = {fake.token_url}" in text and fake.uber_client_secret not in text,
           "three sections, secrets in files, overrides applied")
        ck(open(os.path.join(d, "doordash.secret")).read().strip() == fake.dd_signing_secret,
           "the DoorDash signing secret file")
        for f in os.listdir(d):
            os.unlink(os.path.join(d, f))
        os.rmdir(d)

    print("selftest:", "FAILED: " + "; ".join(failures) if failures else "ok")
    return 1 if failures else 0


# --- the demo --------------------------------------------------------------------------------

# A short ride through Berlin Mitte (lat, lng), from the store to the customer.
ROUTE = [(52.5219, 13.4132), (52.5232, 13.4101), (52.5246, 13.4068), (52.5258, 13.4031),
         (52.5267, 13.3994), (52.5275, 13.3957), (52.5283, 13.3921), (52.5292, 13.3886),
         (52.5301, 13.3850)]
DEMO_STATUSES = {"uber_direct": ("pickup", "pickup_complete", "dropoff", "delivered"),
                 "doordash_drive": ("enroute_to_pickup", "picked_up", "enroute_to_dropoff",
                                    "delivered"),
                 "onfleet": (None, None, None, None)}


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def demo(args):
    signal.signal(signal.SIGTERM, _interrupt)  # stop as on Ctrl-C: remove the secret files
    fake = FakeProviders(port=args.port, verbose=args.verbose)
    p = args.provider
    secrets_dir = args.secrets_dir or os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                                  f"fake-provider-{os.getpid()}")
    os.makedirs(secrets_dir, exist_ok=True)
    conf = write_poll_config(fake, secrets_dir, providers=(p,),
                             common={"interval-ms": args.interval_ms})
    print(f"fake-provider: {p} listening on 127.0.0.1:{fake.port}", flush=True)
    print(f"port={fake.port}")
    if p == "uber_direct":
        print(f"client_id={fake.uber_client_id}\nclient_secret={fake.uber_client_secret}\n"
              f"customer_id={fake.uber_customer_id}")
    elif p == "doordash_drive":
        print(f"developer_id={fake.dd_developer_id}\nkey_id={fake.dd_key_id}\n"
              f"signing_secret={fake.dd_signing_secret}")
    else:
        print(f"api_key={fake.onfleet_api_key}")
    print(f"ref={args.ref}\nconfig={conf}\n--- {conf}:")
    print(open(conf).read(), flush=True)
    print(f"fake-provider: PUT /v1/orders/ORDER/source {{\"provider\":\"{p}\",\"ref\":\"{args.ref}\"}}"
          " to poll it", flush=True)
    statuses = DEMO_STATUSES[p]
    lap = 0
    try:
        while True:
            for i, (lat, lng) in enumerate(ROUTE + ROUTE[-2:0:-1]):
                # First lap: the status progresses with the ride; later laps stay en route, and
                # after --deliver-after laps the delivery ends (a terminal status stops polling).
                phase = min(len(statuses) - 2, (i * (len(statuses) - 1)) // len(ROUTE)) \
                    if lap == 0 else len(statuses) - 2
                fake.set_state(p, args.ref, lat=lat, lng=lng, status=statuses[phase])
                time.sleep(args.step_ms / 1000)
            lap += 1
            if args.deliver_after and lap >= args.deliver_after and statuses[-1]:
                fake.set_state(p, args.ref, status=statuses[-1])
                print(f"fake-provider: {args.ref} {statuses[-1]}", flush=True)
                while True:
                    time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.close()
        if not args.secrets_dir:
            for f in os.listdir(secrets_dir):
                os.unlink(os.path.join(secrets_dir, f))
            os.rmdir(secrets_dir)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description="fake Uber Direct / DoorDash Drive / Onfleet APIs")
    ap.add_argument("--selftest", action="store_true", help="check the fakes and exit")
    ap.add_argument("--demo", action="store_true", help="serve one provider with a moving courier")
    ap.add_argument("--provider", choices=PROVIDERS, default="onfleet")
    ap.add_argument("--port", type=int, default=0, help="127.0.0.1 port (default: the OS picks)")
    ap.add_argument("--ref", default="demo-1", help="the delivery / worker id (default demo-1)")
    ap.add_argument("--secrets-dir", help="where the secret files and poll.conf go (kept)")
    ap.add_argument("--interval-ms", type=int, default=1000, help="interval-ms in poll.conf")
    ap.add_argument("--step-ms", type=int, default=1500, help="time between courier moves")
    ap.add_argument("--deliver-after", type=int, default=0,
                    help="laps before the delivery ends (default: ride forever)")
    ap.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = ap.parse_args(argv)
    if args.selftest:
        return selftest()
    if args.demo:
        return demo(args)
    ap.error("--selftest or --demo")


if __name__ == "__main__":
    sys.exit(main())
