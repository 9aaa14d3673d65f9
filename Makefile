# The study's verbs. Each one runs its own (idempotent, fast when done) set-up first.
#   make report                 the whole study with configs/default.yaml
#   make report CONFIG=quick    the CI-sized study (or CONFIG=path/to/params.yaml)
#   make report SET="max_rounds=8 model_id=distilbert-shape"   override parameters
#   make lint                   ruff (check, format), rustfmt and clippy (warnings are errors)
#   make test                   lint, cargo tests, pytest (contract, fuzzing, soak, faults, end to end)
#   make test-fast              the unit tier only (pure code, no services; on every core, under a minute)
#   make serve SERVICE=python PORT=8080   one service in the foreground
#   make lab [LAB_PORT=8888]    JupyterLab on the project kernel (prints the URL to open)
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
# make lab: no browser is opened (machines are often headless; from another machine forward
# the port: ssh -L 8888:127.0.0.1:8888 host). LAB_TOKEN fixes the access token (tests do);
# empty, a random one is made. The URL is printed before Jupyter starts, so a busy port must
# fail rather than move to another one the printed URL would not name.
LAB_PORT ?= 8888
LAB_IP ?= 127.0.0.1
LAB_TOKEN ?=

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
	@$(VENV)/bin/ruff check src tests service/python service/python-batched
	@$(VENV)/bin/ruff format --check src tests service/python service/python-batched
	@cd service/rust && cargo fmt --check
	@cd service/rust && cargo clippy --locked --workspace --all-targets --quiet -- -D warnings

test: setup-test lint
	@cd service/rust && cargo test --locked --workspace
	@$(PY) -m servebench.cli build
	@$(PY) -m pytest -q
	@# The Rust tests that need the exported model (pytest has exported it by now).
	@cd service/rust && MODEL_DIR=$(CURDIR)/data/models/minilm-sentiment \
	  ORT_DYLIB_PATH=$$($(PY) -c 'from servebench import registry; print(registry.onnxruntime_library())') \
	  cargo test --locked --workspace -- --ignored

test-fast: setup
	@$(PY) -m pytest -q -m unit -n auto

serve: setup
	@$(PY) -m servebench.cli serve --service $(SERVICE) --port $(PORT) --model-id $(MODEL)

# The token goes through the environment (JUPYTER_TOKEN), not argv, so `ps` does not show it.
lab: setup
	@token='$(LAB_TOKEN)'; token=$${token:-$$($(PY) -c 'import secrets; print(secrets.token_hex(24))')}; \
	printf '[lab] open http://%s:%s/lab?token=%s  (notebooks/ on kernel servebench; Ctrl-C twice stops)\n' \
	  '$(LAB_IP)' '$(LAB_PORT)' "$$token" >&2; \
	JUPYTER_TOKEN=$$token exec $(VENV)/bin/jupyter lab --no-browser --ip '$(LAB_IP)' --port '$(LAB_PORT)' \
	  --ServerApp.port_retries=0 --ServerApp.log_level=WARN --LabApp.log_level=WARN \
	  --notebook-dir notebooks --MappingKernelManager.default_kernel_name=servebench \
	  $(if $(filter 0,$(shell id -u)),--allow-root)

clean-runs:
	rm -rf data/runs/*-interactive 
