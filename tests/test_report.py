"""Decision chart, recommend and the HTML report."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from support import FAST, INFERENCE, entry, run, run_edgecheck, run_pytest

from edgecheck import artifacts as art
from edgecheck.errors import EdgecheckError
from edgecheck.judge.chart import build_chart, winners
from edgecheck.judge.claims import c6, load_thresholds
from edgecheck.judge.recommend import recommend
from edgecheck.judge.report import html_report

N_IN, N_OUT = 100, 4


def macs_of(layers, width):
    sizes = [N_IN] + [width] * layers + [N_OUT]
    return sum(a * b for a, b in zip(sizes, sizes[1:]))


def grid_results(winner_of):
    """Results over layers 1-4 x widths whose energy winner is ``winner_of(layers, width)``."""
    es = []
    for layers in (1, 2, 3, 4):
        for width in (16, 32, 64, 128, 256, 512):
            sizes = [N_IN] + [width] * layers + [N_OUT]
            macs = sum(a * b for a, b in zip(sizes, sizes[1:]))
            params = macs + sum(sizes[1:])
            tpu_e, a53_e = (1.0, 2.0) if winner_of(layers, width) == "tpu" else (2.0, 1.0)
            name = f"{layers}x{width}"
            es.append(entry(name, params, macs, "tpu-sim", "simulated", 1e-4 * tpu_e, 1e-4 * tpu_e))
            es.append(entry(name, params, macs, "a53-sim", "simulated", 1e-4 * a53_e, 1e-4 * a53_e))
    return run(es)


def test_known_winner_map_and_rules():
    # the TPU wins once the network does enough work, as the paper's crossover says
    def rule(L, w):
        return "tpu" if macs_of(L, w) >= 20_000 else "a53"

    data = grid_results(rule)
    devices, ws = winners(data)
    assert devices == ["tpu-sim", "a53-sim"]
    assert {(w.layers, w.width): w.winner for w in ws} == {
        (L, w): rule(L, w) + "-sim" for L in (1, 2, 3, 4) for w in (16, 32, 64, 128, 256, 512)}
    assert all(w.input_size == N_IN for w in ws)
    chart = build_chart(data)
    assert chart.provenance == "simulated" and chart.loo_agreement >= 0.95
    assert "input_size" in chart.rules_text or "macs" in chart.rules_text or "params" in chart.rules_text
    claim = c6(data, load_thresholds())
    assert claim.holds and claim.status == "holds in simulation"


def test_c6_fails_on_a_map_no_shallow_rule_explains():
    rng = np.random.default_rng(0)
    coin = {(L, w): rng.random() < 0.5 for L in (1, 2, 3, 4) for w in (16, 32, 64, 128, 256, 512)}
    claim = c6(grid_results(lambda L, w: "tpu" if coin[(L, w)] else "a53"), load_thresholds())
    assert claim.holds is False and claim.status == "does not hold"


def test_c6_not_testable_on_too_few_architectures():
    data = grid_results(lambda L, w: "tpu" if macs_of(L, w) >= 20_000 else "a53")
    data["entries"] = [e for e in data["entries"] if e["model"]["name"] in ("1x16", "1x32", "4x512")]
    claim = c6(data, load_thresholds())
    assert claim.outcome.status == "inconclusive" and claim.outcome.reason == "not-testable"
    assert (claim.outcome.value, claim.outcome.limit) == (3, 8)


def test_latency_budget_and_missing_platform():
    data = grid_results(lambda L, w: "tpu")
    chart = build_chart(data, "latency", budget_s=1.5e-4)
    assert {w.winner for w in chart.winners} == {"tpu-sim"}
    none = build_chart(data, "latency", budget_s=1e-6)
    assert {w.winner for w in none.winners} == {"none"}
    only = run([e for e in data["entries"] if e["device"]["name"] == "tpu-sim"])
    with pytest.raises(EdgecheckError, match="needs results for two platforms"):
        build_chart(only)


def test_recommend_a_built_model(smoke_artifacts):
    m = art.load(smoke_artifacts).models[0]
    rec = recommend(m.tflite, "energy")
    assert rec["platform"] in ("tpu", "a53") and rec["source"].startswith("simulated by the twins")
    assert rec["macs"] == m.size["macs"]
    out = json.loads(run_edgecheck("recommend", str(m.tflite), "--metric", "latency", "--json").stdout)
    assert out["metric"] == "latency" and set(out["figures"]) == {"tpu-sim", "a53-sim"}


HAND_MADE = """
import sys, numpy as np, tensorflow as tf
dense = tf.keras.Sequential([tf.keras.Input((10,), batch_size=1), tf.keras.layers.Dense(7, activation="tanh"),
                             tf.keras.layers.Dense(3)])
open(sys.argv[1], "wb").write(tf.lite.TFLiteConverter.from_keras_model(dense).convert())
conv = tf.keras.Sequential([tf.keras.Input((8, 8, 1), batch_size=1), tf.keras.layers.Conv2D(2, 3),
                            tf.keras.layers.Flatten(), tf.keras.layers.Dense(3)])
open(sys.argv[2], "wb").write(tf.lite.TFLiteConverter.from_keras_model(conv).convert())
"""


def test_recommend_a_model_edgecheck_did_not_build(tmp_path):
    dense, conv = tmp_path / "float_tanh.tflite", tmp_path / "conv.tflite"
    subprocess.run([sys.executable, "-c", HAND_MADE, str(dense), str(conv)], check=True, capture_output=True,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    rec = recommend(dense)
    assert rec["macs"] == 10 * 7 + 7 * 3 and rec["platform"] in ("tpu", "a53")
    proc = run_edgecheck("recommend", str(conv), check=False)
    assert proc.returncode == 2 and "cannot cost CONV_2D" in proc.stderr


def test_report_cli_and_the_run_writes_one(smoke_artifacts, tmp_path):

    results = tmp_path / "r.json"
    proc = run_pytest(INFERENCE, "--artifacts", str(smoke_artifacts), "--device", "cpu,tpu-sim,a53-sim",
                      "--results", str(results), *FAST)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert f"report: {results.with_suffix('.html')}" in proc.stdout
    page = results.with_suffix(".html").read_text()
    assert "<h2>The answer</h2>" in page and "<h2>Claims</h2>" in page and "<pre" not in page
    out = tmp_path / "other.html"
    run_edgecheck("report", str(results), "-o", str(out), "--rate", "3")
    battery = json.loads(re.search(r"<script type='application/json' id='battery-data'>(.*?)</script>",
                                   out.read_text()).group(1))
    assert battery["detail_rate"] == 3 and battery["rates"] == [1, 3, 10, 100]
    assert {d["name"] for d in battery["devices"]} == {"tpu-sim", "a53-sim"}  # the cpu has no energy figure
    for bad in ("0", "nan", "-2"):
        proc = run_edgecheck("report", str(results), "--rate", bad, check=False)
        assert proc.returncode == 2 and "--rate" in proc.stderr and "Traceback" not in proc.stderr


def test_c6_without_scikit_learn_is_skipped_with_the_reason(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_sklearn(name, *a, **k):
        if name.startswith("sklearn"):
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    claim = c6(grid_results(lambda L, w: "tpu" if macs_of(L, w) >= 20_000 else "a53"), load_thresholds())
    assert claim.holds is None and "need scikit-learn" in claim.message


def test_chart_cli_writes_png_svg_and_rules(tmp_path):
    p = tmp_path / "run.json"
    p.write_text(json.dumps(grid_results(lambda L, w: "tpu" if macs_of(L, w) >= 20_000 else "a53")))
    proc = run_edgecheck("chart", str(p), "-o", str(tmp_path / "out"))
    assert "simulated; leave-one-architecture-out agreement" in proc.stdout
    names = {f.name for f in (tmp_path / "out").iterdir()}
    assert names == {"decision-chart-energy.png", "decision-chart-energy.svg", "decision-chart-energy.rules.txt",
                     "decision-chart-energy.json"}
    rules = json.loads((tmp_path / "out" / "decision-chart-energy.json").read_text())["rules"]
    assert "if" in rules and (tmp_path / "out" / "decision-chart-energy.png").read_bytes()[:4] == b"\x89PNG"


def test_numbers_are_never_in_e_notation():
    from hypothesis import given
    from hypothesis import strategies as st

    from edgecheck.textfmt import fmt_energy, fmt_eng, fmt_number, fmt_power, fmt_time

    @given(st.floats(min_value=1e-12, max_value=1e15))
    def check(v):
        for text in (fmt_number(v), fmt_number(-v), fmt_eng(v, "J", "µ"), fmt_power(v, "µ"), fmt_time(v, "µ"),
                     fmt_energy(v, "µ")):
            assert not re.search(r"\d[eE][+-]?\d", text), text

    check()
    assert (fmt_number(229120), fmt_number(0.000123456), fmt_number(1234.5), fmt_number(0.5)) == \
        ("229k", "0.000123", "1234", "0.5")
    assert fmt_eng(5e-4, "s", "µ") == "500 µs" and fmt_energy(0.0204, "µ") == "20.40 mJ"


def test_intervals_say_their_units_and_twin_bands_are_shown():
    from edgecheck.judge.tables import results_table
    from edgecheck.results import BAND_LABEL, rows
    from edgecheck.textfmt import fmt_interval, fmt_time

    assert fmt_interval(9e-4, 1.1e-3, fmt_time) == "[900.0 us, 1.10 ms]"
    assert fmt_interval(1e-4, 2e-4, fmt_time) == "[100.0, 200.0 us]"
    data = run([entry("1x32", 1000, 900, "tpu-sim", "simulated", 4e-5, 1.8e-4, band=(3.6e-5, 4e-5, 4.6e-5),
                      energy_band=(1.6e-4, 1.8e-4, 2.1e-4)),
                entry("1x32", 1000, 900, "a53-sim", "simulated", 2e-5, 8e-5)])
    tpu, a53 = sorted(rows(data, failed=True), key=lambda r: r.device_label, reverse=True)
    assert (tpu.latency_interval.low, tpu.latency_interval.high, tpu.latency_interval.label) == \
        (3.6e-5, 4.6e-5, BAND_LABEL)
    assert tpu.energy_interval.label == BAND_LABEL and a53.latency_interval is None
    assert any("40.0 us [36.0, 46.0 us]" in line for line in results_table(data))


def test_the_answer_names_winners_crossovers_and_the_band():
    from edgecheck.judge.answer import answer
    from edgecheck.judge.claims import cache_bytes, evaluate, load_thresholds
    from edgecheck.results import by_size, rows

    data = grid_results(lambda L, w: "tpu" if macs_of(L, w) >= 20_000 else "a53")
    for e in data["entries"]:
        if e["device"]["name"] == "tpu-sim":
            v = e["latency"]["stats"]["median"]
            e["latency"]["band"] = {"low": v * 0.9, "central": v, "high": v * 1.2}
    th = load_thresholds()
    charts = {m: build_chart(data, m) for m in ("energy", "latency")}
    claims = evaluate(data, th)
    found = answer(charts, by_size(rows(data, failed=True)), claims, cache_bytes(th))
    energy = next(f for f in found if f.topic == "energy")
    tpu_wins = sum(macs_of(L, w) >= 20_000 for L in (1, 2, 3, 4) for w in (16, 32, 64, 128, 256, 512))
    assert energy.headline == (f"a53-sim has the least energy per inference on {24 - tpu_wins} of 24 "
                               f"architectures; tpu-sim on {tpu_wins}")
    assert energy.label == "simulated" and energy.crossovers and all("→" in c for c in energy.crossovers)
    latency = next(f for f in found if f.topic == "latency")
    assert any("twin band" in f for f in latency.figures)
    assert [f.topic for f in found if f.status] == ["C1", "C2", "C3", "C4", "C5", "C6"]
    assert all(f.label in ("measured", "simulated", "not tested", "measured on synthetic data") for f in found)


def test_a_run_of_the_host_alone_still_gets_a_report():
    # a quick look (--device cpu): no second platform, no energy; the page says so instead of failing
    page = html_report([("cpu.json", run([entry("1x32", 28676, 28640, "cpu", "measured", 2e-6)]))])
    assert "no answer on energy: decision chart: needs results for two platforms" in page
    assert "No device has both energy per inference and idle power" in page and "<pre" not in page
    assert "no model has both an energy figure and an accuracy" in page


def test_the_battery_data_and_its_arithmetic():
    from edgecheck.judge.battery import battery_data, life_hours

    data = grid_results(lambda L, w: "tpu" if macs_of(L, w) >= 20_000 else "a53")
    data["entries"].append(entry("1x16", 2000, 1700, "cpu", "measured", 1e-6))  # no energy: left out, named
    b = battery_data(data, rates=(1, 10, 100), detail_rate=5)
    assert b["rates"] == [1, 5, 10, 100] and b["roles"] == {"tpu": "tpu-sim", "a53": "a53-sim"}
    assert b["left_out"] == {"cpu": "no energy per inference"}
    idle = {d["name"]: d["idle_w"] for d in b["devices"]}
    assert idle == {"tpu-sim": 3.07, "a53-sim": 3.07}  # the twins' board, a published figure
    f = b["models"][0]["figures"]["tpu-sim"]
    assert f["dynamic_j"] == pytest.approx(max(f["energy_j"] - 3.07 * f["latency_s"], 0.0))
    assert life_hours(10, 10, 3.0, 0.1, 1e-3) == pytest.approx(10 / (3.0 + 1.0))
    assert life_hours(10, 2000, 3.0, 0.1, 1e-3) is None  # busy 200 % of the time


def test_json_in_the_page_cannot_end_its_script_block():
    from edgecheck.judge.report import script_json

    tricky = {"m": "</script><script>alert(1)</script><!--", "n": "a\u2028b & c"}
    text = script_json(tricky)
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == tricky


def test_figures_render_png_only_when_it_can_be_the_smaller():
    """An SVG under SVG_SURELY_SMALLER is embedded without rendering the PNG (1 s of every report); a large one
    (thousands of points) gets the PNG too, and the smaller is embedded; the decision chart's files ask for both."""
    from edgecheck.judge import figures

    plt = figures._plt()
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [3, 1, 2], "o")
    small = figures._render(fig)
    assert small.png is None and small.smaller()[0] == "image/svg+xml"
    fig, ax = plt.subplots()
    ax.plot(np.random.default_rng(0).random(20000), np.random.default_rng(1).random(20000), ".")
    large = figures._render(fig)
    assert len(large.svg.encode()) > figures.SVG_SURELY_SMALLER and large.png[:4] == b"\x89PNG"
    assert large.smaller() == ("image/png", large.png)
    fig, ax = plt.subplots()
    ax.plot([1, 2], [2, 1])
    both = figures._render(fig, png=True)
    assert both.png[:4] == b"\x89PNG" and both.smaller()[0] == "image/svg+xml"
