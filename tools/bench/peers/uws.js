// uws.js - a minimal tracking gateway on uWebSockets.js + ioredis, written for
// trackgate's benchmark (tools/bench/README.md), with trackgate's contract:
//   ws /v1/track/{ID}: a snapshot frame from HMGET trk:{ID}:state, then every
//   message of channel trk:{ID} forwarded as is.  One SUBSCRIBE per order;
//   uWS's own topics fan a message out to the order's sockets in C++.
//   uWS pings idle sockets itself (idleTimeout, sendPingsAutomatically).
//
//   node uws.js --listen 127.0.0.1:8082 --redis /path/redis.sock [--ping 30]
"use strict";
const uWS = require("@trufflesuite/uws-js-unofficial");
const Redis = require("ioredis");

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) =>
  (v.startsWith("--") ? a.concat([[v.slice(2), all[i + 1]]]) : a), []));
const [host, port] = (args.listen || "127.0.0.1:8082").split(":");
const redisOpts = args.redis && args.redis.startsWith("/") ? { path: args.redis } : {};
const PING_S = Number(args.ping || 30);

const sub = new Redis(redisOpts);
const cmd = new Redis(redisOpts);
const counts = new Map(); // order id -> sockets watching it
const ID = /^[A-Za-z0-9._~-]{1,128}$/;
const app = uWS.App();

sub.on("messageBuffer", (channel, message) => {
  // The channel name is the topic.
  app.publish(channel.toString("latin1"), message, false);
});

app.ws("/v1/track/*", {
  compression: uWS.DISABLED,
  maxPayloadLength: 1024,
  idleTimeout: Math.min(960, Math.max(8, PING_S * 2)),
  sendPingsAutomatically: true,
  maxBackpressure: 256 * 1024,
  upgrade: (res, req, context) => {
    const id = req.getUrl().slice(10);
    if (!ID.test(id)) {
      res.writeStatus("404 Not Found").end();
      return;
    }
    res.upgrade({ id }, req.getHeader("sec-websocket-key"), req.getHeader("sec-websocket-protocol"),
      req.getHeader("sec-websocket-extensions"), context);
  },
  open: (ws) => {
    const { id } = ws.getUserData();
    const topic = `trk:{${id}}`;
    ws.subscribe(topic);
    const n = (counts.get(id) || 0) + 1;
    counts.set(id, n);
    if (n === 1) sub.subscribe(topic);
    cmd.hmget(`${topic}:state`, "state", "cursor").then(([state, cursor]) => {
      const data = ws.getUserData();
      if (data.closed) return;
      ws.send(`{"type":"snapshot","order_id":"${id}","state":${state || "null"},"cursor":${cursor ? `"${cursor}"` : "null"}}`);
    }, () => { if (!ws.getUserData().closed) ws.end(1011, "redis unavailable"); });
  },
  close: (ws) => {
    const data = ws.getUserData();
    data.closed = true;
    const n = counts.get(data.id) - 1;
    if (n === 0) {
      counts.delete(data.id);
      sub.unsubscribe(`trk:{${data.id}}`);
    } else {
      counts.set(data.id, n);
    }
  },
});
app.get("/healthz", (res) => res.writeHeader("content-type", "application/json").end('{"status":"ok"}'));
app.listen(host, Number(port), (ok) => {
  if (!ok) { console.error(`uws: cannot listen on ${host}:${port}`); process.exit(1); }
  console.log(`uws listening on ${host}:${port}`);
});
process.on("SIGTERM", () => process.exit(0));
