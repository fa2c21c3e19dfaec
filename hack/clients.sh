#!/usr/bin/env bash
# Installs the Debian packages in hack/clients.apt that are missing (real protocol
# clients, nmap, rsyslog, mmdebstrap). Serialised with a lock: parallel runs share dpkg.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t wanted < <(grep -v '^\s*#' hack/clients.apt | awk 'NF {print $1}')
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
echo "[clients] installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
(
  flock 9
  apt-get update -qq >&2 || true
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
) 9>/tmp/decnet-apt.lock
