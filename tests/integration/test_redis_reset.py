#!/usr/bin/python3
"""integration.redis_reset: a Redis connection reset mid-command fails fast, never hangs.

trackgated talks to Redis through a TCP proxy in this test.  While an update
is in flight the proxy swallows it and resets both of trackgated's Redis
connections (RST).  libuv reports that as a poll error; hiredis 0.14.1's own
libuv adapter ignored it, so the request waited for a reply forever (the
flake of stress.redis_restart).  Now: the POST answers 503 within seconds,
/readyz is 503, and once the proxy forwards again trackgated reconnects and
applies updates.
"""
import os
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


class Proxy:
    """127.0.0.1:port <-> redis unix socket; swallow() then reset() kills what is open."""

    def __init__(self, redis_sock):
        self.redis_sock = redis_sock
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.swallowing = False
        self.swallowed = threading.Event()  # set once swallow mode ate an EVALSHA
        self.clients = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            r = socket.socket(socket.AF_UNIX)
            r.connect(self.redis_sock)
            with self.lock:
                self.clients.append(c)
            threading.Thread(target=self._pump, args=(c, r), daemon=True).start()
            threading.Thread(target=self._pump, args=(r, c), daemon=True).start()

    def _pump(self, src, dst):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                for s in (src, dst):
                    try:
                        s.close()
                    except OSError:
                        pass
                return
            if self.swallowing:
                if b"EVALSHA" in data.upper():
                    self.swallowed.set()
                continue
            try:
                dst.sendall(data)
            except OSError:
                return

    def reset(self):
        """RST every open client connection (SO_LINGER 0)."""
        with self.lock:
            clients, self.clients = self.clients, []
        for c in clients:
            try:
                # Linger 0 makes the close an RST; SHUT_RD wakes the pump blocked in
                # recv(), which then closes the socket (a close() from this thread
                # would wait for that recv).
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.shutdown(socket.SHUT_RD)
            except OSError:
                pass


def test(env):
    env.redis.start()
    proxy = Proxy(env.redis.sock)
    env.daemon.extra_args += ["--redis", f"redis://127.0.0.1:{proxy.port}"]
    env.daemon.start()
    oid = f"reset-{os.getpid()}"
    base = h.now_ms() - 60_000
    env.apply(h.update(oid, base + 1, lat=1.0, lng=1.0))

    proxy.swallowing = True
    result = {}

    def post():
        t0 = time.monotonic()
        result["r"] = env.http("POST", "/v1/updates", h.update(oid, base + 2, lat=2.0, lng=2.0),
                               {"Content-Type": "application/json",
                                "Authorization": f"Bearer {h.INGEST_KEY}"}, timeout=30)
        result["t"] = time.monotonic() - t0

    t = threading.Thread(target=post)
    t.start()
    # The update's EVALSHA reaches the proxy and is swallowed: only then the reset.
    h.check(proxy.swallowed.wait(10), "the POST's EVALSHA never reached the proxy")
    proxy.reset()
    t.join(35)
    h.check("r" in result, "the POST in flight during the reset never got an answer")
    h.check_eq(result["r"].status, 503, f"the POST in flight during the reset: {result['r']!r}")
    h.check(result["t"] < 10, f"the POST took {result['t']:.1f} s to fail")
    print(f"POST in flight during the reset: 503 after {result['t']:.2f} s")

    proxy.swallowing = False
    h.wait_until(lambda: env.http("GET", "/readyz").status == 200, 15, what="/readyz 200 again")
    env.apply(h.update(oid, base + 3, lat=3.0, lng=3.0))


if __name__ == "__main__":
    h.main(test, start=False)
