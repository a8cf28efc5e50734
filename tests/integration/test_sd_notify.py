#!/usr/bin/python3
"""integration.sd_notify: trackgated speaks systemd's notify protocol.

The test plays systemd: a unix datagram socket in NOTIFY_SOCKET and
WATCHDOG_USEC in the environment.  trackgated must send READY=1 once it
listens with both Redis connections up (not before: /readyz is 200 by then),
WATCHDOG=1 pings from its loop, and STOPPING=1 when SIGTERM starts the drain.
"""
import os
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def test(env):
    path = os.path.join(env.sock_dir, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    os.environ["NOTIFY_SOCKET"] = path
    os.environ["WATCHDOG_USEC"] = "2000000"
    try:
        env.redis.start()
        env.daemon.start()
    finally:
        del os.environ["NOTIFY_SOCKET"]
        del os.environ["WATCHDOG_USEC"]
    got = []

    def recv_until(word, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = sock.recv(4096).decode()
            except socket.timeout:
                continue
            got.append(msg)
            if word in msg.split("\n"):
                return msg
        raise h.TestFailure(f"no {word} within {timeout} s; got {got!r}")

    ready = recv_until("READY=1", 5)
    h.check_eq(env.http("GET", "/readyz").status, 200, "/readyz once READY=1 was sent")
    h.check(any(line.startswith("STATUS=") for line in ready.split("\n")),
            f"READY=1 comes with a STATUS: {ready!r}")
    recv_until("WATCHDOG=1", 3)
    recv_until("WATCHDOG=1", 3)
    h.check_eq(sum("READY=1" in m.split("\n") for m in got), 1, "READY=1 sent once")
    env.daemon.proc.send_signal(signal.SIGTERM)
    recv_until("STOPPING=1", 5)
    h.check_eq(env.daemon.proc.wait(10), 0, "exit status after SIGTERM")
    print(f"notifications: {[m.split(chr(10))[0] for m in got]}")
    sock.close()
    env.daemon.start()  # the harness ends every test by stopping a running daemon


if __name__ == "__main__":
    h.main(test, start=False)
