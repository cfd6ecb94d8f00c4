#!/usr/bin/env bash
# Builds the GitOps appliers' Go program (test/gitops/flux-apply: Flux's
# kustomize-controller apply and `flux diff`, on github.com/fluxcd/pkg/ssa) the way
# local-cluster/build.sh builds the control plane: into the same cache outside the
# repo, with the same Go caches and environment, under the same build lock.
#
#   $KBG_CACHE_DIR/bin/flux-apply-<ssa version>-<hash>/flux-apply
#
# <hash> covers the program's sources (main.go, go.mod, go.sum), this script and the
# Go version, so a change to any of them builds anew; a directory with a .complete
# marker is a cache hit. Only go.mod/go.sum from the repo are needed: modules come
# from the module proxy into the shared GOMODCACHE.
#
# Prints FLUX_APPLY_BIN=<path> on stdout; logs go to stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src="$here/flux-apply"

W=${KBG_CACHE_DIR:-$HOME/.cache/kube-bluegreen}
mkdir -p "$W/bin" "$W/go" "$W/home"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
export GOMODCACHE=$W/go/mod GOCACHE=$W/go/cache GOPATH=$W/go/path
export HOME=$W/home

log() { printf '[gitops] %s\n' "$*" >&2; }
command -v go >/dev/null || { log "go is not installed: flux-apply is built from Go modules (apt-get install golang or see https://go.dev/doc/install)"; exit 1; }

ssa=$(sed -n 's#^[[:space:]]*github.com/fluxcd/pkg/ssa \(v[^ ]*\).*#\1#p' "$src/go.mod" | head -1)
[ -n "$ssa" ] || { log "no github.com/fluxcd/pkg/ssa requirement in $src/go.mod"; exit 1; }
hash=$( { cat "$src/main.go" "$src/go.mod" "$src/go.sum" "$0"; go version; } | sha256sum | cut -c1-12)
d="$W/bin/flux-apply-$ssa-$hash"

if [ ! -f "$d/.complete" ]; then
  # One build at a time per cache (shared with local-cluster/build.sh).
  exec 9>"$W/build.lock"
  flock 9
fi
if [ -f "$d/.complete" ]; then
  log "flux-apply (ssa $ssa, $hash): cached"
else
  log "flux-apply (ssa $ssa, $hash): building"
  start=$SECONDS
  rm -rf "$d.tmp"; mkdir -p "$d.tmp"
  ( cd "$src" && nice -n 10 go build -trimpath -ldflags '-s -w' -o "$d.tmp/flux-apply" . )
  rm -rf "$d"; mv "$d.tmp" "$d"; touch "$d/.complete"
  log "flux-apply built in $((SECONDS - start)) s"
fi
echo "FLUX_APPLY_BIN=$d/flux-apply"
