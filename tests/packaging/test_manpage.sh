#!/usr/bin/env bash
# packaging.manpage - trackgated(8) as the .deb installs it: man and groff
# format it without a single warning, and it documents every option that
# `trackgated --help` lists (so a new option cannot land undocumented).
#
#   test_manpage.sh BUILD_DIR SOURCE_DIR
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "$0")/common.sh"
need_root
need man man-db
need groff groff-base

page=$(ls "$ROOT"/usr/share/man/man8/trackgated.8*)
check "the package ships trackgated.8" [ -f "$page" ]

MANWIDTH=80 man -l --warnings "$page" >"$WORK/page.txt" 2>"$WORK/warnings.txt" || true
cat "$WORK/warnings.txt"
check "man -l --warnings prints no warning" [ ! -s "$WORK/warnings.txt" ]
check "man renders the page" grep -q "trackgated" "$WORK/page.txt"
zcat -f "$page" | groff -man -ww -z 2>"$WORK/groff.txt" || true
cat "$WORK/groff.txt"
check "groff -man -ww prints no warning" [ ! -s "$WORK/groff.txt" ]
for section in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" FILES "SEE ALSO"; do
	check "the page has $section" grep -qx "$section" "$WORK/page.txt"
done

# Every --option of --help, in the rendered page (hyphens as man prints them).
"$ROOT/usr/sbin/trackgated" --help >"$WORK/help.txt"
options=$(grep -oE -- '--[a-z][a-z-]+' "$WORK/help.txt" | sort -u)
check "--help lists options" [ -n "$options" ]
sed 's/‐/-/g; s/−/-/g' "$WORK/page.txt" >"$WORK/page.ascii"
for opt in $options; do
	check "the page documents $opt" grep -qF -- "$opt" "$WORK/page.ascii"
done

finish
