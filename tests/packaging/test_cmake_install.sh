#!/usr/bin/env bash
# packaging.cmake_install - `cmake --install` with DESTDIR, for three
# prefixes: the config example lands in the prefix's sysconfdir (/etc for
# /usr, as GNUInstallDirs says, even though this tree was configured for
# another prefix), and the units start the binary of that prefix.  With the
# prefix /usr it installs exactly the .deb's files.
#
#   test_cmake_install.sh BUILD_DIR SOURCE_DIR
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "$0")/common.sh"
need_root

# install PREFIX: into $WORK/PREFIX-as-a-name, printing the log on failure.
install_to() {
	local dest=$WORK/root${1//\//_}
	if ! DESTDIR=$dest cmake --install "$BUILD" --prefix "$1" >"$dest.log" 2>&1; then
		cat "$dest.log" >&2
		fail "cmake --install --prefix $1"
	fi
	echo "$dest"
}

execstart() { sed -n 's/^ExecStart=\([^ ]*\) .*/\1/p' "$1"; }

d=$(install_to /usr)
check "prefix /usr: the example config is in /etc/trackgate" [ -f "$d/etc/trackgate/trackgated.conf.example" ]
check "prefix /usr: nothing in /usr/etc" [ ! -e "$d/usr/etc" ]
check "prefix /usr: the units are in /usr/lib/systemd/system" \
	[ -f "$d/usr/lib/systemd/system/trackgated.service" ] && [ -f "$d/usr/lib/systemd/system/trackgated@.service" ]
check "prefix /usr: ExecStart=/usr/sbin/trackgated" \
	[ "$(execstart "$d/usr/lib/systemd/system/trackgated.service")" = /usr/sbin/trackgated ]
check "prefix /usr: the units are the source's, unchanged" \
	cmp -s "$d/usr/lib/systemd/system/trackgated.service" "$SRC/deploy/trackgated.service"
(cd "$d" && find . -type f | sort) >"$WORK/install.list"
(cd "$ROOT" && find . -type f | sort) >"$WORK/deb.list"
if diff "$WORK/deb.list" "$WORK/install.list" >"$WORK/lists.diff"; then
	pass "prefix /usr installs exactly the .deb's $(wc -l <"$WORK/deb.list") files"
else
	cat "$WORK/lists.diff"
	fail "cmake --install --prefix /usr and the .deb differ"
fi

d=$(install_to /usr/local)
check "prefix /usr/local: the example config is in /usr/local/etc/trackgate" \
	[ -f "$d/usr/local/etc/trackgate/trackgated.conf.example" ]
check "prefix /usr/local: nothing in /etc" [ ! -e "$d/etc" ]
for u in trackgated.service trackgated@.service; do
	check "prefix /usr/local: $u (read by systemd there) starts /usr/local/sbin/trackgated" \
		[ "$(execstart "$d/usr/local/lib/systemd/system/$u")" = /usr/local/sbin/trackgated ]
done
check "prefix /usr/local: the binary is there" [ -x "$d/usr/local/sbin/trackgated" ]

d=$(install_to /opt/trackgate)
check "prefix /opt/trackgate: the example config is in /etc/opt/trackgate/trackgate" \
	[ -f "$d/etc/opt/trackgate/trackgate/trackgated.conf.example" ]
check "prefix /opt/trackgate: ExecStart=/opt/trackgate/sbin/trackgated" \
	[ "$(execstart "$d/opt/trackgate/lib/systemd/system/trackgated.service")" = /opt/trackgate/sbin/trackgated ]

finish
