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

# Fast path: one pytest run spread over DECNET_TEST_WORKERS pytest-xdist workers (each its
# own session: own control plane, temp dirs, free ports); tests/conftest.py's xdist_group
# keeps the e2e tier, the nmap checks and module-fixture sharers each on one worker, in
# order. test_faults.py restarts dockerd, so it runs alone after them, and so does the
# cluster tier (one node with its kubelet and kube-proxy). DECNET_TEST_WORKERS=0
# is the old single serial run. PYTEST_ARGS replaces the reporting arguments as before.
workers=${DECNET_TEST_WORKERS:-4}
report=(${PYTEST_ARGS:--q -ra --durations=30})
paths=()
alone=()
for t in "${tiers[@]}"; do
  # the cluster tier brings up a node (kubelet, kube-proxy, iptables): alone, after the rest
  if [[ "$t" == cluster && $workers != 0 ]]; then alone+=(tests/cluster); continue; fi
  paths+=("tests/$t")
  [[ "$t" == e2e && $workers != 0 ]] && alone+=(tests/e2e/test_faults.py)
done
runs=()
if [[ $workers == 0 ]]; then
  runs+=("${paths[*]}")
else
  [[ ${#paths[@]} -gt 0 ]] && runs+=("-n $workers --dist loadgroup ${alone[*]/#/--ignore=} ${paths[*]}")
  for one in "${alone[@]}"; do runs+=("$one"); done
fi
ran=false
failed=0
for args in "${runs[@]}"; do
  log "pytest $args"
  set +e
  # shellcheck disable=SC2086  # word-splitting of the assembled arguments is intended
  python3 -m pytest $args "${report[@]}"
  rc=$?
  set -e
  if [[ $rc -eq 5 ]]; then continue; fi
  ran=true
  [[ $rc -eq 0 ]] || failed=$rc
done
log "tests took $((SECONDS - start)) s in all"
if ! $ran; then log "no tests were collected: that is a failure"; exit 1; fi
exit $failed
