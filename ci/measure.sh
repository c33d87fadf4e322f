#!/usr/bin/env bash
# A board job: run the suite on a board's devices against the board's committed baseline, and
# write what the workflow uploads into OUT:
#   results-BOARD.json, benchmark-BOARD.json, report-BOARD.html, summary-BOARD.md
# It installs nothing: the job has installed the core first (pip install . ; on a labgrid lab host
# pip install '.[farm]'). Never make setup or make bench here: that is the build stack.
#   EDGECHECK_PYTHON        a python with edgecheck installed (default python3)
#   EDGECHECK_DEVICES       devices, space-separated (default "tpu a53"; a farm: "tpu@labgrid:dev-a a53@labgrid:dev-a")
#   EDGECHECK_ENERGY_PROBE  default none; hwmon:ina260 reads the board's own sensor
#   EDGECHECK_PYTEST_ARGS   more pytest arguments (e.g. --lg-wait 7200)
# A local dry run on the twins:  EDGECHECK_DEVICES="tpu-sim a53-sim" ci/measure.sh ARTIFACTS dry-run out
set -euo pipefail
artifacts="${1:?usage: measure.sh ARTIFACTS_DIR BOARD OUT_DIR}"
board="${2:?board label}"
out="${3:-out}"
here="$(cd "$(dirname "$0")/.." && pwd)"
artifacts="$(cd "$artifacts" && pwd)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
py="${EDGECHECK_PYTHON:-python3}"
case "$py" in /*) ;; */*) py="$(pwd)/$py" ;; esac
if ! (cd / && "$py" -c "import edgecheck.plugin") 2>/dev/null; then  # installed, not just this checkout
  echo "measure.sh: $py has no edgecheck: install the core first (python3 -m pip install .), never make setup on a board" >&2
  exit 2
fi
cd "$here"
args=()
for d in ${EDGECHECK_DEVICES:-tpu a53}; do args+=(--device "$d"); done
args+=(--energy-probe "${EDGECHECK_ENERGY_PROBE:-none}")
# shellcheck disable=SC2206 # EDGECHECK_PYTEST_ARGS is a list of extra pytest words
args+=(${EDGECHECK_PYTEST_ARGS:-})
baseline="fixtures/baselines/${board}.json"
if [ -f "$baseline" ]; then
  args+=(--baseline "$baseline")
else
  echo "no baseline for board '$board' yet ($baseline): this run can become it (see ci/README.md)"
fi
status=0
"$py" -m pytest benchmarks --artifacts "$artifacts" "${args[@]}" \
  --results "$out/results-$board.json" --benchmark-json="$out/benchmark-$board.json" \
  --report "$out/report-$board.html" || status=$?
summary="$out/summary-$board.md"
{
  echo "## edgecheck on $board"
  echo
  "$py" -m edgecheck claims "$out/results-$board.json" -o "$out/claims-$board" >/dev/null || true
  cat "$out/claims-$board.claims.md" 2>/dev/null || echo "(no results: see the job's log)"
  if [ -f "$baseline" ]; then
    echo
    echo "### Against $baseline"
    echo '```'
    "$py" -m edgecheck compare "$baseline" "$out/results-$board.json" || true
    echo '```'
  fi
} > "$summary"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then cat "$summary" >> "$GITHUB_STEP_SUMMARY"; fi
exit "$status"
