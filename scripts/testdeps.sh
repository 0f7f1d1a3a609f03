#!/usr/bin/env bash
# Builds the pinned servers the tests run against (Consul, etcd, Pebble and its
# DNS server pebble-challtestsrv) into a cache directory outside the
# repository, skipping what is already built.
#
#   TOLLGATE_TESTDEPS  where the binaries go
#                      (default ${XDG_CACHE_HOME:-$HOME/.cache}/tollgate/testdeps)
#
# With arguments (consul, etcd, pebble), builds only those: "pebble" is Pebble
# and pebble-challtestsrv. The demos use that to build what they need.
#
# Consul and etcd are built through a throw-away wrapper module in a temp
# directory because their own go.mod files carry replace directives, which Go
# ignores for dependencies; the wrapper pins what those replaces point to.
set -euo pipefail

CONSUL_VERSION=v1.21.0
ETCD_VERSION=v3.6.5
PEBBLE_VERSION=v2.10.1

dir=${TOLLGATE_TESTDEPS:-${XDG_CACHE_HOME:-$HOME/.cache}/tollgate/testdeps}
mkdir -p "$dir"
export GOFLAGS=-mod=mod
export GONOSUMDB=${GONOSUMDB:+$GONOSUMDB,}github.com/hashicorp/consul-awsauth
export CGO_ENABLED=0

work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

# fail NAME LOG: reports a failed build with the end of its output.
fail() {
  echo "testdeps: building $1 failed; the end of its output:" >&2
  tail -n 40 "$2" >&2
  exit 1
}

# have NAME VERSION: true when $dir/NAME exists and was built at VERSION.
have() {
  [ -x "$dir/$1" ] && [ "$(cat "$dir/$1.version" 2>/dev/null)" = "$2" ]
}

# wrapper NAME MODULE VERSION PACKAGE [extra go.mod lines...]: builds PACKAGE
# of MODULE@VERSION through a wrapper module into $dir/NAME.
wrapper() {
  local name=$1 module=$2 version=$3 pkg=$4
  shift 4
  if have "$name" "$version"; then
    echo "testdeps: $name $version already built"
    return
  fi
  echo "testdeps: building $name $version (this can take several minutes)"
  local w="$work/$name"
  mkdir -p "$w"
  (
    cd "$w"
    printf 'module tollgate.local/testdeps/%s\n\ngo 1.26\n' "$name" >go.mod
    for line in "$@"; do printf '%s\n' "$line" >>go.mod; done
    printf 'package tools\n\nimport _ "%s"\n' "$pkg" >tools.go
    # The tools.go import is a main package: keep it out of the build; it only
    # makes 'go mod tidy' keep the requirement.
    sed -i '1i //go:build tools\n' tools.go
    go get "$module@$version"
    go mod tidy
    go build -trimpath -o "$dir/$name.tmp" "$pkg"
  ) >"$work/$name.log" 2>&1 || fail "$name" "$work/$name.log"
  mv "$dir/$name.tmp" "$dir/$name"
  echo "$version" >"$dir/$name.version"
}

# wanted NAME: true when NAME is to be built (every one without arguments).
wanted() {
  [ ${#only[@]} -eq 0 ] && return 0
  local w
  for w in "${only[@]}"; do [ "$w" = "$1" ] && return 0; done
  return 1
}
only=("$@")
for w in "${only[@]}"; do
  case $w in
  consul | etcd | pebble) ;;
  *)
    echo "testdeps: unknown dependency $w (want consul, etcd or pebble)" >&2
    exit 2
    ;;
  esac
done

if wanted consul; then
  wrapper consul github.com/hashicorp/consul "$CONSUL_VERSION" github.com/hashicorp/consul \
    'exclude github.com/hashicorp/go-msgpack v1.1.5' \
    'exclude github.com/hashicorp/go-msgpack v1.1.6'
fi

if wanted etcd; then
  wrapper etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3
fi

# goinstall NAME PACKAGE VERSION: go-installs PACKAGE@VERSION (its module has
# no replace directives) into $dir/NAME.
goinstall() {
  local name=$1 pkg=$2 version=$3
  if have "$name" "$version"; then
    echo "testdeps: $name $version already built"
    return
  fi
  echo "testdeps: building $name $version"
  GOBIN="$work/$name-bin" go install "$pkg@$version" \
    >"$work/$name.log" 2>&1 || fail "$name" "$work/$name.log"
  mv "$work/$name-bin/$(basename "$pkg")" "$dir/$name"
  echo "$version" >"$dir/$name.version"
}

if wanted pebble; then
  goinstall pebble github.com/letsencrypt/pebble/v2/cmd/pebble "$PEBBLE_VERSION"
  # Pebble's DNS server for the tests: it answers every name with 127.0.0.1.
  goinstall pebble-challtestsrv github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv "$PEBBLE_VERSION"
fi

echo "testdeps: ${*:-consul etcd pebble} in $dir"
