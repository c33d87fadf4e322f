"""Plain-text tables and the unit formatting every text view shares (terminal, CLI, Markdown)."""
from __future__ import annotations


def fmt_time(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_energy(j: float | None) -> str:
    if j is None:
        return "-"
    if j < 1e-3:
        return f"{j * 1e6:.1f} uJ"
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


def fmt_interval(lo: float | None, hi: float | None, fmt) -> str:
    """``[lo, hi]`` in the figure's own format, or empty when there is no interval."""
    if lo is None or hi is None:
        return ""
    a, b = fmt(lo), fmt(hi)
    same_unit = a.split()[1:] == b.split()[1:]
    return f"[{a.split()[0] if same_unit else a}, {b}]"


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
    False the last column is free text (long verdicts) and does not set a width."""
    n = len(header) if pad_last else len(header) - 1
    widths = [max(len(str(r[i])) for r in list(rows) + [header]) for i in range(n)]

    def line(r) -> str:
        cells = [str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        return "  ".join(cells + ([] if pad_last else [str(r[-1])]))

    out = [line(header)]
    if rule:
        out.append("  ".join("-" * w for w in widths))
    return out + [line(r) for r in rows]
