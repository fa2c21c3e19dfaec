# decnet-operator — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
export PYTHONPATH := $(CURDIR)/operator:$(PYTHONPATH)
BIN := $(shell $(PYTHON) -c 'import os;print(os.path.expanduser(os.environ.get("DECNET_CACHE","~/.cache/decnet-operator"))+"/bin/current")')
KUBECTL ?= $(BIN)/kubectl
HELM ?= $(BIN)/helm
IMG_TAG ?= 0.1.0
NAMESPACE ?= decnet-system
REGISTRY ?=
IMAGES := base
RELEASE ?= decnet
KIND_CLUSTER ?= decnet
CHART := charts/decnet-operator

.DEFAULT_GOAL := help

##@ General
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development
manifests: ## Generate crds/, the chart's crds/, the built-in ServiceTemplates and docs/argocd/argocd-cm.yaml
	$(PYTHON) -m decnet.api.crdgen
	$(PYTHON) hack/servicetemplates.py
	$(PYTHON) hack/argocd_cm.py

verify: ## Regenerate every generated artifact and fail on any diff
	$(PYTHON) -m decnet.api.crdgen --check
	$(PYTHON) hack/servicetemplates.py --check
	$(PYTHON) hack/argocd_cm.py --check
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/unit/api/test_api_schema.py tests/unit/api/test_crdgen.py

golden: ## Rewrite tests/unit/api/golden/*.yaml after an intended API change
	UPDATE_GOLDEN=1 $(PYTHON) -m pytest -q tests/unit/api/test_api_schema.py

lint: ## ruff, mypy (strict) and import-linter layering contracts
	$(PYTHON) -m ruff check operator tests bench hack
	$(PYTHON) -m mypy
	PYTHONPATH=operator lint-imports

binaries: ## Build kube-apiserver, kubectl, etcd and helm from the Go module proxy (cached)
	bash hack/build-binaries.sh all

argocd-binary: ## Build the multi-call argocd binary and the health_test.yaml driver from the Go module proxy (cached)
	bash hack/build-binaries.sh argocd

##@ Tests
test: ## Run unit, integration, e2e and cluster tests (builds and starts what they need)
	bash hack/test.sh unit integration e2e cluster

test-unit: ## Run unit tests only (no cluster, no Docker)
	bash hack/test.sh unit

test-integration: ## Run integration tests (real control plane and/or Docker)
	bash hack/test.sh integration

test-e2e: ## Run end-to-end tests (operator + agent + control plane + Docker)
	bash hack/test.sh e2e

test-cluster: ## Run the cluster tier: the chart installed with helm in a real one-node cluster
	bash hack/test.sh cluster

bench: ## Run the benchmarks in bench/ and regenerate bench/RESULTS.md
	bash hack/bench.sh

##@ Local run
testbed-up: ## Start a local control plane (etcd + kube-apiserver) and Docker
	bash hack/docker-up.sh
	$(PYTHON) hack/controlplane.py up

testbed-down: ## Stop the local control plane started by testbed-up
	$(PYTHON) hack/controlplane.py down

demo: ## The whole thing locally: control plane, Docker, CRDs, operator, agent, examples, deckies go Ready
	bash hack/demo.sh up

demo-down: ## Stop the demo and remove everything it made
	bash hack/demo.sh down

argocd-up: ## Start Argo CD (controller, repo server, Redis, a git daemon) against the testbed-up control plane
	bash hack/build-binaries.sh argocd >/dev/null
	$(PYTHON) hack/argocd.py up --kubeconfig $${DECNET_TESTBED_DIR:-/tmp/decnet-testbed}/kubeconfig

argocd-down: ## Stop what argocd-up started
	$(PYTHON) hack/argocd.py down

cluster-up: ## Start a one-node cluster here (kubelet, containerd, kube-proxy beside dockerd); prints its kubeconfig
	bash hack/build-binaries.sh cluster >/dev/null
	$(PYTHON) hack/cluster.py up

cluster-down: ## Stop the one-node cluster and remove everything it made on the host
	$(PYTHON) hack/cluster.py down

demo-cluster: ## The README's cluster install (helm install --wait, examples) on a one-node cluster started here
	bash hack/demo-cluster.sh

run: ## Run the operator against KUBECONFIG in the foreground
	$(PYTHON) -m decnet.controller --standalone

run-agent: ## Run the node agent against KUBECONFIG (NODE_NAME=<node>)
	$(PYTHON) -m decnet.agent

##@ Deployment
install: ## Install the CRDs into the cluster of KUBECONFIG
	$(KUBECTL) apply --server-side -f crds/

uninstall: ## Remove the CRDs (delete deckies first: they carry finalizers)
	$(KUBECTL) delete --ignore-not-found -f crds/

##@ Images
.PHONY: images
images: ## Build every image locally without a registry (operator, base, emulator, busybox, pause; cached) and print their names
	@bash hack/docker-up.sh
	@OPERATOR_IMAGE=$(REGISTRY)decnet/operator:$(IMG_TAG) bash hack/operator-image.sh
	@DECNET_BASE_IMAGE=$(REGISTRY)decnet/base:$(IMG_TAG) bash hack/images.sh
	@EMULATOR_IMAGE=$(REGISTRY)decnet/emulator:$(IMG_TAG) bash hack/emulator-image.sh

operator-image: ## Build decnet/operator locally without a registry (mmdebstrap root filesystem and a host-made wheelhouse, cached)
	OPERATOR_IMAGE=$(REGISTRY)decnet/operator:$(IMG_TAG) bash hack/operator-image.sh

emulator-image: ## Build decnet/emulator locally without a registry (mmdebstrap root filesystem, cached)
	EMULATOR_IMAGE=$(REGISTRY)decnet/emulator:$(IMG_TAG) bash hack/emulator-image.sh

docker-build: ## Build the operator/agent, base and service (emulator) images from public bases (needs Docker Hub access)
	docker build -f images/operator/Dockerfile -t $(REGISTRY)decnet/operator:$(IMG_TAG) .
	docker build -f images/emulator/Dockerfile -t $(REGISTRY)decnet/emulator:$(IMG_TAG) .
	@for img in $(IMAGES); do \
	  echo "docker build -t $(REGISTRY)decnet/$$img:$(IMG_TAG) images/$$img"; \
	  docker build -t $(REGISTRY)decnet/$$img:$(IMG_TAG) images/$$img || exit 1; \
	done

docker-push: ## Push the images built by docker-build to REGISTRY
	docker push $(REGISTRY)decnet/operator:$(IMG_TAG)
	docker push $(REGISTRY)decnet/emulator:$(IMG_TAG)
	@for img in $(IMAGES); do docker push $(REGISTRY)decnet/$$img:$(IMG_TAG) || exit 1; done

helm-lint: ## helm lint --strict the chart
	$(HELM) lint --strict $(CHART)

deploy: ## Install or upgrade the Helm chart (operator, agent, RBAC, CRDs, ServiceTemplates) in NAMESPACE
	$(KUBECTL) create namespace $(NAMESPACE) --dry-run=client -o yaml | $(KUBECTL) apply -f -
	# the agent shares the namespace and needs the privileged Pod Security level
	$(KUBECTL) label namespace $(NAMESPACE) pod-security.kubernetes.io/enforce=privileged --overwrite
	# helm installs the chart's crds/ on a first install only: upgrade them first
	$(KUBECTL) apply --server-side --force-conflicts -f $(CHART)/crds/
	$(HELM) upgrade --install $(RELEASE) $(CHART) --namespace $(NAMESPACE) \
	  --set image.repository=$(REGISTRY)decnet/operator --set image.tag=$(IMG_TAG) \
	  $(if $(REGISTRY),--set operator.baseImage=$(REGISTRY)decnet/base:$(IMG_TAG) --set serviceTemplates.imagePrefix=$(REGISTRY)decnet/) \
	  --wait --timeout 5m

undeploy: ## Delete every Decky, LAN and Topology (finalizers run), then uninstall the chart
	-$(KUBECTL) delete deckies.decnet.io,topologies.decnet.io,lans.decnet.io --all -A --wait --timeout=5m
	$(HELM) uninstall $(RELEASE) --namespace $(NAMESPACE)

kind-up: ## Create a kind cluster with the host's Docker socket mounted and load the operator image (needs internet)
	KIND_CLUSTER=$(KIND_CLUSTER) IMG_TAG=$(IMG_TAG) bash hack/kind-up.sh

kind-down: ## Delete the kind cluster
	KIND_CLUSTER=$(KIND_CLUSTER) bash hack/kind-down.sh

# For kind, `make kind-up deploy` with the default (empty) REGISTRY: the operator image is
# loaded into the node and the base/service images live in the host's Docker, which the
# agent uses through the mounted socket. Note: `deploy` uses the cached helm binary
# ($(HELM)); a user's own helm works too: `make deploy HELM=helm KUBECTL=kubectl`.
