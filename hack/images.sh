#!/usr/bin/env bash
# Builds the local images the tests and the demo need, without any registry:
# a root filesystem from Debian's busybox-static, turned into an image by
# `docker import`. Rebuilds only when the image is missing.
#   decnet-test/busybox:latest  sh, httpd, nc, telnetd, ftpd, sleep
#   decnet/base:0.1.0           the same rootfs, used as the decky base (pause) image
set -euo pipefail
log() { echo "[images] $*" >&2; }
IMAGE="decnet-test/busybox:latest"
BASE_IMAGE="${DECNET_BASE_IMAGE:-decnet/base:0.1.0}"

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
  log "built $IMAGE"
fi
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  docker tag "$IMAGE" "$BASE_IMAGE"
  log "tagged $BASE_IMAGE"
fi
