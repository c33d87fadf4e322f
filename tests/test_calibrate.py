"""Calibration recovers known constants from synthetic latencies generated with them."""
import json

import numpy as np
import pytest
from support import entry, run_edgecheck

from edgecheck.errors import EdgecheckError
from edgecheck.twins.cache import CacheGeometry, miss_fraction
from edgecheck.twins.calibrate import fit_board, fit_cpu_form, nnls
from edgecheck.twins.model import load_constants


def test_nnls_matches_unconstrained_when_feasible():
    rng = np.random.default_rng(0)
    A = rng.uniform(0, 1, (30, 3))
    x = np.array([0.5, 2.0, 1.0])
    assert np.allclose(nnls(A, A @ x), x)
    assert np.all(nnls(A, -A @ x) >= 0)


def test_tpu_fit_recovers_the_form_and_ranges_sources():
    """Two sources generated from known constants: each quantity's central value is the better-ranked source's,
    its range spans both; a quantity one source determines gets the typical disagreement as its range."""
    from edgecheck.twins.tpufit import TpuPoint, band_report, constants_table

    def pts(src, tier, overhead, s, stream, rate):
        out = [TpuPoint(src, tier, "usb3", m, 0, overhead + m * s, runs=5) for m in (6.5e4, 2.6e5, 1e6, 4e6)]
        return out + [TpuPoint(src, tier, "usb3", b, b, overhead + b * s + stream + b / rate, runs=5)
                      for b in (3e6, 8e6, 1.6e7)]

    good, worse = pts("A", 1, 2e-4, 3e-11, 4e-4, 4.5e8), pts("B", 3, 2.6e-4, 3e-11, 4e-4, 3.6e8)
    t = constants_table(good + worse, coral={})
    assert t[("overhead_s", "usb3")].value == pytest.approx(2e-4, rel=1e-4)
    assert (t[("overhead_s", "usb3")].low, t[("overhead_s", "usb3")].high) == pytest.approx((2e-4, 2.6e-4), rel=1e-4)
    assert t[("rate_Bps", "usb3")].value == pytest.approx(4.5e8, rel=1e-4)
    assert t[("rate_Bps", "usb3")].low == pytest.approx(3.6e8, rel=1e-4)
    assert t[("s_per_mac", None)].value == pytest.approx(3e-11, rel=1e-3)
    assert ("overhead_s", "pcie") not in t  # no Coral table given: no PCIe derivation
    report = band_report(good + worse, coral={})
    assert report["regimes"]["streamed"]["inside_band_share"] == 1.0


def _points(latency=lambda macs, nbytes, ops: 0.0):
    """The default grid's sizes (792 inputs), with latencies from ``latency(macs, bytes, operators)``."""
    pts = []
    for layers in (1, 2, 3, 4):
        for width in (32, 64, 256, 512, 1024, 2048):
            sizes = [792] + [width] * layers + [4]
            macs = sum(a * b for a, b in zip(sizes, sizes[1:]))
            nbytes = macs + 4 * sum(sizes[1:])
            pts.append({"model": f"{layers}x{width}", "params": macs + sum(sizes[1:]), "macs": macs, "bytes": nbytes,
                        "ops": layers + 1, "latency_s": latency(macs, nbytes, layers + 1)})
    return sorted(pts, key=lambda p: p["params"])


L2 = CacheGeometry(1 << 20, 8)


def test_cpu_form_recovers_its_constants():
    def latency(macs, nbytes, ops):
        m = miss_fraction(nbytes, L2)
        return 1e-6 + ops * 2e-7 + nbytes * (1 - m) / 1e11 + nbytes * m / 5e10

    fit = fit_cpu_form(_points(latency), L2)
    assert fit["invoke_overhead_s"] == pytest.approx(1e-6, rel=1e-3)
    assert fit["op_overhead_s"] == pytest.approx(2e-7, rel=1e-3)
    assert fit["l2_rate_Bps"] == pytest.approx(1e11, rel=1e-3)
    assert fit["memory_rate_Bps"] == pytest.approx(5e10, rel=1e-3)
    assert fit["held_out_mdape_pct"] < 1e-3 and fit["held_out"] and all(h["params"] > 1e6 for h in fit["held_out"])


def test_held_out_error_exposes_a_machine_the_form_does_not_describe():
    """A hard cliff at the L2 size (no page-colour curve): the small models cannot show it, and the
    held-out error says so rather than passing."""
    def latency(macs, nbytes, ops):
        return 1e-6 + (nbytes / 1e11 if nbytes <= L2.size_bytes else nbytes / 2e10)

    assert fit_cpu_form(_points(latency), L2)["held_out_mdape_pct"] > 25


def test_cpu_form_refuses_a_sweep_that_never_leaves_the_cache():
    """Fitted only on models that fit the L2, the rate beyond it would be a guess."""
    with pytest.raises(EdgecheckError, match="spills out of the 8192 KiB L2"):
        fit_cpu_form(_points(lambda macs, nbytes, ops: 1e-6 + nbytes / 1e11), CacheGeometry(8 << 20, 16))


def test_a53_fit_recovers_constants(tmp_path):
    """Latencies written from the A53's form by hand (not by the twin under test): overhead per invoke and per
    operator, plus the larger of NEON compute and weight traffic split between L2 and LPDDR4 by the L2's
    geometry (cache.miss_fraction, checked against an LRU simulation in test_cache.py)."""
    base = load_constants()
    clock, l2_rate, dram_total = 1.5e9, 6e9, 4e9  # the packaged table's clock, L2 rate and shared LPDDR4 rate
    assert (base.value("a53", "clock_hz"), base.value("a53", "l2_Bps"), base.value("a53", "dram_Bps_total")) == (
        clock, l2_rate, dram_total)
    l2 = CacheGeometry(1 << 20, 16, 4096)  # the Cortex-A53's 1 MiB, 16-way L2 with 4 KiB pages
    truth = {"macs_per_cycle": 3.0, "dram_Bps_per_core": 2e9, "invoke_overhead_s": 1.2e-5, "op_overhead_s": 2e-6}

    def latency(macs, nbytes, ops):
        miss = miss_fraction(nbytes, l2)
        compute = macs / (truth["macs_per_cycle"] * clock)
        memory = nbytes * (1 - miss) / l2_rate + nbytes * miss / min(truth["dram_Bps_per_core"], dram_total)
        return truth["invoke_overhead_s"] + ops * truth["op_overhead_s"] + max(compute, memory)

    entries = []
    for p in _points(latency):
        e = entry(p["model"], p["params"], p["macs"], "a53", "measured", p["latency_s"],
                  layer_sizes=[0] * p["ops"] + [0])
        e["model"]["size"]["bias_bytes"] = p["bytes"] - p["macs"]
        entries.append(e)
    path = tmp_path / "board.json"
    path.write_text(json.dumps({"entries": entries}))
    fitted, report = fit_board([{"entries": entries}], [str(path)], base, "a53")
    assert report["macs_per_cycle"] == pytest.approx(3.0, rel=0.05)
    assert report["dram_Bps_per_core"] == pytest.approx(2e9, rel=0.1)
    assert report["invoke_overhead_s"] == pytest.approx(1.2e-5, rel=0.2)
    assert report["mape_pct"] < 2
    assert fitted["a53"]["macs_per_cycle"]["kind"] == "fitted"
    assert "board.json" in fitted["a53"]["macs_per_cycle"]["source"]


def test_calibrate_cli_errors(tmp_path):
    proc = run_edgecheck("calibrate", "--device", "tpu", check=False)
    assert proc.returncode == 2 and "measured on a Coral board" in proc.stderr
    empty = tmp_path / "r.json"
    empty.write_text(json.dumps({"schema": "edgecheck.results/1", "created_utc": "x", "entries": []}))
    proc = run_edgecheck("calibrate", "--device", "cpu", str(empty), check=False)
    assert proc.returncode == 2 and "no measured cpu entries" in proc.stderr


@pytest.mark.parametrize("intercept", [5e-5, 4.5e-4])
def test_tpu_fit_from_board_results_and_compiler_logs(tmp_path, intercept):
    """Board results: uncached bytes from a model's compiler log, else the modelled allocation of its recorded
    layer sizes; the fit recovers the board's constants and reports held-out figures per regime. The intercept
    is the host + device overhead: the Dev Board's host part is what exceeds the link's device part (a board
    faster than the device part lowers it, its host part 0)."""
    from edgecheck.twins import allocation
    from edgecheck.twins.model import workload_from_sizes

    base = load_constants()
    entries = []
    noise = iter(np.random.default_rng(1).normal(0, 0.05, 100))  # a real board's scatter, about 5 %
    for layers in (1, 2, 3):
        for width in (256, 512, 1024, 2048, 2560, 3072):
            sizes = [792] + [width] * layers + [4]
            streamed = allocation.split(workload_from_sizes(sizes).param_layers(), base).central.streamed_bytes
            macs = sum(a * b for a, b in zip(sizes, sizes[1:]))
            latency = (intercept + macs * 2e-11 + (3e-4 if streamed else 0) + (streamed + 796) / 4e8) \
                * (1 + next(noise))
            entries.append(entry(f"{layers}x{width}", macs + sum(sizes[1:]), macs, "tpu", "measured", latency,
                                 layer_sizes=sizes, metadata={"connection": "pci"}))
            if (layers, width) == (3, 3072):  # this one was compiled: its log's off-chip bytes are used
                entries[-1]["model"]["compiler"] = {"models": [{"on_chip_used_bytes": 1, "off_chip_streamed_bytes":
                                                                streamed}]}
    assert sum(1 for e in entries if e["latency"]["stats"]["median"] > 1e-3) >= 4  # the sweep crosses the cache
    path = tmp_path / "board.json"
    path.write_text(json.dumps({"entries": entries}))
    fitted, report = fit_board([{"entries": entries}], [str(path)], base, "tpu")
    assert report["link"] == "pcie" and report["split_from"].pop("3x3072") == "compiler log"
    assert set(report["split_from"].values()) == {"modelled allocation"}
    assert report["overhead_s"] == pytest.approx(intercept, rel=0.2)
    assert report["rate_Bps"] == pytest.approx(4e8, rel=0.1)
    device = base.value("tpu", "links", "pcie", "overhead_s")
    assert report["host"] == "coral-dev-board"
    assert report["device_overhead_s"] == pytest.approx(min(device, report["overhead_s"]))
    assert report["host_overhead_s"] == pytest.approx(max(0.0, report["overhead_s"] - device))
    assert fitted["tpu"]["hosts"]["coral-dev-board"]["overhead_s"]["value"] == report["host_overhead_s"]
    assert report["s_per_mac"] == pytest.approx(2e-11, rel=0.2)
    node = fitted["tpu"]["links"]["pcie"]["rate_Bps"]
    assert node["kind"] == "fitted" and node["low"] < node["value"] < node["high"]
    held = report["held_out"]
    rows = held["points"]
    assert sum(r["held_out_inside"] for r in rows) / len(rows) >= 0.7  # split conformal at 80 %: about 80 %
    assert 3 < held["margin_pct"] < 15  # the 80th percentile of about 5 % scatter
    for regime in ("cached", "streamed"):
        assert held["regimes"][regime]["held_out_median_abs_error_pct"] < 10


def test_calibrate_tpu_published_reports_the_band_per_regime():
    out = run_edgecheck("calibrate", "--device", "tpu", "--published").stdout
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith(("cached ", "streamed "))}
    assert set(lines) == {"cached", "streamed"} and "leave one source out" in out
    assert "LE (its own pure-Python USB driver, not libedgetpu" in out  # listed with why it is not used
    # and the band the twin uses: the envelope's leave-one-source-out table, as the README carries it
    from edgecheck.twins.tpufit import envelope_table

    assert all(f"  {line}" in out for line in envelope_table())
