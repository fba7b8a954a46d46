# breakglass developer commands. `make demo` and `make test` are the two a new user needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# pytest-xdist workers: most of the suite waits on anvil, blocks and servers, so two processes fit two
# cores. PYTEST_WORKERS=0 runs it in one process (what `pytest -s` output needs).
PYTEST_WORKERS ?= 2

.PHONY: setup demo test lint format typecheck pytest bench clean

setup: $(VENV)/.installed node_modules/.installed ## bootstrap .venv and node_modules (idempotent)
	@scripts/ensure-chromium  # Debian's chromium for the browser tests (never playwright install)
	@scripts/ensure-promtool  # Debian's prometheus for promtool: the shipped alert rules are tested

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,postgres,nats]"
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

demo: setup ## local chain, reference venue, an exploit, breakglass detecting and containing it
	$(BIN)/breakglass demo

test: setup lint typecheck pytest ## everything CI runs

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

bench: setup ## every performance benchmark; JSON in benchmarks/results/
	$(BIN)/python -m benchmarks

clean:
	rm -rf .breakglass .mypy_cache .ruff_cache .pytest_cache
