"""The plain-text views of a run: what the terminal prints (and the CLI, and Markdown beside them)."""
from __future__ import annotations

from edgecheck.results import Run
from edgecheck.textfmt import fmt_bytes, fmt_count, fmt_energy, fmt_interval, fmt_time, text_table


def results_table(results: Run | dict) -> list[str]:
    """One row per (architecture, device): size, accuracy with its interval, latency with its interval across
    processes, load time, first invoke, the model's own memory, agreement with the build, energy, and where
    it came from. A figure too noisy to decide on is marked."""
    header = ("model", "params", "weights", "F1 int8 [95 % CI]", "device", "median [95 % CI]", "load", "1st inv",
              "memory", "agree", "energy", "source")
    rows, notes = [], []
    entries = sorted(Run.coerce(results).entries,
                     key=lambda e: (e.model.size.get("params") or 0, e.model.name, e.device.label))
    for e in entries:
        size = e.model.size
        f1 = e.model.metric("int8", "macro_f1")
        f1_ci = e.model.metric("int8", "macro_f1_ci95")
        f1_text = "-" if f1 is None else f"{f1:.3f}" + (f" [{f1_ci[0]:.2f}, {f1_ci[1]:.2f}]" if f1_ci else "")
        lat = e.latency
        if lat is None:
            median = "-"
        else:
            ci = lat.extra.get("ci95")
            median = fmt_time(lat.median) + (" " + fmt_interval(ci[0], ci[1], fmt_time) if ci else "")
            if lat.extra.get("unstable"):
                median += " !"
                notes.append(f"! {e.model.name} on {e.device.label}: unstable ({lat.extra['unstable']})")
        memory = (e.extra.get("memory") or {}).get("model_rss_bytes")
        agree = e.on_device.agreement_with_build if e.on_device else None
        source = e.kind if e.ok else f"FAILED: {(e.error or '')[:40]}"
        rows.append((e.model.name, fmt_count(size.get("params")), fmt_bytes(size.get("weight_bytes")), f1_text,
                     e.device.label, median, fmt_time(e.load_seconds), fmt_time(e.first_invoke_seconds),
                     "-" if memory is None else "+" + fmt_bytes(memory), "-" if agree is None else f"{agree:.0%}",
                     fmt_energy(e.energy.total_j if e.energy else None), source))
    if not rows:
        return ["(no results)"]
    legend = ["median: seconds per invoke; measured: the median over rounds of fresh processes with the 95 % "
              "interval of the median across processes; memory: the model's own peak above a fresh worker's; "
              "agree: predictions equal to the build's; ! marks a figure too noisy to decide on"]
    return text_table(header, rows, right={1, 2, 5, 6, 7, 8, 9, 10}, rule=True) + notes + legend
