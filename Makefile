# The README names these targets; `make help` lists them.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin

# Runtime state stays inside the checkout (git-ignored), never in the home directory.
export DAGSTER_HOME := $(CURDIR)/var/dagster_home

# The demo world `make run` builds: about CUSTOMERS guests signing up over DAYS days from START.
# `make run CUSTOMERS=100000 DAYS=365` builds a large one (several million events). A world must
# end by today (the gate holds rows dated in the future): a longer history starts earlier.
CUSTOMERS ?= 2000
DAYS      ?= 180
START     ?= 2025-01-01

# What dbt builds the marts on: `duckdb` (the warehouse file), or `spark` (Apache Spark in local
# mode over the Parquet lake; `make run ENGINE=spark` installs it first). The same models,
# asset graph and checks either way (README, Past one machine).
ENGINE ?= duckdb
export REGULARS_ENGINE := $(ENGINE)

.DEFAULT_GOAL := help
.PHONY: help install run test browser postgres java spark superset bi ui collector lint format clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# uv installs the venvs: the same versions pip resolves (checked with both freezes), in 16 s
# instead of 57 for .venv with empty caches, 5 s instead of 38 for Superset's. uv reads no
# pip.conf: behind a package mirror, set UV_DEFAULT_INDEX (or UV_INDEX_URL) to it.
UV_VERSION := 0.13.9
# $(call uv_install,<venv python>,<requirements>). If uv fails, its own message says what it could
# not fetch or resolve, and the line after it the one thing to try.
# --compile-bytecode: uv writes no .pyc by default, leaving it to the first import, and where
# PYTHONDONTWRITEBYTECODE is set (containers, CI images often) no import ever writes one: every
# process, each dbt build and test worker among them, compiled its imports from source again
# (9.4 s of a 24 s dbt run of the three analytics models at 100,000 guests; importing the Dagster
# definitions 8.5 s instead of 17). Installing .venv takes 33 s instead of 16 (uv's cache warm).
uv_install = @echo "uv pip install $(2)  ->  $(1)"; $(BIN)/uv pip install --quiet --compile-bytecode --python $(1) $(2) \
	|| { echo "uv could not install the packages: behind a package mirror, set UV_DEFAULT_INDEX to its URL (uv reads no pip.conf) and run make again."; exit 1; }

$(BIN)/uv: Makefile
	@command -v $(PYTHON) >/dev/null || { echo "Needs $(PYTHON): install Python 3.11 or run make PYTHON=python3"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	@touch $@

$(BIN)/regulars: pyproject.toml | $(BIN)/uv
	$(call uv_install,$(BIN)/python,-e '.[dev]')
	@touch $@

install: $(BIN)/regulars  ## Create .venv and install Regulars (re-used when present)

run: install $(if $(filter spark,$(ENGINE)),spark)  ## Build the demo world and materialize every asset through Dagster
	$(BIN)/regulars simulate build --customers $(CUSTOMERS) --days $(DAYS) --acquisition-days $(DAYS) \
		--start $(START)
	$(BIN)/regulars materialize

# One worker per core (pyproject.toml addopts). --durations: every run, CI's included, ends with
# its slowest tests, so growth shows where it is.
test: install spark browser postgres superset  ## Run the test suite (unit, dbt, Dagster, end to end)
	$(BIN)/pytest --durations=25

# The browser test drives Debian's chromium (Playwright cannot download its own browser offline).
# Without it, and without root to install it, the browser test skips and says why.
CHROMIUM := /usr/bin/chromium

browser:  ## Install Chromium for the browser test of the UI (Debian's package)
	@if [ -x $(CHROMIUM) ]; then exit 0; \
	elif ! command -v apt-get >/dev/null; then \
		echo "No $(CHROMIUM) and no apt-get: install Chromium there for the browser test."; \
	elif [ "$$(id -u)" != 0 ]; then \
		echo "No $(CHROMIUM): run 'sudo apt-get install -y chromium' for the browser test."; \
	else \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

# The serving copy's PostgreSQL tests start Debian's server themselves, on a loopback port, from a
# throwaway data folder; without it, and without root to install it, they skip and say why.
postgres:  ## Install the PostgreSQL server for the serving copy's tests (Debian's package)
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; then exit 0; \
	elif ! command -v apt-get >/dev/null; then \
		echo "No PostgreSQL server and no apt-get: install one for the serving copy's tests."; \
	elif [ "$$(id -u)" != 0 ]; then \
		echo "No PostgreSQL server: run 'sudo apt-get install -y postgresql' for its tests."; \
	else \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	fi

# dbt on Spark (REGULARS_ENGINE=spark, the `spark` extra) runs pyspark, which needs Java 17; the
# Spark build skips and says why without it.
java:  ## Install Java 17 for dbt on Spark (Debian's headless JRE)
	@if command -v java >/dev/null && java -version 2>&1 | grep -q 'version "17'; then exit 0; \
	elif ! command -v apt-get >/dev/null; then \
		echo "No Java 17 and no apt-get: install a Java 17 runtime for dbt on Spark."; \
	elif [ "$$(id -u)" != 0 ]; then \
		echo "No Java 17: run 'sudo apt-get install -y openjdk-17-jre-headless' for dbt on Spark."; \
	else \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless; \
	fi

# pyspark and dbt-spark (the `spark` extra, about 450 MB) only for those who build on Spark: the
# Spark test of `make test`, or `make run ENGINE=spark`.
# A variable: its comma would split $(call)'s arguments.
WITH_SPARK := -e '.[dev,spark]'
$(VENV)/.spark-installed: pyproject.toml | $(BIN)/regulars
	$(call uv_install,$(BIN)/python,$(WITH_SPARK))
	@touch $@

spark: install java $(VENV)/.spark-installed  ## Install dbt on Apache Spark (pyspark, dbt-spark, Java 17)

# Superset has its own venv: its pins (SQLAlchemy 1.4, its Flask stack) cannot share .venv's.
SUPERSET_VENV := var/superset/venv

$(SUPERSET_VENV)/bin/superset: bi/requirements.txt bi/constraints.txt | $(BIN)/uv
	@command -v $(PYTHON) >/dev/null || { echo "Needs $(PYTHON): install Python 3.11 or run make PYTHON=python3"; exit 1; }
	test -d $(SUPERSET_VENV) || $(PYTHON) -m venv $(SUPERSET_VENV)
	$(call uv_install,$(SUPERSET_VENV)/bin/python,-r bi/requirements.txt -c bi/constraints.txt)
	@touch $@

superset: $(SUPERSET_VENV)/bin/superset  ## Install Apache Superset into var/superset/venv (re-used when present)

bi: install superset  ## Superset with the dashboards on http://127.0.0.1:8089, read-only on the serving copy
	$(BIN)/python -m bi.superset serve --port 8089

ui: install  ## Open the Dagster UI on http://127.0.0.1:3000
	$(BIN)/regulars ui --port 3000

collector: install  ## Event collector (Segment HTTP API) on http://127.0.0.1:8088
	$(BIN)/regulars collector

lint: install  ## Lint Python (ruff), the layers' import contracts and the dbt SQL (sqlfluff)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	@# A process per core; its pool leaves a semaphore that Python's resource tracker warns about.
	cd dbt_project && PYTHONWARNINGS=ignore::UserWarning \
		../$(BIN)/sqlfluff lint models tests --disable-progress-bar --processes 0

format: install  ## Format Python
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:  ## Remove everything a run wrote (keeps .venv)
	rm -rf data warehouse var dbt_project/target dbt_project/logs
