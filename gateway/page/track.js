// track.js - trackgate's tracking client: one order's live state over a websocket.
//
// No dependencies and no DOM: it works in any page (and in a worker).  A
// merchant embeds it in their own page like this (see gateway/page/README.md):
//
//   import { TrackingClient } from "https://track.example.com/t/assets/track.js";
//   const client = new TrackingClient({ orderId: "ord-1", token: "eyJ..." });
//   client.addEventListener("order", (e) => draw(e.detail.order));
//   client.addEventListener("connection", (e) => banner(e.detail.state, e.detail.message));
//   client.start();
//
// Events (CustomEvent, the data in .detail):
//   "connection"  {state, message, code, retryInMs}: state is one of
//                 connecting, live, reconnecting, expired, forbidden, failed, stopped;
//                 message a sentence for a person; code the websocket close code
//                 that caused it (or null); retryInMs when a reconnect is planned.
//   "order"       {order, update, reset}: order is the merged state (the
//                 snapshot's state with every update since applied: location,
//                 status, eta, courier, places, updated_at); update the update
//                 that changed it (null for a snapshot); reset true when the
//                 server could not resume and sent a fresh snapshot.
//
// Reconnects: after a lost connection, a restart (1001), an overloaded server
// (1013) or a slow link (4408) it reconnects with exponential backoff and
// jitter, and resumes from the cursor of the last frame it got (?since=), so
// no update is missed.  It does not reconnect after 4401 (expired or invalid
// link: "expired"), 4403 (a link for another order: "forbidden") or 4400/4404
// ("failed").

export const STATUSES = [
  "created", "courier_assigned", "en_route_to_pickup", "at_pickup", "picked_up",
  "en_route_to_dropoff", "at_dropoff", "delivered", "cancelled", "returned", "failed",
];
const TERMINAL = new Set(["delivered", "cancelled", "returned", "failed"]);

/** True for the statuses that end an order. */
export function isTerminal(status) {
  return TERMINAL.has(status);
}

// close code -> [connection state, sentence, reconnect?]
const CLOSES = {
  1000: ["reconnecting", "The tracking connection was closed. Reconnecting…", true],
  1001: ["reconnecting", "The tracking service is restarting. Reconnecting…", true],
  1006: ["reconnecting", "The connection to the tracking service was lost. Reconnecting…", true],
  1008: ["failed", "The tracking service refused this page (too many connections or a page it does not allow).", false],
  1009: ["reconnecting", "The tracking service closed the connection. Reconnecting…", true],
  1011: ["reconnecting", "The tracking service had a problem. Reconnecting…", true],
  1012: ["reconnecting", "The tracking service is restarting. Reconnecting…", true],
  1013: ["reconnecting", "The tracking service is busy. Trying again shortly…", true],
  4400: ["failed", "This tracking link is not valid.", false],
  4401: ["expired", "This tracking link has expired. Ask the sender for a new one.", false],
  4403: ["forbidden", "This tracking link is for a different order.", false],
  4404: ["failed", "This tracking link does not point to an order.", false],
  4408: ["reconnecting", "The connection was too slow to keep up. Reconnecting…", true],
};

/** A sentence for a person about a websocket close code (and the server's reason). */
export function closeMessage(code, reason) {
  const known = CLOSES[code];
  if (known) return known[1];
  if (code >= 4000 && code < 5000) return `The tracking service closed the connection (${code}${reason ? ": " + reason : ""}).`;
  return "The connection to the tracking service was lost. Reconnecting…";
}

function closeAction(code) {
  const known = CLOSES[code];
  if (known) return { state: known[0], retry: known[2] };
  // Other codes from 4000 to 4999 are the server's refusals: do not hammer it.
  if (code >= 4000 && code < 5000) return { state: "failed", retry: false };
  return { state: "reconnecting", retry: true };
}

/** Applies one canonical update to a merged order state, as the server's script does. */
export function applyUpdate(order, u) {
  const o = order ? { ...order } : { order_id: u.order_id };
  if (u.location) o.location = { ...u.location, ts: u.ts };
  if (u.status) {
    o.status = u.status;
    o.status_ts = u.ts;
  }
  if (u.eta) o.eta = { ...u.eta, ts: u.ts };
  if (u.places) o.places = { ...(o.places || {}), ...u.places };
  if (u.courier) o.courier = u.courier;
  if (u.provider) o.provider = u.provider;
  if (!(o.updated_at >= u.ts)) o.updated_at = u.ts;
  return o;
}

// The websocket of the trackgated this module was loaded from: the module is
// /t/assets/track.js, the websocket /v1/track/{ID} (behind any path prefix).
function defaultUrl(orderId) {
  const u = new URL(`../../v1/track/${encodeURIComponent(orderId)}`, import.meta.url);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  return u.href;
}

export class TrackingClient extends EventTarget {
  /**
   * options: orderId (required), token (the link's token, if the server needs one),
   * url (the websocket URL without query; default: /v1/track/{orderId} on the
   *   trackgated this module was loaded from),
   * minBackoffMs (500), maxBackoffMs (30000), WebSocket (an implementation, for tests).
   */
  constructor(options) {
    super();
    if (!options || !options.orderId) throw new Error("TrackingClient: orderId is required");
    this.orderId = options.orderId;
    this.token = options.token || null;
    this.url = options.url || defaultUrl(options.orderId);
    this.minBackoffMs = options.minBackoffMs || 500;
    this.maxBackoffMs = options.maxBackoffMs || 30000;
    this.WebSocketImpl = options.WebSocket || globalThis.WebSocket;
    this.order = null;      // the merged state, null until the first snapshot
    this.cursor = null;     // the cursor of the last frame received
    this.state = "stopped";
    this.attempt = 0;
    this.ws = null;
    this.timer = null;
    this.stopped = true;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this._connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = ws.onmessage = ws.onerror = ws.onopen = null;
      ws.close(1000, "page closed");
    }
    this._setState("stopped", "Stopped.", null);
  }

  _setState(state, message, code, retryInMs) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("connection", {
      detail: { state, message, code: code ?? null, retryInMs: retryInMs ?? null },
    }));
  }

  _connect() {
    const q = new URLSearchParams();
    if (this.token) q.set("token", this.token);
    if (this.cursor) q.set("since", this.cursor);
    const qs = q.toString();
    let ws;
    // A reconnect keeps the sentence of the close that caused it.
    if (!this.attempt) this._setState("connecting", "Connecting…", null);
    try {
      ws = new this.WebSocketImpl(qs ? `${this.url}?${qs}` : this.url);
    } catch (e) {
      this._closed(1006, String(e));
      return;
    }
    this.ws = ws;
    ws.onmessage = (ev) => this._frame(ev.data);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this._closed(ev.code, ev.reason);
    };
    ws.onerror = () => {}; // onclose follows with the code
  }

  _frame(data) {
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      return; // not ours to judge; the server only sends JSON
    }
    if (!f || typeof f !== "object") return;
    if (f.type === "snapshot") {
      this.order = f.state || null;
      if (f.cursor) this.cursor = f.cursor;
      this._live();
      this.dispatchEvent(new CustomEvent("order", {
        detail: { order: this.order, update: null, reset: !!f.reset },
      }));
    } else if (f.type === "update" && f.update) {
      this.order = applyUpdate(this.order, f.update);
      if (f.cursor) this.cursor = f.cursor;
      this._live();
      this.dispatchEvent(new CustomEvent("order", {
        detail: { order: this.order, update: f.update, reset: false },
      }));
    }
  }

  // The first frame of a connection (a snapshot, or the missed updates after
  // ?since=) makes it live.
  _live() {
    if (this.state === "live") return;
    this.attempt = 0;
    this._setState("live", "Live.", null);
  }

  _closed(code, reason) {
    if (this.stopped) return;
    const { state, retry } = closeAction(code);
    const message = closeMessage(code, reason);
    if (!retry) {
      this.stopped = true;
      this._setState(state, message, code);
      return;
    }
    // Full jitter over an exponential ceiling; a busy server gets a longer wait.
    const base = code === 1013 ? this.minBackoffMs * 4 : this.minBackoffMs;
    const ceiling = Math.min(this.maxBackoffMs, base * 2 ** Math.min(this.attempt, 10));
    const wait = Math.round(ceiling / 2 + Math.random() * ceiling / 2);
    this.attempt++;
    this._setState("reconnecting", message, code, wait);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.stopped) this._connect();
    }, wait);
  }
}
