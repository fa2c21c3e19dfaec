#!/usr/bin/env bash
# Deletes the `decnet` kind cluster. Deckies run on the host's Docker, so their
# containers and networks are removed by the operator when the deckies are deleted:
# run `make undeploy` (which deletes them first) before this, or clean up by label
#   docker rm -f $(docker ps -aq --filter label=app.kubernetes.io/managed-by=decnet-operator)
set -euo pipefail
CLUSTER="${KIND_CLUSTER:-decnet}"
command -v kind >/dev/null || { echo "[kind-down] kind is not installed" >&2; exit 1; }
kind delete cluster --name "$CLUSTER"
