"""The harness's own overhead: pytest-benchmark's timing loop against a bare invoke() loop.

A/B rounds interleaved (alternating which goes first) on the smallest and the
largest model of the grid; the median paired difference must be within 5 % of
the bare loop's median or 2 us.
"""
import time

import numpy as np
import pytest

from edgecheck.interpreter import make_interpreter

PAIRS = 40


@pytest.mark.parametrize("which", ["smallest", "largest"])
def test_harness_overhead(which, edgecheck_session, benchmark):
    local = [d for d in edgecheck_session.selection.devices if d.kind == "measured" and not d.remote
             and d.name in ("cpu", "a53")]
    built = [m for m in edgecheck_session.models if m.origin == "built"]
    if not local or not built:
        pytest.skip("needs a local cpu or a53 device and built models")
    model = min(built, key=lambda m: m.size["params"]) if which == "smallest" else \
        max(built, key=lambda m: m.size["params"])
    interp = make_interpreter(model.tflite, threads=local[0].threads)
    invoke = interp.invoke
    # The exact loop pytest-benchmark times each round with (a private helper: this benchmark checks the harness itself).
    harness = benchmark._make_runner(invoke, (), {})
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 0.01:
        invoke()
        n += 1
    loops = range(max(1, n))
    for _ in range(3):
        harness(loops)
    a, b = [], []
    for i in range(PAIRS):
        for order in ((0, 1) if i % 2 == 0 else (1, 0)):
            if order == 0:
                a.append(harness(loops) / len(loops))
            else:
                start = time.perf_counter()
                for _ in loops:
                    invoke()
                b.append((time.perf_counter() - start) / len(loops))
    med_a, med_b = float(np.median(a)), float(np.median(b))
    # paired: each A round is compared with the B round next to it, so machine drift cancels
    med_diff = float(np.median(np.array(a) - np.array(b)))
    print(f"{model.name}: harness {med_a * 1e6:.3f} us, bare loop {med_b * 1e6:.3f} us per invoke, "
          f"paired difference {med_diff * 1e6:+.3f} us")
    assert abs(med_diff) <= max(0.05 * med_b, 2e-6), (med_a, med_b, med_diff)
