# riskengine: `make run` serves the API, `make test` runs the suite. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
STORE ?= sqlite:riskengine.db

.PHONY: run test install install-dev lint model clean

$(BIN)/python:
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

## Serve the scoring API on $(HOST):$(PORT) with the embedded SQLite store (development key).
run: install
	RISKENGINE_ENV=$${RISKENGINE_ENV:-development} $(BIN)/riskengine serve --host $(HOST) --port $(PORT) --store $(STORE)

## Install dev dependencies and run the whole default test suite.
test: install-dev
	$(BIN)/python -m pytest -q

lint: install-dev
	$(BIN)/ruff check features models riskengine tests

## Rebuild the shipped default model (deterministic).
model: install
	$(BIN)/python -m riskengine.train

clean:
	rm -rf $(VENV) .pytest_cache riskengine.db riskengine.db-wal riskengine.db-shm
