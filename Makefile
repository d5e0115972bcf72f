# claimflow developer entry points. `make run` and `make test` are the contract.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(HOME)/.local/bin:$(PATH)

.PHONY: help venv run test test-unit test-faults lint fmt bench docs constraints schemas clean charts images cluster dev

help:
	@echo "make run          start PostgreSQL, Kafka and every service locally, with sample data"
	@echo "make test         run the whole test suite (real PostgreSQL and Kafka)"
	@echo "make test-faults  the fault scenarios FAULT_RUNS times (default 5) with one core busy"
	@echo "make lint         ruff and mypy --strict"
	@echo "make bench        run the benchmarks under bench/"
	@echo "make docs         build the documentation site into site/ (mkdocs --strict)"
	@echo "make schemas      regenerate the event JSON Schemas under schemas/"
	@echo "make constraints  re-pin constraints.txt with uv pip compile"
	@echo "make charts       regenerate the charts' values schemas and READMEs, lint and render every chart"
	@echo "make images       build every service image here (a Docker engine of its own; root on Debian)"
	@echo "make cluster      the images, then a real single-node Kubernetes here (root; Ctrl-C tears it down)"
	@echo "make dev          skaffold dev: build, deploy the umbrella chart, watch (needs a cluster)"

venv:
	@scripts/bootstrap.sh

run: venv
	$(PY) -m claimflow_devstack.cli run

test: venv
	$(PY) -m claimflow_devstack.cli prepare
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: venv
	$(PY) -m pytest -m "not integration" $(PYTEST_ARGS)

# Not part of `make test`: repeats the fault suite to catch what fails one run in several.
FAULT_RUNS ?= 5
test-faults: venv
	$(PY) -m claimflow_devstack.cli prepare
	@FAULT_RUNS=$(FAULT_RUNS) scripts/test-faults.sh

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(wildcard services/*/src tools/*/src) bench

fmt: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: venv
	$(PY) -m claimflow_devstack.cli prepare
	$(PY) -m bench $(BENCH_ARGS)

docs: venv
	$(VENV)/bin/mkdocs build --strict --site-dir site

schemas: venv
	$(PY) -m claimflow_shared.events.schemas write schemas/events

constraints:
	uv pip compile requirements/dev.in --python-version 3.11 --no-header \
	  --no-emit-package claimflow-shared --no-emit-package claimflow-intake \
	  --no-emit-package claimflow-adjudication \
	  --no-emit-package claimflow-audit-log \
  --no-emit-package claimflow-operator \
	  --no-emit-package claimflow-devstack -o constraints.txt
	uv pip compile requirements/checkov.in --python-version 3.11 --no-header \
	  -o requirements/checkov.txt

clean:
	rm -rf $(VENV) .state .mypy_cache .ruff_cache .pytest_cache site

# The charts, with the project's own helm (built from Go modules on first use).
HELM := $(PY) -m claimflow_devstack.kube helm
CHART_NAMES := intake adjudication audit-log operator claimflow
charts: venv
	$(PY) charts/values_schema.py
	$(PY) charts/readme.py
	@for chart in $(CHART_NAMES); do \
	  $(HELM) dependency update --skip-refresh charts/$$chart >/dev/null || exit 1; \
	  for values in charts/$$chart/ci/*-values.yaml; do \
	    $(HELM) lint --strict --quiet charts/$$chart -f $$values || exit 1; \
	    $(HELM) template cf charts/$$chart -f $$values >/dev/null || exit 1; \
	  done; \
	done
	@echo "every chart lints and renders with every ci/*-values.yaml"

# Images and the dev loop need Docker and skaffold; SKAFFOLD_ARGS e.g. "-p local,observability".
images: venv
	$(PY) -m claimflow_devstack.images build

# Then, in another terminal: `python -m claimflow_devstack.kube node images` and
# docs/kubernetes.md "On the local node".
cluster: images
	$(PY) -m claimflow_devstack.kube node up

dev:
	skaffold dev $(SKAFFOLD_ARGS)
