"""Loading a .tflite model into a TFLite interpreter, and running it on real inputs.

LiteRT (ai-edge-litert) is preferred; tflite_runtime is the fallback for boards
where LiteRT cannot be installed (Python <= 3.9). TensorFlow is never imported.
"""
from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecheck.errors import EdgecheckError

_PACKAGES = (("ai_edge_litert.interpreter", "ai-edge-litert"), ("tflite_runtime.interpreter", "tflite-runtime"))


@dataclass(frozen=True)
class InterpreterPackage:
    module: str  # import path of the interpreter module
    distribution: str  # the pip name
    version: str


def find_package() -> InterpreterPackage:
    """The first installed interpreter package; an error says what to install."""
    for module, dist in _PACKAGES:
        try:
            importlib.import_module(module)
        except ImportError:
            continue
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        return InterpreterPackage(module, dist, version)
    raise EdgecheckError("no TFLite interpreter: install ai-edge-litert (Python >= 3.10) or tflite-runtime")


def make_interpreter(model_path: str | Path, threads: int = 1, delegates: list | None = None,
                     package: InterpreterPackage | None = None):
    """An allocated interpreter for ``model_path``; errors name the file."""
    package = package or find_package()
    mod = importlib.import_module(package.module)
    try:
        interp = mod.Interpreter(model_path=str(model_path), num_threads=int(threads),
                                 experimental_delegates=delegates or None)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise EdgecheckError(f"{model_path}: the interpreter cannot load this model ({e})") from None
    return interp


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float features -> the input tensor's dtype, using its scale and zero point."""
    dtype = detail["dtype"]
    scale, zp = detail.get("quantization", (0.0, 0))
    if np.issubdtype(dtype, np.integer) and scale:
        info = np.iinfo(dtype)
        q = np.round(x / scale + zp)
        return np.clip(q, info.min, info.max).astype(dtype)
    return x.astype(dtype)


def dequantize_output(y: np.ndarray, detail: dict) -> np.ndarray:
    scale, zp = detail.get("quantization", (0.0, 0))
    if np.issubdtype(y.dtype, np.integer) and scale:
        return (y.astype(np.float32) - zp) * scale
    return y.astype(np.float32)


def predict(interp, X: np.ndarray) -> np.ndarray:
    """Class scores for float feature rows, one invoke per row (batch size 1)."""
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    Xq = quantize_input(np.asarray(X, dtype=np.float32), inp)
    scores = []
    for row in Xq:
        interp.set_tensor(inp["index"], row.reshape(inp["shape"]))
        interp.invoke()
        scores.append(dequantize_output(interp.get_tensor(out["index"]), out).reshape(-1))
    return np.stack(scores) if scores else np.zeros((0, 0), np.float32)
