#!/usr/bin/python3
"""integration.webhook_header: DoorDash Drive's credential in a header the merchant named.

DoorDash lets the merchant choose the header its webhooks carry the credential in.
trackgated runs with a config file:

    [webhook.doordash_drive]
    secret-file = PATH        (user:password)
    header = X-Merchant-Auth

- a DASHER_PICKED_UP event with `X-Merchant-Auth: Basic base64(user:password)` is 200
  applied and reaches a websocket watcher;
- the same credential in Authorization (the default header) is 401, naming
  x-merchant-auth as missing;
- a wrong password in X-Merchant-Auth is 401;
- --check-config prints the section with its header line (so the file loads back).
"""
import base64
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def rfc3339(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}000Z"


def event(order, ts):
    return json.dumps({"created_at": rfc3339(ts), "event_name": "DASHER_PICKED_UP",
                       "external_delivery_id": order, "dasher_id": 987654,
                       "dasher_name": "Ana S.", "dasher_location": {"lat": 37.78, "lng": -122.4}},
                      separators=(",", ":")).encode()


async def test(env):
    secret = f"itest-dd:{os.urandom(12).hex()}"
    secret_file = os.path.join(env.log_dir, "dd.secret")
    with open(secret_file, "w") as f:
        f.write(secret + "\n")
    os.chmod(secret_file, 0o600)
    conf = os.path.join(env.log_dir, "trackgated.conf")
    with open(conf, "w") as f:
        f.write(f"[webhook.doordash_drive]\nsecret-file = {secret_file}\n"
                "header = X-Merchant-Auth\n")
    env.daemon.extra_args += ["--config", conf]
    env.start()
    good = "Basic " + base64.b64encode(secret.encode()).decode()
    oid = f"ddh-{os.getpid()}"
    w = await env.watch(oid)
    path = "/v1/webhooks/doordash_drive"
    ct = {"Content-Type": "application/json"}

    r = env.http("POST", path, event(oid, h.now_ms()), dict(ct, **{"X-Merchant-Auth": good}))
    h.check(r.status == 200 and r.json["results"][0]["result"] == "applied",
            f"the credential in X-Merchant-Auth: {r!r}, want 200 applied")
    f = await w.update()
    h.check(f.get("cursor") == r.json["results"][0]["cursor"],
            f"the watcher's update {f!r}, want cursor {r.json['results'][0]['cursor']}")
    print("  ok  X-Merchant-Auth: 200 applied, the watcher got the update")

    r = env.http("POST", path, event(oid, h.now_ms()), dict(ct, Authorization=good))
    h.check(r.status == 401 and "x-merchant-auth" in json.dumps(r.json).lower(),
            f"the credential in Authorization: {r!r}, want 401 naming x-merchant-auth")
    print(f"  ok  Authorization instead: 401 {r.json!r}")

    bad = "Basic " + base64.b64encode(secret.split(":")[0].encode() + b":wrong").decode()
    r = env.http("POST", path, event(oid, h.now_ms()), dict(ct, **{"X-Merchant-Auth": bad}))
    h.check(r.status == 401, f"a wrong password: {r!r}, want 401")
    print("  ok  a wrong password: 401")

    out = subprocess.run([env.args.trackgated, "--config", conf, "--ingest-key-file",
                          env.key_file, "--check-config"],
                         capture_output=True, text=True, timeout=10)
    h.check(out.returncode == 0 and "[webhook.doordash_drive]" in out.stdout
            and "header = x-merchant-auth" in out.stdout,
            f"--check-config: exit {out.returncode}, {out.stdout[-400:]!r} {out.stderr[-300:]!r}")
    print("  ok  --check-config prints header = x-merchant-auth")


if __name__ == "__main__":
    h.main(test, start=False)
