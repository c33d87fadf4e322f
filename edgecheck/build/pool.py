"""Training a grid's networks in parallel: a pool of worker processes on this machine, or a Dask cluster.

A network's bytes depend only on its own inputs (fixed seeds, deterministic ops, no state carried from
the model trained before it in the same process), so any split of the grid over any number of workers
gives the models a serial build gives; tests/test_build_parallel.py checks it on the smoke grid.
"""
from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecheck.config import DASK_SCHEME
from edgecheck.config import LOCAL_EXECUTOR as LOCAL
from edgecheck.errors import EdgecheckError

MODEL_FILES = ("model.tflite", "int8_predictions.npy", "float_predictions.npy")


def cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or taskset narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_worker(jobs: int, n_cores: int | None = None) -> int:
    """TensorFlow threads for each of ``jobs`` workers so that together they fill the machine, not more."""
    return max(1, (n_cores or cores()) // max(1, jobs))


@dataclass
class Pool:
    """Where the networks train: an executor, how many models it runs at once, and the features it was given."""

    executor: Executor
    slots: int
    features: Any  # what a task receives for the features: a local path, or a Dask future of the file's bytes
    where: str
    isolate: bool = False  # each network in a fresh process of its own (pipeline.isolated_train_task)


def set_threads(threads: int | None) -> None:
    """Set TensorFlow's thread pools before its first op; a worker that already ran one keeps its setting."""
    if not threads:
        return
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):  # already initialized in this process: its first setting stands
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with file descriptor 2 pointed at /dev/null: its C++ start-up lines (absl's "All log
    messages before absl::InitializeLog()" and oneDNN's notice) are written before any log level applies, once per
    process, and say nothing a user can act on. Python's own errors still show: the descriptor is back before an
    import error is raised."""
    import sys

    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # its C++ INFO/WARNING/ERROR lines (e.g. NodeDef notes)
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _init_local_worker(threads: int) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import_tensorflow_quietly()
    set_threads(threads)


@contextlib.contextmanager
def open_pool(spec: str, jobs: int, features_path: Path, log) -> Iterator[Pool]:
    """A pool for ``spec``: ``jobs`` spawned processes here, or the Dask cluster's workers (``jobs`` is then the
    cluster's own: its workers' threads)."""
    if spec == LOCAL:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        threads = threads_per_worker(jobs)
        # spawn, not fork: a forked child would inherit whatever the parent holds (TensorFlow's thread pools in a
        # serial build that fell back here, locks of other threads)
        ex = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_local_worker, initargs=(threads,))
        try:
            yield Pool(ex, jobs, str(features_path), f"{jobs} worker processes here, {threads} TensorFlow "
                                                     f"thread{'s' if threads > 1 else ''} each")
        finally:
            ex.shutdown(wait=True, cancel_futures=True)
        return
    try:
        from distributed import Client
    except ImportError:
        raise EdgecheckError(f"--build-executor {spec}: Dask is not installed; pip install 'edgecheck[cluster]' "
                             "(and the build extra on every dask worker)") from None
    address = "tcp://" + spec[len(DASK_SCHEME):]
    try:
        client = Client(address, timeout=10)  # a scheduler that does not answer in 10 s is not there
    except OSError as e:
        raise EdgecheckError(f"--build-executor {spec}: cannot reach the Dask scheduler ({e})") from None
    try:
        workers = client.scheduler_info().get("workers", {})
        slots = sum(int(w.get("nthreads", 1)) for w in workers.values()) or 1
        # the features go to every worker once, not with every task
        data = client.scatter(features_path.read_bytes(), broadcast=True)
        yield Pool(client.get_executor(pure=False), slots, data,
                   f"the Dask cluster at {spec[len(DASK_SCHEME):]} ({len(workers)} workers, {slots} threads)",
                   isolate=True)
    finally:
        client.close()


def load_features(features: str | bytes) -> dict[str, np.ndarray]:
    """The features file's arrays, from its path or its bytes."""
    src = io.BytesIO(features) if isinstance(features, (bytes, bytearray)) else features
    with np.load(src, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
