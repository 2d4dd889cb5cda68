# ehr developer tasks (GNU make). Every target builds .venv first when it is missing, and
# re-installs the project only when pyproject.toml changed (stamp file .venv/.installed).
#
#   make run      demo data (only into an empty database) + server on http://127.0.0.1:8000
#   make test     whole test suite: SQLite always, PostgreSQL when reachable
#   make lint     ruff check, mypy, import-linter
#   make bench    benchmarks/run.sh, once it exists
#   make migration MSG="add audit tables"   autogenerate a revision from the models
#   make clean    caches and build output (keeps .venv and var/, the local database)
#   make distclean   clean + remove .venv

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# pytest-xdist workers; TEST_WORKERS=0 runs in one process (easier to debug).
TEST_WORKERS ?= auto
PYTEST_ARGS ?=

.PHONY: help venv run test lint bench migration clean distclean

help:
	@sed -n 's/^#   make /make /p' $(firstword $(MAKEFILE_LIST))

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP)

# `ehr demo` and `ehr serve` apply pending migrations themselves (ehr.store.migrate.upgrade).
run: $(STAMP)
	$(BIN)/ehr demo --if-empty
	$(BIN)/ehr serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	@$(BIN)/python -c 'import os, socket;\
	wanted = [b.strip() for b in os.environ.get("EHR_TEST_BACKENDS", "sqlite,postgresql").split(",") if b.strip()];\
	env = os.environ.get("EHR_TEST_POSTGRES_URL");\
	s = socket.socket(); s.settimeout(0.5); up = env or s.connect_ex(("127.0.0.1", 5432)) == 0;\
	pg = "postgresql" in wanted and up;\
	why = "EHR_TEST_POSTGRES_URL" if env else "127.0.0.1:5432";\
	runs = [b for b in wanted if b != "postgresql"] + (["postgresql (" + why + ")"] if pg else []);\
	skip = "" if pg or "postgresql" not in wanted else "  -- PostgreSQL NOT reachable: its tests will be SKIPPED";\
	print("==> test backends: " + ", ".join(runs) + skip, flush=True)'
	$(BIN)/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: $(STAMP)
	@status=0; \
	echo "==> ruff check"; $(BIN)/ruff check . || status=1; \
	echo "==> mypy"; $(BIN)/mypy || status=1; \
	echo "==> lint-imports"; $(BIN)/lint-imports || status=1; \
	exit $$status

bench: $(STAMP)
	@if [ -f benchmarks/run.sh ]; then bash benchmarks/run.sh; \
	else echo "benchmarks/run.sh does not exist yet: nothing to run"; fi

# Autogenerates against a scratch SQLite database brought to head, so only the models' changes
# since the newest revision land in the new script. Review it (types, collations) before commit.
migration: $(STAMP)
	@test -n "$(MSG)" || { echo 'usage: make migration MSG="what changed"'; exit 2; }
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(BIN)/alembic -x url=sqlite:///$$tmp/head.db upgrade head; \
	$(BIN)/alembic -x url=sqlite:///$$tmp/head.db revision --autogenerate -m "$(MSG)"

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .import_linter_cache \
		.hypothesis test-artifacts
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
