#!/usr/bin/env bash
# Build the default grid into DIR; with edgetpu_compiler on PATH every model is compiled too.
set -euo pipefail
out="${1:?usage: build-artifacts.sh OUT_DIR [GRID] [DATASET]}"
grid="${2:-default}"
dataset="${3:-collar}"
cd "$(dirname "$0")/.."
py="${EDGECHECK_PYTHON:-}"  # an interpreter with edgecheck installed; default: the Makefile's .venv
if [ -z "$py" ]; then make setup >/dev/null; py=.venv/bin/python; fi
"$py" -m edgecheck build --grid "$grid" --dataset "$dataset" --out "$out"
