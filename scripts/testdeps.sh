#!/usr/bin/env bash
# Builds the pinned servers the tests run against (Consul, etcd, Pebble and its
# DNS server pebble-challtestsrv, the Kubernetes API server and kubectl, and
# helm) into a cache directory outside the repository, skipping what is
# already built.
#
#   TOLLGATE_TESTDEPS  where the binaries go
#                      (default ${XDG_CACHE_HOME:-$HOME/.cache}/tollgate/testdeps)
#
# With arguments (consul, etcd, pebble, kube, helm, promtool), builds only
# those: "pebble" is Pebble and pebble-challtestsrv, "kube" is kube-apiserver
# and kubectl, "helm" is the Helm client for deploy/helm, "promtool" is
# Prometheus' rule checker for deploy/monitoring. The
# demos use that to build what they need.
#
# Consul and etcd are built through a throw-away wrapper module in a temp
# directory because their own go.mod files carry replace directives, which Go
# ignores for dependencies; the wrapper pins what those replaces point to.
# Kubernetes is built the same way: its go.mod points the k8s.io staging
# modules at directories of its own repository, and the wrapper replaces each
# by its published release instead (see kube below).
set -euo pipefail

CONSUL_VERSION=v1.21.0
ETCD_VERSION=v3.6.5
PEBBLE_VERSION=v2.10.1
KUBE_VERSION=v1.34.2
PROMETHEUS_VERSION=v0.316.0

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
  consul | etcd | pebble | kube | helm | promtool) ;;
  *)
    echo "testdeps: unknown dependency $w (want consul, etcd, pebble, kube, helm or promtool)" >&2
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

# kube: builds kube-apiserver and kubectl of k8s.io/kubernetes@KUBE_VERSION
# through one wrapper module. Kubernetes' go.mod requires its staging modules
# (k8s.io/api, k8s.io/client-go, ...) at v0.0.0 and replaces them by
# ./staging/src directories, which do not exist outside its repository. The
# wrapper takes the list from that go.mod and replaces each by its release
# of the same minor version (v1.34.2 -> v0.34.2), and sets the version
# variables Kubernetes' own build sets, which the binaries check (feature
# gates and kubectl's version skew depend on them).
kube() {
  if have kube-apiserver "$KUBE_VERSION" && have kubectl "$KUBE_VERSION"; then
    echo "testdeps: kube-apiserver and kubectl $KUBE_VERSION already built"
    return
  fi
  echo "testdeps: building kube-apiserver and kubectl $KUBE_VERSION (this can take ten minutes or more)"
  local w="$work/kube" log="$work/kube.log"
  # Staging modules are released as v0.MINOR.PATCH of Kubernetes v1.MINOR.PATCH.
  local staging="v0.${KUBE_VERSION#v1.}" major minor
  major=${KUBE_VERSION#v}
  major=${major%%.*}
  minor=${KUBE_VERSION#v*.}
  minor=${minor%%.*}
  mkdir -p "$w"
  (
    cd "$w"
    local info gomod released
    info=$(go list -m -f '{{.GoMod}} {{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' "k8s.io/kubernetes@$KUBE_VERSION")
    gomod=${info% *}
    released=${info#* }
    [ -s "$gomod" ] || { echo "no go.mod of k8s.io/kubernetes@$KUBE_VERSION at '$gomod'"; exit 1; }
    {
      printf 'module tollgate.local/testdeps/kube\n\ngo 1.26\n\n'
      # Kubernetes' GODEBUG defaults, as its own build has them.
      grep '^godebug ' "$gomod" || true
      # Every "k8s.io/x => ./staging/src/k8s.io/x", in a replace block or
      # on a replace line of its own.
      awk -v v="$staging" '
        $1 == "replace" { $1 = ""; $0 = $0 }
        $2 == "=>" && $3 ~ /^\.\/staging\// { print "replace " $1 " => " $1 " " v; n++ }
        END { if (n == 0) exit 1 }' "$gomod" ||
        { echo "no staging replace directives in $gomod"; exit 1; }
    } >go.mod
    printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n\t_ "k8s.io/kubernetes/cmd/kubectl"\n)\n' >tools.go
    # As Kubernetes' release builds: no symbol tables (-s -w), and the
    # version variables in both packages that hold them. The build date is
    # the release's, from the module proxy, so a rebuild is identical.
    local ldflags="-s -w" pkg
    for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
      ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
      ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$released"
    done
    # errexit does not hold in a subshell whose status is tested: chain.
    go get "k8s.io/kubernetes@$KUBE_VERSION" &&
      go mod tidy &&
      go build -trimpath -ldflags "$ldflags" -o "$dir/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver &&
      go build -trimpath -ldflags "$ldflags" -o "$dir/kubectl.tmp" k8s.io/kubernetes/cmd/kubectl
  ) >"$log" 2>&1 || fail "kube-apiserver and kubectl" "$log"
  local name
  for name in kube-apiserver kubectl; do
    mv "$dir/$name.tmp" "$dir/$name"
    echo "$KUBE_VERSION" >"$dir/$name.version"
  done
}

if wanted kube; then
  kube
fi

# helm: helm.sh/helm/v3's cmd/helm, which deploy's tests run on the chart
# in deploy/helm (lint, template). Its go.mod has no replace directives, but
# it is built through a wrapper module all the same, so that the module
# graph is pinned in one place and 'go mod tidy' resolves it, with the
# version variables helm's own build sets: its version, and the Kubernetes
# version 'helm template' and 'helm lint' assume (the minor of the
# client-go it links, as helm's Makefile derives it).
HELM_VERSION=v3.21.4

helm() {
  if have helm "$HELM_VERSION"; then
    echo "testdeps: helm $HELM_VERSION already built"
    return
  fi
  echo "testdeps: building helm $HELM_VERSION (this can take several minutes)"
  local w="$work/helm" log="$work/helm.log"
  mkdir -p "$w"
  (
    cd "$w"
    printf 'module tollgate.local/testdeps/helm\n\ngo 1.26\n' >go.mod
    printf '//go:build tools\n\npackage tools\n\nimport _ "helm.sh/helm/v3/cmd/helm"\n' >tools.go
    go get "helm.sh/helm/v3@$HELM_VERSION" && go mod tidy || exit 1
    # client-go v0.MINOR.x is Kubernetes v1.MINOR.
    local cg minor ldflags="-s -w" pkg
    cg=$(go list -m -f '{{.Version}}' k8s.io/client-go) || exit 1
    minor=${cg#v0.}
    minor=${minor%%.*}
    ldflags+=" -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
    ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
    for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
      ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
    done
    go build -trimpath -ldflags "$ldflags" -o "$dir/helm.tmp" helm.sh/helm/v3/cmd/helm
  ) >"$log" 2>&1 || fail helm "$log"
  mv "$dir/helm.tmp" "$dir/helm"
  echo "$HELM_VERSION" >"$dir/helm.version"
}

if wanted helm; then
  helm
fi

# promtool: Prometheus' rule and config checker, for the tests of
# deploy/monitoring. Prometheus' go.mod has no replace directives, so a
# plain go install of the pinned release builds it.
if wanted promtool; then
  goinstall promtool github.com/prometheus/prometheus/cmd/promtool "$PROMETHEUS_VERSION"
fi

echo "testdeps: ${*:-consul etcd pebble kube helm promtool} in $dir"
