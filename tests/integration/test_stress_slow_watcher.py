#!/usr/bin/python3
"""integration.stress.slow_watcher: 10 000 updates past watchers that stop reading.

One order, 3 normal watchers and 2 stuck ones, A and B (a 4 KiB receive
buffer set before connecting, and the client stops reading).  10 000 updates
are posted in batches of 100: location-only ones, with a status change every
500th.  Once a watcher is behind (a quarter of --outq-limit queued, or
undrained for 1 s) its queued location-only frame is replaced by the newest
one; frames with a status are never dropped; past the limit, or undrained for
--slow-timeout, it is closed with 4408.

Checks:
  - trackgated's RSS (VmRSS) before, while posting and after stays within
    RSS_BOUND of the start (x4 on an ASan build, see rss_scale());
  - the normal watchers get every update, in order, as posted;
  - stuck watcher A, reading again after the 10 000, gets only posted updates,
    in cursor order, fewer than were posted (the bound was exercised: an
    unbounded queue would hand it all 10 000), and every status change up to
    its last frame; then either it ends on the final cursor, or it was closed
    with 4408 and a reason, reconnects with ?since=<its last cursor> and ends on
    the final cursor (a replay, or a reset snapshot);
  - stuck watcher B is then fed updates that all carry a status (never
    coalesced): one every 0.2 s for --slow-timeout (5) + 2 s, so that a queue
    undrained that long is closed ("behind for too long"), then batches of 100
    until the queue passes the outq-limit, until the log shows a 4408 drop;
    reading again it finds the same properties and the 4408 close, and resumes
    with ?since= to the end;
  - afterwards the daemon is ready and every open watcher gets a new update.

Sizes.  A location-only frame here is ~330 bytes (long ids): 10 000 of them
(3.3 MB) are more than the kernel buffers of a stuck socket take (~2 MB on
loopback), so its queue in the daemon does fill.  A batch of 100 of them
(~33 KB) reaches the daemon in one burst, and a normal watcher must not count
as behind for that: --outq-limit is 192 KiB (a quarter: 48 KiB) rather than
64 KiB, whose 16 KiB quarter is less than one batch (then the normal watchers
rightly lose coalesced positions).  Batches are paced on the normal watchers
(each batch is posted once they have the previous one).
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

OUTQ_LIMIT = 196608  # quarter: 48 KiB, above one batch of frames (see the docstring)
SLOW_TIMEOUT = 5
MAX_EXTRA_BATCHES = 150  # after the 10 000: until stuck watcher B is dropped
N_UPDATES = 10_000
BATCH = 100
STATUS_EVERY = 500
STATUSES = ["courier_assigned", "en_route_to_pickup", "at_pickup", "picked_up",
            "en_route_to_dropoff", "at_dropoff"]
RSS_BOUND = 64 * 1024 * 1024


def rss_scale(binary):
    """How much more memory this build may use: 4 for ASan builds (detected by __asan_init
    in the binary), else 1; TG_STRESS_RSS_SCALE overrides.  (An ASan daemon also gets
    quarantine_size_mb=16, see asan_quarantine().)"""
    if os.environ.get("TG_STRESS_RSS_SCALE"):
        return float(os.environ["TG_STRESS_RSS_SCALE"])
    try:
        with open(binary, "rb") as f:
            return 4.0 if b"__asan_init" in f.read() else 1.0
    except OSError:
        return 1.0


def vm_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise h.TestFailure(f"no VmRSS in /proc/{pid}/status")


def mib(n):
    return f"{n / 1048576:.1f} MiB"


async def stuck_watcher(env, path):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", env.port))
    w = h.Watcher(env.port, path)
    w.ws = await h.websockets.connect(w.url, sock=s, ping_interval=None, max_queue=None,
                                      close_timeout=5)
    w._task = asyncio.ensure_future(w._reader())
    env.watchers.append(w)
    return w


def last_cursor(w):
    for f in reversed(w.frames):
        if f.get("cursor"):
            return f["cursor"]
    return None


async def wait_frames(w, done, timeout, what):
    """Waits until done(w.frames) is true; fails on timeout or if w closes first."""
    deadline = time.monotonic() + timeout
    while not done(w.frames):
        if w.closed.is_set():
            raise h.TestFailure(f"{w.path}: closed {w.close_code} {w.close_reason!r} while "
                                f"waiting for {what}; {len(w.frames)} frames")
        if time.monotonic() > deadline:
            raise h.TestFailure(f"{w.path}: no {what} within {timeout} s; {len(w.frames)} "
                                f"frames, the last {w.frames[-1:]!r}")
        await asyncio.sleep(0.005)


def check_whole_stream(ck, w, posted, label):
    """Everything w got: a snapshot first, then posted updates in strictly increasing cursor
    order, each after the snapshot's cursor (a resume's one resumed frame aside, checked
    where it came).  Run once the last update reached w, it catches any frame sent twice
    or late, whenever it came: no quiet period has to be waited for."""
    frames = w.frames
    floor = None
    if frames and frames[0].get("type") == "snapshot":
        floor = h.parse_cursor(frames[0]["cursor"]) if frames[0].get("cursor") else None
        frames = frames[1:]
    ups = [f for f in frames if f.get("type") != "resumed"]
    if check_stream(ck, ups, posted, label) and ups and floor is not None:
        ck(h.parse_cursor(ups[0]["cursor"]) > floor, f"{label}: the first update "
           f"{ups[0]['cursor']} is not after its snapshot's cursor")


async def wait_cursor(w, cursor, timeout, what):
    """Waits until w has a frame with this cursor (or any later one)."""
    target = h.parse_cursor(cursor)
    deadline = time.monotonic() + timeout
    while True:
        c = last_cursor(w)
        if c and h.parse_cursor(c) >= target:
            return
        if w.closed.is_set():
            raise h.TestFailure(f"{w.path}: closed {w.close_code} {w.close_reason!r} while "
                                f"waiting for {what} ({cursor}); last cursor {c}")
        if time.monotonic() > deadline:
            raise h.TestFailure(f"{w.path}: no {what} ({cursor}) within {timeout} s; last "
                                f"cursor {c}, {len(w.frames)} frames")
        await asyncio.sleep(0.005)


def check_stream(ck, frames, posted, label):
    """frames (update frames) are posted updates in strictly increasing cursor order."""
    prev = None
    for i, f in enumerate(frames):
        c = f.get("cursor")
        if not ck(f.get("type") == "update" and c in posted and f.get("update") == posted[c],
                  f"{label}: frame {i} is not a posted update: {json.dumps(f)[:300]}"):
            return False
        pc = h.parse_cursor(c)
        if not ck(prev is None or pc > prev, f"{label}: frame {i} cursor {c} is not after "
                  f"the previous one {prev}"):
            return False
        prev = pc
    return True


async def read_stuck(ck, env, w, label, final, posted, order, statuses):
    """Lets a stuck watcher read again and checks how it ends (see the module docstring).

    Returns (frames it got before any close, whether its queue was bounded)."""
    w.ws.transport.resume_reading()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not w.closed.is_set() and last_cursor(w) != final:
        await asyncio.sleep(0.02)
    # Anything it gets after the final frame is caught by check_whole_stream at the end.
    got = w.frames[1:]
    n_got = len(got)
    check_stream(ck, got, posted, label)
    got_c = [f.get("cursor") for f in got]
    last = got_c[-1] if got_c else w.frames[0].get("cursor")
    upto = [c for c in order if last and h.parse_cursor(c) <= h.parse_cursor(last)]
    bounded = n_got < len(upto) or w.closed.is_set()
    status_set = set(statuses)
    sent_statuses = [c for c in statuses if c in set(upto)]
    got_statuses = [c for c in got_c if c in status_set]
    ck(got_statuses == sent_statuses,
       f"{label}: status changes up to its last frame {last}: got {got_statuses}, want "
       f"{sent_statuses} (frames with a status must never be dropped)")
    if not w.closed.is_set():
        ck(last == final, f"{label}: ends on {last}, want the final cursor {final} (it was "
           f"not closed)")
        print(f"{label}: {n_got} of the {len(order)} updates ({len(order) - n_got} coalesced), "
              f"ending on the final cursor; not closed")
        return got, bounded
    ck(w.close_code == 4408, f"{label}: closed with {w.close_code} {w.close_reason!r}, "
       f"want 4408")
    ck(bool(w.close_reason), f"{label}: the 4408 close has no reason")
    print(f"{label}: {n_got} updates up to {last} ({len(upto) - n_got} coalesced), then "
          f"{w.close_code} {w.close_reason!r}; resuming with since={last}")
    again = await env.watch(path=f"/v1/track/{w.path.rsplit('/', 1)[1]}?since={last}",
                            snapshot=False)
    await wait_frames(again, lambda fs: bool(fs), 15, f"{label}: a first frame after resuming")
    await wait_cursor(again, final, 15, f"{label}: the final cursor after resuming")
    if again.frames[0].get("type") != "snapshot":
        # A replay ends with the resumed frame; the final cursor may come before it.
        await wait_frames(again, lambda fs: any(f.get("type") == "resumed" for f in fs), 15,
                          f"{label}: the resumed frame")
    frames = again.frames
    if frames and frames[0].get("type") == "snapshot":
        ck(frames[0].get("reset") is True, f"{label}: resume: a snapshot without reset: "
           f"{frames[0]!r}")
        ck(frames[0].get("cursor") == final and len(frames) == 1,
           f"{label}: resume: a reset snapshot at {frames[0].get('cursor')} and "
           f"{len(frames) - 1} more frames; want the final cursor {final} only")
        print(f"{label}: resumed with a reset snapshot at the final cursor")
    else:
        # One resumed frame, right after the replayed ones (its cursor the last of them).
        idx = [i for i, f in enumerate(frames) if f.get("type") == "resumed"]
        if ck(len(idx) == 1, f"{label}: resume: {len(idx)} resumed frames, want one"):
            r, before = frames[idx[0]], frames[:idx[0]]
            ck(r.get("replayed") == len(before) and
               r.get("cursor") == (before[-1].get("cursor") if before else last),
               f"{label}: resume: the resumed frame {r!r} does not follow the {len(before)} "
               f"replayed frames")
            frames = frames[:idx[0]] + frames[idx[0] + 1:]
        check_stream(ck, frames, posted, f"{label} (resumed)")
        want = [c for c in order if h.parse_cursor(c) > h.parse_cursor(last)]
        ck([f.get("cursor") for f in frames] == want,
           f"{label}: resume after {last}: got {len(frames)} frames, want exactly the "
           f"{len(want)} after it")
        print(f"{label}: resumed: replayed {len(frames)} updates up to the final cursor")
    ck(last_cursor(again) == final, f"{label}: the resumed watcher ends on "
       f"{last_cursor(again)}, want {final}")
    return got, bounded


async def test(env):
    ck = h.Checks()
    # Long ids make a location-only frame ~330 bytes: 10 000 of them (3.3 MB) are
    # more than the kernel buffers of the stuck sockets hold (~2 MB here), while
    # a batch of 100 (~33 KB) stays below a quarter of the outq-limit.
    oid = f"stress-slow-watcher-{os.getpid():08d}-{'o' * 12}"
    provider = "stress_test_provider_" + "p" * 18
    base = h.now_ms() - 3_600_000
    pid = env.daemon.proc.pid
    scale = rss_scale(env.args.trackgated)
    bound = int(RSS_BOUND * scale)

    stuck_a = await stuck_watcher(env, f"/v1/track/{oid}")
    await stuck_a.snapshot()
    stuck_b = await stuck_watcher(env, f"/v1/track/{oid}")
    await stuck_b.snapshot()
    normal = [await env.watch(oid) for _ in range(3)]
    stuck_a.ws.transport.pause_reading()
    stuck_b.ws.transport.pause_reading()
    await asyncio.sleep(0.2)
    rss0 = vm_rss(pid)
    rss_max = rss0

    posted = {}         # cursor -> update
    order = []          # cursors in posting order
    statuses = []       # cursors of the status changes
    t0 = time.monotonic()
    for b in range(N_UPDATES // BATCH):
        batch = []
        for i in range(b * BATCH, (b + 1) * BATCH):
            if i % STATUS_EVERY == STATUS_EVERY - 1:
                u = h.update(oid, base + i, lat=10.5, lng=20.25, provider=provider,
                             status=STATUSES[(i // STATUS_EVERY) % len(STATUSES)])
            else:
                u = h.update(oid, base + i, lat=round(10 + (i % 1000) / 1000, 3),
                             lng=round(20 + (i // 1000) / 1000, 3), provider=provider)
                u["location"].update(heading_deg=round(i % 360 + 0.25, 2), speed_mps=4.25,
                                     accuracy_m=12.5)
            batch.append(u)
        results = await env.apost_ok(batch)
        for u, r in zip(batch, results):
            h.check(r.get("result") == "applied", f"batch {b}: {r!r}")
            posted[r["cursor"]] = u
            order.append(r["cursor"])
            if "status" in u:
                statuses.append(r["cursor"])
        rss_max = max(rss_max, vm_rss(pid))
        for w in normal:  # paced: one batch at a time reaches the daemon's queues
            await wait_cursor(w, order[-1], 10, f"the end of batch {b}")
        if b % 20 == 19:
            print(f"  {len(order)} updates posted in {time.monotonic() - t0:.1f} s; "
                  f"VmRSS {mib(vm_rss(pid))}")
    took = time.monotonic() - t0
    final = order[-1]
    rss_during = rss_max
    frame_len = len(json.dumps(normal[0].frames[1], separators=(",", ":")))
    print(f"posted {len(order)} updates ({len(statuses)} status changes, location-only frames "
          f"of ~{frame_len} bytes) in {took:.1f} s; final cursor {final}")

    # The normal watchers: every update, in order, as posted.
    for n, w in enumerate(normal):
        got = w.frames[1:]
        ck(len(got) == N_UPDATES, f"normal watcher {n}: {len(got)} update frames, want "
           f"{N_UPDATES}")
        if check_stream(ck, got, posted, f"normal watcher {n}"):
            got_set = set(f["cursor"] for f in got)
            missing = [c for c in order if c not in got_set]
            ck(not missing, f"normal watcher {n}: {len(missing)} updates missing, the first "
               f"{missing[:5]}")
        ck(not w.closed.is_set(), f"normal watcher {n} was closed: {w.close_code} "
           f"{w.close_reason!r}")

    # Stuck watcher A reads again: it ends on the final state, or was closed with
    # 4408 and resumes.
    _, bounded_a = await read_stuck(ck, env, stuck_a, "stuck watcher A", final, posted, order,
                                    statuses)
    ck(bounded_a, f"stuck watcher A got every update: nothing was coalesced nor dropped, so "
       f"the bound was not exercised (the kernel buffered all {len(order)} frames?)")

    # Stuck watcher B: more updates, each with a status (so never coalesced), until
    # its queue passes the outq-limit or stays undrained for --slow-timeout: 4408.
    # (After the coalesced 10 000 its queue may well have drained into the kernel.)
    offset = os.path.getsize(env.daemon.log)
    ts = base + N_UPDATES
    t1 = time.monotonic()

    def find_drop():
        with open(env.daemon.log, "rb") as f:
            f.seek(offset)
            for line in f.read().decode("utf-8", "replace").splitlines():
                if " watcher_dropped " in line and "code=4408" in line:
                    return line
        return None

    async def post_extra(n, b):
        nonlocal ts, rss_max
        batch = []
        for i in range(n):
            u = h.update(oid, ts, lat=11.5, lng=21.5, provider=provider,
                         status=STATUSES[(b + i) % len(STATUSES)])
            u["location"].update(heading_deg=90.5, speed_mps=4.25, accuracy_m=12.5)
            batch.append(u)
            ts += 1
        results = await env.apost_ok(batch)
        for u, r in zip(batch, results):
            h.check(r.get("result") == "applied", f"extra update: {r!r}")
            posted[r["cursor"]] = u
            order.append(r["cursor"])
            statuses.append(r["cursor"])
        rss_max = max(rss_max, vm_rss(pid))
        for w in normal:
            await wait_cursor(w, order[-1], 10, "the last extra update")

    # First slowly, one update every 0.2 s for --slow-timeout + 2 s: if B's queue
    # is not empty, it has been undrained for too long by then.  Then in batches
    # of 100, until its queue passes the outq-limit.
    dropped = None
    k = 0
    while not dropped and time.monotonic() - t1 < SLOW_TIMEOUT + 2:
        await post_extra(1, k)
        k += 1
        dropped = find_drop()
        await asyncio.sleep(0.2)
    slow_phase = time.monotonic() - t1
    for b in range(MAX_EXTRA_BATCHES):
        if dropped:
            break
        await post_extra(BATCH, b)
        dropped = find_drop()
    rss_during = rss_max
    print(f"{len(order) - N_UPDATES} more updates with a status in "
          f"{time.monotonic() - t1:.1f} s ({k} one by one in {slow_phase:.1f} s, then in "
          f"batches); dropped: {dropped}")
    ck(dropped, f"no watcher_dropped code=4408 in the log after {len(order) - N_UPDATES} "
       f"more updates that stuck watcher B never read")
    _, bounded_b = await read_stuck(ck, env, stuck_b, "stuck watcher B", order[-1], posted,
                                    order, statuses)
    ck(stuck_b.close_code == 4408, f"stuck watcher B, its queue past the outq-limit or "
       f"undrained for --slow-timeout {SLOW_TIMEOUT}, was not closed with 4408 (close code "
       f"{stuck_b.close_code})")
    # Stuck watcher A, reading since, got all of these (status frames are never dropped).
    await wait_cursor(stuck_a, order[-1], 10, "the last extra update")
    extra = set(order[N_UPDATES:])
    got_extra = [f["cursor"] for f in stuck_a.frames if f.get("cursor") in extra]
    if not stuck_a.closed.is_set():
        ck(got_extra == order[N_UPDATES:], f"stuck watcher A, reading again, got "
           f"{len(got_extra)} of the {len(extra)} extra updates (want all, in order)")

    # RSS after, and the daemon still serves.
    rss_after = vm_rss(pid)
    print(f"trackgated VmRSS: before {mib(rss0)}, max while posting {mib(rss_during)}, after "
          f"{mib(rss_after)}; growth {mib(max(rss_during, rss_after) - rss0)} (bound "
          f"{mib(bound)}, scale {scale:g})")
    ck(rss_during - rss0 < bound, f"RSS grew by {mib(rss_during - rss0)} while posting "
       f"(bound {mib(bound)})")
    ck(rss_after - rss0 < bound, f"RSS grew by {mib(rss_after - rss0)} (bound {mib(bound)})")

    r = await asyncio.to_thread(env.http, "GET", "/readyz")
    ck(r.status == 200, f"/readyz after the stress: {r!r}")
    for w in env.watchers:
        w.pending()  # every frame so far was checked through w.frames
    u = h.update(oid, ts + 1, status="delivered", provider=provider)
    c = await env.aapply(u)
    posted[c] = u
    for k, w in enumerate(env.watchers):
        if w.closed.is_set():
            continue
        f = await w.next(timeout=10, what="the update after the stress")
        ck(f.get("cursor") == c and f.get("update") == u,
           f"{w.path}: the update after the stress: {json.dumps(f)[:300]}")
        # Pub/sub keeps order: all that came before this last update is all it got.
        check_whole_stream(ck, w, posted, f"watcher {k} ({w.path}), its whole stream")
    await h.stop_daemon(env, ck)
    ck.done()


def asan_quarantine():
    """On an ASan build, a smaller quarantine for this daemon: ASan keeps up to 256 MB of
    freed memory by default, which would show as RSS growth (a leak is still reported)."""
    binary = None
    for i, a in enumerate(sys.argv):
        if a == "--trackgated" and i + 1 < len(sys.argv):
            binary = sys.argv[i + 1]
        elif a.startswith("--trackgated="):
            binary = a.split("=", 1)[1]
    if binary and rss_scale(binary) > 1 and "quarantine_size_mb" not in os.environ.get(
            "ASAN_OPTIONS", ""):
        opts = os.environ.get("ASAN_OPTIONS", "")
        os.environ["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "quarantine_size_mb=16"


if __name__ == "__main__":
    asan_quarantine()
    h.main(test, daemon_args=["--outq-limit", str(OUTQ_LIMIT),
                              "--slow-timeout", str(SLOW_TIMEOUT)])
