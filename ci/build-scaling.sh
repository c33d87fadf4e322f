#!/usr/bin/env bash
# Build time against grid size: 24, 48 and 96 networks, each built from nothing (no shared cache, a fresh
# --out), with --jobs N (default 2). Prints one line per grid: networks, wall seconds, seconds per network.
# Usage: ci/build-scaling.sh [JOBS] [PYTHON]   (run it on a quiet machine: the lead's acceptance figures)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-2}
py=${2:-.venv/bin/python}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# 24 = the default grid (1-4 layers x 6 widths); 48 and 96: the same depths, 12 and 24 widths over the same range
declare -A grids=(
  [24]="default"
  [48]="layers=1-4;widths=32,48,64,96,128,192,256,384,512,768,1024,2048"
  [96]="layers=1-4;widths=32,40,48,56,64,80,96,112,128,160,192,224,256,320,384,448,512,640,768,896,1024,1280,1536,2048"
)
printf '%-9s %-8s %-12s %s\n' networks jobs wall_s s_per_network
for n in 24 48 96; do
  t0=$(date +%s.%N)
  TF_CPP_MIN_LOG_LEVEL=3 "$py" -m edgecheck build --grid "${grids[$n]}" --out "$out/$n" --jobs "$jobs" \
    --build-cache none >"$out/$n.log" 2>&1 || { tail -5 "$out/$n.log"; exit 1; }
  t1=$(date +%s.%N)
  awk -v n="$n" -v j="$jobs" -v a="$t0" -v b="$t1" 'BEGIN { printf "%-9s %-8s %-12.1f %.2f\n", n, j, b - a, (b - a) / n }'
done
