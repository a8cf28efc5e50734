#!/usr/bin/python3
"""integration.tls: HTTPS and WSS served by trackgated itself, and SIGHUP reloads the pair.

A self-signed certificate (openssl CLI) is configured with --tls-cert/--tls-key.
The test checks: /healthz over HTTPS; a WSS watcher gets its snapshot and an
update; after the files are replaced and SIGHUP sent, new connections see the
new certificate while the open watcher keeps receiving; a broken file plus
SIGHUP keeps the previous pair (and says so in the log); plain HTTP on the TLS
port is not served.
"""
import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def make_pair(directory, cn):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", f"/CN={cn}"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def client_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def served_cert_der(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with client_ctx().wrap_socket(raw) as s:
            return s.getpeercert(binary_form=True)


def file_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def https_get(port, path):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with client_ctx().wrap_socket(raw) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    return data


async def test(env):
    tls_dir = os.path.join(env.sock_dir, "tls")
    os.makedirs(tls_dir)
    cert, key = make_pair(tls_dir, "first")
    env.daemon.extra_args += ["--tls-cert", cert, "--tls-key", key]
    env.redis.start()

    def ready(port):
        try:
            return b"200 OK" in https_get(port, "/readyz")
        except OSError:
            return False
    # Readiness over HTTPS: the harness's start retries on fresh ports like any other.
    env.daemon.start(ready=ready)
    port = env.port
    h.check(b'"status":"ok"' in https_get(port, "/healthz"), "healthz over HTTPS")
    h.check_eq(served_cert_der(port), file_der(cert), "the configured certificate is served")

    oid = f"tls-{os.getpid()}"
    ws = await h.websockets.connect(f"wss://127.0.0.1:{port}/v1/track/{oid}", ssl=client_ctx())
    first = await asyncio.wait_for(ws.recv(), 5)
    h.check('"type":"snapshot"' in first, f"WSS first frame: {first[:80]}")

    old_der = file_der(cert)
    make_pair(tls_dir, "second")
    env.daemon.proc.send_signal(signal.SIGHUP)
    h.wait_until(lambda: served_cert_der(port) == file_der(cert), 10, what="the reloaded certificate")
    h.check(served_cert_der(port) != old_der, "a new certificate after SIGHUP")

    with open(cert, "w") as f:
        f.write("not a certificate\n")
    env.daemon.proc.send_signal(signal.SIGHUP)
    h.wait_until(lambda: "tls_reload_failed" in h.tail(env.daemon.log, 20), 10,
                 what="tls_reload_failed in the log")
    h.check(b"200 OK" in https_get(port, "/healthz"), "still served after a failed reload")

    # The watcher opened before both reloads still gets updates, over TLS.
    body = __import__("json").dumps(h.update(oid, h.now_ms(), lat=1.5, lng=2.5))
    req = (f"POST /v1/updates HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
           f"Authorization: Bearer {h.INGEST_KEY}\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(body)}\r\n\r\n{body}").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with client_ctx().wrap_socket(raw) as s:
            s.sendall(req)
            answer = s.recv(4096)
    h.check(b"202" in answer.split(b"\r\n")[0], f"POST over HTTPS: {answer[:80]!r}")
    frame = await asyncio.wait_for(ws.recv(), 5)
    h.check('"type":"update"' in frame, f"the old watcher's update: {frame[:80]}")
    await ws.close()

    # Plain HTTP on the TLS port gets no answer.
    raw = h.raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", timeout=2)
    h.check(b"200 OK" not in raw, "plain HTTP must not be served on the TLS port")


if __name__ == "__main__":
    h.main(test, start=False)
