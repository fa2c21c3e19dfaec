#!/usr/bin/env bash
# Stops the dockerd that docker-up.sh started (by its pid), nothing else.
set -euo pipefail
STATE="${DECNET_STATE:-/tmp/decnet-state}"
pidfile="$STATE/dockerd.pid"
[[ -f "$pidfile" ]] || exit 0
pid="$(cat "$pidfile")"
if kill -0 "$pid" 2>/dev/null; then
  kill "$pid"
  # dockerd stops every container first (10 s each at most, then a forced shutdown
  # after 15 s): wait until it is gone, or a dockerd started next finds its pid file
  # ("pid file found, ensure docker is not running") and exits at once
  for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "[docker-down] dockerd $pid still running after 60 s: killing it" >&2
    kill -KILL "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    # its pid file is left behind by SIGKILL; it names this pid, now gone
    [[ "$(cat /var/run/docker.pid 2>/dev/null)" == "$pid" ]] && rm -f /var/run/docker.pid
  fi
fi
rm -f "$pidfile"
