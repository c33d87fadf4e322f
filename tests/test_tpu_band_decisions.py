"""Decisions on twin figures with a band: a winner that changes inside the band is too close to call and names
the interval (chart cell, C5's crossover, recommend's pick), C6 counts such cells as disagreements, and two
rows of one twin move together (C2, C3). C5's claim (a crossover exists) is decided whenever its answer is the same
at every point of the band; only the crossover's place is then too close to call."""
import pytest
from support import entry, run
from tinytflite import dense_tflite

from edgecheck.judge.chart import build_chart
from edgecheck.judge.claims import evaluate, load_thresholds
from edgecheck.judge.recommend import recommend
from edgecheck.judge.roles import TOO_CLOSE_TO_CALL, ratio_interval
from edgecheck.judge.tables import results_table
from edgecheck.outcome import INCONCLUSIVE, TOO_CLOSE
from edgecheck.results import rows

TH = load_thresholds()
SWEEP = [(f"{L}x{w}", L, w) for L in (1, 2, 3, 4) for w in (16, 32, 64, 128, 256, 1024)]


def banded(e: dict, rel: float) -> dict:
    """A twin entry with a band of +-rel around its central latency and energy."""
    lat, en = e["latency"]["stats"]["median"], e["energy"]["total_j"]
    e["latency"]["band"] = {"low": lat * (1 - rel), "central": lat, "high": lat * (1 + rel)}
    e["energy"]["band"] = {"low": en * (1 - rel), "central": en, "high": en * (1 + rel)}
    e["energy"]["band_j"] = [en * (1 - rel), en * (1 + rel)]
    return e


def sweep(rel: float) -> dict:
    """The A53 costs what the work costs; the TPU is flat: they cross near 30,000 MACs. The TPU has a band."""
    es = []
    for name, L, w in SWEEP:
        macs = 100 * w + (L - 1) * w * w + 4 * w
        a53, tpu = 2e-6 + macs / 3e9, 1.2e-5
        es.append(entry(name, macs + 100, macs, "a53-sim", "simulated", a53, a53 * 3.5))
        es.append(banded(entry(name, macs + 100, macs, "tpu-sim", "simulated", tpu, tpu * 4.5), rel))
    return run(es)


def test_exact_figures_decide_every_cell_and_c5_holds():
    data = sweep(0.0)
    c = {x.id: x for x in evaluate(data, TH)}
    assert c["C5"].holds and not c["C5"].evidence["too_close"]
    assert "outcome" not in c["C5"].evidence["crossover"]  # its place is decided too
    assert TOO_CLOSE_TO_CALL not in {w.winner for w in build_chart(data).winners}


def test_a_band_makes_the_crossover_too_close_and_names_the_interval():
    data = sweep(0.4)
    chart = build_chart(data)
    close = [w for w in chart.winners if w.winner == TOO_CLOSE_TO_CALL]
    assert close, "a 40 % band must leave cells near the crossover undecided"
    label = close[0].label()
    assert label.startswith("too close") and "tpu-sim" in label and "[" in label  # every device's interval
    assert label.count("\n") == 3  # too close, tpu-sim figure, its interval, a53-sim figure (exact)
    assert close[0].intervals["tpu-sim"][0] < close[0].values["a53-sim"] < close[0].intervals["tpu-sim"][1]
    c = {x.id: x for x in evaluate(data, TH)}
    c5 = c["C5"]
    assert c5.holds and c5.outcome.status == "pass", c5.outcome.summary  # a crossover at every point of the band
    lo, hi = c5.outcome.value
    assert c5.outcome.statistic == "crossover MACs" and lo < hi
    place = c5.evidence["crossover"]["outcome"]
    assert place["status"] == INCONCLUSIVE and place["reason"] == TOO_CLOSE and place["limit"] == 0
    assert place["value"] == len(c5.evidence["crossover"]["too_close_between"])
    assert f"({lo} MACs)" in place["detail"] and f"({hi} MACs)" in place["detail"]
    assert "could go either way" in place["detail"]
    assert set(c5.evidence["crossover"]["too_close_between"]) <= {w.model for w in close}
    assert c5.evidence["crossover"]["too_close_between"]
    # C6 counts the undecided cells as disagreements: never a pass, inconclusive while they could all agree
    c6 = c["C6"]
    assert set(c6.evidence["too_close"]) == {w.model for w in close}
    assert c6.outcome.status != "pass"
    if c6.outcome.status == INCONCLUSIVE:
        assert c6.outcome.reason == TOO_CLOSE and c6.outcome.value[0] < TH["C6"]["min_agreement"]


def test_rows_of_one_twin_pair_their_band_ends():
    rs = {(r.model, r.device): r for r in rows(sweep(0.3))}
    a, b = rs[("1x16", "tpu-sim")], rs[("4x1024", "tpu-sim")]
    assert a.twin_band and b.twin_band
    assert ratio_interval(a, b, "energy_j") == pytest.approx((1.0, 1.0))  # same band, same constants
    lo, hi = ratio_interval(rs[("1x16", "a53-sim")], b, "energy_j")  # another device: independent intervals
    assert lo < hi


def test_the_table_shows_the_band(tmp_path):
    text = "\n".join(results_table(sweep(0.25)))
    assert "[" in text and "the twin's central value with its band" in text


def test_recommend_says_too_close_to_call_inside_the_band(tmp_path):
    """A model whose A53 energy lies inside the Edge TPU twin's band: no pick, the interval named."""
    picks = {}
    for width in (64, 1024, 4096):
        rec = recommend(dense_tflite(tmp_path / f"m{width}.tflite", [891, width, 4]))
        picks[width] = rec
    assert picks[64]["platform"] == "a53" and picks[4096]["platform"] == "tpu"
    close = picks[1024]
    assert close["platform"] == "too close to call" and close["outcome"]["reason"] == TOO_CLOSE
    lo, hi = close["interval"]["tpu-sim"]
    assert lo < close["interval"]["a53-sim"] < hi and "too-close-to-call" in close["reason"]


def test_a_band_so_wide_that_the_smallest_are_undecided_leaves_c5_inconclusive():
    """With a 95 % band even the smallest architectures are too close to call: whether the A53 wins them, and so
    whether there is a crossover, changes inside the band."""
    c5 = {x.id: x for x in evaluate(sweep(0.95), TH)}["C5"]
    assert c5.outcome.status == INCONCLUSIVE and c5.outcome.reason == TOO_CLOSE, c5.outcome.summary
    assert "1x16" in c5.outcome.detail and "costs less on tpu-sim" in c5.message


def custom(winners: str) -> dict:
    """One architecture per letter of ``winners``, in MACs order: a (A53 conclusively cheaper), t (TPU
    conclusively cheaper), ? (the TPU's band spans the A53's figure)."""
    es = []
    for i, w in enumerate(winners):
        macs = 10_000 * 2 ** i  # 10 k ... (the largest above 1 M MACs for 8 or more letters)
        a53 = 1e-3
        tpu = {"a": 2e-3, "t": 0.5e-3, "?": 1.1e-3}[w]
        es.append(entry(f"m{i}", macs + 100, macs, "a53-sim", "simulated", a53 / 3.5, a53))
        es.append(banded(entry(f"m{i}", macs + 100, macs, "tpu-sim", "simulated", tpu / 4.5, tpu),
                         0.5 if w == "?" else 0.0))
    return run(es)


def test_smallest_sure_but_no_sure_tpu_win_leaves_c5_inconclusive():
    c5 = {x.id: x for x in evaluate(custom("aa??????"), TH)}["C5"]
    assert c5.outcome.status == INCONCLUSIVE and c5.outcome.reason == TOO_CLOSE, c5.outcome.summary
    assert "none costs conclusively less on the TPU" in c5.outcome.detail
    assert "no architecture costs conclusively less on the TPU" in c5.message


def test_an_undecided_architecture_before_later_a53_wins_widens_the_crossover():
    """a a ? a a t t t: m2 could already be cheaper on the TPU, so the first crossover lies between m1 and m5,
    not between m4 and m5; the claim still holds (m5 is surely cheaper on the TPU)."""
    c5 = {x.id: x for x in evaluate(custom("aa?aattt"), TH)}["C5"]
    assert c5.holds, c5.outcome.summary
    cross = c5.evidence["crossover"]
    assert (cross["a53_wins"]["model"], cross["tpu_wins"]["model"]) == ("m1", "m5")
    assert cross["too_close_between"] == ["m2"] and cross["outcome"]["value"] == 1
    assert "m1 (20000 MACs) and m5 (320000 MACs): m2 could go either way" in cross["outcome"]["detail"]
    decided = {x.id: x for x in evaluate(custom("aaaaattt"), TH)}["C5"]
    assert decided.holds and "outcome" not in decided.evidence["crossover"]
    assert decided.evidence["crossover"]["a53_wins"]["model"] == "m4"


def a53_sweep(a53_rel: float) -> dict:
    """As ``sweep`` with exact TPU figures, and a band of +-a53_rel on the A53 twin's figures."""
    es = []
    for name, L, w in SWEEP:
        macs = 100 * w + (L - 1) * w * w + 4 * w
        a53, tpu = 2e-6 + macs / 3e9, 1.2e-5
        es.append(banded(entry(name, macs + 100, macs, "a53-sim", "simulated", a53, a53 * 3.5), a53_rel))
        es.append(entry(name, macs + 100, macs, "tpu-sim", "simulated", tpu, tpu * 4.5))
    return run(es)


def test_the_a53_band_alone_makes_cells_too_close_to_call():
    """The chart and C5 use both twins' bands: with the TPU exact, a cell decided on exact A53 figures turns too
    close to call once the A53's band reaches across the TPU's figure, and the interval named is the A53's."""
    exact = {w.model: w.winner for w in build_chart(a53_sweep(0.0)).winners}
    assert TOO_CLOSE_TO_CALL not in exact.values()
    chart = build_chart(a53_sweep(0.4))
    turned = [w for w in chart.winners if w.winner == TOO_CLOSE_TO_CALL]
    assert turned and all(exact[w.model] != TOO_CLOSE_TO_CALL for w in turned)
    lo, hi = turned[0].intervals["a53-sim"]
    assert lo < turned[0].values["tpu-sim"] < hi  # the TPU's exact figure lies inside the A53's band
    c5 = {x.id: x for x in evaluate(a53_sweep(0.4), TH)}["C5"]
    assert c5.evidence["too_close"], c5.evidence  # the crossover's place is too close to call


def test_the_a53_twin_has_a_band_from_its_documented_ranges(tmp_path):
    """Every A53 constant with a range moves the band; the central value is the one without a band."""
    from edgecheck.twins.model import load_constants, predict_a53, workload

    c = load_constants()
    p = predict_a53(workload(dense_tflite(tmp_path / "m.tflite", [300, 256, 6])), c)
    band = p.band["latency_s"]
    assert band["low"] < band["central"] == p.latency_s < band["high"]
    for key in ("clock_hz", "macs_per_cycle", "l2_bytes", "l2_Bps", "dram_Bps_per_core", "dram_Bps_total",
                "invoke_overhead_s", "op_overhead_s"):
        low, value, high = c.range("a53", key)
        assert low <= value <= high and low < high, key  # each end is a source or a stated assumption
        node = c.data["a53"][key]
        assert node["range_source"]["low"] and node["range_source"]["high"], key


def both_banded(tpu_rel: float, a53_rel: float) -> dict:
    es = []
    for name, L, w in SWEEP:
        macs = 100 * w + (L - 1) * w * w + 4 * w
        a53, tpu = 2e-6 + macs / 3e9, 1.2e-5
        es.append(banded(entry(name, macs + 100, macs, "a53-sim", "simulated", a53, a53 * 3.5), a53_rel))
        es.append(banded(entry(name, macs + 100, macs, "tpu-sim", "simulated", tpu, tpu * 4.5), tpu_rel))
    return run(es)


def test_what_would_decide_it_names_a_measurement_that_decides_a_cell():
    """The first suggested measurement, injected as a board's result at the twin's central figure with a
    measured interval, decides its cell; the list is empty when nothing is open."""
    from edgecheck.judge.decide import lines, suggestions

    data = both_banded(0.4, 0.3)
    chart = build_chart(data)
    open_before = {w.model for w in chart.winners if w.winner == TOO_CLOSE_TO_CALL}
    first = suggestions(chart)[0]
    assert first.decides and first.model in open_before and first.device in ("tpu", "a53")
    assert first.command == f'pytest benchmarks --device {first.device} -k "{first.model}"'
    assert any(first.command in line for line in lines(chart))
    twin = next(e for e in data["entries"] if e["model"]["name"] == first.model and e["device"]["name"] == first.twin)
    central = twin["energy"]["total_j"]
    lat = twin["latency"]["stats"]["median"]
    board = entry(first.model, twin["model"]["size"]["params"], twin["model"]["size"]["macs"], first.device,
                  "measured", lat, central, latency_ci=(lat * 0.99, lat * 1.01), energy_ci=(central * 0.99,
                                                                                          central * 1.01))
    after = build_chart(run(data["entries"] + [board]))
    cell = next(w for w in after.winners if w.model == first.model)
    assert cell.winner != TOO_CLOSE_TO_CALL and cell.kinds[first.device] == "measured"
    open_after = {w.model for w in after.winners if w.winner == TOO_CLOSE_TO_CALL}
    assert len(open_after) < len(open_before)
    assert suggestions(build_chart(sweep(0.0))) == [] and lines(build_chart(sweep(0.0))) == []


def test_what_would_decide_it_reaches_the_terminal_and_the_report():
    """On the twins' default run (the committed baseline) the answer in the terminal and the report's answer both
    list the ranked measurements, each with its command."""
    from support import REPO

    from edgecheck.judge.answer import answer_lines, platform_findings
    from edgecheck.judge.chart import build_chart
    from edgecheck.judge.decide import suggestions
    from edgecheck.judge.report import html_report
    from edgecheck.results import load

    path = REPO / "fixtures" / "baselines" / "twins-default-collar.json"
    run_ = load(path)
    first = suggestions(build_chart(run_))[0]
    terminal = "\n".join(answer_lines(platform_findings(run_, 8178892)))
    assert f"measure first (1): {first.model} on {first.device}" in terminal and first.command in terminal
    page = html_report([(str(path), run_)])
    assert f"{first.model} on {first.device}" in page and first.command.replace('"', "&quot;") in page
