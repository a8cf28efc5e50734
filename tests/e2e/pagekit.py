"""pagekit.py - what the browser tests share: tokens, updates, a tile server,
the page's DOM probes, and the run of one test against trackgated.

Each test script (test_page*.py) is one ctest entry with its own private
redis-server and trackgated (tests/integration/harness.py) and its own
headless chromium (cdp.py).
"""
import asyncio
import base64
import hashlib
import hmac
import http.server
import json
import os
import struct
import sys
import tempfile
import threading
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
import harness as h  # noqa: E402
import cdp  # noqa: E402

SECRET = "e2e-tracking-link-secret-0123456789abcdef"

PICKUP = {"lat": 52.52460, "lng": 13.40220}
DROPOFF = {"lat": 52.51605, "lng": 13.39460}

# DOM probes (JavaScript expressions evaluated in the page).
COURIER = "document.getElementById('map').dataset.courier || ''"
CONN = "document.getElementById('conn').dataset.state + '|' + document.getElementById('conn').textContent"
STATUS = "document.getElementById('status-text').dataset.status"
ETA = "document.getElementById('eta').hidden ? '' : document.getElementById('eta').textContent"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(order_id, exp, **claims):
    """An HS256 tracking-link token for order_id; claims adds members to its body."""
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    body = b64url(json.dumps({"order_id": order_id, "exp": exp, **claims}).encode())
    sig = hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


class TokenKey:
    """The token key file trackgated reads (--token-key-file k1=HS256:PATH)."""

    def __init__(self):
        fd, self.path = tempfile.mkstemp(prefix="tg-e2e-secret-")
        os.write(fd, SECRET.encode())
        os.close(fd)

    def args(self):
        return ["--token-key-file", f"k1=HS256:{self.path}"]

    def close(self):
        os.unlink(self.path)


def png(width, height, rgb):
    """A solid-colour PNG (the tile server's tile)."""
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class TileServer:
    """Another origin: a map tile server.  Every /z/x/y.png is a light tile, or a
    404 with fail=True; tile requests are kept.  pages maps other paths (a
    prefix) to HTML served from this origin."""

    def __init__(self, fail=False, pages=None):
        self.requests = []
        tile = png(256, 256, (222, 232, 214))
        outer = self
        pages = pages or {}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                page = next((html for prefix, html in pages.items() if self.path.startswith(prefix)), None)
                status = 200
                if page is not None:
                    body, ctype = page.encode(), "text/html; charset=utf-8"
                else:
                    outer.requests.append((self.path, dict(self.headers)))
                    if fail:
                        status, body, ctype = 404, b"no such tile\n", "text/plain"
                    else:
                        body, ctype = tile, "image/png"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.template = f"http://127.0.0.1:{self.port}/{{z}}/{{x}}/{{y}}.png"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def update(oid, ts, loc=None, status=None, **extra):
    u = {"v": 1, "order_id": oid, "provider": "e2e", "ts": ts}
    if loc:
        u["location"] = {"lat": loc[0], "lng": loc[1], "heading_deg": 270.0}
    if status:
        u["status"] = status
    u.update(extra)
    return u


def courier_of(value):
    """data-courier "lat,lng" -> (lat, lng), or None."""
    if not value:
        return None
    lat, lng = value.split(",")
    return float(lat), float(lng)


def near(p, q, eps=2e-6):
    return p is not None and abs(p[0] - q[0]) < eps and abs(p[1] - q[1]) < eps


def page_errors(tab, allowed):
    """The errors a tab logged, less those allowed(kind, text, url) excuses."""
    return [e for e in tab.errors if not allowed(*e)]


def run(test, name, daemon_args=(), **kw):
    """Runs test(env, browser) under harness.main with a fresh chromium."""
    chromium = cdp.find_chromium()
    if not chromium:
        print("FAIL: chromium is missing (apt install chromium; tools/deps installs it)")
        sys.exit(1)

    async def body(env):
        browser = cdp.Browser(chromium, os.path.join(env.log_dir, "chromium.log"))
        try:
            await browser.start()
            await test(env, browser)
        finally:
            await browser.close()
    h.main(body, name=name, daemon_args=daemon_args, **kw)


async def wait_socket(tab, count, timeout=15, what=None):
    """Waits until the tab has opened count websockets; returns the last."""
    deadline = time.monotonic() + timeout
    while len(tab.sockets) < count:
        if time.monotonic() >= deadline:
            raise h.TestFailure(f"timed out after {timeout} s waiting for {what or f'websocket {count}'} "
                                f"(the page opened {len(tab.sockets)})")
        await asyncio.sleep(0.02)
    return tab.sockets[count - 1]


async def wait_frame(sock, pred, timeout=15, what="a frame"):
    """Waits until sock received a frame with pred(frame) true; returns (time, frame)."""
    deadline = time.monotonic() + timeout
    while True:
        for (t, _), f in zip(list(sock.frames), sock.json_frames()):
            if pred(f):
                return t, f
        if time.monotonic() >= deadline:
            raise h.TestFailure(f"timed out after {timeout} s waiting for {what} on {sock.url[:80]}...; "
                                f"frames: {sock.json_frames()!r}")
        await asyncio.sleep(0.02)
