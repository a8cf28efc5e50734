#!/usr/bin/env bash
# packaging.nspawn - the .deb under a real systemd: a Debian 12 root booted
# with systemd-nspawn (its own systemd 252 as PID 1, no network), the
# package and redis-server installed inside it with apt, and then:
#   - the first install enables and starts nothing; enabled with its config
#     and key, the unit starts, is ready (READY=1: active, and its STATUS=)
#     and /readyz answers 200 on 127.0.0.1 inside;
#   - `systemctl reload` after the ingest key changed keeps the old key (it
#     is a credential, copied at start: deploy/README.md says to restart),
#     and the journal shows `reload status=unchanged`; a restart loads it;
#   - `systemctl stop` closes a websocket with 1001 and the unit exits 0
#     (ExecMainStatus);
#   - the watchdog restarts a single process that stopped (SIGSTOP), and
#     with workers = 2 the supervisor replaces a stopped worker without a
#     restart of the service;
#   - apt purge stops it and leaves nothing of the package behind: only the
#     two files the admin (this test) wrote stay.
# The root is made once by bookworm_root.sh and kept in
# /var/cache/trackgate-tests/bookworm ($TRACKGATE_NSPAWN_CACHE); each run
# boots an overlay of it (the root stays clean) under /var/tmp, removed at
# the end.  Needs root, systemd-nspawn (systemd-container), debootstrap and,
# on the first run, the Debian mirror (about 65 MB, about 75 s); after
# that about 30 s, offline.  Every wait is a deadline on a condition.
#
#   test_nspawn.sh BUILD_DIR SOURCE_DIR
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "$0")/common.sh"
need_root
[ "$(id -u)" -eq 0 ] || skip "systemd-nspawn needs root"
need systemd-nspawn systemd-container
need nsenter util-linux
need debootstrap debootstrap
start_s=$(date +%s)

debs=("$PKG_DIR"/trackgate_*.deb)
deb=${debs[0]}
[ -f "$deb" ] || {
	fail "no .deb in $PKG_DIR: packaging.deb must run first"
	finish
}

# The root, with the .debs of redis-server and of the package's Depends.
cache=${TRACKGATE_NSPAWN_CACHE:-/var/cache/trackgate-tests/bookworm}
mapfile -t deps < <(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/[[:space:]]//g' | grep .)
# One run at a time per root (two build trees may test at once): the root
# is the overlay's lower layer, and bookworm_root.sh may add to it.
mkdir -p "$(dirname "$cache")"
exec 9>"$cache.lock"
flock -w 300 9 || {
	fail "another packaging.nspawn held $cache.lock for 5 minutes"
	finish
}
rc=0
bash "$SRC/tests/packaging/bookworm_root.sh" "$cache" "${deps[@]}" || rc=$?
[ "$rc" -eq 77 ] && skip "bookworm_root.sh: a tool is missing"
[ "$rc" -eq 0 ] || {
	fail "bookworm_root.sh $cache (exit $rc)"
	finish
}
echo "root: $cache, ready after $(($(date +%s) - start_s)) s"

run=$(mktemp -d /var/tmp/trackgate-nspawn.XXXXXX)
mkdir "$run/upper" "$run/work" "$run/root"
nspawn_pid=
leader=

# Powers the container off (SIGTERM to nspawn), SIGKILL after a deadline,
# and removes the overlay: on success and on failure alike.
cleanup() {
	if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
		kill -TERM "$nspawn_pid" 2>/dev/null || true
		for _ in $(seq 100); do
			kill -0 "$nspawn_pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$nspawn_pid" 2>/dev/null; then
			echo "cleanup: the container did not power off in 10 s: SIGKILL" >&2
			if [ -n "$leader" ]; then kill -KILL "$leader" 2>/dev/null || true; fi
			kill -KILL "$nspawn_pid" 2>/dev/null || true
		fi
		wait "$nspawn_pid" 2>/dev/null || true
	fi
	if mountpoint -q "$run/root"; then
		umount "$run/root" 2>/dev/null || umount -l "$run/root" || true
	fi
	rm -rf "$run"
}
trap cleanup EXIT
trap "exit 143" TERM INT HUP

mount -t overlay overlay -o "lowerdir=$cache,upperdir=$run/upper,workdir=$run/work" "$run/root"
cp "$deb" "$run/root/root/trackgate.deb"
cp "$SRC/tests/packaging/nspawn_client.py" "$run/root/root/"

# quiet NAME COMMAND...: COMMAND with its output in WORK/NAME.log, shown
# only when it fails.
quiet() {
	local name=$1
	shift
	"$@" >"$WORK/$name.log" 2>&1 || {
		local rc=$?
		tail -20 "$WORK/$name.log" >&2
		return "$rc"
	}
}

# wait_for SECONDS COMMAND...: true once COMMAND succeeds, false after SECONDS.
wait_for() {
	local end=$(($(date +%s%N) / 1000000 + $1 * 1000))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $(($(date +%s%N) / 1000000)) -lt "$end" ] || return 1
		sleep 0.2
	done
}

# inside COMMAND...: COMMAND inside the container, inside all its namespaces.
inside() {
	nsenter -t "$leader" -a -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 \
		DEBIAN_FRONTEND=noninteractive "$@"
}
prop() { inside systemctl show -p "$1" --value trackgated.service; }
leader_up() {
	leader=$(ps -o pid= --ppid "$nspawn_pid" | tr -d ' ' | head -1)
	[ -n "$leader" ] && [ "$(cat "/proc/$leader/comm" 2>/dev/null)" = systemd ]
}
booted() { inside systemctl is-system-running | grep -Eqx 'running|degraded'; }

systemd-nspawn --register=no --keep-unit --private-network --console=pipe \
	-D "$run/root" --boot --machine="trackgate-test-$$" </dev/null >"$WORK/console.log" 2>&1 &
nspawn_pid=$!
if ! wait_for 20 leader_up || ! wait_for 60 booted; then
	cat "$WORK/console.log" >&2
	fail "the container boots (systemctl is-system-running: running)"
	finish
fi
pass "the container booted its systemd in $(($(date +%s) - start_s)) s (is-system-running: $(inside systemctl is-system-running || true))"

# What is there before the package: redis-server and the package's
# libraries installed (purge leaves those, as apt does).
if ! quiet apt-deps inside apt-get install -y -q --no-install-recommends redis-server "${deps[@]}"; then
	fail "apt-get install redis-server and the package's Depends (from the root's apt cache)"
	finish
fi
check "redis-server is active" wait_for 20 inside systemctl is-active --quiet redis-server
# Every path under /etc /usr /var/lib /opt /srv (less apt's and systemd's
# own bookkeeping), and the user and group databases' checksums.
snapshot() {
	{
		inside find /etc /usr /var/lib /opt /srv -xdev \
			-not -path '/var/lib/apt/*' -not -path '/var/lib/systemd/timers*' \
			-not -path '/var/lib/systemd/random-seed' -not -path '/var/lib/dpkg/*-old' \
			-not -path '/var/lib/dpkg/triggers/*' -not -name '*.pyc' -not -path '*/__pycache__*'
		inside md5sum /etc/passwd /etc/group /etc/shadow
	} | LC_ALL=C sort
}
snapshot >"$WORK/before.txt"

# The first install: nothing enabled, nothing started.
check "apt-get install ./trackgate.deb" quiet apt-install \
	inside apt-get install -y -q --no-install-recommends /root/trackgate.deb
check "postinst tells how to enable it" grep -q 'installed but not enabled' "$WORK/apt-install.log"
check "the unit is installed disabled" [ "$(inside systemctl is-enabled trackgated.service || true)" = disabled ]
check "and not started" [ "$(inside systemctl is-active trackgated.service || true)" = inactive ]

key1=k1-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
key2=k2-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
inside cp /etc/trackgate/trackgated.conf.example /etc/trackgate/trackgated.conf
write_key() { (umask 077 && echo "$1" >"$run/root/etc/trackgate/ingest-keys"); }
write_key "$key1"

check "systemctl enable --now trackgated" quiet enable inside systemctl enable --now trackgated.service
check "the unit is active (Type=notify: READY=1 came)" [ "$(prop ActiveState)" = active ]
check "its status is the READY notification's: $(prop StatusText)" \
	grep -q '^serving on 127.0.0.1:8080' <(prop StatusText)
readyz() { [ "$(inside curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/readyz)" = 200 ]; }
check "GET /readyz on 127.0.0.1:8080 inside: 200" wait_for 10 readyz

# post KEY: the status of one update posted with that bearer key.
n=0
post() {
	n=$((n + 1))
	inside curl -s -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:8080/v1/updates \
		-H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
		-d "{\"v\":1,\"order_id\":\"A1\",\"provider\":\"acme\",\"ts\":$(date +%s)000,\"event_id\":\"evt-$n\",\"location\":{\"lat\":52.52,\"lng\":13.40},\"status\":\"picked_up\"}"
}
check "POST /v1/updates with the key: 202" [ "$(post "$key1")" = 202 ]

# ws NAME: a websocket on order A1 inside; its log is /root/NAME.
ws() {
	inside python3 /root/nspawn_client.py 127.0.0.1:8080 A1 "/root/$1" >"$WORK/$1.out" 2>&1 &
	wait_for 10 grep -qx 'open snapshot' "$run/root/root/$1"
}
ws_closed() { grep -q '^close \|^lost' "$run/root/root/$1"; }
check "a websocket gets its snapshot" ws ws1

# Reload with a changed key: the key is a credential, copied at start, so
# the reload changes nothing and says so; the old key keeps working.
journal_count() { inside journalctl -u trackgated.service -o cat --no-pager | grep -c "$1" || true; }
write_key "$key2"
before=$(journal_count 'reload status=unchanged')
check "systemctl reload trackgated" inside systemctl reload trackgated.service
reloaded() { [ "$(journal_count 'reload status=unchanged')" -gt "$before" ]; }
check "the journal shows the reload line: reload status=unchanged" wait_for 10 reloaded
inside journalctl -u trackgated.service -o cat --no-pager | grep 'reload status=' | tail -1 | sed 's/^/  /'
check "after the reload the old key still works (202)" [ "$(post "$key1")" = 202 ]
check "and the new one is not loaded yet (401)" [ "$(post "$key2")" = 401 ]
check "the websocket stayed open through the reload" [ "$(cat "$run/root/root/ws1")" = "open snapshot" ]

# A restart loads it, as the docs say; the websocket is closed with 1001.
check "systemctl restart trackgated" inside systemctl restart trackgated.service
check "the restart closed the websocket with 1001" wait_for 10 grep -qx 'close 1001' "$run/root/root/ws1"
check "after the restart the new key works (202)" [ "$(post "$key2")" = 202 ]
check "and the old one is refused (401)" [ "$(post "$key1")" = 401 ]

# Stop: websockets get 1001, the process exits 0.
check "a websocket gets its snapshot again" ws ws2
check "systemctl stop trackgated" inside systemctl stop trackgated.service
check "stop closed the websocket with 1001" wait_for 10 grep -qx 'close 1001' "$run/root/root/ws2"
exited_0() { [ "$(prop ExecMainStatus)" = 0 ] && [ "$(prop ExecMainCode)" = 1 ]; }
check "the unit exited 0 (ExecMainStatus=$(prop ExecMainStatus), ExecMainCode=$(prop ExecMainCode): exited)" exited_0
check "its Result is success ($(prop Result))" [ "$(prop Result)" = success ]

# The watchdog.  The unit's WatchdogSec=30s, shortened to 5 s by a drop-in
# so the test takes seconds, not a minute: what is tested is that trackgated
# pings from its loop and systemd restarts it when the pings stop.
watchdog=$(grep -E '^WatchdogSec=' "$run/root/usr/lib/systemd/system/trackgated.service" || true)
check "the unit sets WatchdogSec ($watchdog)" [ -n "$watchdog" ]
mkdir -p "$run/root/etc/systemd/system/trackgated.service.d"
printf '[Service]\nWatchdogSec=5s\n' >"$run/root/etc/systemd/system/trackgated.service.d/watchdog.conf"
inside systemctl daemon-reload
check "systemctl start trackgated (WatchdogSec=5s)" inside systemctl start trackgated.service
pid=$(prop MainPID)
restarts=$(prop NRestarts)
inside kill -STOP "$pid"
stopped_at=$(date +%s)
restarted() {
	local now
	now=$(prop MainPID)
	[ "$now" != 0 ] && [ "$now" != "$pid" ] && [ "$(prop ActiveState)" = active ] && readyz
}
check "SIGSTOP on the main PID $pid: the watchdog restarted it" wait_for 40 restarted
echo "  restarted after $(($(date +%s) - stopped_at)) s: MainPID $(prop MainPID), NRestarts $restarts -> $(prop NRestarts)"
check "the journal says why: a watchdog timeout" \
	grep -q 'Watchdog timeout' <(inside journalctl -u trackgated.service --no-pager)

# workers = 2, under the unit as shipped (WatchdogSec=30s, the drop-in
# removed) and the default worker-stall-timeout (10 s): the supervisor
# kills a stopped worker and starts another, and the service itself is not
# restarted (the other worker's websockets stay up).
rm -r "$run/root/etc/systemd/system/trackgated.service.d"
inside systemctl daemon-reload
inside sed -i 's/^workers *=.*/workers = 2/' /etc/trackgate/trackgated.conf
check "systemctl restart trackgated with workers = 2" inside systemctl restart trackgated.service
sup=$(prop MainPID)
restarts=$(prop NRestarts)
workers() { inside ps -o pid= --ppid "$sup" | tr -d ' ' | sort; }
two_workers() { [ "$(workers | wc -l)" = 2 ]; }
check "the supervisor $sup has two workers: $(workers | tr '\n' ' ')" wait_for 10 two_workers
worker=$(workers | head -1)
other=$(workers | tail -1)
check "a websocket gets its snapshot (workers = 2)" ws ws3
if [ -n "$worker" ]; then
	inside kill -STOP "$worker"
	stopped_at=$(date +%s)
	replaced() {
		! workers | grep -qx "$worker" && two_workers && readyz
	}
	check "SIGSTOP on worker $worker: the supervisor replaced it (worker-stall-timeout 10 s)" \
		wait_for 25 replaced
	echo "  after $(($(date +%s) - stopped_at)) s: workers $(workers | tr '\n' ' ')(MainPID $sup -> $(prop MainPID), NRestarts $restarts -> $(prop NRestarts))"
	same_service() { [ "$(prop MainPID)" = "$sup" ] && [ "$(prop NRestarts)" = "$restarts" ]; }
	check "the service was not restarted (same supervisor, NRestarts $restarts)" same_service
	check "the other worker $other still runs" grep -qx "$other" <(workers)
	check "the journal shows the supervisor's worker_stalled line" \
		grep -q "worker_stalled" <(inside journalctl -u trackgated.service -o cat --no-pager)
	if ! grep -q '^close\|^lost' "$run/root/root/ws3"; then
		pass "the websocket on the other worker stayed open"
	else
		echo "  (the websocket was on the stopped worker: $(tr '\n' ' ' <"$run/root/root/ws3"))"
	fi
	inside kill -CONT "$worker" 2>/dev/null || true
fi

inside journalctl -u trackgated.service -o short-monotonic --no-pager >"$WORK/journal.txt" || true
# NotifyAccess=main: systemd logs each notification it drops from another pid.
check "systemd dropped no notification from a pid other than the main one" \
	lacks 'reception only permitted for main PID' "$WORK/journal.txt"

# Purge: the package stops the service and takes all of its own with it.
check "apt-get purge trackgate" quiet apt-purge inside apt-get purge -y -q trackgate
check "the service is stopped" [ "$(inside systemctl is-active trackgated.service || true)" = inactive ]
check "no trackgated process is left" bash -c "! nsenter -t $leader -a -- pgrep -x trackgated"
check "dpkg knows the package no more" bash -c "! nsenter -t $leader -a -- dpkg-query -W trackgate 2>/dev/null"
snapshot >"$WORK/after.txt"
left=$(LC_ALL=C comm -13 "$WORK/before.txt" "$WORK/after.txt")
gone=$(LC_ALL=C comm -23 "$WORK/before.txt" "$WORK/after.txt")
admin=$(printf '%s\n' /etc/trackgate /etc/trackgate/ingest-keys /etc/trackgate/trackgated.conf)
echo "left after the purge:"
printf '  %s\n' "${left:-(nothing)}" | sed '2,$s/^/  /'
check "purge leaves only the admin's own files (config and key)" [ "$left" = "$admin" ]
check "purge removes nothing that was there before${gone:+: $gone}" [ -z "$gone" ]

echo "packaging.nspawn: $(($(date +%s) - start_s)) s"
finish
