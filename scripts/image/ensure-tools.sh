#!/usr/bin/env bash
# Installs what building and testing the image needs, from Debian's packages, if missing:
#   buildah (builds the Dockerfile, no daemon), skopeo (probes and copies images),
#   umoci (unpacks the OCI archive for the test), crun (runs it), debootstrap (assembles the
#   local build base). podman is optional (KBG_IMAGE_RUNNER=podman) and installed only then.
# Needs root and apt (Debian or Ubuntu); anywhere else, install them by hand.
set -euo pipefail
need=(buildah skopeo umoci crun debootstrap)
[ "${KBG_IMAGE_RUNNER:-crun}" = podman ] && need+=(podman)
missing=()
for t in "${need[@]}"; do command -v "$t" >/dev/null || missing+=("$t"); done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "[image] missing: ${missing[*]}; install them (as root, from your distribution's packages)" >&2
  exit 1
fi
echo "[image] apt-get install ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
