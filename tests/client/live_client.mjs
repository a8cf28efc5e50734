// tests/client/live_client.mjs - track.js under node, on Debian's ws (node-ws),
// driven by test_live.py: commands come as JSON lines on stdin
// ({"cmd":"start"|"stop"|"refresh","token":T}), and every event of the client
// goes out as a JSON line on stdout ({"event":"connection"|"order"|"refreshed", ...}).
//
//   node live_client.mjs WS_URL ORDER_ID TOKEN
import { createInterface } from "node:readline";
import { createRequire } from "node:module";
import { TrackingClient } from "../../gateway/http/page/track.js";

const require = createRequire(import.meta.url);
const WebSocket = require(process.env.TG_NODE_WS || "/usr/share/nodejs/ws");

const [url, orderId, token] = process.argv.slice(2);
const client = new TrackingClient({ orderId, token, url, WebSocket, minBackoffMs: 100, maxBackoffMs: 1000 });
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
for (const event of ["connection", "order", "refreshed"]) {
  client.addEventListener(event, (e) => out({ event, ...e.detail, cursor: client.cursor }));
}
const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const m = JSON.parse(line);
  if (m.cmd === "start") client.start();
  else if (m.cmd === "refresh") out({ event: "refresh_sent", sent: client.refreshToken(m.token) });
  else if (m.cmd === "stop") client.stop();
});
lines.on("close", () => {
  client.stop();
  process.exit(0);
});
