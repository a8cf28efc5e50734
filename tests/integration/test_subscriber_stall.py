#!/usr/bin/python3
"""integration.subscriber_stall: a Redis subscriber that dies silently is found and healed.

trackgated reaches Redis through a small unix-socket proxy run by this test (a thread with
its own asyncio loop, between the daemon and the private redis-server).  The proxy tells
the subscriber connection apart by the SUBSCRIBE it sends, and on demand blackholes it:
the connection stays open in both directions, but every byte either way is read and
dropped.  Nothing closes, nothing errs: what a half-dead NAT, proxy or path does.  The
command connection keeps working, so ingest keeps answering 202.

Each node publishes a heartbeat on its own channel (trk:hb:{host:pid:random}) from the
command connection every second and expects it back on the subscriber within 3 s.  Per
stall (two in a row) the test asserts:
  - the heartbeat channel is subscribed by the daemon (PUBSUB CHANNELS), with its pid;
  - /readyz stays 200 until the daemon can know, turns 503 (redis_subscriber_stalled)
    2.5..5.5 s after the stall began, and is 200 again once a heartbeat came back on the
    new connection; /healthz stays 200;
  - trackgate_redis_subscriber_stalls_total counts it (exactly one per stall), and the log
    says redis_subscriber_stalled, then redis_subscriber_healed;
  - the daemon closed the blackholed connection (no leak) and subscribed again through a
    fresh one; the order is subscribed again in Redis;
  - a watcher connected before the stall (and one that joined during it) receives every
    update whose POST was answered 202 before, during and after the stall, in cursor
    order without repeats, converging on the newest one within a few seconds of healing;
  - every POST is applied: ingest answers 202 throughout, or 503 (sent again, like a
    provider's retry) in the few ms the subscriber is down between close and reconnect.
"""
import asyncio
import os
import re
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CYCLES = 2
HB_DEAD_S = 3.0          # gateway/broker_heartbeat.c: BROKER_HB_DEAD_MS
DETECT_MIN_S = 2.5       # a heartbeat may have been on its way when the path went dark
DETECT_MAX_S = 5.5       # the next heartbeat (<= 1 s), the bound, slack for a loaded machine
HEAL_MAX_S = 4.0         # reconnect backoff (<= 100 ms), subscribe, the next heartbeat
CONVERGE_S = 5.0
POST_EVERY_S = 0.1
SUBSCRIBE_CMD = b"$9\r\nSUBSCRIBE\r\n"


class Conn:
    def __init__(self, n):
        self.n = n
        self.subscriber = False   # sent a SUBSCRIBE: the subscriber connection
        self.blackholed = False   # every byte either way is dropped
        self.closed_by_daemon = False
        self.closed = False
        self.tail = b""


class BlackholeProxy:
    """trackgated -> listen_path -> upstream_path (redis-server), one thread of its own."""

    def __init__(self, listen_path, upstream_path):
        self.listen_path = listen_path
        self.upstream_path = upstream_path
        self.conns = []
        self.loop = None
        self.server = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="blackhole-proxy", daemon=True)

    def start(self):
        self.thread.start()
        h.check(self.ready.wait(5), "the proxy did not start")

    def _run(self):
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_unix_server(self._handle, self.listen_path))
        self.ready.set()
        self.loop.run_forever()
        self.server.close()
        self.loop.run_until_complete(self.server.wait_closed())
        for t in asyncio.all_tasks(self.loop):
            t.cancel()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()

    def stop(self):
        if self.loop is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)

    async def _handle(self, creader, cwriter):
        conn = Conn(len(self.conns))
        self.conns.append(conn)
        try:
            ureader, uwriter = await asyncio.open_unix_connection(self.upstream_path)
        except OSError:
            cwriter.close()
            conn.closed = True
            return
        up = asyncio.ensure_future(self._pump(conn, creader, uwriter, True))
        down = asyncio.ensure_future(self._pump(conn, ureader, cwriter, False))
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        conn.closed = True
        for t in (up, down):
            t.cancel()
        for w in (cwriter, uwriter):
            w.close()

    async def _pump(self, conn, reader, writer, from_daemon):
        while True:
            try:
                data = await reader.read(65536)
            except (ConnectionError, OSError):
                data = b""
            if not data:
                if from_daemon:
                    conn.closed_by_daemon = True
                return
            if from_daemon and not conn.subscriber:
                seen = conn.tail + data
                conn.subscriber = SUBSCRIBE_CMD in seen
                conn.tail = seen[-len(SUBSCRIBE_CMD):]
            if conn.blackholed:
                continue  # read and dropped: the peer sees silence, not an error
            writer.write(data)
            try:
                await writer.drain()
            except (ConnectionError, OSError):
                return

    def live_subscribers(self):
        return [c for c in self.conns if c.subscriber and not c.closed]

    def blackhole_subscribers(self):
        subs = self.live_subscribers()
        for c in subs:
            c.blackholed = True
        return subs


class ReadyProbe:
    """Polls /readyz (and /healthz) every 20 ms in the background; keeps every answer."""

    def __init__(self, env):
        self.env = env
        self.samples = []  # (monotonic, readyz status, error code, healthz status)
        self.task = None

    def start(self):
        self.task = asyncio.ensure_future(self._run())

    async def _run(self):
        while True:
            t = time.monotonic()
            r = await asyncio.to_thread(self.env.http, "GET", "/readyz", None, None, 2.0)
            hz = await asyncio.to_thread(self.env.http, "GET", "/healthz", None, None, 2.0)
            err = r.json.get("error") if isinstance(r.json, dict) else None
            self.samples.append((t, r.status, err, hz.status))
            await asyncio.sleep(0.02)

    async def stop(self):
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass

    def since(self, t0):
        return [s for s in self.samples if s[0] >= t0]


class Ingest:
    """POSTs one fresh location of oid every 100 ms; keeps the cursor of every 202."""

    def __init__(self, env, oid):
        self.env = env
        self.oid = oid
        self.ts = h.now_ms() - 600_000
        self.applied = []  # cursors answered 202 applied, in order
        self.refused = []  # (status, body) of anything else, retries spent
        self.retried = 0   # 503s sent again
        self.task = None

    async def one(self):
        """One update, sent again after a 503 the way a provider retries (ingest needs both
        connections up, so it answers 503 in the few ms the subscriber is reconnecting)."""
        self.ts += 10
        n = len(self.applied) + len(self.refused)
        u = h.update(self.oid, self.ts, lat=45.0 + n * 1e-4, lng=7.0)
        for _ in range(50):
            r = await self.env.apost(u)
            res = r.json.get("results") if isinstance(r.json, dict) else None
            if r.status == 202 and res and res[0].get("result") == "applied":
                self.applied.append(res[0]["cursor"])
                return r
            if r.status != 503:
                break
            self.retried += 1
            await asyncio.sleep(0.02)
        self.refused.append((r.status, r.json))
        return r

    def start(self):
        self.task = asyncio.ensure_future(self._run())

    async def _run(self):
        while True:
            await self.one()
            await asyncio.sleep(POST_EVERY_S)

    async def stop(self):
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass


def stalls(env):
    return env.metrics().get("trackgate_redis_subscriber_stalls_total")


def update_cursors(w):
    """The cursors of w's update frames (after its snapshot), and those of any resync
    snapshot it got, in arrival order."""
    ups, snaps = [], []
    for f in w.frames[1:]:
        if f.get("type") == "update":
            ups.append(f.get("cursor"))
        elif f.get("type") == "snapshot":
            snaps.append(f.get("cursor"))
    return ups, snaps


def delivered(w):
    """Every cursor w saw, update or snapshot."""
    return [f.get("cursor") for f in w.frames if f.get("cursor")]


async def stall_once(env, proxy, probe, cycle, oid, joiners):
    before = stalls(env)
    h.check_eq(before, cycle - 1, f"cycle {cycle}: stalls counted before the stall")
    h.check_eq(env.http("GET", "/readyz").status, 200, f"cycle {cycle}: /readyz before the stall")
    log_at = h.log_size(env.daemon.log)

    subs = proxy.blackhole_subscribers()
    t0 = time.monotonic()
    h.check_eq(len(subs), 1, f"cycle {cycle}: subscriber connections through the proxy")
    print(f"cycle {cycle}: blackholed proxy connection #{subs[0].n} (the subscriber)")

    # A watcher joining while the subscriber is dark still gets its snapshot (commands).
    joiners.append(await env.watch(oid))

    await env.wait_metric("trackgate_redis_subscriber_stalls_total", cycle, timeout=DETECT_MAX_S)
    t_detect = time.monotonic()
    took = t_detect - t0
    print(f"cycle {cycle}: stall counted {took:.2f} s after the path went dark")
    h.check(DETECT_MIN_S <= took <= DETECT_MAX_S,
            f"cycle {cycle}: detected {took:.2f} s after the stall (bound: {HB_DEAD_S} s "
            f"without the heartbeat, checked each second)")

    await h.async_wait_until(lambda: subs[0].closed_by_daemon, 3.0,
                             what=f"cycle {cycle}: the daemon to close the stalled connection")
    await h.async_wait_until(
        lambda: [c for c in proxy.live_subscribers() if not c.blackholed], 3.0,
        what=f"cycle {cycle}: a new subscriber connection through the proxy")
    await h.async_wait_until(lambda: env.http("GET", "/readyz").status == 200, HEAL_MAX_S,
                             what=f"cycle {cycle}: /readyz 200 once the heartbeat is back")
    t_healed = time.monotonic()
    print(f"cycle {cycle}: ready again {t_healed - t_detect:.2f} s after the detection")
    await h.async_wait_until(lambda: env.redis.numsub(f"trk:{{{oid}}}") == 1, 3.0,
                             what=f"cycle {cycle}: the order subscribed again")

    seen = probe.since(t0)
    dark = [s for s in seen if s[0] < t_detect - 0.5]
    h.check(dark and all(s[1] == 200 for s in dark),
            f"cycle {cycle}: /readyz before the node could know: {dark[:5]!r}")
    bad = [s for s in seen if s[1] == 503]
    h.check(bad, f"cycle {cycle}: /readyz never answered 503 between the stall and healing")
    # redis_unavailable: the few ms between the stalled connection's close and the new one.
    h.check(any(s[2] == "redis_subscriber_stalled" for s in bad) and
            all(s[2] in ("redis_subscriber_stalled", "redis_unavailable") for s in bad),
            f"cycle {cycle}: /readyz 503 bodies: {sorted(set(s[2] for s in bad))!r}")
    h.check(t0 + DETECT_MIN_S - 0.1 <= bad[0][0] and bad[-1][0] <= t_healed,
            f"cycle {cycle}: /readyz 503 from {bad[0][0] - t0:.2f} to {bad[-1][0] - t0:.2f} s, "
            f"healed at {t_healed - t0:.2f} s")
    h.check(all(s[3] == 200 for s in seen), f"cycle {cycle}: /healthz must stay 200")

    text = h.log_since(env.daemon.log, log_at)
    h.check(re.search(r" redis_subscriber_stalled waited_ms=\d+ for=heartbeat action=reconnect",
                      text), f"cycle {cycle}: no redis_subscriber_stalled line:\n{text[-3000:]}")
    h.check(re.search(r" redis_subscriber_healed unhealthy_ms=\d+", text),
            f"cycle {cycle}: no redis_subscriber_healed line:\n{text[-3000:]}")


async def test(env):
    proxy = BlackholeProxy(os.path.join(env.sock_dir, "proxy.sock"), env.redis.sock)
    probe = ingest = None
    try:
        env.redis.start()
        proxy.start()
        env.daemon.redis_sock = proxy.listen_path
        await asyncio.to_thread(env.daemon.start)

        # The node's own heartbeat channel, subscribed by its subscriber.
        chans = await h.async_wait_until(
            lambda: env.redis.cli("PUBSUB", "CHANNELS", "trk:hb:*").split(), 3.0,
            what="the heartbeat channel to be subscribed")
        h.check(len(chans) == 1 and re.fullmatch(
            rf"trk:hb:\{{[^{{}}]+:{env.daemon.proc.pid}:[0-9a-f]{{12}}\}}", chans[0]),
            f"heartbeat channels: {chans!r}")
        h.check_eq(stalls(env), 0, "stalls counted at start")

        oid = f"stall-{os.getpid()}"
        w = await env.watch(oid)
        ingest = Ingest(env, oid)
        await ingest.one()
        f = await w.update()
        h.check_eq(f.get("cursor"), ingest.applied[-1], "the update before any stall")

        probe = ReadyProbe(env)
        probe.start()
        ingest.start()
        joiners = []
        for cycle in range(1, CYCLES + 1):
            await stall_once(env, proxy, probe, cycle, oid, joiners)
        await ingest.stop()
        await probe.stop()
        await ingest.one()  # one after healing, live
        h.check_eq(ingest.refused, [], "POSTs not applied while the subscriber was stalled")
        last = ingest.applied[-1]
        print(f"{len(ingest.applied)} updates applied, last {last}; {ingest.retried} POSTs "
              f"answered 503 (while the subscriber reconnected) and sent again")

        for x in [w] + joiners:
            await h.async_wait_until(lambda: last in delivered(x), CONVERGE_S,
                                     what=f"{x.path}: the newest update {last}")
            h.check(not x.closed.is_set(), f"{x.path} closed: {x.close_code} {x.close_reason!r}")

        # The first watcher saw every 202, in order, none twice (a resync snapshot may stand
        # in for the updates it covers when the log could not replay them).
        ups, snaps = update_cursors(w)
        h.check_eq(ups, sorted(ups, key=h.parse_cursor), "update frames out of cursor order")
        h.check_eq(len(ups), len(set(ups)), "an update frame delivered twice")
        covered = max((h.parse_cursor(c) for c in snaps if c), default=(0, 0))
        missing = [c for c in ingest.applied[1:]
                   if c not in ups and h.parse_cursor(c) > covered]
        h.check_eq(missing, [], "updates answered 202 that the watcher never got")
        for x in joiners:
            snap = h.parse_cursor(x.frames[0]["cursor"])
            got = set(delivered(x))
            lost = [c for c in ingest.applied if h.parse_cursor(c) > snap and c not in got]
            h.check_eq(lost, [], f"{x.path}: updates after its snapshot it never got")
        h.check_eq(stalls(env), CYCLES, "stalls counted (exactly one per stall)")
        # SIGTERM -> exit 0 while the proxy still carries its Redis connections.
        await env.close_watchers()
        took = await asyncio.to_thread(env.daemon.terminate)
        print(f"trackgated exited 0 {took:.2f} s after SIGTERM")
    finally:
        for bg in (ingest, probe):
            if bg and bg.task and not bg.task.done():
                await bg.stop()
        proxy.stop()


if __name__ == "__main__":
    h.main(test, start=False)
