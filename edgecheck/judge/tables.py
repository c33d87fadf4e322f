"""The rows of a run as people read them: the terminal table of ``results.rows`` (failed entries too, smallest
model first), which the CLI prints; the HTML report formats the same rows."""
from __future__ import annotations

from edgecheck.results import BAND_LABEL, Row, Run, by_size, rows
from edgecheck.textfmt import fmt_bytes, fmt_count, fmt_energy, fmt_interval, fmt_time, safe_text, text_table


def _energy(r: Row) -> str:
    """Energy per inference, with the twin's band when it has one (a measured interval is in the report)."""
    iv = r.energy_interval
    band = " " + fmt_interval(iv.low, iv.high, fmt_energy) if iv and iv.label == BAND_LABEL else ""
    return fmt_energy(r.energy_j) + band


def results_table(results: Run | dict) -> list[str]:
    """One row per (architecture, device): size, accuracy with its interval, latency with its interval across
    processes (or the twin's band), load time, first invoke, the model's own memory, agreement with the build,
    energy, and where it came from. A figure too noisy to decide on is marked."""
    header = ("model", "params", "weights", "F1 int8 [95 % CI]", "device", "median [95 % CI]", "load", "1st inv",
              "memory", "agree", "energy", "source")
    lines, notes = [], []
    for r in by_size(rows(results, failed=True)):
        f1_text = "-" if r.f1_int8 is None else f"{r.f1_int8:.3f}" + (
            f" [{r.f1_int8_ci[0]:.2f}, {r.f1_int8_ci[1]:.2f}]" if r.f1_int8_ci else "")
        median = "-"
        if r.latency_s is not None:
            iv = r.latency_interval
            median = fmt_time(r.latency_s) + (" " + fmt_interval(iv.low, iv.high, fmt_time) if iv else "")
            if r.near_limit:
                median += " ~"
                notes.append(f"~ {r.model} on {r.device_label}: {r.near_limit}")
            if r.unstable:
                median += " !"
                notes.append(f"! {r.model} on {r.device_label}: unstable ({r.unstable})")
        source = r.source if r.ok else f"FAILED: {(r.error or '')[:40]}"
        lines.append((r.model, fmt_count(r.params or None), fmt_bytes(r.weight_bytes), f1_text, r.device_label, median,
                     fmt_time(r.load_s), fmt_time(r.first_invoke_s),
                     "-" if r.memory_bytes is None else "+" + fmt_bytes(r.memory_bytes),
                     "-" if r.agreement is None else f"{r.agreement:.0%}", _energy(r), source))
    header_d = results.header if isinstance(results, Run) else results
    for x in (header_d or {}).get("not_runnable") or []:  # a requested device that refuses a model keeps its row
        why = str(x.get("reason", ""))
        if " (" in why and why.endswith(")") and why.startswith("inconclusive:"):
            why = why[why.index(" (") + 2:-1]  # the refusal itself, without the outcome's statistic
        lines.append((x.get("model", "?"), "", "", "", x.get("device", "?"), "not runnable (below)", "", "", "", "",
                      "", x.get("kind", "")))
        notes.append(f"x {x.get('model')} on {x.get('device')}: not runnable: {why}")
    if not lines:
        return ["(no results)"]
    legend = ["median: seconds per invoke; measured: the median over rounds of fresh processes with the 95 % "
              "interval of the median across processes; simulated: the twin's central value with its band [low, "
              "high]; memory: the model's own peak above a fresh worker's; agree: predictions equal to the build's; "
              "! marks a figure too noisy to decide on; ~ a model near the Edge TPU's on-chip limit (both outcomes "
              "below the table); x a model the device cannot run (why, below the table)"]
    return text_table(header, lines, right={1, 2, 5, 6, 7, 8, 9, 10}, rule=True) + [safe_text(n, 2000) for n in notes] \
        + legend
