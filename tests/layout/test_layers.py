#!/usr/bin/python3
"""layout.layers: dependencies in gateway/ run one way, and no file there grows past the
size a reader takes in at once (issue 15).

  main.c -> gateway.c, workers.c (the process) -> server.c -> http/, ws/ -> the rest of
  gateway/ (leaf modules) -> proto/, adapters/

A file may include headers of its own layer or of a layer below, never above; http/ and
ws/ do not include each other.  Checked by reading every #include "..." line (what a
reader would grep), so it also catches a header that is included but not needed.
"""
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MAX_LINES = 720  # "no gateway file over ~700 lines"
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

PROCESS = {"gateway.h", "workers.h", "gateway.c", "workers.c", "main.c"}
SERVER = {"server.h", "server.c"}


def layer(rel):
    """The layer of a file or of a header it names (relative to the repository)."""
    top, _, rest = rel.partition("/")
    if top in ("proto", "adapters"):
        return 0, top
    if top != "gateway":
        return None, None
    name = os.path.basename(rel)
    if rest.startswith("http/"):
        return 2, "http"
    if rest.startswith("ws/"):
        return 2, "ws"
    if name in SERVER:
        return 3, "server"
    if name in PROCESS:
        return 4, "process"
    return 1, "leaf"


def resolve(src, inc):
    """Which file an #include "inc" in src names: its own folder first, then gateway/,
    proto/, adapters/ (the include path)."""
    for base in (os.path.dirname(src), "gateway", "proto", "adapters"):
        cand = os.path.normpath(os.path.join(base, inc))
        if os.path.exists(os.path.join(ROOT, cand)):
            return cand
    return None


def main():
    problems = []
    files = []
    for top in ("gateway", "proto", "adapters"):
        for d, _, names in os.walk(os.path.join(ROOT, top)):
            for n in names:
                if n.endswith((".c", ".h")):
                    files.append(os.path.relpath(os.path.join(d, n), ROOT))
    for src in sorted(files):
        with open(os.path.join(ROOT, src), encoding="utf-8") as f:
            text = f.read()
        lines = text.count("\n")
        if src.startswith("gateway/") and lines > MAX_LINES:
            problems.append(f"{src}: {lines} lines (more than {MAX_LINES}): split it by concern")
        lv, grp = layer(src)
        for inc in INCLUDE.findall(text):
            target = resolve(src, inc)
            if not target:
                continue  # generated or system-like (the embedded page's C files)
            tl, tg = layer(target)
            if tl is None or target == src:
                continue
            if tl > lv:
                problems.append(f"{src} ({grp}) includes {inc} ({tg}): a layer above it")
            elif tl == lv == 2 and tg != grp:
                problems.append(f"{src} ({grp}) includes {inc} ({tg}): http/ and ws/ are "
                                f"siblings and do not include each other")
    if problems:
        print("layout.layers:\n  " + "\n  ".join(problems))
        return 1
    print(f"layout.layers: {len(files)} files, dependencies one way, none over {MAX_LINES} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
