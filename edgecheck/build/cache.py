"""The shared build cache: built features and models kept once per user, reused by every clone and project.

The build's own store (``--build-dir``/<grid>-<dataset>/store, or ``--out``) stays self-contained, so an
artifacts folder can still be copied to a board. The shared cache is a second store of the same layout in
``$XDG_CACHE_HOME/edgecheck`` (default ``~/.cache/edgecheck``; ``$EDGECHECK_CACHE`` or ``--build-cache``
override it, ``none`` turns it off). A file is named by the hash of every input that shapes it (data bytes,
split, spectrogram config, seeds, architecture, training budget, package versions), and each file is copied
in only after its sha256 matches the record written beside it when it was built; a record is written last.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from edgecheck.files import atomic_write_bytes, atomic_write_json, sha256_file

ENV = "EDGECHECK_CACHE"
OFF = "none"


def cache_root(value: str | None = None, environ: dict | None = None) -> Path | None:
    """Where the shared cache lives: ``value`` (the option), else $EDGECHECK_CACHE, else
    $XDG_CACHE_HOME/edgecheck, else ~/.cache/edgecheck; None when either says ``none``."""
    env = os.environ if environ is None else environ
    chosen = value or env.get(ENV)
    if chosen:
        return None if chosen == OFF else Path(chosen).expanduser()
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "edgecheck"


def features_record(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def stale_features(path: Path) -> str | None:
    """Why a features file in a store cannot be reused (missing or changed since it was written), or None."""
    try:
        record = json.loads(features_record(path).read_text())
        expected = record["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"no record of its sha256 ({features_record(path).name})"
    if sha256_file(path) != expected:
        return "its sha256 does not match the one recorded when it was written (changed or corrupt)"
    return None


def stale_files(folder: Path, entry: dict) -> str | None:
    """Why a model folder in a store cannot be reused: a file its entry.json lists is missing, changed, or
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


def model_entry(folder: Path) -> tuple[dict | None, str | None]:
    """(entry, None) for a model folder whose every file matches its entry.json; (None, why) otherwise."""
    path = folder / "entry.json"
    if not path.is_file():
        return None, "no entry.json"
    try:
        entry = json.loads(path.read_text())
        why = stale_files(folder, entry)
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as e:
        why = f"unreadable entry.json ({type(e).__name__})"
        entry = None
    return (entry, None) if why is None else (None, why)


def _copy(src: Path, dst: Path, sha256: str) -> None:
    data = src.read_bytes()
    from edgecheck.files import sha256_bytes

    if sha256_bytes(data) != sha256:  # changed between the check and the copy
        raise OSError(f"{src} changed while it was copied")
    atomic_write_bytes(dst, data)


def fetch_features(shared: Path, path: Path) -> str | None:
    """Copy the features file named like ``path`` from the shared store into ``path``'s store when the shared
    copy matches its record; returns why not, or None when copied."""
    src = shared / path.name
    if not src.is_file():
        return "not in the shared cache"
    why = stale_features(src)
    if why:
        return f"the shared cache's copy is unusable: {why}"
    record = json.loads(features_record(src).read_text())
    try:
        _copy(src, path, record["sha256"])
    except OSError as e:
        return f"could not copy it from the shared cache ({e})"
    atomic_write_json(features_record(path), record)  # last, as when it was built
    return None


def fetch_model(shared: Path, folder: Path) -> tuple[dict | None, str]:
    """The model folder named like ``folder`` copied from the shared store when every file matches its
    entry.json (written last); (entry, "") or (None, why not)."""
    src = shared / folder.name
    if not src.is_dir():
        return None, "not in the shared cache"
    entry, why = model_entry(src)
    if entry is None:
        return None, f"the shared cache's copy is unusable: {why}"
    try:
        for f in entry["files"].values():
            _copy(src / f["path"], folder / f["path"], f["sha256"])
        for extra in ("edgetpu_compiler.log",):
            if (src / extra).is_file() and "compiler" in entry:
                atomic_write_bytes(folder / extra, (src / extra).read_bytes())
    except OSError as e:
        return None, f"could not copy it from the shared cache ({e})"
    atomic_write_json(folder / "entry.json", entry)
    return entry, ""


def publish(local: Path, shared: Path, files: list[str], record: tuple[str, dict]) -> str | None:
    """Copy ``files`` (relative to ``local``) into ``shared``, then the record (name, JSON) last; returns why it
    failed (a read-only or full cache never fails the build), or None."""
    try:
        for rel in files:
            src = local / rel
            atomic_write_bytes(shared / rel, src.read_bytes())
        atomic_write_json(shared / record[0], record[1])
    except OSError as e:
        return str(e)
    return None
