#!/usr/bin/env bash
# packaging.lintian - Debian's lintian on the .deb that packaging.deb built:
# no E: tag, and no W: tag that deploy/lintian-overrides does not override
# with a reason.  The I: (informational) tags are printed, not judged: the
# hardening ones (bindnow, fortify) are the compiler flags' business.
#
#   test_lintian.sh BUILD_DIR SOURCE_DIR
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "$0")/common.sh"
need_root
need lintian lintian

debs=("$PKG_DIR"/trackgate_*.deb)
[ -f "${debs[0]}" ] || {
	fail "no .deb in $PKG_DIR: packaging.deb must run first"
	finish
}
deb=${debs[0]}

# lintian exits non-zero on errors; its tags are what is judged here.
# --pedantic and --display-info show every tag (P:, I:), --show-overrides
# the overridden ones (O:).
set +e
lintian --pedantic --display-info --show-overrides --no-cfg --color never "$deb" >"$WORK/lintian.out" 2>"$WORK/lintian.err"
rc=$?
set -e
grep -v 'running with root privileges' "$WORK/lintian.err" >&2 || true
echo "lintian $(lintian --print-version) on $(basename "$deb") (exit $rc):"
grep -E '^[A-Z]: ' "$WORK/lintian.out" | sed 's/^/  /' || true
for kind in E W I P X O; do
	echo "  $kind: $(grep -c "^$kind: " "$WORK/lintian.out" || true)"
done

errors=$(grep '^E: ' "$WORK/lintian.out" || true)
warnings=$(grep '^W: ' "$WORK/lintian.out" || true)
check "lintian reports no error (E:)${errors:+: $errors}" [ -z "$errors" ]
check "lintian reports no warning that is not overridden (W:)${warnings:+: $warnings}" [ -z "$warnings" ]
check "lintian ran to the end (no lintian error output)" \
	lacks_re '^(internal error|.*[Cc]annot )' "$WORK/lintian.err"

# Every override has its reason: a comment right above it.
ov=$ROOT/usr/share/lintian/overrides/trackgate
check "the package ships its lintian-overrides" [ -f "$ov" ]
if [ -f "$ov" ]; then
	# shellcheck disable=SC2016 # awk's $0
	check "each override has a reason (a comment right above it)" \
		awk '/^[^#[:space:]]/ && prev !~ /^#/ { bad = 1 } { prev = $0 } END { exit bad }' "$ov"
	unused=$(grep '^[A-Z]: .*unused-override' "$WORK/lintian.out" || true)
	check "no override is unused${unused:+: $unused}" [ -z "$unused" ]
fi

finish
