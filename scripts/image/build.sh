#!/usr/bin/env bash
# npm run image: builds the Dockerfile with buildah (no daemon) and writes an OCI archive,
#   dist/image/kube-bluegreen-<version>.oci.tar, holding the image the chart installs by default
#   (image.repository in charts/kube-bluegreen/values.yaml, tagged with the chart's appVersion).
#
# Bases: the Dockerfile's own (ARG NODE_BUILD_IMAGE / NODE_RUNTIME_IMAGE) when they can be
# pulled; otherwise local equivalents assembled from Debian's packages and the project's Node
# (scripts/image/base-build.sh, base-runtime.sh), passed through those ARGs. KBG_IMAGE_BASES=official|local forces one.
#
# Environment: KBG_CACHE_DIR (cache root, default ~/.cache/kube-bluegreen), KBG_IMAGE_BASES,
# KBG_IMAGE_STORAGE_DRIVER (overlay|vfs, default: overlay if it mounts), KBG_IMAGE_ISOLATION
# (chroot|oci, default chroot), KBG_IMAGE_PULL (buildah --pull, default false: pull if missing),
# KBG_IMAGE_ARCHIVE (output path), KBG_IMAGE_REPOSITORY (default: the chart's image.repository).
set -euo pipefail
here=$(dirname "$0")
# shellcheck source=lib.sh
. "$here/lib.sh"

bash "$here/ensure-tools.sh"
chart_app_version=$(sed -n 's/^appVersion: "\(.*\)"$/\1/p' "$IMAGE_REPO_ROOT/charts/kube-bluegreen/Chart.yaml")
[ "$chart_app_version" = "$IMAGE_VERSION" ] ||
  die "the chart's appVersion ($chart_app_version) is not package.json's version ($IMAGE_VERSION): the chart would install another tag"

mkdir -p "$IMAGE_CACHE"
exec 9> "$IMAGE_CACHE/lock"
if ! flock -n 9; then
  log "another image build holds $IMAGE_CACHE/lock; waiting"
  flock 9
fi

# Containers left by a build that was killed (builds hold the lock, so none is running now).
bah rm --all >/dev/null 2>&1 || true

# Which bases. A registry that cannot be reached fails fast (no DNS here) or after the timeout.
bases=${KBG_IMAGE_BASES:-auto}
if [ "$bases" = auto ]; then
  bases=local
  if timeout 30 skopeo inspect --retry-times 0 --raw "docker://$OFFICIAL_BUILD_BASE" >/dev/null 2>&1 &&
    timeout 30 skopeo inspect --retry-times 0 --raw "docker://$OFFICIAL_RUNTIME_BASE" >/dev/null 2>&1; then
    bases=official
  fi
fi
case "$bases" in
  official)
    log "bases: $OFFICIAL_BUILD_BASE and $OFFICIAL_RUNTIME_BASE (pulled)"
    base_build=$OFFICIAL_BUILD_BASE base_runtime=$OFFICIAL_RUNTIME_BASE
    ;;
  local)
    log "bases: $OFFICIAL_BUILD_BASE and $OFFICIAL_RUNTIME_BASE cannot be pulled here; local equivalents (scripts/image/base-*.sh)"
    base_build=$(bash "$here/base-build.sh" | sed -n 's/^NODE_BUILD_IMAGE=//p')
    base_runtime=$(bash "$here/base-runtime.sh" | sed -n 's/^NODE_RUNTIME_IMAGE=//p')
    if [ -z "$base_build" ] || [ -z "$base_runtime" ]; then die "the local bases could not be assembled"; fi
    ;;
  *) die "KBG_IMAGE_BASES=$bases: expected auto, official or local" ;;
esac
build_args=(--build-arg "NODE_BUILD_IMAGE=$base_build" --build-arg "NODE_RUNTIME_IMAGE=$base_runtime")

revision=$(git -C "$IMAGE_REPO_ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
log "building $IMAGE_REF (buildah $(buildah version --json 2>/dev/null | sed -n 's/.*"version": "\(.*\)".*/\1/p' | head -1), storage $(storage_driver), isolation $ISOLATION)"
start=$(date +%s)
steps=$(mktemp)
trap 'rm -f "$steps"' EXIT
bah bud --layers --pull="${KBG_IMAGE_PULL:-false}" --isolation "$ISOLATION" \
  "${build_args[@]}" \
  --label "org.opencontainers.image.version=$IMAGE_VERSION" \
  --label "org.opencontainers.image.revision=$revision" \
  --label "org.opencontainers.image.base.name=$base_runtime" \
  -f "$IMAGE_REPO_ROOT/Dockerfile" -t "$IMAGE_REF" "$IMAGE_REPO_ROOT" 2>&1 | tee "$steps" >&2
built=$(date +%s)

# The layer cache keeps this build's steps (the next build reuses them, npm ci above all) and
# drops the steps of earlier builds, so the storage does not grow with every change.
keep=$(sed -n 's/^--> \(Using cache \)\{0,1\}\([0-9a-f]\{11,\}\)$/\2/p' "$steps" | cut -c1-11 | sort -u)
for _ in $(seq 20); do
  stale=$(bah images -a --noheading --format '{{.ID}} {{.Name}}' 2>/dev/null | awk '$2 == "<none>" { print $1 }' | cut -c1-11 | grep -vxF -f <(echo "$keep") || true)
  [ -n "$stale" ] || break
  # Children first: a pass removes what nothing builds on; the next pass their parents.
  removed=0
  for id in $stale; do bah rmi "$id" >/dev/null 2>&1 && removed=1; done
  [ "$removed" = 1 ] || break
done
# Bases of earlier builds (another Node, newer Debian packages), now that nothing builds on them.
for old in $(bah images --noheading --format '{{.Name}}:{{.Tag}}' 2>/dev/null | grep '^localhost/kube-bluegreen-base/' | grep -vxF -e "$base_build" -e "$base_runtime" || true); do
  bah rmi "$old" >/dev/null 2>&1 || true
done

mkdir -p "$(dirname "$IMAGE_ARCHIVE")"
rm -f "$IMAGE_ARCHIVE"
digestfile=$(mktemp)
bah push --quiet --digestfile "$digestfile" "$IMAGE_REF" "oci-archive:$IMAGE_ARCHIVE:$IMAGE_REF"
digest=$(cat "$digestfile")
rm -f "$digestfile"
size=$(stat -c %s "$IMAGE_ARCHIVE")
# What the test and an operator need, next to the archive.
cat > "${IMAGE_ARCHIVE%.oci.tar}.json" <<EOF
{
  "ref": "$IMAGE_REF",
  "archive": "$IMAGE_ARCHIVE",
  "digest": "$digest",
  "archiveBytes": $size,
  "bases": "$bases",
  "buildBase": "$base_build",
  "runtimeBase": "$base_runtime",
  "revision": "$revision",
  "buildSeconds": $((built - start))
}
EOF
log "built $IMAGE_REF in $((built - start)) s; $IMAGE_ARCHIVE ($((size / 1024 / 1024)) MiB, manifest $digest)"
log "publish it:  skopeo copy oci-archive:$IMAGE_ARCHIVE docker://REGISTRY/kube-bluegreen:$IMAGE_VERSION"
