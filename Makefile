# ecredit: `make demo` and `make test` set everything up themselves from a fresh clone.
# The interpreter the venv is built with: PYTHON=... when given, else the first of python3.11,
# python3.12, python3.13 and python3 on PATH that is Python 3.11 or newer.
PYTHONS := python3.11 python3.12 python3.13 python3
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell for p in $(PYTHONS); do $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 \
	&& { echo $$p; break; }; done)
endif
CHECK_PYTHON = $(if $(PYTHON),$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 \
	|| { echo "$(PYTHON) does not run as Python 3.11 or newer (set PYTHON to one that does)"; exit 1; }, \
	echo "Python 3.11 or newer is needed: none of $(PYTHONS) on PATH is (install one, or set PYTHON)"; exit 1)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export SPARK_LOCAL_IP := 127.0.0.1

DEMO_DIR ?= data
DEMO_OPERATORS ?= 2000
DEMO_DATES ?= 2026-11-01,2026-11-02,2026-11-03
PYTEST_ARGS ?=
# make test runs the tests in this many processes (pytest-xdist; tests/conftest.py groups them)
TEST_WORKERS ?= 2

.PHONY: venv demo lint test test-fast test-unit test-integration bench bench-demo lock clean generated python

venv: $(STAMP)

# The interpreter `make venv` would use (or why there is none).
python:
	@$(CHECK_PYTHON)
	@echo $(PYTHON)

$(STAMP): requirements.lock pyproject.toml
	@$(CHECK_PYTHON)
	@command -v java >/dev/null || { echo "java is needed (Java 17+) for Spark"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip check
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ecredit demo --data-dir $(DEMO_DIR) --operators $(DEMO_OPERATORS) --dates $(DEMO_DATES)

test: lint
	$(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

# ruff (lint and format) and mypy, configured in pyproject.toml; `make test` runs it first.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# One tier: the folder is the tier (tests/fast, tests/unit, tests/integration).
test-fast: $(STAMP)
	$(PY) -m pytest tests/fast $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

# The pipeline at SCALE operators (history date + one daily increment), stage by stage, beside the
# DuckDB baseline of the scoring (bench/, BENCHMARKS.md); PostgreSQL on 127.0.0.1:5432 (database
# ecredit_bench, dropped and created); the last line printed is JSON.
SCALE ?= 100000
BENCH_ARGS ?=
bench: $(STAMP)
	$(PY) -m bench.run --scale $(SCALE) $(BENCH_ARGS)

# What a user waits for: `ecredit demo` (2,000 operators, three dates) and each date through the DAG,
# beside the generator's rows/s (bench/demo.py; BENCH_DEMO_ARGS="--repeat 3" for the best of three).
bench-demo: $(STAMP)
	$(PY) -m bench.demo $(BENCH_DEMO_ARGS)

# Files generated from the code (a unit test fails when they are out of date).
generated: $(STAMP)
	$(PY) -m ecredit.quality.expectations >/dev/null

# Re-resolve the pinned direct dependencies of pyproject.toml into requirements.lock.
lock:
	@$(CHECK_PYTHON)
	rm -rf /tmp/ecredit-lock && $(PYTHON) -m venv /tmp/ecredit-lock
	/tmp/ecredit-lock/bin/pip install --quiet --upgrade pip
	/tmp/ecredit-lock/bin/pip install --quiet . ".[test]"
	/tmp/ecredit-lock/bin/pip freeze --exclude ecredit > requirements.lock

clean:
	rm -rf $(VENV) .airflow data
