"""A user's dataset files (.npz, long .csv, a UCI HAR folder) read and checked with numpy only.

The build reads them in its own process (TensorFlow there); the pytest plugin and the ``edgecheck`` command read
them at configure time, before that process starts, so a dataset in the wrong layout, with NaN or extreme values,
or labels and groups that do not match its windows, is one usage error naming the file and the fix. A dataset is
plain arrays: ``X`` [windows, channels, samples], integer labels ``y``, optional ``groups`` (animal or subject:
the train/test split keeps each group on one side) and the sampling rate in Hz.
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


MAX_ABS_VALUE = 1e9  # |X| above this is a fill value (3e38 for "missing") or a unit mistake, never a sensor reading
MIN_SAMPLES = 8  # the shortest spectrogram frame edgecheck uses (build.spectrogram.config_for)
LAYOUT_MARGIN = 4  # channels >= 4x samples: almost surely X saved as [windows, samples, channels]


def check_layout(shape: tuple[int, ...], where: str, channels_last: bool = False) -> None:
    """X's shape, as [windows, channels, samples] (after --channels-last's transpose): a 2-D X or one whose
    channels outnumber its samples by a wide margin is refused with the likely mistake and its fix."""
    if len(shape) == 2:
        raise EdgecheckError(f"{where}: X is 2-D, shape {tuple(shape)}; X must have shape [windows, channels, "
                             f"samples]: for one channel per window save X[:, None, :] (shape ({shape[0]}, 1, "
                             f"{shape[1]}))")
    if len(shape) != 3:
        raise EdgecheckError(f"{where}: X must have shape [windows, channels, samples], got shape {tuple(shape)}")
    n, channels, samples = shape
    if n == 0 or channels == 0 or samples == 0:
        raise EdgecheckError(f"{where}: X has an empty dimension: shape {tuple(shape)}")
    if channels >= LAYOUT_MARGIN * samples:
        if channels_last:
            raise EdgecheckError(f"{where}: with --channels-last X reads as {channels} channels of {samples} samples "
                                 "each; if X is already [windows, channels, samples], drop --channels-last")
        raise EdgecheckError(f"{where}: X looks like [windows, samples, channels] (shape {tuple(shape)} reads as "
                             f"{channels} channels of {samples} samples each): transpose it (X.transpose(0, 2, 1)) "
                             "or pass --channels-last")
    if samples < MIN_SAMPLES:
        raise EdgecheckError(f"{where}: windows of {samples} samples are too short for a spectrogram (at least "
                             f"{MIN_SAMPLES}); X must have shape [windows, channels, samples]")


def validate(ds: Dataset, where: str) -> Dataset:
    """Check shapes, values and labels; ``where`` names the file or dataset in errors."""
    X, y = ds.X, ds.y
    if not isinstance(X, np.ndarray):
        raise EdgecheckError(f"{where}: X must have shape [windows, channels, samples], got {type(X).__name__}")
    check_layout(X.shape, where)
    if np.iscomplexobj(X):
        raise EdgecheckError(f"{where}: X is complex ({X.dtype}); give real sensor values (e.g. magnitude and phase "
                             "as separate channels)")
    if not np.issubdtype(X.dtype, np.number) or X.dtype.kind == "b":
        raise EdgecheckError(f"{where}: X must be numeric, got dtype {X.dtype}")
    if len(ds.channel_names) != X.shape[1]:
        names = ", ".join(map(str, ds.channel_names[:8])) + (", ..." if len(ds.channel_names) > 8 else "")
        raise EdgecheckError(f"{where}: {len(ds.channel_names)} channel names for {X.shape[1]} channels ({names})")
    check_values(X, where)
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise EdgecheckError(f"{where}: y has {y.shape[0] if y.ndim else 0} labels but X has {X.shape[0]} windows")
    if ds.groups is not None:
        g = np.asarray(ds.groups)
        if g.ndim != 1 or g.shape[0] != X.shape[0]:
            raise EdgecheckError(f"{where}: groups has {g.shape[0] if g.ndim else 0} entries but X has {X.shape[0]} "
                                 "windows (one group id per window: the animal or subject it came from)")
    rate = ds.sampling_rate
    if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, (int, float, np.number)) \
            or not (np.isfinite(rate) and rate > 0):
        raise EdgecheckError(f"{where}: sampling_rate must be a positive number of Hz, got {rate!r}")
    classes = np.unique(y)
    if classes.size < 2:
        raise EdgecheckError(f"{where}: needs at least 2 classes, found {classes.size} ({classes.tolist()})")
    if X.shape[0] < classes.size:
        raise EdgecheckError(f"{where}: {X.shape[0]} windows are fewer than the {classes.size} classes")
    ds.X = X.astype(np.float32, copy=False)
    ds.y = y
    return ds


def check_values(X: np.ndarray, where: str) -> None:
    """Every value of X finite and within +-MAX_ABS_VALUE (then float32 holds it and its spectrogram)."""
    finite = np.isfinite(X)
    if not finite.all():
        bad = np.flatnonzero(~finite.all(axis=(1, 2)))
        raise EdgecheckError(f"{where}: X contains NaN or infinite values in {bad.size} window(s) (first: window "
                             f"{bad[0]}); drop those windows or fill the gaps before building")
    big = np.abs(X) > MAX_ABS_VALUE
    if big.any():
        bad = np.flatnonzero(big.any(axis=(1, 2)))
        raise EdgecheckError(f"{where}: X has values beyond +-{MAX_ABS_VALUE:.0e} in {bad.size} window(s) (first: "
                             f"window {bad[0]}, largest {float(np.max(np.abs(X))):.3g}); no sensor reads that much: "
                             "a fill value for missing data or a unit mistake? edgecheck takes |X| <= "
                             f"{MAX_ABS_VALUE:.0e}")


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
        frac = np.flatnonzero(labels != np.round(labels))
        if frac.size:
            raise EdgecheckError(f"{where}: y holds fractional numbers ({labels[frac[0]]:g} at window {frac[0]}); y is "
                                 "one class per window: whole numbers or text")
    text = labels.astype(str)
    empty = np.flatnonzero(np.char.strip(text) == "") if text.size else np.array([], int)
    if empty.size:
        raise EdgecheckError(f"{where}: {empty.size} label(s) are empty (first at window {empty[0]}); every window "
                             "needs a class")
    names, codes = np.unique(text, return_inverse=True)
    return codes.reshape(-1).astype(np.int64), [str(n) for n in names]


def load_npz(path: Path, channels_last: bool = False) -> Dataset:
    """A user's windows: arrays X [n, channels, samples] ([n, samples, channels] with ``channels_last``), y,
    optional groups, and sampling_rate (Hz)."""
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
    if channels_last and X.ndim == 3:
        X = X.transpose(0, 2, 1)
    check_layout(X.shape, str(path), channels_last)
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


def load_file(path: Path, channels_last: bool = False) -> Dataset:
    """A user's dataset file or folder: a .npz archive, a long .csv, or a UCI HAR folder, read and checked.
    ``channels_last``: the .npz's X is [windows, samples, channels] (transposed here)."""
    if path.is_dir():
        ds = load_uci_har(path)
    elif path.suffix.lower() == ".npz":
        return load_npz(path, channels_last)
    elif path.suffix.lower() == ".csv":
        ds = load_csv(path)
    else:
        raise EdgecheckError(f"{path}: not a .npz or .csv file, nor a UCI HAR directory")
    if channels_last:
        raise EdgecheckError(f"--channels-last: applies to a .npz dataset's X; {path} gives its channels by name")
    return ds
