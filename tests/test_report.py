"""Decision chart, recommend and the HTML report."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

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
    out = json.loads(run_edgecheck("recommend", str(m.tflite), "--metric", "latency").stdout)
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


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(CHROMIUM is None,
                    reason="headless Chromium is not installed (Debian package chromium; .ci/run installs it)")
def test_report_opens_in_a_headless_browser(tmp_path):
    data = grid_results(lambda L, w: "tpu" if macs_of(L, w) >= 20_000 else "a53")
    page = tmp_path / "report.html"
    page.write_text(html_report([("constructed.json", data)], budget_s=1.5e-4))
    base = [CHROMIUM, *FLAGS, f"--user-data-dir={tempfile.mkdtemp()}"]
    dom = subprocess.run(base + ["--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom",
                                 page.as_uri()], capture_output=True, text=True, timeout=120)
    n_img = page.read_text().count("<img ")
    assert n_img >= 4 and f'data-images-loaded="{n_img}/{n_img}"' in dom.stdout
    assert "CONSOLE" not in dom.stderr or "Uncaught" not in dom.stderr
    assert dom.stdout.count("class=\"claim\"") == 6
    shot = tmp_path / "shot.png"
    subprocess.run(base + [f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()], capture_output=True,
                   timeout=120)
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[0] > 100 and float(pixels.std()) > 0.01  # not a uniform colour


def test_report_cli_and_the_run_writes_one(smoke_artifacts, tmp_path):

    results = tmp_path / "r.json"
    proc = run_pytest(INFERENCE, "--artifacts", str(smoke_artifacts), "--device", "cpu,tpu-sim,a53-sim",
                      "--results", str(results), *FAST)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert f"report: {results.with_suffix('.html')}" in proc.stdout
    assert "<h2>Claims</h2>" in results.with_suffix(".html").read_text()
    out = tmp_path / "other.html"
    run_edgecheck("report", str(results), "-o", str(out), "--rate", "1")
    assert "Battery view at 1 inferences per second" in out.read_text()


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
