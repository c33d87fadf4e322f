"""Plain-text tables and the unit formatting every text view shares (terminal, CLI, Markdown), and the one helper
that makes text read from files safe to show there."""
from __future__ import annotations

import math

MAX_TEXT = 500  # characters of one value from a file shown in a table cell or a line; longer ones are cut


def safe_text(value, limit: int = MAX_TEXT) -> str:
    """Text from a file (a model or device name, a message, a dataset name) as a terminal may show it: control
    characters, ANSI escape sequences and bidirectional overrides shown escaped (``\\x1b[31m``), never
    interpreted; a value longer than ``limit`` cut, with ``...``."""
    text = "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in str(value))
    return text if len(text) <= limit else text[:max(0, limit - 3)] + "..."


_MD_SPECIAL = "\\`*_[]()!#|<>~"


def md_text(value, limit: int = MAX_TEXT) -> str:
    """Text from a file as Markdown shows it, inert: ``safe_text`` and then every character Markdown gives a
    meaning escaped with a backslash (link and image syntax ``[x](url)``, ``![x](url)``, emphasis, code, table
    pipes), and ``&``, ``<``, ``>`` as entities, so no HTML tag or entity is formed in any renderer."""
    text = safe_text(value, limit).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in text)


def fmt_time(s: float | None, micro: str = "u") -> str:
    """Seconds in engineering units (us, ms, s); ``micro="µ"`` where the output is not plain ASCII (HTML)."""
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} {micro}s"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_energy(j: float | None, micro: str = "u") -> str:
    """Joules in engineering units (uJ, mJ, J)."""
    if j is None:
        return "-"
    if j < 1e-3:
        return f"{j * 1e6:.1f} {micro}J"
    if j < 1:
        return f"{j * 1e3:.2f} mJ"
    return f"{j:.2f} J"


def fmt_bytes(n: float | None) -> str:
    """Binary units, as sizes in memory are counted: 896 KiB, 13.7 MiB."""
    if n is None:
        return "-"
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= div:
            return f"{n / div:.1f} {unit}" if abs(n) < 10 * div else f"{n / div:.0f} {unit}"
    return f"{n:.0f} B"


def fmt_power(w: float | None, micro: str = "u") -> str:
    """Watts in engineering units (uW, mW, W), three significant digits."""
    if w is None:
        return "-"
    for unit, scale in (("W", 1.0), ("mW", 1e-3), (f"{micro}W", 1e-6)):
        if abs(w) >= scale or unit == f"{micro}W":
            return f"{fmt_number(w / scale)} {unit}"
    raise AssertionError("unreachable")


def fmt_number(v: float | int | None, digits: int = 3) -> str:
    """A number as people read it, never in e-notation: ``digits`` significant digits, k/M/G from 10 000 on."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if abs(v) >= 1e4:
        for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
            if abs(v) >= div:
                return fmt_number(v / div, digits) + unit
    if isinstance(v, int):
        return str(v)
    if v == 0:
        return "0"
    # positional with ``digits`` significant digits: 0.000123, 12.3, 1230
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(v))))
    text = f"{v:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_eng(v: float | None, unit: str, micro: str = "u", digits: int = 3) -> str:
    """``v`` with an SI prefix (n, u, m, none, k, M, G) and ``digits`` significant digits at most: 500 us,
    20 ms, 1.5 s. For axis ticks and compact cells."""
    if v is None:
        return "-"
    if v == 0 or not math.isfinite(v):
        return f"{fmt_number(v)} {unit}"
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3), ("", 1.0), ("m", 1e-3), (micro, 1e-6), ("n", 1e-9)):
        if abs(v) >= scale * 0.9995 or prefix == "n":
            return f"{fmt_number(v / scale, digits)} {prefix}{unit}"
    raise AssertionError("unreachable")


def fmt_interval(lo: float | None, hi: float | None, fmt) -> str:
    """``[lo, hi]`` in the figure's own format (the unit once when both ends share it), or empty when there is
    no interval."""
    if lo is None or hi is None:
        return ""
    a, b = fmt(lo), fmt(hi)
    if a.split()[1:] == b.split()[1:]:
        a = a.split()[0]
    return f"[{a}, {b}]"


def fmt_count(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def text_table(header: tuple, rows: list[tuple], right: set[int] = frozenset(), rule: bool = False,
               pad_last: bool = True) -> list[str]:
    """Aligned plain-text columns; ``right`` holds the right-aligned column indices. With ``pad_last``
    False the last column is free text (long verdicts) and does not set a width. Every cell goes through
    ``safe_text``."""
    header = tuple(safe_text(c) for c in header)
    rows = [tuple(safe_text(c) for c in r) for r in rows]  # cells may hold names and messages from files
    n = len(header) if pad_last else len(header) - 1
    widths = [max(len(str(r[i])) for r in list(rows) + [header]) for i in range(n)]

    def line(r) -> str:
        cells = [str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        return "  ".join(cells + ([] if pad_last else [str(r[-1])]))

    out = [line(header)]
    if rule:
        out.append("  ".join("-" * w for w in widths))
    return out + [line(r) for r in rows]


def pct_over(value: float, limit: float) -> str:
    """``value > limit`` as percentages with the decimals that make the comparison visible: 10.3% > 10%, never
    a "10% > 10%" rounding artefact."""
    lim = f"{limit * 100:g}%"
    for decimals in range(0, 5):
        shown = round(value * 100, decimals)
        if shown > limit * 100:
            return f"{shown:.{decimals}f}% > {lim}"
    return f"{value * 100:.4g}% > {lim}"
