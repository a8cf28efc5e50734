#!/usr/bin/env python3
"""nspawn_client.py - a websocket watcher for packaging.nspawn, run inside
the container (python3 of Debian 12, standard library only: the container
has no network to install python3-websockets from).

    nspawn_client.py HOST:PORT ORDER_ID OUT

Opens ws://HOST:PORT/v1/track/ORDER_ID, writes "open TYPE" to OUT once the
first text frame (the snapshot) came, and "close CODE" when the server
closes the socket (or "lost" when the connection drops without a close
frame), then exits 0.  Answers pings with pongs, so an idle socket stays up.
OUT is rewritten whole and renamed, so a reader never sees half a line.
"""
import base64
import os
import socket
import struct
import sys


LINES = []


def report(path, line):
    LINES.append(line)
    with open(path + ".new", "w") as f:
        f.write("".join(l + "\n" for l in LINES))
    os.replace(path + ".new", path)


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("eof")
        data += chunk
    return data


def read_frame(sock):
    b0, b1 = read_exact(sock, 2)
    opcode, length = b0 & 0x0F, b1 & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", read_exact(sock, 2))
    elif length == 127:
        (length,) = struct.unpack("!Q", read_exact(sock, 8))
    return opcode, read_exact(sock, length)  # a server never masks


def send_frame(sock, opcode, payload):
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)


def main():
    addr, order, out = sys.argv[1:4]
    host, port = addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=60)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /v1/track/{order} HTTP/1.1\r\nHost: {addr}\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += read_exact(sock, 1)
    status = head.split(b"\r\n", 1)[0].decode()
    if " 101 " not in status + " ":
        report(out, f"refused {status}")
        return
    opened = False
    try:
        while True:
            opcode, payload = read_frame(sock)
            if opcode == 0x1 and not opened:
                opened = True
                kind = payload.split(b'"type":"', 1)[-1].split(b'"', 1)[0].decode()
                report(out, f"open {kind}")
            elif opcode == 0x9:
                send_frame(sock, 0xA, payload)
            elif opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                report(out, f"close {code}")
                return
    except (ConnectionError, OSError):
        report(out, "lost")


if __name__ == "__main__":
    main()
