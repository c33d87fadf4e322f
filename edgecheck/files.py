"""Atomic file writes and content hashes.

Every file edgecheck writes goes through here, so an interrupted build or run
never leaves a half-written file that a later run would trust.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
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
    mode = writable_output(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes 0600: give the file the mode it had, or the mode open() would give a new one
        os.chmod(tmp, 0o666 & ~_umask() if mode is None else mode)
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


def writable_output(path: Path) -> int | None:
    """The permission bits of the regular file at ``path`` that a write will replace (None: no file there yet).
    Only regular files are written: a FIFO, a device or a socket at an output path is refused, and so is a file
    that is read-only (its owner said not to change it), as an ``EdgecheckError`` naming it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError:
        return None  # the write itself says why (a component that is a file, no permission)
    what = _file_kind(st.st_mode)
    if what == "a directory":
        raise EdgecheckError(f"cannot write {path}: it is a directory; give a file path")
    if what is not None:
        raise EdgecheckError(f"cannot write {path}: it is {what}; edgecheck writes only regular files")
    if not st.st_mode & 0o222:
        raise EdgecheckError(f"cannot write {path}: it is read-only; make it writable (chmod u+w) or give another "
                             "path")
    return stat.S_IMODE(st.st_mode)


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
    """One JSON line appended and flushed to disk (a journal): a crash keeps every line written before it.
    Only a regular file is written (a FIFO in its place is refused, never waited on)."""
    line = (strict_json(obj, sort_keys=True) + "\n").encode()
    try:
        writable_output(Path(path))
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if fresh else os.O_APPEND) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(path, flags, 0o666)
        with os.fdopen(fd, "wb") as f:
            if _file_kind(os.fstat(fd).st_mode) is not None:
                raise EdgecheckError(f"cannot write {path}: it is {_file_kind(os.fstat(fd).st_mode)}, not a file")
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


# ----------------------------------------------------------------------------
# The one reader: every input file, whatever its kind
# ----------------------------------------------------------------------------

MiB = 1 << 20
# The most bytes read from one file of each kind: a file larger than this is no edgecheck file of that kind, and
# a symlink to /dev/zero or a runaway log must not be read until memory runs out.
SIZE_CAPS: dict[str, int] = {
    "results": 256 * MiB,  # a run's results (raw samples of every model): the default grid's are about 2 MiB
    "journal": 256 * MiB,  # the same entries, one JSON line each
    "comparison": 64 * MiB,
    "claims": 1 * MiB,  # a thresholds file is a few KiB
    "twin constants": 1 * MiB,
    "manifest": 64 * MiB,
    "JSON": 64 * MiB,
    "compiler log": 16 * MiB,  # edgetpu_compiler's log of a few models is a few KiB
    "trace": 1024 * MiB,  # a power meter's CSV log of a long run
    "CSV": 1024 * MiB,
    "model": 512 * MiB,  # a .tflite (the grid's largest int8 model is capped at 256 MiB of weights)
    "dataset": 4096 * MiB,  # a .npz or .csv dataset (read by the build, in its own process)
    "sysfs": 64 * 1024,  # one sysfs or hwmon attribute (the kernel gives at most a page)
    "procfs": 4 * MiB,  # /proc/cpuinfo of a many-core machine
}


def _file_kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


def read_bytes(path: str | os.PathLike, where: str, kind: str, cap: int | None = None) -> bytes:
    """The bytes of a regular file of ``kind`` (a key of ``SIZE_CAPS``), or one ``EdgecheckError`` that starts
    with ``where`` (the file and its role).

    A FIFO, a device, a socket or a directory is refused at once and never opened for a blocking read (the open
    is non-blocking and the opened file is checked again); at most the kind's cap is read, and a larger file is
    refused naming the cap, so a link to /dev/zero cannot exhaust memory."""
    cap = SIZE_CAPS.get(kind, SIZE_CAPS["JSON"]) if cap is None else cap
    _regular_stat(path, where, kind)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        raise EdgecheckError(f"{where}: cannot read ({e.strerror or e})") from None
    try:
        what = _file_kind(os.fstat(fd).st_mode)  # replaced between the stat and the open
        if what is not None:
            raise EdgecheckError(f"{where}: is {what}, not a {kind} file")
        chunks, size = [], 0
        while size <= cap:
            chunk = os.read(fd, min(1 << 20, cap + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:
        raise EdgecheckError(f"{where}: cannot read ({e.strerror or e})") from None
    finally:
        os.close(fd)
    if size > cap:
        raise EdgecheckError(f"{where}: larger than the {_size(cap)} a {kind} file may be")
    return b"".join(chunks)


def _regular_stat(path: str | os.PathLike, where: str, kind: str) -> os.stat_result:
    """``path``'s stat when it is a regular file, or one ``EdgecheckError`` (missing, unreadable, a FIFO, a device,
    a socket or a directory), without opening it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise EdgecheckError(f"{where}: file not found") from None
    except OSError as e:
        raise EdgecheckError(f"{where}: cannot read ({e.strerror or e})") from None
    what = _file_kind(st.st_mode)
    if what is not None:
        raise EdgecheckError(f"{where}: is {what}, not a {kind} file")
    return st


def regular_file(path: str | os.PathLike, where: str, kind: str) -> int:
    """Check, without reading it, that ``path`` is a regular file of ``kind`` within its size cap (for files read
    later by a library, such as a .tflite or a .npz): its size, or one ``EdgecheckError`` starting with ``where``."""
    st = _regular_stat(path, where, kind)
    cap = SIZE_CAPS.get(kind, SIZE_CAPS["JSON"])
    if st.st_size > cap:
        raise EdgecheckError(f"{where}: larger than the {_size(cap)} a {kind} file may be")
    if not os.access(path, os.R_OK):
        raise EdgecheckError(f"{where}: cannot read (permission denied)")
    return st.st_size


def _size(n: int) -> str:
    return f"{n // MiB} MiB" if n >= MiB else f"{n // 1024} KiB"


def read_text(path: str | os.PathLike, where: str, kind: str, cap: int | None = None) -> str:
    """A UTF-8 file's text through ``read_bytes``, decoded strictly: one error that starts with ``where`` says
    what is wrong (missing, a directory or a FIFO instead of a ``kind`` file, too large, unreadable, not UTF-8)."""
    data = read_bytes(path, where, kind, cap)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise EdgecheckError(f"{where}: not UTF-8 text (byte {e.start})") from None


def load_json(path: str | os.PathLike, schema: str | None, what: str,
              migrations: dict[str, Callable[[dict], dict]] | None = None, kind: str = "JSON") -> dict:
    """Read a JSON object whose ``schema`` field names its format (asv's ``load_json(path, api_version)``).

    ``what`` names the file's role in errors ("results file", "--claims"). An older schema is
    upgraded through ``migrations`` (old schema -> function returning the next version's data),
    one step at a time until ``schema`` is reached; anything else is refused with both names. ``kind`` (a key
    of ``SIZE_CAPS``) sets how large the file may be."""
    path = Path(path)
    text = read_text(path, f"{what}: {path}", kind)
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
    return upgrade(data, path, schema, what, migrations)


def upgrade(data: dict, path: str | os.PathLike, schema: str, what: str,
            migrations: dict[str, Callable[[dict], dict]] | None = None) -> dict:
    """``data``, read from ``path`` (``load_json(path, None, ...)``), brought to ``schema`` through ``migrations``
    one step at a time; anything else is refused with both names. For a caller that reads a file once and only
    then knows which format it holds."""
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


# ----------------------------------------------------------------------------
# The one guard: no command writes over a file it reads
# ----------------------------------------------------------------------------



def _identity(path: str | os.PathLike) -> tuple:
    """What two names of one file share: its device and inode when it exists, else its resolved path (a
    symlink, ``..`` or a second hard link to an input is the input)."""
    try:
        st = os.stat(path)
        return ("inode", st.st_dev, st.st_ino)
    except OSError:
        return ("path", os.path.realpath(path))


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two names are one file (a link, ``..``, a hard link), existing or not."""
    return _identity(a) == _identity(b) or os.path.realpath(a) == os.path.realpath(b)


def check_distinct(reads: dict[str, Any], writes: dict[str, Any]) -> None:
    """Refuse a command whose written path is a path it reads, or a path another of its outputs writes: a usage
    error naming both options, before anything is read, built or measured.

    ``reads`` and ``writes`` map an option's name (``--baseline``, ``RUN``, ``-o``) to a path or a list of
    paths (None entries are skipped). Each written path must also be one edgecheck may write: a regular file or
    nothing (``writable_output``)."""
    def each(table: dict[str, Any]):
        for option, value in table.items():
            for p in (value if isinstance(value, (list, tuple)) else [value]):
                if p is not None and str(p) != "":
                    yield option, Path(p)

    inputs = [(option, p, _identity(p)) for option, p in each(reads)]
    seen: list[tuple[str, Path, tuple]] = []
    for option, p in each(writes):
        ident = _identity(p)
        for other, q, _ in inputs:
            if same_file(q, p):
                same = "" if str(q) == str(p) else f" ({q} and {p} are the same file)"
                raise EdgecheckError(f"{option} {p} would overwrite {other}, which this command reads{same}; "
                                     f"give {option} another path")
        for other, _, qi in seen:
            if qi == ident and other != option:
                raise EdgecheckError(f"{option} and {other} both write {p}; give them different paths")
        seen.append((option, p, ident))
        try:
            writable_output(p)
        except EdgecheckError as e:
            raise EdgecheckError(f"{option}: {e}") from None
