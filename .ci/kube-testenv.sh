#!/usr/bin/env bash
# Builds the control plane the real Kubernetes tier of the rollout tests runs against: kube-apiserver,
# kube-controller-manager and etcd, from the Go module proxy (no container runtime, no envtest download).
# README "Testing" says how the tests find the binaries (internal/kubetestenv) and when they skip.
#
# The binaries go once into a cache directory outside the repository, keyed by version:
#   ${STORAGEBOT_KUBE_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/storagebot/kube-v1.37.2}
# When all three are present the build is skipped. The script prints the directory on its last line.
#
# Why a wrapper module: k8s.io/kubernetes and go.etcd.io/etcd/server/v3 replace their sibling modules with
# relative paths (./staging/..., ../api), so `go install pkg@version` refuses them. A throw-away module in a
# temp dir requires them and replaces every such sibling with its published version instead.
set -euo pipefail

KUBE_VERSION=v1.37.2 # matches k8s.io/client-go v0.37.2 in go.mod
ETCD_VERSION=v3.7.3
# The staging modules (k8s.io/api, k8s.io/client-go, ...) are published as v0.MINOR.PATCH of Kubernetes v1.MINOR.PATCH.
STAGING_VERSION="v0.${KUBE_VERSION#v1.}"

bin_dir="${STORAGEBOT_KUBE_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/storagebot/kube-${KUBE_VERSION}}"
binaries=(kube-apiserver kube-controller-manager etcd)

present() {
  local b
  for b in "${binaries[@]}"; do
    [ -x "$bin_dir/$b" ] || return 1
  done
}

if present; then
  echo "kube-testenv: binaries present (Kubernetes $KUBE_VERSION, etcd $ETCD_VERSION), build skipped"
  echo "$bin_dir"
  exit 0
fi

command -v go >/dev/null || { echo "kube-testenv: go is not on PATH" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/storagebot-kube-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
# The wrapper modules must not be taken for part of any enclosing workspace or module.
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0

# print_relative_replaces GOMOD: the module paths that GOMOD replaces with a relative directory.
print_relative_replaces() {
  awk '
    $1 == "replace" && $3 == "=>" && $4 ~ /^\.\.?\// { print $2; next }
    $2 == "=>" && $3 ~ /^\.\.?\// { print $1 }
  ' "$1"
}

# upstream_gomod MODULE@VERSION: the path of that module's go.mod in the module cache (downloaded if need be).
upstream_gomod() {
  local gomod
  gomod=$(cd "$work" && go mod download -json "$1" | awk -F'"' '$2 == "GoMod" { print $4 }')
  [ -n "$gomod" ] && [ -f "$gomod" ] || { echo "kube-testenv: cannot download the go.mod of $1" >&2; exit 1; }
  echo "$gomod"
}

# wrapper DIR MODULE VERSION SIBLING_VERSION IMPORT...: a module in DIR that builds IMPORT... from MODULE@VERSION
# with every relatively-replaced sibling pinned to SIBLING_VERSION.
wrapper() {
  local dir=$1 module=$2 version=$3 sibling_version=$4
  shift 4
  mkdir -p "$dir"
  local gomod m imp
  gomod=$(upstream_gomod "$module@$version")
  (
    cd "$dir"
    go mod init storagebot.local/kube-testenv-build >/dev/null 2>&1
    go mod edit -require="$module@$version"
    for m in $(print_relative_replaces "$gomod"); do
      go mod edit -replace="$m=$m@$sibling_version"
    done
    {
      echo "//go:build tools"
      echo
      echo "package tools"
      echo
      echo "import ("
      for imp in "$@"; do echo "	_ \"$imp\""; done
      echo ")"
    } >tools.go
    go mod tidy
  )
}

start=$(date +%s)
mkdir -p "$work/out"

echo "kube-testenv: wrapper module for k8s.io/kubernetes $KUBE_VERSION (staging modules at $STAGING_VERSION)"
wrapper "$work/kube" k8s.io/kubernetes "$KUBE_VERSION" "$STAGING_VERSION" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
echo "kube-testenv: wrapper module for go.etcd.io/etcd/server/v3 $ETCD_VERSION"
wrapper "$work/etcd" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "$ETCD_VERSION" go.etcd.io/etcd/server/v3

kube_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
kube_ldflags+=" -X k8s.io/component-base/version.gitMajor=1"
kube_ldflags+=" -X k8s.io/component-base/version.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2)"
kube_ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"

echo "kube-testenv: building etcd (≈1 min on 2 cores)"
(cd "$work/etcd" && go build -trimpath -ldflags "-s -w" -o "$work/out/etcd" go.etcd.io/etcd/server/v3)
echo "kube-testenv: building kube-apiserver (≈12 min on 2 cores)"
(cd "$work/kube" && go build -trimpath -ldflags "$kube_ldflags" -o "$work/out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver)
echo "kube-testenv: building kube-controller-manager (≈8 min on 2 cores)"
(cd "$work/kube" && go build -trimpath -ldflags "$kube_ldflags" -o "$work/out/kube-controller-manager" k8s.io/kubernetes/cmd/kube-controller-manager)

# Install with renames inside the cache directory, so a build cut short never leaves a binary that looks complete.
mkdir -p "$bin_dir"
for b in "${binaries[@]}"; do
  cp "$work/out/$b" "$bin_dir/.$b.partial"
  mv -f "$bin_dir/.$b.partial" "$bin_dir/$b"
done
printf 'kubernetes %s\netcd %s\n' "$KUBE_VERSION" "$ETCD_VERSION" >"$bin_dir/VERSIONS"

echo "kube-testenv: built in $(($(date +%s) - start)) s"
echo "$bin_dir"
