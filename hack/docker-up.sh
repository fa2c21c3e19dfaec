#!/usr/bin/env bash
# Makes sure a Docker engine answers: installs Debian's docker.io when
# dockerd is missing and starts dockerd in the background when no engine
# answers. A dockerd we start records its pid so docker-down.sh can stop it.
set -euo pipefail
STATE="${DECNET_STATE:-/tmp/decnet-state}"
mkdir -p "$STATE"
log() { echo "[docker-up] $*" >&2; }

if docker info >/dev/null 2>&1; then log "engine answers"; exit 0; fi
if ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq docker.io >&2
fi
if ! command -v docker >/dev/null 2>&1; then log "no docker client after install"; exit 1; fi
log "starting dockerd"
nohup dockerd --host=unix:///var/run/docker.sock >"$STATE/dockerd.log" 2>&1 &
echo $! > "$STATE/dockerd.pid"
for _ in $(seq 1 150); do
  if docker info >/dev/null 2>&1; then log "dockerd up (pid $(cat "$STATE/dockerd.pid"))"; exit 0; fi
  sleep 0.2
done
log "dockerd did not answer within 30 s; last log lines:"; tail -20 "$STATE/dockerd.log" >&2
exit 1
