#!/usr/bin/python3
"""integration.poll_tls: poll mode's TLS verification is on (issue 17: "TLS verification on").

The fake Onfleet API (fake_providers.py) is served over HTTPS with a certificate made for
127.0.0.1 by this test (openssl, in the run directory), trusted by no system store.

- A trackgated whose [poll.onfleet] has no ca-file refuses the peer: its polls are counted
  trackgate_poll_requests_total{result="connect_error"}, logged poll_failed, and the fake
  never completes a request (no request reaches its log) - the API key never travels to an
  unverified peer.
- A trackgated with ca-file = that certificate polls the same API: its watcher gets the
  courier's position and the fake saw authenticated GETs.
"""
import asyncio
import os
import ssl
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import fake_providers as fp  # noqa: E402

INTERVAL_MS = 300
REF = "wrk_tls_1"


def make_cert(directory):
    """A self-signed certificate for IP 127.0.0.1 and its key; returns (cert, key) paths."""
    cert = os.path.join(directory, "fake.crt")
    key = os.path.join(directory, "fake.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=trackgate fake provider",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def polled(port, result):
    return fp.metric(h.scrape_metrics(port), "trackgate_poll_requests_total",
                     provider="onfleet", result=result)


async def test(env):
    ck = h.Checks()
    fake = fp.FakeProviders()
    untrusting = None
    try:
        cert, key = make_cert(env.log_dir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        # The fake serves TLS from now on (its accept does the handshake).
        fake.server.socket = ctx.wrap_socket(fake.server.socket, server_side=True)
        fake.base_url = f"https://127.0.0.1:{fake.port}"
        common = {"interval-ms": INTERVAL_MS, "connect-timeout-ms": 1000, "timeout-ms": 2000}
        trusting = fp.write_poll_config(fake, env.log_dir, providers=("onfleet",),
                                        common=dict(common, **{"ca-file": cert}),
                                        name="trusting.conf")
        plain = fp.write_poll_config(fake, env.log_dir, providers=("onfleet",), common=common,
                                     name="untrusting.conf")
        env.daemon.extra_args += ["--config", trusting]
        env.start()
        untrusting = fp.start_second(env, plain, "untrusting")

        print("--- without ca-file: the self-signed peer is refused")
        oid_a = f"ptls-a-{os.getpid()}"
        fake.set_state("onfleet", REF, lat=52.51, lng=13.41)
        st, raw = await asyncio.to_thread(fp.put_source, env.port, oid_a, "onfleet", REF,
                                          h.INGEST_KEY)
        h.check(st == 204, f"PUT source: {st} {raw!r}")
        w = h.Watcher(untrusting.port, f"/v1/track/{oid_a}")
        await w.connect()
        env.watchers.append(w)
        await w.snapshot()
        await asyncio.to_thread(h.wait_until, lambda: polled(untrusting.port, "connect_error") >= 1,
                                10.0, what="a poll refused for its certificate")
        ck(polled(untrusting.port, "ok") == 0, "no poll succeeded without the CA")
        ck(not fake.requests("onfleet", REF),
           f"no request reached the fake over an unverified connection: "
           f"{fake.requests('onfleet', REF)[:3]!r}")
        with open(untrusting.log, encoding="utf-8", errors="replace") as f:
            text = f.read()
        ck("poll_failed provider=onfleet" in text and "result=connect_error" in text,
           "the refusal is logged as poll_failed result=connect_error")
        await w.close()
        print("  ok  refused: connect_error counted and logged, nothing sent to the peer")

        print("--- with ca-file: the same peer is verified and polled")
        oid_b = f"ptls-b-{os.getpid()}"
        st, raw = await asyncio.to_thread(fp.put_source, env.port, oid_b, "onfleet", REF,
                                          h.INGEST_KEY)
        h.check(st == 204, f"PUT source: {st} {raw!r}")
        w = await env.watch(oid_b)
        f = await fp.next_matching(w, lambda f: f.get("type") == "update" and
                                   (f.get("update") or {}).get("location") is not None,
                                   10.0, "the polled position over verified TLS")
        loc = f["update"]["location"]
        ck(abs(loc["lat"] - 52.51) < 1e-6 and abs(loc["lng"] - 13.41) < 1e-6,
           f"the position: {loc!r}")
        reqs = fake.requests("onfleet", REF)
        ck(reqs and all(r.auth_ok for r in reqs), f"authenticated GETs over TLS: {reqs[:3]!r}")
        print(f"  ok  verified: {len(reqs)} GET(s), the position reached the watcher")
        env.assert_alive()
        ck(untrusting.alive(), "the daemon without the CA is still up")
        ck.done()
    finally:
        if untrusting is not None:
            untrusting.terminate()
        await asyncio.to_thread(fake.close)


if __name__ == "__main__":
    h.main(test, start=False)
