# One entry point for developers and CI. `make test` is the test command (.ci/run calls it).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KUBECONFIG_LOCAL := .local/kubeconfig

.PHONY: help venv controlplane promtool browser cluster-up cluster-down lint typecheck layers dockerfile manifests test test-fast demo bench bench-hostile chaos crds lock fmt clean image plugin

help:
	@echo "make test          lint, type-check, layering contract and the full test suite (builds the control plane once)"
	@echo "make test-fast     the inner loop: lint, types, contracts, unit, API-server and in-process tests (no operator process, no image)"
	@echo "make demo          local control plane + simulator + operator + examples"
	@echo "make bench         scale benchmark (N=1000 NAMESPACES=10 LATENCY_MS=50); results in bench/results/"
	@echo "make chaos         N objects (default 200) under operator kills, platform faults, an API server restart; bench/results/chaos-*"
	@echo "make bench-hostile SCENARIO=templates|bigspecs: one tenant's worst (N2, N3) and what it costs the others; bench/results/hostile-*"
	@echo "make cluster-up    start kube-apiserver + etcd on loopback, kubeconfig in $(KUBECONFIG_LOCAL)"
	@echo "make cluster-down  stop them and remove their state"
	@echo "make crds          regenerate crds/ (and the chart's copies) from the pydantic models"
	@echo "make manifests     render the chart's default install into deploy/ for kubectl users"
	@echo "make image         build the container image (Docker if an engine answers, else podman; see README)"
	@echo "make plugin        the kubectl plugin as a zipapp, its krew archive and manifest, in dist/"
	@echo "make lock          re-resolve requirements.lock from pyproject.toml"
	@echo "make browser       Debian's chromium and chromedriver for the OAuth consent tests (apt-get when missing, as root)"

# The virtual environment is rebuilt whenever the lock file or the project metadata changes.
# The simulator (simulator/, its own distribution) is a development tool: installed here, never
# by requirements-runtime.lock or the Dockerfile. Its dependencies are a subset of the operator's,
# so requirements.lock covers them.
$(STAMP): requirements.lock pyproject.toml simulator/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "error: Python 3.11 or newer is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip install --quiet --no-deps -e simulator
	@touch $@

venv: $(STAMP)

controlplane: $(STAMP)
	$(BIN)/python -m hack.controlplane build

# promtool checks and unit-tests the chart's alert rules (tests/chart/test_rules.py); built from the
# Prometheus Go module pinned in hack/controlplane/promtool/go.mod and cached like the control plane.
promtool: $(STAMP)
	$(BIN)/python -m hack.promtool

# The OAuth consent tests click the provider's page in a real headless Chromium: Debian's chromium and
# chromium-driver, installed with apt-get when missing (as root, as CI runs it; about 15 s once).
browser: $(STAMP)
	$(BIN)/python -m hack.browser

cluster-up: controlplane
	$(BIN)/python -m hack.controlplane up --kubeconfig $(KUBECONFIG_LOCAL)

cluster-down: $(STAMP)
	$(BIN)/python -m hack.controlplane down --kubeconfig $(KUBECONFIG_LOCAL)

lint: $(STAMP)
	$(BIN)/ruff check operator simulator tests hack bench
	$(BIN)/ruff format --check operator simulator tests hack bench

typecheck: $(STAMP)
	$(BIN)/mypy --strict operator/connector_operator operator/kubectl_openconnectors simulator/open_connectors_simulator

layers: $(STAMP)
	$(BIN)/lint-imports

dockerfile: $(STAMP)
	$(BIN)/hadolint Dockerfile

# The suite mostly waits (on the operator, the API server, the platform's pacing), so it runs on more
# workers than cores; each worker has its own control plane and simulator. The image tests stay on
# one worker (xdist_group), so the image is built once.
TEST_WORKERS ?= 4
PYTEST_ARGS ?=

test: lint typecheck layers dockerfile controlplane promtool browser
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The plugin's tests that need the operator as a process (the rest of tests/plugin is fast).
PLUGIN_OPERATOR_TESTS := tests/plugin/test_with_operator.py

# The inner loop: lint, types, contracts, and the tiers that need no operator process and no image
# (unit, API server, in-process passes, simulator, GitOps, chart rendering). Under 2 minutes warm.
FAST_TIERS := tests/unit tests/contracts tests/api tests/reconciler tests/simulator tests/gitops tests/chart/test_render.py tests/chart/test_dashboard.py tests/chart/test_rules.py tests/image/test_podspec.py tests/controlplane \
	$(filter-out $(PLUGIN_OPERATOR_TESTS),$(wildcard tests/plugin/test_*.py))

test-fast: lint typecheck layers controlplane promtool browser
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup -m "not slow" $(FAST_TIERS) $(PYTEST_ARGS)

crds: $(STAMP)
	$(BIN)/python -m connector_operator.api.crd crds charts/open-connectors-operator/crds

# Docker when an engine answers; else podman with the project's own store under the cache directory,
# on a stand-in for the base image when no registry is reachable (hack/image/).
image: $(STAMP)
	$(BIN)/python -m hack.image build

manifests: controlplane
	$(BIN)/python -m hack.manifests deploy/open-connectors-operator.yaml

lock:
	$(PYTHON) -m pip install --quiet "uv>=0.13,<0.14"
	$(PYTHON) -m uv pip compile pyproject.toml \
		--python-version 3.11 --generate-hashes -o requirements-runtime.lock
	$(PYTHON) -m uv pip compile pyproject.toml --extra dev \
		--python-version 3.11 --generate-hashes -o requirements.lock
	$(PYTHON) -m uv pip compile pyproject.toml --extra dev --extra bench \
		--python-version 3.11 --generate-hashes -o requirements-bench.lock

# The kubectl plugin as one Python zipapp with its pure-Python dependencies from requirements.lock
# (hack/plugin.py), the krew archive and the manifest filled in from plugins/krew/.
plugin: $(STAMP)
	$(BIN)/python -m hack.plugin

demo: controlplane
	$(BIN)/python -m hack.demo

# The benchmark (not part of `make test`): see bench/README.md.
BENCH_STAMP := $(VENV)/.bench-installed
N ?= 1000
NAMESPACES ?= 10
LATENCY_MS ?= 50
BENCH_ARGS ?=

$(BENCH_STAMP): requirements-bench.lock $(STAMP)
	$(BIN)/pip install --quiet --require-hashes -r requirements-bench.lock
	@touch $@

bench: $(BENCH_STAMP) controlplane
	$(BIN)/python -m bench.run --n $(N) --namespaces $(NAMESPACES) --latency-ms $(LATENCY_MS) $(BENCH_ARGS)

# Chaos (not part of `make test`, a few minutes): see bench/chaos.py. N defaults to 200 here.
CHAOS_ARGS ?=
chaos: controlplane
	$(BIN)/python -m bench.chaos --n $(if $(filter command line,$(origin N)),$(N),200) $(CHAOS_ARGS)

# Hostile tenants (not part of `make test`, about 3 minutes each): see bench/hostile.py.
SCENARIO ?= templates
HOSTILE_ARGS ?=
bench-hostile: controlplane
	$(BIN)/python -m bench.hostile $(SCENARIO) $(HOSTILE_ARGS)

clean: cluster-down
	rm -rf $(VENV) .local

fmt: $(STAMP)
	$(BIN)/ruff format operator simulator tests hack bench
	$(BIN)/ruff check --fix operator simulator tests hack bench
