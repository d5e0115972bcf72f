# claimflow developer entry points. `make run` and `make test` are the contract.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(HOME)/.local/bin:$(PATH)

.PHONY: help venv run test test-unit lint fmt bench constraints schemas clean

help:
	@echo "make run          start PostgreSQL, Kafka and every service locally, with sample data"
	@echo "make test         run the whole test suite (real PostgreSQL and Kafka)"
	@echo "make lint         ruff and mypy --strict"
	@echo "make bench        run the benchmarks under bench/"
	@echo "make schemas      regenerate the event JSON Schemas under schemas/"
	@echo "make constraints  re-pin constraints.txt with uv pip compile"

venv:
	@scripts/bootstrap.sh

run: venv
	$(PY) -m claimflow_devstack.cli run

test: venv
	$(PY) -m claimflow_devstack.cli prepare
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: venv
	$(PY) -m pytest -m "not integration" $(PYTEST_ARGS)

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
	rm -rf $(VENV) .state .mypy_cache .ruff_cache .pytest_cache
