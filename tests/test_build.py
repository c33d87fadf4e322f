"""The build stage end to end on the smoke grid (a real TensorFlow build in a child process)."""
import json

import numpy as np
import pytest
from support import run_edgecheck

from edgecheck import artifacts as art
from edgecheck.architecture import parse_grid, size_of
from edgecheck.errors import EdgecheckError
from edgecheck.files import sha256_file
from edgecheck.interpreter import make_interpreter, predict
from edgecheck.modelfile import read_model


def test_manifest_records_provenance(smoke_artifacts):
    m = json.loads((smoke_artifacts / "manifest.json").read_text())
    assert m["schema"] == art.MANIFEST_SCHEMA
    assert m["dataset"]["name"] == "collar" and len(m["dataset"]["sha256"]) == 64
    assert m["features"]["spectrogram"]["n_fft"] == 64 and m["features"]["spectrogram"]["sampling_rate"] == 25.0
    for pkg in ("tensorflow-cpu", "keras", "ai-edge-litert", "numpy", "edgecheck"):
        assert pkg in m["versions"], pkg
    assert [e["name"] for e in m["models"]] == [a.name for a in parse_grid("smoke")]
    for e in m["models"]:
        f = smoke_artifacts / e["files"]["tflite"]["path"]
        assert sha256_file(f) == e["files"]["tflite"]["sha256"]


def test_sizes_match_keras_and_tflite(smoke_artifacts):
    a = art.load(smoke_artifacts)
    n_in = a.manifest["features"]["n_features"]
    assert n_in == 3 * 33 * 9
    for model in a.models:
        info = read_model(model.tflite)
        expected = size_of(model.arch, n_in, 4)
        assert info.params == expected.params == model.size["params"]
        assert info.macs == expected.macs and info.weight_bytes == expected.weight_bytes
        assert sum(d.bias_bytes for d in info.dense_layers) == expected.bias_bytes
        assert {d.weight_quantization for d in info.dense_layers} == {"per-tensor"}
        s = info.summary()
        assert s["inputs"][0]["dtype"] == "int8" and s["inputs"][0]["shape"] == [1, n_in]
        assert s["outputs"][0]["dtype"] == "int8"
        assert set(info.operator_counts) == {"FULLY_CONNECTED"}


def test_int8_agrees_with_float(smoke_artifacts):
    a = art.load(smoke_artifacts)
    F, y = a.test_features()
    for model in a.models:
        met = model.metrics
        assert met["int8_float_agreement"] >= 0.95, model.name
        assert met["int8"]["macro_f1"] >= met["float"]["macro_f1"] - 0.01, model.name
        assert 0.6 < met["int8"]["macro_f1"] < 1.0
        # the stored predictions are what this interpreter computes now
        pred = predict(make_interpreter(model.tflite), F[:300]).argmax(axis=1)
        assert np.array_equal(pred, np.load(model.predictions)[:300])


def test_rebuild_reuses_everything(smoke_artifacts):
    before = {p: p.stat().st_mtime_ns for p in smoke_artifacts.rglob("*.tflite")}
    proc = run_edgecheck("build", "--grid", "smoke", "--out", str(smoke_artifacts))
    assert "all 3 models reused" in proc.stderr
    assert "features: reusing" in proc.stderr
    assert {p: p.stat().st_mtime_ns for p in smoke_artifacts.rglob("*.tflite")} == before


def test_a_rebuild_reads_the_named_datasets_record_instead_of_making_it(smoke_artifacts, tmp_path):
    """The build kept the collar dataset's record (its features file and description, named by every input): a
    rebuild takes them from it, the features file's sha256 checked, and writes the same manifest entries as when
    it made the dataset; without the record it makes the dataset again and keeps the record again."""
    import shutil

    copy = shutil.copytree(smoke_artifacts, tmp_path / "copy")
    before = art.load(copy).manifest
    proc = run_edgecheck("build", "--grid", "smoke", "--out", str(copy))
    assert "as recorded in dataset-" in proc.stderr and "all 3 models reused" in proc.stderr
    after = art.load(copy).manifest
    assert after["dataset"] == before["dataset"] and after["features"] == before["features"]
    (record,) = (copy / "store").glob("dataset-*.json")
    record.unlink()
    proc = run_edgecheck("build", "--grid", "smoke", "--out", str(copy))
    assert "as recorded" not in proc.stderr and "features: reusing" in proc.stderr
    again = art.load(copy).manifest
    assert again["dataset"] == before["dataset"] and again["features"] == before["features"] and record.is_file()


def test_changed_file_is_refused(smoke_artifacts, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(smoke_artifacts, copy)
    victim = art.load(copy).models[1].tflite
    victim.write_bytes(victim.read_bytes()[:-1] + b"\0")
    with pytest.raises(EdgecheckError, match=f"{victim}.*does not match its sha256"):
        art.load(copy)
    victim.unlink()
    with pytest.raises(EdgecheckError, match=f"{victim} is listed in the manifest but missing"):
        art.load(copy)
    (copy / "manifest.json").write_text('{"schema": "other/9"}')
    with pytest.raises(EdgecheckError, match="schema is 'other/9'"):
        art.load(copy)
    with pytest.raises(EdgecheckError, match="not found"):
        art.load(tmp_path)


@pytest.mark.integration  # trains a network again (a store file that fails its check: test_changed_file_is_refused)
def test_interrupted_entry_is_rebuilt(smoke_artifacts, tmp_path):
    """A model folder without entry.json (the build died mid-model) is never trusted."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(smoke_artifacts, copy)
    folder = art.load(copy).models[0].tflite.parent
    (folder / "entry.json").unlink()
    proc = run_edgecheck("build", "--grid", "smoke", "--out", str(copy))
    assert "2 of 3 models reused, training 1" in proc.stderr
    # TensorFlow's C++ start-up lines say nothing a user can act on: the build's output leaves them out
    assert "absl::InitializeLog" not in proc.stderr and "oneDNN custom operations" not in proc.stderr
    assert (folder / "entry.json").is_file()
    art.load(copy)


def test_build_bad_input_is_one_clear_line(tmp_path):
    proc = run_edgecheck("build", "--grid", "3y", "--out", str(tmp_path / "x"), check=False)
    assert proc.returncode == 2
    # checked while the command line is parsed, as pytest's --grid (options.OPTIONS), before anything is built
    assert proc.stderr.strip().splitlines()[-1].startswith("edgecheck build: error: argument --grid: grid '3y'")
    assert "Traceback" not in proc.stderr
    proc = run_edgecheck("build", "--grid", "smoke", "--dataset", str(tmp_path / "none.npz"),
                         "--out", str(tmp_path / "x"), check=False)
    assert proc.returncode == 2 and "none.npz not found" in proc.stderr and "Traceback" not in proc.stderr


def test_inspect_prints_json(smoke_artifacts, tmp_path):
    model = art.load(smoke_artifacts).models[0]
    out = json.loads(run_edgecheck("inspect", "--json", str(model.tflite)).stdout)
    assert out["params"] == model.size["params"] and out["dense_weight_quantization"] == "per-tensor"
    assert out["operators"][0] == {"name": "FULLY_CONNECTED", "version": out["operators"][0]["version"]}
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"hello world, not a model")
    proc = run_edgecheck("inspect", str(junk), check=False)
    assert proc.returncode == 2 and "not a TFLite flatbuffer" in proc.stderr


def test_time_left_is_sane_from_the_first_model():
    from edgecheck.build.pipeline import time_left

    assert time_left([], 24) is None
    assert time_left([2.0], 23) == pytest.approx(46.0)  # one done: every model costs what it cost
    assert time_left([6.5, 1.9, 2.6], 21) == pytest.approx(21 * 2.6)  # TensorFlow's start-up does not skew it


def test_a_widened_variant_is_a_real_model_under_the_same_name(smoke_artifacts, tmp_path):
    """``build --widen 10``: the same pipeline trains 1x16, widens its first hidden layer to 18 neurons (+12.5 %
    MACs, the nearest whole neuron to +10 %) with zero-weight neurons and quantizes it, under its own store key,
    named 1x16: more work, and the very predictions of the base model."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(smoke_artifacts, copy)  # the features are reused from its store
    proc = run_edgecheck("build", "--grid", "1x16", "--widen", "10", "--out", str(copy))
    assert "build: --widen 10: first hidden layer 1x16 16->18 (+12.5% MACs)" in proc.stderr
    plain = {m.name: m for m in art.load(smoke_artifacts).models}["1x16"]
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["grid"]["architectures"] == "1x16" and manifest["widen"]["percent"] == 10
    assert manifest["widen"]["models"]["1x16"] == {"first_width": 18, "grid_width": 16, "macs": 16110,
                                                   "grid_macs": 14320, "macs_growth": 0.125}
    (wide,) = art.load(copy).models
    assert wide.name == "1x16" and wide.arch.first_width == 18 and wide.tflite.parent != plain.tflite.parent
    layers = read_model(wide.tflite).dense_layers
    assert [d.out_features for d in layers] == [18, plain.size["layer_sizes"][-1]]
    assert sum(d.macs for d in layers) == wide.size["macs"] == 16110
    for kept in ("int8_predictions.npy", "float_predictions.npy"):  # the same function as the base model
        assert np.array_equal(np.load(wide.tflite.parent / kept), np.load(plain.tflite.parent / kept))
    assert wide.metrics["int8"] == plain.metrics["int8"]
