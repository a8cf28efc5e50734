#!/usr/bin/python3
"""integration.watch_tool: trackgate-watch prints the frames and exits 0.

`trackgate-watch --server 127.0.0.1:PORT --count 2 ORDER` prints the snapshot
line, then (after one update is posted while it runs) the update line, and
exits 0.  Each line is one JSON frame, byte for byte what the daemon sent.
Also: --count 1 on an order with state prints a snapshot holding that state,
and a server shutting down (1001) ends it with status 0.

Resume and refusals (issue 13):
- --since CURSOR prints the missed updates, then the resumed frame
  (cursor, replayed), which counts towards --count and is announced on stderr;
  with nothing missed, --count 1 prints just the resumed frame and exits 0;
- a refused websocket exits 1 and says the close code and reason, also with
  --count 1 (the error frame before the close is printed but is not one of the
  expected frames): 4400 for a bad cursor, 1008 when max-per-client is reached.
"""
import json
import os
import queue
import signal
import subprocess
import sys
import threading

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


class Tool:
    def __init__(self, env, *args):
        h.check(env.args.watch, "--watch PATH (trackgate-watch) is required")
        self.argv = [env.args.watch, "--server", f"127.0.0.1:{env.port}", "--timeout", "20"] + \
            [str(a) for a in args]
        self.p = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE,
                                  preexec_fn=h._child_preexec(os.getpid()))
        h._children.append(self.p)
        self.lines = queue.Queue()
        self.stdout = []
        self.err = []
        threading.Thread(target=self._read, daemon=True).start()
        self.err_reader = threading.Thread(target=lambda: self.err.append(self.p.stderr.read()), daemon=True)
        self.err_reader.start()

    def _read(self):
        for line in self.p.stdout:
            self.stdout.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def line(self, timeout=5.0):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise h.TestFailure(f"{' '.join(self.argv)}: no output line within {timeout} s")
        h.check(line is not None, f"{' '.join(self.argv)}: stdout ended early "
                f"(status {self.p.poll()}, stderr {self.stderr()!r})")
        try:
            return json.loads(line)
        except ValueError:
            raise h.TestFailure(f"trackgate-watch printed a line that is not JSON: {line!r}")

    def wait(self, timeout=10.0):
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise h.TestFailure(f"{' '.join(self.argv)} did not exit within {timeout} s")
        return rc

    def stderr(self):
        """All the tool wrote on stderr, once it has exited ("" before)."""
        if self.p.poll() is None:
            return ""
        self.err_reader.join(5)
        return b"".join(self.err).decode("utf-8", "replace")


def test(env):
    oid = f"tool-{os.getpid()}"
    base = h.now_ms() - 60_000

    # --count 2: the snapshot (of a new order), then the update posted meanwhile.
    t = Tool(env, "--count", "2", oid)
    snap = t.line()
    h.check_eq(snap, {"type": "snapshot", "order_id": oid, "state": None, "cursor": None},
               "the first line")
    u = h.update(oid, base, lat=59.33, lng=18.07, status="courier_assigned")
    cursor = env.apply(u)
    upd = t.line()
    h.check_eq(upd, {"type": "update", "order_id": oid, "update": u, "cursor": cursor},
               "the second line")
    rc = t.wait()
    h.check_eq(rc, 0, f"trackgate-watch --count 2 exit status (stderr {t.stderr()!r})")
    h.check_eq(len(t.stdout), 2, f"trackgate-watch printed {len(t.stdout)} lines: {t.stdout!r}")

    # --count 1 on an order with state: the snapshot carries it.
    t = Tool(env, "--count", "1", oid)
    snap = t.line()
    h.check_eq((snap["type"], snap["cursor"]), ("snapshot", cursor), "snapshot of a known order")
    h.check_eq((snap["state"]["status"], snap["state"]["location"]["lat"]),
               ("courier_assigned", 59.33), "state in the tool's snapshot")
    h.check_eq(t.wait(), 0, "trackgate-watch --count 1 exit status")

    # The subscription is released once the tool has gone.
    h.wait_until(lambda: env.redis.numsub(f"trk:{{{oid}}}") == 0, 3.0,
                 what="no subscriber after the tool exited")

    # A refused websocket: exit 1 with the close code and reason, even with --count 1.
    t = Tool(env, "--since", "zzz", "--count", "1", oid)
    rc = t.wait()
    err = t.stderr()
    h.check_eq(rc, 1, f"trackgate-watch --count 1 refused with 4400: exit status (stdout {t.stdout!r}, "
               f"stderr {err!r})")
    h.check("4400" in err and "since must be a cursor" in err,
            f"trackgate-watch should report the 4400 close and its reason: {err!r}")
    h.check(all(json.loads(line).get("type") == "error" for line in t.stdout),
            f"a refused websocket prints only the error frame: {t.stdout!r}")

    # Resume: the missed update, then the resumed frame (both counted).
    u2 = h.update(oid, base + 1000, lat=59.34, lng=18.08)
    cursor2 = env.apply(u2)
    t = Tool(env, "--since", cursor, "--count", "2", oid)
    upd = t.line()
    h.check_eq(upd, {"type": "update", "order_id": oid, "update": u2, "cursor": cursor2},
               "the missed update after --since")
    res = t.line()
    h.check_eq(res, {"type": "resumed", "order_id": oid, "cursor": cursor2, "replayed": 1},
               "the resumed frame after the missed update")
    rc = t.wait()
    err = t.stderr()
    h.check_eq(rc, 0, f"trackgate-watch --since --count 2 exit status (stderr {err!r})")
    h.check(f"resumed: 1 missed frame(s) replayed, live after {cursor2}" in err,
            f"trackgate-watch announces the resume on stderr: {err!r}")

    # A clean resume (nothing missed): --count 1 ends on the resumed frame.
    t = Tool(env, "--since", cursor2, "--count", "1", oid)
    res = t.line()
    h.check_eq(res, {"type": "resumed", "order_id": oid, "cursor": cursor2, "replayed": 0},
               "the resumed frame of a clean resume")
    h.check_eq(t.wait(), 0, f"trackgate-watch clean resume exit status (stderr {t.stderr()!r})")
    h.check_eq(len(t.stdout), 1, f"a clean resume prints one line: {t.stdout!r}")

    # A tool still watching when the server shuts down ends with 0 (1001 is normal).
    t = Tool(env, oid)
    t.line()
    env.daemon.terminated = True
    env.daemon.proc.send_signal(signal.SIGTERM)
    rc = t.wait()
    err = t.stderr()
    h.check_eq(rc, 0, f"trackgate-watch after the server closed with 1001 (stderr {err!r})")
    h.check("1001" in err, f"trackgate-watch should report the 1001 close: {err!r}")
    try:
        drc = env.daemon.proc.wait(h.SHUTDOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise h.TestFailure("trackgated did not exit after SIGTERM")
    h.check_eq(drc, 0, "trackgated exit status after SIGTERM")

    # max-per-client 1: while one tool holds the address's only websocket, a second
    # one with --count 1 is refused with 1008 and exits 1.
    env.daemon.extra_args += ["--max-per-client", "1"]
    env.daemon.start()
    holder = Tool(env, oid)
    h.check_eq(holder.line()["type"], "snapshot", "the first tool's snapshot")
    t = Tool(env, "--count", "1", oid)
    rc = t.wait()
    err = t.stderr()
    h.check_eq(rc, 1, f"trackgate-watch --count 1 refused with 1008: exit status (stdout {t.stdout!r}, "
               f"stderr {err!r})")
    h.check("1008" in err and "too many connections from your address" in err,
            f"trackgate-watch should report the 1008 close and its reason: {err!r}")
    holder.p.send_signal(signal.SIGINT)
    h.check_eq(holder.wait(), 0, "the holding tool exits 0 on SIGINT")


if __name__ == "__main__":
    h.main(test)
