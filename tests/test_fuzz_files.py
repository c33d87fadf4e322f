"""Mutated input files, generated: datasets (.npz arrays of any shape and dtype, CSV text), a real .tflite with
bytes flipped or cut, real edgetpu_compiler logs and a meter's trace with their text changed.

Each file is either read (and what is read holds up: a dataset splits, a model's sizes are counted) or refused
with one EdgecheckError line naming the file: never another exception, and the file itself is left as it was.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from support import REPO, assert_one_line_error, run_main

from edgecheck import artifacts as art
from edgecheck.errors import EdgecheckError

SETTINGS = dict(deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
LOGS = sorted((REPO / "fixtures" / "compiler_logs").glob("*.log"))


def _one_line_error(e: EdgecheckError, path: Path) -> None:
    assert str(path) in str(e) or path.name in str(e), str(e)


DTYPES = hnp.scalar_dtypes() | hnp.unicode_string_dtypes(max_len=4) | st.just(np.dtype("complex64"))
ARRAYS = DTYPES.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=4, max_side=5)))


def _good_arrays(rng) -> dict:
    return {"X": rng.normal(size=(12, 2, 32)), "y": np.array(["a", "b", "c"] * 4),
            "groups": np.repeat(np.arange(4), 3), "sampling_rate": np.array(20.0),
            "channel_names": np.array(["ax", "ay"])}


@settings(max_examples=80, **SETTINGS)
@given(data=st.data())
def test_mutated_npz_datasets_load_or_are_refused(tmp_path, data):
    from edgecheck.build.data import load_dataset, split_dataset

    arrays = _good_arrays(np.random.default_rng(0))
    for key in data.draw(st.lists(st.sampled_from(sorted(arrays) + ["extra"]), max_size=3, unique=True)):
        if data.draw(st.booleans()):
            arrays.pop(key, None)
        else:
            arrays[key] = data.draw(ARRAYS)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    raw = buf.getvalue()
    if data.draw(st.integers(0, 3)) == 0:  # bytes flipped or cut, as a disk or a transfer does
        cut = data.draw(st.integers(0, len(raw)))
        raw = raw[:cut] + bytes(b ^ 0xFF for b in raw[cut:cut + data.draw(st.integers(0, 8))])
    path = tmp_path / "d.npz"
    path.write_bytes(raw)
    try:
        ds = load_dataset(str(path))
    except EdgecheckError as e:
        _one_line_error(e, path)
        return
    assert ds.X.ndim == 3 and ds.X.dtype == np.float32 and np.isfinite(ds.X).all()
    assert len(ds.channel_names) == ds.X.shape[1] and ds.y.shape == (ds.X.shape[0],)
    try:
        split_dataset(ds)
        ds.describe()
    except EdgecheckError as e:
        assert "\n" not in str(e)
    assert path.read_bytes() == raw


CSV_CELLS = st.sampled_from(["", "nan", "inf", "-1", "1e999", "x", ",", '"', "\x00", "0", "0.05", "w0", "\u2028"])


def _mutate_lines(data, lines: list[str], edit, junk_size: int) -> list[str]:
    """One to four random edits of a text file's lines: the format's own ``edit`` of a line, or a line dropped,
    doubled, cut short or replaced by junk."""
    for _ in range(data.draw(st.integers(1, 4))):
        if not lines:
            break
        i = data.draw(st.integers(0, len(lines) - 1))
        how = data.draw(st.sampled_from(["edit", "drop", "dup", "cut", "junk"]))
        if how == "edit":
            lines[i] = edit(lines[i])
        elif how == "drop":
            lines.pop(i)
        elif how == "dup":
            lines.insert(i, lines[i])
        elif how == "cut":
            lines[i] = lines[i][:data.draw(st.integers(0, len(lines[i])))]
        else:
            lines[i] = data.draw(st.text(max_size=junk_size))
    return lines


@settings(max_examples=80, **SETTINGS)
@given(data=st.data())
def test_mutated_csv_datasets_load_or_are_refused(tmp_path, data):
    from edgecheck.build.data import load_dataset, split_dataset

    lines = ["window,label,group,time,ax,ay"] + [f"w{w},{'ab'[w % 2]},g{w % 3},{i / 20:.2f},{w + i},{w - i}"
                                                 for w in range(6) for i in range(8)]

    def cell(line: str) -> str:
        cells = line.split(",")
        cells[data.draw(st.integers(0, len(cells) - 1))] = data.draw(CSV_CELLS | st.text(max_size=4))
        return ",".join(cells)

    lines = _mutate_lines(data, lines, cell, junk_size=20) or [""]
    path = tmp_path / "d.csv"
    path.write_text("\n".join(lines) + "\n")
    before = path.read_bytes()
    try:
        ds = load_dataset(str(path))
    except EdgecheckError as e:
        _one_line_error(e, path)
        return
    assert np.isfinite(ds.X).all() and ds.sampling_rate > 0 and len(ds.channel_names) == ds.X.shape[1]
    try:
        split_dataset(ds)
    except EdgecheckError as e:
        assert "\n" not in str(e)
    assert path.read_bytes() == before


@pytest.fixture(scope="module")
def model_bytes(smoke_artifacts) -> bytes:
    return art.load(smoke_artifacts).models[1].tflite.read_bytes()


@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_mutated_tflite_is_inspected_or_refused(model_bytes, tmp_path, data):
    raw = bytearray(model_bytes)
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[:data.draw(st.integers(0, len(raw)))]
    path = tmp_path / "m.tflite"
    path.write_bytes(bytes(raw))
    code, out, err = run_main("inspect", "--json", path)
    if code == 0:
        assert '"params"' in out
    else:
        assert_one_line_error(code, err, contains=str(path))
    assert path.read_bytes() == bytes(raw)


@settings(max_examples=80, **SETTINGS)
@given(data=st.data())
def test_mutated_compiler_logs_are_parsed_or_refused(tmp_path, data):
    lines = data.draw(st.sampled_from(LOGS)).read_text().splitlines()

    def numbers(line: str) -> str:
        return "".join(data.draw(st.sampled_from(["-2", "99999999999", "1.5", "", "x", "-0"])) if c.isdigit() else c
                       for c in line)

    lines = _mutate_lines(data, lines, numbers, junk_size=30)
    path = tmp_path / "c.log"
    path.write_text("\n".join(lines))
    before = path.read_bytes()
    code, out, err = run_main("parse-compiler-log", path)
    if code == 0:
        assert '"models"' in out
    else:
        assert_one_line_error(code, err)
    assert path.read_bytes() == before


@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_mutated_meter_traces_are_read_or_refused(tmp_path, data):
    from edgecheck.measure.probes import TraceProbe, read_trace

    lines = ["timestamp,watts"] + [f"{100 + i / 10:.1f},{2 + (i % 3) / 10:.2f}" for i in range(40)]
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(lines) - 1))
        cells = lines[i].split(",")
        cells[data.draw(st.integers(0, len(cells) - 1))] = data.draw(CSV_CELLS | st.text(max_size=5))
        lines[i] = ",".join(cells) if data.draw(st.booleans()) else ",".join(cells + ["9"])
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    before = path.read_bytes()
    try:
        t, p = read_trace(path)
        TraceProbe(path).integrate(t, p, 100.5, 102.5)
    except EdgecheckError as e:
        _one_line_error(e, path)
        return
    assert np.isfinite(t).all() and np.isfinite(p).all() and (p >= 0).all() and (np.diff(t) > 0).all()
    assert path.read_bytes() == before
