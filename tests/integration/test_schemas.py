#!/usr/bin/python3
"""integration.schemas: every frame the gateway sends validates against proto/schema/.

The JSON Schemas are what other teams build clients from, so they are checked
the way those teams would: with an outside validator (Debian's
python3-jsonschema, draft 2020-12), on frames taken off a real websocket.
The schemas are registered by their $id alone (https://trackgate.invalid/schema/NAME),
as a tool that never sees the folder holds them: every $ref must resolve in
that registry, and the resolver refuses to fetch anything (there is nothing
at trackgate.invalid).  tests/client (client.schemas_ajv) compiles the same
schemas in Ajv 8's strict mode.

Each kind of frame is produced at least once and validated against its
schema, which must also reject the frames of the other kinds:

  snapshot  of an unknown order (state null), of a stored order, and with
            "reset": true (a cursor from the future);
  update    verbatim, and re-encoded by the script (a partly stale update);
  resumed   after a replay, and with nothing missed (replayed 0);
  refreshed the answer to {"type":"refresh","token":T} (the daemon runs with a
            token key, so every connect carries a token too);
  error     an invalid cursor (4400), an argument given twice (4400), a
            refresh with a token for another order (4403);
and the states inside the snapshots, one of them after delivered (no
location, location_ts kept), against state.schema.json, and the client's
refresh messages against refresh-message.schema.json.

With TRACKGATE_CAPTURE_FRAMES=FILE it also writes what it validated to FILE:
that is how tests/client/frames.json is made.
"""
import asyncio
import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

import jsonschema  # noqa: E402  (python3-jsonschema)
import jwt  # noqa: E402  (python3-jwt)

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto", "schema")
BASE = "https://trackgate.invalid/schema/"
KINDS = {"snapshot": "snapshot", "update": "update-frame", "resumed": "resumed-frame",
         "refreshed": "refreshed-frame", "error": "error-frame"}


def refs(node):
    """Every $ref in a schema document."""
    if isinstance(node, list):
        for n in node:
            yield from refs(n)
    elif isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield v
            else:
                yield from refs(v)


def no_fetch(uri):
    raise jsonschema.exceptions.RefResolutionError(f"{uri} is not the $id of a schema in proto/schema/")


def validators():
    """name -> a Draft 2020-12 validator, every schema registered by its $id alone."""
    by_id = {}
    for name in sorted(os.listdir(SCHEMA_DIR)):
        if not name.endswith(".schema.json"):
            continue
        with open(os.path.join(SCHEMA_DIR, name)) as f:
            doc = json.load(f)
        jsonschema.Draft202012Validator.check_schema(doc)
        h.check_eq(doc.get("$id"), BASE + name, f"{name}: $id")
        by_id[doc["$id"]] = doc
    try:  # jsonschema 4.18 and later: a referencing.Registry (RefResolver is deprecated there)
        import referencing
        import referencing.jsonschema
    except ImportError:  # Debian 12's jsonschema 4.10: a RefResolver with a store keyed by $id
        referencing = None
    out = {}
    for i, doc in by_id.items():
        for ref in refs(doc):
            h.check(ref.startswith("#") or ref.split("#")[0] in by_id,
                    f"{i}: $ref {ref} does not name a schema by its $id")
        if referencing is None:
            resolver = jsonschema.RefResolver.from_schema(
                doc, store=by_id, handlers={"https": no_fetch, "http": no_fetch, "file": no_fetch})
            for ref in refs(doc):
                resolver.resolve(ref)  # raises for a $ref that does not resolve
            v = jsonschema.Draft202012Validator(doc, resolver=resolver)
        else:
            def nothing(uri):
                raise referencing.exceptions.NoSuchResource(uri)
            registry = referencing.Registry(retrieve=nothing).with_resources(
                (j, referencing.Resource.from_contents(d, referencing.jsonschema.DRAFT202012))
                for j, d in by_id.items())
            resolver = registry.resolver(base_uri=i)
            for ref in refs(doc):
                resolver.lookup(ref)  # raises for a $ref that does not resolve
            v = jsonschema.Draft202012Validator(doc, registry=registry)
        out[i[len(BASE):-len(".schema.json")]] = v
    h.check(set(KINDS.values()) | {"update", "state", "refresh-message"} <= set(out),
            f"proto/schema/ lacks a schema: has {sorted(out)}")
    return out


def mint(secret, order_id, exp):
    return jwt.encode({"order_id": order_id, "exp": exp}, secret, algorithm="HS256",
                      headers={"kid": "k1"})


async def frames_of(env, path, until):
    """Connects to path and returns its frames once until(frames) holds (or it closed)."""
    w = h.Watcher(env.port, path)
    await w.connect()
    env.watchers.append(w)
    while not until(w.frames):
        await w.next(timeout=5, what=f"{path}: the expected frames")
    return w


async def test(env):
    v = validators()
    secret = env.hs256_token_key()
    env.start()
    pid = os.getpid()
    oid = f"sc-{pid}"
    exp = int(time.time()) + 3600
    token = mint(secret, oid, exp)
    seen = {k: 0 for k in KINDS}
    captured = {"captured": "by integration.schemas (TRACKGATE_CAPTURE_FRAMES=FILE) off the "
                "websockets of a running trackgated", "frames": [], "client_messages": [],
                "updates": []}

    def validate(frame, what):
        kind = frame.get("type")
        h.check(kind in KINDS, f"{what}: a frame of unknown type {frame!r}")
        errors = sorted(v[KINDS[kind]].iter_errors(frame), key=str)
        h.check(not errors, f"{what}: {KINDS[kind]}.schema.json rejects {json.dumps(frame)[:300]}: "
                f"{errors[0].message if errors else ''}")
        for other, schema in KINDS.items():
            if other != kind:
                h.check(not v[schema].is_valid(frame),
                        f"{what}: {schema}.schema.json also accepts a {kind} frame")
        if kind == "snapshot" and frame.get("state") is not None:
            h.check(v["state"].is_valid(frame["state"]), f"{what}: the state fails state.schema.json")
        seen[kind] += 1
        captured["frames"].append({"what": what, "frame": frame})

    async def refresh(w, tok, what):
        message = {"type": "refresh", "token": tok}
        h.check(v["refresh-message"].is_valid(message), f"{what}: refresh-message.schema.json "
                f"rejects the refresh message")
        captured["client_messages"].append({"what": what, "message": message})
        await w.ws.send(json.dumps(message))

    def track(query=""):
        return f"/v1/track/{oid}?token={token}" + (f"&{query}" if query else "")

    w = await frames_of(env, track(), lambda fs: len(fs) >= 1)
    validate(w.frames[0], "a snapshot of an unknown order")
    t = h.now_ms() - 60000
    updates = [h.update(oid, t, lat=52.5, lng=13.4, status="courier_assigned",
                        eta={"dropoff": t + 900000}),
               h.update(oid, t + 1000, lat=52.51, lng=13.41, event_id="e-1"),
               # Partly stale (the status is older than the stored one): re-encoded.
               h.update(oid, t + 2000, lat=52.52, lng=13.42),
               h.update(oid, t + 500, status="created", eta={"dropoff": t + 800000}, lat=1, lng=1)]
    for u in updates:
        h.check(v["update"].is_valid(u), f"the posted update fails update.schema.json: {u!r}")
        captured["updates"].append({"what": "a posted update", "update": u})
    cursors = []
    for u in updates:
        res = await env.apost_ok(u)
        cursors.append(res[0].get("cursor"))
    first = cursors[0]
    while len([f for f in w.frames if f.get("type") == "update"]) < 3:
        await w.next(timeout=5, what="the update frames")
    for f in w.frames[1:]:
        validate(f, "a live update frame")
    w.pending()

    # A refresh on the open socket: the refreshed frame, and the socket stays.
    await refresh(w, mint(secret, oid, exp + 60), "a refresh")
    f = await w.next(timeout=5, what="the refreshed frame")
    while f.get("type") == "update":  # a late one of the four
        validate(f, "a live update frame")
        f = await w.next(timeout=5, what="the refreshed frame")
    h.check_eq(f, {"type": "refreshed", "order_id": oid, "exp": exp + 60}, "the refreshed frame")
    validate(f, "the answer to a refresh")
    h.check(not w.closed.is_set(), "the socket closed after a good refresh")
    await w.close()

    w = await frames_of(env, track(), lambda fs: len(fs) >= 1)
    validate(w.frames[0], "a snapshot of a stored order")
    await w.close()
    w = await frames_of(env, track(f"since={first}"),
                        lambda fs: fs and fs[-1].get("type") == "resumed")
    for f in w.frames:
        validate(f, "a replay")
    await w.close()
    newest = [c for c in cursors if c][-1]
    w = await frames_of(env, track(f"since={newest}"), lambda fs: len(fs) >= 1)
    h.check_eq(w.frames[0].get("replayed"), 0, "a resume with nothing missed")
    validate(w.frames[0], "a resume with nothing missed")
    await w.close()
    w = await frames_of(env, track("since=99999999999999-0"), lambda fs: len(fs) >= 1)
    h.check(w.frames[0].get("reset") is True, f"a future cursor: {w.frames[0]!r}")
    validate(w.frames[0], "a reset snapshot")
    await w.close()
    for q in ("since=zzz", f"since={first}&since={first}"):
        w = await frames_of(env, track(q), lambda fs: len(fs) >= 1)
        validate(w.frames[0], f"the refusal of ?{q.replace(first, 'C')}")
        await w.wait_closed(5)

    # A refresh with a token for another order: an error frame, then 4403.
    w = await frames_of(env, track(), lambda fs: len(fs) >= 1)
    await refresh(w, mint(secret, "another-order", exp), "a refresh for another order")
    code, _ = await w.wait_closed(10)
    h.check_eq(code, 4403, "the close of a refresh for another order")
    h.check(w.frames[-1].get("type") == "error", f"no error frame before 4403: {w.frames!r}")
    validate(w.frames[-1], "the refusal of a refresh for another order")

    await env.aapply(h.update(oid, h.now_ms(), status="delivered"))
    w = await frames_of(env, track(), lambda fs: len(fs) >= 1)
    st = w.frames[0].get("state") or {}
    h.check("location" not in st and isinstance(st.get("location_ts"), int),
            f"delivered: the state should have location_ts and no location: {st!r}")
    validate(w.frames[0], "a snapshot after delivered")
    await w.close()
    print(f"validated: {seen}")
    h.check(all(seen.values()), f"a frame kind was never produced: {seen}")
    out = os.environ.get("TRACKGATE_CAPTURE_FRAMES")
    if out:
        with open(out, "w") as f:
            json.dump(captured, f, indent=1)
            f.write("\n")
        print(f"captured {len(captured['frames'])} frames in {out}")
    print("PASS checks")


if __name__ == "__main__":
    h.main(test, start=False)
