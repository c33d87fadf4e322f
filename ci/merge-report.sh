#!/usr/bin/env bash
# The final job: every board's results merged into one file and one HTML report, the job summary,
# and the gate (ci/gate.sh: every expected board reported, none regressed against its baseline).
# Exit 1 when the gate fails; the merged results and the report are written either way.
#   EDGECHECK_PYTHON  a python with edgecheck[report] installed (default python3)
#   EDGECHECK_BOARDS, EDGECHECK_BASELINES: see ci/gate.sh
set -euo pipefail
in="${1:?usage: merge-report.sh BOARDS_DIR OUT_DIR}"
out="${2:?out dir}"
py="${EDGECHECK_PYTHON:-python3}"
mkdir -p "$out"
summary="$out/summary.md"
gate=0
{
  echo "## edgecheck: every board"
  echo
  bash "$(dirname "$0")/gate.sh" "$in" "$out" || gate=1
} > "$summary"
mapfile -t runs < <(find "$in" -name 'results-*.json' | sort)
if [ "${#runs[@]}" -gt 0 ]; then
  "$py" -m edgecheck merge "${runs[@]}" -o "$out/merged.json"
  "$py" -m edgecheck report "$out/merged.json" -o "$out/report.html" || echo "- the report could not be written" >> "$summary"
fi
cat "$summary"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then cat "$summary" >> "$GITHUB_STEP_SUMMARY"; fi
exit "$gate"
