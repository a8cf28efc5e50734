# shellcheck shell=bash disable=SC2034
# common.sh - sourced by the packaging tests (bash).
#
# Every test gets: BUILD (the build tree), SRC (the source tree), WORK (this
# test's own scratch folder under <build>/tests/packaging/, emptied at
# start), ROOT (the .deb unpacked by packaging.deb), and these helpers.
# Exit status: 0 passed, 1 failed, 77 skipped (a needed tool is missing even
# after tools/deps: CTest's SKIP_RETURN_CODE).

set -euo pipefail

BUILD=${1:?usage: $0 BUILD_DIR SOURCE_DIR}
SRC=${2:?usage: $0 BUILD_DIR SOURCE_DIR}
PKG_DIR=$BUILD/tests/packaging
ROOT=$PKG_DIR/root
WORK=$PKG_DIR/work/$(basename "$0" .sh)
rm -rf "$WORK"
mkdir -p "$WORK"

failures=0

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

pass() {
	echo "ok: $*"
}

# check DESCRIPTION COMMAND...: runs COMMAND, counts a failure when it fails.
check() {
	local what=$1
	shift
	if "$@"; then
		pass "$what"
	else
		fail "$what"
	fi
}

# lacks STRING FILE...: no FILE (recursively) contains STRING.
lacks() {
	local s=$1
	shift
	! grep -rqF -- "$s" "$@"
}

# lacks_re REGEX FILE...: no line of FILE matches the extended REGEX.
lacks_re() {
	local re=$1
	shift
	! grep -Eq -- "$re" "$@"
}

skip() {
	echo "SKIP: $*" >&2
	exit 77
}

# need TOOL PACKAGE: skips the test when TOOL is not on PATH.
need() {
	command -v "$1" >/dev/null 2>&1 || skip "$1 not found (Debian package $2; tools/deps installs it)"
}

# need_root: the unpacked .deb of packaging.deb (its fixture).
need_root() {
	[ -x "$ROOT/usr/sbin/trackgated" ] || {
		echo "FAIL: $ROOT/usr/sbin/trackgated missing: packaging.deb must run first" >&2
		exit 1
	}
}

finish() {
	if [ "$failures" -ne 0 ]; then
		echo "$(basename "$0"): $failures check(s) failed" >&2
		exit 1
	fi
	echo "$(basename "$0"): all checks passed"
}
