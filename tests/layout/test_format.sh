#!/bin/sh
# layout.format: every C file of the project is as .clang-format lays it out
# (clang-format --dry-run --Werror).  To fix a failure: clang-format -i FILE.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
command -v clang-format >/dev/null || { echo "layout.format: clang-format is not installed (tools/deps installs it)"; exit 1; }
files=$(find gateway proto adapters tools tests -name '*.[ch]' -not -path 'tools/bench/peers/*' | sort)
bad=0
for f in $files; do
	if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
		echo "layout.format: $f differs from .clang-format (clang-format -i $f)"
		bad=$((bad + 1))
	fi
done
n=$(echo "$files" | wc -l)
[ "$bad" -eq 0 ] || { echo "layout.format: $bad of $n files differ"; exit 1; }
echo "layout.format: $n files as .clang-format lays them out"
