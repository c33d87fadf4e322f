"""The build stage: data -> spectrograms -> trained networks -> int8 .tflite -> artifacts.

Runs in its own process (``edgecheck build``): it imports TensorFlow, which the
measuring process never does. Content-addressed, so a second build with the
same inputs reuses every file and never imports TensorFlow.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecheck import artifacts as art
from edgecheck.architecture import Architecture, check_size, format_grid, parse_grid, size_of
from edgecheck.build.data import Dataset, load_dataset, split_dataset
from edgecheck.build.spectrogram import Standardizer, config_for, features
from edgecheck.build.train import TrainConfig
from edgecheck.config import DEFAULTS
from edgecheck.environment import BUILD_PACKAGES, git_commit, package_versions
from edgecheck.errors import EdgecheckError
from edgecheck.files import atomic_write_bytes, atomic_write_json, hash_of, sha256_file
from edgecheck.metrics import agreement, drop_ci, scores_with_ci

# Bump when a change to the build would change what a given key produces.
FEATURES_REVISION = 1  # bump when a change would change the features a given key produces
MODEL_REVISION = 2  # 2: float predictions kept, accuracy with bootstrap intervals


@dataclass
class BuildOptions:
    grid: str = DEFAULTS.grid
    dataset: str = "collar"
    channels_last: bool = False  # the .npz's X is [windows, samples, channels]
    out: Path = Path(".edgecheck/artifacts")
    seed: int = 0
    n_fft: int | None = None
    hop: int | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    verbose: bool = False


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _features_file(ds: Dataset, opts: BuildOptions, store: Path, log: Callable[[str], None]) -> tuple[Path, dict]:
    split = split_dataset(ds, seed=opts.seed)
    spec = config_for(ds.sampling_rate, ds.X.shape[2], opts.n_fft, opts.hop)
    key = hash_of({"rev": FEATURES_REVISION, "data": ds.content_hash(), "spec": spec.to_dict(),
                   "split": split.to_dict(), "seed": opts.seed, "cap": opts.train.max_train_windows})[:16]
    path = store / f"features-{key}.npz"
    info = {"key": key, "spectrogram": spec.to_dict(), "split": split.to_dict()}
    if path.is_file():
        why = _stale_features(path)
        if why is None:
            log(f"features: reusing {path.name}")
            return path, info
        log(f"features: not reusing {path.name}: {why}; computing it again")
    t0 = time.perf_counter()
    log(f"features: {ds.X.shape[0]} windows -> log spectrograms (n_fft={spec.n_fft}, hop={spec.hop_length}) ...")
    n = ds.X.shape[0]
    chunks, step = [], max(500, n // 10)  # progress in tenths; a small dataset goes in one piece
    for start in range(0, n, step):
        chunks.append(features(ds.X[start:start + step], spec))
        if n > step:
            log(f"features: {min(start + step, n)}/{n} windows, {time.perf_counter() - t0:.1f} s")
    F = np.concatenate(chunks)
    train = split.train
    if train.size > opts.train.max_train_windows:
        train = np.sort(np.random.default_rng(opts.seed).choice(train, opts.train.max_train_windows, replace=False))
    std = Standardizer.fit(F[train])
    buf = io.BytesIO()
    np.savez(buf, F_train=std.apply(F[train]), y_train=ds.y[train], F_val=std.apply(F[split.val]),
             y_val=ds.y[split.val], F_test=std.apply(F[split.test]), y_test=ds.y[split.test],
             mean=std.mean, std=std.std, n_classes=np.int64(ds.n_classes))
    atomic_write_bytes(path, buf.getvalue())
    # its hash, written last (as a model's entry.json): what a later build checks before reusing the file
    atomic_write_json(_features_record(path), {"path": path.name, "sha256": sha256_file(path),
                                               "bytes": path.stat().st_size})
    log(f"features: {F.shape[1]} per window, done in {time.perf_counter() - t0:.1f} s")
    return path, info


def _features_record(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _stale_features(path: Path) -> str | None:
    """Why a features file in the store cannot be reused (missing or changed since it was written), or None."""
    import json

    try:
        record = json.loads(_features_record(path).read_text())
        expected = record["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"no record of its sha256 ({_features_record(path).name})"
    if sha256_file(path) != expected:
        return "its sha256 does not match the one recorded when it was written (changed or corrupt)"
    return None


def _stale_files(folder: Path, entry: dict) -> str | None:
    """Why a model folder in the store cannot be reused: a file its entry.json lists is missing, changed, or
    outside the folder. None when every file matches its recorded sha256."""
    files = entry["files"]
    if "tflite" not in files:
        return "entry.json lists no model.tflite"
    for name, f in files.items():
        rel = Path(f["path"])
        if rel.is_absolute() or ".." in rel.parts:
            return f"{name}: path {f['path']!r} is outside its folder"
        p = folder / rel
        if not p.is_file():
            return f"{rel} is missing"
        if sha256_file(p) != f["sha256"]:
            return f"{rel} does not match its sha256 (changed or corrupt)"
    return None


@contextlib.contextmanager
def _quiet(enabled: bool):
    """Silence the converter's dumps, which TensorFlow's C++ code writes straight to file descriptors 1
    and 2 (a failed conversion still raises, with its message, once they are restored)."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved + [devnull]:
            os.close(fd)


def time_left(done_s: list[float], left: int) -> float | None:
    """Seconds left for ``left`` models from those built so far: the median so far, per model. Training is
    capped (epochs and windows), so a model's time barely grows with its size, and the first model carries
    TensorFlow's one-time start-up: the median is not thrown by it."""
    if not done_s:
        return None
    return left * float(np.median(done_s))


def _save_npy(path: Path, array: np.ndarray) -> Path:
    buf = io.BytesIO()
    np.save(buf, array)
    return atomic_write_bytes(path, buf.getvalue())


def _build_model(arch: Architecture, z: dict, n_classes: int, opts: BuildOptions, folder: Path,
                 log: Callable[[str], None]) -> dict:
    """Train, convert and evaluate one architecture; writes model.tflite then entry.json.

    The int8 predictions on the test windows are kept, so the measure stage can
    check that a device computes what the build computed."""
    from edgecheck.build.quantize import check_edgetpu_ready, to_int8_tflite
    from edgecheck.build.train import float_predict, train
    from edgecheck.interpreter import make_interpreter, predict

    t0 = time.perf_counter()
    model, tinfo = train(arch, z["F_train"], z["y_train"], z["F_val"], z["y_val"], n_classes, opts.train)
    with _quiet(not opts.verbose):
        tfl = to_int8_tflite(model, z["F_train"])
    tpath = atomic_write_bytes(folder / "model.tflite", tfl)
    summary = check_edgetpu_ready(tpath)
    p_float = float_predict(model, z["F_test"])
    p_int8 = predict(make_interpreter(tpath, threads=1), z["F_test"]).argmax(axis=1)
    ppath = _save_npy(folder / "int8_predictions.npy", p_int8.astype(np.int16))
    fpath = _save_npy(folder / "float_predictions.npy", p_float.astype(np.int16))
    size = size_of(arch, z["F_train"].shape[1], n_classes)
    if size.params != tinfo["keras_params"] or size.weight_bytes != summary["weight_bytes"]:
        raise EdgecheckError(
            f"{arch.name}: size mismatch: formula {size.params} params / {size.weight_bytes} B, Keras "
            f"{tinfo['keras_params']} params, tflite {summary['weight_bytes']} B"
        )
    entry = {
        "name": arch.name,
        "arch": arch.to_dict(),
        "size": size.to_dict(),
        "metrics": {
            "float": scores_with_ci(z["y_test"], p_float, n_classes),
            "int8": scores_with_ci(z["y_test"], p_int8, n_classes),
            "int8_drop_ci95": drop_ci(z["y_test"], p_float, p_int8, n_classes),
            "int8_float_agreement": agreement(p_float, p_int8),
            "test_windows": int(z["y_test"].size),
            "evaluated_by": "build stage: Keras (float) and the host's TFLite interpreter (int8); intervals: "
                            "95 % percentile bootstrap over the test windows",
        },
        "training": tinfo,
        "tflite": {"operators": summary["operators"], "dense_weight_quantization": summary["dense_weight_quantization"],
                   "input": summary["inputs"][0], "output": summary["outputs"][0]},
        "files": {
            "tflite": {"path": "model.tflite", "sha256": sha256_file(tpath), "bytes": tpath.stat().st_size},
            "int8_predictions": {"path": ppath.name, "sha256": sha256_file(ppath), "bytes": ppath.stat().st_size},
            "float_predictions": {"path": fpath.name, "sha256": sha256_file(fpath), "bytes": fpath.stat().st_size},
        },
        "build_seconds": round(time.perf_counter() - t0, 2),
    }
    atomic_write_json(folder / "entry.json", entry)
    return entry


def _compile_for_edgetpu(compiler: str, folder: Path, entry: dict, log: Callable[[str], None]) -> dict:
    """Compile a model with edgetpu_compiler; keep the *_edgetpu.tflite, its log and the parsed figures."""
    from edgecheck.build.compile import compile_model
    from edgecheck.compilerlog import CompilerFailure, parse

    out, text = compile_model(compiler, folder / entry["files"]["tflite"]["path"], folder)
    atomic_write_bytes(folder / "edgetpu_compiler.log", text.encode())
    entry = dict(entry)
    try:
        parsed = parse(text, source=str(folder / "edgetpu_compiler.log"))
    except CompilerFailure as e:
        log(f"build: {entry['name']}: Edge TPU compilation failed: {e}")
        entry["compiler"] = {"failed": e.kind, "message": str(e), "version": e.version}
    else:
        entry["compiler"] = parsed.to_dict()
        for w in parsed.warnings:
            log(f"build: warning: {entry['name']}: {w}")
        if out.is_file():
            entry["files"] = {**entry["files"], "edgetpu_tflite": {
                "path": out.name, "sha256": sha256_file(out), "bytes": out.stat().st_size}}
    atomic_write_json(folder / "entry.json", entry)
    return entry


def build(opts: BuildOptions, log: Callable[[str], None] = _log) -> dict:
    """Build (or reuse) every model of the grid; returns the manifest it wrote."""
    t_start = time.perf_counter()
    archs = parse_grid(opts.grid)
    ds = load_dataset(opts.dataset, seed=opts.seed, channels_last=opts.channels_last)
    out = Path(opts.out)
    store = out / "store"
    fpath, finfo = _features_file(ds, opts, store, log)
    with np.load(fpath, allow_pickle=False) as f:
        z = {k: f[k] for k in f.files}
    n_classes = int(z["n_classes"])
    for arch in archs:  # with the data's real input size, before TensorFlow is imported
        check_size(arch, int(z["F_train"].shape[1]), n_classes, "--grid")
    versions = package_versions(BUILD_PACKAGES)
    # The key holds what shapes a model; TensorFlow/Keras versions too, since they change training numerics.
    tf_versions = {k: versions.get(k) for k in ("tensorflow-cpu", "tensorflow", "keras")}
    entries = []
    todo = []
    for arch in archs:
        key = hash_of({"rev": MODEL_REVISION, "features": finfo["key"], "arch": arch.to_dict(),
                       "train": opts.train.to_dict(), "tf": tf_versions})[:16]
        folder = store / f"model-{key}"
        entry_path = folder / "entry.json"
        entry = None
        if entry_path.is_file():
            import json

            try:
                entry = json.loads(entry_path.read_text())
                why = _stale_files(folder, entry)
            except (ValueError, KeyError, TypeError, AttributeError, OSError) as e:
                why = f"unreadable entry.json ({type(e).__name__})"
            if why is not None:
                log(f"build: not reusing {arch.name} from {folder.name}: {why}; building it again")
                entry = None
        entries.append((arch, folder, entry))
        if entry is None:
            todo.append(arch)
    if todo:
        log(f"build: {len(archs) - len(todo)} of {len(archs)} models reused, training {len(todo)}")
    else:
        log(f"build: all {len(archs)} models reused from {store}")
    from edgecheck.build.compile import compiler_version, find_compiler

    compiler = find_compiler()
    if compiler is None:
        log("build: edgetpu_compiler not found: models are not compiled for the Edge TPU (x86-64 Debian only)")
    done_s: list[float] = []
    built = 0
    models = []
    for arch, folder, entry in entries:
        if entry is None:
            built += 1
            left = time_left(done_s, len(todo) - len(done_s))
            eta = "" if left is None else f", about {left:.0f} s left"
            log(f"build: [{built}/{len(todo)}] training {arch.name}{eta}")
            entry = _build_model(arch, z, n_classes, opts, folder, log)
            done_s.append(entry["build_seconds"])
            m = entry["metrics"]
            log(f"build: {arch.name}: int8 macro-F1 {m['int8']['macro_f1']:.3f} (float {m['float']['macro_f1']:.3f}), "
                f"{entry['build_seconds']:.1f} s")
        if compiler and "compiler" not in entry:
            entry = _compile_for_edgetpu(compiler, folder, entry, log)
        rel = folder.relative_to(out)
        e = dict(entry)
        e["files"] = {k: {**v, "path": str(rel / v["path"])} for k, v in entry["files"].items()}
        models.append(e)
    manifest = {
        "schema": art.MANIFEST_SCHEMA,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "grid": {"spec": opts.grid, "architectures": format_grid(archs)},
        "dataset": ds.describe(),
        "features": {"path": str(fpath.relative_to(out)), "sha256": sha256_file(fpath),
                     "n_features": int(z["F_test"].shape[1]), **finfo},
        "seed": opts.seed,
        "train": opts.train.to_dict(),
        "versions": versions,
        "git": git_commit(),
        "edgetpu_compiler": {"path": compiler, "version": compiler_version(compiler)} if compiler else None,
        "models": models,
        "build_seconds": round(time.perf_counter() - t_start, 2),
    }
    atomic_write_json(out / art.MANIFEST_NAME, manifest)
    log(f"build: wrote {out / art.MANIFEST_NAME} ({len(models)} models) in {manifest['build_seconds']:.1f} s")
    return manifest
