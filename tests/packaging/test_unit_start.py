#!/usr/bin/python3
"""packaging.unit_start[_workers] - start the packaged trackgated as its unit would.

No systemd runs here, so this test plays it, from the files of the unpacked
.deb (<build>/tests/packaging/root, made by packaging.deb):

  - reads the installed trackgated.service: ExecStart, LoadCredential,
    ExecReload, KillSignal, WatchdogSec, TimeoutStopSec;
  - /etc/trackgate/ becomes a scratch folder holding trackgated.conf (the
    packaged example, pointed at a private redis-server and a free port) and
    ingest-keys; each LoadCredential= file is copied into a credentials
    folder that stands for $CREDENTIALS_DIRECTORY;
  - runs the unit's ExecStart, expanded, with NOTIFY_SOCKET, WATCHDOG_USEC and
    WATCHDOG_PID set to the main process, as systemd does;
  - expects READY=1 (and /readyz 200 by then), WATCHDOG=1 pings, a websocket
    that gets the update posted with the key, survival of ExecReload
    (SIGHUP), then on KillSignal STOPPING=1 and exit 0 within TimeoutStopSec.

--workers N sets `workers = N` in the config: the notifications then come
from the supervisor, the main process, alone (NotifyAccess=main).

--webhook switches to the unit's commented-out example of a provider's
webhook secret (its #LoadCredential= and #ExecStart= lines): the provider
must then be served (401 for a bad signature, not 404).

--syscalls additionally runs it under strace -f and checks every system call
and socket family it used against the unit's SystemCallFilter= and
RestrictAddressFamilies= (as `systemd-analyze syscall-filter` expands them):
a call outside them would fail with EPERM under systemd.

Exit status 0 passed, 1 failed, 77 skipped (a tool is missing).

    test_unit_start.py BUILD_DIR SOURCE_DIR [--workers N] [--webhook] [--syscalls]
"""
import argparse
import asyncio
import ctypes
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

REDIS_SERVER = "/usr/bin/redis-server"
KEY = "packaging-unit-start-key-0123456789abcdef"
SKIP = 77


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)
    print(f"ok: {what}", flush=True)


def skip(why):
    print(f"SKIP: {why}", file=sys.stderr)
    sys.exit(SKIP)


def read_unit(path, commented=False):
    """The [Service] settings of a unit file: name -> list of values, in order.
    commented: those of the commented-out `#Name=value` lines instead."""
    settings = {}
    section = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if commented:
                if not re.match(r"#[A-Z][A-Za-z]*=", line):
                    if line.startswith("["):
                        section = line
                    continue
                line = line[1:]
            elif not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line
                continue
            if section == "[Service]" and "=" in line:
                k, v = line.split("=", 1)
                settings.setdefault(k.strip(), []).append(v.strip())
    return settings


def seconds(value):
    """A systemd time span like 30s, 2min, 1min 30s, or plain seconds."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "ms": 0.001}
    total = 0.0
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(num) * units[unit]
    return total


_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: no leak on a ctest timeout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST" if body else "GET", path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


class Notify:
    """systemd's end of the notify socket."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.messages = []

    def drain(self):
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except (socket.timeout, BlockingIOError):
                return

    def count(self, word):
        self.drain()
        return sum(word in m.split("\n") for m in self.messages)

    def wait(self, word, n, timeout, proc):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count(word) >= n:
                return True
            if proc.poll() is not None:
                return False
        return False


async def watch_one_update(port, order_id):
    import websockets  # python3-websockets, a test dependency of the project

    async with websockets.connect(f"ws://127.0.0.1:{port}/v1/track/{order_id}",
                                  open_timeout=5, ping_interval=None) as ws:
        snap = json.loads(await asyncio.wait_for(ws.recv(), 5))
        check(snap.get("type") == "snapshot", f"a websocket gets a snapshot first: {snap}")
        update = {"v": 1, "order_id": order_id, "provider": "packaging",
                  "ts": int(time.time() * 1000), "location": {"lat": 52.52, "lng": 13.4},
                  "status": "picked_up"}
        status, body = await asyncio.get_running_loop().run_in_executor(
            None, lambda: http_get(port, "/v1/updates", json.dumps(update).encode(),
                                   {"Authorization": f"Bearer {KEY}",
                                    "Content-Type": "application/json"}))
        check(status == 202, f"POST /v1/updates with the credential's key: 202 ({status} {body!r})")
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        check(frame.get("type") == "update" and frame["update"]["status"] == "picked_up",
              f"the websocket gets the update: {frame}")


def syscall_groups():
    """name -> set of members, from `systemd-analyze syscall-filter`."""
    out = subprocess.run(["systemd-analyze", "syscall-filter"], check=True,
                         capture_output=True, text=True).stdout
    groups, current = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), set())
        elif current is not None and line.strip() and not line.strip().startswith("#"):
            current.add(line.strip())
    return groups


def expand(names, groups):
    result = set()
    for n in names:
        if n.startswith("@"):
            result |= expand(groups.get(n, ()), groups)
        else:
            result.add(n)
    return result


def allowed_syscalls(unit):
    """The set SystemCallFilter= allows: the allow lists, minus the ~ deny lists."""
    groups = syscall_groups()
    allow, deny = set(), set()
    for value in unit.get("SystemCallFilter", []):
        if value.startswith("~"):
            deny |= expand(value[1:].split(), groups)
        else:
            allow |= expand(value.split(), groups)
    return allow - deny


def traced(trace_file, binary):
    """System call names and socket families used by binary, after its exec."""
    calls, families = set(), set()
    started = set()  # pids that run binary (exec'd it, or forked from one that did)
    line_re = re.compile(r"^(\d+)\s+(?:<\.\.\. ([a-z0-9_]+) resumed>|([a-z0-9_]+)\()(.*)$")
    with open(trace_file, errors="replace") as f:
        lines = f.readlines()
    for line in lines:
        m = line_re.match(line)
        if not m:
            continue
        pid, name, rest = m.group(1), m.group(2) or m.group(3), m.group(4)
        if name == "execve" and binary in rest and "= 0" in rest:
            started.add(pid)
            continue
        if name in ("execve",) and pid not in started:
            continue
        if pid not in started:
            # Threads and forks of trackgated: their first line is after the parent's
            # clone returned their pid.
            continue
        calls.add(name)
        if name in ("clone", "clone3", "fork", "vfork"):
            ret = re.search(r"= (\d+)\s*$", rest)
            if ret:
                started.add(ret.group(1))
        if name == "socket" or name == "socketpair":
            fam = re.match(r"(AF_[A-Z0-9]+)", rest)
            if fam:
                families.add(fam.group(1))
    return calls, families


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("source")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--webhook", action="store_true")
    ap.add_argument("--syscalls", action="store_true")
    args = ap.parse_args()

    root = os.path.join(args.build, "tests/packaging/root")
    name = "unit_start" + (f"_workers{args.workers}" if args.workers > 1 else "") + \
        ("_webhook" if args.webhook else "") + ("_syscalls" if args.syscalls else "")
    work = os.path.join(args.build, "tests/packaging/work", name)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    unit_path = os.path.join(root, "usr/lib/systemd/system/trackgated.service")
    if not os.path.exists(unit_path):
        print(f"FAIL: {unit_path} missing: packaging.deb must run first", file=sys.stderr)
        return 1
    if not os.access(REDIS_SERVER, os.X_OK):
        skip(f"{REDIS_SERVER} not found (package redis-server; tools/deps installs it)")
    try:
        import websockets  # noqa: F401
    except ImportError:
        skip("python3-websockets not importable (tools/deps installs it)")
    if args.syscalls:
        if not shutil.which("strace"):
            skip("strace not found (package strace; tools/deps installs it)")
        if not shutil.which("systemd-analyze"):
            skip("systemd-analyze not found (package systemd; tools/deps installs it)")
        if "asan" in subprocess.run(["ldd", os.path.join(root, "usr/sbin/trackgated")],
                                    capture_output=True, text=True).stdout:
            skip("a sanitizer build: the sanitizer runtime's system calls are not trackgated's")

    unit = read_unit(unit_path)
    if args.webhook:
        example = read_unit(unit_path, commented=True)
        check(len(example.get("ExecStart", [])) == 1 and example.get("LoadCredential"),
              "the unit has a commented-out webhook example")
        unit["ExecStart"] = example["ExecStart"]
        unit["LoadCredential"] += example["LoadCredential"]
    etc = os.path.join(work, "etc/trackgate")
    creds = os.path.join(work, "credentials")
    os.makedirs(etc)
    os.makedirs(creds, mode=0o700)
    sock_dir = os.path.join(work, "run")
    os.makedirs(sock_dir)
    redis_sock = os.path.join(sock_dir, "redis.sock")
    port = free_port()

    def host_path(p):
        return p.replace("/etc/trackgate/", etc + "/").replace("/usr/sbin/", root + "/usr/sbin/")

    # The admin's part: a config from the packaged example, and the key file.
    with open(os.path.join(root, "etc/trackgate/trackgated.conf.example")) as f:
        conf = f.read()
    conf = re.sub(r"(?m)^listen *=.*$", f"listen = 127.0.0.1:{port}", conf)
    conf = re.sub(r"(?m)^redis *=.*$", f"redis = unix://{redis_sock}", conf)
    conf = re.sub(r"(?m)^workers *=.*$", f"workers = {args.workers}", conf)
    with open(os.path.join(etc, "trackgated.conf"), "w") as f:
        f.write(conf)
    with open(os.path.join(etc, "ingest-keys"), "w") as f:
        f.write(f"# packaging test\n{KEY}\n")
    secret = f"packaging-webhook-secret-{os.getpid()}"
    with open(os.path.join(etc, "uber_direct.secret"), "w") as f:
        f.write(secret + "\n")

    # systemd's part: credentials, the command line, the environment.
    for cred in unit.get("LoadCredential", []):
        cred_id, src = cred.split(":", 1)
        shutil.copy(host_path(src), os.path.join(creds, cred_id))
    check(len(unit.get("ExecStart", [])) == 1, "the unit has one ExecStart=")
    argv = shlex.split(unit["ExecStart"][0].replace("${CREDENTIALS_DIRECTORY}", creds))
    argv = [host_path(a) for a in argv]
    check(argv[0] == os.path.join(root, "usr/sbin/trackgated"), "ExecStart runs /usr/sbin/trackgated")
    check(unit.get("Type") == ["notify"], "Type=notify")
    check(unit.get("NotifyAccess") == ["main"], "NotifyAccess=main (the supervisor alone notifies)")
    watchdog = seconds(unit["WatchdogSec"][0])
    stop_timeout = seconds(unit["TimeoutStopSec"][0])
    kill_signal = getattr(signal, unit.get("KillSignal", ["SIGTERM"])[0])
    check(unit.get("ExecReload") == ["/bin/kill -HUP $MAINPID"], "ExecReload sends SIGHUP")

    notify = Notify(os.path.join(sock_dir, "notify"))
    env = dict(os.environ, NOTIFY_SOCKET=os.path.join(sock_dir, "notify"),
               WATCHDOG_USEC=str(int(watchdog * 1e6)))
    env.pop("CREDENTIALS_DIRECTORY", None)
    # systemd sets WATCHDOG_PID to the main pid: sh exports its own pid, then
    # exec keeps it for trackgated.
    launcher = ["sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"', "sh"]
    trace_file = os.path.join(work, "strace.out")
    if args.syscalls:
        launcher = ["strace", "-f", "-qq", "-e", "signal=none", "-o", trace_file] + launcher

    logs = open(os.path.join(work, "redis.log"), "wb")
    redis = subprocess.Popen([REDIS_SERVER, "--port", "0", "--unixsocket", redis_sock,
                              "--save", "", "--appendonly", "no", "--dir", work],
                             stdout=logs, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
    daemon_log = os.path.join(work, "trackgated.log")
    daemon = None
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(redis_sock):
            if time.monotonic() > deadline or redis.poll() is not None:
                raise Failure("redis-server did not start (see redis.log)")
            time.sleep(0.05)
        with open(daemon_log, "wb") as log:
            daemon = subprocess.Popen(launcher + argv, env=env, stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True, preexec_fn=_die_with_parent)
        ready = notify.wait("READY=1", 1, 10 if not args.syscalls else 30, daemon)
        check(ready, f"READY=1 within 10 s (got {notify.messages})")
        status, _ = http_get(port, "/readyz")
        check(status == 200, f"/readyz is 200 once READY=1 came ({status})")
        status, body = http_get(port, "/metrics")
        check(status == 200, f"/metrics is 200 ({status})")
        asyncio.run(watch_one_update(port, f"pkg-{os.getpid()}"))
        if args.webhook:
            status, body = http_get(port, "/v1/webhooks/uber_direct", b"{}",
                                    {"Content-Type": "application/json"})
            check(status == 401, f"the credential's webhook secret is loaded: an unsigned "
                                 f"uber_direct webhook gets 401, not 404 ({status} {body!r})")
        check(notify.wait("WATCHDOG=1", 2, 5, daemon),
              f"WATCHDOG=1 pings come (WatchdogSec={watchdog:g}s): {notify.messages}")

        main_pid = daemon.pid
        if args.syscalls:  # the main process is strace's child
            main_pid = int(subprocess.run(["pgrep", "-P", str(daemon.pid)], capture_output=True,
                                          text=True).stdout.split()[0])
        os.kill(main_pid, signal.SIGHUP)  # ExecReload=/bin/kill -HUP $MAINPID
        time.sleep(1.0)
        check(daemon.poll() is None, "ExecReload (SIGHUP) leaves it running")
        pings = notify.count("WATCHDOG=1")
        check(notify.wait("WATCHDOG=1", pings + 1, 3, daemon), "and the watchdog still pinged")

        t0 = time.monotonic()
        os.kill(main_pid, kill_signal)
        check(notify.wait("STOPPING=1", 1, 5, daemon) or notify.count("STOPPING=1") > 0,
              f"STOPPING=1 on {kill_signal.name}")
        try:
            rc = daemon.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc == 0, f"exit 0 within TimeoutStopSec={stop_timeout:g}s "
                       f"(rc {rc}, {time.monotonic() - t0:.1f} s)")
        kinds = sorted(set(l.split("=")[0] for m in notify.messages for l in m.split("\n") if l))
        print(f"notifications seen: {kinds}")

        with open(daemon_log, errors="replace") as f:
            log = f.read()
        check(KEY not in log and secret not in log, "neither the key nor the secret is logged")

        if args.syscalls:
            calls, families = traced(trace_file, "/usr/sbin/trackgated")
            check(len(calls) > 20, f"strace saw trackgated's system calls ({len(calls)})")
            allowed = allowed_syscalls(unit)
            print(f"system calls used: {' '.join(sorted(calls))}")
            denied = sorted(calls - allowed)
            check(not denied, f"every system call is in the unit's SystemCallFilter "
                              f"(outside it, EPERM): {denied or 'none'}")
            permitted = set(" ".join(unit.get("RestrictAddressFamilies", [])).split())
            print(f"socket families used: {' '.join(sorted(families))}")
            check(families <= permitted, f"every socket family is in RestrictAddressFamilies "
                                         f"({sorted(families - permitted) or 'none'} outside)")
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        for path in (daemon_log,):
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    tail = f.readlines()[-40:]
                print(f"--- {path} (tail)\n{''.join(tail)}", file=sys.stderr)
        return 1
    finally:
        if daemon:
            try:  # whatever of it still runs: strace's tracees, workers
                os.killpg(daemon.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            daemon.wait()
        redis.terminate()
        try:
            redis.wait(timeout=10)
        except subprocess.TimeoutExpired:
            redis.kill()
            redis.wait()
        logs.close()
    print(f"{name}: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
