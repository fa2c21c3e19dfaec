#!/usr/bin/env bash
# Builds the operator/agent image (images/operator/Dockerfile) without any registry:
#   1. a Debian root filesystem with python3, python3-venv and iptables (nf_tables
#      backend, as on the host), made by mmdebstrap and cached (hack/lib/rootfs.sh);
#   2. a wheelhouse of the project's runtime dependencies (pyproject.toml) and its build
#      backend, downloaded on the host for CPython 3.11 manylinux x86_64 (containers
#      here reach no package index), cached under ~/.cache/decnet-operator/wheels/<key>;
#   3. `docker build --build-arg BASE=<local base>` with the wheelhouse in the build
#      context as images/operator/wheels, so pip installs with --no-index.
# The image carries a label with a hash of its sources (Dockerfile, pyproject.toml, the
# package, the base and wheelhouse keys); it is rebuilt only when that hash changes.
# Prints the image name on stdout.
#   OPERATOR_IMAGE=decnet/operator:0.1.0 hack/operator-image.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "[operator-image] $*" >&2; }
. hack/lib/rootfs.sh

IMAGE="${OPERATOR_IMAGE:-decnet/operator:0.1.0}"
PACKAGES="python3,python3-venv,iptables"
WHEEL_FORMAT=1  # bump when the way the wheelhouse is made changes
# pip 23 does not widen a manylinux tag to the older ones it implies: list them.
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64
           manylinux_2_12_x86_64 manylinux2010_x86_64 manylinux_2_5_x86_64 manylinux1_x86_64)
force=false; [[ "${1:-}" == "--force" ]] && force=true

mapfile -t requirements < <(python3 - <<'PY'
import tomllib
with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)
print("\n".join(project["build-system"]["requires"] + project["project"]["dependencies"]))
PY
)
wheel_key="$(printf '%s\n' "$WHEEL_FORMAT" "${PLATFORMS[@]}" "${requirements[@]}" | sha256sum | cut -c1-16)"
wheels="$(dirname "$ROOTFS_CACHE")/wheels/$wheel_key"

key="$(rootfs_key "$PACKAGES")"
base="local/operator-rootfs:$key"
sources=(images/operator/Dockerfile pyproject.toml)
mapfile -t -O ${#sources[@]} sources < <(find operator -type f ! -path "*/__pycache__/*" ! -path "*.egg-info/*" ! -name "*.pyc" | LC_ALL=C sort)
hash="$(content_hash "$key $wheel_key" "${sources[@]}")"

if image_current "$IMAGE" "$hash" && ! $force; then
  log "$IMAGE is up to date ($hash)"
  echo "$IMAGE"
  exit 0
fi
start=$SECONDS

if [[ ! -f "$wheels/.complete" ]]; then
  log "downloading wheels for ${requirements[*]} (cp311, manylinux x86_64)"
  rm -rf "$wheels"
  platforms=(); for p in "${PLATFORMS[@]}"; do platforms+=(--platform "$p"); done
  # The host's own find-links would offer wheels built for it, not for the image.
  PIP_FIND_LINKS="" python3 -m pip download --quiet --disable-pip-version-check \
    --dest "$wheels" --only-binary=:all: "${platforms[@]}" --python-version 3.11 \
    --implementation cp --abi cp311 --abi abi3 --abi none "${requirements[@]}" >&2
  touch "$wheels/.complete"
fi

rootfs_image "$base" "$key" "$PACKAGES"
log "building $IMAGE on $base"
context() {
  # The wheelhouse enters the context under the name the Dockerfile copies.
  tar -c --exclude=__pycache__ --exclude="*.pyc" --exclude="*.egg-info" --exclude=.complete \
    --transform="s,^$wheel_key,images/operator/wheels," \
    "${sources[@]}" -C "$(dirname "$wheels")" "$wheel_key"
}
image_build "$IMAGE" images/operator/Dockerfile "$base" "$hash" context
log "built $IMAGE ($hash) in $((SECONDS - start)) s"
echo "$IMAGE"
