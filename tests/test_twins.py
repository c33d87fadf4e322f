"""The twins: monotone, physically bounded, the on-chip cliff, honest constants, and the suite on them."""
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import INFERENCE, load, run_pytest

from edgecheck import artifacts as art
from edgecheck.errors import EdgecheckError
from edgecheck.measure.device import SelectOptions
from edgecheck.measure.kinds.tpu_sim import KIND as TPU_SIM
from edgecheck.options import TPU_HOSTS as OPTION_HOSTS
from edgecheck.twins.model import (
    DEFAULT_CONSTANTS,
    TPU_HOSTS,
    cache_split,
    load_constants,
    predict_a53,
    predict_tpu,
    workload,
    workload_from_sizes,
)

C = load_constants()


def dense_net(n_in, widths, n_out=4):
    return workload_from_sizes([n_in] + list(widths) + [n_out], "synthetic")


nets = st.builds(lambda n_in, L, w: (n_in, L, w), st.integers(8, 2000), st.integers(1, 5), st.integers(4, 3000))


@settings(max_examples=200, deadline=None)
@given(nets, st.integers(1, 512), st.sampled_from(["pcie", "usb3", "usb2"]), st.integers(1, 4))
def test_more_work_never_predicts_faster(net, extra, link, threads):
    n_in, L, w = net
    small, big = dense_net(n_in, [w] * L), dense_net(n_in, [w + extra] * L)
    assert predict_tpu(big, C, link).latency_s >= predict_tpu(small, C, link).latency_s
    assert predict_a53(big, C, threads).latency_s >= predict_a53(small, C, threads).latency_s
    deeper = dense_net(n_in, [w] * (L + 1))
    assert predict_tpu(deeper, C, link).latency_s >= predict_tpu(small, C, link).latency_s
    assert predict_a53(deeper, C, threads).latency_s >= predict_a53(small, C, threads).latency_s


@settings(max_examples=200, deadline=None)
@given(nets, st.sampled_from(["pcie", "usb3", "usb2"]), st.sampled_from([63e6, 125e6, 250e6, 500e6]))
def test_physical_bounds(net, link, clock):
    n_in, L, w = net
    net_ = dense_net(n_in, [w] * L)
    p = predict_tpu(net_, C, link, clock)
    peak_macs = C.value("tpu", "mac_array") * clock  # every MAC of the array busy every cycle
    rate = C.value("tpu", "links", link, "rate_Bps")
    assert p.latency_s >= net_.macs / peak_macs
    assert p.latency_s >= (net_.io_bytes + p.breakdown["streamed_bytes"]) / rate
    assert p.breakdown["cached_bytes"] <= C.value("tpu", "cache_bytes")
    a = predict_a53(net_, C, 4)
    assert a.latency_s >= net_.macs / (C.value("a53", "macs_per_cycle") * C.value("a53", "clock_hz") * 4)
    # weights come from L2 as far as it keeps them, the rest from LPDDR4: between all-L2 and all-DRAM
    dram = min(C.value("a53", "dram_Bps_per_core") * 4, C.value("a53", "dram_Bps_total"))
    assert net_.param_bytes / (C.value("a53", "l2_Bps") * 4) <= a.breakdown["memory_s"] * (1 + 1e-9)
    assert a.breakdown["memory_s"] <= net_.param_bytes / dram * (1 + 1e-9)
    assert 0.0 <= a.breakdown["l2_miss_fraction"] <= 1.0
    assert a.energy_j == pytest.approx(a.power_w * a.latency_s) and p.energy_j == pytest.approx(p.power_w * p.latency_s)


@pytest.mark.parametrize("link", ["usb3", "pcie"])
def test_on_chip_cliff(link):
    """A model whose weights exceed the cache predicts at least 2x the largest that fits."""
    cache = C.value("tpu", "cache_bytes")
    widths = range(64, 4096, 32)
    fits = [w for w in widths if cache_split(dense_net(792, [w] * 2).layers, cache)[1] == 0]
    largest_fit = dense_net(792, [max(fits)] * 2)
    first_over = dense_net(792, [max(fits) + 32] * 2)
    assert cache_split(first_over.layers, cache)[1] > 0
    assert predict_tpu(first_over, C, link).latency_s >= 2 * predict_tpu(largest_fit, C, link).latency_s


def test_compiler_log_sets_the_split():
    net = dense_net(792, [2048] * 4)
    log = {"models": [{"on_chip_used_bytes": 1000, "off_chip_streamed_bytes": 5_000_000}]}
    p = predict_tpu(net, C, "pcie", compiler=log)
    assert p.breakdown["cache_split_from"] == "compiler log" and p.breakdown["streamed_bytes"] == 5_000_000
    assert predict_tpu(net, C).breakdown["cache_split_from"] == "modelled allocation (compilers 14-16)"


def test_constants_table_is_sourced():
    """Every constant: a kind, a public source (no file outside this repository), a confidence, and a range
    around its value."""
    def walk(node, path):
        if isinstance(node, dict) and "value" in node:
            assert node.get("kind") in {"published", "derived", "fitted", "assumption"}, path
            assert node.get("source") and "/work/" not in node["source"], path
            assert node.get("confidence") in {"high", "medium", "low"}, path
            if isinstance(node["value"], (int, float)):
                assert node.get("low", node["value"]) <= node["value"] <= node.get("high", node["value"]), path
            return 1
        if not isinstance(node, dict):
            return 0
        return sum(walk(v, f"{path}.{k}") for k, v in node.items() if isinstance(v, dict))

    data = json.loads(DEFAULT_CONSTANTS.read_text())
    assert walk(data["tpu"], "tpu") >= 20 and walk(data["a53"], "a53") >= 9


def test_tpu_constants_are_the_published_fit():
    """The packaged latency constants are what tpufit derives from the published points: the streamed form's
    rates and streaming costs (constants_table), the cached compute rate from slopes within sources, each link's
    device part and each host's part (cached_model), the cached margin and both regimes' confidence."""
    from edgecheck.twins.tpufit import cached_constants, constants_table, published_points

    table = constants_table(published_points())
    for link in ("pcie", "usb3", "usb2"):
        for q in ("rate_Bps", "stream_overhead_s"):
            e = table[(q, link)]
            assert C.range("tpu", "links", link, q) == pytest.approx((e.low, e.value, e.high), rel=1e-5), (link, q)
    fresh = cached_constants()
    u = fresh["matvec_utilization"]
    assert C.range("tpu", "matvec_utilization") == pytest.approx((u["low"], u["value"], u["high"]), rel=1e-5)
    for link, node in fresh["links"].items():
        o = node["overhead_s"]
        assert C.range("tpu", "links", link, "overhead_s") == pytest.approx((o["low"], o["value"], o["high"]),
                                                                             rel=1e-5), link
    assert set(fresh["hosts"]) == set(C.value("tpu", "hosts")) == set(TPU_HOSTS) == set(OPTION_HOSTS)
    for host, node in fresh["hosts"].items():
        o = node["overhead_s"]
        assert C.range("tpu", "hosts", host, "overhead_s") == pytest.approx((o["low"], o["value"], o["high"]),
                                                                             rel=1e-5), host
        assert o["source"] and (o["kind"] == "assumption") == (host == "rpi4")  # Pi 4: no public source
    m = C.data["tpu"]["band"]
    assert m["cached_margin"]["value"] == pytest.approx(fresh["band"]["cached_margin"]["value"], rel=1e-5)
    for regime in ("cached", "streamed"):
        assert m[f"{regime}_margin"]["confidence"] == fresh["band"][f"{regime}_confidence"], regime
        assert m[f"{regime}_margin"]["confidence_why"] == fresh["band"][f"{regime}_why"], regime


def test_envelope_band_leave_one_source_out():
    """The README's and docs/tpu-twin.md's leave-one-source-out table is what envelope_report computes from the
    committed source data, row by row; a regime resting on fewer than 3 sources or covering less than 80 % is
    labelled low confidence (in the constants, so in every prediction's notes)."""
    import re

    from edgecheck.twins.tpufit import envelope_report, envelope_table

    report = envelope_report()
    rows = report["rows"]
    assert {r["regime"] for r in rows} == {"cached", "streamed"}
    for r in rows:
        assert r["low_confidence"] == (r["sources"] < 3 or r["coverage"] < 0.8), r
    root = Path(__file__).resolve().parents[1]
    for doc in ("README.md", "docs/tpu-twin.md"):
        text = (root / doc).read_text()
        for line in envelope_table(report)[2:]:
            assert line in text, (doc, line)
        assert len(re.findall(r"^\| (cached|streamed) \| (all|usb3|usb2|pcie) \|", text, re.M)) == len(rows), doc


def test_tpu_host_sets_the_host_part(smoke_artifacts):
    """--tpu-host narrows the overhead to that host's part; with none the band spans every host; the record
    names the host; the Pi 4 (no public source) is an assumption."""
    m = art.load(smoke_artifacts).models[0]
    w = workload(m.tflite)
    spans = predict_tpu(w, C, "usb3")
    lows, highs = [], []
    for host in TPU_HOSTS:
        p = predict_tpu(w, C, "usb3", host=host)
        assert p.breakdown["host"] == host and p.breakdown["host_name"] == C.data["tpu"]["hosts"][host]["name"]
        lows.append(p.band["latency_s"]["low"])
        highs.append(p.band["latency_s"]["high"])
    assert spans.band["latency_s"]["low"] == pytest.approx(min(lows))
    assert spans.band["latency_s"]["high"] == pytest.approx(max(highs))
    assert predict_tpu(w, C, "usb3", host="x86-64").latency_s == pytest.approx(spans.latency_s)
    assert predict_tpu(w, C, "usb3", host="rpi5").latency_s > spans.latency_s
    with pytest.raises(EdgecheckError, match="--tpu-host"):
        predict_tpu(w, C, "usb3", host="vax")
    d, _ = TPU_SIM.detect(SelectOptions(tpu_host="rpi5"))
    assert "Raspberry Pi 5" in d.provenance and "host=rpi5" in TPU_SIM.key(d)
    assert "the band spans" in TPU_SIM.detect(SelectOptions())[0].provenance


def test_bad_twin_options(tmp_path):
    with pytest.raises(EdgecheckError, match="--tpu-clock"):
        TPU_SIM.detect(SelectOptions(tpu_clock_mhz=300))
    with pytest.raises(EdgecheckError, match="--tpu-link"):
        TPU_SIM.detect(SelectOptions(tpu_link="thunderbolt"))
    bad = tmp_path / "c.json"
    bad.write_text("{")
    with pytest.raises(EdgecheckError, match="not valid JSON"):
        load_constants(bad)


def test_twins_cost_built_models_and_refuse_others(smoke_artifacts, tmp_path):
    m = art.load(smoke_artifacts).models[0]
    w = workload(m.tflite)
    assert w.macs == m.size["macs"] and w.param_bytes == m.size["weight_bytes"] + m.size["bias_bytes"]
    assert w.params == m.size["params"]
    from_sizes = workload_from_sizes(m.size["layer_sizes"])
    assert (from_sizes.macs, from_sizes.param_bytes, from_sizes.io_bytes) == (w.macs, w.param_bytes, w.io_bytes)
    junk = tmp_path / "x.tflite"
    junk.write_bytes(b"nope")
    with pytest.raises(EdgecheckError, match="not a TFLite"):
        workload(junk)


def test_suite_runs_on_the_twins(smoke_artifacts, tmp_path):
    results = tmp_path / "r.json"
    proc = run_pytest(INFERENCE, "--artifacts", str(smoke_artifacts), "--device", "tpu-sim,a53-sim",
                      "--results", str(results))
    assert proc.returncode == 0, proc.stdout[-3000:]
    data = load(results)
    assert len(data["entries"]) == 6
    for e in data["entries"]:
        assert e["kind"] == "simulated" and e["provenance"].startswith("simulated by the")
        assert "measured" not in e["provenance"]
        assert e["latency"]["samples"] == [e["latency"]["stats"]["median"]]
        assert e["twin"]["constants_sha256"] == C.sha256 and e["twin"]["compiler_log_used"] is False
    assert "simulated" in proc.stdout
    again = tmp_path / "r2.json"
    run_pytest(INFERENCE, "--artifacts", str(smoke_artifacts), "--device", "tpu-sim,a53-sim", "--results", str(again))
    # deterministic: the same model and constants give the same number
    lat = lambda d: sorted((e["model"]["name"], e["device"]["name"], e["latency"]["samples"][0]) for e in d["entries"])  # noqa: E731
    assert lat(load(again)) == lat(data)


def test_a_constant_edited_outside_its_own_range_is_refused(tmp_path):
    """The band is built from each constant's low and high: a value moved outside them (an edit that forgot the
    range) would silently widen the band, so the file is refused, naming the constant."""
    data = json.loads(DEFAULT_CONSTANTS.read_text())
    data["tpu"]["links"]["usb3"]["overhead_s"]["value"] *= 1000
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    with pytest.raises(EdgecheckError, match=r"tpu\.links\.usb3\.overhead_s = .* lies outside its own range"):
        load_constants(path)
    for end in ("low", "high"):
        data["tpu"]["links"]["usb3"]["overhead_s"][end] *= 1000
    path.write_text(json.dumps(data))
    assert load_constants(path).value("tpu", "links", "usb3", "overhead_s") == pytest.approx(
        1000 * C.value("tpu", "links", "usb3", "overhead_s"))
