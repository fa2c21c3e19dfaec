#!/usr/bin/env bash
# Builds the service image (images/emulator/Dockerfile) without any registry:
#   1. a Debian root filesystem with the emulators' Python packages, made by
#      mmdebstrap and cached under ~/.cache/decnet-operator/rootfs/<key>.tar
#      (the key is the suite + package list: a new list makes a new tar);
#   2. `docker import` of that tar as a local base image;
#   3. `docker build --build-arg BASE=<that base>` of images/emulator/Dockerfile.
# The image carries a label with a hash of everything it is built from (the
# Dockerfile, the launcher table, the emulator sources, the base key); it is
# rebuilt only when that hash changes. Prints the image name on stdout.
# The shared steps live in hack/lib/rootfs.sh.
#   EMULATOR_IMAGE=decnet/emulator:0.1.0 hack/emulator-image.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "[emulator-image] $*" >&2; }
. hack/lib/rootfs.sh

IMAGE="${EMULATOR_IMAGE:-decnet/emulator:0.1.0}"
PACKAGES="python3,python3-asyncssh,python3-cryptography,python3-setproctitle"
force=false; [[ "${1:-}" == "--force" ]] && force=true

key="$(rootfs_key "$PACKAGES")"
base="local/emulator-rootfs:$key"
sources=(images/emulator/Dockerfile images/emulator/daemons.tsv images/emulator/launchers.py)
mapfile -t -O ${#sources[@]} sources < <(find operator/decnet/emulators -type f -name '*.py' | LC_ALL=C sort)
hash="$(content_hash "$key" "${sources[@]}")"

if image_current "$IMAGE" "$hash" && ! $force; then
  log "$IMAGE is up to date ($hash)"
  echo "$IMAGE"
  exit 0
fi
start=$SECONDS
rootfs_image "$base" "$key" "$PACKAGES"
log "building $IMAGE on $base"
context() { tar -c --exclude='__pycache__' "${sources[@]}"; }
image_build "$IMAGE" images/emulator/Dockerfile "$base" "$hash" context
log "built $IMAGE ($hash) in $((SECONDS - start)) s"
echo "$IMAGE"
