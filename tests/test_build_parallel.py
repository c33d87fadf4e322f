"""The build on several workers and with a shared cache: the same bytes as a serial build, and a second clone
that reuses the first one's models without TensorFlow (real builds of the smoke grid in child processes)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support import REPO, required, run_edgecheck

from edgecheck import artifacts as art
from edgecheck.architecture import parse_grid
from edgecheck.build.cache import cache_root
from edgecheck.build.pipeline import model_key, time_left
from edgecheck.build.pool import threads_per_worker
from edgecheck.build.train import TrainConfig
from edgecheck.files import sha256_file

# Each of these trains the smoke grid once more (about a minute on 2 busy cores): they run in .ci/run, which
# lists "builds" in $EDGECHECK_REQUIRE, and `make test` (the quick loop) leaves them to it (marked integration).
_builds = pytest.mark.skipif(not required("builds"), reason="trains the smoke grid again: runs in .ci/run "
                                                           "(EDGECHECK_REQUIRE=builds)")


def heavy(test):
    return pytest.mark.integration(_builds(test))


def model_bytes(root: Path) -> dict[str, dict[str, str]]:
    """Each model's files (name -> sha256 of the bytes on disk), by architecture."""
    a = art.load(root)
    out = {}
    for m in a.manifest["models"]:
        out[m["name"]] = {k: sha256_file(root / f["path"]) for k, f in m["files"].items()}
    assert out and all("tflite" in v for v in out.values())
    return out


@heavy
def test_a_pool_of_two_builds_the_bytes_of_a_serial_build(smoke_artifacts, tmp_path):
    """smoke_artifacts is built by two worker processes (each model in whichever is free); here one process
    trains the three models one after the other: the same .tflite and predictions, byte for byte."""
    proc = run_edgecheck("build", "--grid", "smoke", "--out", str(tmp_path / "serial"), "--jobs", "1",
                         "--build-cache", "none")
    assert "training 3" in proc.stderr and "worker processes" not in proc.stderr
    assert model_bytes(tmp_path / "serial") == model_bytes(smoke_artifacts)


@heavy
def test_a_dask_cluster_builds_the_same_bytes(smoke_artifacts, tmp_path):
    """A real Dask LocalCluster on this machine (worker processes, loopback only) as --build-executor."""
    import distributed  # the cluster extra: .ci/run installs it (a missing one fails there, never skips)

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, worker_dashboard_address=None) as cluster:
        address = cluster.scheduler_address.removeprefix("tcp://")
        proc = run_edgecheck("build", "--grid", "smoke", "--out", str(tmp_path / "dask"), "--build-cache", "none",
                             "--build-executor", f"dask://{address}")
    assert f"the Dask cluster at {address} (2 workers, 2 threads)" in proc.stderr
    assert model_bytes(tmp_path / "dask") == model_bytes(smoke_artifacts)


@pytest.mark.integration  # imports Dask in a child and waits out its connection timeout (options: the next test)
def test_an_unreachable_scheduler_is_one_clear_line(tmp_path):
    pytest.importorskip("distributed", reason="the cluster extra: pip install 'edgecheck[cluster]'")
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run_edgecheck("build", "--grid", "1x16,1x32", "--out", str(tmp_path / "x"), "--build-cache", "none",
                         "--build-executor", f"dask://127.0.0.1:{port}", check=False, timeout=180)
    assert proc.returncode != 0
    assert f"--build-executor dask://127.0.0.1:{port}: cannot reach the Dask scheduler" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_build_options_are_usage_errors(tmp_path):
    for args, says in ((["--jobs", "0"], "argument --jobs: must be >= 1"),
                       (["--build-executor", "spark://x:1"], "argument --build-executor: 'spark://x:1': use 'local'"),
                       (["--build-executor", "dask://host"], "argument --build-executor: 'dask://host'")):
        proc = run_edgecheck("build", "--grid", "smoke", "--out", str(tmp_path / "x"), *args, check=False)
        assert proc.returncode == 2 and says in proc.stderr, proc.stderr
        assert not (tmp_path / "x").exists()


def build_without_tensorflow(*args: str, cache: Path) -> subprocess.CompletedProcess:
    """``edgecheck build`` in a process where importing TensorFlow or Keras fails, training here (``--jobs 1``, no
    worker process to import it instead): a build that reuses everything succeeds; one that has to train says
    what it would train, then fails on the import."""
    code = ("import sys; sys.modules['tensorflow'] = sys.modules['keras'] = None; from edgecheck.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-c", code, "build", *args, "--jobs", "1", "--build-cache", str(cache)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)


def test_a_second_clone_reuses_the_shared_cache_without_tensorflow(smoke_artifacts, smoke_cache, tmp_path):
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(smoke_cache, cache)
    clone = tmp_path / "clone" / ".edgecheck" / "artifacts" / "smoke-collar"
    proc = build_without_tensorflow("--grid", "smoke", "--out", str(clone), cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert f"features: reusing {art.load(smoke_artifacts).manifest['features']['path'].split('/')[-1]} from the " \
           f"shared cache {cache}" in proc.stderr
    assert f"all 3 models reused (3 from the shared cache {cache}, sha256 checked)" in proc.stderr
    assert model_bytes(clone) == model_bytes(smoke_artifacts)  # a self-contained copy: the clone's own store
    assert not any(p.is_symlink() for p in clone.rglob("*"))

    # a file changed in the cache is refused, said, and that model alone is rebuilt (which needs TensorFlow)
    victim = next(cache.glob("store/model-*/model.tflite"))
    victim.write_bytes(victim.read_bytes()[:-1] + b"\0")
    proc = build_without_tensorflow("--grid", "smoke", "--out", str(tmp_path / "clone2"), cache=cache)
    assert proc.returncode != 0
    assert "from the shared cache: the shared cache's copy is unusable: model.tflite does not match its sha256" \
           in proc.stderr
    assert "2 of 3 models reused (2 from the shared cache" in proc.stderr and "training 1" in proc.stderr


@pytest.mark.parametrize("change, features_missed", [
    (["--seed", "1"], True),
    (["--n-fft", "32"], True),  # the spectrogram config
    (["--epochs", "11"], False),  # the training budget
])
def test_a_changed_input_misses_the_cache(smoke_cache, tmp_path, change, features_missed):
    import shutil

    cache = shutil.copytree(smoke_cache, tmp_path / "cache")  # a miss fills the cache with the new features
    proc = build_without_tensorflow("--grid", "smoke", "--out", str(tmp_path / "o"), *change, cache=cache)
    assert proc.returncode != 0  # it has to train, and TensorFlow is not there
    assert ("from the shared cache" in proc.stderr.split("build:")[0]) is not features_missed
    assert "0 of 3 models reused, training 3" in proc.stderr


def test_a_changed_grid_or_dataset_misses_what_changed(smoke_cache, tmp_path):
    proc = build_without_tensorflow("--grid", "1x16,1x128", "--out", str(tmp_path / "g"), cache=smoke_cache)
    assert "1 of 2 models reused (1 from the shared cache" in proc.stderr and "training 1" in proc.stderr
    # the same windows with one value changed: other dataset bytes, another features file and other models
    from edgecheck.build.data import load_dataset

    ds = load_dataset("collar")
    X = ds.X.copy()
    data = tmp_path / "data.npz"
    np.savez(data, X=X, y=ds.y, sampling_rate=ds.sampling_rate)
    first = build_without_tensorflow("--grid", "1x16", "--dataset", str(data), "--out", str(tmp_path / "d1"),
                                     cache=tmp_path / "c")
    X[0, 0, 0] += 1.0
    np.savez(data, X=X, y=ds.y, sampling_rate=ds.sampling_rate)
    second = build_without_tensorflow("--grid", "1x16", "--dataset", str(data), "--out", str(tmp_path / "d2"),
                                      cache=tmp_path / "c")
    assert len(list((tmp_path / "c" / "store").glob("features-*.npz"))) == 2, (first.stderr[-2000:],
                                                                               second.stderr[-2000:])
    assert "features: reusing" not in second.stderr and "0 of 1 models reused, training 1" in second.stderr


def test_versions_are_in_the_model_key():
    arch = parse_grid("1x16")[0]
    versions = {"tensorflow-cpu": "2.21.0", "keras": "3.15.1", "ai-edge-litert": "2.3.0", "numpy": "2.4.6"}
    key = model_key("f" * 16, arch, TrainConfig(), versions)
    assert key == model_key("f" * 16, arch, TrainConfig(), {**versions, "pyts": "0.14"})  # no part of a model
    for pkg in ("tensorflow-cpu", "keras", "ai-edge-litert"):
        assert key != model_key("f" * 16, arch, TrainConfig(), {**versions, pkg: "9.9"}), pkg
    assert key != model_key("e" * 16, arch, TrainConfig(), versions)  # the features (data, spectrogram, numpy)
    assert key != model_key("f" * 16, arch, TrainConfig(seed=1), versions)


def test_where_the_cache_is():
    assert cache_root(None, {"HOME": "/home/u"}) == Path("/home/u/.cache/edgecheck")
    assert cache_root(None, {"HOME": "/home/u", "XDG_CACHE_HOME": "/c"}) == Path("/c/edgecheck")
    assert cache_root(None, {"XDG_CACHE_HOME": "/c", "EDGECHECK_CACHE": "/e"}) == Path("/e")
    assert cache_root("/o", {"EDGECHECK_CACHE": "/e"}) == Path("/o")
    assert cache_root(None, {"EDGECHECK_CACHE": "none"}) is None and cache_root("none", {}) is None


def test_threads_and_time_left_across_the_pool():
    assert threads_per_worker(1, 2) == 2 and threads_per_worker(2, 2) == 1 and threads_per_worker(3, 2) == 1
    assert threads_per_worker(2, 8) == 4
    assert time_left([4.0, 6.0], 10, workers=2) == pytest.approx(5 * 5.0)
    assert time_left([4.0], 3, workers=2) == pytest.approx(2 * 4.0)  # two rounds of the pool for three models
