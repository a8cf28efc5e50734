// test/track.test.js - the logic of track.js that runs without a browser, under
// node's own test runner (`node --test test/`, ctest client.unit): the URL it
// connects to, resume, backoff, what it does with each close code, and token
// refresh on the open socket.  A fake WebSocket stands in for the server; fake
// timers (node:test's mock.timers) and a fixed Math.random make waits exact.

import { afterEach, beforeEach, describe, mock, test } from "node:test";
import assert from "node:assert/strict";

import {
  PER_CLIENT_RETRY_MS,
  STATUSES,
  TrackingClient,
  applyUpdate,
  closeMessage,
  isTerminal,
  tokenExpiry,
} from "@trackgate/client";

const URL_BASE = "wss://track.example/v1/track/A1";

// One fake socket per connect, newest last.  The test plays the server.
class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0; // CONNECTING
    this.sent = [];
    this.closedWith = null;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    FakeSocket.all.push(this);
  }
  send(data) {
    assert.equal(this.readyState, 1, "send on a socket that is not open");
    this.sent.push(data);
  }
  close(code, reason) {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }
  // The server's side.
  open() {
    this.readyState = 1;
    this.onopen?.({ type: "open" });
  }
  frame(f) {
    this.onmessage?.({ data: typeof f === "string" ? f : JSON.stringify(f) });
  }
  serverClose(code, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  query() {
    const q = this.url.indexOf("?");
    return q < 0 ? "" : this.url.slice(q + 1);
  }
}

const last = () => FakeSocket.all[FakeSocket.all.length - 1];

function jwt(claims) {
  const b64url = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b64url({ alg: "HS256", kid: "k1" })}.${b64url(claims)}.c2ln`;
}

function client(options = {}) {
  const c = new TrackingClient({ orderId: "A1", url: URL_BASE, WebSocket: FakeSocket, ...options });
  const events = [];
  for (const type of ["connection", "order", "refreshed"]) {
    c.addEventListener(type, (e) => events.push({ type, ...e.detail }));
  }
  return { c, events, of: (type) => events.filter((e) => e.type === type) };
}

const snapshot = (cursor, state = { order_id: "A1", status: "picked_up", updated_at: 1 }, extra = {}) =>
  ({ type: "snapshot", order_id: "A1", state, cursor, ...extra });
const update = (cursor, u) =>
  ({ type: "update", order_id: "A1", update: { v: 1, order_id: "A1", provider: "acme", ...u }, cursor });

beforeEach(() => {
  FakeSocket.all = [];
  mock.timers.enable({ apis: ["setTimeout"] });
  mock.method(Math, "random", () => 0); // every wait is half its ceiling
});
afterEach(() => {
  mock.timers.reset();
  mock.restoreAll();
});

describe("the URL", () => {
  test("carries no query without a token or cursor", () => {
    const { c } = client();
    c.start();
    assert.equal(last().url, URL_BASE);
  });

  test("carries the token, URL-encoded by URLSearchParams", () => {
    const { c } = client({ token: "a.b+c/d=" });
    c.start();
    assert.equal(last().url, `${URL_BASE}?token=a.b%2Bc%2Fd%3D`);
  });

  test("of a reconnect is token first, then since the last frame's cursor", () => {
    const { c } = client({ token: "T" });
    c.start();
    last().open();
    last().frame(snapshot("5-0"));
    last().frame(update("7-1", { ts: 2, location: { lat: 1, lng: 2 } }));
    last().serverClose(1006);
    mock.timers.tick(250);
    assert.equal(FakeSocket.all.length, 2);
    assert.equal(last().query(), "token=T&since=7-1");
  });
});

describe("frames", () => {
  test("a snapshot makes the client live and gives the order", () => {
    const { c, of } = client();
    c.start();
    assert.equal(c.state, "connecting");
    last().open();
    last().frame(snapshot("5-0"));
    assert.equal(c.state, "live");
    assert.deepEqual(of("order"), [{ type: "order", order: snapshot("5-0").state, update: null, reset: false }]);
    assert.equal(c.cursor, "5-0");
  });

  test("an update merges into the order", () => {
    const { c, of } = client();
    c.start();
    last().frame(snapshot("5-0"));
    last().frame(update("6-0", { ts: 10, location: { lat: 52.5, lng: 13.4 } }));
    assert.deepEqual(c.order.location, { lat: 52.5, lng: 13.4, ts: 10 });
    assert.equal(of("order")[1].update.ts, 10);
    assert.equal(c.cursor, "6-0");
  });

  test("a resumed frame makes the client live with no order event", () => {
    const { c, of } = client({ token: "T" });
    c.start();
    last().frame(snapshot("5-0"));
    last().serverClose(1001);
    mock.timers.tick(250);
    last().open();
    last().frame({ type: "resumed", order_id: "A1", cursor: "5-0", replayed: 0 });
    assert.equal(c.state, "live");
    assert.equal(of("order").length, 1);
    assert.equal(c.cursor, "5-0");
  });

  test("a reset snapshot replaces the order and says so", () => {
    const { c, of } = client();
    c.start();
    last().frame(snapshot("5-0"));
    last().frame(snapshot("9-0", { order_id: "A1", status: "delivered", updated_at: 3, location: { lat: 1, lng: 1 } }, { reset: true }));
    const e = of("order")[1];
    assert.equal(e.reset, true);
    assert.equal("location" in e.order, false, "a terminal state keeps no location");
  });

  test("text that is not JSON, or not an object, is ignored", () => {
    const { c, of } = client();
    c.start();
    last().frame("not json");
    last().frame("42");
    assert.equal(of("order").length, 0);
    assert.equal(c.state, "connecting");
  });
});

describe("backoff", () => {
  const waits = (closes, options) => {
    const { c, of } = client(options);
    c.start();
    for (const [code, reason] of closes) {
      last().serverClose(code, reason);
      mock.timers.tick(of("connection").at(-1).retryInMs);
    }
    return of("connection").filter((e) => e.state === "reconnecting").map((e) => e.retryInMs);
  };

  test("doubles from minBackoffMs with half jitter, up to maxBackoffMs", () => {
    const lost = Array(8).fill([1006, ""]);
    assert.deepEqual(waits(lost, { minBackoffMs: 500, maxBackoffMs: 30000 }),
      [250, 500, 1000, 2000, 4000, 8000, 15000, 15000]);
  });

  test("waits between half the ceiling and the ceiling", () => {
    Math.random.mock.mockImplementation(() => 0.999999);
    assert.deepEqual(waits([[1006, ""], [1006, ""]]), [500, 1000]);
  });

  test("starts 4 times higher for a busy server (1013)", () => {
    assert.deepEqual(waits([[1013, "busy"], [1013, "busy"]]), [1000, 2000]);
  });

  test("starts at PER_CLIENT_RETRY_MS for a full per-address limit (1008)", () => {
    const reason = "too many connections from your address";
    assert.equal(PER_CLIENT_RETRY_MS, 5000);
    assert.deepEqual(waits([[1008, reason], [1008, reason]]), [5000, 10000]);
  });

  test("starts over once a connection goes live", () => {
    const { c, of } = client();
    c.start();
    last().serverClose(1006);
    mock.timers.tick(250);
    last().serverClose(1006);
    mock.timers.tick(500);
    last().frame(snapshot("1-0"));
    last().serverClose(1006);
    assert.deepEqual(of("connection").filter((e) => e.retryInMs).map((e) => e.retryInMs), [250, 500, 250]);
  });

  test("stop() cancels a planned reconnect and closes with 1000", () => {
    const { c } = client();
    c.start();
    last().serverClose(1006);
    c.stop();
    mock.timers.tick(60000);
    assert.equal(FakeSocket.all.length, 1);
    c.start();
    c.stop();
    assert.deepEqual(last().closedWith, { code: 1000, reason: "page closed" });
    assert.equal(c.state, "stopped");
  });
});

describe("close codes", () => {
  // code, reason, token? -> the state it ends in, whether it reconnects
  const table = [
    [1000, "", true, "reconnecting", true],
    [1001, "going away", true, "reconnecting", true],
    [1006, "", true, "reconnecting", true],
    [1008, "too many connections from your address", true, "reconnecting", true],
    [1008, "origin not allowed", true, "failed", false],
    [1009, "", true, "reconnecting", true],
    [1011, "", true, "reconnecting", true],
    [1012, "", true, "reconnecting", true],
    [1013, "", true, "reconnecting", true],
    [4400, "invalid since", true, "failed", false],
    [4401, "token expired", true, "expired", false],
    [4401, "a token is required (?token=)", true, "failed", false],
    [4401, "token expired", false, "failed", false],
    [4403, "the token is for another order", true, "forbidden", false],
    [4404, "", true, "failed", false],
    [4408, "too slow", true, "reconnecting", true],
    [4499, "something new", true, "failed", false],
    [3000, "", true, "reconnecting", true],
  ];
  for (const [code, reason, withToken, state, reconnects] of table) {
    test(`${code} ${reason || "(no reason)"}${withToken ? "" : " without a token"}: ${state}`, () => {
      const { c, of } = client(withToken ? { token: "T" } : {});
      c.start();
      last().open();
      last().serverClose(code, reason);
      const e = of("connection").at(-1);
      assert.equal(e.state, state);
      assert.equal(e.code, code);
      assert.equal(e.message, closeMessage(code, reason, withToken));
      assert.equal(e.retryInMs !== null, reconnects);
      mock.timers.tick(60000);
      assert.equal(FakeSocket.all.length, reconnects ? 2 : 1);
    });
  }

  test("closeMessage has a sentence for each", () => {
    assert.match(closeMessage(4401, "token expired", true), /expired/);
    assert.match(closeMessage(4401, "a token is required (?token=)", true), /incomplete/);
    assert.match(closeMessage(4403, ""), /different order/);
    assert.match(closeMessage(1008, "too many connections from your address"), /too many connections/);
    assert.equal(closeMessage(4499, "x"), "The tracking service closed the connection (4499: x).");
    assert.match(closeMessage(1006), /Reconnecting/);
  });
});

describe("token refresh", () => {
  const later = 1900000000;

  test("sends the refresh message on the open socket and keeps it", () => {
    const { c, of } = client({ token: "OLD" });
    c.start();
    last().open();
    last().frame(snapshot("5-0"));
    const token = jwt({ order_id: "A1", exp: later });
    assert.equal(c.refreshToken(token), true);
    assert.deepEqual(last().sent, [`{"type":"refresh","token":"${token}"}`]);
    assert.deepEqual(JSON.parse(last().sent[0]), { type: "refresh", token });
    last().frame({ type: "refreshed", order_id: "A1", exp: later });
    assert.deepEqual(of("refreshed"), [{ type: "refreshed", orderId: "A1", exp: later }]);
    assert.equal(c.tokenExpiresAt, later);
    assert.equal(last().closedWith, null, "the socket stays");
    assert.equal(FakeSocket.all.length, 1);
    assert.equal(c.state, "live");
  });

  test("the new token is what a reconnect sends", () => {
    const { c } = client({ token: "OLD" });
    c.start();
    last().open();
    last().frame(snapshot("5-0"));
    c.refreshToken("NEW");
    last().frame({ type: "refreshed", order_id: "A1", exp: later });
    last().serverClose(1001);
    mock.timers.tick(250);
    assert.equal(last().query(), "token=NEW&since=5-0");
  });

  test("a token given while connecting is sent once the socket opens", () => {
    const { c } = client({ token: "OLD" });
    c.start();
    assert.equal(c.refreshToken("NEW"), false);
    assert.deepEqual(last().sent, []);
    last().open();
    assert.deepEqual(last().sent, ['{"type":"refresh","token":"NEW"}']);
  });

  test("a token given between connects goes in the next URL, not as a refresh", () => {
    const { c } = client({ token: "OLD" });
    c.start();
    last().open();
    last().serverClose(1006);
    assert.equal(c.refreshToken("NEW"), false);
    mock.timers.tick(250);
    assert.equal(last().query(), "token=NEW");
    last().open();
    assert.deepEqual(last().sent, []);
  });

  test("the same token is sent once", () => {
    const { c } = client({ token: "OLD" });
    c.start();
    last().open();
    c.refreshToken("NEW");
    c.refreshToken("NEW");
    assert.equal(last().sent.length, 1);
  });

  test("a refused refresh gets one connect of its own, then stops", () => {
    const { c, of } = client({ token: "OLD" });
    c.start();
    last().open();
    last().frame(snapshot("5-0"));
    c.refreshToken("BAD");
    last().frame({ type: "error", error: "unauthorized", message: "bad signature" });
    last().serverClose(4401, "bad signature");
    assert.equal(of("connection").at(-1).state, "reconnecting");
    mock.timers.tick(250);
    assert.equal(last().query(), "token=BAD&since=5-0");
    last().open();
    last().serverClose(4401, "bad signature");
    assert.equal(c.state, "expired");
    mock.timers.tick(60000);
    assert.equal(FakeSocket.all.length, 2);
  });

  test("a 4403 for a refresh for another order stops after its connect", () => {
    const { c } = client({ token: "OLD" });
    c.start();
    last().open();
    c.refreshToken("OTHER");
    last().serverClose(4403, "the token is for another order");
    mock.timers.tick(250);
    last().open();
    last().serverClose(4403, "the token is for another order");
    assert.equal(c.state, "forbidden");
  });

  test("an expired client given a new token connects again and resumes", () => {
    const { c, of } = client({ token: "OLD" });
    c.start();
    last().open();
    last().frame(snapshot("5-0"));
    last().serverClose(4401, "token expired");
    assert.equal(c.state, "expired");
    assert.equal(c.refreshToken("NEW"), false);
    assert.equal(FakeSocket.all.length, 2);
    assert.equal(last().query(), "token=NEW&since=5-0");
    last().open();
    last().frame({ type: "resumed", order_id: "A1", cursor: "5-0", replayed: 0 });
    assert.equal(c.state, "live");
    assert.deepEqual(of("connection").map((e) => e.state), ["connecting", "live", "expired", "connecting", "live"]);
  });

  test("a client stopped by stop() only keeps the token", () => {
    const { c } = client({ token: "OLD" });
    c.start();
    c.stop();
    c.refreshToken("NEW");
    assert.equal(FakeSocket.all.length, 1);
    assert.equal(c.token, "NEW");
  });

  test("an empty token is refused", () => {
    const { c } = client();
    assert.throws(() => c.refreshToken(""), TypeError);
    assert.throws(() => c.refreshToken(undefined), TypeError);
  });

  test("tokenExpiry reads the exp claim of a JWT", () => {
    assert.equal(tokenExpiry(jwt({ order_id: "A1", exp: later, name: "ÿ?>" })), later);
    assert.equal(tokenExpiry(jwt({ order_id: "A1" })), null);
    assert.equal(tokenExpiry("not a jwt"), null);
    assert.equal(tokenExpiry("a.%%%.c"), null);
    assert.equal(new TrackingClient({ orderId: "A1", url: URL_BASE, token: jwt({ exp: 7 }) }).tokenExpiresAt, 7);
  });
});

describe("the merge", () => {
  test("a terminal status drops the location", () => {
    const o = applyUpdate(null, { v: 1, order_id: "A1", provider: "p", ts: 1, location: { lat: 1, lng: 2 } });
    assert.deepEqual(o.location, { lat: 1, lng: 2, ts: 1 });
    const d = applyUpdate(o, { v: 1, order_id: "A1", provider: "p", ts: 2, status: "delivered", location: { lat: 3, lng: 4 } });
    assert.equal("location" in d, false);
    assert.equal(d.status_ts, 2);
    assert.equal(o.location.lat, 1, "the old state is not changed");
  });

  test("places merge by member and updated_at only moves forward", () => {
    let o = applyUpdate(null, { v: 1, order_id: "A1", provider: "p", ts: 5, places: { pickup: { lat: 1, lng: 1 } } });
    o = applyUpdate(o, { v: 1, order_id: "A1", provider: "p", ts: 3, places: { dropoff: { lat: 2, lng: 2 } } });
    assert.deepEqual(Object.keys(o.places), ["pickup", "dropoff"]);
    assert.equal(o.updated_at, 5);
  });

  test("statuses", () => {
    assert.equal(STATUSES.length, 11);
    assert.deepEqual(STATUSES.filter(isTerminal), ["delivered", "cancelled", "returned", "failed"]);
  });

  test("orderId is required", () => {
    assert.throws(() => new TrackingClient({}), /orderId is required/);
  });
});
