# Sourced by the scripts that build images without any registry (emulator-image.sh,
# operator-image.sh, images.sh); the caller defines log() and runs from the repo root.
# The steps they share:
#   rootfs_key PACKAGES      the cache key of a Debian root filesystem with PACKAGES
#   rootfs_image BASE KEY PACKAGES
#                            makes sure the local image BASE exists: the root filesystem
#                            is made by mmdebstrap once, cached under
#                            ~/.cache/decnet-operator/rootfs/<key>.tar, and `docker import`ed
#   content_hash KEY FILE... a short hash of KEY and the files' names and contents
#   image_current IMAGE HASH true when IMAGE exists and carries HASH in its label
#   image_build IMAGE DOCKERFILE BASE HASH CONTEXT_FN
#                            `docker build --build-arg BASE=<BASE>` with the build context
#                            that CONTEXT_FN writes to stdout as a tar stream
# Every image built this way carries a content-hash label and is rebuilt only when it
# changes. The label's name is neutral on purpose: the service image names nothing of
# the project (images/README.md).

ROOTFS_SUITE="bookworm"
ROOTFS_FORMAT=2  # bump when the way the root filesystem is made changes
ROOTFS_CACHE="$(python3 -c 'import os;print(os.path.expanduser(os.environ.get("DECNET_CACHE","~/.cache/decnet-operator")))')/rootfs"
CONTENT_LABEL="io.netsvc.content-hash"
STAGE_LABEL="io.netsvc.build-stage"  # set on the earlier stages of multi-stage Dockerfiles

rootfs_key() {
  printf '%s\n' "$ROOTFS_FORMAT" minbase "$ROOTFS_SUITE" "$1" | sha256sum | cut -c1-16
}

rootfs_image() {
  local base="$1" key="$2" packages="$3"
  docker image inspect "$base" >/dev/null 2>&1 && return 0
  mkdir -p "$ROOTFS_CACHE"
  local tar_path="$ROOTFS_CACHE/$key.tar"
  if [[ ! -s "$tar_path" ]]; then
    command -v mmdebstrap >/dev/null || bash hack/clients.sh
    log "making a Debian $ROOTFS_SUITE root filesystem with $packages (mmdebstrap, ~40 s)"
    # mmdebstrap picks its output format from the extension.
    local tmp="$ROOTFS_CACHE/.partial.$$.$key.tar"
    # shellcheck disable=SC2064  # expand now: $tmp is local
    trap "rm -f '$tmp' '$tmp.log'" EXIT
    # Documentation, man pages and translations are of no use in a container. The
    # merged-usr hook makes the /usr symlinks itself: the usrmerge package would pull
    # in perl (about 50 MB) for a one-time job.
    mmdebstrap --quiet --variant=minbase --include="$packages" \
      --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
      --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/info/*' \
      "$ROOTFS_SUITE" "$tmp" >"$tmp.log" 2>&1 || { tail -n 30 "$tmp.log" >&2; return 1; }
    mv "$tmp" "$tar_path"
    rm -f "$tmp.log"
    trap - EXIT
  fi
  log "importing $tar_path as $base"
  docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$tar_path" "$base" >/dev/null
}

content_hash() {
  local key="$1" f; shift
  { echo "$key"; for f in "$@"; do echo "$f"; sha256sum <"$f"; done; } | sha256sum | cut -c1-16
}

image_current() {
  local have
  have="$(docker image inspect -f "{{ index .Config.Labels \"$CONTENT_LABEL\" }}" "$1" 2>/dev/null || true)"
  [[ "$have" == "$2" ]]
}

image_build() {
  local image="$1" dockerfile="$2" base="$3" hash="$4" context="$5" err
  err="$(mktemp)"
  _image_build() {
    "$context" | docker build -q --build-arg "BASE=$base" --label "$CONTENT_LABEL=$hash" \
      -t "$image" -f "$dockerfile" - >/dev/null
  }
  # BuildKit on this dockerd can fail on its read-only activity dir: fall back to the legacy builder.
  if ! _image_build 2>"$err"; then
    log "BuildKit failed ($(tail -n1 "$err")); retrying with the legacy builder"
    DOCKER_BUILDKIT=0 _image_build || { rm -f "$err"; return 1; }
  fi
  rm -f "$err"
  # The legacy builder keeps each earlier stage as a dangling image: those of ours go.
  docker image prune -f --filter "label=$STAGE_LABEL" >/dev/null
}
