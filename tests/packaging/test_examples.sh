#!/usr/bin/env bash
# packaging.examples - the example configs the .deb ships under
# /usr/share/doc/trackgate/examples are accepted by the programs they are
# for: redis.conf by Debian's redis-server (started on a private socket with
# it, then its settings read back), haproxy.cfg by `haproxy -c` and
# nginx.conf by `nginx -t` when those are installed (they are not project
# dependencies: without them the check is reported as not run).
#
#   test_examples.sh BUILD_DIR SOURCE_DIR
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "$0")/common.sh"
need_root
need redis-server redis-server
need redis-cli redis-tools

ex=$ROOT/usr/share/doc/trackgate/examples

# redis.conf: as the include it is meant to be, the last word over a base
# config; the network and paths are moved into WORK.
sock=$WORK/redis.sock
printf 'include %s\n' "$ex/redis.conf" >"$WORK/redis-test.conf"
printf 'port 0\nbind 127.0.0.1\nunixsocket %s\nunixsocketperm 700\ndir %s\ndaemonize no\nlogfile %s\nmaxmemory 64mb\n' \
	"$sock" "$WORK" "$WORK/redis.log" >>"$WORK/redis-test.conf"
redis-server "$WORK/redis-test.conf" &
redis_pid=$!
trap 'kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
	[ -S "$sock" ] && break
	kill -0 "$redis_pid" 2>/dev/null || break
	sleep 0.05
done
if [ -S "$sock" ]; then
	pass "redis-server starts with redis.conf"
	get() { redis-cli -s "$sock" --raw CONFIG GET "$1" | sed -n 2p; }
	check "appendonly yes (acknowledged updates survive a restart)" [ "$(get appendonly)" = yes ]
	check "appendfsync everysec" [ "$(get appendfsync)" = everysec ]
	check "no RDB snapshots" [ -z "$(get save)" ]
	check "maxmemory-policy volatile-ttl" [ "$(get maxmemory-policy)" = volatile-ttl ]
	check "timeout 0 (idle subscribers stay)" [ "$(get timeout)" = 0 ]
	check "a larger pub/sub output bound" grep -q 'pubsub 268435456 67108864 60' <<<"$(get client-output-buffer-limit)"
	check "protected-mode yes" [ "$(get protected-mode)" = yes ]
else
	cat "$WORK/redis.log" >&2 || true
	fail "redis-server starts with redis.conf"
fi

# haproxy.cfg: merged under a global/defaults like Debian's.
if command -v haproxy >/dev/null 2>&1; then
	printf 'global\n  log stdout format raw local0\ndefaults\n  log global\n  timeout connect 5s\n  timeout client 50s\n  timeout server 50s\n' >"$WORK/haproxy.cfg"
	cat "$ex/haproxy.cfg" >>"$WORK/haproxy.cfg"
	check "haproxy -c accepts haproxy.cfg" haproxy -c -q -f "$WORK/haproxy.cfg"
else
	echo "not run: haproxy -c (haproxy is not installed)"
fi

# nginx.conf: a site file, included in a minimal http {} with a throwaway
# certificate in place of the example's paths.
if command -v nginx >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1; then
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=track.example.com \
		-keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
	sed -e "s#/etc/ssl/certs/track.example.com.pem#$WORK/cert.pem#" \
		-e "s#/etc/ssl/private/track.example.com.key#$WORK/key.pem#" "$ex/nginx.conf" >"$WORK/site.conf"
	mkdir -p "$WORK/nginx-tmp"
	cat >"$WORK/nginx.conf" <<NGINX
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events {}
http {
    access_log off;
    client_body_temp_path $WORK/nginx-tmp;
    proxy_temp_path $WORK/nginx-tmp;
    fastcgi_temp_path $WORK/nginx-tmp;
    uwsgi_temp_path $WORK/nginx-tmp;
    scgi_temp_path $WORK/nginx-tmp;
    include $WORK/site.conf;
}
NGINX
	check "nginx -t accepts nginx.conf" nginx -q -t -p "$WORK" -c "$WORK/nginx.conf"
else
	echo "not run: nginx -t (nginx or openssl is not installed)"
fi

finish
