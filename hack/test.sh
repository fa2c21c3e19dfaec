#!/usr/bin/env bash
# The test command behind `make test` and `.ci/run`: makes sure every
# prerequisite exists (binaries built from the Go module proxy and cached,
# a Docker engine, the local test images, the emulator and operator images, the Python
# package), then runs
# the requested tiers with pytest. In CI (CI=true) a missing prerequisite
# fails the tests instead of skipping them, and "no tests ran" is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
tiers=("$@")
[[ ${#tiers[@]} -gt 0 ]] || tiers=(unit integration e2e cluster)
log() { echo "[test] $*" >&2; }

needs_bed=false needs_node=false
for t in "${tiers[@]}"; do
  [[ "$t" != unit ]] && needs_bed=true
  [[ "$t" == cluster ]] && needs_node=true
done

start=$SECONDS
python3 -c "import decnet, kopf, lightkube, docker" 2>/dev/null || \
  { log "installing the Python package"; python3 -m pip install -q -e '.[dev]' >&2; }
if $needs_bed; then
  if $needs_node; then
    # the one-node cluster's kubelet, kube-proxy, scheduler, controller-manager and crictl
    bash hack/build-binaries.sh cluster >/dev/null
  else
    bash hack/build-binaries.sh all >/dev/null
  fi
  # Argo CD (controller + repo server) and the health_test.yaml driver, for the GitOps tests
  bash hack/build-binaries.sh argocd >/dev/null
  bash hack/docker-up.sh
  bash hack/images.sh >/dev/null
  bash hack/emulator-image.sh >/dev/null
  bash hack/operator-image.sh >/dev/null
  bash hack/clients.sh
fi
log "set-up took $((SECONDS - start)) s"

paths=()
for t in "${tiers[@]}"; do paths+=("tests/$t"); done
set +e
python3 -m pytest "${paths[@]}" ${PYTEST_ARGS:--q -ra --durations=30}
rc=$?
set -e
if [[ $rc -eq 5 ]]; then log "no tests were collected: that is a failure"; exit 1; fi
exit $rc
