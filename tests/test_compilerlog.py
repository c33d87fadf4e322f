"""The compiler-log parser against fixtures in the exact formats real compilers print."""
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import run_edgecheck

from edgecheck.compilerlog import CompilerFailure, parse, parse_size

LOGS = Path(__file__).resolve().parent.parent / "fixtures" / "compiler_logs"
VARIANTS = json.loads((LOGS / "variants.json").read_text())["variants"]

# Every format the devices issue lists; a variant without a fixture fails here.
REQUIRED = ["v2.0", "v2.1", "v14.1", "v15.0", "v16.0", "co-compiled", "--search_delegate", "segmented",
            "Model not quantized", "Didn't find op for builtin opcode", "Compilation failed", "Internal compiler error"]


@pytest.mark.parametrize("needle", REQUIRED)
def test_every_listed_variant_has_a_fixture(needle):
    matches = [v for name, v in VARIANTS.items() if needle in name]
    assert matches, f"no fixture for the compiler-log variant {needle!r}"
    for v in matches:
        assert (LOGS / v["file"]).is_file() and v["source"]


def test_every_fixture_is_listed():
    assert {p.name for p in LOGS.glob("*.log")} == {v["file"] for v in VARIANTS.values()}


def load(name):
    return parse((LOGS / name).read_text(), source=name)


def test_v16_single():
    log = load("v16_single_mapped.log")
    assert log.compiler_version == "16.0.384591198" and log.compile_ms == 412 and not log.co_compiled
    (m,) = log.models
    assert m.input_model == "2x256.tflite" and m.output_model == "2x256_edgetpu.tflite"
    assert m.on_chip_used_bytes == round(299.75 * 1024) and m.off_chip_streamed_bytes == 0
    assert m.on_chip_remaining_bytes == round(7.43 * 2**20)
    assert m.subgraphs == 1 and m.total_operations == 3
    assert m.operations_on_tpu == 3 and m.operations_on_cpu == 0 and m.fully_mapped and not log.warnings


def test_streamed_with_table():
    (m,) = load("v16_streamed_show_operations.log").models
    assert m.off_chip_streamed_bytes == round(6.28 * 2**20)
    assert [(r.operator, r.count, r.mapped) for r in m.operators] == [("FULLY_CONNECTED", 5, True)]
    assert m.operations_on_tpu == 5 and m.operations_on_cpu == 0


@pytest.mark.parametrize("name, on_tpu, on_cpu, unmapped", [
    ("v16_partial_mapping.log", 3, 2, ["DEQUANTIZE", "QUANTIZE"]),
    ("v15_partial_mapping.log", 4, 1, ["DEQUANTIZE"]),
    ("v2_1_more_than_one_subgraph.log", 3, 3, ["FULLY_CONNECTED", "SOFTMAX", "TANH"]),
])
def test_partial_mapping_warns_with_operators(name, on_tpu, on_cpu, unmapped):
    log = load(name)
    (m,) = log.models
    assert (m.operations_on_tpu, m.operations_on_cpu) == (on_tpu, on_cpu)
    assert m.unmapped_operators == unmapped and m.fully_mapped is False
    assert len(log.warnings) == 1 and all(op in log.warnings[0] for op in unmapped)


def test_v14_wrapped_notice():
    (m,) = load("v14_1_wrapped_notice.log").models
    assert m.operations_on_tpu == 2 and m.operations_on_cpu == 2 and m.fully_mapped is False


def test_v2_0_formats():
    (m,) = load("v2_0_available.log").models
    assert m.on_chip_available_bytes == round(7.62 * 2**20)
    assert m.on_chip_remaining_bytes == m.on_chip_available_bytes - m.on_chip_used_bytes
    (m,) = load("v2_0_input_output_only.log").models
    assert m.input_model == "/data/models/1x32_uint8io.tflite" and m.on_chip_used_bytes is None
    assert m.operations_on_tpu == 2 and m.operations_on_cpu == 1 and m.unmapped_operators == ["QUANTIZE"]


@pytest.mark.parametrize("name, n", [("v16_cocompiled.log", 2), ("v15_cocompiled_compact.log", 2)])
def test_cocompiled(name, n):
    log = load(name)
    assert log.co_compiled and len(log.models) == n
    assert log.models[1].on_chip_remaining_bytes == log.models[0].on_chip_remaining_bytes


def test_search_delegate():
    log = load("v16_search_delegate.log")
    assert log.search_delegate_step == 1
    assert log.attempts == [{"operations": 6, "outcome": "failed"}, {"operations": 5, "outcome": "compiled"}]
    (m,) = log.models
    assert m.operations_on_tpu == 4 and m.operations_on_cpu == 2


def test_segmented():
    log = load("v16_segmented.log")
    assert [m.input_model for m in log.models] == ["4x2048_segment_0_of_2.tflite", "4x2048_segment_1_of_2.tflite"]
    assert [len(m.operators) for m in log.models] == [1, 1]
    assert log.models[1].off_chip_streamed_bytes == round(508.25 * 1024)


@pytest.mark.parametrize("name, kind", [
    ("fail_not_quantized.log", "not_quantized"),
    ("fail_unsupported_opcode.log", "unsupported_operator_version"),
    ("fail_unsupported_opcode_v2_0.log", "unsupported_operator_version"),
    ("fail_compilation_failed.log", "compilation_failed"),
    ("fail_internal_error.log", "internal_error"),
])
def test_failures_are_clear_errors(name, kind):
    with pytest.raises(CompilerFailure) as e:
        load(name)
    assert e.value.kind == kind and name in str(e.value) and e.value.version in str(e.value)
    if kind == "unsupported_operator_version":
        assert e.value.details["operator"] == "FULLY_CONNECTED"


def test_not_a_log():
    with pytest.raises(CompilerFailure, match="not Edge TPU compiler output"):
        parse("hello\nworld\n")


@given(st.floats(0, 1023, allow_nan=False).map(lambda x: round(x, 2)), st.sampled_from(["B", "KiB", "MiB", "GiB"]))
def test_parse_size(value, unit):
    mult = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}[unit]
    assert parse_size(f"{value:.2f}{unit}") == round(value * mult)


def test_cli_prints_json_and_fails_clearly():
    out = json.loads(run_edgecheck("parse-compiler-log", str(LOGS / "v16_cocompiled.log")).stdout)
    assert out["compiler_version"] == "16.0.384591198" and len(out["models"]) == 2
    assert out["models"][0]["off_chip_streamed_bytes"] == round(2.53 * 2**20)
    proc = run_edgecheck("parse-compiler-log", str(LOGS / "fail_not_quantized.log"), check=False)
    assert proc.returncode == 2 and "model not quantized" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_edgecheck("parse-compiler-log", str(LOGS / "nope.log"), check=False)
    assert proc.returncode == 2 and "nope.log" in proc.stderr
