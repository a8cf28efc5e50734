#!/usr/bin/python3
"""e2e.page_display: the tracking page tells a stale position, a late ETA, a
failing tile server and a full per-address limit apart from "Live".

A private redis-server and trackgated (tests/integration/harness.py) with
map tiles configured on a tile server that answers every tile with 404, and
max-per-client 2; Debian's chromium over the DevTools protocol (cdp.py).

1. Time alone (no frame): an order whose newest fix is 112 s old and whose
   ETA is 8 s away shows Live and "Arriving in under a minute"; without any
   further frame the page then says "Position from 2 min ago" (not Live) and
   that the delivery is running late.  A fresh fix makes it Live again; the
   ETA, still past, still says running late.
2. The tiles fail (404): the map shows the plain grid (its line colour in the
   canvas's pixels), not a blank background.
3. An order whose newest fix is 15 min old and whose ETA passed 5 min ago
   opens as "Position from 15 min ago" and running late.
4. Two pages hold the address's two websockets: a third page is refused with
   1008 "too many connections from your address", says it will try again,
   and waits at least 5 s before it does; once a slot is free it goes live.
5. delivered: "Delivered.", no ETA.

No page may throw or log an error, except the browser's own 404s for the
tiles.  A screenshot of the stale page (stale.png) goes to the run directory.
"""
import asyncio
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pagekit import (h, cdp, PICKUP, DROPOFF, CONN, ETA, STATUS, TileServer, page_errors, run,  # noqa: E402
                     update)

A = (52.52190, 13.41320)
B = (52.52300, 13.40945)
C = (52.51950, 13.40100)

LIVE = f"({CONN}) === 'live|Live'"

# Pixels of the map's grid lines (#d6dce2, or half-covered: between it and the
# background #e9edf1).  None on a map that drew only its background.
GRID_PIXELS = """(() => {
  const c = document.getElementById('map');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (Math.abs(d[i] - 214) <= 10 && Math.abs(d[i + 1] - 220) <= 10 && Math.abs(d[i + 2] - 226) <= 10) n++;
  }
  return n;
})()"""


async def soft_wait(ck, tab, expr, timeout, what):
    """tab.wait_for, failing a check (and returning None) on a timeout, so that
    the later checks still run."""
    try:
        return await tab.wait_for(expr, timeout=timeout, what=what)
    except cdp.CDPError as e:
        ck(False, str(e))
        return None


async def test(env, browser, tiles):
    ck = h.Checks()
    pid = os.getpid()
    places = {"pickup": PICKUP, "dropoff": DROPOFF}

    # --- 1. time makes the position stale and the ETA late -----------------------------
    oid = f"e2e-stale-{pid}"
    now = h.now_ms()
    await env.aapply(update(oid, now - 112_000, A, "en_route_to_dropoff", places=places,
                            courier={"id": "c1", "name": "Mia Schulz", "vehicle": "bicycle"},
                            eta={"dropoff": now + 8_000}))
    tab = await browser.new_tab(360, 740, mobile=True, scale=1)
    await tab.goto(f"http://127.0.0.1:{env.port}/t/{oid}")
    await tab.wait_for(LIVE, what="Live while the fix is under 2 min old")
    eta = await tab.eval(ETA)
    ck(eta.startswith("Arriving in under a minute"), f"the ETA before it passes: {eta!r}")
    frames = len(tab.sockets[0].frames)
    conn = await soft_wait(ck, tab, f"({CONN}).startsWith('stale|') && ({CONN})", 20,
                           "the page to call the position stale, with no frame")
    ck(conn in (None, "stale|Position from 2 min ago"), f"the stale sentence: {conn!r}")
    eta = await soft_wait(ck, tab, f"({ETA}).startsWith('Running late') && ({ETA})", 10,
                          "the ETA to say running late, with no frame")
    ck(eta is None or "expected at" in eta, f"the late sentence says when it was expected: {eta!r}")
    ck(await tab.eval("document.getElementById('eta').dataset.late") == "true", "the ETA is marked late")
    ck(len(tab.sockets[0].frames) == frames and len(tab.sockets) == 1,
       f"it changed with time alone: {tab.sockets[0].json_frames()[frames:]!r}")

    await env.aapply(update(oid, h.now_ms(), B))
    await tab.wait_for(LIVE, what="Live again after a fresh fix")
    eta = await tab.eval(ETA)
    ck(eta.startswith("Running late"), f"the ETA, still past, is still late after a fix: {eta!r}")

    # --- 2. the tiles fail: the grid is drawn ------------------------------------------------
    await h.async_wait_until(lambda: tiles.requests, 10, what="tile requests")
    n = await soft_wait(ck, tab, f"{GRID_PIXELS} > 2000 && {GRID_PIXELS}", 10,
                        "the grid under failed tiles")
    print(f"grid pixels with every tile failing: {n}")

    # --- 3. opened 15 min after the last fix, 5 min after the ETA ------------------------------
    oid2 = f"e2e-old-{pid}"
    now = h.now_ms()
    await env.aapply(update(oid2, now - 15 * 60_000, C, "en_route_to_dropoff", places=places,
                            eta={"dropoff": now - 5 * 60_000}))
    old = await browser.new_tab(360, 740, mobile=True, scale=1)
    await old.goto(f"http://127.0.0.1:{env.port}/t/{oid2}")
    await old.wait_for(f"{STATUS} === 'en_route_to_dropoff'", what="the old order's status")
    conn = await old.wait_for(f"!({CONN}).startsWith('connecting|') && ({CONN})", what="the connection pill")
    ck(conn == "stale|Position from 15 min ago", f"a 15 min old fix: {conn!r}")
    eta = await old.eval(ETA)
    ck(eta.startswith("Running late"), f"an ETA 5 min past: {eta!r}")
    await asyncio.sleep(0.3)  # let the map settle for the picture; nothing is asserted on it
    await old.screenshot(os.path.join(env.log_dir, "stale.png"))

    # --- 4. the address's websockets are all taken: 1008, retried ---------------------------------
    third = await browser.new_tab(360, 740, mobile=True, scale=1)
    await third.goto(f"http://127.0.0.1:{env.port}/t/{oid}")
    conn = await third.wait_for(f"!({CONN}).startsWith('connecting|') && ({CONN})",
                                what="the third page to be refused")
    ck(conn.startswith("reconnecting|") and "too many connections" in conn and "again" in conn,
       f"a 1008 for too many connections from the address is retried: {conn!r}")
    await old.close()  # frees a slot
    if await soft_wait(ck, third, LIVE, 25, "the third page to get in once a slot is free"):
        gap = third.sockets[1].created - third.sockets[0].created
        ck(gap >= 4.9, f"the retry after 1008 waited {gap:.2f} s (at least 5 s)")
        print(f"1008 retry after {gap:.2f} s")

    # --- 5. delivered ------------------------------------------------------------------------------
    await env.aapply(update(oid, h.now_ms(), status="delivered"))
    await tab.wait_for(f"({CONN}) === 'delivered|Delivered.'", what="delivered")
    ck(await tab.eval(ETA) == "", "no ETA after delivery")

    # --- errors ---------------------------------------------------------------------------------
    def allowed(kind, text, url):
        return kind.startswith("log.") and f":{tiles.port}/" in (url + text)
    for name, t in (("stale", tab), ("old", old), ("third", third)):
        bad = page_errors(t, allowed)
        ck(not bad, f"{name}: errors on the page: {bad}")
    ck.done()


def main():
    tiles = TileServer(fail=True)
    try:
        run(lambda env, browser: test(env, browser, tiles), "test_page_display",
            daemon_args=["--page-tile-url", tiles.template, "--page-tile-attribution", "Test tiles",
                         "--max-per-client", "2"])
    finally:
        tiles.close()


if __name__ == "__main__":
    main()
