// examples/strict.ts - a merchant's page using the tracking client, type-checked
// with every strict option (examples/tsconfig.json) against track.d.ts as a
// consumer sees it: imported by the package's name, through "exports".
// ctest client.types runs `tsc -p examples/tsconfig.json`; nothing is emitted.
// The @ts-expect-error lines are misuses the types must refuse.

import {
  STATUSES,
  TrackingClient,
  applyUpdate,
  closeMessage,
  isTerminal,
  tokenExpiry,
  PER_CLIENT_RETRY_MS,
} from "@trackgate/client";
import type {
  ConnectionState,
  OrderState,
  RefreshMessage,
  ServerFrame,
  Status,
  Update,
  WebSocketConstructor,
  WebSocketLike,
} from "@trackgate/client";

declare function mintToken(orderId: string): Promise<string>;
declare const banner: { dataset: { state?: string }; textContent: string | null };

const client = new TrackingClient({ orderId: "ord-8f3a2c", token: "eyJhbGciOi.eyJleHAiOjF9.sig" });

client.addEventListener("connection", (e) => {
  const state: ConnectionState = e.detail.state;
  banner.dataset.state = state;
  banner.textContent = e.detail.message;
  const code: number | null = e.detail.code;
  const wait: number | null = e.detail.retryInMs;
  if (state === "expired" && code === 4401) void refreshSoon(0);
  if (wait !== null) console.log(`retry in ${wait} ms`);
  // @ts-expect-error "online" is not a connection state
  if (state === "online") console.log("never");
});

client.addEventListener("order", (e) => {
  const order: OrderState | null = e.detail.order;
  const update: Update | null = e.detail.update;
  const reset: boolean = e.detail.reset;
  if (!order) return;
  const status: Status | null | undefined = order.status;
  const where = order.location ? `${order.location.lat},${order.location.lng}` : "hidden";
  const dropoff = order.eta?.dropoff ?? null;
  console.log(status, where, dropoff, update?.ts, reset, order.updated_at);
  // @ts-expect-error lat is a number
  const bad: string = order.location?.lat;
  void bad;
});

client.addEventListener("refreshed", (e) => {
  const exp: number | null = e.detail.exp;
  const orderId: string = e.detail.orderId;
  console.log(orderId, exp);
});

// Refresh a minute before the token expires, on the open socket.
async function refreshSoon(leadS: number): Promise<void> {
  const token = await mintToken(client.orderId);
  const sent: boolean = client.refreshToken(token);
  const exp = tokenExpiry(token);
  if (exp !== null) setTimeout(() => void refreshSoon(60), (exp - leadS) * 1000 - Date.now());
  console.log(sent ? "sent on the open socket" : "goes with the next connect");
}

// @ts-expect-error a token is a string
client.refreshToken(42);

client.start();
const cursor: string | null = client.cursor;
const exp: number | null = client.tokenExpiresAt;
console.log(cursor, exp, client.state, client.url);
client.stop();

// @ts-expect-error orderId is required
new TrackingClient({ token: "t" });
// @ts-expect-error readonly: the client owns its state
client.cursor = "1-0";

// The browser's WebSocket is a WebSocketConstructor; so is a test double.
const browser: WebSocketConstructor = WebSocket;
class FakeSocket implements WebSocketLike {
  readyState = 0;
  sent: string[] = [];
  onopen: ((ev: Event) => unknown) | null = null;
  onmessage: ((ev: MessageEvent) => unknown) | null = null;
  onclose: ((ev: CloseEvent) => unknown) | null = null;
  onerror: ((ev: Event) => unknown) | null = null;
  constructor(readonly url: string) {}
  send(data: string): void {
    this.sent.push(data);
  }
  close(code?: number, reason?: string): void {
    console.log("close", code, reason);
  }
}
const tested = new TrackingClient({
  orderId: "A1",
  url: "wss://track.example/v1/track/A1",
  minBackoffMs: 100,
  maxBackoffMs: 1000,
  WebSocket: FakeSocket,
});
console.log(browser, tested);

// The wire types.
const refresh: RefreshMessage = { type: "refresh", token: "eyJ..." };
function handle(f: ServerFrame): string {
  switch (f.type) {
    case "snapshot":
      return `${f.order_id} ${f.cursor ?? "no cursor"} ${f.reset === true}`;
    case "update":
      return f.update.provider;
    case "resumed":
      return `${f.replayed}`;
    case "refreshed":
      return `${f.exp}`;
    case "error":
      return f.error;
  }
}
console.log(JSON.stringify(refresh), handle({ type: "refreshed", order_id: "A1", exp: 1 }));

const merged: OrderState = applyUpdate(null, {
  v: 1,
  order_id: "A1",
  provider: "acme",
  ts: 1763700000000,
  status: "delivered",
});
const firstStatus: Status | undefined = STATUSES[0];
console.log(merged, isTerminal(merged.status), firstStatus, PER_CLIENT_RETRY_MS);
console.log(closeMessage(4401, "token expired", true), closeMessage(1006));
// @ts-expect-error "shipped" is not a status
applyUpdate(merged, { v: 1, order_id: "A1", provider: "acme", ts: 1, status: "shipped" });
