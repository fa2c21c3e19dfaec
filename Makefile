# decnet-operator — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
export PYTHONPATH := $(CURDIR)/operator:$(PYTHONPATH)
BIN := $(shell $(PYTHON) -c 'import os;print(os.path.expanduser(os.environ.get("DECNET_CACHE","~/.cache/decnet-operator"))+"/bin/current")')
KUBECTL ?= $(BIN)/kubectl
HELM ?= $(BIN)/helm
IMG_TAG ?= 0.1.0
NAMESPACE ?= decnet-system

.DEFAULT_GOAL := help

##@ General
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development
manifests: ## Generate crds/ and the chart's CRD templates from the pydantic types
	$(PYTHON) -m decnet.api.crdgen

verify: ## Regenerate every generated artifact and fail on any diff
	$(PYTHON) -m decnet.api.crdgen --check
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/unit/api/test_api_schema.py tests/unit/api/test_crdgen.py

golden: ## Rewrite tests/unit/api/golden/*.yaml after an intended API change
	UPDATE_GOLDEN=1 $(PYTHON) -m pytest -q tests/unit/api/test_api_schema.py

lint: ## ruff, mypy (strict) and import-linter layering contracts
	$(PYTHON) -m ruff check operator tests bench hack
	$(PYTHON) -m mypy
	PYTHONPATH=operator lint-imports

binaries: ## Build kube-apiserver, kubectl, etcd and helm from the Go module proxy (cached)
	bash hack/build-binaries.sh all

##@ Tests
test: ## Run unit, integration and e2e tests (builds and starts what they need)
	bash hack/test.sh unit integration e2e

test-unit: ## Run unit tests only (no cluster, no Docker)
	bash hack/test.sh unit

test-integration: ## Run integration tests (real control plane and/or Docker)
	bash hack/test.sh integration

test-e2e: ## Run end-to-end tests (operator + agent + control plane + Docker)
	bash hack/test.sh e2e

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

run: ## Run the operator against $$KUBECONFIG in the foreground
	$(PYTHON) -m decnet.controller --standalone

run-agent: ## Run the node agent against $$KUBECONFIG (NODE_NAME=<node>)
	$(PYTHON) -m decnet.agent

##@ Deployment
install: ## Install the CRDs into the cluster of $$KUBECONFIG
	$(KUBECTL) apply --server-side -f crds/

uninstall: ## Remove the CRDs (delete deckies first: they carry finalizers)
	$(KUBECTL) delete --ignore-not-found -f crds/
