#!/usr/bin/env bash
# packaging.check_config - the packaged trackgated, run from the unpacked
# .deb, accepts the packaged example config with a key file and a webhook
# secret file (`--check-config`: effective settings, secrets masked, exit
# 0), and rejects bad ones with exit 1 and a message.
#
#   test_check_config.sh BUILD_DIR SOURCE_DIR
# shellcheck disable=SC2016 # the bash -c scripts take their arguments as $1...
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "$0")/common.sh"
need_root

bin=$ROOT/usr/sbin/trackgated
conf=$ROOT/etc/trackgate/trackgated.conf.example
key=packaging-test-key-$RANDOM$RANDOM-0123456789abcdef
secret=packaging-test-secret-$RANDOM$RANDOM
(
	umask 077
	printf '# ingest keys\n%s\n' "$key" >"$WORK/ingest-keys"
	printf '%s\n' "$secret" >"$WORK/uber.secret"
)

version=$("$bin" --version)
check "--version names the project's version ($version)" \
	grep -q "$(sed -n 's/^project(trackgate VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")" <<<"$version"

if ! "$bin" --help | grep -q -- '--check-config'; then
	fail "trackgated --help does not offer --check-config"
	finish
fi

run() {
	set +e
	"$bin" --check-config "$@" >"$WORK/out" 2>&1
	rc=$?
	set -e
	cat "$WORK/out"
}

run --config "$conf" --ingest-key-file "$WORK/ingest-keys" --webhook-secret-file "uber_direct=$WORK/uber.secret"
check "the example config with a key file passes (exit 0)" [ "$rc" -eq 0 ]
check "it says so" grep -q "configuration OK" "$WORK/out"
check "it prints every setting of the example config" bash -c '
	for s in $(sed -n "s/^\([a-z-]*\) *=.*/\1/p" "$1"); do
		grep -q "^$s *=" "$2" || { echo "missing: $s"; exit 1; }
	done' _ "$conf" "$WORK/out"
check "the ingest key is masked" lacks "$key" "$WORK/out"
check "the webhook secret is masked" lacks "$secret" "$WORK/out"

# As the unit runs it: the command line wins over the file's ingest-key-file.
run --config "$conf" --ingest-key-file "$WORK/ingest-keys" --listen '*:8443' --workers 4
check "command-line settings win over the file (exit 0)" [ "$rc" -eq 0 ]
check "the effective listen is the command line's" grep -Eq '^listen *= *(\*|0\.0\.0\.0|):8443' "$WORK/out"
check "the effective workers is the command line's" grep -Eq '^workers *= *4' "$WORK/out"

run --config "$conf" --ingest-key-file "$WORK/missing-keys"
check "a missing key file fails with exit 1" [ "$rc" -eq 1 ]
check "naming the file" grep -q "missing-keys" "$WORK/out"

printf 'listen = nowhere\n' >"$WORK/bad.conf"
run --config "$WORK/bad.conf" --ingest-key-file "$WORK/ingest-keys"
check "a bad setting fails with exit 1" [ "$rc" -eq 1 ]
check "naming the setting" grep -q "listen" "$WORK/out"

run --config "$conf" --ingest-key-file "$WORK/ingest-keys" --webhook-secret-file "uber_direct=$WORK/none"
check "a missing webhook secret file fails with exit 1" [ "$rc" -eq 1 ]

finish
