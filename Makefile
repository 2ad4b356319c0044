# riskengine: `make run` serves the API, `make test` runs the suite. Both set up .venv first.
SHELL := /bin/bash
# The interpreter .venv is made from (PYTHON=... names another). The distribution's own
# python3 comes first when it is the same version (major.minor) as python3 on the PATH, 3.11 or
# newer, and can make a virtualenv: the same Python, built faster. Debian builds it with
# profile-guided and link-time optimization into one static executable, and on this machine
# kind it scores ~1.1 x the logins a CPU-second of pyenv's default build of the same version,
# which has neither (bench/README, "The interpreter"). Otherwise python3 from the PATH.
SYSTEM_PYTHON := /usr/bin/python3
PYTHON ?= $(shell $(SYSTEM_PYTHON) -c 'import sys, ensurepip, venv; \
  sys.exit(sys.version_info < (3, 11) or "%d.%d" % sys.version_info[:2] != sys.argv[1])' \
  "$$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" \
  2>/dev/null && echo $(SYSTEM_PYTHON) || echo python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
STORE ?= sqlite:riskengine.db

.PHONY: run test install install-dev services browser lint fuzz model outcome-model bench bench-detection clean

$(BIN)/python:
	@echo "making $(VENV) from $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## Serve the scoring API on $(HOST):$(PORT) with the embedded SQLite store (development keys).
## The first run makes an API key with every scope and prints it in the log (WARNING line).
run: install
	RISKENGINE_ENV=$${RISKENGINE_ENV:-development} $(BIN)/riskengine serve --host $(HOST) --port $(PORT) --store $(STORE)

## Start what the tests talk to: Redis on 127.0.0.1:6379 (this machine kind runs it already).
services:
	@if (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then :; \
	elif command -v redis-server >/dev/null; then \
	  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no; \
	  for i in 1 2 3 4 5 6 7 8 9 10; do (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && break; sleep 0.5; done; \
	else echo "Redis is not running on 127.0.0.1:6379 and redis-server is not installed (apt-get install redis-server)"; exit 1; fi

## Debian's Chromium for the tuning page's browser test (needs root; skipped without it).
browser:
	@command -v chromium >/dev/null || { \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { apt-get update -qq && apt-get install -y -q chromium >/dev/null; } || \
	  echo "could not install chromium: the browser test will be skipped"; }

## Install dev dependencies, check the layers' import rules and the types (pyproject.toml:
## tool.importlinter, tool.mypy: features, models, riskengine/core), run the default test suite.
test: install-dev services browser
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

## Style (ruff), the layers' import rules (lint-imports) and the types (mypy).
lint: install-dev
	$(BIN)/ruff check features models riskengine tests
	$(BIN)/lint-imports
	$(BIN)/mypy

## Schemathesis over every operation, stateless and stateful, with the Redis store up and down,
## with many more examples than the default suite's short run (a few minutes; Redis database 9).
FUZZ_EXAMPLES ?= 300
fuzz: install-dev services
	RISKENGINE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:cacheprovider \
	  --timeout 1800 tests/security/test_fuzz.py

## Rebuild the shipped default model (deterministic).
model: install
	$(BIN)/python -m riskengine.tools.train

## Retrain the outcome model's base (gradient-boosted trees) on the simulator's tuning
## worlds 1-12 and write models/artifacts/outcome-default.joblib; about 40 minutes on 2 cores.
outcome-model: install
	$(BIN)/python -m riskengine.tools.outcome_training --worlds 1-12 --validate 13-14 --users 1000

## Hot-path benchmarks (bench/README.md, "Hot path"): in-process scoring per store, the HTTP
## endpoint against a bare FastAPI one (wrk, installed from Debian when missing), and the
## stores up to 1M users. Uses Redis database 11 and cleans it; about 30 minutes on 2 cores.
bench: install services
	$(BIN)/python bench/hotpath.py --repeat 3
	$(BIN)/python bench/http.py
	$(BIN)/python bench/scale.py

## Detection benchmark: riskengine against the Freeman et al. model (about 5 minutes).
bench-detection: install
	$(BIN)/python bench/detection.py

clean:
	rm -rf $(VENV) .pytest_cache riskengine.db riskengine.db-wal riskengine.db-shm
