#!/usr/bin/env bash
# Idempotent set-up: project virtualenv from the pinned requirements, the Jupyter kernel,
# hey and vegeta (load generators). Fast when nothing changed. Usage: scripts/setup.sh [--test]
# (--test also installs what the test suite needs: headless Chromium for the report test).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${SERVEBENCH_VENV:-$ROOT/.venv}
want_test=${1:-}

say() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

apt_install() {
  command -v apt-get >/dev/null || return 1
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 && return 0
  as_root apt-get update -q >/dev/null 2>&1 || true
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}

# --- Python: a conda env (environment.yml) if one is active, else a project-local venv.
pick_python() {
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))'; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  PYTHON=$(pick_python) || die "Python >= 3.11 is needed (or: conda env create -f environment.yml)"
  say "creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi

# The harness (servebench, src/) and the Python services' package (servekit, service/python)
# are installed editable without dependencies: requirements.lock pins those. The services,
# rust-ffi's embedded interpreter and the harness then import both by name.
stamp="$VENV/.servebench-requirements"
digest=$(cat requirements.lock pyproject.toml service/python/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
  say "installing pinned requirements into $VENV (torch is large: the first time takes minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -r requirements.lock
  "$VENV/bin/python" -m pip install -q --no-deps -e . -e service/python
  echo "$digest" > "$stamp"
else
  say "python requirements up to date"
fi

if [ ! -f "$VENV/share/jupyter/kernels/servebench/kernel.json" ]; then
  say "registering the Jupyter kernel 'servebench'"
  "$VENV/bin/python" -m ipykernel install --sys-prefix --name servebench \
    --display-name "Python (servebench)" >/dev/null
fi

# --- hey: the seed's load generator.
if ! command -v hey >/dev/null; then
  say "installing hey (Debian package)"
  apt_install hey || die "hey is missing and could not be installed: run 'apt-get install hey'
  (Debian/Ubuntu) or 'go install github.com/rakyll/hey@latest' and put it on PATH"
fi
command -v taskset >/dev/null || apt_install util-linux || die "taskset (util-linux) is missing"

# --- vegeta: the open-loop generator, built with go install into .tools/bin.
bash scripts/install_vegeta.sh

# --- Rust toolchain: needed to build the Rust services.
command -v cargo >/dev/null || die "cargo is missing: install Rust (https://rustup.rs) or use
  'conda env create -f environment.yml', then run this again"
# make lint runs rustfmt and clippy (rustup's default profile has both).
for tool in rustfmt clippy-driver; do
  command -v "$tool" >/dev/null || die "$tool is missing: rustup component add rustfmt clippy"
done

if [ "$want_test" = "--test" ]; then
  if ! command -v chromium >/dev/null; then
    say "installing headless Chromium for the report test (Debian packages chromium, chromium-driver)"
    apt_install chromium chromium-driver || die "Chromium is missing: apt-get install chromium chromium-driver"
  fi
fi
say "ready"
