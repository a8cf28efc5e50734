#!/usr/bin/python3
"""integration.origins: --allowed-origins decides which pages may open the stream.

trackgated runs with --allowed-origins "https://shop.example, https://b.example"
(a list with a space after the comma).  A websocket upgrade with Origin
https://shop.example or https://b.example gets its snapshot and updates;
a request with no Origin header at all (a native app, trackgate-watch: not a
browser, which is what the check is about) is served too; anything else is
refused with an error frame and close 1008 with a readable reason:
https://evil.example, the same host over http, on another port, as a prefix
of a longer host, with a trailing slash, and "null".  The refusals are counted in /metrics (reason origin).  A second
trackgated without the setting accepts any Origin, and none.
"""
import asyncio
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_tokens import scrape_refused, ws_refused  # noqa: E402

ALLOWED = ("https://shop.example", "https://b.example")


async def open_watcher(env, port, order_id, origin, what):
    """A watcher on port with Origin origin (None: no header); its snapshot is checked."""
    w = h.Watcher(port, f"/v1/track/{order_id}")
    w.ws = await h.websockets.connect(w.url, open_timeout=5, close_timeout=5, ping_interval=None,
                                      max_queue=None, origin=origin)
    w._task = asyncio.ensure_future(w._reader())
    env.watchers.append(w)
    snap = await w.snapshot()
    h.check_eq(snap.get("order_id"), order_id, f"{what}: snapshot order_id")
    print(f"  ok  {what}: snapshot")
    return w


async def test(env):
    ck = h.Checks()
    oid = f"orig-{os.getpid()}"
    before = await asyncio.to_thread(scrape_refused, env.port)

    print("--- allowed")
    watchers = []
    for origin in ALLOWED + (None,):
        try:
            watchers.append(await open_watcher(env, env.port, oid, origin,
                                               f"Origin {origin}" if origin else "no Origin"))
        except (h.TestFailure, OSError, h.websockets.exceptions.WebSocketException) as e:
            ck(False, f"Origin {origin}: want the snapshot: {e}")
    c = await env.aapply(h.update(oid, h.now_ms(), lat=52.5, lng=13.4))
    for w in watchers:
        try:
            f = await w.update()
            ck(f.get("cursor") == c, f"{w.path}: update {f!r}, want cursor {c}")
        except h.TestFailure as e:
            ck(False, f"an allowed watcher: {e}")

    print("--- refused with 1008")
    refused = ["https://evil.example", "http://shop.example", "https://shop.example:8443",
               "https://shop.example.evil.example", "https://shop.example/", "null",
               "https://b.example, https://evil.example"]
    for origin in refused:
        await ws_refused(env.port, ck, f"Origin {origin!r}", f"/v1/track/{oid}", 1008,
                         origin=origin)
    after = await asyncio.to_thread(scrape_refused, env.port)
    got = after.get("origin", 0) - before.get("origin", 0)
    ck(got == len(refused), f'trackgate_refused_total{{reason="origin"}} moved by {got}, '
                            f'want {len(refused)}')
    for w in watchers:
        ck(not w.closed.is_set(), f"{w.path}: an allowed watcher was closed: {w.close_code}")
    # trackgate-watch is a native client: it sends no Origin and is served (issue 16; it
    # sent its host as Origin and was refused 1008).
    if env.args.watch:
        import subprocess
        r = await asyncio.to_thread(
            subprocess.run, [env.args.watch, "--server", f"127.0.0.1:{env.port}", "--count", "1",
                             "--timeout", "10", oid], capture_output=True, text=True, timeout=20)
        ck(r.returncode == 0 and '"type":"snapshot"' in r.stdout,
           f"trackgate-watch with allowed-origins set: exit {r.returncode}, stdout "
           f"{r.stdout[:200]!r}, stderr {r.stderr[-300:]!r}")
    # Each refusal is logged with its code and reason (issue 16), at info.
    log = h.tail(env.daemon.log, 400)
    n_logged = log.count('ws_refused code=1008 error=origin_not_allowed reason="this page may '
                         'not open the stream" client=127.0.0.1')
    ck(n_logged >= len(refused), f"{n_logged} ws_refused lines for {len(refused)} refusals:\n"
       f"{h.tail(env.daemon.log, 20)}")

    print("--- without --allowed-origins: any Origin (second trackgated)")
    any_dir = os.path.join(env.log_dir, "any-origin")
    os.makedirs(any_dir, exist_ok=True)
    second = h.Daemon(env.args.trackgated, env.redis.sock, env.key_file, any_dir)
    second.start()  # from the main thread: PR_SET_PDEATHSIG follows the thread that spawned
    try:
        for origin in ("https://evil.example", None, "null", "https://shop.example"):
            what = f"no setting, Origin {origin!r}" if origin else "no setting, no Origin header"
            try:
                w = await open_watcher(env, second.port, oid, origin, what)
                await w.close()
            except (h.TestFailure, OSError, h.websockets.exceptions.WebSocketException) as e:
                ck(False, f"{what}: want the snapshot: {e}")
    finally:
        try:
            await asyncio.to_thread(second.terminate)
        except h.TestFailure as e:
            ck(False, f"second trackgated: {e}\n{h.tail(second.log, 30)}")

    env.assert_alive()
    ck.done()


if __name__ == "__main__":
    h.main(test, daemon_args=["--allowed-origins", ", ".join(ALLOWED)])
