"""The harness's own overhead: pytest-benchmark's timing of a round against a bare ``invoke()`` loop.

edgecheck hands pytest-benchmark a round (a loop that calls the bound ``invoke``
N times, no argument unpacking), so the harness adds one call per round, not
one per invoke. This checks it on the smallest and the largest model of the
grid: A/B rounds interleaved in one process (the bare round before the timed
one on odd rounds, after it on even rounds, so drift cancels), compared on the
paired differences. Pass: the interval of the median difference lies below
5 % of the bare loop (or 50 ns); fail: it lies entirely above twice that (two
copies of one loop differed by up to 8 % in one process here, wherever the
code landed; a harness measured faster than the bare loop adds nothing);
otherwise the
noise left it open, and the rounds are measured again (at most once more,
half as many again) before the check is called inconclusive.
"""
import time

import numpy as np
import pytest

from edgecheck.config import DEFAULTS
from edgecheck.interpreter import make_interpreter
from edgecheck.measure.timing import iterations_for, paired_overhead, seconds_per_invoke

PAIRS = 40


def _decide(a: list[float], b: list[float]):
    return paired_overhead(a, b, 0.05, 5e-8)  # 5 %, or 50 ns on the fastest models


@pytest.mark.parametrize("which", ["smallest", "largest"])
def test_harness_overhead(which, edgecheck_session, benchmark):
    local = [d for d in edgecheck_session.selection.devices if d.kind == "measured" and not d.remote
             and d.name in ("cpu", "a53")]
    built = [m for m in edgecheck_session.models if m.origin == "built"]
    if not local or not built:
        pytest.skip("inconclusive: not-testable: local cpu or a53 device with built models = none, limit 1")
    model = min(built, key=lambda m: m.size["params"]) if which == "smallest" else \
        max(built, key=lambda m: m.size["params"])
    interp = make_interpreter(model.tflite, threads=local[0].threads)
    invoke = interp.invoke
    # rounds as long as the suite's own (5 ms): the overhead checked is the one its rounds carry (10 ms rounds
    # here took 2.9 s of every make bench; the limit is per invoke, so a shorter round only widens the noise)
    n = iterations_for(seconds_per_invoke(invoke), DEFAULTS.round_seconds)
    loop = range(n)

    def one_round() -> None:  # what edgecheck hands pytest-benchmark
        for _ in loop:
            invoke()

    bare: list[float] = []

    def bare_round() -> None:
        start = time.perf_counter()
        for _ in loop:
            invoke()
        bare.append((time.perf_counter() - start) / n)

    count = [0]

    def before():
        count[0] += 1
        if count[0] % 2:
            bare_round()

    def after():
        if count[0] % 2 == 0:
            bare_round()

    for _ in range(2):  # warm up here: pytest-benchmark's warm-up rounds would run setup and teardown too
        one_round()
    benchmark.pedantic(one_round, setup=before, teardown=after, rounds=2 * PAIRS)
    timed = [d / n for d in benchmark.stats.stats.data]
    outcome, med, ci, limit = _decide(timed, bare)
    extra = 0
    if outcome == "inconclusive":  # measured again: the same round, the same clock, half as many pairs more
        for i in range(PAIRS):
            order = (one_round, bare_round) if i % 2 else (bare_round, one_round)
            for f in order:
                if f is one_round:
                    start = time.perf_counter()
                    one_round()
                    timed.append((time.perf_counter() - start) / n)
                else:
                    f()
            extra += 1
        outcome, med, ci, limit = _decide(timed, bare)
    text = (f"{model.name}: harness {np.median(timed) * 1e6:.3f} us, bare loop {np.median(bare) * 1e6:.3f} us per "
            f"invoke, paired difference {med * 1e6:+.3f} us (95 % CI {ci[0] * 1e6:+.3f} to {ci[1] * 1e6:+.3f}; "
            f"limit +{limit * 1e6:.3f} us, fail beyond +{2 * limit * 1e6:.3f} us; {len(bare)} pairs"
            f"{', measured again' if extra else ''})")
    print(text)
    benchmark.extra_info.update({"model": model.name, "device": local[0].name, "check": "harness overhead",
                                 "paired_difference_s": med, "difference_ci_s": list(ci),
                                 "limit_s": limit})
    if outcome == "inconclusive":
        pytest.skip(f"inconclusive: too-close-to-call: median paired difference 95 % CI = "
                    f"[{ci[0] * 1e6:+.3g}, {ci[1] * 1e6:+.3g}] us, limit +{limit * 1e6:.3g} us ({text})")
    assert outcome == "pass", f"the harness adds more than the limit: {text}"
