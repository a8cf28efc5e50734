#!/usr/bin/python3
"""integration.stress.closing_peers: sockets that close badly never linger or get data.

trackgated runs with --ping-interval 1 --pong-timeout 2 --outq-limit 8192.

1. A stalled peer that keeps sending pongs: it never reads (4 KiB receive
   buffer), so once the kernel's send buffer is full (it grows to 4 MiB on
   loopback: 12 000 updates of ~400 bytes) its queue overflows and the
   server closes it (4408), but the close frame cannot get out.  Its pongs must not keep it alive: the socket
   is dropped within pong-timeout (the bug: every pong re-armed the
   keepalive of a closing socket, which then stayed open for ever).
2. A peer that sends Close while updates flow: after the server's Close,
   nothing more may come (RFC 6455 5.5.1; the bug: frames written straight
   to the socket after lws had answered the peer's Close).
3. Peers that reset their connection (RST) while updates flow: the server
   drops them, and a normal watcher of the same order gets every update.
"""
import asyncio
import base64
import os
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

PING, PONG, OUTQ = 1, 2, 8192


def handshake(port, path, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(1)  # byte by byte: leave every frame in the socket
        h.check(chunk, "the handshake answer")
        buf += chunk
    h.check(buf.startswith(b"HTTP/1.1 101"), f"handshake: {buf[:40]!r}")
    return s


def client_frame(opcode, payload=b""):
    """A masked client frame (mask key 0)."""
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


def read_frames(s, timeout):
    """Every frame until EOF: [(opcode, payload)]; raises on timeout."""
    s.settimeout(timeout)
    data, frames = b"", []
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            break
        data += chunk
        while len(data) >= 2:
            n, hl = data[1] & 0x7F, 2
            if n == 126:
                if len(data) < 4:
                    break
                n, hl = struct.unpack(">H", data[2:4])[0], 4
            elif n == 127:
                if len(data) < 10:
                    break
                n, hl = struct.unpack(">Q", data[2:10])[0], 10
            if len(data) < hl + n:
                break
            frames.append((data[0] & 0x0F, data[hl:hl + n]))
            data = data[hl + n:]
    return frames


def big_update(oid, ts, i):
    # A courier name makes each frame ~400 bytes, so the queue fills fast.
    return h.update(oid, ts, lat=1.0 + i * 1e-5, lng=2.0,
                    courier={"id": "c", "name": "N" * 120, "vehicle": "bicycle"})


async def publish(env, oid, n, start=0):
    base = h.now_ms()
    for k in range(start, start + n, 100):
        await env.apost_ok([big_update(oid, base + i, i) for i in range(k, min(start + n, k + 100))])


def slow_closes(env):
    m = env.http("GET", "/metrics").raw.decode()
    return int(next(l.split()[1] for l in m.splitlines() if l.startswith("trackgate_slow_closes_total")))


async def test(env):
    oid = f"closing-{os.getpid()}"
    port = env.port

    # 1. Stalled, closed, still sending pongs: dropped within pong-timeout.
    stalled = await asyncio.to_thread(handshake, port, f"/v1/track/{oid}-stalled", 4096)
    await publish(env, f"{oid}-stalled", 12000)
    # The POSTs are answered before their frames reach the daemon's queues (they come
    # back through Redis): the counter is waited for, not read at once.
    await h.async_wait_until(lambda: slow_closes(env) >= 1, 10,
                             what="trackgate_slow_closes_total to count the stalled peer")
    h.check(await asyncio.to_thread(slow_closes, env) == 1,
            "the stalled peer's queue overflowed and it was closed (trackgate_slow_closes_total)")
    t_full = time.monotonic()
    stop = False

    def pong_sender():
        deadline = time.monotonic() + 30  # never outlive the test
        while not stop and time.monotonic() < deadline:
            try:
                stalled.sendall(client_frame(0xA, b"k"))
            except OSError:
                return time.monotonic()
            time.sleep(0.3)
        return None
    sender = asyncio.get_running_loop().run_in_executor(None, pong_sender)
    # The server closed it (queue overflow) and must drop it although pongs keep coming.
    gone_at = await sender
    stop = True
    h.check(gone_at is not None, "the stalled socket was dropped")
    took = gone_at - t_full
    h.check(took <= PONG + PING + 6, f"the stalled, closed socket was dropped after {took:.1f} s, "
            f"want <= {PONG + PING + 6}")
    print(f"stalled peer sending pongs: dropped {took:.1f} s after its queue overflowed")
    stalled.close()

    w = await env.watch(oid)

    # 2. The peer closes while updates flow: nothing after the server's Close.
    closer = await asyncio.to_thread(handshake, port, f"/v1/track/{oid}")
    task = asyncio.ensure_future(publish(env, oid, 200, start=1000))
    await asyncio.sleep(0.05)
    closer.sendall(client_frame(0x8, struct.pack(">H", 1000)))
    frames = await asyncio.to_thread(read_frames, closer, 10)
    await task
    closer.close()
    ops = [op for op, _ in frames]
    h.check(0x8 in ops, f"the server answered the Close: opcodes {ops[-5:]}")
    h.check(ops.index(0x8) == len(ops) - 1,
            f"frames after the server's Close: {len(ops) - 1 - ops.index(0x8)}")

    # 3. Peers that reset while updates flow.
    resetters = [await asyncio.to_thread(handshake, port, f"/v1/track/{oid}") for _ in range(10)]
    task = asyncio.ensure_future(publish(env, oid, 200, start=2000))
    await asyncio.sleep(0.05)
    for s in resetters:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # RST
    await task
    last = None
    while True:
        f = await w.update(timeout=10)
        last = f
        if f["update"]["location"]["lat"] == 1.0 + 2199 * 1e-5:
            break
    h.check(last is not None, "the normal watcher got the last update")

    def one_websocket():
        m = env.http("GET", "/metrics")
        return 'trackgate_connections{state="websocket"} 1\n' in m.raw.decode()
    await h.async_wait_until(one_websocket, 10, what="only the normal watcher left connected")
    env.assert_alive()


if __name__ == "__main__":
    h.main(test, daemon_args=["--ping-interval", str(PING), "--pong-timeout", str(PONG),
                              "--outq-limit", str(OUTQ)])
