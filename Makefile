# The two commands of a fresh machine: `make demo` and `make test`. Each creates .venv and installs itself.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CONSTRAINTS := constraints/airflow-3.3.2-py3.11.txt

.PHONY: demo test postgres-binaries redis-binaries test-floor test-ui test-cluster test-faults bench bench-batch lint docs docs-build format install clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS) -e ".[test,docs]"
	touch $(STAMP)

install: $(STAMP)

## Run the summarization example DAG through Airflow (emulator, or the real API when AIMLAPI_API_KEY is set).
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Lint, type-check, build the documentation site strictly and run the whole test suite.
test: lint docs-build postgres-binaries redis-binaries
	$(BIN)/python -m pytest

## PostgreSQL's server binaries, for the tests that start their own server (tests/pg_server.py): Debian's package.
postgres-binaries:
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql)

## Redis's server binary, for the tests of the connection-wide limits' Redis store (tests/redis_server.py).
redis-binaries:
	command -v redis-server >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server)

## The documentation site, built with --strict: a broken link or reference fails the build.
docs-build: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## Serve the documentation site on http://127.0.0.1:8000 while you edit it.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

## The whole suite on the lowest Airflow the package declares (apache-airflow 3.3.0), in its own venv.
FLOOR_VENV := .venv-floor
test-floor: postgres-binaries redis-binaries
	$(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(FLOOR_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints/airflow-3.3.0-py3.11.txt "apache-airflow==3.3.0" -e ".[test]"
	$(FLOOR_VENV)/bin/python -m pytest -q

## The connection form, Test button, a DAG run, and approving, editing and rejecting model answers (human-in-the-loop)
## in Airflow's real UI (headless Debian Chromium + Playwright).
test-ui: $(STAMP)
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS) -e ".[ui]"
	$(BIN)/python scripts/ui_test.py

## A real multi-worker Airflow on 127.0.0.1 (CeleryExecutor, PostgreSQL, Redis, two workers): 20,000 records in mapped
## batch shards under connection-wide limits, one worker SIGKILLed mid-run; writes docs/cluster.md.
test-cluster: $(STAMP) postgres-binaries redis-binaries
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS) -e ".[cluster]"
	$(BIN)/python scripts/cluster_test.py

## Fault injection (loopback only, bounded in time): a chaos batch, kill and resume, property-based fuzzing of
## parameters and responses.
test-faults: $(STAMP)
	$(BIN)/python -m pytest -m faults tests/faults
	$(BIN)/python tests/faults/write_reliability.py

## Every benchmark against the emulator on 127.0.0.1; writes docs/benchmarks.md and its plots.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS) -e ".[bench]"
	$(BIN)/python -m benchmarks

## Batch throughput and memory benchmark only.
bench-batch: $(STAMP)
	$(BIN)/python benchmarks/batch_throughput.py

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(FLOOR_VENV) .airflow-demo .airflow-ui .airflow-cluster build .pytest_cache .mypy_cache .ruff_cache
