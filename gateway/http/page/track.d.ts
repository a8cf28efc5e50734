// track.d.ts - the types of track.js, trackgate's tracking client.
//
// The wire format is proto/README.md and proto/schema/*.schema.json; the API is
// gateway/http/page/README.md ("The client as a package").  These types need
// the DOM library (EventTarget, CustomEvent, MessageEvent, CloseEvent): a
// browser, a worker, or Node 20 with "lib": ["ES2020", "DOM"].

/** The order statuses of the canonical update, in the order an order goes through them. */
export type Status =
  | "created"
  | "courier_assigned"
  | "en_route_to_pickup"
  | "at_pickup"
  | "picked_up"
  | "en_route_to_dropoff"
  | "at_dropoff"
  | "delivered"
  | "cancelled"
  | "returned"
  | "failed";

/** The eleven statuses, in order. */
export declare const STATUSES: readonly Status[];

/** True for delivered, cancelled, returned and failed: the order has ended. */
export declare function isTerminal(status: string | null | undefined): boolean;

/**
 * The first reconnect wait after a 1008 "too many connections from your
 * address" is between this and twice this (ms).
 */
export declare const PER_CLIENT_RETRY_MS: number;

/**
 * A sentence for a person about a websocket close: the code, the server's
 * reason, and (false) that the client sent no token.
 */
export declare function closeMessage(code: number, reason?: string | null, hadToken?: boolean): string;

/**
 * The exp claim (unix seconds) of a JWT, read without checking the signature;
 * null when it has none or is not a JWT.
 */
export declare function tokenExpiry(token: string): number | null;

/** A courier position. Extra members of the update are kept. */
export interface Location {
  lat: number;
  lng: number;
  heading_deg?: number | null;
  speed_mps?: number | null;
  accuracy_m?: number | null;
  /** In the merged state: the ts of the update that set it. */
  ts?: number;
  [extra: string]: unknown;
}

export interface Point {
  lat: number;
  lng: number;
  /** In the merged state: the ts of the update that set it. */
  ts?: number;
}

export interface Places {
  pickup?: Point | null;
  dropoff?: Point | null;
}

/** Estimated times of arrival, ms since the epoch. */
export interface Eta {
  pickup?: number | null;
  dropoff?: number | null;
  /** In the merged state: the ts of the update that set it. */
  ts?: number;
}

export interface Courier {
  id?: string | null;
  name?: string | null;
  vehicle?: string | null;
}

/** The canonical update v1 (proto/schema/update.schema.json). */
export interface Update {
  v: 1;
  order_id: string;
  provider: string;
  /** ms since the epoch */
  ts: number;
  event_id?: string | null;
  location?: Location | null;
  status?: Status | null;
  courier?: Courier | null;
  eta?: Eta | null;
  places?: Places | null;
  [extra: string]: unknown;
}

/** The merged state of an order (proto/schema/state.schema.json). */
export interface OrderState {
  order_id: string;
  provider?: string | null;
  status?: Status | null;
  status_ts?: number | null;
  courier_ts?: number;
  location?: Location | null;
  courier?: Courier | null;
  eta?: Eta | null;
  places?: Places | null;
  location_ts?: number;
  /** ms since the epoch of the newest update applied */
  updated_at: number;
  [extra: string]: unknown;
}

/**
 * Applies one update to a merged state as the server's script does (a null
 * order starts a new one); a terminal status leaves no location.  Returns a
 * new object: order is not changed.
 */
export declare function applyUpdate(order: OrderState | null, update: Update): OrderState;

/** A cursor: a Redis stream id MS-SEQ, e.g. "1795297492699-0". */
export type Cursor = string;

/** The frames the server sends (proto/schema/*-frame.schema.json, snapshot.schema.json). */
export interface SnapshotFrame {
  type: "snapshot";
  order_id: string;
  state: OrderState | null;
  cursor: Cursor | null;
  reset?: true;
}
export interface UpdateFrame {
  type: "update";
  order_id: string;
  update: Update;
  cursor: Cursor;
}
export interface ResumedFrame {
  type: "resumed";
  order_id: string;
  cursor: Cursor;
  replayed: number;
}
export interface RefreshedFrame {
  type: "refreshed";
  order_id: string;
  /** unix seconds */
  exp: number;
}
export interface ErrorFrame {
  type: "error";
  error: string;
  message: string;
}
export type ServerFrame = SnapshotFrame | UpdateFrame | ResumedFrame | RefreshedFrame | ErrorFrame;

/** The one message a client sends (proto/schema/refresh-message.schema.json). */
export interface RefreshMessage {
  type: "refresh";
  token: string;
}

/**
 * Where the client is: connecting (the first connect), live (a frame came:
 * up to date), reconnecting (a retry is planned, retryInMs), and the states
 * it stops in: expired (4401), forbidden (4403), failed (4400, 4404, 1008 for
 * an origin, 4401 without a token, other 4xxx), stopped (stop()).
 */
export type ConnectionState = "connecting" | "live" | "reconnecting" | "expired" | "forbidden" | "failed" | "stopped";

export interface ConnectionDetail {
  state: ConnectionState;
  /** A sentence for a person. */
  message: string;
  /** The websocket close code that caused it, or null. */
  code: number | null;
  /** The wait before the next connect, when one is planned; else null. */
  retryInMs: number | null;
}

export interface OrderDetail {
  /** The merged state; null for an order nothing was posted for yet. */
  order: OrderState | null;
  /** The update that changed it; null for a snapshot. */
  update: Update | null;
  /** True for a snapshot that replaced the state because a resume was not possible. */
  reset: boolean;
}

export interface RefreshedDetail {
  orderId: string;
  /** The new token's expiry, unix seconds (null if the server sent none). */
  exp: number | null;
}

export interface TrackingClientEventMap {
  connection: CustomEvent<ConnectionDetail>;
  order: CustomEvent<OrderDetail>;
  refreshed: CustomEvent<RefreshedDetail>;
}

/** What the client needs of a websocket: the browser's WebSocket is one. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: Event) => unknown) | null;
  onmessage: ((ev: MessageEvent) => unknown) | null;
  onclose: ((ev: CloseEvent) => unknown) | null;
  onerror: ((ev: Event) => unknown) | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface TrackingClientOptions {
  /** The order to watch: 1 to 128 of [A-Za-z0-9._~-]. */
  orderId: string;
  /** The tracking link's token (a JWT), sent as ?token=. */
  token?: string | null;
  /** The websocket URL without a query; default /v1/track/{orderId} on the trackgated the module came from. */
  url?: string;
  /** Reconnect waits (ms): default 500 and 30000. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Another websocket implementation (tests, Node); default globalThis.WebSocket. */
  WebSocket?: WebSocketConstructor;
}

export declare class TrackingClient extends EventTarget {
  constructor(options: TrackingClientOptions);
  readonly orderId: string;
  readonly url: string;
  /** The token the next connect or refresh sends. */
  readonly token: string | null;
  /** The exp of that token (unix seconds): from the JWT, then from each refreshed frame. */
  readonly tokenExpiresAt: number | null;
  /** The merged state; null until the first snapshot. */
  readonly order: OrderState | null;
  /** The cursor of the last frame received: a reconnect resumes after it (?since=). */
  readonly cursor: Cursor | null;
  readonly state: ConnectionState;
  readonly minBackoffMs: number;
  readonly maxBackoffMs: number;

  /** Connects (nothing if already started). A client that stopped resumes from its cursor. */
  start(): void;
  /** Closes the socket (1000) and cancels any reconnect; the state becomes "stopped". */
  stop(): void;
  /**
   * A new token, without dropping the socket: true when sent now as
   * {"type":"refresh","token":T} on the open socket; false when it waits for
   * the socket to open or for the next connect (a client stopped by 4401 or
   * 4403 connects again with it).  Throws a TypeError for an empty token.
   */
  refreshToken(token: string): boolean;

  addEventListener<K extends keyof TrackingClientEventMap>(
    type: K,
    listener: (this: TrackingClient, ev: TrackingClientEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof TrackingClientEventMap>(
    type: K,
    listener: (this: TrackingClient, ev: TrackingClientEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
}
