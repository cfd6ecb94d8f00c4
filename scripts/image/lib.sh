# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this
# Shared by scripts/image/*.sh (sourced, not run). Where things live and how buildah is called.
#
# Everything that is not the repository lives under $KBG_CACHE_DIR/image (default
# ~/.cache/kube-bluegreen/image), next to the control-plane binaries:
#   storage/<driver>/  buildah's own containers-storage (not the machine's /var/lib/containers)
#   bases/<key>/    the locally assembled base images, as OCI archives, keyed by what went in
#   lock            one build at a time on this machine (several work trees share the cache)
# The image itself is written into the repository's dist/image/ (ignored by git).

IMAGE_REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KBG_CACHE=${KBG_CACHE_DIR:-$HOME/.cache/kube-bluegreen}
IMAGE_CACHE="$KBG_CACHE/image"
IMAGE_STORAGE="$IMAGE_CACHE/storage"

# The reference the chart installs by default: image.repository in values.yaml, tag = the chart's
# appVersion, which is the package version (checked below).
IMAGE_VERSION=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$IMAGE_REPO_ROOT/package.json" | head -1)
IMAGE_REPOSITORY=${KBG_IMAGE_REPOSITORY:-$(sed -n 's/^  repository: //p' "$IMAGE_REPO_ROOT/charts/kube-bluegreen/values.yaml" | head -1)}
IMAGE_REF="$IMAGE_REPOSITORY:$IMAGE_VERSION"
IMAGE_ARCHIVE=${KBG_IMAGE_ARCHIVE:-$IMAGE_REPO_ROOT/dist/image/kube-bluegreen-$IMAGE_VERSION.oci.tar}

# The official bases, as the Dockerfile names them (its ARG defaults), fully qualified the way
# Docker reads a short name: buildah and skopeo resolve none by default.
qualify() {
  case "$1" in
    */*) case "${1%%/*}" in *.* | *:* | localhost) echo "$1" ;; *) echo "docker.io/$1" ;; esac ;;
    *) echo "docker.io/library/$1" ;;
  esac
}
OFFICIAL_BUILD_BASE=$(qualify "$(sed -n 's/^ARG NODE_BUILD_IMAGE=//p' "$IMAGE_REPO_ROOT/Dockerfile")")
OFFICIAL_RUNTIME_BASE=$(qualify "$(sed -n 's/^ARG NODE_RUNTIME_IMAGE=//p' "$IMAGE_REPO_ROOT/Dockerfile")")

# The local equivalents: Node from the project's own `node` devDependency, npm from the registry.
NODE_BIN="$IMAGE_REPO_ROOT/node_modules/node/bin/node"
NPM_VERSION=${KBG_IMAGE_NPM_VERSION:-11.19.1}
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=${KBG_DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { printf '[image] %s\n' "$*" >&2; }
die() { printf '[image] error: %s\n' "$*" >&2; exit 1; }

# buildah and podman on the project's own storage. The driver: overlay where the kernel lets
# us mount it, else vfs (slower, always works); probed once and remembered.
# KBG_IMAGE_STORAGE_DRIVER forces one.
storage_driver() {
  if [ -n "${KBG_IMAGE_STORAGE_DRIVER:-}" ]; then echo "$KBG_IMAGE_STORAGE_DRIVER"; return; fi
  if [ -s "$IMAGE_STORAGE/driver" ]; then cat "$IMAGE_STORAGE/driver"; return; fi
  mkdir -p "$IMAGE_STORAGE"
  local d=vfs t
  t=$(mktemp -d "$IMAGE_STORAGE/probe.XXXXXX")
  mkdir -p "$t/l" "$t/u" "$t/w" "$t/m"
  if mount -t overlay overlay -o "lowerdir=$t/l,upperdir=$t/u,workdir=$t/w" "$t/m" 2>/dev/null; then
    umount "$t/m"
    d=overlay
  fi
  rm -rf "$t"
  echo "$d" > "$IMAGE_STORAGE/driver"
  echo "$d"
}

# Containers' isolation for RUN steps: chroot needs no user namespace, no cgroup setup and no
# network plumbing (the build's npm ci uses the host's network), so it works in a VM or a
# container alike. KBG_IMAGE_ISOLATION=oci uses crun/runc instead where that works.
ISOLATION=${KBG_IMAGE_ISOLATION:-chroot}

# One storage per driver (a storage cannot switch drivers). The run root holds locks and mount
# state only: on /tmp, so a reboot clears it.
bah() {
  local d
  d=$(storage_driver)
  buildah --root "$IMAGE_STORAGE/$d" --runroot "/tmp/kbg-image-run-$(printf '%s' "$IMAGE_STORAGE/$d" | sha256sum | cut -c1-12)" \
    --storage-driver "$d" "$@"
}

# ------------------------------------------------------ for the local bases (base-*.sh)
BASES="$IMAGE_CACHE/bases"

base_prelude() {
  [ -x "$NODE_BIN" ] || die "$NODE_BIN is missing: run npm ci first (the node devDependency brings Node 24)"
  NODE_VERSION=$("$NODE_BIN" --version | sed 's/^v//')
  ARCH=$(dpkg --print-architecture)
  [ "$ARCH" = amd64 ] || [ "$ARCH" = arm64 ] || die "unsupported architecture $ARCH"
  mkdir -p "$BASES"
}

# A deterministic layer: sorted, fixed owner and time, so the same inputs give the same digest.
pack_rootfs() { # dir tar
  tar --format=gnu --sort=name --numeric-owner --mtime=@0 -C "$1" -cf "$2.part" . && mv "$2.part" "$2"
}

# import_base NAME TAR [buildah config flags...]: a one-layer image in the project's storage,
# unless it is there already.
import_base() {
  local name=$1 tar=$2 c
  shift 2
  if bah inspect --type image "$name" >/dev/null 2>&1; then return; fi
  log "importing $name"
  c=$(bah from --pull=never scratch)
  bah add --quiet "$c" "$tar" / >/dev/null
  bah config "$@" "$c"
  bah commit --quiet --rm "$c" "$name" >/dev/null
}

# drop_other_bases KIND DIR NAME: older bases of that kind (another Node, other package
# versions, an older recipe) leave the cache directory, and the storage unless an image uses them.
drop_other_bases() {
  local kind=$1 keep_dir=$2 keep_name=$3 old
  for old in "$BASES/$kind"-*; do
    [ "$old" = "$keep_dir" ] || rm -rf "$old"
  done
  for old in $(bah images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep "^localhost/kube-bluegreen-base/$kind:" | grep -vxF "$keep_name" || true); do
    bah rmi "$old" >/dev/null 2>&1 || true
  done
}

# rm -rf that never follows into a mount left behind under the directory (debootstrap mounts
# /proc and /sys in its target while it runs, and may leave them there when it fails).
remove_tree() {
  local m
  [ -e "$1" ] || return 0
  for m in $(findmnt -rn -o TARGET | grep -F "$1/" | sort -r); do umount -l "$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$1"
}
