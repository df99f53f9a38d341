# finwatch — everything a fresh machine needs (python3, make, git) is bootstrapped from requirements.lock.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP  := $(VENV)/.finwatch-installed

# The flows apply Prefect's settings themselves (src/finwatch/flowrun.py); nothing Prefect needs is set here.
DEMO_DIR ?= demo-output
# `make server`: a Prefect server on 127.0.0.1, a process work pool and a worker (docs/operations.md)
SERVER_HOME ?= .prefect-server
SERVER_PORT ?= 4200

.PHONY: help venv demo test test-slow test-all fuzz check fmt lock bench clean server deploy server-stop

help:
	@echo "make demo       build the default synthetic world and run finwatch on it (into $(DEMO_DIR)/)"
	@echo "make test       run the test suite (all but the tests marked slow; about 8 minutes on 2 cores)"
	@echo "make test-slow  run the tests marked slow (a Prefect server, the README, the default world; CI runs them)"
	@echo "make test-all   both"
	@echo "make fuzz       mutation fuzzing of every adapter with a long budget (FUZZ_EXAMPLES per format, 400)"
	@echo "make check      ruff (format + lint) and mypy"
	@echo "make bench      run the benchmarks in benchmarks/"
	@echo "make server     start a Prefect server (127.0.0.1:$(SERVER_PORT)), work pool and worker; make server-stop"
	@echo "make deploy     register the deployments of prefect.yaml with that server"
	@echo "make lock       re-resolve requirements.lock from pyproject.toml"

# The environment is (re)built whenever the lock file or pyproject.toml is newer than the last install.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation --editable .
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/finwatch demo --out $(DEMO_DIR)

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

test-all: $(STAMP)
	$(BIN)/python -m pytest -q

FUZZ_EXAMPLES ?= 400
fuzz: $(STAMP)
	FINWATCH_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -s tests/test_fuzz.py

check: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_synth.py

lock:
	@test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"; }
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --quiet -o requirements.lock

server: $(STAMP)
	$(BIN)/finwatch-server start --home $(SERVER_HOME) --port $(SERVER_PORT)

deploy: $(STAMP)
	$(BIN)/finwatch-server deploy --home $(SERVER_HOME)

server-stop: $(STAMP)
	$(BIN)/finwatch-server stop --home $(SERVER_HOME)

clean:
	rm -rf $(VENV) .prefect $(SERVER_HOME) .pytest_cache .mypy_cache .ruff_cache $(DEMO_DIR)
