"""The key of a build: a hash of everything a build's bytes depend on, so CI can keep built artifacts and
reuse them until one of those inputs changes.

Training is not bit-identical across CPUs, so a board's workflow that rebuilt its models on whatever hosted
runner it got would compare different bytes with its baseline each run (every row "different model"). Keyed
by its inputs (the build code and its pinned versions, the grid, the dataset, the seed and options), the
workflow's cache hands a board the same bytes as its baseline until an input changes, and then only.
``edgecheck build-key`` prints it; ``.github/workflows/boards.yml`` keys ``actions/cache`` with it.
"""
from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

from edgecheck.errors import EdgecheckError

# the repository's files a build reads or runs, relative to its root: the build code, what it imports from
# edgecheck to write artifacts, the versions it installs, and the script and compiler installer CI runs
BUILD_INPUTS = ("edgecheck/build", "edgecheck/architecture.py", "edgecheck/artifacts.py", "edgecheck/config.py",
                "edgecheck/files.py", "edgecheck/modelfile.py", "edgecheck/compilerlog.py", "pyproject.toml",
                "ci/constraints.txt", "ci/build-artifacts.sh", "ci/install-edgetpu-compiler.sh")
KEY_VERSION = 1


def _files(root: Path) -> list[Path]:
    out = []
    for rel in BUILD_INPUTS:
        p = root / rel
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and "__pycache__" not in f.parts
                          and f.suffix not in (".pyc",))
        elif p.is_file():
            out.append(p)
        else:
            raise EdgecheckError(f"build-key: {rel} not found under {root} (is this an edgecheck checkout?)")
    return out


def build_inputs(root: Path, grid: str, dataset: str, seed: int = 0, n_fft: int | None = None,
                 hop: int | None = None, epochs: int | None = None, channels_last: bool = False,
                 widen: float = 0.0) -> dict:
    """Every input of a build, as data: each file's sha256, the options, the dataset (a file's own sha256),
    the Python minor version and the machine's architecture."""
    root = Path(root)
    files = {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest() for f in _files(root)}
    data = Path(dataset)
    if data.is_file():
        ds = {"file": hashlib.sha256(data.read_bytes()).hexdigest()}
    elif data.is_dir():
        ds = {"folder": {str(f.relative_to(data)): hashlib.sha256(f.read_bytes()).hexdigest()
                         for f in sorted(data.rglob("*")) if f.is_file()}}
    else:
        ds = {"name": dataset}
    return {"key_version": KEY_VERSION, "files": files, "grid": grid, "dataset": ds, "seed": seed, "n_fft": n_fft,
            "hop": hop, "epochs": epochs, "python": ".".join(platform.python_version_tuple()[:2]),
            "machine": platform.machine(), **({"channels_last": True} if channels_last else {}),
            **({"widen": widen} if widen else {})}


def build_key(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:32]
