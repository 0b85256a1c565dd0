# RevOps AI Framework on Dagster — the only entry points a user needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export REVOPS_HOME ?= $(CURDIR)/.revops
DAGSTER_HOME ?= $(REVOPS_HOME)/dagster_home
PORT ?= 3000
WEBHOOK_PORT ?= 8787

.PHONY: install demo test test-fast dev lint format validate bench clean system-deps dashboard

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## materialise everything on the embedded default, run the churn-prevention flow, print a summary
demo: install
	$(BIN)/revops demo

## the whole test suite (what CI runs)
test: install
	$(BIN)/pytest -q

## unit tests only (skips the slow end-to-end tests)
test-fast: install
	$(BIN)/pytest -q -m "not slow"

## Dagster UI + daemon on workspace.yaml (run `make demo` first to see its materialisations); the
## webhook receiver alongside on WEBHOOK_PORT when a REVOPS_WEBHOOK_SECRET_<SOURCE> is set
dev: install
	mkdir -p $(DAGSTER_HOME)
	test -f $(DAGSTER_HOME)/dagster.yaml || printf 'telemetry:\n  enabled: false\n' > $(DAGSTER_HOME)/dagster.yaml
	if env | grep -q '^REVOPS_WEBHOOK_SECRET_'; then \
	  $(BIN)/revops webhook serve --port $(WEBHOOK_PORT) & trap "kill $$! 2>/dev/null" EXIT INT TERM; \
	else echo "webhook receiver not started: no REVOPS_WEBHOOK_SECRET_<SOURCE> set"; fi; \
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(PORT)

validate: install
	$(BIN)/dagster definitions validate -w workspace.yaml

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python -m benchmarks.run

## Debian packages the browser and Postgres tests need (run as root; CI runs it before the tests)
system-deps:
	command -v chromium >/dev/null 2>&1 || (apt-get update && apt-get install -y --no-install-recommends chromium)
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update && apt-get install -y --no-install-recommends postgresql)

## static performance report at $(REVOPS_HOME)/reports/dashboard.html (after `make demo`)
dashboard: install
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/revops dashboard build

clean:
	rm -rf $(REVOPS_HOME) .pytest_cache .ruff_cache
