#!/usr/bin/python3
"""integration.stress.keepalive: websocket pings, and a close on a missing pong.

trackgated runs with --ping-interval 1 --pong-timeout 1.  A websocket client
that answers pings (python websockets does, by itself) stays connected well
past both; a client that completes the handshake and then never answers
(a raw socket that reads and says nothing: a half-open peer) is hung up on
within ping-interval + pong-timeout + slack, and it did receive a ping first.
"""
import asyncio
import base64
import os
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

PING = 1
PONG = 1


def silent_client(port, path):
    """Completes the websocket handshake, then only reads; returns (seconds to EOF, opcodes)."""
    key = base64.b64encode(os.urandom(16)).decode()
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        h.check(chunk, "the handshake answer")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    h.check(head.startswith(b"HTTP/1.1 101"), f"handshake: {head[:40]!r}")
    t0 = time.monotonic()
    opcodes = []
    data = rest
    while True:
        # Parse whole frames out of data (server frames are unmasked).
        while len(data) >= 2:
            n = data[1] & 0x7F
            hdr = 2 + (2 if n == 126 else 8 if n == 127 else 0)
            if len(data) < hdr:
                break
            if n == 126:
                n = int.from_bytes(data[2:4], "big")
            elif n == 127:
                n = int.from_bytes(data[2:10], "big")
            if len(data) < hdr + n:
                break
            opcodes.append(data[0] & 0x0F)
            data = data[hdr + n:]
        try:
            chunk = s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            chunk = b""
        if not chunk:
            break
        data += chunk
    s.close()
    return time.monotonic() - t0, opcodes


ROUNDS = 3  # ping rounds the answering watcher must stay through


async def test(env):
    oid = f"ka-{os.getpid()}"
    w = await env.watch(oid)  # answers pings by itself (websockets' protocol calls pong())
    answered = []
    pong = w.ws.pong

    async def counting_pong(data=b""):
        answered.append(time.monotonic())
        return await pong(data)
    w.ws.pong = counting_pong
    loop = asyncio.get_running_loop()
    elapsed, opcodes = await loop.run_in_executor(None, silent_client, env.port, f"/v1/track/{oid}")
    h.check(0x9 in opcodes, f"the silent client was pinged (opcodes {opcodes})")
    h.check(elapsed <= PING + PONG + 3,
            f"the silent client was hung up on after {elapsed:.1f} s, want <= {PING + PONG + 3}")
    print(f"silent client: pinged, hung up on after {elapsed:.1f} s")
    # The answering one is still there and still served, several ping rounds later
    # (its pongs are what keeps it: an empty pong would give lws no callback).  The
    # rounds are counted as they happen, not assumed from the time passed.
    start = len(answered)
    await h.async_wait_until(lambda: len(answered) >= start + ROUNDS or w.closed.is_set(),
                             ROUNDS * (PING + PONG) + 10,
                             what=f"{ROUNDS} more pings answered by the watcher")
    h.check(not w.closed.is_set(), f"the answering watcher was closed after "
            f"{len(answered) - start} more ping rounds: {w.close_code} {w.close_reason!r}")
    c = await env.aapply(h.update(oid, h.now_ms(), lat=1.0, lng=2.0))
    f = await w.update()
    h.check_eq(f.get("cursor"), c, "the answering watcher still gets updates")
    m = await asyncio.to_thread(env.http, "GET", "/metrics")
    h.check("trackgate_pong_timeouts_total 1\n" in m.raw.decode(),
            "trackgate_pong_timeouts_total counts the one silent client")


if __name__ == "__main__":
    h.main(test, daemon_args=["--ping-interval", str(PING), "--pong-timeout", str(PONG)])
