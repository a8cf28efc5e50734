#!/usr/bin/python3
"""integration.webhook_rappi: Rappi's webhooks against the real trackgated.

One trackgated with a rappi secret (--webhook-secret-file rappi=PATH) and
--webhook-replay-window 120, one watcher on a Rappi order; requests signed
as Rappi signs them (Rappi-Signature: t=UNIX,sign=hex HMAC-SHA256 of
t + "." + the raw body, adapters/README.md), bodies shaped like the examples
of Rappi's "Webhook Events" page:
  - taken_visible_order with courier_data and eta_to_store: 200 applied, and
    the watcher gets the courier and the ETA;
  - ORDER_RT_TRACKING: 200 applied, the watcher gets the position; the same
    body sent again with a new t is a duplicate;
  - the first request replayed an hour later (its own, valid signature),
    one signed 200 s ago (inside the default 300 s, outside the configured
    120 s) and one an hour ahead: 401 with a reason naming the replay window;
  - a wrong signature, no signature: 401 naming Rappi-Signature;
  - PING: 200 with {"status": "OK"}, as Rappi requires;
  - a malformed body: 400 naming the field;
  - a cancellation: 200 applied, the watcher gets cancelled.
"""

import asyncio
import hashlib
import hmac
import json
import os
import random
import time

import harness as h

WINDOW_S = 120


def dumps(obj):
    return json.dumps(obj, separators=(", ", ": ")).encode()


def signed(secret, body, t):
    sign = hmac.new(secret, str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "Rappi-Signature": f"t={t},sign={sign}"}


async def post(env, body, headers):
    return await asyncio.to_thread(env.http, "POST", "/v1/webhooks/rappi", body, headers, 5.0)


async def test(env):
    ck = h.Checks()
    secret = f"rappi-itest-{os.urandom(12).hex()}".encode()
    path = os.path.join(env.log_dir, "rappi.secret")
    with open(path, "wb") as f:
        f.write(secret + b"\n")
    os.chmod(path, 0o600)
    env.daemon.extra_args += ["--webhook-secret-file", f"rappi={path}",
                              "--webhook-replay-window", str(WINDOW_S)]
    env.start()

    order = f"{os.getpid()}{random.randrange(10**6):06d}"
    w = await env.watch(order)
    now = int(time.time())

    # A courier assigned, with the ETA to the store (Rappi's example, our order id).
    taken = dumps({
        "event": "taken_visible_order", "order_id": order, "store_id": "10000682",
        "event_time": "2023-05-04 12:01:22",
        "additional_information": {
            "courier_data": {"id": 729365, "phone": "3118012176",
                             "full_name": "Daletzi Karina Olmedo Plata",
                             "last_name": "Olmedo Plata", "first_name": "Daletzi Karina",
                             "profile_pic": None},
            "eta_to_store": 147, "storekeeper_name": "Daletzi Karina Olmedo Plata"}})
    r = await post(env, taken, signed(secret, taken, now))
    if ck(r.status == 200 and isinstance(r.json, dict)
          and [x.get("result") for x in r.json.get("results", [])] == ["applied"],
          f"taken_visible_order: expected 200 applied, got {r!r}"):
        f = await w.update()
        u = f.get("update", {})
        ck(u.get("status") == "courier_assigned", f"taken_visible_order: status in {f!r}")
        ck(u.get("provider") == "rappi" and u.get("ts") == now * 1000,
           f"taken_visible_order: provider rappi and ts = t in ms: {f!r}")
        courier = u.get("courier") or {}
        ck(courier.get("name") == "Daletzi Karina Olmedo Plata" and courier.get("id") == "729365",
           f"taken_visible_order: courier in {f!r}")
        ck((u.get("eta") or {}).get("pickup") is not None,
           f"taken_visible_order: eta.pickup in {f!r}")

    # The courier's position (ORDER_RT_TRACKING: an integer order id, no "event").
    track = dumps({"lat": 4.6711, "lng": -74.0546, "eta_in_millis": 330000,
                   "eta_type": "DELIVERY", "order_id": int(order), "store_id": 1234,
                   "courier_id": 729365, "created_at": "10/10/2023 12:00:20"})
    r = await post(env, track, signed(secret, track, now + 1))
    if ck(r.status == 200 and isinstance(r.json, dict)
          and [x.get("result") for x in r.json.get("results", [])] == ["applied"],
          f"ORDER_RT_TRACKING: expected 200 applied, got {r!r}"):
        f = await w.update()
        loc = f.get("update", {}).get("location") or {}
        ck(abs(loc.get("lat", 0) - 4.6711) < 1e-6 and abs(loc.get("lng", 0) + 74.0546) < 1e-6,
           f"ORDER_RT_TRACKING: position in {f!r}")
    # Rappi's retry signs again with a new t; the body, hence the event, is the same.
    r = await post(env, track, signed(secret, track, now + 5))
    ck(r.status == 200 and isinstance(r.json, dict)
       and [x.get("result") for x in r.json.get("results", [])] == ["duplicate"],
       f"ORDER_RT_TRACKING sent again: expected 200 duplicate, got {r!r}")

    # Replays: a valid signature over an old (or future) t.
    for what, t, says in [
            ("replayed an hour later", now - 3600, f"replay window of {WINDOW_S} s"),
            ("signed 200 s ago (configured window 120 s)", now - 200,
             f"replay window of {WINDOW_S} s"),
            ("signed an hour ahead", now + 3600, "after the receive time")]:
        r = await post(env, taken, signed(secret, taken, t))
        msg = r.json.get("message", "") if isinstance(r.json, dict) else ""
        ck(r.status == 401 and r.json.get("error") == "unauthorized"
           and msg.startswith("Rappi-Signature:") and says in msg,
           f"{what}: expected 401 naming Rappi-Signature and saying {says!r}, got {r!r}")

    # Forgeries.
    bad = signed(b"not-the-secret", taken, now)
    r = await post(env, taken, bad)
    ck(r.status == 401 and isinstance(r.json, dict)
       and r.json.get("message", "").startswith("Rappi-Signature:"),
       f"wrong key: expected 401 naming Rappi-Signature, got {r!r}")
    r = await post(env, taken, {"Content-Type": "application/json"})
    ck(r.status == 401 and isinstance(r.json, dict)
       and r.json.get("message", "").startswith("Rappi-Signature:"),
       f"no signature: expected 401 naming Rappi-Signature, got {r!r}")

    # PING: Rappi turns the store off unless the answer's status is OK.
    ping = dumps({"store_id": 999})
    r = await post(env, ping, signed(secret, ping, now))
    ck(r.status == 200 and isinstance(r.json, dict) and r.json.get("status") == "OK",
       f"PING: expected 200 with status OK, got {r!r}")

    # A malformed body: 400 naming Rappi's field.
    broken = dumps({"event": "arrive", "order_id": {"id": order}})
    r = await post(env, broken, signed(secret, broken, now))
    ck(r.status == 400 and isinstance(r.json, dict)
       and r.json.get("message", "").startswith("order_id:"),
       f"malformed order_id: expected 400 naming order_id, got {r!r}")

    # A cancellation (ORDER_EVENT_CANCEL).
    cancel = dumps({"event": "canceled_with_charge", "order_id": order, "store_id": "900109448"})
    r = await post(env, cancel, signed(secret, cancel, now + 2))
    if ck(r.status == 200 and isinstance(r.json, dict)
          and [x.get("result") for x in r.json.get("results", [])] == ["applied"],
          f"canceled_with_charge: expected 200 applied, got {r!r}"):
        f = await w.update()
        ck(f.get("update", {}).get("status") == "cancelled", f"cancellation: status in {f!r}")

    ck(all(f.get("order_id") == order for f in w.frames),
       f"a frame of another order: {w.frames!r}")
    ck.done()


if __name__ == "__main__":
    h.main(test, start=False)
