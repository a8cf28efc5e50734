#!/usr/bin/python3
"""integration.bench_tool: trackgate-bench counts what it is sent, and loses nothing it is sent.

The benchmarks' figures are only as good as the load generator
(tools/bench/bench.c), so its counting is checked against the real daemon:

- `watch` (40 websockets over 4 orders) + `publish --redis` (100 updates/s for
  2 s through the script): the publisher's answers are all ok, the watchers
  count every update once per watcher of its order, and report no loss and a
  latency.
- A gap in an order's event ids (b1, then b3, posted to /v1/updates) is
  reported as one lost update per watcher of that order.
- `floor` (the send()-only server the fan-out is compared with) answers
  /healthz, takes the same watchers, and on SIGUSR1 sends rate x duration
  updates to every websocket of each order: the watchers count exactly the
  frames it says it sent, and it drops none.
"""
import json
import os
import select
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

WATCHERS, ORDERS = 40, 4


class Watch:
    """trackgate-bench watch in the background; ready once every websocket is open."""

    def __init__(self, bench, port, prefix, duration, *extra):
        self.argv = [bench, "watch", "--server", f"127.0.0.1:{port}", "--watchers", str(WATCHERS),
                     "--orders", str(ORDERS), "--duration", str(duration), "--prefix", prefix,
                     "--ramp", "10", *extra]
        self.p = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True,
                                  preexec_fn=h._child_preexec(os.getpid()))
        h._children.append(self.p)
        line = self.p.stderr.readline()
        h.check(line.startswith(f"trackgate-bench: {WATCHERS}/{WATCHERS} websockets open"),
                f"{' '.join(self.argv)}: first line {line!r} (want all {WATCHERS} open)")

    def result(self, timeout=30):
        try:
            out, err = self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise h.TestFailure(f"{' '.join(self.argv)} did not finish within {timeout} s")
        h.check_eq(self.p.returncode, 0, f"trackgate-bench watch exit status (stderr {err!r})")
        return json.loads(out.strip().splitlines()[-1])


def test(env):
    bench = env.args.bench
    h.check(bench and os.access(bench, os.X_OK), "--bench PATH (trackgate-bench) is required")

    # Through the script: every update reaches every watcher of its order once.
    w = Watch(bench, env.port, "bt", 5)
    r = subprocess.run([bench, "publish", "--redis", f"unix://{env.redis.sock}", "--orders",
                        str(ORDERS), "--rate", "100", "--duration", "2", "--prefix", "bt"],
                       capture_output=True, text=True, timeout=30)
    h.check_eq(r.returncode, 0, f"trackgate-bench publish exit status (stderr {r.stderr!r})")
    pub = json.loads(r.stdout.strip().splitlines()[-1])
    # About 200: the publisher stops at its first tick after 2 s, and a busy machine
    # (ctest -j) may delay ticks it never makes up.
    h.check(120 <= pub["sent"] <= 201, f"100/s for 2 s sent {pub['sent']} updates")
    h.check_eq((pub["ok"], pub["failed"]), (pub["sent"], 0), "publish: answers ok / failed")
    got = w.result()
    per_order = WATCHERS // ORDERS
    h.check_eq(got["opened"], WATCHERS, "watch: websockets opened")
    # Snapshots are not checked: they arrive as each websocket opens, mostly before the
    # measuring window (which starts once all are open), and only the window is counted.
    h.check_eq(got["updates"], pub["ok"] * per_order, "watch: updates counted")
    h.check_eq(got["lost"], 0, "watch: lost")
    h.check(0 < got["lat_us"]["p50"] <= got["lat_us"]["p99"] <= got["lat_us"]["max"],
            f"watch: latency percentiles {got['lat_us']!r}")

    # A gap in the sequence is a loss, counted once per watcher of the order.
    w = Watch(bench, env.port, "bg", 2)
    base = h.now_ms()
    for seq in (1, 3):
        env.apply(h.update("bg-0", base + seq, lat=52.5, lng=13.4,
                           event_id=f"b{seq}-{int(time.time() * 1e6)}"))
    got = w.result()
    h.check_eq((got["updates"], got["lost"]), (2 * per_order, per_order),
               "watch after b1, b3: updates and lost")

    # floor: the frames it reports sent are the frames the watchers count.
    fl, port = start_floor(env, bench)
    w = Watch(bench, port, "bf", 3)
    fl.send_signal(signal.SIGUSR1)
    ready, _, _ = select.select([fl.stdout], [], [], 15)
    h.check(ready, "floor printed no result within 15 s of SIGUSR1")
    res = json.loads(fl.stdout.readline())
    got = w.result()
    h.check_eq((res["ok"], res["dropped"], res["cut"]), (200, 0, 0),
               "floor: updates sent, frames dropped, websockets cut")
    h.check_eq(res["frames"], 200 * per_order, "floor: frames sent")
    h.check_eq((got["updates"], got["lost"]), (res["frames"], 0), "watch on floor: updates, lost")

    # --non-reading 0.5: every other websocket stalls (orders 1 and 3 here); the
    # readers count exactly their share of what floor sent (it dropped nothing:
    # the stalled ones' kernel buffers take 50 frames each).
    w = Watch(bench, port, "bn", 3, "--non-reading", "0.5")
    fl.send_signal(signal.SIGUSR1)
    ready, _, _ = select.select([fl.stdout], [], [], 15)
    h.check(ready, "floor printed no result within 15 s of the second SIGUSR1")
    res = json.loads(fl.stdout.readline())
    got = w.result()
    h.check_eq((res["frames"], res["dropped"], res["cut"]), (200 * per_order, 0, 0),
               "floor with stalled watchers: frames sent, dropped, cut")
    h.check_eq((got["updates"], got["lost"]), (res["frames"] // 2, 0),
               "watch --non-reading 0.5: updates counted by the readers, lost")
    fl.send_signal(signal.SIGTERM)
    h.check_eq(fl.wait(10), 0, "floor exit status after SIGTERM (an ASan build: no leaks; "
               f"see {env.log_dir}/floor.log)")


def start_floor(env, bench, attempts=5):
    """trackgate-bench floor on a free port: (process, port).  Each attempt takes a fresh
    port; floor exits when another process took it first, and the next attempt tries
    another.  It is up once it holds the listening socket itself (/proc) and answers."""
    log = os.path.join(env.log_dir, "floor.log")
    for attempt in range(attempts):
        port = h.free_port()
        with open(log, "ab") as f:
            f.write(f"=== floor attempt {attempt + 1} on port {port}\n".encode())
        fl = subprocess.Popen([bench, "floor", "--server", f"127.0.0.1:{port}", "--orders",
                               str(ORDERS), "--rate", "200", "--duration", "1"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=open(log, "ab"), text=True,
                              preexec_fn=h._child_preexec(os.getpid()))
        h._children.append(fl)

        def up():
            if fl.poll() is not None:
                return "exited"
            try:
                return (h.listens(fl.pid, port) and
                        h.http_request(port, "GET", "/healthz", timeout=1.0).status == 200)
            except OSError:
                return False
        state = h.wait_until(up, 5.0, what=f"floor on port {port} answers /healthz")
        if state is True:
            return fl, port
        h.check("cannot listen" in h.tail(log, 5),
                f"floor exited with {fl.returncode} at start-up:\n{h.tail(log)}")
    raise h.TestFailure(f"floor could not bind a port in {attempts} attempts:\n{h.tail(log)}")


if __name__ == "__main__":
    h.main(test)
