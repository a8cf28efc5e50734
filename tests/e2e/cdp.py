"""cdp.py - a small Chrome DevTools Protocol client for the browser tests.

Starts Debian's chromium headless with a private profile, and drives pages
over the DevTools websocket (python3-websockets): open a tab at a size,
evaluate JavaScript, wait for a condition, take a screenshot, and collect
what the page printed as an error (exceptions, console.error, failed loads)
and the websockets it opened with the frames each received.
Standard library + websockets only; no npm.
"""
import asyncio
import base64
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import websockets


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class CDPError(RuntimeError):
    pass


class Browser:
    """One headless chromium and its DevTools connection."""

    def __init__(self, binary, log_path):
        self.binary = binary
        self.log_path = log_path
        self.proc = None
        self.ws = None
        self.ids = itertools.count(1)
        self.pending = {}
        self.tabs = {}  # sessionId -> Tab
        self.reader = None
        self.profile = tempfile.mkdtemp(prefix="tg-e2e-chromium-")

    async def start(self, timeout=30):
        argv = [self.binary, "--headless=new", "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}", "--no-first-run", "--no-default-browser-check",
                "--disable-gpu", "--disable-extensions", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--mute-audio",
                "--password-store=basic", "--use-mock-keychain", "about:blank"]
        if os.geteuid() == 0:
            argv.insert(1, "--no-sandbox")  # chromium refuses to run as root with its sandbox
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.PIPE,
                                     start_new_session=True)
        url = await asyncio.to_thread(self._devtools_url, timeout)
        self.ws = await websockets.connect(url, max_size=64 << 20, ping_interval=None)
        self.reader = asyncio.create_task(self._read())

    def _devtools_url(self, timeout):
        deadline = time.monotonic() + timeout
        seen = b""
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                if self.proc.poll() is not None:
                    break
                continue
            self.log.write(line)
            seen += line
            m = re.search(rb"DevTools listening on (ws://\S+)", line)
            if m:
                # Keep draining stderr into the log so chromium never blocks on it.
                def drain(stream=self.proc.stderr, log=self.log):
                    for rest in iter(stream.readline, b""):
                        log.write(rest)
                        log.flush()
                import threading
                threading.Thread(target=drain, daemon=True).start()
                return m.group(1).decode()
        raise CDPError(f"chromium did not start (exit {self.proc.poll()}): {seen[-2000:]!r}")

    async def _read(self):
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg:
                fut = self.pending.pop(msg["id"], None)
                if fut and not fut.done():
                    if "error" in msg:
                        fut.set_exception(CDPError(f"{msg['error']}"))
                    else:
                        fut.set_result(msg.get("result", {}))
            elif "sessionId" in msg and msg["sessionId"] in self.tabs:
                self.tabs[msg["sessionId"]]._event(msg["method"], msg.get("params", {}))

    async def send(self, method, params=None, session=None, timeout=30):
        i = next(self.ids)
        msg = {"id": i, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        fut = asyncio.get_running_loop().create_future()
        self.pending[i] = fut
        await self.ws.send(json.dumps(msg))
        return await asyncio.wait_for(fut, timeout)

    async def new_tab(self, width, height, mobile=False, scale=1):
        target = (await self.send("Target.createTarget", {"url": "about:blank"}))["targetId"]
        session = (await self.send("Target.attachToTarget",
                                   {"targetId": target, "flatten": True}))["sessionId"]
        tab = Tab(self, session, target)
        self.tabs[session] = tab
        for domain in ("Page", "Runtime", "Log", "Network"):
            await tab.send(f"{domain}.enable")
        await tab.send("Emulation.setDeviceMetricsOverride",
                       {"width": width, "height": height, "deviceScaleFactor": scale,
                        "mobile": mobile})
        return tab

    async def close(self):
        try:
            if self.ws:
                await self.ws.close()
        except Exception:
            pass
        if self.reader:
            self.reader.cancel()
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                await asyncio.to_thread(self.proc.wait, 5)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        shutil.rmtree(self.profile, ignore_errors=True)


class Socket:
    """A websocket a page opened: its URL, when (time.monotonic() as the test
    saw the events), and the text frames it received."""

    def __init__(self, url):
        self.url = url
        self.created = time.monotonic()
        self.frames = []     # (monotonic time, payload) of every text frame
        self.closed = None   # monotonic time of the close, or None

    def json_frames(self):
        out = []
        for _, payload in self.frames:
            try:
                out.append(json.loads(payload))
            except ValueError:
                out.append({"type": "<not json>", "raw": payload})
        return out


class Tab:
    """One page: its session, and the errors, requests and websockets it produced."""

    def __init__(self, browser, session, target):
        self.browser = browser
        self.session = session
        self.target = target
        self.errors = []     # (kind, text, url)
        self.requests = []   # (url, headers) of every request the page made
        self.sockets = []    # every websocket the page opened, in order: Socket
        self._sockets = {}   # requestId -> Socket
        self.loaded = asyncio.Event()

    def _event(self, method, p):
        if method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            text = d.get("exception", {}).get("description") or d.get("text")
            self.errors.append(("exception", text, d.get("url", "")))
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            self.errors.append(("console." + p["type"], text, ""))
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            self.errors.append((f"log.{e.get('source')}", e.get("text", ""), e.get("url", "")))
        elif method == "Network.requestWillBeSent":
            r = p.get("request", {})
            self.requests.append((r.get("url", ""), r.get("headers", {})))
        elif method == "Page.loadEventFired":
            self.loaded.set()
        elif method == "Network.webSocketCreated":
            sock = Socket(p.get("url", ""))
            self._sockets[p.get("requestId")] = sock
            self.sockets.append(sock)
        elif method == "Network.webSocketFrameReceived" and p.get("requestId") in self._sockets:
            r = p.get("response", {})
            if r.get("opcode") == 1:
                self._sockets[p["requestId"]].frames.append((time.monotonic(), r.get("payloadData", "")))
        elif method == "Network.webSocketClosed" and p.get("requestId") in self._sockets:
            self._sockets[p["requestId"]].closed = time.monotonic()

    async def send(self, method, params=None, timeout=30):
        return await self.browser.send(method, params, self.session, timeout)

    async def goto(self, url, timeout=20):
        self.loaded.clear()
        await self.send("Page.navigate", {"url": url})
        await asyncio.wait_for(self.loaded.wait(), timeout)

    async def eval(self, expr):
        r = await self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                                 "awaitPromise": True})
        if "exceptionDetails" in r:
            raise CDPError(f"{expr}: {r['exceptionDetails'].get('text')} "
                           f"{r['exceptionDetails'].get('exception', {}).get('description', '')}")
        return r.get("result", {}).get("value")

    async def wait_for(self, expr, timeout=15, what=None, interval=0.05):
        """Waits until expr is truthy; returns its value, or raises with the last value seen."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            last = await self.eval(expr)
            if last:
                return last
            if time.monotonic() >= deadline:
                raise CDPError(f"timed out after {timeout} s waiting for {what or expr} "
                               f"(last value {last!r})")
            await asyncio.sleep(interval)

    async def screenshot(self, path):
        r = await self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))
        return path

    async def close(self):
        await self.browser.send("Target.closeTarget", {"targetId": self.target})
