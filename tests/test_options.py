"""edgecheck's options defined once (``edgecheck.options``) and read once (``SessionConfig``).

The plugin and the ``edgecheck`` command take each shared option from one definition: the same check, limits,
default and help. Every file an option names is loaded when pytest configures: a wrong one ends the run in one
line (exit 4) within seconds, before anything is built or measured.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pytest
from support import REPO, assert_one_line_error, entry, run, run_main, run_pytest

from edgecheck import cli
from edgecheck.errors import EdgecheckError
from edgecheck.options import DATASET_NAMES, MAX_COUNT, MAX_ROUNDS, OPTIONS, TPU_LINKS, SessionConfig, check_dataset

LOG = REPO / "fixtures" / "compiler_logs" / "v16_partial_mapping.log"


def _write(path, text: str):
    path.write_text(text)
    return path


def _claims_of_wrong_shape(d):
    from edgecheck.judge.claims import DEFAULT_CLAIMS_FILE

    data = json.loads(DEFAULT_CLAIMS_FILE.read_text())
    data["C4"]["min_spearman"] = "high"
    return _write(d / "claims.json", json.dumps(data))


def _npz_that_is_not(d):
    return _write(d / "windows.npz", "X,y\n1,2\n")


def _folder_without_parts(d):
    (d / "har").mkdir()
    return d / "har"


BAD_FILES = [  # option, the file, the one line that says what is wrong with it
    ("--baseline", lambda d: d / "missing.json", "--baseline: results file: {path}: file not found"),
    ("--claims", lambda d: _write(d / "list.json", "[1, 2, 3]"), "--claims: {path} holds a JSON list, expected an "
                                                                 "object"),
    ("--claims", _claims_of_wrong_shape, "--claims: {path}: C4.min_spearman is 'high', expected number"),
    ("--twin-constants", lambda d: _write(d / "k.json", '{"schema": "edgecheck.twin-constants/1", '),
     "--twin-constants: {path} is not valid JSON"),
    ("--model", lambda d: d / "missing.tflite", "--model: file {path} not found"),
    ("--compiler-log", lambda d: LOG, "--compiler-log: goes with --model files, and none was given"),
    ("--dataset", _npz_that_is_not, "--dataset: {path} is not a .npz archive"),
    ("--dataset", _folder_without_parts, "--dataset: {path}: not a UCI HAR directory (no train/ or test/ folder)"),
]


@pytest.mark.parametrize("option, make, message", BAD_FILES,
                         ids=[f"{o}-{i}" for i, (o, _, _) in enumerate(BAD_FILES)])
def test_a_bad_file_ends_the_run_in_one_line_before_anything_is_built(tmp_path, option, make, message):
    """``pytest benchmarks`` with no --artifacts would build the default grid, then measure it: a wrong file is
    found first, in pytest_configure."""
    path = make(tmp_path)
    build, results = tmp_path / "build", tmp_path / "out" / "r.json"
    start = time.monotonic()
    proc = run_pytest("benchmarks", option, str(path), "--build-dir", str(build), "--results", str(results),
                      "--device", "cpu,tpu-sim", timeout=300)
    took = time.monotonic() - start
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 4, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert lines == ["ERROR: " + message.format(path=path)] or \
        len(lines) == 1 and lines[0].startswith("ERROR: " + message.format(path=path)), lines
    # the usage error comes before the build (over a minute here): a generous bound, since a loaded runner can
    # take several seconds just to start pytest (the README gives the figure measured here: about 1.3 s)
    assert took < 30, f"{took:.1f} s"
    assert not build.exists() and not results.parent.exists()  # nothing built, nothing measured or written


def test_the_files_are_loaded_into_the_config(pytester, tmp_path):
    """The session's config holds the loaded baseline, thresholds and constants (read once, here) beside the
    typed option values."""
    from edgecheck.judge.claims import DEFAULT_CLAIMS_FILE
    from edgecheck.twins.model import DEFAULT_CONSTANTS

    base = _write(tmp_path / "base.json", json.dumps(run([entry("1x32", 100, 90, "tpu-sim", "simulated", 1e-5)])))
    claims = json.loads(DEFAULT_CLAIMS_FILE.read_text())
    claims["C6"]["min_agreement"] = 0.5
    claims = _write(tmp_path / "claims.json", json.dumps(claims))
    constants = _write(tmp_path / "k.json", DEFAULT_CONSTANTS.read_text())
    cfg = SessionConfig.from_options(pytester.parseconfig(
        "--baseline", str(base), "--claims", str(claims), "--twin-constants", str(constants), "--processes", "7",
        "--compare-threshold", "latency=0.2", "--device", "cpu", "--device", "tpu-sim").getoption)
    assert [e.model.name for e in cfg.baseline_run.entries] == ["1x32"]
    assert cfg.thresholds["C6"]["min_agreement"] == 0.5 and cfg.claims == str(claims)
    assert cfg.constants.path == str(constants) and cfg.twin_constants == str(constants)
    assert cfg.processes == 7 and cfg.compare_threshold == ((None, "latency", 0.2),)
    assert cfg.device == ("cpu", "tpu-sim") and cfg.model == () and cfg.compiler_logs == {}
    with pytest.raises(AttributeError):
        cfg.processes = 8  # frozen: read once, never changed mid-session
    default = SessionConfig.from_options(pytester.parseconfig().getoption)
    assert default.baseline_run is None and default.constants.path == str(DEFAULT_CONSTANTS)
    assert default.thresholds["C6"]["min_agreement"] == 0.95 and default.device is None


def test_a_compiler_log_is_paired_with_its_model_at_configure_time(pytester, tmp_path):
    """By the log's 'Input model' line (ffnn_float_io.tflite), whatever the order."""
    other = _write(tmp_path / "other.tflite", "not read here")
    model = _write(tmp_path / "ffnn_float_io.tflite", "not read here")
    cfg = SessionConfig.from_options(pytester.parseconfig("--model", str(other), "--model", str(model),
                                                          "--compiler-log", str(LOG)).getoption)
    assert cfg.model == (str(other), str(model)) and cfg.compiler_logs == {str(model): str(LOG)}
    with pytest.raises(EdgecheckError, match="--compiler-log: .*names no --model file"):
        SessionConfig.from_options(pytester.parseconfig("--model", str(other), "--compiler-log", str(LOG),
                                                        "--compiler-log", str(LOG)).getoption)


def test_a_dataset_path_is_read_and_checked_at_configure_time(tmp_path):
    """check_dataset reads the file with numpy (no TensorFlow) and refuses what the build would choke on."""
    np.savez(tmp_path / "w.npz", X=np.zeros((2, 1, 8)), y=np.arange(2), sampling_rate=50)
    (tmp_path / "w.csv").write_text("window,label,time,x\n" + "".join(f"w{w},{w},{i / 10},{i}\n" for w in range(2)
                                                                      for i in range(8)))
    for ok in (*DATASET_NAMES, tmp_path / "w.npz", tmp_path / "w.csv"):
        check_dataset(str(ok))
    (tmp_path / "har" / "train").mkdir(parents=True)
    np.savez(tmp_path / "one.npz", X=np.zeros((2, 1, 8)), y=np.zeros(2), sampling_rate=50)
    for bad, why in ((tmp_path / "none.csv", "file .*none.csv not found"), (tmp_path, "not a UCI HAR directory"),
                     ("colar", "unknown dataset 'colar'"), (tmp_path / "w.txt", "unknown dataset"),
                     (_write(tmp_path / "e.csv", ""), "e.csv is empty"),
                     (tmp_path / "har", "total_acc_x_train.txt: file not found"),
                     (tmp_path / "one.npz", "one.npz: needs at least 2 classes")):
        with pytest.raises(EdgecheckError, match=f"^--dataset: .*{why}"):
            check_dataset(str(bad))
    from edgecheck.build.data import NAMED_DATASETS

    assert set(NAMED_DATASETS) <= set(DATASET_NAMES)


def _cli_action(command: type[cli.Command], flag: str) -> argparse.Action:
    p = argparse.ArgumentParser()
    command.add_arguments(p)
    return next(a for a in p._actions if flag in a.option_strings)


SHARED = [  # (subcommand, its flag, the plugin option it means)
    (cli.Build, "--grid", "grid"), (cli.Build, "--dataset", "dataset"), (cli.Calibrate, "--grid", "grid"),
    (cli.Calibrate, "--artifacts", "artifacts"), (cli.Calibrate, "--constants", "twin_constants"),
    (cli.Compare, "--threshold", "compare_threshold"), (cli.Compare, "--allow-missing", "allow_missing"),
    (cli.Compare, "--force", "force_baseline"), (cli.Ab, "--processes", "ab_processes"),
    (cli.Ab, "--max-seconds", "ab_max_seconds"), (cli.Ab, "--rounds", "rounds"),
    (cli.Ab, "--threshold", "compare_threshold"), (cli.Claims, "--claims", "claims"),
    (cli.Recommend, "--tpu-link", "tpu_link"), (cli.EnergyFromTrace, "--offset", "trace_offset"),
]


@pytest.mark.parametrize("command, flag, dest", SHARED, ids=[f"{c.name}{f}" for c, f, _ in SHARED])
def test_a_subcommand_option_is_the_plugins_option(pytester, command, flag, dest):
    """Same check (the very function), limits, default, help and choices as pytest's option."""
    action = _cli_action(command, flag)
    plugin = pytester.parseconfig()._parser.getgroup("edgecheck")
    (pytest_option,) = [o for o in plugin.options if o.dest == dest]
    assert action.type is pytest_option.attrs().get("type") is OPTIONS[dest].type
    assert action.help.endswith(pytest_option.attrs()["help"]) and action.default == pytest_option.attrs()["default"]
    assert list(action.choices or []) == list(pytest_option.attrs().get("choices") or [])


@pytest.mark.parametrize("argv, pytest_args, message", [
    (("ab", "a", "b", "--processes", str(MAX_COUNT + 1)), ("--processes", str(MAX_COUNT + 1)),
     f"must be at most {MAX_COUNT}, got {MAX_COUNT + 1}"),
    (("ab", "a", "b", "--rounds", str(MAX_ROUNDS + 1)), ("--rounds", str(MAX_ROUNDS + 1)),
     f"must be at most {MAX_ROUNDS}, got {MAX_ROUNDS + 1}"),
    (("recommend", "m.tflite", "--tpu-link", "usb4"), ("--tpu-link", "usb4"), "invalid choice: 'usb4'"),
    (("build", "--out", "x", "--grid", "3y"), ("--grid", "3y"), "grid '3y': '3y' is not LAYERSxWIDTH"),
    (("ab", "a", "b", "--device", "gpu"), ("--device", "gpu"), "unknown device 'gpu'"),
])
def test_the_command_and_the_plugin_refuse_the_same_values(pytester, argv, pytest_args, message):
    code, _, err = run_main(*argv)
    assert_one_line_error(code, err, contains=message)
    with pytest.raises(pytest.UsageError, match=message):
        pytester.parseconfig(*pytest_args)


def test_the_tpu_links_are_the_twins_links():
    from edgecheck.twins.model import LINKS

    assert TPU_LINKS == LINKS
