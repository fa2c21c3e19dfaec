#!/usr/bin/env bash
# Stops the dockerd that docker-up.sh started (by its pid), nothing else.
set -euo pipefail
STATE="${DECNET_STATE:-/tmp/decnet-state}"
pidfile="$STATE/dockerd.pid"
[[ -f "$pidfile" ]] || exit 0
pid="$(cat "$pidfile")"
if kill -0 "$pid" 2>/dev/null; then
  kill "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
fi
rm -f "$pidfile"
