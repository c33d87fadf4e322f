"""Every bad input gets a clear error, and no fault loses or corrupts data: one test per case of issue 16.

The faults run for real: two writers of one results file, a crash between entries, a full tmpfs, a power
sensor that reads NaN, a meter log with NaN in it, a store file changed on disk, an ssh server that accepts
the connection and never speaks, a worker that never answers. docs/reliability.md lists the promises these
tests keep.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support import INFERENCE, REPO, assert_one_line_error, entry, run, run_main, run_pytest, snapshot

from edgecheck import artifacts as art
from edgecheck.errors import EdgecheckError
from edgecheck.results import RESULTS_SCHEMA, Entry, ResultsFile, load, save

FAST = ("--processes", "2", "--rounds", "3", "--round-time", "0.001")
CONV = REPO / "fixtures" / "models" / "conv_small.tflite"


def _entry(name: str, energy: float = 1e-4) -> Entry:
    return Entry.from_json(entry(name, 100, 90, "tpu-sim", "simulated", 1e-5, energy=energy))


HEADER = {"run": {"grid": "smoke", "dataset": "collar"}, "artifacts": {"grid": {"architectures": "1x16"},
                                                                       "dataset": {"name": "collar", "sha256": "d1"}}}


# ------------------------------------------------------------------------------------------ data lost or corrupted


_WRITER = """
import sys, time
sys.path.insert(0, {tests!r})
from support import entry
from edgecheck.results import Entry, ResultsFile
header = {header!r}
rf = ResultsFile.start({path!r}, header)
print("started", flush=True)
for i in range(4):
    rf.add(Entry.from_json(entry(f"m{{i}}", 100, 90, "tpu-sim", "simulated", 1e-5)))
    time.sleep(0.2)
if {crash!r}:
    import os
    os._exit(3)  # a crash between entries: no compaction, the lock and the journal are left behind
rf.compact()
rf.close()
"""


def _writer(path: Path, crash: bool) -> subprocess.Popen:
    code = _WRITER.format(tests=str(REPO / "tests"), header=HEADER, path=str(path), crash=crash)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "started"
    return proc


def test_two_writers_of_one_results_file_lose_no_entries(tmp_path):
    """A second run on the same --results while the first is writing is refused; the first keeps every entry."""
    path = tmp_path / "r.json"
    first = _writer(path, crash=False)
    with pytest.raises(EdgecheckError, match=r"is being written by another edgecheck run \(pid \d+"):
        ResultsFile.start(path, HEADER)
    assert first.wait(timeout=30) == 0
    assert sorted(e.model.name for e in load(path).entries) == ["m0", "m1", "m2", "m3"]
    assert not list(tmp_path.glob("r.json.*"))  # no journal, no lock left


def test_a_crash_keeps_every_journalled_entry(tmp_path):
    """A run killed between entries leaves its journal; --resume recovers every entry and takes over the lock of
    the dead process."""
    path = tmp_path / "r.json"
    assert _writer(path, crash=True).wait(timeout=30) == 3
    assert (tmp_path / "r.json.journal").exists() and (tmp_path / "r.json.lock").exists()
    with (tmp_path / "r.json.journal").open("a") as f:
        f.write('{"entry": {"model": {"name": "cut off mid-wri')  # the last line of a crash, cut off
    rf = ResultsFile.start(path, HEADER, resume=True)
    assert sorted(e.model.name for e in rf.entries) == ["m0", "m1", "m2", "m3"]
    rf.close()
    assert sorted(e.model.name for e in load(path).entries) == ["m0", "m1", "m2", "m3"]


def test_results_are_strict_json(tmp_path):
    """NaN is never written as a bare token: the entry is refused and the file keeps what it had."""
    path = tmp_path / "r.json"
    rf = ResultsFile.start(path, HEADER)
    rf.add(_entry("good"))
    with pytest.raises(EdgecheckError, match=r"^energy\.total_j: must be a finite number, got nan"):
        rf.add(_entry("bad", energy=float("nan")))  # refused where the record is made, before it is kept
    rf.compact()
    rf.close()
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    run_ = load(path)
    bad = _entry("x", energy=1e-3)
    bad.energy.__dict__["total_j"] = float("inf")  # set past the record's check: save() still refuses it
    with pytest.raises(EdgecheckError, match="not written.*a number out of range"):
        save(run_.__class__(run_.header, [bad]), tmp_path / "s.json")
    assert not (tmp_path / "s.json").exists()
    from edgecheck.files import strict_json

    with pytest.raises(EdgecheckError, match="refusing to write a non-finite number as JSON"):
        strict_json({"energy": float("nan")})


def test_resume_refuses_entries_of_another_sweep(tmp_path):
    """--resume of a file written by another grid or dataset is refused: foreign entries are never mixed in."""
    path = tmp_path / "r.json"
    rf = ResultsFile.start(path, HEADER)
    rf.add(_entry("1x16"))
    rf.compact()
    rf.close()
    other = {**HEADER, "artifacts": {**HEADER["artifacts"], "dataset": {"name": "mine", "sha256": "d2"}}}
    with pytest.raises(EdgecheckError, match=r"--resume: .*holds another sweep \(dataset: 'd1' there, 'd2' now"):
        ResultsFile.start(path, other, resume=True)
    assert [e.model.name for e in load(path).entries] == ["1x16"]
    assert not (tmp_path / "r.json.lock").exists()


def _copy(smoke_artifacts: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(smoke_artifacts, copy)
    return copy


def test_an_altered_features_file_in_the_store_is_rebuilt(smoke_artifacts, tmp_path):
    """A valid features .npz whose labels were shifted is not reused (its sha256 differs from the one recorded
    when it was written): the build computes it again, and the manifest gets the true file's hash."""
    copy = _copy(smoke_artifacts, tmp_path)
    features = next((copy / "store").glob("features-*.npz"))
    with np.load(features) as z:
        arrays = {k: z[k] for k in z.files}
    true_y = arrays["y_test"].copy()
    arrays["y_test"] = np.roll(arrays["y_test"], 1)
    np.savez(features, **arrays)
    proc = subprocess.run([sys.executable, "-m", "edgecheck", "build", "--grid", "smoke", "--out", str(copy)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "features: not reusing" in proc.stderr and "does not match" in proc.stderr
    assert "all 3 models reused" in proc.stderr  # the models were made from the true features
    with np.load(features) as z:
        assert np.array_equal(z["y_test"], true_y)
    a = art.load(copy)  # every hash in the new manifest matches its file
    assert np.array_equal(a.test_set.labels, true_y)


def test_a_flipped_store_file_is_never_reused(smoke_artifacts, tmp_path):
    """Bytes flipped on disk: a features file or any file of a model folder (not only its .tflite)."""
    from edgecheck.build.pipeline import _stale_features, _stale_files

    copy = _copy(smoke_artifacts, tmp_path)
    features = next((copy / "store").glob("features-*.npz"))
    assert _stale_features(features) is None
    data = bytearray(features.read_bytes())
    data[len(data) // 2] ^= 0xFF
    features.write_bytes(bytes(data))
    assert "does not match" in _stale_features(features)
    folder = art.load(smoke_artifacts).models[0].tflite.parent
    entry_json = json.loads((folder / "entry.json").read_text())
    assert _stale_files(folder, entry_json) is None
    preds = copy / folder.relative_to(smoke_artifacts) / "int8_predictions.npy"
    preds.write_bytes(preds.read_bytes()[:-1] + b"\x01")
    assert "int8_predictions.npy does not match its sha256" in _stale_files(preds.parent, entry_json)
    bad = {**entry_json, "files": {**entry_json["files"], "tflite": {"path": "../elsewhere.tflite", "sha256": "x"}}}
    assert "outside its folder" in _stale_files(folder, bad)


def _mounted_tmpfs(where: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    where.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True).returncode == 0


def test_a_full_disk_keeps_the_results_valid_and_ends_with_a_summary(smoke_artifacts, tmp_path):
    """Results on a real tmpfs that fills up mid-run: the entries written before are kept, the session ends with
    its summary and a one-line reason (no traceback), and --resume finishes the run once there is space."""
    disk = tmp_path / "disk"
    if not _mounted_tmpfs(disk, "256k"):  # room for the whole run's file, its journal and a rewrite, once freed
        pytest.skip("cannot mount a tmpfs here (needs root and mount): the full-disk case runs where it can")
    try:
        filler = disk / "filler"
        results = disk / "r.json"
        with open(filler, "wb") as f:  # leave about 12 KiB: the header and a few entries fit, the rest do not
            f.write(b"\0" * (256 - 12) * 1024)
        args = (INFERENCE, "--artifacts", str(smoke_artifacts), "--device", "tpu-sim", "--device", "a53-sim",
                "--results", str(results), "--report", "none")
        proc = run_pytest(*args)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 1, out[-3000:]
        assert "Traceback" not in out and "INTERNALERROR" not in out, out[-3000:]
        assert "No space left on device" in out and "edgecheck results" in out
        assert "continue with --resume" in out
        journal = disk / "r.json.journal"
        kept = [json.loads(line) for line in journal.read_text().splitlines() if line.endswith("}")]
        saved = [x["entry"]["model"]["name"] for x in kept if "entry" in x]
        assert 0 < len(saved) < 6
        filler.unlink()
        proc = run_pytest(*args, "--resume")
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        assert len(load(results).entries) == 6
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


# ------------------------------------------------------------------------------------------------ silently wrong


def _set(path: Path, text: str) -> None:
    """A sysfs attribute changes all at once (never read half-written): write beside it, then rename."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    os.replace(tmp, path)


def _fake_hwmon(root: Path, power_uw: str) -> Path:
    d = root / "hwmon0"
    d.mkdir(parents=True)
    for f, v in {"name": "ina260", "update_interval": "2", "power1_input": power_uw}.items():
        (d / f).write_text(f"{v}\n")
    return d


def test_a_sensor_that_reads_nan_or_negative_fails_that_model(smoke_artifacts, tmp_path):
    """A power sensor gone wrong: the model's entry fails with the reading named, never energy NaN or < 0 'ok'."""
    from edgecheck.measure.probes import HwmonProbe

    sensor = _fake_hwmon(tmp_path / "hw", "2500000")
    probe = HwmonProbe.open(str(sensor))
    probe.start()
    _set(sensor / "power1_input", "nan\n")  # the sensor goes NaN mid-window
    time.sleep(0.05)
    with pytest.raises(EdgecheckError, match=r"energy window failed: .*hwmon0/power1_input: expected a finite number, "
                                             r"found 'nan'"):
        probe.stop()
    _set(sensor / "power1_input", "-1800000\n")  # a negative reading from the start of a run
    results = tmp_path / "r.json"
    proc = run_pytest(INFERENCE, "--artifacts", str(smoke_artifacts), "--device", "cpu", "-k", "1x16",
                      "--results", str(results), "--energy-probe", f"hwmon:{sensor}", "--energy-window", "0.05",
                      "--energy-windows", "2", "--idle-seconds", "0.05", "--report", "none", *FAST)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "the sensor returned -1.8, not a finite non-negative reading" in out, out[-3000:]
    assert "Traceback" not in out
    (e,) = load(results).entries
    assert e.status == "failed" and "the sensor returned -1.8" in e.error and e.energy is None


def test_trace_errors_are_said_and_fail_that_models_energy(smoke_artifacts, tmp_path):
    """A meter's log with NaN in it: said on the terminal, the model's energy fails (the run exits 1), and its
    windows stay pending so a corrected log can still fill them."""
    trace = tmp_path / "meter.csv"
    trace.write_text("timestamp,watts\n" + "".join(f"{t},{'nan' if t == 5 else 2.0}\n" for t in range(10)))
    results = tmp_path / "r.json"
    proc = run_pytest(INFERENCE, "--artifacts", str(smoke_artifacts), "--device", "cpu", "-k", "1x16",
                      "--results", str(results), "--energy-probe", f"trace:{trace}", "--energy-window", "0.05",
                      "--energy-windows", "2", "--idle-seconds", "0.05", "--report", "none", *FAST)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert f"energy failed for 1 of 1 entries: trace {trace}: row 7: power is nan" in out
    assert "edgecheck energy-from-trace" in out and "Traceback" not in out
    (e,) = load(results).entries
    assert e.energy.pending and e.energy.total_j is None and "power is nan" in e.energy.error
    trace.write_text("when,volts\n1,2\n")  # wrong columns: one line, exit 2, nothing written
    before = snapshot(tmp_path)
    assert_one_line_error(*run_main("energy-from-trace", results, trace)[::2], contains="no timestamp column")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("arrays, message", [
    (dict(X=np.zeros((4, 1, 8)) + 1j, y=np.arange(4) % 2, sampling_rate=10.0), "X is complex"),
    (dict(X=np.zeros((4, 2, 8)), y=np.arange(4) % 2, sampling_rate=10.0, channel_names=np.array(["a", "b", "c"])),
     "3 channel names for 2 channels"),
    (dict(X=np.zeros((4, 1, 8)), y=np.array([0.0, 1.0, np.nan, 1.0]), sampling_rate=10.0),
     "1 label(s) are NaN or infinite (first at window 2)"),
    (dict(X=np.zeros(8), y=np.arange(8) % 2, sampling_rate=10.0), "X must have shape [windows, channels, samples]"),
    (dict(X=np.zeros((4, 1, 8)), y=np.zeros((4, 2)), sampling_rate=10.0), "y must hold one label per window"),
    (dict(X=np.zeros((4, 1, 8)), y=np.arange(4) % 2, sampling_rate=np.array([10.0, 20.0])),
     "sampling_rate must be one real number"),
])
def test_bad_datasets_are_refused(tmp_path, arrays, message):
    from edgecheck.build.data import load_dataset

    p = tmp_path / "d.npz"
    np.savez(p, **arrays)
    with pytest.raises(EdgecheckError, match=f"{p}: .*" + message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        load_dataset(str(p))


@pytest.mark.parametrize("content, message", [
    (b"", "cannot read as .npz (the file is empty)"),
    (b"PK\x03\x04 not really a zip", "cannot read as .npz"),
])
def test_empty_or_broken_npz_is_one_line(tmp_path, content, message):
    from edgecheck.build.data import load_dataset

    p = tmp_path / "d.npz"
    p.write_bytes(content)
    with pytest.raises(EdgecheckError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_dataset(str(p))


def _csv(rows: list[tuple]) -> str:
    return "window,label,time,ax\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)


@pytest.mark.parametrize("text, message", [
    # window b sampled at 10 Hz, window a at 20 Hz
    (_csv([("a", "x", i / 20, 1) for i in range(8)] + [("b", "y", i / 10, 1) for i in range(8)]
          + [("c", "y", i / 20, 1) for i in range(8)]),
     "windows are sampled at different rates: window 'b' at 10 Hz, most at 20 Hz"),
    ("window,label,time,ax\na,x,0,1\na,x,0.1\nb,y,0,1\nb,y,0.1,2\n", "line 3 has 3 fields, the header 4"),
    ("window,label,time,ax\na,x,0,1,9\na,x,0.1,1\n", "line 2 has 5 fields, the header 4"),
    (_csv([("a", "", i / 20, 1) for i in range(4)] + [("b", "y", i / 20, 1) for i in range(4)]),
     "1 label(s) are empty"),
])
def test_bad_csv_datasets_are_refused(tmp_path, text, message):
    from edgecheck.build.data import load_dataset

    p = tmp_path / "d.csv"
    p.write_text(text)
    with pytest.raises(EdgecheckError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_dataset(str(p))


def test_inspect_counts_every_operators_weights():
    """A convolutional model (TensorFlow's own int8 conversion, fixtures/models/make_conv.py): the convolution's
    40 weights and biases are counted beside the dense layer's 435, and it is said not to be feed-forward."""
    code, out, err = run_main("inspect", "--json", CONV)
    assert code == 0, err
    s = json.loads(out)
    assert s["params"] == 40 + 435 and s["macs"] == 6 * 6 * 4 * 9 + 144 * 3 and s["feed_forward"] is False
    assert [w["operator"] for w in s["weighted_operators"]] == ["CONV_2D", "FULLY_CONNECTED"]
    model = art.user_model(CONV)
    assert model.size["params"] == 475 and model.size["weighted_operators"] == ["CONV_2D", "FULLY_CONNECTED"]
    from edgecheck.twins.model import workload

    with pytest.raises(EdgecheckError, match="the twins cost feed-forward models only"):
        workload(CONV)


def test_a_negative_operation_count_in_a_compiler_log_is_refused(tmp_path):
    """A real compiler log (3 operations on the Edge TPU, 2 on the CPU) with its CPU count made -2, or made too
    large for the total: refused, not parsed into figures."""
    log = (REPO / "fixtures" / "compiler_logs" / "v16_partial_mapping.log").read_text()
    line = "Number of operations that will run on CPU: 2"
    assert line in log
    bad = tmp_path / "bad.log"
    bad.write_text(log.replace(line, line.replace("2", "-2")))
    assert_one_line_error(*run_main("parse-compiler-log", bad)[::2],
                          contains="cannot read 'Number of operations that will run on CPU' value '-2'")
    bad.write_text(log.replace(line, line.replace("2", "9")))
    assert_one_line_error(*run_main("parse-compiler-log", bad)[::2],
                          contains="3 operations on the Edge TPU and 9 on the CPU exceed the 5 in total")


@pytest.mark.parametrize("argv, message", [
    (("chart", "RUN", "--budget-ms", "0"), "argument --budget-ms: must be > 0, got 0"),
    (("chart", "RUN", "--budget-ms", "-1"), "argument --budget-ms: must be > 0, got -1"),
    (("chart", "RUN", "--budget-ms", "nan"), "argument --budget-ms: expected a finite number, got 'nan'"),
    (("report", "RUN", "--rate", "-5"), "argument --rate: must be > 0, got -5"),
    (("report", "RUN", "--rate", "nan"), "argument --rate: expected a finite number, got 'nan'"),
    (("report", "RUN", "--budget-ms", "inf"), "argument --budget-ms: expected a finite number, got 'inf'"),
    (("energy-from-trace", "RUN", "T", "--offset", "nan"), "argument --offset: expected a finite number"),
    (("build", "--out", "X", "--epochs", "0"), "argument --epochs: must be >= 1, got 0"),
])
def test_bad_numbers_are_refused_as_options_are_parsed(tmp_path, argv, message):
    p = tmp_path / "run.json"
    p.write_text(json.dumps(run([entry("1x32", 100, 90, "tpu-sim", "simulated", 1e-5, energy=1e-4)])))
    argv = [str(p) if a == "RUN" else a for a in argv]
    before = snapshot(tmp_path)
    assert_one_line_error(*run_main(*argv)[::2], contains=message)
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------------------------------------ raw tracebacks


def test_non_utf8_results_baseline_and_trace_are_one_line(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(run([entry("1x32", 100, 90, "tpu-sim", "simulated", 1e-5, energy=1e-4)])))
    latin = tmp_path / "latin1.json"
    latin.write_bytes(good.read_bytes().replace(b'"1x32"', b'"1x32\xe9"'))
    trace = tmp_path / "t.csv"
    trace.write_bytes(b"timestamp,watts\n1,2\xff\n")
    before = snapshot(tmp_path)
    assert_one_line_error(*run_main("compare", latin, good)[::2], contains=f"{latin}: not UTF-8 text")
    assert_one_line_error(*run_main("claims", latin)[::2], contains="not UTF-8 text")
    assert_one_line_error(*run_main("energy-from-trace", good, trace)[::2], contains=f"trace {trace}: not UTF-8")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("path, value, where", [
    (("entries", 0, "device", "name"), 123, "entries/0/device/name"),
    (("entries", 0, "model", "metrics", "int8"), [0.9], "entries/0/model/metrics/int8"),
    (("entries", 0, "model", "size", "params"), "many", "entries/0/model/size/params"),
    (("entries", 0, "latency", "stats", "cv"), "x", "entries/0/latency/stats/cv"),
    (("artifacts", "dataset", "sha256"), ["d1"], "artifacts/dataset/sha256"),
    (("entries", 0, "energy", "total_j"), "lots", "entries/0/energy/total_j"),
])
def test_results_the_code_cannot_use_are_refused_on_load_and_save(tmp_path, path, value, where):
    data = run([entry("1x32", 100, 90, "tpu-sim", "simulated", 1e-5, energy=1e-4)])
    node = data
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    p = tmp_path / "run.json"
    p.write_text(json.dumps(data))
    before = snapshot(tmp_path)
    for argv in (("compare", p, p), ("claims", p), ("merge", p, "-o", tmp_path / "m.json"),
                 ("chart", p, "-o", tmp_path), ("report", p)):
        assert_one_line_error(*run_main(*argv)[::2], contains=f"not a valid results file at {where}")
    assert snapshot(tmp_path) == before
    from edgecheck.results import Run

    try:
        typed = Run({k: v for k, v in data.items() if k != "entries"}, [Entry.from_json(e) for e in data["entries"]])
    except EdgecheckError as e:  # a typed record refuses it where it is made, before any save
        assert where.split("/")[-1] in str(e) and "\n" not in str(e), str(e)
        return
    with pytest.raises(EdgecheckError, match=rf"s.json \(not written\): not a valid results file at {where}"):
        save(typed, tmp_path / "s.json")
    assert not (tmp_path / "s.json").exists()


def test_output_paths_that_are_directories_or_unwritable(tmp_path):
    p = tmp_path / "run.json"
    p.write_text(json.dumps(run([entry("1x32", 100, 90, "tpu-sim", "simulated", 1e-5, energy=1e-4)])))
    folder = tmp_path / "folder"
    folder.mkdir()
    before = snapshot(tmp_path)
    assert_one_line_error(*run_main("merge", p, "-o", folder)[::2],
                          contains=f"cannot write {folder}: it is a directory")
    assert_one_line_error(*run_main("report", p, "-o", folder)[::2], contains="it is a directory")
    assert_one_line_error(*run_main("compare", p, p, "--json", folder)[::2], contains="it is a directory")
    assert snapshot(tmp_path) == before
    with pytest.raises(EdgecheckError, match=f"--results: {folder} is a directory; give a file path"):
        ResultsFile.start(folder, HEADER)
    with pytest.raises(EdgecheckError, match="--results: cannot write /proc/x.json"):
        ResultsFile.start("/proc/x.json", HEADER)


def test_json_lists_where_objects_are_expected(smoke_artifacts, tmp_path):
    p = tmp_path / "run.json"
    p.write_text(json.dumps(run([entry("1x32", 100, 90, "tpu-sim", "simulated", 1e-5, energy=1e-4)])))
    lst = tmp_path / "list.json"
    lst.write_text("[1, 2, 3]")
    before = snapshot(tmp_path)
    assert_one_line_error(*run_main("claims", p, "--claims", lst)[::2],
                          contains=f"--claims: {lst} holds a JSON list, expected an object")
    assert_one_line_error(*run_main("calibrate", "--device", "tpu", p, "--constants", lst)[::2],
                          contains=f"--twin-constants: {lst} holds a JSON list")
    assert snapshot(tmp_path) == before
    proc = run_pytest(INFERENCE, "--artifacts", str(smoke_artifacts), "--device", "tpu-sim", "--twin-constants",
                      str(lst), "--results", str(tmp_path / "r.json"))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4 and f"--twin-constants: {lst} holds a JSON list, expected an object" in out
    assert "Traceback" not in out and not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("option, value, message", [
    ("--energy-window", "nan", "expected a finite number, got 'nan'"),
    ("--idle-seconds", "nan", "expected a finite number, got 'nan'"),
    ("--idle-seconds", "-inf", "expected a finite number, got '-inf'"),
    ("--energy-window", "1e9", "must be at most 3600 s, got 1e9"),  # a window that would never end
    ("--round-time", "0", "must be > 0, got 0"),
    ("--trace-offset", "inf", "expected a finite number, got 'inf'"),
])
def test_numeric_options_are_usage_errors_as_they_are_parsed(pytester, option, value, message):
    """NaN passes every '<= 0' check: each numeric option is checked finite and in range by its type= function."""
    with pytest.raises(pytest.UsageError, match=f"argument {option}: {message}"):
        pytester.parseconfig(f"{option}={value}")


@pytest.mark.parametrize("spec, message", [
    ("tpu@ssh://u@h:abc", "the port must be a number from 1 to 65535"),
    ("tpu@ssh://u@h:99999", "the port must be a number from 1 to 65535"),
    ("tpu@ssh://u@-oProxyCommand=x", "is not a host name"),
])
def test_remote_devices_are_checked_as_options_are_parsed(pytester, spec, message):
    with pytest.raises(pytest.UsageError, match=message) as e:
        pytester.parseconfig("--device", spec)
    (line,) = [x for x in str(e.value).splitlines() if "error:" in x]  # pytest's usage line, then ours
    assert f"error: argument --device: --device {spec!r}: " in line and message in line


def test_a_grid_too_large_is_a_usage_error(pytester):
    from edgecheck.architecture import parse_grid

    with pytest.raises(EdgecheckError, match="1x100000000 would hold 286 MiB of int8 weights; at most 256 MiB"):
        parse_grid("1x100000000")
    with pytest.raises(EdgecheckError, match="a grid has at most 1000 architectures"):
        parse_grid("layers=1-4;widths=1-100000000")
    with pytest.raises(pytest.UsageError, match="--grid: .*would hold"):
        pytester.parseconfig("--grid", "1x100000000")


def test_a_grid_too_large_to_build_is_refused_before_tensorflow(tmp_path):
    """A grid that passes with the smallest input can still be too large for the data's real input size: the build
    refuses it once the features are known, before TensorFlow is imported to train it. (No pytester in this test:
    it would unload the modules the build imports, numpy's FFT among them.)"""
    from edgecheck.architecture import check_size, parse_grid, size_of
    from edgecheck.build.pipeline import BuildOptions, build

    data = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(data, X=rng.normal(size=(40, 1, 64)), y=np.arange(40) % 2, sampling_rate=10.0)
    log = []
    parse_grid("1x4000000")  # 11 MiB with one input
    with pytest.raises(EdgecheckError, match=r"--grid: 1x4000000 would hold 332 MiB of int8 weights with 85 inputs"):
        build(BuildOptions(grid="1x4000000", dataset=str(data), out=tmp_path / "a"), log=log.append)
    assert not any("training" in line for line in log) and "tensorflow" not in json.dumps(log)
    assert size_of(parse_grid("1x4000000")[0], 85, 2).weight_bytes > 256 * 2**20
    with pytest.raises(EdgecheckError, match="at most 256 MiB"):
        check_size(parse_grid("1x400000")[0], 891, 4, "--grid")


def _silent_server() -> tuple[socket.socket, int]:
    """A TCP port that accepts connections (the kernel's backlog) and never says a word: a hung ssh server."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    return s, s.getsockname()[1]


def test_ssh_that_never_answers_fails_each_model_in_bounded_time(smoke_artifacts):
    if shutil.which("ssh") is None:
        pytest.skip("no ssh client here (Debian openssh-client)")
    from edgecheck.measure.kinds.cpu import KIND as CPU
    from edgecheck.measure.recorder import MeasureContext, TimingOptions
    from edgecheck.measure.remote import RemoteDevice, Target

    server, port = _silent_server()
    try:
        target = Target("cpu", "127.0.0.1", "nobody", port, connect_timeout_s=2)
        device = RemoteDevice(CPU.name, "measured", 1, {"remote": target.where, "_target": target}, impl=CPU)
        ctx = MeasureContext(TimingOptions(processes=1, rounds=1))
        models = art.load(smoke_artifacts).models
        t0 = time.monotonic()
        with pytest.raises(EdgecheckError, match=rf"ssh://nobody@127.0.0.1:{port}: (ssh failed|ssh did not answer)"):
            ctx.sweep(device, models[0])
        assert time.monotonic() - t0 < 2 + 5 + 5  # ssh's ConnectTimeout, then our own bound
        t1 = time.monotonic()
        with pytest.raises(EdgecheckError, match=f"not tried again for {models[1].name}"):
            ctx.sweep(device, models[1])
        assert time.monotonic() - t1 < 0.5
        ctx.close()
    finally:
        server.close()


class _ScriptTransport:
    """A real worker process running ``script`` on this machine (a fault: it hangs, or closes its output)."""

    where = "local test worker"

    def __init__(self, script: Path):
        self.script = script

    def put(self, local):
        return str(local)

    def worker(self):
        return str(self.script)

    def spawn(self, worker):
        return subprocess.Popen([sys.executable, worker], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)


def test_no_wait_is_unbounded(smoke_artifacts, tmp_path, monkeypatch):
    """A worker that never answers, and one that closes its output and never exits: both end within their bounds,
    with the reason on every model it had not measured. Every default wait is finite."""
    from edgecheck.config import DEFAULTS
    from edgecheck.measure import sweep

    for name, value in DEFAULTS.__dict__.items():
        if name.endswith(("_timeout_seconds", "_seconds")):
            assert math.isfinite(value) and value > 0, name
    models = art.load(smoke_artifacts).models[:2]
    files = {m.name: [m.tflite, None] for m in models}
    job = {"device": "cpu", "models": [{"name": m.name} for m in models]}
    hang = tmp_path / "hang.py"
    hang.write_text("import sys, time\nsys.stdin.read()\ntime.sleep(120)\n")
    t0 = time.monotonic()
    result = sweep.run(_ScriptTransport(hang), job, files, idle_timeout_s=1)
    assert time.monotonic() - t0 < 10
    for m in models:
        (error,) = result.of(m.name).errors
        assert error.startswith("the measurement worker at local test worker stopped answering for 1 s")
    mute = tmp_path / "mute.py"
    mute.write_text("import os, sys, time\nsys.stdin.read()\nos.close(1)\ntime.sleep(120)\n")
    monkeypatch.setattr(sweep, "EXIT_TIMEOUT_S", 1.0)
    t0 = time.monotonic()
    result = sweep.run(_ScriptTransport(mute), job, files, idle_timeout_s=60)
    assert time.monotonic() - t0 < 10
    assert "was killed by SIGKILL" in result.of(models[0].name).errors[0]


# ---------------------------------------------------------------------------------------------------------- security


def test_manifest_paths_are_confined_to_the_artifacts_folder(smoke_artifacts, tmp_path):
    """A manifest whose hash matches a file outside the folder (absolute path, '..', a link) is refused."""
    copy = _copy(smoke_artifacts, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    outside = tmp_path / "outside.tflite"
    shutil.copy(copy / manifest["models"][0]["files"]["tflite"]["path"], outside)
    for path in (str(outside), "../outside.tflite", "store/../../outside.tflite"):
        m = json.loads(json.dumps(manifest))
        m["models"][0]["files"]["tflite"]["path"] = path
        (copy / "manifest.json").write_text(json.dumps(m))
        with pytest.raises(EdgecheckError, match=f"path '{path}' is not inside the artifacts folder"):
            art.load(copy)
    (copy / "store" / "link.tflite").symlink_to(outside)
    m = json.loads(json.dumps(manifest))
    m["models"][0]["files"]["tflite"]["path"] = "store/link.tflite"
    (copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(EdgecheckError, match="leads out of the artifacts folder"):
        art.load(copy)


def test_the_results_schema_is_what_the_readers_use():
    """Every results file edgecheck ships or writes passes the tightened schema (it never refuses its own)."""
    baseline = load(REPO / "fixtures" / "baselines" / "twins-default-collar.json")  # schema /1, migrated
    assert len(baseline.entries) == 48
    from edgecheck.results import validate

    validate(baseline.to_json(), "the shipped baseline")
    assert baseline.to_json()["schema"] == RESULTS_SCHEMA
