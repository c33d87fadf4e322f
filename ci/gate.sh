#!/usr/bin/env bash
# The gate of the final job: each expected board has results, and none regresses against its
# committed baseline. Writes a Markdown list to stdout; exit 1 when the gate fails.
#   EDGECHECK_PYTHON     a python with edgecheck installed (default python3)
#   EDGECHECK_BOARDS     the boards that must have reported, space-separated (default: whatever came)
#   EDGECHECK_BASELINES  where the baselines are (default fixtures/baselines)
set -euo pipefail
in="${1:?usage: gate.sh BOARDS_DIR OUT_DIR}"
out="${2:?out dir}"
py="${EDGECHECK_PYTHON:-python3}"
baselines="${EDGECHECK_BASELINES:-$(cd "$(dirname "$0")/.." && pwd)/fixtures/baselines}"
mkdir -p "$out"
mapfile -t runs < <(find "$in" -name 'results-*.json' | sort)
gate=0
if [ "${#runs[@]}" -eq 0 ]; then
  echo "- **no results-*.json under $in**"
  gate=1
fi
for board in ${EDGECHECK_BOARDS:-}; do
  if ! printf '%s\n' "${runs[@]}" | grep -q "/results-$board.json$"; then
    echo "- **$board: no results** (its job failed before it measured anything)"
    gate=1
  fi
done
for run in "${runs[@]}"; do
  board="$(basename "$run" .json)"
  board="${board#results-}"
  if [ ! -f "$baselines/$board.json" ]; then
    echo "- $board: no baseline yet ($baselines/$board.json)"
  elif "$py" -m edgecheck compare "$baselines/$board.json" "$run" > "$out/compare-$board.txt" 2>&1; then
    echo "- $board: no regression against its baseline"
  else
    echo "- **$board: regression against its baseline** (or a comparison that could not run):"
    echo '```'
    tail -n 40 "$out/compare-$board.txt"
    echo '```'
    gate=1
  fi
done
exit "$gate"
