// node-ws.js - a minimal tracking gateway on Node.js ws + ioredis, written for
// trackgate's benchmark (tools/bench/README.md), with trackgate's contract:
//   ws /v1/track/{ID}: a snapshot frame from HMGET trk:{ID}:state, then every
//   message of channel trk:{ID} forwarded as is.  One SUBSCRIBE per order,
//   shared by its watchers; a ping to every socket each PING_S seconds.
// Written the way a competent Node developer would for production: no
// per-message JSON parsing, buffers sent once to many sockets.
//
//   node node-ws.js --listen 127.0.0.1:8081 --redis /path/redis.sock [--ping 30]
"use strict";
const http = require("http");
const { WebSocketServer } = require("ws");
const Redis = require("ioredis");

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) =>
  (v.startsWith("--") ? a.concat([[v.slice(2), all[i + 1]]]) : a), []));
const [host, port] = (args.listen || "127.0.0.1:8081").split(":");
const redisOpts = args.redis && args.redis.startsWith("/") ? { path: args.redis } : {};
const PING_S = Number(args.ping || 30);

const sub = new Redis(redisOpts);
const cmd = new Redis(redisOpts);
const orders = new Map(); // order id -> Set of sockets
const ID = /^[A-Za-z0-9._~-]{1,128}$/;

sub.on("messageBuffer", (channel, message) => {
  const id = channel.toString("latin1").slice(5, -1); // trk:{ID}
  const set = orders.get(id);
  if (!set) return;
  for (const ws of set) if (ws.readyState === 1) ws.send(message, { binary: false });
});

const server = http.createServer((req, res) => {
  res.writeHead(req.url === "/healthz" ? 200 : 404, { "content-type": "application/json" });
  res.end(req.url === "/healthz" ? '{"status":"ok"}' : '{"error":"not_found"}');
});
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });

server.on("upgrade", (req, socket, head) => {
  const path = req.url.split("?")[0];
  const id = path.startsWith("/v1/track/") ? path.slice(10) : "";
  if (!ID.test(id)) {
    socket.end("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => join(ws, id));
});

function join(ws, id) {
  let set = orders.get(id);
  if (!set) {
    set = new Set();
    orders.set(id, set);
    sub.subscribe(`trk:{${id}}`);
  }
  set.add(ws);
  ws.isAlive = true;
  ws.on("pong", () => { ws.isAlive = true; });
  cmd.hmget(`trk:{${id}}:state`, "state", "cursor").then(([state, cursor]) => {
    if (ws.readyState !== 1) return;
    ws.send(`{"type":"snapshot","order_id":"${id}","state":${state || "null"},"cursor":${cursor ? `"${cursor}"` : "null"}}`);
  }, () => ws.close(1011, "redis unavailable"));
  ws.on("close", () => {
    set.delete(ws);
    if (set.size === 0) {
      orders.delete(id);
      sub.unsubscribe(`trk:{${id}}`);
    }
  });
}

setInterval(() => {
  for (const ws of wss.clients) {
    if (!ws.isAlive) { ws.terminate(); continue; }
    ws.isAlive = false;
    ws.ping();
  }
}, PING_S * 1000).unref();

server.listen(Number(port), host, () => console.log(`node-ws listening on ${host}:${port}`));
process.on("SIGTERM", () => process.exit(0));
