"""Atomic file writes and content hashes.

Every file edgecheck writes goes through here, so an interrupted build or run
never leaves a half-written file that a later run would trust.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecheck.errors import EdgecheckError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    A file that cannot be written (a directory in its place, a full disk, no permission) is an
    ``EdgecheckError`` naming it; the file that was there before is left as it was."""
    path = Path(path)
    try:
        return _atomic_write(path, data)
    except OSError as e:
        raise EdgecheckError(f"cannot write {path}: {_why(path, e)}") from None


def _why(path: Path, e: OSError) -> str:
    if path.is_dir():
        return "it is a directory; give a file path"
    return e.strerror or str(e)


def _atomic_write(path: Path, data: bytes) -> Path:
    if path.is_dir():
        raise IsADirectoryError(21, "Is a directory", str(path))
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


def strict_json(obj: Any, **kw) -> str:
    """JSON that every parser reads: NaN and infinities are refused, not written as bare tokens."""
    try:
        return json.dumps(obj, allow_nan=False, default=_json_default, **kw)
    except ValueError as e:
        raise EdgecheckError(f"refusing to write a non-finite number as JSON ({e})") from None


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, strict_json(obj, indent=2, sort_keys=True) + "\n")


def append_json_line(path: str | os.PathLike, obj: Any, fresh: bool = False) -> None:
    """One JSON line appended and flushed to disk (a journal): a crash keeps every line written before it."""
    line = (strict_json(obj, sort_keys=True) + "\n").encode()
    try:
        with open(path, "wb" if fresh else "ab") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise EdgecheckError(f"cannot write {path}: {_why(Path(path), e)}") from None


@dataclass
class FileLock:
    """``PATH.lock``, created exclusively, naming the process that holds it; a lock whose process is gone
    (on this host) is taken over, any other refuses the second writer with a clear message."""

    path: Path

    @classmethod
    def acquire(cls, target: str | os.PathLike, what: str) -> FileLock:
        import socket

        target = Path(target)
        lock = target.with_name(target.name + ".lock")
        host = socket.gethostname()
        try:
            if target.is_dir():
                raise EdgecheckError(f"{what}: {target} is a directory; give a file path")
            lock.parent.mkdir(parents=True, exist_ok=True)
            for _ in range(2):
                try:
                    fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    owner = _lock_owner(lock)
                    if owner.get("host") == host and not _alive(owner.get("pid")):
                        lock.unlink(missing_ok=True)  # its process is gone: a crashed run's lock
                        continue
                    raise EdgecheckError(
                        f"{what}: {target} is being written by another edgecheck run (pid {owner.get('pid', '?')} "
                        f"on {owner.get('host', '?')} since {owner.get('since', '?')}); wait for it to finish or "
                        f"give another {what} (a stale lock from a crash elsewhere: delete {lock})") from None
                with os.fdopen(fd, "w") as f:
                    json.dump({"pid": os.getpid(), "host": host,
                               "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, f)
                return cls(lock)
        except EdgecheckError:
            raise
        except OSError as e:
            raise EdgecheckError(f"{what}: cannot write {target} ({e.strerror or e})") from None
        raise EdgecheckError(f"{what}: cannot lock {target}: {lock} keeps reappearing")

    def release(self) -> None:
        if _lock_owner(self.path).get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)


def _lock_owner(lock: Path) -> dict:
    try:
        data = json.loads(lock.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_text(path: str | os.PathLike, where: str, kind: str) -> str:
    """A UTF-8 file's text, or one error that starts with ``where`` (the file and its role) and says what is
    wrong: missing, a directory instead of a ``kind`` file, unreadable, or not UTF-8."""
    try:
        return Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise EdgecheckError(f"{where}: file not found") from None
    except IsADirectoryError:
        raise EdgecheckError(f"{where}: is a directory, not a {kind} file") from None
    except OSError as e:
        raise EdgecheckError(f"{where}: cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise EdgecheckError(f"{where}: not UTF-8 text (byte {e.start})") from None


def load_json(path: str | os.PathLike, schema: str | None, what: str,
              migrations: dict[str, Callable[[dict], dict]] | None = None) -> dict:
    """Read a JSON object whose ``schema`` field names its format (asv's ``load_json(path, api_version)``).

    ``what`` names the file's role in errors ("results file", "--claims"). An older schema is
    upgraded through ``migrations`` (old schema -> function returning the next version's data),
    one step at a time until ``schema`` is reached; anything else is refused with both names."""
    path = Path(path)
    text = read_text(path, f"{what}: {path}", "JSON")
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise EdgecheckError(f"{what}: {path} is not valid JSON, perhaps cut off mid-write ({e})") from None
    except ValueError as e:
        raise EdgecheckError(f"{what}: {path} is not strict JSON: {e}") from None
    except RecursionError:
        raise EdgecheckError(f"{what}: {path} nests JSON too deeply to be an edgecheck file") from None
    if not isinstance(data, dict):
        raise EdgecheckError(f"{what}: {path} holds a JSON {type(data).__name__}, expected an object")
    if schema is None:
        return data
    if not isinstance(data.get("schema"), str):
        raise EdgecheckError(f"{what}: {path}: schema is {_short(data.get('schema'))}, this edgecheck reads {schema!r}")
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


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number (edgecheck writes and reads strict JSON)")


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays reach JSON through here without importing numpy at module level.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def canonical_json(obj: Any) -> str:
    """A stable text form for hashing plain data."""
    return strict_json(obj, sort_keys=True, separators=(",", ":"))


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
