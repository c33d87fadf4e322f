"""Atomic file writes and content hashes.

Every file edgecheck writes goes through here, so an interrupted build or run
never leaves a half-written file that a later run would trust.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgecheck.errors import EdgecheckError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode open() would
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def load_json(path: str | os.PathLike, schema: str | None, what: str,
              migrations: dict[str, Callable[[dict], dict]] | None = None) -> dict:
    """Read a JSON object whose ``schema`` field names its format (asv's ``load_json(path, api_version)``).

    ``what`` names the file's role in errors ("results file", "--claims"). An older schema is
    upgraded through ``migrations`` (old schema -> function returning the next version's data),
    one step at a time until ``schema`` is reached; anything else is refused with both names."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except IsADirectoryError:
        raise EdgecheckError(f"{what}: {path} is a directory, not a JSON file") from None
    except OSError as e:
        raise EdgecheckError(f"{what}: cannot read {path} ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise EdgecheckError(f"{what}: {path} is not UTF-8 text (byte {e.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise EdgecheckError(f"{what}: {path} is not valid JSON, perhaps cut off mid-write ({e})") from None
    if not isinstance(data, dict):
        raise EdgecheckError(f"{what}: {path} holds a JSON {type(data).__name__}, expected an object")
    if schema is None:
        return data
    seen = set()
    while data.get("schema") != schema and migrations and data.get("schema") in migrations:
        found = data.get("schema")
        if found in seen:  # pragma: no cover - a migration table that loops is a programming error
            raise RuntimeError(f"migration loop at {found}")
        seen.add(found)
        data = migrations[found](data)
    if data.get("schema") != schema:
        raise EdgecheckError(f"{what}: {path}: schema is {data.get('schema')!r}, this edgecheck reads {schema!r}")
    return data


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays reach JSON through here without importing numpy at module level.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def canonical_json(obj: Any) -> str:
    """A stable text form for hashing plain data."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_of(obj: Any) -> str:
    """Hash of plain data (dicts, lists, numbers, strings): the key of a content-addressed entry."""
    return sha256_bytes(canonical_json(obj).encode("utf-8"))
