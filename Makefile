# veilcast: the two commands of the README's quick start, and a few more.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: demo test lint typecheck contracts unit suite bench dashboard clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

demo: $(STAMP)
	$(BIN)/veilcast run scenarios/quickstart.toml --out results
	$(BIN)/veilcast compare results/quickstart
	$(BIN)/veilcast sweep scenarios/privacy-comparison.toml --out results --resume
	$(BIN)/veilcast compare results/privacy-comparison
	$(BIN)/veilcast dashboard --results results

test: lint typecheck contracts suite

lint: $(STAMP)
	$(BIN)/ruff check market sim dashboard resultkit tests benchmarks
	$(BIN)/ruff format --check market sim dashboard resultkit tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

contracts: $(STAMP)
	$(BIN)/lint-imports

# The fast lane: every test but those marked slow (whole runs, sweeps, the CLI) or browser.
unit: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not browser"

# Every test, the browser one included (what CI runs through make test).
suite: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks

dashboard: $(STAMP)
	$(BIN)/veilcast dashboard --results results

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
