#!/usr/bin/python3
"""integration.ws_conformance: RFC 6455 framing errors a client can send, over a raw socket.

Issue 14 item 4.  Each case opens its own websocket by hand (a real upgrade
handshake on a TCP socket, Sec-WebSocket-Accept checked), waits for the
snapshot, writes hand-built frame bytes, then reads what the server does:
frames (server frames must be unmasked), a close frame (answered with a
close, as a client does) and the end of the TCP stream, each wait bounded.
After every case trackgated must still be running; at the end /healthz
answers and an ordinary watcher gets its snapshot and a live update.

Where the gateway decides (ws/session.c's ws_receive and ws_peer_close) the test asserts the RFC:

  - close codes outside the allowed ranges (0, 999, 1004, 1005, 1006, 1015,
    1016, 1100, 2000, 2999, 5000, 65535): the answer is close 1002 and the
    connection ends within 2 s.  lws 4.1.6 rewrites every code below 3000
    that is not 1000-1003 or 1007-1011 to 1002 itself; 5000 and up it
    echoed unchanged (the gateway now makes them 1002);
  - allowed codes (1000, 1001, 1003, 1007, 1008, 1011, 3000, 3999, 4000,
    4999) and an empty close are echoed as they came, the end within 2 s.
    1012-1014 (registered by IANA after RFC 6455) lws 4.1.6 answers with
    1002, as the older Autobahn suite wants: either is accepted here;
  - a close frame with a 1-byte payload: close 1002 (lws 4.1.6 echoed the
    single byte: a malformed close of its own).  The gateway sends its own
    close there, so lws waits up to 5 s for the peer's answer: the end
    within 8 s;
  - a close reason that is not UTF-8 (an invalid byte, an overlong form, a
    surrogate, a truncated sequence): close 1007 (1002 accepted) whose own
    reason is valid UTF-8, the end within 2 s.  lws 4.1.6 with
    LWS_SERVER_OPTION_VALIDATE_UTF8 dropped the TCP connection with no close
    frame at all, and echoed a reason cut mid-character as it came (its
    check never asks whether the reason ended inside a character); a valid
    multi-byte reason is echoed unchanged;
  - a text message that is not UTF-8 (invalid byte, overlong, surrogate,
    beyond U+10FFFF, truncated at the end of the message): close 1007 within
    2 s; valid text split mid-character across two fragments is not closed.

Where only libwebsockets 4.1.6 decides (its frame parser fails before any
callback, or never tells the gateway), the test asserts what it does and
that nothing hangs or crashes:

  - a fragmented ping, reserved opcode 3, RSV1 with no extension, a
    continuation with no message to continue: close 1002 from lws, the end
    within 2 s once answered (RSV1: within 8 s, since lws stops parsing in
    the middle of that frame's header and never reads the answer, so it
    waits out its 5 s);
  - a 64-bit payload length with the top bit set, and a ping whose payload
    is over 125 bytes (16- or 64-bit length): lws drops the TCP connection at
    once without a close frame (RFC 6455 7.1.7: fail the connection; the
    close frame is only a SHOULD).  Asserted: closed within 2 s, and any
    close frame that does come says 1002;
  - an unmasked text frame and an unmasked ping: RFC 6455 5.1 says the
    server MUST fail the connection (1002).  lws 4.1.6 never looks at the
    MASK bit of a client frame (an unmasked frame is read as one masked with
    key 0; the check came in lws 5.0, "client unmasked") and no callback
    says whether a frame was masked, so the gateway cannot tell.  Asserted:
    either close 1002 within 2 s (a fixed lws), or, as 4.1.6 does, the
    connection stays healthy: a masked ping right after it gets its pong
    and a client close ends it within 2 s.  The test prints which it saw.
"""
import asyncio
import base64
import hashlib
import os
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
PROMPT_S = 2.0          # a close the gateway or lws makes at once
CLOSE_ACK_WAIT_S = 8.0  # lws's own close waits up to 5 s for the peer's close (timers: 1 s steps)


def frame(op, payload=b"", mask=True, fin=True):
    """A client frame: masked with a random key unless mask=False."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | op
    m = 0x80 if mask else 0
    if n < 126:
        hdr = bytes([b0, m | n])
    elif n < 65536:
        hdr = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        hdr = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if not mask:
        return hdr + payload
    key = os.urandom(4)
    return hdr + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


def close_frame(code, reason=b""):
    return frame(OP_CLOSE, struct.pack(">H", code) + reason)


def utf8_ok(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


class RawWs:
    """One websocket over a plain TCP socket; every read has a deadline."""

    def __init__(self, port, path):
        self.path = path
        self.buf = b""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        key = base64.b64encode(os.urandom(16))
        self.sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                          b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
        deadline = time.monotonic() + 5
        while b"\r\n\r\n" not in self.buf:
            h.check(self._recv(deadline), f"{path}: the connection ended during the handshake: "
                                          f"{self.buf!r}")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        h.check(head.startswith(b"HTTP/1.1 101"), f"{path}: no 101 answer: {head!r}")
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        fields = dict(line.split(":", 1) for line in head.decode("latin-1").split("\r\n")[1:]
                      if ":" in line)
        fields = {k.strip().lower(): v.strip() for k, v in fields.items()}
        h.check(fields.get("sec-websocket-accept") == accept,
                f"{path}: Sec-WebSocket-Accept is not {accept!r}: {head!r}")

    def _recv(self, deadline):
        """More bytes into buf: False at the end of the stream; TimeoutError at the deadline."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError from None
        self.buf += data
        return bool(data)

    def _need(self, n, deadline):
        while len(self.buf) < n:
            if not self._recv(deadline):
                return False
        return True

    def read_frame(self, deadline):
        """(fin, opcode, payload), or None at the end of the stream.  Server frames are
        unmasked (RFC 6455 5.1) and of a known opcode."""
        if not self._need(2, deadline):
            return None
        b0, b1 = self.buf[0], self.buf[1]
        n, off = b1 & 0x7F, 2
        if n == 126:
            if not self._need(4, deadline):
                return None
            n, off = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            if not self._need(10, deadline):
                return None
            n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
        h.check(not b1 & 0x80, f"{self.path}: the server sent a masked frame: {self.buf[:16]!r}")
        h.check(b0 & 0x0F in (OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG),
                f"{self.path}: the server sent opcode {b0 & 0x0F}")
        if not self._need(off + n, deadline):
            return None
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def snapshot(self):
        f = self.read_frame(time.monotonic() + 5)
        h.check(f is not None and f[1] == OP_TEXT and b'"snapshot"' in f[2],
                f"{self.path}: the first frame is not the snapshot: {f!r}")

    def send(self, data):
        self.sock.sendall(data)

    def outcome(self, timeout):
        """Reads until the end of the stream or timeout.  A close frame is answered with a
        close carrying its code (as a client does).  Returns a dict: close (None, or
        (code or None, reason bytes, payload length)), closed_after (s, None when still
        open), others (the other frames: (opcode, payload)), reset (a RST ended it)."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        out = {"close": None, "closed_after": None, "others": [], "reset": False}
        try:
            while True:
                f = self.read_frame(deadline)
                if f is None:
                    out["closed_after"] = time.monotonic() - t0
                    return out
                _, op, payload = f
                if op != OP_CLOSE:
                    out["others"].append((op, payload))
                    continue
                if out["close"] is None:
                    code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                    out["close"] = (code, payload[2:], len(payload))
                    try:
                        self.send(frame(OP_CLOSE, payload[:2]))
                    except OSError:
                        pass
        except TimeoutError:
            return out
        except (ConnectionResetError, BrokenPipeError):
            out["reset"] = True
            out["closed_after"] = time.monotonic() - t0
            return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def describe(o):
    parts = []
    if o["close"] is not None:
        code, reason, n = o["close"]
        parts.append(f"close {code} {reason!r} ({n}-byte payload)")
    else:
        parts.append("no close frame")
    if o["others"]:
        parts.append(f"frames {o['others'][:3]!r}")
    if o["closed_after"] is None:
        parts.append("still open")
    else:
        parts.append(f"{'RST' if o['reset'] else 'TCP end'} after {o['closed_after']:.2f} s")
    return ", ".join(parts)


class Cases:
    def __init__(self, env, ck, oid):
        self.env, self.ck, self.oid = env, ck, oid

    def run(self, what, data, timeout=PROMPT_S):
        """A fresh websocket: the snapshot, then data; what came back within timeout + 1 s."""
        ws = RawWs(self.env.port, f"/v1/track/{self.oid}")
        try:
            ws.snapshot()
            ws.send(data)
            return ws, ws.outcome(timeout + 1)
        except BaseException:
            ws.close()
            raise
        finally:
            self.env.assert_alive()

    def ended(self, what, o, timeout):
        return self.ck(o["closed_after"] is not None and o["closed_after"] <= timeout,
                       f"{what}: want the connection ended within {timeout:.0f} s: {describe(o)}")

    def want_close(self, what, data, codes, timeout=PROMPT_S, reason=None):
        """A close frame with one of codes (its reason valid UTF-8, equal to reason when given),
        nothing else, and the end within timeout."""
        ws, o = self.run(what, data, timeout)
        ws.close()
        ok = self.ck(o["close"] is not None and o["close"][0] in codes,
                     f"{what}: want close {' or '.join(map(str, codes))}: {describe(o)}")
        if o["close"] is not None:
            ok &= self.ck(utf8_ok(o["close"][1]), f"{what}: the server's close reason is not "
                                                  f"UTF-8: {o['close'][1]!r}")
            if reason is not None:
                ok &= self.ck(o["close"][1] == reason, f"{what}: close reason {o['close'][1]!r}, "
                                                       f"want {reason!r}")
        ok &= self.ck(not o["others"], f"{what}: frames besides the close: {o['others']!r}")
        ok &= self.ended(what, o, timeout)
        if ok:
            print(f"  ok  {what}: {describe(o)}")

    def want_failed(self, what, data, note):
        """lws decides: the connection ends within PROMPT_S; a close frame, if any, says 1002."""
        ws, o = self.run(what, data)
        ws.close()
        ok = self.ck(o["close"] is None or o["close"][0] == 1002,
                     f"{what}: a close frame other than 1002: {describe(o)}")
        ok &= self.ck(not o["others"], f"{what}: frames before the end: {o['others']!r}")
        ok &= self.ended(what, o, PROMPT_S)
        if ok:
            print(f"  ok  {what}: {describe(o)} ({note})")

    def want_1002_or_healthy(self, what, data, pong=None):
        """Unmasked frames: close 1002 (RFC), or lws 4.1.6's acceptance (pong when the frame
        was a ping) with the connection still healthy: ping/pong, then a clean close."""
        ws, o = self.run(what, data, timeout=0.3)  # an immediate 1002 would be here by now
        try:
            if o["close"] is not None or o["closed_after"] is not None:
                ok = self.ck(o["close"] is not None and o["close"][0] == 1002,
                             f"{what}: ended, but not with close 1002: {describe(o)}")
                ok &= self.ended(what, o, PROMPT_S)
                if ok:
                    print(f"  ok  {what}: {describe(o)} (RFC 6455 5.1)")
                return
            ok = True
            if pong is not None:
                ok &= self.ck(o["others"] == [(OP_PONG, pong)],
                              f"{what}: lws 4.1.6 answers it with a pong {pong!r}: {describe(o)}")
            else:
                ok &= self.ck(not o["others"], f"{what}: frames: {o['others']!r}")
            ws.send(frame(OP_PING, b"after"))
            o2 = ws.outcome(0.3)
            deadline = time.monotonic() + PROMPT_S
            while (OP_PONG, b"after") not in o2["others"] and o2["closed_after"] is None \
                    and time.monotonic() < deadline:
                more = ws.outcome(0.2)
                o2["others"] += more["others"]
                o2["closed_after"] = more["closed_after"]
            ok &= self.ck((OP_PONG, b"after") in o2["others"],
                          f"{what}: then a masked ping got no pong within {PROMPT_S:.0f} s: "
                          f"{describe(o2)}")
            ws.send(close_frame(1000, b"done"))
            o3 = ws.outcome(PROMPT_S + 1)
            ok &= self.ck(o3["close"] is not None and o3["close"][0] == 1000,
                          f"{what}: then a client close 1000 got {describe(o3)}")
            ok &= self.ended(what, o3, PROMPT_S)
            if ok:
                print(f"  ok  {what}: accepted, as lws 4.1.6 does (it never checks the MASK bit;"
                      f" RFC 6455 5.1 wants 1002); the connection stayed healthy")
        finally:
            ws.close()


def test(env):
    ck = h.Checks()
    oid = f"wsconf-{os.getpid()}"
    env.apply(h.update(oid, h.now_ms(), lat=52.52, lng=13.40, status="picked_up"))
    c = Cases(env, ck, oid)

    print("--- close codes (the gateway decides)")
    for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 5001, 65535):
        c.want_close(f"close code {code}", close_frame(code, b"bye"), (1002,))
    for code in (1000, 1001, 1003, 1007, 1008, 1011, 3000, 3999, 4000, 4999):
        c.want_close(f"close code {code} (allowed)", close_frame(code, b"bye"), (code,),
                     reason=b"bye")
    for code in (1012, 1013, 1014):
        c.want_close(f"close code {code} (IANA, after RFC 6455)", close_frame(code, b"bye"),
                     (code, 1002))
    c.want_close("close with no payload", frame(OP_CLOSE, b""), (None,))

    print("--- malformed close frames (the gateway decides)")
    c.want_close("close with a 1-byte payload", frame(OP_CLOSE, b"\x03"), (1002,),
                 timeout=CLOSE_ACK_WAIT_S)
    for what, reason in (("an invalid byte", b"\xff\xfe"), ("an overlong '/'", b"ab\xc0\xaf"),
                         ("a surrogate", b"\xed\xa0\x80"), ("a truncated euro sign", b"\xe2\x82"),
                         ("beyond U+10FFFF", b"\xf4\x90\x80\x80")):
        c.want_close(f"close reason with {what}", close_frame(1000, reason), (1007, 1002))
    good = "tschüß € 𝄞".encode()
    c.want_close("close reason in valid multi-byte UTF-8", close_frame(1000, good), (1000,),
                 reason=good)

    print("--- text messages that are not UTF-8 (the gateway decides)")
    for what, payload in (("an invalid byte", b"ok \xff"), ("an overlong NUL", b"\xc0\x80"),
                          ("a surrogate", b"\xed\xbf\xbf"),
                          ("beyond U+10FFFF", b"\xf4\x90\x80\x80"),
                          ("a sequence cut at the end", b"caf\xc3")):
        c.want_close(f"text with {what}", frame(OP_TEXT, payload), (1007,))
    euro = "€".encode()
    c.want_close("fragmented text cut mid-character at its end",
                 frame(OP_TEXT, b"x" + euro[:1], fin=False) + frame(OP_CONT, euro[1:2]), (1007,))
    # Valid text split inside a character across two fragments is fine: a ping after it
    # gets its pong and the connection stays open.
    ws = RawWs(env.port, f"/v1/track/{oid}")
    try:
        ws.snapshot()
        ws.send(frame(OP_TEXT, b"x" + euro[:2], fin=False) + frame(OP_CONT, euro[2:] + b"y") +
                frame(OP_PING, b"barrier"))
        o = ws.outcome(0.5)
        deadline = time.monotonic() + PROMPT_S
        while (OP_PONG, b"barrier") not in o["others"] and o["closed_after"] is None and \
                o["close"] is None and time.monotonic() < deadline:
            more = ws.outcome(0.2)
            o["others"] += more["others"]
            o["close"], o["closed_after"] = more["close"], more["closed_after"]
        if ck(o["close"] is None and o["closed_after"] is None and
              (OP_PONG, b"barrier") in o["others"],
              f"valid text split mid-character across fragments: want it kept open and the "
              f"ping after it answered: {describe(o)}"):
            print("  ok  valid text split mid-character across fragments: kept open, pong")
    finally:
        ws.close()
        env.assert_alive()

    print("--- frames only lws 4.1.6 judges")
    key = os.urandom(4)
    c.want_failed("64-bit payload length with the top bit set",
                  bytes([0x82, 0xFF]) + b"\x80" + b"\0" * 7 + key + b"z" * 16,
                  "lws: 'b63 of length must be zero', TCP dropped")
    c.want_failed("ping with a 126-byte payload", frame(OP_PING, b"p" * 126),
                  "lws: 'Control frame with xtended length is illegal', TCP dropped")
    c.want_failed("ping with a 64-bit length (200 bytes)",
                  bytes([0x89, 0xFF]) + struct.pack(">Q", 200) + key + b"q" * 200,
                  "lws: control frame with an extended length, TCP dropped")
    # lws's own protocol errors with a reason: it sends close 1002 and ends on our answer.
    c.want_close("a fragmented ping", frame(OP_PING, b"p", fin=False), (1002,))
    c.want_close("reserved opcode 3", frame(3, b"x"), (1002,))
    # lws stops parsing mid-header here, so it never reads our answering close: its 5 s wait.
    c.want_close("RSV1 set with no extension", bytes([0xC1]) + frame(OP_TEXT, b"x")[1:], (1002,),
                 timeout=CLOSE_ACK_WAIT_S)
    c.want_close("a continuation with no message", frame(OP_CONT, b"x"), (1002,))
    c.want_1002_or_healthy("unmasked text frame", frame(OP_TEXT, b"hello", mask=False))
    c.want_1002_or_healthy("unmasked ping", frame(OP_PING, b"p", mask=False), pong=b"p")

    print("--- the gateway is unaffected")
    h.check_eq(env.http("GET", "/healthz").status, 200, "/healthz after the malformed frames")

    async def watcher():
        w = h.Watcher(env.port, f"/v1/track/{oid}")
        await w.connect()
        try:
            await w.snapshot()
            cursor = await env.aapply(h.update(oid, h.now_ms(), lat=52.53, lng=13.41))
            f = await w.update()
            h.check_eq(f.get("cursor"), cursor, "the update after the malformed frames")
        finally:
            await w.close()

    asyncio.run(asyncio.wait_for(watcher(), 20))
    print("  ok  a watcher gets its snapshot and a live update")
    env.assert_alive()
    ck.done()


if __name__ == "__main__":
    h.main(test)
