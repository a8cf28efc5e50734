#!/usr/bin/python3
"""integration.sentinel: the primary of a Sentinel group is SIGKILLed under ingest.

Topology, all real redis-server processes on free 127.0.0.1 TCP ports, their files in the
test's temporary directory (logs in the run directory):
  - a primary and a replica (`replicaof` the primary), no persistence;
  - three Sentinels (`redis-server sentinel.conf --sentinel`, each with its own conf file,
    since a Sentinel rewrites it): `sentinel monitor mymaster 127.0.0.1 PRIMARY 2`,
    down-after-milliseconds 1000, failover-timeout 5000, parallel-syncs 1.
The test waits (with deadlines) until the replica is in sync and every Sentinel knows the
replica and the two other Sentinels (SENTINEL master: num-slaves 1, num-other-sentinels 2;
SENTINEL ckquorum OK).

trackgated runs with `--redis redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/
mymaster` (the last --redis on the command line wins, so the harness's own unix socket
argument is overridden without touching harness.py; the harness's private Redis is never
started).  Its log must name the primary (redis_sentinel_master addr=127.0.0.1:PRIMARY).

4 orders x 2 watchers.  A poster posts one update every 50 ms, round robin over the
orders, each with its own event_id and a ts increasing per order; a POST answered 503 or
not answered at all is sent again (the same update, like a provider's retry) until a 2xx.
After 3 s of ingest the primary is SIGKILLed.  Then, each within a deadline:
  - the Sentinels fail over: they all name the replica (<= 20 s), and the replica's ROLE
    says master;
  - trackgated logs redis_sentinel_switch and redis_sentinel_master addr=127.0.0.1:REPLICA,
    and ingest answers 2xx again; /readyz is 200 again;
  - every watcher (none is closed) gets, within CONVERGE_S of its POST's answer, the first
    update applied after the kill (its update frame, or a snapshot at or past its cursor);
  - after the poster stops, one last update per order is posted: every watcher's last
    frame is that update, its cursor is the new primary's `HGET trk:{ID}:state cursor` and
    its location is that of `HGET trk:{ID}:state state`;
  - between two snapshots (a resync may send a "reset" one) a watcher's update cursors
    strictly increase.
Lost updates: each update answered 2xx (applied, or duplicate for a retry of an update
already applied) is looked up by its event_id in the new primary's log (XRANGE
trk:{ID}:log).  Replication is asynchronous: the primary acknowledges a write before the
replica has it, so the updates acknowledged in the last moments before the kill may be
lost with it.  The test asserts that none acknowledged more than 2 s before the kill is
missing, and prints how many of the rest are (expected: 0 or a few); every update
acknowledged after the kill (by the new primary) must be there too.

Then a planned failover, with every node up (see planned_failover): a second replica is
promoted with SENTINEL FAILOVER; the demoted primary keeps running and keeps the daemon's
connections open, so only +switch-master moves them (a daemon that ignored it kept writing
to the demoted node: 202s, then lost; checked by hand with the switch handler disabled).
Last, a name the Sentinels place on a replica (see role_check): ROLE is checked.
"""
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

MASTER = "mymaster"
N_ORDERS = 4
WATCHERS_PER_ORDER = 2
INTERVAL = 0.050        # between POSTs (and between a 503 and its retry)
BEFORE_KILL = 3.0       # seconds of ingest before the kill
SAFE_BEFORE_KILL = 2.0  # acknowledged this long before the kill: must be on the new primary
FAILOVER_S = 20.0       # kill -> the Sentinels name the replica
RESUME_S = 10.0         # failover -> ingest answers 2xx again
AFTER_2XX = 3           # applied updates per order after the resumption before the poster stops
CONVERGE_S = 5.0
SWITCH_MOVE_S = 2.0    # the Sentinels name the new primary -> both connections on it
TOPOLOGY_S = 20.0


# --- the Redis topology -----------------------------------------------------------

class Node:
    """One redis-server (a data node or a Sentinel) on a 127.0.0.1 TCP port."""

    def __init__(self, name, base_dir, log_dir, sentinel=False):
        self.name = name
        self.dir = os.path.join(base_dir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, "sentinel.conf" if sentinel else "redis.conf")
        self.log = os.path.join(log_dir, f"{name}.log")
        self.sentinel = sentinel
        self.port = None
        self.proc = None

    def start(self, conf_lines, attempts=5):
        """Writes a fresh conf (port + conf_lines) and starts the server; when the port
        was taken between the probe and the bind, tries another one."""
        for _ in range(attempts):
            self.port = h.free_port()
            with open(self.conf, "w") as f:
                f.write(f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
                        "daemonize no\nlogfile \"\"\nloglevel notice\n")
                f.write("".join(line + "\n" for line in conf_lines))
            offset = h.log_size(self.log)
            argv = [h.REDIS_SERVER, self.conf] + (["--sentinel"] if self.sentinel else [])
            self.proc = h.spawn(argv, self.log, "sentinel" if self.sentinel else "redis-server")
            deadline = time.monotonic() + h.STARTUP_TIMEOUT
            while True:
                if self.proc.poll() is not None:
                    if "Address already in use" in h.log_since(self.log, offset):
                        break  # the next attempt, on another port
                    raise h.TestFailure(f"{self.name} exited with {self.proc.returncode}:\n"
                                        f"{h.tail(self.log)}")
                try:
                    if self.cli("PING", timeout=2) == "PONG":
                        return self
                except (subprocess.SubprocessError, OSError):
                    pass
                if time.monotonic() >= deadline:
                    raise h.TestFailure(f"{self.name} not ready after {h.STARTUP_TIMEOUT} s:\n"
                                        f"{h.tail(self.log)}")
                time.sleep(0.02)
        raise h.TestFailure(f"{self.name}: no free port in {attempts} attempts")

    def cli(self, *args, timeout=3.0):
        r = subprocess.run([h.REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.port)] +
                           [str(a) for a in args],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        out = r.stdout.decode("utf-8", "replace").strip()
        if r.returncode != 0:
            raise subprocess.SubprocessError(
                f"{self.name}: redis-cli {' '.join(map(str, args))} failed ({r.returncode}): "
                f"{out} {r.stderr.decode('utf-8', 'replace').strip()}")
        return out

    def try_cli(self, *args):
        try:
            return self.cli(*args, timeout=2)
        except (subprocess.SubprocessError, OSError) as e:
            return f"<{e}>"

    def kv(self, *args):
        """A flat key/value reply (INFO-like arrays, e.g. SENTINEL master) as a dict."""
        lines = self.cli(*args).splitlines()
        return dict(zip(lines[0::2], lines[1::2]))

    def info(self, section):
        out = {}
        for line in self.cli("INFO", section).splitlines():
            k, sep, v = line.partition(":")
            if sep:
                out[k.strip()] = v.strip()
        return out


class Topology:
    def __init__(self, base_dir, log_dir):
        self.primary = Node("primary", base_dir, log_dir)
        self.replica = Node("replica", base_dir, log_dir)
        self.sentinels = [Node(f"sentinel{k + 1}", base_dir, log_dir, sentinel=True)
                          for k in range(3)]
        self.extra = []

    def nodes(self):
        return [self.primary, self.replica] + self.sentinels + self.extra

    def start(self):
        data = ["save \"\"", "appendonly no", "protected-mode no"]
        self.primary.start(data)
        self.replica.start(data + [f"replicaof 127.0.0.1 {self.primary.port}"])
        h.wait_until(lambda: self.replica.info("replication").get("master_link_status") == "up"
                     and self.primary.info("replication").get("connected_slaves") == "1",
                     TOPOLOGY_S, 0.05, "the replica in sync with the primary")
        for s in self.sentinels:
            s.start([f"sentinel monitor {MASTER} 127.0.0.1 {self.primary.port} 2",
                     f"sentinel down-after-milliseconds {MASTER} 1000",
                     f"sentinel failover-timeout {MASTER} 5000",
                     f"sentinel parallel-syncs {MASTER} 1"])

        def known():
            out = []
            for s in self.sentinels:
                try:
                    m = s.kv("SENTINEL", "master", MASTER)
                    q = s.cli("SENTINEL", "ckquorum", MASTER)
                except (subprocess.SubprocessError, OSError) as e:
                    return f"{s.name}: {e}"
                if (m.get("num-slaves") != "1" or m.get("num-other-sentinels") != "2"
                        or m.get("flags") != "master" or not q.startswith("OK")):
                    return (f"{s.name}: num-slaves {m.get('num-slaves')} "
                            f"num-other-sentinels {m.get('num-other-sentinels')} flags "
                            f"{m.get('flags')} ckquorum {q!r}")
                # The replica as this Sentinel sees it: connected, a slave in sync.
                r = s.kv("SENTINEL", "replicas", MASTER)
                if (r.get("port") != str(self.replica.port) or r.get("flags") != "slave"
                        or r.get("master-link-status") != "ok"):
                    return f"{s.name}: SENTINEL replicas {r!r}"
                out.append(s.name)
            return out
        h.wait_until(known, TOPOLOGY_S, 0.2, "every Sentinel knowing the replica and the others")

    def masters(self):
        """What each Sentinel names as MASTER's address (a port, or a text)."""
        out = []
        for s in self.sentinels:
            lines = s.try_cli("SENTINEL", "get-master-addr-by-name", MASTER).splitlines()
            out.append(lines[1] if len(lines) == 2 and lines[0] == "127.0.0.1" else repr(lines))
        return out

    def dump(self):
        for n in self.nodes():
            if n.proc is not None and n.proc.poll() is not None:
                print(f"----- {n.name} (pid {n.proc.pid}) is not running: "
                      f"status {n.proc.returncode} -----")
            print(f"----- tail of {n.log} -----")
            print(h.tail(n.log, 25))


# --- ingest ------------------------------------------------------------------------

class Post:
    """One update and how its POSTs went: retried until a 2xx or the end of ingest."""
    __slots__ = ("oid", "u", "eid", "attempts", "t_ack", "result", "cursor")

    def __init__(self, oid, u):
        self.oid, self.u, self.eid = oid, u, u["event_id"]
        self.attempts = []   # (t_sent, status or repr(exception))
        self.t_ack = self.result = self.cursor = None

    @property
    def ok(self):
        return self.t_ack is not None


def post_once(env, p):
    t = time.monotonic()
    try:
        r = env.post(p.u)
    except OSError as e:
        p.attempts.append((t, repr(e)))
        return False
    p.attempts.append((t, r.status))
    if 200 <= r.status < 300:
        res = r.json.get("results") if isinstance(r.json, dict) else None
        h.check(isinstance(res, list) and len(res) == 1,
                f"POST {p.u!r} -> {r!r}: no results list")
        p.result = res[0].get("result")
        h.check(p.result in ("applied", "duplicate"),
                f"POST {p.u!r} -> {r!r}: want applied (or duplicate for a retry)")
        h.check(p.result == "applied" or len(p.attempts) > 1,
                f"POST {p.u!r} -> {r!r}: duplicate on its first attempt")
        p.cursor = res[0].get("cursor")
        p.t_ack = time.monotonic()
        return True
    h.check(r.status == 503, f"POST {p.u!r} -> {r!r}: want 2xx or 503")
    return False


# --- watchers ------------------------------------------------------------------------

class Tape:
    """Every frame one watcher received, with its arrival time."""

    def __init__(self, w):
        self.w = w
        self.frames = []   # (t, frame)
        self.task = asyncio.ensure_future(self._run())

    async def _run(self):
        while True:
            try:
                f = await self.w.next(timeout=3600)
            except h.TestFailure:
                return  # closed: reported by the checks
            self.frames.append((time.monotonic(), f))

    def last(self):
        return self.frames[-1][1] if self.frames else None

    def has(self, pred):
        for t, f in self.frames:
            if pred(f):
                return t
        return None


def covers(p):
    """A predicate: the frame delivers p (its update frame, or a snapshot at or past it)."""
    def pred(f):
        if f.get("type") == "update":
            return f.get("cursor") == p.cursor or (f.get("update") or {}).get("event_id") == p.eid
        if f.get("type") == "snapshot" and f.get("cursor"):
            return h.parse_cursor(f["cursor"]) >= h.parse_cursor(p.cursor)
        return False
    return pred


# --- the test ------------------------------------------------------------------------

async def test(env):
    ck = h.Checks()
    topo = Topology(env.sock_dir, env.log_dir)
    try:
        await run(env, topo, ck)
    except BaseException:
        topo.dump()
        raise


async def run(env, topo, ck):
    t0 = time.monotonic()
    await asyncio.to_thread(topo.start)
    print(f"topology: primary :{topo.primary.port}, replica :{topo.replica.port}, sentinels "
          f"{[s.port for s in topo.sentinels]} (ready in {time.monotonic() - t0:.2f} s)")

    url = "redis+sentinel://" + ",".join(f"127.0.0.1:{s.port}" for s in topo.sentinels) + \
        f"/{MASTER}"
    env.daemon.extra_args += ["--redis", url]  # after the harness's own --redis: wins
    await asyncio.to_thread(env.daemon.start)
    log0 = h.log_since(env.daemon.log, env.daemon.log_offset)
    h.check(re.search(rf"\bredis_sentinel_master\b.*addr=127\.0\.0\.1:{topo.primary.port}\b",
                      log0), f"no redis_sentinel_master addr=127.0.0.1:{topo.primary.port} "
            f"logged:\n{h.tail(env.daemon.log, 30)}")

    base = h.now_ms() - 600_000
    orders = [f"sen-{os.getpid()}-{k}" for k in range(N_ORDERS)]
    tapes = {o: [] for o in orders}
    for o in orders:
        for _ in range(WATCHERS_PER_ORDER):
            w = await env.watch(o)
            tapes[o].append(Tape(w))

    posts = []
    stop = asyncio.Event()
    seq = {o: 0 for o in orders}

    def make(oid, tag="u"):
        seq[oid] += 1
        i = seq[oid]
        return Post(oid, h.update(oid, base + i * 10, lat=45 + (i % 1000) / 1000,
                                  lng=7.5 + (i % 7) / 100, event_id=f"{tag}{i}"))

    async def poster():
        k = 0
        while not stop.is_set():
            p = make(orders[k % N_ORDERS])
            k += 1
            posts.append(p)
            while not stop.is_set():
                if await asyncio.to_thread(post_once, env, p):
                    break
                await asyncio.sleep(INTERVAL)
            await asyncio.sleep(INTERVAL)

    task = asyncio.ensure_future(poster())

    async def until(cond, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            v = await asyncio.to_thread(cond)
            if v:
                return v
            if task.done():
                task.result()  # the poster's failure
                raise h.TestFailure("the poster stopped")
            h.check(time.monotonic() < deadline,
                    f"no {what() if callable(what) else what} within {timeout} s")
            await asyncio.sleep(0.05)

    marks = {}
    try:
        await until(lambda: any(p.ok for p in posts), 10,
                    "first 2xx")
        t_start = time.monotonic()
        await until(lambda: time.monotonic() - t_start >= BEFORE_KILL, BEFORE_KILL + 5,
                    "ingest before the kill")
        kill_log = h.log_size(env.daemon.log)
        marks["kill"] = time.monotonic()
        topo.primary.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(topo.primary.proc.wait, 5)
        print(f"primary :{topo.primary.port} SIGKILLed after {len(posts)} updates "
              f"({sum(p.ok for p in posts)} acknowledged)")

        rport = str(topo.replica.port)
        await until(lambda: all(m == rport for m in topo.masters()), FAILOVER_S,
                    lambda: f"failover (the Sentinels name {topo.masters()}, want {rport})")
        marks["failover"] = time.monotonic()
        role = topo.replica.cli("ROLE").splitlines()
        ck(role[:1] == ["master"], f"the replica's ROLE after the failover: {role!r}")
        print(f"failover: the Sentinels name :{rport} "
              f"{marks['failover'] - marks['kill']:.2f} s after the kill")

        await until(lambda: any(p.ok and p.t_ack > marks["kill"] and p.attempts[-1][0] >
                                marks["kill"] for p in posts), RESUME_S,
                    lambda: f"a 2xx after the failover (last attempts: "
                    f"{[a[1] for p in posts[-3:] for a in p.attempts[-3:]]})")
        marks["resumed"] = min(p.t_ack for p in posts if p.ok and p.t_ack > marks["kill"]
                               and p.attempts[-1][0] > marks["kill"])
        print(f"ingest: the first 2xx after the kill came "
              f"{marks['resumed'] - marks['kill']:.2f} s after it")

        def logged():
            text = h.log_since(env.daemon.log, kill_log)
            return (re.search(r"\bredis_sentinel_switch\b", text) and
                    re.search(rf"\bredis_sentinel_master\b.*addr=127\.0\.0\.1:{rport}\b", text))
        try:
            await until(logged, 5, "redis_sentinel_switch and redis_sentinel_master "
                        f"addr=127.0.0.1:{rport} in trackgated's log")
        except h.TestFailure as e:
            ck(False, f"{e}:\n{h.log_since(env.daemon.log, kill_log)[-3000:]}")

        await until(lambda: all(sum(1 for p in posts if p.oid == o and p.ok and
                                    p.t_ack >= marks["resumed"]) >= AFTER_2XX for o in orders),
                    20, f"{AFTER_2XX} applied updates per order after the resumption")
    finally:
        stop.set()
        await task

    await h.async_wait_until(lambda: env.http("GET", "/readyz").status == 200, 10,
                             what="/readyz 200 after the failover")

    # --- delivery resumed promptly -------------------------------------------------
    for o in orders:
        first = min((p for p in posts if p.oid == o and p.ok and p.t_ack > marks["kill"]
                     and p.result == "applied"), key=lambda p: p.t_ack)
        for k, tape in enumerate(tapes[o]):
            try:
                await h.async_wait_until(lambda: tape.has(covers(first)), CONVERGE_S,
                                         what=f"{o} watcher {k}: the first update applied "
                                         f"after the kill ({first.eid} {first.cursor})")
                t = tape.has(covers(first))
                print(f"{o} watcher {k}: {first.eid} ({first.cursor}) arrived "
                      f"{t - first.t_ack:+.3f} s after its 2xx, "
                      f"{t - marks['kill']:.2f} s after the kill")
            except h.TestFailure as e:
                ck(False, f"{e}; last frames {[f for _, f in tape.frames[-4:]]}")

    async def final_round(node, tag, retry_s=0.0):
        """One more update per order (503s retried for retry_s): every watcher's last frame
        becomes it, and node's stored state (cursor, location) is it."""
        final = {}
        for o in orders:
            p = make(o, tag)
            posts.append(p)
            deadline = time.monotonic() + retry_s
            while not await asyncio.to_thread(post_once, env, p):
                h.check(time.monotonic() < deadline, f"the {tag} update of {o}: {p.attempts!r}")
                await asyncio.sleep(INTERVAL)
            h.check(p.result == "applied" and p.cursor, f"the {tag} update of {o}: {p.attempts!r}")
            final[o] = p
        for o in orders:
            p = final[o]
            stored = node.cli("HGET", f"trk:{{{o}}}:state", "state")
            stored_cursor = node.cli("HGET", f"trk:{{{o}}}:state", "cursor")
            ck(stored_cursor == p.cursor, f"{o}: {node.name}'s cursor {stored_cursor!r}, "
               f"the {tag} update's {p.cursor!r}")
            try:
                state = json.loads(stored)
            except ValueError:
                state = None
            loc_s = state.get("location") if isinstance(state, dict) else None
            ck(isinstance(loc_s, dict) and loc_s.get("lat") == p.u["location"]["lat"]
               and loc_s.get("lng") == p.u["location"]["lng"],
               f"{o}: {node.name}'s state {stored!r} lacks the {tag} update's location "
               f"{p.u['location']!r}")
            for k, tape in enumerate(tapes[o]):
                try:
                    await h.async_wait_until(
                        lambda: (tape.last() or {}).get("cursor") == p.cursor, CONVERGE_S,
                        what=f"{o} watcher {k}: last frame at the {tag} cursor {p.cursor}")
                except h.TestFailure as e:
                    ck(False, f"{e}; last frames {[f for _, f in tape.frames[-4:]]}")
                    continue
                f = tape.last()
                if f.get("type") == "update":
                    loc = (f.get("update") or {}).get("location")
                else:
                    loc = (f.get("state") or {}).get("location")
                ck(f.get("order_id") == o and isinstance(loc_s, dict) and loc is not None and
                   {"lat": loc.get("lat"), "lng": loc.get("lng")} ==
                   {"lat": loc_s["lat"], "lng": loc_s["lng"]},
                   f"{o} watcher {k}: last frame {f!r} vs {node.name}'s state {stored!r}")

    # --- the last update per order: every watcher ends on it, as the new primary --
    await final_round(topo.replica, "final")
    new = topo.replica

    # --- the watchers' frames -------------------------------------------------------
    resets = 0
    for o in orders:
        for k, tape in enumerate(tapes[o]):
            w = tape.w
            ck(not w.closed.is_set(), f"{o} watcher {k} was closed: {w.close_code} "
               f"{w.close_reason!r}")
            prev = None
            for _, f in tape.frames:
                if f.get("type") == "snapshot":
                    resets += bool(f.get("reset"))
                    prev = h.parse_cursor(f["cursor"]) if f.get("cursor") else None
                elif f.get("type") == "update":
                    c = h.parse_cursor(f["cursor"])
                    if not ck(prev is None or c > prev,
                              f"{o} watcher {k}: update cursor {f['cursor']} after {prev}"):
                        break
                    prev = c
            kinds = {}
            for _, f in tape.frames:
                kinds[f.get("type")] = kinds.get(f.get("type"), 0) + 1
            print(f"{o} watcher {k}: frames {kinds}")
    print(f"reset snapshots: {resets}")

    # --- no gap: each watcher got every update the new primary holds ------------------
    in_log = {}
    for o in orders:
        lines = new.cli("XRANGE", f"trk:{{{o}}}:log", "-", "+").splitlines()
        entries = {}
        for line in lines:
            if line.startswith("{"):
                fr = json.loads(line)
                entries[fr["cursor"]] = (fr.get("update") or {}).get("event_id")
        in_log[o] = set(entries.values())
        for k, tape in enumerate(tapes[o]):
            got = {f["cursor"] for _, f in tape.frames if f.get("type") == "update"}
            snaps = [h.parse_cursor(f["cursor"]) for _, f in tape.frames
                     if f.get("type") == "snapshot" and f.get("cursor")]
            missed = sorted(c for c in entries if c not in got and
                            not any(sc >= h.parse_cursor(c) for sc in snaps))
            ck(not missed, f"{o} watcher {k}: {len(missed)} of the {len(entries)} updates in the "
               f"new primary's log never reached it: {missed[:5]}")

    # --- lost updates ----------------------------------------------------------------
    acked = [p for p in posts if p.ok]
    lost = [p for p in acked if p.eid not in in_log[p.oid]]
    early = [p for p in lost if p.t_ack < marks["kill"] - SAFE_BEFORE_KILL]
    late = [p for p in lost if marks["kill"] - SAFE_BEFORE_KILL <= p.t_ack < marks["kill"]]
    after = [p for p in lost if p.t_ack >= marks["kill"]]
    statuses = {}
    for p in posts:
        for _, s in p.attempts:
            s = s if isinstance(s, int) else "error"
            statuses[s] = statuses.get(s, 0) + 1
    print(f"{len(posts)} updates, {len(acked)} acknowledged (answers {statuses}); "
          f"missing on the new primary: {len(lost)} - acknowledged more than "
          f"{SAFE_BEFORE_KILL:.0f} s before the kill: {len(early)}, in the last "
          f"{SAFE_BEFORE_KILL:.0f} s before it (asynchronous replication may lose these): "
          f"{len(late)} {[(p.eid, round(p.t_ack - marks['kill'], 3)) for p in late]}, "
          f"after it: {len(after)}")
    ck(not early, f"{len(early)} updates acknowledged more than {SAFE_BEFORE_KILL} s before the "
       f"kill are missing on the new primary: {[(p.oid, p.eid, p.cursor) for p in early[:5]]}")
    ck(not after, f"{len(after)} updates acknowledged after the kill are missing on the new "
       f"primary: {[(p.oid, p.eid, p.cursor, p.attempts) for p in after[:5]]}")

    ck.done()

    # --- a planned failover: the old primary stays up ---------------------------------
    await planned_failover(env, topo, ck, final_round, posts, lost)

    ck.done()
    took = await asyncio.to_thread(env.daemon.terminate)
    print(f"trackgated exited 0 {took:.2f} s after SIGTERM")

    await role_check(env, topo, ck)
    ck.done()


def tcp_peers(pid):
    """The remote ports of the ESTABLISHED TCP sockets process pid holds (from /proc)."""
    mine = h.socket_inodes(pid)
    return [remote for remote, inode in h.tcp_sockets(None, "01") if inode in mine]


async def planned_failover(env, topo, ck, final_round, posts, lost_before):
    """SENTINEL FAILOVER with every node up, ingest quiet: a second replica (of the new
    primary) is started and, once the Sentinels list it, promoted.  The demoted primary
    keeps running and keeps the daemon's connections open (Redis does not close its
    clients on REPLICAOF): only +switch-master moves them.  Checks: redis_sentinel_switch
    and redis_sentinel_master addr=SPARE are logged, the daemon's two Redis connections
    leave the demoted node and go to the spare within SWITCH_MOVE_S of the Sentinels
    naming it, the next update per order is applied on the spare and reaches every
    watcher, and nothing acknowledged so far is missing on the spare."""
    old = topo.replica
    spare = Node("replica2", env.sock_dir, env.log_dir)
    topo.extra.append(spare)
    await asyncio.to_thread(spare.start, ["save \"\"", "appendonly no", "protected-mode no",
                                          f"replicaof 127.0.0.1 {old.port}"])
    await h.async_wait_until(
        lambda: spare.info("replication").get("master_link_status") == "up", TOPOLOGY_S,
        what="the spare replica in sync")

    def listed():
        for s in topo.sentinels:
            lines = s.cli("SENTINEL", "replicas", MASTER).splitlines()
            # Several replicas (the dead primary is one now): split at each "name".
            reps, cur = [], None
            for k in range(0, len(lines) - 1, 2):
                if lines[k] == "name":
                    cur = {}
                    reps.append(cur)
                cur[lines[k]] = lines[k + 1]
            if not any(r.get("port") == str(spare.port) and r.get("flags") == "slave" and
                       r.get("master-link-status") == "ok" for r in reps):
                return False
        return True
    t0 = time.monotonic()
    await h.async_wait_until(listed, TOPOLOGY_S, 0.2, "every Sentinel listing the spare replica")
    print(f"planned failover: the Sentinels list the spare :{spare.port} after "
          f"{time.monotonic() - t0:.2f} s")
    await h.async_wait_until(
        lambda: spare.info("replication").get("slave_repl_offset") ==
        old.info("replication").get("master_repl_offset"), 5, what="the spare caught up")
    pid = env.daemon.proc.pid
    before = tcp_peers(pid)
    ck(before.count(old.port) == 2 and spare.port not in before,
       f"the daemon's TCP peers before the planned failover: {sorted(before)} (want 2 x "
       f":{old.port}, the primary)")

    log_at = h.log_size(env.daemon.log)
    r = topo.sentinels[0].cli("SENTINEL", "FAILOVER", MASTER)
    h.check(r == "OK", f"SENTINEL FAILOVER: {r!r}")
    t_fo = time.monotonic()
    await h.async_wait_until(lambda: all(m == str(spare.port) for m in topo.masters()),
                             FAILOVER_S, 0.05,
                             f"the Sentinels naming the spare :{spare.port}")
    t_named = time.monotonic()

    def moved():
        peers = tcp_peers(pid)
        return old.port not in peers and peers.count(spare.port) == 2 and peers
    try:
        peers = await h.async_wait_until(moved, SWITCH_MOVE_S, 0.02,
                                         "the daemon's two Redis connections on the spare")
        print(f"planned failover: the Sentinels name :{spare.port} "
              f"{t_named - t_fo:.2f} s after SENTINEL FAILOVER; the daemon's connections moved "
              f"{time.monotonic() - t_named:.2f} s after that (peers {sorted(peers)})")
    except h.TestFailure as e:
        role = old.try_cli("ROLE").splitlines()[:1]
        ck(False, f"{e}: peers {sorted(tcp_peers(pid))}, demoted :{old.port} ROLE {role}:\n"
           f"{h.log_since(env.daemon.log, log_at)[-2500:]}")
    text = h.log_since(env.daemon.log, log_at)
    ck(re.search(rf"\bredis_sentinel_switch\b.*{old.port} 127\.0\.0\.1 {spare.port}", text),
       f"no redis_sentinel_switch to :{spare.port} logged:\n{text[-2500:]}")
    ck(re.search(rf"\bredis_sentinel_master\b.*addr=127\.0\.0\.1:{spare.port}\b", text),
       f"no redis_sentinel_master addr=127.0.0.1:{spare.port} logged:\n{text[-2500:]}")

    await final_round(spare, "planned", retry_s=10.0)
    eids = {}
    for o in {p.oid for p in posts}:
        eids[o] = {(json.loads(line).get("update") or {}).get("event_id")
                   for line in spare.cli("XRANGE", f"trk:{{{o}}}:log", "-", "+").splitlines()
                   if line.startswith("{")}
    missing = [p for p in posts if p.ok and p not in lost_before and p.eid not in eids[p.oid]]
    ck(not missing, f"{len(missing)} acknowledged updates are missing on the spare after the "
       f"planned failover: {[(p.oid, p.eid, p.cursor) for p in missing[:5]]}")
    # The demoted node follows the spare now (Sentinel reconfigures it): for role_check.
    await h.async_wait_until(lambda: old.try_cli("ROLE").splitlines()[:1] == ["slave"], 20,
                             what=f"the demoted :{old.port} reporting ROLE slave")


async def role_check(env, topo, ck):
    """A Sentinel that names a replica as the master (it lags, or is misconfigured): the
    Sentinels are told to monitor a second name, `lagging`, at the address of the node
    demoted by the planned failover (a replica now).  A trackgated following `lagging` must
    check ROLE, log redis_role_not_master (role=slave) and never use that connection:
    /readyz and ingest answer 503, nothing is written to the replica."""
    spare = topo.replica
    for s in topo.sentinels:
        check_ok = s.cli("SENTINEL", "MONITOR", "lagging", "127.0.0.1", spare.port, 2)
        h.check(check_ok == "OK", f"{s.name}: SENTINEL MONITOR lagging: {check_ok!r}")
    log_dir = os.path.join(env.log_dir, "role")
    os.makedirs(log_dir, exist_ok=True)
    url = "redis+sentinel://" + ",".join(f"127.0.0.1:{s.port}" for s in topo.sentinels) + \
        "/lagging"
    d = h.Daemon(env.args.trackgated, env.redis.sock, env.key_file, log_dir, ["--redis", url])
    await asyncio.to_thread(d.start, ready=lambda port: True)  # serving, not ready
    try:
        def role_logged():
            return re.search(rf"\bredis_role_not_master\b.*addr=127\.0\.0\.1:{spare.port}\b"
                             r".*role=slave", h.log_since(d.log, d.log_offset))
        try:
            await h.async_wait_until(role_logged, 10, what="redis_role_not_master role=slave")
        except h.TestFailure as e:
            ck(False, f"{e}:\n{h.tail(d.log, 30)}")
        await asyncio.sleep(1.0)  # a few more rounds of ask, connect, ROLE
        r = await asyncio.to_thread(h.http_request, d.port, "GET", "/readyz")
        ck(r.status == 503, f"/readyz of the daemon following `lagging`: {r!r} (want 503)")
        o = f"sen-{os.getpid()}-role"
        u = h.update(o, h.now_ms(), lat=45.0, lng=7.5, event_id="role1")
        r = await asyncio.to_thread(
            h.http_request, d.port, "POST", "/v1/updates", u,
            {"Content-Type": "application/json", "Authorization": f"Bearer {h.INGEST_KEY}"})
        ck(r.status == 503, f"POST to the daemon following `lagging`: {r!r} (want 503)")
        text = h.log_since(d.log, d.log_offset)
        ck(not re.search(r"\bredis_connected\b", text),
           f"the daemon following `lagging` logged redis_connected:\n{h.tail(d.log, 30)}")
        n = len(re.findall(r"\bredis_role_not_master\b", text))
        print(f"role check: redis_role_not_master logged {n} times; /readyz and ingest 503")
        ck(spare.cli("EXISTS", f"trk:{{{o}}}:state") == "0", "the replica holds the update")
    finally:
        took = await asyncio.to_thread(d.terminate)
        print(f"the daemon following `lagging` exited 0 {took:.2f} s after SIGTERM")


if __name__ == "__main__":
    h.main(test, start=False)
