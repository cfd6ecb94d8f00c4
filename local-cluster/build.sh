#!/usr/bin/env bash
# Builds the local control plane from upstream Go modules: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, kwok, helm and metrics-server.
#
# Binaries are cached outside the repo, one directory per component and version:
#   $KBG_CACHE_DIR/bin/<component>-<version>/   (default ~/.cache/kube-bluegreen)
# A directory with a .complete marker is a cache hit and is not rebuilt.
# Go's own caches live beside them, so a rebuild after a version bump reuses
# every unchanged package.
#
# Prints the bin directories as shell assignments on stdout; logs go to stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"

W=${KBG_CACHE_DIR:-$HOME/.cache/kube-bluegreen}
mkdir -p "$W/bin" "$W/go" "$W/home"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
export GOMODCACHE=$W/go/mod GOCACHE=$W/go/cache GOPATH=$W/go/path
export HOME=$W/home   # keep go/kubectl/helm caches out of the real home

log() { printf '[build] %s\n' "$*" >&2; }
command -v go >/dev/null || { log "go is not installed: the control plane is built from Go modules (apt-get install golang or see https://go.dev/doc/install)"; exit 1; }

# One build at a time per cache: a second caller waits, then finds the cache hit.
exec 9>"$W/build.lock"
flock 9

build_dir() { echo "$W/bin/$1-$2"; }
done_or_start() { # $1 dir: returns 0 when already built
  [ -f "$1/.complete" ] && return 0
  rm -rf "$1.tmp"; mkdir -p "$1.tmp"; return 1
}
finish() { rm -rf "$1"; mv "$1.tmp" "$1"; touch "$1/.complete"; }
timed() { local s=$SECONDS; "$@"; log "$* took $((SECONDS - s)) s"; }

build_etcd() {
  local d; d=$(build_dir etcd "$ETCD_VERSION")
  done_or_start "$d" && { log "etcd $ETCD_VERSION: cached"; return; }
  log "etcd $ETCD_VERSION: building"
  local m="$W/src/etcd-$ETCD_VERSION"; rm -rf "$m"; mkdir -p "$m"
  ( cd "$m"
    printf 'module local/etcdbuild\n\ngo 1.26\n' > go.mod
    printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
    go build -trimpath -ldflags '-s -w' -o "$d.tmp/etcd" go.etcd.io/etcd/server/v3 )
  finish "$d"
}

build_kubernetes() {
  local d; d=$(build_dir kubernetes "$K8S_VERSION")
  done_or_start "$d" && { log "kubernetes $K8S_VERSION: cached"; return; }
  log "kubernetes $K8S_VERSION: building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl"
  local staging="v0.${K8S_VERSION#v1.}" minor; minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  local m="$W/src/kubernetes-$K8S_VERSION"; rm -rf "$m"; mkdir -p "$m"
  ( cd "$m"
    local gomod; gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    { printf 'module local/k8sbuild\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$K8S_VERSION"
      sed -n "s#^[[:space:]]*\(k8s.io/[^ ]*\) => \./staging/.*#\t\1 => \1 $staging#p" "$gomod"
      echo ')'; } > go.mod
    cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
    go mod tidy >&2
    local ld='-s -w' p
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    done
    for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
      timed go build -trimpath -ldflags "$ld" -o "$d.tmp/$c" "k8s.io/kubernetes/cmd/$c"
    done )
  finish "$d"
}

build_kwok() {
  local d; d=$(build_dir kwok "$KWOK_VERSION")
  done_or_start "$d" && { log "kwok $KWOK_VERSION: cached"; return; }
  log "kwok $KWOK_VERSION: building"
  GOBIN="$d.tmp" go install -trimpath -ldflags '-s -w' "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  # Its stages and metrics configuration are the repo's: local-cluster/kwok/*.yaml.
  finish "$d"
}

build_helm() {
  local d; d=$(build_dir helm "$HELM_VERSION")
  done_or_start "$d" && { log "helm $HELM_VERSION: cached"; return; }
  log "helm $HELM_VERSION: building"
  local H=helm.sh/helm/v3 minor; minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  GOBIN="$d.tmp" go install -trimpath -ldflags "-s -w -X $H/internal/version.version=$HELM_VERSION \
    -X $H/pkg/chartutil.k8sVersionMajor=1 -X $H/pkg/chartutil.k8sVersionMinor=$minor \
    -X $H/pkg/lint/rules.k8sVersionMajor=1 -X $H/pkg/lint/rules.k8sVersionMinor=$minor" "$H/cmd/helm@$HELM_VERSION"
  finish "$d"
}

build_metrics_server() {
  local d; d=$(build_dir metrics-server "$METRICS_SERVER_VERSION")
  done_or_start "$d" && { log "metrics-server $METRICS_SERVER_VERSION: cached"; return; }
  log "metrics-server $METRICS_SERVER_VERSION: building"
  # A module of its own with the program as a tool (go get -tool), like the etcd build: built
  # with the versions metrics-server's go.mod pins. Stamped as its Makefile does.
  local m="$W/src/metrics-server-$METRICS_SERVER_VERSION" M=sigs.k8s.io/metrics-server
  rm -rf "$m"; mkdir -p "$m"
  ( cd "$m"
    printf 'module local/msbuild\n\ngo 1.26\n' > go.mod
    go get -tool "$M/cmd/metrics-server@$METRICS_SERVER_VERSION" >&2
    go build -trimpath -ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION" \
      -o "$d.tmp/metrics-server" "$M/cmd/metrics-server" )
  finish "$d"
}

start=$SECONDS
timed build_etcd
timed build_kubernetes
timed build_kwok
timed build_helm
timed build_metrics_server
log "all components ready in $((SECONDS - start)) s"
# Give build caches back to the disk once the binaries exist? No: GOCACHE makes a version bump cheap.
cat <<OUT
ETCD_BIN=$(build_dir etcd "$ETCD_VERSION")/etcd
KUBE_BIN_DIR=$(build_dir kubernetes "$K8S_VERSION")
KWOK_BIN=$(build_dir kwok "$KWOK_VERSION")/kwok
HELM_BIN=$(build_dir helm "$HELM_VERSION")/helm
METRICS_SERVER_BIN=$(build_dir metrics-server "$METRICS_SERVER_VERSION")/metrics-server
OUT
