#!/usr/bin/env bash
# Assembles a local equivalent of the Dockerfile's build base (node:24-bookworm-slim) for a
# machine that cannot pull it, imports it into the project's buildah storage and prints
#   NODE_BUILD_IMAGE=localhost/kube-bluegreen-base/build:<node>-<key>
#
# What it is: a Debian bookworm minbase rootfs (debootstrap: the essential packages and apt,
# as in debian:bookworm-slim, which the official node image is built on), node in
# /usr/local/bin (the binary of the project's `node` devDependency), npm in
# /usr/local/lib/node_modules/npm (the npm registry's tarball, via npm pack), as the official
# image lays them out. The Dockerfile's build stage needs /bin/sh, node and npm; it has them.
#
# Cached as $KBG_CACHE_DIR/image/bases/build-<key>/rootfs.tar, the key naming what went in
# (this script, the Node and npm versions, the suite, the architecture, the extra CAs); the image
# is re-imported from it when the storage lost it. Run by scripts/image/build.sh; usable alone.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
base_prelude
SELF_HASH=$(sha256sum < "$0" | cut -c1-12)

# The build's npm ci reaches the registry through this machine's network: where that goes
# through a TLS-inspecting proxy, the machine trusts extra CAs (Debian's place for them is
# /usr/local/share/ca-certificates; Node's is $NODE_EXTRA_CA_CERTS), and so must the build base,
# as the host's own npm does. They stay in the build stage: nothing of it reaches the runtime.
extra_ca=$(mktemp)
trap 'rm -f "$extra_ca"' EXIT
for f in /usr/local/share/ca-certificates/*.crt ${NODE_EXTRA_CA_CERTS:-}; do
  if [ -r "$f" ]; then cat "$f"; echo; fi
done > "$extra_ca"
extra_ca_hash=$(sha256sum < "$extra_ca" | cut -c1-12)
build_key=$(printf '%s\n' "$SELF_HASH" "$NODE_VERSION" "$NPM_VERSION" "$DEBIAN_SUITE" "$ARCH" "$extra_ca_hash" | sha256sum | cut -c1-12)
build_dir="$BASES/build-$build_key"
BUILD_NAME="localhost/kube-bluegreen-base/build:$NODE_VERSION-$build_key"
if [ ! -s "$build_dir/rootfs.tar" ]; then
  command -v debootstrap >/dev/null || die "debootstrap is missing (scripts/image/ensure-tools.sh installs it)"
  log "assembling the build base ($DEBIAN_SUITE minbase + Node $NODE_VERSION + npm $NPM_VERSION) in $build_dir"
  remove_tree "$build_dir"
  mkdir -p "$build_dir"
  r="$build_dir/rootfs"
  # minbase: essential packages and apt, like debian:bookworm-slim (which node:*-slim is built on).
  if ! debootstrap --variant=minbase --arch "$ARCH" "$DEBIAN_SUITE" "$r" "$DEBIAN_MIRROR" > "$build_dir/debootstrap.log" 2>&1; then
    tail -20 "$build_dir/debootstrap.log" >&2
    remove_tree "$r"
    die "debootstrap failed (log: $build_dir/debootstrap.log)"
  fi
  # shellcheck disable=SC2016 # dpkg-query's own format, not the shell's
  chroot "$r" dpkg-query -W -f '${Package} ${Version}\n' > "$build_dir/packages.txt"
  # What debian's docker images drop: downloaded packages, package lists, logs.
  rm -rf "${r:?}"/var/cache/apt/archives/*.deb "${r:?}"/var/lib/apt/lists/* "${r:?}"/var/log/* "${r:?}"/tmp/* "${r:?}"/dev/*
  install -m 0755 "$NODE_BIN" "$r/usr/local/bin/node"
  t=$(mktemp -d)
  (cd "$t" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
  mkdir -p "$r/usr/local/lib/node_modules/npm"
  tar -xzf "$t"/npm-*.tgz -C "$r/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
  rm -rf "$t"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$r/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$r/usr/local/bin/npx"
  if grep -q 'BEGIN CERTIFICATE' "$extra_ca"; then
    install -D -m 0644 "$extra_ca" "$r/usr/local/share/kube-bluegreen/extra-ca.crt"
  fi
  chroot "$r" /usr/local/bin/node /usr/local/bin/npm --version > /dev/null || die "npm does not run in the build base"
  pack_rootfs "$r" "$build_dir/rootfs.tar"
  remove_tree "$r"
fi
build_env=(--env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env NODE_VERSION="$NODE_VERSION")
grep -q 'BEGIN CERTIFICATE' "$extra_ca" && build_env+=(--env NODE_EXTRA_CA_CERTS=/usr/local/share/kube-bluegreen/extra-ca.crt)
import_base "$BUILD_NAME" "$build_dir/rootfs.tar" "${build_env[@]}" \
  --cmd node --label org.opencontainers.image.description="local equivalent of $OFFICIAL_BUILD_BASE"
drop_other_bases build "$build_dir" "$BUILD_NAME"
echo "NODE_BUILD_IMAGE=$BUILD_NAME"
