#!/usr/bin/python3
"""integration.metrics: GET /metrics in the Prometheus text format, and its counters move.

trackgated runs with --metrics-listen on a second port: /metrics answers
there (and only there), the main port answers 404 for it.  A scrape before
and after some traffic shows the counters and gauges moving: connections,
watched orders, subscriptions, frames in/out, ingest requests by provider
and status, updates by result, refusals by reason, and the histograms
(ingest latency, update age, and the work of each event-loop iteration), in
seconds.  The standard process metrics and trackgate_build_info are there, and
`promtool check metrics` (Debian's prometheus package, from tools/deps) finds
nothing to say about a real scrape.
"""
import asyncio
import os
import re
import shutil
import subprocess
import time
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

def promtool_check(text):
    """`promtool check metrics` on a scrape: exit 0 and not a word of lint."""
    promtool = shutil.which("promtool")
    h.check(promtool, "promtool not found: install Debian's prometheus package (tools/deps)")
    p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                       timeout=30)
    out = (p.stdout + p.stderr).decode("utf-8", "replace").strip()
    h.check(p.returncode == 0 and not out, f"promtool check metrics: exit {p.returncode}:\n{out}")


def scrape(env, raw=None):
    r = h.http_request(env.daemon.ports["metrics"], "GET", "/metrics")
    if raw is not None:
        raw.append(r.raw)
    h.check_eq(r.status, 200, "GET /metrics on the metrics port")
    h.check(r.headers.get("content-type", "").startswith("text/plain"),
            f"Content-Type {r.headers.get('content-type')!r}")
    values = {}
    for line in r.raw.decode().splitlines():
        if not line or line.startswith("#"):
            h.check(not line or re.match(r"# (HELP|TYPE) \w+ ", line), f"bad comment line {line!r}")
            continue
        m = re.match(r"^([a-z_]+)(\{[^}]*\})? (-?[0-9.e+]+)$", line)
        h.check(m, f"not a Prometheus sample line: {line!r}")
        values[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return values


async def test(env):
    oid = f"met-{os.getpid()}"
    before = scrape(env)
    t_before = time.monotonic()
    h.check_eq(env.http("GET", "/metrics").status, 404, "/metrics on the main port")
    w = await env.watch(oid)
    c = await env.aapply(h.update(oid, h.now_ms(), lat=1.0, lng=2.0, status="picked_up"))
    f = await w.update()
    h.check_eq(f.get("cursor"), c, "the update frame")
    await env.apost(h.update(oid, h.now_ms() - 3_600_000, lat=1.0, lng=2.0))  # stale
    await env.apost({"v": 1}, key="wrong-key-0000000000")                   # 401
    bad = h.Watcher(env.port, "/v1/track/bad!id")
    await bad.connect()
    code, _ = await bad.wait_closed()
    h.check_eq(code, 4400, "close code of a bad order id")
    # The daemon mostly waited between the scrapes: the busy time it reports must be
    # well below the wall time (were its waits counted as work, it would not be).  The
    # idle half second is that stimulus, not a wait for anything: every counter read
    # below was counted before the client saw what it counts (the 202s and 401 before
    # their answers, the update's frame and its age when it was written, the refusal
    # before the 4400 close).
    await asyncio.sleep(0.5)
    wall_ms = (time.monotonic() - t_before) * 1000
    raw = []
    after = scrape(env, raw)
    promtool_check(raw[0])
    # CPU time comes in clock ticks (10 ms): a young process may have used less.
    h.check(after.get("process_cpu_seconds_total", -1) >= 0, "process_cpu_seconds_total")
    for name in ("process_resident_memory_bytes", "process_open_fds", "process_max_fds",
                 "process_start_time_seconds"):
        h.check(after.get(name, 0) > 0, f"{name}: {after.get(name)!r}")
    h.check(abs(after["process_start_time_seconds"] - time.time()) < 600,
            f"process_start_time_seconds {after['process_start_time_seconds']} is not about now")
    h.check(after["process_open_fds"] <= after["process_max_fds"], "open fds <= max fds")
    builds = [k for k in after if k.startswith("trackgate_build_info{version=")]
    h.check(len(builds) == 1 and after[builds[0]] == 1, f"trackgate_build_info: {builds!r}")
    h.check_eq(after.get("trackgate_workers"), 1, "trackgate_workers without --workers")
    h.check(not [k for k in after if re.match(r"\w+_ms(_|\b)", k)],
            "a metric still named in milliseconds")

    def delta(name):
        return after.get(name, 0) - before.get(name, 0)

    h.check_eq(after.get('trackgate_connections{state="websocket"}'), 1, "websocket gauge")
    h.check_eq(after.get("trackgate_watched_orders"), 1, "watched orders")
    h.check_eq(after.get("trackgate_redis_subscriptions"), 1, "subscriptions")
    h.check_eq(after.get("trackgate_redis_up"), 1, "redis up")
    h.check(delta("trackgate_frames_in_total") >= 1, "frames in moved")
    h.check(delta("trackgate_frames_out_total") >= 2, "frames out moved (snapshot + update)")
    h.check_eq(delta('trackgate_ingest_requests_total{provider="canonical",status="202"}'), 2,
               "202s")
    h.check_eq(delta('trackgate_ingest_requests_total{provider="canonical",status="401"}'), 1,
               "401s")
    h.check_eq(delta('trackgate_ingest_updates_total{provider="canonical",result="applied"}'), 1,
               "applied")
    h.check_eq(delta('trackgate_ingest_updates_total{provider="canonical",result="stale"}'), 1,
               "stale")
    h.check_eq(delta('trackgate_refused_total{reason="order_id"}'), 1, "refused order id")
    h.check_eq(delta("trackgate_ingest_latency_seconds_count"), 2, "ingest latency observations")
    h.check(delta("trackgate_update_age_seconds_count") >= 1, "update age observed")
    h.check_eq(after.get('trackgate_update_age_seconds_bucket{le="+Inf"}'),
               after.get("trackgate_update_age_seconds_count"), "+Inf bucket == count")
    # Every loop iteration is timed: the traffic above took several, each >= 0 ms,
    # and the buckets are cumulative.
    h.check(delta("trackgate_loop_busy_seconds_count") >= 5, "loop iterations observed")
    busy = delta("trackgate_loop_busy_seconds_sum") * 1000
    h.check(0 <= busy < wall_ms / 2, f"loop busy {busy:.1f} ms over {wall_ms:.0f} ms of wall time")
    les = [(float(k.split('"')[1]), v) for k, v in after.items()
           if k.startswith("trackgate_loop_busy_seconds_bucket") and '"+Inf"' not in k]
    h.check(len(les) >= 5 and all(a[1] <= b[1] for a, b in zip(sorted(les), sorted(les)[1:])),
            f"loop busy buckets cumulative: {sorted(les)}")
    h.check_eq(after.get('trackgate_loop_busy_seconds_bucket{le="+Inf"}'),
               after.get("trackgate_loop_busy_seconds_count"), "loop busy +Inf bucket == count")
    print({k: v for k, v in after.items() if "bucket" not in k and v})


if __name__ == "__main__":
    # A fresh metrics port on each start attempt (a port picked once could be taken
    # by another test before the daemon binds it, on every retry).
    h.main(test, daemon_args=["--metrics-listen", h.FreePort("metrics")])
