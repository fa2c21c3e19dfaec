#!/usr/bin/env bash
# Builds the local images the tests, the demo and a one-node cluster need, without
# any registry, and prints their names on stdout (logs go to stderr):
#   decnet-test/busybox:latest  a busybox-static root filesystem from Debian, turned into
#                               an image by `docker import` (sh, httpd, nc, telnetd, ftpd,
#                               sleep); made only when missing
#   decnet/base:0.1.0           the decky base: images/base/Dockerfile built on a Debian
#                               root filesystem with iproute2, iptables and python3-minimal
#                               (hack/lib/rootfs.sh) and the packet persona
#                               (operator/decnet/shaper), rebuilt only when one of them
#                               or the package list changes
#   decnet-test/pause:3.10      a sandbox ("pause") image for containerd: busybox whose
#                               PID 1 sleeps and exits on SIGTERM
#   [DECNET_BASE_IMAGE=decnet/base:0.1.0] hack/images.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "[images] $*" >&2; }
. hack/lib/rootfs.sh
IMAGE="decnet-test/busybox:latest"
BASE_IMAGE="${DECNET_BASE_IMAGE:-decnet/base:0.1.0}"
PAUSE_IMAGE="decnet-test/pause:3.10"
BASE_PACKAGES="iproute2,iptables,python3-minimal"
force=false; [[ "${1:-}" == "--force" ]] && force=true

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  if [[ ! -x /bin/busybox ]] || ! /bin/busybox --list-full >/dev/null 2>&1; then
    log "installing busybox-static from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || true
    apt-get install -y -qq busybox-static >&2
  fi
  root="$(mktemp -d)"
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,var/www,root,home,proc,sys,dev,run}
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  /bin/busybox --list-full | while read -r applet; do
    [[ "$applet" == "bin/busybox" ]] && continue
    mkdir -p "$root/$(dirname "$applet")"
    ln -sf /bin/busybox "$root/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
  echo '<html><body>It works!</body></html>' > "$root/var/www/index.html"
  tar -C "$root" -c . | docker import \
    -c 'CMD ["sh"]' -c 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
    -m "busybox-static rootfs for decnet-operator tests" - "$IMAGE" >/dev/null
  rm -rf "$root"; trap - EXIT
  log "built $IMAGE"
fi
echo "$IMAGE"

key="$(rootfs_key "$BASE_PACKAGES")"
base_sources=(images/base/Dockerfile)
mapfile -t -O 1 base_sources < <(find operator/decnet/shaper -type f -name '*.py' | LC_ALL=C sort)
hash="$(content_hash "$key" "${base_sources[@]}")"
if image_current "$BASE_IMAGE" "$hash" && ! $force; then
  log "$BASE_IMAGE is up to date ($hash)"
else
  start=$SECONDS
  rootfs="local/base-rootfs:$key"
  rootfs_image "$rootfs" "$key" "$BASE_PACKAGES"
  log "building $BASE_IMAGE on $rootfs"
  context() { tar -c --exclude='__pycache__' "${base_sources[@]}"; }
  image_build "$BASE_IMAGE" images/base/Dockerfile "$rootfs" "$hash" context
  log "built $BASE_IMAGE ($hash) in $((SECONDS - start)) s"
fi
echo "$BASE_IMAGE"

# busybox sh as PID 1 ignores SIGTERM unless it traps it; the sleep runs in the
# background so the trap fires at once.
pause_cmd='CMD ["sh", "-c", "trap '"'"'exit 0'"'"' TERM INT; while :; do sleep 3600 & wait $!; done"]'
hash="$( { docker image inspect -f '{{.Id}}' "$IMAGE"; echo "$pause_cmd"; } | sha256sum | cut -c1-16)"
if image_current "$PAUSE_IMAGE" "$hash" && ! $force; then
  log "$PAUSE_IMAGE is up to date ($hash)"
else
  pause() {
    printf 'FROM %s\n%s\n' "$IMAGE" "$pause_cmd" | \
      docker build -q --label "$CONTENT_LABEL=$hash" -t "$PAUSE_IMAGE" - >/dev/null
  }
  pause 2>/dev/null || DOCKER_BUILDKIT=0 pause
  log "built $PAUSE_IMAGE ($hash)"
fi
echo "$PAUSE_IMAGE"
