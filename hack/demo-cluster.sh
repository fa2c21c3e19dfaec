#!/usr/bin/env bash
# `make demo-cluster`: a one-node cluster on this machine (hack/cluster.py), the local
# images, then the README's "Install on a cluster" lines exactly as a user runs them
# (helm install --wait, the examples). `make cluster-down` removes it all.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "[demo-cluster] $*" >&2; }
bash hack/docker-up.sh
make -s images >/dev/null
kubeconfig="$(python3 hack/cluster.py up)"
python3 hack/cluster.py import decnet/operator:0.1.0
bin="$(bash hack/build-binaries.sh cluster)"
export KUBECONFIG="$kubeconfig" PATH="$bin:$PATH"
if helm status decnet --namespace decnet-system >/dev/null 2>&1; then
  log "the chart is installed already"
else
  python3 hack/readme_blocks.py cluster-install | bash -euxo pipefail
fi
kubectl get pods -n decnet-system -o wide
kubectl get deckies -n decoys
log "export KUBECONFIG=$kubeconfig PATH=$bin:\$PATH   # then: kubectl get deckies -A -w"
log "make cluster-down removes the cluster (the README's uninstall lines first, if you like)"
