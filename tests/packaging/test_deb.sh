#!/usr/bin/env bash
# packaging.deb - `cpack -G DEB` builds trackgate's .deb from this build tree;
# its control fields, its maintainer scripts and its files are checked, and
# it is unpacked into <build>/tests/packaging/root for the other packaging
# tests (this test is their fixture).
#
#   test_deb.sh BUILD_DIR SOURCE_DIR
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "$0")/common.sh"

need cpack cmake
need dpkg-deb dpkg
need objdump binutils

rm -rf "$ROOT" "$PKG_DIR/control" "$PKG_DIR"/*.deb
# cpack first builds the `preinstall` target (a no-op in a built tree), then
# installs with prefix /usr into its staging folder under WORK.
if ! cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$WORK" >"$WORK/cpack.log" 2>&1; then
	cat "$WORK/cpack.log" >&2
	fail "cpack -G DEB"
	finish
fi
debs=("$WORK"/*.deb)
if [ "${#debs[@]}" -ne 1 ] || [ ! -f "${debs[0]}" ]; then
	fail "cpack made exactly one .deb (${debs[*]})"
	finish
fi
deb=${debs[0]}
cp "$deb" "$PKG_DIR/"
echo "package: $PKG_DIR/$(basename "$deb")"

field() { dpkg-deb --field "$deb" "$1"; }

version=$(sed -n 's/^project(trackgate VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
check "Package is trackgate" [ "$(field Package)" = trackgate ]
check "Version is the project's ($version)" [ "$(field Version)" = "$version" ]
check "Architecture is this machine's" [ "$(field Architecture)" = "$(dpkg --print-architecture)" ]
depends=$(field Depends)
echo "Depends: $depends"
echo "Recommends: $(field Recommends)"

# Depends names a package by itself, with or without a version.
has_dep() { echo ", $depends," | grep -Eq "[ ,]$1( \([^)]*\))?,"; }
check "Depends on libwebsockets-evlib-uv (lws loads it as a plugin)" has_dep libwebsockets-evlib-uv
check "Recommends redis-server" [ "$(field Recommends)" = redis-server ]
check "Maintainer is the project's address" \
	[ "$(field Maintainer)" = "trackgate maintainers <maintainers@trackgate.invalid>" ]

# Every library the two binaries link (their NEEDED entries; what those pull
# in is their packages' business) must come from a package in Depends.
dpkg-deb -x "$deb" "$ROOT"
dpkg-deb -e "$deb" "$PKG_DIR/control"
for bin in usr/sbin/trackgated usr/bin/trackgate-watch usr/bin/trackgate-token; do
	check "$bin is in the package" [ -x "$ROOT/$bin" ]
	[ -x "$ROOT/$bin" ] || continue
	needed=$(objdump -p "$ROOT/$bin" | awk '$1 == "NEEDED" { print $2 }')
	while read -r soname lib; do
		grep -qxF "$soname" <<<"$needed" || continue
		real=$(readlink -f "$lib")
		owner=$(dpkg -S "$real" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || true)
		owner=${owner%%:*}
		if [ -z "$owner" ]; then
			fail "$bin: no Debian package owns $lib"
		elif has_dep "$owner"; then
			pass "$bin: $(basename "$lib") comes from $owner, in Depends"
		else
			fail "$bin: $(basename "$lib") comes from $owner, which Depends lacks"
		fi
	done < <(ldd "$ROOT/$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }')
	if ldd "$ROOT/$bin" | grep -q "not found"; then
		fail "$bin: a library is not found: $(ldd "$ROOT/$bin" | grep 'not found')"
	fi
done

# The files, in FHS places, and nothing else.
expected=(
	usr/sbin/trackgated
	usr/bin/trackgate-watch
	usr/lib/systemd/system/trackgated.service
	usr/lib/systemd/system/trackgated@.service
	etc/trackgate/trackgated.conf.example
	usr/bin/trackgate-token
	usr/share/man/man8/trackgated.8.gz
	usr/share/man/man1/trackgate-watch.1.gz
	usr/share/man/man1/trackgate-token.1.gz
	usr/share/doc/trackgate/copyright
	usr/share/doc/trackgate/changelog.gz
	usr/share/lintian/overrides/trackgate
	usr/share/doc/trackgate/README.md
	usr/share/doc/trackgate/README.deploy.md
	usr/share/doc/trackgate/README.adapters.md
	usr/share/doc/trackgate/README.proto.md
	usr/share/doc/trackgate/examples/nginx.conf
	usr/share/doc/trackgate/examples/haproxy.cfg
	usr/share/doc/trackgate/examples/redis.conf
	usr/share/doc/trackgate/examples/trackgated.conf.example
)
for f in "${expected[@]}"; do
	check "ships /$f" [ -f "$ROOT/$f" ]
done
stray=$(dpkg-deb --fsys-tarfile "$deb" | tar -t | sed 's#^\./##' |
	grep -Ev '^$|^etc/$|^etc/trackgate/|^usr/$|^usr/(bin|sbin)/|^usr/lib/$|^usr/lib/systemd/|^usr/share/$|^usr/share/(doc/trackgate|man/man[18]|man|lintian|lintian/overrides)/|^usr/share/doc/$|^usr/share/lintian/overrides/trackgate$' || true)
check "no file outside the FHS places above${stray:+: $stray}" [ -z "$stray" ]
check "the units are not executable (mode 0644)" \
	[ "$(stat -c %a "$ROOT/usr/lib/systemd/system/trackgated.service")" = 644 ]
check "the installed unit starts /usr/sbin/trackgated" \
	grep -q '^ExecStart=/usr/sbin/trackgated ' "$ROOT/usr/lib/systemd/system/trackgated.service"
check "no build path leaked into the package" \
	lacks "$BUILD" "$ROOT/etc" "$ROOT/usr/lib" "$ROOT/usr/share"

# Control: /etc files are conffiles; the maintainer scripts parse, are
# executable and never enable or start the service on a first install.
check "conffiles lists the example config" \
	grep -qx /etc/trackgate/trackgated.conf.example "$PKG_DIR/control/conffiles"
for s in postinst prerm postrm; do
	f=$PKG_DIR/control/$s
	check "$s is there and executable" [ -x "$f" ]
	check "$s parses (sh -n)" sh -n "$f"
	if command -v shellcheck >/dev/null 2>&1; then
		check "$s passes shellcheck" shellcheck -s sh "$f"
	fi
	# The script's commands, without its here-documents (messages).
	awk '/<<.?MSG/ { skip = 1; next } /^MSG$/ { skip = 0; next } !skip' "$f" >"$WORK/$s.code"
	check "$s neither starts nor enables a unit (try-restart on upgrade is fine)" \
		lacks_re '(systemctl|deb-systemd-invoke)[^#]* (enable|start|restart|reenable)( |$)' \
		"$WORK/$s.code"
	# dh_installsystemd --no-enable: `deb-systemd-helper enable` only
	# recreates the symlinks of a unit the admin had enabled.
	# shellcheck disable=SC2016 # awk's $0
	check "$s enables only a unit that was enabled before (was-enabled)" \
		awk '/deb-systemd-helper enable/ && prev !~ /was-enabled/ { bad = 1 }
			!/^[[:space:]]*(#|$)/ { prev = $0 } END { exit bad }' "$WORK/$s.code"
done

finish
