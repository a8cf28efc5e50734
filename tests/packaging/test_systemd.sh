#!/usr/bin/env bash
# packaging.systemd - the units as the .deb installs them:
#   - `systemd-analyze verify` passes for trackgated.service and an instance
#     of trackgated@.service, with no warning about them (it checks the
#     directives, that ExecStart's binary exists and is executable, and that
#     the man page of Documentation= exists);
#   - `systemd-analyze security --offline=yes` prints their exposure (reported,
#     not judged);
#   - the template differs from the plain unit only where it must;
#   - the timeouts fit the example config.
# verify runs with --root on a copy of the unpacked .deb plus this machine's
# own units (for sysinit.target and the like) and /bin/kill (ExecReload).
#
#   test_systemd.sh BUILD_DIR SOURCE_DIR
# shellcheck disable=SC2016 # $MAINPID and ${CREDENTIALS_DIRECTORY} are systemd's, literal here
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "$0")/common.sh"
need_root
need systemd-analyze systemd

units=$ROOT/usr/lib/systemd/system
vroot=$WORK/root
mkdir -p "$vroot"
cp -a "$ROOT/." "$vroot/"
host_units=/usr/lib/systemd/system
[ -d "$host_units" ] || host_units=/lib/systemd/system
cp -rn "$host_units/." "$vroot/usr/lib/systemd/system/"
mkdir -p "$vroot/usr/bin"
cp "$(type -P kill)" "$vroot/usr/bin/kill"
ln -s usr/bin "$vroot/bin"

set +e
MANPATH=$vroot/usr/share/man systemd-analyze verify --root="$vroot" \
	trackgated.service trackgated@example.service >"$WORK/verify.out" 2>&1
rc=$?
set -e
echo "systemd-analyze verify (exit $rc):"
sed 's/^/  /' "$WORK/verify.out"
check "systemd-analyze verify exits 0" [ "$rc" -eq 0 ]
check "and says nothing about trackgated's units" lacks trackgated "$WORK/verify.out"

for unit in trackgated.service trackgated@example.service; do
	systemd-analyze security --offline=yes --root="$vroot" "$unit" >"$WORK/security.out" 2>&1 || true
	score=$(grep -a 'Overall exposure level' "$WORK/security.out" || true)
	echo "systemd-analyze security $unit: ${score#*: }"
	grep -a '^✗' "$WORK/security.out" | sed 's/  */ /g; s/^/  /' || true
	check "systemd-analyze security rates $unit" [ -n "$score" ]
done

# The template is the plain unit with the instance's config: nothing else
# may drift between them.
directives() {
	grep -Ev '^[[:space:]]*([#;]|$)' "$1" |
		sed -e 's#/etc/trackgate/%i\.conf#/etc/trackgate/trackgated.conf#g' -e 's/ (%i)$//'
}
if diff <(directives "$units/trackgated.service") <(directives "$units/trackgated@.service") >"$WORK/template.diff"; then
	pass "trackgated@.service is trackgated.service but for %i"
else
	cat "$WORK/template.diff"
	fail "trackgated@.service drifted from trackgated.service"
fi

# Settings the issue asks for, and that the tests of the daemon rely on.
unit=$units/trackgated.service
for want in 'Type=notify' 'NotifyAccess=main' 'WatchdogSec=' 'DynamicUser=yes' 'LimitNOFILE=' \
	'ProtectSystem=strict' 'ProtectHome=yes' 'NoNewPrivileges=yes' 'PrivateTmp=yes' \
	'RestrictAddressFamilies=' 'MemoryDenyWriteExecute=yes' 'SystemCallFilter=' \
	'LoadCredential=ingest-keys:/etc/trackgate/ingest-keys' 'ExecReload=/bin/kill -HUP $MAINPID' \
	'RestartPreventExitStatus=2'; do
	check "the unit sets $want" grep -qF -- "$want" <(grep -v '^#' "$unit")
done
check "ExecStart reads the key credential" \
	grep -qxF 'ExecStart=/usr/sbin/trackgated --config /etc/trackgate/trackgated.conf --ingest-key-file ${CREDENTIALS_DIRECTORY}/ingest-keys' "$unit"
check "[Install] is multi-user.target" grep -qx 'WantedBy=multi-user.target' "$unit"

# TimeoutStopSec must outlast drain-timeout plus the supervisor's 5 s of
# grace with workers; LimitNOFILE must exceed max-connections.
conf=$ROOT/etc/trackgate/trackgated.conf.example
setting() { sed -n "s/^$1 *= *\([0-9]*\).*/\1/p" "$conf"; }
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' "$unit")
check "TimeoutStopSec=$stop s > drain-timeout $(setting drain-timeout) s + 5 s" \
	[ "${stop:-0}" -gt $(($(setting drain-timeout) + 5)) ]
nofile=$(sed -n 's/^LimitNOFILE=\([0-9]*\)$/\1/p' "$unit")
check "LimitNOFILE=$nofile > max-connections $(setting max-connections) + 64 + headroom" \
	[ "${nofile:-0}" -gt $(($(setting max-connections) + 1024)) ]

finish
