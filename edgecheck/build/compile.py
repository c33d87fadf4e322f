"""Running ``edgetpu_compiler`` on a built model (x86-64 Debian hosts only).

The compiler has no machine-readable output: its text goes into the artifacts
next to the compiled model and is parsed by ``edgecheck.compilerlog``.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def find_compiler() -> str | None:
    return shutil.which("edgetpu_compiler")


def compiler_version(compiler: str) -> str | None:
    try:
        r = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return None
    out = (r.stdout + r.stderr).strip()
    return out.rsplit(" ", 1)[-1] if out else None


def compile_model(compiler: str, model: Path, out_dir: Path, timeout_s: int = 180) -> tuple[Path, str]:
    """Run edgetpu_compiler on one model; returns (compiled file, the compiler's output text)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        r = subprocess.run([compiler, "--show_operations", "--out_dir", str(out_dir), "--timeout_sec", str(timeout_s),
                            str(model)], capture_output=True, text=True, timeout=timeout_s + 60)
        text = r.stdout + r.stderr
    except subprocess.TimeoutExpired:  # its own --timeout_sec did not stop it: a failed compilation, said so
        text = f"Compilation failed: edgetpu_compiler did not finish within {timeout_s + 60} s\n"
    return out_dir / f"{model.stem}_edgetpu.tflite", text
