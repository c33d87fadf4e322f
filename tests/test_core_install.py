"""The package installed from a wheel, not editable: the core a board gets, and the CLI from outside the checkout.

The core install (no TensorFlow, librosa, matplotlib or scikit-learn) measures prebuilt artifacts. With the
report extra, every command that reads results works from any folder: everything it reads ships in the wheel.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest
from support import REPO, load

from edgecheck import artifacts as art

# builds a wheel and installs it into two fresh virtual environments: run by .ci/run, left out of `make test`
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    # a copy of the checkout: setuptools writes build/ and *.egg-info next to the sources it builds
    src = tmp_path_factory.mktemp("src") / "edgecheck"
    anywhere = shutil.ignore_patterns(".git", ".venv", ".edgecheck", "*.egg-info", "__pycache__", ".hypothesis")

    def ignore(folder, names):  # setuptools' own build/ and dist/ at the top, never edgecheck/build/
        top = {"build", "dist"} & set(names) if os.path.samefile(folder, REPO) else set()
        return set(anywhere(folder, names)) | top

    shutil.copytree(REPO, src, ignore=ignore)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(src), "-w", str(out)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.skip(f"cannot build a wheel here (no network for the build backend?): {proc.stderr.strip()[-300:]}")
    (whl,) = out.glob("edgecheck-*.whl")
    return whl


def _venv(tmp_path_factory, requirement: str):
    venv = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # --no-compile: byte-compiling scipy and scikit-learn would take two thirds of the install's time
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-compile", "--disable-pip-version-check",
                          "-c", str(REPO / "ci" / "constraints.txt"), requirement],
                         capture_output=True, text=True, timeout=900)
    if pip.returncode != 0:
        pytest.skip(f"cannot install {requirement} here: {pip.stderr.strip()[-300:]}")
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory, wheel):
    return _venv(tmp_path_factory, str(wheel))


@pytest.fixture(scope="module")
def report_venv(tmp_path_factory, wheel):
    return _venv(tmp_path_factory, f"{wheel}[report]")


def test_core_install_is_small(core_venv):
    listed = subprocess.run([str(core_venv), "-m", "pip", "list", "--format=freeze"], capture_output=True,
                            text=True).stdout.lower()
    for heavy in ("tensorflow", "keras", "librosa", "matplotlib", "scikit-learn", "labgrid", "grpcio"):
        assert f"\n{heavy}==" not in "\n" + listed, heavy
    where = subprocess.run([str(core_venv), "-c", "import edgecheck; print(edgecheck.__file__)"],
                           capture_output=True, text=True, cwd="/").stdout
    assert "site-packages" in where and str(REPO) not in where  # the wheel, not the checkout


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
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "pip install 'edgecheck[build]'" in proc.stderr and "Traceback" not in proc.stderr


def test_calibrate_measures_from_outside_the_checkout(core_venv, smoke_artifacts, tmp_path):
    """calibrate --device cpu measures prebuilt artifacts itself (no benchmarks/ folder needed); the smoke
    grid is too small to fit the form, which it says in one line."""
    proc = subprocess.run([str(core_venv), "-m", "edgecheck", "calibrate", "--device", "cpu", "--artifacts",
                           str(smoke_artifacts)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "calibrate: measuring 3 models on cpu" in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode == 2 and "need >= 5 models of at most" in proc.stderr
    assert "Traceback" not in proc.stderr


def _edgecheck(venv, *args, cwd):
    return subprocess.run([str(venv), "-m", "edgecheck", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_every_reading_command_works_from_outside_the_checkout(report_venv, smoke_artifacts, tmp_path):
    """claims, recommend, report and parse-compiler-log read only what ships in the wheel."""
    model = art.load(smoke_artifacts).models[0].tflite
    log = tmp_path / "model_edgetpu.log"
    shutil.copy(REPO / "fixtures" / "compiler_logs" / "v16_single_mapped.log", log)
    parsed = _edgecheck(report_venv, "parse-compiler-log", str(log), cwd=tmp_path)
    assert parsed.returncode == 0 and json.loads(parsed.stdout)["compiler_version"].startswith("16.")
    rec = _edgecheck(report_venv, "recommend", str(model), "--json", cwd=tmp_path)
    assert rec.returncode == 0 and json.loads(rec.stdout)["source"].startswith("simulated by the twins")
    twins = REPO / "fixtures" / "baselines" / "twins-default-collar.json"
    run = tmp_path / "run.json"
    shutil.copy(twins, run)
    claims = _edgecheck(report_venv, "claims", str(run), cwd=tmp_path)
    assert claims.returncode in (0, 1) and "C6  inconclusive" in claims.stdout, claims.stderr[-2000:]
    assert (tmp_path / "run.claims.md").is_file()
    report = _edgecheck(report_venv, "report", str(run), "-o", str(tmp_path / "report.html"), cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "<h2>Claims</h2>" in (tmp_path / "report.html").read_text()
