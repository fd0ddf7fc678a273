# Data Foundry: the two commands of the README are `make run` and `make test`.
# Both create ./.venv on first use and install the project into it with the
# pins in constraints.txt; later runs reuse it until pyproject/constraints change.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast check services clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Install, then run the whole walking skeleton on the embedded default and keep serving.
run: install
	$(BIN)/foundry up

## Install, then run the whole test suite (unit, integration, end to end).
## redis-server is installed with apt-get where possible, for the Redis online-store
## tests; without it those tests are skipped and say why.
test: install services
	$(BIN)/python -m pytest

services:
	@command -v redis-server >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) ; } || \
	  echo "redis-server not available: the Redis online-store tests will be skipped"

## Only the tests that need no Ray.
test-fast: install
	$(BIN)/python -m pytest tests/unit

## Lint and type-check the library.
check: install
	$(BIN)/ruff check raycore serve_apps train_jobs tests benchmarks
	$(BIN)/mypy raycore

clean:
	rm -rf .foundry .pytest_cache .mypy_cache .ruff_cache
