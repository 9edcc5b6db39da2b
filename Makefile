# ecert: two commands on a fresh machine.
#   make run   - virtualenv, dependencies, embedded OpenBao + SQLite, API on http://127.0.0.1:8000
#   make test  - the same plus test tools (openssl, poppler, NSS, qpdf, chromium), make lint, then the whole suite
#   make test-fast - the inner loop: SQLite only, without the slow and PostgreSQL tests, no lint
#   make lint  - import-linter (layers), mypy and ruff
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast system-tools bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/ecert serve

system-tools:
	scripts/install-system-tools.sh

test: $(STAMP) system-tools
	scripts/run-tests.sh

test-fast: $(STAMP)
	env -u ECERT_TEST_POSTGRES_URL $(BIN)/pytest -m "not slow and not postgres" $(PYTEST_ARGS)

lint: $(STAMP)
	scripts/lint.sh

bench: $(STAMP) system-tools
	$(BIN)/python -m bench.harness $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var test-artifacts
