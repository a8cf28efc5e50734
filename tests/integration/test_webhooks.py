#!/usr/bin/python3
"""integration.webhooks: every provider's webhook, signed as the provider signs it.

All six adapters are configured (uber_direct and stuart from a config file's
[webhook.PROVIDER] sections, the others with --webhook-secret-file), one
websocket watches one order per provider, and for each provider this test
posts webhooks built here from the provider's documented format
(adapters/README.md, tests/unit/fixtures/): the signatures with hmac/hashlib,
Wolt's HS256 JWT minted by hand.  For each provider:

  - a status event and a position event: 200 with an applied result, and the
    watcher gets the canonical update frame (mapped status, location, ts,
    provider, courier, ETAs, the merchant's order id) with that cursor;
  - the same webhook again: a duplicate, not delivered twice;
  - an older event: stale, not delivered (not for Stuart's {event, type,
    data} webhooks, which carry no time: their ts is the receive time; a
    Stuart webhooks-v3 event carries its occurred_at and is checked so);
  - a bad signature or credential, and none: 401 naming the header;
  - a malformed body: 400 naming the provider's field;
  - an event with nothing to track: 200 {"ignored":true}, no frame;
  - a last position event, which must be the watcher's next frame: nothing
    refused, stale, duplicate or ignored was delivered in between.

Then: a late watcher's snapshot holds the merged state; unknown provider
and a known one that is not configured (a second trackgated) answer 404;
Onfleet's GET ?check=abc answers "abc"; a wrong Content-Type answers 415 and
a body over --body-limit 413; with Redis stopped a signed webhook answers 503
(and an ignored one still 200); tools/courier --provider NAME drives each
adapter; /healthz is 200 at the end.
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COURIER = os.path.join(TOP, "tools", "courier")
BODY_LIMIT = 16384
PROVIDERS = ("uber_direct", "doordash_drive", "wolt_drive", "onfleet", "stuart", "opendelivery")

ANY = object()      # expected value: anything present
RECEIVED = object()  # expected ts: the receive time (within the POST's window)


# --- helpers -----------------------------------------------------------------------

def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def body_event_id(body):
    """The adapters' event id of a body without one: sha256: + 32 hex digits."""
    return "sha256:" + hashlib.sha256(body).hexdigest()[:32]


def rfc3339(ms, frac=3, offset_min=0):
    """ms since the epoch as RFC 3339 with frac fraction digits (ms, then zeros up to
    frac; with frac 6 the micro digits are 456) and a Z or +HH:MM offset."""
    secs, msec = divmod(ms, 1000)
    tz = timezone(timedelta(minutes=offset_min))
    text = datetime.fromtimestamp(secs, tz).strftime("%Y-%m-%dT%H:%M:%S")
    if frac == 3:
        text += f".{msec:03d}"
    elif frac == 6:
        text += f".{msec:03d}456"  # micro digits that must be truncated, not rounded
    elif frac != 0:
        raise ValueError(frac)
    if offset_min == 0:
        return text + "Z"
    sign = "+" if offset_min > 0 else "-"
    return text + f"{sign}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_hs256(claims, key, header=None, raw_claims=None):
    """A compact JWS: base64url(header).base64url(claims).base64url(HMAC-SHA256)."""
    header = header if header is not None else {"alg": "HS256", "typ": "JWT"}
    payload = raw_claims if raw_claims is not None else dumps(claims)
    signing_input = b64url(dumps(header)) + "." + b64url(payload)
    sig = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


def matches(got, want, window):
    """True when got has exactly want's members, recursively; ANY matches anything
    present and RECEIVED a ts inside window (ms since the epoch)."""
    if want is ANY:
        return True
    if want is RECEIVED:
        return isinstance(got, int) and window[0] <= got <= window[1]
    if isinstance(want, dict):
        return (isinstance(got, dict) and set(got) == set(want)
                and all(matches(got[k], v, window) for k, v in want.items()))
    if isinstance(want, float) or isinstance(got, float):
        return isinstance(got, (int, float)) and not isinstance(got, bool) and got == want
    return type(got) is type(want) and got == want


def show(want):
    """want as JSON-ish text for messages."""
    def conv(v):
        if v is ANY:
            return "<any>"
        if v is RECEIVED:
            return "<receive time, ms since the epoch>"
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v
    return json.dumps(conv(want))


class Event:
    """One webhook request: its body and headers, and what it must produce.

    results: the expected result of each update ("applied", "duplicate",
    "stale"); updates: the expected canonical update of each "applied" one, in
    order (None for a result that delivers nothing)."""

    def __init__(self, what, body, headers, results, updates):
        self.what = what
        self.body = body
        self.headers = headers
        self.results = results
        self.updates = updates

    def again(self, what, results):
        """The same request retried: the same bytes, other expected results."""
        return Event(what, self.body, self.headers, results,
                     [u if r == "applied" else None for u, r in zip(self.updates, results)])


# --- the providers -------------------------------------------------------------------
#
# Each provider builds its webhooks from the fixtures' shapes.  status(order, ts, seq)
# and position(order, ts, lat, lng, seq) return an Event; ts is in ms since the epoch
# (ignored by Stuart, whose events carry no time).

class Provider:
    name = ""
    has_time = True
    auth_header = ""  # the header a 401 must name

    def __init__(self, secret_text):
        self.secret_text = secret_text  # as written to the secret file / config

    def url(self):
        return f"/v1/webhooks/{self.name}"

    def headers(self, body):
        """Content-Type plus the provider's signature or credential for body."""
        h_ = {"Content-Type": "application/json"}
        h_.update(self.sign(body))
        return h_

    def unsigned(self, body):
        return {"Content-Type": "application/json"}

    def event(self, what, obj, results, updates):
        body = obj if isinstance(obj, bytes) else dumps(obj)
        return Event(what, body, self.headers(body), results, updates)


class Uber(Provider):
    """Uber Direct: X-Postmates-Signature / X-Uber-Signature, hex HMAC-SHA256."""
    name = "uber_direct"
    auth_header = "x-postmates-signature"

    def sign(self, body, key=None):
        key = key if key is not None else self.secret_text.encode()
        # Uber's older docs name X-Postmates-Signature, the newer X-Uber-Signature.
        return {"X-Uber-Signature": hmac.new(key, body, hashlib.sha256).hexdigest()}

    def bad_headers(self, body):
        h_ = self.unsigned(body)
        h_["X-Postmates-Signature"] = hmac.new(b"not-the-key", body, hashlib.sha256).hexdigest()
        return h_

    def status(self, order, ts, seq, lat=52.5219, lng=13.4132):
        evt = f"evt_status{seq}x{ts}"
        obj = {
            "status": "pickup_complete", "kind": "event.delivery_status", "created": rfc3339(ts),
            "live_mode": False, "delivery_id": "del_Xl2aTn3pS0yKzP8vQm1cBw", "id": evt,
            "data": {
                "id": "del_Xl2aTn3pS0yKzP8vQm1cBw", "status": "pickup_complete",
                "complete": False, "kind": "delivery", "external_id": order,
                "pickup_eta": rfc3339(ts - 30_000), "dropoff_eta": rfc3339(ts + 900_000),
                "courier": {"name": "Cori R.", "vehicle_type": "car", "phone_number": "+15555555557",
                            "location": {"lat": lat, "lng": lng}, "rating": "5.00"},
                "courier_imminent": False,
                "pickup": {"name": "Store", "address": "Alexanderplatz 1, Berlin",
                           "location": {"lat": 52.5219, "lng": 13.4132}},
                "dropoff": {"name": "Customer", "address": "Torstrasse 1, Berlin",
                            "location": {"lat": 52.5290, "lng": 13.4010}},
            },
        }
        want = {"v": 1, "order_id": order, "provider": self.name, "ts": ts, "event_id": evt,
                "location": {"lat": lat, "lng": lng}, "status": "picked_up",
                "courier": {"name": "Cori R.", "vehicle": "car"},
                "eta": {"pickup": ts - 30_000, "dropoff": ts + 900_000},
                "places": {"pickup": {"lat": 52.5219, "lng": 13.4132},
                           "dropoff": {"lat": 52.5290, "lng": 13.4010}}}
        return self.event(f"delivery_status pickup_complete @{ts}", obj, ["applied"], [want])

    def position(self, order, ts, lat, lng, seq):
        evt = f"evt_pos{seq}x{ts}"
        obj = {"created": rfc3339(ts), "kind": "event.courier_update", "live_mode": True,
               "delivery_id": "del_Xl2aTn3pS0yKzP8vQm1cBw", "id": evt,
               "location": {"lat": lat, "lng": lng},
               "data": {"id": "del_Xl2aTn3pS0yKzP8vQm1cBw", "status": "dropoff",
                        "external_id": order, "courier_imminent": False,
                        "courier": {"name": "Cori R.", "vehicle_type": "car",
                                    "location": {"lat": lat, "lng": lng}}}}
        want = {"v": 1, "order_id": order, "provider": self.name, "ts": ts, "event_id": evt,
                "location": {"lat": lat, "lng": lng}}
        return self.event(f"courier_update @{ts}", obj, ["applied"], [want])

    def ignored(self, order, ts):
        return [("event.refund_request", {
            "id": f"evt_refund{ts}", "kind": "event.refund_request", "created": rfc3339(ts),
            "delivery_id": "del_G_8_eeo4Q5WrYpYkATt6SA",
            "data": {"id": "6817a070-115e-4ca9-8266-c245fe18a2d6", "total_amount": 1100,
                     "currency_code": "usd"}})]

    def malformed(self, order, ts):
        return [
            ("kind", {"id": "evt_nokind", "created": rfc3339(ts), "data": {"external_id": order}}),
            ("data.external_id", {"kind": "event.courier_update", "id": "evt_badid",
                                  "data": {"external_id": "not an id!"},
                                  "location": {"lat": 1, "lng": 2}}),
        ]


class DoorDash(Provider):
    """DoorDash Drive: the Authorization credential; Basic user:password here."""
    name = "doordash_drive"
    auth_header = "authorization"

    def sign(self, body, secret=None):
        secret = secret if secret is not None else self.secret_text
        return {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}

    def bad_headers(self, body):
        user = self.secret_text.split(":", 1)[0]
        h_ = self.unsigned(body)
        h_.update(self.sign(body, f"{user}:wrong-password"))
        return h_

    def status(self, order, ts, seq, lat=37.7840, lng=-122.4075):
        obj = {"created_at": rfc3339(ts, frac=6), "event_name": "DASHER_PICKED_UP",
               "external_delivery_id": order, "currency": "USD", "fee": 975,
               "pickup_time_estimated": rfc3339(ts - 60_000, frac=0),
               "dropoff_time_estimated": rfc3339(ts + 1_200_000, frac=6),
               "dasher_id": 987654, "dasher_name": "Ana S.",
               "dasher_location": {"lat": lat, "lng": lng},
               "tracking_url": "https://doordash.com/drive/portal/track/2f6d1c9e", "seq": seq}
        body = dumps(obj)
        want = {"v": 1, "order_id": order, "provider": self.name, "ts": ts,
                "event_id": body_event_id(body), "location": {"lat": lat, "lng": lng},
                "status": "picked_up", "courier": {"id": "987654", "name": "Ana S."},
                "eta": {"pickup": ts // 1000 * 1000 - 60_000, "dropoff": ts + 1_200_000}}
        return self.event(f"DASHER_PICKED_UP @{ts}", body, ["applied"], [want])

    def position(self, order, ts, lat, lng, seq):
        # The opt-in tracking event, documented in lower case.
        obj = {"created_at": rfc3339(ts, frac=6), "event_name": "dasher_enroute_to_dropoff",
               "external_delivery_id": order, "dasher_id": 987654, "dasher_name": "Ana S.",
               "dasher_location": {"lat": str(lat), "lng": str(lng)},
               "dropoff_time_estimated": rfc3339(ts + 600_000)}
        body = dumps(obj)
        want = {"v": 1, "order_id": order, "provider": self.name, "ts": ts,
                "event_id": body_event_id(body), "location": {"lat": lat, "lng": lng}}
        return self.event(f"dasher_enroute_to_dropoff @{ts}", body, ["applied"], [want])

    def ignored(self, order, ts):
        return [("DELIVERY_CREATED (not tracked)",
                 {"created_at": rfc3339(ts, frac=6), "event_name": "DELIVERY_CREATED",
                  "external_delivery_id": order}),
                ("DASHER_ENROUTE_TO_PICKUP without a position",
                 {"created_at": rfc3339(ts, frac=6), "event_name": "DASHER_ENROUTE_TO_PICKUP",
                  "external_delivery_id": order})]

    def malformed(self, order, ts):
        return [("external_delivery_id", {"created_at": rfc3339(ts, frac=6),
                                          "event_name": "DASHER_PICKED_UP", "dasher_id": 1}),
                ("dasher_location.lat", {"created_at": rfc3339(ts, frac=6),
                                         "event_name": "DASHER_PICKED_UP",
                                         "external_delivery_id": order,
                                         "dasher_location": {"lat": 123.0, "lng": 1.0}})]


class Wolt(Provider):
    """Wolt Drive: {"token": JWT}, HS256 under the client secret (raw bytes)."""
    name = "wolt_drive"
    auth_header = "token"

    def key(self):
        return self.secret_text.encode()

    def token_body(self, claims, key=None, header=None, raw_claims=None):
        return dumps({"token": jwt_hs256(claims, key if key is not None else self.key(),
                                         header, raw_claims)})

    def sign(self, body):
        return {}  # the signature is inside the body

    def event(self, what, claims, results, updates_fn):
        body = self.token_body(claims)
        return Event(what, body, self.headers(body), results, updates_fn(body))

    def status(self, order, ts, seq, lat=60.1699, lng=24.9384):
        claims = {"type": "order.picked_up", "dispatched_at": rfc3339(ts, frac=6),
                  "details": {"id": "6633645f9a5c1b0e7d2f4a10", "venue_id": "5f1b2c3d4e5f60718293a4b5",
                              "wolt_order_reference_id": "6633645f9a5c1b0e7d2f4a0f",
                              "merchant_order_reference_id": order, "order_number": f"A{seq}",
                              "price": {"amount": 690, "currency": "EUR"},
                              "pickup": {"eta": rfc3339(ts - 20_000, frac=0)},
                              "dropoff": {"eta": rfc3339(ts + 1_500_000, offset_min=180),
                                          "completed_at": None},
                              "courier": {"id": 48213, "vehicle_type": "bicycle"},
                              "courier_location": {"lat": lat, "lon": lng}}}
        return self.event(f"order.picked_up @{ts}", claims, ["applied"], lambda body: [{
            "v": 1, "order_id": order, "provider": self.name, "ts": ts,
            "event_id": body_event_id(body), "location": {"lat": lat, "lng": lng},
            "status": "picked_up", "courier": {"id": "48213", "vehicle": "bicycle"},
            "eta": {"pickup": ts // 1000 * 1000 - 20_000, "dropoff": ts + 1_500_000}}])

    def position(self, order, ts, lat, lng, seq):
        claims = {"type": "order.location_updated", "dispatched_at": rfc3339(ts),
                  "details": {"id": "6633645f9a5c1b0e7d2f4a10",
                              "merchant_order_reference_id": order,
                              "courier": {"id": 48213, "vehicle_type": "bicycle"},
                              "dropoff": {"eta": {"min": rfc3339(ts + 60_000),
                                                  "max": rfc3339(ts + 120_000)}},
                              "courier_location": {"lat": lat, "lon": lng}}}
        return self.event(f"order.location_updated @{ts}", claims, ["applied"], lambda body: [{
            "v": 1, "order_id": order, "provider": self.name, "ts": ts,
            "event_id": body_event_id(body), "location": {"lat": lat, "lng": lng}}])

    def bad_headers(self, body):
        return self.unsigned(body)

    def auth_failures(self, order, ts):
        """(what, body) pairs that must be 401: Wolt's signature is in the body."""
        claims = {"type": "order.picked_up", "dispatched_at": rfc3339(ts),
                  "details": {"merchant_order_reference_id": order}}
        good = jwt_hs256(claims, self.key())
        head, payload, sig = good.split(".")
        forged = jwt_hs256(dict(claims, type="order.delivered"), self.key()).split(".")[1]
        return [
            ("token signed with another key", self.token_body(claims, key=b"not-the-secret")),
            ("claims changed after signing", dumps({"token": f"{head}.{forged}.{sig}"})),
            ("alg none", dumps({"token": b64url(dumps({"alg": "none", "typ": "JWT"})) + "."
                                + payload + "."})),
            ("HS512 under the same key", dumps({"token": self._hs512(claims)})),
        ]

    def _hs512(self, claims):
        signing_input = b64url(dumps({"alg": "HS512", "typ": "JWT"})) + "." + b64url(dumps(claims))
        return signing_input + "." + b64url(hmac.new(self.key(), signing_input.encode(),
                                                     hashlib.sha512).digest())

    def missing_signature(self, order, ts):
        return [("no token member", dumps({"type": "order.picked_up",
                                           "details": {"merchant_order_reference_id": order}})),
                ("body not JSON", b'{"token": ')]

    def ignored(self, order, ts):
        return [("order.price_updated (unknown type)",
                 {"type": "order.price_updated", "dispatched_at": rfc3339(ts),
                  "details": {"merchant_order_reference_id": order}}),
                ("order.handshake_delivery without position or ETA",
                 {"type": "order.handshake_delivery", "dispatched_at": rfc3339(ts),
                  "details": {"merchant_order_reference_id": order}})]

    def malformed(self, order, ts):
        return [("details", {"type": "order.picked_up", "dispatched_at": rfc3339(ts),
                             "details": "not an object"}),
                ("details.courier_location.lon", {"type": "order.location_updated",
                                                  "dispatched_at": rfc3339(ts),
                                                  "details": {"merchant_order_reference_id": order,
                                                              "courier_location": {"lat": 60.1}}})]


class Onfleet(Provider):
    """Onfleet: X-Onfleet-Signature, hex HMAC-SHA512 keyed with the hex-decoded secret."""
    name = "onfleet"
    auth_header = "X-Onfleet-Signature"

    def sign(self, body, key=None):
        key = key if key is not None else bytes.fromhex(self.secret_text)
        return {"X-Onfleet-Signature": hmac.new(key, body, hashlib.sha512).hexdigest()}

    def bad_headers(self, body):
        h_ = self.unsigned(body)
        # Keyed with the secret's text instead of its hex-decoded bytes: a classic mistake.
        h_.update(self.sign(body, key=self.secret_text.encode()))
        return h_

    def payload(self, order, ts, trigger_id, trigger, lng, lat, worker=True):
        task = {"id": "11z1BFspwhBYDvIH_FrJfWMm", "timeCreated": ts - 600_000,
                "organization": "yAM*fDkztrT3gUcz9mNDgNOL", "shortId": "8f983639",
                "worker": "1Ds6ulPYWxNPgaIaoLPqlIQE", "pickupTask": False, "state": 2,
                "completionDetails": {"lastLocation": [], "firstLocation": []},
                "metadata": [{"name": "priority", "type": "number", "value": 2,
                              "visibility": ["api"]},
                             {"name": "order_id", "type": "string", "value": order,
                              "visibility": ["api"]}],
                "destination": {"location": [-117.8764687, 33.8078456]}}
        obj = {"actionContext": {"id": "1Ds6ulPYWxNPgaIaoLPqlIQE", "type": "WORKER"},
               "adminId": None, "data": {"task": task},
               "taskId": "11z1BFspwhBYDvIH_FrJfWMm", "time": ts, "triggerId": trigger_id,
               "triggerName": trigger, "workerId": "1Ds6ulPYWxNPgaIaoLPqlIQE"}
        if worker:
            obj["data"]["worker"] = {"id": "1Ds6ulPYWxNPgaIaoLPqlIQE", "name": "A Swartz",
                                     "onDuty": True, "vehicle": {"type": "CAR"},
                                     "location": [lng, lat]}
        return obj

    def status(self, order, ts, seq, lat=33.8001, lng=-117.8812):
        body = dumps(self.payload(order, ts, 0, "taskStarted", lng, lat))
        want = {"v": 1, "order_id": order, "provider": self.name, "ts": ts,
                "event_id": body_event_id(body), "location": {"lat": lat, "lng": lng},
                "status": "en_route_to_dropoff",
                "courier": {"id": "1Ds6ulPYWxNPgaIaoLPqlIQE", "name": "A Swartz", "vehicle": "CAR"},
                # The dropoff task's destination (GeoJSON [lng, lat]) is the dropoff place.
                "places": {"dropoff": {"lat": 33.8078456, "lng": -117.8764687}}}
        return self.event(f"taskStarted @{ts}", body, ["applied"], [want])

    def position(self, order, ts, lat, lng, seq):
        body = dumps(self.payload(order, ts, 7, "taskUpdated", lng, lat))
        want = {"v": 1, "order_id": order, "provider": self.name, "ts": ts,
                "event_id": body_event_id(body), "location": {"lat": lat, "lng": lng}}
        return self.event(f"taskUpdated @{ts}", body, ["applied"], [want])

    def ignored(self, order, ts):
        return [("workerDuty", {"triggerId": 5, "triggerName": "workerDuty", "time": ts,
                                "workerId": "1Ds6ulPYWxNPgaIaoLPqlIQE",
                                "data": {"worker": {"id": "1Ds6ulPYWxNPgaIaoLPqlIQE",
                                                    "onDuty": True}}}),
                ("taskUpdated without a worker position",
                 self.payload(order, ts, 7, "taskUpdated", 0, 0, worker=False))]

    def malformed(self, order, ts):
        no_trigger = self.payload(order, ts, 0, "taskStarted", -117.88, 33.80)
        del no_trigger["triggerName"], no_trigger["triggerId"]
        swapped = self.payload(order, ts, 0, "taskStarted", -117.88, 33.80)
        swapped["data"]["worker"]["location"] = [33.80, -117.88]  # [lat, lng]: out of range
        return [("triggerName", no_trigger), ("data.worker.location", swapped)]


class Stuart(Provider):
    """Stuart: Authorization: Bearer SECRET.  Events carry no time."""
    name = "stuart"
    has_time = False
    auth_header = "authorization"

    def sign(self, body, secret=None):
        return {"Authorization": "Bearer " + (secret if secret is not None else self.secret_text)}

    def bad_headers(self, body):
        h_ = self.unsigned(body)
        h_.update(self.sign(body, "not-the-secret"))
        return h_

    def status(self, order, ts, seq, lat=48.83868, lng=2.3998):
        eta_pickup = (ts // 1000 + 300) * 1000
        eta_dropoff = (ts // 1000 + 1500) * 1000
        obj = {"event": "delivery", "type": "update", "data": {
            "id": 40567, "status": "waiting_at_pickup", "clientReference": order,
            "driver": {"status": "busy", "latitude": lat, "longitude": lng,
                       "name": "Camille Martin", "phone": "+33600000000",
                       "transportType": {"code": "bike"}},
            "transportType": {"code": "bike"}, "packageType": {"code": "small"},
            "etaToOrigin": rfc3339(eta_pickup, offset_min=120),
            "etaToDestination": rfc3339(eta_dropoff, offset_min=120),
            "trackingUrl": f"https://stuart.followmy.delivery/40567/{seq}"}}
        body = dumps(obj)
        want = {"v": 1, "order_id": order, "provider": self.name, "ts": RECEIVED,
                "event_id": body_event_id(body), "location": {"lat": lat, "lng": lng},
                "status": "at_pickup", "courier": {"name": "Camille Martin", "vehicle": "bike"},
                "eta": {"pickup": eta_pickup, "dropoff": eta_dropoff}}
        return self.event("delivery/update waiting_at_pickup", body, ["applied"], [want])

    def position(self, order, ts, lat, lng, seq):
        obj = {"event": "driver", "type": "update", "data": {
            "status": "busy", "latitude": lat, "longitude": lng, "name": "Camille Martin",
            "transportType": {"code": "bike"},
            "job": {"id": 45153, "status": "in_progress",
                    "currentDelivery": {"id": 40567, "status": "delivering",
                                        "clientReference": order}}}}
        body = dumps(obj)
        want = {"v": 1, "order_id": order, "provider": self.name, "ts": RECEIVED,
                "event_id": body_event_id(body), "location": {"lat": lat, "lng": lng}}
        return self.event(f"driver/update {lat},{lng}", body, ["applied"], [want])

    def v3_status(self, order, ts, topic, event_id, want_status, results=("applied",)):
        """A webhooks-v3 event (adapters/README.md): Stuart's own event_id and time."""
        obj = {"version": "v3", "occurred_at": rfc3339(ts, offset_min=120),
               "event_id": event_id, "webhook_id": 1207, "topic": topic,
               "details": {"account": {"id": 310442},
                           "package": {"reference": order,
                                       "tracking_url": "https://stuart.followmy.delivery/1/x"}}}
        body = dumps(obj)
        want = {"v": 1, "order_id": order, "provider": self.name, "ts": ts,
                "event_id": event_id, "status": want_status}
        updates = [want if r == "applied" else None for r in results]
        return self.event(f"v3 {topic} @{ts}", body, list(results), updates)

    def ignored(self, order, ts):
        return [("driver/online", {"event": "driver", "type": "online",
                                   "data": {"status": "online", "latitude": 48.8,
                                            "longitude": 2.3}}),
                ("delivery/create without clientReference",
                 {"event": "delivery", "type": "create",
                  "data": {"id": 40567, "driver": None, "status": "pending",
                           "clientReference": None}}),
                ("v3 topic without a canonical status",
                 {"version": "v3", "topic": "package_updated", "event_id": "v3-ignored",
                  "details": {"package": {"reference": order}}})]

    def malformed(self, order, ts):
        return [("data", {"event": "delivery", "type": "update"}),
                ("data.clientReference", {"event": "delivery", "type": "update",
                                          "data": {"status": "picking",
                                                   "clientReference": "Order_ID#1234_1"}}),
                ("version", {"version": "v4", "topic": "package_delivered", "details": {}}),
                ("details.package.reference",
                 {"version": "v3", "topic": "package_delivered",
                  "details": {"package": {"reference": "Order_ID#1234_1"}}})]


class OpenDelivery(Provider):
    """Open Delivery: X-App-Signature, lower-case hex HMAC-SHA256 under the client secret."""
    name = "opendelivery"
    auth_header = "x-app-signature"

    def sign(self, body, key=None):
        key = key if key is not None else self.secret_text.encode()
        return {"X-App-Signature": hmac.new(key, body, hashlib.sha256).hexdigest(),
                "X-App-Id": "itest-app", "X-App-MerchantId": "itest-merchant"}

    def bad_headers(self, body):
        h_ = self.unsigned(body)
        h_.update(self.sign(body, key=b"not-the-client-secret"))
        return h_

    def payload(self, order, ts, type_, lat=None, lng=None, eta=True):
        obj = {"deliveryId": "48ae4d68-6626-11ed-9022-0242ac120002", "orderId": order,
               "orderDisplayId": "96b41025",
               "merchant": {"id": "22815773000169-dbc7e35a", "name": "Pizza Plaza"},
               "event": {"type": type_, "datetime": rfc3339(ts)},
               "customerName": "Maria Souza",
               "vehicle": {"type": "MOTORBIKE_BAG", "container": "THERMIC"},
               "deliveryPerson": {"id": "dp-7781", "name": "João Silva",
                                  "phone": "+5511999990000"}}
        if eta:
            obj["eta"] = {"updateMethod": "ONLINE", "pickupEtaDatetime": "2024-05-01T11:48:30Z",
                          "deliveryEtaDatetime": "2024-05-01T12:20:45Z"}
        if lat is not None:
            obj["geoLocalization"] = {"latitude": lat, "longitude": lng,
                                      "lastAddress": {"city": "São Paulo"}}
        return obj

    ETA = {"pickup": 1714564110000, "dropoff": 1714566045000}
    COURIER = {"id": "dp-7781", "name": "João Silva", "vehicle": "motorbike"}

    def status(self, order, ts, seq, lat=-23.54809, lng=-46.63638):
        body = dumps(self.payload(order, ts, "ORDER_PICKED", lat, lng))
        want = {"v": 1, "order_id": order, "provider": self.name, "ts": ts,
                "event_id": body_event_id(body), "location": {"lat": lat, "lng": lng},
                "status": "picked_up", "courier": self.COURIER, "eta": self.ETA}
        return self.event(f"ORDER_PICKED @{ts}", body, ["applied"], [want])

    def position(self, order, ts, lat, lng, seq):
        # A moving event: the status part (its event id a hash of order, delivery, type,
        # ETAs and courier: the same for every repeat that only moved), then the position.
        body = dumps(self.payload(order, ts, "DELIVERY_ONGOING", lat, lng))
        status_part = {"v": 1, "order_id": order, "provider": self.name, "ts": ts,
                       "event_id": ANY, "status": "en_route_to_dropoff",
                       "courier": self.COURIER, "eta": self.ETA}
        position_part = {"v": 1, "order_id": order, "provider": self.name, "ts": ts,
                         "event_id": body_event_id(body), "location": {"lat": lat, "lng": lng}}
        if seq == 0:
            return self.event(f"DELIVERY_ONGOING (first) @{ts}", body, ["applied", "applied"],
                              [status_part, position_part])
        # A repeat that only moved: the status part is a duplicate.
        return self.event(f"DELIVERY_ONGOING (repeat) @{ts}", body, ["duplicate", "applied"],
                          [None, position_part])

    def stale_position(self, order, ts, lat, lng, seq):
        e = self.position(order, ts, lat, lng, seq)
        e.results = ["duplicate", "stale"]
        e.updates = [None, None]
        return e

    def ignored(self, order, ts):
        return [("DELIVERY_FINISHED", self.payload(order, ts, "DELIVERY_FINISHED")),
                ("REJECTED", self.payload(order, ts, "REJECTED")),
                ("a type added later", self.payload(order, ts, "DRONE_LAUNCHED"))]

    def malformed(self, order, ts):
        no_order = self.payload(order, ts, "ORDER_PICKED")
        del no_order["orderId"]
        bad_time = self.payload(order, ts, "ORDER_PICKED")
        bad_time["event"]["datetime"] = "yesterday"
        return [("orderId", no_order), ("event.datetime", bad_time)]


def make_providers():
    rnd = os.urandom(16).hex()
    return {
        "uber_direct": Uber(f"c5c26d5a-{rnd[:8]}-{rnd[8:12]}-itest"),
        "doordash_drive": DoorDash(f"itest-dd:{rnd}"),
        "wolt_drive": Wolt(f"wolt-client-secret-{rnd}"),
        "onfleet": Onfleet(os.urandom(32).hex()),
        "stuart": Stuart(f"stuart-{rnd}"),
        "opendelivery": OpenDelivery(f"od-client-secret-{rnd}"),
    }


# --- the test --------------------------------------------------------------------------

async def post(env, path, body, headers, timeout=5.0):
    return await asyncio.to_thread(env.http, "POST", path, body, headers, timeout)


async def post_event(env, ck, p, order, w, e):
    """Posts e and checks the answer and the frames it must deliver (now, in order)."""
    t0 = h.now_ms()
    r = await post(env, p.url(), e.body, e.headers)
    t1 = h.now_ms()
    where = f"{p.name} {e.what}"
    if not ck(r.status == 200 and isinstance(r.json, dict) and isinstance(r.json.get("results"), list),
              f"{where}: expected 200 with results, got {r!r}"):
        return
    res = r.json["results"]
    got = [x.get("result") for x in res]
    if not ck(got == e.results, f"{where}: results {got}, expected {e.results}: {r!r}"):
        return
    for x in res:
        ck(x.get("order_id") == order, f"{where}: result order_id {x.get('order_id')!r}, "
                                      f"expected the merchant's {order!r}")
        ck(("cursor" in x) == (x.get("result") == "applied"),
           f"{where}: only an applied result carries a cursor: {x!r}")
    ck(r.json.get("applied") == e.results.count("applied")
       and r.json.get("duplicate") == e.results.count("duplicate")
       and r.json.get("stale") == e.results.count("stale"), f"{where}: counts of {r!r}")
    for x, want in zip(res, e.updates):
        if x.get("result") != "applied":
            continue
        f = await w.update()
        ck(f.get("order_id") == order and f.get("cursor") == x.get("cursor")
           and matches(f.get("update"), want, (t0 - 1000, t1 + 1000)),
           f"{where}: frame {json.dumps(f)}\n      expected order {order}, cursor "
           f"{x.get('cursor')}, update {show(want)}"
           + (f"\n      (ts {f.get('update', {}).get('ts')} is not the receive time "
              f"{t0}..{t1} ms since the epoch)" if want.get("ts") is RECEIVED else ""))


async def expect_error(env, ck, where, path, body, headers, status, error, names=None):
    r = await post(env, path, body, headers)
    ok = ck(r.status == status and isinstance(r.json, dict) and r.json.get("error") == error
            and isinstance(r.json.get("message"), str),
            f"{where}: expected {status} {error!r} with a JSON message, got {r!r}")
    if ok and names is not None:
        ck(r.json["message"].lower().startswith(names.lower() + ":"),
           f"{where}: the message must name {names!r}: {r.json['message']!r}")
    return r


async def expect_ignored(env, ck, where, path, body, headers):
    r = await post(env, path, body, headers)
    ck(r.status == 200 and isinstance(r.json, dict) and r.json.get("ignored") is True
       and r.json.get("results") == [], f"{where}: expected 200 {{\"ignored\":true}}, got {r!r}")


async def provider_checks(env, ck, p, order, w):
    base = h.now_ms() - 60_000
    lat0, lng0 = 52.5, 13.4

    # A status event, then its retry.
    status = p.status(order, base + 1000, 1)
    await post_event(env, ck, p, order, w, status)
    await post_event(env, ck, p, order, w, status.again("status retried", ["duplicate"]))

    # A position event, then its retry.
    pos = p.position(order, base + 2000, lat0, lng0, 0)
    await post_event(env, ck, p, order, w, pos)
    await post_event(env, ck, p, order, w,
                     pos.again("position retried", ["duplicate"] * len(pos.results)))

    # Older events: stale, not delivered.
    if p.has_time:
        old = p.status(order, base + 500, 2, lat=1.0, lng=1.0)
        old.what = "older status event " + old.what
        old.results, old.updates = ["stale"], [None]
        await post_event(env, ck, p, order, w, old)
        if isinstance(p, OpenDelivery):
            oldpos = p.stale_position(order, base + 1500, 2.0, 2.0, 1)
        else:
            oldpos = p.position(order, base + 1500, 2.0, 2.0, 1)
            oldpos.results, oldpos.updates = ["stale"], [None]
        oldpos.what = "older position event " + oldpos.what
        await post_event(env, ck, p, order, w, oldpos)

    # Stuart's webhooks v3 carry a time and an event id: applied once, an older one stale.
    if isinstance(p, Stuart):
        v3 = p.v3_status(order, h.now_ms(), "courier_waiting_at_pickup",
                         f"v3-{os.getpid()}-1", "at_pickup")
        await post_event(env, ck, p, order, w, v3)
        await post_event(env, ck, p, order, w, v3.again("v3 retried", ["duplicate"]))
        await post_event(env, ck, p, order, w,
                         p.v3_status(order, base, "package_delivered", f"v3-{os.getpid()}-2",
                                     "delivered", results=("stale",)))

    # Refused: bad or no signature / credential.
    probe = p.status(order, base + 2500, 3).body
    if isinstance(p, Wolt):
        for what, body in p.auth_failures(order, base + 2500):
            await expect_error(env, ck, f"{p.name}: {what}", p.url(), body, p.unsigned(body),
                               401, "unauthorized", p.auth_header)
        for what, body in p.missing_signature(order, base + 2500):
            await expect_error(env, ck, f"{p.name}: {what}", p.url(), body, p.unsigned(body),
                               401, "unauthorized", p.auth_header)
    else:
        await expect_error(env, ck, f"{p.name}: bad signature", p.url(), probe,
                           p.bad_headers(probe), 401, "unauthorized", p.auth_header)
        await expect_error(env, ck, f"{p.name}: no signature", p.url(), probe,
                           p.unsigned(probe), 401, "unauthorized", p.auth_header)
        if not isinstance(p, (DoorDash, Stuart)):
            # The signature of another body: it covers the raw bytes (one more space here).
            other = probe + b" "
            await expect_error(env, ck, f"{p.name}: signature of another body", p.url(), other,
                               p.headers(probe), 401, "unauthorized", p.auth_header)

    # Malformed: 400 naming the provider's field.
    if isinstance(p, Wolt):
        body = p.token_body(None, raw_claims=b'{"type": "order.picked_up", ')
        await expect_error(env, ck, f"{p.name}: genuine token, claims not JSON", p.url(), body,
                           p.headers(body), 400, "invalid_webhook", "token")
    else:
        body = b'{"kind": "event.courier_update", '
        r = await expect_error(env, ck, f"{p.name}: malformed JSON", p.url(), body,
                               p.headers(body), 400, "invalid_webhook")
        if isinstance(r.json, dict):
            ck("JSON" in r.json.get("message", ""), f"{p.name}: malformed JSON message {r!r}")
    for field, obj in p.malformed(order, base + 2600):
        body = p.token_body(obj) if isinstance(p, Wolt) else dumps(obj)
        await expect_error(env, ck, f"{p.name}: malformed {field}", p.url(), body,
                           p.headers(body), 400, "invalid_webhook", field)

    # Nothing to track: 200 {"ignored": true}.
    for what, obj in p.ignored(order, base + 2700):
        body = p.token_body(obj) if isinstance(p, Wolt) else dumps(obj)
        await expect_ignored(env, ck, f"{p.name}: {what}", p.url(), body, p.headers(body))

    # The next frame is this position: nothing above was delivered.
    last = p.position(order, base + 3000, lat0 + 0.001, lng0 + 0.001, 2)
    last.what = "last position (the next frame) " + last.what
    await post_event(env, ck, p, order, w, last)

    # A late watcher's snapshot: the merged state.
    late = await env.watch(order)
    st = late.frames[0].get("state") or {}
    want_status = {"uber_direct": "picked_up", "doordash_drive": "picked_up",
                   "wolt_drive": "picked_up", "onfleet": "en_route_to_dropoff",
                   "stuart": "at_pickup", "opendelivery": "en_route_to_dropoff"}[p.name]
    loc = st.get("location") or {}
    ck(st.get("status") == want_status and st.get("provider") == p.name
       and (loc.get("lat"), loc.get("lng")) == (lat0 + 0.001, lng0 + 0.001),
       f"{p.name}: late snapshot state {st!r}: want status {want_status}, provider {p.name}, "
       f"location {lat0 + 0.001},{lng0 + 0.001}")
    await late.close()
    extra = w.pending()
    ck(extra == [], f"{p.name}: frames nobody expected: {extra!r}")


async def courier_checks(env, ck, p, secret_path):
    """tools/courier --provider NAME: its webhooks go through the real adapter."""
    order = f"courier-{p.name}-{os.getpid()}"
    w = await env.watch(order)
    steps = 8
    argv = [sys.executable, COURIER, "--server", f"127.0.0.1:{env.port}",
            "--provider", p.name, "--secret-file", secret_path, "--order", order,
            "--interval", "0.05", "--steps", str(steps), "--speed", "40"]
    r = await asyncio.to_thread(subprocess.run, argv, capture_output=True, timeout=30)
    out = r.stdout.decode("utf-8", "replace")
    if not ck(r.returncode == 0, f"courier --provider {p.name} exited {r.returncode}:\n{out}\n"
                                 f"{r.stderr.decode('utf-8', 'replace')}"):
        return
    answers = [line.split(" -> ", 1)[1] for line in out.splitlines() if " -> " in line]
    ck(len(answers) == steps and all(a.startswith("200 ") for a in answers),
       f"courier --provider {p.name}: {steps} posts answered 200 expected:\n{out}")
    frames = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        frames += w.pending()
        if len({(f["update"].get("location") or {}).get("lat") for f in frames
                if f.get("type") == "update"} - {None}) >= 4:
            break
        await asyncio.sleep(0.05)
    updates = [f["update"] for f in frames if f.get("type") == "update"]
    statuses = [u["status"] for u in updates if "status" in u]
    positions = {(u["location"]["lat"], u["location"]["lng"]) for u in updates if "location" in u}
    ck(all(u.get("order_id") == order and u.get("provider") == p.name for u in updates),
       f"courier --provider {p.name}: frames for another order or provider: {updates!r}")
    ck(len(positions) >= 4, f"courier --provider {p.name}: the courier did not move "
                            f"(positions {sorted(positions)}):\n{out}")
    ck(statuses and set(statuses) <= {"courier_assigned", "en_route_to_pickup"},
       f"courier --provider {p.name}: statuses {statuses}, expected courier_assigned / "
       f"en_route_to_pickup in the first {steps} steps:\n{out}")
    await w.close()


async def test(env):
    ck = h.Checks()
    providers = make_providers()
    paths = {}
    for name, p in providers.items():
        paths[name] = os.path.join(env.log_dir, f"{name}.secret")
        with open(paths[name], "w") as f:
            f.write(p.secret_text + "\n")  # trackgated drops the trailing newline
        os.chmod(paths[name], 0o600)
    # Two providers from a config file's [webhook.PROVIDER] sections (inline and file).
    conf = os.path.join(env.log_dir, "webhooks.conf")
    with open(conf, "w") as f:
        f.write(f"[webhook.uber_direct]\nsecret = {providers['uber_direct'].secret_text}\n\n"
                f"[webhook.stuart]\nsecret-file = {paths['stuart']}\n")
    os.chmod(conf, 0o600)
    env.daemon.extra_args += ["--config", conf, "--body-limit", str(BODY_LIMIT)]
    for name in ("doordash_drive", "wolt_drive", "onfleet", "opendelivery"):
        env.daemon.extra_args += ["--webhook-secret-file", f"{name}={paths[name]}"]
    # Children are spawned from the main thread, never through asyncio.to_thread: the
    # harness gives them PR_SET_PDEATHSIG, which fires when the spawning *thread* exits.
    env.start()

    run = os.getpid()
    orders = {name: f"wh-{name.replace('_', '-')}-{run}" for name in providers}
    watchers = {name: await env.watch(orders[name]) for name in providers}

    for name, p in providers.items():
        print(f"--- {name}")
        await provider_checks(env, ck, p, orders[name], watchers[name])

    # Each watcher got only its own order's frames.
    for name, w in watchers.items():
        ck(all(f.get("order_id") == orders[name] for f in w.frames),
           f"{name}: a frame of another order: {w.frames!r}")

    print("--- routing and HTTP refusals")
    uber = providers["uber_direct"]
    good = uber.position(orders["uber_direct"], h.now_ms(), 52.0, 13.0, 9).body
    for path in ("/v1/webhooks/nosuch", "/v1/webhooks/UBER_DIRECT", "/v1/webhooks/"):
        await expect_error(env, ck, f"POST {path}", path, good, uber.headers(good), 404,
                           "unknown_provider")
    r = await asyncio.to_thread(env.http, "GET", "/v1/webhooks/onfleet?check=abc")
    ck(r.status == 200 and r.raw == b"abc" and r.headers.get("content-type", "").startswith("text/plain"),
       f"GET /v1/webhooks/onfleet?check=abc: expected 200 text/plain 'abc', got {r!r} {r.headers!r}")
    r = await asyncio.to_thread(env.http, "GET", "/v1/webhooks/onfleet")
    ck(r.status == 400, f"GET /v1/webhooks/onfleet without check: expected 400, got {r!r}")
    r = await asyncio.to_thread(env.http, "GET", "/v1/webhooks/uber_direct?check=abc")
    ck(r.status == 405 and r.headers.get("allow") == "POST",
       f"GET /v1/webhooks/uber_direct: expected 405 Allow: POST, got {r!r}")
    hdrs = uber.headers(good)
    hdrs["Content-Type"] = "text/plain"
    await expect_error(env, ck, "wrong Content-Type", uber.url(), good, hdrs, 415,
                       "unsupported_media_type")
    hdrs["Content-Type"] = "application/x-www-form-urlencoded"
    await expect_error(env, ck, "form Content-Type", uber.url(), good, hdrs, 415,
                       "unsupported_media_type")
    big = dumps({"kind": "event.courier_update", "pad": "x" * (BODY_LIMIT + 100)})
    await expect_error(env, ck, "body over --body-limit", uber.url(), big, uber.headers(big), 413,
                       "body_too_large")
    for name in ("onfleet", "opendelivery"):
        p = providers[name]
        big = dumps({"pad": "x" * (BODY_LIMIT + 100)})
        await expect_error(env, ck, f"{name}: body over --body-limit", p.url(), big,
                           p.headers(big), 413, "body_too_large")

    print("--- a known provider that is not configured (second trackgated)")
    second_dir = os.path.join(env.log_dir, "second")
    os.makedirs(second_dir, exist_ok=True)
    second = h.Daemon(env.args.trackgated, env.redis.sock, env.key_file, second_dir,
                      ["--webhook-secret-file", f"uber_direct={paths['uber_direct']}"])
    second.start()  # from the main thread (PR_SET_PDEATHSIG), see above
    try:
        for name in ("onfleet", "wolt_drive", "stuart"):
            p = providers[name]
            body = p.status("unconfigured-1", h.now_ms(), 1).body
            r = await asyncio.to_thread(h.http_request, second.port, "POST", p.url(), body,
                                        p.headers(body))
            ck(r.status == 404 and isinstance(r.json, dict) and r.json.get("error") == "unknown_provider",
               f"second trackgated, {name} not configured: expected 404 unknown_provider, got {r!r}")
        r = await asyncio.to_thread(h.http_request, second.port, "GET",
                                    "/v1/webhooks/onfleet?check=abc")
        ck(r.status == 404, f"second trackgated: GET onfleet?check without onfleet configured: {r!r}")
        body = uber.position("configured-1", h.now_ms(), 52.0, 13.0, 10).body
        r = await asyncio.to_thread(h.http_request, second.port, "POST", uber.url(), body,
                                    uber.headers(body))
        ck(r.status == 200 and (r.json or {}).get("applied") == 1,
           f"second trackgated: the configured uber_direct: {r!r}")
    finally:
        try:
            await asyncio.to_thread(second.terminate)
        except h.TestFailure as e:
            ck(False, f"second trackgated: {e}")

    print("--- tools/courier --provider NAME")
    for name, p in providers.items():
        await courier_checks(env, ck, p, paths[name])

    print("--- Redis down: 503")
    env.redis.stop()
    await h.async_wait_until(lambda: env.http("GET", "/readyz").status == 503, 10,
                             what="/readyz 503 with Redis stopped")
    for name, p in providers.items():
        e = p.status(orders[name], h.now_ms(), 7)
        await expect_error(env, ck, f"{name} with Redis down", p.url(), e.body, e.headers, 503,
                           "redis_unavailable")
    ign = dumps(uber.ignored("x", h.now_ms())[0][1])
    await expect_ignored(env, ck, "ignored event with Redis down", uber.url(), ign,
                         uber.headers(ign))
    env.redis.start()  # from the main thread (PR_SET_PDEATHSIG), see above
    await h.async_wait_until(lambda: env.http("GET", "/readyz").status == 200, 15,
                             what="/readyz 200 after Redis is back")

    r = await asyncio.to_thread(env.http, "GET", "/healthz")
    ck(r.status == 200 and r.json == {"status": "ok"}, f"/healthz at the end: {r!r}")
    env.assert_alive()
    ck.done()


if __name__ == "__main__":
    h.main(test, start=False)
