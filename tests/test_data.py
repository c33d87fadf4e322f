import numpy as np
import pytest

from edgecheck.build.data import (
    COLLAR_CLASSES,
    UCI_HAR_SIGNALS,
    CollarConfig,
    basic_motions,
    load_dataset,
    split_dataset,
    synthetic_collar,
)
from edgecheck.errors import EdgecheckError

SMALL = CollarConfig(animals=4, windows_per_animal=60)


def test_synthetic_is_deterministic():
    a, b = synthetic_collar(SMALL), synthetic_collar(SMALL)
    assert a.X.tobytes() == b.X.tobytes() and a.y.tobytes() == b.y.tobytes()
    assert a.content_hash() == b.content_hash()
    c = synthetic_collar(CollarConfig(animals=4, windows_per_animal=60, seed=1))
    assert c.content_hash() != a.content_hash()


def test_synthetic_shape_and_nuisance():
    ds = load_dataset("collar")
    assert ds.X.shape == (6000, 3, 256) and ds.X.dtype == np.float32
    assert ds.sampling_rate == 25.0 and ds.class_names == COLLAR_CLASSES
    counts = np.bincount(ds.y)
    assert counts.min() < 0.5 * counts.max()  # unequal class sizes
    assert len(np.unique(ds.groups)) == 10
    # per-animal gain/orientation: the mean gravity vector of resting windows differs between animals
    means = [ds.X[(ds.groups == g) & (ds.y == 0)].mean(axis=(0, 2)) for g in range(3)]
    assert max(np.abs(means[0] - m).max() for m in means[1:]) > 0.05


def test_group_split_has_no_leakage():
    ds = load_dataset("collar")
    sp = split_dataset(ds, seed=3)
    assert not set(ds.groups[sp.train]) & set(ds.groups[sp.test])
    assert not set(ds.groups[sp.val]) & set(ds.groups[sp.test])
    assert sp.train.size + sp.val.size + sp.test.size == ds.X.shape[0]
    assert "by group" in sp.how


def test_basicmotions_ships_offline():
    ds = basic_motions()
    assert ds.X.shape == (80, 6, 100) and ds.n_classes == 4
    sp = split_dataset(ds)
    assert sp.test.size == 40 and sp.how == "fixed by the dataset"


def _npz(tmp_path, name="d.npz", **arrays):
    p = tmp_path / name
    np.savez(p, **arrays)
    return p


def test_npz_loads(tmp_path):
    rng = np.random.default_rng(0)
    p = _npz(tmp_path, X=rng.normal(size=(12, 2, 64)), y=np.array(["a", "b", "c"] * 4),
             groups=np.repeat(np.arange(4), 3), sampling_rate=np.array(50.0))
    ds = load_dataset(str(p))
    assert ds.X.shape == (12, 2, 64) and ds.class_names == ["a", "b", "c"] and ds.sampling_rate == 50.0


@pytest.mark.parametrize("arrays, message", [
    (dict(X=np.zeros((4, 2, 3, 5)), y=np.arange(4) % 2, sampling_rate=10.0), "X must have shape"),
    (dict(X=np.full((4, 1, 8), np.nan), y=np.arange(4) % 2, sampling_rate=10.0), "NaN"),
    (dict(X=np.zeros((4, 1, 8)), y=np.zeros(4), sampling_rate=10.0), "at least 2 classes"),
    (dict(X=np.zeros((2, 1, 8)), y=np.array([0, 1]), sampling_rate=10.0), None),
    (dict(X=np.zeros((2, 1, 8)), y=np.array([0, 1, 2]), sampling_rate=10.0), "3 labels but X has 2"),
    (dict(X=np.zeros((4, 1, 8)), y=np.arange(4) % 2, groups=np.arange(3), sampling_rate=10.0), "groups has 3"),
    (dict(X=np.zeros((4, 1, 8)), y=np.arange(4) % 2), "missing array"),
    (dict(X=np.zeros((4, 1, 8)), y=np.arange(4) % 2, sampling_rate=-1.0), "sampling_rate must be"),
])
def test_npz_bad_input(tmp_path, arrays, message):
    p = _npz(tmp_path, **arrays)
    if message is None:
        assert load_dataset(str(p)).X.shape[0] == 2
        return
    with pytest.raises(EdgecheckError, match=message) as e:
        load_dataset(str(p))
    assert str(p) in str(e.value)


def test_too_few_windows_per_class_is_refused_at_the_split(tmp_path):
    from edgecheck.build.data import Dataset, validate

    ds = validate(Dataset("tiny", np.zeros((4, 1, 8), np.float32), np.array([0, 1, 2, 3]), 10.0,
                          ["a", "b", "c", "d"], ["c0"]), "tiny")
    with pytest.raises(EdgecheckError, match="4 windows are too few for 4 classes"):
        split_dataset(ds)


def test_unknown_and_missing(tmp_path):
    with pytest.raises(EdgecheckError, match="unknown dataset 'cows'"):
        load_dataset("cows")
    with pytest.raises(EdgecheckError, match="not found"):
        load_dataset(str(tmp_path / "nope.npz"))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(EdgecheckError, match="cannot read as .npz"):
        load_dataset(str(bad))


def _write_csv(path, windows, n=16, rate=20.0, channels=("ax", "ay")):
    lines = ["window,label,group,time," + ",".join(channels)]
    rng = np.random.default_rng(1)
    for w, label in enumerate(windows):
        for i in range(n):
            vals = ",".join(f"{v:.4f}" for v in rng.normal(size=len(channels)))
            lines.append(f"w{w},{label},g{w % 3},{i / rate:.4f},{vals}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_loads(tmp_path):
    ds = load_dataset(str(_write_csv(tmp_path / "d.csv", ["walk", "rest", "walk", "rest"])))
    assert ds.X.shape == (4, 2, 16) and ds.class_names == ["rest", "walk"]
    assert ds.sampling_rate == pytest.approx(20.0, rel=1e-3) and len(set(ds.groups)) == 3


def test_csv_bad_input(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("window,label,ax\nw0,a,1\n")
    with pytest.raises(EdgecheckError, match="missing column 'time'"):
        load_dataset(str(p))
    p.write_text("window,label,time,ax\nw0,a,0,1\nw0,a,0.1,x\nw1,b,0,1\nw1,b,0.1,2\n")
    with pytest.raises(EdgecheckError, match="non-numeric"):
        load_dataset(str(p))
    p.write_text("window,label,time,ax\nw0,a,0,1\nw0,a,0.1,1\nw1,b,0,1\n")
    with pytest.raises(EdgecheckError, match="different lengths"):
        load_dataset(str(p))


def test_uci_har_layout(tmp_path):
    """The real UCI HAR folder layout, with tiny contents."""
    rng = np.random.default_rng(0)
    for part, n, subjects in (("train", 6, [1, 1, 3, 3, 5, 5]), ("test", 4, [2, 2, 4, 4])):
        sig_dir = tmp_path / part / "Inertial Signals"
        sig_dir.mkdir(parents=True)
        for sig in UCI_HAR_SIGNALS + ["body_acc_x"]:
            np.savetxt(sig_dir / f"{sig}_{part}.txt", rng.normal(size=(n, 128)), fmt="%.6e")
        np.savetxt(tmp_path / part / f"y_{part}.txt", (np.arange(n) % 3 + 1)[:, None], fmt="%d")
        np.savetxt(tmp_path / part / f"subject_{part}.txt", np.array(subjects)[:, None], fmt="%d")
    ds = load_dataset(str(tmp_path))
    assert ds.X.shape == (10, 6, 128) and ds.sampling_rate == 50.0
    assert ds.class_names == ["walking", "walking_upstairs", "walking_downstairs"]
    sp = split_dataset(ds)
    assert not set(ds.groups[sp.train]) & set(ds.groups[sp.test])
    (tmp_path / "test" / "Inertial Signals" / "total_acc_x_test.txt").unlink()
    with pytest.raises(EdgecheckError, match="total_acc_x_test.txt: file not found"):
        load_dataset(str(tmp_path))


# --------------------------------------------------------------------------
# A user's dataset in the wrong layout or with wrong values: refused with the likely mistake and the fix
# --------------------------------------------------------------------------


def _user_npz(tmp_path, X, name="mine.npz", **extra):
    n = X.shape[0]
    arrays = dict(X=X, y=np.arange(n) % 2, groups=np.arange(n) % 4, sampling_rate=np.array(50.0))
    arrays.update(extra)
    return _npz(tmp_path, name, **arrays)


def test_transposed_x_is_refused_with_the_fix_and_channels_last_reads_it(tmp_path):
    """X saved as [n, samples, channels] (256 samples of 3 channels) read as 256 channels of 3 samples used to be
    built, with only a librosa warning; now it is refused, naming the transpose and --channels-last."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 256, 3))
    p = _user_npz(tmp_path, X)
    with pytest.raises(EdgecheckError) as e:
        load_dataset(str(p))
    msg = str(e.value)
    assert "\n" not in msg and str(p) in msg
    assert "X looks like [windows, samples, channels]" in msg and "256 channels of 3 samples" in msg
    assert "X.transpose(0, 2, 1)" in msg and "--channels-last" in msg
    ds = load_dataset(str(p), channels_last=True)
    assert ds.X.shape == (16, 3, 256) and np.array_equal(ds.X[5, 2], X[5, :, 2].astype(np.float32))
    # --channels-last on a file that was right already: said, not silently transposed into nonsense
    good = _user_npz(tmp_path, rng.normal(size=(16, 3, 256)), name="good.npz")
    with pytest.raises(EdgecheckError, match="with --channels-last X reads as 256 channels of 3 samples each; if X "
                                             r"is already \[windows, channels, samples\], drop --channels-last"):
        load_dataset(str(good), channels_last=True)


def test_two_dimensional_x_is_refused_with_the_fix(tmp_path):
    p = _user_npz(tmp_path, np.zeros((10, 64)))
    with pytest.raises(EdgecheckError, match=r"X is 2-D, shape \(10, 64\); X must have shape \[windows, channels, "
                                             r"samples\]: for one channel per window save X\[:, None, :\] \(shape "
                                             r"\(10, 1, 64\)\)"):
        load_dataset(str(p))


@pytest.mark.parametrize("value, message", [
    (np.nan, r"X contains NaN or infinite values in 1 window\(s\) \(first: window 3\)"),
    (np.inf, r"X contains NaN or infinite values in 1 window\(s\) \(first: window 3\)"),
    (3e38, r"X has values beyond \+-1e\+09 in 1 window\(s\) \(first: window 3, largest 3e\+38\)"),
    (-3e38, r"largest 3e\+38"),
    (2e9, r"largest 2e\+09"),
])
def test_values_not_finite_or_out_of_range_are_refused(tmp_path, value, message):
    X = np.zeros((8, 2, 32), np.float32)
    X[3, 1, 7] = value
    with pytest.raises(EdgecheckError, match=message):
        load_dataset(str(_user_npz(tmp_path, X)))
    X[3, 1, 7] = 1e9  # the stated limit itself is accepted
    assert load_dataset(str(_user_npz(tmp_path, X, name="edge.npz"))).X.shape == (8, 2, 32)


@pytest.mark.parametrize("extra, message", [
    (dict(y=np.array([0.5, 1.0] * 4)), r"y holds fractional numbers \(0.5 at window 0\)"),
    (dict(y=np.arange(5) % 2), "y has 5 labels but X has 8 windows"),
    (dict(groups=np.arange(7)), r"groups has 7 entries but X has 8 windows \(one group id per window"),
    (dict(groups=np.zeros((8, 2))), "groups must hold one id per window"),
    (dict(sampling_rate=np.array(0.0)), "sampling_rate must be a positive number of Hz, got 0.0"),
    (dict(sampling_rate=np.array("50 Hz")), "sampling_rate must be one real number"),
    (dict(sampling_rate=np.array(np.inf)), "sampling_rate must be a positive number of Hz"),
])
def test_labels_groups_and_rate_are_checked(tmp_path, extra, message):
    with pytest.raises(EdgecheckError, match=message):
        load_dataset(str(_user_npz(tmp_path, np.zeros((8, 2, 32)), **extra)))


def test_a_bad_dataset_stops_pytest_before_the_build_starts(tmp_path):
    """Through pytest itself: a transposed .npz is a usage error (exit 4) at configure time, one line naming the
    file, the mistake and --channels-last, and no build was started (no artifacts folder, no TensorFlow)."""
    from support import REPO, run_pytest

    p = _user_npz(tmp_path, np.random.default_rng(0).normal(size=(16, 256, 3)))
    build = tmp_path / "artifacts"
    proc = run_pytest(str(REPO / "benchmarks"), "--dataset", str(p), "--build-dir", str(build), "--device", "cpu",
                      "--results", str(tmp_path / "r.json"))
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"--dataset: {p}: X looks like [windows, samples, channels]" in proc.stderr
    assert "--channels-last" in proc.stderr and "building" not in proc.stdout
    assert not build.exists() and not (tmp_path / "r.json").exists()
