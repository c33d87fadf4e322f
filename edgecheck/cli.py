"""The ``edgecheck`` command: build, inspect, devices.

Errors from bad input print as one line naming the file or option, exit 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .errors import EdgecheckError


def _cmd_build(args: argparse.Namespace) -> int:
    from .build import BuildOptions, build
    from .train import TrainConfig

    tc = TrainConfig(max_epochs=args.epochs, seed=args.seed) if args.epochs else TrainConfig(seed=args.seed)
    build(BuildOptions(grid=args.grid, dataset=args.dataset, out=Path(args.out), seed=args.seed,
                       n_fft=args.n_fft, hop=args.hop, train=tc, verbose=args.verbose))
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .modelfile import read_model

    print(json.dumps(read_model(args.model).summary(), indent=2))
    return 0


def _cmd_parse_compiler_log(args: argparse.Namespace) -> int:
    from .compilerlog import parse

    path = Path(args.log)
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        raise EdgecheckError(f"{path}: cannot read compiler log ({e.strerror or e})") from None
    log = parse(text, source=str(path))
    for w in log.warnings:
        print(f"edgecheck: warning: {w}", file=sys.stderr)
    print(json.dumps(log.to_dict(), indent=2))
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    import tempfile

    from . import results as res
    from .calibrate import cpu_points, fit_board, fit_cpu_form
    from .files import atomic_write_json
    from .twins import load_constants

    paths = list(args.results)
    if not paths:
        if args.device != "cpu":
            raise EdgecheckError(f"calibrate --device {args.device}: give RESULTS.json files measured on a Coral board")
        import subprocess

        tmp = Path(tempfile.mkdtemp(prefix="edgecheck-calibrate-")) / "results.json"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(Path(__file__).parent.parent / "benchmarks"),
               "--device", "cpu", "--grid", args.grid, "--results", str(tmp)]
        print(f"calibrate: measuring a sweep: {' '.join(cmd[2:])}", file=sys.stderr)
        if subprocess.run(cmd).returncode not in (0,):
            raise EdgecheckError("calibrate: the measuring sweep failed")
        paths = [str(tmp)]
    results = [res.load(p) for p in paths]
    if args.device == "cpu":
        from .cache import read_cache
        from .environment import measuring_environment

        report = fit_cpu_form(cpu_points(results, "cpu"), read_cache(level=2))
        l2 = report["cache"]
        print(f"L2 cache: {l2['size_bytes'] >> 10} KiB, {l2['ways']}-way, {l2['page_colours']} page colours "
              f"({l2['source']})")
        for h in report["held_out"]:
            print(f"{h['model']:>8}  measured {h['measured_s'] * 1e6:9.1f} us  predicted {h['predicted_s'] * 1e6:9.1f} us"
                  f"  {h['error_pct']:+6.1f} %")
        print(f"fitted: invoke {report['invoke_overhead_s'] * 1e6:.2f} us, "
              f"per operator {report['op_overhead_s'] * 1e6:.3f} us, "
              f"weights from L2 {report['l2_rate_Bps'] / 1e9:.1f} GB/s (compute included: one MAC per weight byte), "
              f"from beyond L2 {report['memory_rate_Bps'] / 1e9:.1f} GB/s")
        print(f"held-out median absolute percentage error: {report['held_out_mdape_pct']:.1f} % "
              f"(fitted on {len(report['fitted_on'])} models of <= 1 M parameters; train {report['train_mdape_pct']:.1f} %)")
        out = args.out or ".edgecheck/calibrate/cpu-form.json"
        atomic_write_json(out, {"schema": "edgecheck.cpu-form-fit/2", "results": paths,
                                "environment": measuring_environment(), **report})
        print(f"wrote {out}")
        return 0
    constants, report = fit_board(results, paths, load_constants(args.constants), args.device)
    print(json.dumps(report, indent=2))
    out = args.out or f"fixtures/twins/{args.device}-fitted.json"
    atomic_write_json(out, constants)
    print(f"wrote {out}: use it with --twin-constants {out}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from . import results as res
    from .compare import Thresholds, compare, has_regression, summary, table
    from .files import atomic_write_json

    base, run = res.load(args.baseline), res.load(args.run)
    th = Thresholds.from_baseline(base, latency=args.latency_threshold, energy=args.energy_threshold,
                                  accuracy=args.accuracy_threshold)
    rows = compare(base, run, th, force=args.force)
    for line in table(rows, only_changes=not args.all):
        print(line)
    counts = summary(rows)
    print("summary: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    if args.json:
        atomic_write_json(args.json, {"schema": "edgecheck.comparison/1", "baseline": args.baseline, "run": args.run,
                                      "summary": counts, "rows": [r.to_dict() for r in rows]})
    return 1 if has_regression(rows) else 0


def _cmd_claims(args: argparse.Namespace) -> int:
    from . import results as res
    from .claims import evaluate, load_thresholds, markdown, table
    from .files import atomic_write_json, atomic_write_text

    claims = evaluate(res.load(args.run), load_thresholds(args.claims))
    for line in table(claims):
        print(line)
    stem = Path(args.out) if args.out else Path(args.run).with_suffix("")
    atomic_write_text(f"{stem}.claims.md", markdown(claims))
    atomic_write_json(f"{stem}.claims.json", {"schema": "edgecheck.claims-result/1", "run": args.run,
                                              "claims": [c.to_dict() for c in claims]})
    print(f"wrote {stem}.claims.md and {stem}.claims.json")
    return 1 if any(c.holds is False for c in claims) else 0


def _cmd_merge(args: argparse.Namespace) -> int:
    from . import results as res
    from .files import atomic_write_json

    merged = res.merge([res.load(p) for p in args.runs], args.runs)
    atomic_write_json(args.out, merged)
    print(f"wrote {args.out}: {len(merged['entries'])} entries from {len(args.runs)} runs")
    return 0


def _cmd_energy_from_trace(args: argparse.Namespace) -> int:
    from . import results as res
    from .energy_trace import fill_from_trace
    from .files import atomic_write_json
    from .probes import TraceProbe

    data = res.load(args.run)
    n = fill_from_trace(data, TraceProbe(Path(args.trace), args.offset))
    atomic_write_json(args.out or args.run, data)
    print(f"filled energy of {n} entries from {args.trace}; wrote {args.out or args.run}")
    return 0


def _power_sensors() -> list[dict]:
    from .probes import HWMON_ROOT, POWERCAP_ROOT

    out = []
    for d in sorted(HWMON_ROOT.glob("hwmon*")):
        if (d / "power1_input").exists() or (d / "curr1_input").exists():
            name = (d / "name").read_text().strip() if (d / "name").is_file() else d.name
            out.append({"probe": f"hwmon:{d}", "name": name, "readable": os.access(d / "power1_input", os.R_OK)
                        if (d / "power1_input").exists() else os.access(d / "curr1_input", os.R_OK)})
    rapl = POWERCAP_ROOT / "intel-rapl:0" / "energy_uj"
    if rapl.exists():
        out.append({"probe": "rapl", "name": "x86 package (host only)", "readable": os.access(rapl, os.R_OK)})
    return out


def _cmd_report(args: argparse.Namespace) -> int:
    from . import results as res
    from .compare import compare
    from .files import atomic_write_text
    from .report import html_report

    runs = [(p, res.load(p)) for p in args.runs]
    comparison = compare(res.load(args.baseline), runs[0][1], force=True) if args.baseline else None
    budget = args.budget_ms / 1e3 if args.budget_ms else None
    out = args.out or str(Path(args.runs[0]).with_suffix(".html"))
    atomic_write_text(out, html_report(runs, comparison, budget, args.rate))
    print(f"wrote {out}")
    return 0


def _cmd_chart(args: argparse.Namespace) -> int:
    from . import results as res
    from .chart import build_chart
    from .files import atomic_write_bytes, atomic_write_json, atomic_write_text
    from .report import chart_figure

    chart = build_chart(res.load(args.run), args.metric, args.budget_ms / 1e3 if args.budget_ms else None)
    out = Path(args.out)
    stem = f"decision-chart-{args.metric}" + (f"-under-{args.budget_ms:g}ms" if args.budget_ms else "")
    png, svg = chart_figure(chart)
    atomic_write_bytes(out / f"{stem}.png", png)
    atomic_write_text(out / f"{stem}.svg", svg)
    atomic_write_text(out / f"{stem}.rules.txt", chart.rules_text + "\n")
    atomic_write_json(out / f"{stem}.json", {"schema": "edgecheck.decision-chart/1", "run": args.run, **chart.to_dict()})
    print(chart.rules_text)
    agreement = "-" if chart.loo_agreement is None else f"{chart.loo_agreement:.0%}"
    print(f"{chart.provenance}; leave-one-architecture-out agreement {agreement}; wrote {out}/{stem}.{{png,svg,rules.txt,json}}")
    return 0


def _cmd_recommend(args: argparse.Namespace) -> int:
    from .recommend import recommend

    rec = recommend(args.model, args.metric, args.results, args.tpu_link)
    print(json.dumps(rec, indent=2))
    return 0


def _cmd_devices(args: argparse.Namespace) -> int:
    from .devices import select
    from .edgetpu import find_compiler, find_edge_tpus, runtime_info
    from .environment import cpufreq

    sel = select(["cpu", "a53", "tpu"])
    freq = cpufreq()
    tpus = find_edge_tpus()
    problems = [t.note for t in tpus if t.note]
    if freq.get("governor") not in (None, "performance"):
        problems.append(f"CPU governor is {freq['governor']!r}: latencies vary with frequency; "
                        "for stable numbers set it to 'performance'")
    out = {
        "found": [d.to_dict() for d in sel.devices],
        "not_found": sel.skipped,
        "edge_tpus": [t.to_dict() for t in tpus],
        "edgetpu_runtime": runtime_info(),
        "edgetpu_compiler": find_compiler(),
        "cpu_frequency": freq,
        "power_sensors": _power_sensors(),
        "problems": problems,
    }
    print(json.dumps(out, indent=2, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="edgecheck", description="Edge TPU vs CPU: which chip, at what cost?")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="build int8 .tflite artifacts for a grid of architectures (needs the build extra)")
    b.add_argument("--grid", default="default", help="default, smoke, or e.g. 1x32,2x64 or 'layers=1-4;widths=32,64'")
    b.add_argument("--dataset", default="collar", help="collar, basicmotions, a .npz/.csv file or a UCI HAR folder")
    b.add_argument("--out", required=True, help="artifacts directory (content-addressed; reused when inputs match)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--n-fft", type=int, default=None, help="STFT frame length (default 64, shorter for short windows)")
    b.add_argument("--hop", type=int, default=None, help="STFT hop (default n_fft/2)")
    b.add_argument("--epochs", type=int, default=None, help="training epoch cap (default 12)")
    b.add_argument("--verbose", action="store_true", help="show the converter's own output")
    b.set_defaults(func=_cmd_build)

    i = sub.add_parser("inspect", help="print a .tflite's size, operators and quantization as JSON")
    i.add_argument("model")
    i.set_defaults(func=_cmd_inspect)

    c = sub.add_parser("parse-compiler-log", help="print an edgetpu_compiler log as JSON, one entry per model")
    c.add_argument("log")
    c.set_defaults(func=_cmd_parse_compiler_log)

    k = sub.add_parser("calibrate", help="fit a twin's constants to measured results and print the fit's error")
    k.add_argument("--device", required=True, choices=["cpu", "a53", "tpu"])
    k.add_argument("results", nargs="*", help="results JSON files (cpu: measured here if none are given)")
    k.add_argument("--grid", default="default", help="grid for the cpu sweep when no results are given")
    k.add_argument("--constants", default=None, help="base constants file (default: the packaged table)")
    k.add_argument("-o", "--out", default=None,
                   help="where to write the fitted constants (default fixtures/twins/<device>-fitted.json) "
                        "or the cpu fit report (default .edgecheck/calibrate/cpu-form.json)")
    k.set_defaults(func=_cmd_calibrate)

    cp = sub.add_parser("compare", help="compare a run with a baseline; exit 1 on a regression")
    cp.add_argument("baseline")
    cp.add_argument("run")
    cp.add_argument("--force", action="store_true", help="compare even when dataset, config or runtimes differ")
    cp.add_argument("--latency-threshold", type=float, default=None, help="relative (default 0.10)")
    cp.add_argument("--energy-threshold", type=float, default=None, help="relative (default 0.10)")
    cp.add_argument("--accuracy-threshold", type=float, default=None, help="absolute (default 0.01)")
    cp.add_argument("--all", action="store_true", help="show unchanged rows too")
    cp.add_argument("--json", default=None, help="write the comparison as JSON")
    cp.set_defaults(func=_cmd_compare)

    cl = sub.add_parser("claims", help="evaluate the paper's claims on a saved run; writes Markdown and JSON")
    cl.add_argument("run")
    cl.add_argument("--claims", default=None, help="thresholds file (default fixtures/claims.json)")
    cl.add_argument("-o", "--out", default=None, help="output stem (default: the run's path without .json)")
    cl.set_defaults(func=_cmd_claims)

    mg = sub.add_parser("merge", help="merge results of several runs or boards into one file")
    mg.add_argument("runs", nargs="+")
    mg.add_argument("-o", "--out", required=True)
    mg.set_defaults(func=_cmd_merge)

    et = sub.add_parser("energy-from-trace", help="fill a run's pending energy windows from a meter's CSV log")
    et.add_argument("run")
    et.add_argument("trace")
    et.add_argument("--offset", type=float, default=0.0, help="seconds added to the trace's timestamps")
    et.add_argument("-o", "--out", default=None, help="write here instead of updating RUN in place")
    et.set_defaults(func=_cmd_energy_from_trace)

    rp = sub.add_parser("report", help="write one self-contained HTML report of one or more runs")
    rp.add_argument("runs", nargs="+")
    rp.add_argument("-o", "--out", default=None, help="HTML path (default: the first run's path with .html)")
    rp.add_argument("--baseline", default=None, help="add a comparison with this baseline")
    rp.add_argument("--budget-ms", type=float, default=None, help="add a chart of the fastest model under this latency")
    rp.add_argument("--rate", type=float, default=10.0, help="inferences per second for the battery view (default 10)")
    rp.set_defaults(func=_cmd_report)

    ch = sub.add_parser("chart", help="the decision chart of a run: PNG, SVG, and its rules as text and JSON")
    ch.add_argument("run")
    ch.add_argument("--metric", default="energy", choices=["energy", "latency"])
    ch.add_argument("--budget-ms", type=float, default=None, help="only devices within this latency can win")
    ch.add_argument("-o", "--out", default=".", help="output folder (default: here)")
    ch.set_defaults(func=_cmd_chart)

    rc = sub.add_parser("recommend", help="which platform for this .tflite, with measured or predicted figures")
    rc.add_argument("model")
    rc.add_argument("--metric", default="energy", choices=["energy", "latency"])
    rc.add_argument("--results", default=None, help="a run whose measurements are used when they cover this model")
    rc.add_argument("--tpu-link", default="pcie", choices=["pcie", "usb3", "usb2"])
    rc.set_defaults(func=_cmd_recommend)

    d = sub.add_parser("devices", help="list the devices found on this machine")
    d.set_defaults(func=_cmd_devices)

    args = p.parse_args(argv)
    try:
        return args.func(args)
    except EdgecheckError as e:
        print(f"edgecheck: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
