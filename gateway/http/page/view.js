// view.js - trackgate's tracking page: a map, the status, the ETA, the timeline.
//
// The page is /t/{ORDER_ID}?token=T.  The data comes from track.js (the
// TrackingClient); this file only draws it.  The map is a canvas in Web
// Mercator: pickup, dropoff, the courier's trail and the courier, who moves
// smoothly between fixes, with a scale bar.  When trackgated is configured
// with page-tile-url, map tiles are drawn under it (the template comes in
// the page's <meta name="trackgate-tiles">).
//
// A tile that fails to load leaves the plain grid in its square, never a
// blank map.
//
// The connection pill says "Live" only while the newest position is fresh:
// once it is older than STALE_AFTER_MS it says how old it is instead
// ("Position from 4 min ago"), and once eta.dropoff has passed on an order
// still under way the ETA line says it is running late.  A timer redraws
// both every second, frames or not.
//
// For people who cannot see the map, the canvas has a text alternative
// (aria-label) saying where the courier is relative to the dropoff, and the
// status sentence is a live region.  The canvas also carries data-courier
// ("lat,lng" of the marker as drawn, absent when no courier is shown), which
// tests read.

import { TrackingClient, STATUSES, isTerminal } from "./track.js";

const TILE = 256;
const MAX_ZOOM = 18;
const TRAIL_MAX = 600;
const PAD = 36; // CSS px kept free around what the map must show
const TILE_RETRY_MS = 30000; // a failed tile is asked for again after this

// A courier position older than this (its ts to the browser's clock) is shown
// with its age, and the connection is no longer called "Live": the link is up
// but no fix has come for a while (a phone without coverage, a provider
// outage).  Two minutes: couriers' apps send a fix every few seconds.
const STALE_AFTER_MS = 2 * 60 * 1000;

const STATUS_TEXT = {
  created: "Your order has been created.",
  courier_assigned: "A courier has been assigned to your order.",
  en_route_to_pickup: "The courier is on the way to pick up your order.",
  at_pickup: "The courier is picking up your order.",
  picked_up: "Your order has been picked up.",
  en_route_to_dropoff: "Your order is on its way to you.",
  at_dropoff: "The courier has arrived.",
  delivered: "Delivered. Enjoy!",
  cancelled: "This delivery was cancelled.",
  returned: "This delivery was returned to the sender.",
  failed: "This delivery could not be completed.",
};

// Timeline step -> the first status that completes it.
const STEPS = [
  ["assigned", "courier_assigned"],
  ["picked_up", "picked_up"],
  ["on_the_way", "en_route_to_dropoff"],
  ["delivered", "delivered"],
];

const $ = (id) => document.getElementById(id);

// --- projection: lat/lng <-> Web Mercator world units in [0, 1) -----------------

function project(lat, lng) {
  const s = Math.sin((Math.max(-85.0511, Math.min(85.0511, lat)) * Math.PI) / 180);
  return [(lng + 180) / 360, 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)];
}

function metresPerPixel(lat, zoom) {
  return (40075016.686 * Math.cos((lat * Math.PI) / 180)) / (TILE * 2 ** zoom);
}

function distanceM(a, b) {
  const r = Math.PI / 180;
  const dLat = (b[0] - a[0]) * r;
  const dLng = (b[1] - a[1]) * r;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a[0] * r) * Math.cos(b[0] * r) * Math.sin(dLng / 2) ** 2;
  return 2 * 6371008.8 * Math.asin(Math.min(1, Math.sqrt(h)));
}

function bearingDeg(a, b) {
  const r = Math.PI / 180;
  const y = Math.sin((b[1] - a[1]) * r) * Math.cos(b[0] * r);
  const x = Math.cos(a[0] * r) * Math.sin(b[0] * r) - Math.sin(a[0] * r) * Math.cos(b[0] * r) * Math.cos((b[1] - a[1]) * r);
  return ((Math.atan2(y, x) / r) + 360) % 360;
}

const COMPASS = ["north", "north-east", "east", "south-east", "south", "south-west", "west", "north-west"];

// "45 s", "4 min", "2 h": how long ago, for a person.
function formatAge(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  const min = Math.floor(s / 60);
  return min < 120 ? `${min} min` : `${Math.floor(min / 60)} h`;
}

// Sets an element's text only when it changes: the live regions are redrawn
// every second and must not be announced again for nothing.
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function formatDistance(m) {
  if (m < 950) return `${Math.max(10, Math.round(m / 10) * 10)} m`;
  return `${(m / 1000).toFixed(m < 9500 ? 1 : 0)} km`;
}

// --- the map -------------------------------------------------------------------

class MapView {
  constructor(canvas, tileTemplate) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.tiles = tileTemplate || "";
    this.tileCache = new Map();
    this.view = null; // {x, y, z}: the centre in world units and the zoom
    this.places = {};
    this.trail = [];
    this.courier = null; // {from, to, start, dur, heading}: the marker's motion
    this.showCourier = false;
    this.frame = 0;
    this.size = [0, 0];
    new ResizeObserver(() => this.resize()).observe(canvas);
    this.resize();
  }

  resize() {
    const r = this.canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    if (r.width < 1 || r.height < 1) return;
    this.size = [r.width, r.height];
    this.canvas.width = Math.round(r.width * dpr);
    this.canvas.height = Math.round(r.height * dpr);
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    this.fit(true);
    this.draw();
  }

  setPlaces(places) {
    const next = {};
    if (places && places.pickup) next.pickup = [places.pickup.lat, places.pickup.lng];
    if (places && places.dropoff) next.dropoff = [places.dropoff.lat, places.dropoff.lng];
    const changed = JSON.stringify(next) !== JSON.stringify(this.places);
    this.places = next;
    if (changed) this.fit(true);
    this.schedule();
  }

  // A new fix: the marker glides from where it is drawn now to the fix, over
  // about the time since the previous fix (so it keeps moving between fixes).
  moveCourier(lat, lng, heading, now) {
    const to = [lat, lng];
    if (!this.courier) {
      this.courier = { from: to, to, start: now, dur: 0, heading, lastFix: now };
    } else {
      const from = this.courierAt(now);
      const dur = Math.max(200, Math.min(2500, now - this.courier.lastFix));
      this.courier = { from, to, start: now, dur, heading, lastFix: now };
    }
    const last = this.trail[this.trail.length - 1];
    if (!last || last[0] !== lat || last[1] !== lng) {
      this.trail.push(to);
      if (this.trail.length > TRAIL_MAX) this.trail.splice(0, this.trail.length - TRAIL_MAX);
    }
    this.fit(false);
    this.schedule();
  }

  setCourierVisible(visible) {
    if (this.showCourier === visible) return;
    this.showCourier = visible;
    this.fit(true);
    this.schedule();
  }

  courierAt(now) {
    const c = this.courier;
    if (!c) return null;
    const f = c.dur > 0 ? Math.min(1, (now - c.start) / c.dur) : 1;
    return [c.from[0] + (c.to[0] - c.from[0]) * f, c.from[1] + (c.to[1] - c.from[1]) * f];
  }

  // The points the view must show.
  points() {
    const pts = [];
    if (this.places.pickup) pts.push(this.places.pickup);
    if (this.places.dropoff) pts.push(this.places.dropoff);
    if (this.showCourier && this.courier) pts.push(this.courier.to, ...this.trail.slice(-50));
    return pts;
  }

  // Picks centre and zoom so every point is inside the padded canvas.  Unless
  // forced, the view only changes when the courier's next fix would leave it,
  // so the map does not jitter with every fix.
  fit(force) {
    const [w, h] = this.size;
    const pts = this.points();
    if (!w || !pts.length) return;
    if (!force && this.view && this.showCourier && this.courier) {
      const [px, py] = this.toScreen(this.courier.to);
      if (px >= PAD && py >= PAD && px <= w - PAD && py <= h - PAD) return;
    }
    let minX = 1, minY = 1, maxX = 0, maxY = 0;
    for (const p of pts) {
      const [x, y] = project(p[0], p[1]);
      minX = Math.min(minX, x); maxX = Math.max(maxX, x);
      minY = Math.min(minY, y); maxY = Math.max(maxY, y);
    }
    const spanX = Math.max(maxX - minX, 1e-9);
    const spanY = Math.max(maxY - minY, 1e-9);
    let z = Math.log2(Math.min((w - 2 * PAD) / (spanX * TILE), (h - 2 * PAD) / (spanY * TILE)));
    z = Math.max(2, Math.min(pts.length > 1 ? MAX_ZOOM : 16, z));
    if (this.tiles) z = Math.floor(z); // tiles are crisp at whole zooms only
    this.view = { x: (minX + maxX) / 2, y: (minY + maxY) / 2, z };
  }

  toScreen(p) {
    const [x, y] = project(p[0], p[1]);
    const scale = TILE * 2 ** this.view.z;
    return [(x - this.view.x) * scale + this.size[0] / 2, (y - this.view.y) * scale + this.size[1] / 2];
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame((t) => this.tick(t));
  }

  tick(now) {
    this.frame = 0;
    this.draw(now);
    const c = this.courier;
    if (c && this.showCourier && now - c.start < c.dur) this.schedule();
  }

  draw(now = performance.now()) {
    const { ctx } = this;
    const [w, h] = this.size;
    if (!w) return;
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = "#e9edf1";
    ctx.fillRect(0, 0, w, h);
    if (!this.view) {
      this.canvas.removeAttribute("data-courier");
      return;
    }
    if (this.tiles) this.drawTiles(now);
    else this.drawGrid();
    if (this.showCourier && this.trail.length > 1) {
      ctx.beginPath();
      this.trail.forEach((p, i) => {
        const [x, y] = this.toScreen(p);
        if (i) ctx.lineTo(x, y);
        else ctx.moveTo(x, y);
      });
      const head = this.courierAt(now);
      if (head) ctx.lineTo(...this.toScreen(head));
      ctx.strokeStyle = "rgba(232, 89, 12, .55)";
      ctx.lineWidth = 4;
      ctx.lineJoin = ctx.lineCap = "round";
      ctx.stroke();
    }
    if (this.places.pickup) this.drawPlace(this.places.pickup, "#1c7ed6", "P");
    if (this.places.dropoff) this.drawPlace(this.places.dropoff, "#2b8a3e", "D");
    if (this.showCourier && this.courier) {
      const p = this.courierAt(now);
      this.drawCourier(p, this.courier.heading);
      this.canvas.dataset.courier = `${p[0].toFixed(6)},${p[1].toFixed(6)}`;
    } else {
      this.canvas.removeAttribute("data-courier");
    }
    this.drawScale();
  }

  drawGrid() {
    // A plain map: a light grid of 100 m, 1 km ... squares, whichever is 40..400 px.
    const { ctx } = this;
    const [w, h] = this.size;
    const lat = this.centreLat();
    const mpp = metresPerPixel(lat, this.view.z);
    let step = 50;
    for (let i = 0; step / mpp < 60; i++) step *= i % 3 === 1 ? 2.5 : 2; // 50, 100, 250, 500, 1000, ...
    const px = step / mpp;
    const [ox, oy] = this.toScreen([0, 0]); // grid anchored to a fixed point
    ctx.strokeStyle = "#d6dce2";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let x = ((ox % px) + px) % px; x < w; x += px) { ctx.moveTo(x, 0); ctx.lineTo(x, h); }
    for (let y = ((oy % px) + px) % px; y < h; y += px) { ctx.moveTo(0, y); ctx.lineTo(w, y); }
    ctx.stroke();
  }

  // Draws the tiles that have loaded, and the grid in every square whose tile
  // has not (still loading, failed, or off the world's edge), so a tile server
  // that is down or refuses us leaves the plain map, not a blank one.
  drawTiles(now) {
    const { ctx } = this;
    const [w, h] = this.size;
    const z = Math.round(this.view.z);
    const n = 2 ** z;
    const scale = TILE * n;
    const left = this.view.x * scale - w / 2;
    const top = this.view.y * scale - h / 2;
    const missing = [];
    for (let ty = Math.floor(top / TILE); ty * TILE < top + h; ty++) {
      for (let tx = Math.floor(left / TILE); tx * TILE < left + w; tx++) {
        const x = tx * TILE - left, y = ty * TILE - top;
        const img = ty >= 0 && ty < n ? this.tile(z, ((tx % n) + n) % n, ty, now) : null;
        if (img && img.complete && img.naturalWidth) ctx.drawImage(img, x, y, TILE, TILE);
        else missing.push([x, y]);
      }
    }
    if (!missing.length) return;
    ctx.save();
    ctx.beginPath();
    for (const [x, y] of missing) ctx.rect(x, y, TILE, TILE);
    ctx.clip();
    this.drawGrid();
    ctx.restore();
  }

  tile(z, x, y, now) {
    const key = `${z}/${x}/${y}`;
    let img = this.tileCache.get(key);
    if (img && img.failedAt !== undefined && now - img.failedAt > TILE_RETRY_MS) {
      this.tileCache.delete(key);
      img = null;
    }
    if (!img) {
      if (this.tileCache.size > 300) this.tileCache.delete(this.tileCache.keys().next().value);
      img = new Image();
      img.decoding = "async";
      img.alt = "";
      img.onload = () => this.schedule();
      img.onerror = () => { img.failedAt = performance.now(); }; // its square keeps the grid
      img.src = this.tiles.replace("{z}", z).replace("{x}", x).replace("{y}", y);
      this.tileCache.set(key, img);
    }
    return img;
  }

  drawPlace(p, colour, letter) {
    const { ctx } = this;
    const [x, y] = this.toScreen(p);
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.arc(x, y - 20, 11, Math.PI * 0.75, Math.PI * 2.25);
    ctx.closePath();
    ctx.fillStyle = colour;
    ctx.fill();
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 2;
    ctx.stroke();
    ctx.fillStyle = "#fff";
    ctx.font = "bold 12px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(letter, x, y - 20);
  }

  drawCourier(p, heading) {
    const { ctx } = this;
    const [x, y] = this.toScreen(p);
    if (typeof heading === "number") {
      // A wedge ahead of the dot, pointing where the courier is heading.
      const a = (heading * Math.PI) / 180;
      const at = (r, da) => [x + Math.sin(a + da) * r, y - Math.cos(a + da) * r];
      ctx.beginPath();
      ctx.moveTo(...at(21, 0));
      ctx.lineTo(...at(11, 0.6));
      ctx.lineTo(...at(11, -0.6));
      ctx.closePath();
      ctx.fillStyle = "#e8590c";
      ctx.fill();
    }
    ctx.beginPath();
    ctx.arc(x, y, 9, 0, Math.PI * 2);
    ctx.fillStyle = "#e8590c";
    ctx.fill();
    ctx.lineWidth = 3;
    ctx.strokeStyle = "#fff";
    ctx.stroke();
  }

  drawScale() {
    const { ctx } = this;
    const [, h] = this.size;
    const mpp = metresPerPixel(this.centreLat(), this.view.z);
    let metres = 1;
    for (const m of [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6]) {
      if (m / mpp <= 110) metres = m;
    }
    const len = metres / mpp;
    const x = 10, y = h - 12;
    ctx.strokeStyle = "#333";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(x, y - 5); ctx.lineTo(x, y); ctx.lineTo(x + len, y); ctx.lineTo(x + len, y - 5);
    ctx.stroke();
    ctx.fillStyle = "#333";
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "left";
    ctx.textBaseline = "bottom";
    ctx.fillText(metres >= 1000 ? `${metres / 1000} km` : `${metres} m`, x + 4, y - 3);
  }

  centreLat() {
    const y = this.view.y;
    return (Math.atan(Math.sinh(Math.PI * (1 - 2 * y))) * 180) / Math.PI;
  }
}

// --- the page ------------------------------------------------------------------

function pageParams() {
  const parts = location.pathname.split("/").filter(Boolean);
  const orderId = decodeURIComponent(parts[parts.length - 1] || "");
  const tokens = new URLSearchParams(location.search).getAll("token");
  const token = tokens[0] || null;
  // The websocket lives at /v1/track/{ID} beside /t/{ID}, behind any path prefix.
  const ws = new URL(`../v1/track/${encodeURIComponent(orderId)}`, location.href);
  ws.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  ws.search = "";
  return { orderId, token, tokens: tokens.length, url: ws.href };
}

function meta(name) {
  const m = document.querySelector(`meta[name="${name}"]`);
  return m ? m.content : "";
}

function trailKey(orderId) {
  return `trackgate-trail:${orderId}`;
}

function main() {
  const { orderId, token, tokens, url } = pageParams();
  const canvas = $("map");
  const tiles = meta("trackgate-tiles");
  const map = new MapView(canvas, tiles);
  const attribution = meta("trackgate-attribution");
  if (tiles && attribution) {
    $("attribution").textContent = attribution;
    $("attribution").hidden = false;
  }
  document.title = `Track your delivery · ${orderId}`;

  // The trail survives a reload of the page (per tab).
  try {
    const saved = JSON.parse(sessionStorage.getItem(trailKey(orderId)) || "[]");
    if (Array.isArray(saved)) map.trail = saved.filter((p) => Array.isArray(p) && p.length === 2).slice(-TRAIL_MAX);
  } catch { /* storage unavailable: no saved trail */ }

  let order = null;
  let lastStatus = null;
  let connState = "connecting";
  let connMessage = "Connecting…";

  // A link with two tokens was put together wrongly: which one was meant is
  // not for the page to guess (the server refuses a repeated parameter too).
  const client = tokens > 1 ? null : new TrackingClient({ orderId, token, url });

  // How old the courier's newest shown position is, in ms, or null when no
  // courier is shown (none yet, withheld, or after a terminal status).
  function positionAge(now) {
    const loc = order && order.location;
    if (!loc || !map.showCourier || typeof loc.ts !== "number") return null;
    return Math.max(0, now - loc.ts);
  }

  function renderConn() {
    const el = $("conn");
    let state = connState;
    let text = connMessage;
    const age = positionAge(Date.now());
    if (state === "live" && order && order.status === "delivered") {
      state = "delivered";
      text = "Delivered.";
    } else if (state === "live" && age !== null && age >= STALE_AFTER_MS) {
      // Connected, but the position is not fresh: not a green "Live".
      state = "stale";
      text = `Position from ${formatAge(age)} ago`;
    } else if (state === "live") {
      text = "Live";
    }
    el.dataset.state = state;
    setText(el, text);
    // A link that will never work shows its sentence and nothing else.
    document.body.classList.toggle("refused", ["expired", "forbidden", "failed"].includes(state) && !order);
  }

  function renderStatus() {
    const st = order && order.status;
    const el = $("status-text");
    el.textContent = st ? STATUS_TEXT[st] || st : "Waiting for the first update…";
    el.dataset.status = st || "";
    const rank = st ? STATUSES.indexOf(st) : -1;
    const ended = st && isTerminal(st) && st !== "delivered";
    let current = null; // the last step reached
    for (const [step, first] of STEPS) {
      const li = document.querySelector(`#timeline li[data-step="${step}"]`);
      const done = !ended && rank >= STATUSES.indexOf(first) && rank >= 0;
      li.classList.toggle("done", done);
      li.removeAttribute("aria-current");
      if (done) current = li;
    }
    if (current) current.setAttribute("aria-current", "step");
    const c = order && order.courier;
    const courierEl = $("courier");
    if (c && c.name && !(st && isTerminal(st))) {
      courierEl.textContent = `Your courier: ${c.name}${c.vehicle ? ` (${c.vehicle.replace(/_/g, " ")})` : ""}`;
      courierEl.hidden = false;
    } else {
      courierEl.hidden = true;
    }
  }

  function renderClock() {
    const now = Date.now();
    const etaEl = $("eta");
    const st = order && order.status;
    const eta = order && order.eta && order.eta.dropoff;
    // At the door ("The courier has arrived.") or after the end, no ETA.
    if (eta && !(st && (isTerminal(st) || st === "at_dropoff"))) {
      const left = Math.round((eta - now) / 1000);
      const at = new Date(eta).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      setText(etaEl, left <= 0 ? `Running late: it was expected at ${at}`
        : left < 60 ? `Arriving in under a minute (${at})`
          : `Arriving in about ${Math.round(left / 60)} min (${at})`);
      etaEl.dataset.seconds = String(Math.max(0, left));
      etaEl.dataset.late = String(left <= 0);
      etaEl.hidden = false;
    } else {
      etaEl.hidden = true;
    }
    const upd = $("updated");
    if (order && order.updated_at) {
      const ago = Math.max(0, Math.round((now - order.updated_at) / 1000));
      upd.textContent = ago < 5 ? "Updated just now" : ago < 120 ? `Updated ${ago} s ago` : `Updated ${Math.round(ago / 60)} min ago`;
      upd.hidden = false;
    } else {
      upd.hidden = true;
    }
  }

  function describeMap() {
    const parts = [];
    const loc = map.showCourier && map.courier ? map.courier.to : null;
    const drop = map.places.dropoff;
    if (loc && drop) {
      const d = distanceM(loc, drop);
      parts.push(d < 30 ? "The courier is at the dropoff."
        : `The courier is ${formatDistance(d)} ${COMPASS[Math.round(bearingDeg(drop, loc) / 45) % 8]} of the dropoff.`);
    } else if (loc) {
      parts.push(`The courier is at ${loc[0].toFixed(5)}, ${loc[1].toFixed(5)}.`);
    } else if (order && isTerminal(order.status)) {
      parts.push("The courier's position is no longer shown.");
    } else {
      parts.push("The courier's position is not known yet.");
    }
    if (map.places.pickup) parts.push("The pickup is marked P.");
    if (drop) parts.push("The dropoff is marked D.");
    const text = `Map: ${parts.join(" ")}`;
    canvas.setAttribute("aria-label", text);
    $("map-text").textContent = text;
  }

  if (!client) {
    connState = "failed";
    connMessage = "This tracking link is not valid: it carries more than one token.";
    renderConn();
    globalThis.trackgate = { client, map };
    return;
  }

  client.addEventListener("connection", (e) => {
    connState = e.detail.state;
    connMessage = e.detail.message;
    renderConn();
  });

  client.addEventListener("order", (e) => {
    const prev = order;
    order = e.detail.order;
    const st = order && order.status;
    // A new delivery of the same order (after a terminal status): a new trail.
    if (lastStatus && isTerminal(lastStatus) && st && !isTerminal(st)) map.trail = [];
    lastStatus = st;
    map.setPlaces(order && order.places);
    const loc = order && order.location;
    if (loc && (!prev || !prev.location || prev.location.ts !== loc.ts || e.detail.update === null)) {
      map.moveCourier(loc.lat, loc.lng, loc.heading_deg, performance.now());
    }
    map.setCourierVisible(!!loc && !(st && isTerminal(st)));
    try {
      sessionStorage.setItem(trailKey(orderId), JSON.stringify(map.trail));
    } catch { /* full or unavailable */ }
    renderStatus();
    renderConn();
    renderClock();
    describeMap();
  });

  // Time alone makes a position stale and an ETA late: redraw every second.
  setInterval(() => {
    renderClock();
    renderConn();
  }, 1000);
  // Leaving the page closes the socket; coming back from the back/forward cache
  // reconnects and resumes from the cursor.
  addEventListener("pagehide", () => client.stop());
  addEventListener("pageshow", (e) => { if (e.persisted) client.start(); });
  client.start();
  globalThis.trackgate = { client, map };
}

main();
