"""The build stage: data -> spectrograms -> trained networks -> int8 .tflite -> artifacts.

Runs in its own process (``edgecheck build``): it imports TensorFlow, which the
measuring process never does. Content-addressed, so a second build with the
same inputs reuses every file and never imports TensorFlow.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecheck import artifacts as art
from edgecheck.architecture import Architecture, check_size, format_grid, parse_grid, size_of
from edgecheck.build import cache as shared_cache
from edgecheck.build import pool
from edgecheck.build.data import NAMED_DATASETS, Dataset, load_dataset, split_dataset
from edgecheck.build.spectrogram import Standardizer, config_for, features
from edgecheck.build.train import TrainConfig
from edgecheck.config import DEFAULTS
from edgecheck.environment import BUILD_PACKAGES, git_commit, package_versions
from edgecheck.errors import EdgecheckError
from edgecheck.files import atomic_write_bytes, atomic_write_json, hash_of, sha256_file
from edgecheck.metrics import agreement, drop_ci, scores_with_ci

# Bump when a change to the build would change what a given key produces.
FEATURES_PACKAGES = ("numpy", "scipy")  # the features' numerics: numpy's rfft, scipy's window (spectrogram.stft)
MODEL_PACKAGES = ("tensorflow-cpu", "tensorflow", "keras", "ai-edge-litert")  # the model's numerics
FEATURES_REVISION = 1  # bump when a change would change the features a given key produces
MODEL_REVISION = 2  # 2: float predictions kept, accuracy with bootstrap intervals
WIDEN_METHOD = "zero-weight neurons added after training"  # how a --widen variant is made (in its model key)


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
    jobs: int = 1  # networks trained at once (worker processes); 1 trains them here, one after the other
    executor: str = pool.LOCAL  # or dask://HOST:PORT
    cache: Path | None = None  # the shared build cache (cache.cache_root), None for none
    widen: float = 0.0  # a variant: every model's first hidden layer widened so its MACs grow by about this %


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _features_file(ds: Dataset, opts: BuildOptions, store: Path, versions: dict,
                   log: Callable[[str], None]) -> tuple[Path, dict]:
    split = split_dataset(ds, seed=opts.seed)
    spec = config_for(ds.sampling_rate, ds.X.shape[2], opts.n_fft, opts.hop)
    key = hash_of({"rev": FEATURES_REVISION, "data": ds.content_hash(), "spec": spec.to_dict(),
                   "split": split.to_dict(), "seed": opts.seed, "cap": opts.train.max_train_windows,
                   "versions": {k: versions.get(k) for k in FEATURES_PACKAGES}})[:16]
    path = store / f"features-{key}.npz"
    info = {"key": key, "spectrogram": spec.to_dict(), "split": split.to_dict()}
    if path.is_file():
        why = _stale_features(path)
        if why is None:
            log(f"features: reusing {path.name}")
            return path, info
        log(f"features: not reusing {path.name}: {why}; computing it again")
    if opts.cache is not None:
        why = shared_cache.fetch_features(opts.cache / "store", path)
        if why is None:
            log(f"features: reusing {path.name} from the shared cache {opts.cache} (sha256 checked)")
            return path, info
        if why != "not in the shared cache":
            log(f"features: not reusing {path.name} from the shared cache: {why}")
    t0 = time.perf_counter()
    log(f"features: {ds.X.shape[0]} windows -> log spectrograms (n_fft={spec.n_fft}, hop={spec.hop_length}) ...")
    n = ds.X.shape[0]
    chunks, step = [], max(500, n // 10)  # in tenths; a small dataset goes in one piece
    said = t0
    for start in range(0, n, step):
        chunks.append(features(ds.X[start:start + step], spec))
        now = time.perf_counter()
        if now - said >= 5 and start + step < n:  # progress only when it is slow enough to wait for
            log(f"features: {start + step}/{n} windows, {now - t0:.1f} s")
            said = now
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
    if opts.cache is not None:
        record = _features_record(path)
        _publish(opts, store, [path.name], (record.name, json.loads(record.read_text())), log)
    return path, info


_features_record = shared_cache.features_record
_stale_features = shared_cache.stale_features
_stale_files = shared_cache.stale_files


def _publish(opts: BuildOptions, local: Path, files: list[str], record: tuple[str, dict],
             log: Callable[[str], None], folder: str = "") -> None:
    """Keep built files (in ``local``) in the shared cache's store too, under ``folder`` (a model's); a cache that
    cannot be written is said, never fatal."""
    why = shared_cache.publish(local, opts.cache / "store" / folder, files, record)
    if why:
        log(f"build: could not keep {record[0]} in the shared cache {opts.cache}: {why}")


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


def time_left(done_s: list[float], left: int, workers: int = 1) -> float | None:
    """Seconds left for ``left`` models from those built so far on ``workers`` at once: the median so far, per
    model, for each round of the pool. Training is capped (epochs and windows), so a model's time barely grows
    with its size, and a worker's first model carries TensorFlow's one-time start-up: the median is not thrown
    by it."""
    if not done_s:
        return None
    return -(-left // max(1, workers)) * float(np.median(done_s))


def _save_npy(path: Path, array: np.ndarray) -> Path:
    buf = io.BytesIO()
    np.save(buf, array)
    return atomic_write_bytes(path, buf.getvalue())


def model_files(arch: Architecture, z: dict, opts: dict, folder: Path) -> dict:
    """Train, convert and evaluate one architecture, writing its files (``pool.MODEL_FILES``) into ``folder``;
    returns its entry without the files' record. ``opts``: {"train": TrainConfig as a dict, "verbose": bool}.

    The int8 predictions on the test windows are kept, so the measure stage can
    check that a device computes what the build computed."""
    from edgecheck.build.quantize import check_edgetpu_ready, to_int8_tflite
    from edgecheck.build.train import float_predict, train, widen_trained
    from edgecheck.interpreter import make_interpreter, predict

    n_classes = int(z["n_classes"])
    # a --widen variant trains its grid architecture (the same seed, so the same weights as the base's), then gets
    # its first layer's extra neurons with zero weights: more work, the same predictions
    base = Architecture(arch.layers, arch.width, arch.activation)
    model, tinfo = train(base, z["F_train"], z["y_train"], z["F_val"], z["y_val"], n_classes,
                         TrainConfig(**opts["train"]))
    if arch.first_width is not None:
        model = widen_trained(model, arch, z["F_train"].shape[1], n_classes)
        tinfo = {**tinfo, "keras_params": int(model.count_params()),
                 "widened": f"first hidden layer {arch.width} -> {arch.first_width} neurons, the extra ones with zero "
                            "weights (trained as the grid's architecture)"}
    with _quiet(not opts.get("verbose")):
        tfl = to_int8_tflite(model, z["F_train"])
    tpath = atomic_write_bytes(folder / "model.tflite", tfl)
    summary = check_edgetpu_ready(tpath)
    p_float = float_predict(model, z["F_test"])
    p_int8 = predict(make_interpreter(tpath, threads=1), z["F_test"]).argmax(axis=1)
    _save_npy(folder / "int8_predictions.npy", p_int8.astype(np.int16))
    _save_npy(folder / "float_predictions.npy", p_float.astype(np.int16))
    size = size_of(arch, z["F_train"].shape[1], n_classes)
    if size.params != tinfo["keras_params"] or size.weight_bytes != summary["weight_bytes"]:
        raise EdgecheckError(
            f"{arch.name}: size mismatch: formula {size.params} params / {size.weight_bytes} B, Keras "
            f"{tinfo['keras_params']} params, tflite {summary['weight_bytes']} B"
        )
    return {
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
    }


# Keras' random seed is per process: two trainings in threads of one process would draw from each other's
# generator. This lock keeps them one after the other there.
_ONE_TRAINING_AT_A_TIME = threading.Lock()


def isolated_train_task(arch_dict: dict, features: str | bytes, opts_dict: dict, threads: int | None = None) -> dict:
    """``train_task`` in a fresh Python process of its own: what a Dask worker runs. Inside a Dask worker's
    process (its task threads, event loop and monitors beside TensorFlow) the same network trained twice gave
    different weights on this project's machines; a fresh process per network gives the bytes of a serial build
    (tests/test_build_parallel.py), at the cost of one TensorFlow import per network. A subprocess, since Dask's
    worker processes are daemons and may not start multiprocessing children."""
    import pickle
    import subprocess

    code = ("import pickle, sys; from edgecheck.build.pipeline import train_task; "
            "args = pickle.load(open(sys.argv[1], 'rb')); "
            "pickle.dump(train_task(*args), open(sys.argv[2], 'wb'))")
    with tempfile.TemporaryDirectory(prefix="edgecheck-task-") as tmp:
        job, result = Path(tmp) / "job.pickle", Path(tmp) / "result.pickle"
        job.write_bytes(pickle.dumps((arch_dict, features, opts_dict, threads)))
        proc = subprocess.run([sys.executable, "-c", code, str(job), str(result)], capture_output=True, text=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")})
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
            raise EdgecheckError(f"training {arch_dict} in a fresh process failed: {tail}")
        return pickle.loads(result.read_bytes())


def train_task(arch_dict: dict, features: str | bytes, opts_dict: dict, threads: int | None = None) -> dict:
    """Train, convert and evaluate one network anywhere (a pool process, a Dask worker, this process): returns
    its files' bytes and its entry's figures; the caller writes them into its store. Never writes a file of its
    own outside a temporary folder, so a remote worker needs nothing but the build extra."""
    with _ONE_TRAINING_AT_A_TIME:
        t0 = time.perf_counter()
        pool.set_threads(threads)
        z = pool.load_features(features)
        with tempfile.TemporaryDirectory(prefix="edgecheck-train-") as tmp:
            partial = model_files(Architecture.from_dict(arch_dict), z, opts_dict, Path(tmp))
            files = {name: (Path(tmp) / name).read_bytes() for name in pool.MODEL_FILES}
        partial["build_seconds"] = round(time.perf_counter() - t0, 2)
        partial["trained_on"] = os.uname().nodename  # which machine of a cluster
        return {"entry": partial, "files": files}


def _store_model(folder: Path, result: dict) -> dict:
    """Write a trained model's files (from any worker) into its store folder, then its entry.json, last: a
    folder without entry.json is never trusted."""
    entry = dict(result["entry"])
    files = {}
    for key, name in zip(("tflite", "int8_predictions", "float_predictions"), pool.MODEL_FILES):
        path = atomic_write_bytes(folder / name, result["files"][name])
        files[key] = {"path": name, "sha256": sha256_file(path), "bytes": path.stat().st_size}
    entry["files"] = files
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


def model_key(features_key: str, arch: Architecture, train: TrainConfig, versions: dict) -> str:
    """What names a model in a store: every input that shapes its bytes and figures. TensorFlow/Keras versions
    change training numerics, the interpreter's the int8 predictions kept beside it."""
    widened = {"widened": WIDEN_METHOD} if arch.first_width is not None else {}  # plain models keep their keys
    return hash_of({"rev": MODEL_REVISION, "features": features_key, "arch": arch.to_dict(), "train": train.to_dict(),
                    "versions": {k: versions.get(k) for k in MODEL_PACKAGES}, **widened})[:16]


def _reuse(arch: Architecture, folder: Path, opts: BuildOptions, log: Callable[[str], None]) -> tuple[dict | None, str]:
    """A model's entry from this store, else from the shared cache (copied in, hashes checked), else None."""
    if (folder / "entry.json").is_file():
        entry, why = shared_cache.model_entry(folder)
        if entry is not None:
            return entry, "here"
        log(f"build: not reusing {arch.name} from {folder.name}: {why}; building it again")
    if opts.cache is not None:
        entry, why = shared_cache.fetch_model(opts.cache / "store", folder)
        if entry is not None:
            return entry, "shared"
        if why != "not in the shared cache":
            log(f"build: not reusing {arch.name} from the shared cache: {why}")
    return None, ""


def train_cost(arch: Architecture, inputs: int = 1000) -> int:
    """A network's training cost, for ordering only: its weights, with about 1000 inputs (the default features
    have 891)."""
    first = arch.first_width or arch.width
    return inputs * first + (arch.layers - 1) * arch.width * arch.width


def _train_all(todo: list[tuple[Architecture, Path]], fpath: Path, opts: BuildOptions,
               log: Callable[[str], None]) -> dict[str, dict]:
    """Train ``todo`` serially here (``jobs`` 1) or in a pool; each model's files are stored as it finishes, so
    an interrupted build keeps every model already trained. Returns the entries by architecture name."""
    task_opts = {"train": opts.train.to_dict(), "verbose": opts.verbose}
    done: dict[str, dict] = {}
    done_s: list[float] = []

    def finished(arch: Architecture, folder: Path, result: dict, workers: int) -> None:
        entry = _store_model(folder, result)
        done[arch.name] = entry
        done_s.append(entry["build_seconds"])
        m = entry["metrics"]
        left = time_left(done_s, len(todo) - len(done), workers)
        eta = f"; about {left:.0f} s left" if left else ""
        log(f"build: [{len(done)}/{len(todo)}] {arch.name}: int8 macro-F1 {m['int8']['macro_f1']:.3f} (float "
            f"{m['float']['macro_f1']:.3f}), {entry['build_seconds']:.1f} s{eta}")

    if opts.executor == pool.LOCAL and (opts.jobs <= 1 or len(todo) == 1):
        for arch, folder in todo:
            log(f"build: training {arch.name}")
            finished(arch, folder, train_task(arch.to_dict(), str(fpath), task_opts), 1)
        return done
    from concurrent.futures import as_completed

    jobs = min(opts.jobs, len(todo))
    with pool.open_pool(opts.executor, jobs, fpath, log) as p:
        threads = pool.threads_per_worker(jobs) if opts.executor == pool.LOCAL else None
        log(f"build: training {len(todo)} models on {p.where}")
        task = isolated_train_task if p.isolate else train_task
        # the costliest first (longest processing time first): the pool's tail is then a small network, not
        # 3x2048 and 4x2048 (26 s and 22 s of a 99 s default build, started last in grid order). Each model's
        # bytes do not depend on the order: every network trains from a fresh Keras state (train.py)
        order = sorted(todo, key=lambda t: train_cost(t[0]), reverse=True)
        futures = {p.executor.submit(task, arch.to_dict(), p.features, task_opts, threads): (arch, folder)
                   for arch, folder in order}
        for fut in as_completed(futures):
            arch, folder = futures[fut]
            try:
                result = fut.result()
            except EdgecheckError:
                raise
            except Exception as e:  # noqa: BLE001 - a worker's failure names the model; models stored stay
                raise EdgecheckError(f"build: {arch.name} failed on {p.where}: {type(e).__name__}: {e}") from e
            finished(arch, folder, result, min(p.slots, len(todo) - len(done)))
    return done


def _dataset_record(opts: BuildOptions, store: Path, versions: dict) -> Path | None:
    """Where a named dataset's record is kept (``collar``, ``basicmotions``: generated, or read from a package),
    named by everything that makes its windows and their features: the name, seed and options, the code that
    makes, checks, splits and keys them (data.py, datafiles.py, spectrogram.py, this file), and the versions of
    numpy, scipy and pyts. It holds the
    features file's name and the dataset's description, so a rebuild whose features file is in the store (hash
    checked) neither generates nor reads the dataset again (about a second per build). None for a file."""
    if opts.dataset not in NAMED_DATASETS:
        return None
    import hashlib

    from edgecheck import datafiles
    from edgecheck.build import data, spectrogram

    code = hashlib.sha256(b"".join(Path(m.__file__).read_bytes()
                                   for m in (data, datafiles, spectrogram, sys.modules[__name__]))).hexdigest()
    key = hash_of({"rev": FEATURES_REVISION, "dataset": opts.dataset, "seed": opts.seed,
                   "channels_last": opts.channels_last, "n_fft": opts.n_fft, "hop": opts.hop,
                   "cap": opts.train.max_train_windows, "code": code,
                   "versions": {k: versions.get(k) for k in (*FEATURES_PACKAGES, "pyts")}})[:16]
    return store / f"dataset-{key}.json"


def _recorded_dataset(record: Path | None, store: Path) -> tuple[Path, dict, dict] | None:
    """(features file, its info, the dataset's description) from a named dataset's record, when the record is
    whole and its features file is in the store and matches its sha256; else None (the dataset is made)."""
    if record is None or not record.is_file():
        return None
    try:
        rec = json.loads(record.read_text())
        fpath, info, described = store / rec["features"], rec["info"], rec["dataset"]
        if fpath.name != f"features-{info['key']}.npz" or not isinstance(described, dict):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (fpath, info, described) if fpath.is_file() and _stale_features(fpath) is None else None


def _widen_record(percent: float, grid: list[Architecture], built: list[Architecture], n_in: int,
                  n_out: int) -> dict:
    """The --widen build input and what it made of each architecture: first hidden layer and MACs."""
    models = {}
    for a, b in zip(grid, built):
        m0, m1 = size_of(a, n_in, n_out).macs, size_of(b, n_in, n_out).macs
        models[a.name] = {"first_width": b.first_width, "grid_width": a.width, "macs": m1, "grid_macs": m0,
                          "macs_growth": round(m1 / m0 - 1, 5)}
    return {"percent": percent, "how": "each model trained as its grid architecture, then its first hidden layer "
                                      "widened with zero-weight neurons so the MACs per inference grow by about this "
                                      "%: the same predictions, more work; the models keep their architecture names",
            "models": models}


def build(opts: BuildOptions, log: Callable[[str], None] = _log) -> dict:
    """Build (or reuse) every model of the grid; returns the manifest it wrote."""
    t_start = time.perf_counter()
    archs = parse_grid(opts.grid)
    out = Path(opts.out)
    store = out / "store"
    versions = package_versions(BUILD_PACKAGES)
    record = _dataset_record(opts, store, versions)
    recorded = _recorded_dataset(record, store)
    if recorded is not None:
        fpath, finfo, described = recorded
        log(f"features: reusing {fpath.name} (dataset {opts.dataset} as recorded in {record.name})")
    else:
        ds = load_dataset(opts.dataset, seed=opts.seed, channels_last=opts.channels_last)
        fpath, finfo = _features_file(ds, opts, store, versions, log)
        described = ds.describe()
        if record is not None:  # written after its features file and that file's record
            atomic_write_json(record, {"features": fpath.name, "info": finfo, "dataset": described})
    with np.load(fpath, allow_pickle=False) as f:
        z = {k: f[k] for k in f.files}
    n_classes = int(z["n_classes"])
    for arch in archs:  # with the data's real input size, before TensorFlow is imported
        check_size(arch, int(z["F_train"].shape[1]), n_classes, "--grid")
    grid_archs, widen = archs, None
    if opts.widen:  # the variant keeps each architecture's name; its own key keeps it apart in every store
        archs = [a.widened(opts.widen, int(z["F_train"].shape[1]), n_classes) for a in archs]
        for arch in archs:
            check_size(arch, int(z["F_train"].shape[1]), n_classes, "--widen")
        widen = _widen_record(opts.widen, grid_archs, archs, int(z["F_train"].shape[1]), n_classes)
        log(f"build: --widen {opts.widen:g}: first hidden layer " + ", ".join(
            f"{n} {g['grid_width']}->{g['first_width']} ({g['macs_growth']:+.1%} MACs)"
            for n, g in widen["models"].items()))
    entries = []
    todo = []
    shared = 0
    for arch in archs:
        folder = store / f"model-{model_key(finfo['key'], arch, opts.train, versions)}"
        entry, where = _reuse(arch, folder, opts, log)
        shared += where == "shared"
        entries.append((arch, folder, entry))
        if entry is None:
            todo.append((arch, folder))
    from_cache = f" ({shared} from the shared cache {opts.cache}, sha256 checked)" if shared else ""
    if todo:
        log(f"build: {len(archs) - len(todo)} of {len(archs)} models reused{from_cache}, training {len(todo)}")
    else:
        log(f"build: all {len(archs)} models reused{from_cache or f' from {store}'}")
    from edgecheck.build.compile import compiler_version, find_compiler

    compiler = find_compiler()
    if compiler is None:
        log("build: edgetpu_compiler not found: models are not compiled for the Edge TPU (x86-64 Debian only)")
    trained = _train_all(todo, fpath, opts, log) if todo else {}
    models = []
    for arch, folder, entry in entries:
        fresh = entry is None
        if fresh:
            entry = trained[arch.name]
        if compiler and "compiler" not in entry:
            entry = _compile_for_edgetpu(compiler, folder, entry, log)
            fresh = True
        if opts.cache is not None and fresh:
            names = [f["path"] for f in entry["files"].values()]
            names += ["edgetpu_compiler.log"] if (folder / "edgetpu_compiler.log").is_file() else []
            _publish(opts, folder, names, ("entry.json", entry), log, folder.name)
        rel = folder.relative_to(out)
        e = dict(entry)
        e["files"] = {k: {**v, "path": str(rel / v["path"])} for k, v in entry["files"].items()}
        models.append(e)
    manifest = {
        "schema": art.MANIFEST_SCHEMA,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "grid": {"spec": opts.grid, "architectures": format_grid(grid_archs)},
        **({"widen": widen} if widen else {}),
        "dataset": described,
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
