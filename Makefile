# apiwatch — one command each: make run · make demo · make test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run demo test lint format bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Start apiwatch on http://localhost:7860 against the real providers (SQLite in data/).
run: $(STAMP)
	@mkdir -p data
	$(BIN)/apiwatch db upgrade
	$(BIN)/apiwatch serve

## Start the built-in simulator and apiwatch against it, with changing scenarios.
demo: $(STAMP)
	@mkdir -p data
	$(BIN)/apiwatch demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## The whole suite: lint, layer contracts, tests (SQLite, PostgreSQL and Redis where present).
test: lint
	$(BIN)/pytest -q

## Benchmarks need the bench extra (slowapi, the instrumentator, APScheduler); each script
## also runs on its own, see bench/README.md.
bench: $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	$(BIN)/python bench/probe_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
