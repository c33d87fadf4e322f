"""The core install a board gets (no TensorFlow, librosa, matplotlib or scikit-learn) measures prebuilt artifacts."""
import os
import subprocess
import sys

import pytest

from support import REPO, load


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory):
    venv = tmp_path_factory.mktemp("core") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-c", str(REPO / "ci" / "constraints.txt"),
                          "-e", str(REPO)], capture_output=True, text=True, timeout=900)
    if pip.returncode != 0:
        pytest.skip(f"cannot install the core package here: {pip.stderr.strip()[-300:]}")
    return venv / "bin" / "python"


def test_core_install_is_small(core_venv):
    listed = subprocess.run([str(core_venv), "-m", "pip", "list", "--format=freeze"], capture_output=True,
                            text=True).stdout.lower()
    for heavy in ("tensorflow", "keras", "librosa", "matplotlib", "scikit-learn"):
        assert f"\n{heavy}==" not in "\n" + listed, heavy


def test_core_install_measures_prebuilt_artifacts(core_venv, smoke_artifacts, tmp_path):
    results = tmp_path / "r.json"
    proc = subprocess.run([str(core_venv), "-m", "pytest", "-p", "no:cacheprovider", "benchmarks",
                           "--artifacts", str(smoke_artifacts), "--device", "cpu,tpu-sim,a53-sim",
                           "--results", str(results), "--rounds", "3", "-rs"],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": ""})
    out = proc.stdout
    assert "no HTML report: figures need matplotlib" in out, out[-3000:]
    assert all(f"C{i}  " in out for i in range(1, 7))  # every claim evaluated or skipped with its reason
    data = load(results)
    assert data["measuring_process"]["tensorflow_imported"] is False
    assert {e["device"]["name"] for e in data["entries"]} == {"cpu", "tpu-sim", "a53-sim"}
    # the smoke grid's three tiny models cannot show C1 and C5: those fail; nothing errors
    assert " error" not in out.splitlines()[-1]


def test_build_without_the_build_extra_says_what_to_install(core_venv, tmp_path):
    proc = subprocess.run([str(core_venv), "-m", "edgecheck", "build", "--grid", "smoke", "--out", str(tmp_path / "a")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "pip install 'edgecheck[build]'" in proc.stderr and "Traceback" not in proc.stderr
