#!/usr/bin/python3
"""harness.py - the integration tests' small library.

Every test script starts its own private redis-server (on a unix socket in a
temporary directory, no persistence) and its own trackgated on a free
127.0.0.1 port, talks to them over real sockets (http.client, raw TCP, the
`websockets` library) and stops them again.  Nothing is mocked.

Run with Debian's interpreter, /usr/bin/python3: it is the one that sees the
python3-websockets package.

Process hygiene, because a test that leaks a daemon poisons the next run:
  - every child gets PR_SET_PDEATHSIG=SIGKILL, so it dies with the test even
    when the test itself is SIGKILLed (a ctest timeout);
  - Env.close() runs from try/finally; an atexit hook and SIGTERM/SIGINT/SIGHUP
    handlers kill whatever is still running;
  - every child's pid and start time go to RUN_DIR/pids, which the
    integration.cleanup fixture checks (`harness.py leakcheck`).

A test's logs (trackgated's stderr, redis-server's log) are kept under
RUN_DIR/<test name>/ and their tails are printed when the test fails.

Command line of a test script (see CMakeLists.txt):
  test_X.py --trackgated PATH [--watch PATH] [--run-dir DIR]
The fixture steps:
  harness.py preflight --trackgated PATH --watch PATH --run-dir DIR
  harness.py leakcheck --run-dir DIR
"""

import argparse
import asyncio
import atexit
import ctypes
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

try:
    import websockets
    import websockets.exceptions
except ImportError:  # reported by main() / preflight with a hint
    websockets = None

REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"
INGEST_KEY = "itest-ingest-key-0123456789abcdef"
OTHER_KEY = "itest-second-key-fedcba9876543210"

STARTUP_TIMEOUT = 10.0   # seconds for redis / trackgated to become ready
SHUTDOWN_TIMEOUT = 10.0  # seconds trackgated may take to exit after SIGTERM
FRAME_TIMEOUT = 5.0      # seconds to wait for one websocket frame

# --- process bookkeeping ------------------------------------------------------

_children = []      # every Popen this process started
_pid_file = None    # RUN_DIR/pids, for the leak check fixture

try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:
    _libc = None
_PR_SET_PDEATHSIG = 1


def _child_preexec(parent_pid):
    def preexec():
        # Die with the test process, however it dies (ctest timeouts SIGKILL it).
        if _libc is not None:
            _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(111)
    return preexec


def _proc_starttime(pid):
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # comm (field 2) may hold spaces: split after its closing parenthesis.
    rest = stat[stat.rindex(")") + 2:].split()
    return rest[19]


def _proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[0]


def spawn(argv, log_path, name):
    """Starts a child with stdout+stderr appended to log_path; records it."""
    log = open(log_path, "ab")
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True, preexec_fn=_child_preexec(os.getpid()))
    finally:
        log.close()
    p.tg_name = name
    _children.append(p)
    if _pid_file:
        try:
            with open(_pid_file, "a") as f:
                f.write(f"{p.pid} {_proc_starttime(p.pid)} {name} {sys.argv[0]}\n")
        except OSError:
            pass
    return p


def kill_all_children():
    """SIGKILLs and reaps every child still running. Safe to call repeatedly."""
    for p in _children:
        if p.poll() is None:
            try:
                p.kill()
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


atexit.register(kill_all_children)


class Interrupted(BaseException):
    pass


def _on_signal(signum, frame):
    # Unwind through the try/finally blocks (which stop the children), then exit.
    signal.signal(signum, signal.SIG_DFL)
    raise Interrupted(f"signal {signum}")


def install_signal_handlers():
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, _on_signal)


# --- small utilities ----------------------------------------------------------

class TestFailure(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def check_eq(got, want, what):
    if got != want:
        raise TestFailure(f"{what}: expected {want!r}, got {got!r}")


def free_port():
    """A 127.0.0.1 port free right now.  Another process may take it before the caller
    binds it: bind it at once, and pick a fresh one (never the same) if that fails.
    Daemon.start does so for its own ports (FreePort)."""
    return free_ports(1)[0]


def free_ports(n):
    """n distinct free 127.0.0.1 ports (each probe socket is held until all are picked)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class FreePort:
    """A placeholder in Daemon.extra_args for a second address of the daemon, e.g.
    ["--metrics-listen", FreePort("metrics")]: each start attempt replaces it with
    127.0.0.1:<a fresh free port> and records the port in daemon.ports[name]."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"FreePort({self.name!r})"


def socket_inodes(pid):
    """The inodes of the sockets process pid holds (from /proc/PID/fd)."""
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", link)
        if m:
            inodes.add(int(m.group(1)))
    return inodes


def tcp_sockets(port, state):
    """[(remote port, socket inode)] of the TCP sockets in state (hex, as in /proc/net/tcp:
    "01" established, "0A" listening) on local port, or on any local port when port is None."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            local, remote, st, inode = cols[1], cols[2], cols[3], int(cols[9])
            if st == state and inode and (port is None or
                                          int(local.rsplit(":", 1)[1], 16) == port):
                out.append((int(remote.rsplit(":", 1)[1], 16), inode))
    return out


def listens(pid, port):
    """True when process pid holds a TCP socket listening on port (from /proc)."""
    return bool({inode for _, inode in tcp_sockets(port, "0A")} & socket_inodes(pid))


def seeded_random(what):
    """A random.Random for a randomised test; prints its seed.  TRACKGATE_TEST_SEED=<n> in
    the environment replays a run."""
    env = os.environ.get("TRACKGATE_TEST_SEED")
    seed = int(env) if env else int.from_bytes(os.urandom(4), "big")
    print(f"{what}: seed {seed} (TRACKGATE_TEST_SEED={seed} repeats it)", flush=True)
    return random.Random(seed)


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until it returns a truthy value; returns it or raises."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise TestFailure(f"timed out after {timeout:.1f} s waiting for {what} (last: {last!r})")
        time.sleep(interval)


async def async_wait_until(pred, timeout, interval=0.05, what="condition"):
    """wait_until for coroutines: pred is a plain (quick) function."""
    deadline = time.monotonic() + timeout
    while True:
        last = await asyncio.to_thread(pred)
        if last:
            return last
        if time.monotonic() >= deadline:
            raise TestFailure(f"timed out after {timeout:.1f} s waiting for {what} (last: {last!r})")
        await asyncio.sleep(interval)


def parse_cursor(c):
    """'ms-seq' -> (ms, seq) for ordering; raises on anything else."""
    check(isinstance(c, str), f"cursor must be a string, got {c!r}")
    ms, sep, seq = c.partition("-")
    check(sep == "-" and ms.isdigit() and seq.isdigit(), f"malformed cursor {c!r}")
    return int(ms), int(seq)


def now_ms():
    return int(time.time() * 1000)


def update(order_id, ts, lat=None, lng=None, status=None, event_id=None, eta=None,
           provider="itest", courier=None, places=None):
    """A canonical update v1 (a dict, to post as JSON)."""
    u = {"v": 1, "order_id": order_id, "provider": provider, "ts": ts}
    if event_id is not None:
        u["event_id"] = event_id
    if lat is not None:
        u["location"] = {"lat": lat, "lng": lng}
    if status is not None:
        u["status"] = status
    if courier is not None:
        u["courier"] = courier
    if eta is not None:
        u["eta"] = eta
    if places is not None:
        u["places"] = places
    return u


def log_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def log_since(path, offset):
    """What was appended to the file at path after offset (a log_size() taken earlier)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def tail(path, lines=60):
    try:
        with open(path, "rb") as f:
            data = f.read().decode("utf-8", "replace").splitlines()
    except OSError as e:
        return f"(cannot read {path}: {e})"
    return "\n".join(data[-lines:])


# --- HTTP -----------------------------------------------------------------------

class Response:
    """status, headers (lower-case names), json (parsed body or None), raw body."""

    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    def __iter__(self):  # status, headers, body = env.http(...)
        return iter((self.status, self.headers, self.json))

    def __repr__(self):
        return f"<{self.status} {self.raw[:300]!r}>"


def http_request(port, method, path, body=None, headers=None, timeout=5.0):
    """One request on a fresh connection; returns a Response."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        raw = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, raw)
    finally:
        conn.close()


def raw_exchange(port, data, timeout=3.0, shut_write=False):
    """Sends bytes on a raw TCP socket and returns everything read until EOF or timeout."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if shut_write:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def scrape_metrics(port, timeout=5.0):
    """GET /metrics on port: {sample name with its labels: value}, e.g.
    'trackgate_connections{state="websocket"}': 1.0."""
    r = http_request(port, "GET", "/metrics", timeout=timeout)
    check(r.status == 200, f"GET /metrics on port {port}: {r!r}")
    out = {}
    for line in r.raw.decode("utf-8", "replace").splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


# --- redis-server -------------------------------------------------------------------

class Redis:
    """A private redis-server on a unix socket, no TCP, no persistence."""

    def __init__(self, sock_dir, log_dir):
        self.sock_dir = sock_dir
        self.sock = os.path.join(sock_dir, "redis.sock")
        self.log = os.path.join(log_dir, "redis.log")
        self.proc = None

    def start(self):
        argv = [REDIS_SERVER, "--port", "0", "--unixsocket", self.sock, "--unixsocketperm", "700",
                "--save", "", "--appendonly", "no", "--dir", self.sock_dir,
                "--daemonize", "no", "--loglevel", "notice"]
        self.proc = spawn(argv, self.log, "redis-server")
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise TestFailure(f"redis-server exited with {self.proc.returncode}:\n{tail(self.log)}")
            if os.path.exists(self.sock):
                try:
                    if self.cli("PING") == "PONG":
                        return
                except (subprocess.SubprocessError, OSError):
                    pass
            if time.monotonic() >= deadline:
                raise TestFailure(f"redis-server not ready after {STARTUP_TIMEOUT} s:\n{tail(self.log)}")
            time.sleep(0.02)

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def cli(self, *args, timeout=10.0):
        """Runs redis-cli -s SOCK ARGS...; returns its stdout stripped (raw mode)."""
        r = subprocess.run([REDIS_CLI, "-s", self.sock] + [str(a) for a in args],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        out = r.stdout.decode("utf-8", "replace").strip()
        if r.returncode != 0:
            raise subprocess.SubprocessError(
                f"redis-cli {' '.join(map(str, args))} failed ({r.returncode}): "
                f"{out} {r.stderr.decode('utf-8', 'replace').strip()}")
        return out

    def numsub(self, channel):
        out = self.cli("PUBSUB", "NUMSUB", channel).splitlines()
        check(len(out) == 2 and out[0] == channel, f"unexpected PUBSUB NUMSUB reply {out!r}")
        return int(out[1])


# --- trackgated -----------------------------------------------------------------

class Daemon:
    """trackgated on a free 127.0.0.1 port."""

    def __init__(self, binary, redis_sock, key_file, log_dir, extra_args=()):
        self.binary = binary
        self.redis_sock = redis_sock
        self.key_file = key_file
        self.log = os.path.join(log_dir, "trackgated.log")
        self.extra_args = list(extra_args)
        self.proc = None
        self.port = None
        self.ports = {}          # FreePort name -> the port this start gave it
        self.log_offset = 0      # size of the log when this start spawned the process
        self.terminated = False  # terminate() ran: the test stopped it on purpose

    def start(self, attempts=5, wait_ready=True, port=None, ready=None):
        """Starts it on a free port, or on port (a restart on the same address).

        Each attempt picks fresh ports (the main one unless port is given, and one per
        FreePort in extra_args): when another process took one between the probe and the
        daemon's bind, the daemon logs listen_failed and exits, and the next attempt
        tries other ports.  A restart on a given port is not retried.  ready(port) says
        when the daemon serves (default: GET /readyz answers 200, see wait_ready)."""
        self.terminated = False
        for attempt in range(attempts):
            placeholders = [a for a in self.extra_args if isinstance(a, FreePort)]
            picked = free_ports(len(placeholders) + (0 if port else 1))
            self.port = port or picked.pop()
            self.ports = {}
            extra = []
            for a in self.extra_args:
                if isinstance(a, FreePort):
                    self.ports[a.name] = picked.pop()
                    a = f"127.0.0.1:{self.ports[a.name]}"
                extra.append(a)
            argv = [self.binary, "--listen", f"127.0.0.1:{self.port}",
                    "--redis", f"unix://{self.redis_sock}", "--ingest-key-file", self.key_file,
                    "--log-level", "debug"] + extra
            with open(self.log, "ab") as f:
                f.write(f"=== start attempt {attempt + 1}: {' '.join(argv)}\n".encode())
            self.log_offset = log_size(self.log)
            self.proc = spawn(argv, self.log, "trackgated")
            if not wait_ready:
                return
            try:
                self.wait_ready(ready=ready)
                return
            except TestFailure:
                if (port is None and self.proc.poll() is not None
                        and " listen_failed " in log_since(self.log, self.log_offset)):
                    continue  # somebody took a port between our probe and its bind: retry
                raise
        raise TestFailure(f"trackgated could not bind a port in {attempts} attempts:\n{tail(self.log)}")

    def listening_logged(self):
        """This start's own `listening` line (one per worker with --workers): the proof that
        the port answering is this process's, not another that took it first."""
        return re.search(rf" listening (worker=\d+ )?addr=127\.0\.0\.1:{self.port} ",
                         log_since(self.log, self.log_offset)) is not None

    def wait_ready(self, timeout=STARTUP_TIMEOUT, ready=None):
        """Until this start has logged `listening` on its port and ready(port) is true
        (default: GET /readyz answers 200)."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            if self.proc.poll() is not None:
                raise TestFailure(f"trackgated exited with {self.proc.returncode} during start-up:\n"
                                  f"{tail(self.log)}")
            if not self.listening_logged():
                last = "no `listening` line yet"
            elif ready is not None:
                last = ready(self.port)
                if last:
                    return
            else:
                try:
                    last = http_request(self.port, "GET", "/readyz", timeout=1.0)
                    if last.status == 200:
                        return
                except OSError as e:
                    last = e
            if time.monotonic() >= deadline:
                raise TestFailure(f"trackgated not ready after {timeout} s (last: {last!r}):\n"
                                  f"{tail(self.log)}")
            time.sleep(0.02)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout=SHUTDOWN_TIMEOUT):
        """SIGTERM; asserts the daemon exits 0 within timeout. Returns the seconds it took."""
        check(self.alive(), f"trackgated is not running (exit status {self.proc.returncode})")
        t0 = time.monotonic()
        self.terminated = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise TestFailure(f"trackgated did not exit within {timeout} s of SIGTERM")
        took = time.monotonic() - t0
        check(rc == 0, f"trackgated exited with status {rc} after SIGTERM (want 0)")
        return took


# --- websocket watcher --------------------------------------------------------------

class Watcher:
    """A websocket client that collects every frame and how the socket closed."""

    def __init__(self, port, path):
        self.url = f"ws://127.0.0.1:{port}{path}"
        self.path = path
        self.ws = None
        self.frames = []          # parsed JSON of every text frame, in order
        self._queue = asyncio.Queue()
        self._task = None
        self.closed = asyncio.Event()
        self.close_code = None
        self.close_reason = None
        self.error = None

    async def connect(self, timeout=5.0):
        check(websockets is not None, "the python3-websockets module is not importable")
        self.ws = await websockets.connect(self.url, open_timeout=timeout, close_timeout=5,
                                           ping_interval=None, max_queue=None,
                                           max_size=4 * 1024 * 1024)
        self._task = asyncio.ensure_future(self._reader())
        return self

    async def _reader(self):
        try:
            async for msg in self.ws:
                try:
                    frame = json.loads(msg)
                except (TypeError, ValueError):
                    frame = {"type": "<not json>", "raw": msg}
                self.frames.append(frame)
                self._queue.put_nowait(frame)
        except websockets.exceptions.ConnectionClosed:
            pass
        except Exception as e:  # pragma: no cover - surfaced through next()
            self.error = e
        finally:
            try:
                await asyncio.wait_for(self.ws.wait_closed(), 10)
            except asyncio.TimeoutError:
                pass
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason
            self.closed.set()

    async def next(self, timeout=FRAME_TIMEOUT, what="a frame"):
        """The next frame; fails on timeout or if the socket closed first."""
        if not self._queue.empty():
            return self._queue.get_nowait()
        get = asyncio.ensure_future(self._queue.get())
        closed = asyncio.ensure_future(self.closed.wait())
        done, _ = await asyncio.wait({get, closed}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        closed.cancel()
        if get in done:
            return get.result()
        get.cancel()
        if self.closed.is_set() and not self._queue.empty():
            return self._queue.get_nowait()
        if self.closed.is_set():
            raise TestFailure(f"{self.path}: socket closed ({self.close_code} {self.close_reason!r}) "
                              f"while waiting for {what}; frames so far: {self.frames!r}")
        raise TestFailure(f"{self.path}: no {what} within {timeout} s; frames so far: {self.frames!r}")

    async def snapshot(self, timeout=FRAME_TIMEOUT):
        f = await self.next(timeout, "the snapshot frame")
        check(f.get("type") == "snapshot", f"{self.path}: first frame is not a snapshot: {f!r}")
        return f

    async def update(self, timeout=FRAME_TIMEOUT):
        f = await self.next(timeout, "an update frame")
        check(f.get("type") == "update", f"{self.path}: expected an update frame, got {f!r}")
        return f

    def pending(self):
        """Frames received but not yet taken with next()."""
        out = []
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    async def wait_closed(self, timeout=FRAME_TIMEOUT):
        try:
            await asyncio.wait_for(self.closed.wait(), timeout)
        except asyncio.TimeoutError:
            raise TestFailure(f"{self.path}: not closed within {timeout} s; frames: {self.frames!r}")
        return self.close_code, self.close_reason

    async def close(self):
        if self.ws is not None:
            await self.ws.close()
            await self.wait_closed(10)

    async def roundtrip(self, timeout=FRAME_TIMEOUT):
        """A ping and its pong: once it returns, the server has read and handled every
        message this client sent before (a barrier).  Raises ConnectionClosed if the
        socket closes first, TestFailure on timeout."""
        pong = await self.ws.ping()
        try:
            await asyncio.wait_for(pong, timeout)
        except asyncio.TimeoutError:
            raise TestFailure(f"{self.path}: no pong within {timeout} s")


# --- one test's environment --------------------------------------------------------

class Env:
    """A private redis-server + trackgated for one test script."""

    def __init__(self, args, name, daemon_args=()):
        self.args = args
        self.name = name
        self.log_dir = os.path.join(args.run_dir, name)
        shutil.rmtree(self.log_dir, ignore_errors=True)
        os.makedirs(self.log_dir, exist_ok=True)
        # Unix socket paths are limited to 107 bytes: keep them short, in /tmp.
        self.sock_dir = tempfile.mkdtemp(prefix="tg-it-")
        self.key_file = os.path.join(self.log_dir, "ingest.keys")
        with open(self.key_file, "w") as f:
            f.write(f"# integration test keys\n{INGEST_KEY}\n{OTHER_KEY}\n")
        self.redis = Redis(self.sock_dir, self.log_dir)
        self.daemon = Daemon(args.trackgated, self.redis.sock, self.key_file, self.log_dir,
                             daemon_args)
        self.watchers = []

    @property
    def port(self):
        return self.daemon.port

    def start(self):
        self.redis.start()
        self.daemon.start()
        return self

    def close(self, graceful=True):
        """Stops trackgated (asserting SIGTERM -> exit 0 in 10 s when graceful), then Redis."""
        try:
            if graceful and self.daemon.alive():
                self.daemon.terminate()
        finally:
            kill_all_children()
            shutil.rmtree(self.sock_dir, ignore_errors=True)

    def dump_logs(self):
        for what, proc in (("trackgated", self.daemon.proc), ("redis-server", self.redis.proc)):
            if proc is not None and proc.poll() is not None:
                rc = proc.returncode
                how = f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}"
                print(f"----- {what} (pid {proc.pid}) is not running: {how} -----")
        for path, lines in ((self.daemon.log, 80), (self.redis.log, 15)):
            print(f"----- tail of {path} -----")
            print(tail(path, lines))

    def assert_alive(self):
        check(self.daemon.alive(),
              f"trackgated died (exit status {self.daemon.proc.returncode}):\n{tail(self.daemon.log)}")

    def hs256_token_key(self, kid="k1", secret=None):
        """Writes an HS256 tracking-link key (a fresh random one unless secret is given) to a
        mode-600 file in the run directory and adds --token-key-file KID=HS256:PATH to the
        daemon's arguments (before env.start()); returns the secret."""
        secret = secret if secret is not None else os.urandom(32).hex()
        key_file = os.path.join(self.log_dir, f"{kid}.secret")
        with open(key_file, "w") as f:
            f.write(secret + "\n")
        os.chmod(key_file, 0o600)
        self.daemon.extra_args += ["--token-key-file", f"{kid}=HS256:{key_file}"]
        return secret

    def metrics(self):
        """The daemon's /metrics on its main port (no --metrics-listen)."""
        return scrape_metrics(self.port)

    async def wait_metric(self, name, want, timeout=5.0):
        """Polls /metrics until the sample name equals want (or want(value) is true, for a
        callable); returns the value.  A counter is read once the daemon has counted."""
        ok = want if callable(want) else (lambda v: v == want)
        deadline = time.monotonic() + timeout
        while True:
            v = (await asyncio.to_thread(self.metrics)).get(name)
            if ok(v):
                return v
            if time.monotonic() >= deadline:
                raise TestFailure(f"timed out after {timeout:.1f} s waiting for {name} "
                                  f"{'to pass its check' if callable(want) else f'== {want}'} "
                                  f"(last value {v})")
            await asyncio.sleep(0.05)

    # HTTP
    def http(self, method, path, body=None, headers=None, timeout=5.0):
        return http_request(self.port, method, path, body, headers, timeout)

    def post(self, body, key=INGEST_KEY, content_type="application/json", headers=None):
        h = {"Content-Type": content_type}
        if key is not None:
            h["Authorization"] = f"Bearer {key}"
        h.update(headers or {})
        return self.http("POST", "/v1/updates", body, h)

    def post_ok(self, body):
        """POSTs and asserts 202; returns the results list."""
        r = self.post(body)
        check(r.status == 202, f"POST /v1/updates {json.dumps(body)[:300]} -> {r!r} (want 202)")
        check(isinstance(r.json, dict) and isinstance(r.json.get("results"), list),
              f"202 without a results list: {r!r}")
        return r.json["results"]

    def apply(self, u):
        """POSTs one update, asserts it was applied; returns its cursor."""
        res = self.post_ok(u)
        check(len(res) == 1 and res[0].get("result") == "applied",
              f"update {u!r} was not applied: {res!r}")
        parse_cursor(res[0].get("cursor"))
        return res[0]["cursor"]

    async def apost(self, body, **kw):
        return await asyncio.to_thread(self.post, body, **kw)

    async def apost_ok(self, body):
        return await asyncio.to_thread(self.post_ok, body)

    async def aapply(self, u):
        return await asyncio.to_thread(self.apply, u)

    # websockets
    async def close_watchers(self):
        """Closes every watcher still open (client-initiated close)."""
        for w in self.watchers:
            if not w.closed.is_set():
                await w.close()

    def abort_watchers(self):
        """Drops every watcher's TCP connection at once."""
        for w in self.watchers:
            if w.ws is not None and w.ws.transport is not None:
                w.ws.transport.abort()

    async def watch(self, order_id=None, path=None, snapshot=True):
        """Connects a watcher; with snapshot=True also waits for (and checks) its snapshot."""
        w = Watcher(self.port, path if path is not None else f"/v1/track/{order_id}")
        await w.connect()
        self.watchers.append(w)
        if snapshot:
            snap = await w.snapshot()
            if order_id is not None:
                check_eq(snap.get("order_id"), order_id, f"{w.path}: snapshot order_id")
        return w


# --- running a test ------------------------------------------------------------------

def parse_args(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--trackgated", default=os.environ.get("TRACKGATED"),
                    help="path of the trackgated binary")
    ap.add_argument("--watch", default=os.environ.get("TRACKGATE_WATCH"),
                    help="path of the trackgate-watch binary")
    ap.add_argument("--bench", default=os.environ.get("TRACKGATE_BENCH"),
                    help="path of the trackgate-bench binary (tools/bench)")
    ap.add_argument("--run-dir", default=None,
                    help="where logs and the pid list go (default: a temporary directory)")
    args = ap.parse_args(argv)
    if not args.trackgated:
        ap.error("--trackgated PATH is required")
    if not args.run_dir:
        args.run_dir = tempfile.mkdtemp(prefix="tg-it-run-")
    os.makedirs(args.run_dir, exist_ok=True)
    return args



async def stop_daemon(env, ck):
    """SIGTERM at the end of a test even when checks failed, so that an ASan build's exit
    status (a leak report makes it non-zero) is always checked: exit 0 within 10 s.
    ck: a Checks collecting the failure."""
    await env.close_watchers()
    try:
        took = await asyncio.to_thread(env.daemon.terminate)
        print(f"trackgated exited 0 {took:.2f} s after SIGTERM")
    except TestFailure as e:
        ck(False, f"{e}\n{tail(env.daemon.log, 40)}")

def main(test, name=None, daemon_args=(), start=True):
    """Runs one test: test(env) (a function or a coroutine function) with a fresh Env.

    The Env is always torn down; on success the daemon must also exit 0 on
    SIGTERM within 10 s.  Exits 0 on success, 1 on failure.
    """
    global _pid_file
    args = parse_args()
    name = name or os.path.splitext(os.path.basename(sys.argv[0]))[0]
    _pid_file = os.path.join(args.run_dir, "pids")
    install_signal_handlers()
    if websockets is None:
        print("FAIL: /usr/bin/python3 cannot import websockets (apt install python3-websockets)")
        sys.exit(1)
    t0 = time.monotonic()
    env = None
    ok = False
    try:
        env = Env(args, name, daemon_args)
        if start:
            env.start()
        if asyncio.iscoroutinefunction(test):
            async def run():
                try:
                    await asyncio.wait_for(test(env), 90)
                except BaseException:
                    env.abort_watchers()  # fast: no close handshakes on the way out
                    raise
                await env.close_watchers()
            asyncio.run(run())
        else:
            test(env)
        if not env.daemon.terminated:
            env.assert_alive()
            env.close(graceful=True)  # asserts exit 0 on SIGTERM within 10 s
        ok = True
    except (Exception, Interrupted) as e:
        if isinstance(e, asyncio.TimeoutError):
            print("FAIL: the test did not finish within 90 s")
        traceback.print_exc(file=sys.stdout)
        if env is not None:
            env.dump_logs()
    finally:
        if env is not None:
            env.close(graceful=False)
        kill_all_children()
    print(f"{'PASS' if ok else 'FAIL'} {name} ({time.monotonic() - t0:.2f} s; logs in "
          f"{os.path.join(args.run_dir, name)})")
    sys.stdout.flush()
    sys.exit(0 if ok else 1)


class Checks:
    """Collects failures so that one test can report several at once."""

    def __init__(self):
        self.failures = []

    def __call__(self, cond, what):
        if not cond:
            self.failures.append(what)
            print(f"  FAILED: {what}")
        return cond

    def done(self):
        if self.failures:
            raise TestFailure(f"{len(self.failures)} check(s) failed:\n  - " +
                              "\n  - ".join(self.failures))


# --- fixture steps ------------------------------------------------------------------

def preflight(args):
    """integration.setup: checks the tools the tests need; starts the pid list afresh."""
    problems = []
    if websockets is None:
        problems.append("/usr/bin/python3 cannot import websockets (apt install python3-websockets)")
    else:
        major = int(websockets.__version__.split(".")[0])
        if major < 10:
            problems.append(f"websockets {websockets.__version__} is older than 10")
    for path in (REDIS_SERVER, REDIS_CLI, args.trackgated, args.watch):
        if not path or not os.access(path, os.X_OK):
            problems.append(f"{path}: not an executable")
    if not problems:
        r = subprocess.run([args.trackgated, "--version"], capture_output=True, timeout=10)
        if r.returncode != 0 or not r.stdout.startswith(b"trackgated "):
            problems.append(f"trackgated --version: status {r.returncode}, {r.stdout!r} {r.stderr!r}")
        r = subprocess.run([args.watch, "--help"], capture_output=True, timeout=10)
        if r.returncode != 0:
            problems.append(f"trackgate-watch --help: status {r.returncode}")
    with open(os.path.join(args.run_dir, "pids"), "w") as f:
        f.write("")
    for p in problems:
        print(f"preflight: {p}")
    print("preflight:", "FAILED" if problems else "ok")
    return 1 if problems else 0


def leakcheck(args):
    """integration.cleanup: fails (and kills) if any process a test started still runs."""
    path = os.path.join(args.run_dir, "pids")
    leaked = []
    try:
        with open(path) as f:
            rows = [line.split(None, 3) for line in f if line.strip()]
    except OSError:
        rows = []
    for row in rows:
        pid, start = int(row[0]), row[1]
        if _proc_starttime(pid) == start and _proc_state(pid) not in (None, "Z"):
            leaked.append(row)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    for row in leaked:
        print(f"leakcheck: still running: pid {row[0]} {row[2]} started by {row[3].strip()}")
    print(f"leakcheck: {len(rows)} processes started by the tests, {len(leaked)} leaked")
    return 1 if leaked else 0


if __name__ == "__main__":
    step = sys.argv[1] if len(sys.argv) > 1 else ""
    if step not in ("preflight", "leakcheck"):
        print("usage: harness.py preflight|leakcheck --run-dir DIR [--trackgated P --watch P]")
        sys.exit(2)
    ap = argparse.ArgumentParser()
    ap.add_argument("--trackgated")
    ap.add_argument("--watch")
    ap.add_argument("--bench")
    ap.add_argument("--run-dir", required=True)
    a = ap.parse_args(sys.argv[2:])
    os.makedirs(a.run_dir, exist_ok=True)
    sys.exit(preflight(a) if step == "preflight" else leakcheck(a))
