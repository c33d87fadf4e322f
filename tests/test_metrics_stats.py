import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from edgecheck.metrics import _macro_f1_resampled, accuracy, agreement, macro_f1
from edgecheck.stats import median_ci, summarize

labels = st.lists(st.integers(0, 4), min_size=1, max_size=60)


@settings(max_examples=200)
@given(labels, st.data())
def test_macro_f1_matches_scikit_learn(y_true, data):
    y_pred = data.draw(st.lists(st.integers(0, 4), min_size=len(y_true), max_size=len(y_true)))
    assert np.isclose(macro_f1(y_true, y_pred), f1_score(y_true, y_pred, average="macro", zero_division=0))


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 7), st.integers(1, 60), st.integers(1, 40), st.integers(0, 2**32 - 1))
def test_every_bootstrap_resample_has_the_macro_f1_of_its_windows(n, windows, resamples, seed):
    """The vectorized bootstrap (one confusion matrix per resample) gives each resample the macro-F1 that
    ``macro_f1`` gives its windows, labels that are no class (-1, n) included."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n, windows)
    p = np.where(rng.random(windows) < 0.7, y, rng.integers(-1, n + 1, windows))
    idx = rng.integers(0, windows, (resamples, windows))
    got = _macro_f1_resampled(y, p, idx, n)
    want = [macro_f1(y[i], p[i], n) for i in idx]
    assert np.allclose(got, want, rtol=1e-12, atol=0, equal_nan=True)


def test_accuracy_and_agreement():
    assert accuracy([0, 1, 1, 2], [0, 1, 2, 2]) == 0.75
    assert agreement([1, 1], [1, 0]) == 0.5


def test_summarize():
    s = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["median"] == 3.0 and s["min"] == 1.0 and s["max"] == 100.0 and s["n"] == 5
    assert s["iqr"] == s["q3"] - s["q1"] == 2.0
    assert s["cv"] > 1  # the outlier makes it unstable
    assert summarize([2.0] * 10)["cv"] == 0


def test_median_ci_contains_median_and_narrows():
    rng = np.random.default_rng(0)
    small = rng.lognormal(0, 0.1, 20)
    big = rng.lognormal(0, 0.1, 2000)
    lo, hi = median_ci(small)
    assert lo <= np.median(small) <= hi
    lo2, hi2 = median_ci(big)
    assert hi2 - lo2 < hi - lo


def test_the_harness_overhead_check_passes_fails_and_says_when_it_cannot_tell():
    from edgecheck.measure.timing import paired_overhead

    rng = np.random.default_rng(0)
    bare = list(1.4e-6 * (1 + rng.normal(0, 0.01, 80)))
    same = [b * (1 + rng.normal(0, 0.002)) for b in bare]
    assert paired_overhead(same, bare)[0] == "pass"
    unpacking = [b + 80e-9 for b in same]  # pytest-benchmark's f(*args, **kwargs) per invoke: +80 ns
    # within what two copies of one loop differ by in a process (+-0.1 us here): not called either way
    assert paired_overhead(unpacking, bare)[0] == "inconclusive"
    assert paired_overhead([b + 200e-9 for b in same], bare)[0] == "fail"  # beyond twice the limit (70 ns)
    noisy = [b + rng.normal(0, 1e-6) for b in bare]  # a difference interval of about +-0.3 us around 0
    assert paired_overhead(noisy, bare)[0] == "inconclusive"
    faster = [b - 94e-9 for b in same]  # measured once here: the harness's loop 0.094 us faster than the bare one
    assert paired_overhead(faster, bare)[0] == "pass"  # it adds nothing: one-sided
