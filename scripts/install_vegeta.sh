#!/usr/bin/env bash
# Install the open-loop load generator vegeta into <project root>/.tools/bin.
# Idempotent: does nothing when a working vegeta is already there.
# Usage: bash scripts/install_vegeta.sh [project-root]
set -euo pipefail

VEGETA_MODULE="github.com/tsenart/vegeta/v12"
VEGETA_VERSION="v12.13.0"

ROOT="${1:-${SERVEBENCH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}}"
BIN_DIR="$ROOT/.tools/bin"
VEGETA="$BIN_DIR/vegeta"

if [[ -x "$VEGETA" ]] && "$VEGETA" -version >/dev/null 2>&1; then
    echo "vegeta already installed: $VEGETA"
    exit 0
fi

if ! command -v go >/dev/null 2>&1; then
    cat >&2 <<MSG
error: 'go' was not found on PATH, so vegeta cannot be built.
Install Go >= 1.22 (https://go.dev/doc/install, e.g. 'apt-get install golang-go' or
unpack the official tarball into /usr/local/go and add /usr/local/go/bin to PATH), then
re-run: bash scripts/install_vegeta.sh
Alternatively download a vegeta ${VEGETA_VERSION} release binary from
https://github.com/tsenart/vegeta/releases and place it at $VEGETA
(or point SERVEBENCH_VEGETA at an existing vegeta binary).
MSG
    exit 1
fi

mkdir -p "$BIN_DIR"
echo "building ${VEGETA_MODULE}@${VEGETA_VERSION} into $BIN_DIR"
GOBIN="$BIN_DIR" go install "${VEGETA_MODULE}@${VEGETA_VERSION}"

if ! "$VEGETA" -version >/dev/null 2>&1; then
    echo "error: $VEGETA was built but '-version' failed" >&2
    exit 1
fi
echo "installed: $VEGETA"
