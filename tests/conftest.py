"""Shared fixtures for the tests: one real build of the smoke grid per session."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
INFERENCE = "benchmarks/test_inference.py"  # the sweep without the claims (the smoke grid cannot show them)


def run_edgecheck(*args: str, cwd: Path | None = None, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``python -m edgecheck ARGS`` in a child process, as a user would."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-m", "edgecheck", *args], cwd=cwd or REPO, capture_output=True,
                          text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"edgecheck {' '.join(args)} exited {proc.returncode}\n{proc.stderr[-4000:]}")
    return proc


def run_pytest(*args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run pytest in a child process (the measuring process a user starts)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd or REPO,
                          capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="session")
def smoke_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke grid built once by the real ``edgecheck build`` command."""
    out = tmp_path_factory.mktemp("artifacts") / "smoke"
    run_edgecheck("build", "--grid", "smoke", "--dataset", "collar", "--out", str(out))
    return out
