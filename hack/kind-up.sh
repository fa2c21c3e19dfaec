#!/usr/bin/env bash
# Creates the `decnet` kind cluster (hack/kind-config.yaml: the host's Docker socket
# mounted into the node) and loads the locally built images into it, so no registry
# is needed. For users with the internet (kind pulls its node image); not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER="${KIND_CLUSTER:-decnet}"
TAG="${IMG_TAG:-0.1.0}"
log() { echo "[kind-up] $*" >&2; }
command -v kind >/dev/null || { log "kind is not installed (https://kind.sigs.k8s.io)"; exit 1; }

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  log "cluster $CLUSTER exists"
else
  kind create cluster --name "$CLUSTER" --config hack/kind-config.yaml --wait 120s
fi
# The agent's deckies run on the host's dockerd (through the mounted socket), so the
# service and base images only need to exist there; the operator image runs as a pod.
for image in "decnet/operator:$TAG"; do
  if docker image inspect "$image" >/dev/null 2>&1; then
    kind load docker-image --name "$CLUSTER" "$image"
  else
    log "image $image missing: run make docker-build first"; exit 1
  fi
done
kubectl config use-context "kind-$CLUSTER" >/dev/null
log "ready: kubectl context kind-$CLUSTER; next: make deploy"
