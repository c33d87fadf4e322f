"""Device kinds as plugins: the registry, no device name outside its kind, and a third party's kind installed from
its own package and run end to end (measured, reported, compared, no claim role). Also: the twins' constants
given with --twin-constants reach every figure that uses them (the model probe, the battery view)."""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest
from support import FAST, REPO, load

from edgecheck.errors import EdgecheckError
from edgecheck.measure.device import MEASURED, Device, SelectOptions
from edgecheck.measure.devices import BUILTIN, registry, select
from edgecheck.results import Latency

PLUGIN = REPO / "tests" / "kindplugin"


def test_the_builtin_kinds_and_what_they_declare():
    kinds = registry()
    assert list(kinds) == ["cpu", "tpu", "a53", "tpu-sim", "a53-sim"] and len(BUILTIN) == 5
    roles = {n: k.role for n, k in kinds.items()}
    assert roles == {"cpu": None, "tpu": "tpu", "a53": "a53", "tpu-sim": "tpu", "a53-sim": "a53"}
    assert {n: k.twin for n, k in kinds.items() if k.twin} == {"tpu": "tpu-sim", "a53": "a53-sim"}
    assert [n for n, k in kinds.items() if k.simulated] == ["tpu-sim", "a53-sim"]
    # every result says which role its device plays; a kind without one says nothing
    sel = select(["cpu", "tpu-sim"], SelectOptions(cpuinfo_text="model name: x86"))
    assert [d.to_dict().get("role") for d in sel.devices] == [None, "tpu"]


# Where a device kind's name may be written: its own module, the registry, the claims' role table and the
# twins' constants sections (named after the platforms they model).
NAME_HOMES = ("edgecheck/measure/kinds/", "edgecheck/measure/devices.py", "edgecheck/judge/roles.py",
              "edgecheck/twins/sections.py")


def _string_literals(path: Path):
    with open(path, "rb") as f:
        for tok in tokenize.tokenize(f.readline):
            if tok.type == tokenize.STRING:
                try:
                    value = ast.literal_eval(tok.string)
                except (ValueError, SyntaxError):  # f-strings
                    continue
                yield tok.start[0], value


def test_no_device_name_outside_its_kind():
    """Adding a kind touches its own module and one registry line: no other code names a device."""
    names = set(registry())
    found = []
    for path in sorted((REPO / "edgecheck").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith(NAME_HOMES):
            continue
        found += [f"{rel}:{line}: {value!r}" for line, value in _string_literals(path) if value in names]
    assert not found, "device names outside their kinds' modules:\n" + "\n".join(found)


def test_the_scan_finds_a_device_name(tmp_path):
    """The scan above can fail: a module that names a device is found."""
    bad = tmp_path / "bad.py"
    bad.write_text('if device.name == "tpu-sim":\n    pass\n')
    assert list(_string_literals(bad)) == [(1, "tpu-sim")]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """The example kind's package installed by pip (no network: no dependencies, the venv's setuptools) into a
    folder of its own, which the sessions below put on their PYTHONPATH."""
    src = tmp_path_factory.mktemp("kindplugin-src")
    shutil.copytree(PLUGIN, src, dirs_exist_ok=True)
    site = tmp_path_factory.mktemp("kindplugin-site")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(site), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(site.glob("edgecheck_hostcpu2-*.dist-info/entry_points.txt"))
    return site


def _env(site: Path) -> dict:
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _run(site: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, env=_env(site),
                          timeout=timeout)


def test_a_third_party_kind_runs_end_to_end(plugin_site, smoke_artifacts, tmp_path):
    listed = _run(plugin_site, "-m", "edgecheck", "devices")
    assert listed.returncode == 0, listed.stderr
    assert "hostcpu2" in {d["name"] for d in json.loads(listed.stdout)["found"]}
    base, run = tmp_path / "base.json", tmp_path / "run.json"
    first = _run(plugin_site, "-m", "pytest", "-p", "no:cacheprovider", "benchmarks", "--artifacts",
                 str(smoke_artifacts), "--device", "hostcpu2", "--results", str(tmp_path / "first.json"),
                 "--save-baseline", str(base), "--report", str(tmp_path / "first.html"), *FAST)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    data = load(tmp_path / "first.json")
    entries = data["entries"]
    assert len(entries) == 3 and {e["device"]["name"] for e in entries} == {"hostcpu2"}
    for e in entries:  # measured by the worker in fresh processes, with its own threads, and no role
        assert e["kind"] == MEASURED and e["status"] == "ok" and e["device"]["threads"] == 2
        assert "role" not in e["device"] and len(e["latency"]["processes"]) >= 2
    assert "hostcpu2" in (tmp_path / "first.html").read_text()
    # the paper's claims use the platforms' roles: a kind without one is not used as either platform
    for claim in data.get("claims") or []:
        assert "hostcpu2" not in json.dumps(claim.get("evidence") or {}), claim
    second = _run(plugin_site, "-m", "pytest", "-p", "no:cacheprovider", "benchmarks", "--artifacts",
                  str(smoke_artifacts), "--device", "hostcpu2", "--results", str(run), "--baseline", str(base),
                  "--report", "none", *FAST)
    assert second.returncode in (0, 1), second.stdout[-4000:]
    rows = load(run)["comparison"]["rows"]
    latency = [r for r in rows if r["metric"] == "latency"]
    assert len(latency) == 3 and {r["device"] for r in latency} == {"hostcpu2"}
    assert not any(r["verdict"] == "missing" for r in rows)


def test_a_broken_kind_is_named(tmp_path):
    """A plugin whose entry point cannot load is one error naming it, not a traceback deep in a session."""
    site = tmp_path / "site"
    dist = site / "broken_kind-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-kind\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[edgecheck.devices]\nbroken = broken_kind_module:KIND\n")
    proc = _run(site, "-m", "pytest", "-p", "no:cacheprovider", "benchmarks", "--device", "cpu",
                "--results", str(tmp_path / "r.json"), timeout=120)
    assert proc.returncode == 4
    out = proc.stdout + proc.stderr
    assert "device kind broken (broken_kind_module:KIND, entry point edgecheck.devices): cannot load it" in out
    assert not (tmp_path / "r.json").exists()


def _constants_with_idle(tmp_path: Path, idle_w: float) -> Path:
    from edgecheck.twins.model import DEFAULT_CONSTANTS

    data = json.loads(DEFAULT_CONSTANTS.read_text())
    node = data["a53"]["power"]["board_idle_w"]
    node.update(value=idle_w, low=idle_w, high=idle_w)
    tpu_node = data["tpu"]["power"]["board_idle_w"]
    tpu_node.update(value=idle_w, low=idle_w, high=idle_w)
    path = tmp_path / "calibrated.json"
    path.write_text(json.dumps(data))
    return path


def test_the_model_probe_follows_the_sessions_constants(tmp_path):
    """``--energy-probe model`` estimates a measured A53's energy with the session's constants, not the
    packaged ones."""
    from edgecheck.measure.energy import model_energy
    from edgecheck.measure.kinds.a53 import KIND as A53
    from edgecheck.twins.model import load_constants

    calibrated = load_constants(_constants_with_idle(tmp_path, 1.25))
    packaged = load_constants()
    board = Device(A53.name, MEASURED, 1, impl=A53)
    latency = Latency.from_samples([0.002])
    mine, default = model_energy(board, latency, calibrated), model_energy(board, latency, packaged)
    active = packaged.value("a53", "power", "core_active_w")
    assert mine.model_idle_w == 1.25 and mine.total_j == pytest.approx((1.25 + active) * 0.002)
    assert default.model_idle_w == packaged.value("a53", "power", "board_idle_w") != 1.25
    assert calibrated.sha256[:12] in mine.provenance
    # a kind without a power model has nothing to estimate with
    from edgecheck.measure.kinds.cpu import KIND as CPU

    assert model_energy(Device(CPU.name, MEASURED, 1, impl=CPU), latency, calibrated).total_j is None


def test_the_battery_view_follows_twin_constants(smoke_artifacts, tmp_path):
    """The twins' idle power in the battery view is the run's own constants' (--twin-constants), recorded with
    each entry; an older file without it falls back to the packaged table, and says so."""
    from edgecheck.judge.battery import battery_data, idle_power
    from edgecheck.results import Run

    path = _constants_with_idle(tmp_path, 1.25)
    results = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "benchmarks/test_inference.py",
                           "--artifacts", str(smoke_artifacts), "--device", "tpu-sim,a53-sim", "--twin-constants",
                           str(path), "--results", str(results), "--report", "none"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    data = load(results)
    idle = {d["name"]: (d["idle_w"], d["idle_source"]) for d in battery_data(data)["devices"]}
    assert idle == {"tpu-sim": (1.25, "simulated"), "a53-sim": (1.25, "simulated")}
    for e in data["entries"]:  # as a file written before the entries recorded their power model
        e["energy"].pop("model_idle_w")
    old = idle_power(Run.from_json(data))
    assert old["a53-sim"][0] == 3.07 and "packaged constants" in old["a53-sim"][1]


def test_a_kind_that_is_not_one_is_refused():
    from edgecheck.measure.devices import _check_kind

    with pytest.raises(EdgecheckError, match="not a DeviceKind"):
        _check_kind(object(), "entry point x")
