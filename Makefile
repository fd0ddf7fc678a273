# Data Foundry: the two commands of the README are `make run` and `make test`.
# Both create ./.venv on first use and install the project into it with the
# pins in constraints.txt; later runs reuse it until pyproject/constraints change.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast check bench clean

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
test: install
	$(BIN)/python -m pytest

## Only the tests that need no Ray.
test-fast: install
	$(BIN)/python -m pytest tests/unit

## Lint and type-check the library.
check: install
	$(BIN)/ruff check raycore serve_apps train_jobs tests benchmarks
	$(BIN)/mypy raycore

clean:
	rm -rf .foundry .pytest_cache .mypy_cache .ruff_cache
