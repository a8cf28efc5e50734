#!/usr/bin/env bash
# packaging.manpage - the man pages as the .deb installs them, trackgated(8),
# trackgate-watch(1) and trackgate-token(1): each is compressed with gzip
# -9n (Debian policy 12.3: no name, no time stamp), man and groff format it
# without a single warning, and it documents every option that the binary's
# `--help` lists (so a new option cannot land undocumented).
#
#   test_manpage.sh BUILD_DIR SOURCE_DIR
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "$0")/common.sh"
need_root
need man man-db
need groff groff-base

# page_checks NAME SECTION BINARY SECTIONS...
page_checks() {
	local name=$1 sec=$2 bin=$3 page out
	shift 3
	page=$ROOT/usr/share/man/man$sec/$name.$sec.gz
	out=$WORK/$name
	check "the package ships $name.$sec.gz" [ -f "$page" ]
	[ -f "$page" ] || return 0
	check "$name.$sec.gz is gzip -9n (no name, no time stamp)" \
		[ "$(od -An -tx1 -j3 -N5 "$page" | tr -d ' ')" = 0000000000 ]
	check "$name.$sec.gz is not a plain-text page" [ ! -e "${page%.gz}" ]

	MANWIDTH=80 man -l --warnings "$page" >"$out.txt" 2>"$out.warnings" || true
	cat "$out.warnings"
	check "$name: man -l --warnings prints no warning" [ ! -s "$out.warnings" ]
	check "$name: man renders the page" grep -q "$name" "$out.txt"
	zcat "$page" | groff -man -ww -z 2>"$out.groff" || true
	cat "$out.groff"
	check "$name: groff -man -ww prints no warning" [ ! -s "$out.groff" ]
	for section in "$@"; do
		check "$name: the page has $section" grep -qx "$section" "$out.txt"
	done

	# Every --option of --help, in the rendered page (hyphens as man prints them).
	"$ROOT/$bin" --help >"$out.help"
	options=$(grep -oE -- '--[a-z][a-z-]+' "$out.help" | sort -u)
	check "$name: --help lists options" [ -n "$options" ]
	sed 's/‐/-/g; s/−/-/g' "$out.txt" >"$out.ascii"
	for opt in $options --help; do
		check "$name: the page documents $opt" grep -qF -- "$opt" "$out.ascii"
	done
}

page_checks trackgated 8 usr/sbin/trackgated \
	NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" FILES "SEE ALSO"
page_checks trackgate-watch 1 usr/bin/trackgate-watch \
	NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" "SEE ALSO"
page_checks trackgate-token 1 usr/bin/trackgate-token \
	NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" "SEE ALSO"

finish
