# Every target CI uses is here; CI runs `bash .ci/run`, which runs `make test`.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
PY ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: help uv venv system-deps run migrate test test-unit test-integration test-e2e test-faults test-fuzz lint typecheck format bench clean

help:
	@echo "make run    - install, migrate and serve on http://127.0.0.1:8000 (embedded DuckDB)"
	@echo "make test   - install everything needed, lint, type-check and run the whole suite"
	@echo "make bench  - measure both stores (long; needs an idle machine) into bench/results/latest.md"

uv:
	@command -v uv >/dev/null 2>&1 || [ -x "$(UV)" ] || $(PY) -m pip install --quiet --user uv || $(PY) -m pip install --quiet uv

$(BIN)/tapioca: pyproject.toml uv.lock | uv
	@$$(command -v uv || echo $(UV)) sync --frozen --group dev
	@touch $@

venv: $(BIN)/tapioca

system-deps:
	@bash scripts/ensure-system-deps.sh

run: venv
	$(BIN)/tapioca migrate
	$(BIN)/tapioca serve

migrate: venv
	$(BIN)/tapioca migrate

# lint and typecheck are prerequisites: pytest runs only once both pass
test: venv system-deps lint typecheck
	$(BIN)/pytest -q

test-unit: venv
	$(BIN)/pytest -q tests/unit

test-integration: venv system-deps
	$(BIN)/pytest -q tests/integration

test-e2e: venv system-deps
	$(BIN)/pytest -q tests/e2e

test-faults: venv system-deps
	$(BIN)/pytest -q -m faults

test-fuzz: venv system-deps
	$(BIN)/pytest -q -m fuzz

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: venv
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

typecheck: venv
	$(BIN)/mypy src tests

bench: venv system-deps
	@bash scripts/ensure-bench-deps.sh
	$(BIN)/python -m bench.bench_ingest
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.bench_reports
	$(BIN)/python -m bench.freshness
	@echo "results: bench/results/latest.json and bench/results/latest.md"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
