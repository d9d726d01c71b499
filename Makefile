# Two entry points (README Quick start): `make conformance` and `make test`.
# Each creates the virtual environment on first use and installs the project into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

.PHONY: install conformance test lint bench provider load
install: $(STAMP)

## Main job: the conformance suites against the embedded reference provider; reports in reports/out/
conformance: $(STAMP)
	$(BIN)/ciba-harness conformance $(ARGS)

## The project's own tests (what CI runs)
test: $(STAMP)
	$(BIN)/ruff check src tests conformance client_conformance load bench conftest.py setup.py
	$(BIN)/mypy
	$(BIN)/pytest -n 3 --dist loadfile $(ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run.py $(ARGS)

provider: $(STAMP)
	$(BIN)/ciba-harness provider $(ARGS)

load: $(STAMP)
	$(BIN)/ciba-harness load $(ARGS)
