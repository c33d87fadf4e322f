"""A new user's first hour: the terminal answers the question, a user's model is guided to the Edge TPU, a run
that measured nothing says so, and every message agrees with the numbers printed beside it."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from support import INFERENCE, REPO, entry, run, run_edgecheck, run_pytest
from tinytflite import dense_tflite

from edgecheck.judge.answer import _interval_text, answer_lines, platform_findings
from edgecheck.judge.claims import cache_bytes, evaluate, load_thresholds, percent
from edgecheck.judge.compare import _too_close, compare_runs
from edgecheck.judge.roles import TOO_CLOSE_TO_CALL
from edgecheck.outcome import TOO_CLOSE, UNSTABLE
from edgecheck.results import Run, load
from edgecheck.textfmt import pct_over

TH = load_thresholds()
TWINS = REPO / "fixtures" / "baselines" / "twins-default-collar.json"

# --------------------------------------------------------------------------------------------- the answer


def test_the_terminal_answer_says_what_the_report_says_on_the_default_grid():
    """The twins' default baseline: the answer's counts are the chart's winners, each line is labelled, and the
    crossovers and what is too close to call (with what would decide it) are named; short enough for a screen."""
    from edgecheck.judge.chart import winners

    data = load(TWINS)
    lines = answer_lines(platform_findings(data, cache_bytes(TH)))
    for metric in ("energy", "latency"):
        _, ws = winners(data, metric)
        counts = {}
        for w in ws:
            counts[w.winner] = counts.get(w.winner, 0) + 1
        start = next(i for i, line in enumerate(lines) if line.startswith(f"{metric} [simulated]: "))
        block = [lines[start]] + [x for x in lines[start + 1:] if x.startswith("  ")][:0]
        for x in lines[start + 1:]:
            if not x.startswith("  "):
                break
            block.append(x)
        head = block[0]
        best = max((d for d in counts if d != TOO_CLOSE_TO_CALL), key=counts.get)
        assert f"{best} has" in head and f"on {counts[best]} of {len(ws)} architectures" in head
        assert "too close to call has" not in head  # an undecided count is never called a winner
        if counts.get(TOO_CLOSE_TO_CALL):
            assert f"too close to call on {counts[TOO_CLOSE_TO_CALL]}" in head
        close = [w.model for w in ws if w.winner == TOO_CLOSE_TO_CALL]
        said = next(x for x in block if x.strip().startswith("too close to call on"))
        assert f"too close to call on {len(close)}: " in said and all(m in said for m in close[:6])
        assert "what would decide it: measuring the real device instead of the twin" in said and "tpu-sim" in said
    assert sum(line.startswith("  crossover: ") for line in lines) >= 2
    assert len(lines) <= 17  # the answer (with 3 measurements to run first) leaves room for the claims in 60 lines


def test_quiet_run_ends_with_the_answer_and_fits_a_screen(smoke_artifacts, tmp_path):
    """pytest -q on the twins: after the progress, the summary fits 60 lines, ends with the answer and the files
    this run wrote, and pytest-benchmark's own table is not printed (--benchmark-table prints it, in us)."""
    results = tmp_path / "r.json"
    args = ("benchmarks", "--artifacts", str(smoke_artifacts), "--device", "cpu,tpu-sim,a53-sim",
            "--results", str(results), "--processes", "2", "--rounds", "3", "--round-time", "0.001")
    proc = run_pytest(*args, "-q")
    assert proc.returncode == 0, proc.stdout[-3000:]
    out = proc.stdout.splitlines()
    first = next(i for i, line in enumerate(out) if "edgecheck results" in line)
    summary = out[first:]
    assert len(summary) <= 60, "\n".join(summary)
    assert "the full table is in" in summary[1] and "-v prints it" in summary[1]
    answer = next(i for i, line in enumerate(summary) if "edgecheck answer" in line)
    assert summary[answer + 1].startswith("energy [simulated]: ")
    assert any(line.startswith("latency [simulated]: ") for line in summary[answer:])
    assert f"results: {results}" in summary[answer:] and "Mean" not in proc.stdout  # no pytest-benchmark table
    proc = run_pytest(*args, "-q", "--benchmark-table", "--results", str(tmp_path / "r2.json"))
    table = [line for line in proc.stdout.splitlines() if line.startswith("test_")]
    assert proc.returncode == 0 and "(time in us)" in proc.stdout and table, proc.stdout[-3000:]


# ---------------------------------------------------------------------------------------- a user's model

KERAS = """
import sys, numpy as np, tensorflow as tf
def convert(batch):
    m = tf.keras.Sequential([tf.keras.Input((300,), batch_size=batch), tf.keras.layers.Dense(16, activation="relu"),
                             tf.keras.layers.Dense(4)])
    c = tf.lite.TFLiteConverter.from_keras_model(m)
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    c.representative_dataset = lambda: ([np.random.default_rng(i).normal(size=(1, 300)).astype(np.float32)]
                                        for i in range(20))
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    c.inference_input_type = c.inference_output_type = tf.int8
    return c.convert()
open(sys.argv[1], "wb").write(convert(None))
open(sys.argv[2], "wb").write(convert(1))
"""


@pytest.fixture(scope="module")
def keras_models(tmp_path_factory):
    """The usual Keras export (no batch size: dynamic batch) and the fixed one, both full int8 from TensorFlow."""
    pytest.importorskip("tensorflow", reason="converting a Keras model needs the build extra")
    d = tmp_path_factory.mktemp("keras")
    dynamic, fixed = d / "dynamic.tflite", d / "fixed.tflite"
    subprocess.run([sys.executable, "-c", KERAS, str(dynamic), str(fixed)], check=True, capture_output=True,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    return dynamic, fixed


@pytest.mark.integration  # TensorFlow converts two Keras models (tpu-sim's refusal of a dynamic batch: test_allocation)
def test_a_keras_model_with_a_dynamic_batch_gets_its_fix(keras_models):
    dynamic, fixed = keras_models
    out = run_edgecheck("inspect", str(dynamic)).stdout
    assert "DYNAMIC batch dimension: shape signature [-1, 300]" in out, out
    assert "Edge TPU: not runnable: dynamic shape" in out and "keras.Input(shape=(N,), batch_size=1)" in out
    assert "from_concrete_functions" in out
    js = json.loads(run_edgecheck("inspect", "--json", str(dynamic)).stdout)
    assert js["inputs"][0]["dynamic_dimensions"] == [0] and "fix:" in js["edgetpu_refusal"]
    rec = run_edgecheck("recommend", str(dynamic)).stdout
    assert "tpu-sim: not runnable: dynamic shape" in rec and "batch_size=1" in rec and "{" not in rec
    out = run_edgecheck("inspect", str(fixed)).stdout
    assert "DYNAMIC" not in out and "the compiler should accept it" in out


def test_a_refused_model_keeps_its_row_with_the_reason_and_the_fix(tmp_path):
    ok = dense_tflite(tmp_path / "ok.tflite", [64, 32, 4])
    flt = dense_tflite(tmp_path / "float.tflite", [64, 32, 4], float_weights=True)
    results = tmp_path / "r.json"
    proc = run_pytest(INFERENCE, f"--model={ok}", f"--model={flt}", "--device", "tpu-sim,a53-sim",
                      "--results", str(results), "--report", "none")
    assert proc.returncode == 0, proc.stdout[-3000:]
    row = next(line for line in proc.stdout.splitlines() if line.startswith("float ") and "tpu-sim" in line)
    assert "not runnable (below)" in row
    note = next(line for line in proc.stdout.splitlines() if line.startswith("x float on tpu-sim: not runnable: "))
    assert "Model not quantized" in note and "fix: convert to full int8" in note
    assert "inference_input_type = converter.inference_output_type = tf.int8" in note
    kept = load(results).header["not_runnable"]
    assert [(x["model"], x["device"]) for x in kept] == [("float", "tpu-sim")]


def test_recommend_speaks_to_people_and_json_to_machines(tmp_path):
    model = dense_tflite(tmp_path / "m.tflite", [256, 128, 4])
    human = run_edgecheck("recommend", str(model)).stdout
    js = json.loads(run_edgecheck("recommend", str(model), "--json").stdout)
    lines = human.splitlines()
    assert lines[0] == f"{model}: lowest energy per inference on {js['platform']}", human
    assert "simulated by the twins" in lines[1] and not re.search(r"\de-\d", human)  # no raw floats
    tpu = next(line for line in lines if line.startswith("  tpu-sim: latency "))
    lo = js["figures"]["tpu-sim"]["band"]["energy_j"]["low"] * 1e6
    assert f"{lo:.1f} uJ" in tpu or f"{lo:.1f}" in tpu, (tpu, lo)
    assert "twin band" in tpu and "--json" in lines[-1]
    helptext = run_edgecheck("recommend", "--help").stdout
    for words in ("default energy", "default pcie, the Dev Board", "--json", "--results", "same sha256"):
        assert words in " ".join(helptext.split()), words


# -------------------------------------------------------------------------- a run that measured nothing


def test_a_run_with_no_device_writes_nothing_and_says_what_to_try(tmp_path):
    model = dense_tflite(tmp_path / "m.tflite", [64, 32, 4])
    results = tmp_path / "r.json"
    proc = run_pytest(INFERENCE, f"--model={model}", "--device", "tpu", "--results", str(results))
    out = proc.stdout
    assert "nothing measured" in out and "no results file or report was written by this run" in out, out[-3000:]
    assert "to simulate it instead: --device tpu-sim" in out
    assert "results: " not in out and "report: " not in out
    assert not results.exists() and not results.with_suffix(".html").exists()


# ------------------------------------------------------------------- messages that agree with their numbers


def _proc_entry(name, medians):
    from test_compare import entry as proc_entry

    return proc_entry(name, medians)


def test_an_interval_below_one_is_never_a_slowdown_side_too_close_to_call():
    o = _too_close("latency", (0.895, 0.972), 0.05)
    assert o.reason == TOO_CLOSE and o.limit == pytest.approx(1 / 1.05)
    assert "lies below 1 (faster)" in o.detail and "not a slowdown" in o.detail
    assert "regression threshold" not in o.detail
    o = _too_close("latency", (0.99, 1.08), 0.05)
    assert o.limit == pytest.approx(1.05) and "regression threshold x1.050" in o.detail
    # through compare_runs: identical figures but for noise, a run whose processes came out faster
    from test_compare import run_of

    rng = np.random.default_rng(3)
    base = run_of([_proc_entry("m", list(1e-3 * np.exp(rng.normal(0, 0.03, 10))))])
    now = run_of([_proc_entry("m", list(0.93e-3 * np.exp(rng.normal(0, 0.03, 10))))])
    # a machine without drift (drift_sd=0): the model is judged on its own interval, not taken as the run's shift
    row = next(r for r in compare_runs(base, now, [(None, "drift_sd", 0.0)]).rows if r.metric == "latency")
    if row.outcome.reason == TOO_CLOSE and row.ci[1] < 1:
        assert "below 1 (faster)" in row.outcome.detail and row.outcome.limit < 1


def test_the_ratio_and_the_medians_shown_are_named():
    from test_compare import run_of

    base = run_of([_proc_entry("m", [1.00e-5, 1.01e-5, 1.02e-5, 1.10e-5, 0.99e-5])])
    now = run_of([_proc_entry("m", [1.03e-5, 1.00e-5, 1.01e-5, 0.98e-5, 1.005e-5])])
    text = compare_runs(base, now).table()
    assert any(line.startswith("note: baseline, now: medians over every round; ratio: the Hodges-Lehmann")
               for line in text)


def test_an_unstable_verdict_says_why_its_interval_is_not_decisive():
    from test_compare import run_of

    rng = np.random.default_rng(0)
    base = run_of([_proc_entry("4x2048", list(311.5e-6 * np.exp(rng.normal(0, 0.15, 10))))])
    now = run_of([_proc_entry("4x2048", list(404e-6 * np.exp(rng.normal(0, 0.15, 10))))])
    row = next(r for r in compare_runs(base, now).rows if r.metric == "latency")
    assert row.outcome.reason == UNSTABLE, row.outcome
    lo, hi = row.ci
    assert f"x{lo:.3f}-x{hi:.3f} is not trusted to decide" in row.outcome.detail
    assert "never called a regression" in row.outcome.detail


@pytest.mark.parametrize("cv, limit", [(0.1004, 0.10), (0.104, 0.10), (0.15, 0.10), (0.10001, 0.10)])
def test_a_figure_over_its_limit_never_reads_as_equal_to_it(cv, limit):
    text = pct_over(cv, limit)
    shown, lim = (float(x.rstrip("%")) for x in text.split(" > "))
    assert shown > lim == limit * 100


def test_c2_within_holds_on_the_figures_shown_and_a_tiny_saving_is_worded():
    from test_claims import SWEEP, paper_like

    f1s = [0.978, 0.99, 0.995, 1.0, 0.999, 0.98, 0.97, 0.96]
    es = paper_like(f1=lambda i: f1s[i])
    for e, (i, _) in zip(es, [(i, s) for i in range(len(SWEEP)) for s in (0, 1)]):
        e["model"]["metrics"]["int8"]["macro_f1_ci95"] = [f1s[i] - 0.03, min(1.0, f1s[i] + 0.03)]
    c2 = {c.id: c for c in evaluate(run(es), TH)}["C2"]
    m = re.search(r"within (\S+) of the best F1 (\S+) \(upper bound >= (\S+)\)", c2.message)
    assert m, c2.message
    within, best, bound = (float(x) for x in m.groups())
    assert bound == pytest.approx(best - within, abs=1e-3)
    rows = {e["model"]["name"]: e["model"]["metrics"]["int8"]["macro_f1_ci95"][1] for e in es}
    for name in c2.evidence["candidates"]:
        assert rows[name] >= bound - 1e-9  # every candidate's upper bound reaches the bound printed
    assert percent(0.003) == "0.3 %" and percent(0.0498) == "5 %" and percent(0.0) == "0 %"


def test_c1_names_where_its_threshold_comes_from_on_a_users_dataset():
    es = [entry(n, p, m, "cpu", "measured", 1e-5, f1=0.95, f1_ci=(0.90, 0.99), windows=40)
          for n, p, m in [("1x32", 29_000, 28_000)]]
    c1 = {c.id: c for c in evaluate(run(es, dataset="my_windows", synthetic=False), TH)}["C1"]
    assert "vs required 0.800 for dataset 'my_windows' (the claims file's default for a dataset it does not name" \
        in c1.message
    c1 = {c.id: c for c in evaluate(run(es, dataset="basicmotions", synthetic=False), TH)}["C1"]
    assert "vs required 0.850 for dataset 'basicmotions';" in c1.message


def test_an_interval_is_always_printed_as_two_ends():
    assert _interval_text([1.0, 1.0]) == "1–1"
    assert _interval_text([0.04981, 0.04983]) == "0.04981–0.04983"
    assert _interval_text(0.0498) == "0.0498"


def test_c3_message_and_statistic_give_the_same_interval():
    data = load(TWINS)
    c3 = {c.id: c for c in evaluate(data, TH)}["C3"]
    lo, hi = c3.outcome.value
    assert f"interval {lo:.1f}x-{hi:.1f}x" in c3.message, (c3.message, c3.outcome)
    weakest = c3.outcome.statistic.removeprefix("cost ratio of ")
    assert f"({weakest}, interval" in c3.message


def test_the_claims_table_says_a_reason_once():
    from edgecheck.judge.claims import table

    data = Run.coerce(load(TWINS))
    claims = evaluate(data, TH, on_model_list=True)
    lines = table(claims)
    for c in claims:
        assert sum(line.strip() == c.message for line in lines) <= 1


def test_the_twins_form_names_its_worst_model_beside_the_median():
    """A median error never hides a model far off: the worst held-out model is printed beside it."""
    from edgecheck.twins.calibrate import form_summary

    fit = {"fitted_on": ["a"] * 16, "limit_pct": 25, "held_out_mdape_pct": 6.3,
           "held_out": [{"model": "3x1024", "error_pct": 4.0}, {"model": "4x2048", "error_pct": -34.5},
                        {"model": "2x2048", "error_pct": 6.3}]}
    line = form_summary("cpu", fit)
    assert "median error of 6.3 %" in line and "(worst: 4x2048 -34.5 %)" in line


def test_the_inconclusive_footer_counts_agree_with_the_comparison_above_it(smoke_artifacts, tmp_path):
    """With --baseline, the footer's count of inconclusive tests says how many of the comparison's rows above it
    are inconclusive too, and that figure is the comparison's own."""
    base = tmp_path / "base.json"
    args = ("benchmarks", "--artifacts", str(smoke_artifacts), "--device", "cpu", "--processes", "2", "--rounds",
            "3", "--round-time", "0.001")
    first = run_pytest(*args, "--results", str(tmp_path / "r0.json"), "--save-baseline", str(base))
    assert first.returncode == 0, first.stdout[-3000:]
    second = run_pytest(*args, "--results", str(tmp_path / "r1.json"), "--baseline", str(base))
    rows = json.loads((tmp_path / "r1.json").read_text())["comparison"]["rows"]
    n = sum(r["outcome"]["status"] == "inconclusive" for r in rows)
    footer = next(line for line in second.stdout.splitlines() if "inconclusive (counted, never failed)" in line)
    tests = int(re.match(r"(\d+) test\(s\) inconclusive", footer).group(1))
    assert tests == len(re.findall(r"^  test_\S+: inconclusive", second.stdout, re.M))
    if n:
        assert f"the baseline comparison's {n} inconclusive row(s) are listed above" in footer, footer
    else:
        assert "baseline comparison" not in footer
