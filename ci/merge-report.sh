#!/usr/bin/env bash
# Merge every board's results into one file and one HTML report.
set -euo pipefail
in="${1:?usage: merge-report.sh BOARDS_DIR OUT_DIR}"
out="${2:?out dir}"
cd "$(dirname "$0")/.."
py="${EDGECHECK_PYTHON:-}"  # an interpreter with edgecheck installed; default: the Makefile's .venv
if [ -z "$py" ]; then make setup >/dev/null; py=.venv/bin/python; fi
mkdir -p "$out"
mapfile -t runs < <(find "$in" -name 'results-*.json' | sort)
if [ "${#runs[@]}" -eq 0 ]; then echo "no results-*.json under $in"; exit 1; fi
"$py" -m edgecheck merge "${runs[@]}" -o "$out/merged.json"
"$py" -m edgecheck report "$out/merged.json" -o "$out/report.html"
