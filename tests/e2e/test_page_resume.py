#!/usr/bin/python3
"""e2e.page_resume: the tracking page resumes with a long token, and tells links apart.

A private redis-server and trackgated with tokens configured
(tests/integration/harness.py), Debian's chromium over the DevTools protocol
(cdp.py), which also shows the test every websocket the page opens and the
frames it receives.  The page's link carries a long token (a JWT with a
large extra claim, over 300 characters), as real links do.

1. The page goes live on the snapshot.
2. trackgated stops (SIGTERM, 1001); an update goes in through another
   trackgated on the same Redis while it is down; trackgated starts again on
   the same address.  The page reconnects with ?token=...&since=CURSOR (token
   first, as URLSearchParams builds it) and gets the missed update, then a
   resumed frame (replayed 1), no snapshot; it shows the update and is live.
3. A clean reconnect (nothing missed): the new websocket gets only a resumed
   frame (replayed 0) and the page shows Live within a second of it.
4. delivered, in an update that also carries a position: the page's merged
   state holds no location any more and no courier is drawn.
5. A link without its token says it is incomplete (not expired); a link with
   two tokens says it is not valid and opens no websocket, spelt token twice
   or token and %74oken (the same name once decoded).  trackgated answers both
   with its 400 sentence; the page would refuse them too (view.js).

No page may throw or log an error, except the browser's own network errors
for the websocket while trackgated is down.
"""
import asyncio
import os
import re
import sys
import time
from urllib.parse import urlsplit, parse_qsl

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pagekit import (h, cdp, PICKUP, DROPOFF, COURIER, CONN, STATUS, TokenKey, courier_of, near,  # noqa: E402
                     page_errors, run, token, update, wait_frame)

A = (52.52190, 13.41320)
C = (52.51950, 13.40100)

LIVE = f"({CONN}).startsWith('live|')"
RECONNECTING = f"({CONN}).startsWith('reconnecting|')"


def query(url):
    """The query of a URL as a list of (name, value), in order."""
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


async def reconnected_socket(tab, after):
    """The websocket the page opened after index after that received a frame."""
    deadline = time.monotonic() + 40
    while True:
        s = next((s for s in tab.sockets[after:] if s.frames), None)
        if s:
            return s
        if time.monotonic() >= deadline:
            raise h.TestFailure(f"no websocket opened after the restart received a frame "
                                f"({len(tab.sockets) - after} opened)")
        await asyncio.sleep(0.02)


async def soft_frame(ck, sock, what):
    """The first resumed frame on sock as (time, frame), or a failed check and (None, None)."""
    try:
        return await wait_frame(sock, lambda f: f.get("type") == "resumed", timeout=10, what=what)
    except h.TestFailure as e:
        ck(False, str(e))
        return None, None


def post_elsewhere(env, key, u):
    """Applies u through a second trackgated on the same Redis (the page's one is down)."""
    log_dir = os.path.join(env.log_dir, "other-node")
    os.makedirs(log_dir, exist_ok=True)
    other = h.Daemon(env.args.trackgated, env.redis.sock, env.key_file, log_dir, key.args())
    other.start()
    try:
        r = h.http_request(other.port, "POST", "/v1/updates", u,
                           {"Content-Type": "application/json", "Authorization": f"Bearer {h.INGEST_KEY}"})
        h.check(r.status == 202 and r.json["results"][0].get("result") == "applied",
                f"the other node applied the update: {r!r}")
        return r.json["results"][0]["cursor"]
    finally:
        other.terminate()


async def test(env, browser, key):
    ck = h.Checks()
    oid = f"e2e-resume-{os.getpid()}"
    now = h.now_ms()
    exp = int(time.time()) + 3600
    tok = token(oid, exp, scope="track:" + "x" * 400, merchant="e2e-shop")
    h.check(len(tok) > 300, f"the token is long: {len(tok)} characters")
    page = f"http://127.0.0.1:{env.port}/t/{oid}?token={tok}"
    print(f"token: {len(tok)} characters")

    first = await env.aapply(update(oid, now - 2000, A, "courier_assigned",
                                    places={"pickup": PICKUP, "dropoff": DROPOFF},
                                    courier={"id": "c1", "name": "Mia Schulz", "vehicle": "bicycle"},
                                    eta={"dropoff": now + 600_000}))

    # --- 1. live on the snapshot ------------------------------------------------------
    tab = await browser.new_tab(360, 740, mobile=True, scale=1)
    await tab.goto(page)
    await tab.wait_for(LIVE, what="the page to go live")
    ck(near(courier_of(await tab.wait_for(COURIER, what="the courier marker")), A), "the marker at A")
    ck(tab.sockets and tab.sockets[0].json_frames()[:1] and
       tab.sockets[0].json_frames()[0].get("type") == "snapshot",
       f"the first websocket starts with a snapshot: {tab.sockets and tab.sockets[0].json_frames()}")
    ck(query(tab.sockets[0].url) == [("token", tok)], f"the first URL carries the token only: "
       f"{tab.sockets[0].url[:120]}")

    # --- 2. a missed update while trackgated is down ---------------------------------------
    port = env.port
    await asyncio.to_thread(env.daemon.terminate)
    await tab.wait_for(RECONNECTING, what="the reconnecting state")
    before = len(tab.sockets)
    missed = update(oid, h.now_ms(), C, "en_route_to_dropoff")
    # From this thread: the harness ties a child's life to the thread that spawns it.
    cursor = post_elsewhere(env, key, missed)
    env.daemon.start(1, True, port)
    sock = await reconnected_socket(tab, before)
    ck(query(sock.url) == [("token", tok), ("since", first)],
       f"the reconnect asks ?token=...&since={first} (token first): {query(sock.url)[1:]} "
       f"after a token of {len(query(sock.url)[0][1]) if query(sock.url) else 0}")
    _, resumed = await soft_frame(ck, sock, "the resumed frame after the missed update")
    frames = sock.json_frames()
    ck([f.get("type") for f in frames[:2]] == ["update", "resumed"],
       f"the reconnect gets the missed update, then resumed (no snapshot): {frames!r}")
    ck(frames and frames[0].get("update") == missed and frames[0].get("cursor") == cursor,
       f"the missed update is the one posted meanwhile: {frames[0]!r}")
    ck(resumed == {"type": "resumed", "order_id": oid, "cursor": cursor, "replayed": 1},
       f"the resumed frame: {resumed!r}")
    await tab.wait_for(LIVE, what="the page to be live after the resume")
    await tab.wait_for(f"{STATUS} === 'en_route_to_dropoff'", what="the missed status")
    at_c = (f"(({COURIER}) && Math.abs(({COURIER}).split(',')[0] - {C[0]}) < 2e-6 && "
            f"Math.abs(({COURIER}).split(',')[1] - {C[1]}) < 2e-6) && ({COURIER})")
    await tab.wait_for(at_c, what="the missed position")

    # --- 3. a clean reconnect: only the resumed frame, Live within a second ------------------
    await asyncio.to_thread(env.daemon.terminate)
    await tab.wait_for(RECONNECTING, what="the reconnecting state (2)")
    before = len(tab.sockets)
    env.daemon.start(1, True, port)
    sock = await reconnected_socket(tab, before)
    ck(query(sock.url) == [("token", tok), ("since", cursor)],
       f"the second reconnect resumes from the missed update's cursor: {query(sock.url)[1:]}")
    t_resumed, resumed = await soft_frame(ck, sock, "the resumed frame of a clean resume")
    ck(resumed == {"type": "resumed", "order_id": oid, "cursor": cursor, "replayed": 0},
       f"the clean resume's frame: {resumed!r}")
    if t_resumed is not None:
        left = 1.0 - (time.monotonic() - t_resumed)
        try:
            await tab.wait_for(LIVE, timeout=max(left, 0.05), interval=0.02,
                               what="Live within a second of the resumed frame")
            took = time.monotonic() - t_resumed
            ck(took <= 1.0, f"Live {took:.2f} s after the resumed frame")
            print(f"clean resume: Live {took:.3f} s after the resumed frame")
        except cdp.CDPError as e:
            ck(False, f"{e} (page: {await tab.eval(CONN)!r})")
    await tab.wait_for(LIVE, what="the page to be live after the clean reconnect")
    frames = sock.json_frames()
    ck([f.get("type") for f in frames] == ["resumed"], f"a clean resume sends only resumed: {frames!r}")

    # --- 4. delivered: no location in the page's state -------------------------------------
    await env.aapply(update(oid, h.now_ms(), (DROPOFF["lat"], DROPOFF["lng"]), "delivered"))
    await tab.wait_for(f"{STATUS} === 'delivered'", what="status delivered")
    await tab.wait_for(f"!({COURIER})", what="no courier drawn after delivery")
    has_loc = await tab.eval("'location' in (globalThis.trackgate.client.order || {})")
    ck(not has_loc, f"the merged state holds no location after delivered: "
       f"{await tab.eval('JSON.stringify(globalThis.trackgate.client.order)')}")
    ck((await tab.eval(CONN)).startswith("delivered|"), "the page says delivered")

    # --- 5. a link without its token; a link with two -----------------------------------------
    bare = await browser.new_tab(360, 740, mobile=True, scale=1)
    await bare.goto(f"http://127.0.0.1:{env.port}/t/{oid}")
    conn = await bare.wait_for(f"!({CONN}).startsWith('connecting|') && ({CONN})",
                               what="the page without a token to be refused")
    ck(conn.startswith("failed|") and "incomplete" in conn and "expired" not in conn,
       f"a link without a token says it is incomplete: {conn!r}")
    ck(await bare.eval("document.body.classList.contains('refused')"), "the refused page shows only the sentence")

    # trackgated refuses a page URL that repeats token (400, one sentence), also
    # when the second name is percent-encoded; either way: not valid, no socket.
    twice = []
    for second in ("token", "%74oken"):
        t = await browser.new_tab(360, 740, mobile=True, scale=1)
        await t.goto(f"{page}&{second}={tok}")
        text = await t.wait_for("document.getElementById('conn') ? "
                                f"(!({CONN}).startsWith('connecting|') && ({CONN})) : document.body.innerText",
                                what=f"the page with token and {second} to be refused")
        ck(re.search(r"not (a )?valid", text) and not text.startswith("live|"),
           f"a link with token and {second} is not valid: {text!r}")
        ck(not t.sockets, f"a link with token and {second} opens no websocket: {[s.url[:80] for s in t.sockets]}")
        print(f"token and {second}: {text!r}")
        twice.append(t)

    # --- errors ---------------------------------------------------------------------------------
    def allowed(kind, text, url):
        # While trackgated was down the browser itself logs each failed websocket attempt.
        if kind.startswith("log.") and "/v1/track/" in (url + text):
            return True
        # trackgated's 400 for a page URL that repeats token, and the favicon that
        # its one-sentence HTML does not name.
        return kind == "log.network" and (("status of 400" in text and "/t/" in url) or
                                          url.endswith("/favicon.ico"))
    for name, t in (("page", tab), ("no token", bare), ("token twice", twice[0]),
                    ("token and %74oken", twice[1])):
        bad = page_errors(t, allowed)
        ck(not bad, f"{name}: errors on the page: {bad}")
    ck.done()


def main():
    key = TokenKey()
    try:
        run(lambda env, browser: test(env, browser, key), "test_page_resume", daemon_args=key.args())
    finally:
        key.close()


if __name__ == "__main__":
    main()
