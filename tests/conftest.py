"""Shared fixtures for the tests: one real build of the smoke grid per session (helpers: support.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from support import run_edgecheck


@pytest.fixture(scope="session")
def smoke_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke grid built once by the real ``edgecheck build`` command."""
    out = tmp_path_factory.mktemp("artifacts") / "smoke"
    run_edgecheck("build", "--grid", "smoke", "--dataset", "collar", "--out", str(out))
    return out
