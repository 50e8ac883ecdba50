# apiwatch — one command each: make run · make demo · make test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Where deploy/assets.sh puts the dashboard's chart library (git-ignored; removed by clean).
VENDOR := apiwatch/web/static/vendor

# Swagger UI and ReDoc come from npm (package.json, package-lock.json) and are served by
# apiwatch itself, so /docs and /redoc work without internet. Copied, never committed.
DOCS_ASSETS := apiwatch/api/docs_assets
ASSETS_STAMP := $(DOCS_ASSETS)/.installed

.PHONY: install assets run demo test lint docs docs-check format bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,docs]'
	@touch $(STAMP)

# Without npm the API still runs; /docs and /redoc then answer 503 saying what is missing.
$(ASSETS_STAMP): package.json package-lock.json deploy/assets.sh
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && \
	  sh deploy/assets.sh . && \
	  touch $(ASSETS_STAMP); \
	else \
	  echo "npm not found: /docs, /redoc and the dashboard will not work until Node.js and npm are installed and 'make install' is run again" >&2; \
	fi

assets: $(ASSETS_STAMP)

install: $(STAMP) assets

## Start apiwatch on http://localhost:7860 against the real providers (SQLite in data/).
run: install
	@mkdir -p data
	$(BIN)/apiwatch db upgrade
	$(BIN)/apiwatch serve

## Start the built-in simulator and apiwatch against it, with changing scenarios.
## Other ports: make demo SIM_PORT=7871 PORT=7870 (or APIWATCH_SIM_PORT, APIWATCH_PORT).
demo: install
	@mkdir -p data
	$(BIN)/apiwatch demo $(if $(SIM_PORT),--sim-port $(SIM_PORT)) $(if $(PORT),--port $(PORT))

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/hadolint deploy/Dockerfile

## The documentation site (docs/, mkdocs.yml) on http://127.0.0.1:8000, rebuilt on every edit.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve -a 127.0.0.1:8000

## Build the site the way a reader gets it; --strict turns a broken link or nav entry into a failure.
docs-check: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## The whole suite: lint, layer contracts, the docs build, tests (SQLite, PostgreSQL and Redis where present).
## The timing-sensitive tests (marked `serial`) run first, alone. Then the tests run in three
## processes (pytest-xdist, whole files per process: a module's database fixtures are set up
## once) and, beside them, the API contract fuzzer in a plain pytest of its own (xdist cannot
## tell its items apart), whose output follows theirs. The other runs leave the fuzzer's file
## out: collecting it builds its examples, a minute of CPU per process that collects it.
## All always run; any failing fails.
FUZZER := tests/api/test_contract.py
test: lint docs-check assets
	@status=0; log=$$(mktemp); \
	$(BIN)/pytest -q -m serial --ignore=$(FUZZER) || status=1; \
	$(BIN)/pytest -q $(FUZZER) >$$log 2>&1 & fuzzer=$$!; \
	$(BIN)/pytest -q -m "not serial" --ignore=$(FUZZER) -n 3 --dist loadfile --durations=25 || status=1; \
	wait $$fuzzer || status=1; \
	echo "--- the contract fuzzer ($(FUZZER)), run beside the parallel tests:"; \
	cat $$log; rm -f $$log; \
	exit $$status

## Benchmarks need the bench extra (slowapi, the instrumentator, APScheduler); each script
## also runs on its own, see bench/README.md.
bench: $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	$(BIN)/python bench/probe_throughput.py

# The copied assets go with their stamp (inside $(DOCS_ASSETS)): a stamp left behind would make
# the next `make install` skip the copy and leave the dashboard without its chart library.
clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache site node_modules $(VENDOR) $(DOCS_ASSETS)
