# The study's verbs. Each one runs its own (idempotent, fast when done) set-up first.
#   make report                 the whole study with configs/default.yaml
#   make report CONFIG=quick    the CI-sized study (or CONFIG=path/to/params.yaml)
#   make report SET="repeats=5 model_id=distilbert-shape"   override parameters
#   make test                   lint, cargo tests, pytest (contract, fuzzing, soak, faults, end to end)
#   make test-fast              the unit tier only (pure code, no services; under a minute)
#   make serve SERVICE=python PORT=8080   one service in the foreground
#   make lab                    JupyterLab on the project kernel
SHELL := /bin/bash
VENV ?= $(if $(SERVEBENCH_VENV),$(SERVEBENCH_VENV),$(CURDIR)/.venv)
export SERVEBENCH_VENV := $(VENV)
PY := $(VENV)/bin/python
CONFIG ?= default
SET ?=
SERVICE ?= python
PORT ?= 8080
MODEL ?= minilm-sentiment
export PYO3_PYTHON := $(VENV)/bin/python

.PHONY: setup setup-test build model report test test-fast lint serve lab clean-runs

setup:
	@bash scripts/setup.sh

setup-test:
	@bash scripts/setup.sh --test

build: setup
	@$(PY) -m servebench.cli build

model: setup
	@$(PY) -m servebench.cli export --model-id $(MODEL) $(if $(VARIANTS),--variants $(VARIANTS))

report: setup
	@$(PY) -m servebench.pipeline --config $(CONFIG) $(foreach s,$(SET),--set $(s))

lint: setup
	@$(VENV)/bin/ruff check src tests service/python
	@$(VENV)/bin/ruff format --check src tests service/python

test: setup-test lint
	@cd service/rust && cargo test --locked --workspace
	@$(PY) -m servebench.cli build
	@$(PY) -m pytest -q

test-fast: setup
	@$(PY) -m pytest -q -m unit

serve: setup
	@$(PY) -m servebench.cli serve --service $(SERVICE) --port $(PORT) --model-id $(MODEL)

lab: setup
	@$(VENV)/bin/jupyter lab --notebook-dir notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

clean-runs:
	rm -rf data/runs/*-interactive 
