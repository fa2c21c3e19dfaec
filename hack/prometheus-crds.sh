#!/usr/bin/env bash
# The prometheus-operator CRDs (ServiceMonitor, PrometheusRule) the chart's monitoring
# templates are checked against, taken from the released Go module on the module proxy
# (no GitHub downloads) into a cache outside the repo. Prints the directory holding them.
set -euo pipefail
VERSION="${PROMETHEUS_OPERATOR_VERSION:-v0.85.0}"
CACHE_ROOT="${DECNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/decnet-operator}"
out="$CACHE_ROOT/crds/prometheus-operator-$VERSION"
kinds=(servicemonitors prometheusrules)
if [[ ! -s "$out/monitoring.coreos.com_prometheusrules.yaml" ]]; then
  dir="$(cd "${TMPDIR:-/tmp}" && GOFLAGS=-mod=mod go mod download -json \
    "github.com/prometheus-operator/prometheus-operator@$VERSION" \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d["Error"]) if d.get("Error") else print(d["Dir"])')"
  mkdir -p "$out"
  for kind in "${kinds[@]}"; do
    cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$out/"
  done
  chmod -R u+w "$out"
fi
echo "$out"
