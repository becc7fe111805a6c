# Every target CI uses is here; CI runs `bash .ci/run`, which runs `make test`.
# `make help` lists the targets: each has one `## ` line after its name.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
PY ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
UV_NOW = $$(command -v uv || echo $(UV))
VENV := .venv
BIN := $(VENV)/bin
# What .venv holds, and since when: the packages Tapioca runs with (make run), or those
# and the dev group (make test and the other targets that lint, type-check or test).
RUNTIME := $(VENV)/.synced-runtime
DEV := $(VENV)/.synced-dev
SYNC = python=$$(UV=$(UV_NOW) bash scripts/find-python.sh) && $(UV_NOW) sync --frozen --python "$$python"

.PHONY: help uv venv venv-runtime system-deps run migrate test test-unit test-integration test-e2e test-faults test-fuzz lint typecheck format bench clean

help: ## list these targets
	@awk -F':.*## ' '/^[a-z][a-z0-9-]*:.*## /{printf "make %-17s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

uv: ## install uv when it is missing
	@command -v uv >/dev/null 2>&1 || [ -x "$(UV)" ] || $(PY) -m pip install --quiet --user uv || $(PY) -m pip install --quiet uv

$(RUNTIME): pyproject.toml uv.lock | uv
	@$(SYNC) --no-dev
	@rm -f $(DEV) && touch $@

$(DEV): pyproject.toml uv.lock | uv
	@$(SYNC) --group dev
	@rm -f $(RUNTIME) && touch $@

venv-runtime: $(RUNTIME) ## .venv with what running Tapioca needs, and nothing more

venv: $(DEV) ## .venv with the dev group too: tests, ruff, mypy, benchmark tools

system-deps: ## install the PostgreSQL and Redis servers the tests start, when missing
	@bash scripts/ensure-system-deps.sh

run: venv-runtime ## install, migrate and serve on http://127.0.0.1:8000 (embedded DuckDB)
	$(BIN)/tapioca migrate
	$(BIN)/tapioca serve

migrate: venv-runtime ## apply the store's pending migrations
	$(BIN)/tapioca migrate

# lint and typecheck are prerequisites: pytest runs only once both pass
test: venv system-deps lint typecheck ## install everything needed, lint, type-check and run the whole suite
	$(BIN)/pytest -q

test-unit: venv ## the unit tests (no servers)
	$(BIN)/pytest -q tests/unit

test-integration: venv system-deps ## the integration tests (throw-away PostgreSQL and Redis)
	$(BIN)/pytest -q tests/integration

test-e2e: venv system-deps ## the end-to-end tests (tapioca processes over HTTP)
	$(BIN)/pytest -q tests/e2e

test-faults: venv system-deps ## the fault tests (servers and processes broken under load)
	$(BIN)/pytest -q -m faults

test-fuzz: venv system-deps ## the fuzz tests (hypothesis and schemathesis over HTTP)
	$(BIN)/pytest -q -m fuzz

lint: venv ## ruff check and ruff format --check on src, tests and bench
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: venv ## ruff format and ruff check --fix on src, tests and bench
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

typecheck: venv ## mypy (strict) on src and tests
	$(BIN)/mypy src tests

bench: venv system-deps ## measure both stores (long; needs an idle machine) into bench/results/latest.md
	@bash scripts/ensure-bench-deps.sh
	$(BIN)/python -m bench.bench_ingest
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.bench_reports
	$(BIN)/python -m bench.bench_commerce
	$(BIN)/python -m bench.freshness
	$(BIN)/python -m bench.e2e_ab
	$(BIN)/python -m bench.bench_orders
	$(BIN)/python -m bench.bench_forecast
	@echo "results: bench/results/latest.json and bench/results/latest.md"

clean: ## remove .venv and the tools' caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
