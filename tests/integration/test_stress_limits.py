#!/usr/bin/python3
"""integration.stress.limits: the connection and request limits, and survival after each.

trackgated runs with --max-per-client 5 --max-connections 50 --http-timeout 30
(the raw connections of step 2b must outlive the steps that count them); the
slowloris of step 4 meets a second trackgated with --http-timeout 2.

  1. max-per-client: 5 websockets from 127.0.0.1 get their snapshots; the 6th
     gets an error frame and close 1008; once one closes, one more is accepted
     (and the next is refused again: the count is released, never leaked by
     the refusals).
  2. max-connections: websockets from other loopback addresses (5 each) are
     opened until one is refused with an error frame and close 1013; the
     number held is then ~50; an HTTP request gets 503 {"error":"overloaded"};
     after they are released, /healthz is 200 and websockets are accepted again.
     Raw TCP connections that send nothing hold no server state (they wait in
     the listener's lobby for a request head): with 55 held, /healthz is still
     200 and a websocket is accepted; they hold a descriptor each, so past
     max-connections + 64 spare ones (or max-pending-per-client from one
     address) connections are closed at accept.
  3. a client text message over 4 KiB closes with 1009 (one of 4 KiB does not).
  4. slowloris: "GET /healthz HTTP/1.1\\r\\n", then one header byte per second:
     closed within http-timeout + 2 s; an idle connection that sends nothing
     likewise (first-byte-timeout, never longer than http-timeout).
  5. a 10 KiB header section: the connection is closed (libwebsockets 4.1 sends
     no status: known limitation); the daemon survives.
After each step /healthz is 200; at the end a watcher gets its snapshot and an
update.  Between the steps the test waits on what the daemon reports (its
connection gauges in /metrics, its answers, a ping's pong), never a fixed sleep.
"""
import asyncio
import json
import os
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

MAX_PER_CLIENT = 5
MAX_CONNECTIONS = 50
HTTP_TIMEOUT = 2          # the slowloris daemon of step 4
MAIN_HTTP_TIMEOUT = 30    # the main daemon: idle raw connections stay while they are counted
WS = 'trackgate_connections{state="websocket"}'
HTTP = 'trackgate_connections{state="http"}'


async def connect(env, oid, addr="127.0.0.1"):
    w = h.Watcher(env.port, f"/v1/track/{oid}")
    w.ws = await h.websockets.connect(w.url, open_timeout=5, close_timeout=5, ping_interval=None,
                                      max_queue=None, local_addr=(addr, 0))
    w._task = asyncio.ensure_future(w._reader())
    env.watchers.append(w)
    return w


async def first_frame(w, timeout=5):
    """('snapshot', frame) or ('closed', (code, reason, frames))."""
    try:
        f = await w.next(timeout=timeout, what="the first frame")
    except h.TestFailure:
        if w.closed.is_set():
            return "closed", (w.close_code, w.close_reason, w.frames)
        raise
    if f.get("type") == "snapshot":
        return "snapshot", f
    await w.wait_closed(timeout)
    return "closed", (w.close_code, w.close_reason, w.frames)


async def expect_refused(ck, w, code, error, what):
    kind, x = await first_frame(w)
    if not ck(kind == "closed", f"{what}: accepted (got {json.dumps(x)[:200]}), want close {code}"):
        return False
    got_code, reason, frames = x
    ck(got_code == code, f"{what}: close code {got_code} {reason!r}, want {code}")
    ck(bool(reason), f"{what}: the close has no reason")
    ck(frames and frames[0].get("type") == "error" and frames[0].get("error") == error,
       f"{what}: want an error frame ({error}) before the close, got {frames!r}")
    return True


async def connections_drained(ck, env, websockets, what, timeout=10):
    """Waits until the daemon counts `websockets` websockets and no other connection than
    the scrape itself: the sockets the test closed are gone on its side too.  A scrape
    answers 503 while the daemon is still over max-connections: retried."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            m = await asyncio.to_thread(h.scrape_metrics, env.port)
            last = (m.get(WS), m.get(HTTP))
            if last == (websockets, 1):
                return True
        except (h.TestFailure, OSError) as e:
            last = e
        if time.monotonic() >= deadline:
            return ck(False, f"{what}: the daemon still counts (websockets, http) {last!r} "
                      f"after {timeout} s, want ({websockets}, 1)")
        await asyncio.sleep(0.05)


async def healthz(ck, env, what):
    try:
        r = await asyncio.to_thread(env.http, "GET", "/healthz")
        ck(r.status == 200, f"/healthz {what}: {r!r}")
    except OSError as e:
        ck(False, f"/healthz {what}: {e!r}")
    env.assert_alive()


def time_to_close(port, send_first, trickle, limit):
    """Seconds until the server closes a connection that sends send_first, then one byte of
    trickle per second; None if still open after limit.  Also returns what it read."""
    s = socket.create_connection(("127.0.0.1", port), timeout=limit)
    t0 = time.monotonic()
    got = b""
    try:
        if send_first:
            s.sendall(send_first)
        s.settimeout(1.0)
        i = 0
        while time.monotonic() - t0 < limit:
            try:
                chunk = s.recv(4096)
                if not chunk:
                    return time.monotonic() - t0, got
                got += chunk
            except socket.timeout:
                pass
            except ConnectionResetError:
                return time.monotonic() - t0, got
            if trickle:
                try:
                    s.send(trickle[i % len(trickle):i % len(trickle) + 1])
                except (BrokenPipeError, ConnectionResetError):
                    return time.monotonic() - t0, got
                i += 1
        return None, got
    finally:
        s.close()


async def test(env):
    ck = h.Checks()
    oid = f"lim-{os.getpid()}"
    base = h.now_ms() - 60_000

    # 1. max-per-client
    held = [await connect(env, oid) for _ in range(MAX_PER_CLIENT)]
    for i, w in enumerate(held):
        kind, x = await first_frame(w)
        ck(kind == "snapshot", f"websocket {i + 1} of {MAX_PER_CLIENT} from 127.0.0.1: {x!r}")
    for attempt in range(2):
        extra = await connect(env, oid)
        await expect_refused(ck, extra, 1008, "too_many_connections",
                             f"websocket {MAX_PER_CLIENT + 1} from 127.0.0.1 (try {attempt + 1})")
    await held.pop(0).close()
    await env.wait_metric(WS, MAX_PER_CLIENT - 1)  # the daemon has handled that close
    again = await connect(env, oid)
    kind, x = await first_frame(again)
    ck(kind == "snapshot", f"after one of the {MAX_PER_CLIENT} closed, a new websocket from "
       f"127.0.0.1 was refused: {x!r} (the count was not released)")
    held.append(again)
    extra = await connect(env, oid)
    await expect_refused(ck, extra, 1008, "too_many_connections",
                         f"websocket {MAX_PER_CLIENT + 1} from 127.0.0.1 after the rejoin")
    other = await connect(env, oid, "127.0.0.99")
    kind, x = await first_frame(other)
    ck(kind == "snapshot", f"a websocket from 127.0.0.99 while 127.0.0.1 is full: {x!r}")
    c = await env.aapply(h.update(oid, base, lat=1.0, lng=2.0, status="created"))
    for w in held + [other]:
        f = await w.update()
        ck(f.get("cursor") == c, f"{w.path}: update after the refusals: {f!r}")
    for w in held + [other]:
        await w.close()
    await healthz(ck, env, "after the per-client refusals")
    print(f"1. max-per-client {MAX_PER_CLIENT}: the 6th got 1008; the count is released")

    # 2. max-connections
    fill = []
    refused = None
    for n in range(MAX_CONNECTIONS + 10):
        w = await connect(env, oid, f"127.0.1.{1 + n // MAX_PER_CLIENT}")
        kind, x = await first_frame(w)
        if kind != "snapshot":
            refused = (n, w, x)
            break
        fill.append(w)
    if ck(refused is not None, f"{len(fill)} websockets were all accepted with "
          f"--max-connections {MAX_CONNECTIONS}"):
        n, w, (code, reason, frames) = refused
        print(f"2. websocket {n + 1} refused: {code} {reason!r} {frames!r}")
        ck(MAX_CONNECTIONS - 2 <= len(fill) <= MAX_CONNECTIONS,
           f"{len(fill)} websockets were accepted before a refusal, want about "
           f"{MAX_CONNECTIONS}")
        ck(code == 1013, f"the websocket past --max-connections: close {code} {reason!r}, "
           f"want 1013")
        ck(bool(reason), "the 1013 close has no reason")
        ck(frames and frames[0].get("type") == "error",
           f"no error frame before the 1013: {frames!r}")
        try:
            r = await asyncio.to_thread(env.http, "GET", "/healthz")
            ck(r.status == 503 and isinstance(r.json, dict) and
               r.json.get("error") == "overloaded",
               f"an HTTP request with {len(fill)} websockets held: {r!r}, want 503 "
               f"{{\"error\":\"overloaded\"}}")
        except OSError as e:
            ck(False, f"an HTTP request with {len(fill)} websockets held: {e!r}, want 503 "
               f"overloaded")
    held_n = len(fill)
    for w in fill:
        await w.close()
    await connections_drained(ck, env, 0, "after releasing the websockets held for "
                              "max-connections")
    await healthz(ck, env, "after releasing the websockets held for max-connections")
    after = [await connect(env, oid, "127.0.2.1") for _ in range(MAX_PER_CLIENT)]
    for w in after:
        kind, x = await first_frame(w)
        ck(kind == "snapshot", f"a websocket after releasing the {held_n}: {x!r}")
    for w in after:
        await w.close()
    print(f"2. max-connections {MAX_CONNECTIONS}: {held_n} held, then 1013 / HTTP 503; "
          f"accepted again after the release")

    # 2b. raw TCP connections count too; past max-connections + the spare ones
    # (64) a connection is closed at accept.  Quick: they are idle, so the
    # http-timeout would close them.
    raw = [socket.create_connection(("127.0.0.1", env.port), timeout=2)
           for _ in range(MAX_CONNECTIONS + 5)]

    try:
        await env.wait_metric('trackgate_connections{state="pending"}',
                              lambda v: (v or 0) >= len(raw), 10)
    except h.TestFailure as e:
        ck(False, f"{len(raw)} raw TCP connections in the lobby: {e}")
    r = await asyncio.to_thread(env.http, "GET", "/healthz", None, None, 2.0)
    ck(r.status == 200, f"/healthz with {len(raw)} silent raw TCP connections held: {r!r}, "
       f"want 200 (they hold no server state)")
    w = await connect(env, oid, "127.0.3.1")
    kind, x = await first_frame(w)
    ck(kind == "snapshot",
       f"a websocket with {len(raw)} silent raw TCP connections held: {x!r}")
    await w.close()
    more = [socket.create_connection(("127.0.0.1", env.port), timeout=2) for _ in range(80)]
    for s in more:
        s.setblocking(False)
    total = len(raw) + len(more)
    closed = set()

    def count_closed():
        for i, s in enumerate(more):
            if i in closed:
                continue
            try:
                if s.recv(1) == b"":
                    closed.add(i)
            except BlockingIOError:
                pass
            except ConnectionResetError:
                closed.add(i)
        return len(closed)

    def bounded():
        # Nothing else closes them (http-timeout 30 s): once the daemon has taken them
        # all from its backlog, those past max-connections + 64 were closed at accept.
        return count_closed() >= 1 and total - len(closed) <= MAX_CONNECTIONS + 64 + 2
    try:
        await h.async_wait_until(bounded, 10, what="the connections past max-connections + 64 "
                                 "closed at accept")
    except h.TestFailure:
        pass  # reported by the checks below
    shut = len(closed)
    print(f"2b. {len(raw)} silent raw TCP connections: /healthz 200, a websocket accepted; "
          f"with {total}, {shut} were closed at once")
    ck(total - shut <= MAX_CONNECTIONS + 64 + 2,
       f"{total} raw connections, only {shut} closed at accept: more than max-connections "
       f"+ 64 spare are held")
    ck(shut >= 1, f"{total} raw connections and none closed at accept (max-connections "
       f"{MAX_CONNECTIONS} + 64 spare)")
    for s in raw + more:
        s.close()
    await connections_drained(ck, env, 0, "after releasing the raw TCP connections")
    await healthz(ck, env, "after releasing the raw TCP connections")

    # 3. client messages: 4 KiB ignored, 4 KiB + 1 -> 1009
    w = await connect(env, oid)
    await first_frame(w)
    await w.ws.send("x" * 4096)
    try:
        await w.roundtrip()  # its pong: the daemon has read and handled the 4 KiB message
    except h.websockets.exceptions.ConnectionClosed:
        pass
    ck(not w.closed.is_set(), f"a 4096-byte client message closed the socket: {w.close_code} "
       f"{w.close_reason!r}")
    await w.ws.send("y" * 4097)
    code, reason = await w.wait_closed(5)
    ck(code == 1009, f"a 4097-byte client message: close {code} {reason!r}, want 1009")
    ck(bool(reason), "the 1009 close has no reason")
    await healthz(ck, env, "after the 1009")
    print(f"3. 1 KiB message ignored, 2 KiB message closed with {code} {reason!r}")

    # 4. slowloris and an idle connection, side by side, on a second trackgated with
    # --http-timeout 2; each is given 15 s so that a late close is measured, not just
    # noticed.
    limit = HTTP_TIMEOUT + 2
    slow_dir = os.path.join(env.log_dir, "http-timeout")
    os.makedirs(slow_dir, exist_ok=True)
    slow = h.Daemon(env.args.trackgated, env.redis.sock, env.key_file, slow_dir,
                    ["--http-timeout", str(HTTP_TIMEOUT)])
    slow.start()  # from the main thread: PR_SET_PDEATHSIG follows the thread that spawned
    try:
        (took, got), (idle_took, _) = await asyncio.gather(
            asyncio.to_thread(time_to_close, slow.port, b"GET /healthz HTTP/1.1\r\n",
                              b"X-Slow: " + b"a" * 200, 15),
            asyncio.to_thread(time_to_close, slow.port, b"", b"", 15))
        r = await asyncio.to_thread(h.http_request, slow.port, "GET", "/healthz")
        ck(r.status == 200, f"/healthz of the --http-timeout {HTTP_TIMEOUT} daemon after the "
           f"slowloris: {r!r}")
    finally:
        try:
            await asyncio.to_thread(slow.terminate)
        except h.TestFailure as e:
            ck(False, f"the --http-timeout {HTTP_TIMEOUT} trackgated: {e}\n{h.tail(slow.log, 30)}")
    fmt = lambda t: "never (15 s)" if t is None else f"{t:.2f} s"
    print(f"4. slowloris (a header byte per second) closed after {fmt(took)}; an idle "
          f"connection after {fmt(idle_took)} (--http-timeout {HTTP_TIMEOUT})")
    ck(took is not None and took <= limit,
       f"slowloris (\"GET /healthz HTTP/1.1\\r\\n\", then one header byte per second): "
       f"closed after {fmt(took)}, want <= {limit} s (--http-timeout {HTTP_TIMEOUT} + 2)")
    ck(b" 200 " not in got[:20], f"slowloris got a 200: {got[:200]!r}")
    ck(idle_took is not None and idle_took <= limit,
       f"an idle connection (nothing sent): closed after {fmt(idle_took)}, want <= {limit} s "
       f"(--http-timeout {HTTP_TIMEOUT} + 2)")
    await healthz(ck, env, "after the slowloris")

    # 5. a 10 KiB header section
    req = (b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"b" * 10240 + b"\r\n\r\n")
    try:
        got = await asyncio.to_thread(h.raw_exchange, env.port, req, 5.0)
    except OSError as e:
        got = repr(e).encode()
    ck(b" 200 " not in got[:20], f"a 10 KiB header section was answered 200: {got[:200]!r}")
    print(f"5. 10 KiB header section: {got[:80]!r} (connection closed)")
    await healthz(ck, env, "after a 10 KiB header section")

    # Still serving: a watcher gets its snapshot and an update.
    w = await env.watch(f"{oid}-end")
    c = await env.aapply(h.update(f"{oid}-end", base + 1, lat=3.0, lng=4.0))
    f = await w.update()
    ck(f.get("cursor") == c, f"the watcher at the end: {f!r}")
    await h.stop_daemon(env, ck)
    ck.done()


if __name__ == "__main__":
    h.main(test, daemon_args=["--max-per-client", str(MAX_PER_CLIENT),
                              "--max-connections", str(MAX_CONNECTIONS),
                              "--http-timeout", str(MAIN_HTTP_TIMEOUT)])
