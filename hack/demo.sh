#!/usr/bin/env bash
# The local demo: a real control plane and Docker engine, the CRDs and
# built-in ServiceTemplates with the real service image (the protocol
# emulators, built locally by hack/emulator-image.sh), the operator and one
# node agent as local processes, the examples applied, and the deckies
# watched until Ready.
#   hack/demo.sh up     start everything (idempotent for the binaries/images)
#   hack/demo.sh down   stop what `up` started (by pid) and remove what it made
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
STATE="${DECNET_DEMO_DIR:-/tmp/decnet-demo}"
NODE="${NODE_NAME:-demo-node}"
NS="${DEMO_NAMESPACE:-decoys}"
export PYTHONPATH="$ROOT/operator${PYTHONPATH:+:$PYTHONPATH}"
log() { echo -e "\033[1m[demo]\033[0m $*" >&2; }

stop_pid() {
  local pidfile="$1"
  [[ -f "$pidfile" ]] || return 0
  local pid; pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$pidfile"
}

down() {
  local kubeconfig="$STATE/controlplane/kubeconfig"
  if [[ -f "$STATE/agent.pid" && -f "$kubeconfig" ]] && python3 hack/controlplane.py status --dir "$STATE/controlplane" >/dev/null; then
    # Let the operator and agent tear the deckies down properly first.
    log "deleting the demo deckies (the agent removes their containers)"
    "$KUBECTL" --kubeconfig "$kubeconfig" delete deckies --all -n "$NS" --timeout=60s >/dev/null 2>&1 || true
  fi
  stop_pid "$STATE/agent.pid"
  stop_pid "$STATE/operator.pid"
  python3 hack/controlplane.py down --dir "$STATE/controlplane" || true
  # Whatever is left labelled as the demo's in Docker goes too.
  docker ps -aq --filter "label=decnet.io/namespace=$NS" | xargs -r docker rm -f >/dev/null
  docker network ls -q --filter "label=decnet.io/namespace=$NS" | xargs -r docker network rm >/dev/null
  log "demo stopped"
}

up() {
  local start=$SECONDS
  if ! command -v kubectl-decnet >/dev/null || ! python3 -c "import kopf, lightkube, docker" 2>/dev/null; then
    python3 -m pip install -q -e '.[dev]'
  fi
  local bin; bin="$(bash hack/build-binaries.sh all)"
  KUBECTL="$bin/kubectl"
  bash hack/docker-up.sh
  bash hack/images.sh >/dev/null
  log "building the service image (real emulators; cached after the first run)"
  bash hack/emulator-image.sh >/dev/null
  mkdir -p "$STATE"
  if ! python3 hack/controlplane.py status --dir "$STATE/controlplane" >/dev/null 2>&1; then
    python3 hack/controlplane.py up --dir "$STATE/controlplane" >/dev/null
  fi
  export KUBECONFIG="$STATE/controlplane/kubeconfig"
  local k=("$KUBECTL" --kubeconfig "$KUBECONFIG")
  log "installing CRDs and the built-in ServiceTemplates"
  "${k[@]}" apply --server-side -f crds/ >/dev/null
  "${k[@]}" wait --for=condition=Established crd --all --timeout=60s >/dev/null
  "${k[@]}" apply --server-side -f examples/servicetemplates.yaml >/dev/null
  # The agents' Leases live here; agents never create namespaces (helm's --create-namespace does).
  "${k[@]}" create namespace decnet-system --dry-run=client -o yaml | "${k[@]}" apply -f - >/dev/null

  if [[ ! -f "$STATE/operator.pid" ]] || ! kill -0 "$(cat "$STATE/operator.pid")" 2>/dev/null; then
    log "starting the operator (log: $STATE/operator.log)"
    nohup python3 -m decnet.controller --standalone --webhook-port "${WEBHOOK_PORT:-9443}" --metrics-port 0 \
      >"$STATE/operator.log" 2>&1 &
    echo $! > "$STATE/operator.pid"
  fi
  if [[ ! -f "$STATE/agent.pid" ]] || ! kill -0 "$(cat "$STATE/agent.pid")" 2>/dev/null; then
    log "starting the node agent for node $NODE (log: $STATE/agent.log)"
    NODE_NAME="$NODE" nohup python3 -m decnet.agent --metrics-port 0 >"$STATE/agent.log" 2>&1 &
    echo $! > "$STATE/agent.pid"
  fi
  # The operator registers its admission webhook at start-up; wait for it.
  for _ in $(seq 1 100); do
    "${k[@]}" get validatingwebhookconfigurations -o name 2>/dev/null | grep -q decnet && break
    sleep 0.2
  done

  for _ in $(seq 1 100); do
    "${k[@]}" get lease "decnet-agent-$NODE" -n decnet-system >/dev/null 2>&1 && break
    sleep 0.2
  done

  "${k[@]}" create namespace "$NS" --dry-run=client -o yaml | "${k[@]}" apply -f - >/dev/null
  log "applying examples/fleet.yaml and examples/topology.yaml into namespace $NS"
  "${k[@]}" get deckies -n "$NS" -w --output-watch-events=false &
  local watch_pid=$!
  "${k[@]}" apply -n "$NS" -f examples/fleet.yaml -f examples/topology.yaml >&2
  if "${k[@]}" wait --for=condition=Ready deckies --all -n "$NS" --timeout="${DEMO_TIMEOUT:-180s}" >/dev/null; then
    sleep 1
    kill "$watch_pid" 2>/dev/null || true
    wait "$watch_pid" 2>/dev/null || true
    echo
    log "all deckies Ready in $((SECONDS - start)) s; what Docker runs:"
    docker ps --filter "label=decnet.io/namespace=$NS" --format 'table {{.Names}}\t{{.Status}}' >&2
    echo
    local ip; ip="$("${k[@]}" get decky ws-02 -n "$NS" -o jsonpath='{.status.addresses[0].ip}' 2>/dev/null || true)"
    log "attack one (from this host): nmap -sV -Pn $ip;  ssh root@$ip;  curl -i http://$ip/"
    local ssh; ssh="$(docker ps --format '{{.Names}}' --filter "label=decnet.io/namespace=$NS" \
      --filter label=decnet.io/decky=ws-02 --filter label=decnet.io/service=ssh | head -n1)"
    log "      what it captured: docker logs ${ssh:-<the ssh container of ws-02>}"
    log "try:  export KUBECONFIG=$KUBECONFIG; alias kubectl=$KUBECTL"
    log "      kubectl get deckies,lans,topologies -n $NS;  kubectl-decnet status -A"
    log "stop: make demo-down"
  else
    kill "$watch_pid" 2>/dev/null || true
    log "deckies did not all turn Ready; operator/agent logs are in $STATE"
    "${k[@]}" get deckies -n "$NS" -o wide >&2 || true
    exit 1
  fi
}

KUBECTL="$(python3 -c 'import os;print(os.path.expanduser(os.environ.get("DECNET_CACHE","~/.cache/decnet-operator"))+"/bin/current/kubectl")')"
case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
