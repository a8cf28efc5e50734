#!/usr/bin/python3
"""client.pack: the tracking client as an npm package (gateway/http/page/package.json).

`npm pack --dry-run --json` (offline: nothing is fetched or published) must list
exactly the package's files: track.js, track.d.ts, package.json and README.md
(the API's documentation).  package.json must be ESM ("type": "module") with
"exports" and "types" naming those files, and track.js must be the very file the
gateway embeds and serves at /t/assets/track.js (gateway/CMakeLists.txt).
"""
import json
import os
import subprocess
import sys

TOP = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PAGE = os.path.join(TOP, "gateway", "http", "page")
WANT = {"package.json", "README.md", "track.js", "track.d.ts"}

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print(f"FAIL {what}")


env = dict(os.environ, npm_config_update_notifier="false", npm_config_fund="false",
           npm_config_audit="false", npm_config_offline="true")
run = subprocess.run(["npm", "pack", "--dry-run", "--json"], cwd=PAGE, env=env,
                     capture_output=True, text=True, timeout=120)
check(run.returncode == 0, f"npm pack --dry-run exited {run.returncode}: {run.stderr[-2000:]}")
if run.returncode == 0:
    [pack] = json.loads(run.stdout)
    files = {f["path"] for f in pack["files"]}
    print(f"npm pack --dry-run: {pack['filename']}, {pack['size']} bytes packed, "
          f"{pack['unpackedSize']} unpacked")
    for f in sorted(pack["files"], key=lambda f: f["path"]):
        print(f"  {f['size']:7d}  {f['path']}")
    check(files == WANT, f"the package holds {sorted(files)}, want {sorted(WANT)}")

with open(os.path.join(PAGE, "package.json")) as f:
    pkg = json.load(f)
check(pkg.get("type") == "module", f"package.json: type is {pkg.get('type')!r}, want module")
check(pkg.get("types") == "./track.d.ts", f"package.json: types is {pkg.get('types')!r}")
root = (pkg.get("exports") or {}).get(".")
check(isinstance(root, dict) and list(root) == ["types", "default"],
      f"package.json: exports['.'] must list types first, then default: {root!r}")
if isinstance(root, dict):
    check(root.get("types") == "./track.d.ts", f"exports types: {root.get('types')!r}")
    check(root.get("default") == "./track.js", f"exports default: {root.get('default')!r}")
check(not pkg.get("dependencies"), "the client has no dependencies")

# The file the gateway serves is the file the package ships.
with open(os.path.join(TOP, "gateway", "CMakeLists.txt")) as f:
    cmake = f.read()
check("foreach(file track.html track.css track.js view.js)" in cmake
      and "http/page/${file}" in cmake,
      "gateway/CMakeLists.txt no longer embeds http/page/track.js: the served client and the "
      "package's would differ")

print("FAIL" if failures else "PASS")
sys.exit(1 if failures else 0)
