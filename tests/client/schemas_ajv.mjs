// tests/client/schemas_ajv.mjs - proto/schema/ as a JavaScript team loads it:
// Ajv 8 (draft 2020-12, Ajv2020) in strict mode, every schema registered by its
// $id alone (no file names, no base directory), then the frames trackgated
// sent (tests/client/frames.json, captured from a real websocket by
// integration.schemas) validated against the schema of their type.
//
//   node schemas_ajv.mjs AJV_PREFIX SCHEMA_DIR FRAMES_JSON
//
// AJV_PREFIX is an `npm install --prefix` holding ajv (test_schemas_ajv.sh).
// Exit status 0 when every check holds; each failure is printed.
import { createRequire } from "node:module";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const [prefix, schemaDir, framesFile] = process.argv.slice(2);
const require = createRequire(join(prefix, "node_modules", "noop.js"));
const Ajv2020 = require("ajv/dist/2020").default;
const ajvVersion = require("ajv/package.json").version;

const BASE = "https://trackgate.invalid/schema/";
// A frame's type -> the schema it must pass (and every other one must refuse).
const KINDS = {
  snapshot: "snapshot", update: "update-frame", resumed: "resumed-frame",
  refreshed: "refreshed-frame", error: "error-frame",
};
let failures = 0;
const fail = (what) => {
  failures++;
  console.log(`FAIL ${what}`);
};

// Strict mode throws on what it refuses; what it only warns about fails too.
const warnings = [];
const ajv = new Ajv2020({
  strict: true,
  allErrors: true,
  logger: { log: () => {}, warn: (...m) => warnings.push(m.join(" ")), error: (...m) => warnings.push(m.join(" ")) },
});

const schemas = {};
for (const file of readdirSync(schemaDir).filter((f) => f.endsWith(".schema.json")).sort()) {
  const doc = JSON.parse(readFileSync(join(schemaDir, file), "utf8"));
  if (doc.$id !== BASE + file) fail(`${file}: $id is ${JSON.stringify(doc.$id)}, want ${BASE + file}`);
  schemas[file.slice(0, -".schema.json".length)] = doc;
  ajv.addSchema(doc); // keyed by its $id only
}
const ids = new Set(Object.values(schemas).map((s) => s.$id));

// Every $ref is a local pointer or names another schema by its $id.
function refs(node, out = []) {
  if (Array.isArray(node)) node.forEach((n) => refs(n, out));
  else if (node && typeof node === "object") {
    for (const [k, v] of Object.entries(node)) {
      if (k === "$ref" && typeof v === "string") out.push(v);
      else refs(v, out);
    }
  }
  return out;
}
for (const [name, doc] of Object.entries(schemas)) {
  for (const ref of refs(doc)) {
    const target = ref.split("#")[0];
    if (target !== "" && !ids.has(target)) fail(`${name}: $ref ${ref} is not the $id of a schema in ${schemaDir}`);
  }
}

const validators = {};
for (const [name, doc] of Object.entries(schemas)) {
  try {
    validators[name] = ajv.getSchema(doc.$id);
    if (!validators[name]) fail(`${name}: ajv has no schema ${doc.$id}`);
  } catch (e) {
    fail(`${name}: does not compile in strict mode: ${e.message}`);
  }
}
for (const w of warnings) fail(`strict mode warning: ${w}`);
console.log(`ajv ${ajvVersion} strict: ${Object.keys(validators).length} schemas compiled by $id`);

const captured = JSON.parse(readFileSync(framesFile, "utf8"));
const seen = {};
for (const { frame, what } of captured.frames) {
  const kind = KINDS[frame.type];
  if (!kind) {
    fail(`${what}: a frame of unknown type ${JSON.stringify(frame).slice(0, 200)}`);
    continue;
  }
  seen[frame.type] = (seen[frame.type] || 0) + 1;
  const v = validators[kind];
  if (v && !v(frame)) fail(`${what}: ${kind} rejects ${JSON.stringify(frame).slice(0, 300)}: ${ajv.errorsText(v.errors)}`);
  for (const other of Object.values(KINDS)) {
    if (other !== kind && validators[other]?.(frame)) fail(`${what}: ${other} also accepts a ${frame.type} frame`);
  }
  if (frame.type === "snapshot" && frame.state && validators.state && !validators.state(frame.state)) {
    fail(`${what}: state rejects the snapshot's state: ${ajv.errorsText(validators.state.errors)}`);
  }
}
for (const { message, what } of captured.client_messages) {
  const v = validators["refresh-message"];
  if (v && !v(message)) fail(`${what}: refresh-message rejects ${JSON.stringify(message).slice(0, 200)}: ${ajv.errorsText(v.errors)}`);
}
for (const { update, what } of captured.updates) {
  const v = validators.update;
  if (v && !v(update)) fail(`${what}: update rejects ${JSON.stringify(update)}: ${ajv.errorsText(v.errors)}`);
}
for (const type of Object.keys(KINDS)) {
  if (!seen[type]) fail(`${framesFile} holds no ${type} frame`);
}
console.log(`validated ${captured.frames.length} frames (${JSON.stringify(seen)}), ` +
  `${captured.client_messages.length} client messages, ${captured.updates.length} updates, captured ${captured.captured}`);
console.log(failures ? `FAIL ${failures} checks` : "PASS");
process.exit(failures ? 1 : 0);
