#!/bin/sh
# client.schemas_ajv: proto/schema/ compiled by Ajv 8 in strict mode, each schema
# registered by its $id, and the frames in frames.json (captured from a real
# trackgated by integration.schemas) validated against them (schemas_ajv.mjs).
#
# Debian 12 ships only Ajv 6 (draft-07, no strict mode), so Ajv comes from the
# npm registry: one pinned version, installed once with `npm install --prefix`
# into a cache outside the checkout ($TRACKGATE_NPM_CACHE, default
# ~/.cache/trackgate/npm) and reused from there.  Nothing is vendored.  When it
# cannot be installed the test fails: the registry is part of this machine's
# world, and a skipped schema check would look like a passing one.
set -eu
AJV_VERSION=8.20.0

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cache=${TRACKGATE_NPM_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/trackgate/npm}
prefix=$cache/ajv-$AJV_VERSION

installed() {
	[ "$(node -p "require('$prefix/node_modules/ajv/package.json').version" 2>/dev/null)" = "$AJV_VERSION" ]
}

if ! installed; then
	mkdir -p "$cache"
	tmp=$(mktemp -d "$cache/.ajv-$AJV_VERSION.XXXXXX")
	echo "installing ajv@$AJV_VERSION into $prefix (npm install --prefix)"
	if ! npm install --prefix "$tmp" --no-audit --no-fund --no-package-lock --ignore-scripts \
		--loglevel=error "ajv@$AJV_VERSION"; then
		rm -rf "$tmp"
		echo "FAIL: npm could not install ajv@$AJV_VERSION (is the npm registry reachable?);"
		echo "      install it by hand with: npm install --prefix $prefix ajv@$AJV_VERSION"
		exit 1
	fi
	# Another run may have installed it meanwhile: keep the first.
	mv -T "$tmp" "$prefix" 2>/dev/null || rm -rf "$tmp"
	installed || { echo "FAIL: $prefix does not hold ajv $AJV_VERSION"; exit 1; }
fi
exec node "$here/schemas_ajv.mjs" "$prefix" "$top/proto/schema" "$here/frames.json"
