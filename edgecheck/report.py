"""Human-readable views of a results file (the terminal table for now)."""
from __future__ import annotations


def _fmt_time(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def _fmt_energy(j: float) -> str:
    if j < 1e-3:
        return f"{j * 1e6:.1f} uJ"
    return f"{j * 1e3:.2f} mJ"


def _fmt_count(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def results_table(data: dict) -> list[str]:
    """One row per (architecture, device): size, accuracy, median latency and where it came from."""
    header = ("model", "params", "MACs", "weights", "F1 float", "F1 int8", "device", "median", "cv", "energy", "source")
    rows = []
    entries = sorted(data.get("entries", []), key=lambda e: (e["model"]["size"].get("params") or 0,
                                                             e["model"]["name"], e["device"]["name"]))
    for e in entries:
        m = e["model"]
        size = m.get("size", {})
        met = m.get("metrics", {})
        lat = (e.get("latency") or {}).get("stats", {})
        f1f = met.get("float", {}).get("macro_f1")
        f1i = met.get("int8", {}).get("macro_f1")
        wb = size.get("weight_bytes")
        source = e.get("kind", "?") if e.get("status") == "ok" else f"FAILED: {e.get('error', '')[:40]}"
        energy = (e.get("energy") or {}).get("total_j")
        sim = bool((e.get("latency") or {}).get("simulated"))
        rows.append((m["name"], _fmt_count(size.get("params")), _fmt_count(size.get("macs")),
                     "-" if wb is None else f"{wb / 1024:.0f} KiB", "-" if f1f is None else f"{f1f:.3f}",
                     "-" if f1i is None else f"{f1i:.3f}", e["device"]["name"], _fmt_time(lat.get("median")),
                     "-" if lat.get("cv") is None or sim else f"{lat['cv'] * 100:.0f}%",
                     "-" if energy is None else _fmt_energy(energy), source))
    if not rows:
        return ["(no results)"]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i in (1, 2, 3, 4, 5, 7, 8, 9) else str(c).ljust(w)  # noqa: E731
                               for i, (c, w) in enumerate(zip(r, widths)))
    return [line(header), line(tuple("-" * w for w in widths))] + [line(r) for r in rows]
