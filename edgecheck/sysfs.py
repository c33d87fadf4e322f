"""Reading the small text files of sysfs and procfs: one place for the kernel's conventions.

Every reader of /sys and /proc goes through here: CPU frequency and temperature,
cache geometry, Edge TPU USB attributes and power sensors. ``read_text`` never
fails (a missing attribute is ``None``, as pyperf treats what it cannot read);
``read_number`` is for files that must hold a number and names the file when
they do not.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from edgecheck.errors import EdgecheckError, one_line
from edgecheck.files import read_bytes


def read_text(path: str | os.PathLike, kind: str = "sysfs") -> str | None:
    """The file's text without the kernel's trailing newline or NULs, or None when it cannot be read (missing,
    not a regular file, larger than a ``kind`` file may be, or not UTF-8). Read through ``files.read_bytes``, so
    a FIFO or a device planted in sysfs' place never blocks."""
    try:
        return read_bytes(path, str(path), kind).decode("utf-8").strip("\x00\n ")
    except (EdgecheckError, UnicodeDecodeError):
        return None


def read_number(path: str | os.PathLike, what: str = "") -> float:
    """A file that must hold one finite number (hwmon, powercap, cache sizes); errors are one line that names the
    file and the fix."""
    path = Path(path)
    where = f"{what}: {path}" if what else str(path)
    try:
        os.stat(path)
    except FileNotFoundError:
        raise EdgecheckError(f"{where}: the file disappeared (device unplugged or driver unloaded)") from None
    except OSError:
        pass  # read_bytes says why
    if not os.access(path, os.R_OK) and path.exists():
        raise EdgecheckError(f"{where}: permission denied; make it readable (udev rule or chmod) or run as "
                             "root")
    data = read_bytes(path, where, "sysfs")
    try:
        text = data.decode("utf-8").strip("\x00\n ")
    except UnicodeDecodeError:
        raise EdgecheckError(f"{where}: expected a number, found bytes that are not text") from None
    try:
        value = float(text)
    except ValueError:
        raise EdgecheckError(f"{where}: expected a number, found {one_line(repr(text[:40]))}") from None
    if not math.isfinite(value):
        raise EdgecheckError(f"{where}: expected a finite number, found {one_line(repr(text[:40]))}")
    return value


def read_whole_number(path: str | os.PathLike, what: str = "") -> int:
    """A file that must hold a non-negative whole number (cache level, ways, counters)."""
    value = read_number(path, what)
    if value < 0 or value != int(value):
        raise EdgecheckError(f"{what + ': ' if what else ''}{path}: expected a whole number, got {value!r}")
    return int(value)
