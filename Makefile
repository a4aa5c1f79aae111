# btc-pipeline — every set-up step a fresh clone needs, from package registries only.
# `make help` lists the targets.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON    ?= python3
STATE     := state
UV_VENV   := $(STATE)/uv
UV        := $(UV_VENV)/bin/uv
UV_VERSION := 0.13.9
VENV      := .venv
PY        := $(VENV)/bin/python
KAFKA_LIBS := $(STATE)/kafka/libs
FERRETDB  := $(STATE)/bin/ferretdb-local
COMPOSECHECK := $(STATE)/bin/composecheck
# The development stack (tools/devstack): tooling, not part of the package or the images.
DEVSTACK  := PYTHONPATH=tools $(PY) -m devstack
export UV_PYTHON_DOWNLOADS := never
# Write the .pyc files at install time (uv, all cores): with PYTHONDONTWRITEBYTECODE set, as on the
# build machines, every Airflow process would otherwise compile its imports from source at each start
# (~2.3 s of CPU per process measured; the test stacks start dozens of them).
export UV_COMPILE_BYTECODE := 1
export UV_PROJECT_ENVIRONMENT := $(VENV)

# ARGS: the arguments of `make airflow`
ARGS ?=
# pytest-xdist workers for the test targets: two run the integration modules, each against a
# stack of its own (tests/conftest.py shares the modules out), and a third takes the tests without
# services meanwhile, while the stacks wait on Airflow's minute schedule
TEST_WORKERS ?= 3
PYTEST_PARALLEL := -n $(TEST_WORKERS)

.PHONY: help setup env up demo down status airflow test test-unit test-integration compose-check lint format bench tools browser plotly-bundle clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-17s %s\n", $$1, $$2}'

# --- set-up ---------------------------------------------------------------------------------
$(UV):
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) (3.11) not found"; exit 1; }
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

$(KAFKA_LIBS)/.done: tools/kafka/pom.xml
	@command -v mvn >/dev/null || { echo "error: mvn not found; install Maven (Debian: apt-get install maven)"; exit 1; }
	@command -v java >/dev/null || { echo "error: java not found; install a JRE 17+ (Debian: apt-get install openjdk-17-jre-headless)"; exit 1; }
	rm -rf $(KAFKA_LIBS)
	mvn -q -B -f tools/kafka/pom.xml dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$(CURDIR)/$(KAFKA_LIBS)
	@touch $@

$(FERRETDB): tools/ferretdb/main.go tools/ferretdb/go.mod tools/ferretdb/go.sum
	@command -v go >/dev/null || { echo "error: go (1.24+) not found; see https://go.dev/doc/install"; exit 1; }
	cd tools/ferretdb && go build -trimpath -o $(CURDIR)/$(FERRETDB) .

$(COMPOSECHECK): tools/composecheck/main.go tools/composecheck/go.mod tools/composecheck/go.sum
	cd tools/composecheck && go build -trimpath -o $(CURDIR)/$(COMPOSECHECK) .

setup: $(VENV)/.synced $(KAFKA_LIBS)/.done $(FERRETDB) ## create .venv, fetch Kafka jars, build FerretDB (idempotent)

tools: $(COMPOSECHECK) ## build test tools (compose file validator)

# FORCE=1: replace an existing .env (the volumes of a deployment keep the passwords they started with)
FORCE ?=
# ENV_FILE: where to write it (make compose-check writes its own under state/, never your .env)
ENV_FILE ?= .env
env: $(VENV)/.synced ## write .env for docker compose: random passwords and secret keys (never replaces one; FORCE=1 does)
	$(VENV)/bin/btc-pipeline init-env --path $(ENV_FILE) $(if $(FORCE),--force)

browser: ## install Debian's chromium + chromedriver for the browser tests (needs root or sudo)
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then echo "chromium present"; else \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; fi

# --- the local stack ------------------------------------------------------------------------
up: setup ## run the whole stack locally, fetching LIVE exchange prices
	$(DEVSTACK) up --mode live

demo: setup ## run the whole stack locally against the bundled simulated exchange
	$(DEVSTACK) up --mode demo

down: ## stop everything the local stack started (by pid)
	@if [ -x $(PY) ]; then $(DEVSTACK) down; else echo "nothing to stop (no .venv)"; fi

status: ## show the local stack's processes
	$(DEVSTACK) status

airflow: $(VENV)/.synced ## Airflow's own CLI against the local stack: make airflow ARGS="dags list"
	$(DEVSTACK) airflow -- $(ARGS)

# --- quality --------------------------------------------------------------------------------
lint: $(VENV)/.synced ## the pre-commit hooks on every file: ruff, format, yaml, private keys, uv.lock, mypy
	$(VENV)/bin/pre-commit run --all-files --show-diff-on-failure

format: $(VENV)/.synced ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test-unit: $(VENV)/.synced tools ## fast tests: no services
	$(VENV)/bin/pytest -m "not integration"

test-integration: setup tools browser ## tests against the real local stack (started and stopped by the fixtures)
	$(VENV)/bin/pytest $(PYTEST_PARALLEL) -m integration

test: setup tools browser ## everything: lint, unit and integration tests (what CI runs)
	@# lint runs beside the tests, at a lower CPU priority (they mostly wait on Airflow's schedule);
	@# its report follows theirs
	@mkdir -p $(STATE)/test-artifacts
	@nice -n 10 $(MAKE) --no-print-directory lint > $(STATE)/test-artifacts/lint.log 2>&1 & lint=$$!; \
	$(VENV)/bin/pytest $(PYTEST_PARALLEL) --junitxml=$(STATE)/test-artifacts/junit.xml; tests=$$?; \
	wait $$lint; linted=$$?; echo "== make lint (run beside the tests)"; cat $(STATE)/test-artifacts/lint.log; \
	if [ $$linted -ne 0 ]; then echo "make test: lint failed (above)"; fi; \
	[ $$tests -eq 0 ] && [ $$linted -eq 0 ]

compose-check: setup ## build both images and run docker-compose.yml end to end on podman (stand-ins where no registry answers; tools/deploycheck)
	PYTHONPATH=tools $(PY) -m deploycheck

bench: setup ## benchmarks under bench/ (print figures against an in-run baseline)
	$(PY) bench/run.py

plotly-bundle: $(VENV)/.synced ## maintainers: refresh dashboard/static's Plotly bundle from npm (after upgrading plotly)
	$(PY) tools/plotly_bundle.py

clean: down ## remove state/ (data, logs, jars, binaries, compose-check's podman storage) and .venv
	@# containers/storage keeps its overlay directory bind-mounted on itself: rm cannot remove it mounted
	@if mountpoint -q $(STATE)/deploycheck/podman/root/overlay 2>/dev/null; then umount $(STATE)/deploycheck/podman/root/overlay; fi
	rm -rf $(STATE) $(VENV)
