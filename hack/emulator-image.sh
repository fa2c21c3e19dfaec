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
#   EMULATOR_IMAGE=decnet/emulator:0.1.0 hack/emulator-image.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "[emulator-image] $*" >&2; }

IMAGE="${EMULATOR_IMAGE:-decnet/emulator:0.1.0}"
SUITE="bookworm"
PACKAGES="python3,python3-asyncssh,python3-cryptography,python3-setproctitle"
FORMAT=1  # bump when the way the root filesystem is made changes
CACHE="$(python3 -c 'import os;print(os.path.expanduser(os.environ.get("DECNET_CACHE","~/.cache/decnet-operator")))')/rootfs"
LABEL="io.netsvc.content-hash"
force=false; [[ "${1:-}" == "--force" ]] && force=true

key="$(printf '%s\n' "$FORMAT" minbase "$SUITE" "$PACKAGES" | sha256sum | cut -c1-16)"
base="local/emulator-rootfs:$key"
sources=(images/emulator/Dockerfile images/emulator/daemons.tsv images/emulator/launchers.py)
mapfile -t -O ${#sources[@]} sources < <(find operator/decnet/emulators -type f -name '*.py' | LC_ALL=C sort)
hash="$( { echo "$key"; for f in "${sources[@]}"; do echo "$f"; sha256sum <"$f"; done; } | sha256sum | cut -c1-16)"

have="$(docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null || true)"
if [[ "$have" == "$hash" ]] && ! $force; then
  log "$IMAGE is up to date ($hash)"
  echo "$IMAGE"
  exit 0
fi
start=$SECONDS

if ! docker image inspect "$base" >/dev/null 2>&1; then
  mkdir -p "$CACHE"
  tar_path="$CACHE/$key.tar"
  if [[ ! -s "$tar_path" ]]; then
    command -v mmdebstrap >/dev/null || bash hack/clients.sh
    log "making a Debian $SUITE root filesystem with $PACKAGES (mmdebstrap, ~40 s)"
    tmp="$CACHE/.partial.$$.$key.tar"  # mmdebstrap picks its output format from the extension
    trap 'rm -rf "$tmp"' EXIT
    # Documentation, man pages and translations are of no use in a service container.
    mmdebstrap --quiet --variant=minbase --include="$PACKAGES" \
      --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/info/*' \
      "$SUITE" "$tmp" >&2
    mv "$tmp" "$tar_path"
    trap - EXIT
  fi
  log "importing $tar_path as $base"
  docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$tar_path" "$base" >/dev/null
fi

log "building $IMAGE on $base"
build() {
  tar -c --exclude='__pycache__' "${sources[@]}" | \
    docker build -q --build-arg "BASE=$base" --label "$LABEL=$hash" \
      -t "$IMAGE" -f images/emulator/Dockerfile - >/dev/null
}
# BuildKit on this dockerd can fail on its read-only activity dir: fall back to the legacy builder.
if ! build 2>/tmp/emulator-build.$$.err; then
  log "BuildKit failed ($(tail -n1 /tmp/emulator-build.$$.err)); retrying with the legacy builder"
  DOCKER_BUILDKIT=0 build
fi
rm -f /tmp/emulator-build.$$.err
log "built $IMAGE ($hash) in $((SECONDS - start)) s"
echo "$IMAGE"
