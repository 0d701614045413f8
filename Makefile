# ddb_iceberg: every target installs what it needs first, so each works on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# The suite's time is mostly JVM starts and waits on subprocesses: two workers (each with its one Spark session)
# keep both cores busy. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
EMR_ARCH ?= arm64
# checkov lives in its own virtualenv: it pins boto3, botocore, packaging and networkx far below what the project
# runs and tests with, and its verdict changes between releases, so the version is pinned like ruff's and mypy's.
CHECKOV_VENV ?= .venv-checkov
CHECKOV_VERSION := 3.3.30
CHECKOV := $(CHECKOV_VENV)/bin/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

# Independent prerequisites build side by side: `make test` installs .venv and .venv-checkov at once.
MAKEFLAGS += --jobs=2

.DEFAULT_GOAL := help
.PHONY: help install checkov demo test lint ruff mypy pytest format bench dev screenshot emr-python-deps emr-python-env clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml setup.py
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "ddb_iceberg needs Python 3.11+"'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install ddb_iceberg with its development tools

$(CHECKOV_STAMP):
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "checkov here needs Python 3.11+"'
	test -d $(CHECKOV_VENV) || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet "checkov==$(CHECKOV_VERSION)"
	rm -f $(CHECKOV_VENV)/.installed-*
	touch $(CHECKOV_STAMP)

checkov: $(CHECKOV_STAMP) ## Scan the CloudFormation stack with checkov (in .venv-checkov; the tests run it too)
	CKV_SKIP_PACKAGE_UPDATE_CHECK=true $(CHECKOV) -d deploy/ --framework cloudformation --skip-download --compact

demo: install ## Run the pipeline end to end on the embedded local default
	$(BIN)/ddb-iceberg demo

# The suite waits on subprocesses half of the time: mypy runs beside it (make's two jobs), not before it.
test: ruff mypy pytest ## Run lint and the whole test suite (what CI runs)

lint: ruff mypy ## Lint and type-check (ruff, mypy)

ruff: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

mypy: install
	$(BIN)/mypy

pytest: install $(CHECKOV_STAMP) ruff
	DDB_ICEBERG_CHECKOV=$(abspath $(CHECKOV)) $(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

format: install ## Format the code and apply safe lint fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install ## Run the benchmarks (figures go in BENCHMARKS.md)
	$(BIN)/ddb-iceberg bench

dev: install ## Start the Dagster UI (dagster dev) on the local default
	DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/.ddb_iceberg/dagster_home} && mkdir -p $$DAGSTER_HOME && \
	  DAGSTER_HOME=$$DAGSTER_HOME $(BIN)/dagster dev -w workspace.yaml

screenshot: install ## Photograph the asset graph for the README (needs Debian's chromium)
	$(BIN)/python docs/screenshot.py

emr-python-deps: ## Build the Spark job's Python dependencies for EMR Serverless from wheels (no Docker): dist/
	$(VENV)/bin/ddb-iceberg emr-python-deps --arch $(EMR_ARCH) --output dist/ddb-iceberg-python-deps.zip

emr-python-env: ## Alternative: the job's own Python interpreter and dependencies, built with Docker: dist/
	docker buildx build --platform linux/$(EMR_ARCH) --output type=local,dest=dist deploy/emr-python

clean: ## Remove the virtualenv and every local artefact
	rm -rf $(VENV) $(CHECKOV_VENV) .ddb_iceberg .pytest_cache .mypy_cache .ruff_cache *.egg-info dist
