"""The artifacts directory: what the build stage hands to the measure stage.

Layout::

    DIR/manifest.json                      schema-versioned index of everything below
    DIR/store/features-<key>.npz           standardized test (and train) features, labels
    DIR/store/model-<key>/model.tflite     one int8 model per architecture
    DIR/store/model-<key>/entry.json       its size, metrics and hashes (written last)

Entries are content-addressed: the key hashes every input that shapes them, so
a rebuild with the same inputs reuses them. Reading verifies every file's
sha256 once: a missing or changed file is an error that names it. A loaded
``ModelEntry`` carries everything measuring needs (its test windows and the
build's predictions), so the measure stage never goes back to the store.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecheck.architecture import Architecture
from edgecheck.errors import EdgecheckError
from edgecheck.files import load_json, sha256_file

MANIFEST_SCHEMA = "edgecheck.manifest/1"
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class TestSet:
    """The standardized float test windows and their labels: the input and the truth for accuracy."""

    __test__ = False  # not a pytest test class

    features: np.ndarray
    labels: np.ndarray
    n_classes: int


@dataclass
class ModelEntry:
    """One model ready to measure: plain data from the manifest, paths made absolute."""

    name: str
    tflite: Path
    arch: Architecture | None  # None for a user's own model
    size: dict  # params, macs, weight_bytes, bias_bytes, layer_sizes
    metrics: dict = field(default_factory=dict)  # float and int8 accuracy / macro_f1
    sha256: str = ""
    predictions: Path | None = None  # the build's int8 predictions on the test windows
    edgetpu_tflite: Path | None = None
    compiler: dict | None = None  # parsed Edge TPU compiler log, when compiled
    origin: str = "built"  # "built" by edgecheck, or "user" (--model)
    test_set: TestSet | None = field(default=None, repr=False)  # built models: the run's test windows
    build_predictions: np.ndarray | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        """Identifies the model across runs: architecture and content."""
        return f"{self.name}@{self.sha256[:12]}" if self.sha256 else self.name

    def record(self) -> dict:
        """What a results entry says about this model."""
        return {"name": self.name, "sha256": self.sha256, "origin": self.origin,
                "arch": self.arch.to_dict() if self.arch else None, "size": self.size, "metrics": self.metrics,
                "compiler": self.compiler}

    def to_dict(self) -> dict:
        return {**self.record(), "tflite": str(self.tflite),
                "edgetpu_tflite": str(self.edgetpu_tflite) if self.edgetpu_tflite else None}


@dataclass
class Artifacts:
    root: Path
    manifest: dict
    models: list[ModelEntry]
    manifest_sha256: str
    test_set: TestSet | None = None

    def test_features(self) -> tuple[np.ndarray, np.ndarray]:
        """Standardized float test features and labels, for inputs and accuracy checks."""
        return self.test_set.features, self.test_set.labels

    @property
    def synthetic(self) -> bool:
        """True when the dataset was generated (the collar generator), not recorded by sensors."""
        return bool((self.manifest["dataset"].get("notes") or {}).get("synthetic"))

    def header(self) -> dict:
        """What a results file records about the artifacts it measured."""
        m = self.manifest
        return {"root": str(self.root), "manifest_sha256": self.manifest_sha256,
                "grid": m["grid"],
                "dataset": {**{k: m["dataset"][k] for k in ("name", "sha256", "windows", "classes")},
                            "synthetic": self.synthetic},
                "features": {k: m["features"][k] for k in ("key", "spectrogram", "n_features")},
                "build_versions": m["versions"], "build_git": m.get("git")}


def load(root: str | Path, verify: bool = True) -> Artifacts:
    """Read and verify ``root/manifest.json`` and the files it lists."""
    root = Path(root)
    mpath = root / MANIFEST_NAME
    if not root.is_dir():
        raise EdgecheckError(f"--artifacts: {root} is not a directory")
    if not mpath.is_file():
        raise EdgecheckError(f"--artifacts: {mpath} not found (build one with: edgecheck build --out {root})")
    manifest = load_json(mpath, MANIFEST_SCHEMA, "--artifacts", kind="manifest")
    try:
        feat = manifest["features"]
        fpath = _inside(root, feat["path"], mpath)
        _verify(fpath, feat["sha256"], verify)
        with _reading(fpath), np.load(fpath, allow_pickle=False) as z:
            test_set = TestSet(z["F_test"], z["y_test"], len(manifest["dataset"]["classes"]))
        models = []
        for m in manifest["models"]:
            files = {k: _inside(root, f["path"], mpath) for k, f in m["files"].items()}
            for k, f in m["files"].items():
                _verify(files[k], f["sha256"], verify)
            preds = files.get("int8_predictions")
            with _reading(preds):
                build_predictions = np.load(preds, allow_pickle=False) if preds else None
            models.append(ModelEntry(
                name=str(m["name"]), tflite=files["tflite"], arch=Architecture.from_dict(m["arch"]), size=m["size"],
                metrics=m.get("metrics", {}), sha256=m["files"]["tflite"]["sha256"], predictions=preds,
                edgetpu_tflite=files.get("edgetpu_tflite"), compiler=m.get("compiler"),
                test_set=test_set, build_predictions=build_predictions,
            ))
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        if isinstance(e, EdgecheckError):
            raise
        raise EdgecheckError(f"{mpath}: malformed manifest, missing or wrong field {e}") from None
    return Artifacts(root, manifest, models, sha256_file(mpath), test_set)


def _inside(root: Path, rel: str, mpath: Path) -> Path:
    """A path the manifest lists, confined to the artifacts folder: absolute paths, ``..`` and links that lead
    out of it are refused (a hash alone would let a manifest point at any file)."""
    p = Path(rel)
    if not isinstance(rel, str) or not rel or p.is_absolute() or ".." in p.parts:
        raise EdgecheckError(f"{mpath}: path {rel!r} is not inside the artifacts folder (absolute or with '..')")
    full = root / p
    if not full.resolve().is_relative_to(root.resolve()):
        raise EdgecheckError(f"{mpath}: path {rel!r} leads out of the artifacts folder (through a link)")
    return full


class _reading:
    """numpy's errors on a file that passed its hash check but is still not what it should be, as one line."""

    def __init__(self, path: Path | None):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, e, tb):
        if e is not None and not isinstance(e, EdgecheckError) and isinstance(e, (OSError, ValueError, EOFError,
                                                                                  KeyError, zipfile.BadZipFile)):
            raise EdgecheckError(f"artifacts: cannot read {self.path} ({type(e).__name__}: {e})") from None
        return False


def _verify(path: Path, sha256: str, check_hash: bool) -> None:
    if not path.is_file():
        raise EdgecheckError(f"artifacts: {path} is listed in the manifest but missing")
    if check_hash and sha256_file(path) != sha256:
        raise EdgecheckError(f"artifacts: {path} does not match its sha256 in the manifest (changed or corrupt)")


def user_model(path: str | Path, compiler_log: str | Path | None = None) -> ModelEntry:
    """A user's own .tflite (``--model``): size read from the file, no accuracy. Its Edge TPU compiler output
    comes from ``compiler_log`` (``--compiler-log``) or ``X_edgetpu.log`` next to ``X.tflite``."""
    from edgecheck.modelfile import read_model

    path = Path(path)
    if not path.is_file():
        raise EdgecheckError(f"--model: file {path} not found")
    info = read_model(path)
    size = {"params": info.params, "macs": info.macs, "weight_bytes": info.weight_bytes,
            "bias_bytes": sum(w.bias_bytes for w in info.weighted_ops),
            "layer_sizes": ([info.dense_layers[0].in_features] + [d.out_features for d in info.dense_layers])
            if info.dense_layers and info.feed_forward else []}
    if not info.feed_forward:  # every operator's weights are counted; the twins cost dense layers only
        size["weighted_operators"] = sorted({w.operator for w in info.weighted_ops})
    compiled = info.compiled_for_edgetpu
    beside = path.with_name(f"{path.stem}_edgetpu.log")
    log = Path(compiler_log) if compiler_log else (beside if beside.is_file() else None)
    return ModelEntry(name=path.stem, tflite=path, arch=None, size=size, sha256=sha256_file(path),
                      edgetpu_tflite=path if compiled else None, origin="user",
                      compiler=read_compiler_log(log) if log else None)


def read_compiler_log(path: Path) -> dict:
    """An edgetpu_compiler log as a results entry records it: the parsed figures, or the compiler's refusal."""
    from edgecheck.compilerlog import CompilerFailure, parse
    from edgecheck.files import read_text

    text = read_text(path, f"--compiler-log: {path}", "compiler log")
    try:
        parsed = parse(text, str(path)).to_dict()
    except CompilerFailure as e:
        if e.kind == "not_a_log":
            raise EdgecheckError(f"--compiler-log: {e}") from None
        return {"log_path": str(path), "failure": {"kind": e.kind, "message": str(e)}, "compiler_version": e.version,
                "models": []}
    return {**parsed, "log_path": str(path)}
