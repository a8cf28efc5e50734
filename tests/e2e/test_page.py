#!/usr/bin/python3
"""e2e.page: the tracking page in headless Chromium against the real trackgated.

A private redis-server and trackgated (tests/integration/harness.py), Debian's
chromium driven over the DevTools protocol (cdp.py).  For one simulated order:

1. Phone (360x740): the page goes live, shows the status and the courier;
   a new fix makes the marker glide (positions between the two fixes are
   drawn) and stop on the fix; a status change changes the status sentence
   and the timeline.  Screenshot phone.png.
2. A link whose token expired shows the expired sentence and stays put.
3. trackgated stops (SIGTERM, close 1001): the page says it is
   reconnecting; an update is applied to Redis by the script directly while
   the gateway is down; trackgated starts again on the same address (now with
   map tiles configured) and the page reconnects, resumes from its cursor and
   shows the update it missed.
4. delivered: the courier is no longer drawn and the page says delivered.
5. Desktop (1280x800), tiles on: tiles are requested from the tile server
   without a Referer (the token stays private).  Screenshot desktop.png.

No page may throw or log an error, except the browser's own network errors
for the websocket while trackgated is down.  Screenshots go to
--artifacts (default: the run directory).
"""
import argparse
import asyncio
import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pagekit import (h, cdp, PICKUP, DROPOFF, COURIER, CONN, STATUS, TileServer, TokenKey,  # noqa: E402
                     courier_of, near, token, update)

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto", "apply_update.lua")

A = (52.52190, 13.41320)
B = (52.52300, 13.40945)
C = (52.51950, 13.40100)

MERCHANT_PAGE = """<!doctype html><meta charset="utf-8"><title>Merchant</title>
<p id="state">-</p><p id="status">-</p>
<script type="module">
const q = new URLSearchParams(location.search);
const { TrackingClient } = await import(q.get("gateway") + "/t/assets/track.js");
const c = new TrackingClient({ orderId: q.get("order"), token: q.get("token") });
c.addEventListener("connection", (e) => { document.getElementById("state").textContent = e.detail.state; });
c.addEventListener("order", (e) => {
  document.getElementById("status").textContent = (e.detail.order && e.detail.order.status) || "none";
});
c.start();
</script>
"""


async def run(env, args, browser, tiles):
    ck = h.Checks()
    oid = f"e2e-{os.getpid()}"
    now = h.now_ms()
    exp = int(time.time()) + 3600
    page = f"http://127.0.0.1:{env.port}/t/{oid}?token={token(oid, exp)}"

    # The order exists before the page opens: a snapshot with places, courier, eta.
    await env.aapply(update(oid, now - 2000, A, "courier_assigned",
                            places={"pickup": PICKUP, "dropoff": DROPOFF},
                            courier={"id": "c1", "name": "Mia Schulz", "vehicle": "bicycle"},
                            eta={"pickup": now + 120_000, "dropoff": now + 600_000}))

    # --- 1. phone: live, the marker glides to a new fix, the status changes ---------
    phone = await browser.new_tab(360, 740, mobile=True, scale=2)
    await phone.goto(page)
    await phone.wait_for(f"({CONN}).startsWith('live|')", what="the page to go live")
    got = courier_of(await phone.wait_for(COURIER, what="the courier marker"))
    ck(near(got, A), f"the marker is drawn at the first fix {A}: {got}")
    ck(await phone.eval(STATUS) == "courier_assigned", "status after the snapshot")
    eta_text = await phone.eval("document.getElementById('eta').textContent")
    ck("Arriving in about" in eta_text, f"the ETA countdown: {eta_text!r}")
    label = await phone.eval("document.getElementById('map').getAttribute('aria-label')")
    ck("of the dropoff" in label, f"the map's text alternative names the distance: {label!r}")

    await env.aapply(update(oid, h.now_ms(), B, "en_route_to_pickup"))
    seen = set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        p = courier_of(await phone.eval(COURIER))
        if p:
            seen.add(p)
        if near(p, B):
            break
        await asyncio.sleep(0.02)
    ck(near(p, B), f"the marker reaches the new fix {B}: last {p}")
    between = [q for q in seen if not near(q, A) and not near(q, B)
               and min(A[0], B[0]) <= q[0] <= max(A[0], B[0])
               and min(A[1], B[1]) <= q[1] <= max(A[1], B[1])]
    ck(len(between) >= 2, f"the marker moves smoothly: positions drawn between the fixes: {len(between)}")
    await phone.wait_for(f"{STATUS} === 'en_route_to_pickup'", what="status en_route_to_pickup")

    await env.aapply(update(oid, h.now_ms(), status="picked_up"))
    await phone.wait_for(f"{STATUS} === 'picked_up'", what="status picked_up")
    text = await phone.eval("document.getElementById('status-text').textContent")
    ck(text == "Your order has been picked up.", f"the status sentence: {text!r}")
    done = await phone.eval("[...document.querySelectorAll('#timeline li.done')].map(l => l.dataset.step).join()")
    ck(done == "assigned,picked_up", f"timeline steps done: {done!r}")
    await phone.wait_for("document.getElementById('updated').textContent.startsWith('Updated')")
    await asyncio.sleep(0.3)
    await phone.screenshot(os.path.join(args.artifacts, "phone.png"))

    # --- 2. an expired link ------------------------------------------------------------
    expired = await browser.new_tab(360, 740, mobile=True, scale=1)
    await expired.goto(f"http://127.0.0.1:{env.port}/t/{oid}?token={token(oid, int(time.time()) - 600)}")
    conn = await expired.wait_for(f"({CONN}).startsWith('expired|') && ({CONN})", what="the expired state")
    ck("has expired" in conn, f"the expired sentence: {conn!r}")
    await expired.screenshot(os.path.join(args.artifacts, "expired.png"))
    ck(not await expired.eval(COURIER), "no courier is drawn for an expired link")
    await expired.close()

    # --- 3. trackgated restarts; the page reconnects and catches up ----------------------
    port = env.port
    down_at = time.time()
    await asyncio.to_thread(env.daemon.terminate)
    conn = await phone.wait_for(f"({CONN}).startsWith('reconnecting|') && ({CONN})",
                                what="the reconnecting state")
    ck("restarting" in conn or "lost" in conn, f"the reconnecting sentence: {conn!r}")
    missed = update(oid, h.now_ms(), C, "en_route_to_dropoff")
    with open(SCRIPT) as f:
        script = f.read()
    base = f"trk:{{{oid}}}"
    res = await asyncio.to_thread(env.redis.cli, "EVAL", script, 3, f"{base}:state", f"{base}:log",
                                  f"{base}:seen", json.dumps(missed), 86400, 3600, 1000)
    ck(res.startswith("applied"), f"the script applied the update while the gateway was down: {res!r}")
    env.daemon.extra_args += ["--page-tile-url", f"http://127.0.0.1:{tiles.port}/{{z}}/{{x}}/{{y}}.png",
                              "--page-tile-attribution", "Test tiles"]
    await asyncio.sleep(1.0)  # the page retries against a closed port meanwhile
    # From this thread: the harness ties the child's life to the thread that spawns it
    # (PR_SET_PDEATHSIG), and a to_thread worker ends with the loop.
    env.daemon.start(1, True, port)
    up_at = time.time()
    await phone.wait_for(f"({CONN}).startsWith('live|')", timeout=40, what="the page to reconnect")
    await phone.wait_for(f"{STATUS} === 'en_route_to_dropoff'", what="the missed status")
    # The marker glides there from where it was: wait for the glide to end.
    at_c = (f"(({COURIER}) && Math.abs(({COURIER}).split(',')[0] - {C[0]}) < 2e-6 && "
            f"Math.abs(({COURIER}).split(',')[1] - {C[1]}) < 2e-6) && ({COURIER})")
    p = courier_of(await phone.wait_for(at_c, what="the missed position"))
    ck(near(p, C), f"the missed position after the restart: {p}")

    # --- 4. delivered ----------------------------------------------------------------------
    await env.aapply(update(oid, h.now_ms(), DROPOFF and (DROPOFF["lat"], DROPOFF["lng"]), "delivered"))
    await phone.wait_for(f"{STATUS} === 'delivered'", what="status delivered")
    await phone.wait_for(f"!({COURIER})", what="the courier to disappear after delivery")
    conn = await phone.eval(CONN)
    ck(conn.startswith("delivered|"), f"the page says delivered: {conn!r}")
    ck(await phone.eval("document.getElementById('eta').hidden"), "no ETA after delivery")
    await asyncio.sleep(0.3)
    await phone.screenshot(os.path.join(args.artifacts, "phone-delivered.png"))

    # --- 5. desktop, with tiles --------------------------------------------------------------
    # A second order mid-delivery, so the desktop view shows a courier.
    oid2 = f"e2e-desk-{os.getpid()}"
    t = h.now_ms()
    await env.aapply(update(oid2, t - 1000, B, "en_route_to_dropoff",
                            places={"pickup": PICKUP, "dropoff": DROPOFF},
                            courier={"id": "c2", "name": "Jonas Weber", "vehicle": "cargo_bike"},
                            eta={"dropoff": t + 420_000}))
    await env.aapply(update(oid2, t, C))
    desk = await browser.new_tab(1280, 800)
    await desk.goto(f"http://127.0.0.1:{env.port}/t/{oid2}?token={token(oid2, exp)}")
    await desk.wait_for(f"({CONN}).startsWith('live|')", what="the desktop page to go live")
    await h.async_wait_until(lambda: len(tiles.requests) >= 4, 10, what="tile requests")
    ck(all("Referer" not in hd and "referer" not in hd for _, hd in tiles.requests),
       f"tiles are requested without a Referer: {[hd for _, hd in tiles.requests][:2]}")
    attribution = await desk.eval("document.getElementById('attribution').textContent")
    ck(attribution == "Test tiles", f"the tiles' attribution is shown: {attribution!r}")
    await asyncio.sleep(1.0)  # tiles drawn
    await desk.screenshot(os.path.join(args.artifacts, "desktop.png"))

    # --- 6. a merchant's own page on another origin imports track.js ---------------------
    shop = await browser.new_tab(800, 600)
    await shop.goto(f"http://127.0.0.1:{tiles.port}/merchant.html?gateway=http://127.0.0.1:{env.port}"
                    f"&order={oid2}&token={token(oid2, exp)}")
    await shop.wait_for("document.getElementById('state').textContent === 'live'",
                        what="the embedded client to go live")
    st = await shop.wait_for("document.getElementById('status').textContent !== '-' && "
                             "document.getElementById('status').textContent")
    ck(st == "en_route_to_dropoff", f"the embedded client shows the order's status: {st!r}")

    # --- errors ---------------------------------------------------------------------------------
    for name, tab in (("phone", phone), ("desktop", desk), ("expired", expired), ("merchant", shop)):
        bad = []
        for kind, text, url in tab.errors:
            # While trackgated was down the browser itself logs each failed websocket attempt.
            if kind.startswith("log.") and "/v1/track/" in (url + text) and down_at <= time.time():
                continue
            bad.append((kind, text, url))
        ck(not bad, f"{name}: errors on the page: {bad}")
    print(f"e2e: screenshots in {args.artifacts}; tile requests {len(tiles.requests)}; "
          f"outage {up_at - down_at:.1f} s")
    ck.done()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--artifacts", default=None)
    known, rest = ap.parse_known_args()
    sys.argv = [sys.argv[0]] + rest
    chromium = cdp.find_chromium()
    if not chromium:
        print("FAIL: chromium is missing (apt install chromium; tools/deps installs it)")
        sys.exit(1)
    tiles = TileServer(pages={"/merchant.html": MERCHANT_PAGE})

    async def test(env):
        args = known
        if not args.artifacts:
            args.artifacts = env.log_dir
        os.makedirs(args.artifacts, exist_ok=True)
        browser = cdp.Browser(chromium, os.path.join(env.log_dir, "chromium.log"))
        try:
            await browser.start()
            await run(env, args, browser, tiles)
        finally:
            await browser.close()

    key = TokenKey()
    try:
        h.main(test, name="test_page", daemon_args=key.args())
    finally:
        tiles.close()
        key.close()


if __name__ == "__main__":
    main()
