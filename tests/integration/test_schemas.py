#!/usr/bin/python3
"""integration.schemas: every frame the gateway sends validates against proto/schema/.

The JSON Schemas are what other teams build clients from, so they are checked
the way those teams would: with an outside validator (Debian's
python3-jsonschema, draft 2020-12), on frames taken off a real websocket.
Each kind of frame is produced at least once and validated against its
schema, which must also reject the frames of the other kinds:

  snapshot  of an unknown order (state null), of a stored order, and with
            "reset": true (a cursor from the future);
  update    verbatim, and re-encoded by the script (a partly stale update);
  resumed   after a replay, and with nothing missed (replayed 0);
  error     an invalid cursor (4400), an argument given twice (4400);
and the states inside the snapshots, one of them after delivered (no
location, location_ts kept), against state.schema.json.
"""
import asyncio
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

import jsonschema  # noqa: E402  (python3-jsonschema)

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto", "schema")
KINDS = {"snapshot": "snapshot", "update": "update-frame", "resumed": "resumed-frame",
         "error": "error-frame"}


def validators():
    store = {}
    for name in os.listdir(SCHEMA_DIR):
        with open(os.path.join(SCHEMA_DIR, name)) as f:
            doc = json.load(f)
        jsonschema.Draft202012Validator.check_schema(doc)
        store[name] = doc
    out = {}
    for name, doc in store.items():
        # Relative references ("update.schema.json#/$defs/ms") resolve by file name.
        resolver = jsonschema.RefResolver(base_uri=f"file://{SCHEMA_DIR}/{name}", referrer=doc,
                                          store={f"file://{SCHEMA_DIR}/{n}": d
                                                 for n, d in store.items()})
        out[name[:-len(".schema.json")]] = jsonschema.Draft202012Validator(doc, resolver=resolver)
    return out


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
    pid = os.getpid()
    oid = f"sc-{pid}"
    seen = {k: 0 for k in KINDS}

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

    w = await frames_of(env, f"/v1/track/{oid}", lambda fs: len(fs) >= 1)
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
    cursors = []
    for u in updates:
        res = await env.apost_ok(u)
        cursors.append(res[0].get("cursor"))
    first = cursors[0]
    while len([f for f in w.frames if f.get("type") == "update"]) < 3:
        await w.next(timeout=5, what="the update frames")
    for f in w.frames[1:]:
        validate(f, "a live update frame")
    await w.close()

    w = await frames_of(env, f"/v1/track/{oid}", lambda fs: len(fs) >= 1)
    validate(w.frames[0], "a snapshot of a stored order")
    await w.close()
    w = await frames_of(env, f"/v1/track/{oid}?since={first}",
                        lambda fs: fs and fs[-1].get("type") == "resumed")
    for f in w.frames:
        validate(f, "a replay")
    await w.close()
    newest = [c for c in cursors if c][-1]
    w = await frames_of(env, f"/v1/track/{oid}?since={newest}", lambda fs: len(fs) >= 1)
    h.check_eq(w.frames[0].get("replayed"), 0, "a resume with nothing missed")
    validate(w.frames[0], "a resume with nothing missed")
    await w.close()
    w = await frames_of(env, f"/v1/track/{oid}?since=99999999999999-0", lambda fs: len(fs) >= 1)
    h.check(w.frames[0].get("reset") is True, f"a future cursor: {w.frames[0]!r}")
    validate(w.frames[0], "a reset snapshot")
    await w.close()
    for q in ("since=zzz", f"since={first}&since={first}"):
        w = await frames_of(env, f"/v1/track/{oid}?{q}", lambda fs: len(fs) >= 1)
        validate(w.frames[0], f"the refusal of ?{q}")
        await w.wait_closed(5)

    await env.aapply(h.update(oid, h.now_ms(), status="delivered"))
    w = await frames_of(env, f"/v1/track/{oid}", lambda fs: len(fs) >= 1)
    st = w.frames[0].get("state") or {}
    h.check("location" not in st and isinstance(st.get("location_ts"), int),
            f"delivered: the state should have location_ts and no location: {st!r}")
    validate(w.frames[0], "a snapshot after delivered")
    await w.close()
    print(f"validated: {seen}")
    h.check(all(seen.values()), f"a frame kind was never produced: {seen}")
    print("PASS checks")


if __name__ == "__main__":
    h.main(test)
