"""The Edge TPU compiler's allocation as the twin models it, against every public compiler case; the band and
both outcomes near the on-chip limit; what the compiler refuses, on constructed models of known size."""
import json
from pathlib import Path

import numpy as np
import pytest
from tinytflite import dense_tflite

from edgecheck.twins import allocation
from edgecheck.twins.model import TpuRefused, load_constants, predict_a53, predict_tpu, workload

C = load_constants()
CASES = json.loads((Path(__file__).resolve().parent.parent / "fixtures" / "edgetpu_compiler" / "cases.json")
                   .read_text())


def layers_of(case: dict) -> list[allocation.ParamLayer]:
    out = []
    for spec in case["layers"]:
        layer = allocation.ParamLayer(spec["cin"], spec["cout"], spec["k"], spec["bias"], spec["kind"],
                                      spec.get("cin_eff"))
        out += [layer] * spec.get("repeat", 1)
    return out


@pytest.mark.parametrize("case", CASES["cases"], ids=[c["id"] for c in CASES["cases"]])
def test_split_matches_the_public_compiler_case(case):
    """On-chip and off-chip bytes within 5 % of the model's parameter bytes (plus the figure's print resolution)."""
    layers = layers_of(case)
    assert sum(x.raw_bytes for x in layers) == case["raw_param_bytes"]
    s = allocation.split(layers, C, case["profile"], case.get("budget_from_log"))
    tol = 0.05 * case["raw_param_bytes"]
    res_on, res_off = case["resolution_bytes"]
    assert abs(s.central.cached_bytes - case["on_chip_bytes"]) <= tol + res_on, (s.central.cached_bytes, case)
    assert abs(s.central.streamed_bytes - case["off_chip_bytes"]) <= tol + res_off, (s.central.streamed_bytes, case)


def test_the_case_table_is_broad_enough():
    """At least 15 cases from 3 independent sources, some near the limit, at most 20 % of what was found excluded,
    each exclusion naming the missing input."""
    cases, excluded = CASES["cases"], CASES["excluded"]
    assert len(cases) >= 15 and len({c["id"][0] for c in cases}) >= 3
    assert len(excluded) / (len(cases) + len(excluded)) <= 0.20
    assert all(e["missing"] for e in excluded)
    single = C.value("tpu", "allocation", "single_layer_limit_bytes")
    near = [c["id"] for c in cases if c["profile"] == allocation.MODERN
            and any(abs(allocation.footprint(x) - single) / single <= 0.10 for x in layers_of(c))]
    assert len(near) >= 2, near  # 2688^2 cached and 2752^2 streamed bracket the single-layer limit
    assert any(c["off_chip_bytes"] > 0 and c["on_chip_bytes"] > 0 for c in cases)  # partly streamed models


def test_first_fit_in_graph_order_and_layers_never_split():
    """A layer too large for what is left is streamed whole; a later small one is still cached."""
    budget = 1_000_000
    layers = [allocation.ParamLayer(600, 1000, bias=False), allocation.ParamLayer(1000, 600, bias=False),
              allocation.ParamLayer(600, 100, bias=False)]
    a = allocation.allocate(layers, allocation.Limits(budget, None))
    assert a.placement == ["cached", "streamed: cache full", "cached"]
    assert a.cached_bytes == 600 * 1000 + 8 * 1000 + 600 * 100 + 8 * 100 and a.streamed_bytes == 1000 * 600 + 8 * 600


def test_near_the_limit_the_prediction_gives_both_outcomes(tmp_path):
    """One 2720x2720 layer sits between the largest layer seen cached and the smallest seen streamed."""
    w = workload(dense_tflite(tmp_path / "near.tflite", [2720, 2720], bias=False))
    p = predict_tpu(w, C, "usb3")
    assert p.near_limit is not None
    near = p.near_limit
    assert near["if_streamed_s"] > 10 * near["if_cached_s"]
    assert near["text"].startswith("within ") and " ms if cached, " in near["text"] and near["text"].endswith(
        " ms if streamed")
    band = p.band["latency_s"]
    # the central value is one outcome; the other lies inside the band
    assert band["low"] <= min(near["if_cached_s"], near["if_streamed_s"])
    assert band["high"] >= max(near["if_cached_s"], near["if_streamed_s"])
    assert p.latency_s in (pytest.approx(near["if_cached_s"]), pytest.approx(near["if_streamed_s"]))
    far = predict_tpu(workload(dense_tflite(tmp_path / "far.tflite", [512, 512])), C, "usb3")
    assert far.near_limit is None and far.breakdown["streamed_bytes"] == 0


def test_every_prediction_carries_a_band(tmp_path):
    w = workload(dense_tflite(tmp_path / "m.tflite", [891, 256, 4]))
    for link in ("pcie", "usb3", "usb2"):
        p = predict_tpu(w, C, link)
        for what in ("latency_s", "power_w", "energy_j"):
            b = p.band[what]
            assert 0 < b["low"] < b["central"] < b["high"]
        assert p.band["latency_s"]["central"] == p.latency_s and p.band["energy_j"]["central"] == p.energy_j


def test_the_compiler_refuses_what_it_is_known_to_refuse(tmp_path):
    """Float weights, a dynamic batch and an operator the Edge TPU does not run: tpu-sim refuses with the reason;
    the A53 twin still answers."""
    for kw, reason in (({"float_weights": True}, "Model not quantized"), ({"dynamic_batch": True}, "dynamic shape"),
                       ({"extra_op": "ABS"}, "operator ABS is not supported by the Edge TPU")):
        w = workload(dense_tflite(tmp_path / "m.tflite", [32, 16, 4], **kw))
        assert reason in w.tpu_refusal
        with pytest.raises(TpuRefused, match=reason):
            predict_tpu(w, C)
        assert predict_a53(w, C).latency_s > 0


def test_float_edges_run_on_the_host_and_per_channel_is_labelled(tmp_path):
    plain = workload(dense_tflite(tmp_path / "a.tflite", [64, 32, 4]))
    edges = workload(dense_tflite(tmp_path / "b.tflite", [64, 32, 4], float_edges=True))
    assert edges.tpu_refusal is None and [n for n, _ in edges.host_ops] == ["QUANTIZE", "DEQUANTIZE"]
    p, q = predict_tpu(plain, C), predict_tpu(edges, C)
    assert q.breakdown["host_ops_s"] > 0 == p.breakdown["host_ops_s"] and q.latency_s > p.latency_s
    pc = predict_tpu(workload(dense_tflite(tmp_path / "c.tflite", [64, 32, 4], per_channel=True)), C)
    # the plain model's only note is the band's confidence (every cached prediction carries it while low)
    assert "compiler support unverified" in " ".join(pc.notes)
    assert not [n for n in p.notes if not n.startswith("low confidence")]


def test_constructed_models_run_in_litert(tmp_path):
    """The constructed files are real models: LiteRT loads and runs each variant."""
    from ai_edge_litert.interpreter import Interpreter

    for kw in ({}, {"float_edges": True}, {"per_channel": True}, {"float_weights": True}):
        it = Interpreter(model_path=str(dense_tflite(tmp_path / "m.tflite", [16, 8, 4], **kw)))
        it.allocate_tensors()
        d = it.get_input_details()[0]
        it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
        it.invoke()
        assert it.get_output_details()[0]["shape"].tolist() == [1, 4]
