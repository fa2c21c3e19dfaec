#!/usr/bin/env bash
# Builds kube-apiserver, kubectl, etcd and helm (and, with `node`, the node's
# kubelet, kube-proxy, kube-scheduler and kube-controller-manager) from the Go module proxy
# (no GitHub downloads here) into a cache outside the repo, keyed by version.
# Prints the bin directory on stdout; build logs go to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
CACHE_ROOT="${DECNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/decnet-operator}"
BIN="$CACHE_ROOT/bin"
mkdir -p "$BIN"
log() { echo "[build-binaries] $*" >&2; }

k8s_bin_dir="$BIN/kubernetes-$KUBERNETES_VERSION"
etcd_bin_dir="$BIN/etcd-$ETCD_VERSION"
helm_bin_dir="$BIN/helm-$HELM_VERSION"
crictl_bin_dir="$BIN/crictl-$CRICTL_VERSION"
argocd_bin_dir="$BIN/argocd-$ARGOCD_VERSION"

# -X flags that make `--version` print the real version (the module has no git tree).
k8s_version_flags() {
  local minor="${KUBERNETES_VERSION#v1.}" pkg
  minor="${minor%%.*}"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    printf ' -X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=clean' \
      "$pkg" "$KUBERNETES_VERSION" "$pkg" "$pkg" "$minor" "$pkg"
  done
}

build_kubernetes() {
  if [[ -x "$k8s_bin_dir/kube-apiserver" && -x "$k8s_bin_dir/kubectl" ]]; then return; fi
  local start=$SECONDS work="$CACHE_ROOT/src/kubernetes-$KUBERNETES_VERSION"
  mkdir -p "$work" "$k8s_bin_dir"
  log "building kube-apiserver and kubectl $KUBERNETES_VERSION (cold: many minutes)"
  local gomod
  gomod="$(cd "$work" && GOFLAGS=-mod=mod go list -m -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  local staging_version="v0.${KUBERNETES_VERSION#v1.}"
  {
    echo "module decnet.io/testbed/kubernetes"
    echo
    echo "go 1.25"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    # Every staging module is required at v0.0.0 and replaced by a local
    # path upstream; point each at its published release instead.
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
  } > "$work/go.mod"
  cat > "$work/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  (cd "$work" && GOFLAGS=-mod=mod go mod tidy >&2)
  (cd "$work" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w $(k8s_version_flags)" -o "$k8s_bin_dir/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl >&2)
  log "kubernetes built in $((SECONDS - start)) s"
  echo "$((SECONDS - start))" > "$k8s_bin_dir/.build-seconds"
}

# The one-node cluster's binaries: same wrapper module and version as kube-apiserver.
node_binaries=(kubelet kube-proxy kube-scheduler kube-controller-manager)
build_node() {
  build_kubernetes
  local missing=false name
  for name in "${node_binaries[@]}"; do [[ -x "$k8s_bin_dir/$name" ]] || missing=true; done
  $missing || return 0
  local start=$SECONDS work="$CACHE_ROOT/src/kubernetes-$KUBERNETES_VERSION"
  log "building ${node_binaries[*]} $KUBERNETES_VERSION (warm module cache: a few minutes)"
  local pkgs=()
  for name in "${node_binaries[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$name"); done
  (cd "$work" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w $(k8s_version_flags)" -o "$k8s_bin_dir/" "${pkgs[@]}" >&2)
  log "node binaries built in $((SECONDS - start)) s"
  echo "$((SECONDS - start))" > "$k8s_bin_dir/.node-build-seconds"
}

# crictl: `cluster.py down` removes pod sandboxes through CRI so CNI releases their addresses.
build_crictl() {
  if [[ -x "$crictl_bin_dir/crictl" ]]; then return; fi
  local start=$SECONDS
  mkdir -p "$crictl_bin_dir"
  log "building crictl $CRICTL_VERSION"
  GOBIN="$crictl_bin_dir" GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" >&2
  log "crictl built in $((SECONDS - start)) s"
}

build_etcd() {
  if [[ -x "$etcd_bin_dir/etcd" ]]; then return; fi
  local start=$SECONDS work="$CACHE_ROOT/src/etcd-$ETCD_VERSION"
  mkdir -p "$work" "$etcd_bin_dir"
  log "building etcd $ETCD_VERSION"
  cat > "$work/go.mod" <<MOD
module decnet.io/testbed/etcd

go 1.25

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  cat > "$work/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  (cd "$work" && GOFLAGS=-mod=mod go mod tidy >&2)
  (cd "$work" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$etcd_bin_dir/etcd" go.etcd.io/etcd/server/v3 >&2)
  log "etcd built in $((SECONDS - start)) s"
  echo "$((SECONDS - start))" > "$etcd_bin_dir/.build-seconds"
}

build_helm() {
  if [[ -x "$helm_bin_dir/helm" ]]; then return; fi
  local start=$SECONDS
  mkdir -p "$helm_bin_dir"
  log "building helm $HELM_VERSION"
  local minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
  GOBIN="$helm_bin_dir" GOFLAGS=-mod=mod go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  log "helm built in $((SECONDS - start)) s"
  echo "$((SECONDS - start))" > "$helm_bin_dir/.build-seconds"
}

# Argo CD: one multi-call binary (application controller, repo server, CLI) from the
# argo-cd Go module, which needs a newer Go than the machine's (GOTOOLCHAIN fetches it
# through the module proxy). Its go.mod pins k8s.io/* and a few others with `replace`
# lines a wrapper must copy, and replaces gitops-engine by a local path: that one is
# pointed at the published module of the same release instead.
# hack/argocd-health (the health_test.yaml driver on Argo CD's own Lua code) is built in
# the same wrapper, so both share one dependency graph; its cache key is its source hash.
argocd_go() { GOTOOLCHAIN="$ARGOCD_GOTOOLCHAIN" GOFLAGS=-mod=mod go "$@"; }
argocd_wrapper() {
  local work="$CACHE_ROOT/src/argocd-$ARGOCD_VERSION"
  if [[ -f "$work/go.mod" ]]; then echo "$work"; return; fi
  mkdir -p "$work"
  local gomod
  gomod="$(cd "$work" && argocd_go list -m -json "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  python3 - "$gomod" "$ARGOCD_VERSION" > "$work/go.mod.new" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
version = sys.argv[2]
requires = dict(re.findall(r"^\s*(\S+) (v\S+)", text, re.M))
lines = []
for block in re.findall(r"^replace \((.*?)^\)", text, re.M | re.S):
    lines += [ln.split("//")[0].strip() for ln in block.splitlines()]
lines += [ln[len("replace "):].strip() for ln in text.splitlines() if ln.startswith("replace ") and "(" not in ln]
print("module decnet.io/testbed/argocd\n\ngo 1.27.0\n")
print(f"require github.com/argoproj/argo-cd/v3 {version}\n")
for ln in filter(None, lines):
    old, new = (part.strip() for part in ln.split("=>"))
    if new.startswith("."):
        new = f"{old} {requires[old]}"
    print(f"replace {old} => {new}")
PY
  mv "$work/go.mod.new" "$work/go.mod"
  echo "$work"
}
build_argocd() {
  if [[ -x "$argocd_bin_dir/argocd" ]]; then return; fi
  local start=$SECONDS work
  work="$(argocd_wrapper)"
  mkdir -p "$argocd_bin_dir"
  log "building argocd $ARGOCD_VERSION (cold: many minutes)"
  cat > "$work/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/argoproj/argo-cd/v3/cmd"
GO
  (cd "$work" && argocd_go mod tidy >&2)
  local ld="-X github.com/argoproj/argo-cd/v3/common.version=${ARGOCD_VERSION#v}"
  (cd "$work" && argocd_go build -trimpath -ldflags "-s -w $ld" -o "$argocd_bin_dir/argocd" github.com/argoproj/argo-cd/v3/cmd >&2)
  log "argocd built in $((SECONDS - start)) s"
  echo "$((SECONDS - start))" > "$argocd_bin_dir/.build-seconds"
}

# What hack/argocd.py installs beside the binary, from the same module version: the
# Application/AppProject/ApplicationSet CRDs and the stock argocd-cm (its defaults, such as
# ignoring /status updates, are what a real install runs with); and bin/, what Argo CD's
# image has in /usr/local/bin besides the binary: the git/gpg wrapper scripts the repo
# server execs (it verifies commit signatures through git-verify-wrapper.sh on every
# manifest generation) and the argocd-<component> names linked to the binary.
copy_argocd_manifests() {
  if [[ -f "$argocd_bin_dir/manifests/argocd-cm.yaml" && -x "$argocd_bin_dir/bin/git-verify-wrapper.sh" ]]; then return; fi
  local work src name
  work="$(argocd_wrapper)"
  src="$(cd "$work" && argocd_go mod download -json "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  mkdir -p "$argocd_bin_dir/manifests/crds" "$argocd_bin_dir/bin"
  cp "$src"/manifests/crds/*-crd.yaml "$argocd_bin_dir/manifests/crds/"
  cp "$src/hack/git-verify-wrapper.sh" "$src/hack/gpg-wrapper.sh" "$argocd_bin_dir/bin/"
  chmod u+w,a+x "$argocd_bin_dir"/bin/*.sh
  chmod u+w "$argocd_bin_dir"/manifests/crds/*
  for name in argocd argocd-repo-server argocd-application-controller argocd-git-ask-pass argocd-k8s-auth; do
    ln -sf ../argocd "$argocd_bin_dir/bin/$name"
  done
  cp "$src/manifests/base/config/argocd-cm.yaml" "$argocd_bin_dir/manifests/argocd-cm.yaml.tmp"
  chmod u+w "$argocd_bin_dir/manifests/argocd-cm.yaml.tmp"
  mv "$argocd_bin_dir/manifests/argocd-cm.yaml.tmp" "$argocd_bin_dir/manifests/argocd-cm.yaml"
}

# The health_test.yaml driver (hack/argocd-health) on Argo CD's own Lua code, built in the
# argocd wrapper module; cached by Argo CD's version and a hash of its source.
argocd_health_bin=""
build_argocd_health() {
  local sum work
  sum="$(sha256sum "$here/argocd-health/main.go" | cut -c1-12)"
  argocd_health_bin="$argocd_bin_dir/argocd-health-$sum"
  if [[ -x "$argocd_health_bin" ]]; then return; fi
  local start=$SECONDS
  work="$(argocd_wrapper)"
  mkdir -p "$argocd_bin_dir" "$work/healthdriver"
  log "building the argocd-health driver against argo-cd $ARGOCD_VERSION"
  cp "$here/argocd-health/main.go" "$work/healthdriver/main.go"
  (cd "$work" && argocd_go build -trimpath -ldflags "-s -w" -o "$argocd_health_bin.tmp" ./healthdriver >&2)
  mv "$argocd_health_bin.tmp" "$argocd_health_bin"
  log "argocd-health built in $((SECONDS - start)) s"
}

case "${1:-all}" in
  kubernetes) build_kubernetes ;;
  etcd) build_etcd ;;
  helm) build_helm ;;
  node) build_node; build_crictl ;;
  argocd) build_argocd; copy_argocd_manifests; build_argocd_health ;;
  argocd-health) build_argocd_health ;;
  all) build_etcd; build_kubernetes; build_helm ;;
  cluster) build_etcd; build_kubernetes; build_helm; build_node; build_crictl ;;
esac
mkdir -p "$BIN/current"
for f in "$k8s_bin_dir/kube-apiserver" "$k8s_bin_dir/kubectl" "$etcd_bin_dir/etcd" "$helm_bin_dir/helm" \
         "${node_binaries[@]/#/$k8s_bin_dir/}" "$crictl_bin_dir/crictl" "$argocd_bin_dir/argocd"; do
  [[ -x "$f" ]] && ln -sf "$f" "$BIN/current/$(basename "$f")"
done
if [[ -n "$argocd_health_bin" ]]; then ln -sf "$argocd_health_bin" "$BIN/current/argocd-health"; fi
echo "$BIN/current"
