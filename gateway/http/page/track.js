// track.js - trackgate's tracking client: one order's live state over a websocket.
//
// No dependencies and no DOM: it works in any page (and in a worker).  A
// merchant embeds it in their own page like this (see gateway/http/page/README.md):
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
//   "refreshed"   {orderId, exp}: the server took the token given to
//                 refreshToken(); the socket stays, exp is its expiry (unix s).
//
// Token refresh: client.refreshToken(newToken) sends {"type":"refresh",
// "token":T} over the open websocket; the server answers {"type":"refreshed",
// "order_id":ID,"exp":E} and keeps the socket, or closes it 4401 (4403: a
// token for another order) as it would refuse a connect.  The new token is
// also the one every later reconnect sends.  Before the socket is open it is
// sent once it opens; a client a 4401 or 4403 stopped connects again with it.
//
// Resume: a reconnect asks for ?since= the cursor of the last frame it got.
// The server then sends every update logged after it and a "resumed" frame
// (the client is live and has missed nothing; no "order" event, nothing
// changed), or, when the cursor is no longer in its log, a snapshot with
// reset:true that replaces the state.
//
// Reconnects: after a lost connection, a restart (1001), an overloaded server
// (1013), a slow link (4408) or too many connections from the client's
// address (1008 "too many connections from your address": many customers
// behind one NAT; a longer wait, 5 s and up) it reconnects with exponential
// backoff and jitter.  It does not reconnect after 4401 (expired or invalid
// link: "expired"; without a token: "failed", the link is incomplete), 4403
// (a link for another order: "forbidden"), 4400/4404 or a 1008 for a page
// the server does not allow ("failed").
//
// Privacy: the merged state carries no location once the order's status is
// terminal (the server drops it too, and withholds positions before the
// courier is shown at all).

export const STATUSES = [
  "created", "courier_assigned", "en_route_to_pickup", "at_pickup", "picked_up",
  "en_route_to_dropoff", "at_dropoff", "delivered", "cancelled", "returned", "failed",
];
const TERMINAL = new Set(["delivered", "cancelled", "returned", "failed"]);

/** True for the statuses that end an order. */
export function isTerminal(status) {
  return TERMINAL.has(status);
}

// close code (or closeKind) -> [connection state, sentence, reconnect?]
const CLOSES = {
  1000: ["reconnecting", "The tracking connection was closed. Reconnecting…", true],
  1001: ["reconnecting", "The tracking service is restarting. Reconnecting…", true],
  1006: ["reconnecting", "The connection to the tracking service was lost. Reconnecting…", true],
  1008: ["failed", "The tracking service does not allow this page to show the delivery.", false],
  1009: ["reconnecting", "The tracking service closed the connection. Reconnecting…", true],
  1011: ["reconnecting", "The tracking service had a problem. Reconnecting…", true],
  1012: ["reconnecting", "The tracking service is restarting. Reconnecting…", true],
  1013: ["reconnecting", "The tracking service is busy. Trying again shortly…", true],
  4400: ["failed", "This tracking link is not valid.", false],
  4401: ["expired", "This tracking link has expired. Ask the sender for a new one.", false],
  4403: ["forbidden", "This tracking link is for a different order.", false],
  4404: ["failed", "This tracking link does not point to an order.", false],
  4408: ["reconnecting", "The connection was too slow to keep up. Reconnecting…", true],
  // Not codes: a 1008 and a 4401 told apart by the server's reason (closeKind).
  perClient: ["reconnecting", "The tracking service has too many connections from your network right now. Trying again in a few seconds…", true],
  incomplete: ["failed", "This tracking link is incomplete: part of it is missing. Open the whole link from the message you received.", false],
};

// The server's close reasons (gateway/ws/session.c, gateway/auth.c) that change what a close means.
const REASON_PER_CLIENT = "too many connections from your address";
const REASON_NO_TOKEN = "a token is required";

// The first wait after a 1008 for too many connections from one address: the
// limit is shared with everybody behind the same NAT, so a quick retry would
// only be refused again.  Waits are 5 to 10 s, then doubling to maxBackoffMs.
export const PER_CLIENT_RETRY_MS = 5000;

// Which row of CLOSES a close is: its code, or for 1008 and 4401 what the
// reason says (a 4401 to a client without a token: the link lost its token).
function closeKind(code, reason, hadToken) {
  const why = String(reason || "");
  if (code === 1008 && why.startsWith(REASON_PER_CLIENT)) return "perClient";
  if (code === 4401 && (why.startsWith(REASON_NO_TOKEN) || hadToken === false)) return "incomplete";
  return code;
}

/**
 * A sentence for a person about a websocket close code and the server's
 * reason.  hadToken (optional) false says the client sent no token.
 */
export function closeMessage(code, reason, hadToken) {
  const known = CLOSES[closeKind(code, reason, hadToken)];
  if (known) return known[1];
  if (code >= 4000 && code < 5000) return `The tracking service closed the connection (${code}${reason ? ": " + reason : ""}).`;
  return "The connection to the tracking service was lost. Reconnecting…";
}

function closeAction(code, reason, hadToken) {
  const kind = closeKind(code, reason, hadToken);
  const known = CLOSES[kind];
  if (known) return { state: known[0], retry: known[2], perClient: kind === "perClient" };
  // Other codes from 4000 to 4999 are the server's refusals: do not hammer it.
  if (code >= 4000 && code < 5000) return { state: "failed", retry: false, perClient: false };
  return { state: "reconnecting", retry: true, perClient: false };
}

/**
 * The expiry (exp claim, unix seconds) of a JWT, read without checking its
 * signature (only the server can), or null when the token has none.  For
 * planning a refreshToken() before the server closes the socket with 4401.
 */
export function tokenExpiry(token) {
  try {
    const part = String(token).split(".")[1];
    if (!part) return null;
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    const text = new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
    const exp = JSON.parse(text).exp;
    return Number.isFinite(exp) ? exp : null;
  } catch {
    return null;
  }
}

// The websocket's readyState of an open socket (WebSocket.OPEN).
const OPEN = 1;

/**
 * Applies one canonical update to a merged order state, as the server's
 * script does: once the status is terminal the state holds no location.
 */
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
  if (isTerminal(o.status)) delete o.location;
  return o;
}

// A snapshot's state, held to the same rule (a server older than the rule
// may still send a location after delivery).
function snapshotState(state) {
  if (!state || typeof state !== "object") return null;
  if (!isTerminal(state.status) || !("location" in state)) return state;
  const o = { ...state };
  delete o.location;
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
    this.tokenExpiresAt = this.token ? tokenExpiry(this.token) : null;
    this.attempt = 0;
    this.ws = null;
    this.timer = null;
    this.stopped = true;
    // The open socket's tokens: the one its URL carried or the server last
    // refreshed it to (taken), and the refreshes sent and not yet answered.
    this.sock = null;
    // The close code that stopped the client (null: stop(), or not stopped).
    this.stopCode = null;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.stopCode = null;
    this._connect();
  }

  /**
   * Gives the client a new token without dropping the socket: on an open
   * socket it sends {"type":"refresh","token":T} and returns true; the
   * server's {"type":"refreshed"} answer becomes a "refreshed" event, a
   * refusal closes the socket (4401/4403, the "connection" event says so).
   * Otherwise it returns false: the token goes with the next connect (and
   * as a refresh once a connecting socket opens), and a client stopped by
   * a 4401 or 4403 connects again with it, resuming from its cursor.
   */
  refreshToken(token) {
    if (typeof token !== "string" || !token) throw new TypeError("TrackingClient.refreshToken: a token string is required");
    this.token = token;
    this.tokenExpiresAt = tokenExpiry(token);
    if (this.ws && this.ws.readyState === OPEN) {
      this._sendRefresh();
      return true;
    }
    if (this.stopped && (this.stopCode === 4401 || this.stopCode === 4403)) {
      this.attempt = 0;
      this.start();
    }
    return false;
  }

  _sendRefresh() {
    const sock = this.sock;
    if (sock.taken === this.token || sock.sent.includes(this.token)) return;
    this.ws.send(JSON.stringify({ type: "refresh", token: this.token }));
    sock.sent.push(this.token);
  }

  stop() {
    this.stopped = true;
    this.stopCode = null;
    clearTimeout(this.timer);
    this.timer = null;
    this.sock = null;
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
    const sock = { taken: this.token, sent: [] };
    this.sock = sock;
    // A token given while the socket was connecting goes as a refresh.
    ws.onopen = () => {
      if (this.ws === ws && this.token && this.token !== sock.taken) this._sendRefresh();
    };
    ws.onmessage = (ev) => {
      if (this.ws === ws) this._frame(ev.data);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.sock = null;
      this._closed(ev.code, ev.reason, sock);
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
      this.order = snapshotState(f.state);
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
    } else if (f.type === "resumed") {
      // The resume is complete: every missed update came before this frame
      // (none, when nothing was missed).  Live and gapless; nothing changed.
      if (f.cursor) this.cursor = f.cursor;
      this._live();
    } else if (f.type === "refreshed") {
      // Answers come in the order the refreshes went; the socket now runs
      // on that token until exp.
      const sock = this.sock;
      if (sock) sock.taken = sock.sent.length ? sock.sent.shift() : this.token;
      const exp = Number.isFinite(f.exp) ? f.exp : null;
      if (sock && sock.taken === this.token) this.tokenExpiresAt = exp;
      this.dispatchEvent(new CustomEvent("refreshed", {
        detail: { orderId: f.order_id ?? this.orderId, exp },
      }));
    }
  }

  // The first frame of a connection (a snapshot, a missed update after
  // ?since=, or the resumed frame that ends the replay) makes it live.
  _live() {
    if (this.state === "live") return;
    this.attempt = 0;
    this._setState("live", "Live.", null);
  }

  _closed(code, reason, sock) {
    if (this.stopped) return;
    const hadToken = !!this.token;
    let { state, retry, perClient } = closeAction(code, reason, hadToken);
    let message = closeMessage(code, reason, hadToken);
    // A token refusal of a socket that never ran on the client's newest
    // token (given while it connected, or refused as a refresh): that token
    // gets its own connect, once; its refusal there is final.
    if ((code === 4401 || code === 4403) && this.token && sock && sock.taken !== this.token) {
      retry = true;
      message = "Reconnecting with the new tracking link…";
      this.attempt = 0;
    }
    if (!retry) {
      this.stopped = true;
      this.stopCode = code;
      this._setState(state, message, code);
      return;
    }
    // Half jitter (ceiling/2 to ceiling) over an exponential ceiling; a busy
    // server gets a longer wait, a full per-address limit a long one.
    const base = perClient ? Math.max(this.minBackoffMs, 2 * PER_CLIENT_RETRY_MS)
      : code === 1013 ? this.minBackoffMs * 4 : this.minBackoffMs;
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
