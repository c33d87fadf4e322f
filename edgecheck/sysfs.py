"""Reading the small text files of sysfs and procfs: one place for the kernel's conventions.

Every reader of /sys and /proc goes through here: CPU frequency and temperature,
cache geometry, Edge TPU USB attributes and power sensors. ``read_text`` never
fails (a missing attribute is ``None``, as pyperf treats what it cannot read);
``read_number`` is for files that must hold a number and names the file when
they do not.
"""
from __future__ import annotations

import os
from pathlib import Path

from edgecheck.errors import EdgecheckError


def read_text(path: str | os.PathLike) -> str | None:
    """The file's text without the kernel's trailing newline or NULs, or None when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").strip("\x00\n ")
    except OSError:
        return None


def read_number(path: str | os.PathLike, what: str = "") -> float:
    """A file that must hold one number (hwmon, powercap, cache sizes); errors name the file and the fix."""
    path = Path(path)
    where = f"{what}: {path}" if what else str(path)
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise EdgecheckError(f"{where}: the file disappeared (device unplugged or driver unloaded)") from None
    except PermissionError:
        raise EdgecheckError(f"{where}: permission denied; make it readable (udev rule or chmod) or run as "
                             "root") from None
    except OSError as e:
        raise EdgecheckError(f"{where}: cannot read ({e.strerror or e})") from None
    try:
        return float(text)
    except ValueError:
        raise EdgecheckError(f"{where}: expected a number, found {text[:40]!r}") from None


def read_whole_number(path: str | os.PathLike, what: str = "") -> int:
    """A file that must hold a non-negative whole number (cache level, ways, counters)."""
    value = read_number(path, what)
    if value < 0 or value != int(value):
        raise EdgecheckError(f"{what + ': ' if what else ''}{path}: expected a whole number, got {value!r}")
    return int(value)
